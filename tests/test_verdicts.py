"""The verdict rule: outcomes, margins, the allowance for a claim's hidden logs, metric honesty.

The allowance formulas are pinned against brute force: a synthetic N* that is exactly a power law times
the declared log factor is fitted with the suite's power-law fit, and the measured exponent minus the
power must equal the allowance on that window (to a stated fraction of it), while the allowance of a
log in the *wrong* argument misses by more than that tolerance (a negative control with a margin).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from analysis import verdicts as V
from analysis.exponents import fit_exponents
from experiments.samplers import Claim, LogFactor

D = (10, 100, 1000, 10**4, 10**5, 10**6)
EPS = (0.2, 0.1, 0.05, 0.02, 0.01, 0.005)


def grid():
    d, e = (g.ravel() for g in np.meshgrid(np.asarray(D, float), np.asarray(EPS, float), indexing="ij"))
    return d, e


def measured(n, d, e):
    X = np.column_stack([np.ones_like(d), np.log(d), np.log(1 / e)])
    return np.linalg.lstsq(X, np.log(n), rcond=None)[0][1:]


def with_log(argument, k, a0, b0, d, e):
    base = d**a0 * e**-b0
    if argument == "cost":          # N = base log^k N: fixed point
        n = base * 10.0
        for _ in range(200):
            n = base * np.log(n) ** k
        return n
    x = {"d": d, "d/eps": d / e, "d/eps^2": d / e**2, "1/eps": 1 / e}[argument]
    return base * np.log(x) ** k


# ------------------------------------------------------------------ the rule

def test_outcomes_on_hand_built_intervals():
    c, m = 0.5, 0.05
    assert V.verdict(0.60, 0.70, c, 0.0, m) == "violated"
    assert V.verdict(0.46, 0.54, c, 0.0, m) == "consistent"
    assert V.verdict(0.30, 0.44, c, 0.0, m) == "loose"
    assert V.verdict(0.40, 0.60, c, 0.0, m) == "inconclusive"          # straddles both boundaries
    assert V.verdict(0.52, 0.58, c, 0.0, m) == "inconclusive"          # not above c + m, not inside
    # the allowance moves only the upper boundary
    assert V.verdict(0.60, 0.70, c, 0.2, m) == "consistent"
    assert V.verdict(0.30, 0.44, c, 0.2, m) == "loose"
    assert V.verdict(0.76, 0.80, c, 0.2, m) == "violated"
    # boundaries are inclusive for consistent
    assert V.verdict(c - m, c + m, c, 0.0, m) == "consistent"
    assert V.verdict(np.nan, 0.5, c) == "undetermined"
    assert V.verdict(0.46, 3.0, c, math.inf, m) == "consistent"          # an untestable claim is never violated
    assert V.verdict(0.46, 0.5, c, np.nan, m) == "undetermined"          # no window, no allowance
    for bad in (dict(allowance=-0.1), dict(margin=-0.1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            V.verdict(0.4, 0.6, c, **{"allowance": 0.0, "margin": 0.0, **bad})
    with pytest.raises(ValueError, match="lo"):
        V.verdict(0.7, 0.6, c)


def test_only_the_transferable_outcome_reaches_a_partial_metric():
    assert V.transfer("violated", "all") == "violated"
    assert V.transfer("loose", "loose") == "loose"
    for o in ("violated", "consistent", "inconclusive"):
        assert V.transfer(o, "loose") == "inconclusive (proxy)"
    assert V.transfer("violated", "violated") == "violated"
    for o in ("loose", "consistent"):
        assert V.transfer(o, "violated") == "inconclusive (implied)"
    assert V.transfer("undetermined", "loose") == "undetermined"


def test_metric_matching_depends_on_randomness():
    # a randomized sampler's quenched TV and mean conditional KL are upper proxies: only 'loose' transfers
    assert V.match_metric("tv", "tv_quenched", True)[:2] == ("upper proxy", "loose")
    assert V.match_metric("kl", "sqrt_kl", True)[:2] == ("upper proxy", "loose")
    # one law: they are exact
    assert V.match_metric("tv", "tv_quenched", False)[:2] == ("same", "all")
    assert V.match_metric("kl", "sqrt_kl", False)[:2] == ("same", "all")
    assert V.match_metric("tv", "tv_annealed", True)[:2] == ("same", "all")
    assert V.match_metric("kl", "tv_annealed", False)[1] == "violated"
    assert V.match_metric("w2", "tv_annealed", False)[0] == "none"


def test_margins_are_justified_on_the_default_window():
    # at most half the gap between the headline d-exponents, so one interval cannot be consistent with both
    assert V.MARGIN["a"] <= (Fraction(5, 12) - Fraction(1, 3)) / 2
    assert V.MARGIN["b"] <= (Fraction(1) - Fraction(2, 3)) / 2
    # at least the ladder resolution of the default window (per_octave = 2: half a step is ln 2 / 4)
    half = math.log(2) / 4
    assert V.ladder_resolution(half, 10, 10**6) <= V.MARGIN["a"]
    assert V.ladder_resolution(half, 1 / 0.2, 1 / 0.005) <= V.MARGIN["b"]
    # negative control: a window of one decade in d is too short for the d-margin
    assert V.ladder_resolution(half, 10, 100) > V.MARGIN["a"]


# ------------------------------------------------------------------ allowance against brute force

@pytest.mark.parametrize("argument,k,wrong", [
    ("d/eps", 1, "d/eps^2"), ("d/eps^2", 1, "d/eps"), ("d", 2, "d/eps"), ("1/eps", 1, "d/eps"),
    ("cost", Fraction(8, 3), "d/eps"),
])
def test_allowance_equals_the_bend_of_a_fitted_exponent(argument, k, wrong):
    d, e = grid()
    a0, b0 = 1 / 3, 2 / 3
    n = with_log(argument, float(k), a0, b0, d, e)
    a, b = measured(n, d, e)
    al_a, al_b = V.log_allowance([LogFactor(argument, k)], d, e, n, a0, b0)
    # the measured bend equals the allowance to 20% of the allowance (OLS averages the local slopes)
    assert abs((a - a0) - al_a) <= 0.2 * max(al_a, 1e-3) + 1e-3, (a - a0, al_a)
    assert abs((b - b0) - al_b) <= 0.2 * max(al_b, 1e-3) + 1e-3, (b - b0, al_b)
    # the allowance of the log in another argument misses the bend by more than that tolerance
    wa, wb = V.log_allowance([LogFactor(wrong, k)], d, e, n, a0, b0)
    miss = max(abs((a - a0) - wa) - 0.2 * max(al_a, 1e-3), abs((b - b0) - wb) - 0.2 * max(al_b, 1e-3))
    assert miss > 0.01, (argument, wrong, a - a0, wa, b - b0, wb)


def test_allowance_of_a_cost_log_is_infinite_where_the_claim_cannot_be_tested():
    al_a, _ = V.log_allowance([LogFactor("cost", 8)], [10.0], [0.1], [100.0], 1 / 3, 2 / 3)
    assert al_a == math.inf          # ln 100 = 4.6 < 8 + 1/2
    al_a, _ = V.log_allowance([LogFactor("cost", 1)], [10.0], [0.1], [1e6], 1 / 3, 2 / 3)
    assert al_a == pytest.approx(1 / 3 * 1 / (math.log(1e6) - 1))


# ------------------------------------------------------------------ verdicts on tables

def _exponent_row(sampler, metric, a, lo, hi, b, blo, bhi, randomized, **kw):
    return dict(study="t", sampler=sampler, variant="tuned", target="gauss_aniso", metric=metric, a=a, a_lo=lo,
                a_hi=hi, b=b, b_lo=blo, b_hi=bhi, randomized=randomized, interval="jackknife 95%",
                d_min=10, d_max=1e6, eps_min=0.005, eps_max=0.2, **kw)


def test_verdicts_join_claims_allowance_and_metric_honesty():
    claims = {"lj": Claim("p", "thm", "tv", Fraction(1, 3), Fraction(2, 3),
                          log_factors=(LogFactor("d/eps", 1),)),
              "dd": Claim("p", "thm", "kl", Fraction(1, 2), Fraction(1))}
    ex = pd.DataFrame([
        _exponent_row("lj", "tv_annealed", 0.36, 0.34, 0.38, 0.70, 0.66, 0.74, True),
        _exponent_row("lj", "tv_quenched", 0.36, 0.34, 0.38, 0.70, 0.66, 0.74, True),
        _exponent_row("lj", "sqrt_kl", 0.20, 0.18, 0.22, 0.40, 0.36, 0.44, True),
        _exponent_row("dd", "sqrt_kl", 0.50, 0.50, 0.50, 1.00, 1.00, 1.00, False),
        _exponent_row("dd", "tv_annealed", 0.90, 0.88, 0.92, 1.0, 1.0, 1.0, False),
    ])
    d, e = grid()
    nstar = pd.concat([pd.DataFrame(dict(study="t", sampler=s, variant="tuned", target="gauss_aniso", metric=m,
                                         d=d, eps=e, nstar=1e3, status="ok"))
                       for s, m in ex[["sampler", "metric"]].itertuples(index=False)])
    v = V.verdicts(ex, nstar, claims).set_index(["sampler", "metric"])
    assert v.loc[("lj", "tv_annealed"), "verdict_d"] == "consistent"
    assert v.loc[("lj", "tv_annealed"), "allowance_a"] > 0.05            # log(d/eps) on this window
    assert v.loc[("lj", "tv_quenched"), "verdict_d"] == "inconclusive (proxy)"
    assert v.loc[("lj", "sqrt_kl"), "verdict_d"] == "loose"                # loose transfers from a proxy
    assert v.loc[("dd", "sqrt_kl"), "verdict_d"] == "consistent"
    assert v.loc[("dd", "sqrt_kl"), "claim_on_structure"]                  # KL claim 1/2, 1: b = 2a
    assert v.loc[("dd", "tv_annealed"), "verdict_d"] == "violated"         # Pinsker: violated transfers
    # without the declared log the same interval is not consistent (the allowance decides)
    plain = {"lj": Claim("p", "thm", "tv", Fraction(1, 3), Fraction(2, 3))}
    w = V.verdicts(ex[ex["sampler"] == "lj"], nstar, plain).set_index("metric")
    assert w.loc["tv_annealed", "verdict_d"] == "inconclusive"


def test_registry_claims_declare_where_their_logs_sit():
    claims = V.registry_claims()
    lj = claims["li_jiao"]
    assert [(f.argument, f.power) for f in lj.log_factors] == [("cost", Fraction(8, 3))]
    assert [(f.argument, f.power) for f in claims["gupta_cai_chen"].log_factors] == [("d/eps", 1)]
    for name, claim in claims.items():
        if claim is not None and claim.logs:
            assert claim.log_factors, f"{name} says {claim.logs!r} but declares no log factor"
            assert all(f.source.startswith("[") for f in claim.log_factors), name
    with pytest.raises(ValueError, match="argument"):
        LogFactor("T", 1)
    with pytest.raises(ValueError, match="power"):
        LogFactor("cost", 0)


def test_verdicts_from_fitted_exponents_end_to_end():
    # deterministic sampler, exact power law in d/eps^2 with s = 1/2: consistent with a (1/2, 1) claim
    d, e = grid()
    n = 3.0 * (d / e**2) ** 0.5
    nstar = pd.DataFrame(dict(study="t", sampler="dd", variant="tuned", target="gauss_aniso", metric="sqrt_kl",
                              d=d, eps=e, nstar=n, status="ok", params="{}"))
    ex, _ = fit_exponents(nstar, randomized={"dd": False})
    claims = {"dd": Claim("p", "thm", "kl", Fraction(1, 2), Fraction(1))}
    v = V.verdicts(ex, nstar, claims).iloc[0]
    assert v["verdict_d"] == "consistent" and v["verdict_eps"] == "consistent"
    wrong = {"dd": Claim("p", "thm", "kl", Fraction(1, 3), Fraction(1))}
    assert V.verdicts(ex, nstar, wrong).iloc[0]["verdict_d"] == "violated"
