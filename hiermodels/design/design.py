"""Turn a :class:`FormulaSpec` and a data frame into a :class:`Design`.

The design holds plain numpy arrays (response, fixed-effects matrix, one
block per random-effect term) plus the labels needed to put names back on
every number: fixed-effect column names, grouping-factor level labels and
random-effect term names. The model matrices are built by
:mod:`hiermodels.design._matrices` and the data checked by
:mod:`hiermodels.design._checks`; :mod:`hiermodels.design.newdata` rebuilds
the matrices of a built design for new rows.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hiermodels._lazy import moved_names
from hiermodels.design._checks import (
    _check_covariates,
    _check_identifiable,
    _check_repeated_terms,
    _checked_weights,
    _offset_array,
    _offset_source,
    _weights_source,
)
from hiermodels.design._columns import (
    ColumnReader,
    missing_mask,
    reader_of,
    spec_columns,
)
from hiermodels.design._grouping import group_codes
from hiermodels.design._matrices import _fixed_part, _prepare, _term_matrix
from hiermodels.design._names import check_group_names
from hiermodels.design._response import check_informative, response_arrays
from hiermodels.design.compressed import CompressedRows
from hiermodels.design.factors import GroupTerms, build_factors
from hiermodels.design.families import Family, get_family
from hiermodels.design.formula import FormulaSpec, RandomTerm, parse_formula
from hiermodels.errors import ColumnProblem, DesignError

__all__ = [
    "Design",
    "RandomBlock",
    "DesignError",
    "build_design",
]

#: Names that moved out of this module, and the module each moved to. A design
#: pickled before the move names ``DeferredModelSpec`` here, so it must resolve.
_MOVED: dict[str, tuple[str, str]] = {
    "fixed_matrix_for": ("hiermodels.design.newdata", "fixed_matrix_for"),
    "random_matrix_for": ("hiermodels.design.newdata", "random_matrix_for"),
    "level_codes_for": ("hiermodels.design.newdata", "level_codes_for"),
    "DeferredModelSpec": ("hiermodels.design._matrices", "DeferredModelSpec"),
    "RANK_TOL": ("hiermodels.design._matrices", "RANK_TOL"),
    "TREATMENT_FORMAT": ("hiermodels.design._matrices", "TREATMENT_FORMAT"),
}


__getattr__ = moved_names(__name__, _MOVED)


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
        (:func:`~hiermodels.design.newdata.random_matrix_for`); a
        :class:`~hiermodels.design._matrices.DeferredModelSpec` stands in
        for it when ``X`` was built without formulaic.
    level_parts : tuple of tuple of str
        Per level, the label of each factor in ``factors``: what identifies
        a level (:func:`~hiermodels.design.newdata.level_codes_for` matches
        new rows on it). Empty when the block was made without it; then the
        labels are matched.
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
        data (or the :class:`~hiermodels.design._matrices.DeferredModelSpec`
        that makes it on first use).
    dropped_columns : tuple of str
        Fixed-effect columns dropped for rank deficiency.
    weights : numpy.ndarray or None
        ``(n,)`` positive precision weights of a Gaussian design,
        ``Var(y_i) = σ² / w_i`` (lme4's ``weights``); ``None`` for unweighted
        designs and for binomial ones, whose weights are their ``trials``.
    compressed : CompressedRows or None
        For a design built from summed statistics (a Dask DataFrame), what
        its rows stand for (:mod:`hiermodels.design.compressed`): root rows
        of cell moments (Gaussian; any weights are inside the roots, so
        ``weights`` is ``None``) or aggregated cells (GLMM). ``None`` for a
        design of the data's own rows.
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
    weights: np.ndarray | None = None
    compressed: CompressedRows | None = None

    @property
    def nobs(self) -> int:
        """Number of observations used (of the data, for a compressed design)."""
        if self.compressed is not None:
            return self.compressed.nobs
        return self.n_rows

    @property
    def n_rows(self) -> int:
        """Rows of this design's arrays: the observations, or the root rows or cells
        that stand for them (:attr:`compressed`)."""
        return int(self.y.shape[0])

    @property
    def has_root_rows(self) -> bool:
        """Whether the rows are root rows of cell moments, not observations."""
        return self.compressed is not None and self.compressed.kind == "roots"

    @property
    def response_shift(self) -> float:
        """``c`` with ``y + c·ones`` the response: 0, except for root rows (see
        :attr:`CompressedRows.response_shift`)."""
        return self.compressed.response_shift if self.compressed is not None else 0.0

    @property
    def ones(self) -> np.ndarray:
        """The constant column on this design's rows: ones, or its root rows."""
        if self.compressed is not None and self.compressed.ones is not None:
            return self.compressed.ones
        return np.ones(self.n_rows)

    def response_rows(self) -> np.ndarray:
        """The response on this design's rows: ``y``, or for root rows ``y + c·ones``."""
        if self.response_shift:
            return self.y + self.response_shift * self.ones
        return self.y

    def column_mean(self, values: np.ndarray) -> float:
        """The mean over the observations of a column given on this design's rows."""
        if self.has_root_rows:
            ones = self.ones
            return float(ones @ values) / float(ones @ ones)
        return float(np.mean(values))

    def column_sd(self, values: np.ndarray, ddof: int = 1) -> float:
        """The standard deviation over the observations of a column on this design's rows."""
        if self.has_root_rows:
            centred = values - self.column_mean(values) * self.ones
            spread = float(centred @ centred)
            # a constant column leaves round-off only, where its rows would leave 0
            if spread <= 1e-24 * float(values @ values):
                return 0.0
            return math.sqrt(spread / max(self.nobs - ddof, 1))
        return float(np.std(values, ddof=ddof)) if values.size > ddof else 0.0

    def is_constant_column(self, values: np.ndarray) -> bool:
        """Whether a column on this design's rows is the constant 1."""
        if self.has_root_rows:
            return bool(np.array_equal(values, self.ones))
        return bool(np.all(values == 1.0))

    def level_counts(self, group: str) -> np.ndarray:
        """Observations per level of grouping factor ``group``, in its level order."""
        if self.compressed is not None:
            return self.compressed.level_counts[group]
        block = next(b for b in self.blocks if b.group == group)
        return np.bincount(block.codes, minlength=block.n_levels)

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
            return sp.csr_matrix((self.n_rows, 0))
        return sp.hstack([block.Z() for block in self.blocks], format="csr")


def build_design(
    spec: FormulaSpec | str,
    data: pd.DataFrame,
    family: Family | str,
    *,
    missing: str = "drop",
    offset: str | np.ndarray | None = None,
    weights: str | np.ndarray | None = None,
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
    weights : str or array-like, optional
        Prior weights: a column name, or one value per row of ``data``,
        finite and non-negative. For the Gaussian family precision weights,
        ``Var(y_i) = σ² / w_i`` (lme4's ``weights``); for the binomial and
        bernoulli families numbers of trials, with the response the
        proportion of successes (glm's and glmer's ``weights``; such a
        bernoulli design is the binomial one). Rows with weight zero are
        dropped with a ``UserWarning``. Other families refuse weights.

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
        When rows are dropped for missing values or zero weights, and when
        fixed-effect columns are dropped because ``X`` is rank deficient.
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
        all_weights = _weights_source(weights, data, family)
        read = ColumnReader(data)
        keep = missing_mask(data, columns, extra, missing, read)
        row_weights = None
        if all_weights is not None:
            positive = _checked_weights(all_weights[keep], data.index[keep])
            keep[keep] = positive
            row_weights = all_weights[keep]
            if family.name == "bernoulli":
                family = Family("binomial", family.link)
        # Every row kept: the model reads its columns from `data` itself, without a copy
        # (columns are only read); formulaic gets `used[columns]` (:func:`_model_matrix`).
        used = _prepare(data if keep.all() else data.loc[keep, columns], columns, read)
        read = reader_of(used, read)
        binomial_trials = row_weights if family.is_binomial else None
        y, trials = response_arrays(spec.response, used, family, read, binomial_trials)
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
    precision_weights = row_weights if family.is_gaussian else None
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
        weights=precision_weights,
    )


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
