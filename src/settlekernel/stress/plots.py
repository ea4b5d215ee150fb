"""PNG plots of a stress run (matplotlib, headless): fund, cascades, loss by tier.

Every figure says which run it draws (paths, seed, shock, rules digest) in its title, puts
time in hours and amounts in USDC on its axes, and has a legend. A histogram whose paths all
agree draws one labelled bar, never an empty or degenerate plot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import matplotlib as mpl

mpl.use("Agg")  # Headless: the CLI and the tests draw to files, never to a screen.

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, MaxNLocator

if TYPE_CHECKING:
    from pathlib import Path

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from settlekernel.stress.paths import Shock
    from settlekernel.stress.runner import PathMetrics

USDC_MINOR = 10**6
PLOT_NAMES = ("insurance_fund.png", "cascade_timeline.png", "loss_by_tier.png")
# What the words on the plots mean, as spec/90-stress.md (SK-STRESS-3) measures them.
LOSS_DEFINITION = "loss: equity after setup minus equity at the end, losses only"
BAD_DEBT_DEFINITION = "bad debt: equity below zero at liquidation"
HISTOGRAM_BINS_MAX = 30
THOUSANDS = FuncFormatter(lambda value, _: f"{value:,.0f}" if abs(value) >= 100 else f"{value:g}")


@attrs.frozen
class RunLabel:
    """What a plot's title says about the run it draws."""

    n_paths: int
    seed: int
    shock: Shock | None
    # None when the plot compares rule sets, each with a digest of its own.
    rules_digest_hex: str | None
    step_hours: float = 1.0
    asset: str = "USDC"

    def describe(self) -> str:
        """Return ``20 paths, seed 0, shock ETH -60 % at hour 6, rules 38a8...``."""
        paths = f"{self.n_paths:,} path" + ("" if self.n_paths == 1 else "s")
        if self.shock is None:
            shock = "no shock"
        else:
            drop_percent = self.shock.drop_ppm / 10_000
            hour = self.shock.at_step * self.step_hours
            shock = f"shock {self.shock.symbol} -{drop_percent:g} % at hour {hour:g}"
        text = f"{paths}, seed {self.seed}, {shock}"
        if self.rules_digest_hex is None:
            return text
        return f"{text}, rules {self.rules_digest_hex[:16]}"


def plot_all(paths: list[PathMetrics], out: Path, label: RunLabel) -> list[Path]:
    """Draw the three plots into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / name for name in PLOT_NAMES]
    figures = (
        insurance_figure(paths, label),
        cascade_figure(paths, label),
        tier_figure(paths, label),
    )
    for figure, file in zip(figures, files, strict=True):
        figure.savefig(file, dpi=100)
        plt.close(figure)
    return files


def draw_histogram(axes: Axes, values: list[float], *, unit: str, noun: str = "paths") -> None:
    """Draw a histogram of ``values`` with a legend; one annotated bar when they all agree."""
    low, high = min(values, default=0.0), max(values, default=0.0)
    if low == high:
        # Explicit bins around the one value: a bar a reader can see, and a note saying why.
        width = max(abs(low) * 0.02, 1.0)
        axes.bar([low], [len(values)], width=width, color="tab:blue", label=f"{noun}")
        axes.set_xlim(low - 10 * width, low + 10 * width)
        axes.annotate(
            f"all {len(values):,} {noun}: {low:,.2f} {unit}",
            xy=(0.5, 0.95),
            xycoords="axes fraction",
            ha="center",
            va="top",
        )
    else:
        bins = min(HISTOGRAM_BINS_MAX, max(len(set(values)), 2))
        axes.hist(values, bins=bins, color="tab:blue", edgecolor="white", label=noun)
    axes.set_ylim(0, max(len(values), 1) * 1.25)
    axes.xaxis.set_major_formatter(THOUSANDS)
    axes.set_ylabel(noun)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))


def _hours(label: RunLabel, count: int) -> list[float]:
    return [number * label.step_hours for number in range(count)]


def insurance_figure(paths: list[PathMetrics], label: RunLabel) -> Figure:
    """Return the fund's low point per path (a histogram) and its balance over time."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    asset = label.asset
    minima = [path.insurance_min_minor / USDC_MINOR for path in paths]
    draw_histogram(left, minima, unit=asset)
    if paths:
        left.axvline(
            paths[0].insurance_path_minor[0] / USDC_MINOR,
            color="black",
            linestyle="--",
            label="fund after setup",
        )
    left.set(title="Lowest balance per path", xlabel=f"insurance fund low point ({asset})")
    left.legend(loc="upper left")
    for number, path in enumerate(paths):
        # The last point is after expiry, at the same hour as the last step.
        balances = [value / USDC_MINOR for value in path.insurance_path_minor]
        hours = [*_hours(label, len(balances) - 1), (len(balances) - 2) * label.step_hours]
        right.plot(
            hours,
            balances,
            alpha=0.4,
            lw=0.8,
            color="tab:blue",
            label="one path" if number == 0 else None,
        )
    right.set(
        title="Balance over time (last point: after expiry)",
        xlabel="market time (hours)",
        ylabel=f"insurance fund ({asset})",
    )
    right.yaxis.set_major_formatter(THOUSANDS)
    right.legend(loc="lower left")
    figure.suptitle(f"Insurance fund: {label.describe()}")
    figure.tight_layout()
    return figure


def cascade_figure(paths: list[PathMetrics], label: RunLabel) -> Figure:
    """Return liquidations per hour: summed over paths, and the worst path's."""
    steps = max((len(path.liquidations_per_step) for path in paths), default=0)
    totals = [sum(path.liquidations_per_step[k] for path in paths) for k in range(steps)]
    worst = [max(path.liquidations_per_step[k] for path in paths) for k in range(steps)]
    hours = [(k + 1) * label.step_hours for k in range(steps)]
    figure, axes = plt.subplots(figsize=(9, 4.8))
    axes.bar(hours, totals, width=0.8 * label.step_hours, color="tab:red", label="all paths")
    axes.plot(hours, worst, color="black", marker=".", label="worst path")
    if label.shock is not None:
        axes.axvline(
            label.shock.at_step * label.step_hours, color="gray", linestyle=":", label="shock"
        )
    axes.set(
        title=f"Liquidation cascade: {label.describe()}",
        xlabel="market time (hours)",
        ylabel="liquidations in the hour",
    )
    axes.set_ylim(0, max([*totals, 1]) * 1.15)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend()
    figure.tight_layout()
    return figure


def tier_figure(paths: list[PathMetrics], label: RunLabel) -> Figure:
    """Return the loss per tier (mean and worst path) and the bad debt per path."""
    asset = label.asset
    tiers = sorted({tier for path in paths for tier in path.loss_by_tier_minor})
    per_tier = [
        [path.loss_by_tier_minor.get(tier, 0) / USDC_MINOR for path in paths] for tier in tiers
    ]
    means = [sum(values) / max(len(values), 1) for values in per_tier]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    bars = left.bar(tiers, means, color="tab:purple", label=f"mean over {len(paths):,} paths")
    left.bar_label(bars, labels=[f"{mean:,.2f}" for mean in means])
    left.scatter(tiers, [max(v, default=0.0) for v in per_tier], color="black", label="worst path")
    left.set(
        title=f"Loss by account tier\n({LOSS_DEFINITION})",
        xlabel="account tier",
        ylabel=f"loss per path ({asset})",
    )
    left.set_ylim(0, max([*(max(v, default=0.0) for v in per_tier), 1.0]) * 1.15)
    left.yaxis.set_major_formatter(THOUSANDS)
    left.legend(loc="upper right")
    draw_histogram(right, [path.bad_debt_minor / USDC_MINOR for path in paths], unit=asset)
    right.set(title=f"Bad debt per path\n({BAD_DEBT_DEFINITION})", xlabel=f"bad debt ({asset})")
    right.legend(loc="upper left")
    figure.suptitle(f"Losses: {label.describe()}")
    figure.tight_layout()
    return figure


def plot_sweep(results: dict[str, list[PathMetrics]], file: Path, *, title: str = "") -> Path:
    """Draw each rule set's insurance-fund minimum per path, side by side; return the file."""
    file.parent.mkdir(parents=True, exist_ok=True)
    names = [name for name, paths in results.items() if paths]  # An unsound set ran none.
    minima = [[path.insurance_min_minor / USDC_MINOR for path in results[n]] for n in names]
    figure, axes = plt.subplots(figsize=(max(6, 1.4 * len(names) + 2), 4.8))
    axes.boxplot(minima, tick_labels=names, label="median; box: quartiles")
    for column, values in enumerate(minima, start=1):
        axes.scatter(
            [column] * len(values),
            values,
            s=8,
            alpha=0.5,
            color="tab:blue",
            label="one path" if column == 1 else None,
        )
    heading = "Insurance fund: minimum per path, by rule set"
    axes.set(
        title=f"{heading}\n{title}" if title else heading,
        xlabel="rule set",
        ylabel="insurance fund low point (USDC)",
    )
    axes.yaxis.set_major_formatter(THOUSANDS)
    axes.legend()
    figure.tight_layout()
    figure.savefig(file, dpi=100)
    plt.close(figure)
    return file
