"""The JSON Schema of the event wire format, generated from the event field table.

``data/events.schema.json`` ships in the package; ``tests/test_wire.py`` fails if it
differs from ``event_schema()``, so the file, the decoder and the kernel's shape checks all
come from ``events.FIELD_KINDS`` and cannot drift apart.

JSON Schema cannot express every rule: ``"type": "integer"`` also admits ``1.0`` in most
validators, which the decoder rejects, and bounds that depend on the rule set (position and
price limits) are checked by the kernel. The schema is a contract for producers, the decoder
is the authority.
"""

from __future__ import annotations

from typing import Any, Final

from settlekernel.core.events import EVENT_TYPES, FIELD_KINDS, OPTIONAL_FIELDS, FieldKind
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.units import (
    ID_LENGTH_MAX,
    PPM,
    RULES_TOML_CHARS_MAX,
    TIMESTAMP_LIMIT_MS,
    VALUE_LIMIT,
    VOLATILITY_MAX_PPM,
)

SCHEMA_ID: Final = "https://settlekernel.dev/schema/events.schema.json"

_ID_SCHEMA: Final = {
    "type": "string",
    "pattern": "^[A-Za-z0-9][A-Za-z0-9._:\\-]{0,63}$",
    "maxLength": ID_LENGTH_MAX,
}


def _field_schema(kind: FieldKind) -> dict[str, Any]:
    if kind is FieldKind.ID:
        return dict(_ID_SCHEMA)
    if kind is FieldKind.RULES_TOML:
        return {"type": "string", "maxLength": RULES_TOML_CHARS_MAX}
    if kind is FieldKind.INSTRUMENT_KIND:
        return {"type": "string", "enum": [member.value for member in InstrumentKind]}
    if kind is FieldKind.OPTION_TYPE:
        return {"type": "string", "enum": [member.value for member in OptionType]}
    if kind is FieldKind.REPORT_PRICE:
        return {"type": "integer", "minimum": 0, "maximum": VALUE_LIMIT - 1}
    if kind is FieldKind.FEE_RATE:
        return {"type": "integer", "minimum": 0, "maximum": PPM}
    if kind is FieldKind.VOLATILITY:
        return {"type": "integer", "minimum": 0, "maximum": VOLATILITY_MAX_PPM}
    if kind in (FieldKind.TIMESTAMP, FieldKind.OPTIONAL_TIMESTAMP):
        return {"type": "integer", "minimum": 0, "maximum": TIMESTAMP_LIMIT_MS - 1}
    return {"type": "integer", "minimum": 1, "maximum": VALUE_LIMIT - 1}


def event_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of one event line."""
    variants = []
    for name, cls in EVENT_TYPES.items():
        properties: dict[str, Any] = {"type": {"const": name}}
        for field, kind in FIELD_KINDS[cls]:
            properties[field] = _field_schema(kind)
        required = ["type"] + [f for f, _ in FIELD_KINDS[cls] if f not in OPTIONAL_FIELDS[cls]]
        variants.append(
            {
                "title": cls.__name__,
                "description": (cls.__doc__ or "").strip().splitlines()[0],
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "settlekernel event (one JSON Lines record)",
        "oneOf": variants,
    }
