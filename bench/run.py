"""The replay benchmark behind ``make bench`` (the project's throughput issue).

It generates a deterministic mixed stream (bench/workload.py, 1M events over 10k accounts by
default) and replays it, in one process, through:

- the kernel, ``apply_batch`` in batches of 1,000 with a ``state_root`` per batch, outcomes
  dropped after each batch (the realistic replay and the headline figure);
- the kernel as a bare ``step`` loop, no roots;
- ``DictKernel`` (bench/dict_kernel.py), the same rules over mutable dicts: the baseline;

each with CPython's cyclic GC at its defaults and tuned (``gc.freeze()`` after setup and
``gc.disable()`` during the replay), then the cost of a per-event root (fold and root after
every accepted event, as a per-event journal does) on a slice, and last the linear-only
stream (``--linear-events``, the same mix on the perpetuals and the future alone, no
options), kernel against ``DictKernel``, checked the same way.

Timings are trusted only once the kernel and ``DictKernel`` agree: every run records each
event's decision (accepted, or the rejection ``Reason``) and the final state, and any
disagreement aborts with exit status 1 before a figure is printed. The issue's targets
(>= 200k events/s, kernel/dict >= 0.33) are reported, never asserted.

The GC-default kernel runs dominate the wall time, so by default the GC comparison and the
bare-step rows replay a prefix of the stream (``--matrix-events``, 200k) while the headline
pair replays all of it; ``--matrix-events 0`` runs every row on the whole stream.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_maps
import settlekernel as sk
from compare import decision_differences, dict_view, kernel_view, view_differences
from dict_kernel import DictKernel
from settlekernel.core.reasons import Reason
from workload import generate

RESULTS = Path(__file__).resolve().parent / "results" / "replay.json"
TARGET_EVENTS_PER_S = 200_000
TARGET_RATIO = 0.33
# Issue 14: the linear-only stream, no options.
TARGET_LINEAR_EVENTS_PER_S = 60_000
GC_MODES = ("default", "tuned")

Decisions = list[Reason | None]


def peak_rss_mib() -> int:
    """Return the process's peak resident set so far, in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def current_rss_mib() -> int:
    """Return the process's resident set now, in MiB (0 where /proc is not there)."""
    try:
        with Path("/proc/self/status").open(encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        return 0
    return 0


class AgreementError(Exception):
    """The kernel and DictKernel disagree: no timing can be trusted."""


class GcMeter:
    """Count collections per generation and the time spent in them (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]
        self.pause_s = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pause_s += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1


@contextmanager
def gc_mode(mode: str) -> Iterator[GcMeter]:
    """Run the block with the GC at its defaults or tuned, metering every collection."""
    gc.collect()
    meter = GcMeter()
    if mode == "tuned":
        # Everything alive now (the event stream, the rules, genesis) is permanent: the
        # collector never traverses it again, and it does not run at all during the replay.
        gc.freeze()
        gc.disable()
    gc.callbacks.append(meter)
    try:
        yield meter
    finally:
        gc.callbacks.remove(meter)
        if mode == "tuned":
            gc.enable()
            gc.unfreeze()


@dataclass(frozen=True)
class Row:
    """One timed replay, in one section of the table."""

    section: str
    name: str
    mode: str
    n_events: int
    seconds: float
    gc_pause_s: float
    gc_collections: tuple[int, int, int]
    # The process's resident set after the run, and its peak so far (MiB).
    rss_mib: int = 0
    peak_rss_mib: int = 0

    @property
    def rate(self) -> float:
        return self.n_events / self.seconds

    def as_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "gc": self.mode,
            "events": self.n_events,
            "seconds": round(self.seconds, 3),
            "events_per_s": round(self.rate, 1),
            "gc_pause_s": round(self.gc_pause_s, 3),
            "gc_collections": list(self.gc_collections),
            "rss_mib": self.rss_mib,
            "peak_rss_mib": self.peak_rss_mib,
        }


# The replays. Each records one decision per event, at the same small cost for all three.


def replay_dict(events: Sequence[object], rules: sk.RuleSet) -> tuple[Decisions, DictKernel]:
    kernel = DictKernel(rules)
    apply = kernel.apply
    decisions = [apply(event) for event in events]
    return decisions, kernel


def replay_batches(
    events: Sequence[object],
    rules: sk.RuleSet,
    batch: int,
    keep: Sequence[int] = (),
    roots_at: Sequence[int] = (),
) -> tuple[Decisions, sk.State, dict[int, sk.State], dict[int, bytes]]:
    """Replay with ``apply_batch``; keep the (folded) states, or only the roots, asked for.

    ``keep`` and ``roots_at`` are batch boundaries. Only the last state and those in
    ``keep`` stay alive: a root is 32 bytes, a state all that is not shared with the next.
    """
    apply_batch, state_root, accepted = sk.apply_batch, sk.state_root, sk.Accepted
    state = sk.genesis(rules)
    decisions: Decisions = []
    kept: dict[int, sk.State] = {}
    roots: dict[int, bytes] = {}
    wanted, wanted_roots = set(keep), set(roots_at)
    for start in range(0, len(events), batch):
        if start in wanted:
            kept[start] = state
        state, outcomes = apply_batch(state, events[start : start + batch])
        root = state_root(state)
        if min(start + batch, len(events)) in wanted_roots:
            roots[min(start + batch, len(events))] = root
        decisions += [None if type(o) is accepted else o.reason for o in outcomes]
        # Each accepted outcome holds its post-state: drop the batch's before the next one.
        del outcomes
    if len(events) in wanted:
        kept[len(events)] = state
    return decisions, state, kept, roots


def replay_steps(events: Sequence[object], rules: sk.RuleSet) -> tuple[Decisions, sk.State]:
    step, accepted = sk.step, sk.Accepted
    state = sk.genesis(rules)
    decisions: Decisions = []
    append = decisions.append
    for event in events:
        outcome = step(state, event)
        if type(outcome) is accepted:
            state = outcome.state
            append(None)
        else:
            append(outcome.reason)
    return decisions, state


def replay_rooted(events: Sequence[object], state: sk.State) -> tuple[Decisions, sk.State]:
    """Fold and take the root after every accepted event, as a per-event journal does."""
    step, fold, state_root, accepted = sk.step, sk.fold, sk.state_root, sk.Accepted
    decisions: Decisions = []
    append = decisions.append
    for event in events:
        outcome = step(state, event)
        if type(outcome) is accepted:
            state = fold(outcome.state)
            state_root(state)
            append(None)
        else:
            append(outcome.reason)
    return decisions, state


def require(problems: list[str], what: str) -> None:
    """Raise ``AgreementError`` listing ``problems``, if there are any."""
    if problems:
        raise AgreementError(f"{what}:\n  " + "\n  ".join(problems))


class Bench:
    """Times replays of one stream and checks each against the reference decisions."""

    def __init__(self, events: list[Any], rules: sk.RuleSet, batch: int) -> None:
        self.events = events
        self.rules = rules
        self.batch = batch
        self.rows: list[Row] = []
        # DictKernel's decision for every event of the whole stream, set by the first run.
        self.reference: Decisions = []

    def _time(self, section: str, name: str, mode: str, n: int, run: Callable[[], Any]) -> Any:
        with gc_mode(mode) as meter:
            started = time.perf_counter()
            result = run()
            seconds = time.perf_counter() - started
        gen0, gen1, gen2 = meter.collections
        self.rows.append(
            Row(
                section=section,
                name=name,
                mode=mode,
                n_events=n,
                seconds=seconds,
                gc_pause_s=meter.pause_s,
                gc_collections=(gen0, gen1, gen2),
                rss_mib=current_rss_mib(),
                peak_rss_mib=peak_rss_mib(),
            )
        )
        return result

    def _check(self, decisions: Decisions, offset: int, what: str) -> None:
        expected = self.reference[offset : offset + len(decisions)]
        problems = decision_differences(self.events, expected, decisions, offset=offset)
        require(problems, f"{what} disagrees with DictKernel")

    def dict_kernel(self, section: str, mode: str, n: int) -> DictKernel:
        events = self.events[:n]
        decisions, kernel = self._time(
            section, "DictKernel", mode, n, lambda: replay_dict(events, self.rules)
        )
        if not self.reference:
            self.reference = decisions
        self._check(decisions, 0, f"DictKernel ({mode} GC)")
        return kernel

    def batches(
        self,
        section: str,
        mode: str,
        n: int,
        keep: Sequence[int] = (),
        roots_at: Sequence[int] = (),
    ) -> tuple[sk.State, dict[int, sk.State]]:
        events = self.events[:n]
        decisions, state, kept, roots = self._time(
            section,
            "kernel apply_batch + root/batch",
            mode,
            n,
            lambda: replay_batches(events, self.rules, self.batch, keep, roots_at),
        )
        self._check(decisions, 0, f"kernel apply_batch ({mode} GC)")
        return state, kept, roots

    def steps(self, section: str, mode: str, n: int) -> sk.State:
        events = self.events[:n]
        decisions, state = self._time(
            section,
            "kernel step loop, no roots",
            mode,
            n,
            lambda: replay_steps(events, self.rules),
        )
        self._check(decisions, 0, f"kernel step loop ({mode} GC)")
        return state

    def rooted(self, section: str, start: int, end: int, state: sk.State) -> sk.State:
        events = self.events[start:end]
        decisions, state = self._time(
            section,
            "kernel step + fold + root/event",
            "tuned",
            len(events),
            lambda: replay_rooted(events, state),
        )
        self._check(decisions, start, "per-event-root replay")
        return state


def measure(bench: Bench, matrix_events: int, root_events: int) -> dict[str, Any]:
    """Run every replay; raise ``AgreementError`` at the first disagreement."""
    n = len(bench.events)
    batch = bench.batch
    details: dict[str, Any] = {}
    # The per-event-root slice starts mid-stream on a batch boundary, so that the headline
    # replay can hand over the exact state there, and the root where the slice ends (only
    # the root: keeping a second whole state would raise the peak resident set for nothing).
    root_start = (n // 2) // batch * batch
    root_end = min(root_start + root_events, n)

    # 1. The headline pair on the whole stream, GC tuned. DictKernel's run is the reference.
    print("\nVerifying and timing (the kernel runs take a while) ...", flush=True)
    whole = f"Headline: the whole stream, {n:,} events"
    reference_view = dict_view(bench.dict_kernel(whole, "tuned", n))
    state, kept, roots = bench.batches(whole, "tuned", n, (root_start,), (root_end,))
    require(view_differences(kernel_view(state), reference_view), "final state differs")
    final_root = sk.state_root(state)
    require([] if final_root == sk.recompute_root(state) else ["incremental root"], "root")
    del state, reference_view
    outcomes = Counter("accepted" if d is None else d.value for d in bench.reference)
    details["verification"] = {
        "events": n,
        "agree": True,
        "accepted": outcomes["accepted"],
        "outcomes": dict(outcomes.most_common()),
        "final_root": final_root.hex(),
    }
    print(
        f"Agreement: all {n:,} decisions and the final state match. Outcomes: "
        + _shares(outcomes, top=8)
    )

    # 2. A root after every accepted event, from the mid-stream state. It runs before the
    # matrix so that the kept states are gone before the GC-default runs traverse the heap.
    rooted = f"Per-event root: events {root_start:,} to {root_end:,}"
    state = bench.rooted(rooted, root_start, root_end, kept[root_start])
    if root_end in roots:
        same = sk.state_root(state) == roots[root_end]
        require([] if same else ["slice end"], "per-event roots and apply_batch disagree")
    del state, kept
    details["per_event_root_slice"] = {"start": root_start, "end": root_end}

    # 3. The matrix: three implementations x two GC modes, on a prefix of the stream.
    m = n if matrix_events <= 0 else min(matrix_events, n)
    matrix = f"GC and loop comparison: the first {m:,} events"
    for mode in GC_MODES:
        if m < n or mode != "tuned":
            prefix_view = dict_view(bench.dict_kernel(matrix, mode, m))
            state, _, _ = bench.batches(matrix, mode, m)
            require(view_differences(kernel_view(state), prefix_view), "prefix state differs")
            batch_root = sk.state_root(state)
            del state, prefix_view
        else:
            # The headline pair already ran the whole stream with the GC tuned.
            batch_root = final_root
        state = bench.steps(matrix, mode, m)
        require([] if sk.state_root(state) == batch_root else ["step loop"], "final root")
        del state
    return details


def measure_linear(bench: Bench) -> dict[str, Any]:
    """Time the linear-only stream: DictKernel, then the kernel, checked against it."""
    n = len(bench.events)
    section = f"Linear-only stream (perpetuals and the future, no options), {n:,} events"
    reference_view = dict_view(bench.dict_kernel(section, "tuned", n))
    state, _, _ = bench.batches(section, "tuned", n)
    require(view_differences(kernel_view(state), reference_view), "linear final state differs")
    final_root = sk.state_root(state)
    require([] if final_root == sk.recompute_root(state) else ["incremental root"], "root")
    dict_row, kernel_row = bench.rows[-2:]
    print(
        f"Linear-only: all {n:,} decisions and the final state match; kernel "
        f"{kernel_row.rate:,.0f} events/s, DictKernel {dict_row.rate:,.0f} events/s; target "
        f">= {TARGET_LINEAR_EVENTS_PER_S:,}: "
        f"{'met' if kernel_row.rate >= TARGET_LINEAR_EVENTS_PER_S else 'not met'}"
    )
    return {
        "events": n,
        "agree": True,
        "final_root": final_root.hex(),
        "kernel": kernel_row.as_json(),
        "dict_events_per_s": round(dict_row.rate, 1),
        "ratio": round(kernel_row.rate / dict_row.rate, 4),
        "events_per_s_target": TARGET_LINEAR_EVENTS_PER_S,
        "events_per_s_met": kernel_row.rate >= TARGET_LINEAR_EVENTS_PER_S,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="The settlekernel replay benchmark.")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=20_240_601)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument(
        "--matrix-events",
        type=int,
        default=200_000,
        help="events replayed by the GC-default and bare-step rows; 0 means the whole stream",
    )
    parser.add_argument("--root-events", type=int, default=50_000)
    parser.add_argument(
        "--linear-events",
        type=int,
        default=200_000,
        help="events of the linear-only stream (perpetuals and the future); 0 skips it",
    )
    parser.add_argument("--skip-maps", action="store_true", help="skip the map-update table")
    parser.add_argument("--output", type=Path, default=RESULTS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rules = sk.RuleSet.default()
    environment = {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    summary: dict[str, Any] = {
        "config": {
            "events": args.events,
            "accounts": args.accounts,
            "seed": args.seed,
            "batch": args.batch,
            "matrix_events": args.matrix_events,
            "root_events": args.root_events,
            "linear_events": args.linear_events,
        },
        "environment": environment,
    }
    print(
        f"settlekernel replay benchmark: {args.events:,} events over {args.accounts:,} "
        f"accounts, seed {args.seed}, Python {environment['python']}, "
        f"{environment['cpus']} CPUs"
    )
    if not args.skip_maps:
        maps = bench_maps.measure()
        bench_maps.report(maps)
        summary["maps_updates_per_s"] = maps

    started = time.perf_counter()
    events = generate(args.events, args.accounts, args.seed)
    generation_s = time.perf_counter() - started
    kinds = Counter(type(event).__name__ for event in events)
    print(f"\nGenerated {len(events):,} events in {generation_s:.1f} s: " + _shares(kinds))
    summary["workload"] = {"generation_s": round(generation_s, 2), "event_types": dict(kinds)}

    bench = Bench(events, rules, args.batch)
    linear = Bench([], rules, args.batch)
    try:
        summary.update(measure(bench, args.matrix_events, args.root_events))
        if args.linear_events > 0:
            # Generated only now, so that the mixed rows' resident set does not include it.
            linear.events = generate(args.linear_events, args.accounts, args.seed, linear_only=True)
            summary["linear_only"] = measure_linear(linear)
    except AgreementError as error:
        print(f"\nABORT: the kernel and DictKernel disagree; no timing is trusted.\n{error}")
        return 1
    rows = bench.rows + linear.rows
    summary["rows"] = [row.as_json() for row in rows]
    print_table(rows)
    # The first two rows are the headline pair: DictKernel and apply_batch, whole stream.
    summary["targets"] = print_targets(kernel=rows[1], baseline=rows[0])
    summary["peak_rss_mib"] = peak_rss_mib()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(f"\nPeak RSS {summary['peak_rss_mib']:,} MiB. Summary written to {args.output}")
    return 0


# Output.


def _shares(counts: Counter[str], top: int = 10) -> str:
    total = sum(counts.values())
    return ", ".join(f"{name} {count / total:.1%}" for name, count in counts.most_common(top))


def _dict_rate(rows: list[Row], row: Row) -> float | None:
    for other in rows:
        if (
            other.name == "DictKernel"
            and other.section == row.section
            and other.mode == row.mode
            and other.n_events == row.n_events
        ):
            return other.rate
    return None


def print_table(rows: list[Row]) -> None:
    header = (
        f"  {'replay':<33} {'GC':<8} {'seconds':>8} {'events/s':>10} {'vs dict':>8} "
        f"{'GC pause s':>11} {'gen2 GCs':>9} {'RSS MiB':>8} {'peak':>6}"
    )
    section = None
    for row in rows:
        if row.section != section:
            section = row.section
            print(f"\n{section}")
            print(header)
        dict_rate = _dict_rate(rows, row)
        ratio = "" if dict_rate is None else f"{row.rate / dict_rate:.3f}"
        print(
            f"  {row.name:<33} {row.mode:<8} {row.seconds:>8.1f} {row.rate:>10,.0f} "
            f"{ratio:>8} {row.gc_pause_s:>11.2f} {row.gc_collections[2]:>9} "
            f"{row.rss_mib:>8,} {row.peak_rss_mib:>6,}"
        )
    print(
        "\nvs dict: events/s over DictKernel's on the same events with the same GC mode. "
        "GC tuned: gc.freeze() after setup, gc.disable() during the replay."
    )


def print_targets(kernel: Row, baseline: Row) -> dict[str, Any]:
    """Print the issue's targets against the headline rows; never assert them."""
    ratio = kernel.rate / baseline.rate
    rate_met = kernel.rate >= TARGET_EVENTS_PER_S
    ratio_met = ratio >= TARGET_RATIO
    print(
        f"\nHeadline: kernel apply_batch + root/batch, GC {kernel.mode}, {kernel.n_events:,} "
        f"events: {kernel.rate:,.0f} events/s; DictKernel {baseline.rate:,.0f} events/s; "
        f"ratio {ratio:.3f}"
    )
    print(
        f"target >= {TARGET_EVENTS_PER_S // 1000}k events/s: "
        f"{'met' if rate_met else 'not met'} ({kernel.rate:,.0f})"
    )
    print(f"target ratio >= {TARGET_RATIO}: {'met' if ratio_met else 'not met'} ({ratio:.3f})")
    return {
        "headline": kernel.as_json(),
        "dict_events_per_s": round(baseline.rate, 1),
        "ratio": round(ratio, 4),
        "events_per_s_target": TARGET_EVENTS_PER_S,
        "events_per_s_met": rate_met,
        "ratio_target": TARGET_RATIO,
        "ratio_met": ratio_met,
    }


if __name__ == "__main__":
    sys.exit(main())
