"""Linear predictors of a ``MixedFit`` for new data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from formulaic import model_matrix

from hiermodels.spec._grouping import value_label
from hiermodels.spec.design import DesignError, fixed_matrix_for

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit

__all__ = ["predict_linear", "level_indices"]


def level_indices(
    levels: tuple[str, ...], factors: tuple[str, ...], newdata: pd.DataFrame
) -> np.ndarray:
    """Index of every new row's grouping level in ``levels``; −1 for unseen levels.

    Parameters
    ----------
    levels : tuple of str
        The grouping factor's level labels from the fit.
    factors : tuple of str
        The columns forming the grouping factor.
    newdata : pandas.DataFrame
        New rows.

    Returns
    -------
    numpy.ndarray
        int64 indices.
    """
    missing = [f for f in factors if f not in newdata.columns]
    if missing:
        raise DesignError(f"newdata lacks the grouping column(s): {', '.join(missing)}")
    labels = [
        ":".join(value_label(v) for v in row)
        for row in newdata[list(factors)].itertuples(index=False, name=None)
    ]
    position = {label: i for i, label in enumerate(levels)}
    return np.fromiter((position.get(lb, -1) for lb in labels), dtype=np.int64, count=len(labels))


def predict_linear(
    fit: MixedFit,
    newdata: pd.DataFrame | None,
    *,
    allow_new_levels: bool = False,
    include_random: bool = True,
    offset: np.ndarray | None = None,
) -> pd.Series:
    """Linear predictor ``Xβ (+ Zb) (+ offset)`` for new data.

    Parameters
    ----------
    fit : MixedFit
        The fit.
    newdata : pandas.DataFrame or None
        New rows; ``None`` gives the fitted linear predictor.
    allow_new_levels : bool
        Give unseen grouping levels random effects of 0 instead of raising.
    include_random : bool
        Whether to add the conditional modes.
    offset : numpy.ndarray, optional
        Offset for the new rows (required if the model has an offset).

    Returns
    -------
    pandas.Series
    """
    design = fit.design
    if newdata is None:
        if include_random:
            return pd.Series(fit.linear_predictor, index=design.rows, name="eta")
        eta = design.X @ fit.beta
        if design.offset is not None:
            eta = eta + design.offset
        return pd.Series(eta, index=design.rows, name="eta")
    eta = fixed_matrix_for(design, newdata) @ fit.beta
    if design.offset is not None:
        if offset is None:
            raise ValueError("the model has an offset: pass offset= with one value per new row")
        offset = np.asarray(offset, dtype=float)
        if offset.shape != (len(newdata),):
            raise ValueError(f"offset has {offset.size} values for {len(newdata)} rows")
        eta = eta + offset
    if include_random:
        expr_of = {id(b): t.expr for b, t in zip(design.blocks, design.spec.random, strict=True)}
        for block, modes in zip(fit.layout.blocks, fit.conditional_modes, strict=True):
            idx = level_indices(block.levels, block.factors, newdata)
            unseen = idx < 0
            if unseen.any() and not allow_new_levels:
                labels = sorted(
                    {
                        ":".join(value_label(v) for v in row)
                        for row in newdata.loc[unseen, list(block.factors)].itertuples(
                            index=False, name=None
                        )
                    }
                )
                raise ValueError(
                    f"newdata has level(s) of {block.group!r} not in the fit: "
                    f"{', '.join(labels[:10])}; pass allow_new_levels=True to predict "
                    "them at the population value"
                )
            terms = model_matrix(expr_of[id(block)], newdata, na_action="raise")
            terms = terms.reindex(columns=list(block.terms), fill_value=0.0)
            values = np.where(unseen[:, None], 0.0, modes[np.maximum(idx, 0)])
            eta = eta + np.sum(np.asarray(terms, dtype=float) * values, axis=1)
    return pd.Series(eta, index=newdata.index, name="eta")
