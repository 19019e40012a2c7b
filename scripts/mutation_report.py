"""Mutation testing of the core modules with mutmut 3, one module at a time, and the kill rate per module.

A mutant is a copy of the code with one small change (an operator, a constant, a comparison flipped); the
targeted tests of the mutated module should fail on it ("killed"). A surviving mutant is a change that no
test notices: either a test is missing or the change is harmless (equivalent). The kill rate is
(killed + timeout) / (mutants checked).

Commands (from the repository root of a fresh clone; Python 3.10+):

    python -m pip install -e ".[test]" "mutmut>=3.8,<4"
    python scripts/mutation_report.py list                              # the modules and their test selections
    python scripts/mutation_report.py run experiments/complexity.py    # mutate one module, run its tests
    python scripts/mutation_report.py report                           # kill rate of every module run so far
    python scripts/mutation_report.py report --survivors               # ... and the names of surviving mutants
    python scripts/mutation_report.py recheck experiments/samplers/pf_ode.py   # survivors against every selected test
    python scripts/mutation_report.py recheck experiments/samplers/pf_ode.py --again   # ... after tests were added
    python scripts/mutation_report.py run --all                        # every module in turn (hours on 2 cores)
    python scripts/mutation_report.py run experiments/distances.py --fresh --mutants "x_gaussian_kl*" "x_quenched_*"
                                                          # only the mutants of these functions (fnmatch patterns)
    python scripts/mutation_report.py run experiments/samplers/langevin.py --sample 150 --seed 0
                                                          # a uniform random sample of 150 of the module's mutants

A sampled run (``--sample``) estimates the kill rate: ``report`` then gives the Wilson 95% interval of the
rate over the module's mutants next to the rate over the checked ones. A rerun of the same folder without
``--fresh`` keeps the results of unchanged functions (mutmut 3 regenerates only the mutants of functions whose
source changed), and ``--mutants`` with the names of earlier survivors checks them again against new tests.

``run`` copies ``experiments/``, ``analysis/``, ``tests/``, ``pyproject.toml`` and ``paper_notes.md`` to
``build/mutation/<module>/`` (``build/`` is git-ignored), with the data a module's tests read (setup.cfg
``[mutation_report_data]``: the committed ``results/`` and ``figures/`` for the report module, without the
sampler cache), writes a ``setup.cfg`` there whose ``[mutmut]`` section is the repository's with
``only_mutate`` set to the module and ``pytest_add_cli_args_test_selection`` set to the module's tests from
the repository's ``[mutation_report]`` section (setup.cfg), and runs ``mutmut run`` in that folder. The work
tree itself is never modified. A rerun of the same module resumes (mutmut keeps its results in
``build/mutation/<module>/mutants/``); ``--fresh`` starts over (needed after a change of the code or tests).
To look at one surviving mutant::

    cd build/mutation/experiments__complexity && mutmut show <mutant name>

Each mutant's tests run in a fresh worker forked from mutmut's fork server, which has imported only the
libraries in ``PRELOAD`` (setup.cfg: ``process_isolation = forkserver``). mutmut's default forks every worker
from the process that ran the clean suite; a test module's cache (a ``functools.cache`` of a sampler's
errors, say) then answers for the mutant with the clean code's values, and the mutant survives falsely.

The module table and the shared mutmut settings are in setup.cfg (``[mutmut]``, ``[mutation_report]``). mutmut
3 (unlike mutmut 2) has no ``--paths-to-mutate`` or ``--runner`` options: it reads ``setup.cfg``
(or ``[tool.mutmut]`` in pyproject.toml, which this project does not use) from the current folder, copies the
sources to ``mutants/``, records which tests call which function, and runs for each mutant only those tests.
"""

from __future__ import annotations

import argparse
import configparser
import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WORKDIR = ROOT / "build" / "mutation"
COPY = ("experiments", "analysis", "tests", "pyproject.toml", "paper_notes.md")
PRELOAD = ("numpy", "scipy.special", "scipy.stats", "scipy.integrate", "scipy.optimize", "pandas", "statsmodels.api",
           "pytest", "hypothesis")

# mutmut 3.8's exit code -> status (mutmut/stats.py: status_by_exit_code); anything else is "suspicious"
STATUS_BY_EXIT_CODE = {
    1: "killed", 3: "killed", 0: "survived", 5: "no tests", 2: "check was interrupted by user", None: "not checked",
    33: "no tests", 34: "skipped", 35: "suspicious", 36: "timeout", 37: "caught by type check",
    -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout", -11: "segfault", -9: "segfault",
}
KILLED = ("killed", "timeout", "caught by type check", "killed on recheck")
NOT_COUNTED = ("not checked", "skipped", "check was interrupted by user")


def read_config(path: Path = ROOT / "setup.cfg") -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.optionxform = str                      # keep the case of module paths
    if not cfg.read(path):
        raise SystemExit(f"{path} not found")
    for section in ("mutmut", "mutation_report"):
        if not cfg.has_section(section):
            raise SystemExit(f"{path} has no [{section}] section")
    return cfg


def module_table(cfg: configparser.ConfigParser) -> dict[str, list[str]]:
    return {module: cfg.get("mutation_report", module).split() for module in cfg.options("mutation_report")}


def data_table(cfg: configparser.ConfigParser) -> dict[str, list[str]]:
    """module -> files or folders its tests read besides the code (setup.cfg ``[mutation_report_data]``)."""
    if not cfg.has_section("mutation_report_data"):
        return {}
    return {module: cfg.get("mutation_report_data", module).split() for module in cfg.options("mutation_report_data")}


def _ignore_caches(folder, names):
    """Skip Python and test caches everywhere, and a results folder's sampler cache (``results/cache``)."""
    skip = {n for n in names if n in ("__pycache__", ".hypothesis", ".pytest_cache") or n.endswith(".pyc")}
    if Path(folder).name == "results" and "cache" in names:
        skip.add("cache")
    return skip


def copy_into(names, dst: Path) -> None:
    """Copy the repository's files or folders ``names`` into ``dst`` (folders merged, caches skipped)."""
    for name in names:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=_ignore_caches, dirs_exist_ok=True)
        elif src.exists():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / name)
        else:
            raise SystemExit(f"not found: {name} (setup.cfg [mutation_report_data])")


def slug(module: str) -> str:
    return module.removesuffix(".py").replace("/", "__")


def prepare(module: str, tests: list[str], workdir: Path, fresh: bool) -> Path:
    """Copy the code and tests to ``workdir/<slug>`` and write its setup.cfg for this module."""
    wd = workdir / slug(module)
    if fresh and wd.exists():
        shutil.rmtree(wd)
    wd.mkdir(parents=True, exist_ok=True)
    cfg = read_config()
    data = data_table(cfg).get(module, [])
    copy_into(COPY + tuple(data), wd)
    # libraries the fork server imports once (setup.cfg: forkserver_warmup = import); no test module, so no
    # test state is shared between mutants
    (wd / "mutmut_preload.txt").write_text("\n".join(PRELOAD) + "\n")
    if "[tool.mutmut]" in (wd / "pyproject.toml").read_text():
        raise SystemExit("pyproject.toml has a [tool.mutmut] section: mutmut would ignore setup.cfg; remove it")
    cfg.set("mutmut", "only_mutate", "\n" + module)
    if data:                                   # mutmut copies also_copy into mutants/, where the tests run
        cfg.set("mutmut", "also_copy", "\n".join([cfg.get("mutmut", "also_copy", fallback="").rstrip(), *data]))
    cfg.set("mutmut", "pytest_add_cli_args_test_selection", "\n" + "\n".join(tests))
    with open(wd / "setup.cfg", "w") as f:
        f.write(f"# generated by scripts/mutation_report.py for {module}\n")
        cfg.write(f)
    return wd


def mutmut_executable() -> str:
    exe = Path(sys.executable).parent / "mutmut"
    found = str(exe) if exe.exists() else shutil.which("mutmut")
    if not found:
        raise SystemExit("mutmut not found: python -m pip install 'mutmut>=3.8,<4'")
    return found


def mutant_names(module: str) -> list[str]:
    """Every mutant name mutmut generates for ``module`` (mutmut 3's own generator, no tests run)."""
    try:
        from mutmut.__main__ import get_mutant_name, write_all_mutants_to_file
    except ImportError as exc:       # an internal API of mutmut 3 (pinned: >=3.8,<4)
        raise SystemExit(f"--sample needs mutmut 3.8 or later below 4: {exc}") from None
    path = Path(module)
    made = write_all_mutants_to_file(out=io.StringIO(), source=(ROOT / path).read_text(), filename=path)
    return [get_mutant_name(path, name) for name in made.mutant_names]


def sampled(module: str, n: int, seed: int) -> list[str]:
    names = mutant_names(module)
    return sorted(random.Random(seed).sample(names, min(n, len(names))))


def run(module: str, tests: list[str], workdir: Path, fresh: bool, max_children: int | None,
        mutants: list[str] | None = None, sample: dict | None = None) -> int:
    missing = [t for t in tests if not (ROOT / t.split("::")[0]).exists()]
    if not (ROOT / module).exists() or missing:
        raise SystemExit(f"not found: {[module] if not (ROOT / module).exists() else []} {missing}")
    wd = prepare(module, tests, workdir, fresh)
    record = wd / "sample.json"             # the report states an interval only for a recorded random sample
    if sample:
        record.write_text(json.dumps(sample))
    elif record.exists() and (fresh or mutants is None):
        record.unlink()
    env = {k: val for k, val in os.environ.items() if k != "PYTHONPATH"}    # tests must import the mutants
    cmd = [mutmut_executable(), "run"] + ([f"--max-children={max_children}"] if max_children else [])
    stem = module.removesuffix(".py").replace("/", ".")
    cmd += [m if m.startswith(stem + ".") else f"{stem}.{m}" for m in mutants or ()]     # mutmut matches with fnmatch
    print(f"[mutation_report] {module}: mutmut run in {wd} with tests {tests}", flush=True)
    rc = subprocess.run(cmd, cwd=wd, env=env).returncode
    print_report(workdir, [module], survivors=False)
    return rc


def recheck(module: str, tests: list[str], workdir: Path, timeout: float = 600.0, again: bool = False) -> int:
    """Run the module's whole test selection, in a new process, against every surviving mutant.

    mutmut runs for a mutant only the tests it saw calling the mutated function; code that runs when a
    module is imported (a claim declared at registration, a factory called while collecting) is seen by
    no test, so its mutants "survive" whatever the tests check. The recheck sets ``MUTANT_UNDER_TEST``
    and runs every selected test (stopping at the first failure); a failure is recorded as killed on
    recheck in ``recheck.json`` next to mutmut's results, and ``report`` counts it.
    """
    wd = workdir / slug(module)
    res = results(wd)
    if res is None or not res[1]:
        raise SystemExit(f"no mutation results for {module}: run it first")
    survivors = sorted(n for n, st in res[1].items() if st in ("survived", "no tests"))
    # the repository's current tests and code around the same mutated module (which must not have changed):
    # mutmut copies the other source files verbatim, so they are refreshed from the work tree
    if (ROOT / module).read_bytes() != (wd / module).read_bytes():
        raise SystemExit(f"{module} changed since it was mutated: run it again (--fresh)")
    copy_into(("tests", "paper_notes.md", *data_table(read_config()).get(module, [])), wd / "mutants")
    for package in ("experiments", "analysis"):
        for src in (ROOT / package).rglob("*.py"):
            rel = src.relative_to(ROOT)
            if rel != Path(module) and "__pycache__" not in rel.parts:
                (wd / "mutants" / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, wd / "mutants" / rel)
    path = wd / "recheck.json"
    done = json.loads(path.read_text()) if path.exists() else {}
    env = {k: val for k, val in os.environ.items() if k != "PYTHONPATH"}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", "-p", "no:randomly",
           "--rootdir=.", *tests]
    # a failure counts as a kill only if the selection passes on the unmutated code
    clean = subprocess.run(cmd, cwd=wd / "mutants", env={**env, "MUTANT_UNDER_TEST": ""},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout).returncode
    if clean != 0:
        raise SystemExit(f"the test selection of {module} fails on the unmutated code (exit {clean}): fix that first")
    for i, name in enumerate(survivors):
        if name in done and not again:          # survivors of an earlier recheck run again only with --again
            continue
        try:
            rc = subprocess.run(cmd, cwd=wd / "mutants", env={**env, "MUTANT_UNDER_TEST": name},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            rc = 36
        done[name] = rc
        path.write_text(json.dumps(done))             # resumable: one entry per rechecked mutant
        print(f"[recheck {i + 1}/{len(survivors)}] {'killed' if rc in (1, 36) else 'survived'}  {name}", flush=True)
    return 0


def results(wd: Path) -> tuple[str, dict[str, str]] | None:
    """(module, {mutant name: status}) of one work folder, or None when it holds no results yet."""
    cfg_path = wd / "setup.cfg"
    if not cfg_path.exists():
        return None
    cfg = configparser.ConfigParser()
    cfg.optionxform = str
    cfg.read(cfg_path)
    module = cfg.get("mutmut", "only_mutate", fallback="").split()
    if len(module) != 1:
        return None
    meta = wd / "mutants" / (module[0] + ".meta")
    if not meta.exists():
        return module[0], {}
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    status = {name: STATUS_BY_EXIT_CODE.get(code, "suspicious") for name, code in codes.items()}
    rechecked = wd / "recheck.json"
    if rechecked.exists():
        for name, rc in json.loads(rechecked.read_text()).items():
            if status.get(name) in ("survived", "no tests") and rc in (1, 36):
                status[name] = "killed on recheck"
    return module[0], status


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (coverage close to nominal for small n)."""
    p_hat = k / n
    centre = (p_hat + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p_hat * (1 - p_hat) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def print_report(workdir: Path, modules: list[str] | None, survivors: bool) -> None:
    rows = []
    for wd in sorted(p for p in workdir.glob("*") if p.is_dir()):
        res = results(wd)
        if res is None or (modules and res[0] not in modules):
            continue
        rows.append((wd, *res))
    if not rows:
        print(f"no mutation results under {workdir}: run `python scripts/mutation_report.py run MODULE` first")
        return
    header = f"{'module':42s} {'mutants':>7s} {'checked':>7s} {'killed':>6s} {'survived':>8s} {'no tests':>8s} " \
             f"{'timeout':>7s} {'other':>5s} {'kill rate':>9s}"
    print(header)
    print("-" * len(header))
    for wd, module, status in rows:
        total = len(status)
        drawn = set(json.loads((wd / "sample.json").read_text())["mutants"]) if (wd / "sample.json").exists() else set()
        if drawn:       # only the recorded sample counts (mutants of an earlier, larger sample may have results)
            status = {n: s for n, s in status.items() if n in drawn}
        c = Counter(status.values())
        checked = sum(n for s, n in c.items() if s not in NOT_COUNTED)
        killed = sum(c[s] for s in KILLED)
        other = checked - killed - c["survived"] - c["no tests"]
        rate = f"{100.0 * killed / checked:8.1f}%" if checked else "      n/a"
        lo_hi = ""
        drawn = len(drawn)
        if 0 < checked == drawn < total:                # a whole random sample: the rate over all mutants, estimated
            lo, hi = wilson(killed, checked)
            lo_hi = f"  [{100 * lo:.1f}%, {100 * hi:.1f}%] (95%, random sample of {checked} of {total})"
        elif drawn:                                     # mutmut checks function by function: not a uniform subset
            lo_hi = f"  (partial sample: {checked} of the {drawn} drawn checked, no interval)"
        elif checked < total:
            lo_hi = f"  ({total - checked} not checked)"
        if c["killed on recheck"]:
            lo_hi += f"  ({c['killed on recheck']} killed on recheck)"
        print(f"{module:42s} {total:7d} {checked:7d} {c['killed']:6d} {c['survived']:8d} {c['no tests']:8d} "
              f"{c['timeout']:7d} {other:5d} {rate:>9s}{lo_hi}")
        if survivors:
            for name in sorted(n for n, s in status.items() if s in ("survived", "no tests", "suspicious")):
                print(f"    {status[name]:10s} {name}    (cd {wd.relative_to(ROOT) if wd.is_relative_to(ROOT) else wd} "
                      f"&& mutmut show {name})")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the modules and their test selections (setup.cfg [mutation_report])")
    r = sub.add_parser("run", help="mutate one module (or --all) and run its targeted tests")
    r.add_argument("module", nargs="?", help="a key of [mutation_report], e.g. experiments/complexity.py")
    r.add_argument("--all", action="store_true", help="every module of [mutation_report] in turn")
    r.add_argument("--fresh", action="store_true", help="discard earlier results of the module(s)")
    r.add_argument("--max-children", type=int, default=None, help="parallel mutant workers (mutmut default: cores)")
    r.add_argument("--mutants", nargs="+", default=None, metavar="PATTERN",
                   help="only these mutants (fnmatch patterns of mutmut names, e.g. 'x_gaussian_kl*'; the module "
                        "prefix is added); unmatched mutants stay 'not checked' and are left out of the kill rate")
    r.add_argument("--sample", type=int, default=None, metavar="N",
                   help="only a uniform random sample of N mutants (the kill rate is then an estimate with its "
                        "interval); not with --mutants")
    r.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    r.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    rc_ = sub.add_parser("recheck", help="run the whole test selection against each surviving mutant (catches "
                                         "mutants of code run at import, which mutmut associates with no test)")
    rc_.add_argument("module")
    rc_.add_argument("--again", action="store_true",
                     help="also the mutants an earlier recheck left alive (after tests were added)")
    rc_.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    rep = sub.add_parser("report", help="kill rate per module from mutmut's results")
    rep.add_argument("modules", nargs="*", help="only these modules (default: every module run so far)")
    rep.add_argument("--survivors", action="store_true", help="list surviving mutants and how to show them")
    rep.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    args = p.parse_args(argv)

    table = module_table(read_config())
    if args.command == "list":
        for module, tests in table.items():
            print(module)
            for t in tests:
                print(f"    {t}")
        return 0
    if args.command == "recheck":
        if args.module not in table:
            p.error(f"unknown module {args.module!r}; known: {sorted(table)}")
        return recheck(args.module, table[args.module], args.workdir, again=args.again)
    if args.command == "report":
        print_report(args.workdir, args.modules or None, args.survivors)
        return 0
    if args.all == bool(args.module):
        p.error("give one module or --all")
    modules = list(table) if args.all else [args.module]
    unknown = [m for m in modules if m not in table]
    if unknown:
        p.error(f"unknown module(s) {unknown}; known: {sorted(table)}")
    if args.sample is not None and (args.sample < 1 or args.mutants):
        p.error("--sample must be >= 1 and cannot be combined with --mutants")
    rc = 0
    for module in modules:
        names = sampled(module, args.sample, args.seed) if args.sample else args.mutants
        sample = {"n": args.sample, "seed": args.seed, "mutants": names} if args.sample else None
        rc = max(rc, run(module, table[module], args.workdir, args.fresh, args.max_children, names, sample))
    return rc


if __name__ == "__main__":
    sys.exit(main())
