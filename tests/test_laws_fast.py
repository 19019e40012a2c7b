"""The fast law mode (experiments.laws) against a straightforward reference kept here.

The reference is the law-mode driver as it was before the speed-up, copied: draw-major rows
(``experiments.noise.LawNoise``, row ``m * P + p``), affine coefficients read off with ``np.stack`` /
``transpose``, and the push ``mean' = A mean + b``, ``cov' = A cov A^T + C C^T`` with ``np.matmul`` on
``(draw, column, s, s)`` arrays; the score is the target's public ``score``.

Agreement criterion, for every registered sampler at a small cost on ``gauss_aniso`` (d = 1000) with
1 and 3 internal draws: ``|var - var_ref| <= 1e-12 var_ref`` and ``|mean - mean_ref| <= 1e-12 max(|mean_ref|,
sd_ref)`` (the law's own scale, so that a mean near 0 is not divided by ~0), every (draw, column), and
NFE / rounds equal. The same comparison must reject deliberately broken pushes (negative controls).
"""

from __future__ import annotations

import numpy as np
import pytest

from experiments import laws
from experiments.noise import LawNoise, ProbeMajorLawNoise
from experiments.samplers import BUILTIN, REGISTRY, CountingScore, Kernel, NonFiniteStateError
from experiments.samplers.driver import guarded_step
from experiments.score_error import PerturbedGaussian
from experiments.studies import get_target
from experiments.targets import GroupedGaussian

RTOL = 1e-12
LADDER = (2, 4, 5, 8, 10, 16, 20, 40, 80)
TARGET = get_target("gauss_aniso").at(1000)


# -- the reference (the pre-speed-up law mode, copied) --------------------------------------------

class RefProber:
    def __init__(self, n_draws, state_size, draws_per_step, n_columns):
        self.M, self.s, self.q, self.G = n_draws, state_size, draws_per_step, n_columns
        self.P = 1 + state_size + draws_per_step
        self.first_draw_row = 1 + state_size

    def inputs(self, in_size):
        rows = []
        for j in range(in_size):
            a = np.zeros((self.M, self.P, self.G))
            a[:, 1 + j, :] = 1.0
            rows.append(a.reshape(self.M * self.P, self.G))
        return tuple(rows)

    def coefficients(self, out, in_size):
        rows = np.stack([np.broadcast_to(o, (self.M * self.P, self.G)) for o in out])      # (s', M*P, G)
        rows = rows.reshape(len(out), self.M, self.P, self.G).transpose(1, 3, 0, 2)      # (M, G, s', P)
        b = rows[..., 0]                                                                   # (M, G, s')
        A = rows[..., 1:1 + in_size] - b[..., None]                                        # (M, G, s', in)
        C = rows[..., self.first_draw_row:self.first_draw_row + self.q] - b[..., None]     # (M, G, s', q)
        return A, b, C


def ref_push(A, b, C, mean, cov):
    mean = (A @ mean[..., None])[..., 0] + b
    At = np.swapaxes(A, -1, -2)
    cov = A @ cov @ At + C @ np.swapaxes(C, -1, -2)
    return mean, cov


def push_without_noise(A, b, C, mean, cov):
    """Negative control: the C C^T term dropped."""
    return ref_push(A, b, np.zeros_like(C), mean, cov)


def push_transposed(A, b, C, mean, cov):
    """Negative control: A^T in place of A."""
    return ref_push(np.swapaxes(A, -1, -2) if A.shape[-1] == A.shape[-2] else A, b, C, mean, cov)


def reference_law(kernel, target, n_draws, seed, start="exact", push=ref_push):
    rng = np.random.default_rng(seed)
    G = target.n_columns
    pr = RefProber(n_draws, kernel.state_size, kernel.draws_per_step, G)
    noise = LawNoise(rng, n_draws, pr.P, pr.first_draw_row, kernel.draws_per_step)
    score = CountingScore(target.score, n_draws * pr.P)
    aux = kernel.plan(noise)
    t0 = np.asarray(kernel.start_time(aux), dtype=float)
    t0 = np.full(n_draws, float(t0)) if t0.ndim == 0 else t0.reshape(-1)[:: pr.P]
    if start == "exact":
        m0, var0 = target.marginal_params(t0)
    else:
        m0, var0 = np.zeros((n_draws, G)), np.ones((n_draws, G))
    mean, cov = m0[..., None], var0[..., None, None]
    noise.begin_step()
    state = kernel.init(pr.inputs(1)[0], aux, noise)
    mean, cov = push(*pr.coefficients(state, 1), mean, cov)
    s = len(state)
    probe_state = pr.inputs(s)
    for k in range(kernel.n_steps):
        new_state = guarded_step(kernel, probe_state, aux, k, noise, score)
        mean, cov = push(*pr.coefficients(new_state, s), mean, cov)
    out = kernel.output(probe_state, aux)
    mean, cov = push(*pr.coefficients((out,), s), mean, cov)
    return mean[..., 0], cov[..., 0, 0], score.calls[:: pr.P], score.rounds[:: pr.P]


# -- helpers ---------------------------------------------------------------------------------------

def small_kernel(name):
    """The sampler at the smallest cost of LADDER at which it can be built."""
    spec = REGISTRY[name]
    for cost in LADDER:
        try:
            return spec.make(cost)
        except ValueError:
            continue
    raise AssertionError(f"no cost in {LADDER} builds {name!r}")


def relative_differences(law, ref):
    """(mean, variance) relative differences, as defined in the module docstring."""
    mean, var = ref[0], ref[1]
    assert law.mean.shape == mean.shape and law.var.shape == var.shape
    d_mean = np.max(np.abs(law.mean - mean) / np.maximum(np.abs(mean), np.sqrt(var)))
    d_var = np.max(np.abs(law.var - var) / var)
    return float(d_mean), float(d_var)


def agrees(law, ref):
    d_mean, d_var = relative_differences(law, ref)
    return d_mean <= RTOL and d_var <= RTOL


# -- the fast law mode equals the reference -------------------------------------------------------

@pytest.mark.parametrize("n_draws", [1, 3])
@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_fast_law_matches_reference(name, n_draws):
    kernel = small_kernel(name)
    law = laws.gaussian_law(kernel, TARGET, n_draws=n_draws, rng=np.random.default_rng(7))
    ref = reference_law(kernel, TARGET, n_draws, 7)
    d_mean, d_var = relative_differences(law, ref)
    assert d_mean <= RTOL and d_var <= RTOL, (name, d_mean, d_var)
    np.testing.assert_array_equal(law.nfe, ref[2])
    np.testing.assert_array_equal(law.rounds, ref[3])
    assert law.mean.shape == law.var.shape == (n_draws, TARGET.n_columns)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_fast_law_with_shared_score_times_matches_reference(name, monkeypatch):
    # the shared-time score is used from _SHARED_TIME_MIN_DRAWS draws on: lower the bar to test it cheaply
    monkeypatch.setattr(laws, "_SHARED_TIME_MIN_DRAWS", 1)
    kernel = small_kernel(name)
    law = laws.gaussian_law(kernel, TARGET, n_draws=3, rng=np.random.default_rng(5))
    assert agrees(law, reference_law(kernel, TARGET, 3, 5))


@pytest.mark.parametrize("name", ["li_jiao", "ddram", "gupta_cai_chen", "plmc"])
def test_fast_law_matches_reference_with_many_draws(name):
    kernel = small_kernel(name)
    n_draws = laws._SHARED_TIME_MIN_DRAWS
    assert isinstance(laws._law_score(TARGET, n_draws, 4), laws._SharedTimeScore)
    law = laws.gaussian_law(kernel, TARGET, n_draws=n_draws, rng=np.random.default_rng(8))
    assert agrees(law, reference_law(kernel, TARGET, n_draws, 8))


@pytest.mark.parametrize("name", ["li_jiao", "ddram", "ulmc", "pulmc"])
def test_prior_start_and_a_subclassed_target_match_reference(name):
    kernel = small_kernel(name)
    law = laws.gaussian_law(kernel, TARGET, n_draws=3, rng=np.random.default_rng(3), start="prior")
    assert agrees(law, reference_law(kernel, TARGET, 3, 3, start="prior"))
    # a GroupedGaussian subclass with its own score_trusted goes through that, not the shared-time path
    perturbed = PerturbedGaussian(TARGET, 0.3, alpha=[1.0, -0.5], beta=[0.2, 0.7])
    assert not isinstance(laws._law_score(perturbed, 10**4, 4), laws._SharedTimeScore)
    law = laws.gaussian_law(kernel, perturbed, n_draws=3, rng=np.random.default_rng(3))
    assert agrees(law, reference_law(kernel, perturbed, 3, 3))


@pytest.mark.parametrize("name", ["ddpm", "li_jiao", "gupta_cai_chen", "pulmc"])
def test_general_matmul_push_matches_reference(name, monkeypatch):
    # no registered kernel has more than 3 state arrays: force the large-state path to test it
    monkeypatch.setattr(laws, "_SMALL_STATE", 0)
    kernel = small_kernel(name)
    law = laws.gaussian_law(kernel, TARGET, n_draws=3, rng=np.random.default_rng(11))
    assert agrees(law, reference_law(kernel, TARGET, 3, 11))


# -- negative controls: the same comparison rejects broken pushes --------------------------------

@pytest.mark.parametrize("name", ["ddpm", "li_jiao", "gupta_cai_chen"])
def test_comparison_detects_a_push_without_the_noise_term(name):
    kernel = small_kernel(name)
    law = laws.gaussian_law(kernel, TARGET, n_draws=3, rng=np.random.default_rng(7))
    broken = reference_law(kernel, TARGET, 3, 7, push=push_without_noise)
    assert not agrees(law, broken)
    assert relative_differences(law, broken)[1] > 1e-3                 # far outside rounding


@pytest.mark.parametrize("name", ["li_jiao", "gupta_cai_chen"])
def test_comparison_detects_a_transposed_state_map(name):
    kernel = small_kernel(name)
    law = laws.gaussian_law(kernel, TARGET, n_draws=3, rng=np.random.default_rng(7))
    assert not agrees(law, reference_law(kernel, TARGET, 3, 7, push=push_transposed))


# -- pieces ----------------------------------------------------------------------------------------

def test_probe_major_noise_is_law_noise_with_rows_reordered():
    M, P, f, q = 3, 4, 2, 2
    a = LawNoise(np.random.default_rng(5), M, P, f, q)
    b = ProbeMajorLawNoise(np.random.default_rng(5), M, P, f, q)
    perm = (np.arange(M)[None, :] * P + np.arange(P)[:, None]).reshape(-1)   # probe-major row -> draw-major row
    np.testing.assert_array_equal(b.uniform(5), a.uniform(5)[perm])
    np.testing.assert_array_equal(b.bernoulli(0.5, 3), a.bernoulli(0.5, 3)[perm])
    for _ in range(q):
        np.testing.assert_array_equal(b.normal(2), a.normal(2)[perm])
    with pytest.raises(RuntimeError, match="draws_per_step"):
        b.normal(2)
    b.begin_step()
    assert b.normal(2)[f * M:(f + 1) * M].min() == 1.0


class RecordingRandom:
    """A duck-typed source of internal draws with only ``random(shape)``; records the shapes asked for."""

    def __init__(self, seed):
        self.gen, self.shapes = np.random.default_rng(seed), []

    def random(self, shape):
        self.shapes.append(tuple(shape))
        return self.gen.random(shape)


@pytest.mark.parametrize("name", ["li_jiao", "ddram", "gupta_cai_chen"])
def test_internal_draws_use_only_rng_random_of_shape_n_draws(name):
    kernel = small_kernel(name)
    duck = RecordingRandom(9)
    law = laws.gaussian_law(kernel, TARGET, n_draws=4, rng=duck)
    assert duck.shapes and all(shape[0] == 4 and len(shape) == 2 for shape in duck.shapes)
    same = laws.gaussian_law(kernel, TARGET, n_draws=4, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(law.mean, same.mean)
    np.testing.assert_array_equal(law.var, same.var)


@pytest.mark.parametrize("name", ["li_jiao", "li_jiao_parallel"])
def test_rowwise_plan_gives_the_full_plan(name):
    kernel = small_kernel(name)
    assert kernel.rowwise_plan
    full = kernel.plan(ProbeMajorLawNoise(np.random.default_rng(2), 3, 4, 3, 1))
    shared = laws._plan(kernel, ProbeMajorLawNoise(np.random.default_rng(2), 3, 4, 3, 1))
    assert full.keys() == shared.keys()
    for key in full:
        np.testing.assert_array_equal(shared[key], full[key])


def test_rowwise_plan_with_a_non_row_aux_is_refused():
    class Bad(Kernel):
        name, rowwise_plan, n_steps, end_time = "bad", True, 1, 0.1

        def plan(self, noise):
            return {"u": noise.uniform(1), "grid": np.linspace(0.0, 1.0, 7)}

        def start_time(self, aux):
            return 1.0

        def step(self, state, aux, k, noise, score):
            return state

    with pytest.raises(RuntimeError, match="rowwise_plan"):
        laws.gaussian_law(Bad(), TARGET, n_draws=3)


def test_shared_time_score_equals_score_trusted(rng):
    M, P, G = 5, 3, TARGET.n_columns
    x = np.asfortranarray(rng.normal(size=(P * M, G)))
    t = np.tile(rng.uniform(0.01, 3.0, M), P)[:, None]
    fast = laws._SharedTimeScore(TARGET, M, P)
    np.testing.assert_allclose(fast(x, t), TARGET.score_trusted(x, t), rtol=1e-15, atol=0)
    # times that differ between the probes of a draw take the row-by-row path
    t2 = t.copy()
    t2[M] += 0.1
    np.testing.assert_array_equal(fast(x, t2), TARGET.score_trusted(x, t2))
    np.testing.assert_array_equal(fast(x, 0.7), TARGET.score_trusted(x, 0.7))


def test_non_finite_law_is_reported():
    class Blowup(Kernel):
        name, n_steps, end_time = "blowup", 3, 0.1

        def start_time(self, aux):
            return 1.0

        def step(self, state, aux, k, noise, score):
            return (state[0] * 1e200,)

    # overflow quietly to inf (as outside the test suite's strict float mode): the driver's own check names the sampler
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(NonFiniteStateError, match="blowup"):
        laws.gaussian_law(Blowup(), GroupedGaussian([1.0, 2.0]))
