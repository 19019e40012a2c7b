"""Study "score_error" (quick profile): TV is linear in eps_score at large cost for every sampler
(verdict not "violated" against slope 1), and the negative control at small cost is "violated"."""

import pandas as pd
import pytest

from experiments.extra_studies import StudyContext, studies
from experiments.extra_studies.score_error import MAX_DISC_SHARE, slope_verdict

SAMPLERS = ("ddpm", "exponential_integrator", "li_jiao", "gupta_cai_chen")


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("score_error")
    ctx = StudyContext(profile="quick", seed=0, out=out, figures=out / "figures")
    tables = studies()["score_error"].run(ctx)
    return out, tables


def test_slope_verdict_reads_the_upper_bound_correctly():
    assert slope_verdict(0.4, 0.8) == "violated"      # TV decays slower than eps: no constant C works
    assert slope_verdict(0.9, 1.1) == "tight"
    assert slope_verdict(1.2, 1.6) == "loose"


def test_outputs_written(result):
    out, tables = result
    for name in ("score_error.csv", "score_error_fits.csv", "tables.md", "figures/score_error.png"):
        assert (out / name).stat().st_size > 0
    assert pd.read_csv(out / "score_error_fits.csv").shape[0] == len(tables["score_error_fits"])


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_tv_linear_in_score_error_at_large_cost(result, sampler):
    fits = result[1]["score_error_fits"]
    row = fits[(fits["sampler"] == sampler) & (fits["cost_kind"] == "large")].iloc[0]
    assert row["n"] >= 3 and row["df_resid"] >= 1, row["reason"]
    assert row["disc_share_max"] <= MAX_DISC_SHARE                 # discretisation is negligible in the window
    assert row["verdict"] != "violated", (row["s"], row["s_lo"], row["s_hi"])
    assert row["s_lo"] > 0.5                                       # clearly a growing error, not a floor


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_negative_control_small_cost_fails_the_linear_check(result, sampler):
    fits = result[1]["score_error_fits"]
    row = fits[(fits["sampler"] == sampler) & (fits["cost_kind"] == "small")].iloc[0]
    assert row["verdict"] == "violated", (row["s"], row["s_lo"], row["s_hi"])
