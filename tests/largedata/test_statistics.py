"""The pieces of the statistics pass: root rows of cell moments, and the sum of cell tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hiermodels.design.compressed import root_rows
from hiermodels.largedata.statistics import PartitionStatistics, combine


def _moments_of_rows(rank: int, m: int, rng: np.random.Generator) -> np.ndarray:
    """``Σ v vᵀ`` of ``rank`` rows of ``m`` columns whose sizes span eight orders."""
    rows = rng.normal(size=(rank, m)) * np.logspace(0, 8, m)[None, :]
    rows[:, 0] = 1.0
    return rows.T @ rows


@pytest.mark.parametrize("m", [2, 4, 6])
def test_root_rows_reproduce_every_cells_moments_whatever_its_rank(m: int) -> None:
    rng = np.random.default_rng(m)
    ranks = np.repeat(np.arange(1, m + 1), 5)
    moments = np.stack([_moments_of_rows(int(rank), m, rng) for rank in ranks])
    # a cell whose covariate is constant: two columns proportional
    moments[-1] = _moments_of_rows(m + 3, m, rng)
    moments[-1][:, 1] = moments[-1][:, 0] * 3.0
    moments[-1][1, :] = moments[-1][0, :] * 3.0
    moments[-1][1, 1] = moments[-1][0, 0] * 9.0
    shift = np.zeros(m)
    rows, cell = root_rows(moments, shift)
    for c in range(len(moments)):
        mine = rows[cell == c]
        scale = np.sqrt(np.outer(np.diag(moments[c]), np.diag(moments[c])))
        np.testing.assert_allclose(mine.T @ mine / scale, moments[c] / scale, atol=1e-12)
        expected_rank = min(int(ranks[c]), m) if c < len(moments) - 1 else m - 1
        assert len(mine) == expected_rank
        assert np.all(mine[:, 0] >= 0.0)


def test_a_cell_of_one_row_gives_that_row_back_with_its_shift() -> None:
    v = np.array([1.0, 2.5e6, -3.0, 1e12 + 0.25])
    shift = np.array([0.0, 2.5e6, 0.0, 1e12])
    centred = v - shift
    centred[0] = 1.0
    rows, cell = root_rows(np.outer(centred, centred)[None], shift)
    assert cell.tolist() == [0]
    np.testing.assert_allclose(rows[0], v, rtol=1e-15)


def _table(codes: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    values = rng.normal(size=(codes.size, 3))
    frame = pd.DataFrame(values, columns=["m0", "m1", "m2"], index=pd.Index(codes, name="g"))
    frame[".rows"] = rng.integers(1, 5, size=codes.size).astype(float)
    return frame


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16])
def test_tables_keyed_by_small_codes_sum_as_a_group_by_does(dtype: type) -> None:
    rng = np.random.default_rng(1)
    tables = [
        _table(rng.choice(500, size=size, replace=False).astype(dtype), rng)
        for size in (50, 200, 480)
    ]
    summed = combine(*(PartitionStatistics(table, rows=len(table)) for table in tables))
    expected = pd.concat(tables).groupby(level=0).sum()
    assert summed.rows == 730
    assert summed.cells.index.dtype == np.dtype(dtype)
    assert summed.cells.index.name == "g"
    pd.testing.assert_frame_equal(summed.cells.sort_index(), expected, rtol=1e-14)


@pytest.mark.parametrize("keys", ["text", "two"])
def test_tables_keyed_by_text_or_several_keys_sum_as_a_group_by_does(keys: str) -> None:
    rng = np.random.default_rng(2)
    tables = [_table(np.arange(k, k + 10), rng) for k in (0, 5)]
    for table in tables:
        codes = table.index.to_numpy()
        if keys == "text":
            table.index = pd.Index([f"level{i}" for i in codes], name="g")
        else:
            table.index = pd.MultiIndex.from_arrays([codes % 3, codes // 3], names=["a", "b"])
    summed = combine(*(PartitionStatistics(table, rows=len(table)) for table in tables))
    expected = pd.concat(tables).groupby(level=list(range(tables[0].index.nlevels))).sum()
    pd.testing.assert_frame_equal(summed.cells.sort_index(), expected.sort_index())
