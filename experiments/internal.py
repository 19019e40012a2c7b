r"""Internal draws of randomized samplers in law mode: independent replicate groups of Latin hypercubes.

A randomized sampler (random midpoints, Poisson selections, random schedules) has an output law that is
a mixture over its internal randomness :math:`u`: :math:`\bar P = E_u P_u`. Law mode computes each
conditional law :math:`P_u` exactly; the mixture is approximated by ``M`` draws
:math:`\bar P_M = \frac1M\sum_i P_{u_i}`. How those ``M`` draws are made decides how well
:math:`\bar P_M` stands for :math:`\bar P`, the annealed law the theorems bound
(:mod:`experiments.distances`). The design here:

* **Replicate groups.** The draws come in :data:`REPLICATE_GROUPS` = R independent groups of equal size.
  Every number computed from the draws is also computed with each group left out (a delete-one-group
  jackknife), which gives its standard error including the variation over internal draws, and two
  *independent* halves (groups ``0..R/2-1`` and ``R/2..R-1``) give a convergence check in the number of
  draws. The groups are the replicate runs of the whole pipeline: a quantity derived from many cells
  (an N*, a fitted exponent) is recomputed with group r left out of every cell, so its jackknife
  interval carries the internal randomness of every cell it depends on.
* **Latin hypercube inside a group.** For every internal uniform coordinate ``j``, the ``m`` draws of a
  group take one value in each stratum :math:`[s/m, (s+1)/m)`, in an independent random order per
  coordinate. Each draw is still uniform on :math:`[0,1]^n`, so each :math:`P_{u_i}` is an honest draw and
  the group's mixture is unbiased for :math:`\bar P` at every point; the stratification removes most of
  the variance of additive functions of :math:`u`, and a randomized-midpoint method's error is, to
  first order, a sum of independent per-step terms whose mean is the method's small bias. With plain
  Monte Carlo draws that mean is estimated with a standard deviation up to ~85 times its size on
  ``gauss_aniso``, which is what made the annealed TV of 32 plain draws mostly noise.
* **Growth by blocks.** Block ``b`` adds ``m_b`` draws to every group (an independent Latin hypercube per
  group and block), doubling the total each time: ``m_0, m_0, 2 m_0, 4 m_0, ...``. Rows of a block are
  group-major (rows ``r m_b .. (r+1) m_b - 1`` are group ``r``).
* **Common random numbers.** A block's seed is derived from the root seed, the *identity* words given by
  the caller (sampler, target, cost; never the sampler's other parameters) and the block index, so two
  variants or readings of a sampler compared at one cost see the same internal draws wherever they draw
  the same number of uniforms.
"""

from __future__ import annotations

import json
import zlib

import numpy as np

from experiments import _validate as v

#: number of independent replicate groups of internal draws (jackknife over groups: t with R - 1 df)
REPLICATE_GROUPS = 8


class LatinHypercube:
    """A source of internal uniforms for law mode: ``random((R * m, n))`` returns R independent
    ``m``-point Latin hypercubes in ``[0, 1]^n`` stacked group-major.

    Law mode's noise source calls ``random((n_draws, size))`` once per request of internal randomness
    (see :class:`experiments.noise.LawNoise`); each call is stratified on its own.
    """

    def __init__(self, rng: np.random.Generator, n_groups: int = REPLICATE_GROUPS):
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.rng = rng
        self.n_groups = v.positive_int("n_groups", n_groups)

    def random(self, shape) -> np.ndarray:
        rows, n = (int(s) for s in shape)
        if rows % self.n_groups:
            raise ValueError(f"n_draws must be a multiple of the {self.n_groups} replicate groups, got {rows}")
        m = rows // self.n_groups
        # a random permutation of the m strata per (group, coordinate), jittered inside its stratum
        strata = np.argsort(self.rng.random((self.n_groups, m, n)), axis=1)
        return ((strata + self.rng.random((self.n_groups, m, n))) / m).reshape(rows, n)


def block_sizes(per_group_first: int, n_blocks: int) -> list[int]:
    """Draws per group added by blocks ``0..n_blocks-1``: ``m_0, m_0, 2 m_0, 4 m_0, ...`` (the total doubles)."""
    m0 = v.positive_int("per_group_first", per_group_first)
    n_blocks = v.positive_int("n_blocks", n_blocks)
    return [m0] + [m0 * 2 ** (b - 1) for b in range(1, n_blocks)]


def draws_after(per_group_first: int, n_blocks: int, n_groups: int = REPLICATE_GROUPS) -> int:
    """Total draws after ``n_blocks`` blocks."""
    return n_groups * per_group_first * 2 ** (n_blocks - 1)


def block_seed(root_seed: int, identity: dict, block: int) -> np.random.SeedSequence:
    """Seed of one block of internal draws: from the root seed, the identity words and the block index."""
    root_seed = v.positive_int("root_seed", root_seed, minimum=0)
    words = json.dumps(identity, sort_keys=True, default=str).encode()
    return np.random.SeedSequence([root_seed, zlib.crc32(words), v.positive_int("block", block, minimum=0)])


def group_labels(blocks: list[int], n_groups: int = REPLICATE_GROUPS) -> np.ndarray:
    """Group of every draw when blocks of ``blocks[b]`` draws per group are concatenated in order."""
    return np.concatenate([np.repeat(np.arange(n_groups), m) for m in blocks])
