"""Per-unit empirical-Bayes intervals: the value :class:`EBIntervals`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hiermodels.compound._inputs import (
    frozen,
)
from hiermodels.intervals import check_ci_prob, either_keyword

__all__ = ["INTERVAL_KINDS", "EBIntervals"]

#: The kind of interval each method makes, as summaries report it in ``attrs["interval"]``:
#: plug-in normal, beta and gamma posteriors give central (equal-tailed) intervals.
INTERVAL_KINDS: dict[str, str] = {
    "peb": "equal-tailed",
    "beta": "equal-tailed",
    "gamma": "equal-tailed",
    "morris": "morris",
    "bootstrap": "bootstrap",
}


@dataclass(frozen=True, init=False)
class EBIntervals:
    """Per-unit empirical-Bayes point estimates and intervals.

    Parameters
    ----------
    units : sequence of str
        Unit labels.
    mean, sd, lower, upper : array_like
        Point estimates, standard deviations (posterior, or the corrected ones
        of the method) and interval end points, one per unit.
    ci_prob : float
        Nominal coverage, e.g. 0.95.
    method : str
        How the intervals were made (``"peb"``, ``"morris"``, ``"bootstrap"``,
        ``"beta"``, ``"gamma"``).
    level : float, optional
        Deprecated spelling of ``ci_prob``.
    """

    units: tuple[str, ...]
    mean: NDArray[np.float64]
    sd: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    ci_prob: float
    method: str

    def __init__(
        self,
        units: Sequence[str],
        mean: ArrayLike,
        sd: ArrayLike,
        lower: ArrayLike,
        upper: ArrayLike,
        ci_prob: float | None = None,
        method: str | None = None,
        *,
        level: float | None = None,
    ) -> None:
        prob = either_keyword(ci_prob, level, new="ci_prob", old="level")
        if prob is None:
            raise TypeError("EBIntervals needs ci_prob")
        if method not in INTERVAL_KINDS:
            raise ValueError(f"method must be one of {sorted(INTERVAL_KINDS)}, got {method!r}")
        object.__setattr__(self, "units", tuple(units))
        for name, values in (("mean", mean), ("sd", sd), ("lower", lower), ("upper", upper)):
            object.__setattr__(self, name, frozen(values))
        k = len(self.units)
        if any(getattr(self, n).size != k for n in ("mean", "sd", "lower", "upper")):
            raise ValueError("every array must have one value per unit")
        object.__setattr__(self, "ci_prob", check_ci_prob(prob))
        object.__setattr__(self, "method", method)

    @property
    def level(self) -> float:
        """Deprecated name of :attr:`ci_prob`."""
        warnings.warn(
            "EBIntervals.level is deprecated and will be removed in the next release; "
            "use EBIntervals.ci_prob",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.ci_prob

    @property
    def interval(self) -> str:
        """The kind of interval: ``"equal-tailed"``, ``"morris"`` or ``"bootstrap"``."""
        return INTERVAL_KINDS[self.method]

    @property
    def width(self) -> NDArray[np.float64]:
        """Interval widths, ``upper - lower``."""
        return self.upper - self.lower

    def to_frame(self) -> pd.DataFrame:
        """Return the intervals as a DataFrame indexed by unit.

        Returns
        -------
        pandas.DataFrame
            Columns ``mean``, ``sd``, ``lower``, ``upper``; ``attrs`` hold
            ``interval`` (:attr:`interval`) and ``ci_prob``.
        """
        frame = pd.DataFrame(
            {"mean": self.mean, "sd": self.sd, "lower": self.lower, "upper": self.upper},
            index=pd.Index(self.units, name="unit"),
        )
        frame.attrs.update(interval=self.interval, ci_prob=self.ci_prob)
        return frame
