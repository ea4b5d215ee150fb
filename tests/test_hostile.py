"""A hostile corpus through every path: the library, `settlekernel run`, `journal append`.

The corpus (`hostile.py`) is written to a real file; the library reads it as the commands do
(UTF-8 with replacement, lines ending at "\\n"), and `run --json`, `journal append` and
`journal verify` run as real processes on it. Every path must survive every input, a
rejection must leave the state and its root bit for bit unchanged, and the three must agree
line by line on acceptance, reason, message and root. `make test` runs a sample; `make fuzz`
(SETTLEKERNEL_FUZZ=1) runs more than 10,000 lines and 2,000 objects.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys

import pytest

import settlekernel as sk
from hostile import hostile_lines, hostile_objects
from journal_files import FUZZ
from settlekernel.core.wire import decode_event, decode_lines
from settlekernel.kernel.invariants import check_invariants

LINES = 10_500 if FUZZ else 1_000
OBJECTS = 2_000 if FUZZ else 300
RULES = sk.RuleSet.default()
CLI = [sys.executable, "-m", "settlekernel"]
_LINE_PREFIX = re.compile(r"^line \d+: ")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The hostile lines as a real JSON Lines file."""
    path = tmp_path_factory.mktemp("hostile") / "hostile.jsonl"
    lines = hostile_lines(seed=13, count=LINES)
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def read_lines(path):
    """Return the non-blank lines as `run` and `journal append` read them, in order."""
    with path.open(encoding="utf-8", errors="replace") as file:
        return [line.rstrip("\n") for line in file if line.strip()]


def library_outcomes(lines):
    """Decode and step every line in this process; check atomicity; return the outcomes."""
    state = sk.genesis(RULES)
    outcomes = []
    for number, line in enumerate(lines, start=1):
        root = sk.state_root(state)
        decoded = decode_event(line, number)
        outcome = decoded if isinstance(decoded, sk.Rejected) else sk.step(state, decoded)
        if isinstance(outcome, sk.Accepted):
            state = sk.fold(outcome.state)
            outcomes.append(("accepted", "", "", sk.state_root(state).hex()))
            continue
        # INV-ATOMIC-REJECT: the state is untouched, its root recomputed from scratch agrees.
        assert sk.state_root(state) == root
        if number % 50 == 0:
            assert sk.recompute_root(state) == root
        message = _LINE_PREFIX.sub("", outcome.message)
        outcomes.append(("rejected", outcome.reason.value, message, root.hex()))
    assert check_invariants(state) == []
    return outcomes, state


def run_outcomes(path, env=None):
    """Return `settlekernel run --json`'s outcome per line, as a real process."""
    result = subprocess.run(
        [*CLI, "run", str(path), "--json"],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""
    records = [json.loads(line) for line in result.stdout.splitlines()]
    summary = records.pop()["summary"]
    assert summary["invariants"] == "ok"
    return [
        (
            record["status"],
            record.get("reason", ""),
            _LINE_PREFIX.sub("", record.get("message", "")),
            record["root"],
        )
        for record in records
    ], summary


def journal_outcomes(path, db):
    """Append the file with `journal append`, verify it, and return each stored record."""
    appended = subprocess.run(
        [*CLI, "journal", "append", str(path), "--db", str(db), "--batch-size", "97", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert appended.returncode == 0, appended.stderr[-2000:]
    verified = subprocess.run(
        [*CLI, "journal", "verify", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr[-2000:]
    report = json.loads(verified.stdout)
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT sequence, reason, message, state_root FROM records ORDER BY attempt"
        ).fetchall()
    finally:
        connection.close()
    outcomes = []
    root = ""
    for sequence, reason, message, state_root in rows:
        if sequence is None:
            outcomes.append(("rejected", reason, _LINE_PREFIX.sub("", message), root))
        else:
            root = state_root.hex()
            outcomes.append(("accepted", "", "", root))
    return outcomes, report


def test_every_path_survives_the_corpus_and_all_three_agree(corpus, tmp_path):
    """Gives each line the same outcome, root and message in the library, run and the journal."""
    lines = read_lines(corpus)
    assert len(lines) >= (10_000 if FUZZ else 900)
    library, state = library_outcomes(lines)
    genesis_root = sk.state_root(sk.genesis(RULES)).hex()
    # The journal's first rejections carry the genesis root, as the library's do.
    ran, summary = run_outcomes(corpus)
    journal, report = journal_outcomes(corpus, tmp_path / "hostile.db")
    journal = [
        (status, reason, message, root or genesis_root) for status, reason, message, root in journal
    ]
    for index, (mine, theirs, stored) in enumerate(zip(library, ran, journal, strict=True)):
        assert mine == theirs == stored, (index + 1, lines[index][:200], mine, theirs, stored)
    final_root = sk.state_root(state).hex()
    assert summary["final_root"] == report["final_root"] == final_root
    accepted = sum(outcome[0] == "accepted" for outcome in library)
    assert accepted == summary["accepted"] == report["entries"]
    assert len(library) - accepted > 0.8 * len(library)  # The corpus is mostly hostile.


def test_run_gives_the_same_output_under_any_integer_string_limit(corpus):
    """Prints the same outcomes for the corpus with Python's integer-string limit off."""
    default, _ = run_outcomes(corpus)
    unlimited, _ = run_outcomes(corpus, env={**os.environ, "PYTHONINTMAXSTRDIGITS": "0"})
    assert default == unlimited


def test_decode_lines_splits_text_as_the_commands_read_files():
    """Ends lines at "\\n" (and "\\r"), never at separators a JSON string may hold."""
    text = '{"type":"x\u2028y"}\n\n{"type":"a\x0bb"}\r\n{"type":"c\x85"}\r{"type":"z"}'
    decoded = decode_lines(text)
    assert [outcome.message[:7] for outcome in decoded] == [
        "line 1:",
        "line 3:",
        "line 4:",
        "line 5:",
    ]


def test_hostile_objects_never_raise_and_rejections_change_nothing():
    """Steps every hostile object on a fresh and on a busy state; no raise, no change."""
    busy = sk.genesis(RULES)
    for line in hostile_lines(seed=1, count=0):
        decoded = decode_event(line.decode("utf-8", "replace"))
        outcome = sk.step(busy, decoded)
        busy = outcome.state if isinstance(outcome, sk.Accepted) else busy
    busy = sk.fold(busy)
    objects = hostile_objects(seed=13, count=OBJECTS)
    rejected = 0
    for state in (sk.genesis(RULES), busy):
        root = sk.recompute_root(state)
        for thing in objects:
            outcome = sk.step(state, thing)
            assert isinstance(outcome, sk.Accepted | sk.Rejected)
            if isinstance(outcome, sk.Rejected):
                rejected += 1
                assert len(outcome.message) < 400
        assert sk.recompute_root(state) == root
        journal = sk.Journal(state)
        for thing in objects[:50]:
            journal.submit(thing)
        _, outcomes = sk.apply_batch(state, objects[:50])
        assert len(outcomes) == 50
    assert rejected > 0.9 * 2 * len(objects)
