"""Batch commitments and the pure execution of a batch of wire lines (spec/40-roots.md#batches).

A batch is the journal's unit of append and of third-party checking, in the manner of a
rollup: it commits to the state root before it, the hash of every line submitted in it
(accepted or not), the hash of the postings it made and the state root after it, chained to
the batch before (SK-BATCH-1..3). Whoever holds the pre-state (or a snapshot whose root is
the batch's previous root) and the lines can re-execute the batch and compare.

A journal roots its entries in one of two modes, fixed when it is created (SK-JOURNAL-9):
``RootMode.ENTRY`` chains the state root after every entry (SK-JOURNAL-1);
``RootMode.BATCH`` chains each entry's postings instead and roots the state once per batch,
which spares a fold and a state root per event.

``execute_batch`` is pure: the durable journal calls it to append, and again to verify, so
the two can only disagree if the stored data changed.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from typing import Final, TypeAlias

import attrs

from settlekernel.core.model import State
from settlekernel.core.outcomes import Accepted, Posting, Rejected
from settlekernel.core.root import fold, state_root
from settlekernel.core.wire import LINE_BYTES_MAX, decode_event, encode_event
from settlekernel.journal.memory import compute_entry_hash
from settlekernel.kernel.dispatch import step

BATCH_DOMAIN: Final = b"settlekernel/batch/v1\n"
# [SK-JOURNAL-9] A batch-rooted journal's batches and entries hash under domains of their own,
# so that every batch hash and every entry hash commits to the journal's root mode.
BATCH_ROOTED_BATCH_DOMAIN: Final = b"settlekernel/batch/v1/batch-rooted\n"
BATCH_ROOTED_ENTRY_DOMAIN: Final = b"settlekernel/entry/v1/batch-rooted\n"
ENTRY_POSTINGS_DOMAIN: Final = b"settlekernel/entry-postings/v1\n"
EVENTS_DOMAIN: Final = b"settlekernel/batch-events/v1\n"
POSTINGS_DOMAIN: Final = b"settlekernel/batch-postings/v1\n"
# [SK-BATCH-4] A batch holds 1 to this many lines: every write is bounded.
BATCH_LINES_MAX: Final = 100_000
# A line that does not decode is kept to one character past the wire bound, so that it
# decodes (and is rejected) the same way on replay (SK-JOURNAL-5).
STORED_LINE_CHARS_MAX: Final = LINE_BYTES_MAX + 1


# A posting as the journal stores it: debit, credit, asset, amount (decimal), code.
PostingRow: TypeAlias = tuple[str, str, str, str, str]
POSTING_FIELDS: Final = ("debit_account", "credit_account", "asset", "amount_minor", "code")
# What storage returns for a position no posting occupies (positions run 0, 1, 2, ...).
MISSING_POSTING: Final[PostingRow] = ("", "", "", "", "")


class RootMode(enum.StrEnum):
    """Where a journal commits the state root (SK-JOURNAL-9): after every entry, or per batch."""

    ENTRY = "entry"
    BATCH = "batch"


@attrs.frozen
class Record:
    """One submitted line and what became of it: a chained entry, or a rejection.

    An accepted record has a sequence, its state root (none in a batch-rooted journal) and its
    place in the hash chain (SK-JOURNAL-1, SK-JOURNAL-9); a rejected one has its reason and
    message and is outside the chain (SK-JOURNAL-2). ``line`` is the canonical event line when
    it decodes, else the raw line.
    """

    attempt: int
    line: str
    sequence: int | None = None
    state_root: bytes | None = None
    previous_hash: bytes | None = None
    entry_hash: bytes | None = None
    reason: str | None = None
    message: str | None = None
    # The batch's events hash through this record (SK-BATCH-2): it locates a changed line.
    events_chain: bytes = b""
    postings: tuple[PostingRow, ...] = ()


@attrs.frozen
class BatchHeader:
    """The commitment of one batch (SK-BATCH-1); ``batch_hash`` covers every other field."""

    number: int
    first_attempt: int
    record_count: int
    first_sequence: int
    entry_count: int
    previous_batch_hash: bytes
    previous_root: bytes
    events_hash: bytes
    postings_hash: bytes
    new_root: bytes
    head_hash: bytes
    batch_hash: bytes


@attrs.frozen
class ExecutedBatch:
    """A batch executed from a pre-state: its records, its header and the state after it."""

    records: tuple[Record, ...]
    header: BatchHeader
    state: State


@attrs.frozen
class ChainPosition:
    """Where the next record goes: its attempt, its sequence if accepted, the chain heads.

    ``root_mode`` is the journal's (SK-JOURNAL-9): it says how an accepted line is chained.
    """

    attempt: int
    sequence: int
    head_hash: bytes
    events_chain: bytes
    root_mode: RootMode = RootMode.ENTRY


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def posting_row(posting: Posting) -> PostingRow:
    """Return a posting as the journal stores it (the amount in decimal)."""
    return (
        posting.debit_account,
        posting.credit_account,
        posting.asset,
        str(posting.amount_minor),
        posting.code.value,
    )


def compute_events_seed(number: int) -> bytes:
    """Return the start of batch ``number``'s events chain (SK-BATCH-2)."""
    return hashlib.sha256(EVENTS_DOMAIN + _u64(number)).digest()


def compute_events_chain(previous: bytes, line: str) -> bytes:
    """Return the events chain after ``line``: each line, length-prefixed, on the one before."""
    encoded = line.encode()
    return hashlib.sha256(previous + _u64(len(encoded)) + encoded).digest()


def compute_events_hash(number: int, lines: Sequence[str]) -> bytes:
    """Return batch ``number``'s events hash: its chain after the last line."""
    chain = compute_events_seed(number)
    for line in lines:
        chain = compute_events_chain(chain, line)
    return chain


def compute_postings_hash(records: Sequence[Record]) -> bytes:
    """Return the hash of the postings of a batch's entries (SK-BATCH-3)."""
    digest = hashlib.sha256(POSTINGS_DOMAIN)
    for record in records:
        if record.sequence is None:
            continue
        digest.update(_u64(record.sequence) + _u64(len(record.postings)))
        for row in record.postings:
            encoded = "|".join(row).encode()
            digest.update(_u64(len(encoded)) + encoded)
    return digest.digest()


def compute_entry_postings_hash(sequence: int, postings: Sequence[PostingRow]) -> bytes:
    """Return the hash of one entry's postings, as SK-BATCH-3 encodes them (SK-JOURNAL-9)."""
    digest = hashlib.sha256(ENTRY_POSTINGS_DOMAIN + _u64(sequence) + _u64(len(postings)))
    for row in postings:
        encoded = "|".join(row).encode()
        digest.update(_u64(len(encoded)) + encoded)
    return digest.digest()


def compute_batch_rooted_entry_hash(
    previous_hash: bytes, event_line: str, postings_hash: bytes
) -> bytes:
    """Return the hash of an entry of a batch-rooted journal (SK-JOURNAL-9).

    As SK-JOURNAL-1, under its own domain, with the entry's postings hash in place of the
    state root after it.
    """
    event_bytes = event_line.encode()
    return hashlib.sha256(
        BATCH_ROOTED_ENTRY_DOMAIN
        + previous_hash
        + _u64(len(event_bytes))
        + event_bytes
        + postings_hash
    ).digest()


def compute_record_entry_hash(
    root_mode: RootMode, record: Record, postings: Sequence[PostingRow] | None = None
) -> bytes | None:
    """Return the entry hash of an accepted ``record``'s contents under ``root_mode``, or None.

    ``postings`` (default: the record's own) stand in for the record's in a batch-rooted
    journal; None when the record lacks what its mode chains (a link, or a root).
    """
    if record.previous_hash is None or record.sequence is None:
        return None
    if root_mode is RootMode.ENTRY:
        if record.state_root is None:
            return None
        return compute_entry_hash(record.previous_hash, record.line, record.state_root)
    rows = record.postings if postings is None else postings
    postings_hash = compute_entry_postings_hash(record.sequence, rows)
    return compute_batch_rooted_entry_hash(record.previous_hash, record.line, postings_hash)


def compute_batch_hash(header: BatchHeader, root_mode: RootMode = RootMode.ENTRY) -> bytes:
    """Return the hash of a batch header over every field but the hash (SK-BATCH-1).

    A batch-rooted journal's batches hash under their own domain (SK-JOURNAL-9).
    """
    domain = BATCH_DOMAIN if root_mode is RootMode.ENTRY else BATCH_ROOTED_BATCH_DOMAIN
    return hashlib.sha256(
        domain
        + _u64(header.number)
        + _u64(header.first_attempt)
        + _u64(header.record_count)
        + _u64(header.first_sequence)
        + _u64(header.entry_count)
        + header.previous_batch_hash
        + header.previous_root
        + header.events_hash
        + header.postings_hash
        + header.new_root
        + header.head_hash
    ).digest()


def storable_line(line: str) -> str:
    """Return ``line`` as the journal can store and replay it (SK-JOURNAL-5).

    Cut to one character past the wire bound (still too long, so rejected the same way) and
    with any lone surrogate escaped, so that it encodes as UTF-8. Decoding reads this form,
    at append and on replay alike.
    """
    line = line[:STORED_LINE_CHARS_MAX]
    if line.isascii():
        return line
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def execute_line(state: State, line: str, at: ChainPosition) -> tuple[Record, State, ChainPosition]:
    """Decode and apply one line at ``at``; return its record, the state and position after."""
    line = storable_line(line)
    decoded = decode_event(line, at.attempt)
    if isinstance(decoded, Rejected):
        reason, message = decoded.reason.value, decoded.message
    else:
        line = encode_event(decoded)
        outcome = step(state, decoded)
        if isinstance(outcome, Accepted):
            return _accepted(line, outcome, at)
        reason, message = outcome.reason.value, outcome.message
    chain = compute_events_chain(at.events_chain, line)
    record = Record(at.attempt, line, reason=reason, message=message, events_chain=chain)
    return record, state, attrs.evolve(at, attempt=at.attempt + 1, events_chain=chain)


def _accepted(
    line: str, outcome: Accepted, at: ChainPosition
) -> tuple[Record, State, ChainPosition]:
    """Chain an accepted event: fold, root, entry hash (SK-JOURNAL-1)."""
    if at.root_mode is RootMode.BATCH:
        return _accepted_batch_rooted(line, outcome, at)
    after = fold(outcome.state)
    root = state_root(after)
    entry_hash = compute_entry_hash(at.head_hash, line, root)
    chain = compute_events_chain(at.events_chain, line)
    record = Record(
        at.attempt,
        line,
        at.sequence,
        root,
        at.head_hash,
        entry_hash,
        events_chain=chain,
        postings=tuple(map(posting_row, outcome.postings)),
    )
    return record, after, ChainPosition(at.attempt + 1, at.sequence + 1, entry_hash, chain)


def _accepted_batch_rooted(
    line: str, outcome: Accepted, at: ChainPosition
) -> tuple[Record, State, ChainPosition]:
    """Chain an accepted event of a batch-rooted journal: postings, entry hash (SK-JOURNAL-9).

    Nothing is folded or rooted here: the batch roots its state once, at its end.
    """
    postings = tuple(map(posting_row, outcome.postings))
    postings_hash = compute_entry_postings_hash(at.sequence, postings)
    entry_hash = compute_batch_rooted_entry_hash(at.head_hash, line, postings_hash)
    chain = compute_events_chain(at.events_chain, line)
    record = Record(
        at.attempt,
        line,
        at.sequence,
        None,
        at.head_hash,
        entry_hash,
        events_chain=chain,
        postings=postings,
    )
    following = ChainPosition(at.attempt + 1, at.sequence + 1, entry_hash, chain, at.root_mode)
    return record, outcome.state, following


def first_position(
    previous: BatchHeader | None, genesis_root: bytes, root_mode: RootMode = RootMode.ENTRY
) -> ChainPosition:
    """Return where the batch after ``previous`` (None: the first batch) starts."""
    if previous is None:
        return ChainPosition(1, 1, genesis_root, compute_events_seed(1), root_mode)
    return ChainPosition(
        previous.first_attempt + previous.record_count,
        previous.first_sequence + previous.entry_count,
        previous.head_hash,
        compute_events_seed(previous.number + 1),
        root_mode,
    )


def execute_batch(
    state: State,
    previous: BatchHeader | None,
    genesis_root: bytes,
    lines: Sequence[str],
    root_mode: RootMode = RootMode.ENTRY,
) -> ExecutedBatch:
    """Apply ``lines`` after the batch ``previous`` (None: the first batch) (SK-BATCH-2).

    The state after the batch is folded in either root mode (SK-JOURNAL-9).
    """
    start = first_position(previous, genesis_root, root_mode)
    previous_root = state_root(state)
    at = start
    records: list[Record] = []
    for line in lines:
        record, state, at = execute_line(state, line, at)
        records.append(record)
    state = fold(state)
    header = BatchHeader(
        number=1 if previous is None else previous.number + 1,
        first_attempt=start.attempt,
        record_count=len(records),
        first_sequence=start.sequence,
        entry_count=at.sequence - start.sequence,
        previous_batch_hash=genesis_root if previous is None else previous.batch_hash,
        previous_root=previous_root,
        events_hash=at.events_chain,
        postings_hash=compute_postings_hash(records),
        new_root=state_root(state),
        head_hash=at.head_hash,
        batch_hash=b"",
    )
    header = attrs.evolve(header, batch_hash=compute_batch_hash(header, root_mode))
    return ExecutedBatch(tuple(records), header, state)
