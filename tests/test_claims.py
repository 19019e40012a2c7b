"""Every sampler's declared claim (metric and the exponents of d, 1/eps and L in its cost) against the rate of
the theorem it cites, written here independently: the verdicts compare fitted exponents with these numbers,
so an altered exponent changes a published verdict. A new sampler must add its row."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction as F

import pytest

import experiments.samplers  # noqa: F401  (registers the samplers)
from experiments.samplers._api import REGISTRY, LogFactor


def runge_kutta(p):
    """p-th order (exponential) Runge-Kutta on the PF-ODE: O(d^(1+1/p) eps^(-1/p)) steps (Huang, Huang & Lin
    2024, arXiv 2404.09730; Li, Wei, Chi & Chen for DDIM, p = 1 in eps: O(d / eps))."""
    return ("tv", 1 + F(1, p), F(1, p), None)


# name: (metric, d exponent, 1/eps exponent, L exponent or None), from the cited theorem's rate
CLAIMS = {
    "ddim": ("tv", F(1), F(1), None),                       # O(d / eps)
    "ddpm": ("kl", F(1, 2), F(1), F(1)),                    # KL = O(d min{d, L^2} / T^2) <= eps^2: T ~ L sqrt(d) / eps
    "ddram": ("kl", F(1, 2), F(1), None),                   # O~(sqrt(d) / eps)
    "dpm_solver_1": runge_kutta(1),
    "dpm_solver_2": runge_kutta(2),
    "dpm_solver_3": runge_kutta(3),
    "dpm_solver_pp_2m": runge_kutta(2),
    "edm_heun": runge_kutta(2),
    "pf_ode_euler": runge_kutta(1),
    "pf_ode_heun": runge_kutta(2),
    "pf_ode_rk4": runge_kutta(4),
    "gupta_cai_chen": ("tv", F(5, 12), F(1), F(5, 3)),      # O~(L^{5/3} d^{5/12} / eps)
    "gupta_cai_chen_parallel": ("tv", F(0), F(0), F(1)),    # O~(log^2(L d / eps)) parallel rounds
    "gcc_logconcave": ("tv", F(5, 12), F(1), None),         # O~(d^{5/12}) in d
    "lmc": ("kl", F(1), F(2), F(2)),                        # KL <= eps^2 after O~(kappa^2 d / eps^2)
    "ulmc": ("tv", F(1, 2), F(1), F(3, 2)),                 # O~(kappa^{3/2} sqrt(d) / eps)
    "shen_lee": ("w2", F(1, 3), F(2, 3), F(1)),             # kappa eps^{-2/3} with eps scaled by sqrt(d)
    "li_jiao": ("tv", F(1, 3), F(2, 3), F(1)),              # T ~ L d^{1/3} eps^{-2/3}
    "li_jiao_parallel": ("tv", F(0), F(0), None),           # O(log^2(d / eps)) parallel rounds
    "plmc": ("kl", F(1), F(1), F(2)),                       # quadratic improvement in eps over LMC
    "pulmc": ("tv", F(5, 12), F(1, 2), F(17, 12)),          # O~(kappa^{17/12} d^{5/12} / eps^{1/2})
    "euler_maruyama": ("tv", F(1), F(2), F(2)),             # O(L^2 d / eps^2)
    "exponential_integrator": ("kl", F(1), F(2), None),     # KL <= eps^2 after O(d log^2(d/delta) / eps^2)
    "ve_ei": ("kl", F(1), F(2), None),                      # E_D linear in d, KL <= eps^2
    "gcc_predictor": None,                                  # a component (the predictor alone): no claim
    "pmm_ddpm": None,                                       # compared with DDPM in its own study: no claim
}


def test_every_registered_sampler_has_a_row():
    assert set(REGISTRY) == set(CLAIMS)


@pytest.mark.parametrize("name", sorted(CLAIMS))
def test_declared_claim_is_the_theorem_rate(name):
    claim = REGISTRY[name].claim
    if CLAIMS[name] is None:
        assert claim is None
        return
    metric, d_exp, eps_exp, L_exp = CLAIMS[name]
    assert (claim.metric, claim.d_exp, claim.eps_exp, claim.L_exp) == (metric, d_exp, eps_exp, L_exp)
    assert claim.paper and claim.theorem                    # a claim names its source


HORIZON = (("d/eps^2", F(1)),)          # T = log(d/eps^2)/2: the initialisation error's horizon, one log
# name: the logarithmic factors hidden in the O~ (argument, power); they set the verdicts' one-sided allowance
LOG_FACTORS = {
    **{name: HORIZON for name in ("ddim", "ddpm", "ddram", "dpm_solver_1", "dpm_solver_2", "dpm_solver_3",
                                  "dpm_solver_pp_2m", "edm_heun", "pf_ode_euler", "pf_ode_heun", "pf_ode_rk4",
                                  "ulmc", "shen_lee", "plmc", "pulmc", "euler_maruyama")},
    "gupta_cai_chen": (("d/eps", F(1)),),
    "gupta_cai_chen_parallel": (("d/eps", F(2)),),          # log^2(L d / eps) rounds
    "gcc_logconcave": (("d/eps", F(1)),),
    "lmc": (("1/eps", F(1)),),                              # log(1/eps)
    "li_jiao": (("cost", F(8, 3)),),                        # polylog(T): log^4 T of the later version, at T^{2/3}
    "li_jiao_parallel": (("d/eps", F(2)),),                 # log^2(d / eps) rounds
    "exponential_integrator": (("d", F(2)),),               # log^2(d / delta)
    "ve_ei": (("d/eps^2", F(2)),),                          # log^2(sigma_max / sigma_min), sigma_max^2 ~ d/eps^2
}


@pytest.mark.parametrize("name", sorted(LOG_FACTORS))
def test_declared_log_factors(name):
    factors = REGISTRY[name].claim.log_factors
    assert tuple((f.argument, f.power) for f in factors) == LOG_FACTORS[name]
    assert all(f.source[:3] in ("[V]", "[S]", "[R]") for f in factors)      # each says where it comes from


def test_every_claim_has_its_log_factors_row():
    assert set(LOG_FACTORS) == {n for n, c in CLAIMS.items() if c is not None}


def test_register_rejects_a_log_factor_without_a_provenance_tag():
    from experiments.samplers._api import register

    base = REGISTRY["pf_ode_euler"]
    for source in ("", "the horizon", "[r] the horizon", "XX[R] the horizon", "[R] ", "[S]the horizon"):
        claim = replace(base.claim, log_factors=(LogFactor("d/eps^2", 1, source),))
        with pytest.raises(ValueError, match="log_factors of 'tmp_untagged' must each have a source"):
            register(replace(base, name="tmp_untagged", claim=claim))
        assert "tmp_untagged" not in REGISTRY
    for name, spec in REGISTRY.items():
        for lf in spec.claim.log_factors if spec.claim else ():
            assert lf.source[:4] in ("[V] ", "[S] ", "[R] ") and lf.source[4:].strip(), name


def test_the_claims_table_of_paper_notes_is_the_registry():
    # paper_notes.md's generated claims block renders each claim's paper, theorem, metric, exponents and log
    # wording; a claim changed in code without regenerating the notes (python -m analysis.notes) fails here.
    # Needs only paper_notes.md (the full staleness test also needs the committed results).
    from pathlib import Path

    from analysis import notes

    text = (Path(__file__).resolve().parents[1] / "paper_notes.md").read_text()
    blocks = {m.group("name"): m.group("body") for m in notes.BLOCK.finditer(text)}
    assert blocks["claims"] == notes.render_claims().rstrip() + "\n"
