"""James–Stein estimation towards the grand mean (equal sampling variances).

With ``y_i ~ N(theta_i, sigma^2)``, ``i = 1..k``, k >= 4, the estimator

    theta_i = ybar + c (y_i - ybar),  c = 1 - (k - 3) sigma^2 / sum (y_j - ybar)^2,

has smaller total squared risk than the raw ``y_i`` for every ``theta``;
``1 - c`` is the empirical-Bayes estimate of the shrinkage
``B = sigma^2/(sigma^2 + tau^2)`` (Efron & Morris 1975). The positive-part
version truncates ``c`` at 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hiermodels.compound import _normal_math as nm
from hiermodels.compound._inputs import as_vector, frozen, unit_labels

__all__ = ["JamesStein", "james_stein"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class JamesStein:
    """James–Stein estimates shrinking towards the grand mean.

    Attributes
    ----------
    units : tuple of str
        Unit labels.
    y : numpy.ndarray
        Raw estimates.
    estimates : numpy.ndarray
        ``target + factor * (y - target)``.
    factor : float
        ``c = 1 - (k - 3) sigma^2 / sum (y_i - ybar)^2`` (truncated at 0 for
        the positive-part estimator).
    target : float
        The grand mean ``ybar``.
    sigma2 : float
        The common sampling variance.
    positive_part : bool
        Whether ``factor`` was truncated at 0.
    """

    units: tuple[str, ...]
    y: FloatArray
    estimates: FloatArray
    factor: float
    target: float
    sigma2: float
    positive_part: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "y", frozen(self.y))
        object.__setattr__(self, "estimates", frozen(self.estimates))

    @property
    def shrinkage(self) -> float:
        """Estimated shrinkage ``B_hat = 1 - factor`` towards the grand mean."""
        return 1.0 - self.factor

    def to_frame(self) -> pd.DataFrame:
        """Return raw and James–Stein estimates indexed by unit.

        Returns
        -------
        pandas.DataFrame
            Columns ``raw`` and ``james_stein``.
        """
        return pd.DataFrame(
            {"raw": self.y, "james_stein": self.estimates},
            index=pd.Index(self.units, name="unit"),
        )


def james_stein(
    y: ArrayLike,
    se: float | ArrayLike,
    *,
    positive_part: bool = False,
    units: Sequence[Any] | None = None,
) -> JamesStein:
    """James–Stein estimator towards the grand mean, for equal variances.

    ``theta_i = ybar + c (y_i - ybar)``, ``c = 1 - (k - 3) sigma^2 / S``,
    ``S = sum (y_i - ybar)^2`` (Efron & Morris 1975); the
    positive-part version uses ``max(c, 0)``.

    Parameters
    ----------
    y : array_like
        Raw estimates, k >= 4 of them.
    se : float or array_like
        The common sampling standard deviation (an array must be constant).
    positive_part : bool, default False
        Truncate ``c`` at 0.
    units : sequence, optional
        Unit labels.

    Returns
    -------
    JamesStein
        Estimates and the factor ``c``.
    """
    values = as_vector(y, "y")
    k = values.size
    ses = np.broadcast_to(np.asarray(se, dtype=float), values.shape)
    if not np.all(ses == ses[0]):
        raise ValueError("James–Stein needs equal sampling variances; the se differ")
    if not ses[0] > 0:
        raise ValueError("se must be positive")
    if k < 4:
        raise ValueError(f"James–Stein towards the grand mean needs k >= 4 units, got {k}")
    if np.all(values == values[0]):
        raise ValueError("all estimates are equal: the James–Stein factor is undefined")
    sigma2 = float(ses[0] ** 2)
    est, c = nm.james_stein_batch(values[None, :], sigma2, positive_part)
    return JamesStein(
        units=unit_labels(units, k),
        y=values,
        estimates=est[0],
        factor=float(c[0]),
        target=float(values.mean()),
        sigma2=sigma2,
        positive_part=positive_part,
    )
