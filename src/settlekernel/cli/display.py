"""Human-readable renderings for the shell (CLI, demo): integer arithmetic only."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from settlekernel.core.events import Expire, Liquidate, OraclePrice
from settlekernel.core.oracle import validity
from settlekernel.core.outcomes import Outcome, Posting, PostingCode, Rejected
from settlekernel.core.units import CLEARING_ACCOUNT, INSURANCE_ACCOUNT
from settlekernel.margin.accounts import account_margin

if TYPE_CHECKING:
    from settlekernel.core.model import State
    from settlekernel.core.reports import MarginReport, UnderlyingRisk


def format_minor(amount_minor: int, decimals: int, *, places: int | None = None) -> str:
    """Render minor units as a decimal with thousands separators, exactly (no float).

    ``places`` truncates the fraction for display (towards zero); the ledger is untouched.
    """
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**decimals)
    text = f"{sign}{whole:,}"
    if decimals == 0:
        return text
    digits = str(fraction).rjust(decimals, "0")
    if places is not None:
        digits = digits[:places]
    return f"{text}.{digits}" if digits else text


def accounts_table(state: State, *, title: str = "Accounts") -> Table:
    """Return a table of every account's balances and positions."""
    table = Table(title=title, title_justify="left")
    table.add_column("account")
    table.add_column("owner")
    table.add_column("balances", justify="right")
    table.add_column("positions (lots @ settled ticks)")
    decimals = {asset.symbol: asset.decimals for asset in state.rules.assets}
    for account_id in sorted(state.accounts):
        account = state.accounts[account_id]
        if account.owner.startswith("@") and not account.balances:
            continue
        valuation = state.rules.valuation_asset
        owed = [
            f"{label} {format_minor(amount, decimals[valuation], places=2)} {valuation}"
            for label, amount in (("owes", account.debt_minor), ("owed", account.claim_minor))
            if amount
        ]
        balances = (
            "\n".join(
                [
                    f"{format_minor(amount, decimals[asset], places=2)} {asset}"
                    for asset, amount in sorted(account.balances.items())
                ]
                + owed
            )
            or "-"
        )
        positions = (
            "\n".join(
                f"{instrument}: {position.quantity_lots:+,} @ {position.settled_price_ticks:,}"
                for instrument, position in sorted(account.positions.items())
            )
            or "-"
        )
        table.add_row(account_id, account.owner, balances, positions)
    return table


def margin_table(state: State, *, title: str = "Margin (USDC)") -> Table:
    """Return each trading account's equity, requirements and worst scenario."""
    table = Table(title=title, title_justify="left")
    for name in ("account", "collateral", "equity", "maintenance", "initial", "worst scenario"):
        table.add_column(name, justify="left" if name in ("account", "worst scenario") else "right")
    decimals = state.rules.asset_by_symbol[state.rules.valuation_asset].decimals
    for account_id in sorted(state.accounts):
        account = state.accounts[account_id]
        if account.owner.startswith("@"):
            continue
        report = account_margin(state, account)
        worst = max(report.underlyings, key=lambda r: r.maintenance_minor, default=None)
        scenario = (
            "-"
            if worst is None or worst.scan_loss_minor == 0
            else (f"{worst.underlying} {worst.scenarios[worst.worst_scenario].label}")
        )
        status = " [red]LIQUIDATABLE[/red]" if report.is_liquidatable else ""
        table.add_row(
            account_id + status,
            *(
                format_minor(value, decimals, places=2)
                for value in (
                    report.collateral_minor,
                    report.equity_minor,
                    report.maintenance_minor,
                    report.initial_minor,
                )
            ),
            scenario,
        )
    return table


def margin_report_tables(report: MarginReport, decimals: int, asset: str) -> list[Table]:
    """Return the summary, per-underlying, scenario and Greeks tables of a margin report."""
    money = {"places": 2}
    summary = Table(title=f"Margin ({asset})", title_justify="left")
    summary.add_column("item")
    summary.add_column("value", justify="right")
    for name, value in (
        ("collateral after haircuts", report.collateral_minor),
        ("unrealised P&L (linear)", report.unrealized_minor),
        ("option value", report.option_value_minor),
        ("equity", report.equity_minor),
        ("maintenance requirement", report.maintenance_minor),
        ("initial requirement", report.initial_minor),
    ):
        summary.add_row(name, format_minor(value, decimals, **money))
    summary.add_row("meets initial", "yes" if report.meets_initial else "[red]no[/red]")
    summary.add_row("liquidatable", "[red]yes[/red]" if report.is_liquidatable else "no")
    tables = [summary]
    for risk in report.underlyings:
        tables += [_scenario_table(risk, decimals, asset), _greeks_table(risk, decimals, asset)]
    return tables


def _scenario_table(risk: UnderlyingRisk, decimals: int, asset: str) -> Table:
    scan, extra, calendar, maintenance, initial = (
        format_minor(value, decimals, places=2)
        for value in (
            risk.scan_loss_minor,
            risk.contingency_minor,
            risk.calendar_minor,
            risk.maintenance_minor,
            risk.initial_minor,
        )
    )
    spread = f" + calendar {calendar}" if risk.calendar_minor else ""
    table = Table(
        title=f"{risk.underlying}: scan loss {scan} + contingency {extra}{spread} = maintenance "
        f"{maintenance}; initial {initial} {asset}",
        title_justify="left",
    )
    for name in ("#", "scenario", f"P&L ({asset})", "counted loss"):
        table.add_column(name, justify="left" if name in ("#", "scenario") else "right")
    for number, scenario in enumerate(risk.scenarios):
        worst = " <- worst" if number == risk.worst_scenario and risk.scan_loss_minor else ""
        table.add_row(
            str(number + 1),
            scenario.label,
            format_minor(risk.pnl_minor[number], decimals, places=2),
            format_minor(risk.weighted_loss_minor[number], decimals, places=2) + worst,
        )
    return table


def _greeks_table(risk: UnderlyingRisk, decimals: int, asset: str) -> Table:
    unit = 10**decimals
    table = Table(title=f"{risk.underlying}: net Greeks ({asset})", title_justify="left")
    table.add_column("Greek")
    table.add_column("value", justify="right")
    table.add_column("per")
    table.add_row("delta", f"{risk.delta_minor / unit:,.6f}", "tick of the index")
    table.add_row("gamma", f"{risk.gamma_minor / unit:.4e}", "tick, squared")
    vega_per_point = risk.vega_minor / unit / VOLATILITY_POINTS_PER_UNIT
    table.add_row("vega", f"{vega_per_point:,.2f}", "volatility point")
    table.add_row("theta", f"{risk.theta_minor / unit / DAYS_PER_YEAR:,.2f}", "day")
    return table


def labelled_lines(rows: Sequence[tuple[str, str | Text]]) -> Table:
    """Return ``label  value`` lines whose values wrap between words under their own indent.

    A value wraps at spaces only, so a digest, a path or an identifier stays whole on its line
    (a word longer than the terminal is the one exception, folded rather than cut off).
    """
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows:
        grid.add_row(label, value)
    return grid


def count_of(number: int, noun: str) -> str:
    """Say ``1 posting``, ``0 postings``, ``2 postings``: the noun agrees with the number."""
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


# Days and volatility points per the engine's Greek units (per year, per 1.00 of volatility).
DAYS_PER_YEAR = 365
VOLATILITY_POINTS_PER_UNIT = 100


def margin_report_json(report: MarginReport, decimals: int, asset: str) -> dict[str, object]:
    """Return a margin report as plain JSON values, counted and scaled as the text tables.

    Amounts are integers in minor units of ``asset``; scenarios are numbered from 1, as in
    the table; the Greeks are per tick, per day and per volatility point, as printed.
    """
    return {
        "units": {
            "asset": asset,
            "minor_per_unit": 10**decimals,
            "*_minor": f"integer minor units of {asset} (1 {asset} = 10**{decimals})",
            "greeks": "float minor units of the asset per tick of the index (delta), per "
            "tick squared (gamma), per volatility point, 0.01 (vega), per day (theta)",
            "scenarios": "numbered from 1, as in the text output",
        },
        "collateral_minor": report.collateral_minor,
        "unrealized_minor": report.unrealized_minor,
        "option_value_minor": report.option_value_minor,
        "equity_minor": report.equity_minor,
        "maintenance_minor": report.maintenance_minor,
        "initial_minor": report.initial_minor,
        "meets_initial": report.meets_initial,
        "liquidatable": report.is_liquidatable,
        "underlyings": [_risk_json(risk) for risk in report.underlyings],
    }


def _risk_json(risk: UnderlyingRisk) -> dict[str, object]:
    return {
        "underlying": risk.underlying,
        "scenarios": [
            {
                "number": number + 1,
                "label": scenario.label,
                "pnl_minor": risk.pnl_minor[number],
                "counted_loss_minor": risk.weighted_loss_minor[number],
            }
            for number, scenario in enumerate(risk.scenarios)
        ],
        "worst_scenario_number": risk.worst_scenario + 1,
        "scan_loss_minor": risk.scan_loss_minor,
        "contingency_minor": risk.contingency_minor,
        "calendar_minor": risk.calendar_minor,
        "maintenance_minor": risk.maintenance_minor,
        "initial_minor": risk.initial_minor,
        "greeks": {
            "delta_minor_per_tick": risk.delta_minor,
            "gamma_minor_per_tick_squared": risk.gamma_minor,
            "vega_minor_per_volatility_point": risk.vega_minor / VOLATILITY_POINTS_PER_UNIT,
            "theta_minor_per_day": risk.theta_minor / DAYS_PER_YEAR,
        },
    }


def describe_outcome(before: State, event: object, outcome: Outcome) -> str:
    """Say in a line what an accepted step did, for a timeline (the demo's third column)."""
    if isinstance(outcome, Rejected):
        return f"[red]rejected[/red]: {outcome.reason.value}"
    after = outcome.state
    usdc = before.rules.asset_by_symbol[before.rules.valuation_asset].decimals
    if isinstance(event, OraclePrice):
        old, new = before.prices.get(event.underlying), after.prices.get(event.underlying)
        if new is None or new == old:
            return "report stored; the index does not move"
        state_now = validity(after, event.underlying).value.replace("_", " ")
        return f"index {format_minor(new.price_ticks, 2)} ({state_now})"
    if isinstance(event, Liquidate):
        return _describe_liquidation(before, after, event, outcome.postings, usdc)
    if isinstance(event, Expire):
        instrument = after.instruments[event.instrument]
        assert instrument.settlement_ticks is not None
        paid = sum(
            p.amount_minor
            for p in outcome.postings
            if p.code is PostingCode.EXPIRY_SETTLEMENT and p.debit_account == CLEARING_ACCOUNT
        )
        holders = len(before.holders[event.instrument])
        debts = _debts(after) - _debts(before)
        extra = (
            f"; {format_minor(debts, usdc, places=2)} owed to the fund as debts" if debts else ""
        )
        return (
            f"settled at {format_minor(instrument.settlement_ticks, 2)}: {holders} holders, "
            f"{format_minor(paid, usdc, places=2)} USDC paid{extra}"
        )
    return f"[green]accepted[/green], {count_of(len(outcome.postings), 'posting')}"


def _debts(state: State) -> int:
    """Return what all accounts owe the insurance fund (SK-DEBT)."""
    return sum(state.accounts[account_id].debt_minor for account_id in state.debtors)


def _claims(state: State) -> int:
    """Return what the insurance fund owes all claimants (SK-DEBT)."""
    return sum(state.accounts[account_id].claim_minor for account_id in state.claimants)


def _describe_liquidation(
    before: State, after: State, event: Liquidate, postings: tuple[Posting, ...], usdc: int
) -> str:
    parts = []
    for instrument_id, position in sorted(before.accounts[event.account].positions.items()):
        left = after.accounts[event.account].positions.get(instrument_id)
        closed = position.quantity_lots - (0 if left is None else left.quantity_lots)
        parts.append(f"closed {closed:,} of {position.quantity_lots:,} {instrument_id}")
    totals: dict[PostingCode, int] = {}
    for p in postings:
        if p.asset == before.rules.valuation_asset:
            totals[p.code] = totals.get(p.code, 0) + p.amount_minor
    sold = sorted(
        {p.asset for p in postings if p.code is PostingCode.COLLATERAL_SALE}
        - {before.rules.valuation_asset}
    )
    if sold:
        parts.append(f"sold {', '.join(sold)} at the liquidation discount")
    for code, label in (
        (PostingCode.PENALTY, "penalty to the fund"),
        (PostingCode.INSURANCE, "the fund paid"),
        (PostingCode.DEBT_REPAYMENT, "debt repaid"),
        (PostingCode.CLAIM_PAYMENT, "claims paid"),
    ):
        if code in totals:
            parts.append(f"{label} {format_minor(totals[code], usdc, places=2)}")
    for p in postings:
        if p.code is PostingCode.ADL:
            account = p.credit_account
            gave = {
                i: before.accounts[account].positions[i].quantity_lots
                - (
                    after.accounts[account].positions[i].quantity_lots
                    if i in after.accounts[account].positions
                    else 0
                )
                for i in before.accounts[account].positions
            }
            lots = ", ".join(f"{abs(q):,} {i}" for i, q in sorted(gave.items()) if q)
            parts.append(
                f"ADL: {account} gives up {lots}, paid "
                f"{format_minor(p.amount_minor, usdc, places=2)}"
            )
    return "; ".join(parts)


def waterfall_summary(state: State, outcomes: list[Outcome]) -> Table:
    """Return where losses went over a session: the fund, deleveraging, socialisation."""
    asset = state.rules.valuation_asset
    usdc = state.rules.asset_by_symbol[asset].decimals
    totals: dict[tuple[PostingCode, str], int] = {}
    for outcome in outcomes:
        if isinstance(outcome, Rejected):
            continue
        for p in outcome.postings:
            if p.asset != asset:
                continue
            key = (p.code, p.credit_account if p.code is PostingCode.ADL else "")
            totals[key] = totals.get(key, 0) + p.amount_minor
    table = Table(title=f"The loss waterfall over the session ({asset})", title_justify="left")
    table.add_column("item")
    table.add_column("amount", justify="right")
    rows = [
        ("penalties paid into the insurance fund", totals.get((PostingCode.PENALTY, ""), 0)),
        ("shortfalls the insurance fund paid", totals.get((PostingCode.INSURANCE, ""), 0)),
        ("insurance fund now", state.accounts[INSURANCE_ACCOUNT].balance(asset)),
    ]
    rows += [
        (f"paid to {account} for the profit it gave up (ADL)", amount)
        for (code, account), amount in sorted(totals.items(), key=lambda item: item[0][1])
        if code is PostingCode.ADL
    ]
    rows += [
        (label, totals.get((code, ""), 0))
        for code, label in (
            (PostingCode.ADVANCE, "advanced by the fund to receivers of an unpaid mark or expiry"),
            (PostingCode.DEBT_REPAYMENT, "debts repaid to the fund"),
            (PostingCode.CLAIM_PAYMENT, "claims the fund paid"),
        )
        if (code, "") in totals
    ]
    rows += [
        ("debts still owed to the fund", _debts(state)),
        ("claims still owed by the fund", _claims(state)),
    ]
    rows.append(("socialised loss", state.socialized_loss.get(asset, 0)))
    for item, amount in rows:
        table.add_row(item, format_minor(amount, usdc, places=2))
    return table
