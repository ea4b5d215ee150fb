"""Small pure builders for new accounts and states; no checks, no branching on rules.

States stay canonical (INV-CANONICAL-FORM): a zero balance or a zero position is removed
rather than stored, so two states with the same economic content encode, and hash, alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from settlekernel.core.model import Account, Position

if TYPE_CHECKING:
    from immutables import Map


def with_balance(account: Account, asset: str, amount_minor: int) -> Account:
    """Return ``account`` holding ``amount_minor`` of ``asset``."""
    assert amount_minor >= 0, (account.id, asset, amount_minor)
    if amount_minor == 0:
        balances = (
            account.balances.delete(asset) if asset in account.balances else (account.balances)
        )
    else:
        balances = account.balances.set(asset, amount_minor)
    return Account(
        account.id,
        account.owner,
        balances,
        account.positions,
        account.debt_minor,
        account.claim_minor,
    )


def with_position(
    account: Account, instrument_id: str, quantity_lots: int, settled_price_ticks: int
) -> Account:
    """Return ``account`` holding ``quantity_lots`` of an instrument settled at a price."""
    if quantity_lots == 0:
        positions = (
            account.positions.delete(instrument_id)
            if (instrument_id in account.positions)
            else account.positions
        )
    else:
        positions = account.positions.set(
            instrument_id, Position(quantity_lots, settled_price_ticks)
        )
    return Account(
        account.id,
        account.owner,
        account.balances,
        positions,
        account.debt_minor,
        account.claim_minor,
    )


def with_settlement(  # noqa: PLR0913 (one account change, named field by field)
    account: Account,
    *,
    asset: str,
    amount_minor: int,
    instrument_id: str,
    quantity_lots: int,
    settled_price_ticks: int,
) -> Account:
    """Return ``account`` with a new balance and a new position, built in one step."""
    assert amount_minor >= 0, (account.id, asset, amount_minor)
    balances = account.balances
    if amount_minor:
        balances = balances.set(asset, amount_minor)
    elif asset in balances:
        balances = balances.delete(asset)
    positions = account.positions
    if quantity_lots:
        positions = positions.set(instrument_id, Position(quantity_lots, settled_price_ticks))
    elif instrument_id in positions:
        positions = positions.delete(instrument_id)
    return Account(
        account.id,
        account.owner,
        balances,
        positions,
        account.debt_minor,
        account.claim_minor,
    )


def with_credit(account: Account, change_minor: int) -> Account:
    """Return ``account`` with its claim less its debt moved by ``change_minor`` (SK-DEBT-1).

    A debt and a claim on one account net: what it owes and is owed is one signed amount,
    kept as a debt when negative and a claim when positive.
    """
    net = account.claim_minor - account.debt_minor + change_minor
    return Account(
        account.id,
        account.owner,
        account.balances,
        account.positions,
        max(-net, 0),
        max(net, 0),
    )


def with_custody(custody: Map[str, int], asset: str, amount_minor: int) -> Map[str, int]:
    """Return the custody map with ``asset``'s total set to ``amount_minor``."""
    assert amount_minor >= 0, (asset, amount_minor)
    if amount_minor == 0:
        return custody.delete(asset) if asset in custody else custody
    return custody.set(asset, amount_minor)
