"""The sampler contract, the claim metadata, the score counter and the registry.

How to add a sampler
--------------------
1. Write a subclass of :class:`Kernel` in its own module under ``experiments/samplers/``. Its
   docstring gives the update in equations, the source (paper, equation or algorithm number)
   and a notation table (code name -> paper symbol).
2. ``plan(noise)`` draws the run-level internal randomness (a random schedule, say) with
   ``noise.uniform``/``noise.bernoulli`` and returns it in a dict ``aux`` (arrays of shape
   ``(batch, ...)``). ``init(x, aux, noise)`` builds the state tuple from the initial point,
   ``step(state, aux, k, noise, score)`` is the body of the paper's loop for step ``k``, and
   ``output(state, aux)`` returns the sample. Every array in the state has shape
   ``(batch, n_columns)``.
3. All randomness comes from ``noise`` (never a Generator of your own): Gaussian draws with
   ``noise.normal(n_columns)``, internal randomness with ``noise.uniform(size)``. Declare the
   largest number of ``noise.normal`` calls made by ``init`` or by one step in
   ``draws_per_step`` and the number of arrays in the state in ``state_size``.
4. The only access to the target is ``score(x, t)`` (``t`` a scalar or one OU time per row);
   evaluations are counted by the driver, never by hand. Score calls that can run in parallel
   go inside ``with score.parallel_round():``; ``score(x, t, active=mask)`` counts an evaluation
   only for the rows where ``mask`` is true (random numbers of midpoints).
5. Keep each step affine in the state and in its Gaussian draws whenever the score is affine:
   then :mod:`experiments.laws` computes the exact output law from the same code.
6. Register a :class:`SamplerSpec` with its paper, its :class:`Claim` (metric and exponents),
   its cost knob, its documented NFE and a ``theory`` preset (parameters as the theorem sets them
   from (d, eps, L), hidden constants equal to 1 and written down).
7. Add tests: convergence on a Gaussian (error falls as cost grows), its documented NFE, any
   identity with another sampler, and bad parameters rejected (see tests/test_samplers_*.py).
8. Make it known: a sampler of this repository is imported in ``experiments/samplers/__init__.py``
   (the import registers it). A sampler from *another installed package* needs no change here: the
   package declares an entry point in the group ``diffusion_theorem_checks.samplers`` whose value
   is a module that registers its :class:`SamplerSpec` on import, e.g. in its ``pyproject.toml``::

       [project.entry-points."diffusion_theorem_checks.samplers"]
       my_sampler = "my_package.my_sampler"

   ``experiments.samplers._plugins.load_plugins`` imports every such module when
   ``experiments.samplers`` is imported (in every process, workers included), so the sampler is in
   :data:`REGISTRY`, in ``--help`` (marked as a
   plug-in) and usable with ``--samplers``. A plug-in that fails to import is skipped with a warning
   naming it; one that registers a name already taken fails like any duplicate registration (warning).
9. What else reads the registry: ``experiments/studies.py`` (add it to a profile's runs to include it
   in the main study by default; ``--samplers NAME`` runs it on a default ladder (4..1024) otherwise),
   ``paper_notes.md`` (tests/test_paper_notes.py asserts that every registered sampler is named in its
   prose and the generated ``claims`` block lists them: run ``python -m analysis.notes``), and the
   parametrized tests over :data:`REGISTRY` in tests/test_laws_fast.py (law mode must match direct
   sampling: a sampler whose steps are not affine in the state must say so there).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

import numpy as np


class NonFiniteStateError(FloatingPointError):
    """A sampler produced NaN or infinity; the message names the sampler and the step."""


class Kernel(abc.ABC):
    """A sampler as a small kernel: ``plan`` -> ``init`` -> ``step`` x ``n_steps`` -> ``output``."""

    #: registry name
    name: ClassVar[str] = "kernel"
    #: number of arrays in the state tuple
    state_size: ClassVar[int] = 1
    #: the largest number of ``noise.normal`` calls made by ``init`` or by one step
    draws_per_step: ClassVar[int] = 0
    #: True when ``plan`` only draws internal randomness and computes each row of every ``aux`` array
    #: (shape ``(batch, ...)``) from that row's draws alone; law mode may then run ``plan`` on one row
    #: per internal draw and copy the rows to the draw's probe rows (the same numbers, less work)
    rowwise_plan: ClassVar[bool] = False
    #: number of steps of the loop
    n_steps: int
    #: OU time of the output (deterministic)
    end_time: float

    def plan(self, noise) -> dict:
        """Draw run-level internal randomness; default: none."""
        return {}

    @abc.abstractmethod
    def start_time(self, aux: dict):
        """OU time of the initial point: a float, or an array (batch, 1) for random schedules."""

    def init(self, x: np.ndarray, aux: dict, noise) -> tuple:
        return (x,)

    @abc.abstractmethod
    def step(self, state: tuple, aux: dict, k: int, noise, score) -> tuple: ...

    def output(self, state: tuple, aux: dict) -> np.ndarray:
        return state[0]


class CountingScore:
    """Wrap a score function; count evaluations and parallel rounds per row.

    ``calls[i]`` is the number of score evaluations spent on row ``i``; ``rounds[i]`` the number of
    sequential batches of evaluations (calls inside one ``parallel_round()`` count as one).
    """

    def __init__(self, fn: Callable, batch: int):
        self.fn = fn
        self.calls = np.zeros(batch)
        self.rounds = np.zeros(batch)
        self.max_width = 0
        self._round: np.ndarray | None = None
        self._width = 0

    def __call__(self, x, t, active=None):
        if not np.all(np.isfinite(x)):
            # the driver turns this into NonFiniteStateError naming the sampler and the step
            raise FloatingPointError("non-finite point passed to the score")
        out = self.fn(x, t)
        hit = np.ones(self.calls.shape) if active is None else np.asarray(active, dtype=float).reshape(-1)
        self.calls += hit
        if self._round is None:
            self.rounds += hit
            self.max_width = max(self.max_width, 1)
        else:
            self._round = np.maximum(self._round, hit)
            self._width += 1
        return out

    @contextlib.contextmanager
    def parallel_round(self):
        if self._round is not None:
            raise RuntimeError("parallel rounds cannot be nested")
        self._round, self._width = np.zeros(self.calls.shape), 0
        try:
            yield self
        finally:
            self.rounds += self._round
            self.max_width = max(self.max_width, self._width)
            self._round = None


#: where a claim's hidden log factor sits: the cost N itself, d, d/eps, d/eps^2 or 1/eps
LOG_ARGUMENTS = ("cost", "d", "d/eps", "d/eps^2", "1/eps")


@dataclass(frozen=True)
class LogFactor:
    """A factor ``log^power(argument)`` hidden in a claim's O~ (``source``: [V] verified in the paper, [S] from a
    secondary source, [R] our reading). Where it sits decides how much it bends a measured exponent over a
    finite window (:mod:`analysis.verdicts` turns it into a one-sided allowance)."""

    argument: str
    power: Fraction
    source: str = ""

    def __post_init__(self):
        if self.argument not in LOG_ARGUMENTS:
            raise ValueError(f"argument must be one of {LOG_ARGUMENTS}, got {self.argument!r}")
        power = self.power if isinstance(self.power, Fraction) else Fraction(self.power).limit_denominator(1000)
        if power <= 0:
            raise ValueError(f"power must be > 0, got {power}")
        object.__setattr__(self, "power", power)

    def describe(self) -> str:
        return f"log^{self.power}({self.argument}) {self.source}".strip()


@dataclass(frozen=True)
class Claim:
    """A paper's complexity claim: cost ~ d^d_exp * (1/eps)^eps_exp * L^L_exp (up to logs).

    Exponents are kept as exact fractions; ``metric`` is the distance the theorem bounds
    ("tv", "kl" meaning KL <= eps^2 unless ``notes`` says otherwise, "w2"). ``logs`` is the paper's
    wording of its hidden logarithms; ``log_factors`` declares them as :class:`LogFactor` (argument, power,
    source tag), which the verdict rule allows for.
    """

    paper: str
    theorem: str
    metric: str
    d_exp: Fraction
    eps_exp: Fraction
    L_exp: Fraction | None = None
    logs: str = ""
    notes: str = ""
    log_factors: tuple[LogFactor, ...] = ()

    def __post_init__(self):
        if self.metric not in ("tv", "kl", "w2"):
            raise ValueError(f"metric must be 'tv', 'kl' or 'w2', got {self.metric!r}")
        for name in ("d_exp", "eps_exp", "L_exp"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Fraction):
                object.__setattr__(self, name, Fraction(value).limit_denominator(1000))

    def describe(self) -> str:
        L = f" L^{self.L_exp}" if self.L_exp is not None else ""
        return f"{self.metric.upper()}: d^{self.d_exp} eps^-{self.eps_exp}{L} {self.logs} [{self.paper}, {self.theorem}]"


@dataclass(frozen=True)
class SamplerSpec:
    """Registry entry: how to build a sampler and what its paper claims about it.

    ``make(cost, **params)`` returns a :class:`Kernel`; ``cost`` is the value of ``cost_knob``.
    ``nfe(cost, **params)`` is the documented number of score evaluations (its expectation for
    samplers with a random number of evaluations). ``theory(d, eps, L)`` returns the parameters
    the theorem prescribes (other than the cost knob).
    """

    name: str
    make: Callable[..., Kernel]
    family: str
    paper: str
    cost_knob: str
    nfe: Callable[..., float]
    claim: Claim | None = None
    theory: Callable[[int, float, float], dict] | None = None
    randomized: bool = False
    stochastic: bool = True
    parallel: bool = False
    notes: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, SamplerSpec] = {}


#: provenance tags of a registered claim's log factors: verified in the paper, secondary source, our reading
SOURCE_TAGS = ("[V] ", "[S] ", "[R] ")


def register(spec: SamplerSpec) -> SamplerSpec:
    if spec.name in REGISTRY:
        raise ValueError(f"sampler {spec.name!r} is already registered")
    for lf in spec.claim.log_factors if spec.claim else ():
        # the allowance a log factor buys in a verdict must say where it comes from
        if not (isinstance(lf.source, str) and lf.source.startswith(SOURCE_TAGS) and lf.source[4:].strip()):
            raise ValueError(f"log_factors of {spec.name!r} must each have a source that starts with a tag "
                             f"{', '.join(t.strip() for t in SOURCE_TAGS)} and a reason, got {lf.source!r}")
    REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> SamplerSpec:
    if name not in REGISTRY:
        raise ValueError(f"sampler must be one of {sorted(REGISTRY)}, got {name!r}")
    return REGISTRY[name]
