"""Rule-set theorems: what a rule set's numbers guarantee, proved per underlying (SK-PROOF-7).

Each theorem is instantiated from a ``RuleSet``: the rates are the rule set's constants, so
changing one rule re-proves only arithmetic over that number, and a bad number gives a
counterexample in the units of the rule (a maintenance requirement, a notional, a price).
The formulas are the kernel's own, restated in z3:

- SK-PM-3: initial margin is ``ceil(maintenance * im_multiplier_ppm / 1e6)``;
- SK-ORACLE-3: an accepted index moves at most ``floor(index * band_ppm / 1e6)``;
- SK-LIQ-3: the penalty is ``ceil(notional * liquidation_penalty_ppm / 1e6)``, the fund
  receiving the floor, capped by what the account can pay;
- SK-FUNDING-2: one charge shifts the reference by ``trunc(index * rate / 1e6)`` with the
  rate clamped to ``+-funding_clamp_ppm``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

import z3

from settlekernel.core.events import Deposit, OpenAccount, Trade
from settlekernel.core.outcomes import Accepted
from settlekernel.core.rules import RuleSet, UnderlyingRules
from settlekernel.core.units import PPM
from settlekernel.kernel.dispatch import step
from settlekernel.kernel.invariants import InvariantId
from settlekernel.proofs.engine import Obligation
from settlekernel.proofs.replay import AMPLE_MINOR, INDEX_TICKS, perpetual_market, unchecked_genesis
from settlekernel.proofs.theorems import Instance, Theorem

_RULE_ASSUMPTION: Final = "The rule set's numbers are those given; everything else is symbolic."


def _ceil_ppm(value: Any) -> Any:
    return -((-value) / PPM)


def _underlying(rules: RuleSet, symbol: str) -> UnderlyingRules:
    return rules.underlying_by_symbol[symbol]


def initial_covers_maintenance(rules: RuleSet, symbol: str) -> Instance:
    """For every maintenance requirement M >= 0, initial margin is at least M (SK-PM-3)."""
    multiplier = _underlying(rules, symbol).im_multiplier_ppm
    maintenance = z3.Int("maintenance")
    initial = _ceil_ppm(maintenance * multiplier)
    return Instance(
        Obligation(
            hypotheses=(maintenance >= 0,),
            claim=initial >= maintenance,
            fires=maintenance > 0,
        )
    )


def band_below_maintenance(rules: RuleSet, symbol: str) -> Instance:
    """A linear account at or above maintenance is not bankrupt after one accepted update.

    The account holds ``exposure`` (signed lots x multiplier) of the underlying valued at
    the index, equity ``E >= ceil(|exposure| * index * scan_range / 1e6)``. One accepted
    update moves the index to the median or, if that is beyond the band, by the band
    towards it (SK-ORACLE-3). Afterwards ``E + exposure * (index' - index) >= 0``.
    """
    underlying = _underlying(rules, symbol)
    index, median, exposure, equity = z3.Ints("index median exposure equity")
    limit = index * underlying.band_ppm / PPM
    beyond = z3.If(median >= index, median - index, index - median) * PPM > (
        index * underlying.band_ppm
    )
    moved = z3.If(median > index, index + limit, index - limit)
    after = z3.If(beyond, z3.If(moved >= 1, moved, 1), median)
    notional = z3.If(exposure >= 0, exposure, -exposure) * index
    maintenance = _ceil_ppm(notional * underlying.scan_range_ppm)
    return Instance(
        Obligation(
            hypotheses=(index >= 1, median >= 1, equity >= maintenance),
            claim=equity + exposure * (after - index) >= 0,
            fires=z3.And(exposure != 0, after != index),
        )
    )


def penalty_within_maintenance(rules: RuleSet, symbol: str) -> Instance:
    """The full penalty of closing a notional N never exceeds the maintenance it releases.

    An account liquidated as it crosses maintenance has about ``ceil(N * scan_range / 1e6)``
    of equity; if the penalty on N is no larger, the fund gets the whole penalty and the
    kernel's cap (SK-LIQ-3) never has to cut it.
    """
    underlying = _underlying(rules, symbol)
    notional = z3.Int("notional")
    penalty = _ceil_ppm(notional * underlying.liquidation_penalty_ppm)
    maintenance = _ceil_ppm(notional * underlying.scan_range_ppm)
    return Instance(
        Obligation(
            hypotheses=(notional >= 0,),
            claim=penalty <= maintenance,
            fires=notional > 0,
        )
    )


def penalty_capped(rules: RuleSet, symbol: str) -> Instance:
    """The penalty paid is never negative and never more than the account can pay (SK-LIQ-3).

    ``penalty = max(0, min(charged, cap))`` with ``cap <= cash + other collateral`` and
    ``cap <= equity + cash received``: whatever the margin engine reports, the fund's
    contribution is non-negative, and the account never pays more than it holds or, when
    its equity is positive, more than its equity.
    """
    underlying = _underlying(rules, symbol)
    notional, cash, other, equity, received = z3.Ints("notional cash other equity received")
    charged = _ceil_ppm(notional * underlying.liquidation_penalty_ppm)
    cap = z3.If(cash + other <= equity + received, cash + other, equity + received)
    penalty = z3.If(charged <= cap, charged, cap)
    paid = z3.If(penalty >= 0, penalty, 0)
    pool = z3.If(paid < charged, paid, notional * underlying.liquidation_penalty_ppm / PPM)
    return Instance(
        Obligation(
            hypotheses=(notional >= 0, cash + other >= 0),
            claim=z3.And(
                paid >= 0,
                pool >= 0,
                paid <= cash + other,
                paid <= z3.If(equity + received > 0, equity + received, 0),
            ),
            fires=paid > 0,
        )
    )


def funding_bounded(rules: RuleSet, symbol: str) -> Instance:
    """One funding charge shifts the reference by at most ``floor(index * clamp / 1e6)``.

    So every holder's payment for one interval is at most ``|lots| * multiplier`` times
    that many ticks, whatever the premium (SK-FUNDING-2).
    """
    underlying = _underlying(rules, symbol)
    clamp = underlying.funding_clamp_ppm
    index, premium, reference = z3.Ints("index premium reference")
    rate = z3.If(premium > clamp, clamp, z3.If(premium < -clamp, -clamp, premium))
    magnitude = index * z3.If(rate >= 0, rate, -rate) / PPM
    shifted = reference + z3.If(rate >= 0, magnitude, -magnitude)
    bounded = z3.If(
        shifted < 1, 1, z3.If(shifted > rules.price_ticks_max, rules.price_ticks_max, shifted)
    )
    shift = bounded - reference
    bound = index * clamp / PPM
    return Instance(
        Obligation(
            hypotheses=(index >= 1, reference >= 1, reference <= rules.price_ticks_max),
            claim=z3.And(shift <= bound, -shift <= bound),
            fires=shift != 0,
        )
    )


def calendar_covers_basis(rules: RuleSet, symbol: str) -> Instance:
    """The calendar charge covers the largest basis two marks can show (SK-PM-7, SK-MARK-1).

    Two linear instruments on one underlying are marked at ``index + floor(index * p / 1e6)``
    with premiums ``p`` within the mark band. A spread of ``exposure`` (lots x multiplier)
    long one and short the other can lose, between their marks, ``exposure`` times the gap of
    the two marks; the charge ``ceil(exposure * index * calendar_spread_ppm / 1e6)`` covers it
    to within the marks' rounding, one tick per unit of exposure.
    """
    underlying = _underlying(rules, symbol)
    band = underlying.mark_band_ppm
    index, exposure, first, second = z3.Ints("index exposure premium_long premium_short")
    gap = (index * first / PPM) - (index * second / PPM)
    charge = _ceil_ppm(exposure * index * underlying.calendar_spread_ppm)
    return Instance(
        Obligation(
            hypotheses=(
                index >= 1,
                exposure >= 0,
                first >= -band,
                first <= band,
                second >= -band,
                second <= band,
            ),
            claim=exposure * gap <= charge + exposure,
            fires=z3.And(exposure > 0, gap > 0),
        )
    )


def insurance_contribution(rules: RuleSet, symbol: str) -> Instance:
    """The fund's share of a penalty is never negative, for every notional (SK-LIQ-3)."""
    underlying = _underlying(rules, symbol)
    notional = z3.Int("notional")
    pool = notional * underlying.liquidation_penalty_ppm / PPM
    return Instance(Obligation(hypotheses=(notional >= 0,), claim=pool >= 0, fires=notional > 0))


def realise_margin_order(rules: RuleSet, symbol: str) -> list[object]:
    """Return a trade that leaves an account at exactly initial margin on ``symbol``.

    Under rules whose initial margin is below maintenance, that account is liquidatable the
    moment the kernel accepts it; INV-MARGIN-ORDER flags the trade.
    """
    instrument = f"{symbol}-PERP"
    setup: list[object] = [
        *perpetual_market(rules, instrument, symbol),
        OpenAccount(principal="weak", account="weak"),
        OpenAccount(principal="strong", account="strong"),
        Deposit(
            principal="strong",
            account="strong",
            asset=rules.valuation_asset,
            amount_minor=AMPLE_MINOR,
        ),
    ]
    trade = Trade(
        principal=rules.roles.matchers[0],
        trade_id="t1",
        buyer="weak",
        seller="strong",
        instrument=instrument,
        quantity_lots=1,
        price_ticks=INDEX_TICKS,
        buyer_fee_rate_ppm=0,
        seller_fee_rate_ppm=0,
    )
    probe = unchecked_genesis(rules)
    for event in [
        *setup,
        Deposit(
            principal="weak", account="weak", asset=rules.valuation_asset, amount_minor=AMPLE_MINOR
        ),
        trade,
    ]:
        outcome = step(probe, event)
        assert isinstance(outcome, Accepted), outcome
        probe = outcome.state
    initial = probe.margins["weak"].report.initial_minor
    deposit = Deposit(
        principal="weak", account="weak", asset=rules.valuation_asset, amount_minor=initial
    )
    return [*setup, deposit, trade]


_RULE_THEOREMS: Final[
    tuple[
        tuple[
            str, str, tuple[InvariantId, ...], tuple[str, ...], Callable[[RuleSet, str], Instance]
        ],
        ...,
    ]
] = (
    (
        "initial-covers-maintenance",
        "Initial margin is at least maintenance margin for every requirement.",
        (InvariantId.MARGIN_ORDER,),
        ("SK-PM-3", "SK-RULES-2"),
        initial_covers_maintenance,
    ),
    (
        "band-below-maintenance",
        "An account at or above maintenance is not bankrupt after one accepted index update.",
        (),
        ("SK-ORACLE-3", "SK-PM-3"),
        band_below_maintenance,
    ),
    (
        "penalty-within-maintenance",
        "The full liquidation penalty never exceeds the maintenance margin it releases.",
        (InvariantId.LIQUIDATION_NO_WORSE,),
        ("SK-LIQ-3",),
        penalty_within_maintenance,
    ),
    (
        "penalty-capped",
        "The penalty paid is non-negative and within what the account can pay.",
        (InvariantId.INSURANCE_NONNEGATIVE, InvariantId.LIQUIDATION_NO_WORSE),
        ("SK-LIQ-3",),
        penalty_capped,
    ),
    (
        "funding-bounded",
        "One funding charge moves the reference by at most index x clamp.",
        (InvariantId.FUNDING_BOUNDED,),
        ("SK-FUNDING-2",),
        funding_bounded,
    ),
    (
        "calendar-covers-basis",
        "A calendar spread's charge covers the largest basis its two marks can show.",
        (InvariantId.MARGIN_AFTER_ACCEPT,),
        ("SK-PM-7", "SK-MARK-1"),
        calendar_covers_basis,
    ),
    (
        "insurance-contribution",
        "The insurance fund's share of every penalty is non-negative.",
        (InvariantId.INSURANCE_NONNEGATIVE,),
        ("SK-LIQ-3",),
        insurance_contribution,
    ),
)


def _swap(builder: Callable[[RuleSet, str], Instance], symbol: str, rules: RuleSet) -> Instance:
    return builder(rules, symbol)


def _realise_margin_order(
    symbol: str, rules: RuleSet, instance: Instance, model: Any
) -> list[object]:
    del instance, model  # The trade is built from the rules; the model only says "fails".
    return realise_margin_order(rules, symbol)


def rule_theorems(rules: RuleSet) -> list[Theorem]:
    """Return every rule-set theorem, once per underlying of ``rules``."""
    theorems: list[Theorem] = []
    for underlying in rules.underlyings:
        for name, statement, invariants, spec, builder in _RULE_THEOREMS:
            symbol = underlying.symbol
            theorems.append(
                Theorem(
                    name=f"rules.{name}[{symbol}]",
                    statement=statement,
                    invariants=invariants,
                    spec=(*spec, "SK-PROOF-7"),
                    assumptions=(_RULE_ASSUMPTION,),
                    build=functools.partial(_swap, builder, symbol),
                    transition="RuleSet",
                    realise=(
                        functools.partial(_realise_margin_order, symbol)
                        if builder is initial_covers_maintenance
                        else None
                    ),
                )
            )
    return theorems
