"""Gupta, Cai & Chen samplers: properties that mutation testing (scripts/mutation_report.py) found unpinned.

The Picard predictor is checked against the fixed point of its collocation system solved directly (a linear
solve for a linear score); budgets, limits and defaults against their documented closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.noise import SampleNoise
from experiments.samplers import REGISTRY, CountingScore
from experiments.samplers import _limits as lim
from experiments.samplers.driver import run
from experiments.samplers.gupta_cai_chen import (
    GCCLogConcave,
    GuptaCaiChen,
    GuptaCaiChenParallel,
    _theory_logconcave,
    _theory_par,
    gcc_split,
    parallel_predictor_step,
)
from experiments.targets import GroupedGaussian

TARGET = GroupedGaussian([0.5, 2.0], [0.0, 1.0], [1, 1])


def test_picard_predictor_converges_to_the_collocation_fixed_point():
    # For s(x, t) = -lam x the R-node scheme of the module docstring is the linear system
    #   z_i = e^{a_i h} x - lam [ sum_{j<i} (h/R) e^{(a_i - a_j) h} z_j + (a_i - (i-1)/R) h z_i ]   (i = 1..R)
    # and x' = e^h x - lam sum_j (h/R) e^{(1 - a_j) h} z_j. Enough Picard sweeps (contraction ~ lam h) reach it.
    R, h, lam, t = 5, 0.4, 0.8, 1.0
    rng = np.random.default_rng(4)
    batch = 3
    alpha = (np.arange(R) + rng.uniform(size=(batch, R))) / R
    x = rng.normal(size=(batch, 2))
    out = parallel_predictor_step(x, t, h, alpha, 40, CountingScore(lambda y, s: -lam * y, batch))
    for b in range(batch):
        a = alpha[b]
        A = np.zeros((R, R))
        for i in range(R):
            A[i, :i] = (h / R) * np.exp((a[i] - a[:i]) * h)
            A[i, i] = (a[i] - i / R) * h
        z = np.linalg.solve(np.eye(R) + lam * A, np.outer(np.exp(a * h), x[b]))
        expected = math.exp(h) * x[b] - lam * ((h / R) * np.exp((1.0 - a) * h)) @ z
        np.testing.assert_allclose(out[b], expected, rtol=1e-10)
    # ... and the fixed point is a consistent quadrature of dy/dr = (1 - lam) y (a real margin against errors)
    fine = (np.arange(32) + 0.5)[None, :] / 32 * np.ones((batch, 1))
    out_fine = parallel_predictor_step(x, t, h, fine, 40, CountingScore(lambda y, s: -lam * y, batch))
    np.testing.assert_allclose(out_fine, math.exp((1.0 - lam) * h) * x, rtol=1e-3)


def test_budget_split_limits_and_messages():
    assert gcc_split(12, 4, 0.9, "ei") == (1, 1)                  # the smallest budget; M rounds to 0 -> 1
    assert gcc_split(16, 4, 0.5, "rm") == (1, 1)                  # N0 * (2 + 2)
    assert gcc_split(3 * 10**4, 10**4, 0.5, "ei") == (1, 2)        # the largest N0 is allowed
    with pytest.raises(ValueError, match=r"^N0 must be an integer in \[1, 10000\], got 10001 "
                                         r"\(predictor-corrector windows\)$"):
        gcc_split(10**6, 10**4 + 1, 0.5, "ei")
    with pytest.raises(ValueError, match=r"^steps \(the NFE budget\) must be >= N0 \* 3 = 12 for N0=4, got 11$"):
        gcc_split(11, 4, 0.5, "ei")
    for args, msg in [((0, 4, 0.5, "ei"), r"^steps must"), ((12, 4, 1.0, "ei"), r"^pred_share must lie in"),
                      ((12, 4, 0.5, "x"), r"^corrector must be one of")]:
        with pytest.raises(ValueError, match=msg):
            gcc_split(*args)


def test_class_factory_and_registry_defaults_agree():
    steps = 100
    spec = REGISTRY["gupta_cai_chen"]
    P, M = gcc_split(steps, 4, 0.5, "ei")
    for k in (spec.make(steps), GuptaCaiChen(steps)):
        d = spec.defaults
        assert (k.N0, k.gamma, k.T_corr, k.corrector, k.P, k.M) == (d["N0"], d["gamma"], d["T_corr"], d["corrector"],
                                                                    P, M)
        assert (k.T, k.end_time) == (8.0, 1e-3)
    assert spec.nfe(steps) == 4 * (2 * P + M)
    assert np.all(run(spec.make(steps), TARGET, 2, np.random.default_rng(0)).nfe == spec.nfe(steps))
    pspec = REGISTRY["gupta_cai_chen_parallel"]
    for k in (pspec.make(6), GuptaCaiChenParallel(6)):
        d = pspec.defaults
        assert (k.R, k.sweeps, k.M, k.T_corr, k.gamma, k.corrector) == (d["R"], d["sweeps"], d["corr_steps"],
                                                                       d["T_corr"], d["gamma"], d["corrector"])
    lspec = REGISTRY["gcc_logconcave"]
    for k in (lspec.make(10), GCCLogConcave(10)):
        d = lspec.defaults
        assert (k.horizon, k.T_corr, k.gamma, k.t_level, k.M) == (d["horizon"], d["T_corr"], d["gamma"], d["t_level"],
                                                                  10)


def test_factories_pass_every_parameter_through():
    k = REGISTRY["gupta_cai_chen_parallel"].make(6, T=5.0, delta=0.01, R=2, sweeps=2, corr_steps=3, T_corr=0.5,
                                                   gamma=3.0, corrector="rm")
    assert (k.T, k.end_time, k.start_time(None)) == (5.0, 0.01, 5.0)
    assert (k.R, k.sweeps, k.M, k.T_corr, k.gamma, k.corrector) == (2, 2, 3, 0.5, 3.0, "rm")
    assert k.ops[0] == ("ppred", 5.0, pytest.approx((5.0 - 0.01) / 6)) and k.ops[-1][0] == "rm"
    k = REGISTRY["gcc_logconcave"].make(10, horizon=5.0, corr_steps=4, T_corr=0.5, gamma=3.0, t_level=0.2,
                                        T_start=4.0)
    assert (k.horizon, k.M, k.T_corr, k.gamma, k.t_level, k.end_time, k.start_time(None)) == (
        5.0, 4, 0.5, 3.0, 0.2, 0.2, 4.0)
    assert k.ops[0] == ("rm", 0.2, 0.5) and k.ops[-1] == ("ei", 0.2, 0.125)


def test_kernel_limits_are_inclusive_and_errors_name_the_parameter():
    # parallel: steps * (1 + sweeps * R) score evaluations <= MAX_STEPS
    assert GuptaCaiChenParallel(10**5, sweeps=9, R=11).n_steps == 10**5 + 1 + 20            # = 10**7 exactly
    with pytest.raises(ValueError, match=r"must be <= 10000000, got steps=909091, sweeps=2, R=5$"):
        GuptaCaiChenParallel(909091, sweeps=2, R=5)                                     # 10**7 + 1
    with pytest.raises(ValueError, match=r"got steps=100000, sweeps=10, R=10$"):
        GuptaCaiChenParallel(10**5, sweeps=10, R=10)
    for kw, msg in [(dict(R=lim.MAX_FINE + 1), r"^R must .*\(stratified nodes per predictor step\)$"),
                    (dict(sweeps=lim.MAX_FINE + 1), r"^sweeps must .*\(Picard sweeps per predictor step\)$"),
                    (dict(corrector="x"), r"^corrector must be one of"),
                    (dict(gamma=0.0), r"^gamma must lie in"),
                    (dict(T_corr=0.0), r"^T_corr must lie in"),
                    (dict(corr_steps=0), r"^corr_steps must be"),
                    (dict(T_corr=20.0, corr_steps=1),
                     r"^T_corr / corr_steps \(the corrector step\) must be <= 10, got T_corr=20.0, corr_steps=1$")]:
        with pytest.raises(ValueError, match=msg):
            GuptaCaiChenParallel(4, **kw)
    assert GuptaCaiChenParallel(4, T_corr=10.0, corr_steps=1).M == 1                      # step == 10 allowed
    # sequential
    for kw, msg in [(dict(T=0.0), r"^T must lie in"), (dict(delta=0.0), r"^delta must be > 0"),
                    (dict(T=1.0, delta=1.0), r"^delta must be < T, got delta=1.0, T=1.0$")]:
        with pytest.raises(ValueError, match=msg):
            GuptaCaiChen(100, **kw)
    # log-concave
    assert GCCLogConcave(1, horizon=10.0).n_steps == 1 + 1 + 1                            # horizon / steps == 10
    for kw, msg in [(dict(steps=0), r"^steps must"), (dict(horizon=0.0), r"^horizon must lie in"),
                    (dict(steps=1, horizon=11.0), r"^horizon / steps \(the ULMC step\) must be <= 10, "
                                                  r"got horizon=11.0, steps=1$"),
                    (dict(t_level=-1.0), r"^t_level must be >= 0"), (dict(T_start=0.0), r"^T_start must lie in"),
                    (dict(t_level=2.0, T_start=2.0), r"^T_start must be > t_level, got T_start=2.0, t_level=2.0$")]:
        kw = {"steps": 10, **kw}
        with pytest.raises(ValueError, match=msg):
            GCCLogConcave(**kw)


class _CountingNoise:
    def __init__(self, rng, batch):
        self.base, self.batch, self.normals = SampleNoise(rng, batch), batch, 0

    def normal(self, n_columns):
        self.normals += 1
        return self.base.normal(n_columns)

    def uniform(self, size=1):
        return self.base.uniform(size)


@pytest.mark.parametrize("parallel", [False, True])
@pytest.mark.parametrize("corrector,draws", [("ei", 2), ("rm", 4)])
def test_declared_draws_per_step_is_the_most_gaussian_draws_of_one_step(corrector, draws, parallel):
    k = (GuptaCaiChenParallel(3, R=2, sweeps=1, corr_steps=3, corrector=corrector) if parallel
         else GuptaCaiChen(40, N0=2, corrector=corrector))
    assert k.draws_per_step == draws
    batch = 2
    x = np.random.default_rng(0).normal(size=(batch, 2))
    state = k.init(x, None, None)
    score = CountingScore(TARGET.score, batch)
    most = 0
    for step in range(k.n_steps):
        noise = _CountingNoise(np.random.default_rng(step), batch)
        state = k.step(state, None, step, noise, score)
        most = max(most, noise.normals)
    assert most == draws


def test_theory_presets_floor_counts_at_one():
    # at d = 1, eps = 1, L = 1 every count formula gives 1 (ceil of 1 or of log 1 = 0)
    par = _theory_par(1, 1.0, 1.0)
    assert (par["R"], par["sweeps"], par["corr_steps"]) == (1, 1, 1)
    assert _theory_logconcave(1, 1.0, 1.0)["corr_steps"] == 1
    big = _theory_par(1000, 0.1, 4.0)
    assert big["R"] == math.ceil(1000 ** (1 / 3) * 0.1 ** (-2 / 3))
