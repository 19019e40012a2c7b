r"""Study "reconstructed": the effect of each reconstructed detail's alternative on the fitted exponents.

Some details of the seed papers could not be read from their texts and were reconstructed (tagged [R]
in the sampler docstrings, listed in paper_notes.md section 2). Where two readings are plausible the
sampler has a switch. This study runs the main study's machinery (law mode on ``gauss_aniso``, N* by
the ladder search, the primary power-law fit of log N* = c + a log d + b log(1/eps)) once per value of
each switch, everything else at the sampler's tuned defaults, and reports the fitted exponents side by
side with the difference to the code's choice.

**Common random numbers.** The readings of a randomized sampler are compared on the *same* internal
draws: the draws' seed depends on the sampler, target and cost but not on the switch
(:func:`experiments.internal.block_seed`), and the draw count is fixed (no adaptive refinement, which
could give the two readings different draw counts at one cost). The difference of exponents is then
recomputed with each replicate group left out of both readings, and the paired jackknife gives its 95%
interval (:func:`analysis.compare.exponent_differences`): noise common to both readings cancels, so a
difference whose interval excludes 0 is an effect of the reading, not of the seed (column ``detected``). An
effect "changes" an exponent only when it is larger than the verdict margin (1/24 for d, 1/12 for eps):
for a randomized sampler when its whole interval lies beyond the margin, for a deterministic one (whose
difference is exact, no interval) when the difference does.

Switches (the code's choice first):

* ``gupta_cai_chen`` ``corrector``: ``ei`` (exponential-integrator ULMC) / ``rm`` (Shen-Lee step);
* ``li_jiao`` ``final``: ``nearest`` (stop at the top of the last interval) / ``paper`` (one more (11a));
* ``ddram`` ``linear``: ``relative_score`` / ``score``; ``node``: ``importance`` / ``uniform``;
* ``ddpm`` ``variance``: ``small`` (posterior) / ``large`` (beta).

Metric: annealed TV (the claims' metric; exact for ``ddpm``, Monte Carlo over internal draws for the
randomized samplers, whose mean conditional sqrt(KL), an upper proxy, is reported beside it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis import tables
from analysis.compare import exponent_differences
from analysis.verdicts import MARGIN
from experiments.cache import atomic_write_text
from experiments.cells import Scan
from experiments.complexity import cost_ladder
from experiments.extra_studies import Study, analyse_scans, run_scans
from experiments.samplers import get as get_sampler
from experiments.scaling import feasible
from experiments.studies import get_target

NAME = "reconstructed"
TARGET = "gauss_aniso"

#: (sampler, switch, values with the code's choice first, ladder (start, stop), ladder multiple)
SWITCHES = (
    ("gupta_cai_chen", "corrector", ("ei", "rm"), (16, 2**15), 1),
    ("li_jiao", "final", ("nearest", "paper"), (40, 2**12), 10),
    ("ddram", "linear", ("relative_score", "score"), (8, 2**12), 1),
    ("ddram", "node", ("importance", "uniform"), (8, 2**12), 1),
    ("ddpm", "variance", ("small", "large"), (8, 2**15), 1),
)

PROFILES = {
    "quick": dict(dims=(10, 1000), eps=(0.2, 0.1), n_draws=32, precision=0.15, annealed_samples=4000, per_octave=2,
                  samplers=("ddpm", "ddram")),
    # draws and precision as the main study's first level (experiments.studies): a fixed count, so that both
    # readings keep the same draws at every cost; a cell that misses the precision is unresolved
    "default": dict(dims=(10, 1000, 100000), eps=(0.2, 0.1, 0.05, 0.02), n_draws=256, precision=0.08,
                    annealed_samples=10000,
                    per_octave=2, samplers=None),
    "full": dict(dims=(10, 1000, 100000, 10**7), eps=(0.2, 0.1, 0.05, 0.02, 0.01), n_draws=1024, precision=0.03,
                 annealed_samples=40000, per_octave=3, samplers=None),
}
BY = ["sampler", "variant", "target", "metric"]


def plan(ctx, P) -> list[Scan]:
    family = get_target(TARGET)
    pairs = tuple((d, e) for d in P["dims"] for e in P["eps"])
    scans = []
    for sampler, switch, values, (start, stop), multiple in SWITCHES:
        if P["samplers"] is not None and sampler not in P["samplers"]:
            continue
        spec = get_sampler(sampler)
        costs = tuple(cost_ladder(start, stop, per_octave=P["per_octave"], multiple=multiple))
        metrics = ("tv_annealed", "sqrt_kl") if spec.randomized else ("tv_annealed",)
        for value in values:
            params = tuple(sorted({**spec.defaults, switch: value}.items()))
            ok = feasible(spec, costs, params)
            # a fixed draw count (max_draws = n_draws): both readings keep the same draws at every cost
            scans.append(Scan(study=NAME, profile=ctx.profile, sampler=sampler, variant=f"{switch}={value}",
                              family=family, params=params, costs=ok, pairs=pairs, metrics=metrics,
                              n_draws=P["n_draws"] if spec.randomized else 1, precision=P["precision"],
                              root_seed=ctx.seed,
                              annealed_samples=P["annealed_samples"], n_infeasible=len(costs) - len(ok)))
    return scans


def effects(exps: pd.DataFrame, exp_reps: pd.DataFrame) -> pd.DataFrame:
    """Per switch and metric: each alternative's exponents minus the code's choice's (paired jackknife 95%
    interval for randomized samplers on common draws; exact for deterministic ones)."""
    rows = []
    for sampler, switch, values, _, _ in SWITCHES:
        part = exps[exps["sampler"] == sampler]
        for metric in sorted(part["metric"].unique()):
            choice = f"{switch}={values[0]}"
            for value in values[1:]:
                alt = f"{switch}={value}"
                sub = part[(part["metric"] == metric) & part["variant"].isin([choice, alt])]
                if set(sub["variant"]) != {choice, alt}:
                    continue
                row = {"sampler": sampler, "switch": switch, "choice": values[0], "alternative": value,
                       "metric": metric}
                ra, rb = (sub[sub["variant"] == v].iloc[0] for v in (alt, choice))
                if bool(ra["randomized"]):
                    # exponent_differences pairs two "samplers": relabel the readings as such
                    ex2 = sub.assign(sampler=sub["variant"], variant="paired", study=NAME)
                    if len(exp_reps):
                        rp = exp_reps[(exp_reps["sampler"] == sampler) & (exp_reps["metric"] == metric)
                                      & exp_reps["variant"].isin([choice, alt])]
                        rp = rp.assign(sampler=rp["variant"], variant="paired", study=NAME)
                    else:                     # no replicate exponents (too few ok N*): no interval
                        rp = pd.DataFrame(columns=["study", "sampler", "variant", "target", "metric", "group", "a",
                                                   "b"])
                    d = exponent_differences(ex2, rp, alt, choice, metric=metric).iloc[0]
                    for k, name in (("a", "d"), ("b", "eps")):
                        row.update({f"{k}_choice": rb[k], f"{k}_alt": ra[k], f"d{k}": d[f"delta_{name}"],
                                    f"d{k}_lo": d[f"delta_{name}_lo"], f"d{k}_hi": d[f"delta_{name}_hi"]})
                    # detected: the interval excludes 0; changes: it lies beyond the verdict margin on one side
                    detected = [k for k in ("a", "b") if np.isfinite(row[f"d{k}_lo"])
                                and not row[f"d{k}_lo"] <= 0.0 <= row[f"d{k}_hi"]]
                    moved = [k for k in detected if row[f"d{k}_lo"] > float(MARGIN[k])
                             or row[f"d{k}_hi"] < -float(MARGIN[k])]
                    row["interval"] = "paired jackknife 95% (common draws)"
                    if not np.isfinite(row["da_lo"]):
                        detected = moved = ["undetermined"]
                        row["interval"] = "no interval (too few ok N* for replicate fits)"
                else:
                    for k in ("a", "b"):
                        diff = float(ra[k]) - float(rb[k])
                        row.update({f"{k}_choice": rb[k], f"{k}_alt": ra[k], f"d{k}": diff, f"d{k}_lo": np.nan,
                                    f"d{k}_hi": np.nan})
                    moved = [k for k in ("a", "b") if abs(row[f"d{k}"]) > float(MARGIN[k])]
                    detected = [k for k in ("a", "b") if row[f"d{k}"] != 0.0]
                    row["interval"] = "exact (deterministic): compared with the verdict margin"
                row["detected"] = ", ".join(detected) if detected else "neither"
                row["changes"] = ", ".join(moved) if moved else "neither"
                rows.append(row)
    return pd.DataFrame(rows)


def figure(fits: pd.DataFrame, path) -> None:
    part = fits[fits["metric"] == "tv_annealed"].sort_values(["sampler", "variant"])
    fig = Figure(figsize=(11.0, 0.45 * len(part) + 2.0), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    labels = [f"{r.sampler}: {r.variant}" for r in part.itertuples()]
    for ax, k, title in ((axes[0], "a", "exponent a of d"), (axes[1], "b", "exponent b of 1/ε")):
        for y, r in enumerate(part.itertuples()):
            est, lo, hi = getattr(r, k), getattr(r, f"{k}_lo"), getattr(r, f"{k}_hi")
            first = any(r.variant == f"{sw}={vals[0]}" for s, sw, vals, _, _ in SWITCHES if s == r.sampler)
            ax.errorbar([est], [y], xerr=[[est - lo], [hi - est]], fmt="o" if first else "s", capsize=3,
                        color="tab:blue" if first else "tab:orange")
        ax.set_title(f"{title} (annealed TV; jackknife 95% or local-slope range)", fontsize="medium")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels, fontsize="small")
    axes[0].invert_yaxis()
    fig.suptitle("Reconstructed details: the code's choice (blue circles) against the alternative (orange squares)")
    from analysis.figures import _save

    _save(fig, path.with_suffix(""))


def run(ctx):
    if ctx.profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {ctx.profile!r}")
    P = PROFILES[ctx.profile]
    scans = plan(ctx, P)
    errors, replicates = run_scans(ctx, scans)
    nst, nst_reps, exps, exp_reps, ver = analyse_scans(errors, replicates, scans)
    eff = effects(exps, exp_reps)
    out = {"errors": errors, "errors_replicates": replicates, "nstar": nst, "nstar_replicates": nst_reps,
           "exponents": exps, "exponent_replicates": exp_reps, "effects": eff}
    for name, df in out.items():
        atomic_write_text(ctx.out / f"{name}.csv", df.to_csv(index=False))
    md = ["<!-- generated by experiments.extra_studies.reconstructed from the tables; do not edit by hand -->",
          f"#### Reconstructed details: fitted exponents per reading (target `{TARGET}`, profile {ctx.profile}, "
          f"seed {ctx.seed}, {P['n_draws']} internal draws shared by the readings)",
          "Effect of each alternative: exponent minus the code's choice's",
          tables.render_table(eff, ["sampler", "switch", "choice", "alternative", "metric", "da", "da_lo", "da_hi",
                                    "db", "db_lo", "db_hi", "detected", "changes", "interval"],
                              headers={"da": "Δa", "da_lo": "lo", "da_hi": "hi", "db": "Δb", "db_lo": "lo ",
                                       "db_hi": "hi ", "changes": "changes"}),
          "Exponents per reading (primary estimator)", tables.exponents_table(exps)]
    atomic_write_text(ctx.out / "tables.md", "\n\n".join(md) + "\n")
    figure(exps, ctx.figures / "reconstructed_exponents.png")
    return out


STUDY = Study(NAME, "reconstructed details: fitted exponents of each switch's alternative against the code's "
                    "choice (GCC corrector, Li & Jiao final level, DDRaM linear factor and node law, DDPM variance)",
              run)
