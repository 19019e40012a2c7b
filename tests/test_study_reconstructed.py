"""Study "reconstructed" (experiments/extra_studies/reconstructed.py): quick profile in a temporary folder.

It measures effects rather than checking a claim, so the assertions are about the measurement itself:
every switch is live (the alternative changes the error curve: a switch that were silently ignored
would give identical errors), the effect table covers every switch, and the effect arithmetic has a
negative control (an alternative identical to the choice has zero effect and is reported as such).
"""

import numpy as np
import pandas as pd
import pytest

from experiments.extra_studies import StudyContext
from experiments.extra_studies import reconstructed as R


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("reconstructed")
    ctx = StudyContext(profile="quick", seed=0, out=out, figures=out / "figures")
    return out, R.STUDY.run(ctx)


def _quick_switches():
    return [(s, sw, vals) for s, sw, vals, _, _ in R.SWITCHES if s in R.PROFILES["quick"]["samplers"]]


def test_outputs_written(quick):
    out, t = quick
    for name in ("errors", "nstar", "exponents", "effects"):
        assert (out / f"{name}.csv").exists() and len(t[name]) > 0
    assert "generated" in (out / "tables.md").read_text()
    assert (out / "figures" / "reconstructed_exponents.png").stat().st_size > 10_000
    eff = t["effects"]
    for sampler, switch, values in _quick_switches():
        rows = eff[(eff["sampler"] == sampler) & (eff["switch"] == switch) & (eff["metric"] == "tv_annealed")]
        assert list(rows["alternative"]) == list(values[1:]), (sampler, switch)


def test_every_switch_is_live(quick):
    _, t = quick
    e = t["errors"]
    for sampler, switch, values in _quick_switches():
        curves = []
        for value in values:
            part = e[(e["sampler"] == sampler) & (e["variant"] == f"{switch}={value}") & (e["metric"] == "tv_annealed")]
            curves.append(part.sort_values(["d", "cost"]).set_index(["d", "cost"])["error"])
        common = curves[0].index.intersection(curves[1].index)
        assert len(common) > 0
        assert np.max(np.abs(curves[0][common] - curves[1][common])) > 1e-6, (sampler, switch)


def _exps(variants, randomized):
    return pd.DataFrame([dict(study="reconstructed", sampler="ddram" if randomized else "ddpm", target="gauss_aniso",
                              metric="tv_annealed", randomized=randomized, variant=v, a=a, b=b)
                         for v, (a, b) in variants.items()])


def test_effect_arithmetic_with_negative_control():
    # deterministic: exact differences, compared with the verdict margins (1/24 for a, 1/12 for b)
    same = _exps({"variance=small": (0.5, 1.0), "variance=large": (0.5, 1.0)}, False)
    row = R.effects(same, pd.DataFrame()).iloc[0]
    assert row["da"] == 0.0 and row["db"] == 0.0 and row["changes"] == "neither"
    moved = _exps({"variance=small": (0.5, 1.0), "variance=large": (0.7, 1.0)}, False)
    assert R.effects(moved, pd.DataFrame()).iloc[0]["changes"] == "a"
    small = _exps({"variance=small": (0.5, 1.0), "variance=large": (0.52, 1.0)}, False)
    assert R.effects(small, pd.DataFrame()).iloc[0]["changes"] == "neither"      # below the margin
    # randomized: the paired jackknife over replicate groups; common noise cancels, a real shift does not
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, 8)                    # shared by both readings (common random numbers)
    reps = []
    for v, shift in (("linear=relative_score", 0.0), ("linear=score", 0.03)):
        for g in range(8):
            reps.append(dict(study="reconstructed", sampler="ddram", variant=v, target="gauss_aniso",
                             metric="tv_annealed", group=g, a=0.4 + shift + noise[g], b=0.8 + noise[g]))
    ex = _exps({"linear=relative_score": (0.4, 0.8), "linear=score": (0.43, 0.8)}, True)
    row = R.effects(ex, pd.DataFrame(reps)).iloc[0]
    # a shift of 0.03 is detected (interval excludes 0) but smaller than the d-margin 1/24: no verdict can move
    assert row["da"] == pytest.approx(0.03) and row["da_lo"] > 0 and row["detected"] == "a"
    assert row["changes"] == "neither"
    # negative control: without common random numbers (independent noise) the same shift is not resolved
    indep = [dict(r, a=r["a"] + (rng.normal(0, 0.05) if r["variant"] == "linear=score" else 0.0)) for r in reps]
    assert R.effects(ex, pd.DataFrame(indep)).iloc[0]["detected"] == "neither"
    # a shift of 0.1 (beyond the margin) changes a
    big = [dict(r, a=r["a"] + (0.07 if r["variant"] == "linear=score" else 0.0)) for r in reps]
    ex_big = _exps({"linear=relative_score": (0.4, 0.8), "linear=score": (0.5, 0.8)}, True)
    assert R.effects(ex_big, pd.DataFrame(big)).iloc[0]["changes"] == "a"
