"""One module per event family: each ``process_*`` is a guard cascade, then a write phase.

collateral (accounts, deposits, withdrawals, transfers, the insurance fund), market
(listing, oracle prices and volatilities), trading (capture, novation, settlement),
variation (variation margin), funding, liquidation (and its waterfall helpers in
``waterfall``), expiry.
"""
