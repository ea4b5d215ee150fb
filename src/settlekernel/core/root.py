"""The state root: a canonical, incremental commitment to the whole state (spec/40-roots.md).

Construction (SK-ROOT-1..4):

1. The state is a set of leaves: one per account, instrument, index price, implied
   volatility, oracle reports and index history of an underlying, fixed settlement price,
   settled trade, venue and owner's venue grant. Each leaf has a canonical text encoding
   (``encode_*`` below) that is injective because identifiers never contain the
   separators ``| , = @``. [New in v5] The pending rule change, the grace of the last one
   applied and each account in that grace are leaves too (SK-GOV-6). [New in v6] So is each
   standing instruction (SK-INSTR-2).
2. A leaf's vector is ``BLAKE3-XOF(BLAKE3(encoding), 2048 bytes)`` read as 1024
   little-endian uint16 lanes. The lattice is the lane-wise sum, mod 2**16, of the vectors
   of all leaves: LtHash16 as in Solana's accounts lattice hash (SIMD-0215) and Lewi et al.,
   "Securing Update Propagation with Homomorphic Hashing" (2019). Changing a leaf subtracts
   its old vector and adds its new one, so the cost of a root grows with the leaves touched,
   not with the state.
3. The root is ``SHA-256("settlekernel/state/v1" | rules digest | clock | custody per asset
   | BLAKE3(lattice bytes))``.

Derived fields (open interest, holders, the margin cache) are not leaves: the root commits
to what they are derived from, and INV-OPEN-INTEREST-ZERO-SUM and INV-MARGIN-CACHE-CONSISTENT
check them.

``step`` only marks leaves dirty. ``state_root`` folds the dirty leaves into a copy of the
lattice without changing the state; ``fold`` returns a state whose dirty set is empty, so
later roots start from there. ``apply_batch`` folds once per batch and ``step`` folds by
itself when the dirty set exceeds ``DIRTY_LEAVES_MAX``, which bounds the cost of any root.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Final

import blake3
import numpy as np
from immutables import Map

from settlekernel.core.model import (
    Account,
    Commitment,
    Grace,
    Grant,
    IndexPrice,
    IndexSample,
    IndexVolatility,
    Instrument,
    RulesProposal,
    State,
    TopUp,
    Venue,
    replace_state,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    from settlekernel.core.events import Trade

LANES: Final = 1024
LEAF_DIGEST_BYTES: Final = 32
DIRTY_LEAVES_MAX: Final = 4096
LANES_CHUNK: Final = 512
ROOT_DOMAIN: Final = b"settlekernel/state/v1\n"
ZERO_LATTICE: Final = np.zeros(LANES, dtype="<u2")
ZERO_LATTICE.flags.writeable = False
EMPTY_DIRTY: Final[Map[str, None]] = Map()

# Leaf keys: a one-letter namespace, a colon and the identifier.
ACCOUNT_PREFIX: Final = "a:"
INSTRUMENT_PREFIX: Final = "i:"
PRICE_PREFIX: Final = "p:"
VOLATILITY_PREFIX: Final = "v:"
REPORT_PREFIX: Final = "r:"
HISTORY_PREFIX: Final = "h:"
SETTLEMENT_PREFIX: Final = "s:"
TRADE_PREFIX: Final = "t:"
VENUE_PREFIX: Final = "n:"
GRANT_PREFIX: Final = "g:"
# [SK-GOV-6] The pending rule change and the grace (one leaf each), and each account in grace.
GOVERNANCE_PREFIX: Final = "q:"
PROPOSAL_KEY: Final = GOVERNANCE_PREFIX + "proposal"
GRACE_KEY: Final = GOVERNANCE_PREFIX + "grace"
GRACE_ACCOUNT_PREFIX: Final = "w:"
# [SK-INSTR-2] A standing instruction, keyed by the account it tops up.
INSTRUCTION_PREFIX: Final = "x:"


def account_key(account_id: str) -> str:
    """Return the leaf key of an account."""
    return ACCOUNT_PREFIX + account_id


def instrument_key(instrument_id: str) -> str:
    """Return the leaf key of an instrument."""
    return INSTRUMENT_PREFIX + instrument_id


def price_key(underlying: str) -> str:
    """Return the leaf key of an underlying's index price."""
    return PRICE_PREFIX + underlying


def volatility_key(underlying: str) -> str:
    """Return the leaf key of an underlying's implied volatility."""
    return VOLATILITY_PREFIX + underlying


def report_key(underlying: str) -> str:
    """Return the leaf key of an underlying's latest report per source."""
    return REPORT_PREFIX + underlying


def history_key(underlying: str) -> str:
    """Return the leaf key of an underlying's index history."""
    return HISTORY_PREFIX + underlying


def settlement_price_key(key: str) -> str:
    """Return the leaf key of a fixed settlement price (``key`` is ``<underlying>@<expiry>``)."""
    return SETTLEMENT_PREFIX + key


def trade_key(trade_id: str) -> str:
    """Return the leaf key of a settled trade."""
    return TRADE_PREFIX + trade_id


def venue_key(venue_id: str) -> str:
    """Return the leaf key of a venue."""
    return VENUE_PREFIX + venue_id


def grant_key(account_id: str, venue_id: str) -> str:
    """Return the key of an owner's grant to a venue: in ``State.grants`` and, prefixed, a leaf."""
    return f"{account_id}@{venue_id}"


def encode_account(account: Account) -> bytes:
    """Return the canonical encoding of an account leaf.

    Assets and instruments in sorted order; the one-entry case, the common one, skips the
    sort and the join (the same bytes: a fold re-encodes every holder an instrument-wide
    event touched, so this is the root's hottest line).
    """
    balances = account.balances
    if len(balances) == 1:
        [(asset, amount)] = balances.items()
        balance_text = f"{asset}={amount}"
    else:
        balance_text = ",".join([f"{a}={amount}" for a, amount in sorted(balances.items())])
    positions = account.positions
    if len(positions) == 1:
        [(instrument, position)] = positions.items()
        position_text = f"{instrument}={position.quantity_lots}@{position.settled_price_ticks}"
    else:
        position_text = ",".join(
            [
                f"{instrument}={position.quantity_lots}@{position.settled_price_ticks}"
                for instrument, position in sorted(positions.items())
            ]
        )
    return (
        f"account|{account.id}|{account.owner}|{balance_text}|{position_text}|"
        f"{account.debt_minor}|{account.claim_minor}"
    ).encode()


def encode_instrument(instrument: Instrument) -> bytes:
    """Return the canonical encoding of an instrument leaf."""
    option_type = "-" if instrument.option_type is None else instrument.option_type.value
    samples = ",".join(
        f"{s.timestamp_ms}={s.premium_ppm}~{s.lots}" for s in instrument.premium_samples
    )
    return (
        f"instrument|{instrument.id}|{instrument.kind.value}|{instrument.underlying}|"
        f"{instrument.settlement_asset}|{instrument.multiplier_minor}|"
        f"{_optional(instrument.expiry_ms)}|{_optional(instrument.strike_ticks)}|"
        f"{option_type}|{instrument.reference_ticks}|{samples}|"
        f"{instrument.last_funding_ms}|{instrument.funding_index_ticks}|"
        f"{instrument.premium_integral}~{instrument.premium_since_ms}~"
        f"{instrument.premium_until_ms}|{_optional(instrument.settlement_ticks)}"
    ).encode()


def encode_price(underlying: str, price: IndexPrice) -> bytes:
    """Return the canonical encoding of an index-price leaf."""
    return f"price|{underlying}|{price.price_ticks}|{price.timestamp_ms}".encode()


def encode_volatility(underlying: str, volatility: IndexVolatility) -> bytes:
    """Return the canonical encoding of an implied-volatility leaf."""
    return f"volatility|{underlying}|{volatility.volatility_ppm}|{volatility.timestamp_ms}".encode()


def encode_reports(underlying: str, reports: Map[str, IndexPrice]) -> bytes:
    """Return the canonical encoding of an underlying's reports leaf, sorted by source."""
    body = ",".join(
        f"{source}={r.price_ticks}@{r.timestamp_ms}" for source, r in sorted(reports.items())
    )
    return f"reports|{underlying}|{body}".encode()


def encode_history(underlying: str, history: tuple[IndexSample, ...]) -> bytes:
    """Return the canonical encoding of an underlying's index-history leaf, in time order."""
    body = ",".join(
        f"{sample.timestamp_ms}={sample.price_ticks}~{sample.cumulative}"
        f"~{sample.low_ticks}~{sample.high_ticks}"
        for sample in history
    )
    return f"history|{underlying}|{body}".encode()


def encode_settlement_price(key: str, price_ticks: int) -> bytes:
    """Return the canonical encoding of a fixed settlement price leaf."""
    return f"settlement|{key}|{price_ticks}".encode()


def encode_trade(trade: Trade) -> bytes:
    """Return the canonical encoding of a settled-trade leaf (its full payload)."""
    return (
        f"trade|{trade.trade_id}|{trade.principal}|{trade.buyer}|{trade.seller}|"
        f"{trade.instrument}|{trade.quantity_lots}|{trade.price_ticks}|"
        f"{trade.buyer_fee_rate_ppm}|{trade.seller_fee_rate_ppm}"
    ).encode()


def encode_venue(venue: Venue) -> bytes:
    """Return the canonical encoding of a venue leaf."""
    open_lots = ",".join(f"{i}={lots}" for i, lots in sorted(venue.open_lots.items()))
    return (
        f"venue|{venue.id}|{venue.status.value}|{int(venue.house)}|{venue.fee_account}|"
        f"{venue.open_interest_max_lots}|{venue.notional_max_minor}|{venue.fee_rate_max_ppm}|"
        f"{open_lots}"
    ).encode()


def encode_grant(key: str, grant: Grant) -> bytes:
    """Return the canonical encoding of a grant leaf (``key`` is ``<account>@<venue>``)."""
    return f"grant|{key}|{grant.value}".encode()


def instruction_key(account_id: str) -> str:
    """Return the leaf key of the standing instruction of an account (SK-INSTR-2)."""
    return INSTRUCTION_PREFIX + account_id


def encode_instruction(account_id: str, top_up: TopUp) -> bytes:
    """Return the canonical encoding of a standing top-up's leaf (SK-INSTR-2)."""
    return (
        f"top_up|{account_id}|{top_up.source}|{top_up.asset}|{top_up.threshold_ppm}|"
        f"{top_up.amount_max_minor}|{top_up.interval_ms}|{top_up.used_minor}|"
        f"{top_up.window_start_ms}"
    ).encode()


def encode_proposal(proposal: RulesProposal) -> bytes:
    """Return the canonical encoding of the pending rule change's leaf (SK-GOV-6)."""
    return (
        f"proposal|{proposal.id}|{proposal.rules.digest.hex()}|{proposal.proposed_ms}|"
        f"{proposal.effective_ms}"
    ).encode()


def encode_grace(grace: Grace) -> bytes:
    """Return the canonical encoding of the grace leaf: the rules before, and its end."""
    return f"grace|{grace.rules.digest.hex()}|{grace.until_ms}".encode()


def _encode_governance(state: State, key: str) -> bytes | None:
    if key == PROPOSAL_KEY:
        return None if state.proposal is None else encode_proposal(state.proposal)
    if key == GRACE_KEY:
        return None if state.grace is None else encode_grace(state.grace)
    assert key.startswith(GRACE_ACCOUNT_PREFIX), key
    account_id = key[len(GRACE_ACCOUNT_PREFIX) :]
    if state.grace is None or account_id not in state.grace.accounts:
        return None
    return f"grace_account|{account_id}".encode()


def _optional(value: int | None) -> str:
    return "-" if value is None else str(value)


def encode_leaf(state: State, key: str) -> bytes | None:
    """Return the encoding of the leaf ``key`` in ``state``, or None if it does not exist."""
    namespace, identifier = key[:2], key[2:]
    if namespace == ACCOUNT_PREFIX:
        account = state.accounts.get(identifier)
        return None if account is None else encode_account(account)
    if namespace == INSTRUMENT_PREFIX:
        instrument = state.instruments.get(identifier)
        return None if instrument is None else encode_instrument(instrument)
    if namespace == PRICE_PREFIX:
        price = state.prices.get(identifier)
        return None if price is None else encode_price(identifier, price)
    if namespace == REPORT_PREFIX:
        reports = state.reports.get(identifier)
        return None if reports is None else encode_reports(identifier, reports)
    if namespace == HISTORY_PREFIX:
        history = state.history.get(identifier)
        return None if history is None else encode_history(identifier, history)
    if namespace == SETTLEMENT_PREFIX:
        settlement = state.settlement_prices.get(identifier)
        return None if settlement is None else encode_settlement_price(identifier, settlement)
    if namespace == VOLATILITY_PREFIX:
        volatility = state.volatilities.get(identifier)
        return None if volatility is None else encode_volatility(identifier, volatility)
    if namespace == VENUE_PREFIX:
        venue = state.venues.get(identifier)
        return None if venue is None else encode_venue(venue)
    if namespace == GRANT_PREFIX:
        grant = state.grants.get(identifier)
        return None if grant is None else encode_grant(identifier, grant)
    if namespace == INSTRUCTION_PREFIX:
        top_up = state.instructions.get(identifier)
        return None if top_up is None else encode_instruction(identifier, top_up)
    if namespace in {GOVERNANCE_PREFIX, GRACE_ACCOUNT_PREFIX}:
        return _encode_governance(state, key)
    assert namespace == TRADE_PREFIX, key
    trade = state.trades.get(identifier)
    return None if trade is None else encode_trade(trade)


def leaf_digest(encoding: bytes) -> bytes:
    """Return the 32-byte BLAKE3 digest of a leaf encoding."""
    return blake3.blake3(encoding).digest(LEAF_DIGEST_BYTES)


def expand_digest(digest: bytes) -> npt.NDArray[np.uint16]:
    """Return the lattice vector of a leaf digest: 1024 uint16 lanes from BLAKE3-XOF."""
    return np.frombuffer(blake3.blake3(digest).digest(2 * LANES), dtype="<u2")


def touch(commitment: Commitment, *keys: str) -> Commitment:
    """Return ``commitment`` with ``keys`` marked dirty."""
    if len(keys) == 1:
        dirty = commitment.dirty.set(keys[0], None)
    else:
        with commitment.dirty.mutate() as mutation:
            for key in keys:
                mutation[key] = None
            dirty = mutation.finish()
    return Commitment(commitment.lattice, commitment.leaves, dirty)


def leaf_vector(encoding: bytes) -> bytes:
    """Return a leaf's lattice vector, ``expand_digest(leaf_digest(encoding))``, as bytes."""
    digest = blake3.blake3(encoding).digest(LEAF_DIGEST_BYTES)
    return blake3.blake3(digest).digest(2 * LANES)


def _lanes(vectors: list[bytes]) -> npt.NDArray[np.uint16]:
    """Return the lane-wise sum mod 2**16 of ``vectors``, in one reduction."""
    if len(vectors) == 1:
        # The common case, one leaf changed per event: the vector is the sum.
        return np.frombuffer(vectors[0], dtype="<u2")
    # In chunks of LANES_CHUNK vectors (1 MiB), so that folding every holder of an instrument
    # never allocates one buffer of all their vectors (20 MiB for 10k accounts), which the
    # allocator would keep as resident high-water. uint16 accumulation wraps, which is
    # exactly the lattice's arithmetic mod 2**16.
    total = np.zeros(LANES, dtype=np.uint16)
    for start in range(0, len(vectors), LANES_CHUNK):
        chunk = vectors[start : start + LANES_CHUNK]
        stacked = np.frombuffer(b"".join(chunk), dtype="<u2").reshape(len(chunk), LANES)
        total += stacked.sum(axis=0, dtype=np.uint16)
    return total


def _folded_lattice(state: State) -> tuple[npt.NDArray[np.uint16], dict[str, bytes | None]]:
    """Return the lattice with every dirty leaf folded in, and each dirty leaf's new vector.

    A leaf's old vector is the one kept at the last fold (``Commitment.leaves``), so only the
    new one is hashed: one encoding and two BLAKE3 calls per changed leaf.
    """
    commitment = state.commitment
    leaves = commitment.leaves
    removed: list[bytes] = []
    added: list[bytes] = []
    vectors: dict[str, bytes | None] = {}
    for key in commitment.dirty:
        old_vector = leaves.get(key)
        encoding = encode_leaf(state, key)
        new_vector = None if encoding is None else leaf_vector(encoding)
        vectors[key] = new_vector
        if new_vector == old_vector:
            continue  # Touched but unchanged: its vector cancels out.
        if old_vector is not None:
            removed.append(old_vector)
        if new_vector is not None:
            added.append(new_vector)
    # uint16 arithmetic wraps, which is the lattice's arithmetic mod 2**16; a side with no
    # vectors is skipped rather than added as zeros.
    lattice = commitment.lattice
    if added:
        lattice = lattice + _lanes(added)
    if removed:
        lattice = lattice - _lanes(removed)
    if lattice is commitment.lattice:
        return lattice, vectors  # Every dirty leaf was touched but unchanged.
    return lattice.astype(np.uint16, copy=False), vectors


def fold(state: State) -> State:
    """Return ``state`` with its dirty leaves folded into the lattice (same content, same root)."""
    if not state.commitment.dirty:
        return state
    lattice, vectors = _folded_lattice(state)
    lattice.flags.writeable = False
    with state.commitment.leaves.mutate() as leaves:
        for key, vector in vectors.items():
            if vector is None:
                leaves.pop(key, None)
            elif not key.startswith(TRADE_PREFIX):
                # Settled trades never change, so their old vector is never needed again.
                leaves[key] = vector
        folded_leaves = leaves.finish()
    return replace_state(state, commitment=Commitment(lattice, folded_leaves, EMPTY_DIRTY))


def state_root(state: State) -> bytes:
    """Return the 32-byte state root (SK-ROOT-3). Pure; costs O(dirty leaves)."""
    if state.commitment.dirty:
        lattice, _ = _folded_lattice(state)
    else:
        lattice = state.commitment.lattice
    custody = ",".join(f"{asset}={amount}" for asset, amount in sorted(state.custody.items()))
    socialized = ",".join(f"{a}={amount}" for a, amount in sorted(state.socialized_loss.items()))
    header = f"clock={state.clock_ms}|custody={custody}|socialized={socialized}\n".encode()
    lattice_digest = blake3.blake3(lattice.astype("<u2", copy=False).tobytes()).digest()
    return hashlib.sha256(ROOT_DOMAIN + state.rules.digest + header + lattice_digest).digest()


def all_leaf_keys(state: State) -> list[str]:
    """Return the key of every leaf in ``state`` (for a from-scratch recomputation)."""
    keys = [account_key(account_id) for account_id in state.accounts]
    keys += [instrument_key(instrument_id) for instrument_id in state.instruments]
    keys += [price_key(underlying) for underlying in state.prices]
    keys += [volatility_key(underlying) for underlying in state.volatilities]
    keys += [report_key(underlying) for underlying in state.reports]
    keys += [history_key(underlying) for underlying in state.history]
    keys += [settlement_price_key(key) for key in state.settlement_prices]
    keys += [trade_key(trade_id) for trade_id in state.trades]
    keys += [venue_key(venue_id) for venue_id in state.venues]
    keys += [GRANT_PREFIX + key for key in state.grants]
    keys += [instruction_key(account_id) for account_id in state.instructions]
    keys += [PROPOSAL_KEY] if state.proposal is not None else []
    if state.grace is not None:
        keys.append(GRACE_KEY)
        keys += [GRACE_ACCOUNT_PREFIX + account_id for account_id in state.grace.accounts]
    return keys


def recompute_root(state: State) -> bytes:
    """Return the root computed from scratch over every leaf: O(state), for audits and tests."""
    dirty: Map[str, None] = Map(dict.fromkeys(all_leaf_keys(state)))
    scratch = replace_state(state, commitment=Commitment(ZERO_LATTICE, Map(), dirty))
    return state_root(scratch)
