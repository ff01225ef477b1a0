"""Start values of ``θ`` from moments of least-squares residuals.

lme4 starts every fit at unit relative SDs and no correlation. Far from the
optimum the profiled criterion is not convex in ``θ``, and a Newton-type
method started there may spend most of its evaluations finding the basin
(InstEval: 17 of 26). A start from moments is usually inside it.

For each random-effect block, the residuals ``r`` of the least-squares fit
of the fixed effects are regressed on the block's columns within each
level; the spread of those per-level coefficients ``b̂ⱼ`` over the levels
is the block's covariance plus the coefficients' own sampling noise, so

``Σ̂ = cov(b̂ⱼ) − σ̂² mean((ZⱼᵀZⱼ)⁻¹)``,

relative to the residual variance ``σ̂²``, is a method-of-moments estimate
(Swamy's for random coefficients). For a GLMM the same is done with the
working residuals and weights of the GLM fit, relative to 1. Its eigenvalues are floored at
:data:`SMALLEST_RELATIVE_VARIANCE`, so that no start lies on the boundary,
where the quasi-Newton fallback takes over, and its Cholesky factor is the
start of that block's entries of ``θ``. The residuals contain the other
blocks' effects, so the estimate is rough; it only has to be close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from hiermodels.mle.blocked import ReLayout
    from hiermodels.spec.design import Design

__all__ = ["SMALLEST_RELATIVE_VARIANCE", "moment_start", "residual_moment_start"]

# Up to this size (rows × columns², a dense least-squares fit's work: about a
# millisecond) the noise variance comes from the fit with every effect fixed.
_DENSE_WORK = 2e6

#: Relative variances of a start are at least this (a relative SD of 0.1): on the
#: boundary the parameterisation folds, and a start there says nothing about
#: which side of it the optimum is.
SMALLEST_RELATIVE_VARIANCE = 0.01


def moment_start(design: Design, layout: ReLayout) -> np.ndarray:
    """``θ`` (in ``layout``'s order) from the moments of least-squares residuals.

    The noise variance is the pooled variance of the residuals within the
    levels of some block, the smallest (the one with the least of the other
    blocks' effects in it). A block without two levels whose coefficients
    can be estimated (more observations than terms, and a non-singular
    ``ZⱼᵀZⱼ``) starts at lme4's identity factor.

    Parameters
    ----------
    design : Design
        A Gaussian design (the response and fixed effects of the fit).
    layout : ReLayout
        Its random-effects layout.

    Returns
    -------
    numpy.ndarray
        Start values of ``θ``.
    """
    x, y = design.X, design.y
    n, p = x.shape
    if n <= p:
        return layout.theta.start()
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return residual_moment_start(layout, y - x @ coef, noise=_additive_noise(x, y, layout))


def _additive_noise(x: np.ndarray, y: np.ndarray, layout: ReLayout) -> float | None:
    """The residual variance of ``y`` on ``[X Z]`` (every effect fixed), for small ``Z``.

    Within the levels of one factor of a crossed design the other factors
    still vary, and inflate the within-level variance; with all effects in
    the fit none is left in the residuals (Henderson's method III). ``None``
    with one grouping factor (nothing else varies within its levels), when
    the fit is too large for a dense one (:data:`_DENSE_WORK`), or when it
    leaves fewer than a tenth of the observations as residual degrees of freedom.
    """
    n = x.shape[0]
    if len({b.group for b in layout.blocks}) < 2:
        # one grouping factor: its within-level variance is this fit's already
        return None
    width = x.shape[1] + sum(b.n_levels * b.n_terms for b in layout.blocks)
    if n * width * width > _DENSE_WORK:
        return None
    columns = [x]
    for block in layout.blocks:
        z = np.zeros((n, block.n_levels * block.n_terms))
        for a in range(block.n_terms):
            z[np.arange(n), block.codes * block.n_terms + a] = block.X[:, a]
        columns.append(z)
    design = np.hstack(columns)
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = n - int(rank)
    if dof < max(2, n // 10):
        return None
    return float(resid @ resid) / dof


def residual_moment_start(
    layout: ReLayout,
    resid: np.ndarray,
    weights: np.ndarray | None = None,
    noise: float | None = None,
) -> np.ndarray:
    """``θ`` from per-level (weighted) regressions of residuals on each block's columns.

    Parameters
    ----------
    layout : ReLayout
        The random-effects layout.
    resid : numpy.ndarray
        Residuals of the fixed-effects fit: least squares for a linear mixed
        model, the working residuals of the GLM for a GLMM.
    weights : numpy.ndarray, optional
        Observation weights (a GLM's working weights); 1 by default.
    noise : float, optional
        The variance ``θ`` is relative to when known (1 for a GLMM) or
        estimated otherwise; by default the smallest pooled within-level
        residual variance.

    Returns
    -------
    numpy.ndarray
        Start values of ``θ`` (lme4's identity factors where the moments say nothing).
    """
    theta = layout.theta.start()
    w = np.ones(resid.size) if weights is None else weights
    moments = [_level_moments(b.codes, b.X, b.n_levels, resid, w) for b in layout.blocks]
    if noise is None or not (np.isfinite(noise) and noise > 0.0):
        within = [m[2] for m in moments if m is not None and np.isfinite(m[2]) and m[2] > 0.0]
        if not within:
            return theta
        noise = min(within)
    for k, found in enumerate(moments):
        if found is None:
            continue
        spread, sampling, _ = found
        relative = (spread - noise * sampling) / noise
        values, vectors = np.linalg.eigh(0.5 * (relative + relative.T))
        if not np.all(np.isfinite(values)):
            continue
        values = np.maximum(values, SMALLEST_RELATIVE_VARIANCE)
        factor = np.linalg.cholesky((vectors * values) @ vectors.T)
        theta[layout.theta.block_slice(k)] = _lower_entries(factor)
    return theta


def _level_moments(
    codes: np.ndarray, z: np.ndarray, n_levels: int, resid: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Per-level weighted regressions of ``resid`` on one block's columns.

    Returns the covariance of the coefficients over the levels, the mean of
    ``(ZⱼᵀWⱼZⱼ)⁻¹`` and the pooled weighted residual variance within the
    levels; ``None`` without two levels whose coefficients can be estimated.
    """
    q = z.shape[1]
    count = np.bincount(codes, minlength=n_levels)
    zz = np.empty((n_levels, q, q))
    zr = np.empty((n_levels, q))
    wz = z * weights[:, None]
    for a in range(q):
        zr[:, a] = np.bincount(codes, weights=wz[:, a] * resid, minlength=n_levels)
        for b in range(a + 1):
            zz[:, a, b] = zz[:, b, a] = np.bincount(
                codes, weights=wz[:, a] * z[:, b], minlength=n_levels
            )
    scale = np.maximum(np.abs(zz).max(axis=(1, 2)), np.finfo(float).tiny)
    usable = (count > q) & (np.linalg.det(zz / scale[:, None, None]) > 1e-8)
    if np.sum(usable) < 2:
        return None
    inverse = np.linalg.inv(zz[usable])
    coefficients = np.einsum("jab,jb->ja", inverse, zr[usable])
    spread = np.atleast_2d(np.cov(coefficients, rowvar=False))
    squares = np.bincount(codes, weights=weights * resid * resid, minlength=n_levels)[usable]
    fitted = np.einsum("ja,ja->j", coefficients, zr[usable])
    within = float(np.sum(squares - fitted)) / float(np.sum(count[usable] - q))
    return spread, inverse.mean(axis=0), within


def _lower_entries(factor: np.ndarray) -> np.ndarray:
    """The lower triangle of a factor, column by column (``θ``'s order)."""
    q = factor.shape[0]
    return np.array([factor[row, col] for col in range(q) for row in range(col, q)])
