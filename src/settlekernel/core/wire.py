"""The JSON Lines wire format of events (spec/70-wire.md).

One JSON object per line, with a ``"type"`` field naming the event in snake_case and the
event's fields by name. Numbers are JSON integers (any size); enum fields are their string
values; an optional field is omitted rather than null. Decoding is strict: invalid JSON, a
duplicate key, a float, a numeric string, a boolean where a number belongs, an unknown or a
missing field is a ``Rejected`` whose message names the line and the field. Decoding never
raises.

``encode_event`` writes the canonical form: sorted keys, no spaces. It is the byte string
the journal hashes.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

import attrs

from settlekernel.core.events import (
    EVENT_NAMES,
    EVENT_TYPES,
    FIELD_KINDS,
    OPTIONAL_FIELDS,
    Event,
    FieldKind,
)
from settlekernel.core.guards import UNSET, check_shape, describe_value
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.outcomes import Rejected
from settlekernel.core.reasons import Reason

# [SK-WIRE-2] A line longer than this is rejected before parsing: every input is bounded.
LINE_BYTES_MAX: Final = 16_384
# [SK-WIRE-2] A line nested deeper than this (the event object is level 1) is rejected before
# parsing. The bound is counted here, not left to the parser's recursion, so the answer does
# not depend on the recursion limit or on how deep the caller's stack already is.
NESTING_DEPTH_MAX: Final = 32
# [SK-WIRE-2] An integer literal of more digits than this is never converted to an int (no
# field admits it: SK-SHAPE-1 bounds integers below 2**256, 78 digits), so the answer does not
# depend on Python's limit on string-to-integer conversion (PYTHONINTMAXSTRDIGITS).
INTEGER_DIGITS_MAX: Final = 78
# The characters that open or close a string or a level, or escape inside a string.
_STRUCTURE: Final = re.compile(r'[\[\]{}"\\]')

_ENUM_KINDS: Final[dict[FieldKind, type[InstrumentKind | OptionType]]] = {
    FieldKind.INSTRUMENT_KIND: InstrumentKind,
    FieldKind.OPTION_TYPE: OptionType,
}


class _NonInteger:
    """A JSON float or constant (NaN, Infinity), kept so the error can name its field."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _LongInteger:
    """An integer literal beyond ``INTEGER_DIGITS_MAX`` digits, kept unconverted."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text) - text.startswith("-")

    def __repr__(self) -> str:
        return f"<an integer literal of {self.digits} digits>"


def _parse_int(text: str) -> int | _LongInteger:
    if integer_literal_too_long(text):
        return _LongInteger(text)
    return int(text)


def integer_literal_too_long(text: str) -> bool:
    """Return whether a JSON integer literal has more than ``INTEGER_DIGITS_MAX`` digits."""
    return len(text) - text.startswith("-") > INTEGER_DIGITS_MAX


def json_nesting_exceeds(line: str, depth_max: int = NESTING_DEPTH_MAX) -> bool:
    """Return whether the JSON text ``line``'s brackets outside strings nest past ``depth_max``.

    One pass over the structural characters, so linear in the line's length, and no
    recursion: the answer does not depend on the stack (SK-WIRE-5).
    """
    if line.count("[") + line.count("{") <= depth_max:
        return False
    depth, in_string, escaped_at = 0, False, -1
    for match in _STRUCTURE.finditer(line):
        at, char = match.start(), match.group()
        if at == escaped_at:
            continue
        if in_string:
            if char == "\\":
                escaped_at = at + 1
            in_string = char != '"'
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > depth_max:
                return True
        elif char in "]}":
            depth -= 1
    return False


class _DuplicateKeyError(ValueError):
    pass


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(key)
        result[key] = value
    return result


def encode_event(event: Event) -> str:
    """Return the canonical JSON line of an event (no trailing newline)."""
    document: dict[str, Any] = {"type": EVENT_NAMES[type(event)]}
    for field in attrs.fields(type(event)):
        value = getattr(event, field.name)
        if value is None:
            continue
        document[field.name] = (
            value.value if isinstance(value, InstrumentKind | OptionType) else value
        )
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def describe_event(event: object) -> str:
    """Return the canonical line of a well-formed event, else a bounded description.

    An event that fails its shape checks is described field by field (``describe_value``:
    unset slots, huge integers and foreign objects by kind, never by ``repr``), anything else
    by its type alone, so the description is bounded, never raises and depends on no
    interpreter limit.
    """
    cls = type(event)
    if cls not in EVENT_NAMES:
        return f"<not an event: {cls.__name__}>"
    if check_shape(event) is None:  # type: ignore[arg-type]
        return encode_event(event)  # type: ignore[arg-type]
    fields = ", ".join(
        f"{name}={describe_value(getattr(event, name, UNSET))}" for name, _ in FIELD_KINDS[cls]
    )
    return f"{cls.__name__}({fields})"


def decode_event(line: str, line_number: int = 1) -> Event | Rejected:
    """Decode one JSON line into an event, or a rejection naming the line and the field."""
    where = f"line {line_number}"
    if len(line) > LINE_BYTES_MAX:
        return Rejected(Reason.JSON_INVALID, f"{where}: longer than {LINE_BYTES_MAX} characters")
    if json_nesting_exceeds(line):
        return Rejected(
            Reason.JSON_INVALID, f"{where}: nested deeper than {NESTING_DEPTH_MAX} levels"
        )
    try:
        document = json.loads(
            line,
            parse_int=_parse_int,
            parse_float=_NonInteger,
            parse_constant=_NonInteger,
            object_pairs_hook=_object_without_duplicates,
        )
    except _DuplicateKeyError as error:
        return Rejected(Reason.JSON_INVALID, f"{where}: duplicate key {error.args[0]!r}")
    except (ValueError, RecursionError) as error:
        return Rejected(Reason.JSON_INVALID, f"{where}: invalid JSON ({error})")
    if not isinstance(document, dict):
        return Rejected(Reason.JSON_INVALID, f"{where}: expected a JSON object")
    return _decode_document(document, where)


def _decode_document(document: dict[str, Any], where: str) -> Event | Rejected:
    type_name = document.get("type")
    if type(type_name) is not str or type_name not in EVENT_TYPES:
        shown = "missing" if type_name is None else repr(type_name)[:40]
        return Rejected(
            Reason.EVENT_TYPE_UNKNOWN,
            f"{where}: type {shown} is not one of {', '.join(EVENT_TYPES)}",
        )
    cls = EVENT_TYPES[type_name]
    kinds = dict(FIELD_KINDS[cls])
    missing = [name for name in kinds if name not in document and name not in OPTIONAL_FIELDS[cls]]
    if missing:
        return Rejected(Reason.FIELD_MISSING, f"{where}: {type_name}.{missing[0]} is missing")
    unknown = sorted(set(document) - set(kinds) - {"type"})
    if unknown:
        return Rejected(
            Reason.FIELD_UNKNOWN, f"{where}: {type_name} has no field {unknown[0][:64]!r}"
        )
    values: dict[str, Any] = {}
    for name, kind in kinds.items():
        if name not in document:
            continue
        value, problem = _decode_value(kind, document[name])
        if problem is not None:
            return Rejected(Reason.FIELD_TYPE_INVALID, f"{where}: {type_name}.{name}: {problem}")
        values[name] = value
    return cls(**values)


def _describe(value: object) -> str:
    if isinstance(value, _NonInteger):
        return f"the non-integer number {value.text[:40]}"
    if isinstance(value, _LongInteger):
        return f"an integer literal of {value.digits} digits (at most {INTEGER_DIGITS_MAX})"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if value is None:
        return "null (omit an optional field instead)"
    return f"a JSON {type(value).__name__}"


def _decode_value(kind: FieldKind, value: object) -> tuple[object, str | None]:
    """Return the decoded value, or a problem naming what was found instead."""
    if kind in {FieldKind.ID, FieldKind.RULES_TOML}:
        if type(value) is str:
            return value, None
        return None, f"expected a string, got {_describe(value)}"
    if kind in _ENUM_KINDS:
        enum_type = _ENUM_KINDS[kind]
        choices = [member.value for member in enum_type]
        if type(value) is str and value in choices:
            return enum_type(value), None
        return None, f"expected one of {choices}, got {_describe(value)}"
    if type(value) is int:
        return value, None
    return None, f"expected an integer, got {_describe(value)}"


def decode_lines(text: str) -> list[Event | Rejected]:
    r"""Decode every non-blank line of a JSON Lines document; blank lines are skipped.

    Lines end at "\n", "\r\n" or "\r", as a file read in text mode splits them (and so as
    ``settlekernel run`` and ``journal append`` do), never at the other separators
    ``str.splitlines`` knows ("\x0b", "\x85", "\u2028", ...), which a JSON string may hold.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [
        decode_event(line, number) for number, line in enumerate(lines, start=1) if line.strip()
    ]
