"""The marginalised posterior densities follow a shift of the response exactly.

The default priors are set from the response's mean and SD, so moving the
response by ``a`` moves the posterior of the intercept by ``a`` and leaves
everything else as it was: the log density at correspondingly shifted
points must be the same number, even at ``a = 1e12``, where sums of squares
of the raw data lose every digit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.bayes.gaussian_density import GaussianMarginalDensity
from hiermodels.bayes.priors import resolve_priors
from hiermodels.design.design import build_design

pytestmark = pytest.mark.xdist_group("bayes-marginal")

SHIFT = 1e12


def _densities(
    formula: str, data: pd.DataFrame, y: str
) -> tuple[GaussianMarginalDensity, GaussianMarginalDensity]:
    shifted = data.assign(**{y: data[y] + SHIFT})
    # the values the shifted column represents: the comparison is of the engines, not the data
    represented = data.assign(**{y: shifted[y] - SHIFT})
    pair = []
    for frame in (represented, shifted):
        design = build_design(formula, frame, "gaussian")
        pair.append(GaussianMarginalDensity(design, resolve_priors(design, None)))
    return pair[0], pair[1]


@pytest.mark.parametrize(
    ("formula", "dataset", "response"),
    [
        ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "Reaction"),
        ("Reaction ~ Days + (Days || Subject)", "sleepstudy", "Reaction"),
        ("mathgain ~ mathkind + (1 | schoolid/classid)", "classroom", "mathgain"),
    ],
)
def test_log_density_is_unchanged_by_a_shift_of_the_response(
    formula: str, dataset: str, response: str
) -> None:
    """Same value and gradient at the same point, the intercept moved by 1e12."""
    near, far = _densities(formula, hm.datasets.load(dataset), response)
    rng = np.random.default_rng(5)
    intercept = far.hyper.fixed.coef.index("Intercept")
    for _ in range(5):
        x = near.initial_point(int(rng.integers(1000)))
        x_far = x.copy()
        x_far[intercept] += SHIFT
        # the point the rounded shifted coordinate stands for (exact: Sterbenz)
        x[intercept] = x_far[intercept] - SHIFT
        value, grad = near.logp(x)
        value_far, grad_far = far.logp(x_far)
        assert np.isfinite(value)
        assert value_far == pytest.approx(value, rel=1e-9, abs=1e-6)
        np.testing.assert_allclose(grad_far, grad, rtol=1e-6, atol=1e-6)


def test_posterior_medians_follow_a_shift_of_the_response() -> None:
    """Full Bayes on ``Reaction + 1e12``: medians within Monte Carlo error, no warning."""
    data = hm.datasets.load("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    fits = []
    for shift in (0.0, SHIFT):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model = hm.Model(formula, data.assign(Reaction=data["Reaction"] + shift))
            fits.append(model.fit_bayes(random_seed=4, draws=500, tune=500, chains=2))
    near, far = (fit.posterior for fit in fits)
    for name in ("sigma", "sd_Subject__Intercept", "sd_Subject__Days"):
        a, b = near[name].values.ravel(), far[name].values.ravel()
        # two independent chains of 1000 draws: each median has MC SD below sd / sqrt(ESS)
        mc_error = np.hypot(np.std(a), np.std(b)) / np.sqrt(500)
        assert abs(np.median(a) - np.median(b)) < 4 * mc_error, name
    beta_near = near["beta"].sel(coef="Intercept").values.ravel()
    beta_far = far["beta"].sel(coef="Intercept").values.ravel() - SHIFT
    mc_error = np.hypot(np.std(beta_near), np.std(beta_far)) / np.sqrt(500)
    assert abs(np.median(beta_near) - np.median(beta_far)) < 4 * mc_error


def test_pymc_marginal_graph_is_unchanged_by_a_shift_of_the_response() -> None:
    """The PyMC marginal graph (nutpie's numba and python backends) follows the shift too."""
    from hiermodels.bayes.marginal_graph import build_marginal_model

    data = hm.datasets.load("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    shifted = data.assign(Reaction=data["Reaction"] + SHIFT)
    represented = data.assign(Reaction=shifted["Reaction"] - SHIFT)
    models = [
        build_marginal_model(build_design(formula, frame, "gaussian"))
        for frame in (represented, shifted)
    ]
    logps = [model.compile_logp() for model in models]
    point = models[0].initial_point()
    beta_value = next(name for name in point if name.startswith("beta"))
    far = dict(point)
    far[beta_value] = point[beta_value].copy()
    far[beta_value][0] += SHIFT
    near = dict(point)
    near[beta_value] = point[beta_value].copy()
    # the point the rounded shifted coordinate stands for (exact: Sterbenz)
    near[beta_value][0] = far[beta_value][0] - SHIFT
    value, value_far = float(logps[0](near)), float(logps[1](far))
    assert np.isfinite(value)
    assert value_far == pytest.approx(value, rel=1e-9, abs=1e-6)
