"""Every sampler, one module per algorithm family, registered in :data:`REGISTRY` on import.

The contract for adding a sampler is in :mod:`experiments.samplers._api`.
"""

from experiments.samplers._api import (  # noqa: F401
    REGISTRY,
    Claim,
    CountingScore,
    Kernel,
    NonFiniteStateError,
    SamplerSpec,
    get,
    register,
)
from experiments.samplers import ddim, ddpm  # noqa: F401,E402
