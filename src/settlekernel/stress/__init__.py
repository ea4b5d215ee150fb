"""The stress and contagion lab: Monte Carlo markets through the real kernel (spec/90-stress.md).

This package is shell, not core: it draws random numbers and uses floats for price paths.
Every price becomes integer ticks before it becomes an event, and every event goes through
``settlekernel.kernel.dispatch.step``.
"""
