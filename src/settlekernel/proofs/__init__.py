"""Machine-checked invariants: z3 models of the transitions and the theorems over them.

``proofs/`` at the project root is this package (a symbolic link), so the installed
``settlekernel verify`` runs exactly the theorems an auditor reads there. See README.md.
"""
