"""Checks shared by the transitions: shape, ranges and the margin guard (spec/30-transitions.md).

Each function returns a ``Rejected`` for the first rule the event breaks, in precedence
order, or ``None`` when the event passes. None of them raises on any field value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from settlekernel.events import EVENT_NAMES, FIELD_KINDS, Event, FieldKind
from settlekernel.margin_linear import compute_margin_pool
from settlekernel.model import InstrumentKind, OptionType
from settlekernel.outcomes import Rejected
from settlekernel.reasons import Reason
from settlekernel.units import TIMESTAMP_LIMIT_MS, VALUE_LIMIT, is_identifier

if TYPE_CHECKING:
    from immutables import Map

    from settlekernel.model import Account, IndexPrice, Instrument, RuleSet

_STRING_KINDS: Final = frozenset({FieldKind.ID})
_INT_KINDS: Final = frozenset(
    {
        FieldKind.AMOUNT,
        FieldKind.QUANTITY,
        FieldKind.PRICE,
        FieldKind.FEE_RATE,
        FieldKind.TIMESTAMP,
        FieldKind.MULTIPLIER,
    }
)
_OPTIONAL_INT_KINDS: Final = frozenset({FieldKind.OPTIONAL_TIMESTAMP, FieldKind.OPTIONAL_PRICE})


def _type_is_valid(kind: FieldKind, value: object) -> bool:
    if kind in _STRING_KINDS:
        return type(value) is str
    if kind in _INT_KINDS:
        # bool is an int subclass; an exact type check keeps True from meaning 1.
        return type(value) is int
    if kind in _OPTIONAL_INT_KINDS:
        return value is None or type(value) is int
    if kind is FieldKind.INSTRUMENT_KIND:
        return type(value) is InstrumentKind
    assert kind is FieldKind.OPTION_TYPE, kind
    return value is None or type(value) is OptionType


def check_shape(event: Event) -> Rejected | None:
    """Reject a field of the wrong type, then an identifier of the wrong form (SK-SHAPE-1,2)."""
    name = EVENT_NAMES[type(event)]
    fields = FIELD_KINDS[type(event)]
    for field, kind in fields:
        value = getattr(event, field)
        if not _type_is_valid(kind, value):
            return Rejected(
                Reason.FIELD_TYPE_INVALID,
                f"{name}.{field}: expected {_expected(kind)}, got {type(value).__name__}",
            )
    for field, kind in fields:
        value = getattr(event, field)
        if kind is FieldKind.ID and not is_identifier(value):
            return Rejected(
                Reason.ID_INVALID,
                f"{name}.{field}: {value[:80]!r} is not an identifier "
                "(1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit)",
            )
    return None


def _expected(kind: FieldKind) -> str:
    return {
        FieldKind.ID: "str",
        FieldKind.INSTRUMENT_KIND: "InstrumentKind",
        FieldKind.OPTION_TYPE: "OptionType or None",
        FieldKind.OPTIONAL_TIMESTAMP: "int or None",
        FieldKind.OPTIONAL_PRICE: "int or None",
    }.get(kind, "int")


# Range rules per kind: (low reason, high reason). Checked in precedence order of the low
# reason, so an event with two bad numbers always gets the same answer.
_RANGE_REASONS: Final = {
    FieldKind.AMOUNT: (Reason.AMOUNT_NOT_POSITIVE, Reason.AMOUNT_TOO_LARGE),
    FieldKind.QUANTITY: (Reason.QUANTITY_NOT_POSITIVE, Reason.QUANTITY_TOO_LARGE),
    FieldKind.PRICE: (Reason.PRICE_NOT_POSITIVE, Reason.PRICE_TOO_LARGE),
    FieldKind.OPTIONAL_PRICE: (Reason.PRICE_NOT_POSITIVE, Reason.PRICE_TOO_LARGE),
    FieldKind.FEE_RATE: (Reason.FEE_RATE_OUT_OF_RANGE, Reason.FEE_RATE_OUT_OF_RANGE),
    FieldKind.TIMESTAMP: (Reason.TIMESTAMP_OUT_OF_RANGE, Reason.TIMESTAMP_OUT_OF_RANGE),
    FieldKind.OPTIONAL_TIMESTAMP: (
        Reason.TIMESTAMP_OUT_OF_RANGE,
        Reason.TIMESTAMP_OUT_OF_RANGE,
    ),
}
_RANGED_FIELDS: Final = {
    cls: tuple(
        sorted(
            ((field, kind) for field, kind in fields if kind in _RANGE_REASONS),
            key=lambda item: _RANGE_REASONS[item[1]][0].precedence,
        )
    )
    for cls, fields in FIELD_KINDS.items()
}


def _bounds(kind: FieldKind, rules: RuleSet) -> tuple[int, int]:
    """Return the inclusive bounds of a kind under ``rules`` (SK-UNIT-1..3)."""
    if kind is FieldKind.AMOUNT:
        return 1, VALUE_LIMIT - 1
    if kind is FieldKind.QUANTITY:
        return 1, rules.position_lots_max
    if kind in (FieldKind.PRICE, FieldKind.OPTIONAL_PRICE):
        return 1, rules.price_ticks_max
    if kind is FieldKind.FEE_RATE:
        return 0, rules.fee_rate_max_ppm
    return 0, TIMESTAMP_LIMIT_MS - 1


def check_ranges(event: Event, rules: RuleSet) -> Rejected | None:
    """Reject the first number outside its documented bounds (SK-RANGE-1)."""
    name = EVENT_NAMES[type(event)]
    for field, kind in _RANGED_FIELDS[type(event)]:
        value = getattr(event, field)
        if value is None:
            continue
        low, high = _bounds(kind, rules)
        low_reason, high_reason = _RANGE_REASONS[kind]
        if value < low:
            return Rejected(low_reason, f"{name}.{field}: {value} is below {low}")
        if value > high:
            return Rejected(high_reason, f"{name}.{field}: {value} is above {high}")
    return None


def check_margin(
    account: Account,
    asset: str,
    *,
    instruments: Map[str, Instrument],
    prices: Map[str, IndexPrice],
    rules: RuleSet,
) -> Rejected | None:
    """Reject a would-be account that is below initial margin in ``asset`` (SK-MARGIN-2)."""
    if not account.positions:
        return None
    pool = compute_margin_pool(account, asset, instruments=instruments, prices=prices, rules=rules)
    if pool.is_sufficient:
        return None
    return Rejected(
        Reason.MARGIN_INSUFFICIENT,
        f"account {account.id}: equity {pool.equity_minor} {asset} below initial margin "
        f"{pool.requirement_minor} {asset}",
    )
