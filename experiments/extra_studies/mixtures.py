r"""Study "mixtures": Gaussian mixtures whose dimension enters through geometry, not through a product.

Question. On the suite's product targets (``gauss_aniso`` ...) the error of a deterministic-time sampler
is a sum (KL) or a function of a sum (TV) of i.i.d. per-coordinate terms, so the fitted d-exponent of
:math:`N^*(d,\varepsilon)` is forced by independence (the output law is a product with the same factor per
coordinate at every d, so N* depends on d/eps^2 only).
Do the exponents change when d enters through the *geometry* of a dense mixture instead?

Family (:func:`random_direction_mixture`). :math:`J` equal-weight components with means
:math:`m_j = R(d)\,u_j`, :math:`u_j` i.i.d. uniform unit vectors of :math:`R^d` (drawn from
``default_rng(SeedSequence([seed, d]))``: fixed per d, independent across d), and

* ``mix_iso``: isotropic equal covariances :math:`vI` (v = 1);
* ``mix_aniso``: one shared covariance :math:`\Sigma = Q\,\mathrm{diag}(\lambda)\,Q^\top` with the
  spectrum of ``gauss_aniso`` (half the eigenvalues 0.1, half 2.0) and a Haar-random rotation Q from
  the same generator, so the means are dense in the eigenbasis of :math:`\Sigma`. A shared covariance
  keeps the score globally Lipschitz (components with covariances that are not Loewner-ordered are not;
  :class:`~experiments.targets.GaussianMixture` returns ``inf`` for them).

Separation :math:`R(d) = r\,d^{1/4}` (r = 2 for ``mix_iso``, 1 for ``mix_aniso``). Why d^{1/4}: two
samples of one component are at squared distance :math:`2vd \pm O(v\sqrt d)` and of two components at
:math:`2vd + |m_j-m_k|^2 \pm O(v\sqrt d)`, so :math:`|m_j-m_k|\gtrsim d^{1/4}` is the scale at which the
components remain visible in the pairwise geometry of the data as d grows (the distance-based
clustering threshold of Arora & Kannan, and Vempala & Wang); with a fixed R the mixture would become a
vanishing perturbation of a d-dimensional Gaussian, and with :math:`R\gg d^{1/4}` the score's
Lipschitz constant would grow faster than any theorem's d-dependence. The price: L grows with d too
(:math:`L\sim R^2/(4v^2)` in the worst direction). L(d) is reported, always from
:meth:`GaussianMixture.lipschitz_sup` (certified bound), never by hand. ``separation`` also accepts
``"sqrtlog"`` (:math:`r\sqrt{1+\log d}`) and ``"fixed"``.

What "geometry" can and cannot change (a structural fact, checked numerically): an **isotropic**
equal-variance mixture is a product in rotated coordinates, span(means) (J dims) times an isotropic
Gaussian :math:`N(0, vI_{d-J})` on the complement, and every sampler here is rotation-equivariant (it
only adds multiples of x and of the score), so its output law is the product of the two parts and

.. math:: KL(P\|Q) = KL_{span}(R(d)) + (d-J)\,KL_{1}(N(0,v)).

The d-dependence of ``mix_iso`` is therefore "product part + a J-dimensional mixture whose
separation grows". The ``split`` table measures both terms independently (the span part by the Jacobian
method in dimension J, the complement in exact law mode) and compares their sum with the full
d-dimensional estimate: a check of the machinery and a measurement of the geometry's share.
``mix_aniso`` has no such decomposition: the directions :math:`\Sigma_t^{-1}m_j` along which the score
is nonlinear rotate with t, so every coordinate is coupled.

Measurement, deterministic samplers (ddim, dpm_solver_2, edm_heun, pf_ode_euler). Exact output
log-density by :func:`experiments.mixture_laws.jacobian_log_density` (forward-mode tangent propagation,
exact up to rounding), started from the exact marginal at the kernel's start level, n output points
per cell; with :math:`\ell = \log p - \log q` (p: output law, q: target marginal at the end level):

* TV :math:`= E_P[(1-e^{-\ell})_+]` (bounded integrand) and the plain KL :math:`E_P[\ell]`, both from
  :func:`~experiments.mixture_laws.kl_tv_monte_carlo`;
* KL with the control variate :math:`E_P[e^{-\ell}] = 1`: :math:`KL = E_P[\ell - c(e^{-\ell} - 1)]` with the
  regression coefficient c estimated from the same sample (bias O(1/n)). For small KL, c is close to -1,
  i.e. :math:`E_P[\ell + e^{-\ell} - 1]`, whose integrand is :math:`\approx\ell^2/2\ge 0`: variance
  :math:`O(KL^2)` instead of :math:`O(KL)`; at large KL the weights :math:`e^{-\ell}` are heavy-tailed
  and c shrinks toward 0; where the sample mean of :math:`e^{-\ell}` is more than 3 standard errors from 1
  (TV near 1: the sample does not represent the identity) the plain estimator is used. This is the ``sqrt_kl`` metric
  (:math:`\sqrt{KL(P\|Q)}`, standard error by the delta method). Direction: KL(output || target) (the
  main study's ``sqrt_kl`` is KL(target || output); the twins below use this study's direction);
* normalisation check :math:`z = (\overline{e^{-\ell}} - 1)/\mathrm{se}`: the importance weights
  :math:`q/p` integrate to one under P only if the log-density is right (a wrong Jacobian fails it);
* mode-weight TV of the same output points (a lower bound on TV, see below): a consistency check.

N* and its uncertainty. Every cell becomes one of the suite's error rows (``error``, ``error_se`` from
the Monte Carlo, ``gate = "monte carlo"``; the exact twins ``gate = "exact"``), and N*(d, eps) comes from
:func:`experiments.complexity.nstar_table` (log-log interpolation, last crossing, a delta-method
``nstar_log_se`` from the two deciding cells and a ``status``: a curve that crosses eps twice beyond
its noise is ``ambiguous``; only ``ok`` rows enter a fit). Cells at different costs use independent Monte
Carlo samples, so their errors are independent with known standard errors; ``nstar_lo``/``nstar_hi``
is the 95% delta-method interval.

Exponents. The samplers are deterministic: their laws carry no sampling error, only the Monte Carlo of
the distances does. So, as in :mod:`analysis.exponents` for deterministic samplers, the misfit of the
power law over the window is reported as the *range of local slopes* (along d at fixed eps, along 1/eps at
fixed d), never as a confidence interval; the point estimate is the joint least-squares fit
:math:`\log N^* = c + a\log d + b\log(1/\varepsilon)` (a dense mixture has no d/eps^2 structure). The
Monte Carlo error is propagated by a parametric bootstrap (B replicates: every cell's estimate redrawn
from N(estimate, se^2), KL before the square root; N* recomputed at the ok (d, eps); everything refitted):
``a_mc_lo``/``a_mc_hi`` is the bootstrap 95% interval of the joint a (Monte Carlo only), and the interval
used for the verdicts, ``a_lo``/``a_hi`` (``interval = "local-slope range + MC 95%"``), is the local-slope
range with each end moved out to the 2.5% (97.5%) quantile of the replicates' smallest (largest) local
slope. Verdicts: the suite's rule (:func:`analysis.verdicts.verdicts`: margins, allowance for the claims'
declared logs, metric matching; the TV here is the output law's, ``sqrt_kl`` tests a TV claim through
Pinsker as an upper proxy, and a KL claim not at all, being KL(output || target)).

Product comparison ("twins", exact law mode, same ladders, dims and eps, same KL direction):
``twin:mix_iso`` = :math:`N(0, vI_d)`, ``twin:mix_aniso`` = :math:`N(0,\Sigma)` (the family at R = 0),
and the main study's ``gauss_aniso``. Table ``mixtures_compare.csv``: :math:`a_{mix} - a_{twin}`, both
fitted jointly on the (d, eps) where both N* are ok, with the Monte Carlo 95% interval of the mixture side
(the twin is exact) and the range of the differences of local slopes beside it; "geometry changes a"
(``yes``) when the interval lies beyond the verdict rule's margin for a, ``no`` when it lies within it,
``inconclusive`` otherwise. (Caveat: ``twin:mix_iso`` is N(0, I), the OU stationary law; pf_ode_euler
(drift x + score = 0) and edm_heun are exact or nearly so on it, so their twin N* is below the ladder:
no common points, with the reason, not a number.) ``structure_spread`` (:func:`analysis.exponents.structure_fit`)
checks the twins' product structure: N* depends on d/eps^2 only.

Stochastic samplers (ddpm, li_jiao): no exact density. Sample mode (:func:`experiments.samplers.driver.run`)
and sample-based distances with bootstrap intervals (:mod:`experiments.distances`; normal intervals
value -/+ 1.96 bootstrap sd, see :func:`_interval`):
sliced W2, energy distance, and the TV of the mode-occupancy weights (labels: the most responsible
component at the end level, applied to the output and to a large target sample). What they can test:
convergence with cost and its rate down to the sampling floor (two independent target samples of the
same size, reported); the mode-weight TV is a *lower* bound on TV (data processing). Its plug-in
estimate is biased upward by sampling (about :math:`\sqrt{J/n}`), so the certified bound is
``mode_tv - mode_tv_noise95`` (:func:`mode_tv_noise95`: 95% quantile of the sampling deviation, triangle
inequality); when it exceeds eps at cost N, TV > eps there, and N*(eps) > N (``nstar_lower@eps``). The
percentile-bootstrap interval of :func:`experiments.distances.mode_weight_tv` is reported too but sits
around the biased value. What they cannot test: an upper-bound claim on TV or KL (no upper bound on TV
follows from W2, energy or mode weights), so no verdicts on the exponents of ddpm and li_jiao are made
here. The same certified bound, computed on the output points of the deterministic samplers, must stay
below their exact TV (a consistency check reported in tables.md). The slope of log sliced W2 against log
NFE (cells above the sampling floor) gets a Monte Carlo 95% interval by a parametric bootstrap over the
cells' bootstrap standard errors (the output points are i.i.d. runs, internal randomness included, and
every cell has its own samples), with the range of local slopes beside it.

Outputs: ``mixtures_cells.csv`` (det. cells), ``mixtures_twins.csv``, ``mixtures_errors.csv`` (the
suite's error rows of both), ``mixtures_nstar.csv``, ``mixtures_fits.csv``, ``mixtures_verdicts.csv``,
``mixtures_local_slopes.csv``, ``mixtures_compare.csv``, ``mixtures_split.csv``, ``mixtures_split_cells.csv``,
``mixtures_stochastic.csv``, ``mixtures_stochastic_summary.csv``, ``mixtures_floor.csv``,
``mixtures_geometry.csv`` (R, L per d), ``tables.md``; figures
``mixtures_tv_vs_nfe.png``, ``mixtures_sqrtkl_vs_nfe.png``, ``mixtures_nstar_vs_d.png``,
``mixtures_stochastic.png``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments import _validate as v
from experiments.cache import atomic_write_text
from experiments.cells import code_version
from experiments.complexity import cost_ladder, nstar_detail, nstar_table
from experiments.distances import energy_distance, mode_weight_tv, quenched_kl, sliced_w2
from experiments.extra_studies import Study, run_cached
from experiments.laws import gaussian_law
from experiments.mixture_laws import jacobian_log_density, kl_tv_monte_carlo
from experiments.replicates import replicated_error
from experiments.samplers import NonFiniteStateError
from experiments.samplers import get as get_sampler
from experiments.samplers.driver import run as run_sampler
from experiments.studies import GaussianFamily, get_target
from experiments.targets import GaussianMixture, GroupedGaussian

NAME = "mixtures"
METRICS = ("tv", "sqrt_kl")
Z95 = 1.959963984540054
N_REF_LABELS = 20000        # target sample size for the target's mode weights
NORM_Z_CV = 3.0             # the KL control variate is used only when |mean(q/p) - 1| <= this many se


# =================================================================================================
# the family
# =================================================================================================

def separation(d: int, r: float, schedule: str = "d14") -> float:
    """R(d): ``"d14"`` r d^{1/4} (default, see the module docstring), ``"sqrtlog"`` r sqrt(1 + log d),
    ``"fixed"`` r."""
    d = v.positive_int("d", d)
    r = v.nonnegative("r", r)
    if schedule == "d14":
        return float(r * d**0.25)
    if schedule == "sqrtlog":
        return float(r * np.sqrt(1.0 + np.log(d)))
    if schedule == "fixed":
        return float(r)
    raise ValueError(f"schedule must be one of 'd14', 'sqrtlog', 'fixed', got {schedule!r}")


def _group_counts(fractions, d: int) -> np.ndarray:
    """Coordinates per spectrum group, rounded as :class:`experiments.studies.GaussianFamily` does."""
    frac = np.asarray(fractions, float)
    k = np.maximum(np.floor(frac * d).astype(np.int64), 1)
    k[np.argmax(frac)] += d - k.sum()
    return k


def haar_rotation(d: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed orthogonal d x d matrix (QR of a Gaussian matrix with the sign fix)."""
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    return Q * np.where(np.diag(R) < 0, -1.0, 1.0)


def random_direction_mixture(d: int, n_components: int, separation: float, variance=1.0, seed: int = 0, *,
                             spectrum=None) -> GaussianMixture:
    r"""Equal-weight mixture of ``n_components`` Gaussians in :math:`R^d` with means ``separation * u_j``,
    :math:`u_j` i.i.d. uniform on the unit sphere, drawn from ``default_rng(SeedSequence([seed, d]))``.

    Covariances: isotropic ``variance * I`` (equal for all components) when ``spectrum`` is None; else
    ``spectrum = (variances, fractions)`` gives one shared covariance :math:`Q\,\mathrm{diag}(\lambda)Q^\top`
    (group g of the eigenvalues equal to ``variances[g]`` on a fraction ``fractions[g]`` of the
    coordinates) with a Haar rotation Q from the same generator (``variance`` is then unused).
    """
    d = v.positive_int("d", d)
    J = v.positive_int("n_components", n_components)
    sep = v.nonnegative("separation", separation)
    seed = v.positive_int("seed", seed, minimum=0)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), d]))
    U = rng.standard_normal((J, d))
    U /= np.linalg.norm(U, axis=1, keepdims=True)
    w = np.full(J, 1.0 / J)
    if spectrum is None:
        var = v.positive("variance", variance)
        return GaussianMixture(w, sep * U, np.full(J, var))
    variances, fractions = spectrum
    lam_g = v.positive_array("spectrum", variances, ndim=1)
    frac = v.positive_array("spectrum", fractions, ndim=1)
    if frac.shape != lam_g.shape or abs(frac.sum() - 1.0) > 1e-9:
        raise ValueError("spectrum must be (variances, fractions) of equal length with fractions summing to one")
    if d < lam_g.size:
        raise ValueError(f"d must be >= {lam_g.size} for this spectrum, got {d}")
    lam = np.repeat(lam_g, _group_counts(frac, d))
    Q = haar_rotation(d, rng)
    C = (Q * lam) @ Q.T
    C = 0.5 * (C + C.T)
    return GaussianMixture(w, sep * U, np.repeat(C[None], J, axis=0))


def isotropic_split(gm: GaussianMixture):
    """For an isotropic equal-variance mixture: ``(span_mixture, complement)`` where ``span_mixture`` is
    the same mixture written in an orthonormal basis of span(means) (dimension r = rank) and
    ``complement`` the Gaussian N(0, v I_{d-r}) as a GroupedGaussian (None when r = d)."""
    if not gm.isotropic or not np.all(gm.covariances == gm.covariances[0]):
        raise ValueError("gm must be an isotropic mixture with equal variances")
    M = gm.means
    Qm, Rm = np.linalg.qr(M.T)                         # M^T = Qm Rm, Qm (d, J)
    r = int(np.sum(np.abs(np.diag(Rm)) > 1e-12 * max(1.0, np.abs(Rm).max())))
    if r == 0:
        raise ValueError("gm must have at least one nonzero mean")
    coords = M @ Qm[:, :r]                             # (J, r): the means in the span basis
    span = GaussianMixture(gm.weights, coords, gm.covariances)
    d = gm.n_columns
    comp = None if r == d else GroupedGaussian([float(gm.covariances[0])], [0.0], [d - r])
    return span, comp


@dataclass(frozen=True)
class MixtureFamily:
    """``at(d)``: :func:`random_direction_mixture` with R = separation(d, r, schedule);
    ``twin(d)``: the product Gaussian with the same covariance and no mixture (R = 0, J = 1)."""

    name: str
    n_components: int
    r: float
    schedule: str = "d14"
    variance: float = 1.0
    spectrum: tuple | None = None              # ((variances...), (fractions...)) for the anisotropic variant
    seed: int = 0
    description: str = ""

    def separation(self, d: int) -> float:
        return separation(d, self.r, self.schedule)

    def at(self, d: int) -> GaussianMixture:
        return random_direction_mixture(d, self.n_components, self.separation(d), self.variance, self.seed,
                                        spectrum=self.spectrum)

    def twin(self, d: int) -> GroupedGaussian:
        if self.spectrum is None:
            return GroupedGaussian([self.variance], [0.0], [d])
        variances, fractions = self.spectrum
        return GaussianFamily(f"twin:{self.name}", tuple(variances), (0.0,) * len(variances),
                              tuple(fractions)).at(d)


FAMILIES = {
    f.name: f for f in (
        MixtureFamily("mix_iso", 4, 2.0, "d14", 1.0, None, 0,
                      "4 equal components N(R u_j, I), u_j random unit vectors, R = 2 d^(1/4)"),
        MixtureFamily("mix_aniso", 4, 1.0, "d14", 1.0, ((0.1, 2.0), (0.5, 0.5)), 0,
                      "4 equal components N(R u_j, Sigma), Sigma = Q diag(0.1 x d/2, 2.0 x d/2) Q^T, Q Haar, "
                      "R = d^(1/4)"),
    )
}


def product_target(name: str, d: int) -> GroupedGaussian:
    """The product comparison targets: ``twin:<family>`` or a main-study family name (``gauss_aniso``)."""
    if name.startswith("twin:"):
        return FAMILIES[name[len("twin:"):]].twin(d)
    return get_target(name).at(d)


def mode_labels(gm: GaussianMixture, x: np.ndarray, t: float) -> np.ndarray:
    """Index of the most responsible component of the marginal at OU time t, for each row of x."""
    w, means, cov = gm.component_params(t)
    x = np.asarray(x, float)
    ell = np.empty((x.shape[0], w.size))
    for j in range(w.size):
        diff = x - means[j]
        if cov.ndim == 1:
            ell[:, j] = np.log(w[j]) - 0.5 * np.sum(diff**2, axis=1) / cov[j] - 0.5 * x.shape[1] * np.log(cov[j])
        else:
            Lc = np.linalg.cholesky(cov[j])
            z = np.linalg.solve(Lc, diff.T)
            ell[:, j] = np.log(w[j]) - 0.5 * np.sum(z**2, axis=0) - np.sum(np.log(np.diag(Lc)))
    return np.argmax(ell, axis=1).astype(np.int64)


def mode_tv_noise95(n: int, n_ref: int, weights: np.ndarray, rng: np.random.Generator, reps: int = 2000) -> float:
    r"""95% quantile of :math:`TV(\hat w, w) + TV(\hat w_{ref}, w)` for multinomial weights of sizes n and
    n_ref. By the triangle inequality the plug-in mode-weight TV exceeds the population one by at most
    this much with probability about 0.95 (``weights``: the target weights, a stand-in for the label laws),
    so ``mode_tv - noise95`` is a 95% lower confidence bound on the mode-weight TV, hence on TV."""
    a = rng.multinomial(n, weights, size=reps) / n
    b = rng.multinomial(n_ref, weights, size=reps) / n_ref
    return float(np.quantile(0.5 * np.abs(a - weights).sum(axis=1) + 0.5 * np.abs(b - weights).sum(axis=1), 0.95))


# =================================================================================================
# estimators on an exact output log-density
# =================================================================================================

def kl_tv_estimates(res) -> dict:
    """KL (control variate), plain KL, TV and the normalisation check from a JacobianLogDensity."""
    plain = kl_tv_monte_carlo(res)
    ell = res.log_density - res.log_target
    n = ell.size
    with np.errstate(over="ignore", under="ignore"):
        w = np.exp(-ell)
        cv = ell + np.expm1(-ell)
    out = {"tv": plain.tv, "tv_se": plain.tv_se, "kl_plain": plain.kl, "kl_plain_se": plain.kl_se}
    m_w = float(w.mean()) if np.all(np.isfinite(w)) else float("inf")
    se_w = float(w.std(ddof=1) / np.sqrt(n)) if np.isfinite(m_w) else float("nan")
    # the control variate is valid only where the sample represents E_P[q/p] = 1: at large KL the weights
    # are so heavy-tailed that their sample mean is far from 1 (|z| > NORM_Z_CV) and the fitted coefficient
    # is meaningless (it can be 1e60); there the plain estimator is used
    usable = np.isfinite(m_w) and se_w > 0 and abs(m_w - 1.0) <= NORM_Z_CV * se_w
    if np.all(np.isfinite(cv)) and usable:
        # regression coefficient of ell on the control w - 1 (c = -1 is the estimator ell + e^{-ell} - 1,
        # near-optimal for small KL; c -> 0 when the weights are heavy-tailed, as at large KL)
        wc = w - w.mean()
        var_w = float(np.mean(wc * wc))
        c = float(np.mean(wc * (ell - ell.mean())) / var_w) if var_w > 0 else 0.0
        h = ell - c * (w - 1.0)
        out["kl"] = float(h.mean())
        out["kl_se"] = float(h.std(ddof=2) / np.sqrt(n))
        out["kl_cv_coef"] = c
    else:                               # control variate unusable here (see above): plain estimator
        out["kl"], out["kl_se"], out["kl_cv_coef"] = plain.kl, plain.kl_se, 0.0
    if np.all(np.isfinite(w)):
        m, se = float(w.mean()), float(w.std(ddof=1) / np.sqrt(n))
        out["norm"], out["norm_se"] = m, se
        out["norm_z"] = (m - 1.0) / se if se > 0 else (0.0 if m == 1.0 else float("inf"))
    else:
        out["norm"], out["norm_se"], out["norm_z"] = float("inf"), float("nan"), float("inf")
    return out


def error_of(row, metric: str) -> tuple[float, float]:
    """(error, se) of a cell for ``metric``: TV, or sqrt(KL) with the delta-method standard error."""
    if metric == "tv":
        return float(row["tv"]), float(row["tv_se"])
    kl, se = float(row["kl"]), float(row["kl_se"])
    root = float(np.sqrt(max(kl, 0.0)))
    # at KL <= 0 (an estimate below zero) the delta method fails: use the scale sqrt(se) of sqrt KL there
    return root, (se / (2.0 * root) if root > 0 else float(np.sqrt(se)))


def error_band(row, metric: str) -> tuple[float, float, float]:
    """(error, lo, hi): the 95% normal interval of TV, or of KL transformed by the square root."""
    if metric == "tv":
        e, se = float(row["tv"]), float(row["tv_se"])
        return e, e - Z95 * se, e + Z95 * se
    kl, se = float(row["kl"]), float(row["kl_se"])
    return (float(np.sqrt(max(kl, 0.0))), float(np.sqrt(max(kl - Z95 * se, 0.0))),
            float(np.sqrt(max(kl + Z95 * se, 0.0))))


# =================================================================================================
# profiles
# =================================================================================================

@dataclass(frozen=True)
class Profile:
    dims: tuple
    families: tuple
    det: tuple                 # (sampler, (lowest cost, highest cost))
    n_mc: int
    eps: dict                  # metric -> accuracy levels
    sto: tuple                 # (sampler, (lo, hi), multiple)
    sto_dims: tuple
    n_sample: int
    n_boot: int                # bootstrap replicates of the sample distances
    B: int                     # parametric bootstrap replicates of the fits
    products: tuple            # product comparison targets
    per_octave: int = 1


PROFILES = {
    "quick": Profile(
        dims=(4, 8, 16), families=("mix_iso",), det=(("ddim", (8, 128)), ("dpm_solver_2", (4, 32))),
        n_mc=300, eps={"tv": (0.2, 0.1), "sqrt_kl": (0.4, 0.2)},
        sto=(("ddpm", (8, 128), 1),), sto_dims=(4, 16), n_sample=300, n_boot=40, B=100,
        products=("twin:mix_iso",),
    ),
    "default": Profile(
        dims=(4, 8, 12, 16), families=("mix_iso", "mix_aniso"),
        det=(("ddim", (8, 256)), ("pf_ode_euler", (8, 256)), ("dpm_solver_2", (4, 64)), ("edm_heun", (4, 128))),
        n_mc=400, eps={"tv": (0.2, 0.1, 0.05), "sqrt_kl": (0.4, 0.2, 0.1)},
        sto=(("ddpm", (8, 1024), 1), ("li_jiao", (40, 640), 10)), sto_dims=(4, 16), n_sample=800, n_boot=100,
        B=200, products=("twin:mix_iso", "twin:mix_aniso", "gauss_aniso"),
    ),
    "full": Profile(
        dims=(4, 8, 16, 32, 48, 64), families=("mix_iso", "mix_aniso"),
        det=(("ddim", (8, 512)), ("pf_ode_euler", (8, 512)), ("dpm_solver_2", (4, 128)), ("edm_heun", (4, 256))),
        n_mc=2000, eps={"tv": (0.2, 0.1, 0.05, 0.02), "sqrt_kl": (0.4, 0.2, 0.1, 0.05)},
        sto=(("ddpm", (8, 4096), 1), ("li_jiao", (40, 2560), 10)), sto_dims=(4, 16, 64), n_sample=2000,
        n_boot=200, B=500, products=("twin:mix_iso", "twin:mix_aniso", "gauss_aniso"), per_octave=2,
    ),
}


# =================================================================================================
# cells (pure functions of a JSON-able item; seeds are part of the item)
# =================================================================================================

def _det_cell(item: dict) -> dict:
    fam = FAMILIES[item["family"]]
    gm = fam.at(item["d"])
    kernel = get_sampler(item["sampler"]).make(item["cost"])
    rng = np.random.default_rng(item["seed"])
    t0 = time.perf_counter()
    try:
        res = jacobian_log_density(kernel, gm, item["n"], rng)
    except NonFiniteStateError as exc:
        return {"nfe": float("nan"), "failed": str(exc)}
    out = kl_tv_estimates(res)
    lab = mode_labels(gm, res.y, res.t_end)
    ref = mode_labels(gm, gm.sample(N_REF_LABELS, res.t_end, rng), res.t_end)
    mt = mode_weight_tv(lab, n_components=gm.n_components, target_labels=ref, rng=rng, n_boot=200)
    out.update(nfe=float(np.mean(res.nfe)), mode_tv=mt.value, mode_tv_lo=mt.ci[0], mode_tv_hi=mt.ci[1],
               mode_tv_noise95=mode_tv_noise95(item["n"], N_REF_LABELS, gm.weights, rng),
               t_end=res.t_end, seconds=time.perf_counter() - t0, failed="")
    return out


def _product_cell(item: dict) -> dict:
    target = product_target(item["target"], item["d"])
    kernel = get_sampler(item["sampler"]).make(item["cost"])
    law = gaussian_law(kernel, target)
    kl = quenched_kl(law, direction="output_target").value
    tv = replicated_error(law, "tv_annealed")          # one law (deterministic sampler): exact, se 0
    return {"nfe": float(np.mean(law.nfe)), "kl": float(kl), "kl_se": 0.0, "tv": float(tv.value), "tv_se": 0.0,
            "tv_bound": float(tv.bound)}


def _split_cell(item: dict) -> dict:
    """mix_iso only: KL of the span part (Jacobian method in dimension J) + complement (exact law mode)."""
    gm = FAMILIES[item["family"]].at(item["d"])
    span, comp = isotropic_split(gm)
    kernel = get_sampler(item["sampler"]).make(item["cost"])
    est = kl_tv_estimates(jacobian_log_density(kernel, span, item["n"], np.random.default_rng(item["seed"])))
    kl_perp = 0.0 if comp is None else float(quenched_kl(gaussian_law(kernel, comp), direction="output_target").value)
    return {"kl_span": est["kl"], "kl_span_se": est["kl_se"], "kl_perp": kl_perp,
            "span_dim": span.n_columns, "perp_dim": 0 if comp is None else int(comp.dim)}


def _sto_cell(item: dict) -> dict:
    fam = FAMILIES[item["family"]]
    gm = fam.at(item["d"])
    spec = get_sampler(item["sampler"])
    kernel = spec.make(item["cost"])
    rng = np.random.default_rng(item["seed"])
    n = item["n"]
    try:
        res = run_sampler(kernel, gm, n, rng)
    except NonFiniteStateError as exc:
        return {"nfe": float("nan"), "failed": str(exc)}
    t_end = res.t_end
    y = gm.sample(n, t_end, rng)
    sw = sliced_w2(res.x, y, n_projections=50, rng=rng, n_boot=item["n_boot"])
    ed = energy_distance(res.x, y, rng=rng, n_boot=item["n_boot"])
    ref = mode_labels(gm, gm.sample(N_REF_LABELS, t_end, rng), t_end)
    mt = mode_weight_tv(mode_labels(gm, res.x, t_end), n_components=gm.n_components, target_labels=ref, rng=rng,
                        n_boot=200)
    return {"nfe": float(np.mean(res.nfe)), "t_end": t_end, **_interval("sw2", sw), **_interval("energy", ed),
            "mode_tv": mt.value,
            "mode_tv_lo": mt.ci[0], "mode_tv_hi": mt.ci[1],
            "mode_tv_noise95": mode_tv_noise95(n, N_REF_LABELS, gm.weights, rng), "failed": ""}


def _interval(name: str, est) -> dict:
    """Normal bootstrap interval value -/+ 1.96 x (bootstrap sd), and the percentile interval of
    :mod:`experiments.distances` (``*_pct_lo``/``*_pct_hi``). The empirical sliced W2 is biased upward and
    resampling with duplicates shifts its bootstrap law further up, so the percentile interval can
    exclude the estimate itself; the normal interval is centred on it (it still carries the bias, which
    the sampling floor below measures)."""
    return {name: est.value, f"{name}_lo": est.value - Z95 * est.stderr, f"{name}_hi": est.value + Z95 * est.stderr,
            f"{name}_pct_lo": est.ci[0], f"{name}_pct_hi": est.ci[1]}


def _floor_cell(item: dict) -> dict:
    """Sampling floor of the sample distances: two independent target samples of the same size."""
    gm = FAMILIES[item["family"]].at(item["d"])
    rng = np.random.default_rng(item["seed"])
    x, y = gm.sample(item["n"], item["t_end"], rng), gm.sample(item["n"], item["t_end"], rng)
    sw = sliced_w2(x, y, n_projections=50, rng=rng, n_boot=item["n_boot"])
    ed = energy_distance(x, y, rng=rng, n_boot=item["n_boot"])
    return {"sw2_floor": sw.value, "sw2_floor_hi": sw.value + Z95 * sw.stderr, "energy_floor": ed.value,
            "energy_floor_hi": ed.value + Z95 * ed.stderr}


def _geometry_cell(item: dict) -> dict:
    fam = FAMILIES[item["family"]]
    gm = fam.at(item["d"])
    m = gm.means
    dist = np.sqrt(np.sum((m[:, None] - m[None]) ** 2, axis=-1))
    off = dist[~np.eye(m.shape[0], dtype=bool)]
    return {"R": fam.separation(item["d"]), "min_dist": float(off.min()), "max_dist": float(off.max()),
            "L_delta": gm.lipschitz(item["delta"]), "L_sup": gm.lipschitz_sup(item["delta"], n_grid=200),
            "second_moment": gm.second_moment()}


CELLS = {"det": _det_cell, "product": _product_cell, "split": _split_cell, "sto": _sto_cell,
         "floor": _floor_cell, "geometry": _geometry_cell}


def _dispatch(item: dict) -> dict:
    return CELLS[item["kind"]](item)


def _key(item: dict) -> str:
    ident = dict(item, code=code_version(), study="mixtures")
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def _seed(ctx, *words) -> int:
    return int(ctx.rng("mixtures", *words).integers(2**62))


def run_cells(ctx, items: list) -> list:
    """Evaluate the items (cached by their parameters, seeds included), in the given order."""
    # the expensive cells first, so that a process pool stays busy
    return run_cached(ctx, items, _dispatch, _key, order=lambda it: -it.get("d", 0) ** 2 * it.get("cost", 1))


def _ladder(spec_cost, per_octave, multiple=1):
    return cost_ladder(spec_cost[0], spec_cost[1], per_octave, multiple)


def compute(ctx, kinds=None):
    """The cell tables of the profile, ``{kind: DataFrame}`` (kinds of :data:`CELLS`; ``kinds`` restricts the
    computation to some of them, the others are empty)."""
    prof = PROFILES[ctx.profile]
    det_items = [{"kind": "det", "family": f, "d": d, "sampler": s, "cost": c, "n": prof.n_mc,
                  "seed": _seed(ctx, "det", f, s, d, c, prof.n_mc)}
                 for f in prof.families for s, lad in prof.det for d in prof.dims
                 for c in _ladder(lad, prof.per_octave)]
    prod_items = [{"kind": "product", "target": t, "d": d, "sampler": s, "cost": c}
                  for t in prof.products for s, lad in prof.det for d in prof.dims
                  for c in _ladder(lad, prof.per_octave)]
    split_items = [{"kind": "split", "family": "mix_iso", "d": d, "sampler": s, "cost": c, "n": prof.n_mc,
                    "seed": _seed(ctx, "split", s, d, c, prof.n_mc)}
                   for s, lad in prof.det[:1] for d in prof.dims for c in _ladder(lad, prof.per_octave)
                   if "mix_iso" in prof.families]
    sto_items = [{"kind": "sto", "family": f, "d": d, "sampler": s, "cost": c, "n": prof.n_sample,
                  "n_boot": prof.n_boot, "seed": _seed(ctx, "sto", f, s, d, c, prof.n_sample)}
                 for f in prof.families for s, lad, mult in prof.sto for d in prof.sto_dims
                 for c in cost_ladder(lad[0], lad[1], 1, mult)]
    delta = float(get_sampler(prof.det[0][0]).make(8).end_time)
    floor_items = [{"kind": "floor", "family": f, "d": d, "n": prof.n_sample, "n_boot": prof.n_boot, "t_end": delta,
                    "seed": _seed(ctx, "floor", f, d, prof.n_sample)} for f in prof.families for d in prof.sto_dims]
    geo_items = [{"kind": "geometry", "family": f, "d": d, "delta": delta} for f in prof.families for d in prof.dims]
    items = det_items + prod_items + split_items + sto_items + floor_items + geo_items
    if kinds is not None:
        items = [it for it in items if it["kind"] in kinds]
    res = run_cells(ctx, items)
    rows = [{**it, **r} for it, r in zip(items, res, strict=True)]
    by = {k: pd.DataFrame([r for r in rows if r["kind"] == k]) for k in CELLS}
    for k, df in by.items():
        if len(df):
            by[k] = df.drop(columns=["kind"]).assign(seed_root=ctx.seed, profile=ctx.profile)
    return by


# =================================================================================================
# N* (the suite's table, with statuses), fits with their Monte Carlo uncertainty, comparisons
# =================================================================================================

#: metric names handed to :mod:`analysis.verdicts`: this study's "tv" is the TV of the output law
VERDICT_METRIC = {"tv": "tv_annealed", "sqrt_kl": "sqrt_kl"}
#: gate of a Monte Carlo cell in the error rows (not a replicate gate: the s.e. is the sample's)
GATE_MC = "monte carlo"
FIT_KEYS = ["source", "target", "sampler", "metric"]


def error_rows(cells: pd.DataFrame, ctx, *, target_col: str, source: str) -> pd.DataFrame:
    """The suite's tidy error rows (as :func:`experiments.cells.run_scan` writes them) of a table of cells,
    one row per (cell, metric): ``error`` and its Monte Carlo ``error_se`` (0 for exact law-mode cells)."""
    rows = []
    for _, r in cells.iterrows():
        for metric in METRICS:
            e, se = error_of(r, metric)
            rows.append({"study": NAME, "source": source, "sampler": r["sampler"], "variant": "default",
                         "target": r[target_col], "params": "{}", "metric": metric, "d": int(r["d"]),
                         "cost": int(r["cost"]), "nfe": float(r["nfe"]), "error": e, "error_se": se,
                         "error_bound": 0.0, "draws": 1, "gate": GATE_MC if se > 0 else "exact",
                         "seed": ctx.seed, "profile": ctx.profile})
    return pd.DataFrame(rows)


def nstar_rows(errors: pd.DataFrame, eps_levels: dict, dims) -> pd.DataFrame:
    """N* of every curve at the accuracies of its metric by :func:`experiments.complexity.nstar_table`
    (crossing, delta-method ``nstar_log_se`` from the cells' Monte Carlo errors, ``status``: only ``ok``
    rows enter fits; a curve that crosses eps twice beyond its noise is ``ambiguous``), with the 95%
    delta-method interval ``nstar_lo``/``nstar_hi``."""
    out = []
    for metric in METRICS:
        part = errors[errors["metric"] == metric]
        if part.empty:
            continue
        served = {key: {(int(d), float(e)) for d in dims for e in eps_levels[metric]}
                  for key in part.groupby(["sampler", "variant", "target", "params"]).groups}
        out.append(nstar_table(part, None, served=served)[0])
    nst = pd.concat(out, ignore_index=True)
    source = errors.drop_duplicates("target").set_index("target")["source"]
    nst.insert(1, "source", nst["target"].map(source))
    half = Z95 * nst["nstar_log_se"].astype(float)
    nst["nstar_lo"] = nst["nstar"] * np.exp(-half)
    nst["nstar_hi"] = nst["nstar"] * np.exp(half)
    return nst


def bootstrap_nstar(det: pd.DataFrame, nst: pd.DataFrame, B: int, ctx) -> pd.DataFrame:
    """Parametric bootstrap of the Monte Carlo errors of the mixture cells: every cell's estimate redrawn
    from N(estimate, se^2) independently (each cell has its own Monte Carlo sample; KL is redrawn before the
    square root), and N* recomputed at every ``ok`` (d, eps) of ``nst``. Returns one row per (curve family,
    d, eps, replicate) with ``nstar`` (NaN where the redrawn curve does not cross eps inside the ladder)."""
    rows = []
    ok = nst[(nst["source"] == "mixture") & (nst["status"] == "ok")]
    for (t, s, metric), pts in ok.groupby(["target", "sampler", "metric"], sort=True):
        cells = det[(det["family"] == t) & (det["sampler"] == s)]
        rng = ctx.rng(NAME, "bootstrap", t, s, metric, B)
        curves = {}
        for d, part in cells.groupby("d"):
            part = part.sort_values("nfe")
            m, se = (part["tv"], part["tv_se"]) if metric == "tv" else (part["kl"], part["kl_se"])
            curves[int(d)] = (part["nfe"].to_numpy(float), m.to_numpy(float), se.to_numpy(float))
        by_d = {int(d): sorted(g["eps"].astype(float)) for d, g in pts.groupby("d")}
        for b in range(B):
            for d, eps_list in by_d.items():
                nfe, m, se = curves[d]
                draw = m + se * rng.standard_normal(m.shape)
                e = np.sqrt(np.maximum(draw, 0.0)) if metric == "sqrt_kl" else draw
                e = np.maximum(e, 1e-300)
                for eps in eps_list:
                    res = nstar_detail(nfe, e, eps)
                    rows.append({"target": t, "sampler": s, "metric": metric, "d": d, "eps": eps, "replicate": b,
                                 "nstar": res.value if res.crossing == "interpolated" else np.nan})
    return pd.DataFrame(rows, columns=["target", "sampler", "metric", "d", "eps", "replicate", "nstar"])


def _local_slopes(d, eps, logn) -> dict:
    """Successive log-log slopes: ``{("a", eps, d0, d1): slope}`` along d at fixed eps and
    ``{("b", d, eps0, eps1): slope}`` along 1/eps at fixed d."""
    d, eps, logn = (np.asarray(x, float) for x in (d, eps, logn))
    out = {}
    for k, fixed, x in (("a", eps, np.log(d)), ("b", d, np.log(1.0 / eps))):
        for f in np.unique(fixed):
            sel = fixed == f
            order = np.argsort(x[sel])
            xs, ys = x[sel][order], logn[sel][order]
            for j in range(len(xs) - 1):
                if xs[j + 1] > xs[j]:
                    slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
                    out[(k, float(f), float(xs[j]), float(xs[j + 1]))] = float(slope)
    return out


def fit_points(d, eps, logn) -> dict:
    """Joint least squares log N* = c + a log d + b log(1/eps) and the ranges of local slopes along d (fixed
    eps) and along 1/eps (fixed d)."""
    from analysis.exponents import ols

    d, eps, logn = (np.asarray(x, float) for x in (d, eps, logn))
    enough = len(np.unique(d)) >= 2 and len(np.unique(eps)) >= 2 and len(d) >= 4
    if enough:
        X = np.column_stack([np.ones_like(d), np.log(d), np.log(1.0 / eps)])
        _, a, b = ols(logn, X)
    else:
        a = b = np.nan
    row = {"a": a, "b": b}
    local = _local_slopes(d, eps, logn)
    for k in ("a", "b"):
        vals = [v for key, v in local.items() if key[0] == k]
        row[f"{k}_local_min"] = min(vals) if vals else np.nan
        row[f"{k}_local_max"] = max(vals) if vals else np.nan
    return row


def _quantile(x, q):
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(np.quantile(x, q)) if x.size else np.nan


def _replicate_logn(rep: pd.DataFrame, d, eps) -> list[np.ndarray]:
    """log N* of every bootstrap replicate at the points (d, eps) (NaN where a replicate has none)."""
    pos = {(int(a), float(b)): i for i, (a, b) in enumerate(zip(d, eps, strict=True))}
    out = []
    for _, g in rep.groupby("replicate"):
        y = np.full(len(d), np.nan)
        for dd, ee, n in zip(g["d"], g["eps"], g["nstar"], strict=True):
            i = pos.get((int(dd), float(ee)))
            if i is not None:
                y[i] = np.log(n)
        out.append(y)
    return out


def fit_table(nst: pd.DataFrame, boot: pd.DataFrame | None, B: int) -> pd.DataFrame:
    """Exponents of every (source, target, sampler, metric) from its ``ok`` N* rows.

    Every sampler here is deterministic, so misfit is not sampling error: the point estimates are the joint
    least-squares exponents, and the uncertainty is the range of local slopes. For the mixtures the N* carry
    Monte Carlo error, so every local slope gets its bootstrap 95% interval and the range is the one these
    intervals cover (``a_lo`` = the smallest lower end, ``a_hi`` = the largest upper end, never narrower than
    the point estimates' range; ``interval = "local-slope range + MC 95%"``); the bootstrap 95% interval of
    the joint a alone (Monte Carlo error only) is ``a_mc_lo``/``a_mc_hi``. The product twins are exact:
    ``interval = "local-slope range"``. ``structure_spread``: the largest gap between log N* values at one
    value of d/eps^2 (0 when N* depends on d/eps^2 only, as on products)."""
    from analysis.exponents import structure_fit

    reps = {} if boot is None or boot.empty else {k: g for k, g in boot.groupby(["target", "sampler", "metric"])}
    rows = []
    for key, part in nst.groupby(FIT_KEYS, sort=True):
        ident = dict(zip(FIT_KEYS, key, strict=True))
        ok = part[part["status"] == "ok"].sort_values(["d", "eps"])
        d, eps = ok["d"].to_numpy(float), ok["eps"].to_numpy(float)
        logn = np.log(ok["nstar"].to_numpy(float))
        bad = part[part["status"] != "ok"]["status"].value_counts().sort_index()
        row = {**ident, "n": len(ok), "excluded": ", ".join(f"{n} {s}" for s, n in bad.items()),
               "d_min": d.min() if len(d) else np.nan, "d_max": d.max() if len(d) else np.nan,
               "eps_min": eps.min() if len(d) else np.nan, "eps_max": eps.max() if len(d) else np.nan,
               **fit_points(d, eps, logn), "reason": ""}
        row["structure_spread"] = structure_fit(d, eps, logn, 2.0)[3] if len(d) >= 3 else np.nan
        if ident["source"] == "product":
            row.update(interval="local-slope range", a_lo=row["a_local_min"], a_hi=row["a_local_max"],
                       b_lo=row["b_local_min"], b_hi=row["b_local_max"], boot_ok=0)
        else:
            rep = reps.get((ident["target"], ident["sampler"], ident["metric"]))
            ys = _replicate_logn(rep, d, eps) if rep is not None and len(ok) else []
            row["boot_ok"] = sum(bool(np.all(np.isfinite(y))) for y in ys)
            row["interval"] = "local-slope range + MC 95%"
            if len(ys) >= max(20, B // 2):
                joint = [fit_points(d[np.isfinite(y)], eps[np.isfinite(y)], y[np.isfinite(y)]) for y in ys]
                local = pd.DataFrame([_local_slopes(d[np.isfinite(y)], eps[np.isfinite(y)], y[np.isfinite(y)])
                                      for y in ys])
                for k in ("a", "b"):
                    row[f"{k}_mc_lo"] = _quantile([j[k] for j in joint], 0.025)
                    row[f"{k}_mc_hi"] = _quantile([j[k] for j in joint], 0.975)
                    cols = [c for c in local.columns if c[0] == k]
                    lows = [_quantile(local[c], 0.025) for c in cols]
                    highs = [_quantile(local[c], 0.975) for c in cols]
                    row[f"{k}_lo"] = float(np.nanmin(lows + [row[f"{k}_local_min"]])) if cols else np.nan
                    row[f"{k}_hi"] = float(np.nanmax(highs + [row[f"{k}_local_max"]])) if cols else np.nan
            else:
                for k in ("a", "b"):
                    row[f"{k}_mc_lo"] = row[f"{k}_mc_hi"] = row[f"{k}_lo"] = row[f"{k}_hi"] = np.nan
                row["reason"] = "no bootstrap replicates (no ok N*)"
        if not np.isfinite(row["a"]):
            row["reason"] = "; ".join(x for x in (row["reason"], "too few ok N* for a joint fit (need 2 d, 2 eps, "
                                                                  "4 points)") if x)
        rows.append(row)
    return pd.DataFrame(rows)


def claim_verdicts(fits: pd.DataFrame, nst: pd.DataFrame, per_octave: int) -> pd.DataFrame:
    """The suite's verdict rule (:func:`analysis.verdicts.verdicts`: margins, allowance for the claims' declared
    logs, metric matching) on the mixtures' exponent intervals (local-slope range + MC 95%).

    This study's KL is KL(output || target); the registry's KL claims bound KL(target || output), so a KL claim
    is not tested by it (``not comparable``). A TV claim is tested through Pinsker, which holds in both
    directions: sqrt KL is an upper proxy of TV, only ``loose`` transfers."""
    from analysis.verdicts import verdicts

    ex = fits[fits["source"] == "mixture"].copy()
    if ex.empty:
        return pd.DataFrame()
    ex = ex.assign(study=NAME, variant="default", randomized=False, metric=ex["metric"].map(VERDICT_METRIC))
    ns = nst[nst["source"] == "mixture"].assign(metric=lambda x: x["metric"].map(VERDICT_METRIC))
    v = verdicts(ex, ns, half_step=math.log(2) / (2 * per_octave), is_product_target=lambda name: False)
    direction = (v["claim_metric"] == "kl") & (v["metric"] == "sqrt_kl")
    v.loc[direction, ["outcome_d", "outcome_eps", "verdict_d", "verdict_eps"]] = "not comparable"
    v.loc[direction, "metric_match"] = "none (KL direction)"
    v["metric"] = v["metric"].map({m: k for k, m in VERDICT_METRIC.items()})
    return v


def compare(nst: pd.DataFrame, boot: pd.DataFrame | None, families, products, per_octave: int) -> pd.DataFrame:
    """Does the geometry change the d-exponent? a_mix - a_product per (family, product target, sampler, metric),
    both fitted jointly on the (d, eps) where *both* N* are ok (same window, same model). The product side is
    exact; the mixture side carries Monte Carlo error: ``diff_lo``/``diff_hi`` is the bootstrap 95% interval
    (Monte Carlo only). ``dlocal_min``/``dlocal_max``: range of the differences of local slopes along d (the
    misfit, reported beside it). ``geometry_changes_a``: ``yes`` when the Monte Carlo interval lies beyond the
    margin (that of the verdict rule: 1/24, or the ladder resolution of the window if larger), ``no`` when it
    lies within it, ``inconclusive`` otherwise; ``mc_excludes_0``: whether the Monte Carlo interval excludes 0
    (a difference resolved by the Monte Carlo, possibly smaller than the margin)."""
    from analysis.verdicts import MARGIN, ladder_resolution

    half_step = math.log(2) / (2 * per_octave)
    ok = nst[nst["status"] == "ok"]
    reps = {} if boot is None or boot.empty else {k: g for k, g in boot.groupby(["target", "sampler", "metric"])}
    rows = []
    for (f, s, m), mix in ok[ok["source"] == "mixture"].groupby(["target", "sampler", "metric"], sort=True):
        if f not in families:
            continue
        for p in products:
            if p.startswith("twin:") and p != f"twin:{f}":
                continue                                # each family against its own twin (and main-study targets)
            prod = ok[(ok["target"] == p) & (ok["sampler"] == s) & (ok["metric"] == m)]
            both = mix.merge(prod, on=["d", "eps"], suffixes=("_mix", "_prod")).sort_values(["d", "eps"])
            row = {"family": f, "product": p, "sampler": s, "metric": m, "n_common": len(both)}
            d, eps = both["d"].to_numpy(float), both["eps"].to_numpy(float)
            y_mix, y_prod = np.log(both["nstar_mix"].to_numpy(float)), np.log(both["nstar_prod"].to_numpy(float))
            fm, fp = fit_points(d, eps, y_mix), fit_points(d, eps, y_prod)
            diff = fm["a"] - fp["a"]
            lm, lp = _local_slopes(d, eps, y_mix), _local_slopes(d, eps, y_prod)
            dl = [lm[k] - lp[k] for k in lm if k[0] == "a"]
            margin = max(float(MARGIN["a"]), ladder_resolution(half_step, d.min(), d.max())) if len(d) else np.nan
            row.update(a_mix=fm["a"], a_prod=fp["a"], diff=diff, dlocal_min=min(dl) if dl else np.nan,
                       dlocal_max=max(dl) if dl else np.nan, margin=margin, diff_lo=np.nan, diff_hi=np.nan,
                       mc_excludes_0=None, reason="")
            rep = reps.get((f, s, m))
            if not np.isfinite(diff):
                row.update(geometry_changes_a="undetermined",
                           reason=f"{len(both)} common ok (d, eps): too few for a joint fit on both")
            elif rep is None:
                row.update(geometry_changes_a="undetermined", reason="no bootstrap replicates")
            else:
                diffs = [fit_points(d, eps, y)["a"] - fp["a"] for y in _replicate_logn(rep, d, eps)
                         if np.all(np.isfinite(y))]
                lo, hi = _quantile(diffs, 0.025), _quantile(diffs, 0.975)
                row.update(diff_lo=lo, diff_hi=hi, boot_ok=len(diffs), mc_excludes_0=bool(lo > 0 or hi < 0))
                if lo > margin or hi < -margin:
                    row["geometry_changes_a"] = "yes"
                elif -margin <= lo and hi <= margin:
                    row["geometry_changes_a"] = "no"
                else:
                    row["geometry_changes_a"] = "inconclusive"
            rows.append(row)
    return pd.DataFrame(rows)


def split_table(det: pd.DataFrame, split: pd.DataFrame) -> pd.DataFrame:
    """Full d-dimensional KL vs span part + complement, with the z-score of the difference (Monte Carlo
    standard errors of the two independent Jacobian estimates; the complement is exact)."""
    if split is None or split.empty:
        return pd.DataFrame()
    full = det[det["family"] == "mix_iso"][["d", "sampler", "cost", "nfe", "kl", "kl_se"]]
    df = split.merge(full, on=["d", "sampler", "cost"], how="inner")
    df["kl_sum"] = df["kl_span"] + df["kl_perp"]
    df["z"] = (df["kl"] - df["kl_sum"]) / np.hypot(df["kl_se"], df["kl_span_se"])
    df["perp_share"] = df["kl_perp"] / df["kl_sum"]
    return df[["d", "sampler", "cost", "nfe", "span_dim", "perp_dim", "kl", "kl_se", "kl_span", "kl_span_se",
               "kl_perp", "kl_sum", "z", "perp_share"]].sort_values(["sampler", "d", "cost"])


def stochastic_summary(sto: pd.DataFrame, floor: pd.DataFrame, eps_levels, B: int, ctx) -> pd.DataFrame:
    """Per (family, sampler, d): slope of log sliced W2 vs log NFE over the cells clearly above the sampling
    floor (least squares) with its Monte Carlo 95% interval (parametric bootstrap over the cells' bootstrap
    standard errors; the cells have independent samples) and the range of local slopes beside it (the
    misfit); the cost where sliced W2 reaches the floor; and certified lower bounds on N*(eps) from the
    mode-weight TV (largest NFE whose 95% lower confidence bound mode_tv - noise95 exceeds eps)."""
    if sto is None or sto.empty:
        return pd.DataFrame()
    rows = []
    for (f, s, d), part in sto.groupby(["family", "sampler", "d"], sort=True):
        part = part.sort_values("nfe")
        fl = floor[(floor["family"] == f) & (floor["d"] == d)].iloc[0]
        above = (part["sw2_lo"] > fl["sw2_floor_hi"]).to_numpy()
        x = np.log(part.loc[above, "nfe"].to_numpy(float))
        v = part.loc[above, "sw2"].to_numpy(float)
        se = (part.loc[above, "sw2_hi"].to_numpy(float) - v) / Z95
        reach = part.loc[~above, "nfe"]
        row = {"family": f, "sampler": s, "d": int(d), "sw2_floor": fl["sw2_floor"], "n_above_floor": int(above.sum()),
               "slope": np.nan, "slope_lo": np.nan, "slope_hi": np.nan, "slope_local_min": np.nan,
               "slope_local_max": np.nan, "nfe_at_floor": float(reach.min()) if len(reach) else np.nan, "reason": ""}
        if len(x) >= 2:
            y = np.log(v)
            row["slope"] = float(np.polyfit(x, y, 1)[0])
            local = np.diff(y) / np.diff(x)
            row["slope_local_min"], row["slope_local_max"] = float(local.min()), float(local.max())
            rng = ctx.rng(NAME, "sw2 slope", f, s, d, B)
            draws = np.maximum(v + se * rng.standard_normal((B, len(v))), 1e-12 * v)
            slopes = [np.polyfit(x, np.log(w), 1)[0] for w in draws]
            row["slope_lo"], row["slope_hi"] = _quantile(slopes, 0.025), _quantile(slopes, 0.975)
        else:
            row["reason"] = f"{len(x)} cell(s) above the sampling floor: no slope"
        for eps in eps_levels:
            cert = part[part["mode_tv"] - part["mode_tv_noise95"] > eps]
            row[f"nstar_lower@{eps:g}"] = float(cert["nfe"].max()) if len(cert) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


# =================================================================================================
# figures and tables
# =================================================================================================

def _curves(errors: pd.DataFrame, target_col: str):
    """(target, sampler, d, cell table) per curve, sorted by nfe."""
    for (t, s, d), part in errors.groupby([target_col, "sampler", "d"], sort=True):
        yield t, s, int(d), part.sort_values("nfe")


def _metric_arrays(part: pd.DataFrame, metric: str):
    """errors and their 95% interval ends, each (n,)"""
    vals = np.array([error_band(r, metric) for _, r in part.iterrows()], float).reshape(-1, 3)
    return vals[:, 0], vals[:, 1], vals[:, 2]


def figure_errors(det: pd.DataFrame, prod: pd.DataFrame, metric: str, eps_levels, families, path) -> None:
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    from analysis.figures import _colors, _save

    samplers = list(dict.fromkeys(det["sampler"]))
    fig = Figure(figsize=(4.2 * len(samplers), 3.6 * len(families)), layout="constrained")
    axes = fig.subplots(len(families), len(samplers), squeeze=False)
    dims = sorted(det["d"].unique())
    colors = dict(zip(dims, _colors(len(dims)), strict=True))
    label = "TV(output, target)" if metric == "tv" else "sqrt KL(output || target)"
    for row, f in zip(axes, families, strict=True):
        twin = f"twin:{f}"
        for ax, s in zip(row, samplers, strict=True):
            for d in dims:
                part = det[(det["family"] == f) & (det["sampler"] == s) & (det["d"] == d)].sort_values("nfe")
                if part.empty:
                    continue
                e, e_lo, e_hi = _metric_arrays(part, metric)
                good = e > 0
                lo = np.maximum(e_lo, e * 1e-3)
                ax.errorbar(part["nfe"][good], e[good], yerr=[(e - lo)[good], (e_hi - e)[good]], fmt="o-", ms=3.5,
                            lw=1.2, capsize=2, color=colors[d], label=f"d = {d}")
                if prod is not None and len(prod):
                    q = prod[(prod["target"] == twin) & (prod["sampler"] == s) & (prod["d"] == d)].sort_values("nfe")
                    if len(q):
                        eq, _, _ = _metric_arrays(q, metric)
                        good = eq > 0
                        ax.plot(q["nfe"][good], eq[good], ":", color=colors[d], lw=1.2)
            for eps in eps_levels:
                ax.axhline(eps, color="0.6", lw=0.8, ls="--")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("NFE (score evaluations)")
            ax.set_ylabel(label)
            ax.set_title(f"{f}, {s}", fontsize="medium")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize="x-small", loc="lower left",
                      title="solid: mixture, Monte Carlo 95%\ndotted: product twin (exact)", title_fontsize="xx-small")
    _save(fig, path.with_suffix(""))


def figure_nstar(nst: pd.DataFrame, families, path) -> None:
    from matplotlib.figure import Figure

    from analysis.figures import _colors, _plain_log_labels, _save

    samplers = list(dict.fromkeys(nst.loc[nst["source"] == "mixture", "sampler"]))
    fig = Figure(figsize=(4.3 * len(samplers), 3.8 * len(METRICS)), layout="constrained")
    axes = fig.subplots(len(METRICS), len(samplers), squeeze=False)
    markers = {"mix_iso": "o", "mix_aniso": "s"}
    for row, metric in zip(axes, METRICS, strict=True):
        eps_levels = sorted(nst.loc[nst["metric"] == metric, "eps"].unique(), reverse=True)
        colors = dict(zip(eps_levels, _colors(len(eps_levels)), strict=True))
        for ax, s in zip(row, samplers, strict=True):
            for f in families:
                for eps in eps_levels:
                    sel = ((nst["sampler"] == s) & (nst["metric"] == metric) & (nst["eps"] == eps)
                           & (nst["status"] == "ok"))
                    part = nst[sel & (nst["target"] == f)].sort_values("d")
                    if part.empty:
                        continue
                    y = part["nstar"].to_numpy(float)
                    lo, hi = part["nstar_lo"].to_numpy(float), part["nstar_hi"].to_numpy(float)
                    ax.errorbar(part["d"], y, yerr=[np.maximum(y - lo, 0), np.maximum(hi - y, 0)],
                                fmt=markers.get(f, "o") + ("-" if f == "mix_iso" else "-."), ms=4, lw=1.2, capsize=2,
                                color=colors[eps], label=f"{f}, ε={eps:g}")
                    tw = nst[sel & (nst["target"] == f"twin:{f}")].sort_values("d")
                    if len(tw):
                        ax.plot(tw["d"], tw["nstar"], markers.get(f, "o") + ":", mfc="none", ms=4, lw=1.0,
                                color=colors[eps])
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("d")
            ax.set_ylabel(f"N* (NFE), metric {metric}")
            _plain_log_labels(ax.xaxis)
            _plain_log_labels(ax.yaxis)
            ax.set_title(f"{s}  (dotted, hollow: product twin)", fontsize="medium")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize="xx-small", loc="upper left", title="ok N*, delta-method 95%", title_fontsize="xx-small")
    _save(fig, path.with_suffix(""))


def figure_stochastic(sto: pd.DataFrame, floor: pd.DataFrame, path) -> None:
    from matplotlib.figure import Figure

    from analysis.figures import _colors, _save

    keys = list(dict.fromkeys(zip(sto["family"], sto["sampler"], strict=True)))
    cols = (("sw2", "sliced W2"), ("energy", "energy distance"), ("mode_tv", "mode-weight TV (<= TV)"))
    fig = Figure(figsize=(13, 3.6 * len(keys)), layout="constrained")
    axes = fig.subplots(len(keys), 3, squeeze=False)
    dims = sorted(sto["d"].unique())
    colors = dict(zip(dims, _colors(len(dims)), strict=True))
    for row, (f, s) in zip(axes, keys, strict=True):
        for ax, (c, lab) in zip(row, cols, strict=True):
            for d in dims:
                part = sto[(sto["family"] == f) & (sto["sampler"] == s) & (sto["d"] == d)].sort_values("nfe")
                if part.empty:
                    continue
                ax.plot(part["nfe"], part[c], "o-", ms=3, lw=1.2, color=colors[d], label=f"d = {d}")
                ax.fill_between(part["nfe"], part[f"{c}_lo"], part[f"{c}_hi"], color=colors[d], alpha=0.2)
                fl = floor[(floor["family"] == f) & (floor["d"] == d)]
                if c in ("sw2", "energy") and len(fl):
                    ax.axhline(float(fl[f"{c}_floor_hi"].iloc[0]), color=colors[d], ls=":", lw=1.0)
                if c == "mode_tv":
                    ax.plot(part["nfe"], part["mode_tv_noise95"], ":", color=colors[d], lw=1.0)
            ax.set_xscale("log")
            if c != "energy":
                ax.set_yscale("log")
            ax.set_xlabel("NFE")
            ax.set_ylabel(lab)
            floor_text = "dotted: sampling floor" if c != "mode_tv" else "dotted: sampling noise (95%)"
            ax.set_title(f"{f}, {s}\nbootstrap 95% band; {floor_text}", fontsize="small")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize="x-small")
    _save(fig, path.with_suffix(""))


def _fmt_range(lo, hi, digits=2) -> str:
    from analysis.tables import fmt_float

    return f"[{fmt_float(lo, digits)}, {fmt_float(hi, digits)}]"


def markdown(ctx, prof, fits, ver, cmp, split, stoch, geo, det) -> str:
    from analysis.tables import RULE_NOTE, render_table

    parts = ["<!-- generated by experiments.extra_studies.mixtures from the tables; do not edit by hand -->",
             f"#### Mixtures: d through geometry (random-direction Gaussian mixtures; profile {ctx.profile}, "
             f"seed {ctx.seed})",
             "Deterministic samplers, exact output log-density by the Jacobian method, TV and KL by Monte Carlo over "
             f"{prof.n_mc} output points per cell (standard errors). KL is KL(output || target); `sqrt_kl` = its "
             "square root. N* by the suite's table (statuses; only `ok` rows are fitted). No sampler here has "
             "sampling error in its law, so no interval below is a confidence interval of a misfit: exponent "
             "intervals are the range of local slopes, widened by the Monte Carlo error of the N* (parametric "
             f"bootstrap, {prof.B} replicates, 95%); the product twins are exact (local-slope range only).",
             "Geometry of the family (R = separation, L from GaussianMixture.lipschitz at the end level)",
             render_table(geo, ["family", "d", "R", "min_dist", "max_dist", "L_delta", "L_sup", "second_moment"])]
    if len(ver):
        v = ver.sort_values(["target", "sampler", "metric"]).copy()
        v["mc_a"] = [_fmt_range(lo, hi) for lo, hi in zip(v["a_mc_lo"], v["a_mc_hi"], strict=True)]
        v["mc_b"] = [_fmt_range(lo, hi) for lo, hi in zip(v["b_mc_lo"], v["b_mc_hi"], strict=True)]
        parts += ["Verdicts against the registry claims (mixtures; log N* = c + a log d + b log 1/ε)", RULE_NOTE,
                  render_table(v, ["target", "sampler", "metric", "a [ci]", "mc_a", "a_claim", "allowance_a",
                                   "margin_a", "verdict_d", "b [ci]", "mc_b", "b_claim", "verdict_eps", "metric_match",
                                   "n", "excluded", "reason"],
                               headers={"a [ci]": "a [local slopes + MC]", "mc_a": "a: MC 95% only",
                                        "b [ci]": "b [local slopes + MC]", "mc_b": "b: MC 95% only",
                                        "allowance_a": "log allowance", "margin_a": "margin"})]
    prod = fits[fits["source"] == "product"]
    if len(prod):
        parts += ["Exponents of the product comparison targets (exact law mode; interval: local-slope range; "
                  "structure spread: largest gap in log N* at one value of d/ε², 0 when N* depends on d/ε² only)",
                  render_table(prod, ["target", "sampler", "metric", "a [ci]", "b [ci]", "structure_spread", "n",
                                      "excluded", "reason"],
                               headers={"a [ci]": "a [local slopes]", "b [ci]": "b [local slopes]"})]
    if len(cmp):
        c = cmp.copy()
        c["dlocal"] = [_fmt_range(lo, hi) for lo, hi in zip(c["dlocal_min"], c["dlocal_max"], strict=True)]
        parts += ["Does geometry change the d exponent? a_mix − a_product on the common ok (d, ε) (interval: Monte "
                  "Carlo 95%; local-slope differences beside it; `yes` when the interval lies beyond the margin)",
                  render_table(c, ["family", "product", "sampler", "metric", "n_common", "a_mix", "a_prod", "diff [ci]",
                                   "mc_excludes_0", "dlocal", "margin", "geometry_changes_a", "reason"],
                               headers={"diff [ci]": "diff [MC 95%]", "mc_excludes_0": "MC excludes 0",
                                        "dlocal": "local-slope diffs"})]
    if split is not None and len(split):
        parts += ["mix_iso is a product in rotated coordinates: KL(full) vs KL(span) + KL(complement); "
                  "z = (full − sum) / combined Monte Carlo s.e. (should be O(1)); perp_share = complement / sum",
                  render_table(split, ["sampler", "d", "cost", "kl", "kl_span", "kl_perp", "z", "perp_share"],
                               digits=4)]
    small = det[det["kl"] <= 0.2]
    chk = det.groupby(["family", "sampler"]).agg(cells=("nfe", "size")).reset_index()
    zmax = small.groupby(["family", "sampler"])["norm_z"].agg(lambda z: float(np.max(np.abs(z))))
    chk["max_abs_norm_z"] = [zmax.get((f, s), np.nan) for f, s in zip(chk["family"], chk["sampler"], strict=True)]
    above = det.assign(x=det["mode_tv"] - det["mode_tv_noise95"] > det["tv"] + Z95 * det["tv_se"])
    chk["mode_above_tv"] = above.groupby(["family", "sampler"])["x"].sum().to_numpy()
    parts += ["Machinery checks on every deterministic cell. `max_abs_norm_z`: largest |z| of E_P[q/p] = 1 "
              "(normalisation of the exact density) over the cells with KL <= 0.2 (at larger KL the weights q/p are "
              "heavy-tailed and a z-score means little); `mode_above_tv`: cells where the certified mode-weight lower "
              "bound (mode_tv - noise95, 95% one-sided) exceeds the exact TV + 1.96 se (each cell has a false-alarm "
              "probability <= 0.075: should be 0 or rare)",
              render_table(chk, ["family", "sampler", "cells", "max_abs_norm_z", "mode_above_tv"])]
    if stoch is not None and len(stoch):
        cols = ["family", "sampler", "d", "sw2_floor", "n_above_floor", "slope [ci]", "slope_local", "nfe_at_floor"]
        st = stoch.copy()
        st["slope_local"] = [_fmt_range(lo, hi) for lo, hi in zip(st["slope_local_min"], st["slope_local_max"],
                                                                    strict=True)]
        cols += [c for c in st.columns if c.startswith("nstar_lower@")]
        parts += ["Stochastic samplers (sample mode, i.i.d. output points; different metrics, no TV/KL verdicts). "
                  "slope: log sliced W2 against log NFE over the cells above the sampling floor, with its Monte Carlo "
                  "95% interval (parametric bootstrap over the cells' bootstrap s.e.) and the local slopes beside it; "
                  "nstar_lower@ε: largest NFE at which the mode-weight TV lower bound still certifies TV > ε "
                  "(a lower bound on N*; n/a: never certified)",
                  render_table(st, cols + ["reason"], headers={"slope [ci]": "slope [MC 95%]",
                                                               "slope_local": "local slopes"})]
    return "\n\n".join(parts) + "\n"


def run(ctx) -> dict:
    if ctx.profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {ctx.profile!r}")
    return analyse(ctx, compute(ctx))


def exponent_tables(ctx, det_ok: pd.DataFrame, prod: pd.DataFrame) -> dict:
    """Error rows, N*, bootstrap, fits, verdicts, comparisons and local slopes from the deterministic cells
    (``det_ok``: the mixture cells that ran; ``prod``: the product twins' cells, possibly empty)."""
    from analysis.fits import local_slopes

    prof = PROFILES[ctx.profile]
    errors = error_rows(det_ok, ctx, target_col="family", source="mixture")
    if len(prod):
        errors = pd.concat([errors, error_rows(prod, ctx, target_col="target", source="product")], ignore_index=True)
    nst = nstar_rows(errors, prof.eps, prof.dims)
    boot = bootstrap_nstar(det_ok, nst, prof.B, ctx)
    fits = fit_table(nst, boot, prof.B)
    return {"errors": errors, "nstar": nst, "bootstrap": boot, "fits": fits,
            "verdicts": claim_verdicts(fits, nst, prof.per_octave),
            "compare": compare(nst, boot, prof.families, prof.products, prof.per_octave),
            "local_slopes": local_slopes(nst[nst["status"] == "ok"], by=FIT_KEYS)}


def analyse(ctx, by: dict) -> dict:
    """Tables, figures and tables.md from the cell tables ``by`` (keys of :data:`CELLS`); also usable on
    the written raw CSVs (``mixtures_cells``, ``mixtures_twins``, ``mixtures_split_cells``,
    ``mixtures_stochastic``, ``mixtures_floor``, ``mixtures_geometry``) without recomputing cells."""
    prof = PROFILES[ctx.profile]
    det, prod, split, sto, floor, geo = (by[k] for k in ("det", "product", "split", "sto", "floor", "geometry"))
    if "failed" in det:             # "" when the cell ran (NaN when read back from a CSV)
        det = det.assign(failed=det["failed"].astype(object).where(det["failed"].notna(), ""))
    failed = det[det["failed"].astype(str) != ""] if "failed" in det else det.iloc[:0]
    det_ok = det.drop(failed.index)
    ex = exponent_tables(ctx, det_ok, prod)
    errors, nst, fits, ver, cmp, slopes = (ex[k] for k in ("errors", "nstar", "fits", "verdicts", "compare",
                                                            "local_slopes"))
    spl = split_table(det_ok, split)
    stoch = stochastic_summary(sto, floor, prof.eps["tv"], prof.B, ctx)
    tables = {"mixtures_cells": det, "mixtures_twins": prod, "mixtures_errors": errors, "mixtures_nstar": nst,
              "mixtures_fits": fits, "mixtures_verdicts": ver, "mixtures_local_slopes": slopes,
              "mixtures_compare": cmp, "mixtures_split": spl, "mixtures_stochastic": sto,
              "mixtures_stochastic_summary": stoch, "mixtures_geometry": geo, "mixtures_split_cells": split,
              "mixtures_floor": floor}
    for name, df in tables.items():
        atomic_write_text(ctx.out / f"{name}.csv", df.to_csv(index=False))
    atomic_write_text(ctx.out / "tables.md", markdown(ctx, prof, fits, ver, cmp, spl, stoch, geo, det_ok))
    figure_errors(det_ok, prod, "tv", prof.eps["tv"], prof.families, ctx.figures / "mixtures_tv_vs_nfe.png")
    figure_errors(det_ok, prod, "sqrt_kl", prof.eps["sqrt_kl"], prof.families,
                  ctx.figures / "mixtures_sqrtkl_vs_nfe.png")
    figure_nstar(nst, prof.families, ctx.figures / "mixtures_nstar_vs_d.png")
    if len(sto):
        figure_stochastic(sto, floor, ctx.figures / "mixtures_stochastic.png")
    return tables


STUDY = Study(NAME, "Gaussian mixtures with d entering through geometry (random directions, growing "
              "separation): exact-density KL/TV for ODE samplers, N* exponents vs product twins", run)
