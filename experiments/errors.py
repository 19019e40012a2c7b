"""The error of a sampler's output law in one named metric, with its standard error.

======================  ==================================================================
metric                  meaning
======================  ==================================================================
``tv_annealed``         TV between the true output law (mixture over internal randomness) and
                        the target marginal; exact for deterministic samplers, Monte Carlo over
                        sufficient statistics otherwise (experiments.distances.annealed_tv)
``tv_annealed_half``    the same from the first half of the internal draws: a stability check of the
                        annealed value (experiments/distances.py); a gap well beyond the Monte Carlo errors means
                        the number of draws is too small for that dimension
``tv_quenched``         mean over internal draws of the conditional TV (an upper bound of the
                        annealed TV, by convexity)
``sqrt_kl``             square root of the mean conditional KL(target || output); claims of the
                        form KL <= eps^2 are checked with this error as eps
``w2``                  mean conditional W2 (quenched)
======================  ==================================================================
"""

from __future__ import annotations

import numpy as np

from experiments import distances

METRICS = ("tv_annealed", "tv_annealed_half", "tv_quenched", "sqrt_kl", "w2")


def law_error(law, metric: str, *, rng: np.random.Generator, n_samples: int = 20000) -> tuple[float, float]:
    """(value, standard error) of ``metric`` for a GaussianColumnLaw."""
    if metric == "tv_annealed":
        est = distances.annealed_tv(law, n_samples=n_samples, rng=rng)
    elif metric == "tv_annealed_half":
        est = distances.annealed_tv(law, n_samples=n_samples, rng=rng, n_draws=max(1, law.n_draws // 2))
    elif metric == "tv_quenched":
        est = distances.quenched_tv(law)
    elif metric == "sqrt_kl":
        est = distances.quenched_kl(law)
        root = float(np.sqrt(max(est.value, 0.0)))
        # delta method: se(sqrt K) = se(K) / (2 sqrt K)
        return root, (est.stderr / (2 * root) if root > 0 else 0.0)
    elif metric == "w2":
        est = distances.quenched_w2(law)
    else:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return float(est.value), float(est.stderr)
