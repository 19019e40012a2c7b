"""Study "lipschitz" (experiments/extra_studies/lipschitz.py), quick profile: fitted exponent of L in
N*(L) at fixed d and eps against the claims' L_exp, with a negative control (ddim on a uniform grid)."""

import numpy as np
import pytest

from experiments.extra_studies import StudyContext, studies
from experiments.extra_studies import lipschitz as S
from experiments.samplers._grid import DEFAULT_DELTA


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("lipschitz")
    ctx = StudyContext(profile="quick", seed=0, out=out, figures=out / "figures")
    return ctx, S.run(ctx)


def test_registered_and_outputs(result):
    ctx, _ = result
    assert studies()["lipschitz"] is S.STUDY
    for name in ("errors.csv", "lipschitz_nstar.csv", "lipschitz_fits.csv", "tables.md"):
        assert (ctx.out / name).stat().st_size > 0
    assert (ctx.figures / "nstar_vs_L.png").stat().st_size > 10_000


def test_exponents_finite_with_intervals_and_no_violation(result):
    _, tables = result
    fits = tables["lipschitz_fits"]
    main = fits[(fits["regressor"] == "L_end") & (fits["variant"] != S.CONTROL[1])]
    assert {"li_jiao", "gupta_cai_chen", "ddpm", "ddim"} <= set(main["sampler"])
    assert {"theory", "tuned"} <= set(main.loc[main["sampler"] == "li_jiao", "variant"])
    assert {"theory", "tuned"} <= set(main.loc[main["sampler"] == "gupta_cai_chen", "variant"])
    for _, row in main.iterrows():
        assert row["n"] >= 4, row.to_dict()
        assert np.isfinite([row["e"], row["e_lo"], row["e_hi"]]).all(), row.to_dict()
        assert row["e_lo"] < row["e"] < row["e_hi"]
    claimed = main[main["sampler"].isin(["li_jiao", "gupta_cai_chen", "ddpm"])]
    assert set(claimed["verdict"]) <= {"tight", "loose"}, claimed[["sampler", "variant", "verdict"]]
    assert set(main.loc[main["sampler"] == "ddim", "verdict"]) == {"no claim"}
    # claims read from the registry
    claims = dict(zip(claimed["sampler"], claimed["e_claim"], strict=True))
    assert claims == {"li_jiao": 1.0, "gupta_cai_chen": 5 / 3, "ddpm": 1.0}


def test_negative_control_uniform_grid_grows_with_L(result):
    """ddim on a grid uniform in OU time must resolve the stiff end t < v_small: N* grows with L
    (interval above 0), while the preset's log-SNR grid does not (interval below the control's)."""
    _, tables = result
    fits = tables["lipschitz_fits"]
    ctrl = fits[(fits["variant"] == S.CONTROL[1]) & (fits["regressor"] == "L_end")].iloc[0]
    ref = fits[(fits["sampler"] == "ddim") & (fits["variant"] == "theory") & (fits["regressor"] == "L_end")].iloc[0]
    assert ctrl["e_lo"] > 0, ctrl.to_dict()
    assert ctrl["e_lo"] > ref["e_hi"]


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
            assert best == pytest.approx(L, rel=1e-4)
    # L is 1 / v_small up to the early-stopping level: L_end <= 1/v_small, L_delta <= L_end
    assert np.all(table["L_end"] <= 1 / table["v_small"] * (1 + 1e-12))
    assert np.all(table["L_delta"] <= table["L_end"] * (1 + 1e-12))


def test_family_and_profile_validation():
    fam = S.family(0.1)
    assert fam.lipschitz(0.0) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="profile"):
        S._profile("huge")
