"""Analysis layer: pure functions of the tidy result tables (``errors.csv``, ``nstar.csv``).

* :mod:`analysis.fits`: log-log fits of N*(d, eps) (joint, at fixed d, at fixed eps, local slopes);
* :mod:`analysis.verdicts`: measured exponents against each registered paper claim;
* :mod:`analysis.figures`: matplotlib figures (``make_all(results_dir, figures_dir)``);
* :mod:`analysis.tables`: markdown tables for ``paper_notes.md``.

Nothing here runs a sampler.
"""
