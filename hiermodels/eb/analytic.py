"""Closed-form empirical-Bayes conditionals and the Kass–Steffey correction.

For a linear mixed model with the hyperparameters ``(θ, σ)`` plugged in,
the conditional distribution of the random effects is Gaussian:

* ``plugin="all"`` (``β`` fixed at ``β̂`` too): mean = the BLUP, covariance =
  ``σ² Λ (ΛᵀZᵀZΛ + I)⁻¹ Λᵀ`` — exactly lme4's ``condval``/``condVar``;
* ``plugin="hyper"`` (``β`` integrated out under a flat prior): the same
  mean, and the covariance gains ``σ² Λ G Gᵀ Λᵀ`` with
  ``G = L⁻ᵀ R_ZX R_X⁻¹``, the uncertainty of ``β̂`` carried into each group.

Plug-in intervals ignore the uncertainty of the hyperparameters. Kass &
Steffey (1989) add a first-order term: ``Var(b | y) ≈ Var(b | y, η̂) +
J Σ̂_η Jᵀ`` with ``J = ∂E(b | y, η)/∂η`` (finite differences) and ``Σ̂_η``
the inverse observed information of the hyperparameters — for LMMs ``η = θ``
(``E(b | y, θ, σ)`` does not depend on ``σ``) with ``Σ̂_θ`` from the Hessian of
the profiled REML/ML criterion; ``β`` joins ``η`` when it is plugged in too.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import cast

import numpy as np
import scipy.linalg as sla

from hiermodels.errors import NumericalWarning
from hiermodels.mle.blocked import triangular_inverse
from hiermodels.mle.derivatives import finite_difference_hessian
from hiermodels.mle.dispersion import DispersedDeviance
from hiermodels.mle.lmm import LmmDeviance, profiled_deviance
from hiermodels.mle.results import MixedFit
from hiermodels.mle.standardize import Standardization

__all__ = [
    "GaussianConditional",
    "gaussian_conditional",
    "hyperparameter_covariance",
    "kass_steffey_variances",
    "finite_difference_hessian",
]

# Relative step of the finite differences in θ and β (lme4's deriv12 uses 1e-4).
_STEP = 1e-4
# θ entries on a factor diagonal below this are on the boundary and held fixed.
_BOUNDARY = 1e-6


@dataclass(frozen=True, eq=False)
class GaussianConditional:
    """Conditional means and covariances of every random-effect block (θ order).

    Attributes
    ----------
    means : tuple of numpy.ndarray
        ``(levels, q)`` per block.
    covariances : tuple of numpy.ndarray
        ``(levels, q, q)`` per block.
    """

    means: tuple[np.ndarray, ...]
    covariances: tuple[np.ndarray, ...]


@dataclass(frozen=True, eq=False)
class _StandardFrame:
    """A fit seen in the standardised coordinates its optimiser worked in.

    Derivatives in ``θ`` and ``β`` are taken there: the profiled criterion of
    the raw data cancels catastrophically for a response far from zero, a
    covariate in other units makes finite-difference steps meaningless, and
    a first-order (Kass–Steffey) term does not depend on the coordinates of
    the hyperparameters. Effects are mapped back to the design's units.
    ``dev`` is the profiled REML/ML criterion (Gaussian) or the Laplace
    deviance over ``(θ, extra, β)``; ``extra`` is the negative binomial's
    ``(log α,)`` (``inf`` on the Poisson boundary), the Gamma's or inverse
    Gaussian's ``(log φ,)``, else empty.
    """

    dev: LmmDeviance | DispersedDeviance
    standardization: Standardization
    theta: np.ndarray
    beta: np.ndarray
    extra: np.ndarray

    @classmethod
    def of(cls, fit: MixedFit) -> _StandardFrame:
        standardization = Standardization.of(fit.design)
        design = standardization.apply(fit.design)
        dev: LmmDeviance | DispersedDeviance
        extra = np.zeros(0)
        if fit.design.family.is_gaussian:
            dev = profiled_deviance(design, reml=fit.method == "REML")
        else:
            dispersion = fit.phi if fit.design.family.is_positive else fit.alpha
            dev = DispersedDeviance.of_fit_design(design, dispersion)
            if dispersion is not None:
                extra = np.array([math.log(dispersion)])
        theta = fit.standardized_theta
        if theta is None:
            theta = standardization.standard_theta(fit.theta, dev.layout)
        beta = standardization.standard_beta(fit.beta)
        return cls(dev, standardization, theta, beta, extra)

    def design_units(self, blocks: list[np.ndarray]) -> list[np.ndarray]:
        """Per-block ``(levels, q, ...)`` effects (θ order) in the design's units."""
        order = self.dev.layout.order
        return [
            self.standardization.y_scale * np.einsum("ij,lj...->li...", t, block)
            for block, t in (
                (block, self.standardization.block_transforms[order[k]])
                for k, block in enumerate(blocks)
            )
        ]


def _split_blocks(dev: LmmDeviance, lead: np.ndarray, rest: np.ndarray) -> list[np.ndarray]:
    """Per-block arrays (θ order) from leading ``(L₀, q₀, ...)`` and trailing parts."""
    layout = dev.layout
    out: dict[int, np.ndarray] = {}
    for i, part in zip(layout.lead, layout.split_lead(lead), strict=True):
        out[i] = part
    for i, part in zip(layout.rest, layout.split_rest(rest), strict=True):
        out[i] = part
    return [out[i] for i in range(len(layout.blocks))]


def _beta_spread(dev: LmmDeviance, theta: np.ndarray) -> list[np.ndarray]:
    """Per-block ``(levels, q, p)`` rows of ``Λ L⁻ᵀ R_ZX R_X⁻¹`` at ``θ``."""
    layout = dev.layout
    p = dev.n_fixed
    sol = dev.solve(theta)
    factors = layout.theta.factors(theta)
    t0 = layout.lead_factor(factors)
    c1 = t0.T @ dev.zt_xy_lead[..., :p]
    c2 = layout.rest_lambda_t_dense(factors, dev.zt_xy_rest[:, :p])
    w1, w2 = sol.factor.forward(c1, c2)
    rx_inv = triangular_inverse(sol.rx, lower=False)
    g1, g2 = sol.factor.backward(w1 @ rx_inv, w2 @ rx_inv)
    lead = t0 @ g1
    blocks = _split_blocks(dev, lead, g2)
    for i in layout.rest:
        blocks[i] = np.einsum("ij,ljp->lip", factors[i], blocks[i])
    return blocks


def gaussian_conditional(fit: MixedFit, plugin: str = "hyper") -> GaussianConditional:
    """Exact conditional of the random effects of an LMM given plug-in values.

    Parameters
    ----------
    fit : MixedFit
        A REML or ML fit.
    plugin : {"hyper", "all"}
        Plug in the variance parameters only (``β`` integrated out under a
        flat prior) or the fixed effects too.

    Returns
    -------
    GaussianConditional
    """
    _check_plugin(plugin)
    if not fit.design.family.is_gaussian:
        raise ValueError("closed-form conditionals exist for Gaussian models only")
    means = fit.conditional_modes
    if plugin == "all" or fit.beta.size == 0:
        return GaussianConditional(means, fit.conditional_covariances)
    frame = _StandardFrame.of(fit)
    dev = cast(LmmDeviance, frame.dev)  # a Gaussian fit's frame holds the profiled criterion
    # g̃ maps back through T alone: σ² (T g̃)(T g̃)ᵀ = s² T (σ̃² g̃ g̃ᵀ) Tᵀ
    spread = [
        g / frame.standardization.y_scale
        for g in frame.design_units(_beta_spread(dev, frame.theta))
    ]
    covs = tuple(
        cov + fit.sigma**2 * np.einsum("lip,ljp->lij", g, g)
        for cov, g in zip(fit.conditional_covariances, spread, strict=True)
    )
    return GaussianConditional(means, covs)


def _check_plugin(plugin: str) -> None:
    if plugin not in ("hyper", "all"):
        raise ValueError(f"plugin must be 'hyper' or 'all', got {plugin!r}")


def _free_theta(fit: MixedFit) -> np.ndarray:
    """θ entries not pinned at the boundary (diagonal entries ≈ 0 are held fixed).

    Judged on the standardised θ, in which the hyperparameters are perturbed.
    """
    diagonal = fit.layout.theta.diagonal_mask()
    theta = fit.theta if fit.standardized_theta is None else fit.standardized_theta
    return ~(diagonal & (theta < _BOUNDARY))


def hyperparameter_covariance(
    fit: MixedFit, plugin: str = "hyper"
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse observed information of the plugged-in parameters.

    Parameters
    ----------
    fit : MixedFit
        The marginal-likelihood fit.
    plugin : {"hyper", "all"}
        Whether ``β`` is plugged in (and so part of the parameters).

    Returns
    -------
    params : numpy.ndarray
        The free parameters: θ entries off the boundary, the negative
        binomial's ``log α`` (unless at the Poisson boundary) or the Gamma's or
        inverse Gaussian's ``log φ``, then ``β`` when
        ``plugin="all"`` — in the standardised coordinates of
        :attr:`MixedFit.standardized_theta` (see
        :mod:`hiermodels.mle.standardize`), where the derivatives are taken.
    covariance : numpy.ndarray
        Their covariance: ``2 H⁻¹`` with ``H`` the Hessian of the profiled
        criterion (LMM; ``β`` independent of ``θ`` with covariance ``vcov``)
        or of the Laplace deviance over ``(θ, log α or log φ, β)`` (GLMM).
    """
    _check_plugin(plugin)
    return _hyperparameter_covariance(fit, _StandardFrame.of(fit), plugin)


def _hyperparameter_covariance(
    fit: MixedFit, frame: _StandardFrame, plugin: str
) -> tuple[np.ndarray, np.ndarray]:
    free = _free_theta(fit)
    theta, dev = frame.theta, frame.dev
    if isinstance(dev, LmmDeviance):
        # the standardised β's covariance: vcov mapped through (s T)⁻¹
        transform = frame.standardization.y_scale * frame.standardization.fixed_transform
        inverse = np.linalg.inv(transform) if transform.size else transform
        vcov_beta = inverse @ fit.vcov_beta @ inverse.T

        def crit(sub: np.ndarray) -> float:
            full = theta.copy()
            full[free] = sub
            return dev(full)

        cov_theta = (
            2.0 * np.linalg.inv(finite_difference_hessian(crit, theta[free]))
            if free.any()
            else np.zeros((0, 0))
        )
        if plugin == "hyper":
            return theta[free], cov_theta
        return np.concatenate([theta[free], frame.beta]), sla.block_diag(cov_theta, vcov_beta)
    params = np.concatenate([theta, frame.extra, frame.beta])
    extra_free = np.isfinite(frame.extra)
    mask = np.concatenate([free, extra_free, np.ones(frame.beta.size, dtype=bool)])

    def dev_sub(sub: np.ndarray) -> float:
        full = params.copy()
        full[mask] = sub
        return dev(full)

    cov = 2.0 * np.linalg.inv(finite_difference_hessian(dev_sub, params[mask]))
    if plugin == "all":
        return params[mask], cov
    n_nuisance = theta.size + frame.extra.size
    n_hyper = int(mask[:n_nuisance].sum())
    return params[:n_nuisance][mask[:n_nuisance]], cov[:n_hyper, :n_hyper]


def _conditional_means(
    fit: MixedFit, frame: _StandardFrame, params: np.ndarray, plugin: str
) -> np.ndarray:
    """All conditional means (θ order, flattened, design units) at perturbed plug-in values."""
    free = _free_theta(fit)
    n_theta_free = int(free.sum())
    theta = frame.theta.copy()
    theta[free] = params[:n_theta_free]
    extra = frame.extra.copy()  # log α (NB), held at the Poisson boundary (inf)
    extra_free = np.isfinite(extra)
    n_free = n_theta_free + int(extra_free.sum())
    extra[extra_free] = params[n_theta_free:n_free]
    beta = params[n_free:] if plugin == "all" else None
    dev = frame.dev
    if isinstance(dev, LmmDeviance):
        if beta is None:
            sol = dev.solve(theta)
            u_lead, u_rest = sol.u_lead, sol.u_rest
        else:
            u_lead, u_rest = _modes_fixed_beta(dev, theta, beta)
    else:
        result = dev.at(extra).pirls(theta, frame.beta if beta is None else beta)
        u_lead, u_rest = result.u_lead, result.u_rest
    flat = _scale_modes(dev.layout, theta, u_lead, u_rest)
    return _flatten(fit, frame.design_units(list(_unflatten(fit, flat))))


def _modes_fixed_beta(
    dev: LmmDeviance, theta: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    layout = dev.layout
    p = dev.n_fixed
    factors = layout.theta.factors(theta)
    sol = dev.solve(theta)
    t0 = layout.lead_factor(factors)
    r_lead = dev.zt_xy_lead[..., p] - dev.zt_xy_lead[..., :p] @ beta
    r_rest = dev.zt_xy_rest[:, p] - dev.zt_xy_rest[:, :p] @ beta
    c1 = t0.T @ r_lead[..., None]
    c2 = layout.rest_lambda_t_dense(factors, r_rest[:, None])
    w1, w2 = sol.factor.forward(c1, c2)
    u1, u2 = sol.factor.backward(w1, w2)
    return u1[..., 0], u2[:, 0]


def _scale_modes(layout, theta: np.ndarray, u_lead: np.ndarray, u_rest: np.ndarray) -> np.ndarray:
    factors = layout.theta.factors(theta)
    parts = [(u_lead @ layout.lead_factor(factors).T).ravel()]
    for i, block in zip(layout.rest, layout.split_rest(u_rest), strict=True):
        parts.append((block @ factors[i].T).ravel())
    return np.concatenate(parts)


def kass_steffey_variances(fit: MixedFit, plugin: str = "hyper") -> tuple[np.ndarray, ...]:
    """Extra conditional variance from hyperparameter uncertainty, per block.

    Returns the diagonal of ``J Σ̂ Jᵀ`` for every block, ``(levels, q)``, θ
    order, to be added to the plug-in conditional variances.
    """
    _check_plugin(plugin)
    frame = _StandardFrame.of(fit)
    try:
        params, cov = _hyperparameter_covariance(fit, frame, plugin)
        if params.size == 0:
            return tuple(np.zeros(m.shape) for m in fit.conditional_modes)
        h = _STEP * np.maximum(np.abs(params), 1.0)
        columns = []
        for k in range(params.size):
            up, down = params.copy(), params.copy()
            up[k] += h[k]
            down[k] -= h[k]
            columns.append(
                (
                    _conditional_means(fit, frame, up, plugin)
                    - _conditional_means(fit, frame, down, plugin)
                )
                / (2 * h[k])
            )
    except np.linalg.LinAlgError:
        warnings.warn(
            "the Kass–Steffey correction could not be computed: the likelihood cannot be "
            "evaluated (or its curvature inverted) next to the estimates; the corrected "
            "intervals are NaN — use full Bayes (fit_bayes) for intervals that carry the "
            "hyperparameters' uncertainty",
            NumericalWarning,
            stacklevel=3,
        )
        return tuple(np.full(m.shape, np.nan) for m in fit.conditional_modes)
    jac = np.column_stack(columns)
    extra = np.einsum("ik,kl,il->i", jac, cov, jac)
    return _unflatten(fit, extra)


def _flatten(fit: MixedFit, blocks: list[np.ndarray]) -> np.ndarray:
    """The inverse of :func:`_unflatten`: leading blocks interleaved by level, then the rest."""
    layout = fit.layout
    lead = np.hstack([blocks[i] for i in layout.lead]).ravel()
    return np.concatenate([lead, *(blocks[i].ravel() for i in layout.rest)])


def _unflatten(fit: MixedFit, flat: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-block ``(levels, q)`` arrays from the order used by :func:`_scale_modes`."""
    layout = fit.layout
    out: dict[int, np.ndarray] = {}
    lead_size = layout.n_lead_levels * layout.q_lead
    lead = flat[:lead_size].reshape(layout.n_lead_levels, layout.q_lead)
    for i, part in zip(layout.lead, layout.split_lead(lead), strict=True):
        out[i] = part
    start = lead_size
    for i in layout.rest:
        block = layout.blocks[i]
        size = block.n_levels * block.n_terms
        out[i] = flat[start : start + size].reshape(block.n_levels, block.n_terms)
        start += size
    return tuple(out[i] for i in range(len(layout.blocks)))
