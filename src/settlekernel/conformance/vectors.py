"""Conformance cases: their format, and running them against an implementation (SK-CONF).

A *lifecycle case* is a rule set, the genesis root it gives, and wire lines from genesis,
each with the outcome it must get (``accepted`` or the rejection reason's wire code), the
postings it makes (``[debit, credit, asset, amount, code]``, in order) and the state root
after it. A *margin case* is a portfolio file (the format of ``settlekernel margin``) and
the report it must give: integers exactly, Greeks to a relative tolerance. The format is
specified in spec/96-conformance.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Final, Protocol

import attrs

from settlekernel.core.outcomes import Accepted, Outcome, Posting, Rejected
from settlekernel.core.root import state_root
from settlekernel.core.rules import DEFAULT_RULES
from settlekernel.core.rules_toml import dump_rules_toml, parse_rules_toml
from settlekernel.core.wire import decode_event
from settlekernel.kernel.dispatch import genesis, step

FORMAT: Final = "settlekernel-conformance/1"
GREEK_TOLERANCE: Final = 1e-9


@attrs.frozen
class StepResult:
    """What an implementation did with one line."""

    outcome: str
    postings: tuple[tuple[str, str, str, int, str], ...]
    root: str


class Implementation(Protocol):
    """Runs one lifecycle case's lines from genesis under a rule set."""

    def run(self, rules_toml: str, lines: Sequence[str]) -> tuple[str, list[StepResult]]:
        """Return the genesis root and each line's result, in order."""


@attrs.frozen
class Mismatch:
    """Where an implementation and a case differ: the line (0 for genesis) and the field."""

    case: str
    line: int
    field: str
    expected: object
    found: object

    def __str__(self) -> str:
        """Return the mismatch as one line: case, line, field, found and expected."""
        where = "genesis" if self.line == 0 else f"line {self.line}"
        return f"{self.case}, {where}: {self.field} is {self.found!r}, not {self.expected!r}"


def posting_row(posting: Posting) -> tuple[str, str, str, int, str]:
    """Return a posting as the vectors write it."""
    return (
        posting.debit_account,
        posting.credit_account,
        posting.asset,
        posting.amount_minor,
        posting.code.value,
    )


def step_result(outcome: Outcome, root: bytes) -> StepResult:
    """Return the result of a line from its outcome and the root after it."""
    if isinstance(outcome, Accepted):
        return StepResult("accepted", tuple(posting_row(p) for p in outcome.postings), root.hex())
    return StepResult(outcome.reason.value, (), root.hex())


class Kernel:
    """This package's kernel as an implementation: decode, ``step``, ``state_root``."""

    def run(self, rules_toml: str, lines: Sequence[str]) -> tuple[str, list[StepResult]]:
        """Return the genesis root and each line's result."""
        state = genesis(parse_rules_toml(rules_toml))
        genesis_root = state_root(state).hex()
        results = []
        for number, line in enumerate(lines, start=1):
            decoded = decode_event(line, number)
            outcome: Outcome = decoded if isinstance(decoded, Rejected) else step(state, decoded)
            if isinstance(outcome, Accepted):
                state = outcome.state
            results.append(step_result(outcome, state_root(state)))
        return genesis_root, results


def rules_toml_of(case: dict[str, Any]) -> str:
    """Return a case's rule set as TOML (the built-in rules when it names none)."""
    toml = case["rules"].get("toml")
    return dump_rules_toml(DEFAULT_RULES) if toml is None else str(toml)


def check_lifecycle(case: dict[str, Any], implementation: Implementation) -> list[Mismatch]:
    """Run a lifecycle case; return every difference (the first per line and field)."""
    name = case["name"]
    steps = case["steps"]
    genesis_root, results = implementation.run(rules_toml_of(case), [s["line"] for s in steps])
    found: list[Mismatch] = []
    if genesis_root != case["genesis_root"]:
        found.append(Mismatch(name, 0, "root", case["genesis_root"], genesis_root))
    if len(results) != len(steps):
        found.append(Mismatch(name, len(results), "lines answered", len(steps), len(results)))
    for number, (expected, result) in enumerate(zip(steps, results, strict=False), start=1):
        postings = [list(p) for p in result.postings]
        for field, want, got in (
            ("outcome", expected["outcome"], result.outcome),
            ("postings", expected["postings"], postings),
            ("root", expected["root"], result.root),
        ):
            if want != got:
                found.append(Mismatch(name, number, field, want, got))
    return found


def _close(expected: object, found: object, path: str) -> Iterator[tuple[str, object, object]]:
    """Yield (path, expected, found) where two JSON values differ; floats by tolerance."""
    if isinstance(expected, dict) and isinstance(found, dict):
        for key in sorted(set(expected) | set(found)):
            yield from _close(expected.get(key), found.get(key), f"{path}.{key}")
    elif isinstance(expected, list) and isinstance(found, list) and len(expected) == len(found):
        for index, (a, b) in enumerate(zip(expected, found, strict=True)):
            yield from _close(a, b, f"{path}[{index}]")
    elif isinstance(expected, float) and isinstance(found, int | float):
        scale = max(abs(expected), 1.0)
        if not math.isclose(expected, found, rel_tol=GREEK_TOLERANCE, abs_tol=scale * 1e-12):
            yield path, expected, found
    elif expected != found or type(expected) is not type(found):
        yield path, expected, found


def check_margin(
    case: dict[str, Any], report: Callable[[str, str], dict[str, Any]]
) -> list[Mismatch]:
    """Margin a case's portfolio with ``report(portfolio text, rules TOML)``; list differences."""
    found = report(json.dumps(case["portfolio"], sort_keys=True), rules_toml_of(case))
    return [
        Mismatch(case["name"], 0, path.lstrip("."), want, got)
        for path, want, got in _close(case["expected"], found, "")
    ]


def shipped_directory() -> Path:
    """Return the directory of the vectors shipped in the package."""
    return Path(str(resources.files("settlekernel") / "data" / "conformance"))


def load_cases(directory: Path) -> list[dict[str, Any]]:
    """Return every case of every ``*.json`` file in ``directory``, files in name order."""
    cases: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise ValueError(f"{path.name}: not a {FORMAT} file")
        cases += [{**case, "file": path.name} for case in document["cases"]]
    return cases
