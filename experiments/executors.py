"""Executors for independent cells: in-process, a local process pool, or a Dask cluster.

Every cell carries its own seed (derived from its parameters), so results do not depend on which
executor ran it, in which order, or on which worker: the three executors give identical bits.
:func:`imap` yields ``(index, result)`` as cells finish, so the caller can cache each one at once.

**Processes and signals.** Worker processes die with their parent and never print an interrupt:

* every worker of the process pool asks the kernel to kill it when its parent dies
  (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``, set in the pool initializer through ctypes; a worker
  that finds its parent already gone exits at once), so a SIGKILLed run leaves no orphan computing;
  the same is done in the workers of a local Dask cluster through a worker plugin;
* workers ignore SIGINT (a Ctrl-C reaches the whole process group: only the parent reacts) and are
  forked with SIGINT and SIGTERM blocked, so no signal can reach a half-initialised worker;
* when the consumer stops (KeyboardInterrupt, SIGTERM turned into one by :func:`interrupt_on_sigterm`,
  an error, or closing the generator), pending futures are cancelled and the workers are killed
  (process pool) or the cluster is closed with its logs silenced (Dask): nothing keeps computing and no
  worker prints a traceback.

**How many workers.** :func:`cap_jobs` caps ``--jobs`` at the number of cells and at
:data:`MAX_JOBS_PER_CORE` workers per core this process may use (more would only queue, and forking a
million workers would exhaust the machine).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator

from experiments import _validate as v

EXECUTORS = ("inline", "processes", "dask")
#: at most this many workers per available core
MAX_JOBS_PER_CORE = 4
#: Linux prctl option: signal sent to this process when its parent dies
PR_SET_PDEATHSIG = 1
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def available_cores() -> int:
    """The number of cores this process may run on (the default of --jobs)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count() or 1


def cap_jobs(requested: int, n_items: int, cores: int | None = None, label: str = "cells") -> tuple[int, str | None]:
    """``(jobs, reason)``: ``requested`` capped at the number of items and at :data:`MAX_JOBS_PER_CORE` per
    core; ``reason`` says why it was capped (None when it was not)."""
    requested = v.positive_int("--jobs", requested)
    cores = cores or available_cores()
    limit = max(1, min(max(1, n_items), MAX_JOBS_PER_CORE * cores))
    if requested <= limit:
        return requested, None
    why = (f"no more workers than the {n_items} {label}" if n_items < MAX_JOBS_PER_CORE * cores else
           f"at most {MAX_JOBS_PER_CORE} per core on {cores} core{'s' if cores > 1 else ''}")
    return limit, f"--jobs {requested} capped at {limit} ({why})"


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):   # pragma: no cover - no libc prctl
        pass


def _worker_init(parent_pid: int) -> None:
    """Pool initializer: die with the parent, ignore SIGINT, one BLAS thread, then unblock signals."""
    die_with_parent()
    if os.getppid() != parent_pid:       # the parent died before prctl took effect
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)


@contextlib.contextmanager
def signals_blocked():
    """Block SIGINT and SIGTERM (they stay pending and are delivered on exit): forked children inherit the
    mask, so they cannot be interrupted before their initializer has installed their own handlers."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def interrupt_on_sigterm():
    """Within the block SIGTERM raises KeyboardInterrupt in the main thread (handled like SIGINT)."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:                   # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def imap(fn: Callable, items: list, *, executor: str = "inline", jobs: int = 1,
         scheduler: str | None = None) -> Iterator[tuple[int, object]]:
    """``(index, fn(item))`` for every item, in the order they finish. Close the generator (or let an
    exception leave the loop inside ``contextlib.closing``) to cancel the remaining work."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    jobs = v.positive_int("jobs", jobs)
    if executor == "inline":
        for i, item in enumerate(items):
            yield i, fn(item)
    elif executor == "processes":
        yield from _pool_imap(fn, items, jobs=jobs)
    else:
        yield from _dask_imap(fn, items, jobs=jobs, scheduler=scheduler)


def _kill_pool(pool) -> None:
    """Cancel what has not started and kill the workers (what they computed and cached stays cached)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        with contextlib.suppress(Exception):
            p.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(timeout=2)


def _pool_imap(fn, items, *, jobs):
    from concurrent.futures import ProcessPoolExecutor, as_completed

    if not items:
        return
    pool, finished = None, False
    try:
        with signals_blocked():          # the workers are forked here, with SIGINT/SIGTERM blocked
            pool = ProcessPoolExecutor(max_workers=min(jobs, len(items)), initializer=_worker_init,
                                       initargs=(os.getpid(),))
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()
        finished = True
    finally:
        if pool is not None:
            if finished:
                pool.shutdown(wait=True)
            else:
                _kill_pool(pool)


def _die_with_parent_plugin():
    """A Dask worker plugin: the worker process dies with the process that started it and ignores SIGINT
    (built here because ``distributed`` is optional and plugins must inherit from its WorkerPlugin)."""
    from distributed import WorkerPlugin

    class DieWithParent(WorkerPlugin):
        name = "die-with-parent"

        def setup(self, worker):
            die_with_parent()
            with contextlib.suppress(ValueError):    # only possible from the worker's main thread
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    return DieWithParent()


def _quiet_dask() -> None:
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _dask_imap(fn, items, *, jobs, scheduler):
    try:
        from distributed import Client, LocalCluster
        from distributed import as_completed as dask_completed
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise ValueError("executor 'dask' needs the optional extra: pip install '.[distributed]'") from exc
    if not items:
        return
    cluster = client = futures = None
    finished = False
    try:
        if scheduler is None:
            cluster = LocalCluster(n_workers=min(jobs, len(items)), threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
            client.register_plugin(_die_with_parent_plugin())
        else:
            try:
                client = Client(scheduler, timeout=10)
            except Exception as exc:  # noqa: BLE001 - OSError, timeouts, garbage handshakes
                raise ValueError(f"--scheduler {scheduler}: cannot connect ({type(exc).__name__}: "
                                 f"{' '.join(str(exc).split())[:120]})") from None
        futures = client.map(fn, items, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in dask_completed(futures):
            yield index[fut.key], fut.result()
        finished = True
    finally:
        if not finished:
            _quiet_dask()
        if client is not None:
            if not finished and futures is not None:
                with contextlib.suppress(Exception):
                    client.cancel(futures, force=True)
            with contextlib.suppress(Exception):
                client.close(timeout=5)
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close(timeout=5)
