"""Beta–binomial compound model: marginal MLE, moments, posteriors and edge cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import optimize, special, stats

from hiermodels.compound import BetaBinomial

# Marginal beta–binomial MLE for the 70 historical rat tumour experiments (Tarone 1982;
# Gelman et al., BDA3 ch. 5), as given in issue 5's acceptance criteria.
RATS_ALPHA = 2.3048
RATS_BETA = 14.0798


def test_rats_marginal_mle_matches_reference(rats_historical):
    model = BetaBinomial(rats_historical["y"], rats_historical["K"])
    fit = model.fit("ml")
    assert fit.alpha == pytest.approx(RATS_ALPHA, abs=1e-3)
    assert fit.beta == pytest.approx(RATS_BETA, abs=1e-3)
    assert fit.prior_mean == pytest.approx(RATS_ALPHA / (RATS_ALPHA + RATS_BETA), abs=1e-4)
    assert fit.precision == pytest.approx(RATS_ALPHA + RATS_BETA, abs=2e-3)
    assert not fit.boundary
    assert fit.alpha_se is not None and 0 < fit.alpha_se < fit.alpha


def test_rats_mle_agrees_with_an_independent_simplex_fit(rats_historical):
    # Nelder–Mead on the beta-binomial log-pmf of scipy.stats (no derivatives, other code path).
    y, n = rats_historical["y"].to_numpy(), rats_historical["K"].to_numpy()
    res = optimize.minimize(
        lambda x: -np.sum(stats.betabinom.logpmf(y, n, *np.exp(x))),
        np.log([1.0, 5.0]),
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000},
    )
    fit = BetaBinomial(y, n).fit("ml")
    assert_allclose([fit.alpha, fit.beta], np.exp(res.x), rtol=1e-6)
    assert fit.loglik == pytest.approx(-res.fun, rel=1e-10)


def test_mle_matches_expected_sufficient_statistics(rats_historical):
    # For a conjugate exponential-family prior the ML-II equations say: the prior's
    # E[log p] and E[log(1-p)] equal the averages of the posterior ones,
    # psi(a) - psi(a+b) = mean_i psi(a+y_i) - psi(a+b+n_i), likewise for b.
    fit = BetaBinomial(rats_historical["y"], rats_historical["K"]).fit("ml")
    a, b = fit.alpha, fit.beta
    pa, pb = fit.post_alpha, fit.post_beta
    digamma = special.digamma
    assert digamma(a) - digamma(a + b) == pytest.approx(
        np.mean(digamma(pa) - digamma(pa + pb)), abs=1e-9
    )
    assert digamma(b) - digamma(a + b) == pytest.approx(
        np.mean(digamma(pb) - digamma(pa + pb)), abs=1e-9
    )


def test_posterior_mean_shrinks_raw_rate_towards_prior_mean(rats_historical):
    # (y + a)/(n + M) = (1 - B) y/n + B mu with B = M/(M + n) (conjugacy).
    model = BetaBinomial(rats_historical["y"], rats_historical["K"])
    fit = model.fit("ml")
    b = fit.shrinkage
    assert_allclose(b, fit.precision / (fit.precision + model.trials), rtol=1e-14)
    assert_allclose(fit.post_mean, (1 - b) * model.raw + b * fit.prior_mean, rtol=1e-12)
    intervals = fit.intervals(0.9)
    assert_allclose(
        stats.beta.cdf(intervals.upper, fit.post_alpha, fit.post_beta)
        - stats.beta.cdf(intervals.lower, fit.post_alpha, fit.post_beta),
        0.9,
        rtol=1e-10,
    )


def test_moments_reproduce_sample_mean_and_variance_with_equal_trials():
    # Equal n: mu = mean(y/n) and the unbiased variance of y/n equals the beta-binomial
    # variance mu (1 - mu)(M + n) / (n (M + 1)) (closed form of the beta-binomial moments).
    y = np.array([3, 7, 1, 9, 4, 6, 2, 8, 5, 10])
    n = 12
    fit = BetaBinomial(y, np.full(10, n)).fit("mm")
    rates = y / n
    mu, m = fit.prior_mean, fit.precision
    assert mu == pytest.approx(rates.mean(), rel=1e-14)
    assert mu * (1 - mu) * (m + n) / (n * (m + 1)) == pytest.approx(rates.var(ddof=1), rel=1e-12)


def test_zero_trial_units_get_the_prior_and_do_not_change_the_fit(rats_historical):
    y, n = rats_historical["y"].to_numpy(), rats_historical["K"].to_numpy()
    with_empty = BetaBinomial(np.append(y, 0), np.append(n, 0))
    with pytest.warns(UserWarning, match="zero trials"):
        fit = with_empty.fit("ml")
    reference = BetaBinomial(y, n).fit("ml")
    assert fit.alpha == pytest.approx(reference.alpha, rel=1e-9)
    assert fit.post_alpha[-1] == pytest.approx(fit.alpha, rel=1e-15)
    assert fit.post_beta[-1] == pytest.approx(fit.beta, rel=1e-15)
    assert fit.shrinkage[-1] == 1.0
    assert np.isnan(with_empty.raw[-1])
    assert np.all(np.isfinite(fit.to_frame().to_numpy()))
    assert any("zero trials" in note for note in fit.notes)


@pytest.mark.parametrize("method", ["ml", "mm"])
def test_underdispersed_data_give_complete_pooling_without_nan(method):
    # Less spread than binomial sampling alone: the precision estimate is infinite.
    y, n = np.array([5, 5, 5, 5, 6]), np.full(5, 10)
    model = BetaBinomial(y, n)
    with pytest.warns(UserWarning, match="complete pooling"):
        fit = model.fit(method)
    assert fit.boundary
    assert fit.precision == np.inf
    assert fit.prior_mean == pytest.approx(26 / 50, rel=1e-15)
    assert_allclose(fit.post_mean, 26 / 50, rtol=1e-15)
    assert_array_equal(fit.post_sd, np.zeros(5))
    ci = fit.intervals()
    assert_array_equal(ci.lower, ci.upper)
    assert not np.any(np.isnan(fit.to_frame().to_numpy()))
    # The marginal likelihood's limit is the binomial likelihood at the pooled rate.
    assert fit.loglik == pytest.approx(np.sum(stats.binom.logpmf(y, n, 0.52)), rel=1e-12)


def test_overdispersed_small_data_have_an_interior_mle():
    fit = BetaBinomial([1, 7, 0, 4], [10, 10, 10, 10]).fit("ml")
    assert not fit.boundary
    assert 0 < fit.precision < 100


def test_invalid_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="successes exceed trials at positions \\[1\\]"):
        BetaBinomial([1, 6], [5, 5])
    with pytest.raises(ValueError, match="non-negative"):
        BetaBinomial([-1, 2], [3, 3])
    with pytest.raises(ValueError, match="whole numbers"):
        BetaBinomial([1.5, 2], [3, 3])
    with pytest.raises(ValueError, match="2 values but trials has 3"):
        BetaBinomial([1, 2], [3, 3, 3])
    with pytest.raises(ValueError, match="at least 2 units with trials > 0"):
        BetaBinomial([1, 0], [3, 0])
    with pytest.raises(ValueError, match="method"):
        BetaBinomial([1, 2], [3, 3]).fit("reml")  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["ml", "mm"])
def test_all_zero_or_all_success_data_raise_a_clear_error(method):
    with pytest.raises(ValueError, match="all successes are zero"):
        BetaBinomial([0, 0, 0], [5, 6, 7]).fit(method)
    with pytest.raises(ValueError, match="all successes are equal to the trials"):
        BetaBinomial([5, 6, 7], [5, 6, 7]).fit(method)


def test_no_warnings_for_an_ordinary_interior_fit(rats_historical):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BetaBinomial(rats_historical["y"], rats_historical["K"]).fit("ml")
