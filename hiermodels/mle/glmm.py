"""Former home of the GLMM fit, kept importable for one release.

``fit_glmm`` lives beside ``fit_lmm`` in :mod:`hiermodels.mle.fit`; the
deviance objects (PIRLS, the Laplace approximation, adaptive quadrature) in
:mod:`hiermodels.mle.laplace`. Importing them from here warns with their new
home.
"""

from __future__ import annotations

import importlib
import warnings

__all__: list[str] = []

#: Old name here -> (module, name) it moved to.
_MOVED: dict[str, tuple[str, str]] = {
    "fit_glmm": ("hiermodels.mle.fit", "fit_glmm"),
    "AgqDeviance": ("hiermodels.mle.laplace", "AgqDeviance"),
    "GlmerLaplaceDeviance": ("hiermodels.mle.laplace", "GlmerLaplaceDeviance"),
    "LaplaceDeviance": ("hiermodels.mle.laplace", "LaplaceDeviance"),
    "PirlsResult": ("hiermodels.mle.laplace", "PirlsResult"),
    "laplace_deviance": ("hiermodels.mle.laplace", "laplace_deviance"),
}


def __getattr__(name: str) -> object:
    """A moved name, with a ``DeprecationWarning`` naming where it lives now."""
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, new_name = _MOVED[name]
    warnings.warn(
        f"hiermodels.mle.glmm.{name} is deprecated: use {module}.{new_name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(importlib.import_module(module), new_name)
