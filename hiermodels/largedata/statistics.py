"""The passes over a Dask DataFrame: frozen encoding, per-cell statistics, tree reduction.

See :mod:`hiermodels.largedata` for the plan. A Gaussian model's cells are
the combinations of grouping levels; their moment matrices become root rows
(:func:`~hiermodels.design.compressed.root_rows`). A binomial or Poisson
model's cells are the combinations of every column the model reads; they
become an ordinary design of aggregated rows, whose log-likelihood differs
from the rows' by a constant that the pass sums as well.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as ptypes
from scipy.special import gammaln

from hiermodels.design._checks import (
    _check_identifiable,
    _check_repeated_terms,
)
from hiermodels.design._columns import (
    ColumnReader,
    formula_names,
    plural,
    python_names,
    resolve_columns,
    spec_columns,
)
from hiermodels.design._grouping import group_codes, sorted_labels
from hiermodels.design._matrices import _prepare, _term_matrix, full_rank_columns
from hiermodels.design._response import response_arrays
from hiermodels.design.compressed import CompressedRows, root_rows
from hiermodels.design.design import Design, RandomBlock, build_design, check_term_names
from hiermodels.design.families import Family
from hiermodels.design.formula import FormulaSpec, parse_formula
from hiermodels.errors import ColumnProblem, DesignError

__all__ = ["dask_design", "is_dask_frame"]

#: Rows of the first partition the encoding and the moments' shifts are learned from.
PROTOTYPE_ROWS = 1000

#: Partition tables summed per task of the tree reduction.
FAN_IN = 8

#: Families fitted from aggregated cells of identical rows.
AGGREGATED_FAMILIES = ("bernoulli", "binomial", "poisson")

#: Column names the aggregated GLMM frame adds (not valid Python names of user columns).
_SUCCESSES, _FAILURES, _COUNT, _EXPOSURE = ".successes", ".failures", ".count", ".log_exposure"


def is_dask_frame(data: object) -> bool:
    """Whether ``data`` is a ``dask.dataframe.DataFrame`` (without importing Dask)."""
    module = type(data).__module__
    return module.startswith("dask") and hasattr(data, "npartitions") and hasattr(data, "dtypes")


def _dask() -> Any:
    try:
        import dask
        import dask.dataframe
    except ImportError:  # pragma: no cover - the extra is installed with the tests
        raise ImportError(
            "fits from Dask DataFrames need dask: pip install 'hiermodels[dask]'"
        ) from None
    return dask


@dataclass(frozen=True, eq=False)
class Encoding:
    """Everything a partition needs to compute its cells' statistics, frozen.

    Attributes
    ----------
    spec : FormulaSpec
    family : Family
    columns : tuple of str
        The data columns the model reads (offset and weights included).
    categories : dict of str to pandas.CategoricalDtype
        The levels every non-numeric covariate takes anywhere in the data.
    keys : tuple of str
        The columns whose combinations are the cells.
    fixed_names : tuple of str
        Every fixed-effect column (before the rank check).
    block_names : tuple of tuple of str
        Every random-effect term's columns.
    fixed_spec, block_specs : object
        The formulaic model specs of the fixed part and of every term.
    positions : tuple of numpy.ndarray
        Gaussian: the columns of ``v = [1 …]`` holding ``X`` and each term's covariates.
    width : int
        Gaussian: columns of ``v`` (the response last).
    shift : numpy.ndarray
        Gaussian: the shifts ``s`` the moments are taken about.
    offset, weights : str or None
        Column names.
    missing : {"drop", "raise"}
    """

    spec: FormulaSpec
    family: Family
    columns: tuple[str, ...]
    categories: dict[str, pd.CategoricalDtype]
    keys: tuple[str, ...]
    fixed_names: tuple[str, ...]
    block_names: tuple[tuple[str, ...], ...]
    fixed_spec: Any
    block_specs: tuple[Any, ...]
    positions: tuple[np.ndarray, ...]
    width: int
    shift: np.ndarray
    offset: str | None
    weights: str | None
    missing: str

    @property
    def gaussian(self) -> bool:
        return self.family.is_gaussian

    def cast(self, part: pd.DataFrame) -> pd.DataFrame:
        """The model's columns of ``part``, every categorical covariate on its global levels."""
        part = part[list(self.columns)]
        if not self.categories:
            return part
        part = part.copy()
        for name, dtype in self.categories.items():
            values = part[name]
            if isinstance(values.dtype, pd.CategoricalDtype):
                values = values.astype(object)
            part[name] = pd.Categorical(values, dtype=dtype)
        return part


# ----------------------------------------------------------------- the encoding


def _learn_encoding(
    frame: Any,
    spec: FormulaSpec,
    family: Family,
    offset: str | None,
    weights: str | None,
    missing: str,
) -> Encoding:
    """Learn the categorical levels (one pass over those columns) and the model specs."""
    dask = _dask()
    meta = frame._meta
    try:
        columns = spec_columns(spec, meta.columns)
    except ColumnProblem as problem:
        raise DesignError(str(problem)) from None
    for extra, role in ((offset, "offset"), (weights, "weights")):
        if extra is not None and extra not in columns:
            if extra not in meta.columns:
                raise DesignError(
                    f"the {role} column {extra!r} is not in the data; on a Dask DataFrame "
                    f"the {role} must be a column name"
                )
            columns.append(extra)
    grouping = {f for term in spec.random for f in term.factors}
    read_by_terms = _term_columns(spec, meta.columns)
    textual = [
        c
        for c in columns
        if (c not in grouping or c in read_by_terms) and not _is_numeric(meta[c].dtype)
    ]
    uniques = dask.compute(*(frame[c].dropna().unique() for c in textual)) if textual else ()
    categories = {}
    for name, values in zip(textual, uniques, strict=True):
        values = pd.Series(values)
        if isinstance(meta[name].dtype, pd.CategoricalDtype):
            order = [c for c in meta[name].cat.categories if c in set(values)]
        elif all(isinstance(v, str) for v in values):
            order = sorted_labels([str(v) for v in values])
        else:
            order = sorted(values.tolist())
        categories[name] = pd.CategoricalDtype(order)
    prototype = _prototype(frame, columns, categories)
    read = ColumnReader(prototype)
    where = f"the fixed effects {spec.fixed!r}"
    try:
        X, fixed_names, fixed_spec = _term_matrix(spec.fixed, prototype, columns, where, read)
        terms = [
            _term_matrix(
                t.expr, prototype, columns, f"the random-effect term ({t.expr} | {t.group})", read
            )
            for t in spec.random
        ]
    except ColumnProblem as problem:
        raise DesignError(str(problem)) from None
    for model_spec, rhs in (
        (fixed_spec, spec.fixed),
        *((s, t.expr) for (_, _, s), t in zip(terms, spec.random, strict=True)),
    ):
        state = getattr(model_spec, "transform_state", None)
        if state:
            raise DesignError(
                f"{rhs!r} uses a transform that learns from the rows ({', '.join(state)}); "
                "on a Dask DataFrame compute that column first (for example "
                "frame['x_c'] = frame.x - frame.x.mean()) and use it in the formula"
            )
    positions, width = _moment_columns(X, fixed_names, terms)
    keys = tuple(dict.fromkeys(f for term in spec.random for f in term.factors))
    if not family.is_gaussian:
        response = _response_columns(spec, meta.columns)
        keys = tuple(
            c
            for c in columns
            if c != weights and (c not in response or c in read_by_terms or c in grouping)
        )
    encoding = Encoding(
        spec=spec,
        family=family,
        columns=tuple(columns),
        categories=categories,
        keys=keys,
        fixed_names=fixed_names,
        block_names=tuple(names for _, names, _ in terms),
        fixed_spec=fixed_spec,
        block_specs=tuple(s for _, _, s in terms),
        positions=positions,
        width=width,
        shift=np.zeros(width),
        offset=offset,
        weights=weights,
        missing=missing,
    )
    if not family.is_gaussian:
        return encoding
    # the first rows' means: near enough the columns' means to keep the moments'
    # digits (a shift within a few SDs of the mean loses none)
    return replace(encoding, shift=_column_means(prototype, encoding))


def _term_columns(spec: FormulaSpec, available: pd.Index) -> set[str]:
    """The columns the fixed part and the random-effect terms read."""
    used: set[str] = set()
    for expr in (spec.fixed, *(t.expr for t in spec.random)):
        names, called = formula_names(expr)
        used.update(resolve_columns(names, called, available, "the formula"))
    return used


def _response_columns(spec: FormulaSpec, available: pd.Index) -> set[str]:
    """The columns the response reads."""
    response = spec.response
    exprs = [response.successes, response.failures] if response.is_cbind else [response.expr]
    used: set[str] = set()
    for expr in exprs:
        names, called = python_names(str(expr))
        used.update(resolve_columns(names, called, available, "the response"))
    return used


def _is_numeric(dtype: object) -> bool:
    return (ptypes.is_numeric_dtype(dtype) or ptypes.is_bool_dtype(dtype)) and not isinstance(
        dtype, pd.CategoricalDtype
    )


def _prototype(
    frame: Any, columns: Sequence[str], categories: dict[str, pd.CategoricalDtype]
) -> pd.DataFrame:
    """A few rows of the model's columns, non-numeric covariates on their global levels."""
    with warnings.catch_warnings():
        # a first partition shorter than the rows asked for is fine
        warnings.filterwarnings("ignore", "Insufficient elements", UserWarning)
        head = frame[list(columns)].head(PROTOTYPE_ROWS, npartitions=1, compute=True).dropna()
    if head.empty:
        raise DesignError(
            "the first partition has no complete rows of the model's columns; the encoding "
            "is learned from them (repartition or drop the rows with missing values)"
        )
    head = head.reset_index(drop=True)
    for name, dtype in categories.items():
        head[name] = pd.Categorical(head[name].astype(object), dtype=dtype)
    return head


def _moment_columns(
    X: np.ndarray,
    fixed_names: Sequence[str],
    terms: Sequence[tuple[np.ndarray, tuple[str, ...], Any]],
) -> tuple[tuple[np.ndarray, ...], int]:
    """Where ``X`` and every term's covariates sit in ``v = [1, …, y]``.

    A column of ones is the constant; a term's column equal by name and value
    to a fixed-effect column shares it; anything else gets a column of its own.
    """
    named: dict[str, tuple[int, np.ndarray]] = {}
    width = 1
    fixed = []
    for j, name in enumerate(fixed_names):
        column = X[:, j]
        if np.all(column == 1.0):
            fixed.append(0)
            named[name] = (0, column)
            continue
        named[name] = (width, column)
        fixed.append(width)
        width += 1
    positions = [np.array(fixed, dtype=np.int64)]
    for Z, names, _ in terms:
        where = []
        for j, name in enumerate(names):
            column = Z[:, j]
            if np.all(column == 1.0):
                where.append(0)
            elif name in named and np.array_equal(named[name][1], column):
                where.append(named[name][0])
            else:
                named[f"{name}\0{len(positions)}"] = (width, column)
                where.append(width)
                width += 1
        positions.append(np.array(where, dtype=np.int64))
    return tuple(positions), width + 1


# -------------------------------------------------------------- one partition


@dataclass(eq=False)
class PartitionStatistics:
    """One partition's (or several, summed) cell table and totals."""

    cells: pd.DataFrame
    rows: int = 0
    missing: int = 0
    zero_weight: int = 0
    log_weight_sum: float = 0.0
    loglik_constant: float = 0.0
    response_min: float = math.inf
    response_max: float = -math.inf


def _usable_rows(part: pd.DataFrame, encoding: Encoding) -> tuple[pd.DataFrame, int, int]:
    """The rows without missing values (and, with weights, of positive weight)."""
    bad = part.isna().to_numpy().any(axis=1)
    n_missing = int(bad.sum())
    if n_missing and encoding.missing == "raise":
        raise DesignError(
            f"{plural(n_missing, 'row')} of a partition have missing values in columns used "
            "by the model; remove them or pass missing='drop'"
        )
    zero = 0
    if encoding.weights is not None:
        w = part[encoding.weights].to_numpy(dtype=np.float64, na_value=np.nan)
        wrong = ~bad & ~(np.isfinite(w) & (w >= 0.0))
        if wrong.any():
            raise DesignError(
                f"weights {encoding.weights!r} must be finite and non-negative; "
                f"{plural(int(wrong.sum()), 'row')} of a partition are not"
            )
        nought = ~bad & (w == 0.0)
        zero = int(nought.sum())
        bad |= nought
    if bad.any():
        part = part.loc[~bad]
    return part, n_missing, zero


def partition_statistics(part: pd.DataFrame, encoding: Encoding) -> PartitionStatistics:
    """The cell table and totals of one partition (a pandas DataFrame)."""
    part = encoding.cast(part)
    part, n_missing, n_zero = _usable_rows(part, encoding)
    if part.empty:
        empty = pd.DataFrame(columns=list(encoding.keys))
        return PartitionStatistics(empty, 0, n_missing, n_zero)
    part = part.reset_index(drop=True)
    try:
        if encoding.gaussian:
            stats = _gaussian_cells(part, encoding)
        else:
            stats = _aggregated_cells(part, encoding)
    except ColumnProblem as problem:
        raise DesignError(str(problem)) from None
    stats.missing, stats.zero_weight = n_missing, n_zero
    return stats


def _matrices(part: pd.DataFrame, encoding: Encoding) -> tuple[np.ndarray, list[np.ndarray]]:
    read = ColumnReader(part)
    spec = encoding.spec
    columns = list(encoding.columns)
    X, names, _ = _term_matrix(spec.fixed, part, columns, "the fixed effects", read)
    if names != encoding.fixed_names:  # pragma: no cover - the cast makes them agree
        raise DesignError("a partition encodes the fixed effects differently from the first")
    covariates = []
    for term, expected in zip(spec.random, encoding.block_names, strict=True):
        Z, names, _ = _term_matrix(term.expr, part, columns, "a random-effect term", read)
        if names != expected:  # pragma: no cover
            raise DesignError("a partition encodes a random-effect term differently")
        covariates.append(Z)
    return X, covariates


def _moment_columns_of(part: pd.DataFrame, encoding: Encoding) -> np.ndarray:
    """``v = [1, X, Z covariates, y − offset]`` of a partition's usable rows (unshifted)."""
    X, covariates = _matrices(part, encoding)
    y, _ = response_arrays(encoding.spec.response, part, encoding.family)
    if encoding.offset is not None:
        y = y - part[encoding.offset].to_numpy(dtype=np.float64)
    v = np.empty((len(part), encoding.width), order="F")  # columns read one by one
    v[:, 0] = 1.0
    v[:, encoding.positions[0]] = X
    for where, Z in zip(encoding.positions[1:], covariates, strict=True):
        v[:, where] = Z
    v[:, -1] = y
    return v


def _gaussian_cells(part: pd.DataFrame, encoding: Encoding) -> PartitionStatistics:
    """Per cell of grouping levels: ``Σ w (v − s)(v − s)ᵀ`` (upper triangle) and the rows."""
    v = _moment_columns_of(part, encoding)
    response_min, response_max = float(v[:, -1].min()), float(v[:, -1].max())
    n, m = v.shape
    v[:, 1:] -= encoding.shift[None, 1:]
    weights = None
    log_weights = 0.0
    if encoding.weights is not None:
        weights = part[encoding.weights].to_numpy(dtype=np.float64)
        log_weights = float(np.sum(np.log(weights)))
    codes, cells_index = _cell_codes(part, encoding.keys)
    n_cells = len(cells_index)
    upper_a, upper_b = np.triu_indices(m)
    sums = np.empty((n_cells, upper_a.size + 1))
    # one weighted bincount per entry of the upper triangle: a single pass each,
    # without an (n, m²) table of products
    for k, (a, b) in enumerate(zip(upper_a.tolist(), upper_b.tolist(), strict=True)):
        product = v[:, a] * v[:, b] if a else v[:, b].copy()
        if weights is not None:
            product *= weights
        sums[:, k] = np.bincount(codes, weights=product, minlength=n_cells)
    sums[:, -1] = np.bincount(codes, minlength=n_cells)
    columns = [*(f"m{k}" for k in range(upper_a.size)), ".rows"]
    occupied = sums[:, -1] > 0
    cells = pd.DataFrame(sums[occupied], index=cells_index[occupied], columns=columns)
    return PartitionStatistics(
        cells,
        rows=n,
        log_weight_sum=log_weights,
        response_min=response_min,
        response_max=response_max,
    )


def _codes_index_cells(low: int, high: int, count: int) -> bool:
    """Whether integer keys from ``low`` to ``high`` index a dense array of cells directly.

    They must be non-negative, and the array no longer than a few times the
    ``count`` of rows (or table entries) that fill it.
    """
    return low >= 0 and high < 4 * count + 1024


def _cell_codes(part: pd.DataFrame, keys: Sequence[str]) -> tuple[np.ndarray, pd.Index]:
    """Every row's cell (int64) and the cells' key values (some cells may hold no row).

    One integer key of small non-negative values indexes the cells itself
    (no hashing: the cells are its values up to the largest); otherwise the
    keys are factorised and cells are the combinations in order of appearance.
    """
    if len(keys) == 1:
        values = part[keys[0]]
        if ptypes.is_integer_dtype(values.dtype) and not isinstance(
            values.dtype, pd.CategoricalDtype
        ):
            array = values.to_numpy()
            low, high = int(array.min()), int(array.max())
            if _codes_index_cells(low, high, len(array)):
                return array.astype(np.int64, copy=False), pd.Index(
                    np.arange(high + 1, dtype=array.dtype), name=keys[0]
                )
        codes, uniques = pd.factorize(part[keys[0]], sort=False)
        return codes.astype(np.int64, copy=False), pd.Index(uniques, name=keys[0])
    coded = [pd.factorize(part[key], sort=False) for key in keys]
    combined = np.zeros(len(part), dtype=np.int64)
    for codes, uniques in coded:
        combined *= max(len(uniques), 1)
        combined += codes
    cells, first = np.unique(combined, return_index=True)
    codes = np.searchsorted(cells, combined)
    arrays = [uniques.take(c[first]) for c, uniques in coded]
    return codes.astype(np.int64), pd.MultiIndex.from_arrays(arrays, names=list(keys))


def _aggregated_cells(part: pd.DataFrame, encoding: Encoding) -> PartitionStatistics:
    """Per cell of identical model columns: successes and failures, or counts and exposure."""
    family = encoding.family
    trials = None
    if encoding.weights is not None:
        trials = part[encoding.weights].to_numpy(dtype=np.float64)
    y, n_trials = response_arrays(encoding.spec.response, part, family, trials=trials)
    table = part[list(encoding.keys)].copy()
    table[".rows"] = 1
    if family.is_binomial:
        size = np.ones_like(y) if n_trials is None else n_trials
        table[_SUCCESSES] = y
        table[_FAILURES] = size - y
        row_constant = gammaln(size + 1.0) - gammaln(y + 1.0) - gammaln(size - y + 1.0)
    else:
        offset = (
            np.zeros(len(part))
            if encoding.offset is None
            else part[encoding.offset].to_numpy(dtype=np.float64)
        )
        table = table.drop(columns=[encoding.offset]) if encoding.offset is not None else table
        table[_COUNT] = y
        table[_EXPOSURE] = np.exp(offset)
        row_constant = y * offset - gammaln(y + 1.0)
    keys = [k for k in encoding.keys if k in table.columns]
    cells = table.groupby(keys, sort=False, observed=True, dropna=False).sum()
    return PartitionStatistics(cells, rows=len(part), loglik_constant=float(np.sum(row_constant)))


def _summed_by_small_codes(tables: Sequence[pd.DataFrame]) -> pd.DataFrame | None:
    """The tables' sum when one integer key of small non-negative values indexes them all.

    Such keys index a dense array directly (:func:`_codes_index_cells`, as in
    :func:`_cell_codes`), which sums the tables without hashing their keys;
    ``None`` when the keys are not of that kind.
    """
    indexes = [table.index for table in tables]
    if any(isinstance(index, pd.MultiIndex) for index in indexes):
        return None
    if not all(ptypes.is_integer_dtype(index.dtype) for index in indexes):
        return None
    low = min(int(index.min()) for index in indexes)
    high = max(int(index.max()) for index in indexes)
    if not _codes_index_cells(low, high, sum(len(index) for index in indexes)):
        return None
    first = tables[0]
    total = np.zeros((high + 1, first.shape[1]))
    for table in tables:
        # a table's keys are unique, so one indexed addition per table suffices
        total[table.index.to_numpy()] += table.to_numpy(dtype=np.float64)
    occupied = np.flatnonzero(total[:, list(first.columns).index(".rows")] > 0)
    index = pd.Index(occupied.astype(indexes[0].dtype), name=indexes[0].name)
    return pd.DataFrame(total[occupied], index=index, columns=first.columns)


def combine(*parts: PartitionStatistics) -> PartitionStatistics:
    """The sum of several partitions' statistics (a node of the tree reduction)."""
    tables = [p.cells for p in parts if len(p.cells)]
    if not tables:
        cells = parts[0].cells
    elif len(tables) == 1:
        cells = tables[0]
    else:
        cells = _summed_by_small_codes(tables)
        if cells is None:
            joined = pd.concat(tables)
            cells = joined.groupby(level=list(range(joined.index.nlevels)), sort=False).sum()
    return PartitionStatistics(
        cells,
        rows=sum(p.rows for p in parts),
        missing=sum(p.missing for p in parts),
        zero_weight=sum(p.zero_weight for p in parts),
        log_weight_sum=math.fsum(p.log_weight_sum for p in parts),
        loglik_constant=math.fsum(p.loglik_constant for p in parts),
        response_min=min(p.response_min for p in parts),
        response_max=max(p.response_max for p in parts),
    )


# ------------------------------------------------------------------- the pass


def _scheduler_name() -> str:
    try:
        from distributed import default_client

        client = default_client()
    except (ImportError, ValueError):
        import dask

        return str(dask.config.get("scheduler", None) or "threads")
    return f"distributed ({client.dashboard_link})"


def _reduce(frame: Any, encoding: Encoding, progress: bool) -> PartitionStatistics:
    """Every partition's statistics, summed in a tree of fan-in :data:`FAN_IN`."""
    dask = _dask()
    from dask import delayed

    parts = frame[list(encoding.columns)].to_delayed(optimize_graph=True)
    encoded = delayed(encoding, traverse=False)
    level = [delayed(partition_statistics)(p, encoded) for p in parts]
    while len(level) > 1:
        level = [delayed(combine)(*level[i : i + FAN_IN]) for i in range(0, len(level), FAN_IN)]
    scheduler = _scheduler_name()
    if progress and not scheduler.startswith("distributed"):
        from dask.diagnostics import ProgressBar

        with ProgressBar(minimum=5.0):
            (result,) = dask.compute(level[0])
        return result
    if progress:
        # a cluster shows its tasks on its dashboard
        print(
            f"hiermodels: summing {len(parts)} partitions on {scheduler}",
            file=sys.stderr,
        )
    (result,) = dask.compute(level[0])
    return result


def _column_means(part: pd.DataFrame, encoding: Encoding) -> np.ndarray:
    """Means of ``v``'s columns over the usable rows of ``part`` (0 for the constant)."""
    part, _, _ = _usable_rows(encoding.cast(part), encoding)
    if part.empty:
        return np.zeros(encoding.width)
    part = part.reset_index(drop=True)
    try:
        shift = _moment_columns_of(part, encoding).mean(axis=0)
    except ColumnProblem as problem:
        raise DesignError(str(problem)) from None
    shift[0] = 0.0
    return shift


def read_parquet(
    path: Any,
    spec: FormulaSpec,
    options: dict[str, Any],
    read_options: Any = None,
) -> Any:
    """``dask.dataframe.read_parquet`` of the columns the model reads."""
    _dask()
    import dask.dataframe as dd

    frame = dd.read_parquet(path, **dict(read_options or {}))
    try:
        columns = spec_columns(spec, frame.columns)
    except ColumnProblem as problem:
        raise DesignError(str(problem)) from None
    for role in ("offset", "weights"):
        extra = options.get(role)
        if isinstance(extra, str) and extra not in columns and extra in frame.columns:
            columns.append(extra)
    return frame[columns]


def dask_design(
    spec: FormulaSpec,
    frame: Any,
    family: Family,
    *,
    missing: str = "drop",
    offset: Any = None,
    weights: Any = None,
    progress: bool = True,
) -> Design:
    """The design of a model on a Dask DataFrame, from its cells' summed statistics.

    Parameters
    ----------
    spec : FormulaSpec
    frame : dask.dataframe.DataFrame
    family : Family
        Gaussian (any structure: root rows of cell moments) or binomial,
        Bernoulli and Poisson (aggregated cells).
    missing : {"drop", "raise"}
    offset, weights : str, optional
        Column names.
    progress : bool
        Show Dask's progress bar on passes longer than five seconds (local
        schedulers; a distributed cluster's dashboard shows its own).

    Returns
    -------
    Design
        With :attr:`~hiermodels.design.design.Design.compressed` set.

    Raises
    ------
    DesignError
        For a family the statistics cannot serve, offsets or weights given as
        arrays, transforms that learn from the rows, and every problem a
        design of rows reports.
    """
    if missing not in ("drop", "raise"):
        raise ValueError(f"missing must be 'drop' or 'raise', got {missing!r}")
    if not (family.is_gaussian or family.name in AGGREGATED_FAMILIES):
        raise DesignError(
            f"a {family.name} model needs its rows; from a Dask DataFrame hiermodels fits "
            "gaussian models (any random-effect structure, from summed cross products) and "
            "binomial, bernoulli and Poisson GLMMs (from aggregated identical rows) — "
            "compute() a pandas DataFrame to fit this family"
        )
    for value, role in ((offset, "offset"), (weights, "weights")):
        if value is not None and not isinstance(value, str):
            raise DesignError(
                f"on a Dask DataFrame the {role} must be a column name, not {type(value).__name__}"
            )
    if family.name == "poisson" and weights is not None:
        raise DesignError("prior weights are not available for the poisson family")
    start = time.perf_counter()
    encoding = _learn_encoding(frame, spec, family, offset, weights, missing)
    statistics = _reduce(frame, encoding, progress)
    seconds = time.perf_counter() - start
    if statistics.rows == 0:
        raise DesignError("no rows left: every row has missing values in the model's columns")
    if statistics.missing:
        warnings.warn(
            f"dropped {plural(statistics.missing, 'row')} of "
            f"{statistics.rows + statistics.missing + statistics.zero_weight} with missing "
            "values in the model's columns",
            UserWarning,
            stacklevel=3,
        )
    if statistics.zero_weight:
        warnings.warn(
            f"dropped {plural(statistics.zero_weight, 'row')} with weight zero",
            UserWarning,
            stacklevel=3,
        )
    describe = {
        "n_partitions": int(frame.npartitions),
        "seconds": seconds,
        "source": frame,
        "scheduler": _scheduler_name().split(" (")[0],
    }
    if family.is_gaussian:
        return _root_design(encoding, statistics, describe)
    return _aggregated_design(encoding, statistics, describe)


def _key_frame(cells: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """The cells' key columns as a frame (unused categories removed, as the rows' design)."""
    frame = cells.index.to_frame(index=False)
    frame.columns = list(keys)
    return _prepare(frame)


def _root_design(
    encoding: Encoding, statistics: PartitionStatistics, describe: dict[str, Any]
) -> Design:
    spec, family = encoding.spec, encoding.family
    cells = statistics.cells
    if statistics.response_min == statistics.response_max:
        after = " after subtracting the offset" if encoding.offset is not None else ""
        raise DesignError(
            f"the response {spec.response.expr!r} is constant in all {statistics.rows} rows"
            f"{after}; a Gaussian model has no residual variance to estimate — check the "
            "response column"
        )
    m = encoding.width
    upper_a, upper_b = np.triu_indices(m)
    packed = cells[[f"m{k}" for k in range(upper_a.size)]].to_numpy(dtype=np.float64)
    moments = np.empty((len(cells), m, m))
    moments[:, upper_a, upper_b] = packed
    moments[:, upper_b, upper_a] = packed
    # the response keeps its shift: root rows of y − c carry its spread exactly
    covariate_shift = encoding.shift.copy()
    covariate_shift[-1] = 0.0
    rows, cell_of = root_rows(moments, covariate_shift)
    key_frame = _key_frame(cells, encoding.keys)
    rows_per_cell = cells[".rows"].to_numpy(dtype=np.int64)
    X_full = rows[:, encoding.positions[0]]
    keep, dropped = full_rank_columns(X_full, encoding.fixed_names)
    blocks = []
    counts: dict[str, np.ndarray] = {}
    try:
        for term, where, names, model_spec in zip(
            spec.random,
            encoding.positions[1:],
            encoding.block_names,
            encoding.block_specs,
            strict=True,
        ):
            codes, levels, parts = group_codes(key_frame, term.factors)
            counts[term.group] = np.bincount(codes, weights=rows_per_cell, minlength=len(levels))
            blocks.append(
                RandomBlock(
                    group=term.group,
                    factors=term.factors,
                    terms=names,
                    levels=levels,
                    codes=codes[cell_of],
                    X=np.ascontiguousarray(rows[:, where]),
                    expr=term.expr,
                    model_spec=model_spec,
                    level_parts=parts,
                )
            )
    except ColumnProblem as problem:
        raise DesignError(str(problem)) from None
    design_blocks = tuple(blocks)
    nobs = statistics.rows
    _check_identifiable(design_blocks, nobs, family)
    _check_repeated_terms(design_blocks)
    fixed_names = tuple(encoding.fixed_names[j] for j in keep)
    check_term_names(fixed_names, design_blocks)
    compressed = CompressedRows(
        kind="roots",
        nobs=nobs,
        level_counts={g: c.astype(np.int64) for g, c in counts.items()},
        ones=np.ascontiguousarray(rows[:, 0]),
        log_weight_sum=statistics.log_weight_sum,
        weighted=encoding.weights is not None,
        response_shift=float(encoding.shift[-1]),
        n_cells=len(cells),
        statistics_bytes=int(cells.memory_usage(deep=True).sum()),
        **describe,
    )
    return Design(
        spec=spec,
        family=family,
        y=np.ascontiguousarray(rows[:, -1]),
        trials=None,
        X=np.ascontiguousarray(X_full[:, keep]),
        fixed_names=fixed_names,
        blocks=design_blocks,
        offset=None,
        rows=pd.RangeIndex(rows.shape[0]),
        fixed_model_spec=encoding.fixed_spec,
        dropped_columns=dropped,
        weights=None,
        compressed=compressed,
    )


def _aggregated_design(
    encoding: Encoding, statistics: PartitionStatistics, describe: dict[str, Any]
) -> Design:
    """The design of the aggregated cells, an ordinary design of rows with their counts."""
    spec, family = encoding.spec, encoding.family
    keys = [k for k in encoding.keys if k in statistics.cells.index.names]
    cells = statistics.cells.reset_index()
    cells.columns = [*keys, *cells.columns[len(keys) :]]
    for name, dtype in encoding.categories.items():
        if name in cells.columns:
            cells[name] = pd.Categorical(cells[name], dtype=dtype)
    if family.is_binomial:
        response = parse_formula(f"cbind(`{_SUCCESSES}`, `{_FAILURES}`) ~ 1").response
        aggregated_family = Family("binomial", family.link)
        aggregated_offset = encoding.offset
        constant_cells = float(
            np.sum(
                gammaln(cells[_SUCCESSES] + cells[_FAILURES] + 1.0)
                - gammaln(cells[_SUCCESSES] + 1.0)
                - gammaln(cells[_FAILURES] + 1.0)
            )
        )
    else:
        response = parse_formula(f"`{_COUNT}` ~ 1").response
        aggregated_family = family
        cells[_EXPOSURE] = np.log(cells[_EXPOSURE])
        aggregated_offset = _EXPOSURE
        constant_cells = float(
            np.sum(cells[_COUNT] * cells[_EXPOSURE] - gammaln(cells[_COUNT] + 1.0))
        )
    design = build_design(
        replace(spec, response=response), cells, aggregated_family, offset=aggregated_offset
    )
    counts = {
        b.group: np.bincount(b.codes, weights=cells[".rows"], minlength=b.n_levels).astype(np.int64)
        for b in design.blocks
    }
    compressed = CompressedRows(
        kind="cells",
        nobs=statistics.rows,
        level_counts=counts,
        loglik_constant=statistics.loglik_constant - constant_cells,
        n_cells=len(cells),
        statistics_bytes=int(cells.memory_usage(deep=True).sum()),
        **describe,
    )
    return replace(design, spec=spec, compressed=compressed)
