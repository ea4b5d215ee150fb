"""Expiry: every holder settled at once at the fixed TWAP; shortfalls go down the waterfall."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import settlekernel as sk
from scenario import (
    OK,
    USDC,
    balances,
    deposit,
    expire,
    fund_insurance,
    mark,
    market,
    open_account,
    position,
    price,
    report,
    run_table,
    trade,
    walk,
)

FUT = "BTC-FUT"  # expires at 10,000 ms
CALL = "BTC-C-100K"  # strike 100,000.00, expires at 10,000 ms


def settle(state: sk.State, instrument: str = FUT) -> sk.State:
    """Fix the settlement price (an index after expiry), then expire the instrument."""
    return run_table(
        [(price("BTC", state.prices["BTC"].price_ticks, 11_000), OK), (expire(instrument), OK)],
        state,
    )


def test_a_future_settles_everyone_at_the_twap_and_closes():
    """Pays the TWAP difference to every holder, closes every position, refuses more trading."""
    state = market(
        [
            (open_account("carol"), OK),
            (deposit("carol", 100_000 * USDC), OK),
            (trade("t1", "alice", "bob", 1_000, 9_000_000, instrument=FUT), OK),
            (trade("t2", "carol", "bob", 500, 9_000_000, instrument=FUT), OK),
            (price("BTC", 9_300_000, 4_000), OK),
        ]
    )
    cash = {a: balances(state, a)["USDC"] for a in ("alice", "bob", "carol")}
    state = settle(state)
    # The TWAP over [1 s, 10 s]: 9.0M for 3 s and 9.3M for 6 s.
    twap = (9_000_000 * 3_000 + 9_300_000 * 6_000) // 9_000
    assert state.settlement_prices["BTC@10000"] == twap
    assert state.instruments[FUT].settlement_ticks == twap
    gain = (twap - 9_000_000) * 10
    assert balances(state, "alice")["USDC"] == cash["alice"] + 1_000 * gain
    assert balances(state, "carol")["USDC"] == cash["carol"] + 500 * gain
    assert balances(state, "bob")["USDC"] == cash["bob"] - 1_500 * gain
    assert all(position(state, a, FUT) is None for a in ("alice", "bob", "carol"))
    assert state.open_interest[FUT] == 0
    assert len(state.holders[FUT]) == 0
    run_table(
        [
            (expire(FUT), "instrument_already_settled"),
            (mark(FUT), "instrument_already_settled"),
            (trade("t3", "alice", "bob", 1, 9_000_000, instrument=FUT), "instrument_expired"),
        ],
        state,
    )


def test_guards():
    """Refuses expiry by others, of perpetuals, early, without a fixed price or on a halt."""
    state = market([(trade("t1", "alice", "bob", 10, 9_000_000, instrument=FUT), OK)])
    run_table(
        [
            (expire(FUT, principal="alice"), "principal_not_operator"),
            (expire("NOPE"), "instrument_unknown"),
            (expire("BTC-PERP"), "instrument_not_expired"),
            (expire(FUT), "instrument_not_expired"),
            # ETH moves the clock past BTC-FUT's expiry, but no BTC index after it exists.
            (price("ETH", 300_000, 11_000), OK),
            (expire(FUT), "settlement_price_unavailable"),
            # A quorum halts BTC at 12 s: the price is fixed (from the history) but a halt
            # admits no settlement.
            (report("BTC", 9_000_000, 10_500, "oracle-a"), OK),
            (report("BTC", 9_000_000, 10_500, "oracle-b"), OK),
            (price("BTC", 0, 12_000), OK),
            (expire(FUT), "oracle_not_admissible"),
            (price("BTC", 9_000_000, 13_000), OK),
            (expire(FUT), OK),
        ],
        state,
    )


def test_options_pay_their_intrinsic_value():
    """Pays a call's holder max(S - K, 0) per unit from its writer; an unused put nothing."""
    put = sk.ListInstrument(
        principal="operator",
        instrument="BTC-P-80K",
        kind=sk.InstrumentKind.OPTION,
        underlying="BTC",
        settlement_asset="USDC",
        multiplier_minor=10,
        expiry_ms=10_000,
        strike_ticks=8_000_000,
        option_type=sk.OptionType.PUT,
    )
    state = market(
        [
            (put, OK),
            (trade("t1", "alice", "bob", 100, 300_000, instrument=CALL), OK),
            (trade("t2", "alice", "bob", 100, 50_000, instrument="BTC-P-80K"), OK),
            *walk("BTC", 10_500_000, 2_000),
        ]
    )
    cash = balances(state, "alice")["USDC"], balances(state, "bob")["USDC"]
    state = run_table(
        [(price("BTC", 10_500_000, 11_000), OK), (expire(CALL), OK), (expire("BTC-P-80K"), OK)],
        state,
    )
    settlement = state.settlement_prices["BTC@10000"]
    assert settlement > 10_000_000
    payoff = 100 * (settlement - 10_000_000) * 10
    assert balances(state, "alice")["USDC"] == cash[0] + payoff
    assert balances(state, "bob")["USDC"] == cash[1] - payoff
    assert position(state, "alice", "BTC-P-80K") is None


def _thin_short(extra=()):
    """thin (10,000 USDC) sells 1 BTC of the future at 90,000 to alice; BTC then rallies."""
    return market(
        [
            (open_account("thin"), OK),
            (deposit("thin", 10_000 * USDC), OK),
            (open_account("carol"), OK),
            (deposit("carol", 100_000 * USDC), OK),
            (trade("t1", "alice", "thin", 600, 9_000_000, instrument=FUT), OK),
            (trade("t2", "carol", "thin", 400, 9_000_000, instrument=FUT), OK),
            *extra,
            *walk("BTC", 11_000_000, 1_500),
        ]
    )


def test_the_insurance_fund_covers_a_payer_who_cannot_pay():
    """Takes the shortfall from the insurance fund; the receivers are paid in full."""
    state = _thin_short([(fund_insurance(50_000 * USDC), OK)])
    alice, carol = balances(state, "alice")["USDC"], balances(state, "carol")["USDC"]
    state = settle(state)
    owed = 1_000 * (state.settlement_prices["BTC@10000"] - 9_000_000) * 10
    assert owed > 10_000 * USDC
    assert balances(state, "thin") == {}
    assert balances(state, "@insurance")["USDC"] == 50_000 * USDC - (owed - 10_000 * USDC)
    assert balances(state, "alice")["USDC"] == alice + owed * 600 // 1_000
    assert balances(state, "carol")["USDC"] == carol + owed * 400 // 1_000
    assert state.socialized_loss.get("USDC", 0) == 0


def test_an_empty_fund_socialises_the_rest_pro_rata():
    """Cuts each receiver in proportion to what it is due and records the loss."""
    state = _thin_short([(fund_insurance(1_000 * USDC), OK)])
    alice, carol = balances(state, "alice")["USDC"], balances(state, "carol")["USDC"]
    residue = balances(state, "@residue").get("USDC", 0)
    state = settle(state)
    owed = 1_000 * (state.settlement_prices["BTC@10000"] - 9_000_000) * 10
    loss = owed - 10_000 * USDC - 1_000 * USDC
    assert state.socialized_loss["USDC"] == loss
    assert balances(state, "@insurance") == {}
    cut_alice = -(-loss * (owed * 600 // 1_000) // owed)
    cut_carol = -(-loss * (owed * 400 // 1_000) // owed)
    assert balances(state, "alice")["USDC"] == alice + owed * 600 // 1_000 - cut_alice
    assert balances(state, "carol")["USDC"] == carol + owed * 400 // 1_000 - cut_carol
    assert balances(state, "@residue").get("USDC", 0) - residue == cut_alice + cut_carol - loss


def test_a_solvent_payer_short_of_cash_owes_the_fund_and_a_keeper_collects_it():
    """Nets the payer's whole account (SK-DEBT-1): no loss is socialised, the receivers claim.

    thin owes more than its USDC but holds BTC worth more than the rest: the fund advances
    what it has, thin owes the fund the rest and alice and carol claim it. A keeper then
    liquidates thin, which sells its BTC at the liquidation price; the proceeds repay the
    debt and the fund pays the claims, so the receivers end with all they were due.
    """
    state = _thin_short(
        [(deposit("thin", 10_000_000, asset="BTC"), OK), (fund_insurance(500 * USDC), OK)]
    )
    cash = {name: balances(state, name)["USDC"] for name in ("alice", "carol")}
    state = settle(state)
    owed = 1_000 * (state.settlement_prices["BTC@10000"] - 9_000_000) * 10
    thin = state.accounts["thin"]
    assert thin.debt_minor == owed - 10_000 * USDC
    assert thin.balance("BTC") == 10_000_000
    assert state.socialized_loss.get("USDC", 0) == 0
    assert balances(state, "@insurance").get("USDC", 0) == 0
    claims = state.accounts["alice"].claim_minor + state.accounts["carol"].claim_minor
    assert owed - (10_000 + 500) * USDC - 2 < claims <= owed - (10_000 + 500) * USDC
    state = run_table(
        [
            (open_account("keeper"), OK),
            (deposit("keeper", 50_000 * USDC), OK),
            (sk.Liquidate(principal="keeper", account="thin", liquidator="keeper"), OK),
        ],
        state,
    )
    assert state.accounts["thin"].debt_minor == 0
    assert state.accounts["alice"].claim_minor == state.accounts["carol"].claim_minor == 0
    for name, share in (("alice", 600), ("carol", 400)):
        received = balances(state, name)["USDC"] - cash[name]
        assert owed * share // 1_000 - 2 <= received <= owed * share // 1_000
    assert state.socialized_loss.get("USDC", 0) == 0


@given(
    quantities=st.lists(st.integers(1, 400), min_size=1, max_size=4),
    cash=st.lists(st.integers(1, 40_000), min_size=4, max_size=4),
    fund=st.integers(0, 20_000),
    target=st.sampled_from((7_000_000, 9_000_000, 11_000_000)),
)
def test_any_expiry_keeps_every_invariant(quantities, cash, fund, target):
    """Settles random books with random cash and fund: every step check holds."""
    rows = [(fund_insurance(fund * USDC + 1), OK)]
    for number, (lots, dollars) in enumerate(zip(quantities, cash, strict=False)):
        name = f"w{number}"
        rows += [
            (open_account(name), OK),
            (deposit(name, dollars * USDC), OK),
            (
                trade(
                    f"t{number}",
                    name if number % 2 else "alice",
                    "bob" if number % 2 else name,
                    lots,
                    9_000_000,
                    instrument=FUT,
                ),
                None,
            ),
        ]
    state = market()
    for event, _ in rows:
        outcome = sk.step(state, event)
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
    state = run_table(walk("BTC", target, 1_500), state)
    settled = settle(state)
    assert settled.open_interest[FUT] == 0
