"""The negative-binomial response and Laplace fit: likelihood, curvature, recovery, boundary."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.eb.analytic import hyperparameter_covariance
from hiermodels.errors import SingularFitWarning
from hiermodels.mle.response import GlmResponse
from tests.bayes import simulate
from tests.mle.simulate_nbinom import SLOPE_TRUTH, nbinom_slope

COUNTS = np.array([0.0, 1.0, 2.0, 5.0, 13.0, 40.0, 0.0, 7.0])


def _response(alpha: float, information: str = "observed") -> GlmResponse:
    n = COUNTS.size
    return GlmResponse(
        "negativebinomial", "log", COUNTS, np.ones(n), np.zeros(n), alpha, information
    )


@pytest.mark.parametrize("alpha", [0.3, 3.0, 250.0])
def test_loglik_is_scipys_nbinom(alpha: float) -> None:
    eta = np.linspace(-1.0, 3.0, COUNTS.size)
    mu = np.exp(eta)
    expected = stats.nbinom.logpmf(COUNTS, alpha, alpha / (alpha + mu))
    np.testing.assert_allclose(_response(alpha).loglik_terms(eta), expected, rtol=1e-12)


def test_large_alpha_is_the_poisson_limit_without_cancellation() -> None:
    eta = np.linspace(-1.0, 3.0, COUNTS.size)
    poisson = stats.poisson.logpmf(COUNTS, np.exp(eta))
    np.testing.assert_array_equal(_response(math.inf).loglik_terms(eta), poisson)
    # to first order in 1/alpha the terms differ from Poisson's by ((y - mu)^2 - y) / (2 alpha),
    # ~1e-8 at alpha = 1e10: a log-gamma difference would bury that in round-off of ~1e-6
    alpha, mu = 1e10, np.exp(eta)
    first_order = ((COUNTS - mu) ** 2 - COUNTS) / (2 * alpha)
    difference = _response(alpha).loglik_terms(eta) - poisson
    np.testing.assert_allclose(difference, first_order, rtol=0, atol=1e-12)


def test_working_weights_are_the_observed_information() -> None:
    """Newton's weights ``−∂²log p/∂η²`` and residual ``(∂log p/∂η)/w``, by central differences."""
    eta, h = np.linspace(-1.0, 3.0, COUNTS.size), 1e-4
    for information in ("observed", "expected"):
        response = _response(2.5, information)
        _, weights, resid = response.working(eta)
        terms = response.loglik_terms
        score = (terms(eta + h) - terms(eta - h)) / (2 * h)
        curvature = -(terms(eta + h) - 2 * terms(eta) + terms(eta - h)) / h**2
        np.testing.assert_allclose(weights * resid, score, rtol=1e-7, atol=1e-9)
        if information == "observed":
            np.testing.assert_allclose(weights, curvature, rtol=1e-5)
        else:  # Fisher: mu^2 / Var(y) = mu / (1 + mu/alpha), which differs where y != mu
            mu = np.exp(eta)
            np.testing.assert_allclose(weights, mu / (1 + mu / 2.5), rtol=1e-12)
            assert np.max(np.abs(weights / curvature - 1)) > 0.1


def test_negative_binomial_response_needs_its_dispersion() -> None:
    data = hm.datasets.load("grouseticks")
    model = hm.Model("TICKS ~ YEAR + (1 | BROOD)", data, family="negativebinomial")
    with pytest.raises(ValueError, match="needs its dispersion alpha"):
        GlmResponse.from_design(model.design)
    with pytest.raises(ValueError, match="alpha must be positive"):
        GlmResponse.from_design(model.design, dispersion=0.0)


def test_recovers_simulated_parameters() -> None:
    """``y ~ x + (x | g)``, 150 groups x 20 rows from tests/mle/simulate_nbinom.py.

    Seed 2 is the first tried. Each fixed effect and ``log alpha`` within
    three of its standard errors of the truth (alpha read as 1/alpha, or the
    expected information in place of the observed, would be far off), the
    SDs within 15% and the correlation within 0.25 (its SE is about 0.1).
    """
    truth = SLOPE_TRUTH
    fit = hm.Model("y ~ x + (x | g)", nbinom_slope(2, 150, 20), family="negativebinomial").fit_mle()
    for name, se in fit.fixef_se.items():
        assert abs(fit.fixef[name] - truth[name]) < 3 * se, name
    _, cov = hyperparameter_covariance(fit)
    se_log_alpha = math.sqrt(cov[-1, -1])
    assert 0.03 < se_log_alpha < 0.1
    assert abs(math.log(fit.alpha / truth["alpha"])) < 3 * se_log_alpha
    table = fit.varcorr
    sds = table[table["var2"].isna()].set_index("var1")["sdcor"]
    corr = float(table[table["var2"].notna()]["sdcor"].iloc[0])
    assert sds["Intercept"] == pytest.approx(truth["sd_g__Intercept"], rel=0.15)
    assert sds["x"] == pytest.approx(truth["sd_g__x"], rel=0.15)
    assert corr == pytest.approx(truth["corr_g[Intercept,x]"], abs=0.25)


@pytest.mark.parametrize("n_agq", [1, 0])
def test_poisson_data_give_the_poisson_boundary_loudly(n_agq: int) -> None:
    """Counts without overdispersion: alpha's MLE is infinite, and the fit says so.

    tests/bayes/simulate.py's poisson(seed=27) (seeds 23–26 drew data whose
    negative-binomial alpha is finite, 60–600): the optimiser stops on the
    flat ridge at alpha ≈ 5e6. The fit reports alpha = inf with a
    SingularFitWarning naming alpha and the Poisson limit, and the Poisson
    GLMM's estimates and log-likelihood — nothing silently half-way.
    """
    truth = simulate.poisson(seed=27)
    kwargs = dict(offset=truth.offset)
    nb = hm.Model(truth.formula, truth.data, family="negativebinomial", **kwargs)
    with pytest.warns(SingularFitWarning, match=r"alpha is estimated as infinite.*Poisson"):
        fit = nb.fit_mle(n_agq=n_agq)
    poisson = hm.Model(truth.formula, truth.data, family="poisson", **kwargs).fit_mle(n_agq=n_agq)
    assert fit.alpha == math.inf
    assert "alpha = inf" in fit.opt.optimizer
    np.testing.assert_allclose(fit.beta, poisson.beta, rtol=1e-5)
    np.testing.assert_allclose(fit.theta, poisson.theta, rtol=1e-5)
    np.testing.assert_allclose(fit.fixef_se, poisson.fixef_se, rtol=1e-4)
    assert fit.loglik == pytest.approx(poisson.loglik, abs=1e-6)
    assert fit.n_params == poisson.n_params + 1


def test_overdispersed_data_are_not_called_poisson() -> None:
    truth = simulate.negativebinomial()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SingularFitWarning)
        fit = hm.Model(truth.formula, truth.data, family=truth.family).fit_mle()
    assert 2.0 < fit.alpha < 8.0  # truth 4


def test_nagq0_estimates_alpha_too() -> None:
    grouse = hm.datasets.load("grouseticks")
    formula = "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)"
    model = hm.Model(formula, grouse, family="negativebinomial")
    fast, laplace = model.fit_mle(n_agq=0), model.fit_mle()
    assert fast.method == "Laplace (nAGQ=0)"
    assert "log alpha with β inside PIRLS (nAGQ=0)" in fast.opt.optimizer
    assert fast.alpha == pytest.approx(laplace.alpha, rel=0.02)
    # the fast fit maximises over a subset of the Laplace fit's parameter space
    assert fast.loglik < laplace.loglik
    assert fast.loglik == pytest.approx(laplace.loglik, abs=0.5)
