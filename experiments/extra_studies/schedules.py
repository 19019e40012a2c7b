r"""Study "schedules": Wang, He & Tao's exponential vs polynomial (EDM) variance schedules for VE-EI.

Claim (our reading [R] of Wang, He & Tao, NeurIPS 2024, arXiv 2406.12839, whose abstract [S] offers only
"perspectives on why" EDM's schedule "could be better tuned" than Song et al.'s): when the score is **well
trained** (discretisation and initialisation errors dominate) the **exponential** schedule (geometric
:math:`\hat\sigma`) is better; when the score is **less trained** (the score error dominates) the
**polynomial** EDM schedule (:math:`\rho = 7`) is better.

Measurement. The "ve_ei" sampler (experiments/samplers/ve.py) with ``schedule="exponential"`` and
``schedule="polynomial"`` (``rho=7``), the same :math:`\hat\sigma_{min} = 0.002`,
:math:`\hat\sigma_{max} = 80` (EDM's defaults, Karras et al. 2022; OU times
:math:`T = \tfrac12\log(1+80^2)`, :math:`\delta = \tfrac12\log(1+0.002^2)`) and the same number of steps N,
started from the exact law at T (no initialisation error), in exact law mode: one scan
(:class:`experiments.cells.Scan`) per (target, score condition, schedule), run by
:func:`experiments.cells.run_scan` (through :func:`experiments.extra_studies.run_scans`). Score conditions:

* ``exact``: the exact score (well trained);
* ``inv_sigma eps``: :class:`experiments.score_error.PerturbedGaussian` with the ``"inv_sigma"`` profile,
  :math:`E_{q_t}\|e_t\|^2 = \varepsilon^2/\sigma_t^2` in total over d, i.e. :math:`E\|\hat e\|^2 =
  \varepsilon^2/\hat\sigma^2` for the VE score (our emulation of the "less trained" case [R]).

Two target families: ``gauss_aniso`` (the suite's default; data scales 0.3 and 1.4) and
``gauss_multiscale`` (nine equal groups with variances :math:`10^{-5},\dots,10^{3}`, i.e. data structure
at every noise level between :math:`\hat\sigma_{min}` and :math:`\hat\sigma_{max}`, the situation a
worst-case bound over data with a finite second moment describes).

Errors: :math:`\sqrt{KL(\text{target}\,\|\,\text{output})}` (``sqrt_kl``, closed form) and the TV of the
output law (``tv_annealed``; one law, so exact up to the numerical bound ``error_bound`` of the
characteristic-function inversion) against N. The sampler is deterministic: **no sampling error**, so no
confidence interval anywhere in this study; the numbers below are exact up to that numerical bound.

Comparison per N: :math:`r_N = \log(\mathrm{err}_{poly}/\mathrm{err}_{exp})` (> 0: exponential better),
with its numerical tolerance :math:`\tau_N = \mathrm{bound}_{poly}/\mathrm{err}_{poly} +
\mathrm{bound}_{exp}/\mathrm{err}_{exp}`. Over the window of N where neither TV exceeds 0.95 (saturated
TV carries no ranking):

================  ==========================================================================
winner            rule
================  ==========================================================================
``exponential``   :math:`r_N > \tau_N` at every N of the window
``polynomial``    :math:`r_N < -\tau_N` at every N of the window
``tie``           :math:`|r_N| \le \tau_N` at every N (the curves agree to numerical precision)
``crossover``     otherwise: which schedule is better depends on N (``crossover_N``: last sign change)
================  ==========================================================================

Reported beside it (descriptive, no interval): the mean of :math:`r_N` over the window (``r_mean``), its
range (``r_min``, ``r_max``), the least-squares trend per unit log N (``r_trend``), the error ratio at the
largest N, and the ratio :math:`N^*_{poly}/N^*_{exp}` at fixed accuracies from the suite's N* table
(:func:`experiments.complexity.nstar_table`; only rows whose ``status`` is ``ok`` on both sides).

Negative controls (tests): swapping the schedule labels must flip every winner; comparing a schedule
with itself must give ``tie``.

Outputs: ``errors.csv`` (the suite's error rows plus ``base_target``, ``condition``, ``eps_score``,
``schedule``, ``N``, ``score_share``), ``nstar.csv``, ``schedules_compare.csv`` (per N),
``schedules_fits.csv`` (per target, condition, metric, with the WHT verdict), ``schedules_nstar_ratios.csv``,
``tables.md``; figure ``schedules.png``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from experiments.cache import atomic_write_text
from experiments.cells import Scan
from experiments.complexity import cost_ladder, nstar_table
from experiments.extra_studies import Study, run_scans
from experiments.score_error import ScoreErrorFamily
from experiments.studies import GaussianFamily, get_target

NAME = "schedules"
SAMPLER = "ve_ei"
SIGMA_MIN, SIGMA_MAX, RHO = 0.002, 80.0, 7.0
T_MAX = 0.5 * float(np.log1p(SIGMA_MAX**2))
DELTA = 0.5 * float(np.log1p(SIGMA_MIN**2))
SCHEDULES = ("exponential", "polynomial")
METRICS = ("sqrt_kl", "tv_annealed")
TV_SATURATED = 0.95
#: accuracies of the N* comparison (both metrics)
LEVELS = (0.2, 0.1, 0.05)
#: served to every scan only so that it runs its whole ladder (a scan stops once every served eps is met
#: twice); its N* rows are not reported
FULL_LADDER_EPS = 1e-9
#: floor of the numerical tolerance of r_N (rounding of identical computations)
ROUNDING = 1e-12

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


def condition_family(target: str, eps: float):
    base = family(target)
    return base if eps == 0 else ScoreErrorFamily(base, float(eps), profile="inv_sigma")


def plan(ctx, prof: Profile, *, targets=None, conditions=None, schedules=SCHEDULES) -> tuple[list, dict]:
    """Scans of the profile (optionally restricted) and ``{scan target name: (base target, eps_score)}``."""
    Ns = tuple(cost_ladder(prof.ladder[0], prof.ladder[1], prof.per_octave))
    pairs = tuple((prof.d, e) for e in LEVELS + (FULL_LADDER_EPS,))
    scans, names = [], {}
    for t in prof.targets if targets is None else targets:
        for e in (0.0,) + tuple(prof.eps) if conditions is None else conditions:
            fam = condition_family(t, e)
            names[fam.name] = (t, float(e))
            for s in schedules:
                params = tuple(sorted(dict(T=T_MAX, delta=DELTA, schedule=s, rho=RHO).items()))
                scans.append(Scan(study=NAME, profile=ctx.profile, sampler=SAMPLER, variant=s, family=fam,
                                  params=params, costs=Ns, pairs=pairs, metrics=METRICS, n_draws=1,
                                  root_seed=ctx.seed))
    return scans, names


def _served(scans) -> dict:
    """The eps each scan serves, without :data:`FULL_LADDER_EPS` (see :func:`nstar_table`)."""
    served = {}
    for s in scans:
        key = (s.sampler, s.variant, s.target, json.dumps(dict(s.params), sort_keys=True))
        served.setdefault(key, set()).update(p for p in s.pairs if p[1] != FULL_LADDER_EPS)
    return served


def label(errors: pd.DataFrame, names: dict) -> pd.DataFrame:
    """The study's columns on the suite's error rows: base target, condition, schedule, N, score share."""
    df = errors.copy()
    df["base_target"] = [names[t][0] for t in df["target"]]
    df["eps_score"] = [names[t][1] for t in df["target"]]
    df["condition"] = [condition_name(e) for e in df["eps_score"]]
    df["schedule"] = df["variant"]
    df["N"] = df["cost"].astype(int)
    exact = df[df["eps_score"] == 0].set_index(["base_target", "schedule", "N", "metric"])["error"]
    ref = np.array([exact.get((t, s, n, m), np.nan) for t, s, n, m in
                    zip(df["base_target"], df["schedule"], df["N"], df["metric"], strict=True)])
    df["score_share"] = 1.0 - ref / df["error"]
    return df


def compare(errors: pd.DataFrame, labels=SCHEDULES) -> pd.DataFrame:
    """Per (target, condition, metric, N): r = log(err[labels[1]] / err[labels[0]]), its numerical tolerance
    and the better schedule there.

    ``labels`` names which schedule plays "exponential" (first) and "polynomial" (second); the
    negative controls pass them swapped, or twice the same."""
    first, second = labels
    rows = []
    tv = errors[errors["metric"] == "tv_annealed"].set_index(["base_target", "condition", "N", "schedule"])["error"]
    for (target, cond, m, N), part in errors.groupby(["base_target", "condition", "metric", "N"], sort=False):
        byS = part.set_index("schedule")
        e1, e2 = float(byS.loc[first, "error"]), float(byS.loc[second, "error"])
        tol = float(byS.loc[first, "error_bound"]) / e1 + float(byS.loc[second, "error_bound"]) / e2
        tol = max(tol, ROUNDING)
        r = float(np.log(e2 / e1))
        rows.append({"target": target, "condition": cond, "eps_score": float(part["eps_score"].iloc[0]),
                     "metric": m, "N": int(N), "err_first": e1, "err_second": e2, "log_ratio": r, "tolerance": tol,
                     "saturated": max(float(tv.loc[(target, cond, N, first)]),
                                      float(tv.loc[(target, cond, N, second)])) > TV_SATURATED,
                     "better": first if r > tol else (second if r < -tol else "tie")})
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


def winner_of(r, tol, labels=SCHEDULES) -> str:
    """The window's winner from exact log ratios ``r`` and their tolerances (module docstring)."""
    r, tol = np.asarray(r, float), np.asarray(tol, float)
    if r.size == 0:
        return "undetermined"
    if np.all(np.abs(r) <= tol):
        return "tie"
    if np.all(r > tol):
        return labels[0]
    if np.all(r < -tol):
        return labels[1]
    return "crossover"


def fit_compare(cmp: pd.DataFrame, labels=SCHEDULES) -> pd.DataFrame:
    """Per (target, condition, metric): the winner over the unsaturated window and descriptive summaries."""
    rows = []
    for (target, cond, m), part in cmp.groupby(["target", "condition", "metric"], sort=False):
        part = part.sort_values("N")
        win = part[~part["saturated"]]
        lx = np.log(win["N"].to_numpy(float))
        r = win["log_ratio"].to_numpy(float)
        trend = float(np.polyfit(lx, r, 1)[0]) if len(r) >= 2 else np.nan
        rows.append({"target": target, "condition": cond, "eps_score": float(part["eps_score"].iloc[0]), "metric": m,
                     "n": len(r), "N_min": int(win["N"].min()) if len(r) else np.nan,
                     "N_max": int(win["N"].max()) if len(r) else np.nan,
                     "r_mean": float(r.mean()) if len(r) else np.nan, "r_min": float(r.min()) if len(r) else np.nan,
                     "r_max": float(r.max()) if len(r) else np.nan, "r_trend": trend,
                     "tolerance_max": float(win["tolerance"].max()) if len(r) else np.nan,
                     "winner": winner_of(r, win["tolerance"], labels),
                     "ratio_at_Nmax": float(np.exp(r[-1])) if len(r) else np.nan,
                     "crossover_N": _crossover(win["N"].to_numpy(float), r) if len(r) else np.nan})
    return pd.DataFrame(rows)


def nstar_ratios(nst: pd.DataFrame, names: dict, labels=SCHEDULES) -> pd.DataFrame:
    """N*_second / N*_first at each (target, condition, metric, eps) where both N* rows are ``ok``."""
    first, second = labels
    df = nst.assign(base_target=[names[t][0] for t in nst["target"]],
                    condition=[condition_name(names[t][1]) for t in nst["target"]])
    keys = ["base_target", "condition", "metric", "eps"]
    a = df[df["variant"] == first].set_index(keys)
    b = df[df["variant"] == second].set_index(keys)
    out = pd.merge(a[["nstar", "status"]], b[["nstar", "status"]], left_index=True, right_index=True, how="outer",
                   suffixes=("_first", "_second"))
    ok = (out["status_first"] == "ok") & (out["status_second"] == "ok")
    out["ratio"] = np.where(ok, out["nstar_second"] / out["nstar_first"], np.nan)
    return out.reset_index().rename(columns={"base_target": "target"})


def wht_verdicts(fits: pd.DataFrame, ratios: pd.DataFrame | None = None) -> pd.DataFrame:
    """The WHT conclusion per row: exact score -> exponential claimed; the largest error -> polynomial claimed."""
    out = fits.copy()
    largest = out.groupby("target")["eps_score"].transform("max")
    claimed = np.where(out["eps_score"] == 0, "exponential",
                       np.where(out["eps_score"] == largest, "polynomial", ""))
    out["claim"] = claimed
    out["agrees"] = np.where(claimed == "", "", np.where(out["winner"] == claimed, "yes",
                             np.where(out["winner"].isin(["tie", "crossover"]), out["winner"], "no")))
    if ratios is not None and len(ratios):
        for lev in LEVELS:
            sub = ratios[ratios["eps"] == lev].set_index(["target", "condition", "metric"])["ratio"]
            out[f"nstar_ratio@{lev:g}"] = [sub.get((t, c, m), np.nan) for t, c, m in
                                           zip(out["target"], out["condition"], out["metric"], strict=True)]
    return out


def figure(errors: pd.DataFrame, cmp: pd.DataFrame, path) -> None:
    from matplotlib.figure import Figure

    from analysis.figures import _colors, _save

    targets = list(dict.fromkeys(errors["base_target"]))
    conds = list(dict.fromkeys(errors["condition"]))
    fig = Figure(figsize=(12, 4.2 * len(targets)), layout="constrained")
    axes = fig.subplots(len(targets), 2, squeeze=False)
    colors = dict(zip(conds, _colors(len(conds)), strict=True))
    for row, t in zip(axes, targets, strict=True):
        ax = row[0]
        for c in conds:
            for s, style in zip(SCHEDULES, ("o-", "s--"), strict=True):
                part = errors[(errors["base_target"] == t) & (errors["condition"] == c) & (errors["schedule"] == s)
                              & (errors["metric"] == "sqrt_kl")].sort_values("N")
                ax.plot(part["N"], part["error"] ** 2, style, color=colors[c], ms=3.5, lw=1.2, label=f"{c}, {s}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (steps = score evaluations)")
        ax.set_ylabel("KL(target ‖ output)")
        ax.set_title(f"{t}: KL against N (solid: exponential, dashed: polynomial ρ=7)", fontsize="medium")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="x-small", ncol=1 + (len(conds) > 3), loc="lower left")
        ax = row[1]
        for c in conds:
            for m, style, lab in (("sqrt_kl", "o-", "√KL"), ("tv_annealed", "^:", "TV")):
                part = cmp[(cmp["target"] == t) & (cmp["condition"] == c) & (cmp["metric"] == m)].sort_values("N")
                ax.plot(part["N"], np.exp(part["log_ratio"]), style, color=colors[c], ms=3.5, lw=1.2,
                        label=f"{c}, {lab}")
        ax.axhline(1.0, color="0.3", lw=1.0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N")
        ax.set_ylabel("error(polynomial) / error(exponential)")
        ax.set_title(f"{t}: above 1 = exponential better (exact law mode)", fontsize="medium")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="x-small", ncol=1 + (len(conds) > 3), loc="best")
    _save(fig, path.with_suffix(""))


def markdown(fits: pd.DataFrame, ctx, prof: Profile) -> str:
    from analysis.tables import render_table

    parts = ["<!-- generated by experiments.extra_studies.schedules from the tables; do not edit by hand -->",
             f"#### Schedules (Wang, He & Tao): exponential vs polynomial (EDM, rho = 7) for VE-EI "
             f"(d = {prof.d}, profile {ctx.profile})",
             f"sigma_min = {SIGMA_MIN}, sigma_max = {SIGMA_MAX}, exact start at sigma_max, exact law mode (no sampling "
             "error: no confidence intervals). r = log(err_poly / err_exp) at each N of the window where neither TV "
             f"exceeds {TV_SATURATED} (> 0: exponential better). Winner: the same sign at every N of the window "
             "beyond the numerical tolerance (bound of the TV inversion), else crossover (tie: equal to numerical "
             "precision). r mean, range and trend (least squares per unit log N) are descriptive. N* ratio = "
             "N*_poly / N*_exp at the stated accuracy (n/a: a curve does not reach it on the ladder)."]
    for m, title in (("sqrt_kl", "sqrt KL(target || output)"), ("tv_annealed", "TV of the output law")):
        sub = fits[fits["metric"] == m].copy()
        sub["r_range"] = [f"[{a:.3f}, {b:.3f}]" if np.isfinite(a) else "n/a"
                          for a, b in zip(sub["r_min"], sub["r_max"], strict=True)]
        cols = ["target", "condition", "r_mean", "r_range", "r_trend", "winner", "claim", "agrees", "crossover_N",
                "ratio_at_Nmax"]
        cols += [c for c in sub.columns if c.startswith("nstar_ratio@")]
        parts.append(f"Metric {title}")
        parts.append(render_table(sub, cols, headers={"r_range": "r range", "r_trend": "r trend"}, digits=3))
    return "\n\n".join(parts) + "\n"


def run(ctx) -> dict:
    if ctx.profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {ctx.profile!r}")
    prof = PROFILES[ctx.profile]
    scans, names = plan(ctx, prof)
    errors, _ = run_scans(ctx, scans)                  # deterministic sampler: no replicate rows
    errors = label(errors, names)
    nst, _ = nstar_table(errors, None, served=_served(scans))
    cmp = compare(errors)
    ratios = nstar_ratios(nst, names)
    fits = wht_verdicts(fit_compare(cmp), ratios)
    out = {"errors": errors, "nstar": nst, "schedules_compare": cmp, "schedules_fits": fits,
           "schedules_nstar_ratios": ratios}
    for name, df in out.items():
        atomic_write_text(ctx.out / f"{name}.csv", df.to_csv(index=False))
    atomic_write_text(ctx.out / "tables.md", markdown(fits, ctx, prof))
    figure(errors, cmp, ctx.figures / "schedules.png")
    return out


STUDY = Study(NAME, "VE-EI: exponential vs polynomial (EDM) schedule, exact and 1/sigma score error (Wang-He-Tao)",
              run)
