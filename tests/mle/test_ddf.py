"""Satterthwaite and Kenward-Roger df against lmerTest 3.1-3 and pbkrtest 0.5-2.

References: tests/reference/lmerTest and tests/reference/pbkrtest (scripts and
provenance there). At the fit: Satterthwaite df within 1e-4 relative and
p-values within 1e-6 absolute; Kenward-Roger SEs and df within 1e-3. At
lme4's own estimates the methods agree far closer (1e-6), which checks the
derivatives apart from the optimiser's last digits.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import hiermodels as hm
from hiermodels.errors import ConvergenceWarning
from hiermodels.mle.ddf import SMALL_SAMPLE_MAX_NOBS, small_sample
from hiermodels.mle.results import MixedFit
from tests.reference.small_sample import LMERTEST_FITS, REML_FITS, fitted, load


def _vector(value: object) -> np.ndarray:
    return np.atleast_1d(np.asarray(value, dtype=float))


def _at_lme4_estimates(fit: MixedFit, ref: dict) -> MixedFit:
    return dataclasses.replace(
        fit, theta=_vector(ref["theta"]), sigma=float(ref["sigma"]), beta=_vector(ref["fixef"])
    )


@pytest.mark.parametrize("name", LMERTEST_FITS)
def test_satterthwaite_table_matches_lmertest(name: str) -> None:
    ref = load("lmerTest", name)
    table = fitted(name).fixef_table("satterthwaite")
    expected = ref["satterthwaite"]
    assert len(table) == len(np.atleast_1d(expected["rows"]))
    np.testing.assert_allclose(table["estimate"], _vector(expected["Estimate"]), rtol=1e-4)
    np.testing.assert_allclose(table["se"], _vector(expected["Std. Error"]), rtol=1e-3)
    np.testing.assert_allclose(table["df"], _vector(expected["df"]), rtol=1e-4)
    np.testing.assert_allclose(table["statistic"], _vector(expected["t value"]), rtol=1e-3)
    np.testing.assert_allclose(table["p_value"], _vector(expected["Pr(>|t|)"]), rtol=0, atol=1e-6)
    assert table.attrs == {"ddf": "satterthwaite", "test": "t"}


@pytest.mark.parametrize("name", LMERTEST_FITS)
def test_satterthwaite_df_at_lme4_estimates(name: str) -> None:
    ref = load("lmerTest", name)
    table = _at_lme4_estimates(fitted(name), ref).fixef_table("satterthwaite")
    np.testing.assert_allclose(table["df"], _vector(ref["satterthwaite"]["df"]), rtol=1e-6)


@pytest.mark.parametrize("name", REML_FITS)
def test_kenward_roger_matches_pbkrtest(name: str) -> None:
    ref = load("pbkrtest", name)
    fit = fitted(name)
    p = fit.beta.size
    np.testing.assert_allclose(
        small_sample(fit).vcov_adjusted,
        np.asarray(ref["vcov_adjusted"]).reshape(p, p),
        rtol=1e-3,
        atol=1e-8,
    )
    table = fit.fixef_table("kenward-roger")
    np.testing.assert_allclose(table["df"], _vector(ref["ddf"]), rtol=1e-3)
    expected = load("lmerTest", name)["kenward_roger"]
    np.testing.assert_allclose(table["se"], _vector(expected["Std. Error"]), rtol=1e-3)
    np.testing.assert_allclose(table["p_value"], _vector(expected["Pr(>|t|)"]), rtol=0, atol=1e-6)


def test_kenward_roger_adjusts_the_covariance_upwards() -> None:
    # Φ_A - Φ is positive semi-definite for these models (the small-sample bias of Φ)
    fit = fitted("tlc_unbalanced_slope_reml")
    lmm = small_sample(fit)
    assert np.linalg.eigvalsh(lmm.vcov_adjusted - lmm.vcov).min() > -1e-10


def test_singular_fit_keeps_lmertest_and_pbkrtest_df() -> None:
    # θ = 0: lmerTest's df in (θ, σ) ignore the batch variance (n - 1 = 29), while
    # pbkrtest's, in the covariance elements, still count it (5 = batches - 1).
    fit = fitted("dyestuff2_reml_singular")
    assert fit.singular
    assert fit.fixef_table("satterthwaite")["df"].iloc[0] == pytest.approx(29.0, rel=1e-6)
    assert fit.fixef_table("kenward-roger")["df"].iloc[0] == pytest.approx(5.0, rel=1e-6)


def test_ddf_methods_are_checked() -> None:
    fit = fitted("sleepstudy_slope_ml")
    with pytest.raises(ValueError, match="REML"):
        fit.fixef_table("kenward-roger")
    with pytest.raises(ValueError, match="ddf must be one of"):
        fit.fixef_table("containment")  # type: ignore[arg-type]


def test_glmm_allows_asymptotic_only() -> None:
    cbpp = hm.datasets.load("cbpp")
    fit = hm.Model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial"
    ).fit_mle()
    with pytest.raises(ValueError, match="asymptotic"):
        fit.fixef_table("satterthwaite")
    table = fit.fixef_table()
    assert table.attrs["test"] == "z" and np.all(np.isinf(table["df"]))
    z = fit.beta / fit.fixef_se.to_numpy()
    np.testing.assert_allclose(table["statistic"], z, rtol=1e-12)
    summary = fit.summary().fixed
    np.testing.assert_allclose(table["p_value"], summary["Pr(>|z|)"], rtol=1e-12)


def test_asymptotic_is_the_wald_z_test() -> None:
    fit = fitted("sleepstudy_slope_reml")
    table = fit.fixef_table("asymptotic")
    wald = fit.fixef_summary(ci_prob=0.95)
    np.testing.assert_allclose(table["se"], wald["se"], rtol=1e-12)
    assert np.all(np.isinf(table["df"]))


@pytest.mark.parametrize("name", ["tlc_unbalanced_factorial_reml", "sleepstudy_slope_ml"])
def test_summary_shows_satterthwaite_columns_as_lmertest(name: str) -> None:
    # lmerTest's summary adds the df and p-values to REML and ML fits alike
    ref = load("lmerTest", name)
    summary = fitted(name).summary()
    assert list(summary.fixed.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    np.testing.assert_allclose(summary.fixed["df"], ref["satterthwaite"]["df"], rtol=1e-4)
    np.testing.assert_allclose(
        summary.fixed["Pr(>|t|)"], ref["satterthwaite"]["Pr(>|t|)"], rtol=0, atol=1e-6
    )
    assert "Satterthwaite" in str(summary)


def _without_rows_in_memory(fit: MixedFit, monkeypatch: pytest.MonkeyPatch) -> MixedFit:
    """The fit as one with more rows than the dense form takes (a fresh memo)."""
    monkeypatch.setattr("hiermodels.mle.ddf.SMALL_SAMPLE_MAX_NOBS", fit.nobs - 1)
    return dataclasses.replace(fit)


@pytest.mark.parametrize("name", LMERTEST_FITS)
def test_satterthwaite_from_cross_products_at_lme4_estimates(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # lmerTest's own route: numerical derivatives of the deviance in (θ, σ)
    ref = load("lmerTest", name)
    fit = _without_rows_in_memory(_at_lme4_estimates(fitted(name), ref), monkeypatch)
    table = fit.fixef_table("satterthwaite")
    np.testing.assert_allclose(table["df"], _vector(ref["satterthwaite"]["df"]), rtol=1e-5)
    np.testing.assert_allclose(table["se"], _vector(ref["satterthwaite"]["Std. Error"]), rtol=1e-5)


def test_large_fits_have_satterthwaite_but_not_kenward_roger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fit = fitted("sleepstudy_slope_reml")
    dense = fit.summary().fixed
    large = _without_rows_in_memory(fit, monkeypatch)
    summary = large.summary()
    np.testing.assert_allclose(summary.fixed["df"], dense["df"], rtol=1e-6)
    assert "Satterthwaite" in str(summary)
    with pytest.raises(ValueError, match="dense n x n"):
        large.fixef_table("kenward-roger")
    assert SMALL_SAMPLE_MAX_NOBS == 3000


def test_non_positive_hessian_warns() -> None:
    # far from the optimum the REML deviance is not convex in (θ, σ)
    fit = fitted("sleepstudy_slope_reml")
    away = dataclasses.replace(fit, theta=fit.theta * np.array([3.0, -20.0, 0.05]))
    with pytest.warns(ConvergenceWarning, match="eigenvalue"):
        away.fixef_table("satterthwaite")


def _weighted_sleepstudy() -> tuple[MixedFit, dict]:
    ref = load("lmerTest", "sleepstudy_slope_weighted_reml")
    data = hm.datasets.load("sleepstudy").assign(w=ref["weights"])
    return hm.Model(ref["formula"], data, weights="w").fit_mle(), ref


def test_weighted_satterthwaite_matches_lmertest() -> None:
    fit, ref = _weighted_sleepstudy()
    table = fit.fixef_table("satterthwaite")
    expected = ref["satterthwaite"]
    np.testing.assert_allclose(table["se"], _vector(expected["Std. Error"]), rtol=1e-4)
    np.testing.assert_allclose(table["df"], _vector(expected["df"]), rtol=1e-4)
    np.testing.assert_allclose(table["p_value"], _vector(expected["Pr(>|t|)"]), rtol=0, atol=1e-6)


def test_weighted_kenward_roger_starts_from_the_fits_covariance() -> None:
    # pbkrtest ignores precision weights, so the check is internal: the unadjusted
    # covariance is the weighted fit's, and the adjustment only widens it
    fit, _ = _weighted_sleepstudy()
    model = small_sample(fit)
    np.testing.assert_allclose(model.vcov, fit.vcov_beta, rtol=1e-6)
    unweighted = small_sample(
        dataclasses.replace(fit, design=dataclasses.replace(fit.design, weights=None))
    )
    assert not np.allclose(unweighted.vcov, fit.vcov_beta, rtol=1e-3)
    adjusted = fit.fixef_table("kenward-roger")["se"].to_numpy()
    assert np.all(adjusted >= np.sqrt(np.diag(fit.vcov_beta)) * (1 - 1e-9))
