"""Full-Bayes fits with default settings against lme4 1.1-31 (tests/reference/lme4).

Acceptance of issue 3: posterior means of the fixed effects within one lme4
standard error of lme4's estimates, posterior medians of the SDs (random
effects and residual) within 20% of lme4's REML SDs, no divergence and
r_hat < 1.01, with ``fit_bayes``'s defaults (4 chains x 1000 draws after
1000 tuning draws). With the hyperparameters and fixed effects held at
lme4's REML values, the posterior of the random effects is the Gaussian
whose mean and SD are lme4's conditional modes and conditional SDs.
"""

from __future__ import annotations

import arviz_stats as azs
import numpy as np
import pytest

from hiermodels.bayes import fit_bayes
from tests.bayes.conftest import REFERENCE_MODELS
from tests.reference.lme4_names import group_to_lme4, load_reference, term_to_lme4

pytestmark = pytest.mark.xdist_group("bayes-lme4")


@pytest.mark.parametrize("name", list(REFERENCE_MODELS))
def test_fixed_effects_within_one_lme4_standard_error(lme4_fit, name: str) -> None:
    ref = load_reference(name)
    table = lme4_fit(name).fixef_summary()
    assert [term_to_lme4(c) for c in table.index] == list(ref["fixef"])
    for coef, row in table.iterrows():
        key = term_to_lme4(str(coef))
        gap = abs(row["estimate"] - ref["fixef"][key])
        assert gap < ref["fixef_se"][key], (
            f"{coef}: {row['estimate']:.4f} vs lme4 {ref['fixef'][key]}"
        )


def _reml_sds(ref: dict, groups: tuple[str, ...] = ()) -> dict[str, float]:
    """lme4's SDs under our names: sd_<group>__<term> and sigma.

    ``groups`` are our grouping-factor names, for those lme4 spells in the
    other order (``classid:schoolid`` for ``(1 | schoolid/classid)``).
    """
    ours = {group_to_lme4(g, {r["grp"] for r in ref["varcorr"]}): g for g in groups}
    out = {}
    for row in ref["varcorr"]:
        if row["grp"] == "Residual":
            out["sigma"] = row["sdcor"]
        elif not row["var2"]:
            term = "Intercept" if row["var1"] == "(Intercept)" else row["var1"]
            out[f"sd_{ours.get(row['grp'], row['grp'])}__{term}"] = row["sdcor"]
    return out


@pytest.mark.parametrize("name", list(REFERENCE_MODELS))
def test_sd_medians_within_20_percent_of_reml(lme4_fit, name: str) -> None:
    """The posterior median within 20% of REML, allowing three MC SEs of its estimate.

    radon's floor SD has a posterior median 17.5% below REML (4 x 8000 draws
    on two seeds: 0.2696, 0.2698 against 0.3285), and 4 x 1000 draws estimate
    it to ±1.5%: the bound is on the posterior, not on one seed's draws.
    """
    fit = lme4_fit(name)
    table = fit.varcorr_summary().set_index("name")
    expected = _reml_sds(load_reference(name), fit.design.groups)
    mcse = azs.mcse(fit.posterior, method="median")
    for param, reml in expected.items():
        median = table.loc[param, "median"]
        slack = 3.0 * float(mcse[param].values) / reml
        assert abs(median / reml - 1) < 0.20 + slack, (
            f"{param}: median {median:.4f} vs REML {reml:.4f}"
        )


@pytest.mark.parametrize("name", list(REFERENCE_MODELS))
def test_default_settings_converge(lme4_fit, name: str) -> None:
    diag = lme4_fit(name).diagnostics(warn=False)
    assert diag.divergences == 0, diag
    assert diag.max_r_hat < 1.01, diag


def test_plugged_in_reml_values_give_lme4_conditional_modes(sleep_design) -> None:
    """Empirical-Bayes mode: u | y, theta-hat, beta-hat is N(condval, condsd^2) exactly."""
    ref = load_reference("sleepstudy_slope_reml")
    sds = _reml_sds(ref)
    corr = next(r["sdcor"] for r in ref["varcorr"] if r["var2"])
    fixed = {**sds, "corr_Subject": corr, "beta": list(ref["fixef"].values())}
    fit = fit_bayes(
        sleep_design,
        fixed_values=fixed,
        draws=1000,
        tune=500,
        chains=2,
        random_seed=3,
        progressbar=False,
    )
    table = fit.ranef_summary()
    lme4 = {(r["term"], r["grp"]): (r["condval"], r["condsd"]) for r in ref["ranef"]}
    for row in table.itertuples():
        condval, condsd = lme4[(term_to_lme4(row.term), row.grp)]
        # Monte Carlo error of a mean of >= 1000 effective draws is < 0.04 condsd
        assert abs(row.estimate - condval) < 0.12 * condsd, (row.term, row.grp)
        assert row.se == pytest.approx(condsd, rel=0.12), (row.term, row.grp)
    varcorr = fit.varcorr_summary().set_index("name")
    assert np.all(varcorr["se"] < 1e-12), "fixed values stay constant"
