"""Baseline samplers: convergence, observed order, identities, NFE, reproducibility, errors.

Everything runs in exact law mode (``experiments.laws.gaussian_law``) on a GroupedGaussian target with
variances [0.05, 0.5, 3.0] and nonzero means, started from the exact marginal at ``T`` (start="exact"),
so the only error is the sampler's discretisation error at the early-stopping level ``delta``.

Error metric (local helper; the official distances module is written elsewhere): the KL divergence
KL(q_delta || output) between the column Gaussians, summed over columns, reported as sqrt(KL), which
scales like the error of the output mean / variance (so its slope in the number of steps is the
order of the method).

Order rule, fixed before measuring (see ``order_verdict``): on steps 8..1024 (doublings) the local
slopes p_j = -log2(e_{j+1}/e_j) approach the order p as the grid is refined. The asymptotic window is
steps 128..1024 (three local slopes). If the pre-asymptotic correction shrinks geometrically with
ratio rho <= 3/4 per doubling (rho = 1/2 for an O(h^{p+1}) next term), the last local slope is within
3 * |p_last - p_previous| of p; the band is that, floored at 0.1 so it can still tell one integer order
from the next. The window must be "settled" (|p_last - p_previous| < 0.1). Negative controls (a DDPM
without its noise term, an Euler step with the wrong drift sign, a DPM-Solver-2 with a wrong
coefficient) must fail the same checks.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

from experiments import processes
from experiments.laws import gaussian_law
from experiments.samplers import NonFiniteStateError, get
from experiments.samplers._grid import GridKernel, build_grid
from experiments.samplers.ddim import DDIM
from experiments.samplers.ddpm import DDPM
from experiments.samplers.dpm_solver import DPMSolver1, DPMSolver2, DPMSolver3, DPMSolverPP2M, _a, _sig
from experiments.samplers.driver import run
from experiments.samplers.edm import EDMHeun
from experiments.samplers.pf_ode import PFODEEuler, PFODEHeun
from experiments.samplers.sde import EulerMaruyama, ExponentialIntegrator
from experiments.samplers.ve import VEExponentialIntegrator
from experiments.targets import GroupedGaussian

VARIANCES = [0.05, 0.5, 3.0]
MEANS = [1.0, -0.5, 2.0]
TARGET = GroupedGaussian(VARIANCES, MEANS)
STEPS = (8, 16, 32, 64, 128, 256, 512, 1024)
WINDOW = 4                      # the last four step counts, 128..1024: three local slopes

MINE = ("euler_maruyama", "exponential_integrator", "pf_ode_euler", "pf_ode_heun", "dpm_solver_1",
        "dpm_solver_2", "dpm_solver_3", "dpm_solver_pp_2m", "edm_heun", "ve_ei")

# textbook orders: weak order 1 for the SDE steps on Gaussians (EM, EI, DDPM, VE-EI)
ORDERS = {
    ("euler_maruyama", ()): 1,
    ("exponential_integrator", ()): 1,
    ("ddpm", (("variance", "small"),)): 1,
    ("ddpm", (("variance", "large"),)): 1,
    ("ddim", ()): 1,
    ("pf_ode_euler", ()): 1,
    ("pf_ode_heun", ()): 2,
    ("dpm_solver_1", ()): 1,
    ("dpm_solver_2", ()): 2,
    ("dpm_solver_3", ()): 3,
    ("dpm_solver_pp_2m", ()): 2,
    ("edm_heun", ()): 2,
    ("ve_ei", (("schedule", "exponential"),)): 1,
    ("ve_ei", (("schedule", "polynomial"),)): 1,
}


# --- local metric and checks ------------------------------------------------------------------


def kl_columns(law) -> float:
    """KL(target || output) summed over columns, for a deterministic-time law (n_draws = 1)."""
    m, v = law.mean[0], law.var[0]
    tm, tv = law.target_mean, law.target_var
    r = tv / v - 1.0                       # KL = (r - log(1 + r) + (m - tm)^2 / v) / 2
    small = np.abs(r) < 0.5                # r - log1p(r) keeps precision for r -> 0
    div = np.where(small, r - np.log1p(np.clip(r, -0.5, 0.5)), r + np.log(v) - np.log(tv))
    return float(np.sum(0.5 * (div + (m - tm) ** 2 / v)))


def kl_gauss_brute(m0, v0, m1, v1):
    """KL(N(m0,v0) || N(m1,v1)) in 1-D by quadrature (brute force for ``kl_columns``)."""
    from scipy import integrate, stats
    p, q = stats.norm(m0, np.sqrt(v0)), stats.norm(m1, np.sqrt(v1))
    return integrate.quad(lambda x: p.pdf(x) * (p.logpdf(x) - q.logpdf(x)), m0 - 12 * np.sqrt(v0),
                          m0 + 12 * np.sqrt(v0), epsabs=1e-13, epsrel=1e-11)[0]


def kernel_errors(make) -> np.ndarray:
    return np.array([np.sqrt(kl_columns(gaussian_law(make(s), TARGET))) for s in STEPS])


@functools.cache
def errors(name, params=()) -> np.ndarray:
    return kernel_errors(lambda s: get(name).make(s, **dict(params)))


def local_slopes(e) -> np.ndarray:
    return -np.log2(e[1:] / e[:-1])


def fitted_order(e) -> float:
    """OLS slope of -log(error) on log(steps) over the asymptotic window."""
    return float(-np.polyfit(np.log(STEPS[-WINDOW:]), np.log(e[-WINDOW:]), 1)[0])


def converges(e) -> bool:
    """The error is finite, falls at every doubling, and the window order is clearly positive."""
    e = np.asarray(e)
    return bool(np.all(np.isfinite(e)) and np.all(np.diff(e) < 0) and fitted_order(e) > 0.5)


def order_verdict(e, p) -> tuple[bool, str]:
    sl = local_slopes(np.asarray(e))[-(WINDOW - 1):]
    drift = abs(sl[-1] - sl[-2])
    band = max(0.1, 3.0 * drift)
    fit = fitted_order(e)
    ok = bool(np.all(np.isfinite(sl)) and drift < 0.1 and abs(sl[-1] - p) <= band
              and abs(fit - p) <= max(0.1, abs(sl[0] - sl[-1]) + 3.0 * drift))
    return ok, f"local slopes {np.round(sl, 4)}, fit {fit:.4f}, band {band:.3f}, textbook {p}"


# --- broken samplers (negative controls) ------------------------------------------------------


class DDPMNoNoise(DDPM):
    """DDPM with the noise term dropped."""

    name = "ddpm_no_noise"
    draws_per_step = 0

    def step(self, state, aux, k, noise, score):
        (x,) = state
        t, t_next = self.ts[k], self.ts[k + 1]
        beta = -np.expm1(-2.0 * (t - t_next))
        return ((x + beta * score(x, t)) / np.sqrt(1.0 - beta),)


class EulerWrongSign(PFODEEuler):
    """PF-ODE Euler with the sign of the score term flipped."""

    name = "euler_wrong_sign"

    def step(self, state, aux, k, noise, score):
        (x,) = state
        t, h = self.ts[k], self.ts[k] - self.ts[k + 1]
        return (x + h * (x - score(x, t)),)


class DPMSolver2WrongCoefficient(DPMSolver2):
    """DPM-Solver-2 with 1/r1 where the method has 1/(2 r1): still consistent, but first order."""

    name = "dpm_solver_2_wrong"

    def step(self, state, aux, k, noise, score):
        (x,) = state
        s, t, h, r1 = self.ts[k], self.ts[k + 1], self.h[k], self.r1
        s1 = self.t_mid[0][k]
        eps_s = self.eps_hat(score, x, s)
        u = _a(s1) / _a(s) * x - _sig(s1) * np.expm1(r1 * h) * eps_s
        eps_s1 = self.eps_hat(score, u, s1)
        return (_a(t) / _a(s) * x - _sig(t) * np.expm1(h) * eps_s
                - _sig(t) / r1 * np.expm1(h) * (eps_s1 - eps_s),)


# --- the metric itself -------------------------------------------------------------------------


def test_kl_helper_matches_quadrature():
    law = gaussian_law(get("ddim").make(8), TARGET)
    brute = sum(kl_gauss_brute(law.target_mean[g], law.target_var[g], law.mean[0, g], law.var[0, g])
                for g in range(TARGET.n_columns))
    assert kl_columns(law) == pytest.approx(brute, rel=1e-8, abs=0)


# --- convergence and order ---------------------------------------------------------------------


@pytest.mark.parametrize("key", list(ORDERS), ids=lambda k: k[0] + "".join(f"-{v}" for _, v in k[1]))
def test_converges(key):
    e = errors(*key)
    assert converges(e), f"{key}: errors {e}"


@pytest.mark.parametrize("key", list(ORDERS), ids=lambda k: k[0] + "".join(f"-{v}" for _, v in k[1]))
def test_observed_order_matches_textbook(key):
    ok, msg = order_verdict(errors(*key), ORDERS[key])
    assert ok, f"{key}: {msg}"


@pytest.mark.parametrize("name", ["dpm_solver_pp_2m", "dpm_solver_2", "pf_ode_heun"])
def test_second_order_on_a_grid_with_unequal_log_snr_steps(name):
    """The default log-SNR grid has equal steps in lambda, where DPM-Solver++(2M)'s step ratio r is 1 and a
    wrong r (h[k-2] for h[k-1], r for 1/r) goes unseen; a geometric grid has unequal steps."""
    ok, msg = order_verdict(errors(name, (("grid", "geometric"),)), 2)
    assert ok, f"{name} on a geometric grid: {msg}"


@pytest.mark.parametrize("cls", [DDPMNoNoise, EulerWrongSign])
def test_negative_control_does_not_converge(cls):
    e = kernel_errors(lambda s: cls(build_grid(s)))
    assert not converges(e), f"{cls.name} passed the convergence check: {e}"
    assert not order_verdict(e, 1)[0]
    assert e[-1] > 1.0                                  # the error stays O(1): it does not go to zero


def test_negative_control_wrong_order_is_detected():
    """A consistent but first-order 'DPM-Solver-2' converges, yet the order check rejects order 2."""
    e = kernel_errors(lambda s: DPMSolver2WrongCoefficient(build_grid(s)))
    assert converges(e)
    assert not order_verdict(e, 2)[0]
    assert order_verdict(e, 1)[0]


# --- identities (same inputs, exact up to rounding) ----------------------------------------------


def _same_noise_outputs(k1, k2, n=64, seed=3):
    """Outputs of two kernels driven by the same initial points and the same Gaussian draws."""
    r1 = run(k1, TARGET, n, np.random.default_rng(seed))
    r2 = run(k2, TARGET, n, np.random.default_rng(seed))
    return r1.x, r2.x


def _laws_close(k1, k2, rtol):
    l1, l2 = gaussian_law(k1, TARGET), gaussian_law(k2, TARGET)
    np.testing.assert_allclose(l1.mean, l2.mean, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(l1.var, l2.var, rtol=rtol, atol=0)


@pytest.mark.parametrize("grid", ["log_snr", "uniform", "edm"])
def test_ddim_equals_dpm_solver_1(grid):
    ts = build_grid(16, grid=grid)
    a, b = _same_noise_outputs(DDIM(ts), DPMSolver1(ts))
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    _laws_close(DDIM(ts), DPMSolver1(ts), 1e-12)


def test_dpm_solver_pp_first_step_is_ddim():
    ts = build_grid(1, T=2.0)
    a, b = _same_noise_outputs(DDIM(ts), DPMSolverPP2M(ts))
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


class _SDEDPMSolverPP1(GridKernel):
    """Reference: SDE-DPM-Solver++1 (Lu et al. 2022b), its update formula written out here."""

    name = "ref_sde_dpm_solver_pp_1"
    draws_per_step = 1

    def step(self, state, aux, k, noise, score):
        (x,) = state
        s, t = self.ts[k], self.ts[k + 1]
        a_s, sig_s, a_t, sig_t = np.exp(-s), np.sqrt(1 - np.exp(-2 * s)), np.exp(-t), np.sqrt(1 - np.exp(-2 * t))
        h = np.log(a_t / sig_t) - np.log(a_s / sig_s)
        x0 = (x + sig_s**2 * score(x, s)) / a_s
        z = noise.normal(x.shape[1])
        return (sig_t / sig_s * np.exp(-h) * x + a_t * (1 - np.exp(-2 * h)) * x0
                + sig_t * np.sqrt(1 - np.exp(-2 * h)) * z,)


class _DDIMEta1(GridKernel):
    """Reference: DDIM's generalized step with eta = 1 (ermongroup/ddim ``generalized_steps``)."""

    name = "ref_ddim_eta_1"
    draws_per_step = 1

    def step(self, state, aux, k, noise, score):
        (x,) = state
        ab, ab_next = np.exp(-2 * self.ts[k]), np.exp(-2 * self.ts[k + 1])
        e = -np.sqrt(1 - ab) * score(x, self.ts[k])
        x0 = (x - np.sqrt(1 - ab) * e) / np.sqrt(ab)
        c1 = 1.0 * np.sqrt((1 - ab / ab_next) * (1 - ab_next) / (1 - ab))
        c2 = np.sqrt(1 - ab_next - c1**2)
        return (np.sqrt(ab_next) * x0 + c2 * e + c1 * noise.normal(x.shape[1]),)


@pytest.mark.parametrize("grid", ["log_snr", "uniform"])
def test_ddpm_small_equals_sde_dpm_solver_pp_1_and_ddim_eta_1(grid):
    ts = build_grid(12, grid=grid)
    x_ddpm, x_pp = _same_noise_outputs(DDPM(ts, variance="small"), _SDEDPMSolverPP1(ts))
    _, x_eta1 = _same_noise_outputs(DDPM(ts, variance="small"), _DDIMEta1(ts))
    np.testing.assert_allclose(x_ddpm, x_pp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x_ddpm, x_eta1, rtol=1e-12, atol=1e-12)
    _laws_close(DDPM(ts, variance="small"), _SDEDPMSolverPP1(ts), 1e-12)


class _EDMEuler(EDMHeun):
    """EDM's Euler predictor alone (no correction): in the VE variable this is DDIM."""

    name = "ref_edm_euler"

    def step(self, state, aux, k, noise, score):
        (x_hat,) = state
        sig, sig_next = self.sig_hat[k], self.sig_hat[k + 1]
        d = (x_hat - self.denoiser(score, x_hat, k)) / sig
        return (x_hat + (sig_next - sig) * d,)


def test_edm_euler_predictor_equals_ddim():
    """Checks EDM's VE conversion (x_hat = x / alpha, D from the VP score) and its boundary scaling."""
    ts = build_grid(10, grid="edm", rho=7.0)
    a, b = _same_noise_outputs(_EDMEuler(ts), DDIM(ts))
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


class _FrozenScoreFineEM(GridKernel):
    """Brute force for the exponential integrator: m Euler-Maruyama substeps of the reverse SDE
    with the score frozen at the left grid point."""

    name = "ref_frozen_fine_em"

    def __init__(self, ts, m):
        super().__init__(ts)
        self.m = m
        self.draws_per_step = m

    def step(self, state, aux, k, noise, score):
        (y,) = state
        s = score(y, self.ts[k])
        dt = (self.ts[k] - self.ts[k + 1]) / self.m
        for _ in range(self.m):
            y = y + dt * (y + 2.0 * s) + np.sqrt(2.0 * dt) * noise.normal(y.shape[1])
        return (y,)


def test_exponential_integrator_is_the_frozen_score_solution():
    ts = np.array([1.5, 0.9, 0.4])
    ei = gaussian_law(ExponentialIntegrator(ts), TARGET)
    fine = {m: gaussian_law(_FrozenScoreFineEM(ts, m), TARGET) for m in (128, 256)}
    for attr in ("mean", "var"):
        e_ei = getattr(ei, attr)
        raw = np.abs(getattr(fine[256], attr) - e_ei).max()
        rich = np.abs(2 * getattr(fine[256], attr) - getattr(fine[128], attr) - e_ei).max()
        # EM is weak order 1: the m-substep law is EI + c/m + O(1/m^2); Richardson removes c/m
        assert raw < 0.05, (attr, raw)
        assert rich < 0.05 * raw, (attr, raw, rich)


class _VEReference(GridKernel):
    """Reference: the VE reverse-SDE exponential integrator written directly in the VE variable with
    the VE-native score of N(m, v) data, grad log N(m, v + sigma_hat^2) (no OU score involved)."""

    name = "ref_ve"
    draws_per_step = 1

    def init(self, x, aux, noise):
        return (x * np.sqrt(1 + np.expm1(2 * self.ts[0])),)             # x_hat = x * sqrt(1 + sig_hat^2)

    def step(self, state, aux, k, noise, score):
        (y,) = state
        sig2, sig2_next = np.expm1(2 * self.ts[k]), np.expm1(2 * self.ts[k + 1])
        s_hat = -(y - np.asarray(MEANS)) / (np.asarray(VARIANCES) + sig2)
        return (y + (sig2 - sig2_next) * s_hat + np.sqrt(sig2 - sig2_next) * noise.normal(y.shape[1]),)

    def output(self, state, aux):
        return state[0] / np.sqrt(1 + np.expm1(2 * self.ts[-1]))


@pytest.mark.parametrize("schedule", ["exponential", "polynomial"])
def test_ve_ei_equals_direct_ve_reverse_sde(schedule):
    spec = get("ve_ei")
    k = spec.make(12, schedule=schedule)
    a, b = _same_noise_outputs(k, _VEReference(k.ts))
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    _laws_close(k, _VEReference(k.ts), 1e-12)


def test_ve_schedules_are_the_named_grids():
    k_exp = get("ve_ei").make(6, schedule="exponential")
    sh = processes.edm_sigma_from_t(k_exp.ts)
    np.testing.assert_allclose(sh[1:] / sh[:-1], (sh[-1] / sh[0]) ** (1 / 6), rtol=1e-10)
    k_pol = get("ve_ei").make(6, schedule="polynomial", rho=3.0)
    sh = processes.edm_sigma_from_t(k_pol.ts)
    np.testing.assert_allclose(np.diff(sh ** (1 / 3)), (sh[-1] ** (1 / 3) - sh[0] ** (1 / 3)) / 6, rtol=1e-9)


# --- cost, reproducibility, law vs sample ------------------------------------------------------


@pytest.mark.parametrize("name", MINE + ("ddpm", "ddim"))
@pytest.mark.parametrize("steps", [1, 5, 7])
def test_nfe_counter_matches_documented_nfe(name, steps):
    spec = get(name)
    res = run(spec.make(steps), TARGET, 4, np.random.default_rng(0))
    assert np.all(res.nfe == spec.nfe(steps)), (name, res.nfe, spec.nfe(steps))
    assert gaussian_law(spec.make(steps), TARGET).nfe[0] == spec.nfe(steps)


@pytest.mark.parametrize("name", MINE)
def test_same_seed_gives_bit_identical_output(name):
    k = get(name).make(9)
    a = run(k, TARGET, 32, np.random.default_rng(11)).x
    b = run(k, TARGET, 32, np.random.default_rng(11)).x
    c = run(k, TARGET, 32, np.random.default_rng(12)).x
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("name", ["euler_maruyama", "exponential_integrator", "ve_ei", "dpm_solver_pp_2m", "edm_heun"])
def test_law_mode_agrees_with_sample_mode(name):
    n = 40_000
    k = get(name).make(16)
    law = gaussian_law(k, TARGET)
    x = run(k, TARGET, n, np.random.default_rng(5)).x
    m, v = law.mean[0], law.var[0]
    se_mean = np.sqrt(v / n)
    se_var = v * np.sqrt(2.0 / (n - 1))                  # Gaussian output: Var(s^2) = 2 v^2 / (n - 1)
    assert np.all(np.abs(x.mean(0) - m) < 5 * se_mean), (x.mean(0), m, se_mean)
    assert np.all(np.abs(x.var(0, ddof=1) - v) < 5 * se_var), (x.var(0, ddof=1), v, se_var)


def test_law_mode_detects_a_biased_sample_mode():
    """The 5-sigma check above can fail: a 16-step law does not match a 4-step sample run."""
    n = 40_000
    law = gaussian_law(get("euler_maruyama").make(16), TARGET)
    x = run(get("euler_maruyama").make(4), TARGET, n, np.random.default_rng(5)).x
    assert np.any(np.abs(x.var(0, ddof=1) - law.var[0]) > 5 * law.var[0] * np.sqrt(2.0 / (n - 1)))


# --- registry metadata ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", MINE)
def test_registry_entry_is_complete(name):
    spec = get(name)
    assert spec.claim is not None and spec.claim.metric in ("tv", "kl", "w2")
    assert spec.cost_knob == "steps"
    params = spec.theory(1000, 0.05, 20.0)
    assert params["T"] == pytest.approx(0.5 * np.log(1000 / 0.05**2))
    k = spec.make(4, **params)
    assert k.ts[0] == pytest.approx(params["T"]) and k.end_time > 0


# --- bad parameters and non-finite states ---------------------------------------------------------


@pytest.mark.parametrize("name", MINE)
@pytest.mark.parametrize("steps", [0, -3, 2.5])
def test_bad_steps_rejected(name, steps):
    with pytest.raises(ValueError, match="steps"):
        get(name).make(steps)


@pytest.mark.parametrize("cls", [EulerMaruyama, ExponentialIntegrator, PFODEEuler, PFODEHeun, DPMSolver1,
                                 DPMSolver2, DPMSolver3, DPMSolverPP2M, EDMHeun, VEExponentialIntegrator])
@pytest.mark.parametrize("ts", [[1.0, 2.0], [1.0, 1.0, 0.5], [1.0, 0.0], [1.0]])
def test_bad_grid_rejected(cls, ts):
    with pytest.raises(ValueError, match="ts"):
        cls(ts)


@pytest.mark.parametrize("name,params,word", [
    ("ve_ei", {"schedule": "cosine"}, "schedule"),
    ("ve_ei", {"schedule": "polynomial", "rho": 0.0}, "rho"),
    ("ve_ei", {"schedule": "polynomial", "rho": -7.0}, "rho"),
    ("edm_heun", {"rho": 0.0}, "rho"),
    ("edm_heun", {"rho": -1.0}, "rho"),
    ("ddpm", {"variance": "medium"}, "variance"),
    ("dpm_solver_2", {"grid": "cosine"}, "grid"),
    ("euler_maruyama", {"delta": 0.0}, "delta"),
    ("pf_ode_heun", {"T": 1e-4}, "delta"),
])
def test_bad_parameters_rejected(name, params, word):
    with pytest.raises(ValueError, match=word):
        get(name).make(8, **params)


class _NaNBelow:
    """The target, except that the score is NaN at OU times below ``t_bad``."""

    is_gaussian = True

    def __init__(self, base, t_bad):
        self.base, self.t_bad = base, t_bad
        self.n_columns, self.multiplicities = base.n_columns, base.multiplicities

    def score(self, x, t):
        out = self.base.score(x, t)
        return np.where(np.asarray(t) < self.t_bad, np.nan, out)

    def __getattr__(self, attr):
        return getattr(self.base, attr)


# samplers that evaluate the score at the right end of a step (Heun correctors)
_RIGHT_END = {"pf_ode_heun", "edm_heun"}


@pytest.mark.parametrize("name", MINE)
@pytest.mark.parametrize("mode", ["sample", "law"])
def test_nan_score_raises_naming_sampler_and_step(name, mode):
    k = get(name).make(10)
    j = 6
    bad = _NaNBelow(TARGET, k.ts[j] + 1e-9)              # the first bad level is ts[j]
    expected = j - 1 if name in _RIGHT_END else j
    with pytest.raises(NonFiniteStateError) as info:
        if mode == "sample":
            run(k, bad, 8, np.random.default_rng(0))
        else:
            gaussian_law(k, bad)
    msg = str(info.value)
    assert repr(name) in msg and re.search(rf"step {expected}\b", msg), msg


def test_overflow_raises_naming_sampler_and_step():
    # the registered makers now refuse such horizons (T <= 50, tests/test_edges.py); the kernels built on
    # a raw grid still exercise the driver's overflow path
    with pytest.raises(ValueError, match=r"\bT\b"):
        get("exponential_integrator").make(1, T=800.0, grid="uniform")
    # a huge step: e^h overflows in the exponential integrator's first step
    with pytest.raises(NonFiniteStateError, match=r"'exponential_integrator'.*step 0"):
        run(ExponentialIntegrator(processes.uniform_grid(800.0, 1e-3, 1)), TARGET, 4, np.random.default_rng(0))
    # Euler-Maruyama with two steps of h = 5e299: the second step overflows
    with pytest.raises(NonFiniteStateError, match=r"'euler_maruyama'.*step 1"):
        run(EulerMaruyama(processes.uniform_grid(1e300, 1e-3, 2)), TARGET, 4, np.random.default_rng(0))
