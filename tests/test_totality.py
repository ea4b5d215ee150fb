"""Totality of the library against hostile objects: `step` never raises (SK-STEP-1)."""

from __future__ import annotations

import attrs
import pytest

import settlekernel as sk
from settlekernel.core.events import EVENT_NAMES, EVENT_TYPES, FIELD_KINDS
from settlekernel.core.units import VALUE_LIMIT
from settlekernel.core.wire import describe_event
from settlekernel.kernel.invariants import check_invariants

RULES = sk.RuleSet.default()
GENESIS = sk.genesis(RULES)
R = sk.Reason
# Far past Python's default limit of 4,300 digits for converting an integer to a string.
HUGE = 10**5_000


def _valid(cls):
    """Return an instance of ``cls`` whose every field has its declared type."""
    samples = {"str": "a", "int": 1}
    values = {}
    for field in attrs.fields(cls):
        if field.default is not attrs.NOTHING:
            continue
        kind = field.metadata["kind"].value
        if kind == "instrument_kind":
            values[field.name] = sk.InstrumentKind.PERPETUAL
        else:
            values[field.name] = samples["str" if kind == "id" else "int"]
    return cls(**values)


def _unset(cls, *names):
    """Return an instance of ``cls`` with the named slots (or all, if none named) unset."""
    if not names:
        return object.__new__(cls)
    event = _valid(cls)
    for name in names:
        object.__delattr__(event, name)
    return event


@pytest.mark.parametrize("cls", list(EVENT_TYPES.values()), ids=list(EVENT_TYPES))
def test_an_event_built_without_its_fields_is_a_rejection(cls):
    """Rejects an event whose slots were never set as field_missing, in step and apply_batch."""
    event = _unset(cls)
    outcome = sk.step(GENESIS, event)
    first = FIELD_KINDS[cls][0][0]
    assert outcome == sk.Rejected(R.FIELD_MISSING, f"{EVENT_NAMES[cls]}.{first} is not set")
    state, outcomes = sk.apply_batch(GENESIS, [event, event])
    assert outcomes == [outcome, outcome]
    assert sk.state_root(state) == sk.state_root(GENESIS)


def test_a_missing_field_takes_precedence_over_a_mistyped_one():
    """Names the unset field even when an earlier field has the wrong type."""
    event = _unset(sk.Deposit, "amount_minor")
    object.__setattr__(event, "principal", 7)
    assert sk.step(GENESIS, event) == sk.Rejected(
        R.FIELD_MISSING, "deposit.amount_minor is not set"
    )


@pytest.mark.parametrize(
    "amount", [HUGE, -HUGE, 2**256, -(2**256)], ids=["huge", "-huge", "2**256", "-2**256"]
)
def test_an_integer_of_any_size_is_a_rejection_with_a_bounded_message(amount):
    """Rejects an integer of 256 bits or more as field_type_invalid without printing it."""
    event = sk.Deposit(principal="a", account="a", asset="USDC", amount_minor=amount)
    outcome = sk.step(GENESIS, event)
    assert isinstance(outcome, sk.Rejected)
    assert outcome.reason is R.FIELD_TYPE_INVALID
    assert f"an int of {amount.bit_length()} bits" in outcome.message
    assert len(outcome.message) < 200


def test_every_integer_field_is_bounded_before_the_transition_formats_it():
    """Rejects a huge multiplier, fee rate or timestamp before any transition message."""
    listing = sk.ListInstrument(
        principal="operator",
        instrument="X-PERP",
        kind=sk.InstrumentKind.PERPETUAL,
        underlying="BTC",
        settlement_asset="USDC",
        multiplier_minor=HUGE,
    )
    for event in (
        listing,
        attrs.evolve(listing, multiplier_minor=1, expiry_ms=-HUGE),
        sk.OraclePrice(principal="o", underlying="BTC", price_ticks=1, timestamp_ms=HUGE),
    ):
        outcome = sk.step(GENESIS, event)
        assert isinstance(outcome, sk.Rejected)
        assert outcome.reason is R.FIELD_TYPE_INVALID, outcome


def test_integers_just_below_the_bound_keep_their_range_reasons():
    """Gives the range reason, with the number in full, to an integer below 2**256."""
    amount = 2**256 - 1
    outcome = sk.step(
        GENESIS, sk.Deposit(principal="a", account="a", asset="USDC", amount_minor=amount)
    )
    assert outcome == sk.Rejected(
        R.AMOUNT_TOO_LARGE, f"deposit.amount_minor: {amount} is above {VALUE_LIMIT - 1}"
    )


def test_describe_event_is_bounded_and_needs_no_integer_conversion():
    """Describes unset slots and huge integers field by field, the same under any limit."""
    described = describe_event(
        sk.Deposit(principal="a", account="a", asset="USDC", amount_minor=HUGE)
    )
    assert described == (
        "Deposit(principal='a', account='a', asset='USDC', "
        f"amount_minor=<an int of {HUGE.bit_length()} bits>)"
    )
    assert describe_event(_unset(sk.Withdraw)).startswith("Withdraw(principal=<unset>,")
    assert describe_event([HUGE]) == "<not an event: list>"


def test_a_journal_records_hostile_objects_and_stays_consistent():
    """Records every hostile object as a rejection; the state and its invariants are intact."""
    journal = sk.Journal(GENESIS)
    hostile = [
        _unset(sk.Trade),
        _unset(sk.Deposit, "asset"),
        sk.Deposit(principal="a", account="a", asset="USDC", amount_minor=HUGE),
        HUGE,
        None,
    ]
    for event in hostile:
        assert isinstance(journal.submit(event), sk.Rejected)
    assert len(journal.rejections) == len(hostile)
    assert sk.state_root(journal.state) == sk.state_root(GENESIS)
    assert check_invariants(journal.state) == []
