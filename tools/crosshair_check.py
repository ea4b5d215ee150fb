"""Run CrossHair over the kernel's contracts and print confirmed / not confirmed per function.

CrossHair exits 1 both for a counterexample and for a crash, so this script reads its output
instead of trusting the exit code: every contract line must be accounted for, any ``error``
line fails, and so does any output line it does not recognise. Usage:

    python tools/crosshair_check.py [--timeout SECONDS] [MODULE.py ...]
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Modules whose functions carry PEP 316 contracts; pure integer code only (no numpy).
CONTRACT_MODULES = [
    ROOT / "src" / "settlekernel" / "arith.py",
    ROOT / "src" / "settlekernel" / "margin" / "scenarios.py",
]
LINE = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<level>info|error|warning): (?P<text>.*)$")


def contract_lines(path: Path) -> dict[int, str]:
    """Return {line number of each pre/post condition: function name}."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines: dict[int, str] = {}
    source = path.read_text(encoding="utf-8").splitlines()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or ast.get_docstring(node) is None:
            continue
        first = node.body[0]
        assert isinstance(first, ast.Expr)
        for number in range(first.lineno, (first.end_lineno or first.lineno) + 1):
            if source[number - 1].strip().startswith(("post:", "post[")):
                lines[number] = node.name
    return lines


def check(path: Path, timeout: int) -> tuple[dict[str, list[str]], list[str]]:
    """Return per-function statuses and the problems found for one module."""
    command = [
        sys.executable,
        "-m",
        "crosshair",
        "check",
        "--analysis_kind=PEP316",
        "--report_all",
        f"--per_condition_timeout={timeout}",
        str(path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    expected = contract_lines(path)
    statuses: dict[str, list[str]] = {name: [] for name in expected.values()}
    problems: list[str] = []
    seen: set[int] = set()
    for raw in (result.stdout + result.stderr).splitlines():
        match = LINE.match(raw.strip())
        if match is None:
            if raw.strip():
                problems.append(f"unrecognised CrossHair output: {raw.strip()}")
            continue
        number = int(match["line"])
        function = expected.get(number, f"line {number}")
        if match["level"] == "error":
            problems.append(f"{function}: {match['text']}")
            statuses.setdefault(function, []).append("COUNTEREXAMPLE")
        elif match["text"].startswith("Confirmed over all paths"):
            statuses.setdefault(function, []).append("confirmed")
        else:
            statuses.setdefault(function, []).append("not confirmed")
        seen.add(number)
    missing = sorted(set(expected) - seen)
    problems += [f"{expected[n]}: postcondition at line {n} was not reported" for n in missing]
    if result.returncode not in (0, 1):
        problems.append(f"crosshair exited {result.returncode}")
    return statuses, problems


def main() -> int:
    """Check every contract module; return a non-zero status on any problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=4, help="seconds per condition")
    parser.add_argument("modules", nargs="*", type=Path, default=CONTRACT_MODULES)
    arguments = parser.parse_args()
    failed = False
    for module in arguments.modules:
        started = time.monotonic()
        statuses, problems = check(module, arguments.timeout)
        elapsed = time.monotonic() - started
        shown = module.relative_to(ROOT) if module.is_relative_to(ROOT) else module
        print(f"CrossHair {shown} ({elapsed:.1f} s, {arguments.timeout} s per condition)")
        for function, results in sorted(statuses.items()):
            confirmed = results.count("confirmed")
            verdict = "confirmed" if confirmed == len(results) and results else "NOT CONFIRMED"
            if "COUNTEREXAMPLE" in results:
                verdict = "COUNTEREXAMPLE"
            print(f"  {function:<32} {confirmed}/{len(results)} postconditions  {verdict}")
        for problem in problems:
            print(f"  FAIL {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
