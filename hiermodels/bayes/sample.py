"""Sampling a built model, and the draw-wise quantities computed from a posterior.

:func:`fit_bayes` builds the graph (:mod:`hiermodels.bayes.build`), samples it
with nutpie (default) or PyMC's NUTS and wraps the result in a
:class:`~hiermodels.bayes.results.BayesFit`. The pointwise log-likelihood,
posterior predictive draws and predictions for new data are computed from
the posterior draws of ``beta``, ``u_<group>``, ``sigma``/``alpha`` with
numpy, without compiling anything.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from numpy.typing import ArrayLike
from scipy import special, stats

from hiermodels.bayes.build import OBSERVED, build_pymc_model
from hiermodels.bayes.priors import Prior, Priors, group_term_layout, resolve_priors
from hiermodels.spec.design import Design
from hiermodels.spec.families import Family

if TYPE_CHECKING:
    from hiermodels.bayes.results import BayesFit

__all__ = [
    "fit_bayes",
    "sample_model",
    "LinearPredictorData",
    "linear_predictor",
    "pointwise_log_likelihood",
    "posterior_predictive_draws",
    "prediction_data",
    "mean_response",
]

Sampler = Literal["nutpie", "pymc"]

#: Above this many log-likelihood values (chains x draws x observations,
#: 400 MB of float64) ``fit_bayes`` leaves the ``log_likelihood`` group out.
MAX_LOG_LIKELIHOOD_SIZE = 50_000_000


def _observed_group(model: pm.Model) -> xr.Dataset:
    """The ``observed_data`` group: ``y`` with its ``obs`` coordinate."""
    data = np.asarray(model.rvs_to_values[model[OBSERVED]].data)
    return xr.Dataset(
        {OBSERVED: xr.DataArray(data, dims=("obs",), coords={"obs": list(model.coords["obs"])})}
    )


def sample_model(
    model: pm.Model,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: Sampler = "nutpie",
    random_seed: int | None = None,
    progressbar: bool = True,
    cores: int | None = None,
) -> xr.DataTree:
    """Sample a PyMC model with nutpie or PyMC's NUTS.

    Parameters
    ----------
    model : pymc.Model
        Typically from :func:`~hiermodels.bayes.build.build_pymc_model`.
    draws, tune, chains : int
        Kept draws, tuning draws (discarded) and chains.
    sampler : {"nutpie", "pymc"}
        nutpie compiles the model with numba; ``"pymc"`` uses ``pm.sample``.
    random_seed : int, optional
    progressbar : bool
    cores : int, optional
        Chains run in parallel; defaults to ``min(chains, os.cpu_count())``.

    Returns
    -------
    xarray.DataTree
        With ``posterior``, ``sample_stats`` and ``observed_data``.
    """
    if sampler not in ("nutpie", "pymc"):
        raise ValueError(f"sampler must be 'nutpie' or 'pymc', got {sampler!r}")
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if not isinstance(value, int | np.integer) or value < (0 if name == "tune" else 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    cores = cores or max(1, min(chains, os.cpu_count() or 1))
    if sampler == "nutpie":
        import nutpie

        compiled = nutpie.compile_pymc_model(model)
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            seed=random_seed,
            progress_bar=progressbar,
            save_warmup=False,
        )
        idata["observed_data"] = xr.DataTree(_observed_group(model))
        return idata
    return pm.sample(
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        random_seed=random_seed,
        progressbar=progressbar,
        compute_convergence_checks=False,
        nuts_sampler="pymc",
        model=model,
    )


def fit_bayes(
    design: Design,
    *,
    priors: Priors | Mapping[str, Prior] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: Sampler = "nutpie",
    random_seed: int | None = None,
    progressbar: bool = True,
    fixed_values: Mapping[str, ArrayLike] | None = None,
    log_likelihood: bool | None = None,
    posterior_predictive: bool = False,
) -> BayesFit:
    """Full-Bayes fit of a design by MCMC.

    Parameters
    ----------
    design : Design
    priors : Priors or mapping of str to Prior, optional
        Overrides of the default priors (see :mod:`hiermodels.bayes.priors`).
    draws, tune, chains : int
        Kept draws per chain, tuning draws per chain, chains.
    sampler : {"nutpie", "pymc"}
    random_seed : int, optional
    progressbar : bool
    fixed_values : mapping of str to array_like, optional
        Variables held fixed (empirical Bayes); see
        :func:`~hiermodels.bayes.build.build_pymc_model`.
    log_likelihood : bool, optional
        Add the pointwise ``log_likelihood`` group (needed by ``loo``). By
        default it is added unless it would exceed
        :data:`MAX_LOG_LIKELIHOOD_SIZE` values.
    posterior_predictive : bool
        Add a ``posterior_predictive`` group (one replicate per draw).

    Returns
    -------
    BayesFit
    """
    from hiermodels.bayes.results import BayesFit

    resolved = resolve_priors(design, priors)
    model = build_pymc_model(design, resolved, fixed_values=fixed_values)
    idata = sample_model(
        model,
        draws=draws,
        tune=tune,
        chains=chains,
        sampler=sampler,
        random_seed=random_seed,
        progressbar=progressbar,
    )
    if log_likelihood is None:
        log_likelihood = chains * draws * design.nobs <= MAX_LOG_LIKELIHOOD_SIZE
    data = LinearPredictorData.from_design(design)
    if log_likelihood:
        ll = pointwise_log_likelihood(idata["posterior"].dataset, data)
        idata["log_likelihood"] = xr.DataTree(xr.Dataset({OBSERVED: ll}))
    if posterior_predictive:
        rng = np.random.default_rng(random_seed)
        ppc = posterior_predictive_draws(idata["posterior"].dataset, data, rng)
        idata["posterior_predictive"] = xr.DataTree(xr.Dataset({OBSERVED: ppc}))
    return BayesFit(
        idata=idata,
        design=design,
        priors=resolved,
        sampler=sampler,
        fixed_values=dict(fixed_values or {}),
    )


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
    """

    family: Family
    X: np.ndarray
    groups: tuple[tuple[str, np.ndarray, np.ndarray], ...]
    offset: np.ndarray | None
    y: np.ndarray | None
    trials: np.ndarray | None
    obs: list

    @classmethod
    def from_design(cls, design: Design) -> LinearPredictorData:
        """The design's own rows."""
        groups = tuple(
            (layout.group, np.asarray(layout.codes, dtype=np.int64), layout.X)
            for layout in group_term_layout(design)
        )
        rows = list(design.rows) if design.rows.is_unique else list(range(design.nobs))
        return cls(
            family=design.family,
            X=np.asarray(design.X, dtype=float),
            groups=groups,
            offset=design.offset,
            y=np.asarray(design.y, dtype=float),
            trials=design.trials,
            obs=rows,
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
        u = posterior[f"u_{group}"].transpose("chain", "draw", group, f"{group}__term").values
        known = codes >= 0
        for c in range(u.shape[0]):  # chain by chain keeps the (draw, n, q) gather small
            gathered = u[c][:, codes[known], :]
            eta[c][:, known] += np.einsum("dnq,nq->dn", gathered, Xg[known])
    if data.offset is not None:
        eta = eta + np.asarray(data.offset, dtype=float)
    return xr.DataArray(
        eta,
        dims=("chain", "draw", "obs"),
        coords={"chain": posterior["chain"].values, "draw": posterior["draw"].values,
                "obs": data.obs},
    )


def _log_p(eta: np.ndarray, link: str) -> tuple[np.ndarray, np.ndarray]:
    """``log p`` and ``log(1 - p)`` for ``p = inverse_link(eta)``, computed stably."""
    if link == "probit":
        return special.log_ndtr(eta), special.log_ndtr(-eta)
    return -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)


def mean_response(eta: np.ndarray, family: Family) -> np.ndarray:
    """The inverse link: mean of the response (a probability for bernoulli/binomial)."""
    if family.is_gaussian:
        return eta
    if family.is_binomial:
        return special.ndtr(eta) if family.link == "probit" else special.expit(eta)
    return np.exp(eta)


def _draws_of(posterior: xr.Dataset, name: str) -> np.ndarray:
    """A scalar parameter's ``(chain, draw, 1)`` draws, to broadcast over observations."""
    return posterior[name].transpose("chain", "draw").values[..., None]


def pointwise_log_likelihood(posterior: xr.Dataset, data: LinearPredictorData) -> xr.DataArray:
    """Log-likelihood of every observation at every draw, as PyMC's model defines it.

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
        ll = stats.norm.logpdf(y, loc=eta, scale=_draws_of(posterior, "sigma"))
    elif family.is_binomial:
        log_p, log_q = _log_p(eta, family.link)
        n = np.ones_like(y) if data.trials is None or family.name == "bernoulli" else data.trials
        log_choose = special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
        ll = log_choose + y * log_p + (n - y) * log_q
    elif family.name == "poisson":
        ll = y * eta - np.exp(eta) - special.gammaln(y + 1)
    else:
        alpha = _draws_of(posterior, "alpha")
        mu = np.exp(eta)
        ll = stats.nbinom.logpmf(y, alpha, alpha / (alpha + mu))
    return eta_da.copy(data=ll)


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
    eta, family = eta_da.values, data.family
    mean = mean_response(eta, family)
    if family.is_gaussian:
        draws = rng.normal(mean, _draws_of(posterior, "sigma"))
    elif family.is_binomial:
        n = 1 if data.trials is None or family.name == "bernoulli" else data.trials
        draws = rng.binomial(np.asarray(n, dtype=np.int64), np.clip(mean, 0.0, 1.0))
    elif family.name == "poisson":
        draws = rng.poisson(mean)
    else:
        alpha = np.broadcast_to(_draws_of(posterior, "alpha"), mean.shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            draws = rng.negative_binomial(alpha, alpha / (alpha + mean))
    return eta_da.copy(data=draws)


def _level_codes(design_levels: tuple[str, ...], labels: list[str]) -> np.ndarray:
    """Index of each label in the fitted levels, ``-1`` for an unseen one."""
    position = {label: i for i, label in enumerate(design_levels)}
    return np.array([position.get(label, -1) for label in labels], dtype=np.int64)


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
    from formulaic import model_matrix

    from hiermodels.spec._grouping import group_codes
    from hiermodels.spec.design import fixed_matrix_for

    if new_levels not in ("population", "error"):
        raise ValueError(f"new_levels must be 'population' or 'error', got {new_levels!r}")
    X = fixed_matrix_for(design, newdata)
    columns: dict[str, list[np.ndarray]] = {}
    labels: dict[str, list[str]] = {}
    for term, block in zip(design.spec.random, design.blocks, strict=True):
        missing = [name for name in block.factors if name not in newdata.columns]
        if missing:
            raise ValueError(f"newdata lacks the grouping column(s) {missing} of {block.group!r}")
        matrix = model_matrix(term.expr, newdata, na_action="raise")
        absent = [t for t in block.terms if t not in matrix.columns]
        if absent:
            raise ValueError(
                f"newdata gives no column(s) {absent} for the terms of {block.group!r}"
            )
        columns.setdefault(block.group, []).append(np.asarray(matrix[list(block.terms)], float))
        codes, levels = group_codes(newdata, block.factors)
        labels[block.group] = [levels[c] for c in codes]
    groups = []
    for layout in group_term_layout(design):
        codes = _level_codes(layout.levels, labels[layout.group])
        unseen = sorted({lab for lab, c in zip(labels[layout.group], codes, strict=True) if c < 0})
        if unseen and new_levels == "error":
            shown = ", ".join(unseen[:10]) + (", ..." if len(unseen) > 10 else "")
            raise ValueError(
                f"newdata has {len(unseen)} level(s) of {layout.group!r} not in the fit: {shown}; "
                "use new_levels='population' to predict them with u = 0"
            )
        groups.append((layout.group, codes, np.column_stack(columns[layout.group])))
    off = None
    if design.offset is not None:
        if offset is None:
            raise ValueError("the model has an offset: pass offset= (values or a column name)")
        off = np.asarray(newdata[offset] if isinstance(offset, str) else offset, dtype=float)
        if off.shape != (len(newdata),):
            raise ValueError(f"offset must have one value per row of newdata ({len(newdata)})")
    return LinearPredictorData(
        family=design.family,
        X=X,
        groups=tuple(groups),
        offset=off,
        y=None,
        trials=None,
        obs=list(newdata.index),
    )
