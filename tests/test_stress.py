"""The stress lab: seeded paths, the keeper, metrics through the real kernel (SK-STRESS-*)."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import settlekernel as sk
from settlekernel.cli.main import main
from settlekernel.core.outcomes import Accepted
from settlekernel.stress import runner
from settlekernel.stress.cover2 import cover2_report
from settlekernel.stress.paths import (
    GarchParams,
    MarketParams,
    Shock,
    _garch,
    default_market,
    simulate_log_returns,
    simulate_prices,
    simulate_ticks,
    to_ticks,
)
from settlekernel.stress.runner import PathMetrics, Scenario, run_path

STRESS = Path(__file__).resolve().parent.parent / "src" / "settlekernel" / "stress"
SMALL = Scenario(market=default_market(12), n_accounts=20)


def test_paths_are_a_function_of_the_seed():
    """Gives the same ticks for the same seed and different ticks for another."""
    market = default_market(24, garch=True)
    assert simulate_ticks(market, 7) == simulate_ticks(market, 7)
    assert simulate_ticks(market, 7) != simulate_ticks(market, 8)


def test_diffusion_is_correlated_as_asked():
    """Recovers the 0.8 correlation and each asset's volatility from the Cholesky draws."""
    market = MarketParams(
        assets=default_market().assets,
        correlation=((1.0, 0.8), (0.8, 1.0)),
        steps=20_000,
        jumps=None,
    )
    returns = simulate_log_returns(market, np.random.default_rng(3))
    assert abs(np.corrcoef(returns.T)[0, 1] - 0.8) < 0.02
    yearly = returns.std(axis=0) * math.sqrt(24 * 365)
    assert np.allclose(yearly, [0.60, 0.80], rtol=0.03)


def test_jumps_fatten_the_tails_without_drift():
    """Adds excess kurtosis with jumps, and the compensator keeps E[price] at the start."""
    market = MarketParams(
        assets=default_market().assets[:1],
        correlation=((1.0,),),
        steps=1,
        step_hours=24 * 30,
    )
    rng = np.random.default_rng(5)
    finals = np.array([simulate_prices(market, rng)[-1, 0] for _ in range(4_000)])
    assert abs(finals.mean() / 9_000_000 - 1) < 0.02
    hourly = simulate_log_returns(
        MarketParams(market.assets, market.correlation, steps=50_000), np.random.default_rng(6)
    )[:, 0]
    kurtosis = ((hourly - hourly.mean()) ** 4).mean() / hourly.var() ** 2
    assert kurtosis > 4


def test_garch_follows_its_recursion():
    """Computes each step's variance as omega + alpha r^2 + beta var, from the long run."""
    garch = GarchParams(alpha=0.1, beta=0.8)
    shocks = np.array([[1.0], [-2.0], [0.5]])
    returns, sigmas = _garch(garch, np.array([0.01]), shocks)
    variance = 0.01**2
    for row in range(3):
        assert sigmas[row, 0] == pytest.approx(math.sqrt(variance))
        assert returns[row, 0] == pytest.approx(sigmas[row, 0] * shocks[row, 0])
        variance = 0.1 * 0.01**2 + 0.1 * returns[row, 0] ** 2 + 0.8 * variance


def test_ticks_round_half_to_even_and_never_to_zero():
    """Rounds half to even, keeps a price of 0.2 ticks at 1, and returns Python ints."""
    ticks = to_ticks(np.array([[2.5, 3.5, 0.2, 7.49]]))
    assert ticks == [[2, 4, 1, 7]]
    assert all(type(value) is int for value in ticks[0])


def test_a_shock_changes_only_its_asset_from_its_step():
    """Drops the shocked asset by exactly 60 % from the shock step; the rest is unchanged."""
    base = simulate_prices(default_market(12), np.random.default_rng(1))
    shocked = simulate_prices(
        default_market(12, shock=Shock("ETH", 600_000, 4)), np.random.default_rng(1)
    )
    assert np.array_equal(base[:, 0], shocked[:, 0])
    assert np.array_equal(base[:4, 1], shocked[:4, 1])
    assert np.allclose(shocked[4:, 1] / base[4:, 1], 0.4)


def test_a_path_is_reproducible_and_clean():
    """Runs the same seed twice to the same metrics, opens every book and breaks nothing."""
    first, second = run_path(SMALL, 11), run_path(SMALL, 11)
    assert first.to_json() == second.to_json()
    assert first.violations == []
    assert first.setup_trades_rejected == 0
    assert first.events > 200
    assert len(first.insurance_path_minor) == 12 + 2
    assert len(first.liquidations_per_step) == 12


def test_a_collateral_crash_liquidates_through_cross_margin():
    """Liquidates accounts holding ETH collateral for BTC longs when ETH falls 60 %."""
    shocked = Scenario(market=default_market(12, shock=Shock("ETH", 600_000, 4)), n_accounts=30)
    calm = Scenario(market=default_market(12), n_accounts=30)
    metrics, baseline = run_path(shocked, 2), run_path(calm, 2)
    assert metrics.violations == []
    collateral = [a for a in metrics.liquidated if metrics.tiers[a] == "collateral"]
    assert collateral
    assert metrics.liquidations > baseline.liquidations
    assert metrics.liquidations_per_step[3] > 0


def test_a_btc_crash_with_a_thin_fund_reaches_adl():
    """Exhausts a thin fund, then deleverages winners; bad debt covers what the fund paid."""
    scenario = Scenario(
        market=default_market(8, shock=Shock("BTC", 400_000, 3)),
        n_accounts=30,
        insurance_minor=10_000 * 10**6,
    )
    metrics = run_path(scenario, 1)
    assert metrics.violations == []
    assert metrics.bankruptcies > 0
    assert metrics.insurance_min_minor == 0
    assert min(metrics.insurance_path_minor) >= 0
    assert metrics.adl_events > 0
    assert metrics.bad_debt_minor >= metrics.insurance_paid_minor > 0
    assert set(metrics.adl_absorbers) <= set(metrics.tiers)


def test_without_a_keeper_nobody_is_liquidated():
    """Submits no liquidation when the keeper is off, even through a crash."""
    scenario = Scenario(
        market=default_market(8, shock=Shock("BTC", 400_000, 3)), n_accounts=20, keeper=False
    )
    metrics = run_path(scenario, 1)
    assert metrics.liquidations == 0
    assert metrics.liquidations_per_step == [0] * 8


def test_a_broken_step_is_reported(monkeypatch):
    """Reports check_step violations when step's postings do not match its state."""
    real_step = runner.step

    def broken(state, event):
        outcome = real_step(state, event)
        if isinstance(outcome, Accepted) and type(event).__name__ == "FundInsurance":
            return Accepted(state, outcome.postings)  # Postings without their effect.
        return outcome

    monkeypatch.setattr(runner, "step", broken)
    metrics = run_path(Scenario(market=default_market(2), n_accounts=5, check_step_every=1), 1)
    assert metrics.violations != []


def test_stress_functions_are_short():
    """Keeps every function of the stress package at or under 70 lines."""
    long = [
        f"{path.name}:{node.name}"
        for path in sorted(STRESS.glob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.end_lineno - node.lineno + 1 > 70
    ]
    assert long == []


def test_stress_cli_writes_summary_and_plots(tmp_path):
    """Runs `settlekernel stress` end to end: summary.json with clean invariants, three PNGs."""
    args = ["stress", "--paths", "2", "--seed", "3", "--steps", "6", "--accounts", "10"]
    result = CliRunner().invoke(
        main, [*args, "--shock", "BTC:300000:2", "--cover2", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["paths"] == 2
    assert summary["rules_digest"] == sk.RuleSet.default().digest.hex()
    assert "paths_per_second" in summary["machine"]
    assert "paths_per_second" not in summary
    assert "{" not in result.output  # a readable summary, not dict reprs
    assert " USDC" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
    assert summary["invariant_violations"] == []
    assert len(summary["per_path"]) == 2
    assert summary["liquidations"]["max"] > 0
    assert summary["cover2"]["cover2_minor"] > 0
    for name in ("insurance_fund.png", "cascade_timeline.png", "loss_by_tier.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")


def test_stress_cli_rejects_a_bad_shock(tmp_path):
    """Exits 2 on a shock that is not ASSET:DROP_PPM:STEP."""
    result = CliRunner().invoke(main, ["stress", "--shock", "ETH-60", "--out", str(tmp_path)])
    assert result.exit_code == 2


def test_cover2_picks_the_two_largest_exposures():
    """Names the two largest exposures over all paths and the worst single-path pair."""
    paths = [
        PathMetrics(seed=1, deficit_max_minor={"a": 50, "b": 40, "c": 10}),
        PathMetrics(seed=2, deficit_max_minor={"c": 70, "a": 5}),
    ]
    report = cover2_report(paths, fund_minor=100)
    assert [p["account"] for p in report["participants"]] == ["c", "a"]
    assert report["cover2_minor"] == 120
    assert report["fund_covers_cover2"] is False
    assert report["worst_path_pair"] == ["a", "b"]
    assert report["worst_path_pair_minor"] == 90
    assert report["fund_covers_worst_path_pair"] is True


def test_cover2_exposures_come_from_the_kernel():
    """Records deficits only with the keeper off in a crash, on accounts of the population."""
    scenario = Scenario(
        market=default_market(6, shock=Shock("BTC", 400_000, 2)),
        n_accounts=20,
        keeper=False,
        track_deficits=True,
    )
    paths = [run_path(scenario, seed) for seed in (1, 2)]
    assert all(path.violations == [] for path in paths)
    report = cover2_report(paths, scenario.insurance_minor)
    assert report["cover2_minor"] > 0
    assert {p["account"] for p in report["participants"]} <= set(paths[0].tiers)
    assert set(paths[0].tiers) == set(paths[1].tiers)  # One population per run.


def test_stress_cli_rejects_a_shock_beyond_the_run(tmp_path):
    """Exits 2 with one line when the shock's step is past the run's last step."""
    result = CliRunner().invoke(
        main,
        ["stress", "--steps", "6", "--shock", "ETH:600000:9", "--no-plots", "--out", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "beyond the run's 6 steps" in result.output
    assert len(result.output.strip().splitlines()) == 1


def _metrics(seed: int, low_minor: int, bad_debt_minor: int) -> PathMetrics:
    """Return a three-hour path whose fund dips to ``low_minor`` at hour 2."""
    return PathMetrics(
        seed=seed,
        bad_debt_minor=bad_debt_minor,
        liquidations_per_step=[0, 1, 0],
        insurance_path_minor=[250 * 10**9, 250 * 10**9, low_minor, low_minor, low_minor],
        loss_by_tier_minor={"retail": bad_debt_minor, "pro": 0},
    )


PLOT_LABEL_SHOCK = Shock("ETH", 600_000, 2)


@pytest.mark.parametrize("agree", [True, False], ids=["all paths agree", "paths differ"])
def test_plots_name_the_run_units_and_loss_and_have_legends(agree):
    """Titles give paths, seed, shock and rules; axes hours and USDC; every axes a legend."""
    plots = pytest.importorskip("settlekernel.stress.plots")
    digest = sk.RuleSet.default().digest.hex()
    label = plots.RunLabel(3, 7, PLOT_LABEL_SHOCK, digest)
    paths = [
        _metrics(n, 200 * 10**9 if agree else (200 + n) * 10**9, 0 if agree else n * 10**6)
        for n in range(3)
    ]
    figures = {
        "insurance": plots.insurance_figure(paths, label),
        "cascade": plots.cascade_figure(paths, label),
        "tiers": plots.tier_figure(paths, label),
    }
    for name, figure in figures.items():
        heading = figure.get_suptitle() or figure.axes[0].get_title()
        for fragment in ("3 paths", "seed 7", "shock ETH -60 % at hour 2", digest[:16]):
            assert fragment in heading, (name, heading)
        for axes in figure.axes:
            assert axes.get_legend() is not None, (name, axes.get_title())
            assert axes.get_xlabel(), (name, axes.get_title())
            assert axes.get_ylabel(), (name, axes.get_title())
    insurance_histogram, insurance_time = figures["insurance"].axes
    assert "USDC" in insurance_histogram.get_xlabel()
    assert "hours" in insurance_time.get_xlabel()
    assert "USDC" in insurance_time.get_ylabel()
    assert "hours" in figures["cascade"].axes[0].get_xlabel()
    tiers, bad_debt = figures["tiers"].axes
    assert "loss: equity after setup minus equity at the end" in tiers.get_title()
    assert "USDC" in tiers.get_ylabel()
    assert "bad debt: equity below zero at liquidation" in bad_debt.get_title()
    for histogram in (insurance_histogram, bad_debt):
        bars = [patch for patch in histogram.patches if patch.get_height() > 0]
        assert sum(bar.get_height() for bar in bars) == 3  # every path counted once
        low, high = histogram.get_xlim()
        assert low < high
        notes = [text.get_text() for text in histogram.texts]
        if agree:
            assert len(bars) == 1
            assert any(note.startswith("all 3 paths: ") and "USDC" in note for note in notes)
    plots.plt.close("all")


def test_plot_title_says_no_shock_and_omits_an_absent_digest():
    """Says 'no shock' without one; a sweep's title names no single rules digest."""
    plots = pytest.importorskip("settlekernel.stress.plots")
    assert plots.RunLabel(1, 0, None, "ab" * 32).describe() == (
        "1 path, seed 0, no shock, rules " + "ab" * 8
    )
    assert plots.RunLabel(2, 5, None, None).describe() == "2 paths, seed 5, no shock"
