"""python -m experiments.scaling: measure N*(d, eps) for every sampler, fit exponents, set them beside the claims.

The command is thin: it turns a profile (experiments/studies.py) and the options into a list of
independent scans (experiments/cells.py), runs them through an executor with an on-disk cache,
writes tidy CSV tables, and hands them to the analysis layer for fits, verdicts and figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from experiments import _validate as v
from experiments.cache import atomic_write_text
from experiments.cells import Scan, code_version, run_scan
from experiments.complexity import cost_ladder, nstar_table
from experiments.executors import EXECUTORS, imap
from experiments.samplers import REGISTRY
from experiments.samplers import get as get_sampler
from experiments.samplers._grid import DEFAULT_DELTA
from experiments.studies import TARGETS, get_profile, get_target

METRIC_CHOICES = {"annealed": ("tv_annealed",), "quenched": ("tv_quenched",), "both": ("tv_annealed", "tv_quenched")}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr, exit status 2
        self.exit(2, f"experiments.scaling: error: {message}\n")


def _catalogue() -> str:
    from experiments.extra_studies import studies

    lines = ["studies (python -m experiments.scaling STUDY [options]; default: the N*(d, eps) study):"]
    for name, study in studies().items():
        lines.append(f"  {name:26s} {study.description}")
    lines.append("samplers (claims):")
    for name, spec in sorted(REGISTRY.items()):
        claim = spec.claim.describe() if spec.claim else "no claim (building block)"
        lines.append(f"  {name:26s} {claim}")
    lines.append("targets:")
    for name, fam in sorted(TARGETS.items()):
        lines.append(f"  {name:26s} {fam.description}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m experiments.scaling", description=__doc__.splitlines()[0],
                epilog=_catalogue(), formatter_class=argparse.RawDescriptionHelpFormatter)
    prof = p.add_mutually_exclusive_group()
    prof.add_argument("--quick", action="store_const", const="quick", dest="profile", help="CI profile (< 1 minute)")
    prof.add_argument("--full", action="store_const", const="full", dest="profile", help="the paper figures (long)")
    p.set_defaults(profile="default")
    p.add_argument("--samplers", help="comma-separated sampler names (default: the profile's)")
    p.add_argument("--targets", help="comma-separated target families (default: the profile's)")
    p.add_argument("--dims", help="comma-separated dimensions d (default: the profile's)")
    p.add_argument("--eps", help="comma-separated accuracies in (0, 1) (default: the profile's)")
    p.add_argument("--metric", choices=sorted(METRIC_CHOICES), default="annealed",
                   help="TV of the true output law (annealed), mean conditional TV (quenched), or both")
    p.add_argument("--variants", default="theory,tuned", help="theory preset, tuned defaults, or both")
    p.add_argument("--seed", type=int, default=0, help="root seed; every cell derives its own from its parameters")
    p.add_argument("--out", default="results", help="output folder for tables (figures go to figures/ by default)")
    p.add_argument("--figures", default=None, help="figure folder (default: figures/ for --out results, else OUT/figures)")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes (default: the cores this process may use)")
    p.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="inline (default with --jobs 1), processes (default with --jobs > 1), dask")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address (implies --executor dask)")
    p.add_argument("--no-resume", action="store_true", help="ignore and overwrite cached cells")
    p.add_argument("--dry-run", action="store_true", help="list the scans and exit")
    return p


def default_jobs() -> int:
    """The number of cores this process may run on (the default of --jobs)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count() or 1


def _split(text, cast, name):
    if text is None:
        return None
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise ValueError(f"{name} must list at least one value")
    try:
        return tuple(cast(s) for s in items)
    except ValueError as exc:
        raise ValueError(f"{name}: cannot read {text!r} ({exc})") from exc


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


def plan_scans(args) -> list[Scan]:
    profile = get_profile(args.profile)
    dims = _split(args.dims, int, "--dims") or profile.dims
    eps = _split(args.eps, float, "--eps") or profile.eps
    for d in dims:
        v.positive_int("--dims", d)
    for e in eps:
        v.in_open_interval("--eps", e, 0.0, 1.0)
    targets = _split(args.targets, str, "--targets") or profile.targets
    for t in targets:
        get_target(t)
    runs = profile.runs
    if args.samplers is not None:
        wanted = _split(args.samplers, str, "--samplers")
        for name in wanted:
            get_sampler(name)
        known = {r.sampler: r for r in runs}
        from experiments.studies import SamplerRun
        runs = tuple(known.get(n, SamplerRun(n, (4, 1024))) for n in wanted)
    variants = _split(args.variants, str, "--variants")
    for var in variants:
        if var not in ("theory", "tuned"):
            raise ValueError(f"--variants must be 'theory' and/or 'tuned', got {var!r}")
    pairs = tuple((d, e) for d in dims for e in eps)
    scans = []
    for tname in targets:
        fam = get_target(tname)
        for run in runs:
            spec = get_sampler(run.sampler)
            draws = profile.draws
            n_draws = draws.first if spec.randomized else 1
            metrics = METRIC_CHOICES[args.metric] if spec.randomized else ("tv_annealed",)
            metrics = metrics + ("sqrt_kl",)
            costs = tuple(cost_ladder(*run.ladder, per_octave=profile.per_octave, multiple=run.multiple))
            common = dict(study="scaling", profile=profile.name, sampler=run.sampler, family=fam, costs=costs,
                          metrics=metrics, n_draws=n_draws, root_seed=args.seed,
                          annealed_samples=profile.annealed_samples,
                          max_draws=draws.cap if spec.randomized else 0, precision=draws.precision)
            if "tuned" in variants:
                params = tuple(sorted(run.tuned))
                ok = feasible(spec, costs, params)
                scans.append(Scan(variant="tuned", params=params, pairs=pairs, n_infeasible=len(costs) - len(ok),
                                  **dict(common, costs=ok)))
            if "theory" in variants and run.theory and spec.theory is not None:
                L = fam.lipschitz(DEFAULT_DELTA)
                grouped = defaultdict(list)
                t_dims = dims if (args.dims or profile.theory_dims is None) else profile.theory_dims
                t_eps = eps if (args.eps or profile.theory_eps is None) else profile.theory_eps
                for d, e in ((d, e) for d in t_dims for e in t_eps):
                    grouped[tuple(sorted((k, _plain(x)) for k, x in spec.theory(d, e, L).items()))].append((d, e))
                for params, served in grouped.items():
                    ok = feasible(spec, costs, params)
                    scans.append(Scan(variant="theory", params=params, pairs=tuple(served),
                                      n_infeasible=len(costs) - len(ok), **dict(common, costs=ok)))
    empty = [s for s in scans if not s.costs]
    if empty:
        s = empty[0]
        raise ValueError(f"no cost of the ladder is feasible for sampler {s.sampler!r} with parameters {dict(s.params)}")
    return scans


def run_study(study, argv) -> int:
    """Run one of the seeds' other studies (experiments.extra_studies) with the common options."""
    from experiments.extra_studies import StudyContext

    p = _Parser(prog=f"python -m experiments.scaling {study.name}", description=study.description)
    prof = p.add_mutually_exclusive_group()
    prof.add_argument("--quick", action="store_const", const="quick", dest="profile", help="CI profile")
    prof.add_argument("--full", action="store_const", const="full", dest="profile", help="long profile")
    p.set_defaults(profile="default")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=f"results/{study.name}")
    p.add_argument("--figures", default=None, help=f"default: figures/{study.name} (or OUT/figures with --out)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: the cores available)")
    p.add_argument("--executor", choices=EXECUTORS, default=None)
    p.add_argument("--scheduler", default=None)
    p.add_argument("--no-resume", action="store_true")
    args = p.parse_args(argv)
    default_out = args.out == f"results/{study.name}"
    figures = args.figures or (f"figures/{study.name}" if default_out else str(Path(args.out) / "figures"))
    try:
        args.jobs = default_jobs() if args.jobs is None else v.positive_int("--jobs", args.jobs)
        executor = args.executor or ("dask" if args.scheduler else ("processes" if args.jobs > 1 else "inline"))
        ctx = StudyContext(profile=args.profile, seed=args.seed, out=Path(args.out), figures=Path(figures),
                           jobs=args.jobs, executor=executor, scheduler=args.scheduler, resume=not args.no_resume)
        tables = study.run(ctx)
    except ValueError as exc:
        print(f"experiments.scaling {study.name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("experiments.scaling: interrupted; finished cells are cached, rerun to resume", file=sys.stderr)
        return 130
    print(f"{study.name}: wrote {', '.join(sorted(tables))} in {args.out} and figures in {figures}")
    return 0


def main(argv=None) -> int:
    from experiments.extra_studies import studies

    argv = sys.argv[1:] if argv is None else list(argv)
    extra = studies()
    if argv and argv[0] in extra:
        return run_study(extra[argv[0]], argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.jobs = default_jobs() if args.jobs is None else v.positive_int("--jobs", args.jobs)
        scans = plan_scans(args)
    except ValueError as exc:
        print(f"experiments.scaling: error: {exc}", file=sys.stderr)
        return 2
    executor = args.executor or ("dask" if args.scheduler else ("processes" if args.jobs > 1 else "inline"))
    out = Path(args.out)
    figures = Path(args.figures) if args.figures else (Path("figures") if args.out == "results" else out / "figures")
    if args.dry_run:
        for s in scans:
            print(f"{s.sampler:24s} {s.variant:6s} {s.target:14s} costs {s.costs[0]}..{s.costs[-1]} "
                  f"({len(s.costs)}) pairs {len(s.pairs)} draws {s.n_draws} params {dict(s.params)}")
        print(f"{len(scans)} scans; executor {executor}; output {out}; figures {figures}")
        return 0
    import pandas as pd
    from tqdm import tqdm

    cache_dir = out / "cache"
    if args.no_resume and cache_dir.exists():
        for p in cache_dir.glob("*.json"):
            p.unlink()
    from functools import partial

    rows, reps, stats = [], [], [None] * len(scans)
    try:
        with tqdm(total=len(scans), desc="scans", unit="scan", disable=None) as bar:
            for i, result in imap(partial(run_scan, cache_dir=str(cache_dir)), scans,
                                  executor=executor, jobs=args.jobs, scheduler=args.scheduler):
                rows.extend(result["errors"])
                reps.extend(result["replicates"])
                stats[i] = result["stats"]
                bar.update()
    except KeyboardInterrupt:
        print("experiments.scaling: interrupted; finished cells are cached, rerun the same command to resume",
              file=sys.stderr)
        return 130
    except ValueError as exc:
        print(f"experiments.scaling: error: {exc}", file=sys.stderr)
        return 2
    order = ["sampler", "variant", "target", "params", "metric", "d", "cost"]
    errors = pd.DataFrame(rows).sort_values(order)
    replicates = pd.DataFrame(reps)
    if len(replicates):
        replicates = replicates.sort_values(order + ["group"])
    table, table_reps = nstar_table(errors, replicates, scans)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "errors.csv", errors.to_csv(index=False))
    atomic_write_text(out / "errors_replicates.csv", replicates.to_csv(index=False))
    atomic_write_text(out / "nstar.csv", table.to_csv(index=False))
    atomic_write_text(out / "nstar_replicates.csv", table_reps.to_csv(index=False))
    meta = {"code_version": code_version(), "profile": args.profile, "seed": args.seed, "start": "exact",
            "reference_mode": "exact marginal at the sampler's start level; error against the exact marginal "
                              "at its final level", "executor": executor, "argv": argv,
            "n_scans": len(scans), "cpu_seconds": round(sum(x["cpu_seconds"] for x in stats), 1),
            "slowest_scans": sorted(({"scan": f"{s.sampler} {s.variant} {dict(s.params)}", "cpu_seconds":
                                      round(x["cpu_seconds"], 1), "max_draws": x["max_draws"]}
                                     for s, x in zip(scans, stats, strict=True)),
                                    key=lambda r: -r["cpu_seconds"])[:10],
            "infeasible_costs_left_out": {f"{s.sampler} {s.variant} {dict(s.params)}": s.n_infeasible
                                          for s in scans if s.n_infeasible}}
    atomic_write_text(out / "metadata.json", json.dumps(meta, indent=2))
    _analyse(out, figures)
    print(f"wrote {out}/errors.csv ({len(errors)} rows), {out}/nstar.csv ({len(table)} rows)"
          f" and figures in {figures}")
    return 0


def _analyse(out: Path, figures: Path) -> None:
    """Fits, verdicts, tables and figures from the written CSVs (analysis never re-runs samplers)."""
    from analysis.report import write_report

    write_report(out, figures)


if __name__ == "__main__":
    sys.exit(main())
