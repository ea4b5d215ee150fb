"""The capacity model: order flow against settlement (spec/95-capacity.md, SK-CAP).

Shell, not core, like the stress lab: it reads the clock to measure the kernel's service
time per event type (``measure``), fits a queue of bursty arrivals served in durable batches
(``queueing``), and checks the model against a real load run that feeds a durable journal at
a set rate (``load``). ``flow`` is the built-in order flow it measures when no journal is
given.
"""
