"""`settlekernel journal` and `settlekernel proof`, run as real processes on a real file."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from golden import JOURNAL_ROOT
from journal_files import journal_steps
from settlekernel.core.wire import encode_event

CLI = [sys.executable, "-m", "settlekernel"]


def run(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *arguments], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def journal_db(tmp_path_factory):
    """The journal session's events (and one junk line) appended in batches of 16."""
    folder = tmp_path_factory.mktemp("cli")
    events = folder / "demo.jsonl"
    lines = [encode_event(demo_step.event) for demo_step in journal_steps()]
    events.write_text("\n".join([*lines[:40], "junk", "", *lines[40:]]) + "\n", encoding="utf-8")
    db = folder / "demo.db"
    result = run("journal", "append", str(events), "--db", str(db), "--batch-size", "16", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["accepted"] == 72
    assert summary["rejected"] == len(lines) - 72 + 1
    assert summary["batches"] == summary["head_batch"] == 6
    assert summary["final_root"] == JOURNAL_ROOT
    return db


def test_replay_and_verify_an_honest_journal(journal_db):
    """Re-derives every root and prints the final one; verify and verify-batch agree."""
    for command in ("replay", "verify"):
        result = run("journal", command, "--db", str(journal_db), "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)
        assert (report["result"], report["final_root"], report["entries"]) == (
            "ok",
            JOURNAL_ROOT,
            72,
        )
    result = run("journal", "verify-batch", "3", "--db", str(journal_db))
    assert result.returncode == 0
    assert result.stdout.startswith("ok: batch 3 re-executes")


def test_verify_names_the_tampered_record_and_field(journal_db, tmp_path):
    """Exits 1 and names the batch, record, entry and field of a changed posting."""
    copy = tmp_path / "tampered.db"
    copy.write_bytes(journal_db.read_bytes())
    db = sqlite3.connect(copy)
    db.execute("UPDATE postings SET amount_minor = amount_minor || '0' WHERE sequence = 5")
    db.commit()
    db.close()
    result = run("journal", "verify", "--db", str(copy))
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED batch 1, record 5 (entry 5): posting 0 amount_minor")
    assert run("journal", "verify-batch", "1", "--db", str(copy)).returncode == 1
    assert run("journal", "verify-batch", "2", "--db", str(copy)).returncode == 0
    # Replay re-derives roots only: postings are verify's business.
    assert run("journal", "replay", "--db", str(copy)).returncode == 0


def test_an_account_proves_its_balance_against_the_published_root(journal_db, tmp_path):
    """Proves alice's USDC against the published root and total; a wrong total fails."""
    secret = tmp_path / "operator.secret"
    made = run("proof", "new-secret", str(secret))
    assert made.returncode == 0, made.stderr
    assert len(secret.read_bytes()) == 32
    assert secret.stat().st_mode & 0o777 == 0o600
    assert run("proof", "new-secret", str(secret)).returncode == 2  # Never overwritten.
    keyed = ("--db", str(journal_db), "--secret-file", str(secret))
    published = json.loads(run("proof", "roots", *keyed).stdout)["assets"]
    result = run("proof", "account", "alice", *keyed, "--asset", "USDC")
    assert result.returncode == 0, result.stderr
    proof_file = tmp_path / "alice.json"
    proof_file.write_text(result.stdout, encoding="utf-8")
    usdc = published["USDC"]
    good = run(
        "proof", "verify", str(proof_file), "--root", usdc["root"], "--total", usdc["total_minor"]
    )
    assert good.returncode == 0, good.stdout + good.stderr
    assert good.stdout.startswith("ok: alice holds")
    bad = run("proof", "verify", str(proof_file), "--root", usdc["root"], "--total", "1")
    assert bad.returncode == 1
    assert "total" in bad.stdout
    assert run("proof", "account", "nobody", *keyed).returncode == 2
    assert len(json.loads(result.stdout)["proofs"][0]["proof"]["salt"]) == 64
    short = tmp_path / "short.secret"
    short.write_bytes(b"x" * 31)
    refused = run("proof", "roots", "--db", str(journal_db), "--secret-file", str(short))
    assert refused.returncode == 2
    assert "31 bytes, a secret holds 32 or more" in refused.stderr
    assert run("proof", "roots", "--db", str(journal_db)).returncode == 2  # The secret is required.


def test_usage_errors_exit_2(journal_db, tmp_path):
    """Exits 2 for a missing journal, a file that is not one, and other rules."""
    assert run("journal", "verify", "--db", str(tmp_path / "absent.db")).returncode == 2
    text = tmp_path / "text.db"
    text.write_text("not a database at all, just words\n" * 200, encoding="utf-8")
    assert run("journal", "verify", "--db", str(text)).returncode == 2
    rules = tmp_path / "rules.toml"
    rules.write_text("fee_rate_max_ppm = 9000\n", encoding="utf-8")
    events = tmp_path / "none.jsonl"
    events.write_text("\n", encoding="utf-8")
    result = run("journal", "append", str(events), "--db", str(journal_db), "--rules", str(rules))
    assert result.returncode == 2
    assert "other rules" in result.stderr


HOSTILE_LINES = [
    '{"type":"deposit","principal":"a","account":"a","asset":"USDC","amount_minor":' + value + "}"
    for value in ("9" * 4_301, "-" + "9" * 5_000, "[" * 900 + "]" * 900, "1" + "0" * 4_400)
]


def test_verify_gives_one_verdict_under_any_integer_string_limit(tmp_path):
    """Appends under one PYTHONINTMAXSTRDIGITS and verifies identically under every other."""
    events = tmp_path / "hostile.jsonl"
    events.write_text("\n".join(HOSTILE_LINES) + "\n", encoding="utf-8")
    db = tmp_path / "hostile.db"
    env = {**os.environ, "PYTHONINTMAXSTRDIGITS": "0"}
    appended = subprocess.run(
        [*CLI, "journal", "append", str(events), "--db", str(db)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert appended.returncode == 0, appended.stderr
    verdicts = set()
    for limit in ("0", "640", "4300"):
        result = subprocess.run(
            [*CLI, "journal", "verify", "--db", str(db), "--json"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "PYTHONINTMAXSTRDIGITS": limit},
        )
        verdicts.add((result.returncode, result.stdout))
    assert verdicts == {(0, next(iter(verdicts))[1])}, verdicts


def test_commands_refuse_files_that_are_not_journals_without_writing(tmp_path):
    """Exits 2 with one line for a foreign database, an empty file and a missing directory."""
    other = tmp_path / "other.sqlite"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE people (name TEXT)")
    db.commit()
    db.close()
    empty = tmp_path / "empty.db"
    empty.touch()
    events = tmp_path / "events.jsonl"
    events.write_text('{"type":"open_account","principal":"a","account":"a"}\n', encoding="utf-8")
    secret = tmp_path / "operator.secret"
    secret.write_bytes(bytes(32))
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    for command in (
        ["journal", "append", str(events), "--db", str(other)],
        ["journal", "append", str(events), "--db", str(empty)],
        ["journal", "append", str(events), "--db", str(tmp_path / "no" / "such" / "l.db")],
        ["journal", "verify", "--db", str(empty)],
        ["proof", "roots", "--db", str(empty), "--secret-file", str(secret)],
        ["proof", "roots", "--db", str(other), "--secret-file", str(secret)],
        ["proof", "account", "alice", "--db", str(empty), "--secret-file", str(secret)],
    ):
        result = run(*command)
        assert result.returncode == 2, (command, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (command, result.stderr)
        assert result.stderr.startswith("Error: "), result.stderr
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_verify_prints_the_head_and_checks_a_published_one(journal_db):
    """Prints the head to publish; --expect-head passes for it and fails for another hash."""
    report = json.loads(run("journal", "verify", "--db", str(journal_db), "--json").stdout)
    assert report["head_batch"] == 6
    head = report["head_batch_hash"]
    assert len(head) == 64
    assert run("journal", "verify", "--db", str(journal_db), "--expect-head", head).returncode == 0
    other = run("journal", "verify", "--db", str(journal_db), "--expect-head", "ab" * 32)
    assert other.returncode == 1
    assert other.stdout.startswith("FAILED journal: head: the published head abababababababab")
    malformed = run("journal", "verify", "--db", str(journal_db), "--expect-head", "xyz")
    assert malformed.returncode == 2
    assert malformed.stderr.strip().splitlines() == [
        "Error: --expect-head xyz: expected a batch hash, 64 hex digits"
    ]


def test_verify_batch_beyond_the_journal_is_a_usage_error(journal_db):
    """Exits 2 with one line for a batch number the journal does not have; exit 1 is kept."""
    result = run("journal", "verify-batch", "99", "--db", str(journal_db))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["Error: batch 99: the journal has 6 batches"]
    assert result.stdout == ""
