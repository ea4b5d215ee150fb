"""Expiry settlement: every holder of a future or option at once (spec/30-transitions.md#expire).

At expiry every position is closed at the settlement price the oracle fixed from its history
(SK-EXPIRY-2): a future pays ``q * (S - reference) * m``, an option its intrinsic value
``q * intrinsic(S) * m`` (its reference is 0). Positions sum to zero and share one reference,
so what the payers owe is exactly what the receivers are due.

[Modified in v4] A payer short of the valuation asset pays what cash it has; the rest goes
through the waterfall of SK-DEBT-1 (``debt.collect``): the part its whole account, valued at
the index, cannot cover is its true deficit, which the insurance fund pays as far as it can
and the rest of which is socialised pro rata over the receivers and recorded in
``socialized_loss``; the fund advances what it can of the remainder, and the payer owes the
fund what it advanced and what it could not, for which the receivers hold a claim on it. A
solvent payer short of cash is never socialised: it is a debtor, whose debt counts against
its margin and is repaid from its next cash or by liquidation.
"""

from __future__ import annotations

import attrs

from settlekernel.core.arith import compute_intrinsic_ticks, compute_settlement_minor
from settlekernel.core.events import Expire
from settlekernel.core.kinds import OptionType
from settlekernel.core.model import Instrument, State, replace_state
from settlekernel.core.oracle import Action, check_admissible, settlement_key
from settlekernel.core.outcomes import Accepted, Outcome, PostingCode, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import instrument_key, touch
from settlekernel.kernel.transitions.debt import collect, true_deficit_minor
from settlekernel.kernel.transitions.waterfall import Books, apply_books, new_books


def expiry_flow_minor(instrument: Instrument, quantity_lots: int, settlement_ticks: int) -> int:
    """Return what a holder receives at expiry (negative: pays), SK-EXPIRY-1."""
    if instrument.is_linear:
        return compute_settlement_minor(
            quantity_lots, settlement_ticks, instrument.reference_ticks, instrument.multiplier_minor
        )
    assert instrument.strike_ticks is not None
    intrinsic = compute_intrinsic_ticks(
        is_call=instrument.option_type is OptionType.CALL,
        index_ticks=settlement_ticks,
        strike_ticks=instrument.strike_ticks,
    )
    return compute_settlement_minor(quantity_lots, intrinsic, 0, instrument.multiplier_minor)


def process_expire(state: State, event: Expire) -> Outcome:
    """Settle every position of an expired future or option at its settlement price."""
    rules = state.rules
    # Verify the principal is the operator.
    if event.principal != rules.roles.operator:
        return Rejected(
            Reason.PRINCIPAL_NOT_OPERATOR,
            f"principal {event.principal} is not the operator {rules.roles.operator}",
        )
    # Verify the instrument exists, is not settled yet, and has expired.
    instrument = state.instruments.get(event.instrument)
    if instrument is None:
        return Rejected(Reason.INSTRUMENT_UNKNOWN, f"instrument {event.instrument} is not listed")
    if instrument.settlement_ticks is not None:
        return Rejected(
            Reason.INSTRUMENT_ALREADY_SETTLED,
            f"instrument {instrument.id} settled at {instrument.settlement_ticks}",
        )
    if instrument.expiry_ms is None or state.clock_ms < instrument.expiry_ms:
        return Rejected(
            Reason.INSTRUMENT_NOT_EXPIRED,
            f"instrument {instrument.id} expires at {instrument.expiry_ms}, "
            f"the clock is {state.clock_ms}",
        )
    # Verify the settlement price is fixed and the oracle admits settlement (SK-ORACLE-5).
    settlement_ticks = state.settlement_prices.get(
        settlement_key(instrument.underlying, instrument.expiry_ms)
    )
    if settlement_ticks is None:
        return Rejected(
            Reason.SETTLEMENT_PRICE_UNAVAILABLE,
            f"no {instrument.underlying} index at or after {instrument.expiry_ms} has been "
            "accepted yet: the settlement price is not fixed",
        )
    rejection = check_admissible(state, (instrument.underlying,), Action.SETTLEMENT)
    if rejection is not None:
        return rejection
    # From here the event must succeed.
    return _settle(state, instrument, settlement_ticks)


def _settle(state: State, instrument: Instrument, settlement_ticks: int) -> Accepted:
    """Close every holder at the settlement price and pay the flows through SK-DEBT-1."""
    asset = instrument.settlement_asset
    holders = sorted(state.holders[instrument.id])
    flows = {
        holder: expiry_flow_minor(
            instrument,
            state.accounts[holder].positions[instrument.id].quantity_lots,
            settlement_ticks,
        )
        for holder in holders
    }
    books = new_books()
    deficits: dict[str, int] = {}
    for holder in holders:
        account = state.accounts[holder]
        books.moves[holder, instrument.id] -= account.positions[instrument.id].quantity_lots
        owed = -flows[holder]
        if owed > account.balance(asset):
            # [SK-EXPIRY-3] Only what the whole account cannot cover is a true deficit.
            deficits[holder] = true_deficit_minor(state, account, instrument.id, owed)
    settled = collect(state, books, flows, deficits, PostingCode.EXPIRY_SETTLEMENT)
    return Accepted(
        _commit(state, instrument, settlement_ticks, books, settled.socialised_minor),
        tuple(books.postings),
    )


def _commit(
    state: State, instrument: Instrument, settlement_ticks: int, books: Books, uncovered: int
) -> State:
    """Apply the books (every position closes), and mark the instrument settled."""
    state = apply_books(state, books)
    asset = instrument.settlement_asset
    socialized = state.socialized_loss
    if uncovered:
        socialized = socialized.set(asset, socialized.get(asset, 0) + uncovered)
    return replace_state(
        state,
        instruments=state.instruments.set(
            instrument.id, attrs.evolve(instrument, settlement_ticks=settlement_ticks)
        ),
        socialized_loss=socialized,
        commitment=touch(state.commitment, instrument_key(instrument.id)),
    )
