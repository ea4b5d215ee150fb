"""Governed rule changes (SK-GOV-3..6): propose with notice, cancel, apply, and the grace.

Each test is an attack on governance: a governor changing the rules at once, shortening its
own notice, stranding collateral, a keeper applying early, a liquidator racing a change
that alone pushed an account below maintenance, a holder blocking a change, a journal or a
snapshot that forgets the rules in force.
"""

from __future__ import annotations

import json

import attrs
import pytest
from click.testing import CliRunner
from hypothesis import event as coverage_label
from hypothesis import given, settings
from hypothesis import strategies as st
from immutables import Map

import settlekernel as sk
from scenario import (
    OK,
    USDC,
    apply_checked,
    deposit,
    market,
    open_account,
    price,
    run_table,
    trade,
)
from settlekernel.cli.main import main
from settlekernel.commitments.snapshot import decode_state, encode_state
from settlekernel.core.root import recompute_root, state_root
from settlekernel.core.rules_toml import dump_rules_toml, parse_rules_toml
from settlekernel.core.units import RULES_TOML_CHARS_MAX
from settlekernel.core.wire import decode_event, decode_lines, encode_event
from settlekernel.journal.durable import DurableJournal, open_for_audit
from settlekernel.journal.verify import audit_journal
from settlekernel.kernel.transitions import backstop, governance, liquidation

RULES = sk.RuleSet.default()
DAY = 86_400_000


def with_btc(rules: sk.RuleSet, **changes: int) -> sk.RuleSet:
    """Return ``rules`` with the BTC underlying's parameters changed."""
    btc = attrs.evolve(rules.underlying_by_symbol["BTC"], **changes)
    return attrs.evolve(
        rules, underlyings=tuple(btc if u.symbol == "BTC" else u for u in rules.underlyings)
    )


# BTC's scan range from 8 % to 12 %: thin's maintenance goes from 7,200 to 10,800 USDC,
# above its 10,000 USDC of equity. Nothing else changes.
TIGHTER = with_btc(RULES, scan_range_ppm=120_000)


def change(
    rules: sk.RuleSet | str = TIGHTER,
    effective_ms: int = 1_000 + DAY,
    proposal: str = "p1",
    principal: str = "governor",
) -> sk.ChangeRules:
    text = rules if isinstance(rules, str) else dump_rules_toml(rules)
    return sk.ChangeRules(
        principal=principal, proposal=proposal, rules_toml=text, effective_ms=effective_ms
    )


def cancel(proposal: str = "p1", principal: str = "governor") -> sk.CancelRulesChange:
    return sk.CancelRulesChange(principal=principal, proposal=proposal)


def apply(proposal: str = "p1", principal: str = "keeper") -> sk.ApplyRules:
    return sk.ApplyRules(principal=principal, proposal=proposal)


def tick(at_ms: int) -> sk.Tick:
    return sk.Tick(principal="sequencer", timestamp_ms=at_ms)


def liquidate(account: str = "thin") -> sk.Liquidate:
    return sk.Liquidate(principal="liq", account=account, liquidator="liq")


def fresh_prices(at_ms: int, btc: int = 9_000_000) -> list[tuple[object, str]]:
    """The clock to ``at_ms`` and both indexes reported again there (they went stale)."""
    return [(tick(at_ms), OK), (price("BTC", btc, at_ms), OK), (price("ETH", 300_000, at_ms), OK)]


def thin_market(extra=()) -> sk.State:
    """thin (10,000 USDC) is long 1 BTC of BTC-PERP at 90,000; liq has 100,000 USDC."""
    return market(
        [
            (open_account("thin"), OK),
            (deposit("thin", 10_000 * USDC), OK),
            (open_account("liq"), OK),
            (deposit("liq", 100_000 * USDC), OK),
            (trade("t1", "thin", "alice", 1_000, 9_000_000), OK),
            *extra,
        ]
    )


def applied_tighter() -> sk.State:
    """thin_market with TIGHTER proposed at 1,000, effective and applied at 1,000 + DAY."""
    return run_table([(change(), OK), *fresh_prices(1_000 + DAY), (apply(), OK)], thin_market())


def test_every_rejection_of_a_proposal_leaves_the_state_unchanged():
    """Refuses, in order: another principal, a bad time, a second proposal, a short notice,
    and rules that do not parse, fail their checks or cannot govern the state as it is."""
    usdc = attrs.evolve(RULES.asset_by_symbol["USDC"], decimals=8)
    other_decimals = attrs.evolve(
        RULES, assets=tuple(usdc if a.symbol == "USDC" else a for a in RULES.assets)
    )
    rows = [
        (change(principal="operator"), "principal_not_governor"),
        (change(principal="mallory"), "principal_not_governor"),
        (change(effective_ms=-1), "timestamp_out_of_range"),
        (change(effective_ms=1_000 + DAY - 1), "rules_notice_too_short"),
        (change("fee_rate_max_ppm = 1.5"), "rules_invalid"),
        (change("[[[not toml"), "rules_invalid"),
        (change("no_such_rule = 1"), "rules_invalid"),
        (change("fee_rate_max_ppm = 2000000"), "rules_invalid"),
        (change("9" * 100), "rules_invalid"),
        (change(" " * (RULES_TOML_CHARS_MAX + 1)), "rules_invalid"),
        (change("a = " + "[" * 5_000 + "]" * 5_000), "rules_invalid"),
        (change("a = [[[[[[[[[1]]]]]]]]]"), "rules_invalid"),
        (change(with_btc(RULES, tick_value_minor=1)), "rules_invalid"),
        (change(other_decimals), "rules_invalid"),
        (change(attrs.evolve(RULES, valuation_asset="BTC")), "rules_invalid"),
        (
            change(attrs.evolve(RULES, roles=attrs.evolve(RULES.roles, matchers=("x",)))),
            "rules_invalid",
        ),
        (change(), OK),
        (change(proposal="p2"), "rules_change_pending"),
        (change(), "rules_change_pending"),
    ]
    state = run_table(rows, thin_market())
    assert state.proposal is not None
    assert state.proposal.rules == TIGHTER
    assert state.proposal.effective_ms == 1_000 + DAY
    assert state.rules == RULES


def test_rules_invalid_names_every_problem():
    """The message lists every unit change a live ledger cannot take, not just the first."""
    usdc = attrs.evolve(RULES.asset_by_symbol["USDC"], decimals=8)
    both = attrs.evolve(
        with_btc(RULES, tick_value_minor=1),
        assets=tuple(usdc if a.symbol == "USDC" else a for a in RULES.assets),
    )
    outcome = sk.step(thin_market(), change(both))
    assert isinstance(outcome, sk.Rejected)
    assert outcome.reason is sk.Reason.RULES_INVALID
    assert "asset USDC decimals change from 6 to 8" in outcome.message
    assert "underlying BTC tick_value_minor changes from 10000 to 1" in outcome.message


def test_cancel_and_apply_refuse_what_is_not_pending():
    """Only the governor cancels; nobody cancels or applies another or a withdrawn proposal."""
    rows = [
        (cancel(), "rules_proposal_unknown"),
        (apply(), "rules_proposal_unknown"),
        (change(), OK),
        (cancel(principal="mallory"), "principal_not_governor"),
        (cancel(principal="operator"), "principal_not_governor"),
        (cancel("p2"), "rules_proposal_unknown"),
        (apply("p2"), "rules_proposal_unknown"),
        (cancel(), OK),
        (cancel(), "rules_proposal_unknown"),
        *fresh_prices(1_000 + DAY),
        (apply(), "rules_proposal_unknown"),
    ]
    state = run_table(rows, thin_market())
    assert state.proposal is None
    assert state.rules == RULES


def test_apply_waits_for_the_effective_time_then_anyone_may_apply():
    """A keeper applying a millisecond early is refused; at the effective time anyone may."""
    state = run_table(
        [
            (change(effective_ms=1_000 + 2 * DAY), OK),
            (tick(1_000 + 2 * DAY - 1), OK),
            (apply(principal="mallory"), "rules_not_yet_effective"),
            (tick(1_000 + 2 * DAY), OK),
            (apply(principal="mallory"), OK),
        ],
        thin_market(),
    )
    assert state.rules == TIGHTER
    assert state.proposal is None


def test_a_change_cannot_shorten_its_own_notice_or_grace():
    """Notice and grace are counted under the rules in force: a change that sets both to 0
    still waits the old day, and the grace it opens lasts the old day."""
    hasty = attrs.evolve(TIGHTER, rules_notice_ms=0, rules_grace_ms=0)
    state = run_table(
        [(change(hasty, effective_ms=1_000), "rules_notice_too_short"), (change(hasty), OK)],
        thin_market(),
    )
    state = run_table([*fresh_prices(1_000 + DAY), (apply(), OK)], state)
    assert state.grace is not None
    assert state.grace.until_ms == 1_000 + 2 * DAY
    # Nothing is proposed while that grace is open, even with the new zero notice.
    state = run_table([(change(RULES, effective_ms=1_000 + DAY), "rules_change_pending")], state)
    state = run_table(
        [*fresh_prices(1_000 + 2 * DAY), (change(RULES, effective_ms=1_000 + 2 * DAY), OK)], state
    )


def test_the_change_alone_cannot_make_an_account_liquidatable_during_its_grace():
    """thin meets maintenance under the old rules and not under the new: it gets a grace;
    Liquidate and Backstop are refused in it, accepted once it has ended."""
    state = thin_market()
    impact = sk.margin_report(state, "thin")
    assert impact.equity_minor >= impact.maintenance_minor
    state = applied_tighter()
    assert state.rules == TIGHTER
    assert state.grace is not None
    assert set(state.grace.accounts) == {"thin"}
    assert state.grace.rules == RULES
    assert sk.is_liquidatable(state, "thin")
    state = run_table(
        [
            (liquidate(), "liquidation_in_grace"),
            (sk.Backstop(principal="anyone", account="thin"), "not_liquidatable"),
            # thin cannot add risk meanwhile: trades are checked under the rules in force.
            (trade("t2", "thin", "alice", 100, 9_000_000), "margin_insufficient"),
            (tick(1_000 + 2 * DAY - 1), OK),
            (price("BTC", 9_000_000, 1_000 + 2 * DAY - 1), OK),
            (price("ETH", 300_000, 1_000 + 2 * DAY - 1), OK),
            (liquidate(), "liquidation_in_grace"),
            *fresh_prices(1_000 + 2 * DAY),
            (liquidate(), OK),
        ],
        state,
    )


def test_the_grace_does_not_shelter_an_account_the_market_took_below_old_maintenance():
    """The grace covers the change, not the market: below the old maintenance too, thin is
    liquidatable at once."""
    state = applied_tighter()
    at = 1_000 + DAY
    state = run_table(
        [(price("BTC", 8_600_000, at + i * 100), OK) for i in range(1, 5)],
        state,
    )
    assert state.prices["BTC"].price_ticks == 8_600_000
    run_table([(liquidate(), OK)], state)


def test_the_backstop_is_refused_in_grace():
    """A change that pushes thin below the backstop threshold still gives it its grace."""
    brutal = with_btc(RULES, scan_range_ppm=200_000)
    state = run_table(
        [(change(brutal), OK), *fresh_prices(1_000 + DAY), (apply(), OK)], thin_market()
    )
    state = run_table(
        [(sk.Backstop(principal="anyone", account="thin"), "liquidation_in_grace")], state
    )
    run_table(
        [*fresh_prices(1_000 + 2 * DAY), (sk.Backstop(principal="anyone", account="thin"), OK)],
        state,
    )


def test_what_the_notice_brought_is_checked_again_at_apply():
    """A venue admitted during the notice under the name the new rules give a role makes the
    change inapplicable: ApplyRules says so; the governor cancels."""
    renamed = attrs.evolve(RULES, roles=attrs.evolve(RULES.roles, sequencer="dex"))
    admit = sk.AdmitVenue(
        principal="governor",
        venue="dex",
        fee_account="dex-fees",
        open_interest_max_lots=1,
        notional_max_minor=1,
        fee_rate_max_ppm=0,
    )
    state = run_table(
        [
            (change(renamed), OK),
            (open_account("dex", "dex-fees"), OK),
            (admit, OK),
            (sk.Tick(principal="sequencer", timestamp_ms=1_000 + DAY), OK),
            (apply(), "rules_invalid"),
            (cancel(), OK),
        ],
        sk.genesis(RULES),
    )
    assert state.rules == RULES


def test_a_rules_file_cannot_remove_an_asset():
    """A proposal's TOML only adds or amends entries: leaving BTC out keeps BTC."""
    text = dump_rules_toml(RULES).replace("[assets.BTC]", "[assets.XBT]")
    state = run_table([(change(text), OK)], thin_market())
    assert state.proposal is not None
    assert {"BTC", "XBT"} <= set(state.proposal.rules.asset_by_symbol)


def test_the_house_venue_fee_ceiling_follows_the_rules():
    """A house venue's fee ceiling is the rules' (SK-VENUE-1), after a change too."""
    cheaper = attrs.evolve(RULES, fee_rate_max_ppm=100)
    state = run_table([(change(cheaper), OK), (tick(1_000 + DAY), OK), (apply(), OK)], market())
    assert state.venues["venue"].fee_rate_max_ppm == 100


def test_the_root_commits_to_the_rules_the_proposal_and_the_grace():
    """Each of the three moves the root, and the incremental root equals one from scratch."""
    before = thin_market()
    proposed = run_table([(change(), OK)], before)
    other = run_table([(change(proposal="p9"), OK)], before)
    assert len({state_root(before), state_root(proposed), state_root(other)}) == 3
    state = applied_tighter()
    assert state_root(state) == recompute_root(state)
    no_grace = attrs.evolve(state, grace=None)
    assert recompute_root(no_grace) != recompute_root(state)
    assert recompute_root(attrs.evolve(state, rules=RULES)) != recompute_root(state)


def test_the_margin_cache_never_serves_a_report_under_the_old_rules():
    """The cache is emptied by ApplyRules, and keyed by the rule set anyway."""
    state = thin_market()
    assert "thin" in state.margins
    state = run_table([(change(), OK), (tick(1_000 + DAY), OK)], state)
    outcome = sk.step(state, apply())
    assert isinstance(outcome, sk.Accepted)
    assert not outcome.state.margins
    # A stale entry planted back is not served: its key names the old rules.
    planted = attrs.evolve(outcome.state, margins=state.margins)
    assert sk.margin_report(planted, "thin").maintenance_minor == 10_800 * USDC


def test_the_wire_round_trip_is_exact():
    """A proposal's TOML survives encode and decode byte for byte, newlines and quotes
    included, and a line of the full default rules fits the wire's bound."""
    event = change()
    line = encode_event(event)
    assert decode_event(line) == event
    assert encode_event(decode_event(line)) == line  # type: ignore[arg-type]
    assert json.loads(line)["rules_toml"] == dump_rules_toml(TIGHTER)
    assert len(line) < 16_384
    cancel_line, apply_line = encode_event(cancel()), encode_event(apply())
    assert decode_lines(f"{line}\n{cancel_line}\r\n{apply_line}") == [event, cancel(), apply()]
    bad = decode_event(line.replace(json.dumps(dump_rules_toml(TIGHTER)), "7"))
    assert isinstance(bad, sk.Rejected)
    assert bad.reason is sk.Reason.FIELD_TYPE_INVALID


def test_a_snapshot_carries_the_rules_the_proposal_and_the_grace():
    """Snapshots taken with a proposal pending and with a grace open decode to equal states."""
    pending = run_table([(change(), OK)], thin_market())
    for state in (pending, applied_tighter()):
        decoded = decode_state(encode_state(sk.fold(state)), RULES)
        assert decoded == state
        assert decoded.proposal == state.proposal
        assert decoded.grace == state.grace
        assert state_root(decoded) == state_root(state)


def test_a_durable_journal_with_a_change_recovers_and_audits_to_the_same_root(tmp_path):
    """A journal that proposes, applies and liquidates after the grace reopens (from its
    snapshot and by replay) and audits to the root the kernel reached."""
    events = [
        open_account("thin"),
        deposit("thin", 10_000 * USDC),
        open_account("alice"),
        deposit("alice", 1_000_000 * USDC),
        open_account("liq"),
        deposit("liq", 100_000 * USDC),
        sk.ListInstrument(
            principal="operator",
            instrument="BTC-PERP",
            kind=sk.InstrumentKind.PERPETUAL,
            underlying="BTC",
            settlement_asset="USDC",
            multiplier_minor=10,
        ),
        *price("BTC", 9_000_000, 1_000),
        trade("t1", "thin", "alice", 1_000, 9_000_000),
        change(),
        tick(1_000 + DAY),
        *price("BTC", 9_000_000, 1_000 + DAY),
        apply(),
        liquidate(),
        tick(1_000 + 2 * DAY),
        *price("BTC", 9_000_000, 1_000 + 2 * DAY),
        liquidate(),
    ]
    lines = [encode_event(event) for event in events]
    path = tmp_path / "rules.db"
    journal = DurableJournal.open(path, snapshot_every_entries=4)
    for start in range(0, len(lines), 3):
        journal.append(lines[start : start + 3])
    final = journal.state
    journal.close()
    state = sk.genesis(RULES)
    for event in events:
        outcome = sk.step(state, event)
        if isinstance(outcome, sk.Accepted):
            state = outcome.state
    assert state.rules == TIGHTER
    assert state_root(final) == state_root(state)
    reopened = DurableJournal.open(path)
    try:
        assert state_root(reopened.state) == state_root(state)
        assert reopened.state.rules == TIGHTER
        assert reopened.store.snapshot_at_or_before(reopened.head.number) is not None
    finally:
        reopened.close()
    store, rules, genesis_root = open_for_audit(path)
    try:
        report = audit_journal(store, rules, genesis_root)
    finally:
        store.close()
    assert report.finding is None
    assert report.final_root == state_root(state)


def test_journal_rules_prints_the_rules_in_force_and_the_pending_change(tmp_path):
    """`settlekernel journal rules` reads a journal's head: the rules in force as TOML that
    parses back to the same digest, and the change the governor proposed, still pending."""
    db = tmp_path / "governed.sqlite3"
    opened = DurableJournal.open(db, RULES)
    try:
        opened.append([encode_event(change(effective_ms=DAY + 1_000))])
    finally:
        opened.close()
    runner = CliRunner()
    found = json.loads(runner.invoke(main, ["journal", "rules", "--db", str(db), "--json"]).output)
    assert found["rules_digest"] == RULES.digest.hex()
    assert found["proposal"]["id"] == "p1"
    assert found["proposal"]["rules_digest"] == TIGHTER.digest.hex()
    assert found["proposal"]["effective_ms"] == DAY + 1_000
    assert found["grace"] is None
    text = runner.invoke(main, ["journal", "rules", "--db", str(db)]).output
    assert "# pending change p1" in text
    assert parse_rules_toml(text).digest == RULES.digest


def test_a_planted_apply_that_ignores_the_notice_is_caught(monkeypatch):
    """INV-RULES-GOVERNED catches a kernel that applies a proposal before it is effective."""
    state = run_table([(change(), OK)], thin_market())
    assert isinstance(sk.step(state, apply()), sk.Rejected)
    forged = attrs.evolve(
        state.proposal,
        effective_ms=0,  # type: ignore[arg-type]
    )
    monkeypatch.setattr(governance, "_pending", lambda state, event: forged)
    outcome = sk.step(state, apply())
    assert isinstance(outcome, sk.Accepted)
    found = sk.check_step(state, apply(), outcome)
    assert [v.invariant for v in found] == [sk.InvariantId.RULES_GOVERNED]


def test_a_planted_proposal_without_notice_is_caught(monkeypatch):
    """INV-RULES-GOVERNED catches a kernel whose ChangeRules skips the notice check."""
    state = thin_market()
    event = change(effective_ms=1_000)
    assert isinstance(sk.step(state, event), sk.Rejected)
    monkeypatch.setattr(governance, "check_notice", lambda state, event: None)
    outcome = sk.step(state, event)
    assert isinstance(outcome, sk.Accepted)
    found = sk.check_step(state, event, outcome)
    assert [v.invariant for v in found] == [sk.InvariantId.RULES_GOVERNED]
    assert [v.invariant for v in sk.check_invariants(outcome.state)] == [
        sk.InvariantId.RULES_GOVERNED
    ]


def test_a_planted_liquidation_that_ignores_the_grace_is_caught(monkeypatch):
    """INV-GRACE catches a kernel whose Liquidate skips the grace check."""
    state = applied_tighter()
    monkeypatch.setattr(liquidation, "check_grace", lambda state, account: None)
    outcome = sk.step(state, liquidate())
    assert isinstance(outcome, sk.Accepted)
    found = sk.check_step(state, liquidate(), outcome)
    assert [v.invariant for v in found] == [sk.InvariantId.GRACE]


def test_a_planted_backstop_that_ignores_the_grace_is_caught(monkeypatch):
    """INV-GRACE catches a kernel whose Backstop skips the grace check."""
    brutal = with_btc(RULES, scan_range_ppm=200_000)
    state = run_table(
        [(change(brutal), OK), *fresh_prices(1_000 + DAY), (apply(), OK)], thin_market()
    )
    event = sk.Backstop(principal="anyone", account="thin")
    monkeypatch.setattr(backstop, "check_grace", lambda state, account: None)
    outcome = sk.step(state, event)
    assert isinstance(outcome, sk.Accepted)
    found = sk.check_step(state, event, outcome)
    assert sk.InvariantId.GRACE in {v.invariant for v in found}


def test_a_planted_grace_that_forgets_an_account_is_caught(monkeypatch):
    """INV-GRACE catches an ApplyRules that gives nobody a grace."""
    state = run_table([(change(), OK), *fresh_prices(1_000 + DAY)], thin_market())
    monkeypatch.setattr(governance, "pushed_below_maintenance", lambda state, rules: Map())
    outcome = sk.step(state, apply())
    assert isinstance(outcome, sk.Accepted)
    assert outcome.state.grace is None
    found = sk.check_step(state, apply(), outcome)
    assert [v.invariant for v in found] == [sk.InvariantId.GRACE]


GOVERNANCE_MOVES = st.lists(
    st.one_of(
        st.tuples(
            st.just("change"),
            st.sampled_from(("governor", "governor", "governor", "mallory")),
            st.sampled_from(("p1", "p1", "p2")),
            st.sampled_from((DAY, DAY, 2 * DAY, DAY - 1, 0)),
            st.sampled_from((TIGHTER, TIGHTER, RULES, attrs.evolve(RULES, rules_notice_ms=0))),
        ),
        st.tuples(
            st.just("cancel"),
            st.sampled_from(("governor", "mallory")),
            st.sampled_from(("p1", "p2")),
        ),
        st.tuples(st.just("apply"), st.sampled_from(("pending", "pending", "p2")), st.booleans()),
        st.tuples(st.just("wait"), st.sampled_from((DAY, DAY, DAY // 2, 1))),
        st.tuples(st.just("liquidate")),
    ),
    min_size=3,
    max_size=16,
)


@settings(max_examples=40, deadline=None)
@given(proposed=st.booleans(), moves=GOVERNANCE_MOVES)
def test_random_governance_keeps_every_invariant(proposed, moves):
    """Random proposals, cancellations, applications, waits and liquidations, from a state
    with TIGHTER pending or none: every step keeps INV-RULES-GOVERNED, INV-GRACE and every
    other invariant (``apply_checked``)."""
    state = run_table([(change(), OK)], thin_market()) if proposed else thin_market()
    for move in moves:
        if move[0] == "change":
            _, who, proposal, notice, rules = move
            events = [change(rules, state.clock_ms + notice, proposal, who)]
        elif move[0] == "cancel":
            events = [cancel(move[2], move[1])]
        elif move[0] == "apply":
            pending = "p1" if state.proposal is None else state.proposal.id
            events = []
            if move[2] and state.proposal is not None:
                # A keeper waits for the effective time (prices reported there again).
                at = max(state.proposal.effective_ms, state.clock_ms + 1)
                events = [tick(at), *price("BTC", 9_000_000, at), *price("ETH", 300_000, at)]
            # A liquidator races the change: right after the apply, in the same breath.
            events += [apply(pending if move[1] == "pending" else move[1]), liquidate()]
        elif move[0] == "wait":
            at = state.clock_ms + move[1]
            events = [tick(at), *price("BTC", 9_000_000, at), *price("ETH", 300_000, at)]
        else:
            events = [liquidate()]
        for event in events:
            outcome = apply_checked(state, event)
            label = "accepted" if isinstance(outcome, sk.Accepted) else outcome.reason.value
            coverage_label(f"{type(event).__name__}: {label}")
            if isinstance(outcome, sk.Accepted):
                state = outcome.state
    assert state.rules in {RULES, TIGHTER, attrs.evolve(RULES, rules_notice_ms=0)}


@pytest.mark.parametrize("bad", [None, 7, b"x", ["a"]])
def test_a_non_string_rules_toml_is_a_typed_rejection(bad):
    """An event object built with a non-string TOML field is rejected by its shape."""
    event = sk.ChangeRules(principal="governor", proposal="p", rules_toml=bad, effective_ms=DAY)  # type: ignore[arg-type]
    outcome = sk.step(sk.genesis(RULES), event)
    assert isinstance(outcome, sk.Rejected)
    assert outcome.reason is sk.Reason.FIELD_TYPE_INVALID
