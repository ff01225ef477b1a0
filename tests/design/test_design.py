"""build_design on the shipped datasets, and every validation path with its message."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hiermodels.design.design import Design, DesignError, build_design
from hiermodels.design.families import get_family
from hiermodels.design.formula import parse_formula
from hiermodels.design.newdata import fixed_matrix_for

DATA = Path(__file__).resolve().parents[2] / "hiermodels" / "datasets" / "data"
SUBJECTS = "308 309 310 330 331 332 333 334 335 337 349 350 351 352 369 370 371 372".split()


def load(name: str) -> pd.DataFrame:
    """The shipped dataset, through the package loader when it is there."""
    try:
        from hiermodels.datasets import load as package_load
    except ImportError:  # pragma: no cover - the loader is written in parallel
        return pd.read_csv(DATA / f"{name}.csv")
    return package_load(name)


def design(formula: str, data: pd.DataFrame, family: str = "gaussian", **kw: object) -> Design:
    return build_design(parse_formula(formula), data, get_family(family), **kw)  # type: ignore[arg-type]


def raises(message: str) -> pytest.RaisesContext[DesignError]:
    return pytest.raises(DesignError, match=re.escape(message))


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return load("sleepstudy")


@pytest.fixture(scope="module")
def classroom() -> pd.DataFrame:
    return load("classroom")


@pytest.fixture
def toy() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 40
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "k": rng.poisson(3.0, size=n),
            "b": np.tile([0, 1], n // 2),
            "g": np.repeat([f"g{i}" for i in range(8)], n // 8),
        }
    )


# --- shipped datasets -----------------------------------------------------------------


def test_sleepstudy_slope_model(sleep: pd.DataFrame) -> None:
    d = design("Reaction ~ Days + (Days | Subject)", sleep)
    assert d.X.shape == (180, 2)
    assert d.fixed_names == ("Intercept", "Days")
    np.testing.assert_array_equal(d.X[:, 1], sleep["Days"].to_numpy(dtype=float))
    np.testing.assert_array_equal(d.y, sleep["Reaction"].to_numpy(dtype=float))
    assert d.nobs == 180 and d.trials is None and d.offset is None
    assert d.dropped_columns == ()
    assert d.rows.equals(sleep.index)
    (block,) = d.blocks
    assert block.group == "Subject" and block.factors == ("Subject",)
    assert block.levels == tuple(SUBJECTS)
    assert block.terms == ("Intercept", "Days")
    assert block.n_levels == 18 and block.n_terms == 2
    assert block.codes.dtype == np.int64
    labels = np.array(block.levels)[block.codes]
    np.testing.assert_array_equal(labels, sleep["Subject"].astype(str).to_numpy())
    np.testing.assert_array_equal(block.X, d.X)


def test_sleepstudy_Z_is_level_major(sleep: pd.DataFrame) -> None:
    d = design("Reaction ~ Days + (Days | Subject)", sleep)
    Z = d.blocks[0].Z().toarray()
    assert Z.shape == (180, 36)
    row = 15  # subject "309", day 5
    level = SUBJECTS.index(str(sleep["Subject"].iloc[row]))
    assert Z[row, 2 * level] == 1.0
    assert Z[row, 2 * level + 1] == sleep["Days"].iloc[row]
    assert np.count_nonzero(Z[row]) == (2 if sleep["Days"].iloc[row] else 1)
    assert d.Z().shape == (180, 36)


def test_raw_csv_integer_subjects_give_the_same_labels(sleep: pd.DataFrame) -> None:
    raw = pd.read_csv(DATA / "sleepstudy.csv")
    assert raw["Subject"].dtype.kind == "i"
    assert design("Reaction ~ Days + (1 | Subject)", raw).blocks[0].levels == tuple(SUBJECTS)


def test_uncorrelated_terms_make_two_blocks_on_subject(sleep: pd.DataFrame) -> None:
    d = design("Reaction ~ Days + (Days || Subject)", sleep)
    assert [(b.group, b.terms) for b in d.blocks] == [
        ("Subject", ("Intercept",)),
        ("Subject", ("Days",)),
    ]
    assert d.groups == ("Subject",)
    np.testing.assert_array_equal(d.blocks[1].X[:, 0], sleep["Days"].to_numpy(dtype=float))
    assert d.Z().shape == (180, 36)


def test_classroom_nested_blocks(classroom: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # mathknow has NAs but is not used: nothing dropped
        d = design("mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)", classroom)
    assert d.X.shape == (1190, 5)
    assert d.fixed_names == ("Intercept", "mathkind", "sex", "minority", "ses")
    school, klass = d.blocks
    assert (school.group, school.n_levels) == ("schoolid", 107)
    assert (klass.group, klass.n_levels) == ("schoolid:classid", 312)
    assert klass.factors == ("schoolid", "classid")
    assert school.levels[:3] == ("1", "2", "3")
    assert klass.levels[:3] == ("1:160", "1:217", "2:197")
    expected = classroom["schoolid"].astype(str) + ":" + classroom["classid"].astype(str)
    np.testing.assert_array_equal(np.array(klass.levels)[klass.codes], expected.to_numpy())


def test_cbpp_binomial_with_cbind() -> None:
    cbpp = load("cbpp")
    cbpp["period"] = cbpp["period"].astype(str).astype("category")
    d = design("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, "binomial")
    assert d.fixed_names == ("Intercept", "period[T.2]", "period[T.3]", "period[T.4]")
    assert d.X.shape == (56, 4)
    np.testing.assert_array_equal(d.y, cbpp["incidence"].to_numpy(dtype=float))
    assert d.trials is not None
    np.testing.assert_array_equal(d.trials, cbpp["size"].to_numpy(dtype=float))
    assert d.blocks[0].n_levels == 15
    np.testing.assert_array_equal(d.X[:, 1], (cbpp["period"].astype(str) == "2").to_numpy())


def test_grouseticks_crossed_poisson() -> None:
    ticks = load("grouseticks")
    for col in ("BROOD", "INDEX", "LOCATION", "YEAR"):
        ticks[col] = ticks[col].astype(str).astype("category")
    d = design(
        "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
        ticks,
        "poisson",
    )
    assert d.fixed_names == ("Intercept", "YEAR[T.96]", "YEAR[T.97]", "scale(HEIGHT)")
    assert [(b.group, b.n_levels) for b in d.blocks] == [
        ("BROOD", 118),
        ("INDEX", 403),  # one level per observation: allowed without a residual variance
        ("LOCATION", 63),
    ]
    height = ticks["HEIGHT"].to_numpy(dtype=float)
    expected = (height - height.mean()) / height.std(ddof=1)
    np.testing.assert_allclose(d.X[:, 3], expected)
    assert d.Z().shape == (403, 118 + 403 + 63)


def test_an_observation_level_effect_is_refused_for_gaussian_data() -> None:
    ticks = load("grouseticks")
    with raises(
        "grouping factor 'INDEX' has 403 levels for 403 observations; its random effects "
        "are not identifiable from the residual variance — remove the term or use a "
        "non-Gaussian family"
    ):
        design("TICKS ~ 1 + (1 | INDEX)", ticks)


def test_too_many_random_effects_for_the_observations(sleep: pd.DataFrame) -> None:
    two_days = sleep[sleep["Days"].isin([1, 9])]
    with raises(
        "random-effect term (Intercept + Days | Subject) has 36 random effects "
        "(18 levels × 2 columns) for 36 observations; they are not identifiable from the "
        "residual variance"
    ):
        design("Reaction ~ Days + (Days | Subject)", two_days)
    assert design("Reaction ~ Days + (1 | Subject)", two_days).blocks[0].n_levels == 18


def test_single_level_grouping_factor(toy: pd.DataFrame) -> None:
    toy["one"] = "a"
    with raises("grouping factor 'one' has 1 level; a random effect needs at least 2"):
        design("y ~ x + (1 | one)", toy)


# --- formula pieces evaluated ---------------------------------------------------------


def test_I_power_equals_square(toy: pd.DataFrame) -> None:
    d = design("y ~ x + I(x^2) + (1 | g)", toy)
    assert d.fixed_names == ("Intercept", "x", "I(x ** 2)")
    np.testing.assert_allclose(d.X[:, 2], toy["x"].to_numpy() ** 2)


def test_no_intercept_and_transforms(toy: pd.DataFrame) -> None:
    d = design("log(k + 1) ~ 0 + x + np.exp(z) + (0 + x | g)", toy)
    assert d.fixed_names == ("x", "np.exp(z)")
    np.testing.assert_allclose(d.y, np.log(toy["k"].to_numpy() + 1.0))
    np.testing.assert_allclose(d.X[:, 1], np.exp(toy["z"].to_numpy()))
    assert d.blocks[0].terms == ("x",)


def test_string_column_gets_treatment_contrasts(toy: pd.DataFrame) -> None:
    toy["f"] = np.tile(["lo", "mid", "hi", "mid"], 10)
    d = design("y ~ f + (1 | g)", toy)
    assert d.fixed_names == ("Intercept", "f[T.lo]", "f[T.mid]")
    np.testing.assert_array_equal(d.X[:, 2], (toy["f"] == "mid").to_numpy())


def test_categorical_covariate_in_random_term(toy: pd.DataFrame) -> None:
    toy["f"] = pd.Categorical(np.tile(["u", "v"], 20))
    d = design("y ~ f + (0 + f | g)", toy)
    assert d.blocks[0].terms == ("f[u]", "f[v]")
    assert d.blocks[0].X.shape == (40, 2)


def test_random_term_covariate_must_be_numeric_or_categorical(toy: pd.DataFrame) -> None:
    toy["when"] = pd.date_range("2024-01-01", periods=40)
    message = (
        r"column 'when' used in the random-effect term \(0 \+ when \| g\) has dtype "
        r"datetime64\[\w+\]; covariates must be numeric or categorical"
    )
    with pytest.raises(DesignError, match=message):
        design("y ~ 1 + (0 + when | g)", toy)


def test_non_finite_fixed_column_is_an_error_not_a_dropped_row(toy: pd.DataFrame) -> None:
    toy["z"] = toy["z"].abs() + 1.0
    toy.loc[[3, 7], "z"] = [-1.0, 0.0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log of 0 and of a negative number
        with raises(
            "column 'log(z)' of the fixed effects '1 + log(z)' has 2 non-finite values "
            "(first rows: 3, 7)"
        ):
            design("y ~ log(z) + (1 | g)", toy)
        with raises(
            "column 'log(z)' of the random-effect term (0 + log(z) | g) has 2 non-finite values"
        ):
            design("y ~ 1 + (0 + log(z) | g)", toy)


# --- level labels ---------------------------------------------------------------------


def levels_of(values: object, n: int = 12) -> tuple[str, ...]:
    frame = pd.DataFrame({"y": np.arange(n, dtype=float), "h": values})
    return design("y ~ 1 + (1 | h)", frame, "poisson").blocks[0].levels


def test_levels_of_integer_valued_floats_drop_the_trailing_zero() -> None:
    assert levels_of(np.tile([10.0, 2.0, 1.0], 4)) == ("1", "2", "10")


def test_levels_of_non_integer_floats() -> None:
    assert levels_of(np.tile([0.5, -1.25, 2.0], 4)) == ("-1.25", "0.5", "2")


def test_levels_of_integer_like_strings_sort_numerically() -> None:
    assert levels_of(np.tile(["10", "9", "100"], 4)) == ("9", "10", "100")


def test_levels_of_other_strings_sort_alphabetically() -> None:
    assert levels_of(np.tile(["b", "a10", "a9"], 4)) == ("a10", "a9", "b")


def test_levels_of_categoricals_follow_category_order_and_drop_unused() -> None:
    values = pd.Categorical(np.tile(["z", "a"], 6), categories=["z", "unused", "a"])
    assert levels_of(values) == ("z", "a")


def test_levels_of_booleans() -> None:
    assert levels_of(np.tile([True, False], 6)) == ("False", "True")


def test_interaction_levels_are_present_combinations_in_component_order() -> None:
    frame = pd.DataFrame(
        {
            "y": np.arange(8, dtype=float),
            "a": ["2", "10", "2", "10", "2", "10", "2", "10"],
            "b": pd.Categorical(list("yxyxxxyy"), categories=["y", "x"]),
        }
    )
    block = design("y ~ 1 + (1 | a:b)", frame, "poisson").blocks[0]
    assert block.levels == ("2:y", "2:x", "10:y", "10:x")
    np.testing.assert_array_equal(block.codes, [0, 3, 0, 3, 1, 3, 0, 2])


# --- missing values -------------------------------------------------------------------


def test_missing_values_are_dropped_with_a_warning(classroom: pd.DataFrame) -> None:
    formula = "mathgain ~ mathkind + mathknow + (1 | schoolid)"
    with pytest.warns(
        UserWarning,
        match=re.escape("dropped 109 rows of 1190 with missing values in: mathknow (109)"),
    ):
        d = design(formula, classroom)
    assert d.nobs == 1081 and d.X.shape == (1081, 3)
    assert d.rows.equals(classroom.index[classroom["mathknow"].notna()])
    np.testing.assert_array_equal(d.y, classroom["mathgain"].dropna()[d.rows].to_numpy())


def test_missing_values_raise_when_asked(classroom: pd.DataFrame) -> None:
    with raises(
        "109 rows of 1190 have missing values in columns used by the model: mathknow (109)"
    ):
        design("mathgain ~ mathknow + (1 | schoolid)", classroom, missing="raise")


def test_missing_counts_per_column(toy: pd.DataFrame) -> None:
    toy.loc[[0, 1], "x"] = np.nan
    toy.loc[[1, 2, 5], "g"] = None
    with pytest.warns(
        UserWarning, match=re.escape("dropped 4 rows of 40 with missing values in: x (2), g (3)")
    ):
        d = design("y ~ x + (1 | g)", toy)
    assert list(d.rows[:3]) == [3, 4, 6]


def test_invalid_missing_option(toy: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="missing must be 'drop' or 'raise', got 'keep'"):
        design("y ~ x + (1 | g)", toy, missing="keep")


def test_all_rows_missing(toy: pd.DataFrame) -> None:
    toy["x"] = np.nan
    with raises(
        "no rows left: all 40 rows have missing values in columns used by the model: x (40)"
    ):
        design("y ~ x + (1 | g)", toy)


def test_empty_data(toy: pd.DataFrame) -> None:
    with raises("the data have no rows"):
        design("y ~ x + (1 | g)", toy.iloc[:0])


def test_data_must_be_a_data_frame(toy: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match="data must be a pandas DataFrame, got dict"):
        build_design(parse_formula("y ~ x"), toy.to_dict(), get_family("gaussian"))  # type: ignore[arg-type]


# --- unknown columns ------------------------------------------------------------------


def test_unknown_fixed_column_suggests_close_matches(sleep: pd.DataFrame) -> None:
    with raises(
        "column 'Dayz' (used in the fixed effects '1 + Dayz') is not in the data; "
        "did you mean 'Days'? Available columns: Reaction, Days, Subject"
    ):
        design("Reaction ~ Dayz + (1 | Subject)", sleep)


def test_unknown_grouping_column(sleep: pd.DataFrame) -> None:
    with raises(
        "column 'subject' (used in the grouping factor of (1 | subject)) is not in "
        "the data; did you mean 'Subject'?"
    ):
        design("Reaction ~ Days + (1 | subject)", sleep)


def test_unknown_column_inside_a_transform_and_the_response(sleep: pd.DataFrame) -> None:
    with raises("column 'Day' (used in the random-effect term (0 + scale(Day) | Subject))"):
        design("Reaction ~ 1 + (0 + scale(Day) | Subject)", sleep)
    with raises("column 'reaction' (used in the response 'log(reaction)') is not in the data"):
        design("log(reaction) ~ 1 + (1 | Subject)", sleep)


def test_unknown_function(sleep: pd.DataFrame) -> None:
    with raises("unknown function 'sqrt' in the fixed effects '1 + sqrt(Days)'"):
        design("Reaction ~ sqrt(Days) + (1 | Subject)", sleep)


# --- responses ------------------------------------------------------------------------


def test_non_numeric_response(sleep: pd.DataFrame) -> None:
    with pytest.raises(
        DesignError,
        match=r"the response 'Subject' must be numeric, but the "
        r"column has dtype category",
    ):
        design(
            "Subject ~ Days + (1 | Days)", sleep.assign(Subject=sleep["Subject"].astype("category"))
        )


def test_infinite_response(toy: pd.DataFrame) -> None:
    toy.loc[[4, 9, 11], "y"] = np.inf
    with raises("the response 'y' has 3 infinite values (first rows: 4, 9, 11)"):
        design("y ~ x + (1 | g)", toy)


def test_response_expression_giving_nan(toy: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log of negative numbers
        with pytest.raises(
            DesignError,
            match=r"the response 'log\(y\)' is not a number "
            r"\(NaN\) in \d+ rows \(first rows: ",
        ):
            design("log(y) ~ x + (1 | g)", toy)


def test_bernoulli_response_outside_unit_interval(toy: pd.DataFrame) -> None:
    toy.loc[[2, 6], "b"] = [2, -1]
    with raises(
        "response 'b' outside [0, 1] for the bernoulli family: 2 values (first rows: 2, 6)"
    ):
        design("b ~ x + (1 | g)", toy, "bernoulli")


def test_bernoulli_response_between_zero_and_one(toy: pd.DataFrame) -> None:
    toy["p"] = np.where(toy.index == 3, 0.5, toy["b"])
    with raises(
        "response 'p' must be 0 or 1 for the bernoulli family: 1 value strictly "
        "between 0 and 1 (first rows: 3)"
    ):
        design("p ~ x + (1 | g)", toy, "bernoulli")


def test_bernoulli_accepts_booleans_and_two_level_labels(toy: pd.DataFrame) -> None:
    toy["yes"] = toy["b"] == 1
    d = design("yes ~ x + (1 | g)", toy, "bernoulli")
    np.testing.assert_array_equal(d.y, toy["b"].to_numpy(dtype=float))
    toy["answer"] = np.where(toy["b"] == 1, "yes", "no")  # sorted: "no", "yes" -> yes = 1
    d = design("answer ~ x + (1 | g)", toy, "binomial")
    np.testing.assert_array_equal(d.y, toy["b"].to_numpy(dtype=float))
    assert d.trials is None
    toy["answer"] = pd.Categorical(toy["answer"], categories=["yes", "no"])
    d = design("answer ~ x + (1 | g)", toy, "bernoulli")
    np.testing.assert_array_equal(d.y, 1.0 - toy["b"].to_numpy(dtype=float))


def test_binary_response_with_three_levels(toy: pd.DataFrame) -> None:
    toy["answer"] = np.tile(["no", "yes", "maybe", "no"], 10)
    with raises(
        "the response 'answer' (dtype str) has 3 levels ('maybe', 'no', 'yes'); "
        "a binary response needs exactly two"
    ):
        design("answer ~ x + (1 | g)", toy, "bernoulli")


def test_poisson_counts(toy: pd.DataFrame) -> None:
    toy["c"] = toy["k"].astype(float)
    toy.loc[[1, 5], "c"] = [-2.0, 1.5]
    toy.loc[8, "c"] = 0.25
    with raises(
        "response 'c' (poisson family) must be non-negative integers: 1 negative "
        "value and 2 non-integer values (rows: 1, 5, 8)"
    ):
        design("c ~ x + (1 | g)", toy, "poisson")
    d = design("k ~ x + (1 | g)", toy, "negativebinomial")
    np.testing.assert_array_equal(d.y, toy["k"].to_numpy(dtype=float))


def test_cbind_counts_must_be_non_negative_integers(toy: pd.DataFrame) -> None:
    toy["n"] = toy["k"] + 2
    toy.loc[[0, 3], "n"] = 0  # fewer trials than successes where k > 0
    bad = toy.index[(toy["n"] - toy["k"]) < 0]
    with raises(f"cbind failures 'n - k' must be non-negative integers: {len(bad)} negative value"):
        design("cbind(k, n - k) ~ x + (1 | g)", toy, "binomial")
    with raises("cbind successes 'x' must be non-negative integers"):
        design("cbind(x, k) ~ 1 + (1 | g)", toy, "binomial")


@pytest.mark.parametrize("family", ["gaussian", "poisson", "bernoulli", "negativebinomial"])
def test_cbind_needs_the_binomial_family(toy: pd.DataFrame, family: str) -> None:
    with raises(
        f"the response 'cbind(k, b)' is cbind(successes, failures), which needs the "
        f"binomial family, not '{family}'"
    ):
        design("cbind(k, b) ~ x + (1 | g)", toy, family)


# --- rank deficiency ------------------------------------------------------------------


def test_rank_deficient_columns_are_dropped_with_a_warning(toy: pd.DataFrame) -> None:
    toy["x2"] = 2.0 * toy["x"]
    with pytest.warns(
        UserWarning,
        match=re.escape("fixed-effect model matrix is rank deficient so dropping 1 column: x2"),
    ):
        d = design("y ~ x + z + x2 + (1 | g)", toy)
    assert d.fixed_names == ("Intercept", "x", "z")
    assert d.dropped_columns == ("x2",)
    assert d.X.shape == (40, 3)


def test_rank_deficiency_drops_the_later_column_even_with_a_larger_norm(toy: pd.DataFrame) -> None:
    toy["big"] = 1000.0 * toy["x"] + 5.0 * toy["z"]
    toy["const"] = 3.0
    with pytest.warns(UserWarning, match="dropping 2 columns: const, big"):
        d = design("y ~ x + z + const + big + (1 | g)", toy)
    assert d.dropped_columns == ("const", "big")
    assert d.fixed_names == ("Intercept", "x", "z")


def test_full_rank_matrix_gives_no_warning(toy: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = design("y ~ x * z + (1 | g)", toy)
    assert d.fixed_names == ("Intercept", "x", "z", "x:z")


# --- offset ---------------------------------------------------------------------------


def test_offset_column_and_array(toy: pd.DataFrame) -> None:
    toy["exposure"] = np.linspace(1.0, 2.0, 40)
    d = design("k ~ x + (1 | g)", toy, "poisson", offset="exposure")
    np.testing.assert_array_equal(d.offset, toy["exposure"].to_numpy())
    values = np.arange(40.0)
    values[5] = np.nan
    with pytest.warns(
        UserWarning, match=re.escape("dropped 1 row of 40 with missing values in: offset (1)")
    ):
        d = design("k ~ x + (1 | g)", toy, "poisson", offset=values)
    np.testing.assert_array_equal(d.offset, np.delete(values, 5))
    assert 5 not in d.rows


def test_offset_length_mismatch(toy: pd.DataFrame) -> None:
    with raises("offset has shape (3,), but the data have 40 rows; pass one value per row"):
        design("k ~ x + (1 | g)", toy, "poisson", offset=np.ones(3))


def test_offset_unknown_column(toy: pd.DataFrame) -> None:
    with raises("column 'exposur' (used in the offset) is not in the data"):
        design("k ~ x + (1 | g)", toy, "poisson", offset="exposur")


# --- new data -------------------------------------------------------------------------


def test_fixed_matrix_for_new_data_reuses_encodings(toy: pd.DataFrame) -> None:
    toy["f"] = np.tile(["lo", "mid", "hi", "mid"], 10)
    toy["x2"] = 2.0 * toy["x"]
    with pytest.warns(UserWarning, match="dropping 1 column: x2"):
        d = design("y ~ scale(x) + f + x2 + (1 | g)", toy)
    np.testing.assert_allclose(fixed_matrix_for(d, toy), d.X)
    new = pd.DataFrame({"x": [toy["x"].mean()], "f": ["mid"], "x2": [0.0]})
    np.testing.assert_allclose(fixed_matrix_for(d, new), [[1.0, 0.0, 0.0, 1.0]], atol=1e-12)


def test_fixed_matrix_for_rejects_unseen_levels_and_missing_columns(toy: pd.DataFrame) -> None:
    toy["f"] = np.tile(["lo", "hi"], 20)
    d = design("y ~ x + f + (1 | g)", toy)
    with raises("newdata does not match the design's data"):
        fixed_matrix_for(d, pd.DataFrame({"x": [0.0], "f": ["new"]}))
    with raises("column 'f' (used in the fixed effects '1 + x + f') is not in the data"):
        fixed_matrix_for(d, pd.DataFrame({"x": [0.0]}))
    with raises("newdata has missing values in: x"):
        fixed_matrix_for(d, pd.DataFrame({"x": [np.nan], "f": ["lo"]}))


def test_build_design_accepts_formula_strings_and_family_names(toy: pd.DataFrame) -> None:
    d = build_design("y ~ x + (1 | g)", toy, "gaussian")
    assert d.spec == parse_formula("y ~ x + (1 | g)")
    assert d.family == get_family("gaussian")


def test_warnings_point_at_the_callers_line(toy: pd.DataFrame) -> None:
    toy.loc[0, "x"] = np.nan
    toy["x2"] = 2.0 * toy["x"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_design("y ~ x + x2 + (1 | g)", toy, "gaussian")
    assert [str(w.message)[:12] for w in caught] == ["dropped 1 ro", "fixed-effect"]
    assert all(w.filename == __file__ for w in caught)


def test_response_expressions_and_quoted_names(toy: pd.DataFrame) -> None:
    frame = toy.rename(columns={"x": "my x", "g": "my g"})
    d = design("I(y / 10) ~ `my x` + (1 + `my x` | `my g`)", frame)
    np.testing.assert_allclose(d.y, toy["y"].to_numpy() / 10)
    assert d.fixed_names == ("Intercept", "my x")
    assert d.blocks[0].group == "my g" and d.blocks[0].terms == ("Intercept", "my x")
    d = design("y^2 ~ 1 + (1 | `my g`)", frame)
    np.testing.assert_allclose(d.y, toy["y"].to_numpy() ** 2)
