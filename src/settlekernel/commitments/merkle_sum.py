"""Merkle-sum trees over account liabilities, one per asset (spec/40-roots.md#merkle-sum).

Each tree commits to every customer account's balance of one asset and to their total, so
an account holder given a proof can check that their balance is counted and that the total
the operator publishes includes it, without seeing any other account's id (SK-MSUM-1..5).

- A leaf is ``SHA-256(leaf domain | length | "<asset>|<account>|" | balance as 16 bytes)``
  with its balance as the leaf's sum (SK-MSUM-1).
- A parent hashes both children's hashes and both children's sums, never only their total,
  so a dishonest operator cannot shift value between siblings (SK-MSUM-2).
- Sums are non-negative and below ``SUM_LIMIT``; a negative value or an overflow is refused
  (SK-MSUM-3).
- Leaves are the non-system accounts, sorted by id, every one of them in every asset's tree
  (a zero balance too, so the tree does not reveal who holds what); the leaf count is padded
  to a power of two with empty leaves of sum zero (SK-MSUM-4).

What a proof reveals (SK-MSUM-5): the account's own balance, the tree's depth (so the number
of accounts to within a factor of two), and one hash and one sum per level. The sum of the
sibling at the bottom level is exactly one other account's balance; its id is hidden only
as well as a hash of a guessable id hides it, since leaves carry no secret nonce.
"""

from __future__ import annotations

import hashlib
from typing import Final

import attrs

from settlekernel.core.model import State
from settlekernel.core.units import SYSTEM_OWNER

LEAF_DOMAIN: Final = b"settlekernel/msum-leaf/v1\n"
NODE_DOMAIN: Final = b"settlekernel/msum-node/v1\n"
EMPTY_DOMAIN: Final = b"settlekernel/msum-empty/v1\n"
SUM_BYTES: Final = 16
# [SK-MSUM-3] Every sum, a leaf's or a parent's, is in [0, 2**128).
SUM_LIMIT: Final = 2 ** (8 * SUM_BYTES)
DEPTH_MAX: Final = 40


class MerkleSumError(ValueError):
    """A value a Merkle-sum tree refuses: negative, or a sum that overflows."""


@attrs.frozen
class Node:
    """A tree node: its hash and the sum of the balances below it."""

    hash: bytes
    sum_minor: int


@attrs.frozen
class ProofStep:
    """One level of a proof: the sibling's hash and sum, and whether the sibling is on the left."""

    sibling_hash: bytes
    sibling_sum_minor: int
    sibling_is_left: bool


@attrs.frozen
class InclusionProof:
    """What one account needs to check its balance is counted in an asset's total."""

    asset: str
    account: str
    balance_minor: int
    path: tuple[ProofStep, ...]


@attrs.frozen
class SumTree:
    """A Merkle-sum tree over one asset: its levels from the leaves up, and its leaf order."""

    asset: str
    accounts: tuple[str, ...]
    levels: tuple[tuple[Node, ...], ...]

    @property
    def root(self) -> Node:
        """Return the root node: the commitment hash and the total liabilities."""
        return self.levels[-1][0]


def _checked_sum(value: int) -> int:
    if not 0 <= value < SUM_LIMIT:
        raise MerkleSumError(f"sum {value} is outside [0, 2**{8 * SUM_BYTES})")
    return value


def compute_leaf(asset: str, account: str, balance_minor: int) -> Node:
    """Return the leaf of ``account``'s balance of ``asset`` (SK-MSUM-1)."""
    _checked_sum(balance_minor)
    encoded = f"{asset}|{account}|".encode() + balance_minor.to_bytes(SUM_BYTES, "big")
    digest = hashlib.sha256(LEAF_DOMAIN + len(encoded).to_bytes(8, "big") + encoded).digest()
    return Node(digest, balance_minor)


EMPTY_LEAF: Final = Node(hashlib.sha256(EMPTY_DOMAIN).digest(), 0)


def compute_parent(left: Node, right: Node) -> Node:
    """Return the parent of two nodes: both hashes and both sums are hashed (SK-MSUM-2)."""
    total = _checked_sum(_checked_sum(left.sum_minor) + _checked_sum(right.sum_minor))
    digest = hashlib.sha256(
        NODE_DOMAIN
        + left.hash
        + left.sum_minor.to_bytes(SUM_BYTES, "big")
        + right.hash
        + right.sum_minor.to_bytes(SUM_BYTES, "big")
    ).digest()
    return Node(digest, total)


def liabilities(state: State, asset: str) -> list[tuple[str, int]]:
    """Return every customer account and its balance of ``asset``, sorted by id (SK-MSUM-4)."""
    return sorted(
        (account.id, account.balance(asset))
        for account in state.accounts.values()
        if account.owner != SYSTEM_OWNER
    )


def build_tree(asset: str, balances: list[tuple[str, int]]) -> SumTree:
    """Return the tree over ``balances`` (account, balance) in the order given."""
    level = [compute_leaf(asset, account, balance) for account, balance in balances]
    width = 1
    while width < len(level):
        width *= 2
    level += [EMPTY_LEAF] * (width - len(level))
    levels = [tuple(level)]
    while len(level) > 1:
        level = [compute_parent(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        levels.append(tuple(level))
    return SumTree(asset, tuple(account for account, _ in balances), tuple(levels))


def commit(state: State) -> dict[str, SumTree]:
    """Return the Merkle-sum tree of every asset of the rules, keyed by asset."""
    return {
        asset.symbol: build_tree(asset.symbol, liabilities(state, asset.symbol))
        for asset in state.rules.assets
    }


def prove(tree: SumTree, account: str) -> InclusionProof | None:
    """Return the inclusion proof of ``account`` in ``tree``, or None if it has no leaf."""
    try:
        index = tree.accounts.index(account)
    except ValueError:
        return None
    balance = tree.levels[0][index].sum_minor
    path: list[ProofStep] = []
    for level in tree.levels[:-1]:
        sibling = level[index ^ 1]
        path.append(ProofStep(sibling.hash, sibling.sum_minor, sibling_is_left=index % 2 == 1))
        index //= 2
    return InclusionProof(tree.asset, account, balance, tuple(path))


def verify_proof(proof: InclusionProof, root_hash: bytes, total_minor: int) -> str | None:
    """Return None if ``proof`` leads to ``root_hash`` and ``total_minor``, else what fails.

    Checks every sum on the way: a negative or overflowing value fails (SK-MSUM-3), so a
    proof cannot hide a negative sibling that would shrink the total.
    """
    if len(proof.path) > DEPTH_MAX:
        return f"proof is deeper than {DEPTH_MAX} levels"
    try:
        node = compute_leaf(proof.asset, proof.account, proof.balance_minor)
        for step in proof.path:
            sibling = Node(step.sibling_hash, step.sibling_sum_minor)
            node = (
                compute_parent(sibling, node)
                if step.sibling_is_left
                else compute_parent(node, sibling)
            )
    except MerkleSumError as error:
        return str(error)
    if node.hash != root_hash:
        return "the proof does not lead to the published root"
    if node.sum_minor != total_minor:
        return f"the proof's total {node.sum_minor} is not the published total {total_minor}"
    return None


def proof_to_json(proof: InclusionProof) -> dict[str, object]:
    """Return a JSON-ready form of a proof; amounts are decimal strings (they exceed 2**53)."""
    return {
        "asset": proof.asset,
        "account": proof.account,
        "balance_minor": str(proof.balance_minor),
        "path": [
            {
                "sibling_hash": step.sibling_hash.hex(),
                "sibling_sum_minor": str(step.sibling_sum_minor),
                "sibling_is_left": step.sibling_is_left,
            }
            for step in proof.path
        ],
    }


def proof_from_json(document: object) -> InclusionProof:
    """Return the proof a JSON document holds.

    Raises:
        MerkleSumError: the document is not a well-formed proof.
    """
    try:
        assert isinstance(document, dict)
        steps = tuple(
            ProofStep(
                bytes.fromhex(step["sibling_hash"]),
                _decimal(step["sibling_sum_minor"]),
                _flag(step["sibling_is_left"]),
            )
            for step in document["path"]
        )
        return InclusionProof(
            str(document["asset"]),
            str(document["account"]),
            _decimal(document["balance_minor"]),
            steps,
        )
    except (AssertionError, KeyError, TypeError, ValueError) as error:
        raise MerkleSumError(f"not a proof document: {error!s:.120}") from error


def _decimal(value: object) -> int:
    if type(value) is not str or not value.lstrip("-").isdigit() or len(value) > 60:
        raise MerkleSumError(f"expected a decimal string, got {value!r:.40}")
    return int(value)


def _flag(value: object) -> bool:
    if type(value) is not bool:
        raise MerkleSumError(f"expected true or false, got {value!r:.40}")
    return value
