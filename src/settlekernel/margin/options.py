"""The option side of portfolio margin, vectorised across every account (SK-PM-2..4).

1. Net each account's options by series per underlying (identical contracts are one risk).
2. Value each distinct series once, now and in every scenario: its risk array, as SPAN
   computes one per contract. One Black-76 call prices them all, in cache-sized blocks.
3. Scale by each position, turn every float into an integer rounded against the account
   (SK-PM-4), and sum the integers per account and underlying, exactly.

Every float operation is element-wise and in the same order whatever else is in the batch,
so an account's numbers are the same bits alone or among ten thousand (SK-MARGIN-DET-1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

import attrs
import numpy as np
import numpy.typing as npt

from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.model import Instrument
from settlekernel.core.rules import RuleSet, UnderlyingRules
from settlekernel.core.scenarios import VOL_DOWN, VOL_UP, scenario_price_ticks
from settlekernel.core.units import PPM
from settlekernel.margin.black76 import black76, black76_price
from settlekernel.margin.detmath import FloatArray

YEAR_MS: Final = 365 * 86_400_000
# Bound on the float error of a Black-76 value relative to its scale (F + K): the model is
# within 1e-13 of QuantLib; 2**-40 (9.1e-13) leaves a wide margin (tests/test_black76.py).
MODEL_ERROR_BOUND: Final = 2.0**-40
# Integer sums stay in int64 only while they cannot overflow; otherwise Python ints.
_INT64_SAFE: Final = 2**62

GroupKey = tuple[int, str]


class MarketView(Protocol):
    """What the option side reads of a market snapshot (``portfolio.Market``)."""

    @property
    def clock_ms(self) -> int: ...  # noqa: D102
    @property
    def index_ticks(self) -> Mapping[str, int]: ...  # noqa: D102
    @property
    def volatility_ppm(self) -> Mapping[str, int]: ...  # noqa: D102


@attrs.frozen(eq=False)
class OptionResults:
    """Per (account, underlying) group: scenario P&L, option value, Greeks, short flag."""

    pnl: dict[GroupKey, list[int]]
    value: dict[int, int]
    group_value: dict[GroupKey, int]
    has_short: set[GroupKey]
    greeks: dict[GroupKey, tuple[float, float, float, float]]
    # Net short contracts x multiplier, summed over the group's series (SK-PM-3).
    short_contracts: dict[GroupKey, int]


EMPTY: Final = OptionResults({}, {}, {}, set(), {}, {})


@attrs.frozen(eq=False)
class _Rows:
    """The netted option positions: one row per account, underlying and series."""

    keys: list[GroupKey]  # The group of each row, in non-decreasing group order.
    series: list[int]  # The index of each row's series.
    signed_size: FloatArray  # quantity x multiplier, as a float.
    short_contracts: dict[GroupKey, int]  # Per group: net short quantity x multiplier.


def option_results(
    groups: Mapping[GroupKey, Sequence[Any]],
    market: MarketView,
    rules: RuleSet,
    *,
    with_greeks: bool,
) -> OptionResults:
    """Return the options' scenario P&L, value and Greeks for every group."""
    rows, series = _net_rows(groups)
    if not rows.keys:
        return EMPTY
    forwards, strike, prices = _shared_risk_arrays(series, market, rules)
    where = np.array(rows.series)
    signed, size = rows.signed_size, np.abs(rows.signed_size)
    row_forwards, row_strike, row_prices = forwards[where], strike[where], prices[where]
    value = np.floor(
        signed * row_prices[:, 0] - size * (row_forwards[:, 0] + row_strike) * MODEL_ERROR_BOUND
    )
    change = signed[:, None] * (row_prices[:, 1:] - row_prices[:, :1])
    error = (
        size[:, None]
        * (row_forwards[:, 1:] + row_forwards[:, :1] + 2.0 * row_strike[:, None])
        * MODEL_ERROR_BOUND
    )
    scenario_pnl = np.floor(change - error)
    starts, group_keys = _segments(rows.keys)
    pnl_sums = _sum_segments(scenario_pnl, starts)
    value_sums = _sum_segments(value[:, None], starts)
    results = OptionResults({}, {}, {}, set(), {}, rows.short_contracts)
    short = np.logical_or.reduceat(signed < 0, starts)
    for position, key in enumerate(group_keys):
        results.pnl[key] = pnl_sums[position]
        results.group_value[key] = value_sums[position][0]
        results.value[key[0]] = results.value.get(key[0], 0) + value_sums[position][0]
        if short[position]:
            results.has_short.add(key)
    if with_greeks:
        results.greeks.update(
            _greeks(series, forwards, strike, market, where, signed, starts, group_keys)
        )
    return results


def _net_rows(
    groups: Mapping[GroupKey, Sequence[Any]],
) -> tuple[_Rows, list[tuple[str, int, int, bool]]]:
    """Net options by series in each group; index the distinct series (SK-PM-2)."""
    netted: dict[tuple[int, int, int, bool, int], int] = {}
    group_keys = list(groups)
    underlying_of: list[str] = []
    for number, key in enumerate(group_keys):
        underlying_of.append(key[1])
        for exposure in groups[key]:
            spec = exposure.instrument
            if spec.kind is not InstrumentKind.OPTION:
                continue
            row = (
                number,
                spec.expiry_ms,
                spec.strike_ticks,
                spec.option_type is OptionType.CALL,
                spec.multiplier_minor,
            )
            netted[row] = netted.get(row, 0) + exposure.quantity_lots
    series_index: dict[tuple[str, int, int, bool], int] = {}
    keys, series, sizes = [], [], []
    short_contracts: dict[GroupKey, int] = {}
    for (number, expiry, strike, call, multiplier), quantity in netted.items():
        if not quantity:
            continue  # Identical listings that offset exactly cost exactly nothing.
        identity = (underlying_of[number], expiry, strike, call)
        key = group_keys[number]
        keys.append(key)
        series.append(series_index.setdefault(identity, len(series_index)))
        sizes.append(float(quantity * multiplier))
        if quantity < 0:
            short_contracts[key] = short_contracts.get(key, 0) - quantity * multiplier
    rows = _Rows(keys, series, np.array(sizes, dtype=np.float64), short_contracts)
    return rows, list(series_index)


# [SK-MARGIN-DET-2] Memo of each series' risk array (forwards and prices, now and per
# scenario) under the market inputs it depends on. A series is valued the same bits alone or
# in any batch (SK-MARGIN-DET-1), so the memo changes no result, only how often Black-76
# runs: accounts holding the same series at the same market state share one valuation, as
# SPAN's risk arrays are shared. Bounded; emptied when full.
_ROW_MEMO: dict[tuple[object, ...], tuple[FloatArray, FloatArray]] = {}
ROW_MEMO_MAX: Final = 8_192


def _row_key(
    identity: tuple[str, int, int, bool], market: MarketView, rules: RuleSet
) -> tuple[object, ...]:
    underlying, expiry_ms = identity[0], identity[1]
    return (
        identity,
        market.index_ticks[underlying],
        market.volatility_ppm[underlying],
        max(expiry_ms - market.clock_ms, 0),
        rules.underlying_by_symbol[underlying],
    )


def _shared_risk_arrays(
    series: list[tuple[str, int, int, bool]], market: MarketView, rules: RuleSet
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return ``_risk_arrays`` of the series, valuing only those not in the memo."""
    keys = [_row_key(identity, market, rules) for identity in series]
    rows = {key: _ROW_MEMO.get(key) for key in keys}
    missing = [n for n, key in enumerate(keys) if rows[key] is None]
    if missing:
        forwards, _, prices = _risk_arrays([series[n] for n in missing], market, rules)
        if len(_ROW_MEMO) + len(missing) > ROW_MEMO_MAX:
            _ROW_MEMO.clear()
        for row, n in enumerate(missing):
            rows[keys[n]] = _ROW_MEMO[keys[n]] = (forwards[row], prices[row])
    found = [rows[key] for key in keys]
    strike = np.array([float(identity[2]) for identity in series])
    return (
        np.array([row[0] for row in found if row is not None]),
        strike,
        np.array([row[1] for row in found if row is not None]),
    )


def clear_memo() -> None:
    """Empty the risk-array memo (for tests that show it changes nothing)."""
    _ROW_MEMO.clear()


def _risk_arrays(
    series: list[tuple[str, int, int, bool]], market: MarketView, rules: RuleSet
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Return each series' forwards, strike and prices: now (column 0) and per scenario."""
    underlyings = sorted({identity[0] for identity in series})
    position = {underlying: number for number, underlying in enumerate(underlyings)}
    forward_table, vol_table, lookahead = [], [], []
    for underlying in underlyings:
        underlying_rules = rules.underlying_by_symbol[underlying]
        index_ticks = market.index_ticks[underlying]
        sigma = market.volatility_ppm[underlying] / PPM
        grid = underlying_rules.scenarios
        forward_table.append(
            [float(index_ticks)]
            + [float(scenario_price_ticks(index_ticks, s.move_ppm)) for s in grid]
        )
        vol_table.append(
            [sigma] + [sigma * volatility_multiplier(underlying_rules, s.vol) for s in grid]
        )
        lookahead.append(underlying_rules.lookahead_ms)
    which = np.array([position[identity[0]] for identity in series])
    remaining = np.maximum(
        np.array([identity[1] for identity in series], dtype=np.int64) - market.clock_ms, 0
    )
    ahead = np.maximum(remaining - np.array(lookahead, dtype=np.int64)[which], 0)
    years = np.empty((len(series), len(forward_table[0])))
    years[:, 0] = remaining / YEAR_MS
    years[:, 1:] = (ahead / YEAR_MS)[:, None]
    forwards = np.array(forward_table)[which]
    strike = np.array([float(identity[2]) for identity in series])
    call = np.array([identity[3] for identity in series], dtype=bool)
    prices = black76_price(
        forwards, strike[:, None], years, np.array(vol_table)[which], call[:, None]
    )
    return forwards, strike, prices


def _segments(keys: list[GroupKey]) -> tuple[npt.NDArray[np.intp], list[GroupKey]]:
    """Return where each group's rows start, and the groups, in order."""
    starts = [0] + [n for n in range(1, len(keys)) if keys[n] != keys[n - 1]]
    return np.array(starts, dtype=np.intp), [keys[n] for n in starts]


def _sum_segments(values: FloatArray, starts: npt.NDArray[np.intp]) -> list[list[int]]:
    """Sum whole-number floats per segment of rows, exactly, as Python ints (SK-PM-4)."""
    count = len(values)
    longest = int(np.max(np.diff(np.append(starts, count)))) if count else 0
    if count and float(np.max(np.abs(values))) * longest < _INT64_SAFE:
        sums: list[list[int]] = np.add.reduceat(values.astype(np.int64), starts).tolist()
        return sums
    # Beyond int64 every float of this size is a whole number, and int() is exact.
    exact = [[int(v) for v in row] for row in values.tolist()]
    bounds = [*starts.tolist(), count]
    return [
        [sum(column) for column in zip(*exact[bounds[n] : bounds[n + 1]], strict=True)]
        for n in range(len(starts))
    ]


def _greeks(  # noqa: PLR0913, PLR0917 (the slices the Greeks are summed over)
    series: list[tuple[str, int, int, bool]],
    forwards: FloatArray,
    strike: FloatArray,
    market: MarketView,
    where: npt.NDArray[np.intp],
    signed: FloatArray,
    starts: npt.NDArray[np.intp],
    group_keys: list[GroupKey],
) -> dict[GroupKey, tuple[float, float, float, float]]:
    """Net delta, gamma, vega, theta per group, in settlement minor units (reports only)."""
    years = np.array([max(identity[1] - market.clock_ms, 0) / YEAR_MS for identity in series])
    sigma = np.array([market.volatility_ppm[identity[0]] / PPM for identity in series])
    call = np.array([identity[3] for identity in series], dtype=bool)
    now = black76(forwards[:, 0], strike, years, sigma, call)
    columns = [
        np.add.reduceat(signed * greek[where], starts)
        for greek in (now.delta, now.gamma, now.vega, now.theta)
    ]
    return {
        key: (
            float(columns[0][n]),
            float(columns[1][n]),
            float(columns[2][n]),
            float(columns[3][n]),
        )
        for n, key in enumerate(group_keys)
    }


def model_price_ticks(market: MarketView, instrument: Instrument, *, round_up: bool) -> int:
    """Return an option's Black-76 value per unit of underlying, in whole ticks.

    At the index, the underlying's volatility and the time left to expiry (intrinsic value
    once it is reached). The float is widened by the model's error bound and rounded to a
    whole tick: up when ``round_up`` (the price a liquidated short buys back at), down
    otherwise (the price a liquidated long sells at), so the error never favours the
    liquidated account.
    """
    assert instrument.expiry_ms is not None
    assert instrument.strike_ticks is not None
    index_ticks = market.index_ticks[instrument.underlying]
    years = max(instrument.expiry_ms - market.clock_ms, 0) / YEAR_MS
    sigma = market.volatility_ppm[instrument.underlying] / PPM
    price = float(
        black76_price(
            float(index_ticks),
            float(instrument.strike_ticks),
            years,
            sigma,
            instrument.option_type is OptionType.CALL,
        )
    )
    error = (index_ticks + instrument.strike_ticks) * MODEL_ERROR_BOUND
    bound = float(np.ceil(price + error)) if round_up else float(np.floor(price - error))
    return max(int(bound), 0)


def volatility_multiplier(rules: UnderlyingRules, vol: str) -> float:
    """Return the factor a scenario applies to the volatility."""
    if vol == VOL_UP:
        return (PPM + rules.vol_up_ppm) / PPM
    if vol == VOL_DOWN:
        return (PPM - rules.vol_down_ppm) / PPM
    return 1.0
