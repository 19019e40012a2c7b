"""Study "lipschitz" (experiments/extra_studies/lipschitz.py), quick profile: fitted exponent of L in N*(L) at
fixed d and eps against the claims' L_exp, with a negative control (ddim on a uniform grid).

Intervals: jackknife 95% over the replicate groups for the randomized samplers (li_jiao, gupta_cai_chen), the
range of local slopes for the deterministic ones (ddpm, ddim). Seed stability: the verdicts asserted here were
checked on the quick profile with ``--seed 0`` and ``--seed 1`` (``python -m experiments.scaling lipschitz --quick
--seed S``): every claimed family is 'loose' on both (measured e, seed 0 / seed 1: gupta_cai_chen theory
0.89 [0.85, 0.93] / 0.85 [0.82, 0.89], tuned 0.78 [0.75, 0.80] / 0.76 [0.74, 0.78]; li_jiao theory
0.00 [-0.01, 0.02] / 0.04 [0.01, 0.07], tuned -0.04 [-0.05, -0.03] / 0.02 [-0.02, 0.06]; ddpm -0.01 (slope range
[-0.02, -0.00], deterministic)); the control (deterministic) grows with e in [0.49, 0.64] on both.

The test that failed before the rewrite (gupta_cai_chen 'tuned' with 3 points < 4): the tuned variant at
v_small = 1 (L = 1) was dropped whenever the float L computed at delta came out exactly 1, because the preset
then equalled the theory one. The study now decides whether a preset reads L by probing L = 1 against L = 2
and keeps the tuned run at L = 1 (the same law as the theory run, read back from the cache), so every family
has every v_small, and any N* left out is left out for a stated reason (status) and counted.
"""

import numpy as np
import pytest

from analysis.verdicts import verdict
from experiments.extra_studies import StudyContext, studies
from experiments.extra_studies import lipschitz as S
from experiments.samplers import get as get_sampler
from experiments.samplers._grid import DEFAULT_DELTA


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("lipschitz")
    ctx = StudyContext(profile="quick", seed=0, out=out, figures=out / "figures")
    return ctx, S.run(ctx)


def _fit(fits, sampler, variant, regressor="L_end"):
    row = fits[(fits["sampler"] == sampler) & (fits["variant"] == variant) & (fits["regressor"] == regressor)]
    assert len(row) == 1, (sampler, variant)
    return row.iloc[0]


def test_registered_and_outputs(result):
    ctx, tables = result
    assert studies()["lipschitz"] is S.STUDY
    for name in ("errors.csv", "errors_replicates.csv", "lipschitz_nstar.csv", "nstar_replicates.csv",
                 "lipschitz_fits.csv", "verdicts.csv", "tables.md"):
        assert (ctx.out / name).stat().st_size > 0, name
    assert (ctx.figures / "nstar_vs_L.png").stat().st_size > 10_000
    text = (ctx.out / "tables.md").read_text()
    assert not [line for line in text.splitlines() if line.startswith("#") and not line.startswith("####")]
    errors = tables["errors"]
    rnd = errors["sampler"].isin(["li_jiao", "gupta_cai_chen"])
    assert (errors.loc[rnd, "draws"] % 8 == 0).all() and (errors.loc[~rnd, "draws"] == 1).all()


def test_every_family_has_every_L_and_honest_intervals(result):
    """Every (sampler, variant) has one N* per v_small of the profile (the tuned variant included at L = 1); the fit
    uses the ok ones and counts the others; randomized samplers carry a jackknife 95% interval, deterministic ones
    the range of their local slopes (no confidence interval)."""
    _, tables = result
    fits, table = tables["lipschitz_fits"], tables["lipschitz_nstar"]
    n_v = len(S._profile("quick")["v_small"])
    main = fits[(fits["regressor"] == "L_end") & (fits["variant"] != S.CONTROL[1])]
    assert {"li_jiao", "gupta_cai_chen", "ddpm", "ddim"} <= set(main["sampler"])
    for sampler in ("li_jiao", "gupta_cai_chen"):
        assert {"theory", "tuned"} <= set(main.loc[main["sampler"] == sampler, "variant"])
    for _, row in main.iterrows():
        rows = table[(table["sampler"] == row["sampler"]) & (table["variant"] == row["variant"])]
        assert sorted(rows["v_small"]) == sorted(S._profile("quick")["v_small"])
        assert row["n"] + row["n_excluded"] == n_v, row.to_dict()
        assert row["n"] >= 3, row.to_dict()
        assert np.isfinite([row["e"], row["e_lo"], row["e_hi"]]).all(), row.to_dict()
        if get_sampler(row["sampler"]).randomized:
            assert row["interval"] == "jackknife 95%" and row["e_lo"] < row["e"] < row["e_hi"]
            assert np.isfinite(row["e_se"]) and row["e_se"] > 0
        else:
            assert row["interval"] == "local-slope range" and np.isnan(row["e_se"])
            assert (row["e_lo"], row["e_hi"]) == (row["e_local_min"], row["e_local_max"])
    # at L = 1 the tuned preset is the theory preset (up to the float rounding of L at delta): the same internal
    # draws (their seed does not depend on the parameters), the same law, the same N*
    for sampler in ("li_jiao", "gupta_cai_chen"):
        at1 = table[(table["sampler"] == sampler) & (table["v_small"] == 1.0)].set_index("variant")["nstar"]
        assert at1["tuned"] == pytest.approx(at1["theory"], rel=1e-6, abs=0)


def test_claims_not_violated(result):
    """Against the registry's L exponents (li_jiao 1, gupta_cai_chen 5/3, ddpm 1), with the allowance for the
    claims' log^k(cost) factor and the margin: every claimed family is 'loose' (checked on seeds 0 and 1), and
    clears claim - margin by more than the interval's half-width."""
    _, tables = result
    fits = tables["lipschitz_fits"]
    claimed = fits[(fits["regressor"] == "L_end") & fits["sampler"].isin(["li_jiao", "gupta_cai_chen", "ddpm"])]
    assert set(claimed["verdict"]) == {"loose"}, claimed[["sampler", "variant", "e", "e_lo", "e_hi", "verdict"]]
    for _, row in claimed.iterrows():
        assert row["e_claim"] - row["margin"] - row["e_hi"] > 0.5 * (row["e_hi"] - row["e_lo"]), row.to_dict()
    assert set(fits.loc[fits["sampler"] == "ddim", "verdict"]) <= {"no claim", "(no claim)", "control: grows",
                                                                    "(control: grows)"}
    # claims read from the registry
    claims = dict(zip(claimed["sampler"], claimed["e_claim"], strict=True))
    assert claims == {"li_jiao": 1.0, "gupta_cai_chen": 5 / 3, "ddpm": 1.0}
    # the li_jiao claim hides log^{8/3}(T): its allowance is positive, the others' logs do not move with L
    assert (claimed.loc[claimed["sampler"] == "li_jiao", "allowance"] > 0).all()
    assert (claimed.loc[claimed["sampler"] != "li_jiao", "allowance"] == 0).all()


def test_negative_control_uniform_grid_grows_with_L(result):
    """ddim on a grid uniform in OU time must resolve the stiff end t < v_small: every local slope of N* in L is
    above 0, and above every local slope of the preset's log-SNR grid. Judged by the same verdict rule against a
    claim of 'no L dependence' (exponent 0), the control is 'violated' with its whole range above the margin: a
    rule that could not see growth in L would fail here. (Deterministic: no seed dependence.)"""
    _, tables = result
    fits = tables["lipschitz_fits"]
    ctrl, ref = _fit(fits, "ddim", S.CONTROL[1]), _fit(fits, "ddim", "theory")
    assert ctrl["verdict"] == "control: grows" and ctrl["e_lo"] > 0, ctrl.to_dict()
    assert ctrl["e_lo"] > ref["e_hi"]
    assert verdict(ctrl["e_lo"], ctrl["e_hi"], 0.0, 0.0, ctrl["margin"]) == "violated"
    assert ctrl["e_lo"] > 2 * ctrl["margin"]
    assert verdict(ref["e_lo"], ref["e_hi"], 0.0, 0.0, ref["margin"]) == "consistent"


def test_L_from_lipschitz_sup_matches_finite_differences(result):
    """L_delta and L_end come from the target's lipschitz_sup; check them against a brute-force
    finite-difference Jacobian of the score along a grid of times >= the level."""
    _, tables = result
    table = tables["lipschitz_nstar"]
    for _, row in table.drop_duplicates(["v_small", "sampler"]).iterrows():
        target = S.family(row["v_small"]).at(int(row["d"]))
        for t_min, L in ((DEFAULT_DELTA, row["L_delta"]), (row["t_end"], row["L_end"])):
            ts = np.concatenate([[t_min], t_min + np.geomspace(1e-6, 20.0, 400)])
            h = 1e-4
            best = 0.0
            for t in ts:
                x = np.zeros((1, target.n_columns))
                for g in range(target.n_columns):
                    e = np.zeros_like(x)
                    e[0, g] = h
                    jac = (target.score(x + e, t) - target.score(x - e, t))[0, g] / (2 * h)
                    best = max(best, -jac)
            assert best == pytest.approx(L, rel=1e-4, abs=0)
    # L is 1 / v_small up to the early-stopping level: L_end <= 1/v_small, L_delta <= L_end
    assert np.all(table["L_end"] <= 1 / table["v_small"] * (1 + 1e-12))
    assert np.all(table["L_delta"] <= table["L_end"] * (1 + 1e-12))


def test_reads_L_and_log_allowance():
    d, eps = 1000, 0.1
    assert S.reads_L(get_sampler("li_jiao"), d, eps) and S.reads_L(get_sampler("gupta_cai_chen"), d, eps)
    assert not S.reads_L(get_sampler("ddpm"), d, eps) and not S.reads_L(get_sampler("ddim"), d, eps)
    # a log^k(cost) factor: e k / (ln N - k) averaged over the window; infinite where ln N <= k + 1/2
    claim = get_sampler("li_jiao").claim
    k = float(claim.log_factors[0].power)
    n = np.array([1e3, 1e4])
    assert S.log_allowance_L(claim, n) == pytest.approx(np.mean(float(claim.L_exp) * k / (np.log(n) - k)))
    assert S.log_allowance_L(claim, [np.exp(k)]) == np.inf


def test_family_and_profile_validation():
    fam = S.family(0.1)
    assert fam.lipschitz(0.0) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="profile"):
        S._profile("huge")
