"""The margin engine: Black-76, scenario portfolio margin, collateral (spec/50-margin.md).

The only package of settlekernel where floats are allowed; what leaves it for the ledger is
an integer, rounded against the account.
"""
