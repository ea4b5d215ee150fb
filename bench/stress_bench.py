"""The stress lab benchmark (part of ``make bench``): paths/s and scaling with workers.

The standard scenario (``settlekernel stress`` with its defaults: 50 accounts, 24 hourly
steps, no shock, population seed 0) is run path by path through the real kernel, first in
this process (no pool, the baseline), then on a ``ProcessPoolExecutor`` with 1 and with 2
workers, as ``settlekernel sweep`` runs it. Each pool is started and warmed up (every worker
has imported the kernel and run one short path) before the clock starts, so the figure is
the steady rate; the wall time with start-up is reported beside it. The scaling ratio is
2-worker paths/s over 1-worker paths/s (2.0 would be perfect on two idle cores). The
per-path metrics of every run are compared, since an executor may change only timing.
Nothing is asserted on time. Results go to bench/results/stress.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from settlekernel.stress.paths import default_market
from settlekernel.stress.runner import Scenario, path_seed, run_path
from settlekernel.stress.sweep import run_task

RESULTS = Path(__file__).resolve().parent / "results" / "stress.json"
STANDARD = Scenario()
WARM_UP = Scenario(market=default_market(1), n_accounts=5)


def measure_serial(n_paths: int) -> tuple[dict[str, Any], list[dict[str, object]]]:
    started = time.perf_counter()
    paths = [run_path(STANDARD, path_seed(0, number)).to_json() for number in range(n_paths)]
    elapsed = time.perf_counter() - started
    row = {"paths": n_paths, "seconds": round(elapsed, 3), "paths_per_s": n_paths / elapsed}
    return row, paths


def measure_pool(workers: int, n_paths: int) -> tuple[dict[str, Any], list[dict[str, object]]]:
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as pool:
        warm = [pool.submit(run_task, WARM_UP, number) for number in range(workers)]
        for future in warm:
            future.result()
        warmed = time.perf_counter()
        futures = [
            pool.submit(run_task, STANDARD, path_seed(0, number)) for number in range(n_paths)
        ]
        paths = [future.result().to_json() for future in futures]
        done = time.perf_counter()
    row = {
        "workers": workers,
        "paths": n_paths,
        "seconds": round(done - warmed, 3),
        "paths_per_s": n_paths / (done - warmed),
        "seconds_with_startup": round(time.perf_counter() - started, 3),
    }
    return row, paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=24)
    arguments = parser.parse_args()
    n_paths = arguments.paths
    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        },
        "scenario": {"accounts": STANDARD.n_accounts, "steps": STANDARD.market.steps},
    }
    serial, expected = measure_serial(n_paths)
    results["in_process"] = serial
    print(f"in process: {serial['paths_per_s']:.2f} paths/s ({n_paths} paths)")
    rates = {}
    for workers in (1, 2):
        row, paths = measure_pool(workers, n_paths)
        row["same_metrics_as_in_process"] = paths == expected
        results[f"pool_{workers}"] = row
        rates[workers] = row["paths_per_s"]
        print(
            f"pool, {workers} worker(s): {row['paths_per_s']:.2f} paths/s "
            f"({row['seconds']} s; {row['seconds_with_startup']} s with start-up), "
            f"same metrics: {row['same_metrics_as_in_process']}"
        )
    results["scaling_2_over_1"] = round(rates[2] / rates[1], 3)
    print(f"scaling, 2 workers over 1: {results['scaling_2_over_1']}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
