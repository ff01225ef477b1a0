"""Empirical Bayes for negative-binomial GLMMs: the dispersion plugged in is its MLE."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest

import hiermodels as hm
from hiermodels.eb.analytic import hyperparameter_covariance, kass_steffey_variances
from hiermodels.eb.quadrature import scalar_conditional
from hiermodels.errors import SingularFitWarning
from hiermodels.mle.results import MixedFit
from tests.bayes import simulate

DRAWS = dict(draws=1000, tune=500, chains=2, progressbar=False)


@cache
def model() -> hm.Model:
    grouse = hm.datasets.load("grouseticks")
    return hm.Model("TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD)", grouse, family="negativebinomial")


@cache
def mle() -> MixedFit:
    return model().fit_mle()


def test_quadrature_eb_plugs_in_the_mle_dispersion() -> None:
    fit = mle()
    eb = model().fit_eb(mle=fit, eb_method="quadrature", plugin="all")
    assert eb.plugged["alpha"] == fit.alpha
    exact = scalar_conditional(fit)
    np.testing.assert_allclose(eb.ranef_summary()["estimate"], exact.mean)
    # the conditional at another alpha is another answer: the plug-in is not decorative
    other = scalar_conditional(_with_alpha(fit, 2 * fit.alpha))
    assert np.max(np.abs(other.sd / exact.sd - 1)) > 0.01


def _with_alpha(fit: MixedFit, alpha: float) -> MixedFit:
    from dataclasses import replace

    return replace(fit, alpha=alpha)


def test_mcmc_eb_holds_alpha_at_its_mle_and_agrees_with_quadrature() -> None:
    fit = mle()
    eb = model().fit_eb(mle=fit, plugin="all", random_seed=4, **DRAWS)
    assert eb.eb_method == "mcmc"
    draws = eb.idata.posterior["alpha"].to_numpy()
    assert np.all(draws == fit.alpha)
    exact = scalar_conditional(fit)
    table = eb.ranef_summary()
    mcse = exact.sd / np.sqrt(table["ess_bulk"].to_numpy())
    assert np.max(np.abs(table["estimate"].to_numpy() - exact.mean) / mcse) < 4.0


def test_fit_eb_without_mle_fits_the_dispersion() -> None:
    eb = model().fit_eb(eb_method="quadrature", plugin="all")
    assert eb.mle.alpha == pytest.approx(mle().alpha, rel=1e-6)
    assert eb.plugged["alpha"] == eb.mle.alpha


def test_kass_steffey_carries_the_dispersions_uncertainty() -> None:
    fit = mle()
    params, cov = hyperparameter_covariance(fit, "hyper")
    assert params.size == fit.theta.size + 1
    assert params[-1] == pytest.approx(math.log(fit.alpha))
    assert 0 < cov[-1, -1] < 0.1  # Var(log alpha-hat), from the Laplace deviance's curvature
    extra = kass_steffey_variances(fit, "hyper")[0]
    assert np.all(np.isfinite(extra)) and np.all(extra > 0)


def test_mcmc_eb_at_the_poisson_boundary_is_refused_clearly() -> None:
    truth = simulate.poisson(seed=27)  # alpha's MLE is infinite: see tests/mle/test_nbinom_fit.py
    nb = hm.Model(truth.formula, truth.data, family="negativebinomial", offset=truth.offset)
    with pytest.warns(SingularFitWarning):
        fit = nb.fit_mle()
    with pytest.raises(ValueError, match=r"Poisson boundary \(alpha = inf\).*family='poisson'"):
        nb.fit_eb(mle=fit)
    # the exact quadrature conditional at alpha = inf is the Poisson model's
    poisson = hm.Model(truth.formula, truth.data, family="poisson", offset=truth.offset).fit_mle()
    ours = nb.fit_eb(mle=fit, eb_method="quadrature", plugin="all").ranef_summary()
    theirs = scalar_conditional(poisson)
    np.testing.assert_allclose(ours["estimate"], theirs.mean, atol=1e-5)
