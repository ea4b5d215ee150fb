"""The built-in demo tells the story it says it tells: each chapter's claims, checked."""

from __future__ import annotations

import settlekernel as sk
from settlekernel.cli.demo import CRASH, EXPIRY, demo_steps
from settlekernel.core.units import INSURANCE_ACCOUNT


def _run():
    state = sk.genesis(sk.RuleSet.default())
    results = []
    for step in demo_steps():
        outcome = sk.step(state, step.event)
        results.append((step, state, outcome))
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
    return state, results


STATE, RESULTS = _run()


def _outcome_of(note_start: str):
    return next((b, o) for s, b, o in RESULTS if s.note.startswith(note_start))


def test_every_chapter_runs_and_every_invariant_holds():
    """Runs the three chapters with every step and state check passing."""
    assert {step.chapter for step, _, _ in RESULTS} == {"A trading day", CRASH, EXPIRY}
    for step, before, outcome in RESULTS:
        if isinstance(outcome, sk.Accepted):
            assert sk.check_step(before, step.event, outcome) == [], step.note
    assert sk.check_invariants(STATE) == []


def test_the_crash_goes_down_the_waterfall():
    """Partial liquidation, a refusal on a too-volatile index, the fund, then ADL."""
    before, partial = _outcome_of("keeper liquidates erin")
    assert isinstance(partial, sk.Accepted)
    assert partial.state.accounts["erin"].positions["BTC-PERP"].quantity_lots == 600
    _, refused = _outcome_of("keeper tries dave")
    assert refused.reason is sk.Reason.ORACLE_NOT_ADMISSIBLE
    before, covered = _outcome_of("erin is bankrupt")
    assert [p.code for p in covered.postings].count(sk.PostingCode.INSURANCE) == 1
    before, adl = _outcome_of("dave is bankrupt")
    deleveraged = {p.credit_account for p in adl.postings if p.code is sk.PostingCode.ADL}
    assert deleveraged == {"fay", "mm"}
    after = adl.state
    assert "BTC-PERP" not in after.accounts["fay"].positions  # The most levered, in full.
    assert after.accounts["mm"].positions["BTC-PERP"].quantity_lots == -500  # In part.
    assert after.accounts["gus"].positions == before.accounts["gus"].positions  # Spared.
    assert after.accounts[INSURANCE_ACCOUNT].balance("USDC") == 0
    assert after.socialized_loss.get("USDC", 0) == 0


def test_christmas_settles_everything_once_at_the_twap():
    """Refuses an early settlement, then settles the future and both options once."""
    _, early = _outcome_of("the operator tries to settle early")
    assert early.reason is sk.Reason.INSTRUMENT_NOT_EXPIRED
    for instrument in ("BTC-25DEC26", "BTC-25DEC26-110000-C", "BTC-25DEC26-85000-P"):
        assert STATE.instruments[instrument].settlement_ticks is not None
        assert STATE.open_interest[instrument] == 0
    _, again = _outcome_of("settle the future again")
    assert again.reason is sk.Reason.INSTRUMENT_ALREADY_SETTLED
