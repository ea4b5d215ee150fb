"""``settlekernel conformance``: run the golden vectors here or against another program.

spec/96-conformance.md (SK-CONF) specifies the vectors and the line protocol; ``--serve``
makes this command the protocol's reference program.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from settlekernel.cli.common import InputError
from settlekernel.cli.display import margin_report_json
from settlekernel.cli.portfolio_file import PortfolioError, parse_portfolio
from settlekernel.conformance.program import Program, ProgramError
from settlekernel.conformance.vectors import (
    Kernel,
    Mismatch,
    check_lifecycle,
    check_margin,
    load_cases,
    shipped_directory,
)
from settlekernel.core.rules_toml import RulesError, parse_rules_toml
from settlekernel.margin.portfolio import compute_margin

EXIT_FAILED = 1


def margin_report(portfolio: str, rules_toml: str) -> dict[str, Any]:
    """Return this kernel's margin report of a portfolio file, as ``margin --json`` prints it."""
    rules = parse_rules_toml(rules_toml)
    book, market = parse_portfolio(portfolio, rules)
    report = compute_margin(book, market, rules, with_greeks=True)
    decimals = rules.asset_by_symbol[rules.valuation_asset].decimals
    return margin_report_json(report, decimals, rules.valuation_asset)


def _serve() -> None:
    """Answer one case of the line protocol on standard input (SK-CONF-3)."""
    lines = sys.stdin.read().splitlines()
    if not lines:
        raise InputError("--serve: no header line on standard input")
    header = json.loads(lines[0])
    if header.get("kind") == "margin":
        click.echo(json.dumps(margin_report(lines[1], header["rules_toml"]), sort_keys=True))
        return
    genesis_root, results = Kernel().run(header["rules_toml"], lines[1:])
    click.echo(json.dumps({"genesis_root": genesis_root}))
    for result in results:
        answer = {"outcome": result.outcome, "postings": result.postings, "root": result.root}
        click.echo(json.dumps(answer, sort_keys=True))


def _check(case: dict[str, Any], program: Program | None) -> list[Mismatch]:
    """Run one case; an implementation that fails outright is one mismatch."""
    try:
        if case["kind"] == "margin":
            report = margin_report if program is None else program.margin
            return check_margin(case, report)
        return check_lifecycle(case, Kernel() if program is None else program)
    except (ProgramError, PortfolioError, RulesError, ValueError, KeyError) as error:
        return [Mismatch(case["name"], 0, "implementation", "an answer", str(error))]


@click.command()
@click.argument(
    "directory", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.option("--cmd", "command", help="Run the vectors against PROGRAM (the line protocol).")
@click.option("--serve", is_flag=True, help="Be the reference program of the line protocol.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def conformance(directory: Path | None, command: str | None, *, serve: bool, as_json: bool) -> None:
    """Run the conformance vectors (default: those shipped) and print pass or fail per case."""
    if serve:
        _serve()
        return
    try:
        cases = load_cases(directory or shipped_directory())
        program = None if command is None else Program(command)
    except (ValueError, ProgramError) as error:
        raise InputError(str(error)) from error
    if not cases:
        raise InputError(f"{directory}: no conformance cases (*.json)")
    results = [(case, _check(case, program)) for case in cases]
    failed = sum(1 for _, found in results if found)
    if as_json:
        rows = [
            {
                "file": c["file"],
                "case": c["name"],
                "kind": c["kind"],
                "mismatches": [str(m) for m in f],
            }
            for c, f in results
        ]
        click.echo(json.dumps({"cases": len(cases), "failed": failed, "results": rows}))
    else:
        _print(results, failed)
    if failed:
        sys.exit(EXIT_FAILED)


def _print(results: list[tuple[dict[str, Any], list[Mismatch]]], failed: int) -> None:
    table = Table(title="Conformance vectors")
    for column in ("file", "case", "kind", "steps", "result"):
        table.add_column(column)
    for case, found in results:
        steps = str(len(case.get("steps", []))) if case["kind"] == "lifecycle" else "-"
        verdict = (
            "pass"
            if not found
            else f"FAIL: {found[0]}" + (f" (+{len(found) - 1} more)" if len(found) > 1 else "")
        )
        table.add_row(case["file"], case["name"], case["kind"], steps, verdict)
    console = Console()
    console.print(table)
    console.print(f"{len(results) - failed} of {len(results)} cases pass.")
