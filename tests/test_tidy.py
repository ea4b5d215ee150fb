"""Style rules enforced by a test, after TigerBeetle's tidy.zig.

- Guard cascades name their reasons in precedence order (spec/20-reasons.md), following
  calls into helper checks and the reason tables they read.
- Functions in the package stay at or under 70 lines.
- No float or Decimal literal or constructor in the ledger code (the margin engine, a later
  issue, is the one place allowed floats, and its output is an integer).
- The public facade's ``__all__`` is sorted.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import settlekernel as sk

SOURCE = Path(__file__).resolve().parent.parent / "src" / "settlekernel"
# Modules whose functions are guard cascades or decoders: the precedence rule applies there.
CASCADE_MODULES = (
    "collateral",
    "expiry",
    "funding",
    "dispatch",
    "guards",
    "liquidation",
    "market",
    "trading",
    "variation",
    "wire",
)
FUNCTION_LINES_MAX = 70
RANK = {reason.name: reason.precedence for reason in sk.Reason}


def modules() -> dict[Path, ast.Module]:
    return {
        path: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(SOURCE.rglob("*.py"))
    }


def reason_refs(node: ast.AST) -> list[tuple[int, int, int]]:
    """(line, column, rank) of every `Reason.X` inside node."""
    return [
        (sub.lineno, sub.col_offset, RANK[sub.attr])
        for sub in ast.walk(node)
        if isinstance(sub, ast.Attribute)
        and isinstance(sub.value, ast.Name)
        and sub.value.id == "Reason"
        and sub.attr in RANK
    ]


def reason_sets() -> tuple[dict[str, set[int]], dict[str, ast.FunctionDef]]:
    """Reasons each function (transitively) and each module-level table can return."""
    functions: dict[str, ast.FunctionDef] = {}
    tables: dict[str, set[int]] = {}
    for path, tree in modules().items():
        if path.stem not in CASCADE_MODULES:
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                functions[node.name] = node
            elif isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                ranks = {rank for _, _, rank in reason_refs(node)}
                for target in targets:
                    if isinstance(target, ast.Name) and ranks:
                        tables[target.id] = ranks
    sets = {name: {r for _, _, r in reason_refs(fn)} for name, fn in functions.items()}
    for _ in range(len(functions)):  # Propagate through calls to a fixed point.
        for name, fn in functions.items():
            for sub in ast.walk(fn):
                if isinstance(sub, ast.Name) and sub.id in sets and sub.id != name:
                    sets[name] |= sets[sub.id]
                if isinstance(sub, ast.Name) and sub.id in tables:
                    sets[name] |= tables[sub.id]
    return sets, functions


def test_guard_cascades_follow_precedence():
    """Names reasons (directly or via helpers and tables) in non-decreasing precedence."""
    sets, functions = reason_sets()
    tables = {name for name in sets if name not in functions}
    problems = []
    for name, fn in functions.items():
        items: list[tuple[int, int, int, int, str]] = []
        for line, column, rank in reason_refs(fn):
            items.append((line, column, rank, rank, "reason"))
        for sub in ast.walk(fn):
            if isinstance(sub, ast.Name) and sub.id != name and sets.get(sub.id):
                ranks = sets[sub.id]
                items.append((sub.lineno, sub.col_offset, min(ranks), max(ranks), sub.id))
        items.sort()
        highest, culprit = -1, ""
        for line, _, low, high, what in items:
            if low < highest:
                problems.append(f"{name} line {line}: {what} ranks before {culprit}")
            if high > highest:
                highest, culprit = high, what
    assert problems == [], "\n".join(problems)
    assert {"check_ranges", "process_trade", "_settle"} <= set(sets)
    assert tables == set()  # Every table is reached through the functions that read it.


def test_functions_are_short():
    """Keeps every function at or under 70 lines, in every module and subpackage."""
    every = {path: ast.parse(path.read_text(encoding="utf-8")) for path in SOURCE.rglob("*.py")}
    long = [
        f"{path.name}:{node.name} has {node.end_lineno - node.lineno + 1} lines"
        for path, tree in every.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > FUNCTION_LINES_MAX
    ]
    assert long == []


def test_no_floats_in_the_ledger():
    """Finds no float literal, float() or Decimal in the package outside the margin engine.

    The proof tooling is exempt too: it reads no ledger value as a float, only wall time.
    The stress lab is exempt: its price paths are floats, rounded to int ticks before events.
    So is the capacity model (package and command): its floats are seconds and rates of a
    queue, measured on and never fed to the kernel. The conformance runner compares a margin
    report's Greeks, floats, to a tolerance.
    """
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        if {"margin", "proofs", "stress", "capacity", "conformance"} & set(path.parts):
            continue
        if path.parts[-2:] == ("cli", "capacity.py"):
            continue
        # The margin engine's report records carry its Greeks, model outputs in floats that
        # never enter a balance; they live in the core only so that the state can cache them.
        if path.parts[-2:] == ("core", "reports.py"):
            continue
        source = path.read_text(encoding="utf-8")
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            text = token.string
            is_float = (
                token.type == tokenize.NUMBER
                and not text.lower().startswith("0x")
                and ("." in text or "e" in text.lower())
            )
            if is_float or (token.type == tokenize.NAME and text in ("float", "Decimal")):
                found.append(f"{path.name}:{token.start[0]}: {text}")
    assert found == []


def test_public_facade_is_sorted_and_complete():
    """Keeps __all__ sorted and every name in it importable."""
    assert sk.__all__ == sorted(sk.__all__)
    for name in sk.__all__:
        assert hasattr(sk, name), name
