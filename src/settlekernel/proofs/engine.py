"""Discharge one proof obligation with z3: proved, counterexample, or a failure (SK-PROOF-1).

An obligation is a claim under hypotheses. It is *proved* when the hypotheses together with
the negated claim are unsatisfiable. ``unknown`` (a timeout, an incomplete theory) is a
failure, never a pass. Every obligation also names the condition under which its
transition fires; the engine checks that the hypotheses and that condition are satisfiable
together, so no theorem holds vacuously because its guards can never pass.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from typing import Any, Final

import attrs
import z3


class Status(enum.Enum):
    """The verdict on an obligation. Only PROVED is a pass."""

    PROVED = "proved"
    COUNTEREXAMPLE = "counterexample"
    UNKNOWN = "unknown"
    VACUOUS = "vacuous"


@attrs.frozen
class Obligation:
    """A claim to prove for every state and event the hypotheses admit.

    ``hypotheses`` are the pre-state invariants and the model's definitions; ``fires`` is
    the transition's acceptance condition (the vacuity check needs a state where it holds);
    ``assumptions`` says in words everything the proof takes for granted.
    """

    hypotheses: tuple[Any, ...]
    claim: Any
    fires: Any
    # Extra constraints for the vacuity check only, naming a simple pre-state where the
    # transition fires: a quantified model is hard for z3 to build, a witness inside it is
    # not, and a satisfiable restriction of the hypotheses shows them satisfiable.
    witness: tuple[Any, ...] = ()
    # A small region to search for a counterexample when the search over all states is
    # inconclusive: a counterexample inside it is a genuine one.
    search: tuple[Any, ...] = ()
    # Further regions, tried in turn after ``search`` (each a tuple of constraints).
    regions: tuple[tuple[Any, ...], ...] = ()


@attrs.frozen
class Verdict:
    """The outcome of discharging one obligation, with z3's model on a counterexample."""

    status: Status
    seconds: float
    model: Any = None
    detail: str = ""

    @property
    def passed(self) -> bool:
        """Return whether the obligation is proved (and not vacuous)."""
        return self.status is Status.PROVED


# z3's search depends on its random seed and on every term already in its context, so an
# obligation that times out under one seed is tried under the next before it is reported
# unknown: each attempt gets a third of the budget (SK-PROOF-1).
SEEDS: Final = (0, 1, 2)


def _solver(timeout_ms: int, seed: int = 0, *, macros: bool = False) -> Any:
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.set("random_seed", seed)
    if macros:
        # A region defines the model's functions by quantified equations: as macros, z3
        # builds the counterexample at once (SK-PROOF-16).
        solver.set("smt.macro_finder", True)
    return solver


def check(assertions: tuple[Any, ...], timeout_ms: int, *, macros: bool = False) -> tuple[Any, Any]:
    """Return z3's answer and the solver that gave it, retrying an unknown on new seeds.

    Each seed gets a third of ``timeout_ms``.
    """
    for seed in SEEDS:
        solver = _solver(max(timeout_ms // len(SEEDS), 1), seed, macros=macros)
        solver.add(*assertions)
        answer = solver.check()
        if answer != z3.unknown:
            break
    return answer, solver


def discharge(obligation: Obligation, timeout_ms: int = 20_000) -> Verdict:
    """Check vacuity, then prove the claim; ``unknown`` is reported as a failure."""
    started = time.perf_counter()
    fires, vacuity = check(
        (*obligation.hypotheses, *obligation.witness, obligation.fires), timeout_ms
    )
    if fires == z3.unsat:
        return Verdict(
            Status.VACUOUS, time.perf_counter() - started, detail="the transition never fires"
        )
    if fires != z3.sat:
        return Verdict(
            Status.UNKNOWN,
            time.perf_counter() - started,
            detail=f"vacuity check: {vacuity.reason_unknown()}",
        )
    negated = (*obligation.hypotheses, z3.Not(obligation.claim))
    regions = ((obligation.search,) if obligation.search else ()) + obligation.regions
    # With a search region the first attempt over all states gets a quarter of the budget:
    # a quantified counterexample is slow to build there and quick inside a region.
    answer, solver = check(negated, timeout_ms // 4 if regions else timeout_ms)
    if answer == z3.unknown and regions:
        for region in regions:
            # Inside a region a quantified counterexample is small enough to build.
            found, inside = check((*negated, *region), timeout_ms // 2, macros=True)
            if found == z3.sat:
                answer, solver = found, inside
                break
        else:
            answer, solver = check(negated, timeout_ms)
    seconds = time.perf_counter() - started
    if answer == z3.unsat:
        return Verdict(Status.PROVED, seconds)
    if answer == z3.sat:
        return Verdict(Status.COUNTEREXAMPLE, seconds, model=solver.model())
    return Verdict(Status.UNKNOWN, seconds, detail=solver.reason_unknown())


def evaluate(expression: Any) -> Any:
    """Return a ground z3 expression simplified to a value (for the differential checks)."""
    return z3.simplify(expression)


def as_python(value: Any) -> int | bool | str:
    """Return a z3 numeral, Boolean or string literal as the Python value it denotes."""
    if z3.is_int_value(value):
        return int(value.as_long())
    if z3.is_true(value) or z3.is_false(value):
        return bool(z3.is_true(value))
    if z3.is_string_value(value):
        return str(value.as_string())
    raise ValueError(f"not a ground value: {value}")


Reader = Callable[[Any], Any]
