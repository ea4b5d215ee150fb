"""settlekernel: a formally specified post-trade kernel for crypto derivatives.

A pure functional core: ``step(state, event)`` returns ``Accepted(state', postings)`` or
``Rejected(reason, message)``, never raises, and mutates nothing. See README.md and spec/.

>>> import settlekernel as sk
>>> state = sk.genesis(sk.RuleSet.default())
>>> outcome = sk.step(state, sk.OpenAccount(principal="alice", account="alice-1"))
>>> isinstance(outcome, sk.Accepted)
True
"""

from settlekernel.core.events import (
    AdmitVenue,
    ApplyRules,
    AuthorizeVenue,
    Backstop,
    CancelInstruction,
    CancelRulesChange,
    ChangeRules,
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
    RegisterTopUp,
    RemoveVenue,
    RestrictVenue,
    ResumeVenue,
    RevokeVenue,
    RunInstructions,
    SuspendVenue,
    Tick,
    Trade,
    Transfer,
    VariationMargin,
    Withdraw,
)
from settlekernel.core.kinds import InstrumentKind, OptionType
from settlekernel.core.model import (
    Account,
    Grant,
    IndexPrice,
    IndexVolatility,
    Instrument,
    Position,
    State,
    TopUp,
    Venue,
    VenueStatus,
)
from settlekernel.core.outcomes import Accepted, Outcome, Posting, PostingCode, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.reports import MarginReport
from settlekernel.core.root import fold, recompute_root, state_root
from settlekernel.core.rules import AssetRules, Roles, RuleSet, UnderlyingRules
from settlekernel.journal.memory import Journal, JournalEntry
from settlekernel.kernel.dispatch import apply_batch, genesis, step
from settlekernel.kernel.invariants import InvariantId, Violation, check_invariants, check_step
from settlekernel.margin.accounts import is_liquidatable, margin_report

__version__ = "0.1.0"

__all__ = [
    "Accepted",
    "Account",
    "AdmitVenue",
    "ApplyRules",
    "AssetRules",
    "AuthorizeVenue",
    "Backstop",
    "CancelInstruction",
    "CancelRulesChange",
    "ChangeRules",
    "Deposit",
    "Event",
    "Expire",
    "FundInsurance",
    "Funding",
    "Grant",
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
    "RegisterTopUp",
    "Rejected",
    "RemoveVenue",
    "RestrictVenue",
    "ResumeVenue",
    "RevokeVenue",
    "Roles",
    "RuleSet",
    "RunInstructions",
    "State",
    "SuspendVenue",
    "Tick",
    "TopUp",
    "Trade",
    "Transfer",
    "UnderlyingRules",
    "VariationMargin",
    "Venue",
    "VenueStatus",
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
