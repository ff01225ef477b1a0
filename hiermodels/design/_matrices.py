"""The model matrices of a design: the fixed part and each random-effect term.

A right-hand side made of an intercept with numeric and categorical main
effects is built directly, as formulaic would build it; anything else goes
through formulaic. The fixed part keeps a maximal set of linearly
independent columns.
"""

from __future__ import annotations

import functools
import keyword
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg

from hiermodels.design._checks import _check_covariates
from hiermodels.design._columns import ColumnReader, first_rows, plural, reader_of
from hiermodels.errors import ColumnProblem

#: Tolerance on |R[k, k]| / max |R[j, j]| of the pivoted QR of the unit-norm columns of X.
RANK_TOL = 1e-7


def _prepare(
    frame: pd.DataFrame, columns: Sequence[str] | None = None, read: ColumnReader | None = None
) -> pd.DataFrame:
    """The used columns with unused categories removed (as lme4's model frame).

    ``frame`` itself when no categorical column among ``columns`` (all of
    ``frame``'s by default) has an unused category; otherwise a copy of
    ``frame[columns]`` with those categories removed. Callers only read the
    result. ``read`` is a :class:`ColumnReader` of ``frame``.
    """
    names = list(frame.columns) if columns is None else list(columns)
    read = reader_of(frame, read)
    stale = []
    for name in names:
        values = read[name]
        if isinstance(values.dtype, pd.CategoricalDtype) and _has_unused(values):
            stale.append(name)
    if not stale:
        return frame
    frame = frame[names].copy()
    for name in stale:
        frame[name] = frame[name].cat.remove_unused_categories()
    return frame


def _has_unused(values: pd.Series) -> bool:
    """Whether a categorical column has a category no row takes."""
    codes = values.array.codes
    seen = np.zeros(len(values.dtype.categories) + 1, dtype=bool)
    seen[codes] = True  # a missing value's code, -1, marks the extra last entry
    return not seen[:-1].all()


def _model_matrix(rhs: str, data: pd.DataFrame, where: str) -> Any:
    """formulaic's model matrix with every row kept.

    Missing values in the columns were handled before; ``na_action="ignore"``
    keeps rows where a transform gives NaN (``log(-1)``) so that
    :func:`_finite_matrix` reports them instead of formulaic dropping them.
    """
    from formulaic import model_matrix

    try:
        matrix = model_matrix(rhs, data, na_action="ignore", context={})
    except Exception as exc:  # formulaic raises several exception types
        raise ColumnProblem(f"cannot build the model matrix of {where}: {exc}") from None
    if matrix.shape[0] != len(data):  # pragma: no cover - guards formulaic's behaviour
        raise ColumnProblem(f"the model matrix of {where} lost rows")
    return matrix


def _finite_matrix(matrix: Any, index: pd.Index, where: str) -> np.ndarray:
    """float64 array of a model matrix, rejecting NaN or infinite entries by column."""
    return _check_finite(np.asarray(matrix, dtype=np.float64), list(matrix.columns), index, where)


def _check_finite(
    values: np.ndarray, names: Sequence[Any], index: pd.Index, where: str
) -> np.ndarray:
    """``values``, if every entry is finite; otherwise the first bad column's problem."""
    bad = ~np.isfinite(values)
    if bad.any():
        col = int(np.flatnonzero(bad.any(axis=0))[0])
        rows = bad[:, col]
        raise ColumnProblem(
            f"column {names[col]!r} of {where} has "
            f"{plural(int(rows.sum()), 'non-finite value')} (first rows: {first_rows(index, rows)})"
        )
    return values


def _term_matrix(
    rhs: str,
    data: pd.DataFrame,
    columns: Sequence[str],
    where: str,
    read: ColumnReader | None = None,
) -> tuple[np.ndarray, tuple[str, ...], Any]:
    """``X`` of one right-hand side, its column names and its (formulaic) model spec.

    An intercept with main effects of numeric and categorical columns is
    built directly (:func:`_main_effects`), with the values, column names and
    memory layout formulaic gives; everything else goes through formulaic on
    the model's columns. ``read`` is a :class:`ColumnReader` of ``data``.
    """
    simple = _main_effects(rhs, data, read)
    if simple is None:
        frame = data if list(data.columns) == list(columns) else data[list(columns)]
        matrix = _model_matrix(rhs, frame, where)
        X = _finite_matrix(matrix, data.index, where)
        return X, tuple(str(c) for c in matrix.columns), matrix.model_spec
    intercept, terms = simple
    names: list[str] = ["Intercept"] if intercept else []
    for name, values in terms:
        if isinstance(values.dtype, pd.CategoricalDtype):
            # treatment contrasts against the first category, named as formulaic names them
            names.extend(
                TREATMENT_FORMAT.format(name=name, field=level)
                for level in values.dtype.categories[1:]
            )
        else:
            names.append(name)
    X = np.zeros((len(data), len(names)), dtype=np.float64, order="F")
    if intercept:
        X[:, 0] = 1.0
    j = int(intercept)
    for _, values in terms:
        if isinstance(values.dtype, pd.CategoricalDtype):
            codes = values.array.codes.astype(np.intp)
            rows = np.flatnonzero(codes > 0)
            X[rows, codes[rows] + (j - 1)] = 1.0
            j += len(values.dtype.categories) - 1
        else:
            X[:, j] = values.to_numpy()
            j += 1
    spec = DeferredModelSpec(rhs, tuple((name, values.dtype) for name, values in terms))
    return _check_finite(X, names, data.index, where), tuple(names), spec


#: How formulaic names a column of treatment contrasts (``TreatmentContrasts``).
TREATMENT_FORMAT = "{name}[T.{field}]"

#: ``1 + x + z`` / ``0 + x`` as :func:`~hiermodels.design.formula.parse_formula` writes them.
_MAIN_EFFECTS = re.compile(r"([01])((?: \+ [A-Za-z_][A-Za-z0-9_]*)*)")


def _main_effects(
    rhs: str, data: pd.DataFrame, read: ColumnReader | None = None
) -> tuple[bool, tuple[tuple[str, pd.Series], ...]] | None:
    """``(intercept, ((name, column), ...))`` when ``rhs`` is built without formulaic.

    That is ``1`` or ``0`` followed by distinct plain column names, each
    numeric (int or float numpy dtype) or, with the intercept, a pandas
    categorical of at least two categories that all occur. Their formulaic
    model matrix is the intercept column of ones, each numeric column as
    float64 and, per categorical, one 0/1 column per category after the
    first; their model spec learns nothing from the data beyond the dtypes.
    ``None`` for anything else (transforms, interactions, removed terms,
    boolean, text or extension-dtype columns, a categorical without an
    intercept, names formulaic could read otherwise): formulaic builds it.
    ``read`` is a :class:`ColumnReader` of ``data``.
    """
    match = _MAIN_EFFECTS.fullmatch(rhs)
    if match is None:
        return None
    intercept = match.group(1) == "1"
    names = match.group(2).split(" + ")[1:]
    if (not names and not intercept) or len(set(names)) != len(names):
        return None
    read = reader_of(data, read)
    terms: list[tuple[str, pd.Series]] = []
    for name in names:
        if keyword.iskeyword(name) or name == "Intercept" or name not in data.columns:
            return None
        values = read[name]
        if not isinstance(values, pd.Series):  # a duplicated column name
            return None
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            if not intercept or len(dtype.categories) < 2 or _has_unused(values):
                return None
        elif not isinstance(dtype, np.dtype) or dtype.kind not in "iuf":
            return None
        terms.append((name, values))
    return intercept, tuple(terms)


class DeferredModelSpec:
    """The formulaic ``ModelSpec`` of a matrix built without formulaic, made on first use.

    :func:`_term_matrix` builds intercepts with numeric and categorical main
    effects itself. The ``ModelSpec`` of such a formula holds nothing learned
    from the data beyond the columns' dtypes (a numeric column has no
    encoding state; a categorical one its categories): it is made, when a
    prediction first needs it, by formulaic from a few rows with those
    dtypes, and equals the ``ModelSpec`` formulaic returns for the whole
    data. Every attribute is forwarded to it; :meth:`resolve` returns it.

    Parameters
    ----------
    rhs : str
        The right-hand side.
    dtypes : tuple of (str, dtype)
        Each column of ``rhs`` and its dtype in the data.
    """

    __slots__ = ("dtypes", "rhs")

    def __init__(self, rhs: str, dtypes: tuple[tuple[str, Any], ...]) -> None:
        self.rhs = rhs
        self.dtypes = dtypes

    def resolve(self) -> Any:
        """The formulaic ``ModelSpec`` (made once per formula and dtypes in a process)."""
        return _simple_model_spec(self.rhs, self.dtypes)

    def get_model_matrix(self, data: Any, **kwargs: Any) -> Any:
        """``ModelSpec.get_model_matrix`` of the resolved spec."""
        return self.resolve().get_model_matrix(data, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy and pickle probe dunders before the slots are set
            raise AttributeError(name)
        return getattr(self.resolve(), name)

    def __repr__(self) -> str:
        return f"DeferredModelSpec({self.rhs!r}, {[name for name, _ in self.dtypes]})"


@functools.lru_cache(maxsize=256)
def _simple_model_spec(rhs: str, dtypes: tuple[tuple[str, Any], ...]) -> Any:
    """formulaic's ``ModelSpec`` of ``rhs`` on rows with ``dtypes`` that take every category."""
    sizes = [len(d.categories) for _, d in dtypes if isinstance(d, pd.CategoricalDtype)]
    rows = np.arange(max(sizes, default=1))
    frame = pd.DataFrame(
        {
            name: pd.Categorical.from_codes(rows % len(dtype.categories), dtype=dtype)
            if isinstance(dtype, pd.CategoricalDtype)
            else np.zeros(rows.size, dtype=dtype)
            for name, dtype in dtypes
        },
        index=rows,
    )
    return _model_matrix(rhs, frame, f"the formula {rhs!r}").model_spec


def _fixed_part(
    fixed: str,
    data: pd.DataFrame,
    columns: Sequence[str],
    checked: set[str],
    read: ColumnReader | None = None,
) -> tuple[np.ndarray, tuple[str, ...], Any, tuple[str, ...]]:
    """``X`` (full column rank), its names, the formulaic ModelSpec, dropped names."""
    where = f"the fixed effects {fixed!r}"
    read = reader_of(data, read)
    _check_covariates(fixed, data, where, checked, read)
    X, names, model_spec = _term_matrix(fixed, data, columns, where, read)
    keep, dropped = full_rank_columns(X, names)
    return X[:, keep], tuple(names[j] for j in keep), model_spec, dropped


def full_rank_columns(X: np.ndarray, names: Sequence[str]) -> tuple[list[int], tuple[str, ...]]:
    """The columns of ``X`` kept for a full column rank, and the names dropped (with a warning).

    Depends on ``X`` through ``XᵀX`` alone (:func:`_independent_columns`), so
    root rows of cell moments decide as the rows would.
    """
    keep = _independent_columns(X)
    dropped = tuple(name for j, name in enumerate(names) if j not in set(keep))
    if dropped:
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping "
            f"{plural(len(dropped), 'column')}: {', '.join(dropped)}",
            UserWarning,
            stacklevel=4,
        )
    return keep, dropped


def _independent_columns(X: np.ndarray) -> list[int]:
    """Indices of a maximal set of linearly independent columns, earlier ones preferred.

    Every column is first scaled to unit norm, as R's ``lm`` does, so that
    the rank does not depend on units: ``Days * 1e8`` or a date serial
    number ``44197 + Days`` beside the intercept is as independent as
    ``Days``. The rank is then the number of diagonal entries of a pivoted
    QR above :data:`RANK_TOL` times the largest one. When ``X`` is
    deficient, columns are taken left to right, each kept if its component
    orthogonal to the kept ones is not negligible, so later (redundant)
    columns go, as in lme4.
    """
    n, p = X.shape
    if p == 0:
        return []
    norms = np.linalg.norm(X, axis=0)
    # an all-zero column stays zero (and is dropped) instead of dividing by zero
    scaled = X / np.where(norms > 0, norms, 1.0)
    R = scipy.linalg.qr(scaled, mode="r", pivoting=True)[0]
    diag = np.abs(np.diag(R))
    top = float(diag.max()) if diag.size else 0.0
    rank = int(np.sum(diag > RANK_TOL * top)) if top > 0 else 0
    if rank == p:
        return list(range(p))
    basis = np.zeros((n, 0))
    keep: list[int] = []
    for j in range(p):
        column = scaled[:, j]
        residual = column - basis @ (basis.T @ column)
        residual -= basis @ (basis.T @ residual)  # second pass keeps the basis orthogonal
        size = np.linalg.norm(residual)
        if norms[j] > 0 and size > RANK_TOL and len(keep) < rank:
            keep.append(j)
            basis = np.column_stack([basis, residual / size])
    return keep
