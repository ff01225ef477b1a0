"""MixedFit's accessors, summary, anova, predictions and warnings."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.mle.fit import SingularFitWarning
from tests.bayes import simulate
from tests.reference.lme4_names import load_reference


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return hm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def slope_fit(sleep: pd.DataFrame) -> hm.MixedFit:
    return hm.Model("Reaction ~ Days + (Days | Subject)", sleep).fit_mle()


def test_anova_reproduces_lme4_likelihood_ratio_test(sleep: pd.DataFrame) -> None:
    small = hm.Model("Reaction ~ Days + (1 | Subject)", sleep).fit_mle("ML")
    large = hm.Model("Reaction ~ Days + (Days | Subject)", sleep).fit_mle("ML")
    table = hm.anova(large, small)
    ref_small = load_reference("sleepstudy_intercept_ml")
    ref_large = load_reference("sleepstudy_slope_ml")
    lrt = ref_small["lrt_vs_sleepstudy_slope_ml"]
    assert list(table["npar"]) == [ref_small["df"], ref_large["df"]]
    assert table["AIC"].tolist() == pytest.approx([ref_small["AIC"], ref_large["AIC"]], abs=1e-3)
    assert table["BIC"].tolist() == pytest.approx([ref_small["BIC"], ref_large["BIC"]], abs=1e-3)
    assert table["logLik"].tolist() == pytest.approx(
        [ref_small["logLik"], ref_large["logLik"]], abs=1e-3
    )
    assert table["Chisq"].iloc[1] == pytest.approx(lrt["chisq"], abs=1e-3)
    assert table["Df"].iloc[1] == lrt["df"]
    assert table["Pr(>Chisq)"].iloc[1] == pytest.approx(lrt["p"], rel=1e-3)
    assert "42.139" in str(table)


def test_anova_refits_reml_fits_by_ml(sleep: pd.DataFrame, slope_fit: hm.MixedFit) -> None:
    small = hm.Model("Reaction ~ Days + (1 | Subject)", sleep).fit_mle("REML")
    with pytest.warns(UserWarning, match="refitting model"):
        table = hm.anova(small, slope_fit)
    lrt = load_reference("sleepstudy_intercept_ml")["lrt_vs_sleepstudy_slope_ml"]
    assert table["Chisq"].iloc[1] == pytest.approx(lrt["chisq"], abs=1e-3)


def test_anova_needs_two_fits_on_the_same_rows(sleep: pd.DataFrame, slope_fit: hm.MixedFit) -> None:
    with pytest.raises(ValueError, match="at least two"):
        hm.anova(slope_fit)
    fewer = hm.Model("Reaction ~ Days + (1 | Subject)", sleep.iloc[:100]).fit_mle("ML")
    with pytest.raises(ValueError, match="different numbers of observations"):
        hm.anova(fewer, slope_fit)


def test_summary_shows_lme4_tables(slope_fit: hm.MixedFit) -> None:
    text = str(slope_fit.summary())
    assert text.startswith("Linear mixed model fit by REML")
    assert "REML criterion at convergence: 1743.6283" in text
    assert "Number of obs: 180, groups:  Subject, 18" in text
    summary = slope_fit.summary()
    assert summary.fixed.loc["Days", "t value"] == pytest.approx(10.467286 / 1.545790, rel=1e-4)
    assert list(summary.random["Groups"]) == ["Subject", "", "Residual"]
    assert summary.random.loc[1, "Corr"] == "0.07"


def test_singular_fit_warns_and_is_flagged() -> None:
    dye2 = hm.datasets.load("dyestuff2")
    with pytest.warns(SingularFitWarning, match="boundary"):
        fit = hm.Model("Yield ~ 1 + (1 | Batch)", dye2).fit_mle()
    assert fit.singular
    assert "boundary (singular) fit" in str(fit.summary())
    assert np.all(fit.ranef["Batch"].to_numpy() == pytest.approx(0.0, abs=1e-6))


def test_nonsingular_fit_does_not_warn(sleep: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = hm.Model("Reaction ~ Days + (Days | Subject)", sleep).fit_mle()
    assert not fit.singular
    assert fit.opt.converged
    # the moment start of a balanced one-factor model is its REML estimate already
    assert fit.opt.final_objective <= fit.opt.initial_objective


def test_fit_is_immutable(slope_fit: hm.MixedFit) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        slope_fit.sigma = 1.0  # type: ignore[misc]


def test_ranef_tables_agree(slope_fit: hm.MixedFit) -> None:
    wide = slope_fit.ranef["Subject"]
    long = slope_fit.ranef_frame()
    assert wide.shape == (18, 2)
    days = long[long["term"] == "Days"].set_index("grp")["condval"]
    np.testing.assert_allclose(wide["Days"].to_numpy(), days.loc[wide.index].to_numpy())
    assert list(long.columns) == ["grpvar", "term", "grp", "condval", "condsd"]


def test_to_xarray_uses_project_names(slope_fit: hm.MixedFit) -> None:
    ds = slope_fit.to_xarray()
    assert set(ds.data_vars) >= {
        "beta",
        "sigma",
        "sd_Subject__Intercept",
        "sd_Subject__Days",
        "corr_Subject",
        "u_Subject",
        "u_Subject_sd",
    }
    assert ds["u_Subject"].dims == ("Subject", "Subject__term")
    assert list(ds["coef"].values) == ["Intercept", "Days"]
    assert float(
        ds["corr_Subject"].sel(Subject__term="Intercept", Subject__term_bis="Days")
    ) == pytest.approx(0.0656, abs=1e-3)


def test_fitted_and_residuals_add_up(sleep: pd.DataFrame, slope_fit: hm.MixedFit) -> None:
    total = slope_fit.fitted() + slope_fit.residuals()
    np.testing.assert_allclose(total.to_numpy(), sleep["Reaction"].to_numpy())


def test_predict_on_fitted_rows_equals_fitted(sleep: pd.DataFrame, slope_fit: hm.MixedFit) -> None:
    np.testing.assert_allclose(
        slope_fit.predict(sleep).to_numpy(), slope_fit.fitted().to_numpy(), rtol=1e-12
    )


def test_predict_new_levels(sleep: pd.DataFrame, slope_fit: hm.MixedFit) -> None:
    new = pd.DataFrame({"Days": [0.0, 5.0], "Subject": ["999", "308"]})
    with pytest.raises(ValueError, match="999"):
        slope_fit.predict(new, new_levels="error")
    pred = slope_fit.predict(new)
    beta = slope_fit.fixef
    assert pred.iloc[0] == pytest.approx(beta["Intercept"])
    u = slope_fit.ranef["Subject"].loc["308"]
    assert pred.iloc[1] == pytest.approx(
        beta["Intercept"] + u["Intercept"] + 5 * (beta["Days"] + u["Days"])
    )
    population = slope_fit.predict(new, include_random=False)
    assert population.iloc[1] == pytest.approx(beta["Intercept"] + 5 * beta["Days"])


def test_predict_keeps_the_encoding_of_a_categorical_random_slope() -> None:
    """New rows holding one category get the fitted columns, not a re-derived encoding."""
    frame = simulate.categorical_slope_frame()
    fit = hm.Model("y ~ c + (c | g)", frame).fit_mle()
    fitted = fit.fitted().to_numpy()
    for category in ("a", "b", "c"):
        rows = frame.index[frame["c"] == category]
        np.testing.assert_allclose(
            fit.predict(frame.loc[rows]).to_numpy(), fitted[rows], rtol=1e-12
        )
    with pytest.raises(hm.errors.DesignError, match="does not match the design's data"):
        fit.predict(frame.iloc[:2].assign(c="z"))


def test_unknown_method_is_a_clear_error(sleep: pd.DataFrame) -> None:
    model = hm.Model("Reaction ~ Days + (1 | Subject)", sleep)
    with pytest.raises(ValueError, match="method must be one of"):
        model.fit_mle("bayes")
    with pytest.raises(ValueError, match="exact: use method='REML' or 'ML'"):
        model.fit_mle("Laplace")


def test_model_without_random_effects_is_refused(sleep: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="no random-effect terms"):
        hm.Model("Reaction ~ Days", sleep).fit_mle()


def test_layout_is_built_once_per_design_and_not_kept_alive(sleep: pd.DataFrame) -> None:
    import gc
    import weakref

    from hiermodels.mle.blocked import ReLayout

    design = hm.Model("Reaction ~ Days + (Days | Subject)", sleep).design
    layout = ReLayout.of(design)
    assert ReLayout.of(design) is layout
    other = hm.Model("Reaction ~ Days + (1 | Subject)", sleep).design
    assert ReLayout.of(other) is not layout
    assert ReLayout.of(other).theta.sizes != layout.theta.sizes
    gone = weakref.ref(design)
    del design
    gc.collect()
    assert gone() is None


def test_factor_blocks_index_each_factors_blocks_in_theta_order() -> None:
    from hiermodels.mle.blocked import ReLayout

    rng = np.random.default_rng(5)
    data = pd.DataFrame(
        {
            "y": rng.normal(size=120),
            "x": rng.normal(size=120),
            "a": np.repeat([f"a{i}" for i in range(4)], 30),
            "b": np.tile([f"b{i}" for i in range(12)], 10),
        }
    )
    design = hm.Model("y ~ x + (1 | a) + (1 | b) + (0 + x | a)", data).design
    layout = ReLayout.of(design)
    assert [b.group for b in layout.blocks] == ["b", "a", "a"]
    assert layout.factor_blocks == {"b": (0,), "a": (1, 2)}
