"""Shared data for the compound-sampling tests (shipped datasets, via hiermodels.datasets)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiermodels.datasets import load


@pytest.fixture(scope="session")
def baseball() -> pd.DataFrame:
    """Efron & Morris (1975) batting data, in the paper's order (Clemente … Alvis)."""
    data = load("efron_morris_1970")
    return data.assign(Player=data["Player"].astype(str))


@pytest.fixture(scope="session")
def rats_historical() -> pd.DataFrame:
    """The 70 historical rat tumour experiments (the 71st is the current one)."""
    return load("rats_tumors").iloc[:70]


@pytest.fixture(scope="session")
def eight_schools() -> pd.DataFrame:
    """Rubin (1981) coaching effects and their standard errors."""
    data = load("eight_schools")
    return data.assign(school=data["school"].astype(str))


@pytest.fixture(scope="session")
def pumps() -> tuple[np.ndarray, np.ndarray]:
    """Pump failures and operating times (1000s of hours), Gaver & O'Muircheartaigh (1987).

    Ten pumps at a nuclear power plant; the classic Poisson–gamma example
    (also George, Makov & Smith 1993). Small enough to type in.
    """
    failures = np.array([5, 1, 5, 14, 3, 19, 1, 1, 4, 22])
    hours = np.array([94.32, 15.72, 62.88, 125.76, 5.24, 31.44, 1.048, 1.048, 2.096, 10.48])
    return failures, hours
