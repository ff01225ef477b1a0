"""Penalised iteratively reweighted least squares of a GLMM, in one compiled call.

The conditional mode over ``u`` at fixed ``θ`` and ``Xβ + offset``
(:func:`pirls`), over ``(u, β)`` together (:func:`pirls_joint`), and
glmer's variant (:func:`pirls_glmer`). :mod:`hiermodels.mle.pirls`
documents the algorithms and packs the pattern arrays into the one
``structure`` tuple these take.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from hiermodels.mle.kernels.factor import (
    FACTOR_OK,
    backward,
    factorize_weighted,
    forward,
    log_determinant,
)
from hiermodels.mle.kernels.glm import (
    glm_deviance,
    glm_residual_deviance,
    glm_working,
    step_with_observed,
)
from hiermodels.mle.kernels.lmm import pls
from hiermodels.mle.kernels.products import (
    lambda_t_lead,
    lambda_t_rest,
    linear_predictor,
    z_transpose,
)
from hiermodels.mle.kernels.summation import sum_of_squares

__all__ = [
    "pirls",
    "pirls_joint",
    "pirls_glmer",
]


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
    step_observed = observed and step_with_observed(code)
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
        glm_working(code, y, trials, alpha, step_observed, eta, weights, resid)
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
    step_observed = observed and step_with_observed(code)
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
        glm_working(code, y, trials, alpha, step_observed, eta, weights, resid)
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
    step_observed = observed and step_with_observed(code)
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
        glm_working(code, y, trials, alpha, step_observed, eta, weights, resid)
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
