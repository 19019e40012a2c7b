"""Every ``theory(d, eps, L)`` preset against the theorem's formulas, written out here independently.

Each registered sampler's preset (``experiments.samplers.REGISTRY[name].theory``) sets parameters from
(d, eps, L) as the module's comment says (hidden constants 1). Below, every formula is re-derived from
those comments, simplified by hand where the module composes several pieces (e.g. Gupta-Cai-Chen's
``T_corr / h_corr = L^{2/3} d^{5/12} / eps``), and compared key by key: strings, ``None`` and integers
exactly, floats to a relative 1e-12. Integers from a ``ceil`` whose argument lies within 1e-9 of an
integer may round either way in float64 (e.g. ``d^{1/3} eps^{-2/3} = 40`` at d = 1000, eps = 1/8);
there either neighbour is accepted, and the test says which points are such ties.

Negative control: the same comparison with a horizon off by a factor 2 must report the horizon key.

Then one theory-variant law-mode scan per seed sampler (ddpm, ddram, li_jiao, gupta_cai_chen) on the
study target ``gauss_aniso`` with the study's L: the quenched KL falls with the cost by a stated factor.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.distances import quenched_kl
from experiments.laws import gaussian_law
from experiments.samplers import BUILTIN, REGISTRY, get
from experiments.samplers import gupta_cai_chen as gcc_mod
from experiments.samplers import langevin as lang_mod
from experiments.samplers import poisson_midpoint as pmm_mod
from experiments.samplers._grid import DEFAULT_DELTA
from experiments.studies import get_target

REL = 1e-12
TIE = 1e-9

# (d, eps, L): a typical point, d = 1 and eps near 1 (every horizon floor active), L < 1 (kappa = 1),
# L = 1, a large d with a tiny eps, the study's L of gauss_aniso, and ceil ties (d^{1/3} eps^{-2/3} = 40).
POINTS = [
    (1000, 0.1, 2.0),
    (1, 0.9, 1.0),
    (1, 0.5, 0.5),
    (10, 0.2, 1.0),
    (10**9, 1e-3, 3.7),
    (100, 0.05, 9.823356289382955),
    (1000, 0.125, 1.0),
    (10**6, 0.01, 25.0),
]


class Ceil:
    """An integer ``max(floor_at, ceil(x))`` computed from a float ``x``: matches either neighbour at a tie."""

    def __init__(self, x, floor_at=1):
        self.x, self.floor_at = float(x), floor_at

    def accepts(self, got):
        if not isinstance(got, (int, np.integer)) or isinstance(got, bool):
            return False
        candidates = {math.ceil(self.x)}
        if abs(self.x - round(self.x)) <= TIE * max(1.0, abs(self.x)):
            candidates |= {round(self.x), round(self.x) + 1}
        return int(got) in {max(self.floor_at, c) for c in candidates}

    def __repr__(self):
        return f"Ceil({self.x!r})"


def mismatches(got: dict, expected: dict) -> list[str]:
    """Keys whose values differ (floats beyond a relative 1e-12), plus missing or extra keys."""
    bad = sorted(set(got) ^ set(expected))
    for key in set(got) & set(expected):
        g, e = got[key], expected[key]
        if isinstance(e, Ceil):
            ok = e.accepts(g)
        elif e is None or isinstance(e, str):
            ok = g == e and type(g) is type(e)
        elif isinstance(e, int):
            ok = isinstance(g, (int, np.integer)) and int(g) == e
        else:
            ok = isinstance(g, (float, np.floating)) and abs(float(g) - e) <= REL * abs(e)
        if not ok:
            bad.append(key)
    return sorted(bad)


# -- the formulas, from the modules' comments ---------------------------------------------------

def diffusion_horizon(d, eps):
    # KL(q_T || N(0, I)) <= e^{-2T} (d + M2) <= eps^2, constant 1: T = (1/2) ln(d / eps^2), floored at 2
    return max(2.0, 0.5 * (math.log(d) - 2.0 * math.log(eps)))


def log1(x):
    # the Langevin presets' log factors are floored at 1: max(1, ln x)
    return max(1.0, math.log(x))


def expected_preset(name, d, eps, L):
    T = diffusion_horizon(d, eps)
    kappa = max(L, 1.0)                                  # m = 1
    if name in ("ddim", "ddpm", "dpm_solver_1", "dpm_solver_2", "dpm_solver_3", "dpm_solver_pp_2m",
                "exponential_integrator"):
        return {"T": T, "grid": "log_snr"}
    if name in ("pf_ode_euler", "pf_ode_heun", "pf_ode_rk4", "euler_maruyama"):
        return {"T": T, "grid": "uniform"}
    if name == "ddram":
        return {"T": T, "grid": "log_snr", "linear": "relative_score", "node": "importance"}
    if name == "edm_heun":
        return {"T": T, "rho": 7.0}
    if name == "ve_ei":
        return {"T": T, "schedule": "exponential"}
    if name == "li_jiao":
        # K = None: K = ceil(L ln T) is set by the kernel from lipschitz = L; (c0, c1) = (5, 10)
        return {"K": None, "lipschitz": float(L), "c0": 5.0, "c1": 10.0, "final": "nearest"}
    if name == "li_jiao_parallel":
        # M = ceil(ln(d / eps)) Picard sweeps, at least 1 (ln floored at 1)
        return {**expected_preset("li_jiao", d, eps, L), "sweeps": Ceil(log1(d / eps))}
    if name in ("gupta_cai_chen", "gupta_cai_chen_parallel"):
        Tg = max(2.0, math.log(d) - math.log(eps))       # T = ln(d / eps), at least 2
        N0 = Ceil(L * Tg)
        T_corr = math.exp(-13 / 18 * math.log(L) - 1 / 18 * math.log(d))
        # corrector steps T_corr / h_corr = L^{-13/18 + 25/18} d^{-1/18 + 17/36} / eps = L^{2/3} d^{5/12} / eps
        corr_per_window = L ** (2 / 3) * d ** (5 / 12) / eps
        if name == "gupta_cai_chen_parallel":
            return {"T": Tg, "R": Ceil(d ** (1 / 3) / eps ** (2 / 3)), "sweeps": Ceil(math.log(d / eps)),
                    "T_corr": T_corr, "corr_steps": Ceil(corr_per_window), "gamma": math.sqrt(L),
                    "corrector": "ei"}
        # predictor calls 2 T / h_pred = 2 T L^{14/9} d^{7/18} / eps^{2/3}; corrector calls N0 T_corr / h_corr
        n0 = max(1, math.ceil(L * Tg))
        pred = 2.0 * Tg * L ** (14 / 9) * d ** (7 / 18) / eps ** (2 / 3)
        corr = n0 * corr_per_window
        return {"T": Tg, "N0": N0, "T_corr": T_corr, "gamma": math.sqrt(L), "corrector": "ei",
                "pred_share": 1.0 / (1.0 + corr / pred)}
    if name == "gcc_logconcave":
        # gamma = sqrt(L), horizon ln(d / eps) / sqrt(L) (ln floored at 1), T_corr = L^{-1/2} d^{-1/18},
        # corr_steps = T_corr / h_corr = d^{-1/18 + 17/36} / eps = d^{5/12} / eps
        return {"horizon": log1(d / eps) / math.sqrt(L), "gamma": math.sqrt(L),
                "T_corr": 1.0 / (math.sqrt(L) * d ** (1 / 18)), "corr_steps": Ceil(d ** (5 / 12) / eps),
                "t_level": 0.0}
    if name == "lmc":
        return {"horizon": log1(d / eps**2)}                       # ln(KL_0 / eps^2) / m, KL_0 ~ d
    if name == "ulmc":
        return {"gamma": math.sqrt(L), "horizon": math.sqrt(L) * log1(d / eps**2)}
    if name == "shen_lee":
        return {"u": 1.0 / L, "horizon": kappa * log1(math.sqrt(d) / eps)}
    if name == "plmc":
        alpha = eps ** (2 / 3) * min(L ** (-4 / 3), d ** (-1 / 3) / L)
        return {"K": Ceil(alpha * L / eps**2), "horizon": log1(d / eps**2)}
    if name == "pulmc":
        return {"gamma": math.sqrt(L), "K": Ceil(1.0 / eps), "horizon": math.sqrt(L) * log1(d / eps**2)}
    if name == "pmm_ddpm":
        return {"variant": "small", "N": 1000}
    raise KeyError(name)


#: the built-in samplers with a preset (a plug-in's presets are its own package's to test)
WITH_THEORY = sorted(n for n in BUILTIN if REGISTRY[n].theory is not None)


def test_every_preset_is_covered():
    # a newly registered preset must get its formula here; gcc_predictor is the only sampler without one
    for name in WITH_THEORY:
        expected_preset(name, 100, 0.1, 2.0)
    assert sorted(BUILTIN - set(WITH_THEORY)) == ["gcc_predictor"]


@pytest.mark.parametrize("name", WITH_THEORY)
def test_preset_equals_the_theorem_formula(name):
    spec = get(name)
    for d, eps, L in POINTS:
        got = spec.theory(d, eps, L)
        exp = expected_preset(name, d, eps, L)
        assert mismatches(got, exp) == [], (name, (d, eps, L), got, exp)


def test_horizon_floors_are_active_at_the_edge_points():
    # the edge points really exercise the floors (so a lost max(2, .) would be seen above)
    assert 0.5 * math.log(1 / 0.9**2) < 2 and diffusion_horizon(1, 0.9) == 2.0
    assert get("ddpm").theory(1, 0.9, 1.0)["T"] == 2.0
    assert get("gupta_cai_chen").theory(1, 0.9, 1.0)["T"] == 2.0
    assert get("lmc").theory(1, 0.9, 1.0)["horizon"] == 1.0               # ln(1/0.81) = 0.21 < 1
    assert get("gcc_logconcave").theory(1, 0.9, 1.0)["horizon"] == 1.0
    assert get("li_jiao_parallel").theory(1, 0.9, 1.0)["sweeps"] == 1
    # a tie point: d^{1/3} eps^{-2/3} = 40 up to rounding
    assert abs(1000 ** (1 / 3) * 0.125 ** (-2 / 3) - 40) < 1e-12


@pytest.mark.parametrize("name", WITH_THEORY)
def test_negative_control_a_doubled_horizon_is_detected(name):
    """The comparison can fail: the same check against a horizon (or horizon-like key) doubled reports it."""
    d, eps, L = 1000, 0.1, 2.0
    got = get(name).theory(d, eps, L)
    exp = expected_preset(name, d, eps, L)
    key = next((k for k in ("T", "horizon", "T_corr", "lipschitz") if k in exp), None)
    if key is None:                                   # pmm_ddpm: no horizon; change its fine-chain length
        key, wrong = "N", {**exp, "N": 2 * exp["N"]}
    else:
        wrong = {**exp, key: 2.0 * exp[key]}
    assert mismatches(got, exp) == []
    assert mismatches(got, wrong) == [key]
    if key != "N":
        assert abs(got[key] - wrong[key]) / abs(got[key]) == pytest.approx(1.0, rel=1e-12, abs=0)  # 1e12 x tol


def test_negative_control_wrong_diffusion_horizon_formula_differs_everywhere():
    # T = log(d / eps^2) (constant 2 instead of 1/2 ... factor 2) differs from every diffusion preset
    for d, eps, L in POINTS:
        wrong = max(2.0, math.log(d / eps**2))
        got = get("ddpm").theory(d, eps, L)["T"]
        if wrong > 2.0:
            assert abs(wrong - got) > 0.25 * got, (d, eps)


# -- what the kernels build from the presets -----------------------------------------------------

@pytest.mark.parametrize("T_iter,L", [(40, 1.0), (200, 2.0), (209, 2.0), (400, 9.823356289382955), (61, 0.3),
                                      (50, 0.2)])
def test_li_jiao_blocks_from_the_lipschitz_constant(T_iter, L):
    # K = ceil(L ln T) (at least 1), T rounded up to a multiple of K, N = 2T/K, NFE = 2T
    K = max(1, math.ceil(L * math.log(T_iter)))
    T_eff = K * math.ceil(T_iter / K)
    spec = get("li_jiao")
    k = spec.make(T_iter, **spec.theory(1000, 0.1, L))
    assert (k.K, k.T_iter, k.N) == (K, T_eff, 2 * T_eff // K)
    assert spec.nfe(T_iter, **spec.theory(1000, 0.1, L)) == 2 * T_eff
    assert 0 <= T_eff - T_iter < K and (2 * T_eff) % K == 0 and k.N % 2 == 0


def test_gupta_cai_chen_kernel_uses_the_preset_windows_and_corrector_time():
    d, eps, L = 1000, 0.1, 2.0
    spec = get("gupta_cai_chen")
    p = spec.theory(d, eps, L)
    N0 = math.ceil(L * math.log(d / eps))                                    # 19
    k = spec.make(40 * N0, **p)
    assert k.N0 == N0 == 19
    np.testing.assert_allclose(k.windows, np.linspace(math.log(d / eps), DEFAULT_DELTA, N0 + 1), rtol=1e-13)
    assert k.gamma == pytest.approx(math.sqrt(L), rel=1e-15, abs=0)
    steps = [op for op in k.ops if op[0] == "ei"]
    assert len(steps) == N0 * k.M
    # every corrector step has size T_corr / M with T_corr = L^{-13/18} d^{-1/18}
    np.testing.assert_allclose([op[2] for op in steps], L ** (-13 / 18) * d ** (-1 / 18) / k.M, rtol=1e-13)


def test_theorem_step_sizes():
    # the theorem's own step sizes (documented; the cost knob sweeps them): constants 1, m = 1
    for d, eps, L in POINTS:
        kappa = max(L, 1.0)
        assert lang_mod.theorem_step_lmc(d, eps, L) == pytest.approx(eps**2 / d / L**2, rel=REL, abs=0)
        assert lang_mod.theorem_step_ulmc(d, eps, L) == pytest.approx(eps / math.sqrt(L * kappa * d), rel=REL, abs=0)
        er = eps / math.sqrt(d)
        lg = log1(1.0 / er)
        h_sl = min((er / (math.sqrt(kappa) * lg)) ** (1 / 3), (er / math.sqrt(lg)) ** (2 / 3))
        assert lang_mod.theorem_step_shen_lee(d, eps, L) == pytest.approx(h_sl, rel=REL, abs=0)
        alpha, K = pmm_mod.theorem_step_plmc(d, eps, L)
        a_ref = eps ** (2 / 3) * min(L ** (-4 / 3), d ** (-1 / 3) / L)
        assert alpha == pytest.approx(a_ref, rel=REL, abs=0) and Ceil(a_ref * L / eps**2).accepts(K)


def test_gupta_cai_chen_pred_share_is_the_ratio_of_theory_call_counts():
    # an independent spot value: d = 1000, eps = 0.1, L = 2 -> T = ln(1e4), N0 = 19
    p = gcc_mod._theory_seq(1000, 0.1, 2.0)
    T = math.log(1e4)
    pred = 2 * T / (0.1 ** (2 / 3) * 2 ** (-14 / 9) * 1000 ** (-7 / 18))
    corr = 19 * (2 ** (-13 / 18) * 1000 ** (-1 / 18)) / (0.1 * 2 ** (-25 / 18) * 1000 ** (-17 / 36))
    assert p["pred_share"] == pytest.approx(pred / (pred + corr), rel=1e-12, abs=0)
    assert 0.40 < p["pred_share"] < 0.41                                     # 0.4075


# -- theory-variant law-mode scans: the error falls with the cost ---------------------------------

# (name, (low cost, high cost), internal draws, factor). Measured at d = 1000, eps = 0.05, L = 9.82
# (gauss_aniso at delta = 1e-3), seed 0, quenched KL (target || output), 64 draws for randomized samplers:
#   ddpm            64 -> 256:   5.45   -> 0.341            ratio 16.0 (second order in KL)
#   ddram           32 -> 128:   0.593(74) -> 0.00675(95)   ratio 88;  3-se envelope ratio 38.8
#   li_jiao        100 -> 400:   0.403(70) -> 0.0279(44)    ratio 14.5; 3-se envelope ratio 4.67
#   gupta_cai_chen 400 -> 1600:  9.57(2.0) -> 0.167(26)     ratio 57;  3-se envelope ratio 14.1
# The assertion asks the 3-standard-error envelope ratio to exceed a factor about half or less of it.
SCANS = [
    ("ddpm", (64, 256), 1, 8.0),
    ("ddram", (32, 128), 64, 10.0),
    ("li_jiao", (100, 400), 64, 2.0),
    ("gupta_cai_chen", (400, 1600), 64, 4.0),
]


@pytest.fixture(scope="module")
def aniso():
    fam = get_target("gauss_aniso")
    return fam, fam.lipschitz(DEFAULT_DELTA)


@pytest.mark.parametrize("name,costs,n_draws,factor", SCANS)
def test_theory_variant_error_falls_with_cost(aniso, name, costs, n_draws, factor):
    fam, L = aniso
    d, eps = 1000, 0.05
    assert L == pytest.approx(9.82, abs=0.01)
    spec = get(name)
    preset = spec.theory(d, eps, L)
    est = []
    for c in costs:
        law = gaussian_law(spec.make(c, **preset), fam.at(d), n_draws=n_draws, rng=np.random.default_rng(0))
        est.append(quenched_kl(law))
    lo, hi = est
    assert np.isfinite(lo.value) and hi.value > 0
    assert lo.value - 3 * lo.stderr > factor * (hi.value + 3 * hi.stderr), (name, lo, hi)
