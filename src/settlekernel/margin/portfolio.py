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

Equity = collateral value after haircuts + the account's credit with the fund (claims less
debts, SK-DEBT) + unrealised P&L of linear positions at the index + the value of options at
their current Black-76 price (rounded against the account).

The engine is vectorised across all the accounts it is given (the benchmark margins 10k
accounts in one call); the kernel calls it with one account. Nothing here reads the kernel's
state: the inputs are balances, exposures and a market snapshot.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Mapping, Sequence

import attrs

from settlekernel.core.arith import (
    ceil_div,
    compute_collateral_value_minor,
    compute_settlement_minor,
)
from settlekernel.core.kinds import InstrumentKind
from settlekernel.core.model import Instrument
from settlekernel.core.reports import MarginReport, UnderlyingRisk
from settlekernel.core.rules import RuleSet, UnderlyingRules
from settlekernel.core.scenarios import scenario_price_ticks
from settlekernel.core.units import PPM
from settlekernel.margin.options import (
    OptionResults,
    option_results,
)


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
    """An account's collateral balances and positions, and its credit with the fund.

    ``credit_minor`` is its claim on the insurance fund less its debt to it, in the
    valuation asset (SK-DEBT): it counts in equity at par and asks no margin.
    """

    balances: Mapping[str, int]
    exposures: Sequence[Exposure]
    credit_minor: int = 0


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
    options = option_results(groups, market, rules, with_greeks=with_greeks)
    for key, option_pnl in options.pnl.items():
        pnl[key] = [
            a + b for a, b in zip(pnl.get(key, [0] * len(option_pnl)), option_pnl, strict=True)
        ]
    underlyings_of: dict[int, list[str]] = defaultdict(list)
    for index, underlying in groups:  # Groups are built account by account, in order.
        underlyings_of[index].append(underlying)
    return [
        _account_report(
            index, portfolio, sorted(underlyings_of[index]), groups, pnl, options, market, rules
        )
        for index, portfolio in enumerate(portfolios)
    ]


def _account_report(  # noqa: PLR0913, PLR0917 (one account's slice of the batch)
    index: int,
    portfolio: Portfolio,
    underlyings: list[str],
    groups: Mapping[tuple[int, str], list[Exposure]],
    pnl: Mapping[tuple[int, str], list[int]],
    options: OptionResults,
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
            options.short_contracts.get((index, underlying), 0),
            market,
            rules,
        )
        for underlying in underlyings
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
        collateral_minor + portfolio.credit_minor + unrealized_minor + option_value_minor,
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
    moves: dict[str, list[int]] = {}
    for key, exposures in groups.items():
        underlying = key[1]
        index_ticks = market.index_ticks[underlying]
        if underlying not in moves:
            moves[underlying] = list(
                scenario_moves(rules.underlying_by_symbol[underlying], index_ticks)
            )
        exposure_minor = sum(
            e.quantity_lots * e.instrument.multiplier_minor
            for e in exposures
            if e.instrument.kind is not InstrumentKind.OPTION
        )
        pnl[key] = [exposure_minor * move for move in moves[underlying]]
    return pnl


@functools.lru_cache(maxsize=4_096)
def scenario_moves(underlying_rules: UnderlyingRules, index_ticks: int) -> tuple[int, ...]:
    """Return the index move of each scenario, in ticks (integers; memoised, SK-MARGIN-DET-2)."""
    return tuple(
        scenario_price_ticks(index_ticks, s.move_ppm) - index_ticks
        for s in underlying_rules.scenarios
    )


def calendar_spread_exposure(exposures: Sequence[Exposure]) -> int:
    """Return the linear exposure that offsets across instruments (SK-PM-7), lots x multiplier.

    Every perpetual and future is valued at the one index, so a long in one and a short in
    another net to nothing in the scenarios; but each settles at its own mark, and a future
    at its own expiry. The offset part, the lesser of the long and the short totals, is what
    only the basis between them can move.
    """
    net: defaultdict[str, int] = defaultdict(int)
    for e in exposures:
        if e.instrument.kind is not InstrumentKind.OPTION:
            net[e.instrument.id] += e.quantity_lots * e.instrument.multiplier_minor
    longs = sum(exposure for exposure in net.values() if exposure > 0)
    shorts = -sum(exposure for exposure in net.values() if exposure < 0)
    return min(longs, shorts)


def _underlying_risk(  # noqa: PLR0913, PLR0917 (the pieces of one group's result)
    key: tuple[int, str],
    exposures: list[Exposure],
    pnl_minor: list[int],
    option_greeks: tuple[float, float, float, float],
    bounded_loss_minor: int | None,
    short_notional_minor: int,
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
    contingency_minor = ceil_div(
        short_notional_minor
        * market.index_ticks[underlying]
        * underlying_rules.short_option_minimum_ppm,
        PPM,
    )
    calendar_minor = ceil_div(
        calendar_spread_exposure(exposures)
        * market.index_ticks[underlying]
        * underlying_rules.calendar_spread_ppm,
        PPM,
    )
    maintenance_minor = scan_loss_minor + contingency_minor + calendar_minor
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
        calendar_minor,
        maintenance_minor,
        initial_minor,
        linear_delta + delta,
        gamma,
        vega,
        theta,
    )


def _bounded_loss(
    exposures: list[Exposure], options: OptionResults, key: tuple[int, str]
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
