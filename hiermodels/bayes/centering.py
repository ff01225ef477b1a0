"""Centred or non-centred group effects: which factors the data pin down.

A factor's effects are sampled centred (``u ~ N(0, sd)``) when the data
determine each level's effect more tightly than the prior does, and
non-centred (``u = sd * z``) otherwise; :func:`choose_centering` decides
from a link-scale summary of each level (:func:`level_information`), and
:func:`resolve_centering` combines that choice with what the user asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np

from hiermodels.design.design import Design
from hiermodels.design.factors import GroupTerms
from hiermodels.names import sd_name

__all__ = ["CENTERING_THRESHOLD", "choose_centering", "level_information", "resolve_centering"]


#: A factor is centred when the median over its levels of ``sd^2 * information`` (prior
#: variance over the likelihood's conditional variance of a level's effect) exceeds this.
CENTERING_THRESHOLD = 1.0


def level_information(design: Design, layout: GroupTerms) -> tuple[np.ndarray, np.ndarray]:
    """Per level of a factor, a link-scale estimate of its mean and of its sampling variance.

    Each level's responses are pooled into one empirical value of the linear
    predictor: ``log`` of the smoothed mean count (Poisson, negative
    binomial), the smoothed log-odds of the pooled successes (binomial,
    bernoulli; probit treated as logit, a scale factor that cancels in
    :func:`choose_centering`'s ratio) or the mean response (gaussian, with
    the pooled within-level variance). The variance is that of the estimate
    under the family's variance function: the inverse of the likelihood's
    information about the level's effect. Fixed effects are ignored.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``(levels,)`` link-scale values and their variances.
    """
    codes = np.asarray(layout.codes, dtype=np.int64)
    levels = len(layout.levels)
    y = np.asarray(design.y, dtype=float)
    family = design.family
    if design.has_root_rows:
        # sums over a level's observations are inner products with the constant's roots
        ones = design.ones
        count = design.level_counts(layout.group).astype(float)
        local = np.bincount(codes, weights=ones * y, minlength=levels) / np.maximum(count, 1.0)
        residual = y - local[codes] * ones
        within = float(residual @ residual) / max(design.nobs - levels, 1)
        if not within > 0.0:
            within = design.column_sd(y, ddof=0) ** 2 or 1.0
        return local + design.response_shift, within / np.maximum(count, 1.0)
    count = np.bincount(codes, minlength=levels).astype(float)
    total = np.bincount(codes, weights=y, minlength=levels)
    if family.is_gaussian:
        mean = total / np.maximum(count, 1.0)
        within = np.sum((y - mean[codes]) ** 2) / max(y.size - levels, 1)
        if not within > 0.0:
            within = float(np.var(y)) or 1.0
        return mean, within / np.maximum(count, 1.0)
    if family.is_binomial:
        trials = design.trials if design.trials is not None and family.name != "bernoulli" else None
        n = np.ones_like(y) if trials is None else np.asarray(trials, dtype=float)
        tries = np.bincount(codes, weights=n, minlength=levels)
        hits, misses = total + 0.5, tries - total + 0.5
        return np.log(hits / misses), 1.0 / hits + 1.0 / misses
    smoothed = total + 0.5
    return np.log(smoothed / np.maximum(count, 1.0)), 1.0 / smoothed


def choose_centering(design: Design) -> dict[str, bool]:
    """Per grouping factor, whether to sample its effects centred (``u``) or not (``z``).

    Non-centred coordinates suit levels the data say little about (the
    posterior of a level's effect is its prior, the funnel sits in ``sd``);
    centred ones suit levels the data pin down (the non-centred posterior of
    ``z`` then narrows with ``sd`` and leaves a funnel of its own). For every
    level the ratio of its prior variance ``sd^2`` to the variance of its
    data's estimate (:func:`level_information`) tells which: ``sd^2`` is a
    moment estimate, the spread of the levels' estimates less their mean
    sampling variance. A factor is centred when the median ratio exceeds
    :data:`CENTERING_THRESHOLD`. Factors with correlated terms, or with terms
    other than an intercept, stay non-centred.

    Parameters
    ----------
    design : Design

    Returns
    -------
    dict of str to bool
        Grouping factor -> centred.
    """
    choice = {}
    for layout in design.factors:
        scalar = layout.X.shape[1] == 1 and bool(np.all(layout.X == 1.0))
        if not scalar or len(layout.levels) < 2:
            choice[layout.group] = False
            continue
        estimate, variance = level_information(design, layout)
        spread = float(np.var(estimate, ddof=1)) - float(np.mean(variance))
        ratio = max(spread, 0.0) / variance
        choice[layout.group] = bool(np.median(ratio) > CENTERING_THRESHOLD)
    return choice


def resolve_centering(
    design: Design,
    centered: bool | Mapping[str, bool] | Literal["auto"],
    fixed: Mapping[str, object],
) -> dict[str, bool]:
    """The factors to centre: chosen from the data (``"auto"``) or as given."""
    layouts = design.factors
    explicit = not isinstance(centered, bool | str)
    if isinstance(centered, str):
        if centered != "auto":
            raise ValueError(f"centered must be a bool, a mapping or 'auto', got {centered!r}")
        choice = choose_centering(design)
    elif isinstance(centered, bool):
        choice = {layout.group: centered for layout in layouts}
    else:
        unknown = set(centered) - {layout.group for layout in layouts}
        if unknown:
            raise ValueError(f"centered names unknown grouping factors: {sorted(unknown)}")
        choice = {group: bool(value) for group, value in centered.items()}
    out = {}
    for layout in layouts:
        wanted = choice.get(layout.group, False)
        # a held SD of zero has no centred density; correlated blocks keep their z
        held = any(sd_name(layout.group, t) in fixed for t in layout.terms)
        if wanted and (layout.correlated_spans or held):
            if explicit:
                raise ValueError(
                    f"factor {layout.group!r} cannot be centred: it has correlated terms "
                    "or fixed standard deviations"
                )
            wanted = False
        out[layout.group] = wanted
    return out
