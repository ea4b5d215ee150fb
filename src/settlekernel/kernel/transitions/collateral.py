"""Accounts and collateral: open, deposit, withdraw, transfer (spec/30-transitions.md).

Each ``process_*`` is a guard cascade in the precedence order of ``Reason``, then a point of
no return after which the transition only writes.
"""

from __future__ import annotations

from settlekernel.core.arith import apply_transfer
from settlekernel.core.events import Deposit, FundInsurance, OpenAccount, Transfer, Withdraw
from settlekernel.core.guards import check_ranges
from settlekernel.core.model import EMPTY_BALANCES, EMPTY_POSITIONS, Account, State, replace_state
from settlekernel.core.outcomes import Accepted, Outcome, Posting, PostingCode, Rejected
from settlekernel.core.reasons import Reason
from settlekernel.core.root import account_key, touch
from settlekernel.core.units import (
    EXTERNAL_ACCOUNT,
    INSURANCE_ACCOUNT,
    SYSTEM_ACCOUNTS,
    VALUE_LIMIT,
)
from settlekernel.kernel.ledger import with_balance, with_custody
from settlekernel.margin.accounts import (
    cache_margins,
    check_initial_margin,
    check_margin_admissible,
)


def process_open_account(state: State, event: OpenAccount) -> Outcome:
    """Open an account owned by the acting principal (SK-OPEN)."""
    # Verify the account id is free.
    if event.account in state.accounts:
        return Rejected(Reason.ACCOUNT_EXISTS, f"account {event.account} already exists")
    # Verify the kernel has room for another account.
    if len(state.accounts) - len(SYSTEM_ACCOUNTS) >= state.rules.accounts_max:
        return Rejected(
            Reason.ACCOUNT_LIMIT_REACHED,
            f"the kernel holds accounts_max={state.rules.accounts_max} accounts",
        )
    # From here the event must succeed.
    account = Account(event.account, event.principal, EMPTY_BALANCES, EMPTY_POSITIONS)
    return Accepted(
        replace_state(
            state,
            accounts=state.accounts.set(event.account, account),
            commitment=touch(state.commitment, account_key(event.account)),
        ),
        (),
    )


def process_deposit(state: State, event: Deposit) -> Outcome:
    """Credit collateral that arrived from outside the kernel (SK-DEPOSIT)."""
    # Verify the amount is within bounds.
    rejection = check_ranges(event, state.rules)
    if rejection is not None:
        return rejection
    # Verify the asset and the account exist.
    if event.asset not in state.rules.asset_by_symbol:
        return Rejected(Reason.ASSET_UNKNOWN, f"asset {event.asset} is not in the rule set")
    account = state.accounts.get(event.account)
    if account is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.account} does not exist")
    # Verify the principal owns the account or is the operator crediting a custody receipt.
    if event.principal not in (account.owner, state.rules.roles.operator):
        return Rejected(
            Reason.PRINCIPAL_NOT_OWNER,
            f"principal {event.principal} neither owns account {event.account} nor is the operator",
        )
    # Verify the custody total stays below 2**96, which bounds every balance (SK-UNIT-1).
    custody_minor = state.custody.get(event.asset, 0) + event.amount_minor
    if custody_minor >= VALUE_LIMIT:
        return Rejected(
            Reason.CUSTODY_LIMIT_EXCEEDED,
            f"custody of {event.asset} would reach {custody_minor}, at or above 2**96",
        )
    # From here the event must succeed.
    credited = with_balance(account, event.asset, account.balance(event.asset) + event.amount_minor)
    return Accepted(
        replace_state(
            state,
            accounts=state.accounts.set(account.id, credited),
            custody=with_custody(state.custody, event.asset, custody_minor),
            commitment=touch(state.commitment, account_key(account.id)),
        ),
        (
            Posting(
                EXTERNAL_ACCOUNT, account.id, event.asset, event.amount_minor, PostingCode.DEPOSIT
            ),
        ),
    )


def process_fund_insurance(state: State, event: FundInsurance) -> Outcome:
    """Credit the insurance fund from outside the kernel: the operator seeds it (SK-INSURANCE-1)."""
    # Verify the principal is the operator.
    if event.principal != state.rules.roles.operator:
        return Rejected(
            Reason.PRINCIPAL_NOT_OPERATOR,
            f"principal {event.principal} is not the operator {state.rules.roles.operator}",
        )
    # Verify the amount is within bounds and the asset exists.
    rejection = check_ranges(event, state.rules)
    if rejection is not None:
        return rejection
    if event.asset not in state.rules.asset_by_symbol:
        return Rejected(Reason.ASSET_UNKNOWN, f"asset {event.asset} is not in the rule set")
    # Verify the custody total stays below 2**96 (SK-UNIT-1).
    custody_minor = state.custody.get(event.asset, 0) + event.amount_minor
    if custody_minor >= VALUE_LIMIT:
        return Rejected(
            Reason.CUSTODY_LIMIT_EXCEEDED,
            f"custody of {event.asset} would reach {custody_minor}, at or above 2**96",
        )
    # From here the event must succeed.
    fund = state.accounts[INSURANCE_ACCOUNT]
    credited = with_balance(fund, event.asset, fund.balance(event.asset) + event.amount_minor)
    return Accepted(
        replace_state(
            state,
            accounts=state.accounts.set(INSURANCE_ACCOUNT, credited),
            custody=with_custody(state.custody, event.asset, custody_minor),
            commitment=touch(state.commitment, account_key(INSURANCE_ACCOUNT)),
        ),
        (
            Posting(
                EXTERNAL_ACCOUNT,
                INSURANCE_ACCOUNT,
                event.asset,
                event.amount_minor,
                PostingCode.DEPOSIT,
            ),
        ),
    )


def process_withdraw(state: State, event: Withdraw) -> Outcome:
    """Pay collateral out of an account to its owner (SK-WITHDRAW)."""
    # Verify the amount is within bounds.
    rejection = check_ranges(event, state.rules)
    if rejection is not None:
        return rejection
    # Verify the asset and the account exist.
    if event.asset not in state.rules.asset_by_symbol:
        return Rejected(Reason.ASSET_UNKNOWN, f"asset {event.asset} is not in the rule set")
    account = state.accounts.get(event.account)
    if account is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.account} does not exist")
    # Verify only the owner debits the account.
    if event.principal != account.owner:
        return Rejected(
            Reason.PRINCIPAL_NOT_OWNER,
            f"principal {event.principal} does not own account {event.account}",
        )
    # Verify the oracle admits the margin check the withdrawal needs (SK-ORACLE-5).
    rejection = check_margin_admissible(state, account)
    if rejection is not None:
        return rejection
    # Verify the balance covers the amount.
    balance_minor = account.balance(event.asset)
    if balance_minor < event.amount_minor:
        return Rejected(
            Reason.INSUFFICIENT_FUNDS,
            f"account {account.id} holds {balance_minor} {event.asset}, "
            f"cannot withdraw {event.amount_minor}",
        )
    # Verify the account still meets initial margin afterwards, all its collateral and all
    # its positions together (cross-margin, SK-MARGIN-2).
    debited = with_balance(account, event.asset, balance_minor - event.amount_minor)
    rejection, entry = check_initial_margin(state, debited)
    if rejection is not None:
        return rejection
    # From here the event must succeed.
    custody_minor = state.custody[event.asset] - event.amount_minor
    return Accepted(
        replace_state(
            state,
            accounts=state.accounts.set(account.id, debited),
            custody=with_custody(state.custody, event.asset, custody_minor),
            commitment=touch(state.commitment, account_key(account.id)),
            margins=cache_margins(state, [entry]),
        ),
        (
            Posting(
                account.id, EXTERNAL_ACCOUNT, event.asset, event.amount_minor, PostingCode.WITHDRAW
            ),
        ),
    )


def process_transfer(state: State, event: Transfer) -> Outcome:
    """Move collateral between two accounts of one owner (SK-TRANSFER)."""
    # Verify the amount is within bounds.
    rejection = check_ranges(event, state.rules)
    if rejection is not None:
        return rejection
    # Verify the transfer moves money between two different accounts.
    if event.source_account == event.target_account:
        return Rejected(
            Reason.TRANSFER_TO_SAME_ACCOUNT,
            f"source and target are both account {event.source_account}",
        )
    # Verify the asset and both accounts exist.
    if event.asset not in state.rules.asset_by_symbol:
        return Rejected(Reason.ASSET_UNKNOWN, f"asset {event.asset} is not in the rule set")
    source = state.accounts.get(event.source_account)
    if source is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.source_account} does not exist")
    target = state.accounts.get(event.target_account)
    if target is None:
        return Rejected(Reason.ACCOUNT_UNKNOWN, f"account {event.target_account} does not exist")
    # Verify the principal owns the source, and the target has the same owner.
    if event.principal != source.owner:
        return Rejected(
            Reason.PRINCIPAL_NOT_OWNER,
            f"principal {event.principal} does not own account {source.id}",
        )
    if target.owner != source.owner:
        return Rejected(
            Reason.TRANSFER_OWNERS_DIFFER,
            f"account {target.id} is owned by {target.owner}, not {source.owner}",
        )
    # Verify the oracle admits the margin check the transfer needs (SK-ORACLE-5).
    rejection = check_margin_admissible(state, source)
    if rejection is not None:
        return rejection
    # Verify the source balance covers the amount.
    source_minor = source.balance(event.asset)
    if source_minor < event.amount_minor:
        return Rejected(
            Reason.INSUFFICIENT_FUNDS,
            f"account {source.id} holds {source_minor} {event.asset}, "
            f"cannot transfer {event.amount_minor}",
        )
    # Verify the source still meets initial margin afterwards (cross-margin, SK-MARGIN-2).
    moved = apply_transfer(source_minor, target.balance(event.asset), event.amount_minor)
    debited = with_balance(source, event.asset, moved.source_minor)
    rejection, entry = check_initial_margin(state, debited)
    if rejection is not None:
        return rejection
    # From here the event must succeed.
    credited = with_balance(target, event.asset, moved.target_minor)
    with state.accounts.mutate() as accounts:
        accounts[source.id] = debited
        accounts[target.id] = credited
        new_accounts = accounts.finish()
    return Accepted(
        replace_state(
            state,
            accounts=new_accounts,
            commitment=touch(state.commitment, account_key(source.id), account_key(target.id)),
            margins=cache_margins(state, [entry]),
        ),
        (Posting(source.id, target.id, event.asset, event.amount_minor, PostingCode.TRANSFER),),
    )
