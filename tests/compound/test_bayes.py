"""Full-Bayes versions of the compound models and the per-unit comparison tables.

Sampling is kept small (2 chains, a few hundred draws, one core); every model is
compiled once per session and reused. All tests run on one xdist worker.
"""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest

from hiermodels.compound import (
    COMPARISON_COLUMNS,
    BetaBinomial,
    BetaBinomialFit,
    CompoundBayesFit,
    NormalFit,
    NormalNormal,
    PoissonGamma,
    simulate_compound,
)

pytestmark = pytest.mark.xdist_group("compound_bayes")

DRAWS, TUNE = 400, 400


def _theta_mcse(bayes: CompoundBayesFit) -> np.ndarray:
    return np.asarray(az.mcse(bayes.datatree, var_names=["theta"], method="mean")["theta"])


# --- Normal: tight hyperpriors reproduce EB -------------------------------------------------


@pytest.fixture(scope="session")
def normal_tight() -> tuple[NormalNormal, NormalFit, CompoundBayesFit]:
    rng = np.random.default_rng(21)
    theta = 3.0 + 1.2 * rng.standard_normal(10)
    model = NormalNormal(theta + rng.standard_normal(10), 1.0)
    fit = model.fit("ml")
    assert fit.tau2 > 0.3  # a clear interior fit, so a tight prior around tau_hat exists
    hyper = {
        "mu": ("Normal", {"mu": fit.mu, "sigma": 1e-3}),
        "tau": ("LogNormal", {"mu": float(np.log(fit.tau)), "sigma": 1e-3}),
    }
    idata = model.fit_bayes(DRAWS, TUNE, 2, random_seed=22, hyperpriors=hyper)
    return model, fit, idata


def test_tight_hyperprior_full_bayes_matches_eb_within_monte_carlo_error(normal_tight):
    # With (mu, tau) pinned at (mu_hat, tau_hat) the full-Bayes posterior of theta_i is
    # the PEB posterior N(mu + (1 - B_i)(y_i - mu), (1 - B_i) se_i^2) (closed form).
    _, fit, idata = normal_tight
    draws = idata.posterior["theta"]
    fb_mean = draws.mean(("chain", "draw")).to_numpy()
    assert np.all(np.abs(fb_mean - fit.post_mean) < 4 * _theta_mcse(idata))
    fb_sd = draws.std(("chain", "draw")).to_numpy()
    np.testing.assert_allclose(fb_sd, fit.post_sd, rtol=0.15)


def test_normal_model_names_and_dims(normal_tight):
    model, _, idata = normal_tight
    pm_model = model.pymc_model()
    assert {"mu", "tau", "z", "theta", "y"} <= set(pm_model.named_vars)
    assert pm_model.named_vars_to_dims["theta"] == ("unit",)
    assert list(idata.posterior["theta"].coords["unit"].values) == list(model.units)


def test_comparison_table_layout_and_meaning(normal_tight):
    model, fit, idata = normal_tight
    table = model.compare(fit, idata)
    assert list(table.columns) == ["se", *COMPARISON_COLUMNS]
    assert table.index.name == "unit" and list(table.index) == list(model.units)
    # Shrinkage fraction (raw - EB)/(raw - pooled): with equal SEs the pooled value is the
    # mean that EB shrinks towards, so the fraction is exactly B = se^2/(se^2 + tau2_hat).
    np.testing.assert_allclose(table["eb_shrinkage"], fit.shrinkage, rtol=1e-10)
    assert np.all(table["complete_pooling"] == model.pooled)
    bayes_shift = (table["no_pooling"] - table["bayes_mean"]) / (table["no_pooling"] - model.pooled)
    np.testing.assert_allclose(table["bayes_shrinkage"], bayes_shift, rtol=1e-12)
    widths = (table["bayes_high"] - table["bayes_low"]) / (table["eb_high"] - table["eb_low"])
    np.testing.assert_allclose(table["width_ratio"], widths, rtol=1e-12)
    assert not table.drop(columns="note").isna().any().any()


def test_hyperprior_specs_are_checked():
    model = NormalNormal([1.0, 2.0, 3.0], 1.0)
    with pytest.raises(ValueError, match="unknown hyperprior names \\['sigma'\\]"):
        model.pymc_model({"sigma": ("HalfNormal", {"sigma": 1.0})})
    with pytest.raises(ValueError, match="not a PyMC distribution"):
        model.pymc_model({"tau": ("HalfNormalish", {"sigma": 1.0})})
    with pytest.raises(ValueError, match="bad parameters"):
        model.pymc_model({"tau": ("HalfNormal", {"scale": 1.0})})


# --- Normal: eight schools, a boundary EB fit beside full Bayes -----------------------------


@pytest.fixture(scope="session")
def schools_bayes(eight_schools: pd.DataFrame) -> tuple[NormalNormal, CompoundBayesFit]:
    model = NormalNormal(eight_schools["y"], eight_schools["sigma"], units=eight_schools["school"])
    return model, model.fit_bayes(DRAWS, TUNE, 2, random_seed=23)


def test_boundary_comparison_says_so_plainly(schools_bayes):
    model, idata = schools_bayes
    with pytest.warns(UserWarning, match="complete pooling"):
        fit = model.fit("reml")
    table = model.compare(fit, idata)
    assert all(note.startswith("complete pooling") for note in table["note"])
    assert table["eb_boundary"].all()
    assert (table["eb_sd"] == 0).all() and (table["bayes_sd"] > 0).all()
    assert np.all(table["width_ratio"] == np.inf)  # plug-in EB intervals have zero width
    assert all("width ratio infinite" in note for note in table["note"])
    # Full Bayes keeps tau > 0 and so leaves the units apart; EB pools them completely.
    assert table["bayes_mean"].std() > 0.1 and table["eb_mean"].std() == 0.0
    morris = model.compare(model.morris_intervals(), idata)
    assert np.all(np.isfinite(morris["width_ratio"])) and np.all(morris["width_ratio"] > 0)


# --- Beta–binomial: tight hyperpriors reproduce the conjugate EB posterior ------------------


@pytest.fixture(scope="session")
def rats_tight(
    rats_historical: pd.DataFrame,
) -> tuple[BetaBinomial, BetaBinomialFit, CompoundBayesFit]:
    y = np.append(rats_historical["y"].to_numpy(), 0)
    n = np.append(rats_historical["K"].to_numpy(), 0)  # a unit without trials
    model = BetaBinomial(y, n)
    with pytest.warns(UserWarning, match="zero trials"):
        fit = model.fit("ml")
    hyper = {
        "mu": ("Normal", {"mu": fit.prior_mean, "sigma": 1e-4}),
        "M": ("LogNormal", {"mu": float(np.log(fit.precision)), "sigma": 1e-3}),
    }
    return model, fit, model.fit_bayes(DRAWS, TUNE, 2, random_seed=24, hyperpriors=hyper)


def test_rats_tight_hyperprior_full_bayes_matches_conjugate_eb(rats_tight):
    # Posterior of p_i given (alpha_hat, beta_hat) is Beta(alpha + y_i, beta + n_i - y_i).
    model, fit, idata = rats_tight
    fb_mean = idata.posterior["theta"].mean(("chain", "draw")).to_numpy()
    assert np.all(np.abs(fb_mean - fit.post_mean) < 4 * _theta_mcse(idata))
    pm_model = model.pymc_model()
    assert {"mu", "M", "alpha", "beta", "theta", "y"} <= set(pm_model.named_vars)


def test_rats_comparison_handles_the_unit_without_trials(rats_tight):
    model, fit, idata = rats_tight
    table = model.compare(fit, idata)
    assert list(table.columns) == ["trials", *COMPARISON_COLUMNS]
    last = table.iloc[-1]
    assert last["trials"] == 0 and np.isnan(last["no_pooling"]) and np.isnan(last["eb_shrinkage"])
    assert last["note"] == "no trials: posterior = prior"
    assert not last["no_pooling_estimable"] and table["no_pooling_estimable"].iloc[:-1].all()
    assert not table["eb_boundary"].any()
    assert last["eb_mean"] == pytest.approx(fit.prior_mean, rel=1e-14)
    numeric = table.iloc[:-1].drop(columns="note")
    units_at_pool = np.isclose(numeric["no_pooling"], model.pooled, rtol=0, atol=1e-12)
    assert not numeric.loc[~units_at_pool].isna().any().any()
    assert table["complete_pooling"].iloc[0] == pytest.approx(
        model.successes.sum() / model.trials.sum(), rel=1e-15
    )


# --- Poisson–gamma: default hyperpriors, pumps ----------------------------------------------


@pytest.fixture(scope="session")
def pumps_bayes(pumps: tuple[np.ndarray, np.ndarray]) -> tuple[PoissonGamma, CompoundBayesFit]:
    model = PoissonGamma(*pumps)
    return model, model.fit_bayes(DRAWS, TUNE, 2, random_seed=25)


def test_pumps_full_bayes_and_comparison(pumps_bayes):
    model, idata = pumps_bayes
    fit = model.fit("ml")
    table = model.compare(fit, idata)
    assert list(table.columns) == ["exposure", *COMPARISON_COLUMNS]
    assert {"mu", "a", "b", "theta"} <= set(idata.posterior.data_vars)
    # EB moves each raw rate towards the prior mean a/b with weight B_i in (0, 1) ...
    lo = np.minimum(model.raw, fit.prior_mean)
    hi = np.maximum(model.raw, fit.prior_mean)
    assert np.all((table["eb_mean"] > lo) & (table["eb_mean"] < hi))
    # ... but the table measures the move against complete pooling, sum y / sum e = 75/350.032,
    # far below a/b here (long exposures dominate the pooled rate): the fraction can leave
    # [0, 1] when a raw rate lies between the two targets.
    assert model.pooled == pytest.approx(75 / 350.032, rel=1e-14)
    expected = (model.raw - fit.post_mean) / (model.raw - model.pooled)
    np.testing.assert_allclose(table["eb_shrinkage"], expected, rtol=1e-12)
    between = (model.raw - model.pooled) * (model.raw - fit.prior_mean) < 0
    assert np.all(table["eb_shrinkage"][between] < 0)
    # Full Bayes ranks the pumps as EB does (rank correlation of the means).
    ranks = pd.DataFrame({"eb": table["eb_mean"], "fb": table["bayes_mean"]}).rank()
    assert ranks.corr().iloc[0, 1] > 0.9


def test_all_zero_counts_still_give_a_proper_full_bayes_model():
    model = PoissonGamma([0, 0, 0, 0], [1.0, 2.0, 3.0, 4.0])
    pm_model = model.pymc_model()
    logp = pm_model.compile_logp()(pm_model.initial_point())
    assert np.isfinite(logp)


# --- Simulator with full Bayes for a few replications ---------------------------------------


def test_simulator_adds_full_bayes_for_a_few_replications():
    sim = simulate_compound(200, 8, tau=1.0, n_bayes=2, bayes_draws=200, bayes_tune=200,
                            random_seed=26)  # fmt: skip
    assert list(sim.bayes_losses.index) == [0, 1]
    assert "full_bayes" in sim.bayes_losses
    assert np.all(np.isfinite(sim.bayes_losses.to_numpy()))
    # Same replications, same losses for the vectorised estimators.
    pd.testing.assert_frame_equal(sim.bayes_losses.drop(columns="full_bayes"), sim.losses.iloc[:2])


# --- The full-Bayes result speaks the shared vocabulary -------------------------------------


def test_bayes_result_summaries_match_the_draws(schools_bayes):
    model, bayes = schools_bayes
    assert isinstance(bayes, CompoundBayesFit)
    table = bayes.ranef_summary(ci_prob=0.8)
    assert list(table.columns[:7]) == ["grpvar", "term", "grp", "estimate", "se", "lower", "upper"]
    assert table.attrs == {"interval": "equal-tailed", "ci_prob": 0.8}
    assert table["grpvar"].unique().tolist() == ["school"] and (table["term"] == "theta").all()
    assert list(table["grp"]) == list(model.units)
    draws = bayes.datatree["posterior"]["theta"].transpose("chain", "draw", "unit").to_numpy()
    flat = draws.reshape(-1, model.k)
    np.testing.assert_allclose(table["estimate"], flat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(table["se"], flat.std(axis=0, ddof=1), rtol=1e-12)
    np.testing.assert_allclose(table["lower"], np.quantile(flat, 0.1, axis=0), rtol=1e-12)
    np.testing.assert_allclose(table["upper"], np.quantile(flat, 0.9, axis=0), rtol=1e-12)
    widths = [(bayes.ranef_summary(p).eval("upper - lower")).to_numpy() for p in (0.5, 0.8, 0.95)]
    assert np.all(np.diff(widths, axis=0) > 0)
    ranef = bayes.ranef["school"]
    np.testing.assert_allclose(ranef["theta"], table["estimate"], rtol=1e-12)
    tau = bayes.datatree["posterior"]["tau"].to_numpy()
    assert bayes.fixef["mu"] == pytest.approx(float(bayes.posterior["mu"].mean()), rel=1e-12)
    assert bayes.fixef_summary().attrs["ci_prob"] == 0.95
    assert bayes.varcorr.iloc[0]["sdcor"] == pytest.approx(tau.mean(), rel=1e-12)
    vc = bayes.varcorr_summary(0.9).iloc[0]
    assert vc["lower"] == pytest.approx(np.quantile(tau, 0.05), rel=1e-12)


def test_bayes_prior_sd_of_the_beta_and_gamma_priors(rats_tight, pumps_bayes):
    _, fit, bayes = rats_tight
    post = bayes.posterior
    sd = np.sqrt(post["mu"] * (1 - post["mu"]) / (post["M"] + 1))
    assert bayes.varcorr.iloc[0]["sdcor"] == pytest.approx(float(sd.mean()), rel=1e-12)
    # the hyperpriors pin (mu, M) at the EB estimates, so the prior SDs agree
    assert bayes.varcorr.iloc[0]["sdcor"] == pytest.approx(fit.varcorr.iloc[0]["sdcor"], rel=1e-2)
    assert bayes.ranef_summary()["term"].unique().tolist() == ["p"]
    _, gamma_bayes = pumps_bayes
    post = gamma_bayes.posterior
    expected = float((np.sqrt(post["a"]) / post["b"]).mean())
    assert gamma_bayes.varcorr.iloc[0]["sdcor"] == pytest.approx(expected, rel=1e-12)


def test_bayes_result_keeps_the_old_datatree_access_for_one_release(schools_bayes):
    _, bayes = schools_bayes
    with pytest.warns(DeprecationWarning, match=r"result.datatree\['posterior'\]"):
        old = bayes["posterior"]
    assert old is bayes.datatree["posterior"]
    with pytest.warns(DeprecationWarning, match="result.datatree.sample_stats"):
        stats_group = bayes.sample_stats
    assert "diverging" in stats_group.data_vars
    with pytest.raises(AttributeError):
        bayes.no_such_group  # noqa: B018


def test_compare_takes_ci_prob_and_the_old_spellings(schools_bayes):
    model, bayes = schools_bayes
    fit = model.fit(tau2=25.0)
    table = model.compare(fit, bayes, ci_prob=0.9)
    assert table.attrs == {"interval": "equal-tailed", "ci_prob": 0.9}
    with pytest.warns(DeprecationWarning, match="use ci_prob="):
        old = model.compare(fit, bayes, level=0.9)
    pd.testing.assert_frame_equal(old, table)
    with pytest.warns(DeprecationWarning, match="use bayes="):
        from_tree = model.compare(fit, idata=bayes.datatree, ci_prob=0.9)
    pd.testing.assert_frame_equal(from_tree, table)
