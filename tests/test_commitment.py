"""State roots: canonical, incremental, and the same in any process (INV-DETERMINISM)."""

from __future__ import annotations

import os
import subprocess
import sys

import attrs
from hypothesis import given
from hypothesis import strategies as st

import settlekernel as sk
from scenario import OK, deposit, market, open_account, run_table, trade
from settlekernel.cli.demo import demo_steps
from settlekernel.core.root import DIRTY_LEAVES_MAX, encode_account

# Golden vectors: any change to an encoding, the lattice or the root formula changes these,
# and must be a deliberate, versioned change (spec/40-roots.md).
GENESIS_ROOT = "168455838abe206822da263b8bd829aaf4b4dabd2a868cd862c0190b3a7d83ae"
DEMO_ROOT = "26bf9a339a4d5e27836654c415997706e01f7ef27da27f416fdaac6487cf078f"

DEMO_ROOT_SCRIPT = """
import settlekernel as sk
from settlekernel.cli.demo import demo_steps
state, _ = sk.apply_batch(sk.genesis(sk.RuleSet.default()), [s.event for s in demo_steps()])
print(sk.state_root(state).hex())
"""


def demo_state() -> sk.State:
    state, _ = sk.apply_batch(sk.genesis(sk.RuleSet.default()), [s.event for s in demo_steps()])
    return state


def test_golden_roots():
    """INV-DETERMINISM: genesis and the demo give the recorded roots."""
    assert sk.state_root(sk.genesis(sk.RuleSet.default())).hex() == GENESIS_ROOT
    assert sk.state_root(demo_state()).hex() == DEMO_ROOT


def test_same_root_in_another_process_with_another_hash_seed():
    """INV-DETERMINISM: a fresh interpreter with another PYTHONHASHSEED gets the same root."""
    roots = set()
    for seed in ("0", "12345"):
        result = subprocess.run(
            [sys.executable, "-c", DEMO_ROOT_SCRIPT],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        roots.add(result.stdout.strip())
    assert roots == {DEMO_ROOT}


def test_incremental_root_equals_scratch_after_every_demo_event():
    """INV-ROOT-CONSISTENT: folded or not, the incremental root equals a full recomputation."""
    state = sk.genesis(sk.RuleSet.default())
    for demo_step in demo_steps():
        for start in (state, sk.fold(state)):
            outcome = sk.step(start, demo_step.event)
            if isinstance(outcome, sk.Accepted):
                assert sk.state_root(outcome.state) == sk.recompute_root(outcome.state)
                assert sk.state_root(sk.fold(outcome.state)) == sk.state_root(outcome.state)
        if isinstance(outcome, sk.Accepted):
            state = outcome.state


def test_fold_changes_no_content_and_no_root():
    """Folds dirty leaves into the lattice without changing content or root."""
    state = demo_state()
    unfolded = sk.step(state, open_account("zed"))
    assert isinstance(unfolded, sk.Accepted)
    folded = sk.fold(unfolded.state)
    assert folded == unfolded.state
    assert not folded.commitment.dirty
    assert sk.state_root(folded) == sk.state_root(unfolded.state)


def test_root_depends_on_content_not_history():
    """Gives equal roots to equal states reached by different event orders."""
    rows_a = [
        (open_account("a"), OK),
        (open_account("b"), OK),
        (deposit("a", 5), OK),
        (deposit("b", 7), OK),
    ]
    rows_b = [rows_a[1], rows_a[3], rows_a[0], rows_a[2]]
    assert sk.state_root(run_table(rows_a)) == sk.state_root(run_table(rows_b))


def test_every_field_is_committed():
    """Changes the root when any committed field changes, by one unit or one character."""
    state = market([(trade("t1", "alice", "bob", 10, 9_000_000), OK)])
    base = sk.state_root(state)
    alice = state.accounts["alice"]
    variants = [
        attrs.evolve(state, clock_ms=state.clock_ms + 1),
        attrs.evolve(state, custody=state.custody.set("USDC", state.custody["USDC"] + 1)),
        attrs.evolve(state, rules=attrs.evolve(state.rules, fee_rate_max_ppm=9_999)),
    ]
    for variant in variants:
        assert sk.state_root(variant) != base
    mutated = attrs.evolve(alice, owner="alicE")
    changed = attrs.evolve(state, accounts=state.accounts.set("alice", mutated))
    assert sk.recompute_root(changed) != base


def test_dirty_leaves_are_bounded():
    """Folds inside step once more than DIRTY_LEAVES_MAX leaves are dirty (SK-ROOT-4)."""
    state = sk.genesis(sk.RuleSet.default())
    for number in range(DIRTY_LEAVES_MAX + 2):
        outcome = sk.step(state, open_account(f"acct-{number}"))
        assert isinstance(outcome, sk.Accepted)
        state = outcome.state
        assert len(state.commitment.dirty) <= DIRTY_LEAVES_MAX
    assert sk.state_root(state) == sk.recompute_root(state)


@given(
    st.dictionaries(st.sampled_from(["BTC", "ETH", "USDC"]), st.integers(1, 10**20)),
    st.dictionaries(st.sampled_from(["BTC", "ETH", "USDC"]), st.integers(1, 10**20)),
)
def test_account_encoding_is_injective_on_balances(first, second):
    """Encodes two accounts alike only if their balances are equal."""
    from immutables import Map  # noqa: PLC0415

    a = sk.Account("x", "x", Map(first), Map())
    b = sk.Account("x", "x", Map(second), Map())
    assert (encode_account(a) == encode_account(b)) == (first == second)


def test_the_kernel_allocates_no_reference_cycles():
    """Leaves nothing for the cyclic GC, so replay processes may disable it safely."""
    import gc  # noqa: PLC0415

    gc.collect()
    gc.disable()
    try:
        state = demo_state()
        for _ in range(3):
            state, _ = sk.apply_batch(state, [open_account(f"cycle-{_}")])
        del state
        assert gc.collect() == 0
    finally:
        gc.enable()
