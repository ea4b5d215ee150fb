"""What the margin engine reports: an account's margin and its per-underlying breakdown.

These records are produced by ``settlekernel.margin`` and kept in the state's margin cache
(SK-MARGIN-CACHE-1), so they sit in the core, below both.
"""

from __future__ import annotations

import attrs

from settlekernel.core.scenarios import Scenario


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
    # The calendar-spread charge on linear positions offsetting across instruments (SK-PM-7).
    calendar_minor: int
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
    """An account's margin: equity, requirements and the breakdown that produced them.

    Equity is the collateral value, plus the account's claims on the insurance fund less its
    debts to it (SK-DEBT), plus the unrealised P&L and the options' value.
    """

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
        """Return whether equity is below maintenance (SK-PM-6); never without positions."""
        return self.equity_minor < self.maintenance_minor
