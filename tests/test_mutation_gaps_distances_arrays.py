"""tv_isotropic (experiments/distances.py) on array inputs: broadcasting, the shape of the answer, and
entries that take different routes in one call (erf half-space, ncx2 ball, CF inversion, Bhattacharyya
midpoint), each equal to the same entry computed alone. Mutation testing found the array handling unpinned."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from experiments import distances as D


def test_every_entry_of_a_broadcast_call_equals_the_scalar_call():
    # rows (a, k): (0, 1), (0.3, 5), (200, 1e12): the last row is far (Bhattacharyya midpoint); columns s2:
    # equal variances (erf half-space), two balls (ncx2), a ratio 1 + 1e-7 whose noncentrality is beyond
    # ncx2's range (CF inversion)
    a = np.array([[0.0], [0.3], [200.0]])
    s2 = np.array([1.0, 1.3, 0.7, 1.0 + 1e-7])
    k = np.array([[1], [5], [10**12]])
    out = D.tv_isotropic(a, s2, 0.1, 1.0, k)
    assert out.shape == (3, 4) and out.dtype == np.float64
    for i in range(3):
        for j in range(4):
            alone = D.tv_isotropic(float(a[i, 0]), float(s2[j]), 0.1, 1.0, int(k[i, 0]))
            assert isinstance(alone, float)
            assert out[i, j] == alone
    # the half-space entries against erf: TV = erf(|a - b| sqrt(k) / (2 sqrt(2 s2)))
    assert out[1, 0] == pytest.approx(special.erf(0.2 * np.sqrt(5) / (2 * np.sqrt(2.0))), abs=1e-15)
    assert np.all(out[2] == pytest.approx(1.0, abs=1e-10))
    assert np.isnan(D._tv_iso_ncx2(0.3, 1.0 + 1e-7, 0.1, 1.0, 5))       # so that entry [1, 3] came from the CF


def test_shapes_of_scalar_vector_and_zero_dimensional_inputs():
    assert isinstance(D.tv_isotropic(0.1, 1.2, 0.0, 1.0, 3), float)
    assert isinstance(D.tv_isotropic(np.float64(0.1), np.array(1.2), 0.0, 1.0, np.int64(3)), float)
    v = D.tv_isotropic([0.1, 0.2], 1.2, 0.0, 1.0, 3)
    assert isinstance(v, np.ndarray) and v.shape == (2,)
    assert v[1] == D.tv_isotropic(0.2, 1.2, 0.0, 1.0, 3) and v[0] < v[1]
    assert D.tv_isotropic(np.zeros((2, 0)), 1.0, 0.0, 1.0, 3).shape == (2, 0)


def test_bad_array_inputs_name_the_parameter():
    with pytest.raises(ValueError, match=r"^mean_p, var_p, mean_q, var_q, k must broadcast together: "):
        D.tv_isotropic([0.1, 0.2], [1.0, 1.1, 1.2], 0.0, 1.0, 3)
    with pytest.raises(ValueError, match=r"^k "):
        D.tv_isotropic([0.1, 0.2], 1.0, 0.0, 1.0, [3, 0])
    with pytest.raises(ValueError, match=r"^k "):
        D.tv_isotropic(0.1, 1.0, 0.0, 1.0, 2.5)
    with pytest.raises(ValueError, match=r"^var_q must be > 0"):
        D.tv_isotropic(0.1, 1.0, 0.0, [1.0, -1.0], 3)
    with pytest.raises(ValueError, match=r"^mean_q must be finite"):
        D.tv_isotropic(0.1, 1.0, [0.0, np.nan], 1.0, 3)


def test_quenched_tv_falls_back_to_the_cf_where_ncx2_fails():
    # one group, a variance ratio 1 + 1e-7: ncx2's noncentrality is out of range, the CF inversion answers
    from types import SimpleNamespace
    law = SimpleNamespace(mean=np.array([[0.3], [0.1]]), var=np.array([[1.0 + 1e-7], [1.3]]),
                          target_mean=np.array([0.1]), target_var=np.array([1.0]), multiplicities=np.array([5]))
    q = D.quenched_tv(law)
    per_draw = [D.tv_isotropic(0.3, 1.0 + 1e-7, 0.1, 1.0, 5), D.tv_isotropic(0.1, 1.3, 0.1, 1.0, 5)]
    assert q.value == pytest.approx(np.mean(per_draw), abs=1e-12)
    assert "CF inversion where ncx2 fails" in q.method
