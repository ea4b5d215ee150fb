"""Liquidation: partial first, full, then the insurance fund and auto-deleveraging."""

from __future__ import annotations

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
    price,
    run_table,
    trade,
    walk,
)
from settlekernel.proofs.replay import realise_liquidation, replay


def liquidate(account: str, liquidator: str = "liq", principal: str | None = None) -> sk.Liquidate:
    return sk.Liquidate(principal=principal or liquidator, account=account, liquidator=liquidator)


def _long_thin(extra=()):
    """thin (10,000 USDC) buys 1 BTC of BTC-PERP at 90,000 from alice; liq has 100,000 USDC."""
    return market(
        [
            (open_account("thin"), OK),
            (deposit("thin", 10_000 * USDC), OK),
            (open_account("liq"), OK),
            (deposit("liq", 100_000 * USDC), OK),
            (trade("t1", "thin", "alice", 1_000, 9_000_000), OK),
            *extra,
        ]
    )


def test_a_partial_liquidation_closes_the_smallest_share_that_restores_initial_margin():
    """Closes 5/10 at the mark, pays 1.5 % of it to the fund, and restores initial margin."""
    state = run_table(walk("BTC", 8_550_000, 2_000, rounds=2), _long_thin())
    index = state.prices["BTC"].price_ticks
    assert index == 8_550_000
    before = sk.margin_report(state, "thin")
    assert before.equity_minor < before.maintenance_minor
    state = run_table([(liquidate("thin"), OK)], state)
    assert position(state, "thin", "BTC-PERP") == (500, 9_000_000)
    assert position(state, "liq", "BTC-PERP") == (500, 9_000_000)
    # thin paid the loss on the half it sold, 500 x 450,000 x 10, and the penalty on its
    # notional at the mark (premium 0: the index), ceil(500 x 8,550,000 x 10 x 1.5 %).
    loss, penalty = 500 * 450_000 * 10, 500 * 8_550_000 * 10 * 15_000 // 1_000_000
    assert balances(state, "thin")["USDC"] == 10_000 * USDC - loss - penalty
    assert balances(state, "@insurance")["USDC"] == penalty
    after = sk.margin_report(state, "thin")
    assert after.equity_minor >= after.initial_minor
    assert (
        after.equity_minor * before.maintenance_minor
        > before.equity_minor * after.maintenance_minor
    )
    # 4/10 would not have done: 600 lots need 1.25 x maintenance, more than is left.
    four = 400 * 8_550_000 * 10 * 15_000 // 1_000_000
    assert before.equity_minor - four < before.initial_minor * 600 // 1_000


def test_guards():
    """Refuses self-liquidation, strangers, healthy accounts and bad prices, in order."""
    state = _long_thin([(open_account("poor"), OK), (deposit("poor", 1 * USDC), OK)])
    run_table(
        [
            (liquidate("thin", "thin"), "self_liquidation"),
            (liquidate("ghost"), "account_unknown"),
            (liquidate("thin", "ghost"), "account_unknown"),
            (liquidate("thin", "liq", principal="mallory"), "principal_not_owner"),
            (liquidate("liq"), "self_liquidation"),
            (liquidate("bob"), "nothing_to_liquidate"),
            (liquidate("thin"), "not_liquidatable"),
            (liquidate("alice"), "not_liquidatable"),
        ],
        state,
    )
    crashed = run_table(walk("BTC", 8_550_000, 2_000, rounds=2), state)
    run_table(
        [
            # poor would be paid thin's loss on the position, but cannot margin it.
            (liquidate("thin", "poor"), "margin_insufficient"),
            # A gap makes BTC too volatile: no liquidation on a band-limited index.
            (price("BTC", 6_000_000, 3_000), OK),
            (liquidate("thin"), "oracle_not_admissible"),
        ],
        crashed,
    )
    # Stale: ETH moves the clock on, BTC's reports age past 60 s.
    stale = run_table([(price("ETH", 300_000, 70_000), OK)], crashed)
    run_table([(liquidate("thin"), "oracle_not_admissible")], stale)


def test_a_liquidator_must_margin_what_it_takes():
    """Refuses a liquidator that cannot margin the position it would take over."""
    state = market(
        [
            (open_account("thin"), OK),
            (deposit("thin", 10_000 * USDC), OK),
            (open_account("poor"), OK),
            (deposit("poor", 1 * USDC), OK),
            (trade("t1", "alice", "thin", 1_000, 9_000_000), OK),
            *walk("BTC", 9_450_000, 2_000, rounds=2),
        ]
    )
    assert sk.is_liquidatable(state, "thin")
    run_table([(liquidate("thin", "poor"), "margin_insufficient")], state)


def test_an_account_that_cannot_restore_margin_is_closed_in_full():
    """Closes everything when no partial close restores initial margin; caps the penalty."""
    state = run_table(walk("BTC", 8_050_000, 2_000, rounds=3), _long_thin())
    before = sk.margin_report(state, "thin")
    assert 0 <= before.equity_minor < before.maintenance_minor
    state = run_table([(liquidate("thin"), OK)], state)
    assert position(state, "thin", "BTC-PERP") is None
    assert position(state, "liq", "BTC-PERP") == (1_000, 9_000_000)
    # The penalty took what was left, never more: thin ends at zero or above.
    assert balances(state, "thin").get("USDC", 0) >= 0
    assert balances(state, "@insurance")["USDC"] + balances(state, "thin").get("USDC", 0) == (
        before.equity_minor
    )


def test_the_insurance_fund_covers_a_bankrupt_account():
    """Pays the shortfall from the fund; the liquidator takes everything at the mark."""
    state = _long_thin(
        [(fund_insurance(50_000 * USDC), OK), *walk("BTC", 7_500_000, 2_000, rounds=6)]
    )
    assert sk.margin_report(state, "thin").equity_minor < 0
    liq_cash = balances(state, "liq")["USDC"]
    state = run_table([(liquidate("thin"), OK)], state)
    shortfall = 1_000 * 1_500_000 * 10 - 10_000 * USDC
    assert balances(state, "thin") == {}
    assert balances(state, "@insurance")["USDC"] == 50_000 * USDC - shortfall
    assert position(state, "liq", "BTC-PERP") == (1_000, 9_000_000)
    # The liquidator was paid the position's whole loss at the mark.
    assert balances(state, "liq")["USDC"] == liq_cash + 1_000 * 1_500_000 * 10


def test_auto_deleveraging_hits_the_most_levered_winners_first():
    """Closes a bankrupt long against the shorts by profit x leverage, pays them pro rata."""
    state = market(
        [
            (open_account("thin"), OK),
            (deposit("thin", 10_000 * USDC), OK),
            (open_account("carol"), OK),
            (deposit("carol", 10_000 * USDC), OK),
            (open_account("dave"), OK),
            (deposit("dave", 20_000 * USDC), OK),
            (open_account("liq"), OK),
            (deposit("liq", 100_000 * USDC), OK),
            (fund_insurance(1_000 * USDC), OK),
            (trade("t1", "thin", "carol", 300, 9_000_000), OK),
            (trade("t2", "thin", "dave", 400, 9_000_000), OK),
            (trade("t3", "thin", "alice", 300, 9_000_000), OK),
            (trade("t4", "bob", "alice", 200, 9_000_000), OK),
            *walk("BTC", 7_500_000, 2_000, rounds=6),
        ]
    )
    # Scores (profit x notional / equity, USDC): carol 4,500 x 22,500 / 14,500 = 6,983;
    # dave 6,000 x 30,000 / 26,000 = 6,923; alice 7,500 x 37,500 / 1,007,500 = 279.
    state = run_table([(liquidate("thin"), OK)], state)
    assert position(state, "thin", "BTC-PERP") is None
    assert position(state, "carol", "BTC-PERP") is None
    assert position(state, "dave", "BTC-PERP") is None
    assert position(state, "alice", "BTC-PERP") == (-200, 9_000_000)
    assert position(state, "bob", "BTC-PERP") == (200, 9_000_000)  # Same side: untouched.
    assert balances(state, "@insurance") == {}
    # thin's 10,000 and the fund's 1,000, split 3:4:3 by the profit each gave up.
    assert balances(state, "carol")["USDC"] == 10_000 * USDC + 3_300 * USDC
    assert balances(state, "dave")["USDC"] == 20_000 * USDC + 4_400 * USDC
    assert balances(state, "alice")["USDC"] == 1_000_000 * USDC + 3_300 * USDC
    assert balances(state, "thin") == {}


def test_collateral_is_sold_to_the_liquidator_at_its_liquidation_price():
    """Sells BTC collateral to the liquidator, 2 % under its index, to pay what USDC cannot."""
    state = market(
        [
            (open_account("btcer"), OK),
            (deposit("btcer", 6_000_000, asset="BTC"), OK),
            (deposit("btcer", 100 * USDC), OK),
            (open_account("liq"), OK),
            (deposit("liq", 100_000 * USDC), OK),
            (trade("t1", "alice", "btcer", 1_000, 300_000, instrument="ETH-PERP"), OK),
            *walk("ETH", 330_000, 2_000, rounds=2),
        ]
    )
    assert sk.is_liquidatable(state, "btcer")
    run_table(
        [
            (open_account("poor"), OK),
            (deposit("poor", USDC), OK),
            (liquidate("btcer", "poor"), "insufficient_funds"),
        ],
        state,
    )
    before = state
    state = run_table([(liquidate("btcer"), OK)], state)
    # The liquidator paid for the BTC at its liquidation price: 98 % of the BTC index.
    bought = balances(state, "liq")["BTC"]
    assert bought > 0
    assert balances(state, "btcer").get("BTC", 0) == 6_000_000 - bought
    assert balances(state, "btcer").get("USDC", 0) >= 0
    sales = [
        p for p in state_postings(before, liquidate("btcer")) if p.code.value == "collateral_sale"
    ]
    price = sum(p.amount_minor for p in sales if p.asset == "USDC")
    assert price == bought * 9_000_000 * 10_000 * 980_000 // (10**8 * 10**6)


def state_postings(state, event):
    """The postings of one step."""
    outcome = sk.step(state, event)
    assert isinstance(outcome, sk.Accepted)
    return outcome.postings


def test_a_short_option_is_bought_back_at_model_value():
    """Takes a written call over at its Black-76 value rounded up against the writer."""
    state = market(
        [
            (open_account("writer"), OK),
            (deposit("writer", 3_500 * USDC), OK),
            (open_account("liq"), OK),
            (deposit("liq", 100_000 * USDC), OK),
            (trade("t1", "alice", "writer", 1_000, 30_000, instrument="BTC-C-100K"), OK),
            *walk("BTC", 9_900_000, 2_000, rounds=2),
        ]
    )
    assert sk.is_liquidatable(state, "writer")
    state = run_table([(liquidate("writer"), OK)], state)
    taken = position(state, "liq", "BTC-C-100K")
    assert taken is not None
    assert taken[0] < 0  # The liquidator is now short the calls the writer bought back.


@settings(max_examples=40)
@given(
    sizes=st.lists(st.integers(50, 900), min_size=2, max_size=5),
    cash=st.lists(st.integers(2_000, 60_000), min_size=5, max_size=5),
    fund=st.integers(0, 30_000),
    target=st.sampled_from((7_000_000, 7_800_000, 8_400_000, 9_700_000, 10_600_000)),
)
def test_any_cascade_keeps_every_invariant(sizes, cash, fund, target):
    """Crashes or squeezes random books and liquidates every account that falls below."""
    rows = [
        (fund_insurance(fund * USDC + 1), OK),
        (open_account("liq"), OK),
        (deposit("liq", 10**7 * USDC), OK),
    ]
    for number, dollars in enumerate(cash[: len(sizes)]):
        rows += [(open_account(f"w{number}"), OK), (deposit(f"w{number}", dollars * USDC), OK)]
    state = market(rows)
    for number, lots in enumerate(sizes):
        buyer, seller = (f"w{number}", "alice") if number % 2 else ("bob", f"w{number}")
        outcome = sk.step(state, trade(f"t{number}", buyer, seller, lots, 9_000_000))
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
    state = run_table(walk("BTC", target, 2_000, rounds=8), state)
    for number in range(len(sizes)):
        outcome = apply_checked(state, liquidate(f"w{number}"))
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
            assert not sk.is_liquidatable(state, f"w{number}")
    assert sk.check_invariants(state) == []


def test_a_penalty_rounding_with_no_cash_to_settle_is_no_residue_violation():
    """Found by the stateful suite: just after variation margin the close moves no cash, so
    the fund is the only account paid; the penalty's rounding unit is still legitimate."""
    rules = sk.RuleSet.default()
    roundings = 0
    for offset in range(1, 6):
        events = realise_liquidation(rules)
        liquidate = events.pop()
        events += [
            sk.OraclePrice(
                principal=oracle,
                underlying="BTC",
                price_ticks=5_550_000 + offset,
                timestamp_ms=9_000,
            )
            for oracle in rules.roles.oracles[:2]
        ]
        events += [sk.VariationMargin(principal=rules.roles.operator, instrument="perp"), liquidate]
        result = replay(rules, events)
        assert result.outcomes[-2:] == ("accepted", "accepted"), result.outcomes
        assert result.violation is None, result.violation
        state = sk.genesis(rules)
        for event in events[:-1]:
            state = sk.step(state, event).state
        codes = [posting.code for posting in sk.step(state, liquidate).postings]
        assert sk.PostingCode.LIQUIDATION not in codes  # The close settled at the reference.
        roundings += sk.PostingCode.ROUNDING in codes
    assert roundings > 0
