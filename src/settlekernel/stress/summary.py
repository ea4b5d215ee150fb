"""Aggregate many paths' metrics into one JSON-ready summary (SK-STRESS-3).

Money stays in integer minor units; percentiles are nearest-rank over the sorted values, so
every number in the summary is a value some path actually produced.
"""

from __future__ import annotations

from collections import Counter

from settlekernel.stress.runner import PathMetrics


def nearest_rank(values: list[int], percent: int) -> int:
    """Return the nearest-rank percentile of ``values`` (0 for an empty list)."""
    if not values:
        return 0
    ordered = sorted(values)
    rank = max(-(-percent * len(ordered) // 100), 1)
    return ordered[rank - 1]


def distribution(values: list[int]) -> dict[str, int]:
    """Return min, p50, p95, p99, max and the integer mean (rounded down)."""
    return {
        "min": min(values, default=0),
        "p50": nearest_rank(values, 50),
        "p95": nearest_rank(values, 95),
        "p99": nearest_rank(values, 99),
        "max": max(values, default=0),
        "mean_floor": sum(values) // len(values) if values else 0,
    }


def summarize(paths: list[PathMetrics], fund_start_minor: int) -> dict[str, object]:
    """Return the summary of a run: distributions, counts, and where the losses fell."""
    tiers: Counter[str] = Counter()
    for path in paths:
        tiers.update(path.loss_by_tier_minor)
    absorbers: Counter[str] = Counter()
    for path in paths:
        absorbers.update(path.adl_absorbers)
    violations = [f"seed {path.seed}: {v}" for path in paths for v in path.violations]
    steps = max((len(path.liquidations_per_step) for path in paths), default=0)
    return {
        "paths": len(paths),
        "fund_start_minor": fund_start_minor,
        "insurance_min_minor": distribution([path.insurance_min_minor for path in paths]),
        "insurance_end_minor": distribution([path.insurance_path_minor[-1] for path in paths]),
        "paths_fund_exhausted": sum(1 for path in paths if path.insurance_min_minor == 0),
        "liquidations": distribution([path.liquidations for path in paths]),
        "bankruptcies": distribution([path.bankruptcies for path in paths]),
        "bad_debt_minor": distribution([path.bad_debt_minor for path in paths]),
        "insurance_paid_minor": distribution([path.insurance_paid_minor for path in paths]),
        "paths_with_adl": sum(1 for path in paths if path.adl_events),
        "adl_events": sum(path.adl_events for path in paths),
        "adl_absorbers_top": dict(absorbers.most_common(10)),
        "accounts_affected": distribution([len(path.accounts_affected) for path in paths]),
        "socialized_minor": distribution([path.socialized_minor for path in paths]),
        "loss_by_tier_minor_total": dict(sorted(tiers.items())),
        "liquidations_by_step_total": [
            sum(path.liquidations_per_step[k] for path in paths) for k in range(steps)
        ],
        "rejected": dict(sorted(sum((path.rejected for path in paths), Counter()).items())),
        "setup_trades_rejected": sum(path.setup_trades_rejected for path in paths),
        "invariant_violations": violations,
    }
