"""The compiled kernels' package re-exports its modules' public names and describes each module."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

from hiermodels.mle import kernels

MODULES = tuple(sorted(info.name for info in pkgutil.iter_modules(kernels.__path__)))


def test_package_reexports_exactly_its_modules_public_names() -> None:
    public = [
        name
        for module in MODULES
        for name in importlib.import_module(f"hiermodels.mle.kernels.{module}").__all__
    ]
    assert len(public) == len(set(public))
    assert sorted(kernels.__all__) == sorted(public)


@pytest.mark.parametrize("module_name", MODULES)
def test_reexported_names_are_the_modules_own(module_name: str) -> None:
    module = importlib.import_module(f"hiermodels.mle.kernels.{module_name}")
    assert module.__all__
    for name in module.__all__:
        assert getattr(kernels, name) is getattr(module, name)


@pytest.mark.parametrize("module_name", MODULES)
def test_package_docstring_says_what_each_module_holds(module_name: str) -> None:
    assert f":mod:`~hiermodels.mle.kernels.{module_name}`:" in (kernels.__doc__ or "")
