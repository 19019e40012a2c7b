"""Estimates of experiments/distances.py: the fields every route reports (value, stderr, n, method,
error bound) against independent values, for the routes mutation testing found unpinned: the Monte Carlo
TV of two product Gaussians, the quadrature cross-check of the annealed TV, the quenched TV's bound."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from experiments import distances as D


def _law(mean, var, target_mean, target_var, k):
    return SimpleNamespace(mean=np.atleast_2d(mean), var=np.atleast_2d(var), target_mean=np.atleast_1d(target_mean),
                           target_var=np.atleast_1d(target_var), multiplicities=np.atleast_1d(k))


def test_product_gaussian_monte_carlo_reports_its_route():
    same = D.tv_product_gaussian_mc([0.1, 0.2], [1.0, 2.0], [0.1, 0.2], [1.0, 2.0], [3, 4])
    assert same == D.Estimate(0.0, 0.0, 0, "identical laws", 0.0)
    far = D.tv_product_gaussian_mc([1.5], [1.0], [0.0], [1.0], [100])         # Bhattacharyya interval < 1e-10
    bc = math.exp(-100 * 1.5**2 / 8)                                           # BC of N(a, 1) and N(0, 1), k = 100
    assert (far.stderr, far.n, far.method) == (0.0, 0, D._BC_METHOD)
    assert far.value == pytest.approx(0.5 * ((1 - bc) + math.sqrt(1 - bc * bc)), abs=1e-16)
    assert far.error_bound == pytest.approx(0.5 * (math.sqrt(1 - bc * bc) - (1 - bc)), rel=1e-6, abs=3e-16)
    mc = D.tv_product_gaussian_mc([0.1], [1.2], [0.0], [1.0], [5], n_samples=2000, rng=np.random.default_rng(3))
    exact = D.tv_isotropic(0.1, 1.2, 0.0, 1.0, 5)
    assert (mc.n, mc.method) == (2000, "Monte Carlo over sufficient statistics, |tanh(L/2)| under (P+Q)/2")
    assert 0.0 < mc.stderr < 0.02 and abs(mc.value - exact) < 5 * mc.stderr
    assert D.tv_product_gaussian_mc([0.1], [1.2], [0.0], [1.0], [5], rng=np.random.default_rng(3)).n == 100_000
    assert D.tv_product_gaussian_mc([0.1], [1.2], [0.0], [1.0], [5], n_samples=4).n == 4      # the smallest allowed
    with pytest.raises(ValueError, match=r"^n_samples must be an integer >= 4, got 3$"):
        D.tv_product_gaussian_mc([0.1], [1.2], [0.0], [1.0], [5], n_samples=3)
    with pytest.raises(ValueError, match=r"^mean_p must describe a single law \(shape \(G,\)\), got \(2, 1\)$"):
        D.tv_product_gaussian_mc([[0.1], [0.2]], [[1.2], [1.2]], [0.0], [1.0], [5])


@pytest.mark.parametrize("k,var", [(1, 1.3), (7, 1.0), (7, 1.3)])
def test_quadrature_cross_check_of_a_single_law_is_its_exact_tv(k, var):
    law = _law([[0.4]], [[var]], 0.0, 1.0, k)
    est = D.annealed_tv_isotropic_quadrature(law)
    exact = D.tv_isotropic(0.4, var, 0.0, 1.0, k)
    one_d = k == 1 or var == 1.0
    assert (est.stderr, est.n) == (0.0, 0)
    if one_d:
        assert est.method == "annealed TV, exact 1-D integral over U (roots + normal CDFs)" and est.error_bound == 1e-12
        assert est.value == pytest.approx(exact, abs=1e-12)
    else:
        assert est.method == "annealed TV, 2-D integral over (U, T): exact in U, quad in T"
        assert 0.0 < est.error_bound < 1e-8 and abs(est.value - exact) <= est.error_bound + 1e-10


def test_quadrature_cross_check_checks_its_law():
    with pytest.raises(ValueError, match=r"^law must have a single group \(n_columns = 1\), got 2$"):
        D.annealed_tv_isotropic_quadrature(_law([[0.0, 0.0]], [[1.0, 1.0]], [0.0, 0.0], [1.0, 1.0], [1, 1]))
    with pytest.raises(ValueError, match=r"^epsabs must"):
        D.annealed_tv_isotropic_quadrature(_law([[0.0]], [[1.0]], 0.0, 1.0, 1), epsabs=0.0)


def test_quenched_tv_error_bound_is_the_mean_of_the_per_draw_bounds():
    law = _law([[0.1], [0.3], [-0.2]], [[1.1], [0.9], [1.0]], 0.0, 1.0, 4)      # one group: ncx2, bound 1e-10
    q = D.quenched_tv(law)
    assert q.error_bound == pytest.approx(1e-10, rel=1e-12, abs=0)
    vals = [D.tv_isotropic(m, s, 0.0, 1.0, 4) for m, s in [(0.1, 1.1), (0.3, 0.9), (-0.2, 1.0)]]
    assert q.value == pytest.approx(np.mean(vals), rel=1e-12, abs=0)
    assert q.stderr == pytest.approx(np.std(vals, ddof=1) / math.sqrt(3), rel=1e-10, abs=0)


def test_standardised_shift_and_ratio():
    dlt, Dlt = D._standardised(np.array([[1.5]]), np.array([[3.0]]), np.array([0.5]), np.array([2.0]), np.array([9]))
    assert float(dlt[0, 0]) == pytest.approx(0.5, rel=1e-15, abs=0)                            # s2 / r2 - 1
    assert float(Dlt[0, 0]) == pytest.approx(3 * 1.0 / math.sqrt(2.0), rel=1e-15, abs=0)         # sqrt(k) (mu - b) / r


def test_product_gaussian_cf_reports_its_route_and_both_inversions_agree():
    same = D.tv_product_gaussian_cf([0.1, 0.2], [1.0, 2.0], [0.1, 0.2], [1.0, 2.0], [3, 4])
    assert same == D.Estimate(0.0, 0.0, 0, "identical laws", 0.0)
    far = D.tv_product_gaussian_cf([50.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 2.0], [100, 3])
    logbc = float(D._log_bhattacharyya(np.array([[50.0, 0.0]]), np.array([[1.0, 1.0]]), np.array([0.0, 0.0]),
                                       np.array([1.0, 2.0]), np.array([100, 3]))[0])
    bc = math.exp(logbc)
    assert (far.stderr, far.n, far.method) == (0.0, 0, D._BC_METHOD)
    assert far.value == pytest.approx(0.5 * ((1 - bc) + math.sqrt(1 - bc * bc)), abs=1e-15)
    assert 0.0 < far.error_bound < 1e-10
    exact = D.tv_isotropic(0.2, 1.3, 0.0, 1.0, 6)
    # measured bounds: 6e-12 (smoothed), 1.2e-9 (plain Gil-Pelaez, whose integrand decays slowly)
    for method, bound in (("smoothed", 1e-10), ("gil-pelaez", 1e-8)):
        est = D.tv_product_gaussian_cf([0.2], [1.3], [0.0], [1.0], [6], method=method)
        assert (est.stderr, est.n, est.method) == (0.0, 0, f"CF inversion ({method})")
        assert 0.0 < est.error_bound < bound and abs(est.value - exact) <= est.error_bound + 1e-10
    assert D.tv_product_gaussian_cf([0.2], [1.3], [0.0], [1.0], [6], tol=1e-4).error_bound < 1e-4
    with pytest.raises(ValueError, match=r"^mean_p must describe a single law \(shape \(G,\)\), got \(2, 1\); "
                                         r"use quenched_tv for several draws$"):
        D.tv_product_gaussian_cf([[0.1], [0.2]], [[1.2], [1.2]], [0.0], [1.0], [5])


def test_annealed_tv_of_one_law_is_its_exact_tv_and_far_mixtures_use_the_bhattacharyya_bound():
    one = D.annealed_tv(_law([[0.2, -0.1]], [[1.3, 0.8]], [0.0, 0.0], [1.0, 1.0], [6, 1]))
    exact = D.tv_product_gaussian([0.2, -0.1], [1.3, 0.8], [0.0, 0.0], [1.0, 1.0], [6, 1])
    assert (one.value, one.error_bound) == pytest.approx((exact.value, exact.error_bound), rel=1e-12, abs=0)
    assert (one.stderr, one.n) == (0.0, 1)
    assert one.method == "annealed TV, single law: CF inversion (smoothed Gil-Pelaez)"
    rep = D.annealed_tv(_law([[0.2], [0.2], [0.2]], [[1.3], [1.3], [1.3]], 0.0, 1.0, 4))    # three equal draws
    assert rep.value == pytest.approx(D.tv_isotropic(0.2, 1.3, 0.0, 1.0, 4), abs=1e-12)
    assert (rep.stderr, rep.n) == (0.0, 3)
    assert rep.method == "annealed TV, single law: exact (ncx2 ball / erf half-space)"
    assert rep.error_bound == 1e-10
    # two draws far from the target and from each other: TV >= 1 - B, B = (1/sqrt(M)) sum_m BC_m (1 + slack)
    mean = np.array([[10.0], [-10.0]])
    far = D.annealed_tv(_law(mean, [[1.0], [1.0]], 0.0, 1.0, 2))
    logbc = D._log_bhattacharyya(mean, np.ones((2, 1)), np.zeros(1), np.ones(1), np.array([2]))
    b = float(np.exp(logbc).sum()) / math.sqrt(2) * (1 + D._BC_SLACK)
    assert 1e-12 < b < 1e-10                                   # B = 2e-11: visible in the value and the bound
    assert far.value == pytest.approx(1.0 - 0.5 * b, abs=1e-16)
    assert far.error_bound == pytest.approx(0.5 * b + 2.3e-16, rel=1e-9, abs=0)
    assert (far.stderr, far.n) == (0.0, 2) and far.method.startswith("annealed TV, Bhattacharyya bound")
    assert far.method.endswith("midpoint of [1 - B, 1]")


def test_annealed_tv_monte_carlo_fields_and_n_draws():
    law = _law([[0.1], [0.3], [-0.2], [0.0]], [[1.1], [0.9], [1.0], [1.2]], 0.0, 1.0, 4)
    est = D.annealed_tv(law, n_samples=400, rng=np.random.default_rng(1))
    assert (est.n, est.method) == (400, "annealed TV, Monte Carlo over sufficient statistics, M = 4 draws")
    assert est.stderr > 0
    two = D.annealed_tv(law, n_samples=400, rng=np.random.default_rng(1), n_draws=2)
    first_two = _law(law.mean[:2], law.var[:2], 0.0, 1.0, 4)
    assert two == D.annealed_tv(first_two, n_samples=400, rng=np.random.default_rng(1))
    assert D.annealed_tv(law, n_samples=4, rng=np.random.default_rng(1)).n == 4
    assert D.annealed_tv(law).n == 100_000 and D.annealed_tv(law) == D.annealed_tv(law, rng=np.random.default_rng(0))
    for kw, msg in [(dict(n_draws=5), r"^n_draws must be <= the number of draws 4, got 5$"),
                    (dict(n_draws=0), r"^n_draws must be an integer >= 1"),
                    (dict(n_samples=3), r"^n_samples must be an integer >= 4, got 3$")]:
        with pytest.raises(ValueError, match=msg):
            D.annealed_tv(law, **kw)
