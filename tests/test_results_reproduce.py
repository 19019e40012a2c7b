"""The committed results are what the code computes (not only consistent with each other).

1. **Cells from scratch.** For every (sampler, variant, parameter set) of the committed main run, the cheapest
   and a middle cost of its ladder are recomputed from nothing (the law at the committed draw level, then its
   errors at every committed d and metric) and must equal the committed ``errors.csv`` rows. A change to a
   sampler, a theory preset, the internal draws, a metric or a profile setting that moves a published number
   fails here until the results are regenerated.
2. **Tables from tables.** ``nstar.csv`` is recomputed from the committed errors (with the (d, eps) each scan
   serves, re-planned from the run's command line), and the exponents, verdicts and decisive comparison from
   the committed N* tables (every table the report writes, and ``tables.md``); each must equal the committed
   file. A change to the N* search, the fits, the verdict rule or a claim fails here.

Tolerance: 1e-9 relative (the computations are deterministic; the slack covers summation order in BLAS).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("REPRODUCE_RESULTS", ROOT / "results"))
RTOL = 1e-9

pytestmark = pytest.mark.skipif(not (RESULTS / "metadata.json").exists(), reason="no committed main results")


def _scans():
    from experiments.cli import build_parser
    from experiments.planning import plan_scans

    meta = json.loads((RESULTS / "metadata.json").read_text())
    argv = [a for a in meta["argv"]]
    for opt in ("--out", "--figures", "--jobs", "--executor", "--scheduler"):
        while opt in argv:
            i = argv.index(opt)
            del argv[i:i + 2]
    argv = [a for a in argv if a not in ("--force", "--no-resume")]
    args = build_parser().parse_args(argv)
    assert args.seed == meta["seed"]
    return plan_scans(args)


@pytest.fixture(scope="module")
def committed():
    errors = pd.read_csv(RESULTS / "errors.csv")
    reps = pd.read_csv(RESULTS / "errors_replicates.csv")
    return errors, reps, _scans()


def _key(sampler, variant, params_json):
    return sampler, variant, json.dumps(json.loads(params_json), sort_keys=True)


def test_sampled_cells_recomputed_from_scratch_equal_the_committed_rows(committed):
    from experiments.cells import LawStore, evaluate

    errors, _, scans = committed
    by_key = {_key(s.sampler, s.variant, json.dumps(dict(s.params))): s for s in scans}
    checked = set()
    for key, part in errors.groupby(["sampler", "variant", "params"], sort=True):
        scan = by_key[_key(*key)]
        costs = np.sort(part["cost"].unique())
        for cost in {int(costs[0]), int(costs[len(costs) // 3])}:
            cell = part[part["cost"] == cost]
            store = LawStore(scan, None)
            store.load(cost, int(cell["draws"].iloc[0]))
            fresh = evaluate(scan, store, cost, None)
            for row in cell.itertuples(index=False):
                err = fresh[(int(row.d), row.metric)]
                assert err.value == pytest.approx(row.error, rel=RTOL, abs=0, nan_ok=True), (key, cost, row.d,
                                                                                             row.metric)
                assert err.se == pytest.approx(row.error_se, rel=RTOL, abs=1e-300), (key, cost, row.d, row.metric)
            checked.add((key[0], key[1]))
    # every sampler and variant of the committed run was exercised, theory presets included
    assert checked == set(map(tuple, errors[["sampler", "variant"]].drop_duplicates().to_numpy()))
    assert any(v == "theory" for _, v in checked)


def _assert_frame_equal(fresh, committed_path, keys):
    if committed_path.stat().st_size <= 1:             # an empty table is written as an empty file
        assert len(fresh) == 0, committed_path.name
        return
    old = pd.read_csv(committed_path)
    new = fresh.reset_index(drop=True)
    assert list(new.columns) == list(old.columns), committed_path.name
    if keys is not None:                               # else the row order is part of what is compared
        new, old = new.sort_values(keys).reset_index(drop=True), old.sort_values(keys).reset_index(drop=True)
    assert len(new) == len(old), committed_path.name
    for col in old.columns:
        a, b = new[col], old[col]
        if pd.api.types.is_numeric_dtype(b) and pd.api.types.is_numeric_dtype(a):
            np.testing.assert_allclose(a.to_numpy(float), b.to_numpy(float), rtol=RTOL, atol=0, equal_nan=True,
                                       err_msg=f"{committed_path.name}:{col}")
        else:
            norm = lambda x: x.astype(object).where(x.notna(), "").astype(str).replace({"nan": "", "None": ""})  # noqa: E731
            assert (norm(a) == norm(b)).all(), f"{committed_path.name}:{col}"


def test_nstar_recomputed_from_the_committed_errors(committed):
    from experiments.complexity import nstar_table

    errors, reps, scans = committed
    table, table_reps = nstar_table(errors, reps, scans)
    keys = ["sampler", "variant", "target", "params", "metric", "d", "eps"]
    _assert_frame_equal(table, RESULTS / "nstar.csv", keys)
    _assert_frame_equal(table_reps, RESULTS / "nstar_replicates.csv", keys + ["group"])


def test_exponents_verdicts_and_decisive_answer_recomputed_from_the_committed_tables():
    from analysis.report import TABLES, analyse, markdown

    parts = analyse(RESULTS)
    assert set(parts) == set(TABLES)
    # every table the report writes, row for row in the committed order, and the markdown built from them
    for name in TABLES:
        _assert_frame_equal(parts[name], RESULTS / f"{name}.csv", keys=None)
    assert markdown(parts) == (RESULTS / "tables.md").read_text()
