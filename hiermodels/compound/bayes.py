"""Full Bayes for the compound models: running NUTS and the result :class:`CompoundBayesFit`.

PyMC, PyTensor and ArviZ are imported when a model is sampled or summarised,
not when the package is imported.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import xarray as xr

from hiermodels.intervals import check_ci_prob, summarise_draws

if TYPE_CHECKING:
    import pymc as pm

__all__ = ["CompoundBayesFit", "posterior_summary", "run_nuts"]

SUMMARY_COLUMNS: tuple[str, ...] = ("estimate", "se", "lower", "upper", "ess_bulk", "r_hat")


def run_nuts(
    model: pm.Model,
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    sampler: str,
    cores: int,
) -> xr.DataTree:
    """Run NUTS on ``model`` without a progress bar, with seed-exact compilation.

    Parameters
    ----------
    model : pymc.Model
        The model.
    draws, tune, chains : int
        Sampler settings.
    random_seed : int or None
        Seed for reproducibility.
    sampler : {"nutpie", "pymc"}
        NUTS implementation.
    cores : int
        Number of chains run in parallel.

    Returns
    -------
    xarray.DataTree
        The posterior and sampler statistics.
    """
    if sampler not in ("nutpie", "pymc"):
        raise ValueError(f"sampler must be 'nutpie' or 'pymc', got {sampler!r}")
    import pymc as pm

    from hiermodels.bayes.samplers import reproducible_compilation

    # without fast-math, so that the draws do not depend on the state of PyTensor's compile cache
    with model, reproducible_compilation():
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=random_seed,
            nuts_sampler=sampler,
            progressbar=False,
        )


def posterior_summary(draws: xr.DataArray, ci_prob: float) -> pd.DataFrame:
    """Posterior mean, sd, equal-tailed interval, bulk ESS and r_hat of each item
    (:func:`~hiermodels.intervals.summarise_draws` without the median).

    Parameters
    ----------
    draws : xarray.DataArray
        Dims ``(chain, draw)`` and at most one more, the items.
    ci_prob : float
        Probability of the equal-tailed intervals.

    Returns
    -------
    pandas.DataFrame
        One row per item (indexed by it; a single row for scalar draws);
        columns ``estimate`` (mean), ``se`` (sd), ``lower``, ``upper``,
        ``ess_bulk``, ``r_hat``.
    """
    return summarise_draws(draws, ci_prob, interval="equal-tailed").drop(columns="median")


@dataclass(frozen=True, eq=False)
class CompoundBayesFit:
    """The full-Bayes fit of a compound model, with the shared result vocabulary.

    For one release, what used to be read from the bare DataTree this result
    replaces (``result["posterior"]``, ``result.sample_stats``, ...) still
    works, with a ``DeprecationWarning`` pointing to :attr:`datatree`.

    Attributes
    ----------
    datatree : xarray.DataTree
        The sampler's output: ``posterior`` (hyperparameters and the per-unit
        ``theta``, dim ``unit``) and ``sample_stats``.
    unit_name : str
        Name of the unit labels (``grpvar`` in the summaries).
    term : str
        Name of the per-unit parameter (``theta``, ``p`` or ``lambda``).
    prior_sd : xarray.DataArray
        Draws ``(chain, draw)`` of the prior's standard deviation, the spread
        of the units' parameters.
    """

    datatree: xr.DataTree
    unit_name: str
    term: str
    prior_sd: xr.DataArray

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior draws as an :class:`xarray.Dataset`."""
        return self.datatree["posterior"].to_dataset()

    @property
    def units(self) -> tuple[str, ...]:
        """Unit labels, in the model's order."""
        return tuple(str(u) for u in self.posterior["theta"].coords["unit"].values)

    def ranef_summary(self, ci_prob: float | None = None) -> pd.DataFrame:
        """Posterior of each unit's parameter in the long layout.

        Parameters
        ----------
        ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
            Probability of the equal-tailed intervals.

        Returns
        -------
        pandas.DataFrame
            Columns ``grpvar``, ``term``, ``grp``, ``estimate`` (posterior
            mean), ``se`` (posterior sd), ``lower``, ``upper``, ``ess_bulk``,
            ``r_hat``; ``attrs`` hold ``interval`` ("equal-tailed") and ``ci_prob``.
        """
        prob = check_ci_prob(ci_prob)
        table = posterior_summary(self.posterior["theta"], prob).reset_index(drop=True)
        table.insert(0, "grpvar", self.unit_name)
        table.insert(1, "term", self.term)
        table.insert(2, "grp", list(self.units))
        return _labelled(table, prob)

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Posterior means of the units' parameters, keyed by the unit labels' name.

        Returns
        -------
        dict of str to pandas.DataFrame
            One frame: index the units, one column named :attr:`term`.
        """
        means = self.posterior["theta"].mean(("chain", "draw")).to_numpy()
        index = pd.Index(self.units, name=self.unit_name)
        return {self.unit_name: pd.DataFrame({self.term: means}, index=index)}

    @property
    def fixef(self) -> pd.Series:
        """Posterior mean of the prior mean ``mu``, indexed ``"mu"``."""
        return pd.Series({"mu": float(self.posterior["mu"].mean())}, name="estimate")

    def fixef_summary(self, ci_prob: float | None = None) -> pd.DataFrame:
        """Posterior of the prior mean ``mu``.

        Parameters
        ----------
        ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
            Probability of the equal-tailed interval.

        Returns
        -------
        pandas.DataFrame
            Index ``coef`` (``"mu"``); columns as :meth:`ranef_summary` from
            ``estimate`` on.
        """
        prob = check_ci_prob(ci_prob)
        table = posterior_summary(self.posterior["mu"], prob)
        table.index = pd.Index(["mu"], name="coef")
        return _labelled(table, prob)

    @property
    def varcorr(self) -> pd.DataFrame:
        """Posterior means of the between-unit variance and SD, lme4's long layout.

        Returns
        -------
        pandas.DataFrame
            One row: ``grpvar``, ``var1`` (the term), ``var2`` (None),
            ``vcov`` (mean of the prior variance), ``sdcor`` (mean of the prior SD).
        """
        return pd.DataFrame(
            {
                "grpvar": [self.unit_name],
                "var1": [self.term],
                "var2": [None],
                "vcov": [float((self.prior_sd**2).mean())],
                "sdcor": [float(self.prior_sd.mean())],
            }
        )

    def varcorr_summary(self, ci_prob: float | None = None) -> pd.DataFrame:
        """Posterior of the prior SD (the between-unit spread).

        Parameters
        ----------
        ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
            Probability of the equal-tailed interval.

        Returns
        -------
        pandas.DataFrame
            One row: ``grpvar``, ``var1``, ``var2``, then the columns of
            :meth:`ranef_summary` from ``estimate`` on.
        """
        prob = check_ci_prob(ci_prob)
        table = posterior_summary(self.prior_sd, prob).reset_index(drop=True)
        table.insert(0, "grpvar", self.unit_name)
        table.insert(1, "var1", self.term)
        table.insert(2, "var2", None)
        return _labelled(table, prob)

    def __getitem__(self, key: str) -> Any:
        """Deprecated: index :attr:`datatree` instead."""
        warnings.warn(
            f"indexing the full-Bayes result is deprecated and will be removed in the next "
            f"release; use result.datatree[{key!r}] (or result.posterior)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.datatree[key]

    def __getattr__(self, name: str) -> Any:
        """Deprecated: read DataTree attributes from :attr:`datatree` instead."""
        if name.startswith("_") or name == "datatree":
            raise AttributeError(name)
        tree = self.datatree
        if not hasattr(tree, name):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        warnings.warn(
            f"result.{name} is deprecated and will be removed in the next release; "
            f"use result.datatree.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(tree, name)


def _labelled(table: pd.DataFrame, ci_prob: float) -> pd.DataFrame:
    table.attrs.update(interval="equal-tailed", ci_prob=ci_prob)
    return table
