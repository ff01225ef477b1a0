"""Parametric bootstrap times: ``MixedFit.bootstrap`` beside lme4's ``bootMer``.

Each program runs in a fresh process on this machine, one after the other,
with one BLAS thread (``OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=1``). The table
shows the wall-clock time of the bootstrap alone — after imports, data
loading and the first fit — in one process (hiermodels ``n_jobs=1``,
``bootMer(parallel = "no")``) and in two (``n_jobs=2``, spawned workers;
``bootMer(parallel = "multicore", ncpus = 2)``, forked ones). lme4 runs only
when ``Rscript`` and lme4 are installed; otherwise its columns say so.

Run: ``python benchmarks/bench_bootstrap.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from _children import lme4_available, run_child

DATA = Path(__file__).resolve().parents[1] / "hiermodels" / "datasets" / "data"

#: name → (dataset, formula, family, lme4 grouping factors, replicates)
CASES: dict[str, tuple[str, str, str, list[str], int]] = {
    "sleepstudy slope": (
        "sleepstudy",
        "Reaction ~ Days + (Days | Subject)",
        "gaussian",
        ["Subject"],
        1000,
    ),
    "sleepstudy intercept": (
        "sleepstudy",
        "Reaction ~ Days + (1 | Subject)",
        "gaussian",
        ["Subject"],
        1000,
    ),
    "cbpp binomial": (
        "cbpp",
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "binomial",
        ["herd", "period"],
        200,
    ),
}

_HIERMODELS = """
import json, time, warnings
import hiermodels as hm


if __name__ == "__main__":
    data = hm.datasets.load({dataset!r})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = hm.Model({formula!r}, data, family={family!r}).fit_mle()
        start = time.perf_counter()
        boot = fit.bootstrap({nsim}, random_seed=1, n_jobs={jobs}, progressbar=False)
    elapsed = time.perf_counter() - start
    print(json.dumps({{"time": elapsed, "failed": boot.n_failed, "singular": boot.n_singular}}))
"""

_LME4 = r"""
suppressMessages(library(lme4))
d <- read.csv("{path}", stringsAsFactors = TRUE)
for (v in {factors}) d[[v]] <- factor(d[[v]])
fit <- {call}
stat <- function(f) c(fixef(f), getME(f, "theta"))
set.seed(1)
elapsed <- system.time(
  b <- bootMer(fit, stat, nsim = {nsim}, parallel = "{parallel}", ncpus = {jobs})
)[["elapsed"]]
failed <- sum(!stats::complete.cases(b$t))
cat(sprintf('{{"time": %.6f, "failed": %d}}\n', elapsed, failed))
"""


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return env


def _ours(dataset: str, formula: str, family: str, nsim: int, jobs: int) -> dict[str, float] | str:
    script = _HIERMODELS.format(
        dataset=dataset, formula=formula, family=family, nsim=nsim, jobs=jobs
    )
    path = Path(f"/tmp/bench_bootstrap_{os.getpid()}.py")
    path.write_text(script)  # a file, not -c: spawned workers re-import the main module
    try:
        return run_child([sys.executable, str(path)], env=_environment())
    finally:
        path.unlink()


def _lme4(
    dataset: str, formula: str, family: str, factors: list[str], nsim: int, jobs: int
) -> dict[str, float] | str:
    call = (
        f"lmer({formula}, data = d)"
        if family == "gaussian"
        else f"glmer({formula}, data = d, family = {family})"
    )
    script = _LME4.format(
        path=DATA / f"{dataset}.csv",
        factors="c(" + ", ".join(f'"{f}"' for f in factors) + ")",
        call=call,
        nsim=nsim,
        parallel="no" if jobs == 1 else "multicore",
        jobs=jobs,
    )
    return run_child(["Rscript", "-e", script], env=_environment())


def _cell(result: dict[str, float] | str) -> str:
    if isinstance(result, str):
        return result
    failed = f" ({int(result['failed'])} failed)" if result["failed"] else ""
    return f"{result['time']:7.2f} s{failed}"


def main() -> None:
    """Run every case with every available program and print the table."""
    have_lme4 = lme4_available()
    header = (
        f"{'model':<21} | {'nsim':>5} | {'hiermodels 1 proc':>17} | {'hiermodels 2 procs':>18} | "
        f"{'bootMer 1 proc':>17} | {'bootMer 2 procs':>17}"
    )
    print("Parametric bootstrap: wall time of the replicates (one BLAS thread per process)")
    print(header)
    print("-" * len(header))
    for name, (dataset, formula, family, factors, nsim) in CASES.items():
        cells = [_cell(_ours(dataset, formula, family, nsim, jobs)) for jobs in (1, 2)]
        for jobs in (1, 2):
            cells.append(
                _cell(_lme4(dataset, formula, family, factors, nsim, jobs))
                if have_lme4
                else "lme4 not installed"
            )
        print(
            f"{name:<21} | {nsim:>5} | {cells[0]:>17} | {cells[1]:>18} | "
            f"{cells[2]:>17} | {cells[3]:>17}",
            flush=True,
        )


if __name__ == "__main__":
    main()
