"""The warnings of a GLMM fit about its data: separation, and groups all at one end.

:func:`warn_if_separated` runs before the fit, on the fixed effects;
:func:`warn_about_groups` after it, on the conditional modes. Both describe
what :mod:`hiermodels.mle.degenerate` finds and what to do about it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from hiermodels.design.design import Design
from hiermodels.errors import DegenerateDataWarning, SeparationWarning
from hiermodels.mle.degenerate import (
    LINK_SCALE_LIMIT,
    ZERO_COUNT_LIMIT,
    Separation,
    certified_finite,
    group_problems,
    name_list,
    separated_columns,
)
from hiermodels.mle.response import GlmResponse
from hiermodels.mle.results import MixedFit

__all__ = ["warn_about_groups", "warn_if_separated"]


def warn_if_separated(
    design: Design, response: GlmResponse, glm: tuple[np.ndarray, np.ndarray] | None = None
) -> Separation | None:
    """Warn (:class:`SeparationWarning`) when the fixed effects separate the response.

    ``glm``: a fixed-effects matrix with the column space of ``design.X`` and
    the linear predictor of the GLM fitted on it, which usually proves the
    estimates finite (:func:`~hiermodels.mle.degenerate.certified_finite`)
    without the linear programmes that find a separation.
    """
    if glm is not None and certified_finite(glm[0], response, glm[1]):
        return None
    found = separated_columns(design.X, design.fixed_names, response)
    if found is None:
        return None
    kind = "complete" if found.complete else "quasi-complete"
    what = name_list(found.columns)
    if len(found.columns) > 1:
        what = f"a combination of {what}"
    if response.family == "binomial":
        how = (
            "predicts every success and failure perfectly"
            if found.complete
            else "predicts some responses perfectly (all successes on one side, all "
            "failures on the other) and ties the rest"
        )
    else:
        how = "can drive the rate to zero on rows whose counts are zero without changing the others"
    warnings.warn(
        f"{kind} separation in the fixed effects: {what} {how}, so the maximum-likelihood "
        f"estimates of {name_list(found.infinite, shown=8)} are infinite and the reported "
        "estimates and standard errors are wherever the optimiser stopped. Fit with a "
        "proper prior on the fixed effects (Model.fit_bayes), or remove the covariate or "
        "merge the levels involved",
        SeparationWarning,
        stacklevel=3,
    )
    return found


def warn_about_groups(fit: MixedFit, response: GlmResponse) -> None:
    """Warn about groups whose all-boundary responses drove the estimates off."""
    problems = group_problems(fit.layout.blocks, fit.covariances(), fit.conditional_modes, response)
    ends = "all successes or all failures" if response.family == "binomial" else "all zero counts"
    for problem in problems:
        if problem.separated:
            symptom = (
                f"the random-effect SD ran off to {problem.sd:.3g} on the link scale"
                if problem.sd > LINK_SCALE_LIMIT
                else f"their conditional modes ran beyond ±{LINK_SCALE_LIMIT:g} on the link "
                f"scale (SD {problem.sd:.3g})"
            )
            warnings.warn(
                f"quasi-separation by group: {len(problem.separated)} level(s) of "
                f"{problem.group!r} have {ends} ({name_list(problem.separated)}) and "
                f"{symptom}: the likelihood keeps rising as those groups' effects grow, so "
                "the SD and their modes mean nothing. Fit with a proper prior on the SD "
                "(Model.fit_bayes), or drop or merge those groups",
                SeparationWarning,
                stacklevel=3,
            )
        if problem.uninformative:
            warnings.warn(
                f"{len(problem.uninformative)} level(s) of {problem.group!r} have all-zero "
                f"counts ({name_list(problem.uninformative)}): their conditional modes went "
                f"below -{ZERO_COUNT_LIMIT:g} on the log scale (rates over "
                f"{math.exp(ZERO_COUNT_LIMIT):.0f} times below the fixed-effects prediction), "
                "a value set by the tail of the random-effect distribution, since zero "
                "counts bound a rate from above only: read those effects as 'rate near "
                "zero', not as estimates; they also pull the random-effect SD up, so "
                "compare the fit without those groups",
                DegenerateDataWarning,
                stacklevel=3,
            )
