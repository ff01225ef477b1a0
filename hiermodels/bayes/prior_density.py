"""Log densities of the scalar priors, with derivatives, on the sampler's scale.

The marginal sampler of :mod:`hiermodels.bayes.marginal_density` evaluates
its priors without PyMC: each :class:`~hiermodels.bayes.priors.Prior` that
:func:`~hiermodels.bayes.priors.resolve_priors` accepts becomes a
:class:`ScalarPrior`, a pair of plain-Python closures for the log density
and its derivative with every constant computed once. The densities are
PyMC's, normalising constants included, in PyMC's parameterisations
(``sigma`` or ``tau``, ``sigma`` or ``lam``, ``alpha``/``beta`` or
``mu``/``sigma``, ``lam`` or ``scale``), and the transforms are PyMC's
defaults: none on the real line, ``log`` for positive variables (with its
log-Jacobian ``log x``) and log-odds for the ``Beta(eta, eta)`` variable of a
two-term LKJ correlation. The test suite checks every distribution against
``pymc.logp``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from hiermodels.bayes.priors import POSITIVE_DISTS, REAL_DISTS, Prior

__all__ = ["ScalarPrior", "scalar_prior", "lkj_pair_prior", "jittered"]

Transform = Literal["identity", "log", "logodds"]

#: ``(log density, derivative)`` of a constrained value.
Density = Callable[[float], tuple[float, float]]

_LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class ScalarPrior:
    """A scalar prior on the sampler's unconstrained scale.

    Attributes
    ----------
    name : str
        The variable it belongs to (``beta__<coef>``, ``sd_<g>__<t>``, ...).
    prior : Prior
    transform : {"identity", "log", "logodds"}
        Map from the unconstrained value ``v`` to the variable: ``x = v``,
        ``x = exp(v)`` or ``x = 1 / (1 + exp(-v))``.
    evaluate : callable
        ``v -> (x, log p(x) + log |dx/dv|, d/dv of the same)``.
    start : float
        A typical constrained value (the distribution's location or scale),
        where PyMC would start the sampler.
    """

    name: str
    prior: Prior
    transform: Transform
    evaluate: Callable[[float], tuple[float, float, float]]
    start: float

    def unconstrain(self, x: float) -> float:
        """The unconstrained value of ``x``."""
        if self.transform == "log":
            return math.log(x)
        if self.transform == "logodds":
            return math.log(x) - math.log1p(-x)
        return x

    def __call__(self, v: float) -> tuple[float, float, float]:
        """``(x, log p(x) + log |dx/dv|, d/dv of the same)`` at the unconstrained ``v``."""
        return self.evaluate(v)


def _on_real_line(density: Density) -> Callable[[float], tuple[float, float, float]]:
    def evaluate(v: float) -> tuple[float, float, float]:
        logp, slope = density(v)
        return v, logp, slope

    return evaluate


def _on_log_scale(density: Density) -> Callable[[float], tuple[float, float, float]]:
    def evaluate(v: float) -> tuple[float, float, float]:
        x = math.exp(v)
        logp, slope = density(x)
        return x, logp + v, slope * x + 1.0

    return evaluate


def _expit(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


def _log_expit(v: float) -> float:
    """``log(1 / (1 + exp(-v)))`` without overflow."""
    if v >= 0:
        return -math.log1p(math.exp(-v))
    return v - math.log1p(math.exp(v))


def _scale(params: Mapping[str, float], scale: str, precision: str, *, default: float) -> float:
    """A scale parameter given directly or as a precision (``tau``, ``lam``) or default."""
    if scale in params:
        return params[scale]
    if precision in params:
        return params[precision] ** -0.5
    return default


def _gamma_shape_rate(params: Mapping[str, float], *, inverse: bool) -> tuple[float, float]:
    """``(alpha, beta)`` of a Gamma or InverseGamma from either of PyMC's parameterisations."""
    if "alpha" in params:
        return params["alpha"], params.get("beta", 1.0)
    mu, sd = params["mu"], params["sigma"]
    if inverse:
        return (2.0 * sd**2 + mu**2) / sd**2, mu * (mu**2 + sd**2) / sd**2
    return mu**2 / sd**2, mu / sd**2


def _normal(mu: float, sigma: float) -> Density:
    const = -0.5 * _LOG_2PI - math.log(sigma)

    def density(x: float) -> tuple[float, float]:
        z = (x - mu) / sigma
        return const - 0.5 * z * z, -z / sigma

    return density


def _student_t(nu: float, mu: float, sigma: float, *, half: bool) -> Density:
    const = (
        math.lgamma((nu + 1.0) / 2.0)
        - math.lgamma(nu / 2.0)
        - 0.5 * math.log(nu * math.pi)
        - math.log(sigma)
        + (math.log(2.0) if half else 0.0)
    )
    power = (nu + 1.0) / 2.0

    def density(x: float) -> tuple[float, float]:
        z = (x - mu) / sigma
        return const - power * math.log1p(z * z / nu), -2.0 * power * z / (sigma * (nu + z * z))

    return density


def _cauchy(alpha: float, beta: float, *, half: bool) -> Density:
    const = -math.log(math.pi * beta) + (math.log(2.0) if half else 0.0)

    def density(x: float) -> tuple[float, float]:
        z = (x - alpha) / beta
        return const - math.log1p(z * z), -2.0 * z / (beta * (1.0 + z * z))

    return density


def _laplace(mu: float, b: float) -> Density:
    const = -math.log(2.0 * b)

    def density(x: float) -> tuple[float, float]:
        d = x - mu
        return const - abs(d) / b, -math.copysign(1.0, d) / b if d != 0 else 0.0

    return density


def _logistic(mu: float, s: float) -> Density:
    const = -math.log(s)

    def density(x: float) -> tuple[float, float]:
        z = (x - mu) / s
        # log p = -z - 2 log(1 + exp(-z)) - log s, symmetric in z
        a = abs(z)
        return const - a - 2.0 * math.log1p(math.exp(-a)), -math.tanh(z / 2.0) / s

    return density


def _gumbel(mu: float, beta: float) -> Density:
    const = -math.log(beta)

    def density(x: float) -> tuple[float, float]:
        z = (x - mu) / beta
        e = math.exp(-z)
        return const - z - e, (e - 1.0) / beta

    return density


def _skew_normal(alpha: float, mu: float, sigma: float) -> Density:
    const = math.log(2.0) - 0.5 * _LOG_2PI - math.log(sigma)

    def density(x: float) -> tuple[float, float]:
        z = (x - mu) / sigma
        t = alpha * z
        log_cdf = float(special.log_ndtr(t))
        # d/dt log Phi(t) = phi(t) / Phi(t), computed in logs for large negative t
        mills = math.exp(-0.5 * t * t - 0.5 * _LOG_2PI - log_cdf)
        return const - 0.5 * z * z + log_cdf, (-z + alpha * mills) / sigma

    return density


def _flat(x: float) -> tuple[float, float]:
    return 0.0, 0.0


def _half_normal(sigma: float) -> Density:
    const = 0.5 * math.log(2.0 / math.pi) - math.log(sigma)

    def density(x: float) -> tuple[float, float]:
        z = x / sigma
        return const - 0.5 * z * z, -z / sigma

    return density


def _exponential(lam: float) -> Density:
    const = math.log(lam)

    def density(x: float) -> tuple[float, float]:
        return const - lam * x, -lam

    return density


def _gamma(alpha: float, beta: float) -> Density:
    const = alpha * math.log(beta) - math.lgamma(alpha)

    def density(x: float) -> tuple[float, float]:
        return const + (alpha - 1.0) * math.log(x) - beta * x, (alpha - 1.0) / x - beta

    return density


def _inverse_gamma(alpha: float, beta: float) -> Density:
    const = alpha * math.log(beta) - math.lgamma(alpha)

    def density(x: float) -> tuple[float, float]:
        return (
            const - (alpha + 1.0) * math.log(x) - beta / x,
            -(alpha + 1.0) / x + beta / (x * x),
        )

    return density


def _log_normal(mu: float, sigma: float) -> Density:
    const = -0.5 * _LOG_2PI - math.log(sigma)

    def density(x: float) -> tuple[float, float]:
        log_x = math.log(x)
        z = (log_x - mu) / sigma
        return const - log_x - 0.5 * z * z, (-1.0 - z / sigma) / x

    return density


def _weibull(alpha: float, beta: float) -> Density:
    const = math.log(alpha) - math.log(beta)

    def density(x: float) -> tuple[float, float]:
        ratio = x / beta
        power = ratio**alpha
        return (
            const + (alpha - 1.0) * math.log(ratio) - power,
            ((alpha - 1.0) - alpha * power) / x,
        )

    return density


def _real_density(prior: Prior) -> tuple[Density, float]:
    """Density and location of a prior on the real line."""
    p, dist = prior.params, prior.dist
    if dist == "Normal":
        mu = p.get("mu", 0.0)
        return _normal(mu, _scale(p, "sigma", "tau", default=1.0)), mu
    if dist == "StudentT":
        mu = p.get("mu", 0.0)
        return _student_t(p["nu"], mu, _scale(p, "sigma", "lam", default=1.0), half=False), mu
    if dist == "Cauchy":
        return _cauchy(p["alpha"], p["beta"], half=False), p["alpha"]
    if dist == "Laplace":
        return _laplace(p["mu"], p["b"]), p["mu"]
    if dist == "Logistic":
        mu = p.get("mu", 0.0)
        return _logistic(mu, p.get("s", 1.0)), mu
    if dist == "Gumbel":
        return _gumbel(p["mu"], p["beta"]), p["mu"]
    if dist == "SkewNormal":
        mu = p.get("mu", 0.0)
        sigma = _scale(p, "sigma", "tau", default=1.0)
        return _skew_normal(p.get("alpha", 1.0), mu, sigma), mu
    if dist == "Flat":
        return _flat, 0.0
    raise ValueError(f"no log density for a real-valued prior {prior!r}")


def _positive_density(prior: Prior) -> tuple[Density, float]:
    """Density and typical value (scale, mean or mode) of a prior on ``x > 0``."""
    p, dist = prior.params, prior.dist
    if dist == "HalfNormal":
        sigma = _scale(p, "sigma", "tau", default=1.0)
        return _half_normal(sigma), sigma
    if dist == "HalfStudentT":
        sigma = _scale(p, "sigma", "lam", default=1.0)
        return _student_t(p.get("nu", 1.0), 0.0, sigma, half=True), sigma
    if dist == "HalfCauchy":
        return _cauchy(0.0, p["beta"], half=True), p["beta"]
    if dist == "Exponential":
        lam = p["lam"] if "lam" in p else 1.0 / p["scale"]
        return _exponential(lam), 1.0 / lam
    if dist == "Gamma":
        alpha, beta = _gamma_shape_rate(p, inverse=False)
        return _gamma(alpha, beta), alpha / beta
    if dist == "InverseGamma":
        alpha, beta = _gamma_shape_rate(p, inverse=True)
        return _inverse_gamma(alpha, beta), beta / (alpha + 1.0)
    if dist == "LogNormal":
        mu = p.get("mu", 0.0)
        return _log_normal(mu, _scale(p, "sigma", "tau", default=1.0)), math.exp(mu)
    if dist == "Weibull":
        return _weibull(p["alpha"], p["beta"]), p["beta"]
    if dist == "ChiSquared":
        return _gamma(p["nu"] / 2.0, 0.5), p["nu"]
    if dist == "HalfFlat":
        return _flat, 1.0
    raise ValueError(f"no log density for a positive prior {prior!r}")


def scalar_prior(name: str, prior: Prior) -> ScalarPrior:
    """The :class:`ScalarPrior` of a fixed effect, standard deviation, ``sigma`` or ``alpha``.

    Parameters
    ----------
    name : str
        Variable name; ``beta`` and ``beta__<coef>`` are real-valued, every
        other scalar is positive.
    prior : Prior
        As validated by :func:`~hiermodels.bayes.priors.resolve_priors`.

    Raises
    ------
    ValueError
        For a distribution outside ``REAL_DISTS`` (fixed effects) or
        ``POSITIVE_DISTS`` (the rest).
    """
    if name == "beta" or name.startswith("beta__"):
        if prior.dist not in REAL_DISTS:
            raise ValueError(f"prior {prior!r} for {name!r} is not a distribution on the real line")
        density, start = _real_density(prior)
        return ScalarPrior(name, prior, "identity", _on_real_line(density), start)
    if prior.dist not in POSITIVE_DISTS:
        raise ValueError(f"prior {prior!r} for {name!r} is not a distribution on x > 0")
    density, start = _positive_density(prior)
    return ScalarPrior(name, prior, "log", _on_log_scale(density), start)


def lkj_pair_prior(name: str, prior: Prior) -> ScalarPrior:
    """``LKJCorr(eta)`` for two terms: ``(r + 1) / 2 ~ Beta(eta, eta)``, on the log-odds scale.

    The variable is ``(r + 1) / 2``, as in the graph of
    :func:`~hiermodels.bayes.build.build_pymc_model` (``corr_<g>__raw``).
    """
    if prior.dist != "LKJCorr":
        raise ValueError(f"prior {prior!r} for {name!r} is not an LKJCorr prior")
    eta = prior.params["eta"]
    const = -float(special.betaln(eta, eta))

    def evaluate(v: float) -> tuple[float, float, float]:
        # Beta(eta, eta) density times the Jacobian x (1 - x): eta (log x + log(1 - x)),
        # written in v so that it stays finite however far out v is
        x = _expit(v)
        return x, const + eta * (_log_expit(v) + _log_expit(-v)), eta * (1.0 - 2.0 * x)

    return ScalarPrior(name, prior, "logodds", evaluate, 0.5)


def jittered(start: np.ndarray, seed: int) -> np.ndarray:
    """``start`` plus a uniform(-1, 1) jitter per coordinate: PyMC's and nutpie's initialisation.

    Parameters
    ----------
    start : numpy.ndarray
        Unconstrained starting point (the priors' typical values).
    seed : int
        The chain's seed.
    """
    return np.asarray(start, dtype=float) + np.random.default_rng(seed).uniform(
        -1.0, 1.0, np.size(start)
    )
