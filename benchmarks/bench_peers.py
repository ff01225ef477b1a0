"""Mixed-model fit times beside peer programs: hiermodels, lme4, glmmTMB and glmm.

Twelve models, from sleepstudy (180 rows) to a simulated Gaussian model with
2,000,000 rows, are fitted by

* hiermodels: ``hm.Model(formula, data, family).fit_mle()`` (REML for the
  linear mixed models, Laplace for the GLMMs);
* lme4 (through ``Rscript``): ``lmer(formula, data)`` (REML) or
  ``glmer(formula, data, family)`` (Laplace, ``nAGQ = 1``), lme4's defaults;
* glmmTMB (through ``Rscript``): ``glmmTMB(formula, data, family)``, its
  defaults except ``REML = TRUE`` for the linear mixed models (glmmTMB's
  default is ML, and the REML log-likelihoods are the ones compared);
* glmm (PyPI, Rust core): ``glmm.fit(data, formula, family)``, its defaults
  (REML for linear mixed models, Laplace for GLMMs).

Every program runs in a fresh process of its own with one thread
(``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
``NUMBA_NUM_THREADS`` and ``RAYON_NUM_THREADS`` are 1), and every program reads
the same CSV file: the parent process writes each model's data (shipped
datasets, mlmRev's egsingle from ``benchmarks/data``, the simulated data sets,
seed fixed) into a temporary directory once. The time of a program is the
median wall-clock time of repeated fits after one warm-up fit, formula handling
and design construction included; data loading is not. The median CPU time of
the same fits is shown beside it: on a machine busy with other work it is the
steadier number. The number of repeats is adaptive: as many as fit in about
3 s, within the model's bounds (3 to 20 for the small models, down to 1 for the
slow simulated GLMMs and InstEval, at most 3 for InstEval and the 2,000,000-row
model; ``--quick``: 1 to 3 within 1 s). Peak memory is the child process's
maximum resident set size (``ru_maxrss`` in Python, ``VmHWM`` of
``/proc/self/status`` in R), imports and data included; one fitted model is
kept in memory at a time.

The table also gives each program's log-likelihood (the REML criterion for
linear mixed models, as R's ``logLik``) and the largest absolute difference
from lme4's (from hiermodels' when lme4 is not run).

Examples
--------
Run every model with every program (about an hour on two busy CPUs, most of
it glmmTMB on the 2,000,000-row model: about 8 CPU minutes and 14 GB per fit;
lme4 needs about 50 CPU seconds there)::

    python benchmarks/bench_peers.py --json bench_peers.json

glmmTMB on the 2,000,000-row model left out (about 50 min less)::

    python benchmarks/bench_peers.py --skip glmmTMB:sim-gaussian-2m

Only some models, without R, with fewer repeats::

    python benchmarks/bench_peers.py --only sleepstudy,cbpp --skip-r --quick

``--list`` prints the model names. Without ``Rscript`` the R columns say
"R absent"; a missing R or Python package says "not installed".
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _children import THREAD_VARIABLES, run_child

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "hiermodels" / "datasets" / "data"
BENCH_DATA = Path(__file__).resolve().parent / "data"

PROGRAMS = ("hiermodels", "lme4", "glmmTMB", "glmm")
R_PROGRAMS = ("lme4", "glmmTMB")
SEED = 20240611
#: one program's results on one model (time, rss, loglik, ...), or what its cell says instead
Result = dict[str, Any] | str


@dataclass(frozen=True)
class Case:
    """One benchmark model.

    Attributes
    ----------
    name : str
        Key for ``--only`` and the JSON output.
    data : str
        Data set key of :data:`MAKERS`.
    formula : str
        lme4 formula, used by every program unless ``glmm_formula`` says otherwise.
    family : {"gaussian", "binomial", "poisson"}
        Response family (R's spelling).
    factors : tuple of str
        Columns every program reads as factors.
    hiermodels_family : str or None
        hiermodels' family when its name differs (``"bernoulli"`` for 0/1 data).
    glmm_formula : str or None
        glmm's spelling of the model; ``None`` uses ``formula``.
    glmm_note : str or None
        Footnote to the glmm column (how ``glmm_formula`` differs, or why glmm
        cannot fit the model when ``glmm_formula`` is ``"-"``).
    reps : tuple of int
        Least and most repeats after the warm-up fit.
    """

    name: str
    data: str
    formula: str
    family: str
    factors: tuple[str, ...]
    hiermodels_family: str | None = None
    glmm_formula: str | None = None
    glmm_note: str | None = None
    reps: tuple[int, int] = (3, 20)

    @property
    def method(self) -> str:
        """The criterion every program maximises."""
        return "REML" if self.family == "gaussian" else "Laplace"


CASES: tuple[Case, ...] = (
    Case(
        "sleepstudy", "sleepstudy", "Reaction ~ Days + (Days | Subject)", "gaussian", ("Subject",)
    ),
    Case(
        "penicillin",
        "penicillin",
        "diameter ~ 1 + (1 | plate) + (1 | sample)",
        "gaussian",
        ("plate", "sample"),
    ),
    Case(
        "classroom",
        "classroom",
        "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)",
        "gaussian",
        ("schoolid", "classid"),
    ),
    Case("radon", "radon", "log_radon ~ floor + (floor | county)", "gaussian", ("county",)),
    Case(
        "egsingle",
        "egsingle",
        "math ~ year + (1 | schoolid/childid)",
        "gaussian",
        ("schoolid", "childid"),
    ),
    Case(
        "insteval",
        "insteval",
        "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)",
        "gaussian",
        ("s", "d", "dept", "service"),
        reps=(1, 3),
    ),
    Case(
        "cbpp",
        "cbpp",
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "binomial",
        ("herd", "period"),
        glmm_formula="cbind(incidence, failures) ~ period + (1 | herd)",
        glmm_note=(
            "glmm's cbind() takes two column names only, not `size - incidence`: "
            "glmm fits `cbind(incidence, failures)` with the column failures = "
            "size - incidence written into the same CSV file."
        ),
    ),
    Case(
        "grouseticks",
        "grouseticks",
        "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
        "poisson",
        ("YEAR", "BROOD", "INDEX", "LOCATION"),
    ),
    Case(
        "sim-bernoulli-slope",
        "sim-bernoulli-slope",
        "y ~ x + x1 + x2 + x3 + x4 + x5 + (x | g)",
        "binomial",
        ("g",),
        hiermodels_family="bernoulli",
        reps=(1, 20),
    ),
    Case(
        "sim-bernoulli-crossed",
        "sim-bernoulli-crossed",
        "y ~ x1 + x2 + x3 + x4 + x5 + (1 | a) + (1 | b)",
        "binomial",
        ("a", "b"),
        hiermodels_family="bernoulli",
        reps=(1, 20),
    ),
    Case(
        "sim-gaussian-2m",
        "sim-gaussian-2m",
        "y ~ x + (x | g)",
        "gaussian",
        ("g",),
        reps=(1, 3),
    ),
    Case(
        "sim-poisson-slope",
        "sim-poisson-slope",
        "y ~ x + (x | g)",
        "poisson",
        ("g",),
        reps=(1, 10),
    ),
)


# ---------------------------------------------------------------------------
# Data: every program reads the CSV file written here.


def _shipped(name: str) -> pd.DataFrame:
    return pd.read_csv(SHIPPED / f"{name}.csv")


def _cbpp() -> pd.DataFrame:
    data = _shipped("cbpp")
    data["failures"] = data["size"] - data["incidence"]
    return data


def _grouseticks() -> pd.DataFrame:
    # HEIGHT standardised, as R's scale(HEIGHT): centred at its mean and divided by
    # its standard deviation (the log-likelihood does not depend on this).
    data = _shipped("grouseticks")
    data["HEIGHT"] = (data["HEIGHT"] - data["HEIGHT"].mean()) / data["HEIGHT"].std(ddof=1)
    return data


def _correlated_effects(
    rng: np.random.Generator, groups: int, sd: tuple[float, float], rho: float
) -> np.ndarray:
    cov = np.array([[sd[0] ** 2, rho * sd[0] * sd[1]], [rho * sd[0] * sd[1], sd[1] ** 2]])
    return rng.multivariate_normal(np.zeros(2), cov, size=groups)


def _sim_bernoulli_slope() -> pd.DataFrame:
    """1,934 rows in 60 groups; 7 fixed effects; correlated intercept and slope of x."""
    rng = np.random.default_rng(SEED)
    n, groups = 1934, 60
    g = rng.permutation(np.arange(n) % groups)
    X = rng.standard_normal((n, 6))
    beta = np.array([-0.4, 0.8, 0.5, -0.4, 0.3, 0.2, -0.2])
    b = _correlated_effects(rng, groups, (0.8, 0.4), 0.3)
    eta = beta[0] + X @ beta[1:] + b[g, 0] + b[g, 1] * X[:, 0]
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame(
        {"y": y, "x": X[:, 0], **{f"x{k}": X[:, k] for k in range(1, 6)}, "g": g + 1}
    )


def _sim_bernoulli_crossed() -> pd.DataFrame:
    """316 × 24 fully crossed levels, one row per cell (7,584 rows); 6 fixed effects."""
    rng = np.random.default_rng(SEED + 1)
    a, b = np.meshgrid(np.arange(316), np.arange(24), indexing="ij")
    a, b = a.ravel(), b.ravel()
    n = a.size
    X = rng.standard_normal((n, 5))
    beta = np.array([0.2, 0.5, -0.3, 0.3, -0.2, 0.1])
    u_a = rng.normal(0.0, 0.7, 316)
    u_b = rng.normal(0.0, 0.5, 24)
    eta = beta[0] + X @ beta[1:] + u_a[a] + u_b[b]
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    return pd.DataFrame(
        {"y": y, **{f"x{k}": X[:, k - 1] for k in range(1, 6)}, "a": a + 1, "b": b + 1}
    )


def _sim_gaussian_2m() -> pd.DataFrame:
    """2,000,000 rows, 20,000 groups of 100; correlated intercept and slope."""
    rng = np.random.default_rng(SEED + 2)
    n, groups = 2_000_000, 20_000
    g = np.repeat(np.arange(groups), n // groups)
    x = rng.standard_normal(n)
    b = _correlated_effects(rng, groups, (2.0, 1.0), 0.2)
    y = 10.0 + 2.0 * x + b[g, 0] + b[g, 1] * x + rng.normal(0.0, 3.0, n)
    return pd.DataFrame({"y": y.round(6), "x": x.round(6), "g": g + 1})


def _sim_poisson_slope() -> pd.DataFrame:
    """100,000 rows, 1,000 groups of 100; correlated intercept and slope."""
    rng = np.random.default_rng(SEED + 3)
    n, groups = 100_000, 1_000
    g = np.repeat(np.arange(groups), n // groups)
    x = rng.standard_normal(n)
    b = _correlated_effects(rng, groups, (0.5, 0.25), 0.4)
    y = rng.poisson(np.exp(0.5 + 0.3 * x + b[g, 0] + b[g, 1] * x))
    return pd.DataFrame({"y": y, "x": x.round(8), "g": g + 1})


#: data set key → function returning the data frame every program reads
MAKERS = {
    "sleepstudy": lambda: _shipped("sleepstudy"),
    "penicillin": lambda: _shipped("penicillin"),
    "classroom": lambda: _shipped("classroom"),
    "radon": lambda: _shipped("radon"),
    "egsingle": lambda: pd.read_csv(BENCH_DATA / "egsingle.csv.gz"),
    "insteval": lambda: _shipped("insteval"),
    "cbpp": _cbpp,
    "grouseticks": _grouseticks,
    "sim-bernoulli-slope": _sim_bernoulli_slope,
    "sim-bernoulli-crossed": _sim_bernoulli_crossed,
    "sim-gaussian-2m": _sim_gaussian_2m,
    "sim-poisson-slope": _sim_poisson_slope,
}


def write_data(case: Case, directory: Path) -> tuple[Path, int]:
    """Write the case's data to ``directory`` (once per data set); return path and rows."""
    path = directory / f"{case.data}.csv"
    if not path.exists():
        MAKERS[case.data]().to_csv(path, index=False)
    with path.open() as handle:
        rows = sum(1 for _ in handle) - 1
    return path, rows


# ---------------------------------------------------------------------------
# The child processes. Each prints one JSON line last.

_PYTHON_CHILD = """
import json, math, resource, statistics, sys, time, warnings
import pandas as pd
job = json.loads(sys.argv[1])
data = pd.read_csv(job["path"])
for column in job["factors"]:
    data[column] = data[column].astype("category")
if job["program"] == "hiermodels":
    import hiermodels as hm
    version = hm.__version__
    source = hm.__file__.rsplit("/", 2)[0]
    def fit():
        return hm.Model(job["formula"], data, job["family"]).fit_mle()
    def summary(result):
        return result.loglik, bool(getattr(result.opt, "converged", True))
else:
    import glmm
    from importlib.metadata import version as _version
    version = _version("glmm")
    source = glmm.__file__.rsplit("/", 2)[0]
    def fit():
        return glmm.fit(data, job["formula"], job["family"])
    def summary(result):
        return result.loglik, bool(result.converged)
def timed():
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit()
    return time.perf_counter() - start, time.process_time() - cpu, result
warmup, _, result = timed()
reps = min(job["max_reps"], max(job["min_reps"], math.floor(job["budget"] / warmup)))
times, cpu_times = [], []
for _ in range(reps):
    result = None  # one fit in memory at a time
    elapsed, cpu, result = timed()
    times.append(elapsed)
    cpu_times.append(cpu)
loglik, converged = summary(result)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"time": statistics.median(times), "cpu": statistics.median(cpu_times),
                  "warmup": warmup, "reps": reps,
                  "rss": rss, "loglik": loglik, "converged": converged,
                  "version": version, "source": source}))
"""

_R_CHILD = r"""
suppressMessages(library({package}))
d <- read.csv("{path}")
for (v in {factors}) d[[v]] <- factor(d[[v]])
clock <- function() {{
  now <- proc.time()
  c(now[["elapsed"]], now[["user.self"]] + now[["sys.self"]])
}}
timed <- function() {{
  start <- clock()
  fit <- suppressWarnings({call})
  spent <- clock() - start
  list(time = spent[1], cpu = spent[2], fit = fit)
}}
run <- timed()
warmup <- run$time
reps <- min({max_reps}, max({min_reps}, floor({budget} / max(warmup, 1e-9))))
times <- cpu <- numeric(reps)
for (i in seq_len(reps)) {{
  run <- NULL  # one fit in memory at a time
  run <- timed()
  times[i] <- run$time
  cpu[i] <- run$cpu
}}
fit <- run$fit
{converged}
status <- readLines("/proc/self/status")
hwm <- as.numeric(gsub("[^0-9]", "", grep("^VmHWM:", status, value = TRUE))) / 1024
cat(sprintf(paste0('{{"time": %.6f, "cpu": %.6f, "warmup": %.6f, "reps": %d, "rss": %.1f, ',
                   '"loglik": %.8f, "converged": %s, "version": "%s"}}\n'),
            median(times), median(cpu), warmup, reps, hwm, as.numeric(logLik(fit)),
            if (isTRUE(converged)) "true" else "false",
            as.character(packageVersion("{package}"))))
"""

#: how each R package reports convergence of ``fit``
_R_CONVERGED = {
    "lme4": "converged <- length(fit@optinfo$conv$lme4$messages) == 0 && fit@optinfo$conv$opt == 0",
    "glmmTMB": "converged <- fit$fit$convergence == 0 && isTRUE(fit$sdr$pdHess)",
}


def _r_call(program: str, case: Case) -> str:
    if program == "lme4":
        if case.family == "gaussian":
            return f"lmer({case.formula}, data = d)"
        return f"glmer({case.formula}, data = d, family = {case.family})"
    reml = ", REML = TRUE" if case.family == "gaussian" else ""
    return f"glmmTMB({case.formula}, data = d, family = {case.family}{reml})"


def _child_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(dict.fromkeys(THREAD_VARIABLES, "1"))
    return env


@dataclass
class Options:
    """Repeat bounds and time limits of one run."""

    budget: float = 3.0
    quick: bool = False
    timeout: float = 7200.0

    def reps(self, case: Case) -> tuple[int, int, float]:
        """Least and most repeats of ``case`` after the warm-up fit, and their time budget."""
        low, high = case.reps
        if self.quick:
            return 1, min(high, 3), 1.0
        return low, high, self.budget


def run_program(
    program: str, case: Case, path: Path, options: Options, available: dict[str, str | None]
) -> Result:
    """Fit ``case`` with ``program`` in a fresh process; a dict of results or a status."""
    missing = available.get(program)
    if missing is not None:
        return missing
    min_reps, max_reps, budget = options.reps(case)
    if program in R_PROGRAMS:
        factors = "c(" + ", ".join(f'"{f}"' for f in case.factors) + ")"
        script = _R_CHILD.format(
            package=program,
            path=path,
            factors=factors,
            call=_r_call(program, case),
            converged=_R_CONVERGED[program],
            min_reps=min_reps,
            max_reps=max_reps,
            budget=budget,
        )
        return run_child(
            ["Rscript", "-e", script],
            timeout=options.timeout,
            cwd=path.parent,
            env=_child_environment(),
        )
    if program == "glmm":
        if case.glmm_formula == "-":
            return "–"
        formula = case.glmm_formula or case.formula
        family = case.family
    else:
        formula = case.formula
        family = case.hiermodels_family or case.family
    job = {
        "program": program,
        "path": str(path),
        "factors": list(case.factors),
        "formula": formula,
        "family": family,
        "min_reps": min_reps,
        "max_reps": max_reps,
        "budget": budget,
    }
    # The child runs in the data directory, so that ``-c`` does not put the current
    # directory before PYTHONPATH on its module path.
    return run_child(
        [sys.executable, "-c", _PYTHON_CHILD, json.dumps(job)],
        timeout=options.timeout,
        cwd=path.parent,
        env=_child_environment(),
    )


def availability(skip_r: bool) -> dict[str, str | None]:
    """``None`` for each program that can run, otherwise what its column says."""
    found: dict[str, str | None] = {"hiermodels": None}
    found["glmm"] = None if importlib.util.find_spec("glmm") else "not installed"
    if skip_r:
        found.update(dict.fromkeys(R_PROGRAMS, "skipped (--skip-r)"))
    elif shutil.which("Rscript") is None:
        found.update(dict.fromkeys(R_PROGRAMS, "R absent"))
    else:
        for package in R_PROGRAMS:
            probe = subprocess.run(
                ["Rscript", "-e", f"quit(status = !requireNamespace('{package}', quietly = TRUE))"],
                capture_output=True,
            )
            found[package] = None if probe.returncode == 0 else "not installed"
    return found


# ---------------------------------------------------------------------------
# Results and the table.


@dataclass
class Row:
    """Every program's result on one case."""

    case: Case
    rows: int
    results: dict[str, Result] = field(default_factory=dict)

    def reference(self) -> str | None:
        """The program the log-likelihoods are compared with: lme4, else hiermodels."""
        for program in ("lme4", "hiermodels"):
            if isinstance(self.results.get(program), dict):
                return program
        return None

    def max_abs_dloglik(self) -> float | None:
        """Largest |logLik − reference logLik| over the other programs that ran."""
        reference = self.reference()
        if reference is None:
            return None
        base = float(self.results[reference]["loglik"])
        deltas = [
            abs(float(result["loglik"]) - base)
            for program, result in self.results.items()
            if program != reference and isinstance(result, dict)
        ]
        return max(deltas) if deltas else None

    def to_json(self) -> dict[str, Any]:
        """The row as plain JSON data."""
        return {
            "name": self.case.name,
            "formula": self.case.formula,
            "family": self.case.family,
            "method": self.case.method,
            "rows": self.rows,
            "results": self.results,
            "reference": self.reference(),
            "max_abs_dloglik": self.max_abs_dloglik(),
        }


def _seconds(value: float) -> str:
    if value < 1.0:
        return f"{value * 1000:.1f} ms"
    return f"{value:.2f} s"


def _timing_cell(result: Result) -> str:
    if isinstance(result, str):
        return result
    cell = (
        f"{_seconds(float(result['time']))} (cpu {_seconds(float(result['cpu']))}) · "
        f"{float(result['rss']):.0f} MB"
    )
    return cell if result.get("converged", True) else cell + " ‡"


def _loglik_cell(result: Result) -> str:
    return f"{float(result['loglik']):.3f}" if isinstance(result, dict) else "–"


def markdown(rows: list[Row], header: list[str]) -> str:
    """The results as a markdown table with its notes."""
    columns = [
        "model",
        "rows",
        "method",
        *(f"{p} time · peak" for p in PROGRAMS),
        *(f"{p} logLik" for p in PROGRAMS),
        r"max \|ΔlogLik\|",
    ]
    lines = [*header, "", "| " + " | ".join(columns) + " |"]
    lines.append("|" + "|".join(["---"] * 3 + ["--:"] * (len(columns) - 3)) + "|")
    notes: list[str] = []
    for row in rows:
        delta = row.max_abs_dloglik()
        reference = row.reference()
        if delta is None:
            delta_cell = "–"
        else:
            delta_cell = f"{delta:.2g}" + (" (vs hiermodels)" if reference == "hiermodels" else "")
        glmm_result = row.results.get("glmm")
        glmm_cell = _timing_cell(glmm_result) if glmm_result is not None else "–"
        if row.case.glmm_note:
            notes.append(row.case.glmm_note)
            glmm_cell += f" [{len(notes)}]"
        cells = [
            row.case.name,
            f"{row.rows:,}",
            row.case.method,
            *(_timing_cell(row.results[p]) for p in PROGRAMS if p != "glmm"),
            glmm_cell,
            *(_loglik_cell(row.results[p]) for p in PROGRAMS),
            delta_cell,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Models:")
    lines.append("")
    for row in rows:
        lines.append(f"- {row.case.name}: `{row.case.formula}` ({row.case.family})")
    lines.append("")
    lines.append("Notes:")
    lines.append("")
    for number, note in enumerate(notes, 1):
        lines.append(f"- [{number}] {note}")
    lines.extend(
        [
            "- Time: median wall-clock time of repeated fits after one warm-up fit, formula "
            "and design handling included, data loading not; one thread per process. "
            "cpu: median CPU time (user + system) of the same fits, less sensitive to other "
            "load on the machine. "
            "Peak: maximum resident memory of the process, imports and data included "
            "(importing hiermodels loads PyMC, about 260 MB).",
            "- ‡: the program reports that the fit did not converge (lme4: convergence "
            "messages or optimiser code; glmmTMB: optimiser code or a Hessian that is not "
            "positive definite; hiermodels and glmm: their `converged` flag).",
            "- logLik: R's `logLik` scale; the REML criterion for REML fits. "
            "max |ΔlogLik|: against lme4, or against hiermodels when lme4 did not run.",
            "- lme4 and glmmTMB run with their defaults, except `REML = TRUE` for glmmTMB's "
            "linear mixed models (its default is ML). grouseticks: HEIGHT standardised "
            "(`scale(HEIGHT)`: centred and divided by its SD) in the data file every "
            "program reads.",
        ]
    )
    return "\n".join(lines)


def _header(available: dict[str, str | None], rows: list[Row], options: Options) -> list[str]:
    versions = {"hiermodels": importlib.metadata.version("hiermodels")}
    for program in PROGRAMS:
        for row in rows:
            result = row.results.get(program)
            if isinstance(result, dict) and "version" in result:
                versions[program] = str(result["version"])
                break
    named = ", ".join(f"{p} {versions.get(p, available.get(p) or '?')}" for p in PROGRAMS)
    for row in rows:
        result = row.results.get("hiermodels")
        if isinstance(result, dict) and "source" in result:
            named += f" (hiermodels imported from {_origin(str(result['source']))})"
            break
    return [
        "# Mixed-model fit times: hiermodels and its peers",
        "",
        f"{named}; Python {platform.python_version()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs; one thread per process"
        + ("; --quick" if options.quick else "")
        + ".",
    ]


def _origin(source: str) -> str:
    """``source``, with its git commit when it is a git work tree."""
    try:
        commit = subprocess.run(
            ["git", "-C", source, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", source, "status", "--porcelain", "--untracked-files=no", "hiermodels"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return source
    return f"{source} at {commit}" + (" with uncommitted changes" if dirty else "")


def _loads(loads: tuple[float, float, float]) -> str:
    return ", ".join(f"{load:.2f}" for load in loads)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", action="append", default=[], metavar="NAME[,NAME]", help="models to run"
    )
    parser.add_argument("--skip-r", action="store_true", help="do not run lme4 and glmmTMB")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (1 to 3 per fit)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument(
        "--timeout", type=float, default=7200.0, help="seconds per program and model"
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="PROGRAM:MODEL",
        help="leave one program out on one model (e.g. glmmTMB:sim-gaussian-2m)",
    )
    parser.add_argument("--list", action="store_true", help="print the model names and exit")
    return parser.parse_args(argv)


def _select(only: list[str]) -> list[Case]:
    if not only:
        return list(CASES)
    wanted = [name.strip() for item in only for name in item.split(",") if name.strip()]
    by_name = {case.name: case for case in CASES}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(by_name)}")
    return [case for case in CASES if case.name in wanted]


def _skipped(items: list[str]) -> set[tuple[str, str]]:
    """``(program, model)`` pairs from ``--skip PROGRAM:MODEL`` options."""
    pairs = set()
    names = {case.name for case in CASES}
    for item in items:
        program, _, model = item.partition(":")
        if program not in PROGRAMS or model not in names:
            raise SystemExit(
                f"--skip takes PROGRAM:MODEL with a program of {', '.join(PROGRAMS)} and a "
                f"model of --list; got {item!r}"
            )
        pairs.add((program, model))
    return pairs


def main(argv: list[str] | None = None) -> None:
    """Fit the selected models with every available program and print the table."""
    args = _parse(argv)
    if args.list:
        print("\n".join(case.name for case in CASES))
        return
    cases = _select(args.only)
    skipped = _skipped(args.skip)
    options = Options(quick=args.quick, timeout=args.timeout)
    available = availability(args.skip_r)
    load_before = os.getloadavg()
    started = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmp:
        for case in cases:
            path, n = write_data(case, Path(tmp))
            row = Row(case, n)
            for program in PROGRAMS:
                print(f"{case.name}: {program} …", file=sys.stderr, flush=True)
                tic = time.perf_counter()
                row.results[program] = (
                    "skipped (--skip)"
                    if (program, case.name) in skipped
                    else run_program(program, case, path, options, available)
                )
                print(
                    f"{case.name}: {program} {_timing_cell(row.results[program])} "
                    f"({time.perf_counter() - tic:.0f} s)",
                    file=sys.stderr,
                    flush=True,
                )
            rows.append(row)
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()
    header = _header(available, rows, options)
    table = markdown(rows, header)
    print(table)
    print(
        f"\nTotal run time: {elapsed / 60:.1f} min. Load average (1, 5, 15 min) at the "
        f"start {_loads(load_before)}, at the end {_loads(load_after)}."
    )
    if args.json is not None:
        payload = {
            "programs": header[-1],
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "quick": args.quick,
            "seed": SEED,
            "thread_variables": dict.fromkeys(THREAD_VARIABLES, "1"),
            "elapsed_seconds": elapsed,
            "load_average_start": load_before,
            "load_average_end": load_after,
            "models": [row.to_json() for row in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2, allow_nan=True) + "\n")


if __name__ == "__main__":
    main()
