"""Gaussian models sampled with their effects integrated out: the full graph's posterior,
and recovery of known parameters.

Agreement (slow tier): the marginalised fit and ``marginalize=False`` (the PyMC
graph, effects sampled) are two samples of one posterior, so their posterior
means of the fixed effects and of a few group effects, and their posterior
medians of the SDs (means of the correlations), differ by Monte Carlo error
only: less than four combined Monte Carlo standard errors.

Recovery: one simulated data set per structure (fixed seeds, true values
below), fitted with ``fit_bayes``'s defaults; every fixed effect inside its
95% interval, at most one hyperparameter outside it, no divergences. The
default 4 x 1000 draws take one to four minutes per structure, so these are
in the slow tier too.

Seeds: the first one tried, except for ``crossed-slopes``: seed 53 drew ``a``
intercepts with SD 1.08 (true 0.8) and ``b`` effects with correlation -0.76
(true -0.3), which no method could be expected to cover; seeds 56-59 each had
a realised correlation more than 1.5 standard errors or an SD more than 20%
from the truth; seed 60's realised SDs are within 11% and its correlations
0.46 and -0.32. The fits were not consulted in choosing it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import arviz_stats as azs
import numpy as np
import pandas as pd
import pytest

from hiermodels.bayes import BayesFit, fit_bayes
from hiermodels.datasets import load
from hiermodels.design.design import Design, build_design
from tests.bayes.sbc import posterior_draws, simulate_response, true_scalars
from tests.bayes.test_gaussian_density import STRUCTURES, frame

pytestmark = pytest.mark.xdist_group("bayes-gaussian-sampling")

#: Name -> (formula, data): the models of the agreement checks.
AGREEMENT: dict[str, tuple[str, Callable[[], pd.DataFrame]]] = {
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", lambda: load("penicillin")),
    "pastes": ("strength ~ 1 + (1 | batch/cask)", lambda: load("pastes")),
    "crossed-slopes": (STRUCTURES["crossed-slopes"], frame),
    "nested-3-levels": (STRUCTURES["nested-3-levels"], frame),
    "three-terms": (STRUCTURES["three-terms"], frame),
}

AGREEMENT_RUN = {"draws": 1000, "tune": 1000, "chains": 2, "progressbar": False}


def scalar_names(design: Design, effect_levels: int = 2) -> list[str]:
    """Every fixed effect, SD, correlation and ``sigma``, and the first term's effects at
    the first ``effect_levels`` levels of each factor (names of :func:`posterior_draws`)."""
    names = [f"beta[{coef}]" for coef in design.fixed_names]
    for layout in design.factors:
        g = layout.group
        names += [f"sd_{g}__{t}" for t in layout.terms]
        for a, b in layout.correlated_spans:
            terms = layout.terms[a:b]
            names += [f"corr_{g}[{s}, {t}]" for i, s in enumerate(terms) for t in terms[i + 1 :]]
        names += [f"u_{g}[{level}, {layout.terms[0]}]" for level in layout.levels[:effect_levels]]
    return [*names, "sigma"]


def summary_with_mcse(fit: BayesFit, name: str) -> tuple[float, float]:
    """Posterior median and its MCSE for an SD or ``sigma``, else the mean and its MCSE."""
    draws = posterior_draws(fit, name)
    if name.startswith("sd_") or name == "sigma":
        return float(np.median(draws)), float(azs.mcse(draws, method="median"))
    return float(np.mean(draws)), float(azs.mcse(draws, method="mean"))


@cache
def agreement_fits(name: str) -> tuple[Design, BayesFit, BayesFit]:
    formula, data = AGREEMENT[name]
    design = build_design(formula, data(), "gaussian")
    marginal = fit_bayes(design, random_seed=31, **AGREEMENT_RUN)
    full = fit_bayes(design, marginalize=False, random_seed=32, **AGREEMENT_RUN)
    return design, marginal, full


@pytest.mark.slow
@pytest.mark.parametrize("name", list(AGREEMENT))
def test_marginal_and_full_graph_posteriors_agree(name: str) -> None:
    design, marginal, full = agreement_fits(name)
    assert marginal.marginalized and not full.marginalized
    rows = []
    for scalar in scalar_names(design):
        a, mcse_a = summary_with_mcse(marginal, scalar)
        b, mcse_b = summary_with_mcse(full, scalar)
        rows.append((scalar, a, b, (a - b) / np.hypot(mcse_a, mcse_b)))
    table = pd.DataFrame(rows, columns=["scalar", "marginal", "full", "z"]).set_index("scalar")
    print(f"\n{name}:\n{table.round(4).to_string()}")
    assert np.all(np.abs(table["z"]) < 4.0), table
    assert marginal.diagnostics(warn=False).divergences == 0


# --- recovery on simulated data -------------------------------------------------------


def _corr(r: float) -> np.ndarray:
    return np.array([[1.0, r], [r, 1.0]])


def _crossed_slopes_frame() -> pd.DataFrame:
    """30 ``a`` x 20 ``b``, one row per cell (600 rows)."""
    rng = np.random.default_rng(41)
    a, b = np.repeat(np.arange(30), 20), np.tile(np.arange(20), 30)
    return pd.DataFrame(
        {"a": [f"a{i:02d}" for i in a], "b": [f"b{i:02d}" for i in b], "x": rng.normal(size=600)}
    )


def _nested_frame() -> pd.DataFrame:
    """15 ``a`` > 4 ``c`` > 2 ``e``, 3 rows per ``e`` (360 rows)."""
    rng = np.random.default_rng(42)
    cells = [(f"a{i:02d}", f"c{j}", f"e{k}") for i in range(15) for j in range(4) for k in range(2)]
    data = pd.DataFrame([cell for cell in cells for _ in range(3)], columns=["a", "c", "e"])
    data["x"] = rng.normal(size=len(data))
    return data


def _three_terms_frame() -> pd.DataFrame:
    """40 ``a`` x 8 rows, each row's ``b`` one of 8 levels (320 rows)."""
    rng = np.random.default_rng(43)
    a = np.repeat(np.arange(40), 8)
    b = np.tile(np.arange(8), 40)
    return pd.DataFrame(
        {
            "a": [f"a{i:02d}" for i in a],
            "b": [f"b{i}" for i in b],
            "x": rng.normal(size=a.size),
            "w": rng.normal(size=a.size),
        }
    )


#: Name -> (formula, fixed design, true values, seed of the simulated response).
RECOVERY: dict[str, tuple[str, Callable[[], pd.DataFrame], dict, int]] = {
    "crossed": (
        "y ~ x + (1 | a) + (1 | b)",
        _crossed_slopes_frame,
        {"beta": np.array([-1.0, 0.3]), "sd_a__Intercept": 0.8, "sd_b__Intercept": 0.5,
         "sigma": 1.0},
        51,
    ),
    "nested-intercepts": (
        "y ~ x + (1 | a/c)",
        _nested_frame,
        {"beta": np.array([3.0, 0.4]), "sd_a__Intercept": 0.8, "sd_a:c__Intercept": 0.5,
         "sigma": 0.7},
        52,
    ),
    "crossed-slopes": (
        "y ~ x + (1 + x | a) + (x | b)",
        _crossed_slopes_frame,
        {"beta": np.array([1.0, 0.5]), "sd_a__Intercept": 0.8, "sd_a__x": 0.4,
         "corr_a": _corr(0.4), "sd_b__Intercept": 0.6, "sd_b__x": 0.3, "corr_b": _corr(-0.3),
         "sigma": 0.7},
        60,
    ),
    "nested-3-levels": (
        "y ~ x + (x | a) + (x | a:c) + (1 | a:c:e)",
        _nested_frame,
        {"beta": np.array([2.0, -0.5]), "sd_a__Intercept": 0.9, "sd_a__x": 0.4,
         "corr_a": _corr(0.3), "sd_a:c__Intercept": 0.6, "sd_a:c__x": 0.3,
         "corr_a:c": _corr(-0.2), "sd_a:c:e__Intercept": 0.4, "sigma": 0.5},
        54,
    ),
    "three-terms": (
        "y ~ x + w + (x + w | a) + (1 | b)",
        _three_terms_frame,
        {"beta": np.array([0.5, 1.0, -0.5]), "sd_a__Intercept": 1.0, "sd_a__x": 0.5,
         "sd_a__w": 0.4,
         "corr_a": np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.4], [-0.2, 0.4, 1.0]]),
         "sd_b__Intercept": 0.5, "sigma": 0.8},
        55,
    ),
}  # fmt: skip


@cache
def recovery_fit(name: str) -> tuple[dict[str, float], BayesFit]:
    """Simulate data set ``name`` from its true values and fit it with the defaults."""
    formula, data, values, seed = RECOVERY[name]
    frame_ = data()
    frame_["y"] = np.arange(len(frame_), dtype=float)  # a placeholder for the layout
    design = build_design(formula, frame_, "gaussian")
    y, effects = simulate_response(design, values, np.random.default_rng(seed))
    frame_["y"] = y
    design = build_design(formula, frame_, "gaussian")
    names = scalar_names(design, effect_levels=0)
    fit = fit_bayes(design, random_seed=seed, progressbar=False)
    return true_scalars(design, values, effects, names), fit


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECOVERY))
def test_true_values_inside_95_percent_intervals(name: str) -> None:
    truth, fit = recovery_fit(name)
    outside = []
    for scalar, true in truth.items():
        low, high = np.quantile(posterior_draws(fit, scalar), [0.025, 0.975])
        if not low <= true <= high:
            outside.append(f"{scalar} = {true:.3f} outside [{low:.3f}, {high:.3f}]")
    assert not [o for o in outside if o.startswith("beta[")], outside
    assert len(outside) <= 1, outside
    assert fit.diagnostics(warn=False).divergences == 0
