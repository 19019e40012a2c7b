r"""Verdicts: measured exponent intervals against each paper's claimed exponents.

A claim reads ``N*(d, eps) <= C d^{a_claim} (1/eps)^{b_claim}`` up to logs: an upper bound. For
one exponent with 95% interval ``[lo, hi]`` (from :func:`analysis.fits.fit_joint`):

==============  ===================  ==============================================================
verdict         condition            reading
==============  ===================  ==============================================================
``violated``    ``lo > claimed``     the cost grows faster than the claim allows (on this window)
``tight``       ``lo <= c <= hi``    consistent with the claimed exponent
``loose``       ``hi < claimed``     the cost grows more slowly: the bound is not attained here
``undetermined``  NaN interval       too few points; see the fit's ``reason``
==============  ===================  ==============================================================

Metrics (DESIGN.md section 2, "compare like with like"). The measured metric of a fit and the
claim's metric are matched through :data:`METRIC_MATCH`:

* TV claims bound the sampler's real output law, whose distance is the *annealed* TV: match
  ``"same"``. The quenched TV is an upper bound on it (convexity), so its N* can only be larger:
  match ``"upper proxy"`` (a ``loose``/``tight`` verdict transfers to the claim, a ``violated``
  one is not conclusive).
* A KL claim means ``KL <= eps^2`` (the :class:`~experiments.samplers.Claim` convention). If the
  table's ``kl`` column holds KL itself (``kl_error="kl"``, the default) then the measured
  accuracy is ``e = eps^2`` and ``(1/eps)^{b} = (1/e)^{b/2}``: the claimed exponent of 1/e is half
  the paper's, the d exponent is unchanged (``eps_scale = 1/2``). With ``kl_error="sqrt"`` the table
  holds sqrt(KL) and the exponents compare directly. A TV measurement can also test a KL claim,
  because Pinsker gives TV <= sqrt(KL/2): the claim then bounds the TV cost too (match
  ``"implied (Pinsker)"``: ``violated`` is conclusive, ``tight``/``loose`` says nothing about KL).
* Conversely a KL measurement over-estimates the TV cost (Pinsker), so it is an ``"upper proxy
  (Pinsker)"`` for a TV claim.
* W2 claims compare with ``w2``. Other pairs are ``"none"`` and get the verdict ``not comparable``.

Structure (DESIGN.md section 8). On product targets a sampler with deterministic step times has
an output law that is a product, and the error depends on (d, eps) only through one combination:
TV and W2 (and sqrt KL) through d/eps^2, KL itself (a sum over coordinates) through d/eps. So
``b = r a`` with ``r = 2`` (``r = 1`` for KL itself). :func:`verdicts` reports ``b - r a`` with its
robust interval (from ``cov_ab``) and whether the claim itself satisfies ``b_claim = r a_claim``;
a claim that does not cannot be tight in both exponents there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.fits import GROUP_COLUMNS, LEVEL, clean

VERDICTS = ("violated", "tight", "loose", "undetermined", "not comparable", "no claim")

#: (claim metric, measured metric) -> (match, eps_scale for kl_error="kl", note)
METRIC_MATCH: dict[tuple[str, str], tuple[str, float, str]] = {
    ("tv", "tv_annealed"): ("same", 1.0, "annealed TV is the TV of the sampler's output law"),
    ("tv", "tv_quenched"): (
        "upper proxy",
        1.0,
        "quenched TV >= annealed TV, so N* is over-estimated: 'violated' is not conclusive",
    ),
    ("kl", "kl"): ("same", 0.5, "claim KL <= eps^2; table eps bounds KL itself, so b_claim is halved"),
    ("kl", "sqrt_kl"): ("same", 1.0, "claim KL <= eps^2, table eps bounds sqrt(KL)"),
    ("kl", "tv_annealed"): (
        "implied (Pinsker)",
        1.0,
        "TV <= sqrt(KL/2): the KL claim bounds the TV cost; only 'violated' is conclusive",
    ),
    ("tv", "sqrt_kl"): (
        "upper proxy (Pinsker)",
        1.0,
        "TV <= sqrt(KL/2) <= sqrt(KL): N* for sqrt(KL) over-estimates the TV cost; 'violated' is not conclusive",
    ),
    ("tv", "kl"): (
        "upper proxy (Pinsker)",
        0.5,
        "TV <= sqrt(KL/2): N* for KL <= e over-estimates the TV cost at eps = sqrt(e); 'violated' is not conclusive",
    ),
    ("w2", "w2"): ("same", 1.0, "W2 against W2"),
    ("tv", "tv_annealed_half"): (
        "same (half the draws)",
        1.0,
        "annealed TV from the first half of the internal draws: a stability check of the annealed value",
    ),
    ("kl", "tv_annealed_half"): (
        "implied (Pinsker, half the draws)",
        1.0,
        "TV <= sqrt(KL/2), annealed TV from half the internal draws; only 'violated' is conclusive",
    ),
}
#: b = ratio * a on product targets with deterministic-time samplers
STRUCTURE_RATIO = {"tv_annealed": 2.0, "tv_annealed_half": 2.0, "tv_quenched": 2.0, "w2": 2.0, "sqrt_kl": 2.0, "kl": 1.0}


def verdict(lo: float, hi: float, claimed: float) -> str:
    """Compare one 95% interval ``[lo, hi]`` with an upper-bound exponent ``claimed``."""
    if any(v is None or not np.isfinite(float(v)) for v in (lo, hi, claimed)):
        return "undetermined"
    lo, hi, claimed = float(lo), float(hi), float(claimed)
    if lo > hi:
        raise ValueError(f"lo must be <= hi, got lo={lo}, hi={hi}")
    if lo > claimed:
        return "violated"
    if hi < claimed:
        return "loose"
    return "tight"


def registry_claims() -> dict:
    """``{sampler name: Claim or None}`` from :data:`experiments.samplers.REGISTRY`."""
    from experiments.samplers import REGISTRY

    return {name: spec.claim for name, spec in REGISTRY.items()}


def _registry_randomized() -> dict:
    from experiments.samplers import REGISTRY

    return {name: bool(spec.randomized) for name, spec in REGISTRY.items()}


def match_metric(claim_metric: str, measured: str, *, kl_error: str = "kl") -> tuple[str, float, str]:
    """``(match, eps_scale, note)`` for a claim metric and a measured metric (see module doc)."""
    if kl_error not in ("kl", "sqrt"):
        raise ValueError(f"kl_error must be 'kl' or 'sqrt', got {kl_error!r}")
    if measured == "kl" and kl_error == "sqrt":
        measured = "sqrt_kl"
    none = ("none", np.nan, f"a {claim_metric} claim is not tested by {measured}")
    return METRIC_MATCH.get((claim_metric, measured), none)


def claimed_exponents(claim, measured: str, *, kl_error: str = "kl") -> tuple[float, float]:
    """The claim's (d, 1/eps) exponents expressed in the measured metric's eps (NaN if none)."""
    if claim is None:
        return np.nan, np.nan
    _, scale, _ = match_metric(claim.metric, measured, kl_error=kl_error)
    if not np.isfinite(scale):
        return np.nan, np.nan
    return float(claim.d_exp), float(claim.eps_exp) * scale


def default_is_product_target(name: str) -> bool:
    """Product targets are the grouped families; names of dense mixtures say so (``gmm``, ``dense``)."""
    name = str(name).lower()
    return not (name.startswith("gmm") or "dense" in name or "general" in name)


def verdicts(
    fits: pd.DataFrame,
    claims: Mapping | None = None,
    *,
    kl_error: str = "kl",
    randomized: Mapping[str, bool] | None = None,
    is_product_target: Callable[[str], bool] = default_is_product_target,
) -> pd.DataFrame:
    """Join joint fits with the claims and add verdicts, metric matching and the structure check.

    Parameters
    ----------
    fits : output of :func:`analysis.fits.fit_joint` (needs ``sampler``, ``metric``, ``a_lo``...).
    claims : ``{sampler: Claim | None}``; default: the registry.
    kl_error : ``"kl"`` if the table's ``kl`` metric is KL itself, ``"sqrt"`` if it is sqrt(KL).
    randomized : ``{sampler: bool}`` (random step times); default: the registry's
        ``SamplerSpec.randomized``. Unknown samplers get no structure check.
    is_product_target : which targets are products of independent groups.

    Added columns: ``paper``, ``theorem``, ``claim_metric``, ``logs``, ``metric_match``,
    ``metric_note``, ``a_claim``, ``b_claim`` (in the measured metric's eps), ``verdict_d``,
    ``verdict_eps``, ``structure_applies``, ``structure_ratio``, ``b_minus_ra`` with ``_lo``/``_hi``,
    ``structure`` (``consistent``/``inconsistent``/``undetermined``/``n/a``) and
    ``claim_on_structure`` (whether ``b_claim == r a_claim``).
    """
    for col in ("sampler", "metric", "a", "a_lo", "a_hi", "b", "b_lo", "b_hi"):
        if col not in fits.columns:
            raise ValueError(f"fits must have column {col!r} (output of analysis.fits.fit_joint)")
    claims = registry_claims() if claims is None else dict(claims)
    randomized = _registry_randomized() if randomized is None else dict(randomized)
    out = fits.copy()
    new: dict[str, list] = {k: [] for k in (
        "paper", "theorem", "claim_metric", "logs", "metric_match", "metric_note", "a_claim", "b_claim",
        "verdict_d", "verdict_eps", "structure_applies", "structure_ratio", "b_minus_ra", "b_minus_ra_lo",
        "b_minus_ra_hi", "structure", "claim_on_structure",
    )}
    for _, row in fits.iterrows():
        claim = claims.get(row["sampler"])
        metric = row["metric"]
        if claim is None:
            match, note, a_c, b_c = "", "", np.nan, np.nan
            vd = ve = "no claim"
            new["paper"].append("")
            new["theorem"].append("")
            new["claim_metric"].append("")
            new["logs"].append("")
        else:
            match, _, note = match_metric(claim.metric, metric, kl_error=kl_error)
            a_c, b_c = claimed_exponents(claim, metric, kl_error=kl_error)
            if match == "none":
                vd = ve = "not comparable"
            else:
                vd = verdict(row["a_lo"], row["a_hi"], a_c)
                ve = verdict(row["b_lo"], row["b_hi"], b_c)
            new["paper"].append(claim.paper)
            new["theorem"].append(claim.theorem)
            new["claim_metric"].append(claim.metric)
            new["logs"].append(claim.logs)
        new["metric_match"].append(match)
        new["metric_note"].append(note)
        new["a_claim"].append(a_c)
        new["b_claim"].append(b_c)
        new["verdict_d"].append(vd)
        new["verdict_eps"].append(ve)
        # structure: b = r a on product targets with deterministic step times
        metric_key = "sqrt_kl" if (metric == "kl" and kl_error == "sqrt") else metric
        r = STRUCTURE_RATIO.get(metric_key, np.nan)
        applies = bool(
            row["sampler"] in randomized
            and not randomized[row["sampler"]]
            and ("target" not in fits.columns or is_product_target(row["target"]))
            and np.isfinite(r)
        )
        delta, lo, hi, structure = contrast_b_minus_ra(row, r) if np.isfinite(r) else (np.nan,) * 3 + ("n/a",)
        new["structure_applies"].append(applies)
        new["structure_ratio"].append(r)
        new["b_minus_ra"].append(delta)
        new["b_minus_ra_lo"].append(lo)
        new["b_minus_ra_hi"].append(hi)
        new["structure"].append(structure if applies else "n/a")
        new["claim_on_structure"].append(
            bool(np.isclose(b_c, r * a_c)) if np.isfinite(a_c) and np.isfinite(b_c) and np.isfinite(r) else None
        )
    for k, v in new.items():
        out[k] = v
    return out


def contrast_b_minus_ra(row, r: float) -> tuple[float, float, float, str]:
    """``b - r a`` with its 95% interval from the fit's robust covariance and t quantile.

    Returns ``(estimate, lo, hi, status)`` with status ``consistent`` (0 inside the interval),
    ``inconsistent`` or ``undetermined``.
    """
    a, b = float(row["a"]), float(row["b"])
    var = float(row["b_se"]) ** 2 + r**2 * float(row["a_se"]) ** 2 - 2 * r * float(row.get("cov_ab", np.nan))
    df = float(row.get("df_resid", np.nan))
    delta = b - r * a
    if not (np.isfinite(var) and np.isfinite(df) and df >= 1 and var >= 0):
        return delta, np.nan, np.nan, "undetermined"
    half = stats.t.ppf(0.5 + LEVEL / 2, df) * np.sqrt(var)
    lo, hi = delta - half, delta + half
    return delta, lo, hi, "consistent" if lo <= 0 <= hi else "inconsistent"


def compare_at_equal_eps(
    nstar: pd.DataFrame,
    a: str,
    b: str,
    *,
    on: Sequence[str] = ("study", "variant", "target", "metric"),
) -> pd.DataFrame:
    """Ratio ``N*_a / N*_b`` of two samplers at each (d, eps) where both reached eps by interpolation.

    Seeds at one (d, eps) are combined by the geometric mean. Rows where either sampler has no
    interpolated N* are kept, with ``ratio`` NaN and the crossings in ``crossing_a``/``crossing_b``.
    Returns the keys, ``d``, ``eps``, ``nstar_a``, ``nstar_b``, ``ratio``, ``log2_ratio``.
    """
    for name in (a, b):
        if name not in set(nstar["sampler"]):
            raise ValueError(f"sampler {name!r} is not in the table; have {sorted(set(nstar['sampler']))}")
    keys = [c for c in on if c in nstar.columns] + ["d", "eps"]

    def summarise(name):
        part = nstar[nstar["sampler"] == name]
        kept, _ = clean(part)
        geo = kept.assign(_l=np.log(kept["nstar"].astype(float))).groupby(keys, dropna=False)["_l"].mean()
        cross = part.groupby(keys, dropna=False)["crossing"].agg(lambda s: "/".join(sorted(set(map(str, s))))) if (
            "crossing" in part.columns
        ) else None
        res = pd.DataFrame({"nstar": np.exp(geo)})
        if cross is not None:
            res = res.join(cross.rename("crossing"), how="outer")
        return res

    left, right = summarise(a), summarise(b)
    both = pd.merge(left.reset_index(), right.reset_index(), on=keys, how="outer", suffixes=("_a", "_b"))
    both["ratio"] = both["nstar_a"] / both["nstar_b"]
    both["log2_ratio"] = np.log2(both["ratio"])
    both.insert(0, "sampler_b", b)
    both.insert(0, "sampler_a", a)
    return both.sort_values(keys).reset_index(drop=True)


__all__ = [
    "GROUP_COLUMNS",
    "METRIC_MATCH",
    "STRUCTURE_RATIO",
    "VERDICTS",
    "claimed_exponents",
    "compare_at_equal_eps",
    "contrast_b_minus_ra",
    "match_metric",
    "registry_claims",
    "verdict",
    "verdicts",
]
