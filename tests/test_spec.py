"""The spec and the code cannot drift: reasons, invariant IDs and rule IDs agree."""

from __future__ import annotations

import re
from pathlib import Path

import settlekernel as sk

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec"
SOURCE = ROOT / "src" / "settlekernel"


def spec_text() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(SPEC.glob("*.md")))


def test_reason_table_matches_the_enum_in_order():
    """Lists every reason in spec/20-reasons.md, in the enum's precedence order."""
    table = (SPEC / "20-reasons.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+) \| `([a-z_]+)` \|", table, flags=re.MULTILINE)
    assert [int(number) for number, _ in rows] == list(range(1, len(rows) + 1))
    assert [code for _, code in rows] == [reason.value for reason in sk.Reason]


def test_every_invariant_id_is_specified_and_checked():
    """Specifies every InvariantId in spec/60-invariants.md and names it in a test."""
    catalogue = (SPEC / "60-invariants.md").read_text(encoding="utf-8")
    specified = set(re.findall(r"^\| (INV-[A-Z-]+) \|", catalogue, flags=re.MULTILINE))
    assert specified == {invariant.value for invariant in sk.InvariantId}
    tests = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").glob("*.py"))
    code = "\n".join(p.read_text(encoding="utf-8") for p in SOURCE.rglob("*.py"))
    for invariant in specified:
        assert invariant in code, f"{invariant} is named nowhere in the package"
        assert invariant in tests, f"{invariant} is named in no test"


def test_rule_ids_cited_in_code_exist_in_the_spec():
    """Defines in spec/ every SK- rule ID that the code cites."""
    code = "\n".join(p.read_text(encoding="utf-8") for p in SOURCE.rglob("*.py"))
    cited = set(re.findall(r"\bSK-[A-Z]+(?:-[A-Z0-9]+)*\b", code))
    text = spec_text()
    missing = sorted(rule for rule in cited if rule not in text)
    assert missing == []


def test_every_transition_has_a_spec_section_and_a_point_of_no_return():
    """Gives each event a section in spec/30 and a 'From here' line in its transition."""
    transitions = (SPEC / "30-transitions.md").read_text(encoding="utf-8")
    for cls in (
        sk.OpenAccount,
        sk.Deposit,
        sk.Withdraw,
        sk.Transfer,
        sk.ListInstrument,
        sk.OraclePrice,
        sk.Trade,
        sk.VariationMargin,
        sk.Funding,
        sk.Expire,
        sk.FundInsurance,
        sk.Liquidate,
    ):
        assert f"## {cls.__name__} (SK-" in transitions, cls.__name__
    for module in (
        "collateral",
        "expiry",
        "funding",
        "liquidation",
        "market",
        "trading",
        "variation",
    ):
        source = (SOURCE / "kernel" / "transitions" / f"{module}.py").read_text(encoding="utf-8")
        processes = source.count("\ndef process_")
        assert processes >= 1
        assert source.count("# From here the") == processes, module
