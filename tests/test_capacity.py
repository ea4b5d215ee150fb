"""The capacity model (spec/95-capacity.md, SK-CAP): the queue against closed forms, the
measurement and the load run on a real durable journal, and the command.

No test asserts a speed: the closed-form checks use synthetic service times, and the real
runs are checked for what they must produce whatever the machine's load.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
from click.testing import CliRunner

from settlekernel.capacity.flow import FlowParams, flow_events, flow_lines
from settlekernel.capacity.load import load_run, validate
from settlekernel.capacity.measure import CommitCost, ServiceSample, measure
from settlekernel.capacity.queueing import (
    Arrivals,
    FloatArray,
    arrival_times,
    best_batch,
    capacity_per_s,
    pk_mean_latency,
    predict,
    simulate,
)
from settlekernel.cli.main import main
from settlekernel.core.events import EVENT_NAMES
from settlekernel.core.outcomes import Accepted
from settlekernel.core.rules import DEFAULT_RULES
from settlekernel.kernel.dispatch import genesis, step

Simulator = Callable[[FloatArray, FloatArray, CommitCost, int], tuple[FloatArray, float]]
NO_COMMIT = CommitCost(0.0)


def _mm1_error(simulator: Simulator, rate: float = 700.0) -> float:
    """Return the relative error of a simulated M/M/1 mean latency against 1 / (mu - lambda)."""
    rng = np.random.default_rng(7)
    n = 300_000
    times = arrival_times(Arrivals(rate), n, rng)
    service = rng.exponential(0.001, size=n)
    latency, _ = simulator(times, service, NO_COMMIT, 1)
    exact = 1 / (1000 - rate)
    return abs(float(latency.mean()) - exact) / exact


def _no_queue(
    times: FloatArray, service: FloatArray, commit: CommitCost, batch_max: int
) -> tuple[FloatArray, float]:
    """A planted fault: every event is served the moment it arrives (no waiting)."""
    del times, commit, batch_max
    return service.copy(), float(service.sum())


def test_the_simulated_queue_matches_m_m_1_and_a_planted_fault_does_not():
    assert _mm1_error(simulate) < 0.03
    assert _mm1_error(_no_queue) > 0.5


@pytest.mark.parametrize("burst", [1.0, 4.0])
def test_pollaczek_khinchine_agrees_with_the_simulation(burst: float):
    """M^X/G/1 with lognormal service and geometric bursts: closed form and recursion agree."""
    rng = np.random.default_rng(11)
    seconds = rng.lognormal(np.log(0.0004), 0.8, size=50_000)
    sample = ServiceSample(("trade",) * len(seconds), tuple(float(s) for s in seconds))
    commit = CommitCost(0.0002)
    arrivals = Arrivals(900.0, burst)
    prediction = predict(arrivals, sample, commit, 1, n=400_000, seed=3)
    assert prediction.pk_mean_s is not None
    assert abs(prediction.mean_s - prediction.pk_mean_s) / prediction.pk_mean_s < 0.05
    service = np.array(seconds)
    assert pk_mean_latency(Arrivals(1e6), service, commit) is None


def test_batching_keeps_a_rate_stable_that_one_commit_per_event_cannot_serve():
    """A 2 ms commit caps one-per-commit near 450/s; batches of 64 serve 1,000/s."""
    sample = ServiceSample(("trade",) * 1000, (0.0002,) * 1000)
    commit = CommitCost(0.002)
    assert capacity_per_s(0.0002, commit, 1) < 1000 < capacity_per_s(0.0002, commit, 64)
    ranked = best_batch(Arrivals(1000.0), sample, commit, sizes=(1, 64), n=20_000)
    assert [p.batch_max for p in ranked] == [64, 1]
    assert ranked[0].stable
    assert not ranked[1].stable
    assert ranked[0].p99_s < 0.05 < ranked[1].p99_s


def test_arrivals_come_at_the_rate_in_bursts_of_the_mean_size():
    times = arrival_times(Arrivals(500.0, 3.0), 200_000, np.random.default_rng(5))
    assert np.all(np.diff(times) >= 0)
    assert abs(len(times) / float(times[-1]) - 500) / 500 < 0.02
    bursts = 1 + int(np.count_nonzero(np.diff(times)))
    assert abs(len(times) / bursts - 3.0) < 0.1
    with pytest.raises(ValueError, match="positive"):
        arrival_times(Arrivals(0.0), 10, np.random.default_rng(0))


def test_the_built_in_flow_is_deterministic_and_every_line_is_accepted():
    params = FlowParams(n_events=800, n_accounts=40, seed=4)
    assert flow_lines(params) == flow_lines(params)
    assert flow_lines(params) != flow_lines(FlowParams(n_events=800, n_accounts=40, seed=5))
    state = genesis(DEFAULT_RULES)
    events = flow_events(params)
    for event in events:
        outcome = step(state, event)
        assert isinstance(outcome, Accepted), (event, outcome)
        state = outcome.state
    kinds = {EVENT_NAMES[type(event)] for event in events}
    assert {"trade", "oracle_price", "deposit", "withdraw", "variation_margin"} <= kinds
    linear = flow_events(FlowParams(n_events=800, n_accounts=40, options=False))
    assert all(getattr(e, "kind", None) is None or e.kind.value != "option" for e in linear)


def test_measurement_times_every_line_of_a_real_journal():
    lines = flow_lines(FlowParams(n_events=300, n_accounts=30))
    sample, commit = measure(lines, DEFAULT_RULES, repeats=1)
    assert len(sample.kinds) == len(sample.seconds) == len(lines)
    assert sample.kinds == tuple(json.loads(line)["type"] for line in lines)
    assert all(seconds >= 0 for seconds in sample.seconds)
    assert commit.fixed_s >= 0
    assert abs(sum(sample.mix().values()) - 1) < 1e-9


def test_a_load_run_commits_every_line_and_times_each_from_its_arrival():
    lines = flow_lines(FlowParams(n_events=200, n_accounts=20))
    times = arrival_times(Arrivals(2_000.0), len(lines), np.random.default_rng(1))
    latency, entries = load_run(lines, DEFAULT_RULES, times, batch_max=16)
    assert entries == len(lines)
    assert latency.shape == (len(lines),)
    assert np.all(latency > 0)


def test_validation_compares_the_model_at_each_level():
    lines = flow_lines(FlowParams(n_events=200, n_accounts=20))
    sample, commit = measure(lines, DEFAULT_RULES, repeats=1)
    checks = validate(lines, DEFAULT_RULES, sample, commit, levels=(0.2, 0.5), batch_max=8)
    assert [c.level for c in checks] == [0.2, 0.5]
    assert checks[1].rate_per_s > checks[0].rate_per_s
    for check in checks:
        assert check.entries == len(lines)
        assert check.model_mean_s > 0
        assert check.measured_mean_s > 0
        assert check.model_p99_s >= check.model_mean_s * 0.5


def test_the_command_reports_service_batches_and_a_load_run():
    result = CliRunner().invoke(
        main,
        [
            "capacity",
            "--events",
            "250",
            "--accounts",
            "20",
            "--validate",
            "--levels",
            "0.4",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["lines"] >= 250
    assert "trade" in found["service_s"]
    assert [b["batch_max"] for b in found["batches"]][:3] == [1, 2, 4]
    assert len(found["validation"]) == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--mix", "trade"], "TYPE=SHARE"),
        (["--mix", "nothing=1"], "no service times measured for nothing"),
        (["--rate", "0"], "--rate is positive"),
        (["--levels", "1.5", "--validate"], "fraction of capacity"),
    ],
)
def test_the_command_refuses_bad_options_in_one_line(arguments: list[str], message: str):
    result = CliRunner().invoke(
        main, ["capacity", "--events", "120", "--accounts", "10", *arguments]
    )
    assert result.exit_code == 2
    assert message in result.output
