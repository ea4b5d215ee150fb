"""Generated documentation stays true to the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("tool", "page"),
    [("margin_example.py", "margin.md"), ("waterfall_example.py", "waterfall.md")],
)
def test_generated_pages_are_what_the_kernel_computes(tool, page):
    """Ships each generated docs page exactly as its tool writes it today."""
    written = subprocess.run(
        [sys.executable, str(ROOT / "tools" / tool)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (ROOT / "docs" / page).read_text(encoding="utf-8") == written
