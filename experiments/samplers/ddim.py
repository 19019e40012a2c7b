r"""DDIM with eta = 0 (Song, Meng & Ermon 2021, eq. 12): the exact PF-ODE step with eps frozen.

From ``t`` to ``t' < t``, with :math:`\alpha_t=e^{-t}`, :math:`\sigma_t=\sqrt{1-e^{-2t}}` and
:math:`\hat\varepsilon = -\sigma_t s(x,t)`:

.. math::
   \hat x_0 = \frac{x - \sigma_t\hat\varepsilon}{\alpha_t},\qquad
   x' = \alpha_{t'}\hat x_0 + \sigma_{t'}\hat\varepsilon .

This equals DPM-Solver-1 and DPM-Solver++1 (an algebraic identity; tests/test_samplers_baselines.py).

==============  ========================
code            paper
==============  ========================
``eps_hat``     :math:`\hat\varepsilon_\theta(x_t, t)`
``x0_hat``      predicted :math:`x_0`
==============  ========================
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from experiments.samplers._api import Claim, LogFactor, SamplerSpec, register
from experiments.samplers._grid import DEFAULT_DELTA, DEFAULT_T, GridKernel, build_grid


class DDIM(GridKernel):
    name = "ddim"
    draws_per_step = 0

    def step(self, state, aux, k, noise, score):
        (x,) = state
        t, t_next = self.ts[k], self.ts[k + 1]
        a, s = np.exp(-t), np.sqrt(-np.expm1(-2 * t))
        a_next, s_next = np.exp(-t_next), np.sqrt(-np.expm1(-2 * t_next))
        eps_hat = -s * score(x, t)
        x0_hat = (x - s * eps_hat) / a
        return (a_next * x0_hat + s_next * eps_hat,)


def _make(steps, *, T=DEFAULT_T, delta=DEFAULT_DELTA, grid="log_snr"):
    return DDIM(build_grid(steps, T=T, delta=delta, grid=grid))


register(SamplerSpec(
    name="ddim",
    make=_make,
    family="ode",
    paper="Song, Meng & Ermon 2021 (eq. 12, eta = 0); rate: Li, Wei, Chi & Chen 2024 (arXiv 2408.02320)",
    cost_knob="steps",
    nfe=lambda steps, **_: float(steps),
    claim=Claim(
        paper="Li, Wei, Chi & Chen 2024 (arXiv 2408.02320)",
        theorem="PF-ODE (DDIM-type) sampler: TV <= eps after O(d / eps) steps",
        metric="tv", d_exp=Fraction(1), eps_exp=Fraction(1), logs="polylog", log_factors=(LogFactor("d/eps^2", 1, "[R] the horizon T = log(d/eps^2)/2 that the initialisation error needs; the paper's log power was not recovered"),),
    ),
    theory=lambda d, eps, L: {"T": max(2.0, 0.5 * float(np.log(d / eps**2))), "grid": "log_snr"},
    stochastic=False,
))
