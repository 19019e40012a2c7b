"""Li & Jiao sampler: properties that mutation testing (scripts/mutation_report.py) found unpinned.

Each test checks one documented property against an independent computation (a closed form, or an explicit
Euler step in the sampler's own coordinate), on a deliberately coarse grid (large intervals) so that a wrong
level, a wrong Picard start or a dropped parameter changes the result by far more than rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.noise import SampleNoise
from experiments.samplers import REGISTRY, CountingScore
from experiments.samplers import _limits as lim
from experiments.samplers.driver import run
from experiments.samplers.li_jiao import (
    PARALLEL_DEFAULTS,
    LiJiao,
    LiJiaoParallel,
    blocks_from_lipschitz,
    schedule,
    t_of_level,
)
from experiments.targets import GroupedGaussian

COARSE = dict(c0=0.5, c1=2.0)          # c = c1 ln T / T = 0.52 at T = 8: a handful of wide intervals


class FixedGaussian:
    """Sample-mode noise whose Gaussian draws are all equal to ``z`` (internal uniforms from ``rng``)."""

    mode = "sample"

    def __init__(self, rng, batch, z=0.0):
        self.base, self.batch, self.z = SampleNoise(rng, batch), batch, z

    def normal(self, n_columns):
        return np.full((self.batch, n_columns), self.z)

    def uniform(self, size=1):
        return self.base.uniform(size)

    def begin_step(self):
        pass


def test_t_of_level_keeps_full_precision_at_both_ends():
    # OU time t with e^{-2t} = abar: t = -ln(abar)/2 = -log1p(-tau)/2. Near tau -> 0, abar rounds to 1.0
    # and only the tau branch has the answer; near abar -> 0, tau rounds to 1.0 and only the abar branch does.
    tau = np.array([1e-17, 1e-12, 1e-3])
    np.testing.assert_allclose(t_of_level(1.0 - tau, tau), -0.5 * np.log1p(-tau), rtol=1e-12)
    assert t_of_level(1.0, 1e-17) == pytest.approx(5e-18, rel=1e-12, abs=0)     # log(abar) would give 0
    abar = np.array([1e-20, 1e-300])
    t = t_of_level(abar, 1.0 - abar)                                        # tau == 1.0 in float64
    np.testing.assert_allclose(t, -0.5 * np.log(abar), rtol=1e-14)


@pytest.mark.parametrize("final", ["nearest", "paper"])
def test_noise_injection_is_the_exact_ou_step_to_the_next_block_and_to_end_time(final):
    T, K = 8, 2
    k = LiJiao(T, K, final=final, **COARSE)
    N, batch = k.N, 5
    aux = k.plan(FixedGaussian(np.random.default_rng(3), batch))
    t = aux["t"]
    y = np.linspace(-2.0, 2.0, batch)[:, None]
    z = 0.7                                                  # every Gaussian draw equals z
    for blk, t_to in ((0, t[:, N // 2:N // 2 + 1]), (K - 1, np.full((batch, 1), k.end_time))):
        j_from = blk * N // 2 + N                             # the block's last node, tau_{blk,N}
        dt = t_to - t[:, j_from:j_from + 1]
        assert np.all(dt > 0)
        # the level the block's own next node would give (tau_{K,0} for the last block) is a different step
        assert np.max(np.abs(t[:, (blk + 1) * N // 2:(blk + 1) * N // 2 + 1] - t_to)) > 1e-3 or blk == 0
        expected = np.exp(-dt) * y + np.sqrt(1.0 - np.exp(-2.0 * dt)) * z      # (11a), closed form
        out = k.inject(y, aux, blk, j_from, FixedGaussian(np.random.default_rng(0), batch, z))
        np.testing.assert_allclose(out, expected, rtol=1e-12)
    # the output level is deterministic and is the one documented for `final`
    j_end = T + N // 2 if final == "nearest" else T
    assert k.tau_end == k.b[j_end]
    assert k.end_time == pytest.approx(-0.5 * math.log1p(-k.b[j_end]), rel=1e-12, abs=0)


def test_first_picard_sweep_from_the_scaled_start_is_one_euler_step_in_u():
    # With g(Y, tau) = s / (2 (1 - tau)^{3/2}) = phi(u), u = Y / sqrt(1 - tau), the constant-u start makes every
    # g_i equal phi(U0), so one sweep gives u_N = U0 + phi(U0) (tau_{k,0} - tau_{k,N}) (the weights of (11b)
    # add up to tau_{k,0} - tau_{k,N}). The "copy" start (Y_i = Y_k) does not.
    T, K, batch = 8, 2, 4
    phi = np.sin

    def fn(x, t):
        abar = np.exp(-2.0 * t)
        return 2.0 * abar ** 1.5 * phi(x / np.sqrt(abar))

    y0 = np.linspace(-1.5, 2.5, batch)[:, None]
    outs = {}
    for init in ("scaled", "copy"):
        k = LiJiaoParallel(T, K, sweeps=1, picard_init=init, **COARSE)
        N = k.N
        aux = k.plan(FixedGaussian(np.random.default_rng(11), batch))
        (outs[init],) = k.step((y0,), aux, 0, FixedGaussian(np.random.default_rng(0), batch), CountingScore(fn, batch))
    abar, tau, t = aux["abar"], aux["tau"], aux["t"]
    U0 = y0 / np.sqrt(abar[:, :1])
    y_N = np.sqrt(abar[:, N:N + 1]) * (U0 + phi(U0) * (tau[:, :1] - tau[:, N:N + 1]))
    expected = np.exp(-(t[:, N // 2:N // 2 + 1] - t[:, N:N + 1])) * y_N        # zero injected noise
    np.testing.assert_allclose(outs["scaled"], expected, rtol=1e-10)
    assert np.max(np.abs(outs["copy"] - expected)) > 1e-2                      # the check can fail


def test_class_factory_and_registry_defaults_agree():
    T = 40
    spec = REGISTRY["li_jiao"]
    for k in (spec.make(T), LiJiao(T)):
        assert (k.K, k.c0, k.c1, k.final) == (spec.defaults["K"], spec.defaults["c0"], spec.defaults["c1"],
                                              spec.defaults["final"])
    pspec = REGISTRY["li_jiao_parallel"]
    assert pspec.defaults == PARALLEL_DEFAULTS
    K_expected = math.ceil(PARALLEL_DEFAULTS["lipschitz"] * math.log(T))
    for k in (pspec.make(T), LiJiaoParallel(T)):
        assert (k.c0, k.c1, k.sweeps, k.final, k.picard_init) == (
            PARALLEL_DEFAULTS["c0"], PARALLEL_DEFAULTS["c1"], PARALLEL_DEFAULTS["sweeps"], PARALLEL_DEFAULTS["final"],
            "scaled")
        assert k.K == K_expected and k.T_iter == K_expected * math.ceil(T / K_expected)
    # `final` reaches the parallel kernel through the factory and the class
    ref = LiJiao(T, 4, final="paper")
    for k in (pspec.make(T, K=4, final="paper"), LiJiaoParallel(T, 4, final="paper")):
        assert k.final == "paper" and k.tau_end == ref.tau_end and k.end_time == ref.end_time
    assert LiJiao(T, 4).tau_end < ref.tau_end                   # 'nearest' ends at a less noisy level


def test_parallel_nfe_with_defaults_counts_the_rounded_up_T():
    # default K = ceil(10 ln 40) = 37 blocks: T is rounded up to 74, nfe = 2 * 74 * 8 sweeps
    spec = REGISTRY["li_jiao_parallel"]
    k = spec.make(40)
    assert k.T_iter == 74 and k.sweeps == 8
    assert spec.nfe(40) == 2.0 * 74 * 8
    res = run(k, GroupedGaussian([0.5, 2.0], [0.0, 1.0], [1, 1]), 3, np.random.default_rng(0))
    assert np.all(res.nfe == spec.nfe(40))
    assert spec.nfe(40, K=4, sweeps=3) == 2.0 * 40 * 3             # an explicit K keeps T


def test_block_count_limit_is_inclusive_and_its_errors_name_the_cause():
    M = lim.MAX_STEPS
    assert blocks_from_lipschitz(M, 0.5 / math.log(M)) == (M, 1)            # K = 1: T_eff = MAX_STEPS is allowed
    with pytest.raises(ValueError, match="lipschitz"):
        blocks_from_lipschitz(M, 2.5 / math.log(M))                         # K = 3: T_eff = M + 2
    with pytest.raises(ValueError, match=r"^lipschitz must .*\(K = ceil\(L ln T\) blocks and T is rounded up to a "
                                         r"multiple of K\)$"):
        LiJiao(40, None, lipschitz=0.0)
    with pytest.raises(ValueError, match=r"^sweeps must .*\(Picard sweeps per block\)$"):
        LiJiaoParallel(40, 4, sweeps=lim.MAX_FINE + 1)
    assert LiJiaoParallel(40, 4, sweeps=lim.MAX_FINE).sweeps == lim.MAX_FINE


def test_schedule_and_kernel_validation_name_the_parameter_and_accept_the_boundaries():
    for args, msg in [((1, 0, 1.0, 1.0), r"^T_iter must be an integer >= 2"),
                      ((4, -1, 1.0, 1.0), r"^n_tail must be an integer >= 0"),
                      ((4, 0, 0.0, 1.0), r"^c0 must be > 0"),
                      ((4, 0, 1.0, 0.0), r"^c1 must be > 0"),
                      ((2, 0, 1.0, 2.0 / math.log(2)), r"c1 \* ln\(T_iter\) / T_iter must be < 1"),    # c == 1
                      ((8, 0, 1.0, 1.5 * 8 / math.log(8)), r"c1 \* ln\(T_iter\) / T_iter must be < 1"),  # c == 1.5
                      ((10**6, 0, 60.0, 1e-3), r"^T_iter \*\* -c0 underflows to 0; lower c0"),
                      ((1000, 0, 1.0, 0.99 * 1000 / math.log(1000)),
                       r"^the Li & Jiao grid reached tau = 0 in float64; lower c1 - c0 or T_iter$")]:
        with pytest.raises(ValueError, match=msg):
            schedule(*args)
    a, b, w = schedule(2, 0, 1.0, 1.0)                     # the smallest T_iter and no tail are allowed
    assert a.size == 4 and np.all(w > 0) and np.all(b > 0)
    for kw, msg in [(dict(T_iter=1, K=1), r"^T_iter must be an integer >= 2"),
                    (dict(T_iter=40, K=None), r"^K must be an integer >= 1, or None together with lipschitz > 0$"),
                    (dict(T_iter=40, K=0), r"^K must be an integer >= 1"),
                    (dict(T_iter=40, K=4, c0=0.0), r"^c0 must be > 0"),
                    (dict(T_iter=40, K=4, c1=-1.0), r"^c1 must be > 0")]:
        with pytest.raises(ValueError, match=msg):
            LiJiao(**kw)
    assert LiJiao(2, 1, c0=0.5, c1=1.0).N == 4              # T_iter = 2 is allowed
    assert LiJiao(8, 8, **COARSE).N == 2                    # K = T_iter is allowed (N = 2)
