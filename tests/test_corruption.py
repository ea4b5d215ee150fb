"""`journal verify` on damaged files: a verdict, never a traceback, and no edit goes unseen.

Each case copies a real journal file, damages the copy, and runs `journal verify` through
the command's own entry point (in this process, so hundreds of cases fit in the budget; a
few run as real processes too). Byte edits change one byte anywhere in the file, bypassing
SQLite; row edits change, delete or insert one row through SQLite, as a forger without
constraints would. `make test` runs a sample, `make fuzz` (SETTLEKERNEL_FUZZ=1) many more.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from journal_files import FUZZ, build, demo_lines, sql
from settlekernel.cli.main import main

BYTE_EDITS = 1_000 if FUZZ else 60
ROW_EDITS = 600 if FUZZ else 60
# Each table's key columns, the columns a row edit may change, and the journal's tables.
KEYS = {
    "records": ("attempt",),
    "postings": ("sequence", "position"),
    "batches": ("number",),
    "snapshots": ("batch",),
    "journal": ("id",),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """The demo journal in batches of ten, a snapshot every 20 entries, checkpointed."""
    path = tmp_path_factory.mktemp("corruption") / "demo.db"
    build(path, demo_lines())
    return path


def verify(path, *command):
    """Run `journal verify` (or ``command``) in this process: (exit code, output, exception)."""
    arguments = list(command) or ["journal", "verify"]
    result = CliRunner().invoke(main, [*arguments, "--db", str(path)])
    exception = None if isinstance(result.exception, SystemExit) else result.exception
    return result.exit_code, result.output, exception


# Every fifth damaged copy also meets the other commands that open a journal.
OTHER_COMMANDS = (
    ("journal", "replay"),
    ("journal", "verify-batch", "3"),
    ("proof", "roots", "--secret-file", str(Path(__file__))),
    ("journal", "append", str(Path(__file__).with_name("hostile.py"))),
)


def test_the_pristine_journal_verifies_and_prints_its_head(pristine):
    """Verifies the undamaged file, printing the head batch and its hash to pin."""
    code, output, exception = verify(pristine)
    assert (code, exception) == (0, None), output
    assert "head_batch    9" in output
    assert "head_batch_hash" in output


def test_single_byte_edits_of_the_file_get_a_verdict_every_time(pristine, tmp_path):
    """Gives every byte-edited copy a verdict, never a traceback, in verify and the others."""
    rng = random.Random(20_260_513)  # noqa: S311 (which bytes to damage, not a secret)
    data = pristine.read_bytes()
    copy = tmp_path / "edited.db"
    tracebacks, verdicts = [], {0: 0, 1: 0}
    for case in range(BYTE_EDITS):
        offset = rng.randrange(len(data))
        damaged = bytearray(data)
        damaged[offset] = (damaged[offset] + rng.randrange(1, 256)) % 256
        copy.write_bytes(bytes(damaged))
        code, output, exception = verify(copy)
        if exception is not None or code not in verdicts or not output.strip():
            tracebacks.append((offset, code, repr(exception), output[-300:]))
            continue
        verdicts[code] += 1
        for command in OTHER_COMMANDS if case % 5 == 0 else ():
            other, output, exception = verify(copy, *command)
            if exception is not None or other not in {0, 1, 2} or not output.strip():
                tracebacks.append((offset, command, repr(exception), output[-300:]))
    assert tracebacks == [], f"{len(tracebacks)} of {BYTE_EDITS}: {tracebacks[:5]}"
    assert verdicts[1] > 0


def _columns(path, table):
    return [row[1] for row in sql(path, f"PRAGMA table_info({table})")]


def _random_value(rng, old):
    """A value for a column: another type, an edge integer, junk text or bytes, or a near miss."""
    choices = [
        None,
        rng.choice([0, -1, 1, 2**63 - 1, -(2**63), rng.randrange(1, 200)]),
        rng.choice(["", "x", "not json", "9" * 5_000, "[" * 900]),
        rng.randbytes(rng.choice([0, 31, 32, 33])),
    ]
    if isinstance(old, int):
        choices.append(old + rng.choice([-1, 1]))
    if isinstance(old, str) and old:
        index = rng.randrange(len(old))
        choices.append(old[:index] + chr((ord(old[index]) + 1) % 0x7F or 1) + old[index + 1 :])
    if isinstance(old, bytes) and old:
        index = rng.randrange(len(old))
        choices.append(old[:index] + bytes([(old[index] + 1) % 256]) + old[index + 1 :])
    return rng.choice(choices)


def _edit_a_row(path, rng):
    """Change one value, delete one row or insert a stray copy of one; return what was done."""
    table = rng.choice(list(KEYS))
    keys = KEYS[table]
    columns = _columns(path, table)
    rows = sql(path, f"SELECT {', '.join(columns)} FROM {table}")  # noqa: S608
    row = dict(zip(columns, rng.choice(rows), strict=True))
    where = " AND ".join(f"{key} = ?" for key in keys)
    key_values = [row[key] for key in keys]
    action = rng.choice(["update", "update", "update", "delete", "insert"])
    if action == "delete":
        sql(path, f"DELETE FROM {table} WHERE {where}", *key_values)  # noqa: S608
        return f"delete {table} {key_values}"
    if action == "insert":
        key = rng.choice(keys)
        row[key] = rng.choice([0, -1, 10**6, row[key] + 10**4])
        marks = ", ".join("?" * len(columns))
        sql(path, f"INSERT OR IGNORE INTO {table} VALUES ({marks})", *row.values())  # noqa: S608
        return f"insert {table} {key}={row[key]}"
    # The snapshot interval is committed by no hash: an edit that leaves every snapshot
    # where it was cannot be seen (SK-JOURNAL-8); test_durable_journal checks one that moves.
    column = rng.choice([c for c in columns if c != "snapshot_every_entries"])
    value = _random_value(rng, row[column])
    sql(path, f"UPDATE OR IGNORE {table} SET {column} = ? WHERE {where}", value, *key_values)  # noqa: S608
    return f"update {table} {key_values} {column}={value!r:.40}"


def _content(path):
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_row_edits_are_found_every_time(pristine, tmp_path):
    """Exits 1 with a verdict for every row changed, deleted or inserted; never a traceback."""
    rng = random.Random(7)  # noqa: S311 (which rows to edit, not a secret)
    original = _content(pristine)
    missed, tracebacks = [], []
    copy = tmp_path / "edited.db"
    for _ in range(ROW_EDITS):
        shutil.copy(pristine, copy)
        try:
            done = _edit_a_row(copy, rng)
        except sqlite3.IntegrityError:
            continue  # A STRICT table refuses a value of another type, even to a forger.
        if _content(copy) == original:
            continue  # The edit was refused by SQLite or changed nothing.
        code, output, exception = verify(copy)
        if exception is not None:
            tracebacks.append((done, repr(exception)))
        elif code != 1 or not output.startswith("FAILED "):
            missed.append((done, code, output[:200]))
    assert tracebacks == [], f"{len(tracebacks)} tracebacks: {tracebacks[:5]}"
    assert missed == [], f"{len(missed)} undetected: {missed[:5]}"


def test_a_damaged_file_gets_a_one_line_verdict_from_a_real_process(pristine, tmp_path):
    """Prints 'FAILED database: ...' and exits 1 for a damaged page, run as a real command."""
    data = bytearray(pristine.read_bytes())
    page = 4096
    data[2 * page : 2 * page + 64] = b"\xff" * 64  # The header of the file's second page.
    copy = tmp_path / "damaged.db"
    copy.write_bytes(bytes(data))
    result = subprocess.run(
        [sys.executable, "-m", "settlekernel", "journal", "verify", "--db", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("FAILED database: "), result.stdout
