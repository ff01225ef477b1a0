"""Evaluate and validate the response (``y``, and ``trials`` for ``cbind``)."""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from hiermodels.design._checks import check_positive_response
from hiermodels.design._columns import (
    ColumnReader,
    check_numeric_text,
    first_rows,
    plural,
    python_names,
    reader_of,
    unquote_names,
)
from hiermodels.design._grouping import factor_codes, value_label
from hiermodels.design._syntax import is_name, strip_backticks, to_python_power
from hiermodels.design.families import Family
from hiermodels.design.formula import ResponseSpec
from hiermodels.errors import ColumnProblem


def response_arrays(
    response: ResponseSpec,
    data: pd.DataFrame,
    family: Family,
    read: ColumnReader | None = None,
    trials: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(y, trials)`` as float64 arrays, checked against the family.

    ``read`` is a :class:`~hiermodels.design._columns.ColumnReader` of ``data``
    to share with other steps. ``trials`` are a binomial model's prior
    weights, one per row: the response is then the proportion of successes
    (glm's and glmer's ``weights``), and ``y`` the successes.

    Raises
    ------
    ColumnProblem
        For non-numeric or non-finite responses, values the family does not
        allow, ``cbind`` with a family other than binomial or with
        ``trials``, or proportions that are no whole number of the trials.
    """
    if trials is not None:
        return _proportion_successes(response, data, family, trials, read)
    if response.is_cbind:
        if family.name != "binomial":
            raise ColumnProblem(
                f"the response {response.expr!r} is cbind(successes, failures), which needs "
                f"the binomial family, not {family.name!r}"
            )
        successes = evaluate(str(response.successes), data, "cbind successes", read=read)
        failures = evaluate(str(response.failures), data, "cbind failures", read=read)
        _check_counts(successes, data.index, f"cbind successes {response.successes!r}")
        _check_counts(failures, data.index, f"cbind failures {response.failures!r}")
        return successes, successes + failures
    binary = family.is_binomial
    y = evaluate(response.expr, data, "response", binary=binary, read=read)
    if binary:
        _check_binary(y, data.index, response.expr, family.name)
    elif family.name in ("poisson", "negativebinomial"):
        _check_counts(y, data.index, f"response {response.expr!r} ({family.name} family)")
    elif family.is_positive:
        check_positive_response(y, data.index, response.expr, family)
    return y, None


def _proportion_successes(
    response: ResponseSpec,
    data: pd.DataFrame,
    family: Family,
    trials: np.ndarray,
    read: ColumnReader | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(successes, trials)`` from a proportion response and its numbers of trials."""
    if response.is_cbind:
        raise ColumnProblem(
            f"the response {response.expr!r} is cbind(successes, failures), which gives the "
            "numbers of trials already; weights with a binomial model are the trials of a "
            "proportion response (e.g. 'incidence / size ~ ...' with weights='size')"
        )
    proportion = evaluate(response.expr, data, "response", binary=True, read=read)
    outside = (proportion < 0.0) | (proportion > 1.0)
    if outside.any():
        raise ColumnProblem(
            f"response {response.expr!r} outside [0, 1] for the {family.name} family with "
            f"weights: {plural(int(outside.sum()), 'value')} "
            f"(first rows: {first_rows(data.index, outside)}); with weights the response is "
            "the proportion of successes out of `weights` trials"
        )
    _check_counts(trials, data.index, "binomial weights (numbers of trials)")
    successes = proportion * trials
    whole = np.round(successes)
    fractional = np.abs(successes - whole) > _WHOLE_TOLERANCE * np.maximum(trials, 1.0)
    if fractional.any():
        raise ColumnProblem(
            f"response {response.expr!r} times the weights is not a whole number of "
            f"successes in {plural(int(fractional.sum()), 'row')} "
            f"(first rows: {first_rows(data.index, fractional)}); with weights the response "
            "is the proportion of successes out of `weights` trials"
        )
    return whole, trials


#: Relative tolerance for a proportion times its trials to count as a whole number: the
#: round-off of ``k / n * n`` is a few units in the last place.
_WHOLE_TOLERANCE = 1e-8


def check_informative(
    y: np.ndarray,
    trials: np.ndarray | None,
    family: Family,
    expr: str,
    offset: np.ndarray | None = None,
) -> None:
    """Refuse a response that leaves the model nothing to estimate.

    A Gaussian response that does not vary (after the offset) has no
    residual variance; counts that are all zero, or binary data that are
    all successes or all failures, push the intercept to infinity.

    Raises
    ------
    ColumnProblem
        Naming the response and what is wrong with it.
    """
    if y.size == 0:
        return
    if family.is_gaussian:
        shifted = y if offset is None else y - offset
        if np.all(shifted == shifted[0]):
            after = " after subtracting the offset" if offset is not None else ""
            raise ColumnProblem(
                f"the response {expr!r} is constant ({value_label(float(shifted[0]))}) in all "
                f"{y.size} rows{after}; a Gaussian model has no residual variance to estimate "
                "— check the response column"
            )
        return
    if family.name in ("poisson", "negativebinomial") and not np.any(y):
        raise ColumnProblem(
            f"the response {expr!r} is 0 in all {y.size} rows; a {family.name} model has "
            "no finite intercept for all-zero counts — check the response column"
        )
    if family.is_binomial:
        size = trials if trials is not None else np.ones_like(y)
        if not np.any(y):
            outcome = "no successes (all 0)"
        elif np.all(y == size):
            outcome = "only successes (all 1)" if trials is None else "only successes (y = trials)"
        else:
            return
        raise ColumnProblem(
            f"the response {expr!r} has {outcome} in all {y.size} rows; a {family.name} model "
            "has no finite intercept when every outcome is the same — check the response column"
        )


def evaluate(
    expr: str,
    data: pd.DataFrame,
    role: str,
    *,
    binary: bool = False,
    read: ColumnReader | None = None,
) -> np.ndarray:
    """Evaluate a response expression on the data: a column, or formulaic arithmetic.

    With ``binary``, a boolean column gives 0/1 and a two-level categorical or
    string column gives 1 for its second level (see
    :mod:`hiermodels.design._grouping` for the level order). ``read`` is a
    :class:`~hiermodels.design._columns.ColumnReader` of ``data``.
    """
    read = reader_of(data, read)
    for name in python_names(expr)[0]:
        if name in data.columns:
            check_numeric_text(read[name], name, f"the {role} {expr!r}", strict=True)
    if is_name(expr):
        column = strip_backticks(expr)
        values = read[column]
        if binary and not _is_number(values.dtype):
            return _binary_codes(values, column)
        if not _is_number(values.dtype):
            raise ColumnProblem(
                f"the {role} {column!r} must be numeric, but the column has dtype {values.dtype}"
            )
        y = values.to_numpy(dtype=np.float64)
    else:
        y = _evaluate_expression(expr, data, role)
    _check_finite(y, data.index, f"the {role} {expr!r}")
    return y


def _is_number(dtype: object) -> bool:
    """Numeric (not complex) or boolean."""
    return ptypes.is_bool_dtype(dtype) or (
        ptypes.is_numeric_dtype(dtype) and not ptypes.is_complex_dtype(dtype)
    )


def _binary_codes(values: pd.Series, column: str) -> np.ndarray:
    """0/1 for a two-level non-numeric response: the second level is 1."""
    if ptypes.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=np.float64)
    codes, levels = factor_codes(values)
    if len(levels) != 2:
        shown = ", ".join(repr(level) for level in levels[:6])
        raise ColumnProblem(
            f"the response {column!r} (dtype {values.dtype}) has {plural(len(levels), 'level')} "
            f"({shown}); a binary response needs exactly two (the second counts as 1) "
            "or numbers 0/1"
        )
    return codes.astype(np.float64)


def _evaluate_expression(expr: str, data: pd.DataFrame, role: str) -> np.ndarray:
    """Evaluate ``expr`` as Python arithmetic with formulaic's transforms (``log``, ``np``)."""
    simple = _arithmetic(expr, data)
    if simple is not None:
        return simple
    from formulaic import model_matrix

    # formulaic keeps a quoted keyword (`yield`) as the keyword, which Python cannot
    # parse: the quoted columns are read under plain placeholder names instead
    code, aliases = unquote_names(to_python_power(expr))
    frame = data.rename(columns={name: alias for alias, name in aliases.items()})
    try:
        matrix = model_matrix(f"0 + I({code})", frame, na_action="ignore", context={})
    except Exception as exc:  # formulaic wraps evaluation errors in several types
        raise ColumnProblem(f"cannot evaluate the {role} {expr!r}: {exc}") from None
    if matrix.shape[1] != 1:
        raise ColumnProblem(f"the {role} {expr!r} must give numbers, one per row")
    return np.asarray(matrix, dtype=np.float64).ravel()


_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}


def _arithmetic(expr: str, data: pd.DataFrame) -> np.ndarray | None:
    """``expr`` as float64 when it is ``+``, ``-``, ``*`` of numeric columns and numbers.

    Such an expression (``size - incidence``) of int64 and float64 columns
    and small numbers runs under formulaic's ``I()`` as the same numpy
    operations on the same arrays (pandas arithmetic on aligned columns is
    numpy's); this evaluates it without formulaic, into a new array.
    ``None`` for anything else.
    """
    code, aliases = unquote_names(to_python_power(expr))
    try:
        tree = ast.parse(code.strip(), mode="eval")
    except SyntaxError:
        return None
    uses_column = False

    def value(node: ast.expr) -> Any:
        nonlocal uses_column
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            left, right = value(node.left), value(node.right)
            if left is None or right is None:
                return None
            return _OPERATORS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            operand = value(node.operand)
            return None if operand is None else -operand
        if isinstance(node, ast.Constant):
            number = node.value
            if type(number) is float or (type(number) is int and abs(number) < 2**31):
                return number
            return None
        if isinstance(node, ast.Name):
            name = aliases.get(node.id, node.id)
            if name not in data.columns:
                return None
            column = data[name]
            dtype = column.dtype
            if not isinstance(column, pd.Series) or not isinstance(dtype, np.dtype):
                return None
            if dtype not in (np.int64, np.float64):
                return None
            uses_column = True
            return column.to_numpy()
        return None

    result = value(tree.body)
    if result is None or not uses_column:
        return None
    return np.array(result, dtype=np.float64).ravel()


def _check_finite(y: np.ndarray, index: pd.Index, what: str) -> None:
    """Reject NaN (from an expression such as ``log(-1)``) and infinite values."""
    nan = np.isnan(y)
    if nan.any():
        raise ColumnProblem(
            f"{what} is not a number (NaN) in {plural(int(nan.sum()), 'row')} "
            f"(first rows: {first_rows(index, nan)})"
        )
    inf = np.isinf(y)
    if inf.any():
        raise ColumnProblem(
            f"{what} has {plural(int(inf.sum()), 'infinite value')} "
            f"(first rows: {first_rows(index, inf)})"
        )


def _check_binary(y: np.ndarray, index: pd.Index, expr: str, family: str) -> None:
    """Bernoulli data: every value 0 or 1."""
    outside = (y < 0) | (y > 1)
    between = ~outside & (y != 0) & (y != 1)
    if outside.any():
        raise ColumnProblem(
            f"response {expr!r} outside [0, 1] for the {family} family: "
            f"{plural(int(outside.sum()), 'value')} (first rows: {first_rows(index, outside)}); "
            "use 0/1 data, or cbind(successes, failures) with the binomial family"
        )
    if between.any():
        raise ColumnProblem(
            f"response {expr!r} must be 0 or 1 for the {family} family: "
            f"{plural(int(between.sum()), 'value')} strictly between 0 and 1 "
            f"(first rows: {first_rows(index, between)}); for counts out of a number of "
            "trials use cbind(successes, failures) with the binomial family"
        )


def _check_counts(y: np.ndarray, index: pd.Index, what: str) -> None:
    """Counts: non-negative integers."""
    negative = y < 0
    fractional = y != np.round(y)
    if negative.any() or fractional.any():
        problems = []
        if negative.any():
            problems.append(f"{plural(int(negative.sum()), 'negative value')}")
        if fractional.any():
            problems.append(f"{plural(int(fractional.sum()), 'non-integer value')}")
        bad = negative | fractional
        raise ColumnProblem(
            f"{what} must be non-negative integers: {' and '.join(problems)} "
            f"(rows: {first_rows(index, bad)})"
        )
