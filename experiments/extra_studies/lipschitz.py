r"""Study "lipschitz": how N*(L) grows with the score's Lipschitz constant L at fixed d and eps.

Claims (registry ``Claim.L_exp``): Li & Jiao ``li_jiao`` N ~ L^1 (ICLR reading, T ~ L d^{1/3} eps^{-2/3});
Gupta, Cai & Chen ``gupta_cai_chen`` N ~ L^{5/3}; ``ddpm`` (Jiao-Zhou-Li, KL) N ~ L^1 on the L = O(1)
branch; ``ddim`` has no L claim (reference only).

Target family: a grouped Gaussian with half the coordinates of variance ``v_small`` (mean 0.5) and half
of variance 1 (mean -0.5), ``v_small`` in {1, 0.3, 0.1, 0.03, 0.01, 0.003}. The score's Lipschitz constant
at OU time t is ``max_g 1 / var_g(t)``; L is computed by the target's ``lipschitz_sup``, never by hand:

* ``L_delta = lipschitz_sup(DEFAULT_DELTA)``: the value handed to every theory preset (as the main study
  does), about 1 / (v_small + 2 delta);
* ``L_end = lipschitz_sup(t_end)`` at the sampler's own output level (Li & Jiao stop at
  tau ~ T^{-(c1 - c0)}, far below delta, where L is about 1 / v_small), read at the first scanned cost that
  meets eps (the run that achieves it): the sup of L over the path the sampler actually runs, the L a
  theorem speaks of. Verdicts use ``L_end``; the fit on ``L_delta`` is shown beside it.

Variants: ``theory`` (the preset with the target's L) and ``tuned`` (the same preset with L fixed to 1),
so that the effect of the PRESET (its L-dependent blocks, windows, friction...) can be told from the
effect of the TARGET (stiffness near t = 0). A preset reads L when it differs between L = 1 and L = 2
(:func:`reads_L`); at v_small = 1 (L = 1) the tuned run is the theory run (the cache returns its laws). For
samplers whose preset does not read L (ddpm, ddim) the two variants coincide; only ``theory`` is run and
the table says so.

N* (NFE) at TV <= eps (``sqrt_kl`` <= eps for the KL claim of ddpm) in law mode, through the main study's
pipeline (:func:`experiments.extra_studies.run_scans`, :func:`experiments.complexity.nstar_table`): the
randomized samplers' internal draws come in 8 replicate groups of Latin hypercubes and the cells that
decide an N* refine their draws until they pass the gate of :mod:`experiments.cells`; an N* whose status
is not ``ok`` (below/above the ladder, unresolved, ambiguous) is left out of the fit and counted.

Fit ``log N* = c + e log L`` over the ok rows of one (sampler, variant, eps), with an interval that says
what it is (:func:`experiments.extra_studies.rounds.power_fit`):

* randomized samplers (``li_jiao``, ``gupta_cai_chen``): **jackknife 95%** over the replicate groups, the
  fit redone on the N* recomputed with each group left out of every cell (``nstar_replicates.csv``); it
  carries the internal draws of every cell, not the misfit of the power law over the window (the local
  slopes, reported beside, show that);
* deterministic samplers (``ddpm``, ``ddim``): no sampling error, so no confidence interval: the
  **range of local slopes** between successive values of L.

Verdict of ``e`` against the claim's ``L_exp`` by the suite's rule (:func:`analysis.verdicts.verdict`:
violated / consistent / loose / inconclusive), with the one-sided allowance for the claim's hidden logs
that depend on L (a factor ``log^k(cost)``: ``L_exp k / (ln N* - k)``, averaged over the window; factors
in d or eps do not move with L) and the margin ``max(1/12, ladder resolution)`` (the eps-exponent's
margin of :mod:`analysis.verdicts`; ladder resolution: half the median ladder step bracketing an N* of
the window, over the window's log-range of L). Negative control: ddim on a grid UNIFORM in OU time must
grow with L (every local slope above 0), where the preset's log-SNR grid does not.

Outputs in ``ctx.out``: ``errors.csv``, ``errors_replicates.csv``, ``lipschitz_nstar.csv`` (N* with status
and L per (sampler, variant, v_small)), ``nstar_replicates.csv``, ``lipschitz_fits.csv`` (every fit, both
regressors), ``verdicts.csv`` (the L_end fits with their verdicts), ``tables.md``; figure ``nstar_vs_L.png``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.verdicts import verdict
from experiments.cache import atomic_write_text
from experiments.cells import Scan
from experiments.complexity import cost_ladder
from experiments.extra_studies import Study, StudyContext, run_scans
from experiments.extra_studies.rounds import crossing_table, power_fit, replicate_matrix, smooth_ladder, verdict_margin
from experiments.samplers import get as get_sampler
from experiments.samplers._grid import DEFAULT_DELTA
from experiments.scaling import feasible
from experiments.studies import GaussianFamily

SAMPLERS = ("li_jiao", "gupta_cai_chen", "ddpm", "ddim")
V_SMALL = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
#: negative control: ddim on a grid UNIFORM in OU time (not refined toward the stiff end), which must
#: show a clearly positive L exponent where the log-SNR grid of the preset shows none
CONTROL = ("ddim", "control_uniform_grid", {"grid": "uniform"})
#: smallest verdict margin of the L-exponent (the eps-exponent's margin of analysis.verdicts)
E_MARGIN = 1 / 12
REGRESSORS = ("L_end", "L_delta")


def family(v_small: float) -> GaussianFamily:
    return GaussianFamily(f"lip_v{v_small:g}", (float(v_small), 1.0), (0.5, -0.5), (0.5, 0.5),
                          f"half the coordinates N(0.5, {v_small:g}), half N(-0.5, 1): L ~ 1/{v_small:g}")


def _profile(name: str) -> dict:
    if name == "quick":
        # eps = 0.2 (default and full: 0.1 and below): N* about halves at every L, which keeps the profile under a
        # minute; the claims' L exponents do not depend on eps
        return dict(d=1000, eps=(0.2,), v_small=(1.0, 0.3, 0.1, 0.03), n_draws=32, max_draws=128, precision=0.15,
                    annealed_samples=4000, per_octave=2)
    if name == "default":
        return dict(d=1000, eps=(0.1,), v_small=V_SMALL, n_draws=64, max_draws=512, precision=0.08,
                    annealed_samples=10000, per_octave=3)
    if name == "full":
        return dict(d=1000, eps=(0.1, 0.05), v_small=V_SMALL, n_draws=128, max_draws=4096, precision=0.03,
                    annealed_samples=40000, per_octave=4)
    raise ValueError(f"profile must be one of ('quick', 'default', 'full'), got {name!r}")


def _metric(spec) -> str:
    return "sqrt_kl" if spec.claim is not None and spec.claim.metric == "kl" else "tv_annealed"


def _ladder(sampler: str, params: dict, per_octave: int) -> tuple[tuple[int, ...], int]:
    if sampler == "li_jiao":
        costs = smooth_ladder(48, 1 << 17)
    elif sampler == "gupta_cai_chen":
        start = int(params.get("N0", 4)) * 3          # the NFE budget must cover one step of each kind per window
        costs = cost_ladder(start, start << 10, per_octave=per_octave)
    else:
        costs = cost_ladder(16, 1 << 17, per_octave=per_octave)     # every N* of ddpm/ddim here is above 100
    ok = feasible(get_sampler(sampler), costs, params)
    return ok, len(costs) - len(ok)


def reads_L(spec, d, eps) -> bool:
    """Whether the sampler's theory preset depends on L (probed at L = 1 and L = 2, away from float noise)."""
    return spec.theory is not None and spec.theory(d, eps, 2.0) != spec.theory(d, eps, 1.0)


def plan(ctx: StudyContext) -> list[Scan]:
    prof = _profile(ctx.profile)
    d = prof["d"]
    scans = []
    for v in prof["v_small"]:
        fam = family(v)
        L = fam.lipschitz(DEFAULT_DELTA)
        for name in SAMPLERS:
            spec = get_sampler(name)
            for e in prof["eps"]:
                presets = {"theory": spec.theory(d, e, L)}
                if reads_L(spec, d, e):
                    # at v_small = 1 (L = 1) this is the theory run itself (same parameters: the law is read
                    # back from the cache); it stays in the tuned family, whatever the float rounding of L
                    presets["tuned"] = spec.theory(d, e, 1.0)
                if name == CONTROL[0]:
                    presets[CONTROL[1]] = dict(spec.theory(d, e, L), **CONTROL[2])
                for variant, params in presets.items():
                    costs, n_out = _ladder(name, params, prof["per_octave"])
                    scans.append(Scan(study="lipschitz", profile=ctx.profile, sampler=name, variant=variant,
                                      family=fam, params=tuple(sorted(params.items())), costs=costs, pairs=((d, e),),
                                      metrics=(_metric(spec),), n_draws=prof["n_draws"] if spec.randomized else 1,
                                      root_seed=ctx.seed, annealed_samples=prof["annealed_samples"],
                                      max_draws=prof["max_draws"] if spec.randomized else 0,
                                      precision=prof["precision"], n_infeasible=n_out))
    return scans


def _extra(scan, rec, grp):
    """L of the target: at delta (the presets' value) and at the sampler's output level, read at the first
    scanned cost that meets eps (the middle of the scanned ladder when N* is not interpolated)."""
    fam = scan.family
    target = fam.at(int(rec["d"]))
    nfe = grp["nfe"].to_numpy(float)
    if rec["crossing"] == "interpolated":
        cost = int(grp["cost"].iloc[min(int(np.searchsorted(nfe, rec["nstar"])), len(grp) - 1)])
    else:
        cost = int(grp["cost"].iloc[len(grp) // 2]) if len(grp) else scan.costs[0]
    t_end = get_sampler(scan.sampler).make(cost, **dict(scan.params)).end_time
    return {"v_small": float(fam.variances[0]), "L_delta": fam.lipschitz(DEFAULT_DELTA),
            "t_end": float(t_end), "L_end": target.lipschitz_sup(float(t_end)),
            "L_preset": float(dict(scan.params).get("lipschitz", np.nan)) if scan.sampler == "li_jiao" else np.nan}


def log_allowance_L(claim, nstar) -> float:
    """One-sided allowance of the claim's hidden logs for the L-exponent: a factor log^k(cost) turns
    N = C L^e log^k N into a local exponent e / (1 - k / ln N), i.e. adds e k / (ln N - k) (infinite where
    ln N <= k + 1/2); factors in d, d/eps, 1/eps do not move with L. Averaged over the window's N*."""
    n = np.asarray(nstar, float)
    if claim is None or claim.L_exp is None or n.size == 0:
        return math.nan
    add = np.zeros(n.size)
    for f in claim.log_factors:
        if f.argument == "cost":
            k, ln = float(f.power), np.log(n)
            add = add + np.where(ln > k + 0.5, float(claim.L_exp) * k / np.maximum(ln - k, 1e-300), np.inf)
    return float(np.mean(add))


def summarise(table: pd.DataFrame, reps: pd.DataFrame) -> pd.DataFrame:
    """One row per (sampler, variant, metric, eps, regressor): the L-exponent with its interval and verdict."""
    rows = []
    both = set(table.loc[table["variant"] == "tuned", "sampler"])
    for (sampler, variant, metric, eps), grp in table.groupby(["sampler", "variant", "metric", "eps"], sort=True):
        spec = get_sampler(sampler)
        claim = spec.claim
        e_claim = float(claim.L_exp) if claim is not None and claim.L_exp is not None else np.nan
        ok = grp[grp["status"] == "ok"].reset_index(drop=True)
        rp = reps[(reps["sampler"] == sampler) & (reps["variant"] == variant) & (reps["metric"] == metric)
                  & (reps["eps"] == eps)] if len(reps) else reps
        Q = replicate_matrix(ok, rp, "nstar", keys=("target", "d", "eps", "params")) if spec.randomized else None
        excluded = grp[grp["status"] != "ok"]["status"].value_counts().sort_index()
        for reg in REGRESSORS:
            fit = power_fit(ok[reg], ok["nstar"], Q, randomized=spec.randomized, names=("c", "e"))
            allowance = log_allowance_L(claim, ok["nstar"]) if np.isfinite(e_claim) else np.nan
            margin = verdict_margin(ok[reg], ok["log_step"], E_MARGIN)
            if variant == CONTROL[1]:
                v = ("undetermined" if not np.isfinite(fit["e_lo"]) else
                     "control: grows" if fit["e_lo"] > 0 else "control: does not grow")
            elif np.isfinite(e_claim):
                v = verdict(fit["e_lo"], fit["e_hi"], e_claim, allowance, margin)
            else:
                v = "no claim"
            rows.append({
                "sampler": sampler, "variant": variant, "metric": metric, "d": int(grp["d"].iloc[0]), "eps": eps,
                "regressor": reg, "randomized": spec.randomized, "interval": fit["interval"], "c": fit["c"],
                "e": fit["e"], "e_se": fit["e_se"], "e_lo": fit["e_lo"], "e_hi": fit["e_hi"],
                "e_local_min": fit["e_local_min"], "e_local_max": fit["e_local_max"], "e_claim": e_claim,
                "allowance": allowance, "margin": margin, "verdict": v if reg == "L_end" else f"({v})",
                "preset_reads_L": sampler in both, "n": fit["n"], "n_replicate_dropped": fit["n_replicate_dropped"],
                "n_excluded": int(excluded.sum()), "excluded": ", ".join(f"{n} {s}" for s, n in excluded.items()),
                "draws_max": int(grp["draws"].max()),
                "L_min": float(ok[reg].min()) if len(ok) else np.nan,
                "L_max": float(ok[reg].max()) if len(ok) else np.nan, "reason": fit["reason"],
            })
    return pd.DataFrame(rows)


def _figure(ctx: StudyContext, table: pd.DataFrame, fits: pd.DataFrame):
    from matplotlib.figure import Figure

    from analysis.figures import _save

    styles = {"li_jiao": ("C0", "o"), "gupta_cai_chen": ("C1", "s"), "ddpm": ("C2", "^"), "ddim": ("C4", "v")}
    fig = Figure(figsize=(12.0, 5.2), layout="constrained")
    ok = table[table["status"] == "ok"]
    eps0 = float(table["eps"].max())
    for i, variant in enumerate(("theory", "tuned")):
        ax = fig.add_subplot(1, 2, i + 1)
        for sampler in SAMPLERS:
            g = ok[(ok["sampler"] == sampler) & (ok["eps"] == eps0)]
            label_extra = ""
            if variant == "tuned" and sampler not in set(ok.loc[ok["variant"] == "tuned", "sampler"]):
                g = g[g["variant"] == "theory"]            # preset ignores L: the same runs
                label_extra = " (preset ignores L)"
            else:
                g = g[g["variant"] == variant]
            if g.empty:
                continue
            g = g.sort_values("L_end")
            color, marker = styles[sampler]
            f = fits[(fits["sampler"] == sampler) & (fits["variant"] == g["variant"].iloc[0])
                     & (fits["regressor"] == "L_end") & (fits["eps"] == eps0)]
            lab = sampler + label_extra
            if len(f):
                f = f.iloc[0]
                kind = "jk 95%" if f["interval"] == "jackknife 95%" else "slope range"
                lab += f": e = {f['e']:.2f} [{f['e_lo']:.2f}, {f['e_hi']:.2f}] ({kind})"
                if np.isfinite(f["e_claim"]):
                    x0, y0 = float(g["L_end"].iloc[0]), float(g["nstar"].iloc[0])
                    xs = np.geomspace(g["L_end"].min(), g["L_end"].max(), 20)
                    ax.plot(xs, y0 * (xs / x0) ** f["e_claim"], color=color, ls="--", lw=1, alpha=0.7)
            yerr = 2 * g["nstar"] * np.nan_to_num(g["nstar_jk_se"].to_numpy(float))
            ax.errorbar(g["L_end"], g["nstar"], yerr=yerr, color=color, marker=marker, capsize=2, label=lab)
        if variant == "theory":
            g = ok[(ok["variant"] == CONTROL[1]) & (ok["eps"] == eps0)].sort_values("L_end")
            f = fits[(fits["variant"] == CONTROL[1]) & (fits["regressor"] == "L_end") & (fits["eps"] == eps0)]
            if len(g) and len(f):
                f = f.iloc[0]
                ax.plot(g["L_end"], g["nstar"], color="gray", marker="x", ls=":",
                        label=f"ddim, uniform grid (control): e = {f['e']:.2f} [{f['e_lo']:.2f}, {f['e_hi']:.2f}]"
                              " (slope range)")
        ax.plot([], [], color="gray", ls="--", label="claimed slope (L_exp)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("L (sup of the score's Lipschitz constant down to the output level)")
        ax.set_ylabel("N* (score evaluations; ±2 jackknife s.e.)")
        ax.set_title(f"{variant}: preset with {'the target L' if variant == 'theory' else 'L = 1'}"
                     f" (d = {int(table['d'].iloc[0])}, eps = {eps0:g})", fontsize="medium")
        ax.legend(fontsize="x-small", loc="upper left")
        ax.grid(True, which="both", alpha=0.3)
    return _save(fig, ctx.figures / "nstar_vs_L")


def _markdown(table: pd.DataFrame, fits: pd.DataFrame, ctx: StudyContext) -> str:
    from analysis.tables import fmt_float, render_table

    prof = _profile(ctx.profile)
    fits = fits.assign(e_local=[f"[{fmt_float(a)}, {fmt_float(b)}]" for a, b in
                                zip(fits["e_local_min"], fits["e_local_max"], strict=True)],
                       kind=fits["interval"].map({"jackknife 95%": "jk 95%", "local-slope range": "slope range"}))
    return "\n\n".join([
        "<!-- generated by experiments.extra_studies.lipschitz from the tables; do not edit by hand -->",
        f"#### Lipschitz dependence: N* against L at d = {prof['d']} (profile {ctx.profile}, seed {ctx.seed})",
        f"Fit log N* = c + e log L over the ok N* of each (sampler, variant, eps). Randomized samplers: "
        f"{prof['n_draws']} internal draws per law in 8 replicate groups, refined up to {prof['max_draws']} where a "
        f"deciding cell needs them (precision {prof['precision']:g}); interval: jackknife 95% over the groups (not "
        "the misfit of the power law: see the local slopes). Deterministic samplers (ddpm, ddim): no confidence "
        "interval, the range of local slopes instead. Verdicts (violated / consistent / loose / inconclusive, "
        "analysis.verdicts rule; allowance for the claim's log^k(cost) factor; margin max(1/12, ladder "
        "resolution)) use L_end (sup of L down to the sampler's output level); the L_delta fit (in parentheses) "
        "uses the value the presets receive. 'theory': preset with the target's L; 'tuned': the same preset with "
        "L = 1 (only for presets that read L); 'control_uniform_grid': ddim on a grid uniform in OU time "
        "(negative control, must grow with L). ddpm is measured in sqrt(KL) (its claim is KL <= eps^2).",
        render_table(fits, ["sampler", "variant", "metric", "eps", "regressor", "e [ci]", "kind", "e_local", "e_claim",
                            "allowance", "margin", "verdict", "n", "excluded", "draws_max", "L_min", "L_max"],
                     headers={"e [ci]": "e", "kind": "interval", "e_local": "local slopes", "allowance": "+ logs",
                              "draws_max": "most draws"}),
        "N* at each L (status: only ok rows enter the fits; se log N*: jackknife over replicate groups)",
        render_table(table.sort_values(["sampler", "variant", "eps", "v_small"], ascending=[True, True, True, False]),
                     ["sampler", "variant", "eps", "v_small", "L_delta", "L_end", "nstar", "nstar_jk_se", "status",
                      "draws"],
                     headers={"nstar": "N* (NFE)", "nstar_jk_se": "se log N*"}, digits=1,
                     formats={"nstar_jk_se": lambda x: fmt_float(x, 3), "v_small": lambda x: f"{float(x):g}"}),
    ]) + "\n"


def run(ctx: StudyContext) -> dict:
    scans = plan(ctx)
    errors, replicates = run_scans(ctx, scans)
    table, table_reps = crossing_table(errors, replicates, scans, extra=_extra)
    fits = summarise(table, table_reps)
    ver = fits[fits["regressor"] == "L_end"].reset_index(drop=True)
    out = {"errors": errors, "errors_replicates": replicates, "lipschitz_nstar": table,
           "nstar_replicates": table_reps, "lipschitz_fits": fits, "verdicts": ver}
    for name, df in out.items():
        atomic_write_text(ctx.out / f"{name}.csv", df.to_csv(index=False))
    _figure(ctx, table, fits)
    atomic_write_text(ctx.out / "tables.md", _markdown(table, fits, ctx))
    return out


STUDY = Study("lipschitz", "N*(L) at fixed d and eps on a family whose smallest variance sets L: exponent of L "
                           "against the claims (li_jiao L^1, gupta_cai_chen L^5/3; ddpm, ddim reference)", run)
