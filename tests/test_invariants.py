"""Every invariant predicate can fail: each catches a corruption planted in a sound state."""

from __future__ import annotations

import attrs
import pytest
from immutables import Map

import settlekernel as sk
from scenario import OK, USDC, mark, market, price, run_table, trade, withdraw
from settlekernel.core.model import Commitment, Position
from settlekernel.core.oracle import Validity
from settlekernel.core.root import touch
from settlekernel.core.units import CLEARING_ACCOUNT, FEE_ACCOUNT
from settlekernel.kernel.transitions import expiry, funding, trading, waterfall

I = sk.InvariantId  # noqa: E741 (a short alias keeps the table readable)


@pytest.fixture(scope="module")
def sound() -> sk.State:
    """A state with trades, fees, an option and a mark: every invariant holds."""
    state = market(
        [
            (trade("t1", "alice", "bob", 1_000, 9_000_000, buyer_fee_ppm=333), OK),
            (trade("t2", "bob", "alice", 10, 100_000, instrument="BTC-C-100K"), OK),
            (price("BTC", 9_100_000, 2_000), OK),
            (mark("BTC-PERP"), OK),
        ]
    )
    assert sk.check_invariants(state) == []
    return state


def with_account(state: sk.State, account: sk.Account) -> sk.State:
    return attrs.evolve(
        state,
        accounts=state.accounts.set(account.id, account),
        commitment=touch(state.commitment, "a:" + account.id),
    )


def set_balance(state: sk.State, account_id: str, asset: str, amount: int) -> sk.State:
    account = state.accounts[account_id]
    return with_account(state, attrs.evolve(account, balances=account.balances.set(asset, amount)))


def set_position(state: sk.State, account_id: str, instrument: str, qty: int, ref: int) -> sk.State:
    account = state.accounts[account_id]
    positions = account.positions.set(instrument, Position(qty, ref))
    return with_account(state, attrs.evolve(account, positions=positions))


CORRUPTIONS = {
    "INV-CONSERVATION: balance created from nothing": (
        lambda s: set_balance(s, "alice", "USDC", s.accounts["alice"].balance("USDC") + 1),
        I.CONSERVATION,
    ),
    "INV-CONSERVATION: clearing account keeps money": (
        lambda s: attrs.evolve(
            set_balance(s, CLEARING_ACCOUNT, "USDC", 5),
            custody=s.custody.set("USDC", s.custody["USDC"] + 5),
        ),
        I.CONSERVATION,
    ),
    "INV-NONNEGATIVE-BALANCES: negative balance": (
        lambda s: attrs.evolve(
            set_balance(
                set_balance(s, "alice", "USDC", -1),
                "bob",
                "USDC",
                s.accounts["bob"].balance("USDC") + s.accounts["alice"].balance("USDC") + 1,
            )
        ),
        I.NONNEGATIVE_BALANCES,
    ),
    "INV-CANONICAL-FORM: zero balance stored": (
        lambda s: set_balance(s, "alice", "ETH", 0),
        I.CANONICAL_FORM,
    ),
    "INV-OPEN-INTEREST-ZERO-SUM: position without counterparty": (
        lambda s: set_position(s, "alice", "BTC-PERP", 1_001, 9_100_000),
        I.OPEN_INTEREST_ZERO_SUM,
    ),
    "INV-OPEN-INTEREST-ZERO-SUM: stale open interest index": (
        lambda s: attrs.evolve(s, open_interest=s.open_interest.set("BTC-PERP", 7)),
        I.OPEN_INTEREST_ZERO_SUM,
    ),
    "INV-OPEN-INTEREST-ZERO-SUM: stale holder index": (
        lambda s: attrs.evolve(s, holders=s.holders.set("BTC-PERP", Map({"alice": None}))),
        I.OPEN_INTEREST_ZERO_SUM,
    ),
    "INV-UNIFORM-REFERENCE: position at a stale reference": (
        lambda s: set_position(
            set_position(s, "alice", "BTC-PERP", 1_000, 9_000_000),
            "bob",
            "BTC-PERP",
            -1_000,
            9_000_000,
        ),
        I.UNIFORM_REFERENCE,
    ),
    "INV-NO-DOUBLE-SETTLEMENT: trade recorded under another id": (
        lambda s: attrs.evolve(s, trades=s.trades.set("t9", s.trades["t1"])),
        I.NO_DOUBLE_SETTLEMENT,
    ),
    "INV-ROUNDING-RESIDUE: system account trading": (
        lambda s: set_position(
            set_position(s, FEE_ACCOUNT, "ETH-PERP", 1, 300_000), "alice", "ETH-PERP", -1, 300_000
        ),
        I.ROUNDING_RESIDUE,
    ),
    "INV-MARGIN-ORDER: a cached initial below maintenance": (
        lambda s: attrs.evolve(s, margins=_weaken_initial(s.margins)),
        I.MARGIN_ORDER,
    ),
    "INV-ROOT-CONSISTENT: leaf changed without being marked dirty": (
        lambda s: attrs.evolve(
            sk.fold(s),
            accounts=s.accounts.set("alice", attrs.evolve(s.accounts["alice"], owner="eve")),
        ),
        I.ROOT_CONSISTENT,
    ),
    "INV-ROOT-CONSISTENT: lattice tampered": (
        lambda s: attrs.evolve(
            s,
            commitment=Commitment(
                (s.commitment.lattice + 1), s.commitment.leaves, s.commitment.dirty
            ),
        ),
        I.ROOT_CONSISTENT,
    ),
}


def _weaken_initial(margins):
    """Return the cache with one report asking less initially than it maintains."""
    account_id, entry = next((k, e) for k, e in margins.items() if e.report.maintenance_minor > 0)
    report = attrs.evolve(entry.report, initial_minor=entry.report.maintenance_minor - 1)
    return margins.set(account_id, attrs.evolve(entry, report=report))


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_predicate_catches_corruption(sound, name):
    """Reports the planted corruption under the invariant that forbids it."""
    corrupt, invariant = CORRUPTIONS[name]
    found = {violation.invariant for violation in sk.check_invariants(corrupt(sound))}
    assert invariant in found, (name, found)


def test_step_checks_catch_forged_outcomes(sound):
    """Reports INV-POSTINGS-BALANCED and INV-MARGIN-AFTER-ACCEPT breaches in forged outcomes."""
    event = sk.Withdraw(principal="alice", account="alice", asset="USDC", amount_minor=USDC)
    honest = sk.step(sound, event)
    assert isinstance(honest, sk.Accepted)
    assert sk.check_step(sound, event, honest) == []
    no_postings = sk.Accepted(honest.state, ())
    assert {v.invariant for v in sk.check_step(sound, event, no_postings)} == {I.POSTINGS_BALANCED}
    everything = sk.Withdraw(
        principal="alice",
        account="alice",
        asset="USDC",
        amount_minor=sound.accounts["alice"].balance("USDC"),
    )
    drained = set_balance(sound, "alice", "USDC", 0)
    drained = attrs.evolve(
        drained,
        custody=drained.custody.set("USDC", sound.custody["USDC"] - everything.amount_minor),
    )
    forged = sk.Accepted(
        drained,
        (
            sk.Posting(
                "alice", "@external", "USDC", everything.amount_minor, sk.PostingCode.WITHDRAW
            ),
        ),
    )
    assert I.MARGIN_AFTER_ACCEPT in {v.invariant for v in sk.check_step(sound, everything, forged)}


def test_check_step_catches_double_settlement_and_dust(sound):
    """Reports INV-NO-DOUBLE-SETTLEMENT and INV-ROUNDING-RESIDUE breaches in forged outcomes."""
    replay = sound.trades["t1"]
    forged = sk.Accepted(sound, ())
    assert I.NO_DOUBLE_SETTLEMENT in {v.invariant for v in sk.check_step(sound, replay, forged)}
    dust = sk.Accepted(
        sound, (sk.Posting("alice", "@residue", "USDC", 2, sk.PostingCode.ROUNDING),)
    )
    event = sk.OpenAccount(principal="x", account="x")
    assert I.ROUNDING_RESIDUE in {v.invariant for v in sk.check_step(sound, event, dust)}


def test_check_step_catches_a_price_no_fresh_majority_backs(sound, monkeypatch):
    """Reports INV-PRICE-FRESH when a planted oracle ignores the sequencer's clock."""
    # The sequencer's clock moves 61 s past every report: BTC goes stale.
    tick = sk.Tick(principal="sequencer", timestamp_ms=sound.clock_ms + 61_000)
    stale = run_table([(tick, OK), (withdraw("alice", USDC), "oracle_not_admissible")], sound)
    # Plant the bug: the oracle calls every underlying valid, whatever the time.
    monkeypatch.setattr("settlekernel.core.oracle.validity", lambda *_: Validity.VALID)
    event = withdraw("alice", USDC)
    planted = sk.step(stale, event)
    assert isinstance(planted, sk.Accepted)
    assert I.PRICE_FRESH in {v.invariant for v in sk.check_step(stale, event, planted)}


def test_check_step_catches_a_settlement_price_outside_its_window(monkeypatch):
    """Reports INV-SETTLEMENT-IN-RANGE for a planted TWAP that overshoots the window."""
    state = run_table([(price("BTC", 9_400_000, 5_000), OK)], market())
    monkeypatch.setattr(
        "settlekernel.kernel.transitions.market.settlement_twap", lambda *_: 9_400_001
    )
    event = price("BTC", 9_400_000, 10_000)
    for report in event[:-1]:
        state = run_table([(report, OK)], state)
    planted = sk.step(state, event[-1])
    assert isinstance(planted, sk.Accepted)
    assert planted.state.settlement_prices["BTC@10000"] == 9_400_001
    found = {v.invariant for v in sk.check_step(state, event[-1], planted)}
    assert I.SETTLEMENT_IN_RANGE in found


def test_check_step_catches_a_wash_print_that_moves_the_mark(monkeypatch):
    """Reports INV-MARK-ROBUST when a planted trade lets one owner's print set a premium."""
    state = run_table([(sk.OpenAccount(principal="alice", account="alice-2"), OK)], market())
    state = run_table(
        [
            (
                sk.Deposit(
                    principal="alice", account="alice-2", asset="USDC", amount_minor=USDC * 10**4
                ),
                OK,
            )
        ],
        state,
    )
    real = trading.instruments_after
    monkeypatch.setattr(
        trading,
        "instruments_after",
        lambda *args, **kwargs: real(*args, **{**kwargs, "wash": False}),
    )
    event = trade("w1", "alice", "alice-2", 1, 9_450_000)
    planted = sk.step(state, event)
    assert isinstance(planted, sk.Accepted)
    assert I.MARK_ROBUST in {v.invariant for v in sk.check_step(state, event, planted)}


def test_check_step_catches_a_funding_charge_beyond_the_clamp(monkeypatch):
    """Reports INV-FUNDING-BOUNDED for a planted charge that ignores the clamp."""
    state = market([(trade("f1", "alice", "bob", 1_000, 9_090_000), OK)])
    state = run_table(
        [(price("BTC", 9_000_000, 3_600_000), OK), (price("ETH", 300_000, 3_600_000), OK)], state
    )
    real = funding.compute_funding_charge
    monkeypatch.setattr(
        funding,
        "compute_funding_charge",
        lambda index, premium, clamp, *rest: real(index, premium, 10**6, *rest),
    )
    event = sk.Funding(principal="operator", instrument="BTC-PERP")
    planted = sk.step(state, event)
    assert isinstance(planted, sk.Accepted)
    assert I.FUNDING_BOUNDED in {v.invariant for v in sk.check_step(state, event, planted)}


def test_check_step_catches_collateral_sold_at_the_haircut(monkeypatch):
    """Reports INV-LIQUIDATOR-GAIN for a planted sale at the haircut, not the discount."""
    state = market(
        [
            (sk.OpenAccount(principal="thin", account="thin"), OK),
            (
                sk.Deposit(principal="thin", account="thin", asset="USDC", amount_minor=100 * USDC),
                OK,
            ),
            (sk.Deposit(principal="thin", account="thin", asset="BTC", amount_minor=10**7), OK),
            (sk.OpenAccount(principal="keeper", account="keeper"), OK),
            (
                sk.Deposit(
                    principal="keeper", account="keeper", asset="USDC", amount_minor=10**5 * USDC
                ),
                OK,
            ),
            (trade("t1", "thin", "alice", 500, 9_000_000), OK),
        ]
    )
    for number, ticks in enumerate((8_600_000, 8_200_000, 7_800_000, 7_500_000)):
        state = run_table([(price("BTC", ticks, 2_000 + number * 100), OK)], state)
    monkeypatch.setattr(
        waterfall,
        "_cut_ppm",
        lambda state, asset, *, sale: state.rules.asset_by_symbol[asset].haircut_ppm,
    )
    event = sk.Liquidate(principal="keeper", account="thin", liquidator="keeper")
    planted = sk.step(state, event)
    assert isinstance(planted, sk.Accepted)
    assert I.LIQUIDATOR_GAIN in {v.invariant for v in sk.check_step(state, event, planted)}


def _solvent_short_expiry():
    """carol (1 BTC, no USDC) is short the future to dave; BTC rallies; it has expired."""
    state = market(
        [
            (sk.OpenAccount(principal="carol", account="carol"), OK),
            (sk.Deposit(principal="carol", account="carol", asset="BTC", amount_minor=10**8), OK),
            (trade("c1", "alice", "carol", 10, 9_000_000, instrument="BTC-FUT"), OK),
            (price("BTC", 9_400_000, 5_000), OK),
        ]
    )
    return run_table([(price("BTC", 9_400_000, 10_000), OK)], state)


def test_check_step_catches_a_solvent_payer_socialised(monkeypatch):
    """Reports INV-SOCIALISE-ONLY-DEFICIT for a planted expiry that socialises carol's debt."""
    state = _solvent_short_expiry()
    monkeypatch.setattr(expiry, "true_deficit_minor", lambda state, account, i, owed: owed)
    event = sk.Expire(principal="operator", instrument="BTC-FUT")
    planted = sk.step(state, event)
    assert isinstance(planted, sk.Accepted)
    assert planted.state.socialized_loss["USDC"] > 0
    found = {v.invariant for v in sk.check_step(state, event, planted)}
    assert I.SOCIALISE_ONLY_DEFICIT in found


def test_check_invariants_catches_claims_the_fund_cannot_back():
    """Reports INV-DEBT-BACKED for a forged claim with no cash or debt behind it."""
    state = run_table(
        [(sk.Expire(principal="operator", instrument="BTC-FUT"), OK)], (_solvent_short_expiry())
    )
    assert sk.check_invariants(state) == []
    assert state.accounts["carol"].debt_minor > 0
    forged = attrs.evolve(
        state,
        accounts=state.accounts.set("carol", attrs.evolve(state.accounts["carol"], debt_minor=0)),
        debtors=state.debtors.delete("carol"),
    )
    assert I.DEBT_BACKED in {v.invariant for v in sk.check_invariants(forged)}


def test_check_step_catches_an_inadmissible_price(sound, monkeypatch):
    """Reports INV-ORACLE-ADMISSIBLE for a mark on a stale index and an index jump."""
    # ETH moves the clock on by 61 s past BTC's last reports: they go stale.
    stale = run_table(
        [(price("ETH", 300_000, 63_000), OK), (mark("BTC-PERP"), "oracle_not_admissible")], sound
    )
    # Plant the bug: variation margin forgets its oracle guard.
    monkeypatch.setattr(
        "settlekernel.kernel.transitions.variation.check_admissible", lambda *_: None
    )
    event = mark("BTC-PERP")
    planted = sk.step(stale, event)
    assert isinstance(planted, sk.Accepted)
    assert I.ORACLE_ADMISSIBLE in {v.invariant for v in sk.check_step(stale, event, planted)}
    # A forged 20 % index jump in one update.
    jumped = attrs.evolve(
        sound,
        prices=sound.prices.set("BTC", sk.IndexPrice(10_920_000, 3_000)),
    )
    report = sk.OraclePrice(
        principal="oracle-a", underlying="BTC", price_ticks=10_920_000, timestamp_ms=3_000
    )
    found = {v.invariant for v in sk.check_step(sound, report, sk.Accepted(jumped, ()))}
    assert I.ORACLE_ADMISSIBLE in found


def _expired_market():
    """A BTC-FUT book past expiry with its settlement price fixed, before Expire."""
    return market(
        [
            (trade("t1", "alice", "bob", 100, 9_000_000, instrument="BTC-FUT"), OK),
            (price("BTC", 9_200_000, 4_000), OK),
            (price("BTC", 9_200_000, 11_000), OK),
        ]
    )


def test_expiry_checks_catch_a_holder_paid_twice_or_left_open():
    """Reports INV-EXPIRY-FINAL for a forged double payment and for a position left open."""
    state = _expired_market()
    event = sk.Expire(principal="operator", instrument="BTC-FUT")
    honest = sk.step(state, event)
    assert isinstance(honest, sk.Accepted)
    assert sk.check_step(state, event, honest) == []
    # Pay alice her due twice over: the money comes from the insurance account.
    due = next(p for p in honest.postings if p.credit_account == "alice")
    forged_state = set_balance(
        honest.state,
        "alice",
        "USDC",
        honest.state.accounts["alice"].balance("USDC") + due.amount_minor,
    )
    forged = sk.Accepted(forged_state, (*honest.postings, due))
    assert I.EXPIRY_FINAL in {v.invariant for v in sk.check_step(state, event, forged)}
    # A settled instrument that still has open interest.
    left_open = attrs.evolve(
        honest.state, open_interest=honest.state.open_interest.set("BTC-FUT", 5)
    )
    assert I.EXPIRY_FINAL in {v.invariant for v in sk.check_invariants(left_open)}
    # A pending expiry that was forgotten.
    fresh = market()
    assert fresh.pending_expiries["BTC"] == (10_000,)
    forgotten = attrs.evolve(fresh, pending_expiries=fresh.pending_expiries.delete("BTC"))
    assert I.EXPIRY_FINAL in {v.invariant for v in sk.check_invariants(forgotten)}


def test_insurance_checks_catch_a_fund_that_pays_idly():
    """Reports INV-INSURANCE-NONNEGATIVE when the fund pays where nobody fell short."""
    funded = sk.FundInsurance(principal="operator", asset="USDC", amount_minor=10 * USDC)
    state = run_table([(funded, OK)], _expired_market())
    event = sk.Expire(principal="operator", instrument="BTC-FUT")
    honest = sk.step(state, event)
    assert isinstance(honest, sk.Accepted)
    assert sk.check_step(state, event, honest) == []
    # Forge: the fund pays alice 1 USDC as if bob had fallen short; bob had the cash.
    gift = sk.Posting("@insurance", "alice", "USDC", USDC, sk.PostingCode.INSURANCE)
    forged_state = set_balance(
        set_balance(honest.state, "@insurance", "USDC", 9 * USDC),
        "alice",
        "USDC",
        honest.state.accounts["alice"].balance("USDC") + USDC,
    )
    forged = sk.Accepted(forged_state, (*honest.postings, gift))
    assert I.INSURANCE_NONNEGATIVE in {v.invariant for v in sk.check_step(state, event, forged)}


def _crashed_book():
    """thin long 1 BTC against carol and alice; BTC falls 16.7 %: thin is bankrupt."""
    return market(
        [
            (sk.OpenAccount(principal="thin", account="thin"), OK),
            (
                sk.Deposit(
                    principal="thin", account="thin", asset="USDC", amount_minor=10_000 * USDC
                ),
                OK,
            ),
            (sk.OpenAccount(principal="carol", account="carol"), OK),
            (
                sk.Deposit(
                    principal="carol", account="carol", asset="USDC", amount_minor=10_000 * USDC
                ),
                OK,
            ),
            (trade("t1", "thin", "carol", 500, 9_000_000), OK),
            (trade("t2", "thin", "alice", 500, 9_000_000), OK),
            # bob is long too, against alice: the short side holds more than thin's lots.
            (trade("t3", "bob", "alice", 300, 9_000_000), OK),
            *[(price("BTC", 7_500_000, 2_000 + 100 * i), OK) for i in range(6)],
        ]
    )


def test_liquidation_checks_catch_a_missing_guard_and_a_worse_ratio(monkeypatch):
    """Reports INV-LIQUIDATE-ONLY-BELOW-MM and INV-LIQUIDATION-NO-WORSE on planted bugs."""
    state = market([(trade("t1", "alice", "bob", 100, 9_000_000), OK)])
    event = sk.Liquidate(principal="bob", account="alice", liquidator="bob")
    assert sk.step(state, event).reason is sk.Reason.NOT_LIQUIDATABLE
    # Plant the bug: the liquidation guard believes every account is below maintenance.
    monkeypatch.setattr(
        "settlekernel.kernel.transitions.liquidation.account_margin",
        lambda s, a: (
            attrs.evolve(sk.margin_report(s, a.id), equity_minor=-1)
            if a.id == "alice"
            else sk.margin_report(s, a.id)
        ),
    )
    planted = sk.step(state, event)
    assert isinstance(planted, sk.Accepted)
    found = {v.invariant for v in sk.check_step(state, event, planted)}
    assert I.LIQUIDATE_ONLY_BELOW_MM in found
    monkeypatch.undo()
    # A forged partial liquidation that leaves thin worse off: the liquidator took half
    # and thin paid a penalty that sinks its ratio.
    crashed = _crashed_book()
    event = sk.Liquidate(principal="bob", account="thin", liquidator="bob")
    honest = sk.step(crashed, event)
    assert isinstance(honest, sk.Accepted)
    assert sk.check_step(crashed, event, honest) == []
    half = set_position(crashed, "thin", "BTC-PERP", 500, 9_000_000)
    worse = sk.Accepted(half, ())
    assert I.LIQUIDATION_NO_WORSE in {v.invariant for v in sk.check_step(crashed, event, worse)}


def test_adl_check_catches_the_wrong_order(monkeypatch):
    """Reports INV-ADL-FAIRNESS when deleveraging takes the least levered winner first."""
    crashed = _crashed_book()
    event = sk.Liquidate(principal="bob", account="thin", liquidator="bob")
    honest = sk.step(crashed, event)
    assert isinstance(honest, sk.Accepted)
    assert any(p.code is sk.PostingCode.ADL for p in honest.postings)
    assert sk.check_step(crashed, event, honest) == []
    from settlekernel.kernel.transitions import liquidation  # noqa: PLC0415 (the module under a plant)

    original = liquidation.ranking
    monkeypatch.setattr(liquidation, "ranking", lambda *args: list(reversed(original(*args))))
    planted = sk.step(crashed, event)
    assert isinstance(planted, sk.Accepted)
    found = {v.invariant for v in sk.check_step(crashed, event, planted)}
    assert I.ADL_FAIRNESS in found
