"""Variation margin: mark every position of an instrument (spec/30-transitions.md#vm).

Every holder of a perpetual or future receives ``quantity * (mark - settled) * multiplier``
(a negative amount is a payment) and is re-referenced to the mark (SK-VM). Because every
open position of an instrument is settled at the same reference (INV-UNIFORM-REFERENCE) and
positions sum to zero (INV-OPEN-INTEREST-ZERO-SUM), the payments sum to zero exactly: losers
pay the clearing account, the clearing account pays the winners, and it ends at zero.
[Modified in v4] A loser merely short of cash no longer blocks the mark: it owes the
insurance fund the rest, which the fund advances or the winners hold as a claim on it
(SK-DEBT-1). Only a loser whose whole account would not cover its payment at liquidation
stops the mark; it is then below maintenance, hence liquidatable, and its loss goes down the
liquidation's waterfall.
"""

from __future__ import annotations

import attrs

from settlekernel.core.arith import compute_settlement_minor
from settlekernel.core.events import VariationMargin
from settlekernel.core.model import Account, Instrument, State, replace_state
from settlekernel.core.oracle import Action, check_admissible
from settlekernel.core.oracle import mark_ticks as compute_mark_ticks
from settlekernel.core.outcomes import Accepted, Outcome, PostingCode, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import account_key, instrument_key, touch
from settlekernel.kernel.ledger import with_position
from settlekernel.kernel.transitions.debt import collect, true_deficit_minor
from settlekernel.kernel.transitions.waterfall import apply_books, new_books


def process_variation_margin(state: State, event: VariationMargin) -> Outcome:
    """Mark an instrument to its mark price: the index shifted by the last premium (SK-VM)."""
    # Verify the principal is the operator.
    if event.principal != state.rules.roles.operator:
        return Rejected(
            Reason.PRINCIPAL_NOT_OPERATOR,
            f"principal {event.principal} is not the operator {state.rules.roles.operator}",
        )
    # Verify the instrument exists and is marked to market (options are premium-settled).
    instrument = state.instruments.get(event.instrument)
    if instrument is None:
        return Rejected(Reason.INSTRUMENT_UNKNOWN, f"instrument {event.instrument} is not listed")
    if instrument.settlement_ticks is not None:
        return Rejected(
            Reason.INSTRUMENT_ALREADY_SETTLED,
            f"instrument {instrument.id} settled at expiry at {instrument.settlement_ticks}",
        )
    if not instrument.is_linear:
        return Rejected(
            Reason.INSTRUMENT_NOT_MARKED_TO_MARKET,
            f"instrument {instrument.id} is an option: its premium was paid in full",
        )
    # Verify there is an index price to mark to, and the oracle admits marking (SK-ORACLE-5).
    if instrument.underlying not in state.prices:
        return Rejected(
            Reason.PRICE_UNAVAILABLE, f"no index price for underlying {instrument.underlying}"
        )
    rejection = check_admissible(state, (instrument.underlying,), Action.VARIATION_MARGIN)
    if rejection is not None:
        return rejection
    mark_ticks = compute_mark_ticks(state, instrument.id)
    holders = sorted(state.holders[instrument.id])
    flows = {
        holder: _flow_minor(state.accounts[holder], instrument, mark_ticks) for holder in holders
    }
    # Verify no holder owes more than all its account would raise at liquidation: such a
    # holder is insolvent, hence liquidatable, and its loss goes down the liquidation's
    # waterfall (the fund, then ADL), not to the other holders (SK-VM-3 [Modified in v4]).
    for holder in holders:
        owed = -flows[holder]
        account = state.accounts[holder]
        if owed > account.balance(instrument.settlement_asset) and (
            true_deficit_minor(state, account, instrument.id, owed) > 0
        ):
            return Rejected(
                Reason.VARIATION_MARGIN_SHORTFALL,
                f"account {holder} owes {owed} and all it holds would not cover it; it must "
                f"be liquidated before {instrument.id} is marked",
            )
    # From here the event must succeed: a holder short of cash owes the fund (SK-DEBT-1).
    books = new_books()
    collect(state, books, flows, {}, PostingCode.VARIATION_MARGIN)
    return Accepted(
        _rereference(apply_books(state, books), instrument, mark_ticks, holders),
        tuple(books.postings),
    )


def _flow_minor(holder: Account, instrument: Instrument, mark_ticks: int) -> int:
    position = holder.positions[instrument.id]
    return compute_settlement_minor(
        position.quantity_lots,
        mark_ticks,
        position.settled_price_ticks,
        instrument.multiplier_minor,
    )


def _rereference(
    state: State, instrument: Instrument, mark_ticks: int, holders: list[str]
) -> State:
    """Settle every holder's position and the instrument at the mark (SK-VM)."""
    keys = [instrument_key(instrument.id)]
    with state.accounts.mutate() as accounts:
        for holder_id in holders:
            holder = accounts[holder_id]
            quantity = holder.positions[instrument.id].quantity_lots
            accounts[holder_id] = with_position(holder, instrument.id, quantity, mark_ticks)
            keys.append(account_key(holder_id))
        new_accounts = accounts.finish()
    return replace_state(
        state,
        accounts=new_accounts,
        instruments=state.instruments.set(
            instrument.id, attrs.evolve(instrument, reference_ticks=mark_ticks)
        ),
        commitment=touch(state.commitment, *keys),
    )
