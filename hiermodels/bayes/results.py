"""The result of a full-Bayes fit: :class:`BayesFit` around an ArviZ DataTree.

Summaries come as pandas frames labelled like the MLE results: fixed effects
by coefficient name, variance components by group and term (lme4's
``VarCorr`` layout) and random effects in the long layout ``grpvar, term,
grp`` of :meth:`hiermodels.mle.results.MixedFit.ranef_summary`, with the
columns ``estimate, se, lower, upper`` every fit's summaries share.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from hiermodels.bayes.build import OBSERVED
from hiermodels.bayes.convergence import (
    ESS_MIN,
    ESS_MIN_PER_CHAIN,
    RHAT_MAX,
    Diagnostics,
    rank_diagnostics,
)
from hiermodels.bayes.draws import (
    LinearPredictorData,
    linear_predictor,
    mean_response,
    pointwise_log_likelihood,
    posterior_predictive_draws,
    prediction_data,
)
from hiermodels.bayes.priors import Priors
from hiermodels.bayes.route import SamplingRoute
from hiermodels.design.design import Design
from hiermodels.design.factors import LONG_KEYS, GroupTerms, long_index
from hiermodels.errors import SamplingWarning
from hiermodels.intervals import (
    SUMMARY_COLUMNS,
    check_ci_prob,
    renamed_keyword,
    summarise_draws,
)
from hiermodels.names import (
    DEFAULT_CI_PROB,
    correlation_label,
    correlation_name,
    effects_name,
    sd_name,
    term_dim,
    term_pair_dim,
)

__all__ = ["BayesFit"]

#: The fixed HDI probability of earlier releases; deprecated, see :func:`__getattr__`.
_DEPRECATED_HDI_PROB = 0.94
_STAT_COLUMNS = [*SUMMARY_COLUMNS, "median", "ess_bulk", "r_hat"]


def __getattr__(name: str) -> float:
    """``HDI_PROB``, deprecated: the summaries take ``ci_prob`` instead."""
    if name == "HDI_PROB":
        warnings.warn(
            "hiermodels.bayes.results.HDI_PROB is deprecated and will be removed in the next "
            "release; pass ci_prob= to the summaries (default hiermodels.names.DEFAULT_CI_PROB)",
            DeprecationWarning,
            stacklevel=2,
        )
        return _DEPRECATED_HDI_PROB
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True, eq=False)
class BayesFit:
    """A full-Bayes (or, with fixed values, empirical-Bayes) fit.

    Attributes
    ----------
    idata : xarray.DataTree
        ArviZ data: ``posterior``, ``sample_stats``, ``observed_data`` and,
        when requested, ``log_likelihood`` and ``posterior_predictive``.
    design : Design
    priors : Priors
        The priors used (defaults merged with overrides).
    sampler : str
        ``"nutpie"`` or ``"pymc"``.
    fixed_values : dict
        Variables held fixed in the graph (empty for full Bayes).
    marginalized : bool
        Whether the sampler ran on the model with the group effects
        integrated out (their draws then come from the exact conditional).
    integrate : {None, "laplace"}
        ``"laplace"``: an approximate posterior, the group effects integrated
        out by the Laplace approximation and drawn from the Gaussian
        approximation at their conditional mode (see
        :mod:`hiermodels.bayes.laplace_density`).
    route : SamplingRoute
        The engine that sampled (:func:`~hiermodels.bayes.route.choose_route`),
        also the ``"route"`` attribute of the ``posterior`` group.
    """

    idata: xr.DataTree
    design: Design
    priors: Priors
    sampler: str = "nutpie"
    fixed_values: Mapping[str, Any] = field(default_factory=dict)
    marginalized: bool = False
    integrate: str | None = None
    route: SamplingRoute = SamplingRoute.FULL_GRAPH

    # ----------------------------------------------------------- posterior
    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws as an :class:`xarray.Dataset`."""
        return self.idata["posterior"].to_dataset()

    @property
    def _data(self) -> LinearPredictorData:
        return LinearPredictorData.from_design(self.design)

    @property
    def fixef(self) -> pd.Series:
        """Posterior means of the fixed effects, indexed by coefficient name."""
        names = list(self.design.fixed_names)
        means = self.posterior["beta"].mean(("chain", "draw")).sel(coef=names)
        return pd.Series(means.values, index=names, name="Estimate")

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Posterior means of the random effects per grouping factor: levels × terms."""
        out: dict[str, pd.DataFrame] = {}
        for layout in self.design.factors:
            g = layout.group
            means = self.posterior[effects_name(g)].mean(("chain", "draw"))
            values = means.sel({g: list(layout.levels), term_dim(g): list(layout.terms)})
            out[g] = pd.DataFrame(
                values.transpose(g, term_dim(g)).values,
                index=pd.Index(list(layout.levels), name=g),
                columns=list(layout.terms),
            )
        return out

    @property
    def varcorr(self) -> pd.DataFrame:
        """Posterior means of the variance components in ``MixedFit.varcorr``'s layout.

        Columns ``grp, var1, var2, vcov, sdcor``: per SD row the means of the
        variance and of the SD, per correlation row the means of the
        covariance and of the correlation, then the residual (``sigma``).
        """
        post = self.posterior
        rows: list[dict[str, object]] = []
        for layout in self.design.factors:
            g = layout.group
            for term in layout.terms:
                sd = post[sd_name(g, term)]
                rows.append(
                    {
                        "grp": g,
                        "var1": term,
                        "var2": None,
                        "vcov": float((sd**2).mean()),
                        "sdcor": float(sd.mean()),
                    }
                )
            for i, j, t1, t2 in _correlated_pairs(layout):
                corr = post[correlation_name(g)].isel(
                    {term_dim(g): i, term_pair_dim(g): j}, drop=True
                )
                cov = corr * post[sd_name(g, t1)] * post[sd_name(g, t2)]
                rows.append(
                    {
                        "grp": g,
                        "var1": t1,
                        "var2": t2,
                        "vcov": float(cov.mean()),
                        "sdcor": float(corr.mean()),
                    }
                )
        if "sigma" in post:
            sigma = post["sigma"]
            rows.append(
                {
                    "grp": "Residual",
                    "var1": None,
                    "var2": None,
                    "vcov": float((sigma**2).mean()),
                    "sdcor": float(sigma.mean()),
                }
            )
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    def fixef_summary(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Fixed effects: one row per coefficient (index ``coef``).

        Parameters
        ----------
        ci_prob : float
            Probability of the highest-density intervals, in (0, 1); the
            interval used to be a fixed 94% (``HDI_PROB``).

        Returns
        -------
        pandas.DataFrame
            Columns ``estimate`` (posterior mean), ``se`` (posterior SD),
            ``lower, upper`` (HDI), ``median, ess_bulk, r_hat``; these
            replace the earlier ``mean, sd, hdi_low, hdi_high``. ``attrs``:
            ``interval`` ``"hdi"`` and ``ci_prob``.
        """
        ci_prob = check_ci_prob(ci_prob)
        return summarise_draws(self.posterior["beta"], ci_prob)

    def varcorr_summary(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Variance components in lme4's ``VarCorr`` layout, on the SD/correlation scale.

        Parameters
        ----------
        ci_prob : float
            Probability of the highest-density intervals, in (0, 1); the
            interval used to be a fixed 94% (``HDI_PROB``).

        Returns
        -------
        pandas.DataFrame
            Columns ``grp, var1, var2, name`` then the statistics of
            :meth:`fixef_summary`. One row per ``sd_<group>__<term>`` (``var2``
            empty), per correlation within a correlated block, then
            ``sigma`` (``grp`` "Residual") or ``alpha`` (``grp`` "Dispersion").
        """
        ci_prob = check_ci_prob(ci_prob)
        post = self.posterior
        rows: list[tuple[str, str, str, str]] = []
        series: list[xr.DataArray] = []
        for layout in self.design.factors:
            g = layout.group
            for term in layout.terms:
                rows.append((g, term, "", sd_name(g, term)))
                series.append(post[sd_name(g, term)])
            for i, j, t1, t2 in _correlated_pairs(layout):
                rows.append((g, t1, t2, correlation_label(g, t1, t2)))
                series.append(
                    post[correlation_name(g)].isel({term_dim(g): i, term_pair_dim(g): j}, drop=True)
                )
        for name, grp in (("sigma", "Residual"), ("alpha", "Dispersion")):
            if name in post:
                rows.append((grp, "", "", name))
                series.append(post[name])
        labels = [r[3] for r in rows]
        stacked = xr.concat(series, dim=xr.DataArray(labels, dims="name"), coords="minimal")
        stats = summarise_draws(stacked.transpose("chain", "draw", "name"), ci_prob)
        table = stats.reset_index()
        table.insert(0, "grp", [r[0] for r in rows])
        table.insert(1, "var1", [r[1] for r in rows])
        table.insert(2, "var2", [r[2] for r in rows])
        table.attrs.update(stats.attrs)
        return table

    def ranef_summary(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Random effects in the long layout of ``MixedFit.ranef_summary``.

        Parameters
        ----------
        ci_prob : float
            Probability of the highest-density intervals, in (0, 1); the
            interval used to be a fixed 94% (``HDI_PROB``).

        Returns
        -------
        pandas.DataFrame
            Columns ``grpvar, term, grp, estimate, se, lower, upper, median,
            ess_bulk, r_hat``; one row per group, term and level, in the
            order group, term, level. ``attrs``: ``interval`` ``"hdi"`` and
            ``ci_prob``.
        """
        ci_prob = check_ci_prob(ci_prob)
        factors = self.design.factors
        if not factors:
            result = pd.DataFrame(columns=[*LONG_KEYS, *_STAT_COLUMNS])
        else:
            parts = []
            for layout in factors:
                u = self.posterior[effects_name(layout.group)]
                for term in layout.terms:
                    draws = u.sel({term_dim(layout.group): term}, drop=True)
                    parts.append(summarise_draws(draws, ci_prob))
            stats = pd.concat(parts, ignore_index=True)
            result = pd.concat([long_index(factors), stats], axis=1)
        result.attrs.update(interval="hdi", ci_prob=ci_prob)
        return result

    # --------------------------------------------------------- diagnostics
    def diagnostics(self, *, warn: bool = True, stacklevel: int = 2) -> Diagnostics:
        """Divergences, worst r_hat and worst bulk ESS over every sampled quantity.

        Quantities held fixed (constant draws) and the constant diagonal of
        the correlation matrices are left out.

        Parameters
        ----------
        warn : bool
            Issue a :class:`~hiermodels.errors.SamplingWarning` with the
            message of :func:`sampling_problem` when the draws fail its
            checks (any divergence, r_hat > :data:`RHAT_WARN`, bulk ESS below
            half of :data:`ESS_MIN_PER_CHAIN` per chain). ``ok`` holds the
            stricter recommended thresholds.
        stacklevel : int
            Passed to :func:`warnings.warn`: the frame the warning points at.

        Returns
        -------
        Diagnostics
        """
        post = self.posterior
        divergences = int(self.idata["sample_stats"]["diverging"].sum())
        worst_rhat, worst_ess = (-np.inf, ""), (np.inf, "")
        names = list(post.data_vars)
        columns = [
            post[name]
            .transpose("chain", "draw", ...)
            .values.reshape(post.sizes["chain"], post.sizes["draw"], -1)
            for name in names
        ]
        # every quantity at once: thousands of group effects cost one pass, not one each
        stacked = np.concatenate(columns, axis=2) if columns else np.zeros((1, 1, 0))
        all_rhat, all_ess = rank_diagnostics(stacked)
        constant = stacked.std(axis=(0, 1)) == 0
        all_rhat[constant] = np.nan
        all_ess[constant] = np.nan
        start = 0
        for name, column in zip(names, columns, strict=True):
            stop = start + column.shape[2]
            r, e = all_rhat[start:stop], all_ess[start:stop]
            start = stop
            if np.all(np.isnan(r)):
                continue
            i, k = int(np.nanargmax(r)), int(np.nanargmin(e))
            if r[i] > worst_rhat[0]:
                worst_rhat = (float(r[i]), _label(post[name], i))
            if e[k] < worst_ess[0]:
                worst_ess = (float(e[k]), _label(post[name], k))
        ess_min = float(min(ESS_MIN, ESS_MIN_PER_CHAIN * post.sizes["chain"]))
        # written so that a NaN r_hat or ESS (draws that never move) fails the check
        ok = divergences == 0 and worst_rhat[0] <= RHAT_MAX and worst_ess[0] >= ess_min
        result = Diagnostics(
            divergences, worst_rhat[0], worst_ess[0], worst_rhat[1], worst_ess[1], ok, ess_min
        )
        message = result.problem
        if warn and message is not None:
            warnings.warn(message, SamplingWarning, stacklevel=stacklevel)
        return result

    # ------------------------------------------------- predictive checks
    def log_likelihood(self) -> xr.DataArray:
        """Pointwise log-likelihood ``(chain, draw, obs)``, from the idata when stored."""
        if "log_likelihood" in self.idata.children:
            return self.idata.children["log_likelihood"].dataset[OBSERVED]
        return pointwise_log_likelihood(self.posterior, self._data)

    def loo(self, **kwargs: Any) -> Any:
        """PSIS-LOO cross-validation (``arviz_stats.loo``).

        Parameters
        ----------
        **kwargs
            Passed to :func:`arviz_stats.loo` (e.g. ``pointwise=True``).

        Returns
        -------
        arviz_stats.ELPDData
        """
        tree = xr.DataTree.from_dict(
            {
                "posterior": self.posterior,
                "log_likelihood": xr.Dataset({OBSERVED: self.log_likelihood()}),
            }
        )
        return azs.loo(tree, **kwargs)

    def posterior_predictive(self, random_seed: int | None = None) -> xr.DataArray:
        """One replicate of the response per posterior draw ``(chain, draw, obs)``.

        Taken from the idata when ``fit_bayes(..., posterior_predictive=True)``
        stored it and no seed is given; otherwise drawn afresh.
        """
        if random_seed is None and "posterior_predictive" in self.idata.children:
            return self.idata.children["posterior_predictive"].dataset[OBSERVED]
        rng = np.random.default_rng(random_seed)
        return posterior_predictive_draws(self.posterior, self._data, rng)

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        *,
        new_levels: Literal["population", "error"] = "population",
        scale: Literal["response", "link"] = "response",
        draws: bool = False,
        offset: ArrayLike | str | None = None,
        kind: Literal["mean", "link"] | None = None,
    ) -> pd.Series | xr.DataArray:
        """Posterior predictions of the mean response (or linear predictor).

        Parameters
        ----------
        newdata : pandas.DataFrame, optional
            Covariates and grouping columns of the new rows; ``None`` for the
            fitted data.
        new_levels : {"population", "error"}
            Levels not seen in the fit get ``u = 0`` or raise ``ValueError``.
        scale : {"response", "link"}
            Inverse-link scale (a probability for bernoulli/binomial) or link scale.
        draws : bool
            Return every posterior draw instead of the posterior mean.
        offset : array_like or str, optional
            Offset values or column (required when the model has one).
        kind : {"mean", "link"}, optional
            Deprecated spelling of ``scale``: ``"mean"`` is ``"response"``.

        Returns
        -------
        pandas.Series or xarray.DataArray
            The posterior mean per row (index the rows of ``newdata``), or
            with ``draws=True`` the draws ``(chain, draw, obs)``.
        """
        if kind is not None:
            if scale != "response":
                raise TypeError("pass scale= only; kind= is its deprecated spelling")
            renamed_keyword("kind", "scale")
            if kind not in ("mean", "link"):
                raise ValueError(f"kind must be 'mean' or 'link', got {kind!r}")
            scale = "response" if kind == "mean" else "link"
        if scale not in ("response", "link"):
            raise ValueError(f"scale must be 'response' or 'link', got {scale!r}")
        if newdata is None:
            data = self._data
        else:
            data = prediction_data(self.design, newdata, new_levels=new_levels, offset=offset)
        eta = linear_predictor(self.posterior, data)
        values = eta if scale == "link" else eta.copy(data=mean_response(eta.values, data.family))
        if draws:
            return values
        index = newdata.index if newdata is not None else self.design.rows
        return pd.Series(values.mean(("chain", "draw")).values, index=index, name="predicted")

    def __repr__(self) -> str:
        post = self.posterior
        return (
            f"BayesFit({self.design.spec.formula!r}, family={self.design.family.name}/"
            f"{self.design.family.link}, sampler={self.sampler}, "
            + ("integrate=laplace (approximate), " if self.integrate == "laplace" else "")
            + f"chains={post.sizes['chain']}, draws={post.sizes['draw']})"
        )


def _correlated_pairs(layout: GroupTerms) -> list[tuple[int, int, str, str]]:
    """``(i, j, term_i, term_j)`` of every correlation of a factor's correlated blocks."""
    return [
        (i, j, layout.terms[i], layout.terms[j])
        for a, b in layout.correlated_spans
        for i in range(a, b)
        for j in range(i + 1, b)
    ]


def _label(values: xr.DataArray, flat_index: int) -> str:
    """``name[coord,coord]`` of the flat position ``flat_index`` of a variable."""
    dims = [d for d in values.dims if d not in ("chain", "draw")]
    if not dims:
        return str(values.name)
    shape = [values.sizes[d] for d in dims]
    idx = np.unravel_index(flat_index, shape)
    coords = [str(values[d].values[i]) for d, i in zip(dims, idx, strict=True)]
    return f"{values.name}[{','.join(coords)}]"
