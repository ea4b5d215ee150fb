"""A real load run, and the model checked against it (SK-CAP-5).

``load_run`` feeds wire lines to a fresh durable journal (a real SQLite file) at the arrival
times of an arrival process, in one process and open loop: whenever the journal is free it
appends every line that has arrived, up to ``batch_max``, and sleeps until the next arrival
when none has, the policy the model's server follows. Each line's latency is the wall time
from its arrival to the end of the append that committed it.

``validate`` runs it at load levels (fractions of the model's capacity) and compares the
measured mean and p99 latency with the model's on the same arrival times, the measured
service time of each line in stream order (a trace-driven simulation) and the measured commit
cost, both measured again just before each level's run.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np

from settlekernel.capacity.measure import CommitCost, ServiceSample, measure
from settlekernel.capacity.queueing import (
    Arrivals,
    FloatArray,
    arrival_times,
    capacity_per_s,
    simulate,
)
from settlekernel.core.rules import RuleSet
from settlekernel.journal.durable import DurableJournal


@attrs.frozen
class LevelCheck:
    """Model against measurement at one load level (latencies in seconds)."""

    level: float
    rate_per_s: float
    measured_mean_s: float
    measured_p99_s: float
    model_mean_s: float
    model_p99_s: float
    entries: int

    @property
    def mean_error(self) -> float:
        """Return the model's relative error on the mean latency."""
        return abs(self.model_mean_s - self.measured_mean_s) / self.measured_mean_s

    @property
    def p99_error(self) -> float:
        """Return the model's relative error on the p99 latency."""
        return abs(self.model_p99_s - self.measured_p99_s) / self.measured_p99_s


def load_run(
    lines: Sequence[str],
    rules: RuleSet,
    times: FloatArray,
    batch_max: int,
    directory: Path | None = None,
) -> tuple[FloatArray, int]:
    """Append ``lines`` arriving at ``times`` to a fresh journal; return latencies, entries."""
    latency = np.empty(len(lines), dtype=np.float64)
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        journal = DurableJournal.open(Path(scratch) / "load.sqlite3", rules)
        try:
            origin = time.perf_counter()
            i = 0
            while i < len(lines):
                now = time.perf_counter() - origin
                if times[i] > now:
                    time.sleep(float(times[i]) - now)
                    continue
                arrived = int(np.searchsorted(times, now, side="right"))
                j = min(max(arrived, i + 1), i + batch_max)
                journal.append(lines[i:j])
                latency[i:j] = time.perf_counter() - origin - times[i:j]
                i = j
            entries = journal.entry_count
        finally:
            journal.close()
    return latency, entries


def validate(  # noqa: PLR0913 (the stream, the measurements and the run)
    lines: Sequence[str],
    rules: RuleSet,
    sample: ServiceSample,
    commit: CommitCost,
    *,
    levels: Sequence[float] = (0.3, 0.6, 0.85),
    batch_max: int = 64,
    burst: float = 1.0,
    seed: int = 0,
    recalibrate: bool = True,
) -> list[LevelCheck]:
    """Run the stream at each load level and compare the model with what was measured.

    The levels' rates are fractions of the capacity ``sample`` and ``commit`` give. With
    ``recalibrate`` the model of each level uses service times measured (once, SK-CAP-1)
    just before that level's run, so that a shared machine's load drifting between the
    first measurement and a run is not charged to the model.
    """
    service = np.array(sample.seconds, dtype=np.float64)
    capacity = capacity_per_s(float(service.mean()), commit, batch_max)
    found = []
    for number, level in enumerate(levels):
        rate = level * capacity
        rng = np.random.default_rng([seed, 5, number])
        times = arrival_times(Arrivals(rate, burst), len(lines), rng)
        model_service, model_commit = service, commit
        if recalibrate:
            fresh, model_commit = measure(lines, rules, repeats=1)
            model_service = np.array(fresh.seconds, dtype=np.float64)
        measured, entries = load_run(lines, rules, times, batch_max)
        model, _ = simulate(times, model_service, model_commit, batch_max)
        found.append(
            LevelCheck(
                level=level,
                rate_per_s=rate,
                measured_mean_s=float(measured.mean()),
                measured_p99_s=float(np.percentile(measured, 99)),
                model_mean_s=float(model.mean()),
                model_p99_s=float(np.percentile(model, 99)),
                entries=entries,
            )
        )
    return found
