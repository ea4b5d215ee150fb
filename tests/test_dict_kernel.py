"""Differential tests: the kernel and bench/dict_kernel.py's DictKernel agree event by event.

DictKernel is an independent mutable-dict implementation of spec/30-transitions.md (the
benchmark's baseline). Both replay the same streams; every event must get the same decision
(accepted, or the same ``Reason``) and the final balances, positions, custody, instrument
references, open interest, holders, prices, clock and trade registry must be equal.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import attrs
import pytest

import settlekernel as sk
from scenario import (
    BTC_CALL,
    BTC_FUT,
    BTC_PERP,
    ETH_PERP,
    OK,
    USDC,
    deposit,
    mark,
    price,
    trade,
    transfer,
    withdraw,
)

# bench/ is a directory of scripts, not a package: import its modules by path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from compare import (
    decision_differences,
    dict_view,
    kernel_view,
    view_differences,
)
from dict_kernel import DictKernel
from workload import generate

K = sk.InstrumentKind
DEFAULT_RULES = sk.RuleSet.default()
# Tight limits and steep margin, so that generated streams also reach the limit and margin
# reasons, not only the happy path.
TIGHT_RULES = attrs.evolve(
    DEFAULT_RULES,
    positions_per_account_max=3,
    position_lots_max=300,
    underlyings=tuple(
        attrs.evolve(
            u, scan_range_ppm=400_000, im_multiplier_ppm=2_000_000, short_option_minimum_ppm=500_000
        )
        for u in DEFAULT_RULES.underlyings
    ),
)


def flatten(table):
    """Expand rows whose event is a tuple (a quorum of reports) into one row per event."""
    return [
        (event, expected)
        for events, expected in table
        for event in (events if isinstance(events, tuple) else (events,))
    ]


def replay_both(events, rules):
    """Step both implementations through ``events``; return both decision lists and states."""
    state = sk.genesis(rules)
    dict_kernel = DictKernel(rules)
    kernel_decisions, dict_decisions = [], []
    for event in events:
        outcome = sk.step(state, event)
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
            kernel_decisions.append(None)
        else:
            kernel_decisions.append(outcome.reason)
        dict_decisions.append(dict_kernel.apply(event))
    return kernel_decisions, dict_decisions, state, dict_kernel


def assert_agree(events, rules):
    """Assert decision-by-decision and final-state agreement; return the kernel's decisions."""
    kernel_decisions, dict_decisions, state, dict_kernel = replay_both(events, rules)
    problems = decision_differences(events, kernel_decisions, dict_decisions)
    problems += view_differences(kernel_view(state), dict_view(dict_kernel))
    assert problems == [], "\n".join(problems)
    return kernel_decisions


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_generated_streams_agree(seed):
    """The kernel and DictKernel agree on every event and the final state of a mixed stream."""
    events = generate(3_000, 50, seed)
    decisions = assert_agree(events, DEFAULT_RULES)
    outcomes = Counter(decisions)
    # The stream is mostly honest but exercises a spread of rejections and marks.
    assert outcomes[None] >= 0.85 * len(events)
    assert len(outcomes) >= 10
    marks = [d for e, d in zip(events, decisions, strict=True) if type(e) is sk.VariationMargin]
    assert marks.count(None) >= 4


@pytest.mark.parametrize("seed", [5, 6])
def test_generated_streams_agree_under_tight_rules(seed):
    """The two agree when tight limits and steep margin reject much of a generated stream."""
    events = generate(3_000, 50, seed)
    outcomes = Counter(assert_agree(events, TIGHT_RULES))
    assert outcomes[sk.Reason.POSITION_TOO_LARGE] > 0
    assert outcomes[sk.Reason.POSITION_COUNT_EXCEEDED] > 0
    assert outcomes[sk.Reason.MARGIN_INSUFFICIENT] > 0


def test_workload_is_deterministic():
    """The generator returns the same stream for the same seed and a different one otherwise."""
    assert generate(2_000, 20, 9) == generate(2_000, 20, 9)
    assert generate(2_000, 20, 9) != generate(2_000, 20, 10)
    assert len(generate(2_000, 20, 9)) == 2_000


def listing(instrument, kind, **fields):
    """Return a ListInstrument with BTC/USDC defaults and the given fields."""
    spec = dict(
        principal="operator",
        instrument=instrument,
        kind=kind,
        underlying="BTC",
        settlement_asset="USDC",
        multiplier_minor=10,
    )
    spec.update(fields)
    return sk.ListInstrument(**spec)


ETH_PUT = listing(
    "ETH-P-280",
    K.OPTION,
    underlying="ETH",
    multiplier_minor=100,
    expiry_ms=100_000,
    strike_ticks=280_000,
    option_type=sk.OptionType.PUT,
)
BTC_CALL_LONG = attrs.evolve(BTC_CALL, expiry_ms=100_000)
# Limits small enough to reach every limit reason in a few rows.
TABLE_RULES = attrs.evolve(
    DEFAULT_RULES,
    accounts_max=4,
    instruments_max=5,
    positions_per_account_max=3,
    position_lots_max=1_000,
)
TABLE = [
    # Accounts.
    (sk.OpenAccount(principal="alice", account="alice-1"), OK),
    (sk.OpenAccount(principal="alice", account="alice-2"), OK),
    (sk.OpenAccount(principal="bob", account="bob-1"), OK),
    (sk.OpenAccount(principal="carol", account="carol-1"), OK),
    (sk.OpenAccount(principal="dave", account="dave-1"), "account_limit_reached"),
    (sk.OpenAccount(principal="bob", account="alice-1"), "account_exists"),
    # Collateral in.
    (deposit("alice-1", 1_000_000 * USDC), OK),
    (deposit("bob-1", 1_000_000 * USDC, principal="operator"), OK),
    (deposit("carol-1", 1, principal="bob"), "principal_not_owner"),
    (deposit("carol-1", 2_000 * USDC), OK),
    (deposit("carol-1", 1, asset="DOGE"), "asset_unknown"),
    (deposit("ghost-1", 1), "account_unknown"),
    (deposit("carol-1", 2**96 - 1, asset="BTC"), OK),
    (deposit("carol-1", 1, asset="BTC"), "custody_limit_exceeded"),
    (deposit("carol-1", 0), "amount_not_positive"),
    (deposit("carol-1", 2**96), "amount_too_large"),
    (withdraw("carol-1", 2**96 - 1, asset="BTC"), OK),
    # Listing.
    (trade("t1", "alice-1", "bob-1", 10, 9_000_000), "instrument_unknown"),
    (BTC_PERP, OK),
    (attrs.evolve(BTC_PERP, principal="alice"), "principal_not_operator"),
    (BTC_PERP, "instrument_exists"),
    (listing("X-1", K.PERPETUAL, expiry_ms=5_000), "instrument_spec_invalid"),
    (listing("X-2", K.FUTURE), "instrument_spec_invalid"),
    (listing("X-3", K.PERPETUAL, multiplier_minor=0), "instrument_spec_invalid"),
    (listing("X-4", K.OPTION, expiry_ms=9, strike_ticks=0), "price_not_positive"),
    # Only the valuation asset settles (SK-LIST-3, modified in v2).
    (listing("X-5", K.PERPETUAL, settlement_asset="DOGE"), "instrument_spec_invalid"),
    (listing("X-6", K.PERPETUAL, underlying="DOGE"), "underlying_unknown"),
    (trade("t1", "alice-1", "bob-1", 10, 9_000_000), "price_unavailable"),
    (mark("BTC-PERP"), "price_unavailable"),
    # Prices.
    (price("BTC", 9_000_000, 1_000), OK),
    (price("BTC", 9_000_000, 1_000), "oracle_timestamp_not_newer"),
    (price("BTC", 9_000_000, 1_001, principal="alice"), "principal_not_oracle"),
    (price("DOGE", 1, 1_001), "underlying_unknown"),
    (price("ETH", 300_000, 1_000), OK),
    (
        sk.OracleVolatility(
            principal="oracle-a", underlying="BTC", volatility_ppm=600_000, timestamp_ms=1_000
        ),
        OK,
    ),
    (
        sk.OracleVolatility(
            principal="oracle-a", underlying="ETH", volatility_ppm=800_000, timestamp_ms=1_000
        ),
        OK,
    ),
    (
        sk.OracleVolatility(
            principal="oracle-a", underlying="ETH", volatility_ppm=800_000, timestamp_ms=1_000
        ),
        "oracle_timestamp_not_newer",
    ),
    (
        sk.OracleVolatility(
            principal="oracle-a", underlying="ETH", volatility_ppm=10**7 + 1, timestamp_ms=1_001
        ),
        "volatility_out_of_range",
    ),
    (BTC_FUT, OK),
    (BTC_CALL_LONG, OK),
    (ETH_PUT, OK),
    (ETH_PERP, OK),
    (listing("ETH-FUT", K.FUTURE, underlying="ETH", expiry_ms=50_000), "instrument_limit_reached"),
    # Trades and their replays.
    (trade("t1", "alice-1", "bob-1", 10, 9_000_000, buyer_fee_ppm=100, seller_fee_ppm=250), OK),
    (
        trade("t1", "alice-1", "bob-1", 10, 9_000_000, buyer_fee_ppm=100, seller_fee_ppm=250),
        "trade_exists",
    ),
    (trade("t1", "bob-1", "bob-1", 10, 9_000_000), "trade_exists_with_different_buyer"),
    (
        trade("t1", "alice-1", "bob-1", 10, 9_000_000, buyer_fee_ppm=100),
        "trade_exists_with_different_seller_fee_rate",
    ),
    (trade("t1", "alice-1", "bob-1", 10, 9_000_000, principal="mallory"), "principal_not_matcher"),
    (trade("t2", "alice-1", "alice-1", 1, 9_000_000), "self_trade"),
    (trade("t2", "alice-1", "bob-1", 0, 9_000_000), "quantity_not_positive"),
    (trade("t2", "alice-1", "bob-1", 1_001, 9_000_000), "quantity_too_large"),
    (trade("t2", "alice-1", "bob-1", 1, 0), "price_not_positive"),
    (trade("t2", "alice-1", "bob-1", 1, 9_000_000, seller_fee_ppm=10_001), "fee_rate_out_of_range"),
    (trade("t2", "alice-1", "ghost-1", 1, 9_000_000), "account_unknown"),
    (trade("t2", "alice-1", "bob-1", 995, 9_000_000), "position_too_large"),
    (trade("t2", "alice-1", "bob-1", 5, 301_000, instrument="ETH-PERP"), OK),
    (trade("t3", "alice-1", "bob-1", 1, 9_010_000, instrument="BTC-FUT"), OK),
    (
        trade("t4", "alice-1", "bob-1", 1, 150_000, instrument="BTC-C-100K"),
        "position_count_exceeded",
    ),
    # Margin and funds: carol is small.
    (trade("t4", "carol-1", "bob-1", 300, 9_000_000), "margin_insufficient"),
    (trade("t4", "carol-1", "bob-1", 200, 9_000_000), OK),
    (trade("t5", "carol-1", "bob-1", 10, 9_100_000), OK),
    (trade("t6", "carol-1", "bob-1", 1, 300_000_000), "insufficient_funds"),
    # An 11 % gap: the index moves 5 % per accepted update (SK-ORACLE-3), so two rounds.
    (price("BTC", 8_000_000, 2_000), OK),
    (price("BTC", 8_000_000, 2_500), OK),
    # t5 traded 1.1 % over the index: the mark keeps a 1 % premium (SK-MARK-1).
    (price("BTC", 7_950_000, 3_000), OK),
    (mark("BTC-PERP"), "variation_margin_shortfall"),
    (withdraw("carol-1", 1), "margin_insufficient"),
    (deposit("carol-1", 10_000 * USDC), OK),
    (mark("BTC-PERP"), OK),
    (mark("BTC-PERP", principal="alice"), "principal_not_operator"),
    (mark("NOPE"), "instrument_unknown"),
    (mark("BTC-C-100K"), "instrument_not_marked_to_market"),
    # Transfers and withdrawals.
    (withdraw("alice-1", 2_000_000 * USDC), "insufficient_funds"),
    (withdraw("alice-1", USDC, principal="bob"), "principal_not_owner"),
    (withdraw("alice-1", USDC, principal="operator"), "principal_not_owner"),
    (transfer("alice-1", "alice-1", USDC), "transfer_to_same_account"),
    (transfer("alice-1", "bob-1", USDC), "transfer_owners_differ"),
    (transfer("alice-1", "alice-2", USDC, principal="bob"), "principal_not_owner"),
    (transfer("alice-1", "alice-2", USDC, asset="DOGE"), "asset_unknown"),
    (transfer("alice-1", "ghost-1", USDC), "account_unknown"),
    (transfer("alice-1", "alice-2", 1_000 * USDC), OK),
    (transfer("alice-2", "alice-1", 2_000 * USDC), "insufficient_funds"),
    # Options: alice-2 writes a call and a put to carol; premiums, short margin, intrinsic.
    (trade("t7", "carol-1", "alice-2", 10, 200_000, instrument="BTC-C-100K"), OK),
    (trade("t8", "carol-1", "alice-2", 10, 5_000, instrument="ETH-P-280"), OK),
    (
        trade("t9", "bob-1", "alice-2", 500, 200_000, instrument="BTC-C-100K"),
        "position_count_exceeded",
    ),
    # Portfolio margin: alice-2 holds 1,025 USDC against 30.95 USDC of initial margin.
    (withdraw("alice-2", 995 * USDC), "margin_insufficient"),
    (withdraw("alice-2", 990 * USDC), OK),
    # Writing 100 more calls adds a 1 % short-option contingency of 80 USDC: too much now.
    (trade("t9", "carol-1", "alice-2", 100, 1, instrument="BTC-C-100K"), "margin_insufficient"),
    # Buying 5 of the calls back reduces her risk, whatever her margin.
    (trade("t9", "alice-2", "carol-1", 5, 1, instrument="BTC-C-100K"), OK),
    # A 33 % ETH gap takes four rounds of two reports at 6 % per accepted update.
    (price("ETH", 200_000, 2_000), OK),
    (price("ETH", 200_000, 2_100), OK),
    (price("ETH", 200_000, 2_200), OK),
    (price("ETH", 200_000, 2_300), OK),
    # Closing a position, expiry, and marks on every linear instrument.
    (trade("t10", "bob-1", "alice-1", 10, 8_000_000), OK),
    (price("BTC", 8_100_000, 20_000), OK),
    # Older than the clock but newer than ETH's last report: accepted, the clock stays.
    (price("ETH", 200_000, 3_000), OK),
    (trade("t11", "bob-1", "alice-1", 1, 8_100_000, instrument="BTC-FUT"), "instrument_expired"),
    (mark("BTC-FUT"), OK),
    (mark("BTC-PERP"), OK),
    (mark("ETH-PERP"), OK),
    # Shape.
    (
        sk.Deposit(principal=1, account="alice-1", asset="USDC", amount_minor=1),
        "field_type_invalid",
    ),
    (sk.Deposit(principal="alice", account="@fees", asset="USDC", amount_minor=1), "id_invalid"),
    (
        sk.Deposit(principal="alice", account="alice-1", asset="USDC", amount_minor=True),
        "field_type_invalid",
    ),
    (object(), "event_type_unknown"),
]


def test_table_agrees_with_the_spec():
    """Each row of a hand-written table gets its expected outcome from both implementations."""
    table = flatten(TABLE)
    events = [event for event, _ in table]
    kernel_decisions, dict_decisions, state, dict_kernel = replay_both(events, TABLE_RULES)
    for number, ((event, expected), got_kernel, got_dict) in enumerate(
        zip(table, kernel_decisions, dict_decisions, strict=True), start=1
    ):
        labels = [OK if d is None else d.value for d in (got_kernel, got_dict)]
        assert labels == [expected, expected], f"row {number}: {event!r}: got {labels}"
    problems = view_differences(kernel_view(state), dict_view(dict_kernel))
    assert problems == [], "\n".join(problems)
    # The closed BTC-PERP position is gone from alice-1 and from the holders.
    assert "BTC-PERP" not in state.accounts["alice-1"].positions
    assert "alice-1" not in state.holders["BTC-PERP"]


BOUNDARY_TABLE = [
    (sk.OpenAccount(principal="alice", account="alice-1"), OK),
    (sk.OpenAccount(principal="alice", account="alice-2"), OK),
    (sk.OpenAccount(principal="bob", account="bob-1"), OK),
    (deposit("bob-1", 1_000_000 * USDC), OK),
    (BTC_PERP, OK),
    (BTC_CALL, OK),
    (price("BTC", 9_000_000, 1_000), OK),
    (
        sk.OracleVolatility(
            principal="oracle-a", underlying="BTC", volatility_ppm=600_000, timestamp_ms=1_000
        ),
        OK,
    ),
    # Premium 7 x 200,003 x 10 = 14,000,210; fee ceil(14,000,210 x 333 / 1e6) = 4,663, of
    # which 1 is rounding residue: 14,004,873 in all, one minor unit more than deposited.
    # (BTC collateral carries the margin, so the USDC cash boundary is exact.)
    (deposit("alice-1", 1_000_000, asset="BTC"), OK),
    (deposit("alice-1", 14_004_872), OK),
    (
        trade("b1", "alice-1", "bob-1", 7, 200_003, instrument="BTC-C-100K", buyer_fee_ppm=333),
        "insufficient_funds",
    ),
    (deposit("alice-1", 1), OK),
    (trade("b1", "alice-1", "bob-1", 7, 200_003, instrument="BTC-C-100K", buyer_fee_ppm=333), OK),
    (withdraw("alice-1", 1), "insufficient_funds"),
    # Initial margin on 1 lot at the index: ceil(9,000,000 x 10 x 10 %) = 9,000,000 exactly.
    (deposit("alice-2", 8_999_999), OK),
    (trade("b2", "alice-2", "bob-1", 1, 9_000_000), "margin_insufficient"),
    (deposit("alice-2", 1), OK),
    (trade("b2", "alice-2", "bob-1", 1, 9_000_000), OK),
    (withdraw("alice-2", 1), "margin_insufficient"),
    (transfer("alice-2", "alice-1", 1), "margin_insufficient"),
]


def test_boundaries_agree():
    """Balances and margin exactly at their limits get the same outcome from both."""
    table = flatten(BOUNDARY_TABLE)
    events = [event for event, _ in table]
    kernel_decisions, dict_decisions, state, dict_kernel = replay_both(events, DEFAULT_RULES)
    for number, ((event, expected), got_kernel, got_dict) in enumerate(
        zip(table, kernel_decisions, dict_decisions, strict=True), start=1
    ):
        labels = [OK if d is None else d.value for d in (got_kernel, got_dict)]
        assert labels == [expected, expected], f"row {number}: {event!r}: got {labels}"
    assert view_differences(kernel_view(state), dict_view(dict_kernel)) == []
    # The buyer spent its last minor unit: a zero balance is removed, not stored.
    assert dict(state.accounts["alice-1"].balances) == {"BTC": 1_000_000}
    assert dict(state.accounts["@residue"].balances) == {"USDC": 1}
