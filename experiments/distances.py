r"""Distances between sampler output laws and targets, exact or Monte Carlo, at any dimension.

Inputs come from :class:`experiments.laws.GaussianColumnLaw`: given internal
draw ``m`` the output is the product law :math:`P_m = \bigotimes_g N(\mu_{mg}, s^2_{mg})^{\otimes k_g}`;
the target is :math:`Q = \bigotimes_g N(b_g, r^2_g)^{\otimes k_g}`; the dimension is :math:`d=\sum_g k_g`
(up to 1e9 and beyond: nothing here costs more at large ``d``).

Two laws of a randomised sampler, both reported and labelled (the theorems bound the annealed one):

* **quenched**: :math:`\frac1M\sum_m D(P_m, Q)` with its standard error over the ``M`` internal draws;
* **annealed**: :math:`D(\bar P, Q)`, :math:`\bar P = \frac1M\sum_m P_m`, the sampler's real output law.
  The ``M`` draws of internal randomness are themselves a Monte Carlo approximation of the true mixture
  over the internal randomness; :func:`annealed_tv_stability` reports the value on nested subsets
  (M/4, M/2, M) to check that this approximation is stable. By convexity quenched >= annealed.

Standardised coordinates (used throughout, and the reason huge ``k`` is well conditioned). Per group,
relative to the target column :math:`N(b, r^2)`:

.. math::
   \delta = s^2/r^2 - 1,\qquad \Delta = \sqrt{k}\,(\mu - b)/r,

sufficient statistics :math:`U=\sqrt{k}(\bar x - b)/r` and :math:`T = \sum_i (x_i-\bar x)^2/r^2`,
:math:`W = T - (k-1)`. Under Q: :math:`U\sim N(0,1)`, :math:`T\sim\chi^2_{k-1}`; under P:
:math:`U\sim N(\Delta, 1+\delta)`, :math:`T\sim(1+\delta)\chi^2_{k-1}`. The log-likelihood ratio is

.. math::
   \log\frac{p}{q} = \sum_g -\frac{k}{2}\psi(\delta)
        + \frac{(W-1)\delta + \delta U^2 + 2U\Delta - \Delta^2}{2(1+\delta)},\qquad
   \psi(\delta) = \log(1+\delta) - \frac{\delta}{1+\delta} = \epsilon - \log(1+\epsilon),\ \epsilon = -\tfrac{\delta}{1+\delta},

with no cancellation between terms of size ``k`` (the function :math:`x - \log(1+x)` is evaluated by
its series near 0).

Total variation, three independent routes (cross-checked in the tests):

1. one group, exact: the set {p > q} is a ball (half-space when s = r); TV = P(ball) - Q(ball) with
   ``scipy.stats.ncx2`` (``erf`` for the half-space). Boost's noncentral chi-square fails for
   noncentrality above ~1e10 (series does not converge); there the characteristic-function route
   below is used instead (this happens when the variances are nearly equal but the means are not).
2. any number of groups: inversion of the characteristic function (CF) of the LLR :math:`L` under P.
   Per coordinate :math:`\ell = c_0 + c_1 z + c_2 z^2` (z standard normal), so
   :math:`\log\varphi(\theta) = \sum_g k_g\log\varphi_g(\theta)` in closed form. We use the smoothed
   Gil-Pelaez formula (derived from :math:`TV = E_P[(1-e^{-L})_+] = \int_0^\infty e^{-x}P(L>x)dx`)

   .. math:: TV = \frac1\pi\int_0^\infty \operatorname{Im}\frac{\varphi(\theta) - 1}{\theta(1+i\theta)}\,d\theta,

   whose integrand decays like :math:`|\varphi|/\theta^2` (one power faster than plain Gil-Pelaez),
   with a rigorous truncation bound :math:`\int_U^\infty|\varphi|/\theta^2 \le |\varphi(U)|/U`
   (:math:`|\varphi|` is non-increasing here). The plain form
   :math:`\frac1\pi\int_0^\infty\operatorname{Im}[\varphi_P-\varphi_Q]/\theta\,d\theta` is available
   as ``method="gil-pelaez"`` for cross-checks. The integral runs over octaves of :math:`\theta` between
   the scales 1, :math:`1/\sigma_L` and :math:`1/|E L|`, so any ``k`` is equally well conditioned.
3. Monte Carlo over the sufficient statistics (U, W) per group (exact laws, drawable at any ``k``)
   with the bounded integrand :math:`TV = E_{(P+Q)/2}[\,|\tanh(L/2)|\,]`, stratified half P, half Q.

Extreme laws and laws far from the target (any finite positive variances, any k): the Bhattacharyya
coefficient (Hellinger affinity) :math:`BC = \prod_g BC_g^{k_g}` is closed form and
:math:`1 - BC \le TV \le \sqrt{1 - BC^2}`. Every exact route first computes this interval; where it
is narrower than ``tol`` its midpoint is returned with the half width as ``error_bound`` (variance
ratios of 1e-300 or 1e190, or laws far from the target at k = 1e12, which the CF cannot integrate in
reasonable time); otherwise the computed value is intersected with it. The Monte Carlo routes do
the same with ``CF_TOL`` (annealed: :math:`BC(\bar P, Q) \le M^{-1/2}\sum_m BC(P_m, Q)`).
At ``k >= CHI2_TAIL_DF`` scipy's chi-square CDF is inaccurate in the far lower tail (65% relative
error 4.6 sd below the mean at df = 1e9); thresholds beyond ``CHI2_TAIL_Z`` sd go to the CF route.
Known limit: a group with ``k_g = 1`` and an extreme variance ratio has a CF decaying like
:math:`\theta^{-1/2}`; the CF route then returns an honest bound no better than the interval's half
width (the one-group ncx2 route is exact there).

KL and W2 between product Gaussians are sums over groups weighted by ``k_g`` (closed form). The
annealed KL is not closed form; by joint convexity it is bounded above by the quenched KL (and below
by :math:`2\,TV^2` by Pinsker), and that is all this module claims about it.

Product mixtures (non-Gaussian columns): :class:`ColumnDensity` tabulates a 1-D density on a fine grid;
:func:`tv_product_density` inverts the CF of the LLR (the k-th power of the 1-D CF, in log space) and
:func:`kl_product_density` sums ``k_g`` times the 1-D KL by quadrature.

Sample-based distances for general mixtures, with percentile-bootstrap confidence intervals:
:func:`sliced_w2`, :func:`energy_distance`, :func:`mode_weight_tv`.

=====================  ==========================================================
code                   meaning
=====================  ==========================================================
``dlt``                :math:`\delta = s^2/r^2-1` (per draw and group)
``Dlt``                :math:`\Delta=\sqrt{k}(\mu-b)/r`
``k``                  multiplicity :math:`k_g`
``kmu, kc1sq``         mean of the group's LLR, :math:`k c_1^2` (see :func:`_cf_params_raw`)
=====================  ==========================================================
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special, stats

from experiments import _validate as v

__all__ = [
    "Estimate", "gaussian_kl", "gaussian_w2", "quenched_kl", "quenched_w2", "tv_isotropic",
    "tv_product_gaussian", "tv_product_gaussian_cf", "tv_product_gaussian_mc", "quenched_tv",
    "annealed_tv", "annealed_tv_stability", "annealed_tv_isotropic_quadrature", "ColumnDensity",
    "kl_product_density", "tv_product_density", "sliced_w2", "energy_distance", "mode_weight_tv",
]

#: above this noncentrality scipy's ncx2 (Boost) is unreliable; the CF route is used instead
NCX2_MAX_NONCENTRALITY = 1e9
#: default absolute tolerance of the CF inversion (quadrature + truncation)
CF_TOL = 1e-10


@dataclass(frozen=True)
class Estimate:
    """A distance with its uncertainty.

    ``stderr``: Monte Carlo standard error (0 for exact or deterministic values); ``error_bound``:
    numerical (non-statistical) error bound, e.g. quadrature + truncation; ``ci``: confidence interval
    (``ci_method`` says how it was obtained); ``n``: number of Monte Carlo samples, of internal draws
    (quenched), or 0 for exact values.
    """

    value: float
    stderr: float = 0.0
    n: int = 0
    method: str = ""
    error_bound: float = 0.0
    ci: tuple[float, float] | None = None
    ci_method: str = ""

    def __float__(self):
        return float(self.value)


# --------------------------------------------------------------------------------------------------
# numerics
# --------------------------------------------------------------------------------------------------

def _x_minus_log1p(x):
    """x - log(1+x) for x > -1, to a few ulps relative everywhere.

    For |x| < 1/2, with u = x/(2+x) (so log1p(x) = 2 atanh(u)):
    x - log1p(x) = 2u^2 [1/(1-u) - sum_{n>=1} u^{2n-1}/(2n+1)], a sum without cancellation
    (|u| <= 1/3; 20 terms reach u^40 < 1e-19). Elsewhere the direct form, whose terms cancel by a
    factor of at most ~5 there.
    """
    x = np.asarray(x, dtype=np.float64)
    small = np.abs(x) < 0.5
    xs = np.where(small, x, 0.0)
    u = xs / (2.0 + xs)
    u2 = u * u
    tail = np.zeros_like(u)
    for n in range(20, 0, -1):                     # Horner: sum_{n>=1} u^{2n-1}/(2n+1)
        tail = tail * u2 + 1.0 / (2 * n + 1)
    series = 2.0 * u2 * (1.0 / (1.0 - u) - u * tail)
    xl = np.where(small, 0.0, x)
    return np.where(small, series, xl - np.log1p(xl))


def _ratio_minus_log(s2, r2):
    r"""rho - 1 - log(rho) with rho = s2/r2, for any finite positive s2, r2 (arrays, broadcast).

    Near rho = 1 (|s2 - r2| < r2/2) the difference s2 - r2 is exact (Sterbenz) and
    :func:`_x_minus_log1p` has no cancellation; elsewhere log(rho) = log(s2) - log(r2) never forms a
    rounded ratio (1e-300/1e300 would underflow) and rho - 1 - log(rho) >= 0.09 cancels by a factor
    of at most ~5. Returns +inf only where the true value exceeds the float64 range (rho > ~1.8e308).
    """
    s2, r2 = np.broadcast_arrays(np.asarray(s2, dtype=np.float64), np.asarray(r2, dtype=np.float64))
    with np.errstate(over="ignore", under="ignore"):
        x = (s2 - r2) / r2
        near = np.abs(x) < 0.5
        rho = s2 / r2
        far = (rho - 1.0) - _log_of_ratio(rho, s2, r2)
    return np.where(near, _x_minus_log1p(np.where(near, x, 0.0)), far)


def _log_of_ratio(rho, s2, r2):
    """log(rho) for rho = s2/r2 (rounded): log(rho) where rho is a normal float (1 ulp), otherwise
    (rho overflowed, underflowed or is subnormal) log(s2) - log(r2), which forms no ratio."""
    normal = (rho >= np.finfo(np.float64).tiny) & np.isfinite(rho)
    with np.errstate(divide="ignore"):
        return np.where(normal, np.log(np.where(normal, rho, 1.0)), np.log(s2) - np.log(r2))


def _log_ratio(s2, r2):
    """log(s2/r2) to full precision near 1 (log1p of the exact difference) and without overflow elsewhere."""
    s2, r2 = np.broadcast_arrays(np.asarray(s2, dtype=np.float64), np.asarray(r2, dtype=np.float64))
    with np.errstate(over="ignore", under="ignore"):
        x = (s2 - r2) / r2
        near = np.abs(x) < 0.5
        return np.where(near, np.log1p(np.where(near, x, 0.0)), _log_of_ratio(s2 / r2, s2, r2))


def _log_cosh(y):
    """log cosh(y) without overflow and to full relative precision near 0."""
    y = np.abs(np.asarray(y, dtype=np.float64))
    small = y < 1.0
    ys = np.where(small, y, 0.0)
    yl = np.where(small, 1.0, y)
    return np.where(small, np.log1p(2.0 * np.sinh(0.5 * ys) ** 2),
                    yl - math.log(2.0) + np.log1p(np.exp(-2.0 * yl)))


def _sq_ratio(num, den):
    """num^2 / den (den > 0) without spurious overflow: +inf only where the true value is beyond float64."""
    with np.errstate(over="ignore", under="ignore"):
        return (num / np.sqrt(den)) ** 2


#: odd Taylor coefficients (-1)^n / (2n + 1), n = 1..11, of arctan(y) - y = y sum_n c_n y^(2n)
_ATAN_MINUS_SERIES = tuple((-1) ** n / (2 * n + 1) for n in range(11, 0, -1))


def _atan_minus(y):
    """arctan(y) - y to ~1e-15 relative: the series y sum_{n=1}^{11} (-1)^n y^{2n}/(2n+1) for |y| < 0.1
    (first omitted term 1e-24 of y^3/3 there); above, arctan(y) - y cancels at most 3e-4 of y away
    (relative error below 1e-13)."""
    y = np.asarray(y, dtype=np.float64)
    small = np.abs(y) < 0.1
    ys = np.where(small, y, 0.0)
    y2 = ys * ys
    acc = np.zeros_like(y2)
    for c in _ATAN_MINUS_SERIES:                      # Horner in y^2, highest power first
        acc = acc * y2 + c
    return np.where(small, ys * y2 * acc, np.arctan(y) - y)


def _psi(dlt):
    """log(1+d) - d/(1+d) = e - log(1+e) with e = -d/(1+d); >= 0, ~ d^2/2."""
    return _x_minus_log1p(-dlt / (1.0 + dlt))


# --------------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------------

#: largest multiplicity (and largest total dimension) accepted: the int64 range
MAX_MULTIPLICITY = 2**63 - 1


def _multiplicity_values(arr, name, given):
    """Validate an array of multiplicities element by element: int64 array, or ValueError naming ``name``."""
    msg = (f"{name} must be positive integers <= 2**63 - 1 (integer values, or floats that are exact integers "
           f"below 2**63), got {given!r}")
    if arr.dtype == bool:
        raise ValueError(msg)
    if np.issubdtype(arr.dtype, np.signedinteger):
        if np.any(arr < 1):
            raise ValueError(msg)
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.unsignedinteger):
        if np.any(arr < 1) or np.any(arr > MAX_MULTIPLICITY):
            raise ValueError(msg)
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        farr = arr.astype(np.float64)
        # every float >= 2**53 is an integer; 2**63 itself (and above) is outside int64
        if (not np.all(np.isfinite(farr)) or np.any(farr < 1) or np.any(farr >= 2.0**63)
                or np.any(farr != np.floor(farr))):
            raise ValueError(msg)
        return farr.astype(np.int64)
    out = []                                          # object arrays: Python ints beyond int64, mixtures
    for x in arr.reshape(-1).tolist():
        if isinstance(x, bool) or not isinstance(x, (numbers.Integral, float)):
            raise ValueError(msg)
        if isinstance(x, float) and not (math.isfinite(x) and x.is_integer()):
            raise ValueError(msg)
        xi = int(x)
        if not 1 <= xi <= MAX_MULTIPLICITY:
            raise ValueError(msg)
        out.append(xi)
    return np.array(out, dtype=np.int64).reshape(arr.shape)


def _multiplicities(k, G, name="multiplicities", *, total=True):
    """Multiplicities of the G groups as int64 (a scalar is broadcast); positive integers only.

    Floats are accepted only when they are exact integers below 2**63 (a float such as 2.0**63 would
    wrap around in the int64 cast and give a negative dimension). With ``total`` the dimension
    d = sum k must fit in int64 too.
    """
    try:
        arr = np.atleast_1d(np.asarray(k))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name} must be positive integers, got {k!r}") from exc
    if arr.size == 1 and G != 1:
        arr = np.full(G, arr.reshape(-1)[0], dtype=arr.dtype)
    if arr.shape != (G,):
        raise ValueError(f"{name} must have shape ({G},) (one per group), got {np.shape(k)}")
    if not (arr.dtype == bool or np.issubdtype(arr.dtype, np.number) or arr.dtype == object):
        raise ValueError(f"{name} must be positive integers, got {k!r}")
    out = _multiplicity_values(arr, name, k)
    if total and sum(int(x) for x in out.tolist()) > MAX_MULTIPLICITY:
        raise ValueError(f"{name} must sum to a dimension d <= 2**63 - 1, got sum {sum(int(x) for x in out.tolist())}")
    return out


def _gaussian_args(mean_p, var_p, mean_q, var_q, multiplicities, *, names=("mean_p", "var_p", "mean_q", "var_q")):
    """Validate and broadcast: P arrays -> (M, G), Q arrays -> (G,), k -> (G,) int64."""
    mp = v.finite_array(names[0], mean_p, ndim=(0, 1, 2))
    sp = v.positive_array(names[1], var_p, ndim=(0, 1, 2))
    mq = v.finite_array(names[2], mean_q, ndim=(0, 1))
    sq = v.positive_array(names[3], var_q, ndim=(0, 1))
    G = max(np.atleast_1d(mq).shape[-1], np.atleast_1d(sq).shape[-1],
            mp.shape[-1] if mp.ndim else 1, sp.shape[-1] if sp.ndim else 1)
    for nm, arr in zip(names, (mp, sp, mq, sq)):
        if arr.ndim and arr.shape[-1] not in (1, G):
            raise ValueError(f"{nm} must have {G} columns (one per group), got shape {arr.shape}")
    mp2, sp2 = np.atleast_2d(mp), np.atleast_2d(sp)
    if mp.ndim == 2 and sp.ndim == 2 and mp.shape[0] != sp.shape[0]:
        raise ValueError(f"{names[0]} and {names[1]} must have the same number of draws, got {mp.shape} and {sp.shape}")
    M = max(mp2.shape[0], sp2.shape[0])
    if M < 1:
        raise ValueError(f"{names[0]} must contain at least one internal draw (M >= 1), got shape {mp.shape}")
    mp2 = np.broadcast_to(mp2, (M, G)).astype(np.float64)
    sp2 = np.broadcast_to(sp2, (M, G)).astype(np.float64)
    mq1 = np.broadcast_to(np.atleast_1d(mq), (G,)).astype(np.float64)
    sq1 = np.broadcast_to(np.atleast_1d(sq), (G,)).astype(np.float64)
    k = _multiplicities(multiplicities, G)
    return mp2, sp2, mq1, sq1, k


def _law_args(law):
    """Arrays of a GaussianColumnLaw (or any object with the same fields), validated."""
    for f in ("mean", "var", "target_mean", "target_var", "multiplicities"):
        if not hasattr(law, f):
            raise ValueError(f"law must have a field {f!r} (an experiments.laws.GaussianColumnLaw)")
    mean = np.asarray(law.mean, dtype=np.float64)
    var = np.asarray(law.var, dtype=np.float64)
    if mean.ndim != 2 or var.ndim != 2:
        raise ValueError(f"law.mean and law.var must have shape (n_draws, n_columns), got {mean.shape} and {var.shape}")
    if mean.shape[0] == 0:
        raise ValueError("law.mean must contain at least one internal draw (n_draws M >= 1), got M = 0")
    if mean.shape != var.shape:
        raise ValueError(f"law.var must have the shape of law.mean {mean.shape}, got {var.shape}")
    G = mean.shape[1]
    tm = np.atleast_1d(np.asarray(law.target_mean, dtype=np.float64))
    tv = np.atleast_1d(np.asarray(law.target_var, dtype=np.float64))
    if tm.shape != (G,) or tv.shape != (G,):
        raise ValueError(f"law.target_mean and law.target_var must have shape ({G},), got {tm.shape} and {tv.shape}")
    return _gaussian_args(mean, var, tm, tv, law.multiplicities,
                          names=("law.mean", "law.var", "law.target_mean", "law.target_var"))


def _standardised(mp, sp, mq, sq, k):
    """(dlt, Dlt) of each draw and group relative to the target column: shapes (M, G)."""
    dlt = (sp - sq) / sq
    Dlt = np.sqrt(k.astype(np.float64)) * (mp - mq) / np.sqrt(sq)
    return dlt, Dlt


def _mean_se(x):
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):          # a KL beyond the float64 range (+inf): mean and error +inf, not NaN
        return float(np.max(x)), math.inf
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
    return float(x.mean()), se


#: accepted range of the ``tol`` arguments (absolute tolerance on a TV in [0, 1]); below ~1e-15 the
#: float64 rounding of the integrands dominates, so smaller values could not be honoured
TOL_RANGE = (1e-15, 0.5)


def _tol(tol, name="tol"):
    """A tolerance in TOL_RANGE (ValueError naming the parameter otherwise: NaN, 0, negative, >= 1/2)."""
    t = v.finite_array(name, tol, ndim=0)
    if not TOL_RANGE[0] <= float(t) <= TOL_RANGE[1]:
        raise ValueError(f"{name} must lie in [{TOL_RANGE[0]:g}, {TOL_RANGE[1]:g}] (an absolute tolerance on TV), "
                         f"got {float(t)!r}")
    return float(t)


def _log_bhattacharyya(mp, sp, mq, sq, k):
    r"""log of the Bhattacharyya coefficient :math:`BC(P_m, Q) = \int\sqrt{p_m q}` per draw: (M,).

    Closed form, a sum over groups of ``k_g`` times the 1-D value
    :math:`-\tfrac12\log\cosh(\tfrac12\log\rho) - \tfrac14(\mu-b)^2/(s^2+r^2)`, :math:`\rho = s^2/r^2`
    (:math:`\sqrt{2sr/(s^2+r^2)} = \cosh(\tfrac12\log\rho)^{-1/2}`), for any finite positive
    variances (no ratio or square is formed that could overflow). ``-inf`` when BC underflows.
    """
    with np.errstate(over="ignore", under="ignore"):
        half_diff = 0.5 * mp - 0.5 * mq                           # (mu - b)/2, no overflow
        var_term = -0.5 * _log_cosh(0.5 * _log_ratio(sp, sq))
        mean_term = -0.25 * _sq_ratio(half_diff, 0.25 * sp + 0.25 * sq)   # (mu-b)^2/(4 (s^2+r^2))
        return np.sum(k * (var_term + mean_term), axis=-1)


#: relative inflation of the Bhattacharyya interval for the rounding of log BC (|log BC| < 745 where
#: BC does not underflow, each term a few ulps: relative error of BC below 745 * 1e-15 ~ 1e-12)
_BC_SLACK = 1e-9


def _bc_interval(logbc):
    r"""TV bounds from the Bhattacharyya coefficient (Hellinger affinity) BC:
    :math:`1 - BC \le TV \le \sqrt{1 - BC^2}`. Returns ``(lower, upper, width)``; the width
    :math:`\sqrt{1-BC^2} - 1 + BC = BC - BC^2/(1+\sqrt{1-BC^2})` is formed without cancellation."""
    logbc = np.minimum(np.asarray(logbc, dtype=np.float64), 0.0)
    with np.errstate(under="ignore"):
        bc = np.exp(logbc)
        lower = -np.expm1(logbc)
        upper = np.sqrt(-np.expm1(2.0 * logbc))
        width = bc - bc * bc / (1.0 + upper)
    return lower, upper, width


def _bc_short_circuit(logbc, tol):
    """Rows whose Bhattacharyya interval is narrower than ``tol``:
    (mask, value = midpoint, error bound = half width)."""
    lower, upper, width = _bc_interval(logbc)
    half = 0.5 * width * (1.0 + _BC_SLACK) + 2.3e-16          # + rounding of the midpoint itself
    return width <= tol, np.minimum(lower + 0.5 * width, 1.0), half


def _bc_refine(vals, bounds, logbc):
    """Intersect (value, error bound) with the Bhattacharyya interval: the value is clipped into it, and
    where the interval's half width is the smaller error the midpoint is returned instead."""
    lower, upper, width = _bc_interval(logbc)
    half = 0.5 * width * (1.0 + _BC_SLACK) + 2.3e-16
    vals = np.clip(vals, lower, upper)
    better = half < bounds
    return np.where(better, np.minimum(lower + 0.5 * width, 1.0), vals), np.where(better, half, bounds)


# --------------------------------------------------------------------------------------------------
# 1. KL and W2 (closed form, vectorised over draws)
# --------------------------------------------------------------------------------------------------

def gaussian_kl(mean_p, var_p, mean_q, var_q, multiplicities, *, direction: str = "target_output") -> np.ndarray:
    r"""KL between the lifted product Gaussians, per draw: array (M,).

    ``direction="target_output"`` (default) is :math:`KL(Q\|P_m)`, the direction most theorems bound
    (e.g. :math:`KL(p_{\sigma_{min}}\|\mathrm{law}(y_N))`); ``"output_target"`` is :math:`KL(P_m\|Q)`.
    :math:`KL = \sum_g k_g\,\tfrac12[x - \log(1+x) + (\mu-b)^2/r^2]` with :math:`x = s^2/r^2-1` of the
    first law relative to the second.

    Accurate to a few ulps for any finite positive variances (ratios 1e-300..1e300 included: the
    variance term is :math:`\rho - 1 - \log\rho`, see :func:`_ratio_minus_log`); ``+inf`` only where
    the true KL exceeds the float64 range.
    """
    mp, sp, mq, sq, k = _gaussian_args(mean_p, var_p, mean_q, var_q, multiplicities)
    if direction == "output_target":
        a, s2, b, r2 = mp, sp, mq, sq
    elif direction == "target_output":
        a, s2, b, r2 = mq, sq, mp, sp
    else:
        raise ValueError(f"direction must be 'target_output' or 'output_target', got {direction!r}")
    with np.errstate(over="ignore"):
        diff = a - b
        per = 0.5 * (_ratio_minus_log(s2, r2) + _sq_ratio(diff, r2))
        return np.sum(k * per, axis=-1)


def gaussian_w2(mean_p, var_p, mean_q, var_q, multiplicities) -> np.ndarray:
    r"""W2 between the lifted product Gaussians, per draw: :math:`\sqrt{\sum_g k_g[(\mu-b)^2 + (s-r)^2]}`."""
    mp, sp, mq, sq, k = _gaussian_args(mean_p, var_p, mean_q, var_q, multiplicities)
    ds = (sp - sq) / (np.sqrt(sp) + np.sqrt(sq))
    return np.sqrt(np.sum(k * ((mp - mq) ** 2 + ds**2), axis=-1))


def quenched_kl(law, *, direction: str = "target_output") -> Estimate:
    """Mean over internal draws of KL(P_m, Q) (closed form per draw), with its standard error over draws.

    This is also an upper bound on the annealed KL (joint convexity of KL). ``n`` is the number of
    draws; with one draw (deterministic sampler) the standard error is 0.
    """
    mp, sp, mq, sq, k = _law_args(law)
    vals = gaussian_kl(mp, sp, mq, sq, k, direction=direction)
    m, se = _mean_se(vals)
    return Estimate(m, se, vals.size, f"quenched KL ({direction}), closed form per draw")


def quenched_w2(law) -> Estimate:
    """Mean over internal draws of W2(P_m, Q) (closed form per draw), with its standard error."""
    mp, sp, mq, sq, k = _law_args(law)
    vals = gaussian_w2(mp, sp, mq, sq, k)
    m, se = _mean_se(vals)
    return Estimate(m, se, vals.size, "quenched W2, closed form per draw")


# --------------------------------------------------------------------------------------------------
# 2a. TV, one isotropic group, exact (noncentral chi-square)
# --------------------------------------------------------------------------------------------------

#: at and above this many degrees of freedom scipy's central chi-square CDF (cephes ``igam``) is
#: inaccurate more than ~4.5 standard deviations below the mean (measured against mpmath at 50 digits:
#: relative error 2e-8 at df = 1e6, 7e-3 at 1e7, 0.65 at 1e9, z = -4.6); there the CF route is used
CHI2_TAIL_DF = 1e5
#: ... for thresholds more than this many standard deviations from the mean
CHI2_TAIL_Z = 4.0


def _tv_iso_ncx2(a, s2, b, r2, k):
    """TV between N(a 1, s2 I_k) and N(b 1, r2 I_k) (arrays, broadcast). NaN where ncx2 is not usable.

    Not usable: noncentrality above :data:`NCX2_MAX_NONCENTRALITY` (Boost's series fails), a threshold
    more than :data:`CHI2_TAIL_Z` standard deviations from its mean at ``k >= CHI2_TAIL_DF`` (scipy's
    CDF loses its relative accuracy there), or non-finite thresholds (extreme laws: the callers'
    Bhattacharyya short-circuit covers those).
    """
    a, s2, b, r2, k = np.broadcast_arrays(*(np.asarray(z, dtype=np.float64) for z in (a, s2, b, r2, k)))
    out = np.full(a.shape, np.nan)
    eq = s2 == r2
    if np.any(eq):   # half-space: TV = 2 Phi(|a-b| sqrt(k) / (2 s)) - 1
        with np.errstate(over="ignore"):
            z_half = np.abs(0.5 * a[eq] - 0.5 * b[eq]) * np.sqrt(k[eq]) / np.sqrt(2.0 * s2[eq])
        out[eq] = special.erf(np.minimum(z_half, 1e3))
    ne = ~eq
    if np.any(ne):
        # order the pair so that s2 < r2 (TV is symmetric); the ball ||x - c||^2 < rho^2 = {p_lo > p_hi}
        lo = np.minimum(s2[ne], r2[ne])
        hi = np.maximum(s2[ne], r2[ne])
        half, kk = 0.5 * a[ne] - 0.5 * b[ne], k[ne]
        with np.errstate(over="ignore", under="ignore"):
            gap = hi - lo                                     # > 0, exact when hi < 2 lo (Sterbenz)
            # noncentralities k (a-b)^2 lo / gap^2 and k (a-b)^2 hi / gap^2 (= lam_p (1 + eta), eta = gap/lo)
            lam_p = kk * 4.0 * (half * np.sqrt(lo) / gap) ** 2
            lam_q = kk * 4.0 * (half * np.sqrt(hi) / gap) ** 2
            logr = _log_ratio(hi, lo)
            # thresholds rho^2/lo and rho^2/hi of the two scaled noncentral chi-squares
            xp = kk * (hi / gap) * logr + lam_q
            xq = kk * (lo / gap) * logr + lam_p
            z_p = (xp - kk - lam_p) / np.sqrt(2.0 * (kk + 2.0 * lam_p))
            z_q = (xq - kk - lam_q) / np.sqrt(2.0 * (kk + 2.0 * lam_q))
        res = np.full(kk.shape, np.nan)
        finite = np.isfinite(xp) & np.isfinite(xq) & np.isfinite(lam_q) & np.isfinite(z_p) & np.isfinite(z_q)
        tail = (kk >= CHI2_TAIL_DF) & ((np.abs(np.where(finite, z_p, 0.0)) > CHI2_TAIL_Z)
                                       | (np.abs(np.where(finite, z_q, 0.0)) > CHI2_TAIL_Z))
        ok = finite & (lam_q <= NCX2_MAX_NONCENTRALITY) & ~tail
        if np.any(ok):
            def dist(x, df, lam, fn):
                # central chi-square where the noncentrality is exactly 0 (equal means)
                return np.where(lam > 0, getattr(stats.ncx2, fn)(x, df, np.maximum(lam, 1e-300)), getattr(stats.chi2, fn)(x, df))

            xp_, xq_, k_, lp_, lq_ = xp[ok], xq[ok], kk[ok], lam_p[ok], lam_q[ok]
            with np.errstate(under="ignore"):
                psf, qsf = dist(xp_, k_, lp_, "sf"), dist(xq_, k_, lq_, "sf")
            # TV = P(B) - Q(B) = Q(B^c) - P(B^c), the second form because P(B) > 1/2: the threshold xp is above
            # the mean k + lam_p of P's ncx2 ((hi/gap) log(hi/lo) >= 1 and lam_q >= lam_p), and an ncx2's
            # median lies below its mean; so P(B^c) < 1/2 and neither sf is a difference from 1
            res[ok] = qsf - psf
        out[ne] = res
    bad = ~np.isfinite(out) | (out < -1e-12) | (out > 1 + 1e-12)
    out[bad] = np.nan
    return np.clip(out, 0.0, 1.0)


def tv_isotropic(mean_p, var_p, mean_q, var_q, k, *, tol: float = CF_TOL) -> np.ndarray:
    r"""Exact TV between :math:`N(a\mathbf 1, s^2 I_k)` and :math:`N(b\mathbf 1, r^2 I_k)`, vectorised.

    ``scipy.stats.ncx2`` (ball) or ``erf`` (half-space); where the noncentrality exceeds
    :data:`NCX2_MAX_NONCENTRALITY` (Boost's series fails) or a threshold lies in the far tail at
    ``k >= CHI2_TAIL_DF`` (scipy's chi-square CDF loses accuracy there) the CF inversion is used for
    that entry. Entries whose Bhattacharyya interval :math:`[1-BC, \sqrt{1-BC^2}]` is narrower than
    ``tol`` return its midpoint (extreme laws, TV within ``tol`` of 1). Accuracy about 1e-10 absolute
    (scipy's ncx2) or ``tol``, any ``k`` and any finite positive variances.
    """
    tol = _tol(tol)
    a = v.finite_array("mean_p", mean_p)
    s2 = v.positive_array("var_p", var_p)
    b = v.finite_array("mean_q", mean_q)
    r2 = v.positive_array("var_q", var_q)
    kk = np.asarray(k)
    try:
        a, s2, b, r2, kk = np.broadcast_arrays(a, s2, b, r2, kk)
    except ValueError as exc:
        raise ValueError(f"mean_p, var_p, mean_q, var_q, k must broadcast together: {exc}") from None
    kk = _multiplicities(kk.reshape(-1), kk.size, name="k", total=False).reshape(kk.shape)
    shape = a.shape
    a, s2, b, r2, kk = (z.reshape(-1) for z in (a, s2, b, r2, kk))
    logbc = _log_bhattacharyya(a[:, None], s2[:, None], b[:, None], r2[:, None], kk[:, None].astype(np.float64))
    short, mid, _ = _bc_short_circuit(logbc, tol)
    out = np.full(a.shape, np.nan)
    out[short] = mid[short]
    rest = ~short
    if np.any(rest):
        out[rest] = _tv_iso_ncx2(a[rest], s2[rest], b[rest], r2[rest], kk[rest])
    for i in np.flatnonzero(np.isnan(out)):
        out[i] = tv_product_gaussian_cf(a[i], s2[i], b[i], r2[i], [kk[i]], tol=tol).value
    out = out.reshape(shape)
    return out if out.ndim else float(out)


# --------------------------------------------------------------------------------------------------
# 2b. TV, several groups: characteristic function of the LLR
# --------------------------------------------------------------------------------------------------

def _cf_params_raw(mp, sp, mq, sq, k, side="p"):
    r"""Per-group parameters of the LLR :math:`L=\log p/q` as a sum of ``k`` i.i.d. terms
    :math:`c_0 + c_1 z + c_2 z^2` (z ~ N(0,1)) under P (``side="p"``) or Q (``"q"``), from the raw means
    and variances ((M, G) and (G,)); with :math:`\delta = s_p/s_q - 1` and
    :math:`\Delta = \sqrt k (m_p - m_q)/\sqrt{s_q}`:

    Returns ``kmu`` (= k E[term], the group's mean LLR), ``kf`` (k as float), ``y1`` (= 2 c_2),
    ``kc1sq`` (= k c_1^2). Under P: 2c_2 = delta, k c_1^2 = (1+delta) Delta^2, k E = [k(delta - log(1+delta)) + Delta^2]/2.
    Under Q: 2c_2 = delta/(1+delta), k c_1^2 = Delta^2/(1+delta)^2, k E = -KL(Q||P).
    Exact for any finite positive variances: 1 + delta is never formed by rounding, so a variance ratio
    below 1e-16 keeps its value."""
    kf = np.broadcast_to(k.astype(np.float64), np.shape(sp))                # mp and sp are both (M, G)
    with np.errstate(over="ignore", under="ignore"):
        half = 0.5 * mp - 0.5 * mq                                          # (mu - b)/2
        if side == "p":
            y1 = (sp - sq) / sq                                             # delta
            kc1sq = kf * 4.0 * (half * np.sqrt(sp) / sq) ** 2               # (1 + delta) Delta^2
            kmu = 0.5 * kf * (_ratio_minus_log(sp, sq) + 4.0 * _sq_ratio(half, sq))
        else:
            y1 = (sp - sq) / sp                                             # delta / (1 + delta)
            kc1sq = kf * 4.0 * (half * np.sqrt(sq) / sp) ** 2               # Delta^2 / (1 + delta)^2
            kmu = -0.5 * kf * (_ratio_minus_log(sq, sp) + 4.0 * _sq_ratio(half, sp))
    return kmu, kf, y1, kc1sq


def _log_cf(theta, params):
    """log E exp(i theta L), summed over the last axis (groups). Returns (real, imag) arrays."""
    kmu, kf, y1, kc1sq = params
    y = theta * y1
    y2 = y * y
    re = -0.25 * kf * np.log1p(y2) - 0.5 * theta**2 * kc1sq / (1.0 + y2)
    im = theta * kmu + 0.5 * kf * _atan_minus(y) - 0.5 * theta**2 * kc1sq * y / (1.0 + y2)
    return re.sum(-1), im.sum(-1)


def _octave_points(lo, hi, per_octave=2):
    n = max(2, int(math.ceil(per_octave * math.log2(hi / lo))) + 1)
    return np.geomspace(lo, hi, n)


def _cf_tv(params_p, params_q=None, *, tol=CF_TOL, method="smoothed", max_doublings=80, max_oscillations=2000,
           logbc):
    """TV by CF inversion for a batch of laws (leading axis M). Returns (value (M,), error bound (M,)).

    ``logbc`` (M,): log BC computed from the raw laws (:func:`_log_bhattacharyya`; not from the LLR
    parameters, a form that cancels for variance ratios far from 1). Laws whose Bhattacharyya interval
    (widened by its rounding error) is narrower than ``tol`` are not integrated: extreme laws (variance
    ratios of 1e-300 or 1e190, say) and laws far from the target at huge multiplicity, whose CF
    oscillates too fast to integrate, get the interval's midpoint and half width. The other values are
    intersected with the interval too (:func:`_bc_refine`).
    """
    if method not in ("smoothed", "gil-pelaez"):
        raise ValueError(f"method must be 'smoothed' or 'gil-pelaez', got {method!r}")
    if method == "gil-pelaez" and params_q is None:
        raise ValueError("method 'gil-pelaez' needs the Q-side parameters")
    tol = _tol(tol)
    params_p = tuple(np.atleast_2d(np.asarray(z, dtype=np.float64)) for z in params_p)
    shape = np.broadcast_shapes(*(z.shape for z in params_p))
    params_p = tuple(np.broadcast_to(z, shape) for z in params_p)
    if params_q is not None:
        params_q = tuple(np.broadcast_to(np.atleast_2d(np.asarray(z, dtype=np.float64)), shape) for z in params_q)
    for nm, ps in (("params_p", params_p), ("params_q", params_q)):
        if ps is not None and not all(np.all(np.isfinite(z)) for z in ps):
            raise ValueError(f"{nm} must be finite (compute them with _cf_params_raw from the raw laws)")
    g = np.broadcast_to(np.asarray(logbc, dtype=np.float64), shape[:1])
    err = _BC_SLACK / 10 * np.abs(g)              # rounding of the raw form: a few ulps per term
    lo_bc, _, _ = _bc_interval(np.where(np.isfinite(g + err), g + err, 0.0))     # BC at its upper bound
    _, hi_bc, _ = _bc_interval(np.where(np.isfinite(g - err), g - err, -np.inf))  # ... at its lower bound
    width = hi_bc - lo_bc
    short = np.isfinite(g) & (width <= tol)
    vals = np.where(short, np.minimum(lo_bc + 0.5 * width, 1.0), 0.0)
    bounds = np.where(short, 0.5 * width * (1.0 + _BC_SLACK) + 2.3e-16, 0.0)
    rest = ~short
    if np.any(rest):
        sub_p = tuple(z[rest] for z in params_p)
        sub_q = None if params_q is None else tuple(z[rest] for z in params_q)
        v_r, b_r = _cf_tv_core(sub_p, sub_q, tol=tol, method=method, max_doublings=max_doublings,
                               max_oscillations=max_oscillations)
        # intersect with the Bhattacharyya interval (clip; its half width where that is the smaller error)
        lo_r, hi_r = lo_bc[rest], hi_bc[rest]
        half_r = 0.5 * (hi_r - lo_r) * (1.0 + _BC_SLACK) + 2.3e-16
        v_r = np.clip(v_r, lo_r, hi_r)
        better = half_r < b_r
        vals[rest] = np.where(better, np.minimum(lo_r + 0.5 * (hi_r - lo_r), 1.0), v_r)
        bounds[rest] = np.where(better, half_r, b_r)
    return vals, bounds


def _cf_tv_core(params_p, params_q, *, tol, method, max_doublings, max_oscillations):
    """The CF inversion of :func:`_cf_tv` (moderate laws only: finite parameters, Bhattacharyya
    interval wider than ``tol``). Called only by :func:`_cf_tv`, which validates the arguments."""
    kmu, kf, y1, kc1sq = params_p
    mu = kmu.sum(-1)
    sig = np.sqrt(np.sum(kc1sq + 0.5 * kf * y1**2, axis=-1))
    trivial = sig == 0.0                                  # P == Q in every group: TV = 0 exactly
    if np.all(trivial):
        return np.zeros(mu.shape), np.zeros(mu.shape)
    scale = np.maximum.reduce([np.ones_like(sig), sig, np.abs(mu)])
    lo = float(np.min(1.0 / scale[~trivial])) / 16.0

    def modulus(theta):
        re, _ = _log_cf(theta, params_p)
        m = np.exp(re)
        if params_q is not None:
            m = m + np.exp(_log_cf(theta, params_q)[0])
        return m

    # truncation point U: rigorous tail bound |phi(U)|/U for the smoothed form; for the plain form
    # the tail  int_U^inf (|phi_P|+|phi_Q|)/theta  is integrated numerically (monotone, no oscillation)
    def tail(U):
        if method == "smoothed":
            return modulus(U) / U
        f = lambda th: modulus(th) / th
        val, _ = integrate.quad_vec(f, U, np.inf, epsabs=tol * 1e-2, epsrel=1e-6, norm="max")
        return np.asarray(val)

    # work cap: at most ~max_oscillations periods of the integrand's phase (rate ~ |E L| + sd(L) +
    # the arctan terms of the groups whose CF has reached its power-law regime). Only reached when the
    # CF decays slowly (few coordinates with unequal variances); then the truncation bound is larger
    # than ``tol`` and is reported as such.
    def phase_rate(U):
        return float(np.max(np.abs(mu) + sig + 0.5 * np.sum(kf * np.abs(y1) * np.minimum(1.0, (U * y1) ** 2), axis=-1)))

    U = 16.0 / float(np.min(sig[~trivial]))
    U = max(U, 4.0 * lo)
    # the doubling criterion uses the cheap |phi(U)|/U (the smoothed form's bound); the plain form's
    # tail integral, a numerical quadrature to infinity, is computed once at the final U (doing it at
    # every doubling took minutes for a single coordinate with a variance ratio of 1e-17)
    for _ in range(max_doublings):
        tb = np.where(trivial, 0.0, modulus(U) / U)
        if np.max(tb) <= 0.25 * tol or 2 * U * phase_rate(2 * U) > 2 * np.pi * max_oscillations:
            break
        U *= 2.0
    tb = np.where(trivial, 0.0, tail(U))

    if method == "smoothed":
        def f(theta):
            re, im = _log_cf(theta, params_p)
            phm1 = np.expm1(re + 1j * im)
            return (phm1 / (theta * (1.0 + 1j * theta))).imag
    else:                                                 # "gil-pelaez", with the Q side
        def f(theta):
            rp, ip = _log_cf(theta, params_p)
            rq, iq = _log_cf(theta, params_q)
            return (np.exp(rp) * np.sin(ip) - np.exp(rq) * np.sin(iq)) / theta

    pts = _octave_points(lo, U)
    # the plain form's Q-side term oscillates at rate |E_Q L| = KL(Q||P), which is astronomically large
    # for a coordinate with an extreme variance ratio (1e17 at a ratio of 1e-17): its subdivision count
    # is capped lower (the returned error estimate then says how far the value is from converged)
    limit = 20000 if method == "smoothed" else 2000
    total, err = integrate.quad_vec(f, 0.0, U, epsabs=tol / 2, epsrel=1e-10, norm="max", limit=limit, points=pts[:-1])
    if method == "smoothed":
        total = total + (0.5 * np.pi - np.arctan(U))      # the "-1" part of the tail, exactly
    value = np.where(trivial, 0.0, total / np.pi)
    bound = np.where(trivial, 0.0, (err + tb) / np.pi)
    return np.clip(value, 0.0, 1.0), bound


def tv_product_gaussian_cf(mean_p, var_p, mean_q, var_q, multiplicities, *, tol: float = CF_TOL,
                           method: str = "smoothed") -> Estimate:
    """TV between two product Gaussians (any number of groups) by CF inversion of the LLR.

    ``mean_p``/``var_p`` of shape (G,) (a single law). ``error_bound`` = quadrature error estimate +
    rigorous truncation bound. ``method``: ``"smoothed"`` (default) or ``"gil-pelaez"`` (plain).
    Where the Bhattacharyya interval is narrower than ``tol`` its midpoint is returned (``method``
    says so) with its half width as ``error_bound``.
    """
    tol = _tol(tol)
    if method not in ("smoothed", "gil-pelaez"):
        raise ValueError(f"method must be 'smoothed' or 'gil-pelaez', got {method!r}")
    mp, sp, mq, sq, k = _gaussian_args(mean_p, var_p, mean_q, var_q, multiplicities)
    if mp.shape[0] != 1:
        raise ValueError(f"mean_p must describe a single law (shape (G,)), got {np.shape(mean_p)}; use quenched_tv for several draws")
    mp, sp, mq, sq, k = _drop_equal_groups(mp, sp, mq, sq, k)
    if k.size == 0:
        return Estimate(0.0, 0.0, 0, "identical laws", 0.0)
    logbc = _log_bhattacharyya(mp, sp, mq, sq, k)
    short, mid, half = _bc_short_circuit(logbc, tol)
    if short[0]:
        return Estimate(float(mid[0]), 0.0, 0, _BC_METHOD, float(half[0]))
    val, bound = _cf_tv(_cf_params_raw(mp, sp, mq, sq, k, "p"), _cf_params_raw(mp, sp, mq, sq, k, "q"),
                        tol=tol, method=method, logbc=logbc)
    return Estimate(float(val[0]), 0.0, 0, f"CF inversion ({method})", float(bound[0]))


_BC_METHOD = "Bhattacharyya bounds 1 - BC <= TV <= sqrt(1 - BC^2), interval narrower than tol: midpoint"


# --------------------------------------------------------------------------------------------------
# 2c/3. Monte Carlo over sufficient statistics (product laws and mixtures)
# --------------------------------------------------------------------------------------------------

def _draw_suffstats(n, dlt, Dlt, k, rng):
    """(U, W) of n draws from N(mu, s^2)^{k} per group (standardised by the target column)."""
    G = k.size
    z = rng.standard_normal((n, G))
    U = Dlt + np.sqrt(1.0 + dlt) * z
    W = np.zeros((n, G))
    big = k > 1
    if np.any(big):
        df = (k[big] - 1).astype(np.float64)
        chi = rng.chisquare(df, size=(n, int(big.sum())))
        W[:, big] = (1.0 + dlt[..., big]) * (chi - df) + dlt[..., big] * df
    return U, W


def _llr(U, W, dlt, Dlt, k):
    """log p_m/q at the sufficient statistics: U, W (n, G); dlt, Dlt (M, G) -> (n, M)."""
    kf = k.astype(np.float64)
    const = np.sum(-0.5 * kf * _psi(dlt) - 0.5 * (dlt + Dlt**2) / (1.0 + dlt), axis=-1)      # (M,)
    inv = 1.0 / (1.0 + dlt)
    # sum_g [ (W dlt + dlt U^2 + 2 U Dlt) / (2(1+dlt)) ]
    lin = 0.5 * ((W * 1.0) @ (dlt * inv).T + (U**2) @ (dlt * inv).T) + U @ (Dlt * inv).T
    return lin + const


#: variance ratios and standardised mean shifts of the draws are clipped to these ranges in the
#: Monte Carlo (only where they lie outside): a draw beyond them overlaps Q and every draw inside them
#: by less than 1e-50 (Bhattacharyya), so TV changes by less than that, while the LLR stays finite
_MC_RATIO_CLIP = (1e-200, 1e200)
_MC_SHIFT_CLIP = 1e100
#: groups whose ratio lies outside this range (or whose shift exceeds _MC_NEAR_SHIFT) use the direct
#: form of the LLR (no 1 + delta is formed, no cancellation); inside it the cancellation-free W form
_MC_NEAR_RATIO = (0.5, 2.0)
_MC_NEAR_SHIFT = 1e8


def _mixture_tv_mc(dlt, Dlt, k, n_samples, rng, chunk=4096, *, ratio):
    """TV(mean_m P_m, Q) by stratified Monte Carlo of |tanh(L/2)| under (Pbar + Q)/2.

    ``ratio`` (M, G): the variance ratios s^2/r^2 = 1 + dlt computed from the raw variances (so that a
    ratio below 1e-16 is not rounded to 0 through dlt = -1). When every ratio lies in
    [1/2, 2] and every |Dlt| <= 1e8 the sufficient statistics (U, W) and :func:`_llr` are used
    unchanged; otherwise :func:`_mixture_llr_robust` (same random numbers, per group either form).
    """
    M = dlt.shape[0]
    n_half = max(int(n_samples) // 2, 2)
    logM = math.log(M)
    robust = bool(np.any(ratio < _MC_NEAR_RATIO[0]) or np.any(ratio > _MC_NEAR_RATIO[1])
                  or np.any(np.abs(Dlt) > _MC_NEAR_SHIFT))
    if robust:
        ratio = np.clip(ratio, *_MC_RATIO_CLIP)
        Dlt = np.clip(Dlt, -_MC_SHIFT_CLIP, _MC_SHIFT_CLIP)
    vals = {"p": [], "q": []}
    for side in ("p", "q"):
        done = 0
        while done < n_half:
            n = min(chunk, n_half - done)
            if not robust:
                if side == "q":
                    U, W = _draw_suffstats(n, np.zeros((1, k.size)), np.zeros((1, k.size)), k, rng)
                else:
                    m = (np.arange(done, done + n) % M)                  # balanced over the draws
                    U, W = _draw_suffstats(n, dlt[m], Dlt[m], k, rng)
                L = special.logsumexp(_llr(U, W, dlt, Dlt, k), axis=1) - logM
            else:
                if side == "q":
                    rho_n, Dlt_n = np.ones((n, k.size)), np.zeros((n, k.size))
                else:
                    m = (np.arange(done, done + n) % M)
                    rho_n, Dlt_n = ratio[m], Dlt[m]
                with np.errstate(over="ignore", under="ignore", divide="ignore"):
                    ell = _mixture_llr_robust(n, rho_n, Dlt_n, ratio, Dlt, k, rng)
                    L = special.logsumexp(ell, axis=1) - logM
            vals[side].append(np.abs(np.tanh(0.5 * L)))
            done += n
    hp = np.concatenate(vals["p"])
    hq = np.concatenate(vals["q"])
    value = 0.5 * (hp.mean() + hq.mean())
    # stratification over draws is treated as i.i.d. sampling of m: a conservative standard error
    se = 0.5 * math.sqrt(hp.var(ddof=1) / hp.size + hq.var(ddof=1) / hq.size)
    return float(value), float(se), hp.size + hq.size


def _mixture_llr_robust(n, rho_n, Dlt_n, rho, Dlt, k, rng):
    r"""log p_m/q (n, M) at n draws whose own laws have ratios ``rho_n`` and shifts ``Dlt_n`` (n, G).

    Draws: U = Dlt_n + sqrt(rho_n) z, T = rho_n chi (chi ~ chi^2_{k-1}), W = T - (k-1) formed as
    rho_n (chi - df) + (rho_n - 1) df (same random numbers, in the same order, as :func:`_draw_suffstats`).
    Per group, the W form of :func:`_llr` where the evaluated law is near the target (ratio in
    [1/2, 2], |Dlt| <= 1e8: no cancellation of size k), and the direct form
    :math:`-\tfrac k2\log\rho - \frac{T + (U-\Delta)^2}{2\rho} + \frac{T + U^2}{2}` elsewhere (its terms
    do not cancel there). Values are finite or -inf (never NaN) for the clipped parameters.
    """
    G = k.size
    z = rng.standard_normal((n, G))
    U = Dlt_n + np.sqrt(rho_n) * z
    T = np.zeros((n, G))
    W = np.zeros((n, G))
    big = k > 1
    if np.any(big):
        df = (k[big] - 1).astype(np.float64)
        chi = rng.chisquare(df, size=(n, int(big.sum())))
        T[:, big] = rho_n[:, big] * chi
        W[:, big] = rho_n[:, big] * (chi - df) + (rho_n[:, big] - 1.0) * df
    near = (rho >= _MC_NEAR_RATIO[0]) & (rho <= _MC_NEAR_RATIO[1]) & (np.abs(Dlt) <= _MC_NEAR_SHIFT)   # (M, G)
    out = _llr(U, W, np.where(near, rho - 1.0, 0.0), np.where(near, Dlt, 0.0), k)           # near groups only
    kf = k.astype(np.float64)
    for g in np.flatnonzero(~np.all(near, axis=0)):
        far = ~near[:, g]                                                                     # (M,)
        r, D = np.where(far, rho[:, g], 1.0)[None, :], np.where(far, Dlt[:, g], 0.0)[None, :]
        u, t = U[:, g:g + 1], T[:, g:g + 1]
        direct = -0.5 * kf[g] * np.log(r) - (t + (u - D) ** 2) / (2.0 * r) + 0.5 * (t + u * u)
        out = out + np.where(far[None, :], direct, 0.0)
    return out


def tv_product_gaussian_mc(mean_p, var_p, mean_q, var_q, multiplicities, *, n_samples: int = 100_000,
                           rng: np.random.Generator | None = None) -> Estimate:
    """TV between two product Gaussians by Monte Carlo over the per-group sufficient statistics
    (exact laws at any k), integrand |tanh(L/2)| under (P+Q)/2; value with its standard error.

    Any finite positive variances: where the Bhattacharyya interval [1 - BC, sqrt(1 - BC^2)] is
    narrower than :data:`CF_TOL` (TV within 1e-10 of 1, far below any Monte Carlo resolution) its
    midpoint is returned with ``stderr = 0``, ``n = 0`` and the half width as ``error_bound``.
    """
    mp, sp, mq, sq, k = _gaussian_args(mean_p, var_p, mean_q, var_q, multiplicities)
    if mp.shape[0] != 1:
        raise ValueError(f"mean_p must describe a single law (shape (G,)), got {np.shape(mean_p)}")
    n_samples = v.positive_int("n_samples", n_samples, minimum=4)
    rng = _rng(rng)
    mp, sp, mq, sq, k = _drop_equal_groups(mp, sp, mq, sq, k)
    if k.size == 0:
        return Estimate(0.0, 0.0, 0, "identical laws", 0.0)
    short, mid, half = _bc_short_circuit(_log_bhattacharyya(mp, sp, mq, sq, k), CF_TOL)
    if short[0]:
        return Estimate(float(mid[0]), 0.0, 0, _BC_METHOD, float(half[0]))
    dlt, Dlt = _standardised_safe(mp, sp, mq, sq, k)
    val, se, n = _mixture_tv_mc(dlt, Dlt, k, n_samples, rng, ratio=_safe_ratio(sp, sq))
    return Estimate(val, se, n, "Monte Carlo over sufficient statistics, |tanh(L/2)| under (P+Q)/2")


def _safe_ratio(sp, sq):
    """sp / sq; +inf or 0 (no warning) where the ratio leaves the float64 range (clipped by the Monte Carlo)."""
    with np.errstate(over="ignore", under="ignore"):
        return sp / sq


def _standardised_safe(mp, sp, mq, sq, k):
    """:func:`_standardised` without overflow warnings (huge shifts become +-inf, clipped by the Monte Carlo)."""
    with np.errstate(over="ignore"):
        dlt = (sp - sq) / sq
        Dlt = np.sqrt(k.astype(np.float64)) * (0.5 * mp - 0.5 * mq) / np.sqrt(sq) * 2.0
    return dlt, Dlt


def _rng(rng):
    if rng is None:
        return np.random.default_rng(0)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _drop_equal_groups(mp, sp, mq, sq, k):
    keep = ~np.all((mp == mq) & (sp == sq), axis=0)
    return mp[:, keep], sp[:, keep], mq[keep], sq[keep], k[keep]


def tv_product_gaussian(mean_p, var_p, mean_q, var_q, multiplicities, *, tol: float = CF_TOL) -> Estimate:
    """Exact TV between two product Gaussians: closed form (ncx2) for one group, CF inversion otherwise;
    the Bhattacharyya interval's midpoint where that interval is narrower than ``tol`` (``method`` says
    which). ``error_bound`` is always a bound on the numerical error."""
    tol = _tol(tol)
    mp, sp, mq, sq, k = _gaussian_args(mean_p, var_p, mean_q, var_q, multiplicities)
    if mp.shape[0] != 1:
        raise ValueError(f"mean_p must describe a single law (shape (G,)), got {np.shape(mean_p)}")
    vals, bounds, methods = _tv_rows(mp, sp, mq, sq, k, tol)
    return Estimate(float(vals[0]), 0.0, 0, methods, float(bounds[0]))


def _tv_rows(mp, sp, mq, sq, k, tol):
    """Exact TV(P_m, Q) for every draw m: values (M,), error bounds (M,), method string.

    Rows whose Bhattacharyya interval [1 - BC, sqrt(1 - BC^2)] is narrower than ``tol`` get its
    midpoint and half width (closed form, any k and any finite variances: this is what keeps laws
    far from the target at k = 1e12 fast); the others go through ncx2 (one group) or the CF
    inversion, and their values are intersected with the interval.
    """
    mp, sp, mq, sq, k = _drop_equal_groups(mp, sp, mq, sq, k)
    M = mp.shape[0]
    if k.size == 0:
        return np.zeros(M), np.zeros(M), "identical laws"
    logbc = _log_bhattacharyya(mp, sp, mq, sq, k)
    short, mid, half = _bc_short_circuit(logbc, tol)
    vals, bounds = np.where(short, mid, np.nan), np.where(short, half, np.nan)
    methods = [_BC_METHOD] if np.any(short) else []
    rest = np.flatnonzero(~short)
    if rest.size:
        mp_r, sp_r = mp[rest], sp[rest]
        if k.size == 1:
            v_r = _tv_iso_ncx2(mp_r[:, 0], sp_r[:, 0], mq[0], sq[0], k[0])
            b_r = np.full(rest.size, 1e-10)   # scipy ncx2 accuracy (checked against mpmath in the tests)
            bad = np.isnan(v_r)
            methods.append("exact (ncx2 ball / erf half-space)")
            if np.any(bad):
                v_r[bad], b_r[bad] = _cf_tv(_cf_params_raw(mp_r[bad], sp_r[bad], mq, sq, k, "p"), tol=tol,
                                            logbc=logbc[rest][bad])
                methods[-1] += " + CF inversion where ncx2 fails"
        else:
            v_r, b_r = _cf_tv(_cf_params_raw(mp_r, sp_r, mq, sq, k, "p"), tol=tol, logbc=logbc[rest])
            methods.append("CF inversion (smoothed Gil-Pelaez)")
        vals[rest], bounds[rest] = _bc_refine(v_r, b_r, logbc[rest])
    return vals, bounds, "; ".join(methods)


def quenched_tv(law, *, tol: float = CF_TOL) -> Estimate:
    r"""Quenched TV: :math:`\frac1M\sum_m TV(P_m, Q)`, each term exact (ncx2 or CF inversion);
    ``stderr`` is the standard error over the ``M`` internal draws, ``error_bound`` the mean
    numerical error bound, ``n = M``."""
    tol = _tol(tol)
    mp, sp, mq, sq, k = _law_args(law)
    vals, bounds, method = _tv_rows(mp, sp, mq, sq, k, tol)
    m, se = _mean_se(vals)
    return Estimate(m, se, vals.size, f"quenched TV, {method} per draw", float(bounds.mean()))


def annealed_tv(law, *, n_samples: int = 100_000, rng: np.random.Generator | None = None,
                n_draws: int | None = None) -> Estimate:
    r"""Annealed TV: :math:`TV(\bar P, Q)`, :math:`\bar P = \frac1M\sum_m P_m`, the sampler's output law.

    Monte Carlo over the per-group sufficient statistics with the bounded integrand
    :math:`E_{(\bar P+Q)/2}|\bar p - q|/(\bar p + q) = E|\tanh(\bar L/2)|`, :math:`\bar L = \log\bar p/q`
    by logsumexp over the draws; half the samples from Q, half from :math:`\bar P` (balanced over m).
    ``stderr`` is the Monte Carlo standard error for this mixture of M draws (it does not include the
    variability of the M draws themselves: see :func:`annealed_tv_stability`). With a single draw
    (deterministic sampler) the exact TV is returned. ``n_draws`` uses only the first draws.
    """
    mp, sp, mq, sq, k = _law_args(law)
    if n_draws is not None:
        n_draws = v.positive_int("n_draws", n_draws)
        if n_draws > mp.shape[0]:
            raise ValueError(f"n_draws must be <= the number of draws {mp.shape[0]}, got {n_draws}")
        mp, sp = mp[:n_draws], sp[:n_draws]
    n_samples = v.positive_int("n_samples", n_samples, minimum=4)
    rng = _rng(rng)
    if mp.shape[0] == 1 or np.all((mp == mp[0]) & (sp == sp[0])):
        vals, bounds, method = _tv_rows(mp[:1], sp[:1], mq, sq, k, CF_TOL)
        return Estimate(float(vals[0]), 0.0, mp.shape[0], f"annealed TV, single law: {method}", float(bounds[0]))
    # TV(Pbar, Q) >= 1 - BC(Pbar, Q) and BC(Pbar, Q) <= (1/sqrt(M)) sum_m BC(P_m, Q) (sqrt is subadditive):
    # when that bound B is below CF_TOL the mixture is within B of TV = 1 and no Monte Carlo is needed
    M = mp.shape[0]
    log_b = float(special.logsumexp(_log_bhattacharyya(mp, sp, mq, sq, k))) - 0.5 * math.log(M)
    b = math.exp(log_b) * (1.0 + _BC_SLACK) if log_b > -745.0 else 0.0
    if b <= CF_TOL:
        return Estimate(1.0 - 0.5 * b, 0.0, M, "annealed TV, Bhattacharyya bound TV >= 1 - (1/sqrt(M)) sum_m BC_m: "
                        "midpoint of [1 - B, 1]", 0.5 * b + 2.3e-16)
    dlt, Dlt = _standardised_safe(mp, sp, mq, sq, k)
    val, se, n = _mixture_tv_mc(dlt, Dlt, k, n_samples, rng, ratio=_safe_ratio(sp, sq))
    return Estimate(val, se, n, f"annealed TV, Monte Carlo over sufficient statistics, M = {mp.shape[0]} draws")


def annealed_tv_stability(law, *, n_samples: int = 100_000, rng: np.random.Generator | None = None):
    """Annealed TV on the nested subsets of the first M/4, M/2 and M internal draws.

    The M draws are a Monte Carlo approximation of the sampler's mixture over its internal
    randomness; values that drift by more than their Monte Carlo errors across the three subsets mean
    M is too small. Returns a list of (M', Estimate).
    """
    mp, _, _, _, _ = _law_args(law)
    M = mp.shape[0]
    sizes = sorted({max(1, M // 4), max(1, M // 2), M})
    rng = _rng(rng)
    return [(m, annealed_tv(law, n_samples=n_samples, rng=rng, n_draws=m)) for m in sizes]


def annealed_tv_isotropic_quadrature(law, *, epsabs: float = 1e-8) -> Estimate:
    r"""Annealed TV for a single isotropic group by deterministic quadrature (cross-check).

    The mixture and the target depend on x only through :math:`(U, T)` (projection on the mean
    direction, squared residual radius), so :math:`TV = \tfrac12\iint|\bar p - q|\,dU\,dT` is a 2-D
    integral whatever k is (1-D when k = 1 or when all variances equal the target's). The integral
    over U is exact (sign changes located on a 4001-point grid, refined by brentq, then differences of
    normal CDFs); the integral over :math:`v=\sqrt T` (smooth at 0) uses ``scipy.integrate.quad``.
    A cross-check tool: cost grows with M.
    """
    epsabs = _tol(epsabs, "epsabs")
    mp, sp, mq, sq, k = _law_args(law)
    if k.size != 1:
        raise ValueError(f"law must have a single group (n_columns = 1), got {k.size}")
    dlt, Dlt = _standardised(mp, sp, mq, sq, k)
    dlt, Dlt, kk = dlt[:, 0], Dlt[:, 0], int(k[0])
    M = dlt.size
    sd = np.sqrt(1.0 + dlt)
    u_lo = min(-12.0, float(np.min(Dlt - 12 * sd)))
    u_hi = max(12.0, float(np.max(Dlt + 12 * sd)))
    u_grid = np.linspace(u_lo, u_hi, 4001)

    def abs_diff_u(log_cp, log_cq):
        """int |sum_m e^{log_cp[m]} N(u; Dlt_m, 1+dlt_m) - e^{log_cq} N(u; 0, 1)| du, exactly: the
        sign changes of the integrand are located on a fine grid and refined with brentq, and each
        piece is a difference of normal CDFs."""
        def h(u):
            u = np.atleast_1d(u)[None, :]
            lp = log_cp[:, None] - 0.5 * (u - Dlt[:, None]) ** 2 / (1 + dlt[:, None]) - 0.5 * np.log(2 * np.pi * (1 + dlt[:, None]))
            lq = log_cq - 0.5 * u * u - 0.5 * math.log(2 * math.pi)
            return (special.logsumexp(lp, axis=0) - math.log(M) - lq).ravel()
        hv = h(u_grid)
        roots = [optimize.brentq(lambda u: float(h(u)[0]), u_grid[i], u_grid[i + 1], xtol=1e-14)
                 for i in np.flatnonzero(np.sign(hv[:-1]) * np.sign(hv[1:]) < 0)]
        edges = np.array([-np.inf] + roots + [np.inf])
        cdf_p = stats.norm.cdf((edges[None, :] - Dlt[:, None]) / sd[:, None])            # (M, n_edges)
        cdf_q = stats.norm.cdf(edges)
        wp = np.exp(log_cp - math.log(M))
        pieces = wp @ np.diff(cdf_p, axis=1) - math.exp(log_cq) * np.diff(cdf_q)
        return float(np.sum(np.abs(pieces)))

    one_d = kk == 1 or np.all(dlt == 0.0)
    if one_d:
        val = 0.5 * abs_diff_u(np.zeros(M), 0.0)
        return Estimate(val, 0.0, 0, "annealed TV, exact 1-D integral over U (roots + normal CDFs)", 1e-12)
    df = kk - 1
    # outer integral over v = sqrt(T) (smooth at 0), chi2 densities in log space
    lo_t = min(stats.chi2.ppf(1e-15, df) * float(np.min(1 + dlt)), stats.chi2.ppf(1e-15, df))
    hi_t = max(stats.chi2.isf(1e-15, df) * float(np.max(1 + dlt)), stats.chi2.isf(1e-15, df))
    v_lo, v_hi = math.sqrt(max(lo_t, 0.0)), math.sqrt(hi_t)

    def inner(vv):
        if vv <= 0:
            return 0.0
        t = vv * vv
        lq = stats.chi2.logpdf(t, df) + math.log(2 * vv)
        lp = stats.chi2.logpdf(t / (1 + dlt), df) - np.log1p(dlt) + math.log(2 * vv)
        top = max(lq, float(lp.max()))
        if top < -745:
            return 0.0
        return math.exp(top) * abs_diff_u(lp - top, lq - top)

    val, err = integrate.quad(inner, v_lo, v_hi, epsabs=epsabs, epsrel=1e-10, limit=200)
    return Estimate(0.5 * float(val), 0.0, 0, "annealed TV, 2-D integral over (U, T): exact in U, quad in T",
                    0.5 * float(err))


# --------------------------------------------------------------------------------------------------
# 4. product mixtures: densities on a grid
# --------------------------------------------------------------------------------------------------

class ColumnDensity:
    """A 1-D density tabulated on a fine grid (the interface for non-Gaussian column laws).

    ``x_grid``: strictly increasing, at least 3 points, covering the mass of the law; ``density``:
    values >= 0 (normalised here with the trapezoid rule, which is spectrally accurate for smooth,
    rapidly decaying densities on a uniform grid). ``log_density`` may be given instead of
    ``density`` to keep far tails from underflowing.
    """

    def __init__(self, x_grid, density=None, *, log_density=None):
        x = v.finite_array("x_grid", x_grid, ndim=1)
        if x.size < 3 or np.any(np.diff(x) <= 0):
            raise ValueError("x_grid must be strictly increasing with at least 3 points")
        if (density is None) == (log_density is None):
            raise ValueError("give exactly one of density and log_density")
        if density is not None:
            p = v.finite_array("density", density, ndim=1)
            if p.shape != x.shape:
                raise ValueError(f"density must have the shape of x_grid {x.shape}, got {p.shape}")
            if np.any(p < 0) or not np.any(p > 0):
                raise ValueError("density must be >= 0 and not identically 0")
            with np.errstate(divide="ignore"):
                lp = np.log(p)
        else:
            lp = np.asarray(log_density, dtype=np.float64)
            if lp.shape != x.shape or np.any(np.isnan(lp)) or np.any(lp == np.inf) or not np.any(np.isfinite(lp)):
                raise ValueError("log_density must have the shape of x_grid, no NaN or +inf, not all -inf")
        dx = np.diff(x)
        w = np.zeros_like(x)
        w[:-1] += 0.5 * dx
        w[1:] += 0.5 * dx
        logz = special.logsumexp(lp, b=w)
        self.x = x
        self.weights = w
        self.log_density = lp - logz
        self.density = np.exp(self.log_density)

    @classmethod
    def from_callable(cls, pdf: Callable, x_grid, *, log: bool = False) -> ColumnDensity:
        """Tabulate ``pdf`` (or a log-pdf when ``log=True``) on ``x_grid``."""
        x = v.finite_array("x_grid", x_grid, ndim=1)
        vals = np.asarray(pdf(x), dtype=np.float64)
        return cls(x, log_density=vals) if log else cls(x, density=vals)

    def logpdf(self, x):
        """Linear interpolation of the log-density; -inf outside the grid."""
        x = np.asarray(x, dtype=np.float64)
        lp = self.log_density
        fin = np.isfinite(lp)
        out = np.interp(x, self.x[fin], lp[fin], left=-np.inf, right=-np.inf)
        return out


def _as_pair(p, q):
    """(trapezoid weight * p, l = log p - log q where p > 0, p as ColumnDensity, q on p's grid)."""
    if not isinstance(p, ColumnDensity):
        if isinstance(q, ColumnDensity) and callable(p):
            p = ColumnDensity.from_callable(p, q.x)
        else:
            raise ValueError("p columns must be ColumnDensity objects (or callables next to a ColumnDensity)")
    if isinstance(q, ColumnDensity):
        lq = q.log_density if (q.x.shape == p.x.shape and np.array_equal(q.x, p.x)) else q.logpdf(p.x)
    elif callable(q):
        qv = np.asarray(q(p.x), dtype=np.float64)
        if qv.shape != p.x.shape or np.any(~np.isfinite(qv)) or np.any(qv < 0):
            raise ValueError("q callable must return finite non-negative densities on the grid")
        lq = ColumnDensity(p.x, density=qv).log_density
    else:
        raise ValueError("q columns must be ColumnDensity objects or callables")
    mass = p.density > 0
    if np.any(mass & ~np.isfinite(lq)):
        raise ValueError("q must be > 0 wherever p > 0 on the grid (otherwise KL is infinite and the LLR has an atom at +inf)")
    return p.weights[mass] * p.density[mass], p.log_density[mass] - lq[mass], p, np.exp(lq)


def _columns(cols, G, name):
    if isinstance(cols, ColumnDensity) or callable(cols):
        cols = [cols]
    try:
        cols = list(cols)
    except TypeError:
        raise ValueError(f"{name} must be a ColumnDensity, a callable or a sequence of them, "
                         f"got {type(cols).__name__}") from None
    if G is not None and len(cols) != G:
        raise ValueError(f"{name} must have one column law per group ({G}), got {len(cols)}")
    return cols


def _tv_1d_grid(x, p, q):
    """(1/2) int |p - q| on the grid: trapezoid rule, with |linear interpolant| integrated exactly on
    the intervals where p - q changes sign (the kinks); error O(h^2)."""
    f = p - q
    h = np.diff(x)
    f0, f1 = f[:-1], f[1:]
    cross = f0 * f1 < 0
    trap = 0.5 * h * (np.abs(f0) + np.abs(f1))
    den = np.where(cross, np.abs(f0) + np.abs(f1), 1.0)
    exact = 0.5 * h * (f0 * f0 + f1 * f1) / den
    return float(0.5 * np.sum(np.where(cross, exact, trap)))


def kl_product_density(p_cols, q_cols, multiplicities) -> float:
    r""":math:`KL(P\|Q) = \sum_g k_g \int p_g \log(p_g/q_g)` by quadrature on the grid of ``p_g``."""
    p_cols = _columns(p_cols, None, "p_cols")
    q_cols = _columns(q_cols, len(p_cols), "q_cols")
    k = _multiplicities(multiplicities, len(p_cols))
    total = 0.0
    for pc, qc, kg in zip(p_cols, q_cols, k):
        wp, ell, _, _ = _as_pair(pc, qc)
        total += float(kg) * float(np.sum(wp * ell))
    return total


def tv_product_density(p_cols, q_cols, multiplicities, *, tol: float = 1e-9, max_doublings: int = 60) -> Estimate:
    r"""TV between products of 1-D column laws, at any multiplicity, by CF inversion.

    Per coordinate :math:`\ell = \log p_g - \log q_g`; :math:`\varphi_g(\theta) - 1 = \int p_g(e^{i\theta\ell}-1)`
    by quadrature on the grid, :math:`\log\varphi = \sum_g k_g\,\mathrm{log1p}(\varphi_g - 1)` (the
    branch of the complex log is irrelevant for integer powers), then the smoothed Gil-Pelaez formula.
    One coordinate in total (d = 1): direct quadrature of |p - q|/2.

    ``error_bound`` = quadrature error + truncation estimate :math:`\max|\varphi|/U` on the last octave
    (a sampled estimate, not a bound: |phi| need not be monotone for general densities). The grid CF
    is that of a discrete law and is trusted only while theta * (largest change of l between grid
    points) <= 0.5; if the truncation point would exceed this, the estimate is returned with the
    larger error estimate and ``method`` says so.
    """
    tol = _tol(tol)
    max_doublings = v.positive_int("max_doublings", max_doublings)
    p_cols = _columns(p_cols, None, "p_cols")
    q_cols = _columns(q_cols, len(p_cols), "q_cols")
    k = _multiplicities(multiplicities, len(p_cols))
    pairs = [_as_pair(pc, qc) for pc, qc in zip(p_cols, q_cols)]
    if int(k.sum()) == 1:
        pc, q_on = pairs[0][2], pairs[0][3]
        tv_h = _tv_1d_grid(pc.x, pc.density, q_on)
        tv_2h = _tv_1d_grid(pc.x[::2], pc.density[::2], q_on[::2])
        return Estimate(tv_h, 0.0, 0, "1-D trapezoid quadrature of |p - q|/2 (exact on linear pieces at crossings)",
                        abs(tv_h - tv_2h))
    kf = k.astype(np.float64)
    mean = sum(kg * float(np.sum(wp * ell)) for kg, (wp, ell, _, _) in zip(kf, pairs))
    var = sum(kg * float(np.sum(wp * (ell - np.sum(wp * ell)) ** 2)) for kg, (wp, ell, _, _) in zip(kf, pairs))
    sig = math.sqrt(var)
    if sig == 0.0 and mean == 0.0:
        return Estimate(0.0, 0.0, 0, "identical column laws", 0.0)
    if sig <= tol:
        # L is constant up to sd sig, and f(l) = (1 - e^{-l})^+ is 1-Lipschitz: TV = E_P f(L) is within
        # E|L - mean| <= sig of f(mean). A constant L != 0 means P lives on part of Q's support (p = e^L q
        # there); the CF of such an L does not decay, and its inversion would not end.
        return Estimate(-math.expm1(-max(mean, 0.0)), 0.0, 0,
                        "log-likelihood ratio constant under P: TV = 1 - exp(-E_P L)", sig + 2.3e-16)
    # resolution limit of the grid CF
    dl = []
    for wp, ell, _, _ in pairs:
        sig_mass = wp > 1e-14 * wp.max()
        e = ell[sig_mass]
        dl.append(np.max(np.abs(np.diff(e))) if e.size > 1 else 0.0)
    u_res = 0.5 / max(max(dl), 1e-300)

    def logcf(theta):
        log_mod, arg = 0.0, 0.0
        for kg, (wp, ell, _, _) in zip(kf, pairs):
            z = np.sum(wp * np.expm1(1j * theta * ell))     # phi_g - 1
            x, y = z.real, z.imag
            mod2_m1 = 2 * x + x * x + y * y                 # |phi_g|^2 - 1, accurate where |phi_g| is near 1
            if mod2_m1 > -0.5:
                log_mod2 = math.log1p(mod2_m1)
            else:                                           # |phi_g| small: the log1p form can round below -1
                mod2 = (1.0 + x) ** 2 + y * y
                log_mod2 = math.log(mod2) if mod2 > 0.0 else -math.inf
            log_mod += kg * 0.5 * log_mod2
            arg += kg * math.atan2(y, 1 + x)
        return complex(log_mod, arg)                        # real part -inf where a phi_g is 0: phi = 0

    def f(theta):
        lc = logcf(theta)
        return (np.expm1(lc) / (theta * (1.0 + 1j * theta))).imag

    def mod(theta):
        return math.exp(logcf(theta).real)

    lo = 1.0 / max(1.0, sig, abs(mean)) / 16.0
    U = max(16.0 / sig, 4 * lo)
    resolved = True
    for _ in range(max_doublings):
        if U > u_res:
            U, resolved = u_res, False
            break
        if max(mod(th) for th in np.linspace(U / 2, U, 9)) / U <= 0.25 * tol:
            break
        U *= 2.0
    tail = max(mod(th) for th in np.linspace(U / 2, U, 9)) / U
    pts = _octave_points(lo, U) if U > lo else np.array([U])
    edges = np.concatenate([[0.0], pts])
    total, err = 0.0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        for a_, b_ in zip(edges[:-1], edges[1:]):
            val, e = integrate.quad(f, a_, b_, epsabs=tol / (4 * len(pts)), epsrel=1e-10, limit=500)
            total += val
            err += e
    total += 0.5 * math.pi - math.atan(U)
    method = "CF inversion (smoothed Gil-Pelaez) of the grid CF"
    if not resolved:
        method += "; truncated at the grid resolution limit"
    return Estimate(float(min(max(total / math.pi, 0.0), 1.0)), 0.0, 0, method, float((err + tail) / math.pi))


# --------------------------------------------------------------------------------------------------
# 5. sample-based distances (general mixtures, samples of shape (n, d))
# --------------------------------------------------------------------------------------------------

def _samples(name, x):
    x = v.finite_array(name, x, ndim=(1, 2))
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] < 2:
        raise ValueError(f"{name} must have at least 2 samples (rows), got {x.shape[0]}")
    return x


def _w2sq_1d(xs, ys):
    """Squared W2 between empirical laws of sorted 1-D samples, along the last axis (exact quantile integral)."""
    n, m = xs.shape[-1], ys.shape[-1]
    if n == m:
        return np.mean((xs - ys) ** 2, axis=-1)
    u = np.union1d(np.arange(1, n) / n, np.arange(1, m) / m)
    edges = np.concatenate([[0.0], u, [1.0]])
    mid = 0.5 * (edges[:-1] + edges[1:])
    ix = np.minimum((mid * n).astype(np.int64), n - 1)
    iy = np.minimum((mid * m).astype(np.int64), m - 1)
    return np.sum(np.diff(edges) * (xs[..., ix] - ys[..., iy]) ** 2, axis=-1)


def _n_boot(n_boot):
    """0 (no interval) or at least 2 bootstrap replicates (one replicate has no standard deviation)."""
    n_boot = v.positive_int("n_boot", n_boot, minimum=0)
    if n_boot == 1:
        raise ValueError("n_boot must be 0 (no interval) or an integer >= 2, got 1")
    return n_boot


def _percentile_ci(boot, level):
    a = (1 - level) / 2
    return (float(np.quantile(boot, a)), float(np.quantile(boot, 1 - a)))


def sliced_w2(x, y, *, n_projections: int = 200, rng: np.random.Generator | None = None,
              n_boot: int = 200, level: float = 0.95) -> Estimate:
    r"""Sliced W2 between the empirical laws of ``x`` (n, d) and ``y`` (m, d):
    :math:`SW_2 = (E_\omega W_2^2(\omega^\top x, \omega^\top y))^{1/2}`, :math:`\omega` uniform on the
    sphere (``n_projections`` directions from ``rng``). 1-D W2 between empirical laws is computed exactly
    (quantile functions). ``ci``: percentile bootstrap (rows of x and y resampled, directions redrawn),
    ``stderr``: bootstrap standard deviation. In 1-D the only directions are +-1, so the value is the
    exact empirical W2.
    """
    x = _samples("x", x)
    y = _samples("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    n_projections = v.positive_int("n_projections", n_projections)
    n_boot = _n_boot(n_boot)
    level = v.in_open_interval("level", level, 0.0, 1.0)
    rng = _rng(rng)
    d = x.shape[1]

    def sw(xx, yy):
        if d == 1:
            om = np.ones((1, 1))
        else:
            om = rng.standard_normal((d, n_projections))
            om /= np.linalg.norm(om, axis=0)
        px = np.sort((xx @ om).T, axis=-1)
        py = np.sort((yy @ om).T, axis=-1)
        return math.sqrt(float(np.mean(_w2sq_1d(px, py))))

    val = sw(x, y)
    if n_boot == 0:
        return Estimate(val, float("nan"), x.shape[0] + y.shape[0], "sliced W2 (empirical)")
    boot = np.array([sw(x[rng.integers(0, x.shape[0], x.shape[0])], y[rng.integers(0, y.shape[0], y.shape[0])])
                     for _ in range(n_boot)])
    return Estimate(val, float(boot.std(ddof=1)), x.shape[0] + y.shape[0], "sliced W2 (empirical)",
                    ci=_percentile_ci(boot, level), ci_method=f"percentile bootstrap, {n_boot} replicates")


def energy_distance(x, y, *, rng: np.random.Generator | None = None, n_boot: int = 200,
                    level: float = 0.95) -> Estimate:
    r"""Energy distance :math:`2E|X-Y| - E|X-X'| - E|Y-Y'|` (U-statistic, unbiased; the squared form
    of Szekely & Rizzo, the quantity ``scipy.stats.energy_distance`` returns the square root of in 1-D,
    up to the V- vs U-statistic). ``ci``: percentile bootstrap over rows (index resampling of the
    precomputed distance matrix); near 0 the statistic is degenerate and the interval is only rough.
    Memory O((n+m)^2).
    """
    x = _samples("x", x)
    y = _samples("y", y)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    n_boot = _n_boot(n_boot)
    level = v.in_open_interval("level", level, 0.0, 1.0)
    rng = _rng(rng)
    z = np.vstack([x, y])
    sq = np.sum(z * z, axis=1)
    D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * z @ z.T, 0.0))
    n, m = x.shape[0], y.shape[0]

    def stat(ix, iy):
        dxy = D[np.ix_(ix, iy)].mean()
        dxx = D[np.ix_(ix, ix)]
        dyy = D[np.ix_(iy, iy)]
        return 2 * dxy - dxx.sum() / (ix.size * (ix.size - 1)) - dyy.sum() / (iy.size * (iy.size - 1))

    ix0, iy0 = np.arange(n), n + np.arange(m)
    val = float(stat(ix0, iy0))
    if n_boot == 0:
        return Estimate(val, float("nan"), n + m, "energy distance (U-statistic)")
    boot = np.array([stat(rng.choice(ix0, n), rng.choice(iy0, m)) for _ in range(n_boot)])
    return Estimate(val, float(boot.std(ddof=1)), n + m, "energy distance (U-statistic)",
                    ci=_percentile_ci(boot, level), ci_method=f"percentile bootstrap, {n_boot} replicates")


def mode_weight_tv(labels, *, n_components: int, target_weights=None, target_labels=None,
                   rng: np.random.Generator | None = None, n_boot: int = 1000, level: float = 0.95) -> Estimate:
    r"""TV between mode-occupancy weights: :math:`\tfrac12\sum_j|\hat w_j - w_j|`.

    ``labels``: component index (0..n_components-1) assigned to each output sample (e.g. the nearest
    or most responsible component). Compare with exact ``target_weights`` or with the labels of target
    samples (``target_labels``). This lower-bounds TV of the laws (data processing) when the target
    weights are the law of the *same* labelling map under the target (equal to the mixture weights
    only for well separated components). ``ci``: percentile bootstrap (labels resampled; target
    labels too when given).
    """
    n_components = v.positive_int("n_components", n_components)
    n_boot = _n_boot(n_boot)
    level = v.in_open_interval("level", level, 0.0, 1.0)
    rng = _rng(rng)

    def as_labels(name, lab):
        lab = np.asarray(lab)
        if lab.ndim != 1 or lab.size == 0 or not np.issubdtype(lab.dtype, np.integer):
            raise ValueError(f"{name} must be a non-empty 1-D integer array")
        if lab.min() < 0 or lab.max() >= n_components:
            raise ValueError(f"{name} must lie in 0..{n_components - 1}")
        return lab

    lab = as_labels("labels", labels)
    if (target_weights is None) == (target_labels is None):
        raise ValueError("give exactly one of target_weights and target_labels")
    tl = None
    if target_weights is not None:
        tw = v.finite_array("target_weights", target_weights, ndim=1)
        if tw.shape != (n_components,) or np.any(tw < 0) or abs(tw.sum() - 1) > 1e-10:
            raise ValueError(f"target_weights must be {n_components} non-negative numbers summing to one")
    else:
        tl = as_labels("target_labels", target_labels)
        tw = np.bincount(tl, minlength=n_components) / tl.size
    w = np.bincount(lab, minlength=n_components) / lab.size
    val = 0.5 * float(np.abs(w - tw).sum())
    if n_boot == 0:
        return Estimate(val, float("nan"), lab.size, "TV of mode weights")
    wb = rng.multinomial(lab.size, w, size=n_boot) / lab.size
    twb = tw if tl is None else rng.multinomial(tl.size, tw, size=n_boot) / tl.size
    boot = 0.5 * np.abs(wb - twb).sum(axis=1)
    return Estimate(val, float(boot.std(ddof=1)), lab.size, "TV of mode weights",
                    ci=_percentile_ci(boot, level), ci_method=f"percentile bootstrap, {n_boot} replicates")
