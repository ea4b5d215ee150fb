"""CrossHair can fail: a bug planted in a copy of each contract function is found.

`make test` also runs `tools/crosshair_check.py` over the real module; this test shows that
the same check, with the same budget, reports a counterexample for each planted bug, so a
"confirmed" there means something.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from settlekernel.proofs.contracts import CONTRACT_MODULES, contract_lines
from settlekernel.proofs.contracts import INVARIANTS as CONTRACT_INVARIANTS

ROOT = Path(__file__).resolve().parent.parent
ARITH = ROOT / "src" / "settlekernel" / "core" / "arith.py"
SCENARIOS = ROOT / "src" / "settlekernel" / "core" / "scenarios.py"

# function: (correct line, planted bug). Several are magic-value bugs that random testing
# would almost never hit.
PLANTED = {
    "ceil_div": ("return -((-numerator) // denominator)", "return numerator // denominator"),
    "compute_fee_split": (
        "pool_minor = exact_numerator // PPM",
        "pool_minor = exact_numerator // PPM + (notional_minor == 987_654_321)",
    ),
    "apply_transfer": (
        "return Transfer(source_minor - amount_minor, target_minor + amount_minor)",
        (
            "return Transfer(source_minor - amount_minor, target_minor + amount_minor"
            " + (amount_minor > 10**20))"
        ),
    ),
    "compute_settlement_minor": (
        "return quantity_lots * (price_ticks - reference_ticks) * multiplier_minor",
        (
            "return quantity_lots * (price_ticks - reference_ticks) * multiplier_minor"
            " + (price_ticks == 123_456_789 and quantity_lots == -7)"
        ),
    ),
    "compute_linear_margin_minor": (
        "return ceil_div(notional_minor * rate_ppm, PPM)",
        "return (notional_minor * rate_ppm) // PPM",
    ),
    "compute_intrinsic_ticks": (
        "return max(strike_ticks - index_ticks, 0)",
        "return strike_ticks - index_ticks",
    ),
    "ceil_ratio": (
        "return (numerator + denominator - 1) // denominator",
        "return (numerator + denominator) // denominator",
    ),
    "compute_premium_ppm": (
        "magnitude = abs(difference) * PPM // index_ticks",
        "magnitude = abs(difference) * PPM // index_ticks + (price_ticks == 77_777)",
    ),
    "share_down": (
        "return total * weight // weight_sum",
        "return total * weight // weight_sum + (weight == 3 and total == 1_000_003)",
    ),
    "share_up": (
        "return ceil_div(total * weight, weight_sum)",
        "return total * weight // weight_sum",
    ),
    # Rounding the scenario shift towards the index shocks a position by less than the move.
    "scenario_price_ticks": (
        "shift_ticks = ceil_div(index_ticks * abs(move_ppm), PPM)",
        "shift_ticks = index_ticks * abs(move_ppm) // PPM",
    ),
    "compute_notional_minor": (
        "return abs(quantity_lots) * price_ticks * multiplier_minor",
        "return quantity_lots * price_ticks * multiplier_minor",
    ),
    # Rounding collateral up would value it in the account's favour.
    "compute_collateral_value_minor": (
        "return numerator // denominator",
        "return ceil_div(numerator, denominator)",
    ),
    "_third_of": (
        "magnitude = ceil_div(scan_range_ppm * abs(thirds), 3)",
        "magnitude = ceil_div(scan_range_ppm * abs(thirds), 3) - (scan_range_ppm == 999)",
    ),
    # The oracle band, the mark, funding and the penalty cap: magic-value and logic bugs.
    "compute_band_move": (
        "limit = accepted_ticks * band_ppm // PPM",
        "limit = accepted_ticks * band_ppm // PPM + (accepted_ticks == 4_242_424)",
    ),
    "compute_mark_ticks": (
        "return max(index_ticks + index_ticks * premium_ppm // PPM, 1)",
        "return max(index_ticks + index_ticks * premium_ppm // PPM, 1) + (premium_ppm == -31_337)",
    ),
    # A charge that forgets the clamp; an average rounded away from zero.
    "compute_funding_charge": (
        "magnitude = index_ticks * abs(rate_ppm) // PPM * intervals",
        "magnitude = index_ticks * abs(premium_ppm) // PPM * intervals",
    ),
    "compute_average_ppm": (
        "magnitude = abs(integral_ppm_ms) // elapsed_ms",
        "magnitude = -(-abs(integral_ppm_ms) // elapsed_ms)",
    ),
    "compute_capped_penalty": (
        "penalty = max(0, min(charged_minor, cap_minor))",
        "penalty = min(charged_minor, cap_minor)",
    ),
}
MODULE_OF = {"scenario_price_ticks": SCENARIOS, "_third_of": SCENARIOS}


def test_every_contract_has_a_planted_bug():
    """Each function CrossHair checks is shown once to be able to fail (a check that cannot
    fail is a defect)."""
    checked = {name for module in CONTRACT_MODULES for name in contract_lines(module).values()}
    assert checked == set(PLANTED)
    assert checked == set(CONTRACT_INVARIANTS)


@pytest.mark.parametrize("function", sorted(PLANTED))
def test_planted_bug_is_found(function, tmp_path):
    """Reports a counterexample for a bug planted in one contract function."""
    correct, planted = PLANTED[function]
    source = MODULE_OF.get(function, ARITH).read_text(encoding="utf-8")
    assert source.count(correct) == 1, f"{function}: the line to mutate moved"
    module = tmp_path / f"planted_{function}.py"
    module.write_text(source.replace(correct, planted), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "crosshair_check.py"), "--timeout", "4", str(module)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    report = {
        line.split()[0]: line
        for line in result.stdout.splitlines()
        if line.startswith("  ") and not line.strip().startswith("FAIL")
    }
    assert "COUNTEREXAMPLE" in report[function], result.stdout
    others = [name for name, line in report.items() if name != function]
    assert all("confirmed" in report[name] for name in others), result.stdout
