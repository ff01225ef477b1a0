"""Full-Bayes speed: minimum bulk ESS per wall-clock second, hiermodels vs bambi.

What is measured
----------------
Each fit runs in a fresh Python process; the clock starts before the model
is built (imports excluded, reported apart; data loading and simulation
excluded) and stops when the draws are in, so compilation is included.
hiermodels fits ``fit_bayes(build_design(formula, data, family))`` with its
defaults (nutpie); bambi fits ``bmb.Model(formula, data, family).fit()``
with its defaults (PyMC's NUTS). Both draw 4 chains x 1000 draws after
1000 tuning draws (``--chains/--draws/--tune``), from the same seed, on the
same number of cores, ``min(chains, os.cpu_count())`` (PyMC's own default
would take half the logical CPUs, assuming hyper-threading).

For every fit the table gives the wall time, the minimum bulk ESS, ESS per
second, the number of divergent transitions after tuning and the largest
(rank-normalised) r_hat. The minimum bulk ESS and the largest r_hat are
taken over every element of every model quantity: fixed effects, SDs,
correlations, residual SD and the group effects themselves (hiermodels'
internal offsets ``z_*`` and raw correlation variables, and the constant
diagonal of correlation matrices, are left out; bambi reports no offsets).
The ratio is hiermodels' ESS/s over bambi's, cold and warm.

*Cold* runs use empty PyTensor and numba caches (fresh ``base_compiledir``
and ``NUMBA_CACHE_DIR``); *warm* runs repeat the fit with the caches the
cold run filled. A fit that outlasts ``--timeout`` seconds (1800 by default)
is stopped, with the sampler's worker processes, and recorded as timed out;
when bambi times out, the ratio is a lower bound that assumes its minimum
bulk ESS would not exceed 2 x draws x chains. A fit that fails is recorded
with the last line of its error; the run goes on.

Models
------
Gaussian:

* sleepstudy ``Reaction ~ Days + (Days | Subject)`` (180 rows);
* radon ``log_radon ~ floor + (floor | county)`` (919 rows);
* penicillin ``diameter ~ 1 + (1 | plate) + (1 | sample)`` (144 rows, crossed);
* pastes ``strength ~ 1 + (1 | batch/cask)`` (60 rows, nested);
* classroom ``mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)``
  (1,190 rows, nested);
* sim-nested-slopes ``y ~ x + (x | school) + (x | school:room)``: simulated
  here, seed fixed, 40 schools x 5 classes x 10 pupils (2,000 rows) with
  correlated random intercepts and slopes at both levels;
* insteval ``y ~ service + (1 | s) + (1 | d) + (1 | dept:service)`` (73,421
  rows; the formula of ``bench_peers.py``).

GLMMs (data and formulas those of ``bench_peers.py``, which the script
imports, so that the data are identical):

* cbpp ``cbind(incidence, size - incidence) ~ period + (1 | herd)``, binomial
  (bambi: ``p(incidence, size) ~ period + (1 | herd)``);
* grouseticks ``TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)``,
  poisson, HEIGHT standardised; ``(1 | INDEX)`` is an observation-level effect
  (one level per row);
* sim-bernoulli-crossed ``y ~ x1 + x2 + x3 + x4 + x5 + (1 | a) + (1 | b)``,
  bernoulli, 7,584 rows, 316 x 24 crossed levels (``bench_peers.py``'s
  generator and seed).

``--integrate laplace`` adds a row per GLMM: hiermodels'
``fit_bayes(design, integrate="laplace")``; the row says "not available"
when this version of ``fit_bayes`` has no ``integrate`` argument.

Model differences
-----------------
bambi drops the correlation of every ``(x | g)`` term (its issue #702), so on
sleepstudy, radon and sim-nested-slopes it fits a smaller model than
hiermodels, which estimates the correlations (and whose ESS includes them).
The two libraries' default priors differ. hiermodels runs ``fit_bayes`` with
its defaults, which sample every gaussian model with the group effects
integrated out (``hiermodels.bayes.gaussian_density``, one native function
handed to nutpie, compiled once per machine and no PyTensor graph) and
then draw the effects from their
exact conditional; their ESS is counted like any other quantity's (the JSON
output records, per fit, whether the sampler ran on the marginal density).
The GLMMs are sampled with the group effects as parameters
(``hiermodels.bayes.joint_density``, also one native function; the
``--integrate laplace`` rows: integrated out by a Laplace approximation, and
drawn afterwards). bambi samples every model with the group effects as
parameters (non-centred).

Examples
--------
Run from the repository root (bambi is not a dependency of hiermodels;
``pip install bambi``)::

    python benchmarks/bench_bayes.py --json bench_bayes.json   # every model
    python benchmarks/bench_bayes.py --models sleepstudy cbpp --integrate laplace
    python benchmarks/bench_bayes.py --skip bambi:insteval --timeout 3600
    python benchmarks/bench_bayes.py --draws 20 --tune 20 --chains 2 --timeout 300  # smoke test

``--list`` prints the model names.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

SEED = 20240611
HERE = Path(__file__).resolve().parent
LIBRARIES = ("hiermodels", "hiermodels+laplace", "bambi")
#: one fit's measurements (wall, ess, ...) or what its cell says instead
Result = dict[str, Any] | str


@dataclass(frozen=True)
class Bench:
    """One benchmark model.

    Attributes
    ----------
    name : str
        Key for ``--models``, ``--skip`` and the JSON output.
    data : str
        Data source: a shipped dataset (``hiermodels.datasets.load``), a data set
        key of ``bench_peers.MAKERS`` prefixed ``peers:``, or ``sim-nested-slopes``.
    formula : str
        hiermodels' formula.
    bambi_formula : str
        bambi's formula.
    family : str
        hiermodels' family.
    bambi_family : str
        bambi's family.
    factors : tuple of str
        Columns read as categorical (for ``peers:`` data, which arrive as numbers).
    """

    name: str
    data: str
    formula: str
    bambi_formula: str
    family: str = "gaussian"
    bambi_family: str = "gaussian"
    factors: tuple[str, ...] = ()

    @property
    def glmm(self) -> bool:
        """Whether the response is not gaussian (the ``--integrate laplace`` rows)."""
        return self.family != "gaussian"


def _peers() -> ModuleType:
    """``bench_peers.py``, for its data makers and formulas."""
    if "bench_peers" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_peers", HERE / "bench_peers.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_peers"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_peers"]


def _peer_formula(name: str) -> str:
    return next(case.formula for case in _peers().CASES if case.name == name)


def _peer_factors(name: str) -> tuple[str, ...]:
    return next(case.factors for case in _peers().CASES if case.name == name)


def _benches() -> tuple[Bench, ...]:
    insteval = _peer_formula("insteval")
    grouse = _peer_formula("grouseticks")
    crossed = _peer_formula("sim-bernoulli-crossed")
    return (
        Bench(
            "sleepstudy",
            "sleepstudy",
            "Reaction ~ Days + (Days | Subject)",
            "Reaction ~ Days + (Days | Subject)",
        ),
        Bench(
            "radon",
            "radon",
            "log_radon ~ floor + (floor | county)",
            "log_radon ~ floor + (floor | county)",
        ),
        Bench(
            "penicillin",
            "penicillin",
            "diameter ~ 1 + (1 | plate) + (1 | sample)",
            "diameter ~ 1 + (1 | plate) + (1 | sample)",
        ),
        Bench(
            "pastes",
            "pastes",
            "strength ~ 1 + (1 | batch/cask)",
            "strength ~ 1 + (1 | batch) + (1 | batch:cask)",
        ),
        Bench(
            "classroom",
            "classroom",
            "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)",
            "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid) + (1 | schoolid:classid)",
        ),
        Bench(
            "sim-nested-slopes",
            "sim-nested-slopes",
            "y ~ x + (x | school) + (x | school:room)",
            "y ~ x + (x | school) + (x | school:room)",
            factors=("school", "room"),
        ),
        Bench(
            "insteval",
            "peers:insteval",
            insteval,
            insteval,
            factors=_peer_factors("insteval"),
        ),
        Bench(
            "cbpp",
            "peers:cbpp",
            _peer_formula("cbpp"),
            "p(incidence, size) ~ period + (1 | herd)",
            "binomial",
            "binomial",
            _peer_factors("cbpp"),
        ),
        Bench(
            "grouseticks",
            "peers:grouseticks",
            grouse,
            grouse,
            "poisson",
            "poisson",
            _peer_factors("grouseticks"),
        ),
        Bench(
            "sim-bernoulli-crossed",
            "peers:sim-bernoulli-crossed",
            crossed,
            crossed,
            "bernoulli",
            "bernoulli",
            _peer_factors("sim-bernoulli-crossed"),
        ),
    )


BENCHES: tuple[Bench, ...] = _benches()
BY_NAME = {bench.name: bench for bench in BENCHES}


# ---------------------------------------------------------------------------
# Data


def sim_nested_slopes() -> Any:
    """40 schools x 5 classes x 10 pupils; correlated intercept and slope at both levels.

    Classes are numbered 1-5 within their school (``room``), so the class
    factor is ``school:room``.
    """
    import pandas as pd

    rng = np.random.default_rng(SEED + 10)
    schools, classes, pupils = 40, 5, 10
    n = schools * classes * pupils
    school = np.repeat(np.arange(schools), classes * pupils)
    klass = np.repeat(np.arange(schools * classes), pupils)
    x = rng.standard_normal(n)
    correlated = _peers()._correlated_effects
    b_school = correlated(rng, schools, (1.0, 0.5), 0.3)
    b_class = correlated(rng, schools * classes, (0.6, 0.3), -0.2)
    eta = 2.0 + 0.5 * x + b_school[school, 0] + b_school[school, 1] * x
    y = eta + b_class[klass, 0] + b_class[klass, 1] * x + rng.normal(0.0, 1.0, n)
    return pd.DataFrame({"y": y, "x": x, "school": school + 1, "room": klass % classes + 1})


def load_data(bench: Bench, library: str) -> Any:
    """The model's data frame; grouping columns categorical (bambi: strings)."""
    if bench.data.startswith("peers:"):
        data = _peers().MAKERS[bench.data.removeprefix("peers:")]()
    elif bench.data == "sim-nested-slopes":
        data = sim_nested_slopes()
    else:
        from hiermodels.datasets import load

        data = load(bench.data)
    for column in bench.factors:
        data[column] = data[column].astype("category")
    if library == "bambi":
        for column in data.columns:
            if data[column].dtype == "category":
                data[column] = data[column].astype(str)
    return data


# ---------------------------------------------------------------------------
# One fit (in a fresh process)


def _summaries(posterior: Any, sample_stats: Any) -> dict[str, float]:
    """Minimum bulk ESS and largest r_hat over all elements; divergences after tuning."""
    import warnings

    import arviz_stats as azs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ess = azs.ess(posterior, method="bulk")
        rhat = azs.rhat(posterior)

    def flat(stat: Any) -> np.ndarray:
        return np.concatenate([np.ravel(stat[name].values) for name in stat.data_vars])

    divergences = int(sample_stats["diverging"].sum()) if "diverging" in sample_stats else -1
    return {
        "ess": float(np.nanmin(flat(ess))),
        "max_rhat": float(np.nanmax(flat(rhat))),
        "divergences": divergences,
    }


def _hiermodels_posterior(post: Any) -> Any:
    """The posterior without internal offsets, raw correlation variables and constants."""
    keep = [v for v in post.data_vars if not v.startswith("z_") and "__raw" not in v]
    post = post[keep]
    for name in keep:
        if name.startswith("corr_"):  # keep the strict upper triangle only
            group = name.removeprefix("corr_")
            q = post.sizes[f"{group}__term"]
            i, j = np.triu_indices(q, 1)
            pairs = post[name].values[..., i, j]
            post = post.drop_vars(name).assign({name: (("chain", "draw", f"{name}_pair"), pairs)})
    return post


def _run_hiermodels(bench: Bench, run: dict[str, int], laplace: bool) -> dict[str, Any]:
    import inspect

    from hiermodels.bayes import fit_bayes
    from hiermodels.design.design import build_design

    extra: dict[str, Any] = {}
    if laplace:
        if "integrate" not in inspect.signature(fit_bayes).parameters:
            return {"status": "not available (fit_bayes has no integrate argument)"}
        extra["integrate"] = "laplace"
    data = load_data(bench, "hiermodels")
    start = time.perf_counter()
    design = build_design(bench.formula, data, bench.family)
    fit = fit_bayes(
        design,
        **run,
        random_seed=SEED,
        progressbar=False,
        log_likelihood=False,
        **extra,
    )
    wall = time.perf_counter() - start
    post = _hiermodels_posterior(fit.posterior)
    stats = fit.idata["sample_stats"].to_dataset()
    return {"wall": wall, **_summaries(post, stats), "marginalized": bool(fit.marginalized)}


def _run_bambi(bench: Bench, run: dict[str, int], cores: int) -> dict[str, Any]:
    import bambi as bmb

    data = load_data(bench, "bambi")
    start = time.perf_counter()
    model = bmb.Model(bench.bambi_formula, data, family=bench.bambi_family)
    idata = model.fit(**run, cores=cores, random_seed=SEED, progressbar=False)
    wall = time.perf_counter() - start
    return {
        "wall": wall,
        **_summaries(idata["posterior"].to_dataset(), idata["sample_stats"].to_dataset()),
    }


def worker(library: str, model: str, run: dict[str, int]) -> None:
    """Fit one model with one library and print a JSON line (runs in a fresh process)."""
    import warnings

    warnings.simplefilter("ignore")
    cores = max(1, min(run["chains"], os.cpu_count() or 1))
    t0 = time.perf_counter()
    if library.startswith("hiermodels"):
        import nutpie  # noqa: F401

        import hiermodels.bayes  # noqa: F401
    else:
        import bambi  # noqa: F401
    imports = time.perf_counter() - t0
    bench = BY_NAME[model]
    if library.startswith("hiermodels"):
        result = _run_hiermodels(bench, run, laplace=library.endswith("laplace"))
    else:
        result = _run_bambi(bench, run, cores)
    result["imports"] = imports
    print(json.dumps(result))


# ---------------------------------------------------------------------------
# The parent: cold and warm runs, the table


def _fresh_process(
    library: str, model: str, cache: Path, run: dict[str, int], timeout: float
) -> Result:
    """One fit in a new interpreter: its measurements, or a status string."""
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    settings = [f"--{key}={value}" for key, value in run.items()]
    # its own session, so that a timeout also stops the sampler's worker processes
    child = subprocess.Popen(
        [sys.executable, __file__, "--worker", library, model, *settings],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return f"timed out after {timeout:.0f} s"
    finally:
        try:  # sampler processes left behind by a finished or failed child
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if child.returncode != 0:
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        return "failed: " + (lines[-1][:160] if lines else f"exit {child.returncode}")
    try:
        result = json.loads(stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return "failed: no result"
    return result.get("status", result)


def _rate(result: Result) -> float | None:
    return result["ess"] / result["wall"] if isinstance(result, dict) else None


def _ratio(ours: Result, theirs: Result, run: dict[str, int], timeout: float) -> str:
    """hiermodels' ESS/s over bambi's; a bound when bambi timed out."""
    rate_ours, rate_theirs = _rate(ours), _rate(theirs)
    if rate_ours is None:
        return "–"
    if rate_theirs is not None:
        return f"{rate_ours / rate_theirs:.2f}" if rate_theirs > 0 else "∞"
    if isinstance(theirs, str) and theirs.startswith("timed out"):
        # bambi's rate is below (bulk ESS ≤ 2 x draws x chains) / timeout
        return f">{rate_ours / (2 * run['chains'] * run['draws'] / timeout):.1f}"
    return "–"


def _both(cold: Result, warm: Result, key: str, fmt: str) -> str:
    """``cold``'s value, with ``warm``'s beside it when it differs."""
    values = [r[key] for r in (cold, warm) if isinstance(r, dict)]
    if not values:
        return "–"
    cells = [format(v, fmt) for v in values]
    return cells[0] if len(set(cells)) == 1 else " / ".join(cells)


def _wall(result: Result) -> str:
    return f"{result['wall']:.1f}" if isinstance(result, dict) else result


def _per_second(result: Result) -> str:
    rate = _rate(result)
    return "–" if rate is None else f"{rate:.2f}" if rate < 10 else f"{rate:.1f}"


def markdown(records: list[dict[str, Any]], run: dict[str, int], cores: int, timeout: float) -> str:
    """The results as a markdown table with its notes."""
    columns = [
        "model",
        "library",
        "cold s",
        "warm s",
        "min bulk ESS",
        "ESS/s cold",
        "ESS/s warm",
        "divergences",
        "max r_hat",
        "ratio cold",
        "ratio warm",
    ]
    lines = [
        f"{run['draws']} draws x {run['chains']} chains after {run['tune']} tuning draws on "
        f"{cores} cores; wall time includes building and compiling, not imports. "
        "ratio: hiermodels' ESS/s over bambi's. Where cold and warm runs differ, "
        "cells give cold / warm.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(["---"] * 2 + ["--:"] * (len(columns) - 2)) + "|",
    ]
    for record in records:
        cold, warm = record["cold"], record["warm"]
        cells = [
            record["model"],
            record["library"],
            _wall(cold),
            "–" if warm is cold else _wall(warm),
            _both(cold, warm, "ess", ".0f"),
            _per_second(cold),
            _per_second(warm),
            _both(cold, warm, "divergences", "d"),
            _both(cold, warm, "max_rhat", ".3f"),
            record.get("ratio_cold") or "–",
            record.get("ratio_warm") or "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    imports = {
        library: [
            r[state]["imports"]
            for r in records
            for state in ("cold", "warm")
            if r["library"] == library and isinstance(r[state], dict)
        ]
        for library in ("hiermodels", "bambi")
    }
    means = ", ".join(
        f"{library} {np.mean(values):.1f} s" for library, values in imports.items() if values
    )
    lines.append("")
    if means:
        lines.append(f"Mean import time: {means}.")
    lines.append(
        f"Timeout per fit: {timeout:.0f} s; when bambi timed out the ratio is a lower "
        "bound (its minimum bulk ESS taken as at most 2 x draws x chains)."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Cold then warm runs of every library on every model, then the table."""
    args = _parse(argv)
    run = {"draws": args.draws, "tune": args.tune, "chains": args.chains}
    if args.worker:
        worker(*args.worker, run)
        return
    if args.list:
        print("\n".join(bench.name for bench in BENCHES))
        return
    cores = max(1, min(args.chains, os.cpu_count() or 1))
    skipped = _skipped(args.skip)
    models = [name for item in args.models for name in item.split(",") if name]
    unknown = [name for name in models if name not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    started = time.perf_counter()
    load_before = os.getloadavg()
    records: list[dict[str, Any]] = []
    for model in models:
        bench = BY_NAME[model]
        libraries = ["hiermodels", "bambi"]
        if args.integrate == "laplace" and bench.glmm:
            libraries.insert(1, "hiermodels+laplace")
        results: dict[str, dict[str, Result]] = {}
        for library in libraries:
            if (library, model) in skipped:
                skip = "skipped (--skip)"
                results[library] = {"cold": skip, "warm": skip}
            else:
                with tempfile.TemporaryDirectory(prefix=f"bench-{library}-") as tmp:
                    cold = _fresh_process(library, model, Path(tmp), run, args.timeout)
                    # a cold run that did not finish says all there is to say
                    warm = (
                        _fresh_process(library, model, Path(tmp), run, args.timeout)
                        if isinstance(cold, dict)
                        else cold
                    )
                results[library] = {"cold": cold, "warm": warm}
            for state in ("cold", "warm"):
                result = results[library][state]
                shown = (
                    f"wall {result['wall']:7.1f} s  min ESS {result['ess']:7.0f}"
                    if isinstance(result, dict)
                    else result
                )
                print(
                    f"  {model:<22} {state:<5} {library:<19} {shown}", file=sys.stderr, flush=True
                )
        for library in libraries:
            record: dict[str, Any] = {"model": model, "library": library, **results[library]}
            if library != "bambi":
                for state in ("cold", "warm"):
                    record[f"ratio_{state}"] = _ratio(
                        results[library][state], results["bambi"][state], run, args.timeout
                    )
            records.append(record)
    elapsed = time.perf_counter() - started
    table = markdown(records, run, cores, args.timeout)
    print()
    print(table)
    if args.json is not None:
        payload = {
            "settings": {**run, "cores": cores, "seed": SEED, "timeout": args.timeout},
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "elapsed_seconds": elapsed,
            "load_average_start": load_before,
            "load_average_end": os.getloadavg(),
            "models": {
                bench.name: {
                    "data": bench.data,
                    "formula": bench.formula,
                    "bambi_formula": bench.bambi_formula,
                    "family": bench.family,
                    "bambi_family": bench.bambi_family,
                }
                for bench in BENCHES
                if bench.name in models
            },
            "results": records,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


def _skipped(items: list[str]) -> set[tuple[str, str]]:
    """``(library, model)`` pairs from ``--skip LIB:MODEL`` options."""
    pairs = set()
    for item in items:
        library, _, model = item.partition(":")
        if library not in LIBRARIES or model not in BY_NAME:
            raise SystemExit(
                f"--skip takes LIB:MODEL with a library of {', '.join(LIBRARIES)} and a "
                f"model of --list; got {item!r}"
            )
        pairs.add((library, model))
    return pairs


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(BY_NAME),
        metavar="MODEL",
        help="models to run (names or comma-separated lists; default: all, see --list)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="LIB:MODEL",
        help="leave one library out on one model (e.g. bambi:insteval); repeatable",
    )
    parser.add_argument("--draws", type=int, default=1000, help="kept draws per chain")
    parser.add_argument("--tune", type=int, default=1000, help="tuning draws per chain")
    parser.add_argument("--chains", type=int, default=4, help="chains")
    parser.add_argument(
        "--timeout",
        type=float,
        default=1800.0,
        help="seconds before a fit is stopped and recorded as timed out (default 1800)",
    )
    parser.add_argument(
        "--integrate",
        choices=["laplace"],
        help='add a hiermodels row per GLMM fitted with fit_bayes(..., integrate="laplace")',
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    parser.add_argument("--list", action="store_true", help="print the model names and exit")
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "MODEL"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
