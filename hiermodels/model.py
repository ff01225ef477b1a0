"""The user-facing :class:`Model`: one lme4-style formula, one data frame, every fit.

``Model`` stays thin: it parses the formula and builds the design once, and
each method is a single call into a pipeline stage (marginal likelihood,
PyMC graph, sampling).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hiermodels.design.design import Design, build_design
from hiermodels.design.families import Family, get_family
from hiermodels.design.formula import FormulaSpec, parse_formula

if TYPE_CHECKING:
    # the engines are imported by the methods that run them
    from hiermodels.mle.results import MixedFit

__all__ = ["Model"]

_MLE_METHODS = {"reml": "REML", "ml": "ML", "laplace": "Laplace"}


class Model:
    """A mixed model written as an lme4 formula.

    Parameters
    ----------
    formula : str
        lme4-style formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``,
        ``"y ~ x + (1 | school/class)"``, ``"cbind(s, f) ~ period + (1 | herd)"``.
    data : pandas.DataFrame
        The data; columns named in the formula.
    family : str or Family
        ``"gaussian"`` (default), ``"bernoulli"``, ``"binomial"``,
        ``"poisson"`` or ``"negativebinomial"``.
    link : str, optional
        Link function (the family's canonical link by default).
    missing : {"drop", "raise"}
        Rows with missing values in used columns are dropped with a warning
        (default) or raise an error.
    offset : str or array-like, optional
        Offset on the linear-predictor scale: a column name or an array.

    Examples
    --------
    >>> import hiermodels as hm
    >>> sleep = hm.datasets.load("sleepstudy")
    >>> fit = hm.Model("Reaction ~ Days + (Days | Subject)", sleep).fit_mle()
    >>> round(fit.fixef["Days"], 3)
    10.467
    """

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        family: str | Family = "gaussian",
        *,
        link: str | None = None,
        missing: str = "drop",
        offset: str | np.ndarray | None = None,
    ) -> None:
        self._family = get_family(family, link)
        self._spec = parse_formula(formula)
        self._design = build_design(self._spec, data, self._family, missing=missing, offset=offset)

    @property
    def spec(self) -> FormulaSpec:
        """The parsed formula."""
        return self._spec

    @property
    def design(self) -> Design:
        """The model's design: response, fixed-effects matrix, random-effect blocks."""
        return self._design

    @property
    def family(self) -> Family:
        """Response family and link."""
        return self._family

    def fit_mle(self, method: str | None = None, **options: Any) -> MixedFit:
        """Marginal maximum-likelihood fit.

        Parameters
        ----------
        method : {"REML", "ML", "Laplace"}, optional
            ``"REML"`` (default for Gaussian models) or ``"ML"`` for linear
            mixed models; ``"Laplace"`` (default otherwise) for GLMMs.
        **options
            Passed to the engine: ``start`` values for θ; ``theta`` to
            evaluate at given variance parameters (LMMs); ``n_agq`` for GLMMs,
            as glmer's ``nAGQ``: quadrature nodes for a single scalar
            random-effect term, or 0 for the fast fit that optimises θ alone
            with β inside PIRLS; ``laplace="glmer"`` to evaluate the Laplace
            approximation as glmer (glmer.nb) does and reproduce lme4's
            estimates (the default ``"exact"`` agrees with glmmTMB);
            ``optimizer="bobyqa"`` for lme4's derivative-free path instead of
            the default quasi-Newton steps on the analytic gradient.

        Returns
        -------
        MixedFit
            A negative-binomial fit also estimates the dispersion,
            ``MixedFit.alpha`` (``Var(y) = μ + μ²/α``, glmmTMB's ``nbinom2``).
        """
        if method is None:
            method = "REML" if self._family.is_gaussian else "Laplace"
        key = _MLE_METHODS.get(str(method).lower())
        if key is None:
            raise ValueError(f"method must be one of 'REML', 'ML', 'Laplace'; got {method!r}")
        if self._family.is_gaussian:
            if key == "Laplace":
                raise ValueError(
                    "a Gaussian model's likelihood is exact: use method='REML' or 'ML'"
                )
            from hiermodels.mle.fit import fit_lmm

            return fit_lmm(self._design, key, **options)
        if key != "Laplace":
            raise ValueError(
                f"{key} applies to Gaussian models; family {self._family.name!r} is fitted "
                "with method='Laplace'"
            )
        from hiermodels.mle.glmm import fit_glmm

        return fit_glmm(self._design, **options)

    def pymc_model(self, priors: Mapping[str, Any] | None = None) -> Any:
        """The model as a PyMC graph (``pm.Model``) with the default or given priors."""
        from hiermodels.bayes.build import build_pymc_model

        return build_pymc_model(self._design, priors)

    def fit_bayes(self, **options: Any) -> Any:
        """Full-Bayes fit by MCMC; see :func:`hiermodels.bayes.fit.fit_bayes`."""
        from hiermodels.bayes.fit import fit_bayes

        return fit_bayes(self._design, **options)

    def fit_eb(self, **options: Any) -> Any:
        """Empirical-Bayes fit; see :func:`hiermodels.eb.fit.fit_eb`."""
        from hiermodels.eb.fit import fit_eb

        return fit_eb(self._design, **options)

    def __repr__(self) -> str:
        return (
            f"Model({self._spec.formula!r}, family={self._family.name!r}, "
            f"link={self._family.link!r}, nobs={self._design.nobs})"
        )
