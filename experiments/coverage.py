r"""Coverage of the suite's own intervals: the whole pipeline rerun under many independent root seeds.

For a randomized sampler, each seed's run draws its own internal randomness (R replicate groups of
Latin-hypercube draws per law), computes its errors, N* table and exponents, and reports the replicate
jackknife 95% interval of each exponent (:mod:`analysis.exponents`). Over many seeds, the intervals
should cover the pooled estimate (the mean of the seeds' estimates, which converges to the estimator's
expectation) about 95% of the time: that is what "95%" must mean. :func:`seed_runs` returns one row per
seed, so that a test or a benchmark can count.

To make many seeds affordable, the laws of all seeds at one cost come from one law-mode call with
``seeds * R`` independent groups (Python's per-step overhead is paid once per cost, not once per seed);
seed ``s`` takes groups ``s R .. (s+1) R - 1``, which are independent of every other seed's groups, exactly
as if they had been drawn in a separate run.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from experiments import _validate as v
from experiments.cells import lifted
from experiments.complexity import nstar_table
from experiments.internal import REPLICATE_GROUPS as R
from experiments.internal import LatinHypercube
from experiments.laws import gaussian_law
from experiments.replicates import replicated_error
from experiments.samplers import get as get_sampler


def seed_runs(sampler: str, family, costs, dims, eps, *, seeds: int, draws: int, params: dict | None = None,
              metric: str = "tv_annealed", n_samples: int = 4000, root: int = 0,
              keep_nstar: bool = False) -> pd.DataFrame:
    """Per-seed primary exponents (a, b with their jackknife intervals) of ``sampler`` on ``family``.

    ``draws``: internal draws per law and seed (a multiple of the replicate groups). Returns one row per seed
    with ``a``, ``a_lo``, ``a_hi``, ``b``, ``b_lo``, ``b_hi``, ``n`` (N* rows in the fit), and with ``keep_nstar``
    the seed's ok N* rows (column ``nstar_rows``, a DataFrame) for other estimators to be tried on, and its
    leave-one-group-out exponents (``a_replicates``, ``b_replicates``: arrays indexed by the left-out group)
    for paired comparisons (:func:`difference_coverage`)."""
    from analysis.exponents import fit_exponents

    spec = get_sampler(sampler)
    if not spec.randomized:
        raise ValueError(f"sampler must be randomized (coverage of replicate intervals), got {sampler!r}")
    seeds = v.positive_int("seeds", seeds)
    draws = v.positive_int("draws", draws)
    if draws % R:
        raise ValueError(f"draws must be a multiple of the {R} replicate groups, got {draws}")
    params = dict(spec.defaults if params is None else params)
    m = draws // R
    rows = {s: [] for s in range(seeds)}
    reps = {s: [] for s in range(seeds)}
    group = np.repeat(np.arange(R), m)
    for cost in costs:
        law = gaussian_law(spec.make(cost, **params), family.at(max(dims)), n_draws=seeds * draws,
                           rng=LatinHypercube(np.random.default_rng([root, int(cost)]), seeds * R))
        for s in range(seeds):
            part = slice(s * draws, (s + 1) * draws)
            one = dataclasses.replace(law, mean=law.mean[part], var=law.var[part], nfe=law.nfe[part],
                                      rounds=law.rounds[part])
            for d in dims:
                err = replicated_error(lifted(one, family.at(d).multiplicities), metric, group=group,
                                       rng=np.random.default_rng([root, s, int(cost), int(d)]), n_samples=n_samples)
                base = dict(study="coverage", sampler=sampler, variant="tuned", target=family.name, params="{}",
                            metric=metric, d=int(d), cost=int(cost))
                rows[s].append(dict(base, nfe=float(np.mean(one.nfe)), error=err.value, error_se=err.se,
                                    gate="resolved", draws=draws, seed=s, profile="coverage"))
                reps[s] += [dict(base, group=g, error=float(x)) for g, x in enumerate(err.loo)]
    served = {(sampler, "tuned", family.name, "{}"): {(d, e) for d in dims for e in eps}}
    out = []
    for s in range(seeds):
        nstar, nstar_reps = nstar_table(pd.DataFrame(rows[s]), pd.DataFrame(reps[s]), served=served)
        ex, ex_reps = fit_exponents(nstar, nstar_reps, randomized={sampler: True})
        r = ex.iloc[0]
        rec = {"seed": s, **{k: float(r[k]) for k in ("a", "a_lo", "a_hi", "b", "b_lo", "b_hi")}, "n": int(r["n"])}
        if keep_nstar:
            rec["nstar_rows"] = nstar[nstar["status"] == "ok"]
            by_group = ex_reps.sort_values("group")
            rec["a_replicates"] = by_group["a"].to_numpy(float)
            rec["b_replicates"] = by_group["b"].to_numpy(float)
        out.append(rec)
    return pd.DataFrame(out)


def coverage(runs: pd.DataFrame) -> dict:
    """Fraction of seeds whose interval covers the pooled estimate (the mean over seeds), per exponent."""
    out = {}
    for k in ("a", "b"):
        pooled = runs[k].mean()
        out[k] = float(np.mean((runs[f"{k}_lo"] <= pooled) & (pooled <= runs[f"{k}_hi"])))
        out[f"{k}_pooled"] = float(pooled)
        out[f"{k}_sd"] = float(runs[k].std(ddof=1))
        out[f"{k}_half_width"] = float(np.mean(runs[f"{k}_hi"] - runs[f"{k}_lo"]) / 2)
    return out


def difference_coverage(runs_a: pd.DataFrame, runs_b: pd.DataFrame) -> dict:
    r"""Coverage of the paired jackknife interval of the exponent differences :math:`a_A - a_B`, :math:`b_A - b_B`.

    ``runs_a``, ``runs_b``: :func:`seed_runs` of the two samplers with ``keep_nstar`` under the same root and
    the same seeds (row ``s`` of both is seed ``s``). Per seed, the interval is the one of
    :func:`analysis.compare.exponent_differences`: the difference of the estimates, and
    :func:`analysis.exponents.jackknife_interval` of the per-group differences of the leave-one-out
    exponents. Returns, per exponent ``k`` in (a, b): the fraction of seeds whose interval covers the pooled
    difference (mean over seeds) ``k``, ``k_pooled``, the seeds' sd ``k_sd``, the mean half-width
    ``k_half_width``, and the per-seed intervals (``intervals``: a DataFrame) for other readings."""
    from analysis.exponents import jackknife_interval

    if list(runs_a["seed"]) != list(runs_b["seed"]):
        raise ValueError("runs_a and runs_b must hold the same seeds in the same order")
    rows = []
    for (_, ra), (_, rb) in zip(runs_a.iterrows(), runs_b.iterrows(), strict=True):
        rec = {"seed": int(ra["seed"])}
        for k in ("a", "b"):
            pa, pb = np.asarray(ra[f"{k}_replicates"], float), np.asarray(rb[f"{k}_replicates"], float)
            if pa.size != pb.size:
                raise ValueError(f"seed {rec['seed']}: {pa.size} and {pb.size} replicate groups")
            est = float(ra[k]) - float(rb[k])
            se, lo, hi = jackknife_interval(est, pa - pb)
            rec.update({k: est, f"{k}_se": se, f"{k}_lo": lo, f"{k}_hi": hi})
        rows.append(rec)
    intervals = pd.DataFrame(rows)
    out = coverage(intervals)
    out["seeds"] = len(intervals)
    out["intervals"] = intervals
    return out
