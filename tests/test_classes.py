"""experiments.classes: the class of each claim as parameters, and the check (with negative controls)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.classes import (
    CLASSES,
    DEFAULT_L_MAX,
    DEFAULT_M2_MAX,
    TheoremClass,
    gaussian_column_lipschitz,
    theorem_class,
)
from experiments.studies import get_target
from experiments.targets import GroupedGaussian, ProductMixture


@pytest.mark.parametrize("L_max, delta", [(10.0, 0.0), (10.0, 1e-3), (3.0, 0.05), (400.0, 1e-3)])
def test_variance_floor_against_brute_force(L_max, delta):
    """The closed-form floor is the smallest variance whose sup_{t >= delta} L(t) (the target's own grid
    sup, independent of the closed form) is <= L_max: bisection on lipschitz_sup."""
    cls = TheoremClass("x", "", L_max=L_max, delta=delta)
    lo, hi = 1e-9, 1.0
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        if GroupedGaussian([mid]).lipschitz_sup(delta, n_grid=101) <= L_max:
            hi = mid
        else:
            lo = mid
    assert cls.variance_floor() == pytest.approx(hi, rel=1e-9, abs=0)
    # at the floor the class bound is attained, below it the target is outside
    assert cls.contains(GroupedGaussian([cls.variance_floor()]))
    assert not cls.contains(GroupedGaussian([cls.variance_floor() * (1 - 1e-6)]))


def test_floor_is_zero_when_the_early_stopping_level_already_bounds_L():
    cls = TheoremClass("x", "", L_max=1000.0, delta=0.01)        # 1/(1 - e^{-0.02}) ~ 50.5 < 1000
    assert cls.variance_floor() == 0.0
    assert cls.contains(GroupedGaussian([1e-12]))


def test_gaussian_fast_path_equals_lipschitz_sup():
    rng = np.random.default_rng(3)
    for delta in (0.0, 1e-3, 0.2):
        var = np.exp(rng.uniform(np.log(1e-3), np.log(50.0), size=7))
        t = GroupedGaussian(var, rng.normal(size=7), rng.integers(1, 5, size=7))
        fast = float(np.max(gaussian_column_lipschitz(var, delta)))
        assert fast == pytest.approx(t.lipschitz_sup(delta), rel=1e-12, abs=0)
        assert TheoremClass("x", "", delta=delta).measure(t)["lipschitz"] == pytest.approx(fast, rel=1e-15, abs=0)


def test_fixed_targets_positive_and_negative_controls():
    aniso, lowrank = get_target("gauss_aniso"), get_target("gauss_lowrank")
    for name, cls in CLASSES.items():
        assert cls.L_max == DEFAULT_L_MAX and cls.m2_max == DEFAULT_M2_MAX
        assert cls.contains(aniso.at(100)), name                 # L = 10 (t = 0) or 9.82 (t >= 1e-3), m2 = 1.3
        res = cls.check(lowrank.at(100))                          # variance 1e-3: L ~ 334 at 1e-3, 1000 at 0
        assert not res.ok and res.failed == ["lipschitz"]
        assert res.results[0].value > 30 * cls.L_max            # a real margin, not rounding
        # second moment: N(0, 2.5) has L <= 1 but E|X|^2/d = 2.5 > 2
        res = cls.check(GroupedGaussian([2.5], 0.0, 10))
        assert res.failed == ["second_moment"]
        with pytest.raises(ValueError, match="second_moment"):
            cls.require(GroupedGaussian([2.5], 0.0, 10))
        with pytest.raises(ValueError, match="lipschitz"):
            cls.require(lowrank.at(100))
        # a mean counts in the second moment: N(1.5, 0.1) has m2 = 2.35
        assert cls.check(GroupedGaussian([0.1], 1.5, 3)).failed == ["second_moment"]


def test_mixtures_use_the_certified_bound():
    cls = theorem_class("gupta_cai_chen")
    near = ProductMixture([0.5, 0.5], [-1.0, 1.0], [0.3, 0.3], 4)          # certified L ~ 7.8 at t = 0
    far = ProductMixture([0.5, 0.5], [-1.3, 1.3], [0.1, 0.1], 4)           # separated modes: L ~ 160, m2 = 1.79
    assert cls.contains(near)
    res = cls.check(far)
    assert res.failed == ["lipschitz"] and res.results[0].value > 4 * cls.L_max


def test_constants_and_bad_input():
    cls = theorem_class("li_jiao", L_max=20.0, m2_max=3.0)
    assert (cls.L_max, cls.m2_max, cls.delta) == (20.0, 3.0, 0.0)
    assert cls.sources == CLASSES["li_jiao"].sources
    assert all(r["source"].startswith("[") for r in cls.rows())       # every condition carries its tag
    with pytest.raises(ValueError, match="claim"):
        theorem_class("no_such_sampler")
    with pytest.raises(ValueError, match="L_max"):
        TheoremClass("x", "", L_max=1.0)
    with pytest.raises(ValueError, match="L_max"):
        TheoremClass("x", "", L_max=-2.0)
    with pytest.raises(ValueError, match="m2_max"):
        TheoremClass("x", "", m2_max=0.0)
    with pytest.raises(ValueError, match="delta"):
        TheoremClass("x", "", delta=-1e-3)
    with pytest.raises(ValueError, match="target"):
        cls.check(np.zeros(3))
    with pytest.raises(ValueError, match="variance"):
        gaussian_column_lipschitz([-1.0], 0.0)
