"""Timing and accuracy of the TV routines of experiments.distances at d = 10, 1e3, 1e6, 1e9.

Run:  PYTHONPATH=. python benchmarks/bench_distances.py

(a) exact single group (ncx2 ball): value, time, |exact - CF inversion| (independent route);
(b) several groups (4 groups, CF inversion): value, time, reported error bound, and the deviation from
    Monte Carlo over sufficient statistics in standard errors;
(c) annealed TV of a randomised sampler with M = 256 internal draws (2 groups, Monte Carlo over
    sufficient statistics, 20 000 samples): value, time, standard error; and the quenched TV.
Parameters are scaled with d (mean shifts ~ d^{-1/2}, variance ratios ~ 1 + d^{-1/2}) so that the
TV stays of order 0.1-0.5 at every d: the time must not grow with d.
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np

from experiments import distances as D


def timed(fn, reps=3):
    best, out = np.inf, None
    for _ in range(reps):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main():
    rows = []
    for d in (10, 10**3, 10**6, 10**9):
        sc = 1 / math.sqrt(d)
        # (a)
        a, s2 = 0.7 * sc, 1 + 1.5 * sc
        ta, tv_a = timed(lambda: D.tv_isotropic(a, s2, 0.0, 1.0, d))
        cf_a = D.tv_product_gaussian_cf([a], [s2], [0.0], [1.0], [d])
        # (b)
        k = np.maximum(1, np.round(d * np.array([0.1, 0.2, 0.3, 0.4]))).astype(np.int64)
        kb = k / k.sum()
        mb = np.array([0.5, -0.3, 0.2, 0.0]) * sc / np.sqrt(kb)
        vb = 1 + np.array([1.0, -0.5, 0.0, 0.8]) * sc / np.sqrt(kb)
        tb, cf_b = timed(lambda: D.tv_product_gaussian(mb, vb, 0.0, 1.0, k))
        mc_b = D.tv_product_gaussian_mc(mb, vb, 0.0, 1.0, k, n_samples=100_000, rng=np.random.default_rng(1))
        # (c)
        rng = np.random.default_rng(2)
        M, kc = 256, np.array([max(1, d // 3), d - max(1, d // 3)])
        law = SimpleNamespace(mean=rng.normal(0, 0.7, (M, 2)) / np.sqrt(kc), var=np.exp(rng.normal(0, 1.0, (M, 2)) / np.sqrt(kc)),
                              target_mean=np.zeros(2), target_var=np.ones(2), multiplicities=kc)
        tc, an = timed(lambda: D.annealed_tv(law, n_samples=20_000, rng=rng), reps=2)
        tq, qu = timed(lambda: D.quenched_tv(law), reps=1)
        rows.append((d, tv_a, ta, abs(tv_a - cf_a.value), cf_b.value, tb, cf_b.error_bound, (mc_b.value - cf_b.value) / mc_b.stderr,
                     an.value, an.stderr, tc, qu.value, qu.stderr, tq))

    print("(a) exact single group | (b) 4 groups, CF inversion | (c) annealed, M = 256 draws (and quenched)")
    hdr = (f"{'d':>6} | {'TV(a)':>8} {'time':>7} {'|a-CF|':>8} | {'TV(b)':>8} {'time':>7} {'bound':>8} {'MC dev':>7}"
           f" | {'annealed':>8} {'s.e.':>7} {'time':>7} | {'quenched':>8} {'s.e.':>7} {'time':>7}")
    print(hdr)
    print("-" * len(hdr))
    for (d, tva, ta, dev, tvb, tb, bnd, z, an, ase, tc, qu, qse, tq) in rows:
        print(f"{d:>6.0e} | {tva:8.5f} {ta*1e3:5.1f}ms {dev:8.1e} | {tvb:8.5f} {tb*1e3:5.1f}ms {bnd:8.1e} {z:+6.2f}s"
              f" | {an:8.5f} {ase:7.1e} {tc*1e3:5.0f}ms | {qu:8.5f} {qse:7.1e} {tq*1e3:5.0f}ms")
    print("MC dev: (sufficient-statistic Monte Carlo - CF inversion) in Monte Carlo standard errors (1e5 samples).")


if __name__ == "__main__":
    main()
