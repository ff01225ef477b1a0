"""PIRLS in Python, as hiermodels.mle.laplace ran it before it was compiled.

The reference the compiled PIRLS (:mod:`hiermodels.mle.pirls`) is checked
against: the same algorithms written with numpy arrays, the package's
factorisation (:func:`hiermodels.mle.blocked.factorize`) and the family
formulas of :class:`~hiermodels.mle.response.GlmResponse`. Each function
takes the model's :class:`~hiermodels.mle.laplace.LaplaceDeviance` and returns
the same :class:`~hiermodels.mle.laplace.PirlsResult` the package does.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from hiermodels.mle.blocked import BlockedFactor, factorize
from hiermodels.mle.laplace import LaplaceDeviance, PirlsResult
from hiermodels.mle.lmm import solve_pls

TOLERANCE = 1e-10
STEP_TOLERANCE = 1e-8
MAX_ITER = 60
MAX_HALVINGS = 12


def _lambdas(lap: LaplaceDeviance, factors: list[np.ndarray]) -> tuple[np.ndarray, object]:
    layout = lap.layout
    if not layout.rest:
        return layout.lead_factor(factors), None
    if all(block.n_terms == 1 for block in layout.blocks):
        # Λ of the trailing partition is diagonal
        return layout.lead_factor(factors), np.concatenate(
            [np.full(layout.blocks[i].n_levels, factors[i][0, 0]) for i in layout.rest]
        )
    parts = [
        sp.kron(sp.identity(layout.blocks[i].n_levels), sp.csr_matrix(factors[i]))
        for i in layout.rest
    ]
    return layout.lead_factor(factors), sp.block_diag(parts, format="csr")


def _eta(
    lap: LaplaceDeviance,
    lambdas: tuple[np.ndarray, object],
    fixed: np.ndarray,
    u1: np.ndarray,
    u2: np.ndarray,
) -> np.ndarray:
    t0, lam_rest = lambdas
    b_lead = u1 @ t0.T
    if lam_rest is None:
        b_rest = u2
    elif isinstance(lam_rest, np.ndarray):
        b_rest = lam_rest * u2
    else:
        b_rest = lam_rest @ u2
    return fixed + lap.layout.z_times(b_lead, b_rest)


def _weighted_system(
    lap: LaplaceDeviance, factors: list[np.ndarray], weights: np.ndarray, columns: np.ndarray
) -> tuple[BlockedFactor, np.ndarray, np.ndarray]:
    layout = lap.layout
    factor = factorize(layout, layout.cross_products(weights), factors)
    lead, rest = layout.z_transpose(columns, weights=weights)
    c1 = layout.lead_factor(factors).T @ lead
    c2 = layout.rest_lambda_t_dense(factors, rest)
    return factor, c1, c2


def _sumsq(u1: np.ndarray, u2: np.ndarray) -> float:
    return float(np.sum(u1**2) + np.sum(u2**2))


def _largest(step1: np.ndarray, step2: np.ndarray) -> float:
    return max(float(np.max(np.abs(step1), initial=0.0)), float(np.max(np.abs(step2), initial=0.0)))


def pirls(
    lap: LaplaceDeviance,
    theta: np.ndarray,
    beta: np.ndarray,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> PirlsResult:
    """``LaplaceDeviance.pirls`` (no warm start: ``u = 0`` unless ``start``)."""
    layout = lap.layout
    factors = layout.theta.factors(theta)
    lambdas = _lambdas(lap, factors)
    fixed = lap.design.X @ beta + lap.response.offset
    if start is None:
        u1 = np.zeros((layout.n_lead_levels, layout.q_lead))
        u2 = np.zeros(layout.q_rest)
    else:
        u1, u2 = start
    eta = _eta(lap, lambdas, fixed, u1, u2)
    pdev = lap.response.deviance(eta) + _sumsq(u1, u2)
    canonical = lap.response.canonical
    iterations = 0
    while iterations < MAX_ITER:
        iterations += 1
        _, weights, resid = lap.response.working(eta)
        factor, c1, c2 = _weighted_system(lap, factors, weights, (eta - fixed + resid)[:, None])
        w1, w2 = factor.forward(c1, c2)
        new1, new2 = factor.backward(w1, w2)
        step1, step2 = new1[..., 0] - u1, new2[:, 0] - u2
        accepted = False
        for k in range(MAX_HALVINGS):
            cand1, cand2 = u1 + step1 / 2**k, u2 + step2 / 2**k
            cand_eta = _eta(lap, lambdas, fixed, cand1, cand2)
            cand_pdev = lap.response.deviance(cand_eta) + _sumsq(cand1, cand2)
            if cand_pdev <= pdev + 1e-12 * abs(pdev):
                accepted = True
                break
        if not accepted:
            break
        change = pdev - cand_pdev
        u1, u2, eta, pdev = cand1, cand2, cand_eta, cand_pdev
        if change < TOLERANCE * (abs(pdev) + 1.0) and (
            canonical or _largest(step1, step2) < STEP_TOLERANCE
        ):
            break
    _, weights, _ = lap.response.working(eta)
    factor = factorize(layout, layout.cross_products(weights), factors)
    return PirlsResult(
        theta,
        np.asarray(beta, dtype=float),
        u1,
        u2,
        eta,
        factor,
        pdev + factor.logdet(),
        iterations,
    )


def pirls_joint(
    lap: LaplaceDeviance,
    theta: np.ndarray,
    beta_start: np.ndarray,
    start: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> PirlsResult:
    """``LaplaceDeviance.pirls_joint``; ``start`` is ``(β, u_lead, u_rest)`` (the warm start)."""
    layout = lap.layout
    factors = layout.theta.factors(theta)
    lambdas = _lambdas(lap, factors)
    if start is not None:
        beta, u1, u2 = start
    else:
        beta = np.asarray(beta_start, dtype=float)
        u1 = np.zeros((layout.n_lead_levels, layout.q_lead))
        u2 = np.zeros(layout.q_rest)
    offset = lap.response.offset
    x = lap.design.X
    eta = _eta(lap, lambdas, x @ beta + offset, u1, u2)
    pdev = lap.response.deviance(eta) + _sumsq(u1, u2)
    for _ in range(MAX_ITER):
        _, weights, resid = lap.response.working(eta)
        xz = np.column_stack([x, eta - offset + resid])
        lead, rest = layout.z_transpose(xz, weights=weights)
        try:
            sol = solve_pls(
                layout,
                theta,
                layout.cross_products(weights),
                lead,
                rest,
                xz.T @ (xz * weights[:, None]),
            )
        except np.linalg.LinAlgError:
            break
        d_beta, d1, d2 = sol.beta - beta, sol.u_lead - u1, sol.u_rest - u2
        for k in range(MAX_HALVINGS):
            cb, c1, c2 = beta + d_beta / 2**k, u1 + d1 / 2**k, u2 + d2 / 2**k
            cand_eta = _eta(lap, lambdas, x @ cb + offset, c1, c2)
            cand = lap.response.deviance(cand_eta) + _sumsq(c1, c2)
            if cand <= pdev + 1e-12 * abs(pdev):
                break
        change = pdev - cand
        beta, u1, u2, eta, pdev = cb, c1, c2, cand_eta, min(cand, pdev)
        if abs(change) < TOLERANCE * (abs(pdev) + 1.0):
            break
    return pirls(lap, theta, beta, (u1, u2))


def glmer_pirls(
    lap: LaplaceDeviance,
    start_eta: np.ndarray,
    theta: np.ndarray,
    beta: np.ndarray,
    tolerance: float = 1e-7,
) -> PirlsResult:
    """``GlmerLaplaceDeviance.pirls``."""
    layout, response = lap.layout, lap.response
    factors = layout.theta.factors(theta)
    lambdas = _lambdas(lap, factors)
    fixed = lap.design.X @ beta + response.offset
    eta = start_eta
    u1 = np.zeros((layout.n_lead_levels, layout.q_lead))
    u2 = np.zeros(layout.q_rest)
    previous = math.inf
    iteration = 0
    while iteration < 30:
        iteration += 1
        _, weights, resid = response.working(eta)
        factor, c1, c2 = _weighted_system(lap, factors, weights, (eta - fixed + resid)[:, None])
        new1, new2 = factor.backward(*factor.forward(c1, c2))
        step1, step2 = new1[..., 0] - u1, new2[:, 0] - u2
        for k in range(11):
            cand1, cand2 = u1 + step1 / 2**k, u2 + step2 / 2**k
            cand_eta = _eta(lap, lambdas, fixed, cand1, cand2)
            pdev = response.residual_deviance(cand_eta) + _sumsq(cand1, cand2)
            if pdev <= previous:
                break
        u1, u2, eta = cand1, cand2, cand_eta
        if abs((previous - pdev) / pdev) < tolerance:
            break
        previous = pdev
    value = response.deviance(eta) + _sumsq(u1, u2) + factor.logdet()
    return PirlsResult(theta, np.asarray(beta, dtype=float), u1, u2, eta, factor, value, iteration)
