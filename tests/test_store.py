"""The SQLite store: it refuses files that are not journals untouched, and admits one writer."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from settlekernel.journal.durable import DurableJournal, open_for_audit
from settlekernel.journal.store import StoreError, WriterLockedError

CLI = [sys.executable, "-m", "settlekernel"]
DEPOSIT = '{"type":"open_account","principal":"%s","account":"%s"}'


def folder_state(folder):
    """Every file in ``folder`` with its bytes and modification time."""
    return {
        path.name: (path.read_bytes(), path.stat().st_mtime_ns) for path in sorted(folder.iterdir())
    }


def foreign_database(path, *, wal=False):
    """Write another application's SQLite database at ``path``."""
    db = sqlite3.connect(path)
    if wal:
        db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE people (name TEXT)")
    db.execute("INSERT INTO people VALUES ('ada')")
    db.commit()
    db.close()


@pytest.mark.parametrize("wal", [False, True], ids=["rollback", "wal"])
def test_a_foreign_database_is_refused_without_a_byte_written(tmp_path, wal):
    """Refuses another application's SQLite file for writing and auditing; nothing changes."""
    other = tmp_path / "other.sqlite"
    foreign_database(other, wal=wal)
    before = folder_state(tmp_path)
    with pytest.raises(StoreError, match="another application"):
        DurableJournal.open(other)
    with pytest.raises(StoreError, match="another application"):
        open_for_audit(other)
    assert folder_state(tmp_path) == before


def test_an_empty_file_is_refused_without_a_byte_written(tmp_path):
    """Refuses a zero-byte file, which SQLite would silently make a database of."""
    empty = tmp_path / "empty.db"
    empty.touch()
    before = folder_state(tmp_path)
    for opener in (DurableJournal.open, open_for_audit):
        with pytest.raises(StoreError, match="an empty file"):
            opener(empty)
    assert folder_state(tmp_path) == before


def test_a_missing_directory_is_a_store_error(tmp_path):
    """Refuses a journal path whose directory does not exist, before touching SQLite."""
    with pytest.raises(StoreError, match="no such directory"):
        DurableJournal.open(tmp_path / "absent" / "ledger.db")


HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from settlekernel.journal.durable import DurableJournal
    journal = DurableJournal.open(Path(sys.argv[1]))
    journal.append(['{"type":"open_account","principal":"a","account":"a"}'])
    print("holding", flush=True)
    sys.stdin.readline()
    journal.close()
    """
)


def test_a_second_writer_is_refused_while_the_first_holds_the_journal(tmp_path):
    """Refuses a second writer process with a one-line error and exit 2; nothing is written."""
    db = tmp_path / "ledger.db"
    events = tmp_path / "events.jsonl"
    events.write_text(DEPOSIT % ("b", "b") + "\n", encoding="utf-8")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "holding\n"
        with pytest.raises(WriterLockedError, match="journal is locked by another writer"):
            DurableJournal.open(db)
        result = subprocess.run(
            [*CLI, "journal", "append", str(events), "--db", str(db)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"Error: {db}: journal is locked by another writer"
        ]
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    store, _, _ = open_for_audit(db)
    try:
        assert store.last_batch().number == 1
    finally:
        store.close()


def test_writers_racing_for_one_journal_never_corrupt_it(tmp_path):
    """Lets several appenders race: each commits or is refused as locked; the journal verifies."""
    db = tmp_path / "race.db"
    writers = []
    for index in range(4):
        events = tmp_path / f"events{index}.jsonl"
        lines = [DEPOSIT % (f"w{index}x{n}", f"w{index}x{n}") for n in range(300)]
        events.write_text("\n".join(lines) + "\n", encoding="utf-8")
        writers.append(
            subprocess.Popen(
                [*CLI, "journal", "append", str(events), "--db", str(db), "--batch-size", "20"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONHASHSEED": str(index)},
            )
        )
    results = [(writer.wait(timeout=120), writer.stderr.read()) for writer in writers]
    for writer in writers:
        writer.stdout.close()
        writer.stderr.close()
    assert {code for code, _ in results} <= {0, 2}, results
    assert 0 in {code for code, _ in results}
    for code, errors in results:
        if code == 2:
            assert "journal is locked by another writer" in errors, errors
    committed = sum(code == 0 for code, _ in results)
    verified = subprocess.run(
        [*CLI, "journal", "verify", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verified.returncode == 0, verified.stdout
    assert f'"batches": {15 * committed}' in verified.stdout
