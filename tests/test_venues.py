"""Venues (SK-VENUE): admission by the governor, owners' grants, per-venue limits and fees.

Each test is an attack on shared clearing: a venue booking trades on an account whose
owner never chose it, a revoked venue growing a position, a suspended venue trading on, a
venue past its limits, a venue charging above its ceiling, an outsider admitting a venue.
"""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

import settlekernel as sk
from scenario import (
    OK,
    USDC,
    apply_checked,
    balances,
    deposit,
    market,
    open_account,
    position,
    run_table,
)
from scenario import trade as house_trade
from settlekernel.commitments.snapshot import decode_state, encode_state
from settlekernel.core.root import recompute_root, state_root
from settlekernel.kernel.transitions import trading

ADMIT = sk.AdmitVenue(
    principal="governor",
    venue="dex",
    fee_account="dex-fees",
    open_interest_max_lots=500,
    notional_max_minor=40_000 * USDC,
    fee_rate_max_ppm=1_000,
)


def trade(trade_id: str, buyer: str, seller: str, lots: int, **kwargs: object) -> sk.Trade:
    """A BTC-PERP trade at 90,000.00 submitted by venue ``dex`` unless told otherwise."""
    kwargs.setdefault("principal", "dex")
    return house_trade(trade_id, buyer, seller, lots, 9_000_000, **kwargs)  # type: ignore[arg-type]


def grant(kind: type, account: str, venue: str = "dex", principal: str | None = None):
    return kind(principal=principal or account, account=account, venue=venue)


def admitted(extra=()) -> sk.State:
    """The market of scenario.py with venue ``dex`` admitted and its fee account open."""
    return market([(open_account("dex", "dex-fees"), OK), (ADMIT, OK), *extra])


def test_only_the_governor_admits_and_the_fee_account_must_be_the_venues():
    """An outsider, the operator or a venue cannot admit a venue; nor can the governor pay
    a new venue's fees into someone else's account or reuse a role's principal."""
    run_table(
        [
            (attrs.evolve(ADMIT, principal="operator"), "principal_not_governor"),
            (attrs.evolve(ADMIT, principal="dex"), "principal_not_governor"),
            (attrs.evolve(ADMIT, fee_account="alice"), "principal_not_owner"),
            (attrs.evolve(ADMIT, fee_account="nobody"), "account_unknown"),
            (attrs.evolve(ADMIT, venue="venue"), "venue_invalid"),
            (attrs.evolve(ADMIT, venue="operator"), "venue_invalid"),
            (attrs.evolve(ADMIT, fee_rate_max_ppm=10**9), "fee_rate_out_of_range"),
            (attrs.evolve(ADMIT, open_interest_max_lots=0), "amount_not_positive"),
            (open_account("dex", "dex-fees"), OK),
            (ADMIT, OK),
        ],
        market(),
    )


def test_an_admitted_venue_trades_only_on_accounts_that_authorised_it():
    """SK-VENUE-2: a new venue has no grant from anyone; both sides must authorise it."""
    state = run_table(
        [
            (trade("d1", "alice", "bob", 10), "venue_not_authorised"),
            (grant(sk.AuthorizeVenue, "alice"), OK),
            (trade("d1", "alice", "bob", 10), "venue_not_authorised"),
            (grant(sk.AuthorizeVenue, "bob", principal="alice"), "principal_not_owner"),
            (grant(sk.AuthorizeVenue, "bob"), OK),
            (trade("d1", "alice", "bob", 10), OK),
            (trade("d2", "alice", "carol", 10), "account_unknown"),
        ],
        admitted(),
    )
    assert position(state, "alice", "BTC-PERP") == (10, 9_000_000)


def test_a_restricted_venue_may_only_reduce_and_a_revoked_one_nothing():
    """RestrictVenue keeps the venue able to close what it opened, never to grow or flip it."""
    state = run_table(
        [
            (grant(sk.AuthorizeVenue, "alice"), OK),
            (grant(sk.AuthorizeVenue, "bob"), OK),
            (trade("d1", "alice", "bob", 10), OK),
            (grant(sk.RestrictVenue, "alice"), OK),
            (trade("d2", "alice", "bob", 1), "venue_not_authorised"),  # grows the long
            (trade("d3", "bob", "alice", 11), "venue_not_authorised"),  # flips it short
            (trade("d4", "bob", "alice", 4), OK),  # reduces 10 -> 6
            (grant(sk.RevokeVenue, "alice"), OK),
            (trade("d5", "bob", "alice", 1), "venue_not_authorised"),
            # The house venue still has alice's default grant: she can close elsewhere.
            (house_trade("h1", "bob", "alice", 6, 9_000_000), OK),
        ],
        admitted(),
    )
    assert position(state, "alice", "BTC-PERP") is None


def test_an_owner_can_revoke_even_a_house_venue():
    """House venues are granted by default, not by force."""
    run_table(
        [
            (grant(sk.RevokeVenue, "alice", venue="venue"), OK),
            (house_trade("h1", "alice", "bob", 1, 9_000_000), "venue_not_authorised"),
            (grant(sk.AuthorizeVenue, "alice", venue="venue"), OK),
            (house_trade("h1", "alice", "bob", 1, 9_000_000), OK),
        ],
        market(),
    )


def test_suspended_venues_submit_nothing_and_removed_ones_never_return():
    run_table(
        [
            (grant(sk.AuthorizeVenue, "alice"), OK),
            (grant(sk.AuthorizeVenue, "bob"), OK),
            (sk.SuspendVenue(principal="dex", venue="dex"), "principal_not_governor"),
            (sk.SuspendVenue(principal="governor", venue="dex"), OK),
            (trade("d1", "alice", "bob", 1), "venue_suspended"),
            (sk.ResumeVenue(principal="governor", venue="dex"), OK),
            (trade("d1", "alice", "bob", 1), OK),
            (sk.RemoveVenue(principal="governor", venue="dex"), OK),
            (trade("d2", "alice", "bob", 1), "venue_suspended"),
            (sk.ResumeVenue(principal="governor", venue="dex"), "venue_unknown"),
            (ADMIT, "venue_invalid"),
            (grant(sk.AuthorizeVenue, "alice"), "venue_unknown"),
            (sk.SuspendVenue(principal="governor", venue="venue"), OK),
            (house_trade("h1", "alice", "bob", 1, 9_000_000), "venue_suspended"),
        ],
        admitted(),
    )


def test_venue_limits_and_fee_ceiling():
    """SK-VENUE-3/4: the venue's own fee ceiling, open-interest cap and notional cap."""
    state = run_table(
        [
            (grant(sk.AuthorizeVenue, "alice"), OK),
            (grant(sk.AuthorizeVenue, "bob"), OK),
            # 1,001 ppm is within the rules' ceiling but above this venue's.
            (trade("d1", "alice", "bob", 1, buyer_fee_ppm=1_001), "fee_rate_out_of_range"),
            # 450 lots x 90,000.00 x 0.001 BTC = 40,500 USDC of notional, above 40,000.
            (trade("d1", "alice", "bob", 450), "venue_limit_exceeded"),
            (trade("d1", "alice", "bob", 400), OK),
            (house_trade("h1", "alice", "bob", 200, 9_000_000), OK),  # not this venue's
            (open_account("carol"), OK),
            (deposit("carol", 10**6 * USDC), OK),
            (grant(sk.AuthorizeVenue, "carol"), OK),
            (open_account("erin"), OK),
            (deposit("erin", 10**6 * USDC), OK),
            (grant(sk.AuthorizeVenue, "erin"), OK),
            # bob is short 600 lots, 54,000 USDC: dex may not make him shorter.
            (trade("d2", "carol", "bob", 1), "venue_limit_exceeded"),
            # 400 + 101 > 500 lots of open interest added through dex.
            (trade("d2", "carol", "erin", 101), "venue_limit_exceeded"),
            (trade("d2", "carol", "erin", 100), OK),
            # A reduction always passes, and frees room.
            (trade("d3", "bob", "alice", 50), OK),
            (trade("d4", "carol", "erin", 50), OK),
            (trade("d5", "carol", "erin", 1), "venue_limit_exceeded"),
        ],
        admitted(),
    )
    assert state.venues["dex"].open_lots["BTC-PERP"] == 500


def test_fees_of_an_admitted_venue_go_to_its_own_account():
    state = run_table(
        [
            (grant(sk.AuthorizeVenue, "alice"), OK),
            (grant(sk.AuthorizeVenue, "bob"), OK),
            (trade("d1", "alice", "bob", 10, buyer_fee_ppm=1_000, seller_fee_ppm=500), OK),
        ],
        admitted(),
    )
    # Notional 10 x 9,000,000 x 10 = 900,000,000 minor: 900,000 and 450,000 in fees.
    assert balances(state, "dex-fees") == {"USDC": 1_350_000}
    assert balances(state, "@fees") == {}


def test_cross_venue_netting_one_position_one_margin():
    """An account long on one venue and short on another holds one (flat) position."""
    state = run_table(
        [
            (grant(sk.AuthorizeVenue, "alice"), OK),
            (grant(sk.AuthorizeVenue, "bob"), OK),
            (trade("d1", "alice", "bob", 100), OK),
            (house_trade("h1", "bob", "alice", 100, 9_000_000), OK),
        ],
        admitted(),
    )
    assert position(state, "alice", "BTC-PERP") is None
    assert sk.margin_report(state, "alice").initial_minor == 0


def test_venues_and_grants_are_committed_by_the_root():
    """A grant or a suspension changes the root; a from-scratch root agrees with the fold."""
    state = admitted()
    after_grant = apply_checked(state, grant(sk.AuthorizeVenue, "alice")).state
    after_suspend = apply_checked(state, sk.SuspendVenue(principal="governor", venue="dex")).state
    roots = {state_root(s) for s in (state, after_grant, after_suspend)}
    assert len(roots) == 3
    for s in (state, after_grant, after_suspend):
        assert recompute_root(s) == state_root(s)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["authorize", "restrict", "revoke", "trade"]),
            st.sampled_from(["alice", "bob"]),
            st.integers(-30, 30).filter(bool),
        ),
        max_size=25,
    )
)
def test_no_trade_is_ever_accepted_without_the_grant_it_needs(actions):
    """INV-VENUE-AUTHORISED over random grant and trade sequences (checked by apply_checked)."""
    state = admitted()
    kinds = {"authorize": sk.AuthorizeVenue, "restrict": sk.RestrictVenue, "revoke": sk.RevokeVenue}
    for number, (action, who, lots) in enumerate(actions):
        if action == "trade":
            buyer, seller = ("alice", "bob") if lots > 0 else ("bob", "alice")
            event: object = trade(f"x{number}", buyer, seller, abs(lots))
        else:
            event = grant(kinds[action], who)
        outcome = apply_checked(state, event)
        if isinstance(outcome, sk.Accepted):
            state = outcome.state


def test_the_invariant_catches_a_trade_without_a_grant(monkeypatch):
    """Planted fault: a kernel that skips the grant check is caught by INV-VENUE-AUTHORISED."""
    monkeypatch.setattr(trading, "check_venue_grants", lambda *args: None)
    state = admitted()
    event = trade("d1", "alice", "bob", 10)
    outcome = sk.step(state, event)
    assert isinstance(outcome, sk.Accepted)
    found = sk.check_step(state, event, outcome)
    assert [v.invariant for v in found] == [sk.InvariantId.VENUE_AUTHORISED] * 2


def test_snapshots_keep_venues_and_grants():
    state = admitted([(grant(sk.RestrictVenue, "alice"), OK)])
    decoded = decode_state(encode_state(state), state.rules)
    assert decoded.venues == state.venues
    assert decoded.grants == state.grants
    assert state_root(decoded) == state_root(state)
