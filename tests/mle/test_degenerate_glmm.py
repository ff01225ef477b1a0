"""Degenerate GLMM data: separation, groups at the boundary, all-zero Poisson groups.

Each case is simulated with a fixed seed; the checks assert the warning, what
it names, and the numbers that must still hold.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.design.design import RandomBlock
from hiermodels.errors import DegenerateDataWarning, FitError, SeparationWarning
from hiermodels.mle import laplace
from hiermodels.mle.degenerate import (
    certified_finite,
    group_problems,
    name_list,
    separated_columns,
)
from hiermodels.mle.fit import fit_glmm
from hiermodels.mle.glmm_stages import glm_start
from hiermodels.mle.lmm import solve_pls
from hiermodels.mle.response import GlmResponse

DATA_WARNINGS = (SeparationWarning, DegenerateDataWarning)


def _fit(formula: str, data: pd.DataFrame, family: str) -> tuple[hm.MixedFit, list]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = hm.Model(formula, data, family).fit_mle()
    return fit, caught


def _of(caught: list, category: type[Warning]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, category)]


def _binary_frame(seed: int, n_groups: int = 10, size: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), size)
    x = rng.normal(size=g.size)
    b = rng.normal(0.0, 0.8, n_groups)
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-(0.3 + 0.7 * x + b[g]))))
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]})


# ------------------------------------------------------------ fixed effects
def test_complete_separation_by_a_covariate_is_named() -> None:
    data = _binary_frame(1)
    data["y"] = (data["x"] > 0).astype(int)
    fit, caught = _fit("y ~ x + (1 | g)", data, "bernoulli")
    (message,) = _of(caught, SeparationWarning)
    # the culprit alone, then every estimate that runs off with it
    assert message.startswith("complete separation in the fixed effects: 'x' predicts every")
    assert "estimates of 'Intercept', 'x' are infinite" in message
    assert "fit_bayes" in message
    # the estimate really ran off: the warning is not a false alarm
    assert abs(fit.fixef["x"]) > 50


def test_quasi_separation_by_a_factor_level_names_its_column() -> None:
    data = _binary_frame(2)
    rng = np.random.default_rng(2)
    data["c"] = rng.choice(["a", "b", "c"], size=len(data))
    data.loc[data["c"] == "c", "y"] = 1
    fit, caught = _fit("y ~ x + c + (1 | g)", data, "bernoulli")
    (message,) = _of(caught, SeparationWarning)
    assert message.startswith("quasi-complete separation in the fixed effects: 'c[T.c]' ")
    assert "estimates of 'c[T.c]' are infinite" in message
    for column in ("'x'", "'c[T.b]'", "'Intercept'"):
        assert column not in message
    assert fit.fixef["c[T.c]"] > 8
    assert abs(fit.fixef["x"] - 0.7) < 0.5


def test_separation_by_a_combination_of_columns() -> None:
    """Neither column alone separates; their sum does."""
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=200), rng.normal(size=200)
    y = (x1 + x2 > 0).astype(float)
    response = GlmResponse("binomial", "logit", y, np.ones(200), np.zeros(200))
    x = np.column_stack([np.ones(200), x1, x2])
    for col in (x1, x2):
        alone = np.column_stack([np.ones(200), col])
        assert separated_columns(alone, ("Intercept", "x"), response) is None
    found = separated_columns(x, ("Intercept", "x1", "x2"), response)
    assert found is not None and found.complete
    assert found.columns == ("x1", "x2")
    assert found.infinite == ("Intercept", "x1", "x2")


def test_binomial_rows_with_both_outcomes_tie() -> None:
    """A row with some successes and some failures blocks every direction through it."""
    x = np.column_stack([np.ones(4), [-1.0, -0.5, 0.5, 1.0]])
    trials = np.full(4, 5.0)
    separated = GlmResponse("binomial", "logit", np.array([0.0, 0, 5, 5]), trials, np.zeros(4))
    mixed = GlmResponse("binomial", "logit", np.array([0.0, 2, 3, 5]), trials, np.zeros(4))
    assert separated_columns(x, ("Intercept", "x"), separated) is not None
    assert separated_columns(x, ("Intercept", "x"), mixed) is None


def test_poisson_level_with_only_zero_counts_is_separation() -> None:
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(12), 6)
    t = np.array(["a", "b", "c"])[g % 3]
    y = rng.poisson(np.exp(1.0 + rng.normal(0, 0.5, 12)[g]))
    y[t == "b"] = 0
    data = pd.DataFrame({"y": y, "t": t, "g": g.astype(str)})
    fit, caught = _fit("y ~ t + (1 | g)", data, "poisson")
    (message,) = _of(caught, SeparationWarning)
    assert message.startswith(
        "quasi-complete separation in the fixed effects: 't[T.b]' can drive the rate to zero"
    )
    assert "estimates of 't[T.b]' are infinite" in message and "'t[T.c]'" not in message
    assert fit.fixef["t[T.b]"] < -8
    assert math.isfinite(fit.fixef["t[T.c]"]) and abs(fit.fixef["t[T.c]"]) < 1.5


@pytest.mark.parametrize("family", ["binomial", "poisson"])
def test_a_glm_fit_certifies_finite_estimates_only_without_separation(family: str) -> None:
    """The certificate that spares the linear programmes never contradicts them.

    Small random data sets, many of them separated (few rows, strong effects,
    a level with one-sided responses), are judged both ways: whenever the
    GLM's maximum certifies the estimates finite the cone holds no direction,
    and most unseparated data sets are certified.
    """
    certified = unseparated = 0
    for seed in range(120):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(8, 40))
        x = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
        eta = x @ np.array([0.2, rng.normal(0, 3), rng.normal(0, 3)])
        if family == "binomial":
            trials = rng.integers(1, 4, n).astype(float)
            y = rng.binomial(trials.astype(int), 1 / (1 + np.exp(-eta))).astype(float)
        else:
            trials = np.ones(n)
            y = rng.poisson(np.exp(eta)).astype(float)
        response = GlmResponse(
            family, "logit" if family == "binomial" else "log", y, trials, np.zeros(n)
        )
        found = separated_columns(x, ("Intercept", "x", "t"), response)
        beta = glm_start(SimpleNamespace(X=x), response)  # type: ignore[arg-type]
        if certified_finite(x, response, x @ beta):
            certified += 1
            assert found is None, seed
        unseparated += found is None
    assert certified >= 0.8 * unseparated > 0


def test_ordinary_binary_data_are_not_separated() -> None:
    fit, caught = _fit("y ~ x + (1 | g)", _binary_frame(5), "bernoulli")
    assert not _of(caught, DATA_WARNINGS)
    assert np.all(np.isfinite(fit.fixef_se))


# ------------------------------------------------------- groups at the edge
def _one_group_all_ones(seed: int) -> pd.DataFrame:
    """Three groups of ten: one all successes, two (rare events) all failures.

    With every group at one end the marginal likelihood keeps rising with the
    SD; one group with both outcomes would give it a finite maximum.
    """
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(3), 10)
    y = (g == 0).astype(int)
    return pd.DataFrame({"y": y, "x": rng.normal(size=g.size), "g": [f"g{i}" for i in g]})


def test_quasi_separation_by_group_names_the_groups() -> None:
    data = _one_group_all_ones(0)
    fit, caught = _fit("y ~ x + (1 | g)", data, "bernoulli")
    sd = float(fit.varcorr["sdcor"].iloc[0])
    assert sd > 10  # the symptom the warning is about
    (message,) = _of(caught, SeparationWarning)
    assert message.startswith("quasi-separation by group")
    assert "'g0'" in message and f"the random-effect SD ran off to {sd:.3g}" in message
    assert "fit_bayes" in message


def test_shipped_glmm_data_with_all_zero_groups_stay_silent() -> None:
    """grouseticks has 22 broods and 8 locations with no ticks; cbpp fits cleanly."""
    cbpp = hm.datasets.load("cbpp")
    _, caught = _fit("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, "binomial")
    assert not _of(caught, DATA_WARNINGS)
    ticks = hm.datasets.load("grouseticks")
    fit, caught = _fit("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", ticks, "poisson")
    assert not _of(caught, DATA_WARNINGS)
    assert fit.varcorr["sdcor"].max() < 2
    brood = ticks.groupby("BROOD", observed=True)["TICKS"].sum()
    assert (brood == 0).sum() >= 10  # the data do have all-zero groups


def test_a_slope_in_small_units_is_judged_on_the_link_scale() -> None:
    """A slope SD of hundreds per unit of a covariate in thousandths is ordinary."""
    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(30), 8)
    x = rng.normal(size=g.size)
    b0, b1 = rng.normal(0, 0.7, 30), rng.normal(0, 0.6, 30)
    y = rng.binomial(1, 1 / (1 + np.exp(-(-1.5 + b0[g] + (0.5 + b1[g]) * x))))
    data = pd.DataFrame({"y": y, "xm": x / 1000, "g": [f"g{i:02d}" for i in g]})
    fit, caught = _fit("y ~ xm + (xm | g)", data, "bernoulli")
    assert float(fit.varcorr["sdcor"].iloc[1]) > 100  # per unit of xm
    share = data.groupby("g")["y"].mean()
    assert ((share == 0) | (share == 1)).sum() >= 3  # groups at the boundary exist
    assert not _of(caught, DATA_WARNINGS)


def test_many_separated_groups_are_listed_briefly() -> None:
    assert name_list(["a", "b"]) == "'a', 'b'"
    assert name_list([str(i) for i in range(9)]) == "'0', '1', '2', '3', '4' and 4 more"
    rng = np.random.default_rng(6)
    g = np.repeat(np.arange(16), 5)
    y = np.where(g < 8, 1, 0)
    y[(g == 15) & (np.arange(g.size) % 5 == 0)] = 1
    data = pd.DataFrame({"y": y, "x": rng.normal(size=g.size), "g": [f"h{i:02d}" for i in g]})
    _, caught = _fit("y ~ x + (1 | g)", data, "bernoulli")
    (message,) = _of(caught, SeparationWarning)
    assert "15 level(s) of 'g'" in message and "and 10 more" in message


# ------------------------------------------------------ all-zero Poisson groups
def _counts_with_zero_groups(seed: int, n_zero: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(20), 6)
    x = rng.normal(size=g.size)
    y = rng.poisson(1000.0 * np.exp(rng.normal(0.0, 0.5, 20)[g] + 0.3 * x))
    y[g < n_zero] = 0
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i:02d}" for i in g]})


def test_all_zero_poisson_groups_are_fitted_and_named() -> None:
    data = _counts_with_zero_groups(0, n_zero=2)
    fit, caught = _fit("y ~ x + (1 | g)", data, "poisson")
    (message,) = _of(caught, DegenerateDataWarning)
    assert "'g00', 'g01'" in message and "'g02'" not in message
    assert not _of(caught, SeparationWarning)
    modes = fit.ranef["g"]["Intercept"]
    assert modes[["g00", "g01"]].max() < -5
    assert np.all(np.isfinite(fit.fixef)) and np.all(np.isfinite(fit.fixef_se))
    # the groups with counts keep their fitted rates: the fit without the zero groups
    kept = data[~data["g"].isin(["g00", "g01"])]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateDataWarning)
        alone = hm.Model("y ~ x + (1 | g)", kept, "poisson").fit_mle()
    rows = ~data["g"].isin(["g00", "g01"]).to_numpy()
    np.testing.assert_allclose(fit.linear_predictor[rows], alone.linear_predictor, atol=0.02)
    assert fit.fixef["x"] == pytest.approx(alone.fixef["x"], abs=0.01)


def test_a_failing_factorisation_is_an_infinite_deviance_or_a_clear_error(monkeypatch) -> None:
    data = _counts_with_zero_groups(1, n_zero=0)
    design = hm.Model("y ~ x + (1 | g)", data, "poisson").design
    dev = laplace.laplace_deviance(design)
    assert math.isfinite(dev(np.array([1.0, 6.9, 0.3])))

    def singular(*args, **kwargs):
        raise np.linalg.LinAlgError("trailing block of ΛᵀZᵀWZΛ + I is not positive definite")

    monkeypatch.setattr(laplace, "conditional_mode", singular)  # PIRLS's factorisation fails
    assert dev(np.array([1.0, 6.9, 0.3])) == math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FitError, match="cannot be evaluated at the estimates") as err:
            fit_glmm(design)
    assert "ΛᵀZᵀWZΛ + I" in str(err.value) and "positive definite" not in str(err.value)


def test_a_failing_joint_step_falls_back_to_pirls_over_u() -> None:
    """Stage one's joint (β, u) step cannot factor an exactly fitted working response.

    Half the trials succeed in every row: at β = 0 and u = 0 the working
    response is 0, fitted exactly by the intercept, so the joint system's
    residual sum of squares is 0 and its factorisation fails; PIRLS over u
    at that β still works, and is the result.
    """
    codes = np.repeat(np.arange(6), 4)
    data = pd.DataFrame({"s": np.full(24, 5), "f": np.full(24, 5), "g": [f"g{c}" for c in codes]})
    design = hm.Model("cbind(s, f) ~ 1 + (1 | g)", data, "binomial").design
    dev = laplace.laplace_deviance(design)
    theta, beta = np.array([0.5]), np.array([0.0])
    expected = dev.pirls(theta, beta, None).deviance
    layout, weights = dev.layout, np.full(design.nobs, 2.5)  # 10 trials × 1/4
    xz = np.column_stack([design.X, np.zeros(design.nobs)])
    lead, rest = layout.z_transpose(xz, weights=weights)
    with pytest.raises(np.linalg.LinAlgError):  # the joint step is unavailable there
        solve_pls(layout, theta, layout.cross_products(weights), lead, rest, xz.T @ xz * 2.5)
    dev.warm_start.clear()
    result = dev.pirls_joint(theta, beta)
    np.testing.assert_array_equal(result.beta, beta)
    assert result.deviance == pytest.approx(expected, rel=1e-9)


def test_a_response_of_zeros_only_is_named_not_a_linear_algebra_error() -> None:
    """build_design refuses it; the engine reached directly once raised LinAlgError (potrf)."""
    data = _counts_with_zero_groups(3, n_zero=0)
    design = hm.Model("y ~ x + (1 | g)", data, "poisson").design
    zeros = dataclasses.replace(design, y=np.zeros(design.nobs))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_glmm(zeros)
    (message,) = _of(caught, SeparationWarning)
    assert "'Intercept' can drive the rate to zero" in message
    assert fit.fixef["Intercept"] < -10


def test_group_check_reads_sds_and_modes() -> None:
    """The decision on given estimates: which symptom names which groups."""
    codes = np.repeat(np.arange(4), 5)
    block = RandomBlock("g", ("g",), ("Intercept",), ("a", "b", "c", "d"), codes, np.ones((20, 1)))
    y = np.where(codes == 0, 1.0, 0.0)
    y[(codes >= 2) & (np.arange(20) % 5 == 0)] = 1.0  # b all failures, c and d mixed
    binary = GlmResponse("binomial", "logit", y, np.ones(20), np.zeros(20))
    modes = np.array([[12.0], [-1.0], [11.0], [0.5]])
    (problem,) = group_problems([block], [np.array([[9.0]])], [modes], binary)
    # only the boundary group whose mode ran off; 'c' ran off too but has both outcomes
    assert problem.separated == ("a",) and problem.sd == pytest.approx(3.0)
    calm = np.array([[4.0], [-1.0], [0.2], [0.5]])
    assert group_problems([block], [np.array([[9.0]])], [calm], binary) == []
    (problem,) = group_problems([block], [np.array([[144.0]])], [calm], binary)
    assert problem.separated == ("a", "b")  # a huge SD: every boundary group
    counts = GlmResponse("poisson", "log", np.where(codes < 2, 0.0, 3.0), np.ones(20), np.zeros(20))
    low = np.array([[-7.0], [-1.0], [0.3], [0.4]])
    (problem,) = group_problems([block], [np.array([[4.0]])], [low], counts)
    assert problem.uninformative == ("a",) and problem.separated == ()
    (problem,) = group_problems([block], [np.array([[144.0]])], [low], counts)
    assert problem.separated == ("a", "b") and problem.uninformative == ()
