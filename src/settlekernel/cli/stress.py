"""``settlekernel stress``: Monte Carlo paths through the real kernel (spec/90-stress.md).

Shell only: it seeds paths, runs each through ``step`` with a progress bar, writes
``summary.json`` and the plots, and exits 1 if any path broke an invariant.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import attrs
import click
from rich.progress import Progress

from settlekernel.cli.common import InputError, load_rules, require_extra, rules_option
from settlekernel.cli.display import count_of, format_minor
from settlekernel.stress.cover2 import cover2_report
from settlekernel.stress.paths import Shock, default_market, shock_problem
from settlekernel.stress.population import USDC_MINOR
from settlekernel.stress.runner import PathMetrics, Scenario, path_seed, run_path
from settlekernel.stress.summary import summarize

EXIT_VIOLATION = 1
# The summary is read in a terminal or a log: 80 columns, as the tables.
SUMMARY_WIDTH = 80
NO_BREAK = "\u00a0"


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
@click.option(
    "--paths",
    "n_paths",
    type=click.IntRange(1, 100_000),
    default=20,
    show_default=True,
    help="Monte Carlo paths to run.",
)
@click.option(
    "--seed",
    type=click.IntRange(0, 2**31),
    default=0,
    show_default=True,
    help="Seed of the population; path n is seeded seed x 1,000,003 + n.",
)
@rules_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("stress-out"),
    show_default=True,
    help="Directory for summary.json and the PNG plots (created).",
)
@click.option(
    "--steps",
    type=click.IntRange(1, 1_000),
    default=24,
    show_default=True,
    help="Steps per path; one step is one hour of market time.",
)
@click.option(
    "--accounts",
    type=click.IntRange(1, 10_000),
    default=50,
    show_default=True,
    help="Trading accounts in the population.",
)
@click.option(
    "--insurance",
    "insurance_usdc",
    type=click.IntRange(0, 10**12),
    default=250_000,
    show_default=True,
    help="Insurance fund seeded at genesis, in whole USDC.",
)
@click.option("--garch", is_flag=True, help="GARCH(1,1) volatility instead of constant.")
@click.option(
    "--shock",
    "shock_text",
    default=None,
    help="Drop ASSET by DROP_PPM millionths at hour STEP (1 to --steps), e.g. ETH:600000:6"
    " is a 60 % ETH crash at hour 6.",
)
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
    shock = parse_shock(shock_text)
    if shock is not None and shock.at_step > steps:
        raise InputError(
            f"--shock {shock_text}: step {shock.at_step} is beyond the run's {steps} steps"
        )
    rules = load_rules(rules_path)
    scenario = Scenario(
        market=default_market(steps, garch=garch, shock=shock),
        n_accounts=accounts,
        insurance_minor=insurance_usdc * USDC_MINOR,
        rules=rules,
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
    summary["rules_digest"] = rules.digest.hex()
    summary["scenario"] = {
        "steps": steps,
        "accounts": accounts,
        "garch": garch,
        "shock": shock_text,
    }
    # Everything above depends only on the inputs; this block alone differs between machines.
    summary["machine"] = {"paths_per_second": round(n_paths / elapsed, 2)}
    if cover2:
        summary["cover2"] = _cover2(scenario, seed, n_paths)
    summary["per_path"] = [path.to_json() for path in paths]
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if not no_plots:
        from settlekernel.stress.plots import RunLabel, plot_all  # noqa: PLC0415 (slow)

        label = RunLabel(n_paths, seed, shock, rules.digest.hex(), scenario.market.step_hours)
        plot_all(paths, out, label)
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


def _echo(summary: dict[str, Any], out: Path) -> None:
    """Print the summary a person reads: amounts in USDC, distributions as min/median/max."""
    usdc = 6
    paths = summary["paths"]
    machine = summary["machine"]["paths_per_second"]
    click.echo(
        f"{count_of(paths, 'path')} ({machine} paths/s), seed {summary['seed']}, "
        f"rules {summary['rules_digest'][:16]}"
    )
    for key, label, is_money in (
        ("liquidations", "liquidations per path", False),
        ("bad_debt_minor", "bad debt per path", True),
        ("insurance_min_minor", "insurance fund low point", True),
    ):
        _echo_wrapped(f"  {label}: {_distribution(summary[key], usdc if is_money else None)}")
    click.echo(f"  paths exhausting the fund: {summary['paths_fund_exhausted']} of {paths}")
    click.echo(f"  paths with auto-deleveraging: {summary['paths_with_adl']} of {paths}")
    if "cover2" in summary:
        cover2 = summary["cover2"]
        _echo_wrapped(f"  Cover-2: {_cover2_line(cover2, usdc)}")
    violations = len(summary["invariant_violations"])
    click.echo(f"  invariant violations: {violations}")
    click.echo(f"wrote {out / 'summary.json'}")


def _echo_wrapped(line: str) -> None:
    """Echo a summary line wrapped to 80 columns after a comma, never inside ``p95 1.00 USDC``."""
    # A no-break space holds each comma-separated part together while textwrap fills.
    glued = ", ".join(part.replace(" ", NO_BREAK) for part in line.split(", "))
    wrapped = textwrap.fill(glued, SUMMARY_WIDTH, subsequent_indent="    ", break_long_words=False)
    click.echo(wrapped.replace(NO_BREAK, " "))


def _distribution(value: object, decimals: int | None) -> str:
    def show(number: object) -> str:
        if decimals is None or not isinstance(number, int):
            return f"{number:,}" if isinstance(number, int) else str(number)
        return f"{format_minor(number, decimals, places=2)} USDC"

    if isinstance(value, dict):
        parts = [
            f"{name} {show(value[name])}" for name in ("min", "p50", "p95", "max") if name in value
        ]
        return ", ".join(parts)
    return show(value)


def _cover2_line(cover2: dict[str, Any], decimals: int) -> str:
    parts = []
    for key, number in cover2.items():
        if isinstance(number, int) and key.endswith("_minor"):
            parts.append(
                f"{key.removesuffix('_minor')} {format_minor(number, decimals, places=2)} USDC"
            )
        elif not isinstance(number, (dict, list)):
            parts.append(f"{key} {number}")
    return ", ".join(parts)
