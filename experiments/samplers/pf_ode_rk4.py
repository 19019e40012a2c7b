r"""Classical fourth-order Runge-Kutta on the probability-flow ODE in OU time.

The worked example of paper_notes.md, "How to add a sampler": one small kernel, its claim, its tests
(tests/test_sampler_pf_ode_rk4.py).

PF-ODE in reverse time (see :mod:`experiments.samplers.pf_ode`): :math:`dx/dr = f(x, t) := x + s(x, t)`, ``t = T - r``.
One step from ``t`` to ``t' = t - h`` (Kutta 1901; any numerical-analysis text):

.. math::
   k_1 = f(x, t),\quad k_2 = f(x + \tfrac h2 k_1, t - \tfrac h2),\quad
   k_3 = f(x + \tfrac h2 k_2, t - \tfrac h2),\quad k_4 = f(x + h k_3, t'),

.. math::  x' = x + \tfrac h6 (k_1 + 2k_2 + 2k_3 + k_4).

Four score evaluations per step; global order 4. Rate claim: the p = 4 instance of Huang, Huang & Lin's
p-th order Runge-Kutta theorem (reading RK4 as their instance is [R], as for Euler and Heun).

=============  ===================================
code           paper
=============  ===================================
``h``          step :math:`h = t_k - t_{k+1}`
``f``          PF-ODE drift :math:`x + s(x, t)` in reverse time
``k1..k4``     the stages :math:`k_1..k_4`
=============  ===================================
"""

from __future__ import annotations

from experiments.samplers._api import SamplerSpec, register
from experiments.samplers._grid import DEFAULT_DELTA, DEFAULT_T, GridKernel, build_grid
from experiments.samplers.pf_ode import _rk_claim, _theory


class PFODERK4(GridKernel):
    name = "pf_ode_rk4"
    draws_per_step = 0

    def step(self, state, aux, k, noise, score):
        (x,) = state
        t, t_next = self.ts[k], self.ts[k + 1]
        h, t_mid = t - t_next, 0.5 * (t + t_next)

        def f(y, s):
            return y + score(y, s)

        k1 = f(x, t)
        k2 = f(x + 0.5 * h * k1, t_mid)
        k3 = f(x + 0.5 * h * k2, t_mid)
        k4 = f(x + h * k3, t_next)
        return (x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4),)


def _make(steps, *, T=DEFAULT_T, delta=DEFAULT_DELTA, grid="log_snr"):
    return PFODERK4(build_grid(steps, T=T, delta=delta, grid=grid))


register(SamplerSpec(
    name="pf_ode_rk4",
    make=_make,
    family="ode",
    paper="classical RK4 on the probability-flow ODE in OU time; rate: Huang, Huang & Lin 2024 (2404.09730)",
    cost_knob="steps",
    nfe=lambda steps, **_: 4.0 * steps,
    claim=_rk_claim(4),
    theory=_theory,
    stochastic=False,
    notes="nfe = 4 * steps.",
))
