"""Run the catalogue: prove each theorem, and turn every failure into a replay (SK-PROOF-5).

``catalogue(rules, fault)`` is every transition theorem (over the models, or a fault's) and
every rule-set theorem (over the rules, or a fault's). ``prove`` discharges one; on a
counterexample it searches again inside the theorem's realisable region, realises the model
as events from genesis, writes them as JSON Lines and replays them through the kernel (with
the fault's code patched in), reporting the first invariant violation the replay shows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import z3

from settlekernel.core.rules import RuleSet
from settlekernel.proofs.engine import Status, Verdict, as_python, check, discharge
from settlekernel.proofs.faults import Fault
from settlekernel.proofs.replay import Replay, replay, write_jsonl
from settlekernel.proofs.rulesets import rule_theorems
from settlekernel.proofs.symbolic import product_is_multiplication
from settlekernel.proofs.theorems import MODELS, Instance, Theorem, transition_theorems

DEFAULT_TIMEOUT_MS = 20_000


@attrs.frozen
class Result:
    """One theorem's verdict, its counterexample values, and the replay of a failure."""

    theorem: Theorem
    verdict: Verdict
    counterexample: dict[str, object] = attrs.field(factory=dict)
    replay: Replay | None = None
    events_file: Path | None = None
    note: str = ""


def catalogue(rules: RuleSet, fault: Fault | None = None) -> tuple[RuleSet, list[Theorem]]:
    """Return the rules the theorems are instantiated with and every theorem."""
    models = MODELS if fault is None else {**MODELS, **fault.models}
    if fault is not None and fault.rules is not None:
        rules = fault.rules(rules)
    return rules, transition_theorems(models) + rule_theorems(rules)


def _values(model: Any, instance: Instance) -> dict[str, object]:
    if instance.event:
        return {
            field: as_python(model.eval(term, model_completion=True))
            for field, term in instance.event.items()
        }
    return {str(decl.name()): as_python(model[decl]) for decl in model.decls() if decl.arity() == 0}


def _realisable_model(theorem: Theorem, rules: RuleSet, instance: Instance, timeout_ms: int) -> Any:
    """Return a counterexample inside the theorem's realisable region, or None."""
    if theorem.region is None:
        return None
    for tier in theorem.region(rules, instance):
        answer, solver = check(
            (
                *instance.obligation.hypotheses,
                z3.Not(instance.obligation.claim),
                *tier,
                *product_is_multiplication(),
            ),
            timeout_ms,
        )
        if answer == z3.sat:
            return solver.model()
    return None


def prove(
    theorem: Theorem,
    rules: RuleSet,
    fault: Fault | None = None,
    out_dir: Path | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
) -> Result:
    """Discharge one theorem; realise and replay its counterexample if it fails."""
    instance = theorem.build(rules)
    verdict = discharge(instance.obligation, timeout_ms)
    if verdict.status is not Status.COUNTEREXAMPLE:
        return Result(theorem, verdict)
    model = verdict.model
    if theorem.region is not None:
        model = _realisable_model(theorem, rules, instance, timeout_ms)
        if model is None:
            return Result(
                theorem,
                verdict,
                _values(verdict.model, instance),
                note="no counterexample inside the region events can build: not replayed",
            )
    values = _values(model, instance)
    if theorem.realise is None:
        return Result(theorem, verdict, values, note="no replay: the counterexample is numbers")
    events = theorem.realise(rules, instance, model)
    result = replay(rules, events, None if fault is None or fault.code is None else fault.code())
    path = None
    if out_dir is not None:
        path = out_dir / f"{theorem.name.replace('[', '-').replace(']', '')}.jsonl"
        write_jsonl(path, result)
    return Result(theorem, verdict, values, result, path)


def run_all(
    rules: RuleSet,
    fault: Fault | None = None,
    out_dir: Path | None = None,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    progress: Callable[[Theorem], None] | None = None,
) -> list[Result]:
    """Prove every theorem of the catalogue; return one result each, in catalogue order."""
    rules, theorems = catalogue(rules, fault)
    results = []
    for theorem in theorems:
        results.append(prove(theorem, rules, fault, out_dir, timeout_ms))
        if progress is not None:
            progress(theorem)
    return results
