"""Likelihood-ratio comparison of nested mixed models (lme4's ``anova``)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from hiermodels.mle.results import MixedFit

__all__ = ["anova", "AnovaTable"]


class AnovaTable(pd.DataFrame):
    """lme4's anova table: npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq)."""

    @property
    def _constructor(self) -> type[AnovaTable]:
        return AnovaTable

    def __str__(self) -> str:
        fmt = self.copy()
        for col in ("AIC", "BIC", "logLik", "deviance", "Chisq"):
            fmt[col] = fmt[col].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
        fmt["Df"] = fmt["Df"].map(lambda v: "" if pd.isna(v) else f"{int(v)}")
        fmt["Pr(>Chisq)"] = fmt["Pr(>Chisq)"].map(lambda v: "" if pd.isna(v) else f"{v:.4g}")
        return pd.DataFrame(fmt).to_string()


def anova(*fits: MixedFit, refit: bool = True) -> AnovaTable:
    """Compare nested models by likelihood-ratio tests, as lme4's ``anova``.

    REML fits are refitted by ML first (REML likelihoods of models with
    different fixed effects are not comparable), with a warning, as lme4
    does. Models are ordered by number of parameters; each row's χ² test
    compares it with the row above.

    Parameters
    ----------
    *fits : MixedFit
        Two or more fits to the same observations.
    refit : bool
        Refit REML fits by ML (default); ``False`` keeps REML likelihoods
        (only meaningful when the fixed effects are identical).

    Returns
    -------
    AnovaTable
        Indexed by model formula.
    """
    if len(fits) < 2:
        raise ValueError("anova needs at least two fitted models to compare")
    nobs = {f.nobs for f in fits}
    if len(nobs) > 1:
        raise ValueError(
            f"models were fitted to different numbers of observations ({sorted(nobs)}); "
            "compare fits to the same rows"
        )
    if refit and any(f.method == "REML" for f in fits):
        from hiermodels.mle.fit import fit_lmm

        warnings.warn("refitting model(s) with ML (instead of REML)", UserWarning, stacklevel=2)
        fits = tuple(fit_lmm(f.design, "ML") if f.method == "REML" else f for f in fits)
    ordered = sorted(fits, key=lambda f: f.n_params)
    rows = []
    previous: MixedFit | None = None
    for fit in ordered:
        row = {
            "npar": fit.n_params,
            "AIC": fit.aic,
            "BIC": fit.bic,
            "logLik": fit.loglik,
            "deviance": -2.0 * fit.loglik,
            "Chisq": np.nan,
            "Df": np.nan,
            "Pr(>Chisq)": np.nan,
        }
        if previous is not None:
            chisq = max(2.0 * (fit.loglik - previous.loglik), 0.0)
            df = fit.n_params - previous.n_params
            row["Chisq"] = chisq
            row["Df"] = df
            row["Pr(>Chisq)"] = stats.chi2.sf(chisq, df) if df > 0 else np.nan
        rows.append(row)
        previous = fit
    index = pd.Index([f.design.spec.formula for f in ordered], name="model")
    return AnovaTable(pd.DataFrame(rows, index=index))
