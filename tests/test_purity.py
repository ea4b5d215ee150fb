"""The core does no I/O, reads no clock and draws no randomness (SK-STEP-2).

A fresh interpreter imports everything, then installs an audit hook that fails on any file,
socket, process or environment access, and replaces the clocks and random sources with
functions that fail. It then runs the demo and a hostile batch through `step`, `fold`,
`state_root` and `check_invariants`. Any I/O, clock or randomness in the core would raise.
"""

from __future__ import annotations

import subprocess
import sys

from golden import DEMO_ROOT

SCRIPT = r"""
import os, random, sys, time
import settlekernel as sk
from settlekernel.cli.demo import demo_steps
from settlekernel.core.wire import decode_event

rules = sk.RuleSet.default()
rules.digest, rules.asset_by_symbol, rules.underlying_by_symbol  # warm the caches
events = [step.event for step in demo_steps()]
events += [None, "junk", sk.Deposit(principal="a", account="a", asset="USDC", amount_minor=1.5)]
lines = ['{"type":"deposit"', '{"type":"trade","principal":"venue"}']

def forbidden(*args, **kwargs):
    raise AssertionError("the core touched a clock or a random source")

for module, names in ((time, ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter",
                              "perf_counter_ns", "process_time", "localtime", "gmtime", "sleep")),
                      (random, ("random", "randint", "randrange", "choice", "shuffle",
                                "getrandbits", "uniform", "sample")),
                      (os, ("urandom", "getrandom", "getenv", "getpid"))):
    for name in names:
        if hasattr(module, name):
            setattr(module, name, forbidden)

BANNED = ("open", "os.", "socket.", "subprocess.", "shutil.", "sqlite3.", "urllib.",
          "ctypes.", "import", "compile", "exec")

def hook(event, args):
    if event.startswith(BANNED):
        raise AssertionError(f"the core performed {event} {args!r:.80}")

sys.addaudithook(hook)
state = sk.genesis(rules)
roots = []
for event in events:
    outcome = sk.step(state, event)
    if isinstance(outcome, sk.Accepted):
        state = sk.fold(outcome.state)
        roots.append(sk.state_root(state))
for line in lines:
    assert isinstance(decode_event(line), sk.Rejected)
assert sk.check_invariants(state) == []
print(len(roots), sk.state_root(state).hex())
"""


def test_core_is_pure_under_an_audit_hook():
    """Runs the demo with I/O, clocks and randomness forbidden, and gets the usual root."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    count, root = result.stdout.split()
    assert int(count) == 91  # The demo's accepted events.
    assert root == DEMO_ROOT


PLANTS = {
    "open": "lambda s, e: (open('/dev/null').close(), original(s, e))[1]",
    "clock": "lambda s, e: (time.time(), original(s, e))[1]",
}


def test_the_hook_would_notice_io_and_clocks():
    """Fails when a transition is made to open a file or read the clock (the check can fail)."""
    for name, planted_processor in PLANTS.items():
        plant = (
            "import settlekernel.kernel.dispatch as kernel\n"
            "original = kernel._PROCESSORS[sk.Deposit]\n"
            f"kernel._PROCESSORS[sk.Deposit] = {planted_processor}\n"
            "sys.addaudithook(hook)\n"
        )
        planted = SCRIPT.replace("sys.addaudithook(hook)\n", plant)
        result = subprocess.run(
            [sys.executable, "-c", planted], capture_output=True, text=True, check=False
        )
        assert result.returncode != 0, name
        assert "AssertionError: the core" in result.stderr, result.stderr
