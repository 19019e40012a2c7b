"""The main study end to end on tiny runs: executors give identical bits, an interrupted run resumes without
recomputing, corrupt cache entries are recomputed, Langevin samplers (infinite errors) produce tables,
identical reruns leave the folder untouched, the metadata says what ran.

Runs are in-process (``experiments.scaling.main``) with the analysis phase stubbed out where a test is about
the run's own tables (the analysis has its own tests; ``tests/test_cli.py`` runs it through ``report``).
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from experiments import cells, cli
from experiments.scaling import main

# two samplers, one randomized (replicate groups, refinement) and one deterministic; in-process by default
SMALL = ["--quick", "--samplers", "ddim,li_jiao", "--dims", "100", "--eps", "0.2", "--variants", "tuned", "--jobs", "1"]


@pytest.fixture
def no_analysis(monkeypatch):
    """Skip fits, verdicts and figures (the run's own tables are what these tests check)."""
    monkeypatch.setattr(cli, "_write_report", lambda results, figures, say: None)


def _run(out, *extra, code=0):
    assert main([*SMALL, "--out", str(out), *extra]) == code
    return (out / "errors.csv").read_bytes() if code == 0 else None


def test_executors_give_identical_bits(tmp_path, no_analysis):
    inline = _run(tmp_path / "inline", "--executor", "inline")
    pool = _run(tmp_path / "pool", "--executor", "processes", "--jobs", "2")
    assert inline == pool
    assert (tmp_path / "inline" / "errors_replicates.csv").read_bytes() == \
        (tmp_path / "pool" / "errors_replicates.csv").read_bytes()


@pytest.mark.slow            # a local Dask cluster takes 10-20 s to start on 2 busy cores
def test_dask_executor_gives_identical_bits(tmp_path, no_analysis):
    pytest.importorskip("distributed")
    assert _run(tmp_path / "dask", "--executor", "dask", "--jobs", "2") == _run(tmp_path / "inline")


def test_interrupted_run_resumes_without_recomputing(tmp_path, monkeypatch, no_analysis, capsys):
    reference = _run(tmp_path / "ref")
    real = cells.compute_law
    calls = {"n": 0}

    def interrupt_after_three(scan, cost, draws):
        if calls["n"] == 3:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(scan, cost, draws)

    monkeypatch.setattr(cells, "compute_law", interrupt_after_three)
    out = tmp_path / "run"
    capsys.readouterr()
    assert main([*SMALL, "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted;" in err[0] and "rerun to resume" in err[0], err
    finished = {p.name: p.read_bytes() for p in (out / "cache").glob("law-*.json")}
    assert len(finished) == 3
    assert not (out / "errors.csv").exists() and not list(out.glob(".staging-*"))

    counted = {"n": 0}

    def counting(scan, cost, draws):
        counted["n"] += 1
        return real(scan, cost, draws)

    monkeypatch.setattr(cells, "compute_law", counting)
    assert _run(out) == reference                                  # bit-identical to the uninterrupted run
    total = len(list((tmp_path / "ref" / "cache").glob("law-*.json")))
    assert counted["n"] == total - 3                               # the three finished laws were not recomputed
    for name, data in finished.items():                            # and were not rewritten
        assert (out / "cache" / name).read_bytes() == data


@pytest.mark.parametrize("executor", ["inline", "processes"])
def test_a_failing_sampler_is_one_line_naming_the_sampler_and_the_step(tmp_path, monkeypatch, capsys, executor):
    from experiments.samplers import NonFiniteStateError

    def diverge(scan, cost, draws):
        if scan.sampler == "li_jiao":
            raise NonFiniteStateError(f"{scan.sampler}: non-finite state at step 7 (cost {cost})")
        raise ValueError(f"{scan.sampler}: some parameter out of range at cost {cost}")

    monkeypatch.setattr(cells, "compute_law", diverge)       # (forked workers inherit the patch)
    capsys.readouterr()
    code = main([*SMALL, "--out", str(tmp_path / "run"), "--executor", executor, "--jobs",
                 "2" if executor == "processes" else "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("python -m experiments.scaling: error: sampler ")
    assert ("non-finite state at step 7" in err[0] and "li_jiao" in err[0]) or "ddim" in err[0]


def test_corrupt_cache_entries_are_detected_and_recomputed(tmp_path, monkeypatch, no_analysis, capsys):
    out = tmp_path / "run"
    reference = _run(out)
    laws = sorted((out / "cache").glob("law-*.json"))
    laws[0].write_text(laws[0].read_text()[:-20])                  # truncated JSON
    entry = json.loads(laws[1].read_text())
    entry["payload"]["nfe"][0] += 1.0                              # checksum no longer matches
    laws[1].write_text(json.dumps(entry))
    (out / "cache" / ".law-x.json.999999999.abcd.tmp").write_text("half")   # left by a killed writer
    real = cells.compute_law
    counted = {"n": 0}

    def counting(scan, cost, draws):
        counted["n"] += 1
        return real(scan, cost, draws)

    monkeypatch.setattr(cells, "compute_law", counting)
    capsys.readouterr()
    assert _run(out) == reference
    assert counted["n"] == 2
    assert "2 corrupt cache entries recomputed" in capsys.readouterr().out
    assert not list((out / "cache").glob(".*.tmp"))


def test_identical_rerun_leaves_the_folder_untouched_and_metadata_says_what_ran(tmp_path, capsys):
    out, figs = tmp_path / "res", tmp_path / "figs"
    args = ["--quick", "--samplers", "ddim", "--dims", "10,1000", "--eps", "0.2,0.1", "--variants", "tuned",
            "--jobs", "1", "--out", str(out), "--figures", str(figs)]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "progress:" in first and "analysis: figure" in first            # plain progress lines (not a terminal)
    assert "verdicts (primary estimator, N* power law)" in first and "ddim [TV d^1 eps^-1]" in first
    assert f"tables: {out}/" in first and "time:" in first
    meta = json.loads((out / "metadata.json").read_text())
    for key in ("date", "git", "packages", "wall_seconds", "cpu_seconds", "jobs", "executor", "cache", "argv",
                "code_version", "profile", "seed"):
        assert key in meta, key
    assert {"numpy", "scipy", "pandas", "statsmodels", "matplotlib"} <= set(meta["packages"])
    assert meta["argv"] == args and meta["profile"] == "quick" and meta["cache"]["cache_writes"] > 0
    errors = pd.read_csv(out / "errors.csv")
    assert "code_version" not in errors.columns                            # version stamps: in the metadata once
    files = sorted(p for p in list(out.iterdir()) + list(figs.iterdir()) if p.is_file())
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in files)           # readable by others
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files}
    assert main(args) == 0
    assert "results unchanged" in capsys.readouterr().out
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in files} == before


def test_langevin_samplers_produce_tables(tmp_path, no_analysis):
    # lmc and plmc could never produce tables (an infinite KL at unstable costs stopped the N* search). Their
    # unstable costs are now refused at construction (step > 10, experiments/samplers/_limits.py) and left out
    # of the ladder; a diverged cell that remains is read as above every eps (next test).
    out = tmp_path / "lmc"
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert main(["--quick", "--samplers", "lmc,plmc", "--dims", "10", "--eps", "0.2,0.1", "--variants", "tuned",
                     "--jobs", "1", "--out", str(out)]) == 0
    nst = pd.read_csv(out / "nstar.csv")
    for sampler in ("lmc", "plmc"):
        ok = nst[(nst["status"] == "ok") & (nst["sampler"] == sampler)]
        assert len(ok) >= 2 and np.isfinite(ok["nstar"]).all(), sampler


def test_nstar_rows_bracketed_by_a_diverged_cell_are_marked_and_bounded():
    from experiments.runner import nstar_tables

    DIVERGED = "diverged"

    rows = []
    for cost, e in zip((10, 20, 40, 80), (np.inf, 0.15, 0.05, 0.01), strict=True):
        rows.append({"study": "scaling", "sampler": "ddpm", "variant": "tuned", "target": "gauss_aniso",
                     "params": "{}", "metric": "sqrt_kl", "d": 10, "cost": cost, "nfe": float(cost), "error": e,
                     "error_se": 0.0, "error_half_a": e, "error_half_b": e, "draws": 1, "gate": "exact", "seed": 0,
                     "profile": "quick"})

    class Scan:                             # what nstar_table reads from a scan: the (d, eps) it serves
        sampler, variant, target, params, pairs = "ddpm", "tuned", "gauss_aniso", (), ((10, 0.2), (10, 0.1))

    table, _ = nstar_tables(pd.DataFrame(rows), None, [Scan()])
    by_eps = table.set_index("eps")
    # eps = 0.2: the last cell above it is the infinite one: N* <= 20 (the first cell meeting eps), not fitted
    assert by_eps.loc[0.2, "status"] == DIVERGED and by_eps.loc[0.2, "nstar"] == 20.0
    # eps = 0.1: bracketed by finite cells, interpolated as usual
    assert by_eps.loc[0.1, "status"] == "ok" and 20 < by_eps.loc[0.1, "nstar"] < 40


def test_nstar_interpolates_in_log_log_and_uses_the_last_crossing():
    from experiments.complexity import nstar

    nfe = np.array([10.0, 20, 40, 80])
    err = 1.0 / nfe                                   # exact power law: N* = 1/eps
    assert nstar(nfe, err, 0.03)[0] == pytest.approx(1 / 0.03)
    bumpy = np.array([0.1, 0.01, 0.05, 0.001])        # crosses 0.02 twice: the last crossing counts
    value, crossing = nstar(nfe, bumpy, 0.02)
    assert crossing == "interpolated" and 40 < value < 80
    assert nstar(nfe, err, 0.5)[1] == "below_grid" and nstar(nfe, err, 1e-4)[1] == "above_grid"
