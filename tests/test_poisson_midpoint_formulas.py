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
    assert (float(a), float(b), float(c)) == pytest.approx(expect, rel=1e-14)


@pytest.mark.parametrize("d,eps,L", [(10, 0.1, 2.0), (10**6, 0.05, 3.0), (4, 0.5, 0.5)])
def test_plmc_step_prescription(d, eps, L):
    alpha, K = theorem_step_plmc(d, eps, L)
    want = min(eps ** (2 / 3) * L ** (-4 / 3), eps ** (2 / 3) * d ** (-1 / 3) / L)
    assert alpha == pytest.approx(want, rel=1e-14)
    assert K == max(math.ceil(want * L / eps**2), 1)


def test_plmc_step_count_is_at_least_one():
    alpha, K = theorem_step_plmc(10, 0.9, 0.01)          # alpha L / eps^2 < 1
    assert alpha * 0.01 / 0.81 < 1 and K == 1
