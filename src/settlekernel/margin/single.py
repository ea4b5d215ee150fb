"""One account's margin without the batch machinery: the kernel's hot path (SK-MARGIN-DET-3).

The batch engine (``portfolio.compute_margins``) groups, nets and sums in NumPy across many
accounts; for the one account the kernel margins per check, its bookkeeping costs more than
the arithmetic. This module computes the same report for one account in plain Python
integers, from two shared memos:

- each option series' risk array (forwards and prices, now and per scenario) under the
  market inputs it depends on, taken from the batch engine's own memo so the floats are the
  same bits (SK-MARGIN-DET-2);
- each netted option row's integers, its value and its scenario P&L, keyed by the series'
  market inputs and the row's size (quantity x multiplier): every account holding that many
  contracts of that series at that market state shares them, as SPAN shares risk arrays.

Every float operation is the batch engine's, element by element, in the same order (``+ - *``
and ``floor`` of IEEE 754 doubles, as Python and NumPy both round them), so each row's
integers are the same; integer sums are exact. The report is therefore bit-identical to
``compute_margins([portfolio], ...)[0]`` without Greeks; tests/test_single_margin.py checks
that on random books and markets. Greeks are only asked for by reports, which use the batch
engine.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Final

from settlekernel.core.arith import ceil_div
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.reports import MarginReport, UnderlyingRisk
from settlekernel.core.units import PPM
from settlekernel.margin.options import MODEL_ERROR_BOUND, _row_key, _shared_risk_arrays
from settlekernel.margin.portfolio import collateral_value_minor, scenario_moves

if TYPE_CHECKING:
    from settlekernel.core.rules import RuleSet, UnderlyingRules
    from settlekernel.margin.portfolio import Exposure, Market, Portfolio

# [SK-MARGIN-DET-3] Memo of each netted option row's integers: (value, scenario P&L) under
# (series and market inputs, size). Bounded; emptied when full. Only rows of the current
# market can hit (the key holds the index, volatility and time to expiry), a few hundred per
# oracle round in the replay, so a larger bound only keeps dead rows: at 65,536 they were
# 65 MiB of the replay's heap (tracemalloc, first 100k events), at 8,192 they are an eighth.
_ROW_INTEGERS: dict[tuple[object, int], tuple[int, tuple[int, ...]]] = {}
ROW_INTEGERS_MAX: Final = 8_192
# Each series' risk array (forwards, prices) as Python floats, under the same key as the
# batch engine's memo: a row of a series already valued needs no NumPy call.
_SERIES_LISTS: dict[tuple[object, ...], tuple[list[float], list[float]]] = {}
_NO_GREEKS: Final = 0.0
_OPTION: Final = InstrumentKind.OPTION


class _Group:
    """One underlying's positions: linear exposure, per-instrument net, netted options."""

    __slots__ = ("exposures", "linear_minor", "net_by_instrument", "options")

    def __init__(self) -> None:
        self.exposures: list[Exposure] = []
        self.linear_minor = 0
        self.net_by_instrument: dict[str, int] = {}
        # (expiry, strike, call, multiplier) -> net lots, in first-seen order.
        self.options: dict[tuple[int, int, bool, int], int] = {}


def compute_account_margin(portfolio: Portfolio, market: Market, rules: RuleSet) -> MarginReport:
    """Return one account's margin report, the batch engine's bits without Greeks."""
    groups: dict[str, _Group] = {}
    index_ticks = market.index_ticks
    unrealized_minor = 0
    for exposure in portfolio.exposures:
        instrument = exposure.instrument
        quantity = exposure.quantity_lots
        if instrument.kind is not _OPTION:
            unrealized_minor += (
                quantity
                * (index_ticks[instrument.underlying] - exposure.settled_price_ticks)
                * instrument.multiplier_minor
            )
        if not quantity:
            continue
        group = groups.get(instrument.underlying)
        if group is None:
            group = groups[instrument.underlying] = _Group()
        group.exposures.append(exposure)
        if instrument.kind is _OPTION:
            assert instrument.expiry_ms is not None
            assert instrument.strike_ticks is not None
            row = (
                instrument.expiry_ms,
                instrument.strike_ticks,
                instrument.option_type is OptionType.CALL,
                instrument.multiplier_minor,
            )
            group.options[row] = group.options.get(row, 0) + quantity
        else:
            exposure_minor = quantity * instrument.multiplier_minor
            group.linear_minor += exposure_minor
            net = group.net_by_instrument
            net[instrument.id] = net.get(instrument.id, 0) + exposure_minor
    risks = []
    option_value_minor = 0
    for underlying in sorted(groups):
        risk, value_minor = _underlying_risk(underlying, groups[underlying], market, rules)
        risks.append(risk)
        option_value_minor += value_minor
    collateral_minor = collateral_value_minor(portfolio.balances, market, rules)
    return MarginReport(
        collateral_minor,
        unrealized_minor,
        option_value_minor,
        collateral_minor + portfolio.credit_minor + unrealized_minor + option_value_minor,
        sum(risk.maintenance_minor for risk in risks),
        sum(risk.initial_minor for risk in risks),
        tuple(risks),
    )


def _underlying_risk(
    underlying: str, group: _Group, market: Market, rules: RuleSet
) -> tuple[UnderlyingRisk, int]:
    """Return one underlying's risk and its options' value (``portfolio._underlying_risk``)."""
    underlying_rules = rules.underlying_by_symbol[underlying]
    grid = underlying_rules.scenarios
    index_ticks = market.index_ticks[underlying]
    linear_minor = group.linear_minor
    moves, weights, weighted_moves = _linear_table(underlying_rules, index_ticks)
    pnl = [linear_minor * move for move in moves]
    value_minor, short_minor, has_short, has_options = _option_rows(
        underlying, group, pnl, market, rules
    )
    # Weighted loss = ceil(-pnl * weight): a loss rounds up, a gain rounds towards zero.
    if has_options:
        weighted = [-((p * w) // PPM) for p, w in zip(pnl, weights, strict=True)]
    else:
        # The same products, (exposure x move) x weight = exposure x (move x weight).
        weighted = [-((linear_minor * m) // PPM) for m in weighted_moves]
    # The first scenario with the largest weighted loss (ties go to the earlier scenario).
    worst_loss_minor = max(weighted)
    worst = weighted.index(worst_loss_minor)
    scan_loss_minor = max(worst_loss_minor, 0)
    contingency_minor = ceil_div(
        short_minor * index_ticks * underlying_rules.short_option_minimum_ppm, PPM
    )
    longs = sum(e for e in group.net_by_instrument.values() if e > 0)
    shorts = -sum(e for e in group.net_by_instrument.values() if e < 0)
    calendar_minor = ceil_div(
        min(longs, shorts) * index_ticks * underlying_rules.calendar_spread_ppm, PPM
    )
    maintenance_minor = scan_loss_minor + contingency_minor + calendar_minor
    initial_minor = ceil_div(maintenance_minor * underlying_rules.im_multiplier_ppm, PPM)
    if has_options and not has_short and not linear_minor:
        # [SK-PM-3] Net long options alone: initial margin is capped at their value.
        initial_minor = max(maintenance_minor, min(initial_minor, max(value_minor, 0)))
    risk = UnderlyingRisk(
        underlying,
        grid,
        tuple(pnl),
        tuple(weighted),
        worst,
        scan_loss_minor,
        contingency_minor,
        calendar_minor,
        maintenance_minor,
        initial_minor,
        float(linear_minor) + _NO_GREEKS,
        _NO_GREEKS,
        _NO_GREEKS,
        _NO_GREEKS,
    )
    return risk, value_minor


@functools.lru_cache(maxsize=4_096)
def _linear_table(
    underlying_rules: UnderlyingRules, index_ticks: int
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Return each scenario's index move, weight and their product (memoised, integers)."""
    moves = scenario_moves(underlying_rules, index_ticks)
    weights = tuple(s.weight_ppm for s in underlying_rules.scenarios)
    return moves, weights, tuple(m * w for m, w in zip(moves, weights, strict=True))


def _option_rows(
    underlying: str, group: _Group, pnl: list[int], market: Market, rules: RuleSet
) -> tuple[int, int, bool, bool]:
    """Add the group's option rows to ``pnl``; return value, short contracts and flags."""
    value_minor = short_minor = 0
    has_short = has_options = False
    rows: list[tuple[tuple[str, int, int, bool], int]] = []
    for (expiry_ms, strike_ticks, call, multiplier), quantity in group.options.items():
        if not quantity:
            continue  # Identical listings that offset exactly cost exactly nothing.
        has_options = True
        size_minor = quantity * multiplier
        if quantity < 0:
            has_short = True
            short_minor -= size_minor
        rows.append(((underlying, expiry_ms, strike_ticks, call), size_minor))
    for row_value, row_pnl in rows_integers(rows, market, rules):
        value_minor += row_value
        for number, amount in enumerate(row_pnl):
            pnl[number] += amount
    return value_minor, short_minor, has_short, has_options


def row_integers(
    identity: tuple[str, int, int, bool], size_minor: int, market: Market, rules: RuleSet
) -> tuple[int, tuple[int, ...]]:
    """Return one netted option row's value and scenario P&L, rounded against the holder.

    The batch engine's formulas (``options.option_results``), on one row: with signed size
    ``q``, size ``|q|``, prices ``p`` and forwards ``F`` (column 0 now, then per scenario) and
    strike ``K``, value ``floor(q p0 - |q| (F0 + K) e)`` and scenario P&L ``floor(q (ps - p0)
    - |q| (Fs + F0 + 2K) e)``, ``e`` the model's error bound (SK-PM-4).
    """
    return rows_integers([(identity, size_minor)], market, rules)[0]


def rows_integers(
    rows: list[tuple[tuple[str, int, int, bool], int]], market: Market, rules: RuleSet
) -> list[tuple[int, tuple[int, ...]]]:
    """Return ``row_integers`` of every row; series not yet valued are valued in one call."""
    series_keys = [_row_key(identity, market, rules) for identity, _ in rows]
    found = [
        _ROW_INTEGERS.get((key, size_minor))
        for key, (_, size_minor) in zip(series_keys, rows, strict=True)
    ]
    hits = [result for result in found if result is not None]
    if len(hits) == len(rows):
        return hits
    unvalued = {
        key: identity
        for key, (identity, _), result in zip(series_keys, rows, found, strict=True)
        if result is None and key not in _SERIES_LISTS
    }
    if unvalued:
        _value_series(list(unvalued.items()), market, rules)
    if len(_ROW_INTEGERS) + len(rows) > ROW_INTEGERS_MAX:
        _ROW_INTEGERS.clear()
    results: list[tuple[int, tuple[int, ...]]] = []
    for key, (identity, size_minor), hit in zip(series_keys, rows, found, strict=True):
        if hit is not None:
            results.append(hit)
            continue
        computed = _row_from_series(_SERIES_LISTS[key], float(identity[2]), size_minor)
        _ROW_INTEGERS[(key, size_minor)] = computed
        results.append(computed)
    return results


def _value_series(
    unvalued: list[tuple[tuple[object, ...], tuple[str, int, int, bool]]],
    market: Market,
    rules: RuleSet,
) -> None:
    """Put the series' risk arrays, as Python floats, in the list memo: one NumPy call."""
    forwards, _, prices = _shared_risk_arrays([identity for _, identity in unvalued], market, rules)
    if len(_SERIES_LISTS) + len(unvalued) > ROW_INTEGERS_MAX:
        _SERIES_LISTS.clear()
    for (key, _), row_forwards, row_prices in zip(
        unvalued, forwards.tolist(), prices.tolist(), strict=True
    ):
        _SERIES_LISTS[key] = (row_forwards, row_prices)


def _row_from_series(
    series: tuple[list[float], list[float]], strike: float, size_minor: int
) -> tuple[int, tuple[int, ...]]:
    forwards, prices = series
    signed = float(size_minor)
    size = abs(signed)
    forward_now, price_now = forwards[0], prices[0]
    value = math.floor(signed * price_now - size * (forward_now + strike) * MODEL_ERROR_BOUND)
    scenario_pnl = tuple(
        math.floor(
            signed * (price - price_now)
            - size * (forward + forward_now + 2.0 * strike) * MODEL_ERROR_BOUND
        )
        for forward, price in zip(forwards[1:], prices[1:], strict=True)
    )
    return value, scenario_pnl


def clear_row_memo() -> None:
    """Empty the row and series memos (for tests that show they change nothing)."""
    _ROW_INTEGERS.clear()
    _SERIES_LISTS.clear()
