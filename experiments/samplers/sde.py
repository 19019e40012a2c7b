r"""Two discretisations of the reverse SDE in OU time: Euler-Maruyama and the exponential integrator.

With terminal OU time ``T`` and reverse time ``r = T - t`` the reverse SDE of the OU forward
process is

.. math::  dy = \big[y + 2\,s(y, T-r)\big]\,dr + \sqrt{2}\,dW_r .

One step from level ``t`` to ``t' < t`` (``h = t - t'``, ``z ~ N(0, I)`` fresh each step), with the
score frozen at the left end:

* **Euler-Maruyama**:  :math:`y' = y + h\,(y + 2 s(y,t)) + \sqrt{2h}\,z`.
* **Exponential integrator** (the "exponential integrator" of the DDPM theory literature, Chen
  et al. 2209.11215, Benton et al. 2308.03686): the exact solution of
  :math:`dy = (y + 2 s(y_t, t))\,dr + \sqrt2\,dW` over ``[0, h]`` with the score frozen,

  .. math::  y' = e^{h} y + 2(e^{h}-1)\,s(y,t) + \sqrt{e^{2h}-1}\,z .

Both take one score evaluation per step and add noise at every step, the last included, because
the run stops at ``delta > 0`` and targets :math:`q_\delta`. The DDPM ancestral step (the other
classical SDE discretisation) is :mod:`experiments.samplers.ddpm`.

=============  ===================================
code           paper
=============  ===================================
``h``          step :math:`h = t_k - t_{k+1}` in OU time
``s``          score :math:`s(y, t_k) = \nabla\log q_{t_k}(y)`
``z``          fresh standard normal :math:`z_k`
=============  ===================================
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from experiments.samplers._api import Claim, LogFactor, SamplerSpec, register
from experiments.samplers._grid import DEFAULT_DELTA, DEFAULT_T, GridKernel, build_grid


class EulerMaruyama(GridKernel):
    name = "euler_maruyama"
    draws_per_step = 1

    def step(self, state, aux, k, noise, score):
        (y,) = state
        t, h = self.ts[k], self.ts[k] - self.ts[k + 1]
        s = score(y, t)
        z = noise.normal(y.shape[1])
        return (y + h * (y + 2.0 * s) + np.sqrt(2.0 * h) * z,)


class ExponentialIntegrator(GridKernel):
    name = "exponential_integrator"
    draws_per_step = 1

    def step(self, state, aux, k, noise, score):
        (y,) = state
        t, h = self.ts[k], self.ts[k] - self.ts[k + 1]
        s = score(y, t)
        z = noise.normal(y.shape[1])
        return (np.exp(h) * y + 2.0 * np.expm1(h) * s + np.sqrt(np.expm1(2.0 * h)) * z,)


def _make_em(steps, *, T=DEFAULT_T, delta=DEFAULT_DELTA, grid="log_snr"):
    return EulerMaruyama(build_grid(steps, T=T, delta=delta, grid=grid))


def _make_ei(steps, *, T=DEFAULT_T, delta=DEFAULT_DELTA, grid="log_snr"):
    return ExponentialIntegrator(build_grid(steps, T=T, delta=delta, grid=grid))


def _horizon(d, eps):
    # Initialisation error KL(q_T || N(0, I)) <= e^{-2T} (d + M2) <= eps^2 (constant 1):
    # T = log(d / eps^2) / 2, floored at 2 so that tiny d/eps^2 still gives a sensible horizon.
    return max(2.0, 0.5 * float(np.log(d / eps**2)))


def _theory_em(d, eps, L):
    # Chen et al. 2209.11215 (Thm 2): uniform step h <~ eps^2 / (L^2 d) on [delta, T], no early
    # stopping needed under L-smoothness; the step count is the cost knob, the grid is uniform.
    return {"T": _horizon(d, eps), "grid": "uniform"}


def _theory_ei(d, eps, L):
    # Benton et al. 2308.03686 (Thm 1 / Cor. 1): exponentially decaying steps toward delta,
    # h_k = kappa * min(1, t_k): uniform in t for t > 1 and geometric below; the log-SNR-uniform grid
    # has exactly this shape (lambda ~ -2t for large t, ~ -log(2t) for small t).
    return {"T": _horizon(d, eps), "grid": "log_snr"}


register(SamplerSpec(
    name="euler_maruyama",
    make=_make_em,
    family="sde",
    paper="Euler-Maruyama on the reverse SDE (Song et al. 2021, 'reverse diffusion' predictor); rate: "
          "Chen, Chewi, Li, Li, Salim & Zhang 2023 (arXiv 2209.11215)",
    cost_knob="steps",
    nfe=lambda steps, **_: float(steps),
    claim=Claim(
        paper="Chen, Chewi, Li, Li, Salim & Zhang 2023 (arXiv 2209.11215)",
        theorem="Theorem 2 (L-Lipschitz scores, finite second moment): TV <= eps after "
                "O(L^2 d / eps^2) steps",
        metric="tv", d_exp=Fraction(1), eps_exp=Fraction(2), L_exp=Fraction(2), logs="polylog",
        log_factors=(LogFactor("d/eps^2", 1, "[R] the horizon T = log(d/eps^2)/2 that the initialisation error needs; the paper's log power was not recovered"),),
        notes="[S] rate as restated in summaries of arXiv 2209.11215. The theorem is stated for the exponential "
              "integrator; applying it to Euler-Maruyama (which differs in the linear part by O(h^2) per step) is [R]. "
              "No paper claim specific to EM was retrieved.",
    ),
    theory=_theory_em,
    notes="nfe = steps. Unstable for few steps on stiff targets (large steps and a small data variance blow up).",
))

register(SamplerSpec(
    name="exponential_integrator",
    make=_make_ei,
    family="sde",
    paper="Exponential integrator of the reverse SDE with frozen score (Zhang & Chen 2022 DEIS; "
          "theory: Chen et al. 2209.11215, Benton et al. 2308.03686)",
    cost_knob="steps",
    nfe=lambda steps, **_: float(steps),
    claim=Claim(
        paper="Benton, De Bortoli, Doucet & Deligiannidis 2024 (arXiv 2308.03686)",
        theorem="Corollary 1 (finite second moment, early stopping delta): KL <= eps^2 after "
                "O(d log^2(d/delta) / eps^2) steps",
        metric="kl", d_exp=Fraction(1), eps_exp=Fraction(2), L_exp=None, logs="log^2(1/delta)",
        log_factors=(LogFactor("d", 2, "[S] log^2(d/delta) at a fixed early-stopping level delta"),),
        notes="[S] restated from the abstract of arXiv 2308.03686 and from summaries; KL <= eps^2. "
              "Chen, Lee & Lu 2211.01916 give the same d/eps^2 (their KL <= eps, read with eps -> eps^2).",
    ),
    theory=_theory_ei,
    notes="nfe = steps.",
))
