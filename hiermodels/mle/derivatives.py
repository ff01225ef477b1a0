"""Numerical derivatives of a fit's criteria: finite-difference gradients and Hessians.

Used where no analytic derivative exists (the Laplace deviance's Hessian in
the GLMM's second stage, the asymptotic covariance of the variance
parameters) and to check or complete analytic ones (the Hessian from
differences of an analytic gradient).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["finite_difference_gradient", "finite_difference_hessian", "hessian_from_gradient"]


def finite_difference_gradient(
    func: Callable[[np.ndarray], float],
    x: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    step: float = 1e-5,
) -> np.ndarray:
    """Central (one-sided at a bound) finite-difference gradient.

    Parameters
    ----------
    func : callable
        Objective.
    x : numpy.ndarray
        Point.
    lower, upper : numpy.ndarray
        Bounds; a step never leaves them.
    step : float
        Relative step (absolute for ``|x| < 1``).

    Returns
    -------
    numpy.ndarray
    """
    grad = np.zeros_like(x)
    f0 = func(x)
    for i in range(x.size):
        h = step * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] = min(x[i] + h, upper[i])
        down[i] = max(x[i] - h, lower[i])
        if up[i] > x[i] and down[i] < x[i]:
            grad[i] = (func(up) - func(down)) / (up[i] - down[i])
        elif up[i] > x[i]:
            grad[i] = (func(up) - f0) / (up[i] - x[i])
        else:
            grad[i] = (f0 - func(down)) / (x[i] - down[i])
    return grad


def finite_difference_hessian(
    func: Callable[[np.ndarray], float], x: np.ndarray, step: float = 1e-4
) -> np.ndarray:
    """Central-difference Hessian of a scalar function (relative step ``step``)."""
    k = x.size
    hess = np.zeros((k, k))
    h = step * np.maximum(np.abs(x), 1.0)
    f0 = func(x)
    for a in range(k):
        up, down = x.copy(), x.copy()
        up[a] += h[a]
        down[a] -= h[a]
        hess[a, a] = (func(up) - 2.0 * f0 + func(down)) / h[a] ** 2
        for b in range(a):
            vals = []
            for sa, sb in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                pt = x.copy()
                pt[a] += sa * h[a]
                pt[b] += sb * h[b]
                vals.append(func(pt))
            hess[a, b] = hess[b, a] = (vals[0] - vals[1] - vals[2] + vals[3]) / (4 * h[a] * h[b])
    return hess


def hessian_from_gradient(
    value_and_gradient: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x: np.ndarray,
    grad: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    step: float = 1e-5,
    known: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Forward differences of the gradient, symmetrised; steps stay inside the bounds.

    ``known = (index, block)`` gives the Hessian on the coordinates ``index``:
    those columns are not differenced, and their cross terms with the others
    come from the others' columns.
    """
    k = x.size
    hess = np.empty((k, k))
    differenced = np.ones(k, dtype=bool)
    if known is not None:
        differenced[known[0]] = False
    for i in np.flatnonzero(differenced):
        h = step * max(1.0, abs(x[i]))
        if x[i] + h > upper[i]:
            h = -h
        point = x.copy()
        point[i] += h
        _, shifted = value_and_gradient(point)
        hess[:, i] = (shifted - grad) / h
    if known is not None:
        index, block = known
        others = np.flatnonzero(differenced)
        hess[np.ix_(index, index)] = block
        hess[np.ix_(others, index)] = hess[np.ix_(index, others)].T
    hess = 0.5 * (hess + hess.T)
    if not np.all(np.isfinite(hess)):
        return np.diag(np.maximum(np.abs(grad), 1.0))
    return hess
