r"""From errors to iteration counts: the search for :math:`N^*(d, \varepsilon)`, always counted in NFE.

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
``diverged``      the last cell above ``eps`` has a non-finite error (an unstable sampler's law): N* is
                  at most the next scanned NFE, which is reported; no interpolation, excluded from fits

**Uncertainty.** With errors that carry standard errors (randomized samplers), :math:`\log N^*` is a
function of the two bracketing errors :math:`y_i = \log e_i`, :math:`y_{i+1}` (costs
:math:`x = \log n`, :math:`\ell = \log\varepsilon`):

.. math::
   \log N^* = x_i + (\ell - y_i)\frac{x_{i+1}-x_i}{y_{i+1}-y_i},\qquad
   \frac{\partial \log N^*}{\partial y_i} = \frac{(x_{i+1}-x_i)(\ell - y_{i+1})}{(y_{i+1}-y_i)^2},\quad
   \frac{\partial \log N^*}{\partial y_{i+1}} = -\frac{(x_{i+1}-x_i)(\ell - y_i)}{(y_{i+1}-y_i)^2},

with :math:`\mathrm{se}(y) = \mathrm{se}(e)/e`; the two cells have independent internal draws, so the
delta-method standard error of :math:`\log N^*` adds their terms in quadrature (``log_se``). The
replicate structure gives a second, independent estimate: :math:`N^*` recomputed from every
leave-one-group-out error curve (:func:`nstar_table`).

**Ambiguity.** If a noisy error (one with standard errors) is below eps by more than two standard
errors at a cell *before* the last crossing, the error crossed eps at least twice beyond its noise: the
curve does not decide one N* (``ambiguous``), and the row is excluded from fits (and counted). A
deterministic curve that crosses twice really does (``monotone`` is False); its last crossing is kept.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from experiments import _validate as v


@dataclass(frozen=True)
class NStar:
    value: float            # N* (NaN unless interpolated)
    crossing: str           # interpolated | below_grid | above_grid | diverged
    log_se: float = 0.0     # delta-method standard error of log N* (0 for exact errors)
    bracket: tuple[int, int] | None = None   # indices of the two cells that decide it
    ambiguous: bool = False


def is_monotone(errors, errors_se=None, *, n_se: float = 3.0) -> bool:
    """True when the error never increases with cost by more than ``n_se`` combined standard errors."""
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 1:
        raise ValueError(f"errors must have 1 dimension, got shape {e.shape}")
    se = np.zeros_like(e) if errors_se is None else np.broadcast_to(np.asarray(errors_se, float), e.shape)
    se = np.where(np.isfinite(se), se, 0.0)
    e = np.where(np.isfinite(e), e, np.finfo(float).max)     # a diverged cell is above everything
    rise = np.diff(e)
    slack = n_se * np.hypot(se[1:], se[:-1])
    return bool(np.all(rise <= slack))


def _check(nfe, errors, eps):
    nfe = v.positive_array("nfe", nfe, ndim=1)
    try:
        e = np.asarray(errors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"errors must be numeric, got {errors!r}") from exc
    if e.ndim != 1:
        raise ValueError(f"errors must have 1 dimension, got shape {e.shape}")
    if np.any(e == -np.inf):
        raise ValueError("errors must not be -inf")
    eps = v.in_open_interval("eps", eps, 0.0, 1.0e300)
    if nfe.shape != e.shape:
        raise ValueError(f"nfe and errors must have the same shape, got {nfe.shape} and {e.shape}")
    if not np.all(np.diff(nfe) > 0):
        raise ValueError("nfe must be strictly increasing")
    return nfe, e, eps


def nstar_detail(nfe, errors, eps, errors_se=None) -> NStar:
    """N* for one accuracy ``eps`` with its delta-method uncertainty (see the module docstring)."""
    nfe, e, eps = _check(nfe, errors, eps)
    se = np.zeros_like(e) if errors_se is None else np.broadcast_to(np.asarray(errors_se, float), e.shape)
    se = np.where(np.isfinite(se), se, 0.0)
    above = np.flatnonzero(~(e <= eps))          # a non-finite error (a diverged law) meets no eps
    if above.size == 0:
        return NStar(math.nan, "below_grid")
    i = int(above[-1])
    if i == e.size - 1:
        return NStar(math.nan, "above_grid")
    if not np.isfinite(e[i]):                   # nothing to interpolate from: N* <= the next cost
        return NStar(float(nfe[i + 1]), "diverged", math.nan, (i, i + 1))
    # several crossings beyond the noise; a deterministic curve's extra crossings are real, not noise, and
    # its last crossing is the N* it can guarantee, so only noisy curves are called ambiguous
    ambiguous = bool(np.any(se > 0) and np.any(e[:i] < eps - 2.0 * se[:i]))
    if e[i + 1] <= 0:
        return NStar(float(nfe[i + 1]), "interpolated", 0.0, (i, i + 1), ambiguous)
    x0, x1 = math.log(nfe[i]), math.log(nfe[i + 1])
    y0, y1, ell = math.log(e[i]), math.log(e[i + 1]), math.log(eps)
    value = math.exp(x0 + (ell - y0) * (x1 - x0) / (y1 - y0))
    g0 = (x1 - x0) * (ell - y1) / (y1 - y0) ** 2
    g1 = -(x1 - x0) * (ell - y0) / (y1 - y0) ** 2
    log_se = math.hypot(g0 * se[i] / e[i], g1 * se[i + 1] / e[i + 1])
    return NStar(value, "interpolated", log_se, (i, i + 1), ambiguous)


def nstar(nfe, errors, eps) -> tuple[float, str]:
    """N* for one accuracy ``eps`` from errors scanned at increasing ``nfe`` (see the module docstring)."""
    res = nstar_detail(nfe, errors, eps)
    return res.value, res.crossing


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


#: columns that identify one error curve
CURVE = ["study", "sampler", "variant", "target", "params", "metric", "d"]


def _status(res: NStar, gates) -> str:
    """Whether an N* row may enter a fit: ``ok``, or why not."""
    if res.crossing != "interpolated":
        return res.crossing               # below_grid, above_grid, diverged
    if res.ambiguous:
        return "ambiguous"
    if any(gates[j] == "unresolved" for j in res.bracket):
        return "unresolved"
    return "ok"


def nstar_table(errors, replicates=None, scans=None, served=None):
    """N* rows for every curve of ``errors`` and every eps its scan serves, and their replicates.

    ``errors``: tidy error rows (experiments.cells.run_scan); ``replicates``: the leave-one-group-out
    rows (or None). The eps served come from ``scans`` (experiments.cells.Scan) or from ``served``
    (``{(sampler, variant, target, params_json): {(d, eps), ...}}``).

    Returns ``(nstar, nstar_replicates)``. ``nstar`` has one row per (curve, eps) with ``nstar``,
    ``crossing``, ``nstar_log_se`` (delta method), ``nstar_jk_se`` (jackknife over groups, randomized
    samplers), ``status`` (``ok`` rows enter fits), ``monotone``, ``draws`` (most draws in the curve's
    deciding cells). ``nstar_replicates`` has one row per (curve, eps, group) with the group left out.
    """
    import pandas as pd

    from experiments.replicates import jackknife_se

    if served is None:
        served = defaultdict(set)
        for s in scans or ():
            key = (s.sampler, s.variant, s.target, json.dumps(dict(s.params), sort_keys=True))
            served[key].update(s.pairs)
    reps = None
    if replicates is not None and len(replicates):
        reps = {k: g for k, g in replicates.groupby(CURVE, sort=False)}
    rows, rep_rows = [], []
    for key, grp in errors.groupby(CURVE, sort=True):
        study, sampler, variant, target, params_json, metric, d = key
        grp = grp.sort_values("nfe")
        nfe, err = grp["nfe"].to_numpy(float), grp["error"].to_numpy(float)
        se = grp["error_se"].to_numpy(float)
        gates = grp["gate"].to_numpy() if "gate" in grp else np.full(len(grp), "exact")
        eps_list = sorted(e for dd, e in served[(sampler, variant, target, params_json)] if dd == d)
        mono = is_monotone(err, se)
        loo = None
        if reps is not None and key in reps:
            pivot = reps[key].pivot_table(index="cost", columns="group", values="error", dropna=False)
            loo = pivot.loc[grp["cost"].to_numpy()].to_numpy(float)          # (n_costs, R)
        for e in eps_list:
            res = nstar_detail(nfe, err, e, se)
            row = {"study": study, "sampler": sampler, "variant": variant, "target": target, "metric": metric,
                   "d": int(d), "eps": e, "nstar": res.value, "crossing": res.crossing,
                   "nstar_log_se": res.log_se, "nstar_jk_se": math.nan, "status": _status(res, gates),
                   "monotone": mono, "draws": int(grp["draws"].max()) if "draws" in grp else 1,
                   "seed": int(grp["seed"].iloc[0]), "profile": grp["profile"].iloc[0], "params": params_json}
            if loo is not None:
                logs = []
                for g in range(loo.shape[1]):
                    r = nstar_detail(nfe, loo[:, g], e)
                    rep_rows.append({"study": study, "sampler": sampler, "variant": variant, "target": target,
                                     "metric": metric, "d": int(d), "eps": e, "params": params_json, "group": g,
                                     "nstar": r.value, "crossing": r.crossing})
                    logs.append(math.log(r.value) if r.crossing == "interpolated" else math.nan)
                if res.crossing == "interpolated" and np.all(np.isfinite(logs)):
                    row["nstar_jk_se"] = jackknife_se(logs)
            rows.append(row)
    return pd.DataFrame(rows), pd.DataFrame(rep_rows)
