"""The unit of work of a study: a *scan* of one sampler's cost ladder on one target family.

A scan evaluates the exact output law (law mode) at each cost of its ladder once and reuses it for
every dimension it serves (only the lifting by multiplicities depends on d). A scan stops early
once every (d, eps) it serves has been met at two consecutive costs; its rows say how far it went.

Each law is cached on disk under a key of (code version, sampler, parameters, target, cost,
internal draws, seed, start), so an interrupted study resumes without recomputing a finished law.
Seeds are derived from those parameters, never from execution order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

import experiments
from experiments.cache import CellCache
from experiments.errors import law_error
from experiments.laws import GaussianColumnLaw, gaussian_law
from experiments.samplers import get as get_sampler


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus a hash of every source file of ``experiments`` (any edit changes it)."""
    root = Path(experiments.__file__).parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(p.relative_to(root).as_posix().encode())
        h.update(p.read_bytes())
    return f"{experiments.__version__}+{h.hexdigest()[:12]}"


@dataclass(frozen=True)
class Scan:
    study: str
    profile: str
    sampler: str
    variant: str                               # "theory" | "tuned"
    family: object                             # target family (picklable; has name, at(d)) shipped to workers
    params: tuple                              # sorted (name, value) pairs passed to spec.make
    costs: tuple[int, ...]
    pairs: tuple[tuple[int, float], ...]       # the (d, eps) this scan serves
    metrics: tuple[str, ...]
    n_draws: int
    root_seed: int
    start: str = "exact"
    annealed_samples: int = 20000
    code: str = ""                             # code version, fixed once by the launching process
    n_infeasible: int = 0                      # ladder costs left out: the sampler cannot run there, or no new NFE

    def __post_init__(self):
        if not self.code:
            object.__setattr__(self, "code", code_version())

    @property
    def target(self) -> str:
        return self.family.name

    @property
    def dims(self) -> tuple[int, ...]:
        return tuple(sorted({d for d, _ in self.pairs}))

    def law_id(self, cost: int) -> dict:
        return {"sampler": self.sampler, "params": list(map(list, self.params)), "target": repr(self.family),
                "cost": int(cost), "n_draws": self.n_draws, "seed": self.root_seed, "start": self.start}

    def seed_sequence(self, cost: int) -> np.random.SeedSequence:
        words = json.dumps(self.law_id(cost), sort_keys=True).encode()
        return np.random.SeedSequence([self.root_seed, zlib.crc32(words), int(cost)])

    def cache_key(self, cost: int) -> str:
        ident = dict(self.law_id(cost), code=self.code, dims=list(self.dims), metrics=list(self.metrics),
                     annealed_samples=self.annealed_samples)
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def lifted(law: GaussianColumnLaw, multiplicities) -> GaussianColumnLaw:
    return dataclasses.replace(law, multiplicities=np.asarray(multiplicities, dtype=np.int64))


def evaluate_cost(scan: Scan, cost: int) -> dict:
    """Law at one cost and its errors at every dimension and metric of the scan."""
    spec = get_sampler(scan.sampler)
    family = scan.family
    law_seq, metric_seq = scan.seed_sequence(cost).spawn(2)
    kernel = spec.make(cost, **dict(scan.params))
    law = gaussian_law(kernel, family.at(max(scan.dims)), n_draws=scan.n_draws,
                       rng=np.random.default_rng(law_seq), start=scan.start)
    rows = []
    for d, d_seq in zip(scan.dims, metric_seq.spawn(len(scan.dims))):
        law_d = lifted(law, family.at(d).multiplicities)
        for metric, m_seq in zip(scan.metrics, d_seq.spawn(len(scan.metrics))):
            value, se = law_error(law_d, metric, rng=np.random.default_rng(m_seq), n_samples=scan.annealed_samples)
            rows.append({"d": int(d), "metric": metric, "error": float(value), "error_se": float(se)})
    return {"nfe": float(np.mean(law.nfe)), "rounds": float(np.mean(law.rounds)), "errors": rows}


def run_scan(scan: Scan, cache_dir: str | None = None) -> list[dict]:
    """Evaluate the ladder (resuming from the cache) and return tidy error rows."""
    cache = CellCache(cache_dir) if cache_dir is not None else None
    target_eps = {d: min(e for dd, e in scan.pairs if dd == d) for d in scan.dims}
    rows, met_before = [], False
    for cost in scan.costs:
        key = scan.cache_key(cost)
        result = cache.get(key) if cache is not None else None
        if result is None:
            result = evaluate_cost(scan, cost)
            if cache is not None:
                cache.put(key, result)
        for r in result["errors"]:
            rows.append({
                "study": scan.study, "sampler": scan.sampler, "variant": scan.variant, "target": scan.target,
                "metric": r["metric"], "d": r["d"], "cost": int(cost), "nfe": result["nfe"],
                "rounds": result["rounds"], "error": r["error"], "error_se": r["error_se"],
                "n_draws": scan.n_draws, "seed": scan.root_seed, "start": scan.start,
                "code_version": scan.code, "profile": scan.profile,
                "params": json.dumps(dict(scan.params), sort_keys=True),
            })
        met = all(r["error"] <= target_eps[r["d"]] for r in result["errors"])
        if met and met_before:
            break
        met_before = met
    return rows
