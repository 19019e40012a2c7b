"""The seeds' other claims, each a study run as ``python -m experiments.scaling <study> [options]``.

Contract for a study module (one per study, in this package):

* ``STUDY = Study(name, description, run)`` at module level, where ``run(ctx: StudyContext)``
  computes the study and returns ``{table_name: pandas.DataFrame}``;
* ``run`` writes its tables as ``ctx.out / f"{table_name}.csv"`` (with ``experiments.cache.atomic_write_text``),
  its figures into ``ctx.figures`` (PNG, looked at), and a markdown summary ``ctx.out / "tables.md"``
  generated from the tables (never typed by hand);
* profiles: ``ctx.profile`` is "quick" (CI, well under a minute), "default" (a few minutes on 2 cores) or
  "full"; all randomness from ``ctx.rng(*words)``, seeds derived from the cell's parameters;
* long loops cache finished cells in ``ctx.cache`` (experiments.cache.CellCache) so reruns resume;
* its test file ``tests/test_study_<name>.py`` runs the quick profile in a temporary folder and asserts
  on the fitted numbers against the claims, with a negative control.
"""

from __future__ import annotations

import importlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.cache import CellCache
from experiments.cells import run_scan
from experiments.executors import imap

#: study modules of this package, in the order ``--help`` lists them
MODULES = ("rounds", "lipschitz", "score_error", "schedules", "poisson", "logconcave", "mixtures", "reconstructed",
           "hardest")


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

    def __post_init__(self):
        self.out = Path(self.out)
        self.figures = Path(self.figures)
        self.out.mkdir(parents=True, exist_ok=True)
        self.figures.mkdir(parents=True, exist_ok=True)
        self.cache = CellCache(self.out / "cache")
        if not self.resume:   # --no-resume: nothing cached before this run is read back
            for p in (self.out / "cache").glob("*.json"):
                p.unlink()

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
    found = {}
    for mod in MODULES:
        study = getattr(importlib.import_module(f"experiments.extra_studies.{mod}"), "STUDY", None)
        if study is not None:
            found[study.name] = study
    return found


def run_cached(ctx: StudyContext, items: list[dict], cell: Callable[[dict], dict], key: Callable[[dict], str],
               *, order: Callable[[dict], float] | None = None) -> list[dict]:
    """``[cell(item) for item in items]``, each result cached under ``key(item)`` in ``ctx.cache``.

    Finished cells are read back (unless ``ctx.resume`` is off) and never recomputed; the others run
    through the context's executor, in the order given by ``order`` (smallest first; e.g. the most
    expensive cells first so that a process pool stays busy), and each is cached as soon as it is done,
    so an interrupted study loses nothing it finished."""
    results, todo = {}, []
    for i, item in enumerate(items):
        hit = ctx.cache.get(key(item)) if ctx.resume else None
        if hit is None:
            todo.append(i)
        else:
            results[i] = hit
    if order is not None:
        todo.sort(key=lambda i: order(items[i]))
    for j, res in imap(cell, [items[i] for i in todo], executor=ctx.executor, jobs=ctx.jobs,
                       scheduler=ctx.scheduler):
        results[todo[j]] = res
        ctx.cache.put(key(items[todo[j]]), res)
    return [results[i] for i in range(len(items))]


def run_scans(ctx: StudyContext, scans: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run law-mode scans (experiments.cells.Scan) through the context's executor with the on-disk law
    cache. Returns ``(errors, replicates)``: one tidy error row per (cost, d, metric) of every scan, and for
    randomized samplers one row per (cost, d, metric, replicate group) with that group left out."""

    rows, reps = [], []
    for _, result in imap(partial(run_scan, cache_dir=str(ctx.out / "cache")), scans,
                          executor=ctx.executor, jobs=ctx.jobs, scheduler=ctx.scheduler):
        rows.extend(result["errors"])
        reps.extend(result["replicates"])
    return pd.DataFrame(rows), pd.DataFrame(reps)


def analyse_scans(errors: pd.DataFrame, replicates: pd.DataFrame, scans: list, *, claims=None):
    """N* tables, primary exponents and verdicts of a study's scans (the main study's estimators and rule).

    Returns ``(nstar, nstar_replicates, exponents, exponent_replicates, verdicts)``."""
    from analysis.exponents import fit_exponents
    from analysis.verdicts import verdicts
    from experiments.complexity import nstar_table

    nstar, nstar_reps = nstar_table(errors, replicates, scans)
    exps, exp_reps = fit_exponents(nstar, nstar_reps)
    return nstar, nstar_reps, exps, exp_reps, verdicts(exps, nstar, claims)
