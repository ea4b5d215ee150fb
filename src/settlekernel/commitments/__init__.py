"""Commitments beyond the state root: canonical snapshots and Merkle-sum proofs of liabilities.

The state root itself is part of the core (``settlekernel.core.root``), because every
transition marks the leaves it touches; this package encodes whole states
(``snapshot``, spec/40-roots.md SK-SNAPSHOT-1) and builds per-asset Merkle-sum trees with
inclusion proofs (``merkle_sum``, SK-MSUM-1).
"""
