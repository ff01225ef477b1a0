"""Exact EB conditionals of a scalar random effect by adaptive Gauss–Hermite quadrature.

With one scalar random-effect term and every other parameter plugged in,
the groups are independent given the plug-in values and each conditional ::

    p(b_g | y, θ̂, β̂) ∝ N(b_g; 0, σ̂_b²) ∏_{i in g} p(y_i | η_i + b_g)

is one-dimensional (a negative binomial's ``p(y_i | ·)`` at its ``α̂``).
Centring the Gauss–Hermite rule at the conditional mode with the Laplace SD
as scale (adaptive quadrature, as glmer's ``nAGQ > 1``) gives its mean and SD
to many digits with a few dozen nodes — the exact conditional that the
Laplace Gaussian approximates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from hiermodels.mle.response import GlmResponse
from hiermodels.mle.results import MixedFit

__all__ = ["ScalarConditional", "scalar_conditional"]


@dataclass(frozen=True, eq=False)
class ScalarConditional:
    """Exact conditional moments of a scalar random effect, per level.

    Attributes
    ----------
    mean, sd : numpy.ndarray
        ``(levels,)`` conditional mean and standard deviation.
    quantiles : numpy.ndarray
        ``(levels, len(probs))`` conditional quantiles at ``probs``.
    probs : numpy.ndarray
        Probabilities of the quantiles.
    """

    mean: np.ndarray
    sd: np.ndarray
    quantiles: np.ndarray
    probs: np.ndarray


def scalar_conditional(
    fit: MixedFit, n_nodes: int = 41, probs: tuple[float, ...] = (0.03, 0.97)
) -> ScalarConditional:
    """Exact conditional of the random effect of a single-scalar-term GLMM.

    Parameters
    ----------
    fit : MixedFit
        A Laplace fit with exactly one random-effect term of one column.
    n_nodes : int
        Gauss–Hermite nodes (odd, so the mode is a node).
    probs : tuple of float
        Probabilities of the conditional quantiles to report (found on a fine
        grid spanning ±8 Laplace SDs around the mode).

    Returns
    -------
    ScalarConditional
        Moments given ``θ̂`` and ``β̂`` (EB with ``plugin="all"``).
    """
    if len(fit.layout.blocks) != 1 or fit.layout.blocks[0].n_terms != 1:
        raise ValueError(
            "the quadrature conditional needs a single scalar random-effect term such as "
            "(1 | g); use MCMC EB (eb_method='mcmc') for other structures"
        )
    if fit.design.family.is_gaussian:
        raise ValueError("Gaussian conditionals are exact in closed form; use eb_method='analytic'")
    block = fit.layout.blocks[0]
    response = GlmResponse.from_fit(fit)
    sd_b = float(np.sqrt(fit.covariances()[0][0, 0]))
    mode = fit.conditional_modes[0][:, 0]
    scale = np.sqrt(fit.conditional_covariances[0][:, 0, 0])
    base = fit.linear_predictor - block.X[:, 0] * mode[block.codes]
    nodes, weights = np.polynomial.hermite.hermgauss(n_nodes)

    def log_density(values: np.ndarray) -> np.ndarray:
        """``log p(b = values[g, k] | y)`` up to a constant per level."""
        eta = base[:, None] + block.X[:, :1] * values[block.codes]
        terms = response.loglik_terms(eta)
        out = np.zeros(values.shape)
        np.add.at(out, block.codes, terms)
        if sd_b > 0:
            out += -0.5 * (values / sd_b) ** 2
        return out

    if sd_b == 0:
        zeros = np.zeros(block.n_levels)
        return ScalarConditional(
            zeros, zeros, np.zeros((block.n_levels, len(probs))), np.asarray(probs)
        )
    points = mode[:, None] + np.sqrt(2.0) * scale[:, None] * nodes[None, :]
    log_w = np.log(weights)[None, :] + nodes[None, :] ** 2 + log_density(points)
    log_norm = logsumexp(log_w, axis=1, keepdims=True)
    w = np.exp(log_w - log_norm)
    mean = np.sum(w * points, axis=1)
    sd = np.sqrt(np.sum(w * (points - mean[:, None]) ** 2, axis=1))
    grid = mode[:, None] + scale[:, None] * np.linspace(-8.0, 8.0, 2001)[None, :]
    log_p = log_density(grid)
    cdf = np.cumsum(np.exp(log_p - log_p.max(axis=1, keepdims=True)), axis=1)
    cdf /= cdf[:, -1:]
    quantiles = np.stack(
        [[np.interp(p, cdf[g], grid[g]) for p in probs] for g in range(block.n_levels)]
    )
    return ScalarConditional(mean, sd, quantiles, np.asarray(probs))
