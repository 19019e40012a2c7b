"""paper_notes.md and the README: generated tables fresh, block names valid, every sampler discussed.

(a) ``analysis.notes.stale_blocks(doc, results/)`` is empty for paper_notes.md and README.md: a table
    that no longer matches the committed results fails (skipped only while ``results/metadata.json`` does
    not exist, i.e. before the main study has been committed);
(b) negative control: a copy of paper_notes.md whose generated tables are fresh is reported clean, and the
    same copy with one generated table edited by hand is reported stale (on synthetic result tables, so
    the control runs whether or not results/ is populated; and on the committed results when present);
(c) every registered sampler is mentioned by name in the prose (outside the generated blocks);
(d) every generated block name is valid: a known kind, registered samplers, a compared pair, a known
    study, a sampler the profile actually runs; and each block renders without error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis import notes
from analysis.report import COMPARISONS, analyse
from experiments.cache import atomic_write_text
from experiments.extra_studies import studies
from experiments.samplers import REGISTRY
from experiments.studies import get_profile

ROOT = Path(__file__).resolve().parents[1]
NOTES = ROOT / "paper_notes.md"
RESULTS = ROOT / "results"
README = ROOT / "README.md"
KINDS = ("claims", "meta", "verdicts", "headline", "exponents", "decisive", "ratio", "comparison", "study")
SAMPLER_KINDS = ("verdicts", "exponents", "comparison", "headline")


def _text() -> str:
    return NOTES.read_text()


def _all_blocks() -> list[str]:
    """Block names of every document that holds generated blocks (paper_notes.md and the README)."""
    return [name for doc in (NOTES, README) for name in _block_names(doc.read_text())]


def _block_names(text: str) -> list[str]:
    return [m.group("name") for m in notes.BLOCK.finditer(text)]


def _prose(text: str) -> str:
    """The file without the bodies of its generated blocks."""
    return notes.BLOCK.sub(lambda m: m.group(1) + m.group(4), text)


def _samplers_of(name: str) -> list[str]:
    kind, _, arg = name.partition(":")
    return [s for s in arg.split(",") if s] if kind in SAMPLER_KINDS else []


def _profile_name() -> str:
    meta = RESULTS / "metadata.json"
    return json.loads(meta.read_text())["profile"] if meta.exists() else "default"


# -- synthetic result tables: every block can be rendered without the committed run ------------------


def _synthetic_results(folder: Path) -> Path:
    """Tables in the layout of results/ built from a made-up error law, through the real N* and analysis code.

    Every curve follows err(n) = (20 d^a / n)^(1/b) on a cost ladder, so that N*(d, eps) = 20 d^a eps^-b;
    randomized samplers get 8 replicate groups with 2% noise. No sampler is run, so this is fast and
    independent of the committed results. The numbers mean nothing; the point is that every block kind
    renders and that the staleness check reacts to an edit.
    """
    from experiments.complexity import nstar_table
    from experiments.internal import REPLICATE_GROUPS

    rng = np.random.default_rng(0)
    names = sorted({s for n in _all_blocks() for s in _samplers_of(n)} | {s for pair in COMPARISONS for s in pair})
    costs = np.unique(np.round(8 * 2.0 ** (np.arange(40) / 2)).astype(int))
    dims, eps_list = (10, 100, 1000, 10000), (0.2, 0.1, 0.05, 0.02)
    rows, reps, served = [], [], {}
    for k, sampler in enumerate(names):
        spec = REGISTRY[sampler]
        metrics = ("tv_annealed", "tv_quenched", "sqrt_kl") if spec.randomized else ("tv_annealed", "sqrt_kl")
        a, b = 0.25 + 0.05 * (k % 5), 0.5 + 0.1 * (k % 4)
        for variant in ("tuned", "theory"):
            params = json.dumps({"T": 5.0} if variant == "theory" else {})
            served[(sampler, variant, "gauss_aniso", params)] = {(d, e) for d in dims for e in eps_list}
            for metric in metrics:
                for d in dims:
                    for c in costs:
                        err = (20.0 * d**a / c) ** (1 / b)
                        noise = 0.02 * rng.standard_normal(REPLICATE_GROUPS) if spec.randomized else np.zeros(1)
                        row = {"study": "scaling", "sampler": sampler, "variant": variant, "target": "gauss_aniso",
                               "metric": metric, "d": d, "cost": int(c), "nfe": float(c),
                               "error": err * float(np.exp(noise.mean())),
                               "error_se": err * float(noise.std() / np.sqrt(len(noise))),
                               "draws": 256 if spec.randomized else 1,
                               "gate": "resolved" if spec.randomized else "exact", "seed": 0,
                               "profile": "synthetic", "params": params}
                        rows.append(row)
                        if spec.randomized:
                            for g in range(REPLICATE_GROUPS):
                                loo = np.delete(noise, g).mean()
                                reps.append({k_: row[k_] for k_ in ("study", "sampler", "variant", "target",
                                                                    "metric", "d", "cost", "params")}
                                            | {"group": g, "error": err * float(np.exp(loo))})
    errors, replicates = pd.DataFrame(rows), pd.DataFrame(reps)
    nstar, nstar_reps = nstar_table(errors, replicates, served=served)
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in (("errors", errors), ("errors_replicates", replicates), ("nstar", nstar),
                     ("nstar_replicates", nstar_reps)):
        atomic_write_text(folder / f"{name}.csv", df.to_csv(index=False))
    for name, df in analyse(folder).items():
        atomic_write_text(folder / f"{name}.csv", df.to_csv(index=False))
    atomic_write_text(folder / "metadata.json", json.dumps(
        {"profile": "synthetic", "seed": 0, "code_version": "synthetic", "reference_mode": "synthetic"}))
    # one study with a summary, so that the study block kind renders a real inclusion as well
    (folder / "rounds").mkdir(exist_ok=True)
    atomic_write_text(folder / "rounds" / "tables.md", "| synthetic | table |\n|---|---|\n| 1 | 2 |\n")
    return folder


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return _synthetic_results(tmp_path_factory.mktemp("synthetic_results"))


def _edit_one_table(text: str, name: str) -> str:
    """Change one cell of the generated block ``name`` by hand (a digit, or failing that a letter)."""
    m = next(m for m in notes.BLOCK.finditer(text) if m.group("name") == name)
    body = m.group("body")
    lines = body.splitlines(keepends=True)
    i = next(j for j, line in enumerate(lines) if line.startswith("|") and not line.startswith("|---")
             and j > 1)                                            # a data row, not the header
    row = lines[i]
    digit = re.search(r"\d", row)
    if digit:
        k = digit.start()
        row = row[:k] + str((int(row[k]) + 1) % 10) + row[k + 1:]
    else:
        row = row.replace("|", "| edited", 1)
    lines[i] = row
    new_body = "".join(lines)
    assert new_body != body
    return text[:m.start("body")] + new_body + text[m.end("body"):]


# -- (a) ---------------------------------------------------------------------------------------------


def test_generated_tables_match_committed_results():
    if not (RESULTS / "metadata.json").exists():
        pytest.skip("results/metadata.json is absent: the main study has not been committed yet "
                    "(run `python -m experiments.scaling`, then `python -m analysis.notes`)")
    for doc in (NOTES, README):
        stale = notes.stale_blocks(doc, RESULTS)
        assert stale == [], f"stale generated blocks in {doc.name}: {stale}; run `python -m analysis.notes`"


# -- (b) ---------------------------------------------------------------------------------------------


def test_hand_edited_table_is_reported_stale(tmp_path, synthetic):
    copy = tmp_path / "paper_notes.md"
    copy.write_text(notes.regenerate(_text(), synthetic))
    assert notes.stale_blocks(copy, synthetic) == []                      # fresh: clean
    # control of the control: prose outside the blocks may change freely
    copy.write_text(copy.read_text().replace("## 0. How to read this file", "## 0. How to read this file (edited)"))
    assert notes.stale_blocks(copy, synthetic) == []
    fresh = copy.read_text()
    for name in ("verdicts:li_jiao", "claims"):
        copy.write_text(_edit_one_table(fresh, name))
        assert notes.stale_blocks(copy, synthetic) == [name]


def test_hand_edited_table_is_reported_stale_on_committed_results(tmp_path):
    if not (RESULTS / "metadata.json").exists():
        pytest.skip("results/metadata.json is absent; the synthetic-results control above still runs")
    copy = tmp_path / "paper_notes.md"
    copy.write_text(notes.regenerate(_text(), RESULTS))
    assert notes.stale_blocks(copy, RESULTS) == []
    copy.write_text(_edit_one_table(copy.read_text(), "claims"))
    assert notes.stale_blocks(copy, RESULTS) == ["claims"]


def test_check_command_exits_nonzero_on_a_stale_copy(tmp_path, synthetic):
    copy = tmp_path / "paper_notes.md"
    copy.write_text(_edit_one_table(notes.regenerate(_text(), synthetic), "claims"))
    assert notes.main(["--notes", str(copy), "--results", str(synthetic), "--check"]) == 1
    assert notes.main(["--notes", str(copy), "--results", str(synthetic)]) == 0     # regenerate ...
    assert notes.main(["--notes", str(copy), "--results", str(synthetic), "--check"]) == 0   # ... fresh


# -- (c) ---------------------------------------------------------------------------------------------


def test_every_registered_sampler_is_discussed_in_the_prose():
    from experiments.samplers import BUILTIN  # this repository's samplers: plug-ins are not in its notes

    prose = _prose(_text())
    missing = [name for name in sorted(BUILTIN) if f"`{name}`" not in prose]
    assert not missing, f"samplers not mentioned (as `name`) outside the generated tables: {missing}"


# -- (d) ---------------------------------------------------------------------------------------------


def test_markers_are_balanced_and_unique():
    text = _text()
    names = _block_names(text)
    starts = re.findall(r"^<!-- generated:", text, re.M)
    ends = re.findall(r"^<!-- end generated:", text, re.M)
    assert len(starts) == len(names) == len(ends), "a marker at the start of a line is not part of a block"
    assert len(names) == len(set(names)), "a block name appears twice"
    assert {"claims", "meta"} <= set(names)


def test_every_block_name_is_valid():
    profile = get_profile(_profile_name())
    in_profile = {r.sampler for r in profile.runs}
    known_studies = set(studies())
    for name in _all_blocks():
        kind, _, arg = name.partition(":")
        assert kind in KINDS, name
        if kind in ("claims", "meta", "decisive", "ratio"):
            assert arg == "", name
        for sampler in _samplers_of(name):
            assert sampler in REGISTRY, (name, sampler)
        if kind in ("verdicts", "exponents", "headline"):
            assert _samplers_of(name), name
            # a block for a sampler the main study never runs would stay empty forever
            assert set(_samplers_of(name)) <= in_profile, (name, sorted(set(_samplers_of(name)) - in_profile))
        if kind == "comparison":
            assert tuple(_samplers_of(name)) in COMPARISONS, (name, COMPARISONS)
        if kind == "study":
            assert arg in known_studies, (name, sorted(known_studies))


def test_every_block_renders(synthetic):
    for name in _all_blocks():
        body = notes.render(name, synthetic)
        assert isinstance(body, str) and body.strip(), name
        kind = name.partition(":")[0]
        if kind in SAMPLER_KINDS:                                        # the synthetic rows are found
            assert "no rows" not in body and "no comparison" not in body and "no theory" not in body, \
                (name, body[:200])
    if (RESULTS / "metadata.json").exists():
        for name in _all_blocks():
            assert notes.render(name, RESULTS).strip(), name


def test_unknown_block_name_is_rejected(synthetic):
    with pytest.raises(ValueError, match="unknown generated block"):
        notes.render("verdict:li_jiao", synthetic)


def test_a_study_without_results_renders_a_placeholder(tmp_path):
    assert "no committed results" in notes.render("study:rounds", tmp_path)


def test_study_headings_are_nested_below_their_section():
    text = "# Study: x\n\n## part\n\n```\n# not a heading\n```\n###### deep"
    assert notes.nest_headings(text, 4) == "#### Study: x\n\n##### part\n\n```\n# not a heading\n```\n###### deep"
    assert notes.nest_headings("#### a\n##### b", 4) == "#### a\n##### b"          # already nested
    assert notes.nest_headings("no heading", 4) == "no heading"


def _heading_levels(text: str) -> list[int]:
    levels, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"(#{1,6}) ", line)
        if m:
            levels.append(len(m.group(1)))
    return levels


def test_heading_hierarchy_has_no_jumps():
    """One title, and no heading more than one level below the one before it (a valid outline)."""
    levels = _heading_levels(_text())
    assert levels[0] == 1 and levels.count(1) == 1, "paper_notes.md must have exactly one top-level title"
    jumps = [(a, b) for a, b in zip(levels, levels[1:], strict=False) if b > a + 1]
    assert not jumps, f"heading level jumps: {jumps[:5]}"
    assert _heading_levels("# t\n### skipped") == [1, 3]          # control: the parser sees the jump


def test_a_study_block_shows_the_deciding_tables_and_links_the_full_report(tmp_path):
    report = ("<!-- generated -->\n\n# Study: x\n\nIntro.\n\n**Sizes**\n\n| n | m |\n|---|---|\n| 1 | 2 |\n\n"
              "## Verdicts\n\n| sampler | verdict |\n|---|---|\n| a | loose |\n\nA closing remark.\n")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "tables.md").write_text(report)
    body = notes.render_study(tmp_path, "x")
    assert body.startswith("#### Study: x") and "##### Verdicts" in body and "| a | loose |" in body
    assert "Sizes" not in body and "| 1 | 2 |" not in body and "closing" not in body      # details stay out
    assert body.endswith("[`results/x/tables.md`](results/x/tables.md).")
    # no deciding table: the first table stands for the report
    assert "| 1 | 2 |" in notes.study_summary("# t\n\n| n | m |\n|---|---|\n| 1 | 2 |\n\n| p |\n|---|\n| 3 |")
    assert "| 3 |" not in notes.study_summary("# t\n\n| n | m |\n|---|---|\n| 1 | 2 |\n\n| p |\n|---|\n| 3 |")
