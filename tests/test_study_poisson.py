"""Study "poisson" (experiments/extra_studies/poisson.py): quick profile in a temporary folder, assertions
on the fitted exponents (intervals from the data), negative controls, and the closed forms it relies on.

Measured on the quick profile (seed 0; K = 8, 32 internal draws, d in {10, 100, 1000}, eps 0.2..0.05):
b_LMC = 0.97 [0.94, 1.00], b_PLMC (annealed TV) = 0.53 [0.31, 0.76], contrast b_PLMC - b_LMC/2 = 0.05
[-0.18, 0.27] (consistent with the quadratic speed-up); LMC against itself 0.48 [0.45, 0.52] and the
broken PLMC 0.41 [0.21, 0.61] (both: no speed-up).
"""

import numpy as np
import pandas as pd
import pytest

from experiments.extra_studies import StudyContext
from experiments.extra_studies import poisson as P
from experiments.laws import gaussian_law
from experiments.samplers import get
from experiments.targets import GroupedGaussian


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("poisson")
    ctx = StudyContext(profile="quick", seed=0, out=out, figures=out / "figures")
    tables = P.STUDY.run(ctx)
    return out, tables


def _row(speed, sampler, metric="tv_annealed"):
    r = speed[(speed["sampler"] == sampler) & (speed["metric"] == metric)]
    assert len(r) == 1, (sampler, metric)
    return r.iloc[0]


def test_outputs_written(quick):
    out, tables = quick
    for name in ("nstar", "fits", "speedup", "mixing_floor", "mixture", "ddpm", "ddpm_summary"):
        assert (out / f"{name}.csv").exists()
        assert len(tables[name]) > 0
    text = (out / "tables.md").read_text()
    assert "Quadratic speed-up" in text and "generated" in text
    for fig in ("poisson_speedup.png", "poisson_mixture.png", "poisson_ddpm.png"):
        assert (out / "figures" / fig).stat().st_size > 10_000


def test_plmc_quadratic_speedup_in_eps(quick):
    """The claim: b_PLMC = b_LMC / 2. The contrast's 95% interval contains 0, and PLMC's exponent lies
    strictly below LMC's (the speed-up is real, not just an interval too wide to reject)."""
    _, t = quick
    plmc, lmc = _row(t["speedup"], "plmc"), _row(t["speedup"], "lmc")
    assert plmc["verdict"] == "consistent", plmc.to_dict()
    assert plmc["contrast_lo"] <= 0 <= plmc["contrast_hi"]
    assert plmc["b_hi"] < lmc["b_lo"], (plmc["b_hi"], lmc["b_lo"])


def test_negative_controls_lose_the_speedup(quick):
    """LMC against itself (contrast b/2 > 0) and PLMC with independent interpolation noise (O(alpha) bias):
    their contrast intervals lie above 0, and the broken PLMC's exponent is LMC's (intervals overlap)."""
    _, t = quick
    self_ctrl = _row(t["speedup"], "lmc")
    assert self_ctrl["verdict"] == "slower than quadratic" and self_ctrl["contrast_lo"] > 0
    broken = _row(t["speedup"], "broken_plmc")
    assert broken["verdict"] == "slower than quadratic" and broken["contrast_lo"] > 0
    assert broken["b_lo"] <= broken["b_base_hi"] and broken["b_base_lo"] <= broken["b_hi"]


def test_lmc_on_gaussians_has_first_order_bias_structure(quick):
    """On a product Gaussian, LMC (deterministic times) has b = 2a (verdicts' structure check), and its
    KL claim (d^1 eps^-2, via Pinsker) is loose in both exponents: the O(h) Gaussian bias gives sqrt(d)/eps."""
    _, t = quick
    v = t["verdicts"]
    lmc = v[(v["sampler"] == "lmc") & (v["metric"] == "tv_annealed")].iloc[0]
    assert lmc["structure"] == "consistent", lmc[["b_minus_ra", "b_minus_ra_lo", "b_minus_ra_hi"]].to_dict()
    assert lmc["verdict_d"] == "loose" and lmc["verdict_eps"] == "loose"


def test_horizon_is_bias_dominated(quick):
    """The exact continuous-time TV at the chosen horizon is below eps_min / 10 at every d."""
    _, t = quick
    fl = t["mixing_floor"]
    assert (fl["floor_over_eps_min"] <= P.FLOOR_FRACTION).all()
    # and it is far below every N*-defining error: the scans' errors at the largest cost are above it
    assert (fl["floor_tv"] < 1e-3).all()


def test_continuous_law_matches_closed_form_and_fine_step_sampler():
    """continuous_law against (i) the OU closed form for overdamped Langevin and (ii) ULMC with a tiny step
    (law mode; ULMC's bias is O(h), so h = 2e-4 leaves an error far below the tolerance 1e-3)."""
    tg = GroupedGaussian([1.0, 0.25], means=[0.5, -0.5])
    tau = 1.3
    mean, var = P.continuous_law("overdamped", tg, tau)
    m0, v0 = tg.marginal_params(3.0)
    lam = np.array([1.0, 4.0])
    mu = np.array([0.5, -0.5])
    np.testing.assert_allclose(mean, mu + (m0 - mu) * np.exp(-lam * tau), rtol=1e-10)
    np.testing.assert_allclose(var, 1 / lam + (v0 - 1 / lam) * np.exp(-2 * lam * tau), rtol=1e-10)
    mean_u, var_u = P.continuous_law("underdamped", tg, tau, gamma=2.0)
    law = gaussian_law(get("ulmc").make(6500, horizon=tau, gamma=2.0), tg)
    # measured: |mean error| <= 4.4e-5, |variance error| <= 5.4e-5 (first order: 8.8e-5 / 1.1e-4 at 3250 steps,
    # 2.2e-5 / 2.7e-5 at 13000); tolerances 1e-4 and 1.1e-4 are about 2.3x and 2x the measured errors
    np.testing.assert_allclose(law.mean[0], mean_u, rtol=0, atol=1e-4)
    np.testing.assert_allclose(law.var[0], var_u, rtol=0, atol=1.1e-4)
    # at a long horizon the law is the target (the stationary form used by continuous_law)
    mean_l, var_l = P.continuous_law("underdamped", tg, 200.0, gamma=2.0)
    np.testing.assert_allclose(mean_l, mu, atol=1e-12)
    np.testing.assert_allclose(var_l, 1 / lam, rtol=1e-10)


def test_ks_bootstrap_against_exact_sampler():
    """The KS tools on exact samples: KS is at the sampling floor, and the bootstrap spread matches the
    KS statistic's known scale (sd of sqrt(n) KS ~ 0.26 for the Kolmogorov law)."""
    from scipy.stats import norm

    rng = np.random.default_rng(3)
    n = 20000
    x = rng.standard_normal(n)
    ks = P.ks_distance(x, norm.cdf)
    assert ks < 1.63 / np.sqrt(n)                          # 99% quantile of the Kolmogorov law
    boot = P.ks_bootstrap(x, norm.cdf, 200, rng)
    sd = boot.std(ddof=1) * np.sqrt(n)
    assert 0.1 < sd < 0.5, sd


def test_ddpm_pmm_against_ddpm1000_and_respacing(quick):
    """PMM at equal NFE beats respaced DDPM by more than 2 of its standard errors at every scanned K, and
    the smallest NFE matching DDPM-1000 (TV <= TV_1000 + 2 se) is reported (measured: ~97 at d = 10 and
    ~191 at d = 1000 on gauss_aniso: above the paper's 50-80 at d = 1000)."""
    _, t = quick
    dd = t["ddpm"]
    assert (dd["tv_pmm"] + 2 * dd["tv_pmm_se"] < dd["tv_respaced"]).all()
    # the realised NFE matches the documented expectation (2 - 1/K) N / K within 5 of its standard errors
    # (measured, d = 1000, 24 draws: K = 5, 10, 20, 40 deviate by -1.44, +0.39, -0.18, -0.84 se; se = 2.31, 1.84,
    # 1.37, 1.00 NFE, against sample standard errors 1.91, 1.78, 1.19, 0.93).
    # The ddpm table has no standard error column (the study keeps nfe_se in its cache only), so the exact one
    # is used: per draw the NFE is a sum over coarse chunks of 1 + Binomial(K' - 1, 1/K') (K' = min(K, rest) of
    # the N = 1000 fine steps), variance sum (K' - 1)(1/K')(1 - 1/K'); the mean is over ddpm_draws draws.
    draws = P.PROFILES["quick"]["ddpm_draws"]
    n_fine = 1000

    def nfe_se(K):
        sizes = [min(K, n_fine - s) for s in range(0, n_fine, K)]
        return np.sqrt(sum((k - 1) / k * (1 - 1 / k) for k in sizes) / draws)

    se = dd["K"].map(nfe_se).to_numpy()
    assert np.all(se > 0)
    assert np.all(np.abs(dd["nfe"] - dd["nfe_expected"]) < 5 * se), (dd[["K", "nfe", "nfe_expected"]], se)
    summ = t["ddpm_summary"]
    assert summ["min_matching_nfe"].notna().all()
    # the matching NFE grows with d (TV of a product law grows with d at fixed per-coordinate error)
    s = summ.sort_values("d")
    assert s["min_matching_nfe"].is_monotonic_increasing


def test_mixture_part_reports_precision(quick):
    _, t = quick
    mix = t["mixture"]
    assert set(mix["sampler"]) == {"lmc", "plmc"}
    assert (mix["ks_lo"] <= mix["ks"]).all() and (mix["ks"] <= mix["ks_hi"]).all()
    # the cheapest cost of each sampler has a bias resolved above the sampling floor
    first = mix.sort_values("nfe").groupby("sampler").first()
    assert (first["ks_lo"] > 2 * first["null_floor"]).all()
    # matched budgets: PLMC's mean NFE within 3% of LMC's at each budget
    w = mix.pivot_table(index="nfe_budget", columns="sampler", values="nfe")
    assert np.all(np.abs(w["plmc"] / w["lmc"] - 1) < 0.03)


def test_bad_profile_rejected(tmp_path):
    ctx = StudyContext(profile="nope", seed=0, out=tmp_path, figures=tmp_path / "f")
    with pytest.raises(ValueError, match="profile"):
        P.STUDY.run(ctx)


def test_speedup_contrast_arithmetic():
    a = pd.Series({"b": 0.6, "b_se": 0.1, "df_resid": 10})
    b = pd.Series({"b": 1.0, "b_se": 0.2, "df_resid": 20})
    c = P.contrast(a, b, 0.5)
    assert c["estimate"] == pytest.approx(0.1)
    from scipy import stats

    half = stats.t.ppf(0.975, 10) * np.hypot(0.1, 0.1)
    assert c["lo"] == pytest.approx(0.1 - half) and c["hi"] == pytest.approx(0.1 + half)
    assert c["verdict"] == "consistent"
