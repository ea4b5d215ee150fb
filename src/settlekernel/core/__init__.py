"""The core: containers, events, outcomes, rules, integer arithmetic, oracle rules, the state root.

The lowest layer. Everything here is pure and imports nothing from any other settlekernel
package: the margin engine, the kernel's transitions, the journal, the proofs, the stress lab
and the command line all build on it (spec/README.md lists the layers).
"""
