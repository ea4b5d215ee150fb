"""Integer helpers of the loss waterfall: collateral at haircut value, pro-rata splits.

Shared by expiry settlement (``expiry.py``) and liquidation (``liquidation.py``). Every
function is pure integer arithmetic over the state it is given; none writes anything.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, NamedTuple

from settlekernel.core.arith import ceil_div, compute_collateral_value_minor, share_down, share_up
from settlekernel.core.model import Account, State, replace_state
from settlekernel.core.outcomes import Posting, PostingCode
from settlekernel.core.root import account_key, touch
from settlekernel.core.units import PPM
from settlekernel.kernel.ledger import with_balance, with_credit, with_position

if TYPE_CHECKING:
    from collections.abc import Sequence

    from immutables import Map


class Books(NamedTuple):
    """What a waterfall step is building: balance changes, position changes, postings.

    ``deltas`` maps (account, asset) to a change in minor units; ``moves`` maps (account,
    instrument) to a change in lots, booked at the instrument's reference price; ``credits``
    maps an account to a change of its claim less its debt on the insurance fund (SK-DEBT).
    """

    deltas: defaultdict[tuple[str, str], int]
    moves: defaultdict[tuple[str, str], int]
    postings: list[Posting]
    credits: defaultdict[str, int]


def new_books() -> Books:
    """Return empty books."""
    return Books(defaultdict(int), defaultdict(int), [], defaultdict(int))


def post(books: Books, debit: str, credit: str, lot: tuple[str, int], code: PostingCode) -> None:
    """Move ``lot = (asset, amount)`` from ``debit`` to ``credit``; nothing if not positive."""
    asset, amount = lot
    if amount > 0:
        books.deltas[debit, asset] -= amount
        books.deltas[credit, asset] += amount
        books.postings.append(Posting(debit, credit, asset, amount, code))


def account_after(state: State, books: Books, account_id: str) -> Account:
    """Return an account with the books' balance and position changes applied."""
    changes = _changes_by_account(books).get(account_id)
    return _with_books_credit(books, _account_after(state, account_id, changes))


class _Changes(NamedTuple):
    """One account's share of the books, in the books' order."""

    deltas: list[tuple[str, int]]
    moves: list[tuple[str, int]]


def _changes_by_account(books: Books) -> dict[str, _Changes]:
    """Index the books by account in one pass, keeping each account's changes in order.

    A variation margin touches every holder of an instrument; filtering the whole books once
    per account made applying them quadratic in the number of holders.
    """
    changes: dict[str, _Changes] = {}
    for (holder, asset), delta in books.deltas.items():
        if delta:
            changes.setdefault(holder, _Changes([], [])).deltas.append((asset, delta))
    for (holder, instrument_id), lots in books.moves.items():
        if lots:
            changes.setdefault(holder, _Changes([], [])).moves.append((instrument_id, lots))
    return changes


def _account_after(state: State, account_id: str, changes: _Changes | None) -> Account:
    account = state.accounts[account_id]
    if changes is not None:
        for asset, delta in changes.deltas:
            account = with_balance(account, asset, account.balance(asset) + delta)
        for instrument_id, lots in changes.moves:
            held = account.positions.get(instrument_id)
            quantity = lots + (0 if held is None else held.quantity_lots)
            reference = state.instruments[instrument_id].reference_ticks
            account = with_position(account, instrument_id, quantity, reference)
    return account


def _with_books_credit(books: Books, account: Account) -> Account:
    if books.credits.get(account.id):
        return with_credit(account, books.credits[account.id])
    return account


def apply_books(state: State, books: Books) -> State:
    """Return ``state`` with the books applied: balances, positions, open interest, holders."""
    touched = sorted(
        {a for a, _ in books.deltas} | {a for a, _ in books.moves} | set(books.credits)
    )
    changes = _changes_by_account(books)
    moved: dict[str, set[str]] = {}
    for account_id, instrument_id in books.moves:
        moved.setdefault(account_id, set()).add(instrument_id)
    open_interest, holders = state.open_interest, state.holders
    debtors, claimants = state.debtors, state.claimants
    with state.accounts.mutate() as accounts:
        for account_id in touched:
            after = _with_books_credit(
                books, _account_after(state, account_id, changes.get(account_id))
            )
            for instrument_id in moved.get(account_id, ()):
                open_interest, holders = _indexed(
                    open_interest, holders, state.accounts[account_id], after, instrument_id
                )
            debtors = indexed_member(debtors, account_id, member=after.debt_minor > 0)
            claimants = indexed_member(claimants, account_id, member=after.claim_minor > 0)
            accounts[account_id] = after
        new_accounts = accounts.finish()
    return replace_state(
        state,
        accounts=new_accounts,
        open_interest=open_interest,
        holders=holders,
        debtors=debtors,
        claimants=claimants,
        commitment=touch(state.commitment, *(account_key(a) for a in touched)),
    )


def indexed_member(index: Map[str, None], key: str, *, member: bool) -> Map[str, None]:
    """Return a set-like index with ``key`` in it or not (derived indexes, SK-DEBT)."""
    if member:
        return index if key in index else index.set(key, None)
    return index.delete(key) if key in index else index


def _indexed(
    open_interest: Map[str, int],
    holders: Map[str, Map[str, None]],
    before: Account,
    after: Account,
    instrument_id: str,
) -> tuple[Map[str, int], Map[str, Map[str, None]]]:
    """Update the derived open-interest and holder indexes for one position change."""
    old = before.positions.get(instrument_id)
    new = after.positions.get(instrument_id)
    old_lots = 0 if old is None else old.quantity_lots
    new_lots = 0 if new is None else new.quantity_lots
    open_interest = open_interest.set(
        instrument_id, open_interest[instrument_id] + max(new_lots, 0) - max(old_lots, 0)
    )
    members = holders[instrument_id]
    if new is None and after.id in members:
        members = members.delete(after.id)
    elif new is not None:
        members = members.set(after.id, None)
    return open_interest, holders.set(instrument_id, members)


class Lot(NamedTuple):
    """Units of one collateral asset and their value, in valuation minor units.

    The value is at the haircut for a seizure, at the liquidation price for a sale.
    """

    asset: str
    units_minor: int
    value_minor: int


def _cut_ppm(state: State, asset: str, *, sale: bool) -> int:
    """Return the asset's haircut, or its liquidation discount for a sale (SK-WATERFALL-1)."""
    rules = state.rules.asset_by_symbol[asset]
    return rules.liquidation_discount_ppm if sale else rules.haircut_ppm


def collateral_value_minor(
    state: State, asset: str, units_minor: int, *, sale: bool = False
) -> int:
    """Return ``units_minor`` of an asset at its index less its haircut (SK-COLLATERAL-1).

    With ``sale``, less its liquidation discount instead: the price a liquidation sells it
    at (SK-WATERFALL-1). Rounded down; 0 for an asset that is not priced (no underlying,
    or no index yet).
    """
    rules = state.rules.asset_by_symbol[asset]
    underlying = rules.price_underlying
    if underlying is None or underlying not in state.prices:
        return 0
    return compute_collateral_value_minor(
        units_minor,
        state.prices[underlying].price_ticks,
        state.rules.underlying_by_symbol[underlying].tick_value_minor,
        rules.decimals,
        _cut_ppm(state, asset, sale=sale),
    )


def units_worth(state: State, asset: str, value_minor: int, *, sale: bool = False) -> int | None:
    """Return the fewest units of ``asset`` worth at least ``value_minor`` at haircut value.

    ``value(u) = floor(u * X / Y)`` with ``X = price * tick_value * (1e6 - haircut)`` and
    ``Y = 10**decimals * 1e6``, so ``value(u) >= v`` exactly when ``u >= v * Y / X``: the answer
    is ``ceil(v * Y / X)``. None for a worthless asset (no price, or a 100 % haircut).
    """
    rules = state.rules.asset_by_symbol[asset]
    underlying = rules.price_underlying
    if underlying is None or underlying not in state.prices:
        return None
    per_tick = state.rules.underlying_by_symbol[underlying].tick_value_minor
    cut = _cut_ppm(state, asset, sale=sale)
    numerator = state.prices[underlying].price_ticks * per_tick * (PPM - cut)
    if numerator == 0:
        return None
    return ceil_div(value_minor * 10**rules.decimals * PPM, numerator)


def seizable(state: State, account: Account, value_minor: int, *, sale: bool = False) -> list[Lot]:
    """Return the collateral to take from ``account`` to cover ``value_minor`` (SK-WATERFALL-1).

    Non-valuation assets in symbol order, each as far as needed: the fewest units worth the
    rest of the value, or the whole balance. Worthless assets are not taken. The lots' values
    sum to at least ``value_minor`` unless the account's priced collateral is worth less.
    """
    lots: list[Lot] = []
    remaining = value_minor
    for asset in sorted(account.balances):
        if remaining <= 0 or asset == state.rules.valuation_asset:
            continue
        needed = units_worth(state, asset, remaining, sale=sale)
        if needed is None:
            continue
        units = min(needed, account.balance(asset))
        value = collateral_value_minor(state, asset, units, sale=sale)
        lots.append(Lot(asset, units, value))
        remaining -= value
    return lots


def affordable_units(state: State, asset: str, units_max: int, budget_minor: int) -> int:
    """Return the most units, up to ``units_max``, whose sale price is within a budget.

    The sale price is ``floor(u * X / Y)`` (``collateral_value_minor`` with ``sale``), so it
    is at most ``b`` exactly when ``u * X < (b + 1) * Y``.
    """
    if budget_minor <= 0 or units_max <= 0:
        return 0
    worth = units_worth(state, asset, budget_minor + 1, sale=True)
    if worth is None:
        return 0
    units = min(units_max, worth - 1)
    while units > 0 and collateral_value_minor(state, asset, units, sale=True) > budget_minor:
        units -= 1
    return units


def pro_rata_floor(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights``, each share rounded down (SK-WATERFALL-2).

    The shares sum to at most ``total``; the remainder, less than the number of positive
    weights (``share_down``), is the caller's to post to the rounding residue.
    """
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [0 for _ in weights]
    return [share_down(total, weight, weight_sum) for weight in weights]


def pro_rata_ceil(total: int, weights: Sequence[int]) -> list[int]:
    """Split a loss ``total`` over ``weights``, each share rounded up (SK-WATERFALL-2).

    The shares sum to at least ``total``, by less than one unit more per positive weight,
    and none exceeds its weight while ``total <= sum(weights)`` (``share_up``).
    """
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [0 for _ in weights]
    return [share_up(total, weight, weight_sum) for weight in weights]
