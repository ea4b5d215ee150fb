"""The scenario grid of portfolio margin, in integers (spec/50-margin.md SK-PM-1).

The grid is part of the rule set (``UnderlyingRules.scenarios``); the margin engine
revalues positions over it.

Per underlying, in the manner of SPAN: price moves of 0, +-1/3, +-2/3 and +-1 of the scan
range, each with the volatility shocked up, unchanged and down (21 scenarios), then the two
extreme moves of +-``extreme_multiple`` scan ranges with volatility unchanged, of whose loss
only ``extreme_weight`` counts (2 scenarios): 23 in all, in a fixed order.

Scenario prices are integer ticks, moved away from the index (rounded up in magnitude), so a
long and a short are both shocked at least by the nominal move. They never fall below 1 tick.
"""

from __future__ import annotations

from typing import Final

import attrs

from settlekernel.core.arith import ceil_div
from settlekernel.core.units import PPM

# Thirds of the scan range, in SPAN's order of magnitude; each with vol up, same, down.
_THIRDS: Final = (0, 1, -1, 2, -2, 3, -3)
VOL_UP: Final = "up"
VOL_SAME: Final = "same"
VOL_DOWN: Final = "down"
_VOLS: Final = (VOL_UP, VOL_SAME, VOL_DOWN)


@attrs.frozen
class Scenario:
    """One revaluation: a price move, a volatility shock and the share of the loss counted."""

    move_ppm: int
    vol: str
    weight_ppm: int

    @property
    def label(self) -> str:
        """Return e.g. ``+8.00% vol up`` or ``-16.00% vol same x35%``."""
        percent = self.move_ppm / 10_000
        weight = "" if self.weight_ppm == PPM else f" x{self.weight_ppm / 10_000:g}%"
        return f"{percent:+.2f}% vol {self.vol}{weight}"


def scenarios(
    scan_range_ppm: int, extreme_multiple_ppm: int, extreme_weight_ppm: int
) -> tuple[Scenario, ...]:
    """Return the 23 scenarios of an underlying's parameters, in their fixed order."""
    grid = [
        Scenario(_third_of(scan_range_ppm, thirds), vol, PPM) for thirds in _THIRDS for vol in _VOLS
    ]
    extreme_ppm = scan_range_ppm * extreme_multiple_ppm // PPM
    grid += [
        Scenario(extreme_ppm, VOL_SAME, extreme_weight_ppm),
        Scenario(-extreme_ppm, VOL_SAME, extreme_weight_ppm),
    ]
    return tuple(grid)


def _third_of(scan_range_ppm: int, thirds: int) -> int:
    """Return thirds/3 of the scan range, rounded away from zero.

    pre: scan_range_ppm >= 0
    post: abs(__return__) * 3 >= scan_range_ppm * abs(thirds)
    post: (abs(__return__) - 1) * 3 < scan_range_ppm * abs(thirds) or __return__ == 0
    post: (__return__ >= 0) == (thirds >= 0) or __return__ == 0
    """
    magnitude = ceil_div(scan_range_ppm * abs(thirds), 3)
    return magnitude if thirds >= 0 else -magnitude


def scenario_price_ticks(index_ticks: int, move_ppm: int) -> int:
    """Return the index moved by ``move_ppm``, rounded away from it, and at least 1 tick.

    pre: index_ticks >= 1
    post: __return__ >= 1
    post: move_ppm < 0 or (__return__ - index_ticks) * 1_000_000 >= index_ticks * move_ppm
    post: move_ppm > 0 or (index_ticks - __return__) * 1_000_000 >= -index_ticks * move_ppm or __return__ == 1
    post: abs(__return__ - index_ticks) * 1_000_000 < index_ticks * abs(move_ppm) + 1_000_000
    """  # noqa: E501 (a contract is one line)
    shift_ticks = ceil_div(index_ticks * abs(move_ppm), PPM)
    moved = index_ticks + shift_ticks if move_ppm >= 0 else index_ticks - shift_ticks
    return max(moved, 1)
