"""Rejection reasons, one enum in precedence order (spec/20-reasons.md).

Members are listed in descending precedence: when an event breaks several rules, the reason
listed first is the one returned, so a bad event always gets the same answer. Each
``process_*`` function checks its guards in this order; ``tests/test_tidy.py`` reads the
source of every transition and fails if a guard cascade names reasons out of order.

A reason's value is its stable wire code (snake_case). Precedence is the definition order,
not the value, so a later rule can insert a reason without renumbering anything.
"""

from __future__ import annotations

import enum


class Reason(enum.Enum):
    """Why an event was rejected. Definition order is precedence order."""

    # Shape: the event could not be read as a well-typed event.
    JSON_INVALID = "json_invalid"
    EVENT_TYPE_UNKNOWN = "event_type_unknown"
    FIELD_MISSING = "field_missing"
    FIELD_UNKNOWN = "field_unknown"
    FIELD_TYPE_INVALID = "field_type_invalid"
    ID_INVALID = "id_invalid"
    # Roles: system events need a principal that holds the role.
    PRINCIPAL_NOT_OPERATOR = "principal_not_operator"
    PRINCIPAL_NOT_ORACLE = "principal_not_oracle"
    PRINCIPAL_NOT_MATCHER = "principal_not_matcher"
    PRINCIPAL_NOT_SEQUENCER = "principal_not_sequencer"
    PRINCIPAL_NOT_GOVERNOR = "principal_not_governor"
    # Idempotency: a trade id settles at most once. A replay that differs in a field names
    # the first such field; an identical replay is `trade_exists`.
    TRADE_EXISTS_WITH_DIFFERENT_PRINCIPAL = "trade_exists_with_different_principal"
    TRADE_EXISTS_WITH_DIFFERENT_BUYER = "trade_exists_with_different_buyer"
    TRADE_EXISTS_WITH_DIFFERENT_SELLER = "trade_exists_with_different_seller"
    TRADE_EXISTS_WITH_DIFFERENT_INSTRUMENT = "trade_exists_with_different_instrument"
    TRADE_EXISTS_WITH_DIFFERENT_QUANTITY = "trade_exists_with_different_quantity"
    TRADE_EXISTS_WITH_DIFFERENT_PRICE = "trade_exists_with_different_price"
    TRADE_EXISTS_WITH_DIFFERENT_BUYER_FEE_RATE = "trade_exists_with_different_buyer_fee_rate"
    TRADE_EXISTS_WITH_DIFFERENT_SELLER_FEE_RATE = "trade_exists_with_different_seller_fee_rate"
    TRADE_EXISTS = "trade_exists"
    # A venue that governance suspended or removed submits nothing new; a replay of a trade
    # it settled before still gets the idempotency answer above.
    VENUE_SUSPENDED = "venue_suspended"
    # Ranges: each number within its documented bounds.
    AMOUNT_NOT_POSITIVE = "amount_not_positive"
    AMOUNT_TOO_LARGE = "amount_too_large"
    QUANTITY_NOT_POSITIVE = "quantity_not_positive"
    QUANTITY_TOO_LARGE = "quantity_too_large"
    PRICE_NOT_POSITIVE = "price_not_positive"
    PRICE_TOO_LARGE = "price_too_large"
    FEE_RATE_OUT_OF_RANGE = "fee_rate_out_of_range"
    VOLATILITY_OUT_OF_RANGE = "volatility_out_of_range"
    TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
    INSTRUMENT_SPEC_INVALID = "instrument_spec_invalid"
    # Relations between the fields of one event.
    SELF_TRADE = "self_trade"
    TRANSFER_TO_SAME_ACCOUNT = "transfer_to_same_account"
    SELF_LIQUIDATION = "self_liquidation"
    VENUE_INVALID = "venue_invalid"
    # [New in v6] A top-up's threshold outside [1e6, 1e8] ppm, or an asset that is not the
    # valuation asset (SK-INSTR-1).
    INSTRUCTION_INVALID = "instruction_invalid"
    # Existence: what the event names must (or must not) exist.
    ACCOUNT_EXISTS = "account_exists"
    INSTRUMENT_EXISTS = "instrument_exists"
    ASSET_UNKNOWN = "asset_unknown"
    UNDERLYING_UNKNOWN = "underlying_unknown"
    INSTRUMENT_UNKNOWN = "instrument_unknown"
    ACCOUNT_UNKNOWN = "account_unknown"
    VENUE_UNKNOWN = "venue_unknown"
    RULES_PROPOSAL_UNKNOWN = "rules_proposal_unknown"
    # [New in v6] No standing instruction is registered for the account (SK-INSTR-1).
    INSTRUCTION_UNKNOWN = "instruction_unknown"
    # Governance: one rule change at a time, noticed, sound (SK-GOV-3..5).
    RULES_CHANGE_PENDING = "rules_change_pending"
    RULES_NOTICE_TOO_SHORT = "rules_notice_too_short"
    RULES_INVALID = "rules_invalid"
    RULES_NOT_YET_EFFECTIVE = "rules_not_yet_effective"
    # Ownership: only an account's owner may debit it.
    PRINCIPAL_NOT_OWNER = "principal_not_owner"
    TRANSFER_OWNERS_DIFFER = "transfer_owners_differ"
    # An account trades only through venues its owner authorised (SK-VENUE-2).
    VENUE_NOT_AUTHORISED = "venue_not_authorised"
    # Market state.
    ORACLE_TIMESTAMP_NOT_NEWER = "oracle_timestamp_not_newer"
    TICK_NOT_NEWER = "tick_not_newer"
    INSTRUMENT_ALREADY_SETTLED = "instrument_already_settled"
    INSTRUMENT_EXPIRED = "instrument_expired"
    INSTRUMENT_NOT_EXPIRED = "instrument_not_expired"
    INSTRUMENT_NOT_MARKED_TO_MARKET = "instrument_not_marked_to_market"
    INSTRUMENT_NOT_PERPETUAL = "instrument_not_perpetual"
    PRICE_UNAVAILABLE = "price_unavailable"
    SETTLEMENT_PRICE_UNAVAILABLE = "settlement_price_unavailable"
    ORACLE_NOT_ADMISSIBLE = "oracle_not_admissible"
    FUNDING_TOO_EARLY = "funding_too_early"
    # Liquidation: only an account below maintenance, with something to close.
    NOTHING_TO_LIQUIDATE = "nothing_to_liquidate"
    NOT_LIQUIDATABLE = "not_liquidatable"
    LIQUIDATION_IN_GRACE = "liquidation_in_grace"
    # [New in v6] A top-up would move nothing: equity is not below its threshold, or the cap
    # or the source leaves nothing to move (SK-INSTR-3).
    NOTHING_TO_TOP_UP = "nothing_to_top_up"
    # [New in v6] The account's registered top-up could restore maintenance right now; run
    # it first (SK-INSTR-5).
    TOP_UP_AVAILABLE = "top_up_available"
    # Limits on what the event would create.
    ACCOUNT_LIMIT_REACHED = "account_limit_reached"
    INSTRUMENT_LIMIT_REACHED = "instrument_limit_reached"
    POSITION_COUNT_EXCEEDED = "position_count_exceeded"
    POSITION_TOO_LARGE = "position_too_large"
    VENUE_LIMIT_EXCEEDED = "venue_limit_exceeded"
    CUSTODY_LIMIT_EXCEEDED = "custody_limit_exceeded"
    # Funds and margin: checked last, on the would-be post-state.
    INSUFFICIENT_FUNDS = "insufficient_funds"
    VARIATION_MARGIN_SHORTFALL = "variation_margin_shortfall"
    MARGIN_INSUFFICIENT = "margin_insufficient"

    @property
    def precedence(self) -> int:
        """Return the reason's rank: 0 is the highest precedence."""
        return _PRECEDENCE[self]


_PRECEDENCE: dict[Reason, int] = {reason: rank for rank, reason in enumerate(Reason)}
