"""Profile likelihoods of variance components of a linear mixed model.

With ``σ`` kept explicit, the criteria are ::

    ML:   d(θ, σ) = log|L|² + n log(2πσ²) + r²(θ)/σ²
    REML: d(θ, σ) = log|L|² + log|R_X|² + (n − p) log(2πσ²) + r²(θ)/σ²

(minimising over ``σ`` gives back the profiled criteria of
:mod:`hiermodels.mle.lmm`). The SD of term ``k`` of a block is
``σ · ‖row k of T‖``; to profile it at a value ``s`` the row is written as
``(s/σ) · v`` with ``v`` a unit vector in hyperspherical angles (its last
entry, a factor diagonal, non-negative), and the criterion is minimised over
``σ``, the angles and every other entry of ``θ``.
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from hiermodels.mle.optimize import ConvergenceWarning, minimize_bounded
from hiermodels.mle.results import MixedFit
from hiermodels.mle.varpar import VarparDeviance
from hiermodels.names import sd_name

__all__ = ["profile_sd"]


def _unit_vector(angles: np.ndarray) -> np.ndarray:
    """Hyperspherical unit vector of length ``len(angles) + 1``; angles in [0, π]."""
    out = np.ones(angles.size + 1)
    sines = 1.0
    for i, phi in enumerate(angles):
        out[i] = sines * math.cos(phi)
        sines *= math.sin(phi)
    out[-1] = sines
    return out


def _angles(unit: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_unit_vector` (the last entry taken as non-negative)."""
    k = unit.size - 1
    angles = np.zeros(k)
    for i in range(k):
        tail = np.linalg.norm(unit[i:])
        angles[i] = math.acos(np.clip(unit[i] / tail, -1.0, 1.0)) if tail > 0 else 0.0
    return angles


def _locate(fit: MixedFit, name: str) -> tuple[int, int] | None:
    """(θ index of the block's first entry, term index) of ``sd_<group>__<term>``; None for σ."""
    if name == "sigma":
        return None
    for b, block in enumerate(fit.layout.blocks):
        for k, term in enumerate(block.terms):
            if name == sd_name(block.group, term):
                return fit.layout.theta.offsets[b], k
    valid = ["sigma"] + [sd_name(b.group, t) for b in fit.layout.blocks for t in b.terms]
    raise ValueError(f"unknown variance parameter {name!r}; choose one of: {', '.join(valid)}")


def _row_positions(start: int, q: int, k: int) -> np.ndarray:
    """θ positions of row ``k`` (entries T_k0 … T_kk) of a ``q × q`` factor, column-major."""
    positions = []
    for col in range(k + 1):
        col_start = start + sum(q - c for c in range(col))
        positions.append(col_start + (k - col))
    return np.array(positions)


def profile_sd(
    fit: MixedFit, name: str, values: ArrayLike, *, criterion: str | None = None
) -> pd.DataFrame:
    """Profile the REML/ML criterion over one standard deviation.

    Parameters
    ----------
    fit : MixedFit
        A REML or ML fit of a linear mixed model.
    name : str
        ``"sigma"`` or ``"sd_<group>__<term>"``.
    values : array_like
        Positive values of that SD at which to profile.
    criterion : {"REML", "ML"}, optional
        The criterion to profile; the fit's own by default. lme4's
        ``confint(method = "profile")`` profiles the ML deviance even for
        REML fits: ``criterion="ML"`` reproduces it.

    Returns
    -------
    pandas.DataFrame
        Columns ``value``, ``deviance`` (the criterion minimised over every
        other parameter) and ``delta`` (deviance minus the criterion's
        minimum, ≥ 0; ``delta < 3.84`` marks a 95% profile-likelihood interval).
    """
    if not fit.design.family.is_gaussian:
        raise ValueError("profiles are available for linear mixed models (REML or ML fits)")
    grid = np.asarray(values, dtype=float).ravel()
    if grid.size == 0 or np.any(~np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError("profile values must be positive, finite numbers")
    method = (criterion or fit.method).upper()
    if method not in ("REML", "ML"):
        raise ValueError(f"criterion must be 'REML' or 'ML', got {method!r}")
    if method != fit.method:
        from hiermodels.mle.fit import fit_lmm

        fit = fit_lmm(fit.design, method, start=fit.theta)
    full = VarparDeviance.of(fit.design, reml=method == "REML")
    lower_theta = fit.layout.theta.lower_bounds()
    where = _locate(fit, name)
    rows = []
    if where is None:
        start = fit.theta.copy()
        for value in grid:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                opt = minimize_bounded(functools.partial(full, sigma=value), start, lower_theta)
            start = opt.final
            rows.append((value, opt.final_objective))
    else:
        block_start, k = where
        block_index = fit.layout.theta.offsets.index(block_start)
        q = fit.layout.blocks[block_index].n_terms
        row = _row_positions(block_start, q, k)
        others = np.setdiff1d(np.arange(fit.theta.size), row)
        row_now = fit.theta[row]
        norm = np.linalg.norm(row_now)
        unit = row_now / norm if norm > 0 else np.eye(k + 1)[-1]
        start = np.concatenate([[math.log(fit.sigma)], _angles(unit), fit.theta[others]])
        lower = np.concatenate([[-np.inf], np.zeros(k), lower_theta[others]])
        upper = np.concatenate([[np.inf], np.full(k, math.pi), np.full(others.size, np.inf)])

        def row_criterion(params: np.ndarray, value: float) -> float:
            sigma = math.exp(params[0])
            theta = np.empty(fit.theta.size)
            theta[row] = (value / sigma) * _unit_vector(params[1 : k + 1])
            theta[others] = params[k + 1 :]
            return full(theta, sigma)

        for value in grid:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                opt = minimize_bounded(
                    functools.partial(row_criterion, value=value), start, lower, upper
                )
            start = opt.final
            rows.append((value, opt.final_objective))
    frame = pd.DataFrame(rows, columns=["value", "deviance"])
    frame["delta"] = np.maximum(frame["deviance"] - fit.objective, 0.0)
    return frame
