r"""The unit of work of a study: a *scan* of one sampler's cost ladder on one target family.

A scan evaluates the exact output law (law mode) at each cost of its ladder once and reuses it for
every dimension it serves (only the lifting by multiplicities depends on d). A scan stops early once
every (d, eps) it serves has been met at two consecutive costs; its rows say how far it went.

**Randomized samplers: draws that adapt to the precision a cell needs.** A randomized sampler's law is
a mixture over internal draws, made in replicate groups of Latin hypercubes
(:mod:`experiments.internal`), and every error carries its jackknife standard error over the groups
and the values of two independent halves (:mod:`experiments.replicates`). The ladder is first
evaluated with ``n_draws`` draws per law. Then the cells that *decide* an N* (for each served
(d, eps): the last cost whose error exceeds eps and the next one, plus every cost whose error lies
within two standard errors of eps) must pass :func:`gate` at the scan's ``precision``; a cell that
does not is recomputed with more draws (at least twice as many, more when its standard error says so;
a fresh Latin hypercube per group at each level, so that every group stays one stratified design), up
to ``max_draws``. A deciding cell that still
fails at the cap is flagged ``unresolved``: the N* it decides is excluded from the fits and counted.

=====================  ===========================================================================
``gate`` status        meaning
=====================  ===========================================================================
``exact``              one law (deterministic sampler): no sampling error
``resolved``           relative jackknife s.e. <= precision, independent halves agree within
                       4 x precision in log, and the full-draw value lies within 2 x precision
                       (in log) of the halves' mean (no detectable draw-count bias)
``unresolved``         a deciding cell that fails the gate at ``max_draws``
``not deciding``       a cell that decides no N*; reported, not refined
=====================  ===========================================================================

**Caching.** Law blocks are cached on disk under a key of what determines their numbers: the source
of the sampler's module and of the shared numerical modules it runs on (not of unrelated files), the
sampler, its parameters, the target family, the cost, the block, the seed and the start; errors under
the law key plus d, metric and Monte Carlo size. Neither depends on the list of dimensions of the run
(unless the family's column law depends on d), so adding a dimension recomputes nothing but the new
dimension's errors. Seeds of internal draws come from the sampler, target and cost (never from
execution order, and not from the sampler's other parameters: variants compared at one cost share
their internal draws, :func:`experiments.internal.block_seed`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import time
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

import numpy as np

import experiments
from experiments import _validate as v
from experiments.cache import CellCache
from experiments.internal import REPLICATE_GROUPS, LatinHypercube, block_seed
from experiments.laws import GaussianColumnLaw, gaussian_law
from experiments.replicates import ReplicatedError, replicated_error
from experiments.samplers import get as get_sampler

#: modules whose source determines a law (besides the sampler's own module)
LAW_MODULES = ("laws.py", "noise.py", "targets.py", "processes.py", "internal.py", "_validate.py", "score_error.py",
               "samplers/_api.py", "samplers/driver.py", "samplers/_grid.py")
#: modules whose source determines an error computed from a law
ERROR_MODULES = ("distances.py", "replicates.py")
#: gate thresholds in units of the precision (see the module docstring)
HALVES_TOLERANCE = 4.0
BIAS_TOLERANCE = 2.0


def _hash_files(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus a hash of every source file of ``experiments`` (recorded in the run's metadata)."""
    root = Path(experiments.__file__).parent
    return f"{experiments.__version__}+{_hash_files(sorted(root.rglob('*.py')))}"


@cache
def law_code(sampler: str) -> str:
    """Hash of the source that determines a law of ``sampler``: its module and the shared numerical modules."""
    root = Path(experiments.__file__).parent
    spec = get_sampler(sampler)
    own = inspect.getsourcefile(inspect.getmodule(spec.make) or spec.make)
    return _hash_files([own] + [root / m for m in LAW_MODULES])


@lru_cache(maxsize=1)
def error_code() -> str:
    root = Path(experiments.__file__).parent
    return _hash_files([root / m for m in ERROR_MODULES])


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
    n_draws: int                               # draws of the first block (randomized: a multiple of the groups)
    root_seed: int
    start: str = "exact"
    annealed_samples: int = 20000
    max_draws: int = 0                         # most draws per law (0: n_draws, no refinement)
    precision: float = 0.05                    # relative precision a deciding cell must reach
    code: str = ""                             # code version, fixed once by the launching process
    n_infeasible: int = 0                      # ladder costs left out: the sampler cannot run there, or no new NFE

    def __post_init__(self):
        if not self.code:
            object.__setattr__(self, "code", code_version())
        randomized = get_sampler(self.sampler).randomized
        n = v.positive_int("n_draws", self.n_draws)
        if not randomized and n != 1:
            raise ValueError(f"n_draws must be 1 for the deterministic sampler {self.sampler!r}, got {n}")
        if randomized and n % REPLICATE_GROUPS:
            raise ValueError(f"n_draws must be a multiple of the {REPLICATE_GROUPS} replicate groups for the "
                             f"randomized sampler {self.sampler!r}, got {n}")
        cap = self.max_draws or n
        if cap < n:
            raise ValueError(f"max_draws must be >= n_draws ({n}), got {cap}")
        v.in_open_interval("precision", self.precision, 0.0, 1.0)

    @property
    def randomized(self) -> bool:
        return self.n_draws > 1

    @property
    def target(self) -> str:
        return self.family.name

    @property
    def dims(self) -> tuple[int, ...]:
        return tuple(sorted({d for d, _ in self.pairs}))

    @property
    def cap(self) -> int:
        return max(self.max_draws, self.n_draws)

    @property
    def law_dim(self) -> int:
        """The dimension at which the column law is computed (any d gives the same column law unless the
        family says otherwise)."""
        return max(self.dims)

    def law_id(self, cost: int) -> dict:
        ident = {"sampler": self.sampler, "params": list(map(list, self.params)), "target": repr(self.family),
                 "cost": int(cost), "seed": self.root_seed, "start": self.start, "code": law_code(self.sampler)}
        if not getattr(self.family, "d_independent", False):
            ident["d"] = self.law_dim
        return ident

    def draw_identity(self, cost: int) -> dict:
        """Words of the internal draws' seed: not the sampler's parameters (common random numbers)."""
        return {"sampler": self.sampler, "target": repr(self.family), "cost": int(cost), "start": self.start}

    def law_key(self, cost: int, draws: int) -> str:
        ident = dict(self.law_id(cost), draws=draws, first=self.n_draws,
                     groups=REPLICATE_GROUPS if self.randomized else 1)
        return "law-" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]

    def error_key(self, cost: int, draws: int, d: int, metric: str) -> str:
        ident = dict(self.law_id(cost), draws=draws, first=self.n_draws, d=int(d), metric=metric,
                     samples=self.annealed_samples, code_errors=error_code(),
                     groups=REPLICATE_GROUPS if self.randomized else 1)
        return "err-" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:32]


def lifted(law: GaussianColumnLaw, multiplicities) -> GaussianColumnLaw:
    return dataclasses.replace(law, multiplicities=np.asarray(multiplicities, dtype=np.int64))


def draw_levels(scan: Scan) -> list[int]:
    """The draw counts a law can have: ``n_draws, 2 n_draws, 4 n_draws, ...`` up to the cap (1 when deterministic)."""
    if not scan.randomized:
        return [1]
    levels = [scan.n_draws]
    while levels[-1] < scan.cap:
        levels.append(min(2 * levels[-1], scan.cap))
    return levels


def next_level(scan: Scan, draws: int, relative_se: float) -> int:
    """The draw count to try after ``draws`` failed the gate with a relative standard error ``relative_se``: the
    smallest level that would reach the precision if the variance fell like 1/M (Monte Carlo; a Latin
    hypercube falls faster), at least the next level, at most the cap."""
    levels = draw_levels(scan)
    want = draws * (relative_se / scan.precision) ** 2 if np.isfinite(relative_se) else 2 * draws
    bigger = [m for m in levels if m > draws]
    if not bigger:
        return draws
    return next((m for m in bigger if m >= want), bigger[-1])


def compute_law(scan: Scan, cost: int, draws: int) -> dict:
    """The law at ``cost`` with ``draws`` internal draws (one Latin hypercube of draws/R per group, seeded by the
    draw count: a larger level is a fresh design, not an extension, so each group stays one stratified set)."""
    spec = get_sampler(scan.sampler)
    kernel = spec.make(cost, **dict(scan.params))
    target = scan.family.at(scan.law_dim)
    if scan.randomized:
        level = int(round(math.log2(draws / scan.n_draws)))
        source = LatinHypercube(np.random.default_rng(block_seed(scan.root_seed, scan.draw_identity(cost), level)))
        law = gaussian_law(kernel, target, n_draws=draws, rng=source, start=scan.start)
    else:
        law = gaussian_law(kernel, target, n_draws=1, rng=np.random.default_rng(0), start=scan.start)
    return {"mean": law.mean.tolist(), "var": law.var.tolist(), "nfe": law.nfe.tolist(),
            "rounds": law.rounds.tolist(), "target_mean": np.asarray(law.target_mean).tolist(),
            "target_var": np.asarray(law.target_var).tolist(), "t_end": law.t_end, "sampler": law.sampler,
            "start": law.start}


def _valid_law(payload, n_rows) -> bool:
    try:
        mean, var = np.asarray(payload["mean"], float), np.asarray(payload["var"], float)
        return (mean.shape[0] == n_rows and mean.shape == var.shape and len(payload["nfe"]) == n_rows
                and len(payload["rounds"]) == n_rows and bool(np.all(var > 0)) and bool(np.all(np.isfinite(mean))))
    except (KeyError, TypeError, ValueError):
        return False


class LawStore:
    """The current law (draw level) of every cost of one scan, computed or read from the cache."""

    def __init__(self, scan: Scan, cache: CellCache | None):
        self.scan, self.cache = scan, cache
        self.payloads: dict[int, dict] = {}

    def n_draws(self, cost: int) -> int:
        return len(self.payloads[cost]["nfe"]) if cost in self.payloads else 0

    def load(self, cost: int, draws: int) -> None:
        """Make the law at ``cost`` the one with ``draws`` internal draws."""
        key = self.scan.law_key(cost, draws)
        payload = self.cache.get(key) if self.cache is not None else None
        if payload is not None and not _valid_law(payload, draws):
            self.cache.report_malformed(key)
            payload = None
        if payload is None:
            payload = compute_law(self.scan, cost, draws)
            if self.cache is not None:
                self.cache.put(key, payload)
        self.payloads[cost] = payload

    def law(self, cost: int) -> tuple[GaussianColumnLaw, np.ndarray | None]:
        p = self.payloads[cost]
        law = GaussianColumnLaw(
            mean=np.asarray(p["mean"], float), var=np.asarray(p["var"], float),
            target_mean=np.asarray(p["target_mean"], float), target_var=np.asarray(p["target_var"], float),
            multiplicities=np.ones(len(p["target_mean"]), dtype=np.int64), t_end=float(p["t_end"]),
            nfe=np.asarray(p["nfe"], float), rounds=np.asarray(p["rounds"], float), sampler=p["sampler"],
            start=p["start"])
        draws = len(p["nfe"])
        group = np.repeat(np.arange(REPLICATE_GROUPS), draws // REPLICATE_GROUPS) if self.scan.randomized else None
        return law, group


def _error_payload(err: ReplicatedError) -> dict:
    return {"value": err.value, "se": err.se, "loo": np.asarray(err.loo).tolist(), "halves": list(err.halves),
            "n_draws": err.n_draws, "bound": err.bound, "method": err.method}


def _error_from_payload(p: dict) -> ReplicatedError:
    return ReplicatedError(float(p["value"]), float(p["se"]), np.asarray(p["loo"], float),
                           (float(p["halves"][0]), float(p["halves"][1])), int(p["n_draws"]), float(p["bound"]),
                           str(p["method"]))


def _valid_error(p, randomized: bool) -> bool:
    try:
        err = _error_from_payload(p)
    except (KeyError, TypeError, ValueError, IndexError):
        return False
    # a non-finite value is a legitimate result (a diverged law), not a corrupt entry: check the shape only
    return err.loo.size == REPLICATE_GROUPS if randomized else err.loo.size == 0


def evaluate(scan: Scan, store: LawStore, cost: int, cache: CellCache | None) -> dict:
    """Errors at every (d, metric) of the scan from the law's current draws: ``{(d, metric): ReplicatedError}``."""
    law = group = None
    out = {}
    nb = store.n_draws(cost)
    for d in scan.dims:
        for metric in scan.metrics:
            key = scan.error_key(cost, nb, d, metric)
            payload = cache.get(key) if cache is not None else None
            if payload is not None and not _valid_error(payload, scan.randomized):
                cache.report_malformed(key)
                payload = None
            if payload is None:
                if law is None:
                    law, group = store.law(cost)
                words = json.dumps(dict(scan.draw_identity(cost), d=int(d), metric=metric, draws=nb)).encode()
                seq = np.random.SeedSequence([scan.root_seed, int(hashlib.sha256(words).hexdigest()[:8], 16)])
                err = replicated_error(lifted(law, scan.family.at(d).multiplicities), metric, group=group,
                                       rng=np.random.default_rng(seq), n_samples=scan.annealed_samples)
                payload = _error_payload(err)
                if cache is not None:
                    cache.put(key, payload)
            out[(d, metric)] = _error_from_payload(payload)
    return out


def gate(err: ReplicatedError, precision: float) -> bool:
    """Whether a randomized cell's error is resolved at ``precision`` (see the module docstring)."""
    if err.n_draws == 1:
        return True
    a, b = err.halves
    if not (err.value > 0 and a > 0 and b > 0 and np.isfinite(err.se)):
        return False
    if err.se / err.value > precision:
        return False
    if abs(math.log(a) - math.log(b)) > HALVES_TOLERANCE * precision:
        return False
    return abs(math.log(err.value) - 0.5 * (math.log(a) + math.log(b))) <= BIAS_TOLERANCE * precision


def deciding(values, ses, eps_list) -> set[int]:
    """Indices of the ladder cells that decide an N*: for each eps, the last cell above it and the next one,
    and every cell whose error is within two standard errors of eps."""
    values, ses = np.asarray(values, float), np.asarray(ses, float)
    out = set()
    for eps in eps_list:
        above = np.flatnonzero(values > eps)
        if above.size and above[-1] < values.size - 1:
            out.update((int(above[-1]), int(above[-1]) + 1))
        out.update(int(j) for j in np.flatnonzero(np.abs(values - eps) <= 2 * ses))
    return out


def _served_eps(scan: Scan) -> dict[int, list[float]]:
    return {d: sorted(e for dd, e in scan.pairs if dd == d) for d in scan.dims}


def run_scan(scan: Scan, cache_dir: str | None = None) -> dict:
    """Evaluate the ladder (resuming from the cache), refine deciding cells, return tidy rows.

    Returns ``{"errors": [...], "replicates": [...]}``: one error row per (cost, d, metric), and for
    randomized samplers one row per (cost, d, metric, group) with the value leaving that group out."""
    started = time.process_time()
    cache = CellCache(cache_dir) if cache_dir is not None else None
    store = LawStore(scan, cache)
    served = _served_eps(scan)
    evals: dict[int, dict] = {}
    costs = list(scan.costs)
    n_done = 0

    def met(cost):
        return all(evals[cost][(d, m)].value <= min(served[d]) for d in scan.dims for m in scan.metrics)

    while True:
        # pass 1: extend the ladder until every (d, eps) is met at two consecutive costs (or the ladder ends)
        while n_done < len(costs):
            if n_done >= 2 and met(costs[n_done - 1]) and met(costs[n_done - 2]):
                break
            cost = costs[n_done]
            store.load(cost, scan.n_draws)
            evals[cost] = evaluate(scan, store, cost, cache)
            n_done += 1
        if not scan.randomized:
            break
        # pass 2: refine the cells that decide an N* until they pass the gate or reach the cap
        done_costs = costs[:n_done]
        todo: dict[int, int] = {}
        for d in scan.dims:
            for metric in scan.metrics:
                errs = [evals[c][(d, metric)] for c in done_costs]
                for j in deciding([e.value for e in errs], [e.se for e in errs], served[d]):
                    cost, err = done_costs[j], errs[j]
                    if not gate(err, scan.precision) and store.n_draws(cost) < scan.cap:
                        todo[cost] = max(todo.get(cost, 0), next_level(scan, store.n_draws(cost), err.relative_se))
        if not todo:
            # refinement can move a curve: extend the ladder again if the stop rule no longer holds
            if n_done < len(costs) and not (n_done >= 2 and met(costs[n_done - 1]) and met(costs[n_done - 2])):
                continue
            break
        for cost, draws in sorted(todo.items()):
            store.load(cost, draws)
            evals[cost] = evaluate(scan, store, cost, cache)
    out = _rows(scan, store, evals, costs[:n_done], served)
    out["stats"] = {"cpu_seconds": time.process_time() - started, "cache_hits": cache.hits if cache else 0,
                    "cache_writes": cache.writes if cache else 0, "corrupt": len(cache.corrupt) if cache else 0,
                    "laws": sum(1 for _ in store.payloads), "max_draws": max(map(store.n_draws, store.payloads))}
    return out


def _rows(scan, store, evals, done_costs, served) -> dict:
    deciding_cells = {}
    for d in scan.dims:
        for metric in scan.metrics:
            errs = [evals[c][(d, metric)] for c in done_costs]
            deciding_cells[(d, metric)] = deciding([e.value for e in errs], [e.se for e in errs], served[d])
    rows, reps = [], []
    common = {"study": scan.study, "sampler": scan.sampler, "variant": scan.variant, "target": scan.target}
    params = json.dumps(dict(scan.params), sort_keys=True)
    for j, cost in enumerate(done_costs):
        law, _ = store.law(cost)
        for (d, metric), err in evals[cost].items():
            if not scan.randomized:
                status = "exact"
            elif j not in deciding_cells[(d, metric)]:
                status = "not deciding"
            else:
                status = "resolved" if gate(err, scan.precision) else "unresolved"
            rows.append({
                **common, "metric": metric, "d": int(d), "cost": int(cost), "nfe": float(np.mean(law.nfe)),
                "rounds": float(np.mean(law.rounds)), "error": err.value, "error_se": err.se,
                "error_half_a": err.halves[0], "error_half_b": err.halves[1], "error_bound": err.bound,
                "draws": err.n_draws, "gate": status, "seed": scan.root_seed, "start": scan.start,
                "profile": scan.profile, "params": params,
            })
            for g, value in enumerate(err.loo):
                reps.append({**common, "metric": metric, "d": int(d), "cost": int(cost), "params": params,
                             "group": g, "error": float(value)})
    return {"errors": rows, "replicates": reps}
