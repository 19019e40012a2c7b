r"""Errors of a sampler's output law with their whole uncertainty: replicate groups of internal draws.

For a randomized sampler the law is a mixture over internal draws, organised in R independent replicate
groups (:mod:`experiments.internal`). Every error is computed from all draws (the value), from all draws
but group r for each r (the delete-one-group jackknife values ``loo``) and from the two independent
halves of the groups (``halves``). The standard error is the jackknife's,

.. math:: \mathrm{se}^2 = \frac{R-1}{R}\sum_{r=1}^R \bigl(v_{(-r)} - \bar v_{(\cdot)}\bigr)^2,

which carries the variation over internal draws and, for the annealed TV, the inner Monte Carlo over
sufficient statistics too (its samples are tied to groups: a P-sample to the group of the draw it came
from, a Q-sample to a group by its index), so that leaving a group out removes every random number that
group contributed.

=================  ==========================================================================================
metric             value from a set S of draws
=================  ==========================================================================================
``tv_annealed``    :math:`TV(\bar P_S, Q)` with :math:`\bar P_S` the mixture of the draws in S: Monte Carlo over
                   the per-group sufficient statistics of :math:`|\tanh(\bar L_S/2)|` under
                   :math:`(\bar P_S + Q)/2` (:mod:`experiments.distances`); exact for one draw
``tv_quenched``    mean over S of the exact :math:`TV(P_m, Q)` (an upper bound of the annealed TV)
``sqrt_kl``        :math:`\sqrt{\text{mean over S of } KL(Q\|P_m)}`: for a randomized sampler an upper bound of
                   the annealed :math:`\sqrt{KL}` (joint convexity), exact for a deterministic one
``w2``             mean over S of :math:`W_2(P_m, Q)`
=================  ==========================================================================================

A deterministic sampler has one exact law: ``se = 0``, no ``loo``, halves NaN. ``bound`` is the
numerical (non-statistical) error bound of the exact routes (quadrature, truncation), never dropped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from experiments import _validate as v
from experiments import distances as D
from experiments.internal import REPLICATE_GROUPS

METRICS = ("tv_annealed", "tv_quenched", "sqrt_kl", "w2")


@dataclass(frozen=True)
class ReplicatedError:
    """One error with its replicate structure (see the module docstring)."""

    value: float
    se: float
    loo: np.ndarray = field(default_factory=lambda: np.zeros(0))
    halves: tuple[float, float] = (math.nan, math.nan)
    n_draws: int = 1
    bound: float = 0.0
    method: str = ""

    @property
    def relative_se(self) -> float:
        return self.se / self.value if self.value > 0 else math.inf


def jackknife_se(loo) -> float:
    r"""Delete-one-group jackknife standard error :math:`\sqrt{\frac{R-1}{R}\sum_r(v_{(-r)}-\bar v)^2}`."""
    loo = np.asarray(loo, dtype=float)
    R = loo.size
    if R < 2:
        return math.nan
    return float(math.sqrt((R - 1) / R * np.sum((loo - loo.mean()) ** 2)))


def _subset_masks(R: int) -> np.ndarray:
    """Boolean (R + 3, R): all groups; all but r (r = 0..R-1); first half; second half."""
    masks = np.ones((R + 3, R), dtype=bool)
    masks[1:R + 1] = ~np.eye(R, dtype=bool)
    masks[R + 1] = np.arange(R) < R // 2
    masks[R + 2] = np.arange(R) >= R // 2
    return masks


def _split(values: np.ndarray, R: int):
    """(value, loo, halves) from per-subset values in the order of :func:`_subset_masks`."""
    return float(values[0]), values[1:R + 1].copy(), (float(values[R + 1]), float(values[R + 2]))


def _llr_matrix(U, W, coef, const):
    """log p_m/q at the samples: ``[W, U^2, U] @ coef + const`` (one matrix product; see :func:`_llr_coefficients`)."""
    return np.concatenate([W, U * U, U], axis=1) @ coef + const


def _llr_coefficients(dlt, Dlt, k):
    r"""Coefficients of the LLR of each draw (the same formula as ``distances._llr``):
    :math:`\log p_m/q = c_m + \sum_g [\tfrac{\delta}{2(1+\delta)}(W_g + U_g^2) + \tfrac{\Delta}{1+\delta}U_g]`."""
    inv = 1.0 / (1.0 + dlt)
    half = 0.5 * dlt * inv
    coef = np.concatenate([half, half, Dlt * inv], axis=1).T                      # (3G, M)
    const = np.sum(-0.5 * k.astype(np.float64) * D._psi(dlt) - 0.5 * (dlt + Dlt**2) * inv, axis=-1)
    return coef, const


def _grouped_annealed_tv(dlt, Dlt, k, group, R, n_samples, rng, chunk=2048):
    """Annealed TV of every subset of groups (see :func:`_subset_masks`) from one set of random numbers."""
    M = dlt.shape[0]
    order = np.argsort(group, kind="stable")          # draws sorted by group: columns r*per .. (r+1)*per - 1
    dlt, Dlt, group = dlt[order], Dlt[order], group[order]
    per = M // R
    coef, const = _llr_coefficients(dlt, Dlt, k)
    masks = _subset_masks(R).astype(np.float64)
    log_size = np.log(masks.sum(1) * per)                              # draws in each subset
    n_half = max(int(n_samples) // 2, 2 * R)
    sums = {"p": np.zeros(len(masks)), "q": np.zeros(len(masks))}
    counts = {"p": np.zeros(len(masks)), "q": np.zeros(len(masks))}
    zero = np.zeros((1, k.size))
    for side in ("p", "q"):
        done = 0
        while done < n_half:
            n = min(chunk, n_half - done)
            j = np.arange(done, done + n)
            if side == "q":
                U, W = D._draw_suffstats(n, zero, zero, k, rng)
                g_sample = j % R
            else:
                m = j % M                                               # balanced over the draws
                U, W = D._draw_suffstats(n, dlt[m], Dlt[m], k, rng)
                g_sample = group[m]
            ell = _llr_matrix(U, W, coef, const).reshape(n, R, per)
            top = ell.max(axis=2)                                       # (n, R)
            ell -= top[:, :, None]
            np.exp(ell, out=ell)
            group_sum = ell.sum(axis=2)                                 # sum_m in group exp(l_m - top_g)
            top_all = top.max(axis=1, keepdims=True)
            scaled = group_sum * np.exp(top - top_all)                  # (n, R), relative to the largest
            # log of the mean of exp(l_m) over each subset; a subset whose terms all underflow is ~e^-690
            # below the top, where |tanh(L/2)| = 1 to double precision
            L = top_all + np.log(np.maximum(scaled @ masks.T, 1e-300)) - log_size      # (n, S)
            h = np.abs(np.tanh(0.5 * L))
            inside = masks[:, g_sample].T > 0                              # (n, S): sample belongs to subset
            sums[side] += np.where(inside, h, 0.0).sum(0)
            counts[side] += inside.sum(0)
            done += n
    return 0.5 * (sums["p"] / counts["p"] + sums["q"] / counts["q"])


def _check_groups(group, M, R):
    group = np.asarray(group)
    if group.shape != (M,):
        raise ValueError(f"group must have one label per draw, shape ({M},), got {group.shape}")
    if not np.issubdtype(group.dtype, np.integer) or group.min() < 0 or group.max() >= R:
        raise ValueError(f"group labels must be integers in [0, {R})")
    sizes = np.bincount(group, minlength=R)
    if np.any(sizes != sizes[0]) or sizes[0] < 1:
        raise ValueError(f"every replicate group must hold the same number of draws (>= 1), got sizes {sizes}")
    return group


def replicated_error(law, metric: str, *, group=None, n_groups: int = REPLICATE_GROUPS,
                     rng: np.random.Generator | None = None, n_samples: int = 20000) -> ReplicatedError:
    """``metric`` of a :class:`~experiments.laws.GaussianColumnLaw` with its replicate structure.

    ``group``: replicate group of each internal draw (required when the law has more than one draw).
    ``n_samples``: Monte Carlo samples of the annealed TV (half from the mixture, half from the target).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    mp, sp, mq, sq, k = D._law_args(law)
    M = mp.shape[0]
    if M == 1:
        return _single_law_error(mp, sp, mq, sq, k, metric)
    R = v.positive_int("n_groups", n_groups, minimum=2)
    if R % 2:
        raise ValueError(f"n_groups must be even (two halves), got {R}")
    if group is None:
        raise ValueError("group must give the replicate group of every draw when the law has several draws")
    group = _check_groups(group, M, R)
    masks = _subset_masks(R)
    if metric == "tv_annealed":
        n_samples = v.positive_int("n_samples", n_samples, minimum=4)
        if rng is None:
            raise ValueError("rng must be a numpy.random.Generator for the annealed TV (Monte Carlo)")
        dlt, Dlt = D._standardised(mp, sp, mq, sq, k)
        values = _grouped_annealed_tv(dlt, Dlt, k, group, R, n_samples, rng)
        method = f"annealed TV, Monte Carlo over sufficient statistics, {M} draws in {R} groups"
        bound = 0.0
    else:
        if metric == "tv_quenched":
            per_draw, bounds, method = D._tv_rows(mp, sp, mq, sq, k, D.CF_TOL)
            bound = float(np.max(bounds))
            method = f"quenched TV, {method} per draw"
        elif metric == "sqrt_kl":
            per_draw, bound, method = D.gaussian_kl(mp, sp, mq, sq, k), 0.0, "sqrt of mean KL(target||output)"
        else:
            per_draw, bound, method = D.gaussian_w2(mp, sp, mq, sq, k), 0.0, "mean W2"
        group_means = np.bincount(group, weights=per_draw, minlength=R) / np.bincount(group, minlength=R)
        values = (masks * group_means).sum(1) / masks.sum(1)
        if metric == "sqrt_kl":
            values = np.sqrt(np.maximum(values, 0.0))
    value, loo, halves = _split(values, R)
    return ReplicatedError(value, jackknife_se(loo), loo, halves, M, bound, method)


def _single_law_error(mp, sp, mq, sq, k, metric) -> ReplicatedError:
    if metric in ("tv_annealed", "tv_quenched"):
        vals, bounds, method = D._tv_rows(mp, sp, mq, sq, k, D.CF_TOL)
        return ReplicatedError(float(vals[0]), 0.0, bound=float(bounds[0]), method=f"exact TV: {method}")
    if metric == "sqrt_kl":
        kl = float(D.gaussian_kl(mp, sp, mq, sq, k)[0])
        return ReplicatedError(math.sqrt(max(kl, 0.0)), 0.0, method="sqrt KL(target||output), closed form")
    return ReplicatedError(float(D.gaussian_w2(mp, sp, mq, sq, k)[0]), 0.0, method="W2, closed form")
