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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def _cholesky_small(s: np.ndarray, out: np.ndarray) -> bool:
    """Lower Cholesky factor of a small SPD matrix into ``out``; False if not PD."""
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


@njit(cache=True)
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
        if not _cholesky_small(s11, l11[m]):
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
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
    if not _cholesky_small(schur, lower):
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
    r1 = np.empty((n_lead, q0, 1))
    for m in range(n_lead):
        for t in range(q0):
            acc = w1[m, t, p]
            for b in range(p):
                acc -= w1[m, t, b] * beta[b]
            r1[m, t, 0] = acc
    r2 = np.empty((w2.shape[0], 1))
    for r in range(w2.shape[0]):
        acc = w2[r, p]
        for b in range(p):
            acc -= w2[r, b] * beta[b]
        r2[r, 0] = acc
    u1, u2 = backward(l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, r1, r2)
    return w1, w2, upper, beta, u1[:, :, 0], u2[:, 0], True


@njit(cache=True)
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
    pp_a: np.ndarray,
    pp_b: np.ndarray,
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
    inv11 = np.zeros((q0, q0))
    coupling = np.zeros(l21.size)
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
    for m in range(n_lead):
        # L₁₁⁻¹ of this level
        for a in range(q0):
            for b in range(q0):
                inv11[a, b] = 0.0
        for col in range(q0):
            for a in range(q0):
                acc = 1.0 if a == col else 0.0
                for b in range(a):
                    acc -= l11[m, a, b] * inv11[b, col]
                inv11[a, col] = acc / l11[m, a, a]
        for a in range(q0):
            for b in range(q0):
                acc = 0.0
                for c in range(q0):
                    acc += inv11[c, a] * inv11[c, b]
                s_lead[a, b] += acc
                acc = 0.0
                for c in range(n_v):
                    acc += v1[m, a, c] * v1[m, b, c]
                v_lead[a, b] += acc
                z_lead[a, b] += ztr1[m, a] * u1[m, b]
        # N_p = L21_p L11⁻¹ for the pairs of this level
        for p in range(lead_ptr[m], lead_ptr[m + 1]):
            start = pair_ptr[p]
            for a in range(rest_q[pair_block[p]]):
                for x in range(q0):
                    acc = 0.0
                    for c in range(x, q0):
                        acc += l21[start + a * q0 + c] * inv11[c, x]
                    coupling[start + a * q0 + x] = acc
    # the leading blocks of S⁻¹ gain Σ N_aᵀ C₂₂⁻¹ N_b over the pairs of each level
    for e in range(pp_a.size):
        pa = pp_a[e]
        pb = pp_b[e]
        qa = rest_q[pair_block[pa]]
        qb = rest_q[pair_block[pb]]
        ra = pair_row[pa]
        rb = pair_row[pb]
        sa = pair_ptr[pa]
        sb = pair_ptr[pb]
        twice = pa != pb
        for x in range(q0):
            for y in range(q0):
                acc = 0.0
                for a in range(qa):
                    na = coupling[sa + a * q0 + x]
                    for b in range(qb):
                        # only the lower triangle of C₂₂⁻¹ is filled
                        i, j = ra + a, rb + b
                        inv = c22_inv[i, j] if i >= j else c22_inv[j, i]
                        acc += na * inv * coupling[sb + b * q0 + y]
                s_lead[x, y] += acc
                if twice:
                    s_lead[y, x] += acc
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


@njit(cache=True)
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


@njit(cache=True)
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
    pp_a: np.ndarray,
    pp_b: np.ndarray,
    block_lead: np.ndarray,
    block_pos: np.ndarray,
    block_q: np.ndarray,
    block_levels: np.ndarray,
    block_theta: np.ndarray,
    reml: bool,
    nobs: int,
    singular_tolerance: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Analytic gradient of the profiled REML/ML criterion (see ``LmmDeviance``).

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
    resid_lead = np.empty((n_lead, q0))
    for m in range(n_lead):
        for a in range(q0):
            acc = zt_xy_lead[m, a, p]
            for b in range(p):
                acc -= zt_xy_lead[m, a, b] * beta[b]
            resid_lead[m, a] = acc
    resid_rest = np.empty(q_rest)
    for r in range(q_rest):
        acc = zt_xy_rest[r, p]
        for b in range(p):
            acc -= zt_xy_rest[r, b] * beta[b]
        resid_rest[r] = acc
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
        pp_a,
        pp_b,
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
    pwrss = upper[p, p] ** 2
    weight = 2.0 * ((nobs - p) if reml else nobs) / pwrss
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


@njit(cache=True)
def pairs_of_pairs(lead_ptr: np.ndarray, pair_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every two pairs of one leading level, the second's rows not after the first's."""
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
    return first, second


@njit(cache=True)
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
    pp_a: np.ndarray,
    pp_b: np.ndarray,
    pair_lead: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Diagonal blocks of ``S⁻¹`` for ``S = LLᵀ`` in blocked form, level by level.

    The leading level ``m`` gets ``L₁₁⁻ᵀL₁₁⁻¹ + Σ N_aᵀ C₂₂⁻¹ N_b`` over the
    pairs of that level (``N = L₂₁L₁₁⁻¹``); the trailing rows get the
    diagonal blocks of ``C₂₂⁻¹`` (``c22_inv``: its lower triangle). Returns
    the leading ``(L₀, q₀, q₀)`` blocks and, for every trailing row ``r``,
    the row of its block-level's diagonal block as ``(q_rest, q_max)``.
    """
    n_lead, q0 = l11.shape[0], l11.shape[1]
    q_rest = c22_inv.shape[0]
    lead = np.zeros((n_lead, q0, q0))
    inv11 = np.zeros((q0, q0))
    coupling = np.zeros(l21.size)
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
                for c in range(q0):
                    acc += inv11[c, a] * inv11[c, b]
                lead[m, a, b] = acc
        for p in range(lead_ptr[m], lead_ptr[m + 1]):
            start = pair_ptr[p]
            for a in range(rest_q[pair_block[p]]):
                for x in range(q0):
                    acc = 0.0
                    for c in range(x, q0):
                        acc += l21[start + a * q0 + c] * inv11[c, x]
                    coupling[start + a * q0 + x] = acc
    for e in range(pp_a.size):
        pa = pp_a[e]
        pb = pp_b[e]
        m = pair_lead[pa]
        qa = rest_q[pair_block[pa]]
        qb = rest_q[pair_block[pb]]
        ra = pair_row[pa]
        rb = pair_row[pb]
        sa = pair_ptr[pa]
        sb = pair_ptr[pb]
        twice = pa != pb
        for x in range(q0):
            for y in range(q0):
                acc = 0.0
                for a in range(qa):
                    na = coupling[sa + a * q0 + x]
                    for b in range(qb):
                        i, j = ra + a, rb + b
                        inv = c22_inv[i, j] if i >= j else c22_inv[j, i]
                        acc += na * inv * coupling[sb + b * q0 + y]
                lead[m, x, y] += acc
                if twice:
                    lead[m, y, x] += acc
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


@njit(cache=True)
def lmm_value_and_gradient(
    a11: np.ndarray,
    a21: np.ndarray,
    a22: np.ndarray,
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
    pp_a: np.ndarray,
    pp_b: np.ndarray,
    block_lead: np.ndarray,
    block_pos: np.ndarray,
    block_q: np.ndarray,
    block_levels: np.ndarray,
    block_theta: np.ndarray,
    reml: bool,
    nobs: int,
    singular_tolerance: float,
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, int]:
    """Factorisation, PLS and gradient at one ``θ`` in a single call, for small models.

    The same kernels as the separate path, with the trailing block's dense
    factor and inverse computed here rather than by SciPy's LAPACK: for a
    trailing partition of a few hundred rows, one compiled call costs less
    than the Python between several. Returns ``(logdet_l, upper, gradient,
    differenced, status)``; ``status`` is 0, or 1 / 2 when ``ΛᵀZᵀZΛ + I`` /
    the fixed-effects Schur complement is not positive definite.
    """
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
    k = xy_cross.shape[0]
    n_theta = block_theta[-1]
    if not ok:
        return 0.0, np.zeros((k, k)), np.zeros(n_theta), np.zeros(n_theta, np.bool_), 1
    q_rest = s22.shape[0]
    l22 = np.zeros((q_rest, q_rest))
    if q_rest:
        if not _cholesky_small(s22, l22):
            return 0.0, np.zeros((k, k)), np.zeros(n_theta), np.zeros(n_theta, np.bool_), 1
    w1, w2, upper, beta, u1, u2, logdet, ok2 = solve_lmm(
        l11,
        l21,
        l22,
        zt_xy_lead,
        zt_xy_rest,
        xy_cross,
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
    )
    if not ok2:
        return logdet, upper, np.zeros(n_theta), np.zeros(n_theta, np.bool_), 2
    # lower triangle of C₂₂⁻¹ = L₂₂⁻ᵀ L₂₂⁻¹
    inv_l = np.zeros((q_rest, q_rest))
    for col in range(q_rest):
        inv_l[col, col] = 1.0 / l22[col, col]
        for r in range(col + 1, q_rest):
            acc = 0.0
            for c in range(col, r):
                acc -= l22[r, c] * inv_l[c, col]
            inv_l[r, col] = acc / l22[r, r]
    c22_inv = np.zeros((q_rest, q_rest))
    for i in range(q_rest):
        for j in range(i + 1):
            acc = 0.0
            for r in range(i, q_rest):
                acc += inv_l[r, i] * inv_l[r, j]
            c22_inv[i, j] = acc
    grad, differenced = lmm_gradient(
        l11,
        l21,
        l22,
        c22_inv,
        w1,
        w2,
        upper,
        beta,
        u1,
        u2,
        a11,
        a21,
        a22,
        zt_xy_lead,
        zt_xy_rest,
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
        block_lead,
        block_pos,
        block_q,
        block_levels,
        block_theta,
        reml,
        nobs,
        singular_tolerance,
    )
    return logdet, upper, grad, differenced, 0


@njit(cache=True)
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
