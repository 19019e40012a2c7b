"""experiments/samplers/ve.py: the two schedules build the grids they name, from T to delta, with the EDM
exponent rho passed on (default 7), and the kernel's noise levels are the grid's. Mutation testing found
the grid arguments and the rho default unpinned."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import processes
from experiments.samplers import ve
from experiments.samplers._api import REGISTRY
from experiments.samplers._grid import build_grid


def test_exponential_schedule_is_the_exponential_sigma_grid_from_T_to_delta():
    ts = ve.schedule_grid(12, T=3.0, delta=0.02, schedule="exponential", rho=7.0)
    np.testing.assert_array_equal(ts, build_grid(12, T=3.0, delta=0.02, grid="exponential_sigma"))
    assert ts[0] == pytest.approx(3.0, rel=1e-15, abs=0) and ts[-1] == pytest.approx(0.02, rel=1e-15, abs=0)
    # the exponential-sigma grid, not the default grid: log sigma is equally spaced
    log_sigma = np.log(processes.edm_sigma_from_t(ts))
    np.testing.assert_allclose(np.diff(log_sigma), np.diff(log_sigma)[0], rtol=1e-10)


@pytest.mark.parametrize("rho", [3.0, 7.0])
def test_polynomial_schedule_is_the_edm_grid_with_rho(rho):
    ts = ve.schedule_grid(12, T=3.0, delta=0.02, schedule="polynomial", rho=rho)
    np.testing.assert_array_equal(ts, build_grid(12, T=3.0, delta=0.02, grid="edm", rho=rho))
    assert ts[0] == pytest.approx(3.0, rel=1e-15, abs=0) and ts[-1] == pytest.approx(0.02, rel=1e-15, abs=0)


def test_factory_default_rho_is_7_and_noise_levels_are_the_grids():
    k = REGISTRY["ve_ei"].make(12, schedule="polynomial")
    np.testing.assert_array_equal(k.ts, ve.schedule_grid(12, T=ve.DEFAULT_T, delta=ve.DEFAULT_DELTA,
                                                         schedule="polynomial", rho=7.0))
    np.testing.assert_array_equal(k.sig_hat, processes.edm_sigma_from_t(k.ts))


def test_bad_rho_names_it():
    with pytest.raises(ValueError, match=r"^rho "):
        ve.schedule_grid(12, T=3.0, delta=0.02, schedule="polynomial", rho=0.1)
