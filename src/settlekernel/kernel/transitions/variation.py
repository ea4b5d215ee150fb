"""Variation margin: mark every position of an instrument (spec/30-transitions.md#vm).

Every holder of a perpetual or future receives ``quantity * (mark - settled) * multiplier``
(a negative amount is a payment) and is re-referenced to the mark (SK-VM). Because every
open position of an instrument is settled at the same reference (INV-UNIFORM-REFERENCE) and
positions sum to zero (INV-OPEN-INTEREST-ZERO-SUM), the payments sum to zero exactly: losers
pay the clearing account, the clearing account pays the winners, and it ends at zero.
"""

from __future__ import annotations

import attrs

from settlekernel.core.arith import compute_settlement_minor
from settlekernel.core.events import VariationMargin
from settlekernel.core.model import Account, Instrument, State, replace_state
from settlekernel.core.oracle import Action, check_admissible
from settlekernel.core.oracle import mark_ticks as compute_mark_ticks
from settlekernel.core.outcomes import Accepted, Outcome, Posting, PostingCode, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import account_key, instrument_key, touch
from settlekernel.core.units import CLEARING_ACCOUNT
from settlekernel.kernel.ledger import with_balance, with_position


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
    # Verify every holder can pay its variation margin in cash.
    holders = [state.accounts[account_id] for account_id in sorted(state.holders[instrument.id])]
    flows = [_flow_minor(holder, instrument, mark_ticks) for holder in holders]
    asset = instrument.settlement_asset
    for holder, flow_minor in zip(holders, flows, strict=True):
        if holder.balance(asset) + flow_minor < 0:
            return Rejected(
                Reason.VARIATION_MARGIN_SHORTFALL,
                f"account {holder.id} holds {holder.balance(asset)} {asset} and owes "
                f"{-flow_minor}; it must be liquidated before {instrument.id} is marked",
            )
    # From here the event must succeed.
    return Accepted(
        _commit(state, instrument, mark_ticks, holders, flows),
        _postings(asset, holders, flows),
    )


def _flow_minor(holder: Account, instrument: Instrument, mark_ticks: int) -> int:
    position = holder.positions[instrument.id]
    return compute_settlement_minor(
        position.quantity_lots,
        mark_ticks,
        position.settled_price_ticks,
        instrument.multiplier_minor,
    )


def _commit(
    state: State,
    instrument: Instrument,
    mark_ticks: int,
    holders: list[Account],
    flows: list[int],
) -> State:
    asset = instrument.settlement_asset
    keys = [instrument_key(instrument.id)]
    with state.accounts.mutate() as accounts:
        for holder, flow_minor in zip(holders, flows, strict=True):
            position = holder.positions[instrument.id]
            marked = with_position(
                with_balance(holder, asset, holder.balance(asset) + flow_minor),
                instrument.id,
                position.quantity_lots,
                mark_ticks,
            )
            accounts[holder.id] = marked
            keys.append(account_key(holder.id))
        new_accounts = accounts.finish()
    return replace_state(
        state,
        accounts=new_accounts,
        instruments=state.instruments.set(
            instrument.id, attrs.evolve(instrument, reference_ticks=mark_ticks)
        ),
        commitment=touch(state.commitment, *keys),
    )


def _postings(asset: str, holders: list[Account], flows: list[int]) -> tuple[Posting, ...]:
    """Losers pay the clearing account first, then it pays the winners (SK-VM-4)."""
    payments = [
        Posting(holder.id, CLEARING_ACCOUNT, asset, -flow_minor, PostingCode.VARIATION_MARGIN)
        for holder, flow_minor in zip(holders, flows, strict=True)
        if flow_minor < 0
    ]
    receipts = [
        Posting(CLEARING_ACCOUNT, holder.id, asset, flow_minor, PostingCode.VARIATION_MARGIN)
        for holder, flow_minor in zip(holders, flows, strict=True)
        if flow_minor > 0
    ]
    return tuple(payments + receipts)
