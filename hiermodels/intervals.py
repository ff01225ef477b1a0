"""Intervals of every fit: the ``ci_prob`` keyword, normal intervals and posterior summaries.

Every result's ``*_summary`` method takes ``ci_prob`` (checked by
:func:`check_ci_prob`); the keywords it replaced still work for one release
through :func:`either_keyword`. Estimates with a standard error get the
normal interval ``estimate ± z·se`` (:func:`normal_bounds`); posterior draws
are summarised by :func:`summarise_draws`, the one place the package calls
ArviZ for means, HDIs and diagnostics.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy import special, stats

from hiermodels.names import DEFAULT_CI_PROB

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "SUMMARY_COLUMNS",
    "check_ci_prob",
    "either_keyword",
    "mixture_quantiles",
    "normal_bounds",
    "renamed_keyword",
    "summarise_draws",
]

#: The leading columns of every summary table, in this order.
SUMMARY_COLUMNS = ["estimate", "se", "lower", "upper"]


def check_ci_prob(ci_prob: float | None) -> float:
    """``ci_prob`` as a float (:data:`~hiermodels.names.DEFAULT_CI_PROB` for ``None``), or
    ``ValueError`` when it is not strictly between 0 and 1."""
    if ci_prob is None:
        return DEFAULT_CI_PROB
    value = float(ci_prob)
    if not 0.0 < value < 1.0:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob!r}")
    return value


def renamed_keyword(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that keyword ``old`` is deprecated in favour of ``new``."""
    warnings.warn(
        f"the keyword {old}= is deprecated and will be removed in the next release; "
        f"use {new}= instead",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def either_keyword[T](
    new_value: T, old_value: T | None, *, new: str, old: str, default: T | None = None
) -> T:
    """The value of a keyword passed under its new spelling or its deprecated one.

    The one way a renamed keyword is read: the public method takes both
    spellings and passes them here.

    Parameters
    ----------
    new_value, old_value : object
        What the caller passed under each spelling (``None``, or the new
        keyword's ``default``, when not passed).
    new, old : str
        The two spellings, for the messages.
    default : object, optional
        The new keyword's default, when it has one other than ``None``.

    Returns
    -------
    object
        ``old_value`` (with a ``DeprecationWarning`` attributed to the caller of
        the public method) when only the old spelling was used, else ``new_value``.

    Raises
    ------
    TypeError
        When both spellings are passed.
    """
    if old_value is None:
        return new_value
    if new_value is not None and new_value != default:
        raise TypeError(f"pass {new}= only; {old}= is its deprecated spelling")
    # past renamed_keyword, this function and the public method that calls it
    renamed_keyword(old, new, stacklevel=4)
    return old_value


def normal_bounds(
    estimate: np.ndarray, se: np.ndarray, ci_prob: float
) -> tuple[np.ndarray, np.ndarray]:
    """``estimate ∓ z·se`` with ``z`` the normal quantile of ``(1 + ci_prob) / 2``."""
    z = stats.norm.ppf(0.5 + check_ci_prob(ci_prob) / 2.0)
    estimate, se = np.asarray(estimate, dtype=float), np.asarray(se, dtype=float)
    return estimate - z * se, estimate + z * se


def summarise_draws(
    draws: xr.DataArray,
    ci_prob: float,
    *,
    interval: Literal["hdi", "equal-tailed"] = "hdi",
) -> pd.DataFrame:
    """Posterior mean, SD, interval, median, bulk ESS and rank r_hat of every item.

    Parameters
    ----------
    draws : xarray.DataArray
        Dims ``(chain, draw)`` and at most one more, the items; one row per
        item (a single row for scalar draws).
    ci_prob : float
        Probability of the interval.
    interval : {"hdi", "equal-tailed"}
        The highest-density interval, or the central one of equal tails.

    Returns
    -------
    pandas.DataFrame
        Columns ``estimate`` (mean), ``se`` (posterior SD), ``lower``,
        ``upper``, ``median``, ``ess_bulk``, ``r_hat``; index the values of
        the item dimension. Constant draws (held fixed) give NaN ESS and
        r_hat. ``attrs``: ``interval`` and ``ci_prob``.
    """
    import arviz_stats as azs

    ci_prob = check_ci_prob(ci_prob)
    sample_dims = ["chain", "draw"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant draws divide by zero
        if interval == "hdi":
            bounds = azs.hdi(draws, prob=ci_prob, dim=sample_dims)
        else:
            bounds = azs.eti(draws, prob=ci_prob, dim=sample_dims)
        ess = azs.ess(draws, method="bulk")
        rhat = azs.rhat(draws)
    items = [d for d in draws.dims if d not in sample_dims]
    table = pd.DataFrame(
        {
            "estimate": np.atleast_1d(draws.mean(sample_dims).values),
            "se": np.atleast_1d(draws.std(sample_dims, ddof=1).values),
            "lower": np.atleast_1d(bounds.sel(ci_bound="lower").values),
            "upper": np.atleast_1d(bounds.sel(ci_bound="upper").values),
            "median": np.atleast_1d(draws.median(sample_dims).values),
            "ess_bulk": np.atleast_1d(ess.values),
            "r_hat": np.atleast_1d(rhat.values),
        },
        index=pd.Index(draws[items[0]].values, name=items[0]) if items else None,
    )
    table.attrs.update(interval=interval, ci_prob=ci_prob)
    return table


def mixture_quantiles(
    means: np.ndarray,
    sds: np.ndarray,
    probs: float | np.ndarray,
    *,
    weights: np.ndarray | None = None,
    steps: int = 80,
) -> np.ndarray:
    """Quantiles of normal mixtures, one mixture per unit, by bisection.

    Parameters
    ----------
    means, sds : numpy.ndarray
        ``(components, units)`` component means and standard deviations (an
        SD of 0 is a point mass).
    probs : float or numpy.ndarray
        A probability in (0, 1), or ``(q,)`` of them.
    weights : numpy.ndarray, optional
        ``(components,)`` mixture weights summing to 1; equal by default.
    steps : int, default 80
        Bisection steps: each halves the bracket, which starts at the
        components' range ± 10 SDs.

    Returns
    -------
    numpy.ndarray
        ``(units,)`` quantiles for a single probability, ``(q, units)`` for several.
    """
    wanted = np.atleast_1d(np.asarray(probs, dtype=float))
    if weights is None:
        weights = np.full(means.shape[0], 1.0 / means.shape[0])
    shape = (wanted.size, means.shape[1])
    low = np.broadcast_to(np.min(means - 10.0 * sds, axis=0), shape).copy()
    high = np.broadcast_to(np.max(means + 10.0 * sds, axis=0), shape).copy()
    positive = sds > 0
    safe = np.where(positive, sds, 1.0)
    for _ in range(steps):
        middle = 0.5 * (low + high)
        cdf = np.where(
            positive, special.ndtr((middle[:, None, :] - means) / safe), middle[:, None, :] >= means
        )
        below = np.einsum("c,qcu->qu", weights, cdf) < wanted[:, None]
        low = np.where(below, middle, low)
        high = np.where(below, high, middle)
    quantiles = 0.5 * (low + high)
    return quantiles if np.ndim(probs) else quantiles[0]
