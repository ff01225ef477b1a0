"""The shared result vocabulary: MixedFit, EBFit and BayesFit answer to the same names.

sleepstudy is fitted three ways (REML, analytic EB, and a short full-Bayes
run on the default compiled Gaussian route), and every fit must offer the
properties ``fixef``, ``ranef``, ``varcorr`` and the methods
``fixef_summary``, ``ranef_summary``, ``varcorr_summary`` with the same
labels, columns and ``ci_prob`` behaviour; the deprecated keywords still
work, warn, and give the numbers of the new ones.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.errors import SamplingWarning
from hiermodels.names import DEFAULT_CI_PROB
from tests.reference.lme4_names import load_reference, term_to_lme4

pytestmark = pytest.mark.xdist_group("bayes-simulated")

FORMULA = "Reaction ~ Days + (Days | Subject)"
SUMMARY_COLUMNS = ["estimate", "se", "lower", "upper"]
KINDS = ("mle", "eb", "bayes")


@cache
def model() -> hm.Model:
    return hm.Model(FORMULA, hm.datasets.load("sleepstudy"))


@cache
def fitted(kind: str) -> hm.MixedFit | hm.EBFit | hm.BayesFit:
    """The sleepstudy fit of one kind (cached: the Bayes run compiles once)."""
    if kind == "mle":
        return model().fit_mle()
    if kind == "eb":
        return model().fit_eb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplingWarning)  # a short run
        return model().fit_bayes(draws=200, tune=200, chains=2, random_seed=7, progressbar=False)


@pytest.fixture(params=KINDS)
def fit(request: pytest.FixtureRequest) -> hm.MixedFit | hm.EBFit | hm.BayesFit:
    return fitted(request.param)


def test_the_result_classes_are_exported() -> None:
    for name in ("MixedFit", "EBFit", "BayesFit"):
        assert name in hm.__all__
    assert isinstance(fitted("bayes"), hm.BayesFit)
    assert isinstance(fitted("eb"), hm.EBFit)


def test_point_estimates_share_types_labels_and_shapes() -> None:
    fits = {kind: fitted(kind) for kind in KINDS}
    reference = fits["mle"]
    for kind, fit in fits.items():
        fixef = fit.fixef
        assert isinstance(fixef, pd.Series), kind
        pd.testing.assert_index_equal(fixef.index, reference.fixef.index)
        ranef = fit.ranef
        assert isinstance(ranef, dict) and list(ranef) == ["Subject"], kind
        frame = ranef["Subject"]
        assert frame.shape == (18, 2), kind
        pd.testing.assert_index_equal(frame.index, reference.ranef["Subject"].index)
        assert list(frame.columns) == ["Intercept", "Days"], kind
        varcorr = fit.varcorr
        assert list(varcorr.columns) == list(reference.varcorr.columns), kind
        assert varcorr[["grp", "var1"]].values.tolist() == (
            reference.varcorr[["grp", "var1"]].values.tolist()
        ), kind
    # the three answers are of one model: the posterior means sit near the REML estimates
    gap = (fits["bayes"].fixef - reference.fixef).abs()
    assert np.all(gap < 0.5 * reference.fixef_se), gap
    np.testing.assert_allclose(fits["eb"].fixef, reference.fixef)


def test_summaries_share_columns_and_attrs(fit) -> None:
    fixef = fit.fixef_summary()
    assert list(fixef.columns[:4]) == SUMMARY_COLUMNS
    pd.testing.assert_index_equal(fixef.index, fitted("mle").fixef_summary().index)
    ranef = fit.ranef_summary()
    assert list(ranef.columns[:7]) == ["grpvar", "term", "grp", *SUMMARY_COLUMNS]
    mle_ranef = fitted("mle").ranef_summary()
    assert ranef[["grpvar", "term", "grp"]].values.tolist() == (
        mle_ranef[["grpvar", "term", "grp"]].values.tolist()
    )
    varcorr = fit.varcorr_summary()
    assert list(varcorr.columns[:8]) == ["grp", "var1", "var2", "name", *SUMMARY_COLUMNS]
    assert set(varcorr["name"]) == {
        "sd_Subject__Intercept",
        "sd_Subject__Days",
        "corr_Subject[Intercept,Days]",
        "sigma",
    }
    for table in (fixef, ranef, varcorr):
        assert table.attrs["ci_prob"] == DEFAULT_CI_PROB
        assert table.attrs["interval"] in {"wald", "condvar", "kass-steffey", "hdi", "none"}


def test_intervals_contain_the_estimate_and_widen_with_ci_prob(fit) -> None:
    for method in ("fixef_summary", "ranef_summary", "varcorr_summary"):
        widths = []
        for ci_prob in (0.5, 0.8, 0.95):
            table = getattr(fit, method)(ci_prob=ci_prob)
            assert table.attrs["ci_prob"] == ci_prob
            defined = table.dropna(subset=["lower", "upper"])
            inside = (defined["lower"] < defined["estimate"]) & (
                defined["estimate"] < defined["upper"]
            )
            assert inside.all(), (method, ci_prob)
            widths.append((defined["upper"] - defined["lower"]).to_numpy())
        for narrow, wide in itertools.pairwise(widths):
            assert np.all(wide > narrow), method


def test_mle_variance_components_have_no_invented_intervals() -> None:
    table = fitted("mle").varcorr_summary()
    assert table["lower"].isna().all() and table["upper"].isna().all()
    assert table.attrs["interval"] == "none" and "profile" in table.attrs["reason"]
    np.testing.assert_allclose(table["estimate"], fitted("mle").varcorr["sdcor"])


@pytest.mark.parametrize("ci_prob", [0.0, 1.0, -0.2, 1.5])
def test_ci_prob_outside_the_unit_interval_is_refused(fit, ci_prob: float) -> None:
    for method in ("fixef_summary", "ranef_summary", "varcorr_summary"):
        with pytest.raises(ValueError, match=r"ci_prob must be in \(0, 1\)"):
            getattr(fit, method)(ci_prob=ci_prob)


def test_mle_wald_interval_matches_lme4_standard_errors() -> None:
    reference = load_reference("sleepstudy_slope_reml")
    table = fitted("mle").fixef_summary()
    assert table.attrs["interval"] == "wald"
    for coef, row in table.iterrows():
        key = term_to_lme4(coef)
        estimate, se = reference["fixef"][key], reference["fixef_se"][key]
        assert row["se"] == pytest.approx(se, rel=1e-4)
        assert row["lower"] == pytest.approx(estimate - 1.959964 * se, rel=1e-5)
        assert row["upper"] == pytest.approx(estimate + 1.959964 * se, rel=1e-5)


def test_mle_ranef_intervals_are_the_conditional_variance_ones() -> None:
    fit = fitted("mle")
    table = fit.ranef_summary(ci_prob=0.9)
    frame = fit.ranef_frame()
    np.testing.assert_allclose(table["estimate"], frame["condval"])
    np.testing.assert_allclose(table["se"], frame["condsd"])
    np.testing.assert_allclose(table["upper"] - table["estimate"], 1.6448536 * frame["condsd"])


def test_eb_intervals_are_kass_steffey_and_wider_than_plug_in() -> None:
    table = fitted("eb").ranef_summary()
    assert table.attrs["interval"] == "kass-steffey"
    assert np.all(table["se"] > table["se_plugin"])
    assert np.all(table["upper"] - table["lower"] > table["upper_plugin"] - table["lower_plugin"])


def test_eb_interval_keyword_warns_and_agrees() -> None:
    eb = fitted("eb")
    with pytest.warns(DeprecationWarning, match="ci_prob"):
        old = eb.ranef_summary(interval=0.8)
    pd.testing.assert_frame_equal(old, eb.ranef_summary(ci_prob=0.8))
    with pytest.raises(TypeError, match="ci_prob"):
        eb.ranef_summary(ci_prob=0.8, interval=0.8)


def test_mle_allow_new_levels_warns_and_agrees() -> None:
    fit = fitted("mle")
    new = pd.DataFrame({"Days": [0.0, 5.0], "Subject": ["999", "308"]})
    with pytest.warns(DeprecationWarning, match="new_levels"):
        old = fit.predict(new, allow_new_levels=True)
    pd.testing.assert_series_equal(old, fit.predict(new, new_levels="population"))
    with (
        pytest.warns(DeprecationWarning, match="new_levels"),
        pytest.raises(ValueError, match="999"),
    ):
        fit.predict(new, allow_new_levels=False)
    with pytest.raises(ValueError, match="999"):
        fit.predict(new, new_levels="error")
    with pytest.raises(TypeError, match="new_levels"):
        fit.predict(new, new_levels="error", allow_new_levels=True)


def test_bayes_kind_warns_and_agrees() -> None:
    fit = fitted("bayes")
    rows = hm.datasets.load("sleepstudy").iloc[:5]
    for kind, scale in (("mean", "response"), ("link", "link")):
        with pytest.warns(DeprecationWarning, match="scale"):
            old = fit.predict(rows, kind=kind)
        pd.testing.assert_series_equal(old, fit.predict(rows, scale=scale))
    with pytest.raises(TypeError, match="scale"):
        fit.predict(rows, scale="link", kind="link")


def test_hdi_prob_constant_warns() -> None:
    import hiermodels.bayes.results as results

    with pytest.warns(DeprecationWarning, match="ci_prob"):
        assert results.HDI_PROB == 0.94


def test_predictions_share_the_signature_and_agree() -> None:
    mle, bayes = fitted("mle"), fitted("bayes")
    rows = pd.DataFrame({"Days": [0.0, 9.0, 3.0], "Subject": ["308", "372", "new"]})
    ours, theirs = mle.predict(rows), bayes.predict(rows)
    assert isinstance(theirs, pd.Series)
    pd.testing.assert_index_equal(ours.index, theirs.index)
    # the unseen subject gets the population value in both
    assert ours.iloc[2] == pytest.approx(mle.fixef["Intercept"] + 3.0 * mle.fixef["Days"])
    np.testing.assert_allclose(theirs, ours, rtol=0.03)
    draws = bayes.predict(rows, draws=True)
    assert draws.dims == ("chain", "draw", "obs")
    np.testing.assert_allclose(draws.mean(("chain", "draw")).values, theirs.to_numpy())
    fitted_rows = bayes.predict()
    assert len(fitted_rows) == mle.nobs
    np.testing.assert_allclose(fitted_rows, mle.fitted(), rtol=0.03)


@pytest.mark.parametrize(
    ("method", "engine"),
    [("fit_bayes", "hiermodels.bayes.sample:fit_bayes"), ("fit_eb", "hiermodels.eb.fit:fit_eb")],
)
def test_model_methods_spell_out_the_engines_keywords(method: str, engine: str) -> None:
    module, name = engine.split(":")
    function = getattr(importlib.import_module(module), name)
    ours = inspect.signature(getattr(hm.Model, method)).parameters
    theirs = inspect.signature(function).parameters
    assert list(ours)[1:] == list(theirs)[1:]  # self and design aside
    for key in list(theirs)[1:]:
        assert ours[key].default == theirs[key].default, key
        assert ours[key].kind is inspect.Parameter.KEYWORD_ONLY, key


def test_fit_mle_refuses_the_options_of_the_other_kind_of_model() -> None:
    with pytest.raises(TypeError, match="n_agq"):
        model().fit_mle(n_agq=1)
    cbpp = hm.datasets.load("cbpp")
    glmm = hm.Model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial"
    )
    with pytest.raises(TypeError, match="theta"):
        glmm.fit_mle(theta=np.ones(1))
