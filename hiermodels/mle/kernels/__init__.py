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

The modules, each importing what it calls from the others; this package
re-exports their public names:

- :mod:`~hiermodels.mle.kernels.products`: products with ``Z`` and ``Λ``
  (``ZᵀWZ`` in blocked form, ``ZᵀW M``, ``Z b``, ``Λᵀ`` per partition, the
  factors placed from ``θ``, the linear predictor);
- :mod:`~hiermodels.mle.kernels.factor`: the blocked Cholesky factor (the
  coupling held densely for a nearly complete crossing), its forward and
  backward solves, ``log |L|²`` and the status codes
  ``FACTOR_OK``, ``LEAD_NOT_PD`` and ``TRAILING_NOT_PD``;
- :mod:`~hiermodels.mle.kernels.trailing`: the trailing block's factor and
  inverse, and the selected blocks of ``S⁻¹``;
- :mod:`~hiermodels.mle.kernels.lmm`: penalised least squares of a linear
  mixed model and the gradient of its criterion;
- :mod:`~hiermodels.mle.kernels.gaussian`: the gaussian model's
  ``log p(y | β, θ, σ)`` and its gradient;
- :mod:`~hiermodels.mle.kernels.summation`: numpy's pairwise summation;
- :mod:`~hiermodels.mle.kernels.glm`: the family and link codes and the
  families' per-observation quantities;
- :mod:`~hiermodels.mle.kernels.pirls`: PIRLS, over ``u`` and over
  ``(u, β)``;
- :mod:`~hiermodels.mle.kernels.laplace`: the gradient of the Laplace
  deviance in ``(θ, β)``.

numba keys the disk cache of a function on its own module's source only, so
a kernel compiled before a function it calls from another module changed
keeps the old callee: after editing a module here, delete the cache
(``make clean`` removes the ``__pycache__`` folders that hold it).
"""

from hiermodels.mle.kernels.factor import (
    FACTOR_OK,
    LEAD_NOT_PD,
    TRAILING_NOT_PD,
    backward,
    dense_coupling,
    factorize,
    factorize_weighted,
    forward,
    holds_dense_coupling,
    log_determinant,
    pairs_of_pairs,
    trailing_cross,
)
from hiermodels.mle.kernels.gaussian import (
    gaussian_finish,
    gaussian_gradient,
    gaussian_loglik,
    gaussian_prepare,
)
from hiermodels.mle.kernels.glm import (
    BINOMIAL_LOGIT,
    BINOMIAL_PROBIT,
    GAMMA_INVERSE,
    GAMMA_LOG,
    INVERSE_GAUSSIAN_INVERSE_SQUARE,
    INVERSE_GAUSSIAN_LOG,
    NEGATIVE_BINOMIAL_LOG,
    POISSON_LOG,
    glm_derivatives,
    glm_deviance,
    glm_mean,
    glm_residual_deviance,
    glm_working,
    step_with_observed,
)
from hiermodels.mle.kernels.laplace import laplace_gradient
from hiermodels.mle.kernels.lmm import (
    gradient_terms,
    last_column_less,
    lmm_gradient,
    pls,
    solve_lmm,
)
from hiermodels.mle.kernels.pirls import pirls, pirls_glmer, pirls_joint
from hiermodels.mle.kernels.products import (
    cross_products,
    lambda_t_lead,
    lambda_t_rest,
    linear_predictor,
    placed_factors,
    z_times,
    z_transpose,
)
from hiermodels.mle.kernels.summation import pairwise_sum, sum_of_squares
from hiermodels.mle.kernels.trailing import (
    diagonal_blocks,
    inverse_diagonal_blocks,
    selected_inverse,
    trailing_factor_and_inverse,
    trailing_inverse,
)

__all__ = [
    "cross_products",
    "z_transpose",
    "lambda_t_lead",
    "lambda_t_rest",
    "placed_factors",
    "z_times",
    "linear_predictor",
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
    "selected_inverse",
    "inverse_diagonal_blocks",
    "diagonal_blocks",
    "trailing_factor_and_inverse",
    "trailing_inverse",
    "last_column_less",
    "pls",
    "gradient_terms",
    "solve_lmm",
    "lmm_gradient",
    "gaussian_prepare",
    "gaussian_finish",
    "gaussian_gradient",
    "gaussian_loglik",
    "pairwise_sum",
    "sum_of_squares",
    "BINOMIAL_LOGIT",
    "BINOMIAL_PROBIT",
    "POISSON_LOG",
    "NEGATIVE_BINOMIAL_LOG",
    "GAMMA_LOG",
    "GAMMA_INVERSE",
    "INVERSE_GAUSSIAN_LOG",
    "INVERSE_GAUSSIAN_INVERSE_SQUARE",
    "glm_mean",
    "glm_working",
    "glm_deviance",
    "glm_residual_deviance",
    "glm_derivatives",
    "step_with_observed",
    "pirls",
    "pirls_joint",
    "pirls_glmer",
    "laplace_gradient",
]
