"""Outcomes of a step and the double-entry postings an accepted step makes."""

from __future__ import annotations

import enum
from typing import TypeAlias

import attrs

from settlekernel.core.model import State
from settlekernel.core.reasons import Reason


class PostingCode(enum.Enum):
    """Why money moved; every posting carries one."""

    DEPOSIT = "deposit"
    WITHDRAW = "withdraw"
    TRANSFER = "transfer"
    TRADE_SETTLEMENT = "trade_settlement"
    PREMIUM = "premium"
    FEE = "fee"
    ROUNDING = "rounding"
    VARIATION_MARGIN = "variation_margin"
    EXPIRY_SETTLEMENT = "expiry_settlement"
    INSURANCE = "insurance"
    COLLATERAL_SEIZURE = "collateral_seizure"
    COLLATERAL_RECOVERY = "collateral_recovery"
    LIQUIDATION = "liquidation"
    PENALTY = "penalty"
    COLLATERAL_SALE = "collateral_sale"
    ADL = "adl"
    ADVANCE = "advance"
    DEBT_REPAYMENT = "debt_repayment"
    CLAIM_PAYMENT = "claim_payment"
    # [New in v6] A standing top-up the kernel executed (SK-INSTR-3).
    TOP_UP = "top_up"


@attrs.frozen
class Posting:
    """Move ``amount_minor`` of ``asset`` from the debit account to the credit account.

    A posting is one double entry: the debit side loses exactly what the credit side gains,
    so the postings of any step sum to zero per asset by construction (SK-POST-1). The
    amount is always positive.
    """

    debit_account: str
    credit_account: str
    asset: str
    amount_minor: int
    code: PostingCode


@attrs.frozen
class Accepted:
    """The event was applied: the new state and the postings that took it there."""

    state: State = attrs.field(repr=False)
    postings: tuple[Posting, ...]


@attrs.frozen
class Rejected:
    """The event was refused; the state it was applied to is unchanged (INV-ATOMIC-REJECT)."""

    reason: Reason
    message: str


Outcome: TypeAlias = Accepted | Rejected
