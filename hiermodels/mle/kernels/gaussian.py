"""The gaussian model's ``log p(y | β, θ, σ)``, the effects integrated out, and its gradient.

At given ``(β, θ, σ)``, not profiled: :func:`gaussian_prepare` forms the
residual cross products and the leading factor, :func:`gaussian_finish`
the value from the trailing factor, :func:`gaussian_gradient` its gradient,
and :func:`gaussian_loglik` does all three in one compiled call, with
central differences where a block's factor is singular. They are inlined
into their callers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hiermodels.mle.kernels.factor import factorize, holds_dense_coupling
from hiermodels.mle.kernels.lmm import last_column_less, lmm_gradient, solve_lmm
from hiermodels.mle.kernels.products import lambda_t_rest, placed_factors
from hiermodels.mle.kernels.trailing import trailing_factor_and_inverse

__all__ = [
    "gaussian_prepare",
    "gaussian_finish",
    "gaussian_gradient",
    "gaussian_loglik",
]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def gaussian_prepare(
    beta: np.ndarray,
    theta: np.ndarray,
    a11: np.ndarray,
    a21: np.ndarray,
    a22: np.ndarray,
    zt_xy_lead: np.ndarray,
    zt_xy_rest: np.ndarray,
    xy_cross: np.ndarray,
    placement: tuple,
    structure: tuple,
) -> tuple:
    """The response ``y − Xβ``'s cross products and the factor's leading part at ``(β, θ)``.

    ``placement`` is :func:`placed_factors`' and ``structure``
    the pattern's ``(rest_q, row_block, row_term, row_base, pair_block,
    pair_row, pair_ptr, lead_ptr, pp_a, pp_b)``. Returns ``(lead_y, rest_y,
    yy, xt_resid, t0, rest_t, l11, l21, s22, ok)``: ``Zᵀ(y − Xβ)`` split by
    partition, ``‖y − Xβ‖²`` as a 1 × 1 matrix, ``Xᵀ(y − Xβ)``, the factors,
    the leading Cholesky blocks, their coupling and the trailing Schur
    complement (``ok`` False where a leading block is not positive definite).
    The cross products hold residuals, so nothing cancels.
    """
    rest_q, row_block, row_term, row_base, pair_block, pair_row, pair_ptr, lead_ptr, pp_a, pp_b = (
        structure
    )
    p = beta.size
    lead_y, rest_y = last_column_less(zt_xy_lead, zt_xy_rest, beta)
    xt_resid = np.empty(p)
    yy = np.empty((1, 1))
    yy[0, 0] = xy_cross[p, p]
    for b in range(p):
        acc = xy_cross[b, p]
        for c in range(p):
            acc -= xy_cross[b, c] * beta[c]
        xt_resid[b] = acc
        yy[0, 0] -= beta[b] * (xy_cross[b, p] + acc)
    t0, rest_t = placed_factors(theta, placement)
    l11, l21, s22, ok = factorize(
        a11, a21, a22, t0, rest_t, rest_q, row_block, row_term, row_base,
        pair_block, pair_row, pair_ptr, lead_ptr, pp_a, pp_b,
    )  # fmt: skip
    return lead_y, rest_y, yy, xt_resid, t0, rest_t, l11, l21, s22, ok


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def gaussian_finish(
    sigma: float, nobs: float, prepared: tuple, l22: np.ndarray, structure: tuple
) -> tuple[float, tuple]:
    """``log p(y | β, θ, σ)`` from a prepared point and its trailing factor.

    Returns ``(value, solution)``, ``solution`` the penalised least squares'
    ``(w1, w2, upper, beta, u1, u2)`` (:func:`solve_lmm`; ``u`` the
    spherical conditional means); ``value`` is ``-inf`` where the solve fails.
    """
    lead_y, rest_y, yy, _, t0, rest_t, l11, l21 = prepared[:8]
    rest_q, row_block, row_term, row_base, pair_block, pair_row, pair_ptr, lead_ptr = structure[:8]
    w1, w2, upper, none, u1, u2, logdet, ok = solve_lmm(
        l11, l21, l22, lead_y, rest_y, yy, t0, rest_t, rest_q, row_block, row_term,
        row_base, pair_block, pair_row, pair_ptr, lead_ptr,
    )  # fmt: skip
    s2 = sigma * sigma
    pwrss = upper[0, 0] * upper[0, 0]
    value = -0.5 * (nobs * np.log(2.0 * np.pi * s2) + logdet + pwrss / s2)
    if not (ok and np.isfinite(value)):
        value = -np.inf
    return value, (w1, w2, upper, none, u1, u2)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def gaussian_gradient(
    sigma: float,
    nobs: float,
    prepared: tuple,
    solution: tuple,
    l22: np.ndarray,
    c22_inv: np.ndarray,
    a11: np.ndarray,
    a21: np.ndarray,
    a22: np.ndarray,
    zt_xy_lead: np.ndarray,
    zt_xy_rest: np.ndarray,
    structure: tuple,
    blocks: tuple,
    singular_tolerance: float,
    d_beta: np.ndarray,
    d_theta: np.ndarray,
    differenced: np.ndarray,
) -> float:
    """The gradient of :func:`gaussian_finish`'s value, ``σ`` held fixed; returns ``d/dσ``.

    ``c22_inv`` is the trailing factor's full inverse and ``blocks`` the
    gradient's ``(block_lead, block_pos, block_q, block_levels,
    block_theta)``. Fills ``d_beta``, ``d_theta`` and ``differenced``
    (entries of blocks with a singular factor, left for differencing).
    """
    lead_y, rest_y, _, xt_resid, t0, rest_t, l11, l21 = prepared[:8]
    rest_q, row_block, row_term, row_base, pair_block, pair_row, pair_ptr, lead_ptr = structure[:8]
    block_lead, block_pos, block_q, block_levels, block_theta = blocks
    w1, w2, upper, none, u1, u2 = solution
    p = xt_resid.size
    s2 = sigma * sigma
    pwrss = upper[0, 0] * upper[0, 0]
    d_crit, skipped = lmm_gradient(
        l11, l21, l22, c22_inv, w1, w2, upper, none, u1, u2, a11, a21, a22, lead_y, rest_y,
        t0, rest_t, rest_q, row_block, row_term, row_base, pair_block, pair_row, pair_ptr,
        lead_ptr, holds_dense_coupling(structure[8], structure[9]), block_lead, block_pos,
        block_q, block_levels, block_theta, False, 1.0 / s2,
        singular_tolerance,
    )  # fmt: skip
    for e in range(d_theta.size):
        d_theta[e] = -0.5 * d_crit[e]
        differenced[e] = skipped[e]
    # Xᵀ(y − Xβ − ZΛû): less the leading and the trailing effects' share
    resid = xt_resid.copy()
    n_lead, q_lead = u1.shape[0], u1.shape[1]
    for m in range(n_lead):
        for a in range(q_lead):
            b_ma = 0.0
            for c in range(q_lead):
                b_ma += t0[a, c] * u1[m, c]
            if b_ma != 0.0:
                for b in range(p):
                    resid[b] -= zt_xy_lead[m, a, b] * b_ma
    q_rest = u2.size
    if q_rest and p:
        zt_x = np.ascontiguousarray(zt_xy_rest[:, :p])
        lam_zt_x = lambda_t_rest(rest_t, rest_q, row_block, row_term, row_base, zt_x)
        for r in range(q_rest):
            for b in range(p):
                resid[b] -= lam_zt_x[r, b] * u2[r]
    for b in range(p):
        d_beta[b] = resid[b] / s2
    return (pwrss / s2 - nobs) / sigma


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _gaussian_value(
    beta: np.ndarray,
    theta: np.ndarray,
    sigma: float,
    data: tuple,
    placement: tuple,
    structure: tuple,
    blocks: tuple,
    scalars: np.ndarray,
    with_gradient: bool,
    d_beta: np.ndarray,
    d_theta: np.ndarray,
    differenced: np.ndarray,
) -> tuple[float, float]:
    a11, a21, a22, zt_xy_lead, zt_xy_rest, xy_cross = data
    nobs, singular_tolerance = scalars[0], scalars[1]
    prepared = gaussian_prepare(
        beta, theta, a11, a21, a22, zt_xy_lead, zt_xy_rest, xy_cross, placement, structure
    )
    if not prepared[9]:
        return -np.inf, 0.0
    l22, c22_inv, ok = trailing_factor_and_inverse(prepared[8])
    if not ok:
        return -np.inf, 0.0
    value, solution = gaussian_finish(sigma, nobs, prepared, l22, structure)
    if not (with_gradient and np.isfinite(value)):
        return value, 0.0
    d_sigma = gaussian_gradient(
        sigma, nobs, prepared, solution, l22, c22_inv, a11, a21, a22, zt_xy_lead, zt_xy_rest,
        structure, blocks, singular_tolerance, d_beta, d_theta, differenced,
    )  # fmt: skip
    return value, d_sigma


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def gaussian_loglik(
    beta: np.ndarray,
    theta: np.ndarray,
    sigma: float,
    data: tuple,
    placement: tuple,
    structure: tuple,
    blocks: tuple,
    scalars: np.ndarray,
    d_beta: np.ndarray,
    d_theta: np.ndarray,
) -> tuple[float, float]:
    """``log p(y | β, θ, σ)`` with its gradient, any trailing block, in one compiled call.

    ``data`` is ``(a11, a21, a22, zt_xy_lead, zt_xy_rest, xy_cross)``,
    ``placement``, ``structure`` and ``blocks`` as :func:`gaussian_prepare` and
    :func:`gaussian_finish` take them, ``scalars`` ``(nobs, singular
    tolerance)``. Fills ``d_beta`` and ``d_theta`` (``σ`` held fixed; entries
    of a block with a singular factor by central differences)
    and returns ``(value, d_sigma)``; ``-inf`` where the factor fails.
    """
    differenced = np.zeros(theta.size, dtype=np.bool_)
    spare_beta = np.empty(beta.size)
    spare_theta = np.empty(theta.size)
    spare_flags = np.zeros(theta.size, dtype=np.bool_)
    value, d_sigma, high, step = -np.inf, 0.0, 0.0, 0.0
    moved = theta.copy()
    # one call site, evaluated in turn at θ (with the gradient) and at θ ± h along each
    # differenced entry: _gaussian_value is inlined, and a second site would double it;
    # the gradient flag is a run-time boolean, so the callees compile once, not per literal
    entry, upward = -1, True
    while True:
        at_point = entry < 0
        current, current_d_sigma = _gaussian_value(
            beta, moved, sigma, data, placement, structure, blocks, scalars,
            at_point,
            d_beta if at_point else spare_beta,
            d_theta if at_point else spare_theta,
            differenced if at_point else spare_flags,
        )  # fmt: skip
        if at_point:
            if not np.isfinite(current):
                return -np.inf, 0.0
            value, d_sigma = current, current_d_sigma
        elif upward:
            high, upward = current, False
            moved[entry] = theta[entry] - step
            continue
        else:
            d_theta[entry] = (high - current) / (2.0 * step)
            moved[entry] = theta[entry]
        entry += 1
        while entry < theta.size and not differenced[entry]:
            entry += 1
        if entry >= theta.size:
            return value, d_sigma
        step = 1e-6 * max(1.0, abs(theta[entry]))
        moved[entry] = theta[entry] + step
        upward = True
