"""The checks of a design's data: covariate types, identifiable random effects, the offset."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from hiermodels.design._columns import (
    ColumnReader,
    check_numeric_text,
    first_rows,
    formula_names,
    plural,
    reader_of,
    resolve_columns,
)
from hiermodels.design.families import Family
from hiermodels.errors import ColumnProblem, DesignError

if TYPE_CHECKING:
    from hiermodels.design.design import RandomBlock


def _check_covariates(
    rhs: str,
    data: pd.DataFrame,
    where: str,
    checked: set[str] | None = None,
    read: ColumnReader | None = None,
) -> None:
    """Covariates must be numeric, boolean, categorical or strings.

    Names in ``checked`` passed this check before (for another term of the
    same data) and are skipped; every name that passes is added to it.
    ``read`` is a :class:`ColumnReader` of ``data``.
    """
    names, called = formula_names(rhs)
    read = reader_of(data, read)
    for name in resolve_columns(names, called, data.columns, where):
        if checked is not None and name in checked:
            continue
        values = read[name]
        check_numeric_text(values, name, where, strict=False)
        dtype = values.dtype
        ok = (
            ptypes.is_bool_dtype(dtype)
            or (ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype))
            or isinstance(dtype, pd.CategoricalDtype)
            or ptypes.is_string_dtype(dtype)
        )
        if ok and ptypes.is_object_dtype(dtype):
            ok = all(isinstance(v, str) for v in values)
        if not ok:
            raise ColumnProblem(
                f"column {name!r} used in {where} has dtype {dtype}; covariates must be "
                "numeric or categorical (strings, pandas Categorical)"
            )
        if checked is not None:
            checked.add(name)


def _check_repeated_terms(blocks: tuple[RandomBlock, ...]) -> None:
    """Refuse a term that varies twice by one grouping factor.

    ``(1 | g) + (1 | g)`` or ``(1 | g) + (1 + x | g)`` give ``g`` two
    intercept variances whose sum alone the data inform, and ``(1 | a:b) +
    (1 | b:a)`` is one factor twice: neither is identifiable.
    """
    seen: dict[frozenset[str], list[RandomBlock]] = {}
    for block in blocks:
        earlier = seen.setdefault(frozenset(block.factors), [])
        for other in earlier:
            if other.group != block.group:
                raise DesignError(
                    f"random-effect terms ({other.expr} | {other.group}) and "
                    f"({block.expr} | {block.group}) group by the same factor; "
                    f"write {other.group!r} once, in one of the two orders"
                )
            repeated = [term for term in block.terms if term in other.terms]
            if repeated:
                where = (
                    f"({other.expr} | {other.group}) and ({block.expr} | {block.group})"
                    if other.expr != block.expr
                    else f"({block.expr} | {block.group}), which appears twice"
                )
                raise DesignError(
                    f"random-effect {plural(len(repeated), 'term')} "
                    f"{', '.join(repr(t) for t in repeated)} vary by {block.group!r} more "
                    f"than once: in {where}; the repeated variances are not identifiable — "
                    "keep each term in one random-effect term per grouping factor"
                )
        earlier.append(block)


def _check_identifiable(blocks: tuple[RandomBlock, ...], nobs: int, family: Family) -> None:
    """lme4's checks: at least 2 levels; levels and random effects fewer than observations.

    With a residual variance (Gaussian) a term needs fewer levels, and fewer
    random effects (levels x columns), than observations; without one, no
    more random effects than observations.
    """
    for block in blocks:
        if block.n_levels < 2:
            raise DesignError(
                f"grouping factor {block.group!r} has {plural(block.n_levels, 'level')}; "
                "a random effect needs at least 2"
            )
    if family.is_gaussian:
        for block in blocks:
            if block.n_levels >= nobs:
                raise DesignError(
                    f"grouping factor {block.group!r} has {block.n_levels} levels for "
                    f"{nobs} observations; its random effects are not identifiable from the "
                    "residual variance — remove the term or use a non-Gaussian family"
                )
    for block in blocks:
        n_re = block.n_levels * block.n_terms
        if n_re > nobs or (family.is_gaussian and n_re >= nobs):
            residual = " from the residual variance" if family.is_gaussian else ""
            raise DesignError(
                f"random-effect term ({' + '.join(block.terms)} | {block.group}) has {n_re} "
                f"random effects ({block.n_levels} levels × {block.n_terms} columns) for "
                f"{nobs} observations; they are not identifiable{residual} — simplify the term"
            )


def _offset_source(
    offset: str | np.ndarray | None, data: pd.DataFrame
) -> tuple[str | None, np.ndarray | None]:
    """Split the ``offset`` argument into a column name or an array of ``len(data)``."""
    if offset is None:
        return None, None
    if isinstance(offset, str):
        resolve_columns([offset], set(), data.columns, "the offset")
        return offset, None
    values = np.asarray(offset)
    if values.ndim != 1 or values.shape[0] != len(data):
        raise ColumnProblem(
            f"offset has shape {values.shape}, but the data have {len(data)} rows; pass one "
            "value per row (or a column name)"
        )
    if not (ptypes.is_numeric_dtype(values.dtype) and not ptypes.is_complex_dtype(values.dtype)):
        raise ColumnProblem(f"offset must be numeric, got dtype {values.dtype}")
    return None, values.astype(np.float64)


def _offset_array(values: pd.Series, name: str, index: pd.Index) -> np.ndarray:
    """Validated float64 offset for the rows used."""
    if not (ptypes.is_numeric_dtype(values.dtype) and not ptypes.is_complex_dtype(values.dtype)):
        raise DesignError(f"offset {name!r} must be numeric, but has dtype {values.dtype}")
    array = values.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        raise DesignError(
            f"offset {name!r} has {plural(int(bad.sum()), 'infinite value')} "
            f"(first rows: {first_rows(index, bad)})"
        )
    return array


#: Families whose prior weights the engines implement: Gaussian precision weights, and
#: binomial numbers of trials (a bernoulli model with weights is that binomial model).
WEIGHTED_FAMILIES = ("gaussian", "binomial", "bernoulli")


def _weights_source(
    weights: str | np.ndarray | None, data: pd.DataFrame, family: Family
) -> np.ndarray | None:
    """The ``weights`` argument as one float64 value per row of ``data``, unchecked.

    Raises
    ------
    ColumnProblem
        For a family without prior weights, an unknown column, an array of
        the wrong length, or values that are not numbers.
    """
    if weights is None:
        return None
    if family.name not in WEIGHTED_FAMILIES:
        raise ColumnProblem(
            f"prior weights are not available for the {family.name} family; they are "
            "precision weights for the gaussian family and numbers of trials (with a "
            "proportion response) for the binomial and bernoulli families"
        )
    if isinstance(weights, str):
        resolve_columns([weights], set(), data.columns, "the weights")
        values = data[weights]
        name = repr(weights)
        if not _is_real_number(values.dtype):
            raise ColumnProblem(f"weights {name} must be numeric, but have dtype {values.dtype}")
        return values.to_numpy(dtype=np.float64)
    array = np.asarray(weights)
    if array.ndim != 1 or array.shape[0] != len(data):
        raise ColumnProblem(
            f"weights have shape {array.shape}, but the data have {len(data)} rows; pass one "
            "weight per row (or a column name)"
        )
    if not _is_real_number(array.dtype):
        raise ColumnProblem(f"weights must be numeric, got dtype {array.dtype}")
    return array.astype(np.float64)


def _is_real_number(dtype: object) -> bool:
    """Numeric, not complex and not boolean."""
    return (
        ptypes.is_numeric_dtype(dtype)
        and not ptypes.is_complex_dtype(dtype)
        and not ptypes.is_bool_dtype(dtype)
    )


def _checked_weights(weights: np.ndarray, index: pd.Index) -> np.ndarray:
    """Rows to keep: every row of ``index`` whose weight is positive.

    A zero weight removes its row from the likelihood; the row is dropped
    with a ``UserWarning`` (lme4 keeps it and reports an infinite criterion).

    Raises
    ------
    ColumnProblem
        For a NaN, infinite or negative weight, or when every weight is zero.
    """
    for bad, what in (
        (np.isnan(weights), "not a number (NaN)"),
        (np.isinf(weights), "infinite"),
        (weights < 0.0, "negative"),
    ):
        if bad.any():
            raise ColumnProblem(
                f"weights are {what} in {plural(int(bad.sum()), 'row')} "
                f"(first rows: {first_rows(index, bad)}); every weight must be a finite, "
                "non-negative number"
            )
    zero = weights == 0.0
    if zero.all():
        raise ColumnProblem(f"all {weights.size} weights are zero: no row is left to fit")
    if zero.any():
        warnings.warn(
            f"dropped {plural(int(zero.sum()), 'row')} of {weights.size} with weight zero "
            f"(first rows: {first_rows(index, zero)}); they do not enter the likelihood",
            UserWarning,
            stacklevel=3,
        )
    return ~zero


def check_positive_response(y: np.ndarray, index: pd.Index, expr: str, family: Family) -> None:
    """A Gamma or inverse-Gaussian response: every value positive, not all equal.

    Raises
    ------
    ColumnProblem
        Naming the rows at or below zero, or the one value of a constant response.
    """
    not_positive = y <= 0
    if not_positive.any():
        raise ColumnProblem(
            f"response {expr!r} must be positive for the {family.name} family: "
            f"{plural(int(not_positive.sum()), 'value')} at or below 0 "
            f"(first rows: {first_rows(index, not_positive)})"
        )
    if y.size and np.all(y == y[0]):
        raise ColumnProblem(
            f"the response {expr!r} is constant ({y[0]:g}) in all {y.size} rows; the "
            f"{family.name} family's dispersion cannot be estimated — check the response column"
        )
