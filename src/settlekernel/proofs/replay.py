"""Counterexamples as events: realise a z3 model from genesis and replay it (SK-PROOF-5).

When a theorem fails, z3 returns a model: values for the event's fields and for the cells of
the pre-state the step reads. ``realise`` turns it into events from genesis: open the
accounts the model says exist with the owners it names, deposit the balances it gives, list
the instrument and post the prices a trade needs, then the violating event itself.
``replay`` runs them through the real ``step`` (with a planted fault active, if any) and
checks every invariant after every accepted event, so the violation a proof predicts is
shown on the code, not only on the model.

z3 may pick values the events cannot build (an owner that is not an identifier, a balance at
2**96). The search for a counterexample is therefore repeated inside a *realisable region*
(bounded amounts, fresh instruments, ample collateral where a margin check is consulted);
only if none exists there is the raw counterexample reported unrealised.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Final

import attrs
import z3

from settlekernel.core.events import (
    EVENT_NAMES,
    AuthorizeVenue,
    Deposit,
    Expire,
    FundInsurance,
    Liquidate,
    ListInstrument,
    OpenAccount,
    OraclePrice,
    RestrictVenue,
    RevokeVenue,
    Trade,
)
from settlekernel.core.kinds import InstrumentKind
from settlekernel.core.model import State
from settlekernel.core.outcomes import Accepted
from settlekernel.core.rules import DEFAULT_RULES, RuleSet
from settlekernel.core.units import FEE_ACCOUNT, is_identifier
from settlekernel.core.wire import encode_event
from settlekernel.kernel.dispatch import genesis, step
from settlekernel.kernel.invariants import check_invariants, check_step
from settlekernel.proofs.engine import as_python
from settlekernel.proofs.symbolic import NO_EXPIRY, Ledger

# The index the realiser posts for a trade, and the collateral it gives each trading account.
INDEX_TICKS: Final = 6_000_000
AMPLE_MINOR: Final = 10**11
AMOUNT_BOUND: Final = 10**13
_ACCOUNT_FIELDS: Final = ("account", "source_account", "target_account", "buyer", "seller")


@attrs.frozen
class Replay:
    """Events from genesis, what each did, and the first invariant violation seen."""

    events: tuple[object, ...]
    outcomes: tuple[str, ...]
    violation: str | None
    at: int | None

    @property
    def reproduced(self) -> bool:
        """Return whether the last event, the counterexample's, broke an invariant."""
        return self.at == len(self.events) - 1

    def jsonl(self) -> str:
        """Return the events as JSON Lines, one canonical event per line (spec/70-wire.md)."""
        return "".join(encode_event(event) + "\n" for event in self.events)  # type: ignore[arg-type]


def unchecked_genesis(rules: RuleSet) -> State:
    """Return genesis under ``rules`` even if they fail SK-RULES: replays of unsound rules.

    ``genesis`` refuses such rules; a replay that shows *why* a rule is unsound needs a
    kernel running on them anyway. Never used outside the proof tooling.
    """
    if not rules.problems():
        return genesis(rules)
    return attrs.evolve(genesis(DEFAULT_RULES), rules=rules)


def replay(
    rules: RuleSet,
    events: list[object],
    fault: AbstractContextManager[Any] | None = None,
) -> Replay:
    """Apply ``events`` from genesis; stop at the first invariant violation."""
    state = unchecked_genesis(rules)
    outcomes: list[str] = []
    with fault if fault is not None else nullcontext():
        for index, event in enumerate(events):
            outcome = step(state, event)
            if not isinstance(outcome, Accepted):
                outcomes.append(outcome.reason.value)
                continue
            outcomes.append("accepted")
            found = check_invariants(outcome.state) + check_step(state, event, outcome)
            if found:
                first = found[0]
                return Replay(
                    tuple(events),
                    tuple(outcomes),
                    f"{first.invariant.value}: {first.message}",
                    index,
                )
            state = outcome.state
    return Replay(tuple(events), tuple(outcomes), None, None)


class Names:
    """Map the strings z3 picked to identifiers, keeping equal strings equal (SK-ID-1)."""

    def __init__(self, reserved: tuple[str, ...]) -> None:
        """Keep ``reserved`` names (roles, assets) as they are."""
        self._map: dict[str, str] = {name: name for name in reserved}
        self._taken = set(reserved)

    def __call__(self, value: str, hint: str) -> str:
        """Return the identifier standing for ``value``."""
        if value not in self._map:
            name = value if is_identifier(value) and value not in self._taken else None
            number = 1
            while name is None or name in self._taken:
                name, number = f"{hint}{number}", number + 1
            self._map[value] = name
            self._taken.add(name)
        return self._map[value]


def _value(model: Any, term: Any) -> Any:
    return as_python(model.eval(term, model_completion=True))


def _reserved(rules: RuleSet) -> tuple[str, ...]:
    roles = rules.roles
    return (
        roles.operator,
        *roles.oracles,
        *roles.matchers,
        *(asset.symbol for asset in rules.assets),
        *(underlying.symbol for underlying in rules.underlyings),
    )


def _accounts(
    model: Any, pre: Ledger, event: Mapping[str, Any], asset: Any, names: Names
) -> Iterator[object]:
    """Open each named account the model says exists and deposit its balance of ``asset``."""
    seen: set[str] = set()
    symbol = str(_value(model, asset))
    for field in _ACCOUNT_FIELDS:
        if field not in event:
            continue
        raw = str(_value(model, event[field]))
        if raw in seen or not _value(model, z3.Select(pre.exists, event[field])):
            continue
        seen.add(raw)
        owner = names(str(_value(model, z3.Select(pre.owner, event[field]))), "owner")
        account = names(raw, "acct")
        yield OpenAccount(principal=owner, account=account)
        balance = int(_value(model, pre.bal(event[field], asset)))
        if balance > 0:
            yield Deposit(principal=owner, account=account, asset=symbol, amount_minor=balance)


def _event(cls: type, model: Any, event: Mapping[str, Any], names: Names) -> object:
    fields: dict[str, Any] = {}
    for field, term in event.items():
        value = _value(model, term)
        fields[field] = names(str(value), field[:4]) if isinstance(value, str) else value
    return cls(**fields)


def perpetual_market(
    rules: RuleSet, instrument: str, symbol: str | None = None, multiplier_minor: int = 100
) -> list[object]:
    """List a perpetual in the valuation asset and post a quorum of index prices.

    The underlying is ``symbol``, the rule set's first by default; the index is ``INDEX_TICKS``.
    """
    underlying = rules.underlyings[0] if symbol is None else rules.underlying_by_symbol[symbol]
    return [
        ListInstrument(
            principal=rules.roles.operator,
            instrument=instrument,
            kind=InstrumentKind.PERPETUAL,
            underlying=underlying.symbol,
            settlement_asset=rules.valuation_asset,
            multiplier_minor=multiplier_minor,
        ),
        *[
            OraclePrice(
                principal=oracle,
                underlying=underlying.symbol,
                price_ticks=INDEX_TICKS,
                timestamp_ms=1_000,
            )
            for oracle in rules.roles.oracles[: underlying.min_sources]
        ],
    ]


def realise(
    rules: RuleSet, cls: type, model: Any, pre: Ledger, event: Mapping[str, Any]
) -> list[object]:
    """Return events from genesis that build the model's pre-state cells, then its event."""
    names = Names(_reserved(rules))
    events: list[object] = []
    if cls is Trade:
        instrument = names(str(_value(model, event["instrument"])), "inst")
        multiplier = int(_value(model, z3.Select(pre.multiplier, event["instrument"])))
        events += perpetual_market(rules, instrument, multiplier_minor=multiplier)
        asset = z3.Select(pre.settles_in, event["instrument"])
    elif "asset" in event:
        asset = event["asset"]
    else:
        asset = z3.StringVal(rules.valuation_asset)
    events += _accounts(model, pre, event, asset, names)
    if cls is Trade:
        events += _grants(model, pre, event, names)
    events.append(_event(cls, model, event, names))
    return events


def realisable_tiers(
    rules: RuleSet, cls: type, pre: Ledger, event: Mapping[str, Any]
) -> list[list[Any]]:
    """Return the regions to search in turn, the narrowest (fastest to solve) first.

    A one-lot trade at the posted index has a constant notional, so its fees are linear in
    their rates and the search is quick even on a loaded machine; only if no counterexample
    lies there is the wider region searched.
    """
    base = realisable(rules, cls, pre, event)
    if cls is Trade:
        return [[*base, event["quantity_lots"] == 1], base]
    return [base]


def realisable(rules: RuleSet, cls: type, pre: Ledger, event: Mapping[str, Any]) -> list[Any]:
    """Return constraints that keep a counterexample inside what ``realise`` can build."""
    # Names need no constraint: ``Names`` maps whatever strings z3 picks to identifiers,
    # keeping equal strings equal; regular expressions here would only slow the search.
    facts: list[Any] = []
    for term in event.values():
        if term.sort() == z3.IntSort():
            facts += [term <= AMOUNT_BOUND, term >= -AMOUNT_BOUND]
    asset = z3.Select(pre.settles_in, event["instrument"]) if cls is Trade else event.get("asset")
    for field in _ACCOUNT_FIELDS:
        if field in event and asset is not None:
            account = event[field]
            facts.append(pre.bal(account, asset) <= AMOUNT_BOUND)
            if cls is Trade:
                facts += _trading_account(rules, pre, event, account, asset)
    if cls is Trade:
        facts += _fresh_perpetual(rules, pre, event)
    return facts


def _trading_account(
    rules: RuleSet, pre: Ledger, event: Mapping[str, Any], account: Any, asset: Any
) -> list[Any]:
    del rules
    return [
        z3.Select(pre.exists, account),
        pre.bal(account, asset) >= AMPLE_MINOR,
        pre.pos(event["instrument"], account) == 0,
        z3.Select(pre.position_count, account) == 0,
    ]


# The grants an owner can record (SK-VENUE-2), and "" for none recorded.
GRANT_VALUES: Final = ("", "full", "reduce_only", "none")
_GRANT_EVENTS: Final = {
    "full": AuthorizeVenue,
    "reduce_only": RestrictVenue,
    "none": RevokeVenue,
}


def _house_venue(rules: RuleSet, pre: Ledger, event: Mapping[str, Any]) -> list[Any]:
    """Return the trade's venue as genesis has it: the first house venue, with grants."""
    venue = event["principal"]
    facts = [
        venue == z3.StringVal(rules.roles.matchers[0]),
        z3.Select(pre.venue_status, venue) == z3.StringVal("active"),
        z3.Select(pre.venue_house, venue),
        z3.Select(pre.venue_fee_account, venue) == z3.StringVal(FEE_ACCOUNT),
        z3.Select(pre.venue_fee_max, venue) == rules.fee_rate_max_ppm,
    ]
    for field in ("buyer", "seller"):
        grant = pre.grant(event[field], venue)
        facts.append(z3.Or(*[grant == z3.StringVal(value) for value in GRANT_VALUES]))
    return facts


def _grants(model: Any, pre: Ledger, event: Mapping[str, Any], names: Names) -> list[object]:
    """Return the grant events the owners of the trade's accounts recorded (SK-VENUE-2)."""
    events: list[object] = []
    seen: set[str] = set()
    venue = names(str(_value(model, event["principal"])), "venue")
    for field in ("buyer", "seller"):
        raw = str(_value(model, event[field]))
        recorded = str(_value(model, pre.grant(event[field], event["principal"])))
        if raw in seen or recorded not in _GRANT_EVENTS:
            continue
        seen.add(raw)
        owner = names(str(_value(model, z3.Select(pre.owner, event[field]))), "owner")
        account = names(raw, "acct")
        events.append(_GRANT_EVENTS[recorded](principal=owner, account=account, venue=venue))
    return events


def _fresh_perpetual(rules: RuleSet, pre: Ledger, event: Mapping[str, Any]) -> list[Any]:
    instrument = event["instrument"]
    return [
        *_house_venue(rules, pre, event),
        z3.Select(pre.listed, instrument),
        z3.Select(pre.linear, instrument),
        z3.Select(pre.reference, instrument) == 0,
        z3.Select(pre.expiry, instrument) == NO_EXPIRY,
        z3.Select(pre.open_interest, instrument) == 0,
        z3.Select(pre.settles_in, instrument) == z3.StringVal(rules.valuation_asset),
        z3.Select(pre.multiplier, instrument) == 100,
        z3.Not(z3.Select(pre.trades, event["trade_id"])),
        event["price_ticks"] == INDEX_TICKS,
        event["quantity_lots"] <= 10,
    ]


def write_jsonl(path: Path, result: Replay) -> None:
    """Write a replay's events as JSON Lines, with a header comment-free first line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.jsonl(), encoding="utf-8")


def describe(result: Replay) -> str:
    """Return a one-paragraph account of a replay for the terminal and the audit report."""
    lines = [
        f"{index + 1}. {EVENT_NAMES.get(type(event), type(event).__name__)}: {outcome}"  # type: ignore[arg-type]
        for index, (event, outcome) in enumerate(zip(result.events, result.outcomes, strict=False))
    ]
    verdict = result.violation or "no invariant violation on replay"
    return "\n".join([*lines, verdict])


def realise_liquidation(rules: RuleSet) -> list[object]:
    """Return a crash from genesis that ends in a one-position rung liquidation.

    A liquidation counterexample names a rung the ladder chose, a consulted decision no
    event sets directly. So the replay builds the shape instead of z3's numbers: a levered
    long on a perpetual, the index falling by less than the band per update until the
    account is below maintenance, then a funded keeper liquidates it.
    """
    underlying = rules.underlyings[0]
    symbol, asset = underlying.symbol, rules.valuation_asset
    oracles = rules.roles.oracles[: underlying.min_sources]
    events = perpetual_market(rules, "perp")
    for name, amount in (("deep", AMPLE_MINOR), ("keeper", AMPLE_MINOR), ("weak", 10**9)):
        events += [
            OpenAccount(principal=name, account=name),
            Deposit(principal=name, account=name, asset=asset, amount_minor=amount),
        ]
    events.append(
        Trade(
            principal=rules.roles.matchers[0],
            trade_id="open",
            buyer="weak",
            seller="deep",
            instrument="perp",
            quantity_lots=14,
            price_ticks=INDEX_TICKS,
            buyer_fee_rate_ppm=0,
            seller_fee_rate_ppm=0,
        )
    )
    # Each fall stays inside the band, so the oracle stays valid and admits liquidation.
    fall = INDEX_TICKS * underlying.band_ppm // 2_000_000
    for number in range(1, 4):
        events += [
            OraclePrice(
                principal=o,
                underlying=symbol,
                price_ticks=INDEX_TICKS - number * fall,
                timestamp_ms=1_000 + number * 1_000,
            )
            for o in oracles
        ]
    events.append(Liquidate(principal="keeper", account="weak", liquidator="keeper"))
    return events


# The dated future the expiry replay settles, and when it expires.
EXPIRY_MS: Final = 10_000


def realise_expiry(rules: RuleSet) -> list[object]:
    """Return events from genesis that end in an expiry with a solvent payer short of cash.

    The payer holds collateral but no valuation asset and is long a dated future that
    falls, within the band, past its expiry; the first index at or after the expiry fixes
    the settlement price. An expiry counterexample names holders ranked by the recurrence
    of SK-PROOF-15, which no event sets directly, so the replay builds this shape, the one
    every expiry fault here needs (a payer short of cash), not z3's numbers.
    """
    underlying = rules.underlyings[0]
    symbol, asset = underlying.symbol, rules.valuation_asset
    oracles = rules.roles.oracles[: underlying.min_sources]
    collateral = next(a.symbol for a in rules.assets if a.symbol != asset)
    events: list[object] = [
        ListInstrument(
            principal=rules.roles.operator,
            instrument="fut",
            kind=InstrumentKind.FUTURE,
            underlying=symbol,
            settlement_asset=asset,
            multiplier_minor=100,
            expiry_ms=EXPIRY_MS,
        ),
        *[
            OraclePrice(principal=o, underlying=symbol, price_ticks=INDEX_TICKS, timestamp_ms=1_000)
            for o in oracles
        ],
        OpenAccount(principal="payer", account="payer"),
        Deposit(principal="payer", account="payer", asset=collateral, amount_minor=10**8),
        OpenAccount(principal="deep", account="deep"),
        Deposit(principal="deep", account="deep", asset=asset, amount_minor=AMPLE_MINOR),
        Trade(
            principal=rules.roles.matchers[0],
            trade_id="open",
            buyer="payer",
            seller="deep",
            instrument="fut",
            quantity_lots=1,
            price_ticks=INDEX_TICKS,
            buyer_fee_rate_ppm=0,
            seller_fee_rate_ppm=0,
        ),
    ]
    fall = INDEX_TICKS * underlying.band_ppm // 2_000_000
    # The index falls before the expiry; the first index at or after it fixes the price.
    events += [
        OraclePrice(principal=o, underlying=symbol, price_ticks=INDEX_TICKS - fall, timestamp_ms=t)
        for t in (EXPIRY_MS // 2, EXPIRY_MS)
        for o in oracles
    ]
    events.append(Expire(principal=rules.roles.operator, instrument="fut"))
    return events


def realise_bankruptcy(rules: RuleSet) -> list[object]:
    """Return a crash from genesis that ends in a bankruptcy the fund cannot cover: ADL.

    ``weak`` is long a perpetual with a little valuation cash and some collateral (to be
    sold at the discount); ``twin`` is long too (the side ADL must never touch); ``deep``
    and ``rich`` are short (the side it must). The fund holds a little. The index falls by
    half the band per update, so the oracle stays valid, until ``weak`` is worth less than
    nothing; then a funded keeper liquidates it. A liquidation counterexample names a plan
    and a ranking, consulted decisions no event sets directly, so the replay builds the
    shape every liquidation fault here needs, not z3's numbers.
    """
    underlying = rules.underlyings[0]
    symbol, asset = underlying.symbol, rules.valuation_asset
    oracles = rules.roles.oracles[: underlying.min_sources]
    collateral = next(
        a.symbol for a in rules.assets if a.symbol != asset and a.price_underlying == symbol
    )
    events = perpetual_market(rules, "perp")
    events.append(FundInsurance(principal=rules.roles.operator, asset=asset, amount_minor=10**6))
    deposits = {
        "deep": ((asset, AMPLE_MINOR),),
        "rich": ((asset, AMPLE_MINOR),),
        "keeper": ((asset, AMPLE_MINOR),),
        "twin": ((asset, AMPLE_MINOR),),
        "weak": ((asset, 10**9), (collateral, 10**5)),
    }
    for name, amounts in deposits.items():
        events.append(OpenAccount(principal=name, account=name))
        events += [
            Deposit(principal=name, account=name, asset=held, amount_minor=amount)
            for held, amount in amounts
        ]
    for number, (buyer, seller, lots) in enumerate(
        (("weak", "deep", 8), ("weak", "rich", 6), ("twin", "rich", 3))
    ):
        events.append(
            Trade(
                principal=rules.roles.matchers[0],
                trade_id=f"open{number}",
                buyer=buyer,
                seller=seller,
                instrument="perp",
                quantity_lots=lots,
                price_ticks=INDEX_TICKS,
                buyer_fee_rate_ppm=0,
                seller_fee_rate_ppm=0,
            )
        )
    fall = INDEX_TICKS * underlying.band_ppm // 2_000_000
    price = INDEX_TICKS
    for number in range(1, 9):
        price -= fall
        events += [
            OraclePrice(
                principal=o,
                underlying=symbol,
                price_ticks=price,
                timestamp_ms=1_000 + number * 1_000,
            )
            for o in oracles
        ]
    events.append(Liquidate(principal="keeper", account="weak", liquidator="keeper"))
    return events
