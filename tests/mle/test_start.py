"""Moment start values of θ: a closed form where one exists, and the same optima."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.mle.blocked import ReLayout
from hiermodels.mle.lmm import profiled_deviance
from hiermodels.mle.start import SMALLEST_RELATIVE_VARIANCE, moment_start


def _start(model: hm.Model) -> tuple[np.ndarray, ReLayout]:
    design = model._design
    deviance = profiled_deviance(design)
    return moment_start(deviance, design), deviance.layout


def test_balanced_one_way_start_is_the_anova_estimate() -> None:
    """For a balanced one-way layout the moment estimate is the ANOVA one:
    ``σ̂_b² = (MS_between − MS_within)/n``, ``σ̂² = MS_within``, which is the
    REML estimate when positive (Dyestuff)."""
    data = hm.datasets.load("dyestuff")
    model = hm.Model("Yield ~ 1 + (1 | Batch)", data)
    theta, _ = _start(model)
    groups = data.groupby("Batch")["Yield"]
    n, k = groups.size().iloc[0], groups.ngroups
    within = float(((data["Yield"] - groups.transform("mean")) ** 2).sum()) / (k * (n - 1))
    between = float(n * groups.mean().var(ddof=1))
    anova = np.sqrt((between - within) / n / within)
    assert theta[0] == pytest.approx(anova, rel=1e-10)
    assert theta[0] == pytest.approx(model.fit_mle().theta[0], rel=1e-6)


def test_balanced_crossed_start_is_the_reml_estimate() -> None:
    """Penicillin (24 plates × 6 samples, one observation per cell): the noise
    variance of the fit with every effect fixed is the additive two-way ANOVA's
    residual mean square, the moments are the ANOVA estimates, and for a
    balanced design these are REML's."""
    model = hm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", hm.datasets.load("penicillin"))
    theta, layout = _start(model)
    fit = model.fit_mle()
    order = list(layout.order)
    for k, block in enumerate(layout.blocks):
        assert theta[k] == pytest.approx(fit.theta[order[k]], rel=1e-6), block.group
    assert fit.opt.evaluations <= 4


def test_no_start_on_the_boundary() -> None:
    """Groups without any spread start at the floor, not at zero."""
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"y": rng.normal(size=120), "g": np.repeat(np.arange(12), 10).astype(str)})
    data["y"] -= data.groupby("g")["y"].transform("mean")  # group means exactly equal
    theta, _ = _start(hm.Model("y ~ 1 + (1 | g)", data))
    assert theta[0] == pytest.approx(np.sqrt(SMALLEST_RELATIVE_VARIANCE))


MODELS = [
    ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    ("pastes", "strength ~ 1 + (1 | batch/cask)"),
    ("classroom", "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)"),
    ("radon", "log_radon ~ floor + (floor | county)"),
]


@pytest.mark.parametrize(("dataset", "formula"), MODELS)
def test_moment_and_identity_starts_reach_one_optimum(dataset: str, formula: str) -> None:
    model = hm.Model(formula, hm.datasets.load(dataset))
    theta, layout = _start(model)
    identity = layout.theta.start()
    assert not np.allclose(theta, identity)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moment_fit = model.fit_mle()
        # start= is in the design's block order; the layout's is by decreasing levels
        order = np.argsort(layout.order)
        identity_fit = model.fit_mle(
            start=np.concatenate([identity[layout.theta.block_slice(k)] for k in order])
        )
    assert moment_fit.objective == pytest.approx(identity_fit.objective, abs=1e-8)
    assert np.allclose(moment_fit.theta, identity_fit.theta, rtol=1e-4, atol=1e-5)


def test_levels_of_a_few_rows_do_not_swamp_the_slope_moments() -> None:
    """Uniform group codes give Poisson(5) group sizes: levels of two or three rows
    have slope estimates of no finite variance, and must not decide the start."""
    rng = np.random.default_rng(1)
    groups, rows = 10000, 50000
    factor = np.linalg.cholesky(np.array([[1.0, 0.15], [0.15, 0.25]]))
    effects = rng.normal(size=(groups, 2)) @ factor.T
    g = rng.integers(0, groups, size=rows)
    x = rng.normal(size=rows)
    y = 2.0 + 0.5 * x + effects[g, 0] + effects[g, 1] * x + rng.normal(size=rows)
    model = hm.Model("y ~ x + (x | g)", pd.DataFrame({"y": y, "x": x, "g": g}))
    theta, _ = _start(model)
    fit = model.fit_mle()
    np.testing.assert_allclose(theta, fit.theta, atol=0.03)
