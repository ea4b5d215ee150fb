"""CrossHair over the kernel's contracts: confirmed / not confirmed per function (SK-PROOF-8).

The pure integer functions of ``core/arith.py`` and ``core/scenarios.py`` state PEP 316
contracts; ``crosshair check`` explores them symbolically. CrossHair exits 1 both for a
counterexample and for a crash, so this module reads its output instead of trusting the exit
code: every postcondition line must be reported, any ``error`` line fails, and so does any
output line it does not recognise. ``tools/crosshair_check.py`` (``make verify``, and a short
budget in ``make test``) and ``settlekernel audit`` both run it.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Final

from settlekernel.kernel.invariants import InvariantId

PACKAGE: Final = Path(__file__).resolve().parent.parent
# Modules whose functions carry PEP 316 contracts; pure integer code only (no numpy).
CONTRACT_MODULES: Final = (PACKAGE / "core" / "arith.py", PACKAGE / "core" / "scenarios.py")
# Which invariant each contract underwrites (the audit report's CrossHair column).
INVARIANTS: Final[dict[str, tuple[InvariantId, ...]]] = {
    "ceil_div": (InvariantId.ROUNDING_RESIDUE, InvariantId.MARGIN_AFTER_ACCEPT),
    "compute_notional_minor": (InvariantId.ROUNDING_RESIDUE,),
    "compute_fee_split": (InvariantId.CONSERVATION, InvariantId.ROUNDING_RESIDUE),
    "compute_settlement_minor": (InvariantId.CONSERVATION,),
    "apply_transfer": (InvariantId.CONSERVATION, InvariantId.NONNEGATIVE_BALANCES),
    "compute_linear_margin_minor": (InvariantId.MARGIN_AFTER_ACCEPT,),
    "compute_collateral_value_minor": (InvariantId.MARGIN_AFTER_ACCEPT,),
    "compute_intrinsic_ticks": (InvariantId.EXPIRY_FINAL,),
    "ceil_ratio": (InvariantId.LIQUIDATION_NO_WORSE,),
    "compute_premium_ppm": (InvariantId.ORACLE_ADMISSIBLE,),
    "share_down": (InvariantId.ROUNDING_RESIDUE, InvariantId.ADL_FAIRNESS),
    "share_up": (InvariantId.ROUNDING_RESIDUE, InvariantId.EXPIRY_FINAL),
    "compute_band_move": (InvariantId.ORACLE_ADMISSIBLE,),
    "compute_mark_ticks": (InvariantId.ORACLE_ADMISSIBLE,),
    "compute_funding_charge": (
        InvariantId.UNIFORM_REFERENCE,
        InvariantId.CONSERVATION,
        InvariantId.FUNDING_BOUNDED,
    ),
    "compute_average_ppm": (InvariantId.FUNDING_BOUNDED,),
    "compute_capped_penalty": (
        InvariantId.INSURANCE_NONNEGATIVE,
        InvariantId.LIQUIDATION_NO_WORSE,
    ),
    "_third_of": (InvariantId.MARGIN_AFTER_ACCEPT,),
    "scenario_price_ticks": (InvariantId.MARGIN_AFTER_ACCEPT,),
}


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
    # The command is this interpreter running CrossHair on a file of this package.
    result = subprocess.run(  # noqa: S603
        command, capture_output=True, text=True, check=False, cwd=PACKAGE.parent
    )
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


def verdict(results: list[str]) -> str:
    """Return a function's verdict from its postconditions' statuses."""
    if "COUNTEREXAMPLE" in results:
        return "COUNTEREXAMPLE"
    if results and results.count("confirmed") == len(results):
        return "confirmed"
    return "NOT CONFIRMED"
