"""Funding: whole intervals, the time-averaged premium clamped, zero-sum through the reference."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import settlekernel as sk
from scenario import (
    OK,
    balances,
    mark,
    market,
    position,
    price,
    run_table,
    trade,
)
from settlekernel.kernel.transitions.funding import average_premium_ppm

HOUR_MS = 3_600_000


def test_missed_intervals_are_caught_up_at_the_average_premium():
    """Charges every whole interval since the last charge, up to funding_intervals_max."""
    state = market(
        [
            (trade("t1", "alice", "bob", 1_000, 9_090_000), OK),
            (price("BTC", 9_000_000, 3 * HOUR_MS + 1_000), OK),
            (price("ETH", 300_000, 3 * HOUR_MS + 1_000), OK),
            (funding(), OK),
        ]
    )
    instrument = state.instruments["BTC-PERP"]
    # Three whole intervals at an average of trunc(10,000 x 300,000 / 10,801,000) = 277 ppm:
    # 3 x trunc(9,000,000 x 277 / 1e6) = 3 x 2,493 ticks; the schedule moves three hours.
    assert instrument.reference_ticks == 9_090_000 + 3 * 2_493
    assert instrument.last_funding_ms == 3 * HOUR_MS
    run_table([(funding(), "funding_too_early")], state)


def test_a_lone_print_stops_counting_once_it_leaves_the_window():
    """Charges nothing for an interval in which no trade's premium was in the window."""
    state = market(
        [
            (trade("t1", "alice", "bob", 1_000, 9_090_000), OK),
            (price("BTC", 9_000_000, HOUR_MS), OK),
            (price("ETH", 300_000, HOUR_MS), OK),
            (funding(), OK),
        ]
    )
    charged = state.instruments["BTC-PERP"].reference_ticks
    state = run_table(
        [
            (price("BTC", 9_000_000, 2 * HOUR_MS), OK),
            (price("ETH", 300_000, 2 * HOUR_MS), OK),
            (funding(), OK),
        ],
        state,
    )
    assert state.instruments["BTC-PERP"].reference_ticks == charged


def funding(instrument: str = "BTC-PERP", principal: str = "operator") -> sk.Funding:
    return sk.Funding(principal=principal, instrument=instrument)


def test_longs_pay_shorts_when_the_mark_is_above_the_index():
    """Shifts the reference by the clamped average rate and realises it at the next mark."""
    state = market(
        [
            # 1 % over the index: the premium is clamped to the 1 % mark band.
            (trade("t1", "alice", "bob", 1_000, 9_090_000), OK),
            (funding(), "funding_too_early"),
            (price("BTC", 9_000_000, HOUR_MS), OK),
            (price("ETH", 300_000, HOUR_MS), OK),
            (funding(), OK),
            (funding(), "funding_too_early"),
        ]
    )
    instrument = state.instruments["BTC-PERP"]
    # The +1 % print counted for the 5-minute mark window of the hour: an average of
    # 10,000 x 300,000 / 3,600,000 = 833 ppm, clamped to 750: delta = 9,000,000 x 750 / 1e6.
    assert instrument.reference_ticks == 9_090_000 + 6_750
    assert instrument.funding_index_ticks == 6_750
    assert instrument.last_funding_ms == HOUR_MS
    assert position(state, "alice", "BTC-PERP") == (1_000, 9_096_750)
    assert position(state, "bob", "BTC-PERP") == (-1_000, 9_096_750)
    # Nothing moved in cash; the next mark realises the charge with the price move. The
    # print has left the mark window, so the mark is the index, 9,000,000: alice pays
    # 1,000 x (9,096,750 - 9,000,000) x 10, the 67.50 USDC of funding included.
    before = balances(state, "alice")["USDC"], balances(state, "bob")["USDC"]
    state = run_table([(mark("BTC-PERP"), OK)], state)
    assert balances(state, "alice")["USDC"] == before[0] - 1_000 * 96_750 * 10
    assert balances(state, "bob")["USDC"] == before[1] + 1_000 * 96_750 * 10


def test_shorts_pay_longs_below_the_index_and_the_charge_is_exact():
    """Moves a negative premium's charge from shorts to longs, toward zero, with no dust."""
    state = market(
        [
            (trade("t1", "alice", "bob", 700, 8_999_000), OK),
            (price("BTC", 9_000_001, HOUR_MS), OK),
            (price("ETH", 300_000, HOUR_MS), OK),
            (funding(), OK),
        ]
    )
    # premium = trunc(-1,000 x 1e6 / 9,000,000) = -111 ppm, for the 5-minute window of the
    # hour: an average of trunc(-111 x 300,000 / 3,600,000) = -9 ppm; delta =
    # -trunc(9,000,001 x 9 / 1e6) = -81 ticks: the shorts' unrealised P&L falls by 700 x 81 x 10.
    assert state.instruments["BTC-PERP"].premium_samples[-1].premium_ppm == -111
    assert state.instruments["BTC-PERP"].reference_ticks == 8_999_000 - 81
    assert sk.check_invariants(state) == []


def test_guards():
    """Refuses funding by others, on non-perpetuals, unknown instruments and stale prices."""
    state = market([(trade("t1", "alice", "bob", 10, 9_000_000), OK)])
    run_table(
        [
            (funding(principal="alice"), "principal_not_operator"),
            (funding("NOPE"), "instrument_unknown"),
            (funding("BTC-FUT"), "instrument_not_perpetual"),
            (funding("BTC-C-100K"), "instrument_not_perpetual"),
            # An hour passes on ETH only: BTC's reports are stale.
            (price("ETH", 300_000, HOUR_MS), OK),
            (funding(), "oracle_not_admissible"),
            (price("BTC", 9_000_000, HOUR_MS), OK),
            (funding(), OK),
            # ETH-PERP never traded: its reference is 0 and the charge shifts nothing.
            (funding("ETH-PERP"), OK),
        ],
        state,
    )


def test_an_untraded_perpetual_has_no_index_yet():
    """Refuses funding on an underlying without an index price."""
    run_table(
        [
            (
                sk.ListInstrument(
                    principal="operator",
                    instrument="BTC-PERP",
                    kind=sk.InstrumentKind.PERPETUAL,
                    underlying="BTC",
                    settlement_asset="USDC",
                    multiplier_minor=10,
                ),
                OK,
            ),
            (funding(), "price_unavailable"),
        ]
    )


@given(
    trade_ticks=st.integers(8_000_000, 10_000_000),
    index_ticks=st.integers(8_600_000, 9_400_000),
    lots=st.lists(st.integers(1, 500), min_size=1, max_size=3),
)
def test_a_charge_is_zero_sum_and_bounded_by_the_clamp(trade_ticks, index_ticks, lots):
    """Moves unrealised P&L from one side to the other exactly, never beyond the clamp."""
    rows = [
        (
            trade(
                f"t{i}", "alice" if i % 2 else "bob", "bob" if i % 2 else "alice", q, trade_ticks
            ),
            OK,
        )
        for i, q in enumerate(lots)
    ]
    state = market(rows)
    state = run_table(
        [(price("BTC", index_ticks, HOUR_MS), OK), (price("ETH", 300_000, HOUR_MS), OK)], state
    )
    before = state.instruments["BTC-PERP"]
    average = average_premium_ppm(state, before)
    outcome = sk.step(state, funding())
    assert isinstance(outcome, sk.Accepted)
    after = outcome.state.instruments["BTC-PERP"]
    delta = after.reference_ticks - before.reference_ticks
    # |delta| <= index x clamp; its sign is the premium's.
    assert abs(delta) * 1_000_000 <= index_ticks * 750
    assert delta == 0 or (delta > 0) == (average > 0)
    # Each holder's unrealised P&L at the mark moves by exactly -q x delta x m, and the
    # moves sum to zero; no cash moves.
    mark_ticks = 9_000_000
    moves = []
    for account in ("alice", "bob"):
        old = state.accounts[account].positions.get("BTC-PERP")
        new = outcome.state.accounts[account].positions.get("BTC-PERP")
        assert (old is None) == (new is None)
        if old is None:
            continue
        change = new.quantity_lots * (mark_ticks - new.settled_price_ticks) * 10 - (
            old.quantity_lots * (mark_ticks - old.settled_price_ticks) * 10
        )
        assert change == -old.quantity_lots * delta * 10
        moves.append(change)
    assert sum(moves) == 0
    assert outcome.postings == ()
    assert balances(outcome.state, "alice") == balances(state, "alice")
