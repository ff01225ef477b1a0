"""The names that left ``hiermodels.design.design`` still resolve there, with a warning."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pandas as pd
import pytest

from hiermodels.design import _matrices, design, newdata
from hiermodels.design.design import build_design

MOVED = {
    "fixed_matrix_for": newdata,
    "random_matrix_for": newdata,
    "level_codes_for": newdata,
    "DeferredModelSpec": _matrices,
    "RANK_TOL": _matrices,
    "TREATMENT_FORMAT": _matrices,
}


class RecordingUnpickler(pickle.Unpickler):
    """An unpickler that keeps the ``(module, name)`` of every class it looks up."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self.found: list[tuple[str, str]] = []

    def find_class(self, module: str, name: str) -> object:
        self.found.append((module, name))
        return super().find_class(module, name)


@pytest.mark.parametrize("name", MOVED)
def test_moved_name_warns_and_is_the_new_one(name: str) -> None:
    home = MOVED[name].__name__.replace(".", r"\.")
    with pytest.warns(
        DeprecationWarning, match=rf"design\.design\.{name} .*import it from {home}$"
    ):
        old = getattr(design, name)
    assert old is getattr(MOVED[name], name)


def test_import_from_the_old_module_warns() -> None:
    with pytest.warns(DeprecationWarning, match=r"import it from hiermodels\.design\.newdata$"):
        from hiermodels.design.design import level_codes_for
    assert level_codes_for is newdata.level_codes_for


def test_moved_names_left_the_old_public_list() -> None:
    assert not set(MOVED) & set(design.__all__)
    assert set(newdata.__all__) == {"fixed_matrix_for", "random_matrix_for", "level_codes_for"}


def test_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'fixed_matrix'"):
        getattr(design, "fixed_matrix")  # noqa: B009


def test_a_design_pickled_before_the_move_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    data = pd.DataFrame(
        {"y": [1.0, 2.5, 2.0, 4.0, 3.5, 5.0], "x": np.arange(6.0), "g": list("aabbcc")}
    )
    built = build_design("y ~ x + (1 | g)", data, "gaussian")
    assert isinstance(built.fixed_model_spec, _matrices.DeferredModelSpec)
    # the class as it was named before the move: pickles refer to it by that module
    with monkeypatch.context() as patch, pytest.warns(DeprecationWarning):
        patch.setattr(_matrices.DeferredModelSpec, "__module__", "hiermodels.design.design")
        state = pickle.dumps(built)
    with pytest.warns(DeprecationWarning, match=r"DeferredModelSpec .*design\._matrices$"):
        unpickler = RecordingUnpickler(io.BytesIO(state))
        loaded = unpickler.load()
    assert ("hiermodels.design.design", "DeferredModelSpec") in unpickler.found
    assert isinstance(loaded.fixed_model_spec, _matrices.DeferredModelSpec)
    new = pd.DataFrame({"x": [0.5, 7.0]})
    np.testing.assert_array_equal(newdata.fixed_matrix_for(loaded, new), [[1.0, 0.5], [1.0, 7.0]])
