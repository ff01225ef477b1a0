"""The names that moved from ``hyper_density`` to ``integrated`` still resolve, with a warning."""

from __future__ import annotations

import pytest

from hiermodels.bayes import hyper_density, integrated

MOVED = ("IntegratedDensity", "integrated_effects", "store_effect_draw")
NEW_HOME = r"import it from hiermodels\.bayes\.integrated$"


@pytest.mark.parametrize("name", MOVED)
def test_moved_name_warns_and_is_the_new_one(name: str) -> None:
    with pytest.warns(DeprecationWarning, match=rf"hyper_density\.{name} .*{NEW_HOME}"):
        old = getattr(hyper_density, name)
    assert old is getattr(integrated, name)


def test_import_from_the_old_module_warns() -> None:
    with pytest.warns(DeprecationWarning, match=rf"IntegratedDensity .*{NEW_HOME}"):
        from hiermodels.bayes.hyper_density import IntegratedDensity
    assert IntegratedDensity is integrated.IntegratedDensity


def test_moved_names_left_the_old_public_list() -> None:
    assert not set(MOVED) & set(hyper_density.__all__)
    assert set(MOVED) <= set(integrated.__all__)


def test_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'IntegratedDensities'"):
        getattr(hyper_density, "IntegratedDensities")  # noqa: B009
