"""A family's dispersion as a parameter of the Laplace fit, as glmmTMB estimates it.

A negative-binomial GLMM has one parameter more than a Poisson one: the
dispersion ``α`` of ``Var(y) = μ + μ²/α`` (PyMC's ``alpha``, glmmTMB's
``sigma()``, glmer.nb's ``theta``). For given ``α`` its Laplace deviance in
``(θ, β)`` is computed exactly like any GLMM's — PIRLS with the observed
information as weights, so that ``log |L|²`` is the log-determinant of the
Hessian of the joint log-density in ``u`` as glmmTMB's is — and ``log α``
joins ``θ`` as a parameter of both optimisation stages.

The Gamma and the inverse Gaussian have a dispersion ``φ`` too
(``Var(y) = φμ²``, ``φμ³``; :mod:`hiermodels.mle.response`); ``log φ`` is
their extra parameter, in the same place.

:class:`DispersedDeviance` holds the Laplace deviance of a design with its
extra parameters (none, ``log α`` or ``log φ``), so that the fitting code
treats every family alike: parameters are ``(θ, extra, β)``.

``α → ∞`` is the Poisson model. When the likelihood keeps rising all the way
there (no overdispersion beyond the random effects), the optimiser wanders
off along a flat ridge and stops anywhere between ``α ≈ 10⁵`` and its bound;
:func:`at_poisson_boundary` recognises this, and the fit then reports
``α = ∞`` with the Poisson GLMM's estimates and a warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize_scalar

from hiermodels.design.families import POSITIVE_FAMILIES
from hiermodels.errors import SingularFitWarning
from hiermodels.mle.response import DISPERSION_NAME, PHI_NAME, GlmResponse

if TYPE_CHECKING:
    from hiermodels.design.design import Design
    from hiermodels.mle.blocked import ReLayout
    from hiermodels.mle.laplace import LaplaceDeviance, PirlsResult

__all__ = [
    "ALPHA_BOUNDS",
    "PHI_BOUNDS",
    "POISSON_TOLERANCE",
    "DispersedDeviance",
    "at_poisson_boundary",
    "dispersion_start",
    "phi_start",
    "warn_poisson_boundary",
]

#: Bounds on ``α`` for the optimiser (it works on ``log α``). At 1e-8 nearly all
#: the mass is at zero with an endless tail, beyond any data; at 1e10 the deviance
#: differs from the Poisson limit by ~1e-7 for counts in the thousands.
ALPHA_BOUNDS = (1e-8, 1e10)
#: Bounds on the Gamma's and inverse Gaussian's ``φ`` (the optimiser works on
#: ``log φ``): a coefficient of variation from 1e-5 to 1e3, beyond any data.
PHI_BOUNDS = (1e-10, 1e6)
#: The estimate is on the Poisson boundary when the deviance at ``α = ∞`` (with the
#: same θ and β) is no more than this above the optimum found: a difference far
#: below any statistical meaning, and above the ~1e-9 round-off of PIRLS.
POISSON_TOLERANCE = 1e-6
# The start value of α from the GLM is kept within these: a fit without random
# effects attributes their variance to α, so its estimate is only a rough guide.
_START_BOUNDS = (1e-2, 1e4)

# Relative step of the central difference in log α: PIRLS's round-off (~1e-9 of the
# deviance) over the step stays far below lme4's gradient tolerance.
_LOG_ALPHA_STEP = 1e-4

Objective = Callable[[np.ndarray], float]


@dataclass(frozen=True, eq=False)
class DispersedDeviance:
    """A GLMM's deviance over ``(θ, extra, β)``; ``extra`` is ``(log α,)``, ``(log φ,)`` or empty.

    Attributes
    ----------
    laplace : LaplaceDeviance
        The model's Laplace deviance in ``(θ, β)``; for a family with a
        dispersion at some ``α`` or ``φ``, replaced by :meth:`at` for each value.
    n_extra : int
        1 for the negative binomial (``log α``), the Gamma and the inverse
        Gaussian (``log φ``), else 0.
    build : callable, optional
        Turns the Laplace deviance at given extras into the objective over
        ``(θ, β)`` to minimise (adaptive quadrature, glmer's evaluation);
        ``None`` for the Laplace deviance itself.
    """

    laplace: LaplaceDeviance
    n_extra: int
    build: Callable[[LaplaceDeviance], Objective] | None = None

    @classmethod
    def of(cls, laplace: LaplaceDeviance) -> DispersedDeviance:
        """The deviance with ``log α`` or ``log φ`` as extra parameter where the family has one."""
        family = laplace.response.family
        return cls(laplace, int(family == "negativebinomial" or family in POSITIVE_FAMILIES))

    @classmethod
    def of_fit_design(cls, design: Design, alpha: float | None) -> DispersedDeviance:
        """The deviance of a (standardised) fitted design, at the fit's ``α`` or ``φ``."""
        from hiermodels.mle.blocked import ReLayout
        from hiermodels.mle.laplace import LaplaceDeviance

        response = GlmResponse.from_design(design, dispersion=alpha)
        return cls.of(LaplaceDeviance(design, ReLayout.of(design), response))

    def with_objective(self, build: Callable[[LaplaceDeviance], Objective]) -> DispersedDeviance:
        """The same model with another objective over ``(θ, β)`` at given extras."""
        return replace(self, build=build)

    @property
    def has_poisson_limit(self) -> bool:
        """Whether the extra parameter is the negative binomial's ``log α``, whose
        ``∞`` is the Poisson model."""
        return self.laplace.response.family == "negativebinomial"

    @property
    def extra_name(self) -> str:
        """``"log alpha"`` or ``"log phi"`` (empty without an extra parameter)."""
        if not self.n_extra:
            return ""
        return f"log {DISPERSION_NAME if self.has_poisson_limit else PHI_NAME}"

    @property
    def layout(self) -> ReLayout:
        """Random-effects ordering and partition."""
        return self.laplace.layout

    @property
    def n_theta(self) -> int:
        """Length of ``θ``."""
        return self.laplace.n_theta

    @property
    def n_nuisance(self) -> int:
        """Length of ``(θ, extra)``, the parameters before ``β``."""
        return self.laplace.n_theta + self.n_extra

    def extra_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds of the extras (``log α`` or ``log φ``)."""
        bounds = ALPHA_BOUNDS if self.has_poisson_limit else PHI_BOUNDS
        low, high = (math.log(b) for b in bounds)
        return np.full(self.n_extra, low), np.full(self.n_extra, high)

    def at(self, extra: np.ndarray) -> LaplaceDeviance:
        """The Laplace deviance in ``(θ, β)`` at the extras (``log α``, ``inf`` the Poisson
        limit; or ``log φ``)."""
        if not self.n_extra:
            return self.laplace
        log_alpha = float(extra[0])
        alpha = math.inf if log_alpha == math.inf else math.exp(log_alpha)
        response: GlmResponse = self.laplace.response.with_dispersion(alpha)
        # the warm start is shared: the mode moves little with the dispersion
        return replace(self.laplace, response=response)

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(θ, extra, β)`` from one parameter vector."""
        params = np.asarray(params, dtype=float)
        k = self.n_theta
        return params[:k], params[k : self.n_nuisance], params[self.n_nuisance :]

    def objective_at(self, extra: np.ndarray) -> Objective:
        """The objective over ``(θ, β)`` at the extras."""
        laplace = self.at(extra)
        return laplace if self.build is None else self.build(laplace)

    def __call__(self, params: np.ndarray) -> float:
        """The objective at ``params = (θ, extra, β)``."""
        theta, extra, beta = self.split(params)
        return self.objective_at(extra)(np.concatenate([theta, beta]))

    @property
    def has_gradient(self) -> bool:
        """Whether :meth:`value_and_gradient` is available: the objective is the
        Laplace deviance itself, with observed-information weights."""
        return self.build is None and self.laplace.has_gradient

    def value_and_gradient(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        """The objective and its gradient at ``params = (θ, extra, β)``.

        Analytic in ``(θ, β)`` (:meth:`LaplaceDeviance.value_and_gradient`);
        in ``log α`` or ``log φ`` a central difference, two more PIRLS runs (0 at
        ``α = ∞``, where ``log α`` is held).
        """
        theta, extra, beta = self.split(params)
        value, grad = self.at(extra).value_and_gradient(np.concatenate([theta, beta]))
        if not self.n_extra:
            return value, grad
        if not math.isfinite(float(extra[0])):  # at the Poisson limit log α is held at ∞
            return value, np.concatenate([grad[: self.n_theta], [0.0], grad[self.n_theta :]])
        step = _LOG_ALPHA_STEP * max(1.0, abs(float(extra[0])))
        up = self.at(extra + step)(np.concatenate([theta, beta]))
        down = self.at(extra - step)(np.concatenate([theta, beta]))
        slope = (up - down) / (2.0 * step)
        return value, np.concatenate([grad[: self.n_theta], [slope], grad[self.n_theta :]])

    def stage_one(self, x: np.ndarray, beta_start: np.ndarray) -> PirlsResult:
        """PIRLS over ``u`` and ``β`` together at ``x = (θ, extra)`` (glmer's ``nAGQ = 0``)."""
        return self.at(x[self.n_theta :]).pirls_joint(x[: self.n_theta], beta_start)

    def pirls(self, params: np.ndarray) -> PirlsResult:
        """The conditional mode at ``params = (θ, extra, β)``, as the objective evaluates it."""
        theta, extra, beta = self.split(params)
        objective = self.objective_at(extra)
        evaluate = getattr(objective, "pirls", None)
        if evaluate is None:  # adaptive quadrature: the mode is the Laplace one
            evaluate = self.at(extra).pirls
        return evaluate(theta, beta)


def dispersion_start(response: GlmResponse, mu: np.ndarray) -> float:
    """A start value of ``α``: its maximum-likelihood value for the means ``mu``.

    ``mu`` are the fitted means of the Poisson GLM without random effects;
    the estimate is kept within ``[1e-2, 1e4]``.
    """
    eta = np.log(np.maximum(mu, 1e-300))

    def minus_loglik(log_alpha: float) -> float:
        return response.with_dispersion(math.exp(log_alpha)).deviance(eta)

    low, high = (math.log(b) for b in _START_BOUNDS)
    found = minimize_scalar(minus_loglik, bounds=(low, high), method="bounded")
    return math.exp(float(found.x))


def phi_start(response: GlmResponse, mu: np.ndarray) -> float:
    """A start value of the Gamma's or inverse Gaussian's ``φ``: the Pearson estimate.

    ``mean((y − μ)²/V(μ))`` with ``V(μ) = μ²`` or ``μ³`` at the means ``mu``
    of the GLM without random effects (which it overstates by their
    variance), kept within :data:`PHI_BOUNDS`.
    """
    power = 2.0 if response.family == "gamma" else 3.0
    pearson = float(np.mean((response.y - mu) ** 2 / mu**power))
    low, high = PHI_BOUNDS
    return min(max(pearson, 10.0 * low), 0.1 * high)


def at_poisson_boundary(objective: Objective, index: int, params: np.ndarray, value: float) -> bool:
    """Whether the optimum ``params`` (objective ``value``) is the Poisson limit.

    True when ``objective`` at ``α = ∞`` (``params[index]``, ``log α``, set
    to ``inf``) and the other parameters as they are is within
    :data:`POISSON_TOLERANCE` of ``value``: the likelihood does not fall on
    the way to the Poisson model, so the maximum is there (or the data
    cannot tell the two apart).
    """
    limit = np.array(params, dtype=float)
    limit[index] = math.inf
    return objective(limit) <= value + POISSON_TOLERANCE


def warn_poisson_boundary(alpha: float, stacklevel: int = 3) -> None:
    """Warn that the negative-binomial fit reduced to the Poisson GLMM (``α = ∞``).

    ``alpha`` is where the optimiser stopped on its way there.
    """
    warnings.warn(
        f"boundary fit: the negative-binomial dispersion {DISPERSION_NAME} is estimated as "
        f"infinite (estimate {alpha:.3g} on a flat ridge): the likelihood rises all the way "
        "to the Poisson limit, so these data show no overdispersion beyond the random "
        f"effects. {DISPERSION_NAME} is reported as inf and the other estimates are the "
        "Poisson GLMM's; fit family='poisson' for that model",
        SingularFitWarning,
        stacklevel=stacklevel,
    )
