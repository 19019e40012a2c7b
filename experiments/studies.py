"""Studies declared as data: target families, which samplers run, d and eps grids, profiles.

A target family fixes the *shape* of a law (the groups' variances, means and fractions of the
coordinates) and grows the dimension through multiplicities, so that the assumption constants
(L, per-coordinate moments, the spectrum shape) stay fixed as d grows: the hidden constants of a claim
are then the same at every d, and a fitted d-exponent measures the dimension dependence alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from experiments import _validate as v
from experiments.targets import MAX_DIM, GroupedGaussian

METRICS = ("tv_annealed", "tv_quenched", "sqrt_kl", "w2")
PROFILES = ("quick", "default", "full")


@dataclass(frozen=True)
class GaussianFamily:
    """Grouped Gaussian whose group g holds a fraction ``fractions[g]`` of the d coordinates."""

    name: str
    variances: tuple[float, ...]
    means: tuple[float, ...]
    fractions: tuple[float, ...]
    description: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        var = v.positive_array("variances", self.variances, ndim=1)
        v.finite_array("means", self.means, ndim=1)
        frac = v.positive_array("fractions", self.fractions, ndim=1)
        if var.size == 0:
            raise ValueError("variances must list at least one group")
        for field in ("means", "fractions"):
            if len(getattr(self, field)) != var.size:
                raise ValueError(f"{field} must have one value per group ({var.size}), "
                                 f"got {len(getattr(self, field))}")
        if abs(frac.sum() - 1.0) > 1e-6:
            raise ValueError(f"fractions must sum to one, got sum {frac.sum()!r}")

    def at(self, d: int) -> GroupedGaussian:
        d = v.positive_int("d", d)
        frac = np.asarray(self.fractions, float)
        if d < frac.size:
            raise ValueError(f"d must be >= {frac.size} for target family {self.name!r}, got {d}")
        if d > MAX_DIM:
            raise ValueError(f"d must be <= 2**63 - 1 (int64) for target family {self.name!r}, got {d}")
        # Python ints: near 2**63 the float product rounds up past the int64 range; below it the
        # values are those of np.floor(frac * d)
        k = [max(int(np.floor(f * d)), 1) for f in frac.tolist()]
        k[int(np.argmax(frac))] += d - sum(k)  # the largest group takes the rounding remainder
        return GroupedGaussian(self.variances, self.means, k)

    #: the column law of a sampler does not depend on d (only the multiplicities do)
    d_independent = True

    def lipschitz(self, delta: float) -> float:
        """sup_{t >= delta} of the score's Lipschitz constant (same for every d)."""
        return self.at(len(self.fractions)).lipschitz_sup(delta)


TARGETS: dict[str, GaussianFamily] = {
    f.name: f
    for f in (
        GaussianFamily(
            "gauss_aniso", (0.1, 2.0), (0.5, -0.5), (0.5, 0.5),
            "half the coordinates N(0.5, 0.1), half N(-0.5, 2): anisotropic, L(delta) ~ 10",
        ),
        GaussianFamily(
            "gauss_lowrank", (1e-3, 1.0), (0.0, 0.3), (0.9, 0.1),
            "90% of the coordinates nearly degenerate (variance 1e-3), like low-dimensional data; stiff near t = 0",
        ),
    )
}


def register_target(family) -> None:
    """Add a target family (anything with ``name``, ``at(d)``, ``lipschitz(delta)``, ``description``)."""
    if family.name in TARGETS and TARGETS[family.name] != family:
        raise ValueError(f"target {family.name!r} is already registered with other parameters")
    TARGETS[family.name] = family


def get_target(name: str) -> GaussianFamily:
    if name not in TARGETS:
        raise ValueError(f"target must be one of {sorted(TARGETS)}, got {name!r}")
    return TARGETS[name]


@dataclass(frozen=True)
class SamplerRun:
    """One sampler in a study: the cost ladder it scans and the parameters of its tuned variant."""

    sampler: str
    ladder: tuple[int, int]              # (smallest cost, largest cost) of the geometric ladder
    tuned: tuple = ()                    # (name, value) pairs of the tuned variant (the sampler's defaults if empty)
    theory: bool = True                  # also run the theory preset
    multiple: int = 1                    # ladder values rounded to multiples of this

    def __post_init__(self):
        if not isinstance(self.sampler, str) or not self.sampler:
            raise ValueError(f"sampler must be a non-empty string, got {self.sampler!r}")
        if not isinstance(self.ladder, tuple) or len(self.ladder) != 2:
            raise ValueError(f"ladder must be a (smallest, largest) pair of costs, got {self.ladder!r}")
        low, high = (v.positive_int("ladder", c) for c in self.ladder)
        if low > high:
            raise ValueError(f"ladder must have smallest <= largest cost, got {self.ladder!r}")
        v.positive_int("multiple", self.multiple)


@dataclass(frozen=True)
class Draws:
    """Internal draws of randomized samplers (experiments.cells): first block, cap, precision to reach."""

    first: int = 64                      # draws per law at first (a multiple of the 16 replicate groups)
    cap: int = 512                       # most draws per law
    precision: float = 0.05              # relative precision (jackknife s.e.) a deciding cell must reach

    def __post_init__(self):
        first = v.positive_int("first", self.first)
        cap = v.positive_int("cap", self.cap)
        if cap < first:
            raise ValueError(f"cap must be >= first ({first}), got {cap}")
        v.positive("precision", self.precision)


@dataclass(frozen=True)
class Profile:
    name: str
    dims: tuple[int, ...]
    eps: tuple[float, ...]
    targets: tuple[str, ...]
    runs: tuple[SamplerRun, ...]
    draws: Draws = Draws()
    per_octave: int = 2
    annealed_samples: int = 10000
    theory_dims: tuple[int, ...] | None = None     # sub-grid for theory presets (their parameters vary with d, eps)
    theory_eps: tuple[float, ...] | None = None

    def __post_init__(self):
        for field in ("dims", "theory_dims"):
            values = getattr(self, field)
            if values is None and field == "theory_dims":
                continue
            if not isinstance(values, tuple) or not values:
                raise ValueError(f"{field} must be a non-empty tuple of dimensions, got {values!r}")
            for d in values:
                if v.positive_int(field, d) > MAX_DIM:
                    raise ValueError(f"{field} must be <= 2**63 - 1 (int64), got {d}")
        for field in ("eps", "theory_eps"):
            values = getattr(self, field)
            if values is None and field == "theory_eps":
                continue
            if not isinstance(values, tuple) or not values:
                raise ValueError(f"{field} must be a non-empty tuple, got {values!r}")
            v.positive_array(field, values, ndim=1)
        v.positive_int("per_octave", self.per_octave)
        v.positive_int("annealed_samples", self.annealed_samples)


#: the baselines of the headline table: their theory presets run in every profile
HEADLINE_BASELINES = ("ddpm", "ddim", "dpm_solver_2")


def _runs(cap_first: int, cap_high: int, theory: bool, baseline_theory: bool = True):
    """The diffusion samplers of the seeds and the baselines, ladders capped at the given costs.

    ``baseline_theory=False`` runs the theory presets of the seed samplers and of the headline baselines
    only (the default profile's time budget); the other baselines' presets run in ``--full``."""
    first = ("ddpm", "ddim", "euler_maruyama", "exponential_integrator", "pf_ode_euler", "ve_ei")
    high = ("dpm_solver_2", "dpm_solver_3", "dpm_solver_pp_2m", "edm_heun", "pf_ode_heun")

    def th(n):
        return theory and (baseline_theory or n in HEADLINE_BASELINES)

    runs = [SamplerRun(n, (8, cap_first), theory=th(n)) for n in first]
    runs += [SamplerRun(n, (4, cap_high), theory=th(n)) for n in high]
    runs += [
        SamplerRun("li_jiao", (40, cap_high), theory=theory, multiple=10),
        SamplerRun("gupta_cai_chen", (16, cap_first), theory=theory),
        SamplerRun("gcc_predictor", (8, cap_high), theory=False),
        SamplerRun("ddram", (8, cap_high), theory=theory),
    ]
    return tuple(runs)


PROFILE_TABLE: dict[str, Profile] = {
    "quick": Profile(
        "quick", dims=(10, 1000, 100000), eps=(0.2, 0.1, 0.05), targets=("gauss_aniso",),
        runs=(
            SamplerRun("ddpm", (8, 16384), theory=False),
            SamplerRun("ddim", (8, 16384), theory=False),
            SamplerRun("dpm_solver_2", (4, 2048), theory=False),
            SamplerRun("li_jiao", (40, 2560), multiple=10),
            SamplerRun("gupta_cai_chen", (16, 16384), theory=False),
        ),
        draws=Draws(first=32, cap=128, precision=0.15), per_octave=2, annealed_samples=4000,
    ),
    "default": Profile(
        "default", dims=(10, 100, 1000, 10000, 100000, 1000000), eps=(0.2, 0.1, 0.05, 0.02, 0.01, 0.005),
        targets=("gauss_aniso",), runs=_runs(2**15, 2**12, True, baseline_theory=False),
        draws=Draws(first=256, cap=512, precision=0.08),
        per_octave=2, annealed_samples=6000, theory_dims=(10, 1000, 100000), theory_eps=(0.2, 0.05, 0.01),
    ),
    "full": Profile(
        "full", dims=tuple(int(10**k) for k in range(1, 10)), eps=(0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002),
        targets=("gauss_aniso", "gauss_lowrank"), runs=_runs(2**19, 2**15, True),
        draws=Draws(first=128, cap=4096, precision=0.03), per_octave=3, annealed_samples=40000,
    ),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILE_TABLE:
        raise ValueError(f"profile must be one of {PROFILES}, got {name!r}")
    return PROFILE_TABLE[name]
