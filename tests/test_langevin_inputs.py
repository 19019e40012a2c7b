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
