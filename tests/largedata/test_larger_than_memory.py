"""A Parquet dataset larger than the workers' memory fits without its rows on the driver.

Slow tier: 10⁸ rows (2.4 GB of float64 and integer columns) through two
worker processes limited to 1 GiB each (a worker's libraries take about
300 MB of it). The driver runs in a child process of its own, whose peak
resident memory stays below 1 GiB, less than half the data (the rows never
reach it; what does is the statistics of 10,000 cells and the libraries).
The estimates recover the simulation's values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow

ROWS_PER_FILE = 2_000_000
FILES = 50
GROUPS = 10_000

_DRIVER = r"""
import json, re, sys, warnings
from pathlib import Path
import distributed
import hiermodels as hm

if __name__ == "__main__":
    warnings.simplefilter("ignore")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, memory_limit="1GiB", dashboard_address=None
    ) as cluster, distributed.Client(cluster):
        fit = hm.Model.from_parquet(sys.argv[1], "y ~ x + (x | g)", progress=False).fit_mle()
        table = fit.varcorr
        sds = table[table["var2"].isna()].set_index(["grp", "var1"])["sdcor"]
        print(json.dumps({
            # VmHWM: this program's own peak; ru_maxrss keeps the peak of the process
            # it was exec'd from (an xdist worker of several GB)
            "peak": 1024 * int(re.search(
                r"VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text()
            ).group(1)),
            "nobs": fit.nobs,
            "scheduler": fit.design.compressed.scheduler,
            "intercept": float(fit.fixef["Intercept"]),
            "slope": float(fit.fixef["x"]),
            "sd_intercept": float(sds[("g", "Intercept")]),
            "sd_slope": float(sds[("g", "x")]),
        }))
"""


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
    folder = tmp_path / "data"
    folder.mkdir()
    _write(folder)
    data_bytes = FILES * ROWS_PER_FILE * 3 * 8
    assert data_bytes > 2 * 2**30
    script = tmp_path / "driver.py"
    script.write_text(_DRIVER)
    out = subprocess.run(
        [sys.executable, str(script), str(folder)],
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["peak"] < 2**30, result
    assert result["nobs"] == FILES * ROWS_PER_FILE
    assert result["scheduler"] == "distributed"
    assert result["intercept"] == pytest.approx(2.0, abs=0.05)
    assert result["slope"] == pytest.approx(0.5, abs=0.03)
    assert result["sd_intercept"] == pytest.approx(1.0, rel=0.05)
    assert result["sd_slope"] == pytest.approx(0.5, rel=0.05)
