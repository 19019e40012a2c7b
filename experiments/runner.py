"""Running scans: through an executor, most expensive first, with progress, one-line errors and clean stops.

:func:`run_scans` is used by the main study (``python -m experiments.scaling``) and by the extra studies
(:func:`experiments.extra_studies.run_scans`). A ``ValueError`` or a ``FloatingPointError`` (e.g.
:class:`experiments.samplers.NonFiniteStateError`, whose message names the sampler and the step) raised
while a scan runs comes back as a ``ValueError`` whose message names the scan; a KeyboardInterrupt (SIGINT,
or SIGTERM inside :func:`experiments.executors.interrupt_on_sigterm`) cancels the pending scans and kills
the workers before it propagates (experiments.executors); every cell finished before it stays cached.

**Errors that are not finite.** An unstable sampler (``lmc`` or ``plmc`` at costs whose step exceeds the
stability limit) has an output law infinitely far from the target: its sqrt(KL) is +inf, and the annealed
TV of a mixture some of whose draws diverged comes out NaN (inf - inf in the replicate arithmetic). The
N* search of ``experiments.complexity`` accepts finite errors only, so the sampler could never produce
tables. :func:`nstar_tables` reads a non-finite error as *above every eps* (the N* search only asks
whether a cell meets eps; a diverged law meets none) and hands it over as the largest finite float,
leave-one-group-out values included. Log-log interpolation from such a cell means nothing, so every N*
whose bracket starts at one is marked afterwards: ``nstar`` becomes the bracket's upper cost (the smallest
scanned NFE that meets eps: an upper bound of N*), ``nstar_jk_se`` NaN and ``status`` ``diverged`` (not
``ok``: excluded from fits, and counted in the exponents' ``excluded`` column). errors.csv keeps the
values as computed (inf, NaN). The honest fix belongs in experiments.complexity (see the lead's note in
the commit message); this is the least invasive stand-in.
"""

from __future__ import annotations

import contextlib
import sys
from functools import partial

import numpy as np

from experiments.executors import imap

#: status of an N* whose bracket starts at an error that is not finite (see the module docstring)
DIVERGED = "diverged"


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


def _finite(df, columns):
    df = df.copy()
    for c in columns:
        if c in df:
            x = df[c].to_numpy(float)
            df[c] = np.where(np.isfinite(x), x, np.finfo(float).max)
    return df


def nonfinite_counts(errors) -> dict[str, int]:
    """``{sampler: number of error rows that are not finite}`` (for the run's summary)."""
    if not len(errors):
        return {}
    bad = errors[~np.isfinite(errors["error"].to_numpy(float))]
    return {str(k): int(v) for k, v in bad["sampler"].value_counts().sort_index().items()}


def nstar_tables(errors, replicates, scans):
    """``experiments.complexity.nstar_table`` that accepts errors that are not finite (module docstring)."""
    from experiments.complexity import CURVE, nstar_table

    bad_rows = ~np.isfinite(errors["error"].to_numpy(float)) if len(errors) else np.zeros(0, bool)
    bad_reps = (replicates is not None and len(replicates)
                and not np.all(np.isfinite(replicates["error"].to_numpy(float))))
    if not bad_rows.any() and not bad_reps:
        return nstar_table(errors, replicates, scans)
    fixed = _finite(errors, ["error"])
    for c in ("error_half_a", "error_half_b"):
        if c in fixed:
            x = fixed[c].to_numpy(float)
            fixed[c] = np.where(bad_rows | ~np.isfinite(x), np.finfo(float).max, x)
    se = fixed["error_se"].to_numpy(float)
    fixed["error_se"] = np.where(bad_rows | ~np.isfinite(se), 0.0, se)
    reps = _finite(replicates, ["error"]) if bad_reps else replicates
    table, table_reps = nstar_table(fixed, reps, scans)
    if not len(table):
        return table, table_reps
    curves = {k: g.sort_values("nfe") for k, g in fixed.groupby(CURVE, sort=False)}
    big = np.finfo(float).max
    nstar, status = table["nstar"].to_numpy(float).copy(), table["status"].to_numpy(object).copy()
    jk = table["nstar_jk_se"].to_numpy(float).copy()
    for i, row in enumerate(table.itertuples(index=False)):
        if row.crossing != "interpolated":
            continue
        g = curves[tuple(getattr(row, c) for c in CURVE)]
        e = g["error"].to_numpy(float)
        above = np.flatnonzero(e > row.eps)
        if above.size and e[above[-1]] == big and above[-1] + 1 < e.size:
            nstar[i] = float(g["nfe"].to_numpy(float)[above[-1] + 1])
            status[i], jk[i] = DIVERGED, np.nan
    return table.assign(nstar=nstar, status=status, nstar_jk_se=jk), table_reps


def report_error(prog: str, exc: BaseException) -> int:
    """Print ``exc`` as one line on stderr; the exit status (2)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    print(f"{prog}: error: {text}", file=sys.stderr)
    return 2
