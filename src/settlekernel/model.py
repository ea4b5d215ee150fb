"""Containers: assets, rules, instruments, positions, accounts, state (spec/10-containers.md).

Every container is a frozen, slotted attrs class whose fields are ints, strings, enums,
tuples or ``immutables.Map``s, so a state can be shared by any number of later states and
never changes. A step rebuilds only what it touches (structural sharing): its cost is
O(accounts touched), not O(state).
"""

from __future__ import annotations

import enum
from functools import cached_property
from typing import TYPE_CHECKING, Final

import attrs
from immutables import Map

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from settlekernel.events import Trade
    from settlekernel.margin.portfolio import MarginReport
    from settlekernel.margin.scenarios import Scenario


class InstrumentKind(enum.Enum):
    """What an instrument is: its settlement style follows from its kind."""

    PERPETUAL = "perpetual"
    FUTURE = "future"
    OPTION = "option"


class OptionType(enum.Enum):
    """The right an option gives its holder."""

    CALL = "call"
    PUT = "put"


@attrs.frozen
class AssetRules:
    """A collateral asset: its symbol, the decimals of its minor unit, how it is valued."""

    symbol: str
    decimals: int
    # Collateral value is cut by this share (SK-COLLATERAL-1); 0 for the valuation asset.
    haircut_ppm: int = 0
    # The underlying whose index prices one whole unit of the asset; None for the
    # valuation asset itself (worth 1) or an asset that is not collateral.
    price_underlying: str | None = None


@attrs.frozen
class UnderlyingRules:
    """Risk parameters of one underlying, shared by every instrument written on it (SK-PM)."""

    symbol: str
    # Valuation-asset minor units per tick for one whole unit of the underlying: prices an
    # asset whose price_underlying this is, as collateral (SK-COLLATERAL-1).
    tick_value_minor: int
    # The price scan range, a share of the index: for a linear book it is the maintenance
    # rate, since its worst scenario is a full scan-range move.
    scan_range_ppm: int
    # Volatility shocks, relative: up multiplies by 1 + up, down by 1 - down.
    vol_up_ppm: int
    vol_down_ppm: int
    # The two extreme moves, a multiple of the scan range, and the share of their loss that
    # counts (SPAN: 2x at 35 %).
    extreme_multiple_ppm: int
    extreme_weight_ppm: int
    # Short-option contingency per net short contract, a share of its underlying notional.
    short_option_minimum_ppm: int
    # Initial margin is maintenance times this (>= 1,000,000: initial >= maintenance).
    im_multiplier_ppm: int
    # The scenarios look this far ahead: options are revalued this much closer to expiry.
    lookahead_ms: int
    # Oracle (SK-ORACLE): a report counts while younger than stale_after_ms; the index
    # needs min_sources fresh reports and moves at most band_ppm per accepted update.
    min_sources: int
    stale_after_ms: int
    band_ppm: int
    # A perpetual's or future's mark is its last trade price clamped to index +- this.
    mark_band_ppm: int
    # Funding (SK-FUNDING): at most one charge per interval, its rate clamped to +- this.
    funding_interval_ms: int
    funding_clamp_ppm: int
    # Liquidation (SK-LIQ): penalty on the closed notional, paid to the insurance fund.
    liquidation_penalty_ppm: int
    # Expiry (SK-EXPIRY): the settlement price is the index's TWAP over this window.
    settlement_window_ms: int

    @property
    def maintenance_rate_ppm(self) -> int:
        """Return the maintenance rate of a linear position: the scan range."""
        return self.scan_range_ppm

    @cached_property
    def scenarios(self) -> tuple[Scenario, ...]:
        """Return the 23 scenarios of this underlying's grid (SK-PM-1), built once."""
        from settlekernel.margin.scenarios import scenarios  # noqa: PLC0415 (import cycle)

        return scenarios(self)


@attrs.frozen
class Roles:
    """Principals that may submit system events."""

    operator: str
    oracles: tuple[str, ...]
    matchers: tuple[str, ...]


@attrs.frozen
class RuleSet:
    """Every parameter of the kernel. Numbers are ints: rates in ppm, bounds, limits."""

    assets: tuple[AssetRules, ...]
    underlyings: tuple[UnderlyingRules, ...]
    roles: Roles
    fee_rate_max_ppm: int
    accounts_max: int
    instruments_max: int
    positions_per_account_max: int
    position_lots_max: int
    price_ticks_max: int
    multiplier_minor_max: int
    # The asset margin is measured in; every instrument settles in it (SK-LIST-3).
    valuation_asset: str
    # Index history kept per underlying for settlement TWAPs: at most one sample per
    # interval, at most this many samples (SK-EXPIRY-2).
    price_history_max: int
    price_history_interval_ms: int

    @cached_property
    def asset_by_symbol(self) -> dict[str, AssetRules]:
        """Return the assets keyed by symbol."""
        return {asset.symbol: asset for asset in self.assets}

    @cached_property
    def underlying_by_symbol(self) -> dict[str, UnderlyingRules]:
        """Return the underlyings keyed by symbol."""
        return {underlying.symbol: underlying for underlying in self.underlyings}

    @cached_property
    def digest(self) -> bytes:
        """Return the SHA-256 of the canonical encoding: the rule set's identity."""
        from settlekernel.rules import rules_digest  # noqa: PLC0415 (avoids an import cycle)

        return rules_digest(self)

    @classmethod
    def default(cls) -> RuleSet:
        """Return the built-in rule set used by the demo and the tests."""
        return DEFAULT_RULES

    def problems(self) -> list[str]:
        """Return every reason this rule set is unusable; empty when it is sound."""
        from settlekernel.rules import check_rules  # noqa: PLC0415 (avoids an import cycle)

        return check_rules(self)


DEFAULT_RULES: Final = RuleSet(
    assets=(
        AssetRules(symbol="BTC", decimals=8, haircut_ppm=100_000, price_underlying="BTC"),
        AssetRules(symbol="ETH", decimals=18, haircut_ppm=150_000, price_underlying="ETH"),
        AssetRules(symbol="USDC", decimals=6, haircut_ppm=0, price_underlying=None),
    ),
    underlyings=(
        # BTC and ETH are quoted in cents: one tick of one whole coin is 0.01 USDC.
        UnderlyingRules(
            symbol="BTC",
            tick_value_minor=10_000,
            scan_range_ppm=80_000,
            vol_up_ppm=300_000,
            vol_down_ppm=300_000,
            extreme_multiple_ppm=2_000_000,
            extreme_weight_ppm=350_000,
            short_option_minimum_ppm=10_000,
            im_multiplier_ppm=1_250_000,
            lookahead_ms=86_400_000,
            min_sources=2,
            stale_after_ms=60_000,
            band_ppm=50_000,
            mark_band_ppm=10_000,
            funding_interval_ms=3_600_000,
            funding_clamp_ppm=750,
            liquidation_penalty_ppm=15_000,
            settlement_window_ms=1_800_000,
        ),
        UnderlyingRules(
            symbol="ETH",
            tick_value_minor=10_000,
            scan_range_ppm=96_000,
            vol_up_ppm=300_000,
            vol_down_ppm=300_000,
            extreme_multiple_ppm=2_000_000,
            extreme_weight_ppm=350_000,
            short_option_minimum_ppm=12_000,
            im_multiplier_ppm=1_250_000,
            lookahead_ms=86_400_000,
            min_sources=2,
            stale_after_ms=60_000,
            band_ppm=60_000,
            mark_band_ppm=10_000,
            funding_interval_ms=3_600_000,
            funding_clamp_ppm=750,
            liquidation_penalty_ppm=15_000,
            settlement_window_ms=1_800_000,
        ),
    ),
    roles=Roles(
        operator="operator", oracles=("oracle-a", "oracle-b", "oracle-c"), matchers=("venue",)
    ),
    fee_rate_max_ppm=10_000,
    accounts_max=1_000_000,
    instruments_max=10_000,
    positions_per_account_max=32,
    position_lots_max=10**12,
    price_ticks_max=10**15,
    multiplier_minor_max=10**12,
    valuation_asset="USDC",
    price_history_max=64,
    price_history_interval_ms=60_000,
)


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
    # The last trade's premium over the index, in ppm, clamped to the mark band: the mark
    # is the index shifted by it (SK-MARK-1).
    premium_ppm: int = 0
    # When funding was last charged (a perpetual), on the kernel clock, and the sum of the
    # reference shifts funding has made, in ticks (SK-FUNDING).
    last_funding_ms: int = 0
    funding_index_ticks: int = 0
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
    """Collateral balances per asset and positions per instrument of one owner."""

    id: str
    owner: str
    balances: Map[str, int]
    positions: Map[str, Position]

    def balance(self, asset: str) -> int:
        """Return the balance of ``asset`` in minor units (0 when never held)."""
        return self.balances.get(asset, 0)


@attrs.frozen
class IndexPrice:
    """The accepted index price of an underlying and the time it was reported."""

    price_ticks: int
    timestamp_ms: int


@attrs.frozen
class IndexSample:
    """An accepted index in the history, with the running time integral of the index.

    ``cumulative`` is the sum of price x milliseconds from the first sample to this one, so
    the time-weighted average between two points is a difference of integrals (SK-EXPIRY-2).
    """

    timestamp_ms: int
    price_ticks: int
    cumulative: int


@attrs.frozen
class IndexVolatility:
    """The accepted implied volatility of an underlying, in ppm, and its report time."""

    volatility_ppm: int
    timestamp_ms: int


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
    32-byte digest of each mutable leaf as of that fold, so its vector can be re-expanded
    and subtracted when the leaf changes;
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
    commitment: Commitment | None = None,
    margins: Map[str, MarginEntry] | None = None,
) -> State:
    """Return ``state`` with the given fields replaced: ``attrs.evolve`` without its cost."""
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
        state.commitment if commitment is None else commitment,
        state.margins if margins is None else margins,
    )
