"""Full Bayes for the Gamma and inverse-Gaussian families: graph, priors, draws, recovery.

The data are simulated here with fixed seeds (the first tried); the MLE of
:mod:`hiermodels.mle` (checked against glmmTMB in tests/mle/test_gamma_invgauss.py)
is the reference the posterior's centre is compared with.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr

import hiermodels as hm
from hiermodels.bayes.build import build_pymc_model
from hiermodels.bayes.draws import LinearPredictorData, posterior_predictive_draws
from hiermodels.bayes.priors import Prior, default_priors, fixed_value_keys
from hiermodels.bayes.results import BayesFit
from hiermodels.bayes.route import SamplingRoute, choose_route
from hiermodels.mle.results import MixedFit

pytestmark = pytest.mark.xdist_group("bayes-dispersion")

#: True values of the simulations: fixed effects, the group SD and sigma = √φ.
TRUTH = {
    "gamma": {"Intercept": 1.0, "x": 0.5, "sd_g__Intercept": 0.4, "sigma": 0.5},
    "inverse_gaussian": {"Intercept": 0.5, "x": 0.3, "sd_g__Intercept": 0.3, "sigma": 0.4},
}
SEEDS = {"gamma": 11, "inverse_gaussian": 12}
SETTINGS = dict(draws=1000, tune=1000, chains=2, random_seed=3, progressbar=False)


def simulate(family: str, n_groups: int = 40, per_group: int = 15) -> pd.DataFrame:
    """``y ~ x + (1 | g)`` with the log link and the values of :data:`TRUTH`."""
    truth = TRUTH[family]
    rng = np.random.default_rng(SEEDS[family])
    g = np.repeat([f"g{i:02d}" for i in range(n_groups)], per_group)
    x = rng.normal(size=g.size)
    effects = rng.normal(0.0, truth["sd_g__Intercept"], size=n_groups)
    mu = np.exp(truth["Intercept"] + truth["x"] * x + np.repeat(effects, per_group))
    phi = truth["sigma"] ** 2
    if family == "gamma":
        y = rng.gamma(1.0 / phi, mu * phi)
    else:
        y = rng.wald(mu, 1.0 / phi)
    return pd.DataFrame({"y": y, "x": x, "g": g})


@cache
def model(family: str) -> hm.Model:
    return hm.Model("y ~ x + (1 | g)", simulate(family), family=family)


@cache
def bayes(family: str) -> BayesFit:
    return model(family).fit_bayes(log_likelihood=True, **SETTINGS)


@cache
def mle(family: str) -> MixedFit:
    return model(family).fit_mle()


FAMILIES = ["gamma", "inverse_gaussian"]


@pytest.mark.parametrize("family", FAMILIES)
def test_sampled_on_the_full_graph(family: str) -> None:
    design = model(family).design
    assert choose_route(design) is SamplingRoute.FULL_GRAPH
    assert bayes(family).route is SamplingRoute.FULL_GRAPH
    with pytest.raises(ValueError, match=f"not {family!r}; use exact NUTS"):
        choose_route(design, integrate="laplace")


@pytest.mark.parametrize("family", FAMILIES)
def test_posterior_covers_the_truth(family: str) -> None:
    fit = bayes(family)
    diag = fit.diagnostics(warn=False)
    assert diag.divergences == 0
    hyper = fit.varcorr_summary(ci_prob=0.94).set_index("name")
    for name in ("sd_g__Intercept", "sigma"):
        low, high = hyper.loc[name, ["lower", "upper"]]
        assert low <= TRUTH[family][name] <= high, (name, low, high)
    fixed = fit.fixef_summary()
    for coef in ("Intercept", "x"):
        mean, sd = fixed.loc[coef, ["estimate", "se"]]
        assert abs(mean - TRUTH[family][coef]) <= 2 * sd, coef


@pytest.mark.parametrize("family", FAMILIES)
def test_posterior_centre_agrees_with_the_mle(family: str) -> None:
    """With 600 rows and weak priors the posterior medians sit at the MLE, within
    half a posterior SD (fixed effects and sigma); the group SD's MLE, a joint mode,
    lies inside its 50% interval."""
    fit, point = bayes(family), mle(family)
    fixed = fit.fixef_summary()
    for coef, value in point.fixef.items():
        assert abs(fixed.loc[coef, "median"] - value) <= 0.5 * fixed.loc[coef, "se"], coef
    hyper = fit.varcorr_summary().set_index("name")
    sigma = hyper.loc["sigma"]
    assert abs(sigma["median"] - math.sqrt(point.phi)) <= 0.5 * sigma["se"]
    sd_draws = fit.posterior["sd_g__Intercept"].to_numpy().ravel()
    low, high = np.quantile(sd_draws, [0.25, 0.75])
    assert low <= float(point.varcorr["sdcor"].iloc[0]) <= high


@pytest.mark.parametrize("family", FAMILIES)
def test_numpy_log_likelihood_equals_pymc(family: str) -> None:
    fit = bayes(family)
    posterior = fit.posterior.isel(draw=slice(0, 5))
    ours = fit.log_likelihood().isel(draw=slice(0, 5))
    graph = build_pymc_model(fit.design, fit.priors)
    tree = xr.DataTree.from_dict({"posterior": posterior})
    theirs = pm.compute_log_likelihood(
        tree, model=graph, progressbar=False, extend_inferencedata=False
    )
    np.testing.assert_allclose(ours.values, theirs["y"].values, rtol=1e-8)


@pytest.mark.parametrize(
    ("family", "link", "power"),
    [("gamma", "log", 2), ("gamma", "inverse", 2), ("inverse_gaussian", "1/mu^2", 3)],
)
def test_posterior_predictive_has_the_family_moments(family: str, link: str, power: int) -> None:
    """Replicates at one parameter value: mean μ and variance φμ^power (within 4 SEs)."""
    data = pd.DataFrame({"y": [1.0, 2.0, 0.5, 3.0], "x": [0.0, 1.0, 0.0, 1.0], "g": list("aabb")})
    design = hm.Model("y ~ x + (1 | g)", data, family=family, link=link).design
    n_draws, beta, sigma = 40_000, np.array([0.8, 0.3]), 0.6
    posterior = xr.Dataset(
        {
            "beta": (("chain", "draw", "coef"), np.broadcast_to(beta, (1, n_draws, 2))),
            "u_g": (("chain", "draw", "g", "g__term"), np.zeros((1, n_draws, 2, 1))),
            "sigma": (("chain", "draw"), np.full((1, n_draws), sigma)),
        },
        coords={"chain": [0], "draw": np.arange(n_draws), "coef": ["Intercept", "x"]},
    )
    draws = posterior_predictive_draws(
        posterior, LinearPredictorData.from_design(design), np.random.default_rng(0)
    ).to_numpy()[0]
    eta = np.array([0.8, 1.1])
    mu = {"log": np.exp, "inverse": np.reciprocal, "1/mu^2": lambda e: e**-0.5}[link](eta)
    variance = sigma**2 * mu**power
    for column, (m, v) in zip((0, 1), zip(mu, variance, strict=True), strict=True):
        sample = draws[:, column]
        assert abs(sample.mean() - m) <= 4 * math.sqrt(v / n_draws)
        # the variance of a sample variance: (μ₄ − v²)/n; μ₄ ≤ 30 v² for these shapes
        assert abs(sample.var() - v) <= 4 * math.sqrt(30 * v**2 / n_draws)


def test_default_dispersion_priors() -> None:
    gamma = default_priors(model("gamma").design)
    assert gamma["sigma"] == Prior("HalfStudentT", nu=3.0, sigma=1.0)
    design = model("inverse_gaussian").design
    invgauss = default_priors(design)
    scale = float(np.mean(design.y)) ** -0.5
    assert invgauss["sigma"] == Prior("HalfStudentT", nu=3.0, sigma=scale)
    assert "sigma" in fixed_value_keys(design)
    assert "alpha" not in invgauss


def test_inverse_link_priors_are_centred_at_the_mean() -> None:
    data = simulate("gamma")
    design = hm.Model("y ~ x + (1 | g)", data, family="gamma", link="inverse").design
    intercept = default_priors(design)["beta__Intercept"]
    assert intercept.params["mu"] == pytest.approx(1.0 / data["y"].mean())
