r"""The Poisson midpoint method (Kandasamy & Nagaraj, NeurIPS 2024, arXiv 2405.17068): PLMC, its
underdamped version PULMC, and PMM applied to the DDPM chain.

The generic template (the PLMC step of arXiv 2405.17068 as restated by the follow-up arXiv 2506.07614
[S]). A *fine* chain with affine steps :math:`X_{i+1} = A_i X_i + G_i\,b_i(X_i) + \Gamma_i Z_i` is
approximated, ``K`` fine steps at a time, by one coarse step that evaluates the drift once at the start,
:math:`g_0 = b_0(X)`, and at the points of a cheap interpolation selected by i.i.d.
:math:`H_i\sim\mathrm{Bernoulli}(1/K)`:

.. math::
   \hat X_0 = \tilde X_0 = X,\qquad
   \hat X_{i+1} = A_i\hat X_i + G_i g_0 + \Gamma_i Z_i,\qquad
   \tilde X_{i+1} = A_i\tilde X_i + G_i\big[g_0 + K H_i\,(b_i(\hat X_i) - g_0)\big] + \Gamma_i Z_i,

:math:`X' = \tilde X_K`, with the *same* :math:`Z_i` in both lines (for ``i = 0`` the bracket is
:math:`g_0`, since :math:`\hat X_0 = X`). Averaged over ``H`` the drift is that of ``K`` fine steps taken
along the interpolation. Cost per coarse step: 1 + Binomial(K-1, 1/K) drift evaluations, mean
:math:`2 - 1/K`. ``K = 1`` is the fine chain itself. :math:`H_1..H_{K-1}` are internal randomness: one
value per chain, shared by all coordinates, drawn inside the step with ``noise.bernoulli``; the score
is evaluated on all rows but counted with ``score(x, t, active=H_i)``, so the NFE is the realised count.

Fine chains:

* ``plmc`` (OLMC, target :math:`q_\ell`, fine step :math:`\eta = \alpha/K`): :math:`A = I`,
  :math:`G b = \eta\,s(x)`, :math:`\Gamma Z = \sqrt{2\eta}\,z`.
* ``pulmc`` (ULMC, state ``(x, v)``, friction :math:`\gamma`): the exponential-integrator step of
  :mod:`experiments.samplers.langevin` with step :math:`\eta`, :math:`b = s(x)`:
  :math:`A(x, v) = (x + E v, e^{-\gamma\eta}v)`, :math:`G b = ((\eta - E)b/\gamma, E b)`,
  :math:`\Gamma Z` the joint Gaussian increment (two draws per fine step).
* ``pmm_ddpm`` (the template applied to the DDPM chain: our reconstruction of the paper's section 5
  [R]): the N-step discrete DDPM chain (Ho et al.: linear :math:`\beta_n` from 1e-4 to 0.02,
  :math:`\bar\alpha_n = \prod_{i\le n}(1-\beta_i)`, level ``n`` at OU time :math:`t_n = -\tfrac12\ln\bar\alpha_n`),
  one step :math:`x_{n-1} = a_n x_n + b_n\hat\varepsilon(x_n, n) + c_n z`
  with :math:`\hat\varepsilon = -\sigma_{t_n}s(x, t_n)` and the coefficients of :func:`ddpm_coefficients`
  (``variant``: "small" = :math:`\sigma^2 = \tilde\beta`, "large" = :math:`\sigma^2 = \beta`,
  "euler_maruyama" = the reverse VP-SDE EM step; :math:`c_1 = 0`). Coarse steps take ``K' = min(K, m)``
  fine steps from level ``m``, with :math:`H\sim\mathrm{Bernoulli}(1/K')` and weight ``K'``; the drift
  at a midpoint uses the fine level ``m - j``, the frozen drift the coarse start level ``m``.
  Expected NFE: :math:`\sum_{\text{chunks}}(2 - 1/K')`, i.e. :math:`(2-1/K)N/K` when ``K`` divides ``N``.

==============  =====================================================
code            paper
==============  =====================================================
``alpha``       coarse step :math:`\alpha` (not the signal coefficient)
``K``           fine steps per coarse step
``eta``         fine step :math:`\eta = \alpha/K`
``H``           Bernoulli selections :math:`H_{t,i}`
``g0``          frozen drift :math:`b(X_t, t\alpha)`
``xhat, xtil``  cheap interpolation :math:`\hat X_{t,i}`, corrected iterate :math:`\tilde X_{t,i}`
``a, b, c``     DDPM coefficients :math:`a_n, b_n, c_n`
==============  =====================================================
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from experiments import _validate as v
from experiments import processes
from experiments.samplers import _limits as lim
from experiments.samplers._api import Claim, LogFactor, Kernel, SamplerSpec, register
from experiments.samplers.langevin import (
    DEFAULT_INIT_LEVEL,
    DEFAULT_LEVEL,
    _log,
    _p,
    step_and_levels,
    ulmc_covariance,
)

# --- the generic coarse step ----------------------------------------------------------------------


def poisson_midpoint_step(state, fine, H, K, noise, n_columns):
    """One coarse step of the template above.

    ``fine`` is a list of ``K'`` fine-step objects with methods ``drift(state, active)`` (evaluates
    :math:`b_i`; ``active`` is the (batch, 1) mask to count, or None), ``linear(state)`` (:math:`A_i`),
    ``push(b)`` (:math:`G_i b`, a state-shaped tuple) and ``increment(noise, n_columns)``
    (:math:`\\Gamma_i Z_i`). ``H`` is a (batch, K'-1) boolean array: ``H[:, i-1]`` is :math:`H_i`.
    """
    g0 = fine[0].drift(state, None)
    xhat, xtil = state, state
    for i, f in enumerate(fine):
        dz = f.increment(noise, n_columns)
        b = g0
        if i >= 1:
            h_i = H[:, i - 1 : i]
            if np.any(h_i):                          # branch on internal randomness only (law mode safe)
                b = g0 + (K * h_i) * (f.drift(xhat, h_i) - g0)
        lin_t, push_t, push_h, lin_h = f.linear(xtil), f.push(b), f.push(g0), f.linear(xhat)
        xtil = tuple(l + p + e for l, p, e in zip(lin_t, push_t, dz))
        xhat = tuple(l + p + e for l, p, e in zip(lin_h, push_h, dz))
    return xtil


def expected_nfe_per_coarse_step(K):
    """1 evaluation at the start plus Binomial(K-1, 1/K): 2 - 1/K."""
    return 2.0 - 1.0 / K


def _draw_H(noise, K):
    """H_1..H_{K-1} ~ Bernoulli(1/K), one per chain; none drawn when K = 1 (so K = 1 is the fine chain)."""
    if K == 1:
        return None
    return noise.bernoulli(1.0 / K, K - 1)


# --- PLMC (overdamped) ------------------------------------------------------------------------------


class _OLMCFine:
    def __init__(self, eta, level, score):
        self.eta, self.level, self.score = eta, level, score
        self.sd = np.sqrt(2.0 * eta)

    def drift(self, state, active):
        return self.score(state[0], self.level, active=active)

    def linear(self, state):
        return state

    def push(self, b):
        return (self.eta * b,)

    def increment(self, noise, n_columns):
        return (self.sd * noise.normal(n_columns),)


def _coarse_and_levels(steps, alpha, horizon, level, init_level):
    # the coarse step plays the role of LMC's h: given, or horizon / steps
    return step_and_levels(steps, alpha, horizon, level, init_level, step_name="alpha")


class PLMC(Kernel):
    name = "plmc"
    state_size = 1

    def __init__(self, steps, *, K=10, alpha=None, horizon=None, level=DEFAULT_LEVEL, init_level=DEFAULT_INIT_LEVEL):
        self.n_steps, self.alpha, self.level, self.init_level = _coarse_and_levels(steps, alpha, horizon, level, init_level)
        self.K = lim.count("K", K, maximum=lim.MAX_FINE, why="law mode probes 1 + state + K rows per draw")
        self.eta = self.alpha / self.K
        self.end_time = self.level
        self.draws_per_step = self.K

    def start_time(self, aux):
        return self.init_level

    def _fine(self, score):
        return [_OLMCFine(self.eta, self.level, score)] * self.K

    def step(self, state, aux, k, noise, score):
        H = _draw_H(noise, self.K)
        return poisson_midpoint_step(state, self._fine(score), H, self.K, noise, state[0].shape[1])


# --- PULMC (underdamped) ----------------------------------------------------------------------------


class _ULMCFine:
    def __init__(self, eta, gamma, level, score):
        self.level, self.score = level, score
        self.decay = np.exp(-gamma * eta)
        self.E = -np.expm1(-gamma * eta) / gamma
        self.gx = float(_p(gamma * eta)) / gamma**2
        var_x, cov, var_v = ulmc_covariance(gamma, eta)
        self.l_vv = np.sqrt(var_v)
        self.l_xv = cov / self.l_vv
        self.l_xx = np.sqrt(max(var_x - self.l_xv**2, 0.0))

    def drift(self, state, active):
        return self.score(state[0], self.level, active=active)

    def linear(self, state):
        x, vel = state
        return (x + self.E * vel, self.decay * vel)

    def push(self, b):
        return (self.gx * b, self.E * b)

    def increment(self, noise, n_columns):
        z1 = noise.normal(n_columns)
        z2 = noise.normal(n_columns)
        return (self.l_xv * z1 + self.l_xx * z2, self.l_vv * z1)


class PULMC(PLMC):
    name = "pulmc"
    state_size = 2

    def __init__(self, steps, *, gamma=2.0, **kw):
        super().__init__(steps, **kw)
        self.gamma = lim.friction("gamma", gamma)
        self.draws_per_step = 2 * self.K

    def init(self, x, aux, noise):
        return (x, noise.normal(x.shape[1]))        # v_0 ~ N(0, I)

    def _fine(self, score):
        return [_ULMCFine(self.eta, self.gamma, self.level, score)] * self.K


# --- PMM on the discrete DDPM chain -----------------------------------------------------------------

VARIANTS = ("small", "large", "euler_maruyama")


def ddpm_alpha_bar(N=1000, beta_min=1e-4, beta_max=0.02):
    """Ho et al.'s discrete schedule: alpha_bar[n] for n = 0..N (alpha_bar[0] = 1), linear betas."""
    N = lim.count("N", N, maximum=10**5, why="the DDPM chain length; law mode runs N / K coarse steps of K rows")
    beta_min = lim.in_range("beta_min", beta_min, lim.MIN_BETA, 1.0, low_open=False,
                            why="1 - beta_min must not round to 1: two equal noise levels divide by zero")
    if beta_min >= 1.0:
        raise ValueError(f"beta_min must be < 1, got {beta_min!r}")
    beta_max = v.in_open_interval("beta_max", beta_max, 0.0, 1.0)
    if beta_max < beta_min:
        raise ValueError(f"beta_max must be >= beta_min, got {beta_max} < {beta_min}")
    betas = np.linspace(beta_min, beta_max, N)
    return np.concatenate([[1.0], np.exp(np.cumsum(np.log1p(-betas)))])


def ddpm_coefficients(ab_from, ab_to, variant):
    r"""``(a, b, c)`` of one reverse step from level with :math:`\bar\alpha` = ``ab_from`` to ``ab_to``.

    :math:`\beta = 1 - \bar\alpha_{from}/\bar\alpha_{to}` (the respaced beta; the fine beta_n on the full
    chain), :math:`s = \sqrt{1-\bar\alpha_{from}}`:

    * ``"large"`` (Ho's :math:`\sigma^2 = \beta`): :math:`a = 1/\sqrt{1-\beta}`,
      :math:`b = -\beta/(\sqrt{1-\beta}\,s)`, :math:`c = \sqrt\beta`;
    * ``"small"`` (the posterior variance :math:`\tilde\beta`): the same ``a``, ``b`` and
      :math:`c = \sqrt{\beta(1-\bar\alpha_{to})/(1-\bar\alpha_{from})}`;
    * ``"euler_maruyama"`` (the reverse VP-SDE EM step): :math:`a = 2-\sqrt{1-\beta}`, :math:`b = -\beta/s`,
      :math:`c = \sqrt\beta`.

    ``c = 0`` on the last step (``ab_to = 1``).
    """
    beta = 1.0 - ab_from / ab_to
    s_from = np.sqrt(1.0 - ab_from)
    if variant == "euler_maruyama":
        a = 2.0 - np.sqrt(1.0 - beta)
        b = -beta / s_from
        c = np.sqrt(beta)
    else:
        a = 1.0 / np.sqrt(1.0 - beta)
        b = -beta / (np.sqrt(1.0 - beta) * s_from)
        c = np.sqrt(beta) if variant == "large" else np.sqrt(beta * (1.0 - ab_to) / (1.0 - ab_from))
    if ab_to == 1.0:
        c = 0.0
    return a, b, c


class _DDPMFine:
    def __init__(self, a, b, c, t, sigma, score):
        self.a, self.b, self.c, self.t, self.sigma, self.score = a, b, c, t, sigma, score

    def drift(self, state, active):
        return -self.sigma * self.score(state[0], self.t, active=active)     # eps_hat(x, n)

    def linear(self, state):
        return (self.a * state[0],)

    def push(self, e):
        return (self.b * e,)

    def increment(self, noise, n_columns):
        return (self.c * noise.normal(n_columns),)


class PMMDDPM(Kernel):
    name = "pmm_ddpm"
    state_size = 1

    def __init__(self, K, *, variant="small", N=1000, beta_min=1e-4, beta_max=0.02, stride=1):
        self.K = lim.count("K", K, maximum=lim.MAX_FINE, why="law mode probes 1 + K rows per draw")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        self.variant = variant
        ab = ddpm_alpha_bar(N, beta_min, beta_max)
        self.N = N = ab.size - 1
        stride = v.positive_int("stride", stride)
        if stride > N:
            raise ValueError(f"stride must be an integer in [1, N={N}], got {stride}")
        # fine chain: levels N, N - stride, ..., (>0), 0 (stride 1: the full N-step DDPM chain)
        self.levels = np.concatenate([np.arange(N, 0, -stride), [0]])
        self.alpha_bar = ab[self.levels]
        self.ts = processes.t_from_alpha_bar(self.alpha_bar)      # OU times; ts[-1] = 0
        n_fine = self.levels.size - 1
        self.coef = [ddpm_coefficients(self.alpha_bar[j], self.alpha_bar[j + 1], variant) for j in range(n_fine)]
        self.sigmas = np.sqrt(1.0 - self.alpha_bar)
        # coarse steps: chunks of K' = min(K, remaining) fine steps
        starts = np.arange(0, n_fine, self.K)
        self.chunks = [(int(s), int(min(s + self.K, n_fine))) for s in starts]
        self.n_steps = len(self.chunks)
        self.n_fine = n_fine
        self.draws_per_step = self.K
        self.end_time = float(self.ts[-1])

    def start_time(self, aux):
        return float(self.ts[0])

    def expected_nfe(self):
        return float(sum(expected_nfe_per_coarse_step(hi - lo) for lo, hi in self.chunks))

    def step(self, state, aux, k, noise, score):
        lo, hi = self.chunks[k]
        Kc = hi - lo
        fine = [_DDPMFine(*self.coef[j], self.ts[j], self.sigmas[j], score) for j in range(lo, hi)]
        H = _draw_H(noise, Kc)
        return poisson_midpoint_step(state, fine, H, Kc, noise, state[0].shape[1])


# --- registry -------------------------------------------------------------------------------------


def _make_plmc(steps, *, K=10, alpha=None, horizon=None, level=DEFAULT_LEVEL, init_level=DEFAULT_INIT_LEVEL):
    return PLMC(steps, K=K, alpha=alpha, horizon=horizon, level=level, init_level=init_level)


def _make_pulmc(steps, *, K=10, gamma=2.0, alpha=None, horizon=None, level=DEFAULT_LEVEL,
                init_level=DEFAULT_INIT_LEVEL):
    return PULMC(steps, K=K, gamma=gamma, alpha=alpha, horizon=horizon, level=level, init_level=init_level)


def _make_pmm_ddpm(K, *, variant="small", N=1000, beta_min=1e-4, beta_max=0.02, stride=1):
    return PMMDDPM(K, variant=variant, N=N, beta_min=beta_min, beta_max=beta_max, stride=stride)


def _nfe_plmc(steps, *, K=10, **_):
    return float(steps) * expected_nfe_per_coarse_step(v.positive_int("K", K))


def _nfe_pmm_ddpm(K, *, N=1000, stride=1, **_):
    K, N, stride = v.positive_int("K", K), v.positive_int("N", N), v.positive_int("stride", stride)
    n_fine = len(range(N, 0, -stride))
    sizes = [min(K, n_fine - s) for s in range(0, n_fine, K)]
    return float(sum(expected_nfe_per_coarse_step(k) for k in sizes))


def theorem_step_plmc(d, eps, L):
    """Srinivasan & Nagaraj 2025 (arXiv 2506.07614 [S]), overdamped PLMC, C = 1, m = 1:
    alpha = min(eps^{2/3} / L^{4/3}, eps^{2/3} / (d^{1/3} L)) and K = max(ceil(alpha L / eps^2), 1)."""
    alpha = min(eps ** (2 / 3) / L ** (4 / 3), eps ** (2 / 3) / (d ** (1 / 3) * L))
    return alpha, max(int(np.ceil(alpha * L / eps**2)), 1)


def _theory_plmc(d, eps, L):
    # K from the follow-up's prescription (theorem_step_plmc, constants 1); the coarse step comes from the
    # cost knob over the horizon log(d / eps^2) / m (the LMC horizon, m = 1), so that the search over
    # steps measures how large alpha may really be.
    _, K = theorem_step_plmc(d, eps, L)
    return {"K": K, "horizon": _log(d / eps**2)}


def _theory_pulmc(d, eps, L):
    # [R] gamma = sqrt(L) and the ULMC horizon (gamma / m) log(d / eps^2), as for ulmc; K = ceil(1/eps)
    # (constant 1) is a reconstruction: the underdamped prescription of [PMM] was not retrieved.
    gamma = float(np.sqrt(L))
    return {"gamma": gamma, "K": max(int(np.ceil(1.0 / eps)), 1), "horizon": gamma * _log(d / eps**2)}


_PMM = "Kandasamy & Nagaraj 2024, The Poisson Midpoint Method for Langevin Dynamics (NeurIPS 2024, arXiv 2405.17068)"
_FIXED = "Target: q_level (OU level `level`, default 0); start: q_init_level (default 3). "

register(SamplerSpec(
    name="plmc",
    make=_make_plmc,
    family="langevin",
    paper=_PMM,
    cost_knob="steps",
    nfe=_nfe_plmc,
    claim=Claim(
        paper=_PMM,
        theorem="[PMM] Table 1 under LSI: 'quadratic improvement in eps' over LMC (KL <= eps^2 in O~(kappa^2 d/eps^2) "
                "for LMC) -> eps^{-1}",
        metric="kl", d_exp=Fraction(1), eps_exp=Fraction(1), L_exp=Fraction(2), logs="polylog",
        log_factors=(LogFactor("d/eps^2", 1, "[R] the horizon log(d/eps^2)/m of the Langevin dynamics; the paper's log power was not recovered"),),
        notes="[S] only the quadratic speed-up in eps (Table 1 caption) is seen; the OLMC d- and kappa-exponents "
              "were not retrieved, so d^1 kappa^2 are LMC's (Vempala-Wibisono), an upper-bound reading [R]. "
              "Follow-up (Srinivasan & Nagaraj 2025, [S]): W2^2 <= eps^2 d/m in O~((kappa^{4/3} + kappa d^{1/3}) "
              "eps^{-2/3}); its step/K prescription is the theory preset. NFE counted as the realised number of "
              "calls, expectation (2 - 1/K) per coarse step.",
    ),
    theory=_theory_plmc,
    randomized=True,
    notes=_FIXED + "Cost knob = coarse steps; alpha given or alpha = horizon / steps (default horizon 10); K = 1 is LMC(alpha).",
))

register(SamplerSpec(
    name="pulmc",
    make=_make_pulmc,
    family="langevin",
    paper=_PMM,
    cost_knob="steps",
    nfe=_nfe_plmc,
    claim=Claim(
        paper=_PMM,
        theorem="ULMC-PLMC under LSI: TV <= eps in O~(kappa^{17/12} d^{5/12} / eps^{1/2})",
        metric="tv", d_exp=Fraction(5, 12), eps_exp=Fraction(1, 2), L_exp=Fraction(17, 12), logs="polylog",
        log_factors=(LogFactor("d/eps^2", 1, "[R] the horizon log(d/eps^2)/m of the Langevin dynamics; the paper's log power was not recovered"),),
        notes="[S] quoted by arXiv 2506.07614 (third-party comparison table); kappa = L/m, m = 1. "
              "Baseline ULMC O~(kappa^{3/2} d^{1/2}/eps) [R]. theory preset is [R].",
    ),
    theory=_theory_pulmc,
    randomized=True,
    notes=_FIXED + "Fine chain: exponential-integrator ULMC (friction gamma, default 2), v_0 ~ N(0, I).",
))

register(SamplerSpec(
    name="pmm_ddpm",
    make=_make_pmm_ddpm,
    family="sde",
    paper=_PMM + " (section 5, diffusion models); algorithm reconstructed: the PLMC template on the DDPM chain [R]",
    cost_knob="K",
    nfe=_nfe_pmm_ddpm,
    claim=None,
    theory=lambda d, eps, L: {"variant": "small", "N": 1000},   # no theorem: the paper's defaults
    randomized=True,
    notes="No complexity claim for the diffusion case: the paper's claims are qualitative: "
          "PMM with 50-80 network calls matches 1000-step DDPM (latent diffusion, FID), and beats DDIM / "
          "DPM-Solver at similar compute [S]. Cost knob K: NFE = sum over coarse steps of (2 - 1/K') "
          "(= (2 - 1/K) N / K when K | N) DECREASES as K grows; the error floor is that of the N-step DDPM "
          "fine chain. Fine chain: discrete DDPM levels n = N..0 (OU time t_n = -ln(alpha_bar_n)/2, ending "
          "at t_0 = 0, the data law); stride > 1 respaces it (stride with K = 1 is respaced DDPM).",
))
