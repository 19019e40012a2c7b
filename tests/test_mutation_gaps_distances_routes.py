"""experiments/distances.py: numerics helpers against 50-digit references, the routes of the exact TV that
only unusual laws reach (ncx2's far-tail test at k >= 1e5, the Bhattacharyya branches of the CF inversion,
the annealed short-circuit bound), the grid CF's resolution limit, and input checks. Each test here was
written for a change that mutation testing showed no other test noticed."""

from __future__ import annotations

import math
from types import SimpleNamespace

import mpmath
import numpy as np
import pytest

from experiments import distances as D

mpmath.mp.dps = 50


# ---- numerics helpers: relative accuracy against mpmath -------------------------------------------

@pytest.mark.parametrize("x", [-0.9, -0.6, -0.3, -1e-6, 1e-8, 0.3, 0.7, 1.2, 1.6])
def test_x_minus_log1p_is_accurate_on_both_sides_of_the_series_switch(x):
    # the 20-term series in u = x/(2+x) is accurate only for |x| < 1/2 (|u| <= 1/3); at x = -0.9 it
    # would be off by ~1e-4 relative
    ref = float(mpmath.mpf(x) - mpmath.log1p(mpmath.mpf(x)))
    assert D._x_minus_log1p(x) == pytest.approx(ref, rel=4e-15, abs=0)


@pytest.mark.parametrize("s2, r2", [(1.0 + 3e-12, 1.0 + 1e-12), (2.0 + 7e-11, 2.0), (0.7, 1.3), (1e-200, 1e100),
                                    (1e-300, 1e100), (1e300, 1e-100)])
def test_log_ratio_keeps_full_relative_precision_near_one(s2, r2):
    # log(s2 / r2) with the ratio rounded first is off by 1e-12 relative at the first pair; log1p of the exact
    # difference is not. The last two pairs have a ratio outside the float range (log s2 - log r2 instead).
    # abs=0: pytest.approx keeps an absolute tolerance of 1e-12 unless told otherwise, larger than log(s2/r2) here
    ref = float(mpmath.log(mpmath.mpf(s2) / mpmath.mpf(r2)))
    assert float(D._log_ratio(s2, r2)) == pytest.approx(ref, rel=4e-15, abs=0)


@pytest.mark.parametrize("y", [9e-4, -5e-4, 1e-6, 1e-200, 2e-3, 0.05, -0.0999, 0.1, -0.2, 0.5, 3.0, 1e8])
def test_atan_minus_against_mpmath(y):
    # below |y| = 0.1 a series (relative error ~1e-16); above, arctan(y) - y cancels to at worst 4e-14 relative.
    # Before, arctan(y) - y was used from |y| = 1e-3: 2e-11 relative error at y = 2e-3, unseen by a test
    # whose pytest.approx kept its default absolute tolerance of 1e-12 (here abs=0)
    ref = float(mpmath.atan(mpmath.mpf(y)) - mpmath.mpf(y))
    assert float(D._atan_minus(y)) == pytest.approx(ref, rel=1e-15 if abs(y) < 0.1 else 1e-13, abs=0)


@pytest.mark.parametrize("y", [0.5, 0.999, 1.0, 1.5, 3.0, 20.0, 400.0, 1e6])
def test_log_cosh_against_mpmath(y):
    # two forms, switched at |y| = 1: log1p(2 sinh(y/2)^2) below, |y| - log 2 + log1p(exp(-2|y|)) above.
    # It enters log BC through a variance ratio of e^4 = 55 or more (0.5 log ratio >= 1)
    ref = float(mpmath.log(mpmath.cosh(mpmath.mpf(y))))
    assert float(D._log_cosh(y)) == pytest.approx(ref, rel=4e-16, abs=0)
    assert float(D._log_cosh(-y)) == float(D._log_cosh(y))


# ---- input handling ---------------------------------------------------------------------------------

def test_a_single_multiplicity_is_broadcast_to_every_group_and_object_ints_are_accepted():
    assert D._multiplicities(3, 4).tolist() == [3, 3, 3, 3]
    assert D._multiplicities(np.array([2]), 3).tolist() == [2, 2, 2]
    assert D._multiplicities(np.array([1, 2**40], dtype=object), 2).tolist() == [1, 2**40]
    one = D.tv_product_gaussian([0.1, 0.2], [1.1, 0.9], 0.0, 1.0, 3)
    assert one.value == D.tv_product_gaussian([0.1, 0.2], [1.1, 0.9], 0.0, 1.0, [3, 3]).value


def test_draw_counts_and_empty_draws_are_rejected_with_the_parameter_named():
    same_draws = r"mean_p and var_p must have the same number of draws, got \(3, 2\) and \(2, 2\)"
    with pytest.raises(ValueError, match=same_draws):
        D._gaussian_args(np.zeros((3, 2)), np.ones((2, 2)), 0.0, 1.0, 1)
    no_draws = r"mean_p must contain at least one internal draw \(M >= 1\), got shape \(0, 2\)"
    with pytest.raises(ValueError, match=no_draws):
        D._gaussian_args(np.zeros((0, 2)), np.ones((0, 2)), 0.0, 1.0, 1)
    law = SimpleNamespace(mean=np.zeros((2, 1)), var=np.ones((2, 1)), target_mean=np.array([np.nan]),
                          target_var=np.ones(1), multiplicities=np.array([2]))
    with pytest.raises(ValueError, match="law.target_mean"):
        D.quenched_tv(law)
    with pytest.raises(ValueError, match=r"mean_p must describe a single law \(shape \(G,\)\), got \(2, 3\)"):
        D.tv_product_gaussian(np.zeros((2, 3)), 1.0, 0.0, 1.0, 1)


def test_two_samples_are_enough_for_the_sample_distances():
    x = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert D._samples("x", x).shape == (2, 2)
    with pytest.raises(ValueError, match="x must have at least 2 samples"):
        D._samples("x", x[:1])


def test_an_exact_tv_reports_no_standard_error_and_no_samples():
    e = D.tv_product_gaussian([0.1, 0.2], [1.1, 0.9], 0.0, 1.0, [2, 3])
    assert e.stderr == 0.0 and isinstance(e.stderr, float) and e.n == 0


# ---- ncx2's far-tail test (k >= CHI2_TAIL_DF) -------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 7, 100, 10**4, 10**6])
def test_the_narrower_law_puts_more_than_half_its_mass_on_the_ball_where_it_dominates(k):
    # _tv_iso_ncx2 forms TV = Q(B^c) - P(B^c) only, which is the small-number form because P(B) > 1/2 for the
    # narrower law P. Here B = {p > q} = {|x - c|^2 < rho^2} is derived from the two densities directly,
    # and P(B) = P(ncx2_k(k (a - c)^2 / s2) < rho^2 / s2); mass within 1e-3 of 1/2 (k = 1e6, ratio near 1)
    # is still above it
    from scipy import stats
    worst = 1.0
    for ratio in (1.0 + 1e-6, 1.0 + 1e-3, 1.05, 2.0, 50.0):
        for shift in (0.0, 1e-4, 0.01, 0.3, 3.0):
            s2, r2, a, b = 1.0, ratio, shift, 0.0                 # P = N(a 1, s2 I) narrower than Q = N(b 1, r2 I)
            # log p - log q = -(k/2) log(s2/r2) - |x - a|^2/(2 s2) + |x - b|^2/(2 r2) > 0: a ball around c
            c = (a * r2 - b * s2) / (r2 - s2)
            rho2 = (k * math.log(r2 / s2) + k * (a - b) ** 2 / (r2 - s2)) * s2 * r2 / (r2 - s2)
            lam = k * (a - c) ** 2 / s2
            mass = stats.ncx2.cdf(rho2 / s2, k, lam) if lam > 0 else stats.chi2.cdf(rho2 / s2, k)
            worst = min(worst, mass)
            tv = D._tv_iso_ncx2(a, s2, b, r2, k)
            if np.isfinite(tv):                                    # and TV = P(B) - Q(B) with the same ball
                q_mass = stats.ncx2.cdf(rho2 / r2, k, k * (b - c) ** 2 / r2) if b != c else stats.chi2.cdf(rho2 / r2, k)
                assert tv == pytest.approx(mass - q_mass, abs=1e-9)
    assert 0.5 < worst


def test_ncx2_route_is_declined_exactly_when_one_threshold_is_beyond_the_tail_limit():
    # equal means, k = 1e5: at s2 = 1.0357 both thresholds are within 4 sd of their means (z = 3.94, -3.90),
    # ncx2 answers; at s2 = 1.03642479 one is beyond (z_p = 4.02) and the other is not (z_q = -3.98):
    # the entry must go to the CF route (NaN here), whichever of the two is out
    k = 1e5
    inside = D._tv_iso_ncx2(0.0, 1.0357, 0.0, 1.0, k)
    assert np.isfinite(inside)
    assert inside == pytest.approx(D.tv_product_gaussian_cf(0.0, 1.0357, 0.0, 1.0, [int(k)]).value, abs=1e-12)
    for s2 in (1.0364247888434495, 1.0 / 1.0364247888434495):
        assert np.isnan(D._tv_iso_ncx2(0.0, s2, 0.0, 1.0, k))
        cf = D.tv_product_gaussian_cf(0.0, s2, 0.0, 1.0, [int(k)])
        assert D.tv_isotropic(0.0, s2, 0.0, 1.0, int(k)) == pytest.approx(cf.value, abs=1e-12)


# ---- the Bhattacharyya branches of the CF inversion ---------------------------------------------------

# _cf_tv's documented defaults; _cf_tv_core has none (only _cf_tv calls it)
CF_DEFAULTS = {"tol": D.CF_TOL, "method": "smoothed", "max_doublings": 80, "max_oscillations": 2000}


def _one_coordinate(mean, var):
    mp, sp, mq, sq, k = np.array([[mean]]), np.array([[var]]), np.array([0.0]), np.array([1.0]), np.array([1])
    return D._cf_params_raw(mp, sp, mq, sq, k, "p"), D._log_bhattacharyya(mp, sp, mq, sq, k)


def test_cf_tv_returns_the_interval_midpoint_where_the_interval_is_narrower_than_tol():
    # variance ratio 1e-14: BC = 4.5e-4, an interval narrower than tol = 1e-3; no integration
    params, logbc = _one_coordinate(0.0, 1e-14)
    lo, hi, width = D._bc_interval(logbc)
    v, b = D._cf_tv(params, logbc=logbc, tol=1e-3)
    assert width[0] < 1e-3
    # the interval is widened by the rounding of log BC (relative 1e-10 here), which moves its midpoint by ~1e-13
    assert v[0] == pytest.approx(0.5 * (lo[0] + hi[0]), abs=1e-6 * width[0])
    assert 0.5 * width[0] <= b[0] <= 0.5 * width[0] * (1 + 1e-6)
    assert abs(v[0] - D.tv_isotropic(0.0, 1e-14, 0.0, 1.0, 1)) <= b[0]


def test_cf_tv_takes_the_interval_midpoint_where_its_half_width_beats_the_cf_bound():
    # a variance ratio 1e-12 in one coordinate: the CF decays like theta^(-1/2); without doublings its
    # truncation bound (3e-3) exceeds the interval's half width (7e-4), and the midpoint is returned
    params, logbc = _one_coordinate(0.0, 1e-12)
    lo, hi, width = D._bc_interval(logbc)
    _, b_core = D._cf_tv_core(params, None, **{**CF_DEFAULTS, "max_doublings": 0})
    v, b = D._cf_tv(params, logbc=logbc, max_doublings=0)
    assert b_core[0] > 2 * 0.5 * width[0]
    assert v[0] == pytest.approx(0.5 * (lo[0] + hi[0]), abs=1e-6 * width[0])
    assert 0.5 * width[0] <= b[0] <= 0.5 * width[0] * (1 + 1e-6)
    assert abs(v[0] - D.tv_isotropic(0.0, 1e-12, 0.0, 1.0, 1)) <= b[0]


def test_cf_tv_passes_method_and_work_cap_to_the_inversion():
    # moderate laws (no Bhattacharyya shortcut): _cf_tv is _cf_tv_core with the same options, bit for bit
    mp, sp = np.array([[0.4, -0.2]]), np.array([[1.5, 0.6]])
    mq, sq, k = np.zeros(2), np.ones(2), np.array([2, 1])
    pp, pq = D._cf_params_raw(mp, sp, mq, sq, k, "p"), D._cf_params_raw(mp, sp, mq, sq, k, "q")
    logbc = D._log_bhattacharyya(mp, sp, mq, sq, k)
    def core(**opts):
        return D._cf_tv_core(pp, pq, **{**CF_DEFAULTS, **opts})

    for opts in ({"method": "gil-pelaez"}, {"max_oscillations": 1}, {}):
        v, b = D._cf_tv(pp, pq, logbc=logbc, **opts)
        vc, bc = core(**opts)
        assert (v[0], b[0]) == (vc[0], bc[0]), opts
    smoothed = core()
    assert core(method="gil-pelaez")[0][0] != smoothed[0][0]
    assert core(max_oscillations=1)[1][0] > 10 * smoothed[1][0]


def test_cf_tv_names_the_side_whose_parameters_are_not_finite():
    params, logbc = _one_coordinate(0.3, 1.2)
    bad = tuple(np.full_like(np.atleast_2d(z), np.nan) for z in params)
    with pytest.raises(ValueError, match=r"^params_q must be finite"):
        D._cf_tv(params, bad, logbc=logbc)
    with pytest.raises(ValueError, match=r"^params_p must be finite"):
        D._cf_tv(bad, params, logbc=logbc)


def test_refined_and_short_circuited_rows_report_the_same_half_width():
    logbc = np.log(np.array([1e-3, 0.2, 1e-8]))
    _, mid, half = D._bc_short_circuit(logbc, 1e-10)
    vals, bounds = D._bc_refine(np.full(3, 0.5), np.full(3, 1.0), logbc)     # a useless bound: the interval wins
    assert np.array_equal(bounds, half) and np.array_equal(vals, mid)


# ---- the annealed TV's short-circuit bound -----------------------------------------------------------

def test_annealed_short_circuit_bound_is_the_mean_bc_over_root_m():
    # M = 4 draws far from the target, equal variances: BC_m = exp(-a_m^2 / 8) (k = 1), about 1e-12 .. 1e-16;
    # B = (1/sqrt M) sum_m BC_m bounds BC of the mixture, so TV is within B of 1
    a = np.array([14.9, 15.5, 16.0, 17.0])
    law = SimpleNamespace(mean=a[:, None], var=np.ones((4, 1)), target_mean=np.zeros(1), target_var=np.ones(1),
                          multiplicities=np.array([1]))
    B = float(np.sum(np.exp(-a**2 / 8.0))) / 2.0
    e = D.annealed_tv(law, rng=np.random.default_rng(0))
    assert "Bhattacharyya bound" in e.method
    # the half width B/2 (B inflated by the rounding slack 1e-9) plus the rounding of the midpoint, 2.3e-16
    assert e.error_bound == pytest.approx(0.5 * B * (1.0 + 1e-9) + 2.3e-16, rel=1e-12, abs=0)
    # the value is the midpoint 1 - B/2 of [1 - B, 1] (B inflated by the rounding slack 1e-9), to one ulp of 1
    assert e.value == pytest.approx(1.0 - 0.5 * B * (1.0 + 1e-9), abs=2.3e-16)


# ---- tv_product_density: the grid CF's resolution limit and degenerate columns ------------------------

def test_resolution_limit_counts_only_grid_points_with_mass():
    # N(0,1) against N(0,1.5^2) tabulated on [-40, 40]: the LLR changes fast only where p has no mass
    # (|x| > 8); counting those points would stop the inversion at the grid resolution limit
    x = np.linspace(-40.0, 40.0, 20001)
    p = D.ColumnDensity(x, log_density=-x**2 / 2)
    q = D.ColumnDensity(x, log_density=-x**2 / (2 * 2.25))
    e = D.tv_product_density(p, q, 50)
    assert "resolution" not in e.method
    exact = D.tv_product_gaussian(0.0, 1.0, 0.0, 2.25, [50]).value
    assert abs(e.value - exact) <= max(e.error_bound, 1e-12)


def test_a_column_whose_law_is_a_single_grid_point():
    # column 1: P puts all its mass on one grid point (its LLR is the constant c there); column 2:
    # N(0,1) against N(0,1.5^2), 3 coordinates. TV = E_P (1 - exp(-L))^+ with L = c + L2 and
    # L2 = 3 log 1.5 - (1/2 - 1/4.5) chi2_3, integrated against the chi2_3 density
    from scipy import integrate, stats
    xs = np.linspace(-5.0, 5.0, 101)
    spike = np.zeros(101)
    spike[50] = 1.0
    ps, qs = D.ColumnDensity(xs, density=spike), D.ColumnDensity(xs, log_density=-xs**2 / 2)
    x = np.linspace(-40.0, 40.0, 20001)
    p, q = D.ColumnDensity(x, log_density=-x**2 / 2), D.ColumnDensity(x, log_density=-x**2 / (2 * 2.25))
    c = float(D._as_pair(ps, qs)[1][0])
    e = D.tv_product_density([ps, p], [qs, q], [1, 3])
    b = 0.5 - 1 / 4.5
    t0 = (c + 3 * math.log(1.5)) / b                      # L > 0 exactly for chi2_3 < t0
    exact, _ = integrate.quad(lambda t: -math.expm1(-(c + 3 * math.log(1.5) - b * t)) * stats.chi2.pdf(t, 3),
                              0.0, t0, epsabs=1e-13, epsrel=1e-12)
    assert 0.0 < e.error_bound < 1e-2
    assert abs(e.value - exact) <= e.error_bound


@pytest.mark.parametrize("k", [2, 3])
def test_p_on_part_of_qs_support_with_a_constant_llr(k):
    # P uniform on [0, 1], Q uniform on [0, 2], on a 9-point grid: the LLR under P is the constant
    # c = log(Zq / Zp) (trapezoid normalisers), so its variance is exactly 0, yet P != Q:
    # TV = E_P (1 - e^{-L})^+ = 1 - (Zp / Zq)^k. It used to return 0 ("identical column laws"), and on a
    # fine grid its CF inversion did not end.
    x = np.linspace(0.0, 2.0, 9)
    p = D.ColumnDensity(x, density=(x <= 1.0).astype(float))
    q = D.ColumnDensity(x, density=np.ones_like(x))
    zp, zq = np.trapezoid((x <= 1.0).astype(float), x), np.trapezoid(np.ones_like(x), x)
    e = D.tv_product_density(p, q, k)
    assert e.value == pytest.approx(1.0 - (zp / zq) ** k, abs=1e-15)
    assert (e.stderr, e.n) == (0.0, 0) and e.error_bound == 2.3e-16       # exact: no draws, rounding only
    # the same laws on a fine grid (an LLR variance of rounding size, not exactly 0) agree within the bound
    xf = np.linspace(0.0, 2.0, 4001)
    fine = D.tv_product_density(D.ColumnDensity(xf, density=(xf <= 1.0).astype(float)),
                                D.ColumnDensity(xf, density=np.ones_like(xf)), k)
    zpf = np.trapezoid((xf <= 1.0).astype(float), xf)
    assert fine.error_bound < 1e-12
    assert abs(fine.value - (1.0 - (zpf / 2.0) ** k)) <= fine.error_bound + 1e-15
    assert fine.value == pytest.approx(1.0 - 0.5**k, abs=1e-3)            # the grid's normaliser Zp = 1 + h/2
    assert D.tv_product_density(p, p, k).value == 0.0


# ---- contracts of the exact-TV plumbing --------------------------------------------------------------

def test_ncx2_is_used_at_large_noncentrality_when_both_thresholds_are_within_4_sd():
    # k = 1e5, mean shift 0.01, variance ratio 1.01: noncentrality 1e5, thresholds at z = +1.93 and -1.93
    # (the P-side standardisation subtracts the noncentrality; adding it instead puts z at 260 and
    # would send the law to the CF for no reason)
    k = 1e5
    v = D._tv_iso_ncx2(0.01, 1.01, 0.0, 1.0, k)
    assert np.isfinite(v)
    assert float(v) == pytest.approx(D.tv_product_gaussian_cf(0.01, 1.01, 0.0, 1.0, [int(k)]).value, abs=1e-12)


def test_bc_refine_clips_values_into_the_bhattacharyya_interval():
    logbc = np.log(np.array([0.5, 0.5]))
    lower, upper, _ = D._bc_interval(logbc)
    vals, bounds = D._bc_refine(np.array([lower[0] - 0.1, upper[1] + 0.1]), np.array([1e-9, 1e-9]), logbc)
    assert vals.tolist() == [lower[0], upper[1]]
    assert bounds.tolist() == [1e-9, 1e-9]


def test_cf_inversion_of_identical_laws_returns_one_zero_per_law():
    mp, sp, k = np.zeros((3, 2)), np.ones((3, 2)), np.array([1, 4])
    params = D._cf_params_raw(mp, sp, np.zeros(2), np.ones(2), k, "p")
    vals, bounds = D._cf_tv_core(params, None, **CF_DEFAULTS)
    assert vals.shape == bounds.shape == (3,)
    assert not np.any(vals) and not np.any(bounds)


def test_quenched_tv_names_each_route_its_draws_took():
    # draw 0 is far from the target (Bhattacharyya interval narrower than tol), draw 1 is close (ncx2)
    law = SimpleNamespace(mean=np.array([[40.0], [0.1]]), var=np.ones((2, 1)), target_mean=np.zeros(1),
                          target_var=np.ones(1), multiplicities=np.array([3]))
    est = D.quenched_tv(law)
    assert est.method == f"quenched TV, {D._BC_METHOD}; exact (ncx2 ball / erf half-space) per draw"


def test_monte_carlo_tv_uses_the_documented_default_sample_size():
    est = D.tv_product_gaussian_mc([0.1, 0.2], [1.1, 0.9], 0.0, 1.0, 3, rng=np.random.default_rng(0))
    assert est.n == 100_000


def test_multiplicities_given_as_floats_become_int64():
    k = D._multiplicities(np.array([3.0, 2.0**60]), 2)
    assert k.dtype == np.int64 and k.tolist() == [3, 2**60]


def test_bhattacharyya_interval_of_a_log_bc_rounded_above_zero_is_the_point_zero():
    # log BC <= 0 always; a rounding-size positive value means BC = 1, TV = 0
    lower, upper, width = D._bc_interval(np.array([1e-17, 0.0]))
    assert lower.tolist() == [0.0, 0.0] and upper.tolist() == [0.0, 0.0] and width.tolist() == [0.0, 0.0]


def test_tolerance_and_means_are_checked_by_name():
    with pytest.raises(ValueError, match=r"^tol must have 0 dimension\(s\), got shape \(1,\)$"):
        D.quenched_tv(SimpleNamespace(mean=np.zeros((1, 1)), var=np.ones((1, 1)), target_mean=np.zeros(1),
                                      target_var=np.ones(1), multiplicities=np.array([2])), tol=np.array([1e-3]))
    with pytest.raises(ValueError, match=r"^mean_p must be finite"):
        D.tv_isotropic(np.nan, 1.0, 0.0, 1.0, 2)
    params, logbc = _one_coordinate(0.3, 1.2)
    with pytest.raises(ValueError, match=r"^method must be 'smoothed' or 'gil-pelaez', got 'plain'$"):
        D._cf_tv(params, logbc=logbc, method="plain")
    with pytest.raises(ValueError, match=r"^method 'gil-pelaez' needs the Q-side parameters$"):
        D._cf_tv(params, logbc=logbc, method="gil-pelaez")


def test_cf_tv_of_two_laws_uses_the_method_asked_for():
    mp, sp = np.array([[0.4, -0.2]]), np.array([[1.5, 0.6]])
    mq, sq, k = np.zeros(2), np.ones(2), np.array([2, 1])
    pp, pq = D._cf_params_raw(mp, sp, mq, sq, k, "p"), D._cf_params_raw(mp, sp, mq, sq, k, "q")
    logbc = D._log_bhattacharyya(mp, sp, mq, sq, k)
    for method in ("smoothed", "gil-pelaez"):
        est = D.tv_product_gaussian_cf(mp[0], sp[0], mq, sq, k, method=method)
        v, b = D._cf_tv(pp, pq, logbc=logbc, method=method)
        assert (est.value, est.error_bound) == (v[0], b[0]) and est.method == f"CF inversion ({method})"


def test_annealed_tv_uses_the_documented_default_sample_size():
    law = SimpleNamespace(mean=np.array([[0.1], [-0.2]]), var=np.array([[1.1], [0.9]]), target_mean=np.zeros(1),
                          target_var=np.ones(1), multiplicities=np.array([3]))
    assert D.annealed_tv(law, rng=np.random.default_rng(0)).n == 100_000


def test_constant_llr_names_its_route():
    x = np.linspace(0.0, 2.0, 9)
    p = D.ColumnDensity(x, density=(x <= 1.0).astype(float))
    q = D.ColumnDensity(x, density=np.ones_like(x))
    assert D.tv_product_density(p, q, 2).method == "log-likelihood ratio constant under P: TV = 1 - exp(-E_P L)"



def test_one_dimensional_tv_where_both_densities_vanish_on_whole_intervals():
    # P uniform on [0, 1], Q uniform on [0, 2], tabulated on [0, 3]: p = q = 0 on [2, 3], where no interval
    # has a sign change (a zero-over-zero there would make the value NaN); reference: |linear interpolant of
    # p - q| on a grid 1e5 times finer, by the trapezoid rule (error below h_fine * max|p - q| = 3e-5 / 2)
    x = np.linspace(0.0, 3.0, 13)
    p = D.ColumnDensity(x, density=(x <= 1.0).astype(float))
    q = D.ColumnDensity(x, density=(x <= 2.0).astype(float))
    est = D.tv_product_density(p, q, 1)
    fine = np.linspace(0.0, 3.0, 1_200_001)
    diff = np.interp(fine, x, p.density) - np.interp(fine, x, q.density)
    assert est.value == pytest.approx(0.5 * np.trapezoid(np.abs(diff), fine), abs=2e-5)


def test_variances_with_too_many_dimensions_are_rejected_by_name():
    with pytest.raises(ValueError, match=r"^var_p must have 0 or 1 or 2 dimension\(s\), got shape \(1, 1, 2\)$"):
        D.tv_product_gaussian_mc(np.zeros(2), np.ones((1, 1, 2)), 0.0, 1.0, 1)


def test_a_q_column_on_another_grid_of_the_same_size_is_interpolated_onto_ps_grid():
    # P and Q both N(0, 1), tabulated on grids of 2001 points with different spacings: q is read through
    # its interpolated log-density (q.logpdf), not position by position. Then KL(P||Q) is the mean error
    # of interpolating -x^2/2 linearly between q's nodes, h^2/12 (h = 21/2000); position by position 2.5e-3
    x, xq = np.linspace(-10.0, 10.0, 2001), np.linspace(-10.5, 10.5, 2001)
    p, q = D.ColumnDensity(x, np.exp(-0.5 * x**2)), D.ColumnDensity(xq, np.exp(-0.5 * xq**2))
    h = xq[1] - xq[0]
    assert D.kl_product_density(p, q, 1) == pytest.approx(h**2 / 12, rel=0.01, abs=0)


@pytest.mark.parametrize("mean1, var1", [(1e200, 1.0), (-1e200, 1.0), (0.0, 1.7e308), (0.0, 1e-300)])
def test_annealed_tv_of_a_mixture_with_one_draw_beyond_any_float_shift(mean1, var1):
    # draw 1 is shifted by +-1e200 or has a variance of 1.7e308 or 1e-300 (disjoint from Q and from draw 0 in
    # floating point), draw 0 is shifted by 0.1 in one coordinate:
    # TV(Pbar, Q) = (1/2) [ int |p0/2 - q| + 1/2 ] with the integral over the shifted coordinate only.
    # The Monte Carlo clips such shifts (to +-1e100) and ratios (to [1e-200, 1e200]) first; unclipped, the
    # shift -1e200 or the variance 1.7e308 gives NaN
    from scipy import integrate, stats

    law = SimpleNamespace(mean=np.array([[0.1, 0.0], [mean1, 0.0]]), var=np.array([[1.0, 1.0], [var1, 1.0]]),
                          target_mean=np.zeros(2), target_var=np.ones(2), multiplicities=np.array([1, 3]))
    est = D.annealed_tv(law, rng=np.random.default_rng(0))
    inner, _ = integrate.quad(lambda x: abs(0.5 * stats.norm.pdf(x, 0.1) - stats.norm.pdf(x)), -12, 12,
                              points=[10 * math.log(2) + 0.05], epsabs=1e-12, limit=200)   # p0/2 = q there
    assert abs(est.value - 0.5 * (inner + 0.5)) <= 5 * est.stderr


def test_the_tolerance_message_states_the_range():
    message = r"^tol must lie in \[1e-15, 0\.5\] \(an absolute tolerance on TV\), got 0\.7$"
    with pytest.raises(ValueError, match=message):
        D.tv_isotropic(0.1, 1.0, 0.0, 1.0, 2, tol=0.7)


@pytest.mark.parametrize("s2, k", [(1.0, 1), (2.0, 3), (0.25, 10)])
def test_half_space_route_with_a_common_variance(s2, k):
    # equal variances: TV = 2 Phi(|a - b| sqrt(k) / (2 s)) - 1 = erf(|a - b| sqrt(k) / (2 sqrt(2 s2)))
    for shift in (0.3, 15.0 * math.sqrt(s2 / k)):        # ... and a TV within 2e-13 of 1 (not NaN'd as > 1)
        ref = math.erf(shift * math.sqrt(k) / (2.0 * math.sqrt(2.0 * s2)))
        assert D._tv_iso_ncx2(shift, s2, 0.0, s2, k) == pytest.approx(ref, rel=1e-15, abs=0)
        # the public function: exact at 0.3; near 1 the Bhattacharyya interval is narrower than tol (1e-10), and
        # its midpoint, 3e-13 from the value, is returned by design
        assert abs(D.tv_isotropic(-shift, s2, 0.0, s2, k) - ref) <= (1e-15 if shift == 0.3 else D.CF_TOL)


def test_multiplicities_of_the_wrong_length_are_reported_with_their_shape():
    with pytest.raises(ValueError, match=r"^multiplicities must have shape \(2,\) \(one per group\), got \(3,\)$"):
        D.gaussian_kl([0.1, 0.2], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [1, 2, 3])


def test_exact_tv_rows_are_float_arrays_whatever_route_each_row_took():
    # replicates.py reads _tv_rows' per-draw values and bounds as float arrays (np.isfinite, sums): a row set
    # that mixes the Bhattacharyya shortcut (draw 0, variance ratio 1e-30) with ncx2 (draw 1) must not
    # come back as an object array
    mp, sp = np.array([[0.0], [0.1]]), np.array([[1e-30], [1.2]])
    vals, bounds, method = D._tv_rows(mp, sp, np.zeros(1), np.ones(1), np.array([3]), D.CF_TOL)
    assert vals.dtype == np.float64 and bounds.dtype == np.float64
    assert method.startswith("Bhattacharyya bounds") and method.endswith("; exact (ncx2 ball / erf half-space)")
    assert np.all(np.isfinite(bounds)) and np.all(bounds > 0)


def test_cf_inversion_of_a_small_llr_spread_matches_the_erf_closed_form():
    # two identical groups of a pure mean shift: TV = erf(|Delta| / (2 sqrt 2)) with |Delta| = 0.01 sqrt(100),
    # an LLR of standard deviation sig = 0.1 (TV 0.04, far from the interval shortcut). Measured: error 3e-17,
    # bound 9e-16. (Cutting the inversion at 16 sig instead of 16 / sig changes neither: the tail quadrature
    # beyond the cutoff is as accurate here, so that slip is not visible in the value.)
    mp, sp = np.array([0.01, 0.01]), np.ones(2)
    est = D.tv_product_gaussian_cf(mp, sp, np.zeros(2), np.ones(2), [50, 50])
    ref = math.erf(0.1 / (2 * math.sqrt(2)))
    assert est.method == "CF inversion (smoothed)"
    assert abs(est.value - ref) <= est.error_bound + 1e-15 and est.error_bound < 1e-10


def test_ncx2_far_tail_test_uses_the_noncentral_variance():
    # shift 0.0097, variance ratio 1.0337, k = 1e5: z_p = (x_p - k - lam_p) / sqrt(2 (k + 2 lam_p)) = 4.03 with
    # lam_p = 8,300 (beyond the limit of 4: ncx2 declined, the CF route answers), while z_q = -3.98 is within
    # it. Counting the noncentrality 3 times in the variance would give z_p = 3.89 and keep ncx2 in its
    # inaccurate far tail
    assert np.isnan(D._tv_iso_ncx2(0.0097, 1.0337, 0.0, 1.0, 1e5))
    cf = D.tv_product_gaussian_cf(0.0097, 1.0337, 0.0, 1.0, [10**5])
    assert D.tv_isotropic(0.0097, 1.0337, 0.0, 1.0, 10**5) == pytest.approx(cf.value, abs=1e-12)


def test_multi_group_rows_pass_the_callers_tolerance_to_the_inversion(monkeypatch):
    seen = []
    inner = D._cf_tv

    def spy(*args, **kwargs):
        seen.append(kwargs.get("tol"))
        return inner(*args, **kwargs)

    monkeypatch.setattr(D, "_cf_tv", spy)
    est = D.tv_product_gaussian([0.1, 0.2], [1.1, 0.9], [0.0, 0.0], [1.0, 1.0], [2, 3], tol=1e-4)
    assert seen == [1e-4] and est.error_bound <= 1e-4


def test_smaller_input_contracts():
    # laws equal in every group: the route says so
    assert D.tv_product_gaussian([0.1, 0.2], [1.0, 1.5], [0.1, 0.2], [1.0, 1.5], [2, 3]) == \
        D.Estimate(0.0, 0.0, 0, "identical laws", 0.0)
    # a single column is broadcast to every group, whatever their number
    one = D.gaussian_kl([0.1], [1.0, 1.2, 0.9], [0.0] * 3, [1.0] * 3, [1, 2, 3])
    np.testing.assert_array_equal(one, D.gaussian_kl([0.1] * 3, [1.0, 1.2, 0.9], [0.0] * 3, [1.0] * 3, [1, 2, 3]))
    # the ends of the tolerance range are accepted
    half_space = math.erf(0.1 * math.sqrt(2) / (2 * math.sqrt(2)))       # 2 Phi(|a - b| sqrt(k) / 2) - 1
    assert D.tv_isotropic(0.1, 1.0, 0.0, 1.0, 2, tol=1e-15) == pytest.approx(half_space, rel=1e-14, abs=0)
    assert 0.0 < D.tv_isotropic(0.1, 1.0, 0.0, 1.0, 2, tol=0.5) < 1.0
    # integer multiplicities stay int64 (sums of up to 2**63 - 1 must be exact)
    assert D._multiplicities(np.array([3, 4], dtype=np.int32), 2).dtype == np.int64
