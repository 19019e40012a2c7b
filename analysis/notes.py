"""Generated blocks of paper_notes.md, rebuilt from the committed result tables and the registry.

paper_notes.md (and the README's headline table) hold prose written by people and tables written by
this module. A table lives between two markers::

    <!-- generated:NAME -->
    ...
    <!-- end generated:NAME -->

``python -m analysis.notes`` rewrites every block from its source; ``python -m analysis.notes --check``
exits 1 if any block differs from what the committed results give (tests/test_paper_notes.py runs the
check, so a stale table fails the test suite). Block names:

``claims``                   the claim of every sampler of this repository (from the registry; plug-ins excluded)
``headline:S1,S2,...``       each claim in its own metric, primary fit, for those samplers (the README's table)
``verdicts:S1,S2,...``       primary verdicts of the main study (results/verdicts.csv) for those samplers
``exponents:S1,S2,...``      primary exponent estimates with their intervals (results/exponents.csv)
``decisive``                 Li & Jiao against Gupta, Cai & Chen: exponent differences and the answer (decisive.csv)
``ratio``                    N*(li_jiao) / N*(gupta_cai_chen) with jackknife intervals (results/ratios.csv)
``comparison:A,B``           N*(A) / N*(B) at equal eps (results/comparisons.csv)
``study:NAME``               the generated summary of an extra study (results/NAME/tables.md)
``meta``                     code version, profile and seed of the committed main results
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import pandas as pd

from analysis import tables

ROOT = Path(__file__).resolve().parents[1]
#: the files of the repository that hold generated blocks
DOCUMENTS = ("paper_notes.md", "README.md")
BLOCK = re.compile(r"(<!-- generated:(?P<name>[^ ]+) -->\n)(?P<body>.*?)(<!-- end generated:(?P=name) -->)", re.S)


class MissingResults(Exception):
    """A source table is not committed yet: the block renders a placeholder line."""


def _source(results: Path, name: str) -> Path:
    """``results/name`` after checking that ``results`` holds one complete output set that lists the file.

    A folder with a manifest must verify (a run that crashed mid-write leaves one that does not, or none
    beside its staging folder), so that a block never mixes tables of two runs; a folder without a
    manifest (tables of an older layout, synthetic tables of the tests) is read as it is
    (:func:`experiments.outputs.require_complete` with ``unmanaged_ok``). ValueError otherwise."""
    from experiments.outputs import require_complete, require_in_set

    results = Path(results)
    folder, rel = (results / name).parent, (results / name).name
    require_complete(folder, unmanaged_ok=True)
    require_in_set(folder, rel)
    return results / name


def _csv(results: Path, name: str) -> pd.DataFrame:
    path = _source(results, name)
    if not path.exists():
        raise MissingResults(f"_{name} is not in the committed results: run `python -m experiments.scaling`_")
    return pd.read_csv(path)


def _samplers(arg: str) -> list[str]:
    return [s for s in arg.split(",") if s]


def render_claims() -> str:
    """The claims of the built-in samplers only: a sampler of an installed plug-in (or one registered at run
    time) is not part of the committed documents, so it must not make their block stale."""
    from experiments.samplers._plugins import builtin_registry

    rows = []
    for name, spec in sorted(builtin_registry().items()):
        c = spec.claim
        rows.append({
            "sampler": name, "paper": c.paper if c else spec.paper, "metric": c.metric if c else "-",
            "d": str(c.d_exp) if c else "-", "1/eps": str(c.eps_exp) if c else "-",
            "L": str(c.L_exp) if c and c.L_exp is not None else "-", "logs": c.logs if c else "-",
            "theorem": c.theorem if c else
            "no claim: " + (spec.notes.split(".")[0] if spec.notes else "building block"),
        })
    return tables.render_table(pd.DataFrame(rows), ["sampler", "metric", "d", "1/eps", "L", "logs", "paper", "theorem"])


PRIMARY = "N* power law"


def render_verdicts(results: Path, arg: str) -> str:
    v = _csv(results, "verdicts.csv")
    v = v[(v["estimator"] == PRIMARY) & v["sampler"].isin(_samplers(arg))]
    if v.empty:
        return "_no rows in the committed results for these samplers_"
    return tables.verdicts_table(v)


def render_headline(results: Path, arg: str) -> str:
    v = _csv(results, "verdicts.csv")
    names = _samplers(arg)
    v = v[(v["estimator"] == PRIMARY) & (v["metric_match"] == "same") & v["sampler"].isin(names)]
    if v.empty:
        return "_no rows in the committed results for these samplers_"
    v = v.assign(order=v["sampler"].map(names.index)).sort_values(["order", "variant"], ascending=[True, False])
    v = v.assign(kind=v["interval"].map({"jackknife 95%": "jackknife 95%", "local-slope range": "local-slope range"}))
    frac = lambda x: tables.fmt_fraction(x)  # noqa: E731
    return tables.render_table(
        v, ["sampler", "variant", "metric", "a_claim", "allowance_a", "a [ci]", "verdict_d", "b_claim", "allowance_b",
            "b [ci]", "verdict_eps", "kind"],
        headers={"a_claim": "claimed a (d)", "allowance_a": "+ logs", "a [ci]": "measured a",
                 "verdict_d": "verdict (d)", "b_claim": "claimed b (1/ε)", "allowance_b": "+ logs ",
                 "b [ci]": "measured b", "verdict_eps": "verdict (ε)", "kind": "interval"},
        formats={"a_claim": frac, "b_claim": frac})


def render_exponents(results: Path, arg: str) -> str:
    f = _csv(results, "exponents.csv")
    f = f[f["sampler"].isin(_samplers(arg))]
    return tables.exponents_table(f) if len(f) else "_no rows_"


def render_decisive(results: Path, arg: str = "") -> str:
    path = _source(results, "decisive.csv")
    dec = pd.read_csv(path) if path.exists() and path.stat().st_size > 1 else pd.DataFrame()
    if dec.empty:
        return "_no comparison of li_jiao and gupta_cai_chen in the committed results_"
    lines = [f"* **{r['variant']}** variant on `{r['target']}`: {r['answer']}." for _, r in dec.iterrows()]
    return tables.decisive_table(dec) + "\n" + "\n".join(lines)


def render_ratio(results: Path, arg: str = "") -> str:
    path = _source(results, "ratios.csv")
    r = pd.read_csv(path) if path.exists() and path.stat().st_size > 1 else pd.DataFrame()
    if r.empty:
        return "_no N* ratios in the committed results_"
    return tables.ratio_table(r)


def render_comparison(results: Path, arg: str) -> str:
    a, b = _samplers(arg)
    path = _source(results, "comparisons.csv")
    cmp = pd.read_csv(path) if path.exists() and path.stat().st_size > 1 else pd.DataFrame()
    if cmp.empty or not ((cmp["sampler_a"] == a) & (cmp["sampler_b"] == b)).any():
        return f"_no comparison of {a} and {b} in the committed results_"
    cmp = cmp[(cmp["sampler_a"] == a) & (cmp["sampler_b"] == b)]
    if (cmp["metric"] == "tv_annealed").any():       # the claims' metric; the others are in results/comparisons.csv
        cmp = cmp[cmp["metric"] == "tv_annealed"]
    return tables.comparison_table(cmp)


def render_study(results: Path, name: str) -> str:
    path = _source(results, f"{name}/tables.md")
    if not path.exists():
        return f"_the study {name!r} has no committed results (run `python -m experiments.scaling {name}`)_"
    summary = study_summary(path.read_text().strip())
    link = f"The full report, every table of the study: [`results/{name}/tables.md`](results/{name}/tables.md)."
    return nest_headings(summary, STUDY_HEADING_LEVEL) + "\n\n" + link


#: a table of a study report is part of the summary in paper_notes.md when its header names one of these
SUMMARY_COLUMNS = ("verdict", "winner", "changes")


def study_summary(report: str) -> str:
    """The title of a study report and its deciding tables (a header column in :data:`SUMMARY_COLUMNS`),
    each with the heading or caption just before it; the first table when none decides."""
    blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", report) if b.strip()]
    blocks = [b for b in blocks if not b.startswith("<!--")]
    title = next((b for b in blocks if b.startswith("#")), None)
    tables = [i for i, b in enumerate(blocks) if b.startswith("|")]
    keep = [i for i in tables if any(c in b.lower() for b in [blocks[i].splitlines()[0]] for c in SUMMARY_COLUMNS)]
    keep = keep or tables[:1]
    out = [title] if title else []
    for i in keep:
        before = blocks[i - 1] if i > 0 else ""
        if before and not before.startswith("|") and before != title and before not in out:
            out.append(before)
        out.append(blocks[i])
    return "\n\n".join(out) if out else report


#: a study's tables.md sits below a ``###`` section of paper_notes.md: its top headings become ``####``
STUDY_HEADING_LEVEL = 4


def _headings(text: str):
    """(line index, level) of every Markdown ATX heading of ``text`` outside code fences."""
    fenced = False
    for i, line in enumerate(text.splitlines()):
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"(#{1,6}) ", line)
        if m:
            yield i, len(m.group(1))


def nest_headings(text: str, level: int) -> str:
    """Shift every heading of ``text`` by one amount so that its highest heading has ``level`` (cap 6)."""
    found = dict(_headings(text))
    if not found:
        return text
    shift = level - min(found.values())
    lines = text.splitlines()
    for i, old in found.items():
        lines[i] = "#" * max(1, min(old + shift, 6)) + lines[i][old:]
    return "\n".join(lines)


def render_meta(results: Path, _arg: str = "") -> str:
    path = _source(results, "metadata.json")
    if not path.exists():
        raise MissingResults("_no committed main results yet: run `python -m experiments.scaling`_")
    meta = json.loads(path.read_text())
    return (f"Main study: profile `{meta['profile']}`, seed {meta['seed']}, code version `{meta['code_version']}`, "
            f"reference mode: {meta['reference_mode']}.")


def render(name: str, results: Path) -> str:
    try:
        return _render(name, results)
    except MissingResults as missing:
        return str(missing)


def _render(name: str, results: Path) -> str:
    kind, _, arg = name.partition(":")
    if kind == "claims":
        return render_claims()
    if kind == "verdicts":
        return render_verdicts(results, arg)
    if kind == "headline":
        return render_headline(results, arg)
    if kind == "exponents":
        return render_exponents(results, arg)
    if kind == "decisive":
        return render_decisive(results, arg)
    if kind == "ratio":
        return render_ratio(results, arg)
    if kind == "comparison":
        return render_comparison(results, arg)
    if kind == "study":
        return render_study(results, arg)
    if kind == "meta":
        return render_meta(results)
    raise ValueError(f"unknown generated block {name!r}")


def regenerate(text: str, results: Path) -> str:
    return BLOCK.sub(lambda m: m.group(1) + render(m.group("name"), results).rstrip() + "\n" + m.group(4), text)


def stale_blocks(notes: Path, results: Path) -> list[str]:
    text = notes.read_text()
    fresh = regenerate(text, results)
    old = {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}
    new = {m.group("name"): m.group("body") for m in BLOCK.finditer(fresh)}
    return [name for name in old if old[name] != new[name]]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m analysis.notes", description=__doc__.splitlines()[0])
    p.add_argument("--notes", nargs="+", default=[str(ROOT / name) for name in DOCUMENTS],
                   help="the files whose generated blocks are rewritten or checked (default: %(default)s)")
    p.add_argument("--results", default=str(ROOT / "results"))
    p.add_argument("--check", action="store_true", help="exit 1 if a generated block is stale")
    args = p.parse_args(argv)
    results = Path(args.results)
    try:
        if args.check:
            found = False
            for notes in map(Path, args.notes):
                stale = stale_blocks(notes, results)
                if stale:
                    found = True
                    print(f"stale generated blocks in {notes}: {', '.join(stale)}; run python -m analysis.notes",
                          file=sys.stderr)
            return 1 if found else 0
        for notes in map(Path, args.notes):
            notes.write_text(regenerate(notes.read_text(), results))
    except ValueError as exc:
        print(f"analysis.notes: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
