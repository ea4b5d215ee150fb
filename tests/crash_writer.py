"""A journal writer for the crash tests: appends deterministic batches until it is killed.

Run as ``python crash_writer.py DB``. It opens (and so recovers) the journal, prints
``open <head>``, then appends batch after batch, printing each batch number only after its
transaction has committed. Batch ``k``'s lines are a pure function of ``k`` (``batch_lines``),
so whoever reads the journal afterwards knows exactly what every stored batch must hold.
"""

from __future__ import annotations

import sys
from pathlib import Path

import settlekernel as sk
from settlekernel.core.wire import encode_event
from settlekernel.journal.batches import compute_events_hash
from settlekernel.journal.durable import DurableJournal

ACCOUNTS = 40
LINES_PER_BATCH = 60
# Small, so that kills also land while a snapshot is being written.
SNAPSHOT_EVERY_ENTRIES = 300
# A writer that is never killed stops here, which bounds the file.
BATCHES_MAX = 50_000


def _account(index: int) -> str:
    return f"acct-{index % ACCOUNTS:02}"


def batch_lines(number: int) -> list[str]:
    """Return batch ``number``'s lines: opens and deposits first, then mixed traffic."""
    if number == 1:
        events: list[sk.Event] = [
            sk.OpenAccount(principal=_account(i), account=_account(i)) for i in range(ACCOUNTS)
        ]
        events += [
            sk.Deposit(
                principal=_account(i), account=_account(i), asset="USDC", amount_minor=10**12
            )
            for i in range(LINES_PER_BATCH - ACCOUNTS)
        ]
        return [encode_event(event) for event in events]
    lines = []
    for slot in range(LINES_PER_BATCH - 2):
        account = _account(number * 7 + slot)
        amount = 1 + (number * 131 + slot * 17) % 100_000
        event = (
            sk.Deposit(principal=account, account=account, asset="USDC", amount_minor=amount)
            if slot % 3
            else sk.Withdraw(principal=account, account=account, asset="USDC", amount_minor=amount)
        )
        lines.append(encode_event(event))
    # Every batch also carries two rejections: a line that is not JSON, a foreign withdraw.
    lines.append(f"not json {number}")
    lines.append(
        encode_event(
            sk.Withdraw(principal="mallory", account=_account(number), asset="USDC", amount_minor=1)
        )
    )
    return lines


def expected_events_hash(number: int) -> bytes:
    """Return the events hash batch ``number`` must carry."""
    return compute_events_hash(number, batch_lines(number))


def main(path: Path) -> None:
    journal = DurableJournal.open(path, snapshot_every_entries=SNAPSHOT_EVERY_ENTRIES)
    head = 0 if journal.head is None else journal.head.number
    print(f"open {head}", flush=True)
    for number in range(head + 1, BATCHES_MAX + 1):
        executed = journal.append(batch_lines(number))
        assert executed.header.number == number
        print(number, flush=True)
    journal.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
