"""Randomized-midpoint samplers: Li & Jiao, Gupta-Cai-Chen (predictor, sequential, parallel,
log-concave) and DDRaM.

Errors are measured in exact law mode on GroupedGaussian targets as the *quenched* KL: the mean over
draws of internal randomness of KL(conditional output law || exact marginal at end_time), with its
Monte Carlo standard error (helper below; the official distances module is not used here).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import integrate

from experiments import processes
from experiments.laws import gaussian_law
from experiments.noise import PinnedInternal, SampleNoise
from experiments.samplers import REGISTRY, CountingScore, Kernel, get
from experiments.samplers.driver import run
from experiments.samplers.gupta_cai_chen import (
    rm_predictor_step,
    ulmc_ei_step,
    ulmc_noise_covariance,
    ulmc_rm_step,
)
from experiments.samplers.li_jiao import schedule
from experiments.targets import GroupedGaussian

NAMES = ["li_jiao", "li_jiao_parallel", "gcc_predictor", "gupta_cai_chen", "gupta_cai_chen_parallel",
         "gcc_logconcave", "ddram"]
SMALL = {  # a cheap configuration of every sampler: (cost, params)
    "li_jiao": (40, dict(K=4, c0=2.0, c1=4.0)),
    "li_jiao_parallel": (40, dict(K=4, c0=2.0, c1=4.0, sweeps=3)),
    "gcc_predictor": (10, {}),
    "gupta_cai_chen": (100, dict(N0=4)),
    "gupta_cai_chen_parallel": (6, dict(R=3, sweeps=2, corr_steps=5)),
    "gcc_logconcave": (10, dict(corr_steps=4)),
    "ddram": (10, {}),
}


# -- helpers --------------------------------------------------------------------------------------

def quenched_kl(law):
    """Mean over internal draws of KL(N(mean, var) || target), lifted by multiplicities; and its SE."""
    r = law.var / law.target_var
    kl = 0.5 * (r + (law.mean - law.target_mean) ** 2 / law.target_var - 1.0 - np.log(r))
    per_draw = kl @ law.multiplicities
    se = per_draw.std(ddof=1) / math.sqrt(per_draw.size) if per_draw.size > 1 else 0.0
    return float(per_draw.mean()), float(se)


def slope(costs, errors):
    return float(np.polyfit(np.log(costs), np.log(errors), 1)[0])


class Pinned(Kernel):
    """Run ``inner`` with every internal uniform pinned to ``value`` (experiments.noise.PinnedInternal)."""

    def __init__(self, inner, value):
        self.inner, self.value = inner, value
        self.name = f"{inner.name}[u={value}]"
        self.state_size, self.draws_per_step = inner.state_size, inner.draws_per_step
        self.n_steps, self.end_time = inner.n_steps, inner.end_time

    def _noise(self, noise):
        return PinnedInternal(noise, self.value)

    def plan(self, noise):
        return self.inner.plan(self._noise(noise))

    def start_time(self, aux):
        return self.inner.start_time(aux)

    def init(self, x, aux, noise):
        return self.inner.init(x, aux, self._noise(noise))

    def step(self, state, aux, k, noise, score):
        return self.inner.step(state, aux, k, self._noise(noise), score)

    def output(self, state, aux):
        return self.inner.output(state, aux)


class NoGaussian:
    """Sample-mode noise with every Gaussian draw set to zero (internal uniforms unchanged)."""

    mode = "sample"

    def __init__(self, rng, batch):
        self.base = SampleNoise(rng, batch)
        self.batch = batch

    def normal(self, n_columns):
        return np.zeros((self.batch, n_columns))

    def uniform(self, size=1):
        return self.base.uniform(size)

    def begin_step(self):
        pass


class Impulses:
    """The k-th Gaussian draw is a unit impulse on row k (reads off the linear map of the draws)."""

    def __init__(self, rows):
        self.rows, self.k = rows, 0

    def normal(self, n_columns):
        z = np.zeros((self.rows, n_columns))
        z[self.k] = 1.0
        self.k += 1
        return z


@pytest.fixture(scope="module")
def target():
    return GroupedGaussian([0.1, 0.5, 2.0], [1.0, 0.0, -0.5], [10, 10, 10])


def kl_curve(name, costs, target, params=None, pin=None, n_draws=128, seed=0):
    out = []
    for c in costs:
        k = get(name).make(c, **(params or {}))
        if pin is not None:
            k = Pinned(k, pin)
        law = gaussian_law(k, target, n_draws=1 if pin is not None else n_draws, rng=np.random.default_rng(seed))
        out.append(quenched_kl(law))
    return np.array([m for m, _ in out]), np.array([s for _, s in out])


def assert_falls(kl, se):
    """Each error is below the previous one by more than 5 combined standard errors."""
    drop = kl[:-1] - kl[1:]
    assert np.all(drop > 5 * np.hypot(se[:-1], se[1:])), (kl, se)


# -- Li & Jiao: schedule ----------------------------------------------------------------------------

def test_li_jiao_schedule_matches_shared_recursion():
    for T, tail, c0, c1 in [(50, 5, 2.0, 4.0), (200, 10, 3.0, 6.0), (40, 2, 1.0, 3.0)]:
        a, b, w = schedule(T, tail, c0, c1)
        ref = processes.li_jiao_alpha_hat(T, tail, c0, c1)
        np.testing.assert_allclose(a, ref, rtol=1e-13)
        np.testing.assert_allclose(a + b, 1.0, atol=4e-16)
        # widths: np.diff(a) / -np.diff(b) are exact up to one rounding of a number near 1 (or near 0)
        np.testing.assert_allclose(w, np.diff(a), rtol=1e-12, atol=3e-16)
        np.testing.assert_allclose(w, -np.diff(b), rtol=1e-12, atol=3e-16)
    # where 1 - alpha_hat is below float64 resolution the complementary recursion still resolves it
    a, b, w = schedule(3200, 160, 4.0, 12.0)
    assert b[-1] < 1e-30 and np.all(np.diff(b) < 0) and np.all(w > 0)


def test_li_jiao_random_levels_interleave_with_grid():
    k = get("li_jiao").make(40, K=4, c0=2.0, c1=4.0)
    aux = k.plan(SampleNoise(np.random.default_rng(1), 5))
    tau, b, N = aux["tau"], k.b, k.N
    for blk in range(k.K):
        for n in range(N + 1):
            j = blk * N // 2 + n
            # hat tau_{k,n} < tau_{k,n} < hat tau_{k,n-1}
            assert np.all((b[j + 1] <= tau[:, j]) & (tau[:, j] <= b[j]))
    # tau_{k+1,0} = tau_{k,N/2}: block k+1 starts halfway through block k, on the same draw
    np.testing.assert_array_equal(aux["abar"] + aux["tau"] - 1.0 < 1e-15, True)
    assert np.all(k.start_time(aux)[:, 0] == aux["t"][:, 0]) and k.start_time(aux).shape == (5, 1)
    assert k.end_time == pytest.approx(-0.5 * math.log1p(-b[40 + N // 2]), rel=1e-12, abs=0)
    # final="paper": (11a) to tau_{K,0}, then up to the top of its interval, hat tau = 1 - hat alpha_1
    kp = get("li_jiao").make(40, K=4, c0=2.0, c1=4.0, final="paper")
    assert kp.end_time == pytest.approx(-0.5 * math.log1p(-b[40]), rel=1e-12, abs=0) and kp.end_time > k.end_time
    assert np.all(aux["tau"][:, 40] <= b[40])


@pytest.mark.parametrize("name", ["li_jiao", "ddram", "gcc_predictor", "gupta_cai_chen"])
@pytest.mark.parametrize("value", [0.0, 1.0])
def test_extreme_nodes_are_finite(target, name, value):
    cost, params = SMALL[name]
    k = Pinned(get(name).make(cost, **params), value)
    law = gaussian_law(k, target, n_draws=1)
    assert np.all(np.isfinite(law.mean)) and np.all(law.var > 0)


# -- Li & Jiao: order on the paper's degenerate Gaussian set-up, and negative control -------------

def test_li_jiao_order_matches_reproduction_and_grid_end_control_is_first_order():
    # set-up after the experiment of the later arXiv version of 2410.13738 (Appendix A, [S]): d = 100, 10
    # coordinates with variance ~ U[0, 10], 90 with variance 1e-6 (the paper's are 0); K = 10 as there,
    # c0 = 4, c1 = 12 (ours). Window T in {200, 400, 800} (NFE 400..1600).
    variances = np.concatenate([np.random.default_rng(1).uniform(0.0, 10.0, 10), [1e-6]])
    tgt = GroupedGaussian(variances, 0.0, [1] * 10 + [90])
    Ts = [200, 400, 800]
    params = dict(K=10, c0=4.0, c1=12.0)
    kl, se = kl_curve("li_jiao", Ts, tgt, params, n_draws=128)
    assert np.all(se < 0.25 * kl), "Monte Carlo error must stay well below the error being fitted"
    assert_falls(kl, se)
    s_random = slope(Ts, kl)
    # negative control: the node at the noisy end of its interval (tau = hat tau_{k,n-1}, u = 0): Euler-like
    kl0, _ = kl_curve("li_jiao", Ts, tgt, params, pin=0.0)
    s_control = slope(Ts, kl0)
    # measured (seed 0): random slope about -3.1 (KL ~ log^4 T / T^3), control about -2.1 (first order)
    assert s_random < -2.5, (kl, s_random)
    assert s_control > -2.5, (kl0, s_control)
    assert np.all(kl0 > 10 * kl)


# -- Li & Jiao parallel: its fixed point is the sequential sampler ---------------------------------

@pytest.mark.parametrize("picard_init", ["scaled", "copy"])
def test_li_jiao_parallel_with_enough_sweeps_equals_sequential(target, picard_init):
    T, K = 40, 4
    N = 2 * T // K
    seq = get("li_jiao").make(T, K=K, c0=2.0, c1=4.0)
    par = get("li_jiao_parallel").make(T, K=K, c0=2.0, c1=4.0, sweeps=N, picard_init=picard_init)
    few = get("li_jiao_parallel").make(T, K=K, c0=2.0, c1=4.0, sweeps=2, picard_init=picard_init)
    a = run(seq, target, 50, np.random.default_rng(5)).x
    b = run(par, target, 50, np.random.default_rng(5)).x
    c = run(few, target, 50, np.random.default_rng(5)).x
    np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-10)
    assert np.max(np.abs(c - a)) > 1e-6                      # the comparison can fail
    la = gaussian_law(seq, target, n_draws=8, rng=np.random.default_rng(2))
    lb = gaussian_law(par, target, n_draws=8, rng=np.random.default_rng(2))
    np.testing.assert_allclose(lb.mean, la.mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(lb.var, la.var, rtol=1e-10)


# -- convergence of the other samplers, with a negative control ----------------------------------

@pytest.mark.parametrize("name,costs,params", [
    ("gcc_predictor", [32, 64, 128, 256], {}),
    ("ddram", [16, 32, 64, 128], {}),
    ("ddram", [16, 32, 64, 128], dict(node="uniform")),
    ("ddram", [32, 64, 128, 256], dict(linear="score")),   # (a) is unstable at 16 steps (its factor e^h expands)
])
def test_randomized_node_beats_pinned_left_node(target, name, costs, params):
    kl, se = kl_curve(name, costs, target, params)
    assert_falls(kl, se)
    kl0, _ = kl_curve(name, costs, target, params, pin=0.0)   # node at the start of the step: first order
    # measured: randomized slopes -3.1 (predictor), -3.2/-3.2/-4.8 (ddram); pinned slopes -1.9 / -2.0
    assert slope(costs, kl) < -2.5 < slope(costs, kl0)


@pytest.mark.parametrize("name,costs,params", [
    ("gupta_cai_chen", [160, 320, 640], {}),
    ("gupta_cai_chen", [160, 320, 640], dict(corrector="rm")),
    ("gupta_cai_chen_parallel", [16, 32, 64], dict(corr_steps=5)),
    ("gcc_logconcave", [100, 200, 400], dict(horizon=20.0)),
])
def test_error_falls_with_cost(target, name, costs, params):
    kl, se = kl_curve(name, costs, target, params, n_draws=64)
    assert_falls(kl, se)


# -- identities ---------------------------------------------------------------------------------

def test_predictor_pinned_at_half_is_the_deterministic_exponential_midpoint_rule(target):
    steps, n = 12, 7
    k = get("gcc_predictor").make(steps)
    rng = np.random.default_rng(3)
    got = run(k, target, n, rng, noise=PinnedInternal(SampleNoise(rng, n), 0.5)).x
    x = target.sample(n, k.ts[0], np.random.default_rng(3))
    for t, t_next in zip(k.ts[:-1], k.ts[1:], strict=True):             # written out independently of the sampler
        h = t - t_next
        x_half = math.exp(h / 2) * x + (math.exp(h / 2) - 1) * target.score(x, t)
        x = math.exp(h) * x + h * math.exp(h / 2) * target.score(x_half, t - h / 2)
    np.testing.assert_allclose(got, x, rtol=1e-13, atol=1e-13)


def test_parallel_predictor_with_one_node_one_sweep_is_the_sequential_predictor(target):
    steps = 9
    par = get("gupta_cai_chen_parallel").make(steps, R=1, sweeps=1, corr_steps=1)
    seq = get("gcc_predictor").make(steps)
    rng_a, rng_b = np.random.default_rng(4), np.random.default_rng(4)
    na, nb = SampleNoise(rng_a, 20), SampleNoise(rng_b, 20)
    x = target.sample(20, 8.0, np.random.default_rng(0))
    sa, sb = (x, np.zeros_like(x)), (x,)
    for i in range(steps):
        sa = par.step(sa, {}, i, na, CountingScore(target.score, 20))
        sb = seq.step(sb, {}, i, nb, CountingScore(target.score, 20))
    np.testing.assert_allclose(sa[0], sb[0], rtol=1e-13, atol=1e-14)


def test_predictor_coefficients_are_the_variation_of_constants_integrals():
    h, alpha = 0.37, 0.62
    calls = []

    def score(x, t):
        calls.append(x.copy())
        return np.ones_like(x)                                    # a constant field s = 1
    out = rm_predictor_step(np.zeros((1, 1)), 2.0, h, np.full((1, 1), alpha), score)
    # midpoint = exact solution of dy/dr = y + 1 over [0, alpha h]:  int_0^{alpha h} e^{alpha h - v} dv
    mid_exact = integrate.quad(lambda v: math.exp(alpha * h - v), 0.0, alpha * h)[0]
    assert calls[1][0, 0] == pytest.approx(mid_exact, rel=1e-12, abs=0)
    # full step weight = h times the variation-of-constants kernel e^{h - v} at v = alpha h
    assert out[0, 0] == pytest.approx(h * math.exp(h - alpha * h), rel=1e-13, abs=0)
    # and its average over alpha is the whole integral int_0^h e^{h-v} dv (Gauss-Legendre in alpha)
    nodes, weights = np.polynomial.legendre.leggauss(20)
    a = 0.5 * (nodes + 1.0)
    avg = 0.5 * np.sum(weights * h * np.exp((1 - a) * h))
    assert avg == pytest.approx(integrate.quad(lambda v: math.exp(h - v), 0.0, h)[0], rel=1e-12, abs=0)


def _field(t):
    return np.cos(3.0 * t) + t ** 2                               # a time-dependent, state-free field


@pytest.mark.parametrize("case", ["gcc_predictor", "ddram-score-importance", "ddram-score-uniform",
                                  "ddram-relative_score-importance", "ddram-relative_score-uniform"])
def test_random_node_quadrature_is_unbiased(case):
    """One step from x = 0 with an affine field whose drift does not depend on the state: the step's
    output is the random-node estimate of the integral; its mean over many nodes equals scipy quad."""
    t, t_next, n = 1.3, 0.55, 200_000
    h = t - t_next
    ts = np.array([t, t_next])
    if case == "gcc_predictor":
        k = get("gcc_predictor").make(1, T=t, delta=t_next)
        score = lambda x, s: np.broadcast_to(_field(s), x.shape)                   # noqa: E731
        exact = integrate.quad(lambda v: math.exp(h - v) * _field(t - v), 0.0, h)[0]
    else:
        _, linear, node = case.split("-")
        from experiments.samplers.ddram import DDRaM
        k = DDRaM(ts, linear=linear, node=node)
        if linear == "score":                                    # f = 2 s, s = field(t)
            score = lambda x, s: np.broadcast_to(_field(s), x.shape)               # noqa: E731
            exact = integrate.quad(lambda r: math.exp(h - r) * 2 * _field(t - r), 0.0, h)[0]
        else:                                                    # f~ = 2 (s + y), s = -y + field(t)
            score = lambda x, s: -x + _field(s)                                     # noqa: E731
            exact = integrate.quad(lambda r: math.exp(-(h - r)) * 2 * _field(t - r), 0.0, h)[0]
    noise = NoGaussian(np.random.default_rng(11), n)
    (est,) = k.step((np.zeros((n, 1)),), {}, 0, noise, CountingScore(score, n))
    se = est.std(ddof=1) / math.sqrt(n)
    assert se > 0
    assert abs(est.mean() - exact) < 5 * se, (est.mean(), exact, se)


# -- random versus pinned-at-0.5 nodes: statistics that separate them by a large factor -------------

def per_draw_kl(law):
    """KL(output law given internal draw m || target) for every draw m: array (M,)."""
    r = law.var / law.target_var
    return (0.5 * (r + (law.mean - law.target_mean) ** 2 / law.target_var - 1.0 - np.log(r))) @ law.multiplicities


# (name, cost, params, measured relative spread over 64 draws of the per-draw KL / of the per-draw output
# variance, seed 0). The midpoint-pinned kernel gives identical per-draw laws: spreads <= 1.8e-16 / 6.7e-16.
SPREAD_CASES = [
    ("li_jiao", 80, dict(K=4, c0=2.0, c1=4.0), 1.05, 0.034),
    ("li_jiao", 200, dict(K=10, c0=4.0, c1=12.0), 1.42, 0.10),
    ("gcc_predictor", 64, {}, 2.01, 0.29),
]


@pytest.mark.parametrize("name,cost,params,kl_spread,var_spread", SPREAD_CASES)
def test_random_nodes_move_the_conditional_law_pinned_nodes_do_not(target, name, cost, params, kl_spread, var_spread):
    """Law mode conditional on 64 internal draws. With random nodes each draw gives a different output law:
    the relative spread (std / mean) of the per-draw KL and the largest relative spread of a column's
    per-draw variance are O(1) and O(0.1) (measured values in SPREAD_CASES); with every uniform pinned at
    0.5 the 64 laws coincide (spreads at rounding level, <= 7e-16). Asserted: random above half the
    measured value, pinned below 1e-12, a separation of more than 1e10."""
    lr = gaussian_law(get(name).make(cost, **params), target, n_draws=64, rng=np.random.default_rng(0))
    lp = gaussian_law(Pinned(get(name).make(cost, **params), 0.5), target, n_draws=64, rng=np.random.default_rng(0))
    kr, kp = per_draw_kl(lr), per_draw_kl(lp)
    vr = float(np.max((lr.var / lr.target_var).std(0)))
    vp = float(np.max((lp.var / lp.target_var).std(0)))
    assert kr.std() / kr.mean() > kl_spread / 2 and vr > var_spread / 2, (kr.std() / kr.mean(), vr)
    assert kp.std() / kp.mean() < 1e-12 and vp < 1e-12, (kp.std() / kp.mean(), vp)
    # the pinned kernel is a proper sampler (finite, non-trivial error), not a degenerate one
    assert 0 < kp.mean() < 1


def test_gcc_predictor_quenched_kl_separates_random_from_the_midpoint_rule(target):
    """At 64 steps the quenched KL of the random-node predictor is far above that of the deterministic
    midpoint rule (u = 0.5): measured 0.537 (se 0.136, 64 draws) against 0.00256, ratio 209; asserted with
    the random KL's lower 3-se envelope (0.129, ratio 50) above 10 times the pinned KL."""
    kl, se = kl_curve("gcc_predictor", [64], target, n_draws=64)
    kl_pin, _ = kl_curve("gcc_predictor", [64], target, pin=0.5)
    assert kl[0] - 3 * se[0] > 10 * kl_pin[0], (kl, se, kl_pin)


class WeightAtHalf(Kernel):
    """Li & Jiao with random nodes but every quadrature weight taken at u = 1/2: the pieces (1 - u) w and u w
    of (11b) become w / 2 while the score is still evaluated at the random node (a consistent but biased rule)."""

    def __init__(self, inner):
        self.inner, self.name = inner, inner.name + "[weights u=1/2]"
        self.state_size, self.draws_per_step = inner.state_size, inner.draws_per_step
        self.n_steps, self.end_time = inner.n_steps, inner.end_time

    def plan(self, noise):
        aux = dict(self.inner.plan(noise))
        # nodes: abar/tau/t (g_scale from abar); u: weights only
        assert set(aux) == {"u", "abar", "tau", "t", "g_scale"}
        aux["u"] = np.full_like(aux["u"], 0.5)
        return aux

    def start_time(self, aux):
        return self.inner.start_time(aux)

    def init(self, x, aux, noise):
        return self.inner.init(x, aux, noise)

    def step(self, state, aux, k, noise, score):
        return self.inner.step(state, aux, k, noise, score)

    def output(self, state, aux):
        return self.inner.output(state, aux)


def test_li_jiao_quadrature_weight_fixed_at_half_is_detected(target):
    """T = 320, K = 4 (NFE 640), 64 draws: quenched KL 3.14e-4 (se 4.6e-5) for the sampler against 2.04e-3
    (se 2.4e-4) with weights at u = 1/2, a ratio of 6.5 (5.96 at T = 640, 3.4 at T = 160: the fixed weight
    is first order). Asserted: ratio above 3, and the 3-se envelopes separated by a factor 1.5 (measured 2.9)."""
    T, params = 320, dict(K=4, c0=2.0, c1=4.0)
    ok = gaussian_law(get("li_jiao").make(T, **params), target, n_draws=64, rng=np.random.default_rng(0))
    bad = gaussian_law(WeightAtHalf(get("li_jiao").make(T, **params)), target, n_draws=64,
                       rng=np.random.default_rng(0))
    k_ok, se_ok = quenched_kl(ok)
    k_bad, se_bad = quenched_kl(bad)
    assert k_bad > 3 * k_ok, (k_ok, k_bad)
    assert k_bad - 3 * se_bad > 1.5 * (k_ok + 3 * se_ok), (k_ok, se_ok, k_bad, se_bad)


def test_gcc_predictor_fixed_weight_and_pinned_node_are_biased_quadratures():
    """The unbiasedness check of test_random_node_quadrature_is_unbiased fails for the two broken variants:
    weight h e^{h/2} with a random node: mean off by 82 standard errors (asserted > 20); node pinned at 1/2
    (the midpoint rule): off by 0.308, 330 times the random estimator's standard error (asserted > 50), and
    no spread at all (0 against 0.414)."""
    t, t_next, n = 1.3, 0.55, 200_000
    h = t - t_next
    exact = integrate.quad(lambda v: math.exp(h - v) * _field(t - v), 0.0, h)[0]
    score = lambda x, s: np.broadcast_to(_field(s), x.shape)                       # noqa: E731
    good = get("gcc_predictor").make(1, T=t, delta=t_next)

    def fixed_weight_step(x, tt, hh, alpha, sc):
        x_mid = np.exp(alpha * hh) * x + np.expm1(alpha * hh) * sc(x, tt)
        return math.exp(hh) * x + hh * math.exp(hh / 2) * sc(x_mid, tt - alpha * hh)

    def estimate(noise, step=None):
        if step is None:
            (est,) = good.step((np.zeros((n, 1)),), {}, 0, noise, CountingScore(score, n))
        else:
            est = step(np.zeros((n, 1)), t, h, noise.uniform(1), score)
        return est[:, 0]

    est = estimate(NoGaussian(np.random.default_rng(11), n))
    se = est.std(ddof=1) / math.sqrt(n)
    assert abs(est.mean() - exact) < 5 * se
    bad = estimate(NoGaussian(np.random.default_rng(11), n), fixed_weight_step)
    se_bad = bad.std(ddof=1) / math.sqrt(n)
    assert abs(bad.mean() - exact) > 20 * se_bad, (bad.mean(), exact, se_bad)
    pinned = estimate(PinnedInternal(NoGaussian(np.random.default_rng(11), n), 0.5))
    assert pinned.std() == 0.0 and est.std() > 0.2
    assert abs(pinned.mean() - exact) > 50 * se, (pinned.mean(), exact, se)


# -- ULMC steps: covariances --------------------------------------------------------------------

def _rm_noise_map(h, a, gamma):
    """Linear map from the 4 standard draws to (W1, W2, W3) of the randomized-midpoint ULMC step."""
    rec = []

    def zero_grad(y):
        rec.append(y.copy())
        return np.zeros_like(y)
    x1, v1 = ulmc_rm_step(np.zeros((4, 1)), np.zeros((4, 1)), zero_grad, h, gamma, np.full((4, 1), a / h), Impulses(4))
    return np.stack([rec[1][:, 0], x1[:, 0], v1[:, 0]])         # rows W1 (= x_mid), W2 (= x'), W3 (= v')


def _ei_noise_map(h, gamma):
    x1, v1 = ulmc_ei_step(np.zeros((2, 1)), np.zeros((2, 1)), np.zeros_like, h, gamma, Impulses(2))
    return np.stack([x1[:, 0], v1[:, 0]])


@pytest.mark.parametrize("h,a,gamma", [(0.5, 0.15, 2.0), (2.0, 1.9, 3.0), (0.3, 0.29, 0.7)])
def test_ulmc_noise_covariances_match_closed_forms(h, a, gamma):
    B = _rm_noise_map(h, a, gamma)
    C0 = ulmc_noise_covariance(h, a, gamma)                    # the expanded closed forms
    scale = np.sqrt(np.outer(np.diag(C0), np.diag(C0)))
    assert np.max(np.abs(B @ B.T - C0) / scale) < 1e-12
    Bei = _ei_noise_map(h, gamma)
    assert np.max(np.abs(Bei @ Bei.T - C0[1:, 1:]) / scale[1:, 1:]) < 1e-12


def test_ulmc_noise_covariances_match_fine_euler_maruyama():
    """(x(a), x(h), v(h)) of dx = v dt, dv = -gamma v dt + sqrt(2 gamma) dB from (0, 0), by fine EM."""
    h, a, gamma = 0.5, 0.15, 2.0
    n_paths, n_sub = 40_000, 1000
    dt = h / n_sub
    i_a = round(a / dt)
    rng = np.random.default_rng(12)
    x = np.zeros(n_paths)
    v_ = np.zeros(n_paths)
    for i in range(n_sub):
        if i == i_a:
            x_a = x.copy()
        x, v_ = x + v_ * dt, v_ - gamma * v_ * dt + math.sqrt(2 * gamma * dt) * rng.standard_normal(n_paths)
    W = np.stack([x_a, x, v_])
    C_mc = W @ W.T / n_paths                                     # means are zero
    # standard error of each second moment: sqrt(Var(W_i W_j) / n)
    se = np.sqrt(np.array([[np.var(W[i] * W[j]) for j in range(3)] for i in range(3)]) / n_paths)
    B = _rm_noise_map(h, a, gamma)
    assert np.all(np.abs(B @ B.T - C_mc) < 5 * se), (B @ B.T, C_mc, se)
    Bei = _ei_noise_map(h, gamma)
    assert np.all(np.abs(Bei @ Bei.T - C_mc[1:, 1:]) < 5 * se[1:, 1:])


# -- cost accounting and reproducibility ----------------------------------------------------------

EXPECTED = {  # name: (nfe, rounds, max width) for the SMALL configuration, computed by hand
    "li_jiao": (80, 80, 1),                    # 2T
    "li_jiao_parallel": (240, 12, 20),          # 2 T M; K M rounds; width N = 2T/K
    "gcc_predictor": (20, 20, 1),               # 2 per step
    "gupta_cai_chen": (96, 96, 1),              # P = round(6.25) = 6, M = round(12.5) = 12: 4 (2*6 + 12)
    "gupta_cai_chen_parallel": (47, 23, 3),     # 6 (1 + 2*3) + 5;  6 (1 + 2) + 5 rounds; width R
    "gcc_logconcave": (24, 24, 1),              # 2 * 10 + 4
    "ddram": (20, 20, 1),                       # 2 per step
}


@pytest.mark.parametrize("name", NAMES)
def test_nfe_and_rounds_are_the_documented_values(target, name):
    cost, params = SMALL[name]
    spec = get(name)
    nfe, rounds, width = EXPECTED[name]
    assert spec.nfe(cost, **params) == nfe
    res = run(spec.make(cost, **params), target, 6, np.random.default_rng(0))
    assert np.all(res.nfe == nfe) and np.all(res.rounds == rounds) and res.max_width == width
    law = gaussian_law(spec.make(cost, **params), target, n_draws=3, rng=np.random.default_rng(0))
    assert np.all(law.nfe == nfe) and np.all(law.rounds == rounds)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_bit_identical_outputs(target, name):
    cost, params = SMALL[name]
    k = get(name).make(cost, **params)
    a = run(k, target, 30, np.random.default_rng(99)).x
    b = run(get(name).make(cost, **params), target, 30, np.random.default_rng(99)).x
    c = run(k, target, 30, np.random.default_rng(100)).x
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# -- law mode vs sample mode ---------------------------------------------------------------------

def test_law_mode_mixture_moments_match_sample_mode(target):
    """li_jiao (random start level, random nodes, injected noise): the sample mean / variance of many
    i.i.d. rows equals the mixture moments of the conditional laws, within 5 standard errors."""
    k = get("li_jiao").make(40, K=4, c0=2.0, c1=4.0)
    n = 100_000
    x = run(k, target, n, np.random.default_rng(21)).x
    law = gaussian_law(k, target, n_draws=4000, rng=np.random.default_rng(22))
    M = law.n_draws
    mix_mean = law.mean.mean(0)
    second = law.var + law.mean ** 2
    mix_var = second.mean(0) - mix_mean ** 2
    se_law_mean = law.mean.std(0, ddof=1) / math.sqrt(M)
    se_law_second = second.std(0, ddof=1) / math.sqrt(M)
    s_mean, s_var = x.mean(0), x.var(0)
    se_s_mean = np.sqrt(s_var / n)
    se_s_var = np.sqrt(np.var((x - s_mean) ** 2, axis=0) / n)
    assert np.all(np.abs(s_mean - mix_mean) < 5 * np.hypot(se_s_mean, se_law_mean))
    # variance of the mixture: its law-mode SE is bounded by that of the second moment plus the mean's
    se_law_var = se_law_second + 2 * np.abs(mix_mean) * se_law_mean
    assert np.all(np.abs(s_var - mix_var) < 5 * np.hypot(se_s_var, se_law_var))


# -- metadata, presets, bad parameters -----------------------------------------------------------

def test_registry_claims_and_theory_presets_build():
    assert set(NAMES) <= set(REGISTRY)
    c = get("li_jiao").claim
    assert (c.metric, c.d_exp, c.eps_exp, c.L_exp) == ("tv", Fraction(1, 3), Fraction(2, 3), Fraction(1))
    c = get("gupta_cai_chen").claim
    assert (c.metric, c.d_exp, c.eps_exp, c.L_exp) == ("tv", Fraction(5, 12), Fraction(1), Fraction(5, 3))
    assert get("gcc_predictor").claim is None
    cost = {"li_jiao": 200, "li_jiao_parallel": 200, "gcc_predictor": 50, "gupta_cai_chen": 400,
            "gupta_cai_chen_parallel": 20, "gcc_logconcave": 50, "ddram": 50}
    for name in NAMES:
        spec = get(name)
        preset = spec.theory(1000, 0.1, 2.0) if spec.theory else {}
        k = spec.make(cost[name], **preset)
        assert isinstance(k, Kernel) and k.n_steps > 0
    spec = get("li_jiao")
    preset = spec.theory(1000, 0.1, 2.0)
    k = spec.make(200, **preset)
    # K = ceil(2 ln 200) = 11 blocks; T rounded up to a multiple of K: 209, N = 2 * 209 / 11 = 38
    assert (k.K, k.T_iter, k.N) == (11, 209, 38)
    assert spec.nfe(200, **preset) == 2 * 209


@pytest.mark.parametrize("name,cost,params,word", [
    ("li_jiao", 40, dict(K=3), "K"),
    ("li_jiao", 40, dict(K=0), "K"),
    ("li_jiao", 1, dict(K=1), "T_iter"),
    ("li_jiao", 40, dict(K=4, c1=20.0), "c1"),
    ("li_jiao", 40, dict(K=4, c0=-1.0), "c0"),
    ("li_jiao", 40, dict(K=4, final="random"), "final"),
    ("li_jiao", 40, dict(K=None), "K"),
    ("li_jiao_parallel", 40, dict(K=4, sweeps=0), "sweeps"),
    ("li_jiao_parallel", 40, dict(K=4, picard_init="zero"), "picard_init"),
    ("gcc_predictor", 0, {}, "steps"),
    ("gupta_cai_chen", 100, dict(corrector="langevin"), "corrector"),
    ("gupta_cai_chen", 100, dict(gamma=0.0), "gamma"),
    ("gupta_cai_chen", 100, dict(pred_share=1.0), "pred_share"),
    ("gupta_cai_chen", 5, dict(N0=4), "steps"),
    ("gupta_cai_chen", 100, dict(N0=0), "N0"),
    ("gupta_cai_chen", 100, dict(T_corr=-1.0), "T_corr"),
    ("gupta_cai_chen", 100, dict(delta=9.0), "delta"),
    ("gupta_cai_chen_parallel", 5, dict(R=0), "R"),
    ("gupta_cai_chen_parallel", 5, dict(corr_steps=0), "corr_steps"),
    ("gcc_logconcave", 10, dict(T_start=0.0), "T_start"),
    ("gcc_logconcave", 10, dict(horizon=0.0), "horizon"),
    ("ddram", 10, dict(linear="drift"), "linear"),
    ("ddram", 10, dict(node="center"), "node"),
])
def test_bad_parameters_raise_value_error_naming_them(name, cost, params, word):
    with pytest.raises(ValueError, match=word):
        get(name).make(cost, **params)
