"""Distances (experiments/distances.py): properties that mutation testing (scripts/mutation_report.py, run on the
KL / W2 / quenched subset of the module) found unpinned: the quenched estimates against per-draw closed forms
computed here, their Estimate fields, and the checks of a law's fields."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from experiments import distances as D


def _law(M=3, G=2, seed=0):
    rng = np.random.default_rng(seed)
    return SimpleNamespace(mean=rng.normal(size=(M, G)), var=rng.uniform(0.5, 2.0, size=(M, G)),
                           target_mean=np.linspace(-0.5, 0.5, G), target_var=np.linspace(0.8, 1.5, G),
                           multiplicities=np.arange(1, G + 1))


def _kl(a, s2, b, r2):
    """KL(N(a, s2) || N(b, r2)) in one dimension."""
    return 0.5 * (s2 / r2 - 1.0 - np.log(s2 / r2) + (a - b) ** 2 / r2)


@pytest.mark.parametrize("M,G", [(3, 2), (1, 4), (2, 5)])
def test_quenched_kl_and_w2_are_means_of_per_draw_closed_forms(M, G):
    law = _law(M, G)
    k = law.multiplicities
    to = np.sum(k * _kl(law.target_mean, law.target_var, law.mean, law.var), axis=1)       # KL(Q || P_m)
    ot = np.sum(k * _kl(law.mean, law.var, law.target_mean, law.target_var), axis=1)       # KL(P_m || Q)
    w2 = np.sqrt(np.sum(k * ((law.mean - law.target_mean) ** 2
                             + (np.sqrt(law.var) - np.sqrt(law.target_var)) ** 2), axis=1))
    se = (lambda x: x.std(ddof=1) / math.sqrt(M) if M > 1 else 0.0)
    for est, vals, method in [(D.quenched_kl(law), to, "quenched KL (target_output), closed form per draw"),
                              (D.quenched_kl(law, direction="output_target"), ot,
                               "quenched KL (output_target), closed form per draw"),
                              (D.quenched_w2(law), w2, "quenched W2, closed form per draw")]:
        assert est.value == pytest.approx(vals.mean(), rel=1e-12, abs=0)
        assert est.stderr == pytest.approx(se(vals), rel=1e-12, abs=0.0)
        assert (est.n, est.method) == (M, method)
    assert np.max(np.abs(to - ot)) > 0.05                                     # the two directions differ here
    q = D.quenched_tv(law)
    assert q.n == M and q.method.startswith("quenched TV, ") and q.method.endswith(" per draw")
    assert 0.0 <= q.error_bound < 1e-6


def test_law_field_checks_name_the_field():
    law = _law()
    for change, msg in [(dict(mean=None), r"^law must have a field 'mean'"),
                        (dict(var=np.ones((3, 2, 1))), r"^law.mean and law.var must have shape \(n_draws, n_columns\), "
                                                      r"got \(3, 2\) and \(3, 2, 1\)$"),
                        (dict(mean=np.ones(2), var=np.ones((3, 2))), r"^law.mean and law.var must have shape"),
                        (dict(mean=np.ones((0, 2)), var=np.ones((0, 2))),
                         r"^law.mean must contain at least one internal draw \(n_draws M >= 1\), got M = 0$"),
                        (dict(target_var=np.ones(3)), r"^law.target_mean and law.target_var must have shape \(2,\), "
                                                      r"got \(2,\) and \(3,\)$"),
                        (dict(mean=np.full((3, 2), np.nan)), r"^law.mean must be finite")]:
        bad = SimpleNamespace(**{**vars(law), **change})
        if change.get("mean", 0) is None:
            del bad.mean
        with pytest.raises(ValueError, match=msg):
            D.quenched_kl(bad)
    # a law with no columns is still a (trivial) law: zero draws is the error, not zero columns
    empty = SimpleNamespace(mean=np.ones((2, 0)), var=np.ones((2, 0)), target_mean=np.ones(0), target_var=np.ones(0),
                            multiplicities=np.ones(0, dtype=int))
    assert D.quenched_kl(empty).value == 0.0 and D.quenched_kl(empty).n == 2
    with pytest.raises(ValueError, match=r"^direction must be 'target_output' or 'output_target', got 'x'$"):
        D.gaussian_kl(law.mean, law.var, law.target_mean, law.target_var, law.multiplicities, direction="x")
