"""Generated documentation stays true to the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_margin_example_is_what_the_engine_computes():
    """Ships docs/margin.md exactly as tools/margin_example.py writes it today."""
    written = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "margin_example.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (ROOT / "docs" / "margin.md").read_text(encoding="utf-8") == written
