"""What an installed package gives: its data, its extras' messages, an honest audit verdict.

The full check of a plain ``pip install .`` in a fresh environment is
``tools/package_check.py`` (``make package-check``, part of ``make test``); these tests run
the CLI in a process where the optional extras cannot be imported.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from settlekernel.proofs.report import build_index, index_text, shipped_index

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = ("matplotlib", "dask", "distributed", "crosshair")
# Runs the CLI with the optional extras made unimportable (find_spec returns None too).
WITHOUT_EXTRAS = (
    "import sys\n"
    f"for name in {OPTIONAL!r}:\n"
    "    sys.modules[name] = None\n"
    "from settlekernel.cli.main import main\n"
    "main(sys.argv[1:], prog_name='settlekernel')\n"
)


def without_extras(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS, *arguments],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
    )


def test_the_shipped_audit_index_is_current():
    """Ships the audit's spec and test columns exactly as spec/ and tests/ now say them."""
    current = index_text(build_index(ROOT))
    assert index_text(shipped_index()) == current, "run: python tools/audit_index.py"


def test_stress_without_matplotlib_names_the_extra_in_one_line(tmp_path):
    """Stops before running with one line naming settlekernel[plots], exit 2, no traceback."""
    result = without_extras("stress", "--paths", "1", "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert result.returncode == 2
    expected = (
        "error: settlekernel stress's plots (or pass --no-plots) needs matplotlib: "
        "pip install 'settlekernel[plots]'"
    )
    assert result.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "o").exists()


def test_sweep_on_a_scheduler_without_dask_names_the_extra(tmp_path):
    """Names settlekernel[dask] for --scheduler when Dask is missing, exit 2."""
    grid = tmp_path / "grid.toml"
    grid.write_text("[scenario]\npaths = 1\n", encoding="utf-8")
    result = without_extras(
        "sweep", "--grid", str(grid), "--no-plots", "--scheduler", "tcp://x:1", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "pip install 'settlekernel[dask]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_audit_without_crosshair_says_the_contracts_were_not_checked(tmp_path):
    """Never claims every contract passed when CrossHair is not installed."""
    page = tmp_path / "audit.html"
    result = without_extras("audit", "--html", str(page), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "CrossHair contracts NOT checked (CrossHair is not installed" in result.stdout
    assert "every CrossHair contract confirmed" not in result.stdout
    text = page.read_text(encoding="utf-8")
    assert "CrossHair contracts NOT checked" in text
    assert "data/audit_index.json" in text


def test_audit_with_crosshair_skipped_says_so(tmp_path):
    """Reports a zero CrossHair budget as skipped, not as confirmed."""
    result = subprocess.run(
        [sys.executable, "-m", "settlekernel", "audit", "--crosshair-timeout", "0"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "CrossHair contracts NOT checked (skipped with --crosshair-timeout 0)" in result.stdout


def test_the_license_file_is_the_one_pyproject_names():
    """Ships the Apache-2.0 text that pyproject.toml declares."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert {"Homepage", "Source", "Changelog"} <= set(project["urls"])
    assert (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").startswith("# Changelog")
