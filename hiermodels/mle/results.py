"""``MixedFit``: the immutable result of a marginal-likelihood fit.

Numbers are stored as plain arrays in θ order (random-effect terms sorted
by number of levels, largest first, as lme4 orders them); labels are put on
at the edges — pandas for tables, xarray for :meth:`MixedFit.to_xarray` —
using the design's fixed-effect names, grouping-factor levels and term names.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from hiermodels.design.design import Design
from hiermodels.design.factors import long_index, long_values
from hiermodels.intervals import check_ci_prob, normal_bounds, renamed_keyword
from hiermodels.mle.blocked import ReLayout
from hiermodels.mle.covariance import covariance_to_sd_corr
from hiermodels.mle.optimize import OptSummary
from hiermodels.names import (
    DEFAULT_CI_PROB,
    correlation_label,
    correlation_name,
    effects_name,
    sd_name,
    term_dim,
)

if TYPE_CHECKING:
    from hiermodels.mle.bootstrap import BootstrapResult
    from hiermodels.mle.ddf import DdfMethod
    from hiermodels.mle.summary import FitSummary

__all__ = ["MixedFit", "SINGULAR_TOLERANCE", "per_group_frames"]

#: lme4's ``isSingular`` tolerance on the diagonal of the relative factors.
SINGULAR_TOLERANCE = 1e-4


class _Pending:
    """A deferred field's zero-argument callable, until the field is first read."""

    __slots__ = ("compute", "lock")

    def __init__(self, compute: Callable[[], Any]) -> None:
        self.compute = compute
        self.lock = threading.Lock()


class Deferrable[T]:
    """A dataclass field that may be given as a zero-argument callable, run on first read.

    The field keeps its name and the type of its value: an engine may pass
    the value itself, or a callable returning it, which runs (once, also
    under threads) the first time the attribute is read, and the result
    replaces it. Copying or pickling the instance computes pending values
    first (see :meth:`MixedFit.__getstate__`), so that no callable travels.
    """

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> T:
        if instance is None:  # no class-level default: the dataclass field stays required
            raise AttributeError(self.name)
        value = instance.__dict__[self.name]
        if isinstance(value, _Pending):
            with value.lock:
                current = instance.__dict__[self.name]
                if current is value:
                    instance.__dict__[self.name] = value.compute()
            value = instance.__dict__[self.name]
        return value

    def __set__(self, instance: object, value: T | Callable[[], T]) -> None:
        instance.__dict__[self.name] = _Pending(value) if callable(value) else value

    @staticmethod
    def pending(instance: object, name: str) -> bool:
        """Whether ``instance``'s field ``name`` has not been computed yet."""
        return isinstance(instance.__dict__.get(name), _Pending)


def per_group_frames(layout: ReLayout, values: Sequence[np.ndarray]) -> dict[str, pd.DataFrame]:
    """Per-block ``(levels, q)`` arrays joined per grouping factor: levels × terms.

    Parameters
    ----------
    layout : ReLayout
        The random-effect blocks, θ order.
    values : sequence of numpy.ndarray
        One ``(levels, q)`` array per block of ``layout``.

    Returns
    -------
    dict of str to pandas.DataFrame
        One frame per grouping factor, index its levels, columns its terms.
    """
    return {
        group: pd.DataFrame(
            np.hstack([values[i] for i in idx]),
            index=pd.Index(layout.blocks[idx[0]].levels, name=group),
            columns=[t for i in idx for t in layout.blocks[i].terms],
        )
        for group, idx in layout.factor_blocks.items()
    }


def _refuse_root_rows(fit: MixedFit, what: str) -> None:
    """Raise for a fit from summed Gaussian statistics, which has no rows to return."""
    if fit.design.has_root_rows:
        raise ValueError(
            f"{what} returns new responses row by row; a Gaussian fit from a Dask DataFrame "
            "holds the rows' summed cross products only — bootstrap() refits replicates "
            "drawn on those statistics; fit a pandas sample of the data for simulated rows"
        )


@dataclass(frozen=True, eq=False)
class MixedFit:
    """Marginal maximum-likelihood fit of a mixed model (REML, ML or Laplace).

    Attributes
    ----------
    design : Design
        The design that was fitted.
    method : str
        ``"REML"``, ``"ML"``, ``"Laplace"``, ``"AGQ"`` or ``"Laplace (nAGQ=0)"``.
    layout : ReLayout
        Random-effect blocks in θ order.
    theta : numpy.ndarray
        Relative covariance parameters (lme4's ``theta``).
    beta : numpy.ndarray
        Fixed effects.
    vcov_beta : numpy.ndarray
        Covariance matrix of the fixed effects.
    sigma : float
        Residual standard deviation (1 for families without one).
    conditional_modes : tuple of numpy.ndarray
        ``(levels, q)`` conditional modes (BLUPs) per block, θ order.
    conditional_covariances : tuple of numpy.ndarray
        ``(levels, q, q)`` conditional covariances per block, θ order.
    loglik : float
        Log-likelihood (the REML log-likelihood for REML fits, as lme4).
    objective : float
        The minimised criterion: REML criterion, ML deviance or Laplace deviance.
    linear_predictor : numpy.ndarray
        ``(n,)`` conditional linear predictor ``Xβ + Zb (+ offset)``.
    opt : OptSummary
        The optimiser's log (in the standardised coordinates it worked in).
    standardized_theta : numpy.ndarray or None
        ``θ`` of the problem the optimiser solved, with the response and the
        covariates centred and scaled (:mod:`hiermodels.mle.standardize`);
        ``None`` when the fit was not standardised. The boundary check uses
        it, so that it does not depend on the units of the covariates.
    alpha : float or None
        The negative-binomial dispersion (``Var(y) = μ + μ²/α``, glmmTMB's
        ``nbinom2``; ``inf`` at the Poisson boundary); ``None`` for other families.
    phi : float or None
        The Gamma's or inverse Gaussian's dispersion ``φ`` (``Var(y) = φμ²``,
        ``φμ³``; ``√φ`` is glmmTMB's and lme4's ``sigma()``, for the Gamma the
        coefficient of variation); ``None`` for other families.

    Notes
    -----
    An engine may pass ``vcov_beta``, ``conditional_modes``,
    ``conditional_covariances`` and ``linear_predictor`` as zero-argument
    callables instead of their values: each runs once, when the attribute is
    first read, so a fit does not pay for what nobody asks for. The
    attributes have their values' types either way. Derived tables
    (:attr:`varcorr`, :attr:`ranef`, :meth:`ranef_frame`, :meth:`summary`,
    :meth:`to_xarray`, :meth:`covariances`) are computed on first use and
    kept; each call returns a copy, which the caller may change.
    """

    design: Design
    method: str
    layout: ReLayout
    theta: np.ndarray
    beta: np.ndarray
    # mypy's dataclass plugin counts a descriptor instance as a default; dataclasses find
    # none (Deferrable's class-level read raises AttributeError), so the fields after a
    # Deferrable one stay required and mypy's "[misc] no default after a default" is wrong
    vcov_beta: Deferrable[np.ndarray] = Deferrable()
    sigma: float  # type: ignore[misc]
    conditional_modes: Deferrable[tuple[np.ndarray, ...]] = Deferrable()
    conditional_covariances: Deferrable[tuple[np.ndarray, ...]] = Deferrable()
    loglik: float  # type: ignore[misc]
    objective: float  # type: ignore[misc]
    linear_predictor: Deferrable[np.ndarray] = Deferrable()
    opt: OptSummary  # type: ignore[misc]
    standardized_theta: np.ndarray | None = None
    alpha: float | None = None
    phi: float | None = None

    # ---------------------------------------------------------- laziness
    def _memo[R](self, key: str, compute: Callable[[], R]) -> R:
        """``compute()``, once per fit: kept in the instance for later calls."""
        memo = self.__dict__.setdefault("_derived", {})
        if key not in memo:
            memo[key] = compute()
        return memo[key]

    def __getstate__(self) -> dict[str, Any]:
        """The fields, deferred ones computed (a callable need not pickle); no memo."""
        for f in dataclasses.fields(self):
            getattr(self, f.name)
        return {k: v for k, v in self.__dict__.items() if k != "_derived"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # ------------------------------------------------------------------ sizes
    @property
    def nobs(self) -> int:
        """Number of observations."""
        return self.design.nobs

    @property
    def ngroups(self) -> dict[str, int]:
        """Number of levels of every grouping factor, θ order."""
        return {b.group: b.n_levels for b in self.layout.blocks}

    @property
    def has_residual(self) -> bool:
        """Whether the family has a residual scale (Gaussian)."""
        return self.design.family.is_gaussian

    @property
    def residual_sd(self) -> float | None:
        """lme4's ``sigma()``: ``σ`` (Gaussian), ``√φ`` (Gamma, inverse Gaussian), else ``None``.

        The ``Residual`` row of :attr:`varcorr`, and the ``sigma`` of the
        Bayesian graph, the bootstrap replicates and the EB plug-in.
        """
        if self.has_residual:
            return float(self.sigma)
        return None if self.phi is None else math.sqrt(self.phi)

    @property
    def n_params(self) -> int:
        """Parameters counted by AIC/BIC: fixed effects, θ, and σ, α or φ (if any)."""
        dispersions = int(self.alpha is not None) + int(self.phi is not None)
        return self.beta.size + self.theta.size + int(self.has_residual) + dispersions

    # ---------------------------------------------------------- fixed effects
    @property
    def fixef(self) -> pd.Series:
        """Fixed-effect estimates."""
        return pd.Series(self.beta, index=list(self.design.fixed_names), name="Estimate")

    @property
    def fixef_se(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(
            np.sqrt(np.diag(self.vcov_beta)), index=list(self.design.fixed_names), name="SE"
        )

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance matrix of the fixed-effect estimates."""
        names = list(self.design.fixed_names)
        return pd.DataFrame(self.vcov_beta, index=names, columns=names)

    def fixef_summary(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Fixed effects with standard errors and Wald intervals.

        Parameters
        ----------
        ci_prob : float
            Probability of the intervals, in (0, 1).

        Returns
        -------
        pandas.DataFrame
            Index the coefficient names; columns ``estimate, se, lower,
            upper`` with ``estimate ∓ z·se``. ``attrs``: ``interval``
            ``"wald"`` and ``ci_prob``.
        """
        se = self.fixef_se.to_numpy()
        lower, upper = normal_bounds(self.beta, se, ci_prob)
        table = pd.DataFrame(
            {"estimate": self.beta, "se": se, "lower": lower, "upper": upper},
            index=pd.Index(list(self.design.fixed_names), name="coef"),
        )
        table.attrs.update(interval="wald", ci_prob=check_ci_prob(ci_prob))
        return table

    def fixef_table(self, ddf: DdfMethod | None = None) -> pd.DataFrame:
        """t tests of the fixed effects with small-sample df, as lmerTest's ``summary``.

        Parameters
        ----------
        ddf : {"satterthwaite", "kenward-roger", "asymptotic"}, optional
            Denominator df: Satterthwaite (lmerTest), Kenward–Roger (pbkrtest,
            REML fits; also adjusts the SEs) or none (z tests). Default
            ``"satterthwaite"`` for LMMs; GLMMs allow ``"asymptotic"`` only.

        Returns
        -------
        pandas.DataFrame
            Index the coefficient names; columns ``estimate, se, df,
            statistic, p_value`` (:func:`hiermodels.mle.ftests.coefficient_table`).
        """
        from hiermodels.mle.ftests import coefficient_table

        return coefficient_table(self, ddf)

    def contrast(
        self, L: ArrayLike, ddf: DdfMethod | None = None, rhs: ArrayLike = 0.0
    ) -> pd.DataFrame:
        """Test ``L β = rhs``: one row a t test, several an F test (lmerTest's ``contest``).

        Parameters
        ----------
        L : array_like
            ``(p,)`` or ``(m, p)`` weights of the fixed effects (a DataFrame
            or Series is aligned on the coefficient names).
        ddf : {"satterthwaite", "kenward-roger", "asymptotic"}, optional
            As :meth:`fixef_table`.
        rhs : array_like
            ``L β`` under the null hypothesis.

        Returns
        -------
        pandas.DataFrame
            See :func:`hiermodels.mle.ftests.contrast_test`.
        """
        from hiermodels.mle.ftests import contrast_test

        return contrast_test(self, L, ddf, rhs)

    def type3_anova(self, ddf: DdfMethod | None = None) -> pd.DataFrame:
        """Type-III F tests of the fixed-effect terms, lmerTest's ``anova(fit)``.

        Parameters
        ----------
        ddf : {"satterthwaite", "kenward-roger", "asymptotic"}, optional
            As :meth:`fixef_table`.

        Returns
        -------
        pandas.DataFrame
            See :func:`hiermodels.mle.ftests.type3_anova`.
        """
        from hiermodels.mle.ftests import type3_anova

        return type3_anova(self, ddf)

    # -------------------------------------------------------- random effects
    def covariances(self) -> list[np.ndarray]:
        """Covariance matrix of every random-effect block, θ order."""
        covs = self._memo(
            "covariances", lambda: self.layout.theta.covariances(self.theta, self.sigma)
        )
        return [cov.copy() for cov in covs]

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variance components in lme4's ``as.data.frame(VarCorr(fit))`` layout.

        One row per variance (``var2`` missing) and per covariance (``var2``
        set, ``sdcor`` the correlation), block by block, then the residual.
        """
        return self._memo("varcorr", self._varcorr).copy()

    def _varcorr(self) -> pd.DataFrame:
        rows: list[dict[str, object]] = []
        for block, cov in zip(self.layout.blocks, self.covariances(), strict=True):
            sds, corr = covariance_to_sd_corr(cov)
            for j, term in enumerate(block.terms):
                rows.append(
                    {
                        "grp": block.group,
                        "var1": term,
                        "var2": None,
                        "vcov": cov[j, j],
                        "sdcor": sds[j],
                    }
                )
            for j in range(block.n_terms):
                for k in range(j + 1, block.n_terms):
                    rows.append(
                        {
                            "grp": block.group,
                            "var1": block.terms[j],
                            "var2": block.terms[k],
                            "vcov": cov[j, k],
                            "sdcor": corr[j, k],
                        }
                    )
        residual_sd = self.residual_sd
        if residual_sd is not None:
            rows.append(
                {
                    "grp": "Residual",
                    "var1": None,
                    "var2": None,
                    "vcov": residual_sd**2,
                    "sdcor": residual_sd,
                }
            )
        return pd.DataFrame(rows, columns=["grp", "var1", "var2", "vcov", "sdcor"])

    def varcorr_summary(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Variance components on the SD/correlation scale, without intervals.

        The marginal likelihood gives no standard errors for the variance
        parameters, and profile-likelihood intervals need a root search per
        parameter (:func:`hiermodels.mle.profile.profile_sd` profiles one
        SD), so ``se``, ``lower`` and ``upper`` are NaN rather than invented.

        Parameters
        ----------
        ci_prob : float
            Probability the intervals would have, in (0, 1).

        Returns
        -------
        pandas.DataFrame
            :attr:`varcorr`'s ``grp, var1, var2``; ``name``, the parameter's
            name in the Bayesian graph (``sd_<group>__<term>``,
            ``corr_<group>[<term>, <term>]``, ``sigma``); ``estimate`` (its
            ``sdcor``: SD or correlation); ``se``, ``lower``, ``upper`` (NaN).
            ``attrs``: ``interval`` ``"none"``, ``ci_prob`` and ``reason``.
        """
        ci_prob = check_ci_prob(ci_prob)
        varcorr = self.varcorr
        names = [
            "sigma"
            if grp == "Residual"
            else sd_name(grp, var1)
            if not isinstance(var2, str)
            else correlation_label(grp, var1, var2)
            for grp, var1, var2 in zip(
                varcorr["grp"], varcorr["var1"], varcorr["var2"], strict=True
            )
        ]
        table = varcorr[["grp", "var1", "var2"]].assign(
            name=names, estimate=varcorr["sdcor"].to_numpy(), se=np.nan, lower=np.nan, upper=np.nan
        )
        table.attrs.update(
            interval="none",
            ci_prob=ci_prob,
            reason=(
                "marginal-likelihood fits compute no intervals for variance components; "
                "profile one SD with hiermodels.mle.profile.profile_sd"
            ),
        )
        return table

    def simulate(
        self,
        nsim: int = 1,
        *,
        random_seed: int | np.random.Generator | None = None,
        effects: Literal["new", "conditional"] = "new",
    ) -> pd.DataFrame:
        """Responses simulated from the fitted model (lme4's ``simulate``).

        Parameters
        ----------
        nsim : int
            Number of replicates.
        random_seed : int, numpy.random.Generator or None
            Seed of the draws.
        effects : {"new", "conditional"}
            ``"new"``: group effects drawn from ``N(0, Σ̂)`` for every
            replicate (lme4's default ``use.u = FALSE``); ``"conditional"``:
            held at the conditional modes (``use.u = TRUE``).

        Returns
        -------
        pandas.DataFrame
            One row per observation (index the design's rows), one column
            per replicate (``sim_1``, …), as lme4; successes for ``cbind``
            binomial responses. See :mod:`hiermodels.mle.simulate`.
        """
        from hiermodels.mle.simulate import simulate_responses

        _refuse_root_rows(self, "simulate")
        draws = simulate_responses(self, nsim, random_seed=random_seed, effects=effects)
        columns = [f"sim_{k + 1}" for k in range(draws.shape[0])]
        return pd.DataFrame(draws.T, index=self.design.rows, columns=columns)

    def bootstrap(
        self,
        nsim: int = 1000,
        *,
        random_seed: int | np.random.Generator | None = None,
        n_jobs: int = 1,
        progressbar: bool = True,
        fit_options: dict[str, Any] | None = None,
    ) -> BootstrapResult:
        """The parametric bootstrap: the model refitted to simulated responses.

        See :func:`hiermodels.mle.bootstrap.parametric_bootstrap` for the
        parameters; the result's ``confint`` gives percentile, basic and
        normal intervals.
        """
        from hiermodels.mle.bootstrap import parametric_bootstrap

        return parametric_bootstrap(
            self,
            nsim,
            random_seed=random_seed,
            n_jobs=n_jobs,
            progressbar=progressbar,
            fit_options=fit_options,
        )

    def confint(
        self,
        method: Literal["wald", "profile", "bootstrap"] = "profile",
        ci_prob: float = DEFAULT_CI_PROB,
        *,
        nsim: int = 1000,
        random_seed: int | np.random.Generator | None = None,
        n_jobs: int = 1,
        progressbar: bool = False,
    ) -> pd.DataFrame:
        """Confidence intervals of every parameter (lme4's ``confint``).

        See :func:`hiermodels.mle.confint.confidence_intervals`: Wald,
        profile-likelihood (linear mixed models) or bootstrap-percentile
        intervals for the SDs, correlations, ``sigma`` and fixed effects.
        """
        from hiermodels.mle.confint import confidence_intervals

        return confidence_intervals(
            self,
            method,
            ci_prob,
            nsim=nsim,
            random_seed=random_seed,
            n_jobs=n_jobs,
            progressbar=progressbar,
        )

    @property
    def singular(self) -> bool:
        """Whether the fit is on the boundary (a variance or correlation degenerate).

        As lme4's ``isSingular``: some diagonal entry of a relative factor is
        below :data:`SINGULAR_TOLERANCE` — of the standardised factor when
        there is one, so that a covariate's units cannot make a fit singular.
        """
        mask = self.layout.theta.diagonal_mask()
        theta = self.theta if self.standardized_theta is None else self.standardized_theta
        return bool(np.any(theta[mask] < SINGULAR_TOLERANCE))

    @property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes per grouping factor: levels × terms."""
        return {group: frame.copy() for group, frame in self._memo("ranef", self._ranef).items()}

    def _ranef(self) -> dict[str, pd.DataFrame]:
        return per_group_frames(self.layout, self.conditional_modes)

    def ranef_frame(self) -> pd.DataFrame:
        """Conditional modes and SDs in lme4's ``as.data.frame(ranef(fit, condVar=TRUE))``.

        Columns ``grpvar, term, grp, condval, condsd``.
        """
        return self._memo("ranef_frame", self._ranef_frame).copy()

    def _ranef_frame(self) -> pd.DataFrame:
        sds = [
            np.sqrt(np.clip(np.diagonal(covs, axis1=1, axis2=2), 0.0, None))
            for covs in self.conditional_covariances
        ]
        return long_index(self.layout.blocks).assign(
            condval=long_values(self.conditional_modes), condsd=long_values(sds)
        )

    def ranef_summary(self, ci_prob: float = DEFAULT_CI_PROB) -> pd.DataFrame:
        """Conditional modes with conditional-variance intervals (lme4's ``condVar``).

        Parameters
        ----------
        ci_prob : float
            Probability of the intervals, in (0, 1).

        Returns
        -------
        pandas.DataFrame
            Columns ``grpvar, term, grp, estimate, se, lower, upper``: the
            conditional mode, its conditional SD and ``estimate ∓ z·se``, in
            the row order of :meth:`ranef_frame`. ``attrs``: ``interval``
            ``"condvar"`` and ``ci_prob``.
        """
        frame = self.ranef_frame()
        lower, upper = normal_bounds(frame["condval"], frame["condsd"], ci_prob)
        table = frame[["grpvar", "term", "grp"]].assign(
            estimate=frame["condval"].to_numpy(),
            se=frame["condsd"].to_numpy(),
            lower=lower,
            upper=upper,
        )
        table.attrs.update(interval="condvar", ci_prob=check_ci_prob(ci_prob))
        return table

    # -------------------------------------------------------- information
    @property
    def reml_criterion(self) -> float | None:
        """REML criterion at the optimum (REML fits only)."""
        return self.objective if self.method == "REML" else None

    @property
    def deviance(self) -> float:
        """−2 × log-likelihood (the REML criterion for REML fits)."""
        return -2.0 * self.loglik

    @property
    def aic(self) -> float:
        """Akaike's information criterion."""
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """Schwarz's Bayesian information criterion."""
        return -2.0 * self.loglik + math.log(self.nobs) * self.n_params

    # ------------------------------------------------------------ predictions
    def fitted(self) -> pd.Series:
        """Conditional fitted values on the response scale (mean per trial).

        For a fit from a Dask DataFrame, a Dask Series over its rows
        (:mod:`hiermodels.largedata.rows`).
        """
        from hiermodels.design.families import inverse_link

        if self.design.compressed is not None:
            from hiermodels.largedata.rows import fitted_values

            return fitted_values(self)
        mu = inverse_link(self.design.family.link, self.linear_predictor)
        return pd.Series(mu, index=self.design.rows, name="fitted")

    def residuals(self) -> pd.Series:
        """Response residuals ``y − fitted`` (proportions for ``cbind`` responses).

        For a fit from a Dask DataFrame, a Dask Series over its rows.
        """
        if self.design.compressed is not None:
            from hiermodels.largedata.rows import response_residuals

            return response_residuals(self)
        y = self.design.y
        if self.design.trials is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                y = np.where(self.design.trials > 0, y / self.design.trials, 0.0)
        return pd.Series(y - self.fitted().to_numpy(), index=self.design.rows, name="residual")

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        *,
        interval: Literal["confidence", "prediction"] | None = None,
        ci_prob: float = DEFAULT_CI_PROB,
        new_levels: Literal["population", "error"] = "population",
        scale: Literal["response", "link"] = "response",
        include_random: bool = True,
        offset: ArrayLike | str | None = None,
        allow_new_levels: bool | None = None,
    ) -> pd.Series | pd.DataFrame:
        """Predictions for new data (or the fitted data), optionally with intervals.

        Parameters
        ----------
        newdata : pandas.DataFrame or dask.dataframe.DataFrame, optional
            New rows with the formula's columns; ``None`` for the fitted
            data. A Dask DataFrame (and, for a fit from one, ``None``) gives
            a Dask collection, computed partition by partition.
        interval : {"confidence", "prediction"}, optional
            ``None`` (default): the predictions alone. ``"confidence"``: the
            uncertainty of the predicted mean, from the fixed effects and the
            conditional modes jointly (lme4's ``predict(se.fit = TRUE)``).
            ``"prediction"`` (Gaussian models only; GLMMs raise
            ``ValueError``): of a new observation, adding ``σ²`` and, for a
            level the fit has not seen, the new group's effect variance. Both
            are normal on the link scale given the estimated variance
            parameters; :func:`hiermodels.mle.predict.prediction_intervals`
            gives the formulas.
        ci_prob : float
            Probability of the intervals, in (0, 1).
        new_levels : {"population", "error"}
            A grouping level unseen in the fit gets random effects of 0, the
            population value (lme4's ``allow.new.levels = TRUE``), or raises a
            ``ValueError`` naming it (lme4's default).
        scale : {"response", "link"}
            Scale of the predictions.
        include_random : bool
            Add the conditional modes (``False`` gives population predictions).
        offset : array_like or str, optional
            Offsets of the new rows (values or a column of ``newdata``), for
            models fitted with an offset.
        allow_new_levels : bool, optional
            Deprecated spelling of ``new_levels``: ``True`` is
            ``"population"``, ``False`` is ``"error"``.

        Returns
        -------
        pandas.Series or pandas.DataFrame
            Without ``interval``, the predictions. With it, a table indexed
            like the predictions with columns ``estimate``, ``se`` (on the
            link scale), ``lower``, ``upper``; ``attrs``: ``interval``,
            ``ci_prob`` and ``scale``.
        """
        from hiermodels.largedata.statistics import is_dask_frame
        from hiermodels.mle.predict import predict_linear, prediction_intervals

        if is_dask_frame(newdata) or (newdata is None and self.design.compressed is not None):
            from hiermodels.largedata.rows import predict_partitions, source_rows

            frame = source_rows(self) if newdata is None else newdata
            options = {
                "interval": interval,
                "ci_prob": ci_prob,
                "new_levels": new_levels,
                "scale": scale,
                "include_random": include_random,
                "offset": offset,
            }
            if allow_new_levels is not None:
                options["allow_new_levels"] = allow_new_levels
                del options["new_levels"]
            return predict_partitions(self, frame, options)
        if allow_new_levels is not None:
            if new_levels != "population":
                raise TypeError(
                    "pass new_levels= only; allow_new_levels= is its deprecated spelling"
                )
            renamed_keyword("allow_new_levels", "new_levels")
            new_levels = "population" if allow_new_levels else "error"
        if scale not in ("response", "link"):
            raise ValueError(f"scale must be 'response' or 'link', got {scale!r}")
        if interval is not None:
            return prediction_intervals(
                self,
                newdata,
                interval=interval,
                ci_prob=ci_prob,
                new_levels=new_levels,
                scale=scale,
                include_random=include_random,
                offset=offset,
            )
        eta = predict_linear(
            self,
            newdata,
            new_levels=new_levels,
            include_random=include_random,
            offset=offset,
        )
        if scale == "link":
            return eta
        from hiermodels.design.families import inverse_link

        return pd.Series(
            inverse_link(self.design.family.link, eta.to_numpy()), index=eta.index, name="predicted"
        )

    # -------------------------------------------------------------- exports
    def to_xarray(self) -> xr.Dataset:
        """All estimates as an xarray Dataset with hiermodels' variable names.

        ``beta`` (dim ``coef``), ``beta_se``, ``sigma`` (Gaussian; ``√φ`` for the
        Gamma and inverse Gaussian), ``alpha`` (negative binomial), ``sd_<group>__<term>``,
        ``corr_<group>`` (dims ``<group>__term``, ``<group>__term_bis``),
        ``u_<group>`` and ``u_<group>_sd`` (dims ``<group>``, ``<group>__term``).
        """
        return self._memo("to_xarray", self._to_xarray).copy(deep=True)

    def _to_xarray(self) -> xr.Dataset:
        data: dict[str, xr.DataArray] = {
            "beta": xr.DataArray(
                self.beta, dims="coef", coords={"coef": list(self.design.fixed_names)}
            ),
            "beta_se": xr.DataArray(self.fixef_se.to_numpy(), dims="coef"),
        }
        if self.residual_sd is not None:
            data["sigma"] = xr.DataArray(self.residual_sd)
        if self.alpha is not None:
            data["alpha"] = xr.DataArray(self.alpha)
        covs = self.covariances()
        for group, idx in self.layout.factor_blocks.items():
            terms = [t for i in idx for t in self.layout.blocks[i].terms]
            levels = list(self.layout.blocks[idx[0]].levels)
            tdim = term_dim(group)
            modes = np.hstack([self.conditional_modes[i] for i in idx])
            sds = np.hstack(
                [
                    np.sqrt(
                        np.clip(
                            np.diagonal(self.conditional_covariances[i], axis1=1, axis2=2), 0, None
                        )
                    )
                    for i in idx
                ]
            )
            coords = {group: levels, tdim: terms}
            data[effects_name(group)] = xr.DataArray(modes, dims=(group, tdim), coords=coords)
            data[f"u_{group}_sd"] = xr.DataArray(sds, dims=(group, tdim), coords=coords)
            for i in idx:
                block_sds, corr = covariance_to_sd_corr(covs[i])
                for term, sd in zip(self.layout.blocks[i].terms, block_sds, strict=True):
                    data[sd_name(group, term)] = xr.DataArray(sd)
                if self.layout.blocks[i].n_terms > 1 and len(idx) == 1:
                    bis = f"{tdim}_bis"
                    data[correlation_name(group)] = xr.DataArray(
                        corr, dims=(tdim, bis), coords={tdim: terms, bis: terms}
                    )
        attrs = {
            "method": self.method,
            "loglik": self.loglik,
            "formula": self.design.spec.formula,
            "family": self.design.family.name,
            "link": self.design.family.link,
        }
        return xr.Dataset(data, attrs=attrs)

    def summary(self) -> FitSummary:
        """An lme4-style summary; ``print`` it to read it at a glance."""
        from hiermodels.mle.summary import FitSummary

        return self._memo("summary", lambda: FitSummary.from_fit(self)).copy()

    def __repr__(self) -> str:
        return (
            f"<MixedFit {self.method}: {self.design.spec.formula!r}, "
            f"nobs={self.nobs}, logLik={self.loglik:.3f}>"
        )
