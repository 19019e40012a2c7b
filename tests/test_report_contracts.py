"""analysis/report.py: the ladder resolution handed to the verdicts, the reading of empty tables, the
progress callback of ``write_report`` and the arguments of ``main``. The tables themselves are checked
against the committed results in tests/test_results_reproduce.py. Each test here was written for a change
that mutation testing showed no test noticed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis import report


def _ladder(costs_by_family):
    rows = []
    for (sampler, d), costs in costs_by_family.items():
        rows += [dict(sampler=sampler, variant="v", params="{}", metric="kl", d=d, nfe=c) for c in costs]
    return pd.DataFrame(rows)


def test_half_ladder_step_is_half_the_median_log_spacing():
    # spacings log 2 (twice) and log 4 (once) in one family, log 2 in another: median log 2, half of it
    errors = _ladder({("a", 10): [10, 20, 40, 160], ("b", 10): [5, 10, 10]})
    assert report.half_ladder_step(errors) == pytest.approx(0.5 * math.log(2), rel=1e-15, abs=0)


def test_half_ladder_step_without_a_ladder_is_a_quarter_octave():
    # one cost per family: no spacing to measure; the default is half a step of sqrt(2) (a quarter of log 2)
    assert report.half_ladder_step(_ladder({("a", 10): [10], ("b", 30): [20]})) == math.log(2) / 4


def test_an_empty_table_file_reads_as_no_table(tmp_path):
    # the report writes an empty table as a file holding one newline; it is absent, not an unreadable CSV
    (tmp_path / "errors_replicates.csv").write_text("\n")
    (tmp_path / "nstar_replicates.csv").write_text("")
    assert report._read(tmp_path, "errors_replicates") is None
    assert report._read(tmp_path, "nstar_replicates") is None
    (tmp_path / "nstar_replicates.csv").write_text("a\n1\n")
    assert report._read(tmp_path, "nstar_replicates")["a"].tolist() == [1]


def test_main_reads_the_arguments_it_is_given(tmp_path, capsys):
    assert report.main(["--out", str(tmp_path / "absent"), "--figures", str(tmp_path / "fig")]) == 2
    err = capsys.readouterr().err
    assert "absent" in err and len(err.strip().splitlines()) == 1


def test_write_report_passes_its_progress_callback_to_the_figures(tmp_path):
    from tests.test_analysis import _synthetic_results

    _synthetic_results(tmp_path)
    lines = []
    paths = report.write_report(tmp_path, tmp_path / "fig", progress=lines.append)
    assert paths and lines
    assert np.all([isinstance(line, str) for line in lines])


def test_the_verdicts_allow_for_the_ladder_resolution_of_the_run(tmp_path):
    # the synthetic run's ladder: 10 costs from 4 to 4000 (rounded), a step of ~10^(1/3); half its median log
    # spacing over the log range of d (10..1000) and of 1/eps (10..100) is the verdicts' margin, above the
    # fixed 1/24 and 1/12. The default half step (ln 2 / 4, the main runs' ladder) would give 1/24 and 1/12
    from tests.test_analysis import _synthetic_results

    _synthetic_results(tmp_path)
    costs = np.unique(np.round(np.geomspace(4, 4000, 10)).astype(int))
    half = 0.5 * float(np.median(np.diff(np.log(costs))))
    v = report.analyse(tmp_path)["verdicts"]
    assert len(v) == 2
    assert np.allclose(v["margin_a"], half / math.log(100.0), rtol=1e-12, atol=0)
    primary = v[v["estimator"] == "N* power law"].iloc[0]
    assert primary["margin_b"] == pytest.approx(half / math.log(10.0), rel=1e-12, abs=0)
