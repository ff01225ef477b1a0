"""Missing-value flags, read from each column's array, agree with ``isna``."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from hiermodels.design._columns import missing_mask


def test_missing_mask_agrees_with_isna_for_every_kind_of_column() -> None:
    data = pd.DataFrame(
        {
            "f": [1.0, np.nan, 3.0, 4.0],
            "i": pd.array([1, None, 3, 4], dtype="Int64"),
            "s": ["a", None, "c", "d"],
            "o": pd.Series(["a", "b", None, "d"], dtype=object),
            "c": pd.Categorical(["a", "b", None, "a"]),
            "t": pd.to_datetime(["2020-01-01", None, "2020-01-03", "2020-01-04"]),
        }
    )
    for column in data.columns:
        with pytest.warns(UserWarning, match=re.escape(f"{column} (")):
            keep = missing_mask(data, [column], None, "drop")
        np.testing.assert_array_equal(keep, ~data[column].isna().to_numpy())
