"""The oracle state machine: validity, median, band, staleness, admissibility, mark, TWAP."""

from __future__ import annotations

import itertools

import attrs
from hypothesis import assume, given
from hypothesis import strategies as st
from immutables import Map

import settlekernel as sk
from scenario import (
    BTC_FUT,
    BTC_PERP,
    OK,
    USDC,
    deposit,
    mark,
    market,
    open_account,
    price,
    report,
    run_table,
    trade,
    withdraw,
)
from settlekernel.core.model import IndexPrice
from settlekernel.core.oracle import (
    ADMISSIBLE,
    Action,
    Validity,
    evaluate,
    mark_ticks,
    settlement_twap,
    trade_premium_ppm,
    validity,
    with_history,
)
from settlekernel.core.units import PPM

BTC_RULES = sk.RuleSet.default().underlying_by_symbol["BTC"]
SOURCES = ("oracle-a", "oracle-b", "oracle-c")


def _reports(*prices_at: tuple[int, int]) -> Map[str, IndexPrice]:
    return Map(
        {
            source: IndexPrice(ticks, at_ms)
            for source, (ticks, at_ms) in zip(SOURCES, prices_at, strict=False)
        }
    )


class TestValidity:
    def test_each_state_in_turn(self):
        """Walks one underlying through every validity state, worst first."""
        state = run_table([(BTC_PERP, OK)])
        assert validity(state, "BTC") is Validity.INSUFFICIENT_SOURCES
        state = run_table([(report("BTC", 9_000_000, 1_000, "oracle-a"), OK)], state)
        assert validity(state, "BTC") is Validity.INSUFFICIENT_SOURCES
        assert "BTC" not in state.prices
        state = run_table([(report("BTC", 9_000_000, 1_000, "oracle-b"), OK)], state)
        assert validity(state, "BTC") is Validity.VALID
        assert state.prices["BTC"] == IndexPrice(9_000_000, 1_000)
        # ETH moves the clock 61 s on: BTC's reports are no longer fresh.
        stale = run_table([(price("ETH", 300_000, 62_000), OK)], state)
        assert validity(stale, "BTC") is Validity.STALE
        # A quorum reporting 0 is a halt.
        halted = run_table([(price("BTC", 0, 2_000), OK)], state)
        assert validity(halted, "BTC") is Validity.NON_POSITIVE
        assert halted.prices["BTC"] == IndexPrice(9_000_000, 1_000)

    def test_the_states_are_ordered_by_severity(self):
        """Lists the validity states worst first, as the spec orders them."""
        assert [v.value for v in Validity] == [
            "non_positive",
            "insufficient_sources",
            "stale",
            "disputed",
            "too_volatile",
            "valid",
        ]

    def test_a_gap_moves_the_index_by_the_band_per_update(self):
        """Moves a crashing index 5 % per accepted update and marks it too volatile meanwhile."""
        state = run_table(
            [
                (BTC_PERP, OK),
                (price("BTC", 10_000_000, 1_000), OK),
                (price("BTC", 8_000_000, 2_000), OK),
            ]
        )
        # oracle-a's report alone does not move it (the last index casts the even vote);
        # oracle-b's makes the median 8,000,000: 20 % away, so the index moves 5 %.
        assert state.prices["BTC"] == IndexPrice(9_500_000, 2_000)
        assert validity(state, "BTC") is Validity.TOO_VOLATILE
        steps = [state.prices["BTC"].price_ticks]
        for at_ms in range(3_000, 9_000, 1_000):
            for source in ("oracle-a", "oracle-b"):
                state = run_table([(report("BTC", 8_000_000, at_ms, source), OK)], state)
                steps.append(state.prices["BTC"].price_ticks)
        assert steps[-1] == 8_000_000
        assert validity(state, "BTC") is Validity.VALID
        for before, after in itertools.pairwise(steps):
            assert abs(after - before) * PPM <= before * BTC_RULES.band_ppm

    def test_one_source_cannot_move_the_index(self):
        """Ignores a single source's spike, however often it repeats it: the pair is disputed."""
        state = run_table([(BTC_PERP, OK), (price("BTC", 9_000_000, 1_000), OK)])
        for at_ms in range(2_000, 12_000, 1_000):
            state = run_table([(report("BTC", 90_000_000, at_ms, "oracle-a"), OK)], state)
            assert state.prices["BTC"].price_ticks == 9_000_000
            # Two live sources that disagree back no price: not valid, not moved.
            assert validity(state, "BTC") is Validity.DISPUTED
        # A third source's crash print: three fresh reports, the median is the honest one.
        state = run_table([(report("BTC", 1, 12_000, "oracle-c"), OK)], state)
        assert state.prices["BTC"].price_ticks == 9_000_000

    def test_replays_and_time_travel_are_refused_per_source(self):
        """Refuses a source's report that is not newer than its own last one."""
        run_table(
            [
                (BTC_PERP, OK),
                (price("BTC", 9_000_000, 5_000), OK),
                (report("BTC", 9_100_000, 5_000, "oracle-a"), "oracle_timestamp_not_newer"),
                (report("BTC", 9_100_000, 4_000, "oracle-b"), "oracle_timestamp_not_newer"),
                # Another source may still report that time: each source has its own clock.
                (report("BTC", 9_100_000, 4_000, "oracle-c"), OK),
            ]
        )

    def test_the_clock_follows_the_quorum_not_one_source(self):
        """Keeps the kernel clock where a quorum's timestamps put it, halted or not."""
        state = run_table([(BTC_PERP, OK), (price("BTC", 9_000_000, 1_000), OK)])
        far = run_table([(report("BTC", 9_000_000, 10**12, "oracle-a"), OK)], state)
        assert far.clock_ms == 1_000
        # The far-future report is not fresh on the kernel clock and it replaced the source's
        # last one, so the source has withdrawn its vote: like a source gone silent.
        assert validity(far, "BTC") is Validity.STALE
        assert far.prices["BTC"] == IndexPrice(9_000_000, 1_000)
        halted = run_table([(price("BTC", 0, 5_000), OK)], state)
        assert halted.clock_ms == 5_000


@given(
    honest=st.lists(st.integers(1, 10**9), min_size=1, max_size=5),
    lying=st.lists(st.integers(0, 10**12), max_size=5),
    last=st.none() | st.integers(1, 10**9),
)
def test_a_minority_of_liars_cannot_push_the_index_out_of_the_honest_range(honest, lying, last):
    """Keeps the median within the honest reports and the last index (SK-ORACLE-2)."""
    count = len(honest) + len(lying)
    votes = count + (1 if count % 2 == 0 and last is not None else 0)
    assume(len(lying) <= (votes - 1) // 2)
    reports = Map({f"s{i}": IndexPrice(p, 1_000) for i, p in enumerate([*honest, *lying])})
    # No band and a quorum of one: the candidate is the median itself.
    rules = attrs.evolve(BTC_RULES, min_sources=1, band_ppm=10**30)
    accepted = None if last is None else IndexPrice(last, 0)
    evaluation = evaluate(reports, accepted, 1_000, rules)
    if evaluation.validity is Validity.DISPUTED:
        # Only an even split can leave no majority; then nothing is accepted at all.
        assert count % 2 == 0
        assert evaluation.candidate is None
        return
    assert evaluation.candidate is not None
    bounds = [*honest, *([] if votes == count else [last])]
    assert min(bounds) <= evaluation.candidate.price_ticks <= max(bounds)


@given(
    last=st.integers(1, 10**12),
    reported=st.lists(st.integers(0, 10**12), min_size=2, max_size=3),
)
def test_an_accepted_update_never_moves_the_index_beyond_the_band(last, reported):
    """Bounds every accepted move by band_ppm of the last index (SK-ORACLE-3)."""
    evaluation = evaluate(
        _reports(*((p, 1_000) for p in reported)), IndexPrice(last, 0), 1_000, BTC_RULES
    )
    if evaluation.candidate is None:
        assert evaluation.validity in {Validity.NON_POSITIVE, Validity.DISPUTED}
        return
    assert abs(evaluation.candidate.price_ticks - last) * PPM <= last * BTC_RULES.band_ppm
    assert evaluation.candidate.price_ticks >= 1


def test_staleness_is_inclusive_at_the_boundary():
    """Counts a report exactly stale_after_ms away as fresh, one millisecond further as stale."""
    reports = _reports((9_000_000, 1_000), (9_000_000, 1_000))
    limit = 1_000 + BTC_RULES.stale_after_ms
    assert evaluate(reports, None, limit, BTC_RULES).validity is Validity.VALID
    assert evaluate(reports, None, limit + 1, BTC_RULES).validity is Validity.STALE
    # A report ahead of now counts while within the same window, not beyond it.
    early = 1_000 - BTC_RULES.stale_after_ms
    assert evaluate(reports, None, early, BTC_RULES).validity is Validity.VALID
    assert evaluate(reports, None, early - 1, BTC_RULES).validity is Validity.STALE


class TestAdmissibility:
    def test_the_table(self):
        """Admits liquidation, trading, margin and funding only on a valid index."""
        for action in (Action.TRADE, Action.MARGIN, Action.LIQUIDATION, Action.FUNDING):
            assert ADMISSIBLE[action] == frozenset({Validity.VALID})
        assert Validity.TOO_VOLATILE in ADMISSIBLE[Action.VARIATION_MARGIN]
        assert Validity.STALE not in ADMISSIBLE[Action.VARIATION_MARGIN]
        assert Validity.NON_POSITIVE not in ADMISSIBLE[Action.SETTLEMENT]
        assert Validity.INSUFFICIENT_SOURCES not in ADMISSIBLE[Action.SETTLEMENT]

    def test_no_trading_or_margin_on_a_stale_index(self):
        """Refuses trades and withdrawals that need a stale price; allows what needs none."""
        state = market(
            [
                (open_account("carol"), OK),
                (deposit("carol", 1_000 * USDC), OK),
                (trade("t1", "alice", "bob", 100, 9_000_000), OK),
                # ETH moves the clock on; BTC's last reports are now 61 s old.
                (price("ETH", 300_000, 62_000), OK),
            ]
        )
        run_table(
            [
                (trade("t2", "alice", "bob", 100, 9_000_000), "oracle_not_admissible"),
                (
                    trade("t3", "carol", "bob", 1, 30_000, instrument="ETH-PERP"),
                    "oracle_not_admissible",
                ),
                (withdraw("alice", 1 * USDC), "oracle_not_admissible"),
                # carol holds no position: her requirement is 0 whatever the price.
                (withdraw("carol", 1 * USDC), OK),
                (mark("BTC-PERP"), "oracle_not_admissible"),
                (price("BTC", 9_000_000, 62_000), OK),
                (trade("t2", "alice", "bob", 100, 9_000_000), OK),
            ],
            state,
        )

    def test_marking_follows_a_band_limited_index(self):
        """Marks on a too-volatile index (band-limited) but refuses new trades on it."""
        state = market(
            [
                (trade("t1", "alice", "bob", 100, 9_000_000), OK),
                (price("BTC", 7_000_000, 2_000), OK),
            ]
        )
        assert validity(state, "BTC") is Validity.TOO_VOLATILE
        state = run_table(
            [
                (trade("t2", "alice", "bob", 100, 8_550_000), "oracle_not_admissible"),
                (mark("BTC-PERP"), OK),
            ],
            state,
        )
        assert state.accounts["alice"].positions["BTC-PERP"].settled_price_ticks == 8_550_000


class TestMark:
    def test_premium_is_clamped_and_rounded_toward_zero(self):
        """Clamps a trade's premium to the mark band and truncates it toward zero."""
        assert trade_premium_ppm(9_090_000, 9_000_000, 10_000) == 10_000
        assert trade_premium_ppm(9_000_001, 9_000_000, 10_000) == 0
        assert trade_premium_ppm(8_999_999, 9_000_000, 10_000) == 0
        assert trade_premium_ppm(9_045_000, 9_000_000, 10_000) == 5_000
        assert trade_premium_ppm(8_955_000, 9_000_000, 10_000) == -5_000
        assert trade_premium_ppm(1, 9_000_000, 10_000) == -10_000

    def test_the_mark_follows_the_index_with_the_trades_weighted_median_premium(self):
        """Marks at the index shifted by the size-weighted median premium of recent trades."""
        state = market([(trade("t1", "alice", "bob", 100, 9_450_000, instrument="BTC-FUT"), OK)])
        assert state.instruments["BTC-FUT"].premium_samples[-1].premium_ppm == 10_000
        assert mark_ticks(state, "BTC-FUT") == 9_090_000
        moved = run_table([(price("BTC", 9_100_000, 2_000), OK)], state)
        assert mark_ticks(moved, "BTC-FUT") == 9_191_000
        # An exact split between +1 % and 0 takes the premium nearer zero.
        state = run_table(
            [(trade("t2", "alice", "bob", 100, 9_000_000, instrument="BTC-FUT"), OK)], state
        )
        assert mark_ticks(state, "BTC-FUT") == 9_000_000
        # Size decides: 300 lots at -0.5 % outweigh 200 lots at 0 and +1 %.
        state = run_table(
            [(trade("t3", "alice", "bob", 300, 8_955_000, instrument="BTC-FUT"), OK)], state
        )
        assert mark_ticks(state, "BTC-FUT") == 9_000_000 - 45_000

    def test_a_premium_leaves_the_mark_when_it_leaves_the_window(self):
        """Returns the mark to the index once the mark window has passed without a trade."""
        state = market([(trade("t1", "alice", "bob", 100, 9_450_000), OK)])
        assert mark_ticks(state, "BTC-PERP") == 9_090_000
        window_ms = state.rules.underlying_by_symbol["BTC"].mark_window_ms
        later = run_table([(price("BTC", 9_000_000, 1_000 + window_ms), OK)], state)
        assert mark_ticks(later, "BTC-PERP") == 9_000_000

    def test_a_wash_print_between_one_owners_accounts_leaves_no_sample(self):
        """Ignores a trade whose buyer and seller belong to the same owner (SK-MARK-2)."""
        state = market(
            [
                (open_account("alice", "alice-2"), OK),
                (deposit("alice-2", 10_000 * USDC), OK),
                (trade("w1", "alice", "alice-2", 1, 9_450_000), OK),
            ]
        )
        assert state.instruments["BTC-PERP"].premium_samples == ()
        assert mark_ticks(state, "BTC-PERP") == 9_000_000


def test_history_keeps_each_buckets_last_index_with_an_exact_integral_and_range():
    """Keeps the first sample and each bucket's last, integrating every update, with ranges."""
    history = ()
    for at_ms, ticks in ((0, 10), (10, 20), (20, 30), (150, 40), (160, 50)):
        history = with_history(history, IndexPrice(ticks, at_ms), 100, 64)
    assert [(s.timestamp_ms, s.price_ticks) for s in history] == [(0, 10), (20, 30), (160, 50)]
    assert history[1].cumulative == 10 * 10 + 20 * 10
    assert history[-1].cumulative == 10 * 10 + 20 * 10 + 30 * 130 + 40 * 10
    # After the first sample bucket 0 saw 20 and 30; bucket 1 opened with 30, then 40, 50.
    assert [(s.low_ticks, s.high_ticks) for s in history] == [(10, 10), (10, 30), (30, 50)]
    capped = with_history(history, IndexPrice(60, 300), 100, 2)
    assert [s.timestamp_ms for s in capped] == [160, 300]


def test_a_gap_after_a_compacted_bucket_settles_at_the_prices_in_force():
    """Integrates the last index of a bucket across a gap, not the bucket's first one."""
    history = ()
    for at_ms, ticks in ((0, 100), (10, 200), (5_000, 200)):
        history = with_history(history, IndexPrice(ticks, at_ms), 100, 64)
    # The window [4000, 6000] saw 200 throughout: the first sample's 100 held for 10 ms only.
    assert settlement_twap(history, 6_000, 2_000, 100) == 200


class TestSettlementPrice:
    def test_twap_weights_each_sample_by_how_long_it_held(self):
        """Averages the step function of samples over the window, rounding down."""
        history = ()
        for at_ms, ticks in ((0, 100), (600, 200), (900, 400)):
            history = with_history(history, IndexPrice(ticks, at_ms), 100, 64)
        # Window [0, 1000]: 100 for 600 ms, 200 for 300 ms, 400 for 100 ms.
        assert (
            settlement_twap(history, 1_000, 1_000, 100)
            == (100 * 600 + 200 * 300 + 400 * 100) // 1_000
        )
        # Window [500, 1000]: 100 from 500 to 600.
        expected = (100 * 100 + 200 * 300 + 400 * 100) // 500
        assert settlement_twap(history, 1_000, 500, 100) == expected
        # A window start between boundaries is rounded up to the next one: [550 -> 600, 1000].
        assert settlement_twap(history, 1_000, 450, 100) == (200 * 300 + 400 * 100) // 400
        # Samples after expiry do not count; a sample at expiry holds for no time.
        assert settlement_twap(history, 600, 600, 100) == 100
        assert settlement_twap(history, 0, 600, 100) == 100
        assert settlement_twap(history, -1, 600, 100) is None

    def test_the_first_index_at_or_after_expiry_fixes_the_price(self):
        """Fixes BTC-FUT's settlement price once, from the history before its expiry."""
        state = run_table(
            [
                (BTC_FUT, OK),
                (price("BTC", 9_000_000, 1_000), OK),
                (price("BTC", 9_200_000, 7_000), OK),
                (price("BTC", 9_300_000, 9_999), OK),
            ]
        )
        assert state.pending_expiries["BTC"] == (10_000,)
        assert "BTC@10000" not in state.settlement_prices
        state = run_table([(price("BTC", 9_400_000, 70_000), OK)], state)
        # The window (30 min) starts before the first sample, so the average runs from it:
        # 9.0M for 6 s, 9.2M for 2.999 s and 9.3M for 1 ms up to expiry.
        exact = (9_000_000 * 6_000 + 9_200_000 * 2_999 + 9_300_000 * 1) // 9_000
        assert state.settlement_prices["BTC@10000"] == exact
        assert "BTC" not in state.pending_expiries
        later = run_table([(price("BTC", 9_500_000, 130_000), OK)], state)
        assert later.settlement_prices["BTC@10000"] == exact


def test_the_validity_memo_answers_as_evaluate_does_in_any_order_of_states():
    """``validity`` remembers its last answer per underlying; asked of states in any order
    (older after newer, the clock moved on, a report replaced, a rule set changed), it
    returns what ``evaluate`` says of that very state."""
    genesis = sk.genesis(sk.RuleSet.default())
    states = [genesis]
    events = [
        report("BTC", 9_000_000, 1_000, "oracle-a"),
        report("BTC", 9_010_000, 1_100, "oracle-b"),
        report("BTC", 9_020_000, 1_200, "oracle-a"),
        report("ETH", 300_000, 1_300, "oracle-a"),
        report("BTC", 9_030_000, 90_000, "oracle-b"),
    ]
    for event in events:
        outcome = sk.step(states[-1], event)
        assert isinstance(outcome, sk.Accepted)
        states.append(outcome.state)
    # The same reports, the clock past their staleness: valid, then stale, then valid again.
    fresh = states[3]
    stale = attrs.evolve(fresh, clock_ms=fresh.clock_ms + 120_000)
    states += [stale, fresh, stale]
    states.append(attrs.evolve(states[2], rules=sk.RuleSet.default()))
    seen = set()
    for state in [*states, *reversed(states), *states[::2], *states[1::2]]:
        for underlying in ("BTC", "ETH"):
            expected = evaluate(
                state.reports.get(underlying),
                state.prices.get(underlying),
                state.clock_ms,
                state.rules.underlying_by_symbol[underlying],
            ).validity
            assert validity(state, underlying) is expected
            assert validity(state, underlying) is expected
            seen.add(expected)
    assert len(seen) >= 3  # The walk meets several validities, so a stale answer would show.
