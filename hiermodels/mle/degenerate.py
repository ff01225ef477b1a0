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
    "certified_finite",
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
        The columns of a sparsest separating combination: what separates.
    infinite : tuple of str
        Every column whose estimate is infinite (under complete separation,
        all of them: any small change of a separating direction separates too).
    complete : bool
        Every observation is perfectly predicted (complete separation), as
        opposed to quasi-complete separation (some are, the rest tie).
    """

    columns: tuple[str, ...]
    infinite: tuple[str, ...]
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
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``A_ub d ≤ 0`` for one-sided rows, ``A_eq d = 0`` for two-sided rows.

    Repeated rows constrain nothing new: with categorical covariates most
    rows repeat, and dropping them shrinks the linear programmes by orders
    of magnitude.
    """
    used = ~np.isnan(signs)
    x, signs = x[used], signs[used]
    one_sided = signs != 0
    a_ub = np.unique(-(signs[one_sided, None] * x[one_sided]), axis=0)
    a_eq = np.unique(x[~one_sided], axis=0)
    return (a_ub if a_ub.size else None), (a_eq if a_eq.size else None)


def certified_finite(x: np.ndarray, response: GlmResponse, eta: np.ndarray) -> bool:
    """Whether a GLM fit at ``η = Xβ + offset`` proves every estimate finite.

    By Stiemke's alternative the separating cone is ``{0}`` exactly when
    positive multipliers on the one-sided rows (and free ones on the others)
    combine the rows of ``X`` to zero. At the GLM's maximum the score
    ``Σ xᵢ gᵢ`` (``gᵢ = ∂ log p(yᵢ | ηᵢ)/∂ηᵢ``) is such a combination,
    with ``|gᵢ|`` as multipliers: a one-sided row's score has the row's sign.
    Short of the maximum the score is ``r ≠ 0``; the multipliers absorb it
    by a change of norm at most ``‖r‖/σ_min(X)``, so the certificate holds
    while that stays below the smallest one-sided ``|gᵢ|``. A separated
    response has no maximum, and fails the test.
    """
    signs = _row_signs(response)
    used = ~np.isnan(signs)
    if not np.all(np.isfinite(eta[used])):
        return False
    _, weights, resid = response.working(eta)
    score = (weights * resid)[used]
    one_sided = signs[used] != 0
    if not np.all(signs[used][one_sided] * score[one_sided] > 0):
        return False
    x_used = x[used]
    smallest = np.linalg.svd(x_used, compute_uv=False)[-1] if x_used.shape[0] else 0.0
    residual = float(np.linalg.norm(x_used.T @ score))
    floor = float(np.min(np.abs(score[one_sided]), initial=np.inf))
    return bool(smallest > 0 and residual < 0.5 * floor * smallest)


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
    p = x.shape[1]
    if p == 0:
        return None
    # columns scaled to unit maximum, so the box |d| ≤ 1 and the tolerance mean the
    # same for a covariate in millimetres and one in kilometres
    scale = np.max(np.abs(x), axis=0)
    scale[scale == 0] = 1.0
    a_ub, a_eq = _cone_constraints(x / scale, _row_signs(response))
    if a_ub is None:
        return None  # no one-sided row: the likelihood is bounded in every direction
    # two-sided rows pin d to the null space of theirs: search in its coordinates z,
    # d = basis z, which leaves only the one-sided rows as constraints
    basis = np.eye(p) if a_eq is None else _null_space(a_eq)
    if basis.shape[1] == 0:
        return None
    pushed = a_ub @ basis
    strict = _strict_rows(pushed)
    if not np.any(strict):
        return None
    # the cone's directions span exactly the null space of the rows that can never be
    # strict: a column has an infinite estimate iff that space reaches it
    span = basis @ _null_space(pushed[~strict])
    moving = np.max(np.abs(span), axis=1, initial=0.0) > 1e-6
    involved = _sparsest_direction(pushed, basis)
    if involved is None or not np.any(involved):
        involved = moving
    return Separation(
        columns=tuple(n for n, m in zip(names, involved, strict=True) if m),
        infinite=tuple(n for n, m in zip(names, moving, strict=True) if m),
        complete=a_eq is None and bool(np.all(strict)),
    )


def _null_space(rows: np.ndarray) -> np.ndarray:
    """Orthonormal basis (columns) of the null space of ``rows``."""
    p = rows.shape[1]
    if rows.shape[0] == 0:
        return np.eye(p)
    if rows.shape[0] < p:  # zero rows change nothing and give vt all p rows
        rows = np.vstack([rows, np.zeros((p - rows.shape[0], p))])
    _, values, vt = np.linalg.svd(rows, full_matrices=False)
    tolerance = max(rows.shape) * np.finfo(float).eps * (values[0] if values.size else 0.0)
    rank = int(np.sum(values > max(tolerance, 1e-12)))
    return vt[rank:].T


def _push(a_ub: np.ndarray, rows: np.ndarray) -> np.ndarray | None:
    """A direction of the cone (``|z| ≤ 1``) moving the chosen one-sided rows farthest."""
    res = linprog(
        a_ub[rows].sum(axis=0),
        A_ub=a_ub,
        b_ub=np.zeros(a_ub.shape[0]),
        bounds=[(-1.0, 1.0)] * a_ub.shape[1],
        method="highs",
    )
    if res.status != 0 or -res.fun <= _DIRECTION_TOLERANCE:
        return None
    return res.x


def _strict_rows(a_ub: np.ndarray) -> np.ndarray:
    """One-sided rows some direction of the cone makes strict (``a_i z < 0``).

    Each round pushes the rows not yet strict; the cone is convex, so the sum
    of the directions found makes all of them strict at once. It ends when
    the remaining rows cannot move (usually after one or two small LPs).
    """
    strict = np.zeros(a_ub.shape[0], dtype=bool)
    while not np.all(strict):
        z = _push(a_ub, ~strict)
        if z is None:
            break
        newly = (-(a_ub @ z) > _DIRECTION_TOLERANCE) & ~strict
        if not np.any(newly):
            break
        strict |= newly
    return strict


def _sparsest_direction(pushed: np.ndarray, basis: np.ndarray) -> np.ndarray | None:
    """Support of a separating direction of least L1 norm (the columns that separate).

    ``d = basis z = d⁺ − d⁻`` minimising ``Σ (d⁺ + d⁻)`` over the cone,
    normalised so that the one-sided rows move by 1 in total; an L1 optimum
    sits on few columns.
    """
    p, k = basis.shape
    m = pushed.shape[0]
    # variables: z (free), d⁺, d⁻ (non-negative)
    cost = np.concatenate([np.zeros(k), np.ones(2 * p)])
    a_ub = np.vstack([pushed, pushed.sum(axis=0, keepdims=True)])
    a_ub = np.hstack([a_ub, np.zeros((m + 1, 2 * p))])
    b_ub = np.concatenate([np.zeros(m), [-1.0]])
    a_eq = np.hstack([-basis, np.eye(p), -np.eye(p)])
    res = linprog(
        cost,
        A_ub=a_ub,
        b_ub=b_ub,
        A_eq=a_eq,
        b_eq=np.zeros(p),
        bounds=[(None, None)] * k + [(0.0, None)] * (2 * p),
        method="highs",
    )
    if res.status != 0:
        return None
    d = res.x[k : k + p] - res.x[k + p :]
    return np.abs(d) > _DIRECTION_TOLERANCE * max(float(np.max(np.abs(d))), 1.0)


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
        Largest random-effect SD of the factor's terms on the link scale (a
        slope's SD times the root mean square of its covariate).
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
        # a slope's SD is per unit of its covariate: times the covariate's RMS it is on
        # the link scale like an intercept's, whatever the covariate's units
        sd = max(float(np.max(np.sqrt(np.diag(covariances[i])) * _rms(blocks[i].X))) for i in idx)
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


def _rms(columns: np.ndarray) -> np.ndarray:
    """Root mean square of each column."""
    return np.sqrt(np.mean(columns**2, axis=0))


def name_list(names: Sequence[str], shown: int = 5) -> str:
    """``'a', 'b', 'c'`` or ``'a', 'b', 'c', 'd', 'e' and 12 more``."""
    quoted = [repr(n) for n in names[:shown]]
    rest = len(names) - shown
    return ", ".join(quoted) + (f" and {rest} more" if rest > 0 else "")
