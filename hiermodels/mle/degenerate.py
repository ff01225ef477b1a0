"""Degenerate binary and count data in a GLMM: separation and groups without information.

Two checks, one before and one after the fit.

:func:`separated_columns` looks at the fixed-effects design alone, before
anything is fitted. Following Konis (2007), the maximum-likelihood estimate
of ``β`` is infinite exactly when some direction ``d ≠ 0`` never lowers
the likelihood: ``xᵢᵀd ≥ 0`` on rows that are all successes, ``xᵢᵀd ≤ 0``
on rows that are all failures (or zero counts) and ``xᵢᵀd = 0`` on rows
with both (or positive counts). These directions form a polyhedral cone,
found by linear programming; the columns that move along some direction of
the cone are those whose estimates run off to infinity. ``X`` has full
column rank, so every such direction makes at least one inequality strict.

:func:`group_problems` looks at the fit: groups whose responses are all
successes, all failures or all zero have no finite estimate of their own,
and a random-effect SD driven to a huge value (or conditional modes far out
on the link scale) shows the variance estimate is made by those groups.
Small groups that happen to be all zero are ordinary; the check speaks only
when the estimates show the symptom.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog

from hiermodels.mle.response import GlmResponse

__all__ = [
    "LINK_SCALE_LIMIT",
    "ZERO_COUNT_LIMIT",
    "GroupProblem",
    "Separation",
    "boundary_groups",
    "group_problems",
    "name_list",
    "separated_columns",
]

#: An SD or a conditional mode beyond this on the link scale is not a real estimate:
#: e¹⁰ ≈ 22 000 is an odds or rate ratio no data set with finite counts supports.
LINK_SCALE_LIMIT = 10.0

#: An all-zero Poisson group whose conditional mode is below −5 (a rate e⁵ ≈ 150 times
#: below what the fixed effects predict) sits where the tail of the random-effect
#: distribution puts it: zero counts bound a rate from above only, never from below.
ZERO_COUNT_LIMIT = 5.0

# Entries of a cone direction (box-normalised) below this count as zero.
_DIRECTION_TOLERANCE = 1e-7


@dataclass(frozen=True)
class Separation:
    """A separation of the response by the fixed-effects design.

    Attributes
    ----------
    columns : tuple of str
        Fixed-effect columns whose estimates are infinite.
    complete : bool
        Every observation is perfectly predicted (complete separation), as
        opposed to quasi-complete separation (some are, the rest tie).
    """

    columns: tuple[str, ...]
    complete: bool


def _row_signs(response: GlmResponse) -> np.ndarray:
    """+1 where the likelihood rises with ``η`` without bound, −1 where it falls, 0 neither."""
    y, trials = response.y, response.trials
    signs = np.zeros(y.shape)
    if response.family == "binomial":
        signs[(y >= trials) & (trials > 0)] = 1.0
        signs[y <= 0] = -1.0
    else:
        signs[y <= 0] = -1.0
    # rows without trials carry no likelihood and constrain nothing
    signs[trials <= 0] = np.nan
    return signs


def _cone_constraints(
    x: np.ndarray, signs: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """``A_ub d ≤ 0`` for one-sided rows, ``A_eq d = 0`` for two-sided rows."""
    used = ~np.isnan(signs)
    x, signs = x[used], signs[used]
    one_sided = signs != 0
    a_ub = -(signs[one_sided, None] * x[one_sided]) if np.any(one_sided) else None
    a_eq = x[~one_sided] if np.any(~one_sided) else None
    b_ub = np.zeros(a_ub.shape[0]) if a_ub is not None else None
    return a_ub, b_ub, a_eq


def separated_columns(
    x: np.ndarray, names: Sequence[str], response: GlmResponse
) -> Separation | None:
    """Fixed-effect columns whose maximum-likelihood estimates are infinite.

    Parameters
    ----------
    x : numpy.ndarray
        ``(n, p)`` fixed-effects matrix of full column rank.
    names : sequence of str
        Its column names.
    response : GlmResponse
        Binomial (bernoulli) or Poisson response.

    Returns
    -------
    Separation or None
        ``None`` when every fixed effect has a finite estimate.
    """
    if x.shape[1] == 0:
        return None
    signs = _row_signs(response)
    # columns scaled to unit maximum, so the box |d| ≤ 1 and the tolerance mean the
    # same for a covariate in millimetres and one in kilometres
    scale = np.max(np.abs(x), axis=0)
    scale[scale == 0] = 1.0
    xs = x / scale
    a_ub, b_ub, a_eq = _cone_constraints(xs, signs)
    if a_ub is None:
        return None  # no one-sided row: the likelihood is bounded in every direction
    p = xs.shape[1]
    b_eq = np.zeros(a_eq.shape[0]) if a_eq is not None else None
    bounds = [(-1.0, 1.0)] * p

    def extreme(objective: np.ndarray) -> np.ndarray | None:
        res = linprog(
            objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs"
        )
        return res.x if res.status == 0 else None

    # One LP answers "is there separation at all": push every one-sided row as far as
    # the cone allows (the sum is zero exactly when the cone is {0}).
    first = extreme(a_ub.sum(axis=0))
    if first is None or -(a_ub @ first).sum() <= _DIRECTION_TOLERANCE:
        return None
    moving = np.abs(first) > _DIRECTION_TOLERANCE
    for j in np.flatnonzero(~moving):
        for sign in (1.0, -1.0):
            unit = np.zeros(p)
            unit[j] = sign
            d = extreme(unit)
            if d is not None and -sign * d[j] > _DIRECTION_TOLERANCE:
                moving[j] = True
                break
    columns = tuple(name for name, m in zip(names, moving, strict=True) if m)
    if not columns:
        return None
    return Separation(columns, complete=a_eq is None and _strictly_separable(a_ub, p))


def _strictly_separable(a_ub: np.ndarray, p: int) -> bool:
    """Whether some ``d`` makes every one-sided inequality strict (complete separation)."""
    # maximise t subject to −A_ub d ≥ t, |d| ≤ 1, t ≤ 1
    a = np.column_stack([a_ub, np.ones(a_ub.shape[0])])
    objective = np.zeros(p + 1)
    objective[-1] = -1.0
    res = linprog(
        objective,
        A_ub=a,
        b_ub=np.zeros(a.shape[0]),
        bounds=[(-1.0, 1.0)] * p + [(None, 1.0)],
        method="highs",
    )
    return res.status == 0 and -res.fun > _DIRECTION_TOLERANCE


def boundary_groups(
    codes: np.ndarray, n_levels: int, response: GlmResponse
) -> tuple[np.ndarray, np.ndarray]:
    """Groups whose responses are all at one end of their range.

    Returns
    -------
    high, low : numpy.ndarray of bool
        Per level: every trial a success (binomial) / every count zero or
        every trial a failure (``low``). Poisson counts have no upper end, so
        ``high`` is all ``False`` for them. Levels without observations are in
        neither.
    """
    y, trials = response.y, response.trials
    count = np.bincount(codes, minlength=n_levels)
    positive = np.bincount(codes, weights=(y > 0).astype(float), minlength=n_levels)
    low = (count > 0) & (positive == 0)
    if response.family == "binomial":
        full = np.bincount(codes, weights=(y >= trials).astype(float), minlength=n_levels)
        high = (count > 0) & (full == count)
    else:
        high = np.zeros(n_levels, dtype=bool)
    return high, low


@dataclass(frozen=True)
class GroupProblem:
    """Boundary groups of one grouping factor whose estimates show the symptom.

    Attributes
    ----------
    group : str
        Grouping-factor name.
    sd : float
        Largest random-effect SD of the factor's blocks (link scale).
    separated : tuple of str
        Levels all successes / all failures (binomial) or all zero (Poisson)
        when the SD is huge or their conditional modes run off.
    uninformative : tuple of str
        All-zero Poisson levels whose conditional modes went below
        ``−ZERO_COUNT_LIMIT`` while the SD stayed moderate.
    """

    group: str
    sd: float
    separated: tuple[str, ...]
    uninformative: tuple[str, ...]


def group_problems(
    blocks: Sequence,
    covariances: Sequence[np.ndarray],
    modes: Sequence[np.ndarray],
    response: GlmResponse,
) -> list[GroupProblem]:
    """Boundary groups whose fitted random effects ran off.

    Parameters
    ----------
    blocks : sequence of RandomBlock
        The random-effect blocks (θ order).
    covariances : sequence of numpy.ndarray
        Their estimated covariance matrices.
    modes : sequence of numpy.ndarray
        Their conditional modes, ``(levels, q)`` each.
    response : GlmResponse
        The response.

    Returns
    -------
    list of GroupProblem
        One per grouping factor with a problem; empty for ordinary fits.
    """
    by_group: dict[str, list[int]] = {}
    for i, block in enumerate(blocks):
        by_group.setdefault(block.group, []).append(i)
    problems = []
    for group, idx in by_group.items():
        first = blocks[idx[0]]
        high, low = boundary_groups(first.codes, first.n_levels, response)
        if not np.any(high | low):
            continue
        sd = max(float(np.sqrt(np.max(np.diag(covariances[i])))) for i in idx)
        # the random part of each observation's linear predictor, per level its extreme
        contribution = np.zeros(first.codes.shape)
        for i in idx:
            block = blocks[i]
            contribution += np.sum(block.X * modes[i][block.codes], axis=1)
        largest = np.full(first.n_levels, -np.inf)
        smallest = np.full(first.n_levels, np.inf)
        np.maximum.at(largest, first.codes, contribution)
        np.minimum.at(smallest, first.codes, contribution)
        limit = LINK_SCALE_LIMIT if response.family == "binomial" else ZERO_COUNT_LIMIT
        ran_high = high & (largest > limit)
        ran_low = low & (smallest < -limit)
        levels = np.asarray(first.levels, dtype=object)
        huge = sd > LINK_SCALE_LIMIT
        if response.family == "binomial":
            separated = (high | low) if huge else (ran_high | ran_low)
            uninformative = np.zeros_like(low)
        else:
            separated = low if huge else np.zeros_like(low)
            uninformative = ran_low & ~separated
        if np.any(separated) or np.any(uninformative):
            problems.append(
                GroupProblem(
                    group,
                    sd,
                    tuple(str(v) for v in levels[separated]),
                    tuple(str(v) for v in levels[uninformative]),
                )
            )
    return problems


def name_list(names: Sequence[str], shown: int = 5) -> str:
    """``'a', 'b', 'c'`` or ``'a', 'b', 'c', 'd', 'e' and 12 more``."""
    quoted = [repr(n) for n in names[:shown]]
    rest = len(names) - shown
    return ", ".join(quoted) + (f" and {rest} more" if rest > 0 else "")
