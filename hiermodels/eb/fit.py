"""Empirical Bayes: the marginal MLEs plugged into the model's own graph.

:func:`fit_eb` computes the marginal maximum-likelihood fit, then gives the
conditional distribution of every random effect with the hyperparameters
(SDs, correlations, σ) — and with ``plugin="all"`` the fixed effects — held
at their estimates. Gaussian models get it in closed form
(``eb_method="analytic"``) or by MCMC on the PyMC graph with the plugged-in
values as constants (``eb_method="mcmc"``); GLMMs by MCMC, the exact
conditional rather than the Laplace Gaussian (both are reported); a GLMM
with a single scalar term and ``plugin="all"`` also has the exact
conditional by adaptive quadrature (``eb_method="quadrature"``). Every
interval comes plain and with the Kass–Steffey correction for the
uncertainty of the plugged-in values; with ``interval="bootstrap"`` also as
Laird and Louis's parametric-bootstrap interval (:mod:`hiermodels.eb.bootstrap`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from hiermodels._checks import check_random_seed
from hiermodels.design.design import Design
from hiermodels.design.factors import long_index, long_values
from hiermodels.eb.analytic import gaussian_conditional, kass_steffey_variances
from hiermodels.eb.bootstrap import BootstrapConditionals
from hiermodels.errors import BoundaryWarning
from hiermodels.intervals import check_ci_prob, either_keyword, normal_bounds, summarise_draws
from hiermodels.mle.covariance import covariance_to_sd_corr
from hiermodels.mle.response import DISPERSION_NAME
from hiermodels.mle.results import MixedFit, per_group_frames
from hiermodels.names import DEFAULT_CI_PROB, correlation_name, effects_name, sd_name, term_dim

__all__ = ["BoundaryWarning", "EBFit", "fit_eb", "plugin_values"]


@dataclass(frozen=True, eq=False)
class EBFit:
    """Empirical-Bayes conditionals of every random effect.

    Attributes
    ----------
    mle : MixedFit
        The marginal-likelihood fit whose estimates are plugged in.
    plugin : str
        ``"hyper"`` (variance parameters) or ``"all"`` (fixed effects too).
    eb_method : str
        ``"analytic"``, ``"quadrature"`` or ``"mcmc"``.
    means, sds : tuple of numpy.ndarray
        ``(levels, q)`` conditional means and SDs per block (θ order).
    extra_variances : tuple of numpy.ndarray
        Kass–Steffey variance added by the hyperparameter uncertainty.
    plugged : dict
        The values held fixed, by graph variable name.
    boundary : tuple of str
        Hyperparameters estimated on the boundary (an SD of zero).
    idata : Any
        The MCMC draws (ArviZ DataTree) for ``eb_method="mcmc"``, else ``None``.
    bootstrap : BootstrapConditionals or None
        The plug-in conditionals at every bootstrap replicate's
        hyperparameters (``interval="bootstrap"``), else ``None``.
    """

    mle: MixedFit
    plugin: str
    eb_method: str
    means: tuple[np.ndarray, ...]
    sds: tuple[np.ndarray, ...]
    extra_variances: tuple[np.ndarray, ...]
    plugged: dict[str, Any]
    boundary: tuple[str, ...]
    idata: Any = None
    bootstrap: BootstrapConditionals | None = None

    @property
    def design(self) -> Design:
        """The design that was fitted."""
        return self.mle.design

    @property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates of the marginal-likelihood fit."""
        return self.mle.fixef

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components of the marginal-likelihood fit (``MixedFit.varcorr``)."""
        return self.mle.varcorr

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Plug-in conditional means per grouping factor: levels × terms."""
        return per_group_frames(self.mle.layout, self.means)

    def fixef_summary(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Fixed effects with Wald intervals, from the marginal-likelihood fit.

        See :meth:`hiermodels.mle.results.MixedFit.fixef_summary`.
        """
        return self.mle.fixef_summary(ci_prob)

    def varcorr_summary(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Variance components of the marginal-likelihood fit.

        See :meth:`hiermodels.mle.results.MixedFit.varcorr_summary`.
        """
        return self.mle.varcorr_summary(ci_prob)

    def ranef_summary(
        self, ci_prob: float = DEFAULT_CI_PROB, *, interval: float | None = None
    ) -> pd.DataFrame:
        """One row per grouping factor × term × level, with Kass–Steffey intervals.

        Parameters
        ----------
        ci_prob : float
            Probability of the intervals, in (0, 1).
        interval : float, optional
            Deprecated spelling of ``ci_prob``.

        Returns
        -------
        pandas.DataFrame
            ``grpvar, term, grp``; ``estimate`` (the plug-in conditional
            mean), ``se`` (its SD with the Kass–Steffey correction for the
            uncertainty of the plugged-in values) and ``lower, upper``
            (``estimate ∓ z·se``); the plug-in conditional's own ``se_plugin,
            lower_plugin, upper_plugin`` (central normal, or the HDI of the
            draws for MCMC); ``mode_mle, sd_mle`` (the MLE's conditional
            modes and SDs: BLUPs for LMMs, the Laplace Gaussian for GLMMs);
            for MCMC ``ess_bulk, r_hat``; with bootstrap conditionals
            (``fit_eb(interval="bootstrap")``) the Laird–Louis mixture's
            ``se_bootstrap, lower_bootstrap, upper_bootstrap``. These columns replace the earlier
            ``mean, sd_corrected, low_corrected, high_corrected`` and ``sd,
            hdi_low, hdi_high``. ``attrs``: ``interval`` ``"kass-steffey"``,
            ``plugin_interval`` (``"normal"`` or ``"hdi"``) and ``ci_prob``.
        """
        ci_prob = check_ci_prob(
            either_keyword(
                ci_prob, interval, new="ci_prob", old="interval", default=DEFAULT_CI_PROB
            )
        )
        draws = self._draw_summaries(ci_prob) if self.idata is not None else None
        blocks = self.mle.layout.blocks
        estimate = long_values(self.means)
        se_plugin = long_values(self.sds)
        se = np.sqrt(se_plugin**2 + long_values(self.extra_variances))
        lower, upper = normal_bounds(estimate, se, ci_prob)
        lower_plugin, upper_plugin = normal_bounds(estimate, se_plugin, ci_prob)
        # ranef_frame has the rows of long_index(blocks): factor's blocks in θ order, term, level
        mle_frame = self.mle.ranef_frame()
        table = long_index(blocks).assign(
            estimate=estimate,
            se=se,
            lower=lower,
            upper=upper,
            se_plugin=se_plugin,
            lower_plugin=lower_plugin,
            upper_plugin=upper_plugin,
            mode_mle=mle_frame["condval"].to_numpy(),
            sd_mle=mle_frame["condsd"].to_numpy(),
        )
        if draws is not None:
            stats = pd.concat(
                [draws[(block.group, term)] for block in blocks for term in block.terms],
                ignore_index=True,
            )
            for column, source in (
                ("lower_plugin", "lower"),
                ("upper_plugin", "upper"),
                ("ess_bulk", "ess_bulk"),
                ("r_hat", "r_hat"),
            ):
                table[column] = stats[source].to_numpy()
        if self.bootstrap is not None:
            _, se_boot, lower_boot, upper_boot = self.bootstrap.summary(ci_prob)
            table["se_bootstrap"] = se_boot
            table["lower_bootstrap"] = lower_boot
            table["upper_bootstrap"] = upper_boot
        table.attrs.update(
            interval="kass-steffey",
            plugin_interval="hdi" if draws is not None else "normal",
            ci_prob=ci_prob,
        )
        return table

    def _draw_summaries(self, ci_prob: float) -> dict[tuple[str, str], pd.DataFrame]:
        """The summary of the draws of every block's term, levels in the block's order."""
        out: dict[tuple[str, str], pd.DataFrame] = {}
        posterior = self.idata.posterior
        for block in self.mle.layout.blocks:
            draws = posterior[effects_name(block.group)].sel({block.group: list(block.levels)})
            for term in block.terms:
                term_draws = draws.sel({term_dim(block.group): term}, drop=True)
                out[(block.group, term)] = summarise_draws(term_draws, ci_prob)
        return out

    def __repr__(self) -> str:
        return (
            f"<EBFit {self.eb_method}, plugin={self.plugin!r}: "
            f"{self.design.spec.formula!r}, boundary={list(self.boundary)}>"
        )


def plugin_values(fit: MixedFit, plugin: str = "hyper") -> dict[str, Any]:
    """Values to hold fixed in the PyMC graph, by its variable names.

    ``sigma`` (Gaussian; ``√φ`` for the Gamma and inverse Gaussian), ``alpha``
    (the negative binomial's dispersion, its MLE), ``sd_<group>__<term>`` and
    ``corr_<group>`` (the ``q × q`` matrix over the factor's terms, block
    diagonal), and ``beta`` with ``plugin="all"``.
    """
    values: dict[str, Any] = {}
    if fit.residual_sd is not None:
        values["sigma"] = fit.residual_sd
    if fit.alpha is not None:
        values[DISPERSION_NAME] = float(fit.alpha)
    term_sd: dict[tuple[str, str], float] = {}
    term_block: dict[tuple[str, str], tuple[int, int]] = {}
    covs = fit.covariances()
    for i, (block, cov) in enumerate(zip(fit.layout.blocks, covs, strict=True)):
        sds, _ = covariance_to_sd_corr(cov)
        for j, term in enumerate(block.terms):
            term_sd[(block.group, term)] = float(sds[j])
            term_block[(block.group, term)] = (i, j)
    for layout in fit.design.factors:
        for term in layout.terms:
            values[sd_name(layout.group, term)] = term_sd[(layout.group, term)]
        if layout.correlated_spans:
            q = len(layout.terms)
            corr = np.eye(q)
            for a in range(q):
                for b in range(q):
                    ia, ja = term_block[(layout.group, layout.terms[a])]
                    ib, jb = term_block[(layout.group, layout.terms[b])]
                    if a != b and ia == ib:
                        corr[a, b] = covariance_to_sd_corr(covs[ia])[1][ja, jb]
            values[correlation_name(layout.group)] = corr
    if plugin == "all":
        values["beta"] = np.asarray(fit.beta, dtype=float)
    return values


def _boundary(fit: MixedFit) -> tuple[str, ...]:
    names = []
    for block, cov in zip(fit.layout.blocks, fit.covariances(), strict=True):
        sds, _ = covariance_to_sd_corr(cov)
        for term, sd in zip(block.terms, sds, strict=True):
            if sd < 1e-6 * max(fit.sigma, 1e-12):
                names.append(sd_name(block.group, term))
    return tuple(names)


def fit_eb(
    design: Design,
    *,
    method: str | None = None,
    plugin: str = "hyper",
    eb_method: str | None = None,
    mle: MixedFit | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: Literal["nutpie", "pymc"] = "nutpie",
    random_seed: int | None = None,
    progressbar: bool = True,
    target_accept: float = 0.8,
    interval: Literal["kass-steffey", "bootstrap"] = "kass-steffey",
    nsim: int = 1000,
) -> EBFit:
    """Empirical-Bayes fit of a design.

    Parameters
    ----------
    design : Design
        The model's design.
    method : str, optional
        Marginal-likelihood method: ``"REML"`` (Gaussian default), ``"ML"``
        or ``"Laplace"`` (default otherwise).
    plugin : {"hyper", "all"}
        Hold the variance parameters at their MLE (default), or the fixed
        effects too.
    eb_method : {"analytic", "quadrature", "mcmc"}, optional
        Closed-form conditional (Gaussian only; the default there), adaptive
        Gauss–Hermite quadrature (GLMMs with one scalar term, ``plugin="all"``),
        or MCMC on the graph with the plugged-in values held fixed (default
        for GLMMs).
    mle : MixedFit, optional
        A marginal-likelihood fit to reuse instead of fitting again. Its
        estimates are the plug-in values: for a negative binomial also the
        dispersion ``alpha``, for a Gamma or inverse Gaussian ``sigma = √φ``,
        which the Laplace fit estimates.
    draws, tune, chains, sampler, random_seed, progressbar, target_accept
        MCMC settings (see :func:`hiermodels.bayes.fit.fit_bayes`);
        ``random_seed`` and ``progressbar`` serve the bootstrap too.
    interval : {"kass-steffey", "bootstrap"}
        The intervals beside the plug-in ones: Kass–Steffey's (always), and
        with ``"bootstrap"`` also Laird and Louis's from ``nsim`` parametric
        bootstrap replicates (:mod:`hiermodels.eb.bootstrap`; linear mixed
        models with ``plugin="hyper"``).
    nsim : int
        Bootstrap replicates for ``interval="bootstrap"``.

    Returns
    -------
    EBFit

    Warns
    -----
    BoundaryWarning
        When an SD is estimated at zero: those effects collapse to complete
        pooling (zero conditional variance), which full Bayes does not do.
    """
    random_seed = check_random_seed(random_seed)
    if plugin not in ("hyper", "all"):
        raise ValueError(f"plugin must be 'hyper' or 'all', got {plugin!r}")
    gaussian = design.family.is_gaussian
    eb_method = eb_method or ("analytic" if gaussian else "mcmc")
    if eb_method not in ("analytic", "quadrature", "mcmc"):
        raise ValueError(f"eb_method must be 'analytic', 'quadrature' or 'mcmc', got {eb_method!r}")
    if eb_method == "quadrature" and (gaussian or plugin != "all"):
        raise ValueError(
            "eb_method='quadrature' integrates one scalar random effect of a GLMM given "
            "every other parameter: use it with a non-Gaussian family and plugin='all'"
        )
    if eb_method == "analytic" and not gaussian:
        raise ValueError(
            "the analytic conditional exists for Gaussian models only; "
            f"use eb_method='mcmc' for the {design.family.name} family"
        )
    if interval not in ("kass-steffey", "bootstrap"):
        raise ValueError(f"interval must be 'kass-steffey' or 'bootstrap', got {interval!r}")
    if interval == "bootstrap" and (not gaussian or plugin != "hyper"):
        raise ValueError(
            "bootstrap EB intervals are available for linear mixed models with plugin='hyper'"
        )
    if mle is None:
        mle = _fit_mle(design, method)
    if eb_method == "mcmc" and mle.alpha == np.inf:
        raise ValueError(
            f"the negative-binomial MLE is on the Poisson boundary ({DISPERSION_NAME} = inf), "
            "which the PyMC graph cannot hold fixed: fit the model with family='poisson' "
            "(the same estimates) for MCMC EB, or use eb_method='quadrature' with "
            "plugin='all' for a single scalar random-effect term"
        )
    boundary = _boundary(mle)
    if boundary:
        warnings.warn(
            f"boundary MLE: {', '.join(boundary)} estimated as 0 — empirical Bayes "
            "collapses those effects to complete pooling with zero conditional variance",
            BoundaryWarning,
            stacklevel=2,
        )
    plugged = plugin_values(mle, plugin)
    extra = kass_steffey_variances(mle, plugin)
    idata = None
    means: tuple[np.ndarray, ...]
    sds: tuple[np.ndarray, ...]
    if eb_method == "quadrature":
        from hiermodels.eb.quadrature import scalar_conditional

        exact = scalar_conditional(mle)
        means, sds = (exact.mean[:, None],), (exact.sd[:, None],)
    elif eb_method == "analytic":
        cond = gaussian_conditional(mle, plugin)
        means = cond.means
        sds = tuple(
            np.sqrt(np.clip(np.diagonal(c, axis1=1, axis2=2), 0.0, None)) for c in cond.covariances
        )
    else:
        from hiermodels.bayes.fit import fit_bayes

        bayes = fit_bayes(
            design,
            fixed_values=plugged,
            draws=draws,
            tune=tune,
            chains=chains,
            sampler=sampler,
            random_seed=random_seed,
            progressbar=progressbar,
            target_accept=target_accept,
        )
        idata = bayes.idata
        means, sds = _draw_moments(mle, idata)
    bootstrap = None
    if interval == "bootstrap":
        from hiermodels.eb.bootstrap import bootstrap_conditionals

        replicates = mle.bootstrap(nsim, random_seed=random_seed, progressbar=progressbar)
        bootstrap = bootstrap_conditionals(mle, replicates)
    return EBFit(
        mle=mle,
        plugin=plugin,
        eb_method=eb_method,
        means=means,
        sds=sds,
        extra_variances=extra,
        plugged=plugged,
        boundary=boundary,
        idata=idata,
        bootstrap=bootstrap,
    )


def _fit_mle(design: Design, method: str | None) -> MixedFit:
    from hiermodels.mle.fit import fit_glmm, fit_lmm, mle_method

    key = mle_method(design.family, method)
    return fit_lmm(design, key) if design.family.is_gaussian else fit_glmm(design)


def _draw_moments(
    mle: MixedFit, idata: Any
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Posterior means and SDs of every block's effects from the draws of ``u_<group>``."""
    means, sds = [], []
    posterior = idata.posterior
    for block in mle.layout.blocks:
        var = posterior[effects_name(block.group)].sel({term_dim(block.group): list(block.terms)})
        var = var.sel({block.group: list(block.levels)})
        values = var.transpose(block.group, term_dim(block.group), "chain", "draw").to_numpy()
        values = values.reshape(*values.shape[:2], -1)
        means.append(values.mean(axis=-1))
        sds.append(values.std(axis=-1, ddof=1))
    return tuple(means), tuple(sds)
