"""Prior weights in marginal-likelihood fits, against lme4 1.1-31 and exact properties.

Gaussian precision weights (``Var(y_i) = σ²/w_i``) reproduce lmer's weighted
fits (``tests/reference/lme4/*_weighted_*.json``, made by
``make_weights_reference.R``; the weights are stored in each file) to the
tolerances of ``test_lmm_reference.py``; binomial weights as numbers of trials
reproduce glmer's ``incidence / size ~ ..., weights = size``, which is the
``cbind`` fit. The properties: weights all equal to ``c`` leave β, the
effects' SDs and the criteria unchanged, multiply σ by √c and divide θ by
√c; integer weights are not frequency
weights, but at one θ they give duplicated rows' β and conditional modes
(same weighted cross products) with σ² in the ratio of the residual degrees
of freedom; zero-weight rows are dropped; shifting and scaling the response
or a covariate transforms a weighted fit as an unweighted one.
"""

from __future__ import annotations

import math
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.errors import DesignError
from hiermodels.mle.lmm import profiled_deviance
from hiermodels.mle.results import MixedFit
from tests.reference.lme4_names import load_reference, term_to_lme4

WEIGHTED_LMMS = [
    "sleepstudy_slope_weighted_reml",
    "sleepstudy_slope_weighted_ml",
    "radon_intercept_weighted_reml",
    "cbpp_gaussian_weighted_reml",
    "cbpp_gaussian_weighted_ml",
]


def _quiet_fit(model: hm.Model, **options: object) -> MixedFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit_mle(**options)  # type: ignore[arg-type]


@cache
def fitted(name: str) -> tuple[MixedFit, dict]:
    ref = load_reference(name)
    data = hm.datasets.load(ref["dataset"])
    model = hm.Model(ref["formula"], data, weights=np.asarray(ref["weights"], dtype=float))
    return _quiet_fit(model, method=ref["method"]), ref


@pytest.mark.parametrize("name", WEIGHTED_LMMS)
def test_fixed_effects_and_standard_errors_match_lme4(name: str) -> None:
    fit, ref = fitted(name)
    ours = {term_to_lme4(k): v for k, v in fit.fixef.items()}
    assert set(ours) == set(ref["fixef"])
    for key, expected in ref["fixef"].items():
        assert ours[key] == pytest.approx(expected, rel=1e-4, abs=1e-6), key
    ours_se = {term_to_lme4(k): v for k, v in fit.fixef_se.items()}
    for key, expected in ref["fixef_se"].items():
        assert ours_se[key] == pytest.approx(expected, rel=1e-3), key


@pytest.mark.parametrize("name", WEIGHTED_LMMS)
def test_theta_sigma_and_criteria_match_lme4(name: str) -> None:
    fit, ref = fitted(name)
    np.testing.assert_allclose(fit.theta, np.atleast_1d(ref["theta"]), rtol=1e-4, atol=1e-5)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert fit.aic == pytest.approx(ref["AIC"], abs=2e-3)
    assert fit.bic == pytest.approx(ref["BIC"], abs=2e-3)
    assert fit.n_params == ref["df"]
    if ref["method"] == "REML":
        assert fit.reml_criterion == pytest.approx(ref["REMLcrit"], abs=1e-3)
    else:
        assert fit.deviance == pytest.approx(ref["deviance_ml"], abs=1e-3)


@pytest.mark.parametrize("name", WEIGHTED_LMMS)
def test_criterion_at_lme4_theta_is_lme4s(name: str) -> None:
    """The weighted criterion itself, ``log|W|`` term included, at lme4's own θ."""
    fit, ref = fitted(name)
    criterion = profiled_deviance(fit.design, reml=ref["method"] == "REML")
    at_lme4 = criterion(np.atleast_1d(np.asarray(ref["theta"], dtype=float)))
    lme4_objective = ref["REMLcrit"] if ref["method"] == "REML" else ref["deviance_ml"]
    assert at_lme4 == pytest.approx(lme4_objective, abs=1e-6)
    assert fit.objective <= at_lme4 + 1e-7


@pytest.mark.parametrize("name", WEIGHTED_LMMS)
def test_conditional_modes_and_sds_match_lme4(name: str) -> None:
    fit, ref = fitted(name)
    lme4 = pd.DataFrame(ref["ranef"])
    ours = fit.ranef_frame()
    sd = {
        row.var1: row.sdcor
        for row in fit.varcorr.itertuples()
        if row.grp != "Residual" and not isinstance(row.var2, str)
    }
    merged = ours.assign(term=[term_to_lme4(t) for t in ours["term"]]).merge(
        lme4.assign(grp=lme4["grp"].astype(str)),
        on=["term", "grp"],
        suffixes=("", "_lme4"),
        validate="one_to_one",
    )
    assert len(merged) == len(lme4) == len(ours)
    for term, frame in merged.groupby("term"):
        scale = sd[next(k for k in sd if term_to_lme4(k) == term)]
        np.testing.assert_allclose(frame["condval"], frame["condval_lme4"], atol=1e-3 * scale)
        np.testing.assert_allclose(frame["condsd"], frame["condsd_lme4"], atol=1e-3 * scale)


def test_gradient_of_weighted_criterion_matches_differences() -> None:
    fit, _ = fitted("sleepstudy_slope_weighted_reml")
    deviance = profiled_deviance(fit.design, reml=True)
    theta = np.array([0.9, 0.05, 0.2])
    value, gradient = deviance.value_and_gradient(theta)
    assert value == pytest.approx(deviance(theta), rel=1e-12)
    step = 1e-6
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += step
        down[i] -= step
        difference = (deviance(up) - deviance(down)) / (2 * step)
        assert gradient[i] == pytest.approx(difference, rel=1e-5, abs=1e-5)


def test_binomial_proportion_with_trials_as_weights_matches_glmer() -> None:
    ref = load_reference("cbpp_binomial_weighted_laplace")
    cbpp = hm.datasets.load("cbpp")
    model = hm.Model(ref["formula"], cbpp, "binomial", weights="size")
    fit = _quiet_fit(model, laplace="glmer")
    ours = {term_to_lme4(k): v for k, v in fit.fixef.items()}
    for key, expected in ref["fixef"].items():
        assert ours[key] == pytest.approx(expected, rel=1e-3), key
    np.testing.assert_allclose(fit.theta, np.atleast_1d(ref["theta"]), rtol=1e-3)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)


def test_binomial_weights_are_the_cbind_fit() -> None:
    cbpp = hm.datasets.load("cbpp")
    weighted = _quiet_fit(
        hm.Model("incidence / size ~ period + (1 | herd)", cbpp, "binomial", weights="size")
    )
    cbind = _quiet_fit(
        hm.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, "binomial")
    )
    np.testing.assert_allclose(weighted.beta, cbind.beta, rtol=1e-10)
    np.testing.assert_allclose(weighted.theta, cbind.theta, rtol=1e-10)
    assert weighted.loglik == pytest.approx(cbind.loglik, rel=1e-12)


def test_bernoulli_with_weights_is_the_binomial_model() -> None:
    cbpp = hm.datasets.load("cbpp")
    formula = "incidence / size ~ period + (1 | herd)"
    bernoulli = hm.Model(formula, cbpp, "bernoulli", weights="size")
    binomial = hm.Model(formula, cbpp, "binomial", weights="size")
    assert bernoulli.family == binomial.family
    np.testing.assert_allclose(_quiet_fit(bernoulli).beta, _quiet_fit(binomial).beta, rtol=1e-12)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_equal_weights_rescale_sigma_only(method: str) -> None:
    """``w = c`` says ``Var(y) = σ²/c``: the same data give σ times √c and θ (relative
    to σ) over √c, so β, the effects' SDs and the likelihood are unchanged (lme4 too)."""
    sleep = hm.datasets.load("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    plain = _quiet_fit(hm.Model(formula, sleep), method=method)
    c = 6.25
    weighted = _quiet_fit(hm.Model(formula, sleep, weights=np.full(len(sleep), c)), method=method)
    np.testing.assert_allclose(weighted.beta, plain.beta, rtol=1e-6)
    assert weighted.sigma == pytest.approx(plain.sigma * math.sqrt(c), rel=1e-6)
    np.testing.assert_allclose(weighted.theta, plain.theta / math.sqrt(c), rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(
        weighted.varcorr["sdcor"].iloc[:-1], plain.varcorr["sdcor"].iloc[:-1], rtol=1e-5
    )
    # −n log c from the weighted residuals, +n log c from log|W| (REML: R_X's p log c too)
    assert weighted.loglik == pytest.approx(plain.loglik, abs=1e-6)
    np.testing.assert_allclose(weighted.vcov_beta, plain.vcov_beta, rtol=1e-5)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_integer_weights_at_one_theta_are_duplicated_rows(method: str) -> None:
    """Duplicating row i w_i times gives the same weighted cross products, so at one θ the
    same β and conditional modes; σ² differs by the ratio of residual degrees of freedom
    (Σw vs n), and the fitted θ generally differs: precision weights are not counts."""
    sleep = hm.datasets.load("sleepstudy")
    counts = 1 + np.arange(len(sleep)) % 3
    formula = "Reaction ~ Days + (Days | Subject)"
    weighted = _quiet_fit(hm.Model(formula, sleep, weights=counts), method=method)
    duplicated = sleep.loc[sleep.index.repeat(counts)].reset_index(drop=True)
    at_theta = _quiet_fit(hm.Model(formula, duplicated), method=method, theta=weighted.theta)
    np.testing.assert_allclose(at_theta.beta, weighted.beta, rtol=1e-8)
    np.testing.assert_allclose(
        at_theta.conditional_modes[0], weighted.conditional_modes[0], rtol=1e-7, atol=1e-9
    )
    p = weighted.beta.size
    n, total = len(sleep), int(counts.sum())
    dof_ratio = (n - p) / (total - p) if method == "REML" else n / total
    assert at_theta.sigma**2 == pytest.approx(weighted.sigma**2 * dof_ratio, rel=1e-8)
    free = _quiet_fit(hm.Model(formula, duplicated), method=method)
    assert np.max(np.abs(free.theta - weighted.theta)) > 1e-2


def test_zero_weights_drop_their_rows() -> None:
    sleep = hm.datasets.load("sleepstudy")
    weights = np.ones(len(sleep))
    weights[[0, 4, 29]] = 0.0
    formula = "Reaction ~ Days + (Days | Subject)"
    with pytest.warns(UserWarning, match="dropped 3 rows of 180 with weight zero"):
        model = hm.Model(formula, sleep, weights=weights)
    subset = _quiet_fit(hm.Model(formula, sleep[weights > 0]))
    fit = _quiet_fit(model)
    assert fit.nobs == 177
    assert list(fit.design.rows) == list(sleep.index[weights > 0])
    np.testing.assert_allclose(fit.beta, subset.beta, rtol=1e-8)
    assert fit.reml_criterion == pytest.approx(subset.reml_criterion, abs=1e-8)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_weighted_fit_is_equivariant_in_units(method: str) -> None:
    """``a + b·y`` and a covariate in other units: the weighted fit maps exactly."""
    ref = load_reference("sleepstudy_slope_weighted_reml")
    sleep = hm.datasets.load("sleepstudy")
    weights = np.asarray(ref["weights"], dtype=float)
    formula = "Reaction ~ Days + (Days | Subject)"
    base = _quiet_fit(hm.Model(formula, sleep, weights=weights), method=method)
    a, b, c = 1e6, 1e-3, 24.0
    moved = sleep.assign(Reaction=a + b * sleep["Reaction"], Days=sleep["Days"] / c)
    fit = _quiet_fit(hm.Model(formula, moved, weights=weights), method=method)
    np.testing.assert_allclose(fit.fixef["Days"], b * c * base.fixef["Days"], rtol=1e-6)
    np.testing.assert_allclose(fit.fixef["Intercept"], a + b * base.fixef["Intercept"], rtol=1e-9)
    assert fit.sigma == pytest.approx(b * base.sigma, rel=1e-6)
    sds = fit.varcorr.query("grp == 'Subject' and var2 != var2")["sdcor"].to_numpy()
    base_sds = base.varcorr.query("grp == 'Subject' and var2 != var2")["sdcor"].to_numpy()
    np.testing.assert_allclose(sds, b * base_sds * np.array([1.0, c]), rtol=1e-5)
    n, p = base.nobs, base.beta.size
    # the Jacobian of y → a + b·y; REML's log|XᵀV⁻¹X| has the units of X too
    shift = -(n - p) * math.log(b) + math.log(c) if method == "REML" else -n * math.log(b)
    assert fit.loglik == pytest.approx(base.loglik + shift, abs=1e-6)


def test_families_without_weights_refuse_them() -> None:
    grouse = hm.datasets.load("grouseticks")
    weights = np.ones(len(grouse))
    for family in ("poisson", "negativebinomial"):
        with pytest.raises(DesignError, match=f"not available for the {family} family"):
            hm.Model("TICKS ~ YEAR + (1 | BROOD)", grouse, family, weights=weights)


def test_eb_plugin_all_conditionals_are_lme4s_weighted_blups() -> None:
    """Closed-form EB with every MLE plugged in is lme4's ``condval``/``condVar``."""
    fit, ref = fitted("cbpp_gaussian_weighted_reml")
    model = hm.Model(ref["formula"], hm.datasets.load("cbpp"), weights="size")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eb = model.fit_eb(plugin="all", eb_method="analytic", mle=fit)
    table = eb.ranef_summary().set_index("grp")
    lme4 = pd.DataFrame(ref["ranef"]).assign(grp=lambda f: f["grp"].astype(str)).set_index("grp")
    table = table.loc[lme4.index]
    scale = float(fit.varcorr.query("grp == 'herd'")["sdcor"].iloc[0])
    np.testing.assert_allclose(table["estimate"], lme4["condval"], atol=1e-3 * scale)
    np.testing.assert_allclose(table["se_plugin"], lme4["condsd"], atol=1e-3 * scale)


def test_confidence_intervals_use_the_weighted_penalised_system() -> None:
    """Equal weights change θ and σ but not the model's mean: the confidence intervals of
    its predictions stay those of the unweighted fit; a new observation has weight 1."""
    sleep = hm.datasets.load("sleepstudy")
    formula = "Reaction ~ Days + (Days | Subject)"
    newdata = pd.DataFrame({"Days": [0.0, 4.5, 9.0], "Subject": ["308", "331", "new"]})
    plain = _quiet_fit(hm.Model(formula, sleep))
    weighted = _quiet_fit(hm.Model(formula, sleep, weights=np.full(len(sleep), 6.25)))
    expected = plain.predict(newdata, interval="confidence")
    confidence = weighted.predict(newdata, interval="confidence")
    np.testing.assert_allclose(confidence["estimate"], expected["estimate"], rtol=1e-6)
    np.testing.assert_allclose(confidence["se"], expected["se"], rtol=1e-5)
    seen = newdata["Subject"] != "new"
    prediction = weighted.predict(newdata[seen], interval="prediction")
    np.testing.assert_allclose(
        prediction["se"] ** 2, confidence["se"][seen] ** 2 + weighted.sigma**2, rtol=1e-10
    )
