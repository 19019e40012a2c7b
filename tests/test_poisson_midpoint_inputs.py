"""Inputs of experiments/samplers/poisson_midpoint.py: every bad argument raises a ValueError that names
it (and says why its bound exists), limits are inclusive where the docstrings say so, and the factories pass
the noise levels on. Mutation testing found the parameter names in these messages unpinned."""

from __future__ import annotations

import pytest

from experiments.samplers import poisson_midpoint as pm
from experiments.samplers._api import REGISTRY


@pytest.mark.parametrize("call, message", [
    (lambda: pm.PULMC(10, gamma=-1.0), r"^gamma must lie in \[.*\], got -1\.0 \(outside it the dynamics"),
    (lambda: pm.PLMC(10, K=10**6, horizon=1.0), r"^K must be an integer in \[1, \d+\], got 1000000 "
                                                r"\(law mode probes 1 \+ state \+ K rows per draw\)"),
    (lambda: pm.PMMDDPM(10**6), r"^K must be an integer in \[1, \d+\], got 1000000 \(law mode probes 1 \+ K rows"),
    (lambda: pm.ddpm_alpha_bar(N=10**6), r"^N must be an integer in \[1, 100000\], got 1000000 "
                                         r"\(the DDPM chain length; law mode runs N / K coarse steps of K rows\)"),
    (lambda: pm.ddpm_alpha_bar(beta_min=1.5), r"^beta_min must lie in \[.*, 1\], got 1\.5 \(1 - beta_min"),
    (lambda: pm.ddpm_alpha_bar(beta_min=1.0), r"^beta_min must be < 1, got 1\.0"),
    (lambda: pm.ddpm_alpha_bar(beta_max=1.5), r"^beta_max "),
    (lambda: pm.ddpm_alpha_bar(beta_min=0.1, beta_max=0.05), r"^beta_max must be >= beta_min"),
    (lambda: pm.PMMDDPM(2, N=10, stride=0), r"^stride "),
    (lambda: pm.PMMDDPM(2, N=10, stride=11), r"^stride must be an integer in \[1, N=10\], got 11"),
    (lambda: pm.PMMDDPM(2, variant="tiny"), r"^variant must be one of"),
    (lambda: pm._nfe_plmc(10, K=0), r"^K "),
    (lambda: pm._nfe_pmm_ddpm(0), r"^K "),
    (lambda: pm._nfe_pmm_ddpm(2, N=0), r"^N "),
    (lambda: pm._nfe_pmm_ddpm(2, stride=0), r"^stride "),
])
def test_bad_input_names_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_a_stride_equal_to_the_chain_length_is_one_fine_step():
    k = pm.PMMDDPM(2, N=10, stride=10)
    assert list(k.levels) == [10, 0] and k.n_fine == 1 and k.n_steps == 1
    assert k.expected_nfe() == pm._nfe_pmm_ddpm(2, N=10, stride=10)


@pytest.mark.parametrize("name", ["plmc", "pulmc"])
def test_factories_pass_the_noise_levels_on(name):
    kern = REGISTRY[name].make(10, horizon=2.0, level=0.25, init_level=4.0)
    assert kern.level == 0.25 and kern.end_time == 0.25 and kern.start_time(None) == 4.0
    assert kern.alpha == pytest.approx(0.2, rel=1e-15, abs=0)


def test_documented_defaults():
    assert pm.PLMC(10, horizon=1.0).K == 10 and pm.PULMC(10, horizon=1.0).K == 10
    assert REGISTRY["pulmc"].make(10, horizon=1.0).gamma == 2.0 and pm.PULMC(10, horizon=1.0).gamma == 2.0
    assert pm.ddpm_alpha_bar().size == 1001 and pm.PMMDDPM(4).N == 1000


def test_factories_pass_alpha_and_variant_on():
    assert REGISTRY["plmc"].make(10, alpha=0.05).alpha == 0.05
    assert REGISTRY["pulmc"].make(10, alpha=0.05).alpha == 0.05
    assert REGISTRY["pmm_ddpm"].make(4, variant="large", N=20).variant == "large"
