"""The auditor's report: per invariant, its statement, proofs, contracts and tests (SK-PROOF-9).

For each invariant of spec/60-invariants.md the report gathers: the statement and level;
the spec sections that define it and the rules its theorems cite; every z3 theorem that
proves it, with status and time; every CrossHair contract that underwrites it, with its
verdict; the tests that check it; and the assumptions all of this rests on. It names the
rule set by its digest and the code by its version and git commit, so a report pins exactly
what was verified.
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import attrs

from settlekernel.core.events import EVENT_TYPES
from settlekernel.core.rules import RuleSet
from settlekernel.kernel.invariants import InvariantId
from settlekernel.proofs import contracts
from settlekernel.proofs.runner import Result

PACKAGE: Final = Path(__file__).resolve().parent.parent
CHECKOUT: Final = PACKAGE.parent.parent
INDEX_FILE: Final = PACKAGE / "data" / "audit_index.json"
# Where the statement, predicate and test columns come from, said on every report.
INDEX_SOURCE: Final = (
    "statements, predicates and tests: spec/60-invariants.md and tests/ of this version, "
    "shipped in the package as data/audit_index.json"
)
_ROW: Final = re.compile(r"^\| (INV-[A-Z-]+) \| ([^|]+) \| (.+) \| ([^|]+) \| ([^|]+) \|$")
# Where a rule is defined: a bold ``**SK-...`` paragraph or an invariant's table row.
_DEFINED: Final = re.compile(r"^(?:\*\*(SK-[A-Z0-9-]+)|\| (INV-[A-Z-]+) \|)", re.MULTILINE)
# The index's key for {spec ID: the spec file defining it}, beside the invariants' entries.
SPEC_FILES_KEY: Final = "_spec_files"
# Where the page links a spec ID when the spec is not on disk (an installed package).
SPEC_URL: Final = "https://github.com/settlekernel/settlekernel/blob/main/"


@attrs.frozen
class Entry:
    """Everything the report says about one invariant."""

    invariant: InvariantId
    level: str
    statement: str
    predicate: str
    spec: tuple[str, ...]
    proofs: tuple[tuple[str, str, float], ...]
    contracts: tuple[tuple[str, str], ...]
    tests: str
    test_files: tuple[str, ...]
    transitions: tuple[str, ...]

    @property
    def proof_status(self) -> str:
        """Return 'proved', 'FAILED' or 'no z3 theorem' over all its theorems."""
        if not self.proofs:
            return "no z3 theorem"
        return "proved" if all(s == "proved" for _, s, _ in self.proofs) else "FAILED"

    @property
    def contract_status(self) -> str:
        """Return 'confirmed', 'FAILED', 'not run' or 'none' over its CrossHair contracts."""
        if not self.contracts:
            return "none"
        verdicts = {verdict for _, verdict in self.contracts}
        if verdicts == {"confirmed"}:
            return "confirmed"
        return "not run" if verdicts == {"not run"} else "FAILED"


@attrs.frozen
class TheoremRow:
    """One theorem as the report lists it, its assumptions by number."""

    name: str
    transition: str
    statement: str
    invariants: tuple[str, ...]
    spec: tuple[str, ...]
    status: str
    seconds: float
    assumptions: tuple[int, ...]


@attrs.frozen
class Report:
    """The whole report: its entries, what it assumes, and what exactly was verified."""

    entries: tuple[Entry, ...]
    theorems: tuple[TheoremRow, ...]
    unmodelled: tuple[str, ...]
    assumptions: tuple[str, ...]
    rules_digest: str
    code_version: str
    # Why the CrossHair contracts were not checked; None when they were.
    crosshair_not_run: str | None = None

    @property
    def passed(self) -> bool:
        """Return whether every proof passed and no contract failed."""
        return all(
            e.proof_status != "FAILED" and e.contract_status != "FAILED" for e in self.entries
        )

    @property
    def verdict(self) -> str:
        """Return the one-line verdict: what passed, and what was not checked at all."""
        if not self.passed:
            return "FAILURES: see the rows marked FAILED"
        said = ["every z3 theorem proved"]
        if self.crosshair_not_run is None:
            said.append("every CrossHair contract confirmed")
        else:
            said.append(f"CrossHair contracts NOT checked ({self.crosshair_not_run})")
        if self.unmodelled:
            said.append("no z3 model yet for " + ", ".join(self.unmodelled))
        return "; ".join(said)


def spec_rows(checkout: Path) -> dict[str, tuple[str, str, str, str]]:
    """Return {INV id: (level, statement, predicate, tests)} read from a checkout's spec/60."""
    rows = {}
    text = (checkout / "spec" / "60-invariants.md").read_text(encoding="utf-8")
    for line in text.splitlines():
        match = _ROW.match(line)
        if match:
            rows[match[1]] = (
                match[2].strip(),
                match[3].strip(),
                match[4].strip(),
                match[5].strip(),
            )
    return rows


def build_index(checkout: Path) -> dict[str, dict[str, Any]]:
    """Return the audit index of a source checkout: per invariant, its spec row and tests.

    The installed package has no spec/ or tests/, so this index ships in its data
    (``data/audit_index.json``); ``tests/test_audit.py`` keeps it equal to the checkout.
    """
    rows = spec_rows(checkout)
    tests = sorted((checkout / "tests").glob("test_*.py"))
    texts = {path.name: path.read_text(encoding="utf-8") for path in tests}
    index: dict[str, dict[str, Any]] = {}
    for invariant in InvariantId:
        level, statement, predicate, named_in = rows.get(invariant.value, ("", "", "", ""))
        index[invariant.value] = {
            "level": level,
            "statement": statement,
            "predicate": predicate,
            "tests": named_in,
            "test_files": [name for name, text in texts.items() if invariant.value in text],
        }
    index[SPEC_FILES_KEY] = spec_files(checkout)
    return index


def spec_files(checkout: Path) -> dict[str, str]:
    """Return {spec ID: its spec file, relative to the checkout} for every ID spec/ defines."""
    found: dict[str, str] = {}
    for path in sorted((checkout / "spec").glob("*.md")):
        for match in _DEFINED.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(match.group(1) or match.group(2), f"spec/{path.name}")
    return found


def index_text(index: dict[str, dict[str, Any]]) -> str:
    """Return the canonical text of an audit index (sorted keys, one trailing newline)."""
    return json.dumps(index, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def shipped_index() -> dict[str, dict[str, Any]]:
    """Return the audit index that ships with the package."""
    loaded: dict[str, dict[str, Any]] = json.loads(INDEX_FILE.read_text(encoding="utf-8"))
    return loaded


def code_version() -> str:
    """Return the package version and, in a git checkout, the commit (and whether dirty)."""
    try:
        package = version("settlekernel")
    except PackageNotFoundError:
        package = "unknown"
    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],  # noqa: S607 (git on PATH)
            capture_output=True,
            text=True,
            check=True,
            cwd=CHECKOUT,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "not a git checkout"
    return f"settlekernel {package} ({commit})"


def build(
    rules: RuleSet,
    results: Iterable[Result],
    crosshair: dict[str, str] | None,
    crosshair_not_run: str | None = None,
) -> Report:
    """Assemble the report from proof results and CrossHair verdicts (None: not run, why)."""
    results = list(results)
    index = shipped_index()
    entries = []
    for invariant in InvariantId:
        row = index.get(invariant.value, {})
        proving = [r for r in results if invariant in r.theorem.invariants]
        cited = sorted({s for r in proving for s in r.theorem.spec})
        functions = sorted(f for f, ids in contracts.INVARIANTS.items() if invariant in ids)
        entries.append(
            Entry(
                invariant=invariant,
                level=row.get("level", ""),
                statement=row.get("statement", ""),
                predicate=row.get("predicate", ""),
                spec=("spec/60-invariants.md", *cited),
                proofs=tuple(
                    (r.theorem.name, r.verdict.status.value, r.verdict.seconds) for r in proving
                ),
                contracts=tuple(
                    (f, "not run" if crosshair is None else crosshair.get(f, "NOT CONFIRMED"))
                    for f in functions
                ),
                tests=row.get("tests", ""),
                test_files=tuple(row.get("test_files", ())),
                transitions=tuple(sorted({r.theorem.transition for r in proving} - {"RuleSet"})),
            )
        )
    assumptions = sorted({a for r in results for a in r.theorem.assumptions})
    number = {text: index for index, text in enumerate(assumptions, start=1)}
    listed = tuple(
        TheoremRow(
            name=r.theorem.name,
            transition=r.theorem.transition,
            statement=r.theorem.statement,
            invariants=tuple(i.value for i in r.theorem.invariants),
            spec=r.theorem.spec,
            status=r.verdict.status.value,
            seconds=r.verdict.seconds,
            assumptions=tuple(sorted(number[a] for a in r.theorem.assumptions)),
        )
        for r in results
    )
    modelled = {r.theorem.transition for r in results}
    unmodelled = tuple(name for name in EVENT_TYPES.values() if name.__name__ not in modelled)
    return Report(
        tuple(entries),
        listed,
        tuple(cls.__name__ for cls in unmodelled),
        tuple(assumptions),
        rules.digest.hex(),
        code_version(),
        crosshair_not_run if crosshair is None else None,
    )


def run_crosshair(timeout: int) -> dict[str, str]:
    """Return {function: verdict} for every contract, checked now."""
    verdicts: dict[str, str] = {}
    for module in contracts.CONTRACT_MODULES:
        statuses, problems = contracts.check(module, timeout)
        for function, results in statuses.items():
            verdicts[function] = contracts.verdict(results)
        if any("exited" in problem for problem in problems):
            verdicts = dict.fromkeys(verdicts, "FAILED")
    return verdicts


def _cell(text: str) -> str:
    """Return markdown-ish spec text as HTML: code spans kept, everything escaped."""
    escaped = html.escape(text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)


_CSS: Final = (
    "body{font-family:system-ui,sans-serif;margin:1em 2em}"
    "table{border-collapse:collapse;width:100%}"
    "td,th{border:1px solid #bbb;padding:.4em;vertical-align:top}"
    ".counts td{border:none;padding:.1em 1em .1em 0}"
    "th{background:#eee}.ok{color:#060}.bad{color:#a00;font-weight:bold}.none{color:#777}"
    "code{background:#f4f4f4}"
)


def _spec_base() -> str:
    """Return where spec files are linked: this checkout's spec/ if present, else the repo."""
    if (CHECKOUT / "spec").is_dir():
        return CHECKOUT.as_uri() + "/"
    return SPEC_URL


def _spec_link(spec_id: str, files: dict[str, str], base: str) -> str:
    """Return a spec ID (or a spec file) as a link to the file defining it, else as text."""
    if spec_id.startswith("spec/"):
        return f"<a href='{html.escape(base + spec_id)}'>{html.escape(spec_id)}</a>"
    path = files.get(spec_id)
    if path is None:
        return html.escape(spec_id)
    # A text fragment scrolls a browser that supports it to the ID; others open the file.
    target = f"{base}{path}#:~:text={spec_id}"
    return f"<a href='{html.escape(target)}'>{html.escape(spec_id)}</a>"


def _status(text: str) -> str:
    css = {"proved": "ok", "confirmed": "ok", "FAILED": "bad"}.get(text, "none")
    return f'<span class="{css}">{html.escape(text)}</span>'


def _entry_html(entry: Entry, files: dict[str, str], base: str) -> str:
    proofs = "<br>".join(
        f"{html.escape(name)}: {_status(status)} ({seconds * 1000:.0f} ms)"
        for name, status, seconds in entry.proofs
    )
    checks = "<br>".join(f"<code>{html.escape(f)}</code>: {_status(v)}" for f, v in entry.contracts)
    return (
        f"<tr id='{entry.invariant.value}'><td><b>"
        f"{_spec_link(entry.invariant.value, files, base)}</b><br>{html.escape(entry.level)}</td>"
        f"<td>{_cell(entry.statement)}</td>"
        f"<td>{'<br>'.join(_spec_link(s, files, base) for s in entry.spec)}</td>"
        f"<td>{_status(entry.proof_status)}<br>{proofs}</td>"
        f"<td>{_status(entry.contract_status)}<br>{checks}</td>"
        f"<td>{_cell(entry.predicate)}<br>{_cell(entry.tests)}<br>"
        f"<small>{html.escape(', '.join(entry.test_files))}</small></td></tr>"
    )


def _theorem_html(row: TheoremRow, files: dict[str, str], base: str) -> str:
    links = ", ".join(f"<a href='#A{n}'>A{n}</a>" for n in row.assumptions)
    serves = (
        ", ".join(f"<a href='#{i}'>{html.escape(i)}</a>" for i in row.invariants)
        or "<span class='none'>a promise of the rule set, no step invariant</span>"
    )
    return (
        f"<tr><td>{html.escape(row.name)}</td><td>{html.escape(row.statement)}</td>"
        f"<td>{serves}</td>"
        f"<td>{', '.join(_spec_link(s, files, base) for s in row.spec)}</td>"
        f"<td>{_status(row.status)} ({row.seconds * 1000:.0f} ms)</td>"
        f"<td>{links}</td></tr>"
    )


def counts(report: Report) -> list[tuple[str, str]]:
    """Return the page's summary: what was checked, counted, as (label, value) pairs."""
    theorems = report.theorems
    proved = sum(row.status == "proved" for row in theorems)
    rule_set = sum(row.transition == "RuleSet" for row in theorems)
    with_proof = sum(bool(e.proofs) for e in report.entries)
    with_contract = sum(bool(e.contracts) for e in report.entries)
    confirmed = sum(e.contract_status == "confirmed" for e in report.entries)
    return [
        ("invariants", f"{len(report.entries)}"),
        ("with a z3 theorem", f"{with_proof} of {len(report.entries)}"),
        (
            "z3 theorems proved",
            f"{proved} of {len(theorems)} ({rule_set} of them about the rule set)",
        ),
        (
            "invariants with CrossHair contracts",
            f"{with_contract}, confirmed {confirmed}"
            + ("" if report.crosshair_not_run is None else " (CrossHair not run)"),
        ),
        ("transitions without a z3 model", f"{len(report.unmodelled)}"),
        ("assumptions stated", f"{len(report.assumptions)}"),
    ]


def _counts_html(report: Report) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td><td><b>{html.escape(value)}</b></td></tr>"
        for label, value in counts(report)
    )
    return f"<table class='counts' style='width:auto'>{rows}</table>"


def to_html(report: Report) -> str:
    """Return the report as one self-contained HTML page."""
    verdict = report.verdict
    header = "".join(
        f"<th>{h}</th>"
        for h in ("invariant", "statement", "spec", "z3 proofs", "CrossHair", "tests")
    )
    assumptions = "".join(
        f"<li id='A{n}'><b>A{n}</b> {_cell(a)}</li>"
        for n, a in enumerate(report.assumptions, start=1)
    )
    files: dict[str, str] = shipped_index().get(SPEC_FILES_KEY, {})
    base = _spec_base()
    theorem_rows = "".join(_theorem_html(row, files, base) for row in report.theorems)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>settlekernel audit</title><style>{_CSS}</style></head><body>"
        "<h1>settlekernel: machine-checked invariants</h1>"
        f"<p>Code: <code>{html.escape(report.code_version)}</code><br>"
        f"Rule set SHA-256: <code>{report.rules_digest}</code><br>"
        f"Verdict: {_status('passed' if report.passed else 'FAILED')} "
        f"({html.escape(verdict)})<br><small>{html.escape(INDEX_SOURCE)}</small></p>"
        + _counts_html(report)
        + f"<table><tr>{header}</tr>"
        + "".join(_entry_html(entry, files, base) for entry in report.entries)
        + "</table><p>A transition without a z3 model is covered by the predicates and the "
        "stateful suite only; not modelled yet: "
        + html.escape(", ".join(report.unmodelled))
        + "</p><h2>Theorems</h2><table><tr><th>theorem</th><th>claim</th><th>invariants</th>"
        f"<th>spec</th><th>status</th><th>assumes</th></tr>{theorem_rows}</table>"
        f"<h2>Assumptions</h2><ul>{assumptions}</ul>"
        "<p>What a proof here means, and what is not modelled, is spec/80-proofs.md.</p>"
        "</body></html>\n"
    )
