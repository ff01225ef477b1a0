"""PIRLS and the Laplace approximation for generalized linear mixed models.

As glmer with ``nAGQ = 1``: for given ``θ`` and ``β``, penalised
iteratively reweighted least squares finds the conditional mode ``ũ`` of
the spherical random effects; the Laplace approximation to the deviance is ::

    d(θ, β) = −2 Σ log p(yᵢ | ũ) + ‖ũ‖² + log |L|²

with ``L`` the Cholesky factor of ``ΛᵀZᵀWZΛ + I`` at the GLM working
weights ``W``. Stage one optimises ``θ`` with ``β`` updated inside PIRLS
(glmer's ``nAGQ = 0``); stage two optimises ``(θ, β)`` jointly from there.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.linalg as sla
from scipy.special import logsumexp

from hiermodels.design.design import Design
from hiermodels.errors import DegenerateDataWarning, FitError, SeparationWarning
from hiermodels.mle.blocked import BlockedFactor, ReLayout
from hiermodels.mle.degenerate import (
    LINK_SCALE_LIMIT,
    ZERO_COUNT_LIMIT,
    Separation,
    certified_finite,
    group_problems,
    name_list,
    separated_columns,
)
from hiermodels.mle.dispersion import (
    DispersedDeviance,
    at_poisson_boundary,
    dispersion_start,
    warn_poisson_boundary,
)
from hiermodels.mle.fit import conditional_blocks, linear_predictor, warn_if_singular
from hiermodels.mle.lmm import solve_pls
from hiermodels.mle.optimize import (
    GRADIENT_TOLERANCE,
    OPTIMIZERS,
    ConvergenceWarning,
    KnownCurvature,
    OptSummary,
    finite_difference_hessian,
    minimize_bounded,
    single_threaded_blas,
)
from hiermodels.mle.pirls import Mode, conditional_mode, glmer_mode, joint_mode, laplace_gradient
from hiermodels.mle.response import GlmResponse
from hiermodels.mle.results import MixedFit
from hiermodels.mle.standardize import Standardization
from hiermodels.mle.start import residual_moment_start

__all__ = [
    "AgqDeviance",
    "GlmerLaplaceDeviance",
    "LaplaceDeviance",
    "PirlsResult",
    "fit_glmm",
    "laplace_deviance",
]


@dataclass(frozen=True, eq=False)
class PirlsResult:
    """The conditional mode at one ``(θ, β)`` and the Laplace deviance there.

    Attributes
    ----------
    theta, beta : numpy.ndarray
        The parameters.
    u_lead, u_rest : numpy.ndarray
        Spherical conditional modes (leading ``(L₀, q₀)``, trailing).
    eta : numpy.ndarray
        Linear predictor at the mode.
    factor : BlockedFactor
        Cholesky factor of ``ΛᵀZᵀWZΛ + I`` at the mode's weights.
    deviance : float
        Laplace approximation to ``−2 log L(θ, β)``.
    iterations : int
        PIRLS iterations used.
    """

    theta: np.ndarray
    beta: np.ndarray
    u_lead: np.ndarray
    u_rest: np.ndarray
    eta: np.ndarray
    factor: BlockedFactor
    deviance: float
    iterations: int

    @classmethod
    def at(cls, theta: np.ndarray, beta: np.ndarray, mode: Mode) -> PirlsResult:
        """The result of a PIRLS run (``mode``) at ``(θ, β)``."""
        return cls(
            theta,
            beta,
            mode.u_lead,
            mode.u_rest,
            mode.eta,
            mode.factor,
            mode.deviance,
            mode.iterations,
        )


@dataclass(frozen=True, eq=False)
class LaplaceDeviance:
    """The Laplace deviance of a GLMM as a function of ``(θ, β)``.

    Attributes
    ----------
    design : Design
        A binomial, bernoulli or Poisson design.
    layout : ReLayout
        Random-effects ordering and partition.
    response : GlmResponse
        Response, trials, offset and link.
    warm_start : dict
        The last conditional mode found; PIRLS starts there when no start
        is given, as glmer does between optimiser steps (the mode is unique,
        so only the number of iterations depends on it).
    """

    design: Design
    layout: ReLayout
    response: GlmResponse
    warm_start: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def n_theta(self) -> int:
        """Length of ``θ``."""
        return self.layout.theta.length

    def pirls(
        self,
        theta: np.ndarray,
        beta: np.ndarray,
        start: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> PirlsResult:
        """Conditional mode of ``u`` for fixed ``(θ, β)``, by PIRLS with step halving.

        Compiled (:func:`hiermodels.mle.pirls.conditional_mode`). Starts from
        ``start``, else from the last mode found (:attr:`warm_start`).

        Raises
        ------
        numpy.linalg.LinAlgError
            When ``ΛᵀZᵀWZΛ + I`` is not numerically positive definite on the way.
        """
        if start is None:
            start = self.warm_start.get("u")
        beta = np.asarray(beta, dtype=float)
        # with a canonical link a PIRLS step is a Newton step, and the change in the
        # penalised deviance alone tells convergence; otherwise the step must be small too
        mode = conditional_mode(
            self.layout,
            self.response,
            theta,
            self.design.X @ beta + self.response.offset,
            start,
            newton=self.response.canonical,
        )
        self.warm_start["u"] = (mode.u_lead, mode.u_rest)
        return PirlsResult.at(theta, beta, mode)

    def pirls_joint(self, theta: np.ndarray, beta_start: np.ndarray) -> PirlsResult:
        """PIRLS over ``u`` and ``β`` together (glmer's ``nAGQ = 0`` update).

        Compiled (:func:`hiermodels.mle.pirls.joint_mode`). Starts from the
        last joint mode (:attr:`warm_start`), else from ``beta_start`` and
        ``u = 0``; the result is :meth:`pirls` at the ``β`` found.
        """
        if "joint" in self.warm_start:
            beta, u1, u2 = self.warm_start["joint"]
            start: tuple[np.ndarray, np.ndarray] | None = (u1, u2)
        else:
            beta, start = np.asarray(beta_start, dtype=float), None
        beta, u1, u2 = joint_mode(self.layout, self.response, theta, self.design.X, beta, start)
        self.warm_start["joint"] = (beta, u1, u2)
        return self.pirls(theta, beta, (u1, u2))

    def __call__(self, params: np.ndarray) -> float:
        """Laplace deviance at ``params = (θ, β)``."""
        params = np.asarray(params, dtype=float)
        try:
            result = self.pirls(params[: self.n_theta], params[self.n_theta :])
        except np.linalg.LinAlgError:
            return math.inf
        return result.deviance if math.isfinite(result.deviance) else math.inf

    @property
    def has_gradient(self) -> bool:
        """Whether :meth:`value_and_gradient` is available: PIRLS's weights are the
        observed information (canonical links; the negative binomial's default)."""
        return self.response.newton

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """Laplace deviance and its analytic gradient at ``params = (θ, β)``.

        ``(inf, NaN)`` where the deviance cannot be evaluated; see
        :func:`hiermodels.mle.pirls.laplace_gradient`.
        """
        params = np.asarray(params, dtype=float)
        theta = params[: self.n_theta]
        failed = (math.inf, np.full(params.size, np.nan))
        try:
            result = self.pirls(theta, params[self.n_theta :])
            if not math.isfinite(result.deviance):
                return failed
            gradient = laplace_gradient(
                self.layout,
                self.response,
                theta,
                self.design.X,
                result.u_lead,
                result.u_rest,
                result.eta,
                result.factor,
            )
        except np.linalg.LinAlgError:
            return failed
        return result.deviance, gradient


@dataclass(frozen=True, eq=False)
class AgqDeviance:
    """Adaptive Gauss–Hermite deviance of a GLMM with one scalar random effect.

    For a single scalar term the groups are conditionally independent, and
    each group's integral ``∫ φ(u) ∏ p(y_i | η_i + σ_b x_i u) du`` is computed
    by a Gauss–Hermite rule centred at the conditional mode and scaled by the
    Laplace SD (glmer's ``nAGQ > 1``). One node gives the Laplace deviance.

    Attributes
    ----------
    laplace : LaplaceDeviance
        Supplies the conditional modes and curvatures (PIRLS).
    n_nodes : int
        Quadrature nodes per group.
    """

    laplace: LaplaceDeviance
    n_nodes: int

    def __post_init__(self) -> None:
        layout = self.laplace.layout
        if layout.rest or layout.q_lead != 1:
            raise ValueError(
                "adaptive quadrature (n_agq > 1) needs a single scalar random-effect term "
                "such as (1 | g); use the Laplace approximation (n_agq=1) for this model"
            )
        if self.n_nodes < 1:
            raise ValueError(f"n_agq must be a positive integer, got {self.n_nodes}")

    def __call__(self, params: np.ndarray) -> float:
        """AGQ deviance at ``params = (θ, β)``."""
        lap = self.laplace
        params = np.asarray(params, dtype=float)
        theta, beta = params[: lap.n_theta], params[lap.n_theta :]
        try:
            result = lap.pirls(theta, beta)
        except np.linalg.LinAlgError:
            return math.inf
        layout = lap.layout
        scale = 1.0 / result.factor.l11[:, 0, 0]
        mode = result.u_lead[:, 0]
        nodes, weights = np.polynomial.hermite.hermgauss(self.n_nodes)
        points = mode[:, None] + math.sqrt(2.0) * scale[:, None] * nodes[None, :]
        fixed = lap.design.X @ beta + lap.response.offset
        codes = layout.lead_codes
        eta = fixed[:, None] + (layout.lead_X[:, 0] * theta[0])[:, None] * points[codes]
        loglik = np.zeros(points.shape)
        np.add.at(loglik, codes, lap.response.loglik_terms(eta))
        log_terms = (np.log(weights) + nodes**2)[None, :] - 0.5 * points**2 + loglik
        per_group = (
            np.log(math.sqrt(2.0) * scale)
            - 0.5 * math.log(2 * math.pi)
            + logsumexp(log_terms, axis=1)
        )
        value = -2.0 * float(np.sum(per_group))
        return value if math.isfinite(value) else math.inf


@dataclass(frozen=True, eq=False)
class GlmerLaplaceDeviance:
    """The Laplace deviance as glmer evaluates it, for agreement with lme4.

    glmer starts every PIRLS run from the linear predictor ``start_eta``
    found in its first stage, stops when the penalised deviance (deviance
    residuals plus ``‖u‖²``) changes by less than ``tolerance`` relative, and
    evaluates ``log |L|²`` with the working weights of the iterate *before*
    the last step. The result differs from the exact Laplace approximation of
    :class:`LaplaceDeviance` by up to about 10⁻² in deviance, which moves the
    estimates in their third or fourth digit; this class reproduces glmer's
    numbers to about 10⁻⁴.

    Attributes
    ----------
    laplace : LaplaceDeviance
        The model's exact Laplace deviance (design, layout, response).
    start_eta : numpy.ndarray
        Linear predictor every PIRLS run starts from.
    tolerance : float
        glmer's ``tolPwrss``.
    """

    laplace: LaplaceDeviance
    start_eta: np.ndarray
    tolerance: float = 1e-7

    def pirls(self, theta: np.ndarray, beta: np.ndarray) -> PirlsResult:
        """glmer's PIRLS run at ``(θ, β)`` (compiled: :func:`hiermodels.mle.pirls.glmer_mode`)."""
        lap = self.laplace
        beta = np.asarray(beta, dtype=float)
        fixed = lap.design.X @ beta + lap.response.offset
        mode = glmer_mode(lap.layout, lap.response, theta, fixed, self.start_eta, self.tolerance)
        return PirlsResult.at(theta, beta, mode)

    def __call__(self, params: np.ndarray) -> float:
        """glmer's Laplace deviance at ``params = (θ, β)``."""
        n_theta = self.laplace.n_theta
        params = np.asarray(params, dtype=float)
        try:
            value = self.pirls(params[:n_theta], params[n_theta:]).deviance
        except np.linalg.LinAlgError:
            return math.inf
        return value if math.isfinite(value) else math.inf


def laplace_deviance(design: Design) -> LaplaceDeviance:
    """The Laplace deviance function of a binomial, bernoulli or Poisson design."""
    return LaplaceDeviance(design, ReLayout.from_design(design), GlmResponse.from_design(design))


def _glm_start(design: Design, response: GlmResponse) -> np.ndarray:
    """Fixed effects of the GLM without random effects, by IRLS."""
    x = design.X
    with np.errstate(divide="ignore", invalid="ignore"):
        prop = np.where(response.trials > 0, response.y / response.trials, 0.0)
    if response.family == "binomial":
        mu = (response.trials * prop + 0.5) / (response.trials + 1.0)
        eta = np.log(mu / (1 - mu)) if response.link == "logit" else _probit(mu)
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


#: Method labels by number of quadrature nodes (glmer's ``nAGQ``); more than one is "AGQ".
#: The quasi-Newton fit stops when a step would lower the Laplace deviance by less
#: than this (relative): PIRLS stops at a relative change of 1e-10 in the penalised
#: deviance, and a Newton step from there leaves an error near its square, but
#: digits below 1e-13 are not worth an evaluation.
LAPLACE_RESOLUTION = 1e-13

_METHODS = {0: "Laplace (nAGQ=0)", 1: "Laplace"}


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
        A binomial, bernoulli, Poisson or negative-binomial design with
        random effects.
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
        :class:`GlmerLaplaceDeviance`) to reproduce lme4's estimates to about
        four digits — for the negative binomial, glmer.nb's, with the
        expected information.
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
        scale, as glmmTMB's ``nbinom2``), ``None`` for other families. The
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
    n_agq = _checked_n_agq(n_agq)
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
    dev, beta0, extra0 = _glmm_deviance(std_design)
    if n_agq != 1 and dev.laplace.response.link == "probit":
        # glmer's nAGQ = 0 and its adaptive quadrature weight by the expected information
        dev = replace(dev, laplace=_expected_information(dev.laplace))
    if n_agq > 1:
        AgqDeviance(dev.laplace, n_agq)  # refuses other than one scalar term, before fitting
        dev = dev.with_objective(lambda lap: AgqDeviance(lap, n_agq))
    glm_eta = std_design.X @ beta0 + dev.laplace.response.offset
    separation = _warn_if_separated(design, dev.laplace.response, (std_design.X, glm_eta))
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
            _, weights, resid = dev.laplace.response.working(glm_eta)
            theta0 = residual_moment_start(dev.laplace.layout, resid, weights, noise=1.0)
            x0 = np.concatenate([theta0, extra0])
        fitted = _stage_two(dev, x0, beta0, separation is not None, gradient=True)
        fit = _assembled(design, standardization, dev, fitted, _METHODS[1])
        warn_if_singular(fit)
        _warn_about_groups(fit, dev.laplace.response)
        return fit
    opt1, first, boundary = _stage_one(dev, x0, beta0, final=n_agq == 0)
    if n_agq == 0:
        params = np.concatenate([opt1.final, first.beta])
        vcov = _joint_pirls_vcov(dev.at(dev.split(params)[1]), first)
        fitted = _Fitted(params, first, first.deviance, vcov, opt1, boundary)
    else:
        if laplace == "glmer":
            start_eta = first.eta
            dev = dev.with_objective(
                lambda lap: GlmerLaplaceDeviance(_expected_information(lap), start_eta)
            )
        fitted = _stage_two(dev, opt1.final, first.beta, separation is not None, opt1)
    fit = _assembled(design, standardization, dev, fitted, _METHODS.get(n_agq, "AGQ"))
    warn_if_singular(fit)
    _warn_about_groups(fit, dev.laplace.response)
    return fit


def _checked_n_agq(n_agq: object) -> int:
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


def _glmm_deviance(design: Design) -> tuple[DispersedDeviance, np.ndarray, np.ndarray]:
    """The deviance of a standardised design, start values of β and of the extras.

    For the negative binomial the GLM without random effects is fitted as a
    Poisson GLM first, and ``α`` started at its maximum-likelihood value for
    those means.
    """
    layout = ReLayout.from_design(design)
    if design.family.name != "negativebinomial":
        response = GlmResponse.from_design(design)
        dev = DispersedDeviance.of(LaplaceDeviance(design, layout, response))
        return dev, _glm_start(design, response), np.zeros(0)
    limit = GlmResponse.from_design(design, dispersion=math.inf)  # the Poisson GLM
    beta = _glm_start(design, limit)
    alpha = dispersion_start(limit, limit.mean(design.X @ beta + limit.offset))
    response = limit.with_dispersion(alpha)
    dev = DispersedDeviance.of(LaplaceDeviance(design, layout, response))
    return dev, _glm_start(design, response), np.array([math.log(alpha)])


def _expected_information(laplace: LaplaceDeviance) -> LaplaceDeviance:
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


def _stage_one(
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
        and bool(dev.n_extra)
        and at_poisson_boundary(deviance, dev.n_theta, opt.final, opt.final_objective)
    )
    if boundary:
        opt = _poisson_limit(deviance, dev.n_theta, opt, checked=checked)
    if final:
        what = "θ and log alpha" if dev.n_extra else "θ"
        limit = ", then at alpha = inf" if boundary else ""
        opt = replace(opt, optimizer=f"BOBYQA (NLopt), {what} with β inside PIRLS (nAGQ=0){limit}")
    result = _evaluated(dev.laplace, lambda: dev.stage_one(opt.final, beta0))
    return opt, result, boundary


@dataclass(frozen=True, eq=False)
class _Fitted:
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


def _stage_two(
    dev: DispersedDeviance,
    x1: np.ndarray,
    beta1: np.ndarray,
    separated: bool,
    opt1: OptSummary | None = None,
    *,
    gradient: bool = False,
) -> _Fitted:
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
    boundary = bool(dev.n_extra) and at_poisson_boundary(
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
    return _Fitted(opt.final, result, deviance, vcov, opt, boundary)


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


def _joint_pirls_vcov(laplace: LaplaceDeviance, result: PirlsResult) -> np.ndarray:
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


def _assembled(
    design: Design,
    standardization: Standardization,
    dev: DispersedDeviance,
    fitted: _Fitted,
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
    alpha = None
    if dev.n_extra:
        alpha = math.inf if fitted.poisson_boundary else math.exp(float(extra[0]))
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
        loglik=-0.5 * fitted.deviance,
        objective=fitted.deviance,
        linear_predictor=linear_predictor(design, layout, beta_out, modes),
        opt=fitted.opt,
        standardized_theta=theta,
        alpha=alpha,
    )


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


def _warn_if_separated(
    design: Design, response: GlmResponse, glm: tuple[np.ndarray, np.ndarray] | None = None
) -> Separation | None:
    """Warn (:class:`SeparationWarning`) when the fixed effects separate the response.

    ``glm``: a fixed-effects matrix with the column space of ``design.X`` and
    the linear predictor of the GLM fitted on it, which usually proves the
    estimates finite (:func:`~hiermodels.mle.degenerate.certified_finite`)
    without the linear programmes that find a separation.
    """
    if glm is not None and certified_finite(glm[0], response, glm[1]):
        return None
    found = separated_columns(design.X, design.fixed_names, response)
    if found is None:
        return None
    kind = "complete" if found.complete else "quasi-complete"
    what = name_list(found.columns)
    if len(found.columns) > 1:
        what = f"a combination of {what}"
    if response.family == "binomial":
        how = (
            "predicts every success and failure perfectly"
            if found.complete
            else "predicts some responses perfectly (all successes on one side, all "
            "failures on the other) and ties the rest"
        )
    else:
        how = "can drive the rate to zero on rows whose counts are zero without changing the others"
    warnings.warn(
        f"{kind} separation in the fixed effects: {what} {how}, so the maximum-likelihood "
        f"estimates of {name_list(found.infinite, shown=8)} are infinite and the reported "
        "estimates and standard errors are wherever the optimiser stopped. Fit with a "
        "proper prior on the fixed effects (Model.fit_bayes), or remove the covariate or "
        "merge the levels involved",
        SeparationWarning,
        stacklevel=3,
    )
    return found


def _warn_about_groups(fit: MixedFit, response: GlmResponse) -> None:
    """Warn about groups whose all-boundary responses drove the estimates off."""
    problems = group_problems(fit.layout.blocks, fit.covariances(), fit.conditional_modes, response)
    ends = "all successes or all failures" if response.family == "binomial" else "all zero counts"
    for problem in problems:
        if problem.separated:
            symptom = (
                f"the random-effect SD ran off to {problem.sd:.3g} on the link scale"
                if problem.sd > LINK_SCALE_LIMIT
                else f"their conditional modes ran beyond ±{LINK_SCALE_LIMIT:g} on the link "
                f"scale (SD {problem.sd:.3g})"
            )
            warnings.warn(
                f"quasi-separation by group: {len(problem.separated)} level(s) of "
                f"{problem.group!r} have {ends} ({name_list(problem.separated)}) and "
                f"{symptom}: the likelihood keeps rising as those groups' effects grow, so "
                "the SD and their modes mean nothing. Fit with a proper prior on the SD "
                "(Model.fit_bayes), or drop or merge those groups",
                SeparationWarning,
                stacklevel=3,
            )
        if problem.uninformative:
            warnings.warn(
                f"{len(problem.uninformative)} level(s) of {problem.group!r} have all-zero "
                f"counts ({name_list(problem.uninformative)}): their conditional modes went "
                f"below -{ZERO_COUNT_LIMIT:g} on the log scale (rates over "
                f"{math.exp(ZERO_COUNT_LIMIT):.0f} times below the fixed-effects prediction), "
                "a value set by the tail of the random-effect distribution, since zero "
                "counts bound a rate from above only: read those effects as 'rate near "
                "zero', not as estimates; they also pull the random-effect SD up, so "
                "compare the fit without those groups",
                DegenerateDataWarning,
                stacklevel=3,
            )
