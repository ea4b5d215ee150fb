"""The margin of the kernel's accounts: from a state to the margin engine and back (SK-MARGIN).

The engine (``settlekernel.margin``) knows nothing of the state; this module builds its
inputs from an account and a state, applies the kernel's margin rules, and keeps a cache so
that an account's margin is recomputed only when its positions, its collateral or a market
input it depends on change (SK-MARGIN-CACHE-1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from immutables import Map

from settlekernel.core.kinds import InstrumentKind
from settlekernel.core.model import Account, MarginEntry
from settlekernel.core.oracle import Action, check_admissible
from settlekernel.core.outcomes import Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.reports import MarginReport
from settlekernel.margin.portfolio import Exposure, Market, Portfolio
from settlekernel.margin.single import compute_account_margin

if TYPE_CHECKING:
    from settlekernel.core.model import Instrument, State


def market_of(state: State) -> Market:
    """Return the engine's view of the market: clock, index and volatility per underlying."""
    return Market(
        state.clock_ms,
        {underlying: price.price_ticks for underlying, price in state.prices.items()},
        {underlying: vol.volatility_ppm for underlying, vol in state.volatilities.items()},
    )


def portfolio_of(account: Account, instruments: Map[str, Instrument]) -> Portfolio:
    """Return the engine's view of an account: balances, exposures, credit with the fund."""
    return Portfolio(
        account.balances,
        [
            Exposure(
                instruments[instrument_id], position.quantity_lots, position.settled_price_ticks
            )
            for instrument_id, position in account.positions.items()
        ],
        account.claim_minor - account.debt_minor,
    )


def margin_underlyings(
    state: State, account: Account, instruments: Map[str, Instrument] | None = None
) -> set[str]:
    """Return the underlyings an account's margin reads: its positions' and its collateral's."""
    instruments = state.instruments if instruments is None else instruments
    underlyings = {instruments[i].underlying for i in account.positions}
    for asset in account.balances:
        price_underlying = state.rules.asset_by_symbol[asset].price_underlying
        if price_underlying is not None:
            underlyings.add(price_underlying)
    return underlyings


def check_margin_admissible(state: State, *accounts: Account) -> Rejected | None:
    """Reject a margin check that would read a price the oracle does not admit (SK-ORACLE-5).

    An account without positions needs no price: its requirement is 0 and its equity is
    never negative, whatever the prices.
    """
    underlyings: set[str] = set()
    for account in accounts:
        if account.positions:
            underlyings |= margin_underlyings(state, account)
    return check_admissible(state, underlyings, Action.MARGIN)


def market_key(
    state: State, account: Account, instruments: Map[str, Instrument]
) -> tuple[object, ...]:
    """Return the market inputs an account's margin reads (SK-MARGIN-CACHE-1).

    The rule set; the index and volatility of every underlying its positions are written on
    or its collateral is priced by; and the clock if it holds an option, whose value decays.
    """
    underlyings = margin_underlyings(state, account, instruments)
    has_options = any(instruments[i].kind is InstrumentKind.OPTION for i in account.positions)
    key: list[object] = [state.rules, state.clock_ms if has_options else None]
    for underlying in sorted(underlyings):
        key += [state.prices.get(underlying), state.volatilities.get(underlying)]
    return tuple(key)


def account_margin(
    state: State, account: Account, instruments: Map[str, Instrument] | None = None
) -> MarginReport:
    """Return ``account``'s margin report, from the cache when its inputs are unchanged."""
    return margin_entry(state, account, instruments).report


def margin_entry(
    state: State, account: Account, instruments: Map[str, Instrument] | None = None
) -> MarginEntry:
    """Return ``account``'s cache entry: the cached one while valid, else a fresh one.

    The key is computed once and kept with the report, so caching it costs nothing more.
    """
    instruments = state.instruments if instruments is None else instruments
    key = market_key(state, account, instruments)
    entry = state.margins.get(account.id)
    if entry is not None and entry.account is account and entry.market_key == key:
        return entry
    portfolio = portfolio_of(account, instruments)
    report = compute_account_margin(portfolio, market_of(state), state.rules)
    return MarginEntry(account, key, report)


def cache_margins(state: State, entries: list[MarginEntry]) -> Map[str, MarginEntry]:
    """Return the margin cache with the entries of accounts just checked."""
    margins = state.margins.mutate()
    for entry in entries:
        margins[entry.account.id] = entry
    return margins.finish()


def check_initial_margin(
    state: State, account: Account, instruments: Map[str, Instrument] | None = None
) -> tuple[Rejected | None, MarginEntry]:
    """Reject a would-be account below initial margin (SK-MARGIN-2)."""
    entry = margin_entry(state, account, instruments)
    if entry.report.meets_initial:
        return None, entry
    return _insufficient(account, entry.report), entry


def check_trade_margin(
    state: State, before: Account, after: Account, instruments: Map[str, Instrument]
) -> tuple[Rejected | None, MarginEntry]:
    """Reject a trade that leaves an account below initial margin, unless it reduces risk.

    [SK-MARGIN-3] A trade that leaves an account below initial margin is accepted only if it
    does not raise the account's maintenance requirement and does not worsen its ratio of
    equity to maintenance (compared by cross-multiplication), as dYdX v4 does: an account in
    trouble may always reduce its risk, never add to it.
    """
    entry = margin_entry(state, after, instruments)
    report = entry.report
    if report.meets_initial:
        return None, entry
    prior = account_margin(state, before)
    reduces_risk = report.maintenance_minor <= prior.maintenance_minor and (
        report.equity_minor * prior.maintenance_minor
        >= prior.equity_minor * report.maintenance_minor
    )
    if reduces_risk and prior.maintenance_minor > 0:
        return None, entry
    return _insufficient(after, report), entry


def _insufficient(account: Account, report: MarginReport) -> Rejected:
    return Rejected(
        Reason.MARGIN_INSUFFICIENT,
        f"account {account.id}: equity {report.equity_minor} would be below initial margin "
        f"{report.initial_minor} (maintenance {report.maintenance_minor}; valuation-asset "
        "minor units)",
    )


def margin_report(state: State, account_id: str) -> MarginReport | None:
    """Return the margin report of an account, or None if it does not exist."""
    account = state.accounts.get(account_id)
    return None if account is None else account_margin(state, account)


def is_liquidatable(state: State, account_id: str) -> bool:
    """Return whether an account's equity is below its maintenance margin (SK-PM-6)."""
    report = margin_report(state, account_id)
    return report is not None and report.is_liquidatable
