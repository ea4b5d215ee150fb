"""Re-execute a durable journal and locate the first difference (spec/40-roots.md#audit).

``audit_journal`` replays every batch from genesis under the journal's own rules and trusts
no stored root, hash or posting: each is recomputed and compared, and the first difference
is a ``Finding`` naming the batch, the record (attempt), the entry (sequence) and the field
(SK-JOURNAL-7). ``audit_batch_number`` checks one batch from its pre-state, which it derives
from a snapshot checked against the previous batch's committed root (SK-BATCH-5).

Where a single stored field was changed, the finding names that field: a changed event, a
changed state root, a changed entry hash and a broken link leave different traces in the
entry hash, the next entry's link and the batch's events chain, and the checks below
read them in that order.

A batch-rooted journal (SK-JOURNAL-9) has no state root per entry: its entry hashes commit to
each entry's postings instead, and its state is compared with the stored root once per batch.
"""

from __future__ import annotations

from typing import Final

import attrs

from settlekernel.core.model import State
from settlekernel.core.root import fold, state_root
from settlekernel.core.rules import RuleSet
from settlekernel.journal.batches import (
    MISSING_POSTING,
    POSTING_FIELDS,
    BatchHeader,
    ChainPosition,
    Record,
    RootMode,
    compute_batch_hash,
    compute_events_chain,
    compute_events_seed,
    compute_postings_hash,
    compute_record_entry_hash,
    execute_line,
    first_position,
)
from settlekernel.journal.durable import (
    SNAPSHOT_EVERY_ENTRIES,
    JournalError,
    check_snapshot,
    iter_batches,
    parse_root_mode,
    replay_accepted,
)
from settlekernel.journal.gcpause import gc_paused
from settlekernel.journal.store import DamagedStoreError, JournalStore
from settlekernel.kernel.dispatch import genesis

# The most records any one audit reads at a time is one batch; this bounds the trailing scan.
ATTEMPT_MAX: Final = 2**62


@attrs.frozen
class Finding:
    """The first stored value that differs from re-execution, and where it is."""

    where: str
    field: str
    detail: str

    def __str__(self) -> str:
        """Return ``where: field: detail``."""
        return f"{self.where}: {self.field}: {self.detail}"


@attrs.frozen
class AuditReport:
    """What an audit re-executed, the root and head it reached, and its first finding (or None).

    ``head_batch_hash`` is the hash of the last batch re-executed without a finding (the
    genesis root before any): the value to publish, and to pin with ``expect_head``.
    """

    finding: Finding | None
    batches: int
    records: int
    entries: int
    final_root: bytes
    head_batch_hash: bytes = b""


@attrs.define
class _Cursor:
    """Where re-execution stands: the state and the chain heads after the last good batch."""

    state: State
    number: int
    at: ChainPosition
    batch_hash: bytes
    records: int = 0
    # The snapshot schedule (SK-SNAPSHOT-1): entries at the last snapshot due, and the
    # hashes of the batches re-executed so far (a published head must be one of them).
    entries_at_snapshot: int = 0
    batch_hashes: set[bytes] = attrs.field(factory=set)


def _hex(value: bytes | None) -> str:
    return "none" if value is None else value.hex()[:16]


def _show(value: int | bytes) -> str:
    return _hex(value) if isinstance(value, bytes) else str(value)


def _record_where(number: int, record: Record) -> str:
    entry = "" if record.sequence is None else f" (entry {record.sequence})"
    return f"batch {number}, record {record.attempt}{entry}"


def audit_journal(
    store: JournalStore,
    rules: RuleSet,
    genesis_root: bytes,
    *,
    full: bool = True,
    expect_head: bytes | None = None,
) -> AuditReport:
    """Re-execute the whole journal; ``full=False`` compares only accepted-ness and roots.

    ``expect_head`` is a batch hash published earlier: the journal must still hold that
    batch, which is how a journal cut short is told from one that is merely short
    (SK-JOURNAL-8). No content of the store makes this raise: a file SQLite cannot read,
    or a row of the wrong type, is a finding too.
    """
    cursor = _Cursor(genesis(rules), 0, first_position(None, genesis_root), genesis_root)
    try:
        mode = _stored_root_mode(store)
        if isinstance(mode, Finding):
            return _report(cursor, mode)
        cursor.at = first_position(None, genesis_root, mode)
        finding = _audit_all(store, rules, cursor, full=full)
        if finding is None and expect_head is not None:
            finding = _check_expected_head(cursor, expect_head)
    except DamagedStoreError as error:
        finding = Finding("database", "damaged", str(error))
    return _report(cursor, finding)


def _stored_root_mode(store: JournalStore) -> RootMode | Finding:
    """Return the journal's root mode (SK-JOURNAL-9), or a finding if the file names none.

    Raises:
        DamagedStoreError: the creation record cannot be read.
    """
    meta = store.read_meta()
    if meta is None:
        return RootMode.ENTRY
    try:
        return parse_root_mode(meta.root_mode)
    except JournalError as error:
        return Finding("journal", "root_mode", str(error))


def _audit_all(
    store: JournalStore, rules: RuleSet, cursor: _Cursor, *, full: bool
) -> Finding | None:
    """Check the file, then every batch in order, then that no row lies outside the chain."""
    problem = store.file_problem() if full else None
    if problem is not None:
        return Finding("database", "file", problem)
    if state_root(cursor.state) != cursor.batch_hash:
        return Finding("journal", "genesis_root", "is not the root of the rules' genesis")
    meta = store.read_meta()
    every = SNAPSHOT_EVERY_ENTRIES if meta is None else meta.snapshot_every_entries
    batches = iter_batches(store)
    current = next(batches, None)
    while current is not None:
        following = next(batches, None)
        header, records = current
        boundary = following[0].first_attempt if following is not None else None
        # One batch at a time with the cyclic GC paused (gcpause): whatever a batch leaves
        # behind is collected between batches.
        with gc_paused():
            finding: Finding | None = audit_batch(
                store, cursor, header, records, boundary, full=full
            )
        if finding is None and full:
            finding = _audit_snapshot(store, rules, cursor, every)
        if finding is not None:
            return finding
        current = following
    trailing = store.records(cursor.at.attempt, ATTEMPT_MAX)
    if trailing:
        where = f"record {trailing[0].attempt}"
        return Finding(where, "batch", "is stored after the last batch")
    if not full:
        return None
    stray = store.stray_problem(cursor.at.attempt, cursor.at.sequence, cursor.number)
    if stray is not None:
        return Finding("database", "stray row", stray)
    problem = store.reference_problem()
    return None if problem is None else Finding("database", "reference", problem)


def _check_expected_head(cursor: _Cursor, expect_head: bytes) -> Finding | None:
    """Find the published head among the batches re-executed, or say the journal lost it."""
    if expect_head in cursor.batch_hashes:
        return None
    detail = (
        f"the published head {_hex(expect_head)} is not a batch of this journal, whose head is "
        f"batch {cursor.number} ({_hex(cursor.batch_hash)}): it was cut short or rewritten"
    )
    return Finding("journal", "head", detail)


def _report(cursor: _Cursor, finding: Finding | None) -> AuditReport:
    return AuditReport(
        finding,
        cursor.number,
        cursor.records,
        cursor.at.sequence - 1,
        state_root(cursor.state),
        cursor.batch_hash,
    )


def _audit_snapshot(
    store: JournalStore, rules: RuleSet, cursor: _Cursor, every: int
) -> Finding | None:
    """Check the snapshot after the batch just audited: there if and only if due, and right."""
    snapshot = store.snapshot_at_or_before(cursor.number)
    present = snapshot is not None and snapshot.batch == cursor.number
    entries = cursor.at.sequence - 1
    due = entries - cursor.entries_at_snapshot >= every
    if due:
        cursor.entries_at_snapshot = entries
    where = f"snapshot after batch {cursor.number}"
    if due and not present:
        return Finding(where, "snapshot", f"missing: the journal snapshots every {every} entries")
    if snapshot is None or not present:
        return None
    if not due:
        detail = f"not due: the journal snapshots every {every} entries"
        return Finding(where, "snapshot", detail)
    root = state_root(cursor.state)
    if snapshot.state_root != root:
        detail = f"stored {_hex(snapshot.state_root)}, replay {_hex(root)}"
        return Finding(where, "state_root", detail)
    checked = check_snapshot(store, rules, snapshot)
    if isinstance(checked, str):
        return Finding(where, "encoding", checked)
    if checked != cursor.state:
        return Finding(where, "encoding", "decodes to a state other than the replayed one")
    return None


def audit_batch(  # noqa: PLR0913 (the store, the cursor, the batch and its neighbour)
    store: JournalStore,
    cursor: _Cursor,
    header: BatchHeader,
    records: list[Record],
    boundary: int | None,
    *,
    full: bool = True,
) -> Finding | None:
    """Re-execute one batch from ``cursor``; advance it and return None, or the first finding.

    ``boundary`` is the next batch's first attempt (None for the last batch): it tells a
    changed record count from a changed record.
    """
    found = _check_header_start(store, cursor, header, records, boundary)
    if found is not None:
        return found
    at = attrs.evolve(cursor.at, events_chain=compute_events_seed(header.number))
    links = _next_links(records, header.head_hash)
    for index, record in enumerate(records):
        expected, after, at = execute_line(cursor.state, record.line, at)
        following = records[index + 1] if index + 1 < len(records) else None
        found = _check_line(header, record, expected, following)
        if found is None:
            found = _compare_record(header.number, record, expected, links[index], at, full=full)
        if found is not None:
            return found
        cursor.state, cursor.at, cursor.records = after, at, cursor.records + 1
    # A batch-rooted batch leaves its leaves dirty (SK-JOURNAL-9): fold them once, so that
    # the roots taken from here on cost nothing and the next batch starts clean.
    cursor.state = fold(cursor.state)
    found = _check_header_end(cursor, header, records, full=full)
    if found is not None:
        return found
    cursor.number, cursor.batch_hash = header.number, header.batch_hash
    cursor.batch_hashes.add(header.batch_hash)
    return None


def _check_header_start(
    store: JournalStore,
    cursor: _Cursor,
    header: BatchHeader,
    records: list[Record],
    boundary: int | None,
) -> Finding | None:
    """Check where the batch claims to start against where the previous one ended."""
    where = f"batch {header.number}"
    checks = (
        ("number", header.number, cursor.number + 1),
        ("previous_batch_hash", header.previous_batch_hash, cursor.batch_hash),
        ("first_attempt", header.first_attempt, cursor.at.attempt),
        ("first_sequence", header.first_sequence, cursor.at.sequence),
        ("previous_root", header.previous_root, state_root(cursor.state)),
    )
    for field, stored, expected in checks:
        if stored != expected:
            return Finding(where, field, f"stored {_show(stored)}, expected {_show(expected)}")
    attempts = [r.attempt for r in records]
    if attempts != list(range(header.first_attempt, header.first_attempt + len(records))):
        return Finding(where, "record_count", "the batch's records are not contiguous")
    end = header.first_attempt + header.record_count
    if boundary is None:
        runs_on = len(records) < header.record_count or bool(store.records(end, end))
    else:
        runs_on = boundary != end
    # A header whose own hash fails and whose range is not its records' is the one changed.
    if runs_on and compute_batch_hash(header, cursor.at.root_mode) != header.batch_hash:
        detail = f"{header.record_count} claimed; the next batch starts at attempt {boundary}"
        if boundary is None:
            detail = f"{header.record_count} claimed, {len(records)} stored before the end"
        return Finding(where, "record_count", detail)
    if len(records) < header.record_count:
        missing = f"{where}, record {header.first_attempt + len(records)}"
        return Finding(missing, "attempt", "no record is stored under this attempt number")
    return None


def _check_line(
    header: BatchHeader, stored: Record, expected: Record, following: Record | None
) -> Finding | None:
    """Check the record's line against the batch's events chain (SK-BATCH-2)."""
    if stored.events_chain == expected.events_chain:
        return None
    where = _record_where(header.number, stored)
    if following is not None:
        chain_intact = compute_events_chain(stored.events_chain, following.line) == (
            following.events_chain
        )
    else:
        chain_intact = stored.events_chain == header.events_hash
    if chain_intact:
        return Finding(
            where, "event", "the line is not the one the batch's events chain commits to"
        )
    return Finding(where, "events_chain", _differs(stored.events_chain, expected.events_chain))


def _check_header_end(
    cursor: _Cursor, header: BatchHeader, records: list[Record], *, full: bool
) -> Finding | None:
    """Check the batch's commitments against what re-execution produced (SK-BATCH-1)."""
    checks: list[tuple[str, int | bytes, int | bytes]] = [
        ("new_root", header.new_root, state_root(cursor.state))
    ]
    if full:
        checks += [
            ("entry_count", header.entry_count, cursor.at.sequence - header.first_sequence),
            ("events_hash", header.events_hash, cursor.at.events_chain),
            ("postings_hash", header.postings_hash, compute_postings_hash(records)),
            ("head_hash", header.head_hash, cursor.at.head_hash),
            ("batch_hash", header.batch_hash, compute_batch_hash(header, cursor.at.root_mode)),
        ]
    for field, stored, expected in checks:
        if stored != expected:
            detail = f"stored {_show(stored)}, recomputed {_show(expected)}"
            return Finding(f"batch {header.number}", field, detail)
    return None


def _compare_record(  # noqa: PLR0913 (the record, its replay, its link and its chain)
    number: int,
    stored: Record,
    expected: Record,
    next_link: bytes,
    at: ChainPosition,
    *,
    full: bool,
) -> Finding | None:
    """Return how a stored record differs from its re-execution, naming the field."""
    where = _record_where(number, stored)
    if (stored.sequence is None) != (expected.sequence is None):
        if expected.sequence is None:
            detail = (
                f"stored as accepted, rejected on replay ({expected.reason}: {expected.message})"
            )
        else:
            detail = "stored as rejected, accepted on replay"
        return Finding(where, "event", detail)
    if expected.sequence is None:
        if not full:
            return None
        return _compare_rejection(where, stored, expected) or _check_form(where, stored)
    if not full:
        # A batch-rooted journal's roots are compared per batch only (SK-JOURNAL-9).
        if stored.state_root != expected.state_root:
            return Finding(where, "state_root", _differs(stored.state_root, expected.state_root))
        return None
    if at.root_mode is RootMode.BATCH:
        found = _diagnose_batch_rooted_entry(where, stored, expected, next_link)
    else:
        found = _diagnose_entry(where, stored, expected, next_link)
    if found is None:
        found = _compare_postings(where, stored, expected)
    return found if found is not None else _check_form(where, stored, at.root_mode)


def _check_form(where: str, stored: Record, root_mode: RootMode = RootMode.ENTRY) -> Finding | None:
    """An entry carries no rejection, a rejection no place in the chain (SK-STORE-1's check).

    An entry of a batch-rooted journal carries no state root either (SK-JOURNAL-9).
    """
    fields: tuple[str, ...]
    if stored.sequence is None:
        fields = ("state_root", "previous_hash", "entry_hash")
        kind = "a rejected record holds"
    else:
        fields = ("reason", "message")
        if root_mode is RootMode.BATCH:
            fields = ("state_root", *fields)
        kind = "an accepted record holds"
    for field in fields:
        if getattr(stored, field) is not None:
            return Finding(where, field, f"{kind} a {field}")
    return None


def _next_links(records: list[Record], head_hash: bytes) -> list[bytes]:
    """Return, per record, the link the next entry stores (the batch's head for the last)."""
    links: list[bytes] = []
    following = head_hash
    for record in reversed(records):
        links.append(following)
        if record.previous_hash is not None:
            following = record.previous_hash
    return links[::-1]


def _differs(stored: bytes | None, replayed: bytes | None) -> str:
    return f"stored {_hex(stored)}, replay {_hex(replayed)}"


def _compare_rejection(where: str, stored: Record, expected: Record) -> Finding | None:
    """A rejected record (its line is intact): the same reason and message on replay."""
    for field in ("reason", "message"):
        stored_value, replayed = getattr(stored, field), getattr(expected, field)
        if stored_value != replayed:
            return Finding(where, field, f"stored {stored_value!r:.80}, replay {replayed!r:.80}")
    return None


def _diagnose_entry(
    where: str, stored: Record, expected: Record, next_link: bytes
) -> Finding | None:
    """Check an accepted record's link, hash and root; name the field that was changed."""
    if stored.sequence != expected.sequence:
        return Finding(where, "sequence", f"stored {stored.sequence}, expected {expected.sequence}")
    if stored.previous_hash != expected.previous_hash:
        detail = "does not link to the entry before it: " + _differs(
            stored.previous_hash, expected.previous_hash
        )
        return Finding(where, "previous_hash", detail)
    contents_hash = compute_record_entry_hash(RootMode.ENTRY, stored)
    if contents_hash is None or stored.previous_hash is None or expected.state_root is None:
        return Finding(where, "state_root", "an accepted record without a root or a link")
    if contents_hash == stored.entry_hash:
        if stored.state_root != expected.state_root:
            detail = _differs(stored.state_root, expected.state_root) + (
                " (the entry hash was recomputed to match: a forged entry)"
            )
            return Finding(where, "state_root", detail)
        return None
    original = compute_record_entry_hash(
        RootMode.ENTRY, attrs.evolve(stored, state_root=expected.state_root)
    )
    if stored.state_root != expected.state_root and original == stored.entry_hash:
        return Finding(where, "state_root", _differs(stored.state_root, expected.state_root))
    if contents_hash == next_link:
        return Finding(where, "entry_hash", _differs(stored.entry_hash, contents_hash))
    return Finding(where, "event", "the event line is not the one its entry hash commits to")


def _diagnose_batch_rooted_entry(
    where: str, stored: Record, expected: Record, next_link: bytes
) -> Finding | None:
    """Check an entry of a batch-rooted journal: its link, then its hash (SK-JOURNAL-9).

    Its hash commits to its postings: if it matches the stored postings, or the replayed ones
    (the stored postings were changed), the postings are compared next, field by field.
    """
    if stored.sequence != expected.sequence:
        return Finding(where, "sequence", f"stored {stored.sequence}, expected {expected.sequence}")
    if stored.previous_hash != expected.previous_hash:
        detail = "does not link to the entry before it: " + _differs(
            stored.previous_hash, expected.previous_hash
        )
        return Finding(where, "previous_hash", detail)
    if stored.state_root is not None:
        return Finding(where, "state_root", "an entry of a batch-rooted journal holds a root")
    contents_hash = compute_record_entry_hash(RootMode.BATCH, stored)
    if contents_hash == stored.entry_hash:
        return None
    replayed = compute_record_entry_hash(RootMode.BATCH, stored, expected.postings)
    if replayed == stored.entry_hash:
        return None
    if contents_hash == next_link:
        return Finding(where, "entry_hash", _differs(stored.entry_hash, contents_hash))
    return Finding(where, "event", "the event line is not the one its entry hash commits to")


def _compare_postings(where: str, stored: Record, expected: Record) -> Finding | None:
    """Compare the stored postings with the replayed ones, posting by posting, field by field."""
    for index, (row, replayed) in enumerate(zip(stored.postings, expected.postings, strict=False)):
        if row == MISSING_POSTING:
            return Finding(where, f"posting {index}", "no posting is stored at this position")
        for field, stored_value, replayed_value in zip(POSTING_FIELDS, row, replayed, strict=True):
            if stored_value != replayed_value:
                return Finding(
                    where,
                    f"posting {index} {field}",
                    f"stored {stored_value!r:.80}, replay {replayed_value!r:.80}",
                )
    if len(stored.postings) != len(expected.postings):
        detail = f"{len(stored.postings)} stored, {len(expected.postings)} on replay"
        return Finding(where, "postings", detail)
    return None


def audit_batch_number(
    store: JournalStore, rules: RuleSet, genesis_root: bytes, number: int
) -> AuditReport:
    """Re-execute batch ``number`` alone from its pre-state (SK-BATCH-5); never raises."""
    try:
        return _audit_batch_number(store, rules, genesis_root, number)
    except DamagedStoreError as error:
        cursor = _Cursor(genesis(rules), 0, first_position(None, genesis_root), genesis_root)
        return _report(cursor, Finding("database", "damaged", str(error)))


def _audit_batch_number(
    store: JournalStore, rules: RuleSet, genesis_root: bytes, number: int
) -> AuditReport:
    mode = _stored_root_mode(store)
    if isinstance(mode, Finding):
        cursor = _Cursor(genesis(rules), 0, first_position(None, genesis_root), genesis_root)
        return _report(cursor, mode)
    headers = list(store.batches(max(number - 1, 1), number + 1))
    current = [h for h in headers if h.number == number]
    if not current:
        cursor = _Cursor(genesis(rules), 0, first_position(None, genesis_root), genesis_root)
        return _report(cursor, Finding(f"batch {number}", "number", "no such batch"))
    header = current[0]
    previous = next((h for h in headers if h.number == number - 1), None)
    following = next((h for h in headers if h.number == number + 1), None)
    cursor_or_finding = _pre_state(store, rules, genesis_root, previous, mode)
    if isinstance(cursor_or_finding, Finding):
        cursor = _Cursor(genesis(rules), 0, first_position(None, genesis_root), genesis_root)
        return _report(cursor, cursor_or_finding)
    cursor = cursor_or_finding
    records = store.records(header.first_attempt, header.first_attempt + header.record_count - 1)
    boundary = None if following is None else following.first_attempt
    with gc_paused():
        finding = audit_batch(store, cursor, header, records, boundary)
    return AuditReport(
        finding,
        1,
        cursor.records,
        cursor.at.sequence - header.first_sequence,
        state_root(cursor.state),
        cursor.batch_hash,
    )


def _pre_state(
    store: JournalStore,
    rules: RuleSet,
    genesis_root: bytes,
    previous: BatchHeader | None,
    root_mode: RootMode,
) -> _Cursor | Finding:
    """Return the cursor after ``previous``: a checked snapshot, then the batches after it.

    The pre-state is trusted because its root is the previous batch's committed new root,
    not because it was stored: a snapshot is decoded and its root recomputed.
    """
    if previous is None:
        state = genesis(rules)
        if state_root(state) != genesis_root:
            return Finding("journal", "genesis_root", "is not the root of the rules' genesis")
        return _Cursor(state, 0, first_position(None, genesis_root, root_mode), genesis_root)
    snapshot = store.snapshot_at_or_before(previous.number)
    state, after = genesis(rules), 0
    if snapshot is not None:
        checked = check_snapshot(store, rules, snapshot)
        if isinstance(checked, str):
            return Finding(f"snapshot after batch {snapshot.batch}", "encoding", checked)
        state, after = checked, snapshot.batch
    for header, records in iter_batches(store, after + 1):
        if header.number > previous.number:
            break
        with gc_paused():
            state = replay_accepted(state, records)
        if state_root(state) != header.new_root:
            detail = "the pre-state does not replay to this batch's root; run journal verify"
            return Finding(f"batch {header.number}", "new_root", detail)
    at = first_position(previous, genesis_root, root_mode)
    return _Cursor(state, previous.number, at, previous.batch_hash)
