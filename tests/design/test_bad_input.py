"""Awkward input from a user's sweep: each case gets the right answer or a clear message.

Level labels that contain ':', grouping factors named like the model's own
variables, repeated random-effect terms, responses that leave nothing to
estimate, and covariates in extreme units.
"""

from __future__ import annotations

import dataclasses
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.bayes.build import build_pymc_model
from hiermodels.design._names import RESERVED_NAMES
from hiermodels.design.design import build_design
from hiermodels.design.newdata import level_codes_for
from hiermodels.errors import DesignError, FormulaError


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return hm.datasets.load("sleepstudy")


def _toy(n_groups: int = 8, per_group: int = 6, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_groups * per_group
    g = np.repeat(np.arange(n_groups), per_group)
    effects = rng.normal(size=n_groups)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "y": 1.0 + 0.5 * x + effects[g] + rng.normal(scale=0.5, size=n),
            "x": x,
            "g": [f"g{k}" for k in g],
        }
    )


# --- 1. level labels containing ':' in nested factors -------------------------------------


def _colon_levels(seed: int = 1) -> pd.DataFrame:
    """Outer factor ``a`` and inner ``b`` whose joined labels collide: p:1 + 2 and p + 1:2."""
    rng = np.random.default_rng(seed)
    pairs = [("p:1", "2"), ("p", "1:2"), ("p", "3"), ("q", "1"), ("q", "2"), ("r", "4")]
    rows = []
    for a, b in pairs:
        shift = rng.normal(scale=2.0)
        for _ in range(6):
            rows.append({"a": a, "b": b, "y": 10.0 + shift + rng.normal()})
    return pd.DataFrame(rows)


def test_interaction_levels_are_tuples_not_joined_text() -> None:
    data = _colon_levels()
    design = build_design("y ~ 1 + (1 | a/b)", data, "gaussian")
    inner = design.blocks[1]
    assert inner.group == "a:b"
    assert inner.n_levels == 6, inner.levels
    assert len(set(inner.levels)) == 6
    # the two combinations that read alike when joined keep readable, distinct labels
    assert "(p:1):2" in inner.levels and "p:(1:2)" in inner.levels
    first = data.index[(data["a"] == "p:1") & (data["b"] == "2")]
    second = data.index[(data["a"] == "p") & (data["b"] == "1:2")]
    assert inner.codes[first[0]] != inner.codes[second[0]]


def test_labels_stay_plain_when_joined_text_does_not_collide() -> None:
    data = _colon_levels()
    data = data[data["a"] != "p:1"]
    design = build_design("y ~ 1 + (1 | a/b)", data, "gaussian")
    assert "p:1:2" in design.blocks[1].levels


def test_level_codes_for_new_data_agree_with_the_fit() -> None:
    data = _colon_levels()
    design = build_design("y ~ 1 + (1 | a/b)", data, "gaussian")
    for block in design.blocks:
        codes, labels = level_codes_for(block, data)
        np.testing.assert_array_equal(codes, block.codes)
        assert labels == [block.levels[c] for c in block.codes]
    unseen = pd.DataFrame({"a": ["p:1"], "b": ["1:2"]})
    codes, labels = level_codes_for(design.blocks[1], unseen)
    assert codes.tolist() == [-1] and labels == ["(p:1):(1:2)"]


@pytest.mark.filterwarnings("ignore::hiermodels.errors.SingularFitWarning")  # outer sd is 0
def test_predict_on_the_data_equals_fitted_with_colon_levels() -> None:
    data = _colon_levels()
    fit = hm.Model("y ~ 1 + (1 | a/b)", data).fit_mle()
    modes = fit.ranef["a:b"]["Intercept"]
    # the two levels that once shared a label have different effects, so a mix-up shows
    assert abs(modes["(p:1):2"] - modes["p:(1:2)"]) > 0.1
    np.testing.assert_allclose(fit.predict(data).to_numpy(), fit.fitted().to_numpy(), rtol=1e-10)


@pytest.mark.filterwarnings("ignore::hiermodels.errors.SamplingWarning")  # 30 draws
def test_posterior_effects_keep_the_colon_levels_apart() -> None:
    data = _colon_levels()
    fit = hm.Model("y ~ 1 + (1 | a/b)", data).fit_bayes(
        draws=30, tune=30, chains=1, random_seed=2, progressbar=False
    )
    u = fit.posterior["u_a:b"]
    assert list(u["a:b"].values) == list(fit.design.blocks[1].levels)
    for label in ("(p:1):2", "p:(1:2)"):
        # a label shared by two levels would select both and keep the dimension
        assert u.sel({"a:b": label}).ndim == u.ndim - 1


def test_labels_that_cannot_be_told_apart_are_refused() -> None:
    # p:1 + 2 and p + 1:2 force the parenthesised form, in which ( + ):a and :( + a)
    # both read (:():a)
    a = ["p:1", "p", "(", ":("] * 6
    b = ["2", "1:2", "):a", "a)"] * 6
    data = pd.DataFrame({"a": a, "b": b, "y": np.arange(24.0) % 7})
    with pytest.raises(DesignError, match=r"grouping factor a:b both read .*change the labels"):
        build_design("y ~ 1 + (1 | a:b)", data, "gaussian")


# --- 2. grouping factors named like the model's own dimensions and variables ---------------


@pytest.mark.parametrize("name", sorted(RESERVED_NAMES))
def test_reserved_group_name_is_refused_when_the_model_is_made(sleep, name) -> None:
    data = sleep.assign(**{name: sleep["Subject"]})
    message = f"grouping factor '{name}' has a name hiermodels uses for"
    with pytest.raises(DesignError, match=re.escape(message)) as info:
        hm.Model(f"Reaction ~ Days + (1 | {name})", data)
    assert f"rename column '{name}'" in str(info.value)
    with pytest.raises(DesignError, match=re.escape(message)):
        build_design(f"Reaction ~ Days + (1 | {name})", data, "gaussian")


@pytest.mark.parametrize(
    ("formula", "group", "use"),
    [
        ("y ~ x + (1 | g) + (1 | u_g)", "u_g", "the random effects of 'g'"),
        ("y ~ x + (1 | g) + (1 | z_g)", "z_g", "the standardised random effects of 'g'"),
        ("y ~ x + (1 | g) + (1 | g__term)", "g__term", "the dimension of the terms of 'g'"),
        ("y ~ x + (x | g) + (1 | corr_g)", "corr_g", "the correlations of the terms of 'g'"),
        (
            "y ~ x + (1 | g) + (1 | sd_g__Intercept)",
            "sd_g__Intercept",
            "the standard deviation of 'Intercept' by 'g'",
        ),
        ("y ~ x + (1 | g) + (1 | beta__x)", "beta__x", "the prior of coefficient 'x'"),
    ],
)
def test_group_name_derived_from_another_factor_is_refused(formula, group, use) -> None:
    data = _toy()
    data[group] = np.tile(["h1", "h2", "h3", "h4"], len(data) // 4)
    with pytest.raises(
        DesignError, match=re.escape(f"'{group}' has a name hiermodels uses for {use}")
    ):
        hm.Model(formula, data)


def test_reserved_interaction_name_names_the_columns() -> None:
    data = _toy()
    data["u_g"] = np.tile(["h1", "h2"], len(data) // 2)
    data["k"] = np.tile(["k1", "k2", "k3"], len(data) // 3)
    # (1 | g:k) has the group name 'g:k'; 'u_g:k' is an interaction of u_g and k
    with pytest.raises(DesignError, match=r"one of the columns 'u_g', 'k'"):
        build_design("y ~ x + (1 | g:k) + (1 | u_g:k)", data, "gaussian")


@pytest.mark.parametrize("name", ["coef", "obs", "y", "sigma", "chain"])
def test_pymc_builder_refuses_a_reserved_name_in_a_hand_made_design(name) -> None:
    design = build_design("y ~ x + (1 | g)", _toy(), "gaussian")
    block = dataclasses.replace(design.blocks[0], group=name, factors=(name,))
    renamed = dataclasses.replace(design, blocks=(block,))
    with pytest.raises(ValueError, match=f"grouping factor '{name}' has a name hiermodels"):
        build_pymc_model(renamed)


@pytest.mark.parametrize("name", ["u_g", "sd", "term", "draws", "Intercept", "coefs"])
def test_names_that_do_not_clash_just_work(name) -> None:
    data = _toy().rename(columns={"g": name})
    model = hm.Model(f"y ~ x + (x | {name})", data)
    graph = model.pymc_model()
    assert name in graph.coords and f"u_{name}" in graph.named_vars


def test_a_near_reserved_group_name_samples() -> None:
    data = _toy().rename(columns={"g": "u_g"})
    fit = hm.Model("y ~ x + (1 | u_g)", data).fit_bayes(
        draws=30, tune=30, chains=1, random_seed=1, progressbar=False
    )
    assert fit.posterior["u_u_g"].sizes["u_g"] == 8


# --- 3. repeated random-effect terms -------------------------------------------------------


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        (
            "y ~ x + (1 | g) + (1 | g)",
            "term 'Intercept' vary by 'g' more than once: in (1 | g), which appears twice",
        ),
        ("y ~ x + (x | g) + (x | g)", "terms 'Intercept', 'x' vary by 'g' more than once"),
        (
            "y ~ x + (1 | g) + (1 + x | g)",
            "term 'Intercept' vary by 'g' more than once: in (1 | g) and (1 + x | g)",
        ),
        ("y ~ x + (x || g) + (0 + x | g)", "term 'x' vary by 'g' more than once"),
        ("y ~ x + (1 | h/g) + (1 | h)", "term 'Intercept' vary by 'h' more than once"),
        ("y ~ x + (1 | h:g) + (1 | g:h)", "(1 | h:g) and (1 | g:h) group by the same factor"),
    ],
)
def test_repeated_random_terms_are_refused(formula, message) -> None:
    data = _toy().assign(h=lambda d: np.where(d["g"].isin(["g0", "g1", "g2", "g3"]), "A", "B"))
    with pytest.raises(DesignError, match=re.escape(message)):
        hm.Model(formula, data)


def test_terms_split_over_blocks_are_fine() -> None:
    design = build_design("y ~ x + (1 | g) + (0 + x | g)", _toy(), "gaussian")
    assert [b.terms for b in design.blocks] == [("Intercept",), ("x",)]


# --- 4. responses that leave nothing to estimate -------------------------------------------


def test_constant_gaussian_response_is_refused(sleep) -> None:
    data = sleep.assign(Reaction=250.0)
    with pytest.raises(
        DesignError, match=r"the response 'Reaction' is constant \(250\) in all 180 rows"
    ):
        hm.Model("Reaction ~ Days + (1 | Subject)", data)


def test_gaussian_response_constant_after_the_offset_is_refused(sleep) -> None:
    data = sleep.assign(Reaction=sleep["Days"] * 2.0)
    with pytest.raises(DesignError, match=r"constant .* after subtracting the offset"):
        build_design(
            "Reaction ~ 1 + (1 | Subject)", data, "gaussian", offset=data["Days"].to_numpy() * 2.0
        )


def test_varying_response_with_an_offset_is_fine(sleep) -> None:
    data = sleep.assign(Reaction=250.0)
    design = build_design("Reaction ~ 1 + (1 | Subject)", data, "gaussian", offset="Days")
    assert design.nobs == 180


@pytest.mark.parametrize("family", ["poisson", "negativebinomial"])
def test_all_zero_counts_are_refused(family) -> None:
    data = _toy().assign(k=0)
    with pytest.raises(DesignError, match=rf"the response 'k' is 0 in all 48 rows; a {family}"):
        hm.Model("k ~ x + (1 | g)", data, family=family)


@pytest.mark.parametrize(("value", "outcome"), [(0, "no successes"), (1, "only successes")])
def test_bernoulli_with_one_outcome_is_refused(value, outcome) -> None:
    data = _toy().assign(b=value)
    with pytest.raises(DesignError, match=rf"the response 'b' has {outcome} .* in all 48 rows"):
        hm.Model("b ~ x + (1 | g)", data, family="bernoulli")


def test_binomial_with_one_outcome_is_refused() -> None:
    cbpp = hm.datasets.load("cbpp")
    all_failures = cbpp.assign(incidence=0)
    with pytest.raises(DesignError, match="has no successes"):
        hm.Model(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", all_failures, "binomial"
        )
    all_successes = cbpp.assign(incidence=cbpp["size"])
    with pytest.raises(DesignError, match=re.escape("has only successes (y = trials)")):
        hm.Model(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)", all_successes, "binomial"
        )


def test_a_few_zeros_or_one_outcome_per_group_is_fine() -> None:
    data = _toy().assign(k=lambda d: np.where(d["g"] == "g0", 0, 1 + np.arange(len(d)) % 3))
    assert hm.Model("k ~ x + (1 | g)", data, family="poisson").design.nobs == 48


# --- 5. rank detection does not depend on units --------------------------------------------


def _fixed_names(formula: str, data: pd.DataFrame) -> tuple[str, ...]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a rank-deficiency warning fails the test
        return build_design(formula, data, "gaussian").fixed_names


@pytest.mark.parametrize("k", range(-8, 9))
def test_a_rescaled_covariate_is_kept(sleep, k) -> None:
    data = sleep.assign(t=sleep["Days"] * 10.0**k)
    assert _fixed_names("Reaction ~ t + (1 | Subject)", data) == ("Intercept", "t")
    fit = hm.Model("Reaction ~ t + (1 | Subject)", data).fit_mle()
    # the slope carries the units: 10.467 per day whatever t is measured in
    np.testing.assert_allclose(fit.fixef["t"] * 10.0**k, 10.4673, rtol=1e-4)


def test_a_date_serial_number_is_kept(sleep) -> None:
    data = sleep.assign(t=44197 + sleep["Days"])
    assert _fixed_names("Reaction ~ t + (1 | Subject)", data) == ("Intercept", "t")
    fit = hm.Model("Reaction ~ t + (1 | Subject)", data).fit_mle()
    np.testing.assert_allclose(fit.fixef["t"], 10.4673, rtol=1e-4)


@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e8])
def test_a_truly_collinear_column_is_still_dropped(sleep, scale) -> None:
    data = sleep.assign(x=sleep["Days"] * scale, x2=2 * sleep["Days"] * scale + 3)
    with pytest.warns(UserWarning, match="rank deficient so dropping 1 column: x2"):
        design = build_design("Reaction ~ x + x2 + (1 | Subject)", data, "gaussian")
    assert design.fixed_names == ("Intercept", "x")


# --- 8. text typos in numeric columns, keyword and non-ASCII column names ------------------


def _with_typo(data: pd.DataFrame, column: str, row: int, value: str = "abc") -> pd.DataFrame:
    typo = data.astype({column: object})
    typo.loc[row, column] = value
    return typo


def test_a_typo_in_the_response_names_column_value_and_row(sleep) -> None:
    data = _with_typo(sleep, "Reaction", 17)
    message = (
        "column 'Reaction' (used in the response 'Reaction') holds numbers but also "
        "1 non-numeric value: 'abc' (rows: 17)"
    )
    with pytest.raises(DesignError, match=re.escape(message)):
        hm.Model("Reaction ~ Days + (1 | Subject)", data)
    with pytest.raises(DesignError, match=re.escape("1 non-numeric value: 'abc' (rows: 17)")):
        hm.Model("log(Reaction) ~ Days + (1 | Subject)", data)


def test_a_typo_in_a_binary_response_is_not_a_third_level() -> None:
    data = _toy().assign(b=lambda d: (d["x"] > 0).astype(int).astype(str))
    data.loc[4, "b"] = "?"
    with pytest.raises(DesignError, match=re.escape("1 non-numeric value: '?' (rows: 4)")):
        hm.Model("b ~ x + (1 | g)", data, family="bernoulli")


def test_a_typo_in_a_numeric_covariate_is_not_a_factor(sleep) -> None:
    data = _with_typo(_with_typo(sleep, "Days", 5), "Days", 9, "n/a?")
    message = "column 'Days' (used in the fixed effects '1 + Days') holds numbers but also "
    message += "2 non-numeric values: 'abc', 'n/a?' (rows: 5, 9)"
    with pytest.raises(DesignError, match=re.escape(message)):
        hm.Model("Reaction ~ Days + (1 | Subject)", data)
    with pytest.raises(DesignError, match=r"column 'Days' \(used in the random-effect term"):
        hm.Model("Reaction ~ 1 + (Days | Subject)", data)


def test_text_columns_that_are_categorical_stay_categorical(sleep) -> None:
    # a quarter of the entries are words: a category, not a typo
    dose = np.where(sleep["Days"] < 3, "high", (sleep["Days"] * 10).astype(str))
    design = build_design("Reaction ~ dose + (1 | Subject)", sleep.assign(dose=dose), "gaussian")
    assert "dose[T.high]" in design.fixed_names
    # an explicit Categorical is never second-guessed
    typo = _with_typo(sleep, "Days", 5).astype({"Days": "category"})
    assert len(build_design("Reaction ~ Days + (1 | Subject)", typo, "gaussian").fixed_names) == 11


@pytest.mark.parametrize(
    "formula",
    [
        "`yield` ~ `lambda` + (`lambda` | `class`)",
        "log(`yield`) ~ `lambda` + (1 | `class`)",
    ],
)
def test_keyword_column_names_work_in_backticks(sleep, formula) -> None:
    oats = sleep.rename(columns={"Reaction": "yield", "Days": "lambda", "Subject": "class"})
    design = build_design(formula, oats, "gaussian")
    assert design.groups == ("class",)
    assert design.nobs == 180
    target = np.log(oats["yield"]) if formula.startswith("log") else oats["yield"]
    np.testing.assert_allclose(design.y, target)


def test_a_bare_keyword_column_gets_the_backtick_hint(sleep) -> None:
    oats = sleep.rename(columns={"Reaction": "yield"})
    with pytest.raises(DesignError, match=re.escape("write the column in backticks, `yield`")):
        hm.Model("yield ~ Days + (1 | Subject)", oats)


def test_non_ascii_identifiers_work_without_backticks(sleep) -> None:
    data = sleep.rename(columns={"Subject": "Schüler", "Days": "élève"})
    data["Schule"] = (data["Schüler"].astype(int) % 3).astype(str)
    design = build_design("Reaction ~ élève + (élève | Schule/Schüler)", data, "gaussian")
    assert design.fixed_names == ("Intercept", "élève")
    assert design.groups == ("Schule", "Schule:Schüler")
    spaced = sleep.rename(columns={"Subject": "Schüler Nr"})
    assert build_design("Reaction ~ Days + (1 | `Schüler Nr`)", spaced, "gaussian").groups == (
        "Schüler Nr",
    )


def test_a_keyword_column_inside_a_transform_is_explained(sleep) -> None:
    oats = sleep.rename(columns={"Reaction": "yield", "Days": "lambda", "Subject": "class"})
    message = "the column 'lambda' is a Python keyword, which works in backticks on its own"
    with pytest.raises(FormulaError, match=re.escape(message)):
        hm.Model("`yield` ~ I(`lambda` ** 2) + (1 | `class`)", oats)


def _graph_names(graph) -> set[str]:
    return set(graph.named_vars) | set(graph.coords)


@pytest.mark.parametrize("family", ["gaussian", "negativebinomial"])
def test_every_name_the_graph_uses_is_refused_as_a_group_name(family) -> None:
    from hiermodels.bayes.marginal_graph import build_marginal_model
    from hiermodels.design._names import check_group_names

    data = _toy().assign(
        k=lambda d: np.arange(len(d)) % 5, h=lambda d: np.tile(["h1", "h2", "h3"], len(d) // 3)
    )
    response = "y" if family == "gaussian" else "k"
    design = build_design(f"{response} ~ x + (x | g) + (1 | h)", data, family)
    names = _graph_names(build_pymc_model(design))
    if family == "gaussian":
        one = build_design("y ~ x + (x | g)", data, family)
        names |= _graph_names(build_marginal_model(one))
    terms = {"g": ["Intercept", "x"], "h": ["Intercept"]}
    assert names - set(design.groups), "the graph has names of its own"
    for name in sorted(names - set(design.groups)):
        with pytest.raises(ValueError, match=re.escape(f"grouping factor {name!r} has a name")):
            check_group_names(design.fixed_names, {**terms, name: ["Intercept"]})
