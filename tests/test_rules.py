"""Rules files: defaults overridden key by key, strict about everything else."""

from __future__ import annotations

import pytest

import settlekernel as sk
from settlekernel.rules import RulesError, dump_rules_toml, parse_rules_toml


def test_empty_file_is_the_default_rule_set():
    """Reads an empty rules file as the built-in rule set."""
    assert parse_rules_toml("") == sk.RuleSet.default()


def test_dump_then_parse_round_trips():
    """Reads back exactly the rule set it printed."""
    rules = parse_rules_toml(
        "fee_rate_max_ppm = 77\n[underlyings.SOL]\nim_rate_ppm = 200000\n"
        "mm_rate_ppm = 100000\noption_short_im_rate_ppm = 250000\n"
    )
    assert parse_rules_toml(dump_rules_toml(rules)) == rules
    assert rules.underlying_by_symbol["SOL"].im_rate_ppm == 200_000
    assert rules.fee_rate_max_ppm == 77


def test_one_changed_rule_changes_the_digest():
    """Gives a rule set with one changed rate another identity."""
    changed = parse_rules_toml("[underlyings.BTC]\nim_rate_ppm = 90000\n")
    assert changed.underlying_by_symbol["BTC"].mm_rate_ppm == 50_000
    assert changed.digest != sk.RuleSet.default().digest


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("fee_rate_max_ppm = 1.5", "expected an integer, got float"),
        ("fee_rate_max_ppm = true", "expected an integer, got bool"),
        ('fee_rate_max_ppm = "10"', "expected an integer, got str"),
        ("fee_rates = 1", "unknown key 'fee_rates'"),
        ("[underlyings.BTC]\nim_rate = 1", "underlyings.BTC: unknown key 'im_rate'"),
        ("[underlyings.SOL]\nim_rate_ppm = 1", "missing key 'mm_rate_ppm'"),
        ("[underlyings.BTC]\nim_rate_ppm = 10000", "im_rate_ppm 10000 below mm_rate_ppm 50000"),
        ("[roles]\noracles = []", "roles.oracles is empty"),
        ("fee_rate_max_ppm = 2000000", "fee_rate_max_ppm 2000000 outside"),
        ("[assets.DOGE]\ndecimals = 31", "decimals 31 outside"),
        ("this is not toml", "not valid TOML"),
    ],
)
def test_bad_rules_are_refused_with_the_key_named(text, fragment):
    """Refuses an unusable rules file and names the offending key."""
    with pytest.raises(RulesError, match=None) as error:
        parse_rules_toml(text)
    assert fragment in str(error.value)


def test_genesis_refuses_unsound_rules():
    """Refuses to start a kernel on rules whose maintenance exceeds initial margin."""
    import attrs  # noqa: PLC0415

    btc = attrs.evolve(sk.RuleSet.default().underlyings[0], mm_rate_ppm=200_000)
    rules = attrs.evolve(sk.RuleSet.default(), underlyings=(btc,))
    with pytest.raises(ValueError, match="below mm_rate_ppm"):
        sk.genesis(rules)
