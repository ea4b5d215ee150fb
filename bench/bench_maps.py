"""Bare map-update loops: why the kernel keeps its state in ``immutables.Map``.

Every accepted step replaces a few entries of a persistent map (accounts, trades, dirty
leaves). This measures the raw cost of one such replacement on a 10,000-key map for
``immutables.Map.set``, ``pyrsistent.pmap().set`` and, as the floor, plain ``dict``
assignment, which a mutable ledger pays instead. ``rpds.HashTrieMap.insert`` is measured too
when ``rpds`` happens to be importable (it arrives with jsonschema in the test extra).

Run alone with ``python bench/bench_maps.py``; ``bench/run.py`` runs it first.
"""

from __future__ import annotations

import gc
import importlib
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

N_KEYS = 10_000
N_UPDATES = 200_000
REPEATS = 3


def _keys_and_order(n_keys: int, n_updates: int) -> tuple[list[str], list[str]]:
    keys = [f"acct-{i}" for i in range(n_keys)]
    order = random.Random(7).choices(keys, k=n_updates)
    return keys, order


def _set_loop(initial: Any, order: Sequence[str]) -> Callable[[], Any]:
    # Each update returns a new map and drops the old one, as a kernel step does.
    def loop() -> Any:
        current = initial
        for value, key in enumerate(order):
            current = current.set(key, value)
        return current

    return loop


def _insert_loop(initial: Any, order: Sequence[str]) -> Callable[[], Any]:
    # rpds spells the same operation ``insert``.
    def loop() -> Any:
        current = initial
        for value, key in enumerate(order):
            current = current.insert(key, value)
        return current

    return loop


def _dict_loop(initial: dict[str, int], order: Sequence[str]) -> Callable[[], Any]:
    def loop() -> Any:
        current = dict(initial)
        # The assignment loop is the measured operation, so it stays a loop.
        for value, key in enumerate(order):
            current[key] = value  # noqa: PERF403
        return current

    return loop


def _best_rate(loop: Callable[[], Any], n_updates: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        loop()
        best = min(best, time.perf_counter() - started)
    return n_updates / best


def measure(
    n_keys: int = N_KEYS, n_updates: int = N_UPDATES, repeats: int = REPEATS
) -> dict[str, float | None]:
    """Return updates per second for each map, None for one that is not installed."""
    keys, order = _keys_and_order(n_keys, n_updates)
    base = dict.fromkeys(keys, 0)
    results: dict[str, float | None] = {}
    immutables = importlib.import_module("immutables")
    results["immutables.Map.set"] = _best_rate(
        _set_loop(immutables.Map(base), order), n_updates, repeats
    )
    try:
        pyrsistent = importlib.import_module("pyrsistent")
    except ImportError:
        results["pyrsistent.pmap.set"] = None
    else:
        results["pyrsistent.pmap.set"] = _best_rate(
            _set_loop(pyrsistent.pmap(base), order), n_updates, repeats
        )
    try:
        rpds = importlib.import_module("rpds")
    except ImportError:
        results["rpds.HashTrieMap.insert"] = None
    else:
        results["rpds.HashTrieMap.insert"] = _best_rate(
            _insert_loop(rpds.HashTrieMap(base), order), n_updates, repeats
        )
    results["dict[key] = value"] = _best_rate(_dict_loop(base, order), n_updates, repeats)
    return results


def report(results: dict[str, float | None], n_keys: int = N_KEYS) -> None:
    """Print one line per map: updates per second and the slowdown against a dict."""
    floor = results["dict[key] = value"]
    print(f"Map update loop on a {n_keys:,}-key map (best of {REPEATS})")
    print(f"  {'map':<26} {'updates/s':>14} {'dict/map':>9}")
    for name, rate in results.items():
        if rate is None:
            package = name.split(".", maxsplit=1)[0]
            print(f"  {name:<26} {package + ' not installed':>24}")
            continue
        slowdown = "" if floor is None else f"{floor / rate:8.1f}x"
        print(f"  {name:<26} {rate:>14,.0f} {slowdown:>9}")


def main() -> None:
    """Measure and print the map-update table."""
    report(measure())


if __name__ == "__main__":
    main()
