"""Marginal maximum likelihood: the choice of method, ``fit_lmm`` and ``fit_glmm``.

:func:`mle_method` turns a family and the user's ``method=`` into REML, ML or
Laplace; :func:`fit_lmm` fits a linear mixed model by REML or ML and
:func:`fit_glmm` a GLMM by the Laplace approximation or adaptive quadrature
(its deviance in :mod:`hiermodels.mle.laplace`, its optimisation stages in
:mod:`hiermodels.mle.glmm_stages`). Both assemble a ``MixedFit``; the group
effects at the solution come from :mod:`hiermodels.mle.conditional`.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import replace

import numpy as np

from hiermodels._lazy import moved_names
from hiermodels.design.design import Design
from hiermodels.design.families import Family
from hiermodels.errors import SingularFitWarning
from hiermodels.mle.blas import single_threaded_blas
from hiermodels.mle.conditional import (
    ConditionalEffects,
    conditional_blocks,
    conditional_linear_predictor,
)
from hiermodels.mle.dispersion import DispersedDeviance
from hiermodels.mle.glmm_stages import (
    FittedGlmm,
    checked_n_agq,
    expected_information,
    glmm_deviance,
    joint_pirls_vcov,
    stage_one,
    stage_two,
)
from hiermodels.mle.glmm_warnings import warn_about_groups, warn_if_separated
from hiermodels.mle.laplace import AgqDeviance, GlmerLaplaceDeviance
from hiermodels.mle.lmm import profiled_deviance
from hiermodels.mle.optimize import OPTIMIZERS, checked_theta, evaluated_at, minimize_bounded
from hiermodels.mle.results import MixedFit
from hiermodels.mle.standardize import Standardization
from hiermodels.mle.start import moment_start, residual_moment_start
from hiermodels.mle.varpar import fixed_effects_covariance

__all__ = [
    "SingularFitWarning",
    "fit_glmm",
    "fit_lmm",
    "mle_method",
    "warn_if_singular",
]

#: The marginal-likelihood methods, as ``MixedFit.method`` spells them.
MLE_METHODS = ("REML", "ML", "Laplace")


def mle_method(family: Family, method: str | None) -> str:
    """The marginal-likelihood method for ``family``: ``method`` checked, or the default.

    Parameters
    ----------
    family : Family
        The model's response family.
    method : str or None
        ``"REML"`` or ``"ML"`` (Gaussian models), ``"Laplace"`` (GLMMs), in
        any case; ``None`` for the family's default (REML for Gaussian
        models, Laplace otherwise).

    Returns
    -------
    str
        ``"REML"``, ``"ML"`` or ``"Laplace"``.

    Raises
    ------
    ValueError
        For an unknown method, or one that does not apply to ``family``.
    """
    if method is None:
        return "REML" if family.is_gaussian else "Laplace"
    key = {name.lower(): name for name in MLE_METHODS}.get(str(method).lower())
    if key is None:
        raise ValueError(f"method must be one of 'REML', 'ML', 'Laplace'; got {method!r}")
    if family.is_gaussian and key == "Laplace":
        raise ValueError("a Gaussian model's likelihood is exact: use method='REML' or 'ML'")
    if not family.is_gaussian and key != "Laplace":
        raise ValueError(
            f"{key} applies to Gaussian models; family {family.name!r} is fitted "
            "with method='Laplace'"
        )
    return key


def warn_if_singular(fit: MixedFit) -> None:
    """Warn as lme4 does when the fit is on the boundary."""
    if fit.singular:
        warnings.warn(
            "boundary (singular) fit: some variance components are estimated as zero "
            "or correlations as ±1; see MixedFit.varcorr",
            SingularFitWarning,
            stacklevel=3,
        )


@single_threaded_blas
def fit_lmm(
    design: Design,
    method: str = "REML",
    *,
    start: np.ndarray | None = None,
    theta: np.ndarray | None = None,
    optimizer: str = "quasi-newton",
) -> MixedFit:
    """Fit a linear mixed model by REML or ML.

    Parameters
    ----------
    design : Design
        A Gaussian design with at least one random-effect term.
    method : {"REML", "ML"}
        Restricted or full maximum likelihood.
    start : numpy.ndarray, optional
        Start values for θ (default: moment estimates,
        :func:`~hiermodels.mle.start.moment_start`; lme4 starts at identity
        relative factors, which ``optimizer="bobyqa"`` keeps).
    theta : numpy.ndarray, optional
        Evaluate the model at this θ instead of optimising (``β`` and ``σ``
        are still profiled): the fit of given variance parameters, e.g.
        another program's estimates.
    optimizer : {"quasi-newton", "bobyqa"}
        ``"quasi-newton"`` (default): bound-constrained quasi-Newton on the
        analytic gradient of the criterion, with BOBYQA as the fallback;
        ``"bobyqa"``: BOBYQA with Newton polishing, lme4's derivative-free
        path. The fit log (``fit.opt``) records which ran.

    Returns
    -------
    MixedFit

    Warns
    -----
    SingularFitWarning
        When the estimate is on the boundary (a variance estimated as zero or
        a correlation of ±1), as lme4's "boundary (singular) fit" message.
    """
    method_key = mle_method(design.family, method)
    reml = method_key == "REML"
    standardization = Standardization.of(design)
    std_design = standardization.apply(design)
    deviance = profiled_deviance(std_design, reml=reml)
    std_layout = deviance.layout
    layout = std_layout.with_covariates(design)
    theta_layout = std_layout.theta
    lower = theta_layout.lower_bounds()
    if theta is not None:
        given = standardization.standard_theta(checked_theta(theta, lower), std_layout)
        opt = evaluated_at(deviance, given, lower)
    else:
        x0 = (
            (moment_start(deviance, std_design) if optimizer != "bobyqa" else theta_layout.start())
            if start is None
            else standardization.standard_theta(np.asarray(start, dtype=float), std_layout)
        )
        opt = minimize_bounded(
            deviance,
            x0,
            lower,
            polish=True,
            value_and_gradient=deviance.value_and_gradient,
            optimizer=optimizer,
            boundary_restart=theta_layout.start(),
        )
    sol = deviance.solve(opt.final)
    sigma_std = deviance.sigma(sol)
    beta = standardization.beta(sol.beta)
    objective = deviance.objective(sol) + standardization.criterion_offset(design.nobs, reml)
    # the factor's pattern is the standardised layout's, whose covariates (n × q
    # arrays) the fit need not keep: the original's has the same index arrays
    effects = ConditionalEffects(
        layout,
        standardization,
        replace(sol, factor=replace(sol.factor, pattern=layout.pattern)),
        sigma_std,
    )
    fit = MixedFit(
        design=design,
        method=method_key,
        layout=layout,
        theta=standardization.theta(sol.theta, std_layout),
        beta=beta,
        vcov_beta=functools.partial(fixed_effects_covariance, standardization, sol.rx, sigma_std),
        sigma=standardization.y_scale * sigma_std,
        conditional_modes=effects.modes,
        conditional_covariances=effects.covariances,
        loglik=-0.5 * objective,
        objective=objective,
        linear_predictor=functools.partial(effects.linear_predictor, design, layout, beta),
        opt=opt,
        standardized_theta=sol.theta,
    )
    warn_if_singular(fit)
    return fit


#: Method labels by number of quadrature nodes (glmer's ``nAGQ``); more than one is "AGQ".
_GLMM_METHODS = {0: "Laplace (nAGQ=0)", 1: "Laplace"}


@single_threaded_blas
def fit_glmm(
    design: Design,
    *,
    start: np.ndarray | None = None,
    n_agq: int = 1,
    laplace: str = "exact",
    optimizer: str = "quasi-newton",
) -> MixedFit:
    """Fit a GLMM by maximising the Laplace approximation (glmer, ``nAGQ = 1``).

    Parameters
    ----------
    design : Design
        A binomial, bernoulli, Poisson, negative-binomial, Gamma or
        inverse-Gaussian design with random effects.
    start : numpy.ndarray, optional
        Start values for θ.
    n_agq : int
        Quadrature nodes per group: 1 is the Laplace approximation; more
        (models with one scalar random-effect term only) is adaptive
        Gauss–Hermite quadrature, as glmer's ``nAGQ``; 0 optimises θ alone
        with β updated inside PIRLS and stops there (glmer's ``nAGQ = 0``,
        MixedModels.jl's ``fast = true``): faster, and an approximation to
        the Laplace fit.
    laplace : {"exact", "glmer"}
        ``"exact"`` (default) maximises the Laplace approximation itself, as
        glmmTMB does; ``"glmer"`` evaluates it the way glmer does (see
        :class:`~hiermodels.mle.laplace.GlmerLaplaceDeviance`) to reproduce
        lme4's estimates to about four digits — for the negative binomial,
        glmer.nb's, with the expected information.
    optimizer : {"quasi-newton", "bobyqa"}
        ``"quasi-newton"`` (default): where the analytic gradient of the
        Laplace deviance is available (exact Laplace, ``n_agq=1``, with the
        logit or log link; the negative binomial's ``log α`` differenced),
        bounded quasi-Newton steps over ``(θ, extra, β)`` from the GLM's
        ``β``, with BOBYQA as fallback, and the Hessian from differences of
        the gradient. ``"bobyqa"``, and every other case: glmer's two stages
        with BOBYQA (θ with β inside PIRLS, then ``(θ, β)``) and the Hessian
        from second differences of the deviance.

    Returns
    -------
    MixedFit
        ``method="Laplace"``, ``"AGQ"`` or ``"Laplace (nAGQ=0)"``; ``sigma``
        is 1; ``alpha`` is the negative binomial's dispersion
        (``Var(y) = μ + μ²/α``, estimated jointly with θ and β on the log
        scale, as glmmTMB's ``nbinom2``), ``None`` for other families;
        ``phi`` is the Gamma's or inverse Gaussian's dispersion (``Var(y) =
        φμ²``, ``φμ³``; glmmTMB's ``sigma()`` is ``√φ``), estimated on the log
        scale in the same way, ``None`` for other families. The
        fixed-effects covariance is the inverse of half the finite-difference
        Hessian of the deviance over ``(θ, α, β)``, as lme4's default
        ``use.hessian = TRUE``; with ``n_agq=0`` it is ``(R_XᵀR_X)⁻¹`` of the
        joint PIRLS system, as glmer's.

    Raises
    ------
    ValueError
        For an ``n_agq`` that is not a non-negative integer, or options that
        do not go together.
    FitError
        When the Laplace approximation cannot be evaluated at the estimates.

    Warns
    -----
    SeparationWarning
        Before fitting, when a fixed-effect column or combination separates
        the response (:func:`~hiermodels.mle.degenerate.separated_columns`);
        after, when groups with all responses at one end of their range drove
        the SD or their conditional modes off
        (:func:`~hiermodels.mle.degenerate.group_problems`).
    DegenerateDataWarning
        When all-zero count groups have conditional modes set by the
        random-effect distribution alone.
    SingularFitWarning, ConvergenceWarning
        As lme4: a boundary fit; an optimum the checks cannot confirm. A
        negative binomial whose ``alpha`` runs to the Poisson limit is a
        boundary fit too (:func:`~hiermodels.mle.dispersion.warn_poisson_boundary`).
    """
    n_agq = checked_n_agq(n_agq)
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}; got {optimizer!r}"
        )
    if laplace not in ("exact", "glmer"):
        raise ValueError(f"laplace must be 'exact' or 'glmer', got {laplace!r}")
    if laplace == "glmer" and n_agq != 1:
        raise ValueError("laplace='glmer' applies to the Laplace approximation (n_agq=1)")
    # covariates centred and scaled, estimates mapped back: the Laplace deviance is
    # the same number in either coordinates, and the optimiser's problem is unit-free
    standardization = Standardization.of(design)
    std_design = standardization.apply(design)
    dev, beta0, extra0 = glmm_deviance(std_design)
    if n_agq != 1 and dev.laplace.response.link == "probit":
        # glmer's nAGQ = 0 and its adaptive quadrature weight by the expected information
        dev = replace(dev, laplace=expected_information(dev.laplace))
    if n_agq > 1:
        AgqDeviance(dev.laplace, n_agq)  # refuses other than one scalar term, before fitting
        dev = dev.with_objective(lambda lap: AgqDeviance(lap, n_agq))
    glm_eta = std_design.X @ beta0 + dev.laplace.response.offset
    separation = warn_if_separated(design, dev.laplace.response, (std_design.X, glm_eta))
    theta0 = (
        dev.laplace.layout.theta.start()
        if start is None
        else standardization.standard_theta(np.asarray(start, dtype=float), dev.laplace.layout)
    )
    x0 = np.concatenate([theta0, extra0])
    if optimizer == "quasi-newton" and n_agq == 1 and laplace == "exact" and dev.has_gradient:
        # with the analytic gradient, quasi-Newton steps from the GLM's β (and θ from
        # the moments of its working residuals) reach the optimum in fewer
        # evaluations than glmer's first stage alone needs
        if start is None:
            response = dev.laplace.response
            if design.family.is_positive:  # the inverse Gaussian's observed weights can be < 0
                response = response.with_information("expected")
            _, weights, resid = response.working(glm_eta)
            theta0 = residual_moment_start(dev.laplace.layout, resid, weights, noise=1.0)
            x0 = np.concatenate([theta0, extra0])
        fitted = stage_two(dev, x0, beta0, separation is not None, gradient=True)
        fit = _assembled_glmm(design, standardization, dev, fitted, _GLMM_METHODS[1])
        warn_if_singular(fit)
        warn_about_groups(fit, dev.laplace.response)
        return fit
    opt1, first, boundary = stage_one(dev, x0, beta0, final=n_agq == 0)
    if n_agq == 0:
        params = np.concatenate([opt1.final, first.beta])
        vcov = joint_pirls_vcov(dev.at(dev.split(params)[1]), first)
        fitted = FittedGlmm(params, first, first.deviance, vcov, opt1, boundary)
    else:
        if laplace == "glmer":
            start_eta = first.eta
            dev = dev.with_objective(
                lambda lap: GlmerLaplaceDeviance(expected_information(lap), start_eta)
            )
        fitted = stage_two(dev, opt1.final, first.beta, separation is not None, opt1)
    fit = _assembled_glmm(design, standardization, dev, fitted, _GLMM_METHODS.get(n_agq, "AGQ"))
    warn_if_singular(fit)
    warn_about_groups(fit, dev.laplace.response)
    return fit


def _assembled_glmm(
    design: Design,
    standardization: Standardization,
    dev: DispersedDeviance,
    fitted: FittedGlmm,
    method: str,
) -> MixedFit:
    """The ``MixedFit`` in the design's units from a fit in the standardised ones."""
    theta, extra, beta = dev.split(fitted.params)
    result = fitted.result
    std_layout = dev.laplace.layout
    modes_std, covs_std = conditional_blocks(
        std_layout, theta, result.factor, result.u_lead, result.u_rest, 1.0
    )
    modes, covs = standardization.effects(modes_std, covs_std, std_layout.order)
    layout = std_layout.with_covariates(design)
    beta_out = standardization.beta(beta)
    vcov = fitted.vcov_beta
    alpha = phi = None
    if dev.has_poisson_limit:
        alpha = math.inf if fitted.poisson_boundary else math.exp(float(extra[0]))
    elif dev.n_extra:
        phi = math.exp(float(extra[0]))
    return MixedFit(
        design=design,
        method=method,
        layout=layout,
        theta=standardization.theta(theta, std_layout),
        beta=beta_out,
        vcov_beta=standardization.vcov_beta(0.5 * (vcov + vcov.T)),
        sigma=1.0,
        conditional_modes=modes,
        conditional_covariances=covs,
        # aggregated cells: the rows' log-likelihood adds the combinatorial terms
        loglik=-0.5 * fitted.deviance
        + (design.compressed.loglik_constant if design.compressed is not None else 0.0),
        objective=fitted.deviance,
        linear_predictor=conditional_linear_predictor(design, layout, beta_out, modes),
        opt=fitted.opt,
        standardized_theta=theta,
        alpha=alpha,
        phi=phi,
    )


__getattr__ = moved_names(
    __name__,
    {"linear_predictor": ("hiermodels.mle.conditional", "conditional_linear_predictor")},
)
