r"""Paired comparisons of two randomized samplers: exponent differences and N* ratios with jackknife intervals.

Both samplers' exponents come with replicate values :math:`a_{(-r)}` (the fit with replicate group r of
internal draws left out of every cell, :mod:`analysis.exponents`). The difference
:math:`\Delta a = a_A - a_B` is recomputed per left-out group, :math:`\Delta a_{(-r)} = a_{A(-r)} - a_{B(-r)}`,
and the jackknife of those values gives its 95% t interval; it is valid whether or not the two
samplers' draws are correlated (here they are independent: different samplers draw different internal
randomness). The same is done for :math:`\log(N^*_A/N^*_B)` at each (d, eps) where both are ``ok``.

:func:`decide` turns the d-exponent difference into a sentence: A scales better in d when the whole
interval of :math:`\Delta a` is below 0, worse when it is above, and otherwise the data cannot decide,
with the half-width that would be needed to decide at the observed difference.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.exponents import jackknife_interval

PAIRS = (("li_jiao", "gupta_cai_chen"),)


def exponent_differences(exponents: pd.DataFrame, reps: pd.DataFrame, a: str, b: str, *,
                         metric: str = "tv_annealed") -> pd.DataFrame:
    """Differences of the d- and eps-exponents of samplers ``a`` and ``b`` per (study, variant, target)."""
    rows = []
    ex = exponents[(exponents["metric"] == metric) & exponents["sampler"].isin([a, b])]
    for (study, variant, target), part in ex.groupby(["study", "variant", "target"], sort=True):
        if set(part["sampler"]) != {a, b}:
            continue
        ra = part[part["sampler"] == a].iloc[0]
        rb = part[part["sampler"] == b].iloc[0]
        row = {"study": study, "variant": variant, "target": target, "metric": metric, "sampler_a": a,
               "sampler_b": b}
        sel = (reps["study"] == study) & (reps["variant"] == variant) & (reps["target"] == target) & (
            reps["metric"] == metric) if len(reps) else None
        for x, name in (("a", "d"), ("b", "eps")):
            est = float(ra[x]) - float(rb[x])
            if sel is not None:
                pa = reps[sel & (reps["sampler"] == a)].set_index("group")[x]
                pb = reps[sel & (reps["sampler"] == b)].set_index("group")[x]
                common = pa.index.intersection(pb.index)
                se, lo, hi = jackknife_interval(est, (pa[common] - pb[common]).to_numpy(float))
            else:
                se = lo = hi = math.nan
            row.update({f"delta_{name}": est, f"delta_{name}_se": se, f"delta_{name}_lo": lo,
                        f"delta_{name}_hi": hi, f"{name}_exp_a": float(ra[x]), f"{name}_exp_b": float(rb[x])})
        row["draws_a"], row["draws_b"] = ra.get("draws_max", math.nan), rb.get("draws_max", math.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def nstar_ratios(nstar: pd.DataFrame, nstar_reps: pd.DataFrame, a: str, b: str, *,
                 metric: str = "tv_annealed") -> pd.DataFrame:
    """N*_a / N*_b at each (variant, target, d, eps) where both are ok, with a jackknife 95% interval."""
    keys = ["study", "variant", "target", "d", "eps"]
    ns = nstar[(nstar["metric"] == metric) & (nstar["status"] == "ok")]
    A = ns[ns["sampler"] == a].set_index(keys)
    B = ns[ns["sampler"] == b].set_index(keys)
    common = A.index.intersection(B.index)
    rows = []
    reps = nstar_reps[nstar_reps["metric"] == metric] if len(nstar_reps) else nstar_reps
    for idx in common:
        la, lb = math.log(A.loc[idx, "nstar"]), math.log(B.loc[idx, "nstar"])
        rec = dict(zip(keys, idx, strict=True))
        sel_ok = len(reps) > 0
        if sel_ok:
            m = np.ones(len(reps), dtype=bool)
            for k, val in rec.items():
                m &= (reps[k] == val).to_numpy()
            part = reps[m]
            ga = part[part["sampler"] == a].set_index("group")
            gb = part[part["sampler"] == b].set_index("group")
            g = ga.index.intersection(gb.index)
            ok = (ga.loc[g, "crossing"] == "interpolated") & (gb.loc[g, "crossing"] == "interpolated")
            if len(g) and ok.all():
                vals = np.log(ga.loc[g, "nstar"].to_numpy(float)) - np.log(gb.loc[g, "nstar"].to_numpy(float))
                se, lo, hi = jackknife_interval(la - lb, vals)
            else:
                se = lo = hi = math.nan
        else:
            se = lo = hi = math.nan
        rows.append({**rec, "metric": metric, "sampler_a": a, "sampler_b": b, "nstar_a": math.exp(la),
                     "nstar_b": math.exp(lb), "ratio": math.exp(la - lb), "ratio_lo": math.exp(lo),
                     "ratio_hi": math.exp(hi), "log_ratio_se": se})
    return pd.DataFrame(rows)


def decide(row) -> str:
    """One sentence: which sampler scales better in d, with the interval, or why the data cannot decide."""
    a, b = row["sampler_a"], row["sampler_b"]
    est, lo, hi = row["delta_d"], row["delta_d_lo"], row["delta_d_hi"]
    if not all(np.isfinite([est, lo, hi])):
        return f"{a} against {b}: no interval (too few resolved points)"
    text = f"{est:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    if hi < 0:
        return f"{a} scales better in d than {b}: its d-exponent is lower by {-est:.2f} (difference {text})"
    if lo > 0:
        return f"{b} scales better in d than {a}: its d-exponent is lower by {est:.2f} (difference {text})"
    need = abs(est) if est != 0 else math.nan
    return (f"the data cannot decide which of {a} and {b} scales better in d: difference {text}; deciding at "
            f"this difference needs an interval half-width below {need:.2f} (now {(hi - lo) / 2:.2f})")
