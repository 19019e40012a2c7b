r"""Study "score_error": is the TV error linear in the score error, as the theorems' additive term says?

Claims (the additive score-error terms of the theorems, :mod:`experiments.score_error`): with an estimate
whose L2 error (total over the d coordinates, averaged over the steps) is at most :math:`\varepsilon_{score}`,

* Li & Jiao, Theorem 1: :math:`TV \lesssim (\text{discretisation}) + C\,\varepsilon_{score}\sqrt{\log T}`;
* Gupta, Cai & Chen (assumptions 2.3-2.4): the same additive :math:`\varepsilon_{score}` term, up to logs;
* DDPM / exponential integrator (Girsanov, Chen et al. 2023, arXiv 2209.11215; Benton et al. 2024, arXiv
  2308.03686): :math:`KL \lesssim \ldots + \varepsilon_{score}^2\,T_{horizon}`, hence by Pinsker
  :math:`TV \lesssim \ldots + \varepsilon_{score}\sqrt{T_{horizon}}`.

All are *upper bounds linear in* :math:`\varepsilon_{score}` up to logs.

Measurement. :class:`experiments.score_error.PerturbedGaussian` adds to the exact score of the target
family an affine error with :math:`E_{q_t}\|e_t\|^2 = \varepsilon_{score}^2` exactly (total over d,
constant in t), so law mode stays exact. Each sampler runs at one *large* cost, where the discretisation
error is far below the score-error contribution (checked: the TV at :math:`\varepsilon_{score}=0` and the
same cost, ``tv0``, is reported next to every point as ``disc_share = tv0 / tv``), at a grid of
:math:`\varepsilon_{score}`. Metric: the annealed TV of the output law (what the claims bound).

Uncertainty (:mod:`experiments.replicates`). A deterministic sampler (``ddpm``, ``exponential_integrator``)
has one exact law per point: no sampling error. A randomized sampler (``li_jiao``, ``gupta_cai_chen``)
draws its internal randomness in :data:`~experiments.internal.REPLICATE_GROUPS` = 8 replicate groups of
Latin hypercubes; every TV comes with its leave-one-group-out values, independent halves and jackknife
standard error (which carries the internal draws and the Monte Carlo of the annealed TV), and the
:func:`experiments.cells.gate` status at the profile's precision. **Common random numbers:** all
:math:`\varepsilon_{score}` of one (sampler, cost, d) use the same internal uniforms and the same Monte
Carlo stream, so the slope is not masked by draw noise.

Fit: :math:`\log TV = c + s\log\varepsilon_{score}` (least squares) over the *window* of points with
``disc_share <= 0.1`` (discretisation at most a tenth of the error), ``tv <= 0.25`` (TV is bounded by 1,
so a linear law can only hold while it is small) and, for randomized samplers, a ``resolved`` gate.
What the slope's interval is depends on where the uncertainty comes from (as in
:mod:`analysis.exponents`):

* randomized samplers: a **replicate jackknife 95% interval** (the slope refitted with each group left
  out of every point of the window, t with 7 df): the sampling error of the slope;
* deterministic samplers: **no sampling error, so no confidence interval**: the *range of local slopes*
  between successive :math:`\varepsilon_{score}` of the window (``interval = "local-slope range"``),
  i.e. how much the slope moves across the window.

Both kinds report the local-slope range (``s_local_min``, ``s_local_max``).

Verdict against the claimed slope 1 (the claim is an upper bound :math:`TV\le C\varepsilon_{score}` as
:math:`\varepsilon_{score}\to 0`), with a margin m = :data:`SLOPE_MARGIN` = 0.1 (the window admits a
discretisation share up to 0.1, which in an additive model TV = tv0 + C eps lowers the local slope
d log TV / d log eps = 1 - disc_share by up to 0.1):

============  ==========================  ===============================================================
verdict       condition                   reading
============  ==========================  ===============================================================
violated      ``s_hi < 1 - m``            TV decays *slower* than linearly: at small eps_score TV/eps_score
                                          grows without bound, no constant C works
consistent    ``1-m <= s_lo, s_hi <= 1+m`` linear, as claimed
loose         ``s_lo > 1 + m``            TV decays faster than linearly: the linear bound is not attained
inconclusive  otherwise                   the interval straddles a boundary
============  ==========================  ===============================================================

(``analysis.verdicts.verdict`` applied to the negated slope: its "lower exponent is better" reading
becomes "higher slope is better".) ``TV/eps_score`` is reported too: its spread measures the constant C.

Negative control: the same fit at a *small* cost, over every point (no window), where the
discretisation error dominates: the slope is far below 1 and the verdict must be ``violated``. Li & Jiao
has none: at its smallest feasible cost (T = 30, NFE 60; below it ``c1 ln T / T >= 1``) its TV with the
exact score is about 0.03 (64 draws), below the score-error term over most of the grid, so no cost makes
the discretisation dominate.

d-convention: the error is a fixed *total* L2 size spread over the d coordinates, so TV at different d
is comparable; each d is its own law (the per-coordinate error depends on d).

Outputs (``ctx.out``): ``score_error.csv`` (every point, the suite's error-row columns plus the study's),
``score_error_replicates.csv`` (leave-one-group-out TV of the randomized points),
``score_error_fits.csv`` (one row per sampler, cost kind and d), ``score_error_slope_replicates.csv``
(the jackknife slopes), ``tables.md``; figure ``score_error.png``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.cache import atomic_write_text
from experiments.cells import code_version, gate
from experiments.extra_studies import Study, run_cached
from experiments.internal import REPLICATE_GROUPS, LatinHypercube
from experiments.laws import gaussian_law
from experiments.replicates import ReplicatedError, replicated_error
from experiments.samplers import get as get_sampler
from experiments.score_error import ScoreErrorFamily
from experiments.studies import get_target

NAME = "score_error"
#: window rules of the fit (module docstring)
MAX_DISC_SHARE = 0.1
MAX_TV = 0.25
CLAIMED_SLOPE = 1.0
#: verdict margin of the slope (module docstring: the largest bend a disc share of MAX_DISC_SHARE causes)
SLOPE_MARGIN = MAX_DISC_SHARE
METRIC = "tv_annealed"


@dataclass(frozen=True)
class Run:
    sampler: str
    large: int                  # cost where the discretisation error is negligible
    small: int | None           # cost of the negative control (discretisation dominates); None: no control
    n_draws: int = 1            # internal draws (randomized samplers: a multiple of the 8 replicate groups)
    params: tuple = ()


@dataclass(frozen=True)
class Profile:
    dims: tuple
    eps: tuple
    runs: tuple
    target: str = "gauss_aniso"
    annealed_samples: int = 20000
    precision: float = 0.08     # gate of a randomized point (experiments.cells.gate)


_EPS_QUICK = (0.01, 0.018, 0.032, 0.056, 0.1, 0.18)
PROFILES = {
    "quick": Profile(dims=(4,), eps=_EPS_QUICK, runs=(
        Run("ddpm", 4096, 16), Run("exponential_integrator", 4096, 16),
        Run("li_jiao", 1000, None, n_draws=16), Run("gupta_cai_chen", 2048, 24, n_draws=16)),
        annealed_samples=8000, precision=0.15),
    "default": Profile(dims=(4, 100), eps=tuple(np.round(np.geomspace(0.003, 0.3, 9), 6)), runs=(
        Run("ddpm", 16384, 16), Run("exponential_integrator", 16384, 16),
        Run("li_jiao", 2000, None, n_draws=64), Run("gupta_cai_chen", 8192, 24, n_draws=64)),
        annealed_samples=20000, precision=0.08),
    "full": Profile(dims=(4, 100, 10000), eps=tuple(np.round(np.geomspace(0.001, 0.3, 12), 6)), runs=(
        Run("ddpm", 65536, 16), Run("exponential_integrator", 65536, 16),
        Run("li_jiao", 5000, None, n_draws=128), Run("gupta_cai_chen", 32768, 24, n_draws=128)),
        annealed_samples=50000, precision=0.03),
}


def _group(n_draws: int):
    """Replicate group of every internal draw (group-major rows of :class:`LatinHypercube`)."""
    return np.repeat(np.arange(REPLICATE_GROUPS), n_draws // REPLICATE_GROUPS) if n_draws > 1 else None


def _cell(item: dict) -> dict:
    """TV of one (sampler, cost, d, eps_score) law with its replicate structure; picklable."""
    spec = get_sampler(item["sampler"])
    family = ScoreErrorFamily(get_target(item["target"]), item["eps_score"])
    kernel = spec.make(item["cost"], **dict(item["params"]))
    n = int(item["n_draws"])
    # common random numbers: law_seed and mc_seed do not depend on eps_score
    rng = LatinHypercube(np.random.default_rng(item["law_seed"])) if n > 1 else np.random.default_rng(0)
    law = gaussian_law(kernel, family.at(item["d"]), n_draws=n, rng=rng)
    err = replicated_error(law, METRIC, group=_group(n), rng=np.random.default_rng(item["mc_seed"]),
                           n_samples=item["annealed_samples"])
    return {"error": err.value, "error_se": err.se, "loo": np.asarray(err.loo).tolist(),
            "error_half_a": err.halves[0], "error_half_b": err.halves[1], "error_bound": err.bound,
            "draws": err.n_draws, "method": err.method, "nfe": float(np.mean(law.nfe))}


def _key(item: dict) -> str:
    ident = dict(item, code=code_version(), study=NAME, metric=METRIC, groups=REPLICATE_GROUPS)
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]


def items_for(ctx, prof: Profile, runs=None) -> list[dict]:
    items = []
    for run in prof.runs if runs is None else runs:
        randomized = get_sampler(run.sampler).randomized
        if randomized and (run.n_draws < REPLICATE_GROUPS or run.n_draws % REPLICATE_GROUPS):
            raise ValueError(f"n_draws of {run.sampler} must be a multiple of {REPLICATE_GROUPS}, got {run.n_draws}")
        n = run.n_draws if randomized else 1
        for kind, cost in (("large", run.large), ("small", run.small)):
            if cost is None:
                continue
            for d in prof.dims:
                law_seed = int(ctx.rng(NAME, "law", run.sampler, cost, d, run.params).integers(2**62))
                mc_seed = int(ctx.rng(NAME, "mc", run.sampler, cost, d, run.params).integers(2**62))
                for eps in (0.0,) + tuple(prof.eps):
                    items.append({"sampler": run.sampler, "cost_kind": kind, "cost": int(cost), "d": int(d),
                                  "eps_score": float(eps), "n_draws": n, "params": list(run.params),
                                  "target": prof.target, "law_seed": law_seed, "mc_seed": mc_seed,
                                  "annealed_samples": prof.annealed_samples})
    return items


def _as_error(row) -> ReplicatedError:
    return ReplicatedError(float(row["error"]), float(row["error_se"]), np.asarray(row["loo"], float),
                           (float(row["error_half_a"]), float(row["error_half_b"])), int(row["draws"]))


def compute(ctx, runs=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(points, replicates)``: one row per (sampler, cost kind, d, eps_score) with the suite's error-row
    columns, and one row per randomized point and left-out group. ``runs`` restricts the profile's runs."""
    prof = PROFILES[ctx.profile]
    items = items_for(ctx, prof, runs)
    results = run_cached(ctx, items, _cell, _key)
    rows, reps = [], []
    for item, res in zip(items, results, strict=True):
        ident = {k: item[k] for k in ("sampler", "cost_kind", "cost", "d", "eps_score", "target")}
        status = "exact" if res["draws"] == 1 else ("resolved" if gate(_as_error(res), prof.precision)
                                                    else "unresolved")
        rows.append({**ident, "metric": METRIC, "nfe": res["nfe"], "error": res["error"],
                     "error_se": res["error_se"], "error_half_a": res["error_half_a"],
                     "error_half_b": res["error_half_b"], "error_bound": res["error_bound"], "draws": res["draws"],
                     "gate": status, "seed": ctx.seed, "profile": ctx.profile,
                     "params": json.dumps(dict(item["params"]), sort_keys=True)})
        reps += [{**ident, "metric": METRIC, "group": g, "error": float(x)} for g, x in enumerate(res["loo"])]
    df = pd.DataFrame(rows)
    key = ["sampler", "cost_kind", "d"]
    tv0 = df[df["eps_score"] == 0].set_index(key)["error"]
    df["tv0"] = [tv0[k] for k in zip(*(df[c] for c in key), strict=True)]
    with np.errstate(divide="ignore", invalid="ignore"):
        df["disc_share"] = np.where(df["eps_score"] > 0, df["tv0"] / df["error"], np.nan)
        df["tv_over_eps"] = np.where(df["eps_score"] > 0, df["error"] / df["eps_score"], np.nan)
    df["in_window"] = ((df["eps_score"] > 0) & (df["disc_share"] <= MAX_DISC_SHARE) & (df["error"] <= MAX_TV)
                       & df["gate"].isin(["exact", "resolved"]))
    return df, pd.DataFrame(reps, columns=key[:1] + ["cost_kind", "cost", "d", "eps_score", "target", "metric",
                                                     "group", "error"])


# =================================================================================================
# slope fits and verdicts
# =================================================================================================

def slope_verdict(lo: float, hi: float, claimed: float = CLAIMED_SLOPE, margin: float = SLOPE_MARGIN) -> str:
    """Verdict for a slope interval of log TV against log eps_score (module docstring)."""
    from analysis.verdicts import verdict

    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "undetermined"
    return verdict(-hi, -lo, -claimed, 0.0, margin)


def _slope(x, y) -> float:
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, y, 1)[0])


def fit_slope(part: pd.DataFrame, loo: np.ndarray | None) -> tuple[dict, list]:
    """Slope of log TV on log eps_score over the points of ``part`` (its window), with its interval:
    jackknife 95% over replicate groups when ``loo`` (n_points, R) is given, else the local-slope range."""
    from analysis.exponents import jackknife_interval

    if not part["eps_score"].is_monotonic_increasing:
        raise ValueError("part must be sorted by eps_score (the rows of loo follow it)")
    x = np.log(part["eps_score"].to_numpy(float))
    y = np.log(part["error"].to_numpy(float))
    s = _slope(x, y)
    local = np.diff(y) / np.diff(x) if len(x) >= 2 else np.array([])
    ratio = (part["error"] / part["eps_score"]).to_numpy(float)
    row = {"s": s, "n": len(x), "s_local_min": float(local.min()) if local.size else math.nan,
           "s_local_max": float(local.max()) if local.size else math.nan,
           "C_min": float(np.min(ratio)) if len(ratio) else math.nan,
           "C_max": float(np.max(ratio)) if len(ratio) else math.nan,
           "eps_min": float(part["eps_score"].min()) if len(x) else math.nan,
           "eps_max": float(part["eps_score"].max()) if len(x) else math.nan,
           "disc_share_max": float(part["disc_share"].max()) if len(x) else math.nan, "reason": ""}
    reps = []
    if loo is not None:
        slopes = [_slope(x, np.log(loo[:, g])) for g in range(loo.shape[1])]
        reps = [{"group": g, "s": sg} for g, sg in enumerate(slopes)]
        se, lo, hi = jackknife_interval(s, slopes)
        row.update(interval="jackknife 95%", s_se=se, s_lo=lo, s_hi=hi)
        if not np.isfinite(se):
            row["reason"] = "fewer than 2 points in the window: no slope"
    else:
        row.update(interval="local-slope range", s_se=math.nan, s_lo=row["s_local_min"], s_hi=row["s_local_max"])
        if local.size < 2:
            row["reason"] = "fewer than 3 points in the window: the local-slope range is one slope or none"
    row["verdict"] = slope_verdict(row["s_lo"], row["s_hi"])
    return row, reps


def fit_table(points: pd.DataFrame, replicates: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One fit per (sampler, cost kind, d): the window at the large cost, every point at the small cost."""
    rows, rep_rows = [], []
    loo_of = {}
    if len(replicates):
        for k, g in replicates.groupby(["sampler", "cost_kind", "d", "eps_score"]):
            loo_of[k] = g.sort_values("group")["error"].to_numpy(float)
    for (sampler, kind, d), part in points.groupby(["sampler", "cost_kind", "d"], sort=False):
        pos = part[part["eps_score"] > 0]
        if kind == "large":
            use = pos[pos["in_window"]]
            window = f"disc_share <= {MAX_DISC_SHARE}, tv <= {MAX_TV}, gate passed"
        else:
            use, window = pos, "all points (negative control: discretisation dominates)"
        use = use.sort_values("eps_score")
        randomized = bool((use["draws"] > 1).any()) if len(use) else bool((part["draws"] > 1).any())
        loo = None
        if randomized and len(use):
            loo = np.array([loo_of[(sampler, kind, d, e)] for e in use["eps_score"]])
        row = {"sampler": sampler, "cost_kind": kind, "d": int(d), "cost": int(part["cost"].iloc[0]),
               "nfe": float(part["nfe"].iloc[0]), "tv0": float(part["tv0"].iloc[0]),
               "draws": int(part["draws"].max()), "randomized": randomized, "window": window,
               "n_unresolved": int((pos["gate"] == "unresolved").sum())}
        if randomized and not len(use):
            fit = {"s": math.nan, "n": 0, "interval": "jackknife 95%", "s_se": math.nan, "s_lo": math.nan,
                   "s_hi": math.nan, "verdict": "undetermined", "reason": "no point in the window"}
            reps = []
        else:
            fit, reps = fit_slope(use, loo)
        row.update(fit)
        rows.append(row)
        rep_rows += [{"sampler": sampler, "cost_kind": kind, "d": int(d), **r} for r in reps]
    return pd.DataFrame(rows), pd.DataFrame(rep_rows)


# =================================================================================================
# figure and tables
# =================================================================================================

def figure(points: pd.DataFrame, fits: pd.DataFrame, path) -> None:
    from matplotlib.figure import Figure

    from analysis.figures import _colors, _save

    samplers = list(dict.fromkeys(points["sampler"]))
    dims = sorted(points["d"].unique())
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    styles = ["o-", "s--", "^:"]
    for ax, kind in zip(axes, ("large", "small"), strict=True):
        sub = points[(points["cost_kind"] == kind) & (points["eps_score"] > 0)]
        for color, s in zip(_colors(len(samplers)), samplers, strict=True):
            for style, d in zip(styles, dims, strict=False):
                part = sub[(sub["sampler"] == s) & (sub["d"] == d)].sort_values("eps_score")
                if part.empty:
                    continue
                f = fits[(fits["sampler"] == s) & (fits["cost_kind"] == kind) & (fits["d"] == d)].iloc[0]
                kind_txt = "jk 95%" if f["interval"] == "jackknife 95%" else "local slopes"
                lab = (f"{s} (cost {int(part['cost'].iloc[0])}), d={d}: slope {f['s']:.2f} "
                       f"[{f['s_lo']:.2f}, {f['s_hi']:.2f}] {kind_txt}")
                ax.errorbar(part["eps_score"], part["error"], yerr=2 * part["error_se"], fmt=style, color=color,
                            ms=4, lw=1.3, capsize=2, label=lab)
                ax.axhline(float(part["tv0"].iloc[0]), color=color, ls=":", lw=0.8)
        eps = np.array(sorted(sub["eps_score"].unique()))
        if len(eps):
            mid = np.exp(np.mean(np.log(sub["error"])))
            guide = mid * eps / np.exp(np.mean(np.log(eps)))
            ax.plot(eps, guide, "-", color="0.2", lw=2.0, alpha=0.35, label="slope 1 (claim: TV ≤ C ε_score)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ε_score (total L2 score error over the d coordinates)")
        ax.grid(True, which="major", alpha=0.3)
        ax.set_title("large cost (discretisation negligible)" if kind == "large"
                     else "negative control: small cost (discretisation dominates)", fontsize="medium")
        ax.legend(fontsize="x-small", loc="lower right" if kind == "large" else "lower left", framealpha=0.85)
    axes[0].set_ylabel("annealed TV to the exact marginal (±2 s.e.)")
    fig.suptitle("TV against the score error; dotted: TV with the exact score at the same cost", fontsize="medium")
    _save(fig, path.with_suffix(""))


def markdown(points: pd.DataFrame, fits: pd.DataFrame, ctx, prof: Profile) -> str:
    from analysis.tables import render_table

    fits = fits.copy()
    fits["kind"] = fits["interval"].map({"jackknife 95%": "jk 95%", "local-slope range": "slope range"})
    fits["s_local"] = [f"[{a:.3f}, {b:.3f}]" if np.isfinite(a) else "n/a"
                       for a, b in zip(fits["s_local_min"], fits["s_local_max"], strict=True)]
    draws = sorted({int(r.n_draws) for r in prof.runs if get_sampler(r.sampler).randomized})
    out = ["<!-- generated by experiments.extra_studies.score_error from the tables; do not edit by hand -->",
           f"#### Score error: annealed TV against eps_score (target `{prof.target}`, profile {ctx.profile}, "
           f"seed {ctx.seed})",
           "Fit log TV = c + s log eps_score; claim: slope 1 (TV <= C eps_score up to logs). Interval: jackknife "
           f"95% over the {REPLICATE_GROUPS} replicate groups of internal draws for randomized samplers "
           f"({'/'.join(map(str, draws))} draws, common random numbers over eps_score); for deterministic "
           "samplers the range of local slopes (no sampling error: not a confidence interval). Verdict margin "
           f"{SLOPE_MARGIN:g} around slope 1 (violated: interval below {1 - SLOPE_MARGIN:g}). Window at the large "
           f"cost: disc_share = TV(eps=0)/TV <= {MAX_DISC_SHARE}, TV <= {MAX_TV}, gate passed. The small-cost rows "
           "are the negative control (discretisation dominates; every point).",
           render_table(fits, ["sampler", "cost_kind", "cost", "d", "tv0", "s [ci]", "kind", "s_local", "n", "verdict",
                               "C_min", "C_max", "disc_share_max", "eps_min", "eps_max", "reason"],
                        headers={"s [ci]": "slope [interval]", "kind": "interval", "s_local": "local slopes",
                                 "tv0": "TV at eps=0", "C_min": "min TV/eps", "C_max": "max TV/eps",
                                 "disc_share_max": "max disc share"}, digits=3),
           "Points at the large cost",
           render_table(points[(points["cost_kind"] == "large") & (points["eps_score"] > 0)],
                        ["sampler", "d", "eps_score", "error", "error_se", "draws", "gate", "tv0", "disc_share",
                         "tv_over_eps", "in_window"],
                        headers={"error": "TV", "error_se": "s.e."}, digits=4)]
    return "\n\n".join(out) + "\n"


def run(ctx) -> dict:
    if ctx.profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {ctx.profile!r}")
    prof = PROFILES[ctx.profile]
    points, reps = compute(ctx)
    fits, slope_reps = fit_table(points, reps)
    out = {"score_error": points, "score_error_replicates": reps, "score_error_fits": fits,
           "score_error_slope_replicates": slope_reps}
    for name, df in out.items():
        atomic_write_text(ctx.out / f"{name}.csv", df.to_csv(index=False))
    atomic_write_text(ctx.out / "tables.md", markdown(points, fits, ctx, prof))
    figure(points, fits, ctx.figures / "score_error.png")
    return out


STUDY = Study(NAME, "TV against the score error eps_score at large cost (claim: linear, slope 1)", run)
