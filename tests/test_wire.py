"""The JSON Lines wire format: strict decoding, canonical encoding, the shipped schema."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import attrs
import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

import settlekernel as sk
from settlekernel.cli.demo import demo_steps
from settlekernel.core.events import EVENT_TYPES
from settlekernel.core.schema import event_schema
from settlekernel.core.wire import (
    INTEGER_DIGITS_MAX,
    NESTING_DEPTH_MAX,
    decode_event,
    decode_lines,
    describe_event,
    encode_event,
)

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "src/settlekernel/data/events.schema.json"
DEPOSIT = '{"type":"deposit","principal":"a","account":"a","asset":"USDC","amount_minor":%s}'

# One line per malformed input: the line, the expected reason, a fragment of the message.
MALFORMED = [
    ("{", "json_invalid", "line 1: invalid JSON"),
    ("[1, 2]", "json_invalid", "expected a JSON object"),
    ('"deposit"', "json_invalid", "expected a JSON object"),
    (
        DEPOSIT.replace('"asset":"USDC"', '"asset":"USDC","asset":"BTC"') % 1,
        "json_invalid",
        "duplicate key 'asset'",
    ),
    ("x" * 20_000, "json_invalid", "longer than"),
    ('{"principal":"a"}', "event_type_unknown", "type missing"),
    ('{"type":"mint","principal":"a"}', "event_type_unknown", "'mint'"),
    ('{"type":7}', "event_type_unknown", "type 7"),
    (
        '{"type":"deposit","principal":"a","account":"a","asset":"USDC"}',
        "field_missing",
        "deposit.amount_minor is missing",
    ),
    (DEPOSIT.replace("}", ',"memo":"hi"}') % 1, "field_unknown", "no field 'memo'"),
    (
        DEPOSIT % "1.5",
        "field_type_invalid",
        "deposit.amount_minor: expected an integer, got the non-integer number 1.5",
    ),
    (DEPOSIT % "1.0", "field_type_invalid", "non-integer number 1.0"),
    (DEPOSIT % "1e3", "field_type_invalid", "non-integer number 1e3"),
    (DEPOSIT % "NaN", "field_type_invalid", "non-integer number NaN"),
    (DEPOSIT % "Infinity", "field_type_invalid", "non-integer number Infinity"),
    (DEPOSIT % '"100"', "field_type_invalid", "got the string '100'"),
    (DEPOSIT % "true", "field_type_invalid", "got the boolean true"),
    (DEPOSIT % "null", "field_type_invalid", "got null"),
    (DEPOSIT % "[1]", "field_type_invalid", "got a JSON list"),
    (
        DEPOSIT.replace('"principal":"a"', '"principal":5') % 1,
        "field_type_invalid",
        "deposit.principal: expected a string",
    ),
    (
        (
            '{"type":"list_instrument","principal":"operator","instrument":"X","kind":"swap",'
            '"underlying":"BTC","settlement_asset":"USDC","multiplier_minor":1}'
        ),
        "field_type_invalid",
        "expected one of ['perpetual', 'future', 'option']",
    ),
]


@pytest.mark.parametrize(("line", "reason", "fragment"), MALFORMED)
def test_malformed_lines_are_rejections_naming_line_and_field(line, reason, fragment):
    """Rejects each malformed line with its reason and a message naming what is wrong."""
    decoded = decode_event(line, 1)
    assert isinstance(decoded, sk.Rejected)
    assert decoded.reason.value == reason
    assert fragment in decoded.message
    assert decoded.message.startswith("line 1:")


def test_a_malformed_line_never_stops_the_rest():
    """Decodes the good lines around a bad one; numbers name the original lines."""
    text = "\n".join([DEPOSIT % 1, "{oops", "", DEPOSIT % 2])
    decoded = decode_lines(text)
    assert [type(d).__name__ for d in decoded] == ["Deposit", "Rejected", "Deposit"]
    assert decoded[1].message.startswith("line 2:")


def test_big_integers_are_exact():
    """Keeps integers beyond 2**64 exact; the kernel, not the decoder, bounds them."""
    decoded = decode_event(DEPOSIT % (2**96 + 1))
    assert isinstance(decoded, sk.Deposit)
    assert decoded.amount_minor == 2**96 + 1


def test_canonical_round_trip_of_the_demo():
    """Decodes every canonical demo line back to the same event and the same line."""
    for demo_step in demo_steps():
        line = encode_event(demo_step.event)
        assert decode_event(line) == demo_step.event
        assert encode_event(decode_event(line)) == line  # type: ignore[arg-type]
        assert json.loads(line) == dict(sorted(json.loads(line).items()))
        assert " " not in line


def test_shipped_schema_is_generated_from_the_field_table():
    """Ships exactly the schema the field table generates (SK-WIRE-4)."""
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == event_schema()


def test_schema_accepts_every_canonical_demo_event():
    """Validates each canonical demo event against the shipped schema."""
    validator = jsonschema.Draft202012Validator(event_schema())
    for demo_step in demo_steps():
        validator.validate(json.loads(encode_event(demo_step.event)))


def test_schema_rejects_what_the_decoder_rejects():
    """Refuses unknown fields, missing fields, strings for numbers and bad identifiers."""
    validator = jsonschema.Draft202012Validator(event_schema())
    good = json.loads(DEPOSIT % 1)
    assert validator.is_valid(good)
    for bad in (
        {**good, "memo": "x"},
        {k: v for k, v in good.items() if k != "asset"},
        {**good, "amount_minor": "1"},
        {**good, "account": "@fees"},
        {**good, "amount_minor": 0},
        {**good, "type": "mint"},
    ):
        assert not validator.is_valid(bad), bad


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@given(st.text(max_size=200))
def test_decoding_arbitrary_text_never_raises(text):
    """Returns an event or a rejection for any text whatsoever."""
    assert isinstance(decode_event(text, 3), (sk.Rejected, *EVENT_TYPES.values()))


@given(
    st.sampled_from(["deposit", "trade", "list_instrument", "oracle_price"]),
    st.dictionaries(
        st.sampled_from(
            [
                "principal",
                "account",
                "asset",
                "amount_minor",
                "trade_id",
                "kind",
                "price_ticks",
                "memo",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_decoding_arbitrary_objects_never_raises_and_never_lets_junk_through(type_name, fields):
    """Decodes only objects whose every field has its declared type; rejects the rest."""
    line = json.dumps({"type": type_name, **fields})
    decoded = decode_event(line)
    if isinstance(decoded, sk.Rejected):
        return
    for field in attrs.fields(type(decoded)):
        value = getattr(decoded, field.name)
        assert value is None or type(value) in (int, str, sk.InstrumentKind, sk.OptionType)
    outcome = sk.step(sk.genesis(sk.RuleSet.default()), decoded)
    assert isinstance(outcome, sk.Accepted | sk.Rejected)


def test_describe_event_never_raises():
    """Prints hostile objects for the audit trail without raising."""

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError

    assert describe_event(Hostile()) == "<not an event: Hostile>"
    bad = sk.Deposit(principal="a", account="a", asset="USDC", amount_minor=object())
    assert describe_event(bad).startswith("Deposit(")


def _nested(depth: int) -> str:
    """Return a deposit whose amount is ``depth - 1`` nested arrays (the object is level 1)."""
    return DEPOSIT % ("[" * (depth - 1) + "]" * (depth - 1))


def _decode_at_recursion_limit(line: str, headroom: int) -> sk.Rejected:
    """Decode ``line`` with the recursion limit ``headroom`` frames above the current depth."""
    depth = len(inspect.stack(0))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + headroom)
    try:
        decoded = decode_event(line)
    finally:
        sys.setrecursionlimit(limit)
    assert isinstance(decoded, sk.Rejected)
    return decoded


@pytest.mark.parametrize("depth", [NESTING_DEPTH_MAX, NESTING_DEPTH_MAX + 1, 900, 5_000])
def test_nesting_is_bounded_the_same_way_under_any_recursion_limit(depth):
    """Decodes a line within the nesting bound, rejects one beyond it, whatever the stack."""
    line = _nested(depth)
    outcomes = {
        _decode_at_recursion_limit(line, headroom) for headroom in (NESTING_DEPTH_MAX + 20, 20_000)
    }
    assert len(outcomes) == 1, outcomes
    (outcome,) = outcomes
    if depth <= NESTING_DEPTH_MAX:
        assert outcome.reason is sk.Reason.FIELD_TYPE_INVALID
    else:
        assert outcome == sk.Rejected(
            sk.Reason.JSON_INVALID, f"line 1: nested deeper than {NESTING_DEPTH_MAX} levels"
        )


def test_brackets_inside_strings_do_not_count_as_nesting():
    """Counts only the structure of the JSON text, not brackets inside its strings."""
    line = DEPOSIT.replace('"principal":"a"', '"principal":"' + "[{" * 100 + '"') % 1
    decoded = decode_event(line)
    assert isinstance(decoded, sk.Deposit)


@pytest.mark.parametrize("digits", [INTEGER_DIGITS_MAX + 1, 4_301, 16_000])
def test_long_integer_literals_are_rejected_without_conversion(digits):
    """Rejects an integer literal beyond the digit bound before converting it to an int."""
    for sign in ("", "-"):
        decoded = decode_event(DEPOSIT % (sign + "9" * digits))
        assert decoded == sk.Rejected(
            sk.Reason.FIELD_TYPE_INVALID,
            "line 1: deposit.amount_minor: expected an integer, "
            f"got an integer literal of {digits} digits (at most {INTEGER_DIGITS_MAX})",
        )
    decoded = decode_event(DEPOSIT % ("9" * INTEGER_DIGITS_MAX))
    assert isinstance(decoded, sk.Deposit)


DECODE_SCRIPT = """
import json, sys
from settlekernel.core.wire import decode_event
for line in sys.stdin.read().splitlines():
    decoded = decode_event(line)
    print(json.dumps(getattr(decoded, "message", None) or "event"))
"""


def test_decoding_is_the_same_under_any_integer_string_limit():
    """Decodes identically with Python's integer-to-string limit off, at its minimum, default."""
    lines = [DEPOSIT % ("7" * digits) for digits in (78, 79, 640, 641, 4_300, 4_301, 16_000)]
    lines += [DEPOSIT % ("1" + "0" * 5_000 + ".5"), _nested(NESTING_DEPTH_MAX + 1)]
    outputs = set()
    for limit in ("0", "640", "4300", "100000"):
        result = subprocess.run(
            [sys.executable, "-c", DECODE_SCRIPT],
            input="\n".join(lines),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONINTMAXSTRDIGITS": limit},
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1, outputs
