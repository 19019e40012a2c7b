"""The scaling study end to end: verdicts and orders in the quick profile, executors, resuming, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments import cells
from experiments.scaling import main

REPO = Path(__file__).resolve().parents[1]
# in-process by default (--jobs 1), so that monkeypatched evaluation counters see every cell
SMALL = ["--samplers", "ddim,li_jiao", "--dims", "10,1000", "--eps", "0.2,0.1", "--variants", "tuned", "--jobs", "1"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("quick")
    assert main(["--quick", "--out", str(out), "--jobs", "2"]) == 0
    return out


def _primary(quick):
    v = pd.read_csv(quick / "verdicts.csv")
    return v[v["primary"]]


def test_quick_profile_writes_tables_figures_and_metadata(quick):
    for name in ("errors.csv", "nstar.csv", "fits.csv", "fits_log.csv", "verdicts.csv", "tables.md", "metadata.json"):
        assert (quick / name).stat().st_size > 0, name
    meta = json.loads((quick / "metadata.json").read_text())
    assert meta["profile"] == "quick" and meta["seed"] == 0 and meta["code_version"].startswith("0.1.0+")
    errors = pd.read_csv(quick / "errors.csv")
    assert {"code_version", "seed", "profile", "start", "n_draws"} <= set(errors.columns)
    assert list((quick / "figures").glob("headline__*.png"))


def test_no_sampler_verdict_is_violated_in_the_quick_profile(quick):
    v = _primary(quick)
    assert len(v) >= 10
    bad = v[(v["verdict_d"] == "violated") | (v["verdict_eps"] == "violated")]
    assert bad.empty, bad[["sampler", "variant", "metric", "a", "a_lo", "a_hi", "b", "b_lo", "b_hi"]].to_string()


ORDERS = {"ddpm": 1, "ddim": 1, "dpm_solver_2": 2}


def _nearest_order(value, exponent_of_order):
    return min((1, 2, 3), key=lambda p: abs(value - exponent_of_order(p)))


@pytest.mark.parametrize("sampler", sorted(ORDERS))
def test_baseline_exponents_identify_the_order_of_their_construction(quick, sampler):
    # a p-th order method on a product Gaussian: KL ~ d h^{2p}, so N* ~ (d / eps^2)^{1/(2p)} for sqrt(KL) <= eps:
    # a = 1/(2p), b = 1/p. The fitted exponents must pick out p among the neighbouring orders 1, 2, 3.
    fits = pd.read_csv(quick / "fits.csv")
    row = fits[(fits["sampler"] == sampler) & (fits["variant"] == "tuned") & (fits["metric"] == "sqrt_kl")].iloc[0]
    p = ORDERS[sampler]
    assert _nearest_order(row["a"], lambda q: 1 / (2 * q)) == p, row["a"]
    assert _nearest_order(row["b"], lambda q: 1 / q) == p, row["b"]
    # negative control: the same exponents do not identify a different order
    assert _nearest_order(row["a"], lambda q: 1 / (2 * q)) != p % 3 + 1


def test_product_structure_b_equals_2a_for_deterministic_baselines(quick):
    v = pd.read_csv(quick / "verdicts.csv")
    rows = v[(v["fit"] == "power law") & v["sampler"].isin(list(ORDERS)) & (v["metric"] == "sqrt_kl")]
    assert len(rows) == len(ORDERS)
    assert (rows["structure"] == "consistent").all(), rows[["sampler", "b_minus_ra", "b_minus_ra_lo", "b_minus_ra_hi"]]


def _run(out, *extra):
    assert main([*SMALL, "--out", str(out), *extra]) == 0
    return pd.read_csv(out / "errors.csv")


def test_executors_give_identical_bits(tmp_path):
    inline = _run(tmp_path / "inline", "--executor", "inline")
    pool = _run(tmp_path / "pool", "--executor", "processes", "--jobs", "2")
    pd.testing.assert_frame_equal(inline, pool, check_exact=True)
    pytest.importorskip("distributed")
    dask = _run(tmp_path / "dask", "--executor", "dask", "--jobs", "2")
    pd.testing.assert_frame_equal(inline, dask, check_exact=True)


def test_interrupted_run_resumes_without_recomputing(tmp_path, monkeypatch):
    reference = _run(tmp_path / "ref")
    calls = {"n": 0}
    real = cells.evaluate_cost

    def interrupt_after_three(scan, cost):
        if calls["n"] == 3:
            raise KeyboardInterrupt
        calls["n"] += 1
        return real(scan, cost)

    monkeypatch.setattr(cells, "evaluate_cost", interrupt_after_three)
    out = tmp_path / "run"
    assert main([*SMALL, "--out", str(out)]) == 130
    assert len(list((out / "cache").glob("*.json"))) == 3
    assert not list((out / "cache").glob(".*.tmp"))

    counted = {"n": 0}

    def counting(scan, cost):
        counted["n"] += 1
        return real(scan, cost)

    monkeypatch.setattr(cells, "evaluate_cost", counting)
    resumed = _run(out)
    total = len(reference.drop_duplicates(["sampler", "cost"]))
    assert counted["n"] == total - 3            # the three finished laws were not recomputed
    pd.testing.assert_frame_equal(reference, resumed, check_exact=True)


def test_corrupt_cache_entry_is_detected_and_recomputed(tmp_path, monkeypatch):
    out = tmp_path / "run"
    reference = _run(out)
    entries = sorted((out / "cache").glob("*.json"))
    entries[0].write_text(entries[0].read_text()[:-20])                 # truncated JSON
    payload = json.loads(entries[1].read_text())
    payload["payload"]["nfe"] += 1.0                                     # checksum no longer matches
    entries[1].write_text(json.dumps(payload))
    counted = {"n": 0}
    real = cells.evaluate_cost

    def counting(scan, cost):
        counted["n"] += 1
        return real(scan, cost)

    monkeypatch.setattr(cells, "evaluate_cost", counting)
    again = _run(out)
    assert counted["n"] == 2
    pd.testing.assert_frame_equal(reference, again, check_exact=True)


def test_killed_process_loses_no_finished_cell(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "experiments.scaling", "--samplers", "ddpm", "--dims", "10", "--eps", "0.003",
           "--variants", "tuned", "--jobs", "1", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "cache").glob("*.json"))) < 4:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.read_text() for p in (out / "cache").glob("*.json")}
    assert len(finished) >= 4
    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    for name, text in finished.items():                     # finished cells kept as they were, none rewritten
        assert (out / "cache" / name).read_text() == text
    assert not list((out / "cache").glob(".*.tmp"))


@pytest.mark.parametrize("argv,word", [
    (["--eps", "2"], "--eps"),
    (["--eps", "abc"], "--eps"),
    (["--dims", "0"], "--dims"),
    (["--jobs", "0"], "--jobs"),
    (["--samplers", "nope"], "sampler"),
    (["--targets", "nope"], "target"),
    (["--variants", "best"], "--variants"),
    (["--bogus"], "unrecognized"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, word):
    res = subprocess.run([sys.executable, "-m", "experiments.scaling", *argv, "--dry-run"], cwd=REPO,
                         env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=120)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0], res.stderr


def test_dry_run_and_help_list_scans_samplers_and_claims(capsys):
    assert main(["--quick", "--dry-run"]) == 0
    assert "scans" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for word in ("li_jiao", "gupta_cai_chen", "d^5/12", "d^1/3", "gauss_aniso", "rounds"):
        assert word in text, word


def test_nstar_interpolates_in_log_log_and_uses_the_last_crossing():
    from experiments.complexity import nstar

    nfe = np.array([10.0, 20, 40, 80])
    err = 1.0 / nfe                                   # exact power law: N* = 1/eps
    assert nstar(nfe, err, 0.03)[0] == pytest.approx(1 / 0.03)
    bumpy = np.array([0.1, 0.01, 0.05, 0.001])        # crosses 0.02 twice: the last crossing counts
    value, crossing = nstar(nfe, bumpy, 0.02)
    assert crossing == "interpolated" and 40 < value < 80
    assert nstar(nfe, err, 0.5)[1] == "below_grid" and nstar(nfe, err, 1e-4)[1] == "above_grid"
