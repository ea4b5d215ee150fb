"""The z3 model of ``Liquidate`` over every plan, written from spec/30-transitions.md (SK-LIQ).

Every plan of the ladder is modelled: a rung ``k = 0 .. 10`` closing ``ceil(|q| * k / 10)``
lots of *every* position (any number of them, across instruments), the penalty per
underlying, split and capped as SK-LIQ-3 states, the collateral sale at the liquidation
price to the liquidator, the fund and the liquidator again (SK-WATERFALL-1); a bankruptcy
(SK-LIQ-4) the fund covers; and a bankruptcy it cannot, where the fund pays all it has, the
liquidator takes the gains, and each losing position is deleveraged (SK-ADL) against the
opposite side's holders in ranking order, who are paid pro rata what the account has left
and receive in kind the collateral nobody bought.

The positions and the holders are unbounded (SK-PROOF-16). Per instrument, a close is a
closed form of the account's position and the rung; the ranking of an instrument's opposite
side is a recurrence over ranks (``adl.holder(x, i)``, ``adl.rank(x, a)``, the lots still to
close before rank ``i``, ``adl.rem(x, i)``), so each holder's take is ``min(rem, |position|)``.
Every balance and position after the step is a quantified function of the account (frame
reasoning: an account outside the books is unchanged). What the model does not reimplement
is consulted (SK-PROOF-3): which rung the ladder picks and its penalty cap (margin engine),
the transfer prices (the mark, Black-76), the units each buyer can afford, and the order of
the ranking (profit x leverage needs the margin engine's equity). The sums over the closes
and over the holders are named totals whose facts are stated as assumptions; in a concrete
ledger every total is the real sum, so the differential checks compare the same formulas
with ``step``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

import attrs
import z3

from settlekernel.core.reasons import Reason
from settlekernel.core.rules import RuleSet
from settlekernel.core.units import PPM, SYSTEM_ACCOUNTS
from settlekernel.proofs.engine import as_python, evaluate
from settlekernel.proofs.symbolic import INT, STRING, Ledger, product_axioms
from settlekernel.proofs.transitions import (
    ACCEPTED,
    INSURANCE,
    RESIDUE,
    Consult,
    LiquidationConsult,
    ModelStep,
    cascade,
)

ANY_ACCOUNT: Final = z3.String("any.account")
ANY_ASSET: Final = z3.String("any.asset")
ANY_INSTRUMENT: Final = z3.String("any.instrument")
ANY_RANK: Final = z3.Int("any.rank")

SHARE_DOWN: Final = z3.Function("liq.share_down", INT, INT, INT, INT)
RUNGS: Final = 10
# The sale's buyers in the order SK-WATERFALL-1 offers a lot: the liquidator as far as its
# cash goes beyond what it must keep, the fund, then (a forced sale only) the liquidator.
SLOTS: Final = ("liquidator", "fund", "forced")


class PlanConsult(Protocol):
    """What the Liquidate model asks the ladder, the prices and the ranking about."""

    def plan(self, account: Any, liquidator: Any) -> tuple[Any, Any, Any]:
        """Return (bankrupt?, rung 0..10, penalty cap) of the ladder's plan (SK-LIQ-3)."""

    def transfer_price(self, instrument: Any, lots: Any) -> Any:
        """Return the transfer price of ``lots`` of ``instrument`` (SK-LIQ-2)."""

    def sold(self, account: Any, asset: str, slot: str) -> Any:
        """Return the units of ``asset`` the plan sells to ``slot``'s buyer (SK-WATERFALL-1)."""

    def ratio_kept(self, account: Any, liquidator: Any) -> Any:
        """Return whether a partial rung leaves initial margin and the ratio no worse."""

    def ranking(self, instrument: str, lots: int, account: str) -> list[str]:
        """Concrete only: the opposite side's holders in SK-ADL order."""


def _abs(x: Any) -> Any:
    return z3.If(x >= 0, x, -x)


def _max0(x: Any) -> Any:
    return z3.If(x >= 0, x, 0)


def _ceil_tenths(amount: Any, rung: Any) -> Any:
    """Return ``ceil(amount * rung / 10)`` for a rung in 0..10, linear in ``amount``."""
    found: Any = z3.IntVal(0)
    for k in range(RUNGS, 0, -1):
        found = z3.If(rung == k, -((-amount * k) / RUNGS), found)
    return found


@attrs.frozen
class Books:
    """The liquidation's books as terms: every total, per-instrument and per-account function."""

    account: Any
    liquidator: Any
    asset: Any
    bankrupt: Any
    adl_plan: Any
    rung: Any
    lots: Callable[[Any], Any]
    cash: Callable[[Any], Any]
    take: Callable[[Any, Any], Any]
    weight: Callable[[Any], Any]
    pay: Callable[[Any], Any]
    part: Callable[[str, Any], Any]
    gains: Any
    losses: Any
    weight_sum: Any
    available: Any
    paid: Any
    recovered: dict[str, Any]
    left: dict[str, Any]
    fund_after: Any
    penalty: Any
    shortfall: Any
    fund_bought: Any
    # (account, asset name or term, change) of the four accounts the books name.
    direct: tuple[tuple[Any, Any, Any], ...]
    sales: tuple[tuple[str, str, Any, Any], ...]
    ranked: Callable[[Any, Any], Any] | None = None
    rem: Callable[[Any, Any], Any] | None = None
    holder: Callable[[Any, Any], Any] | None = None
    count: Callable[[Any], Any] | None = None


def sale_value(rules: RuleSet, s: Ledger, symbol: str, units: Any, discount_ppm: int) -> Any:
    """Return ``collateral_value_minor(units, sale=True)``: floor at the index less a cut."""
    asset = rules.asset_by_symbol[symbol]
    underlying = asset.price_underlying
    if underlying is None:
        return z3.IntVal(0)
    tick_value = rules.underlying_by_symbol[underlying].tick_value_minor
    index = z3.Select(s.index, z3.StringVal(underlying))
    numerator = s.mul(units, index) * (tick_value * (PPM - discount_ppm))
    return z3.If(
        z3.Select(s.has_price, z3.StringVal(underlying)),
        numerator / (10**asset.decimals * PPM),
        0,
    )


def _sale(  # noqa: PLR0913 (the sale's ledger, plan and fault)
    rules: RuleSet, s: Ledger, c: Any, account: Any, *, forced: Any, discount_scale: int
) -> tuple[tuple[str, str, Any, Any], ...]:
    """Return (asset, slot, units, price) of every sale the plan may make."""
    consult: PlanConsult = c
    sales = []
    for asset in rules.assets:
        if asset.symbol == rules.valuation_asset:
            continue
        discount = min(asset.liquidation_discount_ppm * discount_scale, PPM)
        for slot in SLOTS:
            units = consult.sold(account, asset.symbol, slot)
            if slot == "forced":
                units = z3.If(forced, units, 0)
            sales.append(
                (asset.symbol, slot, units, sale_value(rules, s, asset.symbol, units, discount))
            )
    return tuple(sales)


def _penalty(rules: RuleSet, notional: Mapping[str, Any]) -> tuple[Any, Any]:
    """Return (charged, pool) summed per underlying, as ``penalty_split`` computes them."""
    charged: Any = z3.IntVal(0)
    pool: Any = z3.IntVal(0)
    for entry in rules.underlyings:
        exact = notional[entry.symbol] * entry.liquidation_penalty_ppm
        charged += -((-exact) / PPM)
        pool += exact / PPM
    return charged, pool


def liquidate(  # noqa: PLR0913 (one plan of the ladder, every tier of it)
    rules: RuleSet,
    s: Ledger,
    e: dict[str, Any],
    c: Consult,
    *,
    either_side: bool = False,
    discount_scale: int = 1,
) -> ModelStep:
    """SK-LIQ: the ladder's plan, its penalty, the sale, and the bankruptcy's fund and ADL.

    ``either_side`` is the planted fault ``adl-takes-either-side`` (the ranking lists the
    account's own side too); ``discount_scale`` the fault ``sale-below-discount``.
    """
    account = e["account"]
    old: LiquidationConsult = c  # type: ignore[assignment]
    debt = _max0(-z3.Select(s.claim_net, account))
    old_guards = _guards(s, e, old, debt)
    if s.universe is not None:
        first, first_reason = cascade(old_guards)
        if not z3.is_true(evaluate(first)):
            # Concrete and rejected before the plan: no books to build (SK-PROOF-2).
            return ModelStep(first, first_reason, s, writes=())
    books, flows, defines = _plan_books(
        rules, s, e, c, debt, either_side=either_side, discount_scale=discount_scale
    )
    return _plan_step(rules, s, c, books, flows, old_guards, defines)


def _plan_books(  # noqa: PLR0913 (the plan's ledger, event and faults)
    rules: RuleSet,
    s: Ledger,
    e: dict[str, Any],
    c: Consult,
    debt: Any,
    *,
    either_side: bool,
    discount_scale: int,
) -> tuple[Books, dict[str, Any], tuple[Any, ...]]:
    """Return the plan's books, its cash flows and the facts that define its totals."""
    account, liquidator = e["account"], e["liquidator"]
    consult: PlanConsult = c  # type: ignore[assignment]
    bankrupt, rung, cap = consult.plan(account, liquidator)
    rung = z3.If(bankrupt, RUNGS, rung)
    lots_of, cash_of = _closes(s, account, consult, rung)
    gains, losses, notional = _close_totals(rules, s, account, lots_of, cash_of, consult)
    sales = _sale(rules, s, c, account, forced=z3.Not(bankrupt), discount_scale=discount_scale)
    flows = _flows(rules, s, account, (bankrupt, cap, debt), (gains, losses, notional), sales)
    adl_plan = flows["adl_plan"]
    adl = _adl(rules, s, account, lots_of, cash_of, consult, adl_plan, either_side=either_side)
    weight_sum = losses if s.universe is None else adl["weight_sum"]
    pay, part, left, worth = _shares(rules, s, account, sales, adl, (adl_plan, flows, weight_sum))
    paid, recovered, facts = _paid_totals(
        s, adl, pay, part, flows["available"], left, worth, adl_plan
    )
    direct = _direct(e, flows, sales, (left, worth, recovered, paid))
    v = z3.StringVal(rules.valuation_asset)
    books = Books(
        account=account,
        liquidator=liquidator,
        asset=v,
        bankrupt=bankrupt,
        adl_plan=adl_plan,
        rung=rung,
        lots=lots_of,
        cash=cash_of,
        take=adl["take"],
        weight=adl["weight"],
        pay=pay,
        part=part,
        gains=gains,
        losses=losses,
        weight_sum=weight_sum,
        available=flows["available"],
        paid=paid,
        recovered=recovered,
        left=left,
        fund_after=s.bal(INSURANCE, v) + flows["fund_v"],
        penalty=flows["penalty"],
        shortfall=flows["shortfall"],
        fund_bought=flows["fund_bought"],
        direct=direct,
        sales=sales,
        ranked=adl.get("ranked"),
        rem=adl.get("rem"),
        holder=adl.get("holder"),
        count=adl.get("count"),
    )
    sums = _close_sums(rules, s, gains, losses, notional)
    return books, flows, (*sums, *facts) if s.universe is None else ()


def _closes(
    s: Ledger, account: Any, consult: PlanConsult, rung: Any
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """Return the lots the rung closes per instrument and the cash each close settles."""

    def lots(x: Any) -> Any:
        q = s.pos(x, account)
        closed = _ceil_tenths(_abs(q), rung)
        return z3.If(q > 0, closed, -closed)

    def unit(x: Any) -> Any:
        return s.mul(
            consult.transfer_price(x, lots(x)) - z3.Select(s.reference, x),
            z3.Select(s.multiplier, x),
        )

    def cash(x: Any) -> Any:
        return s.mul(lots(x), unit(x))

    if s.universe is not None:
        return _memo(lots), _memo(cash)
    return lots, cash


def _close_sums(
    rules: RuleSet, s: Ledger, gains: Any, losses: Any, notional: Mapping[str, Any]
) -> tuple[Any, ...]:
    """Return the facts about the closes' sums and the index.

    Sums of non-negative terms over the closes (finite: the account's positions), and an
    accepted index is positive (SK-ORACLE-2).
    """
    return (
        gains >= 0,
        losses >= 0,
        *[n >= 0 for n in notional.values()],
        *[
            z3.Implies(
                z3.Select(s.has_price, z3.StringVal(u.symbol)),
                z3.Select(s.index, z3.StringVal(u.symbol)) >= 1,
            )
            for u in rules.underlyings
        ],
    )


def _flows(  # noqa: PLR0913, PLR0917 (the plan, its closes and its sales)
    rules: RuleSet,
    s: Ledger,
    account: Any,
    plan: tuple[Any, Any, Any],
    closes: tuple[Any, Any, Mapping[str, Any]],
    sales: tuple[tuple[str, str, Any, Any], ...],
) -> dict[str, Any]:
    """Return the cash each party pays or receives, whether ADL runs, and what it splits."""
    bankrupt, cap, debt = plan
    gains, losses, notional = closes
    v = z3.StringVal(rules.valuation_asset)
    charged, pool_full = _penalty(rules, notional)
    proceeds = z3.Sum(z3.IntVal(0), *[price for _, _, _, price in sales])
    liq_bought = z3.Sum(z3.IntVal(0), *[p for _, slot, _, p in sales if slot != "fund"])
    fund_bought = z3.Sum(z3.IntVal(0), *[p for _, slot, _, p in sales if slot == "fund"])
    total_cash = gains - losses
    owned = s.bal(account, v) - debt
    # A rung (SK-LIQ-3): the capped penalty, split or whole to the fund.
    penalty = _max0(z3.If(charged <= cap, charged, cap))
    capped = penalty < charged
    pool = z3.If(capped, penalty, pool_full)
    dust = z3.If(capped, 0, charged - pool_full)
    # A bankruptcy (SK-LIQ-4): the fund's cash after its purchases, the shortfall.
    fund = s.bal(INSURANCE, v) - fund_bought
    shortfall = -(owned + proceeds + total_cash)
    adl_plan = z3.And(bankrupt, fund < shortfall)
    covered = z3.And(bankrupt, z3.Not(adl_plan))
    before_writeoff = owned + proceeds + fund + gains
    available = _max0(before_writeoff)
    account_v = z3.If(
        z3.Not(bankrupt),
        total_cash - penalty + proceeds,
        z3.If(
            covered, total_cash + proceeds + _max0(shortfall), proceeds + fund + gains - available
        ),
    )
    fund_v = z3.If(
        z3.Not(bankrupt),
        pool - fund_bought,
        z3.If(covered, -fund_bought - _max0(shortfall), -s.bal(INSURANCE, v)),
    )
    return {
        "asset": v,
        "bankrupt": bankrupt,
        "adl_plan": adl_plan,
        "available": available,
        "before_writeoff": before_writeoff,
        "penalty": penalty,
        "shortfall": shortfall,
        "fund_bought": fund_bought,
        "proceeds": proceeds,
        "cash_before_penalty": owned + total_cash,
        "dust": dust,
        "account_v": account_v,
        "liquidator_v": z3.If(adl_plan, -gains, -total_cash) - liq_bought,
        "fund_v": fund_v,
    }


def _shares(  # noqa: PLR0913, PLR0917 (the sales, the ranking and the split)
    rules: RuleSet,
    s: Ledger,
    account: Any,
    sales: tuple[tuple[str, str, Any, Any], ...],
    adl: dict[str, Any],
    split: tuple[Any, dict[str, Any], Any],
) -> tuple[Callable[[Any], Any], Callable[[str, Any], Any], dict[str, Any], dict[str, Any]]:
    """Return each holder's pay and part in kind, the collateral left and whether it counts."""
    adl_plan, flows, weight_sum = split
    share = _share_fn(s)

    def pay(a: Any) -> Any:
        return z3.If(adl_plan, share(flows["available"], adl["weight"](a), weight_sum), 0)

    left = {}
    worth = {}
    for asset in rules.assets:
        if asset.symbol == rules.valuation_asset:
            continue
        sold = z3.Sum(z3.IntVal(0), *[u for symbol, _, u, _ in sales if symbol == asset.symbol])
        left[asset.symbol] = s.bal(account, z3.StringVal(asset.symbol)) - sold
        worth[asset.symbol] = z3.And(
            adl_plan,
            left[asset.symbol] > 0,
            sale_value(rules, s, asset.symbol, left[asset.symbol], asset.liquidation_discount_ppm)
            > 0,
        )

    def part(symbol: str, a: Any) -> Any:
        return z3.If(worth[symbol], share(left[symbol], adl["weight"](a), weight_sum), 0)

    return pay, part, left, worth


def _direct(
    e: dict[str, Any],
    flows: dict[str, Any],
    sales: tuple[tuple[str, str, Any, Any], ...],
    in_kind: tuple[dict[str, Any], dict[str, Any], dict[str, Any], Any],
) -> tuple[tuple[Any, Any, Any], ...]:
    """Return (account, asset, change) of the four accounts the books name."""
    account, liquidator = e["account"], e["liquidator"]
    left, worth, recovered, paid = in_kind
    bankrupt, adl_plan, v = flows["bankrupt"], flows["adl_plan"], flows["asset"]
    residue_v = z3.If(
        z3.Not(bankrupt), flows["dust"], z3.If(adl_plan, flows["available"] - paid, 0)
    )
    direct: list[tuple[Any, Any, Any]] = [
        (account, v, flows["account_v"]),
        (liquidator, v, flows["liquidator_v"]),
        (INSURANCE, v, flows["fund_v"]),
        (RESIDUE, v, residue_v),
    ]
    for symbol, slot, units, _ in sales:
        name = z3.StringVal(symbol)
        buyer = INSURANCE if slot == "fund" else liquidator
        direct += [(account, name, -units), (buyer, name, units)]
    for symbol, units_left in left.items():
        name = z3.StringVal(symbol)
        direct += [
            (account, name, z3.If(worth[symbol], -units_left, 0)),
            (RESIDUE, name, z3.If(worth[symbol], units_left - recovered[symbol], 0)),
        ]
    return tuple(direct)


def _plan_step(  # noqa: PLR0913, PLR0917 (the books and what the step is checked with)
    rules: RuleSet,
    s: Ledger,
    c: Consult,
    books: Books,
    flows: dict[str, Any],
    old_guards: list[Any],
    defines: tuple[Any, ...],
) -> ModelStep:
    """Return the step: the ledger after the books, the liquidator's funds check, assumptions."""
    consult: PlanConsult = c  # type: ignore[assignment]
    account, liquidator, bankrupt = books.account, books.liquidator, books.bankrupt
    post = _post(rules, s, books, flows["before_writeoff"])
    liquidator_after = post.bal(liquidator, books.asset)
    accepted, reason = cascade([*old_guards, (liquidator_after < 0, Reason.INSUFFICIENT_FUNDS)])
    penalty, proceeds = books.penalty, flows["proceeds"]
    cash_before_penalty = flows["cash_before_penalty"]
    assumes = (
        # The plan is one the ladder resolves (SK-LIQ-3): a sale covers a penalty beyond cash.
        z3.Implies(
            z3.And(z3.Not(bankrupt), penalty > cash_before_penalty),
            proceeds >= penalty - cash_before_penalty,
        ),
        z3.Implies(z3.Not(bankrupt), cash_before_penalty + proceeds >= 0),
        # The fund buys only as far as its cash goes (affordable_units).
        books.fund_bought <= s.bal(INSURANCE, books.asset),
        *[units >= 0 for _, _, units, _ in books.sales],
        *[books.left[symbol] >= 0 for symbol in books.left],
        # A rung the ladder picks passed its ratio check (SK-LIQ-3).
        z3.Implies(z3.Not(bankrupt), consult.ratio_kept(account, liquidator)),
    )
    cells = {(str(w), str(n)): (w, n) for w, n, _ in books.direct}
    return ModelStep(
        accepted,
        reason,
        post,
        writes=tuple(cells.values()),
        checks=(z3.Implies(z3.Not(bankrupt), consult.ratio_kept(account, liquidator)),),
        assumes=assumes,
        defines=defines,
        waterfall=books,
    )


def _memo(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Return ``function`` evaluated once per ground argument (concrete ledgers only)."""
    found: dict[str, Any] = {}

    def memoised(x: Any) -> Any:
        key = x.sexpr()
        if key not in found:
            found[key] = evaluate(function(x)) if z3.is_string_value(x) else function(x)
        return found[key]

    return memoised


def _guards(s: Ledger, e: dict[str, Any], c: LiquidationConsult, debt: Any) -> list[Any]:
    """Return SK-LIQ's checks 1-7 in precedence order (the liquidator's via the kernel)."""
    account, liquidator = e["account"], e["liquidator"]
    rejection = c.liquidator_rejection(account, liquidator)
    return [
        (account == liquidator, Reason.SELF_LIQUIDATION),
        (z3.Not(z3.Select(s.exists, account)), Reason.ACCOUNT_UNKNOWN),
        (z3.Not(z3.Select(s.exists, liquidator)), Reason.ACCOUNT_UNKNOWN),
        (e["principal"] != z3.Select(s.owner, liquidator), Reason.PRINCIPAL_NOT_OWNER),
        (z3.Not(c.liquidation_admissible(account, liquidator)), Reason.ORACLE_NOT_ADMISSIBLE),
        (
            z3.And(z3.Select(s.position_count, account) == 0, debt == 0),
            Reason.NOTHING_TO_LIQUIDATE,
        ),
        (z3.And(z3.Not(c.liquidatable(account)), debt == 0), Reason.NOT_LIQUIDATABLE),
        (rejection != ACCEPTED, rejection),
    ]


def _close_totals(  # noqa: PLR0913, PLR0917 (the closes and what they are summed with)
    rules: RuleSet,
    s: Ledger,
    account: Any,
    lots: Callable[[Any], Any],
    cash: Callable[[Any], Any],
    consult: PlanConsult,
) -> tuple[Any, Any, dict[str, Any]]:
    """Return the closes' gains, losses and notional per underlying: sums over positions."""
    del account  # The closes are functions of the account already.
    if s.instruments is None:
        notional = {u.symbol: z3.Int(f"liq.notional.{u.symbol}") for u in rules.underlyings}
        return z3.Int("liq.gains"), z3.Int("liq.losses"), notional
    gains: Any = z3.IntVal(0)
    losses: Any = z3.IntVal(0)
    notional = {u.symbol: z3.IntVal(0) for u in rules.underlyings}
    for name in s.instruments:
        x = z3.StringVal(name)
        flow = evaluate(cash(x))
        gains = evaluate(gains + _max0(flow))
        losses = evaluate(losses + _max0(-flow))
        price = consult.transfer_price(x, lots(x))
        for u in rules.underlyings:
            term = z3.If(
                z3.Select(s.underlying, x) == z3.StringVal(u.symbol),
                s.mul(_abs(lots(x)), price, z3.Select(s.multiplier, x)),
                0,
            )
            notional[u.symbol] = evaluate(notional[u.symbol] + term)
    return gains, losses, notional


def _share_fn(s: Ledger) -> Callable[[Any, Any, Any], Any]:
    def share(total: Any, weight: Any, weight_sum: Any) -> Any:
        if s.universe is None:
            found = SHARE_DOWN(total, weight, weight_sum)
        else:
            found = (total * weight) / weight_sum
        return z3.If(weight_sum > 0, found, 0)

    return share


def _opposite(  # noqa: PLR0913 (the cell, the close and the fault)
    s: Ledger, x: Any, a: Any, lots: Any, account: Any, *, either_side: bool
) -> Any:
    """Whether ``a`` is on the side opposite the close (the fault: any other holder)."""
    held = s.pos(x, a)
    side = held != 0 if either_side else z3.If(lots > 0, held < 0, held > 0)
    return z3.And(side, a != account)


def _adl(  # noqa: PLR0913, PLR0917 (the closes, the plan and the fault)
    rules: RuleSet,
    s: Ledger,
    account: Any,
    lots: Callable[[Any], Any],
    cash: Callable[[Any], Any],
    consult: PlanConsult,
    adl_plan: Any,
    *,
    either_side: bool,
) -> dict[str, Any]:
    """Return the takes and weights of SK-ADL: a recurrence over each instrument's ranks."""
    del rules

    def deleveraged(x: Any) -> Any:
        return z3.And(adl_plan, cash(x) < 0, lots(x) != 0)

    if s.universe is None:
        return _adl_symbolic(s, account, lots, cash, deleveraged, either_side=either_side)
    assert s.instruments is not None
    takes: dict[tuple[str, str], int] = {}
    weights: dict[str, int] = {}
    for name in s.instruments:
        x = z3.StringVal(name)
        if not z3.is_true(evaluate(deleveraged(x))):
            continue
        closed = int(as_python(evaluate(lots(x))))
        per_lot = -int(as_python(evaluate(cash(x)))) // abs(closed)
        remaining = abs(closed)
        order = consult.ranking(name, closed, str(as_python(evaluate(account))))
        if either_side:
            order = [
                a
                for a in s.universe
                if a != str(as_python(evaluate(account)))
                and int(as_python(evaluate(s.pos(x, z3.StringVal(a))))) != 0
            ]
        for holder in order:
            held = abs(int(as_python(evaluate(s.pos(x, z3.StringVal(holder))))))
            given = min(remaining, held)
            takes[name, holder] = given
            weights[holder] = weights.get(holder, 0) + given * per_lot
            remaining -= given
            if remaining == 0:
                break

    def take(x: Any, a: Any) -> Any:
        found: Any = z3.IntVal(0)
        for (name, holder), amount in takes.items():
            found = z3.If(z3.And(x == z3.StringVal(name), a == z3.StringVal(holder)), amount, found)
        return found

    def weight(a: Any) -> Any:
        found: Any = z3.IntVal(0)
        for holder, amount in weights.items():
            found = z3.If(a == z3.StringVal(holder), amount, found)
        return found

    return {
        "take": take,
        "weight": weight,
        "weight_sum": z3.IntVal(sum(weights.values())),
        "holders": tuple(sorted(weights)),
    }


def _adl_symbolic(  # noqa: PLR0913 (the closes and the fault)
    s: Ledger,
    account: Any,
    lots: Callable[[Any], Any],
    cash: Callable[[Any], Any],
    deleveraged: Callable[[Any], Any],
    *,
    either_side: bool,
) -> dict[str, Any]:
    """The ranking as a recurrence over ranks, per instrument, with its defining facts."""
    holder = z3.Function("adl.holder", STRING, INT, STRING)
    rank = z3.Function("adl.rank", STRING, STRING, INT)
    count = z3.Function("adl.count", STRING, INT)
    rem = z3.Function("adl.rem", STRING, INT, INT)
    weight = z3.Function("adl.weight", STRING, INT)
    witness = z3.Function("adl.witness", STRING, STRING)

    def ranked(x: Any, a: Any) -> Any:
        r = rank(x, a)
        return z3.And(r >= 0, r < count(x), holder(x, r) == a)

    def take(x: Any, a: Any) -> Any:
        amount = rem(x, rank(x, a))
        held = _abs(s.pos(x, a))
        return z3.If(z3.And(deleveraged(x), ranked(x, a)), z3.If(amount <= held, amount, held), 0)

    del cash
    functions = {"holder": holder, "rank": rank, "count": count, "rem": rem, "ranked": ranked}
    facts = _ranking_facts(s, account, lots, take, functions, either_side=either_side)
    facts = (*facts, *_weight_facts(take, weight, witness))
    return {
        "take": take,
        "weight": weight,
        "weight_sum": z3.Int("liq.losses"),
        "ranked": ranked,
        "rem": rem,
        "holder": holder,
        "count": count,
        "facts": facts,
    }


def _ranking_facts(  # noqa: PLR0913 (the ranking's functions and the fault)
    s: Ledger,
    account: Any,
    lots: Callable[[Any], Any],
    take: Callable[[Any, Any], Any],
    f: dict[str, Any],
    *,
    either_side: bool,
) -> tuple[Any, ...]:
    """The recurrence over ranks that defines each instrument's ranking (SK-ADL)."""
    holder, rank, count, rem, ranked = (f[k] for k in ("holder", "rank", "count", "rem", "ranked"))
    x, a = z3.String("adl.x"), z3.String("adl.a")
    i = z3.Int("adl.i")
    who = holder(x, i)
    within = z3.And(i >= 0, i < count(x))
    return (
        z3.ForAll([x], count(x) >= 0),
        z3.ForAll([x], rem(x, 0) == _abs(lots(x))),
        # Each ranked holder is on the opposite side, listed once, and its take is removed
        # from what is left to close.
        z3.ForAll(
            [x, i],
            z3.Implies(
                within,
                z3.And(
                    _opposite(s, x, who, lots(x), account, either_side=either_side),
                    rank(x, who) == i,
                    rem(x, i + 1) == rem(x, i) - take(x, who),
                ),
            ),
        ),
        # Every holder on the opposite side is ranked.
        z3.ForAll(
            [x, a],
            z3.Implies(_opposite(s, x, a, lots(x), account, either_side=either_side), ranked(x, a)),
            patterns=[s.pos(x, a)],
        ),
        # What is left to close never goes negative: Liquidate.ranking-inductive proves
        # it holds at rank 0 and each rank keeps it, which induction over ranks extends.
        z3.ForAll([x, i], z3.Implies(z3.And(i >= 0, i <= count(x)), rem(x, i) >= 0)),
        # SK-ADL: positions sum to zero, so the opposite side holds enough to close the lots.
        z3.ForAll([x], rem(x, count(x)) == 0),
    )


def _weight_facts(take: Callable[[Any, Any], Any], weight: Any, witness: Any) -> tuple[Any, ...]:
    """Return the facts about each holder's weight.

    A weight is the sum of non-negative takes x per-lot amounts: positive only for an
    account some deleveraged instrument takes from (its witness), at most their sum.
    """
    a = z3.String("adl.a")
    return (
        z3.ForAll([a], z3.And(weight(a) >= 0, weight(a) <= z3.Int("liq.losses"))),
        z3.ForAll([a], z3.Implies(weight(a) > 0, take(witness(a), a) > 0), patterns=[weight(a)]),
    )


def _paid_totals(  # noqa: PLR0913, PLR0917 (the pays, the parts and what they split)
    s: Ledger,
    adl: dict[str, Any],
    pay: Callable[[Any], Any],
    part: Callable[[str, Any], Any],
    available: Any,
    left: dict[str, Any],
    worth: dict[str, Any],
    adl_plan: Any,
) -> tuple[Any, dict[str, Any], tuple[Any, ...]]:
    """Return the total paid to the holders, recovered per asset, and the facts about them."""
    if s.universe is not None:
        holders = [z3.StringVal(h) for h in adl["holders"]]
        paid = evaluate(z3.Sum(z3.IntVal(0), *[pay(h) for h in holders]))
        recovered = {
            symbol: evaluate(z3.Sum(z3.IntVal(0), *[part(symbol, h) for h in holders]))
            for symbol in left
        }
        return paid, recovered, ()
    paid = z3.Int("adl.paid")
    recovered = {symbol: z3.Int(f"adl.recovered.{symbol}") for symbol in left}
    total, weight, weight_sum = z3.Ints("liq.share.total liq.share.weight liq.share.sum")
    down = SHARE_DOWN(total, weight, weight_sum)
    facts = (
        *adl["facts"],
        # share_down's contract (core/arith.py, checked by CrossHair), and a zero weight's
        # share is zero.
        z3.ForAll(
            [total, weight, weight_sum],
            z3.Implies(
                z3.And(total >= 0, weight_sum > 0, weight >= 0, weight <= weight_sum),
                z3.And(
                    down >= 0,
                    down <= total,
                    z3.Implies(total <= weight_sum, down <= weight),
                ),
            ),
            patterns=[down],
        ),
        z3.ForAll([total, weight_sum], SHARE_DOWN(total, 0, weight_sum) == 0),
        # pro_rata_floor's shares sum to at most what they split (SK-WATERFALL-2).
        z3.Implies(adl_plan, z3.And(paid >= 0, paid <= available)),
        z3.Implies(z3.Not(adl_plan), paid == 0),
        *[
            z3.And(
                z3.Implies(worth[symbol], z3.And(r >= 0, r <= left[symbol])),
                z3.Implies(z3.Not(worth[symbol]), r == 0),
            )
            for symbol, r in recovered.items()
        ],
        # System accounts hold no positions (INV-ROUNDING-RESIDUE, state part).
        *[
            z3.ForAll([ANY_INSTRUMENT], s.pos(ANY_INSTRUMENT, z3.StringVal(system)) == 0)
            for system in SYSTEM_ACCOUNTS
        ],
        *product_axioms(),
    )
    return paid, recovered, facts


def _delta(rules: RuleSet, books: Books, a: Any, asset: Any) -> Any:
    """Return the change of ``a``'s balance of ``asset``: the direct entries, pays and parts."""
    change: Any = z3.IntVal(0)
    for who, name, amount in books.direct:
        change += z3.If(z3.And(a == who, asset == name), amount, 0)
    change += z3.If(asset == books.asset, books.pay(a), 0)
    for symbol in books.left:
        change += z3.If(asset == z3.StringVal(symbol), books.part(symbol, a), 0)
    del rules
    return change


def _position_change(books: Books, x: Any, a: Any) -> Any:
    lots = books.lots(x)
    taken_by_liquidator = z3.Or(z3.Not(books.adl_plan), books.cash(x) >= 0)
    direction = z3.If(lots > 0, 1, -1)
    return (
        z3.If(a == books.account, -lots, 0)
        + z3.If(z3.And(a == books.liquidator, taken_by_liquidator), lots, 0)
        + direction * books.take(x, a)
    )


def _post(rules: RuleSet, s: Ledger, books: Books, before_writeoff: Any) -> Ledger:
    """Return the ledger after the books: balances, positions, open interest, claims."""
    account = books.account
    writeoff = z3.If(z3.And(books.adl_plan, before_writeoff < 0), -before_writeoff, 0)
    claim = z3.Store(s.claim_net, account, z3.Select(s.claim_net, account) + writeoff)
    if s.universe is None:
        a, asset, x = z3.String("liq.a"), z3.String("liq.asset"), z3.String("liq.x")
        balance = z3.Lambda(
            [a], z3.Lambda([asset], s.bal(a, asset) + _delta(rules, books, a, asset))
        )
        positions = z3.Lambda([x], z3.Lambda([a], s.pos(x, a) + _position_change(books, x, a)))
        return attrs.evolve(s, balance=balance, positions=positions, claim_net=claim)
    assert s.instruments is not None
    balance = s.balance
    for name in s.universe:
        a = z3.StringVal(name)
        row = z3.Select(balance, a)
        for entry in rules.assets:
            symbol = z3.StringVal(entry.symbol)
            row = z3.Store(
                row, symbol, evaluate(s.bal(a, symbol) + _delta(rules, books, a, symbol))
            )
        balance = z3.Store(balance, a, row)
    positions, open_interest = s.positions, s.open_interest
    for instrument in s.instruments:
        x = z3.StringVal(instrument)
        row = z3.Select(positions, x)
        longs: Any = z3.IntVal(0)
        for name in s.universe:
            a = z3.StringVal(name)
            before = s.pos(x, a)
            after = evaluate(before + _position_change(books, x, a))
            row = z3.Store(row, a, after)
            longs += _max0(after) - _max0(before)
        positions = z3.Store(positions, x, row)
        open_interest = z3.Store(open_interest, x, evaluate(z3.Select(s.open_interest, x) + longs))
    return attrs.evolve(
        s, balance=balance, positions=positions, open_interest=open_interest, claim_net=claim
    )


def vacuity_witness(pre: Ledger, step: ModelStep) -> tuple[Any, ...]:
    """Return a simple pre-state where Liquidate fires: nothing held, a solvent rung."""
    b: Books = step.waterfall
    return (
        z3.Not(b.bankrupt),
        pre.positions == z3.K(STRING, z3.K(STRING, z3.IntVal(0))),
        pre.balance == z3.K(STRING, z3.K(STRING, z3.IntVal(0))),
    )


# ---------------------------------------------------------------------------------------
# The claims.


def _premised(step: ModelStep, claim: Any) -> Any:
    return z3.Implies(step.accepted, claim)


def _finite(books: Books, asset: Any) -> Any:
    """Return the sum of the direct entries of ``asset`` (each entry once: they add)."""
    total: Any = z3.IntVal(0)
    for _, name, amount in books.direct:
        total += z3.If(name == asset, amount, 0)
    return total


def _in_kind(b: Books, a: Any, asset: Any) -> Any:
    """Return what ``a`` receives of ``asset`` as a deleveraged holder: its pay or part."""
    found = z3.If(asset == b.asset, b.pay(a), 0)
    for symbol in b.left:
        found += z3.If(asset == z3.StringVal(symbol), b.part(symbol, a), 0)
    return found


def conservation(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-CONSERVATION in a liquidation: outside the books nothing changes; changes sum to 0.

    A balance changes only for the account, the liquidator, the fund, the residue or a
    deleveraged holder, which receives exactly its pay or part; custody is unchanged; and
    per asset the four named balances' changes after the step (beyond any pay of their own)
    plus the holders' pays and parts in total add up to zero.
    """
    del rules, event
    b: Books = step.waterfall
    post = step.post
    names = (b.account, b.liquidator, INSURANCE, RESIDUE)
    named = z3.Or(*[name == ANY_ACCOUNT for name in names])
    frame = z3.Implies(
        z3.Not(named),
        post.bal(ANY_ACCOUNT, ANY_ASSET) - pre.bal(ANY_ACCOUNT, ANY_ASSET)
        == _in_kind(b, ANY_ACCOUNT, ANY_ASSET),
    )
    total: Any = z3.If(b.asset == ANY_ASSET, b.paid, 0)
    for symbol, recovered in b.recovered.items():
        total += z3.If(z3.StringVal(symbol) == ANY_ASSET, recovered, 0)
    for name in names:
        change = post.bal(name, ANY_ASSET) - pre.bal(name, ANY_ASSET)
        total += change - _in_kind(b, name, ANY_ASSET)
    return _premised(
        step,
        z3.And(
            frame,
            z3.Implies(b.weight(ANY_ACCOUNT) == 0, _in_kind(b, ANY_ACCOUNT, ANY_ASSET) == 0),
            z3.Select(post.custody, ANY_ASSET) == z3.Select(pre.custody, ANY_ASSET),
            total == 0,
        ),
    )


def nonnegative(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-NONNEGATIVE-BALANCES: no balance of any account goes negative in any plan."""
    del rules, pre, event
    return _premised(step, step.post.bal(ANY_ACCOUNT, ANY_ASSET) >= 0)


def insurance(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-INSURANCE-NONNEGATIVE: the fund stays >= 0; it pays a shortfall only when bankrupt.

    In a rung it only gains the penalty and buys collateral within its cash; a covered
    bankruptcy costs it at most the shortfall; with ADL it is left with nothing.
    """
    del rules, event
    b: Books = step.waterfall
    before, after = pre.bal(INSURANCE, b.asset), step.post.bal(INSURANCE, b.asset)
    return _premised(
        step,
        z3.And(
            after >= 0,
            z3.Implies(b.adl_plan, after == 0),
            z3.Implies(
                z3.And(b.bankrupt, z3.Not(b.adl_plan)),
                before - after <= b.fund_bought + _max0(b.shortfall),
            ),
            z3.Implies(z3.Not(b.bankrupt), after >= before - b.fund_bought),
        ),
    )


def open_interest(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-OPEN-INTEREST-ZERO-SUM: per instrument the position changes sum to zero.

    Only the account, the liquidator and ranked holders change; the account gives up its
    closes, the liquidator takes them or, for a deleveraged close, the ranked holders take
    lots that total the close (the recurrence's rem falls from |lots| to 0).
    """
    del rules, event
    b: Books = step.waterfall
    x, a = ANY_INSTRUMENT, ANY_ACCOUNT
    post = step.post
    lots = b.lots(x)
    taken = z3.Or(z3.Not(b.adl_plan), b.cash(x) >= 0)
    deleveraged = z3.And(b.adl_plan, b.cash(x) < 0, lots != 0)
    frame = z3.Implies(
        z3.And(a != b.account, a != b.liquidator, b.take(x, a) == 0),
        post.pos(x, a) == pre.pos(x, a),
    )
    rem, count = b.rem, b.count
    if rem is None or count is None:
        return _premised(step, frame)
    zero_sum = (
        -lots
        + z3.If(taken, lots, 0)
        + z3.If(deleveraged, z3.If(lots > 0, 1, -1) * (rem(x, 0) - rem(x, count(x))), 0)
    )
    return _premised(step, z3.And(frame, zero_sum == 0))


def no_worse(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-LIQUIDATION-NO-WORSE: closes shrink positions toward zero; a full close leaves none.

    Every position moves toward zero by at most itself; a bankruptcy or rung 10 leaves no
    position and a non-negative valuation balance; a partial rung passed the ratio check on
    the post-state it writes (consulted: the margin engine's).
    """
    del rules, event
    b: Books = step.waterfall
    x = ANY_INSTRUMENT
    before, after = pre.pos(x, b.account), step.post.pos(x, b.account)
    toward = z3.And(_abs(after) <= _abs(before), z3.Or(after == 0, (after > 0) == (before > 0)))
    return _premised(
        step,
        z3.And(
            toward,
            z3.Implies(b.rung == RUNGS, after == 0),
            *step.checks,
        ),
    )


def adl_fairness(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-ADL-FAIRNESS: only opposite-side holders, in ranking order, paid at most their weight.

    A holder is reduced only in the ADL plan (the fund left empty), only in an instrument the
    account closes at a loss, only if it is on the opposite side, toward zero and never past
    it; a holder is reduced only if the one ranked before it was closed in full; each is paid
    between 0 and its weight (the profit it gave up); an account with no position in the
    instrument is not reduced in it, and one with no weight is paid nothing.
    """
    del rules, event
    b: Books = step.waterfall
    x, a = ANY_INSTRUMENT, ANY_ACCOUNT
    lots = b.lots(x)
    held = pre.pos(x, a)
    take = b.take(x, a)
    opposite = z3.If(lots > 0, held < 0, held > 0)
    parts = [
        z3.Implies(
            take != 0,
            z3.And(
                b.adl_plan,
                step.post.bal(INSURANCE, b.asset) == 0,
                b.cash(x) < 0,
                opposite,
                a != b.account,
                take > 0,
                take <= _abs(held),
            ),
        ),
        z3.Implies(held == 0, take == 0),
        z3.And(b.pay(a) >= 0, b.pay(a) <= b.weight(a)),
        z3.Implies(b.weight(a) == 0, b.pay(a) == 0),
    ]
    if b.holder is not None and b.count is not None:
        i = ANY_RANK
        later, earlier = b.holder(x, i + 1), b.holder(x, i)
        parts.append(
            z3.Implies(
                z3.And(i >= 0, i + 1 < b.count(x), b.take(x, later) > 0),
                b.take(x, earlier) == _abs(pre.pos(x, earlier)),
            )
        )
    return _premised(step, z3.And(*parts))


def liquidator_gain(rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]) -> Any:
    """INV-LIQUIDATOR-GAIN: each buyer pays at least the index value less the stated discount.

    Per sale posting, ``(price + 1) * 10**decimals * 1e6 > units * index * tick_value *
    (1e6 - liquidation_discount_ppm)``: the price is the value at the discount rounded down.
    """
    del event
    b: Books = step.waterfall
    parts = []
    for symbol, _, units, price in b.sales:
        asset = rules.asset_by_symbol[symbol]
        underlying = asset.price_underlying
        if underlying is None:
            continue
        tick_value = rules.underlying_by_symbol[underlying].tick_value_minor
        value = pre.mul(units, z3.Select(pre.index, z3.StringVal(underlying))) * (
            tick_value * (PPM - asset.liquidation_discount_ppm)
        )
        parts.append(
            z3.Implies(
                z3.And(units > 0, z3.Select(pre.has_price, z3.StringVal(underlying))),
                (price + 1) * (10**asset.decimals * PPM) > value,
            )
        )
    return _premised(step, z3.And(z3.BoolVal(True), *parts))


def socialise_nothing(
    rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]
) -> Any:
    """INV-SOCIALISE-ONLY-DEFICIT: a liquidation socialises nothing (ADL absorbs the loss)."""
    del rules, event
    return _premised(
        step,
        z3.Select(step.post.socialised, ANY_ASSET) == z3.Select(pre.socialised, ANY_ASSET),
    )


def ranking_inductive(
    rules: RuleSet, pre: Ledger, step: ModelStep, event: Mapping[str, Any]
) -> Any:
    """The lots left to close are >= 0 at rank 0, and each ranked holder's take keeps them so.

    With ``rem(x, 0) = |lots|`` and ``rem(x, i + 1) = rem(x, i) - min(rem(x, i), |q_i|)``,
    induction over the ranks gives ``rem >= 0`` at every rank, which the other Liquidate
    theorems assume.
    """
    del rules, pre, event
    b: Books = step.waterfall
    if b.rem is None or b.holder is None or b.count is None:
        return z3.BoolVal(True)
    x, i = ANY_INSTRUMENT, ANY_RANK
    rem = b.rem
    return z3.And(
        rem(x, 0) >= 0,
        z3.Implies(z3.And(i >= 0, i < b.count(x), rem(x, i) >= 0), rem(x, i + 1) >= 0),
    )


def search_regions(pre: Ledger, step: ModelStep) -> tuple[tuple[Any, ...], ...]:
    """Return a small region for z3's counterexample search: a rung, or a two-holder book.

    Either a rung with no position to rank (the closes' totals are named sums, free within
    their facts, so its penalty and sale need none), or a bankrupt account long one lot of
    ``x`` with ``h`` long one and ``k`` short two, ranked ``h`` then ``k``. A counterexample
    inside the region is a genuine one.
    """
    b: Books = step.waterfall
    empty = z3.K(STRING, z3.K(STRING, z3.IntVal(0)))
    rung = (z3.Not(b.bankrupt), pre.positions == empty)
    if b.holder is None or b.count is None:
        return (rung,)
    x, h, k = z3.StringVal("x"), z3.StringVal("h"), z3.StringVal("k")
    row = z3.Store(z3.Store(z3.Store(z3.K(STRING, z3.IntVal(0)), b.account, 1), h, 1), k, -2)
    y, a = z3.String("region.y"), z3.String("region.a")
    i = z3.Int("region.i")
    at_x = y == x
    book = (
        b.bankrupt,
        b.account != h,
        b.account != k,
        pre.positions == z3.Store(empty, x, row),
        pre.balance == empty,
        z3.ForAll([y], b.count(y) == z3.If(at_x, 2, 0)),
        z3.ForAll(
            [y, i],
            b.holder(y, i)
            == z3.If(z3.And(at_x, i == 0), h, z3.If(z3.And(at_x, i == 1), k, z3.StringVal(""))),
        ),
        z3.ForAll([y, i], b.rem(y, i) == z3.If(z3.And(at_x, i == 0), 1, 0))
        if b.rem is not None
        else z3.BoolVal(True),
        z3.ForAll([a], b.weight(a) == z3.If(a == h, b.losses, 0)),
    )
    return (rung, book)
