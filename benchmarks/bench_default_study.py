"""Benchmark: wall and CPU time of the main study's default profile, and where the time goes.

    python benchmarks/bench_default_study.py [--jobs N] [--profile default|quick] [--samplers a,b]

Runs ``python -m experiments.scaling`` into a temporary folder (nothing cached from earlier runs), then
prints the wall time, the CPU time summed over scans, and the ten scans that took longest (from the run's
metadata.json). The law-mode cost per step and draw of single samplers is in benchmarks/bench_laws.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--profile", choices=("default", "quick"), default="default")
    p.add_argument("--samplers", default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "experiments.scaling", "--out", tmp, "--figures", str(Path(tmp) / "figures"),
               "--jobs", str(args.jobs)]
        if args.profile == "quick":
            cmd.append("--quick")
        if args.samplers:
            cmd += ["--samplers", args.samplers]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        meta = json.loads((Path(tmp) / "metadata.json").read_text())
    print(f"profile {args.profile}, jobs {args.jobs}: wall {wall:.1f} s, CPU in scans {meta['cpu_seconds']:.1f} s, "
          f"{meta['n_scans']} scans")
    print("slowest scans (CPU seconds, most internal draws):")
    for row in meta["slowest_scans"]:
        print(f"  {row['cpu_seconds']:8.1f}  {row['max_draws']:5d}  {row['scan']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
