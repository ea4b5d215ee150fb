"""A batch-rooted journal (SK-JOURNAL-9): one state root per batch, every entry still chained.

The demo session is appended twice, once per root mode, and the two files are compared; the
batch-rooted one is then verified, reopened, and edited as in test_durable_journal and
test_corruption: every changed field is located, every random row edit is found.
"""

from __future__ import annotations

import random
import shutil
import sqlite3

import pytest

from golden import JOURNAL_ROOT
from journal_files import build, demo_lines, sql
from settlekernel.core.root import state_root
from settlekernel.journal.batches import (
    BATCH_ROOTED_BATCH_DOMAIN,
    RootMode,
    compute_batch_hash,
    compute_record_entry_hash,
)
from settlekernel.journal.durable import (
    DurableJournal,
    RootModeMismatchError,
    open_for_audit,
)
from settlekernel.journal.verify import audit_batch_number, audit_journal
from test_corruption import _content, _edit_a_row, verify

ROW_EDITS = 100


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """The demo journal, batch-rooted, in batches of ten, a snapshot every 20 entries."""
    path = tmp_path_factory.mktemp("batch-rooted") / "demo.db"
    build(path, demo_lines(), root_mode=RootMode.BATCH)
    return path


@pytest.fixture(scope="module")
def per_entry(tmp_path_factory):
    """The same session in a journal rooted after every entry."""
    path = tmp_path_factory.mktemp("entry-rooted") / "demo.db"
    build(path, demo_lines())
    return path


@pytest.fixture
def copy(pristine, tmp_path):
    """A private copy of the batch-rooted journal to change."""
    target = tmp_path / "copy.db"
    shutil.copy(pristine, target)
    return target


def audit(path, **options):
    store, rules, genesis_root = open_for_audit(path)
    try:
        return audit_journal(store, rules, genesis_root, **options)
    finally:
        store.close()


def test_the_root_mode_is_recorded_in_the_creation_record(pristine, per_entry):
    """Stores 'batch' or 'entry' in the journal row, so a verifier knows the file's mode."""
    assert sql(pristine, "SELECT root_mode FROM journal") == [("batch",)]
    assert sql(per_entry, "SELECT root_mode FROM journal") == [("entry",)]


def test_both_modes_make_the_same_decisions_postings_and_batch_roots(pristine, per_entry):
    """Reaches the same records, postings, batch roots and head as the per-entry journal."""
    columns = "attempt, line, sequence, reason, message, events_chain"
    assert sql(pristine, f"SELECT {columns} FROM records ORDER BY attempt") == sql(  # noqa: S608
        per_entry,
        f"SELECT {columns} FROM records ORDER BY attempt",  # noqa: S608
    )
    postings = "SELECT * FROM postings ORDER BY sequence, position"
    assert sql(pristine, postings) == sql(per_entry, postings)
    roots = "SELECT number, previous_root, new_root, postings_hash FROM batches ORDER BY number"
    assert sql(pristine, roots) == sql(per_entry, roots)
    assert sql(pristine, "SELECT batch, state_root, encoding FROM snapshots") == sql(
        per_entry, "SELECT batch, state_root, encoding FROM snapshots"
    )
    journal = DurableJournal.open(pristine)
    try:
        assert journal.root_mode is RootMode.BATCH
        assert state_root(journal.state).hex() == JOURNAL_ROOT
    finally:
        journal.close()


def test_entries_carry_no_root_and_hash_their_postings(pristine, per_entry):
    """Stores no per-entry root; each entry hash commits to the line and the postings."""
    assert sql(pristine, "SELECT count(*) FROM records WHERE state_root IS NOT NULL") == [(0,)]
    assert sql(per_entry, "SELECT count(*) FROM records WHERE state_root IS NULL") == sql(
        per_entry, "SELECT count(*) FROM records WHERE sequence IS NULL"
    )
    store, _, _ = open_for_audit(pristine)
    try:
        records = [r for r in store.records(1, 10_000) if r.sequence is not None]
        headers = list(store.batches(1, 10_000))
    finally:
        store.close()
    assert records
    assert all(compute_record_entry_hash(RootMode.BATCH, r) == r.entry_hash for r in records)
    assert any(r.postings for r in records)
    changed = records[4].postings[:-1]  # An entry that made postings, one dropped.
    assert compute_record_entry_hash(RootMode.BATCH, records[4], changed) != records[4].entry_hash
    assert all(compute_batch_hash(h, RootMode.BATCH) == h.batch_hash for h in headers)
    assert all(compute_batch_hash(h, RootMode.ENTRY) != h.batch_hash for h in headers)
    assert BATCH_ROOTED_BATCH_DOMAIN.startswith(b"settlekernel/batch/v1/")


def test_a_batch_rooted_journal_verifies_replays_and_checks_batch_by_batch(pristine):
    """Verifies, replays and re-executes every batch alone from its pre-state."""
    report = audit(pristine)
    assert report.finding is None, str(report.finding)
    assert report.final_root.hex() == JOURNAL_ROOT
    assert audit(pristine, full=False).finding is None
    store, rules, genesis_root = open_for_audit(pristine)
    try:
        for number in range(1, report.batches + 1):
            single = audit_batch_number(store, rules, genesis_root, number)
            assert single.finding is None, f"batch {number}: {single.finding}"
    finally:
        store.close()
    code, output, exception = verify(pristine)
    assert (code, exception) == (0, None), output


def test_the_root_mode_is_fixed_at_creation(copy):
    """Refuses to reopen the journal in the other mode; appends continue in its own."""
    with pytest.raises(RootModeMismatchError):
        DurableJournal.open(copy, root_mode=RootMode.ENTRY)
    journal = DurableJournal.open(copy, root_mode=RootMode.BATCH)
    try:
        assert journal.head is not None
        batches = journal.head.number
        journal.append(demo_lines()[:3])  # Accounts opened again: rejected, recorded.
        assert journal.head.number == batches + 1
    finally:
        journal.close()
    reopened = DurableJournal.open(copy)
    try:
        assert reopened.root_mode is RootMode.BATCH
        assert reopened.head is not None
        assert reopened.head.number == batches + 1
    finally:
        reopened.close()
    assert audit(copy).finding is None


def _flip(value):
    if isinstance(value, int):
        return value + 1
    if isinstance(value, bytes):
        return bytes([value[0] ^ 1]) + value[1:]
    return value[:-1] + ("0" if value[-1] != "0" else "1")


# One row per stored field: the table, the column, the row, and where verify must point.
TAMPERING = [
    ("records", "line", "attempt = 1", "batch 1, record 1 (entry 1)", "event"),
    ("records", "line", "attempt = 82", "batch 9, record 82 (entry 72)", "event"),
    ("records", "previous_hash", "attempt = 10", "batch 1, record 10 (entry 9)", "previous_hash"),
    ("records", "entry_hash", "attempt = 10", "batch 1, record 10 (entry 9)", "entry_hash"),
    ("records", "entry_hash", "attempt = 82", "batch 9, record 82 (entry 72)", "entry_hash"),
    ("records", "events_chain", "attempt = 6", "batch 1, record 6", "events_chain"),
    ("records", "reason", "attempt = 31", "batch 4, record 31", "reason"),
    (
        "postings",
        "amount_minor",
        "sequence = 5",
        "batch 1, record 5 (entry 5)",
        "posting 0 amount_minor",
    ),
    (
        "postings",
        "credit_account",
        "sequence = 72 AND position = 1",
        "batch 9, record 82 (entry 72)",
        "posting 1 credit_account",
    ),
    ("batches", "new_root", "number = 5", "batch 5", "new_root"),
    ("batches", "new_root", "number = 9", "batch 9", "new_root"),
    ("batches", "previous_root", "number = 5", "batch 5", "previous_root"),
    ("batches", "postings_hash", "number = 5", "batch 5", "postings_hash"),
    ("batches", "head_hash", "number = 5", "batch 5", "head_hash"),
    ("batches", "batch_hash", "number = 5", "batch 5", "batch_hash"),
    ("snapshots", "state_root", "batch = 3", "snapshot after batch 3", "state_root"),
]


@pytest.mark.parametrize(("table", "column", "row", "where", "field"), TAMPERING)
def test_verify_locates_every_changed_field(copy, table, column, row, where, field):
    """Names the batch, record, entry and field of a single changed stored value."""
    (value,) = sql(copy, f"SELECT {column} FROM {table} WHERE {row}")[0]  # noqa: S608
    sql(copy, f"UPDATE {table} SET {column} = ? WHERE {row}", _flip(value))  # noqa: S608
    finding = audit(copy).finding
    assert finding is not None
    assert (finding.where, finding.field) == (where, field), str(finding)


def test_a_forged_posting_with_a_rehashed_entry_is_caught_by_replay(copy):
    """Finds a posting changed with its entry hash recomputed: replay makes other postings."""
    store, _, _ = open_for_audit(copy)
    try:
        (record,) = [r for r in store.records(1, 100) if r.sequence == 5]
    finally:
        store.close()
    sql(copy, "UPDATE postings SET amount_minor = '1' WHERE sequence = 5 AND position = 0")
    store, _, _ = open_for_audit(copy)
    try:
        (forged,) = [r for r in store.records(1, 100) if r.sequence == 5]
    finally:
        store.close()
    rehashed = compute_record_entry_hash(RootMode.BATCH, forged)
    assert rehashed != record.entry_hash
    sql(copy, "UPDATE records SET entry_hash = ? WHERE sequence = 5", rehashed)
    finding = audit(copy).finding
    assert finding is not None
    assert (finding.where, finding.field) == (
        "batch 1, record 5 (entry 5)",
        "posting 0 amount_minor",
    )


@pytest.mark.parametrize(
    ("mode", "field"),
    [("entry", "state_root"), ("junk", "root_mode"), ("", "root_mode")],
)
def test_a_changed_root_mode_is_found(copy, mode, field):
    """Finds the creation record's root mode changed to the other mode or to junk."""
    sql(copy, "UPDATE journal SET root_mode = ?", mode)
    finding = audit(copy).finding
    assert finding is not None
    assert finding.field == field, str(finding)
    code, output, exception = verify(copy)
    assert (code, exception) == (1, None), output


def test_a_root_planted_in_a_batch_rooted_entry_is_found(copy):
    """Finds a state root stored on an entry of a batch-rooted journal."""
    (root,) = sql(copy, "SELECT new_root FROM batches WHERE number = 1")[0]
    sql(copy, "UPDATE records SET state_root = ? WHERE attempt = 3", root)
    finding = audit(copy).finding
    assert finding is not None
    assert (finding.where, finding.field) == ("batch 1, record 3 (entry 3)", "state_root")


def test_an_entry_journal_relabelled_batch_rooted_is_found(per_entry, tmp_path):
    """Finds the per-entry journal's mode changed to 'batch': its entries hold roots."""
    target = tmp_path / "relabelled.db"
    shutil.copy(per_entry, target)
    sql(target, "UPDATE journal SET root_mode = 'batch'")
    finding = audit(target).finding
    assert finding is not None
    assert (finding.where, finding.field) == ("batch 1, record 1 (entry 1)", "state_root")


def test_row_edits_of_a_batch_rooted_journal_are_found_every_time(pristine, tmp_path):
    """Exits 1 with a verdict for every row changed, deleted or inserted; never a traceback."""
    rng = random.Random(14)  # noqa: S311 (which rows to edit, not a secret)
    original = _content(pristine)
    missed, tracebacks, edits = [], [], 0
    target = tmp_path / "edited.db"
    for _ in range(ROW_EDITS):
        shutil.copy(pristine, target)
        try:
            done = _edit_a_row(target, rng)
        except sqlite3.IntegrityError:
            continue
        if _content(target) == original:
            continue
        edits += 1
        code, output, exception = verify(target)
        if exception is not None:
            tracebacks.append((done, repr(exception)))
        elif code != 1 or not output.startswith("FAILED "):
            missed.append((done, code, output[:200]))
    assert tracebacks == [], f"{len(tracebacks)} tracebacks: {tracebacks[:5]}"
    assert missed == [], f"{len(missed)} undetected: {missed[:5]}"
    assert edits > ROW_EDITS // 3  # Not a sample of mostly refused or empty edits.


def test_a_relabelled_journal_without_entries_is_found_at_its_batch_hash(tmp_path):
    """Finds the mode of a journal of rejections only changed: its batch hash commits to it."""
    path = tmp_path / "rejections.db"
    build(path, ["not json"] * 5, root_mode=RootMode.BATCH)
    sql(path, "UPDATE journal SET root_mode = 'entry'")
    finding = audit(path).finding
    assert finding is not None
    assert (finding.where, finding.field) == ("batch 1", "batch_hash"), str(finding)
