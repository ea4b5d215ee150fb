"""Markets: list an instrument, accept an index price (spec/30-transitions.md)."""

from __future__ import annotations

from immutables import Map

from settlekernel.core.events import ListInstrument, OraclePrice, OracleVolatility
from settlekernel.core.guards import check_ranges
from settlekernel.core.kinds import InstrumentKind
from settlekernel.core.model import (
    IndexPrice,
    IndexSample,
    IndexVolatility,
    Instrument,
    State,
    replace_state,
)
from settlekernel.core.oracle import evaluate, settlement_key, settlement_twap, with_history
from settlekernel.core.outcomes import Accepted, Outcome, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import (
    history_key,
    instrument_key,
    price_key,
    report_key,
    settlement_price_key,
    touch,
    volatility_key,
)

EMPTY_HOLDERS: Map[str, None] = Map()
EMPTY_REPORTS: Map[str, IndexPrice] = Map()


def process_list_instrument(state: State, event: ListInstrument) -> Outcome:
    """List a perpetual, future or option (SK-LIST)."""
    rules = state.rules
    # Verify the principal is the operator.
    if event.principal != rules.roles.operator:
        return Rejected(
            Reason.PRINCIPAL_NOT_OPERATOR,
            f"principal {event.principal} is not the operator {rules.roles.operator}",
        )
    # Verify the strike and expiry are within bounds.
    rejection = check_ranges(event, rules)
    if rejection is not None:
        return rejection
    # Verify the specification is complete and consistent for its kind.
    problem = _instrument_spec_problem(state, event)
    if problem is not None:
        return Rejected(Reason.INSTRUMENT_SPEC_INVALID, f"instrument {event.instrument}: {problem}")
    # Verify the instrument id is free.
    if event.instrument in state.instruments:
        return Rejected(
            Reason.INSTRUMENT_EXISTS, f"instrument {event.instrument} is already listed"
        )
    # Verify the settlement asset and the underlying are in the rule set.
    if event.settlement_asset not in rules.asset_by_symbol:
        return Rejected(
            Reason.ASSET_UNKNOWN, f"asset {event.settlement_asset} is not in the rule set"
        )
    if event.underlying not in rules.underlying_by_symbol:
        return Rejected(
            Reason.UNDERLYING_UNKNOWN, f"underlying {event.underlying} is not in the rule set"
        )
    # Verify the kernel has room for another instrument.
    if len(state.instruments) >= rules.instruments_max:
        return Rejected(
            Reason.INSTRUMENT_LIMIT_REACHED,
            f"the kernel lists instruments_max={rules.instruments_max} instruments",
        )
    # From here the event must succeed.
    instrument = Instrument(
        id=event.instrument,
        kind=event.kind,
        underlying=event.underlying,
        settlement_asset=event.settlement_asset,
        multiplier_minor=event.multiplier_minor,
        expiry_ms=event.expiry_ms,
        strike_ticks=event.strike_ticks,
        option_type=event.option_type,
        reference_ticks=0,
        # The first funding charge is due one interval after listing (SK-FUNDING-1).
        last_funding_ms=state.clock_ms,
    )
    return Accepted(
        replace_state(
            state,
            instruments=state.instruments.set(instrument.id, instrument),
            open_interest=state.open_interest.set(instrument.id, 0),
            holders=state.holders.set(instrument.id, EMPTY_HOLDERS),
            pending_expiries=_with_pending_expiry(state, instrument),
            commitment=touch(state.commitment, instrument_key(instrument.id)),
        ),
        (),
    )


def _with_pending_expiry(state: State, instrument: Instrument) -> Map[str, tuple[int, ...]]:
    """Return the pending expiries with the new instrument's, if it has one (SK-EXPIRY-2)."""
    expiry_ms = instrument.expiry_ms
    pending = state.pending_expiries.get(instrument.underlying, ())
    if expiry_ms is None or expiry_ms in pending:
        return state.pending_expiries
    return state.pending_expiries.set(instrument.underlying, tuple(sorted((*pending, expiry_ms))))


def _instrument_spec_problem(state: State, event: ListInstrument) -> str | None:
    """Return what is wrong with the instrument's fields for its kind (SK-LIST-3), if any."""
    if not 1 <= event.multiplier_minor <= state.rules.multiplier_minor_max:
        return (
            f"multiplier_minor {event.multiplier_minor} outside "
            f"[1, {state.rules.multiplier_minor_max}]"
        )
    required = {
        InstrumentKind.PERPETUAL: (False, False, False),
        InstrumentKind.FUTURE: (True, False, False),
        InstrumentKind.OPTION: (True, True, True),
    }[event.kind]
    present = (
        event.expiry_ms is not None,
        event.strike_ticks is not None,
        event.option_type is not None,
    )
    for name, needed, given in zip(
        ("expiry_ms", "strike_ticks", "option_type"), required, present, strict=True
    ):
        if needed and not given:
            return f"a {event.kind.value} needs {name}"
        if given and not needed:
            return f"a {event.kind.value} takes no {name}"
    if event.expiry_ms is not None and event.expiry_ms <= state.clock_ms:
        return f"expiry_ms {event.expiry_ms} is not after the kernel clock {state.clock_ms}"
    # [Modified in v2] Every instrument settles in the valuation asset, so an account's
    # positions and collateral net in one margin pool (SK-PM).
    if event.settlement_asset != state.rules.valuation_asset:
        return (
            f"settlement_asset {event.settlement_asset} is not the valuation asset "
            f"{state.rules.valuation_asset}"
        )
    return None


def process_oracle_volatility(state: State, event: OracleVolatility) -> Outcome:
    """Accept an implied volatility for an underlying (SK-VOL)."""
    rules = state.rules
    # Verify the principal is an oracle.
    if event.principal not in rules.roles.oracles:
        return Rejected(
            Reason.PRINCIPAL_NOT_ORACLE, f"principal {event.principal} is not an oracle"
        )
    # Verify the volatility and the timestamp are within bounds.
    rejection = check_ranges(event, rules)
    if rejection is not None:
        return rejection
    # Verify the underlying is in the rule set.
    if event.underlying not in rules.underlying_by_symbol:
        return Rejected(
            Reason.UNDERLYING_UNKNOWN, f"underlying {event.underlying} is not in the rule set"
        )
    # Verify the report is newer than the accepted one.
    current = state.volatilities.get(event.underlying)
    if current is not None and event.timestamp_ms <= current.timestamp_ms:
        return Rejected(
            Reason.ORACLE_TIMESTAMP_NOT_NEWER,
            f"{event.underlying} volatility timestamp {event.timestamp_ms} is not after the "
            f"accepted {current.timestamp_ms}",
        )
    # From here the event must succeed.
    return Accepted(
        replace_state(
            state,
            # A volatility report does not move the clock: it has no quorum behind it.
            volatilities=state.volatilities.set(
                event.underlying, IndexVolatility(event.volatility_ppm, event.timestamp_ms)
            ),
            commitment=touch(state.commitment, volatility_key(event.underlying)),
        ),
        (),
    )


def process_oracle_price(state: State, event: OraclePrice) -> Outcome:
    """Record a source's price report and update the underlying's index (SK-ORACLE)."""
    rules = state.rules
    # Verify the principal is an oracle source.
    if event.principal not in rules.roles.oracles:
        return Rejected(
            Reason.PRINCIPAL_NOT_ORACLE, f"principal {event.principal} is not an oracle source"
        )
    # Verify the price and the timestamp are within bounds.
    rejection = check_ranges(event, rules)
    if rejection is not None:
        return rejection
    # Verify the underlying is in the rule set.
    if event.underlying not in rules.underlying_by_symbol:
        return Rejected(
            Reason.UNDERLYING_UNKNOWN, f"underlying {event.underlying} is not in the rule set"
        )
    # Verify the report is newer than this source's last: no stale replays, no time travel.
    reports = state.reports.get(event.underlying, EMPTY_REPORTS)
    previous = reports.get(event.principal)
    if previous is not None and event.timestamp_ms <= previous.timestamp_ms:
        return Rejected(
            Reason.ORACLE_TIMESTAMP_NOT_NEWER,
            f"{event.principal} reported {event.underlying} at {previous.timestamp_ms}; "
            f"{event.timestamp_ms} is not later",
        )
    # From here the event must succeed.
    return Accepted(_with_report(state, event, reports), ())


def _with_report(state: State, event: OraclePrice, reports: Map[str, IndexPrice]) -> State:
    """Store the report; accept the index if the oracle is valid or band-limited (SK-ORACLE-3)."""
    underlying = event.underlying
    reports = reports.set(event.principal, IndexPrice(event.price_ticks, event.timestamp_ms))
    keys = [report_key(underlying)]
    now_ms = max(state.clock_ms, event.timestamp_ms)
    evaluation = evaluate(
        reports, state.prices.get(underlying), now_ms, state.rules.underlying_by_symbol[underlying]
    )
    # A quorum moves the clock to its time, whether or not its median is accepted.
    clock_ms = max(state.clock_ms, evaluation.quorum_ms or 0)
    accepted = evaluation.candidate
    if accepted is None or accepted == state.prices.get(underlying):
        return replace_state(
            state,
            reports=state.reports.set(underlying, reports),
            clock_ms=clock_ms,
            commitment=touch(state.commitment, *keys),
        )
    before = state.history.get(underlying, ())
    history = with_history(
        before, accepted, state.rules.price_history_interval_ms, state.rules.price_history_max
    )
    keys += [price_key(underlying), history_key(underlying)]
    settlement_prices, pending = _fix_settlements(state, underlying, accepted, before, keys)
    return replace_state(
        state,
        reports=state.reports.set(underlying, reports),
        prices=state.prices.set(underlying, accepted),
        history=state.history.set(underlying, history),
        settlement_prices=settlement_prices,
        pending_expiries=pending,
        clock_ms=clock_ms,
        commitment=touch(state.commitment, *keys),
    )


def _fix_settlements(
    state: State,
    underlying: str,
    accepted: IndexPrice,
    history: tuple[IndexSample, ...],
    keys: list[str],
) -> tuple[Map[str, int], Map[str, tuple[int, ...]]]:
    """Fix the settlement price of every expiry the accepted index reaches (SK-EXPIRY-2).

    The first accepted index stamped at or after an expiry fixes that expiry's settlement
    price: the TWAP over the window before it of the history as it stood before this index
    (whose head is the index in force at expiry), or, if no sample is that old, this index
    itself. Fixed once, never revised.
    """
    pending = state.pending_expiries.get(underlying, ())
    settlement_prices = state.settlement_prices
    window_ms = state.rules.underlying_by_symbol[underlying].settlement_window_ms
    interval_ms = state.rules.price_history_interval_ms
    reached = [expiry_ms for expiry_ms in pending if expiry_ms <= accepted.timestamp_ms]
    for expiry_ms in reached:
        twap = settlement_twap(history, expiry_ms, window_ms, interval_ms)
        key = settlement_key(underlying, expiry_ms)
        settlement_prices = settlement_prices.set(
            key, accepted.price_ticks if twap is None else twap
        )
        keys.append(settlement_price_key(key))
    if not reached:
        return settlement_prices, state.pending_expiries
    remaining = pending[len(reached) :]
    pending_expiries = (
        state.pending_expiries.set(underlying, remaining)
        if remaining
        else state.pending_expiries.delete(underlying)
    )
    return settlement_prices, pending_expiries
