r"""Verdicts: a measured exponent interval against a paper's claim, with a margin and the claim's hidden logs.

A claim reads ``N*(d, eps) <= C d^{a_claim} (1/eps)^{b_claim}`` up to log factors: an upper bound. For
one exponent with interval ``[lo, hi]`` (:mod:`analysis.exponents`: a replicate-jackknife 95% interval
for randomized samplers, the range of local slopes for deterministic ones), the claim ``c``, the
allowance ``A >= 0`` for its declared log factors on the actual window, and a margin ``m``:

==================  ======================================  =======================================================
verdict             condition                               reading
==================  ======================================  =======================================================
``violated``        ``lo > c + A + m``                      grows faster than the claim allows, even with its logs
``consistent``      ``c - m <= lo`` and ``hi <= c + A + m``  the measured exponent is the claimed one (within margin)
``loose``           ``hi < c - m``                          grows more slowly: the bound is not attained here
``inconclusive``    anything else                           the interval straddles a boundary: we do not know
``undetermined``    NaN interval                            too few points (see the exponents' ``reason``)
==================  ======================================  =======================================================

**Allowance for hidden logs** (:class:`experiments.samplers.LogFactor`). A factor :math:`\log^k x` in the
cost adds to a local exponent the derivative of :math:`k\log\log x`: about :math:`k/\ln x` per unit of
:math:`\partial\ln x`. Per argument, averaged over the window's points:

* ``d/eps``: :math:`k/\ln(d/\varepsilon)` to a and to b; ``d/eps^2``: :math:`k/\ln(d/\varepsilon^2)` to a,
  twice that to b; ``d``: :math:`k/\ln d` to a; ``1/eps``: :math:`k/\ln(1/\varepsilon)` to b;
* ``cost`` (N itself): from :math:`N = C d^{a_0}\varepsilon^{-b_0}\log^k N`,
  :math:`a = a_0/(1 - k/\ln N)`, i.e. :math:`a_0 k/(\ln N - k)` (and :math:`b_0 k/(\ln N - k)` for b);
  where :math:`\ln N \le k + 1/2` the allowance is infinite (the claim cannot be tested there).

The allowance is one-sided: logs can only make the cost grow faster than the power.

**Margin.** :data:`MARGIN` = 1/24 for the d-exponent: half of 5/12 - 1/3, so that one interval cannot be
consistent with both headline claims; 1/12 for the eps-exponent (half of 1/6, the smallest gap between
distinct eps-exponents of the registered claims' headline pair 2/3 and 1 is 1/3). Each margin is at
least the window's *ladder resolution*: half a ladder step in log N* spread over the window's log-range
of d (or of 1/eps); where a window is too short for that, the resolution is used and reported.

**Metric honesty**: a claim is tested in its own metric, or through a stated inequality between metrics.
The claim's metric and the measured one are matched through
:data:`METRIC_MATCH`. For randomized samplers the quenched TV and the mean conditional KL are *upper
proxies* of the annealed quantities the theorems bound (convexity): their N* can only be larger, so only
``loose`` transfers to the claim (a bound not attained even by the proxy's larger cost is not attained);
anything else is ``inconclusive (proxy)``. A TV measurement tests a KL claim through Pinsker
(:math:`TV \le \sqrt{KL/2}`): only ``violated`` transfers. For deterministic samplers the quenched
quantities are exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
import pandas as pd

from analysis.exponents import STRUCTURE_RATIO, default_is_product_target

OUTCOMES = ("violated", "consistent", "loose", "inconclusive", "undetermined")
#: margins of the d- and eps-exponents (see the module docstring)
MARGIN = {"a": Fraction(1, 24), "b": Fraction(1, 12)}

#: (claim metric, measured metric, randomized sampler) -> (match, what transfers, note)
METRIC_MATCH: dict[tuple[str, str, bool], tuple[str, str, str]] = {}
for _rnd in (False, True):
    METRIC_MATCH[("tv", "tv_annealed", _rnd)] = ("same", "all", "annealed TV is the TV of the sampler's output law")
    METRIC_MATCH[("kl", "tv_annealed", _rnd)] = (
        "implied (Pinsker)", "violated", "TV <= sqrt(KL/2): the KL claim bounds the TV cost; only 'violated' transfers")
    METRIC_MATCH[("w2", "w2", _rnd)] = ("same" if not _rnd else "upper proxy", "all" if not _rnd else "loose",
                                       "W2" if not _rnd else "mean conditional W2 >= W2 of the mixture")
METRIC_MATCH[("tv", "tv_quenched", False)] = ("same", "all", "one law: quenched TV is the TV")
METRIC_MATCH[("tv", "tv_quenched", True)] = ("upper proxy", "loose",
                                             "quenched TV >= annealed TV (convexity): only 'loose' transfers")
METRIC_MATCH[("kl", "sqrt_kl", False)] = ("same", "all", "claim KL <= eps^2, measured sqrt(KL) <= eps")
METRIC_MATCH[("kl", "sqrt_kl", True)] = ("upper proxy", "loose",
                                         "mean conditional KL >= KL of the mixture (joint convexity): only 'loose' "
                                         "transfers")
METRIC_MATCH[("tv", "sqrt_kl", False)] = ("upper proxy (Pinsker)", "loose",
                                          "TV <= sqrt(KL/2) <= sqrt(KL): the sqrt(KL) cost over-estimates the TV cost")
METRIC_MATCH[("tv", "sqrt_kl", True)] = METRIC_MATCH[("tv", "sqrt_kl", False)]


def registry_claims() -> dict:
    """``{sampler name: Claim or None}`` from :data:`experiments.samplers.REGISTRY`."""
    from experiments.samplers import REGISTRY

    return {name: spec.claim for name, spec in REGISTRY.items()}


def match_metric(claim_metric: str, measured: str, randomized: bool) -> tuple[str, str, str]:
    """``(match, transfers, note)``: ``transfers`` is ``all``, ``loose``, ``violated`` or ``none``."""
    return METRIC_MATCH.get((claim_metric, measured, bool(randomized)),
                            ("none", "none", f"a {claim_metric} claim is not tested by {measured}"))


def verdict(lo, hi, claimed, allowance=0.0, margin=0.0) -> str:
    """One exponent's outcome (see the module docstring)."""
    vals = [lo, hi, claimed, allowance, margin]
    if any(x is None for x in vals) or any(not np.isfinite(float(x)) for x in (lo, hi, claimed, margin)):
        return "undetermined"
    lo, hi, c, allowance, m = (float(x) for x in vals)
    if math.isnan(allowance):            # no window to compute it on
        return "undetermined"
    if allowance < 0:
        raise ValueError(f"allowance must be >= 0, got {allowance}")
    if m < 0:
        raise ValueError(f"margin must be >= 0, got {m}")
    if lo > hi:
        raise ValueError(f"lo must be <= hi, got lo={lo}, hi={hi}")
    if lo > c + allowance + m:
        return "violated"
    if hi < c - m:
        return "loose"
    if lo >= c - m and hi <= c + allowance + m:
        return "consistent"
    return "inconclusive"


def transfer(outcome: str, transfers: str) -> str:
    """The verdict on the claim from an outcome in a metric that tests it only partly."""
    if transfers == "all" or outcome == "undetermined":
        return outcome
    if transfers == "none":
        return "not comparable"
    return outcome if outcome == transfers else f"inconclusive ({'proxy' if transfers == 'loose' else 'implied'})"


def log_allowance(log_factors, d, eps, nstar, a0: float, b0: float) -> tuple[float, float]:
    """One-sided allowances ``(for a, for b)`` of a claim's log factors, averaged over the window's points."""
    d, eps, n = (np.asarray(x, float) for x in (d, eps, nstar))
    if d.size == 0:
        return math.nan, math.nan
    add_a, add_b = np.zeros(d.size), np.zeros(d.size)
    for f in log_factors:
        k = float(f.power)
        if f.argument == "cost":
            ln = np.log(n)
            with np.errstate(divide="ignore"):
                scale = np.where(ln > k + 0.5, k / np.maximum(ln - k, 1e-300), np.inf)
            add_a, add_b = add_a + a0 * scale, add_b + b0 * scale
        elif f.argument == "d":
            add_a = add_a + k / np.log(d)
        elif f.argument == "d/eps":
            x = np.log(d / eps)
            add_a, add_b = add_a + k / x, add_b + k / x
        elif f.argument == "d/eps^2":
            x = np.log(d / eps**2)
            add_a, add_b = add_a + k / x, add_b + 2 * k / x
        elif f.argument == "1/eps":
            add_b = add_b + k / np.log(1.0 / eps)
        else:
            raise ValueError(f"unknown log argument {f.argument!r}")
    return float(np.mean(add_a)), float(np.mean(add_b))


def ladder_resolution(half_step: float, lo: float, hi: float) -> float:
    """Half a ladder step in log N* spread over a window's log-range ``[lo, hi]`` of d (or 1/eps)."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return math.inf
    return half_step / math.log(hi / lo)


def verdicts(exponents: pd.DataFrame, nstar: pd.DataFrame | None = None, claims: Mapping | None = None, *,
             half_step: float = math.log(2) / 4,
             is_product_target=default_is_product_target) -> pd.DataFrame:
    """Join exponent estimates with the claims and give the verdicts.

    ``exponents``: :func:`analysis.exponents.fit_exponents` output (``a``, ``a_lo``, ``a_hi``, ``b``...,
    ``randomized``); ``nstar``: the N* table, whose ok rows give the window for the log allowance;
    ``half_step``: half the ladder spacing in log cost (ln 2 / (2 per_octave); default per_octave = 2).
    Added columns: ``paper``, ``theorem``, ``claim_metric``, ``logs``, ``metric_match``, ``transfers``,
    ``metric_note``, ``a_claim``, ``b_claim``, ``allowance_a``, ``allowance_b``, ``margin_a``, ``margin_b``,
    ``outcome_d``/``outcome_eps`` (in the measured metric) and ``verdict_d``/``verdict_eps`` (for the claim),
    ``claim_on_structure`` (b_claim = r a_claim, where the b = r a structure applies).
    """
    claims = registry_claims() if claims is None else dict(claims)
    out = []
    for _, row in exponents.iterrows():
        rec = row.to_dict()
        claim = claims.get(row["sampler"])
        rnd = bool(row.get("randomized", False))
        if claim is None:
            rec.update(paper="", theorem="", claim_metric="", logs="", metric_match="", transfers="none",
                       metric_note="", a_claim=math.nan, b_claim=math.nan, allowance_a=math.nan,
                       allowance_b=math.nan, margin_a=math.nan, margin_b=math.nan, outcome_d="no claim",
                       outcome_eps="no claim", verdict_d="no claim", verdict_eps="no claim",
                       claim_on_structure=None)
            out.append(rec)
            continue
        match, transfers, note = match_metric(claim.metric, row["metric"], rnd)
        a0, b0 = float(claim.d_exp), float(claim.eps_exp)
        if nstar is not None:
            sel = np.ones(len(nstar), dtype=bool)
            for k in ("study", "sampler", "variant", "target", "metric"):
                if k in nstar.columns and k in rec:
                    sel &= (nstar[k] == rec[k]).to_numpy()
            win = nstar[sel & (nstar["status"] == "ok").to_numpy()]
            al_a, al_b = log_allowance(claim.log_factors, win["d"], win["eps"], win["nstar"], a0, b0)
        else:
            al_a = al_b = 0.0
        m_a = max(float(MARGIN["a"]),
                  ladder_resolution(half_step, row.get("d_min", math.nan), row.get("d_max", math.nan)))
        m_b = max(float(MARGIN["b"]), ladder_resolution(half_step, 1 / row.get("eps_max", math.nan),
                                                         1 / row.get("eps_min", math.nan)))
        if match == "none":
            od = oe = vd = ve = "not comparable"
        else:
            od = verdict(row["a_lo"], row["a_hi"], a0, al_a, m_a)
            oe = verdict(row["b_lo"], row["b_hi"], b0, al_b, m_b)
            vd, ve = transfer(od, transfers), transfer(oe, transfers)
        r = STRUCTURE_RATIO.get(row["metric"], math.nan)
        applies = (not rnd) and is_product_target(row.get("target", "")) and np.isfinite(r)
        rec.update(paper=claim.paper, theorem=claim.theorem, claim_metric=claim.metric, logs=claim.logs,
                   log_factors="; ".join(f.describe() for f in claim.log_factors), metric_match=match,
                   transfers=transfers, metric_note=note, a_claim=a0, b_claim=b0, allowance_a=al_a,
                   allowance_b=al_b, margin_a=m_a, margin_b=m_b, outcome_d=od, outcome_eps=oe, verdict_d=vd,
                   verdict_eps=ve, claim_on_structure=bool(np.isclose(b0, r * a0)) if applies else None)
        out.append(rec)
    return pd.DataFrame(out)


def compare_at_equal_eps(nstar: pd.DataFrame, a: str, b: str, *,
                         on: Sequence[str] = ("study", "variant", "target", "metric")) -> pd.DataFrame:
    """Ratio ``N*_a / N*_b`` of two samplers at each (d, eps) where both have an ok N*.

    Returns the keys, ``d``, ``eps``, ``nstar_a``, ``nstar_b``, ``ratio``, ``log2_ratio`` and the status of
    each side (rows where either is not ok keep NaN in ``ratio``)."""
    for name in (a, b):
        if name not in set(nstar["sampler"]):
            raise ValueError(f"sampler {name!r} is not in the table; have {sorted(set(nstar['sampler']))}")
    keys = [c for c in on if c in nstar.columns] + ["d", "eps"]

    def side(name):
        part = nstar[nstar["sampler"] == name]
        value = np.where(part["status"] == "ok", part["nstar"].astype(float), np.nan)
        return part.assign(nstar=value)[keys + ["nstar", "status"]]

    both = pd.merge(side(a), side(b), on=keys, how="outer", suffixes=("_a", "_b"))
    both["ratio"] = both["nstar_a"] / both["nstar_b"]
    both["log2_ratio"] = np.log2(both["ratio"])
    both.insert(0, "sampler_b", b)
    both.insert(0, "sampler_a", a)
    return both.sort_values(keys).reset_index(drop=True)


__all__ = ["MARGIN", "METRIC_MATCH", "OUTCOMES", "compare_at_equal_eps", "ladder_resolution", "log_allowance",
           "match_metric", "registry_claims", "transfer", "verdict", "verdicts"]
