"""Journal storage: a small interface and its SQLite implementation (SK-STORE-1).

The durable journal (``durable.py``) talks to storage only through ``JournalStore``, so a
PostgreSQL backend can be added by implementing these methods; SQLite (standard library,
WAL, ``synchronous=FULL``) is the embedded default and the one implementation today.

A batch, its records, its postings and an optional snapshot are written in one transaction
(SK-JOURNAL-4): after a crash the database holds every committed batch and nothing of an
uncommitted one. Amounts are stored as decimal text because they reach 2**96, beyond
SQLite's 64-bit integers. Constraints and foreign keys refuse rows that could not have
been written by the journal (a record that is both accepted and rejected, a posting of no
entry, a hash of the wrong length); ``verify`` still re-checks everything, since a file can
be edited without going through SQLite.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

import attrs

from settlekernel.journal.batches import MISSING_POSTING, BatchHeader, PostingRow, Record
from settlekernel.journal.integrity import (
    BLOB,
    BLOB_OR_NULL,
    COUNT,
    COUNT_OR_NULL,
    TEXT,
    TEXT_OR_NULL,
    file_problem,
    reference_problem,
    row_problem,
    stray_problem,
)

# Version 2 added the snapshot interval to the creation record (SK-SNAPSHOT-1); version 3 the
# root mode (SK-JOURNAL-9), and accepted records without a state root in a batch-rooted one.
SCHEMA_VERSION: Final = 3

_SCHEMA: Final = """
CREATE TABLE schema_version (
    version INTEGER PRIMARY KEY
) STRICT;
CREATE TABLE journal (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    rules_toml TEXT NOT NULL,
    rules_digest BLOB NOT NULL CHECK (length(rules_digest) = 32),
    genesis_root BLOB NOT NULL CHECK (length(genesis_root) = 32),
    snapshot_every_entries INTEGER NOT NULL CHECK (snapshot_every_entries >= 1),
    root_mode TEXT NOT NULL CHECK (root_mode IN ('entry', 'batch'))
) STRICT;
CREATE TABLE records (
    attempt INTEGER PRIMARY KEY CHECK (attempt >= 1),
    line TEXT NOT NULL,
    sequence INTEGER UNIQUE CHECK (sequence >= 1),
    state_root BLOB CHECK (length(state_root) = 32),
    previous_hash BLOB CHECK (length(previous_hash) = 32),
    entry_hash BLOB UNIQUE CHECK (length(entry_hash) = 32),
    reason TEXT,
    message TEXT,
    events_chain BLOB NOT NULL CHECK (length(events_chain) = 32),
    -- Accepted (chained) or rejected (the audit trail), never both, never neither. A rejection
    -- has no state root; an entry has one unless its journal is batch-rooted (SK-JOURNAL-9),
    -- which verify checks against the journal's root mode.
    CHECK ((sequence IS NOT NULL OR state_root IS NULL)
       AND (sequence IS NULL) = (previous_hash IS NULL)
       AND (sequence IS NULL) = (entry_hash IS NULL)
       AND (sequence IS NULL) = (reason IS NOT NULL)
       AND (reason IS NULL) = (message IS NULL))
) STRICT;
CREATE TABLE postings (
    sequence INTEGER NOT NULL REFERENCES records (sequence),
    position INTEGER NOT NULL CHECK (position >= 0),
    debit_account TEXT NOT NULL,
    credit_account TEXT NOT NULL,
    asset TEXT NOT NULL,
    amount_minor TEXT NOT NULL,
    code TEXT NOT NULL,
    PRIMARY KEY (sequence, position)
) STRICT, WITHOUT ROWID;
CREATE TABLE batches (
    number INTEGER PRIMARY KEY CHECK (number >= 1),
    first_attempt INTEGER NOT NULL REFERENCES records (attempt),
    record_count INTEGER NOT NULL CHECK (record_count >= 1),
    first_sequence INTEGER NOT NULL CHECK (first_sequence >= 1),
    entry_count INTEGER NOT NULL CHECK (entry_count >= 0),
    previous_batch_hash BLOB NOT NULL CHECK (length(previous_batch_hash) = 32),
    previous_root BLOB NOT NULL CHECK (length(previous_root) = 32),
    events_hash BLOB NOT NULL CHECK (length(events_hash) = 32),
    postings_hash BLOB NOT NULL CHECK (length(postings_hash) = 32),
    new_root BLOB NOT NULL CHECK (length(new_root) = 32),
    head_hash BLOB NOT NULL CHECK (length(head_hash) = 32),
    batch_hash BLOB NOT NULL UNIQUE CHECK (length(batch_hash) = 32)
) STRICT;
CREATE TABLE snapshots (
    batch INTEGER PRIMARY KEY REFERENCES batches (number),
    state_root BLOB NOT NULL CHECK (length(state_root) = 32),
    encoding BLOB NOT NULL
) STRICT;
"""

_RECORD_COLUMNS: Final = (
    "attempt, line, sequence, state_root, previous_hash, entry_hash, reason, message, events_chain"
)
_BATCH_COLUMNS: Final = ", ".join(field.name for field in attrs.fields(BatchHeader))
# Queries are built once from the constant column lists above; no value is ever formatted in.
_CREATE: Final = f"BEGIN; {_SCHEMA} INSERT INTO schema_version VALUES ({SCHEMA_VERSION}); COMMIT;"  # noqa: S608
_INSERT_RECORD: Final = (
    f"INSERT INTO records ({_RECORD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
)
_INSERT_BATCH: Final = f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES ({', '.join('?' * 12)})"  # noqa: S608
_SELECT_LAST_BATCH: Final = f"SELECT {_BATCH_COLUMNS} FROM batches ORDER BY number DESC LIMIT 1"  # noqa: S608
_SELECT_BATCHES: Final = (
    f"SELECT {_BATCH_COLUMNS} FROM batches WHERE number BETWEEN ? AND ? ORDER BY number"  # noqa: S608
)
_SELECT_RECORDS: Final = (
    f"SELECT {_RECORD_COLUMNS} FROM records WHERE attempt BETWEEN ? AND ? ORDER BY attempt"  # noqa: S608
)
_SELECT_POSTINGS: Final = (
    "SELECT sequence, position, debit_account, credit_account, asset, amount_minor, code "
    "FROM postings WHERE sequence BETWEEN ? AND ? ORDER BY sequence, position"
)
_SELECT_META: Final = (
    "SELECT rules_toml, rules_digest, genesis_root, snapshot_every_entries, root_mode "
    "FROM journal WHERE id = 1"
)
_SELECT_SNAPSHOT_AT: Final = (
    "SELECT batch, state_root, encoding FROM snapshots WHERE batch <= ? ORDER BY batch DESC LIMIT 1"
)
_SELECT_SNAPSHOTS: Final = "SELECT batch, state_root, encoding FROM snapshots ORDER BY batch"
# What each read's columns must hold (SK-JOURNAL-8): a file edited byte by byte may hold any
# value a column decodes to, and nothing is used before its type is checked.
_RECORD_KINDS: Final = (
    COUNT,
    TEXT,
    COUNT_OR_NULL,
    BLOB_OR_NULL,
    BLOB_OR_NULL,
    BLOB_OR_NULL,
    TEXT_OR_NULL,
    TEXT_OR_NULL,
    BLOB,
)
_HEADER_KINDS: Final = (COUNT,) * 5 + (BLOB,) * 7
_POSTING_KINDS: Final = (COUNT, COUNT, TEXT, TEXT, TEXT, TEXT, TEXT)
_SNAPSHOT_KINDS: Final = (COUNT, BLOB, BLOB)
_META_KINDS: Final = (TEXT, BLOB, BLOB, COUNT, TEXT)
# No entry makes more postings than a batch has lines times this; a larger position is junk
# (and would make the list of positions absurdly long).
_POSITION_MAX: Final = 1_000_000


class StoreError(Exception):
    """The storage cannot be used as a journal: wrong schema, or not a journal at all."""


class WriterLockedError(StoreError):
    """Another writer holds the journal (SK-STORE-2)."""


class StoreWriteError(StoreError):
    """SQLite refused a write (a damaged file, a full disk); nothing of it was committed."""


class DamagedStoreError(StoreError):
    """A SQLite file (by its header) that SQLite cannot read: a damaged journal, perhaps."""


SQLITE_HEADER: Final = b"SQLite format 3\x00"
# What reading a damaged file can raise: SQLite's errors, a UnicodeDecodeError when the text
# SQLite returns (a value, or its own error message quoting the file) is not UTF-8, and an
# OverflowError when a value read from the file, passed back as a parameter, exceeds 64 bits.
SQLITE_FAILURES: Final = (sqlite3.Error, UnicodeDecodeError, OverflowError)


def inspect_file(path: Path, *, empty_is_absent: bool = False, required: bool = False) -> bool:
    """Return whether a journal exists at ``path`` (False: nothing there); write nothing.

    Reads the file without writing it or creating anything beside it: an empty file, a file
    without SQLite's header and a SQLite database without a ``schema_version`` table are
    refused as they are (SK-STORE-3).

    ``empty_is_absent`` treats a zero-byte file as nothing there (a writer holding the lock
    of a journal whose creation was cut short); ``required`` refuses a path with nothing.

    Raises:
        StoreError: ``path`` is not a journal, or its directory does not exist.
        DamagedStoreError: it has SQLite's header but SQLite cannot read its schema.
    """
    if not path.exists():
        if not path.parent.is_dir():
            raise StoreError(f"{path}: no such directory {path.parent}")
        if required:
            raise StoreError(f"{path}: no such file")
        return False
    try:
        with path.open("rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except OSError as error:
        raise StoreError(f"{path}: cannot be read ({error.strerror})") from error
    if not header:
        if empty_is_absent:
            return False
        raise StoreError(f"{path}: an empty file, not a journal")
    if header != SQLITE_HEADER:
        if _near_miss(header, SQLITE_HEADER):
            raise DamagedStoreError(f"{path}: the database file is damaged (its SQLite header)")
        raise StoreError(f"{path}: not a SQLite database, so not a journal")
    if "schema_version" not in _table_names(path):
        raise StoreError(f"{path}: a SQLite database of another application, not a journal")
    return True


def _near_miss(found: bytes, expected: bytes) -> bool:
    """Return whether ``found`` is ``expected`` with one or two bytes changed."""
    return (
        len(found) == len(expected)
        and sum(a != b for a, b in zip(found, expected, strict=True)) <= 2
    )


def _table_names(path: Path) -> set[str]:
    """Return the tables of the SQLite file at ``path``, reading it only.

    Without a write-ahead log beside it the file is read as immutable, which creates no
    ``-wal`` or ``-shm`` file; with one, SQLite must read the log, through a read-only
    connection.
    """
    immutable = "" if path.with_name(path.name + "-wal").exists() else "&immutable=1"
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro{immutable}", uri=True)
        try:
            return {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        finally:
            db.close()
    except SQLITE_FAILURES as error:
        raise DamagedStoreError(f"{path}: the database file is damaged ({error})") from error


class _WriterLock:
    """An exclusive ``flock`` on ``<journal>-lock``, held while a writer has the journal open.

    A separate file, because closing any descriptor of the database file itself would drop
    SQLite's own POSIX locks on it. The kernel releases the lock when the process dies, so a
    killed writer never leaves the journal locked; the empty lock file stays.
    """

    def __init__(self, path: Path) -> None:
        if not path.parent.is_dir():
            raise StoreError(f"{path}: no such directory {path.parent}")
        lock_path = path.with_name(path.name + "-lock")
        try:
            self._fd: int | None = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise StoreError(f"{lock_path}: cannot be opened ({error.strerror})") from error
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(self._fd)
            self._fd = None
            raise WriterLockedError(f"{path}: journal is locked by another writer") from error

    @staticmethod
    def exists_beside(path: Path) -> bool:
        """Return whether a writer ever opened the journal at ``path`` (its lock file exists)."""
        return path.with_name(path.name + "-lock").exists()

    def release(self) -> None:
        """Release the lock (closing the descriptor releases the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@attrs.frozen
class JournalMeta:
    """What a journal was created with: rules (TOML, digest), genesis root, snapshot interval.

    ``root_mode`` is ``"entry"`` or ``"batch"`` (``RootMode``, SK-JOURNAL-9) as created; as
    read from a file it may be anything a forger wrote, which the reader checks.
    """

    rules_toml: str
    rules_digest: bytes
    genesis_root: bytes
    snapshot_every_entries: int
    root_mode: str = "entry"


@attrs.frozen
class StoredSnapshot:
    """A snapshot as stored: the batch it follows, the root it claims, its encoding."""

    batch: int
    state_root: bytes
    encoding: bytes


class JournalStore(Protocol):
    """What the durable journal needs from storage; one implementation per database."""

    def read_meta(self) -> JournalMeta | None:
        """Return the journal's creation record, or None for an empty store."""

    def create(self, meta: JournalMeta) -> None:
        """Initialise an empty store as a journal."""

    def append(
        self, header: BatchHeader, records: Sequence[Record], snapshot: StoredSnapshot | None
    ) -> None:
        """Write one batch, its records and postings, and a snapshot, atomically and durably."""

    def last_batch(self) -> BatchHeader | None:
        """Return the header of the last committed batch, or None."""

    def batches(self, first: int, last: int) -> Iterator[BatchHeader]:
        """Yield the headers numbered ``first`` to ``last``, in order."""

    def records(self, first_attempt: int, last_attempt: int) -> list[Record]:
        """Return the records in the attempt range, in order, with their postings."""

    def snapshot_at_or_before(self, batch: int) -> StoredSnapshot | None:
        """Return the latest snapshot taken after a batch numbered ``batch`` or lower."""

    def snapshots(self) -> list[StoredSnapshot]:
        """Return every snapshot, by batch."""

    def file_problem(self) -> str | None:
        """Return the first problem of the storage itself (a damaged file), or None."""

    def reference_problem(self) -> str | None:
        """Return the first stored reference to a row that does not exist, or None."""

    def stray_problem(self, next_attempt: int, next_sequence: int, batch_count: int) -> str | None:
        """Return the first stored row outside the chain of the given extent, or None."""

    def close(self) -> None:
        """Release the store."""


class SqliteStore:
    """``JournalStore`` on one SQLite file: WAL, ``synchronous=FULL``, foreign keys on."""

    def __init__(self, path: Path, *, create: bool = True, readonly: bool = False) -> None:
        """Open the journal at ``path``; with ``create``, make a new one if nothing is there.

        A writer holds ``<path>-lock`` exclusively while open (SK-STORE-2); ``readonly``
        (audits and proofs) takes no lock and never writes. Only a path where nothing exists
        is created; an existing file is read, never written, until it is known to be a
        journal (SK-STORE-3).

        Raises:
            WriterLockedError: another writer holds the journal.
            DamagedStoreError: ``readonly``, and the file is SQLite's but cannot be read.
            StoreError: the file is not a settlekernel journal of this schema version.
        """
        self.path = path
        self._lock: _WriterLock | None = None
        if readonly or not _WriterLock.exists_beside(path):
            # Nothing shows this is a journal: read it before anything is created beside it.
            inspect_file(path, required=readonly or not create)
        if readonly:
            self._db = _connect(f"{path.resolve().as_uri()}?mode=ro", DamagedStoreError, uri=True)
            self._checked(create=False, damaged=DamagedStoreError)
            return
        # Only a journal, or nothing yet, gets a lock file beside it. The file is looked at
        # again under the lock: another writer may have created it in between. Beside a lock
        # file, an empty file is a journal whose creation was cut short, and is created.
        self._lock = _WriterLock(path)
        try:
            exists = inspect_file(path, empty_is_absent=True, required=not create)
            self._db = _connect(str(path), StoreError)
        except BaseException:
            self._lock.release()
            raise
        # WAL with synchronous=FULL: a commit is on disk when COMMIT returns, and a torn
        # write of the WAL is discarded on the next open (SK-JOURNAL-4).
        self._checked(create=not exists, damaged=StoreError)

    def _checked(self, *, create: bool, damaged: type[StoreError]) -> None:
        """Set the writer's pragmas (unless read-only) and check the schema; close if it fails."""
        try:
            if self._lock is not None:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute("PRAGMA foreign_keys=ON")
            self._check_schema(create=create)
        except StoreError as error:
            self.close()
            raise StoreError(f"{self.path}: not a settlekernel journal ({error})") from error
        except SQLITE_FAILURES as error:
            self.close()
            raise damaged(f"{self.path}: the database file is damaged ({error})") from error

    def _check_schema(self, *, create: bool) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        if "schema_version" not in tables:
            if tables or not create:
                raise StoreError("a database, but without a schema_version table")
            self._db.executescript(_CREATE)
            return
        versions = [row[0] for row in self._db.execute("SELECT version FROM schema_version")]
        if versions != [SCHEMA_VERSION]:
            raise StoreError(f"schema version {versions}, expected [{SCHEMA_VERSION}]")

    def _rows(
        self, query: str, parameters: tuple[object, ...], table: str, kinds: tuple[str, ...]
    ) -> list[tuple[Any, ...]]:
        """Run a read, checking each row's types; a file SQLite cannot read is damaged."""
        try:
            rows = self._db.execute(query, parameters).fetchall()
        except SQLITE_FAILURES as error:
            raise DamagedStoreError(f"the database file is damaged ({error})") from error
        columns = query.split("SELECT ", 1)[1].split(" FROM ", 1)[0].split(", ")
        for row in rows:
            problem = row_problem(table, columns, kinds, row)
            if problem is not None:
                raise DamagedStoreError(problem)
        return [tuple(row) for row in rows]

    def read_meta(self) -> JournalMeta | None:
        """Return the journal's creation record, or None for an empty store."""
        rows = self._rows(_SELECT_META, (), "journal", _META_KINDS)
        return JournalMeta(*rows[0]) if rows else None

    def create(self, meta: JournalMeta) -> None:
        """Initialise an empty store as a journal."""
        with _Transaction(self._db):
            self._db.execute(
                "INSERT INTO journal VALUES (1, ?, ?, ?, ?, ?)",
                (
                    meta.rules_toml,
                    meta.rules_digest,
                    meta.genesis_root,
                    meta.snapshot_every_entries,
                    meta.root_mode,
                ),
            )

    def append(
        self, header: BatchHeader, records: Sequence[Record], snapshot: StoredSnapshot | None
    ) -> None:
        """Write one batch, its records and postings, and a snapshot, in one transaction."""
        with _Transaction(self._db):
            # Every column but the postings, in _RECORD_COLUMNS' order (a tuple per record
            # built directly: attrs.astuple costs more than the insert itself).
            self._db.executemany(
                _INSERT_RECORD,
                [
                    (
                        r.attempt,
                        r.line,
                        r.sequence,
                        r.state_root,
                        r.previous_hash,
                        r.entry_hash,
                        r.reason,
                        r.message,
                        r.events_chain,
                    )
                    for r in records
                ],
            )
            self._db.executemany(
                "INSERT INTO postings VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (r.sequence, position, *row)
                    for r in records
                    for position, row in enumerate(r.postings)
                ],
            )
            self._db.execute(_INSERT_BATCH, attrs.astuple(header))
            if snapshot is not None:
                self._db.execute(
                    "INSERT INTO snapshots VALUES (?, ?, ?)",
                    (snapshot.batch, snapshot.state_root, snapshot.encoding),
                )

    def last_batch(self) -> BatchHeader | None:
        """Return the header of the last committed batch, or None."""
        rows = self._rows(_SELECT_LAST_BATCH, (), "batches", _HEADER_KINDS)
        return BatchHeader(*rows[0]) if rows else None

    def batches(self, first: int, last: int) -> Iterator[BatchHeader]:
        """Yield the headers numbered ``first`` to ``last``, in order."""
        rows = self._rows(_SELECT_BATCHES, (first, last), "batches", _HEADER_KINDS)
        return iter([BatchHeader(*row) for row in rows])

    def records(self, first_attempt: int, last_attempt: int) -> list[Record]:
        """Return the records in the attempt range, in order, with their postings."""
        rows = self._rows(_SELECT_RECORDS, (first_attempt, last_attempt), "records", _RECORD_KINDS)
        sequences = [row[2] for row in rows if row[2] is not None]
        postings = self._postings(min(sequences), max(sequences)) if sequences else {}
        return [_record(row, tuple(postings.get(row[2], ()))) for row in rows]

    def _postings(self, first: int, last: int) -> dict[int, list[PostingRow]]:
        """Return the postings per sequence, each at its stored position (gaps marked)."""
        by_position: dict[int, dict[int, PostingRow]] = {}
        for sequence, position, *row in self._rows(
            _SELECT_POSTINGS, (first, last), "postings", _POSTING_KINDS
        ):
            if position > _POSITION_MAX:
                raise DamagedStoreError(f"postings row {sequence}: position {position} is absurd")
            by_position.setdefault(sequence, {})[position] = tuple(row)
        return {
            sequence: [rows.get(i, MISSING_POSTING) for i in range(max(rows) + 1)]
            for sequence, rows in by_position.items()
        }

    def snapshot_at_or_before(self, batch: int) -> StoredSnapshot | None:
        """Return the latest snapshot taken after a batch numbered ``batch`` or lower."""
        rows = self._rows(_SELECT_SNAPSHOT_AT, (batch,), "snapshots", _SNAPSHOT_KINDS)
        return StoredSnapshot(*rows[0]) if rows else None

    def snapshots(self) -> list[StoredSnapshot]:
        """Return every snapshot, by batch."""
        rows = self._rows(_SELECT_SNAPSHOTS, (), "snapshots", _SNAPSHOT_KINDS)
        return [StoredSnapshot(*row) for row in rows]

    def file_problem(self) -> str | None:
        """Return the first problem SQLite's ``integrity_check`` finds, or None."""
        try:
            return file_problem(self._db)
        except SQLITE_FAILURES as error:
            return f"the database file is damaged ({error})"

    def reference_problem(self) -> str | None:
        """Return the first row ``foreign_key_check`` finds referring to nothing, or None."""
        try:
            return reference_problem(self._db)
        except SQLITE_FAILURES as error:
            return f"the database file is damaged ({error})"

    def stray_problem(self, next_attempt: int, next_sequence: int, batch_count: int) -> str | None:
        """Return the first stored row outside the chain of the given extent, or None."""
        try:
            return stray_problem(self._db, next_attempt, next_sequence, batch_count)
        except SQLITE_FAILURES as error:
            return f"the database file is damaged ({error})"

    def close(self) -> None:
        """Close the connection (the last one checkpoints the WAL), then release the lock."""
        try:
            self._db.close()
        finally:
            if self._lock is not None:
                self._lock.release()


def _connect(target: str, failure: type[StoreError], *, uri: bool = False) -> sqlite3.Connection:
    """Connect to a journal file (a path, or a ``file:`` URI); SQLite's refusal is ``failure``."""
    try:
        return sqlite3.connect(
            target,
            uri=uri,
            isolation_level=None,
            check_same_thread=False,
        )
    except SQLITE_FAILURES as error:
        raise failure(f"{target}: cannot be opened ({error})") from error


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` if the block raises.

    A write SQLite refuses (a damaged file, a full disk) is a ``StoreWriteError``: nothing of
    the transaction is committed, since SQLite discards a transaction that never commits.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except SQLITE_FAILURES as error:
            raise StoreWriteError(f"nothing was written ({error})") from error

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        try:
            if kind is None:
                self._db.execute("COMMIT")
                return
            self._db.execute("ROLLBACK")
        except SQLITE_FAILURES as failure:
            self._rollback_quietly()
            raise StoreWriteError(f"nothing was written ({failure})") from failure
        if isinstance(error, SQLITE_FAILURES):
            raise StoreWriteError(f"nothing was written ({error})") from error

    def _rollback_quietly(self) -> None:
        """Roll back if SQLite still can; if not, closing discards the transaction anyway."""
        try:
            self._db.execute("ROLLBACK")
        except SQLITE_FAILURES:
            return


def _record(row: Any, postings: tuple[PostingRow, ...]) -> Record:  # noqa: ANN401 (a SQLite row)
    attempt, line, sequence, root, previous_hash, entry_hash, reason, message, chain = row
    return Record(
        attempt, line, sequence, root, previous_hash, entry_hash, reason, message, chain, postings
    )
