"""A queue of bursty arrivals served in durable batches (SK-CAP-2 .. SK-CAP-4).

Arrivals (SK-CAP-2) come in bursts: burst epochs are a Poisson process of rate
``rate / burst``, a burst holds a geometric number of events of mean ``burst`` (on 1, 2, ...),
and a burst's events arrive together; ``burst = 1`` is a Poisson stream.

Service (SK-CAP-3) is one server, first come first served, batching as the journal does:
when the server is free it takes every event that has arrived, up to ``batch_max``
(waiting for the next arrival when none has), and the batch completes after its events'
service times plus a commit's ``fixed_s``. An event's latency is its
batch's completion time less its arrival time. ``simulate`` runs that recursion exactly;
with ``batch_max = 1`` it is an M^X/G/1 queue, whose mean latency is also given in closed
form by Pollaczek-Khinchine (``pk_mean_latency``), and the two are checked against each
other in the tests.

Capacity (SK-CAP-4): a saturated server always takes full batches, so latency diverges as
the rate approaches ``batch_max / (fixed_s + batch_max * E[s])``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from settlekernel.capacity.measure import CommitCost, ServiceSample

FloatArray = npt.NDArray[np.float64]
BATCH_SIZES: Final = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


@attrs.frozen
class Arrivals:
    """An arrival process: ``rate_per_s`` events per second in bursts of mean ``burst``."""

    rate_per_s: float
    burst: float = 1.0


@attrs.frozen
class Prediction:
    """What the model predicts for one arrival process and batch limit (seconds)."""

    rate_per_s: float
    batch_max: int
    utilisation: float
    mean_s: float
    p99_s: float
    capacity_per_s: float
    pk_mean_s: float | None
    stable: bool


def arrival_times(arrivals: Arrivals, n: int, rng: np.random.Generator) -> FloatArray:
    """Return ``n`` arrival times (seconds from 0, non-decreasing) of the process (SK-CAP-2)."""
    if arrivals.rate_per_s <= 0 or arrivals.burst < 1:
        raise ValueError("an arrival rate is positive and a burst holds at least one event")
    sizes = rng.geometric(1.0 / arrivals.burst, size=n)
    gaps = rng.exponential(arrivals.burst / arrivals.rate_per_s, size=n)
    epochs = np.cumsum(gaps)
    return np.repeat(epochs, sizes)[:n].astype(np.float64)


def service_draws(
    sample: ServiceSample, n: int, rng: np.random.Generator, mix: Mapping[str, float] | None
) -> FloatArray:
    """Draw ``n`` service times: from the whole sample, or by event type in ``mix``'s shares."""
    if mix is None:
        return rng.choice(np.array(sample.seconds, dtype=np.float64), size=n)
    grouped = sample.by_kind()
    unknown = sorted(set(mix) - set(grouped))
    if unknown:
        raise ValueError(f"no service times measured for {', '.join(unknown)}")
    kinds = sorted(mix)
    weights = np.array([mix[kind] for kind in kinds], dtype=np.float64)
    picks = rng.choice(len(kinds), size=n, p=weights / weights.sum())
    found = np.empty(n, dtype=np.float64)
    for index, kind in enumerate(kinds):
        chosen = picks == index
        found[chosen] = rng.choice(np.array(grouped[kind]), size=int(chosen.sum()))
    return found


def simulate(
    times: FloatArray, service: FloatArray, commit: CommitCost, batch_max: int
) -> tuple[FloatArray, float]:
    """Return each event's latency and the server's busy time (SK-CAP-3), exactly."""
    n = len(times)
    latency = np.empty(n, dtype=np.float64)
    prefix = np.concatenate(([0.0], np.cumsum(service)))
    free, busy, i = 0.0, 0.0, 0
    while i < n:
        start = max(free, float(times[i]))
        arrived = int(np.searchsorted(times, start, side="right"))
        j = min(max(arrived, i + 1), i + batch_max)
        work = commit.fixed_s + float(prefix[j] - prefix[i])
        free = start + work
        busy += work
        latency[i:j] = free - times[i:j]
        i = j
    return latency, busy


def capacity_per_s(mean_service_s: float, commit: CommitCost, batch_max: int) -> float:
    """Return the rate at which latency diverges with batches of at most ``batch_max``."""
    return batch_max / (commit.fixed_s + batch_max * mean_service_s)


def pk_mean_latency(arrivals: Arrivals, service: FloatArray, commit: CommitCost) -> float | None:
    """Return the M^X/G/1 mean latency for one event per commit, or None past capacity.

    ``W = E[S] + (lambda E[S^2] / 2 + E[S] (B - 1)) / (1 - rho)`` with ``S`` an event's step
    plus a whole commit, ``B`` the mean (geometric) burst and ``rho = lambda E[S]``.
    """
    per_event = service + commit.fixed_s
    mean, second = float(per_event.mean()), float((per_event**2).mean())
    rho = arrivals.rate_per_s * mean
    if rho >= 1:
        return None
    queued = arrivals.rate_per_s * second / 2 + mean * (arrivals.burst - 1)
    return mean + queued / (1 - rho)


def predict(  # noqa: PLR0913 (the process, the measurements and the run)
    arrivals: Arrivals,
    sample: ServiceSample,
    commit: CommitCost,
    batch_max: int,
    *,
    n: int = 100_000,
    seed: int = 0,
    mix: Mapping[str, float] | None = None,
) -> Prediction:
    """Simulate ``n`` arrivals with service drawn from the measured times (SK-CAP-3, -4)."""
    rng = np.random.default_rng([seed, 2])
    times = arrival_times(arrivals, n, rng)
    service = service_draws(sample, n, rng, mix)
    latency, busy = simulate(times, service, commit, batch_max)
    capacity = capacity_per_s(float(service.mean()), commit, batch_max)
    span = max(float(times[-1] + latency[-1]), 1e-12)
    return Prediction(
        rate_per_s=arrivals.rate_per_s,
        batch_max=batch_max,
        utilisation=busy / span,
        mean_s=float(latency.mean()),
        p99_s=float(np.percentile(latency, 99)),
        capacity_per_s=capacity,
        pk_mean_s=pk_mean_latency(arrivals, service, commit) if batch_max == 1 else None,
        stable=arrivals.rate_per_s < capacity,
    )


def best_batch(  # noqa: PLR0913 (the process, the measurements and the run)
    arrivals: Arrivals,
    sample: ServiceSample,
    commit: CommitCost,
    *,
    sizes: Sequence[int] = BATCH_SIZES,
    n: int = 50_000,
    mix: Mapping[str, float] | None = None,
) -> list[Prediction]:
    """Return the prediction per batch limit, lowest p99 first among the stable ones."""
    found = [predict(arrivals, sample, commit, size, n=n, mix=mix) for size in sizes]
    return sorted(found, key=lambda p: (not p.stable, p.p99_s, p.batch_max))


def rate_for_p99(  # noqa: PLR0913 (the target, the measurements and the run)
    p99_target_s: float,
    sample: ServiceSample,
    commit: CommitCost,
    batch_max: int,
    *,
    burst: float = 1.0,
    n: int = 50_000,
    mix: Mapping[str, float] | None = None,
) -> float:
    """Return the highest rate (to 1 %) whose simulated p99 latency is at most the target."""
    mean = float(np.mean(sample.seconds))
    low, high = 0.0, capacity_per_s(mean, commit, batch_max)
    while high - low > 0.01 * high:
        middle = (low + high) / 2
        arrivals = Arrivals(middle, burst)
        if predict(arrivals, sample, commit, batch_max, n=n, mix=mix).p99_s <= p99_target_s:
            low = middle
        else:
            high = middle
    return low
