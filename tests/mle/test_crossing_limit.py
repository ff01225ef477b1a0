"""A crossing too dense for the blocked factorisation is refused before memory runs out."""

from __future__ import annotations

import pytest

import hiermodels as hm
from hiermodels.mle import blocked


def test_nearly_complete_crossing_beyond_the_limit_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # penicillin: 24 plates each meet all 6 samples, 24 × (6 · 7 / 2) = 504 products
    monkeypatch.setattr(blocked, "MAX_PAIR_PRODUCTS", 503)
    data = hm.datasets.load("penicillin")
    with pytest.raises(ValueError, match=r"crossed almost completely: 144 pairs .* 5e\+02"):
        hm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", data).fit_mle()
    monkeypatch.setattr(blocked, "MAX_PAIR_PRODUCTS", 504)
    fit = hm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", data).fit_mle()
    assert fit.nobs == 144
