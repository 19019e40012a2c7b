"""The seeds' other claims, each a study run as ``python -m experiments.scaling <study> [options]``.

Contract for a study module (one per study, in this package):

* ``STUDY = Study(name, description, run)`` at module level, where ``run(ctx: StudyContext)``
  computes the study and returns ``{table_name: pandas.DataFrame}``; ``name`` and ``description`` are
  string literals (or a module-level ``NAME = "..."``): ``--help`` reads them without importing the module;
* ``run`` writes its tables as ``ctx.out / f"{table_name}.csv"`` (with ``experiments.cache.atomic_write_text``),
  its figures into ``ctx.figures`` (PNG, looked at), and a markdown summary ``ctx.out / "tables.md"``
  generated from the tables (never typed by hand); it writes nothing else and reads nothing back from
  ``ctx.out`` (from the command line ``ctx.out`` is a staging folder that is swapped in as a whole when
  the study has finished: :mod:`experiments.outputs`);
* profiles: ``ctx.profile`` is "quick" (CI, well under a minute), "default" (a few minutes on 2 cores) or
  "full"; all randomness from ``ctx.rng(*words)``, seeds derived from the cell's parameters;
* all of its work goes through :func:`run_scans` (law-mode scans) or :func:`run_cached` (other cells):
  they cache finished cells in ``ctx.cache`` (experiments.cache.CellCache) so reruns resume, run them
  through the context's executor, report progress, and implement the common options below;
* its test file ``tests/test_study_<name>.py`` runs the quick profile in a temporary folder and asserts
  on the fitted numbers against the claims, with a negative control.

**Common options** (``python -m experiments.scaling STUDY --help``), implemented here so that study modules
need no code for them:

``--samplers A,B``  ``ctx.samplers``: :func:`run_scans` runs only the scans of these samplers (each must be
                    one the study runs, else a one-line error before any work). A study whose work goes
                    through :func:`run_cached` (cells that are not per-sampler scans) rejects the option,
                    and so does a study whose analysis needs samplers that were left out (one line naming
                    the failure). A study can take the selection into its own planning by reading
                    ``ctx.samplers`` (None: all); for cells, the one-line change is
                    ``run_cached(ctx, [it for it in items if ctx.samplers is None or it["sampler"] in
                    ctx.samplers], cell, key, selected=True)``.
``--dry-run``       ``ctx.dry_run``: the first call of :func:`run_scans` or :func:`run_cached` raises
                    :class:`PlannedWork` carrying the work it was given (nothing runs); the command line
                    lists it with an estimate (scans, laws, ~CPU seconds from
                    :func:`experiments.planning.scan_seconds`). Work a study plans only from the results
                    of that first batch cannot be listed.
``--out``, ``--figures``, ``--force``, ``--no-resume``, ``--jobs``, ``--executor``, ``--scheduler``,
``--quick``, ``--full``, ``--seed``: as for the main study.
"""

from __future__ import annotations

import ast
import importlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from experiments.cache import CellCache

#: study modules of this package, in the order ``--help`` lists them
MODULES = ("rounds", "lipschitz", "score_error", "schedules", "poisson", "logconcave", "mixtures", "reconstructed",
           "hardest")


class PlannedWork(Exception):
    """Raised instead of running work under ``--dry-run``: ``kind`` is "scans" or "cells", ``work`` the list."""

    def __init__(self, kind: str, work: list):
        super().__init__(f"{len(work)} {kind} planned")
        self.kind, self.work = kind, work


@dataclass
class StudyContext:
    profile: str
    seed: int
    out: Path
    figures: Path
    jobs: int = 1
    executor: str = "inline"
    scheduler: str | None = None
    resume: bool = True
    samplers: tuple[str, ...] | None = None     # --samplers: only these samplers' scans (None: all)
    dry_run: bool = False                        # --dry-run: raise PlannedWork at the first batch of work
    cache_dir: Path | None = None                # default: out / "cache"
    progress: Callable[[str], None] | None = None   # one line per progress report (None: quiet)
    stats: dict = field(default_factory=lambda: {"cpu_seconds": 0.0, "cache_hits": 0, "cache_writes": 0,
                                                 "corrupt": 0, "scans": 0, "cells": 0})

    def __post_init__(self):
        self.out = Path(self.out)
        self.figures = Path(self.figures)
        self.cache_dir = Path(self.cache_dir) if self.cache_dir is not None else self.out / "cache"
        if not self.dry_run:
            self.out.mkdir(parents=True, exist_ok=True)
            self.figures.mkdir(parents=True, exist_ok=True)
        self.cache = CellCache(self.cache_dir)
        if not self.resume and not self.dry_run:   # --no-resume: nothing cached before this run is read back
            for p in self.cache_dir.glob("*.json"):
                p.unlink()

    def for_worker(self) -> StudyContext:
        """A copy to send to a worker process: without the progress callback (a closure, which cannot be
        pickled). A shallow copy, not ``dataclasses.replace``, which would rerun ``__post_init__`` (and so
        clear the cache again under ``--no-resume``)."""
        import copy

        twin = copy.copy(self)
        twin.progress = None
        return twin

    def rng(self, *words) -> np.random.Generator:
        """A Generator derived from the root seed and the given words (cell parameters), not from order."""
        key = zlib.crc32(json.dumps([str(w) for w in words]).encode())
        return np.random.default_rng(np.random.SeedSequence([self.seed, key]))


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    run: Callable[[StudyContext], dict]


def studies() -> dict[str, Study]:
    """Every study, by name (imports every study module)."""
    found = {}
    for mod in MODULES:
        study = getattr(importlib.import_module(f"experiments.extra_studies.{mod}"), "STUDY", None)
        if study is not None:
            found[study.name] = study
    return found


def get_study(name: str) -> Study:
    """One study by name, importing only its module when the catalogue knows it."""
    module = {n: m for m, (n, _) in _read_catalogue().items()}.get(name)
    if module is not None:
        study = getattr(importlib.import_module(f"experiments.extra_studies.{module}"), "STUDY", None)
        if study is not None and study.name == name:
            return study
    found = studies()
    if name not in found:
        raise ValueError(f"study must be one of {sorted(found)}, got {name!r}")
    return found[name]


def _literal(node, names: dict):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _literal(node.left, names), _literal(node.right, names)
        return a + b if a is not None and b is not None else None
    return None


def _study_from_source(path: Path) -> tuple[str, str] | None:
    """``(name, description)`` of ``STUDY = Study(name, description, run)`` read from the source (no import)."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    names: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target = node.targets[0].id
            value = node.value
            if target == "STUDY" and isinstance(value, ast.Call) and len(value.args) >= 2:
                name, desc = _literal(value.args[0], names), _literal(value.args[1], names)
                if name is not None and desc is not None:
                    return name, desc
                return None
            text = _literal(value, names)
            if text is not None:
                names[target] = text
    return None


_CATALOGUE: dict[str, tuple[str, str]] | None = None


def _read_catalogue() -> dict[str, tuple[str, str]]:
    global _CATALOGUE
    if _CATALOGUE is None:
        here = Path(__file__).parent
        cat = {}
        for mod in MODULES:
            found = _study_from_source(here / f"{mod}.py")
            if found is None:       # not a literal: import the module
                study = getattr(importlib.import_module(f"experiments.extra_studies.{mod}"), "STUDY", None)
                found = (study.name, study.description) if study is not None else None
            if found is not None:
                cat[mod] = found
        _CATALOGUE = cat
    return _CATALOGUE


def catalogue() -> dict[str, str]:
    """``{study name: description}`` in the order of :data:`MODULES`, read from the sources (fast: no study
    module is imported unless its ``STUDY`` is not written with literals)."""
    return {name: desc for name, desc in _read_catalogue().values()}


def _say(ctx, line: str) -> None:
    if ctx.progress is not None:
        ctx.progress(line)


def run_cached(ctx: StudyContext, items: list[dict], cell: Callable[[dict], dict], key: Callable[[dict], str],
               *, order: Callable[[dict], float] | None = None, selected: bool = False) -> list[dict]:
    """``[cell(item) for item in items]``, each result cached under ``key(item)`` in ``ctx.cache``.

    Finished cells are read back (unless ``ctx.resume`` is off) and never recomputed; the others run
    through the context's executor, in the order given by ``order`` (smallest first; e.g. the most
    expensive cells first so that a process pool stays busy), and each is cached as soon as it is done,
    so an interrupted study loses nothing it finished.

    ``selected``: the study has applied ``ctx.samplers`` to ``items`` itself (otherwise ``--samplers`` is
    refused for cells that are not per-sampler scans)."""
    from contextlib import closing

    from experiments.executors import imap

    if ctx.samplers is not None and not selected:
        names = sorted({str(it["sampler"]) for it in items if isinstance(it, dict) and "sampler" in it})
        raise ValueError("this study does not accept --samplers: its cells are not per-sampler scans"
                         + (f" (it runs {', '.join(names)})" if names else ""))
    if ctx.dry_run:
        raise PlannedWork("cells", list(items))
    results, todo = {}, []
    for i, item in enumerate(items):
        hit = ctx.cache.get(key(item)) if ctx.resume else None
        if hit is None:
            todo.append(i)
        else:
            results[i] = hit
    if order is not None:
        todo.sort(key=lambda i: order(items[i]))
    _say(ctx, f"{len(items)} cells: {len(items) - len(todo)} cached, {len(todo)} to compute")
    step = max(1, len(todo) // 10)
    with closing(imap(cell, [items[i] for i in todo], executor=ctx.executor, jobs=ctx.jobs,
                      scheduler=ctx.scheduler)) as it:
        for n, (j, res) in enumerate(it, start=1):
            ctx.cache.put(key(items[todo[j]]), res)
            # in the cache's own form (JSON, sorted keys): a fresh result and a cached one are then the same
            # objects, so a rerun from the cache writes byte-identical tables
            results[todo[j]] = json.loads(json.dumps(res, sort_keys=True, allow_nan=True))
            if n % step == 0 or n == len(todo):
                _say(ctx, f"progress: {n}/{len(todo)} cells")
    ctx.stats["cells"] += len(items)
    ctx.stats["cache_hits"] += len(items) - len(todo)
    ctx.stats["cache_writes"] += len(todo)
    return [results[i] for i in range(len(items))]


def select_scans(ctx: StudyContext, scans: list) -> list:
    """The scans of the samplers selected by ``--samplers`` (all when none was given); a selected sampler
    that the study does not run is an error."""
    if ctx.samplers is None:
        return list(scans)
    present = list(dict.fromkeys(s.sampler for s in scans))
    missing = [s for s in ctx.samplers if s not in present]
    if missing:
        raise ValueError(f"--samplers {','.join(missing)}: this study runs {', '.join(present)}")
    return [s for s in scans if s.sampler in ctx.samplers]


def run_scans(ctx: StudyContext, scans: list):
    """Run law-mode scans (experiments.cells.Scan) through the context's executor with the on-disk law
    cache. Returns ``(errors, replicates)``: one tidy error row per (cost, d, metric) of every scan, and for
    randomized samplers one row per (cost, d, metric, replicate group) with that group left out.

    With ``--samplers`` only the selected samplers' scans run (:func:`select_scans`); with ``--dry-run``
    nothing runs (:class:`PlannedWork`)."""
    import pandas as pd

    from experiments.planning import scan_seconds
    from experiments.progress import Progress
    from experiments.runner import run_scans as _run

    scans = select_scans(ctx, scans)
    if ctx.dry_run:
        raise PlannedWork("scans", scans)
    stream = _LineStream(ctx.progress) if ctx.progress is not None else None
    with Progress([scan_seconds(s) for s in scans], stream=stream, tty=False,
                  enabled=ctx.progress is not None) as bar:
        results = _run(scans, cache_dir=ctx.cache_dir, executor=ctx.executor, jobs=ctx.jobs,
                       scheduler=ctx.scheduler, progress=bar)
    rows, reps = [], []
    for result in results:
        rows.extend(result["errors"])
        reps.extend(result["replicates"])
        st = result.get("stats", {})
        ctx.stats["cpu_seconds"] += float(st.get("cpu_seconds", 0.0))
        for k in ("cache_hits", "cache_writes", "corrupt"):
            ctx.stats[k] += int(st.get(k, 0))
    ctx.stats["scans"] += len(scans)
    return pd.DataFrame(rows), pd.DataFrame(reps)


class _LineStream:
    """A file-like object that hands each printed line to a callable."""

    def __init__(self, say):
        self.say = say

    def write(self, text):
        for line in text.splitlines():
            if line.strip():
                self.say(line)

    def flush(self):
        pass

    def isatty(self):
        return False


def analyse_scans(errors, replicates, scans: list, *, claims=None):
    """N* tables, primary exponents and verdicts of a study's scans (the main study's estimators and rule).

    Returns ``(nstar, nstar_replicates, exponents, exponent_replicates, verdicts)``."""
    from analysis.exponents import fit_exponents
    from analysis.verdicts import verdicts
    from experiments.runner import nstar_tables

    nstar, nstar_reps = nstar_tables(errors, replicates, scans)
    exps, exp_reps = fit_exponents(nstar, nstar_reps)
    if len(exps) and "draws" in nstar and "draws_max" not in exps:     # as analysis.report.analyse does
        keys = [k for k in ("study", "sampler", "variant", "target", "metric") if k in exps and k in nstar]
        exps = exps.merge(nstar.groupby(keys)["draws"].max().rename("draws_max").reset_index(), how="left")
    return nstar, nstar_reps, exps, exp_reps, verdicts(exps, nstar, claims)
