"""z3 proofs: every theorem holds, each model follows the code, planted faults are caught."""

from __future__ import annotations

import attrs
import pytest
import z3

import settlekernel as sk
from settlekernel.core.events import EVENT_TYPES
from settlekernel.core.rules_toml import parse_rules_toml
from settlekernel.core.wire import decode_event
from settlekernel.proofs import differential, lifecycle, transitions, venue_model
from settlekernel.proofs.engine import Obligation, Status, discharge
from settlekernel.proofs.faults import FAULTS
from settlekernel.proofs.replay import replay
from settlekernel.proofs.runner import catalogue, prove, run_all
from settlekernel.proofs.theorems import (
    GOVERNOR_EVENTS,
    GRANT_EVENTS,
    MODELS,
    transition_theorems,
)

RULES = sk.RuleSet.default()
_, THEOREMS = catalogue(RULES)


@pytest.mark.parametrize("theorem", THEOREMS, ids=lambda theorem: theorem.name)
def test_theorem_is_proved(theorem):
    result = prove(theorem, RULES)
    assert result.verdict.status is Status.PROVED, (result.verdict, result.counterexample)


def test_every_modelled_transition_proves_conservation():
    names = {theorem.name for theorem in THEOREMS}
    assert {f"{cls.__name__}.conservation" for cls in MODELS} <= names


def test_each_model_follows_the_code_on_a_thousand_cases():
    """SK-PROOF-2: each z3 model, evaluated by z3, agrees with ``step`` cell by cell on at
    least 1,000 reachable states and adversarial events."""
    report = differential.run(RULES, seed=20261121, states=140, events_per_state=100, paths=32)
    assert report.problems == []
    venues = {cls.__name__ for cls in GOVERNOR_EVENTS + GRANT_EVENTS}
    others = {cls.__name__ for cls in MODELS} - venues
    assert all(report.checked.get(name, 0) >= 1000 for name in others), report.checked
    # The seven venue events share one walk (venue_cases): 1,000 cases among them at least.
    assert sum(report.checked.get(name, 0) for name in venues) >= 1000, report.checked
    assert all(report.checked.get(name, 0) >= 100 for name in venues), report.checked
    assert all(report.accepted.get(cls.__name__, 0) >= 25 for cls in MODELS), report.accepted
    # The adversarial events reach deep into the guard cascades, not just the first guard.
    assert len(report.rejected) >= 25, report.rejected


def test_a_model_that_drifts_from_the_code_fails_the_differential(monkeypatch):
    """A model that rounds fees down, as the code does not, disagrees on the residue."""
    monkeypatch.setattr(transitions, "ceil_div_ppm", lambda numerator: numerator / 1_000_000)
    report = differential.run(RULES, seed=7, states=3, events_per_state=100)
    assert any("balance/@residue/USDC" in problem for problem in report.problems)


def test_an_oracle_model_that_drifts_from_the_band_fails_the_differential(monkeypatch):
    """A model that takes every median as the index disagrees once a move exceeds the band."""
    monkeypatch.setattr(transitions, "band_move", lambda rules, underlying, index, median: median)
    report = differential.run(RULES, seed=20261121, states=4, events_per_state=100)
    assert any("index/BTC" in problem for problem in report.problems)


def test_an_oracle_model_without_the_band_fails_its_theorem():
    """The band theorem is not vacuous: accept every median as the index and it fails."""

    def unbanded(rules, s, e, c):
        return transitions.oracle_price(
            attrs.evolve(
                rules,
                underlyings=tuple(attrs.evolve(u, band_ppm=999_999) for u in rules.underlyings),
            ),
            s,
            e,
            c,
        )

    models = {**MODELS, sk.OraclePrice: unbanded}
    (band,) = [t for t in transition_theorems(models) if t.name == "OraclePrice.band"]
    result = prove(band, RULES)
    assert result.verdict.status is Status.COUNTEREXAMPLE


def test_a_vacuous_obligation_is_not_a_pass():
    x = z3.Int("x")
    verdict = discharge(Obligation(hypotheses=(x > 0,), claim=x > 0, fires=x < 0))
    assert verdict.status is Status.VACUOUS
    assert not verdict.passed


def test_unknown_is_a_failure():
    """A nonlinear claim z3 cannot settle within the budget is reported, never passed."""
    x, y, z = z3.Ints("x y z")
    claim = x * x * x + y * y * y != z * z * z
    obligation = Obligation(hypotheses=(x > 0, y > 0, z > 0), claim=claim, fires=x > 0)
    verdict = discharge(obligation, timeout_ms=200)
    assert verdict.status is Status.UNKNOWN
    assert not verdict.passed


@pytest.mark.parametrize("fault", FAULTS.values(), ids=lambda fault: fault.name)
def test_planted_fault_is_caught_and_its_counterexample_replays(fault, tmp_path):
    results = {result.theorem.name: result for result in run_all(RULES, fault, tmp_path)}
    caught = results[fault.caught_by]
    assert caught.verdict.status is Status.COUNTEREXAMPLE
    assert caught.replay is not None
    assert caught.replay.reproduced, caught.replay
    # The events file is the counterexample: decoded and replayed, it breaks the same rule.
    assert caught.events_file is not None
    lines = caught.events_file.read_text(encoding="utf-8").splitlines()
    events = [decode_event(line, number) for number, line in enumerate(lines, start=1)]
    rules, _ = catalogue(RULES, fault)
    again = replay(rules, events, None if fault.code is None else fault.code())
    assert again.violation == caught.replay.violation
    if fault.code is not None:
        # On the real kernel the same events break nothing: the fault is the only cause.
        assert replay(RULES, events).violation is None
    # Every other theorem still holds: a fault is caught where it is, not everywhere.
    assert all(
        result.verdict.passed
        for name, result in results.items()
        if name.split(".")[0] != fault.caught_by.split(".")[0]
    )


def test_a_changed_rule_is_reproved_with_a_counterexample_in_its_units():
    """A band wider than the scan range lets one update bankrupt an account at maintenance."""
    rules = parse_rules_toml("[underlyings.BTC]\nband_ppm = 120000\n")
    _, theorems = catalogue(rules)
    results = {t.name: prove(t, rules) for t in theorems if t.transition == "RuleSet"}
    failed = {name for name, result in results.items() if not result.verdict.passed}
    assert failed == {"rules.band-below-maintenance[BTC]"}
    # The counterexample is genuine in Python's own arithmetic (floor division, not z3's).
    v = results["rules.band-below-maintenance[BTC]"].counterexample
    index, median, exposure, equity = v["index"], v["median"], v["exposure"], v["equity"]
    band = rules.underlying_by_symbol["BTC"].band_ppm
    scan = rules.underlying_by_symbol["BTC"].scan_range_ppm
    limit = index * band // 1_000_000
    beyond = abs(median - index) * 1_000_000 > index * band
    after = max(index + (limit if median > index else -limit), 1) if beyond else median
    maintenance = -(-abs(exposure) * index * scan // 1_000_000)
    assert equity >= maintenance
    assert equity + exposure * (after - index) < 0


def test_the_liquidation_model_follows_the_code_on_multi_position_books():
    """SK-PROOF-16: the Liquidate model agrees with ``step`` on at least 1,000 liquidations of
    multi-position books: rungs with collateral sales, bankruptcies the fund covers, and ADL
    with several winners and recovery in kind."""
    problems, plans, cases = [], {}, 0
    for state, event in differential.waterfall_cases(RULES, seed=20261207, paths=110):
        comparison = differential.compare(state, event)
        problems += [f"{event}: {problem}" for problem in comparison.problems]
        cases += 1
        outcome = comparison.outcome
        if isinstance(outcome, sk.Accepted) and not comparison.outside:
            codes = {posting.code.value for posting in outcome.postings}
            winners = {p.credit_account for p in outcome.postings if p.code.value == "adl"}
            kind = "adl" if winners else "insurance" if "insurance" in codes else "rung"
            plans[kind] = plans.get(kind, 0) + 1
            if len(winners) >= 2:
                plans["several winners"] = plans.get("several winners", 0) + 1
            if "collateral_sale" in codes:
                plans["sale"] = plans.get("sale", 0) + 1
            if "collateral_recovery" in codes:
                plans["in kind"] = plans.get("in kind", 0) + 1
            multi = len(state.accounts[event.account].positions) >= 2
            plans["multi-position"] = plans.get("multi-position", 0) + multi
    assert problems == []
    assert cases >= 1000, cases
    assert all(plans.get(kind, 0) >= 5 for kind in ("adl", "insurance", "rung", "sale")), plans
    assert plans.get("several winners", 0) >= 3, plans
    assert plans.get("in kind", 0) >= 1, plans
    assert plans.get("multi-position", 0) >= 10, plans


def test_the_lifecycle_theorem_rests_on_every_conservation_theorem():
    """SK-PROOF-17: the lifecycle claim names each transition's conservation theorem, and
    without the step lemma they give it, its induction does not prove."""
    theorem = next(t for t in THEOREMS if t.name == "lifecycle.conservation")
    for cls in MODELS:
        assert f"{cls.__name__}.conservation" in theorem.statement
    assert any("Backstop" in assumption for assumption in theorem.assumptions)
    assert discharge(lifecycle.obligation()).status is Status.PROVED
    assert discharge(lifecycle.lemma_claim_is_needed()).status is Status.COUNTEREXAMPLE


def test_only_the_backstop_and_the_rule_change_events_have_no_z3_model():
    """Every transition but Backstop (SK-LIQ-6), the rule-change events (SK-GOV-3..5) and
    the standing-instruction events (SK-INSTR-1..3) has a model, the venue events included."""
    modelled = {theorem.transition for theorem in THEOREMS}
    unmodelled = {cls.__name__ for cls in EVENT_TYPES.values()} - modelled
    assert unmodelled == {
        "Backstop",
        "ChangeRules",
        "CancelRulesChange",
        "ApplyRules",
        "RegisterTopUp",
        "CancelInstruction",
        "RunInstructions",
    }


@pytest.mark.parametrize(
    ("cls", "claim", "reason"),
    [
        (sk.AdmitVenue, "governed", "principal_not_governor"),
        (sk.ResumeVenue, "governed", "venue_unknown"),
        (sk.RevokeVenue, "owner-granted", "principal_not_owner"),
        (sk.RestrictVenue, "owner-granted", "venue_unknown"),
    ],
)
def test_a_venue_model_without_its_guard_fails_its_theorem(monkeypatch, cls, claim, reason):
    """The venue theorems are not vacuous: drop the governor, owner or status guard and the
    theorem finds an event that changes a venue or a grant it must not."""
    original = transitions.cascade

    def cascade(guards, omit=frozenset()):
        return original(guards, omit | {sk.Reason(reason)})

    monkeypatch.setattr(venue_model, "cascade", cascade)
    theorem = next(t for t in transition_theorems() if t.name == f"{cls.__name__}.{claim}")
    assert discharge(theorem.build(RULES).obligation).status is Status.COUNTEREXAMPLE
