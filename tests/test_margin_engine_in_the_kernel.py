"""Portfolio margin wired into step: cross-margin, collateral, risk reduction, the cache."""

from __future__ import annotations

import attrs

import settlekernel as sk
from scenario import (
    OK,
    USDC,
    deposit,
    market,
    open_account,
    price,
    run_table,
    trade,
    volatility,
    withdraw,
)
from settlekernel.core.model import MarginEntry
from settlekernel.margin.accounts import account_margin, market_key

BTC = 10**8


def test_a_risk_reducing_trade_is_accepted_below_initial_margin():
    """INV-MARGIN-AFTER-ACCEPT: below initial, reducing risk is allowed, adding is not."""
    state = market(
        [
            (open_account("lev"), OK),
            (deposit("lev", 10_000 * USDC), OK),
            # 1 BTC long at 90,000 needs 9,000 USDC of initial margin.
            (trade("l1", "lev", "bob", 1_000, 9_000_000), OK),
            # -2.8 %: equity 7,500 is below initial (8,750) but above maintenance (7,000).
            (price("BTC", 8_750_000, 2_000), OK),
        ]
    )
    report = sk.margin_report(state, "lev")
    assert report is not None
    assert (report.equity_minor, report.maintenance_minor, report.initial_minor) == (
        7_500 * USDC,
        7_000 * USDC,
        8_750 * USDC,
    )
    assert not report.meets_initial
    assert not report.is_liquidatable
    run_table(
        [
            (trade("l2", "lev", "bob", 100, 8_750_000), "margin_insufficient"),  # adds risk
            (trade("l3", "bob", "lev", 400, 8_750_000), OK),  # cuts risk
            (trade("l4", "lev", "bob", 10, 8_750_000), OK),  # back above initial: free
            (trade("l5", "lev", "bob", 500, 8_750_000), "margin_insufficient"),
        ],
        state=state,
    )


def test_btc_collateral_backs_positions_and_its_withdrawal_is_checked():
    """Counts BTC at its index less the haircut, and refuses a withdrawal that breaches."""
    state = market(
        [
            (open_account("coin"), OK),
            (deposit("coin", BTC, asset="BTC"), OK),
            (deposit("coin", 100 * USDC), OK),
            # 1 BTC at 90,000 less 10 % = 81,000 USDC of collateral: margin for 8 BTC of perps.
            (trade("c1", "coin", "bob", 8_000, 9_000_000), OK),
            (withdraw("coin", BTC // 2, asset="BTC"), "margin_insufficient"),
            (withdraw("coin", BTC // 100, asset="BTC"), OK),
        ]
    )
    report = sk.margin_report(state, "coin")
    assert report is not None
    assert report.collateral_minor == 100 * USDC + (99 * BTC // 100) * 9_000_000 * 10_000 * 9 // (
        10 * BTC
    )


def test_the_margin_cache_is_reused_until_an_input_changes():
    """Reuses an account's report while nothing it reads changes; recomputes after."""
    state = market([(trade("m1", "alice", "bob", 100, 9_000_000), OK)])
    alice = state.accounts["alice"]
    entry = state.margins["alice"]
    assert entry.account is alice
    assert account_margin(state, alice) is entry.report  # cached: the same object
    moved = run_table([(price("BTC", 9_100_000, 5_000), OK)], state=state)
    assert account_margin(moved, moved.accounts["alice"]) is not entry.report
    eth = run_table([(price("ETH", 310_000, 5_000), OK)], state=state)
    assert account_margin(eth, eth.accounts["alice"]) is entry.report  # ETH is not an input


def test_a_stale_cache_entry_is_caught():
    """INV-MARGIN-CACHE-CONSISTENT: a cached report that differs from a fresh one is reported."""
    state = market([(trade("m1", "alice", "bob", 100, 9_000_000), OK)])
    entry = state.margins["alice"]
    forged = attrs.evolve(entry.report, initial_minor=entry.report.initial_minor - 1)
    bad = attrs.evolve(
        state,
        margins=state.margins.set("alice", MarginEntry(entry.account, entry.market_key, forged)),
    )
    assert entry.market_key == market_key(state, entry.account, state.instruments)
    found = {v.invariant for v in sk.check_invariants(bad)}
    assert found == {sk.InvariantId.MARGIN_CACHE_CONSISTENT}


def test_liquidatable_below_maintenance():
    """Flags an account whose equity fell below maintenance, for the waterfall."""
    state = market(
        [
            (open_account("thin"), OK),
            (deposit("thin", 9_000 * USDC), OK),
            (trade("t1", "thin", "bob", 1_000, 9_000_000), OK),
        ]
    )
    assert not sk.is_liquidatable(state, "thin")
    crashed = run_table([(price("BTC", 8_300_000, 2_000), OK)], state=state)
    assert sk.is_liquidatable(crashed, "thin")
    assert not sk.is_liquidatable(crashed, "nobody")


def test_a_fully_paid_long_option_needs_nothing_more():
    """Accepts buying an option with the last of the cash: its loss is bounded by its value."""
    call = sk.ListInstrument(
        principal="operator",
        instrument="BTC-C-95K",
        kind=sk.InstrumentKind.OPTION,
        underlying="BTC",
        settlement_asset="USDC",
        multiplier_minor=10,
        expiry_ms=30 * 86_400_000,
        strike_ticks=9_500_000,
        option_type=sk.OptionType.CALL,
    )
    # Bought at the model value (about 3,850 USDC per BTC): 100 lots for exactly the cash.
    state = market([(call, OK), (volatility("BTC", 600_000, 2_000), OK)])
    value = account_margin(state, state.accounts["bob"]).equity_minor  # cash only so far
    assert value == 1_000_000 * USDC
    run_table(
        [
            (open_account("buyer"), OK),
            (deposit("buyer", 100 * 385_000 * 10), OK),
            (trade("o1", "buyer", "bob", 100, 385_000, instrument="BTC-C-95K"), OK),
        ],
        state=state,
    )
