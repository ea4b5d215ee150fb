"""The backstop: closing out an account no keeper took in time (spec/30-transitions.md#backstop).

A liquidation needs a keeper that can carry the positions (SK-LIQ-5). When none can (every
keeper short of margin, or none running), an account below maintenance keeps losing; past
bankruptcy the fund pays for its loss, and a self-trader's winning twin collects it. So once
an account's equity falls below ``backstop_equity_ppm`` of its maintenance margin, anyone may
submit ``Backstop`` (SK-LIQ-6): every position closes in full at its transfer price (SK-LIQ-2)
against the opposite side's holders in ADL order (SK-ADL), each reduced toward zero until the
lots are closed, and the flows are paid through the settlement waterfall of SK-DEBT-1:

* a payer short of cash pays what it has; the fund pays its true deficit as far as it can,
  the rest is socialised among the receivers; of a solvent payer's shortfall the fund
  advances what it can, the rest is deferred: it owes the fund, and the receivers hold
  claims;
* the account's other collateral is first sold to the fund, at its liquidation price, for
  what its cash lacks;
* the penalty of SK-LIQ-3 is charged last, from the valuation cash the close leaves beyond
  any debt, and goes to the fund.

The fund never takes a position: warehousing the account's book would make it the holder of
the very exposure a self-trader's twin profits from. Closing against the opposite side at the
mark moves no value while the account's equity is positive, and the threshold keeps it
positive as long as the market moves less than a third of the maintenance margin between two
chances to submit.
"""

from __future__ import annotations

from collections import defaultdict

from settlekernel.core.arith import compute_capped_penalty, compute_settlement_minor
from settlekernel.core.events import Backstop
from settlekernel.core.model import Account, State, replace_state
from settlekernel.core.oracle import Action, check_admissible
from settlekernel.core.outcomes import Accepted, Outcome, PostingCode, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.units import INSURANCE_ACCOUNT, PPM, RESIDUE_ACCOUNT
from settlekernel.kernel.transitions.debt import collect, liquidation_value_minor
from settlekernel.kernel.transitions.governance import check_grace
from settlekernel.kernel.transitions.instructions import check_top_up_first
from settlekernel.kernel.transitions.liquidation import (
    RUNGS,
    Close,
    closes,
    penalty_split,
    ranking,
    sell_collateral,
)
from settlekernel.kernel.transitions.waterfall import (
    Books,
    account_after,
    apply_books,
    new_books,
    post,
)
from settlekernel.margin.accounts import account_margin, margin_underlyings


def below_backstop(state: State, equity_minor: int, maintenance_minor: int) -> bool:
    """Return whether an equity is below the backstop share of maintenance (SK-LIQ-6).

    ``equity * 1e6 < maintenance * backstop_equity_ppm``, exactly, by cross-multiplication.
    """
    return equity_minor * PPM < maintenance_minor * state.rules.backstop_equity_ppm


def process_backstop(state: State, event: Backstop) -> Outcome:
    """Close out an account below the backstop threshold against the opposite side (SK-LIQ-6)."""
    account = state.accounts.get(event.account)
    if account is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.account} does not exist")
    # Verify the oracle admits liquidation on every price the account's margin reads.
    rejection = check_admissible(state, margin_underlyings(state, account), Action.LIQUIDATION)
    if rejection is not None:
        return rejection
    if not account.positions:
        return Rejected(Reason.NOTHING_TO_LIQUIDATE, f"account {account.id} holds no position")
    before = account_margin(state, account)
    if not below_backstop(state, before.equity_minor, before.maintenance_minor):
        return Rejected(
            Reason.NOT_LIQUIDATABLE,
            f"account {account.id}: equity {before.equity_minor} is not below "
            f"backstop_equity_ppm={state.rules.backstop_equity_ppm} of maintenance "
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
    # From here the event must succeed.
    books, socialised = backstop_books(state, account)
    after = apply_books(state, books)
    if socialised:
        asset = state.rules.valuation_asset
        after = replace_state(
            after,
            socialized_loss=after.socialized_loss.set(
                asset, after.socialized_loss.get(asset, 0) + socialised
            ),
        )
    return Accepted(after, tuple(books.postings))


def backstop_books(state: State, account: Account) -> tuple[Books, int]:
    """Return the books of a backstop close-out and the loss it socialised (SK-LIQ-6)."""
    asset = state.rules.valuation_asset
    books = new_books()
    taken = closes(state, account, RUNGS)
    flows: defaultdict[str, int] = defaultdict(int)
    for close in taken:
        _close_against_opposite_side(state, books, flows, account.id, close)
    # The account's other collateral is sold to the fund for what its cash lacks.
    cash = account.balance(asset) - account.debt_minor
    lacking = -(cash + flows[account.id])
    if lacking > 0:
        sell_collateral(state, books, account, INSURANCE_ACCOUNT, lacking, forced=False)
    deficits = {
        holder: _true_deficit(state, books, holder, -flow)
        for holder, flow in sorted(flows.items())
        if flow < 0
    }
    settled = collect(state, books, flows, deficits, PostingCode.ADL)
    # The penalty comes last, from the cash left beyond any debt, whole to the fund if capped.
    left = account.balance(asset) + books.deltas.get((account.id, asset), 0) - account.debt_minor
    charged, pool, _ = penalty_split(state, taken)
    penalty = compute_capped_penalty(charged, pool, max(left, 0))
    post(books, account.id, INSURANCE_ACCOUNT, (asset, penalty.pool_minor), PostingCode.PENALTY)
    post(books, account.id, RESIDUE_ACCOUNT, (asset, penalty.residue_minor), PostingCode.ROUNDING)
    return books, settled.socialised_minor


def _close_against_opposite_side(
    state: State, books: Books, flows: defaultdict[str, int], account_id: str, close: Close
) -> None:
    """Close one position against the opposite side's holders in ADL order (SK-LIQ-6).

    Each ranked holder is reduced toward zero until the lots are closed, all but the last in
    full; every side settles the lots it gives up at the close's transfer price, as a trade
    would (SK-SETTLE-1), so the flows of one close sum to zero.
    """
    instrument = close.instrument
    books.moves[account_id, instrument.id] -= close.lots
    flows[account_id] += close.cash_minor
    direction = 1 if close.lots > 0 else -1
    remaining = abs(close.lots)
    for holder_id, held_lots in ranking(state, instrument, -direction, account_id):
        take = min(remaining, abs(held_lots))
        books.moves[holder_id, instrument.id] += direction * take
        flows[holder_id] += compute_settlement_minor(
            -direction * take,
            close.price_ticks,
            instrument.reference_ticks,
            instrument.multiplier_minor,
        )
        remaining -= take
        if remaining == 0:
            break


def _true_deficit(state: State, books: Books, holder_id: str, owed: int) -> int:
    """Return what a payer owes beyond all its account is worth after the closes (SK-DEBT-1).

    Its value at liquidation (``liquidation_value_minor``) with the closes and the sale made
    and before paying its flow: a solvent payer short of cash has no deficit.
    """
    return max(owed - liquidation_value_minor(state, account_after(state, books, holder_id)), 0)
