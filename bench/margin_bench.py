"""The margin benchmark (``make bench``): 10k accounts x 20 option positions x 23 scenarios.

Measured in one run, on this machine:

- the engine (``compute_margins``) on all accounts in one call, two books:
  *shared series* (200 listed series, each account holds 20 of them: what a venue has) and
  *distinct series* (every position a series of its own, so nothing can be shared);
- bare NumPy Black-76 (``np.log``, ``np.exp`` and SciPy's ``ndtr``, written as one would
  write it) on the same revaluations: every position in every scenario and now;
- QuantLib's ``BlackCalculator`` in a Python loop, timed on a sample and scaled.

"Revaluations" counts position-scenarios: 10k x 20 x 24 (23 scenarios and now). The
engine's figures include everything a margin report needs (integer rounding, aggregation,
contingencies), the baselines only the pricing. Targets (reported, never asserted): the
engine at least 0.5x bare NumPy, and at least 40x QuantLib.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import QuantLib as ql
from scipy.special import ndtr

import settlekernel as sk
from settlekernel.margin.black76 import black76_price
from settlekernel.margin.portfolio import Exposure, Market, Portfolio, compute_margins
from settlekernel.margin.single import compute_account_margin

RESULTS = Path(__file__).resolve().parent / "results" / "margin.json"
DAY_MS = 86_400_000
INDEX = 9_600_000
VOLATILITY_PPM = 600_000
K = sk.InstrumentKind
SCENARIOS = 24  # 23 scenarios and the current value


def option(number: int, strike: int, expiry_days: int, call: bool) -> sk.Instrument:
    return sk.Instrument(
        f"O{number}",
        K.OPTION,
        "BTC",
        "USDC",
        10,
        expiry_days * DAY_MS,
        strike,
        sk.OptionType.CALL if call else sk.OptionType.PUT,
        0,
    )


def books(accounts: int, positions: int, *, shared: bool, seed: int) -> list[Portfolio]:
    """Return the accounts' books: 20 options each, from 200 series or all distinct."""
    rng = random.Random(seed)
    listed = [
        option(n, 7_000_000 + 100_000 * (n % 50), 7 + 30 * (n // 50), n % 2 == 0)
        for n in range(200)
    ]
    portfolios = []
    for account in range(accounts):
        if shared:
            chosen = rng.sample(listed, positions)
        else:
            chosen = [
                option(
                    account * positions + j,
                    rng.randrange(6_000_000, 13_000_000),
                    rng.randrange(1, 180),
                    rng.random() < 0.5,
                )
                for j in range(positions)
            ]
        exposures = [
            Exposure(spec, rng.choice((-1, 1)) * rng.randrange(1, 500), 0) for spec in chosen
        ]
        portfolios.append(Portfolio({"USDC": 10**12}, exposures))
    return portfolios


def inputs_of(portfolios: list[Portfolio], market: Market) -> dict[str, np.ndarray]:
    """The flat Black-76 inputs of every position in every scenario, for the baselines."""
    rules = sk.RuleSet.default().underlying_by_symbol["BTC"]
    from settlekernel.core.scenarios import scenario_price_ticks  # noqa: PLC0415
    from settlekernel.margin.options import volatility_multiplier  # noqa: PLC0415

    grid = rules.scenarios
    forwards = np.array([INDEX] + [scenario_price_ticks(INDEX, s.move_ppm) for s in grid], float)
    vols = np.array([1.0] + [volatility_multiplier(rules, s.vol) for s in grid]) * (
        VOLATILITY_PPM / 1e6
    )
    specs = [e.instrument for p in portfolios for e in p.exposures]
    years = np.array([(s.expiry_ms - market.clock_ms) / (365 * DAY_MS) for s in specs])
    return {
        "forward": np.broadcast_to(forwards, (len(specs), SCENARIOS)),
        "strike": np.array([float(s.strike_ticks) for s in specs])[:, None],
        "years": np.maximum(years[:, None] - np.r_[0.0, [1 / 365] * 23][None, :], 0.0),
        "volatility": np.broadcast_to(vols, (len(specs), SCENARIOS)),
        "call": np.array([s.option_type is sk.OptionType.CALL for s in specs])[:, None],
    }


def bare_numpy(forward, strike, years, volatility, call) -> np.ndarray:
    """Black-76 as one would write it with NumPy and SciPy."""
    stdev = np.maximum(volatility * np.sqrt(years), 1e-300)  # expired: no division by zero
    d1 = (np.log(forward / strike) + 0.5 * stdev * stdev) / stdev
    d2 = d1 - stdev
    value = forward * ndtr(d1) - strike * ndtr(d2)
    return np.where(call, value, value - (forward - strike))  # put by parity


def quantlib_rate(data: dict[str, np.ndarray], sample: int) -> float:
    """Revaluations per second of a BlackCalculator loop, on the first ``sample`` of them."""
    shape = data["forward"].shape
    forward, strike = data["forward"].ravel(), np.broadcast_to(data["strike"], shape).ravel()
    years, vol = data["years"].ravel(), data["volatility"].ravel()
    call = np.broadcast_to(data["call"], shape).ravel()
    started = time.perf_counter()
    for i in range(sample):
        payoff = ql.PlainVanillaPayoff(ql.Option.Call if call[i] else ql.Option.Put, strike[i])
        ql.BlackCalculator(payoff, forward[i], vol[i] * math.sqrt(years[i]), 1.0).value()
    return sample / (time.perf_counter() - started)


def margin_each(portfolios, market, rules):
    """Margin every account alone, as ``step`` does."""
    return [compute_account_margin(p, market, rules) for p in portfolios]


def timed(function, *args, **kwargs):
    gc.collect()
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--positions", type=int, default=20)
    parser.add_argument("--quantlib-sample", type=int, default=100_000)
    arguments = parser.parse_args()
    rules = sk.RuleSet.default()
    market = Market(0, {"BTC": INDEX}, {"BTC": VOLATILITY_PPM})
    revaluations = arguments.accounts * arguments.positions * SCENARIOS
    print(
        f"margin benchmark: {arguments.accounts:,} accounts x {arguments.positions} options"
        f" x {SCENARIOS} valuations = {revaluations:,} revaluations"
    )
    rows = []
    for label, shared in (("shared series", True), ("distinct series", False)):
        portfolios = books(arguments.accounts, arguments.positions, shared=shared, seed=7)
        reports, engine_s = timed(compute_margins, portfolios, market, rules)
        assert all(r.maintenance_minor >= 0 for r in reports)
        # The kernel's path (SK-MARGIN-DET-3): each account alone, as step margins it; it
        # must agree with the batch exactly.
        alone, single_s = timed(margin_each, portfolios, market, rules)
        assert [(r.equity_minor, r.maintenance_minor, r.initial_minor) for r in alone] == [
            (r.equity_minor, r.maintenance_minor, r.initial_minor) for r in reports
        ]
        data = inputs_of(portfolios, market)
        _, bare_s = timed(
            bare_numpy,
            data["forward"],
            data["strike"],
            data["years"],
            data["volatility"],
            data["call"],
        )
        _, pricing_s = timed(
            black76_price,
            data["forward"],
            data["strike"],
            data["years"],
            data["volatility"],
            data["call"],
        )
        rows.append(
            {
                "book": label,
                "engine_s": engine_s,
                "single_account_s": single_s,
                "single_accounts_per_s": arguments.accounts / single_s,
                "bare_numpy_s": bare_s,
                "accounts_per_s": arguments.accounts / engine_s,
                "revaluations_per_s": revaluations / engine_s,
                "bare_revaluations_per_s": revaluations / bare_s,
                "deterministic_pricing_per_s": revaluations / pricing_s,
                "ratio_vs_bare": bare_s / engine_s,
            }
        )
    sample_book = books(200, arguments.positions, shared=False, seed=7)
    sample = min(arguments.quantlib_sample, 200 * arguments.positions * SCENARIOS)
    quantlib = quantlib_rate(inputs_of(sample_book, market), sample)
    print(
        f"\n  {'book':<16} {'engine s':>9} {'accounts/s':>11} {'revaluations/s':>15}"
        f" {'bare NumPy/s':>13} {'vs bare':>8} {'vs QuantLib':>12}"
    )
    for row in rows:
        row["ratio_vs_quantlib"] = row["revaluations_per_s"] / quantlib
        print(
            f"  {row['book']:<16} {row['engine_s']:>9.2f} {row['accounts_per_s']:>11,.0f}"
            f" {row['revaluations_per_s']:>15,.0f} {row['bare_revaluations_per_s']:>13,.0f}"
            f" {row['ratio_vs_bare']:>7.2f}x {row['ratio_vs_quantlib']:>11.1f}x"
        )
    print(f"\n  QuantLib BlackCalculator loop: {quantlib:,.0f} revaluations/s (sampled)")
    for row in rows:
        print(
            f"  {row['book']}: the kernel's single-account path, one call per account: "
            f"{row['single_account_s']:.2f} s, {row['single_accounts_per_s']:,.0f} accounts/s "
            f"(memos warm from the batch run; same reports)"
        )
    for row in rows:
        print(
            f"  {row['book']}: deterministic Black-76 alone (margin/detmath, no engine) "
            f"{row['deterministic_pricing_per_s']:,.0f} revaluations/s, "
            f"{row['deterministic_pricing_per_s'] / row['bare_revaluations_per_s']:.2f}x bare"
        )
    worst = rows[1]
    print(
        f"  target engine >= 0.5x bare NumPy (distinct series): "
        f"{'met' if worst['ratio_vs_bare'] >= 0.5 else 'not met'} ({worst['ratio_vs_bare']:.2f})"
    )
    print(
        f"  target engine >= 40x QuantLib (distinct series): "
        f"{'met' if worst['ratio_vs_quantlib'] >= 40 else 'not met'}"
        f" ({worst['ratio_vs_quantlib']:.1f})"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows, "quantlib_per_s": quantlib}, indent=2) + "\n")
    print(f"  summary written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
