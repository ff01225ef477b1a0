"""The per-unit comparison table of the compound models and its shrinkage fractions."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from hiermodels.compound.bayes import posterior_summary

if TYPE_CHECKING:
    from hiermodels.compound.bayes import CompoundBayesFit
    from hiermodels.compound.intervals import EBIntervals

__all__ = ["COMPARISON_COLUMNS", "comparison_frame", "shrinkage_fraction"]

#: Column order of the per-unit comparison table, named as in the mixed-model
#: comparison (:mod:`hiermodels.shrinkage`); the table is indexed by ``unit``
#: and its first column, the unit's amount of data, is named ``se``,
#: ``trials`` or ``exposure``.
COMPARISON_COLUMNS: tuple[str, ...] = (
    "no_pooling",
    "no_pooling_estimable",
    "complete_pooling",
    "eb_mean",
    "eb_sd",
    "eb_low",
    "eb_high",
    "bayes_mean",
    "bayes_sd",
    "bayes_low",
    "bayes_high",
    "eb_shrinkage",
    "bayes_shrinkage",
    "width_ratio",
    "eb_boundary",
    "note",
)


def shrinkage_fraction(
    raw: NDArray[np.float64], eb: NDArray[np.float64], pooled: float
) -> NDArray[np.float64]:
    """How far EB moved each raw estimate towards complete pooling.

    ``(raw - eb) / (raw - pooled)``: 0 is no pooling, 1 complete pooling. EB
    shrinks towards its own prior mean, which may differ from the
    complete-pooling value; a unit whose raw estimate lies between the two
    then gets a negative fraction.

    Parameters
    ----------
    raw, eb : numpy.ndarray
        Raw and EB estimates (raw may be NaN for units without data).
    pooled : float
        Complete-pooling estimate.

    Returns
    -------
    numpy.ndarray
        NaN where ``raw`` is missing or equals ``pooled`` (the fraction is
        undefined there; the comparison's ``note`` column says so).
    """
    gap = raw - pooled
    ok = np.isfinite(gap) & (np.abs(gap) > 1e-12 * max(1.0, abs(pooled)))
    out = np.full(raw.shape, np.nan)
    out[ok] = (raw[ok] - eb[ok]) / gap[ok]
    return out


def comparison_frame(
    *,
    units: tuple[str, ...],
    size_name: str,
    size: NDArray[Any],
    raw: NDArray[np.float64],
    eb: EBIntervals,
    eb_boundary: bool,
    bayes: CompoundBayesFit,
    pooled: float,
    notes: Sequence[str],
    ci_prob: float,
) -> pd.DataFrame:
    """Build the per-unit table: no pooling, EB, full Bayes, complete pooling.

    Parameters
    ----------
    units : tuple of str
        Unit labels (the index).
    size_name : str
        Name of the first column (``se``, ``trials`` or ``exposure``).
    size : numpy.ndarray
        The unit's amount of data.
    raw : numpy.ndarray
        No-pooling estimates (NaN where the unit has no data).
    eb : EBIntervals
        Empirical-Bayes means, sds and intervals.
    eb_boundary : bool
        Whether the EB fit is at the complete-pooling boundary.
    bayes : CompoundBayesFit
        Full-Bayes draws with a per-unit ``theta``.
    pooled : float
        Complete-pooling estimate.
    notes : sequence of str
        One note per unit (empty string when nothing to say).
    ci_prob : float
        Probability of the full-Bayes (equal-tailed) intervals; should match
        ``eb.ci_prob``.

    Returns
    -------
    pandas.DataFrame
        Index ``unit``; columns ``size_name`` then :data:`COMPARISON_COLUMNS`.
        ``eb_shrinkage`` and ``bayes_shrinkage`` are ``(raw - est)/(raw -
        pooled)``, NaN where the unit has no data or its raw estimate equals
        the pooled one; ``width_ratio`` is full-Bayes over EB interval width,
        infinite where the EB interval has zero width. ``note`` says why.
        ``attrs`` hold ``ci_prob`` and ``interval`` (the EB intervals' kind;
        the full-Bayes ones are equal-tailed).
    """
    if not np.isclose(ci_prob, eb.ci_prob):
        warnings.warn(
            f"EB intervals have ci_prob {eb.ci_prob}, full-Bayes ones {ci_prob}",
            UserWarning,
            stacklevel=3,
        )
    theta = bayes.posterior["theta"]
    if "unit" in theta.coords:
        theta = theta.sel(unit=list(units))
    fb = posterior_summary(theta.transpose("chain", "draw", "unit"), ci_prob)
    fb_mean, fb_sd = fb["estimate"].to_numpy(), fb["se"].to_numpy()
    fb_lower, fb_upper = fb["lower"].to_numpy(), fb["upper"].to_numpy()
    eb_shrink = shrinkage_fraction(raw, eb.mean, pooled)
    eb_width = eb.width
    ratio = np.full(len(units), np.inf)
    positive = eb_width > 0
    ratio[positive] = (fb_upper - fb_lower)[positive] / eb_width[positive]
    estimable = np.isfinite(raw)
    all_notes = list(notes)
    for i in range(len(units)):
        extra = []
        if estimable[i] and not np.isfinite(eb_shrink[i]):
            extra.append("raw equals pooled: shrinkage undefined")
        if not positive[i]:
            extra.append("EB interval has zero width: width ratio infinite")
        all_notes[i] = "; ".join([n for n in [all_notes[i], *extra] if n])
    columns: dict[str, Any] = {
        size_name: size,
        "no_pooling": raw,
        "no_pooling_estimable": estimable,
        "complete_pooling": np.full(len(units), pooled),
        "eb_mean": eb.mean,
        "eb_sd": eb.sd,
        "eb_low": eb.lower,
        "eb_high": eb.upper,
        "bayes_mean": fb_mean,
        "bayes_sd": fb_sd,
        "bayes_low": fb_lower,
        "bayes_high": fb_upper,
        "eb_shrinkage": eb_shrink,
        "bayes_shrinkage": shrinkage_fraction(raw, fb_mean, pooled),
        "width_ratio": ratio,
        "eb_boundary": np.full(len(units), eb_boundary),
        "note": all_notes,
    }
    frame = pd.DataFrame(columns, index=pd.Index(units, name="unit"))
    frame.attrs.update(interval=eb.interval, ci_prob=ci_prob)
    return frame
