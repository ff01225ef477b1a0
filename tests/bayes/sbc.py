"""Simulation-based calibration (Talts et al. 2018) of ``fit_bayes`` on a fixed design.

One replication draws every parameter from fixed, proper priors, simulates
the response on a fixed design, fits it and records the rank of each true
scalar parameter among thinned posterior draws. If the sampler targets the
posterior of the model the data came from, every rank is uniform on
``0, ..., L`` (``L`` the number of kept draws); :func:`rank_uniformity`
tests that with a chi-square test on binned ranks.

The priors must not depend on the data (the default priors do, through the
response's scale), so they are passed whole to :func:`calibrate`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from hiermodels.bayes import BayesFit, fit_bayes
from hiermodels.bayes.priors import Prior
from hiermodels.design.design import Design, build_design

__all__ = [
    "Calibration",
    "calibrate",
    "draw_from_prior",
    "lkj_draw",
    "posterior_draws",
    "rank_uniformity",
    "simulate_response",
    "true_scalars",
]


def lkj_draw(q: int, eta: float, rng: np.random.Generator) -> np.ndarray:
    """A ``q x q`` correlation matrix from ``LKJCorr(eta)`` (the onion method).

    Parameters
    ----------
    q : int
        Dimension (at least 2).
    eta : float
        Concentration; 1 is uniform over correlation matrices.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        ``(q, q)`` correlation matrix.

    Notes
    -----
    Lewandowski, Kurowicka and Joe (2009), section 3.2: the Cholesky factor
    is grown one row at a time, the new row's squared length drawn from a
    beta distribution and its direction uniformly on the sphere.
    """
    beta = eta + (q - 2) / 2.0
    r12 = 2.0 * rng.beta(beta, beta) - 1.0
    chol = np.zeros((q, q))
    chol[0, 0] = 1.0
    chol[1, 0] = r12
    chol[1, 1] = np.sqrt(1.0 - r12**2)
    for k in range(2, q):
        beta -= 0.5
        y = rng.beta(k / 2.0, beta)
        direction = rng.standard_normal(k)
        w = np.sqrt(y) * direction / np.linalg.norm(direction)
        chol[k, :k] = w
        chol[k, k] = np.sqrt(1.0 - y)
    corr = chol @ chol.T
    np.fill_diagonal(corr, 1.0)
    return corr


def _positive_draw(prior: Prior, rng: np.random.Generator) -> float:
    """One draw of a standard deviation's prior (the kinds the SBC priors use)."""
    p = prior.params
    if prior.dist == "HalfNormal":
        return abs(float(rng.normal(0.0, p["sigma"])))
    if prior.dist == "LogNormal":
        return float(rng.lognormal(p["mu"], p["sigma"]))
    if prior.dist == "Gamma":
        return float(rng.gamma(p["alpha"], 1.0 / p["beta"]))
    raise ValueError(f"no SBC draws for a {prior.dist} prior")


def draw_from_prior(
    design: Design, priors: Mapping[str, Prior], rng: np.random.Generator
) -> dict[str, np.ndarray | float]:
    """The model's parameters drawn from ``priors``, named as in the PyMC graph.

    Parameters
    ----------
    design : Design
        Fixes the coefficient, factor and term names.
    priors : mapping of str to Prior
        ``beta__<coef>`` (``Normal``), ``sigma`` and ``sd_<g>__<t>``
        (``HalfNormal``, ``LogNormal`` or ``Gamma``), ``corr_<g>``
        (``LKJCorr``) for every correlated factor.
    rng : numpy.random.Generator

    Returns
    -------
    dict
        ``beta`` (``(p,)``), ``sigma``, every ``sd_<g>__<t>`` and every
        ``corr_<g>`` (a ``(q, q)`` matrix over the factor's terms, identity
        outside its correlated blocks).
    """
    values: dict[str, np.ndarray | float] = {}
    beta = []
    for coef in design.fixed_names:
        prior = priors[f"beta__{coef}"]
        if prior.dist != "Normal":
            raise ValueError(f"no SBC draws for a {prior.dist} prior")
        beta.append(rng.normal(prior.params["mu"], prior.params["sigma"]))
    values["beta"] = np.array(beta)
    values["sigma"] = _positive_draw(priors["sigma"], rng)
    for layout in design.factors:
        g = layout.group
        for term in layout.terms:
            values[f"sd_{g}__{term}"] = _positive_draw(priors[f"sd_{g}__{term}"], rng)
        if layout.correlated_spans:
            corr = np.eye(len(layout.terms))
            eta = priors[f"corr_{g}"].params["eta"]
            for a, b in layout.correlated_spans:
                corr[a:b, a:b] = lkj_draw(b - a, eta, rng)
            values[f"corr_{g}"] = corr
    return values


def simulate_response(
    design: Design, values: Mapping[str, np.ndarray | float], rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Effects and a response drawn from the model at ``values``.

    Parameters
    ----------
    design : Design
        Its fixed-effects matrix and random-effect columns are used.
    values : mapping
        As returned by :func:`draw_from_prior`.
    rng : numpy.random.Generator

    Returns
    -------
    y : numpy.ndarray
        ``(n,)`` response.
    effects : dict of str to numpy.ndarray
        ``u_<g>``: the ``(levels, terms)`` effects of each factor.
    """
    y = design.X @ np.asarray(values["beta"], dtype=float)
    effects = {}
    for layout in design.factors:
        g = layout.group
        sd = np.array([float(values[f"sd_{g}__{t}"]) for t in layout.terms])
        corr = np.asarray(values.get(f"corr_{g}", np.eye(sd.size)), dtype=float)
        chol = np.linalg.cholesky(np.outer(sd, sd) * corr + 1e-300 * np.eye(sd.size))
        u = rng.standard_normal((len(layout.levels), sd.size)) @ chol.T
        effects[f"u_{g}"] = u
        y = y + np.sum(u[layout.codes] * layout.X, axis=1)
    y = y + float(values["sigma"]) * rng.standard_normal(design.nobs)
    return y, effects


def true_scalars(
    design: Design,
    values: Mapping[str, np.ndarray | float],
    effects: Mapping[str, np.ndarray],
    names: Sequence[str],
) -> dict[str, float]:
    """The values of named scalars at ``values`` and ``effects``.

    Parameters
    ----------
    design : Design
    values : mapping
        As returned by :func:`draw_from_prior`.
    effects : mapping of str to numpy.ndarray
        As returned by :func:`simulate_response`.
    names : sequence of str
        Named as for :func:`posterior_draws`.

    Returns
    -------
    dict of str to float
    """
    out = {}
    for name in names:
        base, _, index = name.partition("[")
        if base == "beta":
            out[name] = float(values["beta"][design.fixed_names.index(index[:-1])])
        elif base.startswith("u_"):
            level, term = index[:-1].split(", ")
            layout = {lay.group: lay for lay in design.factors}[base[2:]]
            out[name] = float(effects[base][layout.levels.index(level), layout.terms.index(term)])
        elif base.startswith("corr_"):
            first, second = index[:-1].split(", ")
            layout = {lay.group: lay for lay in design.factors}[base[5:]]
            corr = np.asarray(values[base])
            out[name] = float(corr[layout.terms.index(first), layout.terms.index(second)])
        else:
            out[name] = float(values[name])
    return out


def posterior_draws(fit: BayesFit, name: str) -> np.ndarray:
    """The ``(chain, draw)`` draws of one scalar.

    Parameters
    ----------
    fit : BayesFit
    name : str
        ``beta[<coef>]``, ``sigma``, ``sd_<g>__<t>``, ``corr_<g>[<t1>, <t2>]``
        or ``u_<g>[<level>, <term>]``.

    Returns
    -------
    numpy.ndarray
        ``(chains, draws)``.
    """
    post = fit.posterior
    base, _, index = name.partition("[")
    da = post[base]
    if index:
        keys = index[:-1].split(", ")
        extra = [d for d in da.dims if d not in ("chain", "draw")]
        da = da.isel(
            {dim: list(da[dim].values).index(key) for dim, key in zip(extra, keys, strict=True)}
        )
    return np.asarray(da.transpose("chain", "draw").values, dtype=float)


@dataclass(frozen=True)
class Calibration:
    """Ranks of the true values among thinned posterior draws, replication by replication.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per replication, one column per tracked scalar: the number of
        kept draws below the true value (``0, ..., n_kept``).
    n_kept : int
        Thinned draws per replication.
    divergences : numpy.ndarray
        Divergent transitions of each replication.
    seconds : float
        Wall time of all replications.
    """

    ranks: pd.DataFrame
    n_kept: int
    divergences: np.ndarray
    seconds: float

    def pvalues(self, bins: int = 10) -> pd.Series:
        """Chi-square p-value of rank uniformity, per scalar (see :func:`rank_uniformity`)."""
        return self.ranks.apply(lambda r: rank_uniformity(r.to_numpy(), self.n_kept, bins))


def calibrate(
    formula: str,
    frame: pd.DataFrame,
    priors: Mapping[str, Prior],
    names: Sequence[str],
    *,
    replications: int,
    seed: int,
    thin: int = 10,
    **fit_kwargs: object,
) -> Calibration:
    """Run simulation-based calibration of ``fit_bayes`` on a fixed design.

    Parameters
    ----------
    formula : str
        A gaussian mixed-model formula with response ``y``.
    frame : pandas.DataFrame
        The fixed design: every predictor and factor of ``formula`` (``y`` is
        overwritten in a copy).
    priors : mapping of str to Prior
        A prior for every parameter (see :func:`draw_from_prior`); passed to
        ``fit_bayes`` as given.
    names : sequence of str
        The scalars to rank (see :func:`posterior_draws`).
    replications : int
    seed : int
        Replication ``r`` draws its truth and data from
        ``default_rng([seed, r])`` and samples with ``random_seed=seed * 10_000 + r``.
    thin : int
        Keep every ``thin``-th draw of each chain.
    **fit_kwargs
        Passed to ``fit_bayes`` (``draws``, ``tune``, ``chains``, ...).

    Returns
    -------
    Calibration
    """
    data = frame.copy()
    data["y"] = np.arange(len(data), dtype=float)  # a placeholder: only the layout is used
    template = build_design(formula, data, "gaussian")
    missing = set(template.fixed_names) - {k[6:] for k in priors if k.startswith("beta__")}
    if missing:
        raise ValueError(f"SBC needs a fixed prior for every parameter; none for {missing}")
    rows, divergences = [], []
    start = time.perf_counter()
    for r in range(replications):
        rng = np.random.default_rng([seed, r])
        values = draw_from_prior(template, priors, rng)
        y, effects = simulate_response(template, values, rng)
        data["y"] = y
        design = build_design(formula, data, "gaussian")
        fit = fit_bayes(
            design,
            priors=priors,
            random_seed=seed * 10_000 + r,
            progressbar=False,
            log_likelihood=False,
            **fit_kwargs,
        )
        truth = true_scalars(design, values, effects, names)
        chains = fit.posterior.sizes["chain"]
        row = {}
        for name in names:
            kept = posterior_draws(fit, name)[:, thin - 1 :: thin].ravel()
            row[name] = int(np.sum(kept < truth[name]))
        rows.append(row)
        divergences.append(int(fit.idata["sample_stats"]["diverging"].sum()))
    n_kept = chains * len(range(thin - 1, fit.posterior.sizes["draw"], thin))
    return Calibration(
        ranks=pd.DataFrame(rows, columns=list(names)),
        n_kept=n_kept,
        divergences=np.array(divergences),
        seconds=time.perf_counter() - start,
    )


def rank_uniformity(ranks: np.ndarray, n_kept: int, bins: int = 10) -> float:
    """Chi-square p-value of the hypothesis that ``ranks`` are uniform on ``0..n_kept``.

    Parameters
    ----------
    ranks : numpy.ndarray
        Integer ranks, each in ``0, ..., n_kept``.
    n_kept : int
        Number of draws a true value was ranked among.
    bins : int
        Rank ``k`` falls in bin ``floor(k * bins / (n_kept + 1))``; each bin's
        expected count is its share of the ``n_kept + 1`` possible ranks.

    Returns
    -------
    float
        ``P(chi2(bins - 1) >= X^2)``.
    """
    ranks = np.asarray(ranks, dtype=np.int64)
    if ranks.min() < 0 or ranks.max() > n_kept:
        raise ValueError(f"ranks must lie in 0..{n_kept}")
    which = np.arange(n_kept + 1) * bins // (n_kept + 1)
    share = np.bincount(which, minlength=bins) / (n_kept + 1)
    observed = np.bincount(ranks * bins // (n_kept + 1), minlength=bins)
    return float(stats.chisquare(observed, share * ranks.size).pvalue)
