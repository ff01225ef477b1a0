"""BayesFit: summaries, diagnostics, log-likelihood, LOO, predictive draws, predictions."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pymc as pm
import pytest
import xarray as xr
from scipy import special

import hiermodels as hm
from hiermodels.bayes import BayesFit, build_pymc_model, fit_bayes
from hiermodels.bayes.draws import LinearPredictorData, linear_predictor, prediction_data
from hiermodels.datasets import load
from hiermodels.design.design import build_design
from tests.bayes import simulate
from tests.bayes.conftest import SIMULATIONS

pytestmark = pytest.mark.xdist_group("bayes-simulated")

FAMILY_FITS = [
    "intercept",
    "bernoulli",
    "bernoulli_probit",
    "binomial",
    "poisson",
    "negativebinomial",
]


@pytest.mark.parametrize("name", FAMILY_FITS)
def test_numpy_log_likelihood_equals_pymc(simulated_fit, name: str) -> None:
    """The numpy log-likelihood (used for LOO) reproduces PyMC's for every family."""
    _, fit = simulated_fit(name)
    posterior = fit.posterior.isel(draw=slice(0, 5))
    ours = fit.log_likelihood().isel(draw=slice(0, 5))
    model = build_pymc_model(fit.design, fit.priors)
    tree = xr.DataTree.from_dict({"posterior": posterior})
    theirs = pm.compute_log_likelihood(
        tree, model=model, progressbar=False, extend_inferencedata=False
    )
    # 1e-6: PyTensor's log(erfc) for the probit link agrees with scipy's log_ndtr to ~2e-7
    np.testing.assert_allclose(ours.values, theirs["y"].values, rtol=1e-6, atol=1e-10)


def test_idata_groups_and_labels(simulated_fit) -> None:
    truth, fit = simulated_fit("nested")
    assert {"posterior", "sample_stats", "observed_data", "log_likelihood"} <= set(
        fit.idata.children
    )
    post = fit.posterior
    assert post["u_a:b"].dims == ("chain", "draw", "a:b", "a:b__term")
    assert list(post["coef"].values) == ["Intercept", "x"]
    np.testing.assert_array_equal(fit.idata["observed_data"]["y"].values, truth.data["y"])
    assert "sampler=nutpie, chains=4, draws=1000" in repr(fit)


def test_varcorr_and_ranef_layouts(simulated_fit) -> None:
    _, fit = simulated_fit("correlated_slope")
    varcorr = fit.varcorr_summary()
    assert list(varcorr.columns) == [
        "grp",
        "var1",
        "var2",
        "name",
        "estimate",
        "se",
        "lower",
        "upper",
        "median",
        "ess_bulk",
        "r_hat",
    ]
    assert varcorr[["grp", "var1", "var2"]].values.tolist() == [
        ["g", "Intercept", ""],
        ["g", "x", ""],
        ["g", "Intercept", "x"],
        ["Residual", "", ""],
    ]
    ranef = fit.ranef_summary()
    assert list(ranef.columns[:3]) == ["grpvar", "term", "grp"]
    assert len(ranef) == 40 * 2
    assert ranef["grp"].tolist()[:2] == ["g00", "g01"]
    u = fit.posterior["u_g"].sel(g="g07", g__term="x")
    row = ranef[(ranef["term"] == "x") & (ranef["grp"] == "g07")].iloc[0]
    assert row["estimate"] == pytest.approx(float(u.mean()))
    assert row["lower"] < row["estimate"] < row["upper"]


def test_ranef_rows_line_up_with_the_mle_fit(simulated_fit) -> None:
    truth, fit = simulated_fit("crossed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mle = hm.Model(truth.formula, truth.data).fit_mle()
    frame = mle.ranef_frame()
    ours = fit.ranef_summary()
    assert ours[["grpvar", "term", "grp"]].values.tolist() == (
        frame[["grpvar", "term", "grp"]].values.tolist()
    )
    # with 20 and 12 levels the posterior means sit close to the BLUPs
    assert np.corrcoef(ours["estimate"], frame["condval"])[0, 1] > 0.99


def test_diagnostics_pass_quietly_and_warn_on_failure(simulated_fit) -> None:
    _, fit = simulated_fit("intercept")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diag = fit.diagnostics(warn=False)
    assert diag.divergences == 0 and diag.max_r_hat < 1.02
    # chains stuck in two places: r_hat far above 1.01
    post = fit.posterior.copy()
    post["sigma"] = post["sigma"] + xr.DataArray([0.0, 5.0, 0.0, 5.0], dims="chain")
    broken = BayesFit(
        idata=xr.DataTree.from_dict(
            {"posterior": post, "sample_stats": fit.idata["sample_stats"].to_dataset()}
        ),
        design=fit.design,
        priors=fit.priors,
    )
    with pytest.warns(UserWarning, match=r"max r_hat .* \(sigma; want <= 1.01\)"):
        bad = broken.diagnostics()
    assert not bad.ok and bad.worst_r_hat == "sigma" and bad.max_r_hat > 1.5


def test_loo_uses_the_pointwise_log_likelihood(simulated_fit) -> None:
    _, fit = simulated_fit("poisson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto-k warnings are the user's call
        loo = fit.loo(pointwise=True)
    assert loo.n_data_points == fit.design.nobs
    assert np.isfinite(loo.elpd) and loo.elpd < 0
    # elpd_loo never exceeds the log pointwise predictive density
    ll = fit.log_likelihood()
    lppd = float(
        np.sum(
            special.logsumexp(ll.values.reshape(-1, ll.sizes["obs"]), axis=0)
            - np.log(ll.sizes["chain"] * ll.sizes["draw"])
        )
    )
    assert loo.elpd <= lppd


@pytest.mark.parametrize(
    "name", ["intercept", "bernoulli", "binomial", "poisson", "negativebinomial"]
)
def test_posterior_predictive_reproduces_the_data_mean(simulated_fit, name: str) -> None:
    _, fit = simulated_fit(name)
    yrep = fit.posterior_predictive(random_seed=4)
    assert yrep.dims == ("chain", "draw", "obs") and yrep.sizes["obs"] == fit.design.nobs
    means = yrep.mean("obs").values.ravel()
    observed = fit.design.y.mean()
    assert np.quantile(means, 0.005) < observed < np.quantile(means, 0.995)
    if name != "intercept":
        assert np.all(yrep.values == np.round(yrep.values)) and np.all(yrep.values >= 0)
    if name == "binomial":
        assert np.all(yrep.values <= 20)


def test_predict_in_sample_new_levels_and_errors(simulated_fit) -> None:
    truth, fit = simulated_fit("poisson")
    data = truth.data
    link = fit.predict(data, scale="link", offset="logt", draws=True)
    expected = linear_predictor(fit.posterior, LinearPredictorData.from_design(fit.design))
    np.testing.assert_allclose(link.values, expected.values)
    mean = fit.predict(data.iloc[:3], offset=data["logt"].iloc[:3].to_numpy(), draws=True)
    np.testing.assert_allclose(mean.values, np.exp(link.values[..., :3]))

    new = data.iloc[:2].copy()
    new["g"] = ["g00", "unseen"]
    pop = fit.predict(new, scale="link", offset="logt", draws=True)
    beta = fit.posterior["beta"]
    population = (
        beta.sel(coef="Intercept") + beta.sel(coef="x") * new["x"].iloc[1] + new["logt"].iloc[1]
    )
    np.testing.assert_allclose(pop.isel(obs=1).values, population.values)
    assert list(pop["obs"].values) == list(new.index)
    with pytest.raises(ValueError, match=re.escape("1 level(s) of 'g' not in the fit: unseen")):
        fit.predict(new, new_levels="error", offset="logt")
    with pytest.raises(ValueError, match="the model has an offset"):
        fit.predict(new)
    with pytest.raises(ValueError, match="lacks the grouping column"):
        fit.predict(new.drop(columns="g"), offset="logt")


def test_predict_mean_is_a_probability_for_bernoulli(simulated_fit) -> None:
    truth, fit = simulated_fit("bernoulli_probit")
    mean = fit.predict(truth.data.iloc[:10], draws=True)
    link = fit.predict(truth.data.iloc[:10], scale="link", draws=True)
    np.testing.assert_allclose(mean.values, special.ndtr(link.values))


def test_prediction_data_keeps_the_encoding_of_a_categorical_random_slope() -> None:
    """Rows holding one category get the design's own random-term columns and levels."""
    frame = simulate.categorical_slope_frame()
    design = build_design("y ~ c + (c | g)", frame, "gaussian")
    (block,) = design.blocks
    for category in ("a", "b", "c"):
        rows = np.flatnonzero(frame["c"] == category)
        data = prediction_data(design, frame.iloc[rows])
        ((group, codes, columns),) = data.groups
        assert group == "g"
        np.testing.assert_array_equal(codes, block.codes[rows])
        np.testing.assert_array_equal(columns, block.X[rows])
        np.testing.assert_array_equal(data.X, design.X[rows])


def test_pymc_sampler_and_stored_posterior_predictive() -> None:
    design = build_design("Reaction ~ Days + (1 | Subject)", load("sleepstudy"), "gaussian")
    fit = fit_bayes(
        design,
        sampler="pymc",
        draws=300,
        tune=300,
        chains=2,
        random_seed=2,
        progressbar=False,
        posterior_predictive=True,
    )
    assert fit.sampler == "pymc"
    assert {
        "posterior",
        "sample_stats",
        "observed_data",
        "log_likelihood",
        "posterior_predictive",
    } <= set(fit.idata.children)
    fixef = fit.fixef_summary()
    # lme4 (tests/reference/lme4/sleepstudy_intercept_reml.json): 251.405 (9.747), 10.467 (0.804)
    assert abs(fixef.loc["Intercept", "estimate"] - 251.405) < 9.747
    assert abs(fixef.loc["Days", "estimate"] - 10.467) < 0.804
    stored = fit.posterior_predictive()
    assert stored is not None and stored.sizes["obs"] == 180


def test_bad_sampler_settings_are_refused(sleep_design) -> None:
    with pytest.raises(ValueError, match="sampler must be 'nutpie' or 'pymc'"):
        fit_bayes(sleep_design, sampler="stan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="draws must be a positive integer"):
        fit_bayes(sleep_design, draws=0)


def test_simulations_cover_every_structure_and_family() -> None:
    formulas = {name: make().formula for name, make in SIMULATIONS.items()}
    assert any("||" in f for f in formulas.values())
    assert any("/" in f for f in formulas.values())
    families = {make().family for make in SIMULATIONS.values()}
    assert families == {"gaussian", "bernoulli", "binomial", "poisson", "negativebinomial"}
