"""Markdown tables of fits and verdicts, in a stable format that ``paper_notes.md`` can include.

Formatting rules (stable across runs, so that regenerated tables diff cleanly):

* floats: ``digits`` decimals (default 2), ``-0.00`` written ``0.00``; NaN/None written ``n/a``;
  nonzero values below ``10^-digits`` or above 10^6 in absolute value: 3 significant digits;
* an interval column ``x`` with companions ``x_lo``, ``x_hi`` renders as ``0.50 [0.48, 0.52]``
  (request it as ``"x [ci]"`` in ``columns``);
* exponent claims (Fractions or floats equal to small fractions) render as fractions: ``1/3``;
* rows keep the order of the DataFrame (sort before rendering); numeric columns right-aligned;
  ``|`` in text is escaped.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
import pandas as pd

NA = "n/a"


def fmt_float(x, digits: int = 2) -> str:
    """A float with ``digits`` decimals; NaN -> ``n/a``; no negative zero; large or tiny -> 3 s.f."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)) or x is pd.NA:
        return NA
    x = float(x)
    if not np.isfinite(x):
        return NA
    if x != 0 and (abs(x) >= 10**6 or abs(x) < 10 ** (-digits)):
        return f"{x:.3g}"
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fmt_fraction(x, max_denominator: int = 12, digits: int = 2) -> str:
    """An exponent as a fraction when it is one (``1/3``), else as a float."""
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return NA
    frac = x if isinstance(x, Fraction) else Fraction(float(x)).limit_denominator(max_denominator)
    if abs(float(frac) - float(x)) < 1e-9:
        return str(frac)
    return fmt_float(x, digits)


def fmt_interval(est, lo, hi, digits: int = 2) -> str:
    """``est [lo, hi]``; a missing interval is written ``est [n/a]``."""
    if est is None or not np.isfinite(float(est)):
        return NA
    if lo is None or hi is None or not (np.isfinite(float(lo)) and np.isfinite(float(hi))):
        return f"{fmt_float(est, digits)} [{NA}]"
    return f"{fmt_float(est, digits)} [{fmt_float(lo, digits)}, {fmt_float(hi, digits)}]"


def _cell(value, digits: int) -> str:
    if value is None:
        return NA
    if isinstance(value, Fraction):
        return str(value)
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return fmt_float(value, digits)
    text = str(value)
    return NA if text in ("nan", "None") else text.replace("|", "\\|").replace("\n", " ")


def render_table(
    df: pd.DataFrame,
    columns: Sequence[str],
    *,
    headers: Mapping[str, str] | None = None,
    digits: int = 2,
    formats: Mapping[str, callable] | None = None,
    align: Mapping[str, str] | None = None,
) -> str:
    """A GitHub-flavoured markdown table of ``columns`` of ``df``.

    ``columns`` entries are column names, or ``"x [ci]"`` for an interval from ``x``, ``x_lo``,
    ``x_hi``. ``headers`` renames columns (default: the names). ``formats`` maps a column to a
    function value -> str, overriding the default formatting. ``align`` maps a column to ``"left"``
    or ``"right"`` (default: right for numeric columns and intervals). Returns the table text ending in a
    newline.
    """
    headers = dict(headers or {})
    formats = dict(formats or {})
    for col in columns:
        base = col[: -len(" [ci]")] if col.endswith(" [ci]") else col
        needed = [base, f"{base}_lo", f"{base}_hi"] if col.endswith(" [ci]") else [base]
        missing = [c for c in needed if c not in df.columns]
        if missing:
            raise ValueError(f"columns must name columns of df; missing {missing}")
    head = [headers.get(c, c).replace("|", "\\|") for c in columns]
    align = dict(align or {})
    right = []
    for col in columns:
        if col in align:
            if align[col] not in ("left", "right"):
                raise ValueError(f"align values must be 'left' or 'right', got {align[col]!r}")
            right.append(align[col] == "right")
        elif col.endswith(" [ci]"):
            right.append(True)
        else:
            right.append(pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col]))
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    for _, row in df.iterrows():
        cells = []
        for col in columns:
            if col in formats:
                cells.append(formats[col](row[col]))
            elif col.endswith(" [ci]"):
                base = col[: -len(" [ci]")]
                cells.append(fmt_interval(row[base], row[f"{base}_lo"], row[f"{base}_hi"], digits))
            else:
                cells.append(_cell(row[col], digits))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_KEYS = ("sampler", "variant", "target", "metric")

#: one paragraph stating the verdict rule, printed above every verdict table
RULE_NOTE = (
    "Verdict rule (analysis.verdicts): *violated* when the interval lies above the claim plus the allowance for "
    "its declared logs plus the margin; *consistent* when it lies within [claim − margin, claim + allowance + "
    "margin]; *loose* when it lies below claim − margin; *inconclusive* otherwise. Margins: 1/24 for the "
    "d-exponent, 1/12 for the ε-exponent (at least the ladder resolution of the window). Intervals: jackknife "
    "95% over replicate groups of internal draws for randomized samplers; for deterministic samplers the range "
    "of local slopes (not a confidence interval: there is no sampling error). For randomized samplers a proxy "
    "metric (quenched TV, mean conditional KL) transfers only *loose* to the claim."
)


def _interval_kind(kind) -> str:
    return {"jackknife 95%": "jk 95%", "local-slope range": "slope range",
            "per-d slope range": "slope range"}.get(str(kind), str(kind))


def exponents_table(ex: pd.DataFrame, *, digits: int = 2) -> str:
    """Primary exponent estimates with their intervals, local-slope ranges, points used and excluded."""
    keys = [c for c in _KEYS if c in ex.columns]
    df = ex.sort_values(keys).reset_index(drop=True).copy()
    df["a_local"] = [f"[{fmt_float(lo, digits)}, {fmt_float(hi, digits)}]" for lo, hi in
                     zip(df["a_local_min"], df["a_local_max"], strict=True)]
    df["kind"] = df["interval"].map(_interval_kind)
    return render_table(
        df, keys + ["a [ci]", "b [ci]", "kind", "a_local", "n", "excluded", "draws_max", "window", "reason"],
        headers={"a [ci]": "a (d)", "b [ci]": "b (1/ε)", "kind": "interval", "a_local": "local slopes in d",
                 "excluded": "N* excluded", "draws_max": "most draws"},
        digits=digits)


def verdicts_table(v: pd.DataFrame, *, digits: int = 2) -> str:
    """Claimed against measured exponents: interval, allowance for the claim's logs, verdicts, metric match."""
    keys = [c for c in _KEYS if c in v.columns]
    df = v.sort_values(keys).reset_index(drop=True).copy()
    frac = lambda x: fmt_fraction(x, digits=digits)  # noqa: E731
    df["kind"] = df["interval"].map(_interval_kind)
    return render_table(
        df,
        keys + ["a_claim", "allowance_a", "a [ci]", "verdict_d", "b_claim", "allowance_b", "b [ci]", "verdict_eps",
                "kind", "metric_match"],
        headers={"a_claim": "claimed a", "allowance_a": "+ logs", "a [ci]": "measured a", "verdict_d": "verdict (d)",
                 "b_claim": "claimed b", "allowance_b": "+ logs ", "b [ci]": "measured b", "verdict_eps": "verdict (ε)",
                 "kind": "interval", "metric_match": "metric match"},
        digits=digits,
        formats={"a_claim": frac, "b_claim": frac},
    )


def structure_table(v: pd.DataFrame, *, digits: int = 2) -> str:
    """Deterministic samplers on product targets: the one-slope fit, its local-slope range, the structure
    spread and whether the claim itself has b = r a."""
    keys = [c for c in _KEYS if c in v.columns]
    df = v.sort_values(keys).reset_index(drop=True)
    return render_table(
        df, keys + ["a [ci]", "a_joint", "b_joint", "structure_spread", "claim_on_structure"],
        headers={"a [ci]": "s = a (slope range)", "a_joint": "free fit a", "b_joint": "free fit b",
                 "structure_spread": "spread of log N* at one d/ε^r", "claim_on_structure": "claim has b = r·a"},
        digits=digits)


def decisive_table(dec: pd.DataFrame, *, digits: int = 2) -> str:
    """Li & Jiao against Gupta, Cai & Chen: both exponents and their differences with jackknife intervals."""
    df = dec.sort_values(["target", "variant"]).reset_index(drop=True)
    return render_table(
        df, ["target", "variant", "d_exp_a", "d_exp_b", "delta_d [ci]", "eps_exp_a", "eps_exp_b", "delta_eps [ci]"],
        headers={"d_exp_a": f"a {df['sampler_a'].iloc[0]}", "d_exp_b": f"a {df['sampler_b'].iloc[0]}",
                 "delta_d [ci]": "Δa [95% CI]", "eps_exp_a": f"b {df['sampler_a'].iloc[0]}",
                 "eps_exp_b": f"b {df['sampler_b'].iloc[0]}", "delta_eps [ci]": "Δb [95% CI]"},
        digits=digits)


def ratio_table(r: pd.DataFrame, *, digits: int = 2) -> str:
    """N* ratios of two randomized samplers with jackknife 95% intervals."""
    df = r.sort_values(["target", "variant", "eps", "d"]).reset_index(drop=True)
    return render_table(
        df, ["target", "variant", "eps", "d", "nstar_a", "nstar_b", "ratio [ci]"],
        headers={"eps": "ε", "nstar_a": f"N* {df['sampler_a'].iloc[0]}", "nstar_b": f"N* {df['sampler_b'].iloc[0]}",
                 "ratio [ci]": "ratio [95% CI]"},
        digits=digits, formats={"d": lambda x: f"{float(x):g}", "eps": lambda x: f"{float(x):g}",
                                "nstar_a": lambda x: fmt_float(x, 0), "nstar_b": lambda x: fmt_float(x, 0)})


def agreement_table(ag: pd.DataFrame, *, digits: int = 2) -> str:
    keys = [c for c in _KEYS if c in ag.columns]
    df = ag.sort_values(keys).reset_index(drop=True)
    return render_table(df, keys + ["a", "a_surface", "agree_a", "b", "b_surface", "agree_b"],
                        headers={"a": "a (N*)", "a_surface": "a (surface)", "agree_a": "d",
                                 "b": "b (N*)", "b_surface": "b (surface)", "agree_b": "ε"}, digits=digits)


def comparison_table(cmp: pd.DataFrame, *, digits: int = 2) -> str:
    """Output of :func:`analysis.verdicts.compare_at_equal_eps` as a table."""
    a, b = cmp["sampler_a"].iloc[0], cmp["sampler_b"].iloc[0]
    keys = [c for c in ("target", "metric", "variant") if c in cmp.columns]
    cmp = cmp.copy()
    for side in ("a", "b"):  # say why N* is missing (its status: below_grid, above_grid, unresolved, ...)
        status = cmp[f"status_{side}"] if f"status_{side}" in cmp.columns else pd.Series("", index=cmp.index)
        cmp[f"nstar_{side}"] = [
            v if np.isfinite(v) else (str(c).replace("_", " ") if isinstance(c, str) and c else np.nan)
            for v, c in zip(cmp[f"nstar_{side}"].astype(float), status, strict=True)
        ]
    count = lambda x: (x if isinstance(x, str) else fmt_float(x, 0) if np.isfinite(x) and x >= 10  # noqa: E731
                       else fmt_float(x, 1))
    return render_table(
        cmp,
        keys + ["d", "eps", "nstar_a", "nstar_b", "ratio"],
        headers={"eps": "ε", "nstar_a": f"N* {a}", "nstar_b": f"N* {b}", "ratio": f"N* {a} / N* {b}"},
        digits=digits,
        formats={"d": lambda x: f"{float(x):g}", "eps": lambda x: f"{float(x):g}",
                 "nstar_a": count, "nstar_b": count},
        align={"nstar_a": "right", "nstar_b": "right"},
    )
