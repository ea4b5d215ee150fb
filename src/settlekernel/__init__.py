"""settlekernel: a formally specified post-trade kernel for crypto derivatives.

A pure functional core: ``step(state, event)`` returns ``Accepted(state', postings)`` or
``Rejected(reason, message)``, never raises, and mutates nothing. See README.md and spec/.

>>> import settlekernel as sk
>>> state = sk.genesis(sk.RuleSet.default())
>>> outcome = sk.step(state, sk.OpenAccount(principal="alice", account="alice-1"))
>>> isinstance(outcome, sk.Accepted)
True
"""

from settlekernel.account_margin import is_liquidatable, margin_report
from settlekernel.commitment import fold, recompute_root, state_root
from settlekernel.events import (
    Deposit,
    Event,
    Expire,
    Funding,
    FundInsurance,
    Liquidate,
    ListInstrument,
    OpenAccount,
    OraclePrice,
    OracleVolatility,
    Trade,
    Transfer,
    VariationMargin,
    Withdraw,
)
from settlekernel.invariants import (
    InvariantId,
    Violation,
    check_invariants,
    check_step,
)
from settlekernel.journal import Journal, JournalEntry
from settlekernel.kernel import apply_batch, genesis, step
from settlekernel.margin.portfolio import MarginReport
from settlekernel.model import (
    Account,
    AssetRules,
    IndexPrice,
    IndexVolatility,
    Instrument,
    InstrumentKind,
    OptionType,
    Position,
    Roles,
    RuleSet,
    State,
    UnderlyingRules,
)
from settlekernel.outcomes import Accepted, Outcome, Posting, PostingCode, Rejected
from settlekernel.reasons import Reason

__version__ = "0.1.0"

__all__ = [
    "Accepted",
    "Account",
    "AssetRules",
    "Deposit",
    "Event",
    "Expire",
    "FundInsurance",
    "Funding",
    "IndexPrice",
    "IndexVolatility",
    "Instrument",
    "InstrumentKind",
    "InvariantId",
    "Journal",
    "JournalEntry",
    "Liquidate",
    "ListInstrument",
    "MarginReport",
    "OpenAccount",
    "OptionType",
    "OraclePrice",
    "OracleVolatility",
    "Outcome",
    "Position",
    "Posting",
    "PostingCode",
    "Reason",
    "Rejected",
    "Roles",
    "RuleSet",
    "State",
    "Trade",
    "Transfer",
    "UnderlyingRules",
    "VariationMargin",
    "Violation",
    "Withdraw",
    "__version__",
    "apply_batch",
    "check_invariants",
    "check_step",
    "fold",
    "genesis",
    "is_liquidatable",
    "margin_report",
    "recompute_root",
    "state_root",
    "step",
]
