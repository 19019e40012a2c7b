"""Every relative tolerance in the tests states its absolute part.

``pytest.approx(x, rel=r)`` keeps an absolute tolerance of 1e-12, and ``np.allclose(a, b, rtol=r)`` one of
1e-8, unless told otherwise. For a quantity of size 1e-12 or less (a log-ratio near 1, a Bhattacharyya
bound, a series term) the relative tolerance then checks nothing. Two tests passed that way: one while the
code's error (2e-11 relative, arctan(y) - y) was 20 times the tolerance it stated, one whose expected value
left out a term of 9e-4 relative. So each such call says ``abs=`` (``atol=``) itself, usually 0.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def loose_tolerances(source: str) -> list[int]:
    """Line numbers of ``approx(..., rel=...)`` without ``abs=`` and ``allclose``/``isclose`` without ``atol``."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        keywords = {k.arg for k in node.keywords}
        if name == "approx" and "rel" in keywords and "abs" not in keywords:
            lines.append(node.lineno)
        elif name in ("allclose", "isclose") and "atol" not in keywords and len(node.args) < 4:
            lines.append(node.lineno)
    return lines


def test_the_checker_flags_the_implicit_absolute_tolerances():
    loose = "pytest.approx(1e-13, rel=1e-6)\nnp.allclose(a, b)\nnp.isclose(a, b, rtol=1e-9)\n"
    stated = "pytest.approx(1e-13, rel=1e-6, abs=0)\nnp.allclose(a, b, atol=0)\npytest.approx(2.0)\n"
    assert loose_tolerances(loose) == [1, 2, 3]
    assert loose_tolerances(stated) == []


def test_no_test_relies_on_an_implicit_absolute_tolerance():
    found = {p.name: lines for p in sorted(TESTS.glob("*.py")) if (lines := loose_tolerances(p.read_text()))}
    assert found == {}, f"state abs= (approx) or atol= (allclose, isclose): {found}"
