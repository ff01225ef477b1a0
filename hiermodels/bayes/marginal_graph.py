"""The one-factor Gaussian model with its group effects integrated out, as a PyMC graph.

For a Gaussian design with one grouping factor and at most two terms the
marginal likelihood ``y ~ N(X beta + offset, sigma^2 I + Z Sigma Z')`` is
evaluated level by level through the Woodbury identity from per-level
sufficient statistics (:class:`FactorStatistics`). The same algebra
(:func:`factor_cholesky`, :func:`precision_terms`) serves the draws of the
effects from their exact conditional afterwards
(:mod:`hiermodels.bayes.effect_draws`), on numpy arrays instead of PyTensor
scalars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from hiermodels.bayes.build import _factor_scales, _fixed_effects, _hyper, model_coords
from hiermodels.bayes.priors import Prior, Priors, resolve_priors
from hiermodels.design.design import Design

#: What the one-factor Woodbury algebra computes with: PyTensor scalars in the
#: model graph, numpy arrays of draws afterwards.
type Value = pt.TensorVariable | np.ndarray | float

__all__ = [
    "FactorStatistics",
    "LeastSquaresOrigin",
    "build_marginal_model",
    "can_marginalize",
    "factor_cholesky",
    "precision_terms",
]


def can_marginalize(design: Design) -> bool:
    """Whether :func:`build_marginal_model` applies: gaussian, one factor, at most 2 terms."""
    layouts = design.factors
    return design.family.is_gaussian and len(layouts) == 1 and len(layouts[0].terms) <= 2


@dataclass(frozen=True, eq=False)
class FactorStatistics:
    """Per-level sufficient statistics of a gaussian model with one grouping factor.

    With ``r = y - offset - X beta`` and ``Z_j`` the term columns of level ``j``:
    ``ZtZ[j] = Z_j' W_j Z_j``, ``Zty[j] = Z_j' W_j y_j``, ``ZtX[j] = Z_j' W_j X_j``;
    the totals ``yty``, ``Xty``, ``XtX`` (weighted alike) and the level sizes
    ``n``. ``W`` holds the design's precision weights (1 without), and
    ``log_weights`` is their ``sum(log w)``.
    """

    n: np.ndarray
    ZtZ: np.ndarray
    Zty: np.ndarray
    ZtX: np.ndarray
    yty: float
    Xty: np.ndarray
    XtX: np.ndarray
    log_weights: float = 0.0

    @classmethod
    def from_design(cls, design: Design) -> FactorStatistics:
        """The statistics of the design's single grouping factor."""
        (layout,) = design.factors
        y = np.asarray(design.y, dtype=float)
        if design.offset is not None:
            y = y - np.asarray(design.offset, dtype=float)
        X, Z, codes, levels = design.X, layout.X, layout.codes, len(layout.levels)
        q, p = Z.shape[1], X.shape[1]
        weights = design.weights
        wZ = Z if weights is None else Z * weights[:, None]
        wy = y if weights is None else y * weights

        def by_level(values: np.ndarray) -> np.ndarray:
            out = np.zeros((levels, values.shape[1]))
            np.add.at(out, codes, values)
            return out

        ZtZ = by_level((wZ[:, :, None] * Z[:, None, :]).reshape(len(y), -1)).reshape(-1, q, q)
        ZtX = by_level((wZ[:, :, None] * X[:, None, :]).reshape(len(y), -1)).reshape(-1, q, p)
        return cls(
            n=np.bincount(codes, minlength=levels).astype(float),
            ZtZ=ZtZ,
            Zty=by_level(wZ * y[:, None]),
            ZtX=ZtX,
            yty=float(y @ wy),
            Xty=X.T @ wy,
            XtX=X.T @ (X if weights is None else X * weights[:, None]),
            log_weights=0.0 if weights is None else float(np.sum(np.log(weights))),
        )


def factor_cholesky(sds: Sequence[Value], r: Value, correlated: bool) -> tuple[Value, Value, Value]:
    """Entries ``(l00, l10, l11)`` of the covariance Cholesky factor of one or two terms.

    Works on pytensor scalars and on numpy arrays of draws alike; for one
    term ``l10 = l11 = 0``. ``r`` is the correlation (ignored unless ``correlated``).
    """
    if len(sds) == 1:
        return sds[0], 0.0, 0.0
    if not correlated:
        return sds[0], 0.0, sds[1]
    return sds[0], sds[1] * r, sds[1] * (1.0 - r**2) ** 0.5


def precision_terms(
    stats: FactorStatistics,
    chol: tuple[Value, Value, Value],
    sigma: Value,
    h0: Value,
    h1: Value,
) -> tuple[Value, Value, Value, Value, Value]:
    """``A = I + L' Z'Z L / sigma^2`` (entries a00, a01, a11) and ``c = L' Z'r``, per level.

    ``h0, h1`` are the entries of ``Z_j' r_j``. Works on pytensor and numpy values.
    """
    l00, l10, l11 = chol
    g00 = stats.ZtZ[:, 0, 0]
    g01 = stats.ZtZ[:, 0, 1] if stats.ZtZ.shape[1] > 1 else 0.0
    g11 = stats.ZtZ[:, 1, 1] if stats.ZtZ.shape[1] > 1 else 0.0
    s2 = sigma**2
    a00 = 1.0 + (l00**2 * g00 + 2.0 * l00 * l10 * g01 + l10**2 * g11) / s2
    a01 = l11 * (l00 * g01 + l10 * g11) / s2
    a11 = 1.0 + l11**2 * g11 / s2
    return a00, a01, a11, l00 * h0 + l10 * h1, l11 * h1


@dataclass(frozen=True, eq=False)
class LeastSquaresOrigin:
    """A response written as ``X (origin + reference) + residual``, for stable likelihoods.

    ``origin`` is the response's mean at the column of ones (zero without
    one), taken off first: ``y − mean`` is exact even where ``y`` sits far from
    zero, where a least-squares fit of ``y`` itself would round at ``|y|``.
    ``reference`` is the least-squares fit of the rest. A likelihood of the
    residual at ``(b − origin) − reference`` is the likelihood of ``y`` at
    ``b``, without the cancellation of ``y'y − 2b'X'y + b'X'Xb`` (``y + 1e12``).

    Attributes
    ----------
    origin, reference : numpy.ndarray
        ``(p,)`` each.
    residual : numpy.ndarray
        ``(n,)`` ``y − offset − X (origin + reference)``, computed in that order.
    """

    origin: np.ndarray
    reference: np.ndarray
    residual: np.ndarray

    @classmethod
    def of(cls, design: Design, X: np.ndarray) -> LeastSquaresOrigin:
        """The split of ``design``'s response (less its offset) over the columns ``X``."""
        y = np.asarray(design.y, dtype=float)
        if design.offset is not None:
            y = y - design.offset
        origin = np.zeros(X.shape[1])
        ones = [j for j in range(X.shape[1]) if design.is_constant_column(X[:, j])]
        if ones and y.size:
            # root rows hold the response less its shift: the mean adds the shift back
            local = design.column_mean(y)
            origin[ones[0]] = design.response_shift + local
            y = y - (local * design.ones if design.has_root_rows else local)
        elif design.response_shift:
            y = y + design.response_shift * design.ones
        reference = np.linalg.lstsq(X, y, rcond=None)[0] if X.shape[1] else np.zeros(0)
        return cls(origin, reference, y - X @ reference)

    def residual_design(self, design: Design, X: np.ndarray) -> Design:
        """``design`` with columns ``X`` and the residual as its response, no offset."""
        return replace(design, X=X, y=self.residual, offset=None)


def _marginal_loglik(
    stats: FactorStatistics, beta: pt.TensorVariable, chol: tuple, sigma: pt.TensorVariable
) -> pt.TensorVariable:
    """``log N(y | X beta, sigma^2 W^-1 + Z Sigma Z')`` through Woodbury, level by level."""
    h = stats.Zty - pt.sum(stats.ZtX * beta, axis=2)
    h1 = h[:, 1] if stats.Zty.shape[1] > 1 else 0.0
    a00, a01, a11, c0, c1 = precision_terms(stats, chol, sigma, h[:, 0], h1)
    det = a00 * a11 - a01**2
    quad = (a11 * c0**2 - 2.0 * a01 * c0 * c1 + a00 * c1**2) / det
    rr = stats.yty - 2.0 * pt.sum(beta * stats.Xty) + pt.sum(stats.XtX * beta[:, None] * beta)
    s2 = sigma**2
    n = float(np.sum(stats.n))
    return -0.5 * (
        n * pt.log(2.0 * np.pi * s2)
        + pt.sum(pt.log(det))
        + (rr - pt.sum(quad) / s2) / s2
        - stats.log_weights
    )


def build_marginal_model(
    design: Design, priors: Priors | Mapping[str, Prior] | None = None
) -> pm.Model:
    """The model of :func:`build_pymc_model` with the group effects integrated out.

    For a gaussian design with one grouping factor and at most two terms, the
    marginal likelihood ``y ~ N(X beta + offset, sigma^2 W^-1 + Z Sigma Z')``
    (``W`` the precision weights, the identity without) is
    evaluated level by level (Woodbury identity) as a Potential named
    ``marginal_loglik``. The free variables are ``beta``, the SDs, the raw
    correlation and ``sigma``, with the same priors and names; ``u`` and ``z``
    are drawn afterwards from their exact Gaussian conditional
    (:func:`hiermodels.bayes.effect_draws.conditional_effects`). The posterior is the
    same; only the sampler sees 5-6 dimensions instead of hundreds.

    Raises
    ------
    ValueError
        When :func:`can_marginalize` is false.
    """
    if not can_marginalize(design):
        raise ValueError(
            "the group effects can be integrated out only for gaussian models with one "
            "grouping factor and at most two random-effect terms"
        )
    resolved = resolve_priors(design, priors)
    (layout,) = design.factors
    coords = model_coords(design)
    X = np.asarray(design.X, dtype=float)
    split = LeastSquaresOrigin.of(design, X)
    stats = FactorStatistics.from_design(split.residual_design(design, X))
    with pm.Model(coords=coords) as model:
        beta = _fixed_effects(design, resolved, {})
        sds, chols = _factor_scales(layout, resolved, {})
        correlated = chols[0] is not None and len(layout.terms) == 2
        r = chols[0][1, 0] if correlated else 0.0  # type: ignore[index]
        sigma = _hyper("sigma", resolved, {})
        chol = factor_cholesky(sds, r, correlated)
        offsets = (beta - split.origin) - split.reference
        pm.Potential("marginal_loglik", _marginal_loglik(stats, offsets, chol, sigma))
    return model
