"""Study "logconcave" (experiments/extra_studies/logconcave.py): quick profile in a temporary folder.

The quick profile (seed 0; d in {10, 1e3, 1e5}, eps 0.2..0.05) runs ulmc (deterministic: one-slope fit in
d/eps^2 with its local-slope range) and gcc_logconcave (internal draws in replicate groups, adaptive; jackknife
intervals).
"""

import numpy as np
import pytest

from analysis.verdicts import verdict
from experiments.extra_studies import StudyContext
from experiments.extra_studies import logconcave as LC
from experiments.extra_studies.poisson import LC_FAMILY, continuous_law
from experiments.laws import gaussian_law
from experiments.samplers import get


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("logconcave")
    ctx = StudyContext(profile="quick", seed=0, out=out, figures=out / "figures")
    return out, LC.STUDY.run(ctx)


def _v(t, sampler, metric="tv_annealed"):
    v = t["verdicts"]
    r = v[(v["sampler"] == sampler) & (v["metric"] == metric)]
    assert len(r) == 1
    return r.iloc[0]


def test_outputs(quick):
    out, t = quick
    for name in ("nstar", "exponents", "verdicts", "mixing_floor", "local_slopes"):
        assert (out / f"{name}.csv").exists() and len(t[name])
    assert (out / "figures" / "logconcave_d_exponent.png").stat().st_size > 10_000
    assert t["nstar"]["d"].max() >= 100000
    assert (t["mixing_floor"]["floor_over_eps_min"] <= LC.FLOOR_FRACTION).all()


def test_ulmc_matches_its_claim_and_the_product_structure(quick):
    """ULMC's claim sqrt(d)/eps: deterministic step times on a product target, so N* is a function of d/eps^2
    (structure spread ~ 0) and the one-slope fit gives a = s, b = 2s with s ~ 1/2: consistent in eps, not above
    1/2 in d (measured a = 0.50 [0.46, 0.51], consistent). The same with --seed 1 (a deterministic sampler)."""
    _, t = quick
    u = _v(t, "ulmc")
    assert u["interval"] == "local-slope range"
    assert u["verdict_eps"] == "consistent"
    assert u["verdict_d"] in ("consistent", "loose")
    assert u["claim_on_structure"] and u["structure_spread"] < 0.05


def test_gcc_logconcave_d_exponent_within_claim_and_below_ulmc(quick):
    """The d^{5/12} claim is not violated (annealed TV: consistent or loose) and the dimension dependence is
    strictly better than ULMC's (jackknife interval below ULMC's whole local-slope range). Checked with
    --seed 0 and --seed 1 (quick profile): loose both times, a = 0.356 [0.344, 0.368] and 0.353 [0.341, 0.364]."""
    _, t = quick
    g, u = _v(t, "gcc_logconcave"), _v(t, "ulmc")
    assert g["interval"] == "jackknife 95%"
    assert g["verdict_d"] in ("consistent", "loose"), g[["a", "a_lo", "a_hi"]].to_dict()
    assert g["a_hi"] < u["a_lo"]
    # the mean conditional sqrt(KL) bounds the annealed TV from above (convexity and Pinsker), so its N* can
    # only be larger, up to the annealed TV's Monte Carlo error (3 delta-method standard errors)
    nst = t["nstar"]
    ok = nst[(nst["sampler"] == "gcc_logconcave") & (nst["status"] == "ok")]
    gq = ok[ok["metric"] == "sqrt_kl"].set_index(["d", "eps"])
    ga = ok[ok["metric"] == "tv_annealed"].set_index(["d", "eps"])
    both = gq[["nstar"]].rename(columns={"nstar": "n_kl"}).join(
        ga[["nstar", "nstar_log_se"]].rename(columns={"nstar": "n_tv"}), how="inner")
    assert len(both) > 0
    assert (np.log(both["n_kl"]) >= np.log(both["n_tv"]) - 3 * both["nstar_log_se"]).all()


def test_negative_control_ulmc_does_not_reach_five_twelfths(quick):
    """The same pipeline applied to ULMC against the 5/12 claim finds 'violated': ULMC's O(h) Gaussian
    bias gives N* ~ sqrt(d)/eps exactly (verified: local slopes in d are 0.50), so a tool that could not
    detect a violation would fail here."""
    _, t = quick
    u = _v(t, "ulmc")
    assert verdict(u["a_lo"], u["a_hi"], 5 / 12) == "violated"
    sl = t["local_slopes"]
    s = sl[(sl["sampler"] == "ulmc") & (sl["direction"] == "d")]["slope"].to_numpy()
    assert np.all(s > 5 / 12)


def test_gcc_continuous_law_against_sampler_with_tiny_steps():
    """The mixing-floor law of gcc (ULD for tau, fresh v, ULD for T_corr) against gcc_logconcave itself at
    a tiny step (law mode; first-order corrector bias and small randomized-midpoint bias at h ~ 3e-4)."""
    tg = LC_FAMILY.at(2)
    tau, tc = 1.0, 0.25
    mean, var = continuous_law("gcc", tg, tau, gamma=2.0, t_corr=tc, init_level=8.0)
    k = get("gcc_logconcave").make(3000, horizon=tau, T_corr=tc, gamma=2.0, corr_steps=800)
    law = gaussian_law(k, tg, n_draws=4, rng=np.random.default_rng(0))
    # measured (seed 0, 4 draws): |mean error| <= 3.7e-7 (seeds 1, 2: <= 7.8e-7), |variance error| <= 4.7e-6
    # (seeds 1, 2: <= 4.1e-6); tolerances 1.5e-6 and 1.5e-5 are about 4x and 3x the seed-0 errors
    np.testing.assert_allclose(law.mean.mean(0), mean, rtol=0, atol=1.5e-6)
    np.testing.assert_allclose(law.var.mean(0), var, rtol=0, atol=1.5e-5)
