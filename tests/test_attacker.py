"""Adversarial search: an attacker against honest traders, judged at true prices (issue 12).

The true BTC price is the honest sources' median: two honest sources report it each round
(unless the attacker has silenced one or both), and it moves only in a round when both
report, by a step inside BTC's oracle band. (A true price that moved while the index could
not follow would judge the oracle's bounded lag, which the staleness limit accepts by
design; exploit 1's unbounded lag is reproduced in test_exploits.py.) The attacker controls
the third source, and owns three accounts (mallory-1..3). It may print wash trades between
its accounts at any price, lie through its source, silence the honest sources, let hours
pass, time deposits and withdrawals around its lies and the silences, trade with honest
accounts at the true price, and liquidate honest accounts with its third account. Honest
keepers liquidate every liquidatable account after each round, as keepers in a live market
do: the first honest account that can take the positions does.

The judge is every account's value at the true price: cash, plus claims less debts on the
fund, plus positions at the true price, plus everything withdrawn. Each account may change
in value only by what its own positions' true moves explain, less the fees, penalties and
rounding it pays, plus its deposits:

* the attacker must never hold more than that: any gain beyond it, by sequencing, a lie, a
  silence, a wash print or a liquidation at a false mark, was taken from someone;
* an honest account must never hold less (a liquidator's discount is a gain it may keep);
* an honest account is liquidated only below maintenance at the true price.

Every step also passes ``check_step`` and every state ``check_invariants``. ``make test``
runs a short budget; ``make fuzz`` (``SETTLEKERNEL_FUZZ=1``) runs the ``fuzz`` profile.
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import settlekernel as sk
from scenario import USDC
from settlekernel.core.outcomes import PostingCode
from settlekernel.core.units import INSURANCE_ACCOUNT

HONEST = ("hana", "ivan", "jade")
ATTACKER = ("mallory-1", "mallory-2", "mallory-3")
EVERYONE = (*HONEST, *ATTACKER)
HONEST_SOURCES = ("oracle-a", "oracle-b")
LIAR = "oracle-c"
PERP = "BTC-PERP"
MULTIPLIER = 10
START_TICKS = 9_000_000
ROUND_MS = 10_000
# A true move per round inside BTC's 5 % band and the 8 % scan range.
MOVES_PPM = (-20_000, -5_000, 0, 5_000, 20_000)
# What an account pays is explained by postings; rounding is in the system's favour, so a
# step can cost an account a unit per posting it is on, never give it one.
SLACK_PER_STEP = 4
LISTING = sk.ListInstrument(
    principal="operator",
    instrument=PERP,
    kind=sk.InstrumentKind.PERPETUAL,
    underlying="BTC",
    settlement_asset="USDC",
    multiplier_minor=MULTIPLIER,
)
# Codes whose amount, debited from an account, is a documented cost to it.
COSTS = (PostingCode.FEE, PostingCode.ROUNDING, PostingCode.PENALTY)


class AttackerMachine(RuleBasedStateMachine):
    """Honest traders and one attacker; nobody's value moves without an explanation."""

    def __init__(self) -> None:
        super().__init__()
        self.state = sk.genesis(sk.RuleSet.default())
        self.true_ticks = START_TICKS
        self.clock_ms = 0
        self.silenced: dict[str, int] = {}
        self.lies = 0
        self.trade_number = 0
        self.withdrawn: Counter[str] = Counter()
        self.explained: Counter[str] = Counter()
        self.steps = 0
        self.outcomes: Counter[str] = Counter()

    # Feeding the kernel: every check, every step.
    def submit(self, event: object) -> sk.Outcome:
        before = self.state
        outcome = sk.step(before, event)
        self.steps += 1
        name = type(event).__name__
        if isinstance(outcome, sk.Accepted):
            assert sk.check_step(before, event, outcome) == []
            self._account_for(before, event, outcome)
            self.state = outcome.state
            self.outcomes[f"{name} ok"] += 1
        else:
            self.outcomes[f"{name} {outcome.reason.value}"] += 1
        note(f"{event!r} -> {'ok' if isinstance(outcome, sk.Accepted) else outcome.reason.value}")
        return outcome

    def _account_for(self, before: sk.State, event: object, outcome: sk.Accepted) -> None:
        """Explain each account's value change: its costs, deposits and withdrawals."""
        for posting in outcome.postings:
            if posting.debit_account in EVERYONE and posting.code in COSTS:
                self.explained[posting.debit_account] -= posting.amount_minor
            if posting.code is PostingCode.DEPOSIT and posting.credit_account in EVERYONE:
                self.explained[posting.credit_account] += posting.amount_minor
            if posting.code is PostingCode.WITHDRAW and posting.debit_account in EVERYONE:
                self.withdrawn[posting.debit_account] += posting.amount_minor
        if isinstance(event, sk.Liquidate | sk.Backstop) and event.account in HONEST:
            self._check_fair_liquidation(before, event.account)

    def _check_fair_liquidation(self, before: sk.State, account_id: str) -> None:
        """An honest account is liquidated only below maintenance at the true price."""
        at_true = self.value_in(before, account_id)
        report = sk.margin_report(before, account_id)
        assert report is not None
        assert at_true < report.maintenance_minor, (
            f"{account_id} liquidated with {at_true} at the true price, maintenance "
            f"{report.maintenance_minor}"
        )

    def value_in(self, state: sk.State, account_id: str) -> int:
        """An account's value at the true price in a state."""
        account = state.accounts[account_id]
        value = account.balance("USDC") + account.claim_minor - account.debt_minor
        held = account.positions.get(PERP)
        if held is not None:
            value += held.quantity_lots * (self.true_ticks - held.settled_price_ticks) * MULTIPLIER
        return value

    def unexplained(self, account_id: str) -> int:
        """Value now plus withdrawals, less what explains it: positive is a gain."""
        return (
            self.value_in(self.state, account_id)
            + self.withdrawn[account_id]
            - self.explained[account_id]
        )

    def report(self, source: str, ticks: int, offset_ms: int = 0) -> None:
        self.submit(
            sk.OraclePrice(
                principal=source,
                underlying="BTC",
                price_ticks=ticks,
                timestamp_ms=self.clock_ms + offset_ms,
            )
        )

    @initialize()
    def open_market(self) -> None:
        self.submit(LISTING)
        for account in EVERYONE:
            owner = account.split("-", maxsplit=1)[0]
            self.submit(sk.OpenAccount(principal=owner, account=account))
            self.submit(
                sk.Deposit(
                    principal=owner, account=account, asset="USDC", amount_minor=20_000 * USDC
                )
            )
        self.next_round(0)
        self.submit(sk.FundInsurance(principal="operator", asset="USDC", amount_minor=5_000 * USDC))

    # The market.
    def _advance(self, elapsed_ms: int, move_ppm: int) -> None:
        """Time passes; the live honest sources report the true price, moved by ``move_ppm``."""
        live = [source for source in HONEST_SOURCES if not self.silenced.get(source)]
        self.silenced = {s: n - 1 for s, n in self.silenced.items() if n > 1}
        if len(live) == len(HONEST_SOURCES):
            new_ticks = self.true_ticks + self.true_ticks * move_ppm // 1_000_000
            # Every holder's true market move: value it may keep (or must bear).
            for account in EVERYONE:
                held = self.state.accounts[account].positions.get(PERP)
                if held is not None:
                    self.explained[account] += (
                        held.quantity_lots * (new_ticks - self.true_ticks) * MULTIPLIER
                    )
            self.true_ticks = new_ticks
        self.clock_ms += elapsed_ms
        self.lies = 0
        self.submit(sk.Tick(principal="sequencer", timestamp_ms=self.clock_ms))
        for source in live:
            self.report(source, self.true_ticks)
        self._keepers()

    def _keepers(self) -> None:
        """Honest keepers liquidate whatever is liquidatable, with an honest account."""
        for account in EVERYONE:
            report = sk.margin_report(self.state, account)
            if report is None or report.equity_minor >= report.maintenance_minor:
                continue
            for keeper in HONEST:
                if keeper != account and isinstance(
                    self.submit(sk.Liquidate(principal=keeper, account=account, liquidator=keeper)),
                    sk.Accepted,
                ):
                    break
            else:
                # No keeper could take it: the backstop closes it out once it is far enough
                # below maintenance (SK-LIQ-6); refused above the threshold.
                self.submit(sk.Backstop(principal=HONEST[0], account=account))

    @rule(move=st.sampled_from(MOVES_PPM))
    def next_round(self, move: int) -> None:
        self._advance(ROUND_MS, move)

    @rule(up=st.booleans(), rounds=st.integers(2, 6))
    def trend(self, up: bool, rounds: int) -> None:
        """The market runs one way for several rounds: where liquidations come from."""
        for _ in range(rounds):
            self._advance(ROUND_MS, MOVES_PPM[-1] if up else MOVES_PPM[0])

    @rule(minutes=st.sampled_from((2, 30, 61, 185)), move=st.sampled_from(MOVES_PPM))
    def hours_pass(self, minutes: int, move: int) -> None:
        """A long quiet spell: prices go stale unless reported, funding falls due."""
        self._advance(minutes * 60_000, move)

    @rule(
        sources=st.sampled_from((("oracle-a",), ("oracle-b",), HONEST_SOURCES)),
        rounds=st.integers(1, 8),
    )
    def silence(self, sources: tuple[str, ...], rounds: int) -> None:
        """The attacker keeps honest sources quiet for a while; time goes on."""
        for source in sources:
            self.silenced[source] = rounds

    @rule(buyer=st.sampled_from(HONEST), seller=st.sampled_from(HONEST), lots=st.integers(1, 2_000))
    def honest_trade(self, buyer: str, seller: str, lots: int) -> None:
        if buyer != seller:
            self._trade(buyer, seller, lots, self.true_ticks)

    @rule(
        honest=st.sampled_from(HONEST),
        mine=st.sampled_from(ATTACKER),
        lots=st.integers(1, 2_000),
        buys=st.booleans(),
    )
    def trade_with_the_attacker(self, honest: str, mine: str, lots: int, buys: bool) -> None:
        """At the true price: a fair trade, which explains no gain and no loss."""
        buyer, seller = (mine, honest) if buys else (honest, mine)
        self._trade(buyer, seller, lots, self.true_ticks)

    @rule(
        lots=st.integers(1, 2_000),
        skew_ppm=st.sampled_from((-50_000, -9_000, 9_000, 50_000)),
        pair=st.sampled_from(((0, 1), (1, 0), (0, 2), (2, 1))),
    )
    def wash_print(self, lots: int, skew_ppm: int, pair: tuple[int, int]) -> None:
        """Between two of the attacker's accounts, off the true price."""
        ticks = self.true_ticks + self.true_ticks * skew_ppm // 1_000_000
        self._trade(ATTACKER[pair[0]], ATTACKER[pair[1]], lots, ticks)

    def _trade(self, buyer: str, seller: str, lots: int, ticks: int) -> None:
        self.trade_number += 1
        self.submit(
            sk.Trade(
                principal="venue",
                trade_id=f"t{self.trade_number}",
                buyer=buyer,
                seller=seller,
                instrument=PERP,
                quantity_lots=lots,
                price_ticks=ticks,
                buyer_fee_rate_ppm=100,
                seller_fee_rate_ppm=100,
            )
        )

    @rule(
        factor_ppm=st.sampled_from((0, 500_000, 960_000, 980_000, 1_020_000, 1_040_000, 2_000_000))
    )
    def lie(self, factor_ppm: int) -> None:
        """The attacker's source reports a false price, stamped within the round."""
        self.lies += 1
        if self.lies < ROUND_MS:
            self.report(LIAR, self.true_ticks * factor_ppm // 1_000_000, offset_ms=self.lies)

    @rule(
        account=st.sampled_from(ATTACKER), share_ppm=st.sampled_from((100_000, 500_000, 1_000_000))
    )
    def withdraw(self, account: str, share_ppm: int) -> None:
        """Timed: whenever the attacker likes, after lies and silences."""
        self._withdraw("mallory", account, share_ppm)

    @rule(account=st.sampled_from(HONEST), share_ppm=st.sampled_from((100_000, 500_000, 900_000)))
    def honest_withdraw(self, account: str, share_ppm: int) -> None:
        """Honest traders run lean too, which is what makes liquidations happen."""
        self._withdraw(account, account, share_ppm)

    def _withdraw(self, owner: str, account: str, share_ppm: int) -> None:
        held = self.state.accounts[account].balance("USDC")
        if held:
            self.submit(
                sk.Withdraw(
                    principal=owner,
                    account=account,
                    asset="USDC",
                    amount_minor=max(held * share_ppm // 1_000_000, 1),
                )
            )

    @rule(account=st.sampled_from(ATTACKER), amount=st.integers(1, 5_000))
    def deposit(self, account: str, amount: int) -> None:
        self.submit(
            sk.Deposit(
                principal="mallory", account=account, asset="USDC", amount_minor=amount * USDC
            )
        )

    @rule(victim=st.sampled_from(HONEST))
    def liquidate_an_honest_account(self, victim: str) -> None:
        self.submit(sk.Liquidate(principal="mallory", account=victim, liquidator=ATTACKER[2]))

    @rule(account=st.sampled_from(EVERYONE))
    def backstop(self, account: str) -> None:
        """The attacker backstops any account it likes, its own or an honest one (SK-LIQ-6)."""
        self.submit(sk.Backstop(principal="mallory", account=account))

    @rule(charge=st.booleans())
    def operator_marks_and_charges(self, charge: bool) -> None:
        self.submit(sk.VariationMargin(principal="operator", instrument=PERP))
        if charge:
            self.submit(sk.Funding(principal="operator", instrument=PERP))

    @invariant()
    def the_attacker_gains_nothing_unexplained(self) -> None:
        gained = sum(self.unexplained(account) for account in ATTACKER)
        assert gained <= SLACK_PER_STEP * self.steps, (
            f"the attacker holds {gained} more than its positions, costs and deposits explain"
        )

    @invariant()
    def no_honest_account_loses_unexplained(self) -> None:
        for account in HONEST:
            lost = -self.unexplained(account)
            assert lost <= SLACK_PER_STEP * self.steps, (
                f"{account} lost {lost} beyond its positions' true moves and its costs"
            )

    @invariant()
    def every_state_invariant_holds(self) -> None:
        assert sk.check_invariants(self.state) == []

    def teardown(self) -> None:
        note(f"outcomes: {dict(sorted(self.outcomes.items()))}")


# A short budget in make test; make fuzz (SETTLEKERNEL_FUZZ=1) runs its profile's long one.
TestAttacker = AttackerMachine.TestCase
if not os.environ.get("SETTLEKERNEL_FUZZ"):
    TestAttacker.settings = settings(settings(), max_examples=150, stateful_step_count=50)


def _rounds_with_one_lean_keeper(rounds: int, *, backstop: bool) -> tuple[sk.State, int]:
    """The search's find, replayed: a wash print, a run up, and one keeper without margin.

    Mallory buys 1,253 lots from herself 5 % under the price; the market runs up 2 % a round;
    the only keeper, hana, has withdrawn 90 % of her cash and cannot take the short. With
    ``backstop``, hana submits ``Backstop`` for what she cannot liquidate (SK-LIQ-6). Returns
    the state and the true price.
    """
    state = sk.genesis(sk.RuleSet.default())

    def submit(event: object) -> sk.Outcome:
        nonlocal state
        outcome = sk.step(state, event)
        if isinstance(outcome, sk.Accepted):
            assert sk.check_step(state, event, outcome) == []
            state = outcome.state
        return outcome

    submit(LISTING)
    for account in ("hana", "mallory-1", "mallory-2"):
        owner = account.split("-", maxsplit=1)[0]
        submit(sk.OpenAccount(principal=owner, account=account))
        submit(
            sk.Deposit(principal=owner, account=account, asset="USDC", amount_minor=20_000 * USDC)
        )
    true_ticks, clock_ms = START_TICKS, 0

    def next_round() -> None:
        nonlocal clock_ms
        clock_ms += ROUND_MS
        submit(sk.Tick(principal="sequencer", timestamp_ms=clock_ms))
        for source in HONEST_SOURCES:
            submit(
                sk.OraclePrice(
                    principal=source,
                    underlying="BTC",
                    price_ticks=true_ticks,
                    timestamp_ms=clock_ms,
                )
            )
        for account in ("mallory-1", "mallory-2"):
            taken = submit(sk.Liquidate(principal="hana", account=account, liquidator="hana"))
            if backstop and not isinstance(taken, sk.Accepted):
                submit(sk.Backstop(principal="hana", account=account))

    next_round()
    submit(sk.FundInsurance(principal="operator", asset="USDC", amount_minor=5_000 * USDC))
    submit(sk.Withdraw(principal="hana", account="hana", asset="USDC", amount_minor=18_000 * USDC))
    wash = sk.Trade(
        principal="venue",
        trade_id="wash",
        buyer="mallory-1",
        seller="mallory-2",
        instrument=PERP,
        quantity_lots=1_253,
        price_ticks=START_TICKS * 95 // 100,
        buyer_fee_rate_ppm=100,
        seller_fee_rate_ppm=100,
    )
    assert isinstance(submit(wash), sk.Accepted)
    for _ in range(rounds):
        true_ticks += true_ticks * 20_000 // 1_000_000
        next_round()
    return state, true_ticks


def _twins_value(state: sk.State, true_ticks: int) -> int:
    """What mallory's two accounts hold at the true price, with claims less debts."""
    value = 0
    for account in ("mallory-1", "mallory-2"):
        held = state.accounts[account]
        value += held.balance("USDC") + held.claim_minor - held.debt_minor
        position = held.positions.get(PERP)
        if position is not None:
            value += (
                position.quantity_lots * (true_ticks - position.settled_price_ticks) * MULTIPLIER
            )
    return value


# What the twins may hold: their deposits less the wash print's fees, and rounding.
_TWINS_BOUND = (
    40_000 * USDC - 2 * 1_253 * (START_TICKS * 95 // 100) * MULTIPLIER * 100 // 1_000_000 + 4 * 40
)


def test_without_the_backstop_a_self_trader_drains_the_fund_when_no_keeper_can_liquidate():
    """The search's find (issue 12), kept as the reason for SK-LIQ-6: without ``Backstop``."""
    state, true_ticks = _rounds_with_one_lean_keeper(8, backstop=False)
    assert _twins_value(state, true_ticks) > _TWINS_BOUND
    assert state.accounts[INSURANCE_ACCOUNT].balance("USDC") == 0


def test_the_backstop_stops_a_self_trader_draining_the_fund():
    """With ``Backstop`` the losing twin is closed against its winning twin while solvent."""
    state, true_ticks = _rounds_with_one_lean_keeper(8, backstop=True)
    assert _twins_value(state, true_ticks) <= _TWINS_BOUND
    fund = state.accounts[INSURANCE_ACCOUNT].balance("USDC")
    assert fund >= 5_000 * USDC
    assert not state.accounts["mallory-2"].positions
