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
  tau ~ T^{-(c1 - c0)}, far below delta, where L is about 1 / v_small): the sup of L over the path the
  sampler actually runs, the L a theorem speaks of. Verdicts use ``L_end``; the fit on ``L_delta`` is shown
  beside it.

Variants: ``theory`` (the preset with the target's L) and ``tuned`` (the same preset with L fixed to 1),
so that the effect of the PRESET (its L-dependent blocks, windows, friction...) can be told from the
effect of the TARGET (stiffness near t = 0). For samplers whose preset does not read L (ddpm, ddim) the
two variants coincide; only ``theory`` is run and the table says so.

N* (NFE) at TV <= eps (``sqrt_kl`` <= eps for the KL claim of ddpm) from experiments.complexity.nstar on
the exact law (law mode; annealed TV over internal draws for randomized samplers); fit
``log N* = c + e log L`` (analysis.fits.ols_hc3: OLS, HC3, 95% t intervals) and verdict of ``e`` against
the claim's ``L_exp`` (analysis.verdicts.verdict).

Outputs in ``ctx.out``: ``errors.csv``, ``lipschitz_nstar.csv``, ``lipschitz_fits.csv``, ``tables.md``;
figure ``nstar_vs_L.png``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from experiments.cache import atomic_write_text
from experiments.cells import Scan, code_version
from experiments.complexity import cost_ladder
from experiments.extra_studies import Study, StudyContext, run_scans
from experiments.extra_studies.rounds import (
    crossings,
    fit_power,
    smooth_ladder,
)
from experiments.samplers import get as get_sampler
from experiments.samplers._grid import DEFAULT_DELTA
from experiments.scaling import feasible
from experiments.studies import GaussianFamily

SAMPLERS = ("li_jiao", "gupta_cai_chen", "ddpm", "ddim")
V_SMALL = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003)
#: negative control: ddim on a grid UNIFORM in OU time (not refined toward the stiff end), which must
#: show a clearly positive L exponent where the log-SNR grid of the preset shows none
CONTROL = ("ddim", "control_uniform_grid", {"grid": "uniform"})


def family(v_small: float) -> GaussianFamily:
    return GaussianFamily(f"lip_v{v_small:g}", (float(v_small), 1.0), (0.5, -0.5), (0.5, 0.5),
                          f"half the coordinates N(0.5, {v_small:g}), half N(-0.5, 1): L ~ 1/{v_small:g}")


def _profile(name: str) -> dict:
    if name == "quick":
        return dict(d=1000, eps=(0.1,), v_small=(1.0, 0.3, 0.1, 0.03), n_draws=12, annealed_samples=3000,
                    per_octave=2)
    if name == "default":
        return dict(d=1000, eps=(0.1,), v_small=V_SMALL, n_draws=32, annealed_samples=10000, per_octave=3)
    if name == "full":
        return dict(d=1000, eps=(0.1, 0.05), v_small=V_SMALL, n_draws=64, annealed_samples=20000, per_octave=4)
    raise ValueError(f"profile must be one of ('quick', 'default', 'full'), got {name!r}")


def _metric(spec) -> str:
    return "sqrt_kl" if spec.claim is not None and spec.claim.metric == "kl" else "tv_annealed"


def _ladder(sampler: str, params: dict, per_octave: int) -> tuple[int, ...]:
    if sampler == "li_jiao":
        costs = smooth_ladder(48, 1 << 17)
    elif sampler == "gupta_cai_chen":
        start = int(params.get("N0", 4)) * 3          # the NFE budget must cover one step of each kind per window
        costs = cost_ladder(start, start << 10, per_octave=per_octave)
    else:
        costs = cost_ladder(4, 1 << 17, per_octave=per_octave)
    return feasible(get_sampler(sampler), costs, params)


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
                if spec.theory(d, e, 1.0) != presets["theory"]:
                    presets["tuned"] = spec.theory(d, e, 1.0)
                if name == CONTROL[0]:
                    presets[CONTROL[1]] = dict(spec.theory(d, e, L), **CONTROL[2])
                for variant, params in presets.items():
                    scans.append(Scan(study="lipschitz", profile=ctx.profile, sampler=name, variant=variant,
                                      family=fam, params=tuple(sorted(params.items())),
                                      costs=_ladder(name, params, prof["per_octave"]), pairs=((d, e),),
                                      metrics=(_metric(spec),), n_draws=prof["n_draws"] if spec.randomized else 1,
                                      root_seed=ctx.seed, annealed_samples=prof["annealed_samples"]))
    return scans


def _extra(scan, d, e, grp):
    """L of the target: at delta (the presets' value) and at the sampler's output level."""
    fam = scan.family
    target = fam.at(d)
    cost = int(grp["cost"].iloc[len(grp) // 2]) if len(grp) else scan.costs[0]
    t_end = get_sampler(scan.sampler).make(cost, **dict(scan.params)).end_time
    return {"v_small": float(fam.variances[0]), "L_delta": fam.lipschitz(DEFAULT_DELTA),
            "t_end": float(t_end), "L_end": target.lipschitz_sup(float(t_end)),
            "L_preset": float(dict(scan.params).get("lipschitz", np.nan)) if scan.sampler == "li_jiao" else np.nan}


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    from analysis.verdicts import verdict

    rows = []
    both = set(table.loc[table["variant"] == "tuned", "sampler"])
    for (sampler, variant, metric, eps), grp in table.groupby(["sampler", "variant", "metric", "eps"], sort=True):
        claim = get_sampler(sampler).claim
        e_claim = float(claim.L_exp) if claim is not None and claim.L_exp is not None else np.nan
        ok = grp[grp["crossing"] == "interpolated"]
        for reg in ("L_end", "L_delta"):
            fit = fit_power(ok[reg], ok["nstar"], names=("c", "e"))
            v = verdict(fit["e_lo"], fit["e_hi"], e_claim) if np.isfinite(e_claim) else "no claim"
            if variant == CONTROL[1]:
                v = ("control: grows" if fit["e_lo"] > 0 else "undetermined" if not np.isfinite(fit["e_lo"])
                     else "control: does not grow")
            rows.append({
                "sampler": sampler, "variant": variant, "metric": metric, "d": int(grp["d"].iloc[0]), "eps": eps,
                "regressor": reg, "c": fit["c"], "e": fit["e"], "e_se": fit["e_se"], "e_lo": fit["e_lo"],
                "e_hi": fit["e_hi"], "e_claim": e_claim, "verdict": v if reg == "L_end" else f"({v})",
                "preset_reads_L": sampler in both, "r2": fit["r2"], "n": fit["n"],
                "n_dropped": int(len(grp) - len(ok)),
                "dropped": ", ".join(sorted(set(grp.loc[grp["crossing"] != "interpolated", "crossing"]))),
                "L_min": float(ok[reg].min()) if len(ok) else np.nan,
                "L_max": float(ok[reg].max()) if len(ok) else np.nan, "reason": fit["reason"],
            })
    return pd.DataFrame(rows)


def _figure(ctx: StudyContext, table: pd.DataFrame, fits: pd.DataFrame):
    from matplotlib.figure import Figure

    styles = {"li_jiao": ("C0", "o"), "gupta_cai_chen": ("C1", "s"), "ddpm": ("C2", "^"), "ddim": ("C4", "v")}
    fig = Figure(figsize=(11.0, 4.8))
    ok = table[table["crossing"] == "interpolated"]
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
                lab += f": e = {f['e']:.2f} [{f['e_lo']:.2f}, {f['e_hi']:.2f}]"
                if np.isfinite(f["e_claim"]):
                    x0, y0 = float(g["L_end"].iloc[0]), float(g["nstar"].iloc[0])
                    xs = np.geomspace(g["L_end"].min(), g["L_end"].max(), 20)
                    ax.plot(xs, y0 * (xs / x0) ** f["e_claim"], color=color, ls="--", lw=1, alpha=0.7)
            ax.plot(g["L_end"], g["nstar"], color=color, marker=marker, label=lab)
        if variant == "theory":
            g = ok[(ok["variant"] == CONTROL[1]) & (ok["eps"] == eps0)].sort_values("L_end")
            f = fits[(fits["variant"] == CONTROL[1]) & (fits["regressor"] == "L_end") & (fits["eps"] == eps0)]
            if len(g) and len(f):
                f = f.iloc[0]
                ax.plot(g["L_end"], g["nstar"], color="gray", marker="x", ls=":",
                        label=f"ddim, uniform grid (control): e = {f['e']:.2f} [{f['e_lo']:.2f}, {f['e_hi']:.2f}]")
        ax.plot([], [], color="gray", ls="--", label="claimed slope (L_exp)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("L (sup of the score's Lipschitz constant down to the output level)")
        ax.set_ylabel("N* (score evaluations)")
        ax.set_title(f"{variant}: preset with {'the target L' if variant == 'theory' else 'L = 1'}"
                     f" (d = {int(table['d'].iloc[0])}, eps = {eps0:g})", fontsize="medium")
        ax.legend(fontsize="x-small", loc="upper left")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = ctx.figures / "nstar_vs_L.png"
    fig.savefig(path, dpi=130)
    return path


def _markdown(table: pd.DataFrame, fits: pd.DataFrame, ctx: StudyContext) -> str:
    from analysis.tables import render_table

    return "\n".join([
        f"# Study: Lipschitz dependence (profile {ctx.profile}, seed {ctx.seed}, code {code_version()})\n",
        "Fit log N* = c + e log L at fixed d and eps (HC3, 95% t intervals). Verdicts use L_end (sup of L "
        "down to the sampler's output level); the L_delta fit (in parentheses) uses the value the presets "
        "receive. 'theory': preset with the target's L; 'tuned': the same preset with L = 1 (only for presets "
        "that read L); 'control_uniform_grid': ddim on a grid uniform in OU time (negative control, must grow "
        "with L). ddpm is measured in sqrt(KL) (its claim is KL <= eps^2).\n",
        render_table(fits, ["sampler", "variant", "metric", "eps", "regressor", "e [ci]", "e_claim", "verdict",
                            "r2", "n", "n_dropped", "L_min", "L_max"], headers={"e [ci]": "e"}),
        "\n## N* at each L\n",
        render_table(table.sort_values(["sampler", "variant", "eps", "v_small"], ascending=[True, True, True, False]),
                     ["sampler", "variant", "eps", "v_small", "L_delta", "L_end", "nstar", "crossing"],
                     headers={"nstar": "N* (NFE)"}, digits=1),
    ])


def run(ctx: StudyContext) -> dict:
    scans = plan(ctx)
    errors = run_scans(ctx, scans)
    table = crossings(errors, scans, extra=_extra)
    fits = summarise(table)
    atomic_write_text(ctx.out / "errors.csv", errors.to_csv(index=False))
    atomic_write_text(ctx.out / "lipschitz_nstar.csv", table.to_csv(index=False))
    atomic_write_text(ctx.out / "lipschitz_fits.csv", fits.to_csv(index=False))
    _figure(ctx, table, fits)
    atomic_write_text(ctx.out / "tables.md", _markdown(table, fits, ctx))
    return {"errors": errors, "lipschitz_nstar": table, "lipschitz_fits": fits}


STUDY = Study("lipschitz", "N*(L) at fixed d and eps on a family whose smallest variance sets L: exponent of L "
                           "against the claims (li_jiao L^1, gupta_cai_chen L^5/3; ddpm, ddim reference)", run)
