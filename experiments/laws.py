r"""Exact output laws of samplers on Gaussian targets (law mode).

On a Gaussian target every score is affine, so every step of every sampler is affine in its state
and in its own Gaussian draws, *conditional on the internal randomness* ``aux``:

.. math::  s_{k+1} = A_k s_k + b_k + C_k \xi_k,\qquad \xi_k\sim N(0, I).

Coordinates of a grouped Gaussian are independent, so each representative column carries a small
state vector (one entry per array in the state tuple). The driver probes the *same* ``step`` code
with impulse rows (the zero state; one unit vector per state component; one unit draw per Gaussian
draw) to read off :math:`A_k, b_k, C_k`, and propagates the exact mean and covariance

.. math::  \mu_{k+1} = A_k\mu_k + b_k,\qquad \Sigma_{k+1} = A_k\Sigma_k A_k^\top + C_k C_k^\top,

at a cost linear in the number of steps. ``n_draws`` draws of internal randomness are processed
in one batch, so Python's per-step overhead is paid once per step.

Layout (for speed; the numbers do not depend on it). Rows are probe-major, row ``p * n_draws + m``
is probe ``p`` of draw ``m`` (:class:`~experiments.noise.ProbeMajorLawNoise`), and the state arrays
and internal randomness are column-major, so that each probe of each column is one contiguous run of
``n_draws`` values and the kernels' per-row factors ``(batch, 1)`` broadcast along the long axis. The
law is carried as ``mean[i, n]``, ``cov[i, j, n]`` (state indices first; ``n = g * n_draws + m`` runs
over the (column, draw) pairs) and pushed with a few vectorised operations over the pairs, looping in
Python only over the small state and draw indices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments import _validate as v
from experiments.noise import ProbeMajorLawNoise
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
    """Impulse rows of a map and their read-off. Rows are probe-major (row ``p * M + m`` is probe ``p`` of
    draw ``m``) and arrays column-major, so column ``g`` of probe ``p`` is the contiguous run ``[p*M, (p+1)*M)``.

    Probe 0 is the zero state with zero draws (gives ``b``), probe ``1 + j`` the unit vector of state
    component ``j`` (gives ``b + A e_j``), probe ``first_draw_row + r`` the unit draw ``r`` (gives ``b + C e_r``).
    """

    def __init__(self, n_draws, state_size, draws_per_step, n_columns):
        self.M, self.s, self.q, self.G = n_draws, state_size, draws_per_step, n_columns
        self.P = 1 + state_size + draws_per_step
        self.first_draw_row = 1 + state_size
        self.N = n_draws * n_columns                 # (column, draw) pairs, n = g * M + m

    def inputs(self, in_size):
        rows = []
        for j in range(in_size):
            a = np.zeros((self.G, self.P, self.M))
            a[:, 1 + j] = 1.0
            rows.append(a.reshape(self.G, self.P * self.M).T)       # (P*M, G), column-major
        return tuple(rows)

    def probes(self, out):
        """The map's outputs as one array ``X[i, p, n]`` (output component, probe, pair)."""
        full = (self.P * self.M, self.G)
        X = np.empty((len(out), self.P, self.G, self.M))
        for i, o in enumerate(out):
            o = np.asarray(o)
            if o.shape != full:                                     # outputs that are not full arrays
                o = np.broadcast_to(o, full)
            # o.T is (G, P*M): a view of a column-major output, copied by runs of M contiguous values
            X[i].transpose(1, 0, 2)[...] = o.T.reshape(self.G, self.P, self.M)
        return X.reshape(len(out), self.P, self.N)

    def pairs(self, a):
        """(M, G) per (draw, column) -> (N,) per pair."""
        return np.ascontiguousarray(np.asarray(a, dtype=np.float64).T).reshape(self.N)

    def columns(self, a):
        """(N,) per pair -> (M, G) per (draw, column)."""
        return np.ascontiguousarray(a.reshape(self.G, self.M).T)


#: the explicit formulas are used up to this state size; beyond it, batched matrix products
_SMALL_STATE = 3


def _push(X, in_size, first_draw_row, n_draws_rows, mean, cov):
    r"""Push the law through the affine map whose probe outputs are ``X[i, p, n]`` (see :class:`_Prober`).

    With :math:`b_i = X_{i,0}`, :math:`A_{ij} = X_{i,1+j} - b_i`, :math:`C_{ir} = X_{i,f+r} - b_i`
    (``f = first_draw_row``, ``r < n_draws_rows``), for every pair ``n`` separately:

    .. math::  \mu'_i = b_i + \sum_j A_{ij}\mu_j,\qquad
               \Sigma'_{ik} = \sum_l T_{il} A_{kl} + \sum_r C_{ir} C_{kr},\quad T_{il} = \sum_j A_{ij}\Sigma_{jl}.

    ``mean`` is ``(in_size, N)``, ``cov`` ``(in_size, in_size, N)``; returns ``(s', N)``, ``(s', s', N)``.
    For small states the sums run in Python over ``j``, ``l``, ``r`` and every term is one operation on
    all outputs ``i`` (and ``k``) and all pairs at once; ``np.matmul`` on 2x2 matrices would pay its
    per-matrix overhead once per pair instead.
    """
    b = X[:, 0]                                                     # (s', N)
    D = X[:, 1:] - b[:, None]                                       # (s', P - 1, N): A, then C
    A = D[:, :in_size]
    C = D[:, first_draw_row - 1:first_draw_row - 1 + n_draws_rows]
    if max(X.shape[0], in_size) > _SMALL_STATE:
        return _push_matmul(A, b, C, mean, cov)
    new_mean = b + A[:, 0] * mean[0]
    T = A[:, 0, None] * cov[0]                                      # T[i, l]
    for j in range(1, in_size):
        new_mean += A[:, j] * mean[j]
        T += A[:, j, None] * cov[j]
    new_cov = T[:, None, 0] * A[None, :, 0]
    for l in range(1, in_size):
        new_cov += T[:, None, l] * A[None, :, l]
    if C.shape[1] == 1:
        new_cov += C[:, None, 0] * C[None, :, 0]
    elif C.shape[1] > 1:                                            # one call, whatever the number of draws
        new_cov += np.einsum("irn,krn->ikn", C, C)
    return new_mean, new_cov


def _push_matmul(A, b, C, mean, cov):
    """The general path of :func:`_push` (large states): batched matrix products per pair."""
    A, C = np.moveaxis(A, -1, 0), np.moveaxis(C, -1, 0)            # (N, s', in), (N, s', q)
    new_mean = (A @ mean.T[..., None])[..., 0].T + b
    new_cov = A @ np.moveaxis(cov, -1, 0) @ np.swapaxes(A, -1, -2) + C @ np.swapaxes(C, -1, -2)
    return new_mean, np.moveaxis(new_cov, 0, -1)


class _SharedTimeScore:
    """The score of a plain :class:`GroupedGaussian` in law mode, its marginal parameters computed once per draw.

    All probe rows of one draw share the draw's internal randomness, hence its score times; when the
    times passed are of that form (checked on every call) the per-column coefficients of
    :meth:`GroupedGaussian._score_coefficients` are computed on the ``n_draws`` distinct times only and
    broadcast over the probes: the same formula on the same times as ``score_trusted`` row by row
    (equal to it in tests/test_laws_fast.py), ``n_probes`` times fewer exponentials.
    """

    def __init__(self, target, n_draws, n_probes):
        self.target, self.M, self.P = target, n_draws, n_probes

    def __call__(self, x, t):
        t = np.asarray(t, dtype=np.float64)
        M, P = self.M, self.P
        if t.size == M * P and np.ndim(x) == 2 and x.shape[0] == M * P:
            tp = t.reshape(P, M)
            if (tp == tp[0]).all():
                em, var = self.target._score_coefficients(tp[0], columns_first=True)   # (G, M)
                G = em.shape[0]
                xt = x.T.reshape(G, P, M)                     # a view for the column-major probe rows
                return ((em[:, None] - xt) / var[:, None]).reshape(G, P * M).T
        return self.target.score_trusted(x, t)


#: fewest internal draws for which sharing the score's marginal parameters pays for its fixed overhead
#: (measured crossover: about 50 draws)
_SHARED_TIME_MIN_DRAWS = 64


def _law_score(target, n_draws=1, n_probes=1):
    """The score law mode calls: the unvalidated fast path only where the class guarantees that it is
    the same function as ``score`` (GroupedGaussian and its subclasses, see its ``__init_subclass__``);
    any other target, a duck-typed wrapper included, is called through its own ``score``. A plain
    GroupedGaussian score (no subclass override) also shares its marginal parameters across the probe
    rows of a draw (:class:`_SharedTimeScore`) when there are enough draws for that to pay."""
    if not isinstance(target, GroupedGaussian):
        return target.score
    cls = type(target)
    if (n_draws >= _SHARED_TIME_MIN_DRAWS and cls.score_trusted is GroupedGaussian.score_trusted
            and cls._score_coefficients is GroupedGaussian._score_coefficients):
        return _SharedTimeScore(target, n_draws, n_probes)
    return target.score_trusted


def _plan(kernel, noise):
    """``kernel.plan(noise)``; for a kernel with a row-wise plan, run once per internal draw (one row
    each, the same ``rng`` calls) and the rows copied to the probe rows: identical numbers, ``n_probes``
    times less work and memory traffic."""
    if not getattr(kernel, "rowwise_plan", False):
        return kernel.plan(noise)
    one_row = ProbeMajorLawNoise(noise.rng, noise.n_draws, 1, noise.first_draw_row, noise.max_draws)
    aux = kernel.plan(one_row)
    for key, value in aux.items():
        if not (isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == noise.n_draws):
            raise RuntimeError(f"kernel {kernel.name!r} declares rowwise_plan but aux[{key!r}] is not an array "
                               f"with one row per internal draw")
    return {key: noise.to_probes(value) for key, value in aux.items()}


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
    noise = ProbeMajorLawNoise(rng, n_draws, pr.P, pr.first_draw_row, kernel.draws_per_step)
    score = CountingScore(_law_score(target, n_draws, pr.P), n_draws * pr.P)
    q = kernel.draws_per_step

    aux = _plan(kernel, noise)
    t0 = np.asarray(kernel.start_time(aux), dtype=float)
    t0 = np.full(n_draws, float(t0)) if t0.ndim == 0 else t0.reshape(-1)[:n_draws]      # probe 0 of each draw
    if start == "exact":
        m0, var0 = target.marginal_params(t0)                                          # (M, G)
    else:
        m0, var0 = np.zeros((n_draws, G)), np.ones((n_draws, G))
    mean, cov = pr.pairs(m0).reshape(1, pr.N), pr.pairs(var0).reshape(1, 1, pr.N)        # (s, N), (s, s, N)

    # init: x -> state
    noise.begin_step()
    state = kernel.init(pr.inputs(1)[0], aux, noise)
    mean, cov = _push(pr.probes(state), 1, pr.first_draw_row, q, mean, cov)
    s = len(state)
    if s != kernel.state_size:
        raise RuntimeError(f"kernel {kernel.name!r} declares state_size={kernel.state_size} but init returned {s} arrays")

    # every step is probed from the impulse rows: the step *map* is read off, not the state
    probe_state = pr.inputs(s)
    for k in range(kernel.n_steps):
        new_state = guarded_step(kernel, probe_state, aux, k, noise, score)
        mean, cov = _push(pr.probes(new_state), s, pr.first_draw_row, q, mean, cov)
        if not (np.isfinite(mean).all() and np.isfinite(cov).all()):
            raise NonFiniteStateError(f"sampler {kernel.name!r} produced a non-finite law at step {k}")

    out = kernel.output(probe_state, aux)
    mean, cov = _push(pr.probes((out,)), s, pr.first_draw_row, q, mean, cov)
    t_end = float(kernel.end_time)
    tm, tv = target.marginal_params(t_end)
    return GaussianColumnLaw(
        mean=pr.columns(mean[0]), var=pr.columns(cov[0, 0]), target_mean=np.asarray(tm),
        target_var=np.asarray(tv), multiplicities=target.multiplicities.copy(), t_end=t_end,
        nfe=score.calls[:n_draws].copy(), rounds=score.rounds[:n_draws].copy(), sampler=kernel.name, start=start,
    )
