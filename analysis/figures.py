"""Figures from the tidy result tables (matplotlib, Agg canvas; no pyplot global state).

One style for the whole suite: every sampler keeps one colour in every figure (:func:`sampler_color`, from
its position in the registry), one resolution (:data:`DPI`), PNG by default and vector formats (SVG, PDF)
on request. :func:`make_all` writes the figures the README and paper_notes show:

* ``headline__<target>__tv_annealed.png``: N* against d for the seed samplers (left) and each
  measured d-exponent with its interval, the claim and the verdict (right);
* ``decisive__<target>.png``: Li & Jiao against Gupta, Cai & Chen: N* ratio against d with jackknife
  95% intervals, and the exponent differences;

and, with ``diagnostics=True``, per-family diagnostics into ``<figures>/diagnostics/`` (not committed):
``nstar__<family>``, ``error_vs_nfe__<family>`` (error bars: 2 standard errors) and
``tv_quenched_vs_annealed__<family>``.
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

from analysis.exponents import KEYS as GROUP_COLUMNS

METRIC_LABELS = {
    "tv_annealed": "annealed TV",
    "tv_quenched": "quenched TV",
    "kl": "KL (nats)",
    "sqrt_kl": "sqrt(KL) (nats$^{1/2}$)",
    "w2": "W2 (data units)",
}
_CMAP = "viridis"
#: resolution of every raster figure
DPI = 130
#: output formats: PNG by default; add "svg" or "pdf" for vector output
FORMATS = ("png",)


def _colors(n: int):
    cmap = colormaps[_CMAP]
    return [cmap(x) for x in np.linspace(0.0, 0.85, n)]


def _plain_log_labels(axis):
    """Label log ticks as plain numbers (60, 200) rather than 6x10^1 when the range is short."""
    lo, hi = axis.get_view_interval()
    if hi / lo < 1e4:
        axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
        axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


#: drawn in place of a legend on axes without a labelled line
NO_DATA = "no data to plot"


def _no_data(ax, text: str = NO_DATA) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


def _legend(ax, handles=None, title=None, *, outside: bool = False):
    """A legend of ``handles`` (default: the labelled artists); without any (and without a title), a "no
    data" note instead, since matplotlib warns on a legend with nothing to show."""
    handles = handles if handles is not None else ax.get_legend_handles_labels()[0]
    if not handles and not title:
        _no_data(ax)
        return
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
    kept, dropped = nstar[nstar["status"] == "ok"], nstar[nstar["status"] != "ok"]
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
        notes.append(f"fit {fit_key} = {fit[fit_key]:.2f}{ci} ({fit.get('interval', '')})")
    if len(dropped):
        notes.append(f"{len(dropped)} (d, ε) cells without an ok N* not shown")
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


def sampler_color(name: str):
    """The colour of a sampler in every figure: its position among the registered samplers in tab20."""
    from experiments.samplers import REGISTRY

    names = sorted(REGISTRY)
    cmap = colormaps["tab20"]
    i = names.index(name) if name in names else len(names) + sum(map(ord, name))
    return cmap(i % 20)


def _save(fig: Figure, path: Path, formats=FORMATS) -> list[Path]:
    """Write ``fig`` atomically in each format (a reader never sees half a figure)."""
    from io import BytesIO

    from experiments.cache import atomic_write_bytes

    out = []
    for fmt in formats:
        target = path.with_suffix(f".{fmt}")
        buf = BytesIO()
        fig.savefig(buf, dpi=DPI, format=fmt, bbox_inches="tight")   # long axis labels stay inside
        atomic_write_bytes(target, buf.getvalue())
        out.append(target)
    return out


def _claimed(claims, sampler, metric):
    claim = claims.get(sampler)
    same = ((claim.metric == "tv" and metric.startswith("tv")) or (claim.metric == "kl" and metric == "sqrt_kl")
            or (claim.metric == "w2" and metric == "w2")) if claim is not None else False
    if not same:
        return np.nan, np.nan
    return float(claim.d_exp), float(claim.eps_exp)


def make_all(results_dir, figures_dir, *, claims: Mapping | None = None, diagnostics: bool = False,
             formats: Sequence[str] = FORMATS, progress=None) -> list[Path]:
    """Write the figures the tables in ``results_dir`` support into ``figures_dir``; return the paths.

    ``diagnostics``: also the per-family figures, into ``figures_dir / "diagnostics"``. ``progress``: a
    callable receiving one line per figure written. Reads the result tables; never runs a sampler."""
    results_dir, figures_dir = Path(results_dir), Path(figures_dir)
    if claims is None:
        from analysis.verdicts import registry_claims

        claims = registry_claims()
    nstar_path, errors_path = results_dir / "nstar.csv", results_dir / "errors.csv"
    if not nstar_path.exists() or not errors_path.exists():
        raise ValueError(f"results_dir must contain nstar.csv and errors.csv; missing in {results_dir}")
    say = progress or (lambda line: None)
    nstar = pd.read_csv(nstar_path)
    verdicts_path = results_dir / "verdicts.csv"
    verdicts = pd.read_csv(verdicts_path) if verdicts_path.exists() else None
    written: list[Path] = []
    for path in headline(nstar, figures_dir, claims=claims, verdicts=verdicts, formats=formats):
        written += path
        say(f"figure {path[0].name}")
    ratios_path, dec_path = results_dir / "ratios.csv", results_dir / "decisive.csv"
    if ratios_path.exists() and dec_path.exists() and ratios_path.stat().st_size > 1 and dec_path.stat().st_size > 1:
        for path in decisive_figure(pd.read_csv(ratios_path), pd.read_csv(dec_path), figures_dir, formats=formats):
            written += path
            say(f"figure {path[0].name}")
    if diagnostics:
        written += _diagnostics(results_dir, nstar, figures_dir / "diagnostics", claims, formats, say)
    return written


def _diagnostics(results_dir, nstar, out, claims, formats, say) -> list[Path]:
    written = []
    ex_path = results_dir / "exponents.csv"
    exps = pd.read_csv(ex_path) if ex_path.exists() else None
    keys = [c for c in GROUP_COLUMNS if c in nstar.columns]
    for key_values, part in nstar.groupby(keys, sort=True):
        key = dict(zip(keys, key_values if isinstance(key_values, tuple) else (key_values,), strict=True))
        a_c, b_c = _claimed(claims, key["sampler"], key["metric"])
        fit = None
        if exps is not None:
            sel = np.ones(len(exps), dtype=bool)
            for c in keys:
                sel &= (exps[c] == key[c]).to_numpy()
            fit = exps[sel].iloc[0].to_dict() if sel.any() else None
        fig = Figure(figsize=(12.5, 4.8), layout="constrained")
        ax_d, ax_e = fig.subplots(1, 2)
        plot_nstar_vs_d(ax_d, part, slope=a_c if np.isfinite(a_c) else None, fit=fit)
        ax_d.set_title("N* against d at fixed ε", fontsize="medium")
        plot_nstar_vs_inv_eps(ax_e, part, slope=b_c if np.isfinite(b_c) else None, fit=fit)
        ax_e.set_title("N* against 1/ε at fixed d", fontsize="medium")
        fig.suptitle(_family_title(key))
        written += _save(fig, out / f"nstar__{_slug(key, keys)}", formats)
        say(f"figure diagnostics/nstar__{_slug(key, keys)}")
    errors = pd.read_csv(results_dir / "errors.csv")
    keys = [c for c in GROUP_COLUMNS if c in errors.columns]
    for key_values, part in errors.groupby(keys, sort=True):
        key = dict(zip(keys, key_values if isinstance(key_values, tuple) else (key_values,), strict=True))
        sel = np.ones(len(nstar), dtype=bool)
        for c in keys:
            sel &= (nstar[c] == key[c]).to_numpy()
        levels = np.sort(nstar.loc[sel, "eps"].unique())
        fig = Figure(figsize=(7.5, 4.8), layout="constrained")
        ax = fig.subplots()
        plot_error_vs_nfe(ax, part, eps_levels=levels)
        ax.set_title(_family_title(key), fontsize="medium")
        written += _save(fig, out / f"error_vs_nfe__{_slug(key, keys)}", formats)
    pair_keys = [c for c in keys if c != "metric"]
    for key_values, part in errors.groupby(pair_keys, sort=True):
        if not {"tv_annealed", "tv_quenched"} <= set(part["metric"]):
            continue
        key = dict(zip(pair_keys, key_values if isinstance(key_values, tuple) else (key_values,), strict=True))
        fig = Figure(figsize=(6.5, 5.2), layout="constrained")
        ax = fig.subplots()
        plot_quenched_vs_annealed(ax, part)
        ax.set_title(_family_title(key) + "\nquenched vs annealed TV", fontsize="medium")
        written += _save(fig, out / f"tv_quenched_vs_annealed__{_slug(key, pair_keys)}", formats)
    return written


#: the samplers of the headline figure: the seed papers' diffusion samplers and three baselines
HEADLINE_SAMPLERS = ("li_jiao", "gupta_cai_chen", "ddram", "ddpm", "ddim", "dpm_solver_2")


def headline(nstar: pd.DataFrame, figures_dir, *, claims: Mapping, verdicts: pd.DataFrame | None = None,
             metric: str = "tv_annealed", samplers: Sequence[str] = HEADLINE_SAMPLERS, formats=FORMATS) -> list:
    """One figure per target. Left: N* against d for ``samplers`` (tuned variant, which runs on the whole
    grid) at the eps with the most ok N*, each claimed d-slope dashed from the sampler's first point.
    Right (when ``verdicts`` is given): each primary d-exponent with its interval (jackknife 95% for
    randomized samplers, local-slope range for deterministic ones) beside the claimed one (open diamond)
    and the verdict, in the claim's own metric."""
    figures_dir = Path(figures_dir)
    part = nstar[(nstar["metric"] == metric) & (nstar["status"] == "ok")]
    written = []
    for target, tpart in part.groupby("target", sort=True):
        names = [n for n in samplers if n in set(tpart["sampler"])] or sorted(tpart["sampler"].unique())
        tpart = tpart[tpart["sampler"].isin(names)]
        tuned = tpart[tpart["variant"] == "tuned"]
        grid = tuned if len(tuned) else tpart
        counts = grid.groupby("eps").size()
        if counts.empty:
            continue
        eps = float(counts[counts == counts.max()].index.min())    # most ok cells; then the smallest eps
        sub = grid[grid["eps"] == eps]
        vpart = None
        if verdicts is not None and len(verdicts):
            vpart = verdicts[(verdicts["target"] == target) & (verdicts["metric_match"] == "same")
                             & (verdicts["estimator"] == "N* power law") & verdicts["sampler"].isin(names)]
        fig = Figure(figsize=(13.0 if vpart is not None else 9.5, 5.4), layout="constrained")
        if vpart is not None:
            ax, ax_v = fig.subplots(1, 2, width_ratios=(1.3, 1.0))
        else:
            ax, ax_v = fig.subplots(), None
        lo, hi = np.inf, 0.0
        for name in names:
            rows = sub[sub["sampler"] == name].sort_values("d")
            if len(rows) < 2:
                continue
            variant = rows["variant"].iloc[0]
            ax.plot(rows["d"], rows["nstar"], "o-", color=sampler_color(name), label=f"{name} ({variant})")
            lo, hi = min(lo, rows["nstar"].min()), max(hi, rows["nstar"].max())
            a_c, _ = _claimed(claims, name, metric)
            if np.isfinite(a_c):
                d0, n0 = rows["d"].iloc[0], rows["nstar"].iloc[0]
                dd = np.array([rows["d"].min(), rows["d"].max()])
                ax.plot(dd, n0 * (dd / d0) ** a_c, "--", color=sampler_color(name), lw=1, alpha=0.7)
        ax.set_xscale("log")
        ax.set_yscale("log")
        if hi > 0:
            ax.set_ylim(lo / 2, hi * 2)
        ax.set_xlabel("dimension d")
        ax.set_ylabel(f"N* (score evaluations to reach {metric.replace('_', ' ')} ≤ {_fmt_num(eps)})")
        ax.set_title(f"N* against d at ε = {_fmt_num(eps)} (dashed: each paper's claimed d-slope)", fontsize="medium")
        ax.grid(True, which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small", loc="upper left")
        else:                                   # no sampler has N* at two d: say so rather than an empty legend
            _no_data(ax, f"no sampler has an ok N* at two or more d at ε = {_fmt_num(eps)}")
        if ax_v is not None:
            _exponent_panel(ax_v, vpart, names)
        fig.suptitle(f"target {target}: measured against claimed dimension dependence")
        written.append(_save(fig, figures_dir / f"headline__{target}__{metric}", formats))
    return written


def _exponent_panel(ax, vpart: pd.DataFrame, names: Sequence[str]) -> None:
    """Measured d-exponent with its interval (filled) and claimed exponent (open diamond; the bar to its right
    is the allowance for the claim's logs), one row per sampler and variant, labelled with the verdict."""
    labels = []
    for name in names:
        for variant in ("tuned", "theory"):
            r = vpart[(vpart["sampler"] == name) & (vpart["variant"] == variant)]
            if r.empty:
                continue
            r = r.iloc[0]
            y = len(labels)
            color = sampler_color(name)
            if np.isfinite(r["a_lo"]) and np.isfinite(r["a_hi"]):
                ax.errorbar([r["a"]], [y], xerr=[[r["a"] - r["a_lo"]], [r["a_hi"] - r["a"]]], fmt="o",
                            color=color, capsize=3, ms=5)
            if np.isfinite(r["a_claim"]):
                ax.plot([r["a_claim"]], [y], "D", mfc="none", color=color, ms=7)
                allow = r.get("allowance_a", 0.0)
                if np.isfinite(allow) and allow > 0:
                    ax.plot([r["a_claim"], r["a_claim"] + min(allow, 1.0)], [y + 0.25, y + 0.25], "-", color=color,
                            lw=2, alpha=0.4)
            kind = "jk" if r["interval"] == "jackknife 95%" else "range"
            labels.append(f"{name} ({variant}, {kind}): {r['verdict_d']}")
    ax.set_yticks(range(len(labels)), labels, fontsize="small")
    ax.invert_yaxis()
    ax.set_xlabel("exponent a of d in N*\n(● measured with interval; ◇ claimed; shaded: + allowance for logs)")
    ax.set_title("measured against claimed d-exponent, with the verdict", fontsize="medium")
    ax.grid(True, axis="x", alpha=0.3)


def decisive_figure(ratios: pd.DataFrame, decisive: pd.DataFrame, figures_dir, *, formats=FORMATS) -> list:
    """Per target: N*(A)/N*(B) against d at each eps with jackknife 95% intervals (left), and the d- and
    eps-exponent differences with their intervals per variant (right)."""
    written = []
    for target, part in ratios.groupby("target", sort=True):
        a, b = part["sampler_a"].iloc[0], part["sampler_b"].iloc[0]
        fig = Figure(figsize=(12.0, 4.8), layout="constrained")
        ax, ax_d = fig.subplots(1, 2, width_ratios=(1.4, 1.0))
        variants = sorted(part["variant"].unique())
        for vi, variant in enumerate(variants):
            vpart = part[part["variant"] == variant]
            eps_values = np.sort(vpart["eps"].unique())
            for color, eps in zip(_colors(len(eps_values)), eps_values, strict=True):
                rows = vpart[vpart["eps"] == eps].sort_values("d")
                lo = (rows["ratio"] - rows["ratio_lo"]).clip(lower=0).fillna(0)
                hi = (rows["ratio_hi"] - rows["ratio"]).clip(lower=0).fillna(0)
                ax.errorbar(rows["d"] * (1.0 + 0.06 * vi), rows["ratio"], yerr=[lo, hi],
                            fmt="o-" if variant == "tuned" else "s--", color=color, ms=4, capsize=2,
                            label=f"ε = {_fmt_num(eps)} ({variant})")
        ax.axhline(1.0, color="0.3", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("dimension d")
        ax.set_ylabel(f"N*({a}) / N*({b})")
        ax.set_title("N* ratio at equal ε (jackknife 95% intervals)", fontsize="medium")
        ax.grid(True, which="major", alpha=0.3)
        _legend(ax, outside=True)
        dpart = decisive[decisive["target"] == target]
        labels = []
        for _, r in dpart.iterrows():
            for name, key in (("Δa (d)", "delta_d"), ("Δb (1/ε)", "delta_eps")):
                y = len(labels)
                if np.isfinite(r[f"{key}_lo"]):
                    ax_d.errorbar([r[key]], [y], xerr=[[r[key] - r[f"{key}_lo"]], [r[f"{key}_hi"] - r[key]]],
                                  fmt="o", color="0.2", capsize=3)
                labels.append(f"{name}, {r['variant']}")
        ax_d.axvline(0.0, color="0.3", lw=1)
        ax_d.set_yticks(range(len(labels)), labels, fontsize="small")
        ax_d.invert_yaxis()
        ax_d.set_xlabel(f"exponent of {a} minus exponent of {b} (95% jackknife)")
        ax_d.set_title("exponent differences", fontsize="medium")
        ax_d.grid(True, axis="x", alpha=0.3)
        fig.suptitle(f"target {target}: {a} against {b}")
        written.append(_save(fig, Path(figures_dir) / f"decisive__{target}", formats))
    return written
