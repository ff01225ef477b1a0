"""A shipped dataset is read once per process; every load is an independent copy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiermodels import datasets


@pytest.mark.parametrize("name", datasets.available())
def test_a_load_equals_a_fresh_read_and_is_a_copy(name: str) -> None:
    fresh = datasets._read.__wrapped__(name)
    first = datasets.load(name)
    pd.testing.assert_frame_equal(first, fresh, check_exact=True)
    column = first.columns[0]
    first.iloc[0, 0] = first.iloc[1, 0]
    first[column + "_extra"] = 1
    second = datasets.load(name.upper())
    pd.testing.assert_frame_equal(second, fresh, check_exact=True)
    numeric = [c for c in fresh.columns if fresh[c].dtype.kind in "if"]
    for col in numeric:
        assert not np.shares_memory(second[col].to_numpy(), datasets.load(name)[col].to_numpy())


def test_categories_of_one_load_do_not_change_another() -> None:
    first = datasets.load("sleepstudy")
    first["Subject"] = first["Subject"].cat.rename_categories(lambda label: "S" + label)
    first["Subject"] = first["Subject"].cat.add_categories(["new"])
    second = datasets.load("sleepstudy")
    assert second["Subject"].cat.categories[:3].tolist() == ["308", "309", "310"]
    assert "new" not in second["Subject"].cat.categories
