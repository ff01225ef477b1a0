"""Gamma and inverse-Gaussian GLMMs by the Laplace approximation, against glmmTMB.

References: tests/reference/glmmTMB/{gamma_*, invgauss_*, sleepstudy_gamma_log,
sleepstudy_invgauss_log}.json, made by make_dispersion_reference.R there. Gamma
fits are glmmTMB 1.1.5's; glmmTMB 1.1.5 has no inverse Gaussian, so those come
from the same Laplace approximation written as a TMB template
(dispersion_laplace.cpp), which the script checks against glmmTMB on every Gamma
model (``template_check``). The tolerances are the issue's: fixed effects and the
log-likelihood 1e-3, SDs, correlations and the dispersion ``sigma = √φ`` 2e-3.
"""

from __future__ import annotations

import json
import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hiermodels as hm
from hiermodels.design.families import get_family
from hiermodels.errors import DesignError
from hiermodels.mle.response import GlmResponse
from hiermodels.mle.results import MixedFit
from tests.reference.lme4_names import term_to_lme4

TMB_DIR = Path(__file__).parents[1] / "reference" / "glmmTMB"
GAMMA_CASES = [
    "gamma_log_intercept_seed1",
    "gamma_log_slope_seed2",
    "gamma_inverse_intercept_seed3",
    "sleepstudy_gamma_log",
]
INVGAUSS_CASES = [
    "invgauss_log_intercept_seed4",
    "invgauss_log_slope_seed5",
    "invgauss_canonical_intercept_seed6",
    "sleepstudy_invgauss_log",
]
CASES = GAMMA_CASES + INVGAUSS_CASES


def reference(name: str) -> dict:
    return json.loads((TMB_DIR / f"{name}.json").read_text())


def expected(name: str) -> dict:
    """The reference fit: glmmTMB's, or the TMB template's for the inverse Gaussian."""
    ref = reference(name)
    return ref["glmmTMB"] if "glmmTMB" in ref else ref["tmb_template"]


def data_of(name: str) -> pd.DataFrame:
    if name.startswith("sleepstudy"):
        return hm.datasets.load("sleepstudy")
    return pd.read_csv(TMB_DIR / f"{name}.csv")


@cache
def fitted(name: str) -> MixedFit:
    ref = reference(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these fits should warn
        return hm.Model(
            ref["formula"], data_of(name), family=ref["family"], link=ref["link"]
        ).fit_mle()


def _sdcor(fit: MixedFit) -> dict[tuple[str, str, str | None], float]:
    out = {}
    for row in fit.varcorr.itertuples():
        if row.grp == "Residual":
            continue
        other = term_to_lme4(row.var2) if isinstance(row.var2, str) else None
        out[(row.grp, term_to_lme4(row.var1), other)] = float(row.sdcor)
    return out


@pytest.mark.parametrize("name", CASES)
def test_fixed_effects_match(name: str) -> None:
    fit = fitted(name)
    ref = expected(name)
    ours = {term_to_lme4(k): float(v) for k, v in fit.fixef.items()}
    assert set(ours) == set(ref["fixef"])
    for key, value in ref["fixef"].items():
        assert ours[key] == pytest.approx(value, abs=1e-3), key


@pytest.mark.parametrize("name", CASES)
def test_fixed_effect_standard_errors_match(name: str) -> None:
    fit = fitted(name)
    ref = expected(name)
    ours = {term_to_lme4(k): float(v) for k, v in fit.fixef_se.items()}
    for key, value in ref["fixef_se"].items():
        assert ours[key] == pytest.approx(value, rel=2e-3), key


@pytest.mark.parametrize("name", CASES)
def test_sds_correlations_and_dispersion_match(name: str) -> None:
    fit = fitted(name)
    ref = expected(name)
    ours = _sdcor(fit)
    theirs = {(r["grp"], r["var1"], r["var2"]): float(r["sdcor"]) for r in ref["varcorr"]}
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=2e-3), key
    assert math.sqrt(fit.phi) == pytest.approx(ref["dispersion"], abs=2e-3)


@pytest.mark.parametrize("name", CASES)
def test_loglik_and_parameter_count_match(name: str) -> None:
    fit = fitted(name)
    ref = expected(name)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert fit.n_params == ref["df"]
    assert fit.alpha is None and fit.sigma == 1.0


@pytest.mark.parametrize("name", GAMMA_CASES)
def test_template_reproduces_glmmtmb(name: str) -> None:
    """The TMB template that gives the inverse-Gaussian references is glmmTMB's criterion."""
    ref = reference(name)
    tmb, template = ref["glmmTMB"], ref["template_check"]
    assert template["logLik"] == pytest.approx(tmb["logLik"], abs=1e-6)
    assert template["dispersion"] == pytest.approx(tmb["dispersion"], abs=1e-4)
    for key, value in tmb["fixef"].items():
        assert template["fixef"][key] == pytest.approx(value, abs=1e-4)


@pytest.mark.parametrize("name", ["gamma_log_slope_seed2", "invgauss_log_intercept_seed4"])
def test_dispersion_is_the_residual_row(name: str) -> None:
    fit = fitted(name)
    varcorr = fit.varcorr
    residual = varcorr[varcorr["grp"] == "Residual"].iloc[0]
    assert residual["vcov"] == pytest.approx(fit.phi)
    assert residual["sdcor"] == pytest.approx(math.sqrt(fit.phi))
    summary = fit.varcorr_summary()
    assert summary.loc[summary["grp"] == "Residual", "name"].item() == "sigma"
    assert float(fit.to_xarray()["sigma"]) == pytest.approx(math.sqrt(fit.phi))


def test_summary_prints_the_dispersion() -> None:
    fit = fitted("gamma_log_intercept_seed1")
    text = str(fit.summary())
    assert f"Dispersion estimate for gamma family (sigma^2): {fit.phi:.4g}" in text
    assert "Residual" in text
    assert "gamma (log)" in text


@pytest.mark.parametrize(
    ("family", "link", "scipy_logpdf"),
    [
        ("gamma", "log", lambda y, mu, phi: stats.gamma.logpdf(y, 1 / phi, scale=mu * phi)),
        ("gamma", "inverse", lambda y, mu, phi: stats.gamma.logpdf(y, 1 / phi, scale=mu * phi)),
        (
            "inverse_gaussian",
            "log",
            lambda y, mu, phi: stats.invgauss.logpdf(y, mu * phi, scale=1 / phi),
        ),
        (
            "inverse_gaussian",
            "1/mu^2",
            lambda y, mu, phi: stats.invgauss.logpdf(y, mu * phi, scale=1 / phi),
        ),
    ],
)
def test_response_density_score_and_information(family, link, scipy_logpdf) -> None:
    """Log-density as scipy's; score and observed information as differences of it."""
    rng = np.random.default_rng(5)
    y = rng.gamma(3.0, 0.5, size=20)
    data = pd.DataFrame({"y": y, "g": np.repeat(["a", "b"], 10)})
    design = hm.Model("y ~ 1 + (1 | g)", data, family=family, link=link).design
    phi = 0.3
    response = GlmResponse.from_design(design, dispersion=phi)
    eta = rng.uniform(0.5, 1.5, size=y.size)
    mu = response.mean(eta)
    np.testing.assert_allclose(response.loglik_terms(eta), scipy_logpdf(y, mu, phi), rtol=1e-10)
    h = 1e-4
    up, down = response.loglik_terms(eta + h), response.loglik_terms(eta - h)
    centre = response.loglik_terms(eta)
    score = (up - down) / (2 * h)
    information = -(up - 2 * centre + down) / h**2
    _, weights, resid = response.working(eta)
    np.testing.assert_allclose(weights, information, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(weights * resid, score, rtol=1e-6, atol=1e-8)
    # the Fisher weights: (dμ/dη)² / Var(y)
    _, fisher, _ = response.with_information("expected").working(eta)
    np.testing.assert_allclose(
        fisher, response.mu_eta(eta, mu) ** 2 / response.variance(mu), rtol=1e-12
    )


def test_default_links_and_aliases() -> None:
    assert get_family("gamma").link == "log"
    assert get_family("inverse_gaussian").link == "log"
    assert get_family("inverse.gaussian", "1/mu^2") == get_family("inverse_gaussian", "1/mu^2")
    with pytest.raises(ValueError, match="not available for family 'gamma'"):
        get_family("gamma", "logit")


@pytest.mark.parametrize("family", ["gamma", "inverse_gaussian"])
def test_non_positive_response_names_the_rows(family: str) -> None:
    data = pd.DataFrame({"y": [1.0, 0.0, 2.0, -1.5, 3.0, 1.2], "g": list("aabbcc")})
    with pytest.raises(DesignError, match=r"2 values at or below 0 \(first rows: 1, 3\)"):
        hm.Model("y ~ 1 + (1 | g)", data, family=family)


@pytest.mark.parametrize("family", ["gamma", "inverse_gaussian"])
def test_constant_response_is_refused(family: str) -> None:
    data = pd.DataFrame({"y": [2.5] * 6, "g": list("aabbcc")})
    expected_message = r"constant \(2\.5\) in all 6 rows; the \w+ family's dispersion cannot"
    with pytest.raises(DesignError, match=expected_message):
        hm.Model("y ~ 1 + (1 | g)", data, family=family)


@pytest.mark.parametrize(
    "name", ["gamma_inverse_intercept_seed3", "invgauss_canonical_intercept_seed6"]
)
def test_response_scale_intervals_of_a_decreasing_link_are_ordered(name: str) -> None:
    """With η = 1/μ or 1/μ² the link-scale bounds map to the response scale reversed."""
    fit = fitted(name)
    newdata = data_of(name).head(5)
    link = fit.predict(newdata, interval="confidence", scale="link")
    response = fit.predict(newdata, interval="confidence", scale="response")
    assert np.all(response["lower"] < response["estimate"])
    assert np.all(response["estimate"] < response["upper"])
    power = 1.0 if fit.design.family.link == "inverse" else 0.5
    np.testing.assert_allclose(response["lower"], link["upper"] ** -power)
    np.testing.assert_allclose(response["upper"], link["lower"] ** -power)


@pytest.mark.parametrize(
    ("family", "link"),
    [
        ("gamma", "log"),
        ("gamma", "inverse"),
        ("inverse_gaussian", "log"),
        ("inverse_gaussian", "1/mu^2"),
    ],
)
@pytest.mark.parametrize("information", ["observed", "expected"])
def test_family_kernels_equal_glm_response(family: str, link: str, information: str) -> None:
    """The compiled weights, residuals, deviances and derivatives are GlmResponse's."""
    from hiermodels.mle import kernels
    from hiermodels.mle.pirls import pirls_family

    data = data_of("gamma_log_slope_seed2")
    design = hm.Model("y ~ x + (1 | g)", data, family=family, link=link).design
    response = GlmResponse.from_design(design, dispersion=0.3).with_information(information)
    n = response.y.size
    code, y, trials, log_constant, phi, observed = pirls_family(response)
    assert phi == 0.3 and observed == (information == "observed")
    rng = np.random.default_rng(3)
    for spread in (0.2, 1.0):
        eta = rng.uniform(0.1, 0.1 + spread, n)
        _, weights, resid = response.working(eta)
        w, r = np.empty(n), np.empty(n)
        kernels.glm_working(code, y, trials, phi, observed, eta, w, r)
        np.testing.assert_allclose(w, weights, rtol=1e-12)
        np.testing.assert_allclose(r, resid, rtol=1e-10, atol=1e-12)
        terms = np.empty(n)
        deviance = kernels.glm_deviance(code, y, trials, log_constant, phi, eta, terms)
        assert deviance == pytest.approx(response.deviance(eta), rel=1e-13)
        residual = kernels.glm_residual_deviance(code, y, trials, phi, eta, terms)
        assert residual == pytest.approx(response.residual_deviance(eta), rel=1e-12)
        first, newton, slope = np.empty(n), np.empty(n), np.empty(n)
        kernels.glm_derivatives(code, y, trials, phi, eta, first, newton, slope)
        observed_weights = response.with_information("observed").working(eta)[1]
        np.testing.assert_allclose(newton, observed_weights, rtol=1e-12)
        h = 1e-6
        up = response.with_information("observed").working(eta + h)[1]
        down = response.with_information("observed").working(eta - h)[1]
        np.testing.assert_allclose(slope, (up - down) / (2 * h), rtol=1e-5, atol=1e-6)
    # a linear predictor with no mean under an inverse link has log-likelihood −∞
    if link != "log":
        eta = np.full(n, -0.5)
        assert kernels.glm_deviance(code, y, trials, log_constant, phi, eta, terms) == np.inf
        assert response.deviance(eta) == np.inf
