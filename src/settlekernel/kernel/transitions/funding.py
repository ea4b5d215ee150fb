"""Funding for perpetuals, applied through the reference price (spec/30-transitions.md#funding).

A perpetual has no expiry to pull its price to the index; funding does. The operator charges
it once a whole ``funding_interval_ms`` has passed since the last interval charged, and one
charge catches up every whole interval since, up to ``funding_intervals_max`` (SK-FUNDING-1).
The rate is the **time-average** of the mark premium (SK-MARK-1) since the last charge,
clamped to ``± funding_clamp_ppm`` per interval; longs pay shorts when it is positive. The mark
premium counts only trades between different owners, each for as long as it stays in the mark
window and in proportion to its size, so a wash print moves nothing and a lone print stops
counting once it leaves the window: no funding from a premium no trade still confirms.

The charge moves no cash now. It shifts the instrument's reference price, at which every
open position is settled (INV-UNIFORM-REFERENCE), by ``n * trunc(index * rate / 1e6)`` ticks
for ``n`` intervals. A long's unrealised P&L ``q * (mark - reference) * m`` falls by
``q * delta * m`` and a short's rises by the same, so the charge is exactly zero-sum, leaves
no remainder, and is realised in cash by the next variation margin or trade settlement
(SK-FUNDING-3): a payer short of cash becomes a margin question, answered by liquidation,
instead of blocking the charge for everyone. ``funding_index_ticks`` accumulates the shifts.
"""

from __future__ import annotations

import attrs

from settlekernel.core.arith import compute_average_ppm, compute_funding_charge
from settlekernel.core.events import Funding
from settlekernel.core.kinds import InstrumentKind
from settlekernel.core.marks import integrate_premium
from settlekernel.core.model import Instrument, State, replace_state
from settlekernel.core.oracle import Action, check_admissible
from settlekernel.core.outcomes import Accepted, Outcome, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import account_key, instrument_key, touch
from settlekernel.kernel.ledger import with_position


def average_premium_ppm(state: State, instrument: Instrument) -> int:
    """Return the mark premium's time-average since the last charge, toward zero (SK-FUNDING-2).

    The running integral up to ``premium_until_ms`` plus the rest up to the clock, from the
    samples as they are (a trade integrates up to its time before adding its sample).
    """
    window_ms = state.rules.underlying_by_symbol[instrument.underlying].mark_window_ms
    integral = instrument.premium_integral + integrate_premium(
        instrument.premium_samples, instrument.premium_until_ms, state.clock_ms, window_ms
    )
    return compute_average_ppm(integral, state.clock_ms - instrument.premium_since_ms)


def intervals_due(state: State, instrument: Instrument) -> int:
    """Return the whole funding intervals due now, at most ``funding_intervals_max``."""
    interval_ms = state.rules.underlying_by_symbol[instrument.underlying].funding_interval_ms
    elapsed = (state.clock_ms - instrument.last_funding_ms) // interval_ms
    return max(min(elapsed, state.rules.funding_intervals_max), 0)


def funding_shift_ticks(state: State, instrument: Instrument) -> int:
    """Return the reference shift of one charge, in ticks, toward zero (SK-FUNDING-2).

    Every interval due at the average premium, clamped per interval; the shift keeps the
    reference within ``[1, price_ticks_max]``; it is 0 before the first trade, when nobody
    holds a position.
    """
    if instrument.reference_ticks == 0:
        return 0
    return compute_funding_charge(
        state.prices[instrument.underlying].price_ticks,
        average_premium_ppm(state, instrument),
        state.rules.underlying_by_symbol[instrument.underlying].funding_clamp_ppm,
        instrument.reference_ticks,
        state.rules.price_ticks_max,
        intervals_due(state, instrument),
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
    interval_ms = state.rules.underlying_by_symbol[instrument.underlying].funding_interval_ms
    charged = attrs.evolve(
        instrument,
        reference_ticks=reference_ticks,
        # The schedule moves by the intervals charged, so a part interval carries over.
        last_funding_ms=instrument.last_funding_ms + intervals_due(state, instrument) * interval_ms,
        funding_index_ticks=instrument.funding_index_ticks + shift_ticks,
        premium_integral=0,
        premium_since_ms=state.clock_ms,
        premium_until_ms=state.clock_ms,
    )
    return replace_state(
        state,
        accounts=accounts,
        instruments=state.instruments.set(instrument.id, charged),
        commitment=touch(state.commitment, *keys),
    )
