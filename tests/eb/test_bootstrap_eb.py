"""Laird–Louis bootstrap EB intervals: ``fit_eb(interval="bootstrap")``.

The mixture's quantiles are checked against the mixture's CDF and against
the normal quantiles of a one-component mixture; its moments against the
laws of total expectation and variance; the conditionals at the original
estimates against the plug-in ones (a replicate equal to the fit gives the
plug-in conditional exactly).
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import hiermodels as hm
from hiermodels.eb.bootstrap import BootstrapConditionals, bootstrap_conditionals, mixture_quantiles
from hiermodels.eb.fit import EBFit, fit_eb


@pytest.fixture(scope="module")
def sleep_model() -> hm.Model:
    return hm.Model("Reaction ~ Days + (Days | Subject)", hm.datasets.load("sleepstudy"))


@pytest.fixture(scope="module")
def boot_eb(sleep_model: hm.Model) -> EBFit:
    return fit_eb(
        sleep_model.design, interval="bootstrap", nsim=100, random_seed=3, progressbar=False
    )


def test_mixture_quantiles_solve_the_mixture_cdf() -> None:
    rng = np.random.default_rng(0)
    means = rng.normal(size=(50, 4))
    sds = rng.uniform(0.2, 2.0, size=(50, 4))
    for prob in (0.025, 0.5, 0.975):
        q = mixture_quantiles(means, sds, prob)
        cdf = special.ndtr((q - means) / sds).mean(axis=0)
        np.testing.assert_allclose(cdf, prob, atol=1e-10)


def test_one_component_mixture_is_the_normal_interval() -> None:
    means, sds = np.array([[1.0, -2.0]]), np.array([[0.5, 3.0]])
    q = mixture_quantiles(means, sds, 0.975)
    np.testing.assert_allclose(q, means[0] + stats.norm.ppf(0.975) * sds[0], rtol=1e-10)


def test_point_masses_give_their_empirical_quantile() -> None:
    means = np.arange(1.0, 11.0)[:, None]
    q = mixture_quantiles(means, np.zeros_like(means), 0.35)
    # the 35% quantile of ten equal point masses at 1..10 is the 4th
    assert q[0] == pytest.approx(4.0, abs=1e-9)


def test_summary_has_the_mixture_moments() -> None:
    rng = np.random.default_rng(1)
    cond = BootstrapConditionals(
        means=rng.normal(size=(30, 5)), sds=rng.uniform(0.1, 1, size=(30, 5)), nsim=30, n_failed=0
    )
    mean, se, _, _ = cond.summary(0.9)
    np.testing.assert_allclose(mean, cond.means.mean(axis=0))
    np.testing.assert_allclose(se**2, (cond.sds**2 + cond.means**2).mean(axis=0) - mean**2)


def test_conditionals_at_the_estimates_are_the_plug_in_ones(
    sleep_model: hm.Model, boot_eb: EBFit
) -> None:
    mle = boot_eb.mle
    assert boot_eb.bootstrap is not None
    boot = mle.bootstrap(2, random_seed=1, progressbar=False)
    draws = boot.draws.copy()
    draws["sigma"] = mle.sigma
    at_estimates = replace(boot, draws=draws, theta=np.vstack([mle.theta, mle.theta]))
    cond = bootstrap_conditionals(mle, at_estimates)
    plain = boot_eb.ranef_summary()
    np.testing.assert_allclose(cond.means[0], plain["estimate"], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(cond.sds[1], plain["se_plugin"], rtol=1e-6)


def test_ranef_summary_shows_bootstrap_beside_plain_and_kass_steffey(boot_eb: EBFit) -> None:
    table = boot_eb.ranef_summary(0.9)
    assert boot_eb.bootstrap is not None
    _, se, lower, upper = boot_eb.bootstrap.summary(0.9)
    np.testing.assert_allclose(table["se_bootstrap"], se)
    np.testing.assert_allclose(table["lower_bootstrap"], lower)
    np.testing.assert_allclose(table["upper_bootstrap"], upper)
    assert np.all(table["lower_bootstrap"] < table["estimate"])
    assert np.all(table["estimate"] < table["upper_bootstrap"])
    assert boot_eb.bootstrap.means.shape == (100 - boot_eb.bootstrap.n_failed, len(table))


def test_comparison_table_names_the_bootstrap_columns(boot_eb: EBFit) -> None:
    from hiermodels.shrinkage import eb_summary

    table = eb_summary(boot_eb)
    assert {"eb_sd_bootstrap", "eb_low_bootstrap", "eb_high_bootstrap"} <= set(table.columns)
    np.testing.assert_allclose(
        table["eb_low_bootstrap"], boot_eb.ranef_summary()["lower_bootstrap"]
    )


def test_without_the_bootstrap_nothing_changes(sleep_model: hm.Model) -> None:
    eb = fit_eb(sleep_model.design)
    assert eb.bootstrap is None
    assert "lower_bootstrap" not in eb.ranef_summary().columns


def test_bootstrap_intervals_are_refused_where_undefined(sleep_model: hm.Model) -> None:
    with pytest.raises(ValueError, match="plugin='hyper'"):
        fit_eb(sleep_model.design, plugin="all", interval="bootstrap")
    with pytest.raises(ValueError, match="interval must be"):
        fit_eb(sleep_model.design, interval="wald")  # type: ignore[arg-type]
    cbpp = hm.datasets.load("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        design = hm.Model(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial"
        ).design
    with pytest.raises(ValueError, match="linear mixed models"):
        fit_eb(design, interval="bootstrap")


def test_report_digest_gives_the_bootstrap_width_ratio(boot_eb: EBFit) -> None:
    from hiermodels.report import shrinkage_digest
    from hiermodels.shrinkage import eb_summary

    table = eb_summary(boot_eb).assign(eb_shrinkage=0.5)
    digest = shrinkage_digest(table).set_index("term")
    days = table[table["term"] == "Days"]
    ratio = (days["eb_high_bootstrap"] - days["eb_low_bootstrap"]) / (
        days["eb_high"] - days["eb_low"]
    )
    assert digest.loc["Days", "bootstrap / plain EB width"] == pytest.approx(ratio.median())


def test_coverage_study_adds_the_bootstrap_row_on_the_same_data_sets() -> None:
    from hiermodels.eb.coverage import eb_interval_coverage

    options = {"n_groups": 5, "n_per_group": 3, "replications": 4, "random_seed": 2}
    plain = eb_interval_coverage(**options)
    with_boot = eb_interval_coverage(bootstrap_nsim=15, **options)
    assert list(with_boot["interval"]) == ["plug-in", "Kass–Steffey", "Laird–Louis bootstrap"]
    pd.testing.assert_frame_equal(with_boot.iloc[:2], plain)
    again = eb_interval_coverage(bootstrap_nsim=15, **options)
    pd.testing.assert_frame_equal(again, with_boot)
    with pytest.raises(ValueError, match="bootstrap_nsim"):
        eb_interval_coverage(bootstrap_nsim=-1, **options)


@pytest.mark.slow
def test_bootstrap_intervals_cover_more_than_plug_in_and_kass_steffey() -> None:
    """Six groups of four, the docs' coverage study: 300 data sets, 100 replicates each."""
    from hiermodels.eb.coverage import eb_interval_coverage

    table = eb_interval_coverage(
        n_groups=6,
        n_per_group=4,
        tau=0.5,
        sigma=1.0,
        replications=300,
        ci_prob=0.9,
        random_seed=6,
        bootstrap_nsim=100,
    ).set_index("interval")
    boot, corrected = table.loc["Laird–Louis bootstrap"], table.loc["Kass–Steffey"]
    assert boot["coverage"] > corrected["coverage"] + 2 * corrected["mc_se"]
    assert boot["coverage"] < boot["nominal"] + 2 * boot["mc_se"]
