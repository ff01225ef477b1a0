"""``MixedFit.simulate`` against the closed-form moments of the fitted model.

Every check is a z-score of a Monte Carlo estimate from 10,000 replicates
against its closed form, bounded by 5 (over all rows: a false alarm has a
probability below 1e-4).

* LMM, new effects: ``E[y] = xβ``, ``Var[y] = zᵀΣz + σ²``, and within a
  group ``Cov(yᵢ, yⱼ) = zᵢᵀΣzⱼ`` (``+ σ²`` on the diagonal).
* LMM, conditional effects: ``E[y]`` the conditional linear predictor,
  ``Var[y] = σ²``.
* Poisson GLMM with an offset, new effects (lognormal–Poisson):
  ``E[y] = exp(η + v/2)`` and ``Var[y] = E[y] + E[y]² (eᵛ − 1)`` with
  ``η = xβ + offset`` and ``v = zᵀΣz``.
* Binomial and negative-binomial, conditional effects: ``E[y] = mμ``,
  ``Var[y] = mμ(1 − μ)``; ``E[y] = μ``, ``Var[y] = μ + μ²/α``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.mle.results import MixedFit

NSIM = 10_000
Z_BOUND = 5.0


def _mean_z(draws: np.ndarray, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    return np.abs(draws.mean(axis=1) - mean) / np.sqrt(var / draws.shape[1])


def _var_z(draws: np.ndarray, var: np.ndarray) -> np.ndarray:
    """z-score of the sample variance, its SE from the sample's fourth central moment."""
    centred = draws - draws.mean(axis=1, keepdims=True)
    m2 = np.mean(centred**2, axis=1)
    m4 = np.mean(centred**4, axis=1)
    return np.abs(draws.var(axis=1, ddof=1) - var) / np.sqrt((m4 - m2**2) / draws.shape[1])


def _marginal_z_variance(fit: MixedFit) -> np.ndarray:
    """``zᵢᵀΣzᵢ`` of every row, summed over the random-effect blocks."""
    total = np.zeros(fit.nobs)
    for block, cov in zip(fit.layout.blocks, fit.covariances(), strict=True):
        total += np.einsum("nj,jk,nk->n", block.X, cov, block.X)
    return total


@pytest.fixture(scope="module")
def sleep_fit() -> MixedFit:
    return hm.Model("Reaction ~ Days + (Days | Subject)", hm.datasets.load("sleepstudy")).fit_mle()


@pytest.fixture(scope="module")
def poisson_fit() -> MixedFit:
    rng = np.random.default_rng(7)
    groups, per_group = 40, 8
    group = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=groups * per_group)
    exposure = rng.uniform(0.5, 2.0, size=groups * per_group)
    eta = 0.3 + 0.4 * x + np.log(exposure) + rng.normal(scale=0.5, size=groups)[group]
    data = pd.DataFrame(
        {
            "y": rng.poisson(np.exp(eta)),
            "x": x,
            "g": group.astype(str),
            "log_exposure": np.log(exposure),
        }
    )
    return hm.Model("y ~ x + (1 | g)", data, family="poisson", offset="log_exposure").fit_mle()


def test_lmm_new_effects_reproduce_marginal_moments(sleep_fit: MixedFit) -> None:
    draws = sleep_fit.simulate(NSIM, random_seed=1).to_numpy()
    assert draws.shape == (sleep_fit.nobs, NSIM)
    mean = sleep_fit.design.X @ sleep_fit.beta
    var = _marginal_z_variance(sleep_fit) + sleep_fit.sigma**2
    assert _mean_z(draws, mean, var).max() < Z_BOUND
    # a normal sample variance has SE var·√(2/(n−1))
    assert (np.abs(draws.var(axis=1, ddof=1) / var - 1) / np.sqrt(2 / (NSIM - 1))).max() < Z_BOUND


def test_lmm_new_effects_correlate_rows_within_a_group_only(sleep_fit: MixedFit) -> None:
    draws = sleep_fit.simulate(NSIM, random_seed=2).to_numpy()
    block = sleep_fit.layout.blocks[0]
    (cov,) = sleep_fit.covariances()
    first, second = np.flatnonzero(block.codes == 0), np.flatnonzero(block.codes == 1)
    expected = block.X[first] @ cov @ block.X[first].T + sleep_fit.sigma**2 * np.eye(first.size)
    sd = np.sqrt(np.diag(expected))
    expected_corr = expected / np.outer(sd, sd)
    sample_corr = np.corrcoef(draws[first])
    # the SE of a sample correlation is about (1 − r²)/√n
    se = (1 - expected_corr**2) / np.sqrt(NSIM) + 1e-12
    off = ~np.eye(first.size, dtype=bool)
    assert (np.abs(sample_corr - expected_corr)[off] / se[off]).max() < Z_BOUND
    across = np.corrcoef(draws[first[0]], draws[second[0]])[0, 1]
    assert abs(across) * np.sqrt(NSIM) < Z_BOUND


def test_lmm_conditional_effects_vary_by_sigma_only(sleep_fit: MixedFit) -> None:
    draws = sleep_fit.simulate(NSIM, random_seed=3, effects="conditional").to_numpy()
    var = np.full(sleep_fit.nobs, sleep_fit.sigma**2)
    assert _mean_z(draws, sleep_fit.linear_predictor, var).max() < Z_BOUND
    assert _var_z(draws, var).max() < Z_BOUND


def test_poisson_new_effects_match_lognormal_poisson_moments(poisson_fit: MixedFit) -> None:
    draws = poisson_fit.simulate(NSIM, random_seed=4).to_numpy()
    design = poisson_fit.design
    v = _marginal_z_variance(poisson_fit)
    mean = np.exp(design.X @ poisson_fit.beta + design.offset + v / 2)
    var = mean + mean**2 * np.expm1(v)
    assert np.all(draws == np.round(draws)) and draws.min() >= 0
    assert _mean_z(draws, mean, var).max() < Z_BOUND
    assert _var_z(draws, var).max() < Z_BOUND


def test_binomial_conditional_draws_have_binomial_moments() -> None:
    cbpp = hm.datasets.load("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hm.Model(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial"
        ).fit_mle()
    draws = fit.simulate(NSIM, random_seed=5, effects="conditional").to_numpy()
    trials = fit.design.trials
    mu = fit.fitted().to_numpy()
    mean, var = trials * mu, trials * mu * (1 - mu)
    assert np.all(draws <= trials[:, None]) and draws.min() >= 0
    assert _mean_z(draws, mean, var).max() < Z_BOUND
    assert _var_z(draws, var).max() < Z_BOUND


def test_negative_binomial_conditional_draws_have_nb2_moments() -> None:
    rng = np.random.default_rng(11)
    data = pd.DataFrame({"x": rng.normal(size=300), "g": np.repeat(np.arange(30), 10).astype(str)})
    mu = np.exp(
        1.0 + 0.5 * data["x"] + rng.normal(scale=0.4, size=30)[np.repeat(np.arange(30), 10)]
    )
    data["y"] = rng.negative_binomial(2.0, 2.0 / (2.0 + mu))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hm.Model("y ~ x + (1 | g)", data, family="negativebinomial").fit_mle()
    assert fit.alpha is not None and np.isfinite(fit.alpha)
    draws = fit.simulate(NSIM, random_seed=6, effects="conditional").to_numpy()
    mean = fit.fitted().to_numpy()
    var = mean + mean**2 / fit.alpha
    assert _mean_z(draws, mean, var).max() < Z_BOUND
    assert _var_z(draws, var).max() < Z_BOUND


def test_same_seed_same_draws_and_lme4_layout(sleep_fit: MixedFit) -> None:
    first = sleep_fit.simulate(3, random_seed=42)
    again = sleep_fit.simulate(3, random_seed=np.random.default_rng(42))
    other = sleep_fit.simulate(3, random_seed=43)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first.to_numpy(), other.to_numpy())
    assert list(first.columns) == ["sim_1", "sim_2", "sim_3"]
    assert first.index.equals(sleep_fit.design.rows)


def test_bad_requests_are_refused(sleep_fit: MixedFit) -> None:
    with pytest.raises(ValueError, match="nsim"):
        sleep_fit.simulate(0)
    with pytest.raises(ValueError, match="effects"):
        sleep_fit.simulate(2, effects="marginal")  # type: ignore[arg-type]


def test_weighted_lmm_conditional_draws_have_variance_sigma_squared_over_w() -> None:
    sleep = hm.datasets.load("sleepstudy")
    weights = np.random.default_rng(15).uniform(0.25, 4.0, len(sleep))
    fit = hm.Model("Reaction ~ Days + (Days | Subject)", sleep, weights=weights).fit_mle()
    draws = fit.simulate(NSIM, random_seed=7, effects="conditional").to_numpy()
    var = fit.sigma**2 / weights
    assert _mean_z(draws, fit.linear_predictor, var).max() < Z_BOUND
    assert _var_z(draws, var).max() < Z_BOUND
    # a heavy row scatters less than a light one, as sigma / sqrt(w) says
    heavy, light = np.argmax(weights), np.argmin(weights)
    assert draws[heavy].std() < draws[light].std()


@pytest.mark.parametrize(("family", "power"), [("gamma", 2), ("inverse_gaussian", 3)])
def test_positive_family_conditional_draws_have_variance_phi_mu_to_the_power(
    family: str, power: int
) -> None:
    rng = np.random.default_rng(12)
    groups = np.repeat(np.arange(25), 12)
    data = pd.DataFrame({"x": rng.normal(size=groups.size), "g": groups.astype(str)})
    mu = np.exp(0.5 + 0.3 * data["x"] + rng.normal(scale=0.3, size=25)[groups])
    data["y"] = rng.gamma(4.0, mu / 4.0) if family == "gamma" else rng.wald(mu, 5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hm.Model("y ~ x + (1 | g)", data, family=family).fit_mle()
    assert fit.phi is not None
    draws = fit.simulate(NSIM, random_seed=8, effects="conditional").to_numpy()
    mean = fit.fitted().to_numpy()
    var = fit.phi * mean**power
    assert draws.min() > 0
    assert _mean_z(draws, mean, var).max() < Z_BOUND
    assert _var_z(draws, var).max() < Z_BOUND
