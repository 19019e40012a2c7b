"""Tests of the worked example of "How to add a sampler" (paper_notes.md): RK4 on the PF-ODE."""

import numpy as np
import pytest

from experiments.laws import gaussian_law
from experiments.samplers import get
from experiments.samplers._grid import build_grid
from experiments.samplers.driver import run
from experiments.samplers.pf_ode_rk4 import PFODERK4
from experiments.targets import GroupedGaussian

TARGET = GroupedGaussian([0.05, 0.5, 3.0], [1.0, -0.5, 2.0], [1, 1, 1])


def sqrt_kl(law):
    """sqrt of KL(target || output), summed over the columns (closed form for 1-D Gaussians)."""
    m, v = law.mean[0], law.var[0]
    mt, vt = law.target_mean, law.target_var
    kl = 0.5 * (vt / v + (m - mt) ** 2 / v - 1.0 + np.log(v / vt))
    return float(np.sqrt(kl.sum()))


def local_orders(kernel_cls, steps=(8, 16, 32, 64, 128)):
    err = [sqrt_kl(gaussian_law(kernel_cls(build_grid(n)), TARGET)) for n in steps]
    return -np.diff(np.log(err)) / np.log(2), err


def test_converges_at_fourth_order():
    orders, err = local_orders(PFODERK4)
    assert np.all(np.diff(err) < 0)                         # the error falls as cost grows
    # the order band separates neighbouring integer orders: 4 +- 0.5 on the last, settled, doublings
    assert abs(orders[-1] - 4) < 0.5 and abs(orders[-2] - 4) < 0.5, orders


class _BrokenRK4(PFODERK4):
    """Negative control: the classical weights (1, 2, 2, 1)/6 replaced by (1, 1, 1, 1)/4."""

    name = "pf_ode_rk4_broken"

    def step(self, state, aux, k, noise, score):
        (x,) = state
        t, t_next = self.ts[k], self.ts[k + 1]
        h, t_mid = t - t_next, 0.5 * (t + t_next)
        f = lambda y, s: y + score(y, s)  # noqa: E731
        k1 = f(x, t)
        k2 = f(x + 0.5 * h * k1, t_mid)
        k3 = f(x + 0.5 * h * k2, t_mid)
        k4 = f(x + h * k3, t_next)
        return (x + h / 4.0 * (k1 + k2 + k3 + k4),)


def test_broken_weights_fail_the_order_check():
    orders, _ = local_orders(_BrokenRK4)
    assert abs(orders[-1] - 4) >= 0.5, orders


def test_nfe_matches_documented_cost_and_same_seed_same_bits():
    spec = get("pf_ode_rk4")
    for steps in (1, 5, 9):
        res = run(spec.make(steps), TARGET, 3, np.random.default_rng(0))
        assert np.all(res.nfe == spec.nfe(steps))
    a = run(spec.make(7), TARGET, 5, np.random.default_rng(3)).x
    b = run(spec.make(7), TARGET, 5, np.random.default_rng(3)).x
    assert np.array_equal(a, b)


def test_claim_and_theory_preset():
    spec = get("pf_ode_rk4")
    assert spec.claim.metric == "tv" and spec.claim.d_exp == 1 + 1 / 4 * 1 and float(spec.claim.eps_exp) == 0.25
    assert spec.make(4, **spec.theory(1000, 0.1, 10.0)).n_steps == 4


@pytest.mark.parametrize("steps", [0, -3, 2.5])
def test_bad_steps_rejected(steps):
    with pytest.raises(ValueError, match="steps"):
        get("pf_ode_rk4").make(steps)
