"""The stages of a GLMM fit: start values, the optimisations and the covariance of β.

:func:`~hiermodels.mle.fit.fit_glmm` runs them as glmer does: stage one
optimises ``(θ, extra)`` with ``β`` updated inside PIRLS (glmer's
``nAGQ = 0``, :func:`stage_one`), stage two ``(θ, extra, β)`` jointly
(:func:`stage_two`); the fixed-effects covariance comes from the Hessian of
the deviance (or, for ``nAGQ = 0``, from the joint PIRLS system).
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg as sla

from hiermodels.design.design import Design
from hiermodels.design.families import POSITIVE_FAMILIES
from hiermodels.errors import FitError
from hiermodels.mle.blocked import ReLayout
from hiermodels.mle.derivatives import finite_difference_hessian
from hiermodels.mle.dispersion import (
    DispersedDeviance,
    at_poisson_boundary,
    dispersion_start,
    phi_start,
    warn_poisson_boundary,
)
from hiermodels.mle.laplace import AgqDeviance, LaplaceDeviance, PirlsResult
from hiermodels.mle.lmm import solve_pls
from hiermodels.mle.optimize import (
    GRADIENT_TOLERANCE,
    ConvergenceWarning,
    KnownCurvature,
    OptSummary,
    minimize_bounded,
)
from hiermodels.mle.response import GlmResponse

__all__ = [
    "LAPLACE_RESOLUTION",
    "FittedGlmm",
    "checked_n_agq",
    "expected_information",
    "glm_start",
    "glmm_deviance",
    "joint_pirls_vcov",
    "stage_one",
    "stage_two",
]

#: The quasi-Newton fit stops when a step would lower the Laplace deviance by less
#: than this (relative): PIRLS stops at a relative change of 1e-10 in the penalised
#: deviance, and a Newton step from there leaves an error near its square, but
#: digits below 1e-13 are not worth an evaluation.
LAPLACE_RESOLUTION = 1e-13


def checked_n_agq(n_agq: object) -> int:
    """``n_agq`` as a non-negative integer, or one clear error."""
    integral = isinstance(n_agq, numbers.Integral) or (
        isinstance(n_agq, float) and n_agq.is_integer()
    )
    if isinstance(n_agq, bool) or not integral or n_agq < 0:  # type: ignore[operator]
        raise ValueError(
            f"n_agq must be a non-negative integer — 0 (θ alone, β inside PIRLS, glmer's "
            f"nAGQ = 0), 1 (the Laplace approximation, the default) or more quadrature "
            f"nodes — got {n_agq!r}"
        )
    return int(n_agq)  # type: ignore[call-overload]


def glm_start(design: Design, response: GlmResponse) -> np.ndarray:
    """Fixed effects of the GLM without random effects, by IRLS."""
    x = design.X
    with np.errstate(divide="ignore", invalid="ignore"):
        prop = np.where(response.trials > 0, response.y / response.trials, 0.0)
    if response.family == "binomial":
        mu = (response.trials * prop + 0.5) / (response.trials + 1.0)
        eta = np.log(mu / (1 - mu)) if response.link == "logit" else _probit(mu)
    elif response.family in POSITIVE_FAMILIES:
        # Fisher scoring: the inverse Gaussian's observed information can be negative
        response = response.with_information("expected")
        power = {"log": 0.0, "inverse": -1.0, "1/mu^2": -2.0}[response.link]
        eta = np.log(response.y) if power == 0.0 else response.y**power
    else:
        eta = np.log(response.y + 0.1)
    beta = np.zeros(x.shape[1])
    for _ in range(50):
        _, weights, resid = response.working(eta)
        z = eta - response.offset + resid
        xw = x * weights[:, None]
        new = np.linalg.solve(x.T @ xw, xw.T @ z)
        if np.max(np.abs(new - beta)) < 1e-10:
            beta = new
            break
        beta = new
        eta = x @ beta + response.offset
    return beta


def _probit(p: np.ndarray) -> np.ndarray:
    from scipy.special import ndtri

    return ndtri(p)


def _hessian(
    func: Callable[[np.ndarray], float],
    x: np.ndarray,
    free: np.ndarray,
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None,
) -> np.ndarray:
    """Central-difference Hessian over the ``free`` coordinates of ``x``.

    With ``value_and_gradient``, forward differences of the gradient
    (``k + 1`` evaluations, relative step 1e-5: the error, ~1e-5 of the
    curvature, is far below the estimates' uncertainty), symmetrised. Otherwise second
    differences of ``func`` with relative step 1e-3, not lme4's 1e-4: each value
    comes from a PIRLS run stopped at a relative change of 1e-10, and that
    noise divided by ``h²`` swamps the curvature of flat (e.g. bernoulli-probit)
    deviances at 1e-4.
    """
    if value_and_gradient is not None:
        index = np.flatnonzero(free)
        centre = value_and_gradient(x)[1]
        hess = np.empty((index.size, index.size))
        for column, i in enumerate(index):
            h = 1e-5 * max(1.0, abs(x[i]))
            shifted = x.copy()
            shifted[i] += h
            hess[:, column] = (value_and_gradient(shifted)[1] - centre)[index] / h
        return 0.5 * (hess + hess.T)

    def on_free(values: np.ndarray) -> float:
        point = x.copy()
        point[free] = values
        return func(point)

    return finite_difference_hessian(on_free, x[free], step=1e-3)


def _fixed_effects_covariance(
    hess: np.ndarray, n_theta: int, *, separated: bool = False
) -> np.ndarray:
    """``[2 H⁻¹]_ββ``, or ``2 H_ββ⁻¹`` (conditional on θ̂) with a warning if ``H`` is not PD.

    NaN (with a warning, or after the separation warning when ``separated``)
    when the deviance could not be evaluated around the optimum or is not
    convex in ``β`` there: no standard error is better than a wrong one.
    """
    p = hess.shape[0] - n_theta
    unavailable = np.full((p, p), np.nan)
    if not np.all(np.isfinite(hess)):
        warnings.warn(
            "the deviance could not be evaluated at every point next to the optimum "
            "(the random-effects system is numerically singular there), so the "
            "fixed-effect standard errors are not available (NaN); the estimates are "
            "near a boundary of what these data can identify",
            ConvergenceWarning,
            stacklevel=3,
        )
        return unavailable
    try:
        np.linalg.cholesky(hess)
        return (2.0 * np.linalg.inv(hess))[n_theta:, n_theta:]
    except np.linalg.LinAlgError:
        if not separated:  # under separation that warning already says it all
            warnings.warn(
                "the finite-difference Hessian of the deviance over (θ, β) is not positive "
                "definite at the optimum (θ is poorly determined); the fixed-effect "
                "standard errors are conditional on θ̂",
                ConvergenceWarning,
                stacklevel=3,
            )
    block = hess[n_theta:, n_theta:]
    try:
        np.linalg.cholesky(block)
    except np.linalg.LinAlgError:
        if not separated:
            warnings.warn(
                "the deviance is not convex in the fixed effects at the optimum: the "
                "fixed effects are not identified (check for collinear predictors or "
                "groups of responses all at one end of their range); their standard "
                "errors are not available (NaN)",
                ConvergenceWarning,
                stacklevel=3,
            )
        return unavailable
    return 2.0 * np.linalg.inv(block)


def glmm_deviance(design: Design) -> tuple[DispersedDeviance, np.ndarray, np.ndarray]:
    """The deviance of a standardised design, start values of β and of the extras.

    For the negative binomial the GLM without random effects is fitted as a
    Poisson GLM first, and ``α`` started at its maximum-likelihood value for
    those means; for the Gamma and the inverse Gaussian, whose GLM
    estimates do not depend on ``φ``, ``φ`` starts at the Pearson estimate.
    """
    layout = ReLayout.of(design)
    if design.family.is_positive:
        unit = GlmResponse.from_design(design, dispersion=1.0)
        beta = glm_start(design, unit)
        phi = phi_start(unit, unit.mean(design.X @ beta + unit.offset))
        response = unit.with_dispersion(phi)
        dev = DispersedDeviance.of(LaplaceDeviance(design, layout, response))
        return dev, beta, np.array([math.log(phi)])
    if design.family.name != "negativebinomial":
        response = GlmResponse.from_design(design)
        dev = DispersedDeviance.of(LaplaceDeviance(design, layout, response))
        return dev, glm_start(design, response), np.zeros(0)
    limit = GlmResponse.from_design(design, dispersion=math.inf)  # the Poisson GLM
    beta = glm_start(design, limit)
    alpha = dispersion_start(limit, limit.mean(design.X @ beta + limit.offset))
    response = limit.with_dispersion(alpha)
    dev = DispersedDeviance.of(LaplaceDeviance(design, layout, response))
    return dev, glm_start(design, response), np.array([math.log(alpha)])


def expected_information(laplace: LaplaceDeviance) -> LaplaceDeviance:
    """The deviance with IRLS's expected-information weights, as glmer uses them."""
    return replace(laplace, response=laplace.response.with_information("expected"))


def _nuisance_bounds(dev: DispersedDeviance) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of ``(θ, extra)``."""
    low, high = dev.extra_bounds()
    lower_theta = dev.laplace.layout.theta.lower_bounds()
    return (
        np.concatenate([lower_theta, low]),
        np.concatenate([np.full(lower_theta.size, np.inf), high]),
    )


def stage_one(
    dev: DispersedDeviance, x0: np.ndarray, beta0: np.ndarray, *, final: bool
) -> tuple[OptSummary, PirlsResult, bool]:
    """Optimise ``(θ, extra)`` with ``β`` updated inside PIRLS.

    Returns the fit log, the mode at the optimum, and whether a negative
    binomial's ``α`` went to the Poisson limit (checked for the final fit only).

    As a first stage its optimum is only a start, and it is not checked. As
    the final fit (``n_agq=0``; glmer checks nothing there) it gets lme4's
    gradient check when PIRLS is Newton's method: with Fisher scoring (the
    probit link) the joint PIRLS stops where ``β`` is still ~1e-7 off, which
    puts noise of ~0.2 into a finite-difference gradient and would raise
    false alarms.
    """

    def deviance(x: np.ndarray) -> float:
        try:
            value = dev.stage_one(x, beta0).deviance
        except np.linalg.LinAlgError:
            return math.inf
        return value if math.isfinite(value) else math.inf

    lower, upper = _nuisance_bounds(dev)
    checked = final and dev.laplace.response.newton
    # a non-Newton PIRLS leaves a gradient too rough to test at the optimum
    opt = minimize_bounded(
        deviance, x0, lower, upper, gradient_tolerance=GRADIENT_TOLERANCE if checked else np.inf
    )
    boundary = (
        final
        and dev.has_poisson_limit
        and at_poisson_boundary(deviance, dev.n_theta, opt.final, opt.final_objective)
    )
    if boundary:
        opt = _poisson_limit(deviance, dev.n_theta, opt, checked=checked)
    if final:
        what = f"θ and {dev.extra_name}" if dev.n_extra else "θ"
        limit = ", then at alpha = inf" if boundary else ""
        opt = replace(opt, optimizer=f"BOBYQA (NLopt), {what} with β inside PIRLS (nAGQ=0){limit}")
    result = _evaluated(dev.laplace, lambda: dev.stage_one(opt.final, beta0))
    return opt, result, boundary


@dataclass(frozen=True, eq=False)
class FittedGlmm:
    """What a fit found, in the standardised coordinates.

    ``params`` is ``(θ, extra, β)`` at the optimum; ``result`` the mode there
    (at ``α = ∞`` on the Poisson boundary); ``deviance`` the criterion
    reported; ``vcov_beta`` the covariance of the standardised ``β``.
    """

    params: np.ndarray
    result: PirlsResult
    deviance: float
    vcov_beta: np.ndarray
    opt: OptSummary
    poisson_boundary: bool = False


def stage_two(
    dev: DispersedDeviance,
    x1: np.ndarray,
    beta1: np.ndarray,
    separated: bool,
    opt1: OptSummary | None = None,
    *,
    gradient: bool = False,
) -> FittedGlmm:
    """Optimise ``(θ, extra, β)`` jointly; the estimates and their covariance.

    Starts from ``(x1, beta1)``: the end of stage one (``opt1``, whose
    evaluations the fit log adds), or the start values themselves.
    ``gradient`` asks for quasi-Newton steps and a Hessian from the
    analytic gradient (:meth:`DispersedDeviance.value_and_gradient`).

    A negative binomial whose ``α`` runs off to the Poisson limit
    (:func:`~hiermodels.mle.dispersion.at_poisson_boundary`) is refitted
    there, with ``α = ∞``: the estimates are then the Poisson GLMM's.
    """
    lower_x, upper_x = _nuisance_bounds(dev)
    p = beta1.size
    lower = np.concatenate([lower_x, np.full(p, -np.inf)])
    upper = np.concatenate([upper_x, np.full(p, np.inf)])
    value_and_gradient = dev.value_and_gradient if gradient else None
    opt = minimize_bounded(
        dev,
        np.concatenate([x1, beta1]),
        lower,
        upper,
        value_and_gradient=value_and_gradient,
        optimizer="quasi-newton" if gradient else "bobyqa",
        known_curvature=_fixed_effects_curvature(dev),
        resolution=LAPLACE_RESOLUTION,
    )
    boundary = dev.has_poisson_limit and at_poisson_boundary(
        dev, dev.n_theta, opt.final, opt.final_objective
    )
    if boundary:
        opt = _poisson_limit(dev, dev.n_theta, opt)
    limit = ", then at alpha = inf" if boundary else ""
    if opt1 is None:
        opt = replace(opt, optimizer=f"{opt.optimizer} from the GLM's β{limit}")
    else:
        opt = replace(
            opt,
            evaluations=opt.evaluations + opt1.evaluations,
            elapsed=opt.elapsed + opt1.elapsed,
            optimizer=f"BOBYQA (NLopt) over θ with β inside PIRLS, then {opt.optimizer}{limit}",
        )
    theta, extra, _ = dev.split(opt.final)
    result = _evaluated(dev.laplace, lambda: dev.pirls(opt.final))
    # adaptive quadrature's deviance is its own; the others' is the mode's
    quadrature = isinstance(dev.objective_at(extra), AgqDeviance)
    deviance = dev(opt.final) if quadrature else result.deviance
    free = np.concatenate(
        [theta > 1e-6, np.full(dev.n_extra, not boundary), np.ones(p, dtype=bool)]
    )
    free = free | ~np.isfinite(lower)
    hess = _hessian(dev, opt.final, free, value_and_gradient)
    n_free = int(np.sum(free[: dev.n_nuisance]))
    vcov = _fixed_effects_covariance(hess, n_free, separated=separated)
    return FittedGlmm(opt.final, result, deviance, vcov, opt, boundary)


def _fixed_effects_curvature(dev: DispersedDeviance) -> KnownCurvature:
    """The quasi-Newton start's Hessian block in ``β``: ``2 R_XᵀR_X`` at the mode there.

    It leaves out only the change of ``log |L|²`` with the weights, a small
    part of the curvature, and saves differencing the gradient along every
    fixed effect; the steps from it are refined by BFGS.
    """

    def curvature(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, extra, _ = dev.split(params)
        try:
            rx = _fixed_effects_factor(dev.at(extra), dev.pirls(params))
        except np.linalg.LinAlgError:  # not at this start: every column is differenced
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0))
        return np.arange(dev.n_nuisance, params.size), 2.0 * rx.T @ rx

    return curvature


def _poisson_limit(
    func: Callable[[np.ndarray], float], k: int, opt: OptSummary, *, checked: bool = True
) -> OptSummary:
    """Warn, and re-optimise ``func`` at ``α = ∞`` (``x[k] = log α = ∞``) from ``opt``.

    Returns the new log with ``log α = ∞`` in its place among the parameters;
    ``checked`` asks for the optimiser's convergence check.
    """
    warn_poisson_boundary(math.exp(opt.final[k]), stacklevel=5)

    def objective(x: np.ndarray) -> float:
        return func(np.insert(x, k, math.inf))

    limit = minimize_bounded(
        objective,
        np.delete(opt.final, k),
        np.delete(opt.lower, k),
        np.delete(opt.upper, k),
        gradient_tolerance=GRADIENT_TOLERANCE if checked else np.inf,
    )
    return replace(
        limit,
        initial=opt.initial,
        final=np.insert(limit.final, k, math.inf),
        lower=opt.lower,
        upper=opt.upper,
        initial_objective=opt.initial_objective,
        evaluations=opt.evaluations + limit.evaluations,
        elapsed=opt.elapsed + limit.elapsed,
        gradient=np.insert(limit.gradient, k, 0.0),
        warnings=opt.warnings + limit.warnings,
    )


def joint_pirls_vcov(laplace: LaplaceDeviance, result: PirlsResult) -> np.ndarray:
    """glmer's ``nAGQ = 0`` covariance of β: ``(R_XᵀR_X)⁻¹`` of the joint PIRLS system.

    The fixed-effects block of the inverse of the penalised system in
    ``(u, β)`` at the mode, with the working weights there — conditional on
    θ, as glmer computes no Hessian for ``nAGQ = 0``.
    """
    p = laplace.design.X.shape[1]
    rx_inv = sla.solve_triangular(_fixed_effects_factor(laplace, result), np.eye(p), lower=False)
    return rx_inv @ rx_inv.T


def _fixed_effects_factor(laplace: LaplaceDeviance, result: PirlsResult) -> np.ndarray:
    """``R_X`` of the joint PIRLS system in ``(u, β)`` at the mode's working weights.

    ``2 R_XᵀR_X`` is the curvature in ``β`` of the penalised deviance with
    ``u`` at its mode and the weights held: the Laplace deviance's Hessian in
    ``β`` up to the change of ``log |L|²`` with the weights.
    """
    layout, response = laplace.layout, laplace.response
    _, weights, resid = response.working(result.eta)
    xz = np.column_stack([laplace.design.X, result.eta - response.offset + resid])
    lead, rest = layout.z_transpose(xz, weights=weights)
    solution = solve_pls(
        layout,
        result.theta,
        layout.cross_products(weights),
        lead,
        rest,
        xz.T @ (xz * weights[:, None]),
    )
    return solution.rx


def _evaluated(dev: LaplaceDeviance, evaluate: Callable[[], PirlsResult]) -> PirlsResult:
    """A PIRLS result the fit cannot do without, with a clear error if none exists.

    The optimiser treats a failing evaluation as an infinite deviance; at the
    final estimates there is no such way out. A failure there may depend on
    the warm start, so PIRLS is retried once from ``u = 0``.
    """
    try:
        return evaluate()
    except np.linalg.LinAlgError:
        dev.warm_start.clear()
    try:
        return evaluate()
    except np.linalg.LinAlgError as err:
        raise FitError(
            "the Laplace approximation cannot be evaluated at the estimates: the "
            "random-effects system ΛᵀZᵀWZΛ + I is numerically singular there (typically "
            "a variance driven to a huge value by groups whose responses are all at one "
            "end of their range); simplify the random effects, drop or merge such groups, "
            "or fit with proper priors (Model.fit_bayes)"
        ) from err
