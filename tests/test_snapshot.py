"""Snapshots: the whole state encoded canonically, decoded back to an equal state."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import attrs
import pytest

import settlekernel as sk
from settlekernel.cli.demo import demo_steps
from settlekernel.commitments.snapshot import SnapshotError, decode_state, encode_state

RULES = sk.RuleSet.default()


def demo_states() -> list[sk.State]:
    """Every state of the demo session, folded: options, an expiry, a liquidation."""
    state = sk.genesis(RULES)
    states = [state]
    for demo_step in demo_steps():
        outcome = sk.step(state, demo_step.event)
        if isinstance(outcome, sk.Accepted):
            state = sk.fold(outcome.state)
            states.append(state)
    return states


STATES = demo_states()


def test_every_demo_state_round_trips():
    """Decodes every demo state to an equal state with the same root and the same encoding."""
    for state in STATES:
        encoded = encode_state(state)
        decoded = decode_state(encoded, RULES)
        assert decoded == state
        assert sk.state_root(decoded) == sk.state_root(state)
        assert sk.recompute_root(decoded) == sk.state_root(state)
        assert encode_state(decoded) == encoded
        assert sk.check_invariants(decoded) == []


def test_derived_indexes_are_rebuilt_not_read():
    """Rebuilds open interest, holders and pending expiries that the encoding leaves out."""
    final = STATES[-1]
    document = json.loads(encode_state(final))
    assert "open_interest" not in document
    assert "holders" not in document
    decoded = decode_state(encode_state(final), RULES)
    assert decoded.open_interest == final.open_interest
    assert decoded.holders == final.holders
    assert decoded.pending_expiries == final.pending_expiries
    assert any(len(holders) > 0 for holders in final.holders.values())


def test_a_decoded_state_steps_like_the_original():
    """Continues the demo from a mid-session snapshot to the same final root."""
    events = [demo_step.event for demo_step in demo_steps()]
    middle = len(events) // 2
    state = sk.genesis(RULES)
    for event in events[:middle]:
        outcome = sk.step(state, event)
        state = outcome.state if isinstance(outcome, sk.Accepted) else state
    resumed = decode_state(encode_state(sk.fold(state)), RULES)
    for event in events[middle:]:
        outcome = sk.step(resumed, event)
        resumed = outcome.state if isinstance(outcome, sk.Accepted) else resumed
    assert sk.state_root(resumed) == sk.state_root(STATES[-1])


def _edited(state: sk.State, edit) -> bytes:
    document = json.loads(encode_state(state))
    edit(document)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["custody"].update(USDC=1.5), "non-integer"),
        (lambda d: d.update(clock_ms="5"), "expected an integer"),
        (lambda d: d.update(extra=1), "not a snapshot document"),
        (lambda d: d.pop("trades"), "not a snapshot document"),
        (lambda d: d.update(version=1), "version"),
        (lambda d: d.update(rules_digest="00" * 32), "not its rules digest"),
        (lambda d: d.update(rules="fee_rate_max_ppm = 1.5"), "not valid TOML|expected an"),
        (lambda d: d.update(proposal=["p", "x = 1", 0, 1]), "does not decode"),
        (lambda d: d["accounts"]["alice"].pop(), "does not decode"),
        (lambda d: d["instruments"]["BTC-PERP"].__setitem__(0, "swap"), "does not decode"),
    ],
)
def test_refuses_a_malformed_snapshot(edit, message):
    """Raises SnapshotError naming what is wrong, never another exception."""
    with pytest.raises(SnapshotError, match=message):
        decode_state(_edited(STATES[-1], edit), RULES)


@pytest.mark.parametrize("data", [b"", b"[]", b"\xff\xfe", b"[" * 100_000, b"null"])
def test_refuses_garbage(data):
    """Raises SnapshotError for bytes that are not a snapshot at all."""
    with pytest.raises(SnapshotError):
        decode_state(data, RULES)


def test_a_changed_balance_decodes_but_changes_the_root():
    """Leaves the root check to the caller: a forged balance gives another root."""
    forged = _edited(STATES[-1], lambda d: d["accounts"]["alice"][1].update(USDC=1))
    decoded = decode_state(forged, RULES)
    assert sk.state_root(decoded) != sk.state_root(STATES[-1])


def test_a_snapshot_under_other_rules_decodes_to_its_own_rules():
    """A snapshot carries the rules in force (SK-GOV-6): given other genesis rules, it decodes
    to its own rules and its own root, so the caller's root check (SK-SNAPSHOT-3) decides."""
    other = attrs.evolve(RULES, fee_rate_max_ppm=RULES.fee_rate_max_ppm + 1)
    decoded = decode_state(encode_state(STATES[-1]), other)
    assert decoded.rules == RULES
    assert sk.state_root(decoded) == sk.state_root(STATES[-1])


SNAPSHOT_SCRIPT = """
import sys
from settlekernel.commitments.snapshot import SnapshotError, decode_state
from settlekernel.core.rules import DEFAULT_RULES
for text in sys.stdin.read().splitlines():
    try:
        decode_state(text.encode(), DEFAULT_RULES)
    except SnapshotError as error:
        print(error)
"""


def test_a_snapshot_is_refused_the_same_way_under_any_interpreter_limit():
    """Refuses huge integer literals and deep nesting with one message under every limit."""
    good = json.loads(encode_state(STATES[-1]))
    huge = json.dumps({**good, "clock_ms": 0}).replace('"clock_ms":0', '"clock_ms":' + "9" * 5000)
    huge = huge.replace('"clock_ms": 0', '"clock_ms": ' + "9" * 5000)
    texts = [huge, "[" * 5_000 + "]" * 5_000, '{"a":' * 40 + "1" + "}" * 40]
    outputs = set()
    for limit in ("0", "640", "4300"):
        result = subprocess.run(
            [sys.executable, "-c", SNAPSHOT_SCRIPT],
            input="\n".join(texts),
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONINTMAXSTRDIGITS": limit},
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1, outputs
    lines = next(iter(outputs)).splitlines()
    assert lines[0] == "snapshot holds an integer literal of 5000 digits (at most 78)"
    assert lines[1:] == ["snapshot is nested deeper than 16 levels"] * 2
