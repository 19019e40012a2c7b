r"""The second estimator: fit the error surface itself, then convert to exponents of N*.

In the regime where the error is small it behaves like a power of the dimension and of the cost,

.. math:: \log e = c + \alpha\log d - \beta\log N \;[-\; \kappa\log\log N],

fitted by least squares over every scanned cell whose error lies in the window's accuracy range
``[eps_min / 2, eps_max]`` (cells of randomized samplers only where they are ``resolved``). Solving
:math:`e = \varepsilon` for N gives :math:`N^* \propto d^{\alpha/\beta}\varepsilon^{-1/\beta}`, so
:math:`a = \alpha/\beta`, :math:`b = 1/\beta`. It needs no interpolation between ladder points and no N*
search, and it has no log regressor to confound with log d: a claim's declared log factor in the cost,
:math:`\log^k N` in N*, appears in the error as :math:`(k/b_{claim})\log\log N` and enters as a fixed
offset (``kappa``), not as a free coefficient.

Intervals follow :mod:`analysis.exponents`: for randomized samplers the fit is redone with each
replicate group left out of every cell (``errors_replicates.csv``) and the jackknife gives a 95% t
interval; for deterministic samplers the range of the per-d slopes :math:`\beta_d` (fits of
:math:`\log e` on :math:`\log N` at each d) is carried through :math:`a = \alpha/\beta`,
:math:`b = 1/\beta` (``interval = "per-d slope range"``). Theory presets change their parameters with
(d, eps), so their cells do not lie on one surface: they are left to the N* estimator.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.exponents import KEYS, jackknife_interval, ols, registry_randomized


def _kappa(claim) -> float:
    """Coefficient of log log N in log e implied by the claim's log factors in the cost."""
    if claim is None or not claim.eps_exp:
        return 0.0
    return sum(float(f.power) for f in claim.log_factors if f.argument == "cost") / float(claim.eps_exp)


def _fit(logd, logn, loge):
    c, alpha, minus_beta = ols(loge, np.column_stack([np.ones_like(logd), logd, logn]))
    beta = -minus_beta
    return alpha, beta


def fit_surface(errors: pd.DataFrame, replicates: pd.DataFrame | None, eps_range: tuple[float, float], *,
                claims: dict | None = None, randomized: dict | None = None) -> pd.DataFrame:
    """Error-surface exponents of every tuned curve family of ``errors`` (see the module docstring)."""
    from analysis.verdicts import registry_claims

    claims = registry_claims() if claims is None else claims
    randomized = registry_randomized() if randomized is None else randomized
    lo, hi = eps_range[0] / 2.0, eps_range[1]
    keys = [k for k in KEYS if k in errors.columns]
    rows = []
    tuned = errors[errors["variant"] == "tuned"] if "variant" in errors.columns else errors
    rep_idx = None
    if replicates is not None and len(replicates):
        rep_idx = replicates.set_index(keys + ["params", "d", "cost", "group"])["error"]
    for key, part in tuned.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        ident = dict(zip(keys, key, strict=True))
        rnd = bool(randomized.get(ident["sampler"], False))
        kappa = _kappa(claims.get(ident["sampler"]))
        use = part[(part["error"] >= lo) & (part["error"] <= hi) & part["gate"].isin(["exact", "resolved"])]
        row = {**ident, "randomized": rnd, "estimator": "error surface", "n": len(use), "kappa": kappa,
               "window": f"error in [{lo:g}, {hi:g}]", "reason": ""}
        nan = dict(a=math.nan, a_lo=math.nan, a_hi=math.nan, b=math.nan, b_lo=math.nan, b_hi=math.nan,
                   alpha=math.nan, beta=math.nan, a_se=math.nan, b_se=math.nan)
        if len(use) < 4 or use["d"].nunique() < 2:
            rows.append({**row, **nan, "interval": "", "reason": "fewer than 4 cells (2 dimensions) in the window"})
            continue
        logd, logn = np.log(use["d"].to_numpy(float)), np.log(use["nfe"].to_numpy(float))
        offset = kappa * np.log(np.log(use["nfe"].to_numpy(float)))
        alpha, beta = _fit(logd, logn, np.log(use["error"].to_numpy(float)) - offset)
        row.update(alpha=alpha, beta=beta, a=alpha / beta, b=1 / beta, d_min=use["d"].min(), d_max=use["d"].max())
        if rnd:
            row["interval"] = "jackknife 95%"
            try:
                idx = pd.MultiIndex.from_frame(use[keys + ["params", "d", "cost"]])
                ra, rb = [], []
                groups = sorted(replicates["group"].unique())
                for g in groups:
                    e = rep_idx.reindex([(*t, g) for t in idx]).to_numpy(float)
                    ag, bg = _fit(logd, logn, np.log(e) - offset)
                    ra.append(ag / bg)
                    rb.append(1 / bg)
                a_se, a_lo, a_hi = jackknife_interval(row["a"], ra)
                b_se, b_lo, b_hi = jackknife_interval(row["b"], rb)
                row.update(a_se=a_se, a_lo=a_lo, a_hi=a_hi, b_se=b_se, b_lo=b_lo, b_hi=b_hi)
            except (KeyError, AttributeError, TypeError):
                row.update(a_se=math.nan, a_lo=math.nan, a_hi=math.nan, b_se=math.nan, b_lo=math.nan,
                           b_hi=math.nan, reason="no replicate errors")
        else:
            row.update(interval="per-d slope range", a_se=math.nan, b_se=math.nan)
            betas = []
            for _, at_d in use.groupby("d"):
                if len(at_d) >= 2:
                    x = np.log(at_d["nfe"].to_numpy(float))
                    y = np.log(at_d["error"].to_numpy(float)) - kappa * np.log(x)
                    betas.append(-ols(y, np.column_stack([np.ones_like(x), x]))[1])
            if betas and min(betas) > 0:
                b_min, b_max = min(betas), max(betas)
                row.update(a_lo=min(alpha / b_min, alpha / b_max), a_hi=max(alpha / b_min, alpha / b_max),
                           b_lo=1 / b_max, b_hi=1 / b_min)
            else:
                row.update(a_lo=math.nan, a_hi=math.nan, b_lo=math.nan, b_hi=math.nan,
                           reason="no per-d slope (need 2 cells at one d)")
        rows.append(row)
    return pd.DataFrame(rows)


def agreement(primary: pd.DataFrame, surface: pd.DataFrame) -> pd.DataFrame:
    """Where the N* fit and the surface fit both have intervals: whether those intervals overlap, per exponent."""
    keys = [k for k in KEYS if k in primary.columns and k in surface.columns]
    m = primary.merge(surface, on=keys, suffixes=("", "_surface"))
    out = []
    for _, r in m.iterrows():
        rec = {k: r[k] for k in keys}
        for x in ("a", "b"):
            lo1, hi1, lo2, hi2 = r[f"{x}_lo"], r[f"{x}_hi"], r[f"{x}_lo_surface"], r[f"{x}_hi_surface"]
            if not all(np.isfinite([lo1, hi1, lo2, hi2])):
                rec[f"agree_{x}"] = "n/a"
            else:
                rec[f"agree_{x}"] = "agree" if (lo1 <= hi2 and lo2 <= hi1) else "disagree"
            rec[x], rec[f"{x}_surface"] = r[x], r[f"{x}_surface"]
        out.append(rec)
    return pd.DataFrame(out)
