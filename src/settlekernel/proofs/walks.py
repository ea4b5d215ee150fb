"""Seeded walks of reachable states, shared by the differential checks (SK-PROOF-2).

A walk starts from genesis, applies set-up events that must all be accepted, then draws
events one at a time from the state it has reached: each drawn event well-formed in shape
is yielded with the state it applies to, stepped, and (if ``keep`` says so) the walk moves
on to the state it accepted.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence

from settlekernel.core.guards import check_shape
from settlekernel.core.model import State
from settlekernel.core.outcomes import Accepted
from settlekernel.core.rules import RuleSet
from settlekernel.kernel.dispatch import genesis, step

Draw = Callable[[random.Random, State, int], object]


def set_up(rules: RuleSet, events: Sequence[object]) -> State:
    """Return the state after ``events`` from genesis, every one of them accepted."""
    state = genesis(rules)
    for event in events:
        outcome = step(state, event)
        assert isinstance(outcome, Accepted), outcome
        state = outcome.state
    return state


def walk(
    start: State,
    rng: random.Random,
    events: int,
    draw: Draw,
    keep: Callable[[random.Random], bool] = lambda _: True,
) -> Iterator[tuple[State, object]]:
    """Yield ``events`` drawn (state, event) pairs from ``start``, skipping ill-shaped ones."""
    state = start
    for number in range(events):
        event = draw(rng, state, number)
        if check_shape(event) is not None:  # type: ignore[arg-type]
            continue
        yield state, event
        outcome = step(state, event)
        if isinstance(outcome, Accepted) and keep(rng):
            state = outcome.state
