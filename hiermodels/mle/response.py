"""GLM response quantities: means, working weights and log-likelihoods.

Binomial responses are handled as lme4 does: the response is the
proportion of successes with the number of trials as prior weight
(bernoulli is binomial with one trial).

The negative binomial is glmmTMB's ``nbinom2`` (MASS's and PyMC's
parameterisation): ``Var(y) = μ + μ²/α`` with the dispersion ``α`` (the
name the Bayesian model uses, :data:`DISPERSION_NAME`), log link. Its
log-likelihood is evaluated in a form that stays exact as ``α → ∞``, where
it tends to the Poisson's; ``α = ∞`` is the Poisson model itself.
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

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit

__all__ = ["DISPERSION_NAME", "GlmResponse", "log_binomial_coefficient"]

#: The public name of the negative-binomial dispersion (MLE, EB and Bayes alike).
DISPERSION_NAME = "alpha"

# Keeps probabilities and means away from 0 and 1, where working weights vanish.
_EPS = 1e-10
# Counts up to this size get log Γ(y + α) − log Γ(α) − y log α as a running sum of
# log1p(k/α), exact for any α; larger ones by log-gamma differences.
_TABLE_LIMIT = 1_000_000


@dataclass(frozen=True, eq=False)
class GlmResponse:
    """The response of a binomial, Poisson or negative-binomial GLMM with its link.

    Attributes
    ----------
    family : str
        ``"binomial"`` (bernoulli included), ``"poisson"`` or
        ``"negativebinomial"``.
    link : str
        ``"logit"``, ``"probit"`` or ``"log"``.
    y : numpy.ndarray
        Successes (binomial) or counts.
    trials : numpy.ndarray
        Number of trials (ones for bernoulli and count families).
    offset : numpy.ndarray
        Offset on the link scale (zeros if none).
    dispersion : float
        The negative binomial's ``α`` (``Var(y) = μ + μ²/α``; ``inf`` is the
        Poisson limit); ``inf`` for the other families.
    information : {"observed", "expected"}
        Which curvature :meth:`working` returns as weights. ``"observed"``
        (the default of the probit link and the negative binomial) makes
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
            raise ValueError(
                f"the negative-binomial dispersion {DISPERSION_NAME} must be positive, "
                f"got {self.dispersion}"
            )

    @classmethod
    def from_design(cls, design: Design, dispersion: float | None = None) -> GlmResponse:
        """Response quantities of a non-Gaussian design.

        Parameters
        ----------
        design : Design
            A binomial, bernoulli, Poisson or negative-binomial design.
        dispersion : float, optional
            The negative binomial's ``α``; required for that family (see
            :meth:`from_fit` for a fitted model's), ignored by the others.

        Raises
        ------
        ValueError
            For a Gaussian design, or a negative-binomial one without ``dispersion``.
        """
        fam = design.family
        information = "observed" if fam.link == "probit" else "expected"
        if fam.name in ("bernoulli", "binomial"):
            name = "binomial"
        elif fam.name in ("poisson", "negativebinomial"):
            name = fam.name
        else:
            raise ValueError(
                "GLM response quantities exist for binomial, bernoulli, poisson and "
                f"negativebinomial families; a {fam.name!r} model is a linear mixed model"
            )
        alpha = math.inf
        if name == "negativebinomial":
            if dispersion is None:
                raise ValueError(
                    f"a negative-binomial response needs its dispersion {DISPERSION_NAME}: "
                    "pass dispersion=, or use GlmResponse.from_fit(fit) for a fitted model"
                )
            alpha, information = float(dispersion), "observed"
        n = design.nobs
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
        return cls.from_design(fit.design, dispersion=fit.alpha)

    def with_dispersion(self, alpha: float) -> GlmResponse:
        """The same response with the negative-binomial dispersion ``α`` set."""
        return replace(self, dispersion=float(alpha))

    def with_information(self, information: str) -> GlmResponse:
        """The same response with the ``"observed"`` or ``"expected"`` working weights."""
        return replace(self, information=information)

    @property
    def canonical(self) -> bool:
        """Whether the link is canonical (logit for binomial, log for Poisson).

        Then the expected and observed information agree and PIRLS is
        Newton's method, converging quadratically; with another link it is
        Fisher scoring, which converges only linearly — unless the observed
        information is used (:attr:`information`), as for the negative binomial.
        """
        return (self.family, self.link) in (("binomial", "logit"), ("poisson", "log"))

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
        # the optimiser probes far-out points: exp overflowing to inf is the right limit
        with np.errstate(over="ignore"):
            return np.exp(eta)

    def mu_eta(self, eta: np.ndarray, mu: np.ndarray) -> np.ndarray:
        """Derivative ``dμ/dη``."""
        if self.link == "logit":
            return mu * (1.0 - mu)
        if self.link == "probit":
            return np.maximum(stats.norm.pdf(eta), _EPS)
        return np.maximum(mu, _EPS)

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """Variance function per trial (``μ + μ²/α`` for the negative binomial)."""
        if self.family == "binomial":
            return mu * (1.0 - mu)
        mu = np.maximum(mu, _EPS)
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
        which tends to ``−log y!`` as ``α → ∞``.
        """
        if self.family == "binomial":
            return log_binomial_coefficient(self.trials, self.y)
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
        if self.family == "negativebinomial" and math.isfinite(self.dispersion):
            alpha = self.dispersion
            saturated = (y + alpha) * np.log1p((y - mu) / (mu + alpha))
            return 2.0 * float(np.sum(special.xlogy(y, y / mu) - saturated))
        return 2.0 * float(np.sum(special.xlogy(y, y / mu) - (y - mu)))

    def deviance(self, eta: np.ndarray) -> float:
        """``−2 Σ log p(y | η)``."""
        return -2.0 * float(np.sum(self.loglik_terms(eta)))


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
