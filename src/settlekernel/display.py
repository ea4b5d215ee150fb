"""Human-readable renderings for the shell (CLI, demo): integer arithmetic only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

if TYPE_CHECKING:
    from settlekernel.model import State


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
        balances = (
            "\n".join(
                f"{format_minor(amount, decimals[asset], places=2)} {asset}"
                for asset, amount in sorted(account.balances.items())
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
