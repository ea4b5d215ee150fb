"""Rule sweeps: the same stress paths under several rule sets (SK-STRESS-6, SK-STRESS-7).

A grid (``GRID.toml``) names an optional base rules file, the scenario, and rule sets, each a
table of overrides in the shape of a rules file. Every (rule set, path) pair is one task;
path ``n`` has the same seed under every rule set (common random numbers), and the
population is drawn from the grid's seed, so rule sets are compared on the same markets and
the same members. A task is a pure function of its arguments, so the results do not depend
on which executor ran them: a local process pool, or a Dask cluster through
``Client.get_executor()``. Only timing differs.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any, Final

import attrs

from settlekernel.core.rules import DEFAULT_RULES, RuleSet, check_rules, rules_digest
from settlekernel.core.rules_toml import RulesError, parse_rules_toml
from settlekernel.stress.paths import Shock, default_market, shock_problem
from settlekernel.stress.population import USDC_MINOR
from settlekernel.stress.runner import PathMetrics, Scenario, path_seed, run_path
from settlekernel.stress.summary import summarize

RULE_SETS_MAX: Final = 64
PATHS_MAX: Final = 100_000
TASKS_MAX: Final = 1_000_000
_GRID_KEYS: Final = {"base", "check", "scenario", "rulesets"}
_SCENARIO_KEYS: Final = {"paths", "steps", "accounts", "seed", "insurance_usdc", "shock", "garch"}


class GridError(ValueError):
    """A grid file that cannot be read: the message names the key."""


@attrs.frozen
class RuleSetSpec:
    """One named rule set of a grid: its overrides as written, the rules, what is unsound."""

    name: str
    overrides: dict[str, Any]
    rules: RuleSet
    problems: tuple[str, ...]


@attrs.frozen
class Grid:
    """A parsed grid: the scenario every rule set runs and the rule sets, in file order."""

    n_paths: int
    seed: int
    steps: int
    accounts: int
    insurance_minor: int
    shock: Shock | None
    garch: bool
    rule_sets: tuple[RuleSetSpec, ...]

    def scenario(self, rules: RuleSet) -> Scenario:
        """Return the grid's scenario under ``rules``; the population is the grid's seed."""
        return Scenario(
            market=default_market(self.steps, garch=self.garch, shock=self.shock),
            n_accounts=self.accounts,
            insurance_minor=self.insurance_minor,
            rules=rules,
            population_seed=self.seed,
        )


def toml_text(table: dict[str, Any]) -> str:
    """Write a parsed TOML table back as TOML text (scalars first, then sub-tables)."""
    lines: list[str] = []
    _emit(table, (), lines)
    return "\n".join(lines) + "\n"


def _emit(table: dict[str, Any], prefix: tuple[str, ...], lines: list[str]) -> None:
    """Append ``table``'s scalars, then each sub-table under its dotted header."""
    for key, value in table.items():
        if not isinstance(value, dict):
            lines.append(f"{json.dumps(key)} = {_value(value)}")
    for key, value in table.items():
        if isinstance(value, dict):
            path = (*prefix, key)
            lines.append("[" + ".".join(json.dumps(part) for part in path) + "]")
            _emit(value, path, lines)


def _value(value: object) -> str:
    """Write one TOML value; JSON's string escapes are valid TOML basic-string escapes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise GridError(f"unsupported value in a rule override: {value!r}")


def parse_grid(text: str, base_dir: Path) -> Grid:
    """Parse a grid file; ``base`` is read relative to ``base_dir``. Raise ``GridError``."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise GridError(f"grid is not valid TOML: {error}") from error
    unknown = sorted(set(document) - _GRID_KEYS)
    if unknown:
        raise GridError(f"unknown grid key {unknown[0]!r}")
    check = document.get("check", True)
    if not isinstance(check, bool):
        raise GridError("check: expected true or false")
    base = _base_rules(document.get("base"), base_dir, check=check)
    tables = document.get("rulesets")
    if not isinstance(tables, dict) or not tables:
        raise GridError("rulesets: expected at least one [rulesets.NAME] table")
    if len(tables) > RULE_SETS_MAX:
        raise GridError(f"rulesets: at most {RULE_SETS_MAX}")
    rule_sets = tuple(
        _rule_set(name, overrides, base, check=check) for name, overrides in tables.items()
    )
    grid = _scenario_fields(document.get("scenario", {}), rule_sets)
    if grid.n_paths * len(rule_sets) > TASKS_MAX:
        raise GridError(f"paths x rule sets: at most {TASKS_MAX} tasks")
    return grid


def _base_rules(path: object, base_dir: Path, *, check: bool) -> RuleSet:
    if path is None:
        return DEFAULT_RULES
    if not isinstance(path, str):
        raise GridError("base: expected the path of a rules file")
    try:
        text = (base_dir / path).read_text(encoding="utf-8")
        return parse_rules_toml(text, check=check)
    except (OSError, RulesError) as error:
        raise GridError(f"base {path}: {error}") from error


def _rule_set(name: str, overrides: object, base: RuleSet, *, check: bool) -> RuleSetSpec:
    """Parse one rule set's overrides over the base; with ``check=False`` keep its problems."""
    if not isinstance(overrides, dict):
        raise GridError(f"rulesets.{name}: expected a table of rule overrides")
    try:
        rules = parse_rules_toml(toml_text(overrides), base, check=check)
    except RulesError as error:
        raise GridError(f"rulesets.{name}: {error}") from error
    return RuleSetSpec(name, overrides, rules, tuple(check_rules(rules)))


def _scenario_fields(table: object, rule_sets: tuple[RuleSetSpec, ...]) -> Grid:
    """Read [scenario]; every key is optional and defaults to the stress command's."""
    if not isinstance(table, dict):
        raise GridError("scenario: expected a table")
    unknown = sorted(set(table) - _SCENARIO_KEYS)
    if unknown:
        raise GridError(f"unknown scenario key {unknown[0]!r}")
    bounds = {
        "paths": (20, 1, PATHS_MAX),
        "steps": (24, 1, 1_000),
        "accounts": (50, 1, 10_000),
        "seed": (0, 0, 2**31),
        "insurance_usdc": (250_000, 0, 10**12),
    }
    numbers = {}
    for key, (default, low, high) in bounds.items():
        value = table.get(key, default)
        if type(value) is not int or not low <= value <= high:
            raise GridError(f"scenario.{key}: expected an integer in [{low}, {high}]")
        numbers[key] = value
    garch = table.get("garch", False)
    if not isinstance(garch, bool):
        raise GridError("scenario.garch: expected true or false")
    return Grid(
        n_paths=numbers["paths"],
        seed=numbers["seed"],
        steps=numbers["steps"],
        accounts=numbers["accounts"],
        insurance_minor=numbers["insurance_usdc"] * USDC_MINOR,
        shock=_shock(table.get("shock")),
        garch=garch,
        rule_sets=rule_sets,
    )


def _shock(text: object) -> Shock | None:
    """Parse ``ASSET:DROP_PPM:STEP``, as the stress command's ``--shock``."""
    if text is None:
        return None
    try:
        symbol, drop_ppm, at_step = str(text).split(":")
        shock = Shock(symbol, int(drop_ppm), int(at_step))
    except ValueError as error:
        raise GridError(f"scenario.shock {text}: expected ASSET:DROP_PPM:STEP") from error
    if not 0 < shock.drop_ppm < 1_000_000 or shock.at_step < 1:
        raise GridError(f"scenario.shock {text}: drop in (0, 1,000,000) ppm, step >= 1")
    problem = shock_problem(default_market(), shock)
    if problem is not None:
        raise GridError(f"scenario.shock {text}: {problem}")
    return shock


def run_task(scenario: Scenario, seed: int) -> PathMetrics:
    """Run one (rule set, path) task; a module-level function so every executor can ship it."""
    return run_path(scenario, seed)


def run_sweep(
    grid: Grid, executor: Executor, on_done: Callable[[], None] | None = None
) -> dict[str, list[PathMetrics]]:
    """Run every (rule set, path) task on ``executor``; return each rule set's paths in order.

    Path ``n`` has seed ``path_seed(grid.seed, n)`` under every rule set (SK-STRESS-6). An
    unsound rule set (kept by ``check = false``) gets no paths: ``genesis`` refuses it.
    """
    futures: dict[str, list[Future[PathMetrics]]] = {}
    for spec in grid.rule_sets:
        if spec.problems:
            # genesis refuses unsound rules, so such a rule set runs no path: the report
            # shows its problems instead (SK-STRESS-6).
            futures[spec.name] = []
            continue
        scenario = grid.scenario(spec.rules)
        futures[spec.name] = [
            executor.submit(run_task, scenario, path_seed(grid.seed, number))
            for number in range(grid.n_paths)
        ]
    results: dict[str, list[PathMetrics]] = {}
    for name, pending in futures.items():
        results[name] = []
        for future in pending:
            results[name].append(future.result())
            if on_done is not None:
                on_done()
    return results


def sweep_report(grid: Grid, results: dict[str, list[PathMetrics]]) -> dict[str, Any]:
    """Return ``sweep.json``: the scenario, then per rule set its stress summary (SK-STRESS-7)."""
    baseline = results[grid.rule_sets[0].name]
    report: dict[str, Any] = {
        "scenario": {
            "paths": grid.n_paths,
            "seed": grid.seed,
            "steps": grid.steps,
            "accounts": grid.accounts,
            "insurance_minor": grid.insurance_minor,
            "shock": None if grid.shock is None else attrs.asdict(grid.shock),
            "garch": grid.garch,
            "path_seeds": [path_seed(grid.seed, number) for number in range(grid.n_paths)],
        },
        "baseline": grid.rule_sets[0].name,
        "rule_sets": {},
    }
    for spec in grid.rule_sets:
        paths = results[spec.name]
        summary = summarize(paths, grid.insurance_minor)
        summary["rules_digest"] = rules_digest(spec.rules).hex()
        summary["overrides"] = spec.overrides
        summary["unsound"] = list(spec.problems)
        summary["refused_by_genesis"] = bool(spec.problems)
        summary["paired_vs_baseline"] = (
            paired_comparison(baseline, paths) if baseline and paths else None
        )
        summary["per_path"] = [path.to_json() for path in paths]
        report["rule_sets"][spec.name] = summary
    return report


def paired_comparison(baseline: list[PathMetrics], paths: list[PathMetrics]) -> dict[str, int]:
    """Compare path by path with the baseline (same seeds): where the fund fell lower, higher."""
    pairs = list(zip(baseline, paths, strict=True))
    assert all(base.seed == path.seed for base, path in pairs), "paths must share seeds"
    deltas = [path.insurance_min_minor - base.insurance_min_minor for base, path in pairs]
    return {
        "paths_fund_min_lower": sum(1 for delta in deltas if delta < 0),
        "paths_fund_min_higher": sum(1 for delta in deltas if delta > 0),
        "fund_min_delta_minor_sum": sum(deltas),
        "liquidations_delta": sum(path.liquidations - base.liquidations for base, path in pairs),
    }


def usdc(minor: int) -> str:
    """Format minor units as whole USDC with thousands separators, rounded down."""
    return f"{minor // USDC_MINOR:,}" if minor >= 0 else f"-{usdc(-minor)}"
