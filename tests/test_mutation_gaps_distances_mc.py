"""The annealed-TV Monte Carlo (experiments/distances.py: _draw_suffstats, _mixture_llr_robust,
annealed_tv_stability): what mutation testing found unpinned. The log-likelihood ratio of the robust route
against the direct Gaussian formula evaluated here on the replayed draws (near and far groups, k = 1, 2
and 5), and the nested subsets of the stability check replayed call by call."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from experiments import distances as D


def _replay_draws(seed, n, rho_n, Dlt_n, k):
    """U = Dlt_n + sqrt(rho_n) z and T = rho_n chi^2_{k-1} from the documented order of draws."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, k.size))
    big = k > 1
    chi = np.zeros((n, k.size))
    chi[:, big] = rng.chisquare((k[big] - 1).astype(float), size=(n, int(big.sum())))
    return Dlt_n + np.sqrt(rho_n) * z, rho_n * chi


def _direct_llr(U, T, rho, Dlt, k):
    """log p_m/q per draw, summed over groups: -k/2 log r - (T + (U - D)^2)/(2 r) + (T + U^2)/2."""
    U, T = U[:, None, :], T[:, None, :]
    r, D_ = rho[None], Dlt[None]
    return np.sum(-0.5 * k * np.log(r) - (T + (U - D_) ** 2) / (2 * r) + 0.5 * (T + U * U), axis=-1)


def test_robust_llr_equals_the_direct_formula_on_replayed_draws():
    k = np.array([1, 2, 5])
    n = 6
    # evaluated laws (M = 3): near the target in every group, far in group 1 (ratio 3), far in group 2
    # (ratio 0.3 and a shift); the draws' own laws differ from the evaluated ones
    rho = np.array([[1.1, 0.9, 1.3], [3.0, 1.2, 0.8], [1.0, 0.7, 0.3]])
    Dlt = np.array([[0.2, -0.1, 0.4], [0.0, 0.3, -0.2], [0.1, 0.2, 1.5]])
    rho_n = np.tile([1.5, 0.6, 2.5], (n, 1))
    Dlt_n = np.tile([0.3, -0.4, 0.5], (n, 1))
    got = D._mixture_llr_robust(n, rho_n, Dlt_n, rho, Dlt, k, np.random.default_rng(11))
    U, T = _replay_draws(11, n, rho_n, Dlt_n, k)
    assert got.shape == (n, 3)
    assert got == pytest.approx(_direct_llr(U, T, rho, Dlt, k), rel=1e-11, abs=1e-12)
    # the fast route (all laws near the target) sees the same draws and agrees as well
    near_rho = rho.copy()
    near_rho[near_rho > 2.0], near_rho[near_rho < 0.5] = 1.9, 0.6
    fast = D._llr(*D._draw_suffstats(n, rho_n - 1.0, Dlt_n, k, np.random.default_rng(11)), near_rho - 1.0, Dlt, k)
    assert fast == pytest.approx(_direct_llr(U, T, near_rho, Dlt, k), rel=1e-11, abs=1e-12)


def test_robust_llr_uses_the_direct_form_where_the_w_form_would_cancel():
    # a variance ratio 1e-12 at k = 1e6: the W form loses everything to 1 + delta; the direct form not
    k = np.array([10**6])
    rho, Dlt = np.array([[1e-12]]), np.array([[3.0]])
    n = 4
    rho_n, Dlt_n = np.full((n, 1), 1e-12), np.full((n, 1), 3.0)
    got = D._mixture_llr_robust(n, rho_n, Dlt_n, rho, Dlt, k, np.random.default_rng(2))
    U, T = _replay_draws(2, n, rho_n, Dlt_n, k)
    assert got == pytest.approx(_direct_llr(U, T, rho, Dlt, k), rel=1e-12, abs=0)
    assert np.all(got > 1e7)                                 # a huge, finite log-likelihood ratio


def test_stability_rows_are_annealed_tv_on_the_first_quarter_half_and_all_draws_in_turn():
    M = 8
    r = np.random.default_rng(1)
    law = SimpleNamespace(mean=r.normal(0, 0.3, (M, 2)), var=np.exp(r.normal(0, 0.2, (M, 2))),
                          target_mean=np.zeros(2), target_var=np.ones(2), multiplicities=np.array([3, 4]))
    rows = D.annealed_tv_stability(law, n_samples=400, rng=np.random.default_rng(5))
    replay = np.random.default_rng(5)
    expect = [(m, D.annealed_tv(law, n_samples=400, rng=replay, n_draws=m)) for m in (2, 4, 8)]
    assert rows == expect
    assert all(type(m) is int for m, _ in rows)                       # draw counts, not 2.0 (M / 4)
    assert len({e.value for _, e in rows}) == 3                       # three different subsets
    small = SimpleNamespace(**{**vars(law), "mean": law.mean[:3], "var": law.var[:3]})
    assert [m for m, _ in D.annealed_tv_stability(small, n_samples=400)] == [1, 3]    # max(1, M // 4) = 1
    assert D.annealed_tv_stability(small, n_samples=400) == \
        D.annealed_tv_stability(small, n_samples=400, rng=np.random.default_rng(0))  # default: seed 0
    default_n = D.annealed_tv_stability(small, rng=np.random.default_rng(0))[-1][1]
    assert default_n.n == 100_000                                                     # the default sample size
