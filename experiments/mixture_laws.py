r"""Output laws of samplers on non-Gaussian targets, from the same sampler code as law mode on Gaussians.

Four routes, from the most to the least exact:

1. :func:`push_grid_law` (deterministic kernels, ``draws_per_step == 0``, on a
   :class:`~experiments.targets.ProductMixture`). A fine grid of initial points per column is pushed
   through the *same* ``init``/``step``/``output`` code, together with two tangent rows
   :math:`x_0\pm e` per point, and the change of variables

   .. math::  p_{out}(y(x_0)) = p_0(x_0) / |y'(x_0)|,\qquad y'(x_0) \approx \frac{y(x_0+e)-y(x_0-e)}{2e}

   gives the output density at the image points; the log-density is then resampled by a cubic spline
   onto a uniform grid. The initial grid is the quantile grid of the mixture "half the start law, half
   the uniform law on its range" (dense where the mass is, regular in the tails). A 1-D ODE flow is
   monotone; a discretisation with huge steps may fold the line, which is detected (the images must
   be strictly monotone and all tangents of one sign) and raises :class:`FoldedMapError`, or with
   ``on_fold="bin"`` falls back to a mass-conserving histogram of the image.

2. :func:`propagate_density_law` (kernels with ``state_size == 1`` whose every map is "deterministic
   map, then additive Gaussian noise of a state-independent variance": DDPM, EM, EI, VE-EI, and the
   randomised ones conditional on their internal randomness). Each map (``init``, each ``step``,
   ``output``) is probed on the grid with zero draws (gives :math:`f(x)`), with tangent rows (gives
   :math:`f'(x)`) and, on ``n_check`` grid points, with draws :math:`\pm e_k` and with all draws equal to 1
   (gives the noise coefficients :math:`c_k(x)`). The probes **verify** the form
   :math:`f(x) + \sum_k c_k \xi_k` (affine in the draws, no cross terms, :math:`c_k` independent of
   :math:`x`) and raise ``ValueError`` otherwise. The density is pushed forward by :math:`f` (change of
   variables and a cubic spline onto a new uniform grid when :math:`f` is monotone; mass-conserving
   linear binning otherwise) and convolved with :math:`N(0, \sum_k c_k^2)` by FFT (multiplication of
   the DFT by the Gaussian characteristic function, exact for a resolved density, and harmless when
   the variance is far below the grid spacing). Each new grid covers the mass (tails of mass below
   ``tail`` are cut and their mass is recorded in ``lost_mass``) plus 9 noise standard deviations.

3. :func:`monte_carlo_column_law`: the fallback for any kernel, by sample mode: histograms per column
   with Poisson standard errors per bin and the DKW half-width of the empirical CDF (the stated
   precision).

4. :func:`jacobian_log_density` (deterministic kernels on a dense
   :class:`~experiments.targets.GaussianMixture`, moderate d): the sampler runs on n exact initial
   samples while a tangent frame is carried along (rows ``base + q_j`` per sample); after every map
   the frame is re-orthonormalised by QR and :math:`\log|\det J|` accumulates :math:`\sum\log|R_{jj}|`
   (state tuples of several arrays are flattened, so multistep states are handled: the last map
   ``output`` closes the product to a square d x d matrix). Two ways to obtain :math:`J q_j`:

   * ``method="exact"`` (default): *forward-mode linearisation*. Tangent rows see the linearised score
     :math:`s(b) + \nabla s(b)(x - b)` around their base row ``b`` (``target.score_jacobian``), so, since
     every step is affine in its state and in its score values (the kernel contract), tangent rows
     propagate exactly :math:`J q_j` with unit perturbations: no step size, no truncation error, and
     any number of score calls per step.
   * ``method="fd"``: central finite differences :math:`(f(b + e q_j) - f(b - e q_j)) / 2e` with the
     true score (any kernel, error :math:`O(e^2)` plus rounding).

   The output log-density at the output points is :math:`\log p_0(x_0) - \log|\det J|`, exact up to
   rounding. :func:`kl_tv_monte_carlo` turns it into KL and TV to the target marginal at the kernel's
   end level with standard errors: :math:`KL = E_P[\log p - \log q]`,
   :math:`TV = E_P[(1 - q/p)_+]`.

Randomised kernels: internal randomness is drawn per *block* of rows (one grid or one sample with its
tangent rows) and shared inside the block, so every density here is conditional on it (the quenched
object); averaging the M conditional densities gives the annealed (mixture) law up to Monte Carlo
error over M. For (4) with internal randomness, KL/TV are the quenched averages
:math:`E_\omega KL(P_\omega\|Q)`, :math:`E_\omega TV(P_\omega, Q)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline
from scipy.special import ndtr

from experiments import _validate as v
from experiments.samplers._api import CountingScore, Kernel, NonFiniteStateError
from experiments.samplers.driver import STARTS, guarded_step, run
from experiments.targets import GaussianMixture, ProductMixture

try:  # the distances layer (written concurrently); plain arrays are returned if it is absent
    from experiments.distances import ColumnDensity
except ImportError:  # pragma: no cover
    ColumnDensity = None

NOISE_SD_MARGIN = 9.0      # new grids extend this many noise standard deviations past the mass
FFT_FLOOR = 1e-14          # relative level below which an FFT-convolved density is rounding noise
MIN_POINTS_PER_SD = 4.0    # propagate_density_law: the law's standard deviation must span >= this many grid steps
_LOG_2PI_HALF = 0.5 * np.log(2.0 * np.pi)


class GridResolutionError(RuntimeError):
    """The density grid no longer resolves the law (raise ``n_grid``)."""


class FoldedMapError(RuntimeError):
    """The (conditional) map of a deterministic sampler is not monotone on the grid: change of
    variables does not apply (the message says where); use ``on_fold="bin"``."""


# =================================================================================================
# noise with block-shared internal randomness
# =================================================================================================

class BlockNoise:
    """``n_blocks`` blocks of ``rows_per_block`` rows (row ``m * R + r``).

    Internal randomness (``uniform``/``bernoulli``) is drawn from ``internal_rng``, one value per block,
    shared by every row of the block. Gaussian draws: i.i.d. from ``gauss_rng`` if given (sample mode
    conditional on the internal randomness), else the ``k``-th call of a step returns
    ``pattern[k]`` (a (R,) vector repeated over blocks and columns), or zeros when ``pattern`` is None.
    """

    def __init__(self, internal_rng, n_blocks, rows_per_block, *, pattern=None, gauss_rng=None, max_draws=0):
        if not isinstance(internal_rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy.random.Generator, got {type(internal_rng).__name__}")
        self.internal_rng = internal_rng
        self.gauss_rng = gauss_rng
        self.n_blocks = v.positive_int("n_blocks", n_blocks)
        self.rows_per_block = v.positive_int("rows_per_block", rows_per_block)
        self.batch = self.n_blocks * self.rows_per_block
        self.pattern = None if pattern is None else np.asarray(pattern, dtype=np.float64)
        self.max_draws = int(max_draws)
        self.mode = "sample" if gauss_rng is not None else "law"
        self._count = 0
        self.max_count = 0

    def begin_step(self):
        self._count = 0

    def normal(self, n_columns):
        k = self._count
        self._count += 1
        self.max_count = max(self.max_count, self._count)
        if self.gauss_rng is not None:
            return self.gauss_rng.standard_normal((self.batch, n_columns))
        if k >= self.max_draws:
            raise RuntimeError(f"a step made more than {self.max_draws} Gaussian draws; "
                               "the kernel's draws_per_step is wrong")
        if self.pattern is None:
            return np.zeros((self.batch, n_columns))
        col = np.tile(self.pattern[k], self.n_blocks)
        return np.repeat(col[:, None], n_columns, axis=1)

    def uniform(self, size=1):
        return np.repeat(self.internal_rng.random((self.n_blocks, size)), self.rows_per_block, axis=0)

    def bernoulli(self, p, size=1):
        return self.uniform(size) < p


# =================================================================================================
# 1-D column laws of the start: mixtures with parameters of shape (M, G, J)
# =================================================================================================

class _Mix1D:
    """Per (draw m, column g) 1-D Gaussian mixture; parameters (M, G, J) (weight 0 for padding)."""

    def __init__(self, w, m, var):
        self.w, self.m, self.sd = w, m, np.sqrt(var)
        self.logw = np.where(w > 0, np.log(np.where(w > 0, w, 1.0)), -np.inf)

    def logpdf(self, x):                     # x (M, G, n)
        z = (x[..., None] - self.m[:, :, None, :]) / self.sd[:, :, None, :]
        ell = self.logw[:, :, None, :] - np.log(self.sd)[:, :, None, :] - _LOG_2PI_HALF - 0.5 * z * z
        mx = np.max(ell, axis=-1, keepdims=True)
        return (mx + np.log(np.sum(np.exp(ell - mx), axis=-1, keepdims=True)))[..., 0]

    def cdf(self, x):
        return np.sum(self.w[:, :, None, :] * ndtr((x[..., None] - self.m[:, :, None, :]) / self.sd[:, :, None, :]), -1)

    def sf(self, x):
        z = -(x[..., None] - self.m[:, :, None, :]) / self.sd[:, :, None, :]
        return np.sum(self.w[:, :, None, :] * ndtr(z), -1)

    def bracket(self):
        act = self.w > 0
        lo = np.min(np.where(act, self.m - 40 * self.sd, np.inf), axis=-1)
        hi = np.max(np.where(act, self.m + 40 * self.sd, -np.inf), axis=-1)
        return lo[..., None], hi[..., None]   # (M, G, 1)

    def quantile_tails(self, tail):
        """x with cdf(x) = tail and sf(x) = tail, each (M, G, 1), by bisection."""
        lo, hi = self.bracket()
        a, b = lo.copy(), hi.copy()
        for _ in range(200):
            mid = 0.5 * (a + b)
            low = self.cdf(mid) < tail
            a, b = np.where(low, mid, a), np.where(low, b, mid)
        q_lo = 0.5 * (a + b)
        a, b = lo.copy(), hi.copy()
        for _ in range(200):
            mid = 0.5 * (a + b)
            high = self.sf(mid) > tail
            a, b = np.where(high, mid, a), np.where(high, b, mid)
        return q_lo, 0.5 * (a + b)

    def blended_quantiles(self, n, tail, lam=0.5):
        """Quantiles (M, G, n) of (1-lam) * law + lam * Uniform[q(tail), q(1-tail)], at u = i/(n-1)."""
        lo, hi = self.quantile_tails(tail)
        u = np.linspace(0.0, 1.0, n)[None, None, :]
        u = np.broadcast_to(u, lo.shape[:2] + (n,))
        c0 = self.cdf(lo)
        span = hi - lo

        def F(x):
            return (1 - lam) * (self.cdf(x) - c0) / (1 - 2 * tail) + lam * (x - lo) / span

        a, b = np.broadcast_to(lo, u.shape).copy(), np.broadcast_to(hi, u.shape).copy()
        for _ in range(64):
            mid = 0.5 * (a + b)
            below = F(mid) < u
            a, b = np.where(below, mid, a), np.where(below, b, mid)
        x = 0.5 * (a + b)
        x[..., 0], x[..., -1] = lo[..., 0], hi[..., 0]
        return x


def _start_times(kernel, aux, M, R):
    t0 = np.asarray(kernel.start_time(aux), dtype=np.float64)
    if t0.ndim == 0:
        return np.full(M, float(t0))
    t0 = t0.reshape(-1)
    if t0.size != M * R:
        raise RuntimeError(f"start_time of {kernel.name!r} must be a scalar or one value per row")
    return t0[::R].copy()


def _start_law(target, t0, start):
    M, G = t0.size, target.n_columns
    if start == "prior":
        one = np.ones((M, G, 1))
        return _Mix1D(one, 0.0 * one, one)
    w, m, var = target.component_params(t0)          # (G,J), (M,G,J), (M,G,J)
    return _Mix1D(np.broadcast_to(w, m.shape), m, var)


def _check_common(kernel, target, start, rng):
    if not isinstance(kernel, Kernel):
        raise ValueError(f"kernel must be a Kernel, got {type(kernel).__name__}")
    if not isinstance(target, ProductMixture):
        raise ValueError(f"target must be a ProductMixture, got {type(target).__name__}")
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    if rng is None:
        rng = np.random.default_rng(0)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    return rng


def _tail(tail):
    tail = v.finite_array("tail", tail, ndim=0).item()
    if not 0.0 < tail < 1e-3:
        raise ValueError(f"tail must lie in (0, 1e-3), got {tail!r}")
    return tail


# =================================================================================================
# results
# =================================================================================================

@dataclass
class MixtureColumnLaw:
    """Output density per internal draw ``m`` and representative column ``g`` on uniform grids.

    ``x[m, g]`` (uniform, increasing) and ``density[m, g]``: the output of column ``g`` conditional on
    internal draw ``m``; the full law lifts column ``g`` to ``multiplicities[g]`` i.i.d. coordinates.
    ``lost_mass[m, g]``: mass cut from far tails (<= a few times ``tail`` per map), ``binned_maps``:
    number of maps that were not monotone and were pushed by linear binning (0 for exact change of
    variables). ``noise_var[m, g, k]``: the verified additive noise variance of map k (propagate mode).
    """

    x: np.ndarray
    density: np.ndarray
    target: ProductMixture
    t_end: float
    multiplicities: np.ndarray
    nfe: np.ndarray
    rounds: np.ndarray
    sampler: str
    method: str
    start: str
    lost_mass: np.ndarray
    binned_maps: int = 0
    noise_var: np.ndarray | None = None
    log_density: np.ndarray | None = None
    extras: dict = field(default_factory=dict)

    @property
    def n_draws(self) -> int:
        return self.x.shape[0]

    def mass(self) -> np.ndarray:
        """Trapezoid integral of every column density, (M, G)."""
        return np.trapezoid(self.density, self.x, axis=-1)

    def column(self, m: int = 0, g: int = 0):
        """Column law of draw m, group g: a :class:`experiments.distances.ColumnDensity` when that
        module is present, else the pair ``(x_grid, density)``."""
        x = self.x[m, g]
        if ColumnDensity is None:
            return x, self.density[m, g]
        if self.log_density is not None:
            return ColumnDensity(x, log_density=self.log_density[m, g])
        return ColumnDensity(x, density=self.density[m, g])

    def columns(self, m: int = 0) -> list:
        return [self.column(m, g) for g in range(self.x.shape[1])]

    def cdf(self, m: int = 0, g: int = 0):
        """CDF of the tabulated column law (cumulative trapezoid, linear in between), a callable."""
        x, p = self.x[m, g], self.density[m, g]
        c = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(x))])
        return lambda y: np.interp(y, x, c, left=0.0, right=c[-1])

    def target_density(self, g: int = 0, x=None):
        """Exact target column density at ``t_end`` on ``x`` (default: the grid of draw 0)."""
        x = self.x[0, g] if x is None else np.asarray(x, dtype=np.float64)
        w, m, var = self.target.component_params(self.t_end)
        z = (x[:, None] - m[g]) / np.sqrt(var[g])
        return np.sum(w[g] * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi * var[g]), axis=-1)


# =================================================================================================
# 1. deterministic kernels: push a grid and change variables
# =================================================================================================

def push_points(kernel: Kernel, target, x0, *, rng=None, n_blocks: int = 1):
    """Run a deterministic ``kernel`` from the given initial points ``x0`` (batch, n_columns).

    Rows are split into ``n_blocks`` equal blocks; each block shares one draw of internal randomness
    (drawn from ``rng``). Returns ``(outputs, score)`` (the :class:`CountingScore` used)."""
    if not isinstance(kernel, Kernel):
        raise ValueError(f"kernel must be a Kernel, got {type(kernel).__name__}")
    if kernel.draws_per_step != 0:
        raise ValueError(f"kernel must be deterministic (draws_per_step == 0), {kernel.name!r} has "
                         f"draws_per_step={kernel.draws_per_step}")
    x0 = v.batch_columns("x0", x0, target.n_columns)
    n_blocks = v.positive_int("n_blocks", n_blocks)
    if x0.shape[0] % n_blocks:
        raise ValueError(f"n_blocks must divide the number of rows of x0 ({x0.shape[0]}), got {n_blocks}")
    rng = np.random.default_rng(0) if rng is None else rng
    noise = BlockNoise(rng, n_blocks, x0.shape[0] // n_blocks)
    aux = kernel.plan(noise)
    return _run_rows(kernel, target.score, x0, aux, noise)


def _run_rows(kernel, score_fn, x, aux, noise):
    score = CountingScore(score_fn, x.shape[0])
    noise.begin_step()
    state = kernel.init(x, aux, noise)
    for k in range(kernel.n_steps):
        state = guarded_step(kernel, state, aux, k, noise, score)
        for arr in state:
            if not np.all(np.isfinite(arr)):
                raise NonFiniteStateError(f"sampler {kernel.name!r} produced a non-finite state at step {k}")
    return kernel.output(state, aux), score


def _bin_mass(points, mass, lo, dx, n):
    """Linear (cloud-in-cell) binning of point masses onto the uniform grid lo + i dx, i < n, per row.
    points, mass: (B, P); lo, dx: (B, 1). Returns masses (B, n); mass conserving."""
    B = points.shape[0]
    s = (points - lo) / dx
    s = np.clip(s, 0.0, n - 1.0)
    i0 = np.minimum(np.floor(s).astype(np.int64), n - 2)
    f = s - i0
    out = np.zeros((B, n))
    rows = np.repeat(np.arange(B)[:, None], points.shape[1], axis=1)
    np.add.at(out, (rows, i0), mass * (1.0 - f))
    np.add.at(out, (rows, i0 + 1), mass * f)
    return out


def push_grid_law(kernel: Kernel, target: ProductMixture, *, n_grid: int = 4001, n_out: int | None = None,
                  rng: np.random.Generator | None = None, aux_draws: int = 1, tail: float = 1e-15,
                  rel_step: float = 1e-6, on_fold: str = "raise", start: str = "exact") -> MixtureColumnLaw:
    """Output density of a deterministic ``kernel`` on a product mixture, per column and per draw of its
    internal randomness (``aux_draws`` draws from ``rng``), by pushing a grid and changing variables.

    ``n_grid`` initial points per column (blended quantile grid between the ``tail`` and
    ``1 - tail`` quantiles of the start law); ``n_out`` points of the uniform output grid (default
    ``n_grid``); tangent rows at ``x0 +- rel_step * sd0``; ``on_fold`` "raise" or "bin".
    """
    rng = _check_common(kernel, target, start, rng)
    if kernel.draws_per_step != 0:
        raise ValueError(f"kernel must be deterministic (draws_per_step == 0) for push_grid_law; "
                         f"{kernel.name!r} has draws_per_step={kernel.draws_per_step}: use propagate_density_law")
    n = v.positive_int("n_grid", n_grid, minimum=16)
    n_out = n if n_out is None else v.positive_int("n_out", n_out, minimum=16)
    M = v.positive_int("aux_draws", aux_draws)
    tail = _tail(tail)
    rel_step = v.in_open_interval("rel_step", rel_step, 0.0, 1e-2)
    if on_fold not in ("raise", "bin"):
        raise ValueError(f"on_fold must be 'raise' or 'bin', got {on_fold!r}")
    G = target.n_columns
    R = 3 * n
    noise = BlockNoise(rng, M, R)
    aux = kernel.plan(noise)
    law0 = _start_law(target, _start_times(kernel, aux, M, R), start)
    x0 = law0.blended_quantiles(n, tail)                                  # (M, G, n)
    sd0 = np.sqrt(np.sum(law0.w * (law0.sd**2 + law0.m**2), -1) - np.sum(law0.w * law0.m, -1) ** 2)[..., None]
    e = rel_step * sd0
    rows = np.stack([x0, x0 + e, x0 - e], axis=1)                          # (M, 3, G, n)
    X = rows.transpose(0, 1, 3, 2).reshape(M * R, G)
    out, score = _run_rows(kernel, target.score, X, aux, noise)
    Y = out.reshape(M, 3, n, G).transpose(0, 1, 3, 2)                      # (M, 3, G, n)
    y, dy = Y[:, 0], (Y[:, 1] - Y[:, 2]) / (2.0 * e)
    logp0 = law0.logpdf(x0)

    xs = np.empty((M, G, n_out))
    logp = np.empty((M, G, n_out))
    lost = np.zeros((M, G))
    binned = 0
    for m in range(M):
        for g in range(G):
            yy, dd = y[m, g], dy[m, g]
            inc = np.all(np.diff(yy) > 0) and np.all(dd > 0)
            dec = np.all(np.diff(yy) < 0) and np.all(dd < 0)
            if not (inc or dec):
                bad = np.flatnonzero(np.sign(dd) != np.sign(np.median(dd)))
                where = x0[m, g, bad]
                msg = (f"sampler {kernel.name!r}: the map x0 -> y of column {g} (internal draw {m}) is not monotone "
                       f"({bad.size} grid points with reversed orientation, x0 in "
                       f"[{where.min() if where.size else np.nan:.4g}, {where.max() if where.size else np.nan:.4g}]); "
                       "change of variables does not apply")
                if on_fold == "raise":
                    raise FoldedMapError(msg)
                binned += 1
                # mass-conserving histogram of the image: trapezoid masses of the initial grid
                dx = np.diff(x0[m, g])
                wts = np.zeros(n)
                wts[:-1] += 0.5 * dx
                wts[1:] += 0.5 * dx
                mass = np.exp(logp0[m, g]) * wts
                lo, hi = yy.min(), yy.max()
                dxo = (hi - lo) / (n_out - 1)
                h = _bin_mass(yy[None], mass[None], np.array([[lo]]), np.array([[dxo]]), n_out)[0]
                dens = h / dxo
                dens[0] *= 2.0
                dens[-1] *= 2.0                                            # trapezoid end weights are dx/2
                xs[m, g] = lo + dxo * np.arange(n_out)
                with np.errstate(divide="ignore"):
                    logp[m, g] = np.log(dens)
                continue
            lp = logp0[m, g] - np.log(np.abs(dd))
            if dec:
                yy, lp = yy[::-1], lp[::-1]
            grid = np.linspace(yy[0], yy[-1], n_out)
            logp[m, g] = CubicSpline(yy, lp)(grid)
            xs[m, g] = grid
            lost[m, g] = 2.0 * tail
    with np.errstate(under="ignore"):
        dens = np.exp(logp)
    return MixtureColumnLaw(
        x=xs, density=dens, target=target, t_end=float(kernel.end_time), multiplicities=target.multiplicities.copy(),
        nfe=score.calls[::R].copy(), rounds=score.rounds[::R].copy(), sampler=kernel.name,
        method="push_grid" + ("+binning" if binned else ""), start=start, lost_mass=lost, binned_maps=binned,
        log_density=logp, extras={"x0": x0, "y": y, "dy_dx0": dy},
    )


# =================================================================================================
# 2. maps followed by additive state-independent Gaussian noise: propagate the density
# =================================================================================================

class _Probe:
    """Row layout of one block: n base rows, n rows +e, n rows -e, then per check point
    (2q + extra) rows: +e_k, -e_k for each draw k, and all draws 1 (when q > 1)."""

    def __init__(self, n, q, n_check):
        self.n, self.q = n, q
        self.check_idx = (np.unique(np.linspace(0, n - 1, n_check).round().astype(np.int64)) if q
                          else np.zeros(0, np.int64))
        self.per = 2 * q + (1 if q > 1 else 0)
        self.C = self.check_idx.size
        self.R = 3 * n + self.C * self.per
        pat = np.zeros((max(q, 1), self.R))
        base = 3 * n
        for c in range(self.C):
            r0 = base + c * self.per
            for k in range(q):
                pat[k, r0 + 2 * k] = 1.0
                pat[k, r0 + 2 * k + 1] = -1.0
            if q > 1:
                pat[:, r0 + 2 * q] = 1.0
        self.pattern = pat

    def rows(self, z, e):
        """z (M, G, n), e (M, G, 1) -> rows (M*R, G)."""
        M, G, n = z.shape
        zc = z[..., self.check_idx]                                          # (M, G, C)
        chk = np.repeat(zc, self.per, axis=-1)                               # (M, G, C*per)
        allr = np.concatenate([z, z + e, z - e, chk], axis=-1)               # (M, G, R)
        return allr.transpose(0, 2, 1).reshape(M * self.R, G)


def _apply_map(fn, probe, z, e, M, G, noise_tol, name, where):
    """Probe one map on the grid: returns f (M,G,n), f' (M,G,n), noise variance (M,G)."""
    n, q = probe.n, probe.q
    out = fn(probe.rows(z, e))
    Y = out.reshape(M, probe.R, G).transpose(0, 2, 1)                        # (M, G, R)
    f, fp, fm = Y[..., :n], Y[..., n:2 * n], Y[..., 2 * n:3 * n]
    deriv = (fp - fm) / (2.0 * e)
    s2 = np.zeros((M, G))
    if q and probe.C:
        chk = Y[..., 3 * n:].reshape(M, G, probe.C, probe.per)
        f_c = f[..., probe.check_idx]                                        # (M, G, C)
        cplus = chk[..., 0:2 * q:2] - f_c[..., None]                         # (M, G, C, q)
        cminus = f_c[..., None] - chk[..., 1:2 * q:2]
        scale = np.max(np.abs(f), axis=-1)[..., None, None] + np.max(np.abs(cplus), axis=(-2, -1), keepdims=True) + 1.0
        tol = noise_tol * scale
        if np.any(np.abs(cplus - cminus) > tol):
            raise ValueError(f"sampler {name!r} is not of the form 'map + additive Gaussian noise' at {where}: "
                             "the output is not affine in the Gaussian draws")
        if np.any(np.abs(cplus - cplus[..., :1, :]) > tol):
            worst = float(np.max(np.abs(cplus - cplus[..., :1, :])))
            raise ValueError(f"sampler {name!r} is not of the form 'map + additive Gaussian noise' at {where}: "
                             f"the noise coefficients depend on the state (variation {worst:.3g} across the grid)")
        if q > 1:
            ones = chk[..., 2 * q] - f_c
            if np.any(np.abs(ones - np.sum(cplus, axis=-1)) > tol[..., 0]):
                raise ValueError(f"sampler {name!r} is not of the form 'map + additive Gaussian noise' at {where}: "
                                 "the Gaussian draws interact (cross terms)")
        c = np.mean(cplus, axis=-2)                                          # (M, G, q)
        s2 = np.sum(c * c, axis=-1)
    return f, deriv, s2


def _mass_range(y, mass, tail):
    """Smallest [lo, hi] leaving at most ``tail`` mass on each side, per row: y, mass (B, P)."""
    order = np.argsort(y, axis=-1)
    ys = np.take_along_axis(y, order, -1)
    ms = np.take_along_axis(mass, order, -1)
    cm = np.cumsum(ms, axis=-1)
    tot = cm[..., -1:]
    i_lo = np.argmax(cm > tail * tot, axis=-1)
    i_hi = ms.shape[-1] - 1 - np.argmax(np.cumsum(ms[..., ::-1], -1) > tail * tot, axis=-1)
    rows = np.arange(y.shape[0])
    return ys[rows, i_lo][:, None], ys[rows, i_hi][:, None]


def _gauss_convolve(p, dx, s2):
    """Convolve rows of p (B, n), uniform spacing dx (B, 1), with N(0, s2) (B,) by FFT (zero-padded)."""
    B, n = p.shape
    N = 2 * n
    F = np.fft.rfft(p, n=N, axis=-1)
    omega = 2.0 * np.pi * np.fft.rfftfreq(N)[None, :] / dx                  # (B, N/2+1)
    with np.errstate(under="ignore"):
        F *= np.exp(-0.5 * s2[:, None] * omega**2)
    out = np.fft.irfft(F, n=N, axis=-1)[:, :n]
    return np.maximum(out, 0.0)


def _push_density(z, p, f, deriv, s2, n, tail, allow_bin, mass_tol=1e-6):
    """One map + noise on flat rows: z, p, f, deriv (B, n) with z uniform; s2 (B,).
    Returns new uniform grid (B, n), density (B, n), lost mass (B,), number of binned rows."""
    B = z.shape[0]
    dz = (z[:, 1:2] - z[:, :1])
    wts = np.full((1, n), 1.0)
    wts[0, 0] = wts[0, -1] = 0.5
    mass = p * wts * dz
    lo, hi = _mass_range(f, mass, tail)
    sd = np.sqrt(s2)[:, None]
    lo, hi = lo - NOISE_SD_MARGIN * sd, hi + NOISE_SD_MARGIN * sd
    degenerate = hi <= lo
    if np.any(degenerate):
        raise NonFiniteStateError("a map collapsed the whole mass onto one point; the density is singular")
    w = np.linspace(0.0, 1.0, n)[None, :] * (hi - lo) + lo
    dw = (hi - lo) / (n - 1)
    newp = np.zeros((B, n))
    n_binned = 0
    inc = np.all(np.diff(f, axis=-1) > 0, axis=-1) & np.all(deriv > 0, axis=-1)
    dec = np.all(np.diff(f, axis=-1) < 0, axis=-1) & np.all(deriv < 0, axis=-1)
    for b in range(B):
        if inc[b] or dec[b]:
            yy, qq = f[b], p[b] / np.abs(deriv[b])
            if dec[b]:
                yy, qq = yy[::-1], qq[::-1]
            inside = (w[b] >= yy[0]) & (w[b] <= yy[-1])
            newp[b, inside] = CubicSpline(yy, qq)(w[b, inside])
        else:
            if not allow_bin:
                raise FoldedMapError("a map is not monotone on the grid")
            n_binned += 1
            h = _bin_mass(f[b:b + 1], mass[b:b + 1], lo[b:b + 1], dw[b:b + 1], n)[0]
            h[0] *= 2.0
            h[-1] *= 2.0
            newp[b] = h / dw[b]
    newp = np.maximum(newp, 0.0)
    noisy = s2 > 0
    if np.any(noisy):
        conv = _gauss_convolve(newp[noisy], dw[noisy], s2[noisy])
        # FFT rounding leaves a floor of ~1e-16 * max at every grid point; left in, it would be
        # counted as tail mass and widen the next grid step after step. Values below FFT_FLOOR * max
        # are set to 0 (their mass, at most FFT_FLOOR * max * range, is recorded as lost).
        conv[conv < FFT_FLOOR * conv.max(axis=-1, keepdims=True)] = 0.0
        newp[noisy] = conv
    # resolution guards: a resolved change of variables conserves mass to spline accuracy, and the law
    # must span many grid steps
    rel = np.abs(np.sum(newp * wts * dw, axis=-1) - np.sum(mass, axis=-1))
    if np.any(rel > mass_tol):
        raise GridResolutionError(
            f"mass changed by {rel.max():.3g} > mass_tol = {mass_tol:.3g} in one map: the map is not resolved by "
            "the grid (strong local compression or expansion); raise n_grid")
    mean = np.sum(newp * w, -1) / np.sum(newp, -1)
    sd = np.sqrt(np.maximum(np.sum(newp * (w - mean[:, None]) ** 2, -1) / np.sum(newp, -1), 0.0))
    if np.any(sd < MIN_POINTS_PER_SD * dw[:, 0]):
        raise GridResolutionError(
            f"the grid no longer resolves the law (standard deviation / grid step = {np.min(sd / dw[:, 0]):.3g} "
            f"< {MIN_POINTS_PER_SD}); raise n_grid")
    old_mass = np.sum(mass, axis=-1)
    new_mass = np.sum(newp * wts * dw, axis=-1)
    return w, newp, old_mass - new_mass, n_binned


def propagate_density_law(kernel: Kernel, target: ProductMixture, *, n_grid: int = 4096, n_draws: int = 1,
                          rng: np.random.Generator | None = None, tail: float = 1e-15, rel_step: float = 1e-6,
                          n_check: int = 17, noise_tol: float = 1e-8, on_fold: str = "bin",
                          mass_tol: float = 1e-6, start: str = "exact") -> MixtureColumnLaw:
    """Exact-up-to-quadrature output density of a kernel whose every map is 'deterministic map, then
    additive Gaussian noise of state-independent variance', per column and per internal draw.

    ``n_grid``: uniform grid points per column (re-fitted to the mass after every map); ``n_draws``
    draws of internal randomness from ``rng``; ``n_check`` grid points on which the form of the noise is
    verified (relative tolerance ``noise_tol``); ``on_fold`` "bin" (mass-conserving linear binning for
    non-monotone maps) or "raise"; ``mass_tol``: largest mass change allowed in one map before
    :class:`GridResolutionError` (a resolved map conserves mass to spline accuracy).
    """
    rng = _check_common(kernel, target, start, rng)
    if kernel.state_size != 1:
        raise ValueError(f"kernel must have state_size 1 for propagate_density_law; {kernel.name!r} has "
                         f"state_size={kernel.state_size}: use monte_carlo_column_law")
    n = v.positive_int("n_grid", n_grid, minimum=16)
    M = v.positive_int("n_draws", n_draws)
    n_check = v.positive_int("n_check", n_check, minimum=2)
    tail = _tail(tail)
    rel_step = v.in_open_interval("rel_step", rel_step, 0.0, 1e-2)
    noise_tol = v.in_open_interval("noise_tol", noise_tol, 0.0, 1e-2)
    mass_tol = v.in_open_interval("mass_tol", mass_tol, 0.0, 1.0)
    if on_fold not in ("raise", "bin"):
        raise ValueError(f"on_fold must be 'raise' or 'bin', got {on_fold!r}")
    G, q = target.n_columns, kernel.draws_per_step
    probe = _Probe(n, q, n_check)
    R = probe.R
    noise = BlockNoise(rng, M, R, pattern=probe.pattern, max_draws=q)
    aux = kernel.plan(noise)
    law0 = _start_law(target, _start_times(kernel, aux, M, R), start)
    lo, hi = law0.quantile_tails(tail)
    z = lo + (hi - lo) * np.linspace(0.0, 1.0, n)[None, None, :]          # (M, G, n)
    p = np.exp(law0.logpdf(z))
    lost = np.full((M, G), 2.0 * tail)
    score = CountingScore(target.score, M * R)
    variances = []
    binned = 0

    def one(fn, where):
        nonlocal z, p, lost, binned
        e = rel_step * (np.max(np.abs(z), axis=-1, keepdims=True) + (z[..., -1:] - z[..., :1]))
        f, deriv, s2 = _apply_map(fn, probe, z, e, M, G, noise_tol, kernel.name, where)
        if not (np.all(np.isfinite(f)) and np.all(np.isfinite(deriv))):
            raise NonFiniteStateError(f"sampler {kernel.name!r} produced a non-finite state at {where}")
        try:
            w, newp, dl, nb = _push_density(z.reshape(M * G, n), p.reshape(M * G, n), f.reshape(M * G, n),
                                            deriv.reshape(M * G, n), s2.reshape(-1), n, tail, on_fold == "bin",
                                            mass_tol)
        except FoldedMapError as exc:
            raise FoldedMapError(f"sampler {kernel.name!r} at {where}: {exc}") from exc
        z, p = w.reshape(M, G, n), newp.reshape(M, G, n)
        lost = lost + dl.reshape(M, G)
        binned += nb
        variances.append(s2)

    def init_map(X):
        noise.begin_step()
        state = kernel.init(X, aux, noise)
        if len(state) != 1:
            raise ValueError(f"kernel must have state_size 1; init of {kernel.name!r} returned {len(state)} arrays")
        return state[0]

    one(init_map, "init")
    for k in range(kernel.n_steps):
        one(lambda X, k=k: guarded_step(kernel, (X,), aux, k, noise, score)[0], f"step {k}")
    one(lambda X: kernel.output((X,), aux), "output")
    return MixtureColumnLaw(
        x=z, density=p, target=target, t_end=float(kernel.end_time), multiplicities=target.multiplicities.copy(),
        nfe=score.calls[::R].copy(), rounds=score.rounds[::R].copy(), sampler=kernel.name,
        method="propagate_density", start=start, lost_mass=lost, binned_maps=binned,
        noise_var=np.stack(variances, axis=-1),
    )


# =================================================================================================
# 3. Monte Carlo fallback
# =================================================================================================

@dataclass
class MonteCarloColumnLaw:
    """Histogram column laws from sample mode. ``edges[m, g]`` (bins + 1), ``density[m, g]``,
    ``stderr[m, g]`` (Poisson standard error per bin), ``dkw[m]``: half-width of the 1 - ``alpha``
    DKW band of the empirical CDF of each column, ``samples[m]`` (n, G). One block (``m = 0``) is the
    annealed law when ``n_draws`` was None; otherwise block m is conditional on internal draw m."""

    edges: np.ndarray
    density: np.ndarray
    stderr: np.ndarray
    dkw: np.ndarray
    alpha: float
    samples: np.ndarray
    t_end: float
    sampler: str
    conditional: bool

    @property
    def centers(self):
        return 0.5 * (self.edges[..., 1:] + self.edges[..., :-1])

    def column(self, m=0, g=0):
        """(centers, density) of block m, column g (a ColumnDensity when possible)."""
        x, p = self.centers[m, g], self.density[m, g]
        if ColumnDensity is None:
            return x, p
        return ColumnDensity(x, density=p)


def monte_carlo_column_law(kernel: Kernel, target, *, n_samples: int, rng: np.random.Generator | None = None,
                           n_draws: int | None = None, internal_rng: np.random.Generator | None = None,
                           bins: int = 200, alpha: float = 0.05, start: str = "exact") -> MonteCarloColumnLaw:
    """Column laws by sample mode (any kernel).

    ``n_draws=None``: ``n_samples`` i.i.d. runs (each row its own internal randomness: the annealed law).
    ``n_draws=M``: M blocks of ``n_samples`` rows, the rows of a block sharing one internal draw (from
    ``internal_rng``, default ``rng``): the M conditional laws. Precision: Poisson standard errors per bin
    and the DKW band ``sqrt(log(2/alpha) / (2 n))`` for the CDF.
    """
    if not isinstance(kernel, Kernel):
        raise ValueError(f"kernel must be a Kernel, got {type(kernel).__name__}")
    n = v.positive_int("n_samples", n_samples, minimum=2)
    bins = v.positive_int("bins", bins, minimum=2)
    alpha = v.in_open_interval("alpha", alpha, 0.0, 1.0)
    rng = np.random.default_rng(0) if rng is None else rng
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    if n_draws is None:
        res = run(kernel, target, n, rng, start=start)
        samples = res.x[None]
    else:
        M = v.positive_int("n_draws", n_draws)
        irng = rng if internal_rng is None else internal_rng
        noise = BlockNoise(irng, M, n, gauss_rng=rng, max_draws=10**9)
        res = run(kernel, target, M * n, rng, start=start, noise=noise)
        samples = res.x.reshape(M, n, -1)
    M, _, G = samples.shape
    edges = np.empty((M, G, bins + 1))
    dens = np.empty((M, G, bins))
    se = np.empty((M, G, bins))
    for m in range(M):
        for g in range(G):
            h, ed = np.histogram(samples[m, :, g], bins=bins)
            width = np.diff(ed)
            edges[m, g], dens[m, g], se[m, g] = ed, h / (n * width), np.sqrt(h) / (n * width)
    dkw = np.full(M, np.sqrt(np.log(2.0 / alpha) / (2.0 * n)))
    return MonteCarloColumnLaw(edges, dens, se, dkw, alpha, samples, float(kernel.end_time), kernel.name,
                               n_draws is not None)


# =================================================================================================
# 4. general Gaussian mixtures: exact output log-density by tracking the Jacobian
# =================================================================================================

@dataclass
class JacobianLogDensity:
    """Output points ``y`` (n, d) of a deterministic sampler with the exact log-density of its output
    law there (``log_density``, conditional on each row's internal randomness), the log-density of
    the target marginal at ``t_end`` (``log_target``), and the pieces ``log_p0`` and ``log_det``."""

    y: np.ndarray
    x0: np.ndarray
    log_density: np.ndarray
    log_target: np.ndarray
    log_p0: np.ndarray
    log_det: np.ndarray
    t_end: float
    sampler: str
    method: str
    nfe: np.ndarray


def _linearised_score(target, R):
    """Score for blocks of R rows: row 0 of each block gets the true score; the other rows get the
    linearisation around row 0 of their block (forward-mode tangent propagation)."""
    d = target.n_columns

    def fn(x, t):
        b = x.shape[0] // R
        X = x.reshape(b, R, d)
        base = X[:, 0]
        ta = np.asarray(t, dtype=np.float64)
        if ta.size == 1:
            tb = ta.reshape(())
        else:
            tb = ta.reshape(b, R)[:, :1]
        s0 = target.score(base, tb)
        J = target.score_jacobian(base, tb)
        out = s0[:, None, :] + np.einsum("bde,bre->brd", J, X - base[:, None, :])
        return out.reshape(x.shape)

    return fn


def jacobian_log_density(kernel: Kernel, target: GaussianMixture, n: int, rng: np.random.Generator, *,
                         method: str = "exact", rel_step: float = 1e-6, start: str = "exact",
                         x0=None) -> JacobianLogDensity:
    """Run a deterministic ``kernel`` on ``n`` exact initial samples while tracking log|det J| of every map
    (see the module docstring); returns the exact output log-density at the output points.

    ``x0`` (n, d), optional: run from these initial points instead of samples (the log-density of the
    output law is still that of the law started from the start marginal, evaluated at their images);
    ``rng`` then only draws internal randomness."""
    if not isinstance(kernel, Kernel):
        raise ValueError(f"kernel must be a Kernel, got {type(kernel).__name__}")
    if not isinstance(target, GaussianMixture):
        raise ValueError(f"target must be a GaussianMixture, got {type(target).__name__}")
    if kernel.draws_per_step != 0:
        raise ValueError(f"kernel must be deterministic (draws_per_step == 0) for jacobian_log_density; "
                         f"{kernel.name!r} has draws_per_step={kernel.draws_per_step}")
    n = v.positive_int("n", n)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if method not in ("exact", "fd"):
        raise ValueError(f"method must be 'exact' or 'fd', got {method!r}")
    if start not in STARTS:
        raise ValueError(f"start must be one of {STARTS}, got {start!r}")
    rel_step = v.in_open_interval("rel_step", rel_step, 0.0, 1e-2)
    d = target.n_columns
    if d > 64:
        raise ValueError(f"target dimension must be <= 64 for Jacobian tracking, got {d}")
    R = 1 + d if method == "exact" else 1 + 2 * d
    noise = BlockNoise(rng, n, R)
    aux = kernel.plan(noise)
    t0 = _start_times(kernel, aux, n, R)
    if x0 is not None:
        x0 = v.batch_columns("x0", x0, d)
        if x0.shape[0] != n:
            raise ValueError(f"x0 must have n = {n} rows, got {x0.shape[0]}")
    if start == "exact":
        x0 = target.sample(n, t0[:, None], rng) if x0 is None else x0
        logp0 = target.log_density(x0, t0[:, None])
    else:
        x0 = rng.standard_normal((n, d)) if x0 is None else x0
        logp0 = -0.5 * np.sum(x0**2, axis=1) - d * _LOG_2PI_HALF
    score_fn = _linearised_score(target, R) if method == "exact" else target.score
    score = CountingScore(score_fn, n * R)
    scale = 1.0 + np.max(np.abs(x0), axis=1)[:, None, None]                # (n, 1, 1)
    e = 1.0 if method == "exact" else rel_step * scale

    def expand(base_flat, Q):
        """base (n, S), frame Q (n, S, d) -> rows (n*R, S)."""
        if method == "exact":
            rows = np.concatenate([base_flat[:, None, :], base_flat[:, None, :] + np.swapaxes(Q, 1, 2)], axis=1)
        else:
            dq = np.swapaxes(e * Q, 1, 2)
            rows = np.concatenate([base_flat[:, None, :], base_flat[:, None, :] + dq, base_flat[:, None, :] - dq], 1)
        return rows.reshape(n * R, -1)

    def directional(out_flat):
        """rows (n*R, S') -> base (n, S'), J Q (n, S', d)."""
        Y = out_flat.reshape(n, R, -1)
        if method == "exact":
            D = Y[:, 1:] - Y[:, :1]
        else:
            D = (Y[:, 1:1 + d] - Y[:, 1 + d:]) / (2.0 * e)
        return Y[:, 0], np.swapaxes(D, 1, 2)

    def flat(state):
        return np.concatenate(state, axis=1)

    def unflat(Xf, s):
        return tuple(np.split(Xf, s, axis=1))

    log_det = np.zeros(n)
    Q = np.broadcast_to(np.eye(d), (n, d, d)).copy()

    def advance(base, D):
        nonlocal Q, log_det
        Qn, Rm = np.linalg.qr(D)
        diag = np.abs(np.diagonal(Rm, axis1=1, axis2=2))
        if np.any(diag == 0) or not np.all(np.isfinite(diag)):
            raise NonFiniteStateError(f"sampler {kernel.name!r}: singular or non-finite step Jacobian")
        log_det += np.sum(np.log(diag), axis=1)
        Q = Qn
        return base

    noise.begin_step()
    state = kernel.init(expand(x0, Q), aux, noise)
    s = len(state)
    base = advance(*directional(flat(state)))
    for k in range(kernel.n_steps):
        state = guarded_step(kernel, unflat(expand(base, Q), s), aux, k, noise, score)
        for arr in state:
            if not np.all(np.isfinite(arr)):
                raise NonFiniteStateError(f"sampler {kernel.name!r} produced a non-finite state at step {k}")
        base = advance(*directional(flat(state)))
    out = kernel.output(unflat(expand(base, Q), s), aux)
    y, D = directional(out)
    sign, ld = np.linalg.slogdet(D)
    if np.any(sign == 0):
        raise NonFiniteStateError(f"sampler {kernel.name!r}: singular output Jacobian")
    log_det += ld
    t_end = float(kernel.end_time)
    return JacobianLogDensity(
        y=y, x0=x0, log_density=logp0 - log_det, log_target=target.log_density(y, t_end), log_p0=logp0,
        log_det=log_det, t_end=t_end, sampler=kernel.name, method=method, nfe=score.calls[::R].copy(),
    )


@dataclass
class KLTVEstimate:
    kl: float
    kl_se: float
    tv: float
    tv_se: float
    n: int


def kl_tv_monte_carlo(result: JacobianLogDensity) -> KLTVEstimate:
    """KL(P || Q) = E_P[log p - log q] and TV = E_P[(1 - q/p)_+] with standard errors (P: the sampler's
    output law, conditional on internal randomness, so quenched averages for randomised kernels;
    Q: the target marginal at ``t_end``)."""
    if not isinstance(result, JacobianLogDensity):
        raise ValueError(f"result must be a JacobianLogDensity, got {type(result).__name__}")
    ell = result.log_density - result.log_target
    if not np.all(np.isfinite(ell)):
        raise ValueError("result has non-finite log-density ratios")
    n = ell.size
    if n < 2:
        raise ValueError("result must hold at least 2 samples for a standard error")
    with np.errstate(under="ignore"):
        t = np.maximum(-np.expm1(-ell), 0.0)
    return KLTVEstimate(float(ell.mean()), float(ell.std(ddof=1) / np.sqrt(n)),
                        float(t.mean()), float(t.std(ddof=1) / np.sqrt(n)), n)
