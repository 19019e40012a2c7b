"""The cache of finished cells: keyed on the code that determines a cell (an unrelated edit keeps cells cached,
a relevant edit recomputes them), visible and prunable with ``python -m experiments.scaling cache``, and safe
with several writers at once (a temporary file being written by a live process is never removed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from experiments import cache
from experiments.scaling import main

REPO = Path(__file__).resolve().parents[1]
SELECTION = ["--quick", "--samplers", "ddpm", "--dims", "10", "--eps", "0.3", "--variants", "tuned"]
TINY = [*SELECTION, "--jobs", "1"]


SCRIPT = """
import re, sys
from pathlib import Path
from experiments import cells, cli
cli._write_report = lambda results, figures, say: None          # the analysis never enters a cell

def run():
    for f in (cells.law_code, cells.error_code, cells.code_version):  # the keys are recomputed from the files
        f.cache_clear()
    assert cli.main(ARGV) == 0

def edit(rel):
    p = Path(rel)
    p.write_text(p.read_text() + "\\n# an edited comment\\n")

run()
edit("experiments/samplers/ddim.py")      # another sampler's module: unrelated to ddpm
edit("analysis/figures.py")               # the analysis
edit("experiments/coverage.py")           # a module no law or error depends on
run()
edit("experiments/samplers/ddpm.py")      # the sampler's own module
run()
"""


def test_unrelated_edit_keeps_cells_cached_and_a_relevant_edit_recomputes_them(tmp_path):
    """In a copy of the package: run, edit unrelated modules, run, edit the sampler's module, run."""
    root = tmp_path / "copy"
    for pkg in ("experiments", "analysis"):
        shutil.copytree(REPO / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    code = SCRIPT.replace("ARGV", repr([*TINY, "--out", str(tmp_path / "out")]))
    res = subprocess.run([sys.executable, "-c", code], cwd=root, env=dict(os.environ, PYTHONPATH=str(root)),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    runs = [tuple(map(int, m)) for m in re.findall(r"cache: (\d+) hits, (\d+) cells computed", res.stdout)]
    assert len(runs) == 3, res.stdout
    (h0, computed), unrelated, relevant = runs
    assert h0 == 0 and computed > 0
    assert unrelated == (computed, 0)            # everything read back, nothing recomputed
    assert relevant == (0, computed)             # every cell recomputed


def test_cache_command_lists_prunes_and_clears(tmp_path, capsys, monkeypatch):
    from experiments import cli

    monkeypatch.setattr(cli, "_write_report", lambda results, figures, say: None)
    out = tmp_path / "out"
    assert main([*TINY, "--out", str(out)]) == 0
    root = out / "cache"
    n = cache.count(root)
    assert n > 0
    # an entry no planned scan reads (e.g. from a parameter value no longer run), and an old one
    cache.CellCache(root).put("law-" + "0" * 32, {"x": 1})
    capsys.readouterr()
    assert main(["cache", "--out", str(out)]) == 0
    assert f"{n + 1} entries" in capsys.readouterr().out
    assert main(["cache", "--out", str(out), "--list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == n + 2 and any(line.startswith("law-" + "0" * 32) for line in listing)
    # --prune-unused with the run's own selection: only the stray entry goes
    assert main(["cache", *SELECTION, "--out", str(out), "--prune-unused"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out and cache.count(root) == n
    # and the rerun still computes nothing
    assert main([*TINY, "--out", str(out)]) == 0
    assert ", 0 cells computed" in capsys.readouterr().out
    # --older-than: a hit touches its entry, so only entries not used for that long go
    old = sorted(root.glob("*.json"))[0]
    os.utime(old, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    assert main(["cache", "--out", str(out), "--older-than", "2"]) == 0
    assert "removed 1 entries" in capsys.readouterr().out and not old.exists()
    assert main(["cache", "--out", str(out), "--clear"]) == 0
    assert cache.count(root) == 0


def test_a_temporary_file_of_a_live_writer_is_left_alone(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    live = root / f".law-a.json.{os.getpid()}.abcd1234.tmp"           # this process is alive
    dead = root / ".law-b.json.999999999.abcd1234.tmp"                # no such process
    live.write_text("half")
    dead.write_text("half")
    cache.CellCache(root)
    assert live.exists() and not dead.exists()
    stale = time.time() - 2 * cache.STRAY_AGE                           # any writer, after an hour
    os.utime(live, (stale, stale))
    cache.CellCache(root)
    assert not live.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process state read from /proc")
def test_a_temporary_file_of_a_zombie_writer_is_removed(tmp_path):
    # a worker SIGKILLed with its parent is a zombie until reaped: it exists for kill(pid, 0) but writes nothing
    writer = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 30
    while time.time() < deadline and cache._process_runs(writer.pid):     # exited, not yet reaped by us
        time.sleep(0.01)
    os.kill(writer.pid, 0)                                                # ... yet it still exists
    root = tmp_path / "cache"
    root.mkdir()
    zombie = root / f".law-a.json.{writer.pid}.abcd1234.tmp"
    zombie.write_text("half")
    cache.CellCache(root)
    writer.wait()
    assert not zombie.exists()


def test_cache_entries_are_checksummed_and_written_atomically(tmp_path):
    c = cache.CellCache(tmp_path)
    c.put("err-k", {"value": 0.5})
    entry = json.loads((tmp_path / "err-k.json").read_text())
    assert entry["key"] == "err-k" and len(entry["sha256"]) == 64
    assert (tmp_path / "err-k.json").stat().st_mode & 0o777 == 0o644
    entry["payload"]["value"] = 0.6
    (tmp_path / "err-k.json").write_text(json.dumps(entry))
    assert c.get("err-k") is None and c.corrupt == ["err-k"] and not (tmp_path / "err-k.json").exists()
