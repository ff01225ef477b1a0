"""Confidence intervals of every parameter of a mixed model (lme4's ``confint.merMod``).

:func:`confidence_intervals` gives one table for the SDs, correlations,
``σ`` (and a negative binomial's ``α``) and the fixed effects, named as
:func:`~hiermodels.mle.bootstrap.parameter_names` names them, by one of

* ``"wald"``: ``β̂ ∓ z·se`` for the fixed effects; NaN for the variance
  parameters, which have no standard errors here (lme4 reports ``NA`` too);
* ``"profile"`` (linear mixed models): the values where the ML deviance,
  minimised over every other parameter, exceeds its minimum by the
  ``χ²₁`` quantile — lme4 profiles the ML deviance for REML fits as well,
  and so does this. SDs and ``σ`` are profiled by
  :func:`~hiermodels.mle.profile.profile_sd`, a fixed effect by refitting
  with its column moved into the offset, the correlation of a two-term block
  by writing the block's factor at a fixed correlation. Correlations in
  blocks of three or more terms get NaN;
* ``"bootstrap"``: the parametric bootstrap's percentile intervals
  (:func:`~hiermodels.mle.bootstrap.parametric_bootstrap`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from hiermodels.errors import ConvergenceWarning, SingularFitWarning
from hiermodels.intervals import check_ci_prob, normal_bounds
from hiermodels.mle.bootstrap import fit_parameters, parameter_names, parametric_bootstrap
from hiermodels.mle.lmm import profiled_deviance
from hiermodels.mle.optimize import minimize_bounded
from hiermodels.mle.profile import profile_sd
from hiermodels.mle.standardize import Standardization
from hiermodels.names import DEFAULT_CI_PROB, correlation_label, sd_name

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit

__all__ = ["CONFINT_METHODS", "confidence_intervals"]

#: The methods :func:`confidence_intervals` knows.
CONFINT_METHODS = ("wald", "profile", "bootstrap")


def confidence_intervals(
    fit: MixedFit,
    method: Literal["wald", "profile", "bootstrap"] = "profile",
    ci_prob: float = DEFAULT_CI_PROB,
    *,
    nsim: int = 1000,
    random_seed: int | np.random.Generator | None = None,
    n_jobs: int = 1,
    progressbar: bool = False,
) -> pd.DataFrame:
    """Confidence intervals of all parameters of a fit.

    Parameters
    ----------
    fit : MixedFit
        The fitted model.
    method : {"wald", "profile", "bootstrap"}
        How the intervals are computed (see the module's description);
        ``"profile"``, lme4's default, applies to linear mixed models.
    ci_prob : float
        Probability of the intervals, in (0, 1).
    nsim, random_seed, n_jobs, progressbar
        The bootstrap's replicates, seed, worker processes and progress bar
        (``method="bootstrap"`` only).

    Returns
    -------
    pandas.DataFrame
        Index ``parameter`` (SDs and correlations block by block, ``sigma``,
        ``alpha``, fixed effects: lme4's rows in hiermodels' names); columns
        ``estimate``, ``lower``, ``upper``. ``attrs``: ``interval`` and
        ``ci_prob``.
    """
    if method not in CONFINT_METHODS:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, CONFINT_METHODS))}; got {method!r}"
        )
    ci_prob = check_ci_prob(ci_prob)
    if method == "bootstrap":
        boot = parametric_bootstrap(
            fit, nsim, random_seed=random_seed, n_jobs=n_jobs, progressbar=progressbar
        )
        return boot.confint("percentile", ci_prob)
    names = parameter_names(fit)
    table = pd.DataFrame(
        {"estimate": fit_parameters(fit), "lower": np.nan, "upper": np.nan},
        index=pd.Index(names, name="parameter"),
    )
    fixed = list(fit.design.fixed_names)
    if method == "wald":
        lower, upper = normal_bounds(fit.beta, fit.fixef_se.to_numpy(), ci_prob)
        table.loc[fixed, "lower"] = lower
        table.loc[fixed, "upper"] = upper
    else:
        if not fit.design.family.is_gaussian:
            raise ValueError(
                "profile intervals are available for linear mixed models; use "
                "method='wald' or 'bootstrap' for a GLMM"
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SingularFitWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            _ProfileLimits(fit, stats.chi2.ppf(ci_prob, 1)).fill(table)
    table.attrs.update(interval=method, ci_prob=ci_prob)
    return table


class _ProfileLimits:
    """The ML-deviance profile of every parameter and where it crosses a cutoff."""

    def __init__(self, fit: MixedFit, cutoff: float) -> None:
        from hiermodels.mle.fit import fit_lmm

        self.ml = fit if fit.method == "ML" else fit_lmm(fit.design, "ML", start=fit.theta)
        self.cutoff = cutoff
        self.standardization = Standardization.of(fit.design)
        self.deviance = profiled_deviance(self.standardization.apply(fit.design), reml=False)
        self.offset = self.standardization.criterion_offset(fit.design.nobs, reml=False)

    def fill(self, table: pd.DataFrame) -> None:
        """Set ``lower`` and ``upper`` of every parameter that has a profile."""
        ml = self.ml
        estimates = dict(zip(parameter_names(ml), fit_parameters(ml), strict=True))
        for block_index, block in enumerate(ml.layout.blocks):
            for term in block.terms:
                self._sd_limits(table, sd_name(block.group, term), estimates)
            if block.n_terms == 2:
                name = correlation_label(block.group, *block.terms)
                profile = self._correlation_profile(block_index)
                table.loc[name, ["lower", "upper"]] = self._limits(
                    profile, estimates[name], -1.0, 1.0
                )
        self._sd_limits(table, "sigma", estimates)
        se = ml.fixef_se
        for j, name in enumerate(ml.design.fixed_names):
            profile = self._fixed_profile(j)
            width = 4.0 * float(se.iloc[j])
            table.loc[name, ["lower", "upper"]] = self._limits(
                profile, estimates[name], -math.inf, math.inf, width
            )

    def _sd_limits(
        self,
        table: pd.DataFrame,
        name: str,
        estimates: dict[str, float],
    ) -> None:
        def profile(value: float) -> float:
            return float(profile_sd(self.ml, name, [value])["delta"].iloc[0])

        table.loc[name, ["lower", "upper"]] = self._limits(profile, estimates[name], 0.0, math.inf)

    def _limits(
        self,
        profile: Callable[[float], float],
        estimate: float,
        low_bound: float,
        high_bound: float,
        width: float | None = None,
    ) -> tuple[float, float]:
        """Where ``profile`` (0 at ``estimate``) reaches the cutoff on either side."""
        limits = []
        for side in (-1.0, 1.0):
            bound = low_bound if side < 0 else high_bound
            step = width if width is not None else max(abs(estimate), 1e-3) * 0.5
            inner, outer = estimate, estimate + side * step
            while True:
                if math.isfinite(bound) and (outer - bound) * side >= 0:
                    # the closed end of the parameter's range: the interval reaches it
                    # when the profile stays below the cutoff all the way there
                    outer = bound - side * 1e-9 * max(1.0, abs(bound))
                    if profile(outer) < self.cutoff:
                        limits.append(bound)
                        break
                    limits.append(self._root(profile, inner, outer))
                    break
                if profile(outer) >= self.cutoff:
                    limits.append(self._root(profile, inner, outer))
                    break
                inner, outer = outer, estimate + 2.0 * (outer - estimate)
        return limits[0], limits[1]

    def _root(self, profile: Callable[[float], float], inner: float, outer: float) -> float:
        return float(
            optimize.brentq(
                lambda value: profile(value) - self.cutoff,
                inner,
                outer,
                xtol=1e-8 * max(1.0, abs(inner)),
            )
        )

    def _criterion(self, theta: np.ndarray) -> float:
        """The ML deviance in the design's units at ``θ`` (β and σ profiled)."""
        standard = self.standardization.standard_theta(theta, self.deviance.layout)
        return self.deviance(standard) + self.offset

    def _correlation_profile(self, block_index: int) -> Callable[[float], float]:
        """ML deviance over its minimum with block ``block_index``'s correlation at ``ρ``.

        The block's factor is ``[[a, 0], [ρ b, √(1 − ρ²) b]]`` — relative SDs
        ``a`` and ``b`` and correlation ``ρ`` — and the deviance is minimised
        over ``a, b ≥ 0`` and every other entry of ``θ``.
        """
        ml = self.ml
        part = ml.layout.theta.block_slice(block_index)
        others = np.setdiff1d(np.arange(ml.theta.size), np.arange(part.start, part.stop))
        t11, t21, t22 = ml.theta[part]
        start = np.concatenate([[t11, math.hypot(t21, t22)], ml.theta[others]])
        lower = np.concatenate([[0.0, 0.0], ml.layout.theta.lower_bounds()[others]])

        def profile(rho: float) -> float:
            def criterion(params: np.ndarray) -> float:
                theta = np.empty(ml.theta.size)
                theta[part] = (params[0], rho * params[1], math.sqrt(1.0 - rho**2) * params[1])
                theta[others] = params[2:]
                return self._criterion(theta)

            opt = minimize_bounded(criterion, start, lower)
            return max(opt.final_objective - ml.objective, 0.0)

        return profile

    def _fixed_profile(self, column: int) -> Callable[[float], float]:
        """ML deviance over its minimum with fixed effect ``column`` held at a value."""
        from hiermodels.mle.fit import fit_lmm

        design = self.ml.design
        x = design.X[:, column]
        base = design.offset if design.offset is not None else np.zeros(design.n_rows)
        reduced: dict[str, Any] = {
            "X": np.delete(design.X, column, axis=1),
            "fixed_names": tuple(n for k, n in enumerate(design.fixed_names) if k != column),
        }

        def profile(value: float) -> float:
            held = replace(design, offset=base + value * x, **reduced)
            refit = fit_lmm(held, "ML", start=self.ml.theta)
            return max(refit.objective - self.ml.objective, 0.0)

        return profile
