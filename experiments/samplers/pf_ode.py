r"""Explicit Runge-Kutta steps on the probability-flow ODE in OU time: Euler and Heun.

The PF-ODE of the OU forward process, in reverse time ``r = T - t``:

.. math::  \frac{dx}{dr} = f(x, t) := x + s(x, t),\qquad t = T - r .

One step from level ``t`` to ``t' < t`` (``h = t - t'``):

* **Euler** (order 1, one score evaluation):  :math:`x' = x + h\,f(x, t)`.
* **Heun** (explicit trapezoid, order 2, two score evaluations):

  .. math::  \tilde x = x + h\,f(x, t),\qquad x' = x + \tfrac{h}{2}\big(f(x,t) + f(\tilde x, t')\big).

Unlike DDIM / DPM-Solver these are plain (not exponential) integrators: the linear part ``x`` is
discretised too. They are the "p-th order Runge-Kutta" samplers of Huang, Huang & Lin (2404.09730)
for p = 1, 2. Heun here is in OU time; EDM's Heun (:mod:`experiments.samplers.edm`) is the same
rule in the VE variable, a different method.

=============  ===================================
code           paper
=============  ===================================
``h``          step :math:`h = t_k - t_{k+1}`
``f``          PF-ODE drift :math:`x + s(x, t)` in reverse time
``x_e``        Euler predictor :math:`\tilde x`
=============  ===================================
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from experiments.samplers._api import Claim, LogFactor, SamplerSpec, register
from experiments.samplers._grid import DEFAULT_DELTA, DEFAULT_T, GridKernel, build_grid


class PFODEEuler(GridKernel):
    name = "pf_ode_euler"
    draws_per_step = 0

    def step(self, state, aux, k, noise, score):
        (x,) = state
        t, h = self.ts[k], self.ts[k] - self.ts[k + 1]
        return (x + h * (x + score(x, t)),)


class PFODEHeun(GridKernel):
    name = "pf_ode_heun"
    draws_per_step = 0

    def step(self, state, aux, k, noise, score):
        (x,) = state
        t, t_next = self.ts[k], self.ts[k + 1]
        h = t - t_next
        f = x + score(x, t)
        x_e = x + h * f
        f_e = x_e + score(x_e, t_next)
        return (x + 0.5 * h * (f + f_e),)


def _make_euler(steps, *, T=DEFAULT_T, delta=DEFAULT_DELTA, grid="log_snr"):
    return PFODEEuler(build_grid(steps, T=T, delta=delta, grid=grid))


def _make_heun(steps, *, T=DEFAULT_T, delta=DEFAULT_DELTA, grid="log_snr"):
    return PFODEHeun(build_grid(steps, T=T, delta=delta, grid=grid))


def _theory(d, eps, L):
    # T = log(d / eps^2) / 2 puts the initialisation error below eps (constant 1). Huang, Huang & Lin
    # use a uniform step in their time variable; the step count is the cost knob.
    return {"T": max(2.0, 0.5 * float(np.log(d / eps**2))), "grid": "uniform"}


def _rk_claim(p):
    return Claim(
        paper="Huang, Huang & Lin 2024 (arXiv 2404.09730)",
        theorem=f"p-th order Runge-Kutta on the PF-ODE, p = {p}: TV <= eps after "
                f"O(d^(1+1/p) eps^(-1/p)) steps (discretisation term d (d h)^p)",
        metric="tv", d_exp=Fraction(1) + Fraction(1, p), eps_exp=Fraction(1, p), L_exp=None,
        logs="polylog", log_factors=(LogFactor("d/eps^2", 1, "[R] the horizon T = log(d/eps^2)/2 that the initialisation error needs; the paper's log power was not recovered"),),
        notes="[S] rate as restated in summaries of arXiv 2404.09730 (bounded first and second derivatives of "
              "the score); "
              "reading Euler / Heun as their p = 1 / p = 2 instances is [R].",
    )


register(SamplerSpec(
    name="pf_ode_euler",
    make=_make_euler,
    family="ode",
    paper="Euler on the probability-flow ODE (Song et al. 2021); rate: Huang, Huang & Lin 2024 (2404.09730)",
    cost_knob="steps",
    nfe=lambda steps, **_: float(steps),
    claim=_rk_claim(1),
    theory=_theory,
    stochastic=False,
    notes="nfe = steps.",
))

register(SamplerSpec(
    name="pf_ode_heun",
    make=_make_heun,
    family="ode",
    paper="Heun (explicit trapezoid) on the probability-flow ODE in OU time; rate: Huang, Huang & Lin 2024",
    cost_knob="steps",
    nfe=lambda steps, **_: 2.0 * steps,
    claim=_rk_claim(2),
    theory=_theory,
    stochastic=False,
    notes="nfe = 2 * steps (Heun's corrector is applied on every step, the last included, "
          "because the grid ends at delta > 0).",
))
