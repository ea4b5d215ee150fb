"""The in-memory journal: accepted events chained by hash (spec/40-roots.md#journal).

Each accepted event becomes an entry whose hash is
``SHA-256("settlekernel/entry/v1" | previous entry hash | len(event) | canonical event |
state root after the event)`` (SK-JOURNAL-1). The chain starts from the genesis root, so an
entry pins the whole history before it. Rejected events are kept as an audit trail but do
not enter the chain: they change no state.

This is the imperative shell around the pure kernel: it owns the current state and appends.
The durable SQLite journal builds on the same entry format.
"""

from __future__ import annotations

import hashlib
from typing import Final, cast

import attrs

from settlekernel.core.events import Event
from settlekernel.core.model import State
from settlekernel.core.outcomes import Accepted, Outcome, Rejected
from settlekernel.core.root import fold, state_root
from settlekernel.core.rules import RuleSet
from settlekernel.core.wire import decode_event, describe_event, encode_event
from settlekernel.kernel.dispatch import genesis, step

ENTRY_DOMAIN: Final = b"settlekernel/entry/v1\n"


def compute_entry_hash(previous_hash: bytes, event_line: str, root: bytes) -> bytes:
    """Return the hash of a journal entry (SK-JOURNAL-1)."""
    event_bytes = event_line.encode()
    return hashlib.sha256(
        ENTRY_DOMAIN + previous_hash + len(event_bytes).to_bytes(8, "big") + event_bytes + root
    ).digest()


@attrs.frozen
class JournalEntry:
    """One accepted event, the state root after it, and its place in the hash chain."""

    sequence: int
    event_line: str
    state_root: bytes
    previous_hash: bytes
    entry_hash: bytes


@attrs.frozen
class JournalRejection:
    """An event that was refused: recorded for the audit trail, outside the chain."""

    attempt: int
    event_line: str
    rejection: Rejected


class Journal:
    """Apply events to a state and chain every accepted one (SK-JOURNAL-1..3)."""

    def __init__(self, state: State) -> None:
        """Start a journal at ``state`` (usually ``genesis(rules)``)."""
        self.initial_state: Final = fold(state)
        self.state: State = self.initial_state
        self.genesis_root: Final = state_root(self.initial_state)
        self.entries: list[JournalEntry] = []
        self.rejections: list[JournalRejection] = []
        self._attempts = 0

    @property
    def head_hash(self) -> bytes:
        """Return the hash of the last entry, or the genesis root before any."""
        return self.entries[-1].entry_hash if self.entries else self.genesis_root

    def submit(self, event: object) -> Outcome:
        """Apply ``event``; chain it if accepted, record it if rejected; return the outcome."""
        self._attempts += 1
        outcome = step(self.state, event)
        if isinstance(outcome, Rejected):
            line = describe_event(event)
            self.rejections.append(JournalRejection(self._attempts, line, outcome))
            return outcome
        self.state = fold(outcome.state)
        line = encode_event(cast("Event", event))  # Accepted, so it is an Event.
        root = state_root(self.state)
        entry_hash = compute_entry_hash(self.head_hash, line, root)
        self.entries.append(
            JournalEntry(len(self.entries) + 1, line, root, self.head_hash, entry_hash)
        )
        return Accepted(self.state, outcome.postings)

    def record_rejection(self, rejection: Rejected, line: str) -> None:
        """Record a line that never became an event (it failed to decode)."""
        self._attempts += 1
        self.rejections.append(JournalRejection(self._attempts, line[:200], rejection))


def verify_entries(rules: RuleSet, entries: list[JournalEntry]) -> str | None:
    """Re-execute ``entries`` from genesis; return what differs at the first bad entry, or None.

    Checks each entry's link, its hash, that its event decodes and is accepted, and that
    the re-derived state root matches the stored one (SK-JOURNAL-3).
    """
    state = genesis(rules)
    previous_hash = state_root(state)
    for expected_sequence, entry in enumerate(entries, start=1):
        where = f"entry {entry.sequence}"
        if entry.sequence != expected_sequence or entry.previous_hash != previous_hash:
            return f"{where}: does not link to the entry before it"
        if (
            compute_entry_hash(previous_hash, entry.event_line, entry.state_root)
            != entry.entry_hash
        ):
            return f"{where}: entry hash does not match its contents"
        event = decode_event(entry.event_line, entry.sequence)
        if isinstance(event, Rejected):
            return f"{where}: event does not decode: {event.message}"
        outcome = step(state, event)
        if isinstance(outcome, Rejected):
            return f"{where}: event is rejected on replay: {outcome.reason.value}"
        state = fold(outcome.state)
        if state_root(state) != entry.state_root:
            return f"{where}: state root {entry.state_root.hex()[:16]} differs from replay"
        previous_hash = entry.entry_hash
    return None
