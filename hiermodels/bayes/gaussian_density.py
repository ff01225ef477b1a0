"""The marginal posterior density of any gaussian mixed model, effects integrated out.

For every random-effects structure the specification allows — crossed,
partially crossed, nested to any depth, several blocks per factor, ``||``,
correlated blocks of any size — the likelihood with the effects integrated
out, ``y ~ N(Xβ, σ²(I + ZΛΛᵀZᵀ))``, is what the MLE engine evaluates at
each step of its optimiser: the same blocked factor of ``ΛᵀZᵀZΛ + I`` and
the same penalised least squares, only not profiled
(:class:`~hiermodels.mle.gaussian_likelihood.GaussianLikelihood`, with its analytic
gradient). :class:`GaussianMarginalDensity` adds the priors of the PyMC
graph (:class:`~hiermodels.bayes.hyper_density.HyperParameters`), on the
same unconstrained coordinates, and :func:`gaussian_effect_draws` draws the
effects afterwards from their exact Gaussian conditional
(:func:`~hiermodels.bayes.integrated.integrated_effects`).

The likelihood is evaluated on the residuals of a least-squares fit and on
centred predictors (:class:`~hiermodels.bayes.marginal_density.FixedEffectsPrior`),
so that the posterior of ``y + 1e12`` is that of ``y`` shifted.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from hiermodels.bayes.hyper_density import HyperParameters, hyper_point, hyper_pull_back
from hiermodels.bayes.integrated import IntegratedDensity, store_effect_draw
from hiermodels.bayes.marginal_density import FixedEffectsPrior
from hiermodels.bayes.priors import Priors
from hiermodels.design.design import Design
from hiermodels.mle.gaussian_likelihood import GaussianLikelihood
from hiermodels.mle.kernels import (
    backward,
    gaussian_finish,
    gaussian_loglik,
    gaussian_prepare,
    trailing_factor_and_inverse,
)

__all__ = ["GaussianMarginalDensity", "gaussian_effect_draws", "gaussian_log_density"]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def gaussian_log_density(
    x: np.ndarray,
    hyper: tuple,
    origin: np.ndarray,
    reference: np.ndarray,
    likelihood: tuple,
    gradient: np.ndarray,
) -> float:
    """Log posterior density (up to its constant) at ``x``, its gradient into ``gradient``.

    The arguments after ``x`` are :attr:`GaussianMarginalDensity.native`.
    Returns ``-inf`` where the density cannot be evaluated.
    """
    sizes = hyper[18]
    p, n_theta = sizes[0], sizes[2]
    theta = np.empty(n_theta)
    log_prior, sigma = hyper_point(x, hyper, theta, gradient)
    if not np.isfinite(log_prior):
        return -np.inf
    relative = theta / sigma
    offsets = np.empty(p)
    for k in range(p):
        offsets[k] = (x[k] - origin[k]) - reference[k]
    d_beta = np.zeros(p)
    d_theta = np.zeros(n_theta)
    data, placement, structure, blocks, scalars = likelihood
    value, d_sigma = gaussian_loglik(
        offsets, relative, sigma, data, placement, structure, blocks, scalars, d_beta, d_theta
    )
    if not np.isfinite(value):
        return -np.inf
    # θ is the absolute factor over σ: move the gradient to the absolute factor and σ
    along = 0.0
    for e in range(n_theta):
        along += relative[e] * d_theta[e]
        d_theta[e] /= sigma
    hyper_pull_back(x, hyper, sigma, d_beta, d_theta, d_sigma - along / sigma, gradient)
    return value + log_prior


@njit(cache=True, nogil=True, error_model="numpy")
def gaussian_effect_draws(
    points: np.ndarray,
    hyper: tuple,
    origin: np.ndarray,
    reference: np.ndarray,
    likelihood: tuple,
    noise_lead: np.ndarray,
    noise_rest: np.ndarray,
    u_lead: np.ndarray,
    u_rest: np.ndarray,
    theta: np.ndarray,
) -> bool:
    """Spherical effects ``u = û + σ L⁻ᵀ ε`` at each of ``points``, one noise draw each.

    Given ``(β, θ, σ)`` the spherical effects are ``N(û, σ² S⁻¹)`` with
    ``S = LLᵀ`` the factor of ``ΛᵀZᵀZΛ + I``. Fills ``u_lead`` ``(draws, L₀,
    q₀)``, ``u_rest`` ``(draws, q_rest)`` and the absolute factors ``theta``
    ``(draws, len(θ) + 1)``, ``σ`` last; returns False if a point lies where
    the density cannot be evaluated. The noises are ``(draws, L₀, q₀, 1)`` and
    ``(draws, q_rest, 1)``.
    """
    data, placement, structure, _, scalars = likelihood
    a11, a21, a22, zt_xy_lead, zt_xy_rest, xy_cross = data
    rest_q, _, _, _, pair_block, pair_row, pair_ptr, lead_ptr = structure[:8]
    p = origin.size
    n_theta = theta.shape[1] - 1
    slopes = np.empty(points.shape[1])
    offsets = np.empty(p)
    for d in range(points.shape[0]):
        x = points[d]
        absolute = theta[d, :n_theta]
        log_prior, sigma = hyper_point(x, hyper, absolute, slopes)
        if not np.isfinite(log_prior):
            return False
        theta[d, n_theta] = sigma
        for k in range(p):
            offsets[k] = (x[k] - origin[k]) - reference[k]
        prepared = gaussian_prepare(
            offsets, absolute / sigma, a11, a21, a22, zt_xy_lead, zt_xy_rest, xy_cross,
            placement, structure,
        )  # fmt: skip
        if not prepared[9]:
            return False
        l22, _, ok = trailing_factor_and_inverse(prepared[8])
        if not ok:
            return False
        l11, l21 = prepared[6], prepared[7]
        value, solution = gaussian_finish(sigma, scalars[0], prepared, l22, structure)
        mode_lead, mode_rest = solution[4], solution[5]
        if not np.isfinite(value):
            return False
        shift_lead, shift_rest = backward(
            l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, noise_lead[d],
            noise_rest[d],
        )  # fmt: skip
        store_effect_draw(d, mode_lead, mode_rest, shift_lead, shift_rest, sigma, u_lead, u_rest)
    return True


class GaussianMarginalDensity(IntegratedDensity):
    """Log posterior density (up to its constant) of a gaussian model, effects integrated out.

    The unconstrained coordinates are those of the PyMC graph of
    :func:`~hiermodels.bayes.build.build_pymc_model` without the offsets
    ``z_<g>`` (see :mod:`hiermodels.bayes.hyper_density`).

    Parameters
    ----------
    design : Design
        A gaussian design with at least one random-effect term.
    priors : Priors
        A complete set from :func:`~hiermodels.bayes.priors.resolve_priors`.

    Attributes
    ----------
    ndim : int
        Number of unconstrained coordinates.
    """

    #: Draws the spherical effects chain by chain (:meth:`IntegratedDensity.draw_effects`).
    effect_kernel = staticmethod(gaussian_effect_draws)

    def __init__(self, design: Design, priors: Priors) -> None:
        if not design.family.is_gaussian:
            raise ValueError(
                f"GaussianMarginalDensity needs a gaussian model, not {design.family.name!r}"
            )
        fixed = FixedEffectsPrior(design, priors)
        self.likelihood = GaussianLikelihood.of(fixed.residual_design(design))
        self.layout = self.likelihood.layout
        self.hyper = HyperParameters(design, priors, self.layout, with_sigma=True, fixed=fixed)

    @property
    def native(self) -> tuple:
        """``(hyper tables, origin, reference, likelihood arguments)``: what
        :func:`gaussian_log_density` takes after the point."""
        fixed = self.hyper.fixed
        return (
            self.hyper.tables,
            np.asarray(fixed.origin, dtype=float),
            np.asarray(fixed.reference, dtype=float),
            self.likelihood.native,
        )

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density and its gradient at the unconstrained point ``x``.

        Returns ``-inf`` and a zero gradient where the density cannot be
        evaluated (scales that overflow far out in the tails).
        """
        gradient = np.zeros(self.ndim)
        value = gaussian_log_density(np.ascontiguousarray(x, dtype=float), *self.native, gradient)
        if not math.isfinite(value):
            return -math.inf, np.zeros(self.ndim)
        return value, gradient
