"""Tests of the analysis layer: exponent fits, verdicts, figures and tables, on synthetic tables.

Synthetic N* = C d^a (1/eps)^b exp(sigma Z) with known (a, b): the fits must cover the truth at
the nominal rate over many independent replicates (not one lucky seed), misspecified claims must
be flagged (negative controls), and degenerate inputs must give NaN with a reason.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from analysis import figures, fits, tables, verdicts

D_GRID = (10, 30, 100, 300, 1000)
EPS_GRID = (0.3, 0.1, 0.03, 0.01, 0.003)


def synthetic_nstar(rng, *, a, b, sigma=0.1, ds=D_GRID, eps=EPS_GRID, groups=1, C=3.0, log_power=0.0,
                    sampler="s", metric="tv_annealed", target="gauss"):
    """N* = C d^a eps^-b log(d/eps)^log_power exp(sigma Z), one group per replicate."""
    D, E = (g.ravel() for g in np.meshgrid(np.asarray(ds, float), np.asarray(eps, float), indexing="ij"))
    frames = []
    for g in range(groups):
        n = C * D**a * E**-b * np.log(D / E) ** log_power * np.exp(sigma * rng.normal(size=D.size))
        frames.append(pd.DataFrame(dict(
            study="t", sampler=sampler if groups == 1 else f"{sampler}{g}", variant="theory", target=target,
            metric=metric, d=D, eps=E, nstar=n, crossing="interpolated", monotone=True, seed=g)))
    return pd.concat(frames)


def covered(f, name, truth):
    return ((f[f"{name}_lo"] <= truth) & (truth <= f[f"{name}_hi"])).to_numpy()


# ---------------------------------------------------------------- fits


def test_joint_fit_matches_brute_force_ols_and_hc3(rng):
    df = synthetic_nstar(rng, a=0.5, b=1.0)
    f = fits.fit_joint(df).iloc[0]
    X = np.column_stack([np.ones(len(df)), np.log(df["d"]), np.log(1 / df["eps"])])
    y = np.log(df["nstar"].to_numpy())
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    # HC3 by hand: (X'X)^-1 X' diag(e_i^2 / (1 - h_i)^2) X (X'X)^-1
    XtX_inv = np.linalg.inv(X.T @ X)
    h = np.einsum("ij,jk,ik->i", X, XtX_inv, X)
    e = y - X @ beta
    cov = XtX_inv @ (X.T * (e**2 / (1 - h) ** 2)) @ X @ XtX_inv
    assert np.allclose([f["c"], f["a"], f["b"]], beta, rtol=0, atol=1e-12)
    assert np.allclose([f["a_se"], f["b_se"]], np.sqrt(np.diag(cov))[1:], rtol=1e-10, atol=0)
    assert f["cov_ab"] == pytest.approx(cov[1, 2], rel=1e-10, abs=0)
    from scipy import stats

    half = stats.t.ppf(0.975, len(y) - 3) * f["a_se"]
    assert f["a_lo"] == pytest.approx(f["a"] - half) and f["a_hi"] == pytest.approx(f["a"] + half)
    assert f["n"] == 25 and f["df_resid"] == 22 and f["reason"] == ""
    assert f["resid_sd"] == pytest.approx(np.sqrt(np.sum(e**2) / 22))


@pytest.mark.parametrize("grid", [(D_GRID, EPS_GRID), ((10, 100, 1000), (0.1, 0.03, 0.01))], ids=["5x5", "3x3"])
def test_joint_fit_coverage_over_replicates(rng, grid):
    """Over 200 independent replicates the 95% intervals contain the truth about 95% of the time.

    Binomial standard error of the coverage at n = 200: sqrt(0.95 * 0.05 / 200) = 0.015; we accept
    coverage >= 0.95 - 4 s.e. Over-wide intervals are caught by comparing the mean robust s.e. with
    the spread of the estimates across replicates (ratio within [0.8, 1.3]: the relative error of a
    standard deviation from 200 draws is 5%, and HC3 is known to be slightly conservative).
    """
    ds, eps = grid
    df = synthetic_nstar(rng, a=0.5, b=1.0, sigma=0.1, ds=ds, eps=eps, groups=200)
    f = fits.fit_joint(df, by=["sampler"])
    assert len(f) == 200 and (f["n"] == len(ds) * len(eps)).all()
    floor = 0.95 - 4 * np.sqrt(0.95 * 0.05 / 200)
    for name, truth in (("a", 0.5), ("b", 1.0)):
        assert covered(f, name, truth).mean() >= floor, name
        ratio = f[f"{name}_se"].mean() / f[name].std(ddof=1)
        assert 0.8 < ratio < 1.3, (name, ratio)


def test_heteroskedastic_noise_still_covered(rng):
    """Noise growing with d (as Monte Carlo noise could): HC3 intervals keep their coverage."""
    D, E = (g.ravel() for g in np.meshgrid(np.asarray(D_GRID, float), np.asarray(EPS_GRID, float), indexing="ij"))
    sigma = 0.02 + 0.15 * np.log(D) / np.log(D.max())
    frames = [pd.DataFrame(dict(sampler=f"s{g}", d=D, eps=E, crossing="interpolated",
                                nstar=D**0.7 * E**-1.5 * np.exp(sigma * rng.normal(size=D.size))))
              for g in range(200)]
    f = fits.fit_joint(pd.concat(frames), by=["sampler"])
    floor = 0.95 - 4 * np.sqrt(0.95 * 0.05 / 200)
    assert covered(f, "a", 0.7).mean() >= floor
    assert covered(f, "b", 1.5).mean() >= floor


def test_fixed_slices_recover_exponents(rng):
    df = synthetic_nstar(rng, a=0.25, b=2.0 / 3.0, sigma=0.0)
    at_d = fits.fit_fixed_d(df)
    at_eps = fits.fit_fixed_eps(df)
    assert len(at_d) == len(D_GRID) and len(at_eps) == len(EPS_GRID)
    assert np.allclose(at_d["b"], 2.0 / 3.0, atol=1e-10)
    assert np.allclose(at_eps["a"], 0.25, atol=1e-10)
    noisy = synthetic_nstar(rng, a=0.25, b=2.0 / 3.0, sigma=0.05, groups=40)
    at_d = fits.fit_fixed_d(noisy, by=["sampler"])
    floor = 0.95 - 4 * np.sqrt(0.95 * 0.05 / len(at_d))
    assert covered(at_d, "b", 2.0 / 3.0).mean() >= floor
    assert (at_d["n"] == 5).all() and (at_d["reason"] == "").all()


def test_local_slopes_are_pairwise_log_log_slopes():
    # a bend: slope 1 in d up to d = 100, then 1/2; slope 2 in 1/eps everywhere
    ds, eps = np.array([10.0, 100.0, 1000.0]), np.array([0.1, 0.01])
    rows = []
    for d in ds:
        for e in eps:
            n = (d if d <= 100 else 100 * np.sqrt(d / 100)) * e**-2
            rows.append(dict(sampler="s", metric="kl", d=d, eps=e, nstar=n, crossing="interpolated"))
    ls = fits.local_slopes(pd.DataFrame(rows))
    along_d = ls[ls["direction"] == "d"].sort_values(["fixed", "x_lo"])
    assert np.allclose(along_d["slope"], [1.0, 0.5, 1.0, 0.5], atol=0)
    assert np.allclose(along_d["x_mid"], [np.sqrt(1000), np.sqrt(1e5)] * 2, atol=0)
    along_eps = ls[ls["direction"] == "eps"]
    assert np.allclose(along_eps["slope"], 2.0, atol=0) and len(along_eps) == 3
    assert np.allclose(along_eps["x_lo"], 10.0, atol=0) and np.allclose(along_eps["x_hi"], 100.0, atol=0)


def test_log_term_absorbs_polylog(rng):
    """N* = d^0.5 eps^-1 log(d/eps): the plain fit is biased upward, the log-term fit is not."""
    df = synthetic_nstar(rng, a=0.5, b=1.0, sigma=0.01, log_power=1.0)
    plain = fits.fit_joint(df).iloc[0]
    with_log = fits.fit_joint(df, log_term=True).iloc[0]
    assert plain["a_lo"] > 0.5 and plain["b_lo"] > 1.0  # logs show up as extra exponent
    assert with_log["a_lo"] <= 0.5 <= with_log["a_hi"]
    assert with_log["b_lo"] <= 1.0 <= with_log["b_hi"]
    assert with_log["g_lo"] <= 1.0 <= with_log["g_hi"]
    assert "log log" in with_log["model"]


def test_window_and_dropped_rows(rng):
    df = synthetic_nstar(rng, a=0.5, b=1.0).reset_index(drop=True)
    df.loc[0, ["nstar", "crossing"]] = [np.nan, "above_grid"]
    df.loc[1, ["nstar", "crossing"]] = [np.nan, "below_grid"]
    df.loc[2, "monotone"] = False
    f = fits.fit_joint(df, window={"d": (30, None), "eps": (None, 0.1)}).iloc[0]
    assert f["d_min"] == 30 and f["eps_max"] == 0.1
    assert f["n"] == 4 * 4 and f["n_dropped"] == 25 - 16
    assert "1 above_grid" in f["dropped"] and "1 below_grid" in f["dropped"] and "outside window" in f["dropped"]
    assert "d in [30, 1000]" in f["window"]
    full = fits.fit_joint(df).iloc[0]
    assert full["n"] == 23 and full["n_nonmonotone"] == 1
    with pytest.raises(ValueError, match="window"):
        fits.fit_joint(df, window={"L": (1, 2)})


# ---------------------------------------------------------------- degenerate inputs


def _rows(points, **extra):
    return pd.DataFrame([dict(sampler="s", metric="tv_annealed", d=d, eps=e, nstar=n, crossing="interpolated", **extra)
                         for d, e, n in points])


def test_too_few_points_give_nan_intervals_with_reason():
    two = _rows([(10, 0.1, 50.0), (100, 0.01, 900.0)])
    f = fits.fit_joint(two).iloc[0]
    assert np.isnan(f["a_lo"]) and np.isnan(f["b_hi"]) and f["reason"]
    slice2 = fits.fit_fixed_d(_rows([(10, 0.1, 50.0), (10, 0.01, 500.0)])).iloc[0]
    assert slice2["b"] == pytest.approx(1.0)  # the slope through two points is a real number
    assert np.isnan(slice2["b_lo"]) and np.isnan(slice2["b_hi"]) and "no interval" in slice2["reason"]
    one = fits.fit_fixed_eps(_rows([(10, 0.1, 50.0)])).iloc[0]
    assert np.isnan(one["a"]) and one["reason"]


def test_single_dimension_leaves_a_unidentified():
    f = fits.fit_joint(_rows([(10, e, 5 / e * (1 + 0.01 * k)) for k, e in enumerate([0.3, 0.1, 0.03, 0.01])])).iloc[0]
    assert np.isnan(f["a"]) and np.isnan(f["a_lo"]) and "a not identifiable" in f["reason"]
    assert np.isfinite(f["b"]) and np.isfinite(f["b_lo"])


def test_no_usable_points_and_leverage_one():
    nothing = pd.DataFrame([dict(sampler="s", metric="kl", d=10, eps=0.1, nstar=np.nan, crossing="above_grid")] * 3)
    f = fits.fit_joint(nothing).iloc[0]
    assert f["n"] == 0 and f["n_dropped"] == 3 and f["reason"] == "no usable points" and np.isnan(f["b"])
    # two points at eps = 0.1 and one alone at 0.01: the lone point has leverage 1, HC3 is undefined
    lev = fits.fit_fixed_d(_rows([(10, 0.1, 50.0), (10, 0.1, 55.0), (10, 0.01, 500.0)])).iloc[0]
    assert np.isfinite(lev["b"]) and np.isnan(lev["b_lo"]) and "leverage" in lev["reason"]


# ---------------------------------------------------------------- verdicts


def test_compare_at_equal_eps():
    rows = []
    for d in (10.0, 100.0):
        for e in (0.1, 0.01):
            rows.append(dict(sampler="li_jiao", variant="theory", target="g", metric="tv_annealed", d=d, eps=e,
                             nstar=2 * d ** (1 / 3) / e, status="ok"))
            rows.append(dict(sampler="gcc", variant="theory", target="g", metric="tv_annealed", d=d, eps=e,
                             nstar=d ** (5 / 12) / e if d < 100 else np.nan,
                             status="ok" if d < 100 else "above_grid"))
    cmp = verdicts.compare_at_equal_eps(pd.DataFrame(rows), "li_jiao", "gcc")
    assert len(cmp) == 4
    at10 = cmp[cmp["d"] == 10]
    assert np.allclose(at10["ratio"], 2 * 10 ** (1 / 3 - 5 / 12), atol=0)
    at100 = cmp[cmp["d"] == 100]
    assert at100["ratio"].isna().all() and (at100["status_b"] == "above_grid").all()
    text = tables.comparison_table(cmp)
    assert "above grid" in text and "N* li_jiao / N* gcc" in text
    with pytest.raises(ValueError, match="sampler"):
        verdicts.compare_at_equal_eps(pd.DataFrame(rows), "li_jiao", "nope")


# ---------------------------------------------------------------- figures


def _synthetic_results(tmp_path):
    """errors.csv and nstar.csv as experiments/scaling.py writes them, for a deterministic sampler."""
    costs = np.unique(np.round(np.geomspace(4, 4000, 10)).astype(int))
    err_rows, n_rows = [], []
    common = dict(study="t", variant="tuned", target="gauss_aniso", seed=1, profile="quick", params="{}")
    for d in (10, 100, 1000):
        err = np.minimum(0.9, 0.5 * np.sqrt(d) / costs)
        for c, e in zip(costs, err, strict=True):
            err_rows.append(dict(common, sampler="ddpm", metric="tv_annealed", d=d, cost=c, nfe=float(c),
                                 rounds=float(c), error=e, error_se=0.0, draws=1, gate="exact", start="exact"))
        for eps in (0.1, 0.03, 0.01):
            n = 0.5 * np.sqrt(d) / eps
            ok = costs[0] < n < costs[-1]
            n_rows.append(dict(common, sampler="ddpm", metric="tv_annealed", d=d, eps=eps, nstar=n if ok else np.nan,
                               crossing="interpolated" if ok else "above_grid", status="ok" if ok else "above_grid",
                               monotone=True, draws=1))
    pd.DataFrame(err_rows).to_csv(tmp_path / "errors.csv", index=False)
    pd.DataFrame(n_rows).to_csv(tmp_path / "nstar.csv", index=False)


def test_report_and_figures_from_tables(tmp_path):
    from analysis import report

    _synthetic_results(tmp_path)
    paths = report.write_report(tmp_path, tmp_path / "fig", diagnostics=True)
    names = sorted(p.name for p in paths)
    assert "headline__gauss_aniso__tv_annealed.png" in names
    assert any(n.startswith("nstar__") for n in names) and any(n.startswith("error_vs_nfe__") for n in names)
    assert all(p.parent.name == "diagnostics" for p in paths if not p.name.startswith("headline"))
    for p in paths:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    ex = pd.read_csv(tmp_path / "exponents.csv").iloc[0]
    assert ex["a"] == pytest.approx(0.5, abs=1e-9) and ex["interval"] == "local-slope range"
    assert (tmp_path / "tables.md").read_text().count("| ddpm |") >= 2
    with pytest.raises(ValueError, match="results_dir"):
        figures.make_all(tmp_path / "empty", tmp_path / "fig2")


# ---------------------------------------------------------------- tables


def test_render_table_format():
    df = pd.DataFrame(dict(name=["x|y", "z"], a=[0.5, np.nan], a_lo=[0.4, np.nan], a_hi=[0.61, np.nan],
                           n=[12, 3], r=[-0.0001, 1234.5678], ok=[True, False], frac=[Fraction(1, 3), None]))
    text = tables.render_table(df, ["name", "a [ci]", "n", "r", "ok", "frac"], headers={"a [ci]": "a [95% CI]"})
    assert text == (
        "| name | a [95% CI] | n | r | ok | frac |\n"
        "|---|---:|---:|---:|---|---|\n"
        "| x\\|y | 0.50 [0.40, 0.61] | 12 | -0.0001 | yes | 1/3 |\n"
        "| z | n/a | 3 | 1234.57 | no | n/a |\n"
    )
    assert tables.fmt_float(-0.001) == "-0.001" and tables.fmt_float(-0.004, 2) == "-0.004"
    assert tables.fmt_float(-0.0, 2) == "0.00" and tables.fmt_float(-0.04, 1) == "-0.04"
    assert tables.fmt_interval(0.5, np.nan, 0.6) == "0.50 [n/a]"
    assert tables.fmt_fraction(2 / 3) == "2/3" and tables.fmt_fraction(0.4142) == "0.41"
    with pytest.raises(ValueError, match="columns"):
        tables.render_table(df, ["b [ci]"])




# ---------------------------------------------------------------- readers of an output set (MANIFEST.json)

META = {"profile": "p", "seed": 0, "code_version": "x", "reference_mode": "exact"}


def _managed(folder):
    """A folder written as one output set by experiments.outputs.OutputSet (with its MANIFEST.json)."""
    from experiments.outputs import OutputSet

    outset = OutputSet(folder, folder / "figures")
    outset.write_text("ratios.csv", "")                     # an empty table: the block renders a placeholder
    assert outset.commit(META) == "written"
    return folder


def test_notes_readers_refuse_an_incomplete_output_set(tmp_path):
    from analysis import notes

    out = _managed(tmp_path / "results")
    assert "profile `p`" in notes.render("meta", out)        # complete: read
    assert "no N* ratios" in notes.render("ratio", out)
    # a table of another run written over one of the set
    (out / "ratios.csv").write_text("sampler_a,sampler_b\nx,y\n")
    for block in ("meta", "ratio", "decisive", "verdicts:ddpm"):
        with pytest.raises(ValueError, match="not a complete output set: ratios.csv does not match"):
            notes.render(block, out)


def test_notes_readers_refuse_a_set_killed_while_moving_in(tmp_path):
    """A run removes MANIFEST.json first and moves its staged files in: killed then, it leaves its
    staging folder and no manifest."""
    from analysis import notes

    out = _managed(tmp_path / "results")
    (out / "MANIFEST.json").unlink()
    (out / ".staging-999999").mkdir()
    with pytest.raises(ValueError, match=r"no MANIFEST.json but holds the staging folder \.staging-999999"):
        notes.render("meta", out)
    # the first run into a folder, still computing: nothing to read yet, so placeholders and no error
    first = tmp_path / "first"
    (first / ".staging-999999").mkdir(parents=True)
    (first / "cache").mkdir()
    assert "no committed main results" in notes.render("meta", first)
    assert "no N* ratios" in notes.render("ratio", first)


def test_notes_readers_refuse_a_table_outside_the_set(tmp_path):
    from analysis import notes

    out = _managed(tmp_path / "results")
    (out / "decisive.csv").write_text("variant,target,answer\ntuned,gauss,stale\n")   # left by an older run
    with pytest.raises(ValueError, match="decisive.csv is not part of the output set"):
        notes.render("decisive", out)
    assert "profile `p`" in notes.render("meta", out)          # the listed files still read


def test_notes_check_reports_an_incomplete_set_as_an_error(tmp_path, capsys):
    from analysis import notes

    out = _managed(tmp_path / "results")
    doc = tmp_path / "doc.md"
    doc.write_text("<!-- generated:meta -->\nold\n<!-- end generated:meta -->\n")
    assert notes.main(["--check", "--notes", str(doc), "--results", str(out)]) == 1     # stale, readable
    (out / "metadata.json").write_text("{}")
    assert notes.main(["--check", "--notes", str(doc), "--results", str(out)]) == 2
    assert "metadata.json does not match the manifest" in capsys.readouterr().err


def test_readers_accept_a_folder_without_manifest(tmp_path):
    """Tables of the layout before manifests (and the tests' synthetic tables) are read as they are."""
    from analysis import notes, report

    _synthetic_results(tmp_path)
    (tmp_path / "metadata.json").write_text(__import__("json").dumps(META))
    assert "profile `p`" in notes.render("meta", tmp_path)
    assert len(report.analyse(tmp_path)["exponents"])


def test_report_analyse_refuses_an_incomplete_output_set(tmp_path):
    from analysis import report
    from experiments.outputs import OutputSet

    (tmp_path / "tables").mkdir()
    _synthetic_results(tmp_path / "tables")
    outset = OutputSet(tmp_path / "results", tmp_path / "figures")
    for name in ("errors.csv", "nstar.csv"):
        outset.write_text(name, (tmp_path / "tables" / name).read_text())
    outset.commit(META)
    out = tmp_path / "results"
    assert len(report.analyse(out)["exponents"])
    (out / "nstar.csv").write_text((tmp_path / "tables" / "nstar.csv").read_text().replace("ddpm", "ddim"))
    with pytest.raises(ValueError, match="not a complete output set: nstar.csv does not match"):
        report.analyse(out)
    (out / "nstar.csv").unlink()                                # crash: one table of the set missing
    with pytest.raises(ValueError, match="not a complete output set: nstar.csv is missing"):
        report.analyse(out)


# ---------------------------------------------------------------- figures without N* rows to plot

NSTAR_COLUMNS = ("study", "sampler", "variant", "target", "metric", "d", "eps", "nstar", "status", "crossing",
                 "params")


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_headline_without_a_line_to_plot_draws_no_empty_legend(tmp_path):
    """One N* per sampler (no line at two d): no 'No artists with labels found' warning, a 'no data' note."""
    import warnings

    from matplotlib.figure import Figure

    one = pd.DataFrame([dict(study="s", sampler="ddpm", variant="tuned", target="g", metric="tv_annealed", d=10,
                             eps=0.1, nstar=100.0, status="ok", crossing="interpolated", params="{}")])
    drawn = []
    real_save = figures._save

    def keep(fig, path, formats=figures.FORMATS):
        drawn.append(fig)
        return real_save(fig, path, formats)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(figures, "_save", keep)
            paths = figures.headline(one, tmp_path, claims={})
        assert len(paths) == 1 and paths[0][0].is_file()
        assert any("no sampler has an ok N*" in t for t in _texts(drawn[0]))
        # the panels and diagnostics on empty tables: no legend warning either
        empty = pd.DataFrame({c: [] for c in NSTAR_COLUMNS})
        errors = pd.DataFrame({c: [] for c in ("d", "error", "error_se", "nfe", "metric", "params")})
        fig = Figure()
        for ax, plot in zip(fig.subplots(1, 3), (figures.plot_nstar_vs_d, figures.plot_nstar_vs_inv_eps,
                                                 figures.plot_error_vs_nfe), strict=True):
            plot(ax, errors if plot is figures.plot_error_vs_nfe else empty)
            assert ax.get_legend() is None
        assert _texts(fig) == [figures.NO_DATA] * 3
