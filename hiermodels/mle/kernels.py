"""Compiled per-evaluation work of the marginal likelihood.

Every evaluation of the profiled REML/ML criterion, and every PIRLS
iteration of a GLMM, factorises ``ΛᵀZᵀWZΛ + I`` for the blocked structure
of :mod:`hiermodels.mle.blocked`: one small ``q₀ × q₀`` block per level of
the leading grouping factor, a sparse coupling made of ``q_j × q₀`` blocks
(one per pair of a trailing level and a leading level that share an
observation) and a dense trailing block. These kernels do that work in
machine code, on arrays prepared once per design, with no Python objects
built per evaluation. They are compiled by numba on first use and cached on
disk.

Conventions: a *pair* ``p`` is a coupling block between rows
``pair_row[p] : pair_row[p] + q_j`` of the trailing partition (a level of
trailing block ``j = pair_block[p]``) and leading level ``pair_lead[p]``;
its ``q_j × q₀`` values sit row-major at ``pair_ptr[p]`` of a flat array.
Pairs are sorted by leading level, and ``lead_ptr[m] : lead_ptr[m + 1]``
are the pairs of leading level ``m``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "pairs_of_pairs",
    "backward",
    "cross_products",
    "factorize",
    "forward",
    "gradient_terms",
    "pls",
    "z_transpose",
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
    triangle, sorted by their trailing rows (see ``BlockPattern``).

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
    if scalar:
        # one value per pair, at the pair's index: half the memory reads of the general loop
        for e in range(pp_a.size):
            pa = pp_a[e]
            pb = pp_b[e]
            s22[pair_row[pa], pair_row[pb]] -= l21[pa] * l21[pb]
        pp_end = 0
    else:
        pp_end = pp_a.size
    for e in range(pp_end):
        pa = pp_a[e]
        pb = pp_b[e]
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
    for r in range(q_rest):
        s22[r, r] += 1.0
        for c in range(r):
            s22[c, r] = s22[r, c]
    return l11, l21, s22, True


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
        l11, l21, c22_inv, rest_q, pair_block, pair_row, pair_ptr, lead_ptr
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
    ``block_theta`` its first entry in ``θ``. Returns the gradient and a mask
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
        lead_ptr, block_lead, block_pos, block_q, block_levels, block_theta, False, 1.0 / s2,
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
def selected_inverse(
    l11: np.ndarray,
    l21: np.ndarray,
    c22_inv: np.ndarray,
    rest_q: np.ndarray,
    pair_block: np.ndarray,
    pair_row: np.ndarray,
    pair_ptr: np.ndarray,
    lead_ptr: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The blocks of ``S⁻¹`` on the pattern of ``ZᵀZ`` outside its trailing block.

    With ``C = C₂₂⁻¹`` (``c22_inv``: its lower triangle), the coupling
    blocks are ``(S⁻¹)₁₂ = B = −L₁₁⁻ᵀL₂₁ᵀC``, needed at the pairs only, and
    the leading diagonal blocks ``L₁₁⁻ᵀL₁₁⁻¹ − B L₂₁L₁₁⁻¹``, level by level:
    each level costs one product with ``C`` restricted to its pairs' rows.
    Returns the leading ``(L₀, q₀, q₀)`` blocks and ``B`` in the flat pair
    layout of ``l21`` (trailing term major, leading term minor).
    """
    n_lead, q0 = l11.shape[0], l11.shape[1]
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
            for c in range(q0):
                c_n[i, c] = 0.0
            ri = rows[i]
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
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal blocks of ``S⁻¹`` for ``S = LLᵀ`` in blocked form, level by level.

    The leading level ``m`` gets ``L₁₁⁻ᵀL₁₁⁻¹ + Σ N_aᵀ C₂₂⁻¹ N_b`` over the
    pairs of that level (``N = L₂₁L₁₁⁻¹``); the trailing rows get the
    diagonal blocks of ``C₂₂⁻¹`` (``c22_inv``: its lower triangle). Returns
    the leading ``(L₀, q₀, q₀)`` blocks and, for every trailing row ``r``,
    the row of its block-level's diagonal block as ``(q_rest, q_max)``.
    """
    q_rest = c22_inv.shape[0]
    lead, _ = selected_inverse(l11, l21, c22_inv, rest_q, pair_block, pair_row, pair_ptr, lead_ptr)
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


# ---------------------------------------------------------------------------
# GLMMs: family quantities and penalised iteratively reweighted least squares.
#
# Used by hiermodels.mle.pirls, which documents the algorithms and mirrors the
# formulas of hiermodels.mle.response.GlmResponse. They live in this module, not
# in their own, because numba's on-disk cache of a function does not notice
# changes to the functions it calls in other modules: kept beside the
# factorisation they call, a change to either recompiles both.
# ---------------------------------------------------------------------------

#: Family and link codes of the GLMM kernels.
BINOMIAL_LOGIT = 0
BINOMIAL_PROBIT = 1
POISSON_LOG = 2
NEGATIVE_BINOMIAL_LOG = 3

#: Status codes of the GLMM kernels: success, a leading block of ``ΛᵀZᵀWZΛ + I``
#: that is not positive definite, a trailing Schur complement that is not.
FACTOR_OK = 0
LEAD_NOT_PD = 1
TRAILING_NOT_PD = 2

# As hiermodels.mle.response: keeps means away from 0 and 1, where weights vanish.
_MEAN_EPS = 1e-10
_SQRT_2PI = np.sqrt(2.0 * np.pi)


@njit(cache=True, nogil=True, error_model="numpy")
def _block_sum(values: np.ndarray, start: int, n: int) -> float:
    """numpy's sum of at most 128 contiguous values: eight running sums, then the rest."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += values[start + i]
        return res
    s = start
    r0, r1, r2, r3 = values[s], values[s + 1], values[s + 2], values[s + 3]
    r4, r5, r6, r7 = values[s + 4], values[s + 5], values[s + 6], values[s + 7]
    i = 8
    while i < n - (n % 8):
        r0 += values[s + i]
        r1 += values[s + i + 1]
        r2 += values[s + i + 2]
        r3 += values[s + i + 3]
        r4 += values[s + i + 4]
        r5 += values[s + i + 5]
        r6 += values[s + i + 6]
        r7 += values[s + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += values[s + i]
        i += 1
    return res


@njit(cache=True, nogil=True, error_model="numpy")
def pairwise_sum(values: np.ndarray, start: int, n: int) -> float:
    """``values[start : start + n].sum()`` by numpy's pairwise summation.

    The same additions in the same order as ``numpy.sum`` of a contiguous
    array, so that a sum of identical terms is identical to the last bit:
    halves (the first a multiple of 8 long) summed separately and added,
    down to blocks of 128. numpy recurses; this walks the same tree with a
    stack, since numba's disk cache cannot hold recursive functions.
    """
    if n <= 128:
        return _block_sum(values, start, n)
    # the tree is at most log2(n / 128) deep: 64 levels cover any array
    seg_start = np.empty(192, dtype=np.int64)
    seg_n = np.empty(192, dtype=np.int64)
    seg_open = np.empty(192, dtype=np.bool_)
    partial = np.empty(192)
    top = 0
    done = 0
    seg_start[0], seg_n[0], seg_open[0] = start, n, False
    top = 1
    while top:
        top -= 1
        s, m, expanded = seg_start[top], seg_n[top], seg_open[top]
        if m <= 128:
            partial[done] = _block_sum(values, s, m)
            done += 1
        elif expanded:
            done -= 1
            partial[done - 1] = partial[done - 1] + partial[done]
        else:
            half = m // 2
            half -= half % 8
            # combine after both halves; the first half is summed first
            seg_start[top], seg_n[top], seg_open[top] = s, m, True
            seg_start[top + 1], seg_n[top + 1], seg_open[top + 1] = s + half, m - half, False
            seg_start[top + 2], seg_n[top + 2], seg_open[top + 2] = s, half, False
            top += 3
    return partial[0]


# Cephes' rational approximations of erf and erfc (Moshier; as SciPy's xsf has them), so
# that the probit link's means are scipy.special.ndtr's to the last bit: libm's erfc
# differs in the last bits, enough to move where PIRLS's Fisher scoring stops.
_ERFC_P = np.array(
    [
        2.46196981473530512524e-10,
        5.64189564831068821977e-1,
        7.46321056442269912687e0,
        4.86371970985681366614e1,
        1.96520832956077098242e2,
        5.26445194995477358631e2,
        9.34528527171957607540e2,
        1.02755188689515710272e3,
        5.57535335369399327526e2,
    ]
)
_ERFC_Q = np.array(
    [
        1.32281951154744992508e1,
        8.67072140885989742329e1,
        3.54937778887819891062e2,
        9.75708501743205489753e2,
        1.82390916687909736289e3,
        2.24633760818710981792e3,
        1.65666309194161350182e3,
        5.57535340817727675546e2,
    ]
)
_ERFC_R = np.array(
    [
        5.64189583547755073984e-1,
        1.27536670759978104416e0,
        5.01905042251180477414e0,
        6.16021097993053585195e0,
        7.40974269950448939160e0,
        2.97886665372100240670e0,
    ]
)
_ERFC_S = np.array(
    [
        2.26052863220117276590e0,
        9.39603524938001434673e0,
        1.20489539808096656605e1,
        1.70814450747565897222e1,
        9.60896809063285878198e0,
        3.36907645100081516050e0,
    ]
)
_ERF_T = np.array(
    [
        9.60497373987051638749e0,
        9.00260197203842689217e1,
        2.23200534594684319226e3,
        7.00332514112805075473e3,
        5.55923013010394962768e4,
    ]
)
_ERF_U = np.array(
    [
        3.35617141647503099647e1,
        5.21357949780152679795e2,
        4.59432382970980127987e3,
        2.26290000613890934246e4,
        4.92673942608635921086e4,
    ]
)
_MAXLOG = 7.09782712893383996843e2


@njit(cache=True, nogil=True, error_model="numpy")
def _polevl(x: float, coef: np.ndarray) -> float:
    """Cephes' ``polevl``: the polynomial with coefficients ``coef`` (highest first)."""
    ans = coef[0]
    for i in range(1, coef.size):
        ans = ans * x + coef[i]
    return ans


@njit(cache=True, nogil=True, error_model="numpy")
def _p1evl(x: float, coef: np.ndarray) -> float:
    """Cephes' ``p1evl``: as :func:`_polevl` with a leading coefficient of 1."""
    ans = x + coef[0]
    for i in range(1, coef.size):
        ans = ans * x + coef[i]
    return ans


@njit(cache=True, nogil=True, error_model="numpy")
def _ndtr(a: float) -> float:
    """Standard normal CDF, as scipy's ``ndtr`` (cephes) evaluates it.

    Only the branches ``ndtr`` reaches: ``erf`` of ``|x| < 1`` and ``erfc``
    of ``x ≥ 1`` (cephes' mutual recursion between the two, which numba's
    disk cache cannot hold, is never entered from there).
    """
    x = a * 0.70710678118654752440
    z = abs(x)
    if z < 1.0:
        zz = x * x
        return 0.5 + 0.5 * (x * _polevl(zz, _ERF_T) / _p1evl(zz, _ERF_U))
    w = -z * z
    if w < -_MAXLOG:
        y = 0.0
    else:
        w = np.exp(w)
        if z < 8.0:
            y = (w * _polevl(z, _ERFC_P)) / _p1evl(z, _ERFC_Q)
        else:
            y = (w * _polevl(z, _ERFC_R)) / _p1evl(z, _ERFC_S)
    y = 0.5 * y
    return 1.0 - y if x > 0.0 else y


@njit(cache=True, nogil=True, error_model="numpy")
def _clipped(value: float) -> float:
    """``numpy.clip(value, ε, 1 − ε)``, NaN kept."""
    if value < _MEAN_EPS:
        return _MEAN_EPS
    if value > 1.0 - _MEAN_EPS:
        return 1.0 - _MEAN_EPS
    return value


@njit(cache=True, nogil=True, error_model="numpy")
def glm_mean(code: int, eta: float) -> float:
    """Mean per trial ``μ = g⁻¹(η)`` (``GlmResponse.mean``)."""
    if code == BINOMIAL_LOGIT:
        return _clipped(1.0 / (1.0 + np.exp(-eta)))
    if code == BINOMIAL_PROBIT:
        return _clipped(_ndtr(eta))
    return np.exp(eta)


@njit(cache=True, nogil=True, error_model="numpy")
def _probit_observed(y: float, trials: float, eta: float) -> tuple[float, float, float]:
    """Probit score, observed information and its slope in ``η`` (``GlmResponse``'s).

    With ``r₁ = φ/Φ``, ``r₀ = φ/(1 − Φ)``, ``A = η + r₁``, ``B = r₀ − η``:
    score ``y r₁ − f r₀``, weight ``y r₁A + f r₀B`` and slope
    ``y r₁(1 − A(A + r₁)) + f r₀(B(B + r₀) − 1)`` (``f = n − y``); all 0
    where the mean is clipped and the log-likelihood flat.
    """
    upper = _ndtr(eta)
    lower = _ndtr(-eta)
    if upper < _MEAN_EPS or lower < _MEAN_EPS:
        return 0.0, 0.0, 0.0
    density = np.exp(-0.5 * eta * eta) / _SQRT_2PI
    r1 = density / upper
    r0 = density / lower
    fails = trials - y
    a = eta + r1
    b = r0 - eta
    score = y * r1 - fails * r0
    weight = y * r1 * a + fails * r0 * b
    slope = y * r1 * (1.0 - a * (a + r1)) + fails * r0 * (b * (b + r0) - 1.0)
    return score, weight, slope


@njit(cache=True, nogil=True, error_model="numpy")
def glm_working(
    code: int,
    y: np.ndarray,
    trials: np.ndarray,
    alpha: float,
    observed: bool,
    eta: np.ndarray,
    weights: np.ndarray,
    resid: np.ndarray,
) -> None:
    """Working weights and residuals at ``η`` (``GlmResponse.working``), into the last two."""
    for i in range(eta.size):
        mu = glm_mean(code, eta[i])
        if code == BINOMIAL_PROBIT and observed:
            score, weight, _ = _probit_observed(y[i], trials[i], eta[i])
            weights[i] = weight
            resid[i] = score / weight if weight > 0.0 else 0.0
            continue
        if code == NEGATIVE_BINOMIAL_LOG:
            m = mu if mu >= _MEAN_EPS or mu != mu else _MEAN_EPS
            ratio = m / alpha
            if observed:
                y_ratio = y[i] / alpha
                weights[i] = m * (1.0 + y_ratio) / ((1.0 + ratio) * (1.0 + ratio))
                resid[i] = (y[i] - m) * (1.0 + ratio) / (m * (1.0 + y_ratio))
            else:
                weights[i] = m / (1.0 + ratio)
                resid[i] = (y[i] - m) / m
            continue
        if code == BINOMIAL_LOGIT:
            d = mu * (1.0 - mu)
        elif code == BINOMIAL_PROBIT:
            d = np.exp(-(eta[i] * eta[i]) / 2.0) / _SQRT_2PI
            if d < _MEAN_EPS:
                d = _MEAN_EPS
        else:
            d = mu if mu >= _MEAN_EPS or mu != mu else _MEAN_EPS
        if code == POISSON_LOG:
            variance = mu if mu >= _MEAN_EPS or mu != mu else _MEAN_EPS
        else:
            variance = mu * (1.0 - mu)
        weights[i] = trials[i] * (d * d) / variance
        proportion = y[i] / trials[i] if trials[i] > 0.0 else 0.0
        resid[i] = (proportion - mu) / d


@njit(cache=True, nogil=True, error_model="numpy")
def _xlogy(x: float, y: float) -> float:
    """``x log y``, 0 where ``x = 0`` (scipy's ``xlogy``)."""
    if x == 0.0 and y == y:
        return 0.0
    return x * np.log(y)


@njit(cache=True, nogil=True, error_model="numpy")
def glm_deviance(
    code: int,
    y: np.ndarray,
    trials: np.ndarray,
    log_constant: np.ndarray,
    alpha: float,
    eta: np.ndarray,
    terms: np.ndarray,
) -> float:
    """``−2 Σ log p(y | η)``, constants included (``GlmResponse.deviance``); ``terms``: work."""
    finite_alpha = alpha < np.inf
    for i in range(eta.size):
        mu = glm_mean(code, eta[i])
        if code == BINOMIAL_LOGIT or code == BINOMIAL_PROBIT:
            failures = trials[i] - y[i]
            tail = 0.0 if failures == 0.0 and mu == mu else failures * np.log1p(-mu)
            terms[i] = log_constant[i] + _xlogy(y[i], mu) + tail
        elif mu == np.inf:
            terms[i] = -np.inf
        elif code == NEGATIVE_BINOMIAL_LOG and finite_alpha:
            terms[i] = log_constant[i] + _xlogy(y[i], mu) - (y[i] + alpha) * np.log1p(mu / alpha)
        else:
            terms[i] = log_constant[i] + _xlogy(y[i], mu) - mu
    return -2.0 * pairwise_sum(terms, 0, terms.size)


@njit(cache=True, nogil=True, error_model="numpy")
def glm_residual_deviance(
    code: int, y: np.ndarray, trials: np.ndarray, alpha: float, eta: np.ndarray, terms: np.ndarray
) -> float:
    """Sum of squared deviance residuals (``GlmResponse.residual_deviance``)."""
    for i in range(eta.size):
        mu = glm_mean(code, eta[i])
        if code == BINOMIAL_LOGIT or code == BINOMIAL_PROBIT:
            prop = y[i] / trials[i] if trials[i] > 0.0 else 0.0
            terms[i] = trials[i] * (
                _xlogy(prop, prop / mu) + _xlogy(1.0 - prop, (1.0 - prop) / (1.0 - mu))
            )
        elif code == NEGATIVE_BINOMIAL_LOG and alpha < np.inf:
            saturated = (y[i] + alpha) * np.log1p((y[i] - mu) / (mu + alpha))
            terms[i] = _xlogy(y[i], y[i] / mu) - saturated
        else:
            terms[i] = _xlogy(y[i], y[i] / mu) - (y[i] - mu)
    return 2.0 * pairwise_sum(terms, 0, terms.size)


@njit(cache=True, nogil=True, error_model="numpy")
def sum_of_squares(u1: np.ndarray, u2: np.ndarray) -> float:
    """``‖u‖²`` summed as numpy sums each part."""
    flat = u1.ravel()
    sq1 = flat * flat
    sq2 = u2 * u2
    return pairwise_sum(sq1, 0, sq1.size) + pairwise_sum(sq2, 0, sq2.size)


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


@njit(cache=True, nogil=True, error_model="numpy")
def _factor_at(
    structure: tuple, weights: np.ndarray, t0: np.ndarray, rest_t: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """:func:`factorize_weighted` with the pattern arrays as one tuple (see ``pirls``)."""
    (
        lead_codes,
        lead_x,
        rest_codes,
        rest_x,
        rest_xoff,
        rest_q,
        rest_off,
        pair_of,
        pair_block,
        pair_row,
        pair_ptr,
        lead_ptr,
        row_block,
        row_term,
        row_base,
        pp_a,
        pp_b,
        q_rest,
    ) = structure
    return factorize_weighted(
        weights,
        t0,
        rest_t,
        lead_codes,
        lead_x,
        rest_codes,
        rest_x,
        rest_xoff,
        rest_q,
        rest_off,
        pair_of,
        pair_block,
        pair_row,
        pair_ptr,
        lead_ptr,
        row_block,
        row_term,
        row_base,
        pp_a,
        pp_b,
        q_rest,
    )


@njit(cache=True, nogil=True, error_model="numpy")
def _predict(
    structure: tuple,
    t0: np.ndarray,
    rest_t: np.ndarray,
    fixed: np.ndarray,
    u1: np.ndarray,
    u2: np.ndarray,
    eta: np.ndarray,
) -> None:
    """:func:`linear_predictor` with the pattern arrays as one tuple."""
    lead_codes, lead_x, rest_codes, rest_x, rest_xoff, rest_q, rest_off = structure[:7]
    row_block, row_term, row_base = structure[12:15]
    linear_predictor(
        fixed,
        lead_codes,
        lead_x,
        rest_codes,
        rest_x,
        rest_xoff,
        rest_q,
        rest_off,
        row_block,
        row_term,
        row_base,
        t0,
        rest_t,
        u1,
        u2,
        eta,
    )


@njit(cache=True, nogil=True, error_model="numpy")
def _lambda_t_z_transpose(
    structure: tuple,
    t0: np.ndarray,
    rest_t: np.ndarray,
    mat: np.ndarray,
    weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``ΛᵀZᵀW mat`` as leading ``(L₀, q₀, k)`` and trailing ``(q_rest, k)`` parts."""
    lead_codes, lead_x, rest_codes, rest_x, rest_xoff, rest_q, rest_off = structure[:7]
    lead_ptr = structure[11]
    row_block, row_term, row_base = structure[12:15]
    q_rest = structure[17]
    lead, rest = z_transpose(
        lead_codes,
        lead_x,
        rest_codes,
        rest_x,
        rest_xoff,
        rest_q,
        rest_off,
        lead_ptr.size - 1,
        q_rest,
        mat,
        weights,
    )
    c1 = lambda_t_lead(t0, lead)
    c2 = lambda_t_rest(rest_t, rest_q, row_block, row_term, row_base, rest)
    return c1, c2


@njit(cache=True, nogil=True, error_model="numpy")
def _largest(step1: np.ndarray, step2: np.ndarray) -> float:
    """Largest absolute entry of a step; NaN if it has one."""
    largest = 0.0
    for v in step1.ravel():
        if v != v:
            return v
        largest = max(largest, abs(v))
    for v in step2:
        if v != v:
            return v
        largest = max(largest, abs(v))
    return largest


@njit(cache=True, nogil=True, error_model="numpy")
def pirls(
    structure: tuple,
    family: tuple,
    t0: np.ndarray,
    rest_t: np.ndarray,
    fixed: np.ndarray,
    u1_start: np.ndarray,
    u2_start: np.ndarray,
    newton: bool,
    tolerance: float,
    step_tolerance: float,
    max_iter: int,
    max_halvings: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int, int]:
    """PIRLS over ``u`` at fixed ``θ`` and ``Xβ + offset`` (see ``pirls.conditional_mode``).

    Returns ``(u1, u2, eta, l11, l21, l22, deviance, iterations, status)``.
    """
    code, y, trials, log_constant, alpha, observed = family
    n = fixed.size
    pat = structure
    u1 = u1_start.copy()
    u2 = u2_start.copy()
    eta = np.empty(n)
    cand_eta = np.empty(n)
    terms = np.empty(n)
    weights = np.empty(n)
    resid = np.empty(n)
    z = np.empty((n, 1))
    _predict(pat, t0, rest_t, fixed, u1, u2, eta)
    pdev = glm_deviance(code, y, trials, log_constant, alpha, eta, terms) + sum_of_squares(u1, u2)
    (lead_ptr, rest_q, pair_block, pair_row, pair_ptr) = (
        pat[11],
        pat[5],
        pat[8],
        pat[9],
        pat[10],
    )
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        glm_working(code, y, trials, alpha, observed, eta, weights, resid)
        _, _, _, l11, l21, l22, status = _factor_at(pat, weights, t0, rest_t)
        if status != FACTOR_OK:
            return u1, u2, eta, l11, l21, l22, np.nan, iterations, status
        for i in range(n):
            z[i, 0] = eta[i] - fixed[i] + resid[i]
        c1, c2 = _lambda_t_z_transpose(pat, t0, rest_t, z, weights)
        w1, w2 = forward(l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, c1, c2)
        new1, new2 = backward(
            l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, w1, w2
        )
        step1 = new1[:, :, 0] - u1
        step2 = new2[:, 0] - u2
        accepted = False
        cand1, cand2, cand_pdev = u1, u2, pdev
        for k in range(max_halvings):
            scale = 2.0**k
            cand1 = u1 + step1 / scale
            cand2 = u2 + step2 / scale
            _predict(pat, t0, rest_t, fixed, cand1, cand2, cand_eta)
            cand_pdev = glm_deviance(
                code, y, trials, log_constant, alpha, cand_eta, terms
            ) + sum_of_squares(cand1, cand2)
            if cand_pdev <= pdev + 1e-12 * abs(pdev):
                accepted = True
                break
        if not accepted:
            break
        change = pdev - cand_pdev
        u1, u2, pdev = cand1, cand2, cand_pdev
        eta, cand_eta = cand_eta, eta
        if change < tolerance * (abs(pdev) + 1.0) and (
            newton or _largest(step1, step2) < step_tolerance
        ):
            break
    glm_working(code, y, trials, alpha, observed, eta, weights, resid)
    _, _, _, l11, l21, l22, status = _factor_at(pat, weights, t0, rest_t)
    if status != FACTOR_OK:
        return u1, u2, eta, l11, l21, l22, np.nan, iterations, status
    deviance = pdev + log_determinant(l11, l22)
    return u1, u2, eta, l11, l21, l22, deviance, iterations, FACTOR_OK


@njit(cache=True, nogil=True, error_model="numpy")
def _fixed_part(x: np.ndarray, beta: np.ndarray, offset: np.ndarray, out: np.ndarray) -> None:
    """``Xβ + offset`` into ``out``."""
    n, p = x.shape
    for i in range(n):
        acc = 0.0
        for j in range(p):
            acc += x[i, j] * beta[j]
        out[i] = acc + offset[i]


@njit(cache=True, nogil=True, error_model="numpy")
def pirls_joint(
    structure: tuple,
    family: tuple,
    t0: np.ndarray,
    rest_t: np.ndarray,
    x: np.ndarray,
    offset: np.ndarray,
    beta_start: np.ndarray,
    u1_start: np.ndarray,
    u2_start: np.ndarray,
    tolerance: float,
    max_iter: int,
    max_halvings: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """PIRLS over ``(u, β)`` together (see ``pirls.joint_mode``).

    Returns ``(beta, u1, u2, iterations)``.
    """
    code, y, trials, log_constant, alpha, observed = family
    n, p = x.shape
    pat = structure
    beta = beta_start.copy()
    u1 = u1_start.copy()
    u2 = u2_start.copy()
    fixed = np.empty(n)
    eta = np.empty(n)
    cand_eta = np.empty(n)
    terms = np.empty(n)
    weights = np.empty(n)
    resid = np.empty(n)
    xz = np.empty((n, p + 1))
    xy_cross = np.empty((p + 1, p + 1))
    rest_q, pair_block, pair_row, pair_ptr, lead_ptr = pat[5], pat[8], pat[9], pat[10], pat[11]
    _fixed_part(x, beta, offset, fixed)
    _predict(pat, t0, rest_t, fixed, u1, u2, eta)
    pdev = glm_deviance(code, y, trials, log_constant, alpha, eta, terms) + sum_of_squares(u1, u2)
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        glm_working(code, y, trials, alpha, observed, eta, weights, resid)
        for i in range(n):
            for j in range(p):
                xz[i, j] = x[i, j]
            xz[i, p] = eta[i] - offset[i] + resid[i]
        _, _, _, l11, l21, l22, status = _factor_at(pat, weights, t0, rest_t)
        if status != FACTOR_OK:
            # a working response fitted exactly (e.g. counts nearly all zero) leaves a
            # system round-off makes indefinite: the joint step is unavailable, and
            # PIRLS over u at the current β still is
            break
        c1, c2 = _lambda_t_z_transpose(pat, t0, rest_t, xz, weights)
        for a in range(p + 1):
            for b in range(a + 1):
                acc = 0.0
                for i in range(n):
                    acc += xz[i, a] * (xz[i, b] * weights[i])
                xy_cross[a, b] = acc
                xy_cross[b, a] = acc
        _, _, _, sol_beta, sol1, sol2, ok = pls(
            l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, c1, c2, xy_cross
        )
        if not ok:
            break
        d_beta = sol_beta - beta
        d1 = sol1 - u1
        d2 = sol2 - u2
        cb, cand1, cand2, cand = beta, u1, u2, pdev
        for k in range(max_halvings):
            scale = 2.0**k
            cb = beta + d_beta / scale
            cand1 = u1 + d1 / scale
            cand2 = u2 + d2 / scale
            _fixed_part(x, cb, offset, fixed)
            _predict(pat, t0, rest_t, fixed, cand1, cand2, cand_eta)
            cand = glm_deviance(
                code, y, trials, log_constant, alpha, cand_eta, terms
            ) + sum_of_squares(cand1, cand2)
            if cand <= pdev + 1e-12 * abs(pdev):
                break
        change = pdev - cand
        beta, u1, u2 = cb, cand1, cand2
        eta, cand_eta = cand_eta, eta
        # the last halving is taken even when it does not descend, but the penalised
        # deviance kept is the lower one (Python's min(cand, pdev))
        pdev = pdev if pdev < cand else cand
        if abs(change) < tolerance * (abs(pdev) + 1.0):
            break
    return beta, u1, u2, iterations


@njit(cache=True, nogil=True, error_model="numpy")
def pirls_glmer(
    structure: tuple,
    family: tuple,
    t0: np.ndarray,
    rest_t: np.ndarray,
    fixed: np.ndarray,
    start_eta: np.ndarray,
    tolerance: float,
    max_iter: int,
    max_halvings: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, int, int]:
    """glmer's PIRLS over ``u`` (see ``pirls.glmer_mode``).

    Returns ``(u1, u2, eta, l11, l21, l22, deviance, iterations, status)``.
    """
    code, y, trials, log_constant, alpha, observed = family
    n = fixed.size
    pat = structure
    rest_q, pair_block, pair_row, pair_ptr, lead_ptr = pat[5], pat[8], pat[9], pat[10], pat[11]
    n_lead, q0 = lead_ptr.size - 1, pat[1].shape[1]
    u1 = np.zeros((n_lead, q0))
    u2 = np.zeros(pat[17])
    eta = start_eta.copy()
    cand_eta = np.empty(n)
    terms = np.empty(n)
    weights = np.empty(n)
    resid = np.empty(n)
    z = np.empty((n, 1))
    previous = np.inf
    l11 = np.zeros((n_lead, q0, q0))
    l21 = np.zeros(0)
    l22 = np.zeros((0, 0)).T
    iteration = 0
    while iteration < max_iter:
        iteration += 1
        glm_working(code, y, trials, alpha, observed, eta, weights, resid)
        _, _, _, l11, l21, l22, status = _factor_at(pat, weights, t0, rest_t)
        if status != FACTOR_OK:
            return u1, u2, eta, l11, l21, l22, np.nan, iteration, status
        for i in range(n):
            z[i, 0] = eta[i] - fixed[i] + resid[i]
        c1, c2 = _lambda_t_z_transpose(pat, t0, rest_t, z, weights)
        w1, w2 = forward(l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, c1, c2)
        new1, new2 = backward(
            l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, w1, w2
        )
        step1 = new1[:, :, 0] - u1
        step2 = new2[:, 0] - u2
        cand1, cand2, pdev = u1, u2, previous
        for k in range(max_halvings):
            scale = 2.0**k
            cand1 = u1 + step1 / scale
            cand2 = u2 + step2 / scale
            _predict(pat, t0, rest_t, fixed, cand1, cand2, cand_eta)
            pdev = glm_residual_deviance(code, y, trials, alpha, cand_eta, terms) + sum_of_squares(
                cand1, cand2
            )
            if pdev <= previous:
                break
        u1, u2 = cand1, cand2
        eta, cand_eta = cand_eta, eta
        if abs((previous - pdev) / pdev) < tolerance:
            break
        previous = pdev
    deviance = (
        glm_deviance(code, y, trials, log_constant, alpha, eta, terms)
        + sum_of_squares(u1, u2)
        + log_determinant(l11, l22)
    )
    return u1, u2, eta, l11, l21, l22, deviance, iteration, FACTOR_OK


# ---------------------------------------------------------------------------
# The gradient of the Laplace deviance in (θ, β).
# ---------------------------------------------------------------------------


@njit(cache=True, nogil=True, error_model="numpy")
def glm_derivatives(
    code: int,
    y: np.ndarray,
    trials: np.ndarray,
    alpha: float,
    eta: np.ndarray,
    first: np.ndarray,
    weights: np.ndarray,
    slope: np.ndarray,
) -> None:
    """``∂D/∂η``, the Newton weight ``½ ∂²D/∂η²`` and its slope ``∂w/∂η``, per observation.

    ``D = −2 log p(y | η)``. For the logit and log links of the binomial and
    Poisson families, and for the probit link and the negative binomial with
    the observed information, the weight is PIRLS's (:func:`glm_working`).
    """
    for i in range(eta.size):
        mu = glm_mean(code, eta[i])
        if code == BINOMIAL_LOGIT:
            variance = mu * (1.0 - mu)
            first[i] = -2.0 * (y[i] - trials[i] * mu)
            weights[i] = trials[i] * variance
            slope[i] = trials[i] * variance * (1.0 - 2.0 * mu)
        elif code == POISSON_LOG or code == NEGATIVE_BINOMIAL_LOG:
            floored = mu < _MEAN_EPS
            m = _MEAN_EPS if floored else mu
            ratio = m / alpha
            y_ratio = y[i] / alpha
            first[i] = -2.0 * (y[i] - m) / (1.0 + ratio)
            weights[i] = m * (1.0 + y_ratio) / ((1.0 + ratio) * (1.0 + ratio))
            slope[i] = 0.0 if floored else m * (1.0 + y_ratio) * (1.0 - ratio) / (1.0 + ratio) ** 3
        else:
            score, weight, change = _probit_observed(y[i], trials[i], eta[i])
            first[i] = -2.0 * score
            weights[i] = weight
            slope[i] = change


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
        l11, l21, c22_inv, rest_q, pair_block, pair_row, pair_ptr, lead_ptr
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
