"""Relative covariance factors: θ ↔ Λ, bounds, and θ → variances and correlations.

Each random-effect block with ``q`` terms has a lower-triangular relative
covariance factor ``T`` (``q × q``) such that the block's covariance is
``σ² T Tᵀ`` (σ the residual SD for Gaussian models, 1 otherwise). ``θ``
stacks the lower triangles of all factors column by column, block after
block — the order lme4 uses, so that ``θ`` can be compared with lme4's.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = [
    "ThetaLayout",
    "factor_from_theta",
    "covariance_to_sd_corr",
]


@functools.cache
def _lower_indices(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column indices of a ``q × q`` lower triangle, column-major (read-only)."""
    cols, rows = np.triu_indices(q)
    rows.flags.writeable = False
    cols.flags.writeable = False
    return rows, cols


def factor_from_theta(theta_block: np.ndarray, q: int) -> np.ndarray:
    """Return the lower-triangular factor ``T`` for one block.

    Parameters
    ----------
    theta_block : numpy.ndarray
        The ``q (q + 1) / 2`` entries of the block's lower triangle,
        column-major (lme4's order: for ``q = 2``, ``T11, T21, T22``).
    q : int
        Number of terms in the block.

    Returns
    -------
    numpy.ndarray
        ``(q, q)`` lower-triangular matrix.
    """
    factor = np.zeros((q, q))
    rows, cols = _lower_indices(q)
    factor[rows, cols] = theta_block
    return factor


def covariance_to_sd_corr(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a covariance matrix into standard deviations and correlations.

    A zero variance gives a zero SD and correlations of zero with every
    other term (they are undefined; lme4 reports ``NaN`` there, which a
    comparison cannot use).

    Parameters
    ----------
    cov : numpy.ndarray
        ``(q, q)`` symmetric positive semi-definite matrix.

    Returns
    -------
    sds : numpy.ndarray
        ``(q,)`` standard deviations.
    corr : numpy.ndarray
        ``(q, q)`` correlation matrix with unit diagonal.
    """
    sds = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = cov / np.outer(sds, sds)
    corr[~np.isfinite(corr)] = 0.0
    np.fill_diagonal(corr, 1.0)
    return sds, np.clip(corr, -1.0, 1.0)


@dataclass(frozen=True)
class ThetaLayout:
    """Where each block's factor lives inside the stacked ``θ`` vector.

    Attributes
    ----------
    sizes : tuple of int
        Number of terms ``q`` of every block, in θ order.
    """

    sizes: tuple[int, ...]

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Start of each block's slice in ``θ``."""
        lengths = [q * (q + 1) // 2 for q in self.sizes]
        return tuple(int(x) for x in np.concatenate([[0], np.cumsum(lengths)[:-1]]))

    @cached_property
    def length(self) -> int:
        """Total length of ``θ``."""
        return sum(q * (q + 1) // 2 for q in self.sizes)

    def block_slice(self, index: int) -> slice:
        """The slice of ``θ`` holding block ``index``."""
        q = self.sizes[index]
        start = self.offsets[index]
        return slice(start, start + q * (q + 1) // 2)

    @cached_property
    def _placement(self) -> tuple[tuple[slice, np.ndarray, np.ndarray], ...]:
        """Per block: its slice of ``θ`` and the rows and columns it fills."""
        return tuple((self.block_slice(i), *_lower_indices(q)) for i, q in enumerate(self.sizes))

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """Every block's lower-triangular factor ``T`` for a given ``θ``."""
        theta = np.asarray(theta, dtype=float)
        if theta.shape != (self.length,):
            raise ValueError(f"theta must have length {self.length}, got shape {theta.shape}")
        out = []
        for (part, rows, cols), q in zip(self._placement, self.sizes, strict=True):
            factor = np.zeros((q, q))
            factor[rows, cols] = theta[part]
            out.append(factor)
        return out

    def lower_bounds(self) -> np.ndarray:
        """Lower bounds: 0 on the diagonal of every factor, −∞ elsewhere."""
        bounds = []
        for q in self.sizes:
            rows, cols = _lower_indices(q)
            bounds.append(np.where(rows == cols, 0.0, -np.inf))
        return np.concatenate(bounds) if bounds else np.zeros(0)

    def start(self) -> np.ndarray:
        """Start value: identity factors (unit relative SDs, no correlation), as lme4."""
        starts = []
        for q in self.sizes:
            rows, cols = _lower_indices(q)
            starts.append((rows == cols).astype(float))
        return np.concatenate(starts) if starts else np.zeros(0)

    def diagonal_mask(self) -> np.ndarray:
        """Boolean mask of the θ entries on factor diagonals."""
        return np.isfinite(self.lower_bounds())

    def theta_from_factors(self, factors: list[np.ndarray]) -> np.ndarray:
        """Stack lower-triangular factors back into ``θ``."""
        parts = []
        for factor, q in zip(factors, self.sizes, strict=True):
            rows, cols = _lower_indices(q)
            parts.append(np.asarray(factor)[rows, cols])
        return np.concatenate(parts) if parts else np.zeros(0)

    def covariances(self, theta: np.ndarray, scale: float = 1.0) -> list[np.ndarray]:
        """Every block's covariance ``scale² T Tᵀ``."""
        return [scale**2 * factor @ factor.T for factor in self.factors(theta)]
