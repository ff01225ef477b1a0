"""Prediction arrays for new rows, shared by ``MixedFit`` and ``BayesFit``.

:func:`new_rows` rebuilds, for new data, the fixed-effects matrix, each
random-effect block's level codes and term columns, and the offset, with
the encodings learned from the fitted data; :func:`predict_linear` turns
them into a ``MixedFit``'s linear predictor, and
:func:`hiermodels.bayes.draws.prediction_data` into the arrays the
posterior draws are applied to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from hiermodels.design.design import Design, RandomBlock
from hiermodels.design.newdata import fixed_matrix_for, level_codes_for, random_matrix_for

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit

__all__ = ["NEW_LEVELS", "NewRows", "check_new_levels", "new_rows", "predict_linear"]

#: What a prediction does with a grouping level the fit has not seen.
NEW_LEVELS = ("population", "error")


def check_new_levels(new_levels: str) -> str:
    """``new_levels``, or ``ValueError`` when it is not one of :data:`NEW_LEVELS`."""
    if new_levels not in NEW_LEVELS:
        raise ValueError(f"new_levels must be 'population' or 'error', got {new_levels!r}")
    return new_levels


@dataclass(frozen=True)
class NewRows:
    """The arrays of a fitted design rebuilt for new rows.

    Attributes
    ----------
    X : numpy.ndarray
        ``(n, p)`` fixed-effects matrix.
    codes : tuple of numpy.ndarray
        Per requested block, ``(n,)`` int64 level codes; ``-1`` marks a level
        not in the fit, whose random effect is 0 (the population value).
    Z : tuple of numpy.ndarray
        Per requested block, ``(n, q)`` term columns.
    offset : numpy.ndarray or None
        The new rows' offset (``None`` when the model has none).
    index : pandas.Index
        The new rows' labels.
    """

    X: np.ndarray
    codes: tuple[np.ndarray, ...]
    Z: tuple[np.ndarray, ...]
    offset: np.ndarray | None
    index: pd.Index


def new_rows(
    design: Design,
    newdata: pd.DataFrame,
    blocks: Sequence[RandomBlock],
    *,
    new_levels: Literal["population", "error"] = "population",
    offset: ArrayLike | str | None = None,
) -> NewRows:
    """The prediction arrays of ``design`` for the rows of ``newdata``.

    Parameters
    ----------
    design : Design
        The fitted design: its encodings, transforms and levels are reused.
    newdata : pandas.DataFrame
        The fixed-effect covariates and, for every block in ``blocks``, its
        covariates and grouping column(s).
    blocks : sequence of RandomBlock
        The random-effect blocks to rebuild, in the order wanted (empty for
        population predictions, which then need no grouping columns).
    new_levels : {"population", "error"}
        A grouping level not in the fit gets code ``-1`` (random effect 0),
        or raises ``ValueError`` naming the unseen levels.
    offset : array_like or str, optional
        Required when the model has an offset: one value per new row, or a
        column of ``newdata``.

    Returns
    -------
    NewRows
    """
    check_new_levels(new_levels)
    X = fixed_matrix_for(design, newdata)
    codes, columns = [], []
    for block in blocks:
        block_codes, labels = level_codes_for(block, newdata)
        if new_levels == "error" and np.any(block_codes < 0):
            unseen = sorted({lab for lab, c in zip(labels, block_codes, strict=True) if c < 0})
            shown = ", ".join(unseen[:10]) + (", ..." if len(unseen) > 10 else "")
            raise ValueError(
                f"newdata has {len(unseen)} level(s) of {block.group!r} not in the fit: "
                f"{shown}; use new_levels='population' to predict them at the population "
                "value (random effect 0)"
            )
        codes.append(np.asarray(block_codes, dtype=np.int64))
        columns.append(random_matrix_for(block, newdata))
    values = None
    if design.offset is not None:
        if offset is None:
            raise ValueError(
                "the model has an offset: pass offset= (one value per new row, or a column name)"
            )
        values = np.asarray(newdata[offset] if isinstance(offset, str) else offset, dtype=float)
        if values.shape != (len(newdata),):
            raise ValueError(f"offset has {values.size} values for {len(newdata)} rows")
    return NewRows(X=X, codes=tuple(codes), Z=tuple(columns), offset=values, index=newdata.index)


def predict_linear(
    fit: MixedFit,
    newdata: pd.DataFrame | None,
    *,
    new_levels: Literal["population", "error"] = "population",
    include_random: bool = True,
    offset: ArrayLike | str | None = None,
) -> pd.Series:
    """Linear predictor ``Xβ (+ Zb) (+ offset)`` of a ``MixedFit`` for new data.

    Parameters
    ----------
    fit : MixedFit
        The fit.
    newdata : pandas.DataFrame or None
        New rows; ``None`` gives the fitted linear predictor.
    new_levels : {"population", "error"}
        Give unseen grouping levels random effects of 0, or raise.
    include_random : bool
        Whether to add the conditional modes.
    offset : array_like or str, optional
        Offset for the new rows (required if the model has an offset).

    Returns
    -------
    pandas.Series
    """
    check_new_levels(new_levels)
    design = fit.design
    if newdata is None:
        if include_random:
            return pd.Series(fit.linear_predictor, index=design.rows, name="eta")
        eta = design.X @ fit.beta
        if design.offset is not None:
            eta = eta + design.offset
        return pd.Series(eta, index=design.rows, name="eta")
    blocks = fit.layout.blocks if include_random else ()
    rows = new_rows(design, newdata, blocks, new_levels=new_levels, offset=offset)
    eta = rows.X @ fit.beta
    if rows.offset is not None:
        eta = eta + rows.offset
    modes = fit.conditional_modes if include_random else ()
    for codes, terms, block_modes in zip(rows.codes, rows.Z, modes, strict=True):
        values = np.where(codes[:, None] < 0, 0.0, block_modes[np.maximum(codes, 0)])
        eta = eta + np.sum(terms * values, axis=1)
    return pd.Series(eta, index=rows.index, name="eta")
