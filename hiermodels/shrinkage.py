"""Side-by-side shrinkage: no pooling, empirical Bayes, full Bayes, complete pooling.

:func:`compare_shrinkage` lines up, for every grouping factor × term ×
level, the per-group estimate without pooling, the EB conditional (plain
and Kass–Steffey-corrected intervals), the full-Bayes posterior, and the
complete-pooling value, with how far each estimate moved towards the
population; and it puts each hyperparameter's marginal MLE beside its
posterior. Everything is on the scale of the random effects ``u`` (the
deviation of a group from the population value, which is 0); the
population coefficient is in ``population_coef`` for plotting group-level
coefficients ``population_coef + u``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from hiermodels.design.factors import long_index
from hiermodels.eb.fit import EBFit
from hiermodels.intervals import check_ci_prob, either_keyword, summarise_draws
from hiermodels.mle.results import MixedFit
from hiermodels.names import (
    DEFAULT_CI_PROB,
    correlation_label,
    correlation_name,
    effects_name,
    sd_name,
    term_dim,
    term_pair_dim,
)
from hiermodels.no_pooling import no_pooling_estimates

__all__ = ["ShrinkageComparison", "compare_shrinkage", "eb_summary", "hyperparameter_table"]

_KEYS = ["grpvar", "term", "grp"]


@dataclass(frozen=True, eq=False)
class ShrinkageComparison:
    """The comparison as a tidy table and an xarray Dataset.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per grouping factor × term × level (columns described in
        :func:`compare_shrinkage`).
    hyperparameters : pandas.DataFrame
        One row per hyperparameter: MLE beside the posterior.
    ci_prob : float
        Probability of the intervals.
    """

    table: pd.DataFrame
    hyperparameters: pd.DataFrame
    ci_prob: float

    @property
    def interval(self) -> float:
        """Deprecated name of :attr:`ci_prob`."""
        warnings.warn(
            "ShrinkageComparison.interval is deprecated and will be removed in the next "
            "release; use ShrinkageComparison.ci_prob instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.ci_prob

    @property
    def dataset(self) -> xr.Dataset:
        """The table as a Dataset: one variable per column, per grouping factor."""
        return self.to_xarray()

    def to_xarray(self) -> xr.Dataset:
        """Variables ``<column>_<group>`` with dims ``(<group>, <group>__term)``."""
        data = {}
        for group, frame in self.table.groupby("grpvar", sort=False):
            wide = frame.set_index(["grp", "term"])
            levels = list(dict.fromkeys(frame["grp"]))
            terms = list(dict.fromkeys(frame["term"]))
            for column in wide.columns:
                if column == "grpvar" or not pd.api.types.is_numeric_dtype(wide[column]):
                    continue
                values = wide[column].unstack("term").reindex(index=levels, columns=terms)
                data[f"{column}_{group}"] = xr.DataArray(
                    values.to_numpy(dtype=float),
                    dims=(group, term_dim(group)),
                    coords={group: levels, term_dim(group): terms},
                )
        return xr.Dataset(data, attrs={"ci_prob": self.ci_prob})

    def groups(self, grpvar: str, term: str | None = None) -> pd.DataFrame:
        """Rows of one grouping factor (and term)."""
        mask = self.table["grpvar"] == grpvar
        if term is not None:
            mask &= self.table["term"] == term
        if not mask.any():
            raise KeyError(
                f"no rows for grouping factor {grpvar!r}" + (f" and term {term!r}" if term else "")
            )
        return self.table[mask]


def _bayes_ranef(posterior: Any, mle: MixedFit, ci_prob: float) -> pd.DataFrame:
    """Posterior mean, SD and HDI of every random effect, in the comparison's layout."""
    parts = []
    for block in mle.layout.blocks:
        group = block.group
        draws = posterior[effects_name(group)]
        for term in block.terms:
            values = draws.sel({term_dim(group): term}, drop=True).sel({group: list(block.levels)})
            parts.append(summarise_draws(values.transpose("chain", "draw", group), ci_prob))
    stats = pd.concat(parts, ignore_index=True)
    return long_index(mle.layout.blocks).assign(
        bayes_mean=stats["estimate"].to_numpy(),
        bayes_sd=stats["se"].to_numpy(),
        bayes_low=stats["lower"].to_numpy(),
        bayes_high=stats["upper"].to_numpy(),
    )


def hyperparameter_table(
    mle: MixedFit,
    posterior: Any,
    ci_prob: float = DEFAULT_CI_PROB,
    *,
    interval: float | None = None,
) -> pd.DataFrame:
    """Every SD, correlation and σ: the MLE beside the posterior.

    Parameters
    ----------
    mle : MixedFit
        The marginal-likelihood fit.
    posterior : xarray.Dataset
        Posterior draws with the graph's names (``sigma``, ``sd_<g>__<t>``,
        ``corr_<g>``).
    ci_prob : float
        HDI probability.
    interval : float, optional
        Deprecated spelling of ``ci_prob``.

    Returns
    -------
    pandas.DataFrame
        Columns ``parameter, mle, mean, median, hdi_low, hdi_high,
        mle_quantile`` (the fraction of posterior draws at or below the MLE).
    """
    ci_prob = check_ci_prob(
        either_keyword(ci_prob, interval, new="ci_prob", old="interval", default=DEFAULT_CI_PROB)
    )
    rows = []
    varcorr = mle.varcorr
    for row in varcorr.itertuples():
        if row.grp == "Residual":
            name, draws = "sigma", posterior["sigma"]
        elif isinstance(row.var2, str):
            name = correlation_label(row.grp, row.var1, row.var2)
            draws = posterior[correlation_name(row.grp)].sel(
                {term_dim(row.grp): row.var1, term_pair_dim(row.grp): row.var2}
            )
        else:
            name, draws = sd_name(row.grp, row.var1), posterior[sd_name(row.grp, row.var1)]
        stats = summarise_draws(
            draws.drop_vars(draws.coords.keys() - {"chain", "draw"})
            .expand_dims(parameter=[name])
            .transpose("chain", "draw", "parameter"),
            ci_prob,
        ).iloc[0]
        values = np.asarray(draws).ravel()
        rows.append(
            {
                "parameter": name,
                "mle": float(row.sdcor),
                "mean": float(stats["estimate"]),
                "median": float(stats["median"]),
                "hdi_low": float(stats["lower"]),
                "hdi_high": float(stats["upper"]),
                "mle_quantile": float(np.mean(values <= row.sdcor)),
            }
        )
    return pd.DataFrame(rows)


def eb_summary(
    eb_fit: EBFit, ci_prob: float = DEFAULT_CI_PROB, *, interval: float | None = None
) -> pd.DataFrame:
    """``EBFit.ranef_summary`` with the comparison's ``eb_*`` column names.

    Parameters
    ----------
    eb_fit : EBFit
        The empirical-Bayes fit.
    ci_prob : float
        Probability of the intervals.
    interval : float, optional
        Deprecated spelling of ``ci_prob``.

    Returns
    -------
    pandas.DataFrame
    """
    ci_prob = check_ci_prob(
        either_keyword(ci_prob, interval, new="ci_prob", old="interval", default=DEFAULT_CI_PROB)
    )
    return eb_fit.ranef_summary(ci_prob=ci_prob).rename(
        columns={
            "estimate": "eb_mean",
            "se_plugin": "eb_sd",
            "lower_plugin": "eb_low",
            "upper_plugin": "eb_high",
            "se": "eb_sd_corrected",
            "lower": "eb_low_corrected",
            "upper": "eb_high_corrected",
            "se_bootstrap": "eb_sd_bootstrap",
            "lower_bootstrap": "eb_low_bootstrap",
            "upper_bootstrap": "eb_high_bootstrap",
        }
    )


def compare_shrinkage(
    eb_fit: EBFit,
    bayes_fit: Any,
    ci_prob: float = DEFAULT_CI_PROB,
    *,
    interval: float | None = None,
) -> ShrinkageComparison:
    """Compare empirical-Bayes and full-Bayes shrinkage group by group.

    Parameters
    ----------
    eb_fit : EBFit
        From ``Model.fit_eb``.
    bayes_fit : BayesFit
        From ``Model.fit_bayes`` on the same model and data.
    ci_prob : float
        Probability of every interval (HDI for posteriors, central for the
        Gaussian EB conditionals).
    interval : float, optional
        Deprecated spelling of ``ci_prob``.

    Returns
    -------
    ShrinkageComparison
        ``table`` columns: ``grpvar, term, grp, n_obs``; ``no_pooling`` and
        ``no_pooling_estimable`` (per-group least squares or per-group MLE
        with everything else at the fitted values; not estimable when the
        group's data cannot identify it, e.g. all-zero counts);
        ``complete_pooling`` (0) and ``population_coef``; ``eb_mean, eb_sd,
        eb_low, eb_high``, ``eb_sd_corrected, eb_low_corrected,
        eb_high_corrected``; for an EB fit with bootstrap conditionals
        (``interval="bootstrap"``) the Laird–Louis ``eb_sd_bootstrap,
        eb_low_bootstrap, eb_high_bootstrap``; ``bayes_mean, bayes_sd, bayes_low, bayes_high``;
        ``eb_shrinkage`` and ``bayes_shrinkage`` (share of the way from the
        no-pooling estimate to complete pooling: 0 none, 1 complete);
        ``width_ratio`` (full-Bayes over plain EB interval width; infinite
        where EB collapsed to a point) and ``eb_boundary``.
    """
    ci_prob = check_ci_prob(
        either_keyword(ci_prob, interval, new="ci_prob", old="interval", default=DEFAULT_CI_PROB)
    )
    mle = eb_fit.mle
    design = bayes_fit.design
    if design.spec.formula != mle.design.spec.formula or design.nobs != mle.design.nobs:
        raise ValueError(
            "the EB and full-Bayes fits are of different models or data: "
            f"{mle.design.spec.formula!r} ({mle.design.nobs} rows) vs "
            f"{design.spec.formula!r} ({design.nobs} rows)"
        )
    eb = eb_summary(eb_fit, ci_prob)
    eb = eb.drop(columns=[c for c in ("ess_bulk", "r_hat") if c in eb.columns])
    fb = _bayes_ranef(bayes_fit.idata.posterior, mle, ci_prob)
    nopool = no_pooling_estimates(mle)
    table = nopool.merge(eb, on=_KEYS, validate="one_to_one").merge(
        fb, on=_KEYS, validate="one_to_one"
    )
    table["complete_pooling"] = 0.0
    distance = table["no_pooling"] - table["complete_pooling"]
    with np.errstate(divide="ignore", invalid="ignore"):
        table["eb_shrinkage"] = 1.0 - (table["eb_mean"] - table["complete_pooling"]) / distance
        table["bayes_shrinkage"] = (
            1.0 - (table["bayes_mean"] - table["complete_pooling"]) / distance
        )
        table["width_ratio"] = (table["bayes_high"] - table["bayes_low"]) / (
            table["eb_high"] - table["eb_low"]
        )
    boundary = set(eb_fit.boundary)
    table["eb_boundary"] = [
        sd_name(g, t) in boundary for g, t in zip(table["grpvar"], table["term"], strict=True)
    ]
    hyper = hyperparameter_table(mle, bayes_fit.idata.posterior, ci_prob)
    return ShrinkageComparison(table=table, hyperparameters=hyper, ci_prob=ci_prob)
