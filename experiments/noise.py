"""Noise sources: the only way a sampler draws randomness (so law mode can run the same sampler code).

A sampler asks for two kinds of draws:

* **Gaussian draws**, ``noise.normal(n_columns)``: standard normals of shape ``(batch, n_columns)``,
  i.i.d. across rows, columns and calls (Brownian increments, injected noise).
* **Internal randomness**, ``noise.uniform(size)`` / ``noise.bernoulli(p, size)``: one value per row
  (shape ``(batch, size)``), shared by all columns of that row (random midpoint times, Poisson
  selections, random schedules).

:class:`SampleNoise` backs both with a ``numpy.random.Generator``: every row is an independent run,
so a batch of outputs is i.i.d. from the sampler's true output law.

:class:`LawNoise` serves law mode (:mod:`experiments.laws`). Rows come in blocks of ``n_probes``
impulse rows, one block per draw of internal randomness; inside a block the internal randomness
is shared (the law is computed *conditional* on it), and the k-th Gaussian draw of a step is a
unit impulse on the block's row ``first_draw_row + k`` and zero elsewhere. :class:`ProbeMajorLawNoise`
is the same source with the rows ordered probe by probe (row ``p * n_draws + m``), the layout
:func:`experiments.laws.gaussian_law` uses: each probe's rows are then one contiguous block.
"""

from __future__ import annotations

import numpy as np

from experiments import _validate as v


class SampleNoise:
    """Sample mode: independent rows drawn from ``rng``."""

    mode = "sample"

    def __init__(self, rng: np.random.Generator, batch: int):
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        self.rng = rng
        self.batch = v.positive_int("batch", batch)

    def normal(self, n_columns: int) -> np.ndarray:
        return self.rng.standard_normal((self.batch, n_columns))

    def uniform(self, size: int = 1) -> np.ndarray:
        return self.rng.random((self.batch, size))

    def bernoulli(self, p: float, size: int = 1) -> np.ndarray:
        return self.uniform(size) < p

    def begin_step(self) -> None:
        """Called by the driver before every step (law mode resets its draw counter)."""


class LawNoise:
    """Law mode: impulse rows for the Gaussian draws, internal randomness shared inside a block.

    Row ``m * n_probes + p`` is probe ``p`` of internal draw ``m``.
    """

    mode = "law"

    def __init__(self, rng: np.random.Generator, n_draws: int, n_probes: int, first_draw_row: int, max_draws: int):
        self.rng = rng
        self.n_draws = n_draws
        self.n_probes = n_probes
        self.first_draw_row = first_draw_row
        self.max_draws = max_draws
        self.batch = n_draws * n_probes
        self._count = 0

    def begin_step(self) -> None:
        self._count = 0

    def normal(self, n_columns: int) -> np.ndarray:
        k = self._count
        if k >= self.max_draws:
            raise RuntimeError(
                f"a step made more than {self.max_draws} Gaussian draws; raise the kernel's draws_per_step"
            )
        self._count += 1
        z = np.zeros((self.n_draws, self.n_probes, n_columns))
        z[:, self.first_draw_row + k, :] = 1.0
        return z.reshape(self.batch, n_columns)

    def _shared(self, values: np.ndarray) -> np.ndarray:
        return np.repeat(values, self.n_probes, axis=0)

    def uniform(self, size: int = 1) -> np.ndarray:
        return self._shared(self.rng.random((self.n_draws, size)))

    def bernoulli(self, p: float, size: int = 1) -> np.ndarray:
        return self.uniform(size) < p


class ProbeMajorLawNoise(LawNoise):
    """:class:`LawNoise` with probe-major rows: row ``p * n_draws + m`` is probe ``p`` of internal draw ``m``.

    The draws themselves are those of :class:`LawNoise` (the same ``rng.random((n_draws, size))`` calls,
    row ``m`` for draw ``m``); only the order of the rows differs, and the arrays returned are
    column-major. With this layout column ``g`` of probe ``p`` is one contiguous run of ``n_draws``
    values, so law mode reads the affine coefficients off by contiguous copies, and a kernel's per-row
    factor ``aux[:, j:j + 1]`` is contiguous and broadcasts along the long axis.
    """

    def normal(self, n_columns: int) -> np.ndarray:
        k = self._count
        if k >= self.max_draws:
            raise RuntimeError(
                f"a step made more than {self.max_draws} Gaussian draws; raise the kernel's draws_per_step"
            )
        self._count += 1
        z = np.zeros((n_columns, self.n_probes, self.n_draws))
        z[:, self.first_draw_row + k] = 1.0
        return z.reshape(n_columns, self.batch).T

    def _shared(self, values: np.ndarray) -> np.ndarray:
        return self.to_probes(values)

    def to_probes(self, values: np.ndarray) -> np.ndarray:
        """Rows ``(n_draws, ...)`` -> probe rows ``(n_probes * n_draws, ...)`` (row ``m`` copied to every
        probe of draw ``m``), column-major."""
        values = np.asfortranarray(values)
        out = np.empty((self.batch,) + values.shape[1:], dtype=values.dtype, order="F")
        for p in range(self.n_probes):
            out[p * self.n_draws:(p + 1) * self.n_draws] = values       # contiguous runs per column
        return out


class PinnedInternal:
    """Wrap a noise source so that every internal uniform equals ``value`` (Gaussian draws unchanged).

    Used to pin a randomized midpoint (``value = 0.5`` gives the deterministic midpoint rule).
    """

    def __init__(self, base, value: float):
        self.base = base
        self.value = v.finite_array("value", value, ndim=0).item()
        if not 0.0 <= self.value <= 1.0:
            raise ValueError("value must lie in [0, 1]")
        self.mode = base.mode
        self.batch = base.batch

    def normal(self, n_columns):
        return self.base.normal(n_columns)

    def uniform(self, size=1):
        return np.full((self.batch, size), self.value)

    def bernoulli(self, p, size=1):
        return self.uniform(size) < p

    def begin_step(self):
        self.base.begin_step()
