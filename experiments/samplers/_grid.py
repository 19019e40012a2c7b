"""Base class for samplers that walk a fixed, decreasing grid of OU times."""

from __future__ import annotations

import numpy as np

from experiments import _validate as v
from experiments import processes
from experiments.samplers import _limits as lim
from experiments.samplers._api import Kernel

#: default horizon and early-stopping level shared by the diffusion samplers (OU time)
DEFAULT_T = 8.0
DEFAULT_DELTA = 1e-3


def check_grid(ts) -> np.ndarray:
    """A float64 array of OU times, strictly decreasing, all > 0, at least two points."""
    ts = v.finite_array("ts", ts, ndim=1)
    if ts.size < 2:
        raise ValueError("ts must have at least two points")
    if np.any(ts <= 0):
        raise ValueError("ts must be > 0 (stop at an early-stopping level delta > 0)")
    if not np.all(np.diff(ts) < 0):
        raise ValueError("ts must be strictly decreasing (reverse time)")
    return ts


def build_grid(steps, *, T=DEFAULT_T, delta=DEFAULT_DELTA, grid="log_snr", **grid_kwargs) -> np.ndarray:
    """``steps`` steps of the named grid from ``T`` down to ``delta`` (see :mod:`experiments.processes`).

    Bounds (:mod:`experiments.samplers._limits`): ``1 <= steps <= 10**7``, ``0 < delta < T <= 50``.
    """
    steps = lim.count("steps", steps)
    T = lim.horizon_T("T", T)
    return processes.make_grid(grid, T, delta, steps, **grid_kwargs)


class GridKernel(Kernel):
    """A kernel whose step ``k`` goes from ``ts[k]`` to ``ts[k+1] < ts[k]``."""

    def __init__(self, ts):
        self.ts = check_grid(ts)
        self.n_steps = self.ts.size - 1
        self.end_time = float(self.ts[-1])

    def start_time(self, aux):
        return float(self.ts[0])
