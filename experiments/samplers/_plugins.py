"""Sampler plug-ins: samplers registered by other installed packages through entry points.

A package declares, in the entry-point group :data:`ENTRY_POINT_GROUP`, a module that registers its
:class:`experiments.samplers.SamplerSpec` on import (step 8 of the contract in
:mod:`experiments.samplers._api`). :func:`load_plugins` runs at the end of ``import experiments.samplers``,
so every process (workers included) sees the same registry. Kept apart from ``_api.py``, whose source is
part of every law's cache key (experiments.cells.LAW_MODULES): editing the loader invalidates no cell.
"""

from __future__ import annotations

from experiments.samplers._api import REGISTRY

#: entry-point group of sampler plug-ins
ENTRY_POINT_GROUP = "diffusion_theorem_checks.samplers"
#: sampler name -> "distribution (entry point)" for samplers registered by plug-ins
PLUGINS: dict[str, str] = {}
#: the samplers of this repository: the names registered by the modules that ``experiments/samplers/__init__.py``
#: imports, taken by :func:`load_plugins` before it loads any plug-in. Samplers of plug-ins, and samplers a
#: caller registers at run time, are not in it (tests and documents that list "every sampler" use it).
BUILTIN: frozenset[str] = frozenset()
_loaded = False


def load_plugins() -> dict[str, str]:
    """Import every module declared in the entry-point group :data:`ENTRY_POINT_GROUP` (once per process);
    returns :data:`PLUGINS`."""
    global _loaded, BUILTIN
    if _loaded:
        return PLUGINS
    _loaded = True
    BUILTIN = frozenset(REGISTRY)
    import warnings
    from importlib.metadata import entry_points

    try:
        found = entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # noqa: BLE001 - a broken metadata folder must not break the suite
        warnings.warn(f"cannot read the sampler plug-ins ({exc})", stacklevel=2)
        return PLUGINS
    for ep in sorted(found, key=lambda e: e.name):
        before = set(REGISTRY)
        try:
            ep.load()
        except Exception as exc:  # noqa: BLE001
            warnings.warn(f"sampler plug-in {ep.name!r} ({ep.value}) was not loaded: {type(exc).__name__}: {exc}",
                          stacklevel=2)
            continue
        dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
        for name in set(REGISTRY) - before:
            PLUGINS[name] = f"{dist} ({ep.name})"
    return PLUGINS


def plugin_origin(name: str) -> str | None:
    """Where a plug-in sampler comes from ("distribution (entry point)"), None for the built-in ones."""
    return PLUGINS.get(name)


def is_builtin(name: str) -> bool:
    """Whether ``name`` is a sampler of this repository (see :data:`BUILTIN`)."""
    return name in BUILTIN


def builtin_registry() -> dict:
    """The entries of :data:`REGISTRY` of this repository's samplers, in registration order."""
    return {name: spec for name, spec in REGISTRY.items() if name in BUILTIN}
