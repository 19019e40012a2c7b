"""python -m experiments.scaling: measure N*(d, eps) for every sampler, fit exponents, set them beside the claims.

The command is thin, and split by concern:

========================  ==========================================================================
module                    concern
========================  ==========================================================================
experiments.cli           the command line: options, checks before any work, commands (the main
                          study, ``STUDY``, ``report``, ``cache``), one-line errors, the summary
experiments.planning      profile + options -> scans (experiments/cells.py); the cost model
experiments.runner        running scans through an executor with progress; N* tables
experiments.executors     inline / process pool / Dask; workers that die with their parent
experiments.outputs       the output set: staged, swapped in at once, with a manifest
experiments.progress      progress weighted by expected work, on a terminal or in a log
experiments.cache         the on-disk cache of finished cells
========================  ==========================================================================

``experiments.scaling.main(argv)`` runs a command line and returns its exit status. The names this module
exposed before the split (``plan_scans``, ``feasible``, ``default_jobs``, ``nstar_table``, ...) are still
importable from it (lazily, so that ``--help`` stays fast).
"""

from __future__ import annotations

import sys

from experiments.cli import build_parser, main  # noqa: F401

#: names this module exposed before the split (other modules import them from here), and where they live now
_LAZY = {"plan_scans": "experiments.planning", "feasible": "experiments.planning",
         "METRIC_CHOICES": "experiments.planning", "default_jobs": "experiments.executors",
         "nstar_table": "experiments.complexity", "cost_ladder": "experiments.complexity",
         "Scan": "experiments.cells", "run_scan": "experiments.cells", "code_version": "experiments.cells",
         "EXECUTORS": "experiments.executors", "imap": "experiments.executors",
         "atomic_write_text": "experiments.cache", "REGISTRY": "experiments.samplers",
         "get_sampler": "experiments.samplers", "DEFAULT_DELTA": "experiments.samplers._grid",
         "TARGETS": "experiments.studies", "get_profile": "experiments.studies", "get_target": "experiments.studies"}
_RENAMED = {"default_jobs": "available_cores", "get_sampler": "get"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(_LAZY[name])
        return getattr(module, _RENAMED.get(name, name))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    sys.exit(main())
