"""N* search (experiments/complexity.py): properties that mutation testing (scripts/mutation_report.py) found
unpinned: the cost ladder against hand-computed ladders, the monotonicity slack, input checks, and every
column of the N* tables against values computed here from nstar_detail and the jackknife formula."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import experiments.replicates  # noqa: F401  (nstar_table imports it lazily; loading it here keeps each test fast)
from experiments.complexity import CURVE, cost_ladder, is_monotone, nstar_detail, nstar_table


def test_cost_ladder_matches_hand_computed_ladders():
    # 10 * 2^(k/2), k = 0..6, rounded: 10, 14.1, 20, 28.3, 40, 56.6, 80
    assert cost_ladder(10, 80) == [10, 14, 20, 28, 40, 57, 80]
    assert cost_ladder(10, 80, 2, 1) == cost_ladder(10, 80)
    assert cost_ladder(10, 81, 1) == [10, 20, 40, 80, 160]            # the first value >= stop ends it
    assert cost_ladder(10, 10) == [10]                                 # stop == start is allowed
    # multiples of 10 (e.g. Li & Jiao's T): 30 * 2^(k/2) / 10, rounded, times 10
    assert cost_ladder(30, 240, 2, 10) == [30, 40, 60, 80, 120, 170, 240]
    assert cost_ladder(1, 4, 1, 4) == [4]                              # values below one multiple become one
    for args, msg in [((0, 10), r"^start must be an integer >= 1"), ((1, 0), r"^stop must be an integer >= 1"),
                      ((1, 10, 0), r"^per_octave must be an integer >= 1"),
                      ((1, 10, 1, 0), r"^multiple must be an integer >= 1"), ((10, 9), r"^stop must be >= start$")]:
        with pytest.raises(ValueError, match=msg):
            cost_ladder(*args)


def test_monotone_slack_is_three_combined_standard_errors():
    assert is_monotone([0.3, 0.3, 0.1])                                # a flat step is not a rise
    se = np.array([0.0, 1.0, 0.0])
    # rise of 2.9 at each step, slack 3 * hypot(se[i+1], se[i]) = 3 at both steps
    assert is_monotone([10.0, 12.9, 15.8], se)
    assert not is_monotone([10.0, 13.1, 10.0], se)
    assert is_monotone([10.0, 13.4, 13.4], se, n_se=3.5) and not is_monotone([10.0, 13.4, 13.4], se)
    # a non-finite standard error counts as 0, not as noise
    assert not is_monotone([0.1, 0.2], [np.nan, np.nan])
    with pytest.raises(ValueError, match=r"^errors must have 1 dimension, got shape \(1, 2\)$"):
        is_monotone([[0.1, 0.2]])


def test_nstar_input_checks_name_the_problem():
    for args, msg in [(([[10, 20]], [[0.1, 0.05]], 0.07), r"^nfe must have 1 dimension"),
                      (([10, 20], ["a", "b"], 0.07), r"^errors must be numeric"),
                      (([10, 20], [[0.1, 0.05]], 0.07), r"^errors must have 1 dimension, got shape \(1, 2\)$"),
                      (([10, 20], [0.1, -np.inf], 0.07), r"^errors must not be -inf$"),
                      (([10, 20], [0.1, 0.05], 0.0), r"^eps must lie in"),
                      (([10, 20], [0.1, 0.05, 0.01], 0.07), r"^nfe and errors must have the same shape, got \(2,\) "
                                                               r"and \(3,\)$"),
                      (([10, 10, 20], [0.1, 0.08, 0.05], 0.07), r"^nfe must be strictly increasing$"),
                      (([0, 10], [0.1, 0.05], 0.07), r"^nfe must be > 0")]:
        with pytest.raises(ValueError, match=msg):
            nstar_detail(*args)
    # a step of less than one NFE is still increasing; a NaN standard error counts as 0
    assert nstar_detail([10.0, 10.5, 20.0], [0.2, 0.1, 0.05], 0.07).crossing == "interpolated"
    res = nstar_detail([10.0, 20.0], [0.2, 0.05], 0.1, [np.nan, 0.01])
    expected = (math.log(20) - math.log(10)) * (math.log(0.1) - math.log(0.2)) / (math.log(0.05) - math.log(0.2)) ** 2
    assert res.log_se == pytest.approx(abs(expected) * 0.01 / 0.05, rel=1e-12, abs=0)


def _rows(sampler, metric, d, costs, errors, se_rel=0.01, seed=7, draws=True, gate=True, params="{}"):
    rows = []
    for c, e in zip(costs, errors, strict=True):
        r = dict(study="s", sampler=sampler, variant="tuned", target="t", params=params, metric=metric, d=d, cost=c,
                 nfe=2.0 * c, error=e, error_se=se_rel * e, seed=seed, profile="p")
        if draws:
            r["draws"] = 16 * c
        if gate:
            r["gate"] = "resolved"
        rows.append(r)
    return rows


def test_nstar_table_columns_and_values():
    costs = (10, 20, 40, 80)
    err = [0.4, 0.2, 0.05, 0.02]
    rows = (_rows("a", "tv", 10, costs, [0.4, 0.3, 0.2, 0.15])              # never reaches eps: above the grid
            + _rows("a", "kl", 10, costs, [0.4, 0.1025, 0.11, 0.02], se_rel=0.1)  # rises less than its noise
            + _rows("a", "kl", 100, (10,), [0.05])                              # a one-cell curve
            + _rows("x", "tv", 10, costs, err))
    served = {(s, "tuned", "t", "{}"): {(10, 0.1), (100, 0.1)} for s in ("x", "a")}
    table, reps = nstar_table(pd.DataFrame(rows), None, served=served)
    assert list(table.columns) == ["study", "sampler", "variant", "target", "metric", "d", "eps", "nstar", "crossing",
                                   "nstar_log_se", "nstar_jk_se", "status", "monotone", "draws", "seed", "profile",
                                   "params"]
    assert reps.empty
    # one row per curve and served eps, ordered by the curve's key
    keys = [tuple(r) for r in table[["sampler", "metric", "d"]].to_numpy()]
    assert keys == [("a", "kl", 10), ("a", "kl", 100), ("a", "tv", 10), ("x", "tv", 10)]
    by = {k: r for k, r in zip(keys, table.to_dict("records"), strict=True)}
    nfe = 2.0 * np.array(costs)
    x = by[("x", "tv", 10)]
    ref = nstar_detail(nfe, err, 0.1, 0.01 * np.array(err))
    assert x["nstar"] == ref.value and x["nstar_log_se"] == ref.log_se > 0
    assert (x["crossing"], x["status"], x["monotone"], x["draws"], x["seed"], x["profile"], x["params"]) == (
        "interpolated", "ok", True, 16 * 80, 7, "p", "{}")
    assert (x["study"], x["variant"], x["target"], x["eps"]) == ("s", "tuned", "t", 0.1)
    assert math.isnan(x["nstar_jk_se"])
    assert by[("a", "tv", 10)]["status"] == "above_grid" and by[("a", "tv", 10)]["draws"] == 16 * 80
    noisy = by[("a", "kl", 10)]
    assert noisy["monotone"] and not is_monotone([0.4, 0.1025, 0.11, 0.02])    # monotone within its noise only
    assert noisy["status"] == "ok"
    one = by[("a", "kl", 100)]
    assert (one["crossing"], one["seed"], one["profile"], one["draws"]) == ("below_grid", 7, "p", 160)
    # data without gate and draws columns (deterministic samplers): every deciding cell counts, one draw
    bare, _ = nstar_table(pd.DataFrame(_rows("x", "tv", 10, costs, err, draws=False, gate=False)), None, served=served)
    assert bare["status"].tolist() == ["ok"] and bare["draws"].tolist() == [1]


def test_nstar_table_ambiguous_status_and_served_pairs_from_scans():
    class Scan:
        sampler, variant, target, pairs = "x", "tuned", "t", ((10, 0.1),)
        params = (("b", 1), ("a", 2))                                   # not in sorted order

    params = json.dumps({"a": 2, "b": 1}, sort_keys=True)
    rows = _rows("x", "tv", 10, (10, 20, 40, 80), [0.3, 0.05, 0.2, 0.01], params=params)   # dips 5 s.e. below eps
    table, _ = nstar_table(pd.DataFrame(rows), None, scans=[Scan()])
    assert table["status"].tolist() == ["ambiguous"] and table["params"].tolist() == [params]


def _reps(errors_by_group, costs=(10, 20, 40, 80)):
    return pd.DataFrame([dict(study="s", sampler="x", variant="tuned", target="t", params="{}", metric="tv", d=10,
                              cost=c, group=g, error=e)
                         for g, errs in enumerate(errors_by_group) for c, e in zip(costs, errs, strict=True)])


def test_replicate_table_columns_and_the_jackknife_only_of_interpolated_rows():
    served = {("x", "tuned", "t", "{}"): {(10, 0.1)}}
    err = [0.4, 0.2, 0.05, 0.02]
    scales = [0.9, 1.0, 1.1, 1.05]
    table, reps = nstar_table(pd.DataFrame(_rows("x", "tv", 10, (10, 20, 40, 80), err)),
                              _reps([[s * e for e in err] for s in scales]), served=served)
    assert list(reps.columns) == ["study", "sampler", "variant", "target", "metric", "d", "eps", "params", "group",
                                  "nstar", "crossing"]
    assert reps["group"].tolist() == [0, 1, 2, 3] and set(reps["study"]) == {"s"} and set(reps["metric"]) == {"tv"}
    assert set(reps["d"]) == {10} and set(reps["eps"]) == {0.1} and set(reps["params"]) == {"{}"}
    assert (set(reps["sampler"]), set(reps["variant"]), set(reps["target"])) == ({"x"}, {"tuned"}, {"t"})
    nfe = 2.0 * np.array([10, 20, 40, 80])
    logs = [math.log(nstar_detail(nfe, [s * e for e in err], 0.1).value) for s in scales]
    np.testing.assert_allclose(np.log(reps["nstar"].to_numpy(float)), logs, rtol=1e-12)
    R = len(logs)
    assert table["nstar_jk_se"].iloc[0] == pytest.approx(math.sqrt((R - 1) / R * np.sum((logs - np.mean(logs)) ** 2)))
    # a group with no errors at all is kept (and makes the jackknife undefined), not silently dropped
    table, reps = nstar_table(pd.DataFrame(_rows("x", "tv", 10, (10, 20, 40, 80), err)),
                              _reps([[s * e for e in err] for s in scales] + [[np.nan] * 4]), served=served)
    assert reps["group"].tolist() == [0, 1, 2, 3, 4] and math.isnan(table["nstar_jk_se"].iloc[0])
    # the main curve misses eps while every replicate meets it: no jackknife of a row that has no N*
    high = [0.4, 0.3, 0.2, 0.15]
    table, reps = nstar_table(pd.DataFrame(_rows("x", "tv", 10, (10, 20, 40, 80), high)),
                              _reps([[0.5 * e for e in high]] * 3), served=served)
    assert (reps["crossing"] == "interpolated").all() and table["crossing"].iloc[0] == "above_grid"
    assert math.isnan(table["nstar_jk_se"].iloc[0])


def test_curve_key_is_the_documented_one():
    assert CURVE == ["study", "sampler", "variant", "target", "params", "metric", "d"]


def test_delta_method_terms_match_numerical_derivatives():
    # log N* as a function of the two bracketing log-errors, differentiated numerically (central differences)
    nfe = np.array([10.0, 20.0, 40.0])
    err = np.array([0.5, 0.3, 0.05])
    eps = 0.12                                            # bracket (1, 2), eps near the middle in log
    se = np.array([0.0, 0.02, 0.004])

    def log_nstar(y1, y2):
        e = err.copy()
        e[1], e[2] = math.exp(y1), math.exp(y2)
        return math.log(nstar_detail(nfe, e, eps).value)

    y1, y2, h = math.log(err[1]), math.log(err[2]), 1e-5
    d1 = (log_nstar(y1 + h, y2) - log_nstar(y1 - h, y2)) / (2 * h)
    d2 = (log_nstar(y1, y2 + h) - log_nstar(y1, y2 - h)) / (2 * h)
    assert abs(d1) > 0.1 and abs(d2) > 0.1                 # both cells matter here
    t1, t2 = d1 * se[1] / err[1], d2 * se[2] / err[2]
    assert nstar_detail(nfe, err, eps, se).log_se == pytest.approx(math.hypot(t1, t2), rel=1e-6, abs=0)
    assert nstar_detail(nfe, err, eps, [0.0, 0.02, 0.0]).log_se == pytest.approx(abs(t1), rel=1e-6, abs=0)
    assert nstar_detail(nfe, err, eps, [0.0, 0.0, 0.004]).log_se == pytest.approx(abs(t2), rel=1e-6, abs=0)


def test_nstar_detail_branches_return_every_field():
    nfe = [10.0, 20.0, 40.0]
    r = nstar_detail(nfe, [0.2, 0.1, 0.05], 0.1)                      # an error equal to eps meets it
    assert (r.crossing, r.bracket) == ("interpolated", (0, 1)) and r.value == pytest.approx(20.0, rel=1e-12, abs=0)
    for errors, crossing in [([0.05, 0.04, 0.03], "below_grid"), ([0.5, 0.4, 0.3], "above_grid")]:
        r = nstar_detail(nfe, errors, 0.1)
        assert r.crossing == crossing and math.isnan(r.value) and r.bracket is None and r.log_se == 0.0
    r = nstar_detail(nfe, [0.5, np.inf, 0.05], 0.1)
    assert (r.value, r.crossing, r.bracket) == (40.0, "diverged", (1, 2)) and math.isnan(r.log_se)
    # an exact zero error after the crossing: N* is that cell's NFE, nothing to interpolate in log
    r = nstar_detail(nfe, [0.5, 0.2, 0.0], 0.1)
    assert (r.value, r.crossing, r.log_se, r.bracket, r.ambiguous) == (40.0, "interpolated", 0.0, (1, 2), False)
    r = nstar_detail(nfe, [0.05, 0.2, 0.0], 0.1, 0.01)                  # ... and its ambiguity is still reported
    assert (r.value, r.crossing, r.ambiguous) == (40.0, "interpolated", True)
    # ambiguous: strictly more than two standard errors below eps before the last crossing
    nfe4 = [10.0, 20.0, 40.0, 80.0]
    assert not nstar_detail(nfe4, [0.25, 0.6, 0.3, 0.1], 0.5, 0.125).ambiguous     # exactly 2 s.e. below
    assert nstar_detail(nfe4, [0.2, 0.6, 0.3, 0.1], 0.5, 0.125).ambiguous          # 2.4 s.e. below


def test_a_diverged_replicate_leaves_the_jackknife_undefined():
    # the left-out-group curve's last cell above eps is infinite: its N* is only a bound, no log N* for it
    served = {("x", "tuned", "t", "{}"): {(10, 0.1)}}
    err = [0.4, 0.2, 0.05, 0.02]
    table, reps = nstar_table(pd.DataFrame(_rows("x", "tv", 10, (10, 20, 40, 80), err)),
                              _reps([err, [1.1 * e for e in err], [0.4, np.inf, 0.05, 0.02]]), served=served)
    assert reps["crossing"].tolist() == ["interpolated", "interpolated", "diverged"]
    assert table["crossing"].iloc[0] == "interpolated" and math.isnan(table["nstar_jk_se"].iloc[0])
