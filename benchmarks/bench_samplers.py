"""Throughput of every registered sampler, in sample mode and in law mode.

Run:  python benchmarks/bench_samplers.py [--rows 10000] [--columns 1000] [--samplers a,b,...]

(a) sample mode: one run of the sampler at a small cost on a grouped Gaussian with ``--columns``
    representative columns (one group each, variances spread over [0.1, 2]) and a batch of ``--rows``
    rows, i.e. a (rows, columns) array per state component. Reported: NFE per row (counted by the
    driver), wall time, and score evaluations per second, counted per row (a row evaluation is one call
    of the score on one (columns,)-vector) and per scalar coordinate.
(b) law mode: one exact output-law evaluation (experiments.laws.gaussian_law) at a cost of about 1000
    NFE on the two-group ``gauss_aniso`` family; randomized samplers with 32 internal draws. Its time
    does not depend on d (lifting to d is the multiplicities).

Figures are printed, not asserted: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from experiments.laws import gaussian_law
from experiments.samplers import REGISTRY
from experiments.samplers.driver import run
from experiments.studies import get_target
from experiments.targets import GroupedGaussian

LADDER = (1, 2, 4, 8, 10, 16, 20, 32, 40, 64, 80, 128, 160, 256, 320, 512, 640, 1000, 1024, 1280, 2048)


def cost_near(spec, nfe_wanted: float) -> int:
    """The ladder cost at which the sampler can be built whose documented NFE is closest to
    ``nfe_wanted`` in ratio (cost knobs differ: steps, blocks, or K, whose NFE falls as K grows)."""
    best, best_gap = None, np.inf
    for c in LADDER:
        try:
            spec.make(c)
            nfe = float(spec.nfe(c))
        except ValueError:
            continue
        gap = abs(np.log(nfe / nfe_wanted))
        if gap < best_gap:
            best, best_gap = c, gap
    if best is None:
        raise ValueError(f"no cost on the benchmark ladder builds sampler {spec.name!r}")
    return best


def sample_mode(spec, target, rows: int, rng) -> tuple[int, float, float]:
    cost = cost_near(spec, 16)
    kernel = spec.make(cost)
    t = time.perf_counter()
    res = run(kernel, target, rows, rng)
    return cost, float(res.nfe.mean()), time.perf_counter() - t


def law_mode(spec, rng) -> tuple[int, float, float]:
    cost = cost_near(spec, 1000)
    kernel = spec.make(cost)
    target = get_target("gauss_aniso").at(10**6)
    t = time.perf_counter()
    law = gaussian_law(kernel, target, n_draws=32 if spec.randomized else 1, rng=rng)
    return cost, float(law.nfe.mean()), time.perf_counter() - t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--columns", type=int, default=1_000)
    p.add_argument("--samplers", default=None, help="comma-separated names (default: all registered)")
    args = p.parse_args(argv)
    names = args.samplers.split(",") if args.samplers else sorted(REGISTRY)
    target = GroupedGaussian(np.linspace(0.1, 2.0, args.columns), 0.3)
    print(f"(a) sample mode: batch {args.rows} rows x {args.columns} columns | (b) law mode at ~1000 NFE")
    hdr = (f"{'sampler':24s} {'cost':>5s} {'NFE/row':>8s} {'time':>8s} {'row evals/s':>12s} {'coord evals/s':>14s}"
           f" | {'cost':>5s} {'NFE':>7s} {'law time':>9s}")
    print(hdr)
    print("-" * len(hdr))
    for name in names:
        spec = REGISTRY[name]
        rng = np.random.default_rng(0)
        cost, nfe, sec = sample_mode(spec, target, args.rows, rng)
        per_s = nfe * args.rows / sec
        lcost, lnfe, lsec = law_mode(spec, rng)
        print(f"{name:24s} {cost:5d} {nfe:8.1f} {sec:7.2f}s {per_s:12.3g} {per_s * args.columns:14.3g}"
              f" | {lcost:5d} {lnfe:7.0f} {lsec:8.3f}s")


if __name__ == "__main__":
    main()
