"""The per-factor view of a design (``Design.factors``) and the long-table keys."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pandas as pd
import pytest

from hiermodels.design.design import build_design
from hiermodels.design.factors import LONG_KEYS, build_factors, long_index, long_values


@pytest.fixture
def data() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 60
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.normal(size=n),
            "g": np.repeat([f"g{i}" for i in range(6)], 10),
            "h": np.tile([f"h{i}" for i in range(4)], 15),
        }
    )


def test_factors_join_the_blocks_of_each_factor_in_order_of_first_appearance(data):
    design = build_design("y ~ x + (1 | g) + (1 | h) + (0 + x | g)", data, "gaussian")
    g, h = design.factors
    assert (g.group, h.group) == ("g", "h")
    assert g.terms == ("Intercept", "x")
    assert g.spans == ((0, 1), (1, 2))
    assert g.correlated_spans == ()
    assert g.levels == design.blocks[0].levels
    np.testing.assert_array_equal(g.codes, design.blocks[0].codes)
    np.testing.assert_array_equal(g.X, np.column_stack([design.blocks[0].X, design.blocks[2].X]))
    assert h.terms == ("Intercept",)
    assert len(h.levels) == 4


def test_correlated_block_has_a_correlated_span(data):
    design = build_design("y ~ x + (x | g)", data, "gaussian")
    (g,) = design.factors
    assert g.correlated_spans == ((0, 2),)


def test_factors_are_built_once_per_design(data):
    design = build_design("y ~ x + (x | g)", data, "gaussian")
    assert design.factors is design.factors


def test_pickled_and_copied_designs_rebuild_the_view(data):
    design = build_design("y ~ x + (x | g) + (1 | h)", data, "gaussian")
    view = design.factors
    state = pickle.dumps(design)
    assert b"GroupTerms" not in state
    for other in (pickle.loads(state), copy.copy(design), copy.deepcopy(design)):
        assert [f.terms for f in other.factors] == [f.terms for f in view]
        for new, old in zip(other.factors, view, strict=True):
            np.testing.assert_array_equal(new.X, old.X)


def test_blocks_disagreeing_on_levels_or_repeating_a_term_are_refused(data):
    design = build_design("y ~ x + (1 | g) + (0 + x | g)", data, "gaussian")
    first, second = design.blocks
    with pytest.raises(ValueError, match="disagree on its levels"):
        build_factors([first, dataclasses.replace(second, codes=second.codes[::-1].copy())])
    with pytest.raises(ValueError, match="more than one random-effect block"):
        build_factors([first, dataclasses.replace(second, terms=("Intercept",))])


def test_long_index_runs_over_units_then_terms_then_levels(data):
    design = build_design("y ~ x + (x | g) + (1 | h)", data, "gaussian")
    index = long_index(design.factors)
    assert list(index.columns) == list(LONG_KEYS)
    assert len(index) == 6 * 2 + 4
    assert isinstance(index.index, pd.RangeIndex)
    assert index["grpvar"].tolist() == ["g"] * 12 + ["h"] * 4
    assert index["term"].tolist() == ["Intercept"] * 6 + ["x"] * 6 + ["Intercept"] * 4
    g_levels = list(design.factors[0].levels)
    assert index["grp"].tolist() == g_levels * 2 + list(design.factors[1].levels)


def test_long_values_follow_the_rows_of_long_index():
    first = np.arange(6.0).reshape(3, 2)
    second = np.array([[10.0], [11.0]])
    np.testing.assert_array_equal(
        long_values([first, second]), [0.0, 2.0, 4.0, 1.0, 3.0, 5.0, 10.0, 11.0]
    )
    assert long_values([]).shape == (0,)
