"""Maximising the two-parameter marginal likelihood of a conjugate compound model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy import optimize

__all__ = ["LOG_BOUND", "NegLogLik", "conjugate_mle"]

#: Bounds on the log prior parameters: exp(±30) covers any prior worth
#: reporting; beyond that the fit is a boundary case.
LOG_BOUND = 30.0


NegLogLik = Callable[[NDArray[np.float64]], tuple[float, NDArray[np.float64], NDArray[np.float64]]]


def conjugate_mle(
    negloglik: NegLogLik,
    x0: NDArray[np.float64],
    *,
    nll_pooled: float,
    score_pooled: float,
    degenerate_message: str,
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Maximise a two-parameter marginal likelihood on the log scale.

    Newton trust region with the analytic gradient and Hessian, then a
    decision between an interior maximum and the complete-pooling boundary
    (prior precision infinite).

    Parameters
    ----------
    negloglik : callable
        ``x -> (value, gradient, Hessian)`` of the negative log-likelihood
        in the log prior parameters ``x``.
    x0 : numpy.ndarray, shape (2,)
        Start.
    nll_pooled : float
        Negative log-likelihood at complete pooling (the limit of infinite
        precision), on the same scale as ``negloglik``.
    score_pooled : float
        Derivative of the log-likelihood in 1/precision at complete pooling;
        not positive means complete pooling is a local maximum.
    degenerate_message : str
        Error message when the parameters run to 0.

    Returns
    -------
    (x, cov) or None
        The maximiser and the inverse observed information in ``x``; ``None``
        at the complete-pooling boundary.
    """
    res = optimize.minimize(
        lambda x: negloglik(x)[:2],
        x0,
        jac=True,
        hess=lambda x: negloglik(x)[2],
        method="trust-exact",
        options={"gtol": 1e-10, "maxiter": 500},
    )
    # A tiny gradient is convergence even when the trust region gives up on
    # rounding noise in the flat valley of large parameters.
    converged = bool(res.success or np.max(np.abs(res.jac)) < 1e-6)
    interior = (
        converged
        and np.max(res.x) < LOG_BOUND - 5.0
        # Log-gamma differences at parameters ~ 1e8 carry rounding of ~1e-7, so
        # an interior maximum must beat complete pooling by more than that.
        and res.fun < nll_pooled - 1e-6 * max(1.0, abs(nll_pooled))
    )
    if score_pooled <= 0 and not interior:
        return None
    if np.min(res.x) < -LOG_BOUND:
        raise ValueError(degenerate_message)
    if not converged or np.max(res.x) > LOG_BOUND:
        raise RuntimeError(f"the marginal MLE did not converge: {res.message}")
    return res.x, np.linalg.inv(negloglik(res.x)[2])
