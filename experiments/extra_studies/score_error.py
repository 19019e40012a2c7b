r"""Study "score_error": is the TV error linear in the score error, as the theorems' additive term says?

Claims (algorithms_rm.md 2.5-2.6 and 3.2): with an estimate whose L2 error (total over the d
coordinates, averaged over the steps) is at most :math:`\varepsilon_{score}`,

* Li & Jiao, Theorem 1: :math:`TV \lesssim (\text{discretisation}) + C\,\varepsilon_{score}\sqrt{\log T}`;
* Gupta, Cai & Chen (assumptions 2.3-2.4): the same additive :math:`\varepsilon_{score}` term, up to logs;
* DDPM / exponential integrator (Girsanov, Chen et al. 2023; Benton et al. 2024, anchors.md section 2):
  :math:`KL \lesssim \ldots + \varepsilon_{score}^2\,T_{horizon}`, hence by Pinsker
  :math:`TV \lesssim \ldots + \varepsilon_{score}\sqrt{T_{horizon}}`.

All are *upper bounds linear in* :math:`\varepsilon_{score}` up to logs.

Measurement. :class:`experiments.score_error.PerturbedGaussian` adds to the exact score of the target
family an affine error with :math:`E_{q_t}\|e_t\|^2 = \varepsilon_{score}^2` exactly (total over d,
constant in t), so law mode stays exact. Each sampler runs at one *large* cost, where the discretisation
error is far below the score-error contribution (checked: the TV at :math:`\varepsilon_{score}=0` and the
same cost, ``tv0``, is reported next to every point as ``disc_share = tv0 / tv``), at a grid of
:math:`\varepsilon_{score}`. All :math:`\varepsilon_{score}` of one (sampler, cost, d) share the
internal randomness and the Monte Carlo stream (common random numbers), so slopes are not masked by
draw noise.

Fit: :math:`\log TV = c + s\log\varepsilon_{score}` (OLS, HC3, 95% t intervals; analysis.fits.ols_hc3)
over the *window* of points with ``disc_share <= 0.1`` (discretisation at most a tenth of the error)
and ``tv <= 0.25`` (TV is bounded by 1, so a linear law can only hold while it is small). Verdict
against the claimed slope 1 (the claim is an upper bound :math:`TV\le C\varepsilon_{score}` as
:math:`\varepsilon_{score}\to 0`):

============  ================  ===============================================================
verdict       condition         reading
============  ================  ===============================================================
violated      ``s_hi < 1``      TV decays *slower* than linearly: at small eps_score TV/eps_score
                                grows without bound, no constant C works
tight         ``s_lo<=1<=s_hi`` linear, as claimed
loose         ``s_lo > 1``      TV decays faster than linearly: the linear bound is not attained
============  ================  ===============================================================

(``analysis.verdicts.verdict`` applied to the negated slope: its "lower exponent is better" reading
becomes "higher slope is better".) ``TV/eps_score`` is reported too: its spread measures the constant C.

Negative control: the same fit at a *small* cost, over every point (no window), where the
discretisation error dominates: the slope is near 0 and the verdict must be ``violated``.

d-convention: the error is a fixed *total* L2 size spread over the d coordinates, so TV at different d
is comparable; each d is its own law (the per-coordinate error depends on d).

Outputs (``ctx.out``): ``score_error.csv`` (every point), ``score_error_fits.csv`` (one row per
sampler, cost kind and d), ``tables.md``; figure ``score_error.png``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.cache import atomic_write_text
from experiments.cells import code_version
from experiments.errors import law_error
from experiments.extra_studies import Study, run_cached
from experiments.laws import gaussian_law
from experiments.samplers import get as get_sampler
from experiments.score_error import ScoreErrorFamily
from experiments.studies import get_target

#: window rules of the fit (module docstring)
MAX_DISC_SHARE = 0.1
MAX_TV = 0.25
CLAIMED_SLOPE = 1.0
METRIC = "tv_annealed"


@dataclass(frozen=True)
class Run:
    sampler: str
    large: int                  # cost where the discretisation error is negligible
    small: int                  # cost of the negative control (discretisation dominates)
    n_draws: int = 1
    params: tuple = ()


@dataclass(frozen=True)
class Profile:
    dims: tuple
    eps: tuple
    runs: tuple
    target: str = "gauss_aniso"
    annealed_samples: int = 20000


_EPS_QUICK = (0.01, 0.018, 0.032, 0.056, 0.1, 0.18)
PROFILES = {
    "quick": Profile(dims=(4,), eps=_EPS_QUICK, runs=(
        Run("ddpm", 4096, 16), Run("exponential_integrator", 4096, 16),
        Run("li_jiao", 1000, 40, n_draws=8), Run("gupta_cai_chen", 2048, 24, n_draws=8))),
    "default": Profile(dims=(4, 100), eps=tuple(np.round(np.geomspace(0.003, 0.3, 9), 6)), runs=(
        Run("ddpm", 16384, 16), Run("exponential_integrator", 16384, 16),
        Run("li_jiao", 2000, 40, n_draws=32), Run("gupta_cai_chen", 8192, 24, n_draws=32))),
    "full": Profile(dims=(4, 100, 10000), eps=tuple(np.round(np.geomspace(0.001, 0.3, 12), 6)), runs=(
        Run("ddpm", 65536, 16), Run("exponential_integrator", 65536, 16),
        Run("li_jiao", 5000, 40, n_draws=64), Run("gupta_cai_chen", 32768, 24, n_draws=64)), annealed_samples=50000),
}


def _cell(item: dict) -> dict:
    """TV of one (sampler, cost, d, eps_score) law; picklable for process/dask executors."""
    spec = get_sampler(item["sampler"])
    family = ScoreErrorFamily(get_target(item["target"]), item["eps_score"])
    kernel = spec.make(item["cost"], **dict(item["params"]))
    law = gaussian_law(kernel, family.at(item["d"]), n_draws=item["n_draws"],
                       rng=np.random.default_rng(item["law_seed"]))
    tv, se = law_error(law, METRIC, rng=np.random.default_rng(item["mc_seed"]), n_samples=item["annealed_samples"])
    return {"tv": tv, "tv_se": se, "nfe": float(np.mean(law.nfe))}


def slope_verdict(lo: float, hi: float, claimed: float = CLAIMED_SLOPE) -> str:
    """Verdict for a measured slope interval of log TV against log eps_score (module docstring)."""
    from analysis.verdicts import verdict

    return verdict(-hi, -lo, -claimed)


def fit_slope(part: pd.DataFrame) -> dict:
    from analysis.fits import ols_hc3

    x = np.log(part["eps_score"].to_numpy(float))
    y = np.log(part["tv"].to_numpy(float))
    X = np.column_stack([np.ones_like(x), x]) if len(x) else np.zeros((0, 2))
    fit = ols_hc3(y, X, ["c", "s"])
    ratio = (part["tv"] / part["eps_score"]).to_numpy(float)
    return {"s": fit["s"], "s_lo": fit["s_lo"], "s_hi": fit["s_hi"], "s_se": fit["s_se"], "n": len(x),
            "df_resid": fit["df_resid"], "reason": fit["reason"],
            "verdict": slope_verdict(fit["s_lo"], fit["s_hi"]),
            "C_min": float(np.min(ratio)) if len(ratio) else np.nan,
            "C_max": float(np.max(ratio)) if len(ratio) else np.nan,
            "eps_min": float(part["eps_score"].min()) if len(x) else np.nan,
            "eps_max": float(part["eps_score"].max()) if len(x) else np.nan,
            "disc_share_max": float(part["disc_share"].max()) if len(x) else np.nan}


def fit_table(points: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (sampler, kind, d), part in points.groupby(["sampler", "cost_kind", "d"], sort=False):
        pos = part[part["eps_score"] > 0]
        if kind == "large":
            use, window = pos[pos["in_window"]], f"disc_share <= {MAX_DISC_SHARE}, tv <= {MAX_TV}"
        else:
            use, window = pos, "all points (negative control: discretisation dominates)"
        row = {"sampler": sampler, "cost_kind": kind, "d": int(d), "cost": int(part["cost"].iloc[0]),
               "nfe": float(part["nfe"].iloc[0]), "tv0": float(part["tv0"].iloc[0]), "window": window}
        row.update(fit_slope(use))
        rows.append(row)
    return pd.DataFrame(rows)


def _key(item: dict) -> str:
    ident = dict(item, code=code_version(), study="score_error", metric=METRIC)
    return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()).hexdigest()[:32]


def compute(ctx) -> pd.DataFrame:
    prof = PROFILES[ctx.profile]
    items = []
    for run in prof.runs:
        for kind, cost in (("large", run.large), ("small", run.small)):
            for d in prof.dims:
                # common random numbers: the seeds do not depend on eps_score
                law_seed = int(ctx.rng("score_error", "law", run.sampler, cost, d, run.params).integers(2**62))
                mc_seed = int(ctx.rng("score_error", "mc", run.sampler, cost, d, run.params).integers(2**62))
                for eps in (0.0,) + tuple(prof.eps):
                    items.append({"sampler": run.sampler, "cost_kind": kind, "cost": int(cost), "d": int(d),
                                  "eps_score": float(eps), "n_draws": run.n_draws, "params": list(run.params),
                                  "target": prof.target, "law_seed": law_seed, "mc_seed": mc_seed,
                                  "annealed_samples": prof.annealed_samples})
    results = run_cached(ctx, items, _cell, _key)
    rows = []
    for i, item in enumerate(items):
        rows.append({**{k: item[k] for k in ("sampler", "cost_kind", "cost", "d", "eps_score", "n_draws", "target")},
                     **results[i], "metric": METRIC, "seed": ctx.seed, "profile": ctx.profile,
                     "code_version": code_version(), "params": json.dumps(dict(item["params"]), sort_keys=True)})
    df = pd.DataFrame(rows)
    tv0 = df[df["eps_score"] == 0].set_index(["sampler", "cost_kind", "d"])["tv"]
    df["tv0"] = [tv0[(s, k, d)] for s, k, d in zip(df["sampler"], df["cost_kind"], df["d"])]
    with np.errstate(divide="ignore", invalid="ignore"):
        df["disc_share"] = np.where(df["eps_score"] > 0, df["tv0"] / df["tv"], np.nan)
        df["tv_over_eps"] = np.where(df["eps_score"] > 0, df["tv"] / df["eps_score"], np.nan)
    df["in_window"] = (df["eps_score"] > 0) & (df["disc_share"] <= MAX_DISC_SHARE) & (df["tv"] <= MAX_TV)
    return df


def figure(points: pd.DataFrame, fits: pd.DataFrame, path) -> None:
    from matplotlib.figure import Figure

    from analysis.figures import _colors

    samplers = list(dict.fromkeys(points["sampler"]))
    dims = sorted(points["d"].unique())
    fig = Figure(figsize=(11, 4.6))
    axes = fig.subplots(1, 2, sharey=True)
    styles = ["o-", "s--", "^:"]
    for ax, kind in zip(axes, ("large", "small")):
        sub = points[(points["cost_kind"] == kind) & (points["eps_score"] > 0)]
        for color, s in zip(_colors(len(samplers)), samplers):
            for style, d in zip(styles, dims):
                part = sub[(sub["sampler"] == s) & (sub["d"] == d)].sort_values("eps_score")
                if part.empty:
                    continue
                f = fits[(fits["sampler"] == s) & (fits["cost_kind"] == kind) & (fits["d"] == d)].iloc[0]
                lab = f"{s} (cost {int(part['cost'].iloc[0])}), d={d}: slope {f['s']:.2f} [{f['s_lo']:.2f}, {f['s_hi']:.2f}]"
                ax.plot(part["eps_score"], part["tv"], style, color=color, ms=4, lw=1.3, label=lab)
                ax.axhline(float(part["tv0"].iloc[0]), color=color, ls=":", lw=0.8)
        eps = np.array(sorted(sub["eps_score"].unique()))
        if len(eps):
            mid = np.exp(np.mean(np.log(sub["tv"])))
            guide = mid * eps / np.exp(np.mean(np.log(eps)))
            ax.plot(eps, guide, "-", color="0.2", lw=2.0, alpha=0.35, label="slope 1 (claim: TV ≤ C ε_score)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("ε_score (total L2 score error over the d coordinates)")
        ax.grid(True, which="major", alpha=0.3)
        ax.set_title("large cost (discretisation negligible)" if kind == "large"
                     else "negative control: small cost (discretisation dominates)", fontsize="medium")
        ax.legend(fontsize="x-small", loc="lower right" if kind == "large" else "lower left", framealpha=0.85)
    axes[0].set_ylabel("annealed TV to the exact marginal")
    fig.text(0.5, 0.005, "dotted lines: TV with the exact score at the same cost (the discretisation error)",
             ha="center", fontsize="small", color="0.3")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=130)


def markdown(points: pd.DataFrame, fits: pd.DataFrame) -> str:
    from analysis.tables import render_table

    out = ["# Score error: TV against eps_score\n",
           "Fit log TV = c + s log eps_score (HC3, 95%); claim: slope 1 (TV <= C eps_score up to logs). "
           f"Window at the large cost: disc_share = TV(eps=0)/TV <= {MAX_DISC_SHARE} and TV <= {MAX_TV}. "
           "The small-cost rows are the negative control (discretisation dominates; every point).\n",
           render_table(fits, ["sampler", "cost_kind", "cost", "d", "tv0", "s [ci]", "n", "verdict", "C_min", "C_max",
                               "disc_share_max", "eps_min", "eps_max"],
                        headers={"s [ci]": "slope [95% CI]", "tv0": "TV at eps=0", "C_min": "min TV/eps",
                                 "C_max": "max TV/eps", "disc_share_max": "max disc share"}, digits=3),
           "\n## Points at the large cost\n",
           render_table(points[(points["cost_kind"] == "large") & (points["eps_score"] > 0)],
                        ["sampler", "d", "eps_score", "tv", "tv_se", "tv0", "disc_share", "tv_over_eps", "in_window"],
                        digits=4)]
    return "\n".join(out)


def run(ctx) -> dict:
    points = compute(ctx)
    fits = fit_table(points)
    atomic_write_text(ctx.out / "score_error.csv", points.to_csv(index=False))
    atomic_write_text(ctx.out / "score_error_fits.csv", fits.to_csv(index=False))
    atomic_write_text(ctx.out / "tables.md", markdown(points, fits))
    figure(points, fits, ctx.figures / "score_error.png")
    return {"score_error": points, "score_error_fits": fits}


STUDY = Study("score_error", "TV against the score error eps_score at large cost (claim: linear, slope 1)", run)
