"""Poisson–gamma compound model: negative-binomial MLE, moments, posteriors, edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize, special, stats

from hiermodels.compound import PoissonGamma


def _independent_nb_mle(y: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, float]:
    """Nelder–Mead on scipy's negative binomial: y ~ NB(a, b/(b+e)) marginally."""
    res = optimize.minimize(
        lambda x: -np.sum(stats.nbinom.logpmf(y, np.exp(x[0]), np.exp(x[1]) / (np.exp(x[1]) + e))),
        [0.0, 0.0],
        method="Nelder-Mead",
        options={"xatol": 1e-11, "fatol": 1e-13, "maxiter": 10000},
    )
    return np.exp(res.x), -res.fun


def test_pumps_mle_agrees_with_an_independent_negative_binomial_fit(pumps):
    y, e = pumps
    fit = PoissonGamma(y, e).fit("ml")
    (a_ref, b_ref), ll_ref = _independent_nb_mle(y, e)
    assert fit.a == pytest.approx(a_ref, rel=1e-6)
    assert fit.b == pytest.approx(b_ref, rel=1e-6)
    assert fit.loglik == pytest.approx(ll_ref, rel=1e-10)
    assert not fit.boundary
    assert fit.a_se is not None and fit.b_se is not None


def test_mle_matches_expected_sufficient_statistics(pumps):
    # ML-II with a conjugate gamma prior: prior E[lambda] = mean posterior E[lambda] and
    # prior E[log lambda] = psi(a) - log b = mean of psi(a + y_i) - log(b + e_i).
    y, e = pumps
    fit = PoissonGamma(y, e).fit("ml")
    assert fit.prior_mean == pytest.approx(np.mean(fit.post_mean), rel=1e-9)
    assert special.digamma(fit.a) - np.log(fit.b) == pytest.approx(
        np.mean(special.digamma(fit.post_shape) - np.log(fit.post_rate)), abs=1e-9
    )


def test_posterior_mean_shrinks_raw_rate_towards_prior_mean(pumps):
    # (a + y)/(b + e) = (1 - B) y/e + B a/b, B = b/(b + e) (conjugacy).
    y, e = pumps
    model = PoissonGamma(y, e)
    fit = model.fit("ml")
    b = fit.shrinkage
    assert_allclose(fit.post_mean, (1 - b) * model.raw + b * fit.prior_mean, rtol=1e-12)
    ci = fit.intervals()
    scale = 1.0 / fit.post_rate
    assert_allclose(
        stats.gamma.cdf(ci.upper, fit.post_shape, scale=scale)
        - stats.gamma.cdf(ci.lower, fit.post_shape, scale=scale),
        0.95,
        rtol=1e-10,
    )


def test_moments_reproduce_sample_mean_and_variance_with_equal_exposure():
    # Equal exposure e: mean(y/e) = a/b and unbiased var(y/e) = (a/b)/e + a/b^2.
    y = np.array([0, 3, 9, 2, 5, 14, 1, 7])
    fit = PoissonGamma(y, 2.0).fit("mm")
    rates = y / 2.0
    assert fit.prior_mean == pytest.approx(rates.mean(), rel=1e-14)
    assert fit.prior_mean / 2.0 + fit.prior_variance == pytest.approx(rates.var(ddof=1), rel=1e-12)


@pytest.mark.parametrize("method", ["ml", "mm"])
def test_equidispersed_counts_give_complete_pooling_without_nan(method):
    y = np.array([3, 4, 5, 4])
    with pytest.warns(UserWarning, match="complete pooling"):
        fit = PoissonGamma(y, 1.0).fit(method)
    assert fit.boundary
    assert fit.a == np.inf
    assert_allclose(fit.post_mean, 4.0, rtol=1e-15)
    assert_array_equal(fit.post_sd, np.zeros(4))
    assert not np.any(np.isnan(fit.to_frame().to_numpy()))
    assert fit.loglik == pytest.approx(np.sum(stats.poisson.logpmf(y, 4.0)), rel=1e-12)


@pytest.mark.parametrize("method", ["ml", "mm"])
def test_all_zero_counts_raise_a_clear_error(method):
    model = PoissonGamma([0, 0, 0, 0], [1.0, 2.0, 3.0, 4.0])
    assert model.pooled == 0.0
    assert_array_equal(model.raw, np.zeros(4))
    with pytest.raises(ValueError, match="all counts are zero"):
        model.fit(method)


def test_zero_exposure_unit_gets_the_prior(pumps):
    y, e = pumps
    with pytest.warns(UserWarning, match="zero exposure"):
        fit = PoissonGamma(np.append(y, 0), np.append(e, 0.0)).fit("ml")
    reference = PoissonGamma(y, e).fit("ml")
    assert fit.a == pytest.approx(reference.a, rel=1e-9)
    assert fit.post_mean[-1] == pytest.approx(fit.prior_mean, rel=1e-14)
    assert fit.post_sd[-1] == pytest.approx(np.sqrt(fit.a) / fit.b, rel=1e-14)
    assert np.all(np.isfinite(fit.to_frame().to_numpy()))


def test_invalid_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="positive counts with zero exposure at positions \\[0\\]"):
        PoissonGamma([2, 1, 3], [0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="exposure must be non-negative"):
        PoissonGamma([2, 1], [-1.0, 1.0])
    with pytest.raises(ValueError, match="non-negative"):
        PoissonGamma([-2, 1], 1.0)
    with pytest.raises(ValueError, match="whole numbers"):
        PoissonGamma([2.5, 1], 1.0)
    with pytest.raises(ValueError, match="at least 2 units with exposure > 0"):
        PoissonGamma([0, 1], [0.0, 1.0])
