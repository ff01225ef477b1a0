"""Row-level outputs of a fit from summed statistics, as Dask collections.

A design of root rows or aggregated cells has no rows of its own to put
fitted values or residuals on; they are computed, partition by partition,
on the Dask DataFrame the statistics came from (or on new data) with the
fit's own :meth:`~hiermodels.mle.results.MixedFit.predict`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hiermodels.design._columns import ColumnReader
from hiermodels.design._response import response_arrays
from hiermodels.errors import ColumnProblem, DesignError

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit

__all__ = ["fitted_values", "predict_partitions", "response_residuals", "source_rows"]


def source_rows(fit: MixedFit) -> Any:
    """The rows of the Dask DataFrame the fit used (those without missing values)."""
    return _source(fit).map_partitions(_complete_rows, fit)


def _source(fit: MixedFit) -> Any:
    compressed = fit.design.compressed
    if compressed is None or compressed.source is None:
        raise ValueError(
            "this fit no longer has the Dask DataFrame it was fitted to (it was pickled); "
            "pass the data to predict(newdata)"
        )
    return compressed.source


def _complete_rows(part: pd.DataFrame, fit: MixedFit) -> pd.DataFrame:
    """The rows of a partition the fit used: those without missing values in its columns."""
    from hiermodels.design._columns import spec_columns

    columns = spec_columns(fit.design.spec, part.columns)
    return part.loc[~part[columns].isna().to_numpy().any(axis=1)]


def predict_partitions(fit: MixedFit, frame: Any, options: dict[str, Any]) -> Any:
    """``fit.predict(part, **options)`` on every partition of a Dask DataFrame.

    Returns
    -------
    dask.dataframe.Series or dask.dataframe.DataFrame
        Predictions indexed like ``frame``'s rows (a table with
        ``interval``).
    """
    if options.get("interval") is None:
        name = "predicted" if options.get("scale", "response") == "response" else None
        meta: Any = pd.Series(dtype=np.float64, name=name)
    else:
        meta = pd.DataFrame({c: pd.Series(dtype=np.float64) for c in _INTERVAL_COLUMNS})
    return frame.map_partitions(_predict_part, fit, options, meta=meta)


_INTERVAL_COLUMNS = ("estimate", "se", "lower", "upper")


def _predict_part(part: pd.DataFrame, fit: MixedFit, options: dict[str, Any]) -> Any:
    if part.empty:
        if options.get("interval") is None:
            return pd.Series(dtype=np.float64, index=part.index)
        return pd.DataFrame({c: pd.Series(dtype=np.float64) for c in _INTERVAL_COLUMNS})
    return fit.predict(part, **options)


def fitted_values(fit: MixedFit) -> Any:
    """Conditional fitted values of every row the fit used (a Dask Series)."""
    frame = _source(fit)
    return frame.map_partitions(
        _fitted_part, fit, meta=pd.Series(dtype=np.float64, name="fitted")
    )


def _fitted_part(part: pd.DataFrame, fit: MixedFit) -> pd.Series:
    rows = _complete_rows(part, fit)
    if rows.empty:
        return pd.Series(dtype=np.float64, name="fitted", index=rows.index)
    return fit.predict(rows).rename("fitted")


def response_residuals(fit: MixedFit) -> Any:
    """Response residuals ``y − fitted`` of every row the fit used (a Dask Series)."""
    frame = _source(fit)
    return frame.map_partitions(
        _residual_part, fit, meta=pd.Series(dtype=np.float64, name="residual")
    )


def _residual_part(part: pd.DataFrame, fit: MixedFit) -> pd.Series:
    rows = _complete_rows(part, fit)
    if rows.empty:
        return pd.Series(dtype=np.float64, name="residual", index=rows.index)
    design = fit.design
    try:
        y, trials = response_arrays(design.spec.response, rows, design.family, ColumnReader(rows))
    except ColumnProblem as problem:
        raise DesignError(str(problem)) from None
    if trials is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(trials > 0, y / trials, 0.0)
    return pd.Series(y - fit.predict(rows).to_numpy(), index=rows.index, name="residual")
