"""Replays keep no past state: recovery, verify and append hold one state at a time (issue 14).

Every state ``step`` returns is watched through a weak reference while the journal appends,
recovers or verifies the demo session; once the call returns (and a collection has run),
at most the states the caller still holds may be alive, whatever the number of events.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from journal_files import build, demo_lines
from settlekernel.core.outcomes import Accepted
from settlekernel.journal import batches, durable
from settlekernel.journal.batches import RootMode
from settlekernel.journal.durable import DurableJournal, open_for_audit
from settlekernel.journal.verify import audit_journal


@pytest.fixture
def watched(monkeypatch):
    """Watch every post-state ``step`` or a fold returns to the journal; return the list."""
    references: list[weakref.ref[object]] = []

    def watching(step):
        def step_and_watch(state, event):
            outcome = step(state, event)
            if isinstance(outcome, Accepted):
                references.append(weakref.ref(outcome.state))
            return outcome

        return step_and_watch

    def watching_fold(fold):
        def fold_and_watch(state):
            folded = fold(state)
            references.append(weakref.ref(folded))
            return folded

        return fold_and_watch

    monkeypatch.setattr(batches, "step", watching(batches.step))
    monkeypatch.setattr(durable, "step", watching(durable.step))
    # A journal rooted per entry keeps the folded state after each entry, not the step's.
    monkeypatch.setattr(batches, "fold", watching_fold(batches.fold))
    return references


def alive(references):
    gc.collect()
    return sum(reference() is not None for reference in references)


@pytest.mark.parametrize("mode", list(RootMode))
def test_append_recovery_and_verify_keep_no_past_state(tmp_path, watched, mode):
    """Leaves no state of the 70-odd entries alive after appending, recovering or verifying."""
    path = tmp_path / "journal.db"
    build(path, demo_lines(), root_mode=mode)
    assert len(watched) > 50
    assert alive(watched) == 0  # The journal is closed: nothing holds any state.
    watched.clear()
    journal = DurableJournal.open(path)  # Recovers from the last snapshot, replaying the tail.
    try:
        assert watched
        # At most the recovered state itself (the tail's last step, folded or not).
        assert alive(watched) <= 1
    finally:
        journal.close()
    watched.clear()
    store, rules, genesis_root = open_for_audit(path)
    try:
        report = audit_journal(store, rules, genesis_root)
    finally:
        store.close()
    assert report.finding is None
    assert len(watched) > 50
    assert alive(watched) == 0
