r"""Langevin samplers for a *fixed* law: overdamped LMC, exponential-integrator ULMC, and Shen & Lee's
randomized-midpoint ULMC.

Target and time. A Langevin sampler targets one fixed law: the marginal :math:`q_\ell` of the target at
the OU level ``level`` (default 0, the data law), whose score is ``score(x, level)``. It starts from the
marginal at the larger OU level ``init_level`` (default 3; this is :meth:`start_time`, so the driver's
``start="exact"`` draws from :math:`q_{3}`) and its ``end_time`` is ``level``: the reference law is
:math:`q_\ell`. Inside, time is *Langevin* time (nothing to do with OU time): step ``h``.

Step size and cost. The cost knob is ``steps`` (one or two score calls per step). The step is either
given (``h``; the run then lasts ``steps * h``) or derived from a fixed Langevin-time ``horizon``
(``h = horizon / steps``, default horizon :data:`DEFAULT_HORIZON`). Giving the horizon makes "more
steps" mean "smaller h over the same time", so a complexity search over ``steps`` measures how small
``h`` must really be; the ``theory`` presets therefore return the theorem's horizon, and the theorem's
own step size is documented in ``theorem_step_*`` (hidden constants 1).

Updates (:math:`s(x) = \nabla\log q_\ell(x) = -\nabla f(x)`, :math:`z, z_i \sim N(0, I)`):

* ``lmc`` (overdamped Langevin, Euler-Maruyama / ULA): :math:`x' = x + h\,s(x) + \sqrt{2h}\,z`.
* ``ulmc`` (the standard exponential-integrator step; dynamics :math:`dx = v\,dt`,
  :math:`dv = -\gamma v\,dt + s(x)\,dt + \sqrt{2\gamma}\,dB`, stationary :math:`q_\ell\otimes N(0, I)`), the
  gradient frozen at :math:`x_n` and the linear part integrated exactly, with :math:`E = (1-e^{-\gamma h})/\gamma`:

  .. math::
     x' = x + E v + \frac{h - E}{\gamma} s(x) + \xi_x,\qquad v' = e^{-\gamma h} v + E\,s(x) + \xi_v,

  :math:`(\xi_x,\xi_v)` per coordinate N(0, :func:`ulmc_covariance`), sampled as a Cholesky factor times
  two standard draws. :math:`v_0\sim N(0, I)` (one draw in ``init``).
* ``shen_lee`` (Shen & Lee 2019, arXiv 1909.05503; :math:`dx = v\,dt`,
  :math:`dv = -2v\,dt - u\nabla f\,dt + 2\sqrt{u}\,dB`, stationary :math:`q_\ell\otimes N(0, uI)`),
  with :math:`\alpha\sim U[0,1]` (one per step and chain) and :math:`(W_1, W_2, W_3)\sim N(0, C(h,\alpha h))`
  per coordinate (:func:`shen_lee_covariance`, 3x3 Cholesky from three standard draws):

  .. math::
     x_{mid} &= x + \tfrac12(1-e^{-2\alpha h})v + \tfrac12 u(\alpha h - \tfrac12(1-e^{-2\alpha h}))s(x) + \sqrt u W_1\\
     x' &= x + \tfrac12(1-e^{-2h})v + \tfrac12 u h(1-e^{-2(1-\alpha)h})s(x_{mid}) + \sqrt u W_2\\
     v' &= e^{-2h}v + u h e^{-2(1-\alpha)h}s(x_{mid}) + 2\sqrt u W_3 .

  Two score calls per step; :math:`v_0 = 0`, our reading of the initialisation in the paper's theorem [R].

==============  =====================================================
code            paper
==============  =====================================================
``h``           step size (LMC :math:`h`/:math:`\eta`; Shen-Lee :math:`h`)
``gamma``       friction :math:`\gamma` (ULMC); Shen-Lee fixes it to 2
``u``           Shen-Lee's :math:`u = 1/L`
``alpha``       Shen-Lee's random midpoint fraction :math:`\alpha`
``W1, W2, W3``  Shen-Lee's Brownian integrals
``xi_x, xi_v``  ULMC's joint Gaussian increments
==============  =====================================================
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from experiments import _validate as v
from experiments.samplers import _limits as lim
from experiments.samplers._api import Claim, LogFactor, Kernel, SamplerSpec, register

#: default Langevin-time horizon when neither ``h`` nor ``horizon`` is given
DEFAULT_HORIZON = 10.0
#: default OU level of the target law and of the initial law
DEFAULT_LEVEL = 0.0
DEFAULT_INIT_LEVEL = 3.0

# --- numerically stable pieces of the Brownian-integral covariances -------------------------------

_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)


def _q(x):
    r""":math:`q(x) = \int_0^x (1-e^{-r})^2 dr = x - 2(1-e^{-x}) + (1-e^{-2x})/2` (>= 0, ~ x^3/3).

    The closed form cancels for small ``x``; there a 16-point Gauss-Legendre rule on [0, x] (exact to
    rounding for this entire integrand on an interval of length <= 0.5) is used instead.
    """
    x = np.asarray(x, dtype=np.float64)
    closed = x + 2.0 * np.expm1(-x) - 0.5 * np.expm1(-2.0 * x)
    xs = np.minimum(x, 0.5)[..., None]
    r = 0.5 * xs * (_GL_X + 1.0)
    quad = 0.5 * xs[..., 0] * np.sum(_GL_W * np.expm1(-r) ** 2, axis=-1)
    return np.where(x > 0.5, closed, quad)


def _p(x):
    r""":math:`p(x) = \int_0^x (1-e^{-r}) dr = x - (1-e^{-x})` (>= 0, ~ x^2/2); Gauss-Legendre for x <= 0.5."""
    x = np.asarray(x, dtype=np.float64)
    closed = x + np.expm1(-x)
    xs = np.minimum(x, 0.5)[..., None]
    r = 0.5 * xs * (_GL_X + 1.0)
    quad = 0.5 * xs[..., 0] * np.sum(_GL_W * -np.expm1(-r), axis=-1)
    return np.where(x > 0.5, closed, quad)


def ulmc_covariance(gamma, h):
    r"""Per-coordinate covariance of ULMC's increments over one step (the linear part integrated exactly).

    :math:`\xi_x = \sqrt{2\gamma}\int_0^h E(h-s)\,dB_s`, :math:`\xi_v = \sqrt{2\gamma}\int_0^h e^{-\gamma(h-s)}dB_s`,
    :math:`E(r) = (1-e^{-\gamma r})/\gamma`:

    .. math::
       \mathrm{Var}\,\xi_x = \tfrac{2}{\gamma}\big(h - 2E + \tfrac{1-e^{-2\gamma h}}{2\gamma}\big) = \tfrac{2}{\gamma^2}q(\gamma h),\quad
       \mathrm{Cov} = \tfrac{(1-e^{-\gamma h})^2}{\gamma},\quad \mathrm{Var}\,\xi_v = 1 - e^{-2\gamma h}.

    Returns ``(var_x, cov_xv, var_v)``.
    """
    gamma = v.positive("gamma", gamma)
    h = v.positive("h", h)
    x = gamma * h
    return 2.0 * _q(x) / gamma**2, np.expm1(-x) ** 2 / gamma, -np.expm1(-2.0 * x)


def shen_lee_covariance(h, a):
    r"""Covariance ``C(h, a)`` of Shen & Lee's :math:`(W_1, W_2, W_3)` per coordinate.

    :math:`W_1 = \int_0^a(1-e^{-2(a-s)})dB_s`, :math:`W_2 = \int_0^h(1-e^{-2(h-s)})dB_s`,
    :math:`W_3 = \int_0^h e^{-2(h-s)}dB_s`, ``0 <= a <= h``. Every entry is written as a sum of
    non-negative terms (no cancellation):

    .. math::
       C_{11} = \tfrac12 q(2a),\ C_{22} = \tfrac12 q(2h),\ C_{33} = \tfrac14(1-e^{-4h}),\
       C_{23} = \tfrac14(1-e^{-2h})^2,\
       C_{13} = \tfrac14 e^{-2(h-a)}(1-e^{-2a})^2,\
       C_{12} = \tfrac12 q(2a) + \tfrac14(1-e^{-2(h-a)})(1-e^{-2a})^2 .

    These equal the expanded closed forms, e.g. :math:`C_{11} = a - (1-e^{-2a}) + (1-e^{-4a})/4`, which
    cancel catastrophically for small arguments (the tests compare both with quadrature). ``a`` may be an
    array (one value per row); returns the six entries ``(C11, C12, C13, C22, C23, C33)`` broadcast together.
    """
    h = np.asarray(h, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    e2a = np.expm1(-2.0 * a) ** 2 / 4.0
    c11 = 0.5 * _q(2.0 * a)
    c13 = np.exp(-2.0 * (h - a)) * e2a
    c12 = c11 - np.expm1(-2.0 * (h - a)) * e2a
    c22 = 0.5 * _q(2.0 * h)
    c23 = np.expm1(-2.0 * h) ** 2 / 4.0
    c33 = -np.expm1(-4.0 * h) / 4.0
    return np.broadcast_arrays(c11, c12, c13, c22, c23, c33)


def _sqrt_pivot(d):
    return np.sqrt(np.maximum(d, 0.0))


def _safe_div(num, den):
    den = np.asarray(den, dtype=np.float64)
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), den)
    out = np.zeros(num.shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


def cholesky3(c11, c12, c13, c22, c23, c33):
    """Lower Cholesky factor of a batch of 3x3 PSD matrices, entrywise; singular pivots give zero columns.

    Returns ``(l11, l21, l31, l22, l32, l33)``. Pivots are clipped at 0, so a rank-deficient matrix
    (Shen-Lee's ``C`` at ``a = 0`` or ``a = h``, where ``W1 = 0`` or ``W1 = W2``) is factored exactly.
    """
    l11 = _sqrt_pivot(c11)
    l21 = _safe_div(c12, l11)
    l31 = _safe_div(c13, l11)
    l22 = _sqrt_pivot(c22 - l21**2)
    l32 = _safe_div(c23 - l21 * l31, l22)
    l33 = _sqrt_pivot(c33 - l31**2 - l32**2)
    return l11, l21, l31, l22, l32, l33


# --- parameters shared by the fixed-level samplers -----------------------------------------------


def step_and_levels(steps, h, horizon, level, init_level, *, step_name="h"):
    """Check the common parameters; return ``(steps, h, level, init_level)``.

    Exactly one of ``h`` (step size) and ``horizon`` (total Langevin time, ``h = horizon / steps``) may be
    given; with neither, ``horizon = DEFAULT_HORIZON``.

    Bounds (:mod:`experiments.samplers._limits`): ``steps <= 10**7``, ``0 < h <= 10`` (also for
    ``h = horizon / steps``), ``horizon <= 1e4``, ``0 <= level < init_level <= 50`` (OU levels).
    """
    steps = lim.count("steps", steps)
    if h is not None and horizon is not None:
        raise ValueError(f"give at most one of {step_name} (step size) and horizon ({step_name} = horizon / steps), not both")
    if h is not None:
        h = lim.langevin_step(step_name, h)
    else:
        horizon = lim.langevin_horizon("horizon", DEFAULT_HORIZON if horizon is None else horizon)
        h = horizon / steps
        if h > lim.MAX_LANGEVIN_STEP:
            raise ValueError(f"horizon / steps (the step {step_name}) must be <= {lim.MAX_LANGEVIN_STEP:g}, got "
                             f"horizon={horizon!r}, steps={steps} (a step beyond the stability limit only overflows)")
        if h <= 0:
            raise ValueError(f"horizon / steps (the step {step_name}) underflows to 0, got horizon={horizon!r}")
    level = v.nonnegative("level", level)
    init_level = lim.horizon_T("init_level", init_level)
    if init_level <= level:
        raise ValueError(f"init_level must be > level (start from a noisier law), got init_level={init_level}, level={level}")
    return steps, h, level, init_level


class FixedLevelKernel(Kernel):
    """Base for samplers of the fixed law ``q_level``, started at ``q_init_level``."""

    def __init__(self, steps, *, h=None, horizon=None, level=DEFAULT_LEVEL, init_level=DEFAULT_INIT_LEVEL):
        self.n_steps, self.h, self.level, self.init_level = step_and_levels(steps, h, horizon, level, init_level)
        self.end_time = self.level

    def start_time(self, aux):
        return self.init_level


# --- overdamped LMC -------------------------------------------------------------------------------


class LMC(FixedLevelKernel):
    name = "lmc"
    draws_per_step = 1

    def step(self, state, aux, k, noise, score):
        (x,) = state
        h = self.h
        return (x + h * score(x, self.level) + np.sqrt(2.0 * h) * noise.normal(x.shape[1]),)


# --- exponential-integrator ULMC ------------------------------------------------------------------


class ULMC(FixedLevelKernel):
    name = "ulmc"
    state_size = 2
    draws_per_step = 2

    def __init__(self, steps, *, gamma=2.0, **kw):
        super().__init__(steps, **kw)
        self.gamma = lim.friction("gamma", gamma)
        g, h = self.gamma, self.h
        self.decay = np.exp(-g * h)
        self.E = -np.expm1(-g * h) / g
        self.gx = float(_p(g * h)) / g**2            # (h - E) / gamma, without cancellation
        var_x, cov, var_v = ulmc_covariance(g, h)
        # Cholesky of [[var_v, cov], [cov, var_x]] (v first: var_v is the well-conditioned pivot)
        self.l_vv = np.sqrt(var_v)
        self.l_xv = cov / self.l_vv
        self.l_xx = np.sqrt(max(var_x - self.l_xv**2, 0.0))

    def init(self, x, aux, noise):
        return (x, noise.normal(x.shape[1]))

    def step(self, state, aux, k, noise, score):
        x, vel = state
        s = score(x, self.level)
        z1 = noise.normal(x.shape[1])
        z2 = noise.normal(x.shape[1])
        xi_v = self.l_vv * z1
        xi_x = self.l_xv * z1 + self.l_xx * z2
        x_new = x + self.E * vel + self.gx * s + xi_x
        v_new = self.decay * vel + self.E * s + xi_v
        return (x_new, v_new)


# --- Shen & Lee randomized-midpoint ULMC ------------------------------------------------------------


class ShenLee(FixedLevelKernel):
    name = "shen_lee"
    state_size = 2
    draws_per_step = 3

    def __init__(self, steps, *, u=1.0, **kw):
        super().__init__(steps, **kw)
        self.u = lim.in_range("u", u, *lim.U_RANGE, why="Shen-Lee's u = 1/L multiplies the score")

    def init(self, x, aux, noise):
        return (x, np.zeros_like(x))                 # v_0 = 0 (Shen & Lee's initialisation)

    def brownian(self, h, a, noise, n_columns):
        """(W1, W2, W3) with covariance C(h, a) per coordinate, from three standard draws."""
        l11, l21, l31, l22, l32, l33 = cholesky3(*shen_lee_covariance(h, a))
        z1, z2, z3 = (noise.normal(n_columns) for _ in range(3))
        return l11 * z1, l21 * z1 + l22 * z2, l31 * z1 + l32 * z2 + l33 * z3

    def step(self, state, aux, k, noise, score):
        x, vel = state
        h, u, ru = self.h, self.u, np.sqrt(self.u)
        alpha = noise.uniform(1)                     # (batch, 1): one midpoint per step and chain
        a = alpha * h
        W1, W2, W3 = self.brownian(h, a, noise, x.shape[1])
        one_minus_e2a = -np.expm1(-2.0 * a)
        frozen = 0.25 * _p(2.0 * a)                  # (a - (1 - e^{-2a})/2) / 2
        x_mid = x + 0.5 * one_minus_e2a * vel + u * frozen * score(x, self.level) + ru * W1
        g = score(x_mid, self.level)
        rest = np.exp(-2.0 * (h - a))                # e^{-2(1-alpha)h}
        x_new = x - 0.5 * np.expm1(-2.0 * h) * vel - 0.5 * u * h * np.expm1(-2.0 * (h - a)) * g + ru * W2
        v_new = np.exp(-2.0 * h) * vel + u * h * rest * g + 2.0 * ru * W3
        return (x_new, v_new)


# --- registry -------------------------------------------------------------------------------------


def _kw(h, horizon, level, init_level):
    return dict(h=h, horizon=horizon, level=level, init_level=init_level)


def _make_lmc(steps, *, h=None, horizon=None, level=DEFAULT_LEVEL, init_level=DEFAULT_INIT_LEVEL):
    return LMC(steps, **_kw(h, horizon, level, init_level))


def _make_ulmc(steps, *, gamma=2.0, h=None, horizon=None, level=DEFAULT_LEVEL, init_level=DEFAULT_INIT_LEVEL):
    return ULMC(steps, gamma=gamma, **_kw(h, horizon, level, init_level))


def _make_shen_lee(steps, *, u=1.0, h=None, horizon=None, level=DEFAULT_LEVEL, init_level=DEFAULT_INIT_LEVEL):
    return ShenLee(steps, u=u, **_kw(h, horizon, level, init_level))


def _log(x):
    return float(np.log(max(x, np.e)))              # log factors floored at 1


# Theory presets. The strong-convexity / LSI constant m is not an argument of theory(d, eps, L): it is
# set to 1 (a hidden constant), so kappa = L / m = max(L, 1). All other hidden constants are 1.

def theorem_step_lmc(d, eps, L):
    """Vempala & Wibisono 2019: KL <= delta needs h <= m delta / (16 d L^2); delta = eps^2, constants 1."""
    return eps**2 / (d * L**2)


def _theory_lmc(d, eps, L):
    # Vempala-Wibisono: KL(rho_N | pi) <= e^{-m h N} KL_0 + O(h d L^2 / m). Horizon h N = log(KL_0 / eps^2)/m
    # with KL_0 ~ d (constant 1, m = 1). The theorem's step is theorem_step_lmc; N = horizon / h.
    return {"horizon": _log(d / eps**2)}


def theorem_step_ulmc(d, eps, L):
    """Zhang et al. 2023 (LSI, TV <= eps): h ~ eps / (sqrt(L) sqrt(kappa) sqrt(d)), constants 1, m = 1."""
    kappa = max(L, 1.0)
    return eps / (np.sqrt(L) * np.sqrt(kappa) * np.sqrt(d))


def _theory_ulmc(d, eps, L):
    # friction gamma = sqrt(L) [R, the convention gamma ~ sqrt(L) of Chen et al. 2023's ULMC corrector]; the
    # continuous dynamics contracts at rate ~ m / gamma, so the horizon is (gamma / m) log(d / eps^2) (constants
    # 1, m = 1).
    # With the theorem's step theorem_step_ulmc this gives N = kappa^{3/2} sqrt(d) / eps up to logs.
    gamma = float(np.sqrt(L))
    return {"gamma": gamma, "horizon": gamma * _log(d / eps**2)}


def theorem_step_shen_lee(d, eps, L):
    """Shen & Lee 2019, step size as we read it [R], C = 1, with the *relative* accuracy eps_rel = eps / sqrt(d):
    h = min(eps_rel^{1/3} kappa^{-1/6} log^{-1/6}(1/eps_rel), eps_rel^{2/3} log^{-1/3}(1/eps_rel))."""
    kappa = max(L, 1.0)
    er = eps / np.sqrt(d)
    lg = _log(1.0 / er)
    return min(er ** (1 / 3) * kappa ** (-1 / 6) * lg ** (-1 / 6), er ** (2 / 3) * lg ** (-1 / 3))


def _theory_shen_lee(d, eps, L):
    # u = 1/L; horizon N h = C' kappa log(1/eps_rel), C' = 1, eps_rel = eps / sqrt(d) (absolute W2 <= eps
    # with m = 1 is W2 <= eps_rel sqrt(d / m)). In Shen-Lee time the dynamics contracts at rate ~ 1/kappa.
    kappa = max(L, 1.0)
    return {"u": 1.0 / L, "horizon": kappa * _log(np.sqrt(d) / eps)}


_FIXED = "Target: q_level (OU level `level`, default 0 = data law); start: q_init_level (default 3). "

register(SamplerSpec(
    name="lmc",
    make=_make_lmc,
    family="langevin",
    paper="overdamped Langevin Monte Carlo (ULA); rate: Vempala & Wibisono 2019 (arXiv 1903.08568)",
    cost_knob="steps",
    nfe=lambda steps, **_: float(steps),
    claim=Claim(
        paper="Vempala & Wibisono 2019 (arXiv 1903.08568)",
        theorem="Theorem 1 (LSI, L-smooth): KL <= delta after O~(kappa^2 d / delta) steps; delta = eps^2",
        metric="kl", d_exp=Fraction(1), eps_exp=Fraction(2), L_exp=Fraction(2), logs="log(1/eps)",
        log_factors=(LogFactor("1/eps", 1, "[R] the horizon log(KL_0/eps^2) with KL_0 fixed"),),
        notes="[R] rate recalled from the literature, not re-read in the paper; kappa = L/m with m = 1; "
              "KL <= eps^2 (TV ~ eps by Pinsker). Baseline for PLMC.",
    ),
    theory=_theory_lmc,
    notes=_FIXED + "Cost knob steps; h given, or h = horizon / steps (default horizon 10).",
))

register(SamplerSpec(
    name="ulmc",
    make=_make_ulmc,
    family="langevin",
    paper="exponential-integrator underdamped Langevin; rate: Zhang, Chewi, Li, "
          "Balasubramanian & Erdogdu 2023 (arXiv 2302.08049)",
    cost_knob="steps",
    nfe=lambda steps, **_: float(steps),
    claim=Claim(
        paper="Zhang, Chewi, Li, Balasubramanian & Erdogdu 2023 (arXiv 2302.08049)",
        theorem="ULMC under LSI: TV <= eps after O~(kappa^{3/2} sqrt(d) / eps) steps",
        metric="tv", d_exp=Fraction(1, 2), eps_exp=Fraction(1), L_exp=Fraction(3, 2), logs="polylog",
        log_factors=(LogFactor("d/eps^2", 1, "[R] the horizon log(d/eps^2)/m of the Langevin dynamics; the paper's log power was not recovered"),),
        notes="[R] the ULMC baseline rate that Kandasamy & Nagaraj (arXiv 2405.17068) compare against, as we "
              "read it; kappa = L/m, m = 1.",
    ),
    theory=_theory_ulmc,
    notes=_FIXED + "v_0 ~ N(0, I); friction gamma (default 2).",
))

register(SamplerSpec(
    name="shen_lee",
    make=_make_shen_lee,
    family="langevin",
    paper="Shen & Lee 2019, The Randomized Midpoint Method for Log-Concave Sampling (arXiv 1909.05503)",
    cost_knob="steps",
    nfe=lambda steps, **_: 2.0 * float(steps),
    claim=Claim(
        paper="Shen & Lee 2019 (arXiv 1909.05503)",
        theorem="main theorem: W2 <= eps sqrt(d/m) after O~(kappa^{7/6} eps^{-1/3} + kappa eps^{-2/3}) steps",
        metric="w2", d_exp=Fraction(1, 3), eps_exp=Fraction(2, 3), L_exp=Fraction(1), logs="polylog",
        log_factors=(LogFactor("d/eps^2", 1, "[R] the horizon log(d/eps^2)/m of the Langevin dynamics; the paper's log power was not recovered"),),
        notes="[S] rate from the abstract. The paper's eps is RELATIVE (W2 <= eps sqrt(d/m)); in absolute terms "
              "(W2 <= eps / sqrt(m), m = 1) it reads kappa^{7/6} d^{1/6} eps^{-1/3} + kappa d^{1/3} eps^{-2/3}; "
              "the exponents here are the second term, dominant for small eps. 2 score calls per step.",
    ),
    theory=_theory_shen_lee,
    randomized=True,
    notes=_FIXED + "gamma = 2 and u = 1/L (Shen-Lee scaling); v_0 = 0 as in the paper [R]; one uniform "
                   "midpoint per step and chain.",
))
