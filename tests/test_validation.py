"""Bad input raises ValueError naming the parameter (the input checks of experiments/_validate.py).

Every case asserts that the message names the offending parameter as a whole word (regex
``\\bname\\b``; for the one-letter ``t`` and ``x``, at the start of the message).
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from experiments import laws
from experiments import processes as P
from experiments.noise import LawNoise, PinnedInternal, SampleNoise
from experiments.samplers import get
from experiments.samplers._grid import build_grid, check_grid
from experiments.samplers.ddpm import DDPM
from experiments.samplers.driver import run
from experiments.targets import GaussianMixture, GroupedGaussian, ProductMixture

NAN, INF = float("nan"), float("inf")


def names(param):
    if len(param) == 1:
        return rf"^{param}\b"
    return rf"\b{re.escape(param)}\b"


def case(param, fn, *args, **kwargs):
    return pytest.param(param, fn, args, kwargs, id=f"{param}-{getattr(fn, '__name__', 'call')}-{len(args)}")


# --------------------------------------------------------------------------------------------------
# processes
# --------------------------------------------------------------------------------------------------

PROCESS_CASES = [
    case("t", P.alpha, -1.0),
    case("t", P.sigma, NAN),
    case("t", P.sigma2, [0.1, -0.2]),
    case("t", P.alpha_bar_from_t, INF),
    case("t", P.log_snr_from_t, 0.0),                   # log-SNR is +inf at t = 0
    case("t", P.edm_sigma_from_t, -1e-9),
    case("alpha_bar", P.t_from_alpha_bar, 0.0),
    case("alpha_bar", P.t_from_alpha_bar, 1.5),
    case("alpha_bar", P.t_from_alpha_bar, NAN),
    case("tau", P.t_from_tau, 1.0),
    case("tau", P.t_from_tau, -0.1),
    case("lam", P.t_from_log_snr, NAN),
    case("lam_half", P.t_from_half_log_snr, INF),
    case("sigma_hat", P.t_from_edm_sigma, -1.0),
    case("t_to", P.transition, 1.0, 0.5),
    case("t_from", P.transition, -1.0, 0.5),
    case("T", P.uniform_grid, -1.0, 1e-3, 10),
    case("delta", P.uniform_grid, 1.0, 0.0, 10),
    case("delta", P.geometric_grid, 1.0, 1.0, 10),      # delta >= T
    case("delta", P.log_snr_grid, 1.0, 2.0, 10),
    case("n", P.uniform_grid, 8.0, 1e-3, 0),
    case("n", P.edm_grid, 8.0, 1e-3, 2.5),
    case("n", P.exponential_sigma_grid, 8.0, 1e-3, True),
    case("rho", P.edm_grid, 8.0, 1e-3, 10, 0.0),
    case("T", P.geometric_grid, NAN, 1e-3, 10),
    case("grid", P.make_grid, "cosine", 8.0, 1e-3, 10),
    case("T_iter", P.li_jiao_alpha_hat, 1, 10, 1.0, 1.0),
    case("n_tail", P.li_jiao_alpha_hat, 50, -1, 1.0, 1.0),
    case("c0", P.li_jiao_alpha_hat, 50, 10, 0.0, 1.0),
    case("c1", P.li_jiao_alpha_hat, 50, 10, 1.0, -1.0),
    case("c1", P.li_jiao_alpha_hat, 10, 10, 1.0, 10.0),  # c = c1 ln T / T >= 1
    case("u", P.li_jiao_random_nodes, [0.1, 0.2, 0.3], [[0.5, 0.5, 0.5]]),
    case("u", P.li_jiao_random_nodes, [0.1, 0.2, 0.3], [[0.5, 1.5]]),
    case("alpha_hat", P.li_jiao_random_nodes, [[0.1, 0.2]], [0.5]),
    case("ts", check_grid, [1.0, 2.0, 0.5]),             # not decreasing
    case("ts", check_grid, [1.0, 1.0, 0.5]),             # not strictly decreasing
    case("ts", check_grid, [1.0, 0.0]),                  # reaches t = 0
    case("ts", check_grid, [1.0]),
    case("steps", build_grid, 0),
    case("grid", build_grid, 10, grid="nope"),
]


@pytest.mark.parametrize("param,fn,args,kwargs", PROCESS_CASES)
def test_processes_reject_bad_input(param, fn, args, kwargs):
    with pytest.raises(ValueError, match=names(param)):
        fn(*args, **kwargs)


# --------------------------------------------------------------------------------------------------
# targets
# --------------------------------------------------------------------------------------------------

W2, M2, V2 = [[0.4, 0.6]], [[-1.0, 1.0]], [[0.5, 1.0]]
COV_OK = np.array([np.eye(2), 2 * np.eye(2)])
M22 = [[0.0, 0.0], [1.0, 1.0]]

TARGET_CASES = [
    # grouped Gaussian
    case("variances", GroupedGaussian, [1.0, 0.0]),
    case("variances", GroupedGaussian, [-1.0]),
    case("variances", GroupedGaussian, [1.0, NAN]),
    case("variances", GroupedGaussian, [[1.0, 2.0]]),
    case("means", GroupedGaussian, [1.0, 2.0], [0.0, 1.0, 2.0]),
    case("means", GroupedGaussian, [1.0, 2.0], [0.0, INF]),
    case("multiplicities", GroupedGaussian, [1.0, 2.0], 0.0, [1, 0]),
    case("multiplicities", GroupedGaussian, [1.0, 2.0], 0.0, [1, 2.5]),
    case("multiplicities", GroupedGaussian, [1.0, 2.0], 0.0, [1, 2, 3]),
    case("multiplicities", GroupedGaussian, [1.0], 0.0, -3),
    case("basis", GroupedGaussian, [1.0, 2.0], 0.0, 1, basis=np.ones((2, 2))),
    case("basis", GroupedGaussian, [1.0, 2.0], 0.0, 1, basis=np.eye(3)),
    case("cov", GroupedGaussian.from_dense, [0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]]),   # not symmetric
    case("cov", GroupedGaussian.from_dense, [0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]),   # not positive definite
    case("cov", GroupedGaussian.from_dense, [0.0, 0.0], np.eye(3)),
    case("mean", GroupedGaussian.from_dense, [0.0, NAN], np.eye(2)),
    # product mixture
    case("weights", ProductMixture, [[0.5, 0.6]], M2, V2),                  # do not sum to one
    case("weights", ProductMixture, [[1.2, -0.2]], M2, V2),
    case("weights", ProductMixture, [[NAN, 1.0]], M2, V2),
    case("weights", ProductMixture, [], [], []),
    case("weights", ProductMixture, [[[1.0]]], [[[0.0]]], [[[1.0]]]),
    case("variances", ProductMixture, W2, M2, [[0.5, 0.0]]),
    case("variances", ProductMixture, W2, M2, [[0.5, -1.0]]),
    case("variances", ProductMixture, W2, M2, [[0.5, INF]]),
    case("variances", ProductMixture, W2, M2, [[0.5, 1.0, 2.0]]),
    case("means", ProductMixture, W2, [[0.0]], V2),
    case("means", ProductMixture, W2, [[0.0, NAN]], V2),
    case("means", ProductMixture, W2, [[0.0, 1.0], [0.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]),
    case("multiplicities", ProductMixture, W2, M2, V2, 0),
    case("multiplicities", ProductMixture, W2, M2, V2, 1.5),
    case("multiplicities", ProductMixture, W2, M2, V2, [1, 2]),
    # general Gaussian mixture
    case("weights", GaussianMixture, [0.5, 0.4], [[0.0], [1.0]], [1.0, 1.0]),
    case("weights", GaussianMixture, [0.5, 0.5, 0.0], [[0.0], [1.0], [2.0]], [1.0, 1.0, 1.0]),
    case("means", GaussianMixture, [0.5, 0.5], [[0.0], [1.0], [2.0]], [1.0, 1.0]),
    case("means", GaussianMixture, [0.5, 0.5], [0.0, 1.0], [1.0, 1.0]),
    case("means", GaussianMixture, [0.5, 0.5], [[0.0], [NAN]], [1.0, 1.0]),
    case("means", GaussianMixture, [0.5, 0.5], np.zeros((2, 0)), [1.0, 1.0]),
    case("covariances", GaussianMixture, [0.5, 0.5], [[0.0], [1.0]], [1.0, 0.0]),
    case("covariances", GaussianMixture, [0.5, 0.5], [[0.0], [1.0]], [1.0, 1.0, 1.0]),
    case("covariances", GaussianMixture, [0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], np.ones((2, 3, 3))),
    case("covariances", GaussianMixture, [0.5, 0.5], M22, np.array([np.eye(2), [[1.0, 0.2], [0.0, 1.0]]])),
    case("covariances", GaussianMixture, [0.5, 0.5], M22, np.array([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])),
    case("covariances", GaussianMixture, [0.5, 0.5], M22, np.array([np.eye(2), [[1.0, NAN], [NAN, 1.0]]])),
    case("covariances", GaussianMixture, [0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], np.ones((2, 2))),
]


@pytest.mark.parametrize("param,fn,args,kwargs", TARGET_CASES)
def test_target_constructors_reject_bad_input(param, fn, args, kwargs):
    with pytest.raises(ValueError, match=names(param)):
        fn(*args, **kwargs)


TARGETS = {
    "grouped_gaussian": lambda: GroupedGaussian([0.5, 2.0], [1.0, -1.0], [2, 3]),
    "product_mixture": lambda: ProductMixture([[0.4, 0.6], [1.0]], [[-1.0, 1.0], [0.0]], [[0.5, 1.0], [2.0]], [2, 3]),
    "gaussian_mixture": lambda: GaussianMixture([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], COV_OK),
}


@pytest.mark.parametrize("kind", sorted(TARGETS))
def test_target_methods_reject_bad_input(kind):
    target = TARGETS[kind]()
    x = np.zeros((4, target.n_columns))
    rng = np.random.default_rng(0)
    bad_calls = [
        ("t", lambda: target.score(x, -0.1)),
        ("t", lambda: target.score(x, NAN)),
        ("t", lambda: target.log_density(x, np.full(3, 0.5))),          # 3 times for 4 rows
        ("t", lambda: target.score(x, np.zeros((4, 2)))),
        ("t", lambda: target.sample(4, -1.0, rng)),
        ("t", lambda: target.lipschitz(-1.0)),
        ("x", lambda: target.score(np.zeros((4, target.n_columns + 1)), 0.5)),
        ("x", lambda: target.score(np.zeros(target.n_columns), 0.5)),
        ("x", lambda: target.log_density(np.full((4, target.n_columns), INF), 0.5)),
        ("n", lambda: target.sample(0, 0.5, rng)),
        ("n", lambda: target.sample(2.5, 0.5, rng)),
        ("n", lambda: target.sample_full(-1, 0.5, rng)),
        ("x", lambda: target.expand(np.zeros((4, target.n_columns + 2)))),
        ("t_min", lambda: target.lipschitz_sup(-1.0)),
    ]
    if hasattr(target, "score_derivative"):
        bad_calls.append(("t", lambda: target.score_derivative(x, -1.0)))
    if hasattr(target, "score_jacobian"):
        bad_calls.append(("x", lambda: target.score_jacobian(np.zeros((4, 5)), 0.5)))
    for param, call in bad_calls:
        with pytest.raises(ValueError, match=names(param)):
            call()
    # full-dimension methods check against dim, not n_columns
    y = np.zeros((4, target.dim + 1))
    with pytest.raises(ValueError, match=names("x")):
        target.score_full(y, 0.5)
    with pytest.raises(ValueError, match=names("x")):
        target.log_density_full(y, 0.5)


def test_good_input_is_accepted():
    """Sanity for the cases above: the same calls with valid values run (no over-rejection)."""
    for make in TARGETS.values():
        target = make()
        x = np.zeros((4, target.n_columns))
        target.score(x, 0.5)
        target.score(x, np.full(4, 0.5))
        target.score(x, np.full((4, 1), 0.5))
        target.score(x, np.full(1, 0.5))
        target.sample(4, np.linspace(0, 1, 4), np.random.default_rng(0))
    ProductMixture([0.25, 0.75], [0.0, 1.0], [1.0, 2.0])                     # 1-D arrays: one group
    ProductMixture([[1.0], [0.5, 0.5]], [[0.0], [1.0, 2.0]], [[1.0], [1.0, 3.0]], [2.0, 3])   # ragged groups
    GroupedGaussian([1.0, 2.0], 0.0, 2.0)


# --------------------------------------------------------------------------------------------------
# noise, driver, laws
# --------------------------------------------------------------------------------------------------

def test_noise_rejects_bad_input():
    with pytest.raises(ValueError, match=names("rng")):
        SampleNoise(None, 4)
    with pytest.raises(ValueError, match=names("rng")):
        SampleNoise(np.random.RandomState(0), 4)
    with pytest.raises(ValueError, match=names("batch")):
        SampleNoise(np.random.default_rng(0), 0)
    with pytest.raises(ValueError, match=names("batch")):
        SampleNoise(np.random.default_rng(0), 1.5)
    base = SampleNoise(np.random.default_rng(0), 4)
    for bad in (1.5, -0.1, NAN):
        with pytest.raises(ValueError, match=names("value")):
            PinnedInternal(base, bad)
    # law-mode noise refuses more Gaussian draws than the kernel declared
    law = LawNoise(np.random.default_rng(0), n_draws=1, n_probes=3, first_draw_row=2, max_draws=1)
    law.normal(2)
    with pytest.raises(RuntimeError, match="draws_per_step"):
        law.normal(2)


def _kernel():
    return DDPM(build_grid(5))


def test_driver_run_rejects_bad_input():
    target = GroupedGaussian([0.5, 2.0])
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=names("start")):
        run(_kernel(), target, 8, rng, start="data")
    with pytest.raises(ValueError, match=names("n")):
        run(_kernel(), target, 0, rng)
    with pytest.raises(ValueError, match=names("kernel")):
        run("ddpm", target, 8, rng)
    with pytest.raises(ValueError, match=names("rng")):
        run(_kernel(), target, 8, None)
    with pytest.raises(ValueError, match=names("variance")):
        DDPM(build_grid(5), variance="medium")
    with pytest.raises(ValueError, match=names("sampler")):
        get("no_such_sampler")
    # and the good call works
    assert run(_kernel(), target, 8, rng).x.shape == (8, 2)


def test_gaussian_law_rejects_bad_input():
    mixture = ProductMixture([[0.4, 0.6]], [[-1.0, 1.0]], [[0.5, 1.0]])
    with pytest.raises(ValueError, match=names("target")):
        laws.gaussian_law(_kernel(), mixture)
    with pytest.raises(ValueError, match=names("target")):
        laws.gaussian_law(_kernel(), GaussianMixture([1.0], [[0.0, 1.0]], [1.0]))
    gauss = GroupedGaussian([0.5, 2.0])
    with pytest.raises(ValueError, match=names("start")):
        laws.gaussian_law(_kernel(), gauss, start="data")
    with pytest.raises(ValueError, match=names("n_draws")):
        laws.gaussian_law(_kernel(), gauss, n_draws=0)


# --------------------------------------------------------------------------------------------------
# sampler constructor bounds (experiments/samplers/_limits.py): just inside is accepted, just outside
# raises ValueError naming the parameter
# --------------------------------------------------------------------------------------------------

BOUND_CASES = [
    # (sampler, cost, accepted params, rejected params, parameter named)
    ("ddpm", 8, dict(T=50.0), dict(T=50.0001), "T"),
    ("edm_heun", 8, dict(rho=1.0), dict(rho=0.99), "rho"),
    ("edm_heun", 8, dict(rho=1000.0), dict(rho=1000.5), "rho"),
    ("ve_ei", 8, dict(schedule="polynomial", rho=1000.0), dict(schedule="polynomial", rho=1e4), "rho"),
    ("lmc", 8, dict(h=10.0), dict(h=10.01), "h"),
    ("lmc", 1000, dict(horizon=1e4), dict(horizon=1.0001e4), "horizon"),
    ("lmc", 8, dict(horizon=80.0), dict(horizon=80.1), "horizon"),       # h = horizon / steps <= 10
    ("lmc", 8, dict(init_level=50.0), dict(init_level=50.5), "init_level"),
    ("ulmc", 8, dict(gamma=1e-3), dict(gamma=9e-4), "gamma"),
    ("ulmc", 8, dict(gamma=1e3), dict(gamma=1.001e3), "gamma"),
    ("shen_lee", 8, dict(u=1e3), dict(u=1.01e3), "u"),
    ("plmc", 8, dict(K=1000), dict(K=1001), "K"),
    ("pulmc", 8, dict(gamma=1e3), dict(gamma=1e4), "gamma"),
    ("pmm_ddpm", 10, dict(beta_min=1e-10), dict(beta_min=1e-11), "beta_min"),
    ("pmm_ddpm", 1000, dict(N=1000), dict(N=10**5 + 1), "N"),
    ("gupta_cai_chen", 64, dict(gamma=2.0, T=50.0), dict(T=51.0), "T"),
    ("gupta_cai_chen", 64, dict(T_corr=40.0), dict(T_corr=1.0001e4), "T_corr"),
    ("gupta_cai_chen_parallel", 4, dict(sweeps=1000, R=1), dict(sweeps=1001), "sweeps"),
    ("gupta_cai_chen_parallel", 4, dict(R=1000, sweeps=1), dict(R=1001), "R"),
    ("gupta_cai_chen_parallel", 4, dict(corr_steps=20, T_corr=200.0), dict(corr_steps=20, T_corr=201.0), "T_corr"),
    ("gcc_logconcave", 8, dict(horizon=80.0), dict(horizon=81.0), "horizon"),
    ("gcc_logconcave", 8, dict(T_start=50.0), dict(T_start=50.1), "T_start"),
    ("li_jiao", 100, dict(K=10, lipschitz=1e4), dict(K=10, lipschitz=1.0001e4), "lipschitz"),
    ("li_jiao_parallel", 100, dict(sweeps=1000, K=10), dict(sweeps=1001, K=10), "sweeps"),
]


@pytest.mark.parametrize("sampler,cost,good,bad,param", BOUND_CASES)
def test_sampler_bounds_accept_inside_reject_outside(sampler, cost, good, bad, param):
    get(sampler).make(cost, **good)
    with pytest.raises(ValueError, match=names(param)):
        get(sampler).make(cost, **bad)


@pytest.mark.parametrize("sampler,cost", [("ddim", 10**7 + 1), ("lmc", 10**7 + 1), ("li_jiao", 10**7 + 10),
                                          ("gcc_logconcave", 10**7 + 1)])
def test_sampler_cost_bound(sampler, cost):
    knob = get(sampler).cost_knob
    with pytest.raises(ValueError, match=names(knob)):
        get(sampler).make(cost)


# --------------------------------------------------------------------------------------------------
# studies: target families and profiles
# --------------------------------------------------------------------------------------------------

def _family(**kw):
    from experiments.studies import GaussianFamily

    args = dict(name="two", variances=(0.5, 2.0), means=(0.0, 0.0), fractions=(0.5, 0.5))
    args.update(kw)
    return GaussianFamily(**args)


def _aniso_at(d):
    from experiments.studies import get_target

    return get_target("gauss_aniso").at(d)


STUDY_CASES = [
    case("d", _aniso_at, 2**63),                        # beyond int64: an OverflowError before
    case("d", _aniso_at, 10**30),
    case("d", _aniso_at, 1e20),                         # an integral float beyond int64
    case("d", _aniso_at, 2.5),
    case("d", _aniso_at, NAN),
    case("d", _aniso_at, "10"),
    case("d", _aniso_at, True),
    case("d", _aniso_at, 1),                            # fewer coordinates than groups
    case("variances", _family, variances=(0.5, -1.0)),
    case("variances", _family, variances=(0.5, NAN)),
    case("means", _family, means=(0.0, INF)),
    case("means", _family, means=(0.0,)),
    case("fractions", _family, fractions=(0.5, 0.6)),   # do not sum to one
    case("fractions", _family, fractions=(1.5, -0.5)),
    case("fractions", _family, fractions=(1.0,)),
    case("name", _family, name=""),
]


@pytest.mark.parametrize("param,fn,args,kwargs", STUDY_CASES)
def test_study_families_reject_bad_input(param, fn, args, kwargs):
    with pytest.raises(ValueError, match=names(param)):
        fn(*args, **kwargs)


def test_study_family_accepts_the_int64_limit():
    """The largest dimension an int64 holds is accepted and split exactly (it overflowed before)."""
    target = _aniso_at(2**63 - 1)
    assert target.dim == 2**63 - 1
    assert list(target.multiplicities) == [2**62 - 1, 2**62]
    assert list(_aniso_at(1001).multiplicities) == [501, 500]     # rounding remainder to the largest group


def _profile(**kw):
    from experiments.studies import Draws, Profile, SamplerRun

    args = dict(name="p", dims=(10, 100), eps=(0.1,), targets=("gauss_aniso",), runs=(SamplerRun("ddpm", (8, 64)),),
                draws=Draws())
    args.update(kw)
    return Profile(**args)


def _run(*args, **kw):
    from experiments.studies import SamplerRun

    return SamplerRun(*args, **kw)


def _draws(**kw):
    from experiments.studies import Draws

    return Draws(**kw)


PROFILE_CASES = [
    case("dims", _profile, dims=(10, 2**63)),
    case("dims", _profile, dims=(10, 2.5)),
    case("dims", _profile, dims=(0,)),
    case("dims", _profile, dims=()),
    case("theory_dims", _profile, theory_dims=(10**30,)),
    case("eps", _profile, eps=(0.1, -0.1)),
    case("eps", _profile, eps=(NAN,)),
    case("theory_eps", _profile, theory_eps=(0.0,)),
    case("per_octave", _profile, per_octave=0),
    case("annealed_samples", _profile, annealed_samples=1.5),
    case("ladder", _run, "ddpm", (8, 2.5)),
    case("ladder", _run, "ddpm", (64, 8)),
    case("ladder", _run, "ddpm", (8,)),
    case("multiple", _run, "ddpm", (8, 64), multiple=0),
    case("first", _draws, first=0),
    case("cap", _draws, first=64, cap=32),
    case("precision", _draws, precision=-0.1),
]


@pytest.mark.parametrize("param,fn,args,kwargs", PROFILE_CASES)
def test_study_profiles_reject_bad_input(param, fn, args, kwargs):
    with pytest.raises(ValueError, match=names(param)):
        fn(*args, **kwargs)
