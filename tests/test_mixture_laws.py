"""Tests of experiments.mixture_laws: output laws on product mixtures and general Gaussian mixtures.

Significance of the distribution tests: Kolmogorov-Smirnov at level ALPHA = 1e-3 per test (about
ten tests: family-wise false-alarm rate <= 1e-2). Every agreement test has a negative control that
must be rejected at the same level.
"""

import numpy as np
import pytest
from scipy import stats
from scipy.interpolate import CubicSpline

from experiments import samplers as S
from experiments.laws import gaussian_law
from experiments.mixture_laws import (
    FoldedMapError,
    GridResolutionError,
    JacobianLogDensity,
    MixtureColumnLaw,
    jacobian_log_density,
    kl_tv_monte_carlo,
    monte_carlo_column_law,
    propagate_density_law,
    push_grid_law,
    push_points,
)
from experiments.samplers._api import Kernel
from experiments.samplers._grid import GridKernel, build_grid
from experiments.samplers.driver import run
from experiments.targets import GaussianMixture, GroupedGaussian, ProductMixture

ALPHA = 1e-3
VAR, MEAN = [0.3, 2.0], [1.0, -0.5]
GAUSS_PM = ProductMixture([[1.0], [1.0]], [[1.0], [-0.5]], [[0.3], [2.0]])
GAUSS = GroupedGaussian(VAR, MEAN)
BIMODAL = ProductMixture([[0.3, 0.7], [0.5, 0.5]], [[-2.0, 1.5], [-1.0, 1.0]], [[0.2, 0.5], [0.1, 0.1]])


def _gauss_error(law: MixtureColumnLaw, gl):
    """max |density - exact| / max exact over both columns (draw 0)."""
    err = 0.0
    for g in range(law.x.shape[1]):
        x = law.x[0, g]
        ex = np.exp(-0.5 * (x - gl.mean[0, g]) ** 2 / gl.var[0, g]) / np.sqrt(2 * np.pi * gl.var[0, g])
        err = max(err, np.max(np.abs(law.density[0, g] - ex)) / ex.max())
    return err


# ------------------------------------------------------------------------------------------------
# Gaussian-equivalent product mixture: exact law from law mode
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,steps", [("ddim", 10), ("dpm_solver_2", 6)])
def test_push_grid_is_exact_on_gaussian(name, steps):
    # The map is affine, log p is quadratic: the change of variables is exact at the nodes and the
    # cubic spline of log p reproduces quadratics; the only error is the tangent difference,
    # rounding ~ 1e-16 / rel_step = 1e-10 relative to y' (truncation rel_step^2 ~ 1e-12). Bound 1e-7
    # leaves a factor 1000 for amplification through log p.
    kernel = S.get(name).make(steps)
    gl = gaussian_law(kernel, GAUSS)
    for n in (101, 801):
        law = push_grid_law(kernel, GAUSS_PM, n_grid=n)
        assert _gauss_error(law, gl) < 1e-7
        assert np.allclose(law.mass(), 1.0, atol=1e-9)
    # negative control: the exact law of another step count is far outside that bound
    other = gaussian_law(S.get(name).make(steps + 3), GAUSS)
    assert _gauss_error(law, other) > 1e-4


@pytest.mark.parametrize("name", ["ddpm", "euler_maruyama", "ve_ei"])
def test_propagate_converges_to_gaussian(name):
    kernel = S.get(name).make(20)
    gl = gaussian_law(kernel, GAUSS)
    errs = [_gauss_error(propagate_density_law(kernel, GAUSS_PM, n_grid=n, mass_tol=1e-3), gl)
            for n in (128, 256, 512, 1024)]
    # cubic-spline resampling (4th order) + spectral convolution: at least 2nd order is asserted,
    # i.e. the error falls by >= 4 per doubling of n_grid (measured: 12-20)
    assert all(b < a / 4 for a, b in zip(errs, errs[1:], strict=False)), errs
    assert errs[-1] < 1e-7, errs
    other = gaussian_law(S.get(name).make(25), GAUSS)                     # negative control
    law = propagate_density_law(kernel, GAUSS_PM, n_grid=1024)
    assert _gauss_error(law, other) > 100 * errs[-1]


def test_push_grid_and_propagate_agree_on_ode():
    # two different algorithms (one global change of variables; per-step resampling) on a bimodal
    # target with the same deterministic kernel
    kernel = S.get("ddim").make(10)
    a = push_grid_law(kernel, BIMODAL, n_grid=4001)
    b = propagate_density_law(kernel, BIMODAL, n_grid=4096)
    for g in range(2):
        pa = np.exp(CubicSpline(a.x[0, g], a.log_density[0, g])(b.x[0, g]))
        assert np.max(np.abs(pa - b.density[0, g])) < 1e-5 * b.density[0, g].max()


@pytest.mark.parametrize("fn", [push_grid_law, propagate_density_law])
def test_self_convergence_on_bimodal(fn):
    kernel = S.get("ddim").make(10)
    ref = fn(kernel, BIMODAL, n_grid=8192)
    errs = []
    for n in (256, 512, 1024):
        law = fn(kernel, BIMODAL, n_grid=n)
        e = 0.0
        for g in range(2):
            r = CubicSpline(ref.x[0, g], ref.density[0, g])(law.x[0, g])
            e = max(e, np.max(np.abs(r - law.density[0, g])))
        errs.append(e)
    assert errs[1] < errs[0] / 4 and errs[2] < errs[1] / 4, errs


# ------------------------------------------------------------------------------------------------
# bimodal product mixture: agreement with sample mode (KS at level ALPHA) and negative controls
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,steps,fn,other", [
    ("ddim", 10, push_grid_law, 20),
    ("ddpm", 20, propagate_density_law, 10),
    ("exponential_integrator", 20, propagate_density_law, 10),
])
def test_bimodal_agrees_with_sample_mode(name, steps, fn, other):
    spec = S.get(name)
    kernel = spec.make(steps)
    law = fn(kernel, BIMODAL, n_grid=4096)
    assert np.allclose(law.mass(), 1.0, atol=1e-6)
    x = run(kernel, BIMODAL, 40_000, np.random.default_rng(11)).x
    for g in range(2):
        assert stats.kstest(x[:, g], law.cdf(0, g)).pvalue > ALPHA
    # the column laws plug into the distances layer (ColumnDensity): KL to the target is >= 0
    from experiments.distances import kl_product_density
    kl = kl_product_density(law.columns(0), [lambda x, g=g: law.target_density(g, x) for g in range(2)],
                            BIMODAL.multiplicities)
    assert np.isfinite(kl) and kl >= 0.0
    wrong = fn(spec.make(other), BIMODAL, n_grid=4096)                      # negative control
    assert min(stats.kstest(x[:, g], wrong.cdf(0, g)).pvalue for g in range(2)) < ALPHA


def test_conditional_laws_of_randomised_samplers():
    # conditional on the internal draw m, the law equals sample mode with the same internal draws
    # (same internal_rng seed); the law of the other draw is the negative control
    irng = 7
    k = S.get("gcc_predictor").make(50)              # 30 steps fold the line (FoldedMapError, measured)
    law = push_grid_law(k, BIMODAL, n_grid=2001, aux_draws=2, rng=np.random.default_rng(irng))
    mc = monte_carlo_column_law(k, BIMODAL, n_samples=10_000, rng=np.random.default_rng(3), n_draws=2,
                                internal_rng=np.random.default_rng(irng))
    for m in range(2):
        for g in range(2):
            assert stats.kstest(mc.samples[m][:, g], law.cdf(m, g)).pvalue > ALPHA
        # the two conditional laws differ, and the test sees it
        assert min(stats.kstest(mc.samples[m][:, g], law.cdf(1 - m, g)).pvalue for g in range(2)) < ALPHA


def test_propagate_with_random_start_and_picard_blocks():
    # Li & Jiao parallel (random start level, Picard blocks, exact OU noise injection); sweeps >= N
    # makes Picard exact. (Default sweeps=4 with N=10 diverges on this target: std ~ 50, measured.)
    irng = 5
    k = S.get("li_jiao_parallel").make(50, K=25, sweeps=4)
    law = propagate_density_law(k, BIMODAL, n_grid=2048, n_draws=1, rng=np.random.default_rng(irng), mass_tol=1e-4)
    assert np.allclose(law.mass(), 1.0, atol=1e-4)
    mc = monte_carlo_column_law(k, BIMODAL, n_samples=5000, rng=np.random.default_rng(4), n_draws=1,
                                internal_rng=np.random.default_rng(irng))
    for g in range(2):
        assert stats.kstest(mc.samples[0][:, g], law.cdf(0, g)).pvalue > ALPHA
    wrong = propagate_density_law(S.get("ddpm").make(10), BIMODAL, n_grid=2048)
    assert min(stats.kstest(mc.samples[0][:, g], wrong.cdf(0, g)).pvalue for g in range(2)) < ALPHA


def test_monte_carlo_histogram_and_precision():
    k = S.get("ddim").make(10)
    mc = monte_carlo_column_law(k, BIMODAL, n_samples=20_000, rng=np.random.default_rng(1), bins=80)
    width = np.diff(mc.edges, axis=-1)
    assert np.allclose(np.sum(mc.density * width, axis=-1), 1.0, atol=0)
    exact = push_grid_law(k, BIMODAL, n_grid=2001)
    for g in range(2):
        c = exact.cdf(0, g)
        p_bin = np.diff(c(mc.edges[0, g])) / width[0, g]
        z = (mc.density[0, g] - p_bin) / np.maximum(mc.stderr[0, g], 1e-12)
        ok = mc.stderr[0, g] > 0
        # chi-square of the bins with counts (Poisson errors), at level ALPHA
        chi2 = float(np.sum(z[ok] ** 2))
        assert stats.chi2.sf(chi2, ok.sum()) > ALPHA


# ------------------------------------------------------------------------------------------------
# mass, folds, the form of the noise
# ------------------------------------------------------------------------------------------------

def test_fold_detected_and_binning_conserves_mass():
    k = S.get("dpm_solver_2").make(5)                 # huge steps fold the line near x0 = -2 (measured)
    with pytest.raises(FoldedMapError, match="not monotone"):
        push_grid_law(k, BIMODAL, n_grid=2001)
    law = push_grid_law(k, BIMODAL, n_grid=4001, on_fold="bin")
    assert law.binned_maps >= 1
    assert np.allclose(law.mass(), 1.0, atol=1e-6)
    x = run(k, BIMODAL, 20_000, np.random.default_rng(2)).x
    for g in range(2):
        assert stats.kstest(x[:, g], law.cdf(0, g)).pvalue > ALPHA


class _NoiseKernel(GridKernel):
    """x' = x + h s(x, t) + c(x) xi, with a state-dependent (mode="state"), non-affine ("square")
    or interacting ("cross") noise, or the legal additive one ("additive")."""

    name = "test_noise"

    def __init__(self, mode):
        super().__init__(build_grid(5, T=2.0, delta=0.1))
        self.mode = mode
        self.draws_per_step = 2 if mode == "cross" else 1

    def step(self, state, aux, k, noise, score):
        (x,) = state
        h = self.ts[k] - self.ts[k + 1]
        y = x + h * score(x, self.ts[k])
        xi = noise.normal(x.shape[1])
        if self.mode == "additive":
            return (y + 0.3 * xi,)
        if self.mode == "state":
            return (y + (0.3 + 0.05 * x) * xi,)
        if self.mode == "square":
            return (y + 0.3 * xi + 0.1 * xi**2,)
        xi2 = noise.normal(x.shape[1])
        return (y + 0.3 * xi + 0.2 * xi2 + 0.1 * xi * xi2,)


def test_noise_form_is_verified():
    law = propagate_density_law(_NoiseKernel("additive"), BIMODAL, n_grid=1024)
    assert np.allclose(law.noise_var[..., 1:-1], 0.09, atol=0)
    assert np.allclose(law.mass(), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="depend on the state"):
        propagate_density_law(_NoiseKernel("state"), BIMODAL, n_grid=256)
    with pytest.raises(ValueError, match="not affine"):
        propagate_density_law(_NoiseKernel("square"), BIMODAL, n_grid=256)
    with pytest.raises(ValueError, match="interact"):
        propagate_density_law(_NoiseKernel("cross"), BIMODAL, n_grid=256)
    # a registered sampler whose Gaussian draw enters the score (randomised midpoint SDE step)
    with pytest.raises(ValueError, match="additive Gaussian noise"):
        propagate_density_law(S.get("ddram").make(10), BIMODAL, n_grid=256)


def test_resolution_guard():
    k = S.get("li_jiao_parallel").make(50, sweeps=10)
    with pytest.raises(GridResolutionError):
        propagate_density_law(k, BIMODAL, n_grid=512, rng=np.random.default_rng(5))


# ------------------------------------------------------------------------------------------------
# general Gaussian mixtures: Jacobian tracking
# ------------------------------------------------------------------------------------------------

def _dense_gaussian(rng):
    A = rng.standard_normal((3, 3))
    cov = A @ A.T / 3 + 0.2 * np.eye(3)
    return np.array([0.5, -1.0, 0.3]), cov


@pytest.mark.parametrize("name,steps", [("ddim", 8), ("dpm_solver_2", 4), ("dpm_solver_pp_2m", 6)])
def test_jacobian_log_density_exact_on_one_component(name, steps):
    mean, cov = _dense_gaussian(np.random.default_rng(0))
    gm = GaussianMixture([1.0], mean[None], cov[None])
    gg = GroupedGaussian.from_dense(mean, cov)
    kernel = S.get(name).make(steps)
    gl = gaussian_law(kernel, gg)
    m_out = gg.basis @ gl.mean[0]
    c_out = (gg.basis * gl.var[0]) @ gg.basis.T
    for method, tol in (("exact", 1e-10), ("fd", 1e-6)):
        r = jacobian_log_density(kernel, gm, 500, np.random.default_rng(1), method=method)
        exact = stats.multivariate_normal(m_out, c_out).logpdf(r.y)
        assert np.max(np.abs(r.log_density - exact)) < tol
    # KL estimate vs the closed-form Gaussian KL(P || Q), within 5 standard errors
    est = kl_tv_monte_carlo(jacobian_log_density(kernel, gm, 4000, np.random.default_rng(2)))
    tm, tc = gm.component_params(kernel.end_time)[1][0], gm.component_params(kernel.end_time)[2][0]
    ic = np.linalg.inv(tc)
    kl = 0.5 * (np.trace(ic @ c_out) + (tm - m_out) @ ic @ (tm - m_out) - 3 + np.linalg.slogdet(tc)[1]
                - np.linalg.slogdet(c_out)[1])
    assert abs(est.kl - kl) < 5 * est.kl_se
    # negative control: the exact law of a different step count is far outside the tolerances
    gl2 = gaussian_law(S.get(name).make(steps + 4), gg)
    other = stats.multivariate_normal(gg.basis @ gl2.mean[0], (gg.basis * gl2.var[0]) @ gg.basis.T).logpdf(r.y)
    assert np.max(np.abs(other - r.log_density)) > 1e-3


def _mesh(kernel, gm, N, L=7.0):
    """Cells of a uniform N x N mesh of initial points on [-L, L]^2: their p0-mass, the area of their image
    quadrilateral, and the images of their centres."""
    g = np.linspace(-L, L, N + 1)
    X0, X1 = np.meshgrid(g, g, indexing="ij")
    Y, _ = push_points(kernel, gm, np.stack([X0.ravel(), X1.ravel()], 1))
    Y = Y.reshape(N + 1, N + 1, 2)
    a, b, c, d = Y[:-1, :-1], Y[1:, :-1], Y[1:, 1:], Y[:-1, 1:]

    def cross(u, w):
        return u[..., 0] * w[..., 1] - u[..., 1] * w[..., 0]

    area = 0.5 * np.abs(cross(a, b) + cross(b, c) + cross(c, d) + cross(d, a)).ravel()
    cen = 0.5 * (g[:-1] + g[1:])
    C0, C1 = np.meshgrid(cen, cen, indexing="ij")
    centres = np.stack([C0.ravel(), C1.ravel()], 1)
    mass = np.exp(gm.log_density(centres, kernel.start_time({}))) * (g[1] - g[0]) ** 2
    return centres, mass, area


def test_jacobian_two_components_d2_integrates_and_kl_tv_agree():
    gm = GaussianMixture([0.4, 0.6], [[-1.5, 0.5], [1.5, -0.5]], [0.15, 0.3])
    kernel = S.get("ddim").make(6)
    # (a) the density integrates to 1 over the image mesh: sum p_out(y(centre)) * area(image cell);
    # the midpoint-type rule has error O(h^2) (measured 4.6e-3, 1.2e-3, 3.0e-4 at N = 100, 200, 400)
    dev = []
    for N in (200, 400):
        centres, mass, area = _mesh(kernel, gm, N)
        r = jacobian_log_density(kernel, gm, centres.shape[0], np.random.default_rng(0), x0=centres)
        dev.append(abs(float(np.sum(np.exp(r.log_density) * area)) - 1.0))
    assert dev[1] < 2e-3 and 3.0 < dev[0] / dev[1] < 5.0, dev          # second order, converging to 1
    # negative control: without the Jacobian (p0 instead of p_out) the integral is far from 1
    assert abs(float(np.sum(np.exp(r.log_p0) * area)) - 1.0) > 0.1
    # (b) brute force: KL and TV from the mesh (density = cell mass / image area, no Jacobian), two
    # mesh sizes for the discretisation error; Monte Carlo estimates must agree within 5 SE + that
    vals = []
    for N in (200, 400):
        c_, m_, a_ = _mesh(kernel, gm, N)
        yc, _ = push_points(kernel, gm, c_)
        ell = np.log(m_ / a_) - gm.log_density(yc, kernel.end_time)
        vals.append((np.sum(m_ * ell), np.sum(m_ * np.maximum(-np.expm1(-ell), 0.0))))
    (kl1, tv1), (kl2, tv2) = vals
    est = kl_tv_monte_carlo(jacobian_log_density(kernel, gm, 20_000, np.random.default_rng(3)))
    assert abs(est.kl - kl2) < 5 * est.kl_se + abs(kl2 - kl1)
    assert abs(est.tv - tv2) < 5 * est.tv_se + abs(tv2 - tv1)
    assert est.tv > 20 * est.tv_se                    # the error measured is well resolved


# ------------------------------------------------------------------------------------------------
# bad inputs
# ------------------------------------------------------------------------------------------------

def test_bad_inputs_name_the_parameter():
    ddim, ddpm = S.get("ddim").make(5), S.get("ddpm").make(5)
    with pytest.raises(ValueError, match="n_grid"):
        push_grid_law(ddim, BIMODAL, n_grid=3)
    with pytest.raises(ValueError, match="target"):
        push_grid_law(ddim, GAUSS)
    with pytest.raises(ValueError, match="kernel"):
        push_grid_law(ddpm, BIMODAL)
    with pytest.raises(ValueError, match="kernel"):
        push_grid_law("ddim", BIMODAL)
    with pytest.raises(ValueError, match="aux_draws"):
        push_grid_law(ddim, BIMODAL, aux_draws=0)
    with pytest.raises(ValueError, match="on_fold"):
        push_grid_law(ddim, BIMODAL, on_fold="ignore")
    with pytest.raises(ValueError, match="tail"):
        push_grid_law(ddim, BIMODAL, tail=0.5)
    with pytest.raises(ValueError, match="start"):
        push_grid_law(ddim, BIMODAL, start="data")
    with pytest.raises(ValueError, match="kernel"):
        propagate_density_law(S.get("li_jiao").make(50), BIMODAL)                 # state_size 2
    with pytest.raises(ValueError, match="n_draws"):
        propagate_density_law(ddpm, BIMODAL, n_draws=0)
    with pytest.raises(ValueError, match="rng"):
        propagate_density_law(ddpm, BIMODAL, rng=3)
    with pytest.raises(ValueError, match="n_samples"):
        monte_carlo_column_law(ddpm, BIMODAL, n_samples=1)
    with pytest.raises(ValueError, match="bins"):
        monte_carlo_column_law(ddpm, BIMODAL, n_samples=100, bins=1)
    gm = GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [0.2, 0.2])
    with pytest.raises(ValueError, match="target"):
        jacobian_log_density(ddim, BIMODAL, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="kernel"):
        jacobian_log_density(ddpm, gm, 10, np.random.default_rng(0))
    with pytest.raises(ValueError, match="method"):
        jacobian_log_density(ddim, gm, 10, np.random.default_rng(0), method="ad")
    with pytest.raises(ValueError, match="n must"):
        jacobian_log_density(ddim, gm, 0, np.random.default_rng(0))
    with pytest.raises(ValueError, match="x0"):
        jacobian_log_density(ddim, gm, 10, np.random.default_rng(0), x0=np.zeros((9, 2)))
    with pytest.raises(ValueError, match="result"):
        kl_tv_monte_carlo(None)
    assert isinstance(jacobian_log_density(ddim, gm, 4, np.random.default_rng(0)), JacobianLogDensity)
    assert issubclass(_NoiseKernel, Kernel)
