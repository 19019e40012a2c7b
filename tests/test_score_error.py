"""PerturbedGaussian / ScoreErrorFamily: the score error's L2 size (closed form and Monte Carlo),
its Lipschitz constants (finite differences), exactness of the reference law, eps_score = 0 bit for bit."""

import pickle

import numpy as np
import pytest

from experiments.cells import Scan, run_scan
from experiments.laws import gaussian_law
from experiments.samplers import get as get_sampler
from experiments.score_error import PerturbedGaussian, ScoreErrorFamily, size_profile
from experiments.studies import GaussianFamily, get_target
from experiments.targets import GroupedGaussian

BASE = GroupedGaussian([0.1, 2.0, 0.5], [0.5, -0.5, 1.0], [3, 5, 2])


@pytest.mark.parametrize("profile", ["constant", "inv_sigma"])
@pytest.mark.parametrize("convention", ["total", "per_coordinate"])
def test_l2_size_closed_form_and_monte_carlo(profile, convention, rng):
    tgt = PerturbedGaussian(BASE, 0.3, alpha=[1.0, -0.5, 2.0], beta=[0.7, 1.0, -0.2], profile=profile,
                            convention=convention)
    for t in (0.01, 0.3, 2.0):
        w = float(size_profile(profile, t))
        claimed_total = 0.3 * w if convention == "total" else 0.3 * w * np.sqrt(tgt.dim)
        assert tgt.l2_error(t) == pytest.approx(claimed_total, rel=1e-12, abs=0)
        # Monte Carlo in the FULL d coordinates, with the full-dimension score (rotated basis too)
        n = 200_000
        y = tgt.sample_full(n, t, rng)
        e = tgt.score_full(y, t) - GroupedGaussian.score_full(tgt, y, t)
        sq = np.sum(e**2, axis=1)
        mc, se = sq.mean(), sq.std(ddof=1) / np.sqrt(n)
        assert abs(mc - claimed_total**2) < 5 * se, (t, mc, claimed_total**2, se)
        # per-coordinate convention: each coordinate carries eps^2 w^2
        if convention == "per_coordinate":
            per = np.mean(e**2, axis=0)
            per_se = np.std(e**2, axis=0, ddof=1) / np.sqrt(n)
            assert np.all(np.abs(per - (0.3 * w) ** 2) < 5 * per_se)


def test_score_full_matches_columns_in_a_rotated_basis(rng):
    Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    base = GroupedGaussian([0.2, 3.0], [0.1, -1.0], [3, 1], basis=Q)
    tgt = PerturbedGaussian(base, 0.5, alpha=[1.0, -1.0], beta=[0.3, 2.0])
    z = rng.standard_normal((7, 2))
    t = np.full((7, 1), 0.4)
    # a point whose eigen-coordinates repeat the column values: full score = rotated column score
    y = np.repeat(z, base.multiplicities, axis=1) @ Q.T
    full = tgt.score_full(y, t) @ Q
    assert np.allclose(full, np.repeat(tgt.score(z, t), base.multiplicities, axis=1), atol=1e-12)


def test_reference_law_is_exact_and_only_the_score_moves(rng):
    tgt = PerturbedGaussian(BASE, 0.2)
    x = rng.standard_normal((5, 3))
    for t in (0.05, 1.0):
        m0, v0 = BASE.marginal_params(t)
        m1, v1 = tgt.marginal_params(t)
        assert np.array_equal(m0, m1) and np.array_equal(v0, v1)
        assert np.array_equal(tgt.log_density(x, t), BASE.log_density(x, t))
        assert np.array_equal(tgt.exact_score(x, t), BASE.score(x, t))
        assert not np.allclose(tgt.score(x, t), BASE.score(x, t), atol=0)
    assert tgt.second_moment() == BASE.second_moment()


def test_lipschitz_by_finite_differences(rng):
    tgt = PerturbedGaussian(BASE, 2.0, alpha=[3.0, -1.0, 0.5], beta=0.0, profile="inv_sigma",
                            convention="per_coordinate")
    for t in (0.02, 0.5, 3.0):
        h = 1e-3
        x = rng.standard_normal((1, 3))
        jac_hat, jac_err = [], []
        for g in range(3):
            dx = np.zeros((1, 3))
            dx[0, g] = h
            jac_hat.append(((tgt.score(x + dx, t) - tgt.score(x - dx, t)) / (2 * h))[0, g])
            jac_err.append(((tgt.error(x + dx, t) - tgt.error(x - dx, t)) / (2 * h))[0, g])
            # separable: other columns do not move
            off = np.delete((tgt.score(x + dx, t) - tgt.score(x - dx, t))[0], g)
            assert np.all(np.abs(off) < 1e-12)
        # affine: central differences are exact up to rounding (relative 1e-8 is ~1e5 ulps of slack)
        assert tgt.estimate_lipschitz(t) == pytest.approx(np.max(np.abs(jac_hat)), rel=1e-8, abs=0)
        assert tgt.error_lipschitz(t) == pytest.approx(np.max(np.abs(jac_err)), rel=1e-8, abs=0)
        assert tgt.lipschitz(t) == pytest.approx(max(np.max(np.abs(jac_hat)), BASE.lipschitz(t)), rel=1e-8, abs=0)
    # a large positive alpha can make the estimate's constant exceed the exact one
    assert tgt.estimate_lipschitz(3.0) != pytest.approx(BASE.lipschitz(3.0))


def test_eps_zero_is_bit_for_bit_the_exact_target():
    fam = get_target("gauss_aniso")
    zero = ScoreErrorFamily(fam, 0.0)
    tiny = ScoreErrorFamily(fam, 1e-6)
    x = np.linspace(-3, 3, 12).reshape(6, 2)
    assert np.array_equal(zero.at(10).score(x, 0.3), fam.at(10).score(x, 0.3))
    for name, cost, draws in (("ddpm", 16, 1), ("li_jiao", 60, 3)):
        k = get_sampler(name).make(cost)
        laws = [gaussian_law(k, f.at(10), n_draws=draws, rng=np.random.default_rng(5)) for f in (fam, zero, tiny)]
        assert np.array_equal(laws[0].mean, laws[1].mean) and np.array_equal(laws[0].var, laws[1].var)
        # and the wrapper is not inert: a tiny error moves the law
        assert not np.array_equal(laws[0].mean, laws[2].mean)


def test_family_is_a_scan_family(tmp_path):
    fam = ScoreErrorFamily(get_target("gauss_aniso"), 0.1, alpha=(1.0, -1.0), beta=(0.5,))
    again = pickle.loads(pickle.dumps(fam))
    assert again == fam and repr(again) == repr(fam)
    assert fam.name != ScoreErrorFamily(get_target("gauss_aniso"), 0.2).name
    assert fam.lipschitz(1e-3) >= get_target("gauss_aniso").lipschitz(1e-3)
    assert fam.at(50).l2_error(0.7) == pytest.approx(0.1)           # total convention, any d
    scan = Scan(study="t", profile="quick", sampler="ddpm", variant="tuned", family=fam, params=(),
                costs=(8, 16), pairs=((10, 0.01),), metrics=("tv_annealed",), n_draws=1, root_seed=0)
    rows = run_scan(scan, str(tmp_path))["errors"]
    assert len(rows) == 2 and rows[0]["target"] == fam.name
    exact_scan = Scan(study="t", profile="quick", sampler="ddpm", variant="tuned", family=ScoreErrorFamily(
        get_target("gauss_aniso"), 0.0), params=(), costs=(8, 16), pairs=((10, 0.01),), metrics=("tv_annealed",),
        n_draws=1, root_seed=0)
    assert [r["error"] for r in run_scan(exact_scan, None)["errors"]] != [r["error"] for r in rows]


@pytest.mark.parametrize("kwargs, word", [
    (dict(eps_score=-0.1), "eps_score"),
    (dict(eps_score=0.1, profile="square"), "profile"),
    (dict(eps_score=0.1, convention="mean"), "convention"),
    (dict(eps_score=0.1, alpha=0.0, beta=0.0), "alpha"),
    (dict(eps_score=0.1, alpha=[1.0, 2.0]), "alpha"),
])
def test_bad_parameters_name_themselves(kwargs, word):
    with pytest.raises(ValueError, match=word):
        PerturbedGaussian(BASE, **kwargs)


def test_inv_sigma_needs_positive_time():
    tgt = PerturbedGaussian(BASE, 0.1, profile="inv_sigma")
    with pytest.raises(ValueError, match="t"):
        tgt.score(np.zeros((1, 3)), 0.0)
    fam = GaussianFamily("two", (0.5, 2.0), (0.0, 0.0), (0.5, 0.5))
    with pytest.raises(ValueError, match="alpha"):
        ScoreErrorFamily(fam, 0.1, alpha=(1.0, 2.0, 3.0))
