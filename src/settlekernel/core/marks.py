"""The mark premium: what trades between different owners say the basis is (SK-MARK-1, -2).

Before v4 the mark was the index plus the last trade's premium, so one 1-lot print moved it by
the whole mark band and funding charged that premium every interval for ever. Now each trade
of a perpetual or future between accounts of *different* owners leaves a sample (its time,
its premium over the index clamped to the mark band, its size in lots); a trade between two
accounts of one owner is a wash and leaves none (SK-MARK-2). The mark premium at a time ``t``
is the size-weighted median of the samples with ``ts <= t < ts + mark_window_ms``; an exact
split between two premiums takes the one nearer zero; no sample in the window means no
premium. Funding averages this premium over time (``integrate_premium``), so a print counts
only for as long as it stays in the window, and only in proportion to its size.

Every function here is pure integer arithmetic; none reads a clock.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from settlekernel.core.model import PremiumSample


def in_window(
    samples: tuple[PremiumSample, ...], at_ms: int, window_ms: int
) -> list[PremiumSample]:
    """Return the samples that count at ``at_ms``: ``ts <= at_ms < ts + window_ms``."""
    return [s for s in samples if s.timestamp_ms <= at_ms < s.timestamp_ms + window_ms]


def mark_premium_ppm(samples: tuple[PremiumSample, ...], at_ms: int, window_ms: int) -> int:
    """Return the size-weighted median premium of the samples in the window; 0 if none.

    The lower and upper weighted medians are the premiums at which the cumulative size,
    in ascending premium order, first reaches half the total from below and from above;
    when they differ (an exact split) the one nearer zero is taken, or 0 if they straddle it.
    """
    counted = sorted(in_window(samples, at_ms, window_ms), key=lambda s: s.premium_ppm)
    total = sum(s.lots for s in counted)
    if total == 0:
        return 0
    lower = upper = 0
    running = 0
    for sample in counted:
        running += sample.lots
        if running * 2 >= total:
            lower = sample.premium_ppm
            break
    running = 0
    for sample in reversed(counted):
        running += sample.lots
        if running * 2 >= total:
            upper = sample.premium_ppm
            break
    if lower <= 0 <= upper:
        return 0
    return lower if abs(lower) <= abs(upper) else upper


def integrate_premium(
    samples: tuple[PremiumSample, ...], start_ms: int, end_ms: int, window_ms: int
) -> int:
    """Return the exact integral of the mark premium over ``[start_ms, end_ms)``, ppm x ms.

    The premium is constant between the moments a sample enters or leaves the window, so
    the integral is a sum over those pieces; no sample is added inside the interval (a trade
    integrates up to its own time before it adds its sample).
    """
    if end_ms <= start_ms:
        return 0
    cuts = sorted(
        {start_ms, end_ms}
        | {
            moment
            for s in samples
            for moment in (s.timestamp_ms, s.timestamp_ms + window_ms)
            if start_ms < moment < end_ms
        }
    )
    return sum(
        mark_premium_ppm(samples, left, window_ms) * (right - left)
        for left, right in itertools.pairwise(cuts)
    )


def with_sample(
    samples: tuple[PremiumSample, ...],
    sample: PremiumSample,
    window_ms: int,
    samples_max: int,
) -> tuple[PremiumSample, ...]:
    """Return the samples with ``sample`` added, the expired dropped, at most ``samples_max``.

    When there are too many, the smallest by size goes first (the oldest among equals), so
    a flood of 1-lot prints cannot push a large trade out of the window.
    """
    kept = [s for s in samples if s.timestamp_ms + window_ms > sample.timestamp_ms]
    kept.append(sample)
    while len(kept) > samples_max:
        smallest = min(range(len(kept)), key=lambda i: (kept[i].lots, kept[i].timestamp_ms))
        del kept[smallest]
    return tuple(kept)
