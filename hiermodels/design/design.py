"""Turn a :class:`FormulaSpec` and a data frame into a :class:`Design`.

The design holds plain numpy arrays (response, fixed-effects matrix, one
block per random-effect term) plus the labels needed to put names back on
every number: fixed-effect column names, grouping-factor level labels and
random-effect term names.
"""

from __future__ import annotations

import functools
import keyword
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
from pandas.api import types as ptypes

from hiermodels.design._columns import (
    ColumnReader,
    check_numeric_text,
    first_rows,
    formula_names,
    missing_mask,
    plural,
    reader_of,
    resolve_columns,
    spec_columns,
)
from hiermodels.design._grouping import group_codes, render_level, value_label
from hiermodels.design._names import check_group_names
from hiermodels.design._response import check_informative, response_arrays
from hiermodels.design.factors import GroupTerms, build_factors
from hiermodels.design.families import Family, get_family
from hiermodels.design.formula import FormulaSpec, RandomTerm, parse_formula
from hiermodels.errors import ColumnProblem, DesignError

__all__ = [
    "Design",
    "RandomBlock",
    "DesignError",
    "build_design",
    "fixed_matrix_for",
    "random_matrix_for",
    "level_codes_for",
]

#: Tolerance on |R[k, k]| / max |R[j, j]| of the pivoted QR of the unit-norm columns of X.
RANK_TOL = 1e-7


@dataclass(frozen=True, eq=False)
class RandomBlock:
    """One random-effect term ``(expr | group)`` evaluated on the data.

    Attributes
    ----------
    group : str
        Grouping-factor name (``"Subject"``, ``"schoolid:classid"``).
    factors : tuple of str
        The data columns forming the grouping factor.
    terms : tuple of str
        Names of the term's columns, e.g. ``("Intercept", "Days")``.
    levels : tuple of str
        The grouping factor's level labels as they appear in the data
        (components of an interaction joined by ``":"``), in sorted order;
        distinct (see :mod:`hiermodels.design._grouping`).
    codes : numpy.ndarray
        ``(n,)`` int64 index into ``levels`` for every observation.
    X : numpy.ndarray
        ``(n, q)`` float64 model matrix of the term's columns.
    expr : str
        The term's expression (left of the bar).
    model_spec : formulaic.ModelSpec, DeferredModelSpec or None
        The encoding learned from the data (category levels, contrasts,
        stateful transforms), to rebuild ``X`` for new rows
        (:func:`random_matrix_for`); a :class:`DeferredModelSpec` stands in
        for it when ``X`` was built without formulaic.
    level_parts : tuple of tuple of str
        Per level, the label of each factor in ``factors``: what identifies
        a level (:func:`level_codes_for` matches new rows on it). Empty when
        the block was made without it; then the labels are matched.
    """

    group: str
    factors: tuple[str, ...]
    terms: tuple[str, ...]
    levels: tuple[str, ...]
    codes: np.ndarray
    X: np.ndarray
    expr: str = "1"
    model_spec: Any = field(default=None, repr=False)
    level_parts: tuple[tuple[str, ...], ...] = field(default=(), repr=False)

    @property
    def n_levels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)

    @property
    def n_terms(self) -> int:
        """Number of columns ``q`` of the term."""
        return len(self.terms)

    def Z(self) -> sp.csr_matrix:
        """Sparse ``(n, n_levels * q)`` indicator-times-covariate matrix.

        Columns are level-major: level ``i`` owns columns ``i*q .. i*q+q-1``.
        """
        n, q = self.X.shape
        rows = np.repeat(np.arange(n), q)
        cols = (self.codes[:, None] * q + np.arange(q)[None, :]).ravel()
        return sp.csr_matrix((self.X.ravel(), (rows, cols)), shape=(n, self.n_levels * q))


@dataclass(frozen=True, eq=False)
class Design:
    """Everything a likelihood engine or model builder needs, as arrays.

    Attributes
    ----------
    spec : FormulaSpec
        The parsed formula.
    family : Family
        Response family and link.
    y : numpy.ndarray
        ``(n,)`` float64 response; for ``cbind(s, f)`` the successes.
    trials : numpy.ndarray or None
        ``(n,)`` float64 number of trials for ``cbind`` binomial responses.
    X : numpy.ndarray
        ``(n, p)`` float64 fixed-effects model matrix (full column rank).
    fixed_names : tuple of str
        Column names of ``X``.
    blocks : tuple of RandomBlock
        One per random-effect term, in formula order.
    offset : numpy.ndarray or None
        ``(n,)`` offset on the linear-predictor scale.
    rows : pandas.Index
        Index labels of the data rows used (rows with missing values dropped).
    fixed_model_spec : Any
        formulaic ``ModelSpec`` of the fixed part, to rebuild ``X`` for new
        data (or the :class:`DeferredModelSpec` that makes it on first use).
    dropped_columns : tuple of str
        Fixed-effect columns dropped for rank deficiency.
    """

    spec: FormulaSpec
    family: Family
    y: np.ndarray
    trials: np.ndarray | None
    X: np.ndarray
    fixed_names: tuple[str, ...]
    blocks: tuple[RandomBlock, ...]
    offset: np.ndarray | None
    rows: pd.Index
    fixed_model_spec: Any
    dropped_columns: tuple[str, ...] = ()

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return int(self.y.shape[0])

    @property
    def groups(self) -> tuple[str, ...]:
        """Distinct grouping-factor names in order of first appearance."""
        return tuple(dict.fromkeys(block.group for block in self.blocks))

    @functools.cached_property
    def factors(self) -> tuple[GroupTerms, ...]:
        """The random-effect columns per grouping factor, in order of first appearance.

        Built on first read and kept (a copy or an unpickled design builds
        it again when asked).

        Raises
        ------
        ValueError
            When two blocks on one factor disagree on its levels, or repeat a term.
        """
        return build_factors(self.blocks)

    def __getstate__(self) -> dict[str, Any]:
        """The fields; the per-factor view is rebuilt on demand rather than stored."""
        return {k: v for k, v in self.__dict__.items() if k != "factors"}

    def Z(self) -> sp.csr_matrix:
        """Sparse random-effects matrix: the blocks' ``Z`` side by side."""
        if not self.blocks:
            return sp.csr_matrix((self.nobs, 0))
        return sp.hstack([block.Z() for block in self.blocks], format="csr")


def build_design(
    spec: FormulaSpec | str,
    data: pd.DataFrame,
    family: Family | str,
    *,
    missing: str = "drop",
    offset: str | np.ndarray | None = None,
) -> Design:
    """Evaluate a parsed formula on a data frame.

    Parameters
    ----------
    spec : FormulaSpec or str
        The formula, parsed by :func:`~hiermodels.design.formula.parse_formula`
        (a string is parsed here).
    data : pandas.DataFrame
        One row per observation. String, object and categorical columns are
        categorical (treatment contrasts in the fixed part).
    family : Family or str
        Response family; the response is checked against it.
    missing : {"drop", "raise"}
        Rows with missing values in any column the model uses (and in the
        offset) are dropped with a ``UserWarning`` (``"drop"``) or make a
        :class:`DesignError` (``"raise"``).
    offset : str or array-like, optional
        A column name, or one value per row of ``data``, added to the
        linear predictor.

    Returns
    -------
    Design

    Raises
    ------
    TypeError
        If ``data`` is not a DataFrame.
    ValueError
        For an unknown ``missing`` option.
    DesignError
        When the data do not fit the formula or the family (unknown columns,
        missing values with ``missing="raise"``, invalid responses, grouping
        factors with one level or as many levels as observations, ...).

    Warns
    -----
    UserWarning
        When rows are dropped for missing values, and when fixed-effect
        columns are dropped because ``X`` is rank deficient.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if missing not in ("drop", "raise"):
        raise ValueError(f"missing must be 'drop' or 'raise', got {missing!r}")
    spec = parse_formula(spec) if isinstance(spec, str) else spec
    if not isinstance(spec, FormulaSpec):
        raise TypeError(f"spec must be a FormulaSpec or a string, got {type(spec).__name__}")
    family = get_family(family)
    if len(data) == 0:
        raise DesignError("the data have no rows")
    try:
        columns = spec_columns(spec, data.columns)
        offset_column, offset_values = _offset_source(offset, data)
        if offset_column is not None and offset_column not in columns:
            columns.append(offset_column)
        extra = {"offset": offset_values} if offset_values is not None else None
        read = ColumnReader(data)
        keep = missing_mask(data, columns, extra, missing, read)
        # Every row kept: the model reads its columns from `data` itself, without a copy
        # (columns are only read); formulaic gets `used[columns]` (:func:`_model_matrix`).
        used = _prepare(data if keep.all() else data.loc[keep, columns], columns, read)
        read = reader_of(used, read)
        y, trials = response_arrays(spec.response, used, family, read)
        checked: set[str] = set()
        X, names, model_spec, dropped = _fixed_part(spec.fixed, used, columns, checked, read)
        blocks = tuple(_random_block(term, used, columns, checked, read) for term in spec.random)
    except ColumnProblem as problem:
        raise DesignError(str(problem)) from None
    _check_identifiable(blocks, len(used), family)
    _check_repeated_terms(blocks)
    terms_by_group: dict[str, list[str]] = {}
    for block in blocks:
        terms_by_group.setdefault(block.group, []).extend(block.terms)
    try:
        check_group_names(names, terms_by_group)
    except ValueError as problem:
        raise DesignError(str(problem)) from None
    final_offset = None
    if offset_column is not None:
        final_offset = _offset_array(read[offset_column], offset_column, used.index)
    elif offset_values is not None:
        final_offset = _offset_array(pd.Series(offset_values[keep]), "offset", used.index)
    try:
        check_informative(y, trials, family, spec.response.expr, final_offset)
    except ColumnProblem as problem:
        raise DesignError(str(problem)) from None
    return Design(
        spec=spec,
        family=family,
        y=y,
        trials=trials,
        X=X,
        fixed_names=names,
        blocks=blocks,
        offset=final_offset,
        rows=used.index,
        fixed_model_spec=model_spec,
        dropped_columns=dropped,
    )


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
    keep = _independent_columns(X)
    dropped = tuple(name for j, name in enumerate(names) if j not in set(keep))
    if dropped:
        warnings.warn(
            f"fixed-effect model matrix is rank deficient so dropping "
            f"{plural(len(dropped), 'column')}: {', '.join(dropped)}",
            UserWarning,
            stacklevel=3,
        )
    return X[:, keep], tuple(names[j] for j in keep), model_spec, dropped


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


def _random_block(
    term: RandomTerm,
    data: pd.DataFrame,
    columns: Sequence[str],
    checked: set[str],
    read: ColumnReader | None = None,
) -> RandomBlock:
    """Evaluate one random-effect term: its model matrix and grouping factor."""
    where = f"the random-effect term ({term.expr} | {term.group})"
    read = reader_of(data, read)
    _check_covariates(term.expr, data, where, checked, read)
    X, terms, model_spec = _term_matrix(term.expr, data, columns, where, read)
    codes, levels, parts = group_codes(data, term.factors, read)
    return RandomBlock(
        group=term.group,
        factors=term.factors,
        terms=terms,
        levels=levels,
        codes=codes,
        X=X,
        expr=term.expr,
        model_spec=model_spec,
        level_parts=parts,
    )


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
