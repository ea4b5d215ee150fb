"""The ``settlekernel`` command line: the imperative shell around the pure kernel.

Exit codes: 0 success; 1 an invariant is violated or a verification fails; 2 a usage or input
error (a missing or unwritable path, a file that is not UTF-8, an unusable rules file), one
line on stderr (``CommandGroup``). A malformed event line is a rejection, never an error: the
run goes on.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from settlekernel.cli.common import CommandGroup, InputError, load_rules, read_text, rules_option
from settlekernel.cli.demo import demo_steps
from settlekernel.cli.display import (
    accounts_table,
    count_of,
    describe_outcome,
    labelled_lines,
    margin_report_json,
    margin_report_tables,
    margin_table,
    waterfall_summary,
)
from settlekernel.cli.portfolio_file import PortfolioError, parse_portfolio
from settlekernel.cli.proofs import audit, verify
from settlekernel.core.outcomes import Accepted, Outcome, Rejected
from settlekernel.core.rules import DEFAULT_RULES
from settlekernel.core.rules_toml import dump_rules_toml
from settlekernel.core.schema import event_schema
from settlekernel.core.wire import decode_event, encode_event
from settlekernel.journal.memory import Journal, verify_entries
from settlekernel.kernel.dispatch import genesis
from settlekernel.kernel.invariants import check_invariants
from settlekernel.margin.portfolio import compute_margin

if TYPE_CHECKING:
    from settlekernel.core.outcomes import Outcome

EXIT_VIOLATION = 1
EXIT_USAGE = 2


@click.group(cls=CommandGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="settlekernel")
def main() -> None:
    """Settle derivatives trades through a pure, integer-exact, verified kernel."""


@main.command()
@click.argument(
    "events", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path)
)
@rules_option
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per line instead of a table."
)
def run(events: Path, rules_path: Path | None, *, as_json: bool) -> None:
    """Apply EVENTS (JSON Lines, - for standard input) from genesis; print outcomes, summary."""
    rules = load_rules(rules_path)
    journal = Journal(genesis(rules))
    console = Console()
    table = _outcome_table("Outcomes")
    with click.open_file(str(events), encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            decoded = decode_event(line.rstrip("\n"), number)
            if isinstance(decoded, Rejected):
                journal.record_rejection(decoded, line)
                outcome: Outcome = decoded
            else:
                outcome = journal.submit(decoded)
            root = _root_hex(journal)
            if as_json:
                click.echo(json.dumps(_outcome_json(number, outcome, root), sort_keys=True))
            else:
                table.add_row(str(number), _outcome_cell(outcome), root[:16])
    violations = check_invariants(journal.state)
    summary = {
        "events": len(journal.entries) + len(journal.rejections),
        "accepted": len(journal.entries),
        "rejected": len(journal.rejections),
        "final_root": _root_hex(journal),
        "head_hash": journal.head_hash.hex(),
        "invariants": "ok" if not violations else [str(v) for v in violations],
    }
    if as_json:
        click.echo(json.dumps({"summary": summary}, sort_keys=True))
    else:
        console.print(table)
        _print_summary(console, summary)
    if violations:
        sys.exit(EXIT_VIOLATION)


def _root_hex(journal: Journal) -> str:
    return (journal.entries[-1].state_root if journal.entries else journal.genesis_root).hex()


def _outcome_table(title: str) -> Table:
    """Return the line / outcome / root table; only the outcome's prose message wraps.

    A rejection's reason code gets a line of its own and the message wraps between words
    below it, so the table fits 80 columns without cutting a reason code or a root.
    """
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("outcome: reason, then message", overflow="fold")
    table.add_column("root", no_wrap=True)
    return table


def _outcome_cell(outcome: Outcome) -> Text:
    if isinstance(outcome, Accepted):
        return Text("accepted", style="green") + Text(
            f", {count_of(len(outcome.postings), 'posting')}"
        )
    return (
        Text("rejected", style="red")
        + Text(f": {outcome.reason.value}\n")
        + Text(outcome.message, style="dim")
    )


def _outcome_json(number: int, outcome: Outcome, root: str) -> dict[str, object]:
    if isinstance(outcome, Accepted):
        return {
            "line": number,
            "status": "accepted",
            "postings": len(outcome.postings),
            "root": root,
        }
    return {
        "line": number,
        "status": "rejected",
        "reason": outcome.reason.value,
        "message": outcome.message,
        "root": root,
    }


def _print_summary(console: Console, summary: dict[str, object]) -> None:
    console.print(
        f"events {summary['events']}  accepted {summary['accepted']}  "
        f"rejected {summary['rejected']}"
    )
    console.print(f"final root  {summary['final_root']}")
    console.print(f"head hash   {summary['head_hash']}")
    invariants = summary["invariants"]
    if invariants == "ok":
        console.print("invariants  [green]ok[/green]")
    else:
        console.print("invariants  [red]VIOLATED[/red]")
        for violation in invariants:  # type: ignore[attr-defined]
            console.print(f"  {violation}")


@main.command()
@click.option(
    "--events-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the demo's events as JSON Lines to this file.",
)
def demo(events_out: Path | None) -> None:
    """Run the built-in session: a trading day, two venues, a BTC crash, an expiry."""
    console = Console()
    journal = Journal(genesis(DEFAULT_RULES))
    steps = demo_steps()
    refusals: list[tuple[str, str]] = []
    outcomes: list[Outcome] = []
    table: Table | None = None
    for number, demo_step in enumerate(steps, start=1):
        if table is None or table.title != demo_step.chapter:
            if table is not None:
                console.print(table)
            table = Table(title=demo_step.chapter, title_justify="left")
            for name, ratio in (
                ("#", None),
                ("what happens", 3),
                ("what the kernel did", 3),
                ("root", None),
            ):
                table.add_column(name, ratio=ratio, overflow="fold")
        before = journal.state
        outcome = journal.submit(demo_step.event)
        outcomes.append(outcome)
        if isinstance(outcome, Rejected):
            refusals.append((f"  #{number}", f"{outcome.reason.value}: {outcome.message}"))
        table.add_row(
            str(number),
            demo_step.note,
            describe_outcome(before, demo_step.event, outcome),
            _root_hex(journal)[:8],
        )
    if table is not None:
        console.print(table)
    console.print(waterfall_summary(journal.state, outcomes))
    console.print("Refusals, as the kernel explains them:")
    console.print(labelled_lines([(number, Text(refusal)) for number, refusal in refusals]))
    console.print()
    console.print(accounts_table(journal.state, title="Accounts after the session"))
    console.print(margin_table(journal.state, title="Margin after the session (USDC)"))
    violations = check_invariants(journal.state)
    replay = verify_entries(DEFAULT_RULES, journal.entries)
    console.print(f"final root   {_root_hex(journal)}")
    console.print(
        f"journal      {len(journal.entries)} entries chained, head "
        f"{journal.head_hash.hex()[:16]}; replay "
        f"{'reproduces every root' if replay is None else 'FAILED: ' + replay}"
    )
    console.print(
        "invariants   "
        + (
            "[green]all hold[/green]"
            if not violations
            else "[red]VIOLATED[/red] " + "; ".join(map(str, violations))
        )
    )
    if events_out is not None:
        events_out.write_text(
            "".join(encode_event(s.event) + "\n" for s in steps), encoding="utf-8"
        )
        console.print(f"events       written to {events_out}")
    if violations or replay is not None:
        sys.exit(EXIT_VIOLATION)


@main.command()
@click.argument("portfolio", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@rules_option
@click.option("--json", "as_json", is_flag=True, help="The report as one JSON object.")
def margin(portfolio: Path, rules_path: Path | None, *, as_json: bool) -> None:
    """Margin PORTFOLIO (a JSON book and market): requirement, scenarios, Greeks."""
    rules = load_rules(rules_path)
    try:
        book, market = parse_portfolio(read_text(portfolio, "portfolio"), rules)
    except PortfolioError as error:
        raise InputError(f"{portfolio}: {error}") from error
    report = compute_margin(book, market, rules, with_greeks=True)
    decimals = rules.asset_by_symbol[rules.valuation_asset].decimals
    if as_json:
        click.echo(
            json.dumps(margin_report_json(report, decimals, rules.valuation_asset), sort_keys=True)
        )
        return
    console = Console()
    for table in margin_report_tables(report, decimals, rules.valuation_asset):
        console.print(table)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the event wire format."""
    click.echo(json.dumps(event_schema(), indent=2, sort_keys=True))


@main.command()
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path),
    default=None,
    help="A TOML rules file to check and print in full.",
)
def rules(rules_path: Path | None) -> None:
    """Print the effective rule set as a complete TOML file."""
    click.echo(dump_rules_toml(load_rules(rules_path)), nl=False)


from settlekernel.cli.journal import journal, proof  # noqa: E402 (registered last, see there)

main.add_command(verify)
main.add_command(audit)
main.add_command(journal)
main.add_command(proof)

from settlekernel.cli.stress import stress  # noqa: E402 (the stress lab, spec/90-stress.md)

main.add_command(stress)

from settlekernel.cli.sweep import sweep  # noqa: E402 (rule sweeps, spec/90-stress.md)

main.add_command(sweep)

from settlekernel.cli.capacity import capacity  # noqa: E402 (the capacity model, spec/95)

main.add_command(capacity)

from settlekernel.cli.conformance import conformance  # noqa: E402 (golden vectors, spec/96)

main.add_command(conformance)
