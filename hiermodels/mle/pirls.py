"""Compiled penalised iteratively reweighted least squares (PIRLS) for GLMMs.

For given ``θ`` and ``β``, PIRLS finds the conditional mode ``ũ`` of the
spherical random effects of a GLMM: each iteration computes the linear
predictor ``η = Xβ + offset + ZΛu``, the family's working weights ``W`` and
working residuals there, factorises ``ΛᵀZᵀWZΛ + I``, solves for the next
``u`` and halves the step until the penalised deviance
``−2 Σ log p(y | η) + ‖u‖²`` does not rise. Everything per iteration runs
in one compiled call (:mod:`hiermodels.mle.kernels`), on arrays prepared
once per call: no Python objects are built per iteration, and the
optimisers' thousands of deviance evaluations cost a fraction of a
millisecond each on small models.

Three variants, each the algorithm :func:`hiermodels.mle.fit.fit_glmm` uses:

- :func:`conditional_mode`: PIRLS over ``u`` at fixed ``(θ, β)``, stopped
  when the penalised deviance changes by less than
  :data:`PIRLS_TOLERANCE` (relative) — and, unless a step is a Newton step,
  the step is below :data:`PIRLS_STEP_TOLERANCE`. The result carries the
  factor at the mode's weights and the Laplace deviance
  ``d = −2 Σ log p(y | ũ) + ‖ũ‖² + log |L|²``.
- :func:`joint_mode`: PIRLS over ``(u, β)`` together (glmer's
  ``nAGQ = 0`` update), penalised weighted least squares with ``X`` in the
  system.
- :func:`glmer_mode`: glmer's own run, from a fixed ``η``, stopped on the
  residual deviance, with ``log |L|²`` from the weights of the iterate
  before the last step.

The family formulas (means, weights, log-likelihoods) are those of
:class:`~hiermodels.mle.response.GlmResponse`, compiled; the tests compare
both, and the compiled PIRLS with a line-by-line Python reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hiermodels.mle import kernels
from hiermodels.mle.blocked import BlockedFactor, BlockPattern, ReLayout
from hiermodels.mle.response import GlmResponse

__all__ = [
    "MAX_HALVINGS",
    "PIRLS_MAX_ITER",
    "PIRLS_STEP_TOLERANCE",
    "PIRLS_TOLERANCE",
    "Mode",
    "conditional_mode",
    "glmer_mode",
    "joint_mode",
    "laplace_gradient",
    "pirls_family",
    "pirls_structure",
]

#: PIRLS stops when the penalised deviance changes by less than this (relative).
PIRLS_TOLERANCE = 1e-10
#: Largest PIRLS step at convergence when a step is not a Newton step.
PIRLS_STEP_TOLERANCE = 1e-8
#: Iterations of PIRLS (and of the joint PIRLS) at most.
PIRLS_MAX_ITER = 60
#: Step halvings per iteration before PIRLS gives up descending.
MAX_HALVINGS = 12
# glmer's limits: iterations of its PIRLS run and halvings of each step.
_GLMER_MAX_ITER = 30
_GLMER_HALVINGS = 11

_FAMILY_CODES = {
    ("binomial", "logit"): kernels.BINOMIAL_LOGIT,
    ("binomial", "probit"): kernels.BINOMIAL_PROBIT,
    ("poisson", "log"): kernels.POISSON_LOG,
    ("negativebinomial", "log"): kernels.NEGATIVE_BINOMIAL_LOG,
    ("gamma", "log"): kernels.GAMMA_LOG,
    ("gamma", "inverse"): kernels.GAMMA_INVERSE,
    ("inverse_gaussian", "log"): kernels.INVERSE_GAUSSIAN_LOG,
    ("inverse_gaussian", "1/mu^2"): kernels.INVERSE_GAUSSIAN_INVERSE_SQUARE,
}


@dataclass(frozen=True, eq=False)
class Mode:
    """A conditional mode found by PIRLS.

    Attributes
    ----------
    u_lead, u_rest : numpy.ndarray
        Spherical modes: leading ``(L₀, q₀)``, trailing ``(q_rest,)``.
    eta : numpy.ndarray
        Linear predictor at the mode.
    factor : BlockedFactor
        Cholesky factor of ``ΛᵀZᵀWZΛ + I`` (at the mode's weights, or for
        :func:`glmer_mode` the weights before the last step).
    deviance : float
        The Laplace deviance (NaN or infinite where it cannot be evaluated).
    iterations : int
        PIRLS iterations used.
    """

    u_lead: np.ndarray
    u_rest: np.ndarray
    eta: np.ndarray
    factor: BlockedFactor
    deviance: float
    iterations: int


def conditional_mode(
    layout: ReLayout,
    response: GlmResponse,
    theta: np.ndarray,
    fixed: np.ndarray,
    start: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    newton: bool,
) -> Mode:
    """PIRLS over ``u`` for fixed ``θ`` and fixed-effects part ``Xβ + offset``.

    Parameters
    ----------
    layout : ReLayout
        Random-effects ordering and partition.
    response : GlmResponse
        Response, family, link (and the negative binomial's ``α`` and
        information).
    theta : numpy.ndarray
        Relative covariance parameters.
    fixed : numpy.ndarray
        ``Xβ + offset``, ``(n,)``.
    start : tuple of numpy.ndarray, optional
        Leading ``(L₀, q₀)`` and trailing ``(q_rest,)`` start of ``u``;
        zero if not given.
    newton : bool
        Whether a PIRLS step with these weights is a Newton step. A small
        change in the penalised deviance leaves ``u`` within ~1e-4 of the
        mode: enough after a Newton step (the next error is its square), not
        after a Fisher-scoring step, whose linear convergence would leave
        ``log |L|`` noisy at ~1e-5 and finite-difference derivatives of the
        deviance with it; so without Newton steps PIRLS also waits for a
        step below :data:`PIRLS_STEP_TOLERANCE`.

    Returns
    -------
    Mode

    Raises
    ------
    numpy.linalg.LinAlgError
        When ``ΛᵀZᵀWZΛ + I`` is not numerically positive definite at some
        iterate.
    """
    u1, u2 = _start(layout, start)
    t0, rest_t = layout.kernel_factors(np.asarray(theta, dtype=float))
    out = kernels.pirls(
        pirls_structure(layout.pattern),
        pirls_family(response),
        t0,
        rest_t,
        _vector(fixed),
        u1,
        u2,
        bool(newton),
        PIRLS_TOLERANCE,
        PIRLS_STEP_TOLERANCE,
        PIRLS_MAX_ITER,
        MAX_HALVINGS,
    )
    return _mode(layout.pattern, *out)


def joint_mode(
    layout: ReLayout,
    response: GlmResponse,
    theta: np.ndarray,
    x: np.ndarray,
    beta: np.ndarray,
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PIRLS over ``u`` and ``β`` together (glmer's ``nAGQ = 0`` update).

    Each iteration solves the penalised weighted least squares problem in
    ``(u, β)`` at the working weights and response, and halves the step
    (at most 12 times, taking the last halving even if it does not
    descend) until the penalised deviance does not rise; iterations
    stop when it changes by less than :data:`PIRLS_TOLERANCE` (relative).
    Where the joint system is not positive definite — a working response
    fitted exactly leaves a residual sum of squares of 0 that round-off
    makes negative — iterations stop where they are: PIRLS over ``u`` at
    that ``β`` (:func:`conditional_mode`) still works.

    Parameters
    ----------
    layout : ReLayout
        Random-effects ordering and partition.
    response : GlmResponse
        Response, family and link.
    theta : numpy.ndarray
        Relative covariance parameters.
    x : numpy.ndarray
        Fixed-effects design ``(n, p)``.
    beta : numpy.ndarray
        Start of ``β``.
    start : tuple of numpy.ndarray, optional
        Start of ``u`` as in :func:`conditional_mode`; zero if not given.

    Returns
    -------
    beta, u_lead, u_rest : numpy.ndarray
        Where the iterations stopped.
    """
    u1, u2 = _start(layout, start)
    t0, rest_t = layout.kernel_factors(np.asarray(theta, dtype=float))
    beta_out, u1, u2, _ = kernels.pirls_joint(
        pirls_structure(layout.pattern),
        pirls_family(response),
        t0,
        rest_t,
        np.ascontiguousarray(x, dtype=float),
        _vector(response.offset),
        _vector(beta),
        u1,
        u2,
        PIRLS_TOLERANCE,
        PIRLS_MAX_ITER,
        MAX_HALVINGS,
    )
    return beta_out, u1, u2


def glmer_mode(
    layout: ReLayout,
    response: GlmResponse,
    theta: np.ndarray,
    fixed: np.ndarray,
    start_eta: np.ndarray,
    tolerance: float,
) -> Mode:
    """glmer's PIRLS run at fixed ``θ`` and fixed-effects part ``Xβ + offset``.

    As lme4's ``pwrssUpdate``: from ``u = 0`` and the linear predictor
    ``start_eta``, at most 30 iterations of at most 11 halvings each, a step
    taken when the penalised residual deviance (deviance residuals plus
    ``‖u‖²``) does not rise, iterations stopped when it changes by less than
    ``tolerance`` (relative). The deviance is
    ``−2 Σ log p(y | ũ) + ‖ũ‖² + log |L|²`` with ``L`` factorised at the
    working weights of the iterate *before* the last step, as glmer's.

    Parameters
    ----------
    layout : ReLayout
        Random-effects ordering and partition.
    response : GlmResponse
        Response, family and link.
    theta : numpy.ndarray
        Relative covariance parameters.
    fixed : numpy.ndarray
        ``Xβ + offset``.
    start_eta : numpy.ndarray
        Linear predictor every run starts from.
    tolerance : float
        glmer's ``tolPwrss``.

    Returns
    -------
    Mode

    Raises
    ------
    numpy.linalg.LinAlgError
        When ``ΛᵀZᵀWZΛ + I`` is not numerically positive definite at some
        iterate.
    """
    t0, rest_t = layout.kernel_factors(np.asarray(theta, dtype=float))
    out = kernels.pirls_glmer(
        pirls_structure(layout.pattern),
        pirls_family(response),
        t0,
        rest_t,
        _vector(fixed),
        _vector(start_eta),
        float(tolerance),
        _GLMER_MAX_ITER,
        _GLMER_HALVINGS,
    )
    return _mode(layout.pattern, *out)


def laplace_gradient(
    layout: ReLayout,
    response: GlmResponse,
    theta: np.ndarray,
    x: np.ndarray,
    u_lead: np.ndarray,
    u_rest: np.ndarray,
    eta: np.ndarray,
    factor: BlockedFactor,
) -> np.ndarray:
    """Gradient of the Laplace deviance in ``(θ, β)`` at a conditional mode.

    Compiled (:func:`hiermodels.mle.kernels.laplace_gradient`): exact for
    PIRLS's weights when they are the observed information
    (:attr:`GlmResponse.newton`), which the caller checks.

    Parameters
    ----------
    layout : ReLayout
        Random-effects ordering and partition.
    response : GlmResponse
        Response, family and link, with observed-information weights.
    theta : numpy.ndarray
        Relative covariance parameters of the mode.
    x : numpy.ndarray
        Fixed-effects design ``(n, p)``.
    u_lead, u_rest, eta, factor : numpy.ndarray, BlockedFactor
        The conditional mode at ``θ`` and some ``β`` (:func:`conditional_mode`),
        its linear predictor and the factor of ``ΛᵀZᵀWZΛ + I`` there.

    Returns
    -------
    numpy.ndarray
        ``∂F/∂θ`` followed by ``∂F/∂β``.

    Raises
    ------
    numpy.linalg.LinAlgError
        When the trailing factor is singular.
    """
    if not response.newton:
        raise ValueError(
            "the Laplace gradient needs PIRLS weights that are the observed information"
        )
    c22_inv = factor.trailing_inverse()
    t0, rest_t = layout.kernel_factors(np.asarray(theta, dtype=float))
    lead_flag, position, terms, _, offsets = layout.gradient_blocks
    grad_theta, grad_beta = kernels.laplace_gradient(
        pirls_structure(layout.pattern),
        pirls_family(response),
        t0,
        rest_t,
        np.ascontiguousarray(x, dtype=float),
        np.ascontiguousarray(u_lead, dtype=float).reshape(layout.n_lead_levels, layout.q_lead),
        _vector(u_rest),
        _vector(eta),
        factor.l11,
        factor.l21_pairs,
        factor.l22,
        c22_inv,
        lead_flag,
        position,
        terms,
        offsets,
    )
    return np.concatenate([grad_theta, grad_beta])


def _mode(
    pattern: BlockPattern,
    u1: np.ndarray,
    u2: np.ndarray,
    eta: np.ndarray,
    l11: np.ndarray,
    l21: np.ndarray,
    l22: np.ndarray,
    deviance: float,
    iterations: int,
    status: int,
) -> Mode:
    """The kernels' outputs as a :class:`Mode`, or the factorisation's failure raised."""
    if status == kernels.LEAD_NOT_PD:
        raise np.linalg.LinAlgError("a leading block of ΛᵀZᵀWZΛ + I is not positive definite")
    if status == kernels.TRAILING_NOT_PD:
        raise np.linalg.LinAlgError("trailing block of ΛᵀZᵀWZΛ + I is not positive definite")
    factor = BlockedFactor(l11=l11, l21_pairs=l21, l22=l22, pattern=pattern)
    return Mode(u1, u2, eta, factor, float(deviance), int(iterations))


def _start(
    layout: ReLayout, start: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray, np.ndarray]:
    """The start of ``u`` as contiguous float arrays (zero if none)."""
    if start is None:
        return np.zeros((layout.n_lead_levels, layout.q_lead)), np.zeros(layout.q_rest)
    u1, u2 = start
    return (
        np.ascontiguousarray(u1, dtype=float).reshape(layout.n_lead_levels, layout.q_lead),
        _vector(u2),
    )


def _vector(values: np.ndarray) -> np.ndarray:
    """A contiguous float vector, as the kernels take them."""
    return np.ascontiguousarray(values, dtype=float).reshape(-1)


def pirls_structure(pattern: BlockPattern) -> tuple:
    """The pattern's index arrays in the order the PIRLS kernels unpack them."""
    return (
        pattern.lead_codes,
        pattern.lead_x,
        pattern.rest_codes,
        pattern.rest_x,
        pattern.rest_xoff,
        pattern.rest_q,
        pattern.rest_off,
        pattern.pair_of,
        pattern.pair_block,
        pattern.pair_row,
        pattern.pair_ptr,
        pattern.lead_ptr,
        pattern.row_block,
        pattern.row_term,
        pattern.row_base,
        pattern.pp_a,
        pattern.pp_b,
        pattern.q_rest,
    )


def pirls_family(
    response: GlmResponse,
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, float, bool]:
    """``(code, y, trials, log constants, α or φ, observed information)`` for the kernels."""
    try:
        code = _FAMILY_CODES[response.family, response.link]
    except KeyError:
        raise ValueError(
            f"PIRLS is not available for the {response.family} family with the {response.link} link"
        ) from None
    # the negative binomial's α, the Gamma's and inverse Gaussian's φ
    with_dispersion = code == kernels.NEGATIVE_BINOMIAL_LOG or code >= kernels.GAMMA_LOG
    alpha = float(response.dispersion) if with_dispersion else math.inf
    observed = response.information == "observed"
    return (
        code,
        _vector(response.y),
        _vector(response.trials),
        _vector(response.log_constant),
        alpha,
        observed,
    )
