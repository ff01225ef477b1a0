"""Converged fits are silent, fits that did not converge are not.

lme4 judges convergence by the gradient scaled by the curvature
(``solve(chol(H), g)``); an absolute gradient grows with the number of
observations and with the units of the parameters, and raised false alarms
on Chem97 and on large data. References: ``tests/reference/lme4`` (each
file's ``call`` and ``provenance``; ``make_convergence_reference.R``).
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.errors import ConvergenceWarning
from hiermodels.mle.optimize import minimize_bounded
from hiermodels.mle.results import MixedFit
from tests.mle import large_data
from tests.reference.lme4_names import REFERENCE_DIR, load_reference, term_to_lme4

LME4_CONVERGED = [
    "sleepstudy_slope_reml",
    "sleepstudy_slope_ml",
    "sleepstudy_intercept_reml",
    "sleepstudy_uncorrelated_reml",
    "dyestuff_reml",
    "dyestuff_ml",
    "penicillin_crossed_reml",
    "pastes_nested_reml",
    "tlc_intercept_reml",
    "tlc_treatment_reml",
    "classroom_nested_reml",
    "radon_intercept_reml",
    "radon_slope_reml",
    "cbpp_binomial_laplace",
    "grouseticks_poisson_laplace",
]


def _fit_silently(formula: str, data: pd.DataFrame, method: str, family: str) -> MixedFit:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return hm.Model(formula, data, family=family).fit_mle(method=method)


@pytest.mark.parametrize("name", LME4_CONVERGED)
def test_shipped_data_that_lme4_fits_are_silent(name: str) -> None:
    ref = load_reference(name)
    data = hm.datasets.load(ref["dataset"])
    family = ref.get("family", "gaussian")
    fit = _fit_silently(ref["formula"], data, ref["method"], family)
    assert fit.opt.warnings == ()
    assert fit.loglik >= ref["logLik"] - 1e-6


def _check_against_lme4(fit: MixedFit, ref: dict) -> None:
    for name, value in fit.fixef.items():
        assert value == pytest.approx(ref["fixef"][term_to_lme4(name)], rel=1e-4)
    ours = fit.varcorr["sdcor"].to_numpy()
    theirs = np.array([row["sdcor"] for row in ref["varcorr"]])
    np.testing.assert_allclose(np.sort(ours), np.sort(theirs), rtol=1e-3)
    # as good an optimum as lme4's, or better
    assert fit.loglik >= ref["logLik"] - 1e-6


def test_chem97_is_silent_and_matches_lme4() -> None:
    """31,022 rows, schools crossed with education authorities: lme4 sees no problem."""
    ref = load_reference("convergence_chem97_reml")
    assert ref["convergence_messages"] == []
    data = pd.read_csv(REFERENCE_DIR / "chem97.csv.gz", dtype={"school": str, "lea": str})
    fit = _fit_silently("score ~ gcsecnt + (1 | school) + (1 | lea)", data, "REML", "gaussian")
    _check_against_lme4(fit, ref)


@cache
def _large() -> pd.DataFrame:
    return large_data.simulate()


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_200000_rows_are_silent_and_match_lme4(method: str) -> None:
    """lme4 flags its own ML fit (max|grad| 0.002008, tolerance 0.002) at a worse optimum."""
    ref = load_reference(f"convergence_large_{method.lower()}")
    fit = _fit_silently(large_data.FORMULA, _large(), method, "gaussian")
    _check_against_lme4(fit, ref)


def test_an_optimiser_stopped_early_is_flagged() -> None:
    """An evaluation limit short of the optimum warns, naming the reason."""

    def rosenbrock(x: np.ndarray) -> float:
        return float((1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2)

    with pytest.warns(ConvergenceWarning, match="maximum number of evaluations"):
        opt = minimize_bounded(
            rosenbrock, np.array([-1.2, 1.0]), np.full(2, -np.inf), max_evaluations=15
        )
    assert not opt.converged


def test_a_gradient_left_at_the_end_is_flagged() -> None:
    """Stopped on a loose tolerance in Rosenbrock's valley: the scaled gradient says so."""

    def rosenbrock(x: np.ndarray) -> float:
        return float((1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2)

    with pytest.warns(ConvergenceWarning, match="scaled by the curvature"):
        opt = minimize_bounded(rosenbrock, np.array([-1.2, 1.0]), np.full(2, -np.inf), ftol_abs=0.1)
    assert opt.converged  # the optimiser's own verdict; the gradient check overrules it
