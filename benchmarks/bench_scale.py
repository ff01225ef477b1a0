"""Fits from Parquet through Dask beside a bare Dask scan, pandas and lme4, up to 10^8 rows.

The data sets are simulated once into a cache directory outside the
repository (``$HIERMODELS_BENCH_DATA``, else ``/tmp/hiermodels-bench-scale``;
``--data-dir`` overrides both) and reused by later runs. Each is a folder of
Parquet files of at most 2,000,000 rows each (row groups of at most 500,000
rows; at least 8 files, so that the two threads have partitions to share),
written chunk by chunk: the generator never holds more than one file's rows.
The columns are integer group codes (``int32``), ``x`` and ``y`` (``float64``):

* ``slope``: ``y ~ x + (x | g)`` with 100,000 groups (``--groups``), fixed
  effects (2, 0.5), random intercept and slope of SDs 1.0 and 0.5 with
  correlation 0.3, residual SD 1; at 10^6, 10^7 and 10^8 rows (``--sizes``);
* ``crossed``: ``y ~ x + (1 | a) + (1 | b)`` with 10,000 × 1,000 levels,
  random-effect SDs 1.0 and 0.5, residual SD 1; at 10^7 rows
  (``--crossed-rows``, 0 leaves it out).

Group codes and ``x`` are drawn independently per row (``x`` standard normal).

Every measurement runs in a fresh child process with the same two threads:
Dask's threaded scheduler with ``num_workers=2`` (``threads``) and, unless
``--schedulers threads``, a ``LocalCluster(n_workers=2, threads_per_worker=1)``
(``cluster``); the BLAS and numba thread counts are 1 in every process. The
children are

1. the bare scan, ``dd.read_parquet(folder).groupby(<group columns>).sum()
   .compute()``: the time of one pass over the data, the physical limit;
2. hiermodels through Dask, ``hm.Model.from_parquet(folder, formula,
   progress=False).fit_mle()`` (REML): its wall time, the time of its statistics pass
   (``model.design.compressed.seconds``), the ratio to the bare scan under the
   same scheduler (target: at most 2), the number of cells and the size of the
   statistics, and the peak resident memory of the driver (``VmHWM``) and,
   on the cluster, of the largest worker;
3. hiermodels in memory, ``pd.read_parquet(folder)`` then
   ``hm.Model(formula, frame).fit_mle()``: read and fit times and the peak
   memory, up to ``--pandas-max-rows`` rows (10^7); above it the table gives
   the memory the run would need, extrapolated linearly in the rows from the
   largest pandas run (or, without one, the frame's own size as a lower bound);
4. lme4 through ``Rscript benchmarks/scale_lme4.R <folder> <kind>`` (``lmer``,
   REML), which reads a CSV copy of the data written once into the data set's
   folder (R's arrow package is not needed): the time of ``lmer()`` alone and
   the R process's peak memory, up to ``--lme4-max-rows`` rows (10^7) and
   ``--lme4-timeout`` seconds (900).

A child whose resident memory (with its subprocesses: the cluster's workers)
passes ``--memory-limit`` (60% of the machine's) is stopped, and its cell says
so, rather than leaving the machine to its out-of-memory killer. Times are
wall-clock seconds after the imports (and, for the cluster, after
its start); the Parquet files are in the page cache for every program alike.
Where both Dask and pandas fits ran, the largest relative difference of their
fixed effects, theta, sigma and REML log-likelihood is printed (target:
1e-8), and lme4's beside it for reference. A second table shows the peak
memory of the in-memory path against the Dask path as the rows grow, and
where the in-memory path runs out of this machine's memory.

Examples
--------
A smoke run (10^5 rows, 1,000 groups; crossed 10^5 rows on 1,000 × 100)::

    python benchmarks/bench_scale.py --quick

Two sizes, threaded scheduler only::

    python benchmarks/bench_scale.py --sizes 1e6,1e7 --schedulers threads

The full run (10^6, 10^7, 10^8 and the crossed model; about 40 min on two
cores, most of it lme4 at 10^7 and the 10^8 rows; about 3 GB of Parquet)::

    python benchmarks/bench_scale.py --json bench_scale.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _children import THREAD_VARIABLES, lme4_available, run_child

HERE = Path(__file__).resolve().parent
R_SCRIPT = HERE / "scale_lme4.R"

#: threads of every measured program (Dask's threads or the cluster's workers)
THREADS = 2
MAX_ROWS_PER_FILE = 2_000_000
MIN_FILES = 8
ROW_GROUP_ROWS = 500_000
#: bytes of one row in memory: an int32 code per grouping factor, float64 x and y
FLOAT_BYTES, CODE_BYTES = 8, 4

FIXEF = (2.0, 0.5)
SLOPE_SD, SLOPE_RHO = (1.0, 0.5), 0.3
CROSSED_SD = (1.0, 0.5)
RESIDUAL_SD = 1.0

FORMULAS = {"slope": "y ~ x + (x | g)", "crossed": "y ~ x + (1 | a) + (1 | b)"}
GROUP_COLUMNS = {"slope": ("g",), "crossed": ("a", "b")}

Result = dict[str, Any] | str


@dataclass(frozen=True)
class DataSet:
    """One simulated data set.

    Attributes
    ----------
    kind : str
        ``"slope"`` or ``"crossed"``: the model (see ``FORMULAS``).
    rows : int
        Number of rows.
    levels : tuple of int
        Number of levels of each grouping factor, in ``GROUP_COLUMNS`` order.
    """

    kind: str
    rows: int
    levels: tuple[int, ...]

    @property
    def name(self) -> str:
        """The folder name: kind, rows and levels."""
        return f"{self.kind}-{self.rows}-{'x'.join(str(n) for n in self.levels)}"

    @property
    def formula(self) -> str:
        """The model formula."""
        return FORMULAS[self.kind]

    @property
    def group_columns(self) -> tuple[str, ...]:
        """The grouping factors' columns."""
        return GROUP_COLUMNS[self.kind]

    @property
    def rows_per_file(self) -> int:
        """Rows of each Parquet file (the last one may have fewer)."""
        return min(MAX_ROWS_PER_FILE, math.ceil(self.rows / MIN_FILES))

    @property
    def frame_bytes(self) -> int:
        """Size of the data as a pandas frame: codes and two float columns."""
        return self.rows * (CODE_BYTES * len(self.levels) + 2 * FLOAT_BYTES)

    @property
    def label(self) -> str:
        """Short name for the tables."""
        levels = " × ".join(f"{n:,}" for n in self.levels)
        return f"{self.kind} ({levels})"


# ---------------------------------------------------------------------------
# Data


def _seed(data: DataSet) -> list[int]:
    return [20261130, len(data.kind), data.rows, *data.levels]


def _random_effects(data: DataSet) -> list[np.ndarray]:
    """Each grouping factor's random effects (a levels × terms array)."""
    rng = np.random.default_rng(_seed(data))
    if data.kind == "slope":
        sd0, sd1 = SLOPE_SD
        cov = np.array([[sd0**2, SLOPE_RHO * sd0 * sd1], [SLOPE_RHO * sd0 * sd1, sd1**2]])
        normal = rng.standard_normal((data.levels[0], 2))
        return [normal @ np.linalg.cholesky(cov).T]
    return [sd * rng.standard_normal((n, 1)) for sd, n in zip(CROSSED_SD, data.levels, strict=True)]


def _chunk(
    data: DataSet, effects: list[np.ndarray], rng: np.random.Generator, rows: int
) -> dict[str, np.ndarray]:
    """``rows`` simulated rows as columns."""
    codes = [rng.integers(0, n, rows, dtype=np.int32) for n in data.levels]
    x = rng.standard_normal(rows)
    y = FIXEF[0] + FIXEF[1] * x + RESIDUAL_SD * rng.standard_normal(rows)
    if data.kind == "slope":
        (b,) = effects
        y += b[codes[0], 0] + b[codes[0], 1] * x
    else:
        for code, u in zip(codes, effects, strict=True):
            y += u[code, 0]
    columns = dict(zip(data.group_columns, codes, strict=True))
    columns.update(x=x, y=y)
    return columns


def write_data(data: DataSet, cache: Path) -> Path:
    """Simulate ``data`` into ``cache/<name>/parquet`` unless it is there; return the folder.

    The files are written into a hidden folder first and renamed at the end, so
    that an interrupted run leaves no partial data set behind to be reused.

    Parameters
    ----------
    data : DataSet
        The data set.
    cache : Path
        The cache directory.

    Returns
    -------
    Path
        The data set's folder (``parquet/`` holds the files).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = cache / data.name
    if folder.exists():
        return folder
    partial = cache / f".{data.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "parquet").mkdir(parents=True)
    effects = _random_effects(data)
    per_file = data.rows_per_file
    for index, start in enumerate(range(0, data.rows, per_file)):
        rows = min(per_file, data.rows - start)
        rng = np.random.default_rng([*_seed(data), index + 1])
        table = pa.table(_chunk(data, effects, rng, rows))
        pq.write_table(
            table,
            partial / "parquet" / f"part-{index:05d}.parquet",
            row_group_size=min(rows, ROW_GROUP_ROWS),
        )
    partial.rename(folder)
    return folder


def write_csv(folder: Path) -> Path:
    """Write ``folder/data.csv``, the CSV copy of the Parquet files R reads, unless it is there.

    Parameters
    ----------
    folder : Path
        A data set's folder from :func:`write_data`.

    Returns
    -------
    Path
        The CSV file.
    """
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    path = folder / "data.csv"
    if path.exists():
        return path
    partial = folder / ".data.csv.partial"
    files = sorted((folder / "parquet").glob("*.parquet"))
    writer = None
    for file in files:
        table = pq.read_table(file)
        if writer is None:
            writer = pcsv.CSVWriter(partial, table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    partial.rename(path)
    return path


# ---------------------------------------------------------------------------
# The child processes. Each prints one JSON line last.


def _peak_mb() -> float:
    """This program's peak resident memory in MB (``VmHWM``).

    Not ``ru_maxrss``, which keeps the peak of the process the child was
    started from across ``exec``.
    """
    status = Path("/proc/self/status").read_text(encoding="ascii")
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    if found is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return int(found.group(1)) / 1024


def _estimates(fit: Any) -> dict[str, Any]:
    """The estimates compared between programs, as JSON data."""
    return {
        "fixef": {str(k): float(v) for k, v in fit.fixef.items()},
        "theta": [float(v) for v in np.asarray(fit.theta)],
        "sigma": float(fit.sigma),
        "loglik": float(fit.loglik),
    }


def _scan(job: dict[str, Any]) -> dict[str, Any]:
    import dask.dataframe as dd

    start = time.perf_counter()
    frame = dd.read_parquet(job["path"])
    sums = frame.groupby(job["groups"]).sum().compute()
    return {
        "time": time.perf_counter() - start,
        "partitions": frame.npartitions,
        "cells": len(sums),
    }


def _dask(job: dict[str, Any]) -> dict[str, Any]:
    import dask.dataframe as dd

    import hiermodels as hm

    # the scan's child imports Dask before its clock starts; this one also loads the
    # compiled kernels with a small fit, so that both clocks time the data's work
    sleep = hm.datasets.load("sleepstudy")
    hm.Model(
        "Reaction ~ Days + (Days | Subject)", dd.from_pandas(sleep, npartitions=2), progress=False
    ).fit_mle()
    start = time.perf_counter()
    model = hm.Model.from_parquet(job["path"], job["formula"], progress=False)
    fit = model.fit_mle()
    elapsed = time.perf_counter() - start
    compressed = model.design.compressed
    return {
        "time": elapsed,
        "statistics_time": float(compressed.seconds),
        "nobs": int(compressed.nobs),
        "cells": int(compressed.n_cells),
        "partitions": int(compressed.n_partitions),
        "statistics_bytes": int(compressed.statistics_bytes),
        "scheduler": str(compressed.scheduler),
        "estimates": _estimates(fit),
        "version": hm.__version__,
        "source": str(Path(hm.__file__).parents[1]),
    }


def _pandas(job: dict[str, Any]) -> dict[str, Any]:
    import pandas as pd

    import hiermodels as hm

    # the compiled kernels are loaded by a small fit first, as in the Dask child
    hm.Model("Reaction ~ Days + (Days | Subject)", hm.datasets.load("sleepstudy")).fit_mle()
    baseline = _peak_mb()
    start = time.perf_counter()
    frame = pd.read_parquet(job["path"])
    read = time.perf_counter() - start
    start = time.perf_counter()
    fit = hm.Model(job["formula"], frame).fit_mle()
    return {
        "time": time.perf_counter() - start,
        "read": read,
        "baseline_rss": baseline,
        "estimates": _estimates(fit),
    }


def child(job: dict[str, Any]) -> None:
    """Run one measurement in this process and print its JSON line.

    Parameters
    ----------
    job : dict
        ``task`` (``"scan"``, ``"dask"`` or ``"pandas"``), ``scheduler``
        (``"threads"`` or ``"cluster"``), ``path`` (the Parquet folder),
        ``formula`` and ``groups`` (the grouping columns).
    """
    import warnings

    if job["task"] != "scan":
        import hiermodels  # noqa: F401  -- imported before the pandas baseline is read

    client = None
    if job["task"] != "pandas":
        import dask

        if job["scheduler"] == "cluster":
            from distributed import Client, LocalCluster

            cluster = LocalCluster(
                n_workers=THREADS,
                threads_per_worker=1,
                processes=True,
                dashboard_address=":0",
            )
            client = Client(cluster)
        else:
            dask.config.set(scheduler="threads", num_workers=THREADS)
    task = {"scan": _scan, "dask": _dask, "pandas": _pandas}[job["task"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = task(job)
    result["rss"] = _peak_mb()
    if client is not None:
        result["worker_rss"] = max(client.run(_peak_mb).values())
        client.close()
    print(json.dumps(result), flush=True)


# ---------------------------------------------------------------------------
# Running the children


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    return env


def _tree_rss_mb(root: int, page_mb: float) -> tuple[float, set[int]] | None:
    """Resident MB of process ``root`` and its descendants, and their ids.

    ``None`` once ``root`` is gone.
    """
    parents: dict[int, int] = {}
    rss: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        if fields[0] in "ZX":  # a finished process waiting to be reaped holds nothing
            continue
        parents[pid] = int(fields[1])
        rss[pid] = int(fields[21]) * page_mb
    if root not in rss:
        return None
    tree, grown = {root}, True
    while grown:
        grown = False
        for pid, parent in parents.items():
            if parent in tree and pid not in tree:
                tree.add(pid)
                grown = True
    return sum(rss[pid] for pid in tree), tree


def watch(root: int, limit_mb: float) -> None:
    """Kill process ``root`` once it and its descendants hold more than ``limit_mb`` MB.

    Polls ``/proc`` five times a second and returns when ``root`` ends. The
    message written to stderr before the kill is the last line that
    :func:`run_child` shows.

    Parameters
    ----------
    root : int
        The watched process.
    limit_mb : float
        Resident memory, in MB, of the process tree that stops it.
    """
    page_mb = os.sysconf("SC_PAGE_SIZE") / 2**20
    own = os.getpid()
    while (state := _tree_rss_mb(root, page_mb)) is not None:
        used, tree = state
        if used > limit_mb:
            print(f"memory over {limit_mb / 1024:.1f} GB, stopped", file=sys.stderr, flush=True)
            for pid in tree - {own}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.2)


def _exec_watched(limit_mb: float, cmd: list[str]) -> None:
    """Start a watcher of this process (:func:`watch`), then become ``cmd``."""
    watcher = [sys.executable, str(Path(__file__).resolve()), "--watch", str(os.getpid())]
    subprocess.Popen([*watcher, str(limit_mb)], stdout=subprocess.DEVNULL)
    os.execvp(cmd[0], cmd)


def _run_watched(cmd: list[str], options: argparse.Namespace, timeout: float) -> Result:
    """``run_child`` of ``cmd`` under the memory limit, in the benchmark's environment."""
    watched = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--exec-watched",
        str(options.memory_limit * 1024),
        *cmd,
    ]
    return run_child(watched, timeout=timeout, cwd=HERE, env=_environment())


def _run_python(job: dict[str, Any], options: argparse.Namespace) -> Result:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(job)]
    return _run_watched(cmd, options, options.timeout)


def _run_lme4(data: DataSet, folder: Path, options: argparse.Namespace) -> Result:
    write_csv(folder)
    cmd = ["Rscript", str(R_SCRIPT), str(folder), data.kind]
    return _run_watched(cmd, options, options.lme4_timeout)


@dataclass
class Row:
    """The measurements of one data set.

    Attributes
    ----------
    data : DataSet
        The data set.
    results : dict
        ``"scan threads"``, ``"dask cluster"``, ``"pandas"``, ``"lme4"``, …
        → the child's JSON result or a status string.
    """

    data: DataSet
    results: dict[str, Result]

    def get(self, key: str) -> dict[str, Any] | None:
        """The result of ``key`` when that child ran and reported one."""
        result = self.results.get(key)
        return result if isinstance(result, dict) else None


def measure(data: DataSet, folder: Path, options: argparse.Namespace, have_lme4: bool) -> Row:
    """Run every child on ``data``; print each result as it comes.

    Parameters
    ----------
    data : DataSet
        The data set.
    folder : Path
        Its folder from :func:`write_data`.
    options : argparse.Namespace
        The command-line options.
    have_lme4 : bool
        Whether ``Rscript`` with lme4 is available.

    Returns
    -------
    Row
        The results.
    """
    row = Row(data, {})
    common = {
        "path": str(folder / "parquet"),
        "formula": data.formula,
        "groups": list(data.group_columns),
    }

    def record(key: str, result: Result) -> None:
        row.results[key] = result
        shown = (
            {k: v for k, v in result.items() if k != "estimates"}
            if isinstance(result, dict)
            else result
        )
        print(f"  {data.name} {key}: {shown}", file=sys.stderr, flush=True)

    for scheduler in options.schedulers:
        for task in ("scan", "dask"):
            job = {**common, "task": task, "scheduler": scheduler}
            record(f"{task} {scheduler}", _run_python(job, options))
    if data.rows <= options.pandas_max_rows:
        job = {**common, "task": "pandas", "scheduler": "none"}
        record("pandas", _run_python(job, options))
    if not have_lme4:
        row.results["lme4"] = "lme4 not installed"
    elif data.rows <= options.lme4_max_rows:
        record("lme4", _run_lme4(data, folder, options))
    else:
        row.results["lme4"] = f"not run: over {options.lme4_max_rows:,.0f} rows"
    return row


# ---------------------------------------------------------------------------
# Tables


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def _megabytes(value: float) -> str:
    return f"{value / 1024:.2f} GB" if value >= 1024 else f"{value:.0f} MB"


def _bytes(value: int) -> str:
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def _pandas_memory_model(rows: list[Row]) -> tuple[float, float] | None:
    """Fixed MB and MB per row of the pandas path's peak, from its two largest runs.

    With one run the fixed part is the memory after the imports; with two or
    more, the line through the two largest runs (a first fit's one-off costs
    then land in the fixed part, not in the per-row part).
    """
    runs = sorted(
        ((row.data.rows, result) for row in rows if (result := row.get("pandas")) is not None),
        key=lambda run: run[0],
    )
    if not runs:
        return None
    n, result = runs[-1]
    if len(runs) == 1:
        baseline = float(result["baseline_rss"])
        return baseline, (float(result["rss"]) - baseline) / n
    m, smaller = runs[-2]
    per_row = (float(result["rss"]) - float(smaller["rss"])) / (n - m)
    return float(result["rss"]) - per_row * n, per_row


def _pandas_need(row: Row, rows: list[Row]) -> str:
    """What the pandas path would need where it did not run."""
    memory = _pandas_memory_model([other for other in rows if other.data.kind == row.data.kind])
    if memory is None:
        return f"not run: needs > {row.data.frame_bytes / 2**30:.1f} GB (the frame alone)"
    baseline, per_row = memory
    return f"not run: needs ~{(baseline + per_row * row.data.rows) / 1024:.0f} GB"


def _scan_cell(result: Result) -> str:
    return result if isinstance(result, str) else _seconds(float(result["time"]))


def _dask_cell(row: Row, scheduler: str) -> str:
    result = row.results.get(f"dask {scheduler}")
    if result is None:
        return "–"
    if isinstance(result, str):
        return result
    scan = row.get(f"scan {scheduler}")
    ratio = f" · {result['time'] / scan['time']:.2f}×" if scan else ""
    peak = _megabytes(float(result["rss"]))
    if "worker_rss" in result:
        peak += f" (workers {_megabytes(float(result['worker_rss']))})"
    return f"{_seconds(float(result['time']))}{ratio} · {peak}"


def _program_cell(row: Row, key: str, rows: list[Row]) -> str:
    result = row.results.get(key)
    if result is None:
        return _pandas_need(row, rows) if key == "pandas" else "–"
    if isinstance(result, str):
        return result
    cell = f"{_seconds(float(result['time']))} (read {_seconds(float(result['read']))})"
    cell += f" · {_megabytes(float(result['rss']))}"
    if result.get("converged") is False:
        cell += " ‡"
    return cell


def _statistics_cell(row: Row) -> str:
    for scheduler in ("threads", "cluster"):
        result = row.get(f"dask {scheduler}")
        if result:
            return (
                f"{_seconds(float(result['statistics_time']))} · {int(result['cells']):,} cells"
                f" · {_bytes(int(result['statistics_bytes']))}"
            )
    return "–"


def _partitions(row: Row) -> str:
    for key in ("dask threads", "dask cluster", "scan threads", "scan cluster"):
        result = row.get(key)
        if result:
            return str(result["partitions"])
    return "–"


def main_table(rows: list[Row], schedulers: list[str]) -> list[str]:
    """The side-by-side table: one line per data set.

    Parameters
    ----------
    rows : list of Row
        The measurements.
    schedulers : list of str
        The Dask schedulers measured.

    Returns
    -------
    list of str
        The table's markdown lines.
    """
    columns = ["data set", "rows", "partitions"]
    for scheduler in schedulers:
        columns += [f"bare scan ({scheduler})", f"hiermodels Dask ({scheduler})"]
    columns += ["statistics pass (threads)", "hiermodels pandas", "lme4"]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(["---"] + ["--:"] * (len(columns) - 1)) + "|",
    ]
    for row in rows:
        cells = [row.data.label, f"{row.data.rows:,}", _partitions(row)]
        for scheduler in schedulers:
            cells += [_scan_cell(row.results[f"scan {scheduler}"]), _dask_cell(row, scheduler)]
        cells += [
            _statistics_cell(row),
            _program_cell(row, "pandas", rows),
            _program_cell(row, "lme4", rows),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _flat(estimates: dict[str, Any]) -> dict[str, float]:
    flat = {
        f"fixef {name.replace('(Intercept)', 'Intercept')}": float(value)
        for name, value in estimates["fixef"].items()
    }
    theta = estimates["theta"]
    flat.update(
        {
            f"theta {i}": float(v)
            for i, v in enumerate(theta if isinstance(theta, list) else [theta])
        }
    )
    flat["sigma"] = float(estimates["sigma"])
    flat["loglik"] = float(estimates["loglik"])
    return flat


def max_relative_difference(ours: dict[str, Any], reference: dict[str, Any]) -> tuple[float, str]:
    """Largest ``|ours - reference| / |reference|`` over fixef, theta, sigma and logLik.

    Parameters
    ----------
    ours, reference : dict
        Estimates as the children report them.

    Returns
    -------
    tuple of (float, str)
        The difference and the quantity where it occurs.
    """
    a, b = _flat(ours), _flat(reference)
    if a.keys() != b.keys():
        raise ValueError(f"different estimates: {sorted(a)} and {sorted(b)}")
    differences = {key: abs(a[key] - b[key]) / abs(b[key]) for key in b}
    worst = max(differences, key=differences.__getitem__)
    return differences[worst], worst


def accuracy_lines(rows: list[Row], tolerance: float) -> list[str]:
    """Dask against pandas (and lme4) estimates wherever both ran.

    Parameters
    ----------
    rows : list of Row
        The measurements.
    tolerance : float
        The target for Dask against pandas.

    Returns
    -------
    list of str
        Markdown lines.
    """
    lines = [
        "| data set | rows | Dask vs pandas: max rel. diff (where) | target | "
        "Dask vs lme4: max rel. diff (where) |",
        "|---|--:|--:|---|--:|",
    ]
    for row in rows:
        dask = row.get("dask threads") or row.get("dask cluster")
        pandas_fit, lme4 = row.get("pandas"), row.get("lme4")
        if dask is None or (pandas_fit is None and lme4 is None):
            continue
        cells = [row.data.label, f"{row.data.rows:,}"]
        if pandas_fit:
            diff, where = max_relative_difference(dask["estimates"], pandas_fit["estimates"])
            cells += [f"{diff:.1e} ({where})", "met" if diff <= tolerance else "MISSED"]
        else:
            cells += ["–", "–"]
        if lme4:
            diff, where = max_relative_difference(dask["estimates"], lme4)
            cells.append(f"{diff:.1e} ({where})")
        else:
            cells.append("–")
        lines.append("| " + " | ".join(cells) + " |")
        if row.get("dask threads") and row.get("dask cluster"):
            diff, where = max_relative_difference(
                row.results["dask cluster"]["estimates"],  # type: ignore[index]
                row.results["dask threads"]["estimates"],  # type: ignore[index]
            )
            lines.append(f"| ↳ cluster vs threads | | {diff:.1e} ({where}) | | |")
    return lines


def memory_lines(rows: list[Row], schedulers: list[str]) -> list[str]:
    """Peak memory of the pandas path beside the Dask path, and where pandas stops.

    Parameters
    ----------
    rows : list of Row
        The measurements.
    schedulers : list of str
        The Dask schedulers measured.

    Returns
    -------
    list of str
        Markdown lines.
    """
    slope_rows = sorted(
        (row for row in rows if row.data.kind == "slope"), key=lambda r: r.data.rows
    )
    header = ["rows (slope)", "pandas peak", *(f"Dask driver peak ({s})" for s in schedulers)]
    if "cluster" in schedulers:
        header.append("Dask worker peak (cluster)")
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["--:"] * len(header)) + "|"]
    for row in slope_rows:
        pandas_fit = row.get("pandas")
        cells = [
            f"{row.data.rows:,}",
            _megabytes(float(pandas_fit["rss"])) if pandas_fit else _pandas_need(row, rows),
        ]
        for scheduler in schedulers:
            result = row.get(f"dask {scheduler}")
            cells.append(_megabytes(float(result["rss"])) if result else "–")
        if "cluster" in schedulers:
            result = row.get("dask cluster")
            cells.append(_megabytes(float(result["worker_rss"])) if result else "–")
        lines.append("| " + " | ".join(cells) + " |")
    memory = _pandas_memory_model(slope_rows)
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    if memory is not None:
        baseline, per_row = memory
        limit = (total_mb - baseline) / per_row
        lines += [
            "",
            f"The in-memory path needs about {per_row * 1e6:.0f} MB per million rows of the "
            f"slope model above a {_megabytes(baseline)} baseline: on this machine's "
            f"{_megabytes(total_mb)} it stops at about {limit:.1e} rows; beyond that (and "
            "well before, where the memory is shared) the Dask path, whose driver holds "
            "only the statistics, takes over.",
        ]
    return lines


def target_lines(rows: list[Row], schedulers: list[str], tolerance: float) -> list[str]:
    """Which targets the run met: the ratio to the scan, the driver's peak, the estimates.

    Parameters
    ----------
    rows : list of Row
        The measurements.
    schedulers : list of str
        The Dask schedulers measured.
    tolerance : float
        The target for Dask against pandas.

    Returns
    -------
    list of str
        Markdown lines.
    """
    lines = []
    for row in rows:
        for scheduler in schedulers:
            dask, scan = row.get(f"dask {scheduler}"), row.get(f"scan {scheduler}")
            if dask is None or scan is None:
                status = row.results.get(f"{'scan' if scan is None else 'dask'} {scheduler}")
                lines.append(
                    f"- {row.data.label}, {row.data.rows:,} rows, {scheduler}: "
                    f"not measured ({status})"
                )
                continue
            ratio = dask["time"] / scan["time"]
            verdict = "met" if ratio <= 2 else "MISSED"
            lines.append(
                f"- {row.data.label}, {row.data.rows:,} rows, {scheduler}: "
                f"{ratio:.2f}× the bare scan (target ≤ 2×): {verdict}"
            )
    largest = max(rows, key=lambda r: r.data.rows, default=None)
    if largest is not None:
        for scheduler in schedulers:
            dask = largest.get(f"dask {scheduler}")
            if dask:
                peak = float(dask["rss"])
                verdict = "met" if peak < 2048 else "MISSED"
                lines.append(
                    f"- driver peak at {largest.data.rows:,} rows ({scheduler}): "
                    f"{_megabytes(peak)} (target < 2 GB): {verdict}"
                )
    for row in rows:
        dask, pandas_fit = row.get("dask threads") or row.get("dask cluster"), row.get("pandas")
        if dask and pandas_fit:
            diff, _ = max_relative_difference(dask["estimates"], pandas_fit["estimates"])
            verdict = "met" if diff <= tolerance else "MISSED"
            lines.append(
                f"- estimates, {row.data.label}, {row.data.rows:,} rows: Dask vs pandas "
                f"{diff:.1e} (target ≤ {tolerance:g}): {verdict}"
            )
    return lines


def report(rows: list[Row], options: argparse.Namespace) -> str:
    """Every table and the targets, as markdown.

    Parameters
    ----------
    rows : list of Row
        The measurements.
    options : argparse.Namespace
        The command-line options.

    Returns
    -------
    str
        The report.
    """
    schedulers = options.schedulers
    origin = next(
        (
            f"hiermodels {r['version']} from {r['source']}"
            for row in rows
            for r in [row.get("dask threads") or row.get("dask cluster")]
            if r
        ),
        "hiermodels",
    )
    lines = [
        "# Fits from Parquet through Dask: hiermodels beside a bare scan, pandas and lme4",
        "",
        f"{origin}; Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {THREADS} threads per program (Dask threaded scheduler"
        + (", LocalCluster of 2 one-thread workers" if "cluster" in schedulers else "")
        + "), one BLAS thread; REML. Load average (1, 5, 15 min) at the end: "
        + ", ".join(f"{load:.1f}" for load in os.getloadavg())
        + "."
        + (" --quick." if options.quick else ""),
        "",
        *main_table(rows, schedulers),
        "",
        "- Bare scan: `dd.read_parquet(folder).groupby(<group columns>).sum().compute()`. "
        "hiermodels Dask: `hm.Model.from_parquet(folder, formula).fit_mle()`, wall time · "
        "ratio to the bare scan under the same scheduler · the driver's peak resident "
        "memory (and the largest worker's). Statistics pass: `model.design.compressed` "
        "`seconds` · `n_cells` · `statistics_bytes`. hiermodels pandas: "
        "`hm.Model(formula, pd.read_parquet(folder)).fit_mle()`, fit time (read time) · "
        "peak. lme4: `lmer()` time (CSV read and factors) · peak of the R process; ‡: "
        "lme4 reports no convergence.",
        "- Models: "
        + "; ".join(f"{kind}: `{formula}`" for kind, formula in FORMULAS.items())
        + ". Group codes uniform per row, x standard normal.",
        "",
        "## Estimates",
        "",
        *accuracy_lines(rows, options.tolerance),
        "",
        "## Memory: in memory against Dask",
        "",
        *memory_lines(rows, schedulers),
        "",
        "## Targets",
        "",
        *target_lines(rows, schedulers, options.tolerance),
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Command line


def _count(text: str) -> int:
    value = float(text)
    if value != int(value) or value < 0:
        raise argparse.ArgumentTypeError(f"not a row count: {text}")
    return int(value)


def _counts(text: str) -> list[int]:
    return [_count(part) for part in text.split(",") if part.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=_counts,
        default=[10**6, 10**7, 10**8],
        help="rows of the slope data sets (1e6,1e7,1e8); 0 or an empty list: none",
    )
    parser.add_argument(
        "--groups", type=_count, default=100_000, help="groups of the slope model (100000)"
    )
    parser.add_argument(
        "--crossed-rows",
        type=_count,
        default=10**7,
        help="rows of the crossed data set (1e7; 0: none)",
    )
    parser.add_argument(
        "--crossed-levels",
        type=_counts,
        default=[10_000, 1_000],
        help="levels of a and b in the crossed model (10000,1000)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1e5 rows, 1,000 groups, 1,000 × 100 levels",
    )
    parser.add_argument(
        "--schedulers",
        type=lambda text: text.split(","),
        default=["threads", "cluster"],
        help="Dask schedulers: threads, cluster or both (threads,cluster)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("HIERMODELS_BENCH_DATA", "/tmp/hiermodels-bench-scale")),
        help="the cache of simulated data ($HIERMODELS_BENCH_DATA or /tmp/hiermodels-bench-scale)",
    )
    parser.add_argument(
        "--pandas-max-rows", type=_count, default=10**7, help="largest pandas run (1e7)"
    )
    parser.add_argument(
        "--lme4-max-rows", type=_count, default=10**7, help="largest lme4 run (1e7)"
    )
    parser.add_argument(
        "--lme4-timeout", type=float, default=900.0, help="seconds for one lme4 fit (900)"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds for one Python child (3600)"
    )
    parser.add_argument(
        "--tolerance", type=float, default=1e-8, help="Dask vs pandas target (1e-8)"
    )
    parser.add_argument(
        "--memory-limit",
        type=float,
        default=round(0.6 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        help="GB of resident memory (a child with its subprocesses) that stops a child "
        "(60%% of the machine's)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser


def data_sets(options: argparse.Namespace) -> list[DataSet]:
    """The data sets the options ask for, smallest first.

    Parameters
    ----------
    options : argparse.Namespace
        The command-line options.

    Returns
    -------
    list of DataSet
        The slope data sets, then the crossed one.
    """
    if options.quick:
        return [DataSet("slope", 10**5, (1_000,)), DataSet("crossed", 10**5, (1_000, 100))]
    found = [
        DataSet("slope", rows, (options.groups,)) for rows in sorted(set(options.sizes)) if rows
    ]
    if options.crossed_rows:
        found.append(DataSet("crossed", options.crossed_rows, tuple(options.crossed_levels)))
    return found


def main() -> None:
    """Simulate the data sets, run every measurement and print the tables."""
    if sys.argv[1:2] == ["--watch"]:
        watch(int(sys.argv[2]), float(sys.argv[3]))
        return
    if sys.argv[1:2] == ["--exec-watched"]:
        _exec_watched(float(sys.argv[2]), sys.argv[3:])
        return
    options = _parser().parse_args()
    if options.child is not None:
        child(json.loads(options.child))
        return
    unknown = set(options.schedulers) - {"threads", "cluster"}
    if unknown:
        raise SystemExit(f"unknown schedulers: {sorted(unknown)}")
    options.data_dir.mkdir(parents=True, exist_ok=True)
    have_lme4 = lme4_available()
    rows = []
    for data in data_sets(options):
        start = time.perf_counter()
        folder = write_data(data, options.data_dir)
        print(
            f"{data.name}: data in {folder} ({time.perf_counter() - start:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
        rows.append(measure(data, folder, options, have_lme4))
    text = report(rows, options)
    print(text)
    if options.json is not None:
        payload = [
            {"data": data_row.data.__dict__, "results": data_row.results} for data_row in rows
        ]
        options.json.write_text(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
