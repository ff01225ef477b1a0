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
    from hiermodels.design.design import Design
    from hiermodels.mle.blocked import ReLayout
    from hiermodels.mle.lmm import LmmDeviance

__all__ = ["SMALLEST_RELATIVE_VARIANCE", "moment_start", "residual_moment_start"]

# Up to this size (rows × columns², a dense least-squares fit's work: about a
# millisecond) the noise variance comes from the fit with every effect fixed.
_DENSE_WORK = 2e6

#: A level takes part in the moments when the smallest eigenvalue of its
#: ``ZⱼᵀWZⱼ`` is at least this fraction of the median level's.
WEAK_LEVEL_FRACTION = 0.1

#: Relative variances of a start are at least this (a relative SD of 0.1): on the
#: boundary the parameterisation folds, and a start there says nothing about
#: which side of it the optimum is.
SMALLEST_RELATIVE_VARIANCE = 0.01


def moment_start(deviance: LmmDeviance, design: Design) -> np.ndarray:
    """``θ`` (in the deviance's layout order) from the moments of least-squares residuals.

    Works on the cross products the profiled criterion holds (``ZᵀZ`` and
    ``Zᵀ[X y]`` per level), so the start costs no pass over the rows. The
    noise variance is that of the fit with every effect fixed where the
    design is small and has several grouping factors
    (:func:`_additive_noise`), else the smallest pooled within-level
    residual variance of a block.

    Parameters
    ----------
    deviance : LmmDeviance
        The profiled criterion of the (standardised) design.
    design : Design
        The same design (for the dense fit of small crossed designs).

    Returns
    -------
    numpy.ndarray
        Start values of ``θ``.
    """
    layout = deviance.layout
    p = deviance.n_fixed
    if deviance.nobs <= p:
        return layout.theta.start()
    xtx, xty = deviance.xy_cross[:p, :p], deviance.xy_cross[:p, p]
    coef = np.linalg.lstsq(xtx, xty, rcond=None)[0]
    total = float(deviance.xy_cross[p, p] - coef @ xty)  # Σ r² of the least-squares fit

    def residual_products(zt_xy: np.ndarray) -> np.ndarray:
        return zt_xy[..., p] - zt_xy[..., :p] @ coef

    levels = []
    pat = layout.pattern
    position = 0
    lead = set(layout.lead)
    for k, block in enumerate(layout.blocks):
        q = block.n_terms
        if k in lead:
            part = slice(position, position + q)
            position += q
            zz = deviance.cross.a11[:, part, part]
            zr = residual_products(deviance.zt_xy_lead[:, part, :])
        else:
            j = layout.rest.index(k)
            rows = pat.rest_off[j] + np.arange(block.n_levels * q).reshape(block.n_levels, q)
            zz = deviance.cross.a22[rows[:, :, None], rows[:, None, :]]
            zr = residual_products(deviance.zt_xy_rest[rows])
        levels.append((zz, zr))
    return _start_from_levels(layout, levels, total, deviance.nobs, _additive_noise(design, layout))


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
        Residuals of the fixed-effects fit: the working residuals of the GLM
        for a GLMM.
    weights : numpy.ndarray, optional
        Observation weights (a GLM's working weights); 1 by default.
    noise : float, optional
        The variance ``θ`` is relative to when known (1 for a GLMM); by
        default the smallest pooled within-level residual variance.

    Returns
    -------
    numpy.ndarray
        Start values of ``θ`` (lme4's identity factors where the moments say nothing).
    """
    w = np.ones(resid.size) if weights is None else weights
    levels = []
    for block in layout.blocks:
        q, codes = block.n_terms, block.codes
        wz = block.X * w[:, None]
        zz = np.empty((block.n_levels, q, q))
        zr = np.empty((block.n_levels, q))
        for a in range(q):
            zr[:, a] = np.bincount(codes, weights=wz[:, a] * resid, minlength=block.n_levels)
            for b in range(a + 1):
                zz[:, a, b] = zz[:, b, a] = np.bincount(
                    codes, weights=wz[:, a] * block.X[:, b], minlength=block.n_levels
                )
        levels.append((zz, zr))
    return _start_from_levels(layout, levels, float(w @ (resid * resid)), resid.size, noise)


def _start_from_levels(
    layout: ReLayout,
    levels: list[tuple[np.ndarray, np.ndarray]],
    total: float,
    dof: int,
    noise: float | None,
) -> np.ndarray:
    """``θ`` from each block's per-level ``ZⱼᵀWZⱼ`` and ``ZⱼᵀWr`` (see the module).

    ``total`` is ``Σ w r²`` over all ``dof`` rows; a block's pooled
    within-level variance is what its per-level regressions leave of it,
    over the rows less their ranks (the fixed effects usually lie in the span
    of the block's columns, as an intercept in a random intercept's).
    """
    theta = layout.theta.start()
    moments = [_level_moments(zz, zr, total, dof) for zz, zr in levels]
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
    zz: np.ndarray, zr: np.ndarray, total: float, dof: int
) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Per-level regressions from ``ZⱼᵀWZⱼ`` (``(L, q, q)``) and ``ZⱼᵀWr`` (``(L, q)``).

    Returns the covariance of the coefficients over the levels whose
    ``ZⱼᵀWZⱼ`` is of full rank, the mean of their ``(ZⱼᵀWZⱼ)⁻¹``, and the
    pooled residual variance within the levels; ``None`` without two such
    levels.
    """
    if zz.shape[1] == 1:  # scalar terms, the common case, without the batched algebra
        diagonal, products = zz[:, 0, 0], zr[:, 0]
        kept = diagonal > 1e-8 * max(float(diagonal.max(initial=0.0)), np.finfo(float).tiny)
        if np.sum(kept) < 2:
            return None
        kept &= _informative(diagonal, kept)
        coefficients = products[kept] / diagonal[kept]
        explained = float(products[kept] @ coefficients)
        rank = int(np.sum(kept))
        within = (total - explained) / (dof - rank) if dof > rank else np.nan
        spread = np.array([[float(np.var(coefficients, ddof=1))]])
        return spread, np.array([[float(np.mean(1.0 / diagonal[kept]))]]), within
    scale = np.maximum(np.abs(zz).max(axis=(1, 2)), np.finfo(float).tiny)
    values, vectors = np.linalg.eigh(zz / scale[:, None, None])
    kept = values > 1e-8
    usable = np.all(kept, axis=1)
    if np.sum(usable) < 2:
        return None
    usable &= _informative(values[:, 0] * scale, usable)
    # every level's fit, by its pseudo-inverse: what it explains and its rank
    along = np.einsum("jab,ja->jb", vectors, zr)
    inverse_values = np.where(kept, 1.0 / np.where(kept, values, 1.0), 0.0) / scale[:, None]
    explained = float(np.sum(inverse_values * along * along))
    rank = int(np.sum(kept))
    inverse = np.einsum("jab,jb,jcb->jac", vectors[usable], inverse_values[usable], vectors[usable])
    coefficients = np.einsum("jab,jb->ja", inverse, zr[usable])
    spread = np.atleast_2d(np.cov(coefficients, rowvar=False))
    within = (total - explained) / (dof - rank) if dof > rank else np.nan
    return spread, inverse.mean(axis=0), within


def _informative(smallest: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """The usable levels whose ``ZⱼᵀWZⱼ`` is not far weaker than the typical level's.

    A level's coefficients have sampling covariance ``σ² (ZⱼᵀWZⱼ)⁻¹``; over
    levels of two or three rows its mean has no finite variance (a slope's
    ``1/Σ(x − x̄)²``), and a few such levels would swamp the moments.
    Choosing levels by ``Z`` alone keeps the moments unbiased; the smallest
    eigenvalue must be at least :data:`WEAK_LEVEL_FRACTION` of its median.
    All usable levels are kept when fewer than two would remain.
    """
    floor = WEAK_LEVEL_FRACTION * float(np.median(smallest[usable]))
    strong = usable & (smallest >= floor)
    return strong if np.sum(strong) >= 2 else usable


def _additive_noise(design: Design, layout: ReLayout) -> float | None:
    """The residual variance of ``y`` on ``[X Z]`` (every effect fixed), for small designs.

    Within the levels of one factor of a crossed design the other factors
    still vary, and inflate the within-level variance; with all effects in
    the fit none is left in the residuals (Henderson's method III). ``None``
    with one grouping factor (nothing else varies within its levels), when
    the fit is too large for a dense one (:data:`_DENSE_WORK`), or when it
    leaves fewer than a tenth of the observations as residual degrees of freedom.
    """
    x = design.X
    n = x.shape[0]
    if len({b.group for b in layout.blocks}) < 2:
        return None
    width = x.shape[1] + sum(b.n_levels * b.n_terms for b in layout.blocks)
    if n * width * width > _DENSE_WORK:
        return None
    y = design.y if design.offset is None else design.y - design.offset
    columns = [x]
    for block in layout.blocks:
        z = np.zeros((n, block.n_levels * block.n_terms))
        for a in range(block.n_terms):
            z[np.arange(n), block.codes * block.n_terms + a] = block.X[:, a]
        columns.append(z)
    full = np.hstack(columns)
    coef, _, rank, _ = np.linalg.lstsq(full, y, rcond=None)
    resid = y - full @ coef
    # the rows may be root rows of cell moments: the sum of squares is the data's, the
    # observations are counted by the design
    nobs = design.nobs
    dof = nobs - int(rank)
    if dof < max(2, nobs // 10):
        return None
    return float(resid @ resid) / dof


def _lower_entries(factor: np.ndarray) -> np.ndarray:
    """The lower triangle of a factor, column by column (``θ``'s order)."""
    q = factor.shape[0]
    return np.array([factor[row, col] for col in range(q) for row in range(col, q)])
