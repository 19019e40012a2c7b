"""Executors for independent cells: in-process, a local process pool, or a Dask cluster.

Every cell carries its own seed (derived from its parameters), so results do not depend on which
executor ran it, in which order, or on which worker: the three executors give identical bits.
``imap`` yields ``(index, result)`` as cells finish, so the caller can cache each one at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

from experiments import _validate as v

EXECUTORS = ("inline", "processes", "dask")


def _single_threaded_blas():
    # one BLAS thread per worker process: the cells are the parallel unit
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


def imap(fn: Callable, items: list, *, executor: str = "inline", jobs: int = 1,
         scheduler: str | None = None) -> Iterator[tuple[int, object]]:
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    jobs = v.positive_int("jobs", jobs)
    if executor == "inline":
        for i, item in enumerate(items):
            yield i, fn(item)
    elif executor == "processes":
        with ProcessPoolExecutor(max_workers=jobs, initializer=_single_threaded_blas) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            for fut in as_completed(futures):
                yield futures[fut], fut.result()
    else:
        yield from _dask_imap(fn, items, jobs=jobs, scheduler=scheduler)


def _dask_imap(fn, items, *, jobs, scheduler) -> Iterable[tuple[int, object]]:
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as dask_completed
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise ValueError("executor 'dask' needs the optional extra: pip install '.[distributed]'") from exc
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = client.map(fn, items, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in dask_completed(futures):
            yield index[fut.key], fut.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
