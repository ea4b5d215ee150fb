"""The built-in demo tells the story it says it tells: each chapter's claims, checked."""

from __future__ import annotations

import settlekernel as sk
from settlekernel.cli.demo import CRASH, EXPIRY, VENUES, demo_steps
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
    """Runs the four chapters with every step and state check passing."""
    assert {step.chapter for step, _, _ in RESULTS} == {"A trading day", VENUES, CRASH, EXPIRY}
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
    # In part: mm, short 3,500 lots, gives up the 1,000 the most levered could not.
    assert before.accounts["mm"].positions["BTC-PERP"].quantity_lots == -3_500
    assert after.accounts["mm"].positions["BTC-PERP"].quantity_lots == -2_500
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


def test_a_calendar_spread_keeps_its_basis_margin():
    """ivy's perpetual against the future frees most collateral, but not the calendar charge."""
    _, freed = _outcome_of("ivy withdraws 9,000 USDC")
    assert isinstance(freed, sk.Accepted)
    before, refused = _outcome_of("ivy tries to withdraw 1,000 more")
    assert refused.reason is sk.Reason.MARGIN_INSUFFICIENT
    (risk,) = sk.margin_report(before, "ivy").underlyings
    assert risk.scan_loss_minor == 0  # The grid nets the legs to nothing ...
    assert risk.calendar_minor == 1_920 * 10**6  # ... the charge, 2 % of 96,000, does not.


def test_christmas_nets_a_solvent_payer_across_her_collateral():
    """hal owes more USDC than she has: a debt and a claim, then a keeper; nothing socialised."""
    before, settled = _outcome_of("settle the December future")
    assert isinstance(settled, sk.Accepted)
    hal = settled.state.accounts["hal"]
    assert hal.debt_minor > 0
    assert hal.balance("USDC") == 0
    # The fund was empty after the crash: the shorts, alice, ivy and jay, hold claims for it
    # all, each rounded down (the fund is owed the unit the three claims leave).
    claims = {a: settled.state.accounts[a].claim_minor for a in settled.state.claimants}
    assert set(claims) == {"alice", "ivy", "jay"}
    assert hal.debt_minor - len(claims) < sum(claims.values()) <= hal.debt_minor
    _, collected = _outcome_of("a keeper collects hal's debt")
    assert isinstance(collected, sk.Accepted)
    after = collected.state
    assert after.accounts["hal"].debt_minor == 0
    assert not after.claimants
    assert 0 < after.accounts["hal"].balance("BTC") < before.accounts["hal"].balance("BTC")
    assert after.socialized_loss.get("USDC", 0) == 0


def test_a_hedge_across_two_venues_is_margined_once():
    """jay's perpetual (house venue) alone blocks a withdrawal his future on dex then allows."""
    _, alone = _outcome_of("jay tries to withdraw 9,000 USDC")
    assert isinstance(alone, sk.Rejected)
    assert alone.reason is sk.Reason.MARGIN_INSUFFICIENT
    _, hedged = _outcome_of("jay withdraws 9,000 USDC")
    assert isinstance(hedged, sk.Accepted)
    _, rogue = _outcome_of("dex books a trade on bob's account")
    assert isinstance(rogue, sk.Rejected)
    assert rogue.reason is sk.Reason.VENUE_NOT_AUTHORISED
