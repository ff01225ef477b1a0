"""REML fit times: hiermodels beside statsmodels' MixedLM and lme4 (through Rscript).

Every fit runs in a fresh process on this machine, one after the other; the
table shows the median wall-clock time of repeated fits after imports and
data loading, and the peak resident memory of that process. lme4 is run
only when ``Rscript`` and the lme4 package are installed; otherwise its
column says so.

Run: ``python benchmarks/bench_lmm.py`` (or ``make bench``).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from _children import lme4_available, run_child

DATA = Path(__file__).resolve().parents[1] / "hiermodels" / "datasets" / "data"

#: name → (dataset, lme4 formula, repetitions)
CASES: dict[str, tuple[str, str, int]] = {
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", 20),
    "classroom": (
        "classroom",
        "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)",
        10,
    ),
    "radon slope": ("radon", "log_radon ~ floor + (floor | county)", 20),
    "InstEval": ("insteval", "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", 3),
}

_HIERMODELS = """
import json, resource, statistics, sys, time, warnings
import hiermodels as hm
data = hm.datasets.load({dataset!r})
model = hm.Model({formula!r}, data)
times = []
for _ in range({reps}):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = model.fit_mle("REML")
    times.append(time.perf_counter() - start)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"time": statistics.median(times), "rss": rss, "loglik": fit.loglik}}))
"""

_STATSMODELS = """
import json, resource, statistics, time, warnings
import pandas as pd
import statsmodels.formula.api as smf
import hiermodels as hm

data = hm.datasets.load({dataset!r})
spec = {spec!r}
times = []
for _ in range({reps}):
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = smf.mixedlm(spec["formula"], data, groups=data[spec["groups"]],
                            re_formula=spec.get("re"), vc_formula=spec.get("vc"))
        fit = model.fit(reml=True)
    times.append(time.perf_counter() - start)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"time": statistics.median(times), "rss": rss, "loglik": float(fit.llf)}}))
"""

#: statsmodels' MixedLM spelling of each case (None: it cannot fit the crossed design).
STATSMODELS: dict[str, dict[str, object] | None] = {
    "sleepstudy": {"formula": "Reaction ~ Days", "groups": "Subject", "re": "~Days"},
    "classroom": {
        "formula": "mathgain ~ mathkind + sex + minority + ses",
        "groups": "schoolid",
        "re": "1",
        "vc": {"classid": "0 + C(classid)"},
    },
    "radon slope": {"formula": "log_radon ~ floor", "groups": "county", "re": "~floor"},
    "InstEval": None,
}

_LME4 = r"""
suppressMessages(library(lme4))
d <- read.csv("{path}", stringsAsFactors = TRUE)
for (v in {factors}) d[[v]] <- factor(d[[v]])
times <- numeric({reps})
for (i in seq_len({reps})) times[i] <- system.time(fit <- lmer({formula}, data = d))[["elapsed"]]
mem <- as.numeric(system(paste("ps -o rss= -p", Sys.getpid()), intern = TRUE)) / 1024
cat(sprintf('{{"time": %.6f, "rss": %.1f, "loglik": %.6f}}\n', median(times), mem,
            as.numeric(logLik(fit))))
"""

_FACTORS = {
    "sleepstudy": ["Subject"],
    "classroom": ["schoolid", "classid"],
    "radon": ["county"],
    "insteval": ["s", "d", "service", "dept"],
}


def _cell(result: dict[str, float] | str | None) -> str:
    if result is None:
        return "cannot fit"
    if isinstance(result, str):
        return result
    return f"{result['time'] * 1000:9.1f} ms {result['rss']:6.0f} MB"


def main() -> None:
    """Run every case with every available program and print the table."""
    have_lme4 = lme4_available()
    rows = []
    for name, (dataset, formula, reps) in CASES.items():
        ours = run_child(
            [sys.executable, "-c", _HIERMODELS.format(dataset=dataset, formula=formula, reps=reps)]
        )
        spec = STATSMODELS[name]
        sm = (
            run_child(
                [sys.executable, "-c", _STATSMODELS.format(dataset=dataset, spec=spec, reps=reps)]
            )
            if spec is not None
            else None
        )
        if have_lme4:
            factors = "c(" + ", ".join(f'"{f}"' for f in _FACTORS[dataset]) + ")"
            script = _LME4.format(
                path=DATA / f"{dataset}.csv", formula=formula, reps=reps, factors=factors
            )
            lme4 = run_child(["Rscript", "-e", script])
        else:
            lme4 = "Rscript/lme4 not installed"
        rows.append((name, ours, sm, lme4))
    header = f"{'model':<12} | {'hiermodels':>22} | {'statsmodels MixedLM':>22} | {'lme4':>22}"
    print("REML fit: median wall time and peak RSS of the process")
    print(header)
    print("-" * len(header))
    for name, ours, sm, lme4 in rows:
        print(f"{name:<12} | {_cell(ours):>22} | {_cell(sm):>22} | {_cell(lme4):>22}")
    print()
    print(
        textwrap.fill(
            "logLik agreement: "
            + "; ".join(
                f"{name}: hiermodels {ours['loglik']:.3f}"
                + (f", lme4 {lme4['loglik']:.3f}" if isinstance(lme4, dict) else "")
                for name, ours, _, lme4 in rows
                if isinstance(ours, dict)
            ),
            width=100,
        )
    )


if __name__ == "__main__":
    main()
