"""Merkle-sum trees over account liabilities, one per asset (spec/40-roots.md#merkle-sum).

Each tree commits to every customer account's balance of one asset and to their total, so
an account holder given a proof can check that their balance is counted and that the total
the operator publishes includes it, without seeing any other account's id (SK-MSUM-1..5).

- A leaf is ``SHA-256(leaf domain | length | "<asset>|<account>|" | balance as 16 bytes |
  salt)`` with its balance as the leaf's sum (SK-MSUM-1). The salt is the account's own,
  ``HMAC-SHA-256(operator secret, salt domain | account)``: the operator holds the secret,
  the account receives its salt with its proof, and nobody else can recompute a leaf.
- A parent hashes both children's hashes and both children's sums, never only their total,
  so a dishonest operator cannot shift value between siblings (SK-MSUM-2).
- Sums are non-negative and below ``SUM_LIMIT``; a negative value or an overflow is refused
  (SK-MSUM-3).
- Leaves are the non-system accounts, ordered by their salts (so a leaf's place says nothing
  of its id), every one of them in every asset's tree (a zero balance too, so the tree does
  not reveal who holds what); the leaf count is padded to a power of two with empty leaves
  of sum zero (SK-MSUM-4).

What a proof reveals (SK-MSUM-5): the account's own balance, the tree's depth (so the number
of accounts to within a factor of two), and one hash and one sum per level. A sibling hash
confirms no guess of another account's id or balance without that account's salt. The sums
remain: the bottom-level sibling's sum is the exact balance of one other account, unnamed,
and the higher ones are totals of groups; hiding them needs homomorphic commitments with
range proofs, which this tree does not have.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

import attrs

from settlekernel.core.model import State
from settlekernel.core.units import SYSTEM_OWNER

# v2: the leaf carries the account's salt (v1 leaves had none).
LEAF_DOMAIN: Final = b"settlekernel/msum-leaf/v2\n"
SALT_DOMAIN: Final = b"settlekernel/msum-salt/v1\n"
SALT_BYTES: Final = 32
# [SK-MSUM-6] The operator's secret has at least 256 bits.
SECRET_BYTES_MIN: Final = 32
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
    salt: bytes = b""


@attrs.frozen
class SumTree:
    """A Merkle-sum tree over one asset: its levels from the leaves up, its leaf order, salts."""

    asset: str
    accounts: tuple[str, ...]
    levels: tuple[tuple[Node, ...], ...]
    salts: tuple[bytes, ...] = ()

    @property
    def root(self) -> Node:
        """Return the root node: the commitment hash and the total liabilities."""
        return self.levels[-1][0]


def _checked_sum(value: int) -> int:
    if not 0 <= value < SUM_LIMIT:
        raise MerkleSumError(f"sum {value} is outside [0, 2**{8 * SUM_BYTES})")
    return value


def compute_salt(secret: bytes, account: str) -> bytes:
    """Return ``account``'s salt under the operator's ``secret`` (SK-MSUM-6).

    Raises:
        MerkleSumError: the secret is shorter than ``SECRET_BYTES_MIN``.
    """
    if len(secret) < SECRET_BYTES_MIN:
        raise MerkleSumError(f"the operator secret must hold at least {SECRET_BYTES_MIN} bytes")
    return hmac.new(secret, SALT_DOMAIN + account.encode(), hashlib.sha256).digest()


def compute_leaf(asset: str, account: str, balance_minor: int, salt: bytes) -> Node:
    """Return the leaf of ``account``'s balance of ``asset``, under its salt (SK-MSUM-1)."""
    _checked_sum(balance_minor)
    if len(salt) != SALT_BYTES:
        raise MerkleSumError(f"a salt is {SALT_BYTES} bytes, not {len(salt)}")
    encoded = f"{asset}|{account}|".encode() + balance_minor.to_bytes(SUM_BYTES, "big") + salt
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


def build_tree(asset: str, balances: list[tuple[str, int]], secret: bytes) -> SumTree:
    """Return the tree over ``balances`` (account, balance), leaves ordered by salt."""
    salted = sorted(
        (compute_salt(secret, account), account, balance) for account, balance in balances
    )
    level = [compute_leaf(asset, account, balance, salt) for salt, account, balance in salted]
    width = 1
    while width < len(level):
        width *= 2
    level += [EMPTY_LEAF] * (width - len(level))
    levels = [tuple(level)]
    while len(level) > 1:
        level = [compute_parent(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        levels.append(tuple(level))
    accounts = tuple(account for _, account, _ in salted)
    return SumTree(asset, accounts, tuple(levels), tuple(salt for salt, _, _ in salted))


def commit(state: State, secret: bytes) -> dict[str, SumTree]:
    """Return the Merkle-sum tree of every asset of the rules under ``secret``, by asset."""
    return {
        asset.symbol: build_tree(asset.symbol, liabilities(state, asset.symbol), secret)
        for asset in state.rules.assets
    }


def prove(tree: SumTree, account: str) -> InclusionProof | None:
    """Return the inclusion proof of ``account`` in ``tree``, or None if it has no leaf."""
    try:
        index = tree_index = tree.accounts.index(account)
    except ValueError:
        return None
    balance = tree.levels[0][index].sum_minor
    path: list[ProofStep] = []
    for level in tree.levels[:-1]:
        sibling = level[index ^ 1]
        path.append(ProofStep(sibling.hash, sibling.sum_minor, sibling_is_left=index % 2 == 1))
        index //= 2
    return InclusionProof(tree.asset, account, balance, tuple(path), tree.salts[tree_index])


def verify_proof(proof: InclusionProof, root_hash: bytes, total_minor: int) -> str | None:
    """Return None if ``proof`` leads to ``root_hash`` and ``total_minor``, else what fails.

    Checks every sum on the way: a negative or overflowing value fails (SK-MSUM-3), so a
    proof cannot hide a negative sibling that would shrink the total.
    """
    if len(proof.path) > DEPTH_MAX:
        return f"proof is deeper than {DEPTH_MAX} levels"
    try:
        node = compute_leaf(proof.asset, proof.account, proof.balance_minor, proof.salt)
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
        "salt": proof.salt.hex(),
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
            bytes.fromhex(document["salt"]),
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
