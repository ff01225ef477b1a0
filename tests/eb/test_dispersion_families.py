"""Empirical Bayes for Gamma and inverse-Gaussian GLMMs: the dispersion plugged in is its MLE.

Data: tests/reference/glmmTMB/{gamma_log_intercept_seed1,
invgauss_log_intercept_seed4}.csv (simulated by make_dispersion_reference.R
there), whose MLEs tests/mle/test_gamma_invgauss.py checks against glmmTMB.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.eb.analytic import hyperparameter_covariance, kass_steffey_variances
from hiermodels.eb.quadrature import scalar_conditional
from hiermodels.mle.results import MixedFit

TMB_DIR = Path(__file__).parents[1] / "reference" / "glmmTMB"
DATA = {"gamma": "gamma_log_intercept_seed1", "inverse_gaussian": "invgauss_log_intercept_seed4"}
DRAWS = dict(draws=1000, tune=500, chains=2, progressbar=False)
FAMILIES = list(DATA)


@cache
def model(family: str) -> hm.Model:
    data = pd.read_csv(TMB_DIR / f"{DATA[family]}.csv")
    return hm.Model("y ~ x + (1 | g)", data, family=family)


@cache
def mle(family: str) -> MixedFit:
    return model(family).fit_mle()


@pytest.mark.parametrize("family", FAMILIES)
def test_quadrature_eb_plugs_in_the_mle_dispersion(family: str) -> None:
    fit = mle(family)
    eb = model(family).fit_eb(mle=fit, eb_method="quadrature", plugin="all")
    assert eb.plugged["sigma"] == pytest.approx(math.sqrt(fit.phi), rel=1e-15)
    exact = scalar_conditional(fit)
    np.testing.assert_allclose(eb.ranef_summary()["estimate"], exact.mean)
    # the conditional at another phi is another answer: the plug-in is not decorative
    other = scalar_conditional(replace(fit, phi=2 * fit.phi))
    assert np.max(np.abs(other.sd / exact.sd - 1)) > 0.01


@pytest.mark.parametrize("family", FAMILIES)
def test_mcmc_eb_holds_sigma_at_its_mle_and_agrees_with_quadrature(family: str) -> None:
    fit = mle(family)
    eb = model(family).fit_eb(mle=fit, plugin="all", random_seed=4, **DRAWS)
    assert eb.eb_method == "mcmc"
    draws = eb.idata.posterior["sigma"].to_numpy()
    assert np.all(draws == math.sqrt(fit.phi))
    exact = scalar_conditional(fit)
    table = eb.ranef_summary()
    mcse = exact.sd / np.sqrt(table["ess_bulk"].to_numpy())
    assert np.max(np.abs(table["estimate"].to_numpy() - exact.mean) / mcse) < 4.0


@pytest.mark.parametrize("family", FAMILIES)
def test_kass_steffey_carries_the_dispersions_uncertainty(family: str) -> None:
    fit = mle(family)
    params, cov = hyperparameter_covariance(fit, "hyper")
    assert params.size == fit.theta.size + 1
    assert params[-1] == pytest.approx(math.log(fit.phi))
    # Var(log phi-hat) from the Laplace deviance's curvature: about 2/n for 300 rows
    assert 0.2 * 2 / fit.nobs < cov[-1, -1] < 5 * 2 / fit.nobs
    extra = kass_steffey_variances(fit, "hyper")[0]
    assert np.all(np.isfinite(extra)) and np.all(extra > 0)
