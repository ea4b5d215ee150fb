"""Liquidation, the insurance fund and auto-deleveraging (spec/30-transitions.md#liquidate).

Anyone may liquidate an account below maintenance margin, under a valid index, with an
account of their own (the liquidator). The liquidator takes the positions at transfer prices
(the mark for perpetuals and futures, the model value for options, SK-LIQ-2) exactly as a
trade would settle them (SK-SETTLE-1), and the liquidated account pays a penalty on the
notional it closes to the insurance fund. In order (SK-LIQ-3):

1. **Partial.** The smallest of ``1/10, 2/10, ...`` of every position whose close leaves the
   account at initial margin with its ratio of equity to maintenance no worse than before.
   The penalty is capped so the ratio never worsens (INV-LIQUIDATION-NO-WORSE).
2. **Full.** Otherwise everything closes, if the account can pay: its valuation-asset cash
   and, sold to the liquidator at haircut value, its other collateral (SK-WATERFALL-1).
3. **Bankrupt.** Otherwise all collateral is sold and the shortfall goes down the waterfall
   (SK-LIQ-4): the insurance fund pays it if it can, and the liquidator takes everything; if
   not, the fund pays all it has, the liquidator takes only the positions in profit, and the
   losing positions are closed against the opposite side's holders at the bankruptcy price,
   most profitable and most levered first (auto-deleveraging, SK-ADL).

Positions sum to zero, so the opposite side always holds exactly the lots to close: ADL
always absorbs the loss in full, and a liquidation never socialises it.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import TYPE_CHECKING, Final

import attrs

from settlekernel.core.arith import (
    ceil_div,
    ceil_ratio,
    compute_capped_penalty,
    compute_fee_split,
    compute_settlement_minor,
)
from settlekernel.core.events import Liquidate
from settlekernel.core.model import Account, Instrument, State
from settlekernel.core.oracle import Action, check_admissible, mark_ticks
from settlekernel.core.outcomes import Accepted, Outcome, PostingCode, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.units import INSURANCE_ACCOUNT, RESIDUE_ACCOUNT
from settlekernel.kernel.ledger import with_position
from settlekernel.kernel.transitions.governance import check_grace
from settlekernel.kernel.transitions.instructions import check_top_up_first
from settlekernel.kernel.transitions.waterfall import (
    Books,
    account_after,
    affordable_units,
    apply_books,
    collateral_value_minor,
    new_books,
    post,
    pro_rata_floor,
    seizable,
)
from settlekernel.margin.accounts import (
    account_margin,
    check_trade_margin,
    margin_underlyings,
    market_of,
)
from settlekernel.margin.options import model_price_ticks

if TYPE_CHECKING:
    from settlekernel.core.reports import MarginReport

# [SK-LIQ-3] A partial liquidation closes k/10 of every position, k = 1, 2, ..., 9.
RUNGS: Final = 10
# Large enough to take every unit of collateral an account holds.
_ALL: Final = 2**200


@attrs.frozen
class Close:
    """One position being closed: the liquidated account's position changes by ``-lots``."""

    instrument: Instrument
    lots: int
    price_ticks: int
    # What the liquidated account receives for it (negative: pays), SK-SETTLE-1.
    cash_minor: int


def transfer_price_ticks(state: State, instrument: Instrument, lots: int) -> int:
    """Return the price a liquidation transfers ``lots`` at (SK-LIQ-2).

    The mark for a perpetual or future; for an option its Black-76 value in whole ticks,
    rounded against the liquidated account (down when it sells, up when it buys back).
    """
    if instrument.is_linear:
        return mark_ticks(state, instrument.id)
    return model_price_ticks(market_of(state), instrument, round_up=lots < 0)


def closes(state: State, account: Account, rung: int) -> list[Close]:
    """Return the closes of ``rung``/10 of every position, rounded up in lots (SK-LIQ-3).

    Rung 0 closes nothing: a debtor's collateral alone is sold to repay its debt.
    """
    if rung == 0:
        return []
    found = []
    for instrument_id, position in sorted(account.positions.items()):
        quantity = position.quantity_lots
        lots = ceil_div(abs(quantity) * rung, RUNGS) * (1 if quantity > 0 else -1)
        instrument = state.instruments[instrument_id]
        price = transfer_price_ticks(state, instrument, lots)
        cash = compute_settlement_minor(
            lots, price, instrument.reference_ticks, instrument.multiplier_minor
        )
        found.append(Close(instrument, lots, price, cash))
    return found


def process_liquidate(state: State, event: Liquidate) -> Outcome:
    """Liquidate an account below maintenance margin into the liquidator's account (SK-LIQ)."""
    # Verify the liquidator is another account.
    if event.account == event.liquidator:
        return Rejected(Reason.SELF_LIQUIDATION, f"account {event.account} cannot liquidate itself")
    # Verify both accounts exist and the principal owns the liquidator account.
    account = state.accounts.get(event.account)
    if account is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.account} does not exist")
    liquidator = state.accounts.get(event.liquidator)
    if liquidator is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.liquidator} does not exist")
    if event.principal != liquidator.owner:
        return Rejected(
            Reason.PRINCIPAL_NOT_OWNER,
            f"principal {event.principal} does not own account {liquidator.id}",
        )
    # Verify the oracle admits liquidation on every price either margin reads (SK-ORACLE-5).
    underlyings = margin_underlyings(state, account) | margin_underlyings(state, liquidator)
    rejection = check_admissible(state, underlyings, Action.LIQUIDATION)
    if rejection is not None:
        return rejection
    # Verify there is something to close and the account is below maintenance, or owes the
    # fund (SK-LIQ-1 [Modified in v4]): a debtor's collateral is sold to repay its debt.
    if not account.positions and not account.debt_minor:
        return Rejected(Reason.NOTHING_TO_LIQUIDATE, f"account {account.id} holds no position")
    before = account_margin(state, account)
    if not before.is_liquidatable and not account.debt_minor:
        return Rejected(
            Reason.NOT_LIQUIDATABLE,
            f"account {account.id}: equity {before.equity_minor} is not below maintenance "
            f"{before.maintenance_minor}",
        )
    # Verify no rule change's grace shelters the account (SK-GOV-5).
    rejection = check_grace(state, account)
    if rejection is not None:
        return rejection
    # Verify no standing top-up of the account could restore its maintenance (SK-INSTR-5).
    rejection = check_top_up_first(state, account, before)
    if rejection is not None:
        return rejection
    books = plan(state, account, liquidator.id, before)
    # Verify the liquidator can pay and meets margin with what it takes (SK-LIQ-5).
    rejection = _check_liquidator(state, books, liquidator)
    if rejection is not None:
        return rejection
    # From here the event must succeed.
    return Accepted(apply_books(state, books), tuple(books.postings))


def plan(state: State, account: Account, liquidator_id: str, before: MarginReport) -> Books:
    """Return the books of the liquidation: the first feasible rung, else bankruptcy."""
    found = first_rung(state, account, liquidator_id, before)
    if found is not None:
        return found[0]
    return _bankrupt(state, account, liquidator_id, closes(state, account, RUNGS))


def first_rung(
    state: State, account: Account, liquidator_id: str, before: MarginReport
) -> tuple[Books, list[Close]] | None:
    """Return the books and closes of the first rung that resolves the account (SK-LIQ-3).

    Rungs 1 to 9 close that many tenths of every position, rung 10 closes everything, and a
    debtor is first offered rung 0, which only sells collateral to repay the debt; None when
    even the full close cannot be paid: the account is bankrupt.
    """
    for rung in range(0 if account.debt_minor else 1, RUNGS + 1):
        taken = closes(state, account, rung)
        books = _rung(state, account, liquidator_id, before, taken)
        if books is not None:
            return books, taken
    return None


def _take(books: Books, account_id: str, liquidator_id: str, close: Close, asset: str) -> None:
    """Move one close to the liquidator and settle it between the two (SK-SETTLE-1)."""
    books.moves[account_id, close.instrument.id] -= close.lots
    books.moves[liquidator_id, close.instrument.id] += close.lots
    if close.cash_minor > 0:
        post(books, liquidator_id, account_id, (asset, close.cash_minor), PostingCode.LIQUIDATION)
    else:
        post(books, account_id, liquidator_id, (asset, -close.cash_minor), PostingCode.LIQUIDATION)


def sell_collateral(  # noqa: PLR0913 (the sale, and what the liquidator must keep)
    state: State,
    books: Books,
    account: Account,
    liquidator_id: str,
    value_minor: int,
    *,
    reserve_minor: int = 0,
    forced: bool = True,
) -> int:
    """Sell the account's collateral worth ``value_minor`` at its liquidation price.

    The liquidator buys first, as far as its valuation cash as the books stand allows (less
    ``reserve_minor`` it must keep for the positions it takes), then the insurance fund as
    far as its cash allows (SK-WATERFALL-1): the discount, the most either gains, is the
    rule's, not the haircut. A ``forced`` sale (an account that can pay) leaves the rest to
    the liquidator whatever its cash, so a liquidator that cannot pay is refused (SK-LIQ-5);
    a bankruptcy's sale is not forced, and what nobody buys goes in kind to the deleveraged
    holders (SK-LIQ-4). Returns the valuation-asset amount raised.
    """
    asset = state.rules.valuation_asset
    raised = 0
    for lot in seizable(state, account, value_minor, sale=True):
        left = lot.units_minor
        buyers = [(liquidator_id, reserve_minor), (INSURANCE_ACCOUNT, 0)]
        if forced:
            buyers.append((liquidator_id, -(2**200)))
        for buyer, reserve in buyers:
            cash = state.accounts[buyer].balance(asset) + books.deltas.get((buyer, asset), 0)
            units = affordable_units(state, lot.asset, left, cash - reserve)
            if units == 0:
                continue
            price = collateral_value_minor(state, lot.asset, units, sale=True)
            post(books, account.id, buyer, (lot.asset, units), PostingCode.COLLATERAL_SALE)
            post(books, buyer, account.id, (asset, price), PostingCode.COLLATERAL_SALE)
            raised += price
            left -= units
    return raised


def penalty_split(state: State, taken: list[Close]) -> tuple[int, int, int]:
    """Return the penalty (charged, to the fund, to the residue), per underlying (SK-LIQ-3).

    ``ceil(notional * liquidation_penalty_ppm / 1e6)`` on the notional closed at transfer
    prices on each underlying: the fund gets the floor, the residue the 0 or 1 unit more.
    """
    notional: defaultdict[str, int] = defaultdict(int)
    for close in taken:
        notional[close.instrument.underlying] += (
            abs(close.lots) * close.price_ticks * close.instrument.multiplier_minor
        )
    charged = pool = residue = 0
    for underlying, amount in sorted(notional.items()):
        rate_ppm = state.rules.underlying_by_symbol[underlying].liquidation_penalty_ppm
        split = compute_fee_split(amount, rate_ppm)
        charged, pool, residue = (
            charged + split.charged_minor,
            pool + split.pool_minor,
            residue + split.residue_minor,
        )
    return charged, pool, residue


def penalty_cap(
    state: State, account: Account, before: MarginReport, taken: list[Close]
) -> tuple[int, Account] | None:
    """Return the most a rung's penalty may be and the account's positions after the closes.

    None if the account cannot pay its closes at all. The cap is what the account can pay,
    its equity, and, while positions remain, what keeps its equity-to-maintenance ratio no
    worse than before, compared by cross-multiplication (SK-LIQ-3).
    """
    asset = state.rules.valuation_asset
    moved = account
    for close in taken:
        quantity = account.positions[close.instrument.id].quantity_lots - close.lots
        moved = with_position(
            moved, close.instrument.id, quantity, close.instrument.reference_ticks
        )
    report = account_margin(state, moved)
    received = sum(close.cash_minor for close in taken)
    # A debt is cash the account already owes the fund (SK-DEBT-1): it comes first.
    cash = account.balance(asset) - account.debt_minor + received
    other = sale_value_minor(state, account)
    if cash + other < 0:
        return None
    cap = min(cash + other, report.equity_minor + received)
    if moved.positions and before.maintenance_minor > 0:
        floor_equity = ceil_ratio(
            before.equity_minor * report.maintenance_minor, before.maintenance_minor
        )
        # Selling collateral may lose one unit of value per asset to rounding.
        cap = min(cap, report.equity_minor + received - floor_equity - len(account.balances))
    return cap, moved


def sale_value_minor(state: State, account: Account) -> int:
    """Return what all the account's other collateral raises at its liquidation price."""
    return sum(
        collateral_value_minor(state, asset, units, sale=True)
        for asset, units in sorted(account.balances.items())
        if asset != state.rules.valuation_asset
    )


def _rung(
    state: State, account: Account, liquidator_id: str, before: MarginReport, taken: list[Close]
) -> Books | None:
    """Return the books of closing ``taken``, or None if that does not resolve the account.

    Resolved: all closed with the account able to pay, or positions left at initial margin
    with the equity-to-maintenance ratio no worse than before (compared by
    cross-multiplication). The penalty is capped by ``penalty_cap`` (SK-LIQ-3).
    """
    asset = state.rules.valuation_asset
    capped = penalty_cap(state, account, before, taken)
    if capped is None:
        return None
    cap, moved = capped
    cash = account.balance(asset) - account.debt_minor + sum(close.cash_minor for close in taken)
    charged, pool, _ = penalty_split(state, taken)
    penalty, pool, residue = compute_capped_penalty(charged, pool, cap)
    books = new_books()
    for close in taken:
        _take(books, account.id, liquidator_id, close, asset)
    if (
        penalty > cash
        and sell_collateral(state, books, account, liquidator_id, penalty - cash) < penalty - cash
    ):
        return None
    post(books, account.id, INSURANCE_ACCOUNT, (asset, pool), PostingCode.PENALTY)
    post(books, account.id, RESIDUE_ACCOUNT, (asset, residue), PostingCode.ROUNDING)
    if not moved.positions:
        return books
    final = account_margin(state, account_after(state, books, account.id))
    restored = final.meets_initial and (
        final.equity_minor * before.maintenance_minor
        >= before.equity_minor * final.maintenance_minor
    )
    return books if restored else None


def _bankrupt(state: State, account: Account, liquidator_id: str, taken: list[Close]) -> Books:
    """Close everything of an account that cannot pay: the fund, then ADL (SK-LIQ-4)."""
    asset = state.rules.valuation_asset
    books = new_books()
    # The liquidator keeps what taking the positions in the account's favour costs it.
    reserve = sum(close.cash_minor for close in taken if close.cash_minor > 0)
    sale = sell_collateral(
        state, books, account, liquidator_id, _ALL, reserve_minor=reserve, forced=False
    )
    # The debt is part of what the account must pay (SK-DEBT-1); it is repaid after the step.
    owned = account.balance(asset) - account.debt_minor
    shortfall = -(owned + sale + sum(close.cash_minor for close in taken))
    # The fund's cash after what it paid for collateral.
    fund = state.accounts[INSURANCE_ACCOUNT].balance(asset) + books.deltas.get(
        (INSURANCE_ACCOUNT, asset), 0
    )
    if fund >= shortfall:
        for close in taken:
            _take(books, account.id, liquidator_id, close, asset)
        post(books, INSURANCE_ACCOUNT, account.id, (asset, shortfall), PostingCode.INSURANCE)
        return books
    post(books, INSURANCE_ACCOUNT, account.id, (asset, fund), PostingCode.INSURANCE)
    gains = [close for close in taken if close.cash_minor >= 0]
    for close in gains:
        _take(books, account.id, liquidator_id, close, asset)
    available = owned + sale + fund + sum(close.cash_minor for close in gains)
    if available < 0:
        # [SK-DEBT-3] What the account cannot repay of its debt is written off; the fund's
        # claims are then cut if its cash and debts no longer back them.
        books.credits[account.id] -= available
        available = 0
    losses = [close for close in taken if close.cash_minor < 0]
    if losses:
        _deleverage(state, books, account, losses, available)
    return books


def _deleverage(
    state: State, books: Books, account: Account, losses: list[Close], available: int
) -> None:
    """Close the losing positions against the opposite side at the bankruptcy price (SK-ADL).

    Per instrument, opposite-side holders are reduced in ranking order (``ranking``) until the
    lots are closed. What the bankrupt account has left, ``available``, is paid to them in
    proportion to the profit at the mark of the lots each gave up, rounded down (the
    remainder to the residue): so each is paid less than its profit, never negative, and the
    account ends with nothing.
    """
    asset = state.rules.valuation_asset
    weights: defaultdict[str, int] = defaultdict(int)
    for close in losses:
        books.moves[account.id, close.instrument.id] -= close.lots
        per_lot = -close.cash_minor // abs(close.lots)
        direction = 1 if close.lots > 0 else -1
        remaining = abs(close.lots)
        for holder_id, held_lots in ranking(state, close.instrument, -direction, account.id):
            take = min(remaining, abs(held_lots))
            books.moves[holder_id, close.instrument.id] += direction * take
            weights[holder_id] += take * per_lot
            remaining -= take
            if remaining == 0:
                break
    holders = sorted(weights)
    shares = [weights[holder] for holder in holders]
    pays = pro_rata_floor(available, shares)
    for holder, pay in zip(holders, pays, strict=True):
        post(books, account.id, holder, (asset, pay), PostingCode.ADL)
    post(books, account.id, RESIDUE_ACCOUNT, (asset, available - sum(pays)), PostingCode.ROUNDING)
    _recover_in_kind(state, books, account, holders, shares)


def _recover_in_kind(
    state: State, books: Books, account: Account, holders: list[str], shares: list[int]
) -> None:
    """Give the deleveraged holders the collateral nobody could buy, in kind (SK-LIQ-4).

    In proportion to the profit each gave up, rounded down, the remainder to the residue:
    what the bankrupt account still holds of value goes to those who bore its loss.
    """
    for collateral in sorted(account.balances):
        left = account.balance(collateral) + books.deltas.get((account.id, collateral), 0)
        if collateral == state.rules.valuation_asset or left <= 0:
            continue
        if collateral_value_minor(state, collateral, left, sale=True) == 0:
            continue  # Worth nothing: it stays where it is (SK-WATERFALL-1).
        parts = pro_rata_floor(left, shares)
        for holder, part in zip(holders, parts, strict=True):
            post(books, account.id, holder, (collateral, part), PostingCode.COLLATERAL_RECOVERY)
        remainder = (collateral, left - sum(parts))
        post(books, account.id, RESIDUE_ACCOUNT, remainder, PostingCode.ROUNDING)


def ranking(
    state: State, instrument: Instrument, side: int, excluded: str
) -> list[tuple[str, int]]:
    """Return the holders on ``side`` (+1 long, -1 short) in ADL order, with their lots (SK-ADL).

    Highest profit x leverage first: profit is the position's unrealised P&L at the mark,
    leverage the account's gross notional at the index over its equity; an account with no
    positive equity has infinite leverage and comes first. Compared by cross-multiplication,
    exactly; ties go to the smaller account id.
    """
    mark = transfer_price_ticks(state, instrument, 0) if instrument.is_linear else 0
    entries = []
    for holder_id in state.holders[instrument.id]:
        if holder_id == excluded:
            continue
        holder = state.accounts[holder_id]
        lots = holder.positions[instrument.id].quantity_lots
        if (lots > 0) != (side > 0):
            continue
        profit = _profit_minor(state, instrument, lots, mark)
        entries.append(
            (
                holder_id,
                lots,
                profit,
                _gross_notional(state, holder),
                account_margin(state, holder).equity_minor,
            )
        )
    entries.sort(key=functools.cmp_to_key(_adl_order))
    return [(entry[0], entry[1]) for entry in entries]


def _profit_minor(state: State, instrument: Instrument, lots: int, mark: int) -> int:
    """Return the size of a position's unrealised P&L at its transfer price (SK-ADL).

    A perpetual's or future's P&L in absolute value: opposite a bankrupt account's loss every
    holder is in profit, and opposite a backstopped account's gain (SK-LIQ-6) every holder
    is in loss, so the largest, most levered losses close first. An option's value to its
    holder, at least 0.
    """
    if not instrument.is_linear:
        mark = transfer_price_ticks(state, instrument, -lots)
        return max(
            compute_settlement_minor(
                lots, mark, instrument.reference_ticks, instrument.multiplier_minor
            ),
            0,
        )
    return abs(
        compute_settlement_minor(
            lots, mark, instrument.reference_ticks, instrument.multiplier_minor
        )
    )


def _gross_notional(state: State, account: Account) -> int:
    """Return the sum of |quantity| x index x multiplier over an account's positions."""
    total = 0
    for instrument_id, position in account.positions.items():
        instrument = state.instruments[instrument_id]
        index = state.prices[instrument.underlying].price_ticks
        total += abs(position.quantity_lots) * index * instrument.multiplier_minor
    return total


def _adl_order(a: tuple[str, int, int, int, int], b: tuple[str, int, int, int, int]) -> int:
    """Order two ADL candidates (id, lots, profit, notional, equity): -1 if ``a`` goes first."""
    a_unbounded, b_unbounded = a[4] <= 0, b[4] <= 0
    if a_unbounded != b_unbounded:
        return -1 if a_unbounded else 1
    if a_unbounded:
        left, right = a[2] * a[3], b[2] * b[3]
    else:
        left, right = a[2] * a[3] * b[4], b[2] * b[3] * a[4]
    if left != right:
        return -1 if left > right else 1
    return (a[0] > b[0]) - (a[0] < b[0])


def _check_liquidator(state: State, books: Books, liquidator: Account) -> Rejected | None:
    """Reject a liquidator over the position limits, short of funds, or below margin (SK-LIQ-5)."""
    rules = state.rules
    taken = {i for a, i in books.moves if a == liquidator.id and books.moves[a, i]}
    new = taken - set(liquidator.positions)
    if new and len(liquidator.positions) + len(new) > rules.positions_per_account_max:
        return Rejected(
            Reason.POSITION_COUNT_EXCEEDED,
            f"liquidator {liquidator.id} would hold more than positions_per_account_max="
            f"{rules.positions_per_account_max} positions",
        )
    for instrument_id in sorted(taken):
        held = liquidator.positions.get(instrument_id)
        lots = books.moves[liquidator.id, instrument_id] + (
            0 if held is None else held.quantity_lots
        )
        if abs(lots) > rules.position_lots_max:
            return Rejected(
                Reason.POSITION_TOO_LARGE,
                f"liquidator {liquidator.id} would hold {lots} lots of {instrument_id}, beyond "
                f"position_lots_max={rules.position_lots_max}",
            )
    for (holder, asset), delta in sorted(books.deltas.items()):
        if holder == liquidator.id and liquidator.balance(asset) + delta < 0:
            return Rejected(
                Reason.INSUFFICIENT_FUNDS,
                f"liquidator {liquidator.id} holds {liquidator.balance(asset)} {asset} and "
                f"would have to pay {-delta}",
            )
    after = account_after(state, books, liquidator.id)
    rejection, _ = check_trade_margin(state, liquidator, after, state.instruments)
    return rejection
