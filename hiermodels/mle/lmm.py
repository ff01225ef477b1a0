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

Precision weights ``W`` (``Var(y_i) = σ²/w_i``, lme4's ``weights``) enter
as ``ZᵀWZ``, ``ZᵀW[X y]`` and ``[X y]ᵀW[X y]``, and both criteria then
subtract ``log|W| = Σ log w_i``, as lme4's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hiermodels._lazy import moved_names
from hiermodels.design.design import Design
from hiermodels.mle import kernels
from hiermodels.mle.blocked import (
    BlockedFactor,
    CrossProducts,
    ReLayout,
    factorize_with,
)

__all__ = [
    "LmmDeviance",
    "PlsSolution",
    "profiled_deviance",
    "solve_pls",
]


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
    REML), use :meth:`value_and_gradient` for the objective with its
    analytic gradient, or :meth:`solve` for the full PLS solution.

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
    log_weights : float
        ``Σ log w_i`` of the precision weights (0 without weights): the
        criteria's ``−log|W|``.
    """

    layout: ReLayout
    reml: bool
    cross: CrossProducts
    zt_xy_lead: np.ndarray
    zt_xy_rest: np.ndarray
    xy_cross: np.ndarray
    nobs: int
    n_fixed: int
    log_weights: float = 0.0

    def __call__(self, theta: np.ndarray) -> float:
        """Objective at ``θ``; ``inf`` where the factorisation breaks down."""
        try:
            evaluation = self._evaluate(theta)
        except np.linalg.LinAlgError:
            return math.inf
        return self._objective(evaluation.pwrss, evaluation.logdet_l, evaluation.logdet_rx)

    def objective(self, sol: PlsSolution) -> float:
        """The criterion for a solved ``θ``."""
        return self._objective(sol.pwrss, sol.logdet_l, sol.logdet_rx)

    def _objective(self, pwrss: float, logdet_l: float, logdet_rx: float) -> float:
        if not pwrss > 0.0:
            return math.inf
        n, p = self.nobs, self.n_fixed
        if self.reml:
            dof = n - p
            return (
                logdet_l
                + logdet_rx
                + dof * (1.0 + math.log(2.0 * math.pi * pwrss / dof))
                - self.log_weights
            )
        return logdet_l + n * (1.0 + math.log(2.0 * math.pi * pwrss / n)) - self.log_weights

    def sigma(self, sol: PlsSolution) -> float:
        """Residual SD estimate: ``r²/n`` (ML) or ``r²/(n − p)`` (REML)."""
        dof = self.nobs - self.n_fixed if self.reml else self.nobs
        return math.sqrt(sol.pwrss / dof)

    @cached_property
    def _theta_shape(self) -> tuple[int]:
        return (self.layout.theta.length,)

    @cached_property
    def _lower_bounds(self) -> np.ndarray:
        return self.layout.theta.lower_bounds()

    def _evaluate(self, theta: np.ndarray) -> _Evaluation:
        """Factorise and solve at ``θ`` in one compiled call.

        Raises
        ------
        numpy.linalg.LinAlgError
            Where ``ΛᵀZᵀZΛ + I`` or the fixed-effects Schur complement is not
            numerically positive definite.
        """
        layout = self.layout
        theta = np.asarray(theta, dtype=float)
        if theta.shape != self._theta_shape:
            raise ValueError(
                f"theta must have length {layout.theta.length}, got shape {theta.shape}"
            )
        t0, rest_t = layout.kernel_factors(theta)
        pat = layout.pattern
        factor = factorize_with(pat, self.cross, t0, rest_t)
        w1, w2, upper, beta, u1, u2, logdet, ok = kernels.solve_lmm(
            factor.l11,
            factor.l21_pairs,
            factor.l22,
            self.zt_xy_lead,
            self.zt_xy_rest,
            self.xy_cross,
            t0,
            rest_t,
            pat.rest_q,
            pat.row_block,
            pat.row_term,
            pat.row_base,
            pat.pair_block,
            pat.pair_row,
            pat.pair_ptr,
            pat.lead_ptr,
        )
        if not ok:
            raise np.linalg.LinAlgError(
                "the fixed-effects Schur complement is not positive definite"
            )
        return _Evaluation(theta, t0, rest_t, factor, w1, w2, upper, beta, u1, u2, logdet)

    def solve(self, theta: np.ndarray) -> PlsSolution:
        """Solve the penalised least squares problem at ``θ``.

        Raises
        ------
        numpy.linalg.LinAlgError
            If the fixed-effects Schur complement is not positive definite.
        """
        ev = self._evaluate(theta)
        p = self.n_fixed
        return PlsSolution(
            theta=ev.theta,
            beta=ev.beta,
            pwrss=ev.pwrss,
            logdet_l=ev.logdet_l,
            logdet_rx=ev.logdet_rx,
            rx=ev.upper[:p, :p],
            factor=ev.factor,
            u_lead=ev.u1,
            u_rest=ev.u2,
        )

    def value_and_gradient(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The criterion and its analytic gradient in ``θ``.

        With ``S = ΛᵀZᵀZΛ + I``, ``M`` the system of ``(u, β)`` and ``r²``
        the penalised residual sum of squares, the derivative in an entry
        ``(a, b)`` of block ``k``'s factor ``T`` is ::

            ∂ log|A| = 2 [(n_k I − Σ_j A⁻¹_jj) T⁻¹]_ba      (A = S, or M for REML)
            ∂ log r² = −(2 / r²) Σ_j (Zᵀr)_ja u_jb

        where the sums run over the block's levels ``j``, ``A⁻¹_jj`` are diagonal
        blocks of the inverse (for ``M``, ``S⁻¹ + V Vᵀ`` with
        ``V = S⁻¹ΛᵀZᵀX R_X⁻¹``) and ``r`` is the residual. The level sums come
        from one kernel (:func:`hiermodels.mle.kernels.gradient_terms`) and
        one dense inverse of the trailing Schur complement. For a block whose
        factor is singular (a boundary), its entries are differenced instead.

        Returns
        -------
        value : float
            ``inf`` (gradient NaN) where the factorisation breaks down.
        gradient : numpy.ndarray
        """
        theta = np.asarray(theta, dtype=float)
        try:
            ev = self._evaluate(theta)
        except np.linalg.LinAlgError:
            return math.inf, np.full(theta.size, np.nan)
        value = self._objective(ev.pwrss, ev.logdet_l, ev.logdet_rx)
        if not math.isfinite(value):
            return value, np.full(theta.size, np.nan)
        pat = self.layout.pattern
        factor = ev.factor
        try:
            c22_inv = factor.trailing_inverse()
        except np.linalg.LinAlgError:
            return value, np.full(theta.size, np.nan)
        lead_flag, position, terms, levels, offsets = self.layout.gradient_blocks
        cross = self.cross
        gradient, differenced = kernels.lmm_gradient(
            factor.l11,
            factor.l21_pairs,
            factor.l22,
            c22_inv,
            ev.w1,
            ev.w2,
            ev.upper,
            ev.beta,
            ev.u1,
            ev.u2,
            cross.a11,
            cross.a21,
            cross.a22,
            self.zt_xy_lead,
            self.zt_xy_rest,
            ev.t0,
            ev.rest_t,
            pat.rest_q,
            pat.row_block,
            pat.row_term,
            pat.row_base,
            pat.pair_block,
            pat.pair_row,
            pat.pair_ptr,
            pat.lead_ptr,
            pat.dense_coupling,
            lead_flag,
            position,
            terms,
            levels,
            offsets,
            self.reml,
            ((self.nobs - self.n_fixed) if self.reml else self.nobs) / ev.pwrss,
            SINGULAR_FACTOR,
        )
        if differenced.any():
            index = [int(i) for i in np.flatnonzero(differenced)]
            gradient[index] = self._differenced(theta, value, index)
        return value, gradient

    def _differenced(self, theta: np.ndarray, value: float, index: list[int]) -> np.ndarray:
        """Central differences (one-sided at a bound) of the criterion in ``θ[index]``."""
        lower = self._lower_bounds
        out = np.empty(len(index))
        for n, i in enumerate(index):
            h = 1e-6 * max(1.0, abs(theta[i]))
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            if down[i] < lower[i]:
                out[n] = (self(up) - value) / h
            else:
                out[n] = (self(up) - self(down)) / (2.0 * h)
        return out


#: A factor whose smallest diagonal entry is below this (relative) is treated as singular.
SINGULAR_FACTOR = 1e-7


@dataclass(slots=True, eq=False)
class _Evaluation:
    """The compiled solve at one ``θ``: factor, forward-solved columns and modes.

    Made for every evaluation of the criterion and read once: a plain slotted
    record, which costs less to make than a frozen dataclass.
    """

    theta: np.ndarray
    t0: np.ndarray
    rest_t: np.ndarray
    factor: BlockedFactor
    w1: np.ndarray
    w2: np.ndarray
    upper: np.ndarray
    beta: np.ndarray
    u1: np.ndarray
    u2: np.ndarray
    logdet_l: float

    @property
    def pwrss(self) -> float:
        return float(self.upper[-1, -1] ** 2)

    @property
    def logdet_rx(self) -> float:
        p = self.upper.shape[0] - 1
        return 2.0 * float(np.log(np.abs(self.upper.diagonal()[:p])).sum()) if p else 0.0


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
    deviance = LmmDeviance(
        layout=layout,
        reml=True,
        cross=cross,
        zt_xy_lead=np.ascontiguousarray(zt_xy_lead, dtype=float),
        zt_xy_rest=np.ascontiguousarray(zt_xy_rest, dtype=float),
        xy_cross=np.ascontiguousarray(xy_cross, dtype=float),
        nobs=0,
        n_fixed=xy_cross.shape[0] - 1,
    )
    return deviance.solve(theta)


def _log_weight_sum(design: Design) -> float:
    """``Σ log w`` of the design's precision weights (kept aside for root rows)."""
    if design.compressed is not None:
        return design.compressed.log_weight_sum
    return 0.0 if design.weights is None else float(np.sum(np.log(design.weights)))


def profiled_deviance(design: Design, *, reml: bool = True) -> LmmDeviance:
    """Build the profiled deviance (``reml=False``) or REML criterion of ``θ``.

    Parameters
    ----------
    design : Design
        A Gaussian design with at least one random-effect term; its
        precision weights, if any, weight every cross product.
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
    layout = ReLayout.of(design)
    y = design.y
    if design.offset is not None:
        y = y - design.offset
    x = np.ascontiguousarray(design.X, dtype=float)
    y = np.ascontiguousarray(y, dtype=float)
    weights = design.weights
    # [X y] is never formed: at millions of rows the copy costs more than the products
    lead_x, rest_x = layout.z_transpose(x, weights)
    lead_y, rest_y = layout.z_transpose(y[:, None], weights)
    wx = x if weights is None else x * weights[:, None]
    wy = y if weights is None else y * weights
    xy_cross = np.empty((x.shape[1] + 1, x.shape[1] + 1))
    xy_cross[:-1, :-1] = x.T @ wx
    xy_cross[:-1, -1] = xy_cross[-1, :-1] = wx.T @ y
    xy_cross[-1, -1] = y @ wy
    return LmmDeviance(
        layout=layout,
        reml=reml,
        cross=layout.cross_products(weights),
        zt_xy_lead=np.concatenate([lead_x, lead_y], axis=2),
        zt_xy_rest=np.ascontiguousarray(np.concatenate([rest_x, rest_y], axis=1)),
        xy_cross=xy_cross,
        nobs=design.nobs,
        n_fixed=design.X.shape[1],
        log_weights=_log_weight_sum(design),
    )


__getattr__ = moved_names(
    __name__,
    {
        "GaussianLikelihood": ("hiermodels.mle.gaussian_likelihood", "GaussianLikelihood"),
        "GaussianPoint": ("hiermodels.mle.gaussian_likelihood", "GaussianPoint"),
    },
)
