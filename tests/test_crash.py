"""Crash safety with real processes: a writer killed with SIGKILL at random moments.

Each round starts ``crash_writer.py`` on the same SQLite file, lets it append for a random
while (now and then it is killed while still opening and recovering), kills it with SIGKILL
and reopens the journal here. After every kill: no batch the writer reported as committed is
lost, at most the one batch in flight when it died was committed unreported, every stored
batch holds exactly the lines the writer meant to write (no partial batch, nothing after the
last batch) and opening replays the tail to the stored roots. Every tenth round and at the
end, a full verify re-executes everything from genesis.

SIGKILL tests a crashed process, not a lost machine: the operating system still writes out
what the process handed it. Power loss relies on SQLite's fsync with synchronous=FULL.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crash_writer import batch_lines, expected_events_hash
from settlekernel.journal.durable import DurableJournal, open_for_audit
from settlekernel.journal.verify import audit_journal

WRITER = Path(__file__).resolve().parent / "crash_writer.py"
# Most kills land while batches are appended, some while the writer opens and recovers.
APPEND_WINDOW_S = 0.25
STARTUP_KILL_SHARE = 0.15
FULL_VERIFY_EVERY = 10


def kill_writer_once(path: Path, rng: random.Random) -> list[int]:
    """Start a writer, SIGKILL it at a random moment; return the batches it reported."""
    writer = subprocess.Popen(
        [sys.executable, str(WRITER), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if rng.random() < STARTUP_KILL_SHARE:
            time.sleep(rng.uniform(0, 0.6))
        else:
            opened = writer.stdout.readline()
            assert opened.startswith("open "), opened + writer.stderr.read()
            time.sleep(rng.uniform(0, APPEND_WINDOW_S))
        writer.send_signal(signal.SIGKILL)
        output, errors = writer.communicate(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == -signal.SIGKILL, errors
    return [int(line) for line in output.splitlines() if line.strip().isdigit()]


def check_after_crash(path: Path, reported: int) -> int:
    """Reopen the journal; check nothing committed is lost and nothing partial is visible."""
    journal = DurableJournal.open(path)  # Replays the tail to the stored roots, or raises.
    try:
        head = 0 if journal.head is None else journal.head.number
    finally:
        journal.close()
    assert reported <= head <= reported + 1, (reported, head)
    db = sqlite3.connect(path)
    try:
        batches = db.execute("SELECT number, record_count, events_hash FROM batches").fetchall()
        (records,) = db.execute("SELECT count(*) FROM records").fetchone()
    finally:
        db.close()
    assert [number for number, _, _ in batches] == list(range(1, head + 1))
    for number, record_count, events_hash in batches[-3:]:
        assert record_count == len(batch_lines(number))
        assert events_hash == expected_events_hash(number)
    assert records == sum(count for _, count, _ in batches)
    return head


def full_verify(path: Path) -> None:
    store, rules, genesis_root = open_for_audit(path)
    try:
        report = audit_journal(store, rules, genesis_root)
    finally:
        store.close()
    assert report.finding is None, str(report.finding)


def crash_loop(path: Path, kills: int, seed: int) -> dict[str, int]:
    rng = random.Random(seed)  # noqa: S311 (a kill schedule, not a secret)
    reported, head, mid_batch = 0, 0, 0
    for round_number in range(1, kills + 1):
        numbers = kill_writer_once(path, rng)
        reported = max([reported, *numbers])
        new_head = check_after_crash(path, reported)
        mid_batch += new_head == reported + 1  # Committed, killed before it could say so.
        reported = head = new_head
        if round_number % FULL_VERIFY_EVERY == 0:
            full_verify(path)
    full_verify(path)
    return {"kills": kills, "batches": head, "committed_unreported": mid_batch}


def test_fifty_kills_lose_nothing_committed(tmp_path):
    """Survives 50 SIGKILLs: every committed batch is kept, none is partial, all verify."""
    summary = crash_loop(tmp_path / "crash.db", kills=50, seed=6)
    assert summary["batches"] > 50  # The writer made progress between kills.
    print(summary)


@pytest.mark.slow
def test_two_hundred_kills_lose_nothing_committed(tmp_path):
    """Survives 200 SIGKILLs (``make crash``), with the same checks after each."""
    summary = crash_loop(tmp_path / "crash.db", kills=200, seed=60)
    assert summary["batches"] > 200
    print(summary)
