"""Checking a rule change before it is proposed (SK-GOV-2): theorems, and accounts it moves.

The attack a designer must see coming: a change that looks like prudence (a wider scan
range, a higher initial multiplier) but alone makes today's accounts liquidatable, handing
their positions to keepers at a penalty; or one that orphans collateral by dropping an asset.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import attrs

import settlekernel as sk
from scenario import OK, USDC, deposit, market, open_account, trade
from settlekernel.cli.demo import demo_steps
from settlekernel.core.rules_toml import dump_rules_toml
from settlekernel.core.wire import encode_event
from settlekernel.margin.impact import rule_change_impact

CLI = [sys.executable, "-m", "settlekernel"]


def _with_btc(rules: sk.RuleSet, **changes: int) -> sk.RuleSet:
    underlyings = tuple(
        attrs.evolve(u, **changes) if u.symbol == "BTC" else u for u in rules.underlyings
    )
    return attrs.evolve(rules, underlyings=underlyings)


def _book() -> sk.State:
    """thin holds 10,000 USDC and is long 100 lots (9,000 USDC) of BTC-PERP at 90,000."""
    return market(
        [
            (open_account("thin"), OK),
            (deposit("thin", 1_100 * USDC), OK),
            (trade("t1", "thin", "bob", 100, 9_000_000), OK),
        ]
    )


def test_a_wider_scan_range_that_alone_makes_an_account_liquidatable_is_named():
    state = _book()
    rules = state.rules
    assert rule_change_impact(state, rules).shifts == ()
    wider = rule_change_impact(state, _with_btc(rules, scan_range_ppm=200_000))
    assert [(s.account, s.line) for s in wider.shifts] == [("thin", "maintenance")]
    (shift,) = wider.below_maintenance
    assert shift.new_requirement_minor > shift.equity_minor >= shift.old_requirement_minor
    # alice and bob, with a million USDC each, are not moved; the system accounts not checked.
    assert wider.accounts_checked == 3


def test_a_higher_initial_multiplier_moves_an_account_below_initial_only():
    state = _book()
    report = sk.margin_report(state, "thin")
    assert report.equity_minor >= report.initial_minor
    # Pick the multiplier that puts initial just above thin's equity, maintenance unchanged.
    multiplier = report.equity_minor * 1_000_000 // report.maintenance_minor + 1_000
    moved = rule_change_impact(state, _with_btc(state.rules, im_multiplier_ppm=multiplier))
    assert [(s.account, s.line) for s in moved.shifts] == [("thin", "initial")]
    assert moved.below_maintenance == ()


def test_a_change_that_orphans_what_the_state_holds_cannot_apply():
    state = _book()
    rules = state.rules
    no_eth = attrs.evolve(
        rules, underlyings=tuple(u for u in rules.underlyings if u.symbol != "ETH")
    )
    impact = rule_change_impact(state, no_eth)
    assert impact.incompatible == (
        "underlying ETH has listed instruments but is not in the new rules",
    )
    assert impact.shifts == ()
    new_house = attrs.evolve(rules, roles=attrs.evolve(rules.roles, matchers=("other",)))
    assert "house venues" in rule_change_impact(state, new_house).incompatible[0]


def test_verify_against_old_rules_and_a_journal_reports_what_changes(tmp_path):
    """The three answers in one run: rule lines, theorem statuses, accounts moved; exit 1."""
    events = tmp_path / "demo.jsonl"
    events.write_text("\n".join(encode_event(s.event) for s in demo_steps()) + "\n")
    db = tmp_path / "demo.db"
    appended = subprocess.run(
        [*CLI, "journal", "append", str(events), "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert appended.returncode == 0, appended.stderr
    assert json.loads(appended.stdout)["accepted"] > 0
    old = sk.RuleSet.default()
    old_file, new_file = tmp_path / "old.toml", tmp_path / "new.toml"
    old_file.write_text(dump_rules_toml(old))
    new_file.write_text(
        dump_rules_toml(_with_btc(old, scan_range_ppm=900_000, im_multiplier_ppm=900_000))
    )
    result = subprocess.run(
        [*CLI, "verify", "--rules", str(new_file), "--against", str(old_file), "--db", str(db)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "[underlyings.BTC] scan_range_ppm = 900000" in out
    assert "rules.initial-covers-maintenance[BTC]: proved -> counterexample" in out
    assert "alice: below maintenance" in out
    same = subprocess.run(
        [*CLI, "verify", "--rules", str(old_file), "--against", str(old_file), "--db", str(db)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert same.returncode == 0, same.stdout + same.stderr
    assert "every theorem has the same status under both rule sets" in same.stdout
    assert "0 of 13 accounts pushed below maintenance" in same.stdout
