"""The one driver that runs every sampler kernel in sample mode.

``run(kernel, target, n, rng)``: draws the run-level internal randomness, the initial point
(exact marginal at the kernel's start level by default, ``start="prior"`` for N(0, I)), runs the
loop with a counted score, and stops with :class:`NonFiniteStateError` naming the sampler and the
step at the first NaN or overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments import _validate as v
from experiments.noise import SampleNoise
from experiments.samplers._api import CountingScore, Kernel, NonFiniteStateError

STARTS = ("exact", "prior")


@dataclass
class RunResult:
    x: np.ndarray          # (batch, n_columns) outputs
    nfe: np.ndarray        # (batch,) score evaluations per row
    rounds: np.ndarray     # (batch,) sequential rounds of score evaluations per row
    max_width: int         # largest number of score calls in one parallel round
    t_end: float           # OU time of the output
    sampler: str


def _check_state(kernel: Kernel, state: tuple, k) -> None:
    for arr in state:
        if not np.all(np.isfinite(arr)):
            where = "init" if k is None else f"step {k}"
            raise NonFiniteStateError(f"sampler {kernel.name!r} produced a non-finite state at {where}")


def guarded_step(kernel: Kernel, state: tuple, aux: dict, k: int, noise, score) -> tuple:
    """One ``kernel.step``; an overflow or invalid operation becomes an error naming sampler and step."""
    noise.begin_step()
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return kernel.step(state, aux, k, noise, score)
    except FloatingPointError as exc:
        raise NonFiniteStateError(f"sampler {kernel.name!r} failed at step {k}: {exc}") from exc


def initial_points(target, t0, n: int, rng: np.random.Generator, start: str) -> np.ndarray:
    if start == "exact":
        return target.sample(n, t0, rng)
    return rng.standard_normal((n, target.n_columns))


def run(kernel: Kernel, target, n: int, rng: np.random.Generator, *, start: str = "exact", noise=None) -> RunResult:
    """Draw ``n`` i.i.d. outputs of ``kernel`` on ``target`` (sample mode)."""
    if not isinstance(kernel, Kernel):
        raise ValueError(f"kernel must be a Kernel, got {type(kernel).__name__}")
    n = v.positive_int("n", n)
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    noise = SampleNoise(rng, n) if noise is None else noise
    aux = kernel.plan(noise)
    x = initial_points(target, kernel.start_time(aux), n, rng, start)
    score = CountingScore(target.score, n)
    noise.begin_step()
    state = kernel.init(x, aux, noise)
    _check_state(kernel, state, None)
    for k in range(kernel.n_steps):
        state = guarded_step(kernel, state, aux, k, noise, score)
        _check_state(kernel, state, k)
    out = kernel.output(state, aux)
    return RunResult(out, score.calls, score.rounds, score.max_width, float(kernel.end_time), kernel.name)
