"""The durable journal on a real SQLite file: append, recover, verify, locate tampering."""

from __future__ import annotations

import inspect
import shutil
import sqlite3
import sys

import attrs
import pytest

import settlekernel as sk
from golden import JOURNAL_ROOT
from journal_files import build, demo_lines
from settlekernel.core.wire import encode_event
from settlekernel.journal.durable import DurableJournal, JournalError, open_for_audit
from settlekernel.journal.store import StoreError
from settlekernel.journal.verify import audit_batch_number, audit_journal

RULES = sk.RuleSet.default()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A journal of the demo session in batches of ten, a snapshot every 20 entries."""
    path = tmp_path_factory.mktemp("journal") / "demo.db"
    build(path, demo_lines())
    return path


@pytest.fixture
def copy(pristine, tmp_path):
    """A private copy of the demo journal to change."""
    target = tmp_path / "copy.db"
    shutil.copy(pristine, target)
    return target


def audit(path):
    store, rules, genesis_root = open_for_audit(path)
    try:
        return audit_journal(store, rules, genesis_root)
    finally:
        store.close()


def sql(path, statement, *parameters):
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA ignore_check_constraints=ON")  # A forger is not bound by them.
        rows = db.execute(statement, parameters).fetchall()
        db.commit()
        return rows
    finally:
        db.close()


def test_reopening_recovers_the_last_committed_batch(pristine):
    """Reopens to the same head, state and root as the in-memory kernel reached."""
    journal = DurableJournal.open(pristine)
    try:
        assert journal.head is not None
        assert journal.head.number == 9
        assert journal.entry_count == 72
        assert sk.state_root(journal.state).hex() == JOURNAL_ROOT
        assert sk.check_invariants(journal.state) == []
    finally:
        journal.close()


def test_rejections_are_recorded_outside_the_chain(pristine):
    """Keeps every rejected line with its reason; gives it no sequence, root or hash."""
    rows = sql(pristine, "SELECT attempt, reason, sequence, entry_hash FROM records")
    rejected = [row for row in rows if row[1] is not None]
    assert len(rows) == len(demo_lines())
    assert len(rejected) == len(rows) - 72
    assert {row[1] for row in rejected} >= {"json_invalid", "field_missing", "trade_exists"}
    assert all(row[2] is None and row[3] is None for row in rejected)
    assert [row[0] for row in rows] == list(range(1, len(rows) + 1))


def test_an_honest_journal_verifies_and_every_batch_checks_alone(pristine):
    """Finds nothing in the untouched journal, as a whole and batch by batch."""
    report = audit(pristine)
    assert report.finding is None
    assert (report.batches, report.records, report.entries) == (9, len(demo_lines()), 72)
    assert report.final_root.hex() == JOURNAL_ROOT
    store, rules, genesis_root = open_for_audit(pristine)
    try:
        for number in range(1, 10):
            assert audit_batch_number(store, rules, genesis_root, number).finding is None
        missing = audit_batch_number(store, rules, genesis_root, 10).finding
        assert str(missing) == "batch 10: number: no such batch"
    finally:
        store.close()


def test_appends_continue_the_chain_after_a_reopen(copy):
    """Appends after a reopen onto the recovered head; the whole journal still verifies."""
    journal = DurableJournal.open(copy)
    head = journal.head
    try:
        executed = journal.append(
            [encode_event(sk.Deposit(principal="bob", account="bob", asset="USDC", amount_minor=7))]
        )
    finally:
        journal.close()
    assert executed.header.number == head.number + 1
    assert executed.header.previous_batch_hash == head.batch_hash
    assert executed.records[0].previous_hash == head.head_hash
    assert audit(copy).finding is None


def test_a_batch_is_bounded(copy):
    """Refuses an empty batch and one over the limit, writing nothing."""
    journal = DurableJournal.open(copy)
    try:
        with pytest.raises(JournalError, match="1 to 100000"):
            journal.append([])
        with pytest.raises(JournalError):
            journal.append(["x"] * 100_001)
        assert journal.head.number == 9
    finally:
        journal.close()


def test_hostile_lines_are_recorded_and_replay_the_same_way(tmp_path):
    """Records a lone surrogate, an overlong line and binary junk as rejections that verify."""
    path = tmp_path / "hostile.db"
    journal = DurableJournal.open(path)
    try:
        executed = journal.append(["\ud800", "x" * 100_000, "\x00\xff{", '{"type":"trade"}'])
    finally:
        journal.close()
    assert [record.reason for record in executed.records] == [
        "json_invalid",
        "json_invalid",
        "json_invalid",
        "field_missing",
    ]
    assert len(executed.records[1].line) == 16_385
    assert audit(path).finding is None


def test_a_journal_keeps_its_rules(copy):
    """Refuses to open a journal under rules other than those it was created with."""
    other = attrs.evolve(RULES, fee_rate_max_ppm=RULES.fee_rate_max_ppm + 1)
    with pytest.raises(JournalError, match="other rules"):
        DurableJournal.open(copy, other)
    DurableJournal.open(copy, RULES).close()


def test_files_that_are_not_journals_are_refused(tmp_path):
    """Refuses a text file and a SQLite database of another application."""
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database, not even close\n" * 100)
    with pytest.raises(StoreError):
        DurableJournal.open(text)
    other = tmp_path / "other.db"
    sql(other, "CREATE TABLE people (name TEXT)")
    with pytest.raises(StoreError):
        DurableJournal.open(other)
    with pytest.raises(StoreError):
        open_for_audit(tmp_path / "absent.db")


def test_recovery_replays_only_the_tail(copy):
    """Opens over a change before the last snapshot (not replayed); refuses one after it."""
    assert sql(copy, "SELECT max(batch) FROM snapshots") == [(6,)]
    sql(copy, "UPDATE records SET line = replace(line, '5000', '5001') WHERE attempt = 5")
    DurableJournal.open(copy).close()  # Batch 1 lies before the snapshot: not replayed.
    assert (audit(copy).finding.where, audit(copy).finding.field) == (
        "batch 1, record 5 (entry 5)",
        "event",
    )
    sql(copy, "UPDATE records SET line = 'not json' WHERE attempt = 82")
    with pytest.raises(JournalError, match="batch 9 does not replay"):
        DurableJournal.open(copy)


def test_a_snapshot_with_a_wrong_root_is_not_used(copy):
    """Refuses to recover from a snapshot whose encoding is not its stored root."""
    sql(
        copy,
        "UPDATE snapshots SET encoding = CAST(replace(CAST(encoding AS TEXT), "
        "'\"clock_ms\":', '\"clock_ms\":1') AS BLOB)",
    )
    with pytest.raises(JournalError, match="snapshot after batch 6"):
        DurableJournal.open(copy)


def _flip(value):
    if isinstance(value, int):
        return value + 1
    if isinstance(value, bytes):
        return bytes([value[0] ^ 1]) + value[1:]
    return value[:-1] + ("0" if value[-1] != "0" else "1")


# One row per stored field: the table, the column, the row, and where verify must point.
TAMPERING = [
    ("records", "line", "attempt = 1", "batch 1, record 1 (entry 1)", "event"),
    ("records", "line", "attempt = 6", "batch 1, record 6", "event"),
    ("records", "line", "attempt = 82", "batch 9, record 82 (entry 72)", "event"),
    ("records", "state_root", "attempt = 1", "batch 1, record 1 (entry 1)", "state_root"),
    ("records", "state_root", "attempt = 82", "batch 9, record 82 (entry 72)", "state_root"),
    ("records", "previous_hash", "attempt = 10", "batch 1, record 10 (entry 9)", "previous_hash"),
    ("records", "entry_hash", "attempt = 10", "batch 1, record 10 (entry 9)", "entry_hash"),
    ("records", "entry_hash", "attempt = 82", "batch 9, record 82 (entry 72)", "entry_hash"),
    ("records", "entry_hash", "attempt = 47", "batch 5, record 47 (entry 40)", "entry_hash"),
    ("records", "events_chain", "attempt = 6", "batch 1, record 6", "events_chain"),
    ("records", "reason", "attempt = 31", "batch 4, record 31", "reason"),
    ("records", "message", "attempt = 83", "batch 9, record 83", "message"),
    ("records", "attempt", "attempt = 83", "batch 9, record 83", "attempt"),
    (
        "postings",
        "amount_minor",
        "sequence = 5",
        "batch 1, record 5 (entry 5)",
        "posting 0 amount_minor",
    ),
    (
        "postings",
        "debit_account",
        "sequence = 5",
        "batch 1, record 5 (entry 5)",
        "posting 0 debit_account",
    ),
    (
        "postings",
        "credit_account",
        "sequence = 72 AND position = 1",
        "batch 9, record 82 (entry 72)",
        "posting 1 credit_account",
    ),
    (
        "postings",
        "asset",
        "sequence = 72 AND position = 1",
        "batch 9, record 82 (entry 72)",
        "posting 1 asset",
    ),
    (
        "postings",
        "code",
        "sequence = 72 AND position = 1",
        "batch 9, record 82 (entry 72)",
        "posting 1 code",
    ),
    (
        "postings",
        "position",
        "sequence = 72 AND position = 1",
        "batch 9, record 82 (entry 72)",
        "posting 1",
    ),
    (
        "postings",
        "sequence",
        "sequence = 72 AND position = 1",
        "batch 9, record 82 (entry 72)",
        "postings",
    ),
    ("batches", "first_attempt", "number = 5", "batch 5", "first_attempt"),
    ("batches", "record_count", "number = 5", "batch 5", "record_count"),
    ("batches", "record_count", "number = 9", "batch 9", "record_count"),
    ("batches", "first_sequence", "number = 5", "batch 5", "first_sequence"),
    ("batches", "entry_count", "number = 5", "batch 5", "entry_count"),
    ("batches", "previous_batch_hash", "number = 5", "batch 5", "previous_batch_hash"),
    ("batches", "previous_root", "number = 5", "batch 5", "previous_root"),
    ("batches", "events_hash", "number = 5", "batch 5", "events_hash"),
    ("batches", "postings_hash", "number = 5", "batch 5", "postings_hash"),
    ("batches", "new_root", "number = 5", "batch 5", "new_root"),
    ("batches", "new_root", "number = 9", "batch 9", "new_root"),
    ("batches", "head_hash", "number = 5", "batch 5", "head_hash"),
    ("batches", "batch_hash", "number = 5", "batch 5", "batch_hash"),
    ("batches", "number", "number = 9", "batch 10", "number"),
    ("snapshots", "state_root", "batch = 3", "snapshot after batch 3", "state_root"),
    ("snapshots", "encoding", "batch = 3", "snapshot after batch 3", "encoding"),
    ("journal", "genesis_root", "id = 1", "journal", "genesis_root"),
]


@pytest.mark.parametrize(("table", "column", "row", "where", "field"), TAMPERING)
def test_verify_locates_every_changed_field(copy, table, column, row, where, field):
    """Names the batch, record, entry and field of a single changed stored value."""
    (value,) = sql(copy, f"SELECT {column} FROM {table} WHERE {row}")[0]  # noqa: S608
    sql(copy, f"UPDATE {table} SET {column} = ? WHERE {row}", _flip(value))  # noqa: S608
    finding = audit(copy).finding
    assert finding is not None
    assert (finding.where, finding.field) == (where, field), str(finding)


def test_verify_locates_an_edit_of_the_file_itself(copy):
    """Finds a digit changed in the database file's bytes, bypassing SQLite."""
    data = copy.read_bytes()
    deposit = b'"amount_minor":500000000000'
    assert data.count(deposit) == 1
    copy.write_bytes(data.replace(deposit, deposit.replace(b"5", b"9", 1)))
    finding = audit(copy).finding
    assert finding is not None
    assert finding.field == "event"
    (attempt,) = sql(copy, "SELECT attempt FROM records WHERE line LIKE '%900000000000%'")[0]
    assert finding.where.startswith(f"batch 1, record {attempt} ")


def test_a_forger_who_rehashes_the_entry_is_caught_by_replay(copy):
    """Catches a changed event whose entry hash, chain and batch were all recomputed."""
    from settlekernel.journal.batches import compute_events_chain  # noqa: PLC0415
    from settlekernel.journal.memory import compute_entry_hash  # noqa: PLC0415

    attempt, line, previous_hash, root = sql(
        copy,
        "SELECT attempt, line, previous_hash, state_root FROM records "
        "WHERE line LIKE '%500000000000%'",
    )[0]
    forged = line.replace("500000000000", "900000000000")
    (chain_before,) = sql(copy, "SELECT events_chain FROM records WHERE attempt = ?", attempt - 1)[
        0
    ]
    sql(
        copy,
        "UPDATE records SET line = ?, entry_hash = ?, events_chain = ? WHERE attempt = ?",
        forged,
        compute_entry_hash(previous_hash, forged, root),
        compute_events_chain(chain_before, forged),
        attempt,
    )
    finding = audit(copy).finding
    assert finding is not None
    assert finding.field == "state_root"
    assert "forged" in finding.detail


def test_verify_batch_pinpoints_the_first_diverging_event(copy):
    """Re-executes one batch from its checked pre-state and names the diverging record."""
    sql(copy, "UPDATE postings SET amount_minor = '1' WHERE sequence = 40")
    store, rules, genesis_root = open_for_audit(copy)
    try:
        assert audit_batch_number(store, rules, genesis_root, 4).finding is None
        finding = audit_batch_number(store, rules, genesis_root, 5).finding
        assert str(finding).startswith("batch 5, record 47 (entry 40): posting 0 amount_minor")
    finally:
        store.close()


def test_a_deeply_nested_line_replays_the_same_way_at_any_stack_depth(tmp_path):
    """Records a deeply nested line with one reason appended deep in a stack, verified shallow."""
    path = tmp_path / "nested.db"
    lines = [
        '{"type":"deposit","principal":"a","account":"a","asset":"USDC","amount_minor":'
        + "[" * depth
        + "]" * depth
        + "}"
        for depth in (20, 40, 900)
    ]

    def append_at_depth(frames):
        if frames:
            return append_at_depth(frames - 1)
        journal = DurableJournal.open(path)
        try:
            return journal.append(lines)
        finally:
            journal.close()

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + 200)
    try:
        executed = append_at_depth(100)
    finally:
        sys.setrecursionlimit(limit)
    assert [record.reason for record in executed.records] == [
        "field_type_invalid",
        "json_invalid",
        "json_invalid",
    ]
    assert audit(path).finding is None


def _finding(path, **options):
    store, rules, genesis_root = open_for_audit(path)
    try:
        report = audit_journal(store, rules, genesis_root, **options)
    finally:
        store.close()
    return None if report.finding is None else str(report.finding)


def test_verify_finds_a_deleted_snapshot_and_one_out_of_schedule(copy):
    """Names a snapshot missing from the stored schedule, and one the schedule does not take."""
    assert sql(copy, "SELECT batch FROM snapshots") == [(3,), (6,)]
    sql(copy, "DELETE FROM snapshots WHERE batch = 6")
    assert _finding(copy) == (
        "snapshot after batch 6: snapshot: missing: the journal snapshots every 20 entries"
    )
    sql(copy, "INSERT INTO snapshots SELECT 5, state_root, encoding FROM snapshots WHERE batch = 3")
    assert _finding(copy).startswith("snapshot after batch 5: snapshot: not due")


def test_verify_finds_a_changed_snapshot_interval_that_moves_the_schedule(copy):
    """Names the first snapshot the changed interval no longer allows."""
    sql(copy, "UPDATE journal SET snapshot_every_entries = 40")
    assert _finding(copy) == (
        "snapshot after batch 3: snapshot: not due: the journal snapshots every 40 entries"
    )


@pytest.mark.parametrize(
    ("statement", "finding"),
    [
        (
            (
                "INSERT INTO postings SELECT 73, 0, debit_account, credit_account, asset, "
                "amount_minor, code FROM postings LIMIT 1"
            ),
            "database: stray row: posting 73 0 belongs to no entry",
        ),
        (
            (
                "INSERT INTO postings SELECT 0, 0, debit_account, credit_account, asset, "
                "amount_minor, code FROM postings LIMIT 1"
            ),
            "database: stray row: posting 0 0 belongs to no entry",
        ),
        (
            "INSERT INTO snapshots SELECT 10, state_root, encoding FROM snapshots WHERE batch = 6",
            "database: stray row: snapshot after batch 10: there is no such batch",
        ),
        (
            (
                "INSERT INTO journal SELECT 2, rules_toml, rules_digest, genesis_root, "
                "snapshot_every_entries, root_mode FROM journal"
            ),
            "database: stray row: creation record 2 is not the one",
        ),
    ],
    ids=["posting-after-the-last-entry", "posting-0", "snapshot-of-no-batch", "journal"],
)
def test_verify_finds_rows_that_belong_to_no_part_of_the_chain(copy, statement, finding):
    """Names a posting of no entry, a snapshot of no batch and a second creation record."""
    sql(copy, statement)
    assert _finding(copy) == finding


def test_a_journal_cut_short_is_found_against_its_published_head(copy):
    """Verifies a journal without its last batch, but not against the head published before."""
    published = _report(copy).head_batch_hash
    assert published == sql(copy, "SELECT batch_hash FROM batches WHERE number = 9")[0][0]
    (first_attempt,) = sql(copy, "SELECT first_attempt FROM batches WHERE number = 9")[0]
    (first_sequence,) = sql(copy, "SELECT first_sequence FROM batches WHERE number = 9")[0]
    sql(copy, "DELETE FROM postings WHERE sequence >= ?", first_sequence)
    sql(copy, "DELETE FROM records WHERE attempt >= ?", first_attempt)
    sql(copy, "DELETE FROM batches WHERE number = 9")
    assert _finding(copy) is None  # Without a published head, a shorter journal is honest.
    assert _report(copy).batches == 8
    finding = _finding(copy, expect_head=published)
    assert finding.startswith(f"journal: head: the published head {published.hex()[:16]} is not")
    earlier = sql(copy, "SELECT batch_hash FROM batches WHERE number = 4")[0][0]
    assert _finding(copy, expect_head=earlier) is None  # A head published earlier still holds.


def _report(path):
    store, rules, genesis_root = open_for_audit(path)
    try:
        return audit_journal(store, rules, genesis_root)
    finally:
        store.close()


def test_verify_runs_sqlites_own_checks_on_the_file(copy):
    """Reports integrity_check's first problem for a damaged page, before any replay."""
    data = bytearray(copy.read_bytes())
    data[3 * 4096 + 5] ^= 0x55  # The start of the page's cell content area.
    copy.write_bytes(bytes(data))
    finding = _finding(copy)
    assert finding.startswith("database: file: integrity_check: Page 4: free space corruption")


def test_foreign_key_check_names_a_dangling_reference(copy):
    """Finds a posting of a sequence no record has through foreign_key_check alone."""
    from settlekernel.journal.integrity import reference_problem  # noqa: PLC0415

    db = sqlite3.connect(copy)
    try:
        assert reference_problem(db) is None
        db.execute("INSERT INTO postings VALUES (999, 0, 'a', 'b', 'USDC', '1', 'fee')")
        assert reference_problem(db) == (
            "foreign_key_check: a row of postings refers to no row of records"
        )
    finally:
        db.close()


def test_a_rejection_and_an_entry_keep_their_forms(copy):
    """Names a rejection reason stored on an entry and a root stored on a rejection."""
    sql(copy, "UPDATE records SET reason = 'amount_too_large' WHERE attempt = 3")
    assert _finding(copy) == (
        "batch 1, record 3 (entry 3): reason: an accepted record holds a reason"
    )
    sql(copy, "UPDATE records SET reason = NULL WHERE attempt = 3")
    sql(copy, "UPDATE records SET state_root = zeroblob(32) WHERE attempt = 6")
    assert _finding(copy) == "batch 1, record 6: state_root: a rejected record holds a state_root"
