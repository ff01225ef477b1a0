"""The names that moved out of ``hyper_density`` still resolve there, with a warning."""

from __future__ import annotations

import re

import pytest

from hiermodels.bayes import hyper_density, integrated, lkj_density

MOVED = {
    "IntegratedDensity": integrated,
    "integrated_effects": integrated,
    "store_effect_draw": integrated,
    "LkjCholeskyPrior": lkj_density,
}


def warning_of(name: str) -> str:
    """The deprecation message of ``name``, as a pattern."""
    home = re.escape(MOVED[name].__name__)
    return rf"hyper_density\.{name} .*import it from {home}$"


@pytest.mark.parametrize("name", MOVED)
def test_moved_name_warns_and_is_the_new_one(name: str) -> None:
    with pytest.warns(DeprecationWarning, match=warning_of(name)):
        old = getattr(hyper_density, name)
    assert old is getattr(MOVED[name], name)


def test_import_from_the_old_module_warns() -> None:
    with pytest.warns(DeprecationWarning, match=warning_of("IntegratedDensity")):
        from hiermodels.bayes.hyper_density import IntegratedDensity
    assert IntegratedDensity is integrated.IntegratedDensity
    with pytest.warns(DeprecationWarning, match=warning_of("LkjCholeskyPrior")):
        from hiermodels.bayes.hyper_density import LkjCholeskyPrior
    assert LkjCholeskyPrior is lkj_density.LkjCholeskyPrior


def test_moved_names_left_the_old_public_list() -> None:
    assert not set(MOVED) & set(hyper_density.__all__)
    for name, home in MOVED.items():
        assert name in home.__all__


def test_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'IntegratedDensities'"):
        getattr(hyper_density, "IntegratedDensities")  # noqa: B009
