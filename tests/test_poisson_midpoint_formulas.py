"""Closed forms of experiments/samplers/poisson_midpoint.py against the formulas written here: the reverse
DDPM step coefficients of each variant (Ho, Jain & Abbeel 2020, eq. 11-12; the Euler-Maruyama step of the
reverse VP-SDE) and the PLMC step prescription (Srinivasan & Nagaraj 2025, arXiv 2506.07614), at L != 1 so
that every power of L is visible. Mutation testing found these unpinned."""

from __future__ import annotations

import math

import pytest

from experiments.samplers.poisson_midpoint import ddpm_coefficients, theorem_step_plmc


@pytest.mark.parametrize("variant", ["large", "small", "euler_maruyama"])
def test_ddpm_coefficients(variant):
    ab_from, ab_to = 0.3, 0.45
    beta = 1 - ab_from / ab_to
    s = math.sqrt(1 - ab_from)
    a, b, c = ddpm_coefficients(ab_from, ab_to, variant)
    if variant == "euler_maruyama":
        expect = (2 - math.sqrt(1 - beta), -beta / s, math.sqrt(beta))
    else:
        sigma2 = beta if variant == "large" else beta * (1 - ab_to) / (1 - ab_from)
        expect = (1 / math.sqrt(1 - beta), -beta / (math.sqrt(1 - beta) * s), math.sqrt(sigma2))
    assert (float(a), float(b), float(c)) == pytest.approx(expect, rel=1e-14, abs=0)


# the first term of the min binds when L > d (the last two rows), the second when L < d
@pytest.mark.parametrize("d,eps,L", [(10, 0.1, 2.0), (10**6, 0.05, 3.0), (4, 0.5, 0.5), (1, 0.3, 8.0), (2, 0.1, 5.0)])
def test_plmc_step_prescription(d, eps, L):
    alpha, K = theorem_step_plmc(d, eps, L)
    first, second = eps ** (2 / 3) * L ** (-4 / 3), eps ** (2 / 3) * d ** (-1 / 3) / L
    assert (first < second) == (L > d)
    want = min(first, second)
    assert alpha == pytest.approx(want, rel=1e-14, abs=0)
    assert K == max(math.ceil(want * L / eps**2), 1)


def test_plmc_step_count_is_at_least_one():
    alpha, K = theorem_step_plmc(10, 0.9, 0.01)          # alpha L / eps^2 < 1
    assert alpha * 0.01 / 0.81 < 1 and K == 1


def test_factories_pass_their_arguments_on():
    from experiments.samplers._api import REGISTRY
    from experiments.samplers.poisson_midpoint import ddpm_alpha_bar
    pmm = REGISTRY["pmm_ddpm"].make(4, N=200, beta_min=2e-4, beta_max=0.03, stride=2)
    assert pmm.N == 200 and list(pmm.levels[:3]) == [200, 198, 196]
    assert pmm.alpha_bar == pytest.approx(ddpm_alpha_bar(200, 2e-4, 0.03)[pmm.levels], rel=1e-15, abs=0)
    plmc = REGISTRY["plmc"].make(10, K=4, horizon=3.0)
    assert plmc.alpha == pytest.approx(0.3, rel=1e-15, abs=0) and plmc.eta == pytest.approx(0.075, rel=1e-15, abs=0)
    pulmc = REGISTRY["pulmc"].make(10, K=4, gamma=3.0, horizon=3.0)
    assert pulmc.gamma == 3.0 and pulmc.alpha == pytest.approx(0.3, rel=1e-15, abs=0) and pulmc.K == 4
    assert pulmc.draws_per_step == 8                             # two Gaussian vectors per fine step
    assert REGISTRY["pulmc"].make(10, horizon=3.0).K == 10       # the default K
