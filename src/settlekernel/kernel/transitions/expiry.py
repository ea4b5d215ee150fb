"""Expiry settlement: every holder of a future or option at once (spec/30-transitions.md#expire).

At expiry every position is closed at the settlement price the oracle fixed from its history
(SK-EXPIRY-2): a future pays ``q * (S - reference) * m``, an option its intrinsic value
``q * intrinsic(S) * m`` (its reference is 0). Positions sum to zero and share one reference,
so what the payers owe is exactly what the receivers are due.

A payer that cannot pay in the valuation asset leaves a shortfall, which the loss waterfall
absorbs in order (SK-EXPIRY-3):

1. the insurance fund pays it, as far as the fund's valuation-asset balance goes, and takes
   the payer's other collateral worth up to what it paid, at haircut value;
2. what the fund cannot pay is socialised: each receiver's payment is cut in proportion to
   what it is due (rounded up, the excess to the residue), and the total is recorded in
   ``socialized_loss``; the payer's remaining collateral, worth up to that loss at haircut
   value, is shared among the receivers in kind, in the same proportions.
"""

from __future__ import annotations

from collections import defaultdict

import attrs

from settlekernel.core.arith import compute_intrinsic_ticks, compute_settlement_minor
from settlekernel.core.events import Expire
from settlekernel.core.kinds import OptionType
from settlekernel.core.model import Account, Instrument, State, replace_state
from settlekernel.core.oracle import Action, check_admissible, settlement_key
from settlekernel.core.outcomes import Accepted, Outcome, PostingCode, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import instrument_key, touch
from settlekernel.core.units import CLEARING_ACCOUNT, INSURANCE_ACCOUNT, RESIDUE_ACCOUNT
from settlekernel.kernel.ledger import with_balance
from settlekernel.kernel.transitions.waterfall import (
    Books,
    Lot,
    apply_books,
    new_books,
    post,
    pro_rata_ceil,
    pro_rata_floor,
    seizable,
)


def expiry_flow_minor(instrument: Instrument, quantity_lots: int, settlement_ticks: int) -> int:
    """Return what a holder receives at expiry (negative: pays), SK-EXPIRY-1."""
    if instrument.is_linear:
        return compute_settlement_minor(
            quantity_lots, settlement_ticks, instrument.reference_ticks, instrument.multiplier_minor
        )
    assert instrument.strike_ticks is not None
    intrinsic = compute_intrinsic_ticks(
        is_call=instrument.option_type is OptionType.CALL,
        index_ticks=settlement_ticks,
        strike_ticks=instrument.strike_ticks,
    )
    return compute_settlement_minor(quantity_lots, intrinsic, 0, instrument.multiplier_minor)


def process_expire(state: State, event: Expire) -> Outcome:
    """Settle every position of an expired future or option at its settlement price."""
    rules = state.rules
    # Verify the principal is the operator.
    if event.principal != rules.roles.operator:
        return Rejected(
            Reason.PRINCIPAL_NOT_OPERATOR,
            f"principal {event.principal} is not the operator {rules.roles.operator}",
        )
    # Verify the instrument exists, is not settled yet, and has expired.
    instrument = state.instruments.get(event.instrument)
    if instrument is None:
        return Rejected(Reason.INSTRUMENT_UNKNOWN, f"instrument {event.instrument} is not listed")
    if instrument.settlement_ticks is not None:
        return Rejected(
            Reason.INSTRUMENT_ALREADY_SETTLED,
            f"instrument {instrument.id} settled at {instrument.settlement_ticks}",
        )
    if instrument.expiry_ms is None or state.clock_ms < instrument.expiry_ms:
        return Rejected(
            Reason.INSTRUMENT_NOT_EXPIRED,
            f"instrument {instrument.id} expires at {instrument.expiry_ms}, "
            f"the clock is {state.clock_ms}",
        )
    # Verify the settlement price is fixed and the oracle admits settlement (SK-ORACLE-5).
    settlement_ticks = state.settlement_prices.get(
        settlement_key(instrument.underlying, instrument.expiry_ms)
    )
    if settlement_ticks is None:
        return Rejected(
            Reason.SETTLEMENT_PRICE_UNAVAILABLE,
            f"no {instrument.underlying} index at or after {instrument.expiry_ms} has been "
            "accepted yet: the settlement price is not fixed",
        )
    rejection = check_admissible(state, (instrument.underlying,), Action.SETTLEMENT)
    if rejection is not None:
        return rejection
    # From here the event must succeed.
    return _settle(state, instrument, settlement_ticks)


def _settle(state: State, instrument: Instrument, settlement_ticks: int) -> Accepted:
    holders = sorted(state.holders[instrument.id])
    flows = {
        holder: expiry_flow_minor(
            instrument,
            state.accounts[holder].positions[instrument.id].quantity_lots,
            settlement_ticks,
        )
        for holder in holders
    }
    books = new_books()
    for holder in holders:
        books.moves[holder, instrument.id] -= (
            state.accounts[holder].positions[instrument.id].quantity_lots
        )
    uncovered, recovered = _collect(state, instrument.settlement_asset, flows, books)
    receivers = [holder for holder in holders if flows[holder] > 0]
    _pay(instrument.settlement_asset, receivers, flows, uncovered, recovered, books)
    return Accepted(
        _commit(state, instrument, settlement_ticks, books, uncovered), tuple(books.postings)
    )


def _collect(
    state: State, asset: str, flows: dict[str, int], books: Books
) -> tuple[int, list[Lot]]:
    """Collect from the payers in account order (SK-EXPIRY-3).

    Return the loss nobody could pay and the collateral taken for the receivers.
    """
    fund_cash = state.accounts[INSURANCE_ACCOUNT].balance(asset)
    uncovered = 0
    recovered: list[Lot] = []
    for holder, flow in flows.items():
        if flow >= 0:
            continue
        account = state.accounts[holder]
        paid = min(-flow, account.balance(asset))
        post(books, holder, CLEARING_ACCOUNT, (asset, paid), PostingCode.EXPIRY_SETTLEMENT)
        shortfall = -flow - paid
        if shortfall == 0:
            continue
        cover = min(shortfall, fund_cash)
        fund_cash -= cover
        post(books, INSURANCE_ACCOUNT, CLEARING_ACCOUNT, (asset, cover), PostingCode.INSURANCE)
        to_fund = seizable(state, account, cover)
        for lot in to_fund:
            post(books, holder, INSURANCE_ACCOUNT, lot[:2], PostingCode.COLLATERAL_SEIZURE)
        rest = _after_lots(account, to_fund)
        for lot in seizable(state, rest, shortfall - cover):
            post(books, holder, CLEARING_ACCOUNT, lot[:2], PostingCode.COLLATERAL_SEIZURE)
            recovered.append(lot)
        uncovered += shortfall - cover
    return uncovered, recovered


def _after_lots(account: Account, lots: list[Lot]) -> Account:
    """Return ``account`` without the collateral in ``lots`` (to take more from what is left)."""
    for lot in lots:
        account = with_balance(account, lot.asset, account.balance(lot.asset) - lot.units_minor)
    return account


def _pay(  # noqa: PLR0913, PLR0917 (the receivers' side of one settlement)
    asset: str,
    receivers: list[str],
    flows: dict[str, int],
    uncovered: int,
    recovered: list[Lot],
    books: Books,
) -> None:
    """Pay the receivers, less their share of the uncovered loss (SK-EXPIRY-3).

    Shares are in proportion to what each is due; the recovered collateral is shared among
    them in the same proportions.
    """
    dues = [flows[receiver] for receiver in receivers]
    cuts = pro_rata_ceil(uncovered, dues)
    for receiver, due, cut in zip(receivers, dues, cuts, strict=True):
        post(books, CLEARING_ACCOUNT, receiver, (asset, due - cut), PostingCode.EXPIRY_SETTLEMENT)
    post(
        books,
        CLEARING_ACCOUNT,
        RESIDUE_ACCOUNT,
        (asset, sum(cuts) - uncovered),
        PostingCode.ROUNDING,
    )
    pooled: defaultdict[str, int] = defaultdict(int)
    for lot in recovered:
        pooled[lot.asset] += lot.units_minor
    for collateral, units in sorted(pooled.items()):
        shares = pro_rata_floor(units, dues)
        for receiver, share in zip(receivers, shares, strict=True):
            post(
                books,
                CLEARING_ACCOUNT,
                receiver,
                (collateral, share),
                PostingCode.COLLATERAL_RECOVERY,
            )
        remainder = (collateral, units - sum(shares))
        post(books, CLEARING_ACCOUNT, RESIDUE_ACCOUNT, remainder, PostingCode.ROUNDING)


def _commit(
    state: State, instrument: Instrument, settlement_ticks: int, books: Books, uncovered: int
) -> State:
    """Apply the books (every position closes), and mark the instrument settled."""
    state = apply_books(state, books)
    asset = instrument.settlement_asset
    socialized = state.socialized_loss
    if uncovered:
        socialized = socialized.set(asset, socialized.get(asset, 0) + uncovered)
    return replace_state(
        state,
        instruments=state.instruments.set(
            instrument.id, attrs.evolve(instrument, settlement_ticks=settlement_ticks)
        ),
        socialized_loss=socialized,
        commitment=touch(state.commitment, instrument_key(instrument.id)),
    )
