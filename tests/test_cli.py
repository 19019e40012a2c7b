"""The command line: bad command lines are one line on stderr and exit 2 before any work (a table of them and
a Hypothesis fuzz), --help is fast and complete, --param, --dry-run, profile folders, the output set (a crash
while writing never leaves a mix, and readers can tell), the report command, progress, plug-in samplers.

Most checks call ``experiments.scaling.main`` in-process with ``--dry-run`` (nothing is computed); a few run
the real command in a subprocess, where a traceback would show.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiments import cli, outputs
from experiments.scaling import main

REPO = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(REPO))
# a tiny plan: nothing below is computed unless a test removes --dry-run
BASE = ["--quick", "--samplers", "ddpm", "--dims", "10", "--eps", "0.1", "--dry-run"]


def _cli(argv, capsys) -> tuple[int, str, str]:
    """``main(argv)`` in-process: (exit status, stdout, stderr); argparse's exits count as statuses."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def places(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        unwritable = str(locked / "out")
    else:                                                  # root may write everywhere but in /sys and /proc
        unwritable = "/sys/diffusion-theorem-checks/out"
    return {"out": str(tmp_path / "out"), "file": str(afile), "below": str(afile / "sub"), "unwritable": unwritable,
            "results": str(tmp_path / "res")}


# (extra argv appended to BASE, a word the single error line must contain); `{file}` etc. from `places`
BAD = [
    (["--dims", "1e18"], "10^12"),
    (["--dims", "9223372036854775808"], "--dims"),
    (["--dims", "0"], "--dims"),
    (["--dims", "-5"], "--dims"),
    (["--dims", "1.5"], "--dims"),
    (["--dims", "nan"], "--dims"),
    (["--dims", "abc"], "--dims"),
    (["--dims", "10,10"], "twice"),
    (["--dims", "1"], "--dims 1"),                    # gauss_aniso has two groups: d >= 2
    (["--dims", ""], "--dims"),
    (["--eps", "2"], "--eps"),
    (["--eps", "0"], "--eps"),
    (["--eps", "abc"], "--eps"),
    (["--eps", "inf"], "--eps"),
    (["--eps", "0.1,0.10"], "twice"),
    (["--eps", "1e-200", "--variants", "theory,tuned", "--samplers", "li_jiao"], "1e-100"),
    (["--jobs", "0"], "--jobs"),
    (["--jobs", "-3"], "--jobs"),
    (["--jobs", "x"], "--jobs"),
    (["--jobs", "4", "--executor", "inline"], "--executor inline"),
    (["--executor", "bogus"], "--executor"),
    (["--scheduler", ""], "--scheduler"),
    (["--scheduler", "tcp://127.0.0.1:1"], "cannot connect"),
    (["--scheduler", "nonsense"], "--scheduler"),
    (["--scheduler", "tcp://127.0.0.1:1", "--executor", "processes"], "conflicts"),
    (["--scheduler", "tcp://127.0.0.1:1", "--executor", "inline"], "conflicts"),
    (["--scheduler", "tcp://127.0.0.1:1", "--jobs", "2"], "--jobs"),
    (["--samplers", "ddpm,ddpm"], "twice"),
    (["--samplers", "nope"], "sampler"),
    (["--samplers", ""], "--samplers"),
    (["--samplers", ","], "--samplers"),
    (["--targets", "gauss_aniso,gauss_aniso"], "twice"),
    (["--targets", "nope"], "target"),
    (["--out", ""], "--out"),
    (["--out", "{file}"], "is a file"),
    (["--out", "{below}"], "which is a file"),
    (["--out", "{unwritable}"], "--out"),
    (["--figures", "{file}"], "--figures"),
    (["--figures", "{below}"], "--figures"),
    (["--figures", ""], "--figures"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "x"], "--seed"),
    (["--seed", str(2**63)], "--seed"),
    (["--variants", "best"], "--variants"),
    (["--variants", "tuned,tuned"], "twice"),
    (["--metric", "x"], "--metric"),
    (["--samplers", "li_jiao", "--param", "K=abc"], "--param"),
    (["--samplers", "li_jiao", "--param", "nope=1"], "--param"),
    (["--samplers", "li_jiao", "--param", "K"], "--param"),
    (["--samplers", "li_jiao", "--param", "ddpm.K=3"], "--param"),
    (["--samplers", "li_jiao", "--param", "K=0"], "li_jiao"),           # rejected by the sampler's make()
    (["--samplers", "li_jiao", "--param", "K=20", "--variants", "theory"], "--param"),
    (["--samplers", "li_jiao", "--param", "K=2", "--param", "K=3"], "twice"),
    (["--bogus"], "unrecognized"),
    (["--full"], "not allowed with"),
    (["nostudy"], "unknown command or study"),
]
STUDY_BAD = [
    (["rounds", "--samplers", "ddpm,ddpm", "--dry-run"], "twice"),
    (["rounds", "--jobs", "0", "--dry-run"], "--jobs"),
    (["rounds", "--seed", "-1", "--dry-run"], "--seed"),
    (["rounds", "--out", ""], "--out"),
    (["schedules", "--quick", "--samplers", "ddpm", "--dry-run"], "this study runs ve_ei"),
    (["reconstructed", "--quick", "--samplers", "li_jiao", "--dry-run"], "this study runs"),
    (["report", "--out", "{out}"], "no main-study results"),
    (["report", "--out", "{file}"], "is a file"),
    (["cache", "--prune-unused", "--clear"], "not allowed with"),
    (["cache", "--older-than", "-1", "--out", "{out}"], "--older-than"),
    (["cache", "nostudy"], "unknown study"),
    (["cache", "rounds", "--prune-unused"], "--prune-unused"),
]
TALLY = {"tried": 0, "one_line_exit_2": 0}


def _fill(argv, places):
    out = []
    for a in argv:
        if "{" in a:
            if "{unwritable}" in a and places["unwritable"] is None:
                pytest.skip("no unwritable place for this user")
            a = a.format(**places)
        out.append(a)
    return out


@pytest.mark.parametrize("extra,word", BAD, ids=[" ".join(a) or "empty" for a, _ in BAD])
def test_bad_command_line_is_one_line_and_exit_2(extra, word, places, capsys):
    code, out, err = _cli([*BASE, "--out", places["out"], *_fill(extra, places)], capsys)
    TALLY["tried"] += 1
    lines = err.strip().splitlines()
    if word == "cannot connect" and importlib.util.find_spec("distributed") is None:
        word = "needs the optional extra"              # without .[distributed] the scheduler is refused first
    assert code == 2 and len(lines) == 1 and word in lines[0], (code, err)
    assert lines[0].startswith("python -m experiments.scaling")
    assert not Path(places["out"]).exists()                 # checked before any work: nothing written
    TALLY["one_line_exit_2"] += 1


@pytest.mark.parametrize("argv,word", STUDY_BAD, ids=[" ".join(a) for a, _ in STUDY_BAD])
def test_bad_study_report_and_cache_lines_are_one_line_and_exit_2(argv, word, places, capsys):
    code, out, err = _cli(_fill(argv, places), capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and word in lines[0], (code, err)


def test_too_many_jobs_are_capped_with_one_line(places, capsys):
    code, out, err = _cli([*BASE, "--out", places["out"], "--jobs", "1000000"], capsys)
    assert code == 0
    assert err.strip() == ("python -m experiments.scaling: note: --jobs 1000000 capped at 1 (no more workers than "
                           "the 1 scans)")
    from experiments.executors import MAX_JOBS_PER_CORE, available_cores, cap_jobs

    jobs, note = cap_jobs(1000, 10**6)
    assert jobs == MAX_JOBS_PER_CORE * available_cores() and "per core" in note


def test_dims_written_as_floats_and_params_typed_by_their_default(places, capsys):
    code, out, err = _cli(["--quick", "--samplers", "li_jiao,ddpm", "--dims", "1e3,10", "--eps", "0.1", "--variants",
                           "tuned", "--param", "K=20", "--param", "li_jiao.c0=3", "--param", "variance=large",
                           "--out", places["out"], "--dry-run"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    lj = next(line for line in lines if line.startswith("li_jiao"))
    assert "'K': 20," in lj and "'c0': 3.0" in lj               # int and float, as the defaults
    assert "'variance': 'large'" in next(line for line in lines if line.startswith("ddpm"))
    assert "2 scans" in lines[-1] and "CPU s" in lines[-1]


def test_help_is_fast_complete_and_wrapped():
    code = textwrap.dedent("""
        import sys, time
        t = time.perf_counter()
        import experiments.scaling as s
        text = s.build_parser().format_help()
        heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'matplotlib', 'statsmodels', 'scipy',
                                                                     'distributed', 'tqdm'))
        studies = sorted(m for m in sys.modules if m.startswith('experiments.extra_studies.'))
        print(repr((heavy, studies, text)))
    """)
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(ENV, COLUMNS="72"), capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    heavy, studies, text = eval(res.stdout)   # noqa: S307 - our own repr
    assert heavy == [] and studies == []                     # lazy: no heavy module, no study module imported
    assert "[STUDY | report | cache]" in text and "examples:" in text
    for word in ("li_jiao", "gupta_cai_chen", "d^5/12", "d^1/3", "gauss_aniso", "rounds", "reconstructed", "report",
                 "cache"):
        assert word in text, word
    catalogue = text[text.index("studies ("):]
    assert max(map(len, catalogue.splitlines())) <= 72          # wrapped to the terminal width


def test_help_of_a_study_lists_its_common_options(capsys):
    code, out, err = _cli(["rounds", "--help"], capsys)
    assert code == 0
    for opt in ("--samplers", "--dry-run", "--out", "--figures", "--force", "--jobs", "--no-resume"):
        assert opt in out, opt


def test_study_dry_run_lists_the_first_batch_with_an_estimate(places, capsys):
    code, out, err = _cli(["reconstructed", "--quick", "--samplers", "ddpm", "--dry-run", "--out", places["out"]],
                          capsys)
    assert code == 0, err
    assert "variance=small" in out and "variance=large" in out and "ddram" not in out
    assert "reconstructed: 2 scans" in out and "CPU s" in out
    assert not Path(places["out"]).exists()


def test_profiles_write_their_own_folders_and_never_each_others(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli, "_write_report", lambda results, figures, say: None)
    small = ["--samplers", "ddim", "--dims", "10", "--eps", "0.3", "--variants", "tuned", "--jobs", "1"]
    code, out, err = _cli(["--quick", *small], capsys)
    assert code == 0, err
    assert (tmp_path / "results/quick/errors.csv").exists() and "figures: figures/quick/" in out
    assert not (tmp_path / "results/errors.csv").exists()            # the committed folder is not touched
    assert json.loads((tmp_path / "results/quick/metadata.json").read_text())["profile"] == "quick"
    code, out, err = _cli([*small, "--out", "results/quick", "--dry-run"], capsys)   # default profile, quick folder
    assert code == 2 and "'quick' profile" in err and len(err.strip().splitlines()) == 1
    code, out, err = _cli([*small, "--out", "results/quick", "--dry-run", "--force"], capsys)
    assert code == 0


def _small_run(tmp_path, capsys):
    out, figs = tmp_path / "res", tmp_path / "figs"
    code, _, err = _cli(["--quick", "--samplers", "ddim", "--dims", "10,1000", "--eps", "0.3,0.2", "--variants",
                         "tuned", "--jobs", "1", "--out", str(out), "--figures", str(figs)], capsys)
    assert code == 0, err
    return out, figs


def test_output_set_report_command_and_a_crash_while_writing(tmp_path, monkeypatch, capsys):
    out, figs = _small_run(tmp_path, capsys)
    assert outputs.verify(out) == []
    manifest = json.loads((out / outputs.MANIFEST).read_text())["files"]
    assert {"errors.csv", "nstar.csv", "verdicts.csv", "tables.md", "metadata.json"} <= set(manifest)
    assert any(rel.endswith(".png") for rel in manifest)                 # figures belong to the set
    # report: rebuilds from the tables without sampling; nothing changed, so nothing is written
    monkeypatch.setattr("experiments.cells.compute_law", lambda *a: pytest.fail("report must not sample"))
    code, text, err = _cli(["report", "--out", str(out), "--figures", str(figs)], capsys)
    assert code == 0, err
    assert "analysis unchanged: nothing written" in text and "README.md and paper_notes.md not touched" in text
    # a file of the set replaced by another run's: readers can tell, report refuses (one line) unless forced
    (out / "verdicts.csv").write_text((out / "verdicts.csv").read_text() + "\n")
    assert outputs.verify(out) and pytest.raises(ValueError, outputs.require_complete, out)
    code, text, err = _cli(["report", "--out", str(out), "--figures", str(figs)], capsys)
    assert code == 2 and "verdicts.csv does not match the manifest" in err
    code, text, err = _cli(["report", "--out", str(out), "--figures", str(figs), "--force"], capsys)
    assert code == 0 and "rebuilt tables" in text and outputs.verify(out) == []
    # a crash in the middle of swapping a new set in: the manifest is gone first, so no reader sees a mix
    moved = {"n": 0}
    real = outputs._move

    def crash_after_two(src, dst):
        if moved["n"] == 2:
            raise OSError("disk full")
        moved["n"] += 1
        return real(src, dst)

    monkeypatch.setattr(outputs, "_move", crash_after_two)
    with pytest.raises(OSError, match="disk full"):       # another run (other eps) into the same folder
        main(["--quick", "--samplers", "ddim", "--dims", "10,1000", "--eps", "0.3,0.25", "--variants", "tuned",
              "--jobs", "1", "--out", str(out), "--figures", str(figs)])
    monkeypatch.setattr(outputs, "_move", real)
    assert moved["n"] == 2
    assert "no readable MANIFEST.json" in outputs.verify(out)[0]
    assert not list(out.glob(".staging-*"))                                # the stage is cleaned up
    code, text, err = _cli(["report", "--out", str(out), "--figures", str(figs)], capsys)
    assert code == 2 and "MANIFEST.json" in err and len(err.strip().splitlines()) == 1


def test_progress_is_weighted_by_work_and_plain_off_a_terminal():
    from io import StringIO

    from experiments.progress import Progress

    stream = StringIO()
    bar = Progress([9.0, 1.0, 90.0], stream=stream, tty=False, interval=1e9)
    bar.advance(1)                        # 1% of the work: no line yet (lines every 10% or every interval)
    assert stream.getvalue() == ""
    bar.advance(0)                        # 10%
    bar.advance(2)                        # 100%
    bar.say("analysis: figure x.png")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("progress:  10% of the estimated work (2/3 scans)")
    assert lines[1].startswith("progress: 100% of the estimated work (3/3 scans)")
    assert lines[2] == "analysis: figure x.png"


def _fake_plugin_site(tmp_path) -> Path:
    """A folder holding an installed distribution whose entry point registers the sampler ``fake_ddim``."""
    site = tmp_path / "site"
    pkg = site / "fake_sampler_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent("""
        import dataclasses
        from experiments.samplers import REGISTRY, register
        # a well-formed new sampler: DDIM's kernel under another name
        register(dataclasses.replace(REGISTRY["ddim"], name="fake_ddim", claim=None, theory=None))
    """))
    info = site / "fake_sampler_pkg-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-sampler-pkg\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[diffusion_theorem_checks.samplers]\nfake = fake_sampler_pkg\n")
    return site


def test_plugin_sampler_from_an_installed_distribution(tmp_path):
    """A package declares a sampler module in the entry-point group; it shows in --help and runs."""
    site = _fake_plugin_site(tmp_path)
    env = dict(ENV, PYTHONPATH=f"{REPO}{os.pathsep}{site}", COLUMNS="100")
    run = lambda *argv: subprocess.run([sys.executable, "-m", "experiments.scaling", *argv], cwd=tmp_path, env=env,
                                       capture_output=True, text=True, timeout=300)
    help_text = run("--help")
    assert help_text.returncode == 0 and "fake_ddim" in help_text.stdout
    assert "plug-in from fake-sampler-pkg (fake)" in " ".join(help_text.stdout.split())
    res = run("--quick", "--samplers", "fake_ddim", "--dims", "10", "--eps", "0.3", "--variants", "tuned",
              "--jobs", "2", "--executor", "processes", "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    assert "fake_ddim" in (tmp_path / "out" / "errors.csv").read_text()


def test_plugin_sampler_is_not_a_builtin(tmp_path):
    """With a plug-in installed, the claims block and the tests over every sampler keep to the built-in ones
    (the plug-in has no prose in paper_notes.md, no preset formula, no tuned convergence costs here)."""
    site = _fake_plugin_site(tmp_path)
    env = dict(ENV, PYTHONPATH=f"{REPO}{os.pathsep}{site}")
    probe = textwrap.dedent("""
        import json
        from analysis.notes import render_claims
        from experiments.samplers import BUILTIN, REGISTRY, is_builtin
        from experiments.samplers._plugins import PLUGINS
        claims = render_claims()
        print(json.dumps({"plugins": sorted(PLUGINS), "not_builtin": sorted(set(REGISTRY) - BUILTIN),
                          "is_builtin": [is_builtin("fake_ddim"), is_builtin("ddim")],
                          "claims": ["`fake_ddim`" in claims or "| fake_ddim |" in claims, "| ddim |" in claims]}))
    """)
    res = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == {"plugins": ["fake_ddim"], "not_builtin": ["fake_ddim"],
                                      "is_builtin": [False, True], "claims": [False, True]}
    pytest_cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    listed = subprocess.run(pytest_cmd + ["--collect-only", "tests/test_laws_fast.py", "tests/test_edges.py",
                                          "tests/test_theory_presets.py"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert listed.returncode == 0 and "test_fast_law_matches_reference[" in listed.stdout, listed.stdout[-2000:]
    assert "fake_ddim" not in listed.stdout
    every = ["tests/test_paper_notes.py::test_every_registered_sampler_is_discussed_in_the_prose",
             "tests/test_theory_presets.py::test_every_preset_is_covered"]
    res = subprocess.run(pytest_cmd + every,
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "2 passed" in res.stdout, res.stdout[-3000:]


# -- fuzz ----------------------------------------------------------------------------------------------------

VALUES = {
    "--samplers": ["ddpm", "li_jiao", "ddpm,li_jiao", "ddpm,ddpm", "nope", "", ","],
    "--dims": ["10", "1e3", "10,1000", "0", "-5", "1e18", "9223372036854775808", "abc", "10,10", "1.5", "nan", "2",
               "1e12", "1e13"],
    "--eps": ["0.1", "0.2,0.1", "1e-200", "0", "1", "2", "abc", "0.1,0.1", "1e-300", "-0.1"],
    "--seed": ["0", "-1", "99999999999999999999999", "x", "7"],
    "--jobs": ["0", "1", "2", "1000000", "-3", "x"],
    "--executor": ["inline", "processes", "dask", "bogus"],
    "--scheduler": ["", "tcp://127.0.0.1:1", "nonsense", "tcp://:1"],
    "--variants": ["theory", "tuned", "theory,tuned", "best", "tuned,tuned", ""],
    "--param": ["K=20", "K=abc", "nope=1", "K", "=3", "li_jiao.c0=2", "ddpm.variance=large", "variance=1"],
    "--metric": ["annealed", "both", "quenched", "x"],
    "--targets": ["gauss_aniso", "gauss_lowrank", "nope", "gauss_aniso,gauss_aniso"],
    "--out": ["{out}", "", "{file}", "{below}"],
    "--figures": ["{out}/figs", "", "{file}"],
}
FLAGS = ["--quick", "--full", "--no-resume", "--force", "--bogus", "-x", "report", "cache", "rounds", "word"]


@st.composite
def command_lines(draw):
    argv = []
    if draw(st.booleans()):            # (--full only as a stray flag: planning the full profile takes ~15 s)
        argv.append("--quick")
    for opt in draw(st.lists(st.sampled_from(sorted(VALUES)), max_size=5)):
        argv += [opt, draw(st.sampled_from(VALUES[opt]))]
    if draw(st.integers(0, 4)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(st.sampled_from(FLAGS)))
    if "--samplers" not in argv:                # keep planning cheap (the default profile has 133 scans)
        argv += ["--samplers", "ddpm"]
    return argv


@settings(max_examples=40, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(argv=command_lines())
def test_fuzz_exit_0_or_2_never_a_traceback_one_line_on_error(argv, places, capsys):
    argv = [a.format(**places) for a in argv] + ["--dry-run"]
    if argv[0] == "report" or argv[0] == "cache":
        argv = [a for a in argv if a != "--dry-run"]
    code, out, err = _cli(argv, capsys)            # an exception escaping main() fails the test (a traceback)
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert len(err.strip().splitlines()) == 1, (argv, err)
    TALLY["tried"] += 1
    TALLY["one_line_exit_2"] += code == 2


def test_a_few_bad_lines_as_real_processes_print_no_traceback(tmp_path):
    for argv in (["--dims", "1e18"], ["--seed", "-1"], ["--scheduler", "tcp://127.0.0.1:1"], ["--out", ""]):
        res = subprocess.run([sys.executable, "-m", "experiments.scaling", *BASE, *argv], cwd=tmp_path, env=ENV,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.stderr


def test_report_draws_vector_figures_on_request(tmp_path, capsys):
    out, figs = _small_run(tmp_path, capsys)
    code, text, err = _cli(["report", "--out", str(out), "--figures", str(figs), "--format", "svg,png", "--force",
                            "--no-notes"], capsys)
    assert code == 0, err
    svgs = list(figs.glob("*.svg"))
    assert svgs and all(p.read_text().lstrip().startswith(("<?xml", "<svg")) for p in svgs)
    for bad in ("jpeg", "svg,svg", ""):
        code, _, err = _cli(["report", "--out", str(out), "--format", bad], capsys)
        assert code == 2 and "--format" in err and len(err.strip().splitlines()) == 1


def test_a_cell_cache_is_never_part_of_an_output_set(tmp_path):
    """Caches are git-ignored; a manifest that listed cached cells made every clean clone's committed set
    'incomplete' (the poisson and hardest studies wrote their caches into the staged set)."""
    s = outputs.OutputSet(tmp_path / "out", tmp_path / "figs")
    s.write_text("tables.md", "| a |\n")
    (s.stage / "cache").mkdir()
    (s.stage / "cache" / "err-0.json").write_text("{}")
    s.commit(json.dumps({"profile": "quick"}))
    listed = json.loads((tmp_path / "out" / outputs.MANIFEST).read_text())["files"]
    assert "tables.md" in listed and not any(p.startswith("cache") for p in listed)
    assert outputs.verify(tmp_path / "out") == []


@pytest.mark.parametrize("manifest", sorted(Path(__file__).resolve().parents[1].glob("results/**/MANIFEST.json")),
                         ids=lambda p: str(p.parent.name))
def test_committed_output_sets_are_complete_without_the_git_ignored_cache(manifest):
    listed = json.loads(manifest.read_text())["files"]
    assert not [p for p in listed if p.split("/")[0] == "cache"]
    missing = [p for p in listed if not (manifest.parent / p).exists()
               and not (manifest.parent.parent.parent / "figures" / p).exists()]
    assert outputs.verify(manifest.parent) == [], missing[:3]
