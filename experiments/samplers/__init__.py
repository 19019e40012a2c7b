"""Every sampler, one module per algorithm family, registered in :data:`REGISTRY` on import.

The contract for adding a sampler is in :mod:`experiments.samplers._api`; samplers of other installed
packages are loaded last, through entry points (:func:`experiments.samplers._plugins.load_plugins`).
"""

from experiments.samplers import (  # noqa: F401,E402
    ddim,
    ddpm,
    ddram,
    dpm_solver,
    edm,
    gupta_cai_chen,
    langevin,
    li_jiao,
    pf_ode,
    pf_ode_rk4,
    poisson_midpoint,
    sde,
    ve,
)
from experiments.samplers._api import (  # noqa: F401
    REGISTRY,
    Claim,
    CountingScore,
    Kernel,
    LogFactor,
    NonFiniteStateError,
    SamplerSpec,
    get,
    register,
)
from experiments.samplers._plugins import is_builtin, load_plugins  # noqa: E402,F401

load_plugins()
# names of this repository's samplers (plug-ins and samplers registered at run time excluded): bound by
# load_plugins, so imported after it ran
from experiments.samplers._plugins import BUILTIN  # noqa: E402,F401
