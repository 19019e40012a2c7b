r"""Targets with a controlled score error: an exact Gaussian reference law, a perturbed score.

The theorems with a score-error term (Li & Jiao, arXiv 2410.13738, assumption (A3) [S]; Gupta, Cai & Chen,
arXiv 2406.00924, Assumption 2.4 [S]; Wang, He & Tao, arXiv 2406.12839, the score term of their sampling
bound [R]) assume an estimate :math:`\hat s_t` of the score with

.. math::  E_{x\sim q_t}\,\|\hat s_t(x) - \nabla\log q_t(x)\|^2 \le \varepsilon_{score}^2,

the squared norm being the **total over the d coordinates** (Li & Jiao's later version, eq. 12, and GCC's
assumption 2.4 average it over the steps as well). :class:`PerturbedGaussian` realises such an estimate on
a grouped Gaussian target with an error that is *affine in x per column*, so the perturbed score stays
affine and law mode (:func:`experiments.laws.gaussian_law`) stays exact:

.. math::
   e_t(x)_g = c_g\, w(t)\,\Big(\alpha_g\,\frac{x_g - m_g(t)}{\sqrt{v_g(t)}} + \beta_g\Big),\qquad
   \hat s_t = \nabla\log q_t + e_t,

where :math:`m_g(t) = e^{-t}m_g` and :math:`v_g(t) = e^{-2t}v_g + 1 - e^{-2t}` are the exact marginal
parameters of column g, :math:`(\alpha_g, \beta_g)` fixed shape parameters (:math:`\alpha` mis-scales
the variance the score pulls towards, :math:`\beta` shifts its mean), :math:`w(t)` a time profile and
:math:`c_g` the normalisation. Under :math:`x\sim q_t` the standardised coordinate
:math:`z = (x_g - m_g(t))/\sqrt{v_g(t)}` is N(0, 1), so :math:`E(\alpha z + \beta)^2 = \alpha^2+\beta^2`
and, column g standing for :math:`k_g` i.i.d. coordinates,

.. math::  E_{q_t}\|e_t\|^2 = w(t)^2 \sum_g k_g\, c_g^2\,(\alpha_g^2+\beta_g^2).

Conventions (``convention``):

* ``"total"`` (default, the theorems' convention): :math:`c_g = \varepsilon_{score}/\sqrt{\sum_h k_h
  (\alpha_h^2+\beta_h^2)}`, so :math:`E_{q_t}\|e_t\|^2 = \varepsilon_{score}^2 w(t)^2` **in total over
  the d coordinates**, whatever d. Each coordinate then carries an error of order
  :math:`\varepsilon_{score}/\sqrt d`: results at different d are comparable at equal total error. The
  per-column coefficient depends on d, so a law computed at one d must not be lifted to another
  (:class:`ScoreErrorFamily` scans one d at a time for this convention).
* ``"per_coordinate"``: :math:`c_g = \varepsilon_{score}/\sqrt{\alpha_g^2+\beta_g^2}`, so every
  coordinate has :math:`E e_{t,j}^2 = \varepsilon_{score}^2 w(t)^2` and the total is
  :math:`d\,\varepsilon_{score}^2 w(t)^2`. The column law does not depend on d (liftable).

Time profiles (``profile``), :math:`\sigma_t^2 = 1 - e^{-2t}` the OU noise variance:

* ``"constant"``: :math:`w(t) = 1` (the same L2 error at every noise level: the time average of the
  theorems' definition equals :math:`\varepsilon_{score}^2` on any grid);
* ``"inv_sigma"``: :math:`w(t) = 1/\sigma_t`, an error that grows at small noise: our emulation [R] of the
  "less trained" score of Wang, He & Tao (arXiv 2406.12839). In the VE variables of
  :mod:`experiments.samplers.ve` (:math:`\hat s = e^{-t}s`, :math:`\hat\sigma^2 = e^{2t}-1`) this is exactly
  :math:`E\|\hat e\|^2 = \varepsilon_{score}^2/\hat\sigma^2`, i.e. :math:`e\propto 1/\hat\sigma`.

Lipschitz constants. The Jacobian of :math:`\hat s_t` is diagonal in the eigenbasis with entries
:math:`-1/v_g(t) + c_g w(t)\alpha_g/\sqrt{v_g(t)}`. :meth:`PerturbedGaussian.estimate_lipschitz`
returns the maximum of their absolute values (the constant of GCC's assumption 2.3 on the estimate),
:meth:`~PerturbedGaussian.error_lipschitz` that of :math:`e_t` alone, and
:meth:`~PerturbedGaussian.lipschitz` the larger of the exact score's and the estimate's constants (one
L that serves both assumptions 2.2 and 2.3).

Everything else is exact: :meth:`~PerturbedGaussian.marginal_params`, ``log_density``, ``sample`` and
``second_moment`` describe the true law (the reference law of every error), only ``score`` and
``score_full`` carry the perturbation. With ``eps_score = 0`` the score is the parent's, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments import _validate as v
from experiments.targets import GroupedGaussian

PROFILES = ("constant", "inv_sigma")
CONVENTIONS = ("total", "per_coordinate")


def size_profile(profile: str, t) -> np.ndarray:
    r"""The time profile :math:`w(t)` of the error's L2 size (see the module docstring)."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    t = v.times("t", t)
    if profile == "constant":
        return np.ones_like(t, dtype=np.float64)
    if np.any(t <= 0):
        raise ValueError("t must be > 0 for profile 'inv_sigma' (the error is infinite at t = 0)")
    return 1.0 / np.sqrt(-np.expm1(-2.0 * t))


def _shape(name, value, n):
    arr = np.atleast_1d(v.finite_array(name, value, ndim=(0, 1))).astype(np.float64)
    if arr.size == 1:
        arr = np.full(n, arr.item())
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},) (one value per group), got {np.shape(value)}")
    return arr


class PerturbedGaussian(GroupedGaussian):
    """A :class:`~experiments.targets.GroupedGaussian` whose ``score`` carries an affine error of known
    L2 size (module docstring). Parameters: the exact target ``base``, ``eps_score >= 0``, the shape
    ``alpha``, ``beta`` (scalars or one value per group), ``profile`` and ``convention``."""

    is_gaussian = True

    def __init__(self, base: GroupedGaussian, eps_score: float, alpha=1.0, beta=1.0, *,
                 profile: str = "constant", convention: str = "total"):
        if not isinstance(base, GroupedGaussian):
            raise ValueError(f"base must be a GroupedGaussian, got {type(base).__name__}")
        super().__init__(base.variances, base.means, base.multiplicities, basis=base.basis)
        self.eps_score = v.nonnegative("eps_score", eps_score)
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
        self.profile, self.convention = profile, convention
        self.alpha = _shape("alpha", alpha, self.n_columns)
        self.beta = _shape("beta", beta, self.n_columns)
        size2 = self.alpha**2 + self.beta**2                       # E (alpha z + beta)^2 per coordinate
        if convention == "total":
            total = float(np.sum(self.multiplicities * size2))
            if total <= 0:
                raise ValueError("alpha and beta must not all be zero (the error would have no direction)")
            self.coef = np.full(self.n_columns, self.eps_score / np.sqrt(total))
        else:
            if np.any(size2 <= 0):
                raise ValueError("alpha**2 + beta**2 must be > 0 in every group for convention 'per_coordinate'")
            self.coef = self.eps_score / np.sqrt(size2)

    # -- the error ------------------------------------------------------------------------------
    def _error_cols(self, x, t_rows):
        m, var = self.marginal_params(t_rows)
        w = size_profile(self.profile, t_rows)
        w = w[..., None] if np.ndim(w) else w
        return (self.coef * w) * (self.alpha * (x - m) / np.sqrt(var) + self.beta)

    def error(self, x, t):
        r""":math:`e_t(x)` on the representative columns, shape (batch, n_columns)."""
        x, t = self._check_x_t(x, t)
        return self._error_cols(x, t[..., 0] if np.ndim(t) else t)

    def _exact_trusted(self, x, t):
        parent = getattr(super(), "score_trusted", None)      # GroupedGaussian's fast path, when it has one
        if parent is not None:
            return parent(x, t)
        t = np.asarray(t, dtype=np.float64)
        m, var = self.marginal_params(t.reshape(-1) if t.ndim else t)
        return -(x - m) / var

    def score_trusted(self, x, t):
        """The perturbed score without input validation (law mode calls this one when it exists)."""
        s = self._exact_trusted(x, t)
        if self.eps_score == 0.0:
            return s
        t = np.asarray(t, dtype=np.float64)
        return s + self._error_cols(x, t.reshape(-1) if t.ndim else t)

    def score(self, x, t):
        x, t = self._check_x_t(x, t)
        return self.score_trusted(x, t)

    def exact_score(self, x, t):
        """The unperturbed score :math:`\\nabla\\log q_t`."""
        x, t = self._check_x_t(x, t)
        return self._exact_trusted(x, t)

    def score_full(self, y, t):
        s = super().score_full(y, t)
        if self.eps_score == 0.0:
            return s
        y, t = self._check_x_t(y, t, self.dim)
        tt = t[..., 0] if np.ndim(t) else t
        m, var = self._full_params(tt)
        w = size_profile(self.profile, tt)
        w = w[..., None] if np.ndim(w) else w
        rep = lambda a: np.repeat(a, self.multiplicities)          # noqa: E731
        e = (rep(self.coef) * w) * (rep(self.alpha) * (self._to_eigen(y) - m) / np.sqrt(var) + rep(self.beta))
        return s + self._from_eigen(e)

    # -- closed forms of its size ---------------------------------------------------------------
    def l2_error(self, t) -> np.ndarray:
        r""":math:`\sqrt{E_{x\sim q_t}\|e_t(x)\|^2}`, the squared norm summed over all d coordinates."""
        w = size_profile(self.profile, t)
        return w * np.sqrt(np.sum(self.multiplicities * self.coef**2 * (self.alpha**2 + self.beta**2)))

    def l2_error_per_coordinate(self, t) -> np.ndarray:
        """Root mean square over the d coordinates: ``l2_error(t) / sqrt(d)``."""
        return self.l2_error(t) / np.sqrt(self.dim)

    # -- Lipschitz constants ----------------------------------------------------------------------
    def _jac_error(self, t):
        t = v.times("t", t)
        _, var = self.marginal_params(t)
        w = size_profile(self.profile, t)
        w = w[..., None] if np.ndim(w) else w
        return self.coef * w * self.alpha / np.sqrt(var), var

    def error_lipschitz(self, t) -> float:
        """Lipschitz constant of :math:`x\\mapsto e_t(x)` (exact: the Jacobian is diagonal)."""
        je, _ = self._jac_error(t)
        return float(np.max(np.abs(je)))

    def estimate_lipschitz(self, t) -> float:
        r"""Lipschitz constant of the estimate :math:`\hat s_t` (exact): :math:`\max_g|-1/v_g + c_g w\alpha_g/\sqrt{v_g}|`."""
        je, var = self._jac_error(t)
        return float(np.max(np.abs(-1.0 / var + je)))

    def lipschitz(self, t) -> float:
        """max(exact score's constant, estimate's constant): one L for both assumptions."""
        return max(super().lipschitz(t), self.estimate_lipschitz(t))

    def __repr__(self):
        return (f"PerturbedGaussian(groups={self.n_columns}, dim={self.dim}, eps_score={self.eps_score!r}, "
                f"profile={self.profile!r}, convention={self.convention!r})")


@dataclass(frozen=True)
class ScoreErrorFamily:
    """A target family (``name``, ``at(d)``, ``lipschitz(delta)``, ``description``; picklable, usable in
    :class:`experiments.cells.Scan`) whose members are :class:`PerturbedGaussian` around the members of
    an exact :class:`experiments.studies.GaussianFamily` ``base``.

    ``alpha`` and ``beta`` are tuples of one value, or one value per group of the base family.
    With ``convention="total"`` the column law depends on d: give a scan one d only.
    """

    base: object
    eps_score: float
    alpha: tuple = (1.0,)
    beta: tuple = (1.0,)
    profile: str = "constant"
    convention: str = "total"

    def __post_init__(self):
        v.nonnegative("eps_score", self.eps_score)
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {self.profile!r}")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {self.convention!r}")
        self.at(len(self.base.fractions))                      # validates the shape against the groups

    @property
    def name(self) -> str:
        return f"{self.base.name}+err{self.eps_score:.4g}_{self.profile}_{self.convention}"

    @property
    def description(self) -> str:
        return (f"{self.base.name} with an affine score error, E||e_t||^2 = {self.eps_score:g}^2 w(t)^2 "
                f"({self.convention}), profile {self.profile}, shape alpha={self.alpha}, beta={self.beta}")

    @property
    def fractions(self):
        return self.base.fractions

    @property
    def d_independent(self) -> bool:
        """Whether the column law is the same at every d (not with the ``"total"`` convention)."""
        return self.convention != "total" and getattr(self.base, "d_independent", False)

    def at(self, d: int) -> PerturbedGaussian:
        return PerturbedGaussian(self.base.at(d), self.eps_score, self.alpha if len(self.alpha) > 1 else self.alpha[0],
                                 self.beta if len(self.beta) > 1 else self.beta[0],
                                 profile=self.profile, convention=self.convention)

    def lipschitz(self, delta: float) -> float:
        """sup_{t >= delta} of :meth:`PerturbedGaussian.lipschitz`, valid for every d: with the
        ``"total"`` convention the per-coordinate error shrinks as d grows, so the smallest d (one
        coordinate per group) gives the largest constant."""
        return self.at(len(self.base.fractions)).lipschitz_sup(delta)
