"""The marginal posterior density of any gaussian mixed model, effects integrated out.

For every random-effects structure the specification allows — crossed,
partially crossed, nested to any depth, several blocks per factor, ``||``,
correlated blocks of any size — the likelihood with the effects integrated
out, ``y ~ N(Xβ, σ²(I + ZΛΛᵀZᵀ))``, is what the MLE engine evaluates at
each step of its optimiser: the same blocked factor of ``ΛᵀZᵀZΛ + I`` and
the same penalised least squares, only not profiled
(:class:`~hiermodels.mle.lmm.GaussianLikelihood`, with its analytic
gradient). :class:`GaussianMarginalDensity` adds the priors of the PyMC
graph (:class:`~hiermodels.bayes.hyper_density.HyperParameters`), on the
same unconstrained coordinates, and :func:`gaussian_conditional_effects`
draws the effects afterwards from their exact Gaussian conditional.

The likelihood is evaluated on the residuals of a least-squares fit and on
centred predictors (:class:`~hiermodels.bayes.marginal_density.FixedEffectsPrior`),
so that the posterior of ``y + 1e12`` is that of ``y`` shifted.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr
from numba import njit

from hiermodels.bayes.hyper_density import (
    HyperParameters,
    IntegratedDensity,
    hyper_point,
    hyper_pull_back,
)
from hiermodels.bayes.marginal_density import FixedEffectsPrior, effect_arrays
from hiermodels.bayes.priors import Priors
from hiermodels.mle.kernels import gaussian_loglik
from hiermodels.mle.lmm import GaussianLikelihood
from hiermodels.spec.design import Design

__all__ = ["GaussianMarginalDensity", "gaussian_conditional_effects", "gaussian_log_density"]


@njit(cache=True, nogil=True, error_model="numpy")
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

    def __init__(self, design: Design, priors: Priors) -> None:
        if not design.family.is_gaussian:
            raise ValueError(
                f"GaussianMarginalDensity needs a gaussian model, not {design.family.name!r}"
            )
        fixed = FixedEffectsPrior(design, priors)
        self.likelihood = GaussianLikelihood.of(fixed.residual_design(design))
        self.hyper = HyperParameters(
            design, priors, self.likelihood.layout, with_sigma=True, fixed=fixed
        )

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

    def draw_effects(
        self, x: np.ndarray, rng: np.random.Generator
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """One draw of every block's effects given the hyperparameters ``x``.

        Given ``(β, θ, σ)`` the spherical effects are ``N(û, σ² S⁻¹)`` with
        ``S = LLᵀ`` the factor of ``ΛᵀZᵀZΛ + I``: ``u = û + σ L⁻ᵀ ε``, and
        ``b = Λu``.

        Returns
        -------
        effects : list of numpy.ndarray
            ``(levels, q)`` per block of the design (design order).
        factors : list of numpy.ndarray
            Per block (design order), the absolute covariance factor ``T``
            (the effects' covariance is ``T Tᵀ``).
        """
        point = self.hyper.evaluate(x)
        if point is None:
            raise ValueError("the posterior draw lies where the density cannot be evaluated")
        at = self.likelihood.evaluate(
            np.asarray(self.hyper.fixed.offsets(point.beta_coords)),
            point.theta / point.sigma,
            point.sigma,
        )
        if at.factor is None:
            raise ValueError("the posterior draw lies where the density cannot be evaluated")
        layout = self.likelihood.layout
        sigma = point.sigma
        noise_lead = rng.standard_normal(at.u_lead.shape)
        noise_rest = rng.standard_normal(at.u_rest.shape)
        shift_lead, shift_rest = at.factor.backward(noise_lead[:, :, None], noise_rest[:, None])
        u_lead = at.u_lead + sigma * shift_lead[:, :, 0]
        u_rest = at.u_rest + sigma * shift_rest[:, 0]
        factors = layout.theta.factors(point.theta / sigma)
        by_theta: dict[int, np.ndarray] = {}
        b_lead = u_lead @ layout.lead_factor(factors).T
        for k, part in zip(layout.lead, layout.split_lead(b_lead), strict=True):
            by_theta[k] = part
        for k, part in zip(layout.rest, layout.split_rest(u_rest), strict=True):
            by_theta[k] = part @ factors[k].T
        absolute = layout.theta.factors(point.theta)
        effects: list[np.ndarray] = [np.empty(0)] * len(layout.blocks)
        scaled: list[np.ndarray] = [np.empty(0)] * len(layout.blocks)
        for k, i in enumerate(layout.order):
            effects[i] = by_theta[k]
            scaled[i] = absolute[k]
        return effects, scaled


def gaussian_conditional_effects(
    posterior: xr.Dataset,
    design: Design,
    density: GaussianMarginalDensity,
    rng: np.random.Generator,
) -> dict[str, xr.DataArray]:
    """Draw ``z_<g>`` and ``u_<g>`` from their exact conditional, one per posterior draw.

    Parameters
    ----------
    posterior : xarray.Dataset
        Draws of the variables of ``density.output_names``.
    design : Design
    density : GaussianMarginalDensity
        The density the draws were sampled from.
    rng : numpy.random.Generator

    Returns
    -------
    dict of str to xarray.DataArray
        ``z_<g>`` and ``u_<g>`` per grouping factor, dims
        ``(chain, draw, <g>, <g>__term)``, as in the PyMC graph.
    """
    hyper = density.hyper
    names = [n for n in hyper.output_names if "__raw" not in n]
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    values = {n: posterior[n].transpose("chain", "draw", ...).values for n in names}
    group_of = {g.group: g for g in hyper.groups}
    span_in_group: list[tuple[str, int, int]] = []
    seen: dict[str, int] = {}
    for block in design.blocks:
        start = seen.get(block.group, 0)
        span_in_group.append((block.group, start, start + block.n_terms))
        seen[block.group] = start + block.n_terms
    u = {g: np.empty((chains, draws, len(t.levels), len(t.terms))) for g, t in group_of.items()}
    z = {g: np.empty_like(a) for g, a in u.items()}

    def draw_chain(c: int, chain_rng: np.random.Generator) -> None:
        for d in range(draws):
            x = hyper.unconstrain({n: v[c, d] for n, v in values.items()})
            effects, factors = density.draw_effects(x, chain_rng)
            for (g, a, b), effect, factor in zip(span_in_group, effects, factors, strict=True):
                u[g][c, d, :, a:b] = effect
                # u = z Tᵀ with T the absolute factor: z = T⁻¹ u per level
                z[g][c, d, :, a:b] = np.linalg.solve(factor, effect.T).T

    # the compiled solves release the GIL: chains in threads, one stream each, so
    # the draws depend on the seed alone
    streams = rng.spawn(chains)
    with ThreadPoolExecutor(max_workers=max(1, min(chains, os.cpu_count() or 1))) as pool:
        for job in [pool.submit(draw_chain, c, streams[c]) for c in range(chains)]:
            job.result()
    out: dict[str, xr.DataArray] = {}
    for g, layout in group_of.items():
        out.update(effect_arrays(posterior, layout, z[g], u[g]))
    return out
