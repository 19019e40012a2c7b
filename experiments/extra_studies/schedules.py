r"""Study "schedules": Wang, He & Tao's exponential vs polynomial (EDM) variance schedules for VE-EI.

Claim (algorithms_other.md 2.5, [R]): when the score is **well trained** (discretisation and
initialisation errors dominate) the **exponential** schedule (geometric :math:`\hat\sigma`) is better;
when the score is **less trained** (the score error dominates) the **polynomial** EDM schedule
(:math:`\rho = 7`) is better.

Measurement. The "ve_ei" sampler (experiments/samplers/ve.py) with ``schedule="exponential"`` and
``schedule="polynomial"`` (``rho=7``), the same :math:`\hat\sigma_{min} = 0.002`,
:math:`\hat\sigma_{max} = 80` (EDM's defaults, algorithms_other.md 2.3; OU times
:math:`T = \tfrac12\log(1+80^2)`, :math:`\delta = \tfrac12\log(1+0.002^2)`) and the same number of steps N,
started from the exact law at T (no initialisation error), in exact law mode. Score conditions:

* ``exact``: the exact score (well trained);
* ``inv_sigma eps``: :class:`experiments.score_error.PerturbedGaussian` with the ``"inv_sigma"`` profile,
  :math:`E_{q_t}\|e_t\|^2 = \varepsilon^2/\sigma_t^2` in total over d, i.e. :math:`E\|\hat e\|^2 =
  \varepsilon^2/\hat\sigma^2` for the VE score (the "less trained" emulation of algorithms_other.md 2.8).

Two target families: ``gauss_aniso`` (the suite's default; data scales 0.3 and 1.4) and
``gauss_multiscale`` (nine equal groups with variances :math:`10^{-5},\dots,10^{3}`, i.e. data structure
at every noise level between :math:`\hat\sigma_{min}` and :math:`\hat\sigma_{max}`, the situation a
worst-case bound over data with a finite second moment describes).

Errors: KL(target || output) (exact, closed form) and TV (exact, deterministic sampler) against N.
Comparison per N: :math:`r_N = \log(\mathrm{err}_{poly}/\mathrm{err}_{exp})` (> 0: exponential better).
Fit over the window of N where neither TV exceeds 0.95 (saturated TV carries no ranking):
:math:`r_N = a + b(\log N - \overline{\log N})` with HC3 95% intervals (analysis.fits.ols_hc3), so ``a``
is the mean log advantage over the window and ``b`` its trend. Winner: ``exponential`` if
:math:`a_{lo} > 0`, ``polynomial`` if :math:`a_{hi} < 0`, ``tie`` otherwise. The law-mode errors are
exact, so the interval measures how much the advantage varies over the window, not sampling noise.
Also: the crossover N (where :math:`r_N` changes sign, log-interpolated, last crossing), the ratio
:math:`N^*_{poly}/N^*_{exp}` at fixed accuracy levels (experiments.complexity.nstar), and the
score-error share :math:`1 - \mathrm{err}_{exact}/\mathrm{err}` of each condition.

Negative controls (tests): swapping the schedule labels must flip every winner; comparing a schedule
with itself must give ``tie``.

Outputs: ``schedules_errors.csv``, ``schedules_compare.csv`` (per N), ``schedules_fits.csv`` (per
target, condition, metric, with the WHT verdict), ``tables.md``; figure ``schedules.png``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.cache import atomic_write_text
from experiments.cells import code_version
from experiments.complexity import cost_ladder, nstar
from experiments.errors import law_error
from experiments.extra_studies import Study, run_cached
from experiments.laws import gaussian_law
from experiments.samplers import get as get_sampler
from experiments.score_error import ScoreErrorFamily
from experiments.studies import GaussianFamily, get_target

SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0
T_MAX = 0.5 * float(np.log1p(SIGMA_MAX**2))
DELTA = 0.5 * float(np.log1p(SIGMA_MIN**2))
SCHEDULES = ("exponential", "polynomial")
TV_SATURATED = 0.95
LEVELS = {"kl": (0.1, 0.03, 0.01), "tv": (0.2, 0.1, 0.05)}

MULTISCALE = GaussianFamily(
    "gauss_multiscale", tuple(10.0**k for k in range(-5, 4)), (0.0,) * 9, (1.0 / 9,) * 9,
    "nine equal groups, variances 1e-5 ... 1e3: data structure at every VE noise level",
)


def family(name: str):
    return MULTISCALE if name == MULTISCALE.name else get_target(name)


@dataclass(frozen=True)
class Profile:
    d: int
    targets: tuple
    eps: tuple                 # inv_sigma score-error sizes (besides the exact score)
    ladder: tuple              # (N_min, N_max)
    per_octave: int = 1


PROFILES = {
    "quick": Profile(d=90, targets=("gauss_aniso", "gauss_multiscale"), eps=(0.03, 0.3), ladder=(16, 1024)),
    "default": Profile(d=90, targets=("gauss_aniso", "gauss_multiscale"), eps=(0.01, 0.03, 0.1, 0.3),
                       ladder=(8, 4096), per_octave=2),
    "full": Profile(d=900, targets=("gauss_aniso", "gauss_multiscale"), eps=(0.003, 0.01, 0.03, 0.1, 0.3, 1.0),
                    ladder=(8, 16384), per_octave=2),
}


def condition_name(eps: float) -> str:
    return "exact" if eps == 0 else f"inv_sigma {eps:g}"


def _cell(item: dict) -> dict:
    fam = ScoreErrorFamily(family(item["target"]), item["eps_score"], profile="inv_sigma")
    kernel = get_sampler("ve_ei").make(item["N"], T=T_MAX, delta=DELTA, schedule=item["schedule"], rho=RHO)
    law = gaussian_law(kernel, fam.at(item["d"]))
    root_kl, _ = law_error(law, "sqrt_kl", rng=np.random.default_rng(0))
    tv, _ = law_error(law, "tv_annealed", rng=np.random.default_rng(0))   # exact: deterministic sampler
    return {"kl": root_kl**2, "tv": tv, "nfe": float(np.mean(law.nfe))}


def _key(item: dict) -> str:
    ident = dict(item, code=code_version(), study="schedules", T=T_MAX, delta=DELTA, rho=RHO)
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def compute(ctx) -> pd.DataFrame:
    prof = PROFILES[ctx.profile]
    Ns = cost_ladder(prof.ladder[0], prof.ladder[1], prof.per_octave)
    items = [{"target": t, "d": prof.d, "eps_score": float(e), "schedule": s, "N": int(N)}
             for t in prof.targets for e in (0.0,) + tuple(prof.eps) for s in SCHEDULES for N in Ns]
    results = run_cached(ctx, items, _cell, _key)
    rows = [{**it, "condition": condition_name(it["eps_score"]), **results[i], "sigma_min": SIGMA_MIN,
             "sigma_max": SIGMA_MAX, "rho": RHO, "seed": ctx.seed, "profile": ctx.profile, "code_version": code_version()}
            for i, it in enumerate(items)]
    df = pd.DataFrame(rows)
    exact = df[df["eps_score"] == 0].set_index(["target", "schedule", "N"])
    for m in ("kl", "tv"):
        ref = np.array([exact.loc[(t, s, n), m] for t, s, n in zip(df["target"], df["schedule"], df["N"])])
        df[f"score_share_{m}"] = 1.0 - ref / df[m]
    return df


def compare(errors: pd.DataFrame, labels=SCHEDULES) -> pd.DataFrame:
    """Per (target, condition, metric, N): r = log(err[labels[1]] / err[labels[0]]) and the winner there.

    ``labels`` names which schedule plays "exponential" (first) and "polynomial" (second); the
    negative controls pass them swapped, or twice the same."""
    first, second = labels
    rows = []
    for (target, cond, N), part in errors.groupby(["target", "condition", "N"], sort=False):
        byS = part.set_index("schedule")
        for m in ("kl", "tv"):
            e1, e2 = float(byS.loc[first, m]), float(byS.loc[second, m])
            r = float(np.log(e2 / e1))
            rows.append({"target": target, "condition": cond, "eps_score": float(part["eps_score"].iloc[0]),
                         "metric": m, "N": int(N), "err_first": e1, "err_second": e2, "log_ratio": r,
                         "saturated": max(float(byS.loc[first, "tv"]), float(byS.loc[second, "tv"])) > TV_SATURATED,
                         "better": first if r > 0 else (second if r < 0 else "tie")})
    return pd.DataFrame(rows)


def _crossover(N, r) -> float:
    """Last N where r changes sign (log-log interpolation); NaN when it never does."""
    s = np.sign(r)
    idx = np.flatnonzero(s[1:] * s[:-1] < 0)
    if idx.size == 0:
        return float("nan")
    i = idx[-1]
    x0, x1 = np.log(N[i]), np.log(N[i + 1])
    return float(np.exp(x0 + (0 - r[i]) * (x1 - x0) / (r[i + 1] - r[i])))


def fit_compare(cmp: pd.DataFrame, labels=SCHEDULES) -> pd.DataFrame:
    from analysis.fits import ols_hc3

    first, second = labels
    rows = []
    for (target, cond, m), part in cmp.groupby(["target", "condition", "metric"], sort=False):
        part = part.sort_values("N")
        win = part[~part["saturated"]]
        lx = np.log(win["N"].to_numpy(float))
        r = win["log_ratio"].to_numpy(float)
        X = np.column_stack([np.ones_like(lx), lx - lx.mean()]) if len(lx) else np.zeros((0, 2))
        if len(r) and np.ptp(r) == 0 and len(r) > 2:        # identical curves: exact zero spread
            fit = {"a": float(r[0]), "a_lo": float(r[0]), "a_hi": float(r[0]), "b": 0.0, "b_lo": 0.0, "b_hi": 0.0,
                   "reason": "constant log ratio"}
        else:
            fit = ols_hc3(r, X, ["a", "b"])
        winner = (first if fit["a_lo"] > 0 else second if fit["a_hi"] < 0 else "tie") \
            if np.isfinite(fit["a_lo"]) and np.isfinite(fit["a_hi"]) else "undetermined"
        row = {"target": target, "condition": cond, "eps_score": float(part["eps_score"].iloc[0]), "metric": m,
               "n": len(r), "N_min": int(win["N"].min()) if len(r) else np.nan,
               "N_max": int(win["N"].max()) if len(r) else np.nan,
               "a": fit["a"], "a_lo": fit["a_lo"], "a_hi": fit["a_hi"], "b": fit["b"], "b_lo": fit["b_lo"],
               "b_hi": fit["b_hi"], "winner": winner, "ratio_at_Nmax": float(np.exp(r[-1])) if len(r) else np.nan,
               "crossover_N": _crossover(part["N"].to_numpy(float), part["log_ratio"].to_numpy(float)),
               "reason": fit.get("reason", "")}
        nfe = part["N"].to_numpy(float)
        for lev in LEVELS[m]:
            n1, c1 = nstar(nfe, part["err_first"].to_numpy(float), lev)
            n2, c2 = nstar(nfe, part["err_second"].to_numpy(float), lev)
            row[f"nstar_ratio@{lev:g}"] = n2 / n1 if (c1 == c2 == "interpolated") else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def wht_verdicts(fits: pd.DataFrame) -> pd.DataFrame:
    """The WHT conclusion per row: exact score -> exponential claimed; the largest error -> polynomial claimed."""
    out = fits.copy()
    largest = out.groupby("target")["eps_score"].transform("max")
    claimed = np.where(out["eps_score"] == 0, "exponential",
                       np.where(out["eps_score"] == largest, "polynomial", ""))
    out["claim"] = claimed
    out["agrees"] = np.where(claimed == "", "", np.where(out["winner"] == claimed, "yes",
                             np.where(out["winner"] == "tie", "tie", "no")))
    return out


def figure(errors: pd.DataFrame, cmp: pd.DataFrame, path) -> None:
    from matplotlib.figure import Figure

    from analysis.figures import _colors

    targets = list(dict.fromkeys(errors["target"]))
    conds = list(dict.fromkeys(errors["condition"]))
    fig = Figure(figsize=(12, 4.2 * len(targets)))
    axes = fig.subplots(len(targets), 2, squeeze=False)
    colors = dict(zip(conds, _colors(len(conds))))
    for row, t in zip(axes, targets):
        ax = row[0]
        for c in conds:
            for s, style in zip(SCHEDULES, ("o-", "s--")):
                part = errors[(errors["target"] == t) & (errors["condition"] == c) & (errors["schedule"] == s)]
                part = part.sort_values("N")
                ax.plot(part["N"], part["kl"], style, color=colors[c], ms=3.5, lw=1.2, label=f"{c}, {s}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (steps = score evaluations)")
        ax.set_ylabel("KL(target ‖ output)")
        ax.set_title(f"{t}: KL against N (solid: exponential, dashed: polynomial ρ=7)", fontsize="medium")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="x-small", ncol=1 + (len(conds) > 3), loc="lower left")
        ax = row[1]
        for c in conds:
            for m, style in (("kl", "o-"), ("tv", "^:")):
                part = cmp[(cmp["target"] == t) & (cmp["condition"] == c) & (cmp["metric"] == m)].sort_values("N")
                ax.plot(part["N"], np.exp(part["log_ratio"]), style, color=colors[c], ms=3.5, lw=1.2,
                        label=f"{c}, {m.upper()}")
        ax.axhline(1.0, color="0.3", lw=1.0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N")
        ax.set_ylabel("error(polynomial) / error(exponential)")
        ax.set_title(f"{t}: above 1 = exponential better", fontsize="medium")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="x-small", ncol=1 + (len(conds) > 3), loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def markdown(fits: pd.DataFrame) -> str:
    from analysis.tables import render_table

    ratio_cols = [c for c in fits.columns if c.startswith("nstar_ratio@")]
    parts = ["# Schedules (Wang, He & Tao): exponential vs polynomial (EDM, rho = 7) for VE-EI\n",
             f"sigma_min = {SIGMA_MIN}, sigma_max = {SIGMA_MAX}, exact start at sigma_max. "
             "a = mean of log(err_poly / err_exp) over the unsaturated N window (> 0: exponential better), "
             "HC3 95% CI; b = its trend per unit log N. N* ratio = N*_poly / N*_exp at the stated accuracy "
             "(KL levels for kl, TV levels for tv; n/a when a curve does not cross the level).\n"]
    for m in ("kl", "tv"):
        sub = fits[fits["metric"] == m]
        cols = ["target", "condition", "a [ci]", "b [ci]", "winner", "claim", "agrees", "crossover_N", "ratio_at_Nmax"]
        cols += [f"nstar_ratio@{x:g}" for x in LEVELS[m] if f"nstar_ratio@{x:g}" in ratio_cols]
        parts.append(f"\n## metric {m}\n")
        parts.append(render_table(sub, cols, digits=3))
    return "\n".join(parts)


def run(ctx) -> dict:
    errors = compute(ctx)
    cmp = compare(errors)
    fits = wht_verdicts(fit_compare(cmp))
    atomic_write_text(ctx.out / "schedules_errors.csv", errors.to_csv(index=False))
    atomic_write_text(ctx.out / "schedules_compare.csv", cmp.to_csv(index=False))
    atomic_write_text(ctx.out / "schedules_fits.csv", fits.to_csv(index=False))
    atomic_write_text(ctx.out / "tables.md", markdown(fits))
    figure(errors, cmp, ctx.figures / "schedules.png")
    return {"schedules_errors": errors, "schedules_compare": cmp, "schedules_fits": fits}


STUDY = Study("schedules", "VE-EI: exponential vs polynomial (EDM) schedule, exact and 1/sigma score error (Wang-He-Tao)",
              run)
