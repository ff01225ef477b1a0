"""The design's direct paths give what formulaic gives.

Fixed and random model matrices of an intercept with numeric and
categorical main effects, their model specs, and response arithmetic such
as ``size - incidence`` are built without formulaic; these tests compare
them with formulaic's on every shipped dataset, and whole designs built
with and without the direct paths.
"""

from __future__ import annotations

import copy
import itertools
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

from hiermodels.datasets import available, load
from hiermodels.design import _matrices, _response
from hiermodels.design._columns import (
    unquote_names,
)
from hiermodels.design._matrices import DeferredModelSpec
from hiermodels.design._syntax import to_python_power
from hiermodels.design.design import Design, build_design
from hiermodels.design.newdata import fixed_matrix_for, random_matrix_for
from hiermodels.errors import ColumnProblem

#: Rows kept of a large dataset, so that formulaic's reference stays quick.
MAX_ROWS = 600


def shipped(name: str) -> pd.DataFrame:
    """A shipped dataset without missing values, thinned to ``MAX_ROWS`` rows."""
    data = load(name).dropna()
    if len(data) > MAX_ROWS:
        data = data.iloc[:: len(data) // MAX_ROWS + 1]
    return _matrices._prepare(data)


# --- model matrices ---------------------------------------------------------------------


def main_effect_formulas(data: pd.DataFrame) -> list[str]:
    """``1``, ``1 + c`` and ``0 + c`` of every column, ``1 + a + b`` of the first seven."""
    columns = list(data.columns)
    formulas = ["1"]
    formulas += [f"{start} + {c}" for c in columns for start in ("1", "0")]
    formulas += [f"1 + {a} + {b}" for a, b in itertools.combinations(columns[:7], 2)]
    return formulas


def reference_matrix(rhs: str, data: pd.DataFrame) -> tuple[np.ndarray, tuple[str, ...], object]:
    matrix = _matrices._model_matrix(rhs, data, "the test")
    X = _matrices._finite_matrix(matrix, data.index, "the test")
    return X, tuple(str(c) for c in matrix.columns), matrix.model_spec


@pytest.mark.parametrize("name", available())
def test_direct_model_matrices_equal_formulaic_on_every_shipped_dataset(name: str) -> None:
    data = shipped(name)
    columns = list(data.columns)
    direct = 0
    for rhs in main_effect_formulas(data):
        try:
            want_X, want_names, want_spec = reference_matrix(rhs, data)
        except ColumnProblem:
            continue
        X, names, spec = _matrices._term_matrix(rhs, data, columns, "the test")
        assert names == want_names, rhs
        assert X.dtype == want_X.dtype and X.shape == want_X.shape, rhs
        np.testing.assert_array_equal(X, want_X, err_msg=rhs)
        assert X.flags["F_CONTIGUOUS"] == want_X.flags["F_CONTIGUOUS"], rhs
        assert X.flags["C_CONTIGUOUS"] == want_X.flags["C_CONTIGUOUS"], rhs
        if isinstance(spec, DeferredModelSpec):
            direct += 1
            assert spec.resolve() == want_spec, rhs
            new = data.iloc[::5]
            np.testing.assert_array_equal(
                np.asarray(spec.get_model_matrix(new)), np.asarray(want_spec.get_model_matrix(new))
            )
        else:
            assert spec is want_spec or spec == want_spec, rhs
    assert direct > 0


@pytest.mark.parametrize(
    "rhs",
    ["1 + log(x)", "1 + x:z", "1 + x - z", "1 + b", "1 + s", "0 + g", "1 + x*z", "0", "1 + x + x"],
)
def test_other_formulas_go_through_formulaic(rhs: str) -> None:
    data = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.5, 4.0],
            "z": [1, 0, 1, 1],
            "b": [True, False, True, False],
            "s": ["u", "v", "u", "v"],
            "g": pd.Categorical(list("abab")),
        }
    )
    assert _matrices._main_effects(rhs, data) is None


def test_a_categorical_with_one_category_or_unused_ones_goes_through_formulaic() -> None:
    data = pd.DataFrame(
        {
            "one": pd.Categorical(["a", "a", "a"]),
            "unused": pd.Categorical(["a", "b", "a"], categories=["a", "b", "c"]),
        }
    )
    assert _matrices._main_effects("1 + one", data) is None
    assert _matrices._main_effects("1 + unused", data) is None


def test_non_finite_covariates_are_reported_by_the_direct_path_as_by_formulaic() -> None:
    data = pd.DataFrame({"x": [1.0, np.inf, 3.0], "g": pd.Categorical(list("abb"))})
    with pytest.raises(ColumnProblem) as direct:
        _matrices._term_matrix("1 + x + g", data, ["x", "g"], "the fixed effects")
    with pytest.raises(ColumnProblem) as general:
        reference_matrix("1 + x + g", data)
    assert str(direct.value) == str(general.value).replace("the test", "the fixed effects")


def test_a_deferred_model_spec_copies_and_pickles() -> None:
    data = pd.DataFrame({"x": [1.0, 2.0, 3.0], "g": pd.Categorical(list("abb"))})
    _, _, spec = _matrices._term_matrix("1 + x + g", data, ["x", "g"], "the test")
    assert isinstance(spec, DeferredModelSpec)
    for twin in (copy.deepcopy(spec), pickle.loads(pickle.dumps(spec))):
        assert twin.resolve() == spec.resolve()
    assert spec.column_names == ("Intercept", "x", "g[T.b]")  # forwarded to the ModelSpec


# --- response arithmetic ----------------------------------------------------------------


def reference_expression(expr: str, data: pd.DataFrame) -> np.ndarray:
    from formulaic import model_matrix

    code, aliases = unquote_names(to_python_power(expr))
    frame = data.rename(columns={name: alias for alias, name in aliases.items()})
    matrix = model_matrix(f"0 + I({code})", frame, na_action="ignore", context={})
    return np.asarray(matrix, dtype=np.float64).ravel()


@pytest.mark.parametrize("name", available())
def test_response_arithmetic_equals_formulaic_on_every_shipped_dataset(name: str) -> None:
    data = shipped(name)
    numeric = [c for c in data.columns if data[c].dtype in (np.int64, np.float64)][:4]
    assert numeric
    expressions = [f"{a} - 3" for a in numeric] + [f"-{a} * 2.5" for a in numeric]
    for a, b in itertools.permutations(numeric, 2):
        expressions += [
            f"{a} - {b}",
            f"{a} + {b} * 2",
            f"-{a} * {b} + 1.5",
            f"({a} - {b}) * 3",
            f"{a} * {a} - 7",
            f"2 * ({a} + -{b})",
        ]
    for expr in expressions:
        got = _response._arithmetic(expr, data)
        assert got is not None, expr
        want = reference_expression(expr, data)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want, err_msg=expr)


@pytest.mark.parametrize(
    "expr", ["a - 1", "b / 2", "b ** 2", "log(b)", "b - True", "3 - 1", "b - 2**40", "t - b"]
)
def test_other_response_expressions_go_through_formulaic(expr: str) -> None:
    data = pd.DataFrame({"a": np.array([1, 2], dtype=np.int8), "b": [1.0, 2.0], "t": ["1", "2"]})
    assert _response._arithmetic(expr, data) is None


def test_response_arithmetic_reads_quoted_names_into_a_new_array() -> None:
    data = pd.DataFrame({"my col": [3.0, 4.0], "b": [1.0, 2.0]})
    got = _response._arithmetic("(`my col`)", data)
    assert got is not None
    np.testing.assert_array_equal(got, [3.0, 4.0])
    assert not np.shares_memory(got, data["my col"].to_numpy())


# --- whole designs ----------------------------------------------------------------------

DESIGNS = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)", "gaussian"),
    ("sleepstudy", "Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)", "gaussian"),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", "gaussian"),
    (
        "classroom",
        "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)",
        "gaussian",
    ),
    ("classroom", "mathgain ~ mathknow + housepov + (1 | schoolid)", "gaussian"),
    ("radon", "log_radon ~ floor + (floor | county)", "gaussian"),
    ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
    ("grouseticks", "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)", "poisson"),
    ("insteval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", "gaussian"),
    ("tlc", "lead ~ treatment + week + (week | id)", "gaussian"),
]


def built(
    formula: str, data: pd.DataFrame, family: str, general: bool = False
) -> tuple[Design, list[str]]:
    """The design and its warnings; ``general`` switches every fast path off."""
    with warnings.catch_warnings(record=True) as caught, pytest.MonkeyPatch.context() as patch:
        warnings.simplefilter("always")
        if general:
            patch.setattr(_matrices, "_main_effects", lambda rhs, data, read=None: None)
            patch.setattr(_response, "_arithmetic", lambda expr, data: None)
        result = build_design(formula, data, family)
    return result, [str(w.message) for w in caught]


@pytest.mark.parametrize(("name", "formula", "family"), DESIGNS)
def test_designs_equal_those_of_the_general_paths(name: str, formula: str, family: str) -> None:
    data = load(name)
    fast, fast_warnings = built(formula, data, family)
    general, general_warnings = built(formula, data, family, general=True)
    assert fast_warnings == general_warnings
    assert fast.fixed_names == general.fixed_names
    assert fast.dropped_columns == general.dropped_columns
    for got, want in [(fast.X, general.X), (fast.y, general.y)]:
        assert got.dtype == want.dtype and got.flags["C_CONTIGUOUS"] == want.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(got, want)
    if general.trials is None:
        assert fast.trials is None
    else:
        np.testing.assert_array_equal(fast.trials, general.trials)
    pd.testing.assert_index_equal(fast.rows, general.rows, exact=True)
    assert len(fast.blocks) == len(general.blocks)
    for got, want in zip(fast.blocks, general.blocks, strict=True):
        assert (got.group, got.factors, got.terms, got.expr) == (
            want.group,
            want.factors,
            want.terms,
            want.expr,
        )
        assert got.levels == want.levels and got.level_parts == want.level_parts
        np.testing.assert_array_equal(got.codes, want.codes)
        np.testing.assert_array_equal(got.X, want.X)
        assert got.X.flags["F_CONTIGUOUS"] == want.X.flags["F_CONTIGUOUS"]
        spec = got.model_spec
        assert (spec.resolve() if isinstance(spec, DeferredModelSpec) else spec) == want.model_spec
    spec = fast.fixed_model_spec
    resolved = spec.resolve() if isinstance(spec, DeferredModelSpec) else spec
    assert resolved == general.fixed_model_spec
    new = data.dropna().iloc[:7]
    np.testing.assert_array_equal(fixed_matrix_for(fast, new), fixed_matrix_for(general, new))
    for got, want in zip(fast.blocks, general.blocks, strict=True):
        np.testing.assert_array_equal(random_matrix_for(got, new), random_matrix_for(want, new))


def test_the_design_does_not_change_the_data() -> None:
    data = load("cbpp")
    data["period"] = data["period"].cat.add_categories(["9"])
    before = data.copy()
    built = build_design(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", data, "binomial"
    )
    pd.testing.assert_frame_equal(data, before)
    assert built.fixed_names == ("Intercept", "period[T.2]", "period[T.3]", "period[T.4]")


def test_unused_categories_are_dropped_in_copies_only() -> None:
    data = pd.DataFrame(
        {"y": [1.0, 2.0, 3.0], "g": pd.Categorical(list("aba"), categories=list("abc"))}
    )
    untouched = _matrices._prepare(data, ["y"])
    assert untouched is data
    cleaned = _matrices._prepare(data, ["y", "g"])
    assert cleaned is not data and list(cleaned["g"].cat.categories) == ["a", "b"]
    assert list(data["g"].cat.categories) == ["a", "b", "c"]
