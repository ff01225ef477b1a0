"""Vectorised numerics of the normal–normal compound model.

Every function works on a batch of data sets at once: ``y`` has shape
``(R, k)`` (R replications of k units) and the known sampling variances
``v`` have shape ``(k,)`` (shared by all replications) or ``(R, k)``. The
same code serves a single fit (R = 1), the parametric bootstrap and the
simulator, so the three can never disagree.

Model: ``y_i | theta_i ~ N(theta_i, v_i)``, ``theta_i ~ N(mu, tau2)``, so
``y_i ~ N(mu, v_i + tau2)`` marginally.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from hiermodels.intervals import mixture_quantiles

__all__ = [
    "Method",
    "estimate_tau2",
    "gls_mean",
    "james_stein_batch",
    "mixture_quantiles",
    "morris_batch",
    "peb_posterior",
]

Method = Literal["ml", "reml", "mm"]
FloatArray = NDArray[np.float64]

#: Number of grid points that bracket the maximum of the profile likelihood
#: before the golden-section refinement; 64 log-spaced points over eight
#: decades are about 34 % apart, enough to separate any two local maxima
#: seen in practice.
_GRID_SIZE = 64
#: Golden-section steps; 0.618**90 < 1e-18, so the bracket shrinks to
#: floating-point resolution.
_GOLDEN_STEPS = 90
#: Bound on the number of float64 values in one grid evaluation (32 MB).
_CHUNK_VALUES = 4_000_000


def gls_mean(y: FloatArray, v: FloatArray, tau2: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Precision-weighted mean of each row and the sum of its weights.

    Parameters
    ----------
    y : numpy.ndarray, shape (..., k)
        Estimates.
    v : numpy.ndarray, shape (k,) or (..., k)
        Known sampling variances.
    tau2 : numpy.ndarray, shape (...)
        Between-unit variance for each row.

    Returns
    -------
    mu, wsum : numpy.ndarray, shape (...)
        ``sum(w y) / sum(w)`` and ``sum(w)`` with ``w = 1 / (v + tau2)``.
    """
    w = 1.0 / (v + tau2[..., None])
    wsum = w.sum(axis=-1)
    return (w * y).sum(axis=-1) / wsum, wsum


def _profile_loglik(y: FloatArray, v: FloatArray, tau2: FloatArray, reml: bool) -> FloatArray:
    """Profile log-likelihood of tau2 (mu profiled out), without constants."""
    var = v + tau2[..., None]
    w = 1.0 / var
    wsum = w.sum(axis=-1)
    mu = (w * y).sum(axis=-1) / wsum
    ll = -0.5 * (np.log(var).sum(axis=-1) + (w * (y - mu[..., None]) ** 2).sum(axis=-1))
    if reml:
        ll = ll - 0.5 * np.log(wsum)
    return ll


def _score(y: FloatArray, v: FloatArray, tau2: FloatArray, reml: bool) -> FloatArray:
    """Derivative of the profile log-likelihood with respect to tau2."""
    w = 1.0 / (v + tau2[..., None])
    wsum = w.sum(axis=-1)
    mu = (w * y).sum(axis=-1) / wsum
    w2 = w**2
    score = 0.5 * ((w2 * (y - mu[..., None]) ** 2).sum(axis=-1) - wsum)
    if reml:
        score = score + 0.5 * w2.sum(axis=-1) / wsum
    return score


def _moments_tau2(y: FloatArray, v: FloatArray) -> FloatArray:
    """Method-of-moments tau2 (DerSimonian & Laird 1986), truncated at 0."""
    k = y.shape[-1]
    w = np.broadcast_to(1.0 / v, y.shape)
    wsum = w.sum(axis=-1)
    ybar = (w * y).sum(axis=-1) / wsum
    q = (w * (y - ybar[..., None]) ** 2).sum(axis=-1)
    denom = wsum - (w**2).sum(axis=-1) / wsum
    return np.maximum(0.0, (q - (k - 1)) / denom)


def _numeric_tau2(y: FloatArray, v: FloatArray, reml: bool) -> FloatArray:
    """Maximise the profile likelihood by a grid then golden sections."""
    r = y.shape[0]
    vmax = np.broadcast_to(v, y.shape).max(axis=-1)
    spread = y.max(axis=-1) - y.min(axis=-1)
    # At a stationary point tau2 is a weighted mean of (y_i - mu)^2 - v_i (ML),
    # plus 1/sum(w) <= (max v + tau2)/k (REML); both give tau2 <= 2 range^2 + max v.
    upper = 2.0 * spread**2 + vmax
    fractions = np.concatenate([[0.0], np.geomspace(1e-8, 1.0, _GRID_SIZE - 1)])
    grid = upper[:, None] * fractions
    ll_grid = np.empty_like(grid)
    step = max(1, _CHUNK_VALUES // (_GRID_SIZE * y.shape[-1]))
    for start in range(0, r, step):
        rows = slice(start, start + step)
        v_rows = v if v.ndim == 1 else v[rows, None, :]
        ll_grid[rows] = _profile_loglik(y[rows, None, :], v_rows, grid[rows], reml)
    best = np.argmax(ll_grid, axis=1)
    idx = np.arange(r)
    lo = grid[idx, np.maximum(best - 1, 0)]
    hi = grid[idx, np.minimum(best + 1, _GRID_SIZE - 1)]
    tau2 = _golden_max(lambda t: _profile_loglik(y, v, t, reml), lo, hi)
    tau2 = _polish_root(lambda t: _score(y, v, t, reml), tau2)
    at_zero = (best == 0) & (_score(y, v, np.zeros(r), reml) <= 0.0)
    return np.where(at_zero, 0.0, tau2)


def _golden_max(
    f: Callable[[FloatArray], FloatArray], lo: FloatArray, hi: FloatArray
) -> FloatArray:
    """Vectorised golden-section search for the maximum of ``f`` on [lo, hi]."""
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = lo.copy(), hi.copy()
    c = b - ratio * (b - a)
    d = a + ratio * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(_GOLDEN_STEPS):
        left = fc >= fd
        # Keep [a, d] where f(c) >= f(d), otherwise [c, b].
        b = np.where(left, d, b)
        a = np.where(left, a, c)
        new_c = b - ratio * (b - a)
        new_d = a + ratio * (b - a)
        c_eval = np.where(left, new_c, d)
        d_eval = np.where(left, c, new_d)
        f_new = f(np.where(left, new_c, new_d))
        fc, fd = np.where(left, f_new, fd), np.where(left, fc, f_new)
        c, d = c_eval, d_eval
    return np.where(fc >= fd, c, d)


def _polish_root(score: Callable[[FloatArray], FloatArray], t: FloatArray) -> FloatArray:
    """Refine maxima found by golden sections to a root of the score.

    The log-likelihood is flat near its maximum, so golden sections on it
    stop at a relative accuracy of about 1e-8; bisection on the score in a
    bracket of relative width 2e-6 around it reaches floating-point accuracy.
    Rows whose score does not change sign in the bracket are left alone.
    """
    lo, hi = t * (1.0 - 1e-6), t * (1.0 + 1e-6)
    s_lo, s_hi = score(lo), score(hi)
    ok = (t > 0) & (s_lo > 0) & (s_hi < 0)
    if not np.any(ok):
        return t
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        up = score(mid) > 0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return np.where(ok, 0.5 * (lo + hi), t)


def estimate_tau2(y: FloatArray, v: FloatArray, method: Method) -> FloatArray:
    """Estimate the between-unit variance tau2 for each row of ``y``.

    Parameters
    ----------
    y : numpy.ndarray, shape (R, k)
        Estimates, one data set per row.
    v : numpy.ndarray, shape (k,) or (R, k)
        Known sampling variances.
    method : {"ml", "reml", "mm"}
        Marginal maximum likelihood, restricted maximum likelihood, or the
        method of moments of DerSimonian & Laird (1986).

    Returns
    -------
    numpy.ndarray, shape (R,)
        Estimates, exactly 0 at the boundary.

    Notes
    -----
    With equal variances ``v`` the closed forms are used:
    ``max(0, S/k - v)`` (ML) and ``max(0, S/(k-1) - v)`` (REML and moments),
    ``S = sum (y_i - ybar)^2``. Otherwise ML and REML maximise the profile
    likelihood on a grid and refine by golden sections; the estimate is set
    to exactly 0 when the grid's best point is 0 and the score there is not
    positive.
    """
    if method not in ("ml", "reml", "mm"):
        raise ValueError(f"method must be 'ml', 'reml' or 'mm', got {method!r}")
    k = y.shape[-1]
    if k < 2:
        raise ValueError("at least 2 units are needed to estimate tau^2")
    if method == "mm":
        return _moments_tau2(y, v)
    if np.all(v == v.reshape(-1)[0]):
        vv = float(v.reshape(-1)[0])
        s = ((y - y.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
        divisor = k if method == "ml" else k - 1
        return np.maximum(0.0, s / divisor - vv)
    return _numeric_tau2(y, v, reml=method == "reml")


def tau2_se(v: FloatArray, tau2: float, method: Method) -> float | None:
    """Standard error of tau2 from the expected information, if defined.

    Parameters
    ----------
    v : numpy.ndarray, shape (k,)
        Sampling variances.
    tau2 : float
        Estimate.
    method : {"ml", "reml", "mm"}
        Estimator.

    Returns
    -------
    float or None
        ``None`` at the boundary (tau2 = 0, where the normal approximation
        fails) and for the method of moments.
    """
    if tau2 <= 0.0 or method == "mm":
        return None
    w = 1.0 / (v + tau2)
    info = 0.5 * np.sum(w**2)
    if method == "reml":
        sw = w.sum()
        info = 0.5 * (np.sum(w**2) - 2.0 * np.sum(w**3) / sw + (np.sum(w**2) / sw) ** 2)
    return float(1.0 / np.sqrt(info))


def peb_posterior(
    y: FloatArray, v: FloatArray, mu: FloatArray, tau2: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Normal posterior of each theta_i given the hyperparameters.

    Parameters
    ----------
    y : numpy.ndarray, shape (..., k)
        Estimates.
    v : numpy.ndarray, shape (k,) or (..., k)
        Sampling variances.
    mu, tau2 : numpy.ndarray, shape (...)
        Hyperparameters per row.

    Returns
    -------
    mean, sd, b : numpy.ndarray, shape (..., k)
        ``mu + (1 - B)(y - mu)``, ``sqrt((1 - B) v)`` and ``B = v/(v + tau2)``.
    """
    b = v / (v + tau2[..., None])
    mean = mu[..., None] + (1.0 - b) * (y - mu[..., None])
    sd = np.sqrt((1.0 - b) * v)
    return mean, sd, np.broadcast_to(b, mean.shape)


def james_stein_batch(
    y: FloatArray, v: float, positive_part: bool
) -> tuple[FloatArray, FloatArray]:
    """James–Stein estimates shrinking towards the grand mean (equal variances).

    Parameters
    ----------
    y : numpy.ndarray, shape (R, k)
        Estimates with common sampling variance ``v``; k >= 4.
    v : float
        Sampling variance.
    positive_part : bool
        Truncate the factor at 0.

    Returns
    -------
    estimates : numpy.ndarray, shape (R, k)
        ``ybar + c (y - ybar)``.
    c : numpy.ndarray, shape (R,)
        ``1 - (k - 3) v / S`` with ``S = sum (y - ybar)^2``.
    """
    k = y.shape[-1]
    ybar = y.mean(axis=-1, keepdims=True)
    s = ((y - ybar) ** 2).sum(axis=-1)
    with np.errstate(divide="ignore"):
        c = 1.0 - (k - 3) * v / s
    if positive_part:
        c = np.maximum(c, 0.0)
    return ybar + c[:, None] * (y - ybar), c


def morris_batch(
    y: FloatArray, v: FloatArray, max_iter: int = 500
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Morris (1983) empirical-Bayes means and corrected variances.

    Parameters
    ----------
    y : numpy.ndarray, shape (R, k)
        Estimates; k >= 4.
    v : numpy.ndarray, shape (k,) or (R, k)
        Sampling variances.
    max_iter : int, default 500
        Iterations of the fixed point for A (unequal variances only).

    Returns
    -------
    mean, var, b, a : numpy.ndarray
        Means and variances, shape (R, k); the corrected shrinkage factors
        ``B_i``, shape (R, k); the estimate of A = tau2, shape (R,).

    Notes
    -----
    See :meth:`hiermodels.compound.NormalNormal.morris_intervals` for the
    formulas.
    """
    k = y.shape[-1]
    vv = np.broadcast_to(v, y.shape)
    a = np.maximum(0.0, y.var(axis=-1, ddof=1) - vv.mean(axis=-1))
    for _ in range(max_iter):
        mu, _ = gls_mean(y, vv, a)
        w = 1.0 / (vv + a[:, None])
        resid2 = (y - mu[:, None]) ** 2
        new = np.maximum(0.0, (w * (k / (k - 1) * resid2 - vv)).sum(axis=-1) / w.sum(axis=-1))
        done = np.allclose(new, a, rtol=1e-13, atol=1e-300)
        a = new
        if done:
            break
    mu, _ = gls_mean(y, vv, a)
    b = (k - 3) / (k - 1) * vv / (vv + a[:, None])
    resid = y - mu[:, None]
    mean = y - b * resid
    var = vv * (1.0 - (k - 1) / k * b) + 2.0 / (k - 3) * b**2 * resid**2
    return mean, var, b, a
