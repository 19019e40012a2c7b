r"""Exact-score targets: laws whose noised marginals, log-densities and scores are closed form.

Dimension enters through multiplicities, so that no cost grows with ``dim``. A target has ``n_columns``
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

    def __init_subclass__(cls, **kwargs):
        # law mode calls score_trusted (validated once by the driver): a subclass that changes the score
        # must change score_trusted too, or law mode would silently use the unperturbed score
        super().__init_subclass__(**kwargs)
        if "score" in cls.__dict__ and "score_trusted" not in cls.__dict__:
            raise TypeError(f"{cls.__name__} overrides score() but not score_trusted(); override both")

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
        exact = [int(k) if isinstance(k, float) and np.isfinite(k) and k.is_integer() else k for k in mult.tolist()]
        self.multiplicities = _int64_multiplicities([v.positive_int("multiplicities", k) for k in exact])
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
        return self.score_trusted(x, t)

    def score_trusted(self, x, t):
        """The score without input validation, for drivers that validate once (x finite, t >= 0)."""
        t = np.asarray(t, dtype=np.float64)
        if t.ndim:
            t = t.reshape(-1, 1)
        em, var = self._score_coefficients(t)
        return (em - x) / var                        # = -(x - em) / var exactly (rounding is sign-symmetric)

    def _score_coefficients(self, t, columns_first=False):
        """``(e^{-t} m, e^{-2t} v + 1 - e^{-2t})`` per column: the score is ``(em - x) / var``.

        ``t`` scalar or ``(n, 1)`` gives ``(n, G)`` arrays; with ``columns_first``, ``t`` of shape ``(n,)``
        gives ``(G, n)`` (the same numbers, transposed: law mode calls it once per internal draw in that
        orientation)."""
        means, variances = self.means, self.variances
        if columns_first:
            means, variances = means[:, None], variances[:, None]
        e = np.exp(-t)
        return e * means, e * e * variances - np.expm1(-2.0 * t)

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


# =================================================================================================
# Mixtures
# =================================================================================================
#
# Certified Lipschitz bounds (shared by ProductMixture and GaussianMixture)
# ------------------------------------------------------------------------
# A Gaussian mixture q = sum_j w_j N(m_j, S_j) with precisions P_j = S_j^{-1} has, writing
# l_j(x) = log w_j + log N(x; m_j, S_j), responsibilities r_j = softmax_j(l_j) and component scores
# s_j(x) = -P_j (x - m_j):
#
#     score(x) = sum_j r_j s_j,        Jac(x) = Cov_r(s_J) - E_r[P_J]                      (*)
#
# (differentiate r_j: grad r_j = r_j (s_j - score)). Hence, as symmetric matrices,
#
#     -max_j lmax(P_j) I  <=  Jac(x)  <=  (sup_x ||Cov_r(s_J)||) I - min_j lmin(P_j) I,
#
# so   sup_x ||Jac(x)|| <= max( max_j lmax(P_j),  C - min_j lmin(P_j) )  with  C >= sup_x ||Cov_r(s_J)||.
#
# Bounds on C.
# (a) Pairwise (any covariances).  Cov_r(s_J) = sum_{j<k} r_j r_k (s_j - s_k)(s_j - s_k)^T and
#     r_j r_k = (r_j + r_k)^2 rho(1 - rho) with rho = sigmoid(u_jk), u_jk = l_j - l_k. Note
#     s_j - s_k = grad u_jk. With B_jk := sup_x rho(1-rho) |grad u_jk|^2,
#         ||Cov|| <= sum_{j<k} (r_j + r_k)^2 B_jk <= max_i sum_{k != i} B_ik,
#     the last step because the middle expression is convex in r, so its maximum over the simplex
#     is at a vertex r = e_i. For two components the first inequality is an equality.
#     The pair sup B_jk: u_jk(x) = -x^T D x / 2 + beta^T x + c with D = P_j - P_k,
#     beta = P_j m_j - P_k m_k, c = log(w_j/w_k) - (log det S_j - log det S_k)/2 - m_j^T P_j m_j/2
#     + m_k^T P_k m_k / 2.
#       * D = 0: grad u = beta is constant and u is affine, so B = |beta|^2 / 4 (sup of rho(1-rho)).
#       * D >= 0 (else swap j and k, which flips the signs of D, beta, c), beta in range(D):
#         u = U - (x - x0)^T D (x - x0)/2 with U = c + beta^T D^+ beta / 2, and
#         |grad u|^2 = |D (x - x0)|^2 <= lmax(D) (x - x0)^T D (x - x0) = 2 lmax(D) (U - u), so
#             B <= 2 lmax(D) h(U),   h(U) := sup_{u <= U} sigmoid(u) sigmoid(-u) (U - u),
#         with equality in one dimension (and along the top eigenvector of D). h is the maximum of
#         a log-concave function of y = U - u (derivative of the log: 2 sigmoid(U - y) - 1 + 1/y,
#         decreasing), found by bisection; the bracket is closed with the tangent-line bound of the
#         concave log, so the value returned is an upper bound, not an estimate.
#       * D indefinite, or D >= 0 with a component of beta in null(D): along the set u = 0 (or
#         along null(D)) rho = 1/2 while |grad u| is unbounded, so B = inf. For two components the
#         score is then truly not Lipschitz, and ``lipschitz`` returns ``inf`` (a valid bound).
#       Deciding "D = 0 on a subspace" uses a relative tolerance of 1e-10 on the eigenvalues of D
#       and 1e-9 on beta; D is tested for exact zero first, so equal covariances are exact.
# (b) Range bound (all precisions equal, P_j = P): s_j - s_k = P (m_j - m_k) does not depend on x,
#     and for a unit vector e the random variable e^T s_J lies in an interval of length at most
#     diam{P m_j}, so Var <= diam{P m_j}^2 / 4 (Popoviciu). In 1-D with equal variances v this is
#     (max m - min m)^2 / (4 v^2); for isotropic equal variances D^2 / (4 v^2) with D the largest
#     distance between means (both at the OU time t, i.e. scaled by e^{-t}).
# C is the smaller of (a) and (b) where (b) applies.

_SQRT_2PI_LOG = 0.5 * np.log(2.0 * np.pi)


def _expit(z):
    # sigmoid without overflow warnings: 1/(1+e^{-z}) for z >= 0, e^z/(1+e^z) otherwise
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def logistic_gap_sup(U):
    r"""Certified upper bound on :math:`h(U)=\sup_{u\le U}\sigma(u)\sigma(-u)(U-u)` (vectorised).

    With :math:`y = U - u > 0`, :math:`\log g(y) = \log\sigma(U-y)+\log\sigma(y-U)+\log y` is concave with
    derivative :math:`\psi(y) = 2\sigma(U-y) - 1 + 1/y` (decreasing, positive for :math:`y\le 1`,
    negative at :math:`y = \max(2, U+2)`). Bisection brackets the root in :math:`[a, b]`; by concavity
    :math:`\log g \le \log g(a) + \psi(a)(b-a)` on the bracket and g is smaller outside it.
    """
    U = np.asarray(U, dtype=np.float64)
    lo = np.ones_like(U)                    # psi(y) >= 1/y - 1 + 2 sigma > 0 for y <= 1
    hi = np.maximum(2.0, U + 2.0)
    for _ in range(64):                     # the tangent bound below absorbs any bracket left
        mid = 0.5 * (lo + hi)
        psi = 2.0 * _expit(U - mid) - 1.0 + 1.0 / mid
        up = psi > 0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    a = lo
    psi_a = 2.0 * _expit(U - a) - 1.0 + 1.0 / a
    g_a = _expit(U - a) * _expit(a - U) * a
    return g_a * np.exp(np.maximum(psi_a, 0.0) * (hi - a))


def _pair_bound_matrix(c, beta, D, p_scale):
    """B_jk of the pairwise bound for one pair with D = P_j - P_k (d, d), beta (d,), c scalar."""
    if not np.any(D):
        return 0.25 * float(beta @ beta)
    lam, Q = np.linalg.eigh(0.5 * (D + D.T))
    tol = 1e-10 * p_scale
    if lam[0] < -tol and lam[-1] > tol:
        return np.inf
    if lam[-1] <= tol:                      # D <= 0: swap the roles of j and k
        lam, Q, beta, c = -lam[::-1], Q[:, ::-1], -beta, -c
    bq = Q.T @ beta
    pos = lam > tol
    beta_tol = 1e-9 * max(float(np.linalg.norm(beta)), 1e-300)
    if np.any(np.abs(bq[~pos]) > beta_tol):
        return np.inf
    U = c + 0.5 * float(np.sum(bq[pos] ** 2 / lam[pos]))
    return float(2.0 * lam[pos].max() * logistic_gap_sup(U))


def _pair_bound_scalar(c, beta2, D):
    """Vectorised B_jk when every precision is a multiple of the identity: D = (p_j - p_k) scalar,
    beta2 = |beta|^2. Orientation: U = sign(D) c + beta2 / (2 |D|)."""
    c, beta2, D = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (c, beta2, D)))
    out = 0.25 * beta2
    nz = D != 0
    if np.any(nz):
        absD = np.abs(D[nz])
        U = np.sign(D[nz]) * c[nz] + beta2[nz] / (2.0 * absD)
        out = out.copy()
        out[nz] = 2.0 * absD * logistic_gap_sup(U)
    return out


def _vertex_max(B):
    """max_i sum_{k != i} B_ik over the last two axes (B symmetric with zero diagonal)."""
    return np.max(np.sum(B, axis=-1), axis=-1)


def _scalar_precision_bound(c, beta2, p, mask, range_C=None):
    """Certified bound on sup_x ||Jac score|| when every precision is p_j I (vectorised over leading axes).

    ``c``, ``beta2`` (..., J, J): the pair constants c_jk and |beta_jk|^2; ``p``, ``mask`` (..., J).
    ``range_C`` (...) or None: the range bound on sup Var where it applies (equal variances).
    Besides C - min p it uses sup_x E_r[p_J] <= min(max_j p_j, p_min + sum_j (p_j - p_min) sup_x r_j),
    with r_j <= r_j / (r_j + r_k) = sigmoid(u_jk) <= sigmoid(U_jk) for any k with p_k < p_j
    (u_jk is then a concave quadratic with maximum U_jk = c_jk + |beta_jk|^2 / (2 (p_j - p_k))).
    """
    J = p.shape[-1]
    D = p[..., :, None] - p[..., None, :]
    pair_ok = mask[..., :, None] & mask[..., None, :] & ~np.eye(J, dtype=bool)
    B = np.where(pair_ok, _pair_bound_scalar(c, beta2, D), 0.0)
    C = _vertex_max(B)
    if range_C is not None:
        C = np.minimum(C, range_C)
    pmax = np.max(np.where(mask, p, -np.inf), axis=-1)
    pmin = np.min(np.where(mask, p, np.inf), axis=-1)
    pos = pair_ok & (D > 0)
    U = np.where(pos, c + beta2 / (2.0 * np.where(pos, D, 1.0)), 0.0)
    r_sup = np.min(np.where(pos, _expit(U), 1.0), axis=-1)                      # (..., J)
    excess = np.where(mask, p - pmin[..., None], 0.0)
    Ep = np.minimum(pmax, pmin + np.sum(r_sup * excess, axis=-1))
    return np.maximum(Ep, C - pmin)


def _sup_capped_product_1d(u1, u2, A, B):
    r"""Certified :math:`\sup_x \min(1,e^{u_1(x)})\min(1,e^{u_2(x)})(Ax+B)^2` for quadratics
    ``u = (a, b, c)`` meaning :math:`a x^2 + b x + c` (one dimension, closed form).

    The breakpoints (real roots of u1 and u2) cut R into intervals on which the function is
    :math:`e^{q}(Ax+B)^2` with q the sum of the negative u's (so q <= 0). Its critical points solve
    :math:`(2a_q x + b_q)(Ax+B) + 2A = 0` (a quadratic); the supremum over an interval is the largest
    value at its finite end points and at the critical points inside it, or ``inf`` when q stays
    constant on an unbounded interval while :math:`(Ax+B)^2` grows.
    """
    import math

    def roots(a, b, c):
        if a == 0:
            return [] if b == 0 else [-c / b]
        disc = b * b - 4 * a * c
        if disc < 0:
            return []
        q = -0.5 * (b + math.copysign(math.sqrt(disc), b))
        return [q / a, c / q] if q != 0 else [q / a]

    u1 = tuple(float(z) for z in u1)
    u2 = tuple(float(z) for z in u2)
    A, B = float(A), float(B)
    br = sorted(set(roots(*u1) + roots(*u2)))
    edges = [-math.inf] + br + [math.inf]
    best = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if lo == -math.inf and hi == math.inf:
            probe = 0.0
        elif lo == -math.inf:
            probe = hi - 1.0 - abs(hi)
        elif hi == math.inf:
            probe = lo + 1.0 + abs(lo)
        else:
            probe = 0.5 * (lo + hi)
        qa = qb = qc = 0.0
        for a, b, c in (u1, u2):
            if (a * probe + b) * probe + c < 0:
                qa, qb, qc = qa + a, qb + b, qc + c
        for end, direction in ((lo, -1.0), (hi, 1.0)):
            if math.isinf(end):
                # behaviour at infinity in this direction: q -> -inf kills the polynomial
                decays = qa < 0 or (qa == 0 and qb * direction < 0)
                if not decays:
                    if A != 0:
                        return math.inf
                    best = max(best, math.exp(qc) * B * B)
        cands = [x for x in (lo, hi) if not math.isinf(x)]
        cands += [x for x in roots(2 * qa * A, 2 * qa * B + qb * A, qb * B + 2 * A) if lo <= x <= hi]
        for x in cands:
            try:
                val = math.exp(min((qa * x + qb) * x + qc, 0.0)) * (A * x + B) ** 2
            except OverflowError:       # a supremum beyond float range: the bound is useless, not wrong
                return math.inf
            if math.isnan(val):
                return math.inf
            best = max(best, val)
    return best * (1.0 + 1e-9)


def _logsumexp(a, axis=-1):
    amax = np.max(a, axis=axis, keepdims=True)
    out = amax + np.log(np.sum(np.exp(a - amax), axis=axis, keepdims=True))
    return np.squeeze(out, axis=axis)


def _multiplicities(value, n_groups):
    mult = np.atleast_1d(np.asarray(value, dtype=object))
    if mult.ndim != 1:
        raise ValueError(f"multiplicities must be a scalar or have shape ({n_groups},), got {np.shape(value)}")
    if mult.size == 1:
        mult = np.repeat(mult, n_groups)
    if mult.size != n_groups:
        raise ValueError(f"multiplicities must be a scalar or have shape ({n_groups},), got {np.shape(value)}")
    out = []
    for k in mult.tolist():
        if isinstance(k, float) and np.isfinite(k) and k.is_integer():
            k = int(k)
        out.append(v.positive_int("multiplicities", k))
    return _int64_multiplicities(out)


#: multiplicities and their sum (the dimension) must fit in int64
MAX_DIM = 2**63 - 1


def _int64_multiplicities(values) -> np.ndarray:
    """Python ints (already checked >= 1) as int64, each and their sum (the dimension) <= 2**63 - 1."""
    if any(k > MAX_DIM for k in values):
        raise ValueError(f"multiplicities must be <= 2**63 - 1 (int64), got {float(max(values)):.6g}")
    if sum(values) > MAX_DIM:
        raise ValueError(f"multiplicities must sum to a dimension <= 2**63 - 1 (int64), got {sum(values)}")
    return np.array(values, dtype=np.int64)


def _groups(name, value):
    """A (G, J) array, a 1-D array (one group) or a list of 1-D arrays -> list of float64 arrays."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is not None:
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a (G, J) array or a list of 1-D arrays, got shape {arr.shape}")
        rows = list(arr)
    else:
        try:
            rows = list(value)
        except TypeError as exc:
            raise ValueError(f"{name} must be a (G, J) array or a list of 1-D arrays") from exc
    out = []
    for g, row in enumerate(rows):
        row = v.finite_array(f"{name}[{g}]", row, ndim=1)
        if row.size == 0:
            raise ValueError(f"{name}[{g}] must have at least one component")
        out.append(row)
    if not out:
        raise ValueError(f"{name} must have at least one group")
    return out


class ProductMixture(Target):
    r"""Product of 1-D Gaussian mixtures: column ``g`` stands for ``multiplicities[g]`` i.i.d.
    coordinates of law :math:`\sum_j w_{gj} N(\mu_{gj}, v_{gj})`.

    At OU time t component j becomes :math:`N(e^{-t}\mu_j,\; e^{-2t}v_j + 1 - e^{-2t})`. The score
    is separable: per column :math:`\sum_j r_j(x) s_j(x)` with :math:`s_j = -(x - m_j)/v_j` and
    responsibilities :math:`r_j = \mathrm{softmax}_j(\log w_j + \log N(x; m_j, v_j))` (log space).

    Lipschitz bound (certified; proof in the comment block above this class). Per column,
    :math:`-\partial_x\mathrm{score} = E_r[1/v_J] - \mathrm{Var}_r(s_J)`, so
    :math:`-\max_j 1/v_j \le \partial_x\mathrm{score} \le \sup_x\mathrm{Var}_r(s_J) - \min_j 1/v_j` and

    .. math::  L(t) \le \max_g \max\big(E_g,\; C_g - \min_j 1/v_{gj}\big),

    with :math:`C_g \ge \sup_x\mathrm{Var}_r(s_J)` the smallest of: the pairwise bound
    :math:`\max_i\sum_{k\ne i}B_{ik}` (exact for two components); for equal variances v,
    :math:`(\max_j m_j - \min_j m_j)^2/(4v^2)`; for three or more components
    :math:`\sum_{j<k}\min(B_{jk}, T_{jk})` (see :meth:`_triple_pair_sum`). And
    :math:`E_g \ge \sup_x E_r[1/v_J]` is :math:`\min(\max_j p_j,\ p_{min} + \sum_j (p_j - p_{min})\sup_x r_j)`
    with :math:`\sup_x r_j \le \sigma(\max_x u_{jk})` for any wider component k.
    Measured against a fine grid of the exact derivative (tests/test_targets.py) the bound is
    within a factor ~1.3 for one or two components per group and ~4 for three.

    Parameters
    ----------
    weights : (G, J) array, or list of G 1-D arrays (J may differ between groups); a 1-D array is
        one group. Each group's weights are > 0 and sum to one.
    means, variances : same layout as ``weights``; variances > 0.
    multiplicities : scalar or (G,) positive integers.

    Ragged groups are stored padded to ``J = max_g J_g``; padded entries have weight 0.
    """

    is_gaussian = False

    def __init__(self, weights, means, variances, multiplicities=1):
        w = _groups("weights", weights)
        m = _groups("means", means)
        var = _groups("variances", variances)
        G = len(w)
        for name, grp in (("means", m), ("variances", var)):
            if len(grp) != G:
                raise ValueError(f"{name} must have {G} groups like weights, got {len(grp)}")
        for g in range(G):
            w[g] = v.weights(f"weights[{g}]", w[g])
            for name, grp in (("means", m), ("variances", var)):
                if grp[g].shape != w[g].shape:
                    raise ValueError(f"{name}[{g}] must have {w[g].size} entries like weights[{g}], got {grp[g].size}")
            v.positive_array(f"variances[{g}]", var[g])
        self.n_columns = G
        self.multiplicities = _multiplicities(multiplicities, G)
        self.n_components = np.array([x.size for x in w])
        J = int(self.n_components.max())
        self.mask = np.arange(J)[None, :] < self.n_components[:, None]
        self.weights = np.zeros((G, J))
        self.means = np.zeros((G, J))
        self.variances = np.ones((G, J))
        for g in range(G):
            k = w[g].size
            self.weights[g, :k], self.means[g, :k], self.variances[g, :k] = w[g], m[g], var[g]
        self.log_weights = np.full((G, J), -np.inf)
        self.log_weights[self.mask] = np.log(self.weights[self.mask])
        self._group_of = np.repeat(np.arange(G), self.multiplicities)

    # -- parameters ----------------------------------------------------------------------------
    def component_params(self, t):
        """``(weights, means, variances)`` of the components at OU time t.

        ``weights`` has shape (G, J); ``means`` and ``variances`` have shape ``t.shape + (G, J)``.
        Padded entries (ragged groups) have weight 0, mean 0 and variance 1.
        """
        t = v.times("t", t)
        tt = t[..., None, None] if t.ndim else t
        return self.weights.copy(), np.exp(-tt) * self.means, ou_variance(self.variances, tt)

    @staticmethod
    def _row_t(t):
        # t from row_times: scalar or (batch|1, 1) -> broadcastable to (batch, C, J)
        return t[..., None] if np.ndim(t) else t

    def _parts(self, x, t, cols):
        """log-joint, log-density per column, responsibilities, component scores, variances."""
        tt = self._row_t(t)
        m = np.exp(-tt) * self.means[cols]
        var = ou_variance(self.variances[cols], tt)
        diff = x[..., None] - m
        ell = self.log_weights[cols] - 0.5 * np.log(var) - _SQRT_2PI_LOG - 0.5 * diff**2 / var
        lse = _logsumexp(ell, axis=-1)
        r = np.exp(ell - lse[..., None])
        return lse, r, -diff / var, var

    def _cols(self, full):
        return self._group_of if full else slice(None)

    def _score(self, x, t, full):
        _, r, s, _ = self._parts(x, t, self._cols(full))
        return np.sum(r * s, axis=-1)

    def _log_density(self, x, t, full):
        lse, _, _, _ = self._parts(x, t, self._cols(full))
        return np.sum(lse, axis=1)

    def _sample(self, n, t, rng, full):
        cols = self._cols(full)
        W, M, V = self.weights[cols], self.means[cols], self.variances[cols]
        C = W.shape[0]
        cw = np.cumsum(W, axis=1)
        u = rng.random((n, C))
        idx = np.sum(u[..., None] >= cw[None], axis=-1)
        idx = np.minimum(idx, self.n_components[cols][None, :] - 1)
        ci = np.arange(C)[None, :]
        mean0, var0 = M[ci, idx], V[ci, idx]
        return np.exp(-t) * mean0 + np.sqrt(ou_variance(var0, t)) * rng.standard_normal((n, C))

    # -- column space ----------------------------------------------------------------------------
    def score(self, x, t):
        x, t = self._check_x_t(x, t)
        return self._score(x, t, False)

    def score_derivative(self, x, t):
        r"""Diagonal of the score's Jacobian per column: :math:`\mathrm{Var}_r(s_J) - E_r[1/v_J]`."""
        x, t = self._check_x_t(x, t)
        _, r, s, var = self._parts(x, t, slice(None))
        sbar = np.sum(r * s, axis=-1, keepdims=True)
        return np.sum(r * (s - sbar) ** 2, axis=-1) - np.sum(r / var, axis=-1)

    def log_density(self, x, t):
        x, t = self._check_x_t(x, t)
        return self._log_density(x, t, False)

    def cdf(self, x, t):
        """CDF of each column's marginal at OU time t, evaluated at x (batch, G)."""
        from scipy.special import ndtr

        x, t = self._check_x_t(x, t)
        tt = self._row_t(t)
        m = np.exp(-tt) * self.means
        sd = np.sqrt(ou_variance(self.variances, tt))
        return np.sum(self.weights * ndtr((x[..., None] - m) / sd), axis=-1)

    def sample(self, n, t, rng):
        n, t = self._rows(n, t)
        return self._sample(n, t, rng, False)

    # -- constants ---------------------------------------------------------------------------------
    def _lipschitz_columns(self, t):
        """Certified bound per (time, column): array of shape (nt, G)."""
        t = np.atleast_1d(v.times("t", t)).reshape(-1)
        _, m, var = self.component_params(t)                             # (nt, G, J)
        p = 1.0 / var
        lw = np.where(self.mask, self.log_weights, 0.0)                   # avoid inf - inf
        # pair quantities, axes (nt, G, j, k)
        beta = (p * m)[..., :, None] - (p * m)[..., None, :]
        half_q = 0.5 * p * m**2 + 0.5 * np.log(var)
        c = lw[..., :, None] - lw[..., None, :] - half_q[..., :, None] + half_q[..., None, :]
        mask = np.broadcast_to(self.mask, p.shape)
        # range bound for groups with equal variances
        v0 = np.where(self.mask, self.variances, np.nan)
        equal = np.array([np.all(row[k] == row[0]) for row, k in zip(v0, self.mask, strict=True)])
        range_C = np.full(p.shape[:-1], np.inf)
        if np.any(equal):
            mm = np.where(self.mask, m, np.nan)
            spread = np.nanmax(mm, axis=-1) - np.nanmin(mm, axis=-1)
            pmax = np.max(np.where(self.mask, p, -np.inf), axis=-1)
            range_C = np.where(equal, 0.25 * (spread * pmax) ** 2, np.inf)
        if self.mask.shape[1] >= 3:
            range_C = np.minimum(range_C, self._triple_pair_sum(p, m, var, lw, c, beta))
        return _scalar_precision_bound(c, beta**2, p, mask, range_C)

    def _triple_pair_sum(self, p, m, var, lw, c, beta):
        r"""Third bound on sup Var for groups with >= 3 components:
        :math:`\sum_{j<k}\min(B_{jk}, T_{jk})`, where
        :math:`T_{jk}=\min_{i\ne j,k}\sup_x \min(1,e^{u_{ji}})\min(1,e^{u_{ki}})(s_j-s_k)^2` uses
        :math:`r_jr_k\le\sigma(u_{ji})\sigma(u_{ki})` (since :math:`r_j+r_i\le 1`, :math:`r_k+r_i\le 1`):
        a distant pair separated by a dominant component contributes almost nothing."""
        B = _pair_bound_scalar(c, beta**2, p[..., :, None] - p[..., None, :])
        out = np.full(p.shape[:-1], np.inf)
        # log N up to the common 2 pi term: a x^2 + b x + c0 with a = -p/2, b = p m
        qa, qb, qc = -0.5 * p, p * m, lw - 0.5 * np.log(var) - 0.5 * p * m**2
        for it in range(p.shape[0]):
            for g in range(p.shape[1]):
                J = int(self.n_components[g])
                if J < 3:
                    continue
                total = 0.0
                a_, b_, c_ = qa[it, g].tolist(), qb[it, g].tolist(), qc[it, g].tolist()
                for j in range(J):
                    for k in range(j + 1, J):
                        T = np.inf
                        A_, B_ = -(p[it, g, j] - p[it, g, k]), beta[it, g, j, k]
                        for i in range(J):
                            if i in (j, k):
                                continue
                            u1 = (a_[j] - a_[i], b_[j] - b_[i], c_[j] - c_[i])
                            u2 = (a_[k] - a_[i], b_[k] - b_[i], c_[k] - c_[i])
                            T = min(T, _sup_capped_product_1d(u1, u2, A_, B_))
                        total += min(B[it, g, j, k], T)
                out[it, g] = total
        return out

    def lipschitz(self, t):
        return float(np.max(self._lipschitz_columns(t)))

    def lipschitz_sup(self, t_min: float = 0.0, n_grid: int = 2001) -> float:
        """Same grid as :meth:`Target.lipschitz_sup`, evaluated in one vectorised call."""
        t_min = v.nonnegative("t_min", t_min)
        ts = np.concatenate([[t_min], t_min + np.geomspace(1e-6, 50.0, n_grid)])
        return float(np.max(self._lipschitz_columns(ts)))

    def second_moment(self):
        per_coord = np.sum(self.weights * (self.means**2 + self.variances), axis=1)
        return float(np.sum(self.multiplicities * per_coord))

    # -- full dimension ------------------------------------------------------------------------------
    def score_full(self, y, t):
        y, t = self._check_x_t(y, t, self.dim)
        return self._score(y, t, True)

    def log_density_full(self, y, t):
        y, t = self._check_x_t(y, t, self.dim)
        return self._log_density(y, t, True)

    def sample_full(self, n, t, rng):
        n, t = self._rows(n, t)
        return self._sample(n, t, rng, True)

    def __repr__(self):
        return f"ProductMixture(groups={self.n_columns}, components={self.n_components.tolist()}, dim={self.dim})"


class GaussianMixture(Target):
    r"""General Gaussian mixture :math:`\sum_j w_j N(m_j, \Sigma_j)` in :math:`R^d` (scores coupled
    across coordinates). ``n_columns = d``, every multiplicity is 1, and the full-dimension methods
    are the column methods.

    At OU time t: :math:`m_j(t) = e^{-t}m_j`, :math:`\Sigma_j(t) = e^{-2t}\Sigma_j + (1-e^{-2t})I`
    (same eigenvectors, eigenvalues through :func:`ou_variance`). Score
    :math:`\sum_j r_j(x)\,(-\Sigma_j(t)^{-1}(x - m_j(t)))`, responsibilities in log space.

    Lipschitz bound (certified; proof in the comment block above :class:`ProductMixture`):
    :math:`\|\nabla\mathrm{score}\| \le \max(\max_j\lambda_{max}(P_j),\ C - \min_j\lambda_{min}(P_j))`,
    :math:`P_j = \Sigma_j(t)^{-1}`, C the smaller of the pairwise bound and, for equal isotropic
    variances v, :math:`D^2/(4v^2)` with D the largest distance between the means :math:`e^{-t}m_j`
    (for isotropic components :math:`\max_j\lambda_{max}(P_j)` is refined to a bound on
    :math:`\sup_x E_r[p_J]` as in :class:`ProductMixture`; the three-component refinement of
    :class:`ProductMixture` is one-dimensional and not used here, so with three or more well separated
    components of unequal variances the bound can be several times the true constant).
    With full covariances that are not ordered in the Loewner sense (some :math:`\Sigma_j-\Sigma_k`
    indefinite) the score is not globally Lipschitz for two components, and the bound is ``inf``.

    Parameters
    ----------
    weights : (J,) > 0, summing to one
    means : (J, d)
    covariances : (J,) positive scalars (isotropic :math:`v_j I`) or (J, d, d) symmetric positive definite
    """

    is_gaussian = False

    def __init__(self, weights, means, covariances):
        w = v.weights("weights", weights)
        J = w.size
        m = v.finite_array("means", means, ndim=2)
        if m.shape[0] != J:
            raise ValueError(f"means must have shape ({J}, d) (one row per weight), got {m.shape}")
        d = m.shape[1]
        if d < 1:
            raise ValueError("means must have at least one column (dimension d >= 1)")
        cov = v.finite_array("covariances", covariances, ndim=(1, 3))
        self.isotropic = cov.ndim == 1
        if self.isotropic:
            if cov.shape != (J,):
                raise ValueError(f"covariances must have shape ({J},) or ({J}, {d}, {d}), got {cov.shape}")
            cov = v.positive_array("covariances", cov)
            self.eigvals = np.repeat(cov[:, None], d, axis=1)
            self.eigvecs = None
        else:
            if cov.shape != (J, d, d):
                raise ValueError(f"covariances must have shape ({J},) or ({J}, {d}, {d}), got {cov.shape}")
            scale = max(1.0, float(np.abs(cov).max()))
            if not np.allclose(cov, np.swapaxes(cov, 1, 2), atol=1e-12 * scale):
                raise ValueError("covariances must be symmetric")
            lam, U = np.linalg.eigh(0.5 * (cov + np.swapaxes(cov, 1, 2)))
            if lam.min() <= 0:
                raise ValueError(f"covariances must be positive definite, smallest eigenvalue {lam.min()!r}")
            self.eigvals, self.eigvecs = lam, U
        self.weights, self.means, self.covariances = w, m, cov
        self.log_weights = np.log(w)
        self.n_columns = d
        self.multiplicities = np.ones(d, dtype=np.int64)

    @property
    def n_components(self) -> int:
        return self.weights.size

    # -- parameters ----------------------------------------------------------------------------
    def component_params(self, t):
        """``(weights, means, covariances)`` at a scalar OU time t: (J,), (J, d), and (J,) or (J, d, d)."""
        t = v.finite_array("t", v.times("t", t), ndim=0)
        means = np.exp(-t) * self.means
        if self.isotropic:
            return self.weights.copy(), means, ou_variance(self.covariances, t)
        lam = ou_variance(self.eigvals, t)
        return self.weights.copy(), means, np.einsum("jab,jb,jcb->jac", self.eigvecs, lam, self.eigvecs)

    def _parts(self, x, t):
        """Responsibilities (b, J), component scores (b, J, d), eigenvalues at t (., J, d), log-density (b,)."""
        tt = t[..., None] if np.ndim(t) else t                                     # (b, 1, 1)
        diff = x[:, None, :] - np.exp(-tt) * self.means                            # (b, J, d)
        lam = ou_variance(self.eigvals, tt)                                        # (., J, d)
        if self.isotropic:
            z = diff
        else:
            z = np.einsum("bjd,jde->bje", diff, self.eigvecs)
        ell = self.log_weights - 0.5 * np.sum(np.log(lam) + z**2 / lam, axis=-1) - self.n_columns * _SQRT_2PI_LOG
        lse = _logsumexp(ell, axis=-1)
        r = np.exp(ell - lse[:, None])
        sz = -z / lam
        s = sz if self.isotropic else np.einsum("bje,jde->bjd", sz, self.eigvecs)
        return r, s, lam, lse

    def score(self, x, t):
        x, t = self._check_x_t(x, t)
        r, s, _, _ = self._parts(x, t)
        return np.einsum("bj,bjd->bd", r, s)

    def log_density(self, x, t):
        x, t = self._check_x_t(x, t)
        return self._parts(x, t)[3]

    def score_jacobian(self, x, t):
        r"""Jacobian of the score, (batch, d, d): :math:`\mathrm{Cov}_r(s_J) - E_r[\Sigma_J(t)^{-1}]`."""
        x, t = self._check_x_t(x, t)
        r, s, lam, _ = self._parts(x, t)
        b, d = x.shape
        sbar = np.einsum("bj,bjd->bd", r, s)
        ds = s - sbar[:, None, :]
        jac = np.einsum("bj,bjd,bje->bde", r, ds, ds)
        inv = np.broadcast_to(1.0 / lam, (b,) + self.eigvals.shape)
        if self.isotropic:
            jac -= np.einsum("bj,bj->b", r, inv[..., 0])[:, None, None] * np.eye(d)
        else:
            jac -= np.einsum("bj,jde,bje,jfe->bdf", r, self.eigvecs, inv, self.eigvecs)
        return jac

    def sample(self, n, t, rng):
        n, t = self._rows(n, t)
        d = self.n_columns
        idx = np.minimum(np.sum(rng.random((n, 1)) >= np.cumsum(self.weights)[None, :], axis=1), self.n_components - 1)
        lam = ou_variance(self.eigvals[idx], t)                                    # (n, d)
        z = np.sqrt(lam) * rng.standard_normal((n, d))
        if not self.isotropic:
            z = np.einsum("nde,ne->nd", self.eigvecs[idx], z)
        return np.exp(-t) * self.means[idx] + z

    # -- constants ---------------------------------------------------------------------------------
    def _lipschitz_one(self, t):
        J, d = self.means.shape
        m = np.exp(-t) * self.means
        lam = ou_variance(self.eigvals, t)                                         # (J, d)
        pmax = float(np.max(1.0 / lam.min(axis=1)))
        pmin = float(np.min(1.0 / lam.max(axis=1)))
        logdet = np.sum(np.log(lam), axis=1)
        if self.isotropic:
            p = 1.0 / lam[:, 0]
            pm = p[:, None] * m
            half_q = 0.5 * p * np.sum(m**2, axis=1) + 0.5 * logdet
            c = self.log_weights[:, None] - self.log_weights[None, :] - half_q[:, None] + half_q[None, :]
            beta2 = np.sum((pm[:, None, :] - pm[None, :, :]) ** 2, axis=-1)
            range_C = None
            if np.all(self.covariances == self.covariances[0]):
                diam2 = float(np.max(np.sum((m[:, None, :] - m[None, :, :]) ** 2, axis=-1)))
                range_C = 0.25 * diam2 * p[0] ** 2
            return float(_scalar_precision_bound(c, beta2, p, np.ones(J, dtype=bool), range_C))
        else:
            P = np.einsum("jab,jb,jcb->jac", self.eigvecs, 1.0 / lam, self.eigvecs)
            pm = np.einsum("jab,jb->ja", P, m)
            half_q = 0.5 * np.einsum("ja,ja->j", m, pm) + 0.5 * logdet
            B = np.zeros((J, J))
            for j in range(J):
                for k in range(j + 1, J):
                    c = self.log_weights[j] - self.log_weights[k] - half_q[j] + half_q[k]
                    B[j, k] = B[k, j] = _pair_bound_matrix(c, pm[j] - pm[k], P[j] - P[k], pmax)
            C = float(_vertex_max(B))
            if all(np.array_equal(self.covariances[j], self.covariances[0]) for j in range(J)):
                diam2 = float(np.max(np.sum((pm[:, None, :] - pm[None, :, :]) ** 2, axis=-1)))
                C = min(C, 0.25 * diam2)
        return max(pmax, C - pmin)

    def lipschitz(self, t):
        t = np.atleast_1d(v.times("t", t)).reshape(-1)
        return float(max(self._lipschitz_one(float(s)) for s in np.unique(t)))

    def second_moment(self):
        tr = self.n_columns * self.covariances if self.isotropic else np.trace(self.covariances, axis1=1, axis2=2)
        return float(np.sum(self.weights * (np.sum(self.means**2, axis=1) + tr)))

    # -- full dimension (identity: the columns are the coordinates) ---------------------------------
    def score_full(self, y, t):
        return self.score(y, t)

    def log_density_full(self, y, t):
        return self.log_density(y, t)

    def sample_full(self, n, t, rng):
        return self.sample(n, t, rng)

    def __repr__(self):
        kind = "isotropic" if self.isotropic else "full"
        return f"GaussianMixture(components={self.n_components}, dim={self.n_columns}, {kind})"
