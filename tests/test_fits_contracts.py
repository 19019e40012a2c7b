"""analysis/fits.py: the parts of the fits' contract that tests/test_analysis.py does not reach — group
keys that are missing or NaN, two-sided windows, N* = 1, collinear regressors, R^2 and the residual sd
of the slices by brute force, the ranges and model strings a report prints, and the columns of an empty
table of local slopes. Each test was written for a change that mutation testing showed no test noticed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import fits

D_GRID = (10.0, 30.0, 100.0, 300.0, 1000.0)
EPS_GRID = (0.3, 0.1, 0.03, 0.01, 0.003)


def grid_table(*, a=0.5, b=1.0, sigma=0.05, seed=0, **columns):
    """N* = 3 d^a eps^-b exp(sigma Z) on the 5 x 5 grid, with the given extra columns."""
    rng = np.random.default_rng(seed)
    D, E = (g.ravel() for g in np.meshgrid(D_GRID, EPS_GRID, indexing="ij"))
    n = 3.0 * D**a * E**-b * np.exp(sigma * rng.normal(size=D.size))
    return pd.DataFrame(dict(sampler="s", metric="kl", d=D, eps=E, nstar=n, crossing="interpolated", **columns))


def test_grouping_by_a_missing_column_names_it():
    with pytest.raises(ValueError, match=r"^by must name columns of the table; missing \['seed'\]$"):
        fits.fit_joint(grid_table(), by=["sampler", "seed"])


def test_a_group_whose_key_is_missing_is_fitted_not_dropped():
    # a CSV written without a variant reads back as NaN; those curves must still be fitted
    df = pd.concat([grid_table(variant="theory"), grid_table(variant=np.nan, seed=1)])
    f = fits.fit_joint(df)
    assert len(f) == 2 and (f["n"] == 25).all()
    assert f["variant"].isna().sum() == 1
    slopes = fits.local_slopes(df)
    assert slopes["variant"].isna().any() and (slopes["variant"] == "theory").any()


def test_a_two_sided_window_keeps_both_ends():
    f = fits.fit_joint(grid_table(), window={"d": (30, 300), "eps": (0.01, 0.1)}).iloc[0]
    assert (f["d_min"], f["d_max"], f["eps_min"], f["eps_max"]) == (30, 300, 0.01, 0.1)
    assert f["n"] == 9 and f["n_dropped"] == 16


def test_nstar_of_one_is_a_usable_point():
    # one step reaches eps: log N* = 0 is a point of the fit, not a failed search
    df = grid_table()
    df.loc[0, "nstar"] = 1.0
    kept, dropped = fits.clean(df)
    assert len(kept) == 25 and dropped.empty
    df.loc[1, "nstar"] = 0.0
    kept, dropped = fits.clean(df)
    assert len(kept) == 24 and dropped["drop_reason"].tolist() == ["nstar not finite"]


def test_collinear_regressors_give_nan_with_their_reason():
    # d and 1/eps grow together (d = 1/eps): log d and log(1/eps) are one regressor
    f = fits.fit_joint(pd.DataFrame(dict(sampler="s", d=[10.0, 100.0, 1000.0, 1e4], eps=[0.1, 0.01, 1e-3, 1e-4],
                                         nstar=[5.0, 40.0, 330.0, 3000.0], crossing="interpolated"))).iloc[0]
    assert np.isnan(f["a"]) and np.isnan(f["b"]) and np.isnan(f["a_lo"])
    assert f["reason"] == "regressors collinear over the window: not determined"


def test_r2_and_residual_sd_match_brute_force():
    df = grid_table(sigma=0.2)
    y = np.log(df["nstar"].to_numpy())
    X = np.column_stack([np.ones(len(df)), np.log(df["d"]), np.log(1 / df["eps"])])
    e = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    f = fits.fit_joint(df).iloc[0]
    assert f["r2"] == pytest.approx(1 - np.sum(e**2) / np.sum((y - y.mean()) ** 2), rel=1e-12, abs=0)
    # a flat response (total sum of squares 0.02 < 1) still has an R^2
    x = np.arange(6.0)
    small = fits.ols_hc3(0.01 * x + 0.05 * np.array([1, -1, 0.5, 0.2, -0.7, 0.1]), np.column_stack([np.ones(6), x]),
                         ["c", "a"])
    assert 0 < small["r2"] < 1


def test_slices_report_resid_sd_range_and_honour_the_window():
    df = grid_table(sigma=0.2)
    at_d = fits.fit_fixed_d(df)
    first = df[df["d"] == 10.0]
    y = np.log(first["nstar"].to_numpy())
    X = np.column_stack([np.ones(5), np.log(1 / first["eps"])])
    e = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    row = at_d[at_d["d"] == 10.0].iloc[0]
    assert row["resid_sd"] == pytest.approx(np.sqrt(np.sum(e**2) / 3), rel=1e-12, abs=0)
    assert row["range"] == "eps in [0.003, 0.3]"
    windowed = fits.fit_fixed_eps(df, window={"d": (30, 300)})
    assert (windowed["n"] == 3).all() and (windowed["n_dropped"] == 2).all()
    assert (windowed["range"] == "d in [30, 300]").all()


def test_joint_fit_states_its_model():
    df = grid_table()
    assert fits.fit_joint(df).iloc[0]["model"] == "log N* = c + a log d + b log(1/eps)"
    with_log = fits.fit_joint(df, log_term=True).iloc[0]["model"]
    assert with_log == "log N* = c + a log d + b log(1/eps) + g log log(d/eps)"


def test_local_slopes_of_a_table_without_pairs_is_empty_with_its_columns():
    one_point = grid_table().iloc[:1]
    ls = fits.local_slopes(one_point)
    assert ls.empty
    assert list(ls.columns) == ["sampler", "metric", "direction", "fixed", "x_lo", "x_hi", "x_mid", "slope"]


def test_a_table_without_the_needed_columns_is_refused_by_name():
    with pytest.raises(ValueError, match=r"^df must have columns \['d', 'eps', 'nstar'\]; missing \['nstar'\]$"):
        fits.clean(grid_table().drop(columns="nstar"))


def test_an_exact_fit_has_zero_residual_degrees_of_freedom():
    f = fits.fit_joint(grid_table().iloc[[0, 1, 5]]).iloc[0]          # three points, three parameters
    assert f["df_resid"] == 0 and np.isfinite(f["a"]) and np.isnan(f["a_lo"])


def test_the_log_term_column_appears_only_when_asked_for():
    assert "g" not in fits.fit_joint(grid_table()).columns
    assert {"g", "g_se", "g_lo", "g_hi"} <= set(fits.fit_joint(grid_table(), log_term=True).columns)


def test_slices_group_by_the_columns_given_and_describe_their_drops():
    df = grid_table(variant="theory")
    df.loc[0, ["nstar", "crossing"]] = [np.nan, "above_grid"]
    at_d = fits.fit_fixed_d(df, by=["sampler"])
    assert list(at_d.columns[:2]) == ["sampler", "d"] and "variant" not in at_d.columns
    first = at_d[at_d["d"] == 10.0].iloc[0]
    assert first["n"] == 4 and first["dropped"] == "1 above_grid"
    windowed = fits.fit_fixed_d(df, window={"eps": (0.01, 0.1)})
    assert (windowed["range"] == "eps in [0.01, 0.1]").all()


def test_a_slice_without_usable_points_says_so():
    df = grid_table()
    df.loc[df["d"] == 10.0, ["nstar", "crossing"]] = [np.nan, "above_grid"]
    row = fits.fit_fixed_d(df).set_index("d").loc[10.0]
    assert row["n"] == 0 and row["range"] == "no points" and row["reason"] == "no usable points"
