"""Package exports imported on first access, and moved names kept for one release (PEP 562).

``import hiermodels`` has to stay cheap: PyMC, PyTensor, ArviZ, numba and
matplotlib take seconds to import, and most sessions (``hiermodels --help``,
an MLE fit) need none of them. A package lists each public name with the
module that defines it; the module is imported when the name is first used.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports", "moved_names"]


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of a package with lazy exports.

    Parameters
    ----------
    package : str
        The package's ``__name__``; the package must already be in
        ``sys.modules`` (call this from its ``__init__``).
    exports : Mapping[str, str]
        Each public name and the dotted name of the module that defines it.
        A name whose module is ``f"{package}.{name}"`` is that submodule
        itself (``hiermodels.datasets``).

    Returns
    -------
    getattr : callable
        Imports the module of an exported name, stores the object in the
        package's namespace (later look-ups do not come back here) and
        returns it; any other name raises :class:`AttributeError`, so
        ``from package import submodule`` still imports a submodule.
    dir : callable
        The package's namespace together with every export, imported or not.
    """
    namespace = vars(sys.modules[package])

    def __getattr__(name: str) -> Any:
        try:
            source = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        module = importlib.import_module(source)
        value = module if source == f"{package}.{name}" else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__


def moved_names(module: str, moves: Mapping[str, tuple[str, str]]) -> Callable[[str], Any]:
    """The module-level ``__getattr__`` of a module some of whose names moved elsewhere.

    Parameters
    ----------
    module : str
        The module's ``__name__``.
    moves : Mapping[str, tuple[str, str]]
        Each old name and the ``(module, name)`` it lives under now.

    Returns
    -------
    callable
        Returns a moved name's new object with a ``DeprecationWarning`` that
        names its new home, attributed to the importer; importing the new
        module only then lets it import the old one. Any other name raises
        :class:`AttributeError`.
    """

    def __getattr__(name: str) -> Any:
        try:
            home, new_name = moves[name]
        except KeyError:
            raise AttributeError(f"module {module!r} has no attribute {name!r}") from None
        warnings.warn(
            f"{module}.{name} is deprecated and will be removed in the next release: "
            f"use {home}.{new_name}; import it from {home}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(home), new_name)

    return __getattr__
