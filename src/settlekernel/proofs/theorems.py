"""The theorem catalogue: per transition, each invariant it must preserve (SK-PROOF-1).

A transition theorem says: for every ledger satisfying the invariant (at the cells the step
reads), every well-formed event and every answer of the consulted guards, if the modelled
transition accepts the event, the invariant holds afterwards. Each is instantiated from a
``RuleSet`` (limits, roles and assets are the rule set's numbers) and from a table of models,
so a planted fault (proofs/faults.py) is the same theorem over a changed model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs
import z3

from settlekernel.core.events import (
    EVENT_TYPES,
    FIELD_KINDS,
    AdmitVenue,
    AuthorizeVenue,
    Deposit,
    Expire,
    FieldKind,
    Funding,
    FundInsurance,
    Liquidate,
    ListInstrument,
    OpenAccount,
    OraclePrice,
    OracleVolatility,
    RemoveVenue,
    RestrictVenue,
    ResumeVenue,
    RevokeVenue,
    SuspendVenue,
    Tick,
    Trade,
    Transfer,
    VariationMargin,
    Withdraw,
)
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.rules import RuleSet
from settlekernel.core.units import PPM, SYSTEM_ACCOUNTS
from settlekernel.kernel.invariants import InvariantId
from settlekernel.proofs import claims, lifecycle, transitions
from settlekernel.proofs import expiry_model as expiry
from settlekernel.proofs import liquidation_model as liquidation
from settlekernel.proofs import venue_model as venues
from settlekernel.proofs.engine import Obligation
from settlekernel.proofs.replay import (
    realisable_tiers,
    realise,
    realise_bankruptcy,
    realise_expiry,
)
from settlekernel.proofs.symbolic import (
    Ledger,
    is_user_id,
    product_axioms,
    symbolic_event,
    symbolic_ledger,
)
from settlekernel.proofs.transitions import FEES, RESIDUE, ModelStep, SymbolicConsult

# The assumptions every transition theorem makes, stated once (spec/60-invariants.md).
COMMON_ASSUMPTIONS: Final = (
    (
        "The pre-state is reachable from genesis: every state invariant holds at each cell "
        "the step or the claim reads (instantiated from the universally quantified invariant)."
    ),
    "The event passed SK-SHAPE: its ids are 1-64 characters and none names a system account.",
    (
        "Consulted guards (oracle admissibility, margin requirement) may answer anything: the "
        "theorem holds for every margin engine and oracle."
    ),
    (
        "A sum over all accounts changes by exactly the changes at the cells that changed "
        "(balances have finite support); the proof shows every other cell is unchanged."
    ),
    "Integers are unbounded; the kernel's 2**96 bounds are guards, not machine limits.",
)
NONLINEAR_ASSUMPTION: Final = (
    "Products of symbolic amounts (quantity x price x multiplier, notional x rate, position "
    "x per-lot amount) are an uninterpreted function known only by the sign rules of "
    "multiplication; each product is computed once and reused, so the claims need no more."
)


@attrs.frozen
class Instance:
    """A theorem instantiated for one rule set: the obligation and what to replay."""

    obligation: Obligation
    pre: Ledger | None = None
    event: Mapping[str, Any] = attrs.field(factory=dict)
    event_class: type | None = None


@attrs.frozen
class Theorem:
    """A named, documented theorem that builds its obligation for a rule set."""

    name: str
    statement: str
    invariants: tuple[InvariantId, ...]
    spec: tuple[str, ...]
    assumptions: tuple[str, ...]
    build: Callable[[RuleSet], Instance]
    transition: str = "rule set"
    # A counterexample is searched again inside ``region`` (tiers of constraints that keep
    # it buildable from genesis, narrowest first) and turned into events by ``realise``
    # (SK-PROOF-5).
    region: Callable[[RuleSet, Instance], list[list[Any]]] | None = None
    realise: Callable[[RuleSet, Instance, Any], list[object]] | None = None


ClaimFn = Callable[[RuleSet, Ledger, ModelStep, Mapping[str, Any]], Any]
MODELS: Final[dict[type, transitions.Model]] = {
    OpenAccount: transitions.open_account,
    Deposit: transitions.deposit,
    Withdraw: transitions.withdraw,
    Transfer: transitions.transfer,
    FundInsurance: transitions.fund_insurance,
    Trade: transitions.trade,
    Liquidate: liquidation.liquidate,
    VariationMargin: transitions.variation_margin,
    Funding: transitions.funding,
    OraclePrice: transitions.oracle_price,
    ListInstrument: transitions.list_instrument,
    OracleVolatility: transitions.oracle_volatility,
    Tick: transitions.tick,
    Expire: expiry.expire,
    AdmitVenue: venues.admit_venue,
    SuspendVenue: venues.suspend_venue,
    ResumeVenue: venues.resume_venue,
    RemoveVenue: venues.remove_venue,
    AuthorizeVenue: venues.authorize_venue,
    RestrictVenue: venues.restrict_venue,
    RevokeVenue: venues.revoke_venue,
}
# The venue events (SK-VENUE): the governor's, then the account owners'.
GOVERNOR_EVENTS: Final[tuple[type, ...]] = (AdmitVenue, SuspendVenue, ResumeVenue, RemoveVenue)
GRANT_EVENTS: Final[tuple[type, ...]] = (AuthorizeVenue, RestrictVenue, RevokeVenue)
_SPEC: Final[dict[type, str]] = {
    OpenAccount: "SK-OPEN",
    Deposit: "SK-DEPOSIT",
    Withdraw: "SK-WITHDRAW",
    Transfer: "SK-TRANSFER",
    FundInsurance: "SK-INSURANCE-1",
    Trade: "SK-TRADE",
    Liquidate: "SK-LIQ-3",
    VariationMargin: "SK-VM",
    Funding: "SK-FUNDING-2",
    OraclePrice: "SK-ORACLE-3",
    ListInstrument: "SK-LIST",
    OracleVolatility: "SK-VOL",
    Tick: "SK-TICK",
    Expire: "SK-EXPIRY-3",
    **dict.fromkeys(GOVERNOR_EVENTS, "SK-VENUE-1"),
    **dict.fromkeys(GRANT_EVENTS, "SK-VENUE-2"),
}


def _hypotheses(cls: type, pre: Ledger, event: Mapping[str, Any], step: ModelStep) -> list[Any]:
    facts = [*claims.nonnegative_hypotheses(pre, step), *step.assumes, *product_axioms()]
    facts += step.defines
    kinds = dict(FIELD_KINDS[cls])
    facts += [is_user_id(event[field]) for field, kind in kinds.items() if kind is FieldKind.ID]
    if FieldKind.INSTRUMENT_KIND in kinds.values():
        # SK-SHAPE-1: the kind and option type are enum members (or no option type).
        facts.append(_one_of(event["kind"], [k.value for k in InstrumentKind]))
        facts.append(_one_of(event["option_type"], ["", *[o.value for o in OptionType]]))
    if "instrument" in event:
        # A listed instrument's multiplier is positive and its reference non-negative
        # (SK-LIST); the kernel never stores another.
        instrument = event["instrument"]
        facts += [
            z3.Select(pre.multiplier, instrument) >= 1,
            z3.Select(pre.reference, instrument) >= 0,
            # INV-ROUNDING-RESIDUE (state part): system accounts hold no positions.
            *[pre.pos(instrument, z3.StringVal(system)) == 0 for system in SYSTEM_ACCOUNTS],
        ]
    if cls is Trade:
        # SK-VENUE-1: a venue's fee account is @fees (a house venue) or an account that
        # passed SK-SHAPE (an admitted one): never the residue nor the fund.
        fee_account = z3.Select(pre.venue_fee_account, event["principal"])
        facts.append(
            z3.Or(fee_account == FEES, z3.And(fee_account != RESIDUE, is_user_id(fee_account)))
        )
    if "underlying" in event:
        # An accepted index is positive (SK-ORACLE-2 accepts no non-positive median).
        underlying = event["underlying"]
        facts.append(
            z3.Implies(z3.Select(pre.has_price, underlying), z3.Select(pre.index, underlying) >= 1)
        )
    if cls is ListInstrument:
        # Canonical form: an instrument not listed has no position anywhere.
        instrument = event["instrument"]
        facts.append(
            z3.Implies(
                z3.Not(z3.Select(pre.listed, instrument)),
                pre.pos(instrument, claims.ANY_ACCOUNT) == 0,
            )
        )
    if cls is OpenAccount:
        # Canonical form: an account that does not exist holds nothing.
        account = event["account"]
        facts.append(
            z3.Implies(
                z3.Not(z3.Select(pre.exists, account)), pre.bal(account, claims.ANY_ASSET) == 0
            )
        )
    return facts


def _one_of(term: Any, values: list[str]) -> Any:
    return z3.Or(*[term == z3.StringVal(value) for value in values])


def _instance(
    cls: type, claim: ClaimFn, models: Mapping[type, transitions.Model]
) -> Callable[[RuleSet], Instance]:
    def build(rules: RuleSet) -> Instance:
        pre = symbolic_ledger("pre")
        event = symbolic_event(cls, "event")
        step = models[cls](rules, pre, event, SymbolicConsult())
        obligation = Obligation(
            hypotheses=tuple(_hypotheses(cls, pre, event, step)),
            claim=claim(rules, pre, step, event),
            fires=step.accepted,
            witness=_witness(cls, pre, step),
            search=_search(cls, pre, step),
            regions=liquidation.search_regions(pre, step) if cls is Liquidate else (),
        )
        return Instance(obligation, pre, event, cls)

    return build


def _witness(cls: type, pre: Ledger, step: ModelStep) -> tuple[Any, ...]:
    if cls is Expire:
        return expiry.vacuity_witness(pre, step)
    if cls is Liquidate:
        return liquidation.vacuity_witness(pre, step)
    return ()


def _search(cls: type, pre: Ledger, step: ModelStep) -> tuple[Any, ...]:
    if cls is Expire:
        return expiry.search_witness(pre, step)
    return ()


def _rounding(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """A trade's rounding: fees rounded up, at most one unit of dust per fee, never debited.

    The fee pool goes to the venue's fee account (SK-VENUE-3); when that account is not a
    party of the trade its balance grows by the pool, so it never loses.
    """
    del rules
    figures = transitions.trade_figures(pre, dict(event))
    asset = z3.Select(pre.settles_in, event["instrument"])
    fee_account = z3.Select(pre.venue_fee_account, event["principal"])
    dust = step.post.bal(RESIDUE, asset) - pre.bal(RESIDUE, asset)
    pool = step.post.bal(fee_account, asset) - pre.bal(fee_account, asset)
    party = z3.Or(fee_account == event["buyer"], fee_account == event["seller"])
    return z3.Implies(
        step.accepted,
        z3.And(
            dust >= 0,
            dust <= 2,
            figures.buyer_pool + figures.seller_pool >= 0,
            z3.Implies(z3.Not(party), pool == figures.buyer_pool + figures.seller_pool),
            figures.buyer_fee * PPM >= pre.mul(figures.notional, event["buyer_fee_rate_ppm"]),
            figures.seller_fee * PPM >= pre.mul(figures.notional, event["seller_fee_rate_ppm"]),
        ),
    )


def _venue_authorised(
    rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]
) -> Any:
    """INV-VENUE-AUTHORISED: a trade came from an active venue both owners let trade it.

    Every account whose position the trade moves is the buyer or the seller; each of them
    granted the submitting venue ``full`` (a house venue's default), or ``reduce_only`` and
    the position moved strictly toward zero without passing it (SK-VENUE-2).
    """
    del rules
    venue, instrument = event["principal"], event["instrument"]
    legs = []
    for who in (event["buyer"], event["seller"]):
        before, after = pre.pos(instrument, who), step.post.pos(instrument, who)
        grant = transitions.effective_grant(pre, who, venue)
        grows = z3.Not(z3.Or(after == before, transitions.reduces(before, after)))
        legs.append(z3.Implies(grows, grant == transitions.FULL))
        legs.append(z3.Or(grant == transitions.FULL, grant == transitions.REDUCE_ONLY))
    moved = step.post.pos(claims.ANY_INSTRUMENT, claims.ANY_ACCOUNT) != pre.pos(
        claims.ANY_INSTRUMENT, claims.ANY_ACCOUNT
    )
    parties = z3.And(
        instrument == claims.ANY_INSTRUMENT,
        z3.Or(event["buyer"] == claims.ANY_ACCOUNT, event["seller"] == claims.ANY_ACCOUNT),
    )
    return z3.Implies(
        step.accepted,
        z3.And(
            z3.Select(pre.venue_status, venue) == transitions.ACTIVE,
            z3.Implies(moved, parties),
            *legs,
        ),
    )


# (claim name, statement, invariants, claim) for each invariant a transition must preserve.
_CONSERVATION = (
    "conservation",
    (
        "Balances outside the written cells are unchanged and, per asset, the written cells "
        "change by exactly the change in custody."
    ),
    (InvariantId.CONSERVATION,),
    claims.conservation,
)
_NONNEGATIVE = (
    "nonnegative",
    "Every balance stays non-negative and every custody total in [0, 2**96).",
    (InvariantId.NONNEGATIVE_BALANCES,),
    claims.nonnegative,
)
_INSURANCE = (
    "insurance-not-debited",
    "The insurance fund is not debited (only expiry and liquidation may).",
    (InvariantId.INSURANCE_NONNEGATIVE,),
    claims.insurance_not_debited,
)
_OPEN_INTEREST = (
    "open-interest",
    (
        "Positions still sum to zero per instrument and the open-interest index changes by "
        "the change in long lots."
    ),
    (InvariantId.OPEN_INTEREST_ZERO_SUM,),
    claims.open_interest,
)
_REFERENCE = (
    "reference-positive",
    "A traded instrument's reference, which every position settles at, stays positive.",
    (InvariantId.UNIFORM_REFERENCE,),
    claims.reference_positive,
)
_INSURANCE_RUNG = (
    "insurance-credited",
    "A rung never debits the insurance fund; the fund receives the penalty's floor share.",
    (InvariantId.INSURANCE_NONNEGATIVE,),
    claims.insurance_not_debited,
)
_MARGIN = (
    "margin-after-accept",
    "The margin guard passed on exactly the account the step writes.",
    (InvariantId.MARGIN_AFTER_ACCEPT,),
    claims.margin_checked,
)
_CLAIMS: Final[dict[type, tuple[tuple[str, str, tuple[InvariantId, ...], ClaimFn], ...]]] = {
    OpenAccount: (
        _CONSERVATION,
        (
            "canonical",
            "A new account is owned by the principal, holds nothing and replaces no account.",
            (InvariantId.CANONICAL_FORM,),
            claims.opened_empty,
        ),
    ),
    Deposit: (_CONSERVATION, _NONNEGATIVE, _INSURANCE),
    Withdraw: (_CONSERVATION, _NONNEGATIVE, _INSURANCE, _MARGIN),
    Transfer: (_CONSERVATION, _NONNEGATIVE, _INSURANCE, _MARGIN),
    FundInsurance: (_CONSERVATION, _NONNEGATIVE),
    Trade: (
        _CONSERVATION,
        _NONNEGATIVE,
        _INSURANCE,
        _MARGIN,
        _OPEN_INTEREST,
        (
            "settled-once",
            "Only a trade id never settled is accepted; it is recorded and no other is lost.",
            (InvariantId.NO_DOUBLE_SETTLEMENT,),
            claims.settled_once,
        ),
        (
            "rounding",
            (
                "Fees round up; the residue gains 0 to 2 units and the venue's fee account "
                "gains the fee pool, never negative."
            ),
            (InvariantId.ROUNDING_RESIDUE,),
            _rounding,
        ),
        (
            "venue-authorised",
            (
                "An accepted trade comes from an active venue and moves only the buyer's and "
                "the seller's positions; each opens or grows only on an account that granted "
                "the venue full (a house venue's default), and with reduce_only only shrinks."
            ),
            (InvariantId.VENUE_AUTHORISED,),
            _venue_authorised,
        ),
    ),
    VariationMargin: (_CONSERVATION, _NONNEGATIVE, _INSURANCE, _OPEN_INTEREST, _REFERENCE),
    Funding: (_CONSERVATION, _REFERENCE),
    OracleVolatility: (
        _CONSERVATION,
        (
            "volatility",
            "An accepted volatility is in range, newer than the last, and moves no clock.",
            (InvariantId.ORACLE_ADMISSIBLE,),
            claims.volatility_report,
        ),
    ),
    Tick: (
        _CONSERVATION,
        (
            "clock-forward",
            "An accepted tick moves the clock strictly forward, to the sequencer's time.",
            (InvariantId.PRICE_FRESH, InvariantId.ORACLE_ADMISSIBLE),
            claims.clock_tick,
        ),
    ),
    ListInstrument: (
        _CONSERVATION,
        (
            "listed-empty",
            (
                "A new instrument was not listed, has reference 0, no open interest and no "
                "position anywhere, a positive multiplier, and settles in the valuation asset."
            ),
            (
                InvariantId.OPEN_INTEREST_ZERO_SUM,
                InvariantId.UNIFORM_REFERENCE,
                InvariantId.CANONICAL_FORM,
            ),
            claims.listed_empty,
        ),
    ),
    OraclePrice: (
        _CONSERVATION,
        (
            "band",
            (
                "An accepted report moves the index at most band_ppm of the last index; a first "
                "index is positive; the clock never goes back."
            ),
            (InvariantId.ORACLE_ADMISSIBLE,),
            claims.oracle_band,
        ),
    ),
}


_EXPIRY_CLAIMS: Final = (
    (
        "waterfall-inductive",
        (
            "The waterfall invariant holds before the first holder and every holder's step, "
            "in account-id order, keeps it: changes are flows plus shortfalls less cuts, every "
            "shortfall unit is insured, advanced, socialised or deferred, the fund stays in "
            "[0, its cash before], and nothing socialised exceeds the true deficits."
        ),
        (InvariantId.CONSERVATION, InvariantId.INSURANCE_NONNEGATIVE),
        expiry.waterfall_inductive,
    ),
    (
        "conservation",
        (
            "Only the holders', the fund's and the residue's balances of the valuation asset "
            "change, custody does not, and their changes sum to zero."
        ),
        (InvariantId.CONSERVATION,),
        expiry.conservation,
    ),
    (
        "nonnegative",
        "No balance goes negative: a receiver's cut never exceeds its due.",
        (InvariantId.NONNEGATIVE_BALANCES,),
        expiry.nonnegative,
    ),
    (
        "insurance-nonnegative",
        "The fund stays non-negative and pays out at most the payers' shortfalls.",
        (InvariantId.INSURANCE_NONNEGATIVE,),
        expiry.insurance,
    ),
    (
        "socialise-only-deficit",
        (
            "Each payer's socialised part is at most its true deficit (none for a solvent "
            "payer); socialized_loss grows by the total, at most the sum of true deficits."
        ),
        (InvariantId.SOCIALISE_ONLY_DEFICIT,),
        expiry.socialise_only_deficit,
    ),
    (
        "open-interest",
        (
            "Every position of the instrument is closed, its open interest is zero and it is "
            "settled; every other instrument is untouched."
        ),
        (InvariantId.OPEN_INTEREST_ZERO_SUM,),
        expiry.open_interest,
    ),
)
_CLAIMS[Expire] = _EXPIRY_CLAIMS


_LIQUIDATION_CLAIMS: Final = (
    (
        "ranking-inductive",
        (
            "The ADL recurrence's lots left to close are non-negative before the first ranked "
            "holder and every holder's take keeps them so: induction over the ranks."
        ),
        (InvariantId.ADL_FAIRNESS,),
        liquidation.ranking_inductive,
    ),
    (
        "conservation",
        (
            "In every plan (a rung with its penalty and sale, a covered bankruptcy, ADL with "
            "pays and recovery in kind) only the books' accounts change, custody does not, "
            "and per asset the changes sum to zero."
        ),
        (InvariantId.CONSERVATION,),
        liquidation.conservation,
    ),
    (
        "nonnegative",
        (
            "No balance of the account, the liquidator, the fund, the residue or a holder "
            "goes negative."
        ),
        (InvariantId.NONNEGATIVE_BALANCES,),
        liquidation.nonnegative,
    ),
    (
        "insurance-nonnegative",
        (
            "The fund stays >= 0: a rung only credits it and buys within its cash; a covered "
            "bankruptcy costs it at most the shortfall and its purchases; ADL leaves it empty."
        ),
        (InvariantId.INSURANCE_NONNEGATIVE,),
        liquidation.insurance,
    ),
    (
        "open-interest",
        (
            "Per instrument only the account, the liquidator and ranked holders move, and the "
            "changes sum to zero: the liquidator or the ranked holders take exactly the closes."
        ),
        (InvariantId.OPEN_INTEREST_ZERO_SUM,),
        liquidation.open_interest,
    ),
    (
        "no-worse",
        (
            "Every position of the account moves toward zero, never past it; rung 10 and a "
            "bankruptcy leave none; a partial rung passed the ratio check on what it writes."
        ),
        (InvariantId.LIQUIDATION_NO_WORSE,),
        liquidation.no_worse,
    ),
    (
        "adl-fairness",
        (
            "Only opposite-side holders of an instrument closed at a loss are reduced, only "
            "with the fund left empty, toward zero, each only after the one ranked before it "
            "closed in full; each is paid between 0 and its weight; flat holders untouched."
        ),
        (InvariantId.ADL_FAIRNESS,),
        liquidation.adl_fairness,
    ),
    (
        "liquidator-gain",
        (
            "Every buyer of the account's collateral pays at least its index value less the "
            "asset's liquidation discount, rounded down."
        ),
        (InvariantId.LIQUIDATOR_GAIN,),
        liquidation.liquidator_gain,
    ),
    (
        "socialise-nothing",
        "A liquidation socialises no loss: ADL absorbs it (socialized_loss is unchanged).",
        (InvariantId.SOCIALISE_ONLY_DEFICIT,),
        liquidation.socialise_nothing,
    ),
)
_CLAIMS[Liquidate] = _LIQUIDATION_CLAIMS

_VENUE_CONSERVATION: Final = (
    "conservation",
    "No balance and no custody total changes: a venue event writes only venues and grants.",
    (InvariantId.CONSERVATION,),
    claims.conservation,
)
for _governed in GOVERNOR_EVENTS:
    _CLAIMS[_governed] = (
        _VENUE_CONSERVATION,
        _NONNEGATIVE,
        (
            "governed",
            (
                "Only the governor changes a venue's record, and only the venue the event "
                "names; no grant changes; a removed venue stays removed and a house venue "
                "stays a house venue."
            ),
            (InvariantId.VENUE_AUTHORISED,),
            venues.governed,
        ),
    )
for _granted in GRANT_EVENTS:
    _CLAIMS[_granted] = (
        _VENUE_CONSERVATION,
        _NONNEGATIVE,
        (
            "owner-granted",
            (
                "Only the account's owner changes its grants, and only the grant to the venue "
                "the event names, an admitted venue not removed; no venue's record changes."
            ),
            (InvariantId.VENUE_AUTHORISED,),
            venues.owner_granted,
        ),
    )


def _region(rules: RuleSet, instance: Instance) -> list[list[Any]]:
    assert instance.pre is not None
    assert instance.event_class is not None
    return realisable_tiers(rules, instance.event_class, instance.pre, instance.event)


def _realise(rules: RuleSet, instance: Instance, model: Any) -> list[object]:
    assert instance.pre is not None
    assert instance.event_class is not None
    if instance.event_class is Liquidate:
        return realise_bankruptcy(rules)
    if instance.event_class is Expire:
        return realise_expiry(rules)
    return realise(rules, instance.event_class, model, instance.pre, instance.event)


_LIQUIDATION_ASSUMPTIONS: Final = (
    (
        "Liquidate's plan is consulted: whether the ladder finds a resolving rung (else the "
        "account is bankrupt), which rung, its penalty cap, the transfer prices (>= 0), the "
        "units each buyer of collateral can afford, and the ratio check of a partial rung; "
        "the model computes every close, penalty, sale price, fund payment, take and pay."
    ),
    (
        "The sums over the account's closes (gains, losses, notional per underlying) are sums "
        "of non-negative terms over its finitely many positions, so non-negative; in a "
        "concrete ledger they are the real sums."
    ),
    (
        "SK-ADL's ranking order (profit x leverage, which needs the margin engine's equity) "
        "is consulted; the model writes each deleveraged instrument's opposite side as a "
        "recurrence over ranks (SK-PROOF-16): every ranked holder is on the opposite side and "
        "every opposite-side holder is ranked once; Liquidate.ranking-inductive proves the "
        "lots left to close stay >= 0, and positions summing to zero "
        "(INV-OPEN-INTEREST-ZERO-SUM) give that the last rank leaves none."
    ),
    (
        "A holder's weight is the sum over deleveraged instruments of its take x per-lot "
        "loss: non-negative, at most the losses' total, positive only if some instrument "
        "takes from it; the weights sum to the losses, so the pays (share_down, its contract "
        "checked by CrossHair) total at most what the account has left (SK-WATERFALL-2)."
    ),
    (
        "A liquidation of a debtor or one that touches a claimant (SK-DEBT-2 settles them "
        "after the step) is modelled up to that settlement; the differential checks count it "
        "apart."
    ),
)


_QUORUM_ASSUMPTION: Final = (
    "The quorum's evaluation (which reports are fresh, their median, whether an index is "
    "accepted, the quorum time) is consulted; the model applies the band to whatever median "
    "it gives, and the differential checks confirm an accepted median is positive."
)
_MARK_ASSUMPTION: Final = (
    "Variation margin pays each holder position x (mark - instrument reference): every "
    "position is settled at its instrument's reference (INV-UNIFORM-REFERENCE) and the "
    "positions of an instrument sum to zero (INV-OPEN-INTEREST-ZERO-SUM), so the payments "
    "sum to the per-lot amount times zero. A mark in which a holder is short of cash (its "
    "advance, debt and claims, SK-DEBT-1) is outside the model."
)
_DEBT_ASSUMPTION: Final = (
    "Settling debts and claims after a step (SK-DEBT-2: a touched debtor repays the fund, "
    "the fund pays its claimants) is outside the transition models; INV-DEBT-BACKED and the "
    "conservation predicates check it, and the differential checks skip steps that touch a "
    "debtor or a claimant."
)


_EXPIRY_ASSUMPTIONS: Final = (
    (
        "Expire's holders are the instrument's holder index: a list, in account-id order, "
        "of exactly the accounts with a non-zero position, each once (SK-PROOF-15). The loop "
        "over them is a recurrence over their ranks; Expire.waterfall-inductive proves its "
        "invariant inductive, and the other Expire theorems assume it at every rank, which "
        "is what induction over the finitely many ranks gives."
    ),
    (
        "The expiry flows sum to zero over the holders: each is position x one per-lot "
        "amount, and positions sum to zero (INV-OPEN-INTEREST-ZERO-SUM) at one reference "
        "(INV-UNIFORM-REFERENCE), as for variation margin."
    ),
    (
        "The receivers' cuts and claims are share_up / share_down of their dues (contracts "
        "checked by CrossHair): each within [0, due] while the total is at most the dues, and "
        "the ceiling shares sum to at least the total they split (SK-WATERFALL-2)."
    ),
    (
        "A payer's value at liquidation without the expiring position (debt.true_deficit_minor) "
        "is consulted: the theorems hold for any valuation."
    ),
    (
        "An expiry on a state that already holds debts or claims, after which SK-DEBT-2 "
        "settles them, is outside the model; the differential checks count it apart. The "
        "payment in kind of collateral is gone since v4 (SK-EXPIRY-3): nothing to model."
    ),
)


def transition_theorems(
    models: Mapping[type, transitions.Model] = MODELS,
) -> list[Theorem]:
    """Return one theorem per (transition, invariant) over the given models."""
    theorems: list[Theorem] = []
    for cls, rows in _CLAIMS.items():
        extra: tuple[str, ...] = (
            (NONLINEAR_ASSUMPTION,) if cls in {Trade, Liquidate, VariationMargin, Funding} else ()
        ) + (_DEBT_ASSUMPTION,)
        if cls is Liquidate:
            extra += _LIQUIDATION_ASSUMPTIONS
        if cls is VariationMargin:
            extra += (_MARK_ASSUMPTION,)
        if cls is OraclePrice:
            extra += (_QUORUM_ASSUMPTION,)
        if cls is Expire:
            extra = (NONLINEAR_ASSUMPTION, *_EXPIRY_ASSUMPTIONS)
        theorems += [
            Theorem(
                name=f"{cls.__name__}.{name}",
                statement=statement,
                invariants=invariants,
                spec=(_SPEC[cls], "SK-PROOF-1"),
                assumptions=COMMON_ASSUMPTIONS + extra,
                build=_instance(cls, claim, models),
                transition=cls.__name__,
                region=None
                if cls in {Liquidate, ListInstrument, OracleVolatility, Tick, Expire}
                else _region,
                realise=None if cls in {ListInstrument, OracleVolatility, Tick} else _realise,
            )
            for name, statement, invariants, claim in rows
        ]
    return [*theorems, lifecycle_theorem(models)]


def lifecycle_theorem(models: Mapping[type, transitions.Model] = MODELS) -> Theorem:
    """Return SK-PROOF-17: custody equals the balances after any accepted events from genesis."""
    rests_on = tuple(f"{cls.__name__}.conservation" for cls in models)
    unmodelled = tuple(cls.__name__ for cls in EVENT_TYPES.values() if cls not in models)
    return Theorem(
        name="lifecycle.conservation",
        statement=(
            "For any sequence of accepted events from genesis, per asset, the balances of all "
            "accounts sum to custody: induction over the events, its step the conservation "
            "theorem of each transition (" + ", ".join(rests_on) + ")."
        ),
        invariants=(InvariantId.CONSERVATION,),
        spec=("SK-PROOF-17", "SK-PROOF-4"),
        assumptions=lifecycle.assumptions(rests_on, unmodelled),
        build=lambda _rules: Instance(lifecycle.obligation()),
        transition="lifecycle",
    )
