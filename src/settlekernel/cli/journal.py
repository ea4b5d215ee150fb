"""``settlekernel journal ...`` and ``settlekernel proof ...``: the durable journal's shell.

Exit codes as for the rest of the CLI: 0 success; 1 the journal does not verify, or a proof
does not check; 2 a usage error (a missing file, a file that is not a journal, rules that
differ from the journal's).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from settlekernel.cli.common import InputError, describe_os_error, load_rules
from settlekernel.commitments.merkle_sum import (
    SECRET_BYTES_MIN,
    MerkleSumError,
    commit,
    proof_from_json,
    proof_to_json,
    prove,
    verify_proof,
)
from settlekernel.core.model import State
from settlekernel.core.root import state_root
from settlekernel.core.rules import RuleSet
from settlekernel.core.rules_toml import dump_rules_toml
from settlekernel.journal.batches import RootMode
from settlekernel.journal.durable import (
    DurableJournal,
    JournalError,
    RootModeMismatchError,
    RulesMismatchError,
    open_for_audit,
    recover_readonly,
)
from settlekernel.journal.store import DamagedStoreError, JournalStore, StoreError
from settlekernel.journal.verify import AuditReport, Finding, audit_batch_number, audit_journal

EXIT_VIOLATION = 1
HASH_BYTES = 32
BATCH_LINES_DEFAULT = 1_000

_DB = click.option(
    "--db",
    "db",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The journal's SQLite file.",
)
_JSON = click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")


@click.group()
def journal() -> None:
    """Append to, replay and verify a durable journal (SQLite)."""


@contextmanager
def _opened(
    db: Path, rules: RuleSet | None = None, root_mode: RootMode | None = None
) -> Iterator[DurableJournal]:
    try:
        opened = DurableJournal.open(db, rules, root_mode=root_mode)
    except DamagedStoreError as error:
        click.echo(f"cannot open {db}: {error}; `settlekernel journal verify` locates it", err=True)
        sys.exit(EXIT_VIOLATION)
    except StoreError as error:
        raise InputError(str(error)) from error
    except (RulesMismatchError, RootModeMismatchError) as error:
        raise InputError(f"{db}: {error}") from error
    except JournalError as error:
        click.echo(f"cannot open {db}: {error}; `settlekernel journal verify` locates it", err=True)
        sys.exit(EXIT_VIOLATION)
    try:
        yield opened
    finally:
        opened.close()


def recovered_head(db: Path) -> State:
    """Return the head state of the journal at ``db`` for a command that only reads it."""
    state, _ = _recovered(db)
    return state


def _recovered(db: Path) -> tuple[State, int]:
    """Return the journal's head state and batch number, reading the file only."""
    try:
        state, head = recover_readonly(db)
    except DamagedStoreError as error:
        click.echo(f"cannot open {db}: {error}; `settlekernel journal verify` locates it", err=True)
        sys.exit(EXIT_VIOLATION)
    except StoreError as error:
        raise InputError(str(error)) from error
    except JournalError as error:
        click.echo(f"cannot open {db}: {error}; `settlekernel journal verify` locates it", err=True)
        sys.exit(EXIT_VIOLATION)
    return state, 0 if head is None else head.number


def _rules_option(path: Path | None) -> RuleSet | None:
    return None if path is None else load_rules(path)


@journal.command()
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_DB
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Rules of a new journal; an existing one must have been created under them.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 100_000),
    default=BATCH_LINES_DEFAULT,
    show_default=True,
    help="Lines per batch (one transaction each).",
)
@click.option(
    "--root-mode",
    type=click.Choice([mode.value for mode in RootMode]),
    default=None,
    help=(
        "Of a new journal: a state root after every entry (entry, the default) or one per "
        "batch (batch); an existing journal must have been created with it."
    ),
)
@_JSON
def append(  # noqa: PLR0913 (one parameter per option)
    events: Path,
    db: Path,
    rules_path: Path | None,
    batch_size: int,
    root_mode: str | None,
    *,
    as_json: bool,
) -> None:
    """Append EVENTS (JSON Lines) to the journal in batches, each committed durably."""
    counts = {"batches": 0, "accepted": 0, "rejected": 0}
    mode = None if root_mode is None else RootMode(root_mode)
    with _opened(db, _rules_option(rules_path), mode) as opened:
        batch: list[str] = []
        with events.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.strip():
                    batch.append(line.rstrip("\n"))
                if len(batch) == batch_size:
                    _append_batch(opened, batch, counts)
        if batch:
            _append_batch(opened, batch, counts)
        summary = {
            **counts,
            "head_batch": 0 if opened.head is None else opened.head.number,
            "final_root": state_root(opened.state).hex(),
            "batch_hash": "" if opened.head is None else opened.head.batch_hash.hex(),
        }
    _echo(summary, as_json=as_json)


def _append_batch(opened: DurableJournal, batch: list[str], counts: dict[str, int]) -> None:
    try:
        executed = opened.append(batch)
    except StoreError as error:
        raise InputError(f"batch {counts['batches'] + 1} of this append: {error}") from error
    counts["batches"] += 1
    counts["accepted"] += executed.header.entry_count
    counts["rejected"] += executed.header.record_count - executed.header.entry_count
    batch.clear()


def _echo(summary: dict[str, object], *, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    for key, value in summary.items():
        click.echo(f"{key:<13} {value}")


@contextmanager
def _audit_target(db: Path, *, as_json: bool) -> Iterator[tuple[JournalStore, RuleSet, bytes]]:
    """Open ``db`` read-only; a file that is damaged is a failed verification, not an error."""
    try:
        store, rules, genesis_root = open_for_audit(db)
    except DamagedStoreError as error:
        _exit_failed(Finding("database", "damaged", str(error)), as_json=as_json)
    except StoreError as error:
        raise InputError(str(error)) from error
    except JournalError as error:
        _exit_failed(Finding("journal", "rules", str(error)), as_json=as_json)
    try:
        yield store, rules, genesis_root
    finally:
        store.close()


def _exit_failed(finding: Finding, *, as_json: bool) -> NoReturn:
    """Report a journal that could not be re-executed at all, and exit 1."""
    _print_report(AuditReport(finding, 0, 0, 0, b""), "", as_json=as_json)
    sys.exit(EXIT_VIOLATION)


def _print_report(report: AuditReport, verdict: str, *, as_json: bool) -> None:
    """Print the verdict and the head to pin (``head_batch_hash``); exit 1 on a finding."""
    summary: dict[str, object] = {
        "result": "ok" if report.finding is None else "failed",
        "batches": report.batches,
        "records": report.records,
        "entries": report.entries,
        "final_root": report.final_root.hex(),
        "head_batch": report.batches,
        "head_batch_hash": report.head_batch_hash.hex(),
    }
    if report.finding is not None:
        summary["where"] = report.finding.where
        summary["field"] = report.finding.field
        summary["detail"] = report.finding.detail
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    elif report.finding is None:
        click.echo(f"ok: {verdict}")
        _echo({k: v for k, v in summary.items() if k != "result"}, as_json=False)
    else:
        click.echo(f"FAILED {report.finding}")
        click.echo(f"(re-executed {report.batches} batches, {report.records} records before it)")
    if report.finding is not None:
        sys.exit(EXIT_VIOLATION)


def _head_hash(text: str | None) -> bytes | None:
    """Parse ``--expect-head``: a batch hash as 64 hexadecimal digits."""
    if text is None:
        return None
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != HASH_BYTES:
        raise InputError(f"--expect-head {text[:80]}: expected a batch hash, 64 hex digits")
    return value


@journal.command("rules")
@_DB
@_JSON
def rules_in_force(db: Path, *, as_json: bool) -> None:
    """Print the rules in force at the journal's head, and any pending change (SK-GOV-3..6)."""
    state, head = _recovered(db)
    proposal, grace = state.proposal, state.grace
    summary: dict[str, object] = {
        "head_batch": head,
        "rules_digest": state.rules.digest.hex(),
        "rules_toml": dump_rules_toml(state.rules),
        "proposal": None
        if proposal is None
        else {
            "id": proposal.id,
            "rules_digest": proposal.rules.digest.hex(),
            "proposed_ms": proposal.proposed_ms,
            "effective_ms": proposal.effective_ms,
        },
        "grace": None
        if grace is None
        else {"until_ms": grace.until_ms, "accounts": sorted(grace.accounts)},
    }
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    click.echo(f"# rules in force at batch {head}, digest {state.rules.digest.hex()}")
    if proposal is not None:
        click.echo(
            f"# pending change {proposal.id}: digest {proposal.rules.digest.hex()}, "
            f"effective at {proposal.effective_ms} ms"
        )
    if grace is not None:
        click.echo(f"# grace until {grace.until_ms} ms for {len(grace.accounts)} account(s)")
    click.echo(dump_rules_toml(state.rules).rstrip("\n"))


@journal.command()
@_DB
@_JSON
def replay(db: Path, *, as_json: bool) -> None:
    """Re-derive every state root from the events; print the final root."""
    with _audit_target(db, as_json=as_json) as (store, rules, genesis_root):
        report = audit_journal(store, rules, genesis_root, full=False)
    _print_report(report, "every entry's root re-derived from its event", as_json=as_json)


@journal.command()
@_DB
@click.option(
    "--expect-head",
    "expect_head",
    default=None,
    help="A batch hash published earlier: fail if the journal no longer holds that batch.",
)
@_JSON
def verify(db: Path, expect_head: str | None, *, as_json: bool) -> None:
    """Check the hash chains and re-execute everything; name the first difference."""
    expected = _head_hash(expect_head)
    with _audit_target(db, as_json=as_json) as (store, rules, genesis_root):
        report = audit_journal(store, rules, genesis_root, expect_head=expected)
    _print_report(report, "chains, events, postings, roots and snapshots check", as_json=as_json)


@journal.command("verify-batch")
@click.argument("number", type=click.IntRange(1))
@_DB
@_JSON
def verify_batch(number: int, db: Path, *, as_json: bool) -> None:
    """Re-execute batch NUMBER from its pre-state; name the first diverging event."""
    with _audit_target(db, as_json=as_json) as (store, rules, genesis_root):
        last = _last_batch_number(store, as_json=as_json)
        if number > last:
            raise InputError(f"batch {number}: the journal has {last} batches")
        report = audit_batch_number(store, rules, genesis_root, number)
    _print_report(report, f"batch {number} re-executes to its commitment", as_json=as_json)


def _last_batch_number(store: JournalStore, *, as_json: bool) -> int:
    try:
        head = store.last_batch()
    except DamagedStoreError as error:
        _exit_failed(Finding("database", "damaged", str(error)), as_json=as_json)
    return 0 if head is None else head.number


@click.group()
def proof() -> None:
    """Merkle-sum proofs of liabilities: publish roots, prove and check an account."""


_SECRET = click.option(
    "--secret-file",
    "secret_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The operator's secret (32 bytes or more; `proof new-secret` makes one).",
)


def _secret(path: Path) -> bytes:
    """Read the operator's secret; one too short, or a missing file, is an input error."""
    try:
        secret = path.read_bytes()
    except OSError as error:
        raise InputError(f"--secret-file {describe_os_error(error)}") from error
    if len(secret) < SECRET_BYTES_MIN:
        raise InputError(
            f"--secret-file {path}: {len(secret)} bytes, a secret holds {SECRET_BYTES_MIN} or more"
        )
    return secret


@proof.command("new-secret")
@click.argument("secret_file", type=click.Path(dir_okay=False, path_type=Path))
def new_secret(secret_file: Path) -> None:
    """Write a new operator secret (32 random bytes, readable by its owner only) to a new file."""
    try:
        descriptor = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise InputError(describe_os_error(error)) from error
    with os.fdopen(descriptor, "wb") as file:
        file.write(secrets.token_bytes(SECRET_BYTES_MIN))
    click.echo(f"wrote {secret_file}: keep it; every salt, root and proof derives from it")


@proof.command()
@_DB
@_SECRET
def roots(db: Path, secret_file: Path) -> None:
    """Print each asset's Merkle-sum root and total liabilities (what the operator publishes)."""
    secret = _secret(secret_file)
    state, head = _recovered(db)
    trees = commit(state, secret)
    published = {
        asset: {"root": tree.root.hash.hex(), "total_minor": str(tree.root.sum_minor)}
        for asset, tree in trees.items()
    }
    click.echo(json.dumps({"batch": head, "assets": published}, sort_keys=True))


@proof.command()
@click.argument("account_id")
@_DB
@_SECRET
@click.option("--asset", default=None, help="One asset only (default: every asset).")
def account(account_id: str, db: Path, secret_file: Path, asset: str | None) -> None:
    """Print ACCOUNT_ID's inclusion proofs (with its salt), each asset's root and total, as JSON."""
    secret = _secret(secret_file)
    state, head = _recovered(db)
    trees = commit(state, secret)
    if asset is not None and asset not in trees:
        raise InputError(f"--asset {asset}: not an asset of the journal's rules")
    proofs = []
    for symbol, tree in trees.items():
        if asset is not None and symbol != asset:
            continue
        found = prove(tree, account_id)
        if found is None:
            raise InputError(f"account {account_id} has no leaf (unknown, or a system account)")
        proofs.append(
            {
                "root": tree.root.hash.hex(),
                "total_minor": str(tree.root.sum_minor),
                "proof": proof_to_json(found),
            }
        )
    click.echo(json.dumps({"batch": head, "proofs": proofs}, sort_keys=True, indent=2))


@proof.command("verify")
@click.argument("proof_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--root", "root_hex", required=True, help="The published root (hex).")
@click.option(
    "--total",
    "total_minor",
    required=True,
    type=click.IntRange(0),
    help="The published total liabilities, in minor units.",
)
@click.option("--asset", default=None, help="Which proof of the file (when it holds several).")
def verify_proof_command(
    proof_file: Path, root_hex: str, total_minor: int, asset: str | None
) -> None:
    """Check a proof from `proof account` against a published root and total."""
    try:
        document = json.loads(proof_file.read_text(encoding="utf-8"))
        candidates = [item["proof"] for item in document["proofs"]]
        chosen = [proof_from_json(c) for c in candidates]
        root = bytes.fromhex(root_hex)
    except (OSError, ValueError, KeyError, TypeError, MerkleSumError) as error:
        raise InputError(f"{proof_file}: not a proof file ({error})") from error
    chosen = [p for p in chosen if asset is None or p.asset == asset]
    if len(chosen) != 1:
        raise InputError("name one proof of the file with --asset")
    problem = verify_proof(chosen[0], root, total_minor)
    if problem is not None:
        click.echo(f"FAILED {problem}")
        sys.exit(EXIT_VIOLATION)
    found = chosen[0]
    click.echo(
        f"ok: {found.account} holds {found.balance_minor} {found.asset} minor units, "
        f"counted in the total {total_minor}"
    )
