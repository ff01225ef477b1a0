"""The analytic gradient of the Laplace deviance and the quasi-Newton GLMM fit.

The gradient in ``(θ, β)`` (and, for the negative binomial, the differenced
slope in ``log α``) is checked against central differences of the deviance
on every random-effects structure the blocked factorisation distinguishes:
one factor with a correlated slope, crossed and nested scalar terms, vector
blocks on both crossed factors, two terms of one factor, and a factor on
the boundary. The quasi-Newton fit must reach BOBYQA's optimum.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.mle.blocked import ReLayout
from hiermodels.mle.dispersion import DispersedDeviance
from hiermodels.mle.laplace import LaplaceDeviance
from hiermodels.mle.response import GlmResponse
from hiermodels.mle.standardize import Standardization


def _counts(seed: int = 3, n: int = 900) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 30, n)
    b = rng.integers(0, 12, n)
    x = rng.standard_normal(n)
    slope_a = rng.normal(0, 0.3, 30)
    eta = 0.3 + (0.5 + slope_a[a]) * x + rng.normal(0, 0.5, 30)[a] + rng.normal(0, 0.4, 12)[b]
    y = rng.poisson(np.exp(eta))
    return pd.DataFrame(
        {"y": y, "yb": (y > 1).astype(int), "x": x, "a": a.astype(str), "b": b.astype(str)}
    )


STRUCTURES = {
    "binomial scalar": (
        "cbpp",
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "binomial",
    ),
    "correlated slope": (None, "yb ~ x + (x | a)", "bernoulli"),
    "crossed": (None, "yb ~ x + (1 | a) + (1 | b)", "bernoulli"),
    "nested": (None, "y ~ x + (1 | b/a)", "poisson"),
    "vector blocks crossed": (None, "y ~ x + (x | a) + (x | b)", "poisson"),
    "two terms of one factor": (None, "yb ~ x + (1 | a) + (0 + x | a) + (1 | b)", "bernoulli"),
    "negative binomial": (None, "y ~ x + (x | a) + (1 | b)", "negativebinomial"),
}


def _deviance(dataset: str | None, formula: str, family: str) -> DispersedDeviance:
    data = _counts() if dataset is None else hm.datasets.load(dataset)
    design = hm.Model(formula, data, family=family)._design
    design = Standardization.of(design).apply(design)
    alpha = 2.0 if family == "negativebinomial" else None
    response = GlmResponse.from_design(design, dispersion=alpha)
    laplace = LaplaceDeviance(design, ReLayout.from_design(design), response)
    return DispersedDeviance.of(laplace)


def _point(dev: DispersedDeviance, rng: np.random.Generator) -> np.ndarray:
    theta = dev.layout.theta.start() * rng.uniform(0.5, 1.2)
    free = dev.layout.theta.lower_bounds() != 0
    theta = theta + np.where(free, rng.normal(0, 0.2, theta.size), 0.0)
    extra = np.log([2.0])[: dev.n_extra] + rng.normal(0, 0.3, dev.n_extra)
    beta = rng.normal(0, 0.3, dev.laplace.design.X.shape[1])
    return np.concatenate([theta, extra, beta])


def _central_differences(func, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    return np.array([(func(x + h) - func(x - h)) / (2 * step) for h in np.eye(x.size) * step])


@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_gradient_matches_differences(structure: str) -> None:
    dev = _deviance(*STRUCTURES[structure])
    assert dev.has_gradient
    rng = np.random.default_rng(7)
    for _ in range(2):
        x = _point(dev, rng)
        value, grad = dev.value_and_gradient(x)
        assert value == pytest.approx(dev(x), rel=1e-12)
        numeric = _central_differences(dev, x)
        # PIRLS stops at a relative change of 1e-10: that round-off over the
        # step, ~1e-3 here, bounds the accuracy of the differences
        assert np.allclose(grad, numeric, rtol=1e-4, atol=3e-3), (structure, grad, numeric)


def test_gradient_on_the_boundary() -> None:
    """A zero SD is a point of symmetry of the deviance: its slope there is 0."""
    dev = _deviance(*STRUCTURES["crossed"])
    x = _point(dev, np.random.default_rng(2))
    x[1] = 0.0  # the SD of b
    _, grad = dev.value_and_gradient(x)
    numeric = _central_differences(dev, x)
    assert abs(grad[1]) < 1e-8
    assert np.allclose(grad, numeric, rtol=1e-4, atol=2e-3)


def test_probit_gradient_matches_differences() -> None:
    """The probit link's exact Laplace weights PIRLS by the observed information."""
    design = hm.Model(
        "yb ~ x + (1 | a) + (x | b)", _counts(), family="bernoulli", link="probit"
    )._design
    design = Standardization.of(design).apply(design)
    laplace = LaplaceDeviance(design, ReLayout.from_design(design), GlmResponse.from_design(design))
    dev = DispersedDeviance.of(laplace)
    assert laplace.response.information == "observed" and dev.has_gradient
    x = _point(dev, np.random.default_rng(4))
    _, grad = dev.value_and_gradient(x)
    assert np.allclose(grad, _central_differences(dev, x), rtol=1e-4, atol=3e-3)


FITS = {
    "cbpp": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)", "binomial"),
    "grouseticks": (
        "grouseticks",
        "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
        "poisson",
    ),
    "poisson slopes": (None, "y ~ x + (x | a) + (1 | b)", "poisson"),
    "negative binomial": (None, "y ~ x + (1 | a) + (1 | b)", "negativebinomial"),
}


@pytest.mark.parametrize("name", sorted(FITS))
def test_quasi_newton_reaches_bobyqas_optimum(name: str) -> None:
    dataset, formula, family = FITS[name]
    data = _counts() if dataset is None else hm.datasets.load(dataset)
    model = hm.Model(formula, data, family=family)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quasi = model.fit_mle()
        bobyqa = model.fit_mle(optimizer="bobyqa")
    assert "quasi-Newton" in quasi.opt.optimizer and "from the GLM's β" in quasi.opt.optimizer
    assert not quasi.opt.fallback
    assert bobyqa.opt.optimizer.startswith("BOBYQA")
    assert quasi.opt.evaluations < bobyqa.opt.evaluations
    # the same maximum; the quasi-Newton one is never lower
    assert quasi.loglik == pytest.approx(bobyqa.loglik, abs=1e-5)
    assert quasi.loglik >= bobyqa.loglik - 1e-7
    assert np.allclose(quasi.theta, bobyqa.theta, rtol=2e-3, atol=2e-4)
    assert np.allclose(quasi.fixef.to_numpy(), bobyqa.fixef.to_numpy(), rtol=1e-3, atol=1e-4)
    # standard errors from differences of the gradient and of the deviance agree
    se_q = np.sqrt(np.diag(quasi.vcov_beta))
    se_b = np.sqrt(np.diag(bobyqa.vcov_beta))
    assert np.allclose(se_q, se_b, rtol=2e-3)


def test_unknown_optimizer_is_one_clear_error() -> None:
    model = hm.Model(FITS["cbpp"][1], hm.datasets.load("cbpp"), family="binomial")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        model.fit_mle(optimizer="newton")
