"""Grouping-factor codes and labels equal those of the general (per-value) rules.

:func:`~hiermodels.design._grouping.factor_codes` and
:func:`~hiermodels.design._grouping.group_codes` code categorical, integer and
text columns without labelling every value; the general rules, kept here as
the reference, decide what the levels, their order and their labels are.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
from pandas.api import types as ptypes

from hiermodels.datasets import available, load
from hiermodels.design._grouping import (
    factor_codes,
    group_codes,
    interaction_labels,
    sorted_labels,
    value_label,
)
from hiermodels.design._matrices import _prepare
from hiermodels.errors import ColumnProblem

#: Rows kept of a large dataset, so that the per-value reference stays quick.
MAX_ROWS = 600


def shipped(name: str) -> pd.DataFrame:
    """A shipped dataset without missing values, thinned to ``MAX_ROWS`` rows."""
    data = load(name).dropna()
    if len(data) > MAX_ROWS:
        data = data.iloc[:: len(data) // MAX_ROWS + 1]
    return _prepare(data)


def reference_factor_codes(values: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and labels by the module's label rules, one value at a time."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        observed = values.cat.remove_unused_categories()
        codes = observed.cat.codes.to_numpy(dtype=np.int64)
        return codes, tuple(value_label(c) for c in observed.cat.categories)
    if ptypes.is_bool_dtype(dtype) or (
        ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype)
    ):
        uniques, codes = np.unique(values.to_numpy(), return_inverse=True)
        return codes.astype(np.int64).ravel(), tuple(value_label(u) for u in uniques)
    labels = [value_label(v) for v in values.to_numpy()]
    levels = sorted_labels(list(dict.fromkeys(labels)))
    position = {label: i for i, label in enumerate(levels)}
    codes = np.fromiter((position[label] for label in labels), dtype=np.int64, count=len(labels))
    return codes, tuple(levels)


def reference_group_codes(
    data: pd.DataFrame, factors: Sequence[str]
) -> tuple[np.ndarray, tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Interaction levels as the sorted distinct rows of the component codes."""
    coded = [reference_factor_codes(data[name]) for name in factors]
    if len(coded) == 1:
        codes, labels = coded[0]
        return codes, labels, tuple((label,) for label in labels)
    stacked = np.column_stack([codes for codes, _ in coded])
    combos, inverse = np.unique(stacked, axis=0, return_inverse=True)
    parts = tuple(tuple(coded[k][1][code] for k, code in enumerate(row)) for row in combos.tolist())
    return inverse.astype(np.int64).ravel(), interaction_labels(parts, factors), parts


def assert_same_coding(got: tuple, want: tuple) -> None:
    assert got[0].dtype == np.int64
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1:] == want[1:]
    assert all(type(label) is str for label in got[1])


def column_variants(data: pd.DataFrame) -> pd.DataFrame:
    """Every column as loaded, as object and str text, and numeric ones as categoricals."""
    variants: dict[str, pd.Series] = {}
    for name in data.columns:
        column = data[name]
        variants[name] = column
        variants[f"{name}_object"] = column.astype(str).astype(object)
        variants[f"{name}_str"] = column.astype(str)
        if column.dtype.kind in "if":
            variants[f"{name}_category"] = column.astype("category")
    return pd.DataFrame(variants)


# --- grouping factors -------------------------------------------------------------------


@pytest.mark.parametrize("name", available())
def test_levels_and_codes_equal_the_reference_on_every_shipped_column(name: str) -> None:
    frame = column_variants(shipped(name))
    for column in frame.columns:
        assert_same_coding(factor_codes(frame[column]), reference_factor_codes(frame[column]))
        assert_same_coding(group_codes(frame, (column,)), reference_group_codes(frame, (column,)))


@pytest.mark.parametrize("name", available())
def test_interaction_levels_equal_the_reference_on_every_shipped_dataset(name: str) -> None:
    frame = column_variants(shipped(name))
    columns = list(frame.columns)[:10]
    for pair in itertools.permutations(columns, 2):
        assert_same_coding(group_codes(frame, pair), reference_group_codes(frame, pair))
    for triple in itertools.combinations(columns, 3):
        assert_same_coding(group_codes(frame, triple), reference_group_codes(frame, triple))


def test_full_insteval_grouping_factors_equal_the_reference() -> None:
    data = load("insteval")
    raw = data.astype({"s": "int64", "d": "int64", "dept": str})
    for frame, factors in [
        (data, ("s",)),
        (data, ("d",)),
        (data, ("dept", "service")),
        (data, ("s", "d")),
        (raw, ("s",)),
        (raw, ("dept", "service")),
        (raw, ("d", "s")),
    ]:
        assert_same_coding(group_codes(frame, factors), reference_group_codes(frame, factors))


EDGE_COLUMNS = {
    # equal values with different labels (True == 1 == 1.0) stay apart
    "mixed objects": pd.Series([True, 1, 1.0, "a", 2, np.int64(2), "10", "9"], dtype=object),
    "integers": pd.Series(np.random.default_rng(1).integers(-5, 3000, 500)),
    "wide integers": pd.Series([2**62, -(2**62), 0, 2**62]),
    "unsigned": pd.Series(np.array([2**63 + 5, 3, 2**63 + 5], dtype=np.uint64)),
    "small unsigned": pd.Series(np.array([200, 3, 7, 3], dtype=np.uint8)),
    "int8": pd.Series(np.array([127, -128, 3, 127], dtype=np.int8)),
    "booleans": pd.Series([True, False, True]),
    "one boolean": pd.Series([True, True]),
    "floats": pd.Series([0.5, -0.0, 0.0, 3.0, 2.5, 0.5]),
    "categorical integers, unused": pd.Series(pd.Categorical([3, 1, 3], categories=[1, 2, 3])),
    "categorical floats": pd.Series(pd.Categorical([3.0, 1.5, 3.0])),
    "categorical text, unused": pd.Series(pd.Categorical(list("cab"), categories=list("zcxab"))),
    "ordered categorical": pd.Series(
        pd.Categorical(list("bab"), categories=list("ba"), ordered=True)
    ),
    "integer-like text": pd.Series(["9", "10", " 3", "-1", "+4"], dtype=object),
    "numpy text": pd.Series(np.array(["b", "a", "10", "9"]).astype(object)),
    "string dtype": pd.Series(["b", "a", "b"], dtype="string"),
    "text with colons": pd.Series(["p:1", "p", "x"], dtype=object),
}


@pytest.mark.parametrize("name", list(EDGE_COLUMNS))
def test_levels_and_codes_of_unusual_columns_equal_the_reference(name: str) -> None:
    values = EDGE_COLUMNS[name]
    assert_same_coding(factor_codes(values), reference_factor_codes(values))


def test_interactions_of_unusual_columns_equal_the_reference() -> None:
    frame = pd.DataFrame(
        {
            "a": pd.Series(["p:1", "p", "q"] * 4, dtype=object),
            "b": ["2", "1:2", "2"] * 4,
            "c": np.arange(12) * 1000,
            "d": pd.Categorical(list("xyzx") * 3, categories=list("wzyx")),
        }
    )
    for factors in [("a", "b"), ("c", "a", "b"), ("d", "c"), ("b", "d", "a")]:
        assert_same_coding(group_codes(frame, factors), reference_group_codes(frame, factors))


def test_interactions_whose_labels_clash_still_raise() -> None:
    # as in test_bad_input: ( + ):a and :( + a) both read (:():a) once parenthesised
    frame = pd.DataFrame({"a": ["p:1", "p", "(", ":("], "b": ["2", "1:2", "):a", "a)"]})
    with pytest.raises(ColumnProblem, match="both read"):
        group_codes(frame, ("a", "b"))
