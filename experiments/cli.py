"""The command line: ``python -m experiments.scaling [STUDY | report | cache] [options]``.

=====================  ==========================================================================
command                what it does
=====================  ==========================================================================
(none)                 the main study: N*(d, eps) of every sampler, exponents, verdicts, figures
``STUDY``              one of the extra studies (experiments.extra_studies)
``report``             rebuild the analysis tables, figures and the README/paper_notes generated
                       blocks from existing results, without recomputing anything
``cache``              list a results folder's cache of finished cells, prune or clear it
=====================  ==========================================================================

Rules every command keeps: a bad command line is **one line on stderr and exit status 2**, found before
any work (experiments.planning says what each option accepts); a ``ValueError`` or a non-finite sampler
state during a run is one line naming the sampler (exit 2); SIGINT and SIGTERM stop the run within
seconds with one line ``interrupted; N cells cached; rerun to resume`` (exit 130) and no worker left
running (experiments.executors); an output folder always holds one run's complete set or says it does
not (experiments.outputs); ``--help`` imports nothing heavy.

Output folders by profile (relative to the working directory): default ``results/`` and ``figures/``
(committed), ``--quick`` ``results/quick/`` and ``figures/quick/``, ``--full`` ``results/full/`` and
``figures/full/``; an extra study writes into ``<that>/<study>``. ``--out DIR`` alone puts the figures in
``DIR/figures``. A folder holding another profile's results is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import textwrap
import time
from pathlib import Path

PROG = "python -m experiments.scaling"
COMMANDS = ("report", "cache")
ROOT = Path(__file__).resolve().parents[1]
EXECUTORS = ("inline", "processes", "dask")      # = experiments.executors.EXECUTORS (not imported for --help)
METRICS = ("annealed", "both", "quenched")       # = experiments.planning.METRIC_CHOICES
#: seconds to wait for a Dask scheduler to accept a connection before any work
SCHEDULER_TIMEOUT = 3.0
RUN_TABLES = ("errors.csv", "errors_replicates.csv", "nstar.csv", "nstar_replicates.csv")
REFERENCE_MODE = ("exact marginal at the sampler's start level; error against the exact marginal at its final "
                  "level")

#: (command line, what it does) shown by --help
EXAMPLES = (
    (f"{PROG} --quick", "the CI profile, into results/quick and figures/quick"),
    (f"{PROG} --samplers li_jiao,ddpm --dims 10,1000 --dry-run", "list the work and its estimated cost"),
    (f"{PROG} --samplers li_jiao --param K=20 --variants tuned --out runs/k20", "a sampler parameter"),
    (f"{PROG} rounds --quick", "an extra study (STUDY --help for its options)"),
    (f"{PROG} report", "tables, figures and README blocks from results/, without sampling"),
    (f"{PROG} cache --list", "the cache of finished cells (also --prune-unused, --clear)"),
)


def examples(width: int | None = None) -> str:
    width = width or _width()
    lines = ["examples:"]
    for cmd, what in EXAMPLES:
        lines.append(f"  {cmd}")
        lines.append(textwrap.fill(what, width=width, initial_indent="      # ", subsequent_indent="      # "))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- parsing
class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit 2) and a catalogue epilog built only when help is printed."""

    def __init__(self, *args, epilog_fn=None, **kw):
        kw.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        kw.setdefault("allow_abbrev", False)
        super().__init__(*args, **kw)
        self._epilog_fn = epilog_fn

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(str(message).split())}\n")

    def format_help(self):
        if self._epilog_fn is not None:
            self.epilog = self._epilog_fn()
        return super().format_help()


def _width() -> int:
    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 160) - 2)


def _entries(title: str, items, width: int) -> list[str]:
    lines = textwrap.wrap(title, width=width, subsequent_indent="  ")
    for name, text in items:
        lines.append(textwrap.fill(text, width=width, initial_indent=f"  {name:24s} ",
                                   subsequent_indent=" " * 27, break_on_hyphens=False)
                     if len(name) <= 24 else
                     f"  {name}\n" + textwrap.fill(text, width=width, initial_indent=" " * 27,
                                                    subsequent_indent=" " * 27, break_on_hyphens=False))
    return lines


def catalogue(width: int | None = None, *, studies: bool = True, samplers: bool = True,
              targets: bool = True) -> str:
    """The studies, samplers (with their claims) and targets, wrapped to the terminal width."""
    width = width or _width()
    lines: list[str] = []
    if studies:
        from experiments.extra_studies import catalogue as study_catalogue

        lines += _entries(f"studies ({PROG} STUDY [options]; default: the N*(d, eps) study):",
                          study_catalogue().items(), width)
    if samplers:
        from experiments.samplers import REGISTRY
        from experiments.samplers._plugins import plugin_origin

        items = []
        for name, spec in sorted(REGISTRY.items()):
            claim = spec.claim.describe() if spec.claim else "no claim (building block)"
            origin = plugin_origin(name)
            items.append((name, claim + (f" [plug-in from {origin}]" if origin else "")))
        lines += _entries("samplers (claims):", items, width)
    if targets:
        from experiments.studies import TARGETS

        lines += _entries("targets:", [(n, f.description) for n, f in sorted(TARGETS.items())], width)
    return "\n".join(lines)


def study_names() -> list[str]:
    from experiments.extra_studies import catalogue as study_catalogue

    return list(study_catalogue())


def _add_profile(p):
    prof = p.add_mutually_exclusive_group()
    prof.add_argument("--quick", action="store_const", const="quick", dest="profile",
                      help="CI profile (about a minute), into results/quick and figures/quick")
    prof.add_argument("--full", action="store_const", const="full", dest="profile",
                      help="the paper figures (long), into results/full and figures/full")
    p.set_defaults(profile="default")


def _add_run_options(p, *, study: str | None):
    where = f"results/{study}" if study else "results"
    p.add_argument("--seed", type=int, default=0, help="root seed in [0, 2^63-1]; every cell derives its own")
    p.add_argument("--out", default=None,
                   help=f"folder of the tables (default: {where}, {where.replace('results', 'results/quick', 1)} "
                        "with --quick, ... with --full)")
    p.add_argument("--figures", default=None, help="folder of the figures (default: figures/... beside the "
                                                   "default --out, else OUT/figures)")
    p.add_argument("--force", action="store_true",
                   help="write into a folder that holds another profile's (or study's) results")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes (default: the cores this process may use; capped at the number of "
                        "scans and at 4 per core)")
    p.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="inline (default with one job), processes (default with more), dask")
    p.add_argument("--scheduler", default=None,
                   help="address of a running Dask scheduler, e.g. tcp://host:8786 (implies --executor dask)")
    p.add_argument("--no-resume", action="store_true", help="drop the cached cells and recompute everything")
    p.add_argument("--dry-run", action="store_true",
                   help="list the work with an estimate (scans, laws, ~CPU seconds) and exit")
    p.add_argument("--samplers", help="comma-separated sampler names (default: the profile's or the study's)")


def build_parser() -> Parser:
    desc = ("Measure N*(d, eps) for every sampler, fit exponents, set them beside the claims.\n\n"
            "commands (first argument):\n"
            "  STUDY     one of the extra studies listed below\n"
            "  report    rebuild tables, figures and README/paper_notes blocks from existing results\n"
            "  cache     list, prune or clear the cache of finished cells")
    p = Parser(prog=PROG, usage=f"{PROG} [STUDY | report | cache] [options]", description=desc,
               epilog_fn=lambda: examples() + "\n\n" + catalogue())
    p.add_argument("command", nargs="?", metavar="STUDY",
                   help="an extra study (see below), 'report' or 'cache'; must come first. Without it: the "
                        "main study")
    _add_profile(p)
    p.add_argument("--targets", help="comma-separated target families (default: the profile's)")
    p.add_argument("--dims", help="comma-separated dimensions, integers up to 10^12 (1e3 allowed)")
    p.add_argument("--eps", help="comma-separated accuracies in (0, 1)")
    p.add_argument("--metric", choices=METRICS, default="annealed",
                   help="TV of the true output law (annealed), mean conditional TV (quenched), or both")
    p.add_argument("--variants", default="theory,tuned", help="theory preset, tuned defaults, or both")
    p.add_argument("--param", action="append", default=[], metavar="[SAMPLER.]NAME=VALUE",
                   help="a parameter of the tuned variant (repeatable), typed like the sampler's default and "
                        "checked by its make(): --param K=20, --param li_jiao.c0=3")
    _add_run_options(p, study=None)
    return p


# ---------------------------------------------------------------------------------------------- checks
def _folders(args, study: str | None) -> tuple[Path, Path]:
    from experiments.outputs import check_writable_dir
    from experiments.planning import PROFILE_FOLDERS

    res, fig = PROFILE_FOLDERS[args.profile]
    if study:
        res, fig = f"{res}/{study}", f"{fig}/{study}"
    if args.out is not None:
        out = check_writable_dir(args.out, "--out")
        figures = check_writable_dir(args.figures, "--figures") if args.figures is not None else out / "figures"
    else:
        out = check_writable_dir(res, "--out")
        figures = check_writable_dir(args.figures if args.figures is not None else fig, "--figures")
    if out.exists() and figures.resolve() == out.resolve():
        raise ValueError("--figures must differ from --out")
    return out, figures


def check_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """The scheduler at ``address`` accepts a TCP connection within ``timeout`` seconds (tcp/tls addresses)."""
    import socket
    from importlib.util import find_spec

    if not address.strip():
        raise ValueError("--scheduler must be an address such as tcp://host:8786, got an empty string")
    if find_spec("distributed") is None:
        raise ValueError("--scheduler needs the optional extra: pip install '.[distributed]'")
    proto, sep, rest = address.partition("://")
    if not sep:
        proto, rest = "tcp", address
    if proto not in ("tcp", "tls"):
        return                                            # inproc://, ucx://, ws://: not checked here
    host, colon, port = rest.rstrip("/").rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--scheduler must look like tcp://host:port, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ValueError(f"--scheduler {address}: cannot connect ({reason}); is the scheduler running?") from None
    # something listens there: is it a Dask scheduler? (a handshake, bounded in time)
    import logging

    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        from distributed import Client

        Client(address, timeout=timeout).close()
    except BaseException as exc:  # noqa: BLE001 - timeouts, garbage handshakes, MemoryError on garbage sizes
        if isinstance(exc, KeyboardInterrupt):
            raise
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise ValueError(f"--scheduler {address}: no Dask scheduler answered ({type(exc).__name__}: "
                         f"{reason})") from None


def _executor(args, n_items: int | None, label: str = "scans") -> tuple[str, int, str | None]:
    """``(executor, jobs, note)`` from --executor/--jobs/--scheduler, conflicts rejected."""
    from experiments.executors import available_cores, cap_jobs

    if args.scheduler is not None:
        if args.executor in ("inline", "processes"):
            raise ValueError(f"--scheduler conflicts with --executor {args.executor} (a scheduler means dask)")
        if args.jobs is not None:
            raise ValueError("--jobs does not apply with --scheduler (the cluster's workers run the cells)")
        check_scheduler(args.scheduler)
        return "dask", 1, None
    if args.jobs is not None:
        if args.jobs < 1:
            raise ValueError(f"--jobs must be an integer >= 1, got {args.jobs}")
        if args.executor == "inline" and args.jobs != 1:
            raise ValueError(f"--jobs {args.jobs} conflicts with --executor inline (one process; use --executor "
                             "processes or dask)")
    if args.executor == "dask":
        from importlib.util import find_spec

        if find_spec("distributed") is None:
            raise ValueError("--executor dask needs the optional extra: pip install '.[distributed]'")
    items = n_items if n_items is not None else 10**9
    if args.jobs is None:
        jobs, note = max(1, min(available_cores(), items)), None
    else:
        jobs, note = cap_jobs(args.jobs, items, label=label)
    executor = args.executor or ("processes" if jobs > 1 else "inline")
    if executor == "inline":
        jobs = 1
    return executor, jobs, note


def _workers(executor: str, jobs: int) -> str:
    if executor == "inline":
        return "in this process"
    if executor == "dask":
        return f"{jobs} Dask workers" if jobs > 1 else "a Dask cluster"
    return f"{jobs} worker process{'es' if jobs > 1 else ''}"


def _note(line: str) -> None:
    print(f"{PROG}: note: {line}", file=sys.stderr, flush=True)


def _interrupted(cache_dir: Path, phase: str = "") -> int:
    from experiments.cache import count

    print(f"{PROG}: interrupted{phase}; {count(cache_dir)} cells cached; rerun to resume", file=sys.stderr,
          flush=True)
    return 130


# ---------------------------------------------------------------------------------------------- main study
def main_command(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is not None:
        known = study_names() + list(COMMANDS)
        parser.error(f"unknown command or study {args.command!r} (one of: {', '.join(known)}); a study or "
                     "command must come first")
    from experiments.runner import report_error

    try:
        out, figures = _folders(args, None)
        from experiments.outputs import check_owner
        from experiments.planning import check_seed, estimate, plan_scans

        check_seed(args.seed)
        check_owner(out, args.profile, "scaling", force=args.force)
        if args.scheduler is not None or args.executor is not None or args.jobs is not None:
            _executor(args, None)                # conflicts and the scheduler, before planning
        scans = plan_scans(args)
        executor, jobs, note = _executor(args, len(scans)) if args.scheduler is None else ("dask", 1, None)
    except ValueError as exc:
        return report_error(PROG, exc)
    if note:
        _note(note)
    if args.dry_run:
        from experiments.planning import describe

        for s in scans:
            print(describe(s))
        est = estimate(scans)
        print(f"{est['scans']} scans, {est['laws']} laws and {est['errors']} errors at the first draw level, "
              f"~{est['cpu_seconds']:.0f} CPU s (~{est['cpu_seconds'] / max(jobs, 1):.0f} s wall, "
              f"{_workers(executor, jobs)}); tables -> {out}, figures -> {figures}")
        return 0
    return _run_main(args, argv, scans, out, figures, executor, jobs)


def _run_main(args, argv, scans, out: Path, figures: Path, executor: str, jobs: int) -> int:
    import pandas as pd

    from experiments import cache
    from experiments.executors import interrupt_on_sigterm
    from experiments.outputs import OutputSet
    from experiments.planning import estimate, scan_seconds
    from experiments.progress import Progress
    from experiments.runner import nonfinite_counts, nstar_tables, report_error, run_scans

    cache_dir = out / "cache"
    started, cpu0 = time.monotonic(), time.process_time()
    with interrupt_on_sigterm():
        try:
            if args.no_resume:
                cache.clear(cache_dir)
            est = estimate(scans)
            print(f"{len(scans)} scans of the {args.profile} profile (~{est['cpu_seconds']:.0f} CPU s estimated), "
                  f"{_workers(executor, jobs)}; cache {cache_dir}", flush=True)
            with Progress([scan_seconds(s) for s in scans]) as bar:
                results = run_scans(scans, cache_dir=cache_dir, executor=executor, jobs=jobs,
                                    scheduler=args.scheduler, progress=bar)
        except KeyboardInterrupt:
            return _interrupted(cache_dir)
        except ValueError as exc:
            return report_error(PROG, exc)
        except Exception as exc:  # noqa: BLE001 - a dead worker (killed, out of memory)
            if type(exc).__name__ == "BrokenProcessPool":
                print(f"{PROG}: error: a worker process died unexpectedly (killed, or out of memory?); "
                      f"{cache.count(cache_dir)} cells cached; rerun to resume", file=sys.stderr)
                return 1
            raise
        stats = [r["stats"] for r in results]
        rows = [row for r in results for row in r["errors"]]
        reps = [row for r in results for row in r["replicates"]]
        order = ["sampler", "variant", "target", "params", "metric", "d", "cost"]
        errors = pd.DataFrame(rows).sort_values(order, kind="stable").reset_index(drop=True)
        replicates = pd.DataFrame(reps)
        if len(replicates):
            replicates = replicates.sort_values(order + ["group"], kind="stable").reset_index(drop=True)
        try:
            table, table_reps = nstar_tables(errors, replicates, scans)
        except ValueError as exc:
            return report_error(PROG, f"N* search: {exc}")
        notes = []
        bad = nonfinite_counts(errors)
        if bad:
            n_div = int((table["status"] == "diverged").sum()) if len(table) else 0
            notes.append(f"note: {sum(bad.values())} errors are not finite ("
                         + ", ".join(f"{k} {v}" for k, v in bad.items())
                         + f"): diverged laws at small costs, read as above every eps; {n_div} N* marked "
                           f"'diverged' (excluded from fits)")
        outset = OutputSet(out, figures)
        try:
            outset.write_text("errors.csv", errors.to_csv(index=False))
            outset.write_text("errors_replicates.csv", replicates.to_csv(index=False))
            outset.write_text("nstar.csv", table.to_csv(index=False))
            outset.write_text("nstar_replicates.csv", table_reps.to_csv(index=False))
            say = _say_fn()
            say("analysis: exponents, verdicts, comparisons, tables.md")
            try:
                _write_report(outset.stage, outset.stage_figures, say)
            except ValueError as exc:
                outset.discard()
                return report_error(PROG, f"analysis: {exc}")
            meta = _metadata(args, argv, scans, stats, executor, jobs, started, cpu0)
            state = outset.commit(meta)
        except KeyboardInterrupt:
            outset.discard()
            return _interrupted(cache_dir, " while writing the tables (the folder keeps its previous set)")
    _summary(out, figures, state, stats, time.monotonic() - started, len(scans), executor, jobs, notes=notes)
    return 0


def _say_fn():
    def say(line):
        print(line, flush=True)
    return say


def _write_report(results: Path, figures: Path, say, formats=("png",), diagnostics: bool = False) -> None:
    from analysis.report import write_report

    write_report(results, figures, progress=lambda line: say(f"analysis: {line}"), formats=formats,
                 diagnostics=diagnostics)


def _metadata(args, argv, scans, stats, executor, jobs, started, cpu0, study: str = "scaling") -> dict:
    import platform

    from experiments.cells import code_version
    from experiments.outputs import git_commit, package_versions

    cpu_scans = sum(float(x.get("cpu_seconds", 0.0)) for x in stats)
    meta = {
        "study": study, "profile": args.profile, "seed": args.seed, "code_version": code_version(),
        "git": git_commit(ROOT), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": platform.python_version(), "packages": package_versions(), "argv": list(argv),
        "executor": executor, "jobs": jobs, "wall_seconds": round(time.monotonic() - started, 1),
        "cpu_seconds": round(cpu_scans, 1), "cpu_seconds_main_process": round(time.process_time() - cpu0, 1),
        "cache": {k: int(sum(int(x.get(k, 0)) for x in stats)) for k in ("cache_hits", "cache_writes", "corrupt")},
    }
    if study == "scaling":
        meta.update({
            "start": "exact", "reference_mode": REFERENCE_MODE, "n_scans": len(scans),
            "selection": {k: getattr(args, k) for k in ("samplers", "targets", "dims", "eps", "variants", "metric",
                                                         "param")},
            "slowest_scans": sorted(({"scan": f"{s.sampler} {s.variant} {dict(s.params)}",
                                      "cpu_seconds": round(x["cpu_seconds"], 1), "max_draws": x["max_draws"]}
                                     for s, x in zip(scans, stats, strict=True)), key=lambda r: -r["cpu_seconds"])[:10],
            "infeasible_costs_left_out": {f"{s.sampler} {s.variant} {dict(s.params)}": s.n_infeasible
                                          for s in scans if s.n_infeasible},
        })
    return meta


def _fmt_time(s: float) -> str:
    from experiments.progress import _fmt_seconds

    return _fmt_seconds(s)


def verdict_summary(out: Path) -> list[str]:
    """Verdict counts per claim (primary estimator) and the decisive answers, as lines (none when the folder's
    tables do not have the main study's layout)."""
    try:
        return _verdict_summary(out)
    except (KeyError, ValueError, IndexError, OSError):
        return []


def _verdict_summary(out: Path) -> list[str]:
    import pandas as pd

    lines = []
    vpath, dpath = out / "verdicts.csv", out / "decisive.csv"
    if vpath.exists() and vpath.stat().st_size > 1:
        v = pd.read_csv(vpath)
        v = v[v["estimator"] == "N* power law"] if "estimator" in v else v
        if len(v):
            lines.append("verdicts (primary estimator, N* power law), counted over variants, metrics and targets:")
            for sampler, g in v.groupby("sampler", sort=True):
                claim = ""
                if "claim_metric" in g and "a_claim" in g and pd.notna(g["a_claim"].iloc[0]):
                    from analysis.tables import fmt_fraction

                    claim = (f" [{str(g['claim_metric'].iloc[0]).upper()} d^{fmt_fraction(g['a_claim'].iloc[0])} "
                             f"eps^-{fmt_fraction(g['b_claim'].iloc[0])}]")
                parts = []
                for col, lab in (("verdict_d", "d"), ("verdict_eps", "eps")):
                    if col in g:
                        counts = g[col].fillna("n/a").value_counts().sort_index()
                        parts.append(f"{lab}: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
                lines.append(f"  {sampler}{claim}: " + "; ".join(parts))
    if dpath.exists() and dpath.stat().st_size > 1:
        dec = pd.read_csv(dpath)
        if len(dec) and "answer" in dec:
            lines.append("headline (decisive.csv):")
            for _, r in dec.iterrows():
                lines.append(f"  {r.get('variant', '')} variant, {r.get('target', '')}, {r.get('metric', '')}: "
                             f"{r['answer']}")
    return lines


def _summary(out, figures, state, stats, wall, n_items, executor, jobs, *, label="scans", notes=()) -> None:
    from experiments.outputs import read_json, stray_files

    for line in verdict_summary(out):
        print(line)
    man = read_json(out / "MANIFEST.json") or {}
    n_fig = sum(1 for rel in man.get("files", {}) if (out / rel).resolve().is_relative_to(figures.resolve()))
    if state == "unchanged":
        print(f"results unchanged: the tables equal those in {out}; nothing was written (figures in {figures})")
    else:
        names = sorted(rel for rel in man.get("files", {}) if "/" not in rel and rel.endswith((".csv", ".md")))
        key = [n for n in ("errors.csv", "nstar.csv", "verdicts.csv", "tables.md") if n in names] or names
        more = ", ..." if len(names) > len(key[:4]) else ""
        print(f"tables: {out}/ ({', '.join(key[:4])}{more}); figures: {figures}/ ({n_fig} files)")
    cpu = sum(float(x.get("cpu_seconds", 0.0)) for x in stats)
    hits = sum(int(x.get("cache_hits", 0)) for x in stats)
    writes = sum(int(x.get("cache_writes", 0)) for x in stats)
    print(f"time: {_fmt_time(wall)} wall, {_fmt_time(cpu)} CPU in the {label} ({n_items} {label}, "
          f"{_workers(executor, jobs)}); cache: {hits} hits, {writes} cells computed")
    corrupt = sum(int(x.get("corrupt", 0)) for x in stats)
    if corrupt:
        print(f"{corrupt} corrupt cache entries recomputed")
    for line in notes:
        print(line)
    stray = stray_files(out)
    if stray and state != "unchanged":
        print(f"note: {out} also holds files this run did not write (older layout?): {', '.join(stray[:6])}"
              + (" ..." if len(stray) > 6 else ""))


# ---------------------------------------------------------------------------------------------- studies
def study_parser(name: str, description: str) -> Parser:
    p = Parser(prog=f"{PROG} {name}", description=description,
               epilog_fn=lambda: catalogue(studies=False, targets=False))
    _add_profile(p)
    _add_run_options(p, study=name)
    return p


def study_command(name: str, argv) -> int:
    from experiments.extra_studies import catalogue as study_catalogue

    parser = study_parser(name, study_catalogue().get(name, ""))
    args = parser.parse_args(argv)
    prog = f"{PROG} {name}"
    from experiments.runner import report_error

    try:
        out, figures = _folders(args, name)
        from experiments.outputs import check_owner
        from experiments.planning import check_seed, split_names

        check_seed(args.seed)
        check_owner(out, args.profile, name, force=args.force)
        executor, jobs, note = _executor(args, None)
        samplers = split_names(args.samplers, "--samplers")
        if samplers is not None:
            from experiments.samplers import get as get_sampler

            for s in samplers:
                get_sampler(s)
        from experiments.extra_studies import get_study

        study = get_study(name)
    except ValueError as exc:
        return report_error(prog, exc)
    if note:
        _note(note)
    if args.dry_run:
        return _study_dry_run(prog, study, args, out, figures, samplers, executor, jobs)
    return _run_study(prog, study, args, argv, out, figures, samplers, executor, jobs)


def _study_dry_run(prog, study, args, out, figures, samplers, executor, jobs) -> int:
    import tempfile

    from experiments.extra_studies import PlannedWork, StudyContext
    from experiments.planning import describe, estimate
    from experiments.runner import report_error

    with tempfile.TemporaryDirectory() as tmp:
        try:
            ctx = StudyContext(profile=args.profile, seed=args.seed, out=Path(tmp) / "out",
                               figures=Path(tmp) / "figures", jobs=jobs, executor=executor,
                               scheduler=args.scheduler, resume=True, samplers=samplers, dry_run=True,
                               cache_dir=out / "cache")
            study.run(ctx)
        except PlannedWork as planned:
            if planned.kind == "scans":
                for s in planned.work:
                    print(describe(s))
                est = estimate(planned.work)
                print(f"{study.name}: {est['scans']} scans, {est['laws']} laws, {est['errors']} errors at the first "
                      f"draw level, ~{est['cpu_seconds']:.0f} CPU s (first batch of work; later batches depend on "
                      f"its results); {_workers(executor, jobs)}; tables -> "
                      f"{out}, figures -> {figures}")
            else:
                from experiments.cache import CellCache

                kinds: dict = {}
                for it in planned.work:
                    k = str(it.get("kind", it.get("sampler", "cell"))) if isinstance(it, dict) else "cell"
                    kinds[k] = kinds.get(k, 0) + 1
                print(f"{study.name}: {len(planned.work)} cells (first batch of work): "
                      + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
                      + f"; no cost model for these cells; {CellCache(out / 'cache').root} holds "
                        f"{sum(1 for _ in (out / 'cache').glob('*.json')) if (out / 'cache').is_dir() else 0} "
                        f"cached entries; tables -> {out}, figures -> {figures}")
            return 0
        except ValueError as exc:
            return report_error(prog, exc)
    print(f"{study.name}: the study ran without submitting work through run_scans/run_cached; nothing to list")
    return 0


def _run_study(prog, study, args, argv, out, figures, samplers, executor, jobs) -> int:
    from experiments import cache
    from experiments.executors import interrupt_on_sigterm
    from experiments.extra_studies import StudyContext
    from experiments.outputs import OutputSet
    from experiments.runner import report_error

    started, cpu0 = time.monotonic(), time.process_time()
    t0 = os.times()
    cpu_all0 = t0.user + t0.system + t0.children_user + t0.children_system
    cache_dir = out / "cache"
    with interrupt_on_sigterm():
        outset = None
        try:
            if args.no_resume:
                cache.clear(cache_dir)
            outset = OutputSet(out, figures)
            ctx = StudyContext(profile=args.profile, seed=args.seed, out=outset.stage, figures=outset.stage_figures,
                               jobs=jobs, executor=executor, scheduler=args.scheduler, resume=True,
                               samplers=samplers, cache_dir=cache_dir, progress=_say_fn())
            print(f"{study.name} ({args.profile} profile), {_workers(executor, jobs)}; cache {cache_dir}", flush=True)
            try:
                tables = study.run(ctx)
            except (ValueError, FloatingPointError) as exc:
                outset.discard()
                return report_error(prog, exc)
            except Exception as exc:  # noqa: BLE001
                if samplers is None:
                    raise
                outset.discard()
                return report_error(prog, f"the study failed with --samplers {','.join(samplers)} "
                                          f"({type(exc).__name__}: {exc}); its analysis may need samplers that were "
                                          "left out: run it without --samplers")
            # a study's cells need not report their CPU time: count this process and its (reaped) workers
            t = os.times()
            ctx.stats["cpu_seconds"] = max(ctx.stats["cpu_seconds"], t.user + t.system + t.children_user
                                           + t.children_system - cpu_all0)
            stats = [ctx.stats]
            meta = _metadata(args, argv, [], stats, executor, jobs, started, cpu0, study=study.name)
            meta["tables"] = sorted(tables) if isinstance(tables, dict) else []
            state = outset.commit(meta)
        except KeyboardInterrupt:
            if outset is not None:
                outset.discard()
            return _interrupted(cache_dir)
    n = ctx.stats.get("scans", 0) or ctx.stats.get("cells", 0)
    label = "scans" if ctx.stats.get("scans", 0) else "cells"
    _summary(out, figures, state, stats, time.monotonic() - started, n, executor, jobs, label=label)
    return 0


# ---------------------------------------------------------------------------------------------- report
def report_parser() -> Parser:
    p = Parser(prog=f"{PROG} report",
               description="Rebuild the analysis tables (exponents, verdicts, comparisons, tables.md), the figures "
                           "and the generated blocks of README.md and paper_notes.md from the tables of an earlier "
                           "run, without running a sampler. Checks first that the folder holds one run's complete "
                           "output set (its MANIFEST.json).")
    _add_profile(p)
    p.add_argument("--out", default=None, help="results folder (default: the profile's, e.g. results)")
    p.add_argument("--figures", default=None, help="figure folder (default: the profile's, or OUT/figures)")
    p.add_argument("--force", action="store_true", help="analyse a folder whose manifest is missing or does not match")
    p.add_argument("--no-notes", action="store_true", help="do not rebuild the README/paper_notes blocks")
    p.add_argument("--format", default=("png",), type=_figure_formats, metavar="FMT[,FMT]",
                   help="figure formats, from png, svg, pdf (vector); default: png")
    p.add_argument("--diagnostics", action="store_true",
                   help="also draw the per-sampler diagnostic figures (into FIGURES/diagnostics, git-ignored)")
    return p


def _figure_formats(text: str) -> tuple[str, ...]:
    formats = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in formats if f not in ("png", "svg", "pdf")]
    if not formats or bad or len(set(formats)) != len(formats):
        raise argparse.ArgumentTypeError(f"expected distinct formats from png, svg, pdf, got {text!r}")
    return formats


def report_command(argv) -> int:
    prog = f"{PROG} report"
    args = report_parser().parse_args(argv)
    from experiments.runner import report_error

    try:
        out, figures = _folders(args, None)
        from experiments.outputs import read_json, verify

        missing = [n for n in ("errors.csv", "nstar.csv") if not (out / n).is_file()]
        if missing:
            raise ValueError(f"{out} holds no main-study results ({', '.join(missing)} missing): run {PROG} first")
        problems = verify(out)
        if problems and not args.force:
            raise ValueError(f"{problems[0]}; rerun the study (cached cells make it fast) or pass --force")
        meta_path = out / "metadata.json"
        meta_text = meta_path.read_text() if meta_path.is_file() else json.dumps({"profile": args.profile}) + "\n"
        meta = read_json(meta_path) or {}
        if meta.get("study", "scaling") != "scaling":
            raise ValueError(f"{out} holds the results of study {meta['study']!r}; rerun that study instead")
    except ValueError as exc:
        return report_error(prog, exc)
    return _run_report(prog, args, out, figures, meta_text)


def _run_report(prog, args, out, figures, meta_text) -> int:
    from experiments.executors import interrupt_on_sigterm
    from experiments.outputs import OutputSet
    from experiments.runner import report_error

    started = time.monotonic()
    say = _say_fn()
    with interrupt_on_sigterm():
        outset = OutputSet(out, figures)
        try:
            for name in RUN_TABLES:
                if (out / name).is_file():
                    shutil.copyfile(out / name, outset.stage / name)
            say(f"analysis of {out}: exponents, verdicts, comparisons, tables.md")
            try:
                _write_report(outset.stage, outset.stage_figures, say, formats=args.format,
                              diagnostics=args.diagnostics)
            except (ValueError, KeyError) as exc:
                outset.discard()
                return report_error(prog, f"cannot analyse {out}: {type(exc).__name__}: {exc} (tables of an older "
                                          "layout? rerun the study)")
            state = outset.commit(meta_text)
        except KeyboardInterrupt:
            outset.discard()
            print(f"{prog}: interrupted; {out} keeps its previous set", file=sys.stderr)
            return 130
    for line in verdict_summary(out):
        print(line)
    took = _fmt_time(time.monotonic() - started)
    print(f"analysis unchanged: nothing written in {out} or {figures} ({took})" if state == "unchanged" else
          f"rebuilt tables in {out} and figures in {figures} ({took})")
    if not args.no_notes:
        committed = (ROOT / "results").resolve()
        if out.resolve() == committed:
            from analysis import notes

            code = notes.main([])
            if code != 0:
                return code
            print("rebuilt the generated blocks of README.md and paper_notes.md (python -m analysis.notes)")
        else:
            print(f"README.md and paper_notes.md not touched: their blocks come from {ROOT / 'results'} only")
    return 0


# ---------------------------------------------------------------------------------------------- cache
def cache_parser() -> Parser:
    p = Parser(prog=f"{PROG} cache",
               description="See and prune the cache of finished cells of a results folder (OUT/cache). Without an "
                           "action: a summary. --prune-unused removes the entries that no scan of the planned main "
                           "study (the profile, narrowed by the same options as a run) could read, at any draw level "
                           "(refinement only picks among those levels, so the set does not depend on results). "
                           "--older-than removes entries not read or written for that many days (works for every "
                           "study's cache).")
    p.add_argument("study", nargs="?", metavar="STUDY", help="an extra study: its cache (default: the main study's)")
    _add_profile(p)
    p.add_argument("--out", default=None, help="results folder (default: the profile's)")
    p.add_argument("--list", action="store_true", help="one line per entry: key, kind, size, last use")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--prune-unused", action="store_true", help="remove entries no planned scan could read")
    act.add_argument("--older-than", type=float, default=None, metavar="DAYS",
                     help="remove entries not used for DAYS days")
    act.add_argument("--clear", action="store_true", help="remove every entry")
    for opt in ("--samplers", "--targets", "--dims", "--eps"):
        p.add_argument(opt, default=None, help=f"with --prune-unused: the run's {opt[2:]} (as for a run)")
    p.add_argument("--metric", choices=METRICS, default="annealed")
    p.add_argument("--variants", default="theory,tuned")
    p.add_argument("--param", action="append", default=[])
    p.add_argument("--seed", type=int, default=0)
    return p


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def cache_command(argv) -> int:
    prog = f"{PROG} cache"
    args = cache_parser().parse_args(argv)
    from experiments import cache
    from experiments.runner import report_error

    try:
        if args.study is not None and args.study not in study_names():
            raise ValueError(f"unknown study {args.study!r} (one of: {', '.join(study_names())})")
        if args.out is not None and not str(args.out).strip():
            raise ValueError("--out must name a folder, got an empty string")
        from experiments.planning import PROFILE_FOLDERS

        res = PROFILE_FOLDERS[args.profile][0]
        out = Path(args.out) if args.out else Path(res + (f"/{args.study}" if args.study else ""))
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {str(out)!r} is a file, not a folder")
        root = out / "cache"
        if args.older_than is not None and not args.older_than >= 0:
            raise ValueError(f"--older-than must be a number of days >= 0, got {args.older_than}")
        keep = None
        if args.prune_unused:
            if args.study is not None:
                raise ValueError("--prune-unused needs the main study's plan; for a study's cache use --older-than "
                                 "DAYS or --clear")
            from experiments.planning import plan_scans, possible_keys

            keep = possible_keys(plan_scans(args))
    except ValueError as exc:
        return report_error(prog, exc)
    items = cache.entries(root)
    if args.list:
        now = time.time()
        for e in items:
            print(f"{e.key}  {e.kind:4s}  {_size(e.size):>9s}  last used {(now - e.mtime) / 86400:.1f} days ago")
    if keep is not None or args.older_than is not None:
        removed = cache.prune(root, keep=keep, older_than=None if args.older_than is None else args.older_than * 86400)
        why = ("that no scan of this plan could read" if keep is not None else
               f"not used for {args.older_than:g} days")
        print(f"removed {len(removed)} entries ({_size(sum(e.size for e in removed))}) {why}; "
              f"kept {len(items) - len(removed)}")
        return 0
    if args.clear:
        removed = cache.clear(root)
        print(f"removed {len(removed)} entries ({_size(sum(e.size for e in removed))}) from {root}")
        return 0
    by_kind: dict[str, list] = {}
    for e in items:
        by_kind.setdefault(e.kind, []).append(e)
    total = sum(e.size for e in items)
    detail = ", ".join(f"{len(v)} {k} ({_size(sum(e.size for e in v))})" for k, v in sorted(by_kind.items()))
    print(f"{root}: {len(items)} entries, {_size(total)}" + (f": {detail}" if detail else ""))
    return 0


# ---------------------------------------------------------------------------------------------- entry point
def main(argv=None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit status (argparse's own exits,
    e.g. ``--help`` and bad options, raise SystemExit)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "report":
            return report_command(argv[1:])
        if argv and argv[0] == "cache":
            return cache_command(argv[1:])
        if argv and not argv[0].startswith("-") and argv[0] in study_names():
            return study_command(argv[0], argv[1:])
        return main_command(argv)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def entry_point() -> None:          # console script
    sys.exit(main())


if __name__ == "__main__":
    sys.exit(main())
