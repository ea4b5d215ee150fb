"""The rule set: its containers, its checks and its canonical encoding (spec/10-containers.md).

Every parameter of the kernel is an int (rates in ppm, bounds, limits) in one frozen
``RuleSet``; ``check_rules`` says why a rule set is unusable (SK-RULES), and its digest,
the SHA-256 of a canonical encoding, is the rule set's identity. The TOML form is
``settlekernel.core.rules_toml``.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import Final

import attrs

from settlekernel.core.scenarios import Scenario, scenarios
from settlekernel.core.units import PPM, TIMESTAMP_LIMIT_MS, VALUE_LIMIT, is_identifier

DECIMALS_MAX: Final = 30
# Ten times the scan range at most: no scenario may reach a price of zero or below.
_SCENARIO_SHARE_MAX: Final = PPM - 1
_LIMITS: Final = (
    "accounts_max",
    "instruments_max",
    "positions_per_account_max",
    "position_lots_max",
    "price_ticks_max",
    "multiplier_minor_max",
    "price_history_max",
    "price_history_interval_ms",
    "mark_samples_max",
    "funding_intervals_max",
)
# Each trade of a linear instrument reads every premium sample kept: a small bound.
MARK_SAMPLES_LIMIT: Final = 64
# [SK-GOV-3] The governance periods, in ms: a rule change's least notice and its grace.
GOVERNANCE_FIELDS: Final = ("rules_notice_ms", "rules_grace_ms")
# [SK-INSTR-4] The most standing top-ups one variation-margin event executes.
INSTRUCTIONS_PER_EVENT_LIMIT: Final = 1024
INT_SCALAR_FIELDS: Final = (
    "fee_rate_max_ppm",
    "backstop_equity_ppm",
    *_LIMITS,
    *GOVERNANCE_FIELDS,
    "instructions_per_event_max",
)
ASSET_INT_FIELDS: Final = ("decimals", "haircut_ppm", "liquidation_discount_ppm")
ASSET_FIELDS: Final = (*ASSET_INT_FIELDS, "price_underlying")
UNDERLYING_FIELDS: Final = (
    "tick_value_minor",
    "scan_range_ppm",
    "vol_up_ppm",
    "vol_down_ppm",
    "extreme_multiple_ppm",
    "extreme_weight_ppm",
    "short_option_minimum_ppm",
    "calendar_spread_ppm",
    "im_multiplier_ppm",
    "lookahead_ms",
    "min_sources",
    "stale_after_ms",
    "band_ppm",
    "dispersion_band_ppm",
    "mark_band_ppm",
    "mark_window_ms",
    "funding_interval_ms",
    "funding_clamp_ppm",
    "liquidation_penalty_ppm",
    "settlement_window_ms",
)


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
    # A liquidation sells the asset at its index less this share (SK-WATERFALL-1): the most a
    # liquidator or the fund gains on it. At most the haircut, so a sale raises at least the
    # value margin counted.
    liquidation_discount_ppm: int = 0


# The hash is cached: the margin memos key on an underlying's rules (SK-MARGIN-DET-2) and
# would otherwise hash its two dozen fields on every lookup. Frozen, so it cannot go stale.
@attrs.frozen(cache_hash=True)
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
    # Calendar-spread charge (SK-PM-7): linear positions on this underlying that offset each
    # other across instruments are charged this share of the offset notional, for the basis
    # their marks can show between them.
    calendar_spread_ppm: int
    # Initial margin is maintenance times this (>= 1,000,000: initial >= maintenance).
    im_multiplier_ppm: int
    # The scenarios look this far ahead: options are revalued this much closer to expiry.
    lookahead_ms: int
    # Oracle (SK-ORACLE): a report counts while younger than stale_after_ms; the index
    # needs min_sources fresh reports and moves at most band_ppm per accepted update.
    min_sources: int
    stale_after_ms: int
    band_ppm: int
    # With an even number of fresh reports, the two middle ones may differ by at most this
    # share of the index; beyond it no majority backs a price and the oracle is DISPUTED.
    dispersion_band_ppm: int
    # A perpetual's or future's mark is the index plus the size-weighted median premium of
    # the trades in the last mark_window_ms, each clamped to +- mark_band_ppm (SK-MARK-1).
    mark_band_ppm: int
    mark_window_ms: int
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
        return scenarios(self.scan_range_ppm, self.extreme_multiple_ppm, self.extreme_weight_ppm)


@attrs.frozen
class Roles:
    """Principals that may submit system events."""

    operator: str
    oracles: tuple[str, ...]
    matchers: tuple[str, ...]
    # The clock's source (SK-TICK): staleness is measured against the time it reports,
    # whatever the oracle sources do.
    sequencer: str = "sequencer"
    # [New in v5] The one principal that admits, suspends and removes venues and proposes
    # rule changes (SK-GOV): a single key; a threshold of signers is the embedder's, who can
    # put a multisig behind this principal.
    governor: str = "governor"


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
    # Premium samples kept per linear instrument for its mark (SK-MARK-1), and the most
    # funding intervals one charge catches up (SK-FUNDING-1).
    mark_samples_max: int
    funding_intervals_max: int
    # [SK-LIQ-6] An account whose equity is below this share of its maintenance margin may be
    # closed out by the backstop (against the opposite side, the fund covering any shortfall)
    # by anyone: below it, no keeper took it in time. 2/3, as Hyperliquid's backstop.
    backstop_equity_ppm: int = 666_667
    # [SK-GOV-3] A proposed rule set takes effect at least this long after it is proposed,
    # counted under the rules in force, so no change can shorten its own notice.
    rules_notice_ms: int = 86_400_000
    # [SK-GOV-5] After a change applies, an account it alone moved below maintenance cannot
    # be liquidated for this long while it meets the maintenance of the rules before it;
    # counted under those rules, so no change can shorten its own grace.
    rules_grace_ms: int = 86_400_000
    # [SK-INSTR-4] After a variation-margin event the kernel executes at most this many
    # standing top-ups of the instrument's holders, in account-id order: no cascade is
    # unbounded.
    instructions_per_event_max: int = 16

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
        return rules_digest(self)

    @classmethod
    def default(cls) -> RuleSet:
        """Return the built-in rule set used by the demo and the tests."""
        return DEFAULT_RULES

    def problems(self) -> list[str]:
        """Return every reason this rule set is unusable; empty when it is sound."""
        return check_rules(self)


DEFAULT_RULES: Final = RuleSet(
    assets=(
        AssetRules(
            symbol="BTC",
            decimals=8,
            haircut_ppm=100_000,
            price_underlying="BTC",
            liquidation_discount_ppm=20_000,
        ),
        AssetRules(
            symbol="ETH",
            decimals=18,
            haircut_ppm=150_000,
            price_underlying="ETH",
            liquidation_discount_ppm=30_000,
        ),
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
            calendar_spread_ppm=20_000,
            im_multiplier_ppm=1_250_000,
            lookahead_ms=86_400_000,
            min_sources=2,
            stale_after_ms=60_000,
            band_ppm=50_000,
            dispersion_band_ppm=50_000,
            mark_band_ppm=10_000,
            mark_window_ms=300_000,
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
            calendar_spread_ppm=20_000,
            im_multiplier_ppm=1_250_000,
            lookahead_ms=86_400_000,
            min_sources=2,
            stale_after_ms=60_000,
            band_ppm=60_000,
            dispersion_band_ppm=60_000,
            mark_band_ppm=10_000,
            mark_window_ms=300_000,
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
    mark_samples_max=16,
    funding_intervals_max=24,
)


def check_rules(rules: RuleSet) -> list[str]:
    """Return every reason ``rules`` is unusable (SK-RULES-1..3); empty when it is sound."""
    problems: list[str] = []
    problems += _check_identifiers("asset", [asset.symbol for asset in rules.assets])
    problems += _check_identifiers("underlying", [u.symbol for u in rules.underlyings])
    for asset in rules.assets:
        problems += _check_asset(asset, rules)
    for underlying in rules.underlyings:
        problems += _check_underlying(underlying)
        problems += _check_oracle(underlying, len(set(rules.roles.oracles)))
        # The history must hold a whole settlement window of samples (SK-EXPIRY-2).
        needed = underlying.settlement_window_ms // max(rules.price_history_interval_ms, 1) + 2
        if rules.price_history_max < needed:
            problems.append(
                f"underlying {underlying.symbol}: price_history_max {rules.price_history_max} "
                f"holds less than its settlement window ({needed} samples)"
            )
    roles = rules.roles
    principals = [roles.operator, *roles.oracles, *roles.matchers, roles.sequencer, roles.governor]
    problems += [
        f"role principal {p!r} is not an identifier" for p in principals if not is_identifier(p)
    ]
    if not roles.oracles:
        problems.append("roles.oracles is empty: no price could ever be accepted")
    if not roles.matchers:
        problems.append("roles.matchers is empty: no trade could ever be accepted")
    if not 0 <= rules.fee_rate_max_ppm <= PPM:
        problems.append(f"fee_rate_max_ppm {rules.fee_rate_max_ppm} outside [0, {PPM}]")
    if not 0 < rules.backstop_equity_ppm <= PPM:
        problems.append(f"backstop_equity_ppm {rules.backstop_equity_ppm} outside (0, {PPM}]")
    if not 0 <= rules.instructions_per_event_max <= INSTRUCTIONS_PER_EVENT_LIMIT:
        problems.append(
            f"instructions_per_event_max {rules.instructions_per_event_max} outside "
            f"[0, {INSTRUCTIONS_PER_EVENT_LIMIT}]"
        )
    for name in _LIMITS:
        value = getattr(rules, name)
        if not 1 <= value < VALUE_LIMIT:
            problems.append(f"{name} {value} outside [1, 2**96)")
    for name in GOVERNANCE_FIELDS:
        value = getattr(rules, name)
        if not 0 <= value < TIMESTAMP_LIMIT_MS:
            problems.append(f"{name} {value} outside [0, {TIMESTAMP_LIMIT_MS})")
    if rules.mark_samples_max > MARK_SAMPLES_LIMIT:
        problems.append(f"mark_samples_max {rules.mark_samples_max} above {MARK_SAMPLES_LIMIT}")
    return problems


def _check_identifiers(what: str, symbols: list[str]) -> list[str]:
    problems = [
        f"{what} symbol {s!r} is not an identifier" for s in symbols if not is_identifier(s)
    ]
    if len(set(symbols)) != len(symbols):
        problems.append(f"{what} symbols are not unique: {sorted(symbols)}")
    return problems


def _check_asset(asset: AssetRules, rules: RuleSet) -> list[str]:
    name = f"asset {asset.symbol}"
    problems = []
    if not 0 <= asset.decimals <= DECIMALS_MAX:
        problems.append(f"{name}: decimals {asset.decimals} outside [0, {DECIMALS_MAX}]")
    if not 0 <= asset.haircut_ppm <= PPM:
        problems.append(f"{name}: haircut_ppm {asset.haircut_ppm} outside [0, {PPM}]")
    if not 0 <= asset.liquidation_discount_ppm <= asset.haircut_ppm:
        problems.append(
            f"{name}: liquidation_discount_ppm {asset.liquidation_discount_ppm} outside "
            f"[0, haircut_ppm {asset.haircut_ppm}]"
        )
    # [SK-RULES-3] The valuation asset is worth exactly itself: no price, no haircut.
    if asset.symbol == rules.valuation_asset:
        if asset.price_underlying is not None or asset.haircut_ppm != 0:
            problems.append(f"{name}: the valuation asset takes no price_underlying or haircut")
    elif asset.price_underlying is not None and (
        asset.price_underlying not in rules.underlying_by_symbol
    ):
        problems.append(f"{name}: price_underlying {asset.price_underlying} is not an underlying")
    return problems


def _check_underlying(underlying: UnderlyingRules) -> list[str]:
    name = f"underlying {underlying.symbol}"
    problems = [
        f"{name}: {field} {getattr(underlying, field)} outside [0, {PPM}]"
        for field in (
            "vol_down_ppm",
            "extreme_weight_ppm",
            "short_option_minimum_ppm",
            "calendar_spread_ppm",
        )
        if not 0 <= getattr(underlying, field) <= PPM
    ]
    problems += [
        f"{name}: {field} {getattr(underlying, field)} outside [0, 2**96)"
        for field in ("tick_value_minor", "vol_up_ppm", "lookahead_ms")
        if not 0 <= getattr(underlying, field) < VALUE_LIMIT
    ]
    if not 0 < underlying.scan_range_ppm < PPM:
        problems.append(f"{name}: scan_range_ppm {underlying.scan_range_ppm} outside (0, {PPM})")
    if not PPM <= underlying.extreme_multiple_ppm < VALUE_LIMIT:
        problems.append(f"{name}: extreme_multiple_ppm below {PPM} (the scan range)")
    elif underlying.scan_range_ppm * underlying.extreme_multiple_ppm // PPM > _SCENARIO_SHARE_MAX:
        problems.append(f"{name}: the extreme scenario moves the price by 100 % or more")
    # [SK-RULES-2] Initial margin is at least maintenance margin, or an account could be
    # liquidatable the moment a trade is accepted.
    if not PPM <= underlying.im_multiplier_ppm < VALUE_LIMIT:
        problems.append(
            f"{name}: im_multiplier_ppm {underlying.im_multiplier_ppm} below {PPM}: "
            "initial margin would fall below maintenance"
        )
    return problems


def _check_oracle(underlying: UnderlyingRules, sources: int) -> list[str]:
    """The oracle, funding, liquidation and expiry parameters (SK-RULES-4)."""
    name = f"underlying {underlying.symbol}"
    problems = []
    if not 1 <= underlying.min_sources <= max(sources, 1):
        problems.append(
            f"{name}: min_sources {underlying.min_sources} outside [1, {sources}]"
            " (the number of oracle sources)"
        )
    if not 0 < underlying.band_ppm < PPM:
        problems.append(f"{name}: band_ppm {underlying.band_ppm} outside (0, {PPM})")
    if not 0 < underlying.dispersion_band_ppm <= PPM:
        problems.append(
            f"{name}: dispersion_band_ppm {underlying.dispersion_band_ppm} outside (0, {PPM}]"
        )
    problems += [
        f"{name}: {field} {getattr(underlying, field)} outside [0, {PPM}]"
        for field in ("mark_band_ppm", "funding_clamp_ppm", "liquidation_penalty_ppm")
        if not 0 <= getattr(underlying, field) <= PPM
    ]
    problems += [
        f"{name}: {field} {getattr(underlying, field)} outside [1, 2**63)"
        for field in (
            "stale_after_ms",
            "funding_interval_ms",
            "settlement_window_ms",
            "mark_window_ms",
        )
        if not 1 <= getattr(underlying, field) < TIMESTAMP_LIMIT_MS
    ]
    return problems


def encode_rules(rules: RuleSet) -> bytes:
    """Return the canonical byte encoding of a rule set (sorted, one line per entry)."""
    lines = [
        f"asset {a.symbol} decimals={a.decimals} haircut_ppm={a.haircut_ppm} "
        f"liquidation_discount_ppm={a.liquidation_discount_ppm} "
        f"price_underlying={a.price_underlying or '-'}"
        for a in sorted(rules.assets, key=lambda a: a.symbol)
    ]
    lines += [
        f"underlying {u.symbol} "
        + " ".join(f"{field}={getattr(u, field)}" for field in UNDERLYING_FIELDS)
        for u in sorted(rules.underlyings, key=lambda u: u.symbol)
    ]
    lines.append(
        f"roles operator={rules.roles.operator} "
        f"oracles={','.join(sorted(rules.roles.oracles))} "
        f"matchers={','.join(sorted(rules.roles.matchers))} "
        f"sequencer={rules.roles.sequencer} "
        f"governor={rules.roles.governor}"
    )
    lines += [f"{name}={getattr(rules, name)}" for name in INT_SCALAR_FIELDS]
    lines.append(f"valuation_asset={rules.valuation_asset}")
    return ("\n".join(lines) + "\n").encode()


def rules_digest(rules: RuleSet) -> bytes:
    """Return the SHA-256 of the canonical encoding: the rule set's identity."""
    return hashlib.sha256(b"settlekernel/rules/v7\n" + encode_rules(rules)).digest()
