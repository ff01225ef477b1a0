"""An exact reparameterisation that makes a linear mixed model's numerics unit-free.

A mixed model's estimates transform exactly under an affine change of the
response (``a + b·y``), a rescaling of any covariate, and — for a term with
a random intercept and correlated slopes — a shift of a random-slope
covariate. Floating point does not: with ``y`` around ``1e12`` the cross
products ``y'y`` and ``X'y`` cancel catastrophically, a covariate in
micro-units makes ``θ`` span twelve orders of magnitude, and a slope
covariate far from zero (``Days + 100``) leaves the optimiser in a long
narrow valley of nearly ±1 correlation.

:class:`Standardization` therefore fits the model to

* ``ỹ = (y − offset − c) / s``, with ``c`` the mean response when the
  constant lies in the column space of ``X`` (otherwise 0),
* ``X̃ = X T``: every non-constant column centred (when there is an
  intercept column) and scaled,
* ``X̃_b = X_b T_b`` for every random-effect block: centred and scaled when
  the block has an intercept column and correlated terms, scaled otherwise
  (centring would change the model of an uncorrelated ``(x || g)`` term),

and maps the estimates back::

    β = s T β̃ + c a,     b = s T_b b̃,     σ = s σ̃,     Λ_b Λ_bᵀ = T_b Λ̃_b Λ̃_bᵀ T_bᵀ

(``X a = 1``). A design with precision weights is centred and scaled by
weighted means and SDs, the moments of the model it fits (any centre and
scale give the same fit; these keep the weighted cross products best
conditioned). Every scale is a power of two and the response is centred by
one constant, so ``ỹ`` and ``X̃`` carry the data's own digits: the fitted
model is exactly the original one, only better conditioned. The criteria
differ by a constant, :meth:`Standardization.criterion_offset`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from hiermodels.design.design import Design
from hiermodels.mle.blocked import ReLayout

__all__ = ["Standardization", "lower_triangular_factor"]

# A column whose least-squares fit of the constant leaves less than this
# (relative RMS) is taken to span the constant: round-off of an exact fit is ~1e-15.
_SPANS_CONSTANT = 1e-10


def _power_of_two(value: float) -> float:
    """The power of two nearest ``value`` (1 for zero or non-finite values)."""
    if not (value > 0.0 and math.isfinite(value)):
        return 1.0
    return float(2.0 ** round(math.log2(value)))


def _constant_column(X: np.ndarray, ones: np.ndarray) -> int | None:
    """Index of the column equal to the constant ``ones``, if any."""
    for j in range(X.shape[1]):
        if np.array_equal(X[:, j], ones):
            return j
    return None


@dataclass(frozen=True, eq=False)
class _Moments:
    """Means and root mean squares over a design's rows, from inner products.

    ``⟨a, b⟩ = Σ w a b`` with the constant ``ones`` (ones, or the root rows
    of the constant in a compressed design, whose roots hold any weights):
    the mean of a column is ``⟨1, x⟩ / ⟨1, 1⟩`` and its spread about ``c``
    is ``√(⟨x − c·1, x − c·1⟩ / ⟨1, 1⟩)`` on either kind of rows.
    """

    ones: np.ndarray
    weights: np.ndarray | None

    def inner(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.dot(a * self.weights, b)) if self.weights is not None else float(a @ b)

    @property
    def total(self) -> float:
        return self.inner(self.ones, self.ones)

    def mean(self, column: np.ndarray) -> float:
        return self.inner(self.ones, column) / self.total

    def root_mean_square(self, column: np.ndarray) -> float:
        if not column.size:
            return 0.0
        return math.sqrt(max(self.inner(column, column), 0.0) / self.total)


def _column_transform(X: np.ndarray, centre: bool, moments: _Moments) -> np.ndarray:
    """``T`` with ``X T`` centred (around the constant column, if ``centre``) and scaled.

    The constant column itself is left as it is.
    """
    p = X.shape[1]
    transform = np.eye(p)
    ones = _constant_column(X, moments.ones) if centre else None
    for j in range(p):
        if j == ones:
            continue
        column = X[:, j]
        if ones is not None:
            mean = moments.mean(column)
            scale = _power_of_two(moments.root_mean_square(column - mean * moments.ones))
            transform[ones, j] = -mean / scale
        else:
            scale = _power_of_two(moments.root_mean_square(column))
        transform[j, j] = 1.0 / scale
    return transform


def lower_triangular_factor(matrix: np.ndarray) -> np.ndarray:
    """The lower-triangular ``L`` with non-negative diagonal and ``L Lᵀ = M Mᵀ``.

    Works for singular ``M M ᵀ`` too (a QR factorisation of ``Mᵀ``, not a
    Cholesky factorisation of the product).
    """
    q = matrix.shape[0]
    if q == 0:
        return matrix.copy()
    if matrix.shape == (1, 1):  # what the QR below gives a 1 × 1 matrix, without LAPACK
        return np.where(matrix < 0.0, -matrix, matrix).astype(float)
    _, upper = np.linalg.qr(matrix.T)
    signs = np.where(np.diag(upper) < 0.0, -1.0, 1.0)
    return np.tril(upper.T * signs[None, :])


@dataclass(frozen=True, eq=False)
class Standardization:
    """The centring and scaling of one design, and the maps back to its units.

    Build it with :meth:`of`; :meth:`apply` gives the standardised design.

    Attributes
    ----------
    y_shift : float
        ``c``, subtracted from the response (after the offset).
    row_shift : float
        What :meth:`apply` subtracts from the design's ``y``: ``c`` less the
        design's :attr:`~hiermodels.design.design.Design.response_shift`
        (computed without forming ``c``, which may be large).
    y_scale : float
        ``s``, a power of two dividing the centred response.
    intercept_direction : numpy.ndarray
        ``a`` with ``X a = 1`` (zeros when the response is not centred).
    fixed_transform : numpy.ndarray
        ``(p, p)`` ``T`` with ``X̃ = X T``.
    block_transforms : tuple of numpy.ndarray
        ``(q, q)`` ``T_b`` with ``X̃_b = X_b T_b``, in the design's block order.
    """

    y_shift: float
    y_scale: float
    row_shift: float
    intercept_direction: np.ndarray
    fixed_transform: np.ndarray
    block_transforms: tuple[np.ndarray, ...]

    @classmethod
    def of(cls, design: Design) -> Standardization:
        """The standardisation of a design.

        The response is centred and scaled only for a Gaussian design: the
        other families' likelihoods are not location-scale families of the
        response, and their covariates alone are standardised.
        """
        X = np.asarray(design.X, dtype=float)
        moments = _Moments(design.ones, design.weights)
        blocks = tuple(
            _column_transform(block.X, centre=block.n_terms > 1, moments=moments)
            for block in design.blocks
        )
        shift, scale, direction = 0.0, 1.0, None
        row_shift = 0.0
        if design.family.is_gaussian:
            y = np.asarray(design.y, dtype=float)
            if design.offset is not None:
                y = y - design.offset
            direction = _constant_direction(X, moments.ones)
            if direction is not None and y.size:
                row_shift = moments.mean(y)
                shift = design.response_shift + row_shift
            else:
                # no constant to absorb a shift: the response as it is
                row_shift = -design.response_shift
            scale = _power_of_two(moments.root_mean_square(y - row_shift * moments.ones))
        return cls(
            y_shift=shift,
            y_scale=scale,
            row_shift=row_shift,
            intercept_direction=np.zeros(X.shape[1]) if direction is None else direction,
            fixed_transform=_column_transform(X, centre=True, moments=moments),
            block_transforms=blocks,
        )

    def apply(self, design: Design) -> Design:
        """The standardised design: ``X̃`` and every ``X̃_b``; for a Gaussian design ``ỹ``.

        A Gaussian design's offset is folded into ``ỹ``; other families keep
        their response and offset.
        """
        blocks = tuple(
            replace(block, X=block.X @ transform)
            for block, transform in zip(design.blocks, self.block_transforms, strict=True)
        )
        standardized = replace(design, X=design.X @ self.fixed_transform, blocks=blocks)
        if not design.family.is_gaussian:
            return standardized
        y = np.asarray(design.y, dtype=float)
        if design.offset is not None:
            y = y - design.offset
        # root rows hold the constant as their own column
        shift = self.row_shift * design.ones if design.has_root_rows else self.row_shift
        return replace(standardized, y=(y - shift) / self.y_scale, offset=None)

    def beta(self, beta: np.ndarray) -> np.ndarray:
        """Fixed effects in the design's units from standardised ones."""
        shift = self.y_shift * self.intercept_direction
        return self.y_scale * (self.fixed_transform @ beta) + shift

    def standard_beta(self, beta: np.ndarray) -> np.ndarray:
        """Standardised fixed effects from ones in the design's units (inverse of :meth:`beta`)."""
        shifted = np.asarray(beta, dtype=float) - self.y_shift * self.intercept_direction
        return np.linalg.solve(self.fixed_transform, shifted) / self.y_scale

    def vcov_beta(self, vcov: np.ndarray) -> np.ndarray:
        """Covariance of the fixed effects in the design's units."""
        t = self.fixed_transform
        return self.y_scale**2 * (t @ vcov @ t.T)

    def factors(self, factors: list[np.ndarray], order: list[int]) -> list[np.ndarray]:
        """Relative covariance factors ``Λ_b`` (θ order) from standardised ones.

        ``order[k]`` is the design index of the ``k``-th block in θ order.
        """
        return [
            lower_triangular_factor(self.block_transforms[i] @ factor)
            for factor, i in zip(factors, order, strict=True)
        ]

    def standard_factors(self, factors: list[np.ndarray], order: list[int]) -> list[np.ndarray]:
        """Standardised relative covariance factors ``Λ̃_b`` from the design's ones."""
        return [
            lower_triangular_factor(np.linalg.solve(self.block_transforms[i], factor))
            for factor, i in zip(factors, order, strict=True)
        ]

    def theta(self, theta: np.ndarray, layout: ReLayout) -> np.ndarray:
        """lme4's ``θ`` from the standardised one; ``layout`` is the standardised design's."""
        factors = layout.theta.factors(theta)
        return layout.theta.theta_from_factors(self.factors(factors, list(layout.order)))

    def standard_theta(self, theta: np.ndarray, layout: ReLayout) -> np.ndarray:
        """The standardised ``θ`` from lme4's; the inverse of :meth:`theta`."""
        factors = layout.theta.factors(theta)
        return layout.theta.theta_from_factors(self.standard_factors(factors, list(layout.order)))

    def modes(self, modes: np.ndarray, index: int) -> np.ndarray:
        """``(levels, q)`` conditional modes of design block ``index`` in the design's units."""
        return self.y_scale * (modes @ self.block_transforms[index].T)

    def covariances(self, covs: np.ndarray, index: int) -> np.ndarray:
        """``(levels, q, q)`` conditional covariances of design block ``index``."""
        t = self.block_transforms[index]
        return self.y_scale**2 * np.einsum("ij,ljk,mk->lim", t, covs, t)

    def effects(
        self,
        modes: tuple[np.ndarray, ...],
        covs: tuple[np.ndarray, ...],
        order: tuple[int, ...],
    ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """Conditional modes and covariances of every block (θ order) in the design's units.

        ``order[k]`` is the design index of the ``k``-th block in θ order.
        """
        return (
            tuple(self.modes(m, order[k]) for k, m in enumerate(modes)),
            tuple(self.covariances(c, order[k]) for k, c in enumerate(covs)),
        )

    def criterion_offset(self, nobs: int, reml: bool) -> float:
        """Criterion in the design's units minus the standardised one.

        ``2 n log s`` for the ML deviance; ``2 (n − p) log s − 2 log|det T|``
        for the REML criterion, whose ``log|R_X|²`` depends on the units of ``X``.
        """
        p = self.fixed_transform.shape[0]
        dof = nobs - p if reml else nobs
        offset = 2.0 * dof * math.log(self.y_scale)
        if reml and p:
            offset -= 2.0 * float(np.sum(np.log(np.abs(np.diag(self.fixed_transform)))))
        return offset


def _constant_direction(X: np.ndarray, ones: np.ndarray) -> np.ndarray | None:
    """``a`` with ``X a = 1`` when the constant ``ones`` lies in the column space of ``X``."""
    p = X.shape[1]
    if p == 0 or X.shape[0] == 0:
        return None
    column = _constant_column(X, ones)
    if column is not None:
        return np.eye(p)[column]
    coef, *_ = np.linalg.lstsq(X, ones, rcond=None)
    misfit = float(np.sqrt(np.sum((X @ coef - ones) ** 2) / np.sum(ones**2)))
    return coef if misfit < _SPANS_CONSTANT else None
