"""Properties of scenario portfolio margin (SK-PM), on random books of perps, futures, options."""

from __future__ import annotations

import math

import attrs
import QuantLib as ql
from hypothesis import given, settings
from hypothesis import strategies as st

import settlekernel as sk
from settlekernel.core.arith import compute_linear_margin_minor
from settlekernel.core.scenarios import scenario_price_ticks
from settlekernel.core.units import PPM
from settlekernel.margin.options import YEAR_MS, clear_memo
from settlekernel.margin.portfolio import (
    Exposure,
    Market,
    Portfolio,
    compute_margin,
    compute_margins,
)

K = sk.InstrumentKind
RULES = sk.RuleSet.default()
DAY_MS = 86_400_000
USDC = 10**6


def instrument(
    kind, underlying="BTC", *, expiry_days=30, strike=9_000_000, call=True, multiplier=10, name=None
):
    expiry = None if kind is K.PERPETUAL else expiry_days * DAY_MS
    return sk.Instrument(
        name or f"{underlying}-{kind.value}-{expiry_days}-{strike}-{call}-{multiplier}",
        kind,
        underlying,
        "USDC",
        multiplier,
        expiry,
        strike if kind is K.OPTION else None,
        (sk.OptionType.CALL if call else sk.OptionType.PUT) if kind is K.OPTION else None,
        0,
    )


@st.composite
def exposures(draw, underlying=None, linear_only=False):
    kind = K.PERPETUAL if linear_only else draw(st.sampled_from(list(K)))
    if linear_only:
        kind = draw(st.sampled_from([K.PERPETUAL, K.FUTURE]))
    symbol = underlying or draw(st.sampled_from(["BTC", "ETH"]))
    spot = 9_000_000 if symbol == "BTC" else 300_000
    strike = draw(st.integers(spot // 2, spot * 2))
    spec = instrument(
        kind,
        symbol,
        expiry_days=draw(st.integers(0, 400)),
        strike=strike,
        call=draw(st.booleans()),
        multiplier=draw(st.sampled_from([1, 10, 100])),
    )
    quantity = draw(st.integers(-5_000, 5_000).filter(bool))
    settled = spot if kind is not K.OPTION else 0
    return Exposure(spec, quantity, settled)


books = st.lists(exposures(), max_size=8)
markets = st.builds(
    Market,
    clock_ms=st.integers(0, 10 * DAY_MS),
    index_ticks=st.fixed_dictionaries(
        {"BTC": st.integers(4_000_000, 15_000_000), "ETH": st.integers(100_000, 600_000)}
    ),
    volatility_ppm=st.fixed_dictionaries(
        {"BTC": st.integers(0, 2_000_000), "ETH": st.integers(0, 2_000_000)}
    ),
)
CASH = {"USDC": 10**12}


def margin(book, market, balances=CASH):
    return compute_margin(Portfolio(balances, book), market, RULES)


@given(books, markets)
def test_requirement_is_never_negative_and_initial_covers_maintenance(book, market):
    """Requires at least zero, and initial at least maintenance (multiplier >= 1)."""
    report = margin(book, market)
    assert report.maintenance_minor >= 0
    assert report.initial_minor >= report.maintenance_minor
    for risk in report.underlyings:
        assert risk.scan_loss_minor == max(*risk.weighted_loss_minor, 0)


@given(markets)
def test_empty_portfolio_needs_nothing(market):
    """Requires nothing of an account without positions; equity is its cash."""
    report = margin([], market)
    assert (report.maintenance_minor, report.initial_minor) == (0, 0)
    assert report.equity_minor == CASH["USDC"]


@given(books, exposures(), markets)
def test_adding_an_exact_offset_pair_adds_at_most_its_calendar_charge(book, extra, market):
    """Needs no more for a position and its exact opposite in a twin listing, but the basis.

    Options offset exactly. Two linear instruments each settle at their own mark, so the
    pair adds at most its own calendar charge (SK-PM-7), plus one unit of rounding.
    """
    twin = Exposure(
        instrument(
            extra.instrument.kind,
            extra.instrument.underlying,
            expiry_days=(extra.instrument.expiry_ms or 0) // DAY_MS,
            strike=extra.instrument.strike_ticks or 1,
            call=extra.instrument.option_type is not sk.OptionType.PUT,
            multiplier=extra.instrument.multiplier_minor,
            name="twin",
        ),
        -extra.quantity_lots,
        extra.settled_price_ticks,
    )
    base = margin(book, market)
    padded = margin([*book, extra, twin], market)
    pair = margin([extra, twin], market)
    basis = sum(risk.calendar_minor for risk in pair.underlyings)
    assert (basis > 0) == extra.instrument.is_linear
    assert pair.maintenance_minor == basis
    assert padded.maintenance_minor <= base.maintenance_minor + basis + 1
    initial_basis = sum(risk.initial_minor for risk in pair.underlyings)
    assert padded.initial_minor <= base.initial_minor + initial_basis + 1


@given(books, markets, st.integers(2, 7))
def test_scaling_a_book_scales_the_requirement(book, market, factor):
    """Requires about k times as much for k times every position (rounding aside)."""
    scaled = [Exposure(e.instrument, e.quantity_lots * factor, e.settled_price_ticks) for e in book]
    base, big = margin(book, market).maintenance_minor, margin(scaled, market).maintenance_minor
    positions = len(book) * 25 * factor + 25  # one unit of rounding per position and scenario
    assert abs(big - factor * base) <= positions + factor * base * 1e-9


@given(
    st.lists(exposures(underlying="BTC", linear_only=True), min_size=1, max_size=6),
    markets,
    st.integers(-PPM, PPM),
)
def test_linear_loss_inside_the_scan_range_never_exceeds_maintenance(book, market, fraction):
    """Loses at most maintenance for any price move within the scan range (linear books)."""
    index = market.index_ticks["BTC"]
    move = RULES.underlying_by_symbol["BTC"].scan_range_ppm * fraction // PPM
    price = index + index * move // PPM
    loss = -sum(e.quantity_lots * e.instrument.multiplier_minor * (price - index) for e in book)
    assert loss <= margin(book, market).maintenance_minor


@given(st.lists(exposures(underlying="BTC", linear_only=True), min_size=1, max_size=6), markets)
def test_linear_book_margin_is_at_least_the_linear_margin_of_its_net(book, market):
    """Never falls below scan_range x |net notional| by more than rounding."""
    index = market.index_ticks["BTC"]
    net = abs(sum(e.quantity_lots * e.instrument.multiplier_minor for e in book)) * index
    linear = compute_linear_margin_minor(net, RULES.underlying_by_symbol["BTC"].scan_range_ppm)
    assert margin(book, market).maintenance_minor >= linear - 1


@given(books, markets)
def test_hedged_books_need_no_more_than_the_sum_of_their_legs(book, market):
    """Cross-margins: the whole book never needs more than its positions margined apart."""
    whole = margin(book, market).maintenance_minor
    apart = sum(margin([e], market).maintenance_minor for e in book)
    assert whole <= apart


@settings(max_examples=50)
@given(st.lists(books, min_size=1, max_size=6), markets)
def test_a_batch_gives_each_account_the_same_bits_as_alone(portfolios, market):
    """Computes every account exactly as alone, whatever else is in the batch."""
    batch = compute_margins([Portfolio(CASH, b) for b in portfolios], market, RULES)
    for book, together in zip(portfolios, batch, strict=True):
        alone = margin(book, market)
        assert together.maintenance_minor == alone.maintenance_minor
        assert together.equity_minor == alone.equity_minor
        assert [r.pnl_minor for r in together.underlyings] == [
            r.pnl_minor for r in alone.underlyings
        ]


@settings(max_examples=50)
@given(st.lists(books, min_size=1, max_size=6), markets)
def test_the_shared_valuation_memo_changes_no_result(portfolios, market):
    """Gives the same reports with the series memo warm and emptied (SK-MARGIN-DET-2).

    Each market input is changed alone after a warm-up, so a memo key that missed one would
    serve a stale valuation and differ from the cold computation.
    """

    def reports(at: Market) -> list[object]:
        return [
            (r.equity_minor, r.maintenance_minor, [u.pnl_minor for u in r.underlyings])
            for r in compute_margins([Portfolio(CASH, b) for b in portfolios], at, RULES)
        ]

    variants = [
        market,
        attrs.evolve(market, clock_ms=market.clock_ms + 3_600_000),
        attrs.evolve(
            market, index_ticks={**market.index_ticks, "BTC": market.index_ticks["BTC"] + 1}
        ),
        attrs.evolve(
            market,
            volatility_ppm={**market.volatility_ppm, "BTC": market.volatility_ppm["BTC"] + 1},
        ),
    ]
    for variant in variants:
        warm = reports(variant)
        clear_memo()
        assert warm == reports(variant)
        reports(market)  # Leave the memo warm with the first market's valuations.


@settings(max_examples=60)
@given(exposures(), markets)
def test_integer_scenario_pnl_never_exceeds_quantlib_pnl(exposure, market):
    """Rounds every option's scenario P&L against the account, against QuantLib's price."""
    spec = exposure.instrument
    if spec.kind is not K.OPTION:
        return
    rules = RULES.underlying_by_symbol[spec.underlying]
    index = market.index_ticks[spec.underlying]
    sigma = market.volatility_ppm[spec.underlying] / PPM
    remaining = max(spec.expiry_ms - market.clock_ms, 0)
    ahead = max(remaining - rules.lookahead_ms, 0)

    def price(forward, years, vol):
        payoff = ql.PlainVanillaPayoff(
            ql.Option.Call if spec.option_type is sk.OptionType.CALL else ql.Option.Put,
            spec.strike_ticks,
        )
        return ql.BlackCalculator(payoff, forward, vol * math.sqrt(years), 1.0).value()

    report = margin([exposure], market)
    size = exposure.quantity_lots * spec.multiplier_minor
    now = price(index, remaining / YEAR_MS, sigma)
    for scenario, ours in zip(rules.scenarios, report.underlyings[0].pnl_minor, strict=True):
        forward = scenario_price_ticks(index, scenario.move_ppm)
        vol = (
            sigma
            * {"up": 1 + rules.vol_up_ppm / PPM, "down": 1 - rules.vol_down_ppm / PPM, "same": 1.0}[
                scenario.vol
            ]
        )
        exact = size * (price(forward, ahead / YEAR_MS, vol) - now)
        assert ours <= exact + 1e-6 * abs(size), (scenario, ours, exact)


@given(st.integers(0, 10**20), st.integers(1, 10**9), st.integers(0, PPM))
def test_collateral_is_valued_after_its_haircut_rounded_down(amount, price, haircut):
    """Values a BTC balance at index x (1 - haircut), never above the exact value."""
    import attrs  # noqa: PLC0415

    btc = attrs.evolve(RULES.asset_by_symbol["BTC"], price_underlying="BTC", haircut_ppm=haircut)
    rules = attrs.evolve(RULES, assets=(btc, RULES.asset_by_symbol["USDC"]))
    market = Market(0, {"BTC": price}, {"BTC": 500_000})
    report = compute_margin(Portfolio({"BTC": amount}, []), market, rules)
    exact_numerator = amount * price * 10_000 * (PPM - haircut)
    assert report.collateral_minor == exact_numerator // (10**8 * PPM)


def test_a_calendar_spread_is_charged_for_the_basis_between_its_instruments():
    """Charges the offset across a perpetual and a future, not an offset in one (SK-PM-7)."""
    perpetual, future = instrument(K.PERPETUAL), instrument(K.FUTURE)
    market = Market(0, {"BTC": 9_000_000}, {"BTC": 600_000})
    book = [Exposure(perpetual, 100, 9_000_000), Exposure(future, -60, 9_000_000)]
    risk = margin(book, market).underlyings[0]
    # 60 lots offset across the two, at 2 % of their notional; the other 40 are outright.
    assert risk.calendar_minor == 60 * 10 * 9_000_000 * 20_000 // 10**6
    assert risk.maintenance_minor == (
        risk.scan_loss_minor + risk.contingency_minor + risk.calendar_minor
    )
    outright = margin([Exposure(perpetual, 40, 9_000_000)], market).underlyings[0]
    assert risk.scan_loss_minor == outright.scan_loss_minor
    assert outright.calendar_minor == 0
    # A long and a short of the one instrument are one net position: no spread.
    same = [Exposure(perpetual, 100, 9_000_000), Exposure(perpetual, -60, 9_000_000)]
    assert margin(same, market).underlyings[0].calendar_minor == 0
