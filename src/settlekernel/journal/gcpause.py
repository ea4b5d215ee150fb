"""Keep CPython's cyclic collector out of a batch, with no global switch left behind.

A batch allocates many container objects (states, map nodes, records, postings) that live
at least until it commits. With the collector at its defaults, every 700 net allocations
start a young collection, and the survivors' promotions start full collections that
traverse every object alive: every state, map node and record of the batch, and the rest
of the heap. None of it is garbage, since the kernel makes no reference cycles.

``gc_paused()`` turns automatic collection off for the block and back on when the block
ends, however it ends, if and only if it was on when the first of the nested or concurrent
blocks began. Outside the blocks the embedder's settings are untouched, so there is nothing
to remember: a process that never enters the journal behaves as before. Whatever the block
made and dropped is collected by the first automatic collection after it, since CPython
keeps counting allocations while the collector is off.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final


class _Pause:
    """How many blocks are inside ``gc_paused`` and whether the collector was on before."""

    def __init__(self) -> None:
        self.lock: Final = threading.Lock()
        self.depth = 0
        self.was_enabled = False


_PAUSE: Final = _Pause()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Run the block with automatic cyclic collection off; restore the previous setting."""
    with _PAUSE.lock:
        if _PAUSE.depth == 0:
            _PAUSE.was_enabled = gc.isenabled()
            gc.disable()
        _PAUSE.depth += 1
    try:
        yield
    finally:
        with _PAUSE.lock:
            _PAUSE.depth -= 1
            if _PAUSE.depth == 0 and _PAUSE.was_enabled:
                gc.enable()
