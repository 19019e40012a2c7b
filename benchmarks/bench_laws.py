"""Law-mode cost per kernel step and per internal draw (experiments.laws.gaussian_law).

Run:  python benchmarks/bench_laws.py [--draws 32,128,512,2048] [--samplers a,b,...] [--repeat 3]

For each sampler (at a cost of about 1280 NFE) and each number of internal draws ``M``, one exact
output-law evaluation on ``gauss_aniso`` at d = 1000 is timed (best of ``--repeat`` runs, wall clock
and process CPU time; on a shared machine the CPU time is the steadier one), and the time is divided
by ``n_steps * M``: the figure that matters when the suite asks for M = 512-4096 draws per law.
Figures are printed, not asserted: this is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from experiments.laws import gaussian_law
from experiments.samplers import REGISTRY
from experiments.studies import get_target

# cost knob value per sampler: about 1280 score evaluations each
COSTS = {"li_jiao": 640, "gupta_cai_chen": 1280, "ddram": 640, "ddpm": 1280}


def time_law(kernel, target, n_draws: int, repeat: int) -> tuple[float, float]:
    """Best (wall, cpu) seconds of ``repeat`` law evaluations."""
    wall, cpu = np.inf, np.inf
    for r in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        gaussian_law(kernel, target, n_draws=n_draws, rng=np.random.default_rng(r))
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return wall, cpu


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--draws", default="32,128,512,2048", help="comma-separated numbers of internal draws")
    p.add_argument("--samplers", default=",".join(COSTS), help="comma-separated names")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per point (the best is reported)")
    args = p.parse_args(argv)
    draws = [int(m) for m in args.draws.split(",")]
    target = get_target("gauss_aniso").at(1000)
    hdr = (f"{'sampler':16s} {'cost':>5s} {'steps':>6s} {'M':>6s} {'wall':>8s} {'cpu':>8s}"
           f" {'us/(step*draw) wall':>20s} {'cpu':>7s}")
    print(hdr)
    print("-" * len(hdr))
    for name in args.samplers.split(","):
        spec = REGISTRY[name]
        cost = COSTS.get(name, 640)
        kernel = spec.make(cost)
        gaussian_law(kernel, target, n_draws=2)                         # warm-up (imports, caches)
        for M in draws:
            wall, cpu = time_law(kernel, target, M, args.repeat)
            per = 1e6 / (kernel.n_steps * M)
            print(f"{name:16s} {cost:5d} {kernel.n_steps:6d} {M:6d} {wall:7.3f}s {cpu:7.3f}s"
                  f" {wall * per:20.3f} {cpu * per:7.3f}", flush=True)


if __name__ == "__main__":
    main()
