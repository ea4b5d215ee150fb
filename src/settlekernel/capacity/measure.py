"""Measure the journal's service time per line and a durable commit's cost (SK-CAP-1).

Everything is measured on a real durable journal (a SQLite file in a scratch directory),
with ``time.perf_counter``. Pass 1 appends the lines one per batch: each append's time
``d_i`` is the line's whole cost, decoding, ``step``, its record, its roots and one commit.
Pass 2 appends the same lines in batches of ``WIDE_BATCH``: its total is the same work with
far fewer commits. The fixed cost of a commit is what the two passes differ by per commit
saved: per wide batch ``k`` of ``n_k`` lines taking ``W_k``, ``(sum(d_i) - W_k) / (n_k - 1)``,
and ``c0`` is the median of those; and a line's service time in a
batch is ``d_i - c0``. Each pass runs ``repeats`` times on fresh journals and each figure is
the median over them: a shared machine interrupts a run in bursts, and the median of a few
keeps a line's own cost while dropping most of that noise.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import attrs
import numpy as np

from settlekernel.core.rules import RuleSet
from settlekernel.journal.durable import DurableJournal

# Lines per batch of pass 2: enough that its commits are a small share of its time.
WIDE_BATCH: Final = 256


@attrs.frozen
class ServiceSample:
    """Each line's wire event type (``rejected`` if it was) and service time in seconds."""

    kinds: tuple[str, ...]
    seconds: tuple[float, ...]

    def by_kind(self) -> dict[str, list[float]]:
        """Return the service times grouped by event type."""
        found: dict[str, list[float]] = {}
        for kind, seconds in zip(self.kinds, self.seconds, strict=True):
            found.setdefault(kind, []).append(seconds)
        return found

    def mix(self) -> dict[str, float]:
        """Return each event type's share of the lines."""
        total = len(self.kinds)
        return {kind: len(times) / total for kind, times in self.by_kind().items()}


@attrs.frozen
class CommitCost:
    """A durable batch costs its lines' service times plus ``fixed_s``, once per commit."""

    fixed_s: float


def _kind(line: str, accepted: bool) -> str:
    if not accepted:
        return "rejected"
    kind: str = json.loads(line)["type"]
    return kind


def _pass(
    lines: Sequence[str], rules: RuleSet, size: int, directory: Path | None
) -> tuple[list[float], list[str]]:
    """Append ``lines`` in batches of ``size`` to a fresh journal; time each append."""
    seconds: list[float] = []
    kinds: list[str] = []
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        journal = DurableJournal.open(Path(scratch) / "measure.sqlite3", rules)
        try:
            for start in range(0, len(lines), size):
                began = time.perf_counter()
                executed = journal.append(lines[start : start + size])
                seconds.append(time.perf_counter() - began)
                kinds += [_kind(r.line, r.sequence is not None) for r in executed.records]
        finally:
            journal.close()
    return seconds, kinds


def measure(
    lines: Sequence[str], rules: RuleSet, *, repeats: int = 3, directory: Path | None = None
) -> tuple[ServiceSample, CommitCost]:
    """Return each line's service time in a batch and the commit's fixed cost (SK-CAP-1)."""
    if not lines:
        raise ValueError("there are no lines to measure")
    repeats = max(repeats, 1)
    singles = [_pass(lines, rules, 1, directory) for _ in range(repeats)]
    wides = [_pass(lines, rules, WIDE_BATCH, directory) for _ in range(repeats)]
    per_line = np.median(np.array([seconds for seconds, _ in singles]), axis=0)
    wide = np.median(np.array([seconds for seconds, _ in wides]), axis=0)
    # Per wide batch k of n_k lines: sum(d_i) - W_k = (n_k - 1) * c0; the median over k.
    estimates = [
        (float(per_line[k * WIDE_BATCH : (k + 1) * WIDE_BATCH].sum()) - float(w)) / (n - 1)
        for k, w in enumerate(wide)
        if (n := len(per_line[k * WIDE_BATCH : (k + 1) * WIDE_BATCH])) > 1
    ]
    fixed = max(float(np.median(estimates)), 0.0) if estimates else 0.0
    service = tuple(max(float(d) - fixed, 0.0) for d in per_line)
    return ServiceSample(tuple(singles[0][1]), service), CommitCost(fixed)
