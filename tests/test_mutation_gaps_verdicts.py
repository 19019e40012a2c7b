"""Verdicts (analysis/verdicts.py): properties that mutation testing (scripts/mutation_report.py) found unpinned.

Every added column of :func:`analysis.verdicts.verdicts` is checked against values computed here from the
module docstring's rules (log allowance as a mean of k / ln x over the window, margin = max(MARGIN, half a
ladder step over the window's log-range)); the boundaries of the verdict rule and of the allowances are
checked exactly at and beside their thresholds.
"""

from __future__ import annotations

import math
from fractions import Fraction
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analysis import verdicts as V
from experiments.samplers import Claim, LogFactor

CLAIMS = {"s": Claim("P", "Thm 1", "tv", Fraction(1, 3), Fraction(2, 3), logs="log d",
                     log_factors=(LogFactor("d", 1),))}
HALF = math.log(2) / 4


def _ex(sampler, metric, a_lo, a_hi, b_lo, b_hi, randomized=False, target="gauss_aniso"):
    return dict(study="t", sampler=sampler, variant="tuned", target=target, metric=metric, a=(a_lo + a_hi) / 2,
                a_lo=a_lo, a_hi=a_hi, b=(b_lo + b_hi) / 2, b_lo=b_lo, b_hi=b_hi, randomized=randomized,
                d_min=10.0, d_max=40.0, eps_min=0.05, eps_max=0.1)


def _nstar():
    rows = [dict(study="t", sampler="s", variant="tuned", target="gauss_aniso", metric=m, d=d, eps=e,
                 nstar=100.0, status="ok")
            for m in ("tv_annealed", "tv_quenched") for d in (10, 100) for e in (0.1, 0.05)]
    far = dict(study="t", sampler="s", variant="tuned", target="gauss_aniso", metric="tv_annealed", d=10**6,
               eps=0.1, nstar=100.0, status="ok")
    rows.append({**far, "status": "above_grid"})                 # not ok: outside the window
    for k, other in [("study", "u"), ("sampler", "x"), ("variant", "theory"), ("target", "g2"), ("metric", "w2")]:
        rows.append({**far, k: other})                            # another curve: outside the window
    return pd.DataFrame(rows)


def test_verdicts_fill_every_column_from_the_claim_window_and_margins():
    ex = pd.DataFrame([_ex("s", "tv_annealed", 0.30, 0.50, 0.50, 0.90),
                       _ex("s", "tv_quenched", 0.30, 0.50, 0.50, 0.90, randomized=True),
                       _ex("s", "energy", 0.30, 0.50, 0.50, 0.90),
                       _ex("s", "tv_annealed", 0.30, 0.50, 0.50, 0.90, target="gmm_2"),
                       _ex("nobody", "tv_annealed", 0.30, 0.50, 0.50, 0.90)])
    v = V.verdicts(ex, _nstar(), CLAIMS)
    assert len(v) == 5 and list(v.columns[:len(ex.columns)]) == list(ex.columns)
    allowance_a = (1 / math.log(10) + 1 / math.log(100)) / 2     # k / ln d averaged over the 4 ok rows
    margin_a = HALF / math.log(40 / 10)                           # 0.125 > 1/24
    margin_b = HALF / math.log(20 / 10)                           # 0.25 > 1/12
    main = v.iloc[0].to_dict()
    expected = dict(paper="P", theorem="Thm 1", claim_metric="tv", logs="log d",
                    log_factors=LogFactor("d", 1).describe(),
                    metric_match="same", transfers="all", metric_note=V.METRIC_MATCH[("tv", "tv_annealed", False)][2],
                    a_claim=1 / 3, b_claim=2 / 3, allowance_b=0.0, outcome_d="consistent", outcome_eps="consistent",
                    verdict_d="consistent", verdict_eps="consistent", claim_on_structure=True)
    assert {k: main[k] for k in expected} == expected
    assert main["allowance_a"] == pytest.approx(allowance_a, rel=1e-12, abs=0)
    assert main["margin_a"] == pytest.approx(margin_a, rel=1e-12, abs=0)
    assert main["margin_b"] == pytest.approx(margin_b, rel=1e-12, abs=0)
    proxy = v.iloc[1]
    assert (proxy["transfers"], proxy["outcome_d"], proxy["verdict_d"], proxy["claim_on_structure"]) == (
        "loose", "consistent", "inconclusive (proxy)", None)
    none = v.iloc[2]
    assert (none["metric_match"], none["transfers"], none["outcome_d"], none["outcome_eps"], none["verdict_d"],
            none["verdict_eps"], none["claim_on_structure"]) == ("none", "none", *["not comparable"] * 4, None)
    assert none["metric_note"] == "a tv claim is not tested by energy"
    assert v.iloc[3]["claim_on_structure"] is None                # a dense mixture has no b = r a structure
    no = v.iloc[4].to_dict()
    assert {k: no[k] for k in ("paper", "theorem", "claim_metric", "logs", "metric_match", "transfers", "metric_note",
                               "outcome_d", "outcome_eps", "verdict_d", "verdict_eps", "claim_on_structure")} == dict(
        paper="", theorem="", claim_metric="", logs="", metric_match="", transfers="none", metric_note="",
        outcome_d="no claim", outcome_eps="no claim", verdict_d="no claim", verdict_eps="no claim",
        claim_on_structure=None)
    assert all(math.isnan(no[k]) for k in ("a_claim", "b_claim", "allowance_a", "allowance_b", "margin_a", "margin_b"))
    # a no-claim row in the middle does not stop the rows after it
    w = V.verdicts(ex.iloc[[4, 0]], _nstar(), CLAIMS)
    assert w["verdict_d"].tolist() == ["no claim", "consistent"]


def test_verdicts_without_randomized_column_or_nstar_table():
    ex = pd.DataFrame([_ex("s", "tv_quenched", 0.30, 0.50, 0.50, 0.90)]).drop(columns=["randomized"])
    ex[["d_min", "d_max", "eps_min", "eps_max"]] = [10.0, 1000.0, 0.001, 0.1]     # long window: fixed margins
    v = V.verdicts(ex, None, CLAIMS).iloc[0]
    # no nstar table: no allowance; no 'randomized' column: deterministic (quenched TV is the TV)
    assert (v["allowance_a"], v["allowance_b"]) == (0.0, 0.0)
    assert (v["margin_a"], v["margin_b"]) == (1 / 24, 1 / 12)
    assert v["transfers"] == "all" and v["verdict_d"] == "inconclusive"     # hi 0.5 > 1/3 + 1/24
    # claims=None reads the registry
    reg = V.verdicts(pd.DataFrame([_ex("li_jiao", "tv_annealed", 0.30, 0.50, 0.50, 0.90)]), None).iloc[0]
    assert reg["paper"].startswith("Li & Jiao")


def test_verdict_rule_defaults_and_strict_boundaries():
    assert V.verdict(0.4, 0.5, 1 / 3) == "violated"               # no allowance, no margin by default
    assert V.verdict(0.30, 0.32, 1 / 3) == "loose"
    assert V.verdict(0.5, 0.6, 0.5) == "inconclusive"             # lo == c: not violated
    assert V.verdict(0.25, 0.5, 0.5, 0.25, 0.25) == "consistent"  # lo == c - m and hi == c + A + m
    assert V.verdict(1.0, 1.1, 0.5, 0.25, 0.25) == "inconclusive"  # lo == c + A + m: not violated
    assert V.verdict(0.1, 0.25, 0.5, 0.0, 0.25) == "inconclusive"  # hi == c - m: not loose
    assert V.transfer("consistent", "none") == "not comparable"
    assert V.match_metric("tv", "energy", False) == ("none", "none", "a tv claim is not tested by energy")


def test_log_allowance_closed_forms_and_thresholds():
    d, eps, n = np.array([10.0, 1000.0]), np.array([0.1, 0.01]), np.array([50.0, 500.0])

    def la(arg, k, nstar=n, a0=0.5, b0=1.0):
        return V.log_allowance([LogFactor(arg, k)], d, eps, nstar, a0, b0)

    x = np.log(d / eps**2)
    assert la("d/eps^2", 2) == (pytest.approx(np.mean(2 / x)), pytest.approx(np.mean(4 / x)))
    assert la("1/eps", 3) == (0.0, pytest.approx(np.mean(3 / np.log(1 / eps))))
    assert la("d", 1) == (pytest.approx(np.mean(1 / np.log(d))), 0.0)
    # cost: a0 k / (ln N - k) where ln N > k + 1/2, else infinite
    for ln_n, finite in [(2.0, False), (2.3, False), (2.75, True), (3.0, True), (4.0, True)]:
        a, b = la("cost", 2, np.full(2, math.exp(ln_n)))
        if finite:
            assert (a, b) == (pytest.approx(0.5 * 2 / (ln_n - 2)), pytest.approx(2 / (ln_n - 2)))
        else:
            assert a == b == math.inf
    with pytest.raises(ValueError, match=r"^unknown log argument 'L'$"):
        V.log_allowance([SimpleNamespace(argument="L", power=1)], d, eps, n, 0.5, 1.0)


def test_ladder_resolution_needs_a_finite_increasing_window():
    assert V.ladder_resolution(0.2, 10.0, 10.0 * math.e) == pytest.approx(0.2)
    assert V.ladder_resolution(0.2, math.nan, 10.0) == math.inf
    assert V.ladder_resolution(0.2, 10.0, math.nan) == math.inf
    assert V.ladder_resolution(0.2, 10.0, 10.0) == math.inf


def test_compare_at_equal_eps_keeps_one_sided_rows_and_a_clean_index():
    rows = [dict(study="t", sampler="a", variant="v", target="g", metric="tv", d=10, eps=0.1, nstar=400, status="ok"),
            dict(study="t", sampler="b", variant="v", target="g", metric="tv", d=10, eps=0.1, nstar=100, status="ok"),
            dict(study="t", sampler="a", variant="v", target="g", metric="tv", d=100, eps=0.1, nstar=800, status="ok"),
            dict(study="t", sampler="b", variant="v", target="g", metric="tv", d=1000, eps=0.1, nstar=50, status="ok")]
    cmp = V.compare_at_equal_eps(pd.DataFrame(rows).iloc[::-1], "a", "b")
    assert list(cmp.columns[:2]) == ["sampler_a", "sampler_b"] and "index" not in cmp.columns
    assert list(cmp.index) == [0, 1, 2] and cmp["d"].tolist() == [10, 100, 1000]
    assert cmp["ratio"].iloc[0] == 4.0 and cmp["log2_ratio"].iloc[0] == 2.0
    assert math.isnan(cmp["ratio"].iloc[1]) and math.isnan(cmp["log2_ratio"].iloc[2])
    assert cmp["nstar_a"].iloc[1] == 800.0 and math.isnan(cmp["nstar_b"].iloc[1])


def test_cost_log_allowance_uses_the_window_nstar_and_each_claimed_exponent():
    # log^1 N in the cost: allowance a0 k / (ln N - k) and b0 k / (ln N - k), N* = 100 on the whole window
    claims = {"s": Claim("P", "Thm", "tv", Fraction(1, 3), Fraction(2, 3),
                         log_factors=(LogFactor("cost", 1), LogFactor("d", 2)))}
    v = V.verdicts(pd.DataFrame([_ex("s", "tv_annealed", 0.30, 0.50, 0.50, 0.90)]), _nstar(), claims).iloc[0]
    scale = 1 / (math.log(100) - 1)
    assert v["allowance_a"] == pytest.approx(scale / 3 + (2 / math.log(10) + 2 / math.log(100)) / 2, rel=1e-12, abs=0)
    assert v["allowance_b"] == pytest.approx(2 * scale / 3, rel=1e-12, abs=0)
    assert v["log_factors"] == f"{LogFactor('cost', 1).describe()}; {LogFactor('d', 2).describe()}"
    # the threshold ln N = k + 1/2 itself is where the claim cannot be tested
    k = Fraction(math.log(100) - 0.5)
    assert np.log(100.0) == float(k) + 0.5
    assert V.log_allowance([LogFactor("cost", k)], [10.0], [0.1], [100.0], 1.0, 1.0) == (math.inf, math.inf)


def test_window_filter_ignores_keys_the_nstar_table_lacks_and_window_columns_are_optional():
    ex = pd.DataFrame([_ex("s", "tv_annealed", 0.30, 0.50, 0.50, 0.90)])
    full = V.verdicts(ex, _nstar(), CLAIMS).iloc[0]
    nst = _nstar()
    no_study = V.verdicts(ex, nst[nst["study"] == "t"].drop(columns="study"), CLAIMS).iloc[0]
    assert no_study["allowance_a"] == full["allowance_a"]
    bare = V.verdicts(ex.drop(columns=["d_min", "d_max", "eps_min", "eps_max"]), _nstar(), CLAIMS).iloc[0]
    assert bare["margin_a"] >= 1 / 24 and bare["margin_b"] >= 1 / 12


def test_a_table_of_unclaimed_samplers_has_every_column_with_nan_numbers():
    v = V.verdicts(pd.DataFrame([_ex("nobody", "tv_annealed", 0.30, 0.50, 0.50, 0.90)]), None, CLAIMS)
    for col in ("a_claim", "b_claim", "allowance_a", "allowance_b", "margin_a", "margin_b"):
        assert isinstance(v[col].iloc[0], float) and math.isnan(v[col].iloc[0]), col
