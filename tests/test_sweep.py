"""Rule sweeps: paths x rule sets on a process pool or Dask, same seeds (SK-STRESS-6, -7)."""

from __future__ import annotations

import json
import tomllib
from concurrent.futures import Future, ProcessPoolExecutor

import pytest
from click.testing import CliRunner
from dask.distributed import Client, LocalCluster

from settlekernel.cli.main import main
from settlekernel.core.rules import DEFAULT_RULES
from settlekernel.stress.paths import Shock
from settlekernel.stress.runner import path_seed, run_path
from settlekernel.stress.sweep import (
    GridError,
    paired_comparison,
    parse_grid,
    run_sweep,
    sweep_report,
    toml_text,
)

# A small ETH crash: two rule sets that must differ, on two paths.
GRID = """
[scenario]
paths = 2
steps = 6
accounts = 12
seed = 4
shock = "ETH:600000:2"

[rulesets.default]

[rulesets.eth-haircut-40.assets.ETH]
haircut_ppm = 400000
"""
UNSOUND = """
[rulesets.im-below-mm.underlyings.BTC]
im_multiplier_ppm = 900000
"""


class SerialExecutor:
    """Runs each task at submit time, in this process: the reference for the executors."""

    def submit(self, fn, *args):
        future = Future()
        future.set_result(fn(*args))
        return future


def per_path(results):
    return {name: [path.to_json() for path in paths] for name, paths in results.items()}


def test_a_grid_applies_each_rule_sets_overrides_over_the_base(tmp_path):
    """Reads the base file, then each [rulesets.NAME] table over it, in file order."""
    (tmp_path / "base.toml").write_text("[assets.BTC]\nhaircut_ppm = 150000\n", encoding="utf-8")
    grid = parse_grid('base = "base.toml"\n' + GRID, tmp_path)
    default, thin = grid.rule_sets
    assert [default.name, thin.name] == ["default", "eth-haircut-40"]
    assert default.rules.asset_by_symbol["BTC"].haircut_ppm == 150_000
    assert thin.rules.asset_by_symbol["BTC"].haircut_ppm == 150_000
    assert thin.rules.asset_by_symbol["ETH"].haircut_ppm == 400_000
    assert default.rules.asset_by_symbol["ETH"] == DEFAULT_RULES.asset_by_symbol["ETH"]
    assert (grid.n_paths, grid.steps, grid.accounts, grid.seed) == (2, 6, 12, 4)
    assert grid.shock == Shock("ETH", 600_000, 2)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[scenario]\npaths = 2\n", "rulesets"),
        (GRID + "[rulesets.bad.assets.ETH]\nhaircut = 1\n", "rulesets.bad"),
        ("extra = 1\n" + GRID, "unknown grid key 'extra'"),
        ("[scenario]\npaths = 0\n[rulesets.a]\n", "scenario.paths"),
        ("[scenario]\nshock = 'ETH-60'\n[rulesets.a]\n", "scenario.shock"),
        (UNSOUND, "unsound"),
        ("base = 'missing.toml'\n[rulesets.a]\n", "base missing.toml"),
    ],
)
def test_a_bad_grid_names_its_key(tmp_path, text, message):
    """Raises GridError naming the bad key, and refuses unsound rules unless check = false."""
    with pytest.raises(GridError, match=message):
        parse_grid(text, tmp_path)


def test_an_unsound_rule_set_is_kept_with_its_problems_and_runs_no_path(tmp_path):
    """Keeps an unsound rule set under check = false; genesis refuses it, so it has no paths."""
    grid = parse_grid("check = false\n[scenario]\npaths = 1\nsteps = 2\n" + UNSOUND, tmp_path)
    (spec,) = grid.rule_sets
    assert any("im_multiplier_ppm" in problem for problem in spec.problems)
    results = run_sweep(grid, SerialExecutor())
    assert results == {"im-below-mm": []}
    summary = sweep_report(grid, results)["rule_sets"]["im-below-mm"]
    assert summary["refused_by_genesis"] is True
    assert summary["unsound"] == list(spec.problems)


def test_overrides_round_trip_through_toml_text():
    """Writes a parsed table back as TOML that parses to the same table."""
    table = {
        "liquidation_fee_ppm": 7,
        "roles": {"oracles": ["a", 'b"c']},
        "assets": {"ETH": {"haircut_ppm": 1, "price_underlying": "ETH"}},
        "underlyings": {"BTC-X": {"band_ppm": 2}},
    }
    assert tomllib.loads(toml_text(table)) == table


def test_every_rule_set_sees_the_same_path_seeds(tmp_path):
    """Runs path n with the same seed under every rule set, and the rule sets differ."""
    grid = parse_grid(GRID, tmp_path)
    results = run_sweep(grid, SerialExecutor())
    seeds = [path_seed(4, 0), path_seed(4, 1)]
    assert {name: [p.seed for p in paths] for name, paths in results.items()} == {
        "default": seeds,
        "eth-haircut-40": seeds,
    }
    assert (
        results["default"][0].to_json()
        == run_path(grid.scenario(grid.rule_sets[0].rules), seeds[0]).to_json()
    )
    assert per_path({"a": results["default"]}) != per_path({"a": results["eth-haircut-40"]})
    paired = paired_comparison(results["default"], results["eth-haircut-40"])
    assert paired["paths_fund_min_lower"] + paired["paths_fund_min_higher"] > 0


def test_a_process_pool_and_a_dask_cluster_give_the_same_paths(tmp_path):
    """Gives equal per-path metrics on a 2-process pool, a 2-worker LocalCluster and serially."""
    grid = parse_grid(GRID, tmp_path)
    expected = per_path(run_sweep(grid, SerialExecutor()))
    with ProcessPoolExecutor(max_workers=2) as pool:
        pooled = per_path(run_sweep(grid, pool))
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        dasked = per_path(run_sweep(grid, client.get_executor(pure=False)))
    assert pooled == expected
    assert dasked == expected
    assert all(path["violations"] == [] for paths in expected.values() for path in paths)


def test_sweep_cli_on_a_scheduler_writes_sweep_json_and_a_plot(tmp_path):
    """Runs `settlekernel sweep --scheduler` end to end: summaries, table, plot, unsound set."""
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text("check = false\n" + GRID + UNSOUND, encoding="utf-8")
    out = tmp_path / "out"
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        args = ["sweep", "--grid", str(grid_file), "--out", str(out)]
        result = CliRunner().invoke(main, [*args, "--scheduler", cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert list(report["rule_sets"]) == ["default", "eth-haircut-40", "im-below-mm"]
    default = report["rule_sets"]["default"]
    assert default["paths"] == 2
    assert default["invariant_violations"] == []
    assert default["liquidations"]["max"] > 0
    assert report["rule_sets"]["im-below-mm"]["refused_by_genesis"] is True
    assert report["scenario"]["path_seeds"] == [path_seed(4, 0), path_seed(4, 1)]
    assert "eth-haircut-40" in result.output
    assert "im-below-mm: unsound" in result.output
    assert (out / "sweep_insurance_min.png").read_bytes().startswith(b"\x89PNG")


def test_sweep_cli_on_the_local_pool_matches_the_scheduler(tmp_path):
    """Writes the same summaries from the default process pool; a bad grid exits 2."""
    grid_file = tmp_path / "grid.toml"
    grid_file.write_text(GRID, encoding="utf-8")
    args = ["sweep", "--grid", str(grid_file), "--workers", "2", "--no-plots"]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "sweep.json").read_text(encoding="utf-8"))
    grid = parse_grid(GRID, tmp_path)
    expected = sweep_report(grid, run_sweep(grid, SerialExecutor()))
    assert report["rule_sets"] == expected["rule_sets"]
    assert not (tmp_path / "out" / "sweep_insurance_min.png").exists()
    grid_file.write_text(UNSOUND, encoding="utf-8")
    assert CliRunner().invoke(main, ["sweep", "--grid", str(grid_file)]).exit_code == 2
