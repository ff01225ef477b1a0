"""Draw-wise quantities of a posterior: linear predictor, mean, log-likelihood, replicates.

They are computed from the posterior draws of ``beta``, ``u_<group>`` and
``sigma`` (the Gamma's and inverse Gaussian's ``√φ``) or ``alpha`` with
numpy, without compiling anything, for the rows of the fitted design or for
new rows (:class:`LinearPredictorData`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike
from scipy import special, stats

from hiermodels.design.design import Design
from hiermodels.design.families import Family, draw_response, inverse_link
from hiermodels.mle.response import log_binomial_coefficient
from hiermodels.names import effects_name, term_dim

__all__ = [
    "LinearPredictorData",
    "linear_predictor",
    "mean_response",
    "pointwise_log_likelihood",
    "posterior_predictive_draws",
    "prediction_data",
]


@dataclass(frozen=True, eq=False)
class LinearPredictorData:
    """The arrays that map posterior draws to a linear predictor, for some rows.

    Attributes
    ----------
    family : Family
    X : numpy.ndarray
        ``(n, p)`` fixed-effects matrix.
    groups : tuple of (str, numpy.ndarray, numpy.ndarray)
        Per grouping factor: name, ``(n,)`` level codes (``-1``: a level not in
        the fit, contributing zero), ``(n, q)`` term columns.
    offset : numpy.ndarray or None
    y : numpy.ndarray or None
        Observed response (for the log-likelihood).
    trials : numpy.ndarray or None
        Binomial trials.
    obs : list
        Row labels.
    weights : numpy.ndarray or None
        Precision weights of a Gaussian design's rows (row SD ``sigma / sqrt(w)``).
    """

    family: Family
    X: np.ndarray
    groups: tuple[tuple[str, np.ndarray, np.ndarray], ...]
    offset: np.ndarray | None
    y: np.ndarray | None
    trials: np.ndarray | None
    obs: list
    weights: np.ndarray | None = None

    @classmethod
    def from_design(cls, design: Design) -> LinearPredictorData:
        """The design's own rows."""
        groups = tuple(
            (layout.group, np.asarray(layout.codes, dtype=np.int64), layout.X)
            for layout in design.factors
        )
        rows = list(design.rows) if design.rows.is_unique else list(range(design.n_rows))
        return cls(
            family=design.family,
            X=np.asarray(design.X, dtype=float),
            groups=groups,
            offset=design.offset,
            y=np.asarray(design.y, dtype=float),
            trials=design.trials,
            obs=rows,
            weights=design.weights,
        )


def linear_predictor(posterior: xr.Dataset, data: LinearPredictorData) -> xr.DataArray:
    """``eta = X beta + sum_g sum(u_g[codes] * X_g, axis=1) + offset`` for every draw.

    Parameters
    ----------
    posterior : xarray.Dataset
        With ``beta`` (chain, draw, coef) and ``u_<group>`` (chain, draw,
        level, term).
    data : LinearPredictorData

    Returns
    -------
    xarray.DataArray
        ``(chain, draw, obs)``.
    """
    beta = posterior["beta"].transpose("chain", "draw", "coef").values
    eta = np.einsum("cdp,np->cdn", beta, data.X)
    for group, codes, Xg in data.groups:
        u = posterior[effects_name(group)].transpose("chain", "draw", group, term_dim(group)).values
        known = codes >= 0
        for c in range(u.shape[0]):  # chain by chain keeps the (draw, n, q) gather small
            gathered = u[c][:, codes[known], :]
            eta[c][:, known] += np.einsum("dnq,nq->dn", gathered, Xg[known])
    if data.offset is not None:
        eta = eta + np.asarray(data.offset, dtype=float)
    return xr.DataArray(
        eta,
        dims=("chain", "draw", "obs"),
        coords={
            "chain": posterior["chain"].values,
            "draw": posterior["draw"].values,
            "obs": data.obs,
        },
    )


def _log_p(eta: np.ndarray, link: str) -> tuple[np.ndarray, np.ndarray]:
    """``log p`` and ``log(1 - p)`` for ``p = inverse_link(eta)``, computed stably."""
    if link == "probit":
        return special.log_ndtr(eta), special.log_ndtr(-eta)
    return -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)


def mean_response(eta: np.ndarray, family: Family) -> np.ndarray:
    """The family's inverse link: mean of the response (a probability for bernoulli/binomial).

    Parameters
    ----------
    eta : numpy.ndarray
        Linear predictor, any shape.
    family : Family

    Returns
    -------
    numpy.ndarray
        The shape of ``eta``.
    """
    return inverse_link(family.link, eta)


def _draws_of(posterior: xr.Dataset, name: str) -> np.ndarray:
    """A scalar parameter's ``(chain, draw, 1)`` draws, to broadcast over observations."""
    return posterior[name].transpose("chain", "draw").values[..., None]


def pointwise_log_likelihood(posterior: xr.Dataset, data: LinearPredictorData) -> xr.DataArray:
    """Log-likelihood of every observation at every draw, as PyMC's model defines it.

    Unlike :meth:`~hiermodels.mle.response.GlmResponse.loglik_terms`, which
    clips probabilities away from 0 and 1 as PIRLS needs, the log-probabilities
    here are exact far into the tails, where draws with a large ``|eta|``
    take them and LOO's importance weights depend on them.

    Parameters
    ----------
    posterior : xarray.Dataset
    data : LinearPredictorData
        Must carry ``y`` (and ``trials`` for binomial).

    Returns
    -------
    xarray.DataArray
        ``(chain, draw, obs)``.
    """
    if data.y is None:
        raise ValueError("the log-likelihood needs the observed response")
    eta_da = linear_predictor(posterior, data)
    eta, y, family = eta_da.values, data.y, data.family
    if family.is_gaussian:
        ll = stats.norm.logpdf(y, loc=eta, scale=_row_sigma(posterior, data))
    elif family.is_binomial:
        log_p, log_q = _log_p(eta, family.link)
        n = np.ones_like(y) if data.trials is None or family.name == "bernoulli" else data.trials
        ll = log_binomial_coefficient(n, y) + y * log_p + (n - y) * log_q
    elif family.name == "poisson":
        ll = y * eta - np.exp(eta) - special.gammaln(y + 1)
    elif family.is_positive:
        phi = _draws_of(posterior, "sigma") ** 2
        mu = mean_response(eta, family)
        if family.name == "gamma":
            ll = stats.gamma.logpdf(y, 1.0 / phi, scale=mu * phi)
        else:
            ll = stats.invgauss.logpdf(y, mu * phi, scale=1.0 / phi)
    else:
        alpha = _draws_of(posterior, "alpha")
        mu = np.exp(eta)
        ll = stats.nbinom.logpmf(y, alpha, alpha / (alpha + mu))
    return eta_da.copy(data=ll)


def _row_sigma(posterior: xr.Dataset, data: LinearPredictorData) -> np.ndarray:
    """Each row's residual SD per draw: ``sigma``, over ``sqrt(w)`` with precision weights."""
    sigma = _draws_of(posterior, "sigma")
    return sigma if data.weights is None else sigma / np.sqrt(data.weights)


def posterior_predictive_draws(
    posterior: xr.Dataset, data: LinearPredictorData, rng: np.random.Generator
) -> xr.DataArray:
    """One replicate response per posterior draw, from the family's distribution.

    Parameters
    ----------
    posterior : xarray.Dataset
    data : LinearPredictorData
    rng : numpy.random.Generator

    Returns
    -------
    xarray.DataArray
        ``(chain, draw, obs)``; counts of successes for binomial.
    """
    eta_da = linear_predictor(posterior, data)
    family = data.family
    scale: np.ndarray | None = None
    if family.is_gaussian:
        scale = _row_sigma(posterior, data)
    elif family.is_positive:
        scale = _draws_of(posterior, "sigma")
    alpha = _draws_of(posterior, "alpha") if family.name == "negativebinomial" else None
    draws = draw_response(
        family,
        mean_response(eta_da.values, family),
        rng,
        scale=scale,
        trials=data.trials,
        alpha=alpha,
    )
    return eta_da.copy(data=draws)


def prediction_data(
    design: Design,
    newdata: pd.DataFrame,
    *,
    new_levels: Literal["population", "error"] = "population",
    offset: ArrayLike | str | None = None,
) -> LinearPredictorData:
    """The arrays of :class:`LinearPredictorData` for new rows.

    Parameters
    ----------
    design : Design
        The fitted design: its fixed-effects encoding and level labels are reused.
    newdata : pandas.DataFrame
        Holds the fixed-effect covariates, the random-effect covariates and
        the grouping-factor columns.
    new_levels : {"population", "error"}
        A grouping level not seen in the fit gets ``u = 0`` (population),
        or raises ``ValueError`` naming the unseen levels.
    offset : array_like or str, optional
        Required when the model has an offset: the values, or a column of ``newdata``.

    Returns
    -------
    LinearPredictorData
    """
    from hiermodels.mle.predict import new_rows

    rows = new_rows(design, newdata, design.blocks, new_levels=new_levels, offset=offset)
    # the blocks of one factor share its levels (Design.factors checks it), and
    # its terms follow the order of the design's blocks
    codes: dict[str, np.ndarray] = {}
    columns: dict[str, list[np.ndarray]] = {}
    for block, block_codes, block_columns in zip(design.blocks, rows.codes, rows.Z, strict=True):
        codes[block.group] = block_codes
        columns.setdefault(block.group, []).append(block_columns)
    groups = tuple(
        (layout.group, codes[layout.group], np.column_stack(columns[layout.group]))
        for layout in design.factors
    )
    return LinearPredictorData(
        family=design.family,
        X=rows.X,
        groups=groups,
        offset=rows.offset,
        y=None,
        trials=None,
        obs=list(newdata.index),
    )
