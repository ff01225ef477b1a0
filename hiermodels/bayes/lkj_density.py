"""The LKJ prior of three or more correlated terms on PyMC's unconstrained Cholesky coordinates.

The direct densities (:mod:`hiermodels.bayes.hyper_density`) sample the
correlation of a random-effect block of ``q ≥ 3`` terms as PyMC's
``LKJCorr`` Cholesky factor in its ``CholeskyCorrTransform`` coordinates:
:class:`LkjCholeskyPrior` holds the prior of one such block, and the
compiled :func:`lkj_cholesky` and :func:`lkj_pull_back` evaluate the factor
with its log density and pull gradients in the factor back to the free
coordinates.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy import special

from hiermodels.bayes.priors import Prior

__all__ = ["LkjCholeskyPrior"]


class LkjCholeskyPrior:
    """``LKJCorr(eta)`` of ``q ≥ 3`` terms on PyMC's unconstrained Cholesky coordinates.

    The free vector ``v`` of length ``q(q − 1)/2`` fills the strictly lower
    triangle of a unit-diagonal matrix in PyMC's spiral order; each row
    divided by its norm is the Cholesky factor ``L`` of the correlation.
    With the LKJ density of ``L`` and the transform's Jacobian
    ``Σ_i (i + 2) log L_ii``, the log density on ``v`` is ::

        c(eta, q) + (2 eta + q − 1) Σ_i log L_ii,   L_ii = (1 + ‖v_i‖²)^(−1/2)

    with ``v_i`` row ``i``'s entries and ``c`` PyMC's normalising constant.

    Parameters
    ----------
    name : str
        The variable (``corr_<g>__raw`` or ``corr_<g>__raw<k>``).
    prior : Prior
        An ``LKJCorr`` prior.
    q : int
        Number of terms, at least 3.

    Attributes
    ----------
    constant : float
        ``c(eta, q)``.
    power : float
        ``2 eta + q − 1``.
    """

    def __init__(self, name: str, prior: Prior, q: int) -> None:
        if prior.dist != "LKJCorr":
            raise ValueError(f"prior {prior!r} for {name!r} is not an LKJCorr prior")
        if q < 3:
            raise ValueError(f"LkjCholeskyPrior needs at least 3 terms, got {q}")
        self.name = name
        self.q = q
        self.size = q * (q - 1) // 2
        eta = float(prior.params["eta"])
        k = np.arange(1, q)
        self.constant = float(
            (q - 1) * special.gammaln(eta + 0.5 * (q - 1))
            - np.sum(0.5 * k * math.log(math.pi) + special.gammaln(eta + 0.5 * (q - 1 - k)))
        )
        self.power = 2.0 * eta + q - 1.0
        # PyMC's spiral fill of an (q-1) x (q-1) lower triangle, placed below the diagonal
        m = q - 1
        index = np.arange(self.size)
        filled = np.concatenate([index[m:], index[::-1]]).reshape(m, m)
        rows, cols = np.tril_indices(m)
        self._rows = np.ascontiguousarray(rows + 1, dtype=np.int64)
        self._cols = np.ascontiguousarray(cols, dtype=np.int64)
        self._index = np.ascontiguousarray(filled[rows, cols], dtype=np.int64)

    def evaluate(self, v: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """``(L, log p + log|J|, its gradient in v)`` at the unconstrained ``v``."""
        v = np.ascontiguousarray(v, dtype=float)
        chol = np.empty((self.q, self.q))
        slope = np.zeros(self.size)
        logp = lkj_cholesky(v, 0, self.q, self.constant, self.power, *self.tables, slope, chol)
        return chol, logp, slope

    def pull_back(self, v: np.ndarray, d_chol: np.ndarray) -> np.ndarray:
        """The gradient in ``v`` of a function whose gradient in ``L`` is ``d_chol``."""
        v = np.ascontiguousarray(v, dtype=float)
        out = np.zeros(self.size)
        lkj_pull_back(v, 0, self.q, *self.tables, np.ascontiguousarray(d_chol, dtype=float), out)
        return out

    @property
    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(rows, cols, index)``: entry ``k`` of ``v`` fills ``L[rows[k], cols[k]]``, in
        the order of ``index`` (PyMC's spiral)."""
        return self._rows, self._cols, self._index

    def unconstrain(self, chol: np.ndarray) -> np.ndarray:
        """The unconstrained ``v`` of a correlation Cholesky factor."""
        chol = np.asarray(chol, dtype=float)
        raw = chol / np.diag(chol)[:, None]
        out = np.empty(self.size)
        out[self._index] = raw[self._rows, self._cols]
        return out


@njit(cache=True, nogil=True, error_model="numpy")
def lkj_cholesky(
    x: np.ndarray,
    at: int,
    q: int,
    const: float,
    power: float,
    rows: np.ndarray,
    cols: np.ndarray,
    index: np.ndarray,
    slope: np.ndarray,
    chol: np.ndarray,
) -> float:
    """LKJ's Cholesky factor from ``x[at:]`` into ``chol``; its log density (with Jacobian).

    Adds the density's gradient to ``slope[at:]``. See :class:`LkjCholeskyPrior`.
    """
    for i in range(q):
        for j in range(q):
            chol[i, j] = 1.0 if i == j else 0.0
    for k in range(rows.size):
        chol[rows[k], cols[k]] = x[at + index[k]]
    norm2 = np.empty(q)
    logp = const
    for i in range(q):
        total = 0.0
        for j in range(i + 1):
            total += chol[i, j] * chol[i, j]
        norm2[i] = total
        logp -= 0.5 * power * np.log(total)
    for k in range(rows.size):
        slope[at + index[k]] -= power * chol[rows[k], cols[k]] / norm2[rows[k]]
    for i in range(q):
        norm = np.sqrt(norm2[i])
        for j in range(i + 1):
            chol[i, j] /= norm
    return logp


@njit(cache=True, nogil=True, error_model="numpy")
def lkj_pull_back(
    x: np.ndarray,
    at: int,
    q: int,
    rows: np.ndarray,
    cols: np.ndarray,
    index: np.ndarray,
    d_chol: np.ndarray,
    out: np.ndarray,
) -> None:
    """Add to ``out[at:]`` the gradient in ``x[at:]`` of a function of ``L`` (``d_chol``)."""
    raw = np.eye(q)
    for k in range(rows.size):
        raw[rows[k], cols[k]] = x[at + index[k]]
    norm2 = np.empty(q)
    along = np.empty(q)
    for i in range(q):
        n2 = 0.0
        dot = 0.0
        for j in range(i + 1):
            n2 += raw[i, j] * raw[i, j]
            dot += d_chol[i, j] * raw[i, j]
        norm2[i] = n2
        along[i] = dot
    for k in range(rows.size):
        i, j = rows[k], cols[k]
        norm = np.sqrt(norm2[i])
        out[at + index[k]] += d_chol[i, j] / norm - along[i] * raw[i, j] / (norm2[i] * norm)
