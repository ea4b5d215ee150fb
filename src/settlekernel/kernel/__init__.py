"""The kernel: ``step`` dispatches each event to its transition (spec/30-transitions.md).

``dispatch`` holds ``genesis``, ``step`` and ``apply_batch``; ``transitions/`` one module per
event family; ``ledger`` the balance and position updates they share; ``invariants`` the
predicates every state and step must satisfy (spec/60-invariants.md). Pure: no I/O, no
clock, no randomness. It builds on the core and the margin engine only.
"""
