"""The parametric bootstrap and ``MixedFit.confint``.

Profile intervals are checked against lme4's ``confint(method = "profile")``
(tests/reference/lme4/sleepstudy_slope_reml_profile.json, made by
make_profile_reference.R there); Wald intervals against the fit's own
standard errors; the bootstrap intervals against their definitions on the
replicates, and, in the slow tier, for their coverage.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hiermodels as hm
import hiermodels.mle.fit as mle_fit
from hiermodels.errors import ConvergenceWarning
from hiermodels.mle.bootstrap import BootstrapResult
from hiermodels.mle.results import MixedFit

REFERENCE = Path(__file__).parents[1] / "reference" / "lme4"
PROFILE = json.loads((REFERENCE / "sleepstudy_slope_reml_profile.json").read_text())

#: lme4's row names of ``confint`` and hiermodels' for the same parameters.
LME4_NAMES = {
    "sd_(Intercept)|Subject": "sd_Subject__Intercept",
    "cor_Days.(Intercept)|Subject": "corr_Subject[Intercept,Days]",
    "sd_Days|Subject": "sd_Subject__Days",
    "sigma": "sigma",
    "(Intercept)": "Intercept",
    "Days": "Days",
}


@pytest.fixture(scope="module")
def sleep_fit() -> MixedFit:
    return hm.Model("Reaction ~ Days + (Days | Subject)", hm.datasets.load("sleepstudy")).fit_mle()


@pytest.fixture(scope="module")
def sleep_boot(sleep_fit: MixedFit) -> BootstrapResult:
    return sleep_fit.bootstrap(200, random_seed=1, progressbar=False)


def test_profile_intervals_match_lme4(sleep_fit: MixedFit) -> None:
    table = sleep_fit.confint("profile")
    for k, lme4_name in enumerate(PROFILE["parameters"]):
        name = LME4_NAMES[lme4_name]
        assert table.loc[name, "lower"] == pytest.approx(PROFILE["lower"][k], rel=1e-3)
        assert table.loc[name, "upper"] == pytest.approx(PROFILE["upper"][k], rel=1e-3)
    assert list(table.index) == [
        "sd_Subject__Intercept",
        "sd_Subject__Days",
        "corr_Subject[Intercept,Days]",
        "sigma",
        "Intercept",
        "Days",
    ]
    assert table.attrs == {"interval": "profile", "ci_prob": 0.95}


def test_profile_interval_narrows_with_its_probability(sleep_fit: MixedFit) -> None:
    wide, narrow = sleep_fit.confint("profile", 0.95), sleep_fit.confint("profile", 0.5)
    assert np.all(narrow["lower"] > wide["lower"])
    assert np.all(narrow["upper"] < wide["upper"])
    assert np.all(narrow["lower"] < narrow["estimate"])


def test_profile_lower_sd_limit_is_zero_when_the_profile_stays_low() -> None:
    dyestuff2 = hm.datasets.load("dyestuff2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hm.Model("Yield ~ 1 + (1 | Batch)", dyestuff2).fit_mle()
    table = fit.confint("profile")
    assert table.loc["sd_Batch__Intercept", "lower"] == 0.0
    assert table.loc["sd_Batch__Intercept", "upper"] > 0.0


def test_wald_intervals_are_the_fixed_effects_and_nan_elsewhere(sleep_fit: MixedFit) -> None:
    table = sleep_fit.confint("wald", 0.9)
    summary = sleep_fit.fixef_summary(0.9)
    np.testing.assert_allclose(table.loc[summary.index, "lower"], summary["lower"])
    np.testing.assert_allclose(table.loc[summary.index, "upper"], summary["upper"])
    variance_rows = table.index.difference(summary.index)
    assert table.loc[variance_rows, ["lower", "upper"]].isna().all().all()
    np.testing.assert_allclose(
        table.loc[["sd_Subject__Intercept", "sigma"], "estimate"],
        sleep_fit.varcorr_summary()
        .set_index("name")
        .loc[["sd_Subject__Intercept", "sigma"], "estimate"],
    )


def test_replicates_carry_the_project_names(sleep_boot: BootstrapResult) -> None:
    reps = sleep_boot.replicates
    assert set(reps.data_vars) == {
        "beta",
        "sigma",
        "sd_Subject__Intercept",
        "sd_Subject__Days",
        "corr_Subject",
    }
    assert reps["beta"].dims == ("replicate", "coef")
    assert reps["corr_Subject"].dims == ("replicate", "Subject__term", "Subject__term_bis")
    assert reps.sizes["replicate"] == 200 - sleep_boot.n_failed
    np.testing.assert_allclose(
        reps["corr_Subject"].sel(Subject__term="Intercept", Subject__term_bis="Days"),
        sleep_boot.draws["corr_Subject[Intercept,Days]"],
    )
    np.testing.assert_allclose(reps["beta"].sel(coef="Days"), sleep_boot.draws["Days"])


def test_bootstrap_intervals_follow_their_definitions(sleep_boot: BootstrapResult) -> None:
    draws, estimate = sleep_boot.draws, sleep_boot.estimates
    percentile = sleep_boot.confint("percentile", 0.9)
    np.testing.assert_allclose(percentile["lower"], draws.quantile(0.05))
    np.testing.assert_allclose(percentile["upper"], draws.quantile(0.95))
    basic = sleep_boot.confint("basic", 0.9)
    np.testing.assert_allclose(basic["lower"], 2 * estimate - draws.quantile(0.95))
    np.testing.assert_allclose(basic["upper"], 2 * estimate - draws.quantile(0.05))
    normal = sleep_boot.confint("normal", 0.9)
    half = stats.norm.ppf(0.95) * draws.std(ddof=1)
    np.testing.assert_allclose(normal["lower"], 2 * estimate - draws.mean() - half)
    np.testing.assert_allclose(normal["upper"], 2 * estimate - draws.mean() + half)
    assert percentile.attrs["interval"] == "bootstrap-percentile"
    with pytest.raises(ValueError, match="method"):
        sleep_boot.confint("bca")  # type: ignore[arg-type]


def test_bootstrap_replicates_scatter_around_the_estimates(
    sleep_fit: MixedFit, sleep_boot: BootstrapResult
) -> None:
    # the fixed effects' bootstrap SDs are their standard errors, to Monte Carlo error
    spread = sleep_boot.draws[["Intercept", "Days"]].std(ddof=1)
    se = sleep_fit.fixef_se
    # the SD of 200 normal draws is within 25% of the truth with probability > 0.9999
    np.testing.assert_allclose(spread.to_numpy(), se.to_numpy(), rtol=0.25)
    table = sleep_boot.confint()
    assert np.all(table["lower"] < table["estimate"])
    assert np.all(table["estimate"] < table["upper"])


def test_same_seed_same_replicates_in_one_or_two_processes(sleep_fit: MixedFit) -> None:
    one = sleep_fit.bootstrap(12, random_seed=5, progressbar=False)
    two = sleep_fit.bootstrap(12, random_seed=5, n_jobs=2, progressbar=False)
    pd.testing.assert_frame_equal(one.draws, two.draws)
    other = sleep_fit.bootstrap(12, random_seed=6, progressbar=False)
    assert not np.allclose(one.draws.to_numpy(), other.draws.to_numpy())


def test_failed_refits_are_counted_excluded_and_reported(
    sleep_fit: MixedFit, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fit = mle_fit.fit_lmm
    calls = {"n": 0}

    def every_third_fails(*args: object, **kwargs: object) -> MixedFit:
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise np.linalg.LinAlgError("Matrix is not positive definite")
        return real_fit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(mle_fit, "fit_lmm", every_third_fails)
    with pytest.warns(ConvergenceWarning, match=r"3 of 9 bootstrap refits failed.*LinAlgError"):
        boot = sleep_fit.bootstrap(9, random_seed=2, progressbar=False)
    assert boot.n_failed == 3
    assert boot.draws.shape[0] == 6
    assert boot.replicates.attrs["n_failed"] == 3
    assert boot.confint().attrs["n_failed"] == 3


def test_every_refit_failing_leaves_no_interval(sleep_fit: MixedFit) -> None:
    with pytest.warns(ConvergenceWarning, match="4 of 4 bootstrap refits failed"):
        boot = sleep_fit.bootstrap(
            4, random_seed=2, progressbar=False, fit_options={"optimizer": "no-such-optimizer"}
        )
    with pytest.raises(ValueError, match="no bootstrap refit succeeded"):
        boot.confint()


def test_singular_refits_are_kept_and_counted() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hm.Model("Yield ~ 1 + (1 | Batch)", hm.datasets.load("dyestuff2")).fit_mle()
    boot = fit.bootstrap(40, random_seed=3, progressbar=False)
    zero_sd = int((boot.draws["sd_Batch__Intercept"] < 1e-6).sum())
    assert boot.n_singular == zero_sd > 0
    assert boot.draws.shape[0] == 40


def test_glmm_bootstrap_refits_by_laplace() -> None:
    cbpp = hm.datasets.load("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hm.Model(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial"
        ).fit_mle()
        boot = fit.bootstrap(30, random_seed=4, progressbar=False)
    assert "sigma" not in boot.replicates
    assert list(boot.estimates.index) == ["sd_herd__Intercept", *fit.design.fixed_names]
    table = fit.confint("bootstrap", nsim=30, random_seed=4)
    pd.testing.assert_frame_equal(table, boot.confint())
    with pytest.raises(ValueError, match="linear mixed models"):
        fit.confint("profile")


@pytest.mark.slow
def test_percentile_intervals_cover_at_their_nominal_rate() -> None:
    """90% percentile intervals of a random-intercept model over 400 data sets.

    30 groups of 10, ``y = 1 + 0.5 x + b + e`` with ``b ~ N(0, 0.8²)`` and
    ``e ~ N(0, 1)``. With 400 data sets the coverage's Monte Carlo SE is
    1.5 points, so the ±3-point band is two of them.
    """
    rng = np.random.default_rng(2026)
    groups, per_group, datasets = 30, 10, 400
    g = np.repeat(np.arange(groups), per_group)
    covered = {"x": 0, "sigma": 0}
    for _ in range(datasets):
        x = rng.normal(size=g.size)
        y = 1.0 + 0.5 * x + rng.normal(scale=0.8, size=groups)[g] + rng.normal(size=g.size)
        data = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = hm.Model("y ~ x + (1 | g)", data).fit_mle()
            table = fit.bootstrap(99, random_seed=rng, progressbar=False).confint("percentile", 0.9)
        for name, truth in (("x", 0.5), ("sigma", 1.0)):
            covered[name] += bool(table.loc[name, "lower"] <= truth <= table.loc[name, "upper"])
    for name, count in covered.items():
        assert abs(count / datasets - 0.9) <= 0.03, (name, count / datasets)


def test_gamma_bootstrap_replicates_carry_the_dispersion_as_sigma() -> None:
    sleep = hm.datasets.load("sleepstudy")
    fit = hm.Model("Reaction ~ Days + (1 | Subject)", sleep, family="gamma").fit_mle()
    assert fit.phi is not None
    boot = fit.bootstrap(40, random_seed=2, progressbar=False)
    table = boot.confint("percentile", ci_prob=0.9)
    assert table.loc["sigma", "estimate"] == pytest.approx(np.sqrt(fit.phi))
    assert table.loc["sigma", "lower"] < np.sqrt(fit.phi) < table.loc["sigma", "upper"]
    assert "sigma" in boot.replicates
