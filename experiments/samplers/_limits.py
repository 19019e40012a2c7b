"""Upper (and some lower) bounds on sampler parameters, checked when a kernel is constructed.

Without them a constructor accepted values that later overflowed, ran for hours or raised
``NonFiniteStateError`` deep in a run. Every bound below is generous for the studies (which stay far
inside them) and is stated with its reason; a violation raises ``ValueError`` naming the parameter,
the accepted range and the reason.

=====================  ===============  ==============================================================
bound                  value            why
=====================  ===============  ==============================================================
``MAX_STEPS``          10**7            any step or iteration count (cost knobs, corrector steps, the
                                        DDPM chain length, T_iter, total NFE): law mode costs ~50 us a
                                        step, so 1e7 steps is already ~10 minutes per law; the studies
                                        use at most 2**19 ~ 5e5
``MAX_T``              50               OU horizon and OU levels: e^{-2T} = 4e-44, so q_T equals
                                        N(0, I) far below any measurable error, while the VE/EDM
                                        variables e^{T} x and sigma_hat^2 = e^{2T} - 1 (overflow at
                                        T ~ 354) stay well inside float64
``MAX_LANGEVIN_STEP``  10               Langevin step h (or PLMC's coarse step alpha, a corrector step):
                                        beyond the stability limit 2/L of every target with L >= 0.2;
                                        larger steps only overflow
``MAX_HORIZON``        1e4              Langevin-time horizons (horizon, T_corr): 1e4 / (relaxation time
                                        ~ 1 / m) is far past equilibrium for any target here
``GAMMA_RANGE``        [1e-3, 1e3]      ULMC friction: outside it the dynamics is ballistic or
                                        overdamped on every horizon above, and gamma h underflows in
                                        the noise covariances (NaN at gamma = 1e-300)
``U_RANGE``            [1e-6, 1e3]      Shen-Lee's u = 1/L scaling (the score is multiplied by u)
``RHO_RANGE``          [1, 1000]        EDM / VE polynomial exponent: rho < 1 puts the large steps at
                                        low noise and sigma^(1/rho) overflows for small rho;
                                        rho = 1000 is the exponential schedule to ~0.5%
``MAX_FINE``           1000             Poisson-midpoint fine steps per coarse step (law mode probes
                                        1 + state + K rows per draw) and Picard sweeps / parallel nodes
``MAX_LIPSCHITZ``      1e4              Li & Jiao's K = ceil(L ln T) blocks: T is rounded up to a
                                        multiple of K, so a huge L makes the run arbitrarily long
=====================  ===============  ==============================================================
"""

from __future__ import annotations

from experiments import _validate as v

MAX_STEPS = 10**7
MAX_T = 50.0
MAX_LANGEVIN_STEP = 10.0
MAX_HORIZON = 1e4
GAMMA_RANGE = (1e-3, 1e3)
U_RANGE = (1e-6, 1e3)
RHO_RANGE = (1.0, 1000.0)
MAX_FINE = 1000
MAX_LIPSCHITZ = 1e4
#: smallest DDPM beta: 1 - beta_min must not round to 1 (two equal noise levels divide by zero)
MIN_BETA = 1e-10


def count(name: str, value, *, minimum: int = 1, maximum: int = MAX_STEPS, why: str = "") -> int:
    """An integer in [minimum, maximum]; ValueError naming ``name`` otherwise."""
    n = v.positive_int(name, value, minimum=minimum)
    if n > maximum:
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}], got {n}"
                         + (f" ({why})" if why else ""))
    return n


def in_range(name: str, value, low: float, high: float, *, low_open: bool = False, why: str = "") -> float:
    """A finite number in [low, high] (or (low, high] with ``low_open``); ValueError naming ``name``."""
    x = float(v.finite_array(name, value, ndim=0))
    ok = (low < x if low_open else low <= x) and x <= high
    if not ok:
        lb = "(" if low_open else "["
        raise ValueError(f"{name} must lie in {lb}{low:g}, {high:g}], got {x!r}" + (f" ({why})" if why else ""))
    return x


def horizon_T(name: str, value) -> float:
    """An OU horizon or level in (0, MAX_T]."""
    return in_range(name, value, 0.0, MAX_T, low_open=True,
                    why="OU time: e^{-2T} = 4e-44 at T = 50, and e^{2T} must stay far from overflow")


def langevin_step(name: str, value) -> float:
    return in_range(name, value, 0.0, MAX_LANGEVIN_STEP, low_open=True,
                    why="a Langevin step beyond the stability limit 2/L of every target here only overflows")


def langevin_horizon(name: str, value) -> float:
    return in_range(name, value, 0.0, MAX_HORIZON, low_open=True,
                    why="Langevin time; 1e4 is far past equilibrium for every target here")


def friction(name: str, value) -> float:
    return in_range(name, value, *GAMMA_RANGE,
                    why="outside it the dynamics is ballistic or overdamped and gamma h underflows")


def rho(name: str, value) -> float:
    return in_range(name, value, *RHO_RANGE,
                    why="polynomial exponent of the EDM grid; rho -> infinity is the exponential schedule")
