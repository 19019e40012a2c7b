r"""From errors to iteration counts: the search for :math:`N^*(d, \varepsilon)` (DESIGN section 8).

For one (sampler, variant, target, metric, d) the study evaluates the error at a geometric ladder of
cost values. :math:`N^*(\varepsilon)` is the smallest NFE at which the error is at most
:math:`\varepsilon`. Between two scanned costs the error is interpolated linearly in log-log
coordinates (errors of discretisations are locally power laws in the cost), which removes the
quantisation of the ladder from the fitted exponents.

Where the error is not monotone in the cost, the *last* crossing is used: :math:`N^*` is placed after
the largest scanned cost whose error still exceeds :math:`\varepsilon`, so that every larger
scanned cost meets the accuracy. ``crossing`` says what happened:

``interpolated``  the error crosses ``eps`` inside the scanned range
``below_grid``    already the smallest cost meets ``eps`` (N* below the ladder; NaN)
``above_grid``    even the largest cost misses ``eps`` (N* above the ladder; NaN)
"""

from __future__ import annotations

import numpy as np

from experiments import _validate as v


def is_monotone(errors, errors_se=None, *, n_se: float = 3.0) -> bool:
    """True when the error never increases with cost by more than ``n_se`` combined standard errors."""
    e = np.asarray(errors, float)
    se = np.zeros_like(e) if errors_se is None else np.asarray(errors_se, float)
    rise = np.diff(e)
    slack = n_se * np.hypot(se[1:], se[:-1])
    return bool(np.all(rise <= slack))


def nstar(nfe, errors, eps) -> tuple[float, str]:
    """N* for one accuracy ``eps`` from errors scanned at increasing ``nfe`` (see module docstring)."""
    nfe = v.positive_array("nfe", nfe, ndim=1)
    e = v.finite_array("errors", errors, ndim=1)
    eps = v.in_open_interval("eps", eps, 0.0, 1.0e300)
    if nfe.shape != e.shape:
        raise ValueError(f"nfe and errors must have the same shape, got {nfe.shape} and {e.shape}")
    if not np.all(np.diff(nfe) > 0):
        raise ValueError("nfe must be strictly increasing")
    above = np.flatnonzero(e > eps)
    if above.size == 0:
        return float("nan"), "below_grid"
    i = above[-1]
    if i == e.size - 1:
        return float("nan"), "above_grid"
    if e[i + 1] <= 0:
        return float(nfe[i + 1]), "interpolated"
    x0, x1 = np.log(nfe[i]), np.log(nfe[i + 1])
    y0, y1 = np.log(e[i]), np.log(e[i + 1])
    frac = (np.log(eps) - y0) / (y1 - y0)
    return float(np.exp(x0 + frac * (x1 - x0))), "interpolated"


def cost_ladder(start: int, stop: int, per_octave: int = 2, multiple: int = 1) -> list[int]:
    """Distinct integers, geometric from ``start`` to at least ``stop``, ``per_octave`` per doubling,
    rounded to multiples of ``multiple`` (e.g. Li & Jiao's T must be a multiple of its block count)."""
    start = v.positive_int("start", start)
    stop = v.positive_int("stop", stop)
    per_octave = v.positive_int("per_octave", per_octave)
    multiple = v.positive_int("multiple", multiple)
    if stop < start:
        raise ValueError("stop must be >= start")
    n = int(np.ceil(np.log2(stop / start) * per_octave)) + 1
    raw = start * 2.0 ** (np.arange(n) / per_octave)
    values = np.unique(np.maximum(np.round(raw / multiple), 1).astype(int) * multiple)
    return [int(x) for x in values]
