"""Debts and claims on the insurance fund: a settlement always completes (SK-DEBT).

Before v4 a variation margin that one holder could not pay in cash was refused for every
holder of the instrument, and an expiry socialised the shortfall of a payer that was rich in
other collateral or in other positions. Now a payer short of the settlement asset pays what
cash it has; the insurance fund *advances* the rest as far as its cash goes; what the fund
cannot advance is *deferred*. Both become the payer's debt to the fund; the receivers are
paid the advance in cash and hold a *claim* on the fund for the deferred part (SK-DEBT-1).
Only at expiry, and only for a payer whose whole account would raise less at liquidation
than it owes, is the difference, its true deficit, paid by the fund or socialised at once.

After every accepted step (SK-DEBT-2) a debtor the step touched repays its debt from any
settlement-asset cash it holds, and the fund pays its claimants pro rata from any cash it
holds. A debt counts against the debtor's margin equity and a claim for the claimant's, so
a debtor that cannot repay is liquidated (SK-LIQ-1), which sells its collateral to repay;
if a bankruptcy writes a debt off and the fund's cash and remaining debts no longer cover
its claims, the claims are cut pro rata and the cut is socialised (SK-DEBT-3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from settlekernel.core.arith import compute_collateral_value_minor
from settlekernel.core.model import Account, State, replace_state
from settlekernel.core.outcomes import Accepted, PostingCode
from settlekernel.core.units import CLEARING_ACCOUNT, INSURANCE_ACCOUNT, RESIDUE_ACCOUNT
from settlekernel.kernel.ledger import with_position
from settlekernel.kernel.transitions.waterfall import (
    Books,
    apply_books,
    new_books,
    post,
    pro_rata_ceil,
    pro_rata_floor,
)
from settlekernel.margin.accounts import account_margin

if TYPE_CHECKING:
    from collections.abc import Mapping


class Settlement(NamedTuple):
    """What one settlement's waterfall did, in valuation minor units (SK-DEBT-1).

    ``insured`` the fund paid of true deficits, ``socialised`` the rest of them; ``advanced``
    the fund lent and ``deferred`` it could not, both now owed to it.
    """

    insured_minor: int
    socialised_minor: int
    advanced_minor: int
    deferred_minor: int


def collect(
    state: State,
    books: Books,
    flows: Mapping[str, int],
    deficits: Mapping[str, int],
    code: PostingCode,
) -> Settlement:
    """Collect every payer's flow and pay every receiver's, through the tiers of SK-DEBT-1.

    Payers in account order: cash first (``payer -> @clearing``). Of the rest, the part that
    is the payer's true deficit (``deficits``) the fund pays as far as its cash goes
    (``@insurance -> @clearing, insurance``) and the rest of it is socialised; of what the
    payer could still cover, the fund advances what it can (``advance``) and defers the
    rest, and the payer owes the fund both. Receivers are paid their due less a cut, rounded
    up, of the socialised and deferred total (``@clearing -> receiver``), and hold a claim,
    rounded down, on the deferred part; what the rounding leaves goes to ``@residue``, so
    ``@clearing`` ends at zero and the fund never owes more than it is owed.
    """
    asset = state.rules.valuation_asset
    fund_cash = state.accounts[INSURANCE_ACCOUNT].balance(asset) + books.deltas.get(
        (INSURANCE_ACCOUNT, asset), 0
    )
    insured = socialised = advanced = deferred = 0
    for holder, flow in sorted(flows.items()):
        if flow >= 0:
            continue
        cash = state.accounts[holder].balance(asset) + books.deltas.get((holder, asset), 0)
        paid = min(-flow, cash)
        post(books, holder, CLEARING_ACCOUNT, (asset, paid), code)
        short = -flow - paid
        lost = min(short, deficits.get(holder, 0))
        cover = min(lost, fund_cash)
        advance = min(short - lost, fund_cash - cover)
        fund_cash -= cover + advance
        post(books, INSURANCE_ACCOUNT, CLEARING_ACCOUNT, (asset, cover), PostingCode.INSURANCE)
        post(books, INSURANCE_ACCOUNT, CLEARING_ACCOUNT, (asset, advance), PostingCode.ADVANCE)
        books.credits[holder] -= short - lost
        insured, socialised = insured + cover, socialised + lost - cover
        advanced, deferred = advanced + advance, deferred + short - lost - advance
    receivers = [holder for holder, flow in sorted(flows.items()) if flow > 0]
    dues = [flows[holder] for holder in receivers]
    cuts = pro_rata_ceil(socialised + deferred, dues)
    claims = pro_rata_floor(deferred, dues)
    for receiver, due, cut, claim in zip(receivers, dues, cuts, claims, strict=True):
        post(books, CLEARING_ACCOUNT, receiver, (asset, due - cut), code)
        books.credits[receiver] += claim
    rounding = (asset, sum(cuts) - socialised - deferred)
    post(books, CLEARING_ACCOUNT, RESIDUE_ACCOUNT, rounding, PostingCode.ROUNDING)
    return Settlement(insured, socialised, advanced, deferred)


def liquidation_value_minor(state: State, account: Account) -> int:
    """Return what an account's whole value would raise: its value at liquidation (SK-DEBT-1).

    Its settlement-asset cash, its other collateral at its liquidation price (the index less
    the asset's liquidation discount: what a sale would raise, so collateral that would
    raise nothing counts for nothing), its claim less its debt, and its positions at the
    index (options at their model value, rounded against it).
    """
    value = account.claim_minor - account.debt_minor
    for asset, units in account.balances.items():
        rules = state.rules.asset_by_symbol[asset]
        underlying = rules.price_underlying
        if asset == state.rules.valuation_asset:
            value += units
        elif underlying is not None and underlying in state.prices:
            value += compute_collateral_value_minor(
                units,
                state.prices[underlying].price_ticks,
                state.rules.underlying_by_symbol[underlying].tick_value_minor,
                rules.decimals,
                rules.liquidation_discount_ppm,
            )
    if account.positions:
        report = account_margin(state, account)
        value += report.unrealized_minor + report.option_value_minor
    return value


def true_deficit_minor(state: State, account: Account, instrument_id: str, owed: int) -> int:
    """Return how much of ``owed`` the account cannot cover with all it is worth (SK-DEBT-1).

    The account without the settling position, at its value at liquidation
    (``liquidation_value_minor``): a solvent payer short of cash has no deficit, whatever its
    cash.
    """
    rest = with_position(account, instrument_id, 0, 0)
    return max(owed - liquidation_value_minor(state, rest), 0)


def settle_debts(outcome: Accepted) -> Accepted:
    """Repay touched debtors' debts, pay the fund's claims, cut unbacked claims (SK-DEBT-2, 3).

    Runs after every accepted step while any debt or claim exists; a no-op otherwise.
    """
    state = outcome.state
    if not state.debtors and not state.claimants:
        return outcome
    asset = state.rules.valuation_asset
    books = new_books()
    touched = {p.debit_account for p in outcome.postings} | {
        p.credit_account for p in outcome.postings
    }
    for debtor in sorted(touched.intersection(state.debtors)):
        account = state.accounts[debtor]
        repaid = min(account.debt_minor, account.balance(asset))
        if repaid:
            post(books, debtor, INSURANCE_ACCOUNT, (asset, repaid), PostingCode.DEBT_REPAYMENT)
            books.credits[debtor] += repaid
    _pay_claims(state, books)
    settled = apply_books(state, books) if books.postings else state
    settled = _cut_unbacked_claims(settled)
    if settled is state:
        return outcome
    return Accepted(settled, (*outcome.postings, *books.postings))


def _pay_claims(state: State, books: Books) -> None:
    """The fund pays its claimants pro rata from its cash, rounded down (SK-DEBT-2)."""
    if not state.claimants:
        return
    asset = state.rules.valuation_asset
    cash = state.accounts[INSURANCE_ACCOUNT].balance(asset) + books.deltas.get(
        (INSURANCE_ACCOUNT, asset), 0
    )
    claimants = sorted(state.claimants)
    claims = [state.accounts[claimant].claim_minor for claimant in claimants]
    pays = pro_rata_floor(min(cash, sum(claims)), claims)
    for claimant, pay in zip(claimants, pays, strict=True):
        if pay:
            post(books, INSURANCE_ACCOUNT, claimant, (asset, pay), PostingCode.CLAIM_PAYMENT)
            books.credits[claimant] -= pay


def _cut_unbacked_claims(state: State) -> State:
    """Cut the claims the fund's cash and debts no longer cover, socialising the cut (SK-DEBT-3).

    The claims are cut pro rata, rounded up (none below zero), and ``socialized_loss`` grows
    by the cut: the only way a loss is socialised outside an expiry's true deficit.
    """
    if not state.claimants:
        return state
    asset = state.rules.valuation_asset
    claimants = sorted(state.claimants)
    claims = [state.accounts[claimant].claim_minor for claimant in claimants]
    backing = state.accounts[INSURANCE_ACCOUNT].balance(asset) + sum(
        state.accounts[debtor].debt_minor for debtor in state.debtors
    )
    excess = sum(claims) - backing
    if excess <= 0:
        return state
    cuts = pro_rata_ceil(excess, claims)
    books = new_books()
    for claimant, cut in zip(claimants, cuts, strict=True):
        books.credits[claimant] -= cut
    state = apply_books(state, books)
    socialized = state.socialized_loss.set(asset, state.socialized_loss.get(asset, 0) + sum(cuts))
    return replace_state(state, socialized_loss=socialized)
