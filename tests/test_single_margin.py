"""The single-account margin path against the batch engine, its reference (SK-MARGIN-DET-3).

The batch engine (``compute_margins``) is the reference: the kernel's path must give the
same report, field for field and bit for bit, on every book and market; its memos must
change no result; and the kernel's margin cache must never serve a report after an input
it read has changed.
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import settlekernel as sk
from scenario import OK, market, price, run_table, trade, volatility
from settlekernel.core.model import MarginEntry
from settlekernel.margin import accounts, single
from settlekernel.margin.options import clear_memo
from settlekernel.margin.portfolio import Exposure, Market, Portfolio, compute_margins
from settlekernel.margin.single import clear_row_memo, compute_account_margin
from test_portfolio_margin import RULES, exposures, instrument, markets

K = sk.InstrumentKind


def reference(portfolio: Portfolio, at: Market) -> sk.MarginReport:
    """The batch engine's report of one account, without Greeks."""
    return compute_margins([portfolio], at, RULES)[0]


def fields(report: sk.MarginReport) -> tuple[object, ...]:
    """Every field of a report and of each of its underlyings, floats by their bits."""
    return (
        attrs.astuple(report, recurse=False)[:-1],
        [
            tuple(
                value.hex() if isinstance(value, float) else value
                for value in attrs.astuple(risk, recurse=False)
            )
            for risk in report.underlyings
        ],
    )


@st.composite
def portfolios(draw: st.DrawFn) -> Portfolio:
    """Books with repeated series, twin listings, offsetting and zero rows; some collateral."""
    book = draw(st.lists(exposures(), max_size=8))
    if book and draw(st.booleans()):
        # The same series again, at another size: netted with the first (SK-PM-2).
        first = book[0]
        book.append(Exposure(first.instrument, draw(st.integers(-5_000, 5_000)), 0))
    if book and draw(st.booleans()):
        # A twin listing (another id, the same contract) that offsets the first exactly.
        first = book[0].instrument
        twin = attrs.evolve(first, id=first.id + "-twin")
        book.append(Exposure(twin, -book[0].quantity_lots, book[0].settled_price_ticks))
    balances = {"USDC": draw(st.sampled_from([0, 1, 10**6, 10**12, 10**20]))}
    if draw(st.booleans()):
        balances["BTC"] = draw(st.integers(1, 10**10))
    return Portfolio(balances, book, draw(st.integers(-(10**9), 10**9)))


@settings(max_examples=300)
@given(portfolios(), markets)
def test_the_single_path_gives_the_batch_engines_report_bit_for_bit(portfolio, at):
    """Reports every field exactly as the batch engine does, for any book and market."""
    assert fields(compute_account_margin(portfolio, at, RULES)) == fields(
        reference(portfolio, at)
    )


@given(
    st.lists(st.integers(-(10**7), 10**7).filter(bool), min_size=1, max_size=4),
    st.sampled_from([1, 10, 10**6, 10**9]),
    markets,
)
def test_huge_rows_are_summed_exactly(quantities, multiplier, at):
    """Sums rows beyond int64 exactly, as the batch engine does (SK-PM-4)."""
    book = [
        Exposure(instrument(K.OPTION, strike=9_000_000 + n, multiplier=multiplier), q, 0)
        for n, q in enumerate(quantities)
    ]
    portfolio = Portfolio({"USDC": 10**12}, book)
    assert fields(compute_account_margin(portfolio, at, RULES)) == fields(
        reference(portfolio, at)
    )


@settings(max_examples=50)
@given(st.lists(portfolios(), min_size=1, max_size=4), markets)
def test_the_row_memo_changes_no_result(books, at):
    """Gives the same reports with both memos warm and emptied, each market input moved.

    Each input is changed alone after a warm-up, so a memo key that missed one would serve
    a stale row and differ from the cold computation.
    """
    variants = [
        at,
        attrs.evolve(at, clock_ms=at.clock_ms + 3_600_000),
        attrs.evolve(at, index_ticks={**at.index_ticks, "BTC": at.index_ticks["BTC"] + 1}),
        attrs.evolve(
            at, volatility_ppm={**at.volatility_ppm, "BTC": at.volatility_ppm["BTC"] + 1}
        ),
    ]
    for variant in variants:
        warm = [fields(compute_account_margin(p, variant, RULES)) for p in books]
        clear_memo()
        clear_row_memo()
        assert warm == [fields(reference(p, variant)) for p in books]
        for p in books:
            compute_account_margin(p, at, RULES)  # Warm again at the first market.


def test_a_row_memo_blind_to_the_clock_is_caught(monkeypatch):
    """Fails the memo check when the row key forgets the time to expiry (a planted fault)."""
    book = [Exposure(instrument(K.OPTION, expiry_days=2), -7, 0)]
    at = Market(0, {"BTC": 9_000_000, "ETH": 300_000}, {"BTC": 800_000, "ETH": 800_000})
    later = attrs.evolve(at, clock_ms=86_400_000)
    monkeypatch.setattr(single, "_row_key", lambda identity, _market, rules: (identity, rules))
    clear_row_memo()
    compute_account_margin(Portfolio({"USDC": 10**12}, book), at, RULES)
    stale = compute_account_margin(Portfolio({"USDC": 10**12}, book), later, RULES)
    clear_row_memo()
    assert fields(stale) != fields(reference(Portfolio({"USDC": 10**12}, book), later))


# The kernel's margin cache (SK-MARGIN-CACHE-1): never a stale report.


def _fresh(state: sk.State, account_id: str) -> sk.MarginReport:
    account = state.accounts[account_id]
    return reference(accounts.portfolio_of(account, state.instruments), accounts.market_of(state))


def assert_cache_fresh(state: sk.State) -> None:
    """Every account's margin, as the kernel reads it, equals a fresh batch computation."""
    for account_id in ("alice", "bob"):
        served = accounts.margin_report(state, account_id)
        assert served is not None
        assert fields(served) == fields(_fresh(state, account_id)), account_id


# A call a month out: its value moves with the clock by whole minor units.
BTC_CALL_30D = sk.ListInstrument(
    principal="operator",
    instrument="BTC-C-95K-30D",
    kind=K.OPTION,
    underlying="BTC",
    settlement_asset="USDC",
    multiplier_minor=10,
    expiry_ms=30 * 86_400_000,
    strike_ticks=9_500_000,
    option_type=sk.OptionType.CALL,
)
CHANGES = {
    "index": price("BTC", 9_050_000, 2_000),
    "volatility": volatility("BTC", 900_000, 2_000),
    "clock": sk.Tick(principal="sequencer", timestamp_ms=50_000),
    "position": trade("t3", "alice", "bob", 5, 9_000_000),
}


@pytest.fixture(scope="module")
def traded() -> sk.State:
    """Alice long a perpetual and short calls; bob the other sides; both margins cached."""
    state = market(
        [
            (BTC_CALL_30D, OK),
            (trade("t1", "alice", "bob", 100, 9_000_000), OK),
            (trade("t2", "bob", "alice", 10, 200_000, instrument="BTC-C-95K-30D"), OK),
        ]
    )
    assert set(state.margins) >= {"alice", "bob"}
    return state


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_the_margin_cache_serves_no_stale_report(traded, change):
    """Recomputes a cached margin after its index, volatility, clock or position changes."""
    changed = run_table([(CHANGES[change], OK)], traded)
    # Each change moves the report, so serving the cached one would be caught.
    assert fields(_fresh(changed, "alice")) != fields(_fresh(traded, "alice"))
    assert_cache_fresh(changed)


def _blind_to(*input_names: str):
    """Return a cache key that forgets market inputs: a planted fault."""

    def key(state, account, instruments):
        full = (
            state.rules,
            state.clock_ms,
            tuple(state.prices.get(u) for u in sorted(state.prices)),
            tuple(state.volatilities.get(u) for u in sorted(state.volatilities)),
        )
        return tuple(
            part
            for name, part in zip(("rules", "clock", "index", "volatility"), full, strict=True)
            if name not in input_names
        )

    return key


# An index report also moves the clock to its timestamp: the key must forget both.
BLIND = {"index": ("index", "clock"), "volatility": ("volatility",), "clock": ("clock",)}


@pytest.mark.parametrize("change", sorted(BLIND))
def test_a_cache_key_blind_to_an_input_fails_the_freshness_check(traded, monkeypatch, change):
    """Serves a stale report, and fails the check, when the key forgets an input it reads."""
    monkeypatch.setattr(accounts, "market_key", _blind_to(*BLIND[change]))
    # Re-key the cached entries with the blind key, then move that input.
    rekeyed = attrs.evolve(
        traded,
        margins=accounts.cache_margins(
            traded,
            [
                MarginEntry(
                    traded.accounts[a],
                    accounts.market_key(traded, traded.accounts[a], traded.instruments),
                    _fresh(traded, a),
                )
                for a in ("alice", "bob")
            ],
        ),
    )
    changed = run_table([(CHANGES[change], OK)], rekeyed)
    with pytest.raises(AssertionError):
        assert_cache_fresh(changed)
