r"""Exact-score targets: laws whose noised marginals, log-densities and scores are closed form.

Dimension enters through multiplicities (DESIGN section 4). A target has ``n_columns``
*representative columns*; column ``g`` stands for ``multiplicities[g]`` i.i.d. coordinates of the
full ``dim``-dimensional law. Samplers run on arrays of shape ``(batch, n_columns)``, so their
cost does not depend on ``dim``; :mod:`experiments.laws` lifts column laws back to dimension ``dim``.

Every target gives, at each OU time ``t`` (scalar, or one value per row: shape ``(batch,)`` or
``(batch, 1)``):

``score(x, t)``            :math:`\nabla\log q_t` on representative columns, shape ``(batch, n_columns)``
``log_density(x, t)``      log-density of the representative columns, shape ``(batch,)``
``sample(n, t, rng)``      exact samples of the representative columns at level ``t``
``score_full``, ``log_density_full``, ``sample_full``
                            the same in the full ``dim``-dimensional coordinates
``lipschitz(t)``            a bound on the Lipschitz constant of :math:`x\mapsto\nabla\log q_t(x)` on R^dim
                            (exact for Gaussians, certified upper bound for mixtures)
``second_moment()``         :math:`E\|X_0\|^2` in dimension ``dim``

Under the OU process the marginal of :math:`X_0\sim N(m, v)` is
:math:`q_t = N(e^{-t}m,\; e^{-2t}v + 1 - e^{-2t})`.
"""

from __future__ import annotations

import abc

import numpy as np

from experiments import _validate as v


def ou_variance(variance, t):
    """Variance at OU time t of a coordinate whose data variance is ``variance``: e^{-2t} v + 1 - e^{-2t}."""
    e2 = np.exp(-2.0 * t)
    return e2 * variance - np.expm1(-2.0 * t)


class Target(abc.ABC):
    """Interface shared by every exact-score target (see the module docstring)."""

    #: True when every score q_t is affine in x: law mode (exact Gaussian propagation) applies.
    is_gaussian: bool = False

    n_columns: int
    multiplicities: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.multiplicities.sum())

    # -- column space -----------------------------------------------------------------------
    @abc.abstractmethod
    def score(self, x, t) -> np.ndarray: ...

    @abc.abstractmethod
    def log_density(self, x, t) -> np.ndarray: ...

    @abc.abstractmethod
    def sample(self, n: int, t, rng: np.random.Generator) -> np.ndarray: ...

    # -- constants the theorems use ---------------------------------------------------------
    @abc.abstractmethod
    def lipschitz(self, t) -> float: ...

    @abc.abstractmethod
    def second_moment(self) -> float: ...

    def lipschitz_sup(self, t_min: float = 0.0, n_grid: int = 2001) -> float:
        """Bound on sup_{t >= t_min} L(t), taken on a grid uniform in log-SNR plus the end points.

        For the Gaussian families L(t) is monotone between its end values, so the grid maximum
        is exact; mixtures should override when a closed form exists.
        """
        t_min = v.nonnegative("t_min", t_min)
        ts = np.concatenate([[t_min], t_min + np.geomspace(1e-6, 50.0, n_grid)])
        return float(max(self.lipschitz(t) for t in ts))

    # -- helpers ------------------------------------------------------------------------------
    def _check_x_t(self, x, t, n_columns=None):
        x = v.batch_columns("x", x, self.n_columns if n_columns is None else n_columns)
        t = v.row_times("t", t, x.shape[0])
        return x, t

    def _rows(self, n, t):
        n = v.positive_int("n", n)
        return n, v.row_times("t", t, n)

    def expand(self, x) -> np.ndarray:
        """Repeat representative columns by their multiplicities: (batch, n_columns) -> (batch, dim)."""
        x = v.batch_columns("x", x, self.n_columns)
        return np.repeat(x, self.multiplicities, axis=1)


class GroupedGaussian(Target):
    r"""Gaussian with independent coordinate groups: group ``g`` has ``multiplicities[g]`` i.i.d.
    coordinates of law :math:`N(m_g, v_g)`, in the orthonormal ``basis`` (identity by default).

    Score at OU time t (affine, separable):

    .. math::  \nabla\log q_t(x)_g = -\frac{x_g - e^{-t}m_g}{e^{-2t}v_g + 1 - e^{-2t}}.

    Lipschitz constant of the score at level t: :math:`L(t) = \max_g 1/(e^{-2t}v_g + 1 - e^{-2t})`.

    Parameters
    ----------
    variances : array (G,), > 0
    means : array (G,) or scalar, default 0
    multiplicities : array (G,) of positive integers or scalar, default 1
    basis : (dim, dim) orthogonal matrix or None
        Columns are the eigen-directions, ordered group by group (as ``np.repeat`` of the groups).
    """

    is_gaussian = True

    def __init__(self, variances, means=0.0, multiplicities=1, *, basis=None):
        var = v.positive_array("variances", variances, ndim=(0, 1))
        var = np.atleast_1d(var)
        self.n_columns = var.size
        mean = v.finite_array("means", means, ndim=(0, 1))
        mean = np.broadcast_to(np.atleast_1d(mean), var.shape).astype(np.float64) if mean.size in (1, var.size) else None
        if mean is None:
            raise ValueError(f"means must be a scalar or have shape ({var.size},), got {np.shape(means)}")
        mult = np.atleast_1d(np.asarray(multiplicities))
        if mult.size == 1:
            mult = np.full(var.size, mult.item())
        if mult.shape != var.shape:
            raise ValueError(f"multiplicities must be a scalar or have shape ({var.size},), got {np.shape(multiplicities)}")
        self.multiplicities = np.array([v.positive_int("multiplicities", int(k) if float(k).is_integer() else k) for k in mult.tolist()], dtype=np.int64)
        self.variances = var
        self.means = np.array(mean)
        if basis is not None:
            basis = v.finite_array("basis", basis, ndim=2)
            if basis.shape != (self.dim, self.dim) or not np.allclose(basis.T @ basis, np.eye(self.dim), atol=1e-8):
                raise ValueError(f"basis must be an orthogonal ({self.dim}, {self.dim}) matrix")
        self.basis = basis

    @classmethod
    def from_dense(cls, mean, cov, *, rtol: float = 1e-10):
        """Reduce a dense Gaussian N(mean, cov) in R^d to its eigen-groups.

        Coordinates in the eigenbasis are independent; eigen-coordinates with equal (variance, mean)
        up to ``rtol`` are merged into one group with a multiplicity.
        """
        mean = v.finite_array("mean", mean, ndim=1)
        cov = v.finite_array("cov", cov, ndim=2)
        d = mean.size
        if cov.shape != (d, d):
            raise ValueError(f"cov must have shape ({d}, {d}), got {cov.shape}")
        if not np.allclose(cov, cov.T, atol=1e-12 * max(1.0, np.abs(cov).max())):
            raise ValueError("cov must be symmetric")
        lam, Q = np.linalg.eigh(cov)
        if lam.min() <= 0:
            raise ValueError(f"cov must be positive definite, smallest eigenvalue {lam.min()!r}")
        m = Q.T @ mean
        # group equal (variance, mean) pairs, keeping eigenvector order consistent with np.repeat
        keys: list[tuple[float, float]] = []
        members: list[list[int]] = []
        for i in range(d):
            for j, (lv, lm) in enumerate(keys):
                if abs(lam[i] - lv) <= rtol * lv and abs(m[i] - lm) <= rtol * max(1.0, abs(lm)):
                    members[j].append(i)
                    break
            else:
                keys.append((lam[i], m[i]))
                members.append([i])
        order = [i for grp in members for i in grp]
        return cls([k[0] for k in keys], [k[1] for k in keys], [len(g) for g in members], basis=Q[:, order])

    # -- marginals ----------------------------------------------------------------------------
    def marginal_params(self, t):
        """Mean and variance of each column at OU time t; broadcast shape (..., G)."""
        t = v.times("t", t)
        t = t[..., None] if t.ndim else t
        return np.exp(-t) * self.means, ou_variance(self.variances, t)

    def score(self, x, t):
        x, t = self._check_x_t(x, t)
        m, var = self.marginal_params(t[..., 0] if np.ndim(t) else t)
        return -(x - m) / var

    def log_density(self, x, t):
        x, t = self._check_x_t(x, t)
        m, var = self.marginal_params(t[..., 0] if np.ndim(t) else t)
        return np.sum(-0.5 * (x - m) ** 2 / var - 0.5 * np.log(2 * np.pi * var), axis=1)

    def sample(self, n, t, rng):
        n, t = self._rows(n, t)
        m, var = self.marginal_params(t[..., 0] if np.ndim(t) else t)
        return m + np.sqrt(var) * rng.standard_normal((n, self.n_columns))

    def lipschitz(self, t):
        t = v.times("t", t)
        return float(np.max(1.0 / ou_variance(self.variances, t)))

    def second_moment(self):
        return float(np.sum(self.multiplicities * (self.variances + self.means**2)))

    # -- full dimension -------------------------------------------------------------------------
    def _to_eigen(self, y):
        return y if self.basis is None else y @ self.basis

    def _from_eigen(self, z):
        return z if self.basis is None else z @ self.basis.T

    def _full_params(self, t):
        m, var = self.marginal_params(t)
        return np.repeat(m, self.multiplicities, axis=-1), np.repeat(var, self.multiplicities, axis=-1)

    def score_full(self, y, t):
        y, t = self._check_x_t(y, t, self.dim)
        m, var = self._full_params(t[..., 0] if np.ndim(t) else t)
        return self._from_eigen(-(self._to_eigen(y) - m) / var)

    def log_density_full(self, y, t):
        y, t = self._check_x_t(y, t, self.dim)
        m, var = self._full_params(t[..., 0] if np.ndim(t) else t)
        z = self._to_eigen(y)
        return np.sum(-0.5 * (z - m) ** 2 / var - 0.5 * np.log(2 * np.pi * var), axis=1)

    def sample_full(self, n, t, rng):
        n, t = self._rows(n, t)
        m, var = self._full_params(t[..., 0] if np.ndim(t) else t)
        return self._from_eigen(m + np.sqrt(var) * rng.standard_normal((n, self.dim)))

    def dense(self, t=0.0):
        """(mean, covariance) of the full law at OU time t in the original coordinates."""
        m, var = self._full_params(v.times("t", t))
        Q = np.eye(self.dim) if self.basis is None else self.basis
        return Q @ m, (Q * var) @ Q.T

    def __repr__(self):
        return f"GroupedGaussian(groups={self.n_columns}, dim={self.dim})"
