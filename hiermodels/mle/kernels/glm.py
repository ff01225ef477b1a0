"""The GLMM families' per-observation quantities, as the Python response computes them.

Family and link codes; the mean ``g⁻¹(η)`` (the probit's through Cephes'
``ndtr``, SciPy's to the last bit); working weights and residuals; the
deviance with its constants; the sum of squared deviance residuals; and
the derivatives of the deviance in ``η`` that the Laplace gradient needs.
Each mirrors the formula of :class:`~hiermodels.mle.response.GlmResponse`
it names.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hiermodels.mle.kernels.summation import pairwise_sum

__all__ = [
    "BINOMIAL_LOGIT",
    "BINOMIAL_PROBIT",
    "POISSON_LOG",
    "NEGATIVE_BINOMIAL_LOG",
    "GAMMA_LOG",
    "GAMMA_INVERSE",
    "INVERSE_GAUSSIAN_LOG",
    "INVERSE_GAUSSIAN_INVERSE_SQUARE",
    "glm_mean",
    "glm_working",
    "glm_deviance",
    "glm_residual_deviance",
    "glm_derivatives",
    "step_with_observed",
]


#: Family and link codes of the GLMM kernels.
BINOMIAL_LOGIT = 0
BINOMIAL_PROBIT = 1
POISSON_LOG = 2
NEGATIVE_BINOMIAL_LOG = 3
GAMMA_LOG = 4
GAMMA_INVERSE = 5
INVERSE_GAUSSIAN_LOG = 6
INVERSE_GAUSSIAN_INVERSE_SQUARE = 7

# As hiermodels.mle.response: keeps means away from 0 and 1, where weights vanish.
_MEAN_EPS = 1e-10
_SQRT_2PI = np.sqrt(2.0 * np.pi)

# Cephes' rational approximations of erf and erfc (Moshier; as SciPy's xsf has them), so
# that the probit link's means are scipy.special.ndtr's to the last bit: libm's erfc
# differs in the last bits, enough to move where PIRLS's Fisher scoring stops.
_ERFC_P = np.array(
    [
        2.46196981473530512524e-10,
        5.64189564831068821977e-1,
        7.46321056442269912687e0,
        4.86371970985681366614e1,
        1.96520832956077098242e2,
        5.26445194995477358631e2,
        9.34528527171957607540e2,
        1.02755188689515710272e3,
        5.57535335369399327526e2,
    ]
)
_ERFC_Q = np.array(
    [
        1.32281951154744992508e1,
        8.67072140885989742329e1,
        3.54937778887819891062e2,
        9.75708501743205489753e2,
        1.82390916687909736289e3,
        2.24633760818710981792e3,
        1.65666309194161350182e3,
        5.57535340817727675546e2,
    ]
)
_ERFC_R = np.array(
    [
        5.64189583547755073984e-1,
        1.27536670759978104416e0,
        5.01905042251180477414e0,
        6.16021097993053585195e0,
        7.40974269950448939160e0,
        2.97886665372100240670e0,
    ]
)
_ERFC_S = np.array(
    [
        2.26052863220117276590e0,
        9.39603524938001434673e0,
        1.20489539808096656605e1,
        1.70814450747565897222e1,
        9.60896809063285878198e0,
        3.36907645100081516050e0,
    ]
)
_ERF_T = np.array(
    [
        9.60497373987051638749e0,
        9.00260197203842689217e1,
        2.23200534594684319226e3,
        7.00332514112805075473e3,
        5.55923013010394962768e4,
    ]
)
_ERF_U = np.array(
    [
        3.35617141647503099647e1,
        5.21357949780152679795e2,
        4.59432382970980127987e3,
        2.26290000613890934246e4,
        4.92673942608635921086e4,
    ]
)
_MAXLOG = 7.09782712893383996843e2


@njit(cache=True, nogil=True, error_model="numpy")
def _polevl(x: float, coef: np.ndarray) -> float:
    """Cephes' ``polevl``: the polynomial with coefficients ``coef`` (highest first)."""
    ans = coef[0]
    for i in range(1, coef.size):
        ans = ans * x + coef[i]
    return ans


@njit(cache=True, nogil=True, error_model="numpy")
def _p1evl(x: float, coef: np.ndarray) -> float:
    """Cephes' ``p1evl``: as :func:`_polevl` with a leading coefficient of 1."""
    ans = x + coef[0]
    for i in range(1, coef.size):
        ans = ans * x + coef[i]
    return ans


@njit(cache=True, nogil=True, error_model="numpy")
def _ndtr(a: float) -> float:
    """Standard normal CDF, as scipy's ``ndtr`` (cephes) evaluates it.

    Only the branches ``ndtr`` reaches: ``erf`` of ``|x| < 1`` and ``erfc``
    of ``x ≥ 1`` (cephes' mutual recursion between the two, which numba's
    disk cache cannot hold, is never entered from there).
    """
    x = a * 0.70710678118654752440
    z = abs(x)
    if z < 1.0:
        zz = x * x
        return 0.5 + 0.5 * (x * _polevl(zz, _ERF_T) / _p1evl(zz, _ERF_U))
    w = -z * z
    if w < -_MAXLOG:
        y = 0.0
    else:
        w = np.exp(w)
        if z < 8.0:
            y = (w * _polevl(z, _ERFC_P)) / _p1evl(z, _ERFC_Q)
        else:
            y = (w * _polevl(z, _ERFC_R)) / _p1evl(z, _ERFC_S)
    y = 0.5 * y
    return 1.0 - y if x > 0.0 else y


@njit(cache=True, nogil=True, error_model="numpy")
def _clipped(value: float) -> float:
    """``numpy.clip(value, ε, 1 − ε)``, NaN kept."""
    if value < _MEAN_EPS:
        return _MEAN_EPS
    if value > 1.0 - _MEAN_EPS:
        return 1.0 - _MEAN_EPS
    return value


@njit(cache=True, nogil=True, error_model="numpy")
def glm_mean(code: int, eta: float) -> float:
    """Mean per trial ``μ = g⁻¹(η)`` (``GlmResponse.mean``)."""
    if code == BINOMIAL_LOGIT:
        return _clipped(1.0 / (1.0 + np.exp(-eta)))
    if code == BINOMIAL_PROBIT:
        return _clipped(_ndtr(eta))
    if code == GAMMA_INVERSE:
        return 1.0 / eta if eta > 0.0 else np.inf
    if code == INVERSE_GAUSSIAN_INVERSE_SQUARE:
        return 1.0 / np.sqrt(eta) if eta > 0.0 else np.inf
    return np.exp(eta)


@njit(cache=True, nogil=True, error_model="numpy")
def _positive(code: int, y: float, mu: float, phi: float) -> tuple[float, float, float]:
    """Gamma and inverse Gaussian: score, observed information and its slope in ``η``.

    As ``GlmResponse``'s ``_positive_score_weight``; the slopes are the
    derivatives of those weights: ``−y/(φμ)`` (Gamma, log), ``−2μ³/φ``
    (Gamma, inverse), ``(μ − 4y)/(φμ²)`` (inverse Gaussian, log) and
    ``−3μ⁵/(8φ)`` (inverse Gaussian, ``1/mu^2``).
    """
    if code == GAMMA_LOG:
        return (y / mu - 1.0) / phi, y / (phi * mu), -y / (phi * mu)
    if code == GAMMA_INVERSE:
        return (mu - y) / phi, mu * mu / phi, -2.0 * mu * mu * mu / phi
    if code == INVERSE_GAUSSIAN_LOG:
        mu2 = mu * mu
        return (y - mu) / (phi * mu2), (2.0 * y - mu) / (phi * mu2), (mu - 4.0 * y) / (phi * mu2)
    mu3 = mu * mu * mu
    return (mu - y) / (2.0 * phi), mu3 / (4.0 * phi), -3.0 * mu3 * mu * mu / (8.0 * phi)


@njit(cache=True, nogil=True, error_model="numpy")
def _positive_expected(code: int, mu: float, phi: float) -> float:
    """The Fisher weight ``(dμ/dη)²/(φV(μ))`` of the Gamma and inverse Gaussian."""
    if code == GAMMA_LOG:
        return 1.0 / phi
    if code == GAMMA_INVERSE:
        return mu * mu / phi
    if code == INVERSE_GAUSSIAN_LOG:
        return 1.0 / (phi * mu)
    return mu * mu * mu / (4.0 * phi)


@njit(cache=True, nogil=True, error_model="numpy")
def _probit_observed(y: float, trials: float, eta: float) -> tuple[float, float, float]:
    """Probit score, observed information and its slope in ``η`` (``GlmResponse``'s).

    With ``r₁ = φ/Φ``, ``r₀ = φ/(1 − Φ)``, ``A = η + r₁``, ``B = r₀ − η``:
    score ``y r₁ − f r₀``, weight ``y r₁A + f r₀B`` and slope
    ``y r₁(1 − A(A + r₁)) + f r₀(B(B + r₀) − 1)`` (``f = n − y``); all 0
    where the mean is clipped and the log-likelihood flat.
    """
    upper = _ndtr(eta)
    lower = _ndtr(-eta)
    if upper < _MEAN_EPS or lower < _MEAN_EPS:
        return 0.0, 0.0, 0.0
    density = np.exp(-0.5 * eta * eta) / _SQRT_2PI
    r1 = density / upper
    r0 = density / lower
    fails = trials - y
    a = eta + r1
    b = r0 - eta
    score = y * r1 - fails * r0
    weight = y * r1 * a + fails * r0 * b
    slope = y * r1 * (1.0 - a * (a + r1)) + fails * r0 * (b * (b + r0) - 1.0)
    return score, weight, slope


@njit(cache=True, nogil=True, error_model="numpy")
def step_with_observed(code: int) -> bool:
    """Whether PIRLS may step with the observed information of this family and link.

    Not the inverse Gaussian's with the log link, ``(2y − μ)/(φμ²)``: negative
    where ``y < μ/2``, it can make the system of a step indefinite away from
    the mode. Its steps take the Fisher weights (the mode is the same), and
    only the factor at the mode, whose ``log |L|²`` the Laplace deviance
    needs, the observed information.
    """
    return code != INVERSE_GAUSSIAN_LOG


@njit(cache=True, nogil=True, error_model="numpy")
def glm_working(
    code: int,
    y: np.ndarray,
    trials: np.ndarray,
    alpha: float,
    observed: bool,
    eta: np.ndarray,
    weights: np.ndarray,
    resid: np.ndarray,
) -> None:
    """Working weights and residuals at ``η`` (``GlmResponse.working``), into the last two."""
    for i in range(eta.size):
        mu = glm_mean(code, eta[i])
        if code >= GAMMA_LOG:
            score, weight, _ = _positive(code, y[i], mu, alpha)
            if not observed:
                weight = _positive_expected(code, mu, alpha)
            weights[i] = weight
            resid[i] = score / weight if weight != 0.0 else 0.0
            continue
        if code == BINOMIAL_PROBIT and observed:
            score, weight, _ = _probit_observed(y[i], trials[i], eta[i])
            weights[i] = weight
            resid[i] = score / weight if weight > 0.0 else 0.0
            continue
        if code == NEGATIVE_BINOMIAL_LOG:
            m = mu if mu >= _MEAN_EPS or mu != mu else _MEAN_EPS
            ratio = m / alpha
            if observed:
                y_ratio = y[i] / alpha
                weights[i] = m * (1.0 + y_ratio) / ((1.0 + ratio) * (1.0 + ratio))
                resid[i] = (y[i] - m) * (1.0 + ratio) / (m * (1.0 + y_ratio))
            else:
                weights[i] = m / (1.0 + ratio)
                resid[i] = (y[i] - m) / m
            continue
        if code == BINOMIAL_LOGIT:
            d = mu * (1.0 - mu)
        elif code == BINOMIAL_PROBIT:
            d = np.exp(-(eta[i] * eta[i]) / 2.0) / _SQRT_2PI
            if d < _MEAN_EPS:
                d = _MEAN_EPS
        else:
            d = mu if mu >= _MEAN_EPS or mu != mu else _MEAN_EPS
        if code == POISSON_LOG:
            variance = mu if mu >= _MEAN_EPS or mu != mu else _MEAN_EPS
        else:
            variance = mu * (1.0 - mu)
        weights[i] = trials[i] * (d * d) / variance
        proportion = y[i] / trials[i] if trials[i] > 0.0 else 0.0
        resid[i] = (proportion - mu) / d


@njit(cache=True, nogil=True, error_model="numpy")
def _xlogy(x: float, y: float) -> float:
    """``x log y``, 0 where ``x = 0`` (scipy's ``xlogy``)."""
    if x == 0.0 and y == y:
        return 0.0
    return x * np.log(y)


@njit(cache=True, nogil=True, error_model="numpy")
def glm_deviance(
    code: int,
    y: np.ndarray,
    trials: np.ndarray,
    log_constant: np.ndarray,
    alpha: float,
    eta: np.ndarray,
    terms: np.ndarray,
) -> float:
    """``−2 Σ log p(y | η)``, constants included (``GlmResponse.deviance``); ``terms``: work."""
    finite_alpha = alpha < np.inf
    for i in range(eta.size):
        mu = glm_mean(code, eta[i])
        if code == BINOMIAL_LOGIT or code == BINOMIAL_PROBIT:
            failures = trials[i] - y[i]
            tail = 0.0 if failures == 0.0 and mu == mu else failures * np.log1p(-mu)
            terms[i] = log_constant[i] + _xlogy(y[i], mu) + tail
        elif mu == np.inf:
            terms[i] = -np.inf
        elif code == GAMMA_LOG or code == GAMMA_INVERSE:
            terms[i] = log_constant[i] - (np.log(mu) + y[i] / mu) / alpha
        elif code >= INVERSE_GAUSSIAN_LOG:
            gap = y[i] - mu
            terms[i] = log_constant[i] - gap * gap / (2.0 * alpha * mu * mu * y[i])
        elif code == NEGATIVE_BINOMIAL_LOG and finite_alpha:
            terms[i] = log_constant[i] + _xlogy(y[i], mu) - (y[i] + alpha) * np.log1p(mu / alpha)
        else:
            terms[i] = log_constant[i] + _xlogy(y[i], mu) - mu
    return -2.0 * pairwise_sum(terms, 0, terms.size)


@njit(cache=True, nogil=True, error_model="numpy")
def glm_residual_deviance(
    code: int, y: np.ndarray, trials: np.ndarray, alpha: float, eta: np.ndarray, terms: np.ndarray
) -> float:
    """Sum of squared deviance residuals (``GlmResponse.residual_deviance``)."""
    for i in range(eta.size):
        mu = glm_mean(code, eta[i])
        if code == BINOMIAL_LOGIT or code == BINOMIAL_PROBIT:
            prop = y[i] / trials[i] if trials[i] > 0.0 else 0.0
            terms[i] = trials[i] * (
                _xlogy(prop, prop / mu) + _xlogy(1.0 - prop, (1.0 - prop) / (1.0 - mu))
            )
        elif code == GAMMA_LOG or code == GAMMA_INVERSE:
            terms[i] = ((y[i] - mu) / mu - np.log(y[i] / mu)) / alpha
        elif code >= INVERSE_GAUSSIAN_LOG:
            gap = y[i] - mu
            terms[i] = 0.5 * gap * gap / (mu * mu * y[i]) / alpha
        elif code == NEGATIVE_BINOMIAL_LOG and alpha < np.inf:
            saturated = (y[i] + alpha) * np.log1p((y[i] - mu) / (mu + alpha))
            terms[i] = _xlogy(y[i], y[i] / mu) - saturated
        else:
            terms[i] = _xlogy(y[i], y[i] / mu) - (y[i] - mu)
    return 2.0 * pairwise_sum(terms, 0, terms.size)


@njit(cache=True, nogil=True, error_model="numpy")
def glm_derivatives(
    code: int,
    y: np.ndarray,
    trials: np.ndarray,
    alpha: float,
    eta: np.ndarray,
    first: np.ndarray,
    weights: np.ndarray,
    slope: np.ndarray,
) -> None:
    """``∂D/∂η``, the Newton weight ``½ ∂²D/∂η²`` and its slope ``∂w/∂η``, per observation.

    ``D = −2 log p(y | η)``. For the logit and log links of the binomial and
    Poisson families, and for the probit link, the negative binomial, the
    Gamma and the inverse Gaussian with the observed information, the weight
    is PIRLS's (:func:`glm_working`).
    """
    for i in range(eta.size):
        mu = glm_mean(code, eta[i])
        if code >= GAMMA_LOG:
            score, weight, change = _positive(code, y[i], mu, alpha)
            first[i] = -2.0 * score
            weights[i] = weight
            slope[i] = change
        elif code == BINOMIAL_LOGIT:
            variance = mu * (1.0 - mu)
            first[i] = -2.0 * (y[i] - trials[i] * mu)
            weights[i] = trials[i] * variance
            slope[i] = trials[i] * variance * (1.0 - 2.0 * mu)
        elif code == POISSON_LOG or code == NEGATIVE_BINOMIAL_LOG:
            floored = mu < _MEAN_EPS
            m = _MEAN_EPS if floored else mu
            ratio = m / alpha
            y_ratio = y[i] / alpha
            first[i] = -2.0 * (y[i] - m) / (1.0 + ratio)
            weights[i] = m * (1.0 + y_ratio) / ((1.0 + ratio) * (1.0 + ratio))
            slope[i] = 0.0 if floored else m * (1.0 + y_ratio) * (1.0 - ratio) / (1.0 + ratio) ** 3
        else:
            score, weight, change = _probit_observed(y[i], trials[i], eta[i])
            first[i] = -2.0 * score
            weights[i] = weight
            slope[i] = change
