"""Parsed formulas are memoised; refused ones raise on every call."""

from __future__ import annotations

import pytest

from hiermodels.design._columns import (
    formula_names,
    python_names,
)
from hiermodels.design.formula import parse_formula
from hiermodels.errors import ColumnProblem, FormulaError


def test_parsed_formulas_are_shared_and_errors_raised_every_time() -> None:
    text = "Reaction ~ Days + (Days | Subject)"
    assert parse_formula(text) is parse_formula(text)
    assert parse_formula(text).formula == text
    for _ in range(2):
        with pytest.raises(FormulaError, match="has no '~'"):
            parse_formula("Reaction + Days")
    with pytest.raises(TypeError, match="formula must be a string, got list"):
        parse_formula(["y ~ x"])  # type: ignore[arg-type]


def test_column_names_of_expressions_are_fresh_lists_from_the_cache() -> None:
    names, called = formula_names("1 + log(x) + z")
    assert (names, called) == (["log", "x", "z"], {"log"})
    names.append("w")
    called.add("exp")
    assert formula_names("1 + log(x) + z") == (["log", "x", "z"], {"log"})
    assert python_names("size - incidence") == (["size", "incidence"], set())
    for _ in range(2):
        with pytest.raises(ColumnProblem, match="cannot read the expression"):
            python_names("x +")
