"""What the compound models share: the fits' summaries and the models' full Bayes.

:class:`CompoundFit` gives every empirical-Bayes fit the shared result
vocabulary (``ranef_summary``, ``fixef``, ``varcorr``, ``intervals``,
``to_frame``) from a few per-model pieces; :class:`CompoundModel` gives every
model ``fit_bayes`` and ``compare``.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray
from scipy import special, stats

from hiermodels._checks import check_random_seed
from hiermodels.compound.bayes import CompoundBayesFit, run_nuts
from hiermodels.compound.comparison import comparison_frame
from hiermodels.compound.hyperpriors import HyperPriorSpec
from hiermodels.compound.intervals import EBIntervals
from hiermodels.intervals import check_ci_prob, either_keyword

if TYPE_CHECKING:
    import pymc as pm

__all__ = ["CompoundFit", "CompoundModel", "HyperEstimate", "warn_all"]

FloatArray = NDArray[np.float64]


def warn_all(messages: Sequence[str]) -> None:
    """Issue each message as a :class:`UserWarning`.

    Parameters
    ----------
    messages : sequence of str
        Plain-language remarks (boundary fits, units without data, ...).
    """
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=3)


@dataclass(frozen=True)
class HyperEstimate:
    """A hyperparameter estimate with its standard error on a link scale.

    Attributes
    ----------
    value : float
        The estimate.
    link : {"identity", "log", "logit"}
        Scale on which the estimate is close to normal; Wald intervals are
        formed there and mapped back, so they respect the parameter's range.
    link_se : float or None
        Standard error on the link scale (delta method from the marginal
        likelihood's information); ``None`` where there is none (boundary
        fits, method of moments, a given value).
    """

    value: float
    link: Literal["identity", "log", "logit"]
    link_se: float | None

    def summary(self, ci_prob: float) -> dict[str, float]:
        """``estimate``, ``se``, ``lower``, ``upper`` (NaN without a standard error)."""
        if self.link_se is None:
            return {"estimate": self.value, "se": np.nan, "lower": np.nan, "upper": np.nan}
        z = float(stats.norm.ppf(0.5 + ci_prob / 2.0))
        inverse: Callable[[float], float]
        if self.link == "identity":
            eta, inverse, slope = self.value, float, 1.0
        elif self.link == "log":
            eta, inverse, slope = float(np.log(self.value)), np.exp, self.value
        else:
            eta, inverse = float(special.logit(self.value)), special.expit
            slope = self.value * (1.0 - self.value)
        return {
            "estimate": self.value,
            "se": slope * self.link_se,
            "lower": float(inverse(eta - z * self.link_se)),
            "upper": float(inverse(eta + z * self.link_se)),
        }


class CompoundFit(ABC):
    """Summaries shared by the empirical-Bayes fits of the compound models.

    A fit provides its unit labels, the plug-in posterior means and sds, the
    central interval of each unit's plug-in posterior, its data columns, and
    the estimates of the prior mean and SD.
    """

    #: Name of the per-unit parameter, the ``term`` of the long summaries.
    term: ClassVar[str]
    #: :attr:`EBIntervals.method` of :meth:`intervals`.
    interval_method: ClassVar[str]

    units: tuple[str, ...]
    unit_name: str
    boundary: bool

    if TYPE_CHECKING:
        # fields of one fit, properties derived from the prior of another: read-only here

        @property
        def shrinkage(self) -> FloatArray:
            """Each unit's weight on the prior mean."""

        @property
        def post_mean(self) -> FloatArray:
            """Each unit's plug-in posterior mean."""

        @property
        def post_sd(self) -> FloatArray:
            """Each unit's plug-in posterior standard deviation."""

    @abstractmethod
    def _central_bounds(self, ci_prob: float) -> tuple[FloatArray, FloatArray]:
        """End points of each unit's central plug-in posterior interval."""

    @abstractmethod
    def _data_columns(self) -> dict[str, NDArray[Any]]:
        """The data, as the first columns of :meth:`to_frame`."""

    def _posterior_parameters(self) -> dict[str, FloatArray]:
        """Parameters of each unit's plug-in posterior, for :meth:`to_frame`."""
        return {}

    @property
    @abstractmethod
    def prior_mean_estimate(self) -> HyperEstimate:
        """The prior mean ``mu`` with its standard error."""

    @property
    @abstractmethod
    def prior_sd_estimate(self) -> HyperEstimate:
        """The prior SD (the between-unit spread) with its standard error."""

    def intervals(self, ci_prob: float | None = None, *, level: float | None = None) -> EBIntervals:
        """Central intervals of each unit's plug-in posterior.

        They ignore the uncertainty of the estimated prior (for the normal
        model see :meth:`NormalNormal.morris_intervals` and
        :meth:`NormalNormal.bootstrap_intervals`); at the complete-pooling
        boundary they have zero width.

        Parameters
        ----------
        ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
            Coverage.
        level : float, optional
            Deprecated spelling of ``ci_prob``.

        Returns
        -------
        EBIntervals
            With ``method`` :attr:`interval_method`.
        """
        prob = check_ci_prob(either_keyword(ci_prob, level, new="ci_prob", old="level"))
        lower, upper = self._central_bounds(prob)
        return EBIntervals(
            units=self.units,
            mean=self.post_mean,
            sd=self.post_sd,
            lower=lower,
            upper=upper,
            ci_prob=prob,
            method=self.interval_method,
        )

    def to_frame(self) -> pd.DataFrame:
        """Per-unit table of data, shrinkage and posterior summaries.

        Returns
        -------
        pandas.DataFrame
            Index ``unit``; the data columns, ``shrinkage``, the parameters
            of the plug-in posterior (beta–binomial, Poisson–gamma), then
            ``post_mean`` and ``post_sd``.
        """
        columns = {
            **self._data_columns(),
            "shrinkage": self.shrinkage,
            **self._posterior_parameters(),
            "post_mean": self.post_mean,
            "post_sd": self.post_sd,
        }
        return pd.DataFrame(columns, index=pd.Index(self.units, name="unit"))

    def ranef_summary(self, ci_prob: float | None = None) -> pd.DataFrame:
        """Each unit's plug-in posterior in the long layout of the mixed models.

        Parameters
        ----------
        ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
            Probability of the central intervals.

        Returns
        -------
        pandas.DataFrame
            Columns ``grpvar`` (the unit labels' name), ``term``
            (:attr:`term`), ``grp`` (unit label), ``estimate`` (posterior
            mean), ``se`` (posterior sd), ``lower``, ``upper``; ``attrs``
            hold ``interval`` ("equal-tailed") and ``ci_prob``.
        """
        iv = self.intervals(check_ci_prob(ci_prob))
        frame = pd.DataFrame(
            {
                "grpvar": self.unit_name,
                "term": self.term,
                "grp": list(self.units),
                "estimate": iv.mean,
                "se": iv.sd,
                "lower": iv.lower,
                "upper": iv.upper,
            }
        )
        frame.attrs.update(interval=iv.interval, ci_prob=iv.ci_prob)
        return frame

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """The plug-in posterior means, keyed by the unit labels' name.

        Returns
        -------
        dict of str to pandas.DataFrame
            One frame: index the units, one column named :attr:`term`.
        """
        index = pd.Index(self.units, name=self.unit_name)
        return {self.unit_name: pd.DataFrame({self.term: self.post_mean}, index=index)}

    @property
    def fixef(self) -> pd.Series:
        """The estimated prior mean, indexed ``"mu"``."""
        return pd.Series({"mu": self.prior_mean_estimate.value}, name="estimate")

    def fixef_summary(self, ci_prob: float | None = None) -> pd.DataFrame:
        """The prior mean with its standard error and Wald interval.

        Parameters
        ----------
        ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
            Probability of the interval.

        Returns
        -------
        pandas.DataFrame
            Index ``coef`` (``"mu"``); columns ``estimate``, ``se``, ``lower``,
            ``upper`` (NaN where the fit has no standard error, e.g. the
            method of moments); ``attrs`` hold ``interval`` ("wald", formed
            on the scale of :attr:`HyperEstimate.link`) and ``ci_prob``.
        """
        prob = check_ci_prob(ci_prob)
        frame = pd.DataFrame(
            [self.prior_mean_estimate.summary(prob)], index=pd.Index(["mu"], name="coef")
        )
        frame.attrs.update(interval="wald", ci_prob=prob)
        return frame

    @property
    def varcorr(self) -> pd.DataFrame:
        """The between-unit spread (the prior's variance and SD) in lme4's long layout.

        Returns
        -------
        pandas.DataFrame
            One row: ``grpvar``, ``var1`` (the term), ``var2`` (None),
            ``vcov`` (prior variance), ``sdcor`` (prior SD).
        """
        sd = self.prior_sd_estimate.value
        return pd.DataFrame(
            {
                "grpvar": [self.unit_name],
                "var1": [self.term],
                "var2": [None],
                "vcov": [sd**2],
                "sdcor": [sd],
            }
        )

    def varcorr_summary(self, ci_prob: float | None = None) -> pd.DataFrame:
        """The prior SD with its standard error and Wald interval (log scale).

        Parameters
        ----------
        ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
            Probability of the interval.

        Returns
        -------
        pandas.DataFrame
            One row: ``grpvar``, ``var1``, ``var2``, ``estimate``, ``se``,
            ``lower``, ``upper`` (NaN at the boundary and where the fit has
            no standard error); ``attrs`` hold ``interval`` ("wald") and
            ``ci_prob``.
        """
        prob = check_ci_prob(ci_prob)
        frame = pd.DataFrame(
            [
                {
                    "grpvar": self.unit_name,
                    "var1": self.term,
                    "var2": None,
                    **self.prior_sd_estimate.summary(prob),
                }
            ]
        )
        frame.attrs.update(interval="wald", ci_prob=prob)
        return frame


class CompoundModel(ABC):
    """A compound model: units' parameters drawn from a prior, data given each parameter.

    Subclasses provide the empirical-Bayes :meth:`fit`, the full-Bayes
    :meth:`pymc_model`, the raw and pooled estimates, and the words of the
    comparison table; this class provides :meth:`fit_bayes` and
    :meth:`compare`.
    """

    #: Name of the per-unit parameter (``theta``, ``p`` or ``lambda``).
    term: ClassVar[str]
    #: Name of the comparison table's first column, the units' amount of data.
    size_name: ClassVar[str]
    #: Note of every unit when the EB fit is at complete pooling.
    boundary_note: ClassVar[str]
    #: Note of a unit without data (zero trials or exposure).
    no_data_note: ClassVar[str] = ""

    units: tuple[str, ...]
    unit_name: str

    @property
    def k(self) -> int:
        """Number of units."""
        return len(self.units)

    @property
    @abstractmethod
    def pooled(self) -> float:
        """Complete-pooling estimate."""

    @property
    @abstractmethod
    def raw(self) -> FloatArray:
        """No-pooling estimates (NaN for units without data)."""

    @property
    @abstractmethod
    def size(self) -> NDArray[Any]:
        """Each unit's amount of data (SE, trials or exposure), 0 for no data."""

    @abstractmethod
    def fit(self, *args: Any, **kwargs: Any) -> CompoundFit:
        """The empirical-Bayes fit."""

    @abstractmethod
    def pymc_model(self, hyperpriors: Mapping[str, HyperPriorSpec] | None = None) -> pm.Model:
        """The full-Bayes version of the model, with the per-unit ``theta`` (dim ``unit``)."""

    @abstractmethod
    def prior_sd_draws(self, posterior: xr.Dataset) -> xr.DataArray:
        """Draws of the prior's SD from the posterior of the hyperparameters."""

    def bayes_result(self, datatree: xr.DataTree) -> CompoundBayesFit:
        """Wrap draws of :meth:`pymc_model` in the full-Bayes result.

        Parameters
        ----------
        datatree : xarray.DataTree
            Output of a sampler run on :meth:`pymc_model`.

        Returns
        -------
        CompoundBayesFit
        """
        posterior = datatree["posterior"].to_dataset()
        return CompoundBayesFit(
            datatree=datatree,
            unit_name=self.unit_name,
            term=self.term,
            prior_sd=self.prior_sd_draws(posterior),
        )

    def fit_bayes(
        self,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 2,
        random_seed: int | None = None,
        *,
        hyperpriors: Mapping[str, HyperPriorSpec] | None = None,
        sampler: str = "nutpie",
        cores: int = 1,
    ) -> CompoundBayesFit:
        """Sample the full-Bayes model (:meth:`pymc_model`) with NUTS.

        Parameters
        ----------
        draws, tune, chains : int
            Sampler settings.
        random_seed : int, optional
            Seed.
        hyperpriors : mapping, optional
            See :meth:`pymc_model`.
        sampler : {"nutpie", "pymc"}, default "nutpie"
            NUTS implementation.
        cores : int, default 1
            Chains run in parallel.

        Returns
        -------
        CompoundBayesFit
            Posterior of the hyperparameters and the per-unit ``theta``; the
            sampler's DataTree is its ``datatree``.
        """
        random_seed = check_random_seed(random_seed)
        datatree = run_nuts(
            self.pymc_model(hyperpriors),
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            sampler=sampler,
            cores=cores,
        )
        return self.bayes_result(datatree)

    def compare(
        self,
        eb: CompoundFit | EBIntervals,
        bayes: CompoundBayesFit | xr.DataTree | None = None,
        ci_prob: float | None = None,
        *,
        level: float | None = None,
        idata: CompoundBayesFit | xr.DataTree | None = None,
    ) -> pd.DataFrame:
        """Per-unit comparison of no pooling, EB, full Bayes and complete pooling.

        Parameters
        ----------
        eb : CompoundFit or EBIntervals
            The EB fit (its plug-in intervals are used) or any EB intervals
            (e.g. from :meth:`NormalNormal.morris_intervals`).
        bayes : CompoundBayesFit or xarray.DataTree
            Output of :meth:`fit_bayes` (or the draws of :meth:`pymc_model`).
        ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
            Interval coverage.
        level : float, optional
            Deprecated spelling of ``ci_prob``.
        idata : CompoundBayesFit or xarray.DataTree, optional
            Deprecated spelling of ``bayes``.

        Returns
        -------
        pandas.DataFrame
            Index ``unit``; columns :attr:`size_name` (``se``, ``trials`` or
            ``exposure``) then :data:`~hiermodels.compound.COMPARISON_COLUMNS`:
            ``no_pooling`` (NaN and not estimable for units without data),
            ``complete_pooling``, EB and full-Bayes means, sds and intervals,
            ``eb_shrinkage`` and ``bayes_shrinkage`` ((raw - estimate)/(raw -
            pooled)), ``width_ratio`` (full-Bayes over EB interval width),
            ``eb_boundary`` and ``note``.
        """
        prob = check_ci_prob(either_keyword(ci_prob, level, new="ci_prob", old="level"))
        draws: CompoundBayesFit | xr.DataTree | None = either_keyword(
            bayes, idata, new="bayes", old="idata"
        )
        if draws is None:
            raise TypeError("compare() needs the full-Bayes result bayes")
        if isinstance(draws, xr.DataTree):
            draws = self.bayes_result(draws)
        boundary = isinstance(eb, CompoundFit) and eb.boundary
        intervals = eb.intervals(prob) if isinstance(eb, CompoundFit) else eb
        size = np.asarray(self.size)
        notes = [self.no_data_note if s == 0 else "" for s in size.tolist()]
        if boundary:
            notes = ["; ".join(filter(None, [self.boundary_note, n])) for n in notes]
        return comparison_frame(
            units=self.units,
            size_name=self.size_name,
            size=size,
            raw=np.asarray(self.raw),
            eb=intervals,
            eb_boundary=boundary,
            bayes=draws,
            pooled=self.pooled,
            notes=notes,
            ci_prob=prob,
        )
