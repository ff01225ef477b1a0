"""The vectorised compound-sampling simulator: risks against closed forms and Stein's result."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from scipy import optimize, stats

from hiermodels.compound import _normal_math as nm
from hiermodels.compound import simulate_compound


@pytest.mark.parametrize("k", [4, 10])
@pytest.mark.parametrize("tau", [0.3, 1.0, 3.0])
def test_james_stein_beats_raw_when_k_at_least_4(k, tau):
    # Stein (1956), James & Stein (1961): for k >= 4 (shrinking to the grand mean) the
    # James–Stein risk is below the raw risk for every theta, hence on average over G.
    sim = simulate_compound(20_000, k, tau=tau, random_seed=k * 100 + int(10 * tau))
    gain = sim.losses["raw"] - sim.losses["james_stein"]
    assert gain.mean() > 3 * gain.std(ddof=1) / np.sqrt(sim.n_rep)
    assert (sim.losses["raw"] - sim.losses["james_stein_plus"]).mean() > 0


def test_monte_carlo_risks_match_closed_forms():
    # Raw: k sigma^2. Oracle Bayes rule: k sigma^2 (1 - B). James–Stein (Efron & Morris
    # 1973): k sigma^2 - (k - 3) sigma^2 B, B = sigma^2/(sigma^2 + tau^2).
    k, sigma, tau = 12, 1.5, 1.0
    sim = simulate_compound(40_000, k, mu=2.0, tau=tau, se=sigma, random_seed=11)
    risk = sim.risk()
    b = sigma**2 / (sigma**2 + tau**2)
    expected = {
        "raw": k * sigma**2,
        "oracle": k * sigma**2 * (1 - b),
        "james_stein": k * sigma**2 - (k - 3) * sigma**2 * b,
    }
    for name, value in expected.items():
        assert sim.theoretical_risk[name] == pytest.approx(value, rel=1e-14)
        assert abs(risk.loc[name, "risk"] - value) < 4 * risk.loc[name, "mcse"]


def test_oracle_bayes_rule_has_the_smallest_risk():
    sim = simulate_compound(20_000, 8, tau=0.8, random_seed=12)
    risk = sim.risk()["risk"]
    assert risk.idxmin() == "oracle"
    assert risk["eb"] < risk["raw"]


def test_unequal_se_uses_the_numeric_eb_and_skips_james_stein():
    se = np.array([0.5, 1.0, 2.0, 1.5, 0.7, 1.2, 3.0, 1.0])
    sim = simulate_compound(3000, 8, tau=1.0, se=se, eb_method="reml", random_seed=13)
    assert "james_stein" not in sim.losses
    assert "james_stein" not in sim.theoretical_risk
    risk = sim.risk()
    assert abs(risk.loc["raw", "risk"] - np.sum(se**2)) < 4 * risk.loc["raw", "mcse"]
    assert risk.loc["eb", "risk"] < risk.loc["raw", "risk"]


def test_batch_tau2_solver_matches_independent_fits_row_by_row():
    # The simulator fits all replications at once; each row must match a scalar bounded
    # maximisation of the profile likelihood sum log N(y_i | mu_hat(t), se_i^2 + t).
    se = np.array([0.5, 1.0, 2.0, 1.5, 0.7, 1.2])
    rng = np.random.default_rng(14)
    y = 1.2 * rng.standard_normal((40, 6)) + se * rng.standard_normal((40, 6))
    batch = nm.estimate_tau2(y, se**2, "ml")

    def profile_nll(t: float, row: np.ndarray) -> float:
        w = 1.0 / (se**2 + t)
        mu = np.sum(w * row) / w.sum()
        return -np.sum(stats.norm.logpdf(row, mu, np.sqrt(se**2 + t)))

    for row, t_hat in zip(y, batch, strict=True):
        ref = optimize.minimize_scalar(
            profile_nll, bounds=(0.0, 100.0), args=(row,), method="bounded",
            options={"xatol": 1e-12},
        ).x  # fmt: skip
        assert t_hat == pytest.approx(ref, abs=1e-6, rel=1e-5)
    assert np.any(batch == 0.0) and np.any(batch > 0.0)


def test_simulation_is_reproducible_and_validates_arguments():
    a = simulate_compound(100, 5, random_seed=3)
    b = simulate_compound(100, 5, random_seed=3)
    assert_array_equal(a.losses.to_numpy(), b.losses.to_numpy())
    with pytest.raises(ValueError, match="n_rep"):
        simulate_compound(1, 5)
    with pytest.raises(ValueError, match="se must be positive"):
        simulate_compound(10, 3, se=[1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="n_bayes"):
        simulate_compound(10, 3, n_bayes=11)
