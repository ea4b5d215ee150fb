"""Black-76 against QuantLib's BlackCalculator, and its textbook properties (SK-B76).

Tolerances, stated once: the price agrees with QuantLib within 1e-13 of (F + K); delta within
1e-12; gamma within 1e-12 of 1 / (F stdev); vega within 1e-12 of F sqrt(T); theta within
1e-12 of F (1 + sigma) / sqrt(T). The margin engine's error allowance (2**-40 ~ 9.1e-13 of
F + K, SK-PM-4) rests on the price tolerance, so the test uses a tighter one.
"""

from __future__ import annotations

import math

import numpy as np
import QuantLib as ql
from hypothesis import assume, given
from hypothesis import strategies as st

from settlekernel.margin.black76 import black76
from settlekernel.margin.options import MODEL_ERROR_BOUND

CASES = 10_000


def random_cases(seed: int, count: int = CASES) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    forward = np.exp(rng.uniform(0, math.log(1e8), count))
    strike = forward * np.exp(rng.normal(0, 0.6, count))
    years = rng.uniform(0, 3, count)
    years[rng.random(count) < 0.05] = 0.0  # expired
    volatility = rng.uniform(0, 3, count)
    volatility[rng.random(count) < 0.05] = 0.0  # no volatility
    rate = rng.uniform(-0.02, 0.12, count)
    return {
        "forward": forward,
        "strike": strike,
        "years": years,
        "volatility": volatility,
        "is_call": rng.random(count) < 0.5,
        "discount": np.exp(-rate * years),
    }


def test_agrees_with_quantlib_on_ten_thousand_random_cases():
    """Matches BlackCalculator's price and Greeks within the stated tolerances."""
    case = random_cases(seed=11)
    ours = black76(**case)
    worst = dict.fromkeys(("price", "delta", "gamma", "vega", "theta"), 0.0)
    for i in range(CASES):
        f, k, t = case["forward"][i], case["strike"][i], case["years"][i]
        sigma, call, discount = case["volatility"][i], case["is_call"][i], case["discount"][i]
        stdev = sigma * math.sqrt(t)
        calculator = ql.BlackCalculator(
            ql.PlainVanillaPayoff(ql.Option.Call if call else ql.Option.Put, k), f, stdev, discount
        )
        scales = {
            "price": f + k,
            "delta": 1.0,
            "gamma": 1.0 / (f * max(stdev, 1e-8)),
            "vega": f * max(math.sqrt(t), 1e-8),
            "theta": f * (1 + sigma) / max(math.sqrt(t), 1e-4),
        }
        expected = {
            "price": calculator.value(),
            "delta": calculator.deltaForward(),
            "gamma": calculator.gammaForward(),
            "vega": calculator.vega(t),
            "theta": calculator.theta(f, t),
        }
        if stdev == 0.0 and not call and f > k:
            # QuantLib reports +1 for the forward delta of an out-of-the-money put with no
            # time value; the limit, and ours, is 0.
            del expected["delta"]
        for greek, value in expected.items():
            error = abs(float(getattr(ours, greek)[i]) - value) / scales[greek]
            worst[greek] = max(worst[greek], error)
    assert worst["price"] <= 1e-13, worst
    assert max(worst["delta"], worst["gamma"], worst["vega"], worst["theta"]) <= 1e-12, worst
    assert worst["price"] * 100 <= MODEL_ERROR_BOUND, "the engine's error allowance is too thin"


def test_no_nan_or_inf_anywhere_including_the_edges():
    """Returns finite numbers at expiry, zero volatility, deep ITM/OTM and tiny inputs."""
    f = np.array([1.0, 1e15, 1e15, 1.0, 100.0, 100.0, 100.0, 1e-300])
    k = np.array([1e15, 1.0, 1e15, 1.0, 100.0, 50.0, 150.0, 1.0])
    for years in (0.0, 1e-12, 1.0, 50.0):
        for sigma in (0.0, 1e-9, 0.5, 20.0):
            for call in (True, False):
                result = black76(f, k, years, sigma, call)
                for greek in ("price", "delta", "gamma", "vega", "theta"):
                    assert np.isfinite(getattr(result, greek)).all(), (years, sigma, greek)


def test_expired_options_are_worth_their_intrinsic_value():
    """Pays max(F - K, 0) for a call and max(K - F, 0) for a put at T = 0."""
    f = np.array([90.0, 100.0, 110.0])
    assert black76(f, 100.0, 0.0, 0.8, True).price.tolist() == [0.0, 0.0, 10.0]
    assert black76(f, 100.0, 0.0, 0.8, False).price.tolist() == [10.0, 0.0, 0.0]
    assert black76(f, 100.0, 0.0, 0.8, True).delta.tolist() == [0.0, 0.5, 1.0]


positive = st.floats(1e-2, 1e7)
time = st.floats(1e-3, 5.0)
vol = st.floats(1e-3, 3.0)


@given(positive, positive, time, vol, st.floats(0.5, 1.0))
def test_put_call_parity(forward, strike, years, sigma, discount):
    """Satisfies C - P = D (F - K)."""
    call = black76(forward, strike, years, sigma, True, discount).price
    put = black76(forward, strike, years, sigma, False, discount).price
    assert abs((call - put) - discount * (forward - strike)) <= 1e-12 * (forward + strike)


@given(positive, positive, time, vol, st.booleans())
def test_price_bounds(forward, strike, years, sigma, is_call):
    """Lies between intrinsic value and the forward (call) or strike (put)."""
    price = float(black76(forward, strike, years, sigma, is_call).price)
    intrinsic = max(forward - strike, 0.0) if is_call else max(strike - forward, 0.0)
    ceiling = forward if is_call else strike
    slack = 1e-12 * (forward + strike)
    assert intrinsic - slack <= price <= ceiling + slack


@given(
    st.floats(10.0, 1e6),
    st.floats(0.8, 1.25),
    st.floats(0.05, 3.0),
    st.floats(0.15, 2.0),
    st.booleans(),
)
def test_greeks_match_finite_differences(forward, moneyness, years, sigma, is_call):
    """Agrees with central differences of the price for delta, gamma, vega and theta.

    The domain keeps |d1| < 3, where central differences are well conditioned; the QuantLib
    test covers the tails.
    """
    strike = forward * moneyness
    stdev = sigma * math.sqrt(years)
    assume(abs((math.log(forward / strike) + stdev * stdev / 2) / stdev) < 3)
    base = black76(forward, strike, years, sigma, is_call)
    h = forward * 1e-4
    up = black76(forward + h, strike, years, sigma, is_call).price
    down = black76(forward - h, strike, years, sigma, is_call).price
    mid = float(base.price)
    assert math.isclose(float(base.delta), (up - down) / (2 * h), rel_tol=1e-5, abs_tol=1e-7)
    # A second difference needs a wider step: round-off grows as eps * price / h**2.
    wide = forward * 1e-3
    up2 = black76(forward + wide, strike, years, sigma, is_call).price
    down2 = black76(forward - wide, strike, years, sigma, is_call).price
    assert math.isclose(
        float(base.gamma),
        (up2 - 2 * mid + down2) / (wide * wide),
        rel_tol=1e-3,
        abs_tol=1e-9 / forward,
    )
    dv = 1e-5
    vega = (
        black76(forward, strike, years, sigma + dv, is_call).price
        - black76(forward, strike, years, sigma - dv, is_call).price
    ) / (2 * dv)
    assert math.isclose(float(base.vega), float(vega), rel_tol=1e-5, abs_tol=1e-7 * forward)
    dt = 1e-6
    theta = -(
        black76(forward, strike, years + dt, sigma, is_call).price
        - black76(forward, strike, years - dt, sigma, is_call).price
    ) / (2 * dt)
    assert math.isclose(float(base.theta), float(theta), rel_tol=1e-4, abs_tol=1e-6 * forward)
