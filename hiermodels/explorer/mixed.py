"""What the one-factor mixed-model explorer needs: the fit re-evaluated on a grid of ``c``.

The slider multiplies the relative covariance factor, ``Λ(θ̂) → cΛ(θ̂) =
Λ(cθ̂)``, so ``c = 1`` is the fit, ``c = 0`` complete pooling (the fixed part
alone) and large ``c`` approaches no pooling. At each grid value the model is
evaluated at ``θ = cθ̂`` by the MLE engine itself (:func:`~hiermodels.mle.fit.fit_lmm`
with ``theta=``, which profiles ``β`` and ``σ``), and the group-level
coefficients ``β + b̂`` are inlined: they are not a simple closed form of
``c`` when the effect is a vector or the design has covariates.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from hiermodels.errors import SingularFitWarning
from hiermodels.mle.results import MixedFit
from hiermodels.no_pooling import no_pooling_estimates

__all__ = ["GRID_POINTS", "mixed_payload", "multiplier_grid"]

#: Slider positions: ``c = 0`` and 80 log-spaced values from 1/100 to 100.
GRID_POINTS = 81


def multiplier_grid() -> np.ndarray:
    """The slider's values of ``c``, with ``c = 1`` (the fit) exactly on the grid.

    Returns
    -------
    numpy.ndarray
        ``0`` then ``10**linspace(-2, 2, 80)`` with its middle replaced by 1.
    """
    positive = 10.0 ** np.linspace(-2.0, 2.0, GRID_POINTS - 1)
    positive[np.argmin(np.abs(np.log(positive)))] = 1.0
    return np.concatenate([[0.0], positive])


def explorable(fit: MixedFit) -> bool:
    """Whether the mixed-model explorer shows ``fit`` (see :func:`check_one_factor`)."""
    return fit.design.family.is_gaussian and len(fit.layout.blocks) == 1


def check_one_factor(fit: MixedFit) -> None:
    """Refuse fits the explorer cannot show, with the reason and what to do.

    Parameters
    ----------
    fit : MixedFit
        A marginal-likelihood fit.
    """
    if explorable(fit):
        return
    if not fit.design.family.is_gaussian:
        raise ValueError(
            f"the mixed-model explorer needs a linear mixed model (family gaussian); this fit "
            f"is a {fit.design.family.name} GLMM, whose conditional modes are not a "
            "penalised least-squares solution of θ"
        )
    groups = [block.group for block in fit.layout.blocks]
    raise ValueError(
        f"the mixed-model explorer shows one grouping factor, but this fit has "
        f"{len(groups)} random-effect terms ({', '.join(groups)}); fit a model with a "
        "single (terms | group) term"
    )


def _population(beta: np.ndarray, fixed: list[str], terms: list[str]) -> np.ndarray:
    """The fixed effect of each random-effect term (0 for a term with none)."""
    return np.array([beta[fixed.index(t)] if t in fixed else 0.0 for t in terms])


def mixed_payload(fit: MixedFit) -> dict[str, Any]:
    """The page's data for a one-factor linear mixed model.

    Parameters
    ----------
    fit : MixedFit
        REML or ML fit with one random-effect term.

    Returns
    -------
    dict
        JSON-ready payload: the grid of ``c``, the fit's ``θ̂``, and per grid
        value the fixed effects, ``σ`` and each group's coefficients; the
        no-pooling and complete-pooling ends; the groups' sizes.
    """
    from hiermodels.mle.fit import fit_lmm

    check_one_factor(fit)
    block = fit.layout.blocks[0]
    terms = list(block.terms)
    fixed = list(fit.design.fixed_names)
    levels = [str(level) for level in fit.ranef[block.group].index]
    grid = multiplier_grid()
    coefs, betas, sigmas = [], [], []
    for c in grid:
        with warnings.catch_warnings():
            # c = 0 and small c are boundary fits by construction
            warnings.simplefilter("ignore", SingularFitWarning)
            at_c = fit_lmm(fit.design, fit.method, theta=c * fit.theta)
        coefs.append(_population(at_c.beta, fixed, terms) + at_c.conditional_modes[0])
        betas.append(at_c.beta)
        sigmas.append(at_c.sigma)
    no_pool = no_pooling_estimates(fit)
    wide = no_pool.pivot_table(
        index="grp", columns="term", values="no_pooling", dropna=False, sort=False
    )
    fit_population = _population(fit.beta, fixed, terms)
    no_pooling = wide.reindex(index=levels, columns=terms).to_numpy(float) + fit_population
    return {
        "group": block.group,
        "terms": terms,
        "fixed_names": fixed,
        "levels": levels,
        "n_obs": fit.design.level_counts(block.group),
        "method": fit.method,
        "formula": fit.design.spec.formula,
        "theta_hat": fit.theta,
        "scalar": len(terms) == 1,
        "sigma_hat": fit.sigma,
        "c": grid,
        "coefs": np.stack(coefs),
        "beta": np.stack(betas),
        "sigma": np.array(sigmas),
        "no_pooling": no_pooling,
        "no_pooling_population": fit_population,
    }
