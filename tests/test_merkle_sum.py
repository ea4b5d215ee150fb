"""Merkle-sum proofs of liabilities: each account checks its inclusion and the total."""

from __future__ import annotations

import hashlib
import json

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import settlekernel as sk
from settlekernel.cli.demo import demo_steps
from settlekernel.commitments.merkle_sum import (
    EMPTY_LEAF,
    SUM_LIMIT,
    MerkleSumError,
    Node,
    build_tree,
    commit,
    compute_leaf,
    compute_parent,
    compute_salt,
    liabilities,
    proof_from_json,
    proof_to_json,
    prove,
    verify_proof,
)
from settlekernel.core.units import SYSTEM_OWNER

RULES = sk.RuleSet.default()


def demo_final_state() -> sk.State:
    state = sk.genesis(RULES)
    for demo_step in demo_steps():
        outcome = sk.step(state, demo_step.event)
        state = outcome.state if isinstance(outcome, sk.Accepted) else state
    return sk.fold(state)


FINAL = demo_final_state()
SECRET = bytes(range(32))
TREES = commit(FINAL, SECRET)
CUSTOMERS = sorted(a.id for a in FINAL.accounts.values() if a.owner != SYSTEM_OWNER)
SALT = b"\x07" * 32


def test_every_account_proves_its_balance_in_every_asset():
    """Verifies each customer's proof in each asset against that asset's root and total."""
    assert set(TREES) == {"BTC", "ETH", "USDC"}
    for asset, tree in TREES.items():
        for account in CUSTOMERS:
            proof = prove(tree, account)
            assert proof is not None
            assert proof.balance_minor == FINAL.accounts[account].balance(asset)
            assert verify_proof(proof, tree.root.hash, tree.root.sum_minor) is None


def test_the_total_is_customer_liabilities_and_adds_up_to_custody():
    """Totals the customers' balances; with the system accounts' that is custody."""
    for asset, tree in TREES.items():
        customers = sum(balance for _, balance in liabilities(FINAL, asset))
        system = sum(a.balance(asset) for a in FINAL.accounts.values() if a.owner == SYSTEM_OWNER)
        assert tree.root.sum_minor == customers
        assert customers + system == FINAL.custody.get(asset, 0)
    assert TREES["USDC"].root.sum_minor > 0


def test_system_accounts_and_strangers_have_no_leaf():
    """Gives no proof for a system account or an unknown id."""
    assert prove(TREES["USDC"], "@insurance") is None
    assert prove(TREES["USDC"], "nobody") is None


def _usdc_proof(account: str = "alice"):
    proof = prove(TREES["USDC"], account)
    assert proof is not None
    return proof


ROOT = TREES["USDC"].root


@pytest.mark.parametrize(
    ("forge", "problem"),
    [
        (lambda p: attrs.evolve(p, balance_minor=p.balance_minor + 1), "root"),
        (lambda p: attrs.evolve(p, salt=bytes(32)), "root"),
        (lambda p: attrs.evolve(p, account="bob"), "root"),
        (lambda p: attrs.evolve(p, asset="BTC"), "root"),
        (lambda p: attrs.evolve(p, balance_minor=-1), "outside"),
        (lambda p: attrs.evolve(p, path=p.path[:-1]), "root"),
        (
            lambda p: attrs.evolve(
                p, path=(attrs.evolve(p.path[0], sibling_sum_minor=-5), *p.path[1:])
            ),
            "outside",
        ),
        (
            lambda p: attrs.evolve(
                p, path=(attrs.evolve(p.path[0], sibling_sum_minor=SUM_LIMIT), *p.path[1:])
            ),
            "outside",
        ),
        (
            lambda p: attrs.evolve(
                p,
                path=(
                    attrs.evolve(p.path[0], sibling_sum_minor=p.path[0].sibling_sum_minor + 1),
                    *p.path[1:],
                ),
            ),
            "root",
        ),
        (
            lambda p: attrs.evolve(
                p,
                path=(
                    attrs.evolve(p.path[0], sibling_is_left=not p.path[0].sibling_is_left),
                    *p.path[1:],
                ),
            ),
            "root",
        ),
    ],
)
def test_a_forged_proof_fails(forge, problem):
    """Rejects a proof with a changed balance, id, asset, sibling sum, side or length."""
    found = verify_proof(forge(_usdc_proof()), ROOT.hash, ROOT.sum_minor)
    assert found is not None
    assert problem in found


def test_a_wrong_total_or_root_fails():
    """Rejects an honest proof against another total or another root."""
    proof = _usdc_proof()
    assert "total" in verify_proof(proof, ROOT.hash, ROOT.sum_minor - 1)
    assert "root" in verify_proof(proof, TREES["BTC"].root.hash, ROOT.sum_minor)


def test_a_parent_hashes_both_sums_not_just_their_total():
    """Gives different parents to children with the same hashes and total, split otherwise."""
    left, right = compute_leaf("USDC", "a", 5, SALT), compute_leaf("USDC", "b", 3, SALT)
    honest = compute_parent(left, right)
    shifted = compute_parent(Node(left.hash, 4), Node(right.hash, 4))
    assert honest.sum_minor == shifted.sum_minor == 8
    assert honest.hash != shifted.hash


def test_negative_values_and_overflow_are_refused():
    """Refuses a negative balance, a negative child sum and a sum reaching 2**128."""
    with pytest.raises(MerkleSumError):
        compute_leaf("USDC", "a", -1, SALT)
    with pytest.raises(MerkleSumError):
        compute_parent(EMPTY_LEAF, Node(EMPTY_LEAF.hash, -1))
    big = Node(EMPTY_LEAF.hash, SUM_LIMIT - 1)
    with pytest.raises(MerkleSumError):
        compute_parent(big, Node(EMPTY_LEAF.hash, 1))
    assert compute_parent(big, EMPTY_LEAF).sum_minor == SUM_LIMIT - 1


def test_a_proof_shows_no_other_account():
    """Carries no other account's id in the proof document an account receives."""
    document = json.dumps(proof_to_json(_usdc_proof("alice")))
    others = [account for account in CUSTOMERS if account != "alice"]
    assert len(others) >= 3
    for other in others:
        assert f'"{other}"' not in document
    assert '"alice"' in document


def test_proof_documents_round_trip_and_malformed_ones_are_refused():
    """Reads back a proof's JSON; refuses a document that is not a proof."""
    proof = _usdc_proof()
    assert proof_from_json(json.loads(json.dumps(proof_to_json(proof)))) == proof
    for bad in ({}, [], {"asset": "USDC"}, {**proof_to_json(proof), "balance_minor": 5}):
        with pytest.raises(MerkleSumError):
            proof_from_json(bad)


def test_an_empty_tree_commits_to_zero():
    """Commits an asset with no customer accounts to the empty leaf and a zero total."""
    tree = build_tree("USDC", [], SECRET)
    assert tree.root == EMPTY_LEAF
    assert prove(tree, "a") is None


@given(
    st.lists(
        st.sampled_from([0, 1, 2**96 - 1]) | st.integers(min_value=0, max_value=2**96 - 1),
        min_size=1,
        max_size=40,
    )
)
def test_any_balances_prove_and_total(balances):
    """Proves every leaf of any tree of bounded balances; the root's sum is their total."""
    accounts = [(f"acct-{index:03}", balance) for index, balance in enumerate(balances)]
    tree = build_tree("USDC", accounts, SECRET)
    assert tree.root.sum_minor == sum(balances)
    for account, _ in accounts:
        proof = prove(tree, account)
        assert proof is not None
        assert verify_proof(proof, tree.root.hash, sum(balances)) is None


def _bottom_sibling(proof):
    """Return the account and balance whose leaf is the proof's bottom-level sibling."""
    tree = TREES[proof.asset]
    index = tree.accounts.index(proof.account) ^ 1
    return tree.accounts[index], tree.levels[0][index].sum_minor


def _unsalted_leaf(asset, account, balance_minor):
    """The leaf as it was before salts (SK-MSUM-1 v1): what a guesser could recompute."""
    encoded = f"{asset}|{account}|".encode() + balance_minor.to_bytes(16, "big")
    domain = b"settlekernel/msum-leaf/v1\n"
    return hashlib.sha256(domain + len(encoded).to_bytes(8, "big") + encoded).digest()


def test_a_sibling_hash_confirms_no_guess_of_its_account_and_balance():
    """Confirms no guessed id and balance without the operator's secret; with it, one does."""
    proof = _usdc_proof("alice")
    sibling_hash = proof.path[0].sibling_hash
    account, balance = _bottom_sibling(proof)
    guesses = [(other, amount) for other in CUSTOMERS for amount in (0, balance, balance + 1)]
    wrong_secret = bytes(32)
    for other, amount in guesses:
        assert _unsalted_leaf("USDC", other, amount) != sibling_hash
        salt = compute_salt(wrong_secret, other)
        assert compute_leaf("USDC", other, amount, salt).hash != sibling_hash
    # The check is not vacuous: the operator, who holds the secret, reproduces the sibling.
    assert compute_leaf("USDC", account, balance, compute_salt(SECRET, account)).hash == (
        sibling_hash
    )


def test_unsalted_leaves_would_let_a_guess_through():
    """Shows the attack the salt prevents: an unsalted sibling is confirmed by one guess."""
    proof = _usdc_proof("alice")
    account, balance = _bottom_sibling(proof)
    unsalted = Node(_unsalted_leaf("USDC", account, balance), balance)
    assert any(_unsalted_leaf("USDC", other, balance) == unsalted.hash for other in CUSTOMERS)


def test_leaves_are_ordered_by_salt_not_by_id():
    """Orders the leaves by their secret salts, so a leaf's place does not reveal its id."""
    tree = TREES["USDC"]
    assert list(tree.accounts) == sorted(CUSTOMERS, key=lambda a: compute_salt(SECRET, a))
    other = commit(FINAL, b"another secret of thirty-two bytes!")["USDC"]
    assert other.accounts != tree.accounts or len(CUSTOMERS) < 3
    assert other.root.hash != tree.root.hash
    assert other.root.sum_minor == tree.root.sum_minor


def test_an_account_verifies_alone_with_the_salt_it_was_given():
    """Carries the account's salt in its proof; checking needs no secret and no other data."""
    proof = _usdc_proof("alice")
    assert proof.salt == compute_salt(SECRET, "alice")
    document = proof_to_json(proof)
    assert document["salt"] == proof.salt.hex()
    assert verify_proof(proof_from_json(document), ROOT.hash, ROOT.sum_minor) is None


def test_a_short_secret_is_refused():
    """Refuses an operator secret of fewer than 32 bytes."""
    with pytest.raises(MerkleSumError, match="32 bytes"):
        commit(FINAL, b"short")
