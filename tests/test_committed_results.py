"""The committed main run (results/) meets the standards the documents state for it.

(a) No conclusive ``violated`` verdict is left unexplained. A verdict is conclusive when the metric is the
    claim's own ("same") or a TV measurement tests a KL claim ("implied (Pinsker)"); on an upper proxy it
    is not. The default run has none; a rerun that produces one fails here and must be checked by a
    second, independent computation and reported in paper_notes.md (then listed in ``EXPLAINED`` with
    the section that reports it), not hidden.
(b) Every interval of a randomized sampler is the replicate-group jackknife (its internal draws are the
    variation), every interval of a deterministic one the local-slope range (no sampling error exists);
    no other kind is published.
(c) Every N* that enters a fit (status ``ok``) rests on bracketing cells whose precision gate passed
    (``exact`` or ``resolved``), never on an ``unresolved`` or ``not deciding`` cell.
Each check has a control: the same function on a deliberately damaged copy of the table must object.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

RESULTS = Path(__file__).resolve().parents[1] / "results"
CONCLUSIVE = ("same", "implied (Pinsker)")
PRIMARY = "N* power law"
#: (sampler, variant, metric) -> the paper_notes.md section that reports the violation
EXPLAINED: dict[tuple[str, str, str], str] = {}

pytestmark = pytest.mark.skipif(not (RESULTS / "verdicts.csv").exists(), reason="no committed main results")


def _verdicts() -> pd.DataFrame:
    return pd.read_csv(RESULTS / "verdicts.csv")


def unexplained_violations(v: pd.DataFrame) -> pd.DataFrame:
    v = v[(v["estimator"] == PRIMARY) & v["metric_match"].isin(CONCLUSIVE)]
    v = v[(v["verdict_d"] == "violated") | (v["verdict_eps"] == "violated")]
    keys = list(zip(v["sampler"], v["variant"], v["metric"], strict=True))
    return v[[k not in EXPLAINED for k in keys]]


def wrong_interval_kinds(v: pd.DataFrame) -> pd.DataFrame:
    v = v[v["estimator"] == PRIMARY]
    want = np.where(v["randomized"].astype(bool), "jackknife 95%", "local-slope range")
    fitted = v["a"].notna()
    return v[fitted & (v["interval"] != want)]


def ungated_nstar(nstar: pd.DataFrame, errors: pd.DataFrame) -> list[tuple]:
    """N* rows with status ok whose two bracketing cells are not both ``exact`` or ``resolved``."""
    keys = ["sampler", "variant", "target", "params", "metric", "d"]
    curves = {k: g.sort_values("nfe") for k, g in errors.groupby(keys)}
    bad = []
    for _, row in nstar[nstar["status"] == "ok"].iterrows():
        g = curves[tuple(row[k] for k in keys)]
        nfe, gate = g["nfe"].to_numpy(float), g["gate"].to_numpy()
        i = int(np.searchsorted(nfe, row["nstar"], side="left"))
        bracket = gate[max(i - 1, 0):i + 1]
        if not set(bracket) <= {"exact", "resolved"}:
            bad.append((*(row[k] for k in keys), row["eps"], tuple(bracket)))
    return bad


# -- (a) ---------------------------------------------------------------------------------------------


def test_no_unexplained_conclusive_violation():
    bad = unexplained_violations(_verdicts())
    assert bad.empty, bad[["sampler", "variant", "metric", "a", "a_lo", "a_hi", "verdict_d",
                           "b", "b_lo", "b_hi", "verdict_eps"]]


def test_a_planted_violation_is_found():
    v = _verdicts()
    row = v[(v["estimator"] == PRIMARY) & (v["metric_match"] == "same")].index[0]
    v.loc[row, "verdict_d"] = "violated"
    assert len(unexplained_violations(v)) == 1
    proxy = v[(v["estimator"] == PRIMARY) & (v["metric_match"] == "upper proxy (Pinsker)")].index[0]
    v.loc[proxy, "verdict_d"] = "violated"                     # not conclusive: not counted
    assert len(unexplained_violations(v)) == 1


# -- (b) ---------------------------------------------------------------------------------------------


def test_intervals_are_of_the_published_kind():
    v = _verdicts()
    assert v.loc[v["estimator"] == PRIMARY, "randomized"].astype(bool).any()     # the check is not vacuous
    bad = wrong_interval_kinds(v)
    assert bad.empty, bad[["sampler", "variant", "metric", "randomized", "interval"]]


def test_a_deterministic_misfit_called_a_confidence_interval_is_found():
    v = _verdicts()
    row = v[(v["estimator"] == PRIMARY) & ~v["randomized"].astype(bool) & v["a"].notna()].index[0]
    v.loc[row, "interval"] = "jackknife 95%"
    assert len(wrong_interval_kinds(v)) == 1


# -- (c) ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tables():
    return pd.read_csv(RESULTS / "nstar.csv"), pd.read_csv(RESULTS / "errors.csv")


def test_every_fitted_nstar_rests_on_gated_cells(tables):
    nstar, errors = tables
    assert (nstar["status"] == "ok").sum() > 0
    assert ungated_nstar(nstar, errors) == []


def test_an_unresolved_bracket_is_found(tables):
    nstar, errors = tables
    errors = errors.copy()
    row = nstar[(nstar["status"] == "ok") & (nstar["draws"] > 1)].iloc[0]
    keys = ["sampler", "variant", "target", "params", "metric", "d"]
    curve = np.all([errors[k] == row[k] for k in keys], axis=0)
    above = curve & (errors["nfe"] >= row["nstar"])
    first = errors[above].sort_values("nfe").index[0]
    errors.loc[first, "gate"] = "unresolved"
    assert len(ungated_nstar(nstar[nstar.index == row.name], errors)) == 1
