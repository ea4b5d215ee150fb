"""A deterministic, realistic mixed event stream for the replay benchmark.

The stream opens and funds every account, seeds the insurance fund, lists five instruments
(two perpetuals, a future and two options), prices BTC and ETH, then runs a market: mostly
trades near the index, collateral movements, index prices from two sources every 100 to 200
events, a variation-margin mark of each perpetual now and then, and a few percent of
adversarial events that must be rejected (replayed trade ids, unknown accounts,
over-withdrawals, wrong principals, stale prices, malformed fields, early funding, premature
expiry, hopeful liquidations). Owner ``i`` holds two accounts, ``acct-i-a`` and
``acct-i-b``, so that transfers between sub-accounts are possible.

The post-trade life of the book runs alongside. A few quiet hours pass in every stream (the
clock jumps an hour, both indexes are reported afresh), so each perpetual is charged funding
whenever an interval has passed, and the operator tops up the insurance fund now and then.
Now and then a levered trader (a fresh account ``lev-k``) opens a perpetual position near
its initial-margin limit and a price wick goes against it; a keeper account liquidates it,
which succeeds only if the wick took it below maintenance, and re-checks the previous
trader. Once a BTC index at or after the future's expiry is in, the operator expires it.

``linear_only`` lists the perpetuals and the future only, and drops the options from the
trade mix (their weights go nowhere: the linear instruments keep their relative shares);
everything else is the same mix, including the adversarial refusal to mark an option, which
then names an instrument never listed. It measures the linear book alone (issue 14's
linear-only target).

``random.Random(seed)`` makes the stream a pure function of its arguments; randomness stays
here, in the benchmark shell, and never reaches the kernel.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

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
    Transfer,
    VariationMargin,
    Withdraw,
)
from settlekernel.core.kinds import InstrumentKind, OptionType

OPERATOR: Final = "operator"
# Two price sources report each index: the default rule set's quorum is two.
ORACLES: Final = ("oracle-a", "oracle-b")
VENUE: Final = "venue"
MALLORY: Final = "mallory"
USDC: Final = 10**6
# Event timestamps: a realistic epoch start and a fixed spacing per stream position, so that
# each feed's reports are strictly newer than its previous one however they are jittered.
T0_MS: Final = 1_700_000_000_000
MS_PER_EVENT: Final = 250
# Index prices in ticks (cents): BTC at 90,000.00 USD, ETH at 3,000.00 USD.
START_INDEX: Final = {"BTC": 9_000_000, "ETH": 300_000}
# Implied volatilities in ppm; they wander with each index report.
START_VOLATILITY: Final = {"BTC": 550_000, "ETH": 700_000}
# Linear instruments marked to market by VariationMargin, and their share of trades.
PERPETUALS: Final = ("BTC-PERP", "ETH-PERP")
TRADE_WEIGHTS: Final = {
    "BTC-PERP": 45,
    "ETH-PERP": 30,
    "BTC-FUT": 10,
    "BTC-C-100K": 8,
    "BTC-P-85K": 7,
}
FEE_RATES_PPM: Final = (0, 0, 50, 100, 200, 250, 400, 500)
# A quiet hour: the clock jumps this far (one funding interval of the default rules), and
# the market resumes with fresh reports. Three per stream, at each quarter.
QUIET_MS: Final = 3_600_000
FUNDING_INTERVAL_MS: Final = 3_600_000
# Initial-margin rate of a linear book (scan range x IM multiplier of the default rules): a
# levered trader sizes its position against it.
INITIAL_RATE_PPM: Final = {"BTC": 100_000, "ETH": 120_000}
LEVERED_PERPETUALS: Final = (
    ("BTC-PERP", "BTC", 10),
    ("BTC-PERP", "BTC", 10),
    ("ETH-PERP", "ETH", 100),
)


def quiet_hours(n_events: int) -> list[int]:
    """Return the stream positions after which an hour passes quietly."""
    every = max(500, n_events // 4)
    return list(range(every, n_events, every))[:3]


def listings(n_events: int, linear_only: bool = False) -> list[ListInstrument]:
    """Return the five listings (three if ``linear_only``); the future expires about four
    fifths into the stream.

    Expiries count the quiet hours before them, so the future expires about four fifths in
    and the options after the stream, in event time.
    """
    every = _all_listings(n_events)
    if linear_only:
        return [spec for spec in every if spec.kind is not InstrumentKind.OPTION]
    return every


def _all_listings(n_events: int) -> list[ListInstrument]:
    quiet = quiet_hours(n_events)
    future_position = n_events * 4 // 5
    future_expiry_ms = (
        T0_MS
        + future_position * MS_PER_EVENT
        + QUIET_MS * sum(1 for at in quiet if at < future_position)
    )
    option_expiry_ms = T0_MS + 2 * n_events * MS_PER_EVENT + QUIET_MS * len(quiet)
    return [
        ListInstrument(
            principal=OPERATOR,
            instrument="BTC-PERP",
            kind=InstrumentKind.PERPETUAL,
            underlying="BTC",
            settlement_asset="USDC",
            multiplier_minor=10,
        ),
        ListInstrument(
            principal=OPERATOR,
            instrument="ETH-PERP",
            kind=InstrumentKind.PERPETUAL,
            underlying="ETH",
            settlement_asset="USDC",
            multiplier_minor=100,
        ),
        ListInstrument(
            principal=OPERATOR,
            instrument="BTC-FUT",
            kind=InstrumentKind.FUTURE,
            underlying="BTC",
            settlement_asset="USDC",
            multiplier_minor=10,
            expiry_ms=future_expiry_ms,
        ),
        ListInstrument(
            principal=OPERATOR,
            instrument="BTC-C-100K",
            kind=InstrumentKind.OPTION,
            underlying="BTC",
            settlement_asset="USDC",
            multiplier_minor=10,
            expiry_ms=option_expiry_ms,
            strike_ticks=10_000_000,
            option_type=OptionType.CALL,
        ),
        ListInstrument(
            principal=OPERATOR,
            instrument="BTC-P-85K",
            kind=InstrumentKind.OPTION,
            underlying="BTC",
            settlement_asset="USDC",
            multiplier_minor=10,
            expiry_ms=option_expiry_ms,
            strike_ticks=8_500_000,
            option_type=OptionType.PUT,
        ),
    ]


class _Market:
    """The generator's view of the market: just enough to make plausible events."""

    def __init__(
        self, rng: random.Random, n_events: int, n_accounts: int, linear_only: bool = False
    ) -> None:
        self.rng = rng
        self.n_events = n_events
        self.accounts = [f"acct-{j // 2}-{'ab'[j % 2]}" for j in range(n_accounts)]
        self.owners = [f"owner-{j // 2}" for j in range(n_accounts)]
        self.index = dict(START_INDEX)
        self.oracle_ms = {(u, source): 0 for u in START_INDEX for source in ORACLES}
        self.volatility = dict(START_VOLATILITY)
        self.clock_ms = 0
        # Time the quiet hours added so far.
        self.skipped_ms = 0
        # Per perpetual, an upper bound of the kernel clock at its last funding charge: the
        # perpetuals are listed before the market opens, at T0 at the latest.
        self.funded_ms = dict.fromkeys(PERPETUALS, T0_MS)
        self.future_expired = False
        self.levered: list[str] = []
        self.specs = {spec.instrument: spec for spec in listings(n_events, linear_only)}
        self.linear_only = linear_only
        # Collateral moved in and out per account, ignoring trading gains and losses.
        self.funded_minor = [0] * n_accounts
        self.trades: list[Trade] = []
        self.trade_counter = 0
        names = [name for name in TRADE_WEIGHTS if name in self.specs]
        self.instrument_names = names
        self.instrument_weights = [TRADE_WEIGHTS[name] for name in names]

    # Honest events.

    def oracle(
        self, position: int, underlying: str, move_ppm: int | None = None
    ) -> list[OraclePrice]:
        """Move the index by up to +-0.5 %, pulled gently back towards its start.

        With ``move_ppm``, move it by exactly that instead (a wick, within the oracle's band).
        Both sources report the new price, each with its own timestamp jitter: a report may
        be older than the other source's latest, but each source's own reports are strictly
        increasing (they are at least one event position apart).
        """
        price = self.index[underlying]
        if move_ppm is None:
            start = START_INDEX[underlying]
            drift = (start - price) // 200
            price += drift + self.rng.randint(-price // 200, price // 200)
        else:
            price += price * move_ppm // 1_000_000
        self.index[underlying] = price
        reports = []
        for offset, source in enumerate(ORACLES):
            timestamp_ms = (
                T0_MS
                + self.skipped_ms
                + (position + offset) * MS_PER_EVENT
                - self.rng.randrange(MS_PER_EVENT)
            )
            self.oracle_ms[underlying, source] = timestamp_ms
            self.clock_ms = max(self.clock_ms, timestamp_ms)
            reports.append(
                OraclePrice(
                    principal=source,
                    underlying=underlying,
                    price_ticks=price,
                    timestamp_ms=timestamp_ms,
                )
            )
        return reports

    def implied_volatility(self, underlying: str) -> OracleVolatility:
        """Move the implied volatility by up to +-2 % of itself, at the feed's last time."""
        vol = self.volatility[underlying]
        vol += self.rng.randint(-vol // 50, vol // 50) + (START_VOLATILITY[underlying] - vol) // 20
        self.volatility[underlying] = vol
        return OracleVolatility(
            principal=ORACLES[0],
            underlying=underlying,
            volatility_ppm=vol,
            timestamp_ms=self.oracle_ms[underlying, ORACLES[0]],
        )

    def quorum_ms(self) -> int:
        """A lower bound of the kernel clock: the latest quorum of both sources' reports."""
        return max(min(self.oracle_ms[u, source] for source in ORACLES) for u in START_INDEX)

    def after_oracle(self) -> list[Event]:
        """The operator's duties once fresh indexes are in: funding due, the future's expiry."""
        events: list[Event] = []
        for instrument in PERPETUALS:
            # Due when even the earliest the clock can be is an interval past the latest it
            # can have been at the last charge, so an honest charge is never early.
            if self.quorum_ms() >= self.funded_ms[instrument] + FUNDING_INTERVAL_MS:
                events.append(Funding(principal=OPERATOR, instrument=instrument))
                self.funded_ms[instrument] = self.clock_ms
        expiry_ms = self.specs["BTC-FUT"].expiry_ms
        assert expiry_ms is not None
        btc_quorum_ms = min(self.oracle_ms["BTC", source] for source in ORACLES)
        if not self.future_expired and btc_quorum_ms >= expiry_ms:
            # The first BTC index stamped at or after the expiry has fixed the TWAP.
            events.append(Expire(principal=OPERATOR, instrument="BTC-FUT"))
            self.future_expired = True
        return events

    def quiet_hour(self, position: int) -> list[Event]:
        """An hour passes; both indexes are reported afresh, then the operator's duties."""
        self.skipped_ms += QUIET_MS
        events: list[Event] = []
        for underlying in START_INDEX:
            events += self.oracle(position + len(events), underlying)
            events.append(self.implied_volatility(underlying))
        if self.rng.random() < 0.5:
            amount_minor = self.rng.randint(10_000, 100_000) * USDC
            events.append(
                FundInsurance(principal=OPERATOR, asset="USDC", amount_minor=amount_minor)
            )
        return events + self.after_oracle()

    def levered_trader(self, position: int) -> list[Event]:
        """A fresh account opens a perpetual near its initial-margin limit; a wick goes
        against it; a keeper liquidates it (only if now below maintenance) and re-checks the
        previous levered trader."""
        rng = self.rng
        number = len(self.levered)
        owner, account = f"degen-{number}", f"lev-{number}"
        cash_minor = rng.randint(2_000, 20_000) * USDC
        instrument, underlying, multiplier = rng.choice(LEVERED_PERPETUALS)
        index = self.index[underlying]
        usage_ppm = rng.randint(850_000, 970_000)
        lots = max(cash_minor * usage_ppm // (INITIAL_RATE_PPM[underlying] * index * multiplier), 1)
        counterparty = self.accounts[rng.randrange(len(self.accounts))]
        long = rng.random() < 0.5
        self.trade_counter += 1
        trade = Trade(
            principal=VENUE,
            trade_id=f"T{self.trade_counter:09d}",
            buyer=account if long else counterparty,
            seller=counterparty if long else account,
            instrument=instrument,
            quantity_lots=lots,
            price_ticks=index,
            buyer_fee_rate_ppm=rng.choice(FEE_RATES_PPM[:4]),
            seller_fee_rate_ppm=rng.choice(FEE_RATES_PPM[:4]),
        )
        self.trades.append(trade)
        events: list[Event] = [
            OpenAccount(principal=owner, account=account),
            Deposit(principal=owner, account=account, asset="USDC", amount_minor=cash_minor),
            trade,
        ]
        # A wick of 1 % to 4.8 % against the trader, inside the oracle's band per update.
        move_ppm = rng.randint(10_000, 48_000)
        events += self.oracle(position + len(events), underlying, -move_ppm if long else move_ppm)
        keeper = rng.randrange(len(self.accounts))
        targets = [account]
        if self.levered and rng.random() < 0.5:
            targets.append(self.levered[-1])
        events += [
            Liquidate(
                principal=self.owners[keeper], account=target, liquidator=self.accounts[keeper]
            )
            for target in targets
        ]
        self.levered.append(account)
        return events

    def pair(self) -> tuple[int, int]:
        """Return two different account indexes."""
        n = len(self.accounts)
        buyer = self.rng.randrange(n)
        seller = self.rng.randrange(n - 1)
        return buyer, seller + (seller >= buyer)

    def trade_price(self, instrument: str) -> int:
        spec = self.specs[instrument]
        index = self.index[spec.underlying]
        if spec.kind is not InstrumentKind.OPTION:
            return index + self.rng.randint(-index // 500, index // 500)
        assert spec.strike_ticks is not None
        if spec.option_type is OptionType.CALL:
            intrinsic = max(index - spec.strike_ticks, 0)
        else:
            intrinsic = max(spec.strike_ticks - index, 0)
        return intrinsic + self.rng.randint(50_000, 300_000)

    def live_instrument(self) -> str:
        """Pick an instrument by weight; an expired future's flow moves to the perpetual."""
        name = self.rng.choices(self.instrument_names, self.instrument_weights)[0]
        expiry_ms = self.specs[name].expiry_ms
        if expiry_ms is not None and expiry_ms <= self.clock_ms:
            return "BTC-PERP"
        return name

    def trade(self, instrument: str | None = None) -> Trade:
        rng = self.rng
        instrument = instrument or self.live_instrument()
        buyer, seller = self.pair()
        self.trade_counter += 1
        trade = Trade(
            principal=VENUE,
            trade_id=f"T{self.trade_counter:09d}",
            buyer=self.accounts[buyer],
            seller=self.accounts[seller],
            instrument=instrument,
            quantity_lots=rng.randint(1, 50),
            price_ticks=self.trade_price(instrument),
            buyer_fee_rate_ppm=rng.choice(FEE_RATES_PPM),
            seller_fee_rate_ppm=rng.choice(FEE_RATES_PPM),
        )
        self.trades.append(trade)
        return trade

    def deposit(self) -> Deposit:
        j = self.rng.randrange(len(self.accounts))
        # Most deposits come from the owner; some are the custodian crediting a receipt.
        principal = OPERATOR if self.rng.random() < 0.2 else self.owners[j]
        amount_minor = self.rng.randint(100, 50_000) * USDC
        self.funded_minor[j] += amount_minor
        return Deposit(
            principal=principal, account=self.accounts[j], asset="USDC", amount_minor=amount_minor
        )

    def withdraw(self) -> Withdraw:
        j = self.rng.randrange(len(self.accounts))
        amount_minor = self.rng.randint(100, 20_000) * USDC
        self.funded_minor[j] = max(self.funded_minor[j] - amount_minor, 0)
        return Withdraw(
            principal=self.owners[j],
            account=self.accounts[j],
            asset="USDC",
            amount_minor=amount_minor,
        )

    def transfer(self) -> Transfer:
        j = self.rng.randrange(len(self.accounts))
        sibling = j ^ 1 if (j ^ 1) < len(self.accounts) else j
        amount_minor = min(self.rng.randint(100, 20_000) * USDC, self.funded_minor[j])
        amount_minor = max(amount_minor, USDC)
        self.funded_minor[j] = max(self.funded_minor[j] - amount_minor, 0)
        self.funded_minor[sibling] += amount_minor
        return Transfer(
            principal=self.owners[j],
            source_account=self.accounts[j],
            target_account=self.accounts[sibling],
            asset="USDC",
            amount_minor=amount_minor,
        )

    # Adversarial events: each is rejected (or, for the margin probe, may be).

    def adversarial(self, position: int) -> Event:
        attacks: list[Callable[[], Event]] = [
            self._replay_trade,
            self._replay_trade,
            self._altered_trade,
            self._altered_trade,
            self._unknown_account,
            self._over_withdrawal,
            self._wrong_principal,
            self._foreign_transfer,
            self._self_trade,
            self._margin_probe,
            self._dead_instrument,
            lambda: self._stale_price(position),
            self._unauthorised,
            self._malformed,
            self._early_funding,
            self._premature_expiry,
            self._hopeful_liquidation,
        ]
        return self.rng.choice(attacks)()

    def _early_funding(self) -> Event:
        # Funding a perpetual again before its interval, a future, or by someone else.
        choice = self.rng.randrange(3)
        if choice == 0:
            return Funding(principal=OPERATOR, instrument=self.rng.choice(PERPETUALS))
        if choice == 1:
            return Funding(principal=OPERATOR, instrument="BTC-FUT")
        return Funding(principal=MALLORY, instrument="BTC-PERP")

    def _premature_expiry(self) -> Event:
        # The future before its expiry (or again, once settled), or a perpetual.
        instrument = "BTC-FUT" if self.rng.random() < 0.7 else "ETH-PERP"
        return Expire(principal=OPERATOR, instrument=instrument)

    def _hopeful_liquidation(self) -> Event:
        # A keeper tries a well-funded account (not liquidatable, or holding nothing), or
        # itself; or mallory seeds the insurance fund.
        j, k = self.pair()
        choice = self.rng.randrange(4)
        if choice == 3:
            return FundInsurance(principal=MALLORY, asset="USDC", amount_minor=USDC)
        target = self.accounts[j] if choice else self.accounts[k]
        return Liquidate(principal=self.owners[k], account=target, liquidator=self.accounts[k])

    def _replay_trade(self) -> Event:
        if not self.trades:
            return self.trade()
        return self.rng.choice(self.trades)

    def _altered_trade(self) -> Event:
        if not self.trades:
            return self.trade()
        original = self.rng.choice(self.trades)
        field = self.rng.choice(
            ("buyer", "seller", "instrument", "quantity_lots", "price_ticks", "buyer_fee_rate_ppm")
        )
        changes: dict[str, object] = {
            "buyer": self.accounts[self.rng.randrange(len(self.accounts))],
            "seller": self.accounts[self.rng.randrange(len(self.accounts))],
            "instrument": "ETH-PERP" if original.instrument != "ETH-PERP" else "BTC-PERP",
            "quantity_lots": original.quantity_lots + 1,
            "price_ticks": original.price_ticks + 1,
            "buyer_fee_rate_ppm": original.buyer_fee_rate_ppm + 1,
        }
        fields = {
            name: getattr(original, name)
            for name in (
                "principal",
                "trade_id",
                "buyer",
                "seller",
                "instrument",
                "quantity_lots",
                "price_ticks",
                "buyer_fee_rate_ppm",
                "seller_fee_rate_ppm",
            )
        }
        fields[field] = changes[field]
        return Trade(**fields)  # type: ignore[arg-type]

    def _unknown_account(self) -> Event:
        ghost = f"ghost-{self.rng.randrange(1000)}"
        choice = self.rng.randrange(3)
        if choice == 0:
            return Deposit(principal=ghost, account=ghost, asset="USDC", amount_minor=USDC)
        if choice == 1:
            return Withdraw(principal=ghost, account=ghost, asset="USDC", amount_minor=USDC)
        trade = self.trade()
        self.trades.pop()
        return Trade(
            principal=VENUE,
            trade_id=trade.trade_id,
            buyer=trade.buyer,
            seller=ghost,
            instrument=trade.instrument,
            quantity_lots=trade.quantity_lots,
            price_ticks=trade.price_ticks,
            buyer_fee_rate_ppm=trade.buyer_fee_rate_ppm,
            seller_fee_rate_ppm=trade.seller_fee_rate_ppm,
        )

    def _over_withdrawal(self) -> Event:
        j = self.rng.randrange(len(self.accounts))
        return Withdraw(
            principal=self.owners[j],
            account=self.accounts[j],
            asset="USDC",
            amount_minor=10**10 * USDC,
        )

    def _wrong_principal(self) -> Event:
        j = self.rng.randrange(len(self.accounts))
        other = self.owners[(j + 2) % len(self.owners)]
        if self.rng.random() < 0.5:
            # Only the owner debits an account; the operator cannot either.
            return Withdraw(
                principal=self.rng.choice((other, OPERATOR)),
                account=self.accounts[j],
                asset="USDC",
                amount_minor=USDC,
            )
        return Deposit(principal=other, account=self.accounts[j], asset="USDC", amount_minor=USDC)

    def _foreign_transfer(self) -> Event:
        j = self.rng.randrange(len(self.accounts))
        k = (j + 2) % len(self.accounts)
        return Transfer(
            principal=self.owners[j],
            source_account=self.accounts[j],
            target_account=self.accounts[k],
            asset="USDC",
            amount_minor=USDC,
        )

    def _self_trade(self) -> Event:
        trade = self.trade()
        self.trades.pop()
        return Trade(
            principal=VENUE,
            trade_id=trade.trade_id,
            buyer=trade.buyer,
            seller=trade.buyer,
            instrument=trade.instrument,
            quantity_lots=trade.quantity_lots,
            price_ticks=trade.price_ticks,
            buyer_fee_rate_ppm=trade.buyer_fee_rate_ppm,
            seller_fee_rate_ppm=trade.seller_fee_rate_ppm,
        )

    def _margin_probe(self) -> Event:
        # Withdraw nearly everything the account was funded with: the margin guard should
        # stop it, unless losses and fees already left too little (funds) or it holds no
        # positions (then it is accepted and the account runs dry).
        j = self.rng.randrange(len(self.accounts))
        amount_minor = max(self.funded_minor[j] - self.rng.randint(0, 2_000) * USDC, USDC)
        return Withdraw(
            principal=self.owners[j],
            account=self.accounts[j],
            asset="USDC",
            amount_minor=amount_minor,
        )

    def _dead_instrument(self) -> Event:
        # Trade an expired future once it has expired, else an instrument never listed.
        future = self.specs["BTC-FUT"]
        assert future.expiry_ms is not None
        instrument = "BTC-FUT" if future.expiry_ms <= self.clock_ms else "DOGE-PERP"
        buyer, seller = self.pair()
        return Trade(
            principal=VENUE,
            trade_id=f"X{self.rng.randrange(10**9):09d}",
            buyer=self.accounts[buyer],
            seller=self.accounts[seller],
            instrument=instrument,
            quantity_lots=1,
            price_ticks=self.index["BTC"],
            buyer_fee_rate_ppm=0,
            seller_fee_rate_ppm=0,
        )

    def _stale_price(self, position: int) -> Event:
        underlying = self.rng.choice(("BTC", "ETH"))
        source = self.rng.choice(ORACLES)
        stale_ms = self.oracle_ms[underlying, source] or (
            T0_MS + self.skipped_ms + position * MS_PER_EVENT
        )
        return OraclePrice(
            principal=source,
            underlying=underlying,
            price_ticks=self.index[underlying],
            timestamp_ms=stale_ms,
        )

    def _unauthorised(self) -> Event:
        choice = self.rng.randrange(4)
        if choice == 0:
            return OraclePrice(
                principal=MALLORY, underlying="BTC", price_ticks=1, timestamp_ms=2**62
            )
        if choice == 1:
            trade = self.trade()
            self.trades.pop()
            return Trade(
                principal=MALLORY,
                trade_id=trade.trade_id + "-m",
                buyer=trade.buyer,
                seller=trade.seller,
                instrument=trade.instrument,
                quantity_lots=trade.quantity_lots,
                price_ticks=trade.price_ticks,
                buyer_fee_rate_ppm=0,
                seller_fee_rate_ppm=0,
            )
        if choice == 2:
            return VariationMargin(principal=MALLORY, instrument="BTC-PERP")
        # Options are premium-settled: marking one is refused.
        return VariationMargin(principal=OPERATOR, instrument="BTC-C-100K")

    def _malformed(self) -> Event:
        j = self.rng.randrange(len(self.accounts))
        choice = self.rng.randrange(4)
        if choice == 0:
            return Deposit(
                principal=self.owners[j], account="bad id!", asset="USDC", amount_minor=USDC
            )
        if choice == 1:
            return Deposit(
                principal=self.owners[j], account=self.accounts[j], asset="DOGE", amount_minor=1
            )
        if choice == 2:
            return Withdraw(
                principal=self.owners[j], account=self.accounts[j], asset="USDC", amount_minor=0
            )
        return Deposit(
            principal=self.owners[j],
            account=self.accounts[j],
            asset="USDC",
            amount_minor=True,  # type: ignore[arg-type]  # a bool is not an amount
        )


def setup_events(market: _Market, n_events: int) -> list[Event]:
    """Open and fund every account, list the instruments and price both underlyings."""
    rng = market.rng
    events: list[Event] = [
        OpenAccount(principal=owner, account=account)
        for owner, account in zip(market.owners, market.accounts, strict=True)
    ]
    for j, (owner, account) in enumerate(zip(market.owners, market.accounts, strict=True)):
        amount_minor = rng.randint(500_000, 2_000_000) * USDC
        market.funded_minor[j] = amount_minor
        events.append(
            Deposit(principal=owner, account=account, asset="USDC", amount_minor=amount_minor)
        )
    # The exchange seeds its insurance fund before the market opens.
    amount_minor = rng.randint(200_000, 1_000_000) * USDC
    events.append(FundInsurance(principal=OPERATOR, asset="USDC", amount_minor=amount_minor))
    events += listings(n_events, market.linear_only)
    for underlying in START_INDEX:
        events += market.oracle(len(events), underlying)
    events += [market.implied_volatility(underlying) for underlying in START_INDEX]
    return events


def generate(
    n_events: int, n_accounts: int, seed: int, *, linear_only: bool = False
) -> list[Event]:
    """Return ``n_events`` events over ``n_accounts`` accounts, a pure function of the seed
    (and of ``linear_only``: perpetuals and the future only)."""
    if n_accounts < 2:
        raise ValueError("the workload needs at least two accounts")
    rng = random.Random(seed)
    market = _Market(rng, n_events, n_accounts, linear_only)
    events = setup_events(market, n_events)
    # Marks are rare (each costs O(holders)): every 50k events at full size, more often in
    # short streams so that small runs still exercise them.
    mark_every = max(500, min(50_000, n_events // 20))
    # Levered traders are rarer still at full size; a dozen or so in a short stream.
    levered_every = max(150, min(5_000, n_events // 20))
    next_oracle = len(events) + rng.randint(100, 200)
    next_mark = len(events) + mark_every
    next_levered = len(events) + rng.randint(levered_every, 2 * levered_every)
    quiet = quiet_hours(n_events)
    append = events.append
    while len(events) < n_events:
        position = len(events)
        if quiet and position >= quiet[0]:
            quiet.pop(0)
            events.extend(market.quiet_hour(position))
            next_oracle = len(events) + rng.randint(100, 200)
            continue
        if position >= next_oracle:
            for underlying in START_INDEX:
                events.extend(market.oracle(len(events), underlying))
                append(market.implied_volatility(underlying))
            events.extend(market.after_oracle())
            # Every 25 to 50 s of event time: well inside the 60 s staleness limit.
            next_oracle = position + rng.randint(100, 200)
            continue
        if position >= next_levered:
            events.extend(market.levered_trader(position))
            next_levered = position + rng.randint(levered_every, 2 * levered_every)
            continue
        if position >= next_mark:
            for instrument in PERPETUALS:
                append(VariationMargin(principal=OPERATOR, instrument=instrument))
            next_mark = position + mark_every
            continue
        draw = rng.random()
        if draw < 0.75:
            append(market.trade())
        elif draw < 0.82:
            append(market.deposit())
        elif draw < 0.88:
            append(market.withdraw())
        elif draw < 0.95:
            append(market.transfer())
        else:
            append(market.adversarial(position))
    return events[:n_events]
