"""One Monte Carlo path through the real kernel, with a keeper, and its metrics (SK-STRESS-3).

The runner is shell: it draws a population and a price path from a seed, turns them into
events and feeds every event to ``settlekernel.kernel.dispatch.step``, the same function an exchange
embeds. Nothing is modelled beside the kernel: liquidations, the insurance fund, ADL and
expiry are whatever ``step`` does with the events. The runner only reads the state to
decide what a keeper would submit and to measure what happened.

Per market step (one hour by default): both oracle sources report every underlying; when a
move exceeds the band the kernel moves the index one band and marks it too volatile, so the
sources report again a few seconds later, up to ``CATCHUP_ROUNDS_MAX`` rounds, until the
index has caught up (SK-ORACLE-3). Then funding and variation margin for each linear
instrument, then the keeper policy (SK-STRESS-3): liquidate every account that
``is_liquidatable`` says is below maintenance, in account order, for up to
``KEEPER_PASSES_MAX`` passes. After the last step the future and the options expire.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

import attrs
import numpy as np

from settlekernel.core.events import (
    Deposit,
    Event,
    Expire,
    Funding,
    FundInsurance,
    Liquidate,
    ListInstrument,
    OpenAccount,
    OraclePrice,
    OracleVolatility,
    Trade,
    VariationMargin,
)
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.model import State
from settlekernel.core.outcomes import Accepted, PostingCode
from settlekernel.core.rules import DEFAULT_RULES, RuleSet
from settlekernel.core.units import INSURANCE_ACCOUNT
from settlekernel.kernel.dispatch import genesis, step
from settlekernel.kernel.invariants import check_invariants, check_step
from settlekernel.margin.accounts import is_liquidatable, margin_report
from settlekernel.stress.paths import MarketParams, default_market, simulate_prices, to_ticks
from settlekernel.stress.population import (
    KEEPER,
    KEEPER_CASH_MINOR,
    MAKERS,
    USDC_MINOR,
    Listing,
    Member,
    draw_population,
    strike_ticks,
)

T0_MS: Final = 1_800_000_000_000
OPERATOR: Final = "operator"
VENUE: Final = "venue"
SOURCES: Final = ("oracle-a", "oracle-b")
CATCHUP_ROUNDS_MAX: Final = 25
CATCHUP_SPACING_MS: Final = 2_000
KEEPER_PASSES_MAX: Final = 3
FEE_RATE_PPM: Final = 200


@attrs.frozen
class Scenario:
    """A stress scenario: the market model, the population size and the system's buffers."""

    market: MarketParams = attrs.field(factory=default_market)
    n_accounts: int = 50
    insurance_minor: int = 250_000 * USDC_MINOR
    rules: RuleSet = DEFAULT_RULES
    # The membership is fixed per run: every path of a run trades the same population.
    population_seed: int = 0
    keeper: bool = True
    # check_step on every liquidation and on every this-many other events; 0: never.
    check_step_every: int = 10
    # Record each account's worst equity deficit per step, before the keeper (SK-STRESS-5).
    track_deficits: bool = False


@attrs.define
class PathMetrics:
    """What one path did (SK-STRESS-3). Money in valuation-asset minor units."""

    seed: int
    events: int = 0
    rejected: Counter[str] = attrs.field(factory=Counter)
    setup_trades_rejected: int = 0
    liquidations: int = 0
    bankruptcies: int = 0
    bad_debt_minor: int = 0
    insurance_paid_minor: int = 0
    penalties_minor: int = 0
    adl_events: int = 0
    adl_absorbers: Counter[str] = attrs.field(factory=Counter)
    liquidated: Counter[str] = attrs.field(factory=Counter)
    liquidations_per_step: list[int] = attrs.field(factory=list)
    insurance_path_minor: list[int] = attrs.field(factory=list)
    loss_by_tier_minor: dict[str, int] = attrs.field(factory=dict)
    socialized_minor: int = 0
    violations: list[str] = attrs.field(factory=list)
    deficit_max_minor: dict[str, int] = attrs.field(factory=dict)
    tiers: dict[str, str] = attrs.field(factory=dict)

    @property
    def insurance_min_minor(self) -> int:
        """Return the lowest insurance fund balance seen on the path."""
        return min(self.insurance_path_minor)

    @property
    def accounts_affected(self) -> list[str]:
        """Return every account liquidated or deleveraged, sorted."""
        return sorted(set(self.liquidated) | set(self.adl_absorbers))

    def to_json(self) -> dict[str, object]:
        """Return a JSON-ready dict (ints and strings only)."""
        data = attrs.asdict(self, filter=lambda field, _: field.name != "tiers")
        data["rejected"] = dict(sorted(self.rejected.items()))
        data["insurance_min_minor"] = self.insurance_min_minor
        data["accounts_affected"] = self.accounts_affected
        return data


class PathRun:
    """The mutable shell around one path: the current state, the events fed, the metrics."""

    def __init__(self, scenario: Scenario, seed: int) -> None:
        """Start a path at genesis under the scenario's rules."""
        self.scenario = scenario
        self.state: State = genesis(scenario.rules)
        self.metrics = PathMetrics(seed=seed)
        self.asset = scenario.rules.valuation_asset
        self.trade_number = 0
        self.listing = Listing()
        self.step_ms = round(scenario.market.step_hours * 3_600_000)
        self.expiry_ms = T0_MS + scenario.market.steps * self.step_ms

    def apply(self, event: Event) -> bool:
        """Feed one event to ``step``; check the step now and then; return if accepted."""
        before = self.state
        outcome = step(before, event)
        self.metrics.events += 1
        every = self.scenario.check_step_every
        if every and (isinstance(event, Liquidate) or self.metrics.events % every == 0):
            self.metrics.violations += [str(v) for v in check_step(before, event, outcome)]
        if isinstance(outcome, Accepted):
            self.state = outcome.state
            if isinstance(event, Liquidate):
                self._record_liquidation(before, event, outcome)
            return True
        self.metrics.rejected[f"{type(event).__name__}:{outcome.reason.value}"] += 1
        return False

    def _record_liquidation(self, before: State, event: Liquidate, outcome: Accepted) -> None:
        """Count a liquidation: bad debt, the fund's part, ADL and who absorbed it."""
        metrics = self.metrics
        metrics.liquidations += 1
        metrics.liquidated[event.account] += 1
        report = margin_report(before, event.account)
        if report is not None and report.equity_minor < 0:
            metrics.bankruptcies += 1
            metrics.bad_debt_minor += -report.equity_minor
        for posting in outcome.postings:
            if posting.code is PostingCode.INSURANCE:
                metrics.insurance_paid_minor += posting.amount_minor
            elif posting.code is PostingCode.PENALTY:
                metrics.penalties_minor += posting.amount_minor
        after = outcome.state
        absorbers = [
            account_id
            for account_id, account in after.accounts.items()
            if account_id not in (event.account, event.liquidator)
            and not account_id.startswith("@")
            and before.accounts[account_id].positions != account.positions
        ]
        if absorbers:
            metrics.adl_events += 1
            metrics.adl_absorbers.update(absorbers)

    def fund_minor(self) -> int:
        """Return the insurance fund's balance in the valuation asset."""
        return self.state.accounts[INSURANCE_ACCOUNT].balance(self.asset)


def run_path(scenario: Scenario, seed: int) -> PathMetrics:
    """Run one path through the real kernel; return its metrics.

    The price path is a function of ``seed``, the population of ``scenario.population_seed``.
    """
    rng = np.random.default_rng([seed, 0])
    market = scenario.market
    ticks = to_ticks(simulate_prices(market, rng))
    symbols = [asset.symbol for asset in market.assets]
    start = dict(zip(symbols, ticks[0], strict=True))
    volatility = {asset.symbol: asset.volatility_per_year for asset in market.assets}
    hours = market.steps * market.step_hours
    members = draw_population(
        np.random.default_rng([scenario.population_seed, 1]),
        scenario.n_accounts,
        index_ticks=start,
        volatility=volatility,
        expiry_hours=hours,
    )
    run = PathRun(scenario, seed)
    _setup(run, members, start, volatility)
    equity_start = _equities(run.state, members)
    run.metrics.insurance_path_minor.append(run.fund_minor())
    for number in range(1, market.steps + 1):
        at_ms = T0_MS + number * run.step_ms
        _report_prices(run, dict(zip(symbols, ticks[number], strict=True)), at_ms)
        _market_duties(run)
        if scenario.track_deficits:
            _track_deficits(run, members)
        before = run.metrics.liquidations
        if scenario.keeper:
            keeper_pass(run)
        run.metrics.liquidations_per_step.append(run.metrics.liquidations - before)
        run.metrics.insurance_path_minor.append(run.fund_minor())
    for instrument in (run.listing.future, run.listing.call, run.listing.put):
        run.apply(Expire(principal=OPERATOR, instrument=instrument))
    run.metrics.insurance_path_minor.append(run.fund_minor())
    run.metrics.socialized_minor = run.state.socialized_loss.get(run.asset, 0)
    _tier_losses(run, members, equity_start)
    run.metrics.violations += [str(v) for v in check_invariants(run.state)]
    return run.metrics


def _setup(
    run: PathRun, members: list[Member], start: dict[str, int], volatility: dict[str, float]
) -> None:
    """Open and fund every account, seed the fund, list, price, and open the books."""
    for member in members:
        run.apply(OpenAccount(principal=member.account, account=member.account))
        for asset, amount_minor in member.deposits:
            run.apply(
                Deposit(
                    principal=member.account,
                    account=member.account,
                    asset=asset,
                    amount_minor=amount_minor,
                )
            )
        run.metrics.tiers[member.account] = member.tier
    run.apply(OpenAccount(principal=KEEPER, account=KEEPER))
    run.apply(
        Deposit(principal=KEEPER, account=KEEPER, asset="USDC", amount_minor=KEEPER_CASH_MINOR)
    )
    insurance = run.scenario.insurance_minor
    run.apply(FundInsurance(principal=OPERATOR, asset="USDC", amount_minor=insurance))
    for listing in _listings(run, start):
        run.apply(listing)
    _report_prices(run, start, T0_MS)
    for underlying, sigma in volatility.items():
        run.apply(
            OracleVolatility(
                principal=SOURCES[0],
                underlying=underlying,
                volatility_ppm=round(sigma * 1_000_000),
                timestamp_ms=T0_MS,
            )
        )
    for member in members:
        for order in member.orders:
            run.trade_number += 1
            maker = f"mm-{run.trade_number % MAKERS}"
            buyer, seller = (member.account, maker) if order.lots > 0 else (maker, member.account)
            trade = Trade(
                principal=VENUE,
                trade_id=f"T-{run.trade_number:06d}",
                buyer=buyer,
                seller=seller,
                instrument=order.instrument,
                quantity_lots=abs(order.lots),
                price_ticks=order.price_ticks,
                buyer_fee_rate_ppm=FEE_RATE_PPM,
                seller_fee_rate_ppm=FEE_RATE_PPM,
            )
            if not run.apply(trade):
                run.metrics.setup_trades_rejected += 1


def _listings(run: PathRun, start: dict[str, int]) -> list[ListInstrument]:
    listing = run.listing
    events = [
        ListInstrument(
            principal=OPERATOR,
            instrument=name,
            kind=InstrumentKind.PERPETUAL,
            underlying=underlying,
            settlement_asset="USDC",
            multiplier_minor=10 if underlying == "BTC" else 100,
        )
        for name, underlying in listing.perpetuals
    ]
    dated = {"kind": InstrumentKind.FUTURE, "strike_ticks": None, "option_type": None}
    call = {
        "kind": InstrumentKind.OPTION,
        "strike_ticks": strike_ticks(start["BTC"], listing.call_strike_ppm),
        "option_type": OptionType.CALL,
    }
    put = {
        "kind": InstrumentKind.OPTION,
        "strike_ticks": strike_ticks(start["BTC"], listing.put_strike_ppm),
        "option_type": OptionType.PUT,
    }
    for name, fields in ((listing.future, dated), (listing.call, call), (listing.put, put)):
        events.append(
            ListInstrument(
                principal=OPERATOR,
                instrument=name,
                underlying="BTC",
                settlement_asset="USDC",
                multiplier_minor=10,
                expiry_ms=run.expiry_ms,
                **fields,
            )
        )
    return events


def _report_prices(run: PathRun, target: dict[str, int], at_ms: int) -> None:
    """Both sources report every underlying, again a little later while the index lags."""
    for round_number in range(CATCHUP_ROUNDS_MAX):
        timestamp_ms = at_ms + round_number * CATCHUP_SPACING_MS
        for underlying, price_ticks in target.items():
            for source in SOURCES:
                run.apply(
                    OraclePrice(
                        principal=source,
                        underlying=underlying,
                        price_ticks=price_ticks,
                        timestamp_ms=timestamp_ms,
                    )
                )
        prices = run.state.prices
        if all(prices[u].price_ticks == p for u, p in target.items() if u in prices):
            return


def _market_duties(run: PathRun) -> None:
    """Funding on each perpetual, then variation margin on each linear instrument."""
    perpetuals = [name for name, _ in run.listing.perpetuals]
    for instrument in perpetuals:
        # An operator charges funding once an interval has passed on the kernel clock.
        interval_ms = run.state.rules.underlying_by_symbol[
            run.state.instruments[instrument].underlying
        ].funding_interval_ms
        if run.state.clock_ms >= run.state.instruments[instrument].last_funding_ms + interval_ms:
            run.apply(Funding(principal=OPERATOR, instrument=instrument))
    for instrument in [*perpetuals, run.listing.future]:
        run.apply(VariationMargin(principal=OPERATOR, instrument=instrument))


def keeper_pass(run: PathRun) -> None:
    """The keeper policy (SK-STRESS-3): liquidate whoever is below maintenance, in order."""
    for _ in range(KEEPER_PASSES_MAX):
        targets = [
            account_id
            for account_id, account in run.state.accounts.items()
            if account.positions
            and account_id != KEEPER
            and not account_id.startswith("@")
            and is_liquidatable(run.state, account_id)
        ]
        if not targets:
            return
        for account_id in sorted(targets):
            run.apply(Liquidate(principal=KEEPER, account=account_id, liquidator=KEEPER))


def _track_deficits(run: PathRun, members: list[Member]) -> None:
    """Keep, per account, the largest shortfall of its equity below zero so far."""
    deficits = run.metrics.deficit_max_minor
    for account, equity in _equities(run.state, members).items():
        if equity < 0 and -equity > deficits.get(account, 0):
            deficits[account] = -equity


def _equities(state: State, members: list[Member]) -> dict[str, int]:
    equities = {}
    for member in members:
        report = margin_report(state, member.account)
        equities[member.account] = 0 if report is None else report.equity_minor
    return equities


def _tier_losses(run: PathRun, members: list[Member], start: dict[str, int]) -> None:
    """Sum, per tier, what each account lost from its equity after setup (gains count 0)."""
    end = _equities(run.state, members)
    losses: dict[str, int] = {}
    for member in members:
        loss = max(start[member.account] - end[member.account], 0)
        losses[member.tier] = losses.get(member.tier, 0) + loss
    run.metrics.loss_by_tier_minor = dict(sorted(losses.items()))


def path_seed(seed: int, number: int) -> int:
    """Return the seed of path ``number`` of a run seeded ``seed``: distinct for each pair."""
    return seed * 1_000_003 + number
