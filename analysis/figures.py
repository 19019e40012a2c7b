"""Figures from the tidy result tables (matplotlib, Agg canvas; no pyplot global state).

Panel helpers take ``(ax, df, ...)`` with ``df`` already restricted to one curve family (one
sampler, variant, target and metric) and return ``ax``; :func:`make_all` reads ``errors.csv`` and
``nstar.csv`` from a results directory and writes one PNG per family:

* ``nstar__<family>.png``: N* against d at each eps (left) and against 1/eps at each d (right),
  log-log, with the claimed slopes as dashed guides anchored at the first point of each line;
* ``error_vs_nfe__<family>.png``: error against score evaluations per run, one colour per d (one
  line per parameter set when a ``params`` column distinguishes several, as the theory variant does), with
  error bars of +-2 Monte Carlo standard errors and the eps levels as dotted lines;
* ``tv_quenched_vs_annealed__<family>.png``: the ratio quenched / annealed TV against NFE, one
  line per d, paired at equal (d, cost, seed); the ratio is >= 1 by convexity.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogFormatter

from analysis.fits import GROUP_COLUMNS, clean, fit_joint
from analysis.verdicts import claimed_exponents

METRIC_LABELS = {
    "tv_annealed": "annealed TV",
    "tv_quenched": "quenched TV",
    "kl": "KL (nats)",
    "sqrt_kl": "sqrt(KL) (nats$^{1/2}$)",
    "w2": "W2 (data units)",
}
_CMAP = "viridis"
_DPI = 130


def _colors(n: int):
    cmap = colormaps[_CMAP]
    return [cmap(x) for x in np.linspace(0.0, 0.85, n)]


def _plain_log_labels(axis):
    """Label log ticks as plain numbers (60, 200) rather than 6x10^1 when the range is short."""
    lo, hi = axis.get_view_interval()
    if hi / lo < 1e4:
        axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def _legend(ax, handles=None, title=None, *, outside: bool = False):
    handles = handles if handles is not None else ax.get_legend_handles_labels()[0]
    if outside or len(handles) > 7:
        ax.legend(handles=handles, title=title, fontsize="x-small", title_fontsize="x-small",
                  loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    else:
        ax.legend(handles=handles, title=title, fontsize="small", title_fontsize="small", loc="best",
                  framealpha=0.8)


def _fmt_num(x: float) -> str:
    """Compact label: powers of ten >= 1000 as 10^k, otherwise 3 significant digits."""
    x = float(x)
    if x >= 1000 and x == round(x):
        k = np.log10(x)
        if abs(k - round(k)) < 1e-12:
            return f"$10^{{{int(round(k))}}}$"
    return f"{x:.3g}"


def _fmt_exp(x: float) -> str:
    """An exponent as a small fraction when it is one (1/3, 2/3, ...), else 3 significant digits."""
    frac = Fraction(float(x)).limit_denominator(12)
    if abs(float(frac) - x) < 1e-9:
        return str(frac)
    return f"{x:.3g}"


def _nstar_panel(ax, nstar, *, x: str, line: str, slope: float | None, fit=None, fit_key=None):
    """N* against ``x`` (``"d"`` or ``"eps"``, plotted as 1/eps), one line per value of ``line``."""
    kept, dropped = clean(nstar)
    values = np.sort(kept[line].unique())
    if line == "eps":
        values = values[::-1]  # legend from easy to hard
    y_all = []
    for color, v in zip(_colors(len(values)), values, strict=True):
        part = kept[kept[line] == v]
        cell = part.assign(_l=np.log(part["nstar"].astype(float))).groupby(x)["_l"].mean().sort_index()
        xs = cell.index.to_numpy(float)
        xs = 1.0 / xs if x == "eps" else xs
        order = np.argsort(xs)
        xs, ys = xs[order], np.exp(cell.to_numpy(float)[order])
        label = f"ε = {_fmt_num(v)}" if line == "eps" else f"d = {_fmt_num(v)}"
        ax.plot(xs, ys, "o-", color=color, ms=4, lw=1.4, label=label)
        y_all.extend(ys)
        if slope is not None and np.isfinite(slope) and len(xs) >= 2:
            guide = ys[0] * (xs / xs[0]) ** slope
            ax.plot(xs, guide, "--", color="0.2", lw=0.9, alpha=0.7, zorder=3)  # on top: visible when tight
    ax.set_xscale("log")
    ax.set_yscale("log")
    if y_all:  # guides may run far off: keep the data readable, the guides' slope stays visible
        ax.set_ylim(min(y_all) / 1.6, max(y_all) * 1.6)
        _plain_log_labels(ax.yaxis)
    ax.set_ylabel("N* (score evaluations to reach error ≤ ε)")
    ax.set_xlabel("dimension d" if x == "d" else "1/ε (inverse target accuracy)")
    ax.grid(True, which="major", alpha=0.3)
    handles = ax.get_legend_handles_labels()[0]
    if slope is not None and np.isfinite(slope):
        sym = "d" if x == "d" else r"(1/\varepsilon)"
        handles.append(Line2D([], [], color="0.3", ls="--", lw=1.0, label=f"claim ∝ ${sym}^{{{_fmt_exp(slope)}}}$"))
    notes = []
    if fit is not None and fit_key is not None and np.isfinite(fit.get(fit_key, np.nan)):
        lo, hi = fit.get(f"{fit_key}_lo", np.nan), fit.get(f"{fit_key}_hi", np.nan)
        ci = f" [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) and np.isfinite(hi) else " (no interval)"
        notes.append(f"joint fit {fit_key} = {fit[fit_key]:.2f}{ci}")
    if len(dropped):
        notes.append(f"{len(dropped)} (d, ε) cells without N* not shown")
    # outside the axes, with the fit in its title: neither hides a line nor collides with the other
    _legend(ax, handles, title="\n".join(notes) or None, outside=True)
    return ax


def plot_nstar_vs_d(ax, nstar: pd.DataFrame, *, slope: float | None = None, fit=None):
    """N* against d, one line per eps; ``slope`` (claimed exponent of d) as dashed guides."""
    return _nstar_panel(ax, nstar, x="d", line="eps", slope=slope, fit=fit, fit_key="a")


def plot_nstar_vs_inv_eps(ax, nstar: pd.DataFrame, *, slope: float | None = None, fit=None):
    """N* against 1/eps, one line per d; ``slope`` (claimed exponent of 1/eps) as dashed guides."""
    return _nstar_panel(ax, nstar, x="eps", line="d", slope=slope, fit=fit, fit_key="b")


def plot_error_vs_nfe(ax, errors: pd.DataFrame, *, eps_levels=None):
    """Error against mean NFE per run, one line per d; bars are +-2 standard errors (``error_se``)."""
    df = errors[np.isfinite(errors["error"]) & (errors["error"] > 0) & (errors["nfe"] > 0)]
    ds = np.sort(df["d"].unique())
    for color, d in zip(_colors(len(ds)), ds, strict=True):
        at_d = df[df["d"] == d]
        # the theory variant sets its parameters from (d, eps): one curve per parameter set, same colour
        curves = [c for _, c in at_d.groupby("params", sort=True)] if "params" in at_d.columns else [at_d]
        for k, part in enumerate(curves):
            part = part.sort_values("nfe")
            se = part["error_se"].fillna(0.0).to_numpy(float) if "error_se" in part else np.zeros(len(part))
            err = part["error"].to_numpy(float)
            lower = np.minimum(2 * se, 0.999 * err)  # keep bars on the log axis
            ax.errorbar(part["nfe"], err, yerr=[lower, 2 * se], fmt="o-", color=color, ms=3.5, lw=1.3,
                        capsize=2, elinewidth=0.8, label=f"d = {_fmt_num(d)}" if k == 0 else None)
    for eps in eps_levels if eps_levels is not None else ():
        ax.axhline(eps, color="0.5", ls=":", lw=0.9)
        ax.annotate(f"ε = {_fmt_num(eps)}", (1.0, eps), xycoords=("axes fraction", "data"), ha="right",
                    va="bottom", fontsize="x-small", color="0.4")
    ax.set_xscale("log")
    ax.set_yscale("log")
    metric = str(df["metric"].iloc[0]) if len(df) and "metric" in df else ""
    ax.set_xlabel("NFE (mean score evaluations per sample)")
    ax.set_ylabel(f"error: {METRIC_LABELS.get(metric, metric)}")
    ax.grid(True, which="major", alpha=0.3)
    _legend(ax)
    return ax


def plot_quenched_vs_annealed(ax, errors: pd.DataFrame):
    """Ratio quenched TV / annealed TV against NFE at equal (d, cost, seed), one line per d.

    Quenched >= annealed by convexity, so the ratio is >= 1 up to Monte Carlo error; a ratio that
    grows with d or with NFE means the two metrics scale differently.
    """
    keys = [c for c in ("d", "cost", "seed", "start", "params") if c in errors.columns]
    pairs = errors[errors["metric"].isin(["tv_annealed", "tv_quenched"])]
    wide = pairs.pivot_table(index=keys, columns="metric", values="error", aggfunc="mean")
    nfe = pairs.groupby(keys)["nfe"].mean()
    if not {"tv_annealed", "tv_quenched"} <= set(wide.columns):
        ax.text(0.5, 0.5, "no paired quenched/annealed values", ha="center", transform=ax.transAxes)
        return ax
    wide = wide.join(nfe).dropna()
    wide = wide[(wide["tv_annealed"] > 0) & (wide["tv_quenched"] > 0)].reset_index()
    if wide.empty:
        ax.text(0.5, 0.5, "no paired quenched/annealed values", ha="center", transform=ax.transAxes)
        return ax
    wide["ratio"] = wide["tv_quenched"] / wide["tv_annealed"]
    ds = np.sort(wide["d"].unique())
    for color, d in zip(_colors(len(ds)), ds, strict=True):
        at_d = wide[wide["d"] == d]
        curves = [c for _, c in at_d.groupby("params", sort=True)] if "params" in at_d.columns else [at_d]
        for k, part in enumerate(curves):
            part = part.sort_values("nfe")
            ax.plot(part["nfe"], part["ratio"], "o-", color=color, ms=4, lw=1.2,
                    label=f"d = {_fmt_num(d)}" if k == 0 else None)
    ax.axhline(1.0, color="0.3", ls="--", lw=1.0, label="quenched = annealed")
    ax.set_xscale("log")
    if wide["ratio"].max() / max(wide["ratio"].min(), 1e-300) > 10:
        ax.set_yscale("log")
    ax.set_xlabel("NFE (mean score evaluations per sample)")
    ax.set_ylabel("quenched TV / annealed TV (≥ 1 by convexity)")
    ax.grid(True, which="major", alpha=0.3)
    _legend(ax)
    return ax


def _family_title(key: Mapping) -> str:
    sampler = key.get("sampler", "?")
    variant = key.get("variant")
    head = f"{sampler} ({variant})" if variant else str(sampler)
    parts = [head, f"target {key.get('target', '?')}"]
    if "metric" in key:
        parts.append(METRIC_LABELS.get(key["metric"], key["metric"]))
    if key.get("study"):
        parts.append(f"study {key['study']}")
    return " · ".join(str(p) for p in parts)


def _slug(key: Mapping, columns) -> str:
    text = "__".join(str(key[c]) for c in columns if c in key)
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", text)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=_DPI)
    return path


def make_all(
    results_dir,
    figures_dir,
    *,
    claims: Mapping | None = None,
    kl_error: str = "kl",
    metrics: Sequence[str] | None = ("tv_annealed", "tv_quenched", "sqrt_kl", "w2"),
) -> list[Path]:
    """Write every figure the tables in ``results_dir`` support into ``figures_dir``; return the paths.

    ``claims`` is ``{sampler: Claim}``; default: the registry (samplers without a claim get no guide).
    ``metrics``: the metrics that get figures (None: all). Reads ``nstar.csv`` and ``errors.csv`` when
    present; never runs a sampler.
    """
    results_dir, figures_dir = Path(results_dir), Path(figures_dir)
    if claims is None:
        from analysis.verdicts import registry_claims

        claims = registry_claims()
    written: list[Path] = []
    nstar_path, errors_path = results_dir / "nstar.csv", results_dir / "errors.csv"
    if not nstar_path.exists() and not errors_path.exists():
        raise ValueError(f"results_dir must contain nstar.csv or errors.csv; found neither in {results_dir}")

    def _keep(df):
        return df if metrics is None or "metric" not in df.columns else df[df["metric"].isin(metrics)]

    if nstar_path.exists():
        nstar = _keep(pd.read_csv(nstar_path))
        verdicts_path = results_dir / "verdicts.csv"
        verdicts_table = pd.read_csv(verdicts_path) if verdicts_path.exists() else None
        written += headline(nstar, figures_dir, claims=claims, verdicts=verdicts_table)
        keys = [c for c in GROUP_COLUMNS if c in nstar.columns]
        fits = fit_joint(nstar, by=keys)
        for key_values, part in nstar.groupby(keys, sort=True):
            key = dict(zip(keys, key_values if isinstance(key_values, tuple) else (key_values,), strict=True))
            a_c, b_c = claimed_exponents(claims.get(key.get("sampler")), str(key.get("metric")), kl_error=kl_error)
            sel = np.ones(len(fits), dtype=bool)
            for c in keys:
                sel &= (fits[c] == key[c]).to_numpy()
            fit = fits[sel].iloc[0].to_dict() if sel.any() else None
            fig = Figure(figsize=(12.5, 4.8), layout="constrained")
            ax_d, ax_e = fig.subplots(1, 2)
            plot_nstar_vs_d(ax_d, part, slope=a_c if np.isfinite(a_c) else None, fit=fit)
            ax_d.set_title("N* against d at fixed ε", fontsize="medium")
            plot_nstar_vs_inv_eps(ax_e, part, slope=b_c if np.isfinite(b_c) else None, fit=fit)
            ax_e.set_title("N* against 1/ε at fixed d", fontsize="medium")
            fig.suptitle(_family_title(key))
            written.append(_save(fig, figures_dir / f"nstar__{_slug(key, keys)}.png"))

    if errors_path.exists():
        errors = _keep(pd.read_csv(errors_path))
        keys = [c for c in GROUP_COLUMNS if c in errors.columns]
        nstar_all = pd.read_csv(nstar_path) if nstar_path.exists() else None
        for key_values, part in errors.groupby(keys, sort=True):
            key = dict(zip(keys, key_values if isinstance(key_values, tuple) else (key_values,), strict=True))
            levels = None
            if nstar_all is not None and set(keys) <= set(nstar_all.columns):
                sel = np.ones(len(nstar_all), dtype=bool)
                for c in keys:
                    sel &= (nstar_all[c] == key[c]).to_numpy()
                levels = np.sort(nstar_all.loc[sel, "eps"].unique())
            fig = Figure(figsize=(7.5, 4.8), layout="constrained")
            ax = fig.subplots()
            plot_error_vs_nfe(ax, part, eps_levels=levels)
            ax.set_title(_family_title(key), fontsize="medium")
            written.append(_save(fig, figures_dir / f"error_vs_nfe__{_slug(key, keys)}.png"))
        pair_keys = [c for c in keys if c != "metric"]
        for key_values, part in errors.groupby(pair_keys, sort=True):
            if not {"tv_annealed", "tv_quenched"} <= set(part["metric"]):
                continue
            key = dict(zip(pair_keys, key_values if isinstance(key_values, tuple) else (key_values,), strict=True))
            fig = Figure(figsize=(6.5, 5.2), layout="constrained")
            ax = fig.subplots()
            plot_quenched_vs_annealed(ax, part)
            ax.set_title(_family_title(key) + "\nquenched vs annealed TV", fontsize="medium")
            written.append(_save(fig, figures_dir / f"tv_quenched_vs_annealed__{_slug(key, pair_keys)}.png"))
    return written


#: the samplers of the headline figure: the seed papers' diffusion samplers and three baselines
HEADLINE_SAMPLERS = ("li_jiao", "gupta_cai_chen", "ddram", "ddpm", "ddim", "dpm_solver_2")


def headline(nstar: pd.DataFrame, figures_dir, *, claims: Mapping, verdicts: pd.DataFrame | None = None,
             metric: str = "tv_annealed", samplers: Sequence[str] = HEADLINE_SAMPLERS) -> list[Path]:
    """One figure per target. Left: N* against d for ``samplers`` (tuned variant, which runs on the whole
    grid) at the eps with the most finite N*, each claimed d-slope dashed from the sampler's first point.
    Right (when ``verdicts`` is given): the fitted d-exponent with its 95% interval beside the claimed one
    (open diamond), for every variant, from the primary fit in the claim's own metric. Samplers absent from the results
    are skipped; if none of ``samplers`` is present, every sampler is drawn."""
    figures_dir = Path(figures_dir)
    part = nstar[(nstar["metric"] == metric) & (nstar["crossing"] == "interpolated")]
    written = []
    for target, tpart in part.groupby("target", sort=True):
        names = [n for n in samplers if n in set(tpart["sampler"])] or sorted(tpart["sampler"].unique())
        tpart = tpart[tpart["sampler"].isin(names)]
        tuned = tpart[tpart["variant"] == "tuned"]
        grid = tuned if len(tuned) else tpart
        counts = grid.groupby("eps").size()
        if counts.empty:
            continue
        eps = float(counts[counts == counts.max()].index.min())    # most finite cells; then the smallest eps
        sub = grid[grid["eps"] == eps]
        vpart = None
        if verdicts is not None and len(verdicts):
            # each claim in its own metric (sqrt(KL) for KL claims, annealed TV for TV claims)
            vpart = verdicts[(verdicts["target"] == target) & (verdicts["metric_match"] == "same")
                             & verdicts["primary"].astype(bool) & verdicts["sampler"].isin(names)]
        fig = Figure(figsize=(13.0 if vpart is not None else 9.5, 5.4), layout="constrained")
        if vpart is not None:
            ax, ax_v = fig.subplots(1, 2, width_ratios=(1.35, 1.0))
        else:
            ax, ax_v = fig.subplots(), None
        cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
        color = {name: cmap(i) for i, name in enumerate(names)}
        lo, hi = np.inf, 0.0
        for name in names:
            rows = sub[sub["sampler"] == name].sort_values("d")
            if len(rows) < 2:
                continue
            variant = rows["variant"].iloc[0]
            ax.plot(rows["d"], rows["nstar"], "o-", color=color[name], label=f"{name} ({variant})")
            lo, hi = min(lo, rows["nstar"].min()), max(hi, rows["nstar"].max())
            a_c, _ = claimed_exponents(claims.get(name), metric)
            if np.isfinite(a_c):
                d0, n0 = rows["d"].iloc[0], rows["nstar"].iloc[0]
                dd = np.array([rows["d"].min(), rows["d"].max()])
                ax.plot(dd, n0 * (dd / d0) ** a_c, "--", color=color[name], lw=1, alpha=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        if hi > 0:
            ax.set_ylim(lo / 2, hi * 2)  # guides are clipped to the data range
        ax.set_xlabel("dimension d")
        ax.set_ylabel(f"N* (score evaluations to reach {metric.replace('_', ' ')} ≤ {_fmt_num(eps)})")
        ax.set_title(f"N* against d at ε = {_fmt_num(eps)} (dashed: each paper's claimed d-slope)", fontsize="medium")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize="small", loc="upper left")
        if ax_v is not None:
            _exponent_panel(ax_v, vpart, names, color)
        fig.suptitle(f"target {target}: measured against claimed dimension dependence")
        written.append(_save(fig, figures_dir / f"headline__{target}__{metric}.png"))
    return written


def _exponent_panel(ax, vpart: pd.DataFrame, names: Sequence[str], color: Mapping) -> None:
    """Fitted d-exponent [95% CI] (filled) and claimed exponent (open diamond), one row per sampler and variant."""
    labels = []
    for name in names:
        for variant in ("tuned", "theory"):
            r = vpart[(vpart["sampler"] == name) & (vpart["variant"] == variant)]
            if r.empty:
                continue
            r = r.iloc[0]
            y = len(labels)
            if np.isfinite(r["a_lo"]) and np.isfinite(r["a_hi"]):
                ax.errorbar([r["a"]], [y], xerr=[[r["a"] - r["a_lo"]], [r["a_hi"] - r["a"]]], fmt="o",
                            color=color[name], capsize=3, ms=5)
            if np.isfinite(r["a_claim"]):
                ax.plot([r["a_claim"]], [y], "D", mfc="none", color=color[name], ms=7)
            labels.append(f"{name} ({variant}, {r['metric'].replace('tv_', 'TV ')}): {r['verdict_d']}")
    ax.set_yticks(range(len(labels)), labels, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("exponent a of d in N* (● fitted, 95% CI; ◇ claimed)")
    ax.set_title("fitted against claimed d-exponent, with the verdict", fontsize="medium")
    ax.grid(True, axis="x", alpha=0.3)
