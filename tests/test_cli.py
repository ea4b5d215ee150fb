"""The command line, run as a real process: outcomes, summaries and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import settlekernel as sk
from golden import DEMO_ROOT
from settlekernel.core.wire import encode_event
from settlekernel.proofs.runner import catalogue

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
    assert summary["final_root"] == DEMO_ROOT


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


EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "strangle.json"


def test_margin_command_prints_requirement_scenarios_and_greeks():
    """Reports the hedged strangle's requirement, its worst scenario and its Greeks."""
    table = run("margin", str(EXAMPLE), check=True).stdout
    assert "6,335.12" in table  # maintenance, as docs/concepts/margin.md derives it
    assert "7,918.90" in table  # initial
    assert "<- worst" in table
    assert "theta" in table
    report = json.loads(run("margin", str(EXAMPLE), "--json", check=True).stdout)
    # Golden numbers: the engine is deterministic to the minor unit (SK-MARGIN-DET-1).
    assert (report["maintenance_minor"], report["initial_minor"], report["equity_minor"]) == (
        6_335_123_064,
        7_918_903_830,
        86_065_764_780,
    )
    btc = report["underlyings"][0]
    assert btc["worst_scenario_number"] == 16
    assert "16 " in next(line for line in table.splitlines() if "<- worst" in line)
    assert [s["number"] for s in btc["scenarios"]] == list(range(1, 24))
    assert report["units"]["asset"] == "USDC"
    # The same Greeks as the table: theta per day, vega per volatility point, in minor units.
    assert f"{btc['greeks']['theta_minor_per_day'] / 10**6:,.2f}" in table
    assert f"{btc['greeks']['vega_minor_per_volatility_point'] / 10**6:,.2f}" in table


def test_margin_command_refuses_a_malformed_portfolio(tmp_path):
    """Exits 2 naming the path of a float, a missing key or an unknown underlying."""
    good = EXAMPLE.read_text(encoding="utf-8")
    for bad, fragment in (
        (good.replace('"quantity_lots": 150', '"quantity_lots": 150.0'), "quantity_lots"),
        (good.replace('"clock_ms": 0,', ""), "missing key 'clock_ms'"),
        (good.replace('"market": {"BTC"', '"market": {"DOGE"'), "DOGE is not an underlying"),
        ("{", "not valid JSON"),
    ):
        path = tmp_path / "bad.json"
        path.write_text(bad, encoding="utf-8")
        result = run("margin", str(path))
        assert result.returncode == 2, bad
        assert fragment in result.stderr, result.stderr


def test_verify_proves_every_theorem_for_the_built_in_rules(tmp_path):
    """Prints the theorem table and exits 0; nothing is written when nothing fails."""
    result = run("verify", "--out", str(tmp_path / "cx"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Transfer.conservation" in result.stdout
    assert "of 89 theorems proved" in result.stdout
    assert "89 of 89" in result.stdout
    assert not (tmp_path / "cx").exists()


def test_verify_catches_a_planted_fault_and_replays_it(tmp_path):
    """Exits 1, writes the counterexample as events and says the replay reproduces it."""
    out = tmp_path / "cx"
    result = run("verify", "--fault", "self-transfer-double-credit", "--out", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Transfer.conservation: counterexample" in result.stdout
    assert "reproduces the violation" in result.stdout
    assert "INV-CONSERVATION" in result.stdout
    lines = (out / "Transfer.conservation.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[-1])["type"] == "transfer"
    # Replayed on the real kernel, the same events are refused: the fault was the cause.
    replayed = run("run", str(out / "Transfer.conservation.jsonl"), "--json")
    assert '"reason": "transfer_to_same_account"' in replayed.stdout


def test_verify_judges_a_changed_rule(tmp_path):
    """A band wider than the scan range fails one rule theorem, with its numbers."""
    rules = tmp_path / "rules.toml"
    rules.write_text("[underlyings.BTC]\nband_ppm = 120000\n", encoding="utf-8")
    result = run("verify", "--rules", str(rules), "--out", str(tmp_path / "cx"))
    assert result.returncode == 1
    assert "rules.band-below-maintenance[BTC]: counterexample" in result.stdout
    assert "88 of 89 theorems proved" in result.stdout


def test_audit_reports_every_invariant_with_its_proofs_and_contracts(tmp_path):
    """Writes one HTML page naming each invariant, its proofs, contracts, rules and code."""
    page = tmp_path / "audit.html"
    result = run("audit", "--html", str(page))
    assert result.returncode == 0, result.stdout + result.stderr
    text = page.read_text(encoding="utf-8")
    for invariant in sk.InvariantId:
        assert invariant.value in text
    assert sk.RuleSet.default().digest.hex() in text
    assert "Transfer.conservation" in text
    assert 'compute_fee_split</code>: <span class="ok">confirmed' in text
    assert "not modelled yet" in text
    # Every theorem is listed with the assumptions it rests on, by number.
    row = text[text.index("<tr><td>Trade.conservation</td>") :].split("</tr>")[0]
    assert "INV-CONSERVATION" in row
    assert "<a href='#A" in row
    assert "<b>A1</b>" in text
    assert "rules.band-below-maintenance[BTC]" in text
    # The page is full width and opens with counts of what was checked.
    assert "max-width" not in text
    assert "<td>z3 theorems proved</td><td><b>89 of 89" in text
    # Spec IDs link to the spec file that defines them; theorems link to their invariants.
    spec = (Path(__file__).resolve().parent.parent / "spec").as_uri()
    assert f"<a href='{spec}/30-transitions.md#:~:text=SK-LIQ-3'>SK-LIQ-3</a>" in text
    assert f"<a href='{spec}/60-invariants.md#:~:text=INV-CONSERVATION'>" in text
    funding = text[text.index("<tr><td>rules.funding-bounded[BTC]</td>") :].split("</tr>")[0]
    assert "<a href='#INV-FUNDING-BOUNDED'>INV-FUNDING-BOUNDED</a>" in funding
    band = text[text.index("<tr><td>rules.band-below-maintenance[BTC]</td>") :].split("</tr>")[0]
    assert "a promise of the rule set" in band


def test_audit_fails_on_an_unsound_rule_set(tmp_path):
    """A rules file with initial below maintenance fails its theorem: exit 1, FAILED."""
    rules = tmp_path / "rules.toml"
    rules.write_text("[underlyings.ETH]\nim_multiplier_ppm = 900000\n", encoding="utf-8")
    page = tmp_path / "audit.html"
    result = run("audit", "--rules", str(rules), "--html", str(page), "--crosshair-timeout", "0")
    assert result.returncode == 1
    assert "FAILURES" in result.stdout
    text = page.read_text(encoding="utf-8")
    # The invariant the broken rule underwrites is the one marked failed.
    row = text[text.index("<tr id='INV-MARGIN-ORDER'>") :].split("</tr>")[0]
    assert '<span class="bad">FAILED</span>' in row
    assert "rules.initial-covers-maintenance[ETH]: <span" in row
    conservation = text[text.index("<tr id='INV-CONSERVATION'>") :].split("</tr>")[0]
    assert "FAILED" not in conservation


NOT_UTF8 = b"\xff\xfe\x00not text"


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """Return the single line a usage or input error prints, checking exit 2 and no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-600:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines
    return lines[0]


def test_unusable_paths_and_inputs_are_one_line_errors(tmp_path):
    """Exits 2 with one line for a missing directory, an unwritable path or a non-UTF-8 file."""
    binary = tmp_path / "binary"
    binary.write_bytes(NOT_UTF8)
    grid = tmp_path / "grid.toml"
    grid.write_text("[scenario]\npaths = 1\nsteps = 2\naccounts = 2\n[rulesets.a]\n")
    cases = [
        (["demo", "--events-out", str(tmp_path / "no" / "dir" / "x.jsonl")], "No such file"),
        (["stress", "--paths", "1", "--steps", "2", "--no-plots", "--out", "/proc/x"], "/proc/x"),
        (["verify", "--fault", "fee-not-credited", "--out", "/proc/x"], "/proc/x"),
        (["rules", "--rules", str(binary)], "not UTF-8"),
        (["margin", str(binary)], "not UTF-8"),
        (["sweep", "--grid", str(binary)], "not UTF-8"),
        (["stress", "--rules", str(binary), "--paths", "1"], "not UTF-8"),
    ]
    for arguments, fragment in cases:
        line = one_line_error(run(*arguments))
        assert fragment in line, (arguments, line)


def test_a_shock_to_an_asset_the_market_lacks_is_a_usage_error(tmp_path):
    """Exits 2 naming the assets a shock may hit, for the stress command and a sweep grid."""
    for symbol in ("DOGE", "USDC"):
        line = one_line_error(run("stress", "--paths", "1", "--shock", f"{symbol}:100:3"))
        assert line.endswith(f"--shock {symbol}:100:3: the market's assets are BTC, ETH"), line
    grid = tmp_path / "grid.toml"
    grid.write_text('[scenario]\nshock = "DOGE:100:3"\n[rulesets.a]\n', encoding="utf-8")
    line = one_line_error(run("sweep", "--grid", str(grid)))
    assert "the market's assets are BTC, ETH" in line


def test_an_unreachable_scheduler_is_a_usage_error_within_its_timeout(tmp_path):
    """Exits 2 with one line when no Dask scheduler answers, after --connect-timeout seconds."""
    grid = tmp_path / "grid.toml"
    grid.write_text("[scenario]\npaths = 1\nsteps = 2\naccounts = 2\n[rulesets.a]\n")
    started = time.monotonic()
    result = run(
        "sweep",
        "--grid",
        str(grid),
        "--scheduler",
        "tcp://127.0.0.1:1",
        "--connect-timeout",
        "1",
        "--out",
        str(tmp_path / "out"),
    )
    assert "tcp://127.0.0.1:1" in one_line_error(result)
    assert time.monotonic() - started < 25


def test_output_that_the_terminal_cannot_encode_is_escaped_not_fatal(tmp_path):
    """Prints a non-ASCII rejection message escaped when stdout is ASCII-only, and exits 0."""
    events = tmp_path / "events.jsonl"
    events.write_text('{"type":"d\u00e9p\u00f4t"}\n', encoding="utf-8")
    result = subprocess.run(
        [*CLI, "run", str(events)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
    )
    assert result.returncode == 0, result.stderr
    assert "d\\xe9p\\xf4t" in result.stdout


def _at_80_columns(*arguments: str, exit_code: int = 0) -> str:
    """Run a command as if in an 80-column terminal; return its standard output."""
    environment = {**os.environ, "COLUMNS": "80"}
    result = subprocess.run(
        [*CLI, *arguments], capture_output=True, text=True, env=environment, check=False
    )
    assert result.returncode == exit_code, result.stdout + result.stderr
    return result.stdout


def _assert_fits_and_names_whole(text: str, names: set[str]) -> None:
    lines = text.splitlines()
    too_wide = [line for line in lines if len(line) > 80]
    assert not too_wide, too_wide
    words = {word.strip("│┃ ,:;()") for line in lines for word in line.split()}
    assert names <= words, sorted(names - words)


def test_verify_fits_80_columns_and_never_splits_a_theorem_name(tmp_path):
    """At 80 columns every line fits and each theorem and invariant is printed whole."""
    text = _at_80_columns("verify", "--out", str(tmp_path / "cx"))
    _, theorems = catalogue(sk.RuleSet.default())
    names = {theorem.name for theorem in theorems}
    names |= {invariant.value for theorem in theorems for invariant in theorem.invariants}
    _assert_fits_and_names_whole(text, names)
    # A failure's claim, counterexample and replay wrap between words too.
    fault = ("--fault", "self-transfer-double-credit", "--out", str(tmp_path / "cx"))
    text = _at_80_columns("verify", *fault, exit_code=1)
    _assert_fits_and_names_whole(text, {"Transfer.conservation", "INV-CONSERVATION"})


def test_demo_fits_80_columns():
    """At 80 columns every line of the demo fits, its refusals too, each reason whole."""
    text = _at_80_columns("demo")
    _assert_fits_and_names_whole(text, {"margin_insufficient", "instrument_already_settled"})


def test_audit_fits_80_columns_and_never_splits_an_invariant_id(tmp_path):
    """At 80 columns every line fits; each invariant, test file and the digest is whole."""
    text = _at_80_columns("audit", "--crosshair-timeout", "0", "--html", str(tmp_path / "a.html"))
    names = {invariant.value for invariant in sk.InvariantId}
    names |= {path.name for path in (Path(__file__).parent).glob("test_*.py") if path.name in text}
    names.add(sk.RuleSet.default().digest.hex())
    _assert_fits_and_names_whole(text, names)
    assert "test_margin_engine_in_the_kernel.py" in names


def test_run_fits_80_columns_and_never_splits_a_reason_code(tmp_path):
    """At 80 columns every line fits; each reason code and root prefix is printed whole."""
    lines = [
        encode_event(sk.OpenAccount(principal="a", account="a")),
        '{"type":"deposit","principal":"a","account":"a","asset":"USDC","amount_minor":1.5}',
        "not json",
        encode_event(sk.Deposit(principal="a", account="a", asset="USDC", amount_minor=5)),
        encode_event(sk.Withdraw(principal="a", account="a", asset="USDC", amount_minor=500)),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    text = _at_80_columns("run", str(path))
    records = [json.loads(line) for line in run("run", str(path), "--json").stdout.splitlines()]
    names = {record["reason"] for record in records[:-1] if "reason" in record}
    names |= {record["root"][:16] for record in records[:-1]}
    assert names >= {"field_type_invalid", "json_invalid", "insufficient_funds"}
    _assert_fits_and_names_whole(text, names)
