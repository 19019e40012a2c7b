"""Sample-based distances (experiments/distances.py: sliced W2, energy distance, TV of mode weights): what
mutation testing found unpinned. Values against brute force computed here (empirical laws as equally
weighted atoms, direct double sums), the bootstraps replayed draw for draw from the same seed, and every
input check's message."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments import distances as D


def _w2sq_atoms(a, b):
    """Squared W2 between the empirical laws of 1-D samples a and b: both as lcm(n, m) equal atoms."""
    n, m = len(a), len(b)
    L = n * m // math.gcd(n, m)
    return float(np.mean((np.sort(np.repeat(a, L // n)) - np.sort(np.repeat(b, L // m))) ** 2))


def _sliced_brute(x, y, om):
    return math.sqrt(np.mean([_w2sq_atoms(x @ w, y @ w) for w in om.T]))


def _directions(rng, d, P):
    om = rng.standard_normal((d, P))
    return om / np.linalg.norm(om, axis=0)


@pytest.mark.parametrize("n,m", [(6, 4), (5, 5)])
def test_sliced_w2_unequal_sizes_and_its_bootstrap_replayed(n, m):
    d, P, B, level = 3, 4, 7, 0.8
    data = np.random.default_rng(1)
    x, y = data.normal(size=(n, d)), 0.5 + 2.0 * data.normal(size=(m, d))
    est = D.sliced_w2(x, y, n_projections=P, rng=np.random.default_rng(7), n_boot=B, level=level)
    replay = np.random.default_rng(7)
    assert est.value == pytest.approx(_sliced_brute(x, y, _directions(replay, d, P)), rel=1e-12, abs=0)
    boot = []
    for _ in range(B):                 # rows of x, rows of y, then fresh directions: the documented order
        ix, iy = replay.integers(0, n, n), replay.integers(0, m, m)
        boot.append(_sliced_brute(x[ix], y[iy], _directions(replay, d, P)))
    boot = np.array(boot)
    assert est.stderr == pytest.approx(boot.std(ddof=1), rel=1e-12, abs=0)
    assert est.ci == pytest.approx((np.quantile(boot, 0.1), np.quantile(boot, 0.9)), rel=1e-12, abs=0)
    assert (est.n, est.method, est.ci_method) == (n + m, "sliced W2 (empirical)",
                                                  f"percentile bootstrap, {B} replicates")
    assert D.sliced_w2(x, y, n_projections=P, rng=np.random.default_rng(7)).ci_method == \
        "percentile bootstrap, 200 replicates"                                             # the default
    plain = D.sliced_w2(x, y, n_projections=P, rng=np.random.default_rng(7), n_boot=0)
    assert plain.value == est.value and math.isnan(plain.stderr) and plain.ci is None
    assert (plain.n, plain.method) == (n + m, "sliced W2 (empirical)")
    assert D.sliced_w2(x, y, rng=np.random.default_rng(7), n_boot=0).value == \
        pytest.approx(_sliced_brute(x, y, _directions(np.random.default_rng(7), d, 200)), rel=1e-12, abs=0)  # 200 dirs


def test_sliced_w2_default_rng_is_seed_zero():
    x, y = np.random.default_rng(2).normal(size=(5, 2)), np.random.default_rng(3).normal(size=(5, 2))
    assert D.sliced_w2(x, y, n_projections=3, n_boot=0).value == \
        D.sliced_w2(x, y, n_projections=3, n_boot=0, rng=np.random.default_rng(0)).value
    assert D.sliced_w2(x, y, n_projections=3, n_boot=0).value != \
        D.sliced_w2(x, y, n_projections=3, n_boot=0, rng=np.random.default_rng(1)).value


def test_energy_distance_is_the_u_statistic_and_its_bootstrap_replayed():
    data = np.random.default_rng(4)
    x, y = data.normal(size=(5, 2)), 1.0 + data.normal(size=(4, 2))
    dist = lambda a, b: np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)           # noqa: E731

    def u_stat(a, b):
        dxx, dyy = dist(a, a), dist(b, b)
        n, m = len(a), len(b)
        return 2 * dist(a, b).mean() - dxx.sum() / (n * (n - 1)) - dyy.sum() / (m * (m - 1))

    B, level = 6, 0.9
    est = D.energy_distance(x, y, rng=np.random.default_rng(9), n_boot=B, level=level)
    assert est.value == pytest.approx(u_stat(x, y), rel=1e-12, abs=0)
    replay = np.random.default_rng(9)
    z = np.vstack([x, y])
    boot = np.array([u_stat(z[replay.choice(np.arange(5), 5)], z[replay.choice(5 + np.arange(4), 4)])
                     for _ in range(B)])
    assert est.stderr == pytest.approx(boot.std(ddof=1), rel=1e-12, abs=0)
    assert est.ci == pytest.approx((np.quantile(boot, 0.05), np.quantile(boot, 0.95)), rel=1e-12, abs=0)
    assert (est.n, est.method, est.ci_method) == (9, "energy distance (U-statistic)",
                                                  f"percentile bootstrap, {B} replicates")
    plain = D.energy_distance(x, y, n_boot=0)
    assert plain.value == est.value and math.isnan(plain.stderr) and plain.ci is None
    assert (plain.n, plain.method) == (9, "energy distance (U-statistic)")


@pytest.mark.parametrize("with_labels", [False, True])
def test_mode_weight_tv_value_and_bootstrap_replayed(with_labels):
    labels = np.array([0, 0, 1, 2, 2, 2, 0, 1])
    w = np.bincount(labels, minlength=4) / 8                       # component 3 is empty: minlength matters
    target_labels = np.array([1, 1, 0, 3, 2])
    tw = np.bincount(target_labels, minlength=4) / 5 if with_labels else np.array([0.1, 0.2, 0.3, 0.4])
    kw = dict(target_labels=target_labels) if with_labels else dict(target_weights=tw)
    B, level = 9, 0.5
    est = D.mode_weight_tv(labels, n_components=4, rng=np.random.default_rng(5), n_boot=B, level=level, **kw)
    assert est.value == pytest.approx(0.5 * np.abs(w - tw).sum(), rel=1e-15, abs=0)
    replay = np.random.default_rng(5)
    wb = replay.multinomial(8, w, size=B) / 8
    twb = replay.multinomial(5, tw, size=B) / 5 if with_labels else tw
    boot = 0.5 * np.abs(wb - twb).sum(axis=1)
    assert est.stderr == pytest.approx(boot.std(ddof=1), rel=1e-12, abs=0)
    assert est.ci == pytest.approx((np.quantile(boot, 0.25), np.quantile(boot, 0.75)), rel=1e-12, abs=0)
    assert (est.n, est.method, est.ci_method) == (8, "TV of mode weights", f"percentile bootstrap, {B} replicates")
    assert D.mode_weight_tv(labels, n_components=4, **kw).ci_method == "percentile bootstrap, 1000 replicates"
    plain = D.mode_weight_tv(labels, n_components=4, n_boot=0, **kw)
    assert plain.value == est.value and math.isnan(plain.stderr) and plain.ci is None
    assert (plain.n, plain.method) == (8, "TV of mode weights")
    two = D.mode_weight_tv(labels, n_components=4, n_boot=2, rng=np.random.default_rng(5), **kw)   # the fewest allowed
    assert two.ci_method == "percentile bootstrap, 2 replicates"
    assert D.mode_weight_tv(np.array([3]), n_components=4, target_weights=np.eye(4)[3], n_boot=0).value == 0.0


def test_sample_distances_default_rng_is_seed_zero():
    labels = np.array([0, 1, 1, 0, 1])
    a = D.mode_weight_tv(labels, n_components=2, target_weights=[0.5, 0.5], n_boot=5)
    b = D.mode_weight_tv(labels, n_components=2, target_weights=[0.5, 0.5], n_boot=5, rng=np.random.default_rng(0))
    c = D.mode_weight_tv(labels, n_components=2, target_weights=[0.5, 0.5], n_boot=5, rng=np.random.default_rng(1))
    assert a.ci == b.ci and a.ci != c.ci


@pytest.mark.parametrize("call,message", [
    (lambda: D.mode_weight_tv([0, 1], n_components=0, target_weights=[1.0]), r"^n_components must be an integer >= 1"),
    (lambda: D.mode_weight_tv([0, 1], n_components=2, target_weights=[0.5, 0.5], n_boot=-1),
     r"^n_boot must be an integer >= 0, got -1$"),
    (lambda: D.mode_weight_tv([0, 1], n_components=2, target_weights=[0.5, 0.5], level=1.0),
     r"^level must lie in \(0.0, 1.0\), got 1.0$"),
    (lambda: D.mode_weight_tv([0.0, 1.0], n_components=2, target_weights=[0.5, 0.5]),
     r"^labels must be a non-empty 1-D integer array$"),
    (lambda: D.mode_weight_tv(np.array([], dtype=int), n_components=2, target_weights=[0.5, 0.5]),
     r"^labels must be a non-empty 1-D integer array$"),
    (lambda: D.mode_weight_tv([[0, 1]], n_components=2, target_weights=[0.5, 0.5]),
     r"^labels must be a non-empty 1-D integer array$"),
    (lambda: D.mode_weight_tv([0, 2], n_components=2, target_weights=[0.5, 0.5]), r"^labels must lie in 0\.\.1$"),
    (lambda: D.mode_weight_tv([-1, 1], n_components=2, target_weights=[0.5, 0.5]), r"^labels must lie in 0\.\.1$"),
    (lambda: D.mode_weight_tv([0, 1], n_components=2, target_labels=[0, 2]), r"^target_labels must lie in 0\.\.1$"),
    (lambda: D.mode_weight_tv([0, 1], n_components=2), r"^give exactly one of target_weights and target_labels$"),
    (lambda: D.mode_weight_tv([0, 1], n_components=2, target_weights=[0.5, 0.5], target_labels=[0]),
     r"^give exactly one of target_weights and target_labels$"),
    (lambda: D.mode_weight_tv([0, 1], n_components=2, target_weights=[[0.5, 0.5]]),
     r"^target_weights must have 1 dimension"),
    (lambda: D.mode_weight_tv([0, 1], n_components=2, target_weights=[0.5, 0.5, 0.0]),
     r"^target_weights must be 2 non-negative numbers summing to one$"),
    (lambda: D.mode_weight_tv([0, 1], n_components=2, target_weights=[1.5, -0.5]),
     r"^target_weights must be 2 non-negative numbers summing to one$"),
    (lambda: D.mode_weight_tv([0, 1], n_components=2, target_weights=[0.5, 0.5 + 2e-10]),
     r"^target_weights must be 2 non-negative numbers summing to one$"),
    (lambda: D.sliced_w2(np.zeros((1, 2)), np.zeros((3, 2))), r"^x must have at least 2 samples \(rows\), got 1$"),
    (lambda: D.sliced_w2(np.zeros((3, 2)), np.zeros((1, 2))), r"^y must have at least 2 samples \(rows\), got 1$"),
    (lambda: D.sliced_w2(np.zeros((3, 2, 1)), np.zeros((3, 2))), r"^x must have 1 or 2 dimension"),
    (lambda: D.sliced_w2(np.zeros((3, 2)), [[np.nan, 0.0], [0.0, 0.0]]), r"^y must be finite"),
    (lambda: D.sliced_w2(np.zeros((3, 2)), np.zeros((3, 3))), r"^x and y must have the same dimension, got 2 and 3$"),
    (lambda: D.sliced_w2(np.zeros((3, 2)), np.zeros((3, 2)), n_projections=0),
     r"^n_projections must be an integer >= 1"),
    (lambda: D.sliced_w2(np.zeros((3, 2)), np.zeros((3, 2)), n_boot=-1), r"^n_boot must be an integer >= 0"),
    (lambda: D.sliced_w2(np.zeros((3, 2)), np.zeros((3, 2)), n_boot=1),
     r"^n_boot must be 0 \(no interval\) or an integer >= 2, got 1$"),
    (lambda: D.energy_distance(np.zeros((3, 2)), np.zeros((3, 2)), n_boot=1), r"^n_boot must be 0 \(no interval\)"),
    (lambda: D.mode_weight_tv([0, 1], n_components=2, target_weights=[0.5, 0.5], n_boot=1),
     r"^n_boot must be 0 \(no interval\)"),
    (lambda: D.sliced_w2(np.zeros((3, 2)), np.zeros((3, 2)), level=1.0), r"^level must lie in \(0.0, 1.0\)"),
    (lambda: D.sliced_w2(np.zeros((3, 2)), np.zeros((3, 2)), rng=0),
     r"^rng must be a numpy.random.Generator, got int$"),
    (lambda: D.energy_distance(np.zeros((1, 2)), np.zeros((3, 2))), r"^x must have at least 2 samples"),
    (lambda: D.energy_distance(np.zeros((3, 2)), np.zeros((1, 2))), r"^y must have at least 2 samples"),
    (lambda: D.energy_distance(np.zeros((3, 2)), np.zeros((3, 1))),
     r"^x and y must have the same dimension, got 2 and 1$"),
    (lambda: D.energy_distance(np.zeros((3, 2)), np.zeros((3, 2)), n_boot=-1), r"^n_boot must be an integer >= 0"),
    (lambda: D.energy_distance(np.zeros((3, 2)), np.zeros((3, 2)), level=0.0), r"^level must lie in \(0.0, 1.0\)"),
])
def test_sample_distance_input_checks_name_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_zero_bootstrap_replicates_are_allowed_and_float_of_an_estimate_is_its_value():
    x = np.arange(4.0)
    assert D.sliced_w2(x, x + 1.0, n_boot=0).value == pytest.approx(1.0, rel=1e-14, abs=0)       # 1-D: exact W2
    assert D.sliced_w2([0.0, 1.0], [0.0, 3.0], n_boot=0).value == pytest.approx(math.sqrt(2.0), rel=1e-14, abs=0)
    assert D.energy_distance(x, x, n_boot=0).value == pytest.approx(
        2 * np.abs(x[:, None] - x[None]).mean() - 2 * np.abs(x[:, None] - x[None]).sum() / 12, rel=1e-14, abs=0)
    assert float(D.Estimate(0.25, 0.1)) == 0.25 and isinstance(float(D.Estimate(np.float32(0.5))), float)
