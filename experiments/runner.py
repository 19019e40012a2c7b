"""Running scans: through an executor, most expensive first, with progress, one-line errors and clean stops.

:func:`run_scans` is used by the main study (``python -m experiments.scaling``) and by the extra studies
(:func:`experiments.extra_studies.run_scans`). A ``ValueError`` or a ``FloatingPointError`` (e.g.
:class:`experiments.samplers.NonFiniteStateError`, whose message names the sampler and the step) raised
while a scan runs comes back as a ``ValueError`` whose message names the scan; a KeyboardInterrupt (SIGINT,
or SIGTERM inside :func:`experiments.executors.interrupt_on_sigterm`) cancels the pending scans and kills
the workers before it propagates (experiments.executors); every cell finished before it stays cached.

**Errors that are not finite.** An unstable sampler (``lmc`` or ``plmc`` at costs whose step exceeds the
stability limit) has an output law infinitely far from the target (sqrt KL = +inf, annealed TV NaN). The
N* search (experiments.complexity) reads such a cell as above every eps; an N* whose bracket starts at one
has status ``diverged`` (excluded from fits, counted). errors.csv keeps the values as computed.
"""

from __future__ import annotations

import contextlib
import sys
from functools import partial

import numpy as np

from experiments.executors import imap


def run_one(scan, cache_dir: str | None = None) -> dict:
    """``experiments.cells.run_scan`` with its errors named by the scan (picklable, for every executor)."""
    from experiments.cells import run_scan

    try:
        return run_scan(scan, cache_dir=cache_dir)
    except (ValueError, FloatingPointError) as exc:
        raise ValueError(f"sampler {scan.sampler} ({scan.variant} variant, target {scan.target}, parameters "
                         f"{dict(scan.params)}): {type(exc).__name__ + ': ' if not isinstance(exc, ValueError) else ''}"
                         f"{exc}") from None


def run_scans(scans, *, cache_dir, executor: str = "inline", jobs: int = 1, scheduler: str | None = None,
              progress=None) -> list[dict]:
    """Run every scan (most expensive first); return their results in the order of ``scans``.

    ``progress``: an :class:`experiments.progress.Progress` over the scans (weights in scan order)."""
    from experiments.planning import scan_seconds

    order = sorted(range(len(scans)), key=lambda i: -scan_seconds(scans[i]))
    results: list = [None] * len(scans)
    fn = partial(run_one, cache_dir=None if cache_dir is None else str(cache_dir))
    with contextlib.closing(imap(fn, [scans[i] for i in order], executor=executor, jobs=jobs,
                                 scheduler=scheduler)) as it:
        for j, result in it:
            i = order[j]
            results[i] = result
            if progress is not None:
                progress.advance(i)
    return results


def nonfinite_counts(errors) -> dict[str, int]:
    """``{sampler: number of error rows that are not finite}`` (for the run's summary)."""
    if not len(errors):
        return {}
    bad = errors[~np.isfinite(errors["error"].to_numpy(float))]
    return {str(k): int(v) for k, v in bad["sampler"].value_counts().sort_index().items()}


def nstar_tables(errors, replicates, scans):
    """N* tables of a run (experiments.complexity.nstar_table; non-finite errors are handled there)."""
    from experiments.complexity import nstar_table

    return nstar_table(errors, replicates, scans)


def report_error(prog: str, exc: BaseException) -> int:
    """Print ``exc`` as one line on stderr; the exit status (2)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    print(f"{prog}: error: {text}", file=sys.stderr)
    return 2
