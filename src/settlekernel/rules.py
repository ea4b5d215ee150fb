"""Rule-set checks, canonical encoding and the TOML form (spec/10-containers.md#ruleset).

A rules file overrides the defaults: top-level values replace theirs, ``[roles]`` replaces
the roles it names, and ``[assets.SYMBOL]`` / ``[underlyings.SYMBOL]`` tables add or amend
one entry each (a new entry must give every key). Unknown keys, floats, booleans and
strings where a number belongs are errors, never silently ignored.
"""

from __future__ import annotations

import hashlib
import tomllib
from typing import Any, Final

import attrs

from settlekernel.model import DEFAULT_RULES, AssetRules, Roles, RuleSet, UnderlyingRules
from settlekernel.units import PPM, TIMESTAMP_LIMIT_MS, VALUE_LIMIT, is_identifier

DECIMALS_MAX: Final = 30
# Ten times the scan range at most: no scenario may reach a price of zero or below.
_SCENARIO_SHARE_MAX: Final = PPM - 1
_LIMITS: Final = (
    "accounts_max",
    "instruments_max",
    "positions_per_account_max",
    "position_lots_max",
    "price_ticks_max",
    "multiplier_minor_max",
    "price_history_max",
    "price_history_interval_ms",
)
_INT_SCALARS: Final = ("fee_rate_max_ppm", *_LIMITS)
_ASSET_INTS: Final = ("decimals", "haircut_ppm")
_ASSET_FIELDS: Final = (*_ASSET_INTS, "price_underlying")
_UNDERLYING_FIELDS: Final = (
    "tick_value_minor",
    "scan_range_ppm",
    "vol_up_ppm",
    "vol_down_ppm",
    "extreme_multiple_ppm",
    "extreme_weight_ppm",
    "short_option_minimum_ppm",
    "im_multiplier_ppm",
    "lookahead_ms",
    "min_sources",
    "stale_after_ms",
    "band_ppm",
    "mark_band_ppm",
    "funding_interval_ms",
    "funding_clamp_ppm",
    "liquidation_penalty_ppm",
    "settlement_window_ms",
)


class RulesError(ValueError):
    """A rules file or rule set that cannot be used; the message names the key."""


def check_rules(rules: RuleSet) -> list[str]:
    """Return every reason ``rules`` is unusable (SK-RULES-1..3); empty when it is sound."""
    problems: list[str] = []
    problems += _check_identifiers("asset", [asset.symbol for asset in rules.assets])
    problems += _check_identifiers("underlying", [u.symbol for u in rules.underlyings])
    for asset in rules.assets:
        problems += _check_asset(asset, rules)
    for underlying in rules.underlyings:
        problems += _check_underlying(underlying)
        problems += _check_oracle(underlying, len(set(rules.roles.oracles)))
        # The history must hold a whole settlement window of samples (SK-EXPIRY-2).
        needed = underlying.settlement_window_ms // max(rules.price_history_interval_ms, 1) + 2
        if rules.price_history_max < needed:
            problems.append(
                f"underlying {underlying.symbol}: price_history_max {rules.price_history_max} "
                f"holds less than its settlement window ({needed} samples)"
            )
    roles = rules.roles
    principals = [roles.operator, *roles.oracles, *roles.matchers]
    problems += [
        f"role principal {p!r} is not an identifier" for p in principals if not is_identifier(p)
    ]
    if not roles.oracles:
        problems.append("roles.oracles is empty: no price could ever be accepted")
    if not roles.matchers:
        problems.append("roles.matchers is empty: no trade could ever be accepted")
    if not 0 <= rules.fee_rate_max_ppm <= PPM:
        problems.append(f"fee_rate_max_ppm {rules.fee_rate_max_ppm} outside [0, {PPM}]")
    for name in _LIMITS:
        value = getattr(rules, name)
        if not 1 <= value < VALUE_LIMIT:
            problems.append(f"{name} {value} outside [1, 2**96)")
    return problems


def _check_identifiers(what: str, symbols: list[str]) -> list[str]:
    problems = [
        f"{what} symbol {s!r} is not an identifier" for s in symbols if not is_identifier(s)
    ]
    if len(set(symbols)) != len(symbols):
        problems.append(f"{what} symbols are not unique: {sorted(symbols)}")
    return problems


def _check_asset(asset: AssetRules, rules: RuleSet) -> list[str]:
    name = f"asset {asset.symbol}"
    problems = []
    if not 0 <= asset.decimals <= DECIMALS_MAX:
        problems.append(f"{name}: decimals {asset.decimals} outside [0, {DECIMALS_MAX}]")
    if not 0 <= asset.haircut_ppm <= PPM:
        problems.append(f"{name}: haircut_ppm {asset.haircut_ppm} outside [0, {PPM}]")
    # [SK-RULES-3] The valuation asset is worth exactly itself: no price, no haircut.
    if asset.symbol == rules.valuation_asset:
        if asset.price_underlying is not None or asset.haircut_ppm != 0:
            problems.append(f"{name}: the valuation asset takes no price_underlying or haircut")
    elif asset.price_underlying is not None and (
        asset.price_underlying not in rules.underlying_by_symbol
    ):
        problems.append(f"{name}: price_underlying {asset.price_underlying} is not an underlying")
    return problems


def _check_underlying(underlying: UnderlyingRules) -> list[str]:
    name = f"underlying {underlying.symbol}"
    problems = [
        f"{name}: {field} {getattr(underlying, field)} outside [0, {PPM}]"
        for field in ("vol_down_ppm", "extreme_weight_ppm", "short_option_minimum_ppm")
        if not 0 <= getattr(underlying, field) <= PPM
    ]
    problems += [
        f"{name}: {field} {getattr(underlying, field)} outside [0, 2**96)"
        for field in ("tick_value_minor", "vol_up_ppm", "lookahead_ms")
        if not 0 <= getattr(underlying, field) < VALUE_LIMIT
    ]
    if not 0 < underlying.scan_range_ppm < PPM:
        problems.append(f"{name}: scan_range_ppm {underlying.scan_range_ppm} outside (0, {PPM})")
    if not PPM <= underlying.extreme_multiple_ppm < VALUE_LIMIT:
        problems.append(f"{name}: extreme_multiple_ppm below {PPM} (the scan range)")
    elif underlying.scan_range_ppm * underlying.extreme_multiple_ppm // PPM > _SCENARIO_SHARE_MAX:
        problems.append(f"{name}: the extreme scenario moves the price by 100 % or more")
    # [SK-RULES-2] Initial margin is at least maintenance margin, or an account could be
    # liquidatable the moment a trade is accepted.
    if not PPM <= underlying.im_multiplier_ppm < VALUE_LIMIT:
        problems.append(
            f"{name}: im_multiplier_ppm {underlying.im_multiplier_ppm} below {PPM}: "
            "initial margin would fall below maintenance"
        )
    return problems


def _check_oracle(underlying: UnderlyingRules, sources: int) -> list[str]:
    """The oracle, funding, liquidation and expiry parameters (SK-RULES-4)."""
    name = f"underlying {underlying.symbol}"
    problems = []
    if not 1 <= underlying.min_sources <= max(sources, 1):
        problems.append(
            f"{name}: min_sources {underlying.min_sources} outside [1, {sources}]"
            " (the number of oracle sources)"
        )
    if not 0 < underlying.band_ppm < PPM:
        problems.append(f"{name}: band_ppm {underlying.band_ppm} outside (0, {PPM})")
    problems += [
        f"{name}: {field} {getattr(underlying, field)} outside [0, {PPM}]"
        for field in ("mark_band_ppm", "funding_clamp_ppm", "liquidation_penalty_ppm")
        if not 0 <= getattr(underlying, field) <= PPM
    ]
    problems += [
        f"{name}: {field} {getattr(underlying, field)} outside [1, 2**63)"
        for field in ("stale_after_ms", "funding_interval_ms", "settlement_window_ms")
        if not 1 <= getattr(underlying, field) < TIMESTAMP_LIMIT_MS
    ]
    return problems


def encode_rules(rules: RuleSet) -> bytes:
    """Return the canonical byte encoding of a rule set (sorted, one line per entry)."""
    lines = [
        f"asset {a.symbol} decimals={a.decimals} haircut_ppm={a.haircut_ppm} "
        f"price_underlying={a.price_underlying or '-'}"
        for a in sorted(rules.assets, key=lambda a: a.symbol)
    ]
    lines += [
        f"underlying {u.symbol} "
        + " ".join(f"{field}={getattr(u, field)}" for field in _UNDERLYING_FIELDS)
        for u in sorted(rules.underlyings, key=lambda u: u.symbol)
    ]
    lines.append(
        f"roles operator={rules.roles.operator} "
        f"oracles={','.join(sorted(rules.roles.oracles))} "
        f"matchers={','.join(sorted(rules.roles.matchers))}"
    )
    lines += [f"{name}={getattr(rules, name)}" for name in _INT_SCALARS]
    lines.append(f"valuation_asset={rules.valuation_asset}")
    return ("\n".join(lines) + "\n").encode()


def rules_digest(rules: RuleSet) -> bytes:
    """Return the SHA-256 of the canonical encoding: the rule set's identity."""
    return hashlib.sha256(b"settlekernel/rules/v3\n" + encode_rules(rules)).digest()


def parse_rules_toml(text: str, base: RuleSet = DEFAULT_RULES, *, check: bool = True) -> RuleSet:
    """Parse a rules file over ``base``; raise ``RulesError`` naming the first bad key.

    With ``check=False`` a well-formed but unsound rule set (SK-RULES) is returned anyway:
    ``settlekernel verify`` loads it so that the theorems can show what it breaks.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise RulesError(f"rules file is not valid TOML: {error}") from error
    _reject_unknown(
        "rules", document, {*_INT_SCALARS, "valuation_asset", "roles", "assets", "underlyings"}
    )
    scalars: dict[str, Any] = {
        name: _integer(name, document[name]) for name in _INT_SCALARS if name in document
    }
    if "valuation_asset" in document:
        scalars["valuation_asset"] = _string("valuation_asset", document["valuation_asset"])
    rules = attrs.evolve(base, **scalars)
    rules = attrs.evolve(rules, roles=_parse_roles(document.get("roles", {}), rules.roles))
    assets = {a.symbol: a for a in rules.assets}
    for symbol, table in _tables("assets", document.get("assets", {})).items():
        _reject_unknown(f"assets.{symbol}", table, set(_ASSET_FIELDS))
        assets[symbol] = AssetRules(symbol=symbol, **_asset_fields(symbol, table, assets))
    underlyings = {u.symbol: u for u in rules.underlyings}
    for symbol, table in _tables("underlyings", document.get("underlyings", {})).items():
        where = f"underlyings.{symbol}"
        _reject_unknown(where, table, set(_UNDERLYING_FIELDS))
        fields = _merged(where, table, underlyings.get(symbol), _UNDERLYING_FIELDS)
        underlyings[symbol] = UnderlyingRules(symbol=symbol, **fields)
    rules = attrs.evolve(
        rules,
        assets=tuple(sorted(assets.values(), key=lambda a: a.symbol)),
        underlyings=tuple(sorted(underlyings.values(), key=lambda u: u.symbol)),
    )
    problems = check_rules(rules) if check else []
    if problems:
        raise RulesError("rules are unsound: " + "; ".join(problems))
    return rules


def _asset_fields(
    symbol: str, table: dict[str, Any], assets: dict[str, AssetRules]
) -> dict[str, Any]:
    where = f"assets.{symbol}"
    current = assets.get(symbol)
    fields = _merged(where, table, current, _ASSET_INTS)
    if "price_underlying" in table:
        value = table["price_underlying"]
        fields["price_underlying"] = (
            None if value == "" else _string(f"{where}.price_underlying", value)
        )
    else:
        fields["price_underlying"] = None if current is None else current.price_underlying
    return fields


def _reject_unknown(where: str, table: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise RulesError(f"{where}: unknown key {unknown[0]!r} (allowed: {sorted(allowed)})")


def _integer(key: str, value: object) -> int:
    if type(value) is not int:
        raise RulesError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
    return value


def _string(key: str, value: object) -> str:
    if type(value) is not str:
        raise RulesError(f"{key}: expected a string, got {type(value).__name__} {value!r}")
    return value


def _tables(key: str, value: object) -> dict[str, dict[str, Any]]:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise RulesError(f"{key}: expected tables such as [{key}.SYMBOL]")
    return value


def _merged(
    where: str, table: dict[str, Any], current: object | None, names: tuple[str, ...]
) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name in names:
        if name in table:
            fields[name] = _integer(f"{where}.{name}", table[name])
        elif current is not None:
            fields[name] = getattr(current, name)
        else:
            raise RulesError(f"{where}: missing key {name!r} for a new entry")
    return fields


def _parse_roles(table: object, current: Roles) -> Roles:
    if not isinstance(table, dict):
        raise RulesError("roles: expected a table")
    _reject_unknown("roles", table, {"operator", "oracles", "matchers"})
    operator = _string("roles.operator", table.get("operator", current.operator))
    lists: dict[str, tuple[str, ...]] = {}
    for name in ("oracles", "matchers"):
        value = table.get(name, list(getattr(current, name)))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RulesError(f"roles.{name}: expected a list of strings")
        lists[name] = tuple(value)
    return Roles(operator=operator, oracles=lists["oracles"], matchers=lists["matchers"])


def dump_rules_toml(rules: RuleSet) -> str:
    """Return a complete rules file for ``rules`` that ``parse_rules_toml`` reads back."""
    lines = [f"{name} = {getattr(rules, name)}" for name in _INT_SCALARS]
    lines.append(f'valuation_asset = "{rules.valuation_asset}"')
    roles = rules.roles
    lines += [
        "",
        "[roles]",
        f'operator = "{roles.operator}"',
        "oracles = [" + ", ".join(f'"{o}"' for o in roles.oracles) + "]",
        "matchers = [" + ", ".join(f'"{m}"' for m in roles.matchers) + "]",
    ]
    for asset in rules.assets:
        lines += [
            "",
            f"[assets.{asset.symbol}]",
            f"decimals = {asset.decimals}",
            f"haircut_ppm = {asset.haircut_ppm}",
            f'price_underlying = "{asset.price_underlying or ""}"',
        ]
    for u in rules.underlyings:
        lines += ["", f"[underlyings.{u.symbol}]"]
        lines += [f"{name} = {getattr(u, name)}" for name in _UNDERLYING_FIELDS]
    return "\n".join(lines) + "\n"
