"""Session fixtures: every model is built, compiled and sampled once per test session.

Sampling is kept short (4 chains x 1000 draws after 1000 tuning draws) except
for the lme4 reference fits, which use ``fit_bayes``'s defaults because
the acceptance criteria are stated for them.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd
import pytest

from hiermodels.bayes import BayesFit, fit_bayes
from hiermodels.datasets import load
from hiermodels.design.design import Design, build_design
from hiermodels.design.families import get_family
from tests.bayes import simulate
from tests.bayes.simulate import Truth

#: Short runs for the recovery tests: 4 chains x 1000 draws keep the bulk ESS of every
#: hyperparameter above ~100 (compilation, not sampling, dominates their cost).
SMALL = {"draws": 1000, "tune": 1000, "chains": 4}

SIMULATIONS: dict[str, Callable[[], Truth]] = {
    "intercept": simulate.intercept,
    "correlated_slope": simulate.correlated_slope,
    "uncorrelated_slope": simulate.uncorrelated_slope,
    "nested": simulate.nested,
    "crossed": simulate.crossed,
    "bernoulli": simulate.bernoulli,
    "bernoulli_probit": lambda: simulate.bernoulli(seed=25, link="probit"),
    "binomial": simulate.binomial,
    "poisson": simulate.poisson,
    "negativebinomial": simulate.negativebinomial,
}

#: GLMMs with richer random-effect structures, in the slow tier.
SLOW_SIMULATIONS: dict[str, Callable[[], Truth]] = {
    "poisson_slope": simulate.poisson_slope,
    "binomial_probit_crossed": simulate.binomial_probit_crossed,
    "negativebinomial_uncorrelated": simulate.negativebinomial_uncorrelated,
}


def truth_design(truth: Truth) -> Design:
    """The design of a simulated data set."""
    family = get_family(truth.family, truth.link)
    return build_design(truth.formula, truth.data, family, offset=truth.offset)


@cache
def simulated(name: str) -> tuple[Truth, BayesFit]:
    """Simulate data set ``name`` and fit it with the small settings (cached)."""
    truth = {**SIMULATIONS, **SLOW_SIMULATIONS}[name]()
    fit = fit_bayes(truth_design(truth), random_seed=1, progressbar=False, **SMALL)
    return truth, fit


def tlc_placebo() -> pd.DataFrame:
    """The placebo children of TLC, as in ``subset(tlc, treatment == "placebo")``."""
    data = load("tlc")
    return data[data["treatment"] == "placebo"]


#: Reference fits: name of the lme4 JSON -> (formula, data loader).
REFERENCE_MODELS: dict[str, tuple[str, Callable[[], pd.DataFrame]]] = {
    "sleepstudy_slope_reml": ("Reaction ~ Days + (Days | Subject)", lambda: load("sleepstudy")),
    "tlc_treatment_reml": ("lead ~ week + treatment + (1 | id)", lambda: load("tlc")),
    "tlc_placebo_slope_reml": ("lead ~ week + (week | id)", tlc_placebo),
    "radon_slope_reml": ("log_radon ~ floor + (floor | county)", lambda: load("radon")),
    "classroom_nested_reml": (
        "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)",
        lambda: load("classroom"),
    ),
}


@cache
def reference_fit(name: str) -> BayesFit:
    """Fit a reference model with fit_bayes's default settings (cached)."""
    formula, data = REFERENCE_MODELS[name]
    design = build_design(formula, data(), "gaussian")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fit_bayes(design, random_seed=20240611, progressbar=False)


@pytest.fixture(scope="session")
def simulated_fit() -> Callable[[str], tuple[Truth, BayesFit]]:
    """Factory of cached simulated fits: ``simulated_fit("nested")``."""
    return simulated


@pytest.fixture(scope="session")
def lme4_fit() -> Callable[[str], BayesFit]:
    """Factory of cached reference fits: ``lme4_fit("radon_slope_reml")``."""
    return reference_fit


@pytest.fixture(scope="session")
def sleep_design() -> Design:
    """``Reaction ~ Days + (Days | Subject)`` on sleepstudy."""
    return build_design("Reaction ~ Days + (Days | Subject)", load("sleepstudy"), "gaussian")


def assert_posteriors_agree(first: BayesFit, second: BayesFit, *, hyper: str = "estimate") -> None:
    """Two independent samples of one posterior differ by Monte Carlo error only.

    Hyperparameter ``hyper`` ("estimate", the mean, or "median"), fixed-effect and
    random-effect means within 0.25 posterior SD (more than 4 MC SEs at
    4 x 1000 draws), random-effect SDs within 15%.
    """
    a = first.varcorr_summary().set_index("name")
    b = second.varcorr_summary().set_index("name")
    assert np.all(np.abs(a[hyper] - b[hyper]) < 0.25 * b["se"]), (a, b)
    fa, fb = first.fixef_summary(), second.fixef_summary()
    assert np.all(np.abs(fa["estimate"] - fb["estimate"]) < 0.25 * fb["se"]), (fa, fb)
    ra, rb = first.ranef_summary(), second.ranef_summary()
    assert np.all(np.abs(ra["estimate"] - rb["estimate"]) < 0.25 * rb["se"])
    assert np.all(np.abs(ra["se"] / rb["se"] - 1) < 0.15)
