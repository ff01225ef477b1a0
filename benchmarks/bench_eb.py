"""Empirical-Bayes and Laplace timings beside full Bayes and lme4/glmer.

Each program runs in a fresh process on this machine, one after the other.
Times are medians of repeated runs after imports and data loading (MCMC
runs once each, compile included).

* ``fit_eb`` (closed form for Gaussian models, adaptive quadrature for the
  binomial cbpp model, both with the Kass–Steffey correction) and
  ``fit_bayes`` (nutpie, 4 chains × 1000 draws) on sleepstudy, tlc, cbpp;
  lmer/glmer for the same models.
* The Laplace fit of cbpp and grouseticks against glmer (nAGQ = 1).

Run: ``python benchmarks/bench_eb.py`` (or ``make bench``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from _children import lme4_available, run_child

DATA = Path(__file__).resolve().parents[1] / "hiermodels" / "datasets" / "data"

#: name → (dataset, formula, family, R factor columns)
CASES = {
    "sleepstudy": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", "gaussian", ["Subject"]),
    "tlc": ("tlc", "lead ~ week + treatment + (1 | id)", "gaussian", ["id", "treatment"]),
    "cbpp": (
        "cbpp",
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "binomial",
        ["herd", "period"],
    ),
    "grouseticks": (
        "grouseticks",
        "TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)",
        "poisson",
        ["BROOD", "YEAR", "LOCATION"],
    ),
}

_OURS = """
import json, statistics, time, warnings
warnings.simplefilter("ignore")
import hiermodels as hm

data = hm.datasets.load({dataset!r})
model = hm.Model({formula!r}, data, family={family!r})
def timed(fn, reps):
    out = []
    for _ in range(reps):
        start = time.perf_counter(); fn(); out.append(time.perf_counter() - start)
    return statistics.median(out)
result = {{"mle": timed(model.fit_mle, 5)}}
if {eb}:
    kind = "analytic" if {family!r} == "gaussian" else "quadrature"
    plugin = "hyper" if kind == "analytic" else "all"
    result["eb"] = timed(lambda: model.fit_eb(eb_method=kind, plugin=plugin), 3)
if {bayes}:
    result["bayes"] = timed(lambda: model.fit_bayes(random_seed=1, progressbar=False), 1)
print(json.dumps(result))
"""

_R = r"""
suppressMessages(library(lme4))
d <- read.csv("{path}")
for (v in {factors}) d[[v]] <- factor(d[[v]])
fam <- "{family}"
fit1 <- function() if (fam == "gaussian") lmer({formula}, data = d) else
  glmer({formula}, data = d, family = fam)
times <- replicate(5, system.time(fit1())[["elapsed"]])
cat(sprintf('{{"mle": %.6f}}\n', median(times)))
"""


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value * 1000:10.1f} ms"


def main() -> None:
    """Run the cases and print the table."""
    have_r = lme4_available()
    print(
        f"{'model':<12} | {'MLE':>13} | {'fit_eb':>13} | {'fit_bayes':>13} | "
        f"{'lme4/glmer':>13} | MLE / lme4"
    )
    print("-" * 86)
    for name, (dataset, formula, family, factors) in CASES.items():
        eb = name != "grouseticks"
        ours = run_child(
            [
                sys.executable,
                "-c",
                _OURS.format(dataset=dataset, formula=formula, family=family, eb=eb, bayes=eb),
            ]
        )
        if have_r:
            script = _R.format(
                path=DATA / f"{dataset}.csv",
                formula=formula,
                family=family,
                factors="c(" + ", ".join(f'"{f}"' for f in factors) + ")",
            )
            lme4 = run_child(["Rscript", "-e", script])
        else:
            lme4 = "Rscript/lme4 not installed"
        if isinstance(ours, str):
            print(f"{name:<12} | {ours}")
            continue
        ref = lme4["mle"] if isinstance(lme4, dict) else None
        ratio = f"{ours['mle'] / ref:6.2f}×" if ref else str(lme4)
        print(
            f"{name:<12} | {_fmt(ours['mle']):>13} | {_fmt(ours.get('eb')):>13} | "
            f"{_fmt(ours.get('bayes')):>13} | {_fmt(ref):>13} | {ratio}"
        )


if __name__ == "__main__":
    main()
