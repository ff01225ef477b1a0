"""Former home of the GLMM fit, kept importable for one release.

``fit_glmm`` lives beside ``fit_lmm`` in :mod:`hiermodels.mle.fit`; the
deviance objects (PIRLS, the Laplace approximation, adaptive quadrature) in
:mod:`hiermodels.mle.laplace`. Importing them from here warns with their new
home.
"""

from __future__ import annotations

from hiermodels._lazy import moved_names

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


__getattr__ = moved_names(__name__, _MOVED)
