"""Every sampler factory passes its time-grid arguments on: ``make(steps, T=..., delta=..., grid=...)``
builds the grid it names, not the default one. Mutation testing found the factories unpinned (the tests
built every sampler with the default horizon, early-stopping level and grid, so dropping an argument
changed nothing)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import experiments.samplers  # noqa: F401  (registers the samplers)
from experiments import processes
from experiments.samplers._api import REGISTRY

GRID_FACTORIES = sorted(n for n, spec in REGISTRY.items()
                        if {"steps", "T", "delta", "grid"} <= set(inspect.signature(spec.make).parameters))


def test_the_factories_under_test_are_the_grid_samplers():
    assert len(GRID_FACTORIES) >= 12
    assert {"ddim", "ddpm", "pf_ode_rk4", "euler_maruyama", "ddram"} <= set(GRID_FACTORIES)


@pytest.mark.parametrize("name", GRID_FACTORIES)
@pytest.mark.parametrize("grid", ["uniform", "geometric"])
def test_grid_factory_builds_the_named_grid_from_T_to_delta(name, grid):
    kernel = REGISTRY[name].make(12, T=5.0, delta=0.02, grid=grid)
    ts = np.asarray(kernel.ts)
    expected = processes.make_grid(grid, 5.0, 0.02, ts.size - 1)
    assert ts == pytest.approx(expected, rel=1e-14, abs=0)
    assert ts[0] == pytest.approx(5.0, rel=1e-15, abs=0) and ts[-1] == pytest.approx(0.02, rel=1e-15, abs=0)


@pytest.mark.parametrize("name", ["edm_heun", "ve_ei"])
def test_edm_and_ve_factories_run_from_T_to_delta(name):
    kernel = REGISTRY[name].make(12, T=5.0, delta=0.02)
    ts = np.asarray(kernel.ts)
    assert ts[0] == pytest.approx(5.0, rel=1e-12, abs=0) and ts[-1] == pytest.approx(0.02, rel=1e-12, abs=0)


def test_edm_factory_uses_rho_and_its_default_is_seven():
    # Karras et al. 2022 (arXiv 2206.00364) eq. (5): the sigma grid with exponent rho, rho = 7 in the paper
    edm = REGISTRY["edm_heun"].make
    for rho, kernel in ((7.0, edm(12, T=5.0, delta=0.02)), (3.0, edm(12, T=5.0, delta=0.02, rho=3.0))):
        ts = np.asarray(kernel.ts)
        assert ts == pytest.approx(processes.make_grid("edm", 5.0, 0.02, ts.size - 1, rho=rho), rel=1e-14, abs=0)
    assert not np.allclose(edm(12, rho=3.0).ts, edm(12).ts, atol=0)
    with pytest.raises(ValueError, match=r"^rho "):
        edm(12, rho=0.0)
