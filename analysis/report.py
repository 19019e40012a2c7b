"""Turn a study's CSV tables into exponents, verdicts, comparisons, markdown tables and figures
(never re-runs a sampler).

Reads from a results folder ``errors.csv`` and ``nstar.csv`` (and, for randomized samplers,
``errors_replicates.csv`` and ``nstar_replicates.csv``: the same with each replicate group of internal
draws left out) and writes beside them:

=========================  ==================================================================================
``exponents.csv``          primary estimator: power-law fit of N*; jackknife 95% intervals (randomized
                           samplers) or the local-slope range of the d/eps^r structure fit (deterministic)
``exponent_replicates.csv`` the primary fit with each replicate group left out (randomized samplers)
``surface.csv``            second estimator: the error surface log e = c + alpha log d - beta log N
``verdicts.csv``           each estimate against its claim: margin, allowance for the claim's logs, outcome
                           (column ``estimator``: "N* power law" is primary, "error surface" the check)
``agreement.csv``          whether the two estimators' intervals overlap
``decisive.csv``           Li & Jiao against Gupta, Cai & Chen: exponent differences with jackknife intervals
``comparisons.csv``        N* ratios at equal (d, eps) for the pairs in :data:`COMPARISONS`
``tables.md``              the markdown tables included by paper_notes.md
=========================  ==================================================================================

Command line: ``python -m analysis.report [--out DIR] [--figures DIR] [--quick | --full]`` is
``python -m experiments.scaling report``: it rebuilds these tables, the figures and the generated blocks of
README.md and paper_notes.md from an existing run's tables (after checking that the folder holds one run's
complete output set), without running a sampler.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import compare, tables
from analysis.exponents import fit_exponents
from analysis.surface import agreement, fit_surface
from analysis.verdicts import compare_at_equal_eps, verdicts
from experiments.cache import atomic_write_text

#: pairs compared at equal eps as d grows (numerator, denominator)
COMPARISONS = (("li_jiao", "gupta_cai_chen"), ("li_jiao", "ddpm"), ("gupta_cai_chen", "ddpm"))
#: the file names this module writes (a reader never sees a mix of two runs: see experiments.outputs)
TABLES = ("exponents", "exponent_replicates", "surface", "verdicts", "agreement", "decisive", "comparisons", "ratios")


def _source(results: Path, name: str) -> Path:
    """``results/name`` after checking that ``results`` is one complete output set that lists the file (a
    folder without a manifest, e.g. the staging folder of the report command, is read as it is)."""
    from experiments.outputs import require_complete, require_in_set

    require_complete(results, unmanaged_ok=True)
    require_in_set(results, name)
    return Path(results) / name


def _read(results: Path, name: str) -> pd.DataFrame | None:
    p = _source(results, f"{name}.csv")
    return pd.read_csv(p) if p.exists() and p.stat().st_size > 1 else None


def half_ladder_step(errors: pd.DataFrame) -> float:
    """Half the median spacing of successive ladder costs, in log NFE (the ladder resolution of N*)."""
    steps = []
    for _, g in errors.groupby(["sampler", "variant", "params", "metric", "d"]):
        x = np.log(np.sort(g["nfe"].unique()))
        steps += list(np.diff(x))
    return 0.5 * float(np.median(steps)) if steps else math.log(2) / 4


def analyse(results: Path) -> dict[str, pd.DataFrame]:
    results = Path(results)
    errors = pd.read_csv(_source(results, "errors.csv"))
    nstar = pd.read_csv(_source(results, "nstar.csv"))
    err_reps, ns_reps = _read(results, "errors_replicates"), _read(results, "nstar_replicates")
    exps, exp_reps = fit_exponents(nstar, ns_reps)
    eps_range = (float(nstar["eps"].min()), float(nstar["eps"].max()))
    surface = fit_surface(errors, err_reps, eps_range)
    half = half_ladder_step(errors)
    v = pd.concat([verdicts(exps, nstar, half_step=half), verdicts(surface, nstar, half_step=half)],
                  ignore_index=True) if len(surface) else verdicts(exps, nstar, half_step=half)
    out = {"exponents": exps, "exponent_replicates": exp_reps, "surface": surface, "verdicts": v,
           "agreement": agreement(exps, surface) if len(surface) else pd.DataFrame()}
    decisive = []
    for a, b in compare.PAIRS:
        if {a, b} <= set(exps["sampler"]):
            decisive.append(compare.exponent_differences(exps, exp_reps, a, b))
    dec = pd.concat(decisive, ignore_index=True) if decisive else pd.DataFrame()
    if len(dec):
        dec["answer"] = [compare.decide(r) for _, r in dec.iterrows()]
    out["decisive"] = dec
    cmps = []
    present = set(nstar["sampler"])
    for a, b in COMPARISONS:
        if a in present and b in present:
            cmps.append(compare_at_equal_eps(nstar, a, b))
    out["comparisons"] = pd.concat(cmps, ignore_index=True) if cmps else pd.DataFrame()
    ratios = []
    for a, b in compare.PAIRS:
        if a in present and b in present and ns_reps is not None:
            ratios.append(compare.nstar_ratios(nstar, ns_reps, a, b))
    out["ratios"] = pd.concat(ratios, ignore_index=True) if ratios else pd.DataFrame()
    return out


def markdown(parts: dict[str, pd.DataFrame], meta: str = "") -> str:
    blocks = [f"<!-- generated by analysis.report from the result tables; do not edit by hand -->{meta}"]
    v = parts["verdicts"]
    primary = v[v["estimator"] == "N* power law"]
    blocks += ["### Verdicts against the claims (primary estimator: N* power law)",
               tables.RULE_NOTE, tables.verdicts_table(primary)]
    blocks += ["### Exponents (primary estimator)", tables.exponents_table(parts["exponents"])]
    if len(parts.get("decisive", ())):
        blocks += ["### Li & Jiao against Gupta, Cai & Chen (paired jackknife over replicate groups)",
                   tables.decisive_table(parts["decisive"])]
        blocks += ["\n".join(f"* {t}: {s}." for t, s in zip(parts["decisive"]["variant"] + " variant, " +
                                                             parts["decisive"]["target"],
                                                             parts["decisive"]["answer"], strict=True))]
    if len(parts.get("ratios", ())):
        blocks += ["### N*(li_jiao) / N*(gupta_cai_chen) with jackknife 95% intervals",
                   tables.ratio_table(parts["ratios"])]
    surface = v[v["estimator"] == "error surface"]
    if len(surface):
        blocks += ["### Second estimator: the error surface (tuned variants)", tables.verdicts_table(surface)]
    if len(parts.get("agreement", ())):
        blocks += ["### Do the two estimators agree? (overlap of their intervals)",
                   tables.agreement_table(parts["agreement"])]
    structure = primary[primary["claim_on_structure"].notna()] if "claim_on_structure" in primary else primary.iloc[:0]
    if len(structure):
        blocks += ["### Structure: deterministic samplers on product targets (N* depends on d/ε^r only)",
                   tables.structure_table(structure)]
    if len(parts["comparisons"]):
        for (a, b), grp in parts["comparisons"].groupby(["sampler_a", "sampler_b"], sort=True):
            blocks += [f"### N*({a}) / N*({b}) at equal eps", tables.comparison_table(grp)]
    return "\n\n".join(blocks) + "\n"


def write_report(results, figures, *, diagnostics: bool = False, progress=None, formats=None) -> list[Path]:
    """Write the analysis tables and ``tables.md`` into ``results`` and the figures into ``figures`` (in
    ``formats``, default :data:`analysis.figures.FORMATS`)."""
    from analysis import figures as figs

    results, figures = Path(results), Path(figures)
    parts = analyse(results)
    for name, df in parts.items():
        atomic_write_text(results / f"{name}.csv", df.to_csv(index=False))
    atomic_write_text(results / "tables.md", markdown(parts))
    return figs.make_all(results, figures, diagnostics=diagnostics, progress=progress,
                         formats=figs.FORMATS if formats is None else tuple(formats))


def main(argv=None) -> int:
    """``python -m analysis.report``: the ``report`` command of experiments.scaling (see the module docstring)."""
    import sys

    from experiments.cli import report_command

    return report_command(sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    import sys

    sys.exit(main())
