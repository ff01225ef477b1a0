"""The compound fits speak the shared result vocabulary: summaries, ci_prob, old spellings."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import special, stats

from hiermodels.compound import (
    BetaBinomial,
    BetaBinomialFit,
    CompoundFit,
    EBIntervals,
    NormalFit,
    NormalNormal,
    PoissonGamma,
    PoissonGammaFit,
)
from hiermodels.names import DEFAULT_CI_PROB

RANEF_COLUMNS = ["grpvar", "term", "grp", "estimate", "se", "lower", "upper"]
PROBS = [0.5, 0.8, 0.9, 0.95, 0.99]


@pytest.fixture(scope="module")
def batting_fit(baseball: pd.DataFrame) -> NormalFit:
    # Efron and Morris's batting averages: an interior ML fit (tau2 > 0, with a standard error)
    y = baseball["Hits"].to_numpy() / 45
    se = np.sqrt(y.mean() * (1 - y.mean()) / 45)
    fit = NormalNormal(y, se, units=baseball["Player"]).fit("ml")
    assert not fit.boundary and fit.tau2_se is not None
    return fit


@pytest.fixture(scope="module")
def schools_fit(eight_schools: pd.DataFrame) -> NormalFit:
    # tau2 given, so the fit is interior, without a standard error of tau
    model = NormalNormal(eight_schools["y"], eight_schools["sigma"], units=eight_schools["school"])
    return model.fit(tau2=100.0)


@pytest.fixture(scope="module")
def rats_fit(rats_historical: pd.DataFrame) -> BetaBinomialFit:
    return BetaBinomial(rats_historical["y"], rats_historical["K"]).fit("ml")


@pytest.fixture(scope="module")
def pumps_fit(pumps: tuple[np.ndarray, np.ndarray]) -> PoissonGammaFit:
    return PoissonGamma(*pumps).fit("ml")


@pytest.fixture(params=["batting_fit", "rats_fit", "pumps_fit"])
def any_fit(request: pytest.FixtureRequest) -> CompoundFit:
    return request.getfixturevalue(request.param)


def test_ranef_summary_is_the_long_table_of_the_plug_in_posteriors(any_fit):
    table = any_fit.ranef_summary(ci_prob=0.9)
    assert list(table.columns) == RANEF_COLUMNS
    assert table.attrs == {"interval": "equal-tailed", "ci_prob": 0.9}
    assert list(table["grp"]) == list(any_fit.units)
    assert (table["term"] == type(any_fit).term).all()
    assert_allclose(table["estimate"], any_fit.post_mean, rtol=0)
    assert_allclose(table["se"], any_fit.post_sd, rtol=0)
    intervals = any_fit.intervals(0.9)
    assert_allclose(table["lower"], intervals.lower, rtol=0)
    assert_allclose(table["upper"], intervals.upper, rtol=0)
    assert not any("hdi" in column for column in table.columns)


def test_ranef_is_the_plug_in_posterior_means_by_unit(batting_fit, rats_fit):
    ((name, frame),) = batting_fit.ranef.items()
    assert name == "Player" and list(frame.columns) == ["theta"]
    assert frame.index.name == "Player" and list(frame.index) == list(batting_fit.units)
    assert_allclose(frame["theta"], batting_fit.post_mean, rtol=0)
    assert list(rats_fit.ranef["unit"].columns) == ["p"]


def test_terms_and_unit_names(batting_fit, schools_fit, rats_fit, pumps_fit):
    # the unit labels' name (a pandas Series' name) is the grouping variable, else "unit"
    assert schools_fit.ranef_summary()["grpvar"].unique().tolist() == ["school"]
    assert batting_fit.ranef_summary()["grpvar"].unique().tolist() == ["Player"]
    assert rats_fit.ranef_summary()["grpvar"].unique().tolist() == ["unit"]
    assert [f.term for f in (batting_fit, rats_fit, pumps_fit)] == ["theta", "p", "lambda"]


def test_default_ci_prob_is_the_shared_one(any_fit):
    assert any_fit.ranef_summary().attrs["ci_prob"] == DEFAULT_CI_PROB == 0.95
    assert any_fit.intervals().ci_prob == DEFAULT_CI_PROB
    assert any_fit.fixef_summary().attrs["ci_prob"] == DEFAULT_CI_PROB


def test_intervals_widen_with_ci_prob(any_fit):
    widths = np.array(
        [(t["upper"] - t["lower"]).to_numpy() for t in map(any_fit.ranef_summary, PROBS)]
    )
    assert np.all(np.diff(widths, axis=0) > 0)
    sd_widths = [float(any_fit.varcorr_summary(p).eval("upper - lower").iloc[0]) for p in PROBS]
    mean_widths = [float(any_fit.fixef_summary(p).eval("upper - lower").iloc[0]) for p in PROBS]
    assert np.all(np.diff(sd_widths) > 0) and np.all(np.diff(mean_widths) > 0)


def test_central_intervals_hold_ci_prob_of_the_plug_in_posterior(batting_fit, rats_fit, pumps_fit):
    iv = batting_fit.intervals(ci_prob=0.8)
    mass = stats.norm.cdf(iv.upper, iv.mean, iv.sd) - stats.norm.cdf(iv.lower, iv.mean, iv.sd)
    assert_allclose(mass, 0.8, rtol=1e-12)
    iv = rats_fit.intervals(ci_prob=0.8)
    a, b = rats_fit.post_alpha, rats_fit.post_beta
    assert_allclose(stats.beta.cdf(iv.lower, a, b), 0.1, rtol=1e-9)
    iv = pumps_fit.intervals(ci_prob=0.8)
    upper_tail = stats.gamma.sf(iv.upper, pumps_fit.post_shape, scale=1 / pumps_fit.post_rate)
    assert_allclose(upper_tail, 0.1, rtol=1e-9)


def test_old_level_keyword_warns_and_gives_the_same_intervals(schools_fit, rats_fit):
    for fit in (schools_fit, rats_fit):
        with pytest.warns(DeprecationWarning, match="use ci_prob="):
            old = fit.intervals(level=0.9)
        new = fit.intervals(ci_prob=0.9)
        assert_allclose(old.lower, new.lower, rtol=0) and old.ci_prob == 0.9
        with pytest.raises(TypeError, match="ci_prob= only"):
            fit.intervals(ci_prob=0.9, level=0.9)


def test_ci_prob_outside_the_unit_interval_is_refused(any_fit):
    with pytest.raises(ValueError, match=r"ci_prob must be in \(0, 1\), got 1.5"):
        any_fit.intervals(1.5)
    with pytest.raises(ValueError, match="got 0"):
        any_fit.ranef_summary(ci_prob=0)


def test_morris_and_bootstrap_take_ci_prob_and_warn_on_level(eight_schools):
    model = NormalNormal(eight_schools["y"], eight_schools["sigma"])
    with pytest.warns(DeprecationWarning, match="level= is deprecated"):
        old = model.morris_intervals(level=0.9)
    new = model.morris_intervals(ci_prob=0.9)
    assert_allclose(old.upper, new.upper, rtol=0)
    assert new.to_frame().attrs == {"interval": "morris", "ci_prob": 0.9}
    with pytest.warns(DeprecationWarning, match="level= is deprecated"):
        old = model.bootstrap_intervals(n_boot=50, level=0.9, random_seed=3)
    new = model.bootstrap_intervals(n_boot=50, ci_prob=0.9, random_seed=3)
    assert_allclose(old.upper, new.upper, rtol=0)
    assert new.interval == "bootstrap"


def test_eb_intervals_level_is_a_deprecated_alias():
    with pytest.warns(DeprecationWarning, match="use ci_prob="):
        iv = EBIntervals(("a",), [0.0], [1.0], [-1.0], [1.0], level=0.68, method="peb")
    with pytest.warns(DeprecationWarning, match="EBIntervals.ci_prob"):
        assert iv.level == 0.68
    assert iv.ci_prob == 0.68 and iv.to_frame().attrs["interval"] == "equal-tailed"


def test_normal_fixef_and_varcorr(schools_fit):
    fit = schools_fit
    assert fit.fixef.to_dict() == {"mu": fit.mu}
    table = fit.fixef_summary(0.9)
    z = stats.norm.ppf(0.95)
    row = table.loc["mu"]
    assert_allclose(row[["estimate", "se"]], [fit.mu, fit.mu_se], rtol=0)
    assert_allclose(row[["lower", "upper"]], [fit.mu - z * fit.mu_se, fit.mu + z * fit.mu_se])
    assert table.attrs == {"interval": "wald", "ci_prob": 0.9}
    vc = fit.varcorr
    assert list(vc.columns) == ["grpvar", "var1", "var2", "vcov", "sdcor"]
    assert vc.iloc[0][["grpvar", "var1"]].tolist() == ["school", "theta"]
    assert_allclose(vc.iloc[0][["vcov", "sdcor"]].astype(float), [100.0, 10.0], rtol=1e-14)
    # tau2 was given: no standard error, no interval
    assert fit.varcorr_summary()[["se", "lower", "upper"]].isna().all(axis=None)


def test_normal_varcorr_summary_is_wald_on_log_tau(batting_fit):
    fit = batting_fit
    row = fit.varcorr_summary(0.95).iloc[0]
    log_se = fit.tau2_se / (2 * fit.tau2)
    z = stats.norm.ppf(0.975)
    assert_allclose(row["estimate"], fit.tau, rtol=0)
    assert_allclose(row["se"], fit.tau * log_se, rtol=1e-12)
    assert_allclose([row["lower"], row["upper"]], fit.tau * np.exp([-z * log_se, z * log_se]))


def _delta_se(function, x: np.ndarray, cov: np.ndarray, h: float = 1e-6) -> float:
    """Delta-method SE with a central-difference gradient (independent of the analytic one)."""
    grad = np.array([(function(x + h * e) - function(x - h * e)) / (2 * h) for e in np.eye(2)])
    return float(np.sqrt(grad @ cov @ grad))


def test_beta_binomial_fixef_and_varcorr(rats_fit):
    fit = rats_fit
    x = np.log([fit.alpha, fit.beta])
    assert fit.varcorr.iloc[0]["sdcor"] == pytest.approx(stats.beta(fit.alpha, fit.beta).std())
    logit_se = _delta_se(lambda v: special.logit(np.exp(v[0]) / np.exp(v).sum()), x, fit.log_cov)
    row = fit.fixef_summary(0.95).loc["mu"]
    z = stats.norm.ppf(0.975)
    bounds = special.expit(special.logit(fit.prior_mean) + np.array([-z, z]) * logit_se)
    assert_allclose([row["lower"], row["upper"]], bounds, rtol=1e-6)
    assert row["lower"] < fit.prior_mean < row["upper"]
    log_sd_se = _delta_se(lambda v: np.log(stats.beta(*np.exp(v)).std()), x, fit.log_cov)
    sd_row = fit.varcorr_summary(0.95).iloc[0]
    assert sd_row["se"] == pytest.approx(sd_row["estimate"] * log_sd_se, rel=1e-5)


def test_poisson_gamma_fixef_and_varcorr(pumps_fit):
    fit = pumps_fit
    prior = stats.gamma(fit.a, scale=1 / fit.b)
    assert fit.fixef["mu"] == pytest.approx(prior.mean(), rel=1e-12)
    assert fit.varcorr.iloc[0]["sdcor"] == pytest.approx(prior.std(), rel=1e-12)
    x = np.log([fit.a, fit.b])
    log_sd_se = _delta_se(lambda v: np.log(stats.gamma(np.exp(v[0]), scale=np.exp(-v[1])).std()),
                          x, fit.log_cov)  # fmt: skip
    sd_row = fit.varcorr_summary().iloc[0]
    assert sd_row["se"] == pytest.approx(sd_row["estimate"] * log_sd_se, rel=1e-5)
    assert sd_row[["grpvar", "var1"]].tolist() == ["unit", "lambda"]


def test_moments_and_boundary_fits_report_no_standard_errors(rats_historical):
    fit = BetaBinomial(rats_historical["y"], rats_historical["K"]).fit("mm")
    assert fit.fixef_summary()[["se", "lower", "upper"]].isna().all(axis=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the boundary warning
        pooled = PoissonGamma([3, 3, 3, 3], [1.0, 1.0, 1.0, 1.0]).fit("ml")
    assert pooled.boundary
    assert pooled.varcorr.iloc[0]["sdcor"] == 0.0
    assert np.isnan(pooled.varcorr_summary().iloc[0]["se"])
    table = pooled.ranef_summary()
    assert (table["lower"] == table["upper"]).all()


def test_to_frame_is_one_table_per_fit_with_the_old_columns(schools_fit, rats_fit, pumps_fit):
    assert list(schools_fit.to_frame().columns) == ["y", "se", "shrinkage", "post_mean", "post_sd"]
    assert list(rats_fit.to_frame().columns) == [
        "successes", "trials", "shrinkage", "post_alpha", "post_beta", "post_mean", "post_sd",
    ]  # fmt: skip
    assert list(pumps_fit.to_frame().columns) == [
        "counts", "exposure", "shrinkage", "post_shape", "post_rate", "post_mean", "post_sd",
    ]  # fmt: skip
    assert schools_fit.to_frame().index.name == "unit"
