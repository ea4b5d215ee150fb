"""The in-memory journal: accepted events chained by hash, re-executed on verify."""

from __future__ import annotations

import attrs
import pytest

import settlekernel as sk
from settlekernel.cli.demo import demo_steps
from settlekernel.journal.memory import Journal, compute_entry_hash, verify_entries

RULES = sk.RuleSet.default()


@pytest.fixture(scope="module")
def journal() -> Journal:
    """The demo session, journaled."""
    journal = Journal(sk.genesis(RULES))
    for demo_step in demo_steps():
        journal.submit(demo_step.event)
    return journal


def test_chains_accepted_events_and_keeps_rejections_aside(journal):
    """Chains every accepted event from the genesis root; records each rejection once."""
    assert len(journal.entries) + len(journal.rejections) == len(demo_steps())
    assert journal.entries[0].previous_hash == journal.genesis_root
    for before, after in zip(journal.entries, journal.entries[1:], strict=False):
        assert after.previous_hash == before.entry_hash
    assert {r.rejection.reason for r in journal.rejections} == {
        sk.Reason.TRADE_EXISTS,
        sk.Reason.MARGIN_INSUFFICIENT,
        sk.Reason.PRINCIPAL_NOT_OWNER,
        sk.Reason.SELF_TRADE,
        sk.Reason.ORACLE_NOT_ADMISSIBLE,
        sk.Reason.NOT_LIQUIDATABLE,
        sk.Reason.INSTRUMENT_NOT_EXPIRED,
        sk.Reason.INSTRUMENT_ALREADY_SETTLED,
        sk.Reason.PRINCIPAL_NOT_GOVERNOR,
        sk.Reason.VENUE_NOT_AUTHORISED,
    }
    assert journal.entries[-1].state_root == sk.state_root(journal.state)


def test_verify_re_executes_and_accepts_an_honest_journal(journal):
    """Re-derives every root of an untouched journal."""
    assert verify_entries(RULES, journal.entries) is None


def _tamper(journal, index, **changes):
    entries = list(journal.entries)
    entries[index] = attrs.evolve(entries[index], **changes)
    return entries


def _mm_deposit(journal):
    """Return the index of the market maker's 500,000 USDC deposit, and the forged line."""
    index = next(i for i, e in enumerate(journal.entries) if "500000000000" in e.event_line)
    forged = journal.entries[index].event_line.replace("500000000000", "900000000000")
    return index, forged


def test_verify_locates_a_changed_event(journal):
    """Names the first entry whose event was changed after the fact."""
    index, forged = _mm_deposit(journal)
    problem = verify_entries(RULES, _tamper(journal, index, event_line=forged))
    assert problem == f"entry {index + 1}: entry hash does not match its contents"


def test_verify_locates_a_consistent_forgery(journal):
    """Catches a forger who also recomputes the entry hash: the replayed root differs."""
    index, forged = _mm_deposit(journal)
    entry = journal.entries[index]
    entries = _tamper(
        journal,
        index,
        event_line=forged,
        entry_hash=compute_entry_hash(entry.previous_hash, forged, entry.state_root),
    )
    assert verify_entries(RULES, entries) == (
        f"entry {index + 1}: state root {entry.state_root.hex()[:16]} differs from replay"
    )


def test_verify_locates_a_broken_link_and_a_wrong_root(journal):
    """Names a reordered entry and an entry whose root was replaced."""
    entries = list(journal.entries)
    entries[3], entries[4] = entries[4], entries[3]
    assert verify_entries(RULES, entries) == "entry 5: does not link to the entry before it"
    assert verify_entries(RULES, _tamper(journal, 2, state_root=bytes(32))) == (
        "entry 3: entry hash does not match its contents"
    )


def test_rejections_do_not_move_the_head():
    """Leaves the head hash unchanged when an event is rejected."""
    journal = Journal(sk.genesis(RULES))
    head = journal.head_hash
    outcome = journal.submit(sk.Withdraw(principal="x", account="x", asset="USDC", amount_minor=1))
    assert isinstance(outcome, sk.Rejected)
    assert journal.head_hash == head
    assert journal.rejections[0].event_line.startswith('{"account":"x"')
