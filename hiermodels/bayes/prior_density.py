"""Log densities of the scalar priors, with derivatives, on the sampler's scale.

The marginal sampler of :mod:`hiermodels.bayes.marginal_density` evaluates
its priors without PyMC: each :class:`~hiermodels.bayes.priors.Prior` that
:func:`~hiermodels.bayes.priors.resolve_priors` accepts becomes a
:class:`ScalarPrior`: a density kind and its parameters, with every constant
computed once, evaluated by one compiled function
(:func:`scalar_log_density`) that the compiled densities call too. The
densities are
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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numba import njit
from scipy import special

from hiermodels.bayes.priors import POSITIVE_DISTS, REAL_DISTS, Prior

__all__ = [
    "ScalarPrior",
    "jittered",
    "lkj_pair_prior",
    "log_ndtr",
    "scalar_log_density",
    "scalar_prior",
]

Transform = Literal["identity", "log", "logodds"]

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_2 = math.log(2.0)

# density kinds of :func:`scalar_log_density`; half distributions are their full
# counterparts on x > 0 with log 2 added to the constant
NORMAL, STUDENT_T, CAUCHY, LAPLACE, LOGISTIC, GUMBEL, SKEW_NORMAL, FLAT = range(8)
EXPONENTIAL, GAMMA, INVERSE_GAMMA, LOG_NORMAL, WEIBULL, LKJ_PAIR = range(8, 14)
# transforms from the unconstrained value v to the variable x
IDENTITY, LOG, LOGODDS = range(3)
_TRANSFORM_CODE: dict[str, int] = {"identity": IDENTITY, "log": LOG, "logodds": LOGODDS}

#: ``(kind, p0, p1, p2, p3)``: a density kind and its parameters, constant included.
Parameters = tuple[int, float, float, float, float]


@njit(cache=True, nogil=True)
def log_ndtr(t: float) -> float:
    """``log Φ(t)``, accurate in the far left tail."""
    if t > -30.0:
        return math.log(0.5 * math.erfc(-t / math.sqrt(2.0)))
    # Mills-ratio series: Φ(t) = φ(t)/|t| (1 − 1/t² + 3/t⁴ − 15/t⁶ + …)
    inv = 1.0 / (t * t)
    series = 1.0 - inv * (1.0 - 3.0 * inv * (1.0 - 5.0 * inv * (1.0 - 7.0 * inv)))
    return -0.5 * t * t - 0.5 * math.log(2.0 * math.pi) - math.log(-t) + math.log(series)


@njit(cache=True, nogil=True)
def _log_expit(v: float) -> float:
    """``log(1 / (1 + exp(-v)))`` without overflow."""
    if v >= 0:
        return -math.log1p(math.exp(-v))
    return v - math.log1p(math.exp(v))


@njit(cache=True, nogil=True)
def _expit(v: float) -> float:
    if v >= 0:
        return 1.0 / (1.0 + math.exp(-v))
    e = math.exp(v)
    return e / (1.0 + e)


@njit(cache=True, nogil=True)
def _log_density(
    kind: int, p0: float, p1: float, p2: float, p3: float, x: float
) -> tuple[float, float]:
    """``(log p(x), d/dx log p(x))`` of one density kind (parameters as :func:`scalar_prior`)."""
    if kind == NORMAL:  # (mu, sigma, const)
        z = (x - p0) / p1
        return p2 - 0.5 * z * z, -z / p1
    if kind == STUDENT_T:  # (nu, mu, sigma, const)
        z = (x - p1) / p2
        power = 0.5 * (p0 + 1.0)
        return p3 - power * math.log1p(z * z / p0), -2.0 * power * z / (p2 * (p0 + z * z))
    if kind == CAUCHY:  # (alpha, beta, const)
        z = (x - p0) / p1
        return p2 - math.log1p(z * z), -2.0 * z / (p1 * (1.0 + z * z))
    if kind == LAPLACE:  # (mu, b, const)
        d = x - p0
        return p2 - abs(d) / p1, (-math.copysign(1.0, d) / p1 if d != 0 else 0.0)
    if kind == LOGISTIC:  # (mu, s, const); log p = -z - 2 log(1 + exp(-z)) - log s, symmetric
        z = (x - p0) / p1
        a = abs(z)
        return p2 - a - 2.0 * math.log1p(math.exp(-a)), -math.tanh(z / 2.0) / p1
    if kind == GUMBEL:  # (mu, beta, const)
        z = (x - p0) / p1
        e = math.exp(-z)
        return p2 - z - e, (e - 1.0) / p1
    if kind == SKEW_NORMAL:  # (alpha, mu, sigma, const)
        z = (x - p1) / p2
        t = p0 * z
        log_cdf = log_ndtr(t)
        # d/dt log Φ(t) = φ(t) / Φ(t), in logs for large negative t
        mills = math.exp(-0.5 * t * t - 0.5 * math.log(2.0 * math.pi) - log_cdf)
        return p3 - 0.5 * z * z + log_cdf, (-z + p0 * mills) / p2
    if kind == FLAT:
        return 0.0, 0.0
    if kind == EXPONENTIAL:  # (lam, const)
        return p1 - p0 * x, -p0
    if kind == GAMMA:  # (alpha, beta, const)
        return p2 + (p0 - 1.0) * math.log(x) - p1 * x, (p0 - 1.0) / x - p1
    if kind == INVERSE_GAMMA:  # (alpha, beta, const)
        return p2 - (p0 + 1.0) * math.log(x) - p1 / x, -(p0 + 1.0) / x + p1 / (x * x)
    if kind == LOG_NORMAL:  # (mu, sigma, const)
        log_x = math.log(x)
        z = (log_x - p0) / p1
        return p2 - log_x - 0.5 * z * z, (-1.0 - z / p1) / x
    if kind == WEIBULL:  # (alpha, beta, const)
        ratio = x / p1
        power = ratio**p0
        return p2 + (p0 - 1.0) * math.log(ratio) - power, ((p0 - 1.0) - p0 * power) / x
    return math.nan, math.nan


@njit(cache=True, nogil=True)
def scalar_log_density(
    kind: int, transform: int, p0: float, p1: float, p2: float, p3: float, v: float
) -> tuple[float, float, float]:
    """``(x, log p(x) + log |dx/dv|, d/dv of the same)`` at the unconstrained ``v``.

    The one implementation of every scalar prior, called from Python
    (:class:`ScalarPrior`) and from the compiled densities alike.
    """
    if kind == LKJ_PAIR:  # (eta, const): Beta(eta, eta) on (r + 1) / 2, log-odds scale
        # the density times the Jacobian x (1 - x), eta (log x + log(1 - x)), written in v
        # so that it stays finite however far out v is
        x = _expit(v)
        return x, p1 + p0 * (_log_expit(v) + _log_expit(-v)), p0 * (1.0 - 2.0 * x)
    if transform == LOG:
        x = math.exp(v)
        logp, slope = _log_density(kind, p0, p1, p2, p3, x)
        return x, logp + v, slope * x + 1.0
    logp, slope = _log_density(kind, p0, p1, p2, p3, v)
    return v, logp, slope


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
    params : tuple
        ``(kind, p0, p1, p2, p3)``: the density's kind and parameters, its
        normalising constant included, as :func:`scalar_log_density` takes them.
    start : float
        A typical constrained value (the distribution's location or scale),
        where PyMC would start the sampler.
    """

    name: str
    prior: Prior
    transform: Transform
    params: Parameters
    start: float

    @property
    def transform_code(self) -> int:
        """:attr:`transform` as :func:`scalar_log_density` numbers it."""
        return _TRANSFORM_CODE[self.transform]

    def evaluate(self, v: float) -> tuple[float, float, float]:
        """``(x, log p(x) + log |dx/dv|, d/dv of the same)`` at the unconstrained ``v``."""
        kind, p0, p1, p2, p3 = self.params
        return scalar_log_density(kind, self.transform_code, p0, p1, p2, p3, v)

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


def _normal(mu: float, sigma: float, *, half: bool = False) -> Parameters:
    return (NORMAL, mu, sigma, -0.5 * _LOG_2PI - math.log(sigma) + (_LOG_2 if half else 0.0), 0.0)


def _student_t(nu: float, mu: float, sigma: float, *, half: bool) -> Parameters:
    const = (
        math.lgamma((nu + 1.0) / 2.0)
        - math.lgamma(nu / 2.0)
        - 0.5 * math.log(nu * math.pi)
        - math.log(sigma)
        + (_LOG_2 if half else 0.0)
    )
    return (STUDENT_T, nu, mu, sigma, const)


def _cauchy(alpha: float, beta: float, *, half: bool) -> Parameters:
    return (CAUCHY, alpha, beta, -math.log(math.pi * beta) + (_LOG_2 if half else 0.0), 0.0)


def _gamma(alpha: float, beta: float) -> Parameters:
    return (GAMMA, alpha, beta, alpha * math.log(beta) - math.lgamma(alpha), 0.0)


def _real_density(prior: Prior) -> tuple[Parameters, float]:
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
        return (LAPLACE, p["mu"], p["b"], -math.log(2.0 * p["b"]), 0.0), p["mu"]
    if dist == "Logistic":
        mu, s = p.get("mu", 0.0), p.get("s", 1.0)
        return (LOGISTIC, mu, s, -math.log(s), 0.0), mu
    if dist == "Gumbel":
        return (GUMBEL, p["mu"], p["beta"], -math.log(p["beta"]), 0.0), p["mu"]
    if dist == "SkewNormal":
        mu = p.get("mu", 0.0)
        sigma = _scale(p, "sigma", "tau", default=1.0)
        const = _LOG_2 - 0.5 * _LOG_2PI - math.log(sigma)
        return (SKEW_NORMAL, p.get("alpha", 1.0), mu, sigma, const), mu
    if dist == "Flat":
        return (FLAT, 0.0, 0.0, 0.0, 0.0), 0.0
    raise ValueError(f"no log density for a real-valued prior {prior!r}")


def _positive_density(prior: Prior) -> tuple[Parameters, float]:
    """Density and typical value (scale, mean or mode) of a prior on ``x > 0``."""
    p, dist = prior.params, prior.dist
    if dist == "HalfNormal":
        sigma = _scale(p, "sigma", "tau", default=1.0)
        return _normal(0.0, sigma, half=True), sigma
    if dist == "HalfStudentT":
        sigma = _scale(p, "sigma", "lam", default=1.0)
        return _student_t(p.get("nu", 1.0), 0.0, sigma, half=True), sigma
    if dist == "HalfCauchy":
        return _cauchy(0.0, p["beta"], half=True), p["beta"]
    if dist == "Exponential":
        lam = p["lam"] if "lam" in p else 1.0 / p["scale"]
        return (EXPONENTIAL, lam, math.log(lam), 0.0, 0.0), 1.0 / lam
    if dist == "Gamma":
        alpha, beta = _gamma_shape_rate(p, inverse=False)
        return _gamma(alpha, beta), alpha / beta
    if dist == "InverseGamma":
        alpha, beta = _gamma_shape_rate(p, inverse=True)
        const = alpha * math.log(beta) - math.lgamma(alpha)
        return (INVERSE_GAMMA, alpha, beta, const, 0.0), beta / (alpha + 1.0)
    if dist == "LogNormal":
        mu = p.get("mu", 0.0)
        sigma = _scale(p, "sigma", "tau", default=1.0)
        return (LOG_NORMAL, mu, sigma, -0.5 * _LOG_2PI - math.log(sigma), 0.0), math.exp(mu)
    if dist == "Weibull":
        alpha, beta = p["alpha"], p["beta"]
        return (WEIBULL, alpha, beta, math.log(alpha) - math.log(beta), 0.0), beta
    if dist == "ChiSquared":
        return _gamma(p["nu"] / 2.0, 0.5), p["nu"]
    if dist == "HalfFlat":
        return (FLAT, 0.0, 0.0, 0.0, 0.0), 1.0
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
        params, start = _real_density(prior)
        return ScalarPrior(name, prior, "identity", params, start)
    if prior.dist not in POSITIVE_DISTS:
        raise ValueError(f"prior {prior!r} for {name!r} is not a distribution on x > 0")
    params, start = _positive_density(prior)
    return ScalarPrior(name, prior, "log", params, start)


def lkj_pair_prior(name: str, prior: Prior) -> ScalarPrior:
    """``LKJCorr(eta)`` for two terms: ``(r + 1) / 2 ~ Beta(eta, eta)``, on the log-odds scale.

    The variable is ``(r + 1) / 2``, as in the graph of
    :func:`~hiermodels.bayes.build.build_pymc_model` (``corr_<g>__raw``).
    """
    if prior.dist != "LKJCorr":
        raise ValueError(f"prior {prior!r} for {name!r} is not an LKJCorr prior")
    eta = float(prior.params["eta"])
    params = (LKJ_PAIR, eta, -float(special.betaln(eta, eta)), 0.0, 0.0)
    return ScalarPrior(name, prior, "logodds", params, 0.5)


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
