"""The trailing block's factor and inverse, and the blocks of ``S⁻¹`` taken from them.

The trailing Schur complement splits into independent diagonal blocks,
each factorised and inverted on its own (:func:`trailing_factor_and_inverse`,
:func:`trailing_inverse`). With that inverse and the leading factor,
:func:`selected_inverse` and :func:`inverse_diagonal_blocks` give the
blocks of ``S⁻¹`` (``S = ΛᵀZᵀWZΛ + I``) that the gradients and the
conditional variances need, without forming ``S⁻¹``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hiermodels.mle.kernels.factor import _cholesky, dense_coupling

__all__ = [
    "selected_inverse",
    "inverse_diagonal_blocks",
    "diagonal_blocks",
    "trailing_factor_and_inverse",
    "trailing_inverse",
]


@njit(cache=True, nogil=True, error_model="numpy")
def selected_inverse(
    l11: np.ndarray,
    l21: np.ndarray,
    c22_inv: np.ndarray,
    rest_q: np.ndarray,
    pair_block: np.ndarray,
    pair_row: np.ndarray,
    pair_ptr: np.ndarray,
    lead_ptr: np.ndarray,
    dense: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """The blocks of ``S⁻¹`` on the pattern of ``ZᵀZ`` outside its trailing block.

    With ``C = C₂₂⁻¹`` (``c22_inv``: its lower triangle), the coupling
    blocks are ``(S⁻¹)₁₂ = B = −L₁₁⁻ᵀL₂₁ᵀC``, needed at the pairs only, and
    the leading diagonal blocks ``L₁₁⁻ᵀL₁₁⁻¹ − B L₂₁L₁₁⁻¹``, level by level:
    each level costs one product with ``C`` restricted to its pairs' rows.
    Returns the leading ``(L₀, q₀, q₀)`` blocks and ``B`` in the flat pair
    layout of ``l21`` (trailing term major, leading term minor).

    With ``dense`` (a pattern that holds the coupling densely,
    :func:`~hiermodels.mle.kernels.holds_dense_coupling`), ``C L₂₁`` is one
    BLAS product for all levels at once instead of a product per level over
    every two of its pairs.
    """
    n_lead, q0 = l11.shape[0], l11.shape[1]
    q_rest = c22_inv.shape[0]
    if dense:
        symmetric = np.empty((q_rest, q_rest))
        for i in range(q_rest):
            for j in range(i + 1):
                symmetric[i, j] = c22_inv[i, j]
                symmetric[j, i] = c22_inv[i, j]
        solved = symmetric @ dense_coupling(
            l21, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, q0, q_rest
        )
    else:
        solved = np.zeros((0, 0))
    lead = np.zeros((n_lead, q0, q0))
    coupling = np.zeros(l21.size)
    inv11 = np.zeros((q0, q0))
    # the pairs of a level are consecutive, so its coupling rows are one slice of l21
    widest = 0
    for m in range(n_lead):
        widest = max(widest, (pair_ptr[lead_ptr[m + 1]] - pair_ptr[lead_ptr[m]]) // max(q0, 1))
    rows = np.empty(widest, dtype=np.int64)
    c_n = np.empty((widest, q0))
    for m in range(n_lead):
        for col in range(q0):
            for a in range(q0):
                acc = 1.0 if a == col else 0.0
                for b in range(a):
                    acc -= l11[m, a, b] * inv11[b, col]
                inv11[a, col] = acc / l11[m, a, a] if a >= col else 0.0
        for a in range(q0):
            for b in range(q0):
                acc = 0.0
                for c in range(max(a, b), q0):
                    acc += inv11[c, a] * inv11[c, b]
                lead[m, a, b] = acc
        base = pair_ptr[lead_ptr[m]]
        k = 0
        for p in range(lead_ptr[m], lead_ptr[m + 1]):
            for a in range(rest_q[pair_block[p]]):
                rows[k] = pair_row[p] + a
                k += 1
        # C N restricted to the level's rows (N: the level's rows of L₂₁, k × q₀)
        for i in range(k):
            ri = rows[i]
            if dense:
                for c in range(q0):
                    c_n[i, c] = solved[ri, m * q0 + c]
                continue
            for c in range(q0):
                c_n[i, c] = 0.0
            for j in range(k):
                rj = rows[j]
                inv = c22_inv[ri, rj] if ri >= rj else c22_inv[rj, ri]
                for c in range(q0):
                    c_n[i, c] += inv * l21[base + j * q0 + c]
        for i in range(k):
            for c in range(q0):
                acc = 0.0
                for kk in range(c, q0):
                    acc -= inv11[kk, c] * c_n[i, kk]
                coupling[base + i * q0 + c] = acc
            # minus B L₂₁L₁₁⁻¹, row by row
            for y in range(q0):
                n_iy = 0.0
                for c in range(y, q0):
                    n_iy += l21[base + i * q0 + c] * inv11[c, y]
                for x in range(q0):
                    lead[m, x, y] -= coupling[base + i * q0 + x] * n_iy
    return lead, coupling


@njit(cache=True, nogil=True)
def inverse_diagonal_blocks(
    l11: np.ndarray,
    l21: np.ndarray,
    c22_inv: np.ndarray,
    rest_q: np.ndarray,
    row_block: np.ndarray,
    pair_block: np.ndarray,
    pair_row: np.ndarray,
    pair_ptr: np.ndarray,
    lead_ptr: np.ndarray,
    dense: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal blocks of ``S⁻¹`` for ``S = LLᵀ`` in blocked form, level by level.

    The leading level ``m`` gets ``L₁₁⁻ᵀL₁₁⁻¹ + Σ N_aᵀ C₂₂⁻¹ N_b`` over the
    pairs of that level (``N = L₂₁L₁₁⁻¹``); the trailing rows get the
    diagonal blocks of ``C₂₂⁻¹`` (``c22_inv``: its lower triangle). Returns
    the leading ``(L₀, q₀, q₀)`` blocks and, for every trailing row ``r``,
    the row of its block-level's diagonal block as ``(q_rest, q_max)``;
    ``dense`` as :func:`selected_inverse`'s.
    """
    q_rest = c22_inv.shape[0]
    lead, _ = selected_inverse(
        l11, l21, c22_inv, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, dense
    )
    q_max = 1
    for j in range(rest_q.size):
        q_max = max(q_max, rest_q[j])
    rest = np.zeros((q_rest, q_max))
    r = 0
    while r < q_rest:
        qj = rest_q[row_block[r]]
        for a in range(qj):
            for b in range(qj):
                rest[r + a, b] = c22_inv[r + max(a, b), r + min(a, b)]
        r += qj
    return lead, rest


@njit(cache=True, nogil=True, error_model="numpy")
def _lower_inverse(lower: np.ndarray) -> np.ndarray:
    """``L⁻¹`` of a lower-triangular ``L``, column by column."""
    n = lower.shape[0]
    out = np.zeros((n, n))
    for j in range(n):
        out[j, j] = 1.0 / lower[j, j]
        for i in range(j + 1, n):
            acc = 0.0
            for k in range(j, i):
                acc -= lower[i, k] * out[k, j]
            out[i, j] = acc / lower[i, i]
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def diagonal_blocks(lower: np.ndarray) -> np.ndarray:
    """Starts of the independent diagonal blocks of a symmetric matrix's lower triangle.

    A block ends before position ``p`` when no entry couples a row from ``p``
    on to a column before it: single entries for nested intercepts, a
    level's terms for nested slopes, one block for crossed factors. Returns
    the starts followed by ``q`` (``blocks + 1`` entries).
    """
    q = lower.shape[0]
    reach = q
    ends_here = np.zeros(q + 1, dtype=np.bool_)
    ends_here[q] = True
    for i in range(q - 1, -1, -1):
        first = i
        for j in range(i):
            if lower[i, j] != 0.0:
                first = j
                break
        reach = min(reach, first)
        if reach == i:
            ends_here[i] = True
    starts = np.empty(q + 1, dtype=np.int64)
    n_blocks = 0
    for p in range(q + 1):
        if ends_here[p]:
            starts[n_blocks] = p
            n_blocks += 1
    return starts[:n_blocks]


@njit(cache=True, nogil=True, error_model="numpy")
def trailing_factor_and_inverse(s22: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Cholesky factor ``L₂₂`` and full inverse ``(L₂₂L₂₂ᵀ)⁻¹`` of the trailing Schur complement.

    The complement splits into independent diagonal blocks
    (:func:`diagonal_blocks`), and each block is factorised on its own, then
    inverted by :func:`trailing_inverse`. Only the lower triangle of ``s22``
    is read. Returns ``(l22, c22_inv, ok)``.
    """
    q = s22.shape[0]
    l22 = np.zeros((q, q))
    starts = diagonal_blocks(s22)
    for b in range(starts.size - 1):
        a0, a1 = starts[b], starts[b + 1]
        size = a1 - a0
        block = np.empty((size, size))
        for i in range(size):
            for j in range(i + 1):
                block[i, j] = s22[a0 + i, a0 + j]
                block[j, i] = s22[a0 + i, a0 + j]
        factor = np.zeros((size, size))
        if not _cholesky(block, factor):
            return l22, np.zeros((q, q)), False
        for i in range(size):
            for j in range(i + 1):
                l22[a0 + i, a0 + j] = factor[i, j]
    return l22, trailing_inverse(l22), True


@njit(cache=True, nogil=True, error_model="numpy")
def trailing_inverse(l22: np.ndarray) -> np.ndarray:
    """The full inverse ``(L₂₂L₂₂ᵀ)⁻¹`` from the trailing factor ``L₂₂``, block by block."""
    q = l22.shape[0]
    inverse = np.zeros((q, q))
    starts = diagonal_blocks(l22)
    for b in range(starts.size - 1):
        a0, a1 = starts[b], starts[b + 1]
        size = a1 - a0
        inverse_factor = _lower_inverse(np.ascontiguousarray(l22[a0:a1, a0:a1]))
        for i in range(size):
            for j in range(i + 1):
                acc = 0.0
                for k in range(i, size):
                    acc += inverse_factor[k, i] * inverse_factor[k, j]
                inverse[a0 + i, a0 + j] = acc
                inverse[a0 + j, a0 + i] = acc
    return inverse
