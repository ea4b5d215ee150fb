"""Cover-2: the two participants whose default would cost the most, against the fund.

After CPMI-IOSCO's PFMI (principle 4): a CCP for complex products should hold resources for
the default of the two participants that would cause the largest credit exposure in extreme
but plausible conditions. Here (SK-STRESS-5) the conditions are the stress paths, run through
the real kernel with the keeper switched off, so that no one is closed out early: a
participant's exposure on a path is the largest shortfall of its margin equity below zero at
any step, which is what its default would leave after all its collateral is used. The
report gives, per participant, its worst exposure over all paths; the two largest; the worst
single-path sum of the two largest exposures on that path; and both against the fund.
"""

from __future__ import annotations

from collections.abc import Iterable

from settlekernel.stress.runner import PathMetrics


def cover2_report(paths: Iterable[PathMetrics], fund_minor: int) -> dict[str, object]:
    """Return the Cover-2 report of paths run with ``track_deficits`` and no keeper."""
    worst: dict[str, tuple[int, int]] = {}  # account -> (exposure, seed of that path)
    worst_pair_minor, worst_pair_seed, worst_pair = 0, None, []
    for path in paths:
        for account, exposure in path.deficit_max_minor.items():
            if exposure > worst.get(account, (0, 0))[0]:
                worst[account] = (exposure, path.seed)
        ranked = sorted(path.deficit_max_minor.items(), key=lambda item: (-item[1], item[0]))[:2]
        pair_minor = sum(exposure for _, exposure in ranked)
        if pair_minor > worst_pair_minor:
            worst_pair_minor, worst_pair_seed = pair_minor, path.seed
            worst_pair = [account for account, _ in ranked]
    top = sorted(worst.items(), key=lambda item: (-item[1][0], item[0]))[:2]
    cover2_minor = sum(exposure for _, (exposure, _) in top)
    return {
        "participants": [
            {"account": account, "exposure_minor": exposure, "seed": seed}
            for account, (exposure, seed) in top
        ],
        "cover2_minor": cover2_minor,
        "fund_minor": fund_minor,
        "fund_covers_cover2": fund_minor >= cover2_minor,
        "worst_path_pair": worst_pair,
        "worst_path_pair_minor": worst_pair_minor,
        "worst_path_seed": worst_pair_seed,
        "fund_covers_worst_path_pair": fund_minor >= worst_pair_minor,
    }
