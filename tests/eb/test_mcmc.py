"""EB by MCMC on the PyMC graph against the exact conditionals; the shrinkage comparison."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.eb.quadrature import scalar_conditional

DRAWS = dict(draws=1000, tune=500, chains=2, progressbar=False)


@pytest.fixture(scope="module")
def sleep_model() -> hm.Model:
    return hm.Model("Reaction ~ Days + (Days | Subject)", hm.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def tlc_model() -> hm.Model:
    return hm.Model("lead ~ week + treatment + (1 | id)", hm.datasets.load("tlc"))


def _within_mc_error(mcmc: pd.DataFrame, mean: np.ndarray, sd: np.ndarray) -> float:
    """Largest |MCMC mean − exact mean| in Monte Carlo SEs (SE from the bulk ESS)."""
    mcse = sd / np.sqrt(mcmc["ess_bulk"].to_numpy())
    return float(np.max(np.abs(mcmc["estimate"].to_numpy() - mean) / mcse))


@pytest.mark.parametrize("plugin", ["all", "hyper"])
def test_sleepstudy_mcmc_eb_agrees_with_analytic(sleep_model: hm.Model, plugin: str) -> None:
    mle = sleep_model.fit_mle()
    exact = sleep_model.fit_eb(plugin=plugin, mle=mle).ranef_summary()
    fit = sleep_model.fit_eb(plugin=plugin, mle=mle, eb_method="mcmc", random_seed=11, **DRAWS)
    mcmc = fit.ranef_summary()
    assert _within_mc_error(mcmc, exact["estimate"].to_numpy(), exact["se_plugin"].to_numpy()) < 4.0
    # the Monte Carlo error of each posterior SD, from the draws themselves
    errors = (
        az.mcse(fit.idata.posterior["u_Subject"], method="sd")
        .to_dataframe(name="mcse")
        .reset_index()
        .rename(columns={"Subject": "grp", "Subject__term": "term"})
    )
    sds = mcmc.assign(exact=exact["se_plugin"].to_numpy()).merge(errors, on=["grp", "term"])
    assert len(sds) == len(mcmc)
    assert np.all(np.abs(sds["se_plugin"] - sds["exact"]) < 4.0 * sds["mcse"])
    assert mcmc["r_hat"].max() < 1.01


def test_tlc_mcmc_eb_agrees_with_analytic(tlc_model: hm.Model) -> None:
    mle = tlc_model.fit_mle()
    exact = tlc_model.fit_eb(plugin="all", mle=mle).ranef_summary()
    mcmc = tlc_model.fit_eb(
        plugin="all", mle=mle, eb_method="mcmc", random_seed=5, **DRAWS
    ).ranef_summary()
    assert _within_mc_error(mcmc, exact["estimate"].to_numpy(), exact["se_plugin"].to_numpy()) < 4.0


def test_glmm_mcmc_eb_is_the_exact_conditional_not_the_laplace_gaussian() -> None:
    cbpp = hm.datasets.load("cbpp")
    model = hm.Model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial"
    )
    mle = model.fit_mle()
    exact = scalar_conditional(mle)
    mcmc = model.fit_eb(plugin="all", mle=mle, random_seed=3, **DRAWS).ranef_summary()
    assert _within_mc_error(mcmc, exact.mean, exact.sd) < 4.0
    # both shown: the Laplace modes sit where the exact means do not
    laplace_gap = np.abs(mcmc["mode_mle"].to_numpy() - exact.mean) / exact.sd
    assert laplace_gap.max() > 0.05


def test_dyestuff2_boundary_comparison_shows_wider_full_bayes_intervals() -> None:
    dye2 = hm.datasets.load("dyestuff2")
    model = hm.Model("Yield ~ 1 + (1 | Batch)", dye2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eb = model.fit_eb()
        bayes = model.fit_bayes(random_seed=7, **DRAWS)
    assert eb.boundary == ("sd_Batch__Intercept",)
    comparison = hm.compare_shrinkage(eb, bayes)
    table = comparison.table
    assert table["eb_boundary"].all()
    np.testing.assert_allclose(table["eb_mean"], 0.0, atol=1e-8)
    assert np.all(table["bayes_high"] - table["bayes_low"] > table["eb_high"] - table["eb_low"])
    assert np.isinf(table["width_ratio"]).all()
    hyper = comparison.hyperparameters.set_index("parameter")
    assert hyper.loc["sd_Batch__Intercept", "mle"] == 0.0
    assert hyper.loc["sd_Batch__Intercept", "median"] > 0.0


def test_shrinkage_comparison_layout(sleep_model: hm.Model) -> None:
    mle = sleep_model.fit_mle()
    eb = sleep_model.fit_eb(mle=mle)
    bayes = sleep_model.fit_bayes(random_seed=2, **DRAWS)
    comparison = hm.compare_shrinkage(eb, bayes, ci_prob=0.9)
    table = comparison.table
    assert len(table) == 36
    assert set(table["n_obs"]) == {10}
    for column in (
        "no_pooling",
        "eb_mean",
        "eb_low_corrected",
        "bayes_mean",
        "eb_shrinkage",
        "width_ratio",
        "population_coef",
    ):
        assert table[column].notna().all(), column
    # EB lies between no pooling and complete pooling for these well-identified groups
    shrink = table["eb_shrinkage"]
    assert shrink.between(0, 1).mean() > 0.8
    intercept = table[table["term"] == "Intercept"]
    assert intercept["population_coef"].iloc[0] == pytest.approx(mle.fixef["Intercept"])
    ds = comparison.to_xarray()
    assert ds["eb_mean_Subject"].dims == ("Subject", "Subject__term")
    hyper = comparison.hyperparameters
    assert list(hyper["parameter"]) == [
        "sd_Subject__Intercept",
        "sd_Subject__Days",
        "corr_Subject[Intercept,Days]",
        "sigma",
    ]
    assert hyper["mle_quantile"].between(0.05, 0.95).all()
    other = hm.Model("Reaction ~ Days + (1 | Subject)", hm.datasets.load("sleepstudy"))
    with pytest.raises(ValueError, match="different models"):
        hm.compare_shrinkage(other.fit_eb(), bayes)
    assert comparison.ci_prob == 0.9 and ds.attrs == {"ci_prob": 0.9}
    with pytest.warns(DeprecationWarning, match="ShrinkageComparison.ci_prob"):
        assert comparison.interval == 0.9
    with pytest.warns(DeprecationWarning, match="interval= is deprecated.*use ci_prob="):
        old = hm.compare_shrinkage(eb, bayes, interval=0.9)
    pd.testing.assert_frame_equal(old.table, table)
    pd.testing.assert_frame_equal(old.hyperparameters, hyper)
    wider = hm.compare_shrinkage(eb, bayes).table  # DEFAULT_CI_PROB, 0.95
    assert (
        wider["bayes_high"] - wider["bayes_low"] >= table["bayes_high"] - table["bayes_low"]
    ).all()
    with pytest.raises(TypeError, match="pass ci_prob= only"):
        hm.compare_shrinkage(eb, bayes, ci_prob=0.8, interval=0.9)
