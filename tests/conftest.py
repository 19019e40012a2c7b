import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles. "ci" is derandomized (a fixed example sequence per test, no example database) with a
# fixed number of examples, so a run's outcome depends only on the code. It is loaded by default and when the
# environment variable CI is set (CI runs with CI=true). HYPOTHESIS_PROFILE=dev opts into random exploration
# (new examples each run, saved failures replayed from .hypothesis/); explicit @settings(max_examples=...)
# in a test file override the profile's count for that test in either profile.
settings.register_profile(
    "ci", derandomize=True, database=None, max_examples=50, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci") if not os.environ.get("CI") else "ci")


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


@pytest.fixture(autouse=True)
def _strict_floats():
    # overflow, invalid operations and division by zero fail loudly; underflow to 0 is fine
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        yield
