"""Symbolic ledgers and events: the state a transition reads and writes, as z3 arrays.

A ``Ledger`` holds unbounded arrays indexed by identifiers (z3 strings): which accounts
exist and who owns them, balances per account and asset, custody per asset, positions per
instrument and account, the open-interest index, the settled trade ids, and the instrument
and market fields the foundation transitions read. A proof works on a fully symbolic
ledger: any number of accounts, any values. The differential checks build a concrete one
from a real ``State`` and evaluate the same model on it (SK-PROOF-2).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Final

import attrs
import z3

from settlekernel.core.events import FIELD_KINDS, FieldKind
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.model import State
from settlekernel.core.oracle import mark_premium
from settlekernel.core.root import grant_key
from settlekernel.core.units import SYSTEM_ACCOUNTS
from settlekernel.kernel.transitions.funding import average_premium_ppm

STRING: Final = z3.StringSort()
INT: Final = z3.IntSort()
BOOL: Final = z3.BoolSort()
# An expiry of -1 stands for "never" (a perpetual).
NO_EXPIRY: Final = -1

TIMES: Final = z3.Function("times", INT, INT, INT)


def product_axioms() -> list[Any]:
    """Return what a proof knows of ``times``: the sign rules of multiplication and zero."""
    x, y = z3.Ints("times.x times.y")
    product = TIMES(x, y)
    rules = [
        z3.Implies(z3.Or(x == 0, y == 0), product == 0),
        z3.Implies(z3.And(x > 0, y > 0), product > 0),
        z3.Implies(z3.And(x < 0, y < 0), product > 0),
        z3.Implies(z3.And(x > 0, y < 0), product < 0),
        z3.Implies(z3.And(x < 0, y > 0), product < 0),
    ]
    return [z3.ForAll([x, y], rule, patterns=[product]) for rule in rules]


def product_is_multiplication() -> list[Any]:
    """Return ``times(x, y) == x * y``: what a counterexample must satisfy to be replayed.

    A proof knows only the signs of ``times``; a counterexample that is realised as events
    meets the kernel's real products, so the search for one adds this (SK-PROOF-5).
    """
    x, y = z3.Ints("times.x times.y")
    return [z3.ForAll([x, y], TIMES(x, y) == x * y, patterns=[TIMES(x, y)])]


# Field name -> (domain sorts..., range sort); a nested array is account-major or
# instrument-major as its name says.
_FIELDS: Final[dict[str, tuple[Any, ...]]] = {
    "exists": (STRING, BOOL),
    "owner": (STRING, STRING),
    "balance": (STRING, z3.ArraySort(STRING, INT)),
    "custody": (STRING, INT),
    "positions": (STRING, z3.ArraySort(STRING, INT)),
    "position_count": (STRING, INT),
    "open_interest": (STRING, INT),
    "trades": (STRING, BOOL),
    "listed": (STRING, BOOL),
    "linear": (STRING, BOOL),
    "settles_in": (STRING, STRING),
    "underlying": (STRING, STRING),
    "multiplier": (STRING, INT),
    "reference": (STRING, INT),
    "expiry": (STRING, INT),
    "settled": (STRING, BOOL),
    "has_price": (STRING, BOOL),
    "has_volatility": (STRING, BOOL),
    "index": (STRING, INT),
    "premium": (STRING, INT),
    "funding_premium": (STRING, INT),
    "perpetual": (STRING, BOOL),
    "last_funding": (STRING, INT),
    "last_report": (STRING, z3.ArraySort(STRING, INT)),
    "volatility": (STRING, INT),
    "volatility_time": (STRING, INT),
    # [New for Expire] An account's claim less its debt on the fund (SK-DEBT-1), the
    # socialised loss per asset, and an option's strike and side.
    "claim_net": (STRING, INT),
    "socialised": (STRING, INT),
    "strike": (STRING, INT),
    "call": (STRING, BOOL),
    # [New for the venue events] Per venue (SK-VENUE-1): its status ("" when it was never a
    # venue), whether it is a house venue, its fee account, its limits and, per instrument,
    # the open interest its trades added (SK-VENUE-4); per account and venue the owner's
    # recorded grant ("" when none is recorded: the venue's default applies, SK-VENUE-2).
    "venue_status": (STRING, STRING),
    "venue_house": (STRING, BOOL),
    "venue_fee_account": (STRING, STRING),
    "venue_fee_max": (STRING, INT),
    "venue_oi_max": (STRING, INT),
    "venue_notional_max": (STRING, INT),
    "venue_open_lots": (STRING, z3.ArraySort(STRING, INT)),
    "grants": (STRING, z3.ArraySort(STRING, STRING)),
}


@attrs.frozen
class Ledger:
    """The modelled part of a kernel state. Every field but the counts is a z3 array."""

    exists: Any
    owner: Any
    balance: Any
    custody: Any
    positions: Any
    position_count: Any
    open_interest: Any
    trades: Any
    listed: Any
    linear: Any
    settles_in: Any
    underlying: Any
    multiplier: Any
    reference: Any
    expiry: Any
    settled: Any
    has_price: Any
    has_volatility: Any
    index: Any
    premium: Any
    # Funding's time-averaged premium for a charge now (SK-FUNDING-2): consulted.
    funding_premium: Any
    perpetual: Any
    last_funding: Any
    last_report: Any
    volatility: Any
    volatility_time: Any
    claim_net: Any
    socialised: Any
    strike: Any
    call: Any
    venue_status: Any
    venue_house: Any
    venue_fee_account: Any
    venue_fee_max: Any
    venue_oi_max: Any
    venue_notional_max: Any
    venue_open_lots: Any
    grants: Any
    account_count: Any
    instrument_count: Any
    clock: Any
    # The accounts of a concrete ledger; None for a symbolic one, whose accounts are any.
    universe: tuple[str, ...] | None = None
    # [New for Liquidate] The instruments of a concrete ledger, in id order; None if symbolic.
    instruments: tuple[str, ...] | None = None

    def mul(self, *factors: Any) -> Any:
        """Return the product of ``factors``: exact in a concrete ledger, abstract in a proof.

        Products of symbolic amounts are nonlinear, and z3's nonlinear search is both
        incomplete and sensitive to everything else in its context (SK-PROOF-12). In a
        proof a product is ``times(x, y)``, an uninterpreted function whose only known
        properties are its signs (``PRODUCT_AXIOMS``): every claim here needs no more,
        since each product is computed once and used everywhere it appears.
        """
        product = factors[0]
        for factor in factors[1:]:
            product = product * factor if self.universe is not None else TIMES(product, factor)
        return product

    def every_account(self, predicate: Callable[[Any], Any]) -> Any:
        """Return ``predicate`` of every account: a quantifier, or a conjunction if concrete."""
        if self.universe is not None:
            return z3.And(z3.BoolVal(True), *[predicate(z3.StringVal(a)) for a in self.universe])
        account = z3.String("every.account")
        return z3.ForAll([account], predicate(account))

    def bal(self, account: Any, asset: Any) -> Any:
        """Return the balance of ``asset`` in ``account``."""
        return z3.Select(z3.Select(self.balance, account), asset)

    def grant(self, account: Any, venue: Any) -> Any:
        """Return the grant recorded for ``venue`` on ``account`` ("" when none is)."""
        return z3.Select(z3.Select(self.grants, account), venue)

    def pos(self, instrument: Any, account: Any) -> Any:
        """Return ``account``'s signed position in ``instrument``."""
        return z3.Select(z3.Select(self.positions, instrument), account)

    def credit(self, account: Any, asset: Any, amount: Any) -> Ledger:
        """Return the ledger with ``amount`` added to one balance (negative debits)."""
        row = z3.Select(self.balance, account)
        row = z3.Store(row, asset, z3.Select(row, asset) + amount)
        return attrs.evolve(self, balance=z3.Store(self.balance, account, row))


def symbolic_ledger(prefix: str) -> Ledger:
    """Return a ledger whose every field is a fresh z3 constant named ``prefix.field``."""
    arrays = {
        name: z3.Array(f"{prefix}.{name}", domain, value)
        for name, (domain, value) in _FIELDS.items()
    }
    return Ledger(
        **arrays,
        account_count=z3.Int(f"{prefix}.account_count"),
        instrument_count=z3.Int(f"{prefix}.instrument_count"),
        clock=z3.Int(f"{prefix}.clock"),
    )


def _array(domain: Any, default: Any, entries: dict[str, Any]) -> Any:
    array = z3.K(domain, default)
    for key, value in sorted(entries.items()):
        array = z3.Store(array, z3.StringVal(key), value)
    return array


def _nested(rows: dict[str, dict[str, int]]) -> Any:
    empty = z3.K(STRING, z3.IntVal(0))
    return _array(
        STRING,
        empty,
        {
            key: _array(STRING, z3.IntVal(0), {k: z3.IntVal(v) for k, v in row.items()})
            for key, row in rows.items()
        },
    )


def _report_times(state: State) -> Any:
    """Return underlying -> source -> timestamp of its last report (-1: never reported)."""
    never = z3.K(STRING, z3.IntVal(-1))
    rows = {
        underlying: _array(
            STRING, z3.IntVal(-1), {s: z3.IntVal(r.timestamp_ms) for s, r in reports.items()}
        )
        for underlying, reports in state.reports.items()
    }
    return _array(STRING, never, rows)


def _market_fields(state: State, per_instrument: Any) -> dict[str, Any]:
    """Return the ledger's market arrays: index, volatility, premiums, funding, reports."""
    return {
        "has_price": _array(STRING, z3.BoolVal(False), {u: z3.BoolVal(True) for u in state.prices}),
        "has_volatility": _array(
            STRING, z3.BoolVal(False), {u: z3.BoolVal(True) for u in state.volatilities}
        ),
        "index": _array(
            STRING, z3.IntVal(0), {u: z3.IntVal(p.price_ticks) for u, p in state.prices.items()}
        ),
        "premium": per_instrument(lambda x: z3.IntVal(mark_premium(state, x)), z3.IntVal(0)),
        "funding_premium": per_instrument(
            lambda x: z3.IntVal(average_premium_ppm(state, x)), z3.IntVal(0)
        ),
        "perpetual": per_instrument(
            lambda x: z3.BoolVal(x.kind is InstrumentKind.PERPETUAL), z3.BoolVal(False)
        ),
        "last_funding": per_instrument(lambda x: z3.IntVal(x.last_funding_ms), z3.IntVal(0)),
        "last_report": _report_times(state),
        "volatility": _array(
            STRING,
            z3.IntVal(0),
            {u: z3.IntVal(v.volatility_ppm) for u, v in state.volatilities.items()},
        ),
        "volatility_time": _array(
            STRING,
            z3.IntVal(-1),
            {u: z3.IntVal(v.timestamp_ms) for u, v in state.volatilities.items()},
        ),
    }


def _venue_fields(state: State) -> dict[str, Any]:
    """Return the ledger's venue arrays and grants from a real state (SK-VENUE)."""
    venues = state.venues

    def per_venue(read: Any, default: Any) -> Any:
        return _array(STRING, default, {v: read(x) for v, x in venues.items()})

    grants: dict[str, Any] = {}
    for account_id in state.accounts:
        row = {
            venue_id: z3.StringVal(state.grants[grant_key(account_id, venue_id)].value)
            for venue_id in venues
            if grant_key(account_id, venue_id) in state.grants
        }
        if row:
            grants[account_id] = _array(STRING, z3.StringVal(""), row)
    return {
        "venue_status": per_venue(lambda x: z3.StringVal(x.status.value), z3.StringVal("")),
        "venue_house": per_venue(lambda x: z3.BoolVal(x.house), z3.BoolVal(False)),
        "venue_fee_account": per_venue(lambda x: z3.StringVal(x.fee_account), z3.StringVal("")),
        "venue_fee_max": per_venue(lambda x: z3.IntVal(x.fee_rate_max_ppm), z3.IntVal(0)),
        "venue_oi_max": per_venue(lambda x: z3.IntVal(x.open_interest_max_lots), z3.IntVal(0)),
        "venue_notional_max": per_venue(lambda x: z3.IntVal(x.notional_max_minor), z3.IntVal(0)),
        "venue_open_lots": _nested({v: dict(x.open_lots) for v, x in venues.items()}),
        "grants": _array(STRING, z3.K(STRING, z3.StringVal("")), grants),
    }


def concrete_ledger(state: State) -> Ledger:
    """Return the ledger of a real state: every array is a constant with stores."""
    accounts = state.accounts
    instruments = state.instruments
    positions: dict[str, dict[str, int]] = {i: {} for i in instruments}
    for account in accounts.values():
        for instrument_id, position in account.positions.items():
            positions[instrument_id][account.id] = position.quantity_lots

    def per_instrument(read: Any, default: Any) -> Any:
        return _array(STRING, default, {i: read(x) for i, x in instruments.items()})

    return Ledger(
        exists=_array(STRING, z3.BoolVal(False), {a: z3.BoolVal(True) for a in accounts}),
        owner=_array(
            STRING, z3.StringVal(""), {a: z3.StringVal(x.owner) for a, x in accounts.items()}
        ),
        balance=_nested({a: dict(x.balances) for a, x in accounts.items()}),
        custody=_array(STRING, z3.IntVal(0), {k: z3.IntVal(v) for k, v in state.custody.items()}),
        positions=_nested(positions),
        position_count=_array(
            STRING, z3.IntVal(0), {a: z3.IntVal(len(x.positions)) for a, x in accounts.items()}
        ),
        open_interest=_array(
            STRING, z3.IntVal(0), {k: z3.IntVal(v) for k, v in state.open_interest.items()}
        ),
        trades=_array(STRING, z3.BoolVal(False), {t: z3.BoolVal(True) for t in state.trades}),
        listed=per_instrument(lambda _: z3.BoolVal(True), z3.BoolVal(False)),
        linear=per_instrument(lambda x: z3.BoolVal(x.is_linear), z3.BoolVal(False)),
        settles_in=per_instrument(lambda x: z3.StringVal(x.settlement_asset), z3.StringVal("")),
        underlying=per_instrument(lambda x: z3.StringVal(x.underlying), z3.StringVal("")),
        multiplier=per_instrument(lambda x: z3.IntVal(x.multiplier_minor), z3.IntVal(0)),
        reference=per_instrument(lambda x: z3.IntVal(x.reference_ticks), z3.IntVal(0)),
        expiry=per_instrument(
            lambda x: z3.IntVal(NO_EXPIRY if x.expiry_ms is None else x.expiry_ms),
            z3.IntVal(NO_EXPIRY),
        ),
        settled=per_instrument(
            lambda x: z3.BoolVal(x.settlement_ticks is not None), z3.BoolVal(False)
        ),
        **_market_fields(state, per_instrument),
        claim_net=_array(
            STRING,
            z3.IntVal(0),
            {a: z3.IntVal(x.claim_minor - x.debt_minor) for a, x in accounts.items()},
        ),
        socialised=_array(
            STRING, z3.IntVal(0), {k: z3.IntVal(v) for k, v in state.socialized_loss.items()}
        ),
        strike=per_instrument(lambda x: z3.IntVal(x.strike_ticks or 0), z3.IntVal(0)),
        call=per_instrument(
            lambda x: z3.BoolVal(x.option_type is OptionType.CALL), z3.BoolVal(False)
        ),
        **_venue_fields(state),
        account_count=z3.IntVal(len(accounts) - len(SYSTEM_ACCOUNTS)),
        instrument_count=z3.IntVal(len(instruments)),
        clock=z3.IntVal(state.clock_ms),
        universe=tuple(sorted(accounts)),
        instruments=tuple(sorted(instruments)),
    )


# The sort of each event field kind the foundation models read.
_KIND_SORTS: Final = {
    FieldKind.ID: STRING,
    FieldKind.AMOUNT: INT,
    FieldKind.QUANTITY: INT,
    FieldKind.PRICE: INT,
    FieldKind.REPORT_PRICE: INT,
    FieldKind.TIMESTAMP: INT,
    FieldKind.FEE_RATE: INT,
    FieldKind.VOLATILITY: INT,
    FieldKind.MULTIPLIER: INT,
    FieldKind.OPTIONAL_TIMESTAMP: INT,
    FieldKind.OPTIONAL_PRICE: INT,
    FieldKind.INSTRUMENT_KIND: STRING,
    FieldKind.OPTION_TYPE: STRING,
}


# Optional fields carry a presence flag under ``<field>?``; enums are their string values.
_OPTIONAL: Final = (FieldKind.OPTIONAL_TIMESTAMP, FieldKind.OPTIONAL_PRICE)


def symbolic_event(cls: type, prefix: str) -> dict[str, Any]:
    """Return a fresh z3 constant per field of event class ``cls`` (and presence flags)."""
    fields: dict[str, Any] = {}
    for field, kind in FIELD_KINDS[cls]:
        fields[field] = z3.Const(f"{prefix}.{field}", _KIND_SORTS[kind])
        if kind in _OPTIONAL:
            fields[f"{field}?"] = z3.Bool(f"{prefix}.{field}?")
    return fields


def concrete_event(event: object) -> dict[str, Any]:
    """Return the z3 literals of a real event's fields."""
    values: dict[str, Any] = {}
    for field, kind in FIELD_KINDS[type(event)]:  # type: ignore[index]  # a modelled event
        value = getattr(event, field)
        if kind in _OPTIONAL:
            values[f"{field}?"] = z3.BoolVal(value is not None)
            value = 0 if value is None else value
        elif isinstance(value, enum.Enum) or value is None:
            value = "" if value is None else value.value
        values[field] = z3.StringVal(value) if _KIND_SORTS[kind] is STRING else z3.IntVal(value)
    return values


def is_user_id(identifier: Any) -> Any:
    """Return the shape rule every id in an event satisfies: not a system name (SK-ID-2)."""
    return z3.And(
        z3.Length(identifier) >= 1,
        z3.Length(identifier) <= 64,
        z3.Not(z3.PrefixOf(z3.StringVal("@"), identifier)),
    )
