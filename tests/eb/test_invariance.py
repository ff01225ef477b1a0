"""Empirical-Bayes conditionals and their Kass–Steffey correction follow the data's units.

Both are derived in the standardised coordinates of the MLE engine and
mapped back, so ``a + b·y`` moves every conditional mean by ``b`` (and the
intercept's by ``a``) and scales every SD by ``|b|``; shifting the random
slope covariate transforms each level's effects by ``T``. Compared at 1e-6
relative with the fit of the values the changed column represents.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

SLOPE = "Reaction ~ Days + (Days | Subject)"
COLUMNS = ["estimate", "se_plugin", "se"]


def _summary(data: pd.DataFrame, plugin: str) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return hm.Model(SLOPE, data).fit_eb(plugin=plugin).ranef_summary()


@pytest.mark.parametrize("plugin", ["hyper", "all"])
@pytest.mark.parametrize(("shift", "scale"), [(1e12, 1.0), (-4e7, 1e-3)])
def test_affine_response(plugin: str, shift: float, scale: float) -> None:
    sleep = hm.datasets.load("sleepstudy")
    changed = sleep.assign(Reaction=shift + scale * sleep["Reaction"])
    represented = sleep.assign(Reaction=(changed["Reaction"] - shift) / scale)
    ours, base = _summary(changed, plugin), _summary(represented, plugin)
    for column, factor in zip(COLUMNS, (scale, abs(scale), abs(scale)), strict=True):
        expected = factor * base[column].to_numpy()
        np.testing.assert_allclose(
            ours[column].to_numpy(), expected, rtol=1e-6, atol=1e-6 * np.max(np.abs(expected))
        )


def test_shifted_random_slope_covariate() -> None:
    """``Days + 100``: the intercept effect becomes ``b₀ − 100 b₁`` level by level."""
    sleep = hm.datasets.load("sleepstudy")
    base = _summary(sleep, "all")
    ours = _summary(sleep.assign(Days=sleep["Days"] + 100.0), "all")
    intercept, slope = (base[base["term"] == t] for t in ("Intercept", "Days"))
    ours_intercept = ours[ours["term"] == "Intercept"]["estimate"].to_numpy()
    expected = intercept["estimate"].to_numpy() - 100.0 * slope["estimate"].to_numpy()
    np.testing.assert_allclose(ours_intercept, expected, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(
        ours[ours["term"] == "Days"][COLUMNS].to_numpy(), slope[COLUMNS].to_numpy(), rtol=1e-5
    )
