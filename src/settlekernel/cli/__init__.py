"""The command line: ``settlekernel`` and its command groups (the shell, not the core).

``main`` holds the entry point and the kernel's own commands; ``journal``, ``proofs``,
``stress`` and ``sweep`` one command group each; ``display`` the terminal tables;
``demo`` the built-in session; ``portfolio_file`` the JSON portfolio ``margin`` reads.
"""
