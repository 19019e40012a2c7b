"""Law mode (experiments/laws.py): properties that mutation testing (scripts/mutation_report.py) found unpinned:
the law's metadata, the default seed and draw count, and the input checks."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.laws import gaussian_law
from experiments.samplers import get
from experiments.targets import GroupedGaussian

TARGET = GroupedGaussian([0.5, 2.0], [0.0, 1.0], [3, 7])


@pytest.mark.parametrize("start", ["exact", "prior"])
def test_law_carries_the_reference_marginal_and_its_provenance(start):
    k = get("li_jiao").make(40, K=4, c0=2.0, c1=4.0)
    law = gaussian_law(k, TARGET, n_draws=3, rng=np.random.default_rng(1), start=start)
    tm, tv = TARGET.marginal_params(k.end_time)
    assert law.t_end == k.end_time and law.sampler == "li_jiao" and law.start == start
    np.testing.assert_array_equal(law.multiplicities, TARGET.multiplicities)
    assert law.multiplicities is not TARGET.multiplicities
    np.testing.assert_array_equal(law.target_mean, tm)
    np.testing.assert_array_equal(law.target_var, tv)
    assert law.mean.shape == (3, 2) and np.all(law.nfe == 80)


def test_default_is_one_draw_with_seed_zero():
    k = get("li_jiao").make(40, K=4, c0=2.0, c1=4.0)
    a, b = gaussian_law(k, TARGET), gaussian_law(k, TARGET)
    c = gaussian_law(k, TARGET, rng=np.random.default_rng(0))
    assert a.mean.shape == (1, 2)
    np.testing.assert_array_equal(a.var, b.var)
    np.testing.assert_array_equal(a.var, c.var)
    # the variance, not the mean: from the exact start the mean follows the reference mean whatever the draw
    # (the steps are affine and consistent), so two draws' means differ only by rounding, if at all
    other = gaussian_law(k, TARGET, rng=np.random.default_rng(1))
    assert np.all(np.abs(other.var / a.var - 1) > 0.01)


def test_law_mode_input_checks_name_the_problem():
    k = get("ddpm").make(10)

    class NotGaussian:
        is_gaussian = False

    for target in (NotGaussian(), object()):                 # a target that does not say is not Gaussian
        with pytest.raises(ValueError, match=r"^target must be Gaussian \(affine score\) for law mode; use sample "
                                             r"mode otherwise$"):
            gaussian_law(k, target)
    with pytest.raises(ValueError, match=r"^start must be one of \('exact', 'prior'\), got 'x'$"):
        gaussian_law(k, TARGET, start="x")
    with pytest.raises(ValueError, match=r"^n_draws must be an integer >= 1"):
        gaussian_law(k, TARGET, n_draws=0)


def test_a_kernel_whose_init_disagrees_with_its_state_size_is_named():
    k = get("ddpm").make(10)
    k.state_size = 2                                         # init returns one array
    with pytest.raises(RuntimeError, match=r"^kernel 'ddpm' declares state_size=2 but init returned 1 arrays$"):
        gaussian_law(k, TARGET)
