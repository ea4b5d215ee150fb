"""Checks shared by the transitions: shape and ranges (spec/30-transitions.md).

Each function returns a ``Rejected`` for the first rule the event breaks, in precedence
order, or ``None`` when the event passes. None of them raises on any field value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from settlekernel.core.events import EVENT_NAMES, FIELD_KINDS, Event, FieldKind
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.outcomes import Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.units import (
    TIMESTAMP_LIMIT_MS,
    VALUE_LIMIT,
    VOLATILITY_MAX_PPM,
    is_identifier,
)

if TYPE_CHECKING:
    from settlekernel.core.rules import RuleSet

# [SK-SHAPE-1] The exact types each field kind admits: int excludes bool (a subclass), and
# None only where the field is optional.
_ADMITTED_TYPES: Final[dict[FieldKind, tuple[type, ...]]] = {
    FieldKind.ID: (str,),
    FieldKind.AMOUNT: (int,),
    FieldKind.QUANTITY: (int,),
    FieldKind.PRICE: (int,),
    FieldKind.REPORT_PRICE: (int,),
    FieldKind.FEE_RATE: (int,),
    FieldKind.TIMESTAMP: (int,),
    FieldKind.VOLATILITY: (int,),
    FieldKind.MULTIPLIER: (int,),
    FieldKind.OPTIONAL_TIMESTAMP: (int, type(None)),
    FieldKind.OPTIONAL_PRICE: (int, type(None)),
    FieldKind.INSTRUMENT_KIND: (InstrumentKind,),
    FieldKind.OPTION_TYPE: (OptionType, type(None)),
    FieldKind.RULES_TOML: (str,),
}
_EXPECTED: Final[dict[FieldKind, str]] = {
    FieldKind.ID: "str",
    FieldKind.RULES_TOML: "str",
    FieldKind.INSTRUMENT_KIND: "InstrumentKind",
    FieldKind.OPTION_TYPE: "OptionType or None",
    FieldKind.OPTIONAL_TIMESTAMP: "int or None",
    FieldKind.OPTIONAL_PRICE: "int or None",
}
# Per event class, precomputed once: (field, admitted types, expected) and the id fields.
_TYPED_FIELDS: Final = {
    cls: tuple((field, _ADMITTED_TYPES[kind], _EXPECTED.get(kind, "int")) for field, kind in fields)
    for cls, fields in FIELD_KINDS.items()
}
_ID_FIELDS: Final = {
    cls: tuple(field for field, kind in fields if kind is FieldKind.ID)
    for cls, fields in FIELD_KINDS.items()
}


# [SK-SHAPE-1] An integer field holds an int of magnitude below 2**256: far above every
# bound of SK-UNIT, and small enough that no message ever formats more than 78 digits, so no
# message depends on Python's limit for converting integers to strings.
FIELD_INT_BITS_MAX: Final = 256
# What a slot never assigned reads as (an event built with ``object.__new__``).
UNSET: Final = object()


def describe_value(value: object) -> str:
    """Return a bounded, deterministic description of a field value; never raises."""
    if value is UNSET:
        return "<unset>"
    if type(value) is int:
        if value.bit_length() > FIELD_INT_BITS_MAX:
            return f"<an int of {value.bit_length()} bits>"
        return str(value)
    if type(value) is str:
        return repr(value[:80])
    if type(value) in {InstrumentKind, OptionType}:
        return repr(value.value)  # type: ignore[attr-defined]
    if value is None or type(value) is bool:
        return repr(value)
    return f"<{type(value).__name__}>"


def check_shape(event: Event) -> Rejected | None:
    """Reject an unset field, then a wrong type, then an identifier's form (SK-SHAPE-1,2)."""
    cls = type(event)
    for field, admitted, _ in _TYPED_FIELDS[cls]:
        value = getattr(event, field, UNSET)
        if type(value) not in admitted or (
            type(value) is int and value.bit_length() > FIELD_INT_BITS_MAX
        ):
            return _shape_rejection(event)
    for field in _ID_FIELDS[cls]:
        value = getattr(event, field)
        if not is_identifier(value):
            return Rejected(
                Reason.ID_INVALID,
                f"{EVENT_NAMES[cls]}.{field}: {value[:80]!r} is not an identifier "
                "(1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit)",
            )
    return None


def _shape_rejection(event: Event) -> Rejected:
    """Return the first unset field's rejection if any, else the first mistyped field's."""
    name = EVENT_NAMES[type(event)]
    fields = _TYPED_FIELDS[type(event)]
    values = [getattr(event, field, UNSET) for field, _, _ in fields]
    for (field, _, _), value in zip(fields, values, strict=True):
        if value is UNSET:
            return Rejected(Reason.FIELD_MISSING, f"{name}.{field} is not set")
    problem = "no problem found"  # Not reached: the caller found one.
    for (field, admitted, expected), value in zip(fields, values, strict=True):
        if type(value) not in admitted:
            problem = f"{field}: expected {expected}, got {type(value).__name__}"
            break
        if type(value) is int and value.bit_length() > FIELD_INT_BITS_MAX:
            bound = f"int of magnitude below 2**{FIELD_INT_BITS_MAX}"
            problem = f"{field}: expected {bound}, got {describe_value(value)[1:-1]}"
            break
    return Rejected(Reason.FIELD_TYPE_INVALID, f"{name}.{problem}")


# [SK-RANGE-1] Range rules per kind: the reasons below and above the bounds, the fixed low
# bound, and the high bound as a constant or as the name of a rule-set limit.
_RANGES: Final[dict[FieldKind, tuple[Reason, Reason, int, int | str]]] = {
    FieldKind.AMOUNT: (Reason.AMOUNT_NOT_POSITIVE, Reason.AMOUNT_TOO_LARGE, 1, VALUE_LIMIT - 1),
    FieldKind.QUANTITY: (
        Reason.QUANTITY_NOT_POSITIVE,
        Reason.QUANTITY_TOO_LARGE,
        1,
        "position_lots_max",
    ),
    FieldKind.PRICE: (Reason.PRICE_NOT_POSITIVE, Reason.PRICE_TOO_LARGE, 1, "price_ticks_max"),
    FieldKind.REPORT_PRICE: (
        Reason.PRICE_NOT_POSITIVE,
        Reason.PRICE_TOO_LARGE,
        0,
        "price_ticks_max",
    ),
    FieldKind.OPTIONAL_PRICE: (
        Reason.PRICE_NOT_POSITIVE,
        Reason.PRICE_TOO_LARGE,
        1,
        "price_ticks_max",
    ),
    FieldKind.FEE_RATE: (
        Reason.FEE_RATE_OUT_OF_RANGE,
        Reason.FEE_RATE_OUT_OF_RANGE,
        0,
        "fee_rate_max_ppm",
    ),
    FieldKind.VOLATILITY: (
        Reason.VOLATILITY_OUT_OF_RANGE,
        Reason.VOLATILITY_OUT_OF_RANGE,
        0,
        VOLATILITY_MAX_PPM,
    ),
    FieldKind.TIMESTAMP: (
        Reason.TIMESTAMP_OUT_OF_RANGE,
        Reason.TIMESTAMP_OUT_OF_RANGE,
        0,
        TIMESTAMP_LIMIT_MS - 1,
    ),
    FieldKind.OPTIONAL_TIMESTAMP: (
        Reason.TIMESTAMP_OUT_OF_RANGE,
        Reason.TIMESTAMP_OUT_OF_RANGE,
        0,
        TIMESTAMP_LIMIT_MS - 1,
    ),
}
# Per event class, the ranged fields in the precedence order of their low reason, so an
# event with two bad numbers always gets the same answer.
_RANGED_FIELDS: Final = {
    cls: tuple(
        sorted(
            ((field, *_RANGES[kind]) for field, kind in fields if kind in _RANGES),
            key=lambda item: item[1].precedence,
        )
    )
    for cls, fields in FIELD_KINDS.items()
}


def check_ranges(event: Event, rules: RuleSet) -> Rejected | None:
    """Reject the first number outside its documented bounds (SK-RANGE-1, SK-UNIT-1..3)."""
    for field, low_reason, high_reason, low, high in _RANGED_FIELDS[type(event)]:
        value = getattr(event, field)
        if value is None:
            continue
        if value < low:
            return Rejected(
                low_reason, f"{EVENT_NAMES[type(event)]}.{field}: {value} is below {low}"
            )
        limit = high if type(high) is int else getattr(rules, high)  # type: ignore[arg-type]
        if value > limit:
            return Rejected(
                high_reason, f"{EVENT_NAMES[type(event)]}.{field}: {value} is above {limit}"
            )
    return None
