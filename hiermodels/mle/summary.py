"""lme4-style printed summary of a ``MixedFit``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from hiermodels.mle.covariance import covariance_to_sd_corr

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit

__all__ = ["FitSummary"]

_TITLES = {
    "REML": "Linear mixed model fit by REML",
    "ML": "Linear mixed model fit by maximum likelihood",
    "Laplace": "Generalized linear mixed model fit by maximum likelihood (Laplace approximation)",
    "AGQ": "Generalized linear mixed model fit by maximum likelihood (adaptive Gauss-Hermite "
    "quadrature)",
}


@dataclass(frozen=True)
class FitSummary:
    """The tables of an lme4 ``summary()``, printable as text.

    Attributes
    ----------
    title : str
        Model kind and method.
    formula : str
        The formula.
    family : str
        Family and link.
    criteria : pandas.Series
        AIC, BIC, logLik, deviance (and REML criterion).
    random : pandas.DataFrame
        Groups, Name, Variance, Std.Dev. and the correlations.
    fixed : pandas.DataFrame
        Estimate, Std. Error, and t value (z value and p for GLMMs).
    nobs : int
        Number of observations.
    ngroups : dict
        Levels per grouping factor.
    singular : bool
        Whether the fit is singular.
    warnings : tuple of str
        Convergence messages from the optimiser.
    notes : tuple of str
        What the fixed-effects table's df are (or why it has none).
    dispersion : str or None
        glmmTMB's line for a Gamma or inverse-Gaussian fit's dispersion
        ``φ = sigma²`` (lme4's ``Residual`` row of :attr:`random` shows it too);
        ``None`` for other families.
    """

    title: str
    formula: str
    family: str
    criteria: pd.Series
    random: pd.DataFrame
    fixed: pd.DataFrame
    nobs: int
    ngroups: dict[str, int]
    singular: bool
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = ()
    dispersion: str | None = None

    @classmethod
    def from_fit(cls, fit: MixedFit) -> FitSummary:
        """Collect the summary tables of ``fit``."""
        criteria = {"AIC": fit.aic, "BIC": fit.bic, "logLik": fit.loglik, "deviance": fit.deviance}
        if fit.method == "REML":
            criteria = {"REML criterion": fit.objective}
        estimate = fit.beta
        se = fit.fixef_se.to_numpy()
        fixed = pd.DataFrame(
            {"Estimate": estimate, "Std. Error": se}, index=list(fit.design.fixed_names)
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = estimate / se
        notes: tuple[str, ...] = ()
        if fit.has_residual:
            fixed, notes = _t_columns(fit, fixed, ratio)
        else:
            fixed["z value"] = ratio
            fixed["Pr(>|z|)"] = 2.0 * stats.norm.sf(np.abs(ratio))
        if fit.design.compressed is not None:
            notes = (*notes, f"data: {fit.design.compressed.describe()}")
        return cls(
            title=_TITLES.get(fit.method, fit.method),
            formula=fit.design.spec.formula,
            family=f"{fit.design.family.name} ({fit.design.family.link})",
            criteria=pd.Series(criteria),
            random=_random_table(fit),
            fixed=fixed,
            nobs=fit.nobs,
            ngroups=fit.ngroups,
            singular=fit.singular,
            warnings=fit.opt.warnings,
            notes=notes,
            dispersion=(
                None
                if fit.phi is None
                else f"Dispersion estimate for {fit.design.family.name} family (sigma^2): "
                f"{fit.phi:.4g}"
            ),
        )

    def copy(self) -> FitSummary:
        """A copy whose tables and group counts the caller may change."""
        return dataclasses.replace(
            self,
            criteria=self.criteria.copy(),
            random=self.random.copy(),
            fixed=self.fixed.copy(),
            ngroups=dict(self.ngroups),
        )

    def __str__(self) -> str:
        lines = [self.title]
        if "Generalized" in self.title:
            lines.append(f" Family: {self.family}")
        lines += [f"Formula: {self.formula}", ""]
        crit = self.criteria
        if list(crit.index) == ["REML criterion"]:
            lines.append(f"REML criterion at convergence: {crit.iloc[0]:.4f}")
        else:
            lines.append(
                crit.to_frame().T.to_string(index=False, float_format=lambda v: f"{v:.4f}")
            )
        lines += ["", "Random effects:"]
        lines.append(_indent(self.random.to_string(index=False, na_rep="")))
        groups = ", ".join(f"{g}, {n}" for g, n in self.ngroups.items())
        lines.append(f"Number of obs: {self.nobs}, groups:  {groups}")
        if self.dispersion is not None:
            lines += ["", self.dispersion]
        lines += ["", "Fixed effects:"]
        lines.append(_indent(self.fixed.to_string(float_format=lambda v: f"{v:.4g}")))
        lines += self.notes
        if self.singular:
            lines += ["", "boundary (singular) fit: see varcorr"]
        for message in self.warnings:
            lines.append(f"optimizer warning: {message}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: object, cycle: bool) -> None:
        printer.text(str(self))  # type: ignore[attr-defined]


def _t_columns(
    fit: MixedFit, fixed: pd.DataFrame, ratio: np.ndarray
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """lmerTest's columns: Satterthwaite df, t value and Pr(>|t|)."""
    from hiermodels.mle.ftests import coefficient_table

    table = coefficient_table(fit, "satterthwaite")
    fixed["df"] = table["df"].to_numpy()
    fixed["t value"] = ratio
    fixed["Pr(>|t|)"] = table["p_value"].to_numpy()
    return fixed, ("t tests use Satterthwaite's df",)


def _indent(text: str) -> str:
    return "\n".join(" " + line for line in text.splitlines())


def _random_table(fit: MixedFit) -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    max_q = max(b.n_terms for b in fit.layout.blocks)
    for block, cov in zip(fit.layout.blocks, fit.covariances(), strict=True):
        sds, corr = covariance_to_sd_corr(cov)
        for j, term in enumerate(block.terms):
            row: dict[str, object] = {
                "Groups": block.group if j == 0 else "",
                "Name": term,
                "Variance": f"{cov[j, j]:.4g}",
                "Std.Dev.": f"{sds[j]:.4g}",
            }
            for k in range(max_q - 1):
                row[f"Corr{'' if k == 0 else k + 1}"] = f"{corr[j, k]:.2f}" if k < j else ""
            rows.append(row)
    if fit.has_residual or fit.phi is not None:
        variance = fit.sigma**2 if fit.phi is None else fit.phi
        row = {
            "Groups": "Residual",
            "Name": "",
            "Variance": f"{variance:.4g}",
            "Std.Dev.": f"{np.sqrt(variance):.4g}",
        }
        for k in range(max_q - 1):
            row[f"Corr{'' if k == 0 else k + 1}"] = ""
        rows.append(row)
    return pd.DataFrame(rows)
