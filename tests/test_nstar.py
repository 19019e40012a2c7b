"""N* with its uncertainty: the delta-method standard error of log N* against brute force, the statuses that
keep a row out of the fits (ambiguous crossings, unresolved deciding cells), and the replicate N* table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from experiments.complexity import is_monotone, nstar_detail, nstar_table


def test_delta_method_standard_error_matches_brute_force():
    rng = np.random.default_rng(0)
    nfe = np.array([100.0, 141.0, 200.0, 283.0, 400.0])
    err = 0.5 * (nfe / 100.0) ** -1.5
    se = 0.06 * err                                       # 6% relative standard errors, independent cells
    eps = 0.2
    res = nstar_detail(nfe, err, eps, se)
    assert res.crossing == "interpolated" and res.bracket == (1, 2)
    # brute force: perturb the errors by their standard errors (log-normal, small), redo the interpolation
    logs = []
    for _ in range(20000):
        e = err * np.exp(se / err * rng.standard_normal(err.size))
        v, c = nstar_detail(nfe, e, eps).value, nstar_detail(nfe, e, eps).crossing
        if c == "interpolated":
            logs.append(math.log(v))
    sd = float(np.std(logs))
    assert res.log_se == pytest.approx(sd, rel=0.1, abs=0), (res.log_se, sd)
    # negative control: one cell's error alone gives a visibly different (smaller) standard error
    one = nstar_detail(nfe, err, eps, np.where(np.arange(err.size) == 1, se, 0.0))
    assert one.log_se < 0.8 * res.log_se
    assert nstar_detail(nfe, err, eps).log_se == 0.0


def test_ambiguous_crossings_are_noise_aware():
    nfe = np.array([10.0, 20.0, 40.0, 80.0])
    err = np.array([0.3, 0.05, 0.2, 0.01])                # dips below eps = 0.1, rises, falls again
    assert not nstar_detail(nfe, err, 0.1).ambiguous       # deterministic: the last crossing is real
    assert nstar_detail(nfe, err, 0.1, 0.01).ambiguous      # noisy: the dip is 5 s.e. below eps
    assert not nstar_detail(nfe, err, 0.1, 0.03).ambiguous  # ... or not, within 2 s.e.
    assert is_monotone(err[[0, 1, 3]]) and not is_monotone(err)
    assert is_monotone(err, 0.1)                            # a scalar standard error broadcasts


def _curve(errors, gates, eps=(0.1,), reps=None):
    rows = [dict(study="s", sampler="x", variant="tuned", target="t", params="{}", metric="tv_annealed", d=10,
                 cost=c, nfe=float(c), error=e, error_se=0.01 * e, gate=g, draws=64, seed=0, profile="p")
            for c, e, g in zip((10, 20, 40, 80), errors, gates, strict=True)]
    served = {("x", "tuned", "t", "{}"): {(10, e) for e in eps}}
    return nstar_table(pd.DataFrame(rows), reps, served=served)


def test_status_keeps_unresolved_and_out_of_grid_rows_out_of_fits():
    ok, _ = _curve([0.4, 0.2, 0.05, 0.02], ["resolved"] * 4)
    assert ok["status"].tolist() == ["ok"]
    bad, _ = _curve([0.4, 0.2, 0.05, 0.02], ["resolved", "unresolved", "resolved", "resolved"])
    assert bad["status"].tolist() == ["unresolved"]                 # a bracketing cell failed the gate
    far, _ = _curve([0.4, 0.2, 0.05, 0.02], ["unresolved", "resolved", "resolved", "resolved"])
    assert far["status"].tolist() == ["ok"]                         # ... but not one that decides nothing
    above, _ = _curve([0.4, 0.3, 0.2, 0.15], ["resolved"] * 4)
    assert above["status"].tolist() == ["above_grid"]


def test_replicate_nstar_and_its_jackknife():
    errors = [0.4, 0.2, 0.05, 0.02]
    reps = []
    for g in range(8):
        scale = 1.0 + 0.05 * (g - 3.5) / 3.5
        for c, e in zip((10, 20, 40, 80), errors, strict=True):
            reps.append(dict(study="s", sampler="x", variant="tuned", target="t", params="{}", metric="tv_annealed",
                             d=10, cost=c, group=g, error=e * scale))
    table, table_reps = _curve(errors, ["resolved"] * 4, reps=pd.DataFrame(reps))
    assert len(table_reps) == 8 and (table_reps["crossing"] == "interpolated").all()
    logs = np.log(table_reps["nstar"].to_numpy(float))
    expected = math.sqrt(7 / 8 * np.sum((logs - logs.mean()) ** 2))
    assert table.iloc[0]["nstar_jk_se"] == pytest.approx(expected)
