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
    for name in ("errors", "nstar", "fits", "effects"):
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


def test_effect_arithmetic_with_negative_control():
    base = {"sampler": "ddpm", "target": "gauss_aniso", "metric": "tv_annealed", "a": 0.5, "a_se": 0.01,
            "b": 1.0, "b_se": 0.02, "df_resid": 20}
    same = pd.DataFrame([{**base, "variant": "variance=small"}, {**base, "variant": "variance=large"}])
    row = R.effects(same).iloc[0]
    assert row["da"] == 0.0 and row["db"] == 0.0 and row["changes"] == "neither"
    moved = pd.DataFrame([{**base, "variant": "variance=small"}, {**base, "variant": "variance=large", "a": 0.7}])
    row = R.effects(moved).iloc[0]
    assert row["changes"] == "a" and row["da_lo"] > 0
