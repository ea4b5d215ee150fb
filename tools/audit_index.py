"""Regenerate src/settlekernel/data/audit_index.json from spec/ and tests/ of this checkout.

The auditor's report reads its statement, predicate and test columns from that file, so an
installed package (which has no spec/ or tests/) reports the same as a checkout. Run this
after changing spec/60-invariants.md or a test's invariant IDs; tests/test_audit.py fails
until the shipped index is current. Usage: python tools/audit_index.py
"""

from __future__ import annotations

from pathlib import Path

from settlekernel.proofs.report import INDEX_FILE, build_index, index_text

CHECKOUT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    INDEX_FILE.write_text(index_text(build_index(CHECKOUT)), encoding="utf-8")
    print(f"wrote {INDEX_FILE}")
