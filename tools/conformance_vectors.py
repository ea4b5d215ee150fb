"""Generate the golden conformance vectors from this kernel (spec/96-conformance.md).

Writes ``src/settlekernel/data/conformance/{lifecycle,reasons,margin,encodings}.json``.
Every reason case ends in the line that must get that reason, and the tool stops if the
kernel gives another: a case is generated only once it shows what it says. Run it only for
a deliberate change of the rules' outcomes (the vectors are frozen: tests/test_conformance.py
fails when the kernel's output for any case changes), then review the diff, add the spec's
``[Modified in vN]`` note and a CHANGELOG line. Usage: python tools/conformance_vectors.py
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import attrs

import settlekernel as sk
from settlekernel.cli.conformance import margin_report
from settlekernel.cli.demo import demo_steps
from settlekernel.conformance.vectors import FORMAT, Kernel
from settlekernel.core.events import EVENT_NAMES
from settlekernel.core.root import all_leaf_keys, encode_leaf, leaf_digest, state_root
from settlekernel.core.rules_toml import dump_rules_toml
from settlekernel.core.wire import decode_event, encode_event

ROOT: Final = Path(__file__).resolve().parent.parent
OUT: Final = ROOT / "src" / "settlekernel" / "data" / "conformance"
USDC: Final = 10**6
RULES_TOML: Final = dump_rules_toml(sk.RuleSet.default())


def _sections() -> dict[str, str]:
    """Return each event class's spec section ID, read off spec/30's headings."""
    text = (ROOT / "spec" / "30-transitions.md").read_text(encoding="utf-8")
    found = dict(re.findall(r"^## (\w+) \((SK-[A-Z]+(?:-\d+)?)\)", text, flags=re.MULTILINE))
    for name in ("AdmitVenue", "SuspendVenue", "ResumeVenue", "RemoveVenue"):
        found.setdefault(name, "SK-GOV-1")
    for name in ("AuthorizeVenue", "RestrictVenue", "RevokeVenue"):
        found.setdefault(name, "SK-VENUE-2")
    return found


SECTIONS: Final = _sections()


def line(event: sk.Event) -> str:
    return encode_event(event)


def _spec_of(lines: Sequence[str]) -> list[str]:
    names = {cls.__name__: wire for cls, wire in EVENT_NAMES.items()}
    wires = {wire: name for name, wire in names.items()}
    found = {"SK-STEP"}
    for text in lines:
        try:
            kind = json.loads(text).get("type")
        except (json.JSONDecodeError, AttributeError):
            continue
        if kind in wires and wires[kind] in SECTIONS:
            found.add(SECTIONS[wires[kind]])
    return sorted(found)


def lifecycle_case(  # noqa: PLR0913 (a case, field by field)
    name: str,
    description: str,
    lines: Sequence[str],
    invariants: Sequence[str],
    *,
    expect_last: str | None = None,
    spec: Sequence[str] = (),
    rules: sk.RuleSet | None = None,
) -> dict[str, Any]:
    """Run ``lines`` through this kernel (the built-in rules by default); freeze what it did."""
    toml = None if rules is None else dump_rules_toml(rules)
    genesis_root, results = Kernel().run(RULES_TOML if toml is None else toml, lines)
    if expect_last is not None and results[-1].outcome != expect_last:
        raise SystemExit(f"{name}: the last line got {results[-1].outcome}, not {expect_last}")
    return {
        "name": name,
        "kind": "lifecycle",
        "description": description,
        "spec": sorted({*_spec_of(lines), *spec}),
        "invariants": sorted(invariants),
        "rules": {"digest": (rules or sk.RuleSet.default()).digest.hex(), "toml": toml},
        "genesis_root": genesis_root,
        "steps": [
            {
                "line": text,
                "outcome": r.outcome,
                "postings": [list(p) for p in r.postings],
                "root": r.root,
            }
            for text, r in zip(lines, results, strict=True)
        ],
    }


def raw(**fields: object) -> str:
    """Return a wire line exactly as given (for lines the decoder must refuse)."""
    return json.dumps(fields, separators=(",", ":"), sort_keys=True)


def w(event_type: str, /, **fields: object) -> str:
    return raw(type=event_type, **fields)


def deposit(account: str, amount: object, asset: str = "USDC", principal: str = "") -> str:
    return w(
        "deposit", principal=principal or account, account=account, asset=asset, amount_minor=amount
    )


def trade(
    trade_id: str,
    buyer: str,
    seller: str,
    lots: object = 1,
    ticks: object = 9_000_000,
    **extra: object,
) -> str:
    fields: dict[str, object] = {
        "principal": "venue",
        "trade_id": trade_id,
        "buyer": buyer,
        "seller": seller,
        "instrument": "BTC-PERP",
        "quantity_lots": lots,
        "price_ticks": ticks,
        "buyer_fee_rate_ppm": 0,
        "seller_fee_rate_ppm": 0,
    }
    fields.update(extra)
    return w("trade", **fields)


def price(ticks: int, at_ms: int, underlying: str = "BTC") -> list[str]:
    return [
        w(
            "oracle_price",
            principal=source,
            underlying=underlying,
            price_ticks=ticks,
            timestamp_ms=at_ms,
        )
        for source in ("oracle-a", "oracle-b")
    ]


def listing(instrument: str, kind: str, underlying: str = "BTC", **extra: object) -> str:
    return w(
        "list_instrument",
        principal="operator",
        instrument=instrument,
        kind=kind,
        underlying=underlying,
        settlement_asset="USDC",
        multiplier_minor=10,
        **extra,
    )


BASE: Final = [
    *[w("open_account", principal=a, account=a) for a in ("alice", "bob", "carol", "dave")],
    deposit("alice", 1_000_000 * USDC),
    deposit("bob", 1_000_000 * USDC),
    deposit("carol", 1),
    listing("BTC-PERP", "perpetual"),
    listing("BTC-FUT", "future", expiry_ms=10_000),
    *price(9_000_000, 1_000),
    trade("t1", "alice", "bob"),
]
DEX: Final = [
    w("open_account", principal="dex", account="dex-fees"),
    w(
        "admit_venue",
        principal="governor",
        venue="dex",
        fee_account="dex-fees",
        open_interest_max_lots=1,
        notional_max_minor=10**15,
        fee_rate_max_ppm=1_000,
    ),
]
GRANTS: Final = [
    w("authorize_venue", principal=a, account=a, venue="dex") for a in ("alice", "bob")
]

NOTICE_MS: Final = sk.RuleSet.default().rules_notice_ms
# A governed change (SK-GOV-3): a lower fee ceiling, a notice and a bit after the base market.
PROPOSAL: Final = w(
    "change_rules",
    principal="governor",
    proposal="p1",
    rules_toml="fee_rate_max_ppm = 9000\n",
    effective_ms=NOTICE_MS + 20_000,
)
DEPOSIT = {"principal": "alice", "account": "alice", "asset": "USDC"}


def top_up(account: str, source: str, asset: str = "USDC") -> str:
    """A standing top-up (SK-INSTR-1): to 1.2 x maintenance, 5,000 USDC per minute."""
    return w(
        "register_top_up",
        principal=account,
        account=account,
        source=source,
        asset=asset,
        threshold_ppm=1_200_000,
        amount_max_minor=5_000 * USDC,
        interval_ms=60_000,
    )


# thin, long 1 BTC at 90,000 with 10,000 USDC, and its reserve with 20,000 USDC and a
# top-up; BTC walks to 85,500: thin is below maintenance and the top-up restores it.
THIN_WITH_RESERVE: Final = [
    w("open_account", principal="thin", account="thin"),
    deposit("thin", 10_000 * USDC),
    w("open_account", principal="thin", account="thin-reserve"),
    deposit("thin-reserve", 20_000 * USDC, principal="thin"),
    top_up("thin", "thin-reserve"),
    trade("t2", "thin", "bob", 1_000),
    *[report for at in range(2_000, 2_300, 100) for report in price(8_550_000, at)],
]
# Per reason: the lines after BASE; the last one must get the reason.
REASONS: Final[dict[str, list[str]]] = {
    "json_invalid": ["{"],
    "event_type_unknown": [raw(type="nope")],
    "field_missing": [w("deposit", **DEPOSIT)],
    "field_unknown": [w("deposit", **DEPOSIT, amount_minor=1, extra=1)],
    "field_type_invalid": [w("deposit", **DEPOSIT, amount_minor="5")],
    "id_invalid": [w("open_account", principal="erin", account="bad id")],
    "principal_not_operator": [listing("BTC-X", "perpetual").replace('"operator"', '"alice"')],
    "principal_not_oracle": [
        w("oracle_price", principal="alice", underlying="BTC", price_ticks=1, timestamp_ms=2_000)
    ],
    "principal_not_matcher": [trade("t2", "alice", "bob", principal="alice")],
    "principal_not_sequencer": [w("tick", principal="alice", timestamp_ms=2_000)],
    "principal_not_governor": [w("suspend_venue", principal="alice", venue="venue")],
    "trade_exists_with_different_principal": [
        *DEX,
        *GRANTS,
        trade("t1", "alice", "bob", principal="dex"),
    ],
    "trade_exists_with_different_buyer": [trade("t1", "carol", "bob")],
    "trade_exists_with_different_seller": [trade("t1", "alice", "carol")],
    "trade_exists_with_different_instrument": [trade("t1", "alice", "bob", instrument="BTC-FUT")],
    "trade_exists_with_different_quantity": [trade("t1", "alice", "bob", 2)],
    "trade_exists_with_different_price": [trade("t1", "alice", "bob", 1, 9_000_001)],
    "trade_exists_with_different_buyer_fee_rate": [
        trade("t1", "alice", "bob", buyer_fee_rate_ppm=1)
    ],
    "trade_exists_with_different_seller_fee_rate": [
        trade("t1", "alice", "bob", seller_fee_rate_ppm=1)
    ],
    "trade_exists": [trade("t1", "alice", "bob")],
    "venue_suspended": [
        *DEX,
        *GRANTS,
        w("suspend_venue", principal="governor", venue="dex"),
        trade("t2", "alice", "bob", principal="dex"),
    ],
    "amount_not_positive": [deposit("alice", 0)],
    "amount_too_large": [deposit("alice", 2**96)],
    "quantity_not_positive": [trade("t2", "alice", "bob", 0)],
    "quantity_too_large": [trade("t2", "alice", "bob", 10**12 + 1)],
    "price_not_positive": [trade("t2", "alice", "bob", 1, 0)],
    "price_too_large": [trade("t2", "alice", "bob", 1, 10**15 + 1)],
    "fee_rate_out_of_range": [trade("t2", "alice", "bob", buyer_fee_rate_ppm=10_001)],
    "volatility_out_of_range": [
        w(
            "oracle_volatility",
            principal="oracle-a",
            underlying="BTC",
            volatility_ppm=10**7 + 1,
            timestamp_ms=2_000,
        )
    ],
    "timestamp_out_of_range": [
        w("oracle_price", principal="oracle-a", underlying="BTC", price_ticks=1, timestamp_ms=2**63)
    ],
    "instrument_spec_invalid": [listing("BTC-F2", "future")],
    "self_trade": [trade("t2", "alice", "alice")],
    "transfer_to_same_account": [
        w(
            "transfer",
            principal="alice",
            source_account="alice",
            target_account="alice",
            asset="USDC",
            amount_minor=1,
        )
    ],
    "self_liquidation": [w("liquidate", principal="alice", account="alice", liquidator="alice")],
    "instruction_invalid": [
        w("open_account", principal="alice", account="alice-2"),
        top_up("alice", "alice-2", asset="BTC"),
    ],
    "venue_invalid": [
        w(
            "admit_venue",
            principal="governor",
            venue="operator",
            fee_account="alice",
            open_interest_max_lots=1,
            notional_max_minor=1,
            fee_rate_max_ppm=0,
        )
    ],
    "account_exists": [w("open_account", principal="alice", account="alice")],
    "instrument_exists": [listing("BTC-PERP", "perpetual")],
    "asset_unknown": [deposit("alice", 1, asset="DOGE")],
    "underlying_unknown": [listing("DOGE-PERP", "perpetual", underlying="DOGE")],
    "instrument_unknown": [trade("t2", "alice", "bob", instrument="NOPE")],
    "account_unknown": [deposit("ghost", 1)],
    "venue_unknown": [w("authorize_venue", principal="alice", account="alice", venue="nowhere")],
    "principal_not_owner": [
        deposit("alice", 1).replace('"principal":"alice"', '"principal":"bob"')
    ],
    "transfer_owners_differ": [
        w(
            "transfer",
            principal="alice",
            source_account="alice",
            target_account="bob",
            asset="USDC",
            amount_minor=1,
        )
    ],
    "venue_not_authorised": [*DEX, trade("t2", "alice", "bob", principal="dex")],
    "oracle_timestamp_not_newer": [price(9_000_000, 500)[0]],
    "tick_not_newer": [
        w("tick", principal="sequencer", timestamp_ms=2_000),
        w("tick", principal="sequencer", timestamp_ms=1_500),
    ],
    "instrument_already_settled": [
        *price(9_000_000, 10_500),
        w("expire", principal="operator", instrument="BTC-FUT"),
        w("expire", principal="operator", instrument="BTC-FUT"),
    ],
    "instrument_expired": [
        *price(9_000_000, 10_500),
        trade("t2", "alice", "bob", instrument="BTC-FUT"),
    ],
    "instrument_not_expired": [w("expire", principal="operator", instrument="BTC-FUT")],
    "instrument_not_marked_to_market": [
        listing("BTC-C", "option", expiry_ms=10_000, strike_ticks=10_000_000, option_type="call"),
        w("variation_margin", principal="operator", instrument="BTC-C"),
    ],
    "instrument_not_perpetual": [w("funding", principal="operator", instrument="BTC-FUT")],
    "price_unavailable": [
        listing("ETH-PERP", "perpetual", underlying="ETH"),
        trade("t2", "alice", "bob", instrument="ETH-PERP"),
    ],
    "settlement_price_unavailable": [
        w("tick", principal="sequencer", timestamp_ms=10_500),
        w("expire", principal="operator", instrument="BTC-FUT"),
    ],
    "oracle_not_admissible": [
        w("tick", principal="sequencer", timestamp_ms=10_000_000),
        trade("t2", "alice", "bob"),
    ],
    "funding_too_early": [w("funding", principal="operator", instrument="BTC-PERP")],
    "nothing_to_liquidate": [w("liquidate", principal="alice", account="dave", liquidator="alice")],
    "not_liquidatable": [w("liquidate", principal="alice", account="bob", liquidator="alice")],
    "position_too_large": [trade("t2", "alice", "bob", 10**12)],
    "venue_limit_exceeded": [*DEX, *GRANTS, trade("t2", "alice", "bob", 2, principal="dex")],
    "custody_limit_exceeded": [deposit("dave", 2**96 - 1)],
    "insufficient_funds": [
        w("withdraw", principal="alice", account="alice", asset="USDC", amount_minor=10**13)
    ],
    "rules_proposal_unknown": [w("cancel_rules_change", principal="governor", proposal="p9")],
    "instruction_unknown": [w("run_instructions", principal="bob", account="alice")],
    "nothing_to_top_up": [
        w("open_account", principal="alice", account="alice-2"),
        top_up("alice", "alice-2"),
        w("run_instructions", principal="bob", account="alice"),
    ],
    "top_up_available": [
        *THIN_WITH_RESERVE,
        w("liquidate", principal="alice", account="thin", liquidator="alice"),
    ],
    "rules_change_pending": [PROPOSAL, PROPOSAL.replace('"p1"', '"p2"')],
    "rules_notice_too_short": [PROPOSAL.replace(f"{NOTICE_MS + 20_000}", "2000")],
    "rules_invalid": [
        w(
            "change_rules",
            principal="governor",
            proposal="p1",
            rules_toml="fee_rate_max_ppm =",
            effective_ms=NOTICE_MS + 20_000,
        )
    ],
    "rules_not_yet_effective": [PROPOSAL, w("apply_rules", principal="bob", proposal="p1")],
    "variation_margin_shortfall": [
        w("open_account", principal="thin", account="thin"),
        deposit("thin", 10_000 * USDC),
        trade("t2", "thin", "bob", 1_000),
        *[report for at in range(2_000, 3_000, 100) for report in price(7_800_000, at)],
        w("variation_margin", principal="operator", instrument="BTC-PERP"),
    ],
    "margin_insufficient": [
        w(
            "withdraw",
            principal="alice",
            account="alice",
            asset="USDC",
            amount_minor=1_000_000 * USDC - 5 * USDC,
        )
    ],
}


def _limited(**limits: int) -> sk.RuleSet:
    return attrs.evolve(sk.RuleSet.default(), **limits)


# Reasons that need a rule set with a small limit: (rules, the lines after BASE).
LIMITED: Final[dict[str, tuple[dict[str, int], list[str]]]] = {
    "account_limit_reached": (
        {"accounts_max": 4},
        [w("open_account", principal="erin", account="erin")],
    ),
    "instrument_limit_reached": ({"instruments_max": 2}, [listing("BTC-X", "perpetual")]),
    "position_count_exceeded": (
        {"positions_per_account_max": 1},
        [*price(9_000_000, 2_000), trade("t2", "alice", "bob", instrument="BTC-FUT")],
    ),
}


def reason_cases() -> list[dict[str, Any]]:
    """Return a case per reason: the base market, then the lines that end in that reason."""
    position = {reason.value: number for number, reason in enumerate(sk.Reason, start=1)}
    cases = []
    for value, extra in REASONS.items():
        cases.append(
            lifecycle_case(
                f"reason-{position[value]:02d}-{value}",
                f"spec/20 row {position[value]}: the last line is rejected with {value}, "
                "and the state (its root) is unchanged by it.",
                [*BASE, *extra],
                ["INV-ATOMIC-REJECT", "INV-CONSERVATION"],
                expect_last=value,
            )
        )
    for value, (limits, extra) in LIMITED.items():
        cases.append(
            lifecycle_case(
                f"reason-{position[value]:02d}-{value}",
                f"spec/20 row {position[value]}: under rules with {limits}, the last line is "
                f"rejected with {value}, and the state (its root) is unchanged by it.",
                [*BASE, *extra],
                ["INV-ATOMIC-REJECT", "INV-CONSERVATION"],
                expect_last=value,
                rules=_limited(**limits),
            )
        )
    cases.append(grace_case())
    return sorted(cases, key=lambda case: str(case["name"]))


def demo_case() -> dict[str, Any]:
    """Return the demo session as one case: every chapter, every event family of the demo."""
    lines = [line(s.event) for s in demo_steps()]
    return lifecycle_case(
        "demo-session",
        "The demo (settlekernel demo): a trading day, two venues on one clearing, a rally, a "
        "crash with liquidations, the fund and deleveraging, and an expiry.",
        lines,
        [
            "INV-CONSERVATION",
            "INV-OPEN-INTEREST-ZERO-SUM",
            "INV-INSURANCE-NONNEGATIVE",
            "INV-NO-DOUBLE-SETTLEMENT",
            "INV-VENUE-AUTHORISED",
            "INV-EXPIRY-FINAL",
        ],
        spec=["SK-WATERFALL", "SK-ADL", "SK-DEBT"],
    )


WATERFALL: Final = {
    "partial_example": ("liquidation-ladder", "A long at 9x falls 5 %: a partial liquidation."),
    "adl_example": (
        "bankruptcy-fund-adl",
        "A bankruptcy the fund cannot cover: the fund pays all it has, winners are deleveraged.",
    ),
    "expiry_example": ("expiry", "An expiry: every holder settled at the settlement price."),
    "netted_expiry_example": ("expiry-netted", "An expiry that nets a loser's flows."),
    "calendar_spread_example": ("calendar-spread", "A calendar spread through an expiry."),
    "backstop_example": ("backstop", "An account nobody liquidated in time: the backstop."),
}


@contextmanager
def recorded_chain() -> Iterator[list[sk.Event]]:
    """Record every event stepped from the head of one chain that starts at genesis.

    Steps the code around takes beside the chain (what-if steps from earlier states) are
    not recorded: only a step from the chain's latest state, or the first from a genesis.
    """
    genesis_root = state_root(sk.genesis(sk.RuleSet.default()))
    original = sk.step
    chain: list[sk.Event] = []
    head: list[sk.State | None] = [None]

    def recording(state: sk.State, event: sk.Event) -> sk.Outcome:
        outcome = original(state, event)
        if state is not head[0] and (chain or state_root(state) != genesis_root):
            return outcome
        chain.append(event)
        if isinstance(outcome, sk.Accepted):
            head[0] = outcome.state
        return outcome

    sk.step = recording  # type: ignore[assignment]
    try:
        yield chain
    finally:
        sk.step = original  # type: ignore[assignment]


def waterfall_cases() -> list[dict[str, Any]]:
    """Return the worked waterfall examples (docs/concepts/waterfall.md) as lifecycle cases.

    tools/waterfall_example.py steps each example from genesis; its chain is recorded and
    frozen as a case.
    """
    sys.path.insert(0, str(ROOT / "tools"))
    import waterfall_example as examples  # noqa: PLC0415 (a sibling tool, on demand)

    cases = []
    for function, (name, description) in WATERFALL.items():
        with recorded_chain() as chain:
            getattr(examples, function)()
        lines = [line(event) for event in chain]
        cases.append(
            lifecycle_case(
                f"waterfall-{name}",
                description + " (docs/concepts/waterfall.md)",
                lines,
                [
                    "INV-CONSERVATION",
                    "INV-INSURANCE-NONNEGATIVE",
                    "INV-ADL-FAIRNESS",
                    "INV-LIQUIDATION-NO-WORSE",
                    "INV-OPEN-INTEREST-ZERO-SUM",
                ],
                spec=["SK-WATERFALL", "SK-ADL"],
            )
        )
    return cases


def grace_case() -> dict[str, Any]:
    """Return the grace scenario of tests/test_rule_changes.py as a case.

    A change alone pushes thin below maintenance, the change applies, and its liquidation
    is refused in the grace.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    import test_rule_changes as changes  # noqa: PLC0415 (the test's own scenario)

    with recorded_chain() as chain:
        state = changes.applied_tighter()
        changes.run_table([(changes.liquidate(), "liquidation_in_grace")], state)
    return lifecycle_case(
        f"reason-{_position('liquidation_in_grace'):02d}-liquidation_in_grace",
        f"spec/20 row {_position('liquidation_in_grace')}: a governed change (SK-GOV-3..6) "
        "pushes an account below maintenance by itself; once applied, the account is in its "
        "grace and the last line, its liquidation, is rejected with liquidation_in_grace.",
        [line(event) for event in chain],
        ["INV-ATOMIC-REJECT", "INV-GRACE", "INV-RULES-GOVERNED"],
        expect_last="liquidation_in_grace",
    )


def _position(value: str) -> int:
    return [reason.value for reason in sk.Reason].index(value) + 1


def margin_cases() -> list[dict[str, Any]]:
    """Return margin cases: the hedged strangle example and variants of it."""
    example = json.loads((ROOT / "examples" / "strangle.json").read_text(encoding="utf-8"))
    variants = {"strangle-hedged": example}
    unhedged = json.loads(json.dumps(example))
    unhedged["positions"] = [
        p for p in unhedged["positions"] if p["instrument"]["kind"] == "option"
    ]
    long_future = json.loads(json.dumps(example))
    long_future["positions"] = [
        p for p in long_future["positions"] if p["instrument"]["kind"] == "future"
    ]
    variants["future-only"] = long_future
    variants["strangle-unhedged"] = unhedged
    cases = []
    for name, portfolio in variants.items():
        text = json.dumps(portfolio, sort_keys=True)
        cases.append(
            {
                "name": f"margin-{name}",
                "kind": "margin",
                "description": "Portfolio margin of a book (settlekernel margin --json): "
                "integers exactly, Greeks to a relative 1e-9.",
                "spec": ["SK-MARGIN", "SK-PM-1", "SK-PM-2", "SK-PM-3"],
                "invariants": ["INV-MARGIN-SAFETY"],
                "rules": {"digest": sk.RuleSet.default().digest.hex(), "toml": None},
                "portfolio": portfolio,
                "expected": margin_report(text, RULES_TOML),
            }
        )
    return cases


def encodings_case() -> dict[str, Any]:
    """Return a small state's leaves: key, encoding, BLAKE3 leaf digest, and the root."""
    lines = [*BASE]
    _, results = Kernel().run(RULES_TOML, lines)
    state = sk.genesis(sk.RuleSet.default())
    for text in lines:
        outcome = sk.step(state, decode_event(text, 1))  # type: ignore[arg-type]
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
    leaves = []
    for key in sorted(all_leaf_keys(state)):
        encoding = encode_leaf(state, key)
        if encoding is None:
            continue
        leaves.append(
            {"key": key, "encoding": encoding.decode(), "leaf_digest": leaf_digest(encoding).hex()}
        )
    assert state_root(state).hex() == results[-1].root
    return {
        "name": "encodings-small-state",
        "lines": lines,
        "leaves": leaves,
        "root": results[-1].root,
    }


def write(name: str, cases: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> None:
    document = {
        "format": FORMAT,
        "generated_by": "tools/conformance_vectors.py",
        "cases": cases,
        **(extra or {}),
    }
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{path.relative_to(ROOT)}: {len(cases)} cases")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    write("lifecycle", [demo_case(), *waterfall_cases()])
    write("reasons", reason_cases())
    write("margin", margin_cases())
    covered = {*REASONS, *LIMITED, "liquidation_in_grace"}
    missing = [r.value for r in sk.Reason if r.value not in covered]
    print(f"reasons without a case ({len(missing)}): {', '.join(missing)}")
    write("encodings", [], {"encodings": encodings_case()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
