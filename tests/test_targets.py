"""Exact-score targets (experiments/targets.py) against brute force.

* scores are finite-difference gradients of the log-densities (central differences; the tolerance is
  the Richardson estimate of the truncation error plus the rounding error of the log-density,
  both derived from the step size), and the score derivatives / Jacobians are finite differences
  of the scores;
* the marginals are the law of the forward process: exact X_0, the exact OU transition, a KS test
  against the closed-form CDF at t, with negative controls that must fail;
* a grouped Gaussian with multiplicities (and a basis) is the dense Gaussian it stands for;
* Lipschitz bounds dominate a fine grid of the exact derivative, and are not absurdly loose;
* second moments equal Monte Carlo within 5 standard errors.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from scipy.special import ndtr

from experiments import processes
from experiments.targets import GaussianMixture, GroupedGaussian, ProductMixture, ou_variance

EPS = np.finfo(float).eps
SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------------------------------
# strategies and helpers
# --------------------------------------------------------------------------------------------------

def _weights(draw, J):
    w = np.array(draw(st.lists(st.floats(0.05, 1.0), min_size=J, max_size=J)))
    return w / w.sum()


@st.composite
def grouped_gaussians(draw):
    G = draw(st.integers(1, 3))
    var = draw(st.lists(st.floats(0.05, 5.0), min_size=G, max_size=G))
    mean = draw(st.lists(st.floats(-3.0, 3.0), min_size=G, max_size=G))
    mult = draw(st.lists(st.integers(1, 3), min_size=G, max_size=G))
    return GroupedGaussian(var, mean, mult)


@st.composite
def product_mixtures(draw, max_J=3):
    G = draw(st.integers(1, 2))
    w, m, v = [], [], []
    for _ in range(G):
        J = draw(st.integers(1, max_J))
        w.append(_weights(draw, J))
        m.append(np.array(draw(st.lists(st.floats(-3.0, 3.0), min_size=J, max_size=J))))
        v.append(np.exp(np.array(draw(st.lists(st.floats(np.log(0.05), np.log(3.0)), min_size=J, max_size=J)))))
    mult = draw(st.lists(st.integers(1, 3), min_size=G, max_size=G))
    return ProductMixture(w, m, v, mult)


def _ordered_covs(draw, J, d, rng):
    """Full covariances that are Loewner-ordered (S_1 <= S_2 <= ...), so the score is Lipschitz."""
    A = rng.uniform(-1, 1, (d, d))
    covs = [A @ A.T + 0.1 * np.eye(d)]
    for _ in range(J - 1):
        B = rng.uniform(-1, 1, (d, d))
        covs.append(covs[-1] + B @ B.T / d + 0.05 * np.eye(d))
    return np.array(covs)


@st.composite
def gaussian_mixtures(draw, max_J=3, max_d=3, kinds=("iso", "iso_equal", "full", "full_ordered")):
    J = draw(st.integers(1, max_J))
    d = draw(st.integers(1, max_d))
    kind = draw(st.sampled_from(kinds))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = _weights(draw, J)
    m = rng.uniform(-2.5, 2.5, (J, d))
    if kind == "iso":
        cov = np.exp(rng.uniform(np.log(0.1), np.log(2.0), J))
    elif kind == "iso_equal":
        cov = np.full(J, np.exp(rng.uniform(np.log(0.1), np.log(2.0))))
    elif kind == "full":
        A = rng.uniform(-1, 1, (J, d, d))
        cov = A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(d)
    else:
        cov = _ordered_covs(draw, J, d, rng)
    return GaussianMixture(w, m, cov)


def _column_scale(target, t):
    """Smallest and largest component variance, largest |mean| at time t (length scales for steps)."""
    if isinstance(target, GroupedGaussian):
        m, var = target.marginal_params(t)
        return float(np.min(var)), float(np.max(var)), float(np.max(np.abs(m)))
    if isinstance(target, ProductMixture):
        _, m, var = target.component_params(t)
        return float(np.min(var[..., target.mask])), float(np.max(var[..., target.mask])), float(np.max(np.abs(m)))
    lam = ou_variance(target.eigvals, t)
    return float(lam.min()), float(lam.max()), float(np.max(np.abs(np.exp(-t) * target.means)))


def _central(f, x, h):
    """Central differences of f along every column of x: returns (batch, n) or (batch, m, n)."""
    cols = []
    for c in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[c] = h
        cols.append((f(x + e) - f(x - e)) / (2 * h))
    return np.stack(cols, axis=-1)


def assert_fd(exact, f, x, h, fscale):
    """``exact`` equals the central-difference derivative of ``f`` at ``x``.

    Tolerance: 10 x (Richardson estimate |D(h) - D(h/2)| / 3 of the truncation error of D(h/2)
    + 64 ulps of ``fscale`` (the magnitude of the terms that make up f) divided by the step h/2).
    """
    d1, d2 = _central(f, x, h), _central(f, x, h / 2)
    fscale = np.asarray(fscale).reshape((-1,) + (1,) * (d2.ndim - 1))
    tol = 10.0 * (np.abs(d1 - d2) / 3.0 + 64 * EPS * fscale / (h / 2))
    err = np.abs(exact - d2)
    assert np.all(err <= tol), f"max error {err.max():.3g}, tolerance there {tol.flat[np.argmax(err - tol)]:.3g}"


def _times_and_points(target, seed, t, per_row, offset, n=16):
    rng = np.random.default_rng(seed)
    tt = rng.uniform(0.0, 3.0, n) if per_row else t
    x = target.sample(n, tt, rng)
    vmin, vmax, _ = _column_scale(target, float(np.max(tt)))
    x = x + offset * np.sqrt(vmax) * rng.standard_normal(x.shape)
    return tt, x


# --------------------------------------------------------------------------------------------------
# scores are gradients of the log-densities
# --------------------------------------------------------------------------------------------------

def _check_score_vs_logdensity(target, t, x):
    vmin, vmax, mmax = _column_scale(target, float(np.min(t)))
    h = 1e-3 * np.sqrt(vmin)
    # magnitude of the terms of the log-density: quadratic forms, log-normalisers
    fscale = 1.0 + np.abs(target.log_density(x, t)) + np.sum((np.abs(x) + mmax) ** 2, axis=1) / (2 * vmin)
    fscale = fscale + x.shape[1] * (abs(np.log(vmin)) + abs(np.log(vmax)) + 1.0)
    assert_fd(target.score(x, t), lambda y: target.log_density(y, t), x, h, fscale)


def _score_scale(target, t, x):
    vmin, _, mmax = _column_scale(target, float(np.min(t)))
    return 1.0 + np.max(np.abs(target.score(x, t)), axis=1) + np.max(np.abs(x) + mmax, axis=1) / vmin, vmin


@SETTINGS
@given(grouped_gaussians(), st.integers(0, 2**32 - 1), st.floats(0.0, 3.0), st.booleans(), st.sampled_from([0.0, 2.0]))
def test_gaussian_score_is_gradient_of_log_density(target, seed, t, per_row, offset):
    tt, x = _times_and_points(target, seed, t, per_row, offset)
    _check_score_vs_logdensity(target, tt, x)


@SETTINGS
@given(product_mixtures(), st.integers(0, 2**32 - 1), st.floats(0.0, 3.0), st.booleans(), st.sampled_from([0.0, 2.0]))
def test_product_mixture_score_and_derivative(target, seed, t, per_row, offset):
    tt, x = _times_and_points(target, seed, t, per_row, offset)
    _check_score_vs_logdensity(target, tt, x)
    scale, vmin = _score_scale(target, tt, x)
    h = 1e-3 * np.sqrt(vmin)
    # the score is separable: its Jacobian is diagonal, with diagonal score_derivative
    jac = _central(lambda y: target.score(y, tt), x, h)
    off = jac - np.einsum("bii->bi", jac)[..., None] * np.eye(x.shape[1])
    assert np.all(np.abs(off) <= 64 * EPS * scale[:, None, None] / h)
    exact = target.score_derivative(x, tt)
    d1 = np.einsum("bii->bi", _central(lambda y: target.score(y, tt), x, h))
    d2 = np.einsum("bii->bi", _central(lambda y: target.score(y, tt), x, h / 2))
    tol = 10.0 * (np.abs(d1 - d2) / 3.0 + 64 * EPS * scale[:, None] / (h / 2))
    assert np.all(np.abs(exact - d2) <= tol)


@SETTINGS
@given(gaussian_mixtures(), st.integers(0, 2**32 - 1), st.floats(0.0, 3.0), st.booleans(), st.sampled_from([0.0, 2.0]))
def test_gaussian_mixture_score_and_jacobian(target, seed, t, per_row, offset):
    tt, x = _times_and_points(target, seed, t, per_row, offset)
    _check_score_vs_logdensity(target, tt, x)
    scale, vmin = _score_scale(target, tt, x)
    assert_fd(target.score_jacobian(x, tt), lambda y: target.score(y, tt), x, 1e-3 * np.sqrt(vmin), scale)
    # full-dimension methods are the column methods
    np.testing.assert_array_equal(target.score_full(x, tt), target.score(x, tt))
    np.testing.assert_array_equal(target.log_density_full(x, tt), target.log_density(x, tt))


def test_fd_check_catches_a_wrong_score():
    """Negative control for the finite-difference check: a score off by 1e-6 relative fails it."""
    target = ProductMixture([[0.3, 0.7]], [[-1.0, 2.0]], [[0.3, 1.0]])
    x = target.sample(16, 0.2, np.random.default_rng(0))
    wrong = target.score(x, 0.2) * (1 + 1e-6)
    with pytest.raises(AssertionError):
        scale = 1.0 + np.abs(target.log_density(x, 0.2))
        assert_fd(wrong, lambda y: target.log_density(y, 0.2), x, 1e-3 * np.sqrt(0.3), scale)


# --------------------------------------------------------------------------------------------------
# consistency between families and with the full-dimension coordinates
# --------------------------------------------------------------------------------------------------

def test_single_component_mixtures_are_the_grouped_gaussian(rng):
    gg = GroupedGaussian([0.3, 2.0], [1.0, -0.5], [2, 3])
    pm = ProductMixture([[1.0], [1.0]], [[1.0], [-0.5]], [[0.3], [2.0]], [2, 3])
    x = gg.sample(50, 0.4, rng)
    np.testing.assert_allclose(pm.score(x, 0.4), gg.score(x, 0.4), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(pm.log_density(x, 0.4), gg.log_density(x, 0.4), rtol=1e-13)
    minus_prec = -1.0 / gg.marginal_params(0.4)[1] * np.ones_like(x)
    np.testing.assert_allclose(pm.score_derivative(x, 0.4), minus_prec, rtol=1e-13)
    y = gg.sample_full(50, 0.4, rng)
    np.testing.assert_allclose(pm.score_full(y, 0.4), gg.score_full(y, 0.4), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(pm.log_density_full(y, 0.4), gg.log_density_full(y, 0.4), rtol=1e-13)
    gm = GaussianMixture([1.0], [[1.0, -0.5]], [0.7])
    gi = GroupedGaussian([0.7, 0.7], [1.0, -0.5])
    z = gi.sample(50, 1.1, rng)
    np.testing.assert_allclose(gm.score(z, 1.1), gi.score(z, 1.1), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(gm.log_density(z, 1.1), gi.log_density(z, 1.1), rtol=1e-13)
    assert gm.lipschitz(1.1) == pytest.approx(gi.lipschitz(1.1), rel=1e-12, abs=0)
    assert pm.lipschitz(0.4) == pytest.approx(gg.lipschitz(0.4), rel=1e-12, abs=0)


def test_product_mixture_full_coordinates_repeat_the_columns(rng):
    pm = ProductMixture([[0.3, 0.7], [0.2, 0.5, 0.3]], [[-2, 1.5], [-3, 0, 2.5]], [[0.2, 0.5], [0.1, 1.0, 0.3]], [3, 2])
    assert pm.dim == 5 and pm.n_columns == 2
    x = pm.sample(40, 0.3, rng)
    y = pm.expand(x)
    np.testing.assert_allclose(pm.score_full(y, 0.3), pm.expand(pm.score(x, 0.3)), rtol=1e-14)
    per_col = [ProductMixture(pm.weights[g, :n], pm.means[g, :n], pm.variances[g, :n]).log_density(x[:, [g]], 0.3)
               for g, n in enumerate(pm.n_components)]
    np.testing.assert_allclose(pm.log_density_full(y, 0.3), 3 * per_col[0] + 2 * per_col[1], rtol=1e-13)
    np.testing.assert_allclose(pm.log_density(x, 0.3), per_col[0] + per_col[1], rtol=1e-13)


def _density_1d(target, s, t):
    return np.exp(target.log_density(np.array([[s]]), t)[0])


def test_product_mixture_cdf_is_the_integral_of_the_density():
    pm = ProductMixture([0.25, 0.5, 0.25], [-2.0, 0.3, 3.0], [0.1, 1.2, 0.4])
    for t in (0.0, 0.5):
        for x in (-2.5, -1.0, 0.0, 2.2, 4.0):
            density = functools.partial(_density_1d, pm, t=t)
            val, err = integrate.quad(density, -np.inf, x, epsabs=1e-13, epsrel=1e-12, limit=200)
            assert pm.cdf(np.array([[x]]), t)[0, 0] == pytest.approx(val, abs=10 * err + 1e-12)


# --------------------------------------------------------------------------------------------------
# marginals are the law of the forward process (KS tests, with negative controls)
# --------------------------------------------------------------------------------------------------

N_KS = 20_000
P_OK = 1e-4       # a correct marginal fails with probability 1e-4 per test (fixed seeds: deterministic)
P_BAD = 1e-12     # the negative controls must be rejected far beyond chance


def _forward(x0, t, rng):
    a, s = processes.transition(0.0, t)
    return a * x0 + s * rng.standard_normal(x0.shape)


def _mixture_cdf(x, w, m, v, t, shrink=True):
    """CDF at x of sum_j w_j N(m_j, v_j) pushed through the OU process to time t (written from scratch)."""
    mt = (np.exp(-t) if shrink else 1.0) * np.asarray(m)
    vt = np.exp(-2 * t) * np.asarray(v) + 1 - np.exp(-2 * t)
    return np.sum(np.asarray(w) * ndtr((np.asarray(x)[..., None] - mt) / np.sqrt(vt)), axis=-1)


def _ks(x, w, m, v, t, shrink=True):
    """KS p-value of the sample x against the closed-form OU marginal of the 1-D mixture (w, m, v)."""
    return stats.kstest(x, functools.partial(_mixture_cdf, w=w, m=m, v=v, t=t, shrink=shrink)).pvalue


GG_PARAMS = dict(variances=[0.2, 3.0], means=[1.5, -2.0])
PM_PARAMS = dict(weights=[[0.3, 0.7], [0.5, 0.2, 0.3]], means=[[-2.0, 1.5], [-3.0, 0.0, 2.5]],
                 variances=[[0.2, 0.5], [0.1, 1.0, 0.3]])


@pytest.mark.parametrize("t", [0.3, 1.0])
def test_grouped_gaussian_marginal_is_forward_law(t):
    rng = np.random.default_rng(11)
    gg = GroupedGaussian(GG_PARAMS["variances"], GG_PARAMS["means"])
    xt = _forward(gg.sample(N_KS, 0.0, rng), t, rng)
    m0, v0 = np.array(GG_PARAMS["means"]), np.array(GG_PARAMS["variances"])
    for g in range(2):
        law = ([1.0], [m0[g]], [v0[g]])
        assert _ks(xt[:, g], *law, t) > P_OK
        assert _ks(xt[:, g], *law, t, shrink=False) < P_BAD      # no e^{-t} shrinkage
        assert _ks(xt[:, g], *law, t + 0.2) < P_BAD               # wrong time
    # the closed form of the class is that formula, and direct sampling at t follows it
    m, var = gg.marginal_params(t)
    np.testing.assert_allclose(m, np.exp(-t) * m0, rtol=1e-15)
    np.testing.assert_allclose(var, np.exp(-2 * t) * v0 + 1 - np.exp(-2 * t), rtol=1e-14)
    xs = gg.sample(N_KS, t, rng)
    for g in range(2):
        assert stats.kstest(xs[:, g], stats.norm(m[g], np.sqrt(var[g])).cdf).pvalue > P_OK


@pytest.mark.parametrize("t", [0.05, 0.3, 1.0])
def test_product_mixture_marginal_is_forward_law(t):
    rng = np.random.default_rng(12)
    pm = ProductMixture(PM_PARAMS["weights"], PM_PARAMS["means"], PM_PARAMS["variances"], [2, 1])
    xt = _forward(pm.sample(N_KS, 0.0, rng), t, rng)
    xs = pm.sample(N_KS, t, rng)
    for g in range(2):
        law = tuple(PM_PARAMS[k][g] for k in ("weights", "means", "variances"))
        assert _ks(xt[:, g], *law, t) > P_OK
        assert _ks(xs[:, g], *law, t) > P_OK
        assert _ks(xt[:, g], *law, t, shrink=False) < P_BAD
        assert _ks(xt[:, g], *law, 2 * t + 0.1) < P_BAD
        grid = np.linspace(-6, 6, 41)[:, None] * np.ones((1, 2))
        np.testing.assert_allclose(pm.cdf(grid, t)[:, g], _mixture_cdf(grid[:, g], *law, t), rtol=1e-13, atol=1e-15)


def test_product_mixture_per_row_times():
    """One OU time per row: the probability integral transform of each row is uniform."""
    rng = np.random.default_rng(13)
    pm = ProductMixture(PM_PARAMS["weights"], PM_PARAMS["means"], PM_PARAMS["variances"])
    ts = rng.uniform(0.0, 2.0, N_KS)
    x = pm.sample(N_KS, ts, rng)
    u = pm.cdf(x, ts[:, None])
    for g in range(2):
        assert stats.kstest(u[:, g], "uniform").pvalue > P_OK
    # negative control: the same samples judged at a single time
    assert stats.kstest(pm.cdf(x, 1.0)[:, 0], "uniform").pvalue < P_BAD


@pytest.mark.parametrize("t", [0.1, 0.8])
def test_gaussian_mixture_marginal_is_forward_law(t):
    rng = np.random.default_rng(14)
    w, m = np.array([0.2, 0.5, 0.3]), np.array([[-2.0, 0.0, 1.0], [1.5, 1.0, -1.0], [0.0, -2.5, 2.0]])
    A = rng.uniform(-1, 1, (3, 3, 3))
    cov = A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(3)
    gm = GaussianMixture(w, m, cov)
    xt = _forward(gm.sample(N_KS, 0.0, rng), t, rng)
    xs = gm.sample(N_KS, np.full(N_KS, t), rng)
    for _ in range(2):
        u = rng.standard_normal(3)
        u /= np.linalg.norm(u)
        var0 = np.einsum("a,jab,b->j", u, cov, u)      # u^T S_j u; OU acts on it as on a 1-D variance
        assert _ks(xt @ u, w, m @ u, var0, t) > P_OK
        assert _ks(xs @ u, w, m @ u, var0, t) > P_OK
        assert _ks(xt @ u, w, m @ u, var0, t + 0.3) < P_BAD
    # isotropic components
    gi = GaussianMixture(w, m, [0.3, 1.0, 0.5])
    xt = _forward(gi.sample(N_KS, 0.0, rng), t, rng)
    assert _ks(xt[:, 0], w, m[:, 0], [0.3, 1.0, 0.5], t) > P_OK
    assert _ks(xt[:, 0], w, m[:, 0], [0.3, 1.0, 0.5], t, shrink=False) < P_BAD


# --------------------------------------------------------------------------------------------------
# a grouped Gaussian is the dense Gaussian it stands for
# --------------------------------------------------------------------------------------------------

def _random_orthogonal(d, rng):
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.sign(np.diag(R))


def _dense_at(mean0, cov0, t):
    """Dense OU marginal at t, from the data law (written independently of the class)."""
    d = mean0.size
    return np.exp(-t) * mean0, np.exp(-2 * t) * cov0 + (1 - np.exp(-2 * t)) * np.eye(d)


@pytest.mark.parametrize("t", [0.0, 0.7])
def test_grouped_gaussian_with_basis_is_the_dense_gaussian(t, rng):
    var, mean, mult = np.array([0.3, 2.5, 0.08]), np.array([1.0, -0.5, 2.0]), np.array([2, 1, 3])
    Q = _random_orthogonal(6, rng)
    gg = GroupedGaussian(var, mean, mult, basis=Q)
    mean0 = Q @ np.repeat(mean, mult)
    cov0 = Q @ np.diag(np.repeat(var, mult)) @ Q.T
    mt, ct = _dense_at(mean0, cov0, t)
    y = rng.multivariate_normal(mt, ct, size=30)
    ref = stats.multivariate_normal(mt, ct)
    np.testing.assert_allclose(gg.log_density_full(y, t), ref.logpdf(y), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(gg.score_full(y, t), -np.linalg.solve(ct, (y - mt).T).T, rtol=1e-9, atol=1e-9)
    dm, dc = gg.dense(t)
    np.testing.assert_allclose(dm, mt, atol=1e-13)
    np.testing.assert_allclose(dc, ct, atol=1e-13)
    # without a basis, multiplicities alone: a diagonal dense Gaussian
    g0 = GroupedGaussian(var, mean, mult)
    m1, c1 = _dense_at(np.repeat(mean, mult), np.diag(np.repeat(var, mult)), t)
    y1 = rng.multivariate_normal(m1, c1, size=30)
    np.testing.assert_allclose(g0.log_density_full(y1, t), stats.multivariate_normal(m1, c1).logpdf(y1), rtol=1e-12)


def _sample_moment_check(y, mean, cov):
    """Sample mean and covariance within 5 standard errors of (mean, cov) (Gaussian sampling law)."""
    n = y.shape[0]
    sd = np.sqrt(np.diag(cov))
    assert np.all(np.abs(y.mean(0) - mean) <= 5 * sd / np.sqrt(n))
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(np.cov(y.T) - cov) <= 5 * se_cov)


@pytest.mark.parametrize("repeated", [False, True])
def test_from_dense_reproduces_the_dense_gaussian(repeated, rng):
    d = 5
    if repeated:
        Q = _random_orthogonal(d, rng)
        cov0, mean0 = Q @ np.diag([1.0, 1.0, 1.0, 2.5, 2.5]) @ Q.T, np.zeros(d)
    else:
        A = rng.standard_normal((d, d))
        cov0, mean0 = A @ A.T / d + 0.2 * np.eye(d), rng.uniform(-2, 2, d)
    gg = GroupedGaussian.from_dense(mean0, cov0)
    assert gg.dim == d
    if repeated:
        assert sorted(gg.multiplicities.tolist()) == [2, 3]
    for t in (0.0, 0.4):
        mt, ct = _dense_at(mean0, cov0, t)
        y = rng.multivariate_normal(mt, ct, size=40)
        ref = stats.multivariate_normal(mt, ct).logpdf(y)
        np.testing.assert_allclose(gg.log_density_full(y, t), ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(gg.score_full(y, t), -np.linalg.solve(ct, (y - mt).T).T, rtol=1e-8, atol=1e-8)
        _sample_moment_check(gg.sample_full(100_000, t, rng), mt, ct)


def test_moment_check_catches_a_wrong_covariance(rng):
    """Negative control for the Monte Carlo check: 5% too much variance on one axis is detected."""
    cov = np.diag([1.0, 2.0])
    y = rng.multivariate_normal([0, 0], np.diag([1.05, 2.0]), size=100_000)
    with pytest.raises(AssertionError):
        _sample_moment_check(y, np.zeros(2), cov)


# --------------------------------------------------------------------------------------------------
# Lipschitz constants
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("t", [0.0, 0.05, 1.0])
def test_gaussian_lipschitz_is_max_eigenvalue_of_minus_hessian(t, rng):
    Q = _random_orthogonal(6, rng)
    gg = GroupedGaussian([0.3, 2.5, 0.08], [1.0, -0.5, 2.0], [2, 1, 3], basis=Q)
    y = gg.sample_full(3, t, rng)
    h = 1e-4
    jac = _central(lambda z: gg.score_full(z, t), y, h)             # Hessian of the log-density
    lam = np.linalg.eigvalsh(-0.5 * (jac + np.swapaxes(jac, 1, 2)))
    scale = 1.0 + np.max(np.abs(gg.score_full(y, t)))
    # the score is affine, so central differences are exact up to rounding of the score
    tol = 64 * EPS * scale / h * 6
    np.testing.assert_allclose(lam.max(axis=1), gg.lipschitz(t), atol=tol)
    assert tol < 1e-6 * gg.lipschitz(t)


def _grid_max_1d(target, t, per_sd=100):
    _, m, var = target.component_params(t)
    out = []
    for g in range(target.n_columns):
        k = target.mask[g]
        lo, hi = m[g, k].min() - 12 * np.sqrt(var[g, k].max()), m[g, k].max() + 12 * np.sqrt(var[g, k].max())
        x = np.arange(lo, hi, np.sqrt(var[g, k].min()) / per_sd)
        X = np.zeros((x.size, target.n_columns))
        X[:, g] = x
        out.append(np.abs(target.score_derivative(X, t)[:, g]).max())
    return np.array(out)


ROUND = 1e-9   # the bound is often attained exactly (e.g. 1/v); the Jacobian at the far ridge points
#               (|x| up to 1e4) carries a rounding error ~ eps |s| |s_j - s_k| <~ 1e-10 relative


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(product_mixtures(), st.sampled_from([0.0, 0.01, 0.1, 0.5, 2.0]))
@example(ProductMixture([[0.4, 0.6]], [[-2.0, 2.0]], [[0.1, 0.3]]), 0.0)            # separated modes:
@example(ProductMixture([[0.3, 0.3, 0.4]], [[-2.5, 0.0, 2.5]], [[0.2, 0.6, 0.1]]), 0.05)   # sup |score'| from Var
def test_product_mixture_lipschitz_bound(target, t):
    """Bound >= grid maximum of |score'|; and not absurdly loose: within 2x for groups of at most
    two components (observed worst 1.28 over 300 random groups) and 6x for three (observed 4.1)."""
    grid = _grid_max_1d(target, t)
    bound = target._lipschitz_columns(t)[0]
    assert np.all(bound >= grid * (1 - ROUND))
    allowed = np.where(target.n_components <= 2, 2.0, 6.0)
    assert np.all(bound <= allowed * grid)
    assert target.lipschitz(t) == pytest.approx(bound.max())


def test_product_mixture_lipschitz_examples():
    """Closed cases: equal variances (range bound) and one component (1/v); ratios reported in the docstring."""
    pm = ProductMixture([[0.5, 0.5], [0.2, 0.5, 0.3]], [[-2.0, 2.0], [-3.0, 0.0, 3.0]], [[0.5, 0.5], [0.5, 0.5, 0.5]])
    for t in (0.0, 0.3):
        grid, bound = _grid_max_1d(pm, t), pm._lipschitz_columns(t)[0]
        assert np.all(bound >= grid * (1 - ROUND))
        # two equal-variance components: sup Var = (Delta m)^2/(4 v^2) is attained at the midpoint
        v = ou_variance(0.5, t)
        assert bound[0] == pytest.approx((4 * np.exp(-t)) ** 2 / (4 * v**2) - 1 / v, rel=1e-12, abs=0)
        assert grid[0] == pytest.approx(bound[0], rel=1e-3, abs=0)
        # three equally spaced components: the pairwise sums add the two adjacent pairs, whose sups
        # sit at different points, so the bound on sup Var is twice the truth (ratio 16/7 at t = 0)
        assert grid[1] * (1 - ROUND) <= bound[1] <= 2.5 * grid[1]
    # lipschitz_sup covers the small-t end
    assert pm.lipschitz_sup(0.0) == pytest.approx(pm.lipschitz(0.0), rel=1e-12, abs=0)


def _grid_max_2d(target, t, n=241):
    lam = ou_variance(target.eigvals, t)
    R = np.abs(np.exp(-t) * target.means).max() + 8 * np.sqrt(lam.max())
    g = np.linspace(-R, R, n)
    X = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    return float(np.abs(np.linalg.eigvalsh(target.score_jacobian(X, t))).max())


def _ridge_points(target, t):
    """Points where a two-component Jacobian can peak far from the means: the line through the
    vertex x0 = D^+ beta of the log-odds u = l_1 - l_2 along the top eigenvector of
    D = P_1 - P_2 (when D is nearly singular, x0 lies far outside any grid around the means)."""
    if target.n_components != 2:
        return np.zeros((0, target.n_columns))
    _, m, cov = target.component_params(t)
    d = target.n_columns
    cov = cov[:, None, None] * np.eye(d) if cov.ndim == 1 else cov
    P = np.linalg.inv(cov)
    D, beta = P[0] - P[1], P[0] @ m[0] - P[1] @ m[1]
    if not np.any(np.abs(D) > 1e-12 * np.abs(P).max()):
        return np.zeros((0, d))
    lam, Q = np.linalg.eigh(D)
    top = Q[:, np.argmax(np.abs(lam))]
    x0 = np.linalg.lstsq(D, beta, rcond=None)[0]
    s = np.geomspace(1e-3, 1e4, 4001)
    s = np.concatenate([-s[::-1], [0.0], s])
    return x0 + s[:, None] * top


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gaussian_mixtures(max_J=2, max_d=2, kinds=("iso", "iso_equal", "full_ordered")),
       st.sampled_from([0.0, 0.1, 1.0]))
def test_gaussian_mixture_lipschitz_bound(target, t):
    """Bound >= maximum of the Jacobian's spectral norm over a grid (d = 2, or d = 1 on a line)
    plus the ridge line of the pair; within 3x of it for two components (observed worst about 1.4)."""
    if target.n_columns == 1:
        lam = ou_variance(target.eigvals, t)
        R = np.abs(np.exp(-t) * target.means).max() + 12 * np.sqrt(lam.max())
        x = np.arange(-R, R, np.sqrt(lam.min()) / 100)[:, None]
        grid = float(np.abs(target.score_jacobian(x, t)).max())
    else:
        grid = _grid_max_2d(target, t)
    ridge = _ridge_points(target, t)
    if ridge.size:
        grid = max(grid, float(np.abs(np.linalg.eigvalsh(target.score_jacobian(ridge, t))).max()))
    bound = target.lipschitz(t)
    assert bound >= grid * (1 - ROUND)
    assert bound <= 3.0 * grid


def test_gaussian_mixture_lipschitz_three_components(rng):
    """Three components in d = 3: the bound dominates |eig| at many points (samples, segments between means)."""
    gm = GaussianMixture([0.3, 0.3, 0.4], [[-2, 0, 0], [2, 0, 1], [0, 2.5, -1]], [0.5, 0.2, 1.0])
    for t in (0.0, 0.2):
        s = np.linspace(-0.5, 1.5, 2001)[:, None]
        m = np.exp(-t) * gm.means
        pts = [gm.sample(20_000, t, rng)] + [m[j] + s * (m[k] - m[j]) for j in range(3) for k in range(j + 1, 3)]
        X = np.concatenate(pts)
        assert gm.lipschitz(t) >= np.abs(np.linalg.eigvalsh(gm.score_jacobian(X, t))).max() * (1 - ROUND)


def test_gaussian_mixture_equal_isotropic_is_the_range_bound():
    gm = GaussianMixture([0.3, 0.7], [[-2.0, 0.0], [2.0, 1.0]], [0.5, 0.5])
    for t in (0.0, 0.1):
        v = ou_variance(0.5, t)
        D2 = np.exp(-2 * t) * 17.0
        assert gm.lipschitz(t) == pytest.approx(max(1 / v, D2 / (4 * v**2) - 1 / v), rel=1e-12, abs=0)
        assert _grid_max_2d(gm, t, n=401) == pytest.approx(gm.lipschitz(t), rel=1e-3, abs=0)


def test_gaussian_mixture_unordered_covariances_are_not_lipschitz():
    """Sigma_1 - Sigma_2 indefinite: the bound is inf, and the Jacobian really grows without bound
    along the diagonal where both components have equal responsibility (|J| ~ a^2)."""
    gm = GaussianMixture([0.5, 0.5], [[0.0, 0.0], [0.0, 0.0]], [np.diag([1.0, 4.0]), np.diag([4.0, 1.0])])
    assert gm.lipschitz(0.3) == np.inf
    norms = [np.abs(np.linalg.eigvalsh(gm.score_jacobian(np.array([[a, a]]), 0.0))).max() for a in (5.0, 10.0, 20.0)]
    assert norms[1] > 3.5 * norms[0] and norms[2] > 3.5 * norms[1]


# --------------------------------------------------------------------------------------------------
# second moments
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: GroupedGaussian([0.3, 2.5, 0.08], [1.0, -0.5, 2.0], [2, 1, 3],
                            basis=_random_orthogonal(6, np.random.default_rng(5))),
    lambda: ProductMixture(PM_PARAMS["weights"], PM_PARAMS["means"], PM_PARAMS["variances"], [3, 2]),
    lambda: GaussianMixture([0.2, 0.8], [[1.0, -2.0, 0.5], [0.0, 1.0, 1.0]], [0.4, 1.5]),
    lambda: GaussianMixture([0.2, 0.8], [[1.0, -2.0], [0.0, 1.0]],
                            [[[1.0, 0.3], [0.3, 0.5]], [[0.2, 0.0], [0.0, 2.0]]]),
])
def test_second_moment_matches_monte_carlo(make, rng):
    target = make()
    y = target.sample_full(200_000, 0.0, rng)
    sq = np.sum(y**2, axis=1)
    assert abs(sq.mean() - target.second_moment()) <= 5 * sq.std() / np.sqrt(sq.size)


def test_subclass_overriding_only_score_is_refused():
    # law mode uses score_trusted; overriding score alone would be silently ignored there
    import pytest as _pytest

    from experiments.targets import GroupedGaussian as _GG

    with _pytest.raises(TypeError, match="score_trusted"):
        class _Bad(_GG):  # noqa: F841
            def score(self, x, t):
                return 0 * x
