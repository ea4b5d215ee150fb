"""Write docs/concepts/margin.md: a worked portfolio-margin example, every number from the engine.

The page is generated, and tests/test_docs.py fails if the committed page differs from what
this script writes, so the example cannot drift from the code. Run:

    python tools/margin_example.py > docs/concepts/margin.md
"""

from __future__ import annotations

import sys

import settlekernel as sk
from settlekernel.cli.display import format_minor
from settlekernel.core.scenarios import scenario_price_ticks
from settlekernel.core.units import PPM
from settlekernel.margin.black76 import black76
from settlekernel.margin.options import YEAR_MS
from settlekernel.margin.portfolio import Exposure, Market, Portfolio, compute_margin

RULES = sk.RuleSet.default()
BTC = RULES.underlying_by_symbol["BTC"]
DAY_MS = 86_400_000
EXPIRY_MS = 35 * DAY_MS
INDEX = 9_950_000
VOL_PPM = 600_000
K = sk.InstrumentKind


def usd(minor: int) -> str:
    return format_minor(minor, 6, places=2)


def instrument(
    name: str,
    kind: sk.InstrumentKind,
    strike: int | None = None,
    option_type: sk.OptionType | None = None,
) -> sk.Instrument:
    expiry = None if kind is K.PERPETUAL else EXPIRY_MS
    return sk.Instrument(name, kind, "BTC", "USDC", 10, expiry, strike, option_type, 0)


CALL = instrument("BTC-110000-C", K.OPTION, 11_000_000, sk.OptionType.CALL)
PUT = instrument("BTC-85000-P", K.OPTION, 8_500_000, sk.OptionType.PUT)
FUTURE = instrument("BTC-FUT", K.FUTURE)
STRANGLE = [Exposure(CALL, -1_000, 0), Exposure(PUT, -1_000, 0)]
HEDGED = [*STRANGLE, Exposure(FUTURE, 150, INDEX)]
MARKET = Market(clock_ms=0, index_ticks={"BTC": INDEX}, volatility_ppm={"BTC": VOL_PPM})
BALANCES = {"USDC": 2_000 * 10**6, "BTC": 10**8}


def report(exposures: list[Exposure]) -> sk.MarginReport:
    return compute_margin(Portfolio(BALANCES, exposures), MARKET, RULES, with_greeks=True)


def inputs_section() -> list[str]:
    years = EXPIRY_MS / YEAR_MS
    lines = [
        "## 1. The book and the market",
        "",
        "Carol posted 1 BTC and 2,000 USDC, sold 1 BTC of a 110,000 call and 1 BTC of an",
        "85,000 put (a short strangle, 1,000 lots each at 0.001 BTC a lot, so the multiplier is",
        "10 USDC-minor per lot per tick), and, after a rally, bought 0.15 BTC of the future (150",
        "lots) to hedge the delta she was left with. Both options expire in 35 days.",
        "",
        "| input | value |",
        "|---|---|",
        f"| BTC index (the forward) | {INDEX:,} ticks = {INDEX / 100:,.2f} USD |",
        f"| implied volatility | {VOL_PPM:,} ppm = {VOL_PPM / 10_000:g} % |",
        f"| time to expiry | 35 days = {years:.6f} years |",
        f"| scan range | {BTC.scan_range_ppm:,} ppm = +-{BTC.scan_range_ppm / 10_000:g} % |",
        f"| volatility shocks | x{1 + BTC.vol_up_ppm / PPM:g} up, x{1 - BTC.vol_down_ppm / PPM:g}"
        " down |",
        f"| extreme moves | +-{BTC.extreme_multiple_ppm / PPM:g} scan ranges, counted at"
        f" {BTC.extreme_weight_ppm / 10_000:g} % |",
        f"| look-ahead | {BTC.lookahead_ms // DAY_MS} day |",
        "",
        "Black-76 values now (F = index, zero rates), per BTC:",
        "",
        "| option | price (USD) | delta | gamma (per tick) | vega (USD per vol point) |",
        "|---|---|---|---|---|",
    ]
    for spec in (CALL, PUT):
        assert spec.strike_ticks is not None
        value = black76(
            INDEX, spec.strike_ticks, years, VOL_PPM / PPM, spec.option_type is sk.OptionType.CALL
        )
        lines.append(
            f"| {spec.id} | {float(value.price) / 100:,.2f} | {float(value.delta):.4f} | "
            f"{float(value.gamma):.3e} | {float(value.vega) / 100 / 100:,.2f} |"
        )
    return lines


def scenario_section(result: sk.MarginReport) -> list[str]:
    risk = result.underlyings[0]
    lines = [
        "",
        "## 2. Revaluing the book in 23 scenarios",
        "",
        "Each option is repriced at the scenario forward, the shocked volatility and one day",
        "closer to expiry; the future moves one for one. P&L is per scenario, in USDC, rounded",
        "down (against the account); the extreme rows count 35 % of their loss.",
        "",
        "| # | scenario | forward (USD) | strangle P&L | future P&L | book P&L | counted loss |",
        "|---|---|---|---|---|---|---|",
    ]
    strangle = report(STRANGLE).underlyings[0].pnl_minor
    for number, scenario in enumerate(risk.scenarios):
        forward = scenario_price_ticks(INDEX, scenario.move_ppm)
        future_pnl = 150 * 10 * (forward - INDEX)
        marker = " **worst**" if number == risk.worst_scenario else ""
        lines.append(
            f"| {number + 1} | {scenario.label} | {forward / 100:,.2f} | "
            f"{usd(strangle[number])} | {usd(future_pnl)} | {usd(risk.pnl_minor[number])} | "
            f"{usd(risk.weighted_loss_minor[number])}{marker} |"
        )
    return lines


def requirement_section(result: sk.MarginReport, unhedged: sk.MarginReport) -> list[str]:
    risk = result.underlyings[0]
    contingency_notional = 2 * 1_000 * 10 * INDEX
    return [
        "",
        "## 3. From the worst scenario to the requirement",
        "",
        "| step | value (USDC) |",
        "|---|---|",
        f"| worst counted loss (scan loss), scenario {risk.worst_scenario + 1}"
        f" | {usd(risk.scan_loss_minor)} |",
        f"| short-option contingency: 2 BTC short x 99,500 x 1 % ="
        f" ceil({contingency_notional:,} x 10,000 / 1e6) minor | {usd(risk.contingency_minor)} |",
        f"| **maintenance** = scan loss + contingency | **{usd(risk.maintenance_minor)}** |",
        f"| **initial** = ceil(maintenance x 1.25) | **{usd(risk.initial_minor)}** |",
        "",
        "Cross-margin at work: the same strangle without the future needs",
        f"{usd(unhedged.maintenance_minor)} maintenance and {usd(unhedged.initial_minor)} initial;",
        "margined leg by leg, the three positions would need",
        f"{usd(sum(report([e]).maintenance_minor for e in HEDGED))} maintenance.",
        "",
        "Net Greeks of the hedged book (USDC per tick of the index, per tick squared, per vol",
        "point, per day):",
        "",
        f"- delta {risk.delta_minor / 10**6:,.6f} per tick, that is"
        f" {risk.delta_minor / 10**6 * 100:,.4f} USDC per USD of BTC",
        f"- gamma {risk.gamma_minor / 10**6:.3e}",
        f"- vega {risk.vega_minor / 10**6 / 100:,.2f}",
        f"- theta {risk.theta_minor / 10**6 / 365:,.2f}",
    ]


def equity_section(result: sk.MarginReport) -> list[str]:
    btc_value = 10**8 * INDEX * 10_000 * (PPM - 100_000) // (10**8 * PPM)
    return [
        "",
        "## 4. Equity against the requirement",
        "",
        "| item | value (USDC) |",
        "|---|---|",
        f"| 2,000 USDC | {usd(2_000 * 10**6)} |",
        f"| 1 BTC at 99,500 less a 10 % haircut | {usd(btc_value)} |",
        f"| collateral | {usd(result.collateral_minor)} |",
        f"| unrealised P&L of the future (entered at the index) | {usd(result.unrealized_minor)} |",
        f"| value of the short options (a liability) | {usd(result.option_value_minor)} |",
        f"| **equity** | **{usd(result.equity_minor)}** |",
        "",
        f"Equity {usd(result.equity_minor)} >= initial {usd(result.initial_minor)}: carol may",
        "trade and withdraw down to that line. She becomes liquidatable if equity falls below",
        f"maintenance, {usd(result.maintenance_minor)}.",
    ]


def main() -> int:
    result, unhedged = report(HEDGED), report(STRANGLE)
    lines = [
        "# Portfolio margin, worked: a short strangle hedged with a future",
        "",
        "<!-- Generated by tools/margin_example.py; tests/test_docs.py keeps it in step. -->",
        "",
        "The rules are in [spec/50-margin.md](../../spec/50-margin.md). Every number below comes",
        "from `settlekernel.margin` with the default rule set; the same book is in the demo",
        "(`make demo`, account carol).",
        "",
        *inputs_section(),
        *scenario_section(result),
        *requirement_section(result, unhedged),
        *equity_section(result),
        "",
        "Reproduce it for any book with `settlekernel margin PORTFOLIO.json`.",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
