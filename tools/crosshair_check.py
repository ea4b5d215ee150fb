"""Run CrossHair over the kernel's contracts and print confirmed / not confirmed per function.

The checking lives in ``settlekernel.proofs.contracts`` (the audit report uses it too). Usage:

    python tools/crosshair_check.py [--timeout SECONDS] [MODULE.py ...]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from settlekernel.proofs.contracts import CONTRACT_MODULES, check, verdict

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    """Check every contract module; return a non-zero status on any problem."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=int, default=4, help="seconds per condition")
    parser.add_argument("modules", nargs="*", type=Path, default=list(CONTRACT_MODULES))
    arguments = parser.parse_args()
    failed = False
    for module in arguments.modules:
        started = time.monotonic()
        statuses, problems = check(module, arguments.timeout)
        elapsed = time.monotonic() - started
        shown = module.relative_to(ROOT) if module.is_relative_to(ROOT) else module
        print(f"CrossHair {shown} ({elapsed:.1f} s, {arguments.timeout} s per condition)")
        for function, results in sorted(statuses.items()):
            confirmed = results.count("confirmed")
            print(f"  {function:<32} {confirmed}/{len(results)} postconditions  {verdict(results)}")
        for problem in problems:
            print(f"  FAIL {problem}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
