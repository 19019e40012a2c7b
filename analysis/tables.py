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


def fits_table(fits: pd.DataFrame, *, digits: int = 2) -> str:
    """Joint fits: exponents with 95% intervals, points used and dropped, R², window, reason."""
    keys = [c for c in _KEYS if c in fits.columns]
    df = fits.sort_values(keys).reset_index(drop=True) if keys else fits
    columns = keys + ["a [ci]", "b [ci]"] + (["g [ci]"] if "g" in fits.columns else []) + [
        "n", "n_dropped", "r2", "resid_sd", "window", "reason"]
    return render_table(
        df,
        columns,
        headers={"a [ci]": "a (d) [95% CI]", "b [ci]": "b (1/ε) [95% CI]", "g [ci]": "g (log log) [95% CI]",
                 "n_dropped": "dropped", "r2": "R²", "resid_sd": "resid. sd"},
        digits=digits,
        formats={"r2": lambda v: fmt_float(v, 4)},
    )


def verdicts_table(v: pd.DataFrame, *, digits: int = 2) -> str:
    """Claimed against measured exponents with verdicts and the metric match."""
    keys = [c for c in _KEYS if c in v.columns]
    df = v.sort_values(keys).reset_index(drop=True) if keys else v
    frac = lambda x: fmt_fraction(x, digits=digits)  # noqa: E731
    return render_table(
        df,
        keys + ["a_claim", "a [ci]", "verdict_d", "b_claim", "b [ci]", "verdict_eps", "metric_match", "theorem"],
        headers={"a_claim": "claimed a", "a [ci]": "measured a [95% CI]", "verdict_d": "verdict (d)",
                 "b_claim": "claimed b", "b [ci]": "measured b [95% CI]", "verdict_eps": "verdict (ε)",
                 "metric_match": "metric match"},
        digits=digits,
        formats={"a_claim": frac, "b_claim": frac},
    )


def structure_table(v: pd.DataFrame, *, digits: int = 2) -> str:
    """The b = r a check (rows where it applies): estimate of b - r a, interval, status."""
    keys = [c for c in _KEYS if c in v.columns]
    df = v[v["structure_applies"].astype(bool)]
    df = df.sort_values(keys).reset_index(drop=True) if keys else df
    return render_table(
        df,
        keys + ["structure_ratio", "b_minus_ra [ci]", "structure", "claim_on_structure"],
        headers={"structure_ratio": "r", "b_minus_ra [ci]": "b − r·a [95% CI]",
                 "claim_on_structure": "claim has b = r·a"},
        digits=digits,
        formats={"structure_ratio": lambda x: fmt_fraction(x)},
    )


def comparison_table(cmp: pd.DataFrame, *, digits: int = 2) -> str:
    """Output of :func:`analysis.verdicts.compare_at_equal_eps` as a table."""
    a, b = cmp["sampler_a"].iloc[0], cmp["sampler_b"].iloc[0]
    keys = [c for c in ("target", "metric", "variant") if c in cmp.columns]
    cmp = cmp.copy()
    for side in ("a", "b"):  # say why N* is missing: "below grid" (reached at the cheapest cost) or "above grid"
        cross = cmp[f"crossing_{side}"] if f"crossing_{side}" in cmp.columns else pd.Series("", index=cmp.index)
        cmp[f"nstar_{side}"] = [
            v if np.isfinite(v) else (str(c).replace("_", " ") if isinstance(c, str) and c else np.nan)
            for v, c in zip(cmp[f"nstar_{side}"].astype(float), cross, strict=True)
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
