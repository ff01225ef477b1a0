"""One choice of marginal-likelihood method for Model.fit_mle, fit_eb and the command."""

from __future__ import annotations

import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.design.families import get_family
from hiermodels.mle.fit import mle_method

GAUSSIAN = get_family("gaussian")
POISSON = get_family("poisson")


@pytest.mark.parametrize(
    ("family", "method", "expected"),
    [
        (GAUSSIAN, None, "REML"),
        (GAUSSIAN, "reml", "REML"),
        (GAUSSIAN, "Ml", "ML"),
        (POISSON, None, "Laplace"),
        (POISSON, "LAPLACE", "Laplace"),
    ],
)
def test_the_method_is_spelled_as_mixedfit_spells_it(family, method, expected) -> None:
    assert mle_method(family, method) == expected


@pytest.mark.parametrize(
    ("family", "method", "message"),
    [
        (GAUSSIAN, "bayes", r"method must be one of 'REML', 'ML', 'Laplace'; got 'bayes'"),
        (GAUSSIAN, "laplace", r"exact: use method='REML' or 'ML'"),
        (POISSON, "reml", r"REML applies to Gaussian models; family 'poisson' .*'Laplace'"),
    ],
)
def test_a_method_the_family_does_not_use_is_refused(family, method, message) -> None:
    with pytest.raises(ValueError, match=message):
        mle_method(family, method)


def test_fit_mle_and_fit_eb_refuse_with_the_same_message() -> None:
    data = pd.DataFrame({"y": [1, 2, 3, 4, 5, 6], "g": list("aabbcc")})
    model = hm.Model("y ~ 1 + (1 | g)", data, family="poisson")
    with pytest.raises(ValueError, match="ML applies to Gaussian models"):
        model.fit_mle(method="ML")
    with pytest.raises(ValueError, match="ML applies to Gaussian models"):
        model.fit_eb(method="ML")
