"""`python -m settlekernel`: the command line."""

from settlekernel.cli import main

main()
