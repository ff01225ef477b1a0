"""The matrices of a built :class:`~hiermodels.design.design.Design` for new rows.

Predictions evaluate the fixed part and every random-effect term on new
data with the encodings learned from the design's data
(:func:`fixed_matrix_for`, :func:`random_matrix_for`) and find each new
row's level of a grouping factor (:func:`level_codes_for`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hiermodels.design._columns import formula_names, resolve_columns
from hiermodels.design._grouping import render_level, value_label
from hiermodels.design._matrices import _prepare
from hiermodels.design.design import Design, RandomBlock
from hiermodels.errors import ColumnProblem, DesignError

__all__ = [
    "fixed_matrix_for",
    "random_matrix_for",
    "level_codes_for",
]


def fixed_matrix_for(design: Design, newdata: pd.DataFrame) -> np.ndarray:
    """The fixed-effects matrix of ``design`` rebuilt for new data.

    Categorical encodings and stateful transforms (``scale(x)``, ``center(x)``)
    keep the values learned from the design's data, and columns dropped for
    rank deficiency stay dropped.

    Parameters
    ----------
    design : Design
    newdata : pandas.DataFrame
        Must hold every column the fixed part uses, without missing values.

    Returns
    -------
    numpy.ndarray
        ``(len(newdata), p)`` float64, columns in ``design.fixed_names`` order.

    Raises
    ------
    DesignError
        For missing columns, missing values or categories not seen in the
        design's data.
    """
    fixed = design.spec.fixed
    return _encoded_matrix(
        design.fixed_model_spec, fixed, design.fixed_names, newdata, f"the fixed effects {fixed!r}"
    )


def random_matrix_for(block: RandomBlock, newdata: pd.DataFrame) -> np.ndarray:
    """The term columns of a random-effect block rebuilt for new data.

    As :func:`fixed_matrix_for`: categorical encodings and stateful
    transforms keep what the design's data taught them, so a categorical
    random slope gets the same columns whichever of its categories the new
    rows hold.

    Parameters
    ----------
    block : RandomBlock
        A block of a fitted design.
    newdata : pandas.DataFrame
        Must hold every column the term uses, without missing values.

    Returns
    -------
    numpy.ndarray
        ``(len(newdata), q)`` float64, columns in ``block.terms`` order.

    Raises
    ------
    DesignError
        For missing columns, missing values or categories not seen in the
        design's data.
    """
    where = f"the random-effect term ({block.expr} | {block.group})"
    return _encoded_matrix(block.model_spec, block.expr, block.terms, newdata, where)


def _encoded_matrix(
    model_spec: Any, rhs: str, names: Sequence[str], newdata: pd.DataFrame, where: str
) -> np.ndarray:
    """Columns ``names`` of ``rhs`` for new rows, by the encoding of ``model_spec``."""
    if not isinstance(newdata, pd.DataFrame):
        raise TypeError(f"newdata must be a pandas DataFrame, got {type(newdata).__name__}")
    from formulaic.transforms.contrasts import DataMismatchWarning

    try:
        used, called = formula_names(rhs)
        columns = resolve_columns(used, called, newdata.columns, where)
    except ColumnProblem as problem:
        raise DesignError(str(problem)) from None
    holes = [c for c in columns if newdata[c].isna().any()]
    if holes:
        raise DesignError(f"newdata has missing values in: {', '.join(holes)} (used by {where})")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataMismatchWarning)
        try:
            matrix = model_spec.get_model_matrix(_prepare(newdata[columns]))
        except DataMismatchWarning as exc:
            raise DesignError(f"newdata does not match the design's data: {exc}") from None
    return np.asarray(matrix[list(names)], dtype=np.float64)


def level_codes_for(block: RandomBlock, newdata: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Each new row's level of a block's grouping factor, as fitted.

    Parameters
    ----------
    block : RandomBlock
    newdata : pandas.DataFrame
        Must hold the grouping column(s) ``block.factors``.

    Returns
    -------
    codes : numpy.ndarray
        int64 index into ``block.levels``, ``-1`` for a level not in the fit.
    labels : list of str
        The level label of every row (``"a:b"`` for an interaction).

    Raises
    ------
    DesignError
        When a grouping column is missing or has missing values.
    """
    missing = [f for f in block.factors if f not in newdata.columns]
    if missing:
        raise DesignError(
            f"newdata lacks the grouping column(s) {', '.join(missing)} of {block.group!r}"
        )
    holes = [f for f in block.factors if newdata[f].isna().any()]
    if holes:
        raise DesignError(
            f"newdata has missing values in the grouping column(s): {', '.join(holes)}"
        )
    rows = [
        tuple(value_label(v) for v in row)
        for row in newdata[list(block.factors)].itertuples(index=False, name=None)
    ]
    if not block.level_parts:
        labels = [":".join(row) for row in rows]
        position = {label: i for i, label in enumerate(block.levels)}
        codes = np.fromiter((position.get(lb, -1) for lb in labels), np.int64, len(labels))
        return codes, labels
    # Levels are matched on their component tuples: joined text can collide ("p:1" + "2"
    # and "p" + "1:2"), the tuples cannot.
    index = {parts: i for i, parts in enumerate(block.level_parts)}
    codes = np.fromiter((index.get(row, -1) for row in rows), np.int64, len(rows))
    wrap = any(
        label != render_level(parts, wrap=False)
        for label, parts in zip(block.levels, block.level_parts, strict=True)
    )
    labels = [
        block.levels[code] if code >= 0 else render_level(row, wrap=wrap)
        for row, code in zip(rows, codes.tolist(), strict=True)
    ]
    return codes, labels
