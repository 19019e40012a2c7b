r"""Study "reconstructed": the effect of each reconstructed detail's alternative on the fitted exponents.

Some details of the seed papers could not be read from their texts and were reconstructed (tagged [R]
in the research specs, listed in paper_notes.md section 2). Where two readings are plausible the
sampler has a switch. This study runs the main study's machinery (law mode on ``gauss_aniso``, N* by
the ladder search, HC3 joint fits of log N* = c + a log d + b log(1/eps)) once per value of each
switch, everything else at the sampler's tuned defaults, and reports the fitted exponents side by side
with the difference to the code's choice and its 95% interval (independent fits:
``diff -/+ t_{0.975, df} sqrt(se_1^2 + se_2^2)`` with the smaller residual df of the two, as in the
``poisson`` study's contrasts). A difference whose interval
excludes 0 means the reading changes the measured exponent on this window.

Switches (the code's choice first):

* ``gupta_cai_chen`` ``corrector``: ``ei`` (exponential-integrator ULMC) / ``rm`` (Shen-Lee step);
* ``li_jiao`` ``final``: ``nearest`` (stop at the top of the last interval) / ``paper`` (one more (11a));
* ``ddram`` ``linear``: ``relative_score`` / ``score``; ``node``: ``importance`` / ``uniform``;
* ``ddpm`` ``variance``: ``small`` (posterior) / ``large`` (beta).

Metric: annealed TV (the claims' metric; exact for ``ddpm``, Monte Carlo over internal draws for the
randomized samplers, whose quenched TV is reported beside it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from analysis import tables
from analysis.fits import fit_joint
from experiments.cache import atomic_write_text
from experiments.cells import Scan
from experiments.complexity import cost_ladder
from experiments.extra_studies import Study, run_scans
from experiments.samplers import get as get_sampler
from experiments.scaling import feasible, nstar_table
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
    "quick": dict(dims=(10, 1000), eps=(0.2, 0.1), n_draws=8, annealed_samples=4000, per_octave=2,
                  samplers=("ddpm", "ddram")),
    "default": dict(dims=(10, 1000, 100000), eps=(0.2, 0.1, 0.05, 0.02), n_draws=32, annealed_samples=20000,
                    per_octave=2, samplers=None),
    "full": dict(dims=(10, 1000, 100000, 10**7), eps=(0.2, 0.1, 0.05, 0.02, 0.01), n_draws=64,
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
        metrics = ("tv_annealed", "tv_quenched") if spec.randomized else ("tv_annealed",)
        for value in values:
            params = tuple(sorted({**spec.defaults, switch: value}.items()))
            ok = feasible(spec, costs, params)
            scans.append(Scan(study=NAME, profile=ctx.profile, sampler=sampler, variant=f"{switch}={value}",
                              family=family, params=params, costs=ok, pairs=pairs, metrics=metrics,
                              n_draws=P["n_draws"] if spec.randomized else 1, root_seed=ctx.seed,
                              annealed_samples=P["annealed_samples"], n_infeasible=len(costs) - len(ok)))
    return scans


def effects(fits: pd.DataFrame) -> pd.DataFrame:
    """Per switch and metric: each alternative's exponents minus the code's choice's, with 95% intervals."""
    rows = []
    for sampler, switch, values, _, _ in SWITCHES:
        for metric, part in fits[fits["sampler"] == sampler].groupby("metric"):
            base = part[part["variant"] == f"{switch}={values[0]}"]
            if base.empty:
                continue
            base = base.iloc[0]
            for value in values[1:]:
                alt = part[part["variant"] == f"{switch}={value}"]
                if alt.empty:
                    continue
                alt = alt.iloc[0]
                row = {"sampler": sampler, "switch": switch, "choice": values[0], "alternative": value,
                       "metric": metric}
                df = min(alt["df_resid"], base["df_resid"])
                q = stats.t.ppf(0.975, df) if df > 0 else np.nan
                for k in ("a", "b"):
                    diff = alt[k] - base[k]
                    half = q * float(np.hypot(alt[f"{k}_se"], base[f"{k}_se"]))
                    row.update({f"{k}_choice": base[k], f"{k}_alt": alt[k], f"d{k}": diff,
                                f"d{k}_lo": diff - half, f"d{k}_hi": diff + half})
                moved = [k for k in ("a", "b") if not row[f"d{k}_lo"] <= 0.0 <= row[f"d{k}_hi"]]
                row["changes"] = ("undetermined (no residual df)" if not np.isfinite(q)
                                  else ", ".join(moved) if moved else "neither")
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
        ax.set_title(f"{title} (annealed TV, 95% HC3)", fontsize="medium")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(labels)), labels, fontsize="small")
    axes[0].invert_yaxis()
    fig.suptitle("Reconstructed details: the code's choice (blue circles) against the alternative (orange squares)")
    fig.savefig(path, dpi=110)


def run(ctx):
    if ctx.profile not in PROFILES:
        raise ValueError(f"profile must be one of {sorted(PROFILES)}, got {ctx.profile!r}")
    P = PROFILES[ctx.profile]
    scans = plan(ctx, P)
    errors = run_scans(ctx, scans)
    errors["study"] = NAME
    nst = nstar_table(errors, scans)
    nst["study"] = NAME
    fits = fit_joint(nst, by=BY)
    eff = effects(fits)
    out = {"errors": errors, "nstar": nst, "fits": fits, "effects": eff}
    for name, df in out.items():
        atomic_write_text(ctx.out / f"{name}.csv", df.to_csv(index=False))
    md = ["<!-- generated by experiments.extra_studies.reconstructed from the tables; do not edit by hand -->",
          f"## Reconstructed details: fitted exponents per reading (target `{TARGET}`, profile {ctx.profile}, "
          f"seed {ctx.seed}, {P['n_draws']} internal draws)",
          "### Effect of each alternative: exponent minus the code's choice's (95% interval)",
          tables.render_table(eff, ["sampler", "switch", "choice", "alternative", "metric", "da [ci]", "db [ci]",
                                    "changes"],
                              headers={"da [ci]": "Δa [95% CI]", "db [ci]": "Δb [95% CI]"}),
          "### Joint fits", tables.fits_table(fits)]
    atomic_write_text(ctx.out / "tables.md", "\n\n".join(md) + "\n")
    figure(fits, ctx.figures / "reconstructed_exponents.png")
    return out


STUDY = Study(NAME, "reconstructed details: fitted exponents of each switch's alternative against the code's "
                    "choice (GCC corrector, Li & Jiao final level, DDRaM linear factor and node law, DDPM variance)",
              run)
