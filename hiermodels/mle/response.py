"""GLM response quantities: means, working weights and log-likelihoods.

Binomial responses are handled as lme4 does: the response is the
proportion of successes with the number of trials as prior weight
(bernoulli is binomial with one trial).

The negative binomial is glmmTMB's ``nbinom2`` (MASS's and PyMC's
parameterisation): ``Var(y) = μ + μ²/α`` with the dispersion ``α`` (the
name the Bayesian model uses, :data:`DISPERSION_NAME`), log link. Its
log-likelihood is evaluated in a form that stays exact as ``α → ∞``, where
it tends to the Poisson's; ``α = ∞`` is the Poisson model itself.

The Gamma and the inverse Gaussian have a dispersion ``φ``
(:data:`PHI_NAME`): ``Var(y) = φμ²`` (the Gamma's shape is ``1/φ``, and
``√φ`` the coefficient of variation) and ``Var(y) = φμ³``; glmmTMB's and
lme4's ``sigma()`` is ``√φ``. Links: ``"log"`` for both, ``"inverse"``
(``η = 1/μ``, canonical) for the Gamma, ``"1/mu^2"`` (canonical) for the
inverse Gaussian. With the log link the Gamma's observed information
``y/(φμ)`` is positive; the inverse Gaussian's, ``(2y − μ)/(φμ²)``, is
negative where ``y < μ/2``, so only the sum over a group's rows keeps the
Hessian of the joint log-density positive definite at the mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

from hiermodels.design.design import Design
from hiermodels.design.families import POSITIVE_FAMILIES

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit

__all__ = ["DISPERSION_NAME", "PHI_NAME", "GlmResponse", "log_binomial_coefficient"]

#: The public name of the negative-binomial dispersion (MLE, EB and Bayes alike).
DISPERSION_NAME = "alpha"
#: The public name of the Gamma's and inverse Gaussian's dispersion ``φ``.
PHI_NAME = "phi"

# Keeps probabilities and means away from 0 and 1, where working weights vanish.
_EPS = 1e-10
# Counts up to this size get log Γ(y + α) − log Γ(α) − y log α as a running sum of
# log1p(k/α), exact for any α; larger ones by log-gamma differences.
_TABLE_LIMIT = 1_000_000


@dataclass(frozen=True, eq=False)
class GlmResponse:
    """The response of a binomial, Poisson, negative-binomial, Gamma or inverse-Gaussian GLMM.

    Attributes
    ----------
    family : str
        ``"binomial"`` (bernoulli included), ``"poisson"``,
        ``"negativebinomial"``, ``"gamma"`` or ``"inverse_gaussian"``.
    link : str
        ``"logit"``, ``"probit"``, ``"log"``, ``"inverse"`` or ``"1/mu^2"``.
    y : numpy.ndarray
        Successes (binomial) or counts.
    trials : numpy.ndarray
        Number of trials (ones for bernoulli and count families).
    offset : numpy.ndarray
        Offset on the link scale (zeros if none).
    dispersion : float
        The negative binomial's ``α`` (``Var(y) = μ + μ²/α``; ``inf`` is the
        Poisson limit); the Gamma's and inverse Gaussian's ``φ``; ``inf``
        for the other families.
    information : {"observed", "expected"}
        Which curvature :meth:`working` returns as weights. ``"observed"``
        (the default of the probit link, the negative binomial, the Gamma and
        the inverse Gaussian) makes
        PIRLS Newton's method and ``log |L|²`` the log-determinant of the
        Hessian of the joint log-density in ``u`` — the exact Laplace
        approximation, as glmmTMB evaluates it; ``"expected"`` gives the
        Fisher weights of IRLS, as glmer (and glmer.nb) use, also for its
        ``nAGQ = 0`` and adaptive quadrature. They coincide for canonical links.
    """

    family: str
    link: str
    y: np.ndarray
    trials: np.ndarray
    offset: np.ndarray
    dispersion: float = math.inf
    information: str = "expected"

    def __post_init__(self) -> None:
        if self.information not in ("observed", "expected"):
            raise ValueError(
                f"information must be 'observed' or 'expected', got {self.information!r}"
            )
        if not self.dispersion > 0:
            name = PHI_NAME if self.family in POSITIVE_FAMILIES else DISPERSION_NAME
            raise ValueError(
                f"the {self.family} dispersion {name} must be positive, got {self.dispersion}"
            )

    @classmethod
    def from_design(cls, design: Design, dispersion: float | None = None) -> GlmResponse:
        """Response quantities of a non-Gaussian design.

        Parameters
        ----------
        design : Design
            A binomial, bernoulli, Poisson, negative-binomial, Gamma or
            inverse-Gaussian design.
        dispersion : float, optional
            The negative binomial's ``α``, the Gamma's or inverse Gaussian's
            ``φ``; required for those families (see :meth:`from_fit` for a
            fitted model's), ignored by the others.

        Raises
        ------
        ValueError
            For a Gaussian design, or one of a family with a dispersion without
            ``dispersion``.
        """
        fam = design.family
        information = "observed" if fam.link == "probit" else "expected"
        if fam.name in ("bernoulli", "binomial"):
            name = "binomial"
        elif fam.name in ("poisson", "negativebinomial", *POSITIVE_FAMILIES):
            name = fam.name
        else:
            raise ValueError(
                "GLM response quantities exist for binomial, bernoulli, poisson, "
                "negativebinomial, gamma and inverse_gaussian families; a "
                f"{fam.name!r} model is a linear mixed model"
            )
        alpha = math.inf
        if name == "negativebinomial" or name in POSITIVE_FAMILIES:
            if dispersion is None:
                label = PHI_NAME if name in POSITIVE_FAMILIES else DISPERSION_NAME
                raise ValueError(
                    f"a {name} response needs its dispersion {label}: pass dispersion=, "
                    "or use GlmResponse.from_fit(fit) for a fitted model"
                )
            alpha, information = float(dispersion), "observed"
        n = design.n_rows
        trials = design.trials if design.trials is not None else np.ones(n)
        offset = design.offset if design.offset is not None else np.zeros(n)
        return cls(
            name,
            fam.link,
            design.y.astype(float),
            trials.astype(float),
            offset,
            alpha,
            information,
        )

    @classmethod
    def from_fit(cls, fit: MixedFit) -> GlmResponse:
        """The response of a fitted GLMM, with its estimated dispersion if it has one."""
        dispersion = fit.phi if fit.design.family.is_positive else fit.alpha
        return cls.from_design(fit.design, dispersion=dispersion)

    def with_dispersion(self, alpha: float) -> GlmResponse:
        """The same response with the dispersion (``α`` or ``φ``) set."""
        return replace(self, dispersion=float(alpha))

    def with_information(self, information: str) -> GlmResponse:
        """The same response with the ``"observed"`` or ``"expected"`` working weights."""
        return replace(self, information=information)

    @property
    def canonical(self) -> bool:
        """Whether the link is canonical (logit for binomial, log for Poisson,
        inverse for Gamma, ``1/mu^2`` for inverse Gaussian).

        Then the expected and observed information agree and PIRLS is
        Newton's method, converging quadratically; with another link it is
        Fisher scoring, which converges only linearly — unless the observed
        information is used (:attr:`information`), as for the negative binomial.
        """
        return (self.family, self.link) in (
            ("binomial", "logit"),
            ("poisson", "log"),
            ("gamma", "inverse"),
            ("inverse_gaussian", "1/mu^2"),
        )

    @property
    def newton(self) -> bool:
        """Whether PIRLS with these weights is Newton's method.

        So it is when the weights are the observed information: with a
        canonical link, or with :attr:`information` ``"observed"``.
        """
        return self.canonical or self.information == "observed"

    def mean(self, eta: np.ndarray) -> np.ndarray:
        """Mean per trial ``μ = g⁻¹(η)``."""
        if self.link == "logit":
            return np.clip(special.expit(eta), _EPS, 1.0 - _EPS)
        if self.link == "probit":
            return np.clip(special.ndtr(eta), _EPS, 1.0 - _EPS)
        if self.link in ("inverse", "1/mu^2"):
            # a linear predictor at or below 0 has no mean: inf, where the
            # log-likelihood is -inf
            positive = np.asarray(eta, dtype=float) > 0.0
            with np.errstate(divide="ignore", invalid="ignore"):
                root = eta if self.link == "inverse" else np.sqrt(eta)
                return np.where(positive, 1.0 / root, np.inf)
        # the optimiser probes far-out points: exp overflowing to inf is the right limit
        with np.errstate(over="ignore"):
            return np.exp(eta)

    def mu_eta(self, eta: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Derivative ``dμ/dη``."""
        if self.link == "logit":
            return mu * (1.0 - mu)
        if self.link == "probit":
            return np.maximum(stats.norm.pdf(eta), _EPS)
        if self.link == "inverse":
            return -(mu**2)
        if self.link == "1/mu^2":
            return -0.5 * mu**3
        return np.maximum(mu, _EPS)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """Variance per trial (``μ + μ²/α`` negative binomial, ``φμ²`` Gamma, ``φμ³``
        inverse Gaussian)."""
        if self.family == "binomial":
            return mu * (1.0 - mu)
        mu = np.maximum(mu, _EPS)
        if self.family == "gamma":
            return self.dispersion * mu**2
        if self.family == "inverse_gaussian":
            return self.dispersion * mu**3
        if self.family == "negativebinomial":
            return mu * (1.0 + mu / self.dispersion)
        return mu

    def working(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, working weights and working residual at ``η``.

        Returns
        -------
        mu : numpy.ndarray
            Mean per trial.
        weights : numpy.ndarray
            ``trials · (dμ/dη)² / V(μ)`` (expected information), or
            ``−∂² log p(y | η)/∂η²`` (observed information, see :attr:`information`).
        residual : numpy.ndarray
            The score ``∂ log p(y | η)/∂η`` divided by the weight: a PIRLS step
            with these weights and residual is a Fisher-scoring or Newton step.
        """
        if self.family == "negativebinomial":
            return self._negative_binomial_working(eta)
        if self.family in POSITIVE_FAMILIES and self.information == "observed":
            return self._positive_observed_working(eta)
        if self.link == "probit" and self.information == "observed":
            return self._probit_observed_working(eta)
        mu = self.mean(eta)
        d = self.mu_eta(eta, mu)
        weights = self.trials * d**2 / self.variance(mu)
        with np.errstate(divide="ignore", invalid="ignore"):
            proportion = np.where(self.trials > 0, self.y / self.trials, 0.0)
        return mu, weights, (proportion - mu) / d

    def _probit_observed_working(
        self, eta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Probit with ``−∂² log p/∂η² = y r₁(η + r₁) + (n − y) r₀(r₀ − η)`` as weights.

        ``r₁ = φ/Φ`` and ``r₀ = φ/(1 − Φ)``; the log-likelihood is concave in
        ``η``, so the weights are positive. Where the mean is clipped
        (:meth:`mean`) the log-likelihood is flat: score and weight 0.
        """
        mu = self.mean(eta)
        upper, lower = special.ndtr(eta), special.ndtr(-eta)
        density = np.exp(-0.5 * eta**2) / math.sqrt(2.0 * math.pi)
        flat = (upper < _EPS) | (lower < _EPS)
        with np.errstate(divide="ignore", invalid="ignore"):
            r1 = np.where(flat, 0.0, density / upper)
            r0 = np.where(flat, 0.0, density / lower)
            failures = self.trials - self.y
            score = self.y * r1 - failures * r0
            weights = self.y * r1 * (eta + r1) + failures * r0 * (r0 - eta)
            resid = np.where(weights > 0.0, score / weights, 0.0)
        return mu, weights, resid

    def _negative_binomial_working(
        self, eta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """NB2 with log link: score ``α(y − μ)/(μ + α)``; written in ``μ/α`` so ``α = ∞`` works."""
        mu = self.mean(eta)
        m = np.maximum(mu, _EPS)
        ratio = m / self.dispersion
        if self.information == "expected":
            return mu, m / (1.0 + ratio), (self.y - m) / m
        y_ratio = self.y / self.dispersion
        weights = m * (1.0 + y_ratio) / (1.0 + ratio) ** 2
        return mu, weights, (self.y - m) * (1.0 + ratio) / (m * (1.0 + y_ratio))

    def _positive_observed_working(
        self, eta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gamma and inverse Gaussian: score and ``−∂² log p/∂η²`` per link.

        Gamma (``k = 1/φ``): log link score ``k(y/μ − 1)``, weight ``ky/μ``;
        inverse link score ``k(μ − y)``, weight ``kμ²``. Inverse Gaussian:
        log link score ``(y − μ)/(φμ²)``, weight ``(2y − μ)/(φμ²)``;
        ``1/mu^2`` link score ``(μ − y)/(2φ)``, weight ``μ³/(4φ)``.
        """
        mu = self.mean(eta)
        score, weights = _positive_score_weight(self.family, self.link, self.y, mu, self.dispersion)
        with np.errstate(divide="ignore", invalid="ignore"):
            resid = np.where(weights != 0.0, score / weights, 0.0)
        return mu, weights, resid

    def loglik_terms(self, eta: np.ndarray) -> np.ndarray:
        """Per-observation log-likelihood, constants included (as lme4's ``aic``).

        ``eta`` has the observations along its first axis; further axes
        (e.g. quadrature nodes) broadcast.
        """
        mu = self.mean(eta)
        extra = (1,) * (np.ndim(eta) - 1)
        y = self.y.reshape(-1, *extra)
        const = self.log_constant.reshape(-1, *extra)
        if self.family == "binomial":
            failures = (self.trials - self.y).reshape(-1, *extra)
            return const + special.xlogy(y, mu) + special.xlog1py(failures, -mu)
        if self.family in POSITIVE_FAMILIES:
            with np.errstate(invalid="ignore", over="ignore"):
                terms = const + _positive_kernel(self.family, y, mu, self.dispersion)
            return np.where(np.isfinite(mu), terms, -np.inf)
        with np.errstate(invalid="ignore"):  # inf - inf where mu overflowed
            if self.family == "negativebinomial" and math.isfinite(self.dispersion):
                alpha = self.dispersion
                log1p_ratio = np.log1p(mu / alpha)
                terms = const + special.xlogy(y, mu) - (y + alpha) * log1p_ratio
            else:  # Poisson, and the negative binomial's α = ∞
                terms = const + special.xlogy(y, mu) - mu
        return np.where(np.isposinf(mu), -np.inf, terms)

    @cached_property
    def log_constant(self) -> np.ndarray:
        """The part of each log-likelihood term free of ``μ``.

        ``log C(m, y)`` (binomial), ``−log y!`` (Poisson), and for the
        negative binomial ``log Γ(y + α) − log Γ(α) − y log α − log y!``,
        which tends to ``−log y!`` as ``α → ∞``; for the Gamma (shape
        ``k = 1/φ``) ``k log k − log Γ(k) + (k − 1) log y``, for the inverse
        Gaussian ``−½ log(2πφy³)``.
        """
        if self.family == "binomial":
            return log_binomial_coefficient(self.trials, self.y)
        if self.family == "gamma":
            shape = 1.0 / self.dispersion
            return shape * math.log(shape) - special.gammaln(shape) + (shape - 1.0) * np.log(self.y)
        if self.family == "inverse_gaussian":
            return -0.5 * np.log(2.0 * math.pi * self.dispersion * self.y**3)
        const = -special.gammaln(self.y + 1)
        if self.family == "negativebinomial" and math.isfinite(self.dispersion):
            const = const + _log_rising_ratio(self.y, self.dispersion)
        return const

    def residual_deviance(self, eta: np.ndarray) -> float:
        """Sum of squared deviance residuals (−2 log-likelihood ratio to the saturated fit)."""
        mu = self.mean(eta)
        if self.family == "binomial":
            with np.errstate(divide="ignore", invalid="ignore"):
                prop = np.where(self.trials > 0, self.y / self.trials, 0.0)
            terms = special.xlogy(prop, prop / mu) + special.xlogy(1 - prop, (1 - prop) / (1 - mu))
            return 2.0 * float(np.sum(self.trials * terms))
        y = self.y
        if self.family == "gamma":
            return 2.0 / self.dispersion * float(np.sum((y - mu) / mu - np.log(y / mu)))
        if self.family == "inverse_gaussian":
            return float(np.sum((y - mu) ** 2 / (mu**2 * y))) / self.dispersion
        if self.family == "negativebinomial" and math.isfinite(self.dispersion):
            alpha = self.dispersion
            saturated = (y + alpha) * np.log1p((y - mu) / (mu + alpha))
            return 2.0 * float(np.sum(special.xlogy(y, y / mu) - saturated))
        return 2.0 * float(np.sum(special.xlogy(y, y / mu) - (y - mu)))

    def deviance(self, eta: np.ndarray) -> float:
        """``−2 Σ log p(y | η)``."""
        return -2.0 * float(np.sum(self.loglik_terms(eta)))


def _positive_kernel(family: str, y: np.ndarray, mu: np.ndarray, phi: float) -> np.ndarray:
    """The part of a Gamma or inverse-Gaussian log-density that depends on ``μ``.

    Gamma: ``−(log μ + y/μ)/φ``; inverse Gaussian: ``−(y − μ)²/(2φμ²y)``.
    """
    if family == "gamma":
        return -(np.log(mu) + y / mu) / phi
    return -((y - mu) ** 2) / (2.0 * phi * mu**2 * y)


def _positive_score_weight(
    family: str, link: str, y: np.ndarray, mu: np.ndarray, phi: float
) -> tuple[np.ndarray, np.ndarray]:
    """Score ``∂ log p/∂η`` and observed information ``−∂² log p/∂η²`` (see ``GlmResponse``)."""
    if family == "gamma":
        if link == "log":
            return (y / mu - 1.0) / phi, y / (phi * mu)
        return (mu - y) / phi, mu**2 / phi
    if link == "log":
        return (y - mu) / (phi * mu**2), (2.0 * y - mu) / (phi * mu**2)
    return (mu - y) / (2.0 * phi), mu**3 / (4.0 * phi)


def log_binomial_coefficient(trials: ArrayLike, successes: ArrayLike) -> np.ndarray:
    """``log C(n, y) = log n! − log y! − log (n − y)!``, elementwise.

    Parameters
    ----------
    trials : array_like
        ``n``.
    successes : array_like
        ``y``, with ``0 ≤ y ≤ n``.

    Returns
    -------
    numpy.ndarray
    """
    n, y = np.asarray(trials, dtype=float), np.asarray(successes, dtype=float)
    return special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)


def _log_rising_ratio(y: np.ndarray, alpha: float) -> np.ndarray:
    """``log Γ(y + α) − log Γ(α) − y log α = Σ_{k<y} log(1 + k/α)`` for counts ``y``.

    The running sum is exact however large ``α`` is, where the log-gamma
    difference would cancel catastrophically (``α = 10⁸`` loses six digits).
    """
    counts = np.rint(y).astype(np.int64)
    top = int(counts.max(initial=0))
    if top > _TABLE_LIMIT:
        return special.gammaln(y + alpha) - special.gammaln(alpha) - y * math.log(alpha)
    table = np.concatenate([[0.0], np.cumsum(np.log1p(np.arange(top) / alpha))])
    return table[counts]
