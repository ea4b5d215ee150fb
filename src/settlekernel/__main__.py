"""`python -m settlekernel`: the command line."""

from settlekernel.cli.main import main

main()
