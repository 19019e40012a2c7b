r"""Exponents of N*(d, eps) with intervals that say what they are (the primary estimator).

The model is the power law :math:`\log N^* = c + a\log d + b\log(1/\varepsilon)`, fitted by least
squares over the rows of ``nstar.csv`` whose ``status`` is ``ok`` (interpolated, one decided crossing,
both deciding cells resolved). No free log regressor: over feasible windows a log log(d/eps) term is
nearly collinear with log d (R² 0.96-0.98 on the default grid), so it moves a and b together and
widens their intervals five-fold; the claims' hidden logs are allowed for one-sidedly in
:mod:`analysis.verdicts` instead.

What the interval is depends on where the uncertainty comes from:

**Randomized samplers: a replicate jackknife of the whole pipeline.** Every N* is recomputed with each
of the R replicate groups of internal draws left out of every cell (``nstar_replicates.csv``); the fit
is redone on each such table, giving :math:`a_{(-r)}, b_{(-r)}`, and

.. math:: \mathrm{se}(a)^2 = \frac{R-1}{R}\sum_r (a_{(-r)} - \bar a_{(\cdot)})^2,\qquad
          a \pm t_{R-1,\,0.975}\,\mathrm{se}(a).

This interval carries the internal randomness of every cell the fit depends on (draws, the Monte Carlo
of the annealed TV); its coverage is tested over independent root seeds (tests/test_coverage.py).
It does not contain the fit's misfit (the window's curvature), which is not sampling error: the spread
of local slopes is reported beside it.

**Deterministic samplers: no sampling error, so no confidence interval.** On a product target a sampler
with deterministic step times has an N* that depends on (d, eps) only through ``d / eps^r`` (r = 2 for
TV, sqrt KL and W2: :data:`STRUCTURE_RATIO`), so the one-slope model
:math:`\log N^* = c + s\log(d/\varepsilon^r)` is fitted (a = s, b = r s), and the *range of local
slopes* between successive distinct values of :math:`d/\varepsilon^r` over the window is reported as
the uncertainty (``interval = "local-slope range"``): it says how much the exponent moves across the
window, not a probability. ``structure_spread`` is the largest gap between log N* values at one
value of :math:`d/\varepsilon^r` (0 when the structure holds exactly; TV at small d departs from it).
Where the structure does not apply (non-product targets) the joint fit is reported with the ranges of
the local slopes along d and along eps.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: the columns that identify one family of N* curves (one fit)
KEYS = ["study", "sampler", "variant", "target", "metric"]
#: confidence level of the jackknife intervals
LEVEL = 0.95
#: b = ratio * a on product targets with deterministic-time samplers (the error depends on d / eps^ratio)
STRUCTURE_RATIO = {"tv_annealed": 2.0, "tv_quenched": 2.0, "w2": 2.0, "sqrt_kl": 2.0, "kl": 1.0}


def default_is_product_target(name: str) -> bool:
    """Product targets are the grouped families; names of dense mixtures say so (``gmm``, ``dense``)."""
    name = str(name).lower()
    return not (name.startswith("gmm") or "dense" in name or "general" in name)


def registry_randomized() -> dict:
    from experiments.samplers import REGISTRY

    return {name: bool(spec.randomized) for name, spec in REGISTRY.items()}


def _design(d, eps):
    d, eps = np.asarray(d, float), np.asarray(eps, float)
    return np.column_stack([np.ones_like(d), np.log(d), np.log(1.0 / eps)])


def ols(y, X) -> np.ndarray:
    """Least-squares coefficients (NaN when the design is rank-deficient)."""
    y, X = np.asarray(y, float), np.asarray(X, float)
    if len(y) < X.shape[1] or np.linalg.matrix_rank(X) < X.shape[1]:
        return np.full(X.shape[1], np.nan)
    return np.linalg.lstsq(X, y, rcond=None)[0]


def jackknife_interval(estimate: float, replicates, level: float = LEVEL):
    """``(se, lo, hi)``: delete-one-group jackknife standard error and the t interval with R - 1 df."""
    reps = np.asarray(replicates, float)
    R = reps.size
    if R < 2 or not np.all(np.isfinite(reps)) or not np.isfinite(estimate):
        return math.nan, math.nan, math.nan
    se = math.sqrt((R - 1) / R * np.sum((reps - reps.mean()) ** 2))
    half = stats.t.ppf(0.5 + level / 2, R - 1) * se
    return se, estimate - half, estimate + half


def _window(d, eps) -> str:
    if len(d) == 0:
        return "no points"
    return (f"d in [{np.min(d):g}, {np.max(d):g}] ({len(np.unique(d))} values); "
            f"eps in [{np.min(eps):g}, {np.max(eps):g}] ({len(np.unique(eps))} values)")


def _excluded(part: pd.DataFrame) -> str:
    bad = part[part["status"] != "ok"]
    if bad.empty:
        return ""
    return ", ".join(f"{n} {s}" for s, n in bad["status"].value_counts().sort_index().items())


def _mean_by(keys, values):
    """Unique keys (sorted) and the mean of ``values`` at each."""
    uk, inv = np.unique(keys, return_inverse=True)
    return uk, np.bincount(inv, weights=values) / np.bincount(inv)


def local_slope_ranges(d, eps, logn):
    """Ranges ``(a_min, a_max, b_min, b_max)`` of successive log-log slopes along d (fixed eps) and along
    1/eps (fixed d), after averaging log N* at equal (d, eps); NaN where no pair exists."""
    ld, le, y = np.log(np.asarray(d, float)), np.log(1.0 / np.asarray(eps, float)), np.asarray(logn, float)
    out = []
    for fixed, x in ((le, ld), (ld, le)):
        slopes = []
        for f in np.unique(fixed):
            sel = fixed == f
            xs, ys = _mean_by(x[sel], y[sel])
            slopes += list(np.diff(ys) / np.diff(xs))
        out += [min(slopes), max(slopes)] if slopes else [math.nan, math.nan]
    return tuple(out)


def structure_fit(d, eps, logn, r: float):
    """One-slope fit in x = log(d / eps^r): ``(s, s_min, s_max, spread, n_x)`` (local slopes between successive
    distinct x after averaging log N* at equal x; ``spread``: largest |log N* - mean| at one x)."""
    x = np.round(np.log(np.asarray(d, float)) + r * np.log(1.0 / np.asarray(eps, float)), 9)
    y = np.asarray(logn, float)
    s = ols(y, np.column_stack([np.ones_like(x), x]))[1]
    ux, means = _mean_by(x, y)
    spread = float(np.max(np.abs(y - means[np.searchsorted(ux, x)]))) if len(y) else math.nan
    slopes = np.diff(means) / np.diff(ux)
    lo, hi = (float(slopes.min()), float(slopes.max())) if slopes.size else (math.nan, math.nan)
    return float(s), lo, hi, spread, len(ux)


def _replicate_table(part: pd.DataFrame, reps: pd.DataFrame | None):
    """log N* of each ok row under each left-out group: array (n_rows, R), or None."""
    if reps is None or reps.empty:
        return None
    groups = np.unique(reps["group"].to_numpy())
    row_of = {k: i for i, k in enumerate(zip(part["d"], part["eps"], part["params"], strict=True))}
    col_of = {g: j for j, g in enumerate(groups)}
    table = np.full((len(part), groups.size), np.nan)
    ok = reps["crossing"].to_numpy() == "interpolated"
    for d, e, p, g, n, good in zip(reps["d"], reps["eps"], reps["params"], reps["group"], reps["nstar"], ok,
                                      strict=True):
        i = row_of.get((d, e, p))
        if i is not None and good:
            table[i, col_of[g]] = math.log(n)
    return table if np.isfinite(table).any() else None


def fit_family(part: pd.DataFrame, reps: pd.DataFrame | None, *, randomized: bool, product: bool) -> tuple[dict, list]:
    """Exponents of one curve family (``part``: its nstar rows) and its per-group replicate exponents."""
    metric = part["metric"].iloc[0]
    ok = part[part["status"] == "ok"]
    d, eps = ok["d"].to_numpy(float), ok["eps"].to_numpy(float)
    logn = np.log(ok["nstar"].to_numpy(float))
    row = {"n": len(ok), "excluded": _excluded(part), "n_replicate_dropped": 0, "window": _window(d, eps),
           "d_min": d.min() if len(d) else math.nan, "d_max": d.max() if len(d) else math.nan,
           "eps_min": eps.min() if len(d) else math.nan, "eps_max": eps.max() if len(d) else math.nan,
           "nstar_min": float(np.exp(logn.min())) if len(d) else math.nan,
           "nstar_max": float(np.exp(logn.max())) if len(d) else math.nan, "reason": ""}
    a_lmin, a_lmax, b_lmin, b_lmax = local_slope_ranges(d, eps, logn) if len(d) else (math.nan,) * 4
    row.update(a_local_min=a_lmin, a_local_max=a_lmax, b_local_min=b_lmin, b_local_max=b_lmax)
    reps_out = []
    enough = len(np.unique(d)) >= 2 and len(np.unique(eps)) >= 2 and len(d) >= 4
    c, a, b = ols(logn, _design(d, eps)) if enough else (math.nan,) * 3
    row.update(a_joint=a, b_joint=b)
    r = STRUCTURE_RATIO.get(metric, math.nan)
    if randomized:
        row.update(interval="jackknife 95%", a=a, b=b)
        table = _replicate_table(ok, reps)
        if not enough:
            row.update(a_se=math.nan, a_lo=math.nan, a_hi=math.nan, b_se=math.nan, b_lo=math.nan, b_hi=math.nan,
                       reason="too few ok points for a joint fit (need 2 d, 2 eps, 4 points)")
            return row, reps_out
        if table is None:
            row.update(a_se=math.nan, a_lo=math.nan, a_hi=math.nan, b_se=math.nan, b_lo=math.nan, b_hi=math.nan,
                       reason="no replicate N* table")
            return row, reps_out
        usable = np.all(np.isfinite(table), axis=1)
        row["n_replicate_dropped"] = int((~usable).sum())
        X = _design(d[usable], eps[usable])
        a0, b0 = ols(logn[usable], X)[1:]
        ra, rb = [], []
        for g in range(table.shape[1]):
            _, ag, bg = ols(table[usable, g], X)
            ra.append(ag)
            rb.append(bg)
            reps_out.append({"group": g, "a": ag, "b": bg})
        a_se, a_lo, a_hi = jackknife_interval(a0, ra)
        b_se, b_lo, b_hi = jackknife_interval(b0, rb)
        row.update(a=a0, b=b0, a_se=a_se, a_lo=a_lo, a_hi=a_hi, b_se=b_se, b_lo=b_lo, b_hi=b_hi)
        return row, reps_out
    # deterministic: no sampling error
    row.update(a_se=math.nan, b_se=math.nan, interval="local-slope range")
    if product and np.isfinite(r) and len(d) >= 3:
        s, s_lo, s_hi, spread, n_x = structure_fit(d, eps, logn, r)
        row.update(model=f"log N* = c + s log(d / eps^{r:g}); a = s, b = {r:g} s", a=s, b=r * s, a_lo=s_lo, a_hi=s_hi,
                   b_lo=r * s_lo, b_hi=r * s_hi, structure_spread=spread, n_structure_values=n_x)
        if n_x < 3:
            row["reason"] = "fewer than 3 distinct values of d/eps^r: no local-slope range"
        return row, reps_out
    row.update(model="log N* = c + a log d + b log(1/eps)", a=a, b=b, a_lo=a_lmin, a_hi=a_lmax, b_lo=b_lmin,
               b_hi=b_lmax, structure_spread=math.nan)
    if not enough:
        row["reason"] = "too few ok points for a joint fit (need 2 d, 2 eps, 4 points)"
    return row, reps_out


def fit_exponents(nstar: pd.DataFrame, replicates: pd.DataFrame | None = None, *,
                  randomized: dict | None = None,
                  is_product_target: Callable[[str], bool] = default_is_product_target,
                  keys: Sequence[str] = KEYS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Primary exponent estimates of every curve family in ``nstar`` (see the module docstring).

    Returns ``(exponents, exponent_replicates)``: one row per family, and for randomized samplers one row
    per (family, left-out group) with the replicate exponents (used by paired comparisons)."""
    randomized = registry_randomized() if randomized is None else dict(randomized)
    keys = [k for k in keys if k in nstar.columns]
    rep_groups = {} if replicates is None or replicates.empty else {
        k if isinstance(k, tuple) else (k,): g for k, g in replicates.groupby(keys, sort=False)}
    rows, reps = [], []
    for key, part in nstar.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        ident = dict(zip(keys, key, strict=True))
        rnd = bool(randomized.get(ident["sampler"], False))
        product = is_product_target(ident.get("target", ""))
        row, rep = fit_family(part, rep_groups.get(key), randomized=rnd, product=product)
        row["draws_max"] = int(part["draws"].max()) if "draws" in part.columns else 1
        rows.append({**ident, "randomized": rnd, "estimator": "N* power law", **row})
        reps += [{**ident, **r} for r in rep]
    return pd.DataFrame(rows), pd.DataFrame(reps)


def params_horizon(params_json) -> float:
    """The OU horizon ``T`` of a parameter set (NaN when it has none)."""
    try:
        return float(json.loads(params_json).get("T", math.nan))
    except (TypeError, ValueError, AttributeError):
        return math.nan
