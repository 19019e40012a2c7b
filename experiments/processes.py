r"""The OU reference process, conversions between time variables, and time grids.

Reference frame: every sampler takes and returns OU times; the forward process is the Ornstein-Uhlenbeck SDE

.. math::  dX_t = -X_t\,dt + \sqrt{2}\,dB_t,\qquad X_t = e^{-t}X_0 + \sqrt{1-e^{-2t}}\,Z .

Every other parameterisation is a deterministic function of the OU time ``t``:

==========================  ====================================  ===============================
quantity                    in OU time ``t``                      inverse
==========================  ====================================  ===============================
DDPM ``alpha_bar``          :math:`e^{-2t}`                       :math:`t=-\tfrac12\ln\bar\alpha`
Li & Jiao ``tau``           :math:`1-e^{-2t}`                     :math:`t=-\tfrac12\ln(1-\tau)`
log-SNR ``lam``             :math:`\ln(\bar\alpha/(1-\bar\alpha))=-\ln(e^{2t}-1)`  :math:`t=\tfrac12\ln(1+e^{-\lambda})`
half log-SNR (DPM-Solver)   :math:`\lambda/2=\ln(\alpha_t/\sigma_t)`
VE / EDM ``sigma_hat``      :math:`\sqrt{e^{2t}-1}=\sigma_t/\alpha_t`  :math:`t=\tfrac12\ln(1+\hat\sigma^2)`
==========================  ====================================  ===============================

All formulas use ``expm1``/``log1p`` so that small ``t`` keeps full relative precision.
Every grid is a float64 array of OU times, strictly decreasing, starting at ``T`` and ending
exactly at the early-stopping level ``delta``; ``n`` steps give ``n + 1`` points.
"""

from __future__ import annotations

import numpy as np

from experiments import _validate as v

# --- coefficients of the marginal X_t = alpha(t) X_0 + sigma(t) Z -------------------------------


def alpha(t):
    """Signal coefficient :math:`\\alpha_t = e^{-t}`."""
    return np.exp(-v.times("t", t))


def sigma(t):
    """Noise standard deviation :math:`\\sigma_t = \\sqrt{1-e^{-2t}}`."""
    return np.sqrt(-np.expm1(-2.0 * v.times("t", t)))


def sigma2(t):
    """Noise variance :math:`1-e^{-2t}` (= Li & Jiao's ``tau``)."""
    return -np.expm1(-2.0 * v.times("t", t))


# --- conversions ------------------------------------------------------------------------------


def alpha_bar_from_t(t):
    return np.exp(-2.0 * v.times("t", t))


def t_from_alpha_bar(alpha_bar):
    ab = v.finite_array("alpha_bar", alpha_bar)
    if np.any((ab <= 0) | (ab > 1)):
        raise ValueError("alpha_bar must lie in (0, 1]")
    return -0.5 * np.log(ab)


def tau_from_t(t):
    """Li & Jiao's noise level :math:`\\tau = 1 - e^{-2t}`."""
    return sigma2(t)


def t_from_tau(tau):
    tau = v.finite_array("tau", tau)
    if np.any((tau < 0) | (tau >= 1)):
        raise ValueError("tau must lie in [0, 1)")
    return -0.5 * np.log1p(-tau)


def log_snr_from_t(t):
    """Full log-SNR :math:`\\lambda = \\ln(\\bar\\alpha/(1-\\bar\\alpha)) = -\\ln(e^{2t}-1)`; needs t > 0."""
    t = v.times("t", t)
    if np.any(t <= 0):
        raise ValueError("t must be > 0 for the log-SNR (it is +infinity at t = 0)")
    return -2.0 * t - np.log(-np.expm1(-2.0 * t))  # = -ln(e^{2t} - 1), no overflow at large t


def t_from_log_snr(lam):
    lam = v.finite_array("lam", lam)
    return 0.5 * np.log1p(np.exp(-lam))


def half_log_snr_from_t(t):
    """DPM-Solver's :math:`\\lambda_t = \\ln(\\alpha_t/\\sigma_t)`, half the full log-SNR."""
    return 0.5 * log_snr_from_t(t)


def t_from_half_log_snr(lam_half):
    return t_from_log_snr(2.0 * v.finite_array("lam_half", lam_half))


def edm_sigma_from_t(t):
    """VE / EDM noise level :math:`\\hat\\sigma = \\sqrt{e^{2t}-1}`."""
    return np.sqrt(np.expm1(2.0 * v.times("t", t)))


def t_from_edm_sigma(sigma_hat):
    s = v.finite_array("sigma_hat", sigma_hat)
    if np.any(s < 0):
        raise ValueError("sigma_hat must be >= 0")
    return 0.5 * np.log1p(s * s)


# --- exact forward transition ----------------------------------------------------------------


def transition(t_from, t_to):
    r"""Coefficients of the exact forward step from level ``t_from`` to ``t_to >= t_from``.

    .. math::  X_{t_{to}} = e^{-(t_{to}-t_{from})} X_{t_{from}} + \sqrt{1-e^{-2(t_{to}-t_{from})}}\,Z

    Returns ``(coefficient, noise_std)``.
    """
    t_from = v.times("t_from", t_from)
    t_to = v.times("t_to", t_to)
    dt = t_to - t_from
    if np.any(dt < 0):
        raise ValueError("t_to must be >= t_from (the forward process only adds noise)")
    return np.exp(-dt), np.sqrt(-np.expm1(-2.0 * dt))


# --- time grids -------------------------------------------------------------------------------


def _grid_args(T, delta, n):
    T = v.positive("T", T)
    delta = v.positive("delta", delta)
    if delta >= T:
        raise ValueError(f"delta must be < T, got delta={delta}, T={T}")
    n = v.positive_int("n", n)
    return T, delta, n


def _finish(ts, T, delta):
    ts = np.asarray(ts, dtype=np.float64)
    ts[0], ts[-1] = T, delta  # hit the end points exactly
    if not np.all(np.diff(ts) < 0):
        raise ValueError("grid is not strictly decreasing; use fewer steps or a wider [delta, T]")
    return ts


def uniform_grid(T, delta, n):
    """``n`` equal steps in OU time from ``T`` down to ``delta``."""
    T, delta, n = _grid_args(T, delta, n)
    return _finish(np.linspace(T, delta, n + 1), T, delta)


def geometric_grid(T, delta, n):
    """Geometric in OU time: :math:`t_k = T (\\delta/T)^{k/n}`; steps shrink toward ``delta``."""
    T, delta, n = _grid_args(T, delta, n)
    return _finish(T * (delta / T) ** (np.arange(n + 1) / n), T, delta)


def log_snr_grid(T, delta, n):
    """Uniform in log-SNR between :math:`\\lambda(T)` and :math:`\\lambda(\\delta)` (DPM-Solver 'logSNR')."""
    T, delta, n = _grid_args(T, delta, n)
    lam = np.linspace(log_snr_from_t(T), log_snr_from_t(delta), n + 1)
    return _finish(t_from_log_snr(lam), T, delta)


def edm_grid(T, delta, n, rho=7.0):
    r"""EDM's rho-polynomial grid (Karras et al. 2022, eq. 5) in :math:`\hat\sigma`, mapped to OU time.

    .. math::  \hat\sigma_i = \big(\hat\sigma_{max}^{1/\rho} + \tfrac{i}{n}(\hat\sigma_{min}^{1/\rho}
               - \hat\sigma_{max}^{1/\rho})\big)^{\rho},\qquad i = 0..n
    """
    T, delta, n = _grid_args(T, delta, n)
    rho = v.positive("rho", rho)
    s_max, s_min = edm_sigma_from_t(T), edm_sigma_from_t(delta)
    i = np.arange(n + 1) / n
    s = (s_max ** (1 / rho) + i * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
    return _finish(t_from_edm_sigma(s), T, delta)


def exponential_sigma_grid(T, delta, n):
    """Song et al.'s VE schedule: geometric in :math:`\\hat\\sigma` (the rho -> infinity limit of EDM)."""
    T, delta, n = _grid_args(T, delta, n)
    s_max, s_min = edm_sigma_from_t(T), edm_sigma_from_t(delta)
    s = s_max * (s_min / s_max) ** (np.arange(n + 1) / n)
    return _finish(t_from_edm_sigma(s), T, delta)


GRIDS = {
    "uniform": uniform_grid,
    "geometric": geometric_grid,
    "log_snr": log_snr_grid,
    "edm": edm_grid,
    "exponential_sigma": exponential_sigma_grid,
}


def make_grid(kind: str, T, delta, n, **kwargs):
    """Build a grid by name (one of :data:`GRIDS`)."""
    if kind not in GRIDS:
        raise ValueError(f"grid must be one of {sorted(GRIDS)}, got {kind!r}")
    return GRIDS[kind](T, delta, n, **kwargs)


# --- the Li & Jiao randomised schedule ----------------------------------------------------------


def li_jiao_alpha_hat(T_iter, n_tail, c0, c1, *, with_complement=False):
    r"""Deterministic part of the Li & Jiao (ICLR 2025, Sec. 3.1) learning-rate schedule.

    .. math::  \hat\alpha_{T+1} = T^{-c_0},\qquad \hat\alpha_{t-1} = \hat\alpha_t + c\,\hat\alpha_t(1-\hat\alpha_t),
               \qquad c = c_1 \ln T / T,

    for indices ``t = T+1, T, ..., -n_tail`` (``n_tail = N/2``, the last half block; the recursion
    is continued below ``t = 1`` rather than clipped: our reading [R], since the last half block needs it).

    Returns ``alpha_hat`` ordered by *decreasing* index: ``alpha_hat[j]`` is :math:`\hat\alpha_{T+1-j}`,
    so it increases with ``j`` (noise decreases). Near the end :math:`\hat\alpha` is within a few ulps
    of 1, so the noise level :math:`1-\hat\alpha` is carried by its own recursion
    :math:`(1-\hat\alpha_{t-1}) = (1-\hat\alpha_t)(1 - c\,\hat\alpha_t)` rather than by subtraction;
    ``with_complement=True`` also returns it.
    """
    T_iter = v.positive_int("T_iter", T_iter, minimum=2)
    n_tail = v.positive_int("n_tail", n_tail, minimum=0)
    c0 = v.positive("c0", c0)
    c1 = v.positive("c1", c1)
    c = c1 * np.log(T_iter) / T_iter
    if c >= 1:
        raise ValueError(f"c1 * ln(T_iter) / T_iter must be < 1 (got {c:.3g}); lower c1 or raise T_iter")
    n_points = T_iter + 2 + n_tail
    a = np.empty(n_points)
    b = np.empty(n_points)  # b = 1 - a, kept to full relative precision
    a[0] = float(T_iter) ** (-c0)
    b[0] = -np.expm1(-c0 * np.log(T_iter))
    for j in range(1, n_points):
        a[j] = a[j - 1] + c * a[j - 1] * b[j - 1]
        b[j] = b[j - 1] * (1.0 - c * a[j - 1])
    if not (np.all(np.diff(b) < 0) and np.all(b > 0)):
        raise ValueError("the Li & Jiao recursion did not produce decreasing noise levels 1 - alpha_hat in (0, 1)")
    return (a, b) if with_complement else a


def li_jiao_random_nodes(alpha_hat, u):
    r"""One uniform node per grid interval: :math:`\bar\alpha_t \sim U[\hat\alpha_t, \hat\alpha_{t-1}]`.

    ``alpha_hat`` as returned by :func:`li_jiao_alpha_hat` (length ``n + 1``); ``u`` of shape
    ``(..., n)`` in [0, 1]. Returns ``alpha_bar`` of shape ``(..., n)``; node ``j`` lies in
    interval ``[alpha_hat[j], alpha_hat[j+1]]``. Uniform in alpha-bar is uniform in ``tau``.
    """
    a = v.finite_array("alpha_hat", alpha_hat, ndim=1)
    u = v.finite_array("u", u)
    if u.shape[-1] != a.size - 1:
        raise ValueError(f"u must have last dimension {a.size - 1} (one per interval), got {u.shape}")
    if np.any((u < 0) | (u > 1)):
        raise ValueError("u must lie in [0, 1]")
    return a[:-1] + u * np.diff(a)
