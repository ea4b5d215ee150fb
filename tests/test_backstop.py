"""The backstop (SK-LIQ-6): an account no keeper took, closed against the opposite side."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import event as label
from hypothesis import given, settings
from hypothesis import strategies as st

import settlekernel as sk
from scenario import (
    OK,
    USDC,
    apply_checked,
    balances,
    deposit,
    fund_insurance,
    market,
    open_account,
    position,
    run_table,
    trade,
    walk,
)
from settlekernel.core.outcomes import PostingCode
from settlekernel.kernel.invariants import InvariantId
from settlekernel.kernel.transitions import backstop

LOSS_PER_LOT = 600_000 * 10  # 90,000.00 -> 84,000.00 on a 0.001 BTC lot, in USDC minor units


def backstop_of(account: str, principal: str = "anyone") -> sk.Backstop:
    return sk.Backstop(principal=principal, account=account)


def _book(extra=()):
    """thin (10,000 USDC) buys 1 BTC of BTC-PERP at 90,000: 300 lots from carol (10,000),
    400 from dave (20,000), 300 from alice; alice is 200 lots shorter against bob."""
    return market(
        [
            (open_account("thin"), OK),
            (deposit("thin", 10_000 * USDC), OK),
            (open_account("carol"), OK),
            (deposit("carol", 10_000 * USDC), OK),
            (open_account("dave"), OK),
            (deposit("dave", 20_000 * USDC), OK),
            (trade("t1", "thin", "carol", 300, 9_000_000), OK),
            (trade("t2", "thin", "dave", 400, 9_000_000), OK),
            (trade("t3", "thin", "alice", 300, 9_000_000), OK),
            (trade("t4", "bob", "alice", 200, 9_000_000), OK),
            *extra,
        ]
    )


def test_the_backstop_waits_for_keepers_between_maintenance_and_its_threshold():
    """Below maintenance but above 2/3 of it only `Liquidate` acts; nothing changes."""
    state = run_table(walk("BTC", 8_550_000, 2_000, rounds=2), _book())
    report = sk.margin_report(state, "thin")
    assert report.equity_minor < report.maintenance_minor
    assert report.equity_minor * 3 >= report.maintenance_minor * 2
    run_table(
        [
            (backstop_of("thin"), "not_liquidatable"),
            (backstop_of("carol"), "not_liquidatable"),
            (backstop_of("nobody"), "account_unknown"),
            (open_account("flat"), OK),
            (backstop_of("flat"), "nothing_to_liquidate"),
        ],
        state,
    )


def test_a_backstop_closes_the_account_against_the_top_of_the_ranking_at_the_mark():
    """carol and dave (most levered) in full, alice partly; bob, on thin's side, untouched."""
    state = run_table(walk("BTC", 8_400_000, 2_000, rounds=3), _book())
    assert state.prices["BTC"].price_ticks == 8_400_000
    before = sk.margin_report(state, "thin")
    assert before.equity_minor == 4_000 * USDC
    assert backstop.below_backstop(state, before.equity_minor, before.maintenance_minor)
    state = run_table([(backstop_of("thin"), OK)], state)
    assert position(state, "thin", "BTC-PERP") is None
    assert position(state, "carol", "BTC-PERP") is None
    assert position(state, "dave", "BTC-PERP") is None
    assert position(state, "alice", "BTC-PERP") == (-200, 9_000_000)
    assert position(state, "bob", "BTC-PERP") == (200, 9_000_000)
    # Each is paid its whole profit at the mark (the index: no premium sample is recent).
    assert balances(state, "carol")["USDC"] == 10_000 * USDC + 300 * LOSS_PER_LOT
    assert balances(state, "dave")["USDC"] == 20_000 * USDC + 400 * LOSS_PER_LOT
    assert balances(state, "alice")["USDC"] == 1_000_000 * USDC + 300 * LOSS_PER_LOT
    # thin keeps what is left after its loss and the 1.5 % penalty, which goes to the fund.
    penalty = 1_000 * 8_400_000 * 10 * 15_000 // 1_000_000
    assert balances(state, "@insurance")["USDC"] == penalty
    assert balances(state, "thin")["USDC"] == 4_000 * USDC - penalty


def test_a_gap_past_bankruptcy_goes_to_the_fund_then_to_the_receivers():
    """At 75,000 thin owes 15,000 with 10,000: the fund pays 1,000, 4,000 is socialised."""
    state = run_table(
        [(fund_insurance(1_000 * USDC), OK), *walk("BTC", 7_500_000, 2_000, rounds=6)], _book()
    )
    assert sk.margin_report(state, "thin").equity_minor == -5_000 * USDC
    outcome = apply_checked(state, backstop_of("thin"))
    assert isinstance(outcome, sk.Accepted)
    after = outcome.state
    assert balances(after, "thin") == {}
    assert balances(after, "@insurance") == {}
    assert after.socialized_loss["USDC"] == 4_000 * USDC
    # The receivers bear the 4,000 in proportion to their dues (3:4:3), rounded up.
    profit = 1_500_000 * 10
    paid = {
        name: balances(after, name)["USDC"] - balances(state, name)["USDC"]
        for name in ("carol", "dave", "alice")
    }
    assert paid == {
        "carol": 300 * profit - 1_200 * USDC,
        "dave": 400 * profit - 1_600 * USDC,
        "alice": 300 * profit - 1_200 * USDC,
    }
    codes = {p.code for p in outcome.postings}
    assert PostingCode.INSURANCE in codes
    assert PostingCode.PENALTY not in codes


def _hedged(extra=()):
    """thin is long 1,000 BTC-PERP and short 200 BTC-FUT; btcer, long the future, holds only
    0.5 BTC. The fund holds 5,000 USDC."""
    return _book(
        [
            (open_account("btcer"), OK),
            (deposit("btcer", 50_000_000, asset="BTC"), OK),
            (fund_insurance(5_000 * USDC), OK),
            (trade("t5", "btcer", "thin", 200, 9_000_000, instrument="BTC-FUT"), OK),
            *extra,
        ]
    )


def test_a_holder_short_of_cash_owes_the_fund_what_it_pays():
    """thin's winning future closes against btcer, who has no USDC: the fund advances it."""
    state = run_table(walk("BTC", 8_000_000, 2_000, rounds=4), _hedged())
    report = sk.margin_report(state, "thin")
    assert backstop.below_backstop(state, report.equity_minor, report.maintenance_minor)
    fund = balances(state, "@insurance")["USDC"]
    state = run_table([(backstop_of("thin"), OK)], state)
    assert position(state, "btcer", "BTC-FUT") is None
    owed = 200 * 1_000_000 * 10
    assert state.accounts["btcer"].debt_minor == owed
    assert balances(state, "btcer") == {"BTC": 50_000_000}
    # The fund advanced it, and was paid the penalty.
    assert balances(state, "@insurance")["USDC"] >= fund - owed
    # btcer is now liquidatable as a debtor: a keeper buys its BTC to repay the fund.
    state = run_table(
        [
            (open_account("keeper"), OK),
            (deposit("keeper", 10_000 * USDC), OK),
            (sk.Liquidate(principal="keeper", account="btcer", liquidator="keeper"), OK),
        ],
        state,
    )
    assert state.accounts["btcer"].debt_minor == 0


def test_collateral_pays_what_cash_cannot_sold_to_the_fund_at_its_discount():
    """A BTC holder with 100 USDC loses on ETH: its BTC goes to the fund 2 % under index."""
    state = market(
        [
            (open_account("btcer"), OK),
            (deposit("btcer", 6_000_000, asset="BTC"), OK),
            (deposit("btcer", 100 * USDC), OK),
            (fund_insurance(20_000 * USDC), OK),
            (trade("t1", "alice", "btcer", 1_000, 300_000, instrument="ETH-PERP"), OK),
            *walk("ETH", 340_000, 2_000, rounds=3),
        ]
    )
    report = sk.margin_report(state, "btcer")
    assert backstop.below_backstop(state, report.equity_minor, report.maintenance_minor)
    outcome = apply_checked(state, backstop_of("btcer"))
    assert isinstance(outcome, sk.Accepted)
    sold = [p for p in outcome.postings if p.code is PostingCode.COLLATERAL_SALE]
    units = sum(p.amount_minor for p in sold if p.asset == "BTC")
    paid = sum(p.amount_minor for p in sold if p.asset == "USDC")
    assert units > 0
    assert {p.credit_account for p in sold if p.asset == "BTC"} == {"@insurance"}
    assert paid == units * 9_000_000 * 10_000 * 980_000 // (10**8 * 10**6)
    assert outcome.state.accounts["btcer"].debt_minor == 0
    assert position(outcome.state, "alice", "ETH-PERP") is None


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(50, 900), min_size=2, max_size=5),
    cash=st.lists(st.integers(0, 40_000), min_size=5, max_size=5),
    btc=st.lists(st.sampled_from((0, 0, 10_000_000, 50_000_000)), min_size=5, max_size=5),
    fund=st.integers(0, 30_000),
    target=st.sampled_from((7_000_000, 7_800_000, 8_400_000, 9_700_000, 10_600_000)),
    hedge=st.integers(0, 300),
)
def test_any_backstop_keeps_every_invariant(sizes, cash, btc, fund, target, hedge):
    """Random books, some holders with no USDC, a random move, then every backstop."""
    rows = [(fund_insurance(fund * USDC + 1), OK)]
    for number in range(len(sizes)):
        name = f"w{number}"
        rows += [(open_account(name), OK), (deposit(name, cash[number] * USDC + 1), OK)]
        if btc[number]:
            rows.append((deposit(name, btc[number], asset="BTC"), OK))
    state = market(rows)
    events = []
    for number, lots in enumerate(sizes):
        buyer, seller = (f"w{number}", "alice") if number % 2 else ("bob", f"w{number}")
        events.append(trade(f"t{number}", buyer, seller, lots, 9_000_000))
        if hedge:
            events.append(
                trade(
                    f"f{number}",
                    seller,
                    f"w{(number + 1) % len(sizes)}",
                    hedge,
                    9_000_000,
                    instrument="BTC-FUT",
                )
            )
    for event in events:
        outcome = sk.step(state, event)
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
    state = run_table(walk("BTC", target, 2_000, rounds=8), state)
    for account in ("alice", "bob", *(f"w{n}" for n in range(len(sizes)))):
        outcome = apply_checked(state, backstop_of(account))
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
            assert not state.accounts[account].positions
            codes = {p.code.value for p in outcome.postings}
            label(
                "backstop: " + ",".join(sorted(codes & {"advance", "insurance", "collateral_sale"}))
            )
    assert sk.check_invariants(state) == []


@pytest.mark.parametrize(
    ("fault", "caught"),
    [
        ("threshold", InvariantId.LIQUIDATE_ONLY_BELOW_MM),
        ("ranking", InvariantId.ADL_FAIRNESS),
        ("price", InvariantId.ADL_FAIRNESS),
    ],
)
def test_a_planted_backstop_fault_is_caught(monkeypatch, fault, caught):
    """Each backstop check can fail: a planted fault breaks exactly its invariant."""
    state = run_table(walk("BTC", 8_400_000, 2_000, rounds=3), _book())
    target = "thin"
    if fault == "threshold":
        monkeypatch.setattr(backstop, "below_backstop", lambda *_: True)
        target = "dave"  # healthy: in profit
    elif fault == "ranking":
        original = backstop.ranking
        monkeypatch.setattr(backstop, "ranking", lambda *a: list(reversed(original(*a))))
    else:
        original_closes = backstop.closes

        def worse(state, account, rung):
            # Closes one tick under the transfer price: the holders buy back too cheaply.
            return [
                attrs.evolve(
                    close,
                    price_ticks=close.price_ticks - 1,
                    cash_minor=close.cash_minor - close.lots * close.instrument.multiplier_minor,
                )
                for close in original_closes(state, account, rung)
            ]

        monkeypatch.setattr(backstop, "closes", worse)
    outcome = sk.step(state, backstop_of(target))
    assert isinstance(outcome, sk.Accepted)
    found = {
        violation.invariant for violation in sk.check_step(state, backstop_of(target), outcome)
    }
    assert caught in found
