"""Grouping factors: level labels in a stable order, and integer codes.

Label rules (the same in MLE, EB and Bayes results):

* categorical column: the observed categories, in category order;
* boolean column: ``"False"``, ``"True"``;
* numeric column: numeric order; labels are ``str`` of the value, without a
  trailing ``".0"`` for integer-valued floats (``3.0`` gives ``"3"``);
* anything else (strings, objects): the ``str`` labels sorted, numerically
  when every label looks like an integer (``"9"`` before ``"10"``);
* an interaction ``a:b``: the combinations present, sorted by ``a``'s order
  then ``b``'s, labelled ``"<a>:<b>"``. A level is the *tuple* of its
  component labels, never the joined text, so ``("p:1", "2")`` and
  ``("p", "1:2")`` stay two levels. Should two of them read alike once
  joined, the components holding ``":"`` are parenthesised in every label of
  that factor (``"(p:1):2"``, ``"p:(1:2)"``); labels that still clash make a
  :class:`ColumnProblem`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from hiermodels.design._columns import (
    ColumnReader,
    reader_of,
)
from hiermodels.errors import ColumnProblem

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
    """Codes (int64, into the levels) and level labels of one column without missing values.

    Categorical columns use their codes directly, integer and boolean columns
    a hash factorisation, text columns factorise the distinct values before
    labelling them; anything else labels every value (:func:`_label_codes`).
    All give the levels and codes the label rules of the module docstring
    describe.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _categorical_codes(values)
    if ptypes.is_bool_dtype(dtype) or (
        ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype)
    ):
        array = values.to_numpy()
        if array.dtype.kind in "iu":
            return _integer_codes(array)
        if array.dtype.kind == "b":
            codes, uniques = pd.factorize(array, sort=True)
        else:  # floats: np.unique's equality (-0.0 == 0.0) decides what a level is
            uniques, codes = np.unique(array, return_inverse=True)
        return codes.astype(np.int64).ravel(), tuple(value_label(u) for u in uniques)
    codes, uniques = pd.factorize(values)
    distinct = uniques.tolist()
    # Values that compare equal share a code; their labels then agree only for text
    # (True == 1 == 1.0 would merge "True" and "1").
    if not all(isinstance(value, str) for value in distinct):
        return _label_codes(values)
    labels = [str(value) for value in distinct]
    levels = sorted_labels(list(dict.fromkeys(labels)))
    position = {label: i for i, label in enumerate(levels)}
    remap = np.fromiter((position[label] for label in labels), dtype=np.int64, count=len(labels))
    return remap[codes], tuple(levels)


def _integer_codes(array: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and labels of integers: by counting when their range is short, else by hashing.

    Either way the levels are the distinct values in numeric order, as
    ``np.unique`` gives them, without sorting every row.
    """
    low, high = int(array.min()), int(array.max())
    span = high - low + 1
    if span > max(4 * array.size, 1 << 16):
        codes, uniques = pd.factorize(array, sort=True)
        return codes.astype(np.int64), tuple(value_label(u) for u in uniques)
    if array.dtype.kind == "i":
        shifted = array.astype(np.int64) - low
    else:  # unsigned: subtract in the column's own type, which cannot go below zero
        shifted = (array - array.min()).astype(np.int64)
    seen = np.bincount(shifted, minlength=span) > 0
    codes = (np.cumsum(seen, dtype=np.int64) - 1)[shifted]
    return codes, tuple((np.flatnonzero(seen) + low).astype(str).tolist())


def _categorical_codes(values: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and labels of a categorical column: the used categories, in category order."""
    array = values.array
    assert isinstance(array, pd.Categorical)
    raw, categories = array.codes, array.categories
    if raw.size and raw.min() < 0:  # missing values: let pandas decide, as before
        observed = values.cat.remove_unused_categories()
        codes = observed.cat.codes.to_numpy(dtype=np.int64)
        return codes, _category_labels(observed.cat.categories)
    used = np.bincount(raw, minlength=len(categories)) > 0
    if used.all():
        return raw.astype(np.int64), _category_labels(categories)
    remap = np.cumsum(used, dtype=np.int64) - 1
    return remap[raw], _category_labels(categories[used])


def _category_labels(categories: pd.Index) -> tuple[str, ...]:
    """:func:`value_label` of every category (text categories are their own labels)."""
    if categories.dtype.kind in "iu":  # Python ints from tolist(): value_label is str
        return tuple(map(str, categories.tolist()))
    return tuple(c if type(c) is str else value_label(c) for c in categories.tolist())


def _label_codes(values: pd.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and levels of any column by labelling every value: the general rule."""
    labels = [value_label(v) for v in values.to_numpy()]
    levels = sorted_labels(list(dict.fromkeys(labels)))
    position = {label: i for i, label in enumerate(levels)}
    codes = np.fromiter((position[label] for label in labels), dtype=np.int64, count=len(labels))
    return codes, tuple(levels)


def group_codes(
    data: pd.DataFrame, factors: Sequence[str], read: ColumnReader | None = None
) -> tuple[np.ndarray, tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Codes, labels and component labels of the interaction of ``factors``.

    Only combinations present in the data become levels; they are ordered by
    the first factor's order, then the second's, and so on.

    ``read`` is a :class:`~hiermodels.design._columns.ColumnReader` of ``data``
    to share with other steps.

    Returns
    -------
    codes : numpy.ndarray
        ``(n,)`` int64 index into the levels.
    labels : tuple of str
        One distinct label per level (:func:`interaction_labels`).
    parts : tuple of tuple of str
        Per level, the label of each component factor: the level's identity.

    Raises
    ------
    ColumnProblem
        When two levels cannot be given distinct labels.
    """
    read = reader_of(data, read)
    coded = [factor_codes(read[name]) for name in factors]
    if len(coded) == 1:
        codes, labels = coded[0]
        return codes, labels, tuple(zip(labels, strict=True))
    sizes = [max(len(labels), 1) for _, labels in coded]
    if math.prod(sizes) < 2**62:
        # One mixed-radix key per row orders the combinations as the rows of codes
        # would sort, first factor first.
        key = coded[0][0].copy()
        for (codes, _), size in zip(coded[1:], sizes[1:], strict=True):
            key *= size
            key += codes
        combinations = math.prod(sizes)
        if combinations <= max(4 * key.size, 1 << 16):
            seen = np.bincount(key, minlength=combinations) > 0
            present = np.flatnonzero(seen)
            inverse = (np.cumsum(seen, dtype=np.int64) - 1)[key]
        else:
            inverse, present = pd.factorize(key, sort=True)
        combos = np.empty((present.size, len(coded)), dtype=np.int64)
        rest = np.asarray(present, dtype=np.int64)
        for k in range(len(coded) - 1, -1, -1):
            rest, combos[:, k] = np.divmod(rest, sizes[k])
    else:  # pragma: no cover - needs more than 2**62 possible combinations
        stacked = np.column_stack([codes for codes, _ in coded])
        combos, inverse = np.unique(stacked, axis=0, return_inverse=True)
    components = [
        [labels[code] for code in combos[:, k].tolist()] for k, (_, labels) in enumerate(coded)
    ]
    parts = tuple(zip(*components, strict=True))
    return inverse.astype(np.int64).ravel(), interaction_labels(parts, factors), parts


def interaction_labels(parts: Sequence[tuple[str, ...]], factors: Sequence[str]) -> tuple[str, ...]:
    """Distinct labels for interaction levels given as tuples of component labels.

    The components are joined by ``":"``; if that makes two levels read
    alike, every component containing ``":"`` is parenthesised instead (see
    the module docstring).

    Raises
    ------
    ColumnProblem
        Naming the two levels, when even the parenthesised labels clash.
    """
    plain = tuple(":".join(level) for level in parts)
    if len(set(plain)) == len(plain):
        return plain
    wrapped = tuple(render_level(level, wrap=True) for level in parts)
    if len(set(wrapped)) == len(wrapped):
        return wrapped
    seen: dict[str, tuple[str, ...]] = {}
    for label, level in zip(wrapped, parts, strict=True):
        if label in seen:
            raise ColumnProblem(
                f"levels {seen[label]} and {level} of the grouping factor {':'.join(factors)} "
                f"both read {label!r}; change the labels of {', '.join(factors)} so that "
                "they do not contain ':' or brackets"
            )
        seen[label] = level
    raise AssertionError("unreachable: duplicate labels were found above")  # pragma: no cover


def render_level(level: Sequence[str], *, wrap: bool) -> str:
    """One interaction label: components joined by ``":"``, parenthesised if ``wrap`` needs it."""
    if not wrap:
        return ":".join(level)
    return ":".join(f"({part})" if ":" in part else part for part in level)
