"""Inputs of experiments/samplers/langevin.py: bad arguments raise a ValueError that names them, and the
factories pass the noise levels on. Mutation testing found the names and the levels unpinned."""

from __future__ import annotations

import pytest

from experiments.samplers import langevin as lg
from experiments.samplers._api import REGISTRY


@pytest.mark.parametrize("call, message", [
    (lambda: lg.ulmc_covariance(-1.0, 0.1), r"^gamma "),
    (lambda: lg.ulmc_covariance(2.0, -0.1), r"^h "),
    (lambda: lg.step_and_levels(10, None, 1.0, -0.5, 3.0), r"^level "),
    (lambda: lg.step_and_levels(10, None, 1.0, 0.0, -3.0), r"^init_level "),
])
def test_bad_input_names_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name", ["lmc", "ulmc", "shen_lee"])
def test_factories_pass_the_noise_levels_on(name):
    kern = REGISTRY[name].make(10, horizon=2.0, level=0.25, init_level=4.0)
    assert kern.level == 0.25 and kern.end_time == 0.25 and kern.start_time(None) == 4.0


@pytest.mark.parametrize("call, message", [
    (lambda: lg.ULMC(10, gamma=-1.0, horizon=1.0), r"^gamma must lie in"),
    (lambda: lg.ShenLee(10, u=-1.0, horizon=1.0), r"^u must lie in .*\(Shen-Lee's u = 1/L multiplies the score\)"),
])
def test_kernel_constructors_name_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("name", ["lmc", "ulmc", "shen_lee"])
def test_factories_pass_the_step_size_on(name):
    assert REGISTRY[name].make(10, h=0.05).h == 0.05


def test_shen_lee_step_where_the_condition_number_term_binds():
    # h = min(er^{1/3} kappa^{-1/6} lg^{-1/6}, er^{2/3} lg^{-1/3}), er = eps / sqrt(d), lg = max(log(1/er), 1):
    # the kappa term is the smaller one only when kappa > lg / er^2 (here d = 1, eps = 0.5, L = 10: 10 > 4)
    er, lg_, kappa = 0.5, 1.0, 10.0
    first, second = er ** (1 / 3) * kappa ** (-1 / 6) * lg_ ** (-1 / 6), er ** (2 / 3) * lg_ ** (-1 / 3)
    assert first < second
    assert lg.theorem_step_shen_lee(1, 0.5, 10.0) == pytest.approx(first, rel=1e-14, abs=0)
