"""Rules files: defaults overridden key by key, strict about everything else."""

from __future__ import annotations

import os
import subprocess
import sys

import attrs
import pytest

import settlekernel as sk
from settlekernel.core.rules_toml import RulesError, dump_rules_toml, parse_rules_toml

NEW_UNDERLYING = """
[underlyings.SOL]
tick_value_minor = 10000
scan_range_ppm = 150000
vol_up_ppm = 400000
vol_down_ppm = 300000
extreme_multiple_ppm = 2000000
extreme_weight_ppm = 350000
short_option_minimum_ppm = 15000
calendar_spread_ppm = 30000
im_multiplier_ppm = 1300000
lookahead_ms = 86400000
min_sources = 2
stale_after_ms = 60000
band_ppm = 80000
dispersion_band_ppm = 80000
mark_band_ppm = 10000
mark_window_ms = 300000
funding_interval_ms = 3600000
funding_clamp_ppm = 750
liquidation_penalty_ppm = 20000
settlement_window_ms = 1800000
"""


def test_empty_file_is_the_default_rule_set():
    """Reads an empty rules file as the built-in rule set."""
    assert parse_rules_toml("") == sk.RuleSet.default()


def test_dump_then_parse_round_trips():
    """Reads back exactly the rule set it printed, new entries included."""
    text = (
        "fee_rate_max_ppm = 77\n"
        + NEW_UNDERLYING
        + (
            '\n[assets.SOL]\ndecimals = 9\nhaircut_ppm = 250000\nprice_underlying = "SOL"\n'
            "liquidation_discount_ppm = 50000\n"
        )
    )
    rules = parse_rules_toml(text)
    assert parse_rules_toml(dump_rules_toml(rules)) == rules
    assert rules.underlying_by_symbol["SOL"].scan_range_ppm == 150_000
    assert rules.asset_by_symbol["SOL"].price_underlying == "SOL"
    assert rules.fee_rate_max_ppm == 77


def test_one_changed_rule_changes_the_digest():
    """Gives a rule set with one changed scan range another identity, keeping the rest."""
    changed = parse_rules_toml("[underlyings.BTC]\nscan_range_ppm = 90000\n")
    assert changed.underlying_by_symbol["BTC"].im_multiplier_ppm == 1_250_000
    assert changed.digest != sk.RuleSet.default().digest


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("fee_rate_max_ppm = 1.5", "expected an integer, got float"),
        ("fee_rate_max_ppm = true", "expected an integer, got bool"),
        ('fee_rate_max_ppm = "10"', "expected an integer, got str"),
        ("valuation_asset = 5", "valuation_asset: expected a string"),
        ("fee_rates = 1", "unknown key 'fee_rates'"),
        ("[underlyings.BTC]\nscan_range = 1", "underlyings.BTC: unknown key 'scan_range'"),
        ("[underlyings.SOL]\nscan_range_ppm = 1", "missing key 'tick_value_minor'"),
        ("[underlyings.BTC]\nim_multiplier_ppm = 900000", "initial margin would fall below"),
        ("[underlyings.BTC]\nscan_range_ppm = 600000", "moves the price by 100 % or more"),
        ("[underlyings.BTC]\nscan_range_ppm = 0", "scan_range_ppm 0 outside"),
        ("[assets.USDC]\nhaircut_ppm = 10", "valuation asset takes no price_underlying or haircut"),
        ('[assets.BTC]\nprice_underlying = "DOGE"', "price_underlying DOGE is not an underlying"),
        ("[assets.BTC]\nhaircut_ppm = 2000000", "haircut_ppm 2000000 outside"),
        ("[underlyings.BTC]\nmin_sources = 4", "min_sources 4 outside [1, 3]"),
        ("[underlyings.BTC]\nband_ppm = 0", "band_ppm 0 outside"),
        ("[underlyings.BTC]\nstale_after_ms = 0", "stale_after_ms 0 outside"),
        ("price_history_max = 10", "holds less than its settlement window (32 samples)"),
        ("[roles]\noracles = []", "roles.oracles is empty"),
        ("fee_rate_max_ppm = 2000000", "fee_rate_max_ppm 2000000 outside"),
        (
            "[assets.DOGE]\ndecimals = 31\nhaircut_ppm = 0\nliquidation_discount_ppm = 0",
            "decimals 31 outside",
        ),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_rules_are_refused_with_the_key_named(text, fragment):
    """Refuses an unusable rules file and names the offending key."""
    with pytest.raises(RulesError) as error:
        parse_rules_toml(text)
    assert fragment in str(error.value)


def test_genesis_refuses_unsound_rules():
    """Refuses to start a kernel whose initial margin would be below maintenance."""
    btc = attrs.evolve(sk.RuleSet.default().underlyings[0], im_multiplier_ppm=999_999)
    rules = attrs.evolve(sk.RuleSet.default(), underlyings=(btc,))
    with pytest.raises(ValueError, match="initial margin would fall below maintenance"):
        sk.genesis(rules)


def test_a_rules_file_with_a_huge_number_is_refused_under_any_limit():
    """Refuses a number of more than 78 digits before TOML converts it, whatever the limit."""
    script = (
        "from settlekernel.core.rules_toml import RulesError, parse_rules_toml\n"
        "try:\n"
        "    parse_rules_toml('fee_rate_max_ppm = ' + '9' * 5000)\n"
        "except RulesError as error:\n"
        "    print(error)\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONINTMAXSTRDIGITS": limit},
        ).stdout
        for limit in ("0", "4300")
    }
    assert outputs == {"rules file holds a number of more than 78 digits\n"}
