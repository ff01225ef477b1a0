"""The three ways of factorising the coupling of crossed factors give one fit.

A crossing whose coupling pairs of pairs are too many to index meets them as
it goes; a nearly complete crossing holds the coupling as one dense matrix
and updates the trailing block with BLAS products. Each path is forced by
the module-level thresholds of :mod:`hiermodels.mle.blocked`, and every
quantity a fit reports — criterion, gradient, estimates, conditional modes
and variances — must agree with the indexed pairs' to round-off.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.mle import blocked
from hiermodels.mle.blocked import ReLayout
from hiermodels.mle.gaussian_likelihood import GaussianLikelihood
from hiermodels.mle.lmm import LmmDeviance, profiled_deviance
from hiermodels.mle.results import MixedFit
from hiermodels.mle.standardize import Standardization

#: How to force each path of the trailing update.
PATHS = {
    "indexed": {"DENSE_COUPLING_SPEEDUP": 0.0},
    "as they come": {"DENSE_COUPLING_SPEEDUP": 0.0, "MAX_PAIR_PRODUCTS": 0},
    "dense": {"DENSE_COUPLING_SPEEDUP": math.inf, "MIN_DENSE_COUPLING_WORK": 0},
}

#: Relative agreement of two paths: round-off of differently ordered sums.
ROUND_OFF = 1e-10


def _nearly_complete(n_a: int = 400, n_b: int = 60, rows: int = 20_000) -> pd.DataFrame:
    """``rows`` observations on random cells of an ``n_a × n_b`` crossing (56% of the cells).

    ``b`` carries a random slope in ``x``, so the trailing blocks are ``2 × 2``.
    """
    rng = np.random.default_rng(7)
    a = rng.integers(0, n_a, rows)
    b = rng.integers(0, n_b, rows)
    x = rng.standard_normal(rows)
    y = (
        2.0
        + 0.5 * x
        + rng.normal(0, 1.0, n_a)[a]
        + rng.normal(0, 0.5, n_b)[b]
        + rng.normal(0, 0.3, n_b)[b] * x
        + rng.standard_normal(rows)
    )
    return pd.DataFrame({"y": y, "x": x, "a": a.astype(str), "b": b.astype(str)})


def _data(dataset: str) -> pd.DataFrame:
    if dataset == "simulated":
        return _nearly_complete()
    data = hm.datasets.load(dataset)
    if dataset == "sleepstudy":
        data = data.assign(Days_factor=data["Days"].astype(str))
    return data


CASES = {
    "penicillin": ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "sleepstudy crossed": (
        "sleepstudy",
        "Reaction ~ Days + (Days | Subject) + (1 | Days_factor)",
    ),
    "simulated 400 x 60": ("simulated", "y ~ x + (1 | a) + (x | b)"),
}

SLOW_CASES = {
    "insteval": ("insteval", "y ~ 1 + (1 | s) + (1 | d) + (1 | dept:service)"),
}


def _forced(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    for name, value in PATHS[path].items():
        monkeypatch.setattr(blocked, name, value)


def _on_path(monkeypatch: pytest.MonkeyPatch, path: str, make: Callable[[], MixedFit]) -> MixedFit:
    """``make()`` with the thresholds forcing ``path``, restored afterwards."""
    with monkeypatch.context() as patched:
        _forced(patched, path)
        if path == "as they come":
            with pytest.warns(UserWarning, match="crossed almost completely"):
                return make()
        return make()


def _assert_same_fit(fit: MixedFit, reference: MixedFit) -> None:
    # the optimiser stops where the gradient is small: round-off of the gradient moves
    # that point by about 1e-10 of θ's scale (more, relatively, for its small entries)
    theta_scale = np.max(np.abs(reference.theta))
    np.testing.assert_allclose(fit.theta, reference.theta, rtol=1e-9, atol=1e-9 * theta_scale)
    np.testing.assert_allclose(fit.fixef, reference.fixef, rtol=ROUND_OFF)
    assert fit.loglik == pytest.approx(reference.loglik, rel=1e-12)
    frame, expected = fit.ranef_frame(), reference.ranef_frame()
    scale = np.max(np.abs(expected["condval"]))
    np.testing.assert_allclose(frame["condval"], expected["condval"], rtol=1e-8, atol=1e-9 * scale)
    np.testing.assert_allclose(frame["condsd"], expected["condsd"], rtol=1e-8)


def _fit_on(monkeypatch: pytest.MonkeyPatch, path: str, dataset: str, formula: str) -> MixedFit:
    data = _data(dataset)
    return _on_path(monkeypatch, path, lambda: hm.Model(formula, data).fit_mle())


@pytest.mark.parametrize("case", sorted(CASES))
def test_pairs_met_as_they_come_give_the_indexed_fit(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, formula = CASES[case]
    indexed = _fit_on(monkeypatch, "indexed", dataset, formula)
    fit = _fit_on(monkeypatch, "as they come", dataset, formula)
    assert fit.layout.pattern.pp_a.size == 0
    assert not fit.layout.pattern.dense_coupling
    _assert_same_fit(fit, indexed)


def _deviance_on(
    monkeypatch: pytest.MonkeyPatch, path: str, dataset: str, formula: str, reml: bool
) -> LmmDeviance:
    """The criterion of a fresh design (whose layout is built on ``path``)."""
    design = hm.Model(formula, _data(dataset))._design
    design = Standardization.of(design).apply(design)
    with monkeypatch.context() as patched:
        _forced(patched, path)
        return profiled_deviance(design, reml=reml)


def _criteria_agree(dense: LmmDeviance, pairs: LmmDeviance, rng: np.random.Generator) -> None:
    for _ in range(3):
        theta = dense.layout.theta.start() * rng.uniform(0.3, 1.5)
        value, gradient = dense.value_and_gradient(theta)
        expected_value, expected_gradient = pairs.value_and_gradient(theta)
        assert value == pytest.approx(expected_value, rel=ROUND_OFF)
        # the gradient's entries are differences of terms of the size of n_k / T
        scale = np.max(np.abs(expected_gradient)) + dense.nobs
        np.testing.assert_allclose(gradient, expected_gradient, rtol=0, atol=ROUND_OFF * scale)
        np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-7)
        solution, expected = dense.solve(theta), pairs.solve(theta)
        # a standardised design: the response has unit scale, the intercept is near zero
        np.testing.assert_allclose(solution.beta, expected.beta, rtol=ROUND_OFF, atol=ROUND_OFF)
        np.testing.assert_allclose(solution.u_lead, expected.u_lead, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(solution.u_rest, expected.u_rest, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(solution.factor.l22, expected.factor.l22, rtol=1e-9, atol=1e-12)


def _dense_case(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset, formula = {**CASES, **SLOW_CASES}[case]
    for reml in (True, False):
        dense = _deviance_on(monkeypatch, "dense", dataset, formula, reml)
        pairs = _deviance_on(monkeypatch, "indexed", dataset, formula, reml)
        assert dense.layout.pattern.dense_coupling
        assert not pairs.layout.pattern.dense_coupling
        _criteria_agree(dense, pairs, np.random.default_rng(3))
    indexed = _fit_on(monkeypatch, "indexed", dataset, formula)
    fit = _fit_on(monkeypatch, "dense", dataset, formula)
    assert fit.layout.pattern.dense_coupling
    _assert_same_fit(fit, indexed)


@pytest.mark.parametrize("case", sorted(CASES))
def test_dense_coupling_gives_the_pair_criterion_and_fit(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dense_case(case, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(SLOW_CASES))
def test_every_path_gives_the_indexed_fit_on_insteval(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, formula = SLOW_CASES[case]
    _dense_case(case, monkeypatch)
    indexed = _fit_on(monkeypatch, "indexed", dataset, formula)
    _assert_same_fit(_fit_on(monkeypatch, "as they come", dataset, formula), indexed)


def _poisson_crossing() -> pd.DataFrame:
    """Counts on 56% of the cells of a 200 × 30 crossing, ``a`` with a random slope."""
    rng = np.random.default_rng(11)
    rows = 3_000
    a = rng.integers(0, 200, rows)
    b = rng.integers(0, 30, rows)
    x = rng.standard_normal(rows)
    eta = 0.5 + (0.3 + rng.normal(0, 0.2, 200)[a]) * x + rng.normal(0, 0.5, 200)[a]
    eta += rng.normal(0, 0.4, 30)[b]
    return pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "a": a, "b": b})


def test_laplace_fit_on_the_dense_coupling_is_the_pair_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PIRLS factorises in the same kernel, and the Laplace gradient takes the
    # selected inverse (its coupling blocks too) from the dense product
    data = _poisson_crossing()
    formula = "y ~ x + (x | a) + (1 | b)"

    def make() -> MixedFit:
        return hm.Model(formula, data, family="poisson").fit_mle()

    indexed = _on_path(monkeypatch, "indexed", make)
    fit = _on_path(monkeypatch, "dense", make)
    assert fit.layout.pattern.dense_coupling
    assert not indexed.layout.pattern.dense_coupling
    _assert_same_fit(fit, indexed)


def test_gaussian_likelihood_on_the_dense_coupling_is_the_pair_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dataset, formula = CASES["simulated 400 x 60"]
    dense = GaussianLikelihood(_deviance_on(monkeypatch, "dense", dataset, formula, False))
    pairs = GaussianLikelihood(_deviance_on(monkeypatch, "indexed", dataset, formula, False))
    assert dense.layout.pattern.dense_coupling
    theta = dense.layout.theta.start() * 0.7
    beta = np.array([0.1, 0.4])
    value, d_beta, d_theta, d_sigma = dense.value_and_gradient(beta, theta, 0.8)
    expected = pairs.value_and_gradient(beta, theta, 0.8)
    assert value == pytest.approx(expected[0], rel=ROUND_OFF)
    scale = dense.deviance.nobs
    np.testing.assert_allclose(d_beta, expected[1], rtol=0, atol=ROUND_OFF * scale)
    np.testing.assert_allclose(d_theta, expected[2], rtol=0, atol=ROUND_OFF * scale)
    assert d_sigma == pytest.approx(expected[3], rel=ROUND_OFF, abs=ROUND_OFF * scale)


def _pattern(formula: str, data: pd.DataFrame) -> blocked.BlockPattern:
    return ReLayout.from_design(hm.Model(formula, data)._design).pattern


def test_the_rule_holds_nearly_complete_crossings_densely_and_sparse_ones_in_pairs() -> None:
    def dense(rows: int) -> bool:
        data = _nearly_complete(n_a=1_000, n_b=200, rows=rows)
        return _pattern("y ~ x + (1 | a) + (1 | b)", data).dense_coupling

    assert dense(160_000)  # 55% of the cells
    assert dense(32_000)  # 15%: a level reaches over the rule's 1/8 of the trailing rows
    assert not dense(4_000)  # 2%: the pairs cost less
    classroom = hm.datasets.load("classroom")
    nested = _pattern("mathgain ~ 1 + (1 | schoolid/classid)", classroom)
    assert not nested.dense_coupling
    assert nested.pp_a.size > 0
    # complete, but too small for the dense products to pay for a BLAS call
    penicillin = _pattern(CASES["penicillin"][1], hm.datasets.load("penicillin"))
    assert not penicillin.dense_coupling


def test_a_dense_coupling_over_the_memory_budget_keeps_the_pairs_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = _nearly_complete()
    # L₂₁ and C₂₂⁻¹L₂₁: 2 × 60 × 400 doubles of (x | b)'s 120 trailing rows
    needed = 2 * 8 * 120 * 400
    monkeypatch.setattr(blocked, "MIN_DENSE_COUPLING_WORK", 0)
    monkeypatch.setattr(blocked, "MAX_DENSE_COUPLING_BYTES", needed)
    assert _pattern("y ~ x + (1 | a) + (x | b)", data).dense_coupling
    monkeypatch.setattr(blocked, "MAX_DENSE_COUPLING_BYTES", needed - 1)
    assert _pattern("y ~ x + (1 | a) + (x | b)", data).pp_a.size > 0
    monkeypatch.setattr(blocked, "MAX_PAIR_PRODUCTS", 0)
    with pytest.warns(UserWarning, match=r"dense matrix would take 0\.0 GiB, over the budget"):
        pattern = _pattern("y ~ x + (1 | a) + (x | b)", data)
    assert not pattern.dense_coupling
    assert pattern.pp_a.size == 0
