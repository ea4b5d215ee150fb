"""Proof and code cannot drift: evaluate each model on concrete states against ``step``.

``compare(state, event)`` builds the concrete ledger of a real state, evaluates the z3 model
of the event's transition on it (z3 does the arithmetic, with its own division semantics),
and compares with what the kernel's ``step`` does: acceptance, the rejection reason, and on
acceptance every balance, custody total, position, open-interest index, trade record and
account record the model covers (SK-PROOF-2). ``random_cases`` draws reachable states and
adversarial events from a seed, so the tests check at least 1,000 of them per run.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any, Final

import attrs
import z3

from settlekernel.core.events import (
    AdmitVenue,
    AuthorizeVenue,
    Deposit,
    Expire,
    Funding,
    FundInsurance,
    Liquidate,
    ListInstrument,
    OpenAccount,
    OraclePrice,
    OracleVolatility,
    RemoveVenue,
    RestrictVenue,
    ResumeVenue,
    RevokeVenue,
    SuspendVenue,
    Tick,
    Trade,
    Transfer,
    VariationMargin,
    Withdraw,
)
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.model import State
from settlekernel.core.outcomes import Accepted, Outcome, PostingCode
from settlekernel.core.root import grant_key
from settlekernel.core.rules import RuleSet
from settlekernel.core.units import VALUE_LIMIT
from settlekernel.kernel.dispatch import genesis, step
from settlekernel.proofs.consult import KernelConsult
from settlekernel.proofs.engine import as_python, evaluate
from settlekernel.proofs.replay import perpetual_market
from settlekernel.proofs.symbolic import Ledger, concrete_event, concrete_ledger
from settlekernel.proofs.theorems import MODELS
from settlekernel.proofs.transitions import Model
from settlekernel.proofs.venue_cases import venue_cases
from settlekernel.proofs.walks import set_up, walk

_TRADE_EXISTS: Final = "trade_exists"
OUTSIDE_REASON: Final = "outside_model"


def read(ledger: Ledger, cell: tuple[str, ...]) -> Any:
    """Return the model's term for one named cell of a ledger."""
    kind, *keys = cell
    if kind == "clock":
        return ledger.clock
    names = [z3.StringVal(key) for key in keys]
    if kind == "balance":
        return ledger.bal(names[0], names[1])
    if kind == "grant":
        return ledger.grant(names[0], names[1])
    if kind == "venue_open_lots":
        return z3.Select(z3.Select(ledger.venue_open_lots, names[0]), names[1])
    if kind == "position":
        return ledger.pos(names[0], names[1])
    return z3.Select(getattr(ledger, kind), names[0])


def _account_cells(
    post: State, account_id: str, assets: list[str]
) -> list[tuple[tuple[str, ...], Any]]:
    account = post.accounts.get(account_id)
    cells: list[tuple[tuple[str, ...], Any]] = [(("exists", account_id), account is not None)]
    if account is None:
        return cells
    cells.append((("owner", account_id), account.owner))
    cells += [(("balance", account_id, asset), account.balance(asset)) for asset in assets]
    for instrument_id in post.instruments:
        held = account.positions.get(instrument_id)
        cells.append(
            (("position", instrument_id, account_id), 0 if held is None else held.quantity_lots)
        )
    return cells


def kernel_cells(state: State, post: State, event: object) -> list[tuple[tuple[str, ...], Any]]:
    """Return (cell, value after ``step``) for every cell the models cover."""
    ids = {value for value in attrs.asdict(event).values() if isinstance(value, str)}  # type: ignore[arg-type]
    assets = [asset.symbol for asset in state.rules.assets]
    cells: list[tuple[tuple[str, ...], Any]] = []
    for account_id in sorted(set(state.accounts) | ids):
        cells += _account_cells(post, account_id, assets)
    cells += [(("custody", asset), post.custody.get(asset, 0)) for asset in assets]
    for instrument_id in sorted(set(post.instruments) | ids):
        instrument = post.instruments.get(instrument_id)
        cells.append((("listed", instrument_id), instrument is not None))
        if instrument is None:
            continue
        cells += [
            (("open_interest", instrument_id), post.open_interest[instrument_id]),
            (("reference", instrument_id), instrument.reference_ticks),
            (("multiplier", instrument_id), instrument.multiplier_minor),
            (("settles_in", instrument_id), instrument.settlement_asset),
            (("underlying", instrument_id), instrument.underlying),
            (("linear", instrument_id), instrument.is_linear),
            (
                ("expiry", instrument_id),
                -1 if instrument.expiry_ms is None else instrument.expiry_ms,
            ),
            (("last_funding", instrument_id), instrument.last_funding_ms),
        ]
    if isinstance(event, Trade):
        cells.append((("trades", event.trade_id), event.trade_id in post.trades))
    if isinstance(event, Expire):
        cells += _expiry_cells(post, event)
    if isinstance(event, VENUE_EVENTS):
        cells += _venue_cells(post, ids)
    cells += _market_cells(post)
    return cells


VENUE_EVENTS: Final = (
    Trade,
    AdmitVenue,
    SuspendVenue,
    ResumeVenue,
    RemoveVenue,
    AuthorizeVenue,
    RestrictVenue,
    RevokeVenue,
)


def _venue_cells(post: State, ids: set[str]) -> list[tuple[tuple[str, ...], Any]]:
    """Return every venue's record, its open lots and every account's grant to it."""
    cells: list[tuple[tuple[str, ...], Any]] = []
    names = sorted(set(post.venues) | ids)
    for venue_id in names:
        venue = post.venues.get(venue_id)
        cells.append((("venue_status", venue_id), "" if venue is None else venue.status.value))
        if venue is None:
            continue
        cells += [
            (("venue_house", venue_id), venue.house),
            (("venue_fee_account", venue_id), venue.fee_account),
            (("venue_fee_max", venue_id), venue.fee_rate_max_ppm),
            (("venue_oi_max", venue_id), venue.open_interest_max_lots),
            (("venue_notional_max", venue_id), venue.notional_max_minor),
        ]
        cells += [
            (("venue_open_lots", venue_id, i), venue.open_lots.get(i, 0)) for i in post.instruments
        ]
    for account_id in sorted(set(post.accounts) | ids):
        for venue_id in names:
            recorded = post.grants.get(grant_key(account_id, venue_id))
            cells.append(
                (("grant", account_id, venue_id), "" if recorded is None else recorded.value)
            )
    return cells


def _expiry_cells(post: State, event: Expire) -> list[tuple[tuple[str, ...], Any]]:
    """Return what an expiry writes beyond balances: claims less debts, socialised loss."""
    cells: list[tuple[tuple[str, ...], Any]] = [
        (("claim_net", a), x.claim_minor - x.debt_minor) for a, x in sorted(post.accounts.items())
    ]
    asset = post.rules.valuation_asset
    cells.append((("socialised", asset), post.socialized_loss.get(asset, 0)))
    instrument = post.instruments.get(event.instrument)
    if instrument is not None:
        cells.append((("settled", instrument.id), instrument.settlement_ticks is not None))
    return cells


def _market_cells(post: State) -> list[tuple[tuple[str, ...], Any]]:
    """Return the index, volatility and clock cells: what the oracle models write."""
    cells: list[tuple[tuple[str, ...], Any]] = [(("clock",), post.clock_ms)]
    for underlying in (u.symbol for u in post.rules.underlyings):
        price = post.prices.get(underlying)
        volatility = post.volatilities.get(underlying)
        cells.append((("has_price", underlying), price is not None))
        cells.append((("has_volatility", underlying), volatility is not None))
        if price is not None:
            cells.append((("index", underlying), price.price_ticks))
        if volatility is not None:
            cells.append((("volatility", underlying), volatility.volatility_ppm))
            cells.append((("volatility_time", underlying), volatility.timestamp_ms))
    return cells


@attrs.frozen
class Comparison:
    """One case: the disagreements, the kernel's outcome, and whether the model covers it."""

    problems: list[str]
    outcome: Outcome
    outside: bool = False


_DEBT_CODES: Final = frozenset(
    {PostingCode.ADVANCE, PostingCode.DEBT_REPAYMENT, PostingCode.CLAIM_PAYMENT}
)


def _settles_debts(state: State, event: object, outcome: Accepted) -> bool:
    """Whether a step touches a debtor or a claimant (SK-DEBT), which the models leave out.

    An expiry models its own advances, debts and claims; only the SK-DEBT-2 settlement of
    debts and claims held before it is left out.
    """
    if isinstance(event, Expire):
        return bool(state.debtors or state.claimants)
    if any(posting.code in _DEBT_CODES for posting in outcome.postings):
        return True
    named = {value for value in attrs.asdict(event).values() if isinstance(value, str)}  # type: ignore[arg-type]
    touched = (
        named
        | {p.debit_account for p in outcome.postings}
        | {p.credit_account for p in outcome.postings}
    )
    return bool(touched & (set(state.debtors) | set(state.claimants)))


def compare(
    state: State, event: object, ledger: Ledger | None = None, model: Model | None = None
) -> Comparison:
    """Compare the model with ``step`` on one state and event."""
    model = MODELS[type(event)] if model is None else model
    ledger = concrete_ledger(state) if ledger is None else ledger
    modelled = model(state.rules, ledger, concrete_event(event), KernelConsult(state, event))
    outcome = step(state, event)
    accepted = as_python(evaluate(modelled.accepted))
    reason = str(as_python(evaluate(modelled.reason)))
    if not isinstance(outcome, Accepted):
        kernel_reason = outcome.reason.value
        same = reason == kernel_reason or (
            reason == _TRADE_EXISTS and kernel_reason.startswith(_TRADE_EXISTS)
        )
        found = [] if same else [f"model says {reason or 'accepted'}, kernel: {kernel_reason}"]
        return Comparison(found, outcome)
    if reason == OUTSIDE_REASON or _settles_debts(state, event, outcome):
        return Comparison([], outcome, outside=True)  # A plan the model does not cover.
    if not accepted:
        return Comparison([f"model rejects with {reason}, kernel accepts"], outcome)
    problems = [
        f"assumed fact {fact} fails" for fact in modelled.assumes if not z3.is_true(evaluate(fact))
    ]
    for cell, expected in kernel_cells(state, outcome.state, event):
        value = as_python(evaluate(read(modelled.post, cell)))
        if value != expected:
            problems.append(f"{'/'.join(cell)}: model {value!r}, kernel {expected!r}")
    return Comparison(problems, outcome)


# Accounts the generator opens, and the owners they belong to.
_OWNERS: Final = {"a1": "alice", "a2": "alice", "b1": "bob", "c1": "carol"}
_PERPETUAL: Final = "BTC-PERP"
_OPTION: Final = "BTC-C-70000"


def _setup(rules: RuleSet) -> list[object]:
    operator = rules.roles.operator
    oracles = rules.roles.oracles[:2]
    events: list[object] = [
        *perpetual_market(rules, _PERPETUAL, "BTC"),
        ListInstrument(
            principal=operator,
            instrument=_OPTION,
            kind=InstrumentKind.OPTION,
            underlying="BTC",
            settlement_asset="USDC",
            multiplier_minor=100,
            expiry_ms=10**9,
            strike_ticks=7_000_000,
            option_type=OptionType.CALL,
        ),
        OracleVolatility(
            principal=oracles[0], underlying="BTC", volatility_ppm=600_000, timestamp_ms=1_000
        ),
    ]
    events += [OpenAccount(principal=owner, account=account) for account, owner in _OWNERS.items()]
    events += [
        Deposit(principal=owner, account=account, asset=asset, amount_minor=amount)
        for account, owner in _OWNERS.items()
        for asset, amount in (("USDC", 5 * 10**10), ("BTC", 10**8))
    ]
    return events


def _amount(rng: random.Random, held: int) -> int:
    return rng.choice(
        [
            0,
            1,
            rng.randint(1, 10**9),
            held,
            held + 1,
            max(held // 2, 1),
            VALUE_LIMIT - 1,
            VALUE_LIMIT,
            -5,
        ]
    )


def _account(rng: random.Random) -> str:
    return rng.choice([*_OWNERS, "ghost"])


_SIBLINGS: Final = {"a1": "a2", "a2": "a1", "b1": "c1", "c1": "b1", "ghost": "a1"}


_MARKET_KINDS: Final = ("mark", "fund", "report", "list", "volatility", "tick")


def _market_event(rng: random.Random, state: State, kind: str, number: int) -> object:
    """Return a listing, a price or volatility report, a mark or a funding charge."""
    rules = state.rules
    if kind == "report":
        return _report(rng, state)
    if kind == "list":
        return _listing(rng, state, number)
    if kind == "tick":
        return Tick(
            principal=rng.choice([rules.roles.sequencer] * 2 + [rules.roles.operator]),
            timestamp_ms=state.clock_ms + rng.choice([-1, 0, 1, 1_000, 30_000, 61_000]),
        )
    if kind == "volatility":
        current = state.volatilities.get("BTC")
        return OracleVolatility(
            principal=rng.choice(rules.roles.oracles),
            underlying=rng.choice(["BTC", "BTC", "ETH"]),
            volatility_ppm=rng.choice([0, 600_000, 10_000_000, 10_000_001, -1]),
            timestamp_ms=(0 if current is None else current.timestamp_ms)
            + rng.choice([-1, 0, 1, 1_000]),
        )
    instrument = rng.choice([_PERPETUAL, _OPTION])
    if kind == "mark":
        return VariationMargin(principal=rules.roles.operator, instrument=instrument)
    return Funding(principal=rules.roles.operator, instrument=instrument)


def _valid_event(rng: random.Random, state: State, number: int) -> object:
    """Return an event of a modelled type that is mostly well-formed and authorised."""
    rules = state.rules
    account = _account(rng)
    owner = _OWNERS.get(account, "nobody")
    asset = rng.choice(["USDC", "USDC", "BTC"])
    known = state.accounts.get(account)
    held = 0 if known is None else known.balance(asset)
    amount = rng.choice([1, rng.randint(1, 10**9), held, max(held // 3, 1)])
    kind = rng.choice(
        ["open", "deposit", "withdraw", "transfer", "insurance", "trade", *_MARKET_KINDS]
    )
    if kind in _MARKET_KINDS:
        return _market_event(rng, state, kind, number)
    if kind == "open":
        return OpenAccount(principal=owner, account=f"n{number}")
    if kind == "deposit":
        return Deposit(principal=owner, account=account, asset=asset, amount_minor=amount)
    if kind == "withdraw":
        return Withdraw(principal=owner, account=account, asset=asset, amount_minor=amount)
    if kind == "transfer":
        target = _SIBLINGS[account]
        return Transfer(
            principal=owner,
            source_account=account,
            target_account=target,
            asset=asset,
            amount_minor=amount,
        )
    if kind == "insurance":
        return FundInsurance(principal=rules.roles.operator, asset=asset, amount_minor=amount)
    return Trade(
        principal=rules.roles.matchers[0],
        trade_id=f"t{number}",
        buyer=account,
        seller=_SIBLINGS[account],
        instrument=rng.choice([_PERPETUAL, _PERPETUAL, _OPTION]),
        quantity_lots=rng.randint(1, 50),
        price_ticks=rng.choice(
            [6_000_000, rng.randint(5_950_000, 6_050_000), rng.randint(1, 400_000)]
        ),
        buyer_fee_rate_ppm=rng.choice([0, 500, 1_000]),
        seller_fee_rate_ppm=rng.choice([0, 500, 333]),
    )


def _listing(rng: random.Random, state: State, number: int) -> ListInstrument:
    """Return a listing: mostly well-formed for its kind, sometimes missing or extra fields."""
    kind = rng.choice(list(InstrumentKind))
    dated = kind is not InstrumentKind.PERPETUAL or rng.random() < 0.1
    option = kind is InstrumentKind.OPTION or rng.random() < 0.1
    return ListInstrument(
        principal=state.rules.roles.operator,
        instrument=rng.choice([f"i{number}", _PERPETUAL]),
        kind=kind,
        underlying=rng.choice(["BTC", "ETH", "DOGE"]),
        settlement_asset=rng.choice(["USDC", "USDC", "BTC"]),
        multiplier_minor=rng.choice([1, 100, 0, state.rules.multiplier_minor_max + 1]),
        expiry_ms=rng.choice([state.clock_ms + 10**6, state.clock_ms, -1]) if dated else None,
        strike_ticks=rng.choice([7_000_000, 0]) if option else None,
        option_type=rng.choice(list(OptionType)) if option and rng.random() < 0.9 else None,
    )


def _report(rng: random.Random, state: State) -> OraclePrice:
    """Return a price report near, or far from, the index: a spike, a replay, a new quorum."""
    index = state.prices["BTC"].price_ticks if "BTC" in state.prices else 6_000_000
    move = rng.choice([0, 1, -1, 10_000, -30_000, 49_999, 50_000, 50_001, -120_000, 400_000])
    last = max((r.timestamp_ms for r in state.reports.get("BTC", {}).values()), default=0)
    return OraclePrice(
        principal=rng.choice(state.rules.roles.oracles),
        underlying=rng.choice(["BTC", "BTC", "BTC", "ETH"]),
        price_ticks=max(index + index * move // 1_000_000, 0),
        timestamp_ms=last + rng.choice([-1_000, 0, 1_000, 1_000, 30_000, 90_000]),
    )


# Field -> the adversarial values one mutation may put there.
_MUTATIONS: Final[dict[str, tuple[object, ...]]] = {
    "principal": ("mallory", "operator", "venue", "alice"),
    "account": ("a1", "ghost", "b1"),
    "source_account": ("a1", "ghost"),
    "target_account": ("a1", "a2", "b1", "ghost"),
    "buyer": ("a1", "ghost", "c1"),
    "seller": ("a1", "ghost", "b1"),
    "asset": ("DOGE", "BTC", "USDC"),
    "instrument": ("NOPE", "BTC-PERP", "BTC-C-70000"),
    "trade_id": ("t0", "t1", "t2"),
    "underlying": ("BTC", "ETH", "DOGE"),
    "timestamp_ms": (-1, 0, 2**63, 2**63 - 1),
    "amount_minor": (0, -5, 1, VALUE_LIMIT - 1, VALUE_LIMIT, 10**15),
    "quantity_lots": (0, -1, 10**12, 10**12 + 1, 10**6),
    "price_ticks": (-1, 0, 1, 10**15, 10**15 + 1),
    "buyer_fee_rate_ppm": (-1, 10_000, 10_001),
    "seller_fee_rate_ppm": (-1, 10_000, 10_001),
}


def random_event(rng: random.Random, state: State, number: int) -> object:
    """Return an adversarial event: valid, or with one or two fields changed."""
    event = _valid_event(rng, state, number)
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        field = rng.choice([f for f in event.__slots__ if f in _MUTATIONS])  # type: ignore[attr-defined]
        event = attrs.evolve(event, **{field: rng.choice(_MUTATIONS[field])})  # type: ignore[misc]
    return event


def random_cases(
    rules: RuleSet, seed: int, states: int, events_per_state: int
) -> Iterator[tuple[State, object]]:
    """Yield (reachable state, event) pairs: each state is grown by the events accepted before."""
    rng = random.Random(seed)
    for _ in range(states):
        start = set_up(rules, _setup(rules))
        # Keep four accepted states in five, so walks also branch back.
        yield from walk(start, rng, events_per_state, random_event, lambda r: bool(r.randrange(5)))


@attrs.frozen
class Report:
    """What a differential run covered and every disagreement it found."""

    checked: dict[str, int]
    accepted: dict[str, int]
    rejected: dict[str, int]
    problems: list[str]


def _liquidation_setup(rules: RuleSet, rng: random.Random) -> list[object]:
    """Levered BTC-PERP longs and shorts against a deep counterparty and a funded keeper."""
    matcher = rules.roles.matchers[0]
    events = perpetual_market(rules, _PERPETUAL, "BTC")
    for name in ("deep", "keeper", "w1", "w2", "w3"):
        deposit = (
            10**13 if name in {"deep", "keeper"} else rng.choice([10**9, 11 * 10**8, 12 * 10**8])
        )
        events += [
            OpenAccount(principal=name, account=name),
            Deposit(principal=name, account=name, asset="USDC", amount_minor=deposit),
        ]
    for number, name in enumerate(("w1", "w2", "w3")):
        long = rng.random() < 0.5
        events.append(
            Trade(
                principal=matcher,
                trade_id=f"open{number}",
                buyer=name if long else "deep",
                seller="deep" if long else name,
                instrument=_PERPETUAL,
                quantity_lots=rng.choice([12, 14, 16]),
                price_ticks=6_000_000,
                buyer_fee_rate_ppm=0,
                seller_fee_rate_ppm=0,
            )
        )
    return events


def liquidation_cases(rules: RuleSet, seed: int, paths: int) -> Iterator[tuple[State, object]]:
    """Yield liquidation attempts along seeded price walks that ruin levered accounts."""
    rng = random.Random(seed)
    for _ in range(paths):
        state = genesis(rules)
        for event in _liquidation_setup(rules, rng):
            outcome = step(state, event)
            if isinstance(outcome, Accepted):
                state = outcome.state
        price, clock = 6_000_000, 1_000
        for _ in range(8):
            # Some moves exceed the 5 % band: the index then moves by the band, no further.
            price = (
                price
                * rng.choice([960_000, 970_000, 1_030_000, 1_040_000, 920_000, 1_090_000])
                // 1_000_000
            )
            clock += rng.choice([1_000, 1_000, 3_600_000])
            for oracle in rules.roles.oracles[:2]:
                event = OraclePrice(
                    principal=oracle, underlying="BTC", price_ticks=price, timestamp_ms=clock
                )
                yield state, event
                outcome = step(state, event)
                if isinstance(outcome, Accepted):
                    state = outcome.state
            operator = rng.choice([rules.roles.operator, rules.roles.operator, "mallory"])
            for event in (
                Funding(principal=operator, instrument=_PERPETUAL),
                VariationMargin(principal=operator, instrument=_PERPETUAL),
            ):
                yield state, event
                outcome = step(state, event)
                if isinstance(outcome, Accepted):
                    state = outcome.state
            for target in ("w1", "w2", "w3", rng.choice(["keeper", "ghost", "deep"])):
                liquidator = rng.choice(["keeper", "keeper", "keeper", target, "ghost", "w1"])
                event = Liquidate(
                    principal=rng.choice([liquidator, liquidator, "mallory"]),
                    account=target,
                    liquidator=liquidator,
                )
                yield state, event
                outcome = step(state, event)
                if isinstance(outcome, Accepted):
                    state = outcome.state


_FUTURE: Final = "BTC-FUT"
_EXPIRY_MS: Final = 100_000
_HOLDERS: Final = ("x1", "x2", "x3", "x4", "x5")


def _expiry_setup(rules: RuleSet, rng: random.Random) -> list[object]:
    """A dated future with two to five holders, some short of cash, some rich in BTC."""
    matcher = rules.roles.matchers[0]
    events = perpetual_market(rules, _PERPETUAL, "BTC")
    events.append(
        ListInstrument(
            principal=rules.roles.operator,
            instrument=_FUTURE,
            kind=InstrumentKind.FUTURE,
            underlying="BTC",
            settlement_asset="USDC",
            multiplier_minor=100,
            expiry_ms=_EXPIRY_MS,
        )
    )
    fund = rng.choice([0, 0, 10**6, 10**8, 10**11])
    if fund:
        events.append(
            FundInsurance(principal=rules.roles.operator, asset="USDC", amount_minor=fund)
        )
    names = _HOLDERS[: rng.randint(2, 5)]
    for name in names:
        events.append(OpenAccount(principal=name, account=name))
        cash = rng.choice([0, 10**6, 5 * 10**8, 10**9, 10**11])
        btc = rng.choice([0, 0, 10**6, 10**8])
        events += [
            Deposit(principal=name, account=name, asset=asset, amount_minor=amount)
            for asset, amount in (("USDC", cash), ("BTC", btc))
            if amount
        ]
    for number in range(rng.randint(1, 6)):
        buyer, seller = rng.sample(names, 2)
        events.append(
            Trade(
                principal=matcher,
                trade_id=f"x{number}",
                buyer=buyer,
                seller=seller,
                instrument=rng.choice([_FUTURE, _FUTURE, _PERPETUAL]),
                quantity_lots=rng.choice([1, 2, 5, 12, 40]),
                price_ticks=rng.choice([6_000_000, 5_990_000, 6_010_000]),
                buyer_fee_rate_ppm=rng.choice([0, 500]),
                seller_fee_rate_ppm=rng.choice([0, 333]),
            )
        )
    return events


def _expiry_attempt(rng: random.Random, rules: RuleSet) -> Expire:
    return Expire(
        principal=rng.choice([rules.roles.operator] * 4 + ["mallory"]),
        instrument=rng.choice([_FUTURE, _FUTURE, _FUTURE, _PERPETUAL, "NOPE"]),
    )


def _accepted(state: State, event: object) -> State:
    outcome = step(state, event)
    return outcome.state if isinstance(outcome, Accepted) else state


def expiry_cases(rules: RuleSet, seed: int, paths: int) -> Iterator[tuple[State, object]]:
    """Yield expiry attempts: before the expiry, then after a walk fixes the settlement price.

    The walk moves the index within the band per report, up to a fifth in all, so payers
    are sometimes short of cash (an advance, a debt, claims) and sometimes worth less than
    they owe (a true deficit the fund covers or the receivers share).
    """
    rng = random.Random(seed)
    oracles = rules.roles.oracles[:2]
    for _ in range(paths):
        state = genesis(rules)
        for event in _expiry_setup(rules, rng):
            outcome = step(state, event)
            if isinstance(outcome, Accepted):
                state = outcome.state
        yield state, _expiry_attempt(rng, rules)
        price, clock = 6_000_000, 1_000
        move = rng.choice([-45_000, -45_000, -30_000, -10_000, 0, 20_000, 45_000, 45_000])
        if rng.random() < 0.2:
            # The clock passes the expiry with no index yet: no settlement price is fixed.
            tick = Tick(principal=rules.roles.sequencer, timestamp_ms=_EXPIRY_MS)
            state = _accepted(state, tick)
            yield state, _expiry_attempt(rng, rules)
        while clock < _EXPIRY_MS or state.clock_ms > clock:
            clock = min(clock + rng.choice([10_000, 20_000]), _EXPIRY_MS + rng.choice([0, 1]))
            clock = max(clock, state.clock_ms + 1)
            price = price * (1_000_000 + move) // 1_000_000
            for oracle in oracles:
                event = OraclePrice(
                    principal=oracle, underlying="BTC", price_ticks=price, timestamp_ms=clock
                )
                outcome = step(state, event)
                if isinstance(outcome, Accepted):
                    state = outcome.state
            yield state, _expiry_attempt(rng, rules)
        for _ in range(4):
            event = _expiry_attempt(rng, rules)
            yield state, event
            outcome = step(state, event)
            if isinstance(outcome, Accepted):
                state = outcome.state


def run(
    rules: RuleSet, seed: int, states: int, events_per_state: int, paths: int | None = None
) -> Report:
    """Compare the model with ``step`` on every case drawn from ``seed``."""
    checked: dict[str, int] = {}
    accepted: dict[str, int] = {}
    rejected: dict[str, int] = {}
    problems: list[str] = []
    last: tuple[State, Ledger] | None = None
    cases = itertools.chain(
        random_cases(rules, seed, states, events_per_state),
        liquidation_cases(rules, seed, states if paths is None else paths),
        expiry_cases(rules, seed, 4 * (states if paths is None else paths)),
        waterfall_cases(rules, seed, 2 * (states if paths is None else paths)),
        venue_cases(rules, seed, states if paths is None else paths),
    )
    for state, event in cases:
        if last is None or last[0] is not state:
            last = (state, concrete_ledger(state))
        comparison = compare(state, event, last[1])
        problems += [f"{event}: {problem}" for problem in comparison.problems]
        name = type(event).__name__
        checked[name] = checked.get(name, 0) + 1
        outcome = comparison.outcome
        key = name if isinstance(outcome, Accepted) else outcome.reason.value
        if comparison.outside:
            key = f"{key} (outside the model)"
        tally = accepted if isinstance(outcome, Accepted) else rejected
        tally[key] = tally.get(key, 0) + 1
    return Report(checked, accepted, rejected, problems)


_BOOK_HOLDERS: Final = ("w1", "w2", "w3")
_WINNERS: Final = ("d1", "d2", "d3")


def _waterfall_setup(rules: RuleSet, rng: random.Random) -> list[object]:
    """Return multi-position books: levered accounts against three counterparties.

    Each is long or short a perpetual and a future, some hold BTC collateral; the fund is
    empty, thin or deep.
    """
    matcher = rules.roles.matchers[0]
    events = perpetual_market(rules, _PERPETUAL, "BTC")
    events.append(
        ListInstrument(
            principal=rules.roles.operator,
            instrument=_FUTURE,
            kind=InstrumentKind.FUTURE,
            underlying="BTC",
            settlement_asset="USDC",
            multiplier_minor=100,
            expiry_ms=10**12,
        )
    )
    fund = rng.choice([0, 0, 10**6, 10**8, 10**12])
    if fund:
        events.append(
            FundInsurance(principal=rules.roles.operator, asset="USDC", amount_minor=fund)
        )
    for name in ("keeper", "poor", *_WINNERS, *_BOOK_HOLDERS):
        cash = (
            10**7
            if name == "poor"
            else (
                10**13
                if name == "keeper" or name in _WINNERS
                else rng.choice([0, 10**8, 10**9, 11 * 10**8])
            )
        )
        btc = rng.choice([0, 0, 10**6, 10**7]) if name in _BOOK_HOLDERS else 0
        events.append(OpenAccount(principal=name, account=name))
        events += [
            Deposit(principal=name, account=name, asset=asset, amount_minor=amount)
            for asset, amount in (("USDC", cash), ("BTC", btc))
            if amount
        ]
    number = 0
    for name in _BOOK_HOLDERS:
        for instrument in rng.sample([_PERPETUAL, _FUTURE], rng.randint(1, 2)):
            long = rng.random() < 0.5
            for winner in rng.sample(_WINNERS, rng.randint(1, 3)):
                number += 1
                events.append(
                    Trade(
                        principal=matcher,
                        trade_id=f"book{number}",
                        buyer=name if long else winner,
                        seller=winner if long else name,
                        instrument=instrument,
                        quantity_lots=rng.choice([2, 4, 5, 7]),
                        price_ticks=rng.choice([6_000_000, 5_990_000, 6_010_000]),
                        buyer_fee_rate_ppm=0,
                        seller_fee_rate_ppm=0,
                    )
                )
    return events


def waterfall_cases(rules: RuleSet, seed: int, paths: int) -> Iterator[tuple[State, object]]:
    """Yield liquidations of multi-position books along walks that ruin some of them.

    The walk moves the index by up to the band per report, in one direction per path, so
    accounts pass maintenance, run out of cash and go bankrupt; the fund is sometimes empty,
    so a bankruptcy deleverages several winners; some accounts hold BTC to sell.
    """
    rng = random.Random(seed)
    oracles = rules.roles.oracles[:2]
    for _ in range(paths):
        state = genesis(rules)
        for event in _waterfall_setup(rules, rng):
            state = _accepted(state, event)
        price, clock = 6_000_000, 1_000
        direction = rng.choice([-1, 1])
        for _ in range(12):
            price = (
                price * (1_000_000 + direction * rng.choice([20_000, 45_000, 49_000])) // 1_000_000
            )
            clock += 1_000
            for oracle in oracles:
                state = _accepted(
                    state,
                    OraclePrice(
                        principal=oracle, underlying="BTC", price_ticks=price, timestamp_ms=clock
                    ),
                )
            if rng.random() < 0.6:
                continue  # No keeper this time: losses run on toward bankruptcy.
            for target in rng.sample(_BOOK_HOLDERS, 3):
                # A poor keeper cannot buy all the collateral: the rest goes in kind.
                liquidator = rng.choice(["keeper", "keeper", "poor", *_WINNERS, target])
                event = Liquidate(principal=liquidator, account=target, liquidator=liquidator)
                yield state, event
                state = _accepted(state, event)
