"""The durable journal: batches of events on a ``JournalStore`` (spec/40-roots.md#durable-journal).

This is the imperative shell around the pure kernel and ``batches.execute_batch``:

- ``DurableJournal.open`` creates a journal (storing its rules) or recovers one: it loads
  the latest snapshot, checks the snapshot's root, and replays only the batches after it,
  checking each batch's new root (SK-JOURNAL-6, SK-SNAPSHOT-3).
- ``append`` executes a batch of wire lines and writes it, with a periodic snapshot, in one
  transaction (SK-JOURNAL-4), with the cyclic GC paused (``gcpause.gc_paused``).
- A journal roots its state after every entry or once per batch (``RootMode``,
  SK-JOURNAL-9), as fixed when it was created and stored in its creation record.
- ``audit`` (behind ``journal verify``, ``journal replay`` and ``journal verify-batch``)
  re-executes from genesis, or from a snapshot checked against the previous batch's root,
  and trusts no stored root: it returns the first ``Finding`` that names the batch, the
  record, the entry and the field that differ (SK-JOURNAL-7, SK-BATCH-5).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Final

from settlekernel.commitments.snapshot import SnapshotError, decode_state, encode_state
from settlekernel.core.model import State
from settlekernel.core.outcomes import Accepted
from settlekernel.core.root import fold, state_root
from settlekernel.core.rules import DEFAULT_RULES, RuleSet
from settlekernel.core.rules_toml import RulesError, dump_rules_toml, parse_rules_toml
from settlekernel.core.wire import decode_event
from settlekernel.journal.batches import (
    BATCH_LINES_MAX,
    BatchHeader,
    ExecutedBatch,
    Record,
    RootMode,
    execute_batch,
)
from settlekernel.journal.gcpause import gc_paused
from settlekernel.journal.store import JournalMeta, JournalStore, SqliteStore, StoredSnapshot
from settlekernel.kernel.dispatch import genesis, step

# A snapshot is taken with the first batch that brings this many entries since the last.
SNAPSHOT_EVERY_ENTRIES: Final = 50_000


class JournalError(Exception):
    """A journal that cannot be opened or appended to; the message says why."""


class RulesMismatchError(JournalError):
    """The caller's rules are not the rules the journal was created under."""


class RootModeMismatchError(JournalError):
    """The caller's root mode is not the one the journal was created with (SK-JOURNAL-9)."""


class DurableJournal:
    """A journal on a store: the recovered state, the last batch, and appends."""

    def __init__(  # noqa: PLR0913, PLR0917 (the recovered journal, field by field)
        self,
        store: JournalStore,
        rules: RuleSet,
        genesis_root: bytes,
        state: State,
        head: BatchHeader | None,
        snapshot_every_entries: int,
        root_mode: RootMode = RootMode.ENTRY,
    ) -> None:
        """Wrap a recovered journal; use ``DurableJournal.open``."""
        self.store: Final = store
        self.root_mode: Final = root_mode
        self.rules: Final = rules
        self.genesis_root: Final = genesis_root
        self.state = state
        self.head = head
        self.snapshot_every_entries = snapshot_every_entries
        self._entries_at_snapshot = _entries_at_latest_snapshot(store, head)

    @classmethod
    def open(
        cls,
        path: Path,
        rules: RuleSet | None = None,
        snapshot_every_entries: int | None = None,
        root_mode: RootMode | None = None,
    ) -> DurableJournal:
        """Open the journal at ``path``, creating it under ``rules`` (default rules) if new.

        ``snapshot_every_entries`` is fixed when the journal is created (by default
        ``SNAPSHOT_EVERY_ENTRIES``) and stored with it, so that ``verify`` knows where every
        snapshot must be (SK-SNAPSHOT-1). So is ``root_mode`` (by default ``RootMode.ENTRY``,
        a state root after every entry; ``RootMode.BATCH`` roots the state once per batch,
        SK-JOURNAL-9), so that a verifier knows how the file's entries are chained.

        Raises:
            StoreError: not a journal, or another writer holds it.
            JournalError: ``rules``, ``snapshot_every_entries`` or ``root_mode`` differ from
                the journal's own; or the stored data does not replay to its stored roots
                (run ``audit``).
        """
        store = SqliteStore(path)
        try:
            journal_rules, genesis_root = _journal_rules(
                store, rules, snapshot_every_entries, root_mode
            )
            every = _snapshot_interval(store, snapshot_every_entries)
            mode = _root_mode(store, root_mode)
            state, head = recover(store, journal_rules, genesis_root)
        except Exception:
            store.close()
            raise
        return cls(store, journal_rules, genesis_root, state, head, every, mode)

    @property
    def entry_count(self) -> int:
        """Return the number of chained (accepted) entries."""
        return 0 if self.head is None else _entries_through(self.head)

    def append(self, lines: Sequence[str]) -> ExecutedBatch:
        """Execute ``lines`` as one batch and commit it durably; return what was written.

        Raises:
            JournalError: the batch is empty or holds more than ``BATCH_LINES_MAX`` lines.
        """
        if not 1 <= len(lines) <= BATCH_LINES_MAX:
            raise JournalError(f"a batch holds 1 to {BATCH_LINES_MAX} lines, not {len(lines)}")
        # The batch's states, records and postings all live until it commits: none of them
        # is garbage, so the cyclic collector is kept from traversing them (gcpause).
        with gc_paused():
            executed = execute_batch(
                self.state, self.head, self.genesis_root, lines, self.root_mode
            )
            header = executed.header
            snapshot = None
            if _entries_through(header) - self._entries_at_snapshot >= self.snapshot_every_entries:
                encoding = encode_state(executed.state)
                snapshot = StoredSnapshot(header.number, header.new_root, encoding)
            self.store.append(header, executed.records, snapshot)
        # Only once the transaction has committed does the journal move on.
        self.state, self.head = executed.state, header
        if snapshot is not None:
            self._entries_at_snapshot = _entries_through(header)
        return executed

    def close(self) -> None:
        """Close the store."""
        self.store.close()


def _entries_through(header: BatchHeader) -> int:
    return header.first_sequence + header.entry_count - 1


def _entries_at_latest_snapshot(store: JournalStore, head: BatchHeader | None) -> int:
    if head is None:
        return 0
    snapshot = store.snapshot_at_or_before(head.number)
    if snapshot is None:
        return 0
    return next(_entries_through(h) for h in store.batches(snapshot.batch, snapshot.batch))


def open_for_audit(path: Path) -> tuple[SqliteStore, RuleSet, bytes]:
    """Open an existing journal without recovering it: its store, rules and genesis root.

    Raises:
        StoreError: ``path`` is not a journal.
        JournalError: its stored rules do not parse or do not match their digest.
    """
    store = SqliteStore(path, readonly=True)
    if store.read_meta() is None:
        store.close()
        raise JournalError(f"{path}: an empty journal (nothing was ever appended)")
    try:
        rules, genesis_root = _journal_rules(store, None)
    except JournalError:
        store.close()
        raise
    return store, rules, genesis_root


def recover_readonly(path: Path) -> tuple[State, BatchHeader | None]:
    """Return the state after the last batch of the journal at ``path``, reading it only.

    Raises:
        StoreError: ``path`` is not a journal.
        JournalError: its rules or its stored roots do not check (run ``audit``).
    """
    store, rules, genesis_root = open_for_audit(path)
    try:
        return recover(store, rules, genesis_root)
    finally:
        store.close()


def _snapshot_interval(store: JournalStore, requested: int | None) -> int:
    """Return the journal's stored snapshot interval, which a caller may only restate."""
    meta = store.read_meta()
    stored = SNAPSHOT_EVERY_ENTRIES if meta is None else meta.snapshot_every_entries
    if requested not in {None, stored}:
        raise JournalError(f"the journal snapshots every {stored} entries, not {requested}")
    return stored


def parse_root_mode(text: str) -> RootMode:
    """Return the root mode a creation record names (SK-JOURNAL-9).

    Raises:
        JournalError: it names none (a file edited outside the journal).
    """
    try:
        return RootMode(text)
    except ValueError:
        raise JournalError(
            f"the journal's root mode {text!r:.40} is neither 'entry' nor 'batch'"
        ) from None


def _root_mode(store: JournalStore, requested: RootMode | None) -> RootMode:
    """Return the journal's stored root mode, which a caller may only restate."""
    meta = store.read_meta()
    stored = RootMode.ENTRY if meta is None else parse_root_mode(meta.root_mode)
    if requested not in {None, stored}:
        message = f"the journal roots its state per {stored.value}, not per {requested}"
        raise RootModeMismatchError(message)
    return stored


def _journal_rules(
    store: JournalStore,
    rules: RuleSet | None,
    snapshot_every_entries: int | None = None,
    root_mode: RootMode | None = None,
) -> tuple[RuleSet, bytes]:
    """Return the journal's rules and genesis root, creating the journal if it is new."""
    meta = store.read_meta()
    if meta is None:
        rules = DEFAULT_RULES if rules is None else rules
        genesis_root = state_root(genesis(rules))
        every = SNAPSHOT_EVERY_ENTRIES if snapshot_every_entries is None else snapshot_every_entries
        if every < 1:
            raise JournalError(f"a journal snapshots every 1 or more entries, not {every}")
        mode = RootMode.ENTRY if root_mode is None else RootMode(root_mode)
        store.create(
            JournalMeta(dump_rules_toml(rules), rules.digest, genesis_root, every, mode.value)
        )
        return rules, genesis_root
    try:
        stored = parse_rules_toml(meta.rules_toml)
    except RulesError as error:
        raise JournalError(f"the journal's stored rules do not parse: {error}") from error
    if stored.digest != meta.rules_digest:
        raise JournalError("the journal's stored rules do not match their digest")
    if rules is not None and rules.digest != stored.digest:
        raise RulesMismatchError("the journal was created under other rules")
    return stored, meta.genesis_root


def recover(
    store: JournalStore, rules: RuleSet, genesis_root: bytes
) -> tuple[State, BatchHeader | None]:
    """Return the state after the last committed batch, replaying only the tail (SK-JOURNAL-6).

    Raises:
        JournalError: the snapshot or a tail batch does not reproduce its stored root.
    """
    head = store.last_batch()
    if head is None:
        return genesis(rules), None
    state, after_batch = _start_state(store, rules, genesis_root, head.number)
    for header in store.batches(after_batch + 1, head.number):
        with gc_paused():
            state = replay_accepted(state, _records_of(store, header))
        if state_root(state) != header.new_root:
            raise JournalError(
                f"batch {header.number} does not replay to its stored root; "
                "run `settlekernel journal verify` to locate the difference"
            )
    return state, head


def _start_state(
    store: JournalStore, rules: RuleSet, genesis_root: bytes, before_batch: int
) -> tuple[State, int]:
    """Return the latest snapshot's state at or before ``before_batch``, checked (SK-SNAPSHOT-3)."""
    snapshot = store.snapshot_at_or_before(before_batch)
    if snapshot is None:
        state = genesis(rules)
        if state_root(state) != genesis_root:
            raise JournalError("the stored genesis root is not the rules' genesis root")
        return state, 0
    problem = check_snapshot(store, rules, snapshot)
    if isinstance(problem, str):
        raise JournalError(f"snapshot after batch {snapshot.batch}: {problem}")
    return problem, snapshot.batch


def check_snapshot(store: JournalStore, rules: RuleSet, snapshot: StoredSnapshot) -> State | str:
    """Return the snapshot's state if its root is the stored one and its batch's; else why not."""
    try:
        state = decode_state(snapshot.encoding, rules)
    except SnapshotError as error:
        return str(error)
    root = state_root(state)
    if root != snapshot.state_root:
        return (
            f"encoding decodes to root {root.hex()[:16]}, stored {snapshot.state_root.hex()[:16]}"
        )
    batch_root = next((h.new_root for h in store.batches(snapshot.batch, snapshot.batch)), None)
    if batch_root != root:
        return "its root is not the new root of its batch"
    return state


def _records_of(store: JournalStore, header: BatchHeader) -> list[Record]:
    return store.records(header.first_attempt, header.first_attempt + header.record_count - 1)


def replay_accepted(state: State, records: Sequence[Record]) -> State:
    """Apply the accepted records' events, folding once at the end (the recovery fast path).

    A record whose event no longer decodes or is rejected is skipped: the root at the end of
    the batch then differs from the stored one, which the caller checks.
    """
    for record in records:
        if record.sequence is None:
            continue
        event = decode_event(record.line, record.attempt)
        outcome = step(state, event)
        if isinstance(outcome, Accepted):
            state = outcome.state
    return fold(state)


def iter_batches(store: JournalStore, first: int = 1) -> Iterator[tuple[BatchHeader, list[Record]]]:
    """Yield every batch from ``first`` on with its records, in order."""
    head = store.last_batch()
    if head is None:
        return
    for header in store.batches(first, head.number):
        yield header, _records_of(store, header)
