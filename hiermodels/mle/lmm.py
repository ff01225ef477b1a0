"""Profiled deviance and REML criterion of a linear mixed model.

The formulation is lme4's (Bates, Mächler, Bolker & Walker 2015, JSS 67(1)):
with spherical random effects ``u`` and ``b = Λθ u``, the penalised least
squares problem ::

    min over (u, β) of ‖y − Xβ − ZΛθ u‖² + ‖u‖²

is solved through the blocked Cholesky factor of ``[ZΛ X y]``'s cross
product, so that every evaluation works on ``q``-sized blocks and never
touches the ``n`` observations. ``σ`` and ``β`` are profiled out, leaving a
function of ``θ`` alone::

    ML:   d(θ) = log|L|² + n (1 + log(2π r²/n))
    REML: d(θ) = log|L|² + log|R_X|² + (n − p)(1 + log(2π r²/(n − p)))

with ``r²`` the penalised residual sum of squares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from hiermodels.mle.blocked import BlockedFactor, CrossProducts, ReLayout, factorize
from hiermodels.spec.design import Design

__all__ = ["LmmDeviance", "PlsSolution", "profiled_deviance", "solve_pls"]


@dataclass(frozen=True, eq=False)
class PlsSolution:
    """Everything the penalised least squares solve gives at one ``θ``.

    Attributes
    ----------
    theta : numpy.ndarray
        The relative covariance parameters.
    beta : numpy.ndarray
        ``(p,)`` fixed effects (conditional on ``θ``).
    pwrss : float
        Penalised weighted residual sum of squares ``r²``.
    logdet_l : float
        ``log |L|²``.
    logdet_rx : float
        ``log |R_X|²``.
    rx : numpy.ndarray
        ``(p, p)`` upper-triangular ``R_X`` with ``R_Xᵀ R_X`` the Schur
        complement of the fixed effects.
    factor : BlockedFactor
        The Cholesky factor of ``ΛᵀZᵀZΛ + I``.
    u_lead, u_rest : numpy.ndarray
        Spherical conditional modes: ``(L₀, q₀)`` leading and ``(q_rest,)``
        trailing.
    """

    theta: np.ndarray
    beta: np.ndarray
    pwrss: float
    logdet_l: float
    logdet_rx: float
    rx: np.ndarray
    factor: BlockedFactor
    u_lead: np.ndarray
    u_rest: np.ndarray


@dataclass(frozen=True, eq=False)
class LmmDeviance:
    """The profiled deviance (ML) or REML criterion as a function of ``θ``.

    Build it with :func:`profiled_deviance`; call it with a ``θ`` vector to
    get the objective lme4 minimises (``deviance`` for ML, ``REMLcrit`` for
    REML), or use :meth:`solve` for the full PLS solution.

    Attributes
    ----------
    layout : ReLayout
        Random-effects ordering and partition (θ order).
    reml : bool
        Whether the criterion is REML.
    cross : CrossProducts
        ``ZᵀZ`` in blocked form.
    zt_xy_lead, zt_xy_rest : numpy.ndarray
        ``Zᵀ[X y]`` split by partition.
    xy_cross : numpy.ndarray
        ``[X y]ᵀ[X y]``.
    nobs, n_fixed : int
        ``n`` and ``p``.
    """

    layout: ReLayout
    reml: bool
    cross: CrossProducts
    zt_xy_lead: np.ndarray
    zt_xy_rest: np.ndarray
    xy_cross: np.ndarray
    nobs: int
    n_fixed: int

    def __call__(self, theta: np.ndarray) -> float:
        """Objective at ``θ``; ``inf`` where the factorisation breaks down."""
        try:
            sol = self.solve(theta)
        except np.linalg.LinAlgError:
            return math.inf
        return self.objective(sol)

    def objective(self, sol: PlsSolution) -> float:
        """The criterion for a solved ``θ``."""
        if not sol.pwrss > 0.0:
            return math.inf
        n, p = self.nobs, self.n_fixed
        if self.reml:
            dof = n - p
            return (
                sol.logdet_l
                + sol.logdet_rx
                + dof * (1.0 + math.log(2.0 * math.pi * sol.pwrss / dof))
            )
        return sol.logdet_l + n * (1.0 + math.log(2.0 * math.pi * sol.pwrss / n))

    def sigma(self, sol: PlsSolution) -> float:
        """Residual SD estimate: ``r²/n`` (ML) or ``r²/(n − p)`` (REML)."""
        dof = self.nobs - self.n_fixed if self.reml else self.nobs
        return math.sqrt(sol.pwrss / dof)

    def solve(self, theta: np.ndarray) -> PlsSolution:
        """Solve the penalised least squares problem at ``θ``.

        Raises
        ------
        numpy.linalg.LinAlgError
            If the fixed-effects Schur complement is not positive definite.
        """
        return solve_pls(
            self.layout,
            np.asarray(theta, dtype=float),
            self.cross,
            self.zt_xy_lead,
            self.zt_xy_rest,
            self.xy_cross,
        )


def solve_pls(
    layout: ReLayout,
    theta: np.ndarray,
    cross: CrossProducts,
    zt_xy_lead: np.ndarray,
    zt_xy_rest: np.ndarray,
    xy_cross: np.ndarray,
) -> PlsSolution:
    """Penalised (weighted) least squares from cross products of ``[Z X y]``.

    Parameters
    ----------
    layout : ReLayout
        Random-effects ordering and partition.
    theta : numpy.ndarray
        Relative covariance parameters.
    cross : CrossProducts
        ``ZᵀWZ`` in blocked form.
    zt_xy_lead, zt_xy_rest : numpy.ndarray
        ``ZᵀW[X y]`` split by partition.
    xy_cross : numpy.ndarray
        ``[X y]ᵀW[X y]``.

    Returns
    -------
    PlsSolution
    """
    factors = layout.theta.factors(theta)
    factor = factorize(layout, cross, factors)
    t0 = layout.lead_factor(factors)
    c1 = t0.T @ zt_xy_lead
    c2 = layout.rest_lambda_t_dense(factors, zt_xy_rest)
    w1, w2 = factor.forward(c1, c2)
    schur = xy_cross - np.einsum("lqi,lqj->ij", w1, w1) - w2.T @ w2
    upper = sla.cholesky(schur, lower=False, check_finite=False)
    p = xy_cross.shape[0] - 1
    rx = upper[:p, :p]
    beta = sla.solve_triangular(rx, upper[:p, p], lower=False) if p else np.zeros(0)
    pwrss = float(upper[p, p] ** 2)
    resid_w1 = w1[..., p] - w1[..., :p] @ beta
    resid_w2 = w2[:, p] - w2[:, :p] @ beta
    u1, u2 = factor.backward(resid_w1[..., None], resid_w2[:, None])
    return PlsSolution(
        theta=theta,
        beta=beta,
        pwrss=pwrss,
        logdet_l=factor.logdet(),
        logdet_rx=2.0 * float(np.sum(np.log(np.abs(np.diag(rx))))) if p else 0.0,
        rx=rx,
        factor=factor,
        u_lead=u1[..., 0],
        u_rest=u2[:, 0],
    )


def profiled_deviance(design: Design, *, reml: bool = True) -> LmmDeviance:
    """Build the profiled deviance (``reml=False``) or REML criterion of ``θ``.

    Parameters
    ----------
    design : Design
        A Gaussian design with at least one random-effect term.
    reml : bool
        REML criterion (default) or ML deviance.

    Returns
    -------
    LmmDeviance
        Callable ``θ → criterion`` holding the θ-independent cross products.
    """
    if not design.family.is_gaussian:
        raise ValueError(
            f"REML/ML apply to Gaussian models; family {design.family.name!r} needs "
            "method='Laplace'"
        )
    layout = ReLayout.from_design(design)
    y = design.y
    if design.offset is not None:
        y = y - design.offset
    xy = np.column_stack([design.X, y])
    lead, rest = layout.z_transpose(xy)
    return LmmDeviance(
        layout=layout,
        reml=reml,
        cross=layout.cross_products(),
        zt_xy_lead=lead,
        zt_xy_rest=rest,
        xy_cross=xy.T @ xy,
        nobs=design.nobs,
        n_fixed=design.X.shape[1],
    )
