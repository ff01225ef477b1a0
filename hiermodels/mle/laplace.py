"""The deviance of a generalized linear mixed model: PIRLS, Laplace and adaptive quadrature.

As glmer with ``nAGQ = 1``: for given ``θ`` and ``β``, penalised
iteratively reweighted least squares finds the conditional mode ``ũ`` of
the spherical random effects; the Laplace approximation to the deviance is ::

    d(θ, β) = −2 Σ log p(yᵢ | ũ) + ‖ũ‖² + log |L|²

with ``L`` the Cholesky factor of ``ΛᵀZᵀWZΛ + I`` at the GLM working
weights ``W``. Stage one optimises ``θ`` with ``β`` updated inside PIRLS
(glmer's ``nAGQ = 0``); stage two optimises ``(θ, β)`` jointly from there
(:mod:`hiermodels.mle.glmm_stages`). :class:`AgqDeviance` replaces the
Laplace approximation by adaptive Gauss–Hermite quadrature, and
:class:`GlmerLaplaceDeviance` evaluates it as glmer does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import logsumexp

from hiermodels.design.design import Design
from hiermodels.mle.blocked import BlockedFactor, ReLayout
from hiermodels.mle.pirls import Mode, conditional_mode, glmer_mode, joint_mode, laplace_gradient
from hiermodels.mle.response import GlmResponse

__all__ = [
    "AgqDeviance",
    "GlmerLaplaceDeviance",
    "LaplaceDeviance",
    "PirlsResult",
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
        The last conditional mode found (``"u"``: its two parts; ``"joint"``:
        ``β`` and the two parts of the joint mode); PIRLS starts there when no start
        is given, as glmer does between optimiser steps (the mode is unique,
        so only the number of iterations depends on it).
    """

    design: Design
    layout: ReLayout
    response: GlmResponse
    warm_start: dict[str, tuple[np.ndarray, ...]] = field(default_factory=dict)

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
        if start is None and "u" in self.warm_start:
            u_lead, u_rest = self.warm_start["u"]
            start = (u_lead, u_rest)
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
    return LaplaceDeviance(design, ReLayout.of(design), GlmResponse.from_design(design))
