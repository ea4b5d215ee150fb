"""Write docs/concepts/waterfall.md: the loss waterfall worked through, numbers from the kernel.

The page is generated, and tests/test_docs.py fails if the committed page differs from what
this script writes, so the example cannot drift from the code. Run:

    python tools/waterfall_example.py > docs/concepts/waterfall.md
"""

from __future__ import annotations

import sys
from pathlib import Path

import settlekernel as sk
from settlekernel.cli.display import format_minor
from settlekernel.core.units import INSURANCE_ACCOUNT, RESIDUE_ACCOUNT
from settlekernel.kernel.transitions.liquidation import RUNGS, closes, ranking
from settlekernel.margin.accounts import account_margin

# The test helpers are not a package: import them by path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from scenario import (
    OK,
    USDC,
    deposit,
    expire,
    fund_insurance,
    market,
    open_account,
    price,
    run_table,
    trade,
    walk,
)

BTC_MINOR = 10**8


def usd(minor: int) -> str:
    return format_minor(minor, 6, places=2)


def ticks(value: int) -> str:
    return format_minor(value, 2)


def step(state: sk.State, event: object) -> sk.Accepted:
    outcome = sk.step(state, event)
    assert isinstance(outcome, sk.Accepted), outcome
    return outcome


def partial_example() -> list[str]:
    """A long at 9x falls 5 %: the ladder, rung by rung."""
    state = market(
        [
            (open_account("thin"), OK),
            (deposit("thin", 10_000 * USDC), OK),
            (open_account("keeper"), OK),
            (deposit("keeper", 100_000 * USDC), OK),
            (trade("t1", "thin", "alice", 1_000, 9_000_000), OK),
            *walk("BTC", 8_550_000, 2_000, rounds=2),
        ]
    )
    account = state.accounts["thin"]
    before = account_margin(state, account)
    lines = [
        "## 1. A partial liquidation",
        "",
        "thin deposits 10,000 USDC and buys 1 BTC of BTC-PERP (1,000 lots of 0.001 BTC) at "
        "90,000.00 from alice. BTC falls to "
        f"{ticks(state.prices['BTC'].price_ticks)}: thin's equity is {usd(before.equity_minor)} "
        f"USDC against a maintenance requirement of {usd(before.maintenance_minor)} "
        f"(initial {usd(before.initial_minor)}). It is below maintenance and the index is "
        "valid, so anyone may liquidate it (SK-LIQ-1).",
        "",
        "The ladder (SK-LIQ-3) tries k/10 of every position, smallest first. For each rung: the "
        "lots closed at the mark, the penalty (1.5 % of the notional closed; none of these is "
        "large enough to need the cap that keeps the margin ratio from worsening), and thin's "
        "equity and initial requirement afterwards:",
        "",
        "| rung | lots closed | penalty | equity after | initial after | restores? |",
        "|---|---|---|---|---|---|",
    ]
    outcome = step(state, sk.Liquidate(principal="keeper", account="thin", liquidator="keeper"))
    chosen = 1_000 - outcome.state.accounts["thin"].positions["BTC-PERP"].quantity_lots
    for rung in range(1, RUNGS + 1):
        taken = closes(state, account, rung)
        lots = sum(abs(close.lots) for close in taken)
        notional = sum(abs(c.lots) * c.price_ticks * c.instrument.multiplier_minor for c in taken)
        penalty = -(-notional * 15_000 // 1_000_000)
        moved = sk.Account(
            account.id,
            account.owner,
            account.balances.set(
                "USDC", account.balance("USDC") + sum(c.cash_minor for c in taken) - penalty
            ),
            account.positions.set("BTC-PERP", sk.Position(1_000 - lots, 9_000_000)),
        )
        after = account_margin(state, moved)
        restores = (
            "**yes: applied**" if lots == chosen else ("yes" if after.meets_initial else "no")
        )
        lines.append(
            f"| {rung}/10 | {lots:,} | {usd(penalty)} | {usd(after.equity_minor)} | "
            f"{usd(after.initial_minor)} | {restores} |"
        )
        if lots == chosen:
            break
    report = account_margin(outcome.state, outcome.state.accounts["thin"])
    lines += [
        "",
        f"The keeper takes {chosen:,} lots at the mark; thin pays the loss on them and the "
        f"penalty, {usd(outcome.state.accounts[INSURANCE_ACCOUNT].balance('USDC'))} USDC, to "
        "the insurance fund. Afterwards thin's equity is "
        f"{usd(report.equity_minor)} against maintenance {usd(report.maintenance_minor)}: its "
        "ratio went from "
        f"{before.equity_minor * 100 // before.maintenance_minor} % to "
        f"{report.equity_minor * 100 // report.maintenance_minor} % "
        "(INV-LIQUIDATION-NO-WORSE).",
        "",
    ]
    return lines


def adl_example() -> list[str]:
    """A bankrupt long, a thin fund, three winners ranked and deleveraged."""
    state = market(
        [
            *(
                row
                for name, amount in (
                    ("thin", 10_000),
                    ("carol", 10_000),
                    ("dave", 20_000),
                    ("keeper", 100_000),
                )
                for row in ((open_account(name), OK), (deposit(name, amount * USDC), OK))
            ),
            (fund_insurance(1_000 * USDC), OK),
            (trade("t1", "thin", "carol", 300, 9_000_000), OK),
            (trade("t2", "thin", "dave", 400, 9_000_000), OK),
            (trade("t3", "thin", "alice", 300, 9_000_000), OK),
            (trade("t4", "bob", "alice", 200, 9_000_000), OK),
            *walk("BTC", 7_500_000, 2_000, rounds=6),
        ]
    )
    instrument = state.instruments["BTC-PERP"]
    before = account_margin(state, state.accounts["thin"])
    loss = 1_000 * (9_000_000 - 7_500_000) * 10
    lines = [
        "## 2. Bankruptcy, the insurance fund and auto-deleveraging",
        "",
        "thin (10,000 USDC) buys 300 lots of BTC-PERP from carol (10,000 USDC), 400 from dave "
        "(20,000 USDC) and 300 from alice (1,000,000 USDC); bob also buys 200 from alice, so "
        "the short side holds 1,200 lots. The operator has seeded the insurance fund with "
        "1,000 USDC. BTC falls from 90,000.00 to 75,000.00, a band at a time.",
        "",
        f"thin's equity is now {usd(before.equity_minor)} USDC. Closing its 1,000 lots at the "
        f"mark costs {usd(loss)}; its cash pays 10,000.00 and it has no other collateral, so "
        f"the shortfall is {usd(loss - 10_000 * USDC)}. The fund holds 1,000.00: not enough "
        "(SK-LIQ-4). The fund pays all it has, and thin's losing position is closed against "
        "the short side at the bankruptcy price (SK-ADL).",
        "",
        "The ranking: profit at the mark times leverage (gross notional at the index over "
        "equity), highest first, compared exactly by cross-multiplication:",
        "",
        "| holder | lots | profit | gross notional | equity | profit x leverage | order |",
        "|---|---|---|---|---|---|---|",
    ]
    order = ranking(state, instrument, -1, "thin")
    for number, (holder, lots) in enumerate(order, start=1):
        report = account_margin(state, state.accounts[holder])
        profit = lots * (7_500_000 - 9_000_000) * 10
        notional = abs(lots) * 7_500_000 * 10
        lines.append(
            f"| {holder} | {lots:,} | {usd(profit)} | {usd(notional)} | "
            f"{usd(report.equity_minor)} | {usd(profit * notional // report.equity_minor)} | "
            f"{number} |"
        )
    outcome = step(state, sk.Liquidate(principal="keeper", account="thin", liquidator="keeper"))
    after = outcome.state
    available = 10_000 * USDC + 1_000 * USDC
    lines += [
        "",
        "Holders are reduced in that order until thin's 1,000 lots are closed; each gives up "
        "the profit at the mark on its lots, and thin's remaining cash, "
        f"{usd(available)} (its 10,000.00 and the fund's 1,000.00), is paid to them in "
        "proportion, rounded down:",
        "",
        "| holder | lots before | lots after | profit given up | paid | share of profit |",
        "|---|---|---|---|---|---|",
    ]
    for holder, lots in order:
        new = after.accounts[holder].positions.get("BTC-PERP")
        left = 0 if new is None else new.quantity_lots
        given = (lots - left) * (7_500_000 - 9_000_000) * 10
        paid = sum(
            p.amount_minor
            for p in outcome.postings
            if p.code is sk.PostingCode.ADL and p.credit_account == holder
        )
        share = f"{paid * 100 // abs(given)} %" if given else "-"
        lines.append(
            f"| {holder} | {lots:,} | {left:,} | {usd(abs(given))} | {usd(paid)} | {share} |"
        )
    lines += [
        "",
        "bob is long, on thin's side: untouched. alice, the least levered, gives up only the "
        "300 lots still needed and keeps 200. Every winner is paid less than its profit and "
        "never pays anything (INV-ADL-FAIRNESS). thin ends with no position and no cash, the "
        f"fund at {usd(after.accounts[INSURANCE_ACCOUNT].balance('USDC'))}; nothing is "
        "socialised: "
        "positions sum to zero, so the opposite side always holds the lots to close.",
        "",
    ]
    return lines


def expiry_example() -> list[str]:
    """An expiry whose payer cannot pay: the fund, then socialisation pro rata."""
    state = market(
        [
            (open_account("thin"), OK),
            (deposit("thin", 10_000 * USDC), OK),
            (open_account("carol"), OK),
            (deposit("carol", 100_000 * USDC), OK),
            (fund_insurance(1_000 * USDC), OK),
            (trade("t1", "alice", "thin", 600, 9_000_000, instrument="BTC-FUT"), OK),
            (trade("t2", "carol", "thin", 400, 9_000_000, instrument="BTC-FUT"), OK),
            *walk("BTC", 11_000_000, 1_500),
            (price("BTC", 11_000_000, 11_000), OK),
        ]
    )
    settlement = state.settlement_prices["BTC@10000"]
    owed = 1_000 * (settlement - 9_000_000) * 10
    alice_before = state.accounts["alice"].balance("USDC")
    carol_before = state.accounts["carol"].balance("USDC")
    residue_before = state.accounts[RESIDUE_ACCOUNT].balance("USDC")
    after = run_table([(expire("BTC-FUT"), OK)], state)
    loss = after.socialized_loss["USDC"]
    return [
        "## 3. Expiry: the fund, then socialisation",
        "",
        "thin (10,000 USDC) sells 1 BTC of the future expiring at 10 s: 600 lots to alice, 400 to "
        "carol, at 90,000.00. BTC rallies before expiry; the first index after expiry fixes "
        f"the settlement price at the TWAP, {ticks(settlement)} (SK-EXPIRY-2). thin owes "
        f"{usd(owed)}: it pays its 10,000.00, the fund pays its 1,000.00, and "
        f"{usd(loss)} is left uncovered (SK-EXPIRY-3).",
        "",
        "The uncovered loss is cut from the receivers in proportion to what they are due, each "
        "cut rounded up, the excess to the residue account:",
        "",
        "| receiver | due | cut | received |",
        "|---|---|---|---|",
        *(
            f"| {name} | {usd(owed * lots // 1_000)} | "
            f"{usd(owed * lots // 1_000 - (after.accounts[name].balance('USDC') - before))} | "
            f"{usd(after.accounts[name].balance('USDC') - before)} |"
            for name, lots, before in (("alice", 600, alice_before), ("carol", 400, carol_before))
        ),
        "",
        f"`socialized_loss` records {usd(loss)} USDC; the residue gained "
        f"{after.accounts[RESIDUE_ACCOUNT].balance('USDC') - residue_before} minor units of "
        "rounding. Every holder was paid exactly once and nothing is left open "
        "(INV-EXPIRY-FINAL).",
        "",
    ]


def netted_expiry_example() -> list[str]:
    """A solvent payer with no settlement cash: an advance, a claim, a debt, a keeper."""
    state = market(
        [
            (open_account("carol"), OK),
            (deposit("carol", BTC_MINOR, asset="BTC"), OK),
            (open_account("dave"), OK),
            (deposit("dave", 10_000 * USDC), OK),
            (open_account("keeper"), OK),
            (deposit("keeper", 100_000 * USDC), OK),
            (fund_insurance(200 * USDC), OK),
            (trade("c1", "dave", "carol", 100, 9_000_000, instrument="BTC-FUT"), OK),
            *walk("BTC", 9_400_000, 1_500),
            (price("BTC", 9_400_000, 11_000), OK),
        ]
    )
    settlement = state.settlement_prices["BTC@10000"]
    owed = 100 * (settlement - 9_000_000) * 10
    expiry = step(state, expire("BTC-FUT"))
    settled = expiry.state
    advance = sum(p.amount_minor for p in expiry.postings if p.code is sk.PostingCode.ADVANCE)
    claim = settled.accounts["dave"].claim_minor
    debt = settled.accounts["carol"].debt_minor
    keeper = step(
        settled, sk.Liquidate(principal="keeper", account="carol", liquidator="keeper")
    )
    sold = sum(
        p.amount_minor
        for p in keeper.postings
        if p.code is sk.PostingCode.COLLATERAL_SALE and p.asset == "BTC"
    )
    paid = sum(
        p.amount_minor
        for p in keeper.postings
        if p.code is sk.PostingCode.COLLATERAL_SALE and p.asset == "USDC"
    )
    repaid = sum(
        p.amount_minor for p in keeper.postings if p.code is sk.PostingCode.DEBT_REPAYMENT
    )
    claim_paid = sum(
        p.amount_minor for p in keeper.postings if p.code is sk.PostingCode.CLAIM_PAYMENT
    )
    after = keeper.state
    discount = state.rules.asset_by_symbol["BTC"].liquidation_discount_ppm
    index = state.prices["BTC"].price_ticks
    return [
        "## 4. Expiry netted across collateral: a solvent payer short of cash",
        "",
        "carol posts 1 BTC and no USDC, and sells 0.1 BTC of the future (100 lots) to dave at "
        "90,000.00. The settlement price is fixed at "
        f"{ticks(settlement)}, so carol owes {usd(owed)} USDC. She has no USDC, but her BTC is "
        f"worth {ticks(index)} at the index: she is solvent, and nothing is socialised "
        "(INV-SOCIALISE-ONLY-DEFICIT). Instead (SK-DEBT):",
        "",
        f"* the fund advances what it holds, {usd(advance)}, and dave is paid it at once;",
        f"* dave holds a claim on the fund for the rest, {usd(claim)};",
        f"* carol owes the fund {usd(debt)}: a debt, which counts against her equity and makes "
        "her liquidatable until it is repaid.",
        "",
        "A keeper liquidates carol. Her only position is gone, so the ladder sells collateral "
        f"only: {format_minor(sold, 8)} BTC to the keeper at the index less the "
        f"{discount * 100 // 1_000_000} % liquidation discount, for {usd(paid)} USDC, just what "
        f"the debt needs (SK-WATERFALL-1). The debt is repaid ({usd(repaid)}) and the fund pays "
        f"dave's claim ({usd(claim_paid)}) in the same step. Afterwards carol holds "
        f"{format_minor(after.accounts['carol'].balance('BTC'), 8)} BTC and "
        f"{after.accounts['carol'].balance('USDC')} minor units of USDC, dave was paid "
        f"{usd(owed)} in all, the fund is back at "
        f"{usd(after.accounts[INSURANCE_ACCOUNT].balance('USDC'))}, and no debt or claim is "
        "left (INV-DEBT-BACKED). The keeper's gain on the BTC is the stated discount, no more "
        "(INV-LIQUIDATOR-GAIN).",
        "",
    ]


def calendar_spread_example() -> list[str]:
    """A perpetual against a future: the grid sees nothing, the calendar charge does."""
    state = market(
        [
            (open_account("spread"), OK),
            (deposit("spread", 10_000 * USDC), OK),
            (trade("s1", "spread", "bob", 1_000, 9_000_000), OK),
            (trade("s2", "bob", "spread", 1_000, 9_000_000, instrument="BTC-FUT"), OK),
        ]
    )
    report = account_margin(state, state.accounts["spread"])
    (risk,) = report.underlyings
    worst = min(risk.pnl_minor)
    ppm = state.rules.underlying_by_symbol["BTC"].calendar_spread_ppm
    return [
        "## 5. A calendar spread needs margin",
        "",
        "spread deposits 10,000 USDC, buys 1 BTC of BTC-PERP and sells 1 BTC of the BTC "
        "future, both at 90,000.00. Both are valued at the one BTC index, so every scenario of "
        f"the grid nets them to nothing (the worst scenario P&L is {usd(worst)}); yet each "
        "settles at its own mark, and the future at its own expiry, so the spread carries "
        "basis risk. The calendar-spread charge (SK-PM-7) prices it: "
        f"{ppm * 100 // 1_000_000} % of the offsetting notional at the index.",
        "",
        "| scan loss | calendar charge | maintenance | initial |",
        "|---|---|---|---|",
        f"| {usd(risk.scan_loss_minor)} | {usd(risk.calendar_minor)} | "
        f"{usd(report.maintenance_minor)} | {usd(report.initial_minor)} |",
        "",
        "So spread cannot withdraw its collateral and leave the two legs on nothing: a "
        f"withdrawal that would leave less than {usd(report.initial_minor)} is refused "
        "(SK-MARGIN-2), and if the basis moves against one leg the account is liquidatable "
        "like any other.",
        "",
    ]


HEADER = [
    "# The loss waterfall, worked through",
    "",
    "<!-- Generated by tools/waterfall_example.py; tests/test_docs.py keeps it true. -->",
    "",
    "When an account loses more than it holds, the loss must land somewhere, in an order "
    "that is fixed in advance and that anyone can check. settlekernel's order:",
    "",
    "1. **The oracle gate.** No liquidation, trade or margin check on a stale, halted or "
    "too-volatile index (SK-ORACLE-4): a single bad print cannot trigger a liquidation.",
    "2. **Partial liquidation.** The smallest tenth-by-tenth share that restores initial "
    "margin, at the mark, with a penalty to the insurance fund that never worsens the "
    "account's margin ratio (SK-LIQ-3).",
    "3. **Full liquidation.** Everything, if the account can pay, selling only as much of "
    "its other collateral as its cash is short, at the index less the asset's liquidation "
    "discount, to the liquidator and then to the fund (SK-WATERFALL-1).",
    "4. **The backstop.** When no keeper can take an account, anyone may close it out once "
    "its equity is below 2/3 of maintenance: at the mark, against the opposite side in the "
    "ADL ranking, while it can still pay its own loss (SK-LIQ-6).",
    "5. **The insurance fund** pays a bankrupt account's shortfall, if it can (SK-LIQ-4).",
    "6. **Auto-deleveraging.** Otherwise the losing positions are closed against the "
    "opposite side at the bankruptcy price, most profitable and most levered first (SK-ADL).",
    "7. **Debts and claims.** A payer that is solvent but short of the settlement asset in "
    "a mark or an expiry is never socialised: the fund advances what it can, the receivers "
    "hold claims for the rest, and the payer owes the fund a debt, repaid when a keeper "
    "sells its collateral (SK-DEBT).",
    "8. **Socialisation**, of a true deficit only: at expiry, what the payer's whole account "
    "would not raise at liquidation and the fund cannot pay is cut from the receivers pro "
    "rata and recorded (SK-EXPIRY-3); in a bankruptcy, only claims its write-off leaves "
    "unbacked (INV-SOCIALISE-ONLY-DEFICIT).",
    "",
    "All amounts are USDC; BTC prices are in dollars and cents (one tick is 0.01).",
    "",
]


def backstop_example() -> list[str]:
    """No keeper can take thin: the backstop closes it against the short side at the mark."""
    state = market(
        [
            *(
                row
                for name, amount in (("thin", 10_000), ("carol", 10_000), ("dave", 20_000))
                for row in ((open_account(name), OK), (deposit(name, amount * USDC), OK))
            ),
            (trade("t1", "thin", "carol", 300, 9_000_000), OK),
            (trade("t2", "thin", "dave", 400, 9_000_000), OK),
            (trade("t3", "thin", "alice", 300, 9_000_000), OK),
            (trade("t4", "bob", "alice", 200, 9_000_000), OK),
        ]
    )
    early = run_table(walk("BTC", 8_550_000, 2_000, rounds=2), state)
    early_report = account_margin(early, early.accounts["thin"])
    refused = sk.step(early, sk.Backstop(principal="anyone", account="thin"))
    assert isinstance(refused, sk.Rejected)
    state = run_table(walk("BTC", 8_400_000, 2_000, rounds=3), state)
    before = account_margin(state, state.accounts["thin"])
    threshold = before.maintenance_minor * state.rules.backstop_equity_ppm // 1_000_000
    outcome = step(state, sk.Backstop(principal="anyone", account="thin"))
    after = outcome.state
    lines = [
        "## 6. The backstop: when no keeper can take the account",
        "",
        "The same book as in section 2, but no keeper has the margin to take thin's 1,000 "
        "lots (every `Liquidate` is refused with `margin_insufficient`), and the fund is "
        "empty. At 85,500.00 thin is below maintenance (equity "
        f"{usd(early_report.equity_minor)} against {usd(early_report.maintenance_minor)}), but "
        "not below two thirds of it, so `Backstop` is refused (`not_liquidatable`): that "
        "window is the keepers' (SK-LIQ-6).",
        "",
        f"At 84,000.00 its equity is {usd(before.equity_minor)}, below "
        f"{usd(threshold)} (2/3 of its maintenance of {usd(before.maintenance_minor)}). "
        "Anyone may now submit `Backstop`. Every position closes at the mark against the "
        "opposite side in the ADL ranking, carol and dave first, then alice for the lots "
        "still needed; each is paid its profit at the mark in full, and thin pays the "
        "1.5 % penalty to the fund from what it has left:",
        "",
        "| account | lots before | lots after | cash change |",
        "|---|---|---|---|",
    ]
    for holder in ("thin", "carol", "dave", "alice", "bob", INSURANCE_ACCOUNT):
        old = state.accounts[holder].positions.get("BTC-PERP")
        new = after.accounts[holder].positions.get("BTC-PERP")
        change = after.accounts[holder].balance("USDC") - state.accounts[holder].balance("USDC")
        sign = "+" if change > 0 else ""
        lines.append(
            f"| {holder} | {0 if old is None else old.quantity_lots:,} | "
            f"{0 if new is None else new.quantity_lots:,} | {sign}{usd(change)} |"
        )
    lines += [
        "",
        "No loss reaches the fund or the winners: the account still paid its own. Had "
        "nobody acted until bankruptcy, the fund would have paid the difference, and a "
        "self-trader holding both sides would have collected it; that is the attack the "
        "adversarial search found and the backstop closes "
        "(`tests/test_attacker.py`). The fund never takes the positions over: it would then "
        "hold the exposure the other side profits from.",
        "",
    ]
    return lines


def main() -> None:
    lines = (
        HEADER
        + partial_example()
        + adl_example()
        + expiry_example()
        + netted_expiry_example()
        + calendar_spread_example()
        + backstop_example()
    )
    sys.stdout.write("\n".join(lines).rstrip("\n") + "\n")


if __name__ == "__main__":
    main()
