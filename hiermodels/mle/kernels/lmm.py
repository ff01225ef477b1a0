"""Penalised least squares of a linear mixed model and the gradient of its criterion.

From the blocked factor at one ``θ``: ``β̂``, the spherical modes ``û`` and
``log |L|²`` (:func:`solve_lmm`, through :func:`pls`), and the gradient in
``θ`` of the profiled REML/ML criterion or of ``−2 log p(y | β, θ, σ)``
(:func:`lmm_gradient`, from the level sums of :func:`gradient_terms`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hiermodels.mle.kernels.factor import _cholesky, backward, forward
from hiermodels.mle.kernels.products import lambda_t_lead, lambda_t_rest
from hiermodels.mle.kernels.trailing import selected_inverse

__all__ = [
    "last_column_less",
    "pls",
    "gradient_terms",
    "solve_lmm",
    "lmm_gradient",
]


@njit(cache=True, nogil=True)
def last_column_less(
    lead: np.ndarray, rest: np.ndarray, beta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``c_y − c_X β`` for partitioned columns ``[c_X c_y]``: ``(L₀, q₀, 1)`` and ``(q_rest, 1)``.

    ``lead`` is ``(L₀, q₀, p + 1)`` and ``rest`` ``(q_rest, p + 1)``, the last
    column the response's (``Zᵀ[X y]``, or its forward-solved ``w``).
    """
    p = beta.size
    n_lead, q0 = lead.shape[0], lead.shape[1]
    out_lead = np.empty((n_lead, q0, 1))
    for m in range(n_lead):
        for a in range(q0):
            acc = lead[m, a, p]
            for b in range(p):
                acc -= lead[m, a, b] * beta[b]
            out_lead[m, a, 0] = acc
    out_rest = np.empty((rest.shape[0], 1))
    for r in range(rest.shape[0]):
        acc = rest[r, p]
        for b in range(p):
            acc -= rest[r, b] * beta[b]
        out_rest[r, 0] = acc
    return out_lead, out_rest


@njit(cache=True, nogil=True)
def pls(
    l11: np.ndarray,
    l21: np.ndarray,
    l22: np.ndarray,
    rest_q: np.ndarray,
    pair_block: np.ndarray,
    pair_row: np.ndarray,
    pair_ptr: np.ndarray,
    lead_ptr: np.ndarray,
    c1: np.ndarray,
    c2: np.ndarray,
    xy_cross: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Penalised least squares from ``c = Λᵀ Zᵀ[X y]`` and ``[X y]ᵀ[X y]``.

    Returns ``(w1, w2, upper, beta, u1, u2, ok)``: the forward-solved
    columns, the upper Cholesky factor of the fixed-effects Schur complement
    (``R_X`` and, in its last column, ``R_Xᵀ β̂`` and ``r``), ``β̂`` and the
    spherical modes; ``ok`` is False when the Schur complement is not
    positive definite.
    """
    w1, w2 = forward(l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, c1, c2)
    k = xy_cross.shape[0]
    p = k - 1
    schur = xy_cross.copy()
    n_lead, q0 = w1.shape[0], w1.shape[1]
    for a in range(k):
        for b in range(a + 1):
            acc = 0.0
            for m in range(n_lead):
                for t in range(q0):
                    acc += w1[m, t, a] * w1[m, t, b]
            for r in range(w2.shape[0]):
                acc += w2[r, a] * w2[r, b]
            schur[a, b] -= acc
            schur[b, a] = schur[a, b]
    lower = np.zeros((k, k))
    if not _cholesky(schur, lower):
        return (
            w1,
            w2,
            lower,
            np.zeros(p),
            np.zeros((n_lead, q0)),
            np.zeros(w2.shape[0]),
            False,
        )
    upper = lower.T.copy()
    beta = np.zeros(p)
    for a in range(p - 1, -1, -1):
        acc = upper[a, p]
        for b in range(a + 1, p):
            acc -= upper[a, b] * beta[b]
        beta[a] = acc / upper[a, a]
    r1, r2 = last_column_less(w1, w2, beta)
    u1, u2 = backward(l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, r1, r2)
    return w1, w2, upper, beta, u1[:, :, 0], u2[:, 0], True


@njit(cache=True, nogil=True)
def gradient_terms(
    l11: np.ndarray,
    l21: np.ndarray,
    c22_inv: np.ndarray,
    rest_q: np.ndarray,
    row_block: np.ndarray,
    row_term: np.ndarray,
    row_base: np.ndarray,
    pair_block: np.ndarray,
    pair_row: np.ndarray,
    pair_ptr: np.ndarray,
    lead_ptr: np.ndarray,
    dense: bool,
    v1: np.ndarray,
    v2: np.ndarray,
    a11: np.ndarray,
    a21: np.ndarray,
    a22: np.ndarray,
    resid_lead: np.ndarray,
    resid_rest: np.ndarray,
    t0: np.ndarray,
    rest_t: np.ndarray,
    u1: np.ndarray,
    u2: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Level sums of the blocks the gradient of the profiled criterion needs.

    With ``S = ΛᵀZᵀZΛ + I`` and ``C₂₂ = L₂₂L₂₂ᵀ`` its trailing Schur
    complement (``c22_inv``: the lower triangle of its inverse), returns,
    summed over the levels of the leading factor
    (``q₀ × q₀``) and per trailing block (``n_rest_blocks × q_max × q_max``):

    - the diagonal blocks of ``S⁻¹``;
    - the diagonal blocks of ``V Vᵀ`` for the given ``(v1, v2)`` (``S⁻¹ B R_X⁻¹``);
    - ``Σ (Zᵀr) uᵀ`` with ``Zᵀr = resid − ZᵀZΛu`` (``resid = Zᵀ(y − Xβ̂)``).

    ``dense`` as :func:`~hiermodels.mle.kernels.selected_inverse`'s.
    """
    n_lead, q0 = l11.shape[0], l11.shape[1]
    q_rest = c22_inv.shape[0]
    n_blocks = rest_t.shape[0]
    qmax = rest_t.shape[1] if n_blocks else 1
    s_lead = np.zeros((q0, q0))
    v_lead = np.zeros((q0, q0))
    z_lead = np.zeros((q0, q0))
    s_rest = np.zeros((n_blocks, qmax, qmax))
    v_rest = np.zeros((n_blocks, qmax, qmax))
    z_rest = np.zeros((n_blocks, qmax, qmax))
    # b = Λu
    b1 = np.zeros((n_lead, q0))
    for m in range(n_lead):
        for a in range(q0):
            acc = 0.0
            for c in range(q0):
                acc += t0[a, c] * u1[m, c]
            b1[m, a] = acc
    b2 = np.zeros(q_rest)
    # b2 by blocks: rows base..base+q of block j hold T_j u
    r = 0
    while r < q_rest:
        j = row_block[r]
        qj = rest_q[j]
        for a in range(qj):
            acc = 0.0
            for c in range(qj):
                acc += rest_t[j][a, c] * u2[r + c]
            b2[r + a] = acc
        r += qj
    # Zᵀr, leading part, and the leading level sums
    ztr1 = resid_lead.copy()
    ztr2 = resid_rest.copy()
    for m in range(n_lead):
        for a in range(q0):
            acc = 0.0
            for c in range(q0):
                acc += a11[m, a, c] * b1[m, c]
            ztr1[m, a] -= acc
        for p in range(lead_ptr[m], lead_ptr[m + 1]):
            qj = rest_q[pair_block[p]]
            row = pair_row[p]
            start = pair_ptr[p]
            for a in range(qj):
                for c in range(q0):
                    val = a21[start + a * q0 + c]
                    ztr1[m, c] -= val * b2[row + a]
                    ztr2[row + a] -= val * b1[m, c]
    for r in range(q_rest):
        acc = 0.0
        for c in range(q_rest):
            acc += a22[r, c] * b2[c]
        ztr2[r] -= acc
    n_v = v1.shape[2]
    lead_inverse, _ = selected_inverse(
        l11, l21, c22_inv, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, dense
    )
    for m in range(n_lead):
        for a in range(q0):
            for b in range(q0):
                s_lead[a, b] += lead_inverse[m, a, b]
                acc = 0.0
                for c in range(n_v):
                    acc += v1[m, a, c] * v1[m, b, c]
                v_lead[a, b] += acc
                z_lead[a, b] += ztr1[m, a] * u1[m, b]
    r = 0
    while r < q_rest:
        j = row_block[r]
        qj = rest_q[j]
        for a in range(qj):
            for b in range(qj):
                s_rest[j, a, b] += c22_inv[r + max(a, b), r + min(a, b)]
                acc = 0.0
                for c in range(n_v):
                    acc += v2[r + a, c] * v2[r + b, c]
                v_rest[j, a, b] += acc
                z_rest[j, a, b] += ztr2[r + a] * u2[r + b]
        r += qj
    return s_lead, v_lead, z_lead, s_rest, v_rest, z_rest


@njit(cache=True, nogil=True)
def solve_lmm(
    l11: np.ndarray,
    l21: np.ndarray,
    l22: np.ndarray,
    zt_xy_lead: np.ndarray,
    zt_xy_rest: np.ndarray,
    xy_cross: np.ndarray,
    t0: np.ndarray,
    rest_t: np.ndarray,
    rest_q: np.ndarray,
    row_block: np.ndarray,
    row_term: np.ndarray,
    row_base: np.ndarray,
    pair_block: np.ndarray,
    pair_row: np.ndarray,
    pair_ptr: np.ndarray,
    lead_ptr: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, bool]:
    """Penalised least squares of a linear mixed model from its factor at one ``θ``.

    Returns ``(w1, w2, upper, beta, u1, u2, logdet_l, ok)``; ``ok`` is False
    when the fixed-effects Schur complement is not positive definite.
    """
    c1 = lambda_t_lead(t0, zt_xy_lead)
    c2 = lambda_t_rest(rest_t, rest_q, row_block, row_term, row_base, zt_xy_rest)
    w1, w2, upper, beta, u1, u2, ok = pls(
        l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, c1, c2, xy_cross
    )
    logdet = 0.0
    for m in range(l11.shape[0]):
        for a in range(l11.shape[1]):
            logdet += np.log(l11[m, a, a])
    for r in range(l22.shape[0]):
        logdet += np.log(l22[r, r])
    return w1, w2, upper, beta, u1, u2, 2.0 * logdet, ok


@njit(cache=True, nogil=True)
def lmm_gradient(
    l11: np.ndarray,
    l21: np.ndarray,
    l22: np.ndarray,
    c22_inv: np.ndarray,
    w1: np.ndarray,
    w2: np.ndarray,
    upper: np.ndarray,
    beta: np.ndarray,
    u1: np.ndarray,
    u2: np.ndarray,
    a11: np.ndarray,
    a21: np.ndarray,
    a22: np.ndarray,
    zt_xy_lead: np.ndarray,
    zt_xy_rest: np.ndarray,
    t0: np.ndarray,
    rest_t: np.ndarray,
    rest_q: np.ndarray,
    row_block: np.ndarray,
    row_term: np.ndarray,
    row_base: np.ndarray,
    pair_block: np.ndarray,
    pair_row: np.ndarray,
    pair_ptr: np.ndarray,
    lead_ptr: np.ndarray,
    dense: bool,
    block_lead: np.ndarray,
    block_pos: np.ndarray,
    block_q: np.ndarray,
    block_levels: np.ndarray,
    block_theta: np.ndarray,
    reml: bool,
    residual_weight: float,
    singular_tolerance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of ``log|A| + residual_weight · r²`` in ``θ`` (see ``LmmDeviance``).

    ``A`` is ``ΛᵀZᵀZΛ + I``, or the whole system of ``(u, β)`` for ``reml``.
    With ``residual_weight = (n − p)/r²`` (REML) or ``n/r²`` (ML) it is the
    gradient of the profiled criterion; with ``1/σ²`` that of
    ``−2 log p(y | β, θ, σ)`` less its constant, ``β`` held fixed.

    Per block (θ order): ``block_lead`` 1 for a leading block, ``block_pos``
    its first term in the leading partition or its index among the trailing
    blocks, ``block_q`` its terms, ``block_levels`` its levels and
    ``block_theta`` its first entry in ``θ``; ``dense`` as
    :func:`~hiermodels.mle.kernels.selected_inverse`'s. Returns the gradient and a mask
    of the entries left for differencing (blocks with a singular factor).
    """
    p = beta.size
    n_lead, q0 = l11.shape[0], l11.shape[1]
    q_rest = l22.shape[0]
    if reml and p > 0:
        v1 = np.ascontiguousarray(w1[:, :, :p])
        v2 = np.ascontiguousarray(w2[:, :p])
        v1, v2 = backward(l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, v1, v2)
        # times R_X⁻¹ from the right: solve x R_X = v row by row
        for m in range(n_lead):
            for a in range(q0):
                for c in range(p):
                    acc = v1[m, a, c]
                    for b in range(c):
                        acc -= v1[m, a, b] * upper[b, c]
                    v1[m, a, c] = acc / upper[c, c]
        for r in range(q_rest):
            for c in range(p):
                acc = v2[r, c]
                for b in range(c):
                    acc -= v2[r, b] * upper[b, c]
                v2[r, c] = acc / upper[c, c]
    else:
        v1 = np.zeros((n_lead, q0, 0))
        v2 = np.zeros((q_rest, 0))
    resid_lead_3d, resid_rest_2d = last_column_less(zt_xy_lead, zt_xy_rest, beta)
    resid_lead = np.ascontiguousarray(resid_lead_3d[:, :, 0])
    resid_rest = np.ascontiguousarray(resid_rest_2d[:, 0])
    s_lead, v_lead, z_lead, s_rest, v_rest, z_rest = gradient_terms(
        l11,
        l21,
        c22_inv,
        rest_q,
        row_block,
        row_term,
        row_base,
        pair_block,
        pair_row,
        pair_ptr,
        lead_ptr,
        dense,
        v1,
        v2,
        a11,
        a21,
        a22,
        resid_lead,
        resid_rest,
        t0,
        rest_t,
        u1,
        u2,
    )
    weight = 2.0 * residual_weight
    n_theta = block_theta[-1]
    grad = np.zeros(n_theta)
    differenced = np.zeros(n_theta, dtype=np.bool_)
    for k in range(block_q.size):
        q = block_q[k]
        pos = block_pos[k]
        start = block_theta[k]
        t = np.zeros((q, q))
        inv_sum = np.zeros((q, q))
        resid_u = np.zeros((q, q))
        for a in range(q):
            for b in range(q):
                if block_lead[k]:
                    t[a, b] = t0[pos + a, pos + b]
                    inv_sum[a, b] = s_lead[pos + a, pos + b] + v_lead[pos + a, pos + b]
                    resid_u[a, b] = z_lead[pos + a, pos + b]
                else:
                    t[a, b] = rest_t[pos, a, b]
                    inv_sum[a, b] = s_rest[pos, a, b] + v_rest[pos, a, b]
                    resid_u[a, b] = z_rest[pos, a, b]
        largest = 1.0
        smallest = np.inf
        for a in range(q):
            largest = max(largest, abs(t[a, a]))
            smallest = min(smallest, abs(t[a, a]))
        if smallest <= singular_tolerance * largest:
            for e in range(start, block_theta[k + 1]):
                differenced[e] = True
            continue
        # g = (n_k I − Σ A⁻¹) T⁻¹: solve x T = row for every row
        g = np.zeros((q, q))
        for a in range(q):
            for c in range(q - 1, -1, -1):
                acc = (block_levels[k] if a == c else 0.0) - inv_sum[a, c]
                for b in range(c + 1, q):
                    acc -= g[a, b] * t[b, c]
                g[a, c] = acc / t[c, c]
        e = start
        for col in range(q):
            for row in range(col, q):
                grad[e] = 2.0 * g[col, row] - weight * resid_u[row, col]
                e += 1
    return grad, differenced
