r"""Exponent fits of the iteration count N*(d, eps), read from the tidy ``nstar.csv`` table.

The model is the log-log regression

.. math::
   \log N^* = c + a \log d + b \log(1/\varepsilon) \;[+\; g \log\log(d/\varepsilon)],

fitted by ordinary least squares (statsmodels) with heteroskedasticity-robust standard errors
(``cov_type="HC3"``) and 95% intervals from Student's t with the residual degrees of freedom
(``use_t=True``: with a few dozen points the normal quantile would under-cover). A claim
``N* <= C d^{a_claim} (1/eps)^{b_claim}`` is then compared with the intervals of ``a`` and ``b`` in
:mod:`analysis.verdicts`.

Only rows whose ``crossing`` is ``"interpolated"`` and whose ``nstar`` is finite and positive enter a
fit: ``below_grid`` (the cheapest cost already reached eps) and ``above_grid`` (the largest did not)
carry no number, only a bound, and are counted in ``n_dropped`` with the reasons in ``dropped``.
Rows with ``monotone == False`` are kept (the search used the last crossing) and counted in
``n_nonmonotone``.

Degenerate inputs give NaN, never a made-up number, and a ``reason``:

* a coefficient whose regressor takes one value (a single d, a single eps) is not identifiable;
* with no residual degrees of freedom (n points <= p parameters, e.g. fewer than 3 points for a
  slope) the coefficients may be computable but their intervals are not;
* a point of leverage 1 makes HC3 undefined (division by 1 - h).

=================  ==========================================================================
column             meaning
=================  ==========================================================================
``a``, ``b``       exponents of d and of 1/eps; ``*_se`` robust s.e., ``*_lo``/``*_hi`` 95% CI
``g``              coefficient of log log(d/eps) (``log_term=True`` only)
``cov_ab``         robust covariance of (a, b), for contrasts such as b - 2a
``df_resid``       residual degrees of freedom (t quantile of the intervals)
``resid_sd``       residual standard deviation of log N* (natural log)
``window``         the d and eps ranges actually used
=================  ==========================================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import statsmodels.api as sm

#: columns that identify one curve family (used when present in the table)
GROUP_COLUMNS = ("study", "sampler", "variant", "target", "metric")
#: confidence level of every interval
LEVEL = 0.95
_LEVERAGE_TOL = 1e-9


def _group_columns(df: pd.DataFrame, by: Sequence[str] | None) -> list[str]:
    if by is not None:
        missing = [c for c in by if c not in df.columns]
        if missing:
            raise ValueError(f"by must name columns of the table; missing {missing}")
        return list(by)
    return [c for c in GROUP_COLUMNS if c in df.columns]


def _groups(df: pd.DataFrame, keys: list[str]):
    """``(key tuple, sub-table)`` pairs, sorted by key; one pair ``((), df)`` when ``keys`` is empty."""
    if not keys:
        yield (), df
        return
    for key, part in df.groupby(keys, sort=True, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), part


def _require(df: pd.DataFrame, columns: Sequence[str], name: str = "df") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{name} must have columns {list(columns)}; missing {missing}")


def _in_range(values: pd.Series, bounds) -> pd.Series:
    if bounds is None:
        return pd.Series(True, index=values.index)
    lo, hi = bounds
    keep = pd.Series(True, index=values.index)
    if lo is not None:
        keep &= values >= lo
    if hi is not None:
        keep &= values <= hi
    return keep


def clean(df: pd.DataFrame, *, window: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``df`` into rows usable for a fit and a per-row record of why the others were dropped.

    ``window`` is ``None`` or a dict with optional keys ``"d"`` and ``"eps"``, each a pair
    ``(lo, hi)`` (inclusive, ``None`` for open ends). Returns ``(kept, dropped)`` where ``dropped``
    has a ``drop_reason`` column.
    """
    _require(df, ("d", "eps", "nstar"))
    if window is not None:
        unknown = set(window) - {"d", "eps"}
        if unknown:
            raise ValueError(f"window keys must be 'd' and/or 'eps', got {sorted(unknown)}")
    # positional masks throughout, so that duplicate row labels cannot mix rows up
    reason = np.full(len(df), "", dtype=object)
    nstar = pd.to_numeric(df["nstar"], errors="coerce").to_numpy(float)
    if "crossing" in df.columns:
        crossing = df["crossing"].astype(str).to_numpy()
        bad = crossing != "interpolated"
        reason[bad] = crossing[bad]
    with np.errstate(invalid="ignore"):
        usable = np.isfinite(nstar) & (nstar > 0)
    reason[(reason == "") & ~usable] = "nstar not finite"
    if window is not None:
        inside = (_in_range(df["d"], window.get("d")) & _in_range(df["eps"], window.get("eps"))).to_numpy(bool)
        reason[(reason == "") & ~inside] = "outside window"
    keep = reason == ""
    dropped = df[~keep].copy()
    dropped["drop_reason"] = reason[~keep]
    return df[keep].copy(), dropped


def _count_false(values: pd.Series) -> int:
    """Number of entries equal to False (bool or its CSV spelling); NaN counts as unknown, not False."""
    return int(sum(str(v).strip().lower() in ("false", "0") for v in values))


def _describe_drops(dropped: pd.DataFrame) -> str:
    if dropped.empty:
        return ""
    counts = dropped["drop_reason"].value_counts().sort_index()
    return ", ".join(f"{n} {r}" for r, n in counts.items())


def _window_text(d: np.ndarray, eps: np.ndarray) -> str:
    if len(d) == 0:
        return "no points"
    return (
        f"d in [{np.min(d):g}, {np.max(d):g}] ({len(np.unique(d))} values); "
        f"eps in [{np.min(eps):g}, {np.max(eps):g}] ({len(np.unique(eps))} values)"
    )


def ols_hc3(y: np.ndarray, X: np.ndarray, names: Sequence[str]) -> dict:
    """OLS of ``y`` on the columns of ``X`` (first column the intercept) with HC3 intervals.

    Returns a dict: for each name ``n`` the keys ``n``, ``n_se``, ``n_lo``, ``n_hi``; plus ``cov``
    (the robust covariance matrix, NaN when undefined), ``df_resid``, ``r2``, ``resid_sd`` and
    ``reason`` (empty when everything is defined). Columns of ``X`` that are constant (other than
    the intercept) are not identifiable: their coefficients are NaN.
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    n, p = X.shape
    out: dict = {}
    reasons: list[str] = []
    for name in names:
        out.update({name: np.nan, f"{name}_se": np.nan, f"{name}_lo": np.nan, f"{name}_hi": np.nan})
    out.update(cov=np.full((p, p), np.nan), df_resid=np.nan, r2=np.nan, resid_sd=np.nan)
    if n == 0:
        out["reason"] = "no usable points"
        return out
    ident = [0] + [j for j in range(1, p) if np.ptp(X[:, j]) > 0]
    for j in range(1, p):
        if j not in ident:
            reasons.append(f"{names[j]} not identifiable (one value of its regressor)")
    q = len(ident)
    if n < q:
        reasons.insert(0, f"{n} point(s) for {q} parameter(s): not determined")
        out["reason"] = "; ".join(reasons)
        return out
    Xi = X[:, ident]
    if np.linalg.matrix_rank(Xi) < q:
        reasons.insert(0, "regressors collinear over the window: not determined")
        out["reason"] = "; ".join(reasons)
        return out
    model = sm.OLS(y, Xi)
    df_resid = n - q
    if df_resid < 1:
        res = model.fit()
        for k, j in enumerate(ident):
            out[names[j]] = float(res.params[k])
        out["df_resid"] = 0
        reasons.insert(0, f"{n} points for {q} parameters: exact fit, no interval")
        out["reason"] = "; ".join(reasons)
        return out
    # HC3 divides each squared residual by (1 - h_ii)^2: undefined at leverage 1
    hat = np.einsum("ij,ji->i", Xi, np.linalg.pinv(Xi))
    if np.max(hat) > 1 - _LEVERAGE_TOL:
        res = model.fit()
        for k, j in enumerate(ident):
            out[names[j]] = float(res.params[k])
        out["df_resid"] = df_resid
        reasons.insert(0, "a point has leverage 1: HC3 interval undefined")
        out["reason"] = "; ".join(reasons)
        return out
    res = model.fit(cov_type="HC3", use_t=True)
    ci = np.asarray(res.conf_int(alpha=1 - LEVEL))
    cov = np.asarray(res.cov_params())
    full = np.full((p, p), np.nan)
    for k, j in enumerate(ident):
        out[names[j]] = float(res.params[k])
        out[f"{names[j]}_se"] = float(np.sqrt(cov[k, k]))
        out[f"{names[j]}_lo"], out[f"{names[j]}_hi"] = float(ci[k, 0]), float(ci[k, 1])
        for m, jj in enumerate(ident):
            full[j, jj] = cov[k, m]
    ssr = float(np.sum(res.resid**2))
    tss = float(np.sum((y - y.mean()) ** 2))
    out.update(
        cov=full,
        df_resid=df_resid,
        r2=1.0 - ssr / tss if tss > 0 else np.nan,
        resid_sd=float(np.sqrt(ssr / df_resid)),
    )
    out["reason"] = "; ".join(reasons)
    return out


def fit_joint(
    df: pd.DataFrame,
    *,
    log_term: bool = False,
    window: dict | None = None,
    by: Sequence[str] | None = None,
) -> pd.DataFrame:
    r"""Fit log N* = c + a log d + b log(1/eps) (+ g log log(d/eps)) per group of curves.

    Parameters
    ----------
    df : nstar table (columns ``d``, ``eps``, ``nstar``, optionally ``crossing``, ``monotone``
        and the group columns).
    log_term : add the regressor log log(d/eps), a stand-in for the claims' polylog factors.
    window : restrict the fit to ``{"d": (lo, hi), "eps": (lo, hi)}`` (inclusive; either key
        optional, ``None`` for an open end).
    by : group columns; default: those of ``GROUP_COLUMNS`` present in ``df``.

    Returns one row per group: the group keys, ``a``, ``b``, ``c`` (and ``g``) with ``_se``,
    ``_lo``, ``_hi``, ``cov_ab``, ``n``, ``n_dropped``, ``dropped``, ``n_nonmonotone``,
    ``df_resid``, ``r2``, ``resid_sd``, ``d_min``, ``d_max``, ``eps_min``, ``eps_max``,
    ``window``, ``model`` and ``reason`` (empty when the fit is fully determined).
    """
    keys = _group_columns(df, by)
    names = ["c", "a", "b"] + (["g"] if log_term else [])
    rows = []
    for key, group in _groups(df, keys):
        part, drops = clean(group, window=window)
        d = part["d"].to_numpy(float)
        eps = part["eps"].to_numpy(float)
        y = np.log(part["nstar"].to_numpy(float))
        cols = [np.ones_like(d), np.log(d), np.log(1.0 / eps)]
        if log_term:
            cols.append(np.log(np.log(d / eps)))
        X = np.column_stack(cols) if len(d) else np.zeros((0, len(names)))
        fit = ols_hc3(y, X, names)
        row = dict(zip(keys, key, strict=True))
        for name in names:
            for suffix in ("", "_se", "_lo", "_hi"):
                row[name + suffix] = fit[name + suffix]
        row["cov_ab"] = fit["cov"][1, 2]
        row.update(
            n=len(d),
            n_dropped=len(drops),
            dropped=_describe_drops(drops),
            n_nonmonotone=_count_false(part["monotone"]) if "monotone" in part else 0,
            df_resid=fit["df_resid"],
            r2=fit["r2"],
            resid_sd=fit["resid_sd"],
            d_min=np.min(d) if len(d) else np.nan,
            d_max=np.max(d) if len(d) else np.nan,
            eps_min=np.min(eps) if len(d) else np.nan,
            eps_max=np.max(eps) if len(d) else np.nan,
            window=_window_text(d, eps),
            model="log N* = c + a log d + b log(1/eps)" + (" + g log log(d/eps)" if log_term else ""),
            reason=fit["reason"],
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _fit_slices(df: pd.DataFrame, *, fixed: str, x: str, by, window) -> pd.DataFrame:
    keys = _group_columns(df, by)
    slope = "b" if x == "eps" else "a"
    rows = []
    for key, group in _groups(df, keys + [fixed]):
        part, drops = clean(group, window=window)
        xs = part[x].to_numpy(float)
        xs = np.log(1.0 / xs) if x == "eps" else np.log(xs)
        y = np.log(part["nstar"].to_numpy(float))
        X = np.column_stack([np.ones_like(xs), xs]) if len(xs) else np.zeros((0, 2))
        fit = ols_hc3(y, X, ["c", slope])
        row = dict(zip(keys + [fixed], key, strict=True))
        for suffix in ("", "_se", "_lo", "_hi"):
            row[slope + suffix] = fit[slope + suffix]
        values = part[x].to_numpy(float)
        row.update(
            n=len(xs),
            n_dropped=len(drops),
            dropped=_describe_drops(drops),
            df_resid=fit["df_resid"],
            r2=fit["r2"],
            resid_sd=fit["resid_sd"],
            range=f"{x} in [{np.min(values):g}, {np.max(values):g}]" if len(values) else "no points",
            reason=fit["reason"],
        )
        rows.append(row)
    return pd.DataFrame(rows)


def fit_fixed_d(df: pd.DataFrame, *, by: Sequence[str] | None = None, window: dict | None = None) -> pd.DataFrame:
    """Slope ``b`` of log N* against log(1/eps) at each fixed d (one row per group and d)."""
    return _fit_slices(df, fixed="d", x="eps", by=by, window=window)


def fit_fixed_eps(df: pd.DataFrame, *, by: Sequence[str] | None = None, window: dict | None = None) -> pd.DataFrame:
    """Slope ``a`` of log N* against log d at each fixed eps (one row per group and eps)."""
    return _fit_slices(df, fixed="eps", x="d", by=by, window=window)


def local_slopes(df: pd.DataFrame, *, by: Sequence[str] | None = None) -> pd.DataFrame:
    r"""Successive log-log slopes, as SciML's pairwise order estimates.

    Along d at fixed eps: ``(log N*_{j+1} - log N*_j) / (log d_{j+1} - log d_j)``; along eps at
    fixed d: the same against log(1/eps). Several rows at the same (d, eps) (seeds) are combined
    by the mean of log N* (geometric mean). Returns columns: group keys, ``direction``
    (``"d"`` or ``"eps"``), ``fixed`` (the value of the other variable: eps for direction "d", d for direction "eps"),
    ``x_lo``, ``x_hi``, ``x_mid`` (pair ends and geometric midpoint, in units of d or of 1/eps),
    ``slope``.
    """
    keys = _group_columns(df, by)
    kept, _ = clean(df)
    kept = kept.assign(_logn=np.log(kept["nstar"].astype(float)))
    cell = kept.groupby(keys + ["d", "eps"], sort=True, dropna=False)["_logn"].mean().reset_index()
    rows = []
    for direction, fixed, x in (("d", "eps", "d"), ("eps", "d", "eps")):
        for key, part in cell.groupby(keys + [fixed], sort=True, dropna=False):
            key = key if isinstance(key, tuple) else (key,)
            xv = part[x].to_numpy(float)
            lx = np.log(xv) if x == "d" else np.log(1.0 / xv)
            order = np.argsort(lx)
            lx, ly = lx[order], part["_logn"].to_numpy(float)[order]
            for j in range(len(lx) - 1):
                if lx[j + 1] == lx[j]:
                    continue
                row = dict(zip(keys + [fixed], key, strict=True))
                del row[fixed]
                row.update(
                    direction=direction,
                    fixed=float(key[-1]),
                    x_lo=float(np.exp(lx[j])),
                    x_hi=float(np.exp(lx[j + 1])),
                    x_mid=float(np.exp(0.5 * (lx[j] + lx[j + 1]))),
                    slope=float((ly[j + 1] - ly[j]) / (lx[j + 1] - lx[j])),
                )
                rows.append(row)
    columns = keys + ["direction", "fixed", "x_lo", "x_hi", "x_mid", "slope"]
    return pd.DataFrame(rows, columns=columns)
