"""Standing top-ups the kernel executes (SK-INSTR-1..6): register, cancel, run, the mark.

thin (10,000 USDC) is long 1 BTC of BTC-PERP at 90,000; its owner also holds thin-reserve
(20,000 USDC, no position). A walk of BTC to 85,500 takes thin below maintenance: equity
5,500 USDC against maintenance 6,840 (initial 8,550).
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import settlekernel as sk
from scenario import (
    OK,
    USDC,
    apply_checked,
    balances,
    deposit,
    mark,
    market,
    open_account,
    price,
    run_table,
    trade,
    walk,
)
from settlekernel.commitments.snapshot import decode_state, encode_state
from settlekernel.core.model import replace_state
from settlekernel.core.root import recompute_root, state_root
from settlekernel.core.wire import decode_event, encode_event
from settlekernel.journal.durable import DurableJournal
from settlekernel.kernel.invariants import InvariantId
from settlekernel.kernel.transitions import backstop, instructions, liquidation

RULES = sk.RuleSet.default()
EQUITY, MAINTENANCE, INITIAL = 5_500 * USDC, 6_840 * USDC, 8_550 * USDC


def register(
    account: str = "thin",
    source: str = "thin-reserve",
    *,
    threshold_ppm: int = 1_200_000,
    cap: int = 5_000 * USDC,
    interval_ms: int = 60_000,
    principal: str | None = None,
    asset: str = "USDC",
) -> sk.RegisterTopUp:
    return sk.RegisterTopUp(
        principal=principal or account.split("-", maxsplit=1)[0],
        account=account,
        source=source,
        asset=asset,
        threshold_ppm=threshold_ppm,
        amount_max_minor=cap,
        interval_ms=interval_ms,
    )


def run(account: str = "thin", principal: str = "liq") -> sk.RunInstructions:
    return sk.RunInstructions(principal=principal, account=account)


def cancel(account: str = "thin", principal: str = "thin") -> sk.CancelInstruction:
    return sk.CancelInstruction(principal=principal, account=account)


def liquidate(account: str = "thin") -> sk.Liquidate:
    return sk.Liquidate(principal="liq", account=account, liquidator="liq")


def thin(reserve: int = 20_000 * USDC, extra=(), rules: sk.RuleSet = RULES) -> sk.State:
    """thin long 1 BTC at 90,000, thin-reserve holding ``reserve``, liq to liquidate."""
    funding = [(deposit("thin-reserve", reserve), OK)] if reserve else []
    return market(
        [
            (open_account("thin"), OK),
            (deposit("thin", 10_000 * USDC), OK),
            (open_account("thin", "thin-reserve"), OK),
            *funding,
            (open_account("liq"), OK),
            (deposit("liq", 100_000 * USDC), OK),
            (trade("t1", "thin", "alice", 1_000, 9_000_000), OK),
            *extra,
        ],
        rules,
    )


def fallen(state: sk.State) -> sk.State:
    """BTC walked to 85,500: thin below maintenance, no mark yet."""
    state = run_table(walk("BTC", 8_550_000, 2_000, rounds=2), state)
    report = sk.margin_report(state, "thin")
    assert (report.equity_minor, report.maintenance_minor) == (EQUITY, MAINTENANCE)
    return state


def test_every_rejection_leaves_the_state_unchanged():
    """Each guard in its precedence order, each rejection atomic (apply_checked)."""
    state = thin(extra=[(open_account("mallory"), OK)])
    rows = [
        (register(cap=0), "amount_not_positive"),
        (register(interval_ms=0), "amount_not_positive"),
        (register(threshold_ppm=2**96), "amount_too_large"),
        (register(source="thin"), "transfer_to_same_account"),
        (register(threshold_ppm=999_999), "instruction_invalid"),
        (register(threshold_ppm=100_000_001), "instruction_invalid"),
        (register(asset="BTC"), "instruction_invalid"),
        (register(account="ghost", principal="thin"), "account_unknown"),
        (register(source="ghost"), "account_unknown"),
        (register(principal="mallory"), "principal_not_owner"),
        (register(source="mallory"), "transfer_owners_differ"),
        (cancel(), "instruction_unknown"),
        (run(), "instruction_unknown"),
        (run("ghost"), "account_unknown"),
        (register(), OK),
        (cancel(principal="mallory"), "principal_not_owner"),
        (cancel("ghost"), "account_unknown"),
        # Healthy: equity 10,000 against 1.2 x maintenance 7,200 = 8,640.
        (run(), "nothing_to_top_up"),
    ]
    state = run_table(rows, state)
    root = state_root(state)
    for event in (register(source="mallory"), run(), cancel(principal="mallory")):
        assert isinstance(sk.step(state, event), sk.Rejected)
        assert state_root(state) == root
    assert state.instructions["thin"].source == "thin-reserve"


def test_liquidation_is_refused_while_the_top_up_restores_maintenance():
    """The liquidator runs the top-up first; thin then meets 1.2 x maintenance, rounded up."""
    state = fallen(thin(extra=[(register(), OK)]))
    state = run_table(
        [
            (liquidate(), "top_up_available"),
            (sk.Backstop(principal="anyone", account="thin"), "not_liquidatable"),
        ],
        state,
    )
    outcome = apply_checked(state, run())
    assert isinstance(outcome, sk.Accepted)
    need = -(-MAINTENANCE * 1_200_000 // 1_000_000) - EQUITY
    assert outcome.postings == (
        sk.Posting("thin-reserve", "thin", "USDC", need, sk.PostingCode.TOP_UP),
    )
    state = outcome.state
    report = sk.margin_report(state, "thin")
    assert report.equity_minor == MAINTENANCE * 12 // 10
    assert state.instructions["thin"].used_minor == need
    run_table([(liquidate(), "not_liquidatable"), (run(), "nothing_to_top_up")], state)


def test_an_empty_source_or_a_spent_cap_does_not_block_liquidation():
    """A top-up that cannot restore maintenance right now refuses nothing."""
    run_table([(liquidate(), OK)], fallen(thin(reserve=0, extra=[(register(), OK)])))
    # The cap leaves 1,000 USDC: 6,500 < 6,840, so the liquidation goes ahead.
    small = fallen(thin(extra=[(register(cap=1_000 * USDC), OK)]))
    run_table([(liquidate(), OK)], small)
    # Run first: 1,000 moves, the cap is spent, and the liquidation is accepted after it.
    state = run_table([(run(), OK), (run(), "nothing_to_top_up"), (liquidate(), OK)], small)
    assert balances(state, "thin-reserve")["USDC"] == 19_000 * USDC


def test_the_cap_is_per_interval_and_re_registering_does_not_reset_it():
    state = fallen(thin(extra=[(register(cap=1_000 * USDC, interval_ms=60_000), OK)]))
    state = run_table([(run(), OK), (register(cap=1_000 * USDC), OK)], state)
    assert state.instructions["thin"].used_minor == 1_000 * USDC
    state = run_table([(run(), "nothing_to_top_up")], state)
    # A new interval on the kernel clock: the cap is whole again.
    later = 1_000 + 60_000
    state = run_table(
        [
            (sk.Tick(principal="sequencer", timestamp_ms=later), OK),
            (price("BTC", 8_550_000, later), OK),
            (price("ETH", 300_000, later), OK),
            (run(), OK),
        ],
        state,
    )
    top_up = state.instructions["thin"]
    assert (top_up.used_minor, top_up.window_start_ms) == (1_000 * USDC, later)
    assert balances(state, "thin-reserve")["USDC"] == 18_000 * USDC


def test_the_source_keeps_its_initial_margin():
    """A source with a position gives up only its equity above its own initial margin."""
    state = thin(
        reserve=10_000 * USDC,
        extra=[(trade("t2", "thin-reserve", "bob", 700, 9_000_000), OK), (register(), OK)],
    )
    state = fallen(state)
    held = sk.margin_report(state, "thin-reserve")
    spare = held.equity_minor - held.initial_minor
    assert 0 < spare < MAINTENANCE * 12 // 10 - EQUITY
    outcome = apply_checked(state, run())
    assert isinstance(outcome, sk.Accepted)
    assert outcome.postings[0].amount_minor == spare
    after = sk.margin_report(outcome.state, "thin-reserve")
    assert after.equity_minor == after.initial_minor
    run_table([(run(), "nothing_to_top_up")], outcome.state)


def test_the_backstop_is_refused_while_the_top_up_restores_maintenance():
    state = thin(reserve=50_000 * USDC, extra=[(register(cap=10_000 * USDC), OK)])
    state = run_table(walk("BTC", 8_100_000, 2_000, rounds=4), state)
    report = sk.margin_report(state, "thin")
    assert backstop.below_backstop(state, report.equity_minor, report.maintenance_minor)
    state = run_table(
        [(sk.Backstop(principal="anyone", account="thin"), "top_up_available"), (run(), OK)],
        state,
    )
    assert not sk.margin_report(state, "thin").is_liquidatable


def _crowd(count: int, rules: sk.RuleSet) -> sk.State:
    """``count`` owners o0.. each with a long like thin's and a funded reserve, registered."""
    rows = [(open_account("liq"), OK), (deposit("liq", 100_000 * USDC), OK)]
    for n in range(count):
        owner = f"o{n}"
        rows += [
            (open_account(owner), OK),
            (deposit(owner, 10_000 * USDC), OK),
            (open_account(owner, f"{owner}-reserve"), OK),
            (deposit(f"{owner}-reserve", 20_000 * USDC), OK),
            (trade(f"t{n}", owner, "alice", 1_000, 9_000_000), OK),
            (register(owner, f"{owner}-reserve"), OK),
        ]
    return market(rows, rules)


def test_the_mark_executes_top_ups_in_account_order_at_most_the_bound():
    rules = attrs.evolve(RULES, instructions_per_event_max=2)
    state = run_table(walk("BTC", 8_550_000, 2_000, rounds=2), _crowd(3, rules))
    outcome = apply_checked(state, mark("BTC-PERP"))
    assert isinstance(outcome, sk.Accepted)
    top_ups = [p for p in outcome.postings if p.code is sk.PostingCode.TOP_UP]
    assert [(p.debit_account, p.credit_account) for p in top_ups] == [
        ("o0-reserve", "o0"),
        ("o1-reserve", "o1"),
    ]
    # The third waits for the next mark, or for anyone's RunInstructions.
    state = run_table([(liquidate("o2"), "top_up_available"), (run("o2"), OK)], outcome.state)
    assert not sk.margin_report(state, "o2").is_liquidatable
    none = apply_checked(
        run_table(
            walk("BTC", 8_550_000, 2_000, rounds=2),
            _crowd(2, attrs.evolve(RULES, instructions_per_event_max=0)),
        ),
        mark("BTC-PERP"),
    )
    assert not [p for p in none.postings if p.code is sk.PostingCode.TOP_UP]


def test_a_stale_oracle_runs_nothing_and_refuses_no_liquidation():
    """Without an admissible price the top-up cannot run, so it cannot hold up a liquidation."""
    state = fallen(thin(extra=[(register(), OK)]))
    stale = run_table([(sk.Tick(principal="sequencer", timestamp_ms=10_000_000), OK)], state)
    run_table([(run(), "oracle_not_admissible")], stale)
    assert instructions.plan_top_up(stale, "thin").amount_minor == 0
    assert instructions.plan_top_up(state, "thin").amount_minor > 0


def test_the_mark_posts_its_top_ups_after_its_variation_margin():
    state = fallen(thin(extra=[(register(), OK)]))
    outcome = apply_checked(state, mark("BTC-PERP"))
    assert isinstance(outcome, sk.Accepted)
    codes = [p.code for p in outcome.postings]
    assert codes[-1] is sk.PostingCode.TOP_UP
    assert sk.PostingCode.TOP_UP not in codes[:-1]
    assert sk.PostingCode.VARIATION_MARGIN in codes
    assert not sk.margin_report(outcome.state, "thin").is_liquidatable


def test_wire_round_trip():
    for event in (register(), cancel(), run()):
        assert decode_event(encode_event(event)) == event


def test_snapshot_and_durable_journal_carry_the_instructions(tmp_path):
    events = [
        open_account("thin"),
        deposit("thin", 10_000 * USDC),
        open_account("thin", "thin-reserve"),
        deposit("thin-reserve", 20_000 * USDC),
        register(),
        open_account("thin", "thin-spare"),
        register(source="thin-spare", cap=7 * USDC),
        register("thin-spare", "thin-reserve"),
        cancel("thin-spare"),
    ]
    state = sk.genesis(RULES)
    for event in events:
        state = apply_checked(state, event).state
    assert state.instructions["thin"].source == "thin-spare"
    assert "thin-spare" not in state.instructions
    assert recompute_root(state) == state_root(state)
    restored = decode_state(encode_state(state), RULES)
    assert restored.instructions == state.instructions
    assert state_root(restored) == state_root(state)
    path = tmp_path / "instructions.db"
    journal = DurableJournal.open(path, snapshot_every_entries=3)
    lines = [encode_event(event) for event in events]
    for start in range(0, len(lines), 2):
        journal.append(lines[start : start + 2])
    journal.close()
    reopened = DurableJournal.open(path)
    try:
        assert state_root(reopened.state) == state_root(state)
        assert reopened.state.instructions == state.instructions
    finally:
        reopened.close()


def test_the_root_commits_to_the_instruction():
    state = thin(extra=[(register(), OK)])
    other = run_table([(register(threshold_ppm=1_300_000), OK)], state)
    assert state_root(other) != state_root(state)
    assert recompute_root(other) == state_root(other)


def test_a_planted_liquidation_that_ignores_the_top_up_is_caught(monkeypatch):
    """INV-TOPUP-BEFORE-LIQUIDATION catches a Liquidate and a Backstop without the refusal."""
    monkeypatch.setattr(liquidation, "check_top_up_first", lambda *_: None)
    state = fallen(thin(extra=[(register(), OK)]))
    outcome = sk.step(state, liquidate())
    assert isinstance(outcome, sk.Accepted)
    found = {v.invariant for v in sk.check_step(state, liquidate(), outcome)}
    assert InvariantId.TOPUP_BEFORE_LIQUIDATION in found
    monkeypatch.setattr(backstop, "check_top_up_first", lambda *_: None)
    deep = thin(reserve=50_000 * USDC, extra=[(register(cap=10_000 * USDC), OK)])
    deep = run_table(walk("BTC", 8_100_000, 2_000, rounds=4), deep)
    event = sk.Backstop(principal="anyone", account="thin")
    outcome = sk.step(deep, event)
    assert isinstance(outcome, sk.Accepted)
    assert InvariantId.TOPUP_BEFORE_LIQUIDATION in {
        v.invariant for v in sk.check_step(deep, event, outcome)
    }


def test_a_planted_top_up_from_another_owner_is_caught(monkeypatch):
    """INV-INSTRUCTION-SAME-OWNER catches a kernel that executes from the wrong account."""
    original = instructions.execute_top_up

    def from_alice(state, account_id, found):
        top_up = state.instructions[account_id]
        forged = state.instructions.set(account_id, attrs.evolve(top_up, source="alice"))
        return original(replace_state(state, instructions=forged), account_id, found)

    monkeypatch.setattr(instructions, "execute_top_up", from_alice)
    state = fallen(thin(extra=[(register(), OK)]))
    outcome = sk.step(state, run())
    assert isinstance(outcome, sk.Accepted)
    assert outcome.postings[0].debit_account == "alice"
    found = {v.invariant for v in sk.check_step(state, run(), outcome)}
    assert InvariantId.INSTRUCTION_SAME_OWNER in found


def test_a_planted_release_below_initial_margin_is_caught(monkeypatch):
    """The same invariant catches a top-up that takes its source below initial margin."""
    monkeypatch.setattr(instructions, "release_minor", lambda state, source, asset: 10**18)
    state = thin(
        reserve=10_000 * USDC,
        extra=[(trade("t2", "thin-reserve", "bob", 700, 9_000_000), OK), (register(), OK)],
    )
    state = fallen(state)
    outcome = sk.step(state, run())
    assert isinstance(outcome, sk.Accepted)
    found = {v.invariant for v in sk.check_step(state, run(), outcome)}
    assert InvariantId.INSTRUCTION_SAME_OWNER in found


@settings(max_examples=30, deadline=None)
@given(
    reserve=st.integers(0, 30_000),
    cap=st.integers(1, 10_000),
    threshold=st.integers(1_000_000, 3_000_000),
    drop=st.sampled_from([8_550_000, 8_300_000, 8_100_000]),
)
def test_any_top_up_keeps_every_invariant(reserve, cap, threshold, drop):
    """Whatever the reserve, cap and threshold: run, then liquidate, every step checked."""
    state = thin(
        reserve=reserve * USDC,
        extra=[(register(cap=cap * USDC, threshold_ppm=threshold), OK)],
    )
    state = run_table(walk("BTC", drop, 2_000, rounds=4), state)
    for event in (liquidate(), run(), mark("BTC-PERP"), liquidate()):
        outcome = apply_checked(state, event)
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
    assert balances(state, "thin-reserve").get("USDC", 0) >= 0


@pytest.mark.parametrize("threshold", [1_000_000, 1_000_001, 100_000_000])
def test_the_threshold_bounds_are_inclusive(threshold):
    run_table([(register(threshold_ppm=threshold), OK)], thin())
