"""What SQLite can say about a journal file beyond its rows' values (SK-JOURNAL-8).

``verify`` trusts nothing it reads, so every row is checked for the types its columns must
hold before any value is used (a file edited byte by byte can hold anything a column can
decode to), SQLite's own ``integrity_check`` and ``foreign_key_check`` are run over the
file, and every row of every table must belong to the chain: no posting of no entry, no
snapshot of no batch, no second creation record. Each function returns a problem as one
line, or None; none of them raises for any content of the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Final

# Column kinds: what a value read from a journal file may be.
COUNT: Final = "count"  # an int in [0, 2**62): two of them still add up below 2**63
TEXT: Final = "text"
BLOB: Final = "blob"
COUNT_OR_NULL: Final = "count or null"
TEXT_OR_NULL: Final = "text or null"
BLOB_OR_NULL: Final = "blob or null"
_ADMITTED: Final[dict[str, tuple[type, ...]]] = {
    COUNT: (int,),
    TEXT: (str,),
    BLOB: (bytes,),
    COUNT_OR_NULL: (int, type(None)),
    TEXT_OR_NULL: (str, type(None)),
    BLOB_OR_NULL: (bytes, type(None)),
}
COUNT_LIMIT: Final = 2**62
# The first lines of SQLite's report that a finding quotes.
REPORT_LINES_MAX: Final = 2


def row_problem(
    table: str, columns: Sequence[str], kinds: Sequence[str], row: Sequence[object]
) -> str | None:
    """Return what is wrong with the types of a row read from ``table``, or None."""
    if len(row) != len(kinds):
        return f"{table}: a row of {len(row)} columns, expected {len(kinds)}"
    for column, kind, value in zip(columns, kinds, row, strict=True):
        if type(value) not in _ADMITTED[kind] or (
            type(value) is int and not 0 <= value < COUNT_LIMIT
        ):
            key = row[0] if type(row[0]) is int else "?"
            return f"{table} row {key}: {column} holds {_kind_of(value)}, expected a {kind}"
    return None


def _kind_of(value: object) -> str:
    if type(value) is int:
        return "a negative integer" if value < 0 else "an integer of 2**62 or more"
    name = type(value).__name__
    return {"str": "text", "bytes": "a blob", "NoneType": "null"}.get(name, f"a {name}")


def file_problem(db: sqlite3.Connection) -> str | None:
    """Return the first problem SQLite's ``integrity_check`` finds in the file, or None."""
    rows = db.execute("PRAGMA integrity_check").fetchall()
    if [tuple(row) for row in rows] == [("ok",)]:
        return None
    # SQLite heads its report with "*** in database main ***"; the problems follow.
    lines = [
        line
        for row in rows
        for line in str(row[0]).splitlines()
        if line.strip() and not line.startswith("***")
    ]
    return "integrity_check: " + "; ".join(lines[:REPORT_LINES_MAX])


def reference_problem(db: sqlite3.Connection) -> str | None:
    """Return the first row ``foreign_key_check`` finds pointing at nothing, or None."""
    row = db.execute("PRAGMA foreign_key_check").fetchone()
    if row is None:
        return None
    table, rowid, parent, _ = row
    which = "a row" if rowid is None else f"row {rowid}"
    return f"foreign_key_check: {which} of {table} refers to no row of {parent}"


def stray_problem(
    db: sqlite3.Connection, next_attempt: int, next_sequence: int, batch_count: int
) -> str | None:
    """Return the first row outside the chain re-executed so far, or None.

    The chain holds records ``1 .. next_attempt - 1``, entries ``1 .. next_sequence - 1``
    and batches ``1 .. batch_count``; the one creation record has id 1.
    """
    queries = (
        (
            "SELECT attempt FROM records WHERE attempt < 1 OR attempt >= ? LIMIT 1",
            (next_attempt,),
            "record {} belongs to no batch",
        ),
        (
            (
                "SELECT sequence, position FROM postings WHERE sequence < 1 OR sequence >= ? "
                "ORDER BY sequence, position LIMIT 1"
            ),
            (next_sequence,),
            "posting {} {} belongs to no entry",
        ),
        (
            "SELECT number FROM batches WHERE number < 1 OR number > ? LIMIT 1",
            (batch_count,),
            "batch {} is outside the chain",
        ),
        (
            "SELECT batch FROM snapshots WHERE batch < 1 OR batch > ? LIMIT 1",
            (batch_count,),
            "snapshot after batch {}: there is no such batch",
        ),
        ("SELECT id FROM journal WHERE id != 1 LIMIT 1", (), "creation record {} is not the one"),
    )
    for query, parameters, message in queries:
        row = db.execute(query, parameters).fetchone()
        if row is not None:
            return message.format(*(f"{value!s:.40}" for value in row))
    return None
