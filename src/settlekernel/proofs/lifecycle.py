"""The lifecycle theorem: from genesis, after any accepted events, custody = the balances.

INV-CONSERVATION is a state invariant. Each transition theorem ``<T>.conservation`` proves it
*inductive* for one step: every balance outside the step's written cells is unchanged and
the written cells change by exactly the change in custody (SK-PROOF-4). This module states
the induction that joins them (SK-PROOF-17): with ``balances(n, X)`` the sum of every
account's balance of asset ``X`` after ``n`` accepted events and ``custody(n, X)`` custody,

* base: at genesis no account holds anything and custody is empty, so both are 0;
* step: if ``balances(n) = custody(n)`` and event ``n + 1`` is accepted by a transition whose
  conservation theorem is proved, then ``balances(n + 1) - balances(n) = custody(n + 1) -
  custody(n)``, so ``balances(n + 1) = custody(n + 1)``; a rejected event changes nothing
  (INV-ATOMIC-REJECT).

z3 proves base and step for an arbitrary ``n``, which is the induction over the events; the
step lemma is a hypothesis, and the theorems it rests on are listed: ``settlekernel verify``
passes only when every one of them is proved in the same run.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import z3

from settlekernel.proofs.engine import Obligation

STEP: Final = z3.Int("lifecycle.n")
BALANCES: Final = z3.Function("lifecycle.balances", z3.IntSort(), z3.StringSort(), z3.IntSort())
CUSTODY: Final = z3.Function("lifecycle.custody", z3.IntSort(), z3.StringSort(), z3.IntSort())
# A step outside every model: what it does to the sums is not proved.
UNPROVED: Final = z3.Function("lifecycle.unproved", z3.IntSort(), z3.BoolSort())


def assumptions(rests_on: Iterable[str], unmodelled: Iterable[str]) -> tuple[str, ...]:
    """Return what the lifecycle theorem takes for granted, naming the theorems it rests on."""
    missing = sorted(unmodelled)
    return (
        "Each accepted event is one transition whose conservation theorem is proved in the "
        "same run: " + ", ".join(sorted(rests_on)) + ". Each proves the step lemma: balances "
        "outside the written cells unchanged, the written cells changing by the custody "
        "change, so the sum over all accounts (finitely many balances) changes by it too.",
        "A rejected event leaves the state unchanged (INV-ATOMIC-REJECT: tested, not proved).",
        "Genesis holds no balance and no custody: both sums start at 0.",
        (
            "Settling debts and claims after a step (SK-DEBT-2) moves cash between accounts "
            "by double entries with no custody change; it is outside the transition models "
            "and checked by the conservation predicate after every step."
        ),
        (
            "The standing top-ups a variation margin executes after its mark (SK-INSTR-4) "
            "are double entries between two accounts with no custody change; they are "
            "outside the VariationMargin model and checked by the conservation predicate "
            "after every step."
        ),
        (
            "Transitions with no z3 model yet are assumed to conserve, checked by the "
            "predicates only: " + ", ".join(missing)
            if missing
            else "Every transition has a z3 model: none is assumed."
        ),
    )


def obligation() -> Obligation:
    """Return base and induction step of ``balances(n, X) = custody(n, X)`` for all ``n``."""
    n = STEP
    asset = z3.String("lifecycle.asset")
    lemma = z3.ForAll(
        [n, asset],
        z3.Implies(
            z3.And(n >= 0, z3.Not(UNPROVED(n))),
            BALANCES(n + 1, asset) - BALANCES(n, asset)
            == CUSTODY(n + 1, asset) - CUSTODY(n, asset),
        ),
    )
    k = z3.Int("lifecycle.k")
    any_asset = z3.String("lifecycle.any_asset")
    holds = BALANCES(k, any_asset) == CUSTODY(k, any_asset)
    after = BALANCES(k + 1, any_asset) == CUSTODY(k + 1, any_asset)
    genesis = z3.ForAll([asset], z3.And(BALANCES(0, asset) == 0, CUSTODY(0, asset) == 0))
    every_step_proved = z3.ForAll([n], z3.Not(UNPROVED(n)))
    claim = z3.And(
        BALANCES(0, any_asset) == CUSTODY(0, any_asset),
        z3.Implies(z3.And(k >= 0, holds), after),
    )
    return Obligation(
        hypotheses=(lemma, genesis, every_step_proved),
        claim=claim,
        fires=z3.BoolVal(True),
    )


def lemma_claim_is_needed() -> Any:
    """Return the obligation without the step lemma: it must not prove (the test's check)."""
    full = obligation()
    return Obligation(hypotheses=full.hypotheses[1:], claim=full.claim, fires=full.fires)
