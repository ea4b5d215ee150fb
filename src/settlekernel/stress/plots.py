"""PNG plots of a stress run (matplotlib, headless): fund, cascades, loss by tier."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # Headless: the CLI and the tests draw to files, never to a screen.

import matplotlib.pyplot as plt

from settlekernel.stress.runner import PathMetrics

USDC_MINOR = 10**6
PLOT_NAMES = ("insurance_fund.png", "cascade_timeline.png", "loss_by_tier.png")


def plot_all(paths: list[PathMetrics], out: Path) -> list[Path]:
    """Draw the three plots into ``out``; return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = [out / name for name in PLOT_NAMES]
    _insurance(paths, files[0])
    _cascades(paths, files[1])
    _tiers(paths, files[2])
    return files


def _insurance(paths: list[PathMetrics], file: Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    minima = [path.insurance_min_minor / USDC_MINOR for path in paths]
    left.hist(minima, bins=min(30, max(len(paths), 1)), color="tab:blue")
    left.set(title="Insurance fund: minimum per path", xlabel="USDC", ylabel="paths")
    for path in paths:
        right.plot([v / USDC_MINOR for v in path.insurance_path_minor], alpha=0.4, lw=0.8)
    right.set(title="Insurance fund per path", xlabel="step", ylabel="USDC")
    figure.tight_layout()
    figure.savefig(file, dpi=100)
    plt.close(figure)


def _cascades(paths: list[PathMetrics], file: Path) -> None:
    steps = max((len(path.liquidations_per_step) for path in paths), default=0)
    totals = [sum(path.liquidations_per_step[k] for path in paths) for k in range(steps)]
    worst = [max(path.liquidations_per_step[k] for path in paths) for k in range(steps)]
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.bar(range(1, steps + 1), totals, color="tab:red", label="all paths")
    axes.plot(range(1, steps + 1), worst, color="black", marker=".", label="worst path")
    axes.set(title="Liquidation cascade timeline", xlabel="step", ylabel="liquidations")
    axes.legend()
    figure.tight_layout()
    figure.savefig(file, dpi=100)
    plt.close(figure)


def _tiers(paths: list[PathMetrics], file: Path) -> None:
    tiers = sorted({tier for path in paths for tier in path.loss_by_tier_minor})
    means = [
        sum(path.loss_by_tier_minor.get(tier, 0) for path in paths) / max(len(paths), 1)
        for tier in tiers
    ]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.bar(tiers, [mean / USDC_MINOR for mean in means], color="tab:purple")
    axes.set(title="Mean loss per path by account tier", ylabel="USDC")
    figure.tight_layout()
    figure.savefig(file, dpi=100)
    plt.close(figure)


def plot_sweep(results: dict[str, list[PathMetrics]], file: Path) -> Path:
    """Draw each rule set's insurance-fund minimum per path, side by side; return the file."""
    file.parent.mkdir(parents=True, exist_ok=True)
    names = [name for name, paths in results.items() if paths]  # An unsound set ran none.
    minima = [[path.insurance_min_minor / USDC_MINOR for path in results[n]] for n in names]
    figure, axes = plt.subplots(figsize=(max(6, 1.4 * len(names) + 2), 4))
    axes.boxplot(minima, tick_labels=names)
    for column, values in enumerate(minima, start=1):
        axes.scatter([column] * len(values), values, s=8, alpha=0.5, color="tab:blue")
    axes.set(title="Insurance fund: minimum per path, by rule set", ylabel="USDC")
    figure.tight_layout()
    figure.savefig(file, dpi=100)
    plt.close(figure)
    return file
