"""The primary exponent estimator: replicate jackknife for randomized samplers, structure fit and local-slope
range for deterministic ones, N* rows that may not enter a fit.

Synthetic tables with a known truth: log N* of each row is the truth plus the mean of R independent group
effects (as a randomized sampler's N* is a function of its R replicate groups of draws), and the table
with group r left out uses the mean of the others. Over many such experiments the jackknife interval must
cover the truth at the nominal rate; an interval that ignores the replicates does not (negative control).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.exponents import fit_exponents, jackknife_interval, local_slope_ranges, structure_fit

D = (10, 100, 1000, 10**4, 10**5)
EPS = (0.2, 0.1, 0.05, 0.02)
R = 8


def _rows(d, e, n, status="ok", sampler="r"):
    return pd.DataFrame(dict(study="t", sampler=sampler, variant="tuned", target="gauss_aniso", metric="tv_annealed",
                             d=d, eps=e, nstar=n, status=status, params="{}", crossing="interpolated"))


def synthetic(rng, a=0.4, b=0.7, sigma=0.3):
    d, e = (g.ravel() for g in np.meshgrid(np.asarray(D, float), np.asarray(EPS, float), indexing="ij"))
    truth = np.log(5.0) + a * np.log(d) + b * np.log(1 / e)
    effects = sigma * rng.standard_normal((d.size, R))
    pooled = truth + effects.mean(1)
    reps = []
    for g in range(R):
        loo = truth + np.delete(effects, g, axis=1).mean(1)
        reps.append(_rows(d, e, np.exp(loo)).assign(group=g))
    return _rows(d, e, np.exp(pooled)), pd.concat(reps, ignore_index=True)


def test_jackknife_interval_formula():
    reps = np.array([1.0, 2.0, 4.0, 3.0])
    se, lo, hi = jackknife_interval(2.5, reps)
    assert se == pytest.approx(np.sqrt(3 / 4 * np.sum((reps - reps.mean()) ** 2)))
    assert hi - 2.5 == pytest.approx(3.182446305284263 * se)          # t_{0.975, 3}
    assert np.isnan(jackknife_interval(1.0, [1.0])[0])


def test_replicate_jackknife_covers_the_truth_and_a_naive_interval_does_not():
    rng = np.random.default_rng(11)
    hits, naive_hits, widths = [], [], []
    for _ in range(200):
        nstar, reps = synthetic(rng)
        ex, exr = fit_exponents(nstar, reps, randomized={"r": True})
        row = ex.iloc[0]
        hits.append(row["a_lo"] <= 0.4 <= row["a_hi"] and row["b_lo"] <= 0.7 <= row["b_hi"])
        widths.append(row["a_hi"] - row["a_lo"])
        # naive: the spread of the replicate exponents themselves, not scaled by (R - 1) (what a reader would
        # get by taking the leave-one-out fits as independent replicates)
        sd = exr["a"].std(ddof=1) / np.sqrt(R)
        naive_hits.append(abs(row["a"] - 0.4) <= 2.365 * sd)
        assert len(exr) == R
    coverage = np.mean(hits)
    # both exponents covered at once: nominal >= 0.95^2 ~ 0.90 (measured 0.92); 200 experiments: s.e. 0.02
    assert coverage >= 0.85, coverage
    assert np.mean(naive_hits) < 0.5, np.mean(naive_hits)      # measured 0.25: a real margin
    assert np.all(np.isfinite(widths))


def test_rows_that_are_not_ok_are_excluded_and_counted():
    rng = np.random.default_rng(3)
    nstar, reps = synthetic(rng)
    nstar.loc[nstar.index[:3], "status"] = ["unresolved", "ambiguous", "above_grid"]
    ex, _ = fit_exponents(nstar, reps, randomized={"r": True})
    row = ex.iloc[0]
    assert row["n"] == len(nstar) - 3
    assert row["excluded"] == "1 above_grid, 1 ambiguous, 1 unresolved"


def test_replicate_rows_missing_a_crossing_are_dropped_from_every_replicate():
    rng = np.random.default_rng(4)
    nstar, reps = synthetic(rng)
    i = reps.index[(reps["group"] == 2) & (reps["d"] == 10) & (reps["eps"] == 0.2)]
    reps.loc[i, "crossing"] = "below_grid"
    ex, _ = fit_exponents(nstar, reps, randomized={"r": True})
    assert ex.iloc[0]["n_replicate_dropped"] == 1 and np.isfinite(ex.iloc[0]["a_lo"])


def test_deterministic_structure_fit_and_local_slope_range():
    d, e = (g.ravel() for g in np.meshgrid(np.asarray(D, float), np.asarray(EPS, float), indexing="ij"))
    x = np.log(d / e**2)
    # exact power of d/eps^2: a = s, b = 2 s, range of width 0, no spread
    ex, _ = fit_exponents(_rows(d, e, 2.0 * np.exp(0.25 * x), sampler="det"), randomized={"det": False})
    row = ex.iloc[0]
    assert row["interval"] == "local-slope range"
    assert row["a"] == pytest.approx(0.25) and row["b"] == pytest.approx(0.5)
    assert row["a_lo"] == pytest.approx(0.25) and row["a_hi"] == pytest.approx(0.25)
    assert row["structure_spread"] == pytest.approx(0.0, abs=1e-12)
    # curvature: log N* = 0.2 x + 0.01 x^2: the local slope runs over 0.2 + 0.02 x between the extremes
    n = np.exp(0.2 * x + 0.01 * x**2)
    s, lo, hi, spread, n_x = structure_fit(d, e, np.log(n), 2.0)
    xs = np.unique(np.round(x, 9))
    mids = 0.5 * (xs[1:] + xs[:-1])
    assert lo == pytest.approx(0.2 + 0.02 * mids.min(), rel=1e-9, abs=0)
    assert hi == pytest.approx(0.2 + 0.02 * mids.max(), rel=1e-9, abs=0)
    assert lo < s < hi and n_x == xs.size
    # negative control: an N* that is not a function of d/eps^2 shows a spread
    _, _, _, spread, _ = structure_fit(d, e, np.log(d**0.25 * e**-0.7), 2.0)
    assert spread > 0.1


def test_local_slope_ranges_are_pairwise_slopes():
    d = np.array([10, 100, 1000, 10, 100, 1000], float)
    e = np.array([0.1, 0.1, 0.1, 0.01, 0.01, 0.01])
    logn = np.log(d**0.5 * e**-1.0) + np.array([0, 0.1, 0.0, 0, 0, 0])
    a_lo, a_hi, b_lo, b_hi = local_slope_ranges(d, e, logn)
    ln10 = np.log(10)
    assert a_lo == pytest.approx(0.5 - 0.1 / ln10) and a_hi == pytest.approx(0.5 + 0.1 / ln10)
    assert b_lo == pytest.approx(1.0 - 0.1 / ln10) and b_hi == pytest.approx(1.0)
