"""Precision weights on every route that samples a Gaussian model.

Each likelihood is checked against the dense ``log N(y | Xβ, σ²(W⁻¹ + ZΛΛᵀZᵀ))``
(effects integrated out) or, with the effects in the graph, against row SDs
``σ/√w``: the native marginal density
(:class:`~hiermodels.mle.gaussian_likelihood.GaussianLikelihood` on the
sampler's residual design), the one-factor marginal graph, the full graph,
and the pointwise log-likelihood and replicates of a fit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import hiermodels as hm
from hiermodels.bayes.build import build_pymc_model
from hiermodels.bayes.draws import (
    LinearPredictorData,
    pointwise_log_likelihood,
    posterior_predictive_draws,
)
from hiermodels.bayes.marginal_density import FixedEffectsPrior
from hiermodels.bayes.marginal_graph import FactorStatistics, _marginal_loglik
from hiermodels.bayes.priors import resolve_priors
from hiermodels.bayes.route import SamplingRoute, choose_route
from hiermodels.design.design import Design, build_design
from hiermodels.mle.gaussian_likelihood import GaussianLikelihood
from hiermodels.names import effects_name

FORMULA = "incidence / size ~ period + (1 | herd)"
BETA = np.array([0.2, -0.1, -0.12, -0.15])
SD_HERD, SIGMA = 0.06, 0.4


@pytest.fixture(scope="module")
def design() -> Design:
    return build_design(FORMULA, hm.datasets.load("cbpp"), "gaussian", weights="size")


def _dense_loglik(design: Design, beta: np.ndarray, sd: float, sigma: float) -> float:
    """``log N(y | Xβ, σ² W⁻¹ + sd² Z Zᵀ)`` for one scalar random intercept."""
    Z = design.Z().toarray()
    cov = np.diag(sigma**2 / design.weights) + sd**2 * Z @ Z.T
    return float(stats.multivariate_normal(design.X @ beta, cov).logpdf(design.y))


def test_routes_of_a_weighted_design_all_honour_the_weights(design: Design) -> None:
    routes = {
        choose_route(design),
        choose_route(design, sampler="pymc"),
        choose_route(design, marginalize=False, sampler="pymc"),
    }
    assert routes == {
        SamplingRoute.GAUSSIAN_NATIVE,
        SamplingRoute.MARGINAL_GRAPH,
        SamplingRoute.FULL_GRAPH,
    }


def test_native_likelihood_is_the_weighted_marginal(design: Design) -> None:
    likelihood = GaussianLikelihood.of(design)
    theta = np.array([SD_HERD / SIGMA])
    value, *_ = likelihood.value_and_gradient(BETA, theta, SIGMA)
    expected = _dense_loglik(design, BETA, SD_HERD, SIGMA)
    assert value == pytest.approx(expected, rel=1e-10)
    assert likelihood.evaluate(BETA, theta, SIGMA).value == pytest.approx(expected, rel=1e-10)


def test_native_density_measures_the_weighted_residual(design: Design) -> None:
    """The sampler's likelihood: its residual design keeps the weights, and at the
    offsets of the sampler's coordinates it is the weighted marginal at β."""
    fixed = FixedEffectsPrior(design, resolve_priors(design))
    residual = fixed.residual_design(design)
    np.testing.assert_array_equal(residual.weights, design.weights)
    v = BETA.copy()
    if fixed.centre >= 0:
        v[fixed.centre] += sum(m * x for m, x in zip(fixed.means, BETA, strict=True))
    np.testing.assert_allclose(fixed.beta(list(v)), BETA, rtol=1e-12, atol=1e-15)
    value, *_ = GaussianLikelihood.of(residual).value_and_gradient(
        np.array(fixed.offsets(list(v))), np.array([SD_HERD / SIGMA]), SIGMA
    )
    assert value == pytest.approx(_dense_loglik(design, BETA, SD_HERD, SIGMA), rel=1e-9)


def test_marginal_graph_is_the_weighted_marginal(design: Design) -> None:
    statistics = FactorStatistics.from_design(design)
    value = _marginal_loglik(statistics, BETA, (SD_HERD, 0.0, 0.0), SIGMA).eval()
    assert float(value) == pytest.approx(_dense_loglik(design, BETA, SD_HERD, SIGMA), rel=1e-10)


def test_full_graph_gives_each_row_sigma_over_root_weight(design: Design) -> None:
    model = build_pymc_model(design)
    (observed,) = model.observed_RVs
    row_sd = observed.owner.inputs[-1]
    evaluate = model.compile_fn(
        [model["sigma"], row_sd], inputs=model.value_vars, on_unused_input="ignore"
    )
    sigma, rows = evaluate(model.initial_point())
    np.testing.assert_allclose(rows, sigma / np.sqrt(design.weights), rtol=1e-12)


def _posterior(design: Design, effects: np.ndarray) -> xr.Dataset:
    group = design.blocks[0].group
    return xr.Dataset(
        {
            "beta": (("chain", "draw", "coef"), BETA[None, None, :]),
            effects_name(group): (("chain", "draw", group, f"{group}__term"), effects),
            "sigma": (("chain", "draw"), np.array([[SIGMA]])),
        },
        coords={"coef": list(design.fixed_names)},
    )


def test_pointwise_log_likelihood_and_replicates_use_row_sds(design: Design) -> None:
    n_levels = design.blocks[0].n_levels
    effects = np.linspace(-0.05, 0.05, n_levels)[None, None, :, None]
    posterior = _posterior(design, effects)
    data = LinearPredictorData.from_design(design)
    eta = design.X @ BETA + effects[0, 0, design.blocks[0].codes, 0]
    expected = stats.norm.logpdf(design.y, eta, SIGMA / np.sqrt(design.weights))
    ll = pointwise_log_likelihood(posterior, data)
    np.testing.assert_allclose(ll.values[0, 0], expected, rtol=1e-12)
    big = posterior.assign(
        beta=(("chain", "draw", "coef"), np.broadcast_to(BETA, (1, 4000, BETA.size))),
        **{
            effects_name(design.blocks[0].group): (
                ("chain", "draw", design.blocks[0].group, f"{design.blocks[0].group}__term"),
                np.broadcast_to(effects, (1, 4000, n_levels, 1)),
            )
        },
        sigma=(("chain", "draw"), np.full((1, 4000), SIGMA)),
    )
    draws = posterior_predictive_draws(big, data, np.random.default_rng(15)).values[0]
    spread = pd.Series(np.std(draws - eta, axis=0))
    ratio = spread * np.sqrt(design.weights) / SIGMA
    # 4000 draws per row: the SD of each row's sample SD is about 1.1 %
    assert np.all(np.abs(ratio - 1.0) < 0.06)


@pytest.mark.parametrize(
    ("options", "route"),
    [
        ({}, "gaussian_native"),
        ({"sampler": "pymc"}, "marginal_graph"),
        ({"sampler": "pymc", "marginalize": False}, "full_graph"),
    ],
)
def test_every_route_samples_the_weighted_model(options: dict, route: str) -> None:
    """Weighted, σ is about 0.44 (REML 0.4356); ignoring the weights it would be 0.125."""
    model = hm.Model(FORMULA, hm.datasets.load("cbpp"), weights="size")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mle = model.fit_mle()
        fit = model.fit_bayes(
            draws=300, tune=300, chains=2, random_seed=3, progressbar=False, **options
        )
    assert fit.route == route
    assert float(fit.posterior["sigma"].median()) == pytest.approx(mle.sigma, rel=0.1)
    np.testing.assert_array_less(np.abs(fit.fixef - mle.fixef), 0.5 * mle.fixef_se)


def test_default_sigma_prior_is_for_a_row_of_average_weight(design: Design) -> None:
    """Weights all equal to c make σ √c times larger for the same data: so does its prior."""
    plain = build_design(FORMULA, hm.datasets.load("cbpp"), "gaussian")
    assert plain.weights is None
    weighted = resolve_priors(design)["sigma"]
    unweighted = resolve_priors(plain)["sigma"]
    assert weighted.params["sigma"] == pytest.approx(
        unweighted.params["sigma"] * np.sqrt(np.mean(design.weights)), rel=1e-12
    )
    constant = build_design(
        FORMULA, hm.datasets.load("cbpp"), "gaussian", weights=np.full(56, 6.25)
    )
    assert resolve_priors(constant)["sigma"].params["sigma"] == pytest.approx(
        2.5 * unweighted.params["sigma"], rel=1e-12
    )
