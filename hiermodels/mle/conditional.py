"""The group effects at a fitted solution: conditional modes, covariances, linear predictor.

From the Cholesky factor at the solution, :func:`conditional_blocks` gives
each block's conditional modes and lme4's ``condVar`` covariances in one
pass; :class:`ConditionalEffects` runs that pass once, when a fit first
asks for either, and maps them to the design's units.
"""

from __future__ import annotations

import threading

import numpy as np

from hiermodels.design.design import Design
from hiermodels.mle.blocked import BlockedFactor, ReLayout
from hiermodels.mle.lmm import PlsSolution
from hiermodels.mle.standardize import Standardization

__all__ = ["ConditionalEffects", "conditional_blocks", "conditional_linear_predictor"]


def conditional_blocks(
    layout: ReLayout,
    theta: np.ndarray,
    factor: BlockedFactor,
    u_lead: np.ndarray,
    u_rest: np.ndarray,
    sigma: float = 1.0,
) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Conditional modes and covariances of every block, θ order.

    The covariances are lme4's ``condVar``: the diagonal blocks of
    ``σ² Λ (ΛᵀZᵀWZΛ + I)⁻¹ Λᵀ`` — conditional on ``β̂`` and ``θ̂``.

    Parameters
    ----------
    layout : ReLayout
        Random-effects ordering and partition.
    theta : numpy.ndarray
        Relative covariance parameters.
    factor : BlockedFactor
        Cholesky factor at the solution.
    u_lead, u_rest : numpy.ndarray
        Spherical conditional modes, leading ``(L₀, q₀)`` and trailing.
    sigma : float
        Residual SD (1 for GLMMs).

    Returns
    -------
    modes : tuple of numpy.ndarray
        ``(levels, q)`` per block.
    covariances : tuple of numpy.ndarray
        ``(levels, q, q)`` per block.
    """
    factors = layout.theta.factors(theta)
    rest_sizes = [(layout.blocks[i].n_levels, layout.blocks[i].n_terms) for i in layout.rest]
    inv_lead, inv_rest = factor.inverse_diagonal_blocks(rest_sizes)
    t0 = layout.lead_factor(factors)
    b_lead = u_lead @ t0.T
    cov_lead = sigma**2 * (t0 @ inv_lead @ t0.T)
    modes: dict[int, np.ndarray] = {}
    covs: dict[int, np.ndarray] = {}
    start = 0
    for i in layout.lead:
        q = layout.blocks[i].n_terms
        modes[i] = b_lead[:, start : start + q]
        covs[i] = cov_lead[:, start : start + q, start : start + q]
        start += q
    for i, u_block, inv_block in zip(layout.rest, layout.split_rest(u_rest), inv_rest, strict=True):
        t = factors[i]
        modes[i] = u_block @ t.T
        covs[i] = sigma**2 * (t @ inv_block @ t.T)
    order = range(len(layout.blocks))
    return tuple(modes[i] for i in order), tuple(covs[i] for i in order)


def conditional_linear_predictor(
    design: Design, layout: ReLayout, beta: np.ndarray, modes: tuple[np.ndarray, ...]
) -> np.ndarray:
    """``Xβ + Zb + offset`` from per-block conditional modes (θ order)."""
    lead_b = np.hstack([modes[i] for i in layout.lead])
    rest_b = np.concatenate([modes[i].ravel() for i in layout.rest]) if layout.rest else np.zeros(0)
    eta = design.X @ beta + layout.z_times(lead_b, rest_b)
    if design.offset is not None:
        eta = eta + design.offset
    return eta


class ConditionalEffects:
    """A fit's conditional modes and covariances, computed together on first request.

    Both come from one pass over the factor at the solution
    (:func:`conditional_blocks`); the fit's deferred fields ask for one or the
    other. ``sol``'s factor must refer to ``layout``'s pattern; the
    standardised design's layout shares its ordering and index arrays, which
    is all the pass reads, and is not kept.
    """

    def __init__(
        self, layout: ReLayout, standardization: Standardization, sol: PlsSolution, sigma: float
    ) -> None:
        self._args: tuple[ReLayout, Standardization, PlsSolution, float] | None = (
            layout,
            standardization,
            sol,
            sigma,
        )
        self._values: tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]] | None = None
        self._lock = threading.Lock()

    def _computed(self) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        with self._lock:
            if self._values is None:
                assert self._args is not None
                layout, standardization, sol, sigma = self._args
                modes, covs = conditional_blocks(
                    layout, sol.theta, sol.factor, sol.u_lead, sol.u_rest, sigma
                )
                self._values = standardization.effects(modes, covs, layout.order)
                self._args = None  # the factor is no longer needed
            return self._values

    def modes(self) -> tuple[np.ndarray, ...]:
        """``(levels, q)`` conditional modes per block, θ order, in the design's units."""
        return self._computed()[0]

    def covariances(self) -> tuple[np.ndarray, ...]:
        """``(levels, q, q)`` conditional covariances per block, θ order."""
        return self._computed()[1]

    def linear_predictor(self, design: Design, layout: ReLayout, beta: np.ndarray) -> np.ndarray:
        """``Xβ + Zb + offset`` at the conditional modes."""
        return conditional_linear_predictor(design, layout, beta, self.modes())
