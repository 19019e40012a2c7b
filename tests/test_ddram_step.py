"""DDRaM's step (Zhang, Huan, Huang, Boffi, Chen & Chewi, arXiv 2511.04844) with the Brownian increments set
to zero and a score whose drift term is the time itself: the output is then e^{-/+h} y + w * (t - r), which
pins the node r and the weight w of each variant (importance node: r = log(1 + u (e^h - 1)), w = 1 - e^{-h}
for the relative-score form; uniform node: r = u h, w = h e^{-(h - r)}) and the default (importance,
relative score). Both nodes are unbiased, so convergence tests cannot tell them apart."""

from __future__ import annotations

import math

import numpy as np
import pytest

from experiments.samplers._api import REGISTRY


class FixedNoise:
    """u for every uniform draw, zero Brownian increments."""

    def __init__(self, u, batch):
        self.u, self.batch = u, batch

    def uniform(self, n):
        return np.full((self.batch, n), self.u)

    def normal(self, n):
        return np.zeros((self.batch, n))


def _one_step(kernel, u, y):
    # drift term f = s (the time) in both forms: relative score f = 2 (score + x), score form f = 2 score
    if kernel.linear == "relative_score":
        score = lambda x, s: -x + 0.5 * s                                              # noqa: E731
    else:
        score = lambda x, s: np.full_like(x, 0.5 * s)                                  # noqa: E731
    (out,) = kernel.step((y,), None, 0, FixedNoise(u, y.shape[0]), score)
    return out


@pytest.mark.parametrize("u", [0.2, 0.8])
def test_default_is_the_importance_node_of_the_relative_score_form(u):
    kernel = REGISTRY["ddram"].make(4, T=2.0, delta=0.1, grid="uniform")
    t, h = kernel.ts[0], kernel.ts[0] - kernel.ts[1]
    y = np.array([[0.3, -1.2]])
    r = math.log1p(u * math.expm1(h))
    expected = math.exp(-h) * y + (1 - math.exp(-h)) * (t - r)
    assert (kernel.linear, kernel.node) == ("relative_score", "importance")
    assert _one_step(kernel, u, y) == pytest.approx(expected, rel=1e-13, abs=0)


@pytest.mark.parametrize("u", [0.2, 0.8])
def test_each_node_and_form_has_its_own_weight_and_node(u):
    make = REGISTRY["ddram"].make
    y = np.array([[0.3, -1.2]])
    for linear, node in [("relative_score", "uniform"), ("score", "importance"), ("score", "uniform")]:
        kernel = make(4, T=2.0, delta=0.1, grid="uniform", linear=linear, node=node)
        t, h = kernel.ts[0], kernel.ts[0] - kernel.ts[1]
        if node == "uniform":
            r = u * h
            w = h * math.exp(-(h - r)) if linear == "relative_score" else h * math.exp(h - r)
        else:
            r = -math.log1p(-u * -math.expm1(-h))
            w = math.expm1(h)
        lin = math.exp(-h) if linear == "relative_score" else math.exp(h)
        assert _one_step(kernel, u, y) == pytest.approx(lin * y + w * (t - r), rel=1e-13, abs=0), (linear, node)
