r"""Exact output laws of samplers on Gaussian targets (law mode, DESIGN section 5).

On a Gaussian target every score is affine, so every step of every sampler is affine in its state
and in its own Gaussian draws, *conditional on the internal randomness* ``aux``:

.. math::  s_{k+1} = A_k s_k + b_k + C_k \xi_k,\qquad \xi_k\sim N(0, I).

Coordinates of a grouped Gaussian are independent, so each representative column carries a small
state vector (one entry per array in the state tuple). The driver probes the *same* ``step`` code
with impulse rows (the zero state; one unit vector per state component; one unit draw per Gaussian
draw) to read off :math:`A_k, b_k, C_k`, and propagates the exact mean and covariance

.. math::  \mu_{k+1} = A_k\mu_k + b_k,\qquad \Sigma_{k+1} = A_k\Sigma_k A_k^\top + C_k C_k^\top,

at a cost linear in the number of steps. ``n_draws`` draws of internal randomness are processed
in one batch (rows ``m * n_probes + p``), so Python's per-step overhead is paid once per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments import _validate as v
from experiments.noise import LawNoise
from experiments.samplers._api import CountingScore, Kernel, NonFiniteStateError
from experiments.samplers.driver import STARTS, guarded_step
from experiments.targets import GroupedGaussian


@dataclass
class GaussianColumnLaw:
    """Output law per representative column, conditional on each internal draw ``m``.

    ``mean[m, g]``, ``var[m, g]``: the output of column ``g`` given internal draw ``m`` is
    N(mean, var); the full law lifts column ``g`` to ``multiplicities[g]`` i.i.d. coordinates.
    ``target_mean``, ``target_var``: the exact marginal at ``t_end`` (the reference law).
    """

    mean: np.ndarray
    var: np.ndarray
    target_mean: np.ndarray
    target_var: np.ndarray
    multiplicities: np.ndarray
    t_end: float
    nfe: np.ndarray      # (n_draws,) score evaluations of one run, per internal draw
    rounds: np.ndarray   # (n_draws,)
    sampler: str
    start: str

    @property
    def n_draws(self) -> int:
        return self.mean.shape[0]


class _Prober:
    """Runs a map on impulse rows and returns its affine coefficients per draw and column."""

    def __init__(self, n_draws, state_size, draws_per_step, n_columns):
        self.M, self.s, self.q, self.G = n_draws, state_size, draws_per_step, n_columns
        self.P = 1 + state_size + draws_per_step
        self.first_draw_row = 1 + state_size

    def inputs(self, in_size):
        rows = []
        for j in range(in_size):
            a = np.zeros((self.M, self.P, self.G))
            a[:, 1 + j, :] = 1.0
            rows.append(a.reshape(self.M * self.P, self.G))
        return tuple(rows)

    def coefficients(self, out, in_size):
        rows = np.stack([np.broadcast_to(o, (self.M * self.P, self.G)) for o in out])      # (s', M*P, G)
        rows = rows.reshape(len(out), self.M, self.P, self.G).transpose(1, 3, 0, 2)      # (M, G, s', P)
        b = rows[..., 0]                                                                   # (M, G, s')
        A = rows[..., 1:1 + in_size] - b[..., None]                                        # (M, G, s', in)
        C = rows[..., self.first_draw_row:self.first_draw_row + self.q] - b[..., None]     # (M, G, s', q)
        return A, b, C


def _push(A, b, C, mean, cov):
    """(mean, cov) of A s + b + C xi for s ~ (mean, cov), xi ~ N(0, I); batched over (draw, column)."""
    mean = (A @ mean[..., None])[..., 0] + b
    At = np.swapaxes(A, -1, -2)
    cov = A @ cov @ At + C @ np.swapaxes(C, -1, -2)
    return mean, cov


def _law_score(target):
    """The score law mode calls: the unvalidated fast path only where the class guarantees that it is
    the same function as ``score`` (GroupedGaussian and its subclasses, see its ``__init_subclass__``);
    any other target, a duck-typed wrapper included, is called through its own ``score``."""
    return target.score_trusted if isinstance(target, GroupedGaussian) else target.score


def gaussian_law(kernel: Kernel, target, *, n_draws: int = 1, rng: np.random.Generator | None = None,
                 start: str = "exact") -> GaussianColumnLaw:
    """Exact output law of ``kernel`` on a Gaussian ``target``, conditional on ``n_draws``
    draws of the kernel's internal randomness (deterministic kernels need ``n_draws = 1``)."""
    if not getattr(target, "is_gaussian", False):
        raise ValueError("target must be Gaussian (affine score) for law mode; use sample mode otherwise")
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    n_draws = v.positive_int("n_draws", n_draws)
    rng = np.random.default_rng(0) if rng is None else rng
    G = target.n_columns
    pr = _Prober(n_draws, kernel.state_size, kernel.draws_per_step, G)
    noise = LawNoise(rng, n_draws, pr.P, pr.first_draw_row, kernel.draws_per_step)
    score = CountingScore(_law_score(target), n_draws * pr.P)

    aux = kernel.plan(noise)
    t0 = np.asarray(kernel.start_time(aux), dtype=float)
    t0 = np.full(n_draws, float(t0)) if t0.ndim == 0 else t0.reshape(-1)[:: pr.P]
    if start == "exact":
        m0, var0 = target.marginal_params(t0)                                          # (M, G)
    else:
        m0, var0 = np.zeros((n_draws, G)), np.ones((n_draws, G))
    mean, cov = m0[..., None], var0[..., None, None]

    # init: x -> state
    noise.begin_step()
    state = kernel.init(pr.inputs(1)[0], aux, noise)
    A, b, C = pr.coefficients(state, 1)
    mean, cov = _push(A, b, C, mean, cov)
    s = len(state)
    if s != kernel.state_size:
        raise RuntimeError(f"kernel {kernel.name!r} declares state_size={kernel.state_size} but init returned {s} arrays")

    # every step is probed from the impulse rows: the step *map* is read off, not the state
    probe_state = pr.inputs(s)
    for k in range(kernel.n_steps):
        new_state = guarded_step(kernel, probe_state, aux, k, noise, score)
        A, b, C = pr.coefficients(new_state, s)
        mean, cov = _push(A, b, C, mean, cov)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(cov))):
            raise NonFiniteStateError(f"sampler {kernel.name!r} produced a non-finite law at step {k}")

    out = kernel.output(probe_state, aux)
    A, b, C = pr.coefficients((out,), s)
    mean, cov = _push(A, b, C, mean, cov)
    t_end = float(kernel.end_time)
    tm, tv = target.marginal_params(t_end)
    return GaussianColumnLaw(
        mean=mean[..., 0], var=cov[..., 0, 0], target_mean=np.asarray(tm), target_var=np.asarray(tv),
        multiplicities=target.multiplicities.copy(), t_end=t_end,
        nfe=score.calls[:: pr.P].copy(), rounds=score.rounds[:: pr.P].copy(), sampler=kernel.name, start=start,
    )
