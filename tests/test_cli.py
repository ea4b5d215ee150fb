"""The command line, run as a real process: outcomes, summaries and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import settlekernel as sk
from settlekernel.wire import encode_event

CLI = [sys.executable, "-m", "settlekernel"]


def run(*arguments: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *arguments], capture_output=True, text=True, check=check)


def test_demo_runs_and_says_the_invariants_hold(tmp_path):
    """Prints the timeline, the accounts and 'all hold', and writes its events."""
    events = tmp_path / "demo.jsonl"
    result = run("demo", "--events-out", str(events))
    assert result.returncode == 0, result.stderr
    assert "all hold" in result.stdout
    assert "trade_exists" in result.stdout
    assert "margin_insufficient" in result.stdout
    replayed = run("run", str(events), "--json")
    summary = json.loads(replayed.stdout.splitlines()[-1])["summary"]
    assert summary["invariants"] == "ok"
    assert (
        summary["final_root"] == "7162909e05edac755cf27b598708176ddf552135bcbf7a6bca4b7b863eec816f"
    )


def test_run_reports_each_line_and_survives_malformed_ones(tmp_path):
    """Reports one outcome per line, rejects junk by line and field, and goes on."""
    lines = [
        encode_event(sk.OpenAccount(principal="a", account="a")),
        '{"type":"deposit","principal":"a","account":"a","asset":"USDC","amount_minor":1.5}',
        "not json",
        "",
        encode_event(sk.Deposit(principal="a", account="a", asset="USDC", amount_minor=5)),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run("run", str(path), "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("status") for r in records[:-1]] == [
        "accepted",
        "rejected",
        "rejected",
        "accepted",
    ]
    assert records[1]["reason"] == "field_type_invalid"
    assert "line 2: deposit.amount_minor" in records[1]["message"]
    assert records[2]["message"].startswith("line 3:")
    assert records[-1]["summary"]["accepted"] == 2
    assert records[-1]["summary"]["rejected"] == 2
    table = run("run", str(path))
    assert "field_type_invalid" in table.stdout
    assert "invariants  ok" in table.stdout


def test_rules_option_and_bad_rules_file(tmp_path):
    """Uses a rules file; exits 2 naming the key when the file is unusable."""
    good = tmp_path / "good.toml"
    good.write_text("fee_rate_max_ppm = 5\n", encoding="utf-8")
    printed = run("rules", "--rules", str(good), check=True)
    assert "fee_rate_max_ppm = 5" in printed.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("fee_rate_max_ppm = 0.5\n", encoding="utf-8")
    result = run("rules", "--rules", str(bad))
    assert result.returncode == 2
    assert "fee_rate_max_ppm: expected an integer" in result.stderr


def test_schema_command_prints_the_schema():
    """Prints the JSON Schema of the wire format."""
    schema = json.loads(run("schema", check=True).stdout)
    assert {v["title"] for v in schema["oneOf"]} >= {"Trade", "Deposit", "VariationMargin"}


def test_missing_events_file_is_a_usage_error(tmp_path):
    """Exits 2 when the events file does not exist."""
    assert run("run", str(Path(tmp_path) / "nope.jsonl")).returncode == 2
