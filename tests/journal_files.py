"""Real journal files for the tests: the demo session appended in batches, with snapshots."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Final

from settlekernel.cli.demo import VENUES, DemoStep, demo_steps
from settlekernel.core.wire import encode_event
from settlekernel.journal.batches import RootMode
from settlekernel.journal.durable import DurableJournal

BATCH = 10
# `make fuzz` sets this to run the long corpora; `make test` runs samples.
FUZZ = os.environ.get("SETTLEKERNEL_FUZZ") == "1"


# The journal tests pin positions in the file (batch 9, record 81, entry 72): they were
# written against the demo as it stood before hal and ivy (the calendar spread and the netted
# expiry, issue 12) and the two-venue chapter (SK-VENUE) joined it, and keep that session;
# its final root is JOURNAL_ROOT.
LATER_ACCOUNTS: Final = frozenset({"hal", "ivy"})


def journal_steps() -> list[DemoStep]:
    """Return the demo's steps without those of the accounts that joined it later."""
    return [
        demo_step
        for demo_step in demo_steps()
        if demo_step.chapter != VENUES
        and not LATER_ACCOUNTS
        & {
            getattr(demo_step.event, field, None)
            for field in ("principal", "account", "buyer", "seller", "liquidator")
        }
    ]


def demo_lines() -> list[str]:
    """The journal session's events, with a line that is not JSON and one that misses fields."""
    lines = [encode_event(demo_step.event) for demo_step in journal_steps()]
    lines.insert(5, "not json")
    lines.insert(30, '{"type":"deposit"}')
    return lines


def build(
    path: Path,
    lines: list[str],
    snapshot_every_entries: int = 20,
    root_mode: RootMode = RootMode.ENTRY,
) -> None:
    """Append ``lines`` to a new journal at ``path`` in batches of ``BATCH``."""
    journal = DurableJournal.open(
        path, snapshot_every_entries=snapshot_every_entries, root_mode=root_mode
    )
    try:
        for start in range(0, len(lines), BATCH):
            journal.append(lines[start : start + BATCH])
    finally:
        journal.close()


def sql(path: Path, statement: str, *parameters: object) -> list[tuple[object, ...]]:
    """Run one statement as a forger would: no check constraints, no foreign keys."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA ignore_check_constraints=ON")
        db.execute("PRAGMA foreign_keys=OFF")
        rows = db.execute(statement, parameters).fetchall()
        db.commit()
        return rows
    finally:
        db.close()
