"""The journal keeps the cyclic GC out of a batch and leaves the embedder's setting as it was."""

from __future__ import annotations

import gc
import threading

import pytest

from journal_files import demo_lines
from settlekernel.journal import durable
from settlekernel.journal.gcpause import gc_paused


@pytest.fixture(autouse=True)
def _collector_on():
    """Each test starts with the collector on, and the process gets it back on."""
    gc.enable()
    yield
    gc.enable()


def test_the_block_runs_with_the_collector_off_and_restores_it():
    """Turns automatic collection off inside the block and back on after it."""
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_embedder_who_turned_the_collector_off_keeps_it_off():
    """Leaves the collector off after the block when it was off before."""
    gc.disable()
    with gc_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_nested_blocks_restore_only_when_the_outer_one_ends():
    """Keeps the collector off until the outermost block ends."""
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_is_restored_when_the_block_raises():
    """Restores the collector when the block ends in an exception."""
    with pytest.raises(ZeroDivisionError), gc_paused():
        _ = 1 / 0
    assert gc.isenabled()


def test_overlapping_blocks_in_two_threads_restore_the_collector_once_both_end():
    """Keeps the collector off while either thread is inside; on once both have left."""
    inside, release = threading.Barrier(2), threading.Event()
    seen: list[bool] = []

    def worker() -> None:
        with gc_paused():
            inside.wait()
            release.wait()
            seen.append(gc.isenabled())

    first = threading.Thread(target=worker)
    first.start()
    with gc_paused():
        inside.wait()
        release.set()
        first.join()
        seen.append(gc.isenabled())
    assert seen == [False, False]
    assert gc.isenabled()


def test_an_append_runs_with_the_collector_off_and_leaves_it_on(tmp_path, monkeypatch):
    """Executes and writes a batch with automatic collection off; the caller's setting after."""
    seen: list[bool] = []
    execute = durable.execute_batch

    def spy(*arguments):
        seen.append(gc.isenabled())
        return execute(*arguments)

    monkeypatch.setattr(durable, "execute_batch", spy)
    journal = durable.DurableJournal.open(tmp_path / "journal.db")
    try:
        journal.append(demo_lines()[:10])
    finally:
        journal.close()
    assert seen == [False]
    assert gc.isenabled()
