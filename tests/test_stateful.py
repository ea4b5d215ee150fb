"""Adversarial stateful fuzzing of the kernel (Hypothesis RuleBasedStateMachine).

Actors: three owners with sub-accounts, a thief (mallory) who owns nothing, the operator,
three price sources (two honest, one that misbehaves) and two venues. Rules generate honest
events and attacks: replays of settled trades with the same and with changed payloads,
withdrawals sized to breach margin, self-trades, unknown instruments and accounts,
unauthorised principals, oracle manipulation (single-source spikes and halts, stale replays,
timestamps going backwards or far ahead, quiet periods that leave a price stale, 40 % gaps,
a lying source of two live ones), the sequencer's ticks (and forged ones),
traders racing a price update, a crowded one-sided opening book, crashes and liquidators
(some targeting healthy accounts), funding, expiry, a governor admitting, suspending and
removing a venue (and outsiders trying to), a governor proposing, cancelling and applying
a rule change that doubles BTC's maintenance (with notices too short, broken rules, and a
thief and keepers trying), liquidators racing the accounts in its grace, owners granting,
restricting and revoking venues,
owners registering, cancelling and re-registering standing top-ups (and thieves and
cross-owner registrations refused), anyone running them, liquidators racing them and the
mark executing them,
a rogue venue trading on accounts that never chose it, wrong-typed fields, and integers
biased to 0, 1, the bounds and the bounds +- 1.

After every step: every state invariant holds (``check_invariants``: INV-CONSERVATION,
INV-NONNEGATIVE-BALANCES, INV-CANONICAL-FORM, INV-OPEN-INTEREST-ZERO-SUM,
INV-UNIFORM-REFERENCE, INV-NO-DOUBLE-SETTLEMENT, INV-ROUNDING-RESIDUE, INV-ROOT-CONSISTENT,
INV-MARGIN-CACHE-CONSISTENT);
every accepted step passes ``check_step`` (INV-POSTINGS-BALANCED, INV-MARGIN-AFTER-ACCEPT,
INV-NO-DOUBLE-SETTLEMENT, INV-ROUNDING-RESIDUE, INV-ORACLE-ADMISSIBLE, INV-PRICE-FRESH and
the waterfall's invariants); every step,
accepted or rejected, leaves the state it was given bit-for-bit unchanged, root and content
(INV-ATOMIC-REJECT). At teardown the whole event log is replayed from genesis and must give
the same outcomes and roots (INV-DETERMINISM).
"""

from __future__ import annotations

import attrs
from hypothesis import event as coverage_label
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import settlekernel as sk
from scenario import USDC, snapshot
from settlekernel.core.root import state_root
from settlekernel.core.rules_toml import dump_rules_toml
from strategies import (
    bad_identifiers,
    edge_ints,
    hostile_values,
    non_string_values,
    signed_edge_ints,
)

# Three price sources, a quorum of two (the default); "oracle-c" is the one that misbehaves.
SOURCES = ("oracle-a", "oracle-b", "oracle-c")
# Tight limits so that the limit reasons are reachable in a few steps (four owners' accounts
# and the admitted venue's fee account fill accounts_max); a second house venue so that a
# replay by another matcher is possible.
RULES = attrs.evolve(
    sk.RuleSet.default(),
    roles=sk.Roles(operator="operator", oracles=SOURCES, matchers=("venue", "venue-2")),
    accounts_max=5,
    instruments_max=5,
    positions_per_account_max=3,
    position_lots_max=25_000,
    # A rule change's notice and grace short enough to pass within a run (SK-GOV-3, SK-GOV-5).
    rules_notice_ms=5_000,
    rules_grace_ms=5_000,
)
# The rule change the governor proposes: BTC's scan range doubled, so maintenance doubles
# and the change alone pushes accounts below it (they get a grace).
_BTC = attrs.evolve(RULES.underlying_by_symbol["BTC"], scan_range_ppm=160_000)
TIGHT_RULES = attrs.evolve(
    RULES, underlyings=tuple(_BTC if u.symbol == "BTC" else u for u in RULES.underlyings)
)
RULE_TEXTS = {
    "tight": dump_rules_toml(TIGHT_RULES),
    "back": dump_rules_toml(RULES),
    "broken": "fee_rate_max_ppm = 1.5",
}
OWNERS = ("alice", "bob", "carol")
ACCOUNTS = ("alice-1", "alice-2", "bob-1", "carol-1", "ghost-1")
PRINCIPALS = (*OWNERS, "mallory", "operator", *SOURCES, "venue", "venue-2", "sequencer")
ASSETS = ("USDC", "BTC", "DOGE")
UNDERLYINGS = ("BTC", "ETH", "DOGE")
K = sk.InstrumentKind
CATALOG = {
    "BTC-PERP": dict(kind=K.PERPETUAL, underlying="BTC", multiplier_minor=10),
    "ETH-PERP": dict(kind=K.PERPETUAL, underlying="ETH", multiplier_minor=100),
    "BTC-FUT": dict(kind=K.FUTURE, underlying="BTC", multiplier_minor=10, expiry_ms=50_000),
    "BTC-C": dict(
        kind=K.OPTION,
        underlying="BTC",
        multiplier_minor=10,
        expiry_ms=80_000,
        strike_ticks=9_500_000,
        option_type=sk.OptionType.CALL,
    ),
    "ETH-P": dict(
        kind=K.OPTION,
        underlying="ETH",
        multiplier_minor=100,
        expiry_ms=80_000,
        strike_ticks=280_000,
        option_type=sk.OptionType.PUT,
    ),
}
INSTRUMENTS = (*CATALOG, "NOPE")
_REASON_SUFFIX = {
    "buyer": "buyer",
    "seller": "seller",
    "instrument": "instrument",
    "quantity_lots": "quantity",
    "price_ticks": "price",
    "buyer_fee_rate_ppm": "buyer_fee_rate",
    "seller_fee_rate_ppm": "seller_fee_rate",
}
BASE_PRICE = {"BTC": 9_000_000, "ETH": 300_000, "DOGE": 10}

amounts = st.one_of(edge_ints(-2, 2**97), st.integers(1, 10**6).map(lambda k: k * USDC))
lots = st.one_of(st.integers(1, 3_000), edge_ints(-1, 2**64))
fee_rates = st.one_of(st.integers(0, 1_000), edge_ints(-1, 1_000_001))


class KernelMachine(RuleBasedStateMachine):
    """Drives the kernel with honest and adversarial events, checking everything each step."""

    def __init__(self) -> None:
        super().__init__()
        self.state = sk.genesis(RULES)
        self.log: list[object] = []
        self.outcomes: list[str] = []
        self.settled: list[sk.Trade] = []
        # Each source's last accepted report time per underlying.
        self.clock = {(u, source): 0 for u in UNDERLYINGS for source in SOURCES}
        self.trade_number = 0

    # The one place events enter: every check the kernel promises, on every step.
    def submit(self, event: object) -> sk.Outcome:
        # Every other step starts from a folded state, so a transition that forgets to mark
        # a leaf dirty shows up as INV-ROOT-CONSISTENT at once instead of hiding behind a
        # key that is still dirty from an earlier step.
        before = sk.fold(self.state) if len(self.log) % 2 else self.state
        assert state_root(before) == state_root(self.state), "fold changed the root"
        root_before, picture_before = state_root(before), snapshot(before)
        outcome = sk.step(before, event)
        assert state_root(before) == root_before, "INV-ATOMIC-REJECT: root of input changed"
        assert snapshot(before) == picture_before, "step mutated the state it was given"
        self.log.append(event)
        if isinstance(outcome, sk.Accepted):
            violations = sk.check_step(before, event, outcome)
            assert violations == [], violations
            self.state = outcome.state
            self.outcomes.append("ok:" + state_root(self.state).hex())
            if isinstance(event, sk.Trade):
                self.settled.append(event)
        else:
            assert isinstance(outcome.reason, sk.Reason)
            assert outcome.message
            self.outcomes.append(outcome.reason.value)
        note(f"{event!r} -> {self.outcomes[-1][:24]}")
        # Coverage labels, shown by --hypothesis-show-statistics.
        label = "accepted" if isinstance(outcome, sk.Accepted) else outcome.reason.value
        coverage_label(f"{type(event).__name__}: {label}")
        return outcome

    @initialize(priced=st.booleans(), crowded=st.booleans())
    def open_market(self, priced: bool, crowded: bool) -> None:
        """Runs start with funded accounts and listed instruments, most with prices.

        A crowded start adds a levered one-sided book (longs at about 7x, the shorts
        spread), so that a gap can set off a cascade of liquidations and deleveraging.
        """
        for account in ACCOUNTS[:-1]:
            self.submit(sk.OpenAccount(principal=account.split("-")[0], account=account))
            self.submit(
                sk.Deposit(
                    principal="operator", account=account, asset="USDC", amount_minor=200_000 * USDC
                )
            )
        # The admitted venue's own account, for its fees (SK-VENUE-1).
        self.submit(sk.OpenAccount(principal="dex", account="dex-fees"))
        for instrument_id, spec in CATALOG.items():
            self.submit(
                sk.ListInstrument(
                    principal="operator", instrument=instrument_id, settlement_asset="USDC", **spec
                )
            )
        for underlying in ("BTC", "ETH") if priced else ():
            self.advance_price(underlying, BASE_PRICE[underlying])
            self.submit(
                sk.OracleVolatility(
                    principal="oracle-a",
                    underlying=underlying,
                    volatility_ppm=600_000,
                    timestamp_ms=self.clock[underlying, "oracle-a"],
                )
            )
        if priced and crowded:
            for number, (buyer, seller, lots) in enumerate(
                (
                    ("alice-1", "bob-1", 15_000),
                    ("carol-1", "alice-2", 12_000),
                    ("alice-1", "alice-2", 3_000),
                )
            ):
                self.submit(
                    sk.Trade(
                        principal="venue",
                        trade_id=f"C{number}",
                        buyer=buyer,
                        seller=seller,
                        instrument="BTC-PERP",
                        quantity_lots=lots,
                        price_ticks=BASE_PRICE["BTC"],
                        buyer_fee_rate_ppm=0,
                        seller_fee_rate_ppm=0,
                    )
                )

    def report(self, source: str, underlying: str, ticks: int, step_ms: int) -> sk.Outcome:
        """One source reports, ``step_ms`` after the latest report of any source."""
        at_ms = max(self.clock[underlying, s] for s in SOURCES) + step_ms
        outcome = self.submit(
            sk.OraclePrice(
                principal=source, underlying=underlying, price_ticks=ticks, timestamp_ms=at_ms
            )
        )
        if isinstance(outcome, sk.Accepted):
            self.clock[underlying, source] = at_ms
        return outcome

    def advance_price(self, underlying: str, ticks: int, step_ms: int = 1_000) -> None:
        """An honest quorum: two sources report the same price at the same time."""
        at_ms = max(self.clock[underlying, s] for s in SOURCES) + step_ms
        for source in SOURCES[:2]:
            self.clock[underlying, source] = at_ms - step_ms
            self.report(source, underlying, ticks, step_ms)

    @rule(principal=st.sampled_from(PRINCIPALS), account=st.sampled_from(ACCOUNTS))
    def open_account(self, principal: str, account: str) -> None:
        self.submit(sk.OpenAccount(principal=principal, account=account))

    @rule(
        principal=st.sampled_from(PRINCIPALS),
        account=st.sampled_from(ACCOUNTS),
        asset=st.sampled_from(ASSETS),
        amount=amounts,
    )
    def deposit(self, principal: str, account: str, asset: str, amount: int) -> None:
        self.submit(
            sk.Deposit(principal=principal, account=account, asset=asset, amount_minor=amount)
        )

    @rule(
        principal=st.sampled_from(PRINCIPALS),
        account=st.sampled_from(ACCOUNTS),
        asset=st.sampled_from(ASSETS),
        amount=amounts,
        drain=st.booleans(),
    )
    def withdraw(self, principal: str, account: str, asset: str, amount: int, drain: bool) -> None:
        # A draining withdrawal asks for the whole balance: the margin dodger's move.
        held = self.state.accounts.get(account)
        if drain and held is not None and held.balance(asset) > 0:
            amount = held.balance(asset)
        self.submit(
            sk.Withdraw(principal=principal, account=account, asset=asset, amount_minor=amount)
        )

    @rule(
        principal=st.sampled_from(PRINCIPALS),
        source=st.sampled_from(ACCOUNTS),
        destination=st.sampled_from(ACCOUNTS),
        asset=st.sampled_from(ASSETS),
        amount=amounts,
    )
    def transfer(
        self, principal: str, source: str, destination: str, asset: str, amount: int
    ) -> None:
        self.submit(
            sk.Transfer(
                principal=principal,
                source_account=source,
                target_account=destination,
                asset=asset,
                amount_minor=amount,
            )
        )

    @rule(
        instrument=st.sampled_from(INSTRUMENTS),
        principal=st.sampled_from(PRINCIPALS),
        multiplier=edge_ints(-1, 10**13),
        strike=st.one_of(st.none(), edge_ints(-1, 10**16)),
    )
    def list_instrument(
        self, instrument: str, principal: str, multiplier: int, strike: int | None
    ) -> None:
        spec = dict(CATALOG.get(instrument, CATALOG["BTC-PERP"]))
        spec["multiplier_minor"] = multiplier
        if strike is not None:
            spec["strike_ticks"] = strike
        self.submit(
            sk.ListInstrument(
                principal=principal, instrument=instrument, settlement_asset="USDC", **spec
            )
        )

    @rule(
        underlying=st.sampled_from(UNDERLYINGS),
        move_ppm=st.integers(-150_000, 150_000),
        who=st.sampled_from(("quorum", "quorum", "quorum", "oracle-c", "mallory")),
    )
    def move_price(self, underlying: str, move_ppm: int, who: str) -> None:
        """An honest move by a quorum, or one source's (or a thief's) report."""
        current = self.state.prices.get(underlying)
        base = current.price_ticks if current else BASE_PRICE[underlying]
        ticks = max(1, base + base * move_ppm // 1_000_000)
        if who == "quorum":
            self.advance_price(underlying, ticks)
        else:
            self.report(who, underlying, ticks, 1_000)

    @rule(
        underlying=st.sampled_from(("BTC", "ETH")),
        factor=st.sampled_from((0, 1, 10, 100)),
        source=st.sampled_from(SOURCES),
    )
    def single_source_spike(self, underlying: str, factor: int, source: str) -> None:
        """One source prints a crash, a 10x or 100x spike, or a halt (0): the manipulator.

        The index may only move within the range of the other sources' reports and the
        last index (SK-ORACLE-2): one source of three cannot move it anywhere else.
        """
        old = self.state.prices.get(underlying)
        base = old.price_ticks if old else BASE_PRICE[underlying]
        ticks = 1 if factor == 1 else base * factor
        outcome = self.report(source, underlying, ticks, 500)
        new = self.state.prices.get(underlying)
        if isinstance(outcome, sk.Accepted) and old is not None and new != old:
            others = [
                r.price_ticks for s, r in self.state.reports[underlying].items() if s != source
            ]
            bounds = [old.price_ticks, *others]
            assert min(bounds) <= new.price_ticks <= max(bounds), (old, new, others)

    @rule(underlying=st.sampled_from(("BTC", "ETH")), source=st.sampled_from(SOURCES))
    def stale_replay(self, underlying: str, source: str) -> None:
        """A source's last report sent again, and once more a millisecond older."""
        last = self.state.reports.get(underlying, {}).get(source)
        if last is None:
            return
        for at_ms in (last.timestamp_ms, last.timestamp_ms - 1):
            outcome = self.submit(
                sk.OraclePrice(
                    principal=source,
                    underlying=underlying,
                    price_ticks=last.price_ticks,
                    timestamp_ms=at_ms,
                )
            )
            assert isinstance(outcome, sk.Rejected)

    @rule(underlying=st.sampled_from(("BTC", "ETH")))
    def quiet_period(self, underlying: str) -> None:
        """Time passes on one underlying only: the other's reports go stale."""
        current = self.state.prices.get(underlying)
        base = current.price_ticks if current else BASE_PRICE[underlying]
        self.advance_price(underlying, base, step_ms=61_000)

    @rule(
        advance_ms=st.sampled_from((-1, 0, 1, 1_000, 30_000, 61_000)),
        principal=st.sampled_from(("sequencer", "sequencer", "mallory", "operator")),
    )
    def sequencer_tick(self, advance_ms: int, principal: str) -> None:
        """The sequencer's heartbeat (or a forged one): time moves whether sources report."""
        self.submit(sk.Tick(principal=principal, timestamp_ms=self.state.clock_ms + advance_ms))

    @rule(
        underlying=st.sampled_from(("BTC", "ETH")),
        move_ppm=st.sampled_from((-200_000, -60_000, 60_000, 200_000)),
        liar=st.sampled_from(SOURCES[:2]),
    )
    def lying_pair(self, underlying: str, move_ppm: int, liar: str) -> None:
        """Two live sources disagree: one follows the market, the other repeats the old price."""
        current = self.state.prices.get(underlying)
        base = current.price_ticks if current else BASE_PRICE[underlying]
        honest = next(source for source in SOURCES[:2] if source != liar)
        self.report(honest, underlying, max(base + base * move_ppm // 1_000_000, 1), 1_000)
        self.report(liar, underlying, base, 0)

    @rule(
        underlying=st.sampled_from(UNDERLYINGS),
        vol=st.one_of(st.integers(50_000, 2_000_000), edge_ints(-1, 10**7 + 1)),
        principal=st.sampled_from(("oracle-a", "oracle-b", "mallory")),
        later=st.booleans(),
    )
    def report_volatility(self, underlying: str, vol: int, principal: str, later: bool) -> None:
        """Volatility reports, some from a thief, some stale, some out of range."""
        current = self.state.volatilities.get(underlying)
        at = (current.timestamp_ms if current else 0) + (1_000 if later else 0)
        self.submit(
            sk.OracleVolatility(
                principal=principal, underlying=underlying, volatility_ppm=vol, timestamp_ms=at
            )
        )

    @rule(underlying=st.sampled_from(("BTC", "ETH")), up=st.booleans())
    def price_gap(self, underlying: str, up: bool) -> None:
        """A 40 % gap: losers may no longer be able to pay their variation margin."""
        current = self.state.prices.get(underlying)
        base = current.price_ticks if current else BASE_PRICE[underlying]
        self.advance_price(underlying, base * 14 // 10 if up else base * 6 // 10)

    @rule(
        underlying=st.sampled_from(UNDERLYINGS),
        ticks=edge_ints(-1, 10**16),
        timestamp=signed_edge_ints(),
    )
    def hostile_price(self, underlying: str, ticks: int, timestamp: int) -> None:
        """Stale replays, time travel and absurd prices from a real source's key."""
        outcome = self.submit(
            sk.OraclePrice(
                principal="oracle-c",
                underlying=underlying,
                price_ticks=ticks,
                timestamp_ms=timestamp,
            )
        )
        if isinstance(outcome, sk.Accepted):
            self.clock[underlying, "oracle-c"] = timestamp

    def submit_trade(
        self,
        principal: str,
        buyer: str,
        seller: str,
        instrument: str,
        quantity: int,
        offset_ppm: int,
        fees: tuple[int, int],
    ) -> None:
        spec = CATALOG.get(instrument, CATALOG["BTC-PERP"])
        index = self.state.prices.get(str(spec["underlying"]))
        base = index.price_ticks if index else BASE_PRICE[str(spec["underlying"])]
        if spec["kind"] is K.OPTION:
            base = max(1, base // 20)  # A premium, roughly 5 % of the index.
        ticks = max(1, base + base * offset_ppm // 1_000_000)
        self.trade_number += 1
        self.submit(
            sk.Trade(
                principal=principal,
                trade_id=f"T{self.trade_number}",
                buyer=buyer,
                seller=seller,
                instrument=instrument,
                quantity_lots=quantity,
                price_ticks=ticks,
                buyer_fee_rate_ppm=fees[0],
                seller_fee_rate_ppm=fees[1],
            )
        )

    @rule(
        buyer=st.sampled_from(ACCOUNTS[:-1]),
        seller=st.sampled_from(ACCOUNTS[:-1]),
        instrument=st.sampled_from(tuple(CATALOG)),
        quantity=st.integers(1, 20_000),
        offset_ppm=st.integers(-30_000, 30_000),
        fees=st.tuples(st.integers(0, 1_000), st.integers(0, 1_000)),
    )
    def honest_trade(
        self,
        buyer: str,
        seller: str,
        instrument: str,
        quantity: int,
        offset_ppm: int,
        fees: tuple[int, int],
    ) -> None:
        """A venue trade near the index; large sizes run into margin, some into funds."""
        self.submit_trade("venue", buyer, seller, instrument, quantity, offset_ppm, fees)

    @rule(
        buyer=st.sampled_from(ACCOUNTS),
        seller=st.sampled_from(ACCOUNTS),
        instrument=st.sampled_from(INSTRUMENTS),
        quantity=lots,
        offset_ppm=st.integers(-30_000, 30_000),
        fees=st.tuples(fee_rates, fee_rates),
        principal=st.sampled_from(("venue", "venue-2", "mallory", "alice")),
    )
    def hostile_trade(
        self,
        buyer: str,
        seller: str,
        instrument: str,
        quantity: int,
        offset_ppm: int,
        fees: tuple[int, int],
        principal: str,
    ) -> None:
        """Self-trades, unknown names, edge quantities and fee rates, unauthorised venues."""
        self.submit_trade(principal, buyer, seller, instrument, quantity, offset_ppm, fees)

    @rule(instrument=st.sampled_from(("BTC-PERP", "ETH-PERP", "BTC-FUT")))
    def honest_mark(self, instrument: str) -> None:
        self.submit(sk.VariationMargin(principal="operator", instrument=instrument))

    @rule(
        instrument=st.sampled_from(("BTC-PERP", "ETH-PERP", "BTC-FUT", "NOPE")),
        principal=st.sampled_from(("operator", "operator", "mallory")),
        wait=st.booleans(),
    )
    def charge_funding(self, instrument: str, principal: str, wait: bool) -> None:
        """Funding, sometimes after an hour of quorum prices on both underlyings."""
        if wait:
            for underlying in ("BTC", "ETH"):
                current = self.state.prices.get(underlying)
                base = current.price_ticks if current else BASE_PRICE[underlying]
                self.advance_price(underlying, base, step_ms=3_600_000)
        self.submit(sk.Funding(principal=principal, instrument=instrument))

    @rule(
        instrument=st.sampled_from(("BTC-FUT", "BTC-C", "ETH-P", "BTC-PERP", "NOPE")),
        principal=st.sampled_from(("operator", "operator", "mallory")),
    )
    def expire(self, instrument: str, principal: str) -> None:
        """Expiry, early or late, of futures, options and (refused) perpetuals."""
        self.submit(sk.Expire(principal=principal, instrument=instrument))

    @rule(
        account=st.sampled_from(ACCOUNTS),
        liquidator=st.sampled_from(ACCOUNTS),
        honest=st.booleans(),
    )
    def liquidate(self, account: str, liquidator: str, honest: bool) -> None:
        """Liquidators, some targeting healthy accounts, some not owning their account."""
        held = self.state.accounts.get(liquidator)
        principal = held.owner if honest and held is not None else "mallory"
        outcome = self.submit(
            sk.Liquidate(principal=principal, account=account, liquidator=liquidator)
        )
        if isinstance(outcome, sk.Accepted):
            coverage_label(
                "Liquidate: " + ",".join(sorted({p.code.value for p in outcome.postings}))
            )

    @rule(underlying=st.sampled_from(("BTC", "ETH")), move_ppm=st.sampled_from((-250_000, 250_000)))
    def crash(self, underlying: str, move_ppm: int) -> None:
        """A 25 % move followed by the quorum over several rounds: the cascade's trigger."""
        current = self.state.prices.get(underlying)
        base = current.price_ticks if current else BASE_PRICE[underlying]
        for _ in range(6):
            self.advance_price(underlying, base + base * move_ppm // 1_000_000, step_ms=500)

    @rule(
        buyer=st.sampled_from(ACCOUNTS[:-1]),
        seller=st.sampled_from(ACCOUNTS[:-1]),
        move_ppm=st.sampled_from((-80_000, -30_000, 30_000, 80_000)),
        lots=st.integers(1, 5_000),
    )
    def race_a_price_update(self, buyer: str, seller: str, move_ppm: int, lots: int) -> None:
        """Traders race a moving price: one source has reported the move, the quorum not yet.

        They trade at the old price between the two reports, then again after the quorum
        moves the index (band-limited if the move is large, when no trade is admitted).
        """
        current = self.state.prices.get("BTC")
        base = current.price_ticks if current else BASE_PRICE["BTC"]
        moved = base + base * move_ppm // 1_000_000
        first = self.report("oracle-a", "BTC", moved, 1_000)
        self.submit_trade("venue", buyer, seller, "BTC-PERP", lots, 0, (0, 0))
        # oracle-b reports the same time as oracle-a, completing the quorum.
        self.report("oracle-b", "BTC", moved, 0 if isinstance(first, sk.Accepted) else 1_000)
        self.submit_trade("venue", seller, buyer, "BTC-PERP", lots, 0, (0, 0))

    @rule(data=st.data())
    def liquidate_the_weakest(self, data: st.DataObject) -> None:
        """A liquidator goes for the account furthest below maintenance, if there is one."""
        weakest = [
            account_id
            for account_id in ACCOUNTS[:-1]
            if account_id in self.state.accounts and sk.is_liquidatable(self.state, account_id)
        ]
        if not weakest:
            return
        account = data.draw(st.sampled_from(weakest))
        liquidator = data.draw(st.sampled_from([a for a in ACCOUNTS[:-1] if a != account]))
        held = self.state.accounts.get(liquidator)
        if held is None:
            return
        outcome = self.submit(
            sk.Liquidate(principal=held.owner, account=account, liquidator=liquidator)
        )
        if isinstance(outcome, sk.Accepted):
            coverage_label(
                "Liquidate: " + ",".join(sorted({p.code.value for p in outcome.postings}))
            )

    @rule(account=st.sampled_from(ACCOUNTS), principal=st.sampled_from(("carol", "mallory")))
    def backstop(self, account: str, principal: str) -> None:
        """Anyone backstops any account: healthy ones are refused (SK-LIQ-6)."""
        outcome = self.submit(sk.Backstop(principal=principal, account=account))
        if isinstance(outcome, sk.Accepted):
            coverage_label(
                "Backstop: " + ",".join(sorted({p.code.value for p in outcome.postings}))
            )

    @rule(
        pair=st.sampled_from(
            (
                ("alice-1", "alice-2"),
                ("alice-2", "alice-1"),
                ("bob-1", "alice-1"),
                ("alice-1", "alice-1"),
                ("ghost-1", "alice-2"),
            )
        ),
        threshold_ppm=st.sampled_from((1_000_000, 1_200_000, 2_000_000, 999_999)),
        cap=st.sampled_from((1, 1_000 * USDC, 100_000 * USDC)),
        interval_ms=st.sampled_from((1, 5_000, 3_600_000)),
        honest=st.booleans(),
    )
    def register_top_up(
        self, pair: tuple[str, str], threshold_ppm: int, cap: int, interval_ms: int, honest: bool
    ) -> None:
        """Owners register and re-register top-ups; thieves and cross-owner ones are refused."""
        account, source = pair
        held = self.state.accounts.get(account)
        principal = held.owner if honest and held is not None else "mallory"
        self.submit(
            sk.RegisterTopUp(
                principal=principal,
                account=account,
                source=source,
                asset="USDC",
                threshold_ppm=threshold_ppm,
                amount_max_minor=cap,
                interval_ms=interval_ms,
            )
        )

    @rule(account=st.sampled_from(ACCOUNTS), honest=st.booleans())
    def cancel_instruction(self, account: str, honest: bool) -> None:
        held = self.state.accounts.get(account)
        principal = held.owner if honest and held is not None else "mallory"
        self.submit(sk.CancelInstruction(principal=principal, account=account))

    @rule(account=st.sampled_from(ACCOUNTS), principal=st.sampled_from(("carol", "mallory")))
    def run_instructions(self, account: str, principal: str) -> None:
        """Anyone runs an account's top-up: a healthy account's is nothing_to_top_up."""
        outcome = self.submit(sk.RunInstructions(principal=principal, account=account))
        if isinstance(outcome, sk.Accepted):
            coverage_label("RunInstructions: moved")

    @rule(
        lots=st.integers(12_000, 24_000),
        cap=st.sampled_from((1_000 * USDC, 50_000 * USDC, 500_000 * USDC)),
        drop_ppm=st.sampled_from((-60_000, -80_000, -120_000)),
        then=st.sampled_from(("mark", "run", "liquidate")),
    )
    def levered_owner_with_a_reserve(self, lots: int, cap: int, drop_ppm: int, then: str) -> None:
        """alice-1 levers up against carol-1 with a top-up from alice-2, then BTC falls.

        Then the mark executes the top-up, anyone runs it, or a liquidator races it.
        """
        self.submit_trade("venue", "alice-1", "carol-1", "BTC-PERP", lots, 0, (0, 0))
        self.submit(
            sk.RegisterTopUp(
                principal="alice",
                account="alice-1",
                source="alice-2",
                asset="USDC",
                threshold_ppm=1_200_000,
                amount_max_minor=cap,
                interval_ms=3_600_000,
            )
        )
        current = self.state.prices.get("BTC")
        base = current.price_ticks if current else BASE_PRICE["BTC"]
        for _ in range(3):
            self.advance_price("BTC", base + base * drop_ppm // 1_000_000, step_ms=500)
        if then == "mark":
            outcome = self.submit(sk.VariationMargin(principal="operator", instrument="BTC-PERP"))
            if isinstance(outcome, sk.Accepted) and any(
                p.code is sk.PostingCode.TOP_UP for p in outcome.postings
            ):
                coverage_label("VariationMargin: executed a top-up")
        elif then == "run":
            self.run_instructions("alice-1", "carol")
        else:
            self.race_the_top_up("alice-1", "bob-1", run_first=False)

    @rule(
        account=st.sampled_from(("alice-1", "alice-2")),
        liquidator=st.sampled_from(("bob-1", "carol-1")),
        run_first=st.booleans(),
    )
    def race_the_top_up(self, account: str, liquidator: str, run_first: bool) -> None:
        """A liquidator races the owner's top-up: liquidating first is refused if it restores."""
        held = self.state.accounts.get(liquidator)
        if held is None:
            return
        liquidate = sk.Liquidate(principal=held.owner, account=account, liquidator=liquidator)
        run = sk.RunInstructions(principal=held.owner, account=account)
        for event in (run, liquidate) if run_first else (liquidate, run, liquidate):
            outcome = self.submit(event)
            if isinstance(event, sk.Liquidate) and isinstance(outcome, sk.Rejected):
                coverage_label(f"race: Liquidate {outcome.reason.value}")

    @rule(
        text=st.sampled_from(tuple(RULE_TEXTS)),
        proposal=st.sampled_from(("p1", "p1", "p2")),
        notice=st.sampled_from((0, 4_999, 5_000, 5_000, 20_000)),
        principal=st.sampled_from(("governor", "governor", "governor", "mallory")),
    )
    def propose_rules(self, text: str, proposal: str, notice: int, principal: str) -> None:
        """The governor proposes tighter rules (or the old ones back, or broken ones) with a
        notice that may be too short; a thief tries too."""
        self.submit(
            sk.ChangeRules(
                principal=principal,
                proposal=proposal,
                rules_toml=RULE_TEXTS[text],
                effective_ms=self.state.clock_ms + notice,
            )
        )

    @rule(
        proposal=st.sampled_from(("p1", "p2")),
        principal=st.sampled_from(("governor", "mallory")),
    )
    def cancel_rules(self, proposal: str, principal: str) -> None:
        """The governor withdraws a proposal; a thief tries to."""
        self.submit(sk.CancelRulesChange(principal=principal, proposal=proposal))

    @rule(
        proposal=st.sampled_from(("pending", "pending", "pending", "p2")),
        principal=st.sampled_from(("carol", "mallory", "operator")),
        wait=st.sampled_from((True, True, False)),
    )
    def apply_rules(self, proposal: str, principal: str, wait: bool) -> None:
        """Anyone applies the pending change, early or (after the sequencer's tick to its
        effective time) on time; then liquidators race for the accounts it pushed under."""
        pending = self.state.proposal
        if wait and pending is not None and pending.effective_ms > self.state.clock_ms:
            self.submit(sk.Tick(principal="sequencer", timestamp_ms=pending.effective_ms))
        if proposal == "pending":
            proposal = "p1" if pending is None else pending.id
        outcome = self.submit(sk.ApplyRules(principal=principal, proposal=proposal))
        grace = self.state.grace
        if isinstance(outcome, sk.Accepted) and grace is not None:
            for account in sorted(grace.accounts):
                self.submit(sk.Liquidate(principal="carol", account=account, liquidator="carol-1"))
                self.submit(sk.Backstop(principal="mallory", account=account))

    @rule(
        action=st.sampled_from(("admit", "admit", "tight", "suspend", "resume", "remove")),
        venue=st.sampled_from(("dex", "dex", "venue", "nope")),
        principal=st.sampled_from(("governor", "governor", "governor", "mallory", "operator")),
    )
    def governance(self, action: str, venue: str, principal: str) -> None:
        """The governor admits, limits, suspends and removes venues; others try to."""
        if action in {"admit", "tight"}:
            tight = action == "tight"
            event: object = sk.AdmitVenue(
                principal=principal,
                venue=venue,
                fee_account="dex-fees",
                open_interest_max_lots=200 if tight else 100_000,
                notional_max_minor=(50_000 if tight else 10**9) * USDC,
                fee_rate_max_ppm=300 if tight else 1_000,
            )
        else:
            kind = {"suspend": sk.SuspendVenue, "resume": sk.ResumeVenue, "remove": sk.RemoveVenue}
            event = kind[action](principal=principal, venue=venue)
        self.submit(event)

    @rule(
        kind=st.sampled_from(
            (sk.AuthorizeVenue, sk.AuthorizeVenue, sk.RestrictVenue, sk.RevokeVenue)
        ),
        account=st.sampled_from(ACCOUNTS),
        venue=st.sampled_from(("dex", "dex", "venue", "venue-2", "nope")),
        honest=st.booleans(),
    )
    def grant(self, kind: type, account: str, venue: str, honest: bool) -> None:
        """Owners grant, restrict and revoke venues on their accounts; mallory tries to."""
        principal = account.split("-", maxsplit=1)[0] if honest else "mallory"
        self.submit(kind(principal=principal, account=account, venue=venue))

    @rule(
        buyer=st.sampled_from(ACCOUNTS[:-1]),
        seller=st.sampled_from(ACCOUNTS[:-1]),
        instrument=st.sampled_from(tuple(CATALOG)),
        quantity=st.integers(1, 20_000),
        offset_ppm=st.integers(-30_000, 30_000),
        fees=st.tuples(fee_rates, fee_rates),
    )
    def rogue_venue_trade(
        self,
        buyer: str,
        seller: str,
        instrument: str,
        quantity: int,
        offset_ppm: int,
        fees: tuple[int, int],
    ) -> None:
        """The admitted venue books trades on any accounts, granted or not, at any fee."""
        self.submit_trade("dex", buyer, seller, instrument, quantity, offset_ppm, fees)

    @rule(amount=amounts, principal=st.sampled_from(("operator", "operator", "mallory")))
    def fund_insurance(self, amount: int, principal: str) -> None:
        """The operator seeds the insurance fund (a thief cannot)."""
        self.submit(sk.FundInsurance(principal=principal, asset="USDC", amount_minor=amount))

    @rule(account=st.sampled_from(ACCOUNTS[:-1]), share_ppm=st.integers(1, 1_000_000))
    def honest_withdraw(self, account: str, share_ppm: int) -> None:
        """The owner withdraws a share of its USDC; margin decides."""
        held = self.state.accounts[account].balance("USDC")
        amount = max(1, held * share_ppm // 1_000_000)
        self.submit(
            sk.Withdraw(
                principal=account.split("-", maxsplit=1)[0],
                account=account,
                asset="USDC",
                amount_minor=amount,
            )
        )

    @rule(data=st.data())
    def replay_settled_trade(self, data: st.DataObject) -> None:
        """The venue retries a settled trade, as is or with one field changed."""
        if not self.settled:
            return
        settled = data.draw(st.sampled_from(self.settled))
        field = data.draw(
            st.sampled_from(
                [
                    None,
                    "venue-2",
                    "principal",
                    "buyer",
                    "seller",
                    "instrument",
                    "quantity_lots",
                    "price_ticks",
                    "buyer_fee_rate_ppm",
                    "seller_fee_rate_ppm",
                ]
            )
        )
        replay = settled
        if field == "venue-2":
            replay = attrs.evolve(
                settled, principal="venue" if settled.principal != "venue" else "venue-2"
            )
        elif field is not None:
            current = getattr(settled, field)
            changed = current + 1 if isinstance(current, int) else current + "x"
            replay = attrs.evolve(settled, **{field: changed})
        outcome = self.submit(replay)
        assert isinstance(outcome, sk.Rejected), "INV-NO-DOUBLE-SETTLEMENT: replay accepted"
        if field == "venue-2":
            assert outcome.reason is sk.Reason.TRADE_EXISTS_WITH_DIFFERENT_PRINCIPAL, outcome
        elif field == "principal":
            # Roles are checked before idempotency: only a matcher learns a trade exists.
            assert outcome.reason is sk.Reason.PRINCIPAL_NOT_MATCHER, outcome
        elif field is None:
            assert outcome.reason is sk.Reason.TRADE_EXISTS, outcome
        else:
            assert outcome.reason.value == f"trade_exists_with_different_{_REASON_SUFFIX[field]}"

    @rule(instrument=st.sampled_from(INSTRUMENTS), principal=st.sampled_from(PRINCIPALS))
    def variation_margin(self, instrument: str, principal: str) -> None:
        self.submit(sk.VariationMargin(principal=principal, instrument=instrument))

    @rule(data=st.data())
    def malformed_event(self, data: st.DataObject) -> None:
        """An event with one field replaced by a value of the wrong type or form."""
        cls = data.draw(st.sampled_from([sk.Deposit, sk.Withdraw, sk.Trade, sk.OraclePrice]))
        fields = {
            sk.Deposit: dict(principal="alice", account="alice-1", asset="USDC", amount_minor=1),
            sk.Withdraw: dict(principal="alice", account="alice-1", asset="USDC", amount_minor=1),
            sk.OraclePrice: dict(
                principal="oracle-a", underlying="BTC", price_ticks=1, timestamp_ms=1
            ),
            sk.Trade: dict(
                principal="venue",
                trade_id="X",
                buyer="alice-1",
                seller="bob-1",
                instrument="BTC-PERP",
                quantity_lots=1,
                price_ticks=1,
                buyer_fee_rate_ppm=0,
                seller_fee_rate_ppm=0,
            ),
        }[cls]
        name = data.draw(st.sampled_from(sorted(fields)))
        is_id = isinstance(fields[name], str)
        fields[name] = data.draw(
            st.one_of(non_string_values, bad_identifiers) if is_id else hostile_values
        )
        outcome = self.submit(cls(**fields))
        assert isinstance(outcome, sk.Rejected)
        assert outcome.reason in (sk.Reason.FIELD_TYPE_INVALID, sk.Reason.ID_INVALID)

    @rule(thing=st.one_of(st.none(), st.integers(), st.text(max_size=5), st.just(object())))
    def not_an_event(self, thing: object) -> None:
        outcome = self.submit(thing)
        assert isinstance(outcome, sk.Rejected)
        assert outcome.reason is sk.Reason.EVENT_TYPE_UNKNOWN

    @invariant()
    def state_invariants_hold(self) -> None:
        violations = sk.check_invariants(self.state)
        assert violations == [], [str(v) for v in violations]

    def teardown(self) -> None:
        """INV-DETERMINISM: the same events from genesis give the same outcomes and roots."""
        state = sk.genesis(RULES)
        replayed: list[str] = []
        for event in self.log:
            outcome = sk.step(state, event)
            if isinstance(outcome, sk.Accepted):
                state = outcome.state
                replayed.append("ok:" + state_root(state).hex())
            else:
                replayed.append(outcome.reason.value)
        assert replayed == self.outcomes


TestKernelMachine = KernelMachine.TestCase
