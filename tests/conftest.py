import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


@pytest.fixture(autouse=True)
def _strict_floats():
    # overflow, invalid operations and division by zero fail loudly; underflow to 0 is fine
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        yield
