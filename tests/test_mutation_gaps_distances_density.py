"""Tabulated column densities (experiments/distances.py: ColumnDensity, kl_product_density,
tv_product_density): what mutation testing found unpinned. Normalisation and interpolation against
hand computations, the 1-D quadrature on grids small enough to integrate by hand, the CF route against
the exact Gaussian TV with its error bound held to a stated multiple, and every input check's message."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from experiments import distances as D

GRID = np.linspace(-14, 14, 4001)


def test_column_density_normalises_with_trapezoid_weights_on_a_non_uniform_grid():
    x = np.array([0.0, 1.0, 3.0, 3.5])
    col = D.ColumnDensity(x, [1.0, 2.0, 0.0, 4.0])
    logs = np.array([0.0, math.log(2.0), -np.inf, math.log(4.0)])
    w = np.array([0.5, 1.5, 1.25, 0.25])                        # half of each neighbouring interval
    assert col.weights == pytest.approx(w, rel=1e-15, abs=0)
    z = 0.5 * 1.0 + 1.5 * 2.0 + 0.25 * 4.0
    assert col.density == pytest.approx(np.array([1.0, 2.0, 0.0, 4.0]) / z, rel=1e-15, abs=0)
    assert col.log_density[2] == -np.inf and col.log_density[0] == pytest.approx(-math.log(z), rel=1e-15, abs=0)
    same = D.ColumnDensity(x, log_density=logs + 7.0)     # log form, any constant
    assert same.density == pytest.approx(col.density, rel=1e-14, abs=0)
    via = D.ColumnDensity.from_callable(lambda t: np.log1p(t), x, log=True)
    assert via.density == pytest.approx((1 + x) / np.sum(w * (1 + x)), rel=1e-14, abs=0)
    assert D.ColumnDensity.from_callable(lambda t: 1 + t, [0, 1, 2]).density == pytest.approx(
        np.array([1.0, 2.0, 3.0]) / 4.0, rel=1e-15, abs=0)


def test_logpdf_interpolates_the_log_density_linearly_and_is_minus_inf_outside():
    col = D.ColumnDensity([0.0, 1.0, 2.0, 3.0], log_density=[0.0, -np.inf, -2.0, -4.0])
    c = col.log_density[0]                                       # 0 - log Z
    # the -inf point is skipped: between x = 0 and x = 2 the line joins c and c - 2
    assert col.logpdf([0.5, 1.0, 2.5]) == pytest.approx([c - 0.5, c - 1.0, c - 3.0], rel=1e-14, abs=0)
    assert np.all(col.logpdf([-0.1, 3.1]) == -np.inf)
    assert col.logpdf(2.0) == pytest.approx(c - 2.0, rel=1e-14, abs=0)


def test_q_on_another_grid_or_as_a_callable_is_read_on_the_grid_of_p():
    x = np.linspace(-1.0, 1.0, 5)
    p = D.ColumnDensity(x, 2.0 - x * x)
    q_fine = D.ColumnDensity(np.linspace(-2.0, 2.0, 9), np.ones(9))      # uniform on [-2, 2]: log q = -log 4
    kl = D.kl_product_density(p, q_fine, 3)
    wp = p.weights * p.density
    assert kl == pytest.approx(3 * np.sum(wp * (p.log_density + math.log(4.0))), rel=1e-14, abs=0)
    kl_call = D.kl_product_density(p, lambda t: np.full_like(t, 7.0), 2)       # normalised on p's grid
    assert kl_call == pytest.approx(2 * np.sum(wp * (p.log_density + math.log(2.0))), rel=1e-14, abs=0)
    kl_callable_p = D.kl_product_density(lambda t: 2.0 - t * t, D.ColumnDensity(x, np.ones(5)), 1)
    assert kl_callable_p == pytest.approx(np.sum(wp * (p.log_density + math.log(2.0))), rel=1e-14, abs=0)
    assert D.kl_product_density([p, p], [p, q_fine], [5, 3]) == pytest.approx(kl, rel=1e-14, abs=0)   # group 1: KL = 0


def test_one_dimensional_tv_integrates_the_linear_interpolant_exactly():
    x = np.array([0.0, 1.0, 2.0])                               # trapezoid weights [0.5, 1, 0.5]
    p = D.ColumnDensity(x, [3.0, 1.0, 1.0])                     # Z = 3: [1, 1/3, 1/3]
    q = D.ColumnDensity(x, [1.0, 1.0, 3.0])                     # [1/3, 1/3, 1]
    # p - q = [2/3, 0, -2/3]: two trapezoids of 1/3, TV = 1/3; the coarse grid (points 0 and 2) has one
    # interval from 2/3 to -2/3, crossing zero at its middle: 0.5 * 2 * (8/9) / (4/3) = 2/3, TV = 1/3
    est = D.tv_product_density(p, q, 1)
    assert est.value == pytest.approx(1 / 3, rel=1e-14, abs=0)
    assert est.error_bound == pytest.approx(0.0, abs=1e-15)
    assert (est.stderr, est.n, est.method) == (
        0.0, 0, "1-D trapezoid quadrature of |p - q|/2 (exact on linear pieces at crossings)")
    p2 = D.ColumnDensity(x, [2.0, 1.0, 1.0])                    # Z = 2.5: [0.8, 0.4, 0.4]
    q2 = D.ColumnDensity(x, [1.0, 2.0, 1.0])                    # Z = 3: [1/3, 2/3, 1/3]
    # p2 - q2 = [7/15, -4/15, 1/15]: both intervals cross zero, integral (f0^2 + f1^2) / (2 (|f0| + |f1|))
    fine = 0.5 * ((49 + 16) / 225 / (2 * 11 / 15) + (16 + 1) / 225 / (2 * 5 / 15))
    coarse = 0.5 * 0.5 * 2 * (7 / 15 + 1 / 15)                  # points 0 and 2: no crossing, a trapezoid
    two = D.tv_product_density(p2, q2, 1)
    assert two.value == pytest.approx(fine, rel=1e-14, abs=0)
    assert two.error_bound == pytest.approx(abs(fine - coarse), rel=1e-13, abs=0)


def test_identical_column_laws_have_tv_zero_exactly():
    col = D.ColumnDensity(GRID, stats.norm.pdf(GRID))
    assert D.tv_product_density([col, col], [col, col], [2, 3]) == D.Estimate(0.0, 0.0, 0, "identical column laws", 0.0)


def test_cf_route_matches_the_exact_gaussian_tv_with_an_error_bound_that_is_tight():
    k = [40, 960]
    mp, sp = np.array([0.02, -0.01]), np.array([1.03, 0.98])
    P = [D.ColumnDensity(GRID, stats.norm.pdf(GRID, m, math.sqrt(s))) for m, s in zip(mp, sp, strict=True)]
    Q = [D.ColumnDensity.from_callable(stats.norm.pdf, GRID)] * 2
    est = D.tv_product_density(P, Q, k)
    exact = D.tv_product_gaussian(mp[None], sp[None], [0.0, 0.0], [1.0, 1.0], k)
    assert est.method == "CF inversion (smoothed Gil-Pelaez) of the grid CF"
    assert (est.stderr, est.n) == (0.0, 0)
    # measured: error 1e-13, bound 1e-14 (a sum of quadrature errors and the tail estimate); the grid
    # rounding allowance of the Gaussian test (k * 1e-14) dominates; the bound must stay below 1e-11
    assert abs(est.value - exact.value) <= est.error_bound + 1e-14 * sum(k) + exact.error_bound
    assert 0.0 < est.error_bound < 1e-11
    assert 0.05 < est.value < 0.95                                               # an informative case
    loose = D.tv_product_density(P, Q, k, tol=1e-4)
    assert abs(loose.value - exact.value) <= loose.error_bound + 1e-14 * sum(k) and loose.error_bound < 1e-4


@pytest.mark.parametrize("k", [2, 3])
def test_cf_route_where_a_column_cf_reaches_rounding_size(k):
    # a shift of 0.3 sd per coordinate at k = 2 or 3: the doubling search evaluates theta ~ 40, where a
    # column's CF is ~1e-16 and |phi_g|^2 - 1 = 2x + x^2 + y^2 rounds below -1. log1p of it raised
    # "math domain error"; |phi_g|^2 is now formed directly there
    P = D.ColumnDensity(GRID, stats.norm.pdf(GRID, 0.3, 1.0))
    Q = D.ColumnDensity.from_callable(stats.norm.pdf, GRID)
    est = D.tv_product_density(P, Q, k)
    exact = D.tv_product_gaussian([0.3], [1.0], [0.0], [1.0], k)
    assert est.method == "CF inversion (smoothed Gil-Pelaez) of the grid CF"
    assert est.error_bound < 1e-11
    assert abs(est.value - exact.value) <= est.error_bound + 1e-14 * k + exact.error_bound


def test_a_coarse_grid_is_truncated_at_its_resolution_limit_and_says_so():
    coarse = np.linspace(-14, 14, 41)
    P = D.ColumnDensity(coarse, stats.norm.pdf(coarse, 0.3, 1.2))
    Q = D.ColumnDensity(coarse, stats.norm.pdf(coarse))
    est = D.tv_product_density([P], [Q], [1000])
    assert est.method == "CF inversion (smoothed Gil-Pelaez) of the grid CF; truncated at the grid resolution limit"
    assert est.error_bound > 0.01                                   # the truncation is visible in the bound
    assert 0.0 <= est.value <= 1.0


@pytest.mark.parametrize("call,message", [
    (lambda: D.ColumnDensity([0.0, 1.0], [1.0, 1.0]), r"^x_grid must be strictly increasing with at least 3 points$"),
    (lambda: D.ColumnDensity([[0.0, 1.0, 2.0]], [1.0, 1.0, 1.0]), r"^x_grid must have 1 dimension"),
    (lambda: D.ColumnDensity([0.0, 1.0, np.nan], [1.0, 1.0, 1.0]), r"^x_grid must be finite"),
    (lambda: D.ColumnDensity([0.0, 1.0, 2.0]), r"^give exactly one of density and log_density$"),
    (lambda: D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3, log_density=[0.0] * 3),
     r"^give exactly one of density and log_density$"),
    (lambda: D.ColumnDensity([0.0, 1.0, 2.0], [[1.0, 1.0, 1.0]]), r"^density must have 1 dimension"),
    (lambda: D.ColumnDensity([0.0, 1.0, 2.0], [1.0, 1.0]),
     r"^density must have the shape of x_grid \(3,\), got \(2,\)$"),
    (lambda: D.ColumnDensity([0.0, 1.0, 2.0], [1.0, -1.0, 1.0]), r"^density must be >= 0 and not identically 0$"),
    (lambda: D.ColumnDensity([0.0, 1.0, 2.0], [0.0, 0.0, 0.0]), r"^density must be >= 0 and not identically 0$"),
    (lambda: D.ColumnDensity([0.0, 1.0, 2.0], log_density=[0.0, 0.0]), r"^log_density must have the shape of x_grid, "
                                                                       r"no NaN or \+inf, not all -inf$"),
    (lambda: D.ColumnDensity([0.0, 1.0, 2.0], log_density=[0.0, np.nan, 0.0]), r"^log_density must have the shape"),
    (lambda: D.ColumnDensity([0.0, 1.0, 2.0], log_density=[0.0, np.inf, 0.0]), r"^log_density must have the shape"),
    (lambda: D.ColumnDensity([0.0, 1.0, 2.0], log_density=[-np.inf] * 3), r"^log_density must have the shape"),
    (lambda: D.ColumnDensity.from_callable(np.ones_like, [[0.0, 1.0, 2.0]]), r"^x_grid must have 1 dimension"),
    (lambda: D.kl_product_density([np.ones_like], [np.ones_like], 1),
     r"^p columns must be ColumnDensity objects \(or callables next to a ColumnDensity\)$"),
    (lambda: D.kl_product_density(D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3), [3.0], 1),
     r"^q columns must be ColumnDensity objects or callables$"),
    (lambda: D.kl_product_density(D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3), 3.0, 1),
     r"^q_cols must be a ColumnDensity, a callable or a sequence of them, got float$"),
    (lambda: D.tv_product_density(3, D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3), 1),
     r"^p_cols must be a ColumnDensity, a callable or a sequence of them, got int$"),
    (lambda: D.kl_product_density(D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3), lambda t: -np.ones_like(t), 1),
     r"^q callable must return finite non-negative densities on the grid$"),
    (lambda: D.kl_product_density(D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3), lambda t: np.ones(2), 1),
     r"^q callable must return finite non-negative densities on the grid$"),
    (lambda: D.kl_product_density(D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3), lambda t: t * np.nan, 1),
     r"^q callable must return finite non-negative densities on the grid$"),
    (lambda: D.kl_product_density(D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3),
                                  D.ColumnDensity([0.0, 1.0, 2.0], [1.0, 0.0, 1.0]), 1),
     r"^q must be > 0 wherever p > 0 on the grid"),
    (lambda: D.kl_product_density([D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3)] * 2,
                                  [D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3)], [1, 1]),
     r"^q_cols must have one column law per group \(2\), got 1$"),
    (lambda: D.tv_product_density([D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3)] * 2,
                                  [D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3)] * 3, [1, 1]),
     r"^q_cols must have one column law per group \(2\), got 3$"),
    (lambda: D.tv_product_density(D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3),
                                  D.ColumnDensity([0.0, 1.0, 2.0], [1.0] * 3), 2, max_doublings=0),
     r"^max_doublings must be an integer >= 1"),
])
def test_density_input_checks_name_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_q_may_vanish_where_p_does():
    x = np.array([0.0, 1.0, 2.0])
    p = D.ColumnDensity(x, [1.0, 0.0, 1.0])
    q = D.ColumnDensity(x, [1.0, 0.0, 3.0])                      # q = 0 only where p = 0: finite KL
    kl = D.kl_product_density(p, q, 1)
    # p = [1, 0, 1], q = [0.5, 0, 1.5] on the weights [0.5, 1, 0.5]
    assert kl == pytest.approx(0.5 * math.log(2.0) + 0.5 * math.log(2.0 / 3.0), rel=1e-14, abs=0)
    # the same q as a callable: its zero is accepted too (only negative or non-finite values are refused)
    q_call = D.kl_product_density(p, lambda t: np.interp(t, x, [1.0, 0.0, 3.0]), 1)
    assert q_call == pytest.approx(kl, rel=1e-14, abs=0)


@pytest.mark.parametrize("k", [12, 20])
def test_cf_route_doubles_its_cutoff_until_a_slowly_decaying_cf_is_small(k):
    # a variance ratio of 1.5 (no shift): L is a shifted 0.25 chi-square_k, whose CF decays only like
    # (1 + theta^2 / 4)^(-k/4); at the first cutoff 16 / sig its modulus / U is ~1e-6 (k = 12), so the search
    # must double U twice before the truncation is below tol / 4. Measured: error 7e-15 and bound 1e-11 at
    # k = 12; stopping at the first cutoff gives an error of 7e-9 and a bound of 1.5e-5. The grid (h = 1e-3)
    # resolves theta up to ~150.
    grid = np.linspace(-12, 12, 24001)
    P = D.ColumnDensity(grid, stats.norm.pdf(grid, 0.0, math.sqrt(1.5)))
    Q = D.ColumnDensity.from_callable(stats.norm.pdf, grid)
    est = D.tv_product_density(P, Q, k)
    exact = D.tv_product_gaussian([0.0], [1.5], [0.0], [1.0], k)       # ncx2 closed form
    assert est.method == "CF inversion (smoothed Gil-Pelaez) of the grid CF"
    assert est.error_bound < 1e-9                                       # the default tol is met
    assert abs(est.value - exact.value) <= est.error_bound + 1e-14 * k + exact.error_bound
