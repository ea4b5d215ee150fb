"""Table-style scenario tests: one line per event with its expected reason."""

from __future__ import annotations

import settlekernel as sk
from scenario import (
    BTC_CALL,
    BTC_PERP,
    OK,
    USDC,
    balances,
    deposit,
    mark,
    market,
    open_account,
    position,
    price,
    run_table,
    trade,
    transfer,
    volatility,
    withdraw,
)
from settlekernel.core.units import FEE_ACCOUNT, RESIDUE_ACCOUNT, VALUE_LIMIT


class TestCollateral:
    def test_accounts_deposits_withdrawals_and_transfers(self):
        """Applies the collateral rules in order and keeps every balance exact."""
        state = run_table(
            [
                (open_account("alice", "alice-1"), OK),
                (open_account("alice", "alice-1"), "account_exists"),
                (open_account("alice", "alice-2"), OK),
                (open_account("bob", "bob-1"), OK),
                (open_account("bob", "@fees"), "id_invalid"),
                (deposit("alice-1", 100 * USDC), OK),
                (deposit("alice-1", 1, asset="DOGE"), "asset_unknown"),
                (deposit("nobody", 1), "account_unknown"),
                (deposit("alice-1", 0), "amount_not_positive"),
                (deposit("alice-1", -5), "amount_not_positive"),
                (deposit("alice-1", VALUE_LIMIT), "amount_too_large"),
                (deposit("alice-1", 1, principal="bob"), "principal_not_owner"),
                (deposit("alice-1", 7, principal="operator"), OK),
                (deposit("alice-1", VALUE_LIMIT - 1), "custody_limit_exceeded"),
                (withdraw("alice-1", 101 * USDC), "insufficient_funds"),
                (withdraw("alice-1", 1, principal="bob"), "principal_not_owner"),
                (withdraw("alice-1", 1, principal="operator"), "principal_not_owner"),
                (withdraw("alice-1", 7), OK),
                (transfer("alice-1", "alice-2", 40 * USDC), OK),
                (transfer("alice-1", "alice-1", 1), "transfer_to_same_account"),
                (transfer("alice-1", "bob-1", 1), "transfer_owners_differ"),
                (transfer("alice-1", "alice-2", 1, principal="bob"), "principal_not_owner"),
                (transfer("alice-1", "ghost", 1), "account_unknown"),
                (transfer("alice-1", "alice-2", 61 * USDC), "insufficient_funds"),
                (withdraw("alice-2", 40 * USDC), OK),
            ]
        )
        assert balances(state, "alice-1") == {"USDC": 60 * USDC}
        assert balances(state, "alice-2") == {}
        assert dict(state.custody) == {"USDC": 60 * USDC}

    def test_withdraw_to_zero_removes_the_balance(self):
        """Stores no zero balance, so equal content gives an equal root."""
        state = run_table([(open_account("a"), OK), (deposit("a", 5), OK), (withdraw("a", 5), OK)])
        fresh = run_table([(open_account("a"), OK)])
        assert sk.state_root(state) == sk.state_root(fresh)


class TestMarkets:
    def test_listing_rules(self):
        """Accepts each instrument kind only with the fields its kind needs."""
        K = sk.InstrumentKind
        base = {
            "principal": "operator",
            "underlying": "BTC",
            "settlement_asset": "USDC",
            "multiplier_minor": 10,
        }
        run_table(
            [
                (BTC_PERP, OK),
                (BTC_PERP, "instrument_exists"),
                (
                    sk.ListInstrument(
                        **{**base, "principal": "mallory"}, instrument="X", kind=K.PERPETUAL
                    ),
                    "principal_not_operator",
                ),
                (
                    sk.ListInstrument(**base, instrument="F", kind=K.FUTURE),
                    "instrument_spec_invalid",
                ),
                (
                    sk.ListInstrument(**base, instrument="P", kind=K.PERPETUAL, expiry_ms=5),
                    "instrument_spec_invalid",
                ),
                (
                    sk.ListInstrument(
                        **base, instrument="O", kind=K.OPTION, expiry_ms=5, strike_ticks=1
                    ),
                    "instrument_spec_invalid",
                ),
                (
                    sk.ListInstrument(
                        **base,
                        instrument="O",
                        kind=K.OPTION,
                        expiry_ms=5,
                        strike_ticks=0,
                        option_type=sk.OptionType.PUT,
                    ),
                    "price_not_positive",
                ),
                (
                    sk.ListInstrument(
                        **{**base, "multiplier_minor": 0}, instrument="M", kind=K.PERPETUAL
                    ),
                    "instrument_spec_invalid",
                ),
                (
                    sk.ListInstrument(
                        **{**base, "underlying": "DOGE"}, instrument="D", kind=K.PERPETUAL
                    ),
                    "underlying_unknown",
                ),
                (
                    sk.ListInstrument(
                        **{**base, "settlement_asset": "EUR"}, instrument="E", kind=K.PERPETUAL
                    ),
                    # Modified in v2: only the valuation asset settles (SK-LIST-3).
                    "instrument_spec_invalid",
                ),
                (price("BTC", 9_000_000, 1_000), OK),
                (
                    sk.ListInstrument(**base, instrument="F", kind=K.FUTURE, expiry_ms=1_000),
                    "instrument_spec_invalid",
                ),
                (sk.ListInstrument(**base, instrument="F", kind=K.FUTURE, expiry_ms=1_001), OK),
            ]
        )

    def test_oracle_rules(self):
        """Accepts only newer reports per source, within bounds, for known underlyings."""
        state = run_table(
            [
                (price("BTC", 9_000_000, 1_000), OK),
                (price("BTC", 9_000_001, 1_000), "oracle_timestamp_not_newer"),
                (price("BTC", 9_000_001, 999), "oracle_timestamp_not_newer"),
                (price("BTC", 9_000_001, 1_001, principal="mallory"), "principal_not_oracle"),
                (price("BTC", -1, 2_000), "price_not_positive"),
                (price("BTC", 10**15 + 1, 2_000), "price_too_large"),
                (price("BTC", 1, -1), "timestamp_out_of_range"),
                (price("DOGE", 1, 2_000), "underlying_unknown"),
                (price("ETH", 300_000, 500), OK),
            ]
        )
        assert state.clock_ms == 1_000
        assert state.prices["ETH"].timestamp_ms == 500


class TestTrades:
    def test_linear_trade_settles_against_the_reference(self):
        """Books both sides at the reference and pays the price difference in cash."""
        state = market(
            [
                (trade("t1", "alice", "bob", 1_000, 9_000_000), OK),
                (trade("t2", "bob", "alice", 400, 9_010_000), OK),
            ]
        )
        # t1 sets BTC-PERP's reference to 9,000,000; t2 at 9,010,000 costs bob
        # 400 lots x 10,000 ticks x 10 = 40,000,000 minor, paid to alice.
        assert position(state, "alice", "BTC-PERP") == (600, 9_000_000)
        assert position(state, "bob", "BTC-PERP") == (-600, 9_000_000)
        assert balances(state, "alice") == {"USDC": 1_000_000 * USDC + 40_000_000}
        assert balances(state, "bob") == {"USDC": 1_000_000 * USDC - 40_000_000}
        assert state.open_interest["BTC-PERP"] == 600

    def test_option_trade_pays_the_premium(self):
        """Pays premium = lots x price x multiplier from buyer to seller, atomically."""
        state = market([(trade("o1", "alice", "bob", 100, 250_000, instrument="BTC-C-100K"), OK)])
        assert position(state, "alice", "BTC-C-100K") == (100, 0)
        assert balances(state, "bob") == {"USDC": 1_000_000 * USDC + 250_000_000}

    def test_fees_round_up_and_the_dust_goes_to_the_residue(self):
        """Charges ceil(notional x rate), credits the floor as fees and 1 unit as dust."""
        # Notional 7 lots x 9,000,001 ticks x 10 = 630,000,070; x 333 ppm = 209,790.02331.
        state = market(
            [(trade("f1", "alice", "bob", 7, 9_000_001, buyer_fee_ppm=333, seller_fee_ppm=1), OK)]
        )
        assert balances(state, FEE_ACCOUNT) == {"USDC": 209_790 + 630}
        assert balances(state, RESIDUE_ACCOUNT) == {"USDC": 2}
        assert balances(state, "alice") == {"USDC": 1_000_000 * USDC - 209_791}
        assert balances(state, "bob") == {"USDC": 1_000_000 * USDC - 631}

    def test_exactly_once(self):
        """Settles a trade id once; a replay says exists or names the differing field."""
        first = trade("t1", "alice", "bob", 10, 9_000_000, buyer_fee_ppm=5)
        state = market(
            [
                (first, OK),
                (first, "trade_exists"),
                (
                    trade("t1", "alice", "bob", 11, 9_000_000, buyer_fee_ppm=5),
                    "trade_exists_with_different_quantity",
                ),
                (
                    trade("t1", "bob", "alice", 10, 9_000_000, buyer_fee_ppm=5),
                    "trade_exists_with_different_buyer",
                ),
                (
                    trade("t1", "alice", "bob", 10, 9_000_000, buyer_fee_ppm=6),
                    "trade_exists_with_different_buyer_fee_rate",
                ),
                (
                    trade("t1", "alice", "bob", 10, 9_000_001, seller_fee_ppm=9),
                    "trade_exists_with_different_price",
                ),
                (
                    trade("t1", "alice", "bob", 10, 9_000_000, instrument="ETH-PERP"),
                    "trade_exists_with_different_instrument",
                ),
            ]
        )
        assert position(state, "alice", "BTC-PERP") == (10, 9_000_000)

    def test_trade_guards(self):
        """Refuses unauthorised, malformed, self, unknown, expired and unpriced trades."""
        run_table(
            [
                (
                    trade("t1", "alice", "bob", 1, 9_000_000, principal="alice"),
                    "principal_not_matcher",
                ),
                (trade("t1", "alice", "bob", 0, 9_000_000), "quantity_not_positive"),
                (trade("t1", "alice", "bob", 10**12 + 1, 9_000_000), "quantity_too_large"),
                (trade("t1", "alice", "bob", 1, 0), "price_not_positive"),
                (trade("t1", "alice", "bob", 1, 1, buyer_fee_ppm=10_001), "fee_rate_out_of_range"),
                (trade("t1", "alice", "bob", 1, 1, seller_fee_ppm=-1), "fee_rate_out_of_range"),
                (trade("t1", "alice", "alice", 1, 9_000_000), "self_trade"),
                (
                    trade("t1", "alice", "bob", 1, 9_000_000, instrument="NOPE"),
                    "instrument_unknown",
                ),
                (trade("t1", "alice", "ghost", 1, 9_000_000), "account_unknown"),
                (price("BTC", 9_000_000, 10_000), OK),
                (
                    trade("t1", "alice", "bob", 1, 9_000_000, instrument="BTC-FUT"),
                    "instrument_expired",
                ),
            ],
            state=market(),
        )
        unpriced = run_table(
            [
                (open_account("a"), OK),
                (open_account("b"), OK),
                (BTC_PERP, OK),
            ]
        )
        run_table([(trade("t1", "a", "b", 1, 1), "price_unavailable")], state=unpriced)

    def test_margin_and_funds(self):
        """Refuses a trade the buyer cannot fund or margin; accepts one it can."""
        run_table(
            [
                (open_account("small"), OK),
                (deposit("small", 1_000 * USDC), OK),
                # 1 BTC at 90,000 needs 9,000 USDC of initial margin (10 %).
                (trade("t1", "small", "bob", 1_000, 9_000_000), "margin_insufficient"),
                (trade("t2", "small", "bob", 100, 9_000_000), OK),
                # A premium of 100 lots x 2,000,000 ticks x 10 = 2,000 USDC exceeds the cash.
                (
                    trade("t3", "small", "bob", 100, 2_000_000, instrument="BTC-C-100K"),
                    "insufficient_funds",
                ),
                (withdraw("small", 1_000 * USDC, principal="small"), "margin_insufficient"),
                (withdraw("small", 100 * USDC, principal="small"), OK),
            ],
            state=market(),
        )

    def test_position_limits(self):
        """Refuses the position beyond positions_per_account_max."""
        rules = sk.RuleSet.default()
        import attrs  # noqa: PLC0415

        tight = attrs.evolve(rules, positions_per_account_max=1)
        state = run_table(
            [
                (open_account("a"), OK),
                (open_account("b"), OK),
                (deposit("a", 10**6 * USDC), OK),
                (deposit("b", 10**6 * USDC), OK),
                (BTC_PERP, OK),
                (BTC_CALL, OK),
                (price("BTC", 9_000_000, 1), OK),
                (volatility("BTC", 500_000, 1), OK),
                (trade("t1", "a", "b", 1, 9_000_000), OK),
                (
                    trade("t2", "a", "b", 1, 1_000, instrument="BTC-C-100K"),
                    "position_count_exceeded",
                ),
                (trade("t3", "b", "a", 1, 9_000_000), OK),
                (trade("t4", "a", "b", 1, 1_000, instrument="BTC-C-100K"), OK),
            ],
            state=sk.genesis(tight),
        )
        assert position(state, "a", "BTC-PERP") is None


class TestVariationMargin:
    def test_marks_every_holder_and_nets_to_zero(self):
        """Moves qty x (mark - settled) x multiplier from shorts to longs and re-references."""
        state = market(
            [
                (open_account("carol"), OK),
                (deposit("carol", 1_000_000 * USDC), OK),
                (trade("t1", "alice", "bob", 1_000, 9_000_000), OK),
                (trade("t2", "carol", "bob", 500, 9_000_000), OK),
                (price("BTC", 9_100_000, 2_000), OK),
                (mark("BTC-PERP"), OK),
                (mark("BTC-PERP"), OK),
                (mark("BTC-C-100K"), "instrument_not_marked_to_market"),
                (mark("NOPE"), "instrument_unknown"),
                (mark("BTC-PERP", principal="alice"), "principal_not_operator"),
            ]
        )
        gain = 100_000 * 10
        assert balances(state, "alice") == {"USDC": 1_000_000 * USDC + 1_000 * gain}
        assert balances(state, "carol") == {"USDC": 1_000_000 * USDC + 500 * gain}
        assert balances(state, "bob") == {"USDC": 1_000_000 * USDC - 1_500 * gain}
        assert position(state, "bob", "BTC-PERP") == (-1_500, 9_100_000)
        assert state.instruments["BTC-PERP"].reference_ticks == 9_100_000

    def test_refuses_a_mark_a_holder_cannot_pay(self):
        """Rejects the whole mark when one loser lacks the cash: nobody is paid partly."""
        state = market(
            [
                (open_account("thin"), OK),
                (deposit("thin", 10_000 * USDC), OK),
                (trade("t1", "alice", "thin", 1_000, 9_000_000), OK),
                # The index may move 5 % per accepted update: three steps, then the rest.
                (price("BTC", 10_500_000, 2_000), OK),
                (price("BTC", 10_500_000, 3_000), OK),
                (price("BTC", 10_500_000, 4_000), OK),
                (mark("BTC-PERP"), "variation_margin_shortfall"),
            ]
        )
        assert position(state, "thin", "BTC-PERP") == (-1_000, 9_000_000)

    def test_mark_without_price(self):
        """Refuses to mark an instrument whose underlying has no index."""
        run_table(
            [(open_account("a"), OK), (BTC_PERP, OK), (mark("BTC-PERP"), "price_unavailable")]
        )


class TestShape:
    def test_wrong_types_and_unknown_objects(self):
        """Rejects wrong types with field_type_invalid and non-events with event_type_unknown."""
        run_table(
            [
                ("not an event", "event_type_unknown"),
                (object(), "event_type_unknown"),
                (None, "event_type_unknown"),
                (
                    sk.Deposit(principal="a", account="a", asset="USDC", amount_minor=1.0),
                    "field_type_invalid",
                ),
                (
                    sk.Deposit(principal="a", account="a", asset="USDC", amount_minor=True),
                    "field_type_invalid",
                ),
                (
                    sk.Deposit(principal="a", account="a", asset="USDC", amount_minor="5"),
                    "field_type_invalid",
                ),
                (
                    sk.Deposit(principal=5, account="a", asset="USDC", amount_minor=1),
                    "field_type_invalid",
                ),
                (sk.Deposit(principal="", account="a", asset="USDC", amount_minor=1), "id_invalid"),
                (
                    sk.Deposit(principal="a", account="a" * 65, asset="USDC", amount_minor=1),
                    "id_invalid",
                ),
                (
                    sk.ListInstrument(
                        principal="operator",
                        instrument="X",
                        kind="perpetual",
                        underlying="BTC",
                        settlement_asset="USDC",
                        multiplier_minor=1,
                    ),
                    "field_type_invalid",
                ),
            ]
        )
