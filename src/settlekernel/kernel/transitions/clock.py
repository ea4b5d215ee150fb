"""The kernel clock: the sequencer's heartbeat (spec/30-transitions.md#tick, SK-TICK).

Oracle sources move the clock only by a quorum, so when sources fall silent the clock would
stop with them and the last reports would stay fresh for ever: an account insolvent at the
live price could still withdraw against the dead one. ``Tick`` gives the kernel time of its
own. The sequencer (``roles.sequencer``, the party that orders events, as a rollup's block
time does) reports it; staleness is then measured against a clock that moves whatever the
sources do (SK-ORACLE-2).

Who can game it: only the sequencer. Ticking ahead of real time makes reports stale and so
halts trading, margin checks and liquidation until sources catch up; it moves no value, as
staleness only ever withdraws admissibility. Ticking backwards is refused.
"""

from __future__ import annotations

from settlekernel.core.events import Tick
from settlekernel.core.guards import check_ranges
from settlekernel.core.model import State, replace_state
from settlekernel.core.outcomes import Accepted, Outcome, Rejected
from settlekernel.core.reasons import Reason


def process_tick(state: State, event: Tick) -> Outcome:
    """Move the kernel clock forward to the sequencer's time (SK-TICK)."""
    # Verify the principal is the sequencer.
    if event.principal != state.rules.roles.sequencer:
        return Rejected(
            Reason.PRINCIPAL_NOT_SEQUENCER,
            f"principal {event.principal} is not the sequencer {state.rules.roles.sequencer}",
        )
    # Verify the timestamp is within bounds.
    rejection = check_ranges(event, state.rules)
    if rejection is not None:
        return rejection
    # Verify the clock moves forward: time never goes back and a repeated tick is refused.
    if event.timestamp_ms <= state.clock_ms:
        return Rejected(
            Reason.TICK_NOT_NEWER,
            f"tick {event.timestamp_ms} is not after the kernel clock {state.clock_ms}",
        )
    # From here the event must succeed.
    return Accepted(replace_state(state, clock_ms=event.timestamp_ms), ())
