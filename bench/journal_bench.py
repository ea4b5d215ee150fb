"""The durable journal benchmark (part of ``make bench``): append and replay-verify throughput.

Two workloads, stated plainly because the kernel's own cost differs by two orders of
magnitude between them:

- ``transfers``: collateral traffic only (deposits, withdrawals, transfers between an
  owner's two sub-accounts, a few percent of rejections), where the journal's own costs
  (decoding, a fold and a state root per event, hashing, SQLite) dominate;
- ``mixed``: the replay benchmark's stream (bench/workload.py: 72 % trades with portfolio
  margin, oracle quorums, funding, liquidations, an expiry), where ``step`` dominates.

For each, in one process and one run: the in-memory ``Journal`` (the same per-event work
with no storage) as the baseline, then ``DurableJournal.append`` in batches of 1,000 on a
real SQLite file (WAL, synchronous=FULL; the time inside the SQLite transaction is measured
separately), then ``journal replay`` (roots only), ``journal verify`` (everything) and a
recovery from the latest snapshot, once per root mode (SK-JOURNAL-9): ``entry``, a state root
after every entry, and ``batch``, one per batch; then the batch-rooted append again with the
cyclic GC at CPython's defaults instead of paused per batch (``journal.gcpause``). Figures
are reported against issue 14's targets (mixed append >= 15k events/s, verify >= 20k
events/s), met or not; nothing is asserted. Results go to bench/results/journal.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import settlekernel as sk
from settlekernel.core.wire import decode_event, encode_event
from settlekernel.journal import durable
from settlekernel.journal.batches import RootMode
from settlekernel.journal.durable import DurableJournal, open_for_audit
from settlekernel.journal.memory import Journal
from settlekernel.journal.store import SqliteStore
from settlekernel.journal.verify import audit_journal
from workload import generate

RESULTS = Path(__file__).resolve().parent / "results" / "journal.json"
TARGET_APPEND_EVENTS_PER_S = 15_000
TARGET_VERIFY_EVENTS_PER_S = 20_000
BATCH_LINES = 1_000


def transfer_lines(n_events: int, n_owners: int) -> list[str]:
    """Return a collateral-only stream: two funded sub-accounts per owner, then traffic."""
    events: list[sk.Event] = []
    for owner in range(n_owners):
        name = f"owner-{owner}"
        for side in ("a", "b"):
            account = f"{name}-{side}"
            events.append(sk.OpenAccount(principal=name, account=account))
            events.append(
                sk.Deposit(principal=name, account=account, asset="USDC", amount_minor=10**12)
            )
    index = 0
    while len(events) < n_events:
        owner = (index * 7919) % n_owners
        name, amount = f"owner-{owner}", 1 + (index * 104_729) % 1_000_000
        kind = index % 10
        if kind < 4:
            events.append(
                sk.Deposit(principal=name, account=f"{name}-a", asset="USDC", amount_minor=amount)
            )
        elif kind < 7:
            events.append(
                sk.Transfer(
                    principal=name,
                    source_account=f"{name}-a",
                    target_account=f"{name}-b",
                    asset="USDC",
                    amount_minor=amount,
                )
            )
        elif kind < 9:
            events.append(
                sk.Withdraw(principal=name, account=f"{name}-b", asset="USDC", amount_minor=amount)
            )
        else:  # Someone else's money: rejected, recorded, not chained.
            events.append(
                sk.Withdraw(principal="mallory", account=f"{name}-a", asset="USDC", amount_minor=1)
            )
        index += 1
    return [encode_event(event) for event in events[:n_events]]


def mixed_lines(n_events: int, n_accounts: int) -> list[str]:
    return [encode_event(event) for event in generate(n_events, n_accounts, 7)]


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def in_memory(lines: list[str]) -> tuple[bytes, int]:
    """The baseline: decode and submit every line to the in-memory journal."""
    journal = Journal(sk.genesis(sk.RuleSet.default()))
    for number, line in enumerate(lines, start=1):
        event = decode_event(line, number)
        if isinstance(event, sk.Rejected):
            journal.record_rejection(event, line)
        else:
            journal.submit(event)
    return sk.state_root(journal.state), len(journal.entries)


class MeteredStore(SqliteStore):
    """The SQLite store, timing each append's transaction."""

    seconds = 0.0

    def append(self, header, records, snapshot) -> None:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        super().append(header, records, snapshot)
        MeteredStore.seconds += time.perf_counter() - started


def durable_append(path: Path, lines: list[str], mode: RootMode) -> bytes:
    rules = sk.RuleSet.default()
    store = MeteredStore(path)
    from settlekernel.journal.durable import _journal_rules, recover  # noqa: PLC0415

    journal_rules, genesis_root = _journal_rules(store, rules, root_mode=mode)
    state, head = recover(store, journal_rules, genesis_root)
    journal = DurableJournal(store, journal_rules, genesis_root, state, head, 50_000, mode)
    for start in range(0, len(lines), BATCH_LINES):
        journal.append(lines[start : start + BATCH_LINES])
    root = sk.state_root(journal.state)
    journal.close()
    return root


def durable_append_default_gc(path: Path, lines: list[str], mode: RootMode) -> bytes:
    """``durable_append`` with the collector left at CPython's defaults: no ``gc_paused``."""
    paused = durable.gc_paused
    durable.gc_paused = contextlib.nullcontext  # type: ignore[assignment]
    try:
        return durable_append(path, lines, mode)
    finally:
        durable.gc_paused = paused


def audit(path: Path, *, full: bool) -> bytes:
    store, rules, genesis_root = open_for_audit(path)
    try:
        report = audit_journal(store, rules, genesis_root, full=full)
    finally:
        store.close()
    if report.finding is not None:
        sys.exit(f"the benchmark's own journal does not verify: {report.finding}")
    return report.final_root


def recover_head(path: Path) -> bytes:
    journal = DurableJournal.open(path)
    root = sk.state_root(journal.state)
    journal.close()
    return root


def measure(name: str, lines: list[str], folder: Path) -> dict[str, Any]:
    n = len(lines)
    baseline_s, (baseline_root, entries) = timed(lambda: in_memory(lines))
    row: dict[str, Any] = {
        "events": n,
        "accepted": entries,
        "in_memory_journal_events_per_s": round(n / baseline_s),
        "final_root": baseline_root.hex(),
    }
    for mode in RootMode:
        path = folder / f"{name}-{mode.value}.db"
        MeteredStore.seconds = 0.0
        append_s, append_root = timed(lambda: durable_append(path, lines, mode))  # noqa: B023
        replay_s, replay_root = timed(lambda: audit(path, full=False))  # noqa: B023
        verify_s, verify_root = timed(lambda: audit(path, full=True))  # noqa: B023
        recover_s, recover_root = timed(lambda: recover_head(path))  # noqa: B023
        roots = {baseline_root, append_root, replay_root, verify_root, recover_root}
        if len(roots) != 1:
            sys.exit(f"{name}, {mode.value}-rooted: the runs disagree on the final root")
        row[f"{mode.value}_rooted"] = {
            "durable_append_events_per_s": round(n / append_s),
            "durable_append_vs_in_memory": round(baseline_s / append_s, 3),
            "sqlite_share_of_append": round(MeteredStore.seconds / append_s, 3),
            "sqlite_only_events_per_s": round(n / MeteredStore.seconds),
            "replay_events_per_s": round(n / replay_s),
            "verify_events_per_s": round(n / verify_s),
            "verify_vs_in_memory": round(baseline_s / verify_s, 3),
            "recover_from_snapshot_s": round(recover_s, 3),
            "file_bytes": path.stat().st_size,
        }
    # The same batch-rooted append with the cyclic GC at its defaults (gcpause's effect).
    path = folder / f"{name}-default-gc.db"
    default_s, default_root = timed(lambda: durable_append_default_gc(path, lines, RootMode.BATCH))
    if default_root != baseline_root:
        sys.exit(f"{name}, default GC: the runs disagree on the final root")
    row["batch_rooted_append_gc_default_events_per_s"] = round(n / default_s)
    print(f"\n{name}: {n:,} events ({entries:,} accepted)")
    print(f"  {'in_memory_journal_events_per_s':<34} {row['in_memory_journal_events_per_s']:,}")
    print(f"  {'':<34} {'entry-rooted':>14} {'batch-rooted':>14}")
    for key in row["entry_rooted"]:
        values = [row[f"{mode.value}_rooted"][key] for mode in RootMode]
        print(f"  {key:<34} " + " ".join(f"{value:>14,}" for value in values))
    print(
        f"  {'append, batch-rooted, GC default':<34} "
        f"{row['batch_rooted_append_gc_default_events_per_s']:>29,}"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transfer-events", type=int, default=100_000)
    parser.add_argument("--mixed-events", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=2_000)
    arguments = parser.parse_args()
    results: dict[str, Any] = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "targets": {
            "append_events_per_s": TARGET_APPEND_EVENTS_PER_S,
            "verify_events_per_s": TARGET_VERIFY_EVENTS_PER_S,
        },
        "batch_lines": BATCH_LINES,
    }
    with tempfile.TemporaryDirectory() as folder:
        results["transfers"] = measure(
            "transfers", transfer_lines(arguments.transfer_events, arguments.accounts), Path(folder)
        )
        results["mixed"] = measure(
            "mixed", mixed_lines(arguments.mixed_events, arguments.accounts), Path(folder)
        )
    for workload in ("transfers", "mixed"):
        for mode in RootMode:
            row = results[workload][f"{mode.value}_rooted"]
            append_met = row["durable_append_events_per_s"] >= TARGET_APPEND_EVENTS_PER_S
            verify_met = row["verify_events_per_s"] >= TARGET_VERIFY_EVENTS_PER_S
            print(
                f"{workload}, {mode.value}-rooted: append target "
                f"{'met' if append_met else 'NOT met'}, "
                f"verify target {'met' if verify_met else 'NOT met'}"
            )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
