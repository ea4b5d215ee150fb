"""Markets: list an instrument, accept an index price (spec/30-transitions.md)."""

from __future__ import annotations

from immutables import Map

from settlekernel.commitment import instrument_key, price_key, touch, volatility_key
from settlekernel.events import ListInstrument, OraclePrice, OracleVolatility
from settlekernel.guards import check_ranges
from settlekernel.model import (
    IndexPrice,
    IndexVolatility,
    Instrument,
    InstrumentKind,
    State,
    replace_state,
)
from settlekernel.outcomes import Accepted, Outcome, Rejected
from settlekernel.reasons import Reason

EMPTY_HOLDERS: Map[str, None] = Map()


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
    )
    return Accepted(
        replace_state(
            state,
            instruments=state.instruments.set(instrument.id, instrument),
            open_interest=state.open_interest.set(instrument.id, 0),
            holders=state.holders.set(instrument.id, EMPTY_HOLDERS),
            commitment=touch(state.commitment, instrument_key(instrument.id)),
        ),
        (),
    )


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
            volatilities=state.volatilities.set(
                event.underlying, IndexVolatility(event.volatility_ppm, event.timestamp_ms)
            ),
            clock_ms=max(state.clock_ms, event.timestamp_ms),
            commitment=touch(state.commitment, volatility_key(event.underlying)),
        ),
        (),
    )


def process_oracle_price(state: State, event: OraclePrice) -> Outcome:
    """Accept an index price for an underlying (SK-ORACLE)."""
    rules = state.rules
    # Verify the principal is an oracle.
    if event.principal not in rules.roles.oracles:
        return Rejected(
            Reason.PRINCIPAL_NOT_ORACLE, f"principal {event.principal} is not an oracle"
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
    # Verify the report is newer than the accepted one: no stale replays, no time travel.
    current = state.prices.get(event.underlying)
    if current is not None and event.timestamp_ms <= current.timestamp_ms:
        return Rejected(
            Reason.ORACLE_TIMESTAMP_NOT_NEWER,
            f"{event.underlying} timestamp {event.timestamp_ms} is not after the accepted "
            f"{current.timestamp_ms}",
        )
    # From here the event must succeed.
    return Accepted(
        replace_state(
            state,
            prices=state.prices.set(
                event.underlying, IndexPrice(event.price_ticks, event.timestamp_ms)
            ),
            clock_ms=max(state.clock_ms, event.timestamp_ms),
            commitment=touch(state.commitment, price_key(event.underlying)),
        ),
        (),
    )
