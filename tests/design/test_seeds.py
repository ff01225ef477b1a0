"""Random seeds: one validator, called by every public sampling function."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels._checks import check_random_seed
from hiermodels.compound import NormalNormal, simulate_compound

BAD_SEEDS = [
    (-1, "got -1, which is out of range"),
    (2**64, f"got {2**64}, which is out of range"),
    (2**70, f"got {2**70}, which is out of range"),
    (1.5, "got 1.5 (float)"),
    (3.0, "got 3.0 (float)"),
    ("abc", "got 'abc' (str)"),
    (True, "got True (bool)"),
    ([1, 2], "got [1, 2] (list)"),
]


@pytest.mark.parametrize(("seed", "message"), BAD_SEEDS)
def test_bad_seeds_are_refused_with_the_value(seed, message) -> None:
    with pytest.raises(
        ValueError, match=r"random_seed must be None or an integer from 0 to 2\*\*64 - 1"
    ) as info:
        check_random_seed(seed)
    assert message in str(info.value)


@pytest.mark.parametrize("seed", [None, 0, 7, np.int64(7), np.uint64(2**64 - 1), 2**64 - 1])
def test_good_seeds_come_back_as_python_ints(seed) -> None:
    value = check_random_seed(seed)
    assert value is None if seed is None else (type(value) is int and value == int(seed))


def test_generators_only_where_numpy_draws_directly() -> None:
    rng = np.random.default_rng(1)
    assert check_random_seed(rng, allow_generator=True) is rng
    with pytest.raises(ValueError, match=r"got Generator\(PCG64\) .*\(Generator\)"):
        check_random_seed(rng)


@pytest.fixture(scope="module")
def model() -> hm.Model:
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(6), 5)
    data = pd.DataFrame(
        {"y": rng.normal(size=30) + rng.normal(size=6)[g], "x": rng.normal(size=30), "g": g}
    )
    return hm.Model("y ~ x + (1 | g)", data)


@pytest.fixture(scope="module")
def normal() -> NormalNormal:
    return NormalNormal(np.array([0.1, 0.5, -0.2, 0.9, 0.3]), 0.4)


ENTRY_POINTS = {
    "fit_bayes": lambda m, nn, seed: m.fit_bayes(draws=10, tune=10, chains=1, random_seed=seed),
    "fit_eb": lambda m, nn, seed: m.fit_eb(eb_method="mcmc", draws=10, tune=10, random_seed=seed),
    "NormalNormal.fit_bayes": lambda m, nn, seed: nn.fit_bayes(10, 10, 1, random_seed=seed),
    "bootstrap_intervals": lambda m, nn, seed: nn.bootstrap_intervals(n_boot=10, random_seed=seed),
    "simulate_compound": lambda m, nn, seed: simulate_compound(10, 5, random_seed=seed),
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize(("seed", "message"), BAD_SEEDS[:5])
def test_every_sampling_function_checks_its_seed(model, normal, entry, seed, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ENTRY_POINTS[entry](model, normal, seed)


def test_the_largest_seed_samples(model) -> None:
    fit = model.fit_bayes(draws=20, tune=20, chains=1, random_seed=2**64 - 1, progressbar=False)
    assert fit.posterior.sizes["draw"] == 20
