"""``settlekernel sweep``: stress paths x rule sets, on a process pool or Dask (SK-STRESS-6).

Shell only: it reads the grid, opens an executor (a local ``ProcessPoolExecutor``, or a Dask
cluster's ``Client.get_executor()`` with ``--scheduler``), runs every (rule set, path) task,
writes ``sweep.json`` and a plot, prints a comparison table, and exits 1 if any path broke
an invariant.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from settlekernel.cli.common import InputError, read_text, require_extra
from settlekernel.stress.sweep import GridError, parse_grid, run_sweep, sweep_report, usdc

EXIT_VIOLATION = 1
WORKERS_MAX = 256
TABLE_WIDTH = 160


@contextmanager
def open_executor(
    scheduler: str | None, workers: int | None, connect_timeout_s: int = 10
) -> Iterator[Executor]:
    """Yield a local process pool, or an executor on the Dask scheduler at ``scheduler``.

    Raises:
        OSError: no scheduler answers at ``scheduler`` within ``connect_timeout_s``.
    """
    if scheduler is None:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            yield pool
        return
    from dask.distributed import Client  # noqa: PLC0415 (Dask is slow to import, and optional)

    # distributed's Client constructor is unannotated upstream.
    with Client(scheduler, timeout=connect_timeout_s) as client:  # type: ignore[no-untyped-call]
        # pure=False: a task is a pure function, but Dask need not hash its arguments.
        yield client.get_executor(pure=False)


@click.command()
@click.option(
    "--grid",
    "grid_path",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    required=True,
    help="GRID.toml: base rules, scenario, [rulesets.NAME] overrides.",
)
@click.option("--scheduler", default=None, help="Dask scheduler address; default: a local pool.")
@click.option(
    "--workers",
    type=click.IntRange(1, WORKERS_MAX),
    default=None,
    help="Local pool size; default: one per CPU.",
)
@click.option(
    "--connect-timeout",
    "connect_timeout_s",
    type=click.IntRange(1, 600),
    default=10,
    show_default=True,
    help="Seconds to wait for the --scheduler to answer.",
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("sweep-out"))
@click.option("--no-plots", is_flag=True, help="Write sweep.json only.")
def sweep(  # noqa: PLR0913 (click passes one parameter per option)
    grid_path: Path,
    scheduler: str | None,
    workers: int | None,
    connect_timeout_s: int,
    out: Path,
    *,
    no_plots: bool,
) -> None:
    """Run the grid's paths under each rule set; write sweep.json and compare on the terminal."""
    if not no_plots:
        require_extra("matplotlib", "settlekernel sweep's plot (or pass --no-plots)")
    if scheduler is not None:
        require_extra("distributed", "settlekernel sweep --scheduler")
    try:
        grid = parse_grid(read_text(grid_path, "--grid"), grid_path.parent)
    except GridError as error:
        raise InputError(f"--grid {grid_path}: {error}") from error
    started = time.perf_counter()
    with (
        open_executor(scheduler, workers, connect_timeout_s) as executor,
        Progress(transient=True) as progress,
    ):
        task = progress.add_task("tasks", total=grid.n_paths * len(grid.rule_sets))
        results = run_sweep(grid, executor, lambda: progress.advance(task))
    elapsed = time.perf_counter() - started
    report = sweep_report(grid, results)
    report["executor"] = "process pool" if scheduler is None else f"dask {scheduler}"
    report["paths_per_second"] = round(grid.n_paths * len(grid.rule_sets) / elapsed, 2)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    if not no_plots:
        from settlekernel.stress.plots import RunLabel, plot_sweep  # noqa: PLC0415 (slow)

        # Each rule set has a digest of its own; the title names the paths, seed and shock.
        run = RunLabel(grid.n_paths, grid.seed, grid.shock, rules_digest_hex=None)
        plot_sweep(results, out / "sweep_insurance_min.png", title=run.describe())
    # A pipe or a log gets the whole table; a terminal wraps it to its own width.
    Console(width=None if sys.stdout.isatty() else TABLE_WIDTH).print(comparison_table(report))
    for name, summary in report["rule_sets"].items():
        for problem in summary["unsound"]:
            click.echo(f"{name}: unsound, genesis refuses it: {problem}")
    click.echo(f"paths/s: {report['paths_per_second']} ({report['executor']})")
    click.echo(f"wrote {out / 'sweep.json'}")
    if any(summary["invariant_violations"] for summary in report["rule_sets"].values()):
        raise SystemExit(EXIT_VIOLATION)


def comparison_table(report: dict[str, Any]) -> Table:
    """Return one row per rule set: liquidations, bad debt, the fund, ADL, violations."""
    table = Table(title=f"sweep: {report['scenario']['paths']} paths per rule set (USDC)")
    columns = (
        "rule set",
        "liq p50",
        "liq p99",
        "bad debt p99",
        "fund min p50",
        "fund min worst",
        "exhausted",
        "ADL paths",
        "fund lower vs base",
        "violations",
        "unsound",
    )
    # Rule set names are never cut: the other columns wrap their headers first.
    longest = max(len(name) for name in report["rule_sets"])
    table.add_column(columns[0], no_wrap=True, min_width=longest)
    for column in columns[1:]:
        table.add_column(column, justify="right")
    for name, summary in report["rule_sets"].items():
        if summary["refused_by_genesis"]:
            refused = ["refused"] + ["-"] * (len(columns) - 3)
            table.add_row(name, *refused, str(len(summary["unsound"])))
            continue
        paired = summary["paired_vs_baseline"]
        table.add_row(
            name,
            str(summary["liquidations"]["p50"]),
            str(summary["liquidations"]["p99"]),
            usdc(summary["bad_debt_minor"]["p99"]),
            usdc(summary["insurance_min_minor"]["p50"]),
            usdc(summary["insurance_min_minor"]["min"]),
            str(summary["paths_fund_exhausted"]),
            str(summary["paths_with_adl"]),
            "-" if paired is None else str(paired["paths_fund_min_lower"]),
            str(len(summary["invariant_violations"])),
            str(len(summary["unsound"])),
        )
    return table
