"""A crossing too dense to index every two coupling pairs factorises them as it goes."""

from __future__ import annotations

import numpy as np
import pytest

import hiermodels as hm
from hiermodels.mle import blocked


@pytest.mark.parametrize(
    ("formula", "dataset"),
    [
        ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
        ("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", "insteval"),
        ("Reaction ~ Days + (Days | Subject) + (1 | Days_factor)", "sleepstudy"),
    ],
)
def test_pairs_met_as_they_come_give_the_indexed_fit(
    formula: str, dataset: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = hm.datasets.load(dataset)
    if dataset == "sleepstudy":
        data = data.assign(Days_factor=data["Days"].astype(str))
    indexed = hm.Model(formula, data).fit_mle()
    monkeypatch.setattr(blocked, "MAX_PAIR_PRODUCTS", 0)
    model = hm.Model(formula, data)
    with pytest.warns(UserWarning, match="crossed almost completely"):
        fit = model.fit_mle()
    assert fit.layout.pattern.pp_a.size == 0
    np.testing.assert_allclose(fit.theta, indexed.theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fit.fixef, indexed.fixef, rtol=1e-10)
    assert fit.loglik == pytest.approx(indexed.loglik, rel=1e-12)
