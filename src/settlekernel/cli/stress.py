"""``settlekernel stress``: Monte Carlo paths through the real kernel (spec/90-stress.md).

Shell only: it seeds paths, runs each through ``step`` with a progress bar, writes
``summary.json`` and the plots, and exits 1 if any path broke an invariant.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import attrs
import click
from rich.progress import Progress

from settlekernel.cli.common import InputError, load_rules, require_extra
from settlekernel.stress.cover2 import cover2_report
from settlekernel.stress.paths import Shock, default_market, shock_problem
from settlekernel.stress.population import USDC_MINOR
from settlekernel.stress.runner import PathMetrics, Scenario, path_seed, run_path
from settlekernel.stress.summary import summarize

EXIT_VIOLATION = 1


def parse_shock(text: str | None) -> Shock | None:
    """Parse ``ASSET:DROP_PPM:STEP`` (e.g. ``ETH:600000:6``) into a shock."""
    if text is None:
        return None
    try:
        symbol, drop_ppm, at_step = text.split(":")
        shock = Shock(symbol, int(drop_ppm), int(at_step))
    except ValueError as error:
        raise click.UsageError(f"--shock {text}: expected ASSET:DROP_PPM:STEP") from error
    if not 0 < shock.drop_ppm < 1_000_000 or shock.at_step < 1:
        raise click.UsageError(f"--shock {text}: drop in (0, 1,000,000) ppm, step >= 1")
    problem = shock_problem(default_market(), shock)
    if problem is not None:
        raise InputError(f"--shock {text}: {problem}")
    return shock


@click.command()
@click.option("--paths", "n_paths", type=click.IntRange(1, 100_000), default=20, show_default=True)
@click.option("--seed", type=click.IntRange(0, 2**31), default=0, show_default=True)
@click.option("--rules", "rules_path", type=click.Path(path_type=Path), default=None)
@click.option("--out", type=click.Path(path_type=Path), default=Path("stress-out"))
@click.option("--steps", type=click.IntRange(1, 1_000), default=24, show_default=True)
@click.option("--accounts", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--insurance", "insurance_usdc", type=click.IntRange(0, 10**12), default=250_000)
@click.option("--garch", is_flag=True, help="GARCH(1,1) volatility instead of constant.")
@click.option("--shock", "shock_text", default=None, help="ASSET:DROP_PPM:STEP, e.g. ETH:600000:6")
@click.option("--no-plots", is_flag=True, help="Write the JSON summary only.")
@click.option("--cover2", is_flag=True, help="Also rerun the paths with no keeper: Cover-2.")
def stress(  # noqa: PLR0913, PLR0917 (click passes one parameter per option)
    n_paths: int,
    seed: int,
    rules_path: Path | None,
    out: Path,
    steps: int,
    accounts: int,
    insurance_usdc: int,
    *,
    garch: bool,
    shock_text: str | None,
    no_plots: bool,
    cover2: bool,
) -> None:
    """Run Monte Carlo paths through the kernel; write summary.json and PNG plots to --out."""
    if not no_plots:
        require_extra("matplotlib", "settlekernel stress's plots (or pass --no-plots)")
    scenario = Scenario(
        market=default_market(steps, garch=garch, shock=parse_shock(shock_text)),
        n_accounts=accounts,
        insurance_minor=insurance_usdc * USDC_MINOR,
        rules=load_rules(rules_path),
        population_seed=seed,
    )
    started = time.perf_counter()
    paths: list[PathMetrics] = []
    with Progress(transient=True) as progress:
        task = progress.add_task("paths", total=n_paths)
        for number in range(n_paths):
            paths.append(run_path(scenario, path_seed(seed, number)))
            progress.advance(task)
    elapsed = time.perf_counter() - started
    summary = summarize(paths, scenario.insurance_minor)
    summary["seed"] = seed
    summary["scenario"] = {
        "steps": steps,
        "accounts": accounts,
        "garch": garch,
        "shock": shock_text,
    }
    summary["paths_per_second"] = round(n_paths / elapsed, 2)
    if cover2:
        summary["cover2"] = _cover2(scenario, seed, n_paths)
    summary["per_path"] = [path.to_json() for path in paths]
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if not no_plots:
        from settlekernel.stress.plots import plot_all  # noqa: PLC0415 (matplotlib is slow)

        plot_all(paths, out)
    _echo(summary, out)
    if summary["invariant_violations"]:
        raise SystemExit(EXIT_VIOLATION)


def _cover2(scenario: Scenario, seed: int, n_paths: int) -> dict[str, object]:
    """Rerun the same paths with no keeper and report Cover-2 (SK-STRESS-5)."""
    unliquidated = attrs.evolve(scenario, keeper=False, track_deficits=True)
    paths = []
    with Progress(transient=True) as progress:
        task = progress.add_task("cover-2", total=n_paths)
        for number in range(n_paths):
            paths.append(run_path(unliquidated, path_seed(seed, number)))
            progress.advance(task)
    return cover2_report(paths, scenario.insurance_minor)


def _echo(summary: dict[str, object], out: Path) -> None:
    keys = (
        "paths",
        "paths_per_second",
        "liquidations",
        "bad_debt_minor",
        "insurance_min_minor",
        "paths_fund_exhausted",
        "paths_with_adl",
    )
    for key in keys:
        click.echo(f"{key}: {summary[key]}")
    if "cover2" in summary:
        click.echo(f"cover2: {summary['cover2']}")
    click.echo(f"invariant violations: {len(summary['invariant_violations'])}")  # type: ignore[arg-type]
    click.echo(f"wrote {out / 'summary.json'}")
