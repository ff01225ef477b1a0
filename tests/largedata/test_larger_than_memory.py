"""A Parquet dataset larger than the workers' memory fits without its rows on the driver.

Slow tier: about 4 × 10⁷ rows (≈ 1 GB of float64 columns) through two worker
processes limited to 400 MiB each; the driver's peak resident memory grows
by less than a tenth of the data's size, and the estimates recover the
simulation's values.
"""

from __future__ import annotations

import resource
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.slow

ROWS_PER_FILE = 2_000_000
FILES = 20
GROUPS = 10_000


def _write(folder: Path) -> None:
    rng = np.random.default_rng(2026)
    intercepts = rng.normal(scale=1.0, size=GROUPS)
    slopes = rng.normal(scale=0.5, size=GROUPS)
    for k in range(FILES):
        g = rng.integers(0, GROUPS, ROWS_PER_FILE)
        x = rng.normal(size=ROWS_PER_FILE)
        y = 2.0 + intercepts[g] + (0.5 + slopes[g]) * x + rng.normal(size=ROWS_PER_FILE)
        pd.DataFrame({"g": g, "x": x, "y": y}).to_parquet(folder / f"part{k:03d}.parquet")


def test_parquet_larger_than_worker_memory_fits(tmp_path: Path) -> None:
    _write(tmp_path)
    data_bytes = FILES * ROWS_PER_FILE * 3 * 8
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit="400MiB", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        fit = hm.Model.from_parquet(str(tmp_path), "y ~ x + (x | g)", progress=False).fit_mle()
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    assert data_bytes > 2 * 400 * 2**20
    assert growth < data_bytes / 10
    assert fit.nobs == FILES * ROWS_PER_FILE
    assert fit.design.compressed is not None
    assert fit.design.compressed.scheduler == "distributed"
    assert fit.fixef["Intercept"] == pytest.approx(2.0, abs=0.05)
    assert fit.fixef["x"] == pytest.approx(0.5, abs=0.03)
    sds = fit.varcorr.set_index(["grp", "var1"])["sdcor"]
    assert sds[("g", "Intercept")] == pytest.approx(1.0, rel=0.05)
    assert sds[("g", "x")] == pytest.approx(0.5, rel=0.05)
