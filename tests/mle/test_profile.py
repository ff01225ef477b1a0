"""Profile likelihoods of SDs against lme4's profile confidence intervals.

lme4 profiles the ML deviance even for a REML fit, so the comparison uses
``criterion="ML"``.

Reference: tests/reference/lme4/sleepstudy_slope_reml_profile.json, made by
make_profile_reference.R there (lme4 1.1-31 ``confint(method = "profile")``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import optimize, stats

import hiermodels as hm
from hiermodels.mle.profile import profile_sd

REF = json.loads(
    (
        Path(__file__).parents[1] / "reference" / "lme4" / "sleepstudy_slope_reml_profile.json"
    ).read_text()
)
CUTOFF = stats.chi2.ppf(0.95, 1)


@pytest.fixture(scope="module")
def fit() -> hm.MixedFit:
    sleep = hm.datasets.load("sleepstudy")
    return hm.Model("Reaction ~ Days + (Days | Subject)", sleep).fit_mle()


def _limit(fit: hm.MixedFit, name: str, low: float, high: float) -> float:
    def excess(value: float) -> float:
        frame = profile_sd(fit, name, [value], criterion="ML")
        return float(frame["delta"].iloc[0]) - CUTOFF

    return optimize.brentq(excess, low, high, xtol=1e-6)


@pytest.mark.parametrize(
    ("name", "lme4_name"),
    [
        ("sd_Subject__Intercept", "sd_(Intercept)|Subject"),
        ("sd_Subject__Days", "sd_Days|Subject"),
        ("sigma", "sigma"),
    ],
)
def test_profile_interval_matches_lme4(fit: hm.MixedFit, name: str, lme4_name: str) -> None:
    k = REF["parameters"].index(lme4_name)
    ml_fit = hm.Model(fit.design.spec.formula, hm.datasets.load("sleepstudy")).fit_mle("ML")
    estimate = float(ml_fit.to_xarray()[name])
    lower = _limit(fit, name, 0.5 * REF["lower"][k], estimate)
    upper = _limit(fit, name, estimate, 1.5 * REF["upper"][k])
    assert lower == pytest.approx(REF["lower"][k], rel=2e-3)
    assert upper == pytest.approx(REF["upper"][k], rel=2e-3)


def test_profile_is_zero_at_the_estimate_and_grows(fit: hm.MixedFit) -> None:
    estimate = float(fit.to_xarray()["sd_Subject__Days"])
    frame = profile_sd(fit, "sd_Subject__Days", estimate * np.array([0.5, 0.8, 1.0, 1.25, 2.0]))
    assert frame["delta"].iloc[2] == pytest.approx(0.0, abs=1e-5)
    assert frame["delta"].iloc[0] > frame["delta"].iloc[1] > frame["delta"].iloc[2]
    assert frame["delta"].iloc[4] > frame["delta"].iloc[3] > frame["delta"].iloc[2]


def test_profile_rejects_bad_requests(fit: hm.MixedFit) -> None:
    with pytest.raises(ValueError, match="unknown variance parameter"):
        profile_sd(fit, "sd_Subject__Night", [1.0])
    with pytest.raises(ValueError, match="positive"):
        profile_sd(fit, "sigma", [0.0])
    with pytest.raises(ValueError, match="criterion must be"):
        profile_sd(fit, "sigma", [20.0], criterion="Laplace")
