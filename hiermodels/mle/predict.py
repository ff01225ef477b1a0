"""Prediction arrays for new rows, shared by ``MixedFit`` and ``BayesFit``.

:func:`new_rows` rebuilds, for new data, the fixed-effects matrix, each
random-effect block's level codes and term columns, and the offset, with
the encodings learned from the fitted data; :func:`predict_linear` turns
them into a ``MixedFit``'s linear predictor, :func:`prediction_intervals`
into its confidence or prediction intervals, and
:func:`hiermodels.bayes.draws.prediction_data` into the arrays the
posterior draws are applied to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import ArrayLike
from scipy.sparse.linalg import splu

from hiermodels.design.design import Design, RandomBlock
from hiermodels.design.families import inverse_link
from hiermodels.design.newdata import fixed_matrix_for, level_codes_for, random_matrix_for
from hiermodels.intervals import check_ci_prob, normal_bounds

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit

__all__ = [
    "INTERVALS",
    "NEW_LEVELS",
    "NewRows",
    "check_new_levels",
    "new_rows",
    "predict_linear",
    "prediction_intervals",
]

#: What a prediction does with a grouping level the fit has not seen.
NEW_LEVELS = ("population", "error")

#: The intervals :func:`prediction_intervals` computes.
INTERVALS = ("confidence", "prediction")

# New rows whose effects' estimation error is computed per solve with the
# fitted system: bounds the dense (random effects × rows) right-hand side.
_ROWS_PER_SOLVE = 512


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
    modes = fit.conditional_modes if include_random else ()
    return pd.Series(_rows_linear_predictor(fit, rows, modes), index=rows.index, name="eta")


def _rows_linear_predictor(fit: MixedFit, rows: NewRows, modes: Sequence[np.ndarray]) -> np.ndarray:
    """``Xβ + offset`` plus, per block of ``modes``, the rows' conditional modes (0 if unseen)."""
    eta = rows.X @ fit.beta
    if rows.offset is not None:
        eta = eta + rows.offset
    for codes, terms, block_modes in zip(rows.codes, rows.Z, modes, strict=True):
        values = np.where(codes[:, None] < 0, 0.0, block_modes[np.maximum(codes, 0)])
        eta = eta + np.sum(terms * values, axis=1)
    return eta


def prediction_intervals(
    fit: MixedFit,
    newdata: pd.DataFrame | None,
    *,
    interval: Literal["confidence", "prediction"],
    ci_prob: float,
    new_levels: Literal["population", "error"] = "population",
    scale: Literal["response", "link"] = "response",
    include_random: bool = True,
    offset: ArrayLike | str | None = None,
) -> pd.DataFrame:
    """Predictions of a ``MixedFit`` with confidence or prediction intervals.

    The intervals are normal on the link scale, ``η̂ ∓ z·se``, and mapped
    through the inverse link (every link is increasing), all conditional on
    the estimated variance parameters θ̂ and σ̂.

    ``"confidence"``: ``se²`` is the variance of the estimation error of
    ``η̂ = xᵀβ̂ + zᵀb̂`` over the fixed effects and the conditional modes
    jointly, lme4's ``predict(se.fit = TRUE)`` (lme4 ≥ 1.1-35):
    ``(x − Dᵀz)ᵀ V (x − Dᵀz) + zᵀ C z``, with ``V`` the fit's
    ``vcov_beta``, ``C = σ² Λ (ΛᵀZᵀWZΛ + I)⁻¹ Λᵀ`` the conditional
    covariance of the effects given β (its diagonal blocks are
    ``conditional_covariances``; the rest couples crossed or nested
    factors) and ``D = Λ (ΛᵀZᵀWZΛ + I)⁻¹ ΛᵀZᵀWX`` how the modes move with
    β; ``W`` is 1 for Gaussian models and the working weights at the fit for
    GLMMs. A level the fit has not seen, and every level with
    ``include_random=False``, has effect 0 and contributes no estimation
    error. For Gaussian models ``V`` is lme4's too; for GLMMs it is the
    fit's (the Hessian's, as ``fixef_summary``), where lme4 takes the
    ``R_X`` block of the PIRLS system.

    ``"prediction"`` (Gaussian models only): a new observation of the row,
    ``se²`` the confidence variance plus ``σ²`` and, for every block whose
    level is unseen (or every block, with ``include_random=False``), the new
    group's effect variance ``zᵀΣz`` from :attr:`~hiermodels.mle.results.MixedFit.varcorr`.

    Parameters
    ----------
    fit : MixedFit
        The fit.
    newdata : pandas.DataFrame or None
        New rows; ``None`` for the fitted rows. With ``interval="prediction"``
        and ``include_random=False`` it needs the random-effect covariates
        (not the grouping columns).
    interval : {"confidence", "prediction"}
        The uncertainty of the fitted mean, or of a new observation.
    ci_prob : float
        Probability of the intervals, in (0, 1).
    new_levels : {"population", "error"}
        Give unseen grouping levels random effects of 0, or raise.
    scale : {"response", "link"}
        Scale of ``estimate``, ``lower`` and ``upper``.
    include_random : bool
        Whether to condition on the conditional modes (``False``: population
        predictions, every group a new one).
    offset : array_like or str, optional
        Offset for the new rows (required if the model has an offset).

    Returns
    -------
    pandas.DataFrame
        Index the rows; columns ``estimate``, ``se`` (on the link scale),
        ``lower``, ``upper``. ``attrs``: ``interval``, ``ci_prob``, ``scale``.

    Raises
    ------
    ValueError
        For an unknown ``interval`` or ``scale``, or ``"prediction"`` for a
        GLMM: its response is not normal on the link scale, so a normal
        interval there would not be a prediction interval.
    """
    if interval not in INTERVALS:
        raise ValueError(f"interval must be None, 'confidence' or 'prediction', got {interval!r}")
    if scale not in ("response", "link"):
        raise ValueError(f"scale must be 'response' or 'link', got {scale!r}")
    ci_prob = check_ci_prob(ci_prob)
    check_new_levels(new_levels)
    family = fit.design.family
    if interval == "prediction" and not fit.has_residual:
        raise ValueError(
            "interval='prediction' is defined for Gaussian models only: a "
            f"{family.name} response is not normal on the link scale, so no normal "
            "interval there covers a new observation. Use interval='confidence' for "
            "the uncertainty of the mean"
        )
    rows = _interval_rows(
        fit,
        newdata,
        new_levels=new_levels,
        include_random=include_random,
        with_terms=interval == "prediction",
        offset=offset,
    )
    eta = _rows_linear_predictor(fit, rows, fit.conditional_modes)
    variance = _estimation_variance(fit, rows)
    if interval == "prediction":
        variance = variance + fit.sigma**2 + _new_group_variance(fit, rows)
    se = np.sqrt(variance)
    lower, upper = normal_bounds(eta, se, ci_prob)
    if scale == "response":
        eta, lower, upper = (inverse_link(family.link, v) for v in (eta, lower, upper))
        # a decreasing link (the Gamma's inverse, the inverse Gaussian's 1/mu^2) swaps them
        lower, upper = np.minimum(lower, upper), np.maximum(lower, upper)
    table = pd.DataFrame(
        {"estimate": eta, "se": se, "lower": lower, "upper": upper}, index=rows.index
    )
    table.attrs.update(interval=interval, ci_prob=ci_prob, scale=scale)
    return table


def _interval_rows(
    fit: MixedFit,
    newdata: pd.DataFrame | None,
    *,
    new_levels: Literal["population", "error"],
    include_random: bool,
    with_terms: bool,
    offset: ArrayLike | str | None,
) -> NewRows:
    """The rows' arrays for every block of the fit, in θ order.

    Code ``-1`` marks a block whose effect the prediction sets to 0: an
    unseen level, or every level with ``include_random=False``. Population
    rows of new data get the term columns only when ``with_terms`` (a
    prediction interval needs them; the point prediction needs no
    random-effect columns).
    """
    design, blocks = fit.design, fit.layout.blocks
    if newdata is None:
        codes = tuple(
            b.codes if include_random else np.full(design.n_rows, -1, dtype=np.int64) for b in blocks
        )
        return NewRows(
            X=design.X,
            codes=codes,
            Z=tuple(b.X for b in blocks),
            offset=design.offset,
            index=design.rows,
        )
    if include_random:
        return new_rows(design, newdata, blocks, new_levels=new_levels, offset=offset)
    rows = new_rows(design, newdata, (), offset=offset)
    n = len(newdata)
    return NewRows(
        X=rows.X,
        codes=tuple(np.full(n, -1, dtype=np.int64) for _ in blocks),
        Z=tuple(
            random_matrix_for(b, newdata) if with_terms else np.zeros((n, b.n_terms))
            for b in blocks
        ),
        offset=rows.offset,
        index=rows.index,
    )


def _block_columns(codes: np.ndarray, terms: np.ndarray, n_levels: int) -> sp.csr_matrix:
    """``(n, n_levels·q)`` level-major columns of one block, zero rows where ``codes < 0``."""
    n, q = terms.shape
    keep = codes >= 0
    row_index = np.repeat(np.flatnonzero(keep), q)
    col_index = (codes[keep, None] * q + np.arange(q)[None, :]).ravel()
    return sp.csr_matrix((terms[keep].ravel(), (row_index, col_index)), shape=(n, n_levels * q))


def _working_weights(fit: MixedFit) -> np.ndarray:
    """``W`` of the penalised system at the fit: the precision weights (1 without) or PIRLS'."""
    if fit.has_residual:
        weights = fit.design.weights
        return np.ones(fit.design.n_rows) if weights is None else weights
    from hiermodels.mle.response import GlmResponse

    return GlmResponse.from_fit(fit).working(fit.linear_predictor)[1]


def _estimation_variance(fit: MixedFit, rows: NewRows) -> np.ndarray:
    """``Var(η̂ − η)`` of every row given θ̂: fixed effects and seen levels' modes jointly."""
    X, vcov = rows.X, fit.vcov_beta
    if not any(np.any(codes >= 0) for codes in rows.codes):
        return np.einsum("ij,jk,ik->i", X, vcov, X)
    # the fit keeps no factor of its penalised system, so the system is set up
    # again at θ̂ in the design's units: b = Λu, (ΛᵀZᵀWZΛ + I) u = ΛᵀZᵀW(y − Xβ)
    layout, design = fit.layout, fit.design
    relative = sp.block_diag(
        [
            sp.kron(sp.identity(block.n_levels), factor)
            for block, factor in zip(layout.blocks, layout.theta.factors(fit.theta), strict=True)
        ],
        format="csc",
    )
    z_lambda = (sp.hstack([block.Z() for block in layout.blocks], format="csc") @ relative).tocsc()
    weighted = z_lambda.multiply(_working_weights(fit)[:, None]).tocsc()
    system = (z_lambda.T @ weighted + sp.identity(z_lambda.shape[1])).tocsc()
    solver = splu(system)
    # M⁻¹ΛᵀZᵀWX: minus the change of u-hat per unit of β
    sensitivity = solver.solve(np.asarray((weighted.T @ design.X), dtype=float))
    new_z = sp.hstack(
        [
            _block_columns(codes, terms, block.n_levels)
            for codes, terms, block in zip(rows.codes, rows.Z, layout.blocks, strict=True)
        ],
        format="csr",
    )
    spherical = (relative.T @ new_z.T).tocsc()
    variance = np.empty(X.shape[0])
    for start in range(0, X.shape[0], _ROWS_PER_SOLVE):
        chunk = slice(start, start + _ROWS_PER_SOLVE)
        w = spherical[:, chunk].toarray()
        effects = fit.sigma**2 * np.sum(w * solver.solve(w), axis=0)
        adjusted = X[chunk] - w.T @ sensitivity
        variance[chunk] = effects + np.einsum("ij,jk,ik->i", adjusted, vcov, adjusted)
    return variance


def _new_group_variance(fit: MixedFit, rows: NewRows) -> np.ndarray:
    """``Σ zᵀΣz`` over the blocks whose effect a row does not know (code ``-1``)."""
    total = np.zeros(rows.X.shape[0])
    for codes, terms, cov in zip(rows.codes, rows.Z, fit.covariances(), strict=True):
        unseen = codes < 0
        total[unseen] += np.einsum("ij,jk,ik->i", terms[unseen], cov, terms[unseen])
    return total
