"""Products with the random-effects model matrix ``Z`` and the relative factor ``Λ``.

``ZᵀWZ`` in the blocked form the factorisation takes, ``ZᵀW M`` and ``Z b``
for values split into the leading and the trailing partition, ``Λᵀ``
applied to either partition, the factors ``T₀`` and ``T_j`` placed from
``θ``, and the linear predictor ``fixed + ZΛu``. The blocked layout and its
*pairs* are described in :mod:`hiermodels.mle.kernels`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "cross_products",
    "z_transpose",
    "lambda_t_lead",
    "lambda_t_rest",
    "placed_factors",
    "z_times",
    "linear_predictor",
]


@njit(cache=True, nogil=True)
def cross_products(
    lead_codes: np.ndarray,
    lead_x: np.ndarray,
    rest_codes: np.ndarray,
    rest_x: np.ndarray,
    rest_xoff: np.ndarray,
    rest_q: np.ndarray,
    rest_off: np.ndarray,
    pair_of: np.ndarray,
    pair_ptr: np.ndarray,
    n_lead_levels: int,
    q_rest: int,
    weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``ZᵀWZ`` in blocked form: leading blocks, coupling pairs, dense trailing block."""
    n, q0 = lead_x.shape
    n_rest_blocks = rest_codes.shape[1]
    a11 = np.zeros((n_lead_levels, q0, q0))
    a21 = np.zeros(pair_ptr[-1])
    a22 = np.zeros((q_rest, q_rest))
    for i in range(n):
        w = weights[i]
        m = lead_codes[i]
        for a in range(q0):
            xa = w * lead_x[i, a]
            for b in range(q0):
                a11[m, a, b] += xa * lead_x[i, b]
        for j in range(n_rest_blocks):
            qj = rest_q[j]
            row = rest_off[j] + rest_codes[i, j] * qj
            xo = rest_xoff[j]
            start = pair_ptr[pair_of[i, j]]
            for a in range(qj):
                xa = w * rest_x[i, xo + a]
                for b in range(q0):
                    a21[start + a * q0 + b] += xa * lead_x[i, b]
                for j2 in range(n_rest_blocks):
                    q2 = rest_q[j2]
                    row2 = rest_off[j2] + rest_codes[i, j2] * q2
                    xo2 = rest_xoff[j2]
                    for b in range(q2):
                        a22[row + a, row2 + b] += xa * rest_x[i, xo2 + b]
    return a11, a21, a22


@njit(cache=True, nogil=True)
def z_transpose(
    lead_codes: np.ndarray,
    lead_x: np.ndarray,
    rest_codes: np.ndarray,
    rest_x: np.ndarray,
    rest_xoff: np.ndarray,
    rest_q: np.ndarray,
    rest_off: np.ndarray,
    n_lead_levels: int,
    q_rest: int,
    mat: np.ndarray,
    weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``ZᵀW mat`` as leading ``(L₀, q₀, k)`` and trailing ``(q_rest, k)`` parts."""
    n, q0 = lead_x.shape
    k = mat.shape[1]
    n_rest_blocks = rest_codes.shape[1]
    lead = np.zeros((n_lead_levels, q0, k))
    rest = np.zeros((q_rest, k))
    for i in range(n):
        w = weights[i]
        m = lead_codes[i]
        for a in range(q0):
            xa = w * lead_x[i, a]
            for c in range(k):
                lead[m, a, c] += xa * mat[i, c]
        for j in range(n_rest_blocks):
            qj = rest_q[j]
            row = rest_off[j] + rest_codes[i, j] * qj
            xo = rest_xoff[j]
            for a in range(qj):
                xa = w * rest_x[i, xo + a]
                for c in range(k):
                    rest[row + a, c] += xa * mat[i, c]
    return lead, rest


@njit(cache=True, nogil=True)
def lambda_t_lead(t0: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """``T₀ᵀ`` applied to every leading level of ``(L₀, q₀, k)`` values."""
    n_lead, q0, k = lead.shape
    out = np.zeros_like(lead)
    for m in range(n_lead):
        for a in range(q0):
            for c in range(k):
                acc = 0.0
                for b in range(q0):
                    acc += t0[b, a] * lead[m, b, c]
                out[m, a, c] = acc
    return out


@njit(cache=True, nogil=True)
def lambda_t_rest(
    rest_t: np.ndarray,
    rest_q: np.ndarray,
    row_block: np.ndarray,
    row_term: np.ndarray,
    row_base: np.ndarray,
    rest: np.ndarray,
) -> np.ndarray:
    """``Λ₂ᵀ`` applied to trailing ``(q_rest, k)`` values."""
    q_rest, k = rest.shape
    out = np.zeros_like(rest)
    for r in range(q_rest):
        j = row_block[r]
        i = row_term[r]
        base = row_base[r]
        t = rest_t[j]
        for a in range(rest_q[j]):
            ta = t[a, i]
            if ta != 0.0:
                for c in range(k):
                    out[r, c] += ta * rest[base + a, c]
    return out


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def placed_factors(theta: np.ndarray, placement: tuple) -> tuple[np.ndarray, np.ndarray]:
    """``T₀`` and the stacked trailing factors at ``θ`` (``ReLayout.kernel_factors``).

    ``placement`` is ``(lead_index, lead_rows, lead_cols, rest_index,
    rest_block, rest_rows, rest_cols, q_lead, rest_shape)``: where ``θ``'s
    entries go.
    """
    li, lr, lc, ri, rb, rr, rc, q_lead, rest_shape = placement
    t0 = np.zeros((q_lead, q_lead))
    for k in range(li.size):
        t0[lr[k], lc[k]] = theta[li[k]]
    rest_t = np.zeros((rest_shape[0], rest_shape[1], rest_shape[2]))
    for k in range(ri.size):
        rest_t[rb[k], rr[k], rc[k]] = theta[ri[k]]
    return t0, rest_t


@njit(cache=True, nogil=True)
def z_times(
    lead_codes: np.ndarray,
    lead_x: np.ndarray,
    rest_codes: np.ndarray,
    rest_x: np.ndarray,
    rest_xoff: np.ndarray,
    rest_q: np.ndarray,
    rest_off: np.ndarray,
    lead: np.ndarray,
    rest: np.ndarray,
) -> np.ndarray:
    """``Z b`` for effects given as leading ``(L₀, q₀)`` and trailing ``(q_rest,)`` values."""
    n, q0 = lead_x.shape
    out = np.empty(n)
    for i in range(n):
        m = lead_codes[i]
        acc = 0.0
        for a in range(q0):
            acc += lead_x[i, a] * lead[m, a]
        for j in range(rest_codes.shape[1]):
            qj = rest_q[j]
            row = rest_off[j] + rest_codes[i, j] * qj
            xo = rest_xoff[j]
            for a in range(qj):
                acc += rest_x[i, xo + a] * rest[row + a]
        out[i] = acc
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def linear_predictor(
    fixed: np.ndarray,
    lead_codes: np.ndarray,
    lead_x: np.ndarray,
    rest_codes: np.ndarray,
    rest_x: np.ndarray,
    rest_xoff: np.ndarray,
    rest_q: np.ndarray,
    rest_off: np.ndarray,
    row_block: np.ndarray,
    row_term: np.ndarray,
    row_base: np.ndarray,
    t0: np.ndarray,
    rest_t: np.ndarray,
    u1: np.ndarray,
    u2: np.ndarray,
    eta: np.ndarray,
) -> None:
    """``η = fixed + ZΛu`` into ``eta``."""
    n_lead, q0 = u1.shape
    b1 = np.empty((n_lead, q0))
    for m in range(n_lead):
        for a in range(q0):
            acc = 0.0
            for c in range(q0):
                acc += u1[m, c] * t0[a, c]
            b1[m, a] = acc
    q_rest = u2.size
    b2 = np.empty(q_rest)
    for r in range(q_rest):
        j = row_block[r]
        a = row_term[r]
        base = row_base[r]
        acc = 0.0
        for c in range(a + 1):  # T_j is lower triangular
            acc += rest_t[j, a, c] * u2[base + c]
        b2[r] = acc
    n_rest_blocks = rest_codes.shape[1]
    for i in range(eta.size):
        m = lead_codes[i]
        total = 0.0
        for a in range(q0):
            total += lead_x[i, a] * b1[m, a]
        if n_rest_blocks:
            rest = 0.0
            for j in range(n_rest_blocks):
                qj = rest_q[j]
                row = rest_off[j] + rest_codes[i, j] * qj
                xo = rest_xoff[j]
                for a in range(qj):
                    rest += rest_x[i, xo + a] * b2[row + a]
            total = total + rest
        eta[i] = fixed[i] + total
