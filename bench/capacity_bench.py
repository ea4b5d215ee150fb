"""The capacity model's check (part of ``make bench``): model against a real load run.

The built-in order flow (spec/95-capacity.md, SK-CAP-1) is measured on real durable
journals, then fed to a fresh journal at 30 %, 60 % and 85 % of the model's capacity for
batches of at most 64 lines (SK-CAP-5), with the model recalibrated just before each level.
Per level it reports the measured and the modelled mean and p99 latency and the model's
relative error, against the bound the docs state (``ERROR_BOUND``). Nothing is asserted: on
a shared machine the figures move with the other processes, so the machine's load average
is recorded beside them. Results go to bench/results/capacity.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path
from typing import Any

from settlekernel.capacity.flow import FlowParams, flow_lines
from settlekernel.capacity.load import validate
from settlekernel.capacity.measure import measure
from settlekernel.capacity.queueing import capacity_per_s
from settlekernel.core.rules import DEFAULT_RULES

RESULTS = Path(__file__).resolve().parent / "results" / "capacity.json"
# The model's stated accuracy (docs/how-to/capacity.md): relative error of the mean latency.
ERROR_BOUND = 0.35
BATCH_MAX = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3_000)
    arguments = parser.parse_args()
    lines = flow_lines(FlowParams(n_events=arguments.events))
    load_start = os.getloadavg()[0]
    sample, commit = measure(lines, DEFAULT_RULES)
    mean = sum(sample.seconds) / len(sample.seconds)
    capacity = capacity_per_s(mean, commit, BATCH_MAX)
    print(f"{len(lines)} lines; commit {commit.fixed_s * 1e3:.2f} ms; capacity {capacity:,.0f}/s")
    checks = validate(lines, DEFAULT_RULES, sample, commit, batch_max=BATCH_MAX)
    rows: list[dict[str, Any]] = []
    for check in checks:
        within = check.mean_error <= ERROR_BOUND
        rows.append(
            {
                "level": check.level,
                "rate_per_s": round(check.rate_per_s, 1),
                "measured_mean_ms": round(check.measured_mean_s * 1e3, 3),
                "model_mean_ms": round(check.model_mean_s * 1e3, 3),
                "mean_error": round(check.mean_error, 3),
                "measured_p99_ms": round(check.measured_p99_s * 1e3, 3),
                "model_p99_ms": round(check.model_p99_s * 1e3, 3),
                "p99_error": round(check.p99_error, 3),
                "mean_within_bound": within,
            }
        )
        print(
            f"{check.level:.0%} ({check.rate_per_s:,.0f}/s): mean {check.measured_mean_s * 1e3:.2f}"
            f" ms measured, {check.model_mean_s * 1e3:.2f} ms model ({check.mean_error:.0%});"
            f" p99 {check.measured_p99_s * 1e3:.2f} vs {check.model_p99_s * 1e3:.2f} ms"
            f" ({check.p99_error:.0%}); within {ERROR_BOUND:.0%}: {within}"
        )
    results = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_at_start": round(load_start, 2),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "lines": len(lines),
        "commit_fixed_ms": round(commit.fixed_s * 1e3, 3),
        "mean_service_us": round(mean * 1e6, 1),
        "capacity_per_s": round(capacity, 1),
        "error_bound": ERROR_BOUND,
        "levels": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
