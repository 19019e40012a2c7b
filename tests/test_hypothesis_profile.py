"""The Hypothesis profile loaded by tests/conftest.py: derandomized, no example database, fixed count."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

SEEN: list[list[float]] = []


@pytest.mark.skipif(os.environ.get("HYPOTHESIS_PROFILE") not in (None, "ci") and not os.environ.get("CI"),
                    reason="a non-default Hypothesis profile was asked for")
def test_profile_is_derandomized_with_a_fixed_example_count():
    s = settings()
    assert s.derandomize is True and s.database is None and s.max_examples == 50 and s.deadline is None


def _draws():
    out = []

    @given(st.floats(-1e3, 1e3))
    def inner(x):
        out.append(x)
    inner()
    return out


@pytest.mark.skipif(os.environ.get("HYPOTHESIS_PROFILE") not in (None, "ci") and not os.environ.get("CI"),
                    reason="a non-default Hypothesis profile was asked for")
def test_same_examples_on_every_run():
    # two runs of the same property draw the same examples (the outcome cannot depend on the run)
    assert _draws() == _draws()
