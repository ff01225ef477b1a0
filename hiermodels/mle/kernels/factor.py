"""The blocked Cholesky factor of ``ΛᵀZᵀWZΛ + I`` and the triangular solves with it.

:func:`factorize` turns ``ZᵀWZ`` into the leading diagonal factors, their
coupling to the trailing partition and the trailing Schur complement;
:func:`factorize_weighted` does the whole factorisation from the weights,
the trailing block included, and reports which part was not positive
definite. :func:`forward` and :func:`backward` solve ``L w = c`` and
``Lᵀ u = w``, :func:`pairs_of_pairs` orders the rank update of the
trailing block and :func:`log_determinant` gives ``log |L|²``.

A nearly complete crossing couples most trailing rows to every leading
level, and the rank update over pairs of pairs becomes the whole cost; its
pattern then holds the coupling as one dense matrix
(:func:`holds_dense_coupling`, :func:`dense_coupling`), and the update is a
single BLAS product.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hiermodels.mle.kernels.products import cross_products
from hiermodels.mle.kernels.summation import pairwise_sum

__all__ = [
    "FACTOR_OK",
    "LEAD_NOT_PD",
    "TRAILING_NOT_PD",
    "factorize",
    "dense_coupling",
    "holds_dense_coupling",
    "trailing_cross",
    "forward",
    "backward",
    "pairs_of_pairs",
    "factorize_weighted",
    "log_determinant",
]


#: Status codes of the GLMM kernels: success, a leading block of ``ΛᵀZᵀWZΛ + I``
#: that is not positive definite, a trailing Schur complement that is not.
FACTOR_OK = 0
LEAD_NOT_PD = 1
TRAILING_NOT_PD = 2


@njit(cache=True, nogil=True)
def _cholesky(s: np.ndarray, out: np.ndarray) -> bool:
    """Lower Cholesky factor of an SPD matrix into ``out``; False if not PD."""
    q = s.shape[0]
    for j in range(q):
        total = s[j, j]
        for t in range(j):
            total -= out[j, t] * out[j, t]
        if not total > 0.0:
            return False
        d = np.sqrt(total)
        out[j, j] = d
        for i in range(j + 1, q):
            acc = s[i, j]
            for t in range(j):
                acc -= out[i, t] * out[j, t]
            out[i, j] = acc / d
        for i in range(j):
            out[i, j] = 0.0
    return True


@njit(cache=True, nogil=True)
def holds_dense_coupling(pp_a: np.ndarray, pp_b: np.ndarray) -> bool:
    """Whether the pattern's pairs of pairs ask for the dense coupling.

    ``pp_a`` is empty and ``pp_b`` holds the leading level of every pair
    (``BlockPattern.pp_b``); indexed pairs of pairs fill ``pp_a``, and pairs
    met as they come leave both empty.
    """
    return pp_a.size == 0 and pp_b.size > 0


@njit(cache=True, nogil=True)
def dense_coupling(
    l21: np.ndarray,
    rest_q: np.ndarray,
    pair_block: np.ndarray,
    pair_row: np.ndarray,
    pair_ptr: np.ndarray,
    lead_ptr: np.ndarray,
    q0: int,
    q_rest: int,
) -> np.ndarray:
    """``L₂₁`` (or any values in its pair layout) as a dense ``(q_rest, L₀ q₀)`` matrix.

    Column ``m q₀ + c`` holds term ``c`` of leading level ``m``; the rows no
    pair of that level reaches are zero.
    """
    n_lead = lead_ptr.size - 1
    dense = np.zeros((q_rest, n_lead * q0))
    for m in range(n_lead):
        for p in range(lead_ptr[m], lead_ptr[m + 1]):
            row = pair_row[p]
            start = pair_ptr[p]
            for a in range(rest_q[pair_block[p]]):
                for c in range(q0):
                    dense[row + a, m * q0 + c] = l21[start + a * q0 + c]
    return dense


@njit(cache=True, nogil=True)
def factorize(
    a11: np.ndarray,
    a21: np.ndarray,
    a22: np.ndarray,
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
    pp_a: np.ndarray,
    pp_b: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Blocked Cholesky factor of ``ΛᵀAΛ + I`` for ``A = ZᵀWZ`` in blocked form.

    ``pp_a, pp_b`` list the pairs of pairs that share a leading level, lower
    triangle, sorted by their trailing rows (see ``BlockPattern``); both
    empty, the pairs are met as they come; ``pp_a`` alone empty, the update
    is the dense product ``L₂₁L₂₁ᵀ`` (:func:`holds_dense_coupling`).

    Returns ``(l11, l21, s22, ok)``: the leading diagonal factors, the
    coupling factor (flat, pair layout) and the trailing Schur complement
    ``Λ₂ᵀA₂₂Λ₂ + I − L₂₁L₂₁ᵀ`` (symmetric, to be factorised densely);
    ``ok`` is False when a leading block is not positive definite.
    """
    n_lead, q0 = a11.shape[0], a11.shape[1]
    l11 = np.zeros((n_lead, q0, q0))
    tmp = np.empty((q0, q0))
    s11 = np.empty((q0, q0))
    for m in range(n_lead):
        for a in range(q0):
            for b in range(q0):
                acc = 0.0
                for c in range(q0):
                    acc += a11[m, a, c] * t0[c, b]
                tmp[a, b] = acc
        for a in range(q0):
            for b in range(q0):
                acc = 0.0
                for c in range(q0):
                    acc += t0[c, a] * tmp[c, b]
                s11[a, b] = acc
            s11[a, a] += 1.0
        if not _cholesky(s11, l11[m]):
            return l11, np.zeros(0), np.zeros((0, 0)), False
    q_rest = a22.shape[0]
    l21 = np.zeros(a21.size)
    qmax = rest_t.shape[1] if rest_t.shape[0] else 1
    block = np.empty((qmax, q0))
    for m in range(n_lead):
        for p in range(lead_ptr[m], lead_ptr[m + 1]):
            qj = rest_q[pair_block[p]]
            t = rest_t[pair_block[p]]
            start = pair_ptr[p]
            # T_jᵀ A_p T₀
            for a in range(qj):
                for b in range(q0):
                    acc = 0.0
                    for c in range(q0):
                        acc += a21[start + a * q0 + c] * t0[c, b]
                    block[a, b] = acc
            for a in range(qj):
                for b in range(q0):
                    acc = 0.0
                    for c in range(qj):
                        acc += t[c, a] * block[c, b]
                    l21[start + a * q0 + b] = acc
            # times L₁₁⁻ᵀ: each row solves L₁₁ x = row
            for a in range(qj):
                for b in range(q0):
                    acc = l21[start + a * q0 + b]
                    for c in range(b):
                        acc -= l11[m, b, c] * l21[start + a * q0 + c]
                    l21[start + a * q0 + b] = acc / l11[m, b, b]
    s22 = trailing_cross(a22, rest_t, rest_q, row_block, row_term, row_base)
    scalar = q0 == 1
    for j in range(rest_q.size):
        scalar = scalar and rest_q[j] == 1
    if holds_dense_coupling(pp_a, pp_b):
        # a nearly complete crossing: one BLAS product does the update at a small
        # fraction of the scattered pair loops' cost (see BlockPattern.build)
        coupling = dense_coupling(l21, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, q0, q_rest)
        update = coupling @ coupling.T
        for r in range(q_rest):
            for c in range(r + 1):
                s22[r, c] -= update[r, c]
        pp_end = 0
    elif pp_a.size == 0 and pair_row.size:
        # too many pairs of pairs to index (a nearly complete crossing): the same
        # update, the pairs of each leading level met in order
        for m in range(n_lead):
            for pa in range(lead_ptr[m], lead_ptr[m + 1]):
                for pb in range(lead_ptr[m], lead_ptr[m + 1]):
                    if pair_row[pb] > pair_row[pa]:
                        continue
                    _pair_update(s22, l21, pa, pb, q0, rest_q, pair_block, pair_row, pair_ptr)
        pp_end = 0
    elif scalar:
        # one value per pair, at the pair's index: half the memory reads of the general loop
        for e in range(pp_a.size):
            pa = pp_a[e]
            pb = pp_b[e]
            s22[pair_row[pa], pair_row[pb]] -= l21[pa] * l21[pb]
        pp_end = 0
    else:
        pp_end = pp_a.size
    for e in range(pp_end):
        _pair_update(s22, l21, pp_a[e], pp_b[e], q0, rest_q, pair_block, pair_row, pair_ptr)
    for r in range(q_rest):
        s22[r, r] += 1.0
        for c in range(r):
            s22[c, r] = s22[r, c]
    return l11, l21, s22, True


@njit(cache=True, nogil=True)
def _pair_update(
    s22: np.ndarray,
    l21: np.ndarray,
    pa: int,
    pb: int,
    q0: int,
    rest_q: np.ndarray,
    pair_block: np.ndarray,
    pair_row: np.ndarray,
    pair_ptr: np.ndarray,
) -> None:
    """``S₂₂ −= L₂₁[pa] L₂₁[pb]ᵀ`` on the lower triangle, for two pairs of one leading level."""
    qa = rest_q[pair_block[pa]]
    qb = rest_q[pair_block[pb]]
    ra = pair_row[pa]
    rb = pair_row[pb]
    sa = pair_ptr[pa]
    sb = pair_ptr[pb]
    for a in range(qa):
        for b in range(qb):
            if rb + b > ra + a:
                continue
            acc = 0.0
            for c in range(q0):
                acc += l21[sa + a * q0 + c] * l21[sb + b * q0 + c]
            s22[ra + a, rb + b] -= acc


@njit(cache=True, nogil=True)
def trailing_cross(
    a22: np.ndarray,
    rest_t: np.ndarray,
    rest_q: np.ndarray,
    row_block: np.ndarray,
    row_term: np.ndarray,
    row_base: np.ndarray,
) -> np.ndarray:
    """Lower triangle of ``Λ₂ᵀ A₂₂ Λ₂`` (upper left unset)."""
    q_rest = a22.shape[0]
    # column r of Λ₂ holds T_j[:, i] in rows base .. base + q_j
    lam = np.zeros((q_rest, rest_t.shape[1] if rest_t.shape[0] else 1))
    scalar = True
    for r in range(q_rest):
        j = row_block[r]
        if rest_q[j] != 1:
            scalar = False
        for a in range(rest_q[j]):
            lam[r, a] = rest_t[j, a, row_term[r]]
    s22 = np.empty((q_rest, q_rest))
    if scalar:
        for r in range(q_rest):
            lr = lam[r, 0]
            for c in range(r + 1):
                s22[r, c] = lr * a22[r, c] * lam[c, 0]
        return s22
    right = np.empty((q_rest, q_rest))
    for r in range(q_rest):
        for c in range(q_rest):
            base = row_base[c]
            acc = 0.0
            for b in range(rest_q[row_block[c]]):
                acc += a22[r, base + b] * lam[c, b]
            right[r, c] = acc
    for r in range(q_rest):
        base = row_base[r]
        q = rest_q[row_block[r]]
        for c in range(r + 1):
            acc = 0.0
            for a in range(q):
                acc += lam[r, a] * right[base + a, c]
            s22[r, c] = acc
    return s22


@njit(cache=True, nogil=True)
def forward(
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
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``L w = c`` for ``c`` as leading ``(L₀, q₀, k)`` and trailing ``(q_rest, k)``."""
    n_lead, q0, k = c1.shape
    q_rest = c2.shape[0]
    w1 = np.empty_like(c1)
    for m in range(n_lead):
        for col in range(k):
            for a in range(q0):
                acc = c1[m, a, col]
                for b in range(a):
                    acc -= l11[m, a, b] * w1[m, b, col]
                w1[m, a, col] = acc / l11[m, a, a]
    w2 = c2.copy()
    for m in range(n_lead):
        for p in range(lead_ptr[m], lead_ptr[m + 1]):
            qj = rest_q[pair_block[p]]
            row = pair_row[p]
            start = pair_ptr[p]
            for a in range(qj):
                for col in range(k):
                    acc = 0.0
                    for b in range(q0):
                        acc += l21[start + a * q0 + b] * w1[m, b, col]
                    w2[row + a, col] -= acc
    # column-oriented substitution: l22 is Fortran-ordered (LAPACK's), columns contiguous
    for col in range(k):
        for c in range(q_rest):
            value = w2[c, col] / l22[c, c]
            w2[c, col] = value
            if value != 0.0:
                for r in range(c + 1, q_rest):
                    w2[r, col] -= l22[r, c] * value
    return w1, w2


@njit(cache=True, nogil=True)
def backward(
    l11: np.ndarray,
    l21: np.ndarray,
    l22: np.ndarray,
    rest_q: np.ndarray,
    pair_block: np.ndarray,
    pair_row: np.ndarray,
    pair_ptr: np.ndarray,
    lead_ptr: np.ndarray,
    w1: np.ndarray,
    w2: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``Lᵀ u = w`` for ``w`` as leading ``(L₀, q₀, k)`` and trailing ``(q_rest, k)``."""
    n_lead, q0, k = w1.shape
    q_rest = w2.shape[0]
    u2 = w2.copy()
    for r in range(q_rest - 1, -1, -1):
        for col in range(k):
            acc = u2[r, col]
            for c in range(r + 1, q_rest):
                acc -= l22[c, r] * u2[c, col]
            u2[r, col] = acc / l22[r, r]
    u1 = w1.copy()
    for m in range(n_lead):
        for p in range(lead_ptr[m], lead_ptr[m + 1]):
            qj = rest_q[pair_block[p]]
            row = pair_row[p]
            start = pair_ptr[p]
            for b in range(q0):
                for col in range(k):
                    acc = 0.0
                    for a in range(qj):
                        acc += l21[start + a * q0 + b] * u2[row + a, col]
                    u1[m, b, col] -= acc
        for col in range(k):
            for a in range(q0 - 1, -1, -1):
                acc = u1[m, a, col]
                for b in range(a + 1, q0):
                    acc -= l11[m, b, a] * u1[m, b, col]
                u1[m, a, col] = acc / l11[m, a, a]
    return u1, u2


@njit(cache=True, nogil=True)
def pairs_of_pairs(
    lead_ptr: np.ndarray, pair_row: np.ndarray, q_rest: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every two pairs of one leading level, the second's rows not after the first's.

    Sorted by the first pair's row, then the second's (ties in the order
    made), so that the rank update walks the trailing block in memory order:
    two stable counting sorts, least significant key first.
    """
    total = 0
    for m in range(lead_ptr.size - 1):
        for pa in range(lead_ptr[m], lead_ptr[m + 1]):
            for pb in range(lead_ptr[m], lead_ptr[m + 1]):
                if pair_row[pb] <= pair_row[pa]:
                    total += 1
    first = np.empty(total, dtype=np.int64)
    second = np.empty(total, dtype=np.int64)
    e = 0
    for m in range(lead_ptr.size - 1):
        for pa in range(lead_ptr[m], lead_ptr[m + 1]):
            for pb in range(lead_ptr[m], lead_ptr[m + 1]):
                if pair_row[pb] <= pair_row[pa]:
                    first[e] = pa
                    second[e] = pb
                    e += 1
    for key_of_first in (False, True):
        counts = np.zeros(q_rest + 1, dtype=np.int64)
        for e in range(total):
            row = pair_row[first[e]] if key_of_first else pair_row[second[e]]
            counts[row + 1] += 1
        for r in range(q_rest):
            counts[r + 1] += counts[r]
        sorted_first = np.empty(total, dtype=np.int64)
        sorted_second = np.empty(total, dtype=np.int64)
        for e in range(total):
            row = pair_row[first[e]] if key_of_first else pair_row[second[e]]
            slot = counts[row]
            counts[row] += 1
            sorted_first[slot] = first[e]
            sorted_second[slot] = second[e]
        first, second = sorted_first, sorted_second
    return first, second


@njit(cache=True, nogil=True, error_model="numpy")
def factorize_weighted(
    weights: np.ndarray,
    t0: np.ndarray,
    rest_t: np.ndarray,
    lead_codes: np.ndarray,
    lead_x: np.ndarray,
    rest_codes: np.ndarray,
    rest_x: np.ndarray,
    rest_xoff: np.ndarray,
    rest_q: np.ndarray,
    rest_off: np.ndarray,
    pair_of: np.ndarray,
    pair_block: np.ndarray,
    pair_row: np.ndarray,
    pair_ptr: np.ndarray,
    lead_ptr: np.ndarray,
    row_block: np.ndarray,
    row_term: np.ndarray,
    row_base: np.ndarray,
    pp_a: np.ndarray,
    pp_b: np.ndarray,
    q_rest: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """``ZᵀWZ`` and the complete factor of ``ΛᵀZᵀWZΛ + I`` (``factorize_with``'s work).

    Returns ``(a11, a21, a22, l11, l21, l22, status)``; ``l22`` is
    Fortran-ordered, and ``status`` one of ``FACTOR_OK``, ``LEAD_NOT_PD``,
    ``TRAILING_NOT_PD``.
    """
    n_lead = lead_ptr.size - 1
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
    l11, l21, s22, ok = factorize(
        a11,
        a21,
        a22,
        t0,
        rest_t,
        rest_q,
        row_block,
        row_term,
        row_base,
        pair_block,
        pair_row,
        pair_ptr,
        lead_ptr,
        pp_a,
        pp_b,
    )
    l22 = np.zeros((0, 0)).T
    if not ok:
        return a11, a21, a22, l11, l21, l22, LEAD_NOT_PD
    if q_rest:
        # LAPACK's potrf, as factorize_with calls it; numba's binding raises on failure
        try:
            lower = np.linalg.cholesky(s22)
        except Exception:  # numba catches no narrower class
            return a11, a21, a22, l11, l21, l22, TRAILING_NOT_PD
        l22 = np.asfortranarray(lower)
    return a11, a21, a22, l11, l21, l22, FACTOR_OK


@njit(cache=True, nogil=True, error_model="numpy")
def log_determinant(l11: np.ndarray, l22: np.ndarray) -> float:
    """``log |L|²`` (``BlockedFactor.logdet``)."""
    n_lead, q0 = l11.shape[0], l11.shape[1]
    logs = np.empty(n_lead * q0)
    for m in range(n_lead):
        for a in range(q0):
            logs[m * q0 + a] = np.log(l11[m, a, a])
    total = 2.0 * pairwise_sum(logs, 0, logs.size)
    q_rest = l22.shape[0]
    if q_rest:
        logs2 = np.empty(q_rest)
        for r in range(q_rest):
            logs2[r] = np.log(l22[r, r])
        total += 2.0 * pairwise_sum(logs2, 0, q_rest)
    return total
