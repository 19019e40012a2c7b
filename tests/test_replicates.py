"""Errors with their replicate structure: exact subset values, the annealed TV against quadrature, convergence of
the estimator as draws grow, and the gate that catches too few draws.

Internal draws come in R independent replicate groups of Latin hypercubes (experiments.internal); every error is
also computed with each group left out (the jackknife) and on two independent halves (the gate).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from experiments import distances as D
from experiments.cells import gate, lifted
from experiments.internal import REPLICATE_GROUPS as R
from experiments.internal import LatinHypercube, block_seed
from experiments.laws import gaussian_law
from experiments.replicates import jackknife_se, replicated_error
from experiments.samplers import get
from experiments.studies import get_target
from experiments.targets import GroupedGaussian

FAMILY = get_target("gauss_aniso")


def _law(name, cost, draws, seed, d=1000, **params):
    spec = get(name)
    return gaussian_law(spec.make(cost, **{**spec.defaults, **params}), FAMILY.at(d), n_draws=draws,
                        rng=LatinHypercube(np.random.default_rng(seed)))


def _groups(M):
    return np.repeat(np.arange(R), M // R)


def test_latin_hypercube_stratifies_each_coordinate_inside_each_group():
    u = LatinHypercube(np.random.default_rng(0)).random((R * 5, 7))
    assert u.shape == (R * 5, 7) and np.all((u >= 0) & (u < 1))
    for g in range(R):
        strata = np.sort(np.floor(u[g * 5:(g + 1) * 5] * 5), axis=0)
        assert np.array_equal(strata, np.tile(np.arange(5.0)[:, None], (1, 7)))
    # independent groups: the first coordinate's group means are not all equal
    assert np.ptp(u[:, 0].reshape(R, 5).mean(1)) > 0
    with pytest.raises(ValueError, match="multiple"):
        LatinHypercube(np.random.default_rng(0)).random((R * 5 + 1, 2))
    # marginally uniform: the mean of many draws of one coordinate is 1/2 within 4 standard errors
    big = LatinHypercube(np.random.default_rng(1)).random((R * 2, 20000))
    assert abs(big.mean() - 0.5) < 4 * np.sqrt(1 / 12 / big.size) * 4


def test_seeds_share_draws_across_parameters_but_not_across_costs():
    a = block_seed(0, {"sampler": "li_jiao", "cost": 100}, 0).generate_state(2)
    assert np.array_equal(a, block_seed(0, {"cost": 100, "sampler": "li_jiao"}, 0).generate_state(2))
    assert not np.array_equal(a, block_seed(0, {"sampler": "li_jiao", "cost": 110}, 0).generate_state(2))
    assert not np.array_equal(a, block_seed(1, {"sampler": "li_jiao", "cost": 100}, 0).generate_state(2))


@pytest.mark.parametrize("metric", ["tv_quenched", "sqrt_kl", "w2"])
def test_means_over_draws_are_exact_on_every_subset(metric):
    law = _law("li_jiao", 200, 4 * R, 1)
    g = _groups(4 * R)
    err = replicated_error(law, metric, group=g)
    mp, sp, mq, sq, k = D._law_args(law)
    per = {"tv_quenched": lambda: D._tv_rows(mp, sp, mq, sq, k, D.CF_TOL)[0],
           "sqrt_kl": lambda: D.gaussian_kl(mp, sp, mq, sq, k),
           "w2": lambda: D.gaussian_w2(mp, sp, mq, sq, k)}[metric]()
    f = (lambda x: np.sqrt(x.mean())) if metric == "sqrt_kl" else (lambda x: x.mean())
    assert err.value == pytest.approx(f(per), rel=1e-12, abs=0)
    for r in range(R):
        assert err.loo[r] == pytest.approx(f(per[g != r]), rel=1e-12, abs=0)
    assert err.halves[0] == pytest.approx(f(per[g < R // 2]), rel=1e-12, abs=0)
    assert err.halves[1] == pytest.approx(f(per[g >= R // 2]), rel=1e-12, abs=0)
    assert err.se == pytest.approx(jackknife_se(err.loo))


def test_annealed_tv_of_every_subset_against_exact_quadrature():
    """One coordinate: the mixture's TV is a 1-D integral over normal densities, computed exactly by
    distances.annealed_tv_isotropic_quadrature. The grouped Monte Carlo of the full set, of every
    leave-one-out set and of both halves must agree with it within 4 of its Monte Carlo standard errors
    (estimated from independent repeats); a wrong subset (the other half) must not."""
    target = GroupedGaussian([0.7], [0.2], [1])
    M = 2 * R
    law = gaussian_law(get("gcc_predictor").make(6), target, n_draws=M, rng=LatinHypercube(np.random.default_rng(5)))
    g = _groups(M)

    def exact(sel):
        return D.annealed_tv_isotropic_quadrature(dataclasses.replace(law, mean=law.mean[sel], var=law.var[sel])).value

    reps = [replicated_error(law, "tv_annealed", group=g, rng=np.random.default_rng(s), n_samples=4000)
            for s in range(12)]
    vals = np.array([[e.value, *e.loo, *e.halves] for e in reps])
    truth = np.array([exact(np.ones(M, bool))] + [exact(g != r) for r in range(R)] + [exact(g < R // 2),
                                                                                        exact(g >= R // 2)])
    mc_se = vals.std(0, ddof=1) / np.sqrt(len(reps))
    assert np.all(np.abs(vals.mean(0) - truth) <= 4 * mc_se + 1e-12), (vals.mean(0) - truth) / mc_se
    # negative control: the first half's estimate is far from the second half's exact value
    assert abs(vals.mean(0)[-2] - truth[-1]) > 10 * mc_se[-2]


def test_grouped_annealed_tv_agrees_with_the_plain_monte_carlo_at_many_coordinates():
    """At k = 1000 coordinates per group (two groups) the grouped estimator and distances.annealed_tv (an
    independent implementation, checked against quadrature in test_distances) agree within 4 combined
    standard errors."""
    law = lifted(_law("li_jiao", 160, 4 * R, 3), [1000, 1000])
    e = replicated_error(law, "tv_annealed", group=_groups(4 * R), rng=np.random.default_rng(1), n_samples=40000)
    plain = [D.annealed_tv(law, n_samples=40000, rng=np.random.default_rng(10 + s)).value for s in range(6)]
    inner = np.std(plain, ddof=1) / np.sqrt(len(plain))
    grouped = [replicated_error(law, "tv_annealed", group=_groups(4 * R), rng=np.random.default_rng(20 + s),
                                n_samples=40000).value for s in range(6)]
    inner_g = np.std(grouped, ddof=1) / np.sqrt(len(grouped))
    assert abs(np.mean(grouped) - np.mean(plain)) <= 4 * np.hypot(inner, inner_g), (np.mean(grouped), np.mean(plain))
    assert e.se > 0 and np.all(np.isfinite(e.loo))


def test_annealed_estimator_converges_as_draws_grow_and_too_few_draws_fail_the_gate():
    """Li & Jiao at T = 320, d = 1000 (TV ~ 0.045). Reference: 4096 draws. The estimates at 32, 128 and 512
    draws approach it (each within 3 of its jackknife standard errors, combined with the reference's), their
    standard errors fall, and the gate at 5% precision rejects 16 draws and accepts 512 (negative control)."""
    ref = replicated_error(_law("li_jiao", 320, 4096, 99), "tv_annealed", group=_groups(4096),
                           rng=np.random.default_rng(0), n_samples=20000)
    ses = []
    for M, seed in ((32, 1), (128, 2), (512, 3)):
        e = replicated_error(_law("li_jiao", 320, M, seed), "tv_annealed", group=_groups(M),
                             rng=np.random.default_rng(M), n_samples=20000)
        assert abs(e.value - ref.value) <= 3 * np.hypot(e.se, ref.se), (M, e.value, ref.value, e.se)
        ses.append(e.se)
    assert ses[0] > ses[1] > ses[2]
    small = replicated_error(_law("li_jiao", 320, 16, 7), "tv_annealed", group=_groups(16),
                             rng=np.random.default_rng(7), n_samples=20000)
    big = replicated_error(_law("li_jiao", 320, 512, 8), "tv_annealed", group=_groups(512),
                           rng=np.random.default_rng(8), n_samples=20000)
    assert not gate(small, 0.05) and small.relative_se > 0.05
    assert gate(big, 0.05)


def test_gate_needs_precision_agreeing_halves_and_no_bias():
    from experiments.replicates import ReplicatedError

    good = ReplicatedError(0.1, 0.002, np.full(R, 0.1), (0.101, 0.099), 64)
    assert gate(good, 0.05)
    assert not gate(dataclasses.replace(good, se=0.006), 0.05)                      # imprecise
    assert not gate(dataclasses.replace(good, halves=(0.125, 0.099)), 0.05)        # halves disagree
    assert not gate(dataclasses.replace(good, halves=(0.112, 0.110)), 0.05)        # full value biased low
    assert gate(ReplicatedError(0.3, 0.0), 0.05)                                   # one exact law


def test_inputs_are_validated():
    law = _law("li_jiao", 100, 2 * R, 0)
    with pytest.raises(ValueError, match="metric"):
        replicated_error(law, "kl")
    with pytest.raises(ValueError, match="group"):
        replicated_error(law, "sqrt_kl")
    with pytest.raises(ValueError, match="group"):
        replicated_error(law, "sqrt_kl", group=np.zeros(2 * R, int))
    with pytest.raises(ValueError, match="rng"):
        replicated_error(law, "tv_annealed", group=_groups(2 * R))
    with pytest.raises(ValueError, match="n_groups"):
        replicated_error(law, "sqrt_kl", group=_groups(2 * R), n_groups=3)
    one = lifted(dataclasses.replace(law, mean=law.mean[:1], var=law.var[:1]), [500, 500])
    assert replicated_error(one, "tv_annealed").se == 0.0
