"""Per-group estimates without pooling, for the shrinkage comparison.

For each random-effect block and level, the group's effect is estimated
from that group's rows alone, everything else held at the fitted values:
least squares on the partial residuals for Gaussian models, the per-group
maximum-likelihood estimate (Newton–Raphson on the group's rows, with the
rest of the linear predictor as offset) for GLMMs. A group whose data do
not identify its effect — too few rows or covariate values for the
block's terms, or a binomial group with all successes or all failures —
is marked not estimable rather than given a number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from hiermodels.design.factors import long_index, long_values
from hiermodels.mle.response import GlmResponse
from hiermodels.mle.results import MixedFit

__all__ = ["no_pooling_estimates"]

# A per-group Newton iterate beyond this on the link scale has diverged (separation).
_DIVERGED = 25.0
_NEWTON_STEPS = 100


def _block_contribution(fit: MixedFit, index: int) -> np.ndarray:
    block = fit.layout.blocks[index]
    return np.einsum("nq,nq->n", block.X, fit.conditional_modes[index][block.codes])


def _per_level_normal_equations(
    codes: np.ndarray, x: np.ndarray, weights: np.ndarray, rhs: np.ndarray, n_levels: int
) -> tuple[np.ndarray, np.ndarray]:
    q = x.shape[1]
    gram = np.zeros((n_levels, q, q))
    np.add.at(gram, codes, np.einsum("ni,nj,n->nij", x, x, weights))
    vec = np.zeros((n_levels, q))
    np.add.at(vec, codes, x * (weights * rhs)[:, None])
    return gram, vec


def _identified(gram: np.ndarray) -> np.ndarray:
    """Levels whose per-group Gram matrix has full rank (relative tolerance 1e-9)."""
    eig = np.linalg.eigvalsh(gram)
    top = np.maximum(eig[:, -1], 1e-300)
    return eig[:, 0] > 1e-9 * top


def _solve(gram: np.ndarray, vec: np.ndarray, ok: np.ndarray) -> np.ndarray:
    out = np.full(vec.shape, np.nan)
    if ok.any():
        out[ok] = np.linalg.solve(gram[ok], vec[ok][..., None])[..., 0]
    return out


def _gaussian(fit: MixedFit, index: int) -> tuple[np.ndarray, np.ndarray]:
    block = fit.layout.blocks[index]
    partial = fit.design.response_rows() - (fit.linear_predictor - _block_contribution(fit, index))
    weights = fit.design.weights
    gram, vec = _per_level_normal_equations(
        block.codes,
        block.X,
        np.ones(block.codes.size) if weights is None else weights,
        partial,
        block.n_levels,
    )
    ok = _identified(gram)
    return _solve(gram, vec, ok), ok


def _glm(fit: MixedFit, index: int) -> tuple[np.ndarray, np.ndarray]:
    block = fit.layout.blocks[index]
    response = GlmResponse.from_fit(fit)
    base = fit.linear_predictor - _block_contribution(fit, index)
    u = np.zeros((block.n_levels, block.n_terms))
    ones = np.ones(block.codes.size)
    gram0, _ = _per_level_normal_equations(block.codes, block.X, ones, ones, block.n_levels)
    ok = _identified(gram0)
    converged = np.zeros(block.n_levels, dtype=bool)
    for _ in range(_NEWTON_STEPS):
        eta = base + np.einsum("nq,nq->n", block.X, u[block.codes])
        _, weights, resid = response.working(eta)
        gram, vec = _per_level_normal_equations(
            block.codes, block.X, weights, resid, block.n_levels
        )
        usable = ok & _identified(gram)
        step = np.zeros_like(u)
        step[usable] = _solve(gram, vec, usable)[usable]
        u = u + step
        converged = usable & (np.max(np.abs(step), axis=1) < 1e-8)
        if np.all(converged | ~usable) or np.any(np.abs(u) > 10 * _DIVERGED):
            break
    estimable = ok & converged & (np.max(np.abs(u), axis=1) < _DIVERGED)
    u[~estimable] = np.nan
    return u, estimable


def no_pooling_estimates(fit: MixedFit) -> pd.DataFrame:
    """Per-group estimates of every random effect without pooling.

    Parameters
    ----------
    fit : MixedFit
        A marginal-likelihood fit.

    Returns
    -------
    pandas.DataFrame
        Columns ``grpvar, term, grp, n_obs, no_pooling, no_pooling_estimable,
        population_coef``; ``no_pooling`` is on the scale of the random
        effect (deviation from the population value) and is missing exactly
        where ``no_pooling_estimable`` is False.
    """
    fixed = dict(zip(fit.design.fixed_names, fit.beta, strict=True))
    estimates, estimable, counts, population = [], [], [], []
    for i, block in enumerate(fit.layout.blocks):
        est, ok = _gaussian(fit, i) if fit.design.family.is_gaussian else _glm(fit, i)
        shape = (block.n_levels, block.n_terms)
        estimates.append(est)
        estimable.append(np.broadcast_to(ok[:, None], shape))
        counts.append(np.broadcast_to(fit.design.level_counts(block.group)[:, None], shape))
        population.append(np.broadcast_to([fixed.get(term, 0.0) for term in block.terms], shape))
    return long_index(fit.layout.blocks).assign(
        n_obs=long_values(counts),
        no_pooling=long_values(estimates),
        no_pooling_estimable=long_values(estimable),
        population_coef=long_values(population),
    )
