"""parse_formula: every lme4 form users write, with exact FormulaSpec contents."""

from __future__ import annotations

import re

import pytest

from hiermodels.design.formula import (
    FormulaError,
    FormulaSpec,
    RandomTerm,
    ResponseSpec,
    parse_formula,
)


def rt(expr: str, *factors: str) -> RandomTerm:
    return RandomTerm(expr=expr, factors=tuple(factors))


# (formula, fixed, random terms)
RANDOM_FORMS = [
    ("y ~ x + (1 | g)", "1 + x", [rt("1", "g")]),
    ("y ~ x + (x | g)", "1 + x", [rt("1 + x", "g")]),
    ("y ~ x + (1 + x | g)", "1 + x", [rt("1 + x", "g")]),
    ("y ~ x + (0 + x | g)", "1 + x", [rt("0 + x", "g")]),
    ("y ~ x + (x - 1 | g)", "1 + x", [rt("0 + x", "g")]),
    ("y ~ x + (-1 + x | g)", "1 + x", [rt("0 + x", "g")]),
    ("y ~ x + (1|g)", "1 + x", [rt("1", "g")]),
    ("y ~ (1 | g) + (0 + x | g)", "1", [rt("1", "g"), rt("0 + x", "g")]),
    ("y ~ (1 | a) + (1 | b)", "1", [rt("1", "a"), rt("1", "b")]),
    ("y ~ (x || g)", "1", [rt("1", "g"), rt("0 + x", "g")]),
    ("y ~ (1 + x + z || g)", "1", [rt("1", "g"), rt("0 + x", "g"), rt("0 + z", "g")]),
    ("y ~ (0 + x || g)", "1", [rt("0 + x", "g")]),
    ("y ~ (x + z - 1 || g)", "1", [rt("0 + x", "g"), rt("0 + z", "g")]),
    ("y ~ (1 || g)", "1", [rt("1", "g")]),
    ("y ~ (1 | a/b)", "1", [rt("1", "a"), rt("1", "a", "b")]),
    ("y ~ (1 | a/b/c)", "1", [rt("1", "a"), rt("1", "a", "b"), rt("1", "a", "b", "c")]),
    ("y ~ (x | a/b)", "1", [rt("1 + x", "a"), rt("1 + x", "a", "b")]),
    ("y ~ (1 | a:b)", "1", [rt("1", "a", "b")]),
    ("y ~ (1 | a:b/c)", "1", [rt("1", "a", "b"), rt("1", "a", "b", "c")]),
    # || with nesting: expand the bars first, then the slash (as lme4 does)
    (
        "y ~ (x || a/b)",
        "1",
        [rt("1", "a"), rt("1", "a", "b"), rt("0 + x", "a"), rt("0 + x", "a", "b")],
    ),
    # a factor covariate stays one block under ||
    ("y ~ (f || g)", "1", [rt("1", "g"), rt("0 + f", "g")]),
    # compound terms under || expand like R's terms(): by degree
    ("y ~ (x*z || g)", "1", [rt("1", "g"), rt("0 + x", "g"), rt("0 + z", "g"), rt("0 + x:z", "g")]),
    ("y ~ (0 + x*z - x:z || g)", "1", [rt("0 + x", "g"), rt("0 + z", "g")]),
    ("y ~ (1 | `my group`)", "1", [rt("1", "my group")]),
    ("y ~ ((1 | g))", "1", [rt("1", "g")]),
    ("y ~ (1 | (a/b))", "1", [rt("1", "a"), rt("1", "a", "b")]),
    ("y ~ (I(x^2) | g)", "1", [rt("1 + I(x**2)", "g")]),
    ("y ~ (1 | g) + x", "1 + x", [rt("1", "g")]),
]


@pytest.mark.parametrize(("formula", "fixed", "random"), RANDOM_FORMS)
def test_random_forms(formula: str, fixed: str, random: list[RandomTerm]) -> None:
    spec = parse_formula(formula)
    assert spec.fixed == fixed
    assert spec.random == tuple(random)
    assert spec.response == ResponseSpec("y")
    assert spec.formula == formula


FIXED_FORMS = [
    ("y ~ x", "1 + x"),
    ("y ~ 1 + x", "1 + x"),
    ("y ~ 0 + x", "0 + x"),
    ("y ~ x - 1", "0 + x"),
    ("y ~ -1 + x", "0 + x"),
    ("y ~ x + 0", "0 + x"),
    ("y ~ 1 + (1 | g)", "1"),
    ("y ~ 0 + (1 | g)", "0"),
    ("y ~ a * b", "1 + a * b"),
    ("y ~ a*b - a:b", "1 + a*b - a:b"),
    ("y ~ a:b", "1 + a:b"),
    ("y ~ I(x^2) + x", "1 + I(x**2) + x"),
    ("y ~ I(x ^ 2 + z^3)", "1 + I(x ** 2 + z**3)"),
    ("y ~ (a + b)^2", "1 + (a + b)^2"),
    ("y ~ scale(x) + log(z) + C(f)", "1 + scale(x) + log(z) + C(f)"),
    ("y ~ I(x + z) + (1 | g)", "1 + I(x + z)"),
    ("y ~ x + I(x - 1)", "1 + x + I(x - 1)"),
    ("y~x+(1|g)", "1 + x"),
    ("  y ~ x  ", "1 + x"),
]


@pytest.mark.parametrize(("formula", "fixed"), FIXED_FORMS)
def test_fixed_part_has_explicit_intercept(formula: str, fixed: str) -> None:
    assert parse_formula(formula).fixed == fixed


def test_only_random_terms_give_intercept_only_fixed_part() -> None:
    spec = parse_formula("Yield ~ (1 | Batch)")
    assert spec == FormulaSpec(
        formula="Yield ~ (1 | Batch)",
        response=ResponseSpec("Yield"),
        fixed="1",
        random=(rt("1", "Batch"),),
    )
    assert spec.groups == ("Batch",)


def test_sleepstudy_formula_in_full() -> None:
    spec = parse_formula("Reaction ~ Days + (Days | Subject)")
    assert spec == FormulaSpec(
        formula="Reaction ~ Days + (Days | Subject)",
        response=ResponseSpec("Reaction"),
        fixed="1 + Days",
        random=(rt("1 + Days", "Subject"),),
    )
    assert spec.random[0].group == "Subject"


def test_classroom_nesting_and_groups() -> None:
    spec = parse_formula("mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)")
    assert spec.fixed == "1 + mathkind + sex + minority + ses"
    assert spec.random == (rt("1", "schoolid"), rt("1", "schoolid", "classid"))
    assert spec.groups == ("schoolid", "schoolid:classid")


def test_groups_are_distinct_in_order_of_appearance() -> None:
    spec = parse_formula("y ~ (1 | b) + (1 | a) + (0 + x | b)")
    assert spec.groups == ("b", "a")


@pytest.mark.parametrize(
    ("formula", "response"),
    [
        ("Reaction ~ Days", ResponseSpec("Reaction")),
        ("log(y) ~ x", ResponseSpec("log(y)")),
        ("I(y / 10) ~ x", ResponseSpec("I(y / 10)")),
        (
            "cbind(incidence, size - incidence) ~ period + (1 | herd)",
            ResponseSpec("cbind(incidence, size - incidence)", "incidence", "size - incidence"),
        ),
        ("cbind(s,f) ~ 1", ResponseSpec("cbind(s,f)", "s", "f")),
        (
            "cbind(round(p * n), n - round(p * n)) ~ 1",
            ResponseSpec(
                "cbind(round(p * n), n - round(p * n))", "round(p * n)", "n - round(p * n)"
            ),
        ),
    ],
)
def test_responses(formula: str, response: ResponseSpec) -> None:
    spec = parse_formula(formula)
    assert spec.response == response
    assert spec.response.is_cbind == (response.successes is not None)


def test_cbind_inside_a_larger_expression_is_a_plain_response() -> None:
    assert parse_formula("cbind(a, b)[:, 0] ~ x").response == ResponseSpec("cbind(a, b)[:, 0]")


ERRORS = [
    ("", "the formula is empty"),
    ("   ", "the formula is empty"),
    ("y x + (1 | g)", "formula 'y x + (1 | g)' has no '~'"),
    ("y ~ x ~ z", "has 2 '~'"),
    ("~ x", "has no response before '~'"),
    ("y ~ ", "has nothing after '~'"),
    ("y ~ x + (1 | g", "unbalanced parentheses in formula: '(' is never closed (character 9)"),
    ("y ~ x + 1 | g)", "unbalanced parentheses in formula: ')' has no matching '(' (character 14)"),
    ("y ~ (x]", "'(' opened at character 5 is closed by ']'"),
    ("y ~ `x + 1", "unclosed quote in formula"),
    ("y ~ ( | g)", "random-effect term '( | g)' has nothing before '|'"),
    ("y ~ (1 | )", "random-effect term '(1 | )' has nothing after '|'; name the grouping factor"),
    ("y ~ (1 || )", "has nothing after '||'"),
    ("y ~ x + 1 | g", "wrap random-effect terms in parentheses: (1 | g)"),
    ("y ~ 1 | g", "wrap random-effect terms in parentheses: (1 | g)"),
    (
        "y ~ (1 | g + h)",
        "grouping expression 'g + h' in '(1 | g + h)' is not valid: use column names, "
        "joined by ':' for an interaction (a:b) or '/' for nesting (a/b)",
    ),
    ("y ~ (1 | log(g))", "grouping expression 'log(g)' in '(1 | log(g))' is not valid"),
    ("y ~ (1 | a//b)", "grouping expression 'a//b'"),
    ("y ~ (1 | a:a)", "names column 'a' twice"),
    ("y ~ (1 | g | h)", "has more than one bar"),
    ("y ~ (0 | g)", "random-effect term '(0 | g)' has no effects"),
    ("y ~ (1 - 1 | g)", "has no effects"),
    ("y ~ (1 + | g)", "empty effect in random-effect term '(1 + | g)'"),
    ("y ~ x + ", "empty term in 'x +'"),
    ("y ~ x + + z", "empty term"),
    ("y ~ x - (1 | g)", "random-effect term '(1 | g)' cannot be removed with '-'"),
    ("y ~ x:(1 | g)", "random-effect term '(1 | g)' must stand on its own"),
    ("y ~ x + offset(log(n))", "offsets are not read from the formula; pass offset="),
    ("cbind(s) ~ x", "cbind() needs exactly two arguments, cbind(successes, failures); "),
    ("cbind(a, b, c) ~ x", "'cbind(a, b, c)' has 3"),
    ("cbind() ~ x", "'cbind()' has 0"),
    ("cbind(a, ) ~ x", "'cbind(a, )' has 1"),
    ("y | g ~ x", "the response 'y | g' contains '|'"),
    ("y ~ x +* z", "the fixed-effects part '1 + x + * z' is not a valid formula: Operator"),
    ("y ~ (x +* z | g)", "the effects '1 + x + * z' of random-effect term '(x +* z | g)'"),
]


@pytest.mark.parametrize(("formula", "message"), ERRORS)
def test_errors_name_the_piece(formula: str, message: str) -> None:
    with pytest.raises(FormulaError, match=re.escape(message)):
        parse_formula(formula)


def test_unbalanced_parenthesis_message_points_at_it() -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula("y ~ x + (1 | g")
    lines = str(info.value).splitlines()
    assert lines[1].strip() == "y ~ x + (1 | g"
    assert lines[2].index("^") == lines[1].index("(")


def test_formulaic_messages_lose_their_terminal_colours() -> None:
    with pytest.raises(FormulaError) as info:
        parse_formula("y ~ x +* z")
    assert "\x1b[" not in str(info.value)


def test_formula_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no '~'"):
        parse_formula("y")


def test_non_string_formula_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="formula must be a string, got int"):
        parse_formula(3)  # type: ignore[arg-type]


def test_specs_are_frozen_and_comparable() -> None:
    a = parse_formula("y ~ x + (x | g)")
    b = parse_formula("y ~ x + (x | g)")
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.fixed = "0"  # type: ignore[misc]
