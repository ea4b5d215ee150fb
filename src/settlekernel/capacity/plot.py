"""The capacity plot: the model's latency against the arrival rate, and what a load run measured."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from settlekernel.capacity.load import LevelCheck
from settlekernel.capacity.measure import CommitCost, ServiceSample
from settlekernel.capacity.queueing import Arrivals, capacity_per_s, predict


def plot_capacity(  # noqa: PLR0913 (the measurements, the checks and the file)
    sample: ServiceSample,
    commit: CommitCost,
    checks: Sequence[LevelCheck],
    out: Path,
    *,
    batch_max: int,
    burst: float = 1.0,
) -> Path:
    """Draw mean and p99 latency over 5 % .. 95 % of capacity, the measured levels on top."""
    import matplotlib as mpl  # noqa: PLC0415 (an optional extra, imported when plotting)

    mpl.use("Agg")
    from matplotlib import pyplot as plt  # noqa: PLC0415 (after choosing the backend)

    mean = sum(sample.seconds) / len(sample.seconds)
    capacity = capacity_per_s(mean, commit, batch_max)
    levels = [step / 20 for step in range(1, 20)]
    model = [
        predict(Arrivals(level * capacity, burst), sample, commit, batch_max, n=20_000)
        for level in levels
    ]
    figure, axes = plt.subplots(figsize=(7, 4.2))
    rates = [p.rate_per_s for p in model]
    axes.plot(rates, [p.mean_s * 1e3 for p in model], label="model, mean")
    axes.plot(rates, [p.p99_s * 1e3 for p in model], label="model, p99")
    axes.scatter(
        [c.rate_per_s for c in checks],
        [c.measured_mean_s * 1e3 for c in checks],
        marker="o",
        label="load run, mean",
    )
    axes.scatter(
        [c.rate_per_s for c in checks],
        [c.measured_p99_s * 1e3 for c in checks],
        marker="^",
        label="load run, p99",
    )
    axes.axvline(capacity, linestyle=":", color="grey", label=f"capacity {capacity:,.0f}/s")
    axes.set_xlabel("arrival rate (events/s)")
    axes.set_ylabel("settlement latency (ms)")
    axes.set_yscale("log")
    axes.set_title(f"Durable journal, batches of at most {batch_max}, bursts of {burst:g}")
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out
