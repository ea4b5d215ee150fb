"""Containers: assets, rules, instruments, positions, accounts, state (spec/10-containers.md).

Every container is a frozen, slotted attrs class whose fields are ints, strings, enums,
tuples or ``immutables.Map``s, so a state can be shared by any number of later states and
never changes. A step rebuilds only what it touches (structural sharing): its cost is
O(accounts touched), not O(state).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

import attrs
from immutables import Map

from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.reports import MarginReport
from settlekernel.core.rules import RuleSet

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from settlekernel.core.events import Trade


@attrs.frozen
class PremiumSample:
    """A trade's premium over the index, clamped to the mark band, and its size (SK-MARK-1)."""

    timestamp_ms: int
    premium_ppm: int
    lots: int


@attrs.frozen
class Instrument:
    """A listed contract and its reference price.

    ``reference_ticks`` is the price every open position is settled against (SK-SETTLE-2):
    for a perpetual or future it is the last variation-margin mark (or the first trade
    price), for an option it is always 0, so settling against it pays the full premium.
    """

    id: str
    kind: InstrumentKind
    underlying: str
    settlement_asset: str
    multiplier_minor: int
    expiry_ms: int | None
    strike_ticks: int | None
    option_type: OptionType | None
    reference_ticks: int
    # Recent trades' premiums over the index: the mark is the index shifted by their
    # size-weighted median over the mark window (SK-MARK-1).
    premium_samples: tuple[PremiumSample, ...] = ()
    # Funding's schedule (a perpetual): the end of the last interval charged, on the kernel
    # clock, and the sum of the reference shifts funding has made, in ticks (SK-FUNDING).
    last_funding_ms: int = 0
    funding_index_ticks: int = 0
    # The mark premium's time integral, ppm x ms, from the last charge (or the listing) at
    # premium_since_ms up to premium_until_ms: funding charges its average (SK-FUNDING-2).
    premium_integral: int = 0
    premium_since_ms: int = 0
    premium_until_ms: int = 0
    # The final settlement price once the instrument has expired and settled (SK-EXPIRY).
    settlement_ticks: int | None = None

    @property
    def is_linear(self) -> bool:
        """Return whether the instrument is marked to market (perpetual or future)."""
        return self.kind is not InstrumentKind.OPTION


@attrs.frozen
class Position:
    """A signed quantity and the price it was last settled at (positive is long)."""

    quantity_lots: int
    settled_price_ticks: int


EMPTY_BALANCES: Final[Map[str, int]] = Map()
EMPTY_POSITIONS: Final[Map[str, Position]] = Map()


@attrs.frozen
class Account:
    """Collateral balances per asset and positions per instrument of one owner.

    ``debt_minor`` is what the account owes the insurance fund and ``claim_minor`` what the
    fund owes it, both in the valuation asset (SK-DEBT): a settlement it could not pay in
    cash, and a settlement it was due but not paid. Never both at once; both count in its
    margin equity.
    """

    id: str
    owner: str
    balances: Map[str, int]
    positions: Map[str, Position]
    debt_minor: int = 0
    claim_minor: int = 0

    def balance(self, asset: str) -> int:
        """Return the balance of ``asset`` in minor units (0 when never held)."""
        return self.balances.get(asset, 0)


class VenueStatus(enum.Enum):
    """Where a venue stands with governance (SK-VENUE-1)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    # Removed for good: the id is never admitted again, so a grant can never come back to life.
    REMOVED = "removed"


class Grant(enum.Enum):
    """What an account owner lets one venue do on the account (SK-VENUE-2)."""

    FULL = "full"
    # Only trades that shrink the account's position without flipping it.
    REDUCE_ONLY = "reduce_only"
    NONE = "none"


@attrs.frozen
class Venue:
    """A matching venue that may submit trades, with its own limits (SK-VENUE).

    A house venue is named by ``rules.roles.matchers``: it exists from genesis, every account
    grants it ``FULL`` until its owner says otherwise, its limits are the rule set's, and its
    fees go to the system fee account. An admitted venue starts with no grant from anyone,
    has the limits governance gave it and is paid fees into ``fee_account``, an account the
    venue owns. ``open_lots`` is, per instrument, the open interest its trades added net of
    what they removed, floored at zero (SK-VENUE-4); house venues do not count it.
    """

    id: str
    status: VenueStatus
    house: bool
    fee_account: str
    open_interest_max_lots: int
    notional_max_minor: int
    fee_rate_max_ppm: int
    open_lots: Map[str, int]


@attrs.frozen
class IndexPrice:
    """The accepted index price of an underlying and the time it was reported."""

    price_ticks: int
    timestamp_ms: int


@attrs.frozen
class IndexSample:
    """The last accepted index of one history bucket, with the running time integral.

    ``cumulative`` is the sum of price x milliseconds from the first sample to this one, so
    the time-weighted average between two points is a difference of integrals (SK-EXPIRY-2).
    ``low_ticks`` and ``high_ticks`` bound every index in force in the sample's bucket up to
    it, the one carried in from the previous bucket included.
    """

    timestamp_ms: int
    price_ticks: int
    cumulative: int
    low_ticks: int
    high_ticks: int


@attrs.frozen
class IndexVolatility:
    """The accepted implied volatility of an underlying, in ppm, and its report time."""

    volatility_ppm: int
    timestamp_ms: int


@attrs.frozen
class RulesProposal:
    """A rule change the governor proposed, pending until it is applied or cancelled (SK-GOV-3).

    ``rules`` is the proposed rule set, checked when it was proposed; it applies at or after
    ``effective_ms`` on the kernel clock, which was at least the notice of the rules in force
    after the clock when it was proposed (``proposed_ms``).
    """

    id: str
    rules: RuleSet
    proposed_ms: int
    effective_ms: int


@attrs.frozen
class Grace:
    """The grace a rule change gave the accounts it alone moved below maintenance (SK-GOV-5).

    ``rules`` are the rules in force before the change; until ``until_ms`` an account of
    ``accounts`` that still meets their maintenance cannot be liquidated or backstopped.
    """

    rules: RuleSet
    until_ms: int
    accounts: Map[str, None]

    def shelters(self, clock_ms: int, account_id: str) -> bool:
        """Return whether the grace is open at ``clock_ms`` and covers ``account_id``."""
        return clock_ms < self.until_ms and account_id in self.accounts


@attrs.frozen
class TopUp:
    """An owner's standing top-up of an account from another of its accounts (SK-INSTR-1).

    When the account's equity is below ``threshold_ppm`` of its maintenance margin, the
    kernel moves ``asset`` (the valuation asset) from ``source`` into it, at most
    ``amount_max_minor`` per ``interval_ms``: ``used_minor`` is what it moved in the interval
    that began at ``window_start_ms`` on the kernel clock (SK-INSTR-3).
    """

    source: str
    asset: str
    threshold_ppm: int
    amount_max_minor: int
    interval_ms: int
    used_minor: int
    window_start_ms: int


@attrs.frozen(eq=False)
class MarginEntry:
    """A cached margin report and the inputs it was computed from (SK-MARGIN-CACHE-1).

    It is valid while the account is the very same object and the market inputs it read
    are unchanged; derived, never compared, never committed by the root.
    """

    account: Account
    market_key: tuple[object, ...]
    report: MarginReport


@attrs.frozen(eq=False)
class Commitment:
    """Incremental state-root bookkeeping (spec/40-roots.md); derived, never compared.

    ``lattice`` is the LtHash sum of every leaf as of the last fold; ``leaves`` keeps the
    2,048-byte vector of each mutable leaf as of that fold, so it can be subtracted when the
    leaf changes without hashing the old leaf again;
    ``dirty`` names the leaves changed since. Roots cost O(len(dirty)).
    """

    lattice: npt.NDArray[np.uint16]
    leaves: Map[str, bytes]
    dirty: Map[str, None]


@attrs.frozen
class State:
    """The whole kernel state. Immutable: every accepted step returns a new one.

    ``open_interest`` and ``holders`` are derived indexes kept for O(1) reads; they are not
    committed by the root and INV-OPEN-INTEREST-ZERO-SUM checks them against the positions.
    ``pending_expiries`` (per underlying, the expiry times whose settlement price is not yet
    fixed, ascending) is derived from the instruments and ``settlement_prices``, which are
    keyed ``<underlying>@<expiry_ms>`` (SK-EXPIRY-2); INV-EXPIRY-FINAL checks it.
    ``commitment`` (the root's lattice) and ``margins`` (cached margin reports) are derived
    too, and excluded from equality.
    """

    rules: RuleSet
    accounts: Map[str, Account]
    instruments: Map[str, Instrument]
    prices: Map[str, IndexPrice]
    volatilities: Map[str, IndexVolatility]
    reports: Map[str, Map[str, IndexPrice]]
    history: Map[str, tuple[IndexSample, ...]]
    settlement_prices: Map[str, int]
    trades: Map[str, Trade]
    custody: Map[str, int]
    clock_ms: int
    socialized_loss: Map[str, int]
    open_interest: Map[str, int]
    holders: Map[str, Map[str, None]]
    pending_expiries: Map[str, tuple[int, ...]]
    # Derived indexes of the accounts with a debt and with a claim (SK-DEBT), like holders.
    debtors: Map[str, None]
    claimants: Map[str, None]
    # Venues by id, and owners' grants keyed ``<account>@<venue>`` (SK-VENUE); a pair with
    # no entry has the venue's default grant (``FULL`` for a house venue, else ``NONE``).
    venues: Map[str, Venue]
    grants: Map[str, Grant]
    # [SK-GOV-3..5] The pending rule change, if any, and the grace of the last one applied.
    proposal: RulesProposal | None
    grace: Grace | None
    # [SK-INSTR-1] Standing top-up instructions, by the account they top up.
    instructions: Map[str, TopUp]
    commitment: Commitment = attrs.field(eq=False, repr=False)
    margins: Map[str, MarginEntry] = attrs.field(eq=False, repr=False)


def replace_state(  # noqa: PLR0913 (every field of the state, by keyword)
    state: State,
    *,
    accounts: Map[str, Account] | None = None,
    instruments: Map[str, Instrument] | None = None,
    prices: Map[str, IndexPrice] | None = None,
    volatilities: Map[str, IndexVolatility] | None = None,
    reports: Map[str, Map[str, IndexPrice]] | None = None,
    history: Map[str, tuple[IndexSample, ...]] | None = None,
    settlement_prices: Map[str, int] | None = None,
    trades: Map[str, Trade] | None = None,
    custody: Map[str, int] | None = None,
    clock_ms: int | None = None,
    socialized_loss: Map[str, int] | None = None,
    open_interest: Map[str, int] | None = None,
    holders: Map[str, Map[str, None]] | None = None,
    pending_expiries: Map[str, tuple[int, ...]] | None = None,
    debtors: Map[str, None] | None = None,
    claimants: Map[str, None] | None = None,
    venues: Map[str, Venue] | None = None,
    grants: Map[str, Grant] | None = None,
    instructions: Map[str, TopUp] | None = None,
    commitment: Commitment | None = None,
    margins: Map[str, MarginEntry] | None = None,
) -> State:
    """Return ``state`` with the given fields replaced: ``attrs.evolve`` without its cost.

    The rules, the pending rule change and the grace change only by the governance events
    (SK-GOV-3..5), which build their state with ``attrs.evolve``.
    """
    return State(
        state.rules,
        state.accounts if accounts is None else accounts,
        state.instruments if instruments is None else instruments,
        state.prices if prices is None else prices,
        state.volatilities if volatilities is None else volatilities,
        state.reports if reports is None else reports,
        state.history if history is None else history,
        state.settlement_prices if settlement_prices is None else settlement_prices,
        state.trades if trades is None else trades,
        state.custody if custody is None else custody,
        state.clock_ms if clock_ms is None else clock_ms,
        state.socialized_loss if socialized_loss is None else socialized_loss,
        state.open_interest if open_interest is None else open_interest,
        state.holders if holders is None else holders,
        state.pending_expiries if pending_expiries is None else pending_expiries,
        state.debtors if debtors is None else debtors,
        state.claimants if claimants is None else claimants,
        state.venues if venues is None else venues,
        state.grants if grants is None else grants,
        state.proposal,
        state.grace,
        state.instructions if instructions is None else instructions,
        state.commitment if commitment is None else commitment,
        state.margins if margins is None else margins,
    )
