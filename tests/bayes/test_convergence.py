"""The vectorised r_hat and bulk ESS equal ArviZ's, quantity by quantity."""

from __future__ import annotations

import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr

from hiermodels.bayes.convergence import bulk_ess, rank_rhat


def _draws(seed: int, chains: int = 4, n: int = 301) -> np.ndarray:
    """AR(1) chains of several persistences, chains with shifted means, ties, a constant."""
    rng = np.random.default_rng(seed)
    columns = []
    for phi in (0.0, 0.5, 0.9, 0.99):
        x = np.zeros((chains, n))
        noise = rng.normal(size=(chains, n))
        for t in range(1, n):
            x[:, t] = phi * x[:, t - 1] + noise[:, t]
        columns.append(x)
    columns.append(rng.normal(size=(chains, n)) + np.arange(chains)[:, None])
    columns.append(np.round(rng.normal(size=(chains, n)), 1))
    columns.append(np.full((chains, n), 2.5))
    return np.stack(columns, axis=-1)


@pytest.mark.parametrize(("seed", "chains", "n"), [(1, 4, 301), (2, 2, 1000), (3, 1, 50)])
def test_equal_arviz(seed: int, chains: int, n: int) -> None:
    draws = _draws(seed, chains, n)
    dataset = xr.Dataset({"x": (("chain", "draw", "k"), draws)})
    expected_ess = azs.ess(dataset, method="bulk")["x"].values
    np.testing.assert_allclose(bulk_ess(draws), expected_ess, rtol=1e-10)
    if chains > 1:
        with np.errstate(all="ignore"):
            expected_rhat = azs.rhat(dataset)["x"].values
        np.testing.assert_allclose(rank_rhat(draws), expected_rhat, rtol=1e-10)
    else:
        assert np.all(np.isnan(rank_rhat(draws)))
