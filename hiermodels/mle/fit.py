"""Fit a linear mixed model by REML or ML: optimise θ, then assemble a ``MixedFit``."""

from __future__ import annotations

import functools
import threading
import warnings
from dataclasses import replace

import numpy as np

from hiermodels.design.design import Design
from hiermodels.errors import SingularFitWarning
from hiermodels.mle.blocked import BlockedFactor, ReLayout, triangular_inverse
from hiermodels.mle.lmm import PlsSolution, profiled_deviance
from hiermodels.mle.optimize import (
    checked_theta,
    evaluated_at,
    minimize_bounded,
    single_threaded_blas,
)
from hiermodels.mle.results import MixedFit
from hiermodels.mle.standardize import Standardization
from hiermodels.mle.start import moment_start

__all__ = [
    "SingularFitWarning",
    "conditional_blocks",
    "fit_lmm",
    "linear_predictor",
    "warn_if_singular",
]


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


def linear_predictor(
    design: Design, layout: ReLayout, beta: np.ndarray, modes: tuple[np.ndarray, ...]
) -> np.ndarray:
    """``Xβ + Zb + offset`` from per-block conditional modes (θ order)."""
    lead_b = np.hstack([modes[i] for i in layout.lead])
    rest_b = np.concatenate([modes[i].ravel() for i in layout.rest]) if layout.rest else np.zeros(0)
    eta = design.X @ beta + layout.z_times(lead_b, rest_b)
    if design.offset is not None:
        eta = eta + design.offset
    return eta


def warn_if_singular(fit: MixedFit) -> None:
    """Warn as lme4 does when the fit is on the boundary."""
    if fit.singular:
        warnings.warn(
            "boundary (singular) fit: some variance components are estimated as zero "
            "or correlations as ±1; see MixedFit.varcorr",
            SingularFitWarning,
            stacklevel=3,
        )


@single_threaded_blas
def fit_lmm(
    design: Design,
    method: str = "REML",
    *,
    start: np.ndarray | None = None,
    theta: np.ndarray | None = None,
    optimizer: str = "quasi-newton",
) -> MixedFit:
    """Fit a linear mixed model by REML or ML.

    Parameters
    ----------
    design : Design
        A Gaussian design with at least one random-effect term.
    method : {"REML", "ML"}
        Restricted or full maximum likelihood.
    start : numpy.ndarray, optional
        Start values for θ (default: moment estimates,
        :func:`~hiermodels.mle.start.moment_start`; lme4 starts at identity
        relative factors, which ``optimizer="bobyqa"`` keeps).
    theta : numpy.ndarray, optional
        Evaluate the model at this θ instead of optimising (``β`` and ``σ``
        are still profiled): the fit of given variance parameters, e.g.
        another program's estimates.
    optimizer : {"quasi-newton", "bobyqa"}
        ``"quasi-newton"`` (default): bound-constrained quasi-Newton on the
        analytic gradient of the criterion, with BOBYQA as the fallback;
        ``"bobyqa"``: BOBYQA with Newton polishing, lme4's derivative-free
        path. The fit log (``fit.opt``) records which ran.

    Returns
    -------
    MixedFit

    Warns
    -----
    SingularFitWarning
        When the estimate is on the boundary (a variance estimated as zero or
        a correlation of ±1), as lme4's "boundary (singular) fit" message.
    """
    method_key = method.upper()
    if method_key not in ("REML", "ML"):
        raise ValueError(f"method must be 'REML' or 'ML' for a Gaussian model, got {method!r}")
    reml = method_key == "REML"
    standardization = Standardization.of(design)
    std_design = standardization.apply(design)
    deviance = profiled_deviance(std_design, reml=reml)
    std_layout = deviance.layout
    layout = std_layout.with_covariates(design)
    theta_layout = std_layout.theta
    lower = theta_layout.lower_bounds()
    if theta is not None:
        given = standardization.standard_theta(checked_theta(theta, lower), std_layout)
        opt = evaluated_at(deviance, given, lower)
    else:
        x0 = (
            (moment_start(deviance, std_design) if optimizer != "bobyqa" else theta_layout.start())
            if start is None
            else standardization.standard_theta(np.asarray(start, dtype=float), std_layout)
        )
        opt = minimize_bounded(
            deviance,
            x0,
            lower,
            polish=True,
            value_and_gradient=deviance.value_and_gradient,
            optimizer=optimizer,
            boundary_restart=theta_layout.start(),
        )
    sol = deviance.solve(opt.final)
    sigma_std = deviance.sigma(sol)
    beta = standardization.beta(sol.beta)
    objective = deviance.objective(sol) + standardization.criterion_offset(design.nobs, reml)
    # the factor's pattern is the standardised layout's, whose covariates (n × q
    # arrays) the fit need not keep: the original's has the same index arrays
    effects = _Effects(
        layout,
        standardization,
        replace(sol, factor=replace(sol.factor, pattern=layout.pattern)),
        sigma_std,
    )
    fit = MixedFit(
        design=design,
        method=method_key,
        layout=layout,
        theta=standardization.theta(sol.theta, std_layout),
        beta=beta,
        vcov_beta=functools.partial(_vcov_beta, standardization, sol.rx, sigma_std),
        sigma=standardization.y_scale * sigma_std,
        conditional_modes=effects.modes,
        conditional_covariances=effects.covariances,
        loglik=-0.5 * objective,
        objective=objective,
        linear_predictor=functools.partial(_linear_predictor, design, layout, beta, effects),
        opt=opt,
        standardized_theta=sol.theta,
    )
    warn_if_singular(fit)
    return fit


def _vcov_beta(standardization: Standardization, rx: np.ndarray, sigma: float) -> np.ndarray:
    """Covariance of the fixed effects in the design's units from the standardised ``R_X``."""
    if not rx.size:
        return np.zeros((0, 0))
    rx_inv = triangular_inverse(rx, lower=False)
    return standardization.vcov_beta(sigma**2 * (rx_inv @ rx_inv.T))


def _linear_predictor(
    design: Design, layout: ReLayout, beta: np.ndarray, effects: _Effects
) -> np.ndarray:
    return linear_predictor(design, layout, beta, effects.modes())


class _Effects:
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
