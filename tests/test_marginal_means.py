"""Estimated marginal means against emmeans 1.8.4-1 on lmerTest fits, and from a posterior.

References: tests/reference/emmeans (script and provenance there): means and
SEs within 1e-4, df within 1e-3, for Satterthwaite and Kenward-Roger df, on
TLC with ``treatment * factor(week)`` (balanced and unbalanced) and with
``treatment * week`` (a covariate held at its mean).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.marginal import reference_grid
from tests.reference.small_sample import fitted, load

EMMEANS_FITS = ["tlc_factorial_reml", "tlc_unbalanced_factorial_reml", "tlc_unbalanced_slope_reml"]
CASES = [
    (name, index) for name in EMMEANS_FITS for index in range(len(load("emmeans", name)["tables"]))
]


def _vector(value: object) -> np.ndarray:
    return np.atleast_1d(np.asarray(value))


def _lme4_level(level: object, factor: str) -> str:
    return f"{factor}{level}" if factor == "week" else str(level)


@pytest.mark.parametrize(("name", "index"), CASES)
def test_means_and_pairs_match_emmeans(name: str, index: int) -> None:
    case = load("emmeans", name)["tables"][index]
    emm = hm.marginal_means(
        fitted(name), case["factor_hm"], by=case["by_hm"], ddf=case["ddf"], ci_prob=0.95
    )
    means, expected = emm.table, case["means"]
    factor = case["factor_hm"]
    ours_levels = [str(v) for v in means.index.get_level_values(factor)]
    assert ours_levels == [str(v) for v in _vector(expected[case["specs"]])]
    np.testing.assert_allclose(means["estimate"], _vector(expected["emmean"]), rtol=1e-4)
    np.testing.assert_allclose(means["se"], _vector(expected["SE"]), rtol=1e-4)
    np.testing.assert_allclose(means["df"], _vector(expected["df"]), rtol=1e-3)
    np.testing.assert_allclose(means["lower"], _vector(expected["lower.CL"]), rtol=1e-4)
    np.testing.assert_allclose(means["upper"], _vector(expected["upper.CL"]), rtol=1e-4)

    pairs, expected = emm.pairs(), case["pairs"]
    labels = [
        " - ".join(_lme4_level(level, factor) for level in label.split(" - "))
        for label in pairs.index.get_level_values("contrast")
    ]
    assert labels == list(_vector(expected["contrast"]))
    np.testing.assert_allclose(pairs["estimate"], _vector(expected["estimate"]), rtol=1e-4)
    np.testing.assert_allclose(pairs["se"], _vector(expected["SE"]), rtol=1e-4)
    np.testing.assert_allclose(pairs["df"], _vector(expected["df"]), rtol=1e-3)
    np.testing.assert_allclose(pairs["statistic"], _vector(expected["t.ratio"]), rtol=1e-4)
    np.testing.assert_allclose(pairs["p_value"], _vector(expected["p.value"]), rtol=0, atol=1e-6)


def _treatment_weights(names: list[str], succimer: float) -> np.ndarray:
    """``L`` of a treatment's mean over the four weeks, written out from the coding."""
    weights = {
        "Intercept": 1.0,
        "treatment[T.succimer]": succimer,
        "C(week)[T.1]": 0.25,
        "C(week)[T.4]": 0.25,
        "C(week)[T.6]": 0.25,
        "treatment[T.succimer]:C(week)[T.1]": 0.25 * succimer,
        "treatment[T.succimer]:C(week)[T.4]": 0.25 * succimer,
        "treatment[T.succimer]:C(week)[T.6]": 0.25 * succimer,
    }
    assert sorted(weights) == sorted(names)
    return np.array([weights[name] for name in names])


def test_weights_average_the_other_factor_equally() -> None:
    fit = fitted("tlc_unbalanced_factorial_reml")
    names = list(fit.design.fixed_names)
    emm = hm.marginal_means(fit, "treatment")
    expected = np.vstack([_treatment_weights(names, 0.0), _treatment_weights(names, 1.0)])
    np.testing.assert_allclose(emm.weights.to_numpy(), expected, atol=1e-12)


def test_covariates_sit_at_their_mean_unless_given() -> None:
    fit = fitted("tlc_unbalanced_slope_reml")
    grid = reference_grid(fit.design)
    week = fit.design.X[:, list(fit.design.fixed_names).index("week")]
    assert grid["week"].unique() == pytest.approx([week.mean()])
    at_zero = hm.marginal_means(fit, "treatment", at={"week": 0.0}).table
    intercept_only = fit.fixef_table().loc["Intercept"]
    assert at_zero["estimate"].iloc[0] == pytest.approx(intercept_only["estimate"], rel=1e-12)
    assert at_zero["se"].iloc[0] == pytest.approx(intercept_only["se"], rel=1e-12)


def test_bad_requests_name_the_problem() -> None:
    fit = fitted("tlc_factorial_reml")
    with pytest.raises(ValueError, match="not a factor of the fixed part"):
        hm.marginal_means(fit, "lead")
    with pytest.raises(ValueError, match="both"):
        hm.marginal_means(fit, "treatment", by="treatment")
    with pytest.raises(ValueError, match="not among"):
        hm.marginal_means(fit, "treatment", at={"week": [0, 2]})
    with pytest.raises(ValueError, match="not columns of the fixed part"):
        hm.marginal_means(fit, "treatment", at={"weeks": 1.0})
    tlc = hm.datasets.load("tlc")
    logged = hm.Model("lead ~ treatment + np.log1p(week) + (1 | id)", tlc).fit_mle()
    with pytest.raises(ValueError, match="at="):
        hm.marginal_means(logged, "treatment")
    with pytest.warns(UserWarning, match="rank deficient"):
        collinear = hm.Model("lead ~ treatment + C(week) + week + (1 | id)", tlc).fit_mle()
    with pytest.raises(ValueError, match="not estimable"):
        hm.marginal_means(collinear, "treatment")
    with pytest.raises(ValueError, match="full-rank"):
        collinear.type3_anova()


@pytest.fixture(scope="module")
def bayes_fit() -> hm.BayesFit:
    tlc = hm.datasets.load("tlc")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hm.Model("lead ~ treatment * C(week) + (1 | id)", tlc).fit_bayes(
            draws=300, tune=300, chains=2, random_seed=3, progressbar=False
        )


def test_posterior_means_are_the_draws_of_l_beta(bayes_fit: hm.BayesFit) -> None:
    names = list(bayes_fit.design.fixed_names)
    emm = hm.marginal_means(bayes_fit, "treatment", ci_prob=0.9)
    table = emm.table
    assert list(table.columns) == ["estimate", "se", "lower", "upper"]
    assert table.attrs["ci_prob"] == 0.9 and table.attrs["ddf"] is None
    beta = bayes_fit.posterior["beta"].sel(coef=names).stack(sample=("chain", "draw"))
    beta = beta.transpose("sample", "coef").to_numpy()
    for row, succimer in enumerate((0.0, 1.0)):
        draws = beta @ _treatment_weights(names, succimer)
        assert table["estimate"].iloc[row] == pytest.approx(draws.mean(), rel=1e-10)
        assert table["se"].iloc[row] == pytest.approx(draws.std(ddof=1), rel=1e-2)
        inside = np.mean((draws >= table["lower"].iloc[row]) & (draws <= table["upper"].iloc[row]))
        assert inside == pytest.approx(0.9, abs=0.01)
    difference = beta @ (_treatment_weights(names, 0.0) - _treatment_weights(names, 1.0))
    pairs = emm.pairs()
    assert list(pairs.index) == ["placebo - succimer"]
    assert pairs["estimate"].iloc[0] == pytest.approx(difference.mean(), rel=1e-10)


def test_posterior_and_mle_tables_share_their_layout(bayes_fit: hm.BayesFit) -> None:
    mle = hm.marginal_means(fitted("tlc_factorial_reml"), "week", by="treatment").table
    bayes = hm.marginal_means(bayes_fit, "week", by="treatment").table
    assert list(bayes.columns) == list(mle.columns)[:4]
    pd.testing.assert_index_equal(bayes.index, mle.index)
    with pytest.raises(ValueError, match="posterior has no df"):
        hm.marginal_means(bayes_fit, "week", ddf="satterthwaite")
    # a flat-enough posterior sits near the REML estimates
    np.testing.assert_allclose(bayes["estimate"], mle["estimate"], atol=4 * mle["se"].max())


@pytest.mark.parametrize(("name", "index"), CASES)
@pytest.mark.parametrize("adjust", ["tukey", "bonferroni"])
def test_adjusted_pairs_match_emmeans(name: str, index: int, adjust: str) -> None:
    case = load("emmeans", name)["tables"][index]
    emm = hm.marginal_means(
        fitted(name), case["factor_hm"], by=case["by_hm"], ddf=case["ddf"], ci_prob=0.95
    )
    pairs = emm.pairs(adjust=adjust)  # type: ignore[arg-type]
    tests, intervals = case[f"pairs_{adjust}"], case[f"pairs_{adjust}_ci"]
    np.testing.assert_allclose(pairs["estimate"], _vector(tests["estimate"]), rtol=1e-4)
    np.testing.assert_allclose(pairs["p_value"], _vector(tests["p.value"]), rtol=0, atol=1e-6)
    np.testing.assert_allclose(pairs["lower"], _vector(intervals["lower.CL"]), rtol=1e-4)
    np.testing.assert_allclose(pairs["upper"], _vector(intervals["upper.CL"]), rtol=1e-4)
    assert pairs.attrs["adjust"] == adjust
    unadjusted = emm.pairs()
    assert np.all(pairs["p_value"].to_numpy() >= unadjusted["p_value"].to_numpy() - 1e-15)


def test_adjustments_are_for_mle_tests_only() -> None:
    emm = hm.marginal_means(fitted("tlc_factorial_reml"), "week")
    with pytest.raises(ValueError, match="adjust must be one of"):
        emm.pairs(adjust="holm")  # type: ignore[arg-type]
