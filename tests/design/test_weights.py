"""Prior weights in the design: where they go, and one clear message for each bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.design.design import build_design
from hiermodels.errors import DesignError

GAUSSIAN = "incidence / size ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp() -> pd.DataFrame:
    return hm.datasets.load("cbpp")


def test_gaussian_weights_are_kept_as_precision_weights(cbpp: pd.DataFrame) -> None:
    design = build_design(GAUSSIAN, cbpp, "gaussian", weights="size")
    np.testing.assert_array_equal(design.weights, cbpp["size"].to_numpy(dtype=float))
    np.testing.assert_allclose(design.y, cbpp["incidence"] / cbpp["size"])
    assert design.trials is None
    assert build_design(GAUSSIAN, cbpp, "gaussian").weights is None


def test_an_array_and_a_column_give_the_same_design(cbpp: pd.DataFrame) -> None:
    by_name = build_design(GAUSSIAN, cbpp, "gaussian", weights="size")
    by_array = build_design(GAUSSIAN, cbpp, "gaussian", weights=cbpp["size"].to_numpy())
    np.testing.assert_array_equal(by_name.weights, by_array.weights)


def test_binomial_weights_are_trials_of_a_proportion(cbpp: pd.DataFrame) -> None:
    design = build_design(GAUSSIAN, cbpp, "binomial", weights="size")
    np.testing.assert_array_equal(design.y, cbpp["incidence"].to_numpy(dtype=float))
    np.testing.assert_array_equal(design.trials, cbpp["size"].to_numpy(dtype=float))
    assert design.weights is None


def test_bernoulli_with_weights_becomes_binomial(cbpp: pd.DataFrame) -> None:
    model = hm.Model(GAUSSIAN, cbpp, "bernoulli", link="probit", weights="size")
    assert model.family == hm.Family("binomial", "probit")
    assert model.design.family == model.family


def test_missing_rows_are_dropped_before_the_weights_are_checked(cbpp: pd.DataFrame) -> None:
    data = cbpp.assign(size=cbpp["size"].astype(float), incidence=cbpp["incidence"].astype(float))
    data.loc[3, ["incidence", "size"]] = np.nan
    with pytest.warns(UserWarning, match="dropped 1 row of 56 with missing values"):
        design = build_design(GAUSSIAN, data, "gaussian", weights="size")
    assert design.nobs == 55
    assert 3 not in design.rows


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (lambda n: np.r_[-1.0, np.ones(n - 1)], r"weights are negative in 1 row \(first rows: 0\)"),
        (lambda n: np.r_[np.ones(n - 2), np.nan, 1.0], r"not a number \(NaN\) in 1 row"),
        (lambda n: np.r_[np.inf, np.ones(n - 1)], r"weights are infinite in 1 row"),
        (lambda n: np.zeros(n), "all 56 weights are zero"),
        (lambda n: np.ones(n - 1), r"weights have shape \(55,\), but the data have 56 rows"),
        (lambda n: np.ones((n, 2)), r"weights have shape \(56, 2\)"),
        (lambda n: np.array(["a"] * n), "weights must be numeric"),
        (lambda n: "sizes", r"column 'sizes' \(used in the weights\) is not in the data"),
    ],
)
def test_bad_weights_have_one_clear_message(cbpp: pd.DataFrame, weights, message: str) -> None:
    with pytest.raises(DesignError, match=message):
        build_design(GAUSSIAN, cbpp, "gaussian", weights=weights(len(cbpp)))


def test_a_text_weights_column_is_refused(cbpp: pd.DataFrame) -> None:
    data = cbpp.assign(label=cbpp["herd"].astype(str))
    with pytest.raises(DesignError, match="weights 'label' must be numeric"):
        build_design(GAUSSIAN, data, "gaussian", weights="label")


def test_zero_weights_drop_rows_with_a_warning(cbpp: pd.DataFrame) -> None:
    weights = cbpp["size"].to_numpy(dtype=float)
    weights[[2, 7]] = 0.0
    with pytest.warns(
        UserWarning, match=r"dropped 2 rows of 56 with weight zero \(first rows: 2, 7\)"
    ):
        design = build_design(GAUSSIAN, cbpp, "gaussian", weights=weights)
    assert design.nobs == 54
    assert not design.rows.isin([2, 7]).any()
    np.testing.assert_array_equal(design.weights, weights[weights > 0])


@pytest.mark.parametrize(
    ("formula", "weights", "message"),
    [
        ("incidence ~ period + (1 | herd)", "size", r"outside \[0, 1\] for the binomial family"),
        ("incidence / size ~ period + (1 | herd)", "incidence", "not a whole number of successes"),
        (
            "cbind(incidence, size - incidence) ~ period + (1 | herd)",
            "size",
            "gives the numbers of trials already",
        ),
    ],
)
def test_binomial_weights_must_fit_the_response(
    cbpp: pd.DataFrame, formula: str, weights: str, message: str
) -> None:
    data = cbpp.assign(incidence=cbpp["incidence"].clip(lower=1))
    with pytest.raises(DesignError, match=message):
        build_design(formula, data, "binomial", weights=weights)


def test_binomial_trials_must_be_whole(cbpp: pd.DataFrame) -> None:
    data = cbpp.assign(prop=0.0, trials=2.5)
    data.loc[0, "prop"] = 0.4
    with pytest.raises(DesignError, match=r"binomial weights .* non-negative integers"):
        build_design("prop ~ period + (1 | herd)", data, "binomial", weights="trials")


@pytest.mark.parametrize("family", ["poisson", "negativebinomial"])
def test_other_families_name_the_supported_cases(cbpp: pd.DataFrame, family: str) -> None:
    with pytest.raises(DesignError) as raised:
        build_design("incidence ~ period + (1 | herd)", cbpp, family, weights="size")
    message = str(raised.value)
    assert f"not available for the {family} family" in message
    assert "precision weights for the gaussian family" in message
    assert "numbers of trials" in message


def test_weights_survive_pickling(cbpp: pd.DataFrame) -> None:
    import pickle

    design = build_design(GAUSSIAN, cbpp, "gaussian", weights="size")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        copy = pickle.loads(pickle.dumps(design))
    np.testing.assert_array_equal(copy.weights, design.weights)
