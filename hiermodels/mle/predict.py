"""Linear predictors of a ``MixedFit`` for new data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hiermodels.design.design import fixed_matrix_for, level_codes_for, random_matrix_for

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit

__all__ = ["predict_linear"]


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
        for block, modes in zip(fit.layout.blocks, fit.conditional_modes, strict=True):
            idx, labels = level_codes_for(block, newdata)
            unseen = idx < 0
            if unseen.any() and not allow_new_levels:
                shown = sorted({label for label, i in zip(labels, idx, strict=True) if i < 0})
                raise ValueError(
                    f"newdata has level(s) of {block.group!r} not in the fit: "
                    f"{', '.join(shown[:10])}; pass allow_new_levels=True to predict "
                    "them at the population value"
                )
            terms = random_matrix_for(block, newdata)
            values = np.where(unseen[:, None], 0.0, modes[np.maximum(idx, 0)])
            eta = eta + np.sum(terms * values, axis=1)
    return pd.Series(eta, index=newdata.index, name="eta")
