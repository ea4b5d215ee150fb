"""Correlated multi-asset price paths: GBM with Merton jumps, optional GARCH(1,1) (SK-STRESS-1).

Floats live here and only here: a path is simulated in log space with numpy, then each
price is turned into integer oracle ticks by ``to_ticks`` with explicit rounding (half to
even, at least one tick) before it becomes an event. The ledger never sees a float.

Every draw comes from one ``numpy.random.Generator`` seeded by the caller, so a path is a
pure function of its parameters and seed: the same seed gives the same ticks on any machine
that runs the same numpy (the generator's bit stream is versioned by numpy, not by us).
"""

from __future__ import annotations

import math
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
HOURS_PER_YEAR: Final = 24 * 365


@attrs.frozen
class AssetParams:
    """One simulated asset: start price in ticks and its yearly drift and volatility."""

    symbol: str
    start_ticks: int
    drift_per_year: float
    volatility_per_year: float


@attrs.frozen
class JumpParams:
    """Merton jumps: Poisson arrivals per year, log-jump size ~ Normal(mean, stdev)."""

    intensity_per_year: float = 6.0
    log_mean: float = -0.04
    log_stdev: float = 0.06


@attrs.frozen
class GarchParams:
    """GARCH(1,1) on hourly log returns: var' = omega + alpha * r^2 + beta * var.

    ``omega`` is derived per asset so that the long-run variance equals the asset's own
    volatility: omega = (1 - alpha - beta) * sigma_hour^2. Needs alpha + beta < 1.
    """

    alpha: float = 0.08
    beta: float = 0.90


@attrs.frozen
class Shock:
    """A deterministic jump: ``symbol`` falls by ``drop_ppm`` at step ``at_step`` (SK-STRESS-4)."""

    symbol: str
    drop_ppm: int
    at_step: int


@attrs.frozen
class MarketParams:
    """Everything a path needs: assets, their correlation, jumps, GARCH, steps, shock."""

    assets: tuple[AssetParams, ...]
    correlation: tuple[tuple[float, ...], ...]
    steps: int
    step_hours: float = 1.0
    jumps: JumpParams | None = JumpParams()
    garch: GarchParams | None = None
    shock: Shock | None = None


def shock_problem(market: MarketParams, shock: Shock) -> str | None:
    """Return why ``shock`` cannot hit ``market`` (it names no simulated asset), or None."""
    symbols = [asset.symbol for asset in market.assets]
    if shock.symbol in symbols:
        return None
    return f"the market's assets are {', '.join(symbols)}"


def default_market(
    steps: int = 24, *, garch: bool = False, shock: Shock | None = None
) -> MarketParams:
    """Return the standard scenario: BTC and ETH (both also collateral), correlated 0.8."""
    return MarketParams(
        assets=(
            AssetParams("BTC", 9_000_000, 0.0, 0.60),
            AssetParams("ETH", 300_000, 0.0, 0.80),
        ),
        correlation=((1.0, 0.8), (0.8, 1.0)),
        steps=steps,
        garch=GarchParams() if garch else None,
        shock=shock,
    )


def simulate_log_returns(params: MarketParams, rng: np.random.Generator) -> FloatArray:
    """Return log returns, shape (steps, assets): correlated diffusion plus jumps.

    The diffusion is correlated through the Cholesky factor of ``params.correlation``; jumps
    arrive independently per asset. The drift carries the Ito and jump compensators, so the
    expected price stays at ``start * exp(drift * t)``.
    """
    n_assets, steps = len(params.assets), params.steps
    dt = params.step_hours / HOURS_PER_YEAR
    chol = np.linalg.cholesky(np.asarray(params.correlation, dtype=np.float64))
    shocks = rng.standard_normal((steps, n_assets)) @ chol.T
    sigma = np.array([asset.volatility_per_year for asset in params.assets])
    mu = np.array([asset.drift_per_year for asset in params.assets])
    if params.garch is None:
        sigma_step = np.broadcast_to(sigma * math.sqrt(dt), (steps, n_assets))
        diffusion = shocks * sigma_step
    else:
        diffusion, sigma_step = _garch(params.garch, sigma * math.sqrt(dt), shocks)
    returns = diffusion + (mu * dt - 0.5 * sigma_step**2)
    if params.jumps is not None:
        returns = returns + _jumps(params.jumps, dt, (steps, n_assets), rng)
    return np.asarray(returns, dtype=np.float64)


def _garch(
    garch: GarchParams, sigma_step: FloatArray, shocks: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Run GARCH(1,1) variance through the shocks; return returns and per-step sigma."""
    assert garch.alpha + garch.beta < 1.0, "GARCH needs alpha + beta < 1"
    long_run = sigma_step**2
    omega = (1.0 - garch.alpha - garch.beta) * long_run
    variance = long_run.copy()
    returns = np.empty_like(shocks)
    sigmas = np.empty_like(shocks)
    for row in range(shocks.shape[0]):  # Bounded by params.steps.
        sigmas[row] = np.sqrt(variance)
        returns[row] = sigmas[row] * shocks[row]
        variance = omega + garch.alpha * returns[row] ** 2 + garch.beta * variance
    return returns, sigmas


def _jumps(
    jumps: JumpParams, dt: float, shape: tuple[int, int], rng: np.random.Generator
) -> FloatArray:
    """Compound Poisson log jumps per step, compensated so they add no drift."""
    counts = rng.poisson(jumps.intensity_per_year * dt, size=shape)
    sizes = rng.normal(jumps.log_mean * counts, jumps.log_stdev * np.sqrt(counts))
    compensator = (
        jumps.intensity_per_year * dt * (math.exp(jumps.log_mean + 0.5 * jumps.log_stdev**2) - 1.0)
    )
    return np.asarray(sizes - compensator, dtype=np.float64)


def simulate_prices(params: MarketParams, rng: np.random.Generator) -> FloatArray:
    """Return float prices in ticks, shape (steps + 1, assets); row 0 is the start."""
    returns = simulate_log_returns(params, rng)
    if params.shock is not None and 0 < params.shock.at_step <= params.steps:
        column = [asset.symbol for asset in params.assets].index(params.shock.symbol)
        returns[params.shock.at_step - 1, column] += math.log1p(-params.shock.drop_ppm / 1e6)
    start = np.array([asset.start_ticks for asset in params.assets], dtype=np.float64)
    log_paths = np.vstack([np.zeros(len(params.assets)), np.cumsum(returns, axis=0)])
    return np.asarray(start * np.exp(log_paths), dtype=np.float64)


def to_ticks(prices: FloatArray) -> list[list[int]]:
    """Round float prices to integer ticks, half to even, at least 1 tick (a report of 0 halts)."""
    rounded = np.maximum(np.rint(prices), 1.0)
    return [[int(value) for value in row] for row in rounded]


def simulate_ticks(params: MarketParams, seed: int) -> list[list[int]]:
    """Return one path's oracle ticks, shape (steps + 1, assets), from its seed alone."""
    return to_ticks(simulate_prices(params, np.random.default_rng(seed)))
