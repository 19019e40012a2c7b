"""From a profile (experiments/studies.py) and the command-line options to a list of scans.

Everything a run needs is checked here, before any work, and every problem is a ``ValueError`` naming the
option and the accepted range (the command line prints it as one line and exits with status 2):

=================  ==============================================================================
option             accepted
=================  ==============================================================================
``--dims``         integers 1 <= d <= :data:`MAX_DIM` (``1e3`` is read as 1000), no repeats; each
                   target needs at least as many coordinates as it has groups. The exact distances
                   are tested up to d = 1e9; beyond 1e12 the multiplicities lose integer precision
                   in the distances' float arithmetic
``--eps``          0 < eps < 1, no repeats; with theory presets eps >= :data:`THEORY_EPS_MIN` (the
                   presets use eps^2 and log(d/eps^2), which underflow or overflow below)
``--seed``         0 <= seed <= 2^63 - 1
``--samplers``     registered names (``--help`` lists them), no repeats
``--targets``      registered target families, no repeats
``--param``        ``NAME=VALUE`` or ``SAMPLER.NAME=VALUE``, NAME a keyword of the sampler's ``make``
                   (or a key of its registered defaults), VALUE read with the type of the default;
                   the sampler's ``make`` must accept it at some cost of the ladder
=================  ==============================================================================

**Cost model** (:func:`scan_seconds`, used by ``--dry-run`` and to weight the progress bar): a law costs
about ``nfe x (LAW_STEP + LAW_STEP_DRAW x draws)`` CPU seconds, an error about
``ERR_CELL + ERR_DRAW x draws x annealed_samples / 4000`` per (dimension, metric); constants measured on
one core of the development machine (ddpm, dpm_solver_2, li_jiao, gupta_cai_chen, ddram at 64-4096 NFE and
32-128 draws; within a factor 2). A scan is counted over its whole ladder at its first draw level: early
stops make it cheaper, refinement of randomized cells dearer.
"""

from __future__ import annotations

import inspect
import math
from collections import defaultdict

import numpy as np

METRIC_CHOICES = {"annealed": ("tv_annealed",), "quenched": ("tv_quenched",), "both": ("tv_annealed", "tv_quenched")}
VARIANTS = ("theory", "tuned")
#: largest dimension accepted on the command line
MAX_DIM = 10**12
#: largest root seed
MAX_SEED = 2**63 - 1
#: smallest eps with theory presets (eps^2 must stay a normal float)
THEORY_EPS_MIN = 1e-100
#: cost model (CPU seconds; see the module docstring)
LAW_STEP, LAW_STEP_DRAW, ERR_CELL, ERR_DRAW = 6e-5, 1.6e-6, 0.025, 6e-4
#: where each profile writes its tables and figures by default (relative to the working directory)
PROFILE_FOLDERS = {"default": ("results", "figures"), "quick": ("results/quick", "figures/quick"),
                   "full": ("results/full", "figures/full")}


def split_names(text: str | None, name: str) -> tuple[str, ...] | None:
    """Comma-separated words (None when the option was not given); empty lists and repeats are errors."""
    if text is None:
        return None
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise ValueError(f"{name} must list at least one value, got {text!r}")
    seen = set()
    for s in items:
        if s in seen:
            raise ValueError(f"{name} lists {s!r} twice")
        seen.add(s)
    return tuple(items)


def parse_dim(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        try:
            x = float(text)
        except ValueError:
            raise ValueError(f"--dims: cannot read {text!r} as an integer") from None
        if not (math.isfinite(x) and x.is_integer()):
            raise ValueError(f"--dims must be integers between 1 and 10^12, got {text!r}") from None
        if abs(x) > MAX_DIM:
            raise ValueError(f"--dims must be at most 10^12 (the exact distances are tested to d = 1e9), "
                             f"got {text}") from None
        value = int(x)
    if not 1 <= value <= MAX_DIM:
        raise ValueError(f"--dims must be integers between 1 and 10^12 (the exact distances are tested to "
                         f"d = 1e9), got {text}")
    return value


def parse_dims(text: str | None) -> tuple[int, ...] | None:
    items = split_names(text, "--dims")
    if items is None:
        return None
    dims = tuple(parse_dim(s) for s in items)
    _no_repeats(dims, "--dims")
    return dims


def parse_eps(text: str | None) -> tuple[float, ...] | None:
    items = split_names(text, "--eps")
    if items is None:
        return None
    out = []
    for s in items:
        try:
            e = float(s)
        except ValueError:
            raise ValueError(f"--eps: cannot read {s!r} as a number") from None
        if not (math.isfinite(e) and 0.0 < e < 1.0):
            raise ValueError(f"--eps must lie in (0, 1), got {s}")
        out.append(e)
    _no_repeats(out, "--eps")
    return tuple(out)


def _no_repeats(values, name):
    seen = set()
    for x in values:
        if x in seen:
            raise ValueError(f"{name} lists {x:g} twice")
        seen.add(x)


def check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"--seed must be an integer in [0, 2^63 - 1], got {seed!r}")
    return seed


def sampler_parameters(spec) -> dict:
    """The parameters a sampler's ``make`` accepts, with their defaults: the keyword arguments of ``make``
    that have a default, and the keys of the registered ``defaults`` (for ``make(cost, **kw)``)."""
    params = {}
    try:
        sig = inspect.signature(spec.make)
    except (TypeError, ValueError):
        sig = None
    if sig is not None:
        for p in list(sig.parameters.values())[1:]:
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty:
                params[p.name] = p.default
    params.update(spec.defaults or {})
    return params


def _typed(raw: str, default, where: str):
    if isinstance(default, bool):
        low = raw.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(f"--param {where}: expected true or false, got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            try:
                x = float(raw)
            except ValueError:
                x = math.nan
            if math.isfinite(x) and x.is_integer():
                return int(x)
            raise ValueError(f"--param {where}: expected an integer, got {raw!r}") from None
    if isinstance(default, float) or default is None:
        try:
            x = float(raw)
        except ValueError:
            if default is None:
                return raw
            raise ValueError(f"--param {where}: expected a number, got {raw!r}") from None
        if not math.isfinite(x):
            raise ValueError(f"--param {where}: expected a finite number, got {raw!r}")
        return int(x) if default is None and raw.strip().lstrip("+-").isdigit() else x
    return raw


def parse_params(items, samplers) -> dict[str, dict]:
    """``--param`` values per sampler: ``{sampler: {name: typed value}}`` (see the module docstring)."""
    from experiments.samplers import get as get_sampler

    out: dict[str, dict] = defaultdict(dict)
    for item in items or ():
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name or not raw.strip():
            raise ValueError(f"--param must look like NAME=VALUE or SAMPLER.NAME=VALUE, got {item!r}")
        target, dot, pname = name.rpartition(".")
        names = (target,) if dot else tuple(samplers)
        if dot and target not in samplers:
            raise ValueError(f"--param {item}: sampler {target!r} is not in this run ({', '.join(samplers)})")
        hit = False
        for s in names:
            known = sampler_parameters(get_sampler(s))
            if pname not in known:
                if dot:
                    raise ValueError(f"--param {item}: {s} has no parameter {pname!r} (it has: "
                                     f"{', '.join(sorted(known)) or 'none'})")
                continue
            if pname in out[s]:
                raise ValueError(f"--param sets {s}.{pname} twice")
            out[s][pname] = _typed(raw.strip(), known[pname], f"{s}.{pname}")
            hit = True
        if not hit:
            raise ValueError(f"--param {item}: no sampler of this run ({', '.join(samplers)}) has a parameter "
                             f"{pname!r}")
    return dict(out)


def _plain(x):
    """numpy scalars as Python numbers, so that parameters serialise and hash the same way."""
    return x.item() if isinstance(x, np.generic) else x


def feasible(spec, costs, params) -> tuple[int, ...]:
    """The ladder costs that are distinct measurements: the sampler can be built there with these
    parameters (e.g. a GCC budget must cover its windows), and its documented NFE strictly exceeds that
    of every smaller kept cost (several knob values can map to one NFE: Li & Jiao round T up to a
    multiple of K, Gupta-Cai-Chen round the budget split). The others are left out of the ladder, and
    counted, so that N* is searched over strictly increasing NFE."""
    ok, last = [], -np.inf
    for c in costs:
        try:
            spec.make(c, **dict(params))
        except ValueError:
            continue
        n = float(spec.nfe(c, **dict(params)))
        if n > last:
            ok.append(int(c))
            last = n
    return tuple(ok)


def _first_rejection(spec, costs, params) -> str:
    for c in costs:
        try:
            spec.make(c, **dict(params))
        except ValueError as exc:
            return str(exc)
        except TypeError as exc:
            return str(exc)
    return "no cost of the ladder is feasible"


def plan_scans(args) -> list:
    """The scans of the main study for the options ``args`` (an argparse namespace; see the module docstring
    for what is checked)."""
    from experiments.cells import Scan
    from experiments.complexity import cost_ladder
    from experiments.samplers import get as get_sampler
    from experiments.samplers._grid import DEFAULT_DELTA
    from experiments.studies import SamplerRun, get_profile, get_target

    profile = get_profile(args.profile)
    dims = parse_dims(args.dims) or profile.dims
    eps = parse_eps(args.eps) or profile.eps
    targets = split_names(args.targets, "--targets") or profile.targets
    families = [get_target(t) for t in targets]
    for fam in families:
        for d in dims:
            try:
                fam.at(d)                               # e.g. d smaller than the family's number of groups
            except ValueError as exc:
                raise ValueError(f"--dims {d}: {exc}") from None
    runs = profile.runs
    if args.samplers is not None:
        wanted = split_names(args.samplers, "--samplers")
        for name in wanted:
            get_sampler(name)
        known = {r.sampler: r for r in runs}
        runs = tuple(known.get(n, SamplerRun(n, (4, 1024))) for n in wanted)
    variants = split_names(args.variants, "--variants")
    for var in variants:
        if var not in VARIANTS:
            raise ValueError(f"--variants must be 'theory' and/or 'tuned', got {var!r}")
    user = parse_params(getattr(args, "param", None), [r.sampler for r in runs])
    if user and "tuned" not in variants:
        raise ValueError("--param sets parameters of the tuned variant; add --variants tuned")
    seed = check_seed(args.seed)
    metric = METRIC_CHOICES[args.metric]
    t_dims = dims if (args.dims or profile.theory_dims is None) else profile.theory_dims
    t_eps = eps if (args.eps or profile.theory_eps is None) else profile.theory_eps
    if "theory" in variants and min(t_eps) < THEORY_EPS_MIN:
        raise ValueError(f"--eps must lie in [{THEORY_EPS_MIN:g}, 1) with theory presets (they use eps^2 and "
                         f"log(d/eps^2)), got {min(t_eps):g}; use --variants tuned for smaller eps")
    pairs = tuple((d, e) for d in dims for e in eps)
    scans = []
    for fam in families:
        for run in runs:
            spec = get_sampler(run.sampler)
            draws = profile.draws
            n_draws = draws.first if spec.randomized else 1
            metrics = (metric if spec.randomized else ("tv_annealed",)) + ("sqrt_kl",)
            costs = tuple(cost_ladder(*run.ladder, per_octave=profile.per_octave, multiple=run.multiple))
            common = dict(study="scaling", profile=profile.name, sampler=run.sampler, family=fam, metrics=metrics,
                          n_draws=n_draws, root_seed=seed, annealed_samples=profile.annealed_samples,
                          max_draws=draws.cap if spec.randomized else 0, precision=draws.precision)
            if "tuned" in variants:
                params = tuple(sorted({**dict(run.tuned), **user.get(run.sampler, {})}.items()))
                ok = feasible(spec, costs, params)
                if not ok:
                    raise ValueError(f"sampler {run.sampler} (tuned) with parameters {dict(params)}: "
                                     f"{_first_rejection(spec, costs, params)}")
                scans.append(Scan(variant="tuned", params=params, pairs=pairs, costs=ok,
                                  n_infeasible=len(costs) - len(ok), **common))
            if "theory" in variants and run.theory and spec.theory is not None:
                L = fam.lipschitz(DEFAULT_DELTA)
                grouped = defaultdict(list)
                for d, e in ((d, e) for d in t_dims for e in t_eps):
                    try:
                        preset = spec.theory(d, e, L)
                    except (ArithmeticError, ValueError) as exc:
                        raise ValueError(f"the theory preset of {run.sampler} fails at d={d}, eps={e:g}: "
                                         f"{exc}") from None
                    bad = [k for k, x in preset.items() if isinstance(x, (float, np.floating)) and not np.isfinite(x)]
                    if bad:
                        raise ValueError(f"the theory preset of {run.sampler} is not finite at d={d}, eps={e:g} "
                                         f"({', '.join(bad)})")
                    grouped[tuple(sorted((k, _plain(x)) for k, x in preset.items()))].append((d, e))
                for params, served in grouped.items():
                    ok = feasible(spec, costs, params)
                    if not ok:
                        raise ValueError(f"sampler {run.sampler} (theory) with parameters {dict(params)}: "
                                         f"{_first_rejection(spec, costs, params)}")
                    scans.append(Scan(variant="theory", params=params, pairs=tuple(served), costs=ok,
                                      n_infeasible=len(costs) - len(ok), **common))
    if not scans:
        raise ValueError("nothing to run: no sampler of this selection has a theory preset; add --variants tuned")
    return scans


def law_seconds(nfe: float, draws: int) -> float:
    return float(nfe) * (LAW_STEP + LAW_STEP_DRAW * draws)


def error_seconds(draws: int, annealed_samples: int) -> float:
    return ERR_CELL + (ERR_DRAW * draws * annealed_samples / 4000.0 if draws > 1 else 0.0)


def scan_seconds(scan) -> float:
    """Estimated CPU seconds of a scan (whole ladder, first draw level; see the module docstring)."""
    from experiments.samplers import get as get_sampler

    spec = get_sampler(scan.sampler)
    params = dict(scan.params)
    per_cost = len(scan.dims) * len(scan.metrics) * error_seconds(scan.n_draws, scan.annealed_samples)
    total = 0.0
    for c in scan.costs:
        try:
            nfe = float(spec.nfe(c, **params))
        except (TypeError, ValueError, ArithmeticError):
            nfe = float(c)
        total += law_seconds(nfe, scan.n_draws) + per_cost
    return total


def estimate(scans) -> dict:
    """``{"scans", "laws", "errors", "cpu_seconds"}`` of a plan (laws and errors at the first draw level)."""
    laws = sum(len(s.costs) for s in scans)
    errs = sum(len(s.costs) * len(s.dims) * len(s.metrics) for s in scans)
    return {"scans": len(scans), "laws": laws, "errors": errs, "cpu_seconds": sum(map(scan_seconds, scans))}


def possible_keys(scans) -> set[str]:
    """Every cache key the scans could read or write: every cost at every draw level (refinement picks among
    these levels; which ones it reaches depends on the data, this set does not)."""
    from experiments.cells import draw_levels

    keys = set()
    for s in scans:
        for c in s.costs:
            for m in draw_levels(s):
                keys.add(s.law_key(c, m))
                for d in s.dims:
                    for metric in s.metrics:
                        keys.add(s.error_key(c, m, d, metric))
    return keys


def describe(scan) -> str:
    return (f"{scan.sampler:24s} {scan.variant:6s} {scan.target:14s} costs {scan.costs[0]}..{scan.costs[-1]} "
            f"({len(scan.costs)}) pairs {len(scan.pairs)} draws {scan.n_draws}"
            f"{'..' + str(scan.cap) if scan.cap > scan.n_draws else ''} ~{scan_seconds(scan):.0f} CPU s "
            f"params {dict(scan.params)}")
