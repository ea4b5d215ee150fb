"""``settlekernel verify`` and ``audit``: prove every theorem, replay counterexamples, report.

Exit codes as the rest of the CLI: 0 every theorem proved; 1 a theorem failed (a
counterexample, ``unknown`` or a vacuous theorem), or, checking a change against a journal,
the change cannot govern its state or alone pushes an account below maintenance; 2 a usage
error.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.padding import Padding
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from settlekernel.cli.common import has_module, load_rules, rules_option
from settlekernel.cli.display import format_minor, labelled_lines
from settlekernel.cli.journal import recovered_head
from settlekernel.core.rules import RuleSet
from settlekernel.core.rules_toml import dump_rules_toml
from settlekernel.margin.impact import RuleChangeImpact, rule_change_impact
from settlekernel.proofs import report as audit_report
from settlekernel.proofs.engine import Status
from settlekernel.proofs.faults import FAULTS
from settlekernel.proofs.replay import describe
from settlekernel.proofs.runner import DEFAULT_TIMEOUT_MS, Result, catalogue, prove

EXIT_FAILED = 1
_STYLE = {
    Status.PROVED: "green",
    Status.COUNTEREXAMPLE: "red",
    Status.UNKNOWN: "red",
    Status.VACUOUS: "red",
}


def _warn_unsound(console: Console, rules: RuleSet) -> None:
    for problem in rules.problems():
        console.print(f"[yellow]genesis would refuse these rules[/yellow]: {problem}")


def run_catalogue(
    rules: RuleSet, fault_name: str | None, out_dir: Path | None, timeout_ms: int, console: Console
) -> list[Result]:
    """Prove every theorem with a progress bar; return the results in catalogue order."""
    fault = None if fault_name is None else FAULTS[fault_name]
    rules, theorems = catalogue(rules, fault)
    results: list[Result] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("proving", total=len(theorems))
        for theorem in theorems:
            progress.update(task, description=theorem.name)
            results.append(prove(theorem, rules, fault, out_dir, timeout_ms))
            progress.advance(task)
    return results


def results_table(results: list[Result]) -> Table:
    """Return the theorem / status / time table; each theorem's invariants sit under its name.

    Identifiers never wrap: a theorem name and each invariant it serves get a line of their
    own, so the table fits 80 columns without cutting a name that a reader would grep for.
    """
    table = Table(title="Theorems", title_justify="left")
    table.add_column("theorem, then the invariants it serves", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    for result in results:
        status = result.verdict.status
        cell = Text(result.theorem.name)
        for invariant in result.theorem.invariants:
            cell.append(f"\n  {invariant.value}", style="dim")
        table.add_row(
            cell,
            Text(status.value, style=_STYLE[status]),
            f"{result.verdict.seconds * 1000:.0f} ms",
        )
    return table


def _print_failure(console: Console, result: Result) -> None:
    def say(indent: int, line: str) -> None:
        # Wrapped between words under its own indent; plain text, so no value reads as markup.
        console.print(Padding(Text(line), (0, 0, 0, indent), expand=False))

    console.print(Text(result.theorem.name, style="red") + f": {result.verdict.status.value}")
    say(2, f"claim: {result.theorem.statement}")
    if result.verdict.detail:
        say(2, f"z3: {result.verdict.detail}")
    if result.counterexample:
        values = ", ".join(f"{k}={v!r}" for k, v in sorted(result.counterexample.items()))
        say(2, f"counterexample: {values}")
    if result.note:
        say(2, result.note)
    if result.replay is not None:
        if result.events_file is not None:
            say(2, f"events from genesis: {result.events_file}")
        for line in describe(result.replay).splitlines():
            say(4, line)
        verdict = "reproduces" if result.replay.reproduced else "does NOT reproduce"
        say(2, f"the replay through the kernel {verdict} the violation")


@click.command()
@rules_option
@click.option(
    "--fault",
    type=click.Choice(sorted(FAULTS)),
    default=None,
    help="Plant one known fault first, to see a proof catch it.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("counterexamples"),
    show_default=True,
    help="Where failing theorems write their counterexample events (JSON Lines).",
)
@click.option(
    "--timeout",
    type=click.IntRange(min=1),
    default=DEFAULT_TIMEOUT_MS // 1000,
    show_default=True,
    help="Seconds z3 may spend per obligation; running out is a failure.",
)
@click.option(
    "--against",
    "against_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Rules in force (TOML): also prove them, and report what --rules changes.",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A journal: list its accounts that --rules alone would move below a margin line.",
)
def verify(  # noqa: PLR0913, PLR0917 (one parameter per option)
    rules_path: Path | None,
    fault: str | None,
    out_dir: Path,
    timeout: int,
    against_path: Path | None,
    db: Path | None,
) -> None:
    """Prove every invariant theorem for the rules; replay each counterexample as events."""
    console = Console()
    rules = load_rules(rules_path, check=False)
    _warn_unsound(console, rules)
    head = None if db is None else recovered_head(db)
    results = run_catalogue(rules, fault, out_dir, timeout * 1000, console)
    console.print(results_table(results))
    failed = [result for result in results if not result.verdict.passed]
    for result in failed:
        _print_failure(console, result)
    total = sum(result.verdict.seconds for result in results)
    console.print(
        f"{len(results) - len(failed)} of {len(results)} theorems proved in {total:.2f} s; "
        f"rules {rules.digest.hex()[:16]}"
    )
    blocked = False
    if against_path is not None:
        old_rules = load_rules(against_path, check=False)
        old_results = run_catalogue(old_rules, fault, None, timeout * 1000, console)
        _print_changes(console, old_rules, rules, old_results, results)
    if head is not None:
        impact = rule_change_impact(head, rules)
        _print_impact(console, db, impact, rules)
        blocked = bool(impact.incompatible or impact.below_maintenance)
    if failed or blocked:
        raise SystemExit(EXIT_FAILED)


def _print_changes(
    console: Console,
    old_rules: RuleSet,
    new_rules: RuleSet,
    old_results: list[Result],
    new_results: list[Result],
) -> None:
    """Print the rule lines that differ and every theorem whose status differs (SK-GOV-2)."""
    old_lines = set(_sectioned(dump_rules_toml(old_rules)))
    changed = [
        f"{section} {line}".strip()
        for section, line in _sectioned(dump_rules_toml(new_rules))
        if (section, line) not in old_lines
    ]
    console.print(Text(f"against rules {old_rules.digest.hex()[:16]}:", style="bold"))
    for line in changed or ["(no rule line differs)"]:
        console.print(Padding(Text(line), (0, 0, 0, 2), expand=False))
    before = {result.theorem.name: result.verdict.status for result in old_results}
    moved = [
        (result.theorem.name, before.get(result.theorem.name), result.verdict.status)
        for result in new_results
        if before.get(result.theorem.name) is not result.verdict.status
    ]
    if not moved:
        console.print("every theorem has the same status under both rule sets")
    for name, old, new in moved:
        was = "absent" if old is None else old.value
        console.print(Text(f"{name}: {was} -> {new.value}", style=_STYLE[new]))


def _sectioned(toml_text: str) -> list[tuple[str, str]]:
    """Return each ``key = value`` line of a TOML text with the table it sits in."""
    section, lines = "", []
    for line in toml_text.splitlines():
        if line.startswith("["):
            section = line
        elif "=" in line:
            lines.append((section, line))
    return lines


def _print_impact(
    console: Console, db: Path | None, impact: RuleChangeImpact, rules: RuleSet
) -> None:
    """Print which of the journal's accounts the change alone moves below a line."""
    decimals = rules.asset_by_symbol[rules.valuation_asset].decimals

    def amount(minor: int) -> str:
        return format_minor(minor, decimals)

    console.print(Text(f"on the head state of {db}:", style="bold"))
    for problem in impact.incompatible:
        console.print(Text(f"  cannot apply: {problem}", style="red"))
    if impact.incompatible:
        return
    for shift in impact.shifts:
        style = "red" if shift.line == "maintenance" else "yellow"
        console.print(
            Text(
                f"  {shift.account}: below {shift.line} "
                f"(equity {amount(shift.equity_minor)}, needs "
                f"{amount(shift.old_requirement_minor)} -> "
                f"{amount(shift.new_requirement_minor)})",
                style=style,
            )
        )
    console.print(
        f"  {len(impact.below_maintenance)} of {impact.accounts_checked} accounts pushed below "
        f"maintenance, {len(impact.below_initial)} more below initial, by the change alone"
    )


def audit_table(report: audit_report.Report) -> Table:
    """Return the per-invariant summary for the terminal.

    The invariant ID and its level sit in a column that never wraps; the evidence (proofs,
    contracts, tests) is prose that wraps between names, never inside one.
    """
    table = Table(title="Invariants", title_justify="left", show_lines=True)
    table.add_column("invariant, level", no_wrap=True)
    table.add_column("evidence", overflow="fold")
    for entry in report.entries:
        seconds = sum(seconds for _, _, seconds in entry.proofs)
        proofs = f"{entry.proof_status} in {seconds * 1000:.0f} ms: " + (
            ", ".join(entry.transitions) or "rule set"
        )
        evidence = Text()
        for label, value in (
            ("z3 proofs", proofs if entry.proofs else entry.proof_status),
            ("CrossHair", f"{entry.contract_status} ({len(entry.contracts)})"),
            ("tests", ", ".join(entry.test_files) or "none"),
        ):
            if evidence:
                evidence.append("\n")
            evidence.append(f"{label}: ", style="bold")
            evidence.append(value)
        table.add_row(Text(entry.invariant.value) + Text(f"\n{entry.level}", style="dim"), evidence)
    return table


@click.command()
@rules_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the report as one self-contained HTML page.",
)
@click.option(
    "--crosshair-timeout",
    type=click.IntRange(min=0),
    default=4,
    show_default=True,
    help="Seconds per CrossHair condition; 0 skips CrossHair (reported as not run).",
)
def audit(rules_path: Path | None, html_path: Path | None, crosshair_timeout: int) -> None:
    """Report every invariant: statement, spec, proofs, CrossHair, tests, assumptions."""
    console = Console()
    rules = load_rules(rules_path, check=False)
    _warn_unsound(console, rules)
    results = run_catalogue(rules, None, None, DEFAULT_TIMEOUT_MS, console)
    crosshair, not_run = None, None
    if not crosshair_timeout:
        not_run = "skipped with --crosshair-timeout 0"
    elif not has_module("crosshair"):
        not_run = "CrossHair is not installed: pip install 'settlekernel[contracts]'"
    else:
        with console.status("CrossHair over the contracts"):
            crosshair = audit_report.run_crosshair(crosshair_timeout)
    report = audit_report.build(rules, results, crosshair, not_run)
    console.print(audit_table(report))
    style = "green" if report.passed and report.crosshair_not_run is None else "yellow"
    style = style if report.passed else "red"
    # One clause of the verdict a line, so no clause is cut where the terminal ends.
    verdict = Text("\n".join(report.verdict.split("; ")), style=style)
    console.print("no z3 model yet: " + (", ".join(report.unmodelled) or "none"))
    rows: list[tuple[str, str | Text]] = [
        ("code", report.code_version),
        ("rule set", report.rules_digest),
    ]
    if html_path is not None:
        html_path.write_text(audit_report.to_html(report), encoding="utf-8")
        rows.append(("report", f"written to {html_path}"))
    rows += [("sources", audit_report.INDEX_SOURCE), ("verdict", verdict)]
    console.print(labelled_lines(rows))
    if not report.passed:
        raise SystemExit(EXIT_FAILED)
