"""Scenario portfolio margin, cross-margined and multi-collateral (spec/50-margin.md SK-PM).

For each account, per underlying, every position is revalued in each scenario of the grid
(``scenarios.py``): linear positions exactly, in integers; options with Black-76 at the
scenario forward, the shocked volatility and ``lookahead_ms`` closer to expiry. A position's
scenario P&L is turned into an integer once, rounded down (against the account) after
allowing for the model's floating-point error (SK-PM-4); everything after is integer
arithmetic, so sums are exact and the same on every machine.

Per underlying: the worst weighted loss (never below 0) plus the short-option contingency
is the maintenance requirement; initial is maintenance times ``im_multiplier_ppm``, rounded
up. An account's requirements are the sums over its underlyings (cross-margin: all positions
net in one computation per underlying, against one pool of collateral).

Equity = collateral value after haircuts + unrealised P&L of linear positions at the index +
the value of options at their current Black-76 price (rounded against the account).

The engine is vectorised across all the accounts it is given (the benchmark margins 10k
accounts in one call); the kernel calls it with one account. Nothing here reads the kernel's
state: the inputs are balances, exposures and a market snapshot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs
import numpy as np

from settlekernel.arith import ceil_div, compute_collateral_value_minor, compute_settlement_minor
from settlekernel.margin.black76 import black76, black76_price
from settlekernel.margin.detmath import FloatArray
from settlekernel.margin.scenarios import (
    Scenario,
    scenario_price_ticks,
    volatility_multiplier,
)
from settlekernel.model import Instrument, InstrumentKind, OptionType, RuleSet, UnderlyingRules
from settlekernel.units import PPM

YEAR_MS: Final = 365 * 86_400_000
# Bound on the float error of a Black-76 value relative to its scale (F + K): the model is
# within 1e-15 of QuantLib; 2**-40 (9.1e-13) leaves a wide margin (tests/test_black76.py).
MODEL_ERROR_BOUND: Final = 2.0**-40
# Float values converted to int64 must stay well inside its range; beyond, Python ints.
_INT64_SAFE: Final = 2.0**62


@attrs.frozen
class Exposure:
    """One position as the margin engine sees it."""

    instrument: Instrument
    quantity_lots: int
    settled_price_ticks: int


@attrs.frozen
class Market:
    """The market data the engine reads: the clock and, per underlying, index and volatility."""

    clock_ms: int
    index_ticks: Mapping[str, int]
    volatility_ppm: Mapping[str, int]


@attrs.frozen
class Portfolio:
    """An account's collateral balances and positions."""

    balances: Mapping[str, int]
    exposures: Sequence[Exposure]


@attrs.frozen(eq=False)
class UnderlyingRisk:
    """The scenario result for the positions of one account on one underlying."""

    underlying: str
    scenarios: tuple[Scenario, ...]
    # Portfolio P&L per scenario, before weighting (negative is a loss), and weighted loss.
    pnl_minor: tuple[int, ...]
    weighted_loss_minor: tuple[int, ...]
    worst_scenario: int
    scan_loss_minor: int
    contingency_minor: int
    maintenance_minor: int
    initial_minor: int
    # Net Greeks in settlement minor units: per tick, per tick squared, per 1.00 of
    # volatility, per year.
    delta_minor: float
    gamma_minor: float
    vega_minor: float
    theta_minor: float


@attrs.frozen(eq=False)
class MarginReport:
    """An account's margin: equity, requirements and the breakdown that produced them."""

    collateral_minor: int
    unrealized_minor: int
    option_value_minor: int
    equity_minor: int
    maintenance_minor: int
    initial_minor: int
    underlyings: tuple[UnderlyingRisk, ...]

    @property
    def meets_initial(self) -> bool:
        """Return whether equity covers initial margin."""
        return self.equity_minor >= self.initial_minor

    @property
    def is_liquidatable(self) -> bool:
        """Return whether the account is below maintenance with something to liquidate."""
        return self.maintenance_minor > 0 and self.equity_minor < self.maintenance_minor


def compute_margin(
    portfolio: Portfolio, market: Market, rules: RuleSet, *, with_greeks: bool = False
) -> MarginReport:
    """Return the margin report of one account (Greeks only if asked for)."""
    return compute_margins([portfolio], market, rules, with_greeks=with_greeks)[0]


def compute_margins(
    portfolios: Sequence[Portfolio], market: Market, rules: RuleSet, *, with_greeks: bool = False
) -> list[MarginReport]:
    """Return the margin report of every account, computed together (vectorised)."""
    groups = _group_exposures(portfolios)
    pnl = _linear_pnl(groups, market, rules)
    options = _option_pnl(groups, market, rules, with_greeks=with_greeks)
    for key, option_pnl in options.pnl.items():
        pnl[key] = [
            a + b for a, b in zip(pnl.get(key, [0] * len(option_pnl)), option_pnl, strict=True)
        ]
    return [
        _account_report(index, portfolio, groups, pnl, options, market, rules)
        for index, portfolio in enumerate(portfolios)
    ]


def _account_report(  # noqa: PLR0913, PLR0917 (one account's slice of the batch)
    index: int,
    portfolio: Portfolio,
    groups: Mapping[tuple[int, str], list[Exposure]],
    pnl: Mapping[tuple[int, str], list[int]],
    options: _OptionResults,
    market: Market,
    rules: RuleSet,
) -> MarginReport:
    risks = tuple(
        _underlying_risk(
            (index, underlying),
            groups[(index, underlying)],
            pnl[(index, underlying)],
            options.greeks.get((index, underlying), (0.0, 0.0, 0.0, 0.0)),
            _bounded_loss(groups[(index, underlying)], options, (index, underlying)),
            market,
            rules,
        )
        for underlying in sorted({u for i, u in groups if i == index})
    )
    collateral_minor = collateral_value_minor(portfolio.balances, market, rules)
    unrealized_minor = sum(
        compute_settlement_minor(
            e.quantity_lots,
            market.index_ticks[e.instrument.underlying],
            e.settled_price_ticks,
            e.instrument.multiplier_minor,
        )
        for e in portfolio.exposures
        if e.instrument.kind is not InstrumentKind.OPTION
    )
    option_value_minor = options.value.get(index, 0)
    return MarginReport(
        collateral_minor,
        unrealized_minor,
        option_value_minor,
        collateral_minor + unrealized_minor + option_value_minor,
        sum(risk.maintenance_minor for risk in risks),
        sum(risk.initial_minor for risk in risks),
        risks,
    )


def collateral_value_minor(balances: Mapping[str, int], market: Market, rules: RuleSet) -> int:
    """Return the haircut value of all balances in valuation minor units (SK-COLLATERAL-1)."""
    total_minor = 0
    for asset, amount_minor in balances.items():
        if asset == rules.valuation_asset:
            total_minor += amount_minor
            continue
        asset_rules = rules.asset_by_symbol[asset]
        underlying = asset_rules.price_underlying
        if underlying is None or underlying not in market.index_ticks:
            continue  # Not collateral, or not yet priced: worth nothing for margin.
        total_minor += compute_collateral_value_minor(
            amount_minor,
            market.index_ticks[underlying],
            rules.underlying_by_symbol[underlying].tick_value_minor,
            asset_rules.decimals,
            asset_rules.haircut_ppm,
        )
    return total_minor


def _group_exposures(
    portfolios: Sequence[Portfolio],
) -> dict[tuple[int, str], list[Exposure]]:
    groups: dict[tuple[int, str], list[Exposure]] = defaultdict(list)
    for index, portfolio in enumerate(portfolios):
        for exposure in portfolio.exposures:
            if exposure.quantity_lots:
                groups[(index, exposure.instrument.underlying)].append(exposure)
    return dict(groups)


def _linear_pnl(
    groups: Mapping[tuple[int, str], list[Exposure]],
    market: Market,
    rules: RuleSet,
) -> dict[tuple[int, str], list[int]]:
    """Exact integer P&L of the linear positions of each group in each scenario."""
    pnl: dict[tuple[int, str], list[int]] = {}
    for key, exposures in groups.items():
        underlying = key[1]
        index_ticks = market.index_ticks[underlying]
        grid = rules.underlying_by_symbol[underlying].scenarios
        moved = [scenario_price_ticks(index_ticks, s.move_ppm) for s in grid]
        exposure_minor = sum(
            e.quantity_lots * e.instrument.multiplier_minor
            for e in exposures
            if e.instrument.kind is not InstrumentKind.OPTION
        )
        pnl[key] = [exposure_minor * (price - index_ticks) for price in moved]
    return pnl


@attrs.frozen(eq=False)
class _OptionResults:
    pnl: dict[tuple[int, str], list[int]]
    value: dict[int, int]
    greeks: dict[tuple[int, str], tuple[float, float, float, float]]
    # Per group: the value of its options, and whether any series is net short.
    group_value: dict[tuple[int, str], int] = attrs.field(factory=dict)
    has_short: set[tuple[int, str]] = attrs.field(factory=set)


def _option_pnl(
    groups: Mapping[tuple[int, str], list[Exposure]],
    market: Market,
    rules: RuleSet,
    *,
    with_greeks: bool,
) -> _OptionResults:
    """Scenario P&L, current value and Greeks of the options, all groups in one pass.

    Each distinct series is valued once per call, now and in every scenario (its risk
    array, as SPAN computes one per contract); positions then scale those values. Every
    operation is element-wise, so a position's numbers do not depend on what else is in the
    batch (SK-MARGIN-DET-1).
    """
    rows = _net_option_series(groups)
    if not rows:
        return _OptionResults({}, {}, {})
    series = sorted({_series_key(key[1], e.instrument) for key, e in rows}, key=repr)
    arrays = _risk_arrays(series, market, rules, with_greeks=with_greeks)
    index = {key: position for position, key in enumerate(series)}
    where = np.array([index[_series_key(key[1], e.instrument)] for key, e in rows])
    prices, forwards, strikes = arrays.prices[where], arrays.forwards[where], arrays.strike[where]
    signed = np.array([float(e.quantity_lots * e.instrument.multiplier_minor) for _, e in rows])
    size = np.abs(signed)
    value = _floor_minor(
        signed * prices[:, 0] - size * (forwards[:, 0] + strikes) * MODEL_ERROR_BOUND
    )
    change = signed[:, None] * (prices[:, 1:] - prices[:, :1])
    error = (
        size[:, None]
        * (forwards[:, 1:] + forwards[:, :1] + 2.0 * strikes[:, None])
        * MODEL_ERROR_BOUND
    )
    scenario_pnl = _floor_minor(change - error)
    results = _OptionResults({}, defaultdict(int), {})
    greeks: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for row, (key, _) in enumerate(rows):
        existing = results.pnl.get(key)
        row_pnl = scenario_pnl[row]
        results.pnl[key] = (
            list(row_pnl)
            if existing is None
            else [a + b for a, b in zip(existing, row_pnl, strict=True)]
        )
        results.value[key[0]] += value[row]
        results.group_value[key] = results.group_value.get(key, 0) + value[row]
        if signed[row] < 0:
            results.has_short.add(key)
        if arrays.greeks is not None:
            sums = greeks[key]
            for greek in range(4):
                sums[greek] += float(signed[row]) * float(arrays.greeks[greek][where[row]])
    results.greeks.update({key: (s[0], s[1], s[2], s[3]) for key, s in greeks.items()})
    return results


def _net_option_series(
    groups: Mapping[tuple[int, str], list[Exposure]],
) -> list[tuple[tuple[int, str], Exposure]]:
    """Net each group's options by series: identical contracts are one risk (SK-PM-2).

    Two listings of the same series offset exactly, so they must cost exactly nothing; netting
    before revaluation also rounds each series once rather than each listing.
    """
    rows: list[tuple[tuple[int, str], Exposure]] = []
    for key, exposures in groups.items():
        netted: dict[tuple[object, ...], Exposure] = {}
        for exposure in exposures:
            spec = exposure.instrument
            if spec.kind is not InstrumentKind.OPTION:
                continue
            series = (spec.expiry_ms, spec.strike_ticks, spec.option_type, spec.multiplier_minor)
            held = netted.get(series)
            quantity = exposure.quantity_lots + (0 if held is None else held.quantity_lots)
            netted[series] = Exposure(spec, quantity, 0)
        rows += [
            (key, e)
            for _, e in sorted(netted.items(), key=lambda item: repr(item[0]))
            if e.quantity_lots
        ]
    return rows


_Series = tuple[str, int | None, int | None, OptionType | None]


def _series_key(underlying: str, spec: Instrument) -> _Series:
    return (underlying, spec.expiry_ms, spec.strike_ticks, spec.option_type)


@attrs.frozen(eq=False)
class _RiskArrays:
    """Per series: its value now (column 0) and in each scenario (columns 1-23)."""

    prices: FloatArray
    forwards: FloatArray
    strike: FloatArray
    # delta, gamma, vega, theta per unit, now; None unless asked for.
    greeks: tuple[FloatArray, FloatArray, FloatArray, FloatArray] | None


def _risk_arrays(
    series: list[_Series], market: Market, rules: RuleSet, *, with_greeks: bool
) -> _RiskArrays:
    forwards, years, volatility, strike, call = [], [], [], [], []
    for underlying, expiry_ms, strike_ticks, option_type in series:
        assert expiry_ms is not None
        assert strike_ticks is not None
        underlying_rules = rules.underlying_by_symbol[underlying]
        index_ticks = market.index_ticks[underlying]
        sigma = market.volatility_ppm[underlying] / PPM
        remaining_ms = max(expiry_ms - market.clock_ms, 0)
        ahead = max(remaining_ms - underlying_rules.lookahead_ms, 0) / YEAR_MS
        grid = underlying_rules.scenarios
        forwards.append(
            [float(index_ticks)]
            + [float(scenario_price_ticks(index_ticks, s.move_ppm)) for s in grid]
        )
        years.append([remaining_ms / YEAR_MS] + [ahead] * len(grid))
        volatility.append(
            [sigma] + [sigma * volatility_multiplier(underlying_rules, s.vol) for s in grid]
        )
        strike.append(float(strike_ticks))
        call.append(option_type is OptionType.CALL)
    f, k, c = np.array(forwards), np.array(strike), np.array(call, dtype=bool)
    prices = black76_price(f, k[:, None], np.array(years), np.array(volatility), c[:, None])
    greeks = None
    if with_greeks:
        now = black76(f[:, 0], k, np.array(years)[:, 0], np.array(volatility)[:, 0], c)
        greeks = (now.delta, now.gamma, now.vega, now.theta)
    return _RiskArrays(prices, f, k, greeks)


def _floor_minor(values: FloatArray) -> list[Any]:
    """Return values rounded down to integers, exactly, as Python ints (SK-PM-4)."""
    floored = np.floor(values)
    if np.all(np.abs(floored) < _INT64_SAFE):
        exact: list[Any] = floored.astype(np.int64).tolist()
        return exact
    # Beyond int64: every float64 of this size is a whole number, and int() is exact.
    large: list[Any] = np.vectorize(int, otypes=[object])(floored).tolist()
    return large


def _underlying_risk(  # noqa: PLR0913, PLR0917 (the pieces of one group's result)
    key: tuple[int, str],
    exposures: list[Exposure],
    pnl_minor: list[int],
    option_greeks: tuple[float, float, float, float],
    bounded_loss_minor: int | None,
    market: Market,
    rules: RuleSet,
) -> UnderlyingRisk:
    underlying = key[1]
    underlying_rules = rules.underlying_by_symbol[underlying]
    grid = underlying_rules.scenarios
    # Weighted loss = ceil(-pnl * weight): a loss rounds up, a gain rounds towards zero.
    weighted = [-((pnl * s.weight_ppm) // PPM) for pnl, s in zip(pnl_minor, grid, strict=True)]
    # The first scenario with the largest weighted loss (ties go to the earlier scenario).
    worst = max(range(len(grid)), key=lambda s: (weighted[s], -s))
    scan_loss_minor = max(weighted[worst], 0)
    contingency_minor = _short_option_contingency(exposures, market, underlying_rules)
    maintenance_minor = scan_loss_minor + contingency_minor
    initial_minor = ceil_div(maintenance_minor * underlying_rules.im_multiplier_ppm, PPM)
    if bounded_loss_minor is not None:
        # [SK-PM-3] Long options alone can lose no more than they are worth: as SPAN caps a
        # long option's requirement at its value, initial margin is capped there too (never
        # below maintenance), so a fully paid option never needs more.
        initial_minor = max(maintenance_minor, min(initial_minor, bounded_loss_minor))
    linear_delta = float(
        sum(
            e.quantity_lots * e.instrument.multiplier_minor
            for e in exposures
            if e.instrument.kind is not InstrumentKind.OPTION
        )
    )
    delta, gamma, vega, theta = option_greeks
    return UnderlyingRisk(
        underlying,
        grid,
        tuple(pnl_minor),
        tuple(weighted),
        worst,
        scan_loss_minor,
        contingency_minor,
        maintenance_minor,
        initial_minor,
        linear_delta + delta,
        gamma,
        vega,
        theta,
    )


def _bounded_loss(
    exposures: list[Exposure], options: _OptionResults, key: tuple[int, str]
) -> int | None:
    """Return the group's option value if its loss is bounded by it (net long options only)."""
    if key in options.has_short or key not in options.group_value:
        return None
    # Linear positions that net to zero carry no risk (their scenario P&L is exactly 0).
    if sum(
        e.quantity_lots * e.instrument.multiplier_minor
        for e in exposures
        if e.instrument.kind is not InstrumentKind.OPTION
    ):
        return None
    return max(options.group_value[key], 0)


def _short_option_contingency(
    exposures: list[Exposure], market: Market, rules: UnderlyingRules
) -> int:
    """Net short contracts per identical series, times the minimum (SK-PM-3)."""
    net: dict[tuple[int | None, int | None, OptionType | None, int], int] = defaultdict(int)
    for e in exposures:
        i = e.instrument
        if i.kind is InstrumentKind.OPTION:
            net[(i.expiry_ms, i.strike_ticks, i.option_type, i.multiplier_minor)] += e.quantity_lots
    index_ticks = market.index_ticks[rules.symbol]
    short_notional_minor = sum(
        -quantity * index_ticks * multiplier
        for (_, _, _, multiplier), quantity in net.items()
        if quantity < 0
    )
    return ceil_div(short_notional_minor * rules.short_option_minimum_ppm, PPM)
