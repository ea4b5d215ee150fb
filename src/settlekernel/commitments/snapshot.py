"""Snapshots: a canonical encoding of the whole state that decodes back to an equal state.

The encoding (SK-SNAPSHOT-1) is one JSON document with sorted keys and no spaces: the
rules in force (their TOML and digest), the pending rule change and the grace of the last
one applied (SK-GOV-6), the clock, custody, socialised losses and every leaf of the state root
(accounts, instruments, index prices, volatilities, reports, histories, settlement prices,
settled trades, venues and venue grants). Derived fields are not encoded: open interest,
holders and pending expiries are rebuilt from the positions and instruments, the root's
lattice is folded afresh and the margin cache starts empty (SK-SNAPSHOT-2). A decoded
snapshot is trusted only if its root equals the root stored beside it (SK-SNAPSHOT-3);
that check belongs to the caller, which knows the stored root.

Decoding is strict and total: a float, a missing or unknown field, a wrong type or rules
whose TOML does not parse, fails its checks or is not its digest is a ``SnapshotError``
naming what was wrong. The rules in force need not be the journal's genesis rules (a rule
change may have applied); the root, which commits to them, is the caller's check.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Final

from immutables import Map

from settlekernel.core.events import Trade
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.model import (
    EMPTY_BALANCES,
    Account,
    Commitment,
    Grace,
    Grant,
    IndexPrice,
    IndexSample,
    IndexVolatility,
    Instrument,
    Position,
    PremiumSample,
    RulesProposal,
    State,
    TopUp,
    Venue,
    VenueStatus,
    replace_state,
)
from settlekernel.core.oracle import settlement_key
from settlekernel.core.root import ZERO_LATTICE, all_leaf_keys, fold
from settlekernel.core.rules import RuleSet
from settlekernel.core.rules_toml import dump_rules_toml, parse_rules_toml
from settlekernel.core.wire import (
    INTEGER_DIGITS_MAX,
    integer_literal_too_long,
    json_nesting_exceeds,
)

# [Modified in v3] Venues and grants (SK-VENUE) are encoded too. [Modified in v4] The rules in
# force as TOML, the pending rule change and the grace (SK-GOV-6).
# [Modified in v5] The standing instructions (SK-INSTR-2).
SNAPSHOT_VERSION: Final = 5
# [SK-SNAPSHOT-2] A snapshot document nests 5 levels; one nested deeper than this is refused
# before parsing, so decoding does not depend on the recursion limit.
NESTING_DEPTH_MAX: Final = 16
_TRADE_FIELDS: Final = (
    "principal",
    "buyer",
    "seller",
    "instrument",
    "quantity_lots",
    "price_ticks",
    "buyer_fee_rate_ppm",
    "seller_fee_rate_ppm",
)
_TOP_LEVEL: Final = frozenset(
    {
        "version",
        "rules",
        "rules_digest",
        "proposal",
        "grace",
        "clock_ms",
        "custody",
        "socialized_loss",
        "accounts",
        "instruments",
        "prices",
        "volatilities",
        "reports",
        "history",
        "settlement_prices",
        "trades",
        "venues",
        "grants",
        "instructions",
    }
)


class SnapshotError(ValueError):
    """A snapshot that cannot be decoded into a state; the message says why."""


def encode_state(state: State) -> bytes:
    """Return the canonical snapshot encoding of ``state`` (SK-SNAPSHOT-1)."""
    document = {
        "version": SNAPSHOT_VERSION,
        "rules": dump_rules_toml(state.rules),
        "rules_digest": state.rules.digest.hex(),
        "proposal": _encode_proposal(state.proposal),
        "grace": _encode_grace(state.grace),
        "clock_ms": state.clock_ms,
        "custody": dict(state.custody),
        "socialized_loss": dict(state.socialized_loss),
        "accounts": {
            a.id: [
                a.owner,
                dict(a.balances),
                {i: [p.quantity_lots, p.settled_price_ticks] for i, p in a.positions.items()},
                [a.debt_minor, a.claim_minor],
            ]
            for a in state.accounts.values()
        },
        "instruments": {i.id: _encode_instrument(i) for i in state.instruments.values()},
        "prices": {u: [p.price_ticks, p.timestamp_ms] for u, p in state.prices.items()},
        "volatilities": {
            u: [v.volatility_ppm, v.timestamp_ms] for u, v in state.volatilities.items()
        },
        "reports": {
            u: {s: [r.price_ticks, r.timestamp_ms] for s, r in reports.items()}
            for u, reports in state.reports.items()
        },
        "history": {
            u: [
                [s.timestamp_ms, s.price_ticks, s.cumulative, s.low_ticks, s.high_ticks]
                for s in samples
            ]
            for u, samples in state.history.items()
        },
        "settlement_prices": dict(state.settlement_prices),
        "trades": {
            t: [getattr(trade, f) for f in _TRADE_FIELDS] for t, trade in state.trades.items()
        },
        "venues": {v.id: _encode_venue(v) for v in state.venues.values()},
        "grants": {key: grant.value for key, grant in state.grants.items()},
        "instructions": {
            a: [
                t.source,
                t.asset,
                t.threshold_ppm,
                t.amount_max_minor,
                t.interval_ms,
                t.used_minor,
                t.window_start_ms,
            ]
            for a, t in state.instructions.items()
        },
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _encode_proposal(proposal: RulesProposal | None) -> list[object] | None:
    if proposal is None:
        return None
    rules = dump_rules_toml(proposal.rules)
    return [proposal.id, rules, proposal.proposed_ms, proposal.effective_ms]


def _encode_grace(grace: Grace | None) -> list[object] | None:
    if grace is None:
        return None
    return [dump_rules_toml(grace.rules), grace.until_ms, sorted(grace.accounts)]


def _decode_rules(text: object, genesis: RuleSet) -> RuleSet:
    """Return the rule set a snapshot's TOML holds: the genesis rules when it is theirs."""
    rules = parse_rules_toml(_str(text))
    return genesis if rules.digest == genesis.digest else rules


def _decode_governance(
    document: dict[str, Any], genesis: RuleSet
) -> tuple[RuleSet, RulesProposal | None, Grace | None]:
    rules = _decode_rules(document["rules"], genesis)
    if document["rules_digest"] != rules.digest.hex():
        raise SnapshotError("snapshot's rules are not its rules digest")
    proposal = None
    if document["proposal"] is not None:
        proposal_id, text, proposed, effective = document["proposal"]
        proposal = RulesProposal(
            _str(proposal_id), _decode_rules(text, genesis), _int(proposed), _int(effective)
        )
    grace = None
    if document["grace"] is not None:
        text, until, accounts = document["grace"]
        grace = Grace(
            _decode_rules(text, genesis), _int(until), Map({_str(a): None for a in accounts})
        )
    return rules, proposal, grace


def _encode_instrument(instrument: Instrument) -> list[object]:
    return [
        instrument.kind.value,
        instrument.underlying,
        instrument.settlement_asset,
        instrument.multiplier_minor,
        instrument.expiry_ms,
        instrument.strike_ticks,
        None if instrument.option_type is None else instrument.option_type.value,
        instrument.reference_ticks,
        [[p.timestamp_ms, p.premium_ppm, p.lots] for p in instrument.premium_samples],
        instrument.last_funding_ms,
        instrument.funding_index_ticks,
        [instrument.premium_integral, instrument.premium_since_ms, instrument.premium_until_ms],
        instrument.settlement_ticks,
    ]


def _encode_venue(venue: Venue) -> list[object]:
    return [
        venue.status.value,
        int(venue.house),
        venue.fee_account,
        venue.open_interest_max_lots,
        venue.notional_max_minor,
        venue.fee_rate_max_ppm,
        dict(venue.open_lots),
    ]


def _decode_top_up(value: list[Any]) -> TopUp:
    source, asset, threshold, amount_max, interval, used, window_start = value
    return TopUp(
        _str(source),
        _str(asset),
        _int(threshold),
        _int(amount_max),
        _int(interval),
        _int(used),
        _int(window_start),
    )


def _decode_venue(venue_id: str, value: list[Any]) -> Venue:
    status, house, fee_account, open_interest_max, notional_max, fee_max, open_lots = value
    if type(house) is not int or house not in {0, 1}:
        raise SnapshotError(f"venue {venue_id!r:.40}: house must be 0 or 1")
    return Venue(
        _str(venue_id),
        VenueStatus(status),
        bool(house),
        _str(fee_account),
        _int(open_interest_max),
        _int(notional_max),
        _int(fee_max),
        _int_map(open_lots),
    )


def decode_state(data: bytes, rules: RuleSet) -> State:
    """Return the state ``data`` encodes, of a journal whose genesis rules are ``rules``.

    The state's rules are those the snapshot holds (SK-SNAPSHOT-2): ``rules`` themselves
    when they are the same rule set, so a snapshot of an unchanged journal decodes to an
    equal state.

    Raises:
        SnapshotError: ``data`` is not a snapshot.
    """
    try:
        return _build_state(_checked_header(_parsed(data)), rules)
    except SnapshotError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
        raise SnapshotError(f"snapshot does not decode: {error!s:.200}") from error


def _parsed(data: bytes) -> object:
    """Parse the snapshot's JSON with both bounds counted first (SK-SNAPSHOT-2)."""
    text = data.decode("ascii")  # encode_state writes ASCII only.
    if json_nesting_exceeds(text, NESTING_DEPTH_MAX):
        raise SnapshotError(f"snapshot is nested deeper than {NESTING_DEPTH_MAX} levels")
    return json.loads(text, parse_int=_bounded_int, parse_float=_no_float, parse_constant=_no_float)


def _bounded_int(text: str) -> int:
    """Convert an integer literal of at most 78 digits; refuse a longer one unconverted."""
    if integer_literal_too_long(text):
        digits = len(text) - text.startswith("-")
        raise SnapshotError(
            f"snapshot holds an integer literal of {digits} digits (at most {INTEGER_DIGITS_MAX})"
        )
    return int(text)


def _checked_header(document: object) -> dict[str, Any]:
    if not isinstance(document, dict) or set(document) != _TOP_LEVEL:
        raise SnapshotError("not a snapshot document")
    if document["version"] != SNAPSHOT_VERSION:
        raise SnapshotError(f"snapshot version {document['version']!r:.20} is not supported")
    return document


def _no_float(text: str) -> object:
    raise SnapshotError(f"snapshot holds the non-integer number {text[:40]}")


def _int(value: object) -> int:
    if type(value) is not int:
        raise SnapshotError(f"expected an integer, got {value!r:.40}")
    return value


def _optional_int(value: object) -> int | None:
    return None if value is None else _int(value)


def _str(value: object) -> str:
    if type(value) is not str:
        raise SnapshotError(f"expected a string, got {value!r:.40}")
    return value


def _int_map(value: dict[str, Any]) -> Map[str, int]:
    return Map({_str(key): _int(amount) for key, amount in value.items()})


def _build_state(document: dict[str, Any], genesis: RuleSet) -> State:
    rules, proposal, grace = _decode_governance(document, genesis)
    accounts = Map({_str(k): _decode_account(k, v) for k, v in document["accounts"].items()})
    instruments = Map(
        {_str(k): _decode_instrument(k, v) for k, v in document["instruments"].items()}
    )
    prices = Map(
        {_str(u): IndexPrice(_int(p), _int(t)) for u, (p, t) in document["prices"].items()}
    )
    volatilities = Map(
        {
            _str(u): IndexVolatility(_int(v), _int(t))
            for u, (v, t) in document["volatilities"].items()
        }
    )
    reports = Map(
        {
            _str(u): Map({_str(s): IndexPrice(_int(p), _int(t)) for s, (p, t) in by_source.items()})
            for u, by_source in document["reports"].items()
        }
    )
    history = Map(
        {
            _str(u): tuple(
                IndexSample(_int(t), _int(p), _int(c), _int(low), _int(high))
                for t, p, c, low, high in samples
            )
            for u, samples in document["history"].items()
        }
    )
    trades = Map({_str(t): _decode_trade(t, fields) for t, fields in document["trades"].items()})
    settlement_prices = _int_map(document["settlement_prices"])
    open_interest, holders = _position_indexes(accounts, instruments)
    state = State(
        rules=rules,
        accounts=accounts,
        instruments=instruments,
        prices=prices,
        volatilities=volatilities,
        reports=reports,
        history=history,
        settlement_prices=settlement_prices,
        trades=trades,
        custody=_int_map(document["custody"]),
        clock_ms=_int(document["clock_ms"]),
        socialized_loss=_int_map(document["socialized_loss"]),
        open_interest=open_interest,
        holders=holders,
        pending_expiries=_pending_expiries(instruments, settlement_prices),
        debtors=Map({a: None for a, x in accounts.items() if x.debt_minor}),
        claimants=Map({a: None for a, x in accounts.items() if x.claim_minor}),
        venues=Map({_str(k): _decode_venue(k, v) for k, v in document["venues"].items()}),
        grants=Map({_str(k): Grant(v) for k, v in document["grants"].items()}),
        proposal=proposal,
        grace=grace,
        instructions=Map({_str(a): _decode_top_up(v) for a, v in document["instructions"].items()}),
        commitment=Commitment(ZERO_LATTICE, Map(), Map()),
        margins=Map(),
    )
    return _refold(state)


def _decode_account(account_id: str, value: list[Any]) -> Account:
    owner, balances, positions, (debt, claim) = value
    return Account(
        _str(account_id),
        _str(owner),
        _int_map(balances) if balances else EMPTY_BALANCES,
        Map({_str(i): Position(_int(q), _int(p)) for i, (q, p) in positions.items()}),
        _int(debt),
        _int(claim),
    )


def _decode_instrument(instrument_id: str, value: list[Any]) -> Instrument:
    (kind, underlying, asset, multiplier, expiry, strike, option_type, reference, samples,
     last_funding, funding_index, integral, settlement) = value  # fmt: skip
    premium_integral, premium_since, premium_until = integral
    return Instrument(
        id=_str(instrument_id),
        kind=InstrumentKind(kind),
        underlying=_str(underlying),
        settlement_asset=_str(asset),
        multiplier_minor=_int(multiplier),
        expiry_ms=_optional_int(expiry),
        strike_ticks=_optional_int(strike),
        option_type=None if option_type is None else OptionType(option_type),
        reference_ticks=_int(reference),
        premium_samples=tuple(
            PremiumSample(_int(at_ms), _int(premium), _int(lots))
            for at_ms, premium, lots in samples
        ),
        last_funding_ms=_int(last_funding),
        funding_index_ticks=_int(funding_index),
        premium_integral=_int(premium_integral),
        premium_since_ms=_int(premium_since),
        premium_until_ms=_int(premium_until),
        settlement_ticks=_optional_int(settlement),
    )


def _decode_trade(trade_id: str, fields: list[Any]) -> Trade:
    if len(fields) != len(_TRADE_FIELDS):
        raise SnapshotError(f"trade {trade_id[:64]} has {len(fields)} fields")
    values = dict(zip(_TRADE_FIELDS, fields, strict=True))
    for name in ("principal", "buyer", "seller", "instrument"):
        _str(values[name])
    for name in _TRADE_FIELDS[4:]:
        _int(values[name])
    return Trade(trade_id=_str(trade_id), **values)


def _position_indexes(
    accounts: Map[str, Account], instruments: Map[str, Instrument]
) -> tuple[Map[str, int], Map[str, Map[str, None]]]:
    """Rebuild open interest (the longs) and holders per listed instrument (SK-SNAPSHOT-2)."""
    longs: dict[str, int] = dict.fromkeys(instruments, 0)
    holders: dict[str, dict[str, None]] = {instrument_id: {} for instrument_id in instruments}
    for account in accounts.values():
        for instrument_id, position in account.positions.items():
            if instrument_id not in instruments:
                raise SnapshotError(f"account {account.id} holds unlisted {instrument_id}")
            longs[instrument_id] += max(position.quantity_lots, 0)
            holders[instrument_id][account.id] = None
    return Map(longs), Map({key: Map(members) for key, members in holders.items()})


def _pending_expiries(
    instruments: Map[str, Instrument], settlement_prices: Map[str, int]
) -> Map[str, tuple[int, ...]]:
    """Rebuild, per underlying, the listed expiries whose price is not fixed yet, ascending."""
    pending: dict[str, set[int]] = defaultdict(set)
    for instrument in instruments.values():
        expiry_ms = instrument.expiry_ms
        if (
            expiry_ms is not None
            and settlement_key(instrument.underlying, expiry_ms) not in settlement_prices
        ):
            pending[instrument.underlying].add(expiry_ms)
    return Map({underlying: tuple(sorted(times)) for underlying, times in pending.items()})


def _refold(state: State) -> State:
    """Return ``state`` with every leaf folded into a fresh lattice (its root is computed)."""
    dirty: Map[str, None] = Map(dict.fromkeys(all_leaf_keys(state)))
    return fold(replace_state(state, commitment=Commitment(ZERO_LATTICE, Map(), dirty)))
