"""``settlekernel capacity``: service times, the queueing model and a load run (spec/95, SK-CAP)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import click
import numpy as np
from rich.console import Console
from rich.table import Table

from settlekernel.capacity.flow import FlowParams, flow_lines
from settlekernel.capacity.load import LevelCheck, validate
from settlekernel.capacity.measure import CommitCost, ServiceSample, measure
from settlekernel.capacity.queueing import Arrivals, Prediction, best_batch, rate_for_p99
from settlekernel.cli.common import InputError, load_rules, require_extra, rules_option
from settlekernel.core.rules import RuleSet
from settlekernel.journal.durable import JournalError, iter_batches, open_for_audit


@attrs.frozen
class Findings:
    """Everything one run of the command measured and predicted."""

    sample: ServiceSample
    commit: CommitCost
    arrivals: Arrivals
    predictions: list[Prediction]
    checks: list[LevelCheck]
    p99_rate: float | None


def _journal_lines(db: Path) -> tuple[list[str], RuleSet]:
    """Return every line a durable journal recorded, in order, and the journal's rules."""
    try:
        store, rules, _ = open_for_audit(db)
    except JournalError as error:
        raise InputError(f"{db}: {error}") from error
    try:
        lines = [record.line for _, records in iter_batches(store) for record in records]
    finally:
        store.close()
    if not lines:
        raise InputError(f"{db}: the journal holds no lines to measure")
    return lines, rules


def _mix(text: str | None) -> dict[str, float] | None:
    """Parse ``trade=0.9,oracle_price=0.1`` into shares."""
    if text is None:
        return None
    found: dict[str, float] = {}
    for part in text.split(","):
        name, _, share = part.partition("=")
        try:
            found[name.strip()] = float(share)
        except ValueError as error:
            raise InputError(f"--mix: {part!r} is not TYPE=SHARE") from error
    if any(share < 0 for share in found.values()) or sum(found.values()) <= 0:
        raise InputError("--mix: shares are non-negative and not all zero")
    return found


def _service_table(sample: ServiceSample) -> Table:
    table = Table(title="Service time per line in a durable batch (decode, step, record, roots)")
    for column in ("event type", "lines", "share", "mean µs", "p50 µs", "p99 µs"):
        table.add_column(column, justify="left" if column == "event type" else "right")
    for kind, times in sorted(sample.by_kind().items(), key=lambda item: -len(item[1])):
        values = np.array(times) * 1e6
        table.add_row(
            kind,
            f"{len(times):,}",
            f"{len(times) / len(sample.kinds):.1%}",
            f"{values.mean():,.0f}",
            f"{np.percentile(values, 50):,.0f}",
            f"{np.percentile(values, 99):,.0f}",
        )
    return table


def _batch_table(predictions: list[Prediction], arrivals: Arrivals) -> Table:
    rate, burst = arrivals.rate_per_s, arrivals.burst
    table = Table(title=f"Durable batches at {rate:,.0f} events/s, bursts of {burst:g}")
    for column in ("batch max", "capacity/s", "utilisation", "mean ms", "p99 ms"):
        table.add_column(column, justify="right")
    for p in sorted(predictions, key=lambda p: p.batch_max):
        stable = p.stable
        table.add_row(
            str(p.batch_max),
            f"{p.capacity_per_s:,.0f}",
            f"{p.utilisation:.1%}" if stable else "diverges",
            f"{p.mean_s * 1e3:,.2f}" if stable else "-",
            f"{p.p99_s * 1e3:,.2f}" if stable else "-",
        )
    return table


def _check_table(checks: list[LevelCheck]) -> Table:
    table = Table(title="Model against a real load run (durable journal, open loop)")
    columns = ("load", "rate/s", "measured mean", "model mean", "err", "measured p99")
    for column in (*columns, "model p99", "err "):
        table.add_column(column, justify="right")
    for c in checks:
        table.add_row(
            f"{c.level:.0%}",
            f"{c.rate_per_s:,.0f}",
            f"{c.measured_mean_s * 1e3:,.2f} ms",
            f"{c.model_mean_s * 1e3:,.2f} ms",
            f"{c.mean_error:.0%}",
            f"{c.measured_p99_s * 1e3:,.2f} ms",
            f"{c.model_p99_s * 1e3:,.2f} ms",
            f"{c.p99_error:.0%}",
        )
    return table


def _levels(text: str) -> list[float]:
    try:
        levels = [float(part) for part in text.split(",")]
    except ValueError as error:
        raise InputError(f"--levels: {text!r} is not a list of fractions") from error
    if not levels or not all(0 < level < 1 for level in levels):
        raise InputError("--levels: each load level is a fraction of capacity in (0, 1)")
    return levels


def _summary(found: Findings) -> dict[str, Any]:
    """Return the command's findings as one JSON object (seconds, events/s)."""
    sample, commit, arrivals = found.sample, found.commit, found.arrivals
    predictions, checks = found.predictions, found.checks
    grouped = sample.by_kind()
    return {
        "lines": len(sample.kinds),
        "service_s": {
            kind: {
                "lines": len(times),
                "mean": float(np.mean(times)),
                "p50": float(np.percentile(times, 50)),
                "p99": float(np.percentile(times, 99)),
            }
            for kind, times in sorted(grouped.items())
        },
        "commit": {"fixed_s": commit.fixed_s},
        "arrivals": {"rate_per_s": arrivals.rate_per_s, "burst": arrivals.burst},
        "batches": [
            {
                "batch_max": p.batch_max,
                "capacity_per_s": p.capacity_per_s,
                "stable": p.stable,
                "utilisation": p.utilisation,
                "mean_s": p.mean_s,
                "p99_s": p.p99_s,
                "pk_mean_s": p.pk_mean_s,
            }
            for p in sorted(predictions, key=lambda p: p.batch_max)
        ],
        "best_batch_max": predictions[0].batch_max if predictions[0].stable else None,
        "rate_for_p99_per_s": found.p99_rate,
        "validation": [
            {
                "level": c.level,
                "rate_per_s": c.rate_per_s,
                "measured_mean_s": c.measured_mean_s,
                "model_mean_s": c.model_mean_s,
                "measured_p99_s": c.measured_p99_s,
                "model_p99_s": c.model_p99_s,
                "mean_error": c.mean_error,
                "p99_error": c.p99_error,
                "entries": c.entries,
            }
            for c in checks
        ],
    }


@click.command()
@click.option(
    "--db",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Measure the lines of this durable journal (default: the built-in order flow).",
)
@rules_option
@click.option("--events", default=4_000, show_default=True, help="Lines of the built-in flow.")
@click.option("--accounts", default=200, show_default=True, help="Accounts of the built-in flow.")
@click.option("--linear-only", is_flag=True, help="The built-in flow without options.")
@click.option("--rate", type=float, default=200.0, show_default=True, help="Arrivals per second.")
@click.option("--burst", type=float, default=1.0, show_default=True, help="Mean burst size.")
@click.option("--mix", help="Event type shares, e.g. trade=0.9,oracle_price=0.1.")
@click.option("--p99-ms", type=float, help="Also find the highest rate with p99 under this.")
@click.option(
    "--batch-max", default=64, show_default=True, help="Batch limit for --p99-ms, --validate."
)
@click.option("--validate", "run_load", is_flag=True, help="Run a real load run at --levels.")
@click.option("--levels", default="0.3,0.6,0.85", show_default=True, help="Fractions of capacity.")
@click.option("--plot", type=click.Path(path_type=Path), help="Write the model-vs-measured PNG.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of tables.")
def capacity(  # noqa: PLR0913 (one parameter per option)
    *,
    db: Path | None,
    rules_path: Path | None,
    events: int,
    accounts: int,
    rate: float,
    burst: float,
    mix: str | None,
    p99_ms: float | None,
    batch_max: int,
    levels: str,
    plot: Path | None,
    linear_only: bool,
    run_load: bool,
    as_json: bool,
) -> None:
    """Measure service times, model settlement latency under load, check it by a load run."""
    if plot is not None:
        require_extra("matplotlib", "settlekernel capacity --plot")
    if rate <= 0 or burst < 1 or batch_max < 1 or events < 1 or accounts < 2:
        raise InputError(
            "--rate is positive, --burst, --batch-max and --events at least 1, --accounts 2"
        )
    if db is not None:
        lines, rules = _journal_lines(db)
    else:
        rules = load_rules(rules_path)
        lines = flow_lines(
            FlowParams(n_events=events, n_accounts=accounts, options=not linear_only), rules
        )
    sample, commit = measure(lines, rules)
    shares = _mix(mix)
    try:
        arrivals = Arrivals(rate, burst)
        predictions = best_batch(arrivals, sample, commit, mix=shares)
        p99_rate = None
        if p99_ms is not None:
            p99_rate = rate_for_p99(
                p99_ms / 1e3, sample, commit, batch_max, burst=burst, mix=shares
            )
    except ValueError as error:
        raise InputError(str(error)) from error
    checks = []
    if run_load:
        fractions = _levels(levels)
        checks = validate(
            lines, rules, sample, commit, levels=fractions, batch_max=batch_max, burst=burst
        )
    if plot is not None:
        from settlekernel.capacity.plot import plot_capacity  # noqa: PLC0415 (matplotlib)

        plot_capacity(sample, commit, checks, plot, batch_max=batch_max, burst=burst)
    found = Findings(sample, commit, arrivals, predictions, checks, p99_rate)
    summary = _summary(found)
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    _print(found, summary)


def _print(found: Findings, summary: dict[str, Any]) -> None:
    console = Console()
    commit = found.commit
    console.print(_service_table(found.sample))
    console.print(
        f"A durable commit costs {commit.fixed_s * 1e3:,.2f} ms beyond its lines' service "
        "(one line per commit against batches of 256, the median of 3 runs each)."
    )
    console.print(_batch_table(found.predictions, found.arrivals))
    best = summary["best_batch_max"]
    console.print(
        f"Lowest p99 at this rate: batches of at most {best}."
        if best is not None
        else "Every batch limit diverges at this rate."
    )
    if found.p99_rate is not None:
        console.print(f"Highest rate with the p99 target met: {found.p99_rate:,.0f} events/s.")
    if found.checks:
        console.print(_check_table(found.checks))
