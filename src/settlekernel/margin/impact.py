"""What a rule change would do to the accounts of a state, before anyone proposes it (SK-GOV-2).

A protocol designer checking new rules wants three answers: do the theorems still hold
(``settlekernel verify --rules NEW --against OLD``), how do the rules fare on stress paths
(``settlekernel sweep``), and which accounts that exist today the change alone would move
below initial or maintenance margin. This module answers the third, on the state a journal
holds, with the market of that state: every account is margined under both rule sets, from
scratch, and those the change moves across a line are listed with both requirements.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from settlekernel.core.units import SYSTEM_OWNER
from settlekernel.margin.accounts import market_of, portfolio_of
from settlekernel.margin.portfolio import compute_margin

if TYPE_CHECKING:
    from settlekernel.core.model import State
    from settlekernel.core.reports import MarginReport
    from settlekernel.core.rules import RuleSet


@attrs.frozen
class AccountShift:
    """One account the change moves across a margin line: its equity and both requirements."""

    account: str
    line: str  # "maintenance" or "initial"
    equity_minor: int
    old_requirement_minor: int
    new_requirement_minor: int


@attrs.frozen
class RuleChangeImpact:
    """The accounts a rule change moves below a margin line, or why it cannot apply at all."""

    incompatible: tuple[str, ...]
    shifts: tuple[AccountShift, ...]
    accounts_checked: int

    @property
    def below_maintenance(self) -> tuple[AccountShift, ...]:
        """Return the accounts the change alone would make liquidatable."""
        return tuple(shift for shift in self.shifts if shift.line == "maintenance")

    @property
    def below_initial(self) -> tuple[AccountShift, ...]:
        """Return the accounts the change alone would put below initial margin (not below MM)."""
        return tuple(shift for shift in self.shifts if shift.line == "initial")


def incompatibilities(state: State, new_rules: RuleSet) -> tuple[str, ...]:
    """Return why ``new_rules`` cannot govern ``state`` as it is: what they would orphan."""
    found: list[str] = []
    old_rules = state.rules
    if new_rules.valuation_asset != old_rules.valuation_asset:
        found.append(
            f"valuation asset changes from {old_rules.valuation_asset} to "
            f"{new_rules.valuation_asset}: every balance and requirement would change unit"
        )
    held = set(state.custody) | {a for x in state.accounts.values() for a in x.balances}
    found += [
        f"asset {asset} is held but not in the new rules"
        for asset in sorted(held - set(new_rules.asset_by_symbol))
    ]
    listed = {instrument.underlying for instrument in state.instruments.values()}
    found += [
        f"underlying {underlying} has listed instruments but is not in the new rules"
        for underlying in sorted(listed - set(new_rules.underlying_by_symbol))
    ]
    if set(new_rules.roles.matchers) != set(old_rules.roles.matchers):
        found.append("roles.matchers changes: house venues are fixed at genesis (SK-VENUE-1)")
    found += _unit_changes(state, new_rules)
    return tuple(found)


def _unit_changes(state: State, new_rules: RuleSet) -> list[str]:
    """Return the changes of unit a live ledger cannot take, and role names venues hold.

    [SK-GOV-3] Balances are stored in minor units and prices in ticks, so the decimals of an
    asset and the tick value of an underlying with listed instruments are fixed once used;
    a role principal may not be the id of an admitted venue (SK-VENUE-1).
    """
    found: list[str] = []
    old_assets, new_assets = state.rules.asset_by_symbol, new_rules.asset_by_symbol
    found += [
        f"asset {symbol} decimals change from {old_assets[symbol].decimals} to "
        f"{new_assets[symbol].decimals}: every balance is in its minor units"
        for symbol in sorted(set(old_assets) & set(new_assets))
        if old_assets[symbol].decimals != new_assets[symbol].decimals
    ]
    old_under, new_under = state.rules.underlying_by_symbol, new_rules.underlying_by_symbol
    listed = {instrument.underlying for instrument in state.instruments.values()}
    found += [
        f"underlying {symbol} tick_value_minor changes from {old_under[symbol].tick_value_minor}"
        f" to {new_under[symbol].tick_value_minor}: its instruments are priced in ticks"
        for symbol in sorted(listed & set(new_under))
        if old_under[symbol].tick_value_minor != new_under[symbol].tick_value_minor
    ]
    roles = new_rules.roles
    principals = {roles.operator, *roles.oracles, roles.sequencer, roles.governor}
    found += [
        f"role principal {venue_id} is an admitted venue (SK-VENUE-1)"
        for venue_id in sorted(principals)
        if venue_id in state.venues and not state.venues[venue_id].house
    ]
    return found


def rule_change_impact(state: State, new_rules: RuleSet) -> RuleChangeImpact:
    """Return the accounts of ``state`` that ``new_rules`` alone would move below a line.

    An account is listed under ``maintenance`` if its equity meets maintenance under the
    rules in force and not under the new ones, and under ``initial`` if the same holds of
    initial margin while it stays above maintenance. Pure: reads ``state`` only.
    """
    problems = incompatibilities(state, new_rules)
    if problems:
        return RuleChangeImpact(problems, (), 0)
    market = market_of(state)
    shifts: list[AccountShift] = []
    checked = 0
    for account_id in sorted(state.accounts):
        account = state.accounts[account_id]
        if account.owner == SYSTEM_OWNER:
            continue
        checked += 1
        portfolio = portfolio_of(account, state.instruments)
        old = compute_margin(portfolio, market, state.rules)
        new = compute_margin(portfolio, market, new_rules)
        shift = _shift(account_id, old, new)
        if shift is not None:
            shifts.append(shift)
    return RuleChangeImpact((), tuple(shifts), checked)


def _shift(account_id: str, old: MarginReport, new: MarginReport) -> AccountShift | None:
    for line, old_need, new_need in (
        ("maintenance", old.maintenance_minor, new.maintenance_minor),
        ("initial", old.initial_minor, new.initial_minor),
    ):
        if old.equity_minor >= old_need and new.equity_minor < new_need:
            return AccountShift(account_id, line, new.equity_minor, old_need, new_need)
    return None
