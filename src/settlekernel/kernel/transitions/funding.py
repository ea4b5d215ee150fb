"""Funding for perpetuals, applied through the reference price (spec/30-transitions.md#funding).

A perpetual has no expiry to pull its price to the index; funding does. Once per
``funding_interval_ms`` the operator charges it: the rate is the mark's premium over the
index (SK-MARK-1), clamped to ``± funding_clamp_ppm``, and longs pay shorts when the mark is
above the index (shorts pay longs below it).

The charge moves no cash now. It shifts the instrument's reference price, at which every
open position is settled (INV-UNIFORM-REFERENCE), by ``delta = trunc(index * rate / 1e6)``
ticks. A long's unrealised P&L ``q * (mark - reference) * m`` falls by ``q * delta * m`` and a
short's rises by the same, so the charge is exactly zero-sum, leaves no remainder, and is
realised in cash by the next variation margin or trade settlement (SK-FUNDING-3): a payer
short of cash becomes a margin question, answered by liquidation, instead of blocking the
charge for everyone. ``funding_index_ticks`` accumulates the shifts: the cumulative funding
index of the instrument.
"""

from __future__ import annotations

import attrs

from settlekernel.core.arith import compute_funding_shift
from settlekernel.core.events import Funding
from settlekernel.core.kinds import InstrumentKind
from settlekernel.core.model import Instrument, State, replace_state
from settlekernel.core.oracle import Action, check_admissible
from settlekernel.core.outcomes import Accepted, Outcome, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import account_key, instrument_key, touch
from settlekernel.kernel.ledger import with_position


def funding_shift_ticks(state: State, instrument: Instrument) -> int:
    """Return the reference shift of one charge, in ticks, toward zero (SK-FUNDING-2).

    The shift keeps the reference within ``[1, price_ticks_max]``; it is 0 before the first
    trade, when nobody holds a position.
    """
    if instrument.reference_ticks == 0:
        return 0
    return compute_funding_shift(
        state.prices[instrument.underlying].price_ticks,
        instrument.premium_ppm,
        state.rules.underlying_by_symbol[instrument.underlying].funding_clamp_ppm,
        instrument.reference_ticks,
        state.rules.price_ticks_max,
    )


def process_funding(state: State, event: Funding) -> Outcome:
    """Charge one interval of a perpetual's funding (SK-FUNDING)."""
    rules = state.rules
    # Verify the principal is the operator.
    if event.principal != rules.roles.operator:
        return Rejected(
            Reason.PRINCIPAL_NOT_OPERATOR,
            f"principal {event.principal} is not the operator {rules.roles.operator}",
        )
    # Verify the instrument exists and is a perpetual.
    instrument = state.instruments.get(event.instrument)
    if instrument is None:
        return Rejected(Reason.INSTRUMENT_UNKNOWN, f"instrument {event.instrument} is not listed")
    if instrument.kind is not InstrumentKind.PERPETUAL:
        return Rejected(
            Reason.INSTRUMENT_NOT_PERPETUAL,
            f"instrument {instrument.id} is a {instrument.kind.value}: only perpetuals fund",
        )
    # Verify there is an index and the oracle admits funding on it (SK-ORACLE-5).
    if instrument.underlying not in state.prices:
        return Rejected(
            Reason.PRICE_UNAVAILABLE, f"no index price for underlying {instrument.underlying}"
        )
    rejection = check_admissible(state, (instrument.underlying,), Action.FUNDING)
    if rejection is not None:
        return rejection
    # Verify a whole interval has passed since the last charge (SK-FUNDING-1).
    interval_ms = rules.underlying_by_symbol[instrument.underlying].funding_interval_ms
    due_ms = instrument.last_funding_ms + interval_ms
    if state.clock_ms < due_ms:
        return Rejected(
            Reason.FUNDING_TOO_EARLY,
            f"instrument {instrument.id} was last charged at {instrument.last_funding_ms}; "
            f"the next charge is due at {due_ms}, the clock is {state.clock_ms}",
        )
    # From here the event must succeed.
    return Accepted(_charge(state, instrument, funding_shift_ticks(state, instrument)), ())


def _charge(state: State, instrument: Instrument, shift_ticks: int) -> State:
    """Re-reference every holder and the instrument by the shift; record the charge."""
    reference_ticks = instrument.reference_ticks + shift_ticks
    keys = [instrument_key(instrument.id)]
    accounts = state.accounts
    if shift_ticks:
        with state.accounts.mutate() as mutation:
            for account_id in state.holders[instrument.id]:
                holder = mutation[account_id]
                quantity = holder.positions[instrument.id].quantity_lots
                mutation[account_id] = with_position(
                    holder, instrument.id, quantity, reference_ticks
                )
                keys.append(account_key(account_id))
            accounts = mutation.finish()
    charged = attrs.evolve(
        instrument,
        reference_ticks=reference_ticks,
        last_funding_ms=state.clock_ms,
        funding_index_ticks=instrument.funding_index_ticks + shift_ticks,
    )
    return replace_state(
        state,
        accounts=accounts,
        instruments=state.instruments.set(instrument.id, charged),
        commitment=touch(state.commitment, *keys),
    )
