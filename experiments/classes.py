r"""The class of targets each complexity claim is a statement about, as parameters and a check.

Every claim in :data:`experiments.samplers.REGISTRY` is an upper bound *uniform over a class*: a target
whose score is L-Lipschitz along the forward path down to an early-stopping level, with a bounded
second moment. A measured exponent on one fixed target can show that a bound is loose *on that target*
or violated; whether a bound is *attained* is a question about the hardest target of the class. This
module makes the class explicit, so that a search (:mod:`experiments.extra_studies.hardest`) visits only
targets inside it and the result can say which class it is about.

A :class:`TheoremClass` has three constants, each with its source tag ([V] verified in the paper's
text, [S] from a secondary source: abstract, reviews, a later version, another paper's summary; [R] our
reading or the suite's choice):

``L_max``    :math:`\sup_{t\ge\delta}\|\nabla^2\log q_t\|_{op}\le L_{max}` (the score's Lipschitz constant
             along the forward OU path; exact for Gaussians, a certified upper bound for mixtures, both from
             :meth:`experiments.targets.Target.lipschitz_sup`)
``m2_max``   :math:`E\|X_0\|^2/d\le m_{2,max}` (second moment *per coordinate*: the class must stay the
             same as d grows, so that its constants stay fixed, and a bound on the total moment that grows with d is
             read as a bound per coordinate [R])
``delta``    the early-stopping level down to which the Lipschitz condition holds (0: every t >= 0)

The constants are the same for every d: a claim ``N* <= C(L, m2) d^a eps^-b`` at fixed (L, m2) is a
statement about this class at every d. The defaults ``L_max = 10`` and ``m2_max = 2`` are the suite's
choice [R]: the headline target ``gauss_aniso`` (L = 10 at t = 0, m2 = 1.3 per coordinate) lies inside,
and the constants do not depend on d. A claim whose theorem assumes *no* smoothness (DDIM, Li, Wei, Chi
& Chen) is searched on the subclass ``L <= L_max`` (its L condition is tagged [R]): a worst case found
in a subclass bounds the class's worst case from below, so "attained" transfers and "loose" does not.

For a Gaussian coordinate of variance v (any mean), :math:`L(t) = 1/(e^{-2t}v + 1 - e^{-2t})`; for
v < 1 it decreases in t, so :math:`\sup_{t\ge\delta}L(t)\le L_{max}` iff
:math:`v\ge v_{floor} = (1/L_{max} - 1 + e^{-2\delta})e^{2\delta}` (:meth:`TheoremClass.variance_floor`),
and v >= 1 always satisfies it (L <= 1). The floor is the "tiny variance" of degenerate spectra in the
class: exactly degenerate data (v = 0) is outside every L-class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from experiments import _validate as v

#: the suite's class constants [R] (see the module docstring)
DEFAULT_L_MAX = 10.0
DEFAULT_M2_MAX = 2.0
#: relative slack of the checks (rounding of exp/expm1 at the boundary of the class)
RTOL = 1e-9
CONDITIONS = ("lipschitz", "second_moment")


@dataclass(frozen=True)
class ConditionResult:
    name: str
    value: float
    bound: float
    holds: bool
    source: str


@dataclass(frozen=True)
class ClassCheck:
    """The outcome of :meth:`TheoremClass.check`: one result per condition; ``ok`` when all hold."""

    results: tuple[ConditionResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.holds for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if not r.holds]

    def describe(self) -> str:
        return "; ".join(f"{r.name} = {r.value:.4g} {'<=' if r.holds else '>'} {r.bound:.4g}" for r in self.results)


@dataclass(frozen=True)
class TheoremClass:
    """The targets a claim quantifies over (see the module docstring)."""

    claim: str                     # registry name of the sampler whose claim this is
    paper: str
    L_max: float = DEFAULT_L_MAX
    m2_max: float = DEFAULT_M2_MAX
    delta: float = 0.0
    sources: dict = field(default_factory=dict, compare=False)     # condition -> tag and reference
    notes: str = ""

    def __post_init__(self):
        v.in_open_interval("L_max", self.L_max, 0.0, math.inf)
        v.in_open_interval("m2_max", self.m2_max, 0.0, math.inf)
        v.nonnegative("delta", self.delta)
        if float(self.L_max) <= 1.0:
            raise ValueError(f"L_max must be > 1 (no target has L(t) < 1 at large t), got {self.L_max}")

    def with_constants(self, *, L_max: float | None = None, m2_max: float | None = None) -> TheoremClass:
        """The same class with other constants (the sources keep their tags)."""
        return replace(self, L_max=self.L_max if L_max is None else L_max,
                       m2_max=self.m2_max if m2_max is None else m2_max)

    # -- the class for Gaussian coordinates -----------------------------------------------------------
    def variance_floor(self) -> float:
        r"""Smallest coordinate variance with :math:`\sup_{t\ge\delta}L(t)\le L_{max}` (0 when every v > 0 is)."""
        e = -math.expm1(-2.0 * self.delta)                    # 1 - e^{-2 delta}
        return max(0.0, (1.0 / self.L_max - e) * math.exp(2.0 * self.delta))

    # -- the check ----------------------------------------------------------------------------------
    def measure(self, target) -> dict[str, float]:
        """The class parameters of a target: ``lipschitz`` (sup over t >= delta) and ``second_moment``
        per coordinate."""
        for attr in ("lipschitz_sup", "second_moment", "dim"):
            if not hasattr(target, attr):
                raise ValueError(f"target must be an experiments.targets.Target (no {attr!r}), got "
                                 f"{type(target).__name__}")
        from experiments.targets import GroupedGaussian

        if type(target) is GroupedGaussian:        # closed form, exact (equal to lipschitz_sup: tests/test_classes.py)
            lip = float(np.max(gaussian_column_lipschitz(target.variances, self.delta)))
        else:
            lip = float(target.lipschitz_sup(self.delta))
        return {"lipschitz": lip, "second_moment": float(target.second_moment()) / int(target.dim)}

    def check(self, target) -> ClassCheck:
        values = self.measure(target)
        bounds = {"lipschitz": self.L_max, "second_moment": self.m2_max}
        return ClassCheck(tuple(
            ConditionResult(name, values[name], bounds[name], bool(values[name] <= bounds[name] * (1 + RTOL)),
                            self.sources.get(name, ""))
            for name in CONDITIONS))

    def contains(self, target) -> bool:
        return self.check(target).ok

    def require(self, target, what: str = "target") -> None:
        """Raise ValueError naming the failed condition(s) when ``target`` is outside the class."""
        res = self.check(target)
        if not res.ok:
            raise ValueError(f"{what} is outside the class of the {self.claim} claim: {res.describe()} "
                             f"(failed: {', '.join(res.failed)})")

    def describe(self) -> str:
        d = "t >= 0" if self.delta == 0 else f"t >= delta = {self.delta:g}"
        return (f"sup_{{{d}}} Lip(score_t) <= {self.L_max:g} {self.sources.get('lipschitz', '')}; "
                f"E|X|^2/d <= {self.m2_max:g} {self.sources.get('second_moment', '')}")

    def rows(self) -> list[dict]:
        """One row per condition (for tables)."""
        early = self.sources.get("delta", "")
        return [
            {"claim": self.claim, "condition": "score Lipschitz along the path",
             "parameter": f"sup_(t >= {self.delta:g}) L(t)", "bound": self.L_max,
             "source": self.sources.get("lipschitz", ""), "early_stopping": early},
            {"claim": self.claim, "condition": "second moment per coordinate", "parameter": "E|X|^2 / d",
             "bound": self.m2_max, "source": self.sources.get("second_moment", ""), "early_stopping": early},
        ]


_DELTA_KERNEL = 1e-3   # experiments.samplers._grid.DEFAULT_DELTA, the grid samplers' early-stopping level

#: the class of every claim the hardest-target study searches (constants: the suite's defaults [R])
CLASSES: dict[str, TheoremClass] = {c.claim: c for c in (
    TheoremClass(
        "li_jiao", "Li & Jiao, ICLR 2025 (arXiv 2410.13738v1), Theorem 1", delta=0.0,
        sources={"lipschitz": "[S] uniform Lipschitz scores for every t (assumption (A2) of the ICLR version, "
                              "named so by the later arXiv version); the output level tau_{K,0} ~ "
                              "T^{-(c1-c0)} is ~ 0, so the condition is read down to t = 0 [R]",
                 "second_moment": "[S] (A1) E|X0|^2 <= T^{c_R} (polynomial); a bounded moment per coordinate "
                                  "is a subclass [R]",
                 "delta": "[S] no separate delta: the last level tau_{K,0} ~ T^{-(c1-c0)}"},
        notes="The later version replaces L by a non-uniform constant (L = 1 for every Gaussian) and proves "
              "min{d, d^{2/3} L^{1/3}, d^{1/3} L} eps^{-2/3} [S]."),
    TheoremClass(
        "gupta_cai_chen", "Gupta, Cai & Chen, ICLR 2025 (arXiv 2406.00924), Theorem A.10", delta=0.0,
        sources={"lipschitz": "[S] Assumption 2.2: grad log q_t is L-Lipschitz for all t (reviews); read for "
                              "every t >= 0 (early stopping is optional when it holds at t = 0) [S]",
                 "second_moment": "[S] Assumption 2.1: bounded second moment (polynomial in d); per coordinate "
                                  "[R]",
                 "delta": "[S/R] optional early stopping; the kernel stops at 1e-3 [R]"}),
    TheoremClass(
        "ddpm", "Jiao, Zhou & Li 2025 (arXiv 2510.27562), main theorem (L = O(1) branch)", delta=_DELTA_KERNEL,
        sources={"lipschitz": "[S] 'relaxed smoothness' constant L of arXiv 2510.27562; uniform Lipschitz "
                              "along the path is a subclass [R]",
                 "second_moment": "[R] not recovered; the standard bounded second moment",
                 "delta": "[R] early stopping at the kernel's end level 1e-3"}),
    TheoremClass(
        "ddim", "Li, Wei, Chi & Chen 2024 (arXiv 2408.02320)", delta=_DELTA_KERNEL,
        sources={"lipschitz": "[R] the theorem assumes no smoothness [S]; the study searches the subclass "
                              "L <= L_max (a worst case in a subclass bounds the class's from below)",
                 "second_moment": "[S] minimal moment assumption of arXiv 2408.02320; per coordinate [R]",
                 "delta": "[R] early stopping at the kernel's end level 1e-3"}),
    TheoremClass(
        "ddram", "Zhang, Huan, Huang, Boffi, Chen & Chewi 2025 (arXiv 2511.04844)", delta=_DELTA_KERNEL,
        sources={"lipschitz": "[S] 'appropriate smoothness'; constants not retrieved [R]",
                 "second_moment": "[R] not retrieved; bounded per coordinate",
                 "delta": "[R] early stopping at the kernel's end level 1e-3"}),
    TheoremClass(
        "dpm_solver_2", "Huang, Huang & Lin 2025 (arXiv 2506.13061), p = 2", delta=_DELTA_KERNEL,
        sources={"lipschitz": "[S] bounded first and second derivatives of the score (the second is 0 on "
                              "Gaussians; only the first is checked)",
                 "second_moment": "[R] per coordinate",
                 "delta": "[R] early stopping at the kernel's end level 1e-3"}),
)}


def theorem_class(claim: str, *, L_max: float | None = None, m2_max: float | None = None) -> TheoremClass:
    """The class of ``claim`` (a sampler name of :data:`CLASSES`), optionally with other constants."""
    if claim not in CLASSES:
        raise ValueError(f"claim must be one of {sorted(CLASSES)}, got {claim!r}")
    return CLASSES[claim].with_constants(L_max=L_max, m2_max=m2_max)


def gaussian_column_lipschitz(variance, delta: float) -> np.ndarray:
    r""":math:`\sup_{t\ge\delta} 1/(e^{-2t}v + 1 - e^{-2t})` per variance (closed form: the value at
    :math:`t=\delta` for v < 1, 1 for v >= 1)."""
    var = v.positive_array("variance", variance, ndim=(0, 1))
    delta = v.nonnegative("delta", delta)
    at_delta = 1.0 / (math.exp(-2.0 * delta) * var - math.expm1(-2.0 * delta))
    return np.where(var < 1.0, at_delta, 1.0)
