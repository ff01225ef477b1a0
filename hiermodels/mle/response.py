"""GLM response quantities: means, working weights and log-likelihoods.

Binomial responses are handled as lme4 does: the response is the
proportion of successes with the number of trials as prior weight
(bernoulli is binomial with one trial).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import special, stats

from hiermodels.spec.design import Design

__all__ = ["GlmResponse"]

# Keeps probabilities and means away from 0 and 1, where working weights vanish.
_EPS = 1e-10


@dataclass(frozen=True, eq=False)
class GlmResponse:
    """The response of a binomial or Poisson GLMM with its link.

    Attributes
    ----------
    family : str
        ``"binomial"`` (bernoulli included) or ``"poisson"``.
    link : str
        ``"logit"``, ``"probit"`` or ``"log"``.
    y : numpy.ndarray
        Successes (binomial) or counts.
    trials : numpy.ndarray
        Number of trials (ones for bernoulli and Poisson).
    offset : numpy.ndarray
        Offset on the link scale (zeros if none).
    """

    family: str
    link: str
    y: np.ndarray
    trials: np.ndarray
    offset: np.ndarray

    @classmethod
    def from_design(cls, design: Design) -> GlmResponse:
        """Response quantities of a non-Gaussian design."""
        fam = design.family
        if fam.name in ("bernoulli", "binomial"):
            name = "binomial"
        elif fam.name == "poisson":
            name = "poisson"
        else:
            raise ValueError(
                f"the Laplace approximation is available for binomial, bernoulli and poisson "
                f"families; {fam.name!r} models are fitted with Model.fit_bayes()"
            )
        n = design.nobs
        trials = design.trials if design.trials is not None else np.ones(n)
        offset = design.offset if design.offset is not None else np.zeros(n)
        return cls(name, fam.link, design.y.astype(float), trials.astype(float), offset)

    @property
    def canonical(self) -> bool:
        """Whether the link is canonical (logit for binomial, log for Poisson).

        Then the expected and observed information agree and PIRLS is
        Newton's method, converging quadratically; with another link it is
        Fisher scoring, which converges only linearly.
        """
        return (self.family, self.link) in (("binomial", "logit"), ("poisson", "log"))

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
        """Variance function per trial."""
        if self.family == "binomial":
            return mu * (1.0 - mu)
        return np.maximum(mu, _EPS)

    def working(self, eta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean, working weights and working residual at ``η``.

        Returns
        -------
        mu : numpy.ndarray
            Mean per trial.
        weights : numpy.ndarray
            ``trials · (dμ/dη)² / V(μ)``.
        residual : numpy.ndarray
            ``(y/trials − μ) / (dμ/dη)``, the working-response increment.
        """
        mu = self.mean(eta)
        d = self.mu_eta(eta, mu)
        weights = self.trials * d**2 / self.variance(mu)
        with np.errstate(divide="ignore", invalid="ignore"):
            proportion = np.where(self.trials > 0, self.y / self.trials, 0.0)
        return mu, weights, (proportion - mu) / d

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
            terms = const + special.xlogy(y, mu) - mu
        return np.where(np.isposinf(mu), -np.inf, terms)

    @cached_property
    def log_constant(self) -> np.ndarray:
        """The part of each log-likelihood term free of ``μ``: ``log C(m, y)`` or ``−log y!``."""
        if self.family == "binomial":
            return (
                special.gammaln(self.trials + 1)
                - special.gammaln(self.y + 1)
                - special.gammaln(self.trials - self.y + 1)
            )
        return -special.gammaln(self.y + 1)

    def residual_deviance(self, eta: np.ndarray) -> float:
        """Sum of squared deviance residuals (−2 log-likelihood ratio to the saturated fit)."""
        mu = self.mean(eta)
        if self.family == "binomial":
            with np.errstate(divide="ignore", invalid="ignore"):
                prop = np.where(self.trials > 0, self.y / self.trials, 0.0)
            terms = special.xlogy(prop, prop / mu) + special.xlogy(1 - prop, (1 - prop) / (1 - mu))
            return 2.0 * float(np.sum(self.trials * terms))
        return 2.0 * float(np.sum(special.xlogy(self.y, self.y / mu) - (self.y - mu)))

    def deviance(self, eta: np.ndarray) -> float:
        """``−2 Σ log p(y | η)``."""
        return -2.0 * float(np.sum(self.loglik_terms(eta)))
