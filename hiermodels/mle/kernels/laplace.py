"""The gradient of a GLMM's Laplace deviance in ``(θ, β)`` at the conditional mode.

Exact, from the factor at the mode: the leverages through the selected
inverse, one more pair of solves with the factor, and the blocks of
``ZᵀWZ`` that touch each relative factor (see :func:`laplace_gradient`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hiermodels.mle.kernels.factor import backward, forward, holds_dense_coupling
from hiermodels.mle.kernels.glm import glm_derivatives
from hiermodels.mle.kernels.pirls import _lambda_t_z_transpose, _predict
from hiermodels.mle.kernels.products import cross_products, z_transpose
from hiermodels.mle.kernels.trailing import selected_inverse

__all__ = [
    "laplace_gradient",
]


@njit(cache=True, nogil=True, error_model="numpy")
def _inverse_entry(c22_inv: np.ndarray, i: int, j: int) -> float:
    """Entry ``(i, j)`` of ``C₂₂⁻¹`` from its lower triangle."""
    return c22_inv[i, j] if i >= j else c22_inv[j, i]


@njit(cache=True, nogil=True, error_model="numpy")
def laplace_gradient(
    structure: tuple,
    family: tuple,
    t0: np.ndarray,
    rest_t: np.ndarray,
    x: np.ndarray,
    u1: np.ndarray,
    u2: np.ndarray,
    eta: np.ndarray,
    l11: np.ndarray,
    l21: np.ndarray,
    l22: np.ndarray,
    c22_inv: np.ndarray,
    block_lead: np.ndarray,
    block_pos: np.ndarray,
    block_q: np.ndarray,
    block_theta: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Gradient in ``θ`` and ``β`` of the Laplace deviance at the conditional mode.

    ``F(θ, β) = D(η̂) + ‖û‖² + log |H|`` with ``H = ΛᵀZᵀWZΛ + I``, at the
    mode ``û`` (``u1, u2``; ``eta``) and the factor of ``H`` there. The mode
    makes the derivative of ``D + ‖u‖²`` through ``û`` vanish; ``log |H|``
    moves with ``û`` through the weights, ``∂ log |H| / ∂η_i = w'_i h_i``
    with the leverages ``h_i = (ZΛH⁻¹ΛᵀZᵀ)_ii`` (a selected inverse of
    ``H`` on the pattern of ``ZᵀZ``), and ``∂û = −H⁻¹ ∂(ΛᵀZᵀd/2 + u)``.
    With ``a = w' h``, ``v = H⁻¹ΛᵀZᵀa`` and ``r = d + a − W ZΛv``:
    ``∂F/∂β = Xᵀr`` and, for the entry ``(i, j)`` of a relative factor ``T``,
    ``∂F/∂T_ij = Σ_levels [(Zᵀr)_i û_j − ½ (Zᵀd)_i v_j] + 2 Σ [H⁻¹ΛᵀZᵀWZ]_ji``,
    the last sum over the blocks of ``ZᵀWZ`` touching the factor's levels
    (no inverse of ``T``, so the boundary needs no special case).

    Block arguments as :func:`lmm_gradient`'s. Returns the gradients in
    ``θ`` and ``β``.
    """
    code, y, trials, alpha = family[0], family[1], family[2], family[4]
    lead_codes, lead_x, rest_codes, rest_x, rest_xoff, rest_q, rest_off = structure[:7]
    pair_of, pair_block, pair_row, pair_ptr, lead_ptr = structure[7:12]
    row_block, row_term, row_base = structure[12:15]
    q_rest = structure[17]
    n, p = x.shape
    n_lead, q0 = l11.shape[0], l11.shape[1]
    n_blocks = rest_codes.shape[1]
    q_max = rest_t.shape[1] if n_blocks else 1
    first = np.empty(n)
    weights = np.empty(n)
    slope = np.empty(n)
    glm_derivatives(code, y, trials, alpha, eta, first, weights, slope)
    a11, a21, a22 = cross_products(
        lead_codes,
        lead_x,
        rest_codes,
        rest_x,
        rest_xoff,
        rest_q,
        rest_off,
        pair_of,
        pair_ptr,
        n_lead,
        q_rest,
        weights,
    )
    lead_inv, cross_inv = selected_inverse(
        l11,
        l21,
        c22_inv,
        rest_q,
        pair_block,
        pair_row,
        pair_ptr,
        lead_ptr,
        holds_dense_coupling(structure[15], structure[16]),
    )
    # a_i = w'_i h_i
    total_rest = 0
    for j in range(n_blocks):
        total_rest += rest_q[j]
    zl = np.empty(q0)
    zr = np.empty(max(total_rest, 1))
    rows = np.empty(max(total_rest, 1), dtype=np.int64)
    lev_slope = np.empty((n, 1))
    for i in range(n):
        m = lead_codes[i]
        for a in range(q0):
            acc = 0.0
            for c in range(a, q0):
                acc += t0[c, a] * lead_x[i, c]
            zl[a] = acc
        lev = 0.0
        for a in range(q0):
            acc = 0.0
            for b in range(q0):
                acc += lead_inv[m, a, b] * zl[b]
            lev += zl[a] * acc
        pos = 0
        for j in range(n_blocks):
            qj = rest_q[j]
            xo = rest_xoff[j]
            row = rest_off[j] + rest_codes[i, j] * qj
            for a in range(qj):
                acc = 0.0
                for c in range(a, qj):
                    acc += rest_t[j, c, a] * rest_x[i, xo + c]
                zr[pos + a] = acc
                rows[pos + a] = row + a
            start = pair_ptr[pair_of[i, j]]
            cross = 0.0
            for a in range(qj):
                acc = 0.0
                for c in range(q0):
                    acc += cross_inv[start + a * q0 + c] * zl[c]
                cross += acc * zr[pos + a]
            lev += 2.0 * cross
            pos += qj
        for a in range(pos):
            acc = 0.0
            for b in range(pos):
                acc += _inverse_entry(c22_inv, rows[a], rows[b]) * zr[b]
            lev += zr[a] * acc
        lev_slope[i, 0] = slope[i] * lev
    # v = H⁻¹ΛᵀZᵀa and ZΛv
    ones = np.ones(n)
    c1, c2 = _lambda_t_z_transpose(structure, t0, rest_t, lev_slope, ones)
    f1, f2 = forward(l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, c1, c2)
    b1, b2 = backward(l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, f1, f2)
    v1 = np.ascontiguousarray(b1[:, :, 0])
    v2 = np.ascontiguousarray(b2[:, 0])
    zv = np.empty(n)
    _predict(structure, t0, rest_t, np.zeros(n), v1, v2, zv)
    resid = np.empty((n, 2))
    for i in range(n):
        resid[i, 0] = first[i] + lev_slope[i, 0] - weights[i] * zv[i]
        resid[i, 1] = first[i]
    grad_beta = np.zeros(p)
    for i in range(n):
        for b in range(p):
            grad_beta[b] += x[i, b] * resid[i, 0]
    zt1, zt2 = z_transpose(
        lead_codes,
        lead_x,
        rest_codes,
        rest_x,
        rest_xoff,
        rest_q,
        rest_off,
        n_lead,
        q_rest,
        resid,
        ones,
    )
    # ∂F/∂T: explicit terms
    g_lead = np.zeros((q0, q0))
    g_rest = np.zeros((n_blocks, q_max, q_max))
    for m in range(n_lead):
        for a in range(q0):
            for b in range(q0):
                g_lead[a, b] += zt1[m, a, 0] * u1[m, b] - 0.5 * zt1[m, a, 1] * v1[m, b]
    for r in range(q_rest):
        j = row_block[r]
        a = row_term[r]
        base = row_base[r]
        for b in range(rest_q[j]):
            g_rest[j, a, b] += zt2[r, 0] * u2[base + b] - 0.5 * zt2[r, 1] * v2[base + b]
    # ∂F/∂T: 2 tr(H⁻¹ΛᵀZᵀWZ ∂Λ), block by block of ZᵀWZ; M = (H⁻¹)_YX T_Xᵀ (ZᵀWZ)_XY
    t_a = np.zeros((q0, q0))
    ta_p = np.zeros((q_max, q0))
    ta_0 = np.zeros((q0, q_max))
    for m in range(n_lead):
        for x_ in range(q0):
            for z in range(q0):
                acc = 0.0
                for w in range(x_, q0):
                    acc += t0[w, x_] * a11[m, w, z]
                t_a[x_, z] = acc
        for yy in range(q0):
            for z in range(q0):
                acc = 0.0
                for x_ in range(q0):
                    acc += lead_inv[m, yy, x_] * t_a[x_, z]
                g_lead[z, yy] += 2.0 * acc
        for pp in range(lead_ptr[m], lead_ptr[m + 1]):
            j = pair_block[pp]
            qp = rest_q[j]
            s = pair_ptr[pp]
            # leading Y: B_p T_pᵀ A₂₁,p  (q0 × q0)
            for x_ in range(qp):
                for z in range(q0):
                    acc = 0.0
                    for w in range(x_, qp):
                        acc += rest_t[j, w, x_] * a21[s + w * q0 + z]
                    ta_p[x_, z] = acc
            for yy in range(q0):
                for z in range(q0):
                    acc = 0.0
                    for x_ in range(qp):
                        acc += cross_inv[s + x_ * q0 + yy] * ta_p[x_, z]
                    g_lead[z, yy] += 2.0 * acc
            # trailing Y: B_pᵀ T₀ᵀ A₂₁,pᵀ  (q_p × q_p)
            for x_ in range(q0):
                for z in range(qp):
                    acc = 0.0
                    for w in range(x_, q0):
                        acc += t0[w, x_] * a21[s + z * q0 + w]
                    ta_0[x_, z] = acc
            for yy in range(qp):
                for z in range(qp):
                    acc = 0.0
                    for x_ in range(q0):
                        acc += cross_inv[s + yy * q0 + x_] * ta_0[x_, z]
                    g_rest[j, z, yy] += 2.0 * acc
    # trailing X and Y: level blocks start where row_term is 0
    ry = 0
    while ry < q_rest:
        jy = row_block[ry]
        qy = rest_q[jy]
        rx = 0
        while rx < q_rest:
            jx = row_block[rx]
            qx = rest_q[jx]
            coupled = False
            for x_ in range(qx):
                for z in range(qy):
                    if a22[rx + x_, ry + z] != 0.0:
                        coupled = True
            if coupled:
                for yy in range(qy):
                    for z in range(qy):
                        acc = 0.0
                        for x_ in range(qx):
                            ta = 0.0
                            for w in range(x_, qx):
                                ta += rest_t[jx, w, x_] * a22[rx + w, ry + z]
                            acc += _inverse_entry(c22_inv, ry + yy, rx + x_) * ta
                        g_rest[jy, z, yy] += 2.0 * acc
            rx += qx
        ry += qy
    n_theta = block_theta[-1]
    grad_theta = np.zeros(n_theta)
    for k in range(block_q.size):
        q = block_q[k]
        pos = block_pos[k]
        e = block_theta[k]
        for col in range(q):
            for row in range(col, q):
                if block_lead[k]:
                    grad_theta[e] = g_lead[pos + row, pos + col]
                else:
                    grad_theta[e] = g_rest[pos, row, col]
                e += 1
    return grad_theta, grad_beta
