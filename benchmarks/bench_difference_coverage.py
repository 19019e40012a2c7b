"""Coverage of the paired jackknife interval of exponent differences (li_jiao - gupta_cai_chen) over many seeds.

Run:  python benchmarks/bench_difference_coverage.py [--seeds 200] [--root 0]

The case of tests/test_coverage_difference.py (gauss_aniso, d in (300, 3000, 30000), eps in (0.2, 0.1, 0.05),
32 internal draws per law and seed in R = 8 replicate groups, 2000 annealed-TV samples; li_jiao on
cost_ladder(30, 1280, 2, 10), gupta_cai_chen on cost_ladder(128, 4096, 2), disjoint ladders so the two
samplers' draws are independent, as in the main pipeline) with more seeds. Printed: the fraction of seeds
whose paired interval (:func:`experiments.coverage.difference_coverage`, the interval of
:func:`analysis.compare.exponent_differences`) covers the pooled difference, with an exact (Clopper-Pearson)
binomial 95% interval for that fraction; the seeds' sd of the difference and the mean half-width (over
t_7 = 2.36 it should match the sd); the negative control (spread of the per-group differences / sqrt(R)); the
unpaired interval (standard errors in quadrature, valid too with independent draws); the single-sampler
coverages. Figures are printed, not asserted: this is a benchmark, not a test.

measured on 2026-12-03 (2 shared cores, under nice; 200 seeds, about 160 s CPU and 5 min wall per run):

========================  ==========================  ==========================  ===========================
                          root 0 (200 seeds)          root 1 (200 seeds)          both (400 seeds)
========================  ==========================  ==========================  ===========================
a_A - a_B (d)             0.970 [0.936, 0.989]        0.950 [0.910, 0.976]        0.960 [0.936, 0.977]
b_A - b_B (eps)           0.985 [0.957, 0.997]        0.945 [0.904, 0.972]        0.965 [0.942, 0.981]
control a, spread/sqrt(R) 0.230 [0.174, 0.295]        0.225 [0.169, 0.289]        0.228 (91/400)
control b, spread/sqrt(R) 0.260 [0.201, 0.327]        0.245 [0.187, 0.311]        0.253 (101/400)
unpaired a / b            0.975 / 0.975               0.960 / 0.950               0.968 / 0.963
========================  ==========================  ==========================  ===========================

(coverage of the pooled difference, exact binomial 95% intervals in brackets). Pooled differences: a +0.119
and +0.118, b +0.243 and +0.238; seeds' sd of the difference 0.021-0.022 (a), 0.049-0.051 (b); mean
half-width 1.02-1.05 (a) and 1.02-1.15 (b) times t_7 x sd; li_jiao has 9 of 9 ok N* rows for 157 and 153 seeds
(8 for the rest), gupta_cai_chen 9 of 9 always; the mean correlation of the two samplers' replicate exponents
is within +-0.02 (independent draws). The paired interval covers about 95%, slightly on the conservative
side (the delete-one-group jackknife variance is biased upward); the wrong-formula control under-covers at
about 0.23-0.25.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

from experiments.complexity import cost_ladder
from experiments.coverage import coverage, difference_coverage, seed_runs
from experiments.studies import get_target

DIMS, EPS = (300, 3000, 30000), (0.2, 0.1, 0.05)
LADDER_LJ = cost_ladder(30, 1280, 2, 10)
LADDER_GCC = cost_ladder(128, 4096, 2)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval for a proportion k / n."""
    a = 1 - level
    lo = stats.beta.ppf(a / 2, k, n - k + 1) if k > 0 else 0.0
    hi = stats.beta.ppf(1 - a / 2, k + 1, n - k) if k < n else 1.0
    return float(lo), float(hi)


def _fraction(flags) -> str:
    flags = np.asarray(flags, bool)
    k, n = int(flags.sum()), flags.size
    lo, hi = clopper_pearson(k, n)
    return f"{k / n:.3f} ({k}/{n}; binomial 95% [{lo:.3f}, {hi:.3f}])"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=200)
    p.add_argument("--root", type=int, default=0)
    args = p.parse_args(argv)
    fam = get_target("gauss_aniso")
    kw = dict(seeds=args.seeds, draws=32, n_samples=2000, keep_nstar=True, root=args.root)
    w, c = time.perf_counter(), time.process_time()
    A = seed_runs("li_jiao", fam, LADDER_LJ, DIMS, EPS, **kw)
    B = seed_runs("gupta_cai_chen", fam, LADDER_GCC, DIMS, EPS, **kw)
    cov = difference_coverage(A, B)
    w, c = time.perf_counter() - w, time.process_time() - c
    iv = cov["intervals"]
    t7 = stats.t.ppf(0.975, 7)
    print(f"seeds {args.seeds}, root {args.root}: wall {w:.0f} s, CPU {c:.0f} s")
    print(f"ok N* rows per seed: li_jiao {A['n'].value_counts().sort_index().to_dict()}, "
          f"gupta_cai_chen {B['n'].value_counts().sort_index().to_dict()}")
    for k, name in (("a", "d-exponent"), ("b", "eps-exponent")):
        pooled = cov[f"{k}_pooled"]
        covered = (iv[f"{k}_lo"] <= pooled) & (pooled <= iv[f"{k}_hi"])
        diffs = [np.asarray(x, float) - np.asarray(y, float)
                 for x, y in zip(A[f"{k}_replicates"], B[f"{k}_replicates"], strict=True)]
        naive = [abs(e - pooled) <= t7 * np.std(r, ddof=1) / np.sqrt(len(r)) for e, r in zip(iv[k], diffs, strict=True)]
        se_a, se_b = (A[f"{k}_hi"] - A[f"{k}_lo"]) / (2 * t7), (B[f"{k}_hi"] - B[f"{k}_lo"]) / (2 * t7)
        unpaired = np.abs(iv[k] - pooled) <= t7 * np.hypot(se_a, se_b)
        below = int((iv[f"{k}_hi"] < pooled).sum())
        above = int((iv[f"{k}_lo"] > pooled).sum())
        rho = np.mean([np.corrcoef(x, y)[0, 1]
                       for x, y in zip(A[f"{k}_replicates"], B[f"{k}_replicates"], strict=True)])
        print(f"{name} difference: pooled {pooled:+.4f}, seeds' sd {cov[f'{k}_sd']:.4f}, mean half-width "
              f"{cov[f'{k}_half_width']:.4f} (= {cov[f'{k}_half_width'] / (t7 * cov[f'{k}_sd']):.2f} x t_7 sd)")
        print(f"  paired jackknife coverage {_fraction(covered)}; misses: interval below {below}, above {above}")
        print(f"  negative control (spread / sqrt(R)) {_fraction(naive)}")
        print(f"  unpaired (se in quadrature) {_fraction(unpaired)}; mean correlation of the two samplers' "
              f"replicates {rho:+.3f}")
    for s, runs in (("li_jiao", A), ("gupta_cai_chen", B)):
        single = coverage(runs)
        print(f"single-sampler coverage {s}: a {single['a']:.3f}, b {single['b']:.3f}")


if __name__ == "__main__":
    main()
