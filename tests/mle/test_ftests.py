"""Type-III F tests and contrasts against lmerTest 3.1-3 (tests/reference/lmerTest).

lmerTest's ``anova(fit, type = "III")`` and ``contest`` with Satterthwaite and
Kenward-Roger df: F, df, sums of squares within 1e-4 relative, p-values 1e-6.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiermodels.mle.ftests import type3_hypotheses
from tests.reference.small_sample import LMERTEST_FITS, REML_FITS, fitted, load

ANOVA_CASES = [
    (name, ddf)
    for name in LMERTEST_FITS
    for ddf in ("satterthwaite", "kenward-roger")
    if f"anova_{ddf.replace('-', '_')}" in load("lmerTest", name)
]
CONTRAST_CASES = [
    (name, i, ddf)
    for name in LMERTEST_FITS
    for i, case in enumerate(load("lmerTest", name)["contrasts"])
    for ddf in ("satterthwaite", "kenward-roger")
    if ddf.replace("-", "_") in case
]


def _vector(value: object) -> np.ndarray:
    return np.atleast_1d(np.asarray(value, dtype=float))


@pytest.mark.parametrize(("name", "ddf"), ANOVA_CASES)
def test_type3_anova_matches_lmertest(name: str, ddf: str) -> None:
    expected = load("lmerTest", name)[f"anova_{ddf.replace('-', '_')}"]
    table = fitted(name).type3_anova(ddf)  # type: ignore[arg-type]
    lme4_terms = [t.replace("C(week)", "factor(week)") for t in table.index]
    assert lme4_terms == list(np.atleast_1d(expected["rows"]))
    for ours, theirs in [
        ("sum_sq", "Sum Sq"),
        ("mean_sq", "Mean Sq"),
        ("num_df", "NumDF"),
        ("den_df", "DenDF"),
        ("statistic", "F value"),
    ]:
        np.testing.assert_allclose(table[ours], _vector(expected[theirs]), rtol=1e-4, err_msg=ours)
    np.testing.assert_allclose(table["p_value"], _vector(expected["Pr(>F)"]), rtol=0, atol=1e-6)


@pytest.mark.parametrize(("name", "index", "ddf"), CONTRAST_CASES)
def test_contrast_matches_lmertest_contest(name: str, index: int, ddf: str) -> None:
    case = load("lmerTest", name)["contrasts"][index]
    L = np.atleast_2d(np.asarray(case["L"], dtype=float))
    expected = case[ddf.replace("-", "_")]
    table = fitted(name).contrast(L, ddf)  # type: ignore[arg-type]
    assert len(table) == 1
    if L.shape[0] == 1:
        assert table.attrs["test"] == "t"
        pairs = [("estimate", "Estimate"), ("se", "Std. Error"), ("df", "df")]
        p_name = "Pr(>|t|)"
    else:
        assert table.attrs["test"] == "F"
        pairs = [
            ("sum_sq", "Sum Sq"),
            ("num_df", "NumDF"),
            ("den_df", "DenDF"),
            ("statistic", "F value"),
        ]
        p_name = "Pr(>F)"
    for ours, theirs in pairs:
        assert table[ours].iloc[0] == pytest.approx(expected[theirs], rel=1e-4), ours
    assert table["p_value"].iloc[0] == pytest.approx(expected[p_name], abs=1e-6)


def test_one_df_term_f_is_the_squared_t() -> None:
    fit = fitted("radon_floor_uranium_reml")
    anova = fit.type3_anova("satterthwaite")
    t = fit.fixef_table("satterthwaite")
    np.testing.assert_allclose(anova["statistic"], t["statistic"].iloc[1:] ** 2, rtol=1e-10)
    np.testing.assert_allclose(anova["den_df"], t["df"].iloc[1:], rtol=1e-10)


def test_contrast_aligns_named_weights_and_rhs() -> None:
    fit = fitted("sleepstudy_slope_reml")
    named = fit.contrast(pd.Series({"Days": 1.0}), rhs=10.0)
    plain = fit.contrast([0.0, 1.0], rhs=10.0)
    pd.testing.assert_frame_equal(named, plain)
    assert plain["statistic"].iloc[0] == pytest.approx(
        (fit.beta[1] - 10.0) / fit.fixef_se.iloc[1], rel=1e-6
    )
    with pytest.raises(ValueError, match="not fixed effects"):
        fit.contrast(pd.Series({"Hours": 1.0}))
    with pytest.raises(ValueError, match="one weight per fixed effect"):
        fit.contrast([1.0, 0.0, 0.0])


def test_rank_deficient_f_test_counts_the_rank() -> None:
    fit = fitted("tlc_factorial_reml")
    L = np.zeros((3, fit.beta.size))
    L[0, 1] = L[1, 2] = 1.0
    L[2, 1] = L[2, 2] = 1.0  # the sum of the first two rows
    for ddf in ("satterthwaite", "kenward-roger"):
        table = fit.contrast(L, ddf)  # type: ignore[arg-type]
        reduced = fit.contrast(L[:2], ddf)  # type: ignore[arg-type]
        assert table["num_df"].iloc[0] == 2
        assert table["statistic"].iloc[0] == pytest.approx(reduced["statistic"].iloc[0], rel=1e-8)


def test_type3_needs_a_hierarchical_formula() -> None:
    import hiermodels as hm

    tlc = hm.datasets.load("tlc")
    fit = hm.Model("lead ~ treatment + treatment:C(week) + (1 | id)", tlc).fit_mle()
    with pytest.raises(ValueError, match="marginal terms"):
        type3_hypotheses(fit.design)


@pytest.mark.parametrize("name", [n for n in REML_FITS if "krmodcomp" in load("pbkrtest", n)])
def test_kenward_roger_f_matches_krmodcomp(name: str) -> None:
    expected = load("pbkrtest", name)["krmodcomp"]
    L = np.atleast_2d(np.asarray(expected["L"], dtype=float))
    table = fitted(name).contrast(L, "kenward-roger")
    assert table["num_df"].iloc[0] == expected["ndf"]
    assert table["den_df"].iloc[0] == pytest.approx(expected["ddf"], rel=1e-3)
    assert table["statistic"].iloc[0] == pytest.approx(expected["stat"], rel=1e-4)
    assert table["p_value"].iloc[0] == pytest.approx(expected["p_value"], abs=1e-6)
