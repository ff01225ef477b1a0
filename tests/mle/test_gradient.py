"""The analytic gradient of the profiled REML/ML criterion and the optimisers that use it.

The gradient is checked against central differences of the criterion on
every random-effects structure the blocked factorisation distinguishes: one
factor with a correlated slope, crossed and nested scalar terms, a vector
trailing block coupled to a vector leading block, and a factor on the
boundary (a zero variance). Both optimisers must reach the same optimum.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.mle.lmm import profiled_deviance
from hiermodels.mle.optimize import minimize_bounded
from hiermodels.mle.standardize import Standardization


def _sleep_with_groups() -> pd.DataFrame:
    data = hm.datasets.load("sleepstudy")
    rng = np.random.default_rng(0)
    return data.assign(g2=(data["Days"] % 4).astype(str), x2=rng.normal(size=len(data)))


STRUCTURES = {
    "correlated slope": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "crossed": ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "nested": (
        "classroom",
        "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)",
    ),
    "vector trailing block": (None, "Reaction ~ Days + (Days | Subject) + (x2 | g2)"),
    "two vector blocks": (None, "Reaction ~ Days + (1 | Subject) + (x2 + Days | g2)"),
}


def _deviance(dataset: str | None, formula: str, reml: bool):
    data = _sleep_with_groups() if dataset is None else hm.datasets.load(dataset)
    design = hm.Model(formula, data)._design
    return profiled_deviance(Standardization.of(design).apply(design), reml=reml)


def _central_differences(dev, theta: np.ndarray, step: float = 1e-6) -> np.ndarray:
    return np.array(
        [(dev(theta + h) - dev(theta - h)) / (2 * step) for h in np.eye(theta.size) * step]
    )


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("structure", sorted(STRUCTURES))
def test_gradient_matches_differences(structure: str, reml: bool) -> None:
    dev = _deviance(*STRUCTURES[structure], reml)
    rng = np.random.default_rng(1)
    for _ in range(3):
        theta = dev.layout.theta.start() * rng.uniform(0.3, 1.5) + rng.uniform(
            0.0, 0.4, dev.layout.theta.length
        )
        value, gradient = dev.value_and_gradient(theta)
        assert value == pytest.approx(dev(theta), rel=1e-14)
        expected = _central_differences(dev, theta)
        np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-5)


def test_gradient_on_the_boundary_is_differenced() -> None:
    """A zero variance makes the factor singular; those entries come from differences."""
    dev = _deviance(*STRUCTURES["correlated slope"], True)
    theta = np.array([1.2, 0.3, 0.0])
    _, gradient = dev.value_and_gradient(theta)
    up = theta + np.array([0.0, 0.0, 1e-6])
    one_sided = (dev(up) - dev(theta)) / 1e-6
    np.testing.assert_allclose(gradient[:2], _central_differences(dev, theta)[:2], rtol=1e-5)
    assert gradient[2] == pytest.approx(one_sided, rel=1e-3, abs=1e-4)


CASES = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ("pastes", "strength ~ 1 + (1 | batch/cask)"),
    ("radon", "log_radon ~ floor + (floor | county)"),
    ("dyestuff2", "Yield ~ 1 + (1 | Batch)"),
]


@pytest.mark.parametrize(("dataset", "formula"), CASES, ids=[c[0] for c in CASES])
def test_quasi_newton_and_bobyqa_reach_one_optimum(dataset: str, formula: str) -> None:
    model = hm.Model(formula, hm.datasets.load(dataset))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hm.errors.SingularFitWarning)
        newton = model.fit_mle(optimizer="quasi-newton")
        bobyqa = model.fit_mle(optimizer="bobyqa")
    assert newton.objective == pytest.approx(bobyqa.objective, rel=0, abs=1e-7)
    np.testing.assert_allclose(newton.theta, bobyqa.theta, rtol=1e-4, atol=1e-5)
    assert newton.opt.optimizer.startswith("bounded quasi-Newton")
    assert bobyqa.opt.optimizer.startswith("BOBYQA")
    if newton.singular:  # a boundary end is always checked by BOBYQA from the start
        assert newton.opt.fallback.startswith("the quasi-Newton run ended on the boundary")
    else:
        assert not newton.opt.fallback
        assert newton.opt.evaluations < bobyqa.opt.evaluations
    assert newton.opt.gradient_norm < 2e-3
    assert "gradient (max abs)" in str(newton.opt)


def test_unknown_optimizer_is_named() -> None:
    model = hm.Model("Reaction ~ Days + (Days | Subject)", hm.datasets.load("sleepstudy"))
    with pytest.raises(ValueError, match="optimizer must be one of 'quasi-newton', 'bobyqa'"):
        model.fit_mle(optimizer="nelder-mead")


def test_bobyqa_takes_over_when_the_gradient_fails() -> None:
    """A gradient that cannot be evaluated sends the fit to BOBYQA, and the log says so."""
    dev = _deviance(*STRUCTURES["correlated slope"], True)
    lower = dev.layout.theta.lower_bounds()

    def broken(theta: np.ndarray) -> tuple[float, np.ndarray]:
        return dev(theta), np.full(theta.size, np.nan)

    opt = minimize_bounded(dev, dev.layout.theta.start(), lower, value_and_gradient=broken)
    reference = minimize_bounded(
        dev, dev.layout.theta.start(), lower, value_and_gradient=dev.value_and_gradient
    )
    assert opt.fallback.startswith("the criterion or its gradient could not be evaluated")
    assert "then BOBYQA" in opt.optimizer
    assert not reference.fallback
    assert opt.final_objective == pytest.approx(reference.final_objective, abs=1e-6)


def test_quasi_newton_never_stops_above_bobyqa() -> None:
    """Small simulated data sets, many with variances at or near zero.

    Near the boundary a gradient method can stop where BOBYQA finds a lower
    criterion (a zero diagonal entry of a factor folds the parameterisation);
    the quasi-Newton fit must then hand over, and never report the higher one.
    """
    from hiermodels.mle.fit import fit_lmm

    rng = np.random.default_rng(5)
    handed_over = 0
    for _ in range(25):
        groups = np.repeat(np.arange(10), 6)
        x = rng.normal(size=groups.size)
        crossed = rng.integers(0, 5, groups.size)
        y = (
            1
            + 0.5 * x
            + rng.normal(0, 0.3, 10)[groups]
            + rng.normal(0, 0.2, 10)[groups] * x
            + rng.normal(0, 0.2, 5)[crossed]
            + rng.normal(size=groups.size)
        )
        data = pd.DataFrame({"y": y, "x": x, "g": groups.astype(str), "h": crossed.astype(str)})
        for formula in ("y ~ x + (x | g)", "y ~ x + (x | g) + (1 | h)"):
            design = hm.Model(formula, data)._design
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for method in ("REML", "ML"):
                    newton = fit_lmm(design, method)
                    bobyqa = fit_lmm(design, method, optimizer="bobyqa")
                    assert newton.objective <= bobyqa.objective + 1e-7
                    handed_over += bool(newton.opt.fallback)
    assert handed_over > 0  # the data do reach the boundary


def _steep_quadratic(noise: float):
    """A criterion as curved as a model of millions of rows; its gradient is
    ``noise`` too large (in magnitude) wherever it is not zero."""
    curvature = np.array([4e8, 1e8])
    centre = np.array([0.7, -0.2])

    def func(x: np.ndarray) -> float:
        return float(0.5 * curvature @ (x - centre) ** 2)

    def value_and_gradient(x: np.ndarray) -> tuple[float, np.ndarray]:
        exact = curvature * (x - centre)
        return func(x), exact + noise * np.sign(exact)

    return func, value_and_gradient, centre


def test_a_large_gradient_small_on_the_curvature_scale_is_accepted() -> None:
    """lme4's check: a raw gradient of 0.01 is 5e-7 on the curvature's scale; no BOBYQA."""
    func, value_and_gradient, centre = _steep_quadratic(0.01)
    lower = np.array([0.0, -np.inf])
    opt = minimize_bounded(func, np.array([1.0, 0.0]), lower, value_and_gradient=value_and_gradient)
    assert not opt.fallback
    assert opt.gradient_norm > 2e-3
    np.testing.assert_allclose(opt.final, centre, atol=1e-9)


def test_a_gradient_large_on_the_curvature_scale_sends_the_fit_to_bobyqa() -> None:
    """A quasi-Newton run cut short far from the optimum is finished by BOBYQA."""
    func, value_and_gradient, _ = _steep_quadratic(0.0)
    lower = np.array([0.0, -np.inf])
    with pytest.warns(hm.errors.ConvergenceWarning, match="maximum number of evaluations"):
        opt = minimize_bounded(
            func,
            np.array([30.0, 20.0]),
            lower,
            value_and_gradient=value_and_gradient,
            max_evaluations=4,
        )
    assert opt.fallback.startswith("the quasi-Newton run stopped with gradient")
    assert opt.optimizer.endswith("then BOBYQA (NLopt)")
