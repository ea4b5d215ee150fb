"""A generator of hostile inputs: wire lines (as bytes) and Python objects given as events.

The lines follow the demo session: each demo event is sent as it is, preceded by hostile
variants of it and of earlier events, so the hostile ones meet a live market (accounts with
balances, listed instruments, an index, settled trades) and reach deep checks, not only the
decoder's. Every class the project promises to survive is drawn: bytes that are not UTF-8, a
byte order mark, NaN and Infinity, floats, duplicate keys, integers past every bound (up to
16,000 digits), nesting past the bound, lines past the length bound, line and paragraph
separators, lone surrogates, control characters, missing, unknown and mistyped fields, unknown
event types, identifiers that are not identifiers, unauthorised principals, and replays of a
settled trade, unchanged and with one field changed. ``hostile_objects`` gives what no wire
can carry: events with unset slots, subclasses, foreign values with hostile methods.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any, Final

import attrs

import settlekernel as sk
from settlekernel.cli.demo import demo_steps
from settlekernel.core.events import EVENT_TYPES
from settlekernel.core.wire import encode_event

DEMO_EVENTS: Final = [demo_step.event for demo_step in demo_steps()]
EDGE_INTEGERS: Final = (
    0,
    -1,
    1,
    2**63 - 1,
    2**63,
    2**96 - 1,
    2**96,
    2**256 - 1,
    2**256,
    -(2**256),
)
STRANGERS: Final = ("mallory", "venue", "operator", "oracle-a", "@insurance", "@system")
BAD_IDS: Final = ("", "@fees", "a" * 65, "a|b", "a b", "-x", "caf\u00e9", "\u0661", "x\u2028y")


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _document(event: sk.Event) -> dict[str, Any]:
    return json.loads(encode_event(event))


def _field(rng: random.Random, document: dict[str, Any]) -> str:
    return rng.choice(sorted(key for key in document if key != "type"))


def _raw_value(rng: random.Random, document: dict[str, Any], value: str) -> bytes:
    """Return the document with one field's value replaced by raw JSON text ``value``."""
    field = _field(rng, document)
    marker = "\u0000MARK\u0000"
    text = _dumps({**document, field: marker}).replace(json.dumps(marker), value)
    return text.encode("utf-8", "surrogatepass")


def _number_literal(rng: random.Random) -> str:
    return rng.choice(
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "1.0",
            "1e3",
            "-0",
            "1E400",
            "9" * rng.choice([78, 79, 640, 4_300, 4_301, 16_000]),
            "-" + "9" * rng.choice([79, 5_000]),
            "0." + "0" * 5_000 + "1",
        ]
    )


def _nested(rng: random.Random) -> str:
    depth = rng.choice([2, 31, 32, 33, 900, 5_000])
    opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
    return opener * (depth - 1) + "1" + closer * (depth - 1)


def _json_level(rng: random.Random, document: dict[str, Any]) -> bytes:
    """A line that is malformed as JSON text or as bytes."""
    line = _dumps(document).encode()
    choice = rng.randrange(12)
    if choice == 0:  # Bytes that are not UTF-8.
        at = rng.randrange(len(line) + 1)
        return line[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"]) + line[at:]
    if choice == 1:  # A byte order mark.
        return b"\xef\xbb\xbf" + line
    if choice == 2:  # A duplicate key with another value.
        field = _field(rng, document)
        return line[:-1] + b',"' + field.encode() + b'":' + json.dumps(7).encode() + b"}"
    if choice == 3:
        return _raw_value(rng, document, _number_literal(rng))
    if choice == 4:
        return _raw_value(rng, document, _nested(rng))
    if choice == 5:  # Past the length bound.
        return _raw_value(rng, document, '"' + "x" * rng.choice([16_300, 20_000]) + '"')
    if choice == 6:  # Cut short, or with junk after it.
        return line[: rng.randrange(len(line))] if rng.random() < 0.5 else line + b" }"
    if choice == 7:  # Not an object.
        return rng.choice([b"[]", b'"deposit"', b"null", b"1", b"true", b"{}", b"\x00"])
    if choice == 8:  # Separators: only "\n" ends a line; these must stay inside one.
        separator = rng.choice(["\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x85"])
        return _raw_value(rng, document, json.dumps("a" + separator + "b", ensure_ascii=False))
    if choice == 9:  # A lone surrogate, escaped (the only way valid UTF-8 carries one).
        return _raw_value(rng, document, '"\\ud800"')
    if choice == 10:  # Control characters and NUL, raw and escaped.
        return _raw_value(rng, document, rng.choice(['"a\\u0000b"', '"\\t"', '"a\x01"']))
    return rng.choice([b"", b"   ", "\u3000".encode(), b"\t"])  # Blank to the reader.


def _field_level(rng: random.Random, document: dict[str, Any]) -> bytes:
    """A line that is JSON, but not an event of the wire format."""
    document = dict(document)
    choice = rng.randrange(7)
    if choice == 0:
        del document[_field(rng, document)]
    elif choice == 1:
        document[rng.choice(["memo", "amount", "Type", "", "\u00e9"])] = 1
    elif choice == 2:
        document[_field(rng, document)] = rng.choice(
            ["100", True, False, None, [], {}, [1], {"a": 1}, 1.5, ""]
        )
    elif choice == 3:
        document["type"] = rng.choice(["mint", "", "DEPOSIT", 7, None, ["deposit"], "deposit "])
    elif choice == 4:
        del document["type"]
    elif choice == 5:
        document["kind"] = rng.choice(["swap", "Perpetual", 1])
    else:
        document[_field(rng, document)] = rng.choice(EDGE_INTEGERS)
    return _dumps(document).encode()


def _semantic(rng: random.Random, document: dict[str, Any], seen: list[dict[str, Any]]) -> bytes:
    """A well-formed event that breaks a rule: a stranger, a bad id, a replay, an edge."""
    document = dict(document)
    choice = rng.randrange(4)
    if choice == 0:
        document["principal"] = rng.choice(STRANGERS)
    elif choice == 1:
        ids = [key for key, value in document.items() if type(value) is str and key != "type"]
        document[rng.choice(ids)] = rng.choice(BAD_IDS)
    elif choice == 2:
        trades = [past for past in seen if past["type"] == "trade"] or [document]
        document = dict(rng.choice(trades))
        if rng.random() < 0.7:
            field = _field(rng, document)
            value = document[field]
            document[field] = value + 1 if type(value) is int else value + "x"
    else:
        numbers = [key for key, value in document.items() if type(value) is int]
        if numbers:
            document[rng.choice(numbers)] = rng.choice(EDGE_INTEGERS)
    return _dumps(document).encode()


LINE_MUTATIONS: Final[tuple[Callable[..., bytes], ...]] = (_json_level, _field_level, _semantic)


def hostile_lines(seed: int, count: int) -> list[bytes]:
    """Return about ``count`` lines: the demo session with hostile lines before each event."""
    rng = random.Random(seed)  # noqa: S311 (a test corpus, not a secret)
    per_event = max(1, count // len(DEMO_EVENTS))
    lines: list[bytes] = []
    seen: list[dict[str, Any]] = []
    for event in DEMO_EVENTS:
        document = _document(event)
        for _ in range(per_event):
            target = rng.choice([document, document, *seen[-8:]])
            mutation = rng.choice(LINE_MUTATIONS)
            line = mutation(rng, target, seen) if mutation is _semantic else mutation(rng, target)
            lines.append(line)
        lines.append(encode_event(event).encode())
        seen.append(document)
    return lines


class _Hostile:
    """An object whose every method raises."""

    def __repr__(self) -> str:
        raise RuntimeError

    def __eq__(self, other: object) -> bool:
        raise RuntimeError

    def __hash__(self) -> int:
        raise RuntimeError


class _Str(str):
    __slots__ = ()


class _Int(int):
    pass


def _unset(event: sk.Event, rng: random.Random) -> sk.Event:
    """The event with some or all of its slots deleted."""
    if rng.random() < 0.3:
        return object.__new__(type(event))
    copy = attrs.evolve(event)
    for field in attrs.fields(type(event)):
        if rng.random() < 0.4:
            object.__delattr__(copy, field.name)
    return copy


def _foreign_value(event: sk.Event, rng: random.Random) -> sk.Event:
    field = rng.choice(attrs.fields(type(event))).name
    value = getattr(event, field)
    replacement = rng.choice(
        [
            _Hostile(),
            _Str(value) if type(value) is str else _Int(1),
            _Int(5) if type(value) is int else _Str("alice"),
            True,
            10**5_000,
            -(10**5_000),
            1.0,
            b"alice",
            None,
        ]
    )
    copy = attrs.evolve(event)
    object.__setattr__(copy, field, replacement)
    return copy


def hostile_objects(seed: int, count: int) -> list[object]:
    """Return ``count`` objects given to ``step`` as events, nearly all of them invalid."""
    rng = random.Random(seed)  # noqa: S311 (a test corpus, not a secret)
    subclasses = {cls: type(f"Sub{cls.__name__}", (cls,), {}) for cls in EVENT_TYPES.values()}
    objects: list[object] = []
    while len(objects) < count:
        event = rng.choice(DEMO_EVENTS)
        choice = rng.randrange(4)
        if choice == 0:
            objects.append(_unset(event, rng))
        elif choice == 1:
            objects.append(_foreign_value(event, rng))
        elif choice == 2:
            values = {field.name: getattr(event, field.name) for field in attrs.fields(type(event))}
            objects.append(subclasses[type(event)](**values))
        else:
            objects.append(rng.choice([None, 10**5_000, "deposit", _Hostile(), type(event), {}]))
    return objects
