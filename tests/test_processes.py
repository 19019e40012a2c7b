"""OU process, time conversions and grids (experiments/processes.py).

Round-trip tolerances come from the conditioning of each inverse map: a relative rounding of
y (the converted variable) moves t by |y dt/dy| ulps, and the inverse itself adds a few ulps of t.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments import processes as P
from experiments.targets import GroupedGaussian

EPS = np.finfo(float).eps
SETTINGS = settings(max_examples=200, deadline=None)
T_RANGE = st.floats(1e-6, 20.0)


def _close(t_back, t, kappa):
    """|t_back - t| <= 16 ulps x (t + kappa), kappa = |y dt/dy| the condition number of the inverse."""
    assert abs(t_back - t) <= 16 * EPS * (t + kappa), (t_back, t, kappa)


@SETTINGS
@given(T_RANGE)
def test_alpha_bar_round_trip(t):
    ab = P.alpha_bar_from_t(t)
    assert ab == pytest.approx(np.exp(-2 * t), rel=4 * EPS, abs=0)
    _close(P.t_from_alpha_bar(ab), t, 0.5)                               # t = -log(ab)/2: |ab dt/dab| = 1/2


@SETTINGS
@given(st.floats(1e-6, 15.0))
def test_tau_round_trip(t):
    # tau = 1 - e^{-2t} rounds to 1 above t ~ 18.7, where t_from_tau rightly refuses it; below,
    # |tau dt/dtau| = tau / (2 (1 - tau)) = (e^{2t} - 1)/2 is the (large) condition number
    tau = P.tau_from_t(t)
    assert tau == pytest.approx(-np.expm1(-2 * t), rel=4 * EPS, abs=0)
    _close(P.t_from_tau(tau), t, 0.5 * np.expm1(2 * t))
    assert P.sigma2(t) == tau and P.sigma(t) == pytest.approx(np.sqrt(tau), rel=4 * EPS, abs=0)


def test_tau_saturates_at_large_t():
    """Float64 cannot hold 1 - tau below 2^-53: tau(20) == 1 and the inverse reports it."""
    assert P.tau_from_t(20.0) == 1.0
    with pytest.raises(ValueError, match="tau"):
        P.t_from_tau(P.tau_from_t(20.0))


@SETTINGS
@given(T_RANGE)
def test_log_snr_round_trip(t):
    lam = P.log_snr_from_t(t)
    assert lam == pytest.approx(np.log(np.exp(-2 * t) / -np.expm1(-2 * t)), rel=1e-12, abs=1e-12)
    # |dt/dlam| = (1 - e^{-2t})/2 and the rounding of lam is relative: kappa = |lam| (1 - e^{-2t}) / 2
    kappa = abs(lam) * -np.expm1(-2 * t) / 2 + 1.0 * -np.expm1(-2 * t)
    _close(P.t_from_log_snr(lam), t, kappa)
    _close(P.t_from_half_log_snr(P.half_log_snr_from_t(t)), t, kappa)
    assert P.half_log_snr_from_t(t) == pytest.approx(np.log(P.alpha(t) / P.sigma(t)), rel=1e-12, abs=1e-12)


@SETTINGS
@given(T_RANGE)
def test_edm_sigma_round_trip(t):
    s = P.edm_sigma_from_t(t)
    assert s == pytest.approx(P.sigma(t) / P.alpha(t), rel=8 * EPS, abs=0)
    # t = log(1 + s^2)/2: |s dt/ds| = s^2 / (1 + s^2) <= 1
    _close(P.t_from_edm_sigma(s), t, s * s / (1 + s * s))


def test_conversions_accept_arrays():
    t = np.array([1e-6, 0.1, 1.0, 5.0])
    np.testing.assert_allclose(P.t_from_log_snr(P.log_snr_from_t(t)), t, rtol=1e-12)
    np.testing.assert_allclose(P.t_from_edm_sigma(P.edm_sigma_from_t(t)), t, rtol=1e-12)
    np.testing.assert_allclose(P.t_from_alpha_bar(P.alpha_bar_from_t(t)), t, rtol=1e-9)


# --- transitions --------------------------------------------------------------------------------

@SETTINGS
@given(st.floats(0.0, 10.0), st.floats(0.0, 5.0), st.floats(0.0, 5.0))
def test_transitions_compose(t0, h1, h2):
    t1, t2 = t0 + h1, t0 + h1 + h2
    a1, s1 = P.transition(t0, t1)
    a2, s2 = P.transition(t1, t2)
    a, s = P.transition(t0, t2)
    # X2 = a2 (a1 X0 + s1 Z1) + s2 Z2 = a2 a1 X0 + sqrt(a2^2 s1^2 + s2^2) Z
    assert a2 * a1 == pytest.approx(a, rel=8 * EPS, abs=1e-300)
    assert a2**2 * s1**2 + s2**2 == pytest.approx(s**2, rel=16 * EPS, abs=16 * EPS)


@SETTINGS
@given(st.floats(0.0, 3.0), st.floats(0.0, 3.0), st.floats(0.01, 5.0), st.floats(-3.0, 3.0))
def test_transition_maps_marginal_to_marginal(t0, h, var, mean):
    """From the exact marginal at t0, one transition gives the exact marginal at t0 + h."""
    g = GroupedGaussian([var], [mean])
    m0, v0 = g.marginal_params(t0)
    a, s = P.transition(t0, t0 + h)
    m1, v1 = g.marginal_params(t0 + h)
    assert a * m0[0] == pytest.approx(m1[0], rel=8 * EPS, abs=8 * EPS)
    assert a**2 * v0[0] + s**2 == pytest.approx(v1[0], rel=16 * EPS, abs=0)
    a0, s0 = P.transition(0.0, t0)
    assert a0 == pytest.approx(P.alpha(t0), rel=4 * EPS, abs=0)
    assert s0 == pytest.approx(P.sigma(t0), rel=4 * EPS, abs=1e-300)


# --- grids ----------------------------------------------------------------------------------------

GRID_CASES = [(8.0, 1e-3, 1), (8.0, 1e-3, 10), (8.0, 1e-3, 1000), (1.0, 0.5, 7), (20.0, 1e-5, 300), (0.02, 0.01, 50)]


@pytest.mark.parametrize("name", sorted(P.GRIDS))
@pytest.mark.parametrize("T,delta,n", GRID_CASES)
def test_every_grid_is_decreasing_from_T_to_delta(name, T, delta, n):
    ts = P.make_grid(name, T, delta, n)
    assert ts.dtype == np.float64 and ts.shape == (n + 1,)
    assert ts[0] == T and ts[-1] == delta
    assert np.all(np.diff(ts) < 0)


def test_uniform_and_geometric_grids_have_their_shape():
    ts = P.uniform_grid(8.0, 1e-3, 40)
    np.testing.assert_allclose(np.diff(ts), -(8.0 - 1e-3) / 40, rtol=1e-10)
    ts = P.geometric_grid(8.0, 1e-3, 40)
    np.testing.assert_allclose(ts[1:] / ts[:-1], (1e-3 / 8.0) ** (1 / 40), rtol=1e-12)


def test_log_snr_grid_is_equally_spaced_in_log_snr():
    ts = P.log_snr_grid(8.0, 1e-3, 50)
    d = np.diff(P.log_snr_from_t(ts))
    np.testing.assert_allclose(d, d.mean(), rtol=1e-9)
    # negative control: the uniform grid is far from equally spaced in log-SNR
    du = np.diff(P.log_snr_from_t(P.uniform_grid(8.0, 1e-3, 50)))
    assert du.max() / du.min() > 10


def test_edm_grid_tends_to_the_exponential_sigma_grid():
    """(a^{1/rho} + i (b^{1/rho} - a^{1/rho}))^rho -> a^{1-i} b^i with an O(1/rho) error."""
    T, delta, n = 8.0, 1e-3, 20
    ref = P.exponential_sigma_grid(T, delta, n)
    errs = [np.max(np.abs(P.edm_grid(T, delta, n, rho=r) - ref)) for r in (1e2, 1e3, 1e4)]
    assert errs[0] > errs[1] > errs[2]
    for e_small, e_big in zip(errs[1:], errs[:-1], strict=True):
        assert 7 < e_big / e_small < 13          # first order in 1/rho
    # negative control: EDM's default rho = 7 is far from the limit
    assert np.max(np.abs(P.edm_grid(T, delta, n) - ref)) > 100 * errs[-1]
    # the exponential grid is geometric in sigma_hat
    s = P.edm_sigma_from_t(ref)
    np.testing.assert_allclose(s[1:] / s[:-1], (s[-1] / s[0]) ** (1 / n), rtol=1e-10)


def test_make_grid_passes_keywords():
    np.testing.assert_array_equal(P.make_grid("edm", 8.0, 1e-3, 10, rho=3.0), P.edm_grid(8.0, 1e-3, 10, rho=3.0))


# --- Li & Jiao schedule ---------------------------------------------------------------------------

@pytest.mark.parametrize("T_iter,n_tail,c0,c1", [(50, 10, 1.0, 1.0), (400, 100, 2.0, 1.5), (5000, 0, 1.0, 3.0)])
def test_li_jiao_alpha_hat_is_increasing_and_uniform_in_log_snr(T_iter, n_tail, c0, c1):
    a = P.li_jiao_alpha_hat(T_iter, n_tail, c0, c1)
    assert a.shape == (T_iter + 2 + n_tail,)
    assert a[0] == pytest.approx(T_iter ** (-c0), rel=1e-15, abs=0)
    assert np.all(np.diff(a) > 0) and a[0] > 0 and a[-1] < 1
    c = c1 * np.log(T_iter) / T_iter
    incr = np.diff(np.log(a) - np.log1p(-a))            # log-SNR increments, log(a/(1-a))
    # logit(a + c a (1-a)) - logit(a) = log(1 + c (1-a)) - log(1 - c a) = c + r,
    # |r| <= c^2/2 + c^2 / (2 (1 - c))   (Taylor remainders of the two logs)
    assert np.all(np.abs(incr - c) <= c**2 / 2 + c**2 / (2 * (1 - c)))
    # negative control: the same schedule is far from uniform in alpha-bar (= uniform in tau)
    da = np.diff(a)
    assert da.max() / da.min() > 10


def test_li_jiao_random_nodes_lie_in_their_intervals(rng):
    a = P.li_jiao_alpha_hat(100, 20, 1.0, 1.0)
    u = rng.random((7, a.size - 1))
    nodes = P.li_jiao_random_nodes(a, u)
    assert nodes.shape == u.shape
    assert np.all(nodes >= a[:-1]) and np.all(nodes <= a[1:])
    np.testing.assert_array_equal(P.li_jiao_random_nodes(a, np.zeros(a.size - 1)), a[:-1])
    np.testing.assert_allclose(P.li_jiao_random_nodes(a, np.ones(a.size - 1)), a[1:], rtol=1e-15)


def test_a_study_context_for_a_worker_pickles_and_keeps_the_cache(tmp_path):
    """A study context carries a progress closure (the CLI's line printer), which cannot be pickled; the
    copy sent to worker processes drops it, and making it never reruns the cache clearing of --no-resume."""
    import pickle

    from experiments.extra_studies import StudyContext

    def say(line):                                  # a closure, like the CLI's
        print(line)

    ctx = StudyContext(profile="quick", seed=0, out=tmp_path, figures=tmp_path / "f", progress=say, resume=False)
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    (ctx.cache_dir / "cell.json").write_text("{}")
    with pytest.raises((AttributeError, pickle.PicklingError)):
        pickle.dumps(ctx)                           # control: the context itself does not travel
    twin = pickle.loads(pickle.dumps(ctx.for_worker()))
    assert twin.progress is None and twin.seed == 0 and ctx.progress is say
    assert (ctx.cache_dir / "cell.json").exists()   # no second __post_init__


def _unsorted_cell(item):
    return {"z": item, "a": [item, 2.0]}


def test_cached_and_fresh_cell_results_have_the_same_form(tmp_path):
    """A rerun from the cache must write byte-identical tables: a fresh result takes the cache's form (sorted
    keys, JSON types), which a freshly computed dict (insertion order) would not have."""
    from experiments.extra_studies import StudyContext, run_cached

    ctx = StudyContext(profile="quick", seed=0, out=tmp_path, figures=tmp_path / "f")
    fresh = run_cached(ctx, [1, 2], _unsorted_cell, lambda it: f"cell-{it}")
    cached = run_cached(ctx, [1, 2], _unsorted_cell, lambda it: f"cell-{it}")
    assert ctx.cache.hits == 2
    assert [list(r) for r in fresh] == [list(r) for r in cached] == [["a", "z"], ["a", "z"]]
    assert fresh == cached
