"""Grouping factors: level labels in a stable order, and integer codes.

Label rules (the same in MLE, EB and Bayes results):

* categorical column: the observed categories, in category order;
* boolean column: ``"False"``, ``"True"``;
* numeric column: numeric order; labels are ``str`` of the value, without a
  trailing ``".0"`` for integer-valued floats (``3.0`` gives ``"3"``);
* anything else (strings, objects): the ``str`` labels sorted, numerically
  when every label looks like an integer (``"9"`` before ``"10"``);
* an interaction ``a:b``: the combinations present, sorted by ``a``'s order
  then ``b``'s, labelled ``"<a>:<b>"``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

_INTEGER = re.compile(r"\s*[+-]?\d+\s*")


def value_label(value: object) -> str:
    """Label of one value: integer-valued floats lose their ``".0"``."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)


def sorted_labels(labels: Sequence[str]) -> list[str]:
    """Sort string labels, numerically when all of them look like integers."""
    if labels and all(_INTEGER.fullmatch(label) for label in labels):
        return sorted(labels, key=lambda label: (int(label), label))
    return sorted(labels)


def factor_codes(values: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes (int64, into the levels) and level labels of one column without missing values."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        observed = values.cat.remove_unused_categories()
        codes = observed.cat.codes.to_numpy(dtype=np.int64)
        return codes, tuple(value_label(c) for c in observed.cat.categories)
    if ptypes.is_bool_dtype(dtype) or (
        ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype)
    ):
        array = values.to_numpy()
        uniques, codes = np.unique(array, return_inverse=True)
        return codes.astype(np.int64).ravel(), tuple(value_label(u) for u in uniques)
    labels = [value_label(v) for v in values.to_numpy()]
    levels = sorted_labels(list(dict.fromkeys(labels)))
    position = {label: i for i, label in enumerate(levels)}
    codes = np.fromiter((position[label] for label in labels), dtype=np.int64, count=len(labels))
    return codes, tuple(levels)


def group_codes(data: pd.DataFrame, factors: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and labels of the grouping factor formed by the interaction of ``factors``.

    Only combinations present in the data become levels; they are ordered by
    the first factor's order, then the second's, and so on.
    """
    parts = [factor_codes(data[name]) for name in factors]
    if len(parts) == 1:
        return parts[0]
    stacked = np.column_stack([codes for codes, _ in parts])
    combos, inverse = np.unique(stacked, axis=0, return_inverse=True)
    levels = tuple(
        ":".join(parts[k][1][code] for k, code in enumerate(row)) for row in combos.tolist()
    )
    return inverse.astype(np.int64).ravel(), levels
