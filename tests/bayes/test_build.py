"""The PyMC graph: names, dims, the joint density, correlation priors, fixed values."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pymc as pm
import pytest
from scipy import stats

from hiermodels.bayes import build_pymc_model, default_priors, fixed_value_keys
from hiermodels.bayes.build import CenteredShift
from hiermodels.bayes.priors import corr_matrix_from
from hiermodels.datasets import load
from hiermodels.design.design import Design, DesignError, build_design
from hiermodels.design.families import get_family


def _toy(seed: int = 3, n_groups: int = 12, per_group: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat([f"g{i}" for i in range(n_groups)], per_group)
    return pd.DataFrame(
        {
            "g": g,
            "x": rng.normal(size=g.size),
            "z": rng.normal(size=g.size),
            "y": rng.normal(size=g.size),
            "h": np.tile(["h0", "h1", "h2"], g.size // 3),
        }
    )


def _free(model: pm.Model) -> set[str]:
    return {rv.name for rv in model.free_RVs}


def _deterministic_value(model: pm.Model, name: str, point: dict) -> np.ndarray:
    """A Deterministic evaluated at a point of the value variables."""
    (graph,) = model.replace_rvs_by_values([model[name]])
    return model.compile_fn(graph, inputs=model.value_vars, on_unused_input="ignore")(point)


def test_sleepstudy_names_dims_and_coords(sleep_design: Design) -> None:
    model = build_pymc_model(sleep_design)
    assert _free(model) == {
        "beta",
        "sd_Subject__Intercept",
        "sd_Subject__Days",
        "corr_Subject__raw",
        "z_Subject",
        "sigma",
    }
    assert {d.name for d in model.deterministics} == {"corr_Subject", "u_Subject"}
    dims = model.named_vars_to_dims
    assert dims["beta"] == ("coef",)
    assert dims["z_Subject"] == dims["u_Subject"] == ("Subject", "Subject__term")
    assert dims["corr_Subject"] == ("Subject__term", "Subject__term_bis")
    assert dims["y"] == ("obs",)
    assert list(model.coords["coef"]) == ["Intercept", "Days"]
    assert list(model.coords["Subject__term"]) == ["Intercept", "Days"]
    assert list(model.coords["Subject"]) == list(sleep_design.blocks[0].levels)
    assert len(model.coords["Subject"]) == 18


def test_joint_density_matches_a_hand_computation(sleep_design: Design) -> None:
    """Priors (documented rule), non-centred effects and likelihood, summed with scipy."""
    model = build_pymc_model(sleep_design)
    priors = default_priors(sleep_design)
    rng = np.random.default_rng(0)
    beta, sds, r, sigma = np.array([250.0, 10.0]), np.array([20.0, 5.0]), 0.3, 24.0
    z = rng.normal(size=(18, 2))
    values = {
        "beta": beta,
        "sd_Subject__Intercept": sds[0],
        "sd_Subject__Days": sds[1],
        "corr_Subject__raw": (r + 1) / 2,
        "z_Subject": z,
        "sigma": sigma,
    }
    point = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        transform = model.rvs_to_transforms.get(rv)
        raw = np.asarray(values[rv.name], dtype=float)
        point[value.name] = raw if transform is None else transform.forward(raw).eval()
    logp = model.compile_logp(jacobian=False)(point)

    def half_t(x: float, key: str) -> float:
        return np.log(2) + stats.t.logpdf(x, df=3, scale=priors[key].params["sigma"])

    expected = sum(
        stats.norm.logpdf(
            beta[j], priors[f"beta__{c}"].params["mu"], priors[f"beta__{c}"].params["sigma"]
        )
        for j, c in enumerate(["Intercept", "Days"])
    )
    expected += half_t(sds[0], "sd_Subject__Intercept") + half_t(sds[1], "sd_Subject__Days")
    expected += half_t(sigma, "sigma")
    expected += stats.beta.logpdf((r + 1) / 2, 2.0, 2.0)  # LKJ(2) for q = 2
    expected += stats.norm.logpdf(z).sum()
    u = np.column_stack([sds[0] * z[:, 0], sds[1] * (r * z[:, 0] + np.sqrt(1 - r**2) * z[:, 1])])
    block = sleep_design.blocks[0]
    eta = sleep_design.X @ beta + np.sum(u[block.codes] * block.X, axis=1)
    expected += stats.norm.logpdf(sleep_design.y, eta, sigma).sum()
    assert logp == pytest.approx(expected, rel=1e-10)
    u_graph = _deterministic_value(model, "u_Subject", point)
    np.testing.assert_allclose(u_graph, u, rtol=1e-10)


def test_centering_transform_is_a_unit_jacobian_shear() -> None:
    shift = CenteredShift(0, np.array([0.0, 4.5, -2.0]))
    beta = np.array([250.0, 10.0, 3.0])
    centred = shift.forward(beta).eval()
    np.testing.assert_allclose(centred, [250.0 + 45.0 - 6.0, 10.0, 3.0])
    np.testing.assert_allclose(shift.backward(centred).eval(), beta)
    assert float(shift.log_jac_det(centred).eval()) == 0.0


def test_beta_is_sampled_in_centred_coordinates(sleep_design: Design) -> None:
    model = build_pymc_model(sleep_design)
    assert model.rvs_to_values[model["beta"]].name == "beta_centered__"
    no_intercept = build_design(
        "Reaction ~ 0 + Days + (1 | Subject)", load("sleepstudy"), "gaussian"
    )
    model = build_pymc_model(no_intercept)
    assert model.rvs_to_values[model["beta"]].name == "beta"


def _prior_var(model: pm.Model, name: str, i: int, j: int) -> float:
    draws = pm.draw(model[name], draws=4000, random_seed=5)
    return float(np.var(draws[:, i, j]))


def test_lkj_prior_marginals_for_two_and_three_terms() -> None:
    """LKJ(eta) off-diagonal marginal: (r + 1) / 2 ~ Beta(b, b), b = eta - 1 + q / 2.

    Its variance 1 / (2 b + 1) is 0.2 for q = 2 and 1/6 for q = 3 at eta = 2
    (Lewandowski, Kurowicka & Joe 2009).
    """
    data = _toy()
    two = build_pymc_model(build_design("y ~ x + (x | g)", data, "gaussian"))
    three = build_pymc_model(build_design("y ~ x + z + (x + z | g)", data, "gaussian"))
    assert _prior_var(two, "corr_g", 0, 1) == pytest.approx(0.2, abs=0.015)
    assert _prior_var(three, "corr_g", 0, 2) == pytest.approx(1 / 6, abs=0.015)
    assert isinstance(three["corr_g__raw"].owner.op, type(pm.LKJCorr.dist(n=3, eta=2.0).owner.op))


def test_blocks_on_one_factor_share_u_with_block_diagonal_correlation() -> None:
    design = build_design("y ~ x + (1 + x | g) + (0 + z | g)", _toy(), "gaussian")
    model = build_pymc_model(design)
    assert list(model.coords["g__term"]) == ["Intercept", "x", "z"]
    assert {"sd_g__Intercept", "sd_g__x", "sd_g__z", "corr_g__raw", "z_g"} <= _free(model)
    corr = pm.draw(model["corr_g"], draws=50, random_seed=1)
    assert np.all(corr[:, 0, 2] == 0) and np.all(corr[:, 1, 2] == 0)
    assert np.all(corr[:, 2, 2] == 1) and np.std(corr[:, 0, 1]) > 0.1


def test_double_bar_gives_independent_sds_without_correlation() -> None:
    design = build_design("y ~ x + (x || g)", _toy(), "gaussian")
    model = build_pymc_model(design)
    assert _free(model) == {"beta", "sd_g__Intercept", "sd_g__x", "z_g", "sigma"}
    assert "corr_g" not in model.named_vars
    assert list(model.coords["g__term"]) == ["Intercept", "x"]


def test_nested_and_crossed_factors_get_their_own_effects() -> None:
    data = _toy()
    nested = build_pymc_model(build_design("y ~ x + (1 | g/h)", data, "gaussian"))
    assert {"u_g", "u_g:h"} <= set(nested.named_vars)
    assert nested.named_vars_to_dims["u_g:h"] == ("g:h", "g:h__term")
    assert "g0:h0" in list(nested.coords["g:h"])
    crossed = build_pymc_model(build_design("y ~ x + (1 | g) + (1 | h)", data, "gaussian"))
    assert {"z_g", "z_h", "sd_g__Intercept", "sd_h__Intercept"} <= _free(crossed)


@pytest.mark.parametrize(
    ("family", "link", "op"),
    [
        ("bernoulli", "logit", "BernoulliRV"),
        ("bernoulli", "probit", "BernoulliRV"),
        ("poisson", "log", "PoissonRV"),
        ("negativebinomial", "log", "NegBinomialRV"),
    ],
)
def test_each_family_has_its_likelihood(family: str, link: str, op: str) -> None:
    data = _toy()
    data["y"] = (data["x"] > 0).astype(int)
    model = build_pymc_model(build_design("y ~ x + (1 | g)", data, get_family(family, link)))
    assert type(model["y"].owner.op).__name__ == op
    assert ("alpha" in model.named_vars) == (family == "negativebinomial")
    assert "sigma" not in model.named_vars


def test_binomial_cbind_uses_trials() -> None:
    data = _toy()
    data["s"] = np.arange(len(data)) % 5
    data["f"] = 4
    design = build_design("cbind(s, f) ~ x + (1 | g)", data, "binomial")
    model = build_pymc_model(design)
    n = model["y"].owner.inputs[2].eval()  # inputs: rng, size, n, p
    np.testing.assert_array_equal(n, data["s"] + 4)


# ------------------------------------------------------------ fixed values


def _all_fixed() -> dict[str, object]:
    """lme4's REML estimates for sleepstudy (tests/reference/lme4/sleepstudy_slope_reml.json)."""
    return {
        "sigma": 25.5917957216753,
        "sd_Subject__Intercept": 24.7406579949841,
        "sd_Subject__Days": 5.92213765889808,
        "corr_Subject": 0.0655512382381282,
    }


def test_fixed_hyperparameters_leave_only_beta_and_offsets_free(sleep_design: Design) -> None:
    model = build_pymc_model(sleep_design, fixed_values=_all_fixed())
    assert _free(model) == {"beta", "z_Subject"}
    assert float(model["sd_Subject__Days"].eval()) == pytest.approx(5.92213765889808)
    corr = model["corr_Subject"].eval()
    np.testing.assert_allclose(corr, [[1, 0.0655512382381282], [0.0655512382381282, 1]])
    with_beta = build_pymc_model(
        sleep_design, fixed_values={**_all_fixed(), "beta": [251.405, 10.467]}
    )
    assert _free(with_beta) == {"z_Subject"}
    np.testing.assert_allclose(with_beta["beta"].eval(), [251.405, 10.467])


def test_fixed_correlation_as_matrix_equals_off_diagonal(sleep_design: Design) -> None:
    layout = sleep_design.factors[0]
    np.testing.assert_array_equal(
        corr_matrix_from(layout, 0.3), corr_matrix_from(layout, [[1, 0.3], [0.3, 1]])
    )
    # a singular fit (|r| = 1) has a Cholesky factor too
    model = build_pymc_model(sleep_design, fixed_values={"corr_Subject": -1.0})
    assert "corr_Subject__raw" not in model.named_vars


@pytest.mark.parametrize(
    ("fixed", "message"),
    [
        (
            {"sd_Subject": 1.0},
            "unknown variable(s) ['sd_Subject']; valid keys: beta, sigma, "
            "sd_Subject__Intercept, sd_Subject__Days, corr_Subject",
        ),
        ({"sigma": -1.0}, "'sigma' must be a non-negative scalar"),
        ({"sd_Subject__Days": [1.0, 2.0]}, "'sd_Subject__Days' must be a non-negative scalar"),
        ({"beta": [1.0]}, "'beta' must have 2 entries (Intercept, Days)"),
        ({"corr_Subject": [0.1, 0.2]}, "needs 1 off-diagonal correlation(s), got 2"),
        ({"corr_Subject": [[1, 0.2], [0.3, 1]]}, "symmetric with a unit diagonal"),
        ({"corr_Subject": 1.5}, "must lie in [-1, 1]"),
    ],
)
def test_bad_fixed_values_are_named(sleep_design: Design, fixed: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        build_pymc_model(sleep_design, fixed_values=fixed)


def test_fixed_value_keys_list_every_hyperparameter(sleep_design: Design) -> None:
    assert fixed_value_keys(sleep_design) == (
        "beta",
        "sigma",
        "sd_Subject__Intercept",
        "sd_Subject__Days",
        "corr_Subject",
    )


# ------------------------------------------------------------- bad input


def test_reserved_dimension_name_for_a_factor_is_refused() -> None:
    # refused once, when the design is built (tests/design/test_bad_input.py has every name)
    data = _toy().rename(columns={"g": "coef"})
    with pytest.raises(ValueError, match="grouping factor 'coef' has a name hiermodels uses"):
        build_design("y ~ x + (1 | coef)", data, "gaussian")


def test_unknown_family_or_link_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown family 'tweedie'"):
        get_family("tweedie")
    with pytest.raises(ValueError, match="link 'log' is not available for family 'bernoulli'"):
        get_family("bernoulli", "log")


def test_non_integer_poisson_and_bernoulli_outside_unit_interval_are_refused() -> None:
    data = _toy()
    data["y"] = np.abs(data["y"])
    with pytest.raises(DesignError, match="poisson"):
        build_design("y ~ x + (1 | g)", data, "poisson")
    data["y"] = 2 * (data["x"] > 0)
    with pytest.raises(DesignError, match="bernoulli"):
        build_design("y ~ x + (1 | g)", data, "bernoulli")
