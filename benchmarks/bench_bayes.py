"""Full-Bayes speed: minimum bulk ESS per wall-clock second, hiermodels vs bambi.

Each fit runs in a fresh Python process; the clock starts before the model
is built (imports excluded, reported apart) and stops when the draws are
in, so compilation is included. Both libraries draw 4 chains x 1000 draws
after 1000 tuning draws. The minimum bulk ESS is taken over every element
of every model quantity: fixed effects, SDs, correlations, residual SD and
the group effects themselves (hiermodels' internal offsets ``z_*`` and raw
correlation variables, and the constant diagonal of correlation matrices,
are left out; bambi reports no offsets).

*Cold* runs use empty PyTensor and numba caches (fresh ``base_compiledir``
and ``NUMBA_CACHE_DIR``); *warm* runs repeat the fit with the caches the
cold run filled.

Run from the repository root (bambi is not a dependency of hiermodels;
``pip install bambi``)::

    python benchmarks/bench_bayes.py            # all models
    python benchmarks/bench_bayes.py --models sleepstudy

Both libraries run the chains on the same number of cores,
``min(chains, os.cpu_count())`` (PyMC's own default would take half the
logical CPUs, assuming hyper-threading).

Notes: bambi drops the correlation of ``(Days | Subject)`` (its issue #702),
so on the two random-slope models it fits a smaller model than hiermodels.
hiermodels samples all three with the group effects integrated out
(evaluated by ``hiermodels.bayes.marginal_density`` and, for the nested
classroom intercepts, ``hiermodels.bayes.nested_density``; each compiles one
numba kernel and no PyTensor graph) and draws them afterwards from their
exact conditional; their ESS is counted like any other quantity's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DRAWS, TUNE, CHAINS, SEED = 1000, 1000, 4, 20240611
CORES = max(1, min(CHAINS, os.cpu_count() or 1))

#: model -> (dataset, hiermodels formula, bambi formula)
MODELS: dict[str, tuple[str, str, str]] = {
    "sleepstudy": (
        "sleepstudy",
        "Reaction ~ Days + (Days | Subject)",
        "Reaction ~ Days + (Days | Subject)",
    ),
    "radon": (
        "radon",
        "log_radon ~ floor + (floor | county)",
        "log_radon ~ floor + (floor | county)",
    ),
    "classroom": (
        "classroom",
        "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid/classid)",
        "mathgain ~ mathkind + sex + minority + ses + (1 | schoolid) + (1 | schoolid:classid)",
    ),
}


def _min_ess(posterior: object) -> float:
    """Smallest bulk ESS over all non-constant elements of the given variables."""
    import warnings

    import arviz_stats as azs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ess = azs.ess(posterior, method="bulk")
    values = np.concatenate([np.ravel(ess[name].values) for name in ess.data_vars])
    return float(np.nanmin(values))


def _run_hiermodels(dataset: str, formula: str) -> tuple[float, float]:
    from hiermodels.bayes import fit_bayes
    from hiermodels.datasets import load
    from hiermodels.spec.design import build_design

    data = load(dataset)
    start = time.perf_counter()
    design = build_design(formula, data, "gaussian")
    fit = fit_bayes(
        design,
        draws=DRAWS,
        tune=TUNE,
        chains=CHAINS,
        random_seed=SEED,
        progressbar=False,
        log_likelihood=False,
    )
    wall = time.perf_counter() - start
    post = fit.posterior
    keep = [v for v in post.data_vars if not v.startswith("z_") and "__raw" not in v]
    post = post[keep]
    for name in keep:
        if name.startswith("corr_"):  # keep the strict upper triangle only
            group = name.removeprefix("corr_")
            q = post.sizes[f"{group}__term"]
            i, j = np.triu_indices(q, 1)
            pairs = post[name].values[..., i, j]
            post = post.drop_vars(name).assign({name: (("chain", "draw", f"{name}_pair"), pairs)})
    return wall, _min_ess(post)


def _run_bambi(dataset: str, formula: str) -> tuple[float, float]:
    import bambi as bmb

    from hiermodels.datasets import load

    data = load(dataset)
    for column in ("Subject", "county", "schoolid", "classid"):
        if column in data:
            data[column] = data[column].astype(str)
    start = time.perf_counter()
    model = bmb.Model(formula, data)
    idata = model.fit(
        draws=DRAWS, tune=TUNE, chains=CHAINS, cores=CORES, random_seed=SEED, progressbar=False
    )
    wall = time.perf_counter() - start
    return wall, _min_ess(idata["posterior"].to_dataset())


def worker(library: str, model: str) -> None:
    """Fit one model with one library and print a JSON line (runs in a fresh process)."""
    import warnings

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    if library == "hiermodels":
        import nutpie  # noqa: F401

        import hiermodels.bayes  # noqa: F401
    else:
        import bambi  # noqa: F401
    imports = time.perf_counter() - t0
    dataset, ours, theirs = MODELS[model]
    run = _run_hiermodels if library == "hiermodels" else _run_bambi
    wall, ess = run(dataset, ours if library == "hiermodels" else theirs)
    print(json.dumps({"wall": wall, "ess": ess, "imports": imports}))


def _fresh_process(library: str, model: str, cache: Path, timeout: float) -> dict[str, float]:
    """One fit in a new interpreter; ``wall = inf`` when it outlasts ``timeout`` seconds."""
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    # its own session, so that a timeout also stops the sampler's worker processes
    worker = subprocess.Popen(
        [sys.executable, __file__, "--worker", library, model],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = worker.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.communicate()
        return {"wall": float("inf"), "ess": float("nan"), "imports": float("nan")}
    if worker.returncode != 0:
        raise RuntimeError(f"{library} on {model} failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def _cells(result: dict[str, float], timeout: float) -> str:
    if np.isinf(result["wall"]):
        return f"{'>' + format(timeout, '.0f'):>6} {'-':>7} {'-':>7}  "
    rate = result["ess"] / result["wall"]
    return f"{result['wall']:6.1f} {result['ess']:7.0f} {rate:7.1f}  "


def main(models: list[str], timeout: float) -> None:
    """Cold then warm runs of every library on every model, then the table."""
    rows = []
    for model in models:
        for library in ("hiermodels", "bambi"):
            with tempfile.TemporaryDirectory(prefix=f"bench-{library}-") as tmp:
                cold = _fresh_process(library, model, Path(tmp), timeout)
                warm = _fresh_process(library, model, Path(tmp), timeout)
            for state, result in (("cold", cold), ("warm", warm)):
                rows.append((model, state, library, result))
                print(
                    f"  {model:<11} {state:<5} {library:<10} wall {result['wall']:6.1f} s  "
                    f"min ESS {result['ess']:7.0f}",
                    file=sys.stderr,
                )
    print(
        f"\n{DRAWS} draws x {CHAINS} chains after {TUNE} tuning draws on {CORES} cores; wall "
        "time includes building and compiling, not imports.\n"
    )
    cols = f"{'s':>6} {'minESS':>7} {'ESS/s':>7}  "
    header = f"{'model':<11} {'cache':<5} | {'hiermodels':^24} | {'bambi':^24} | {'ratio':>5}"
    sub = f"{'':<11} {'':<5} | {cols} | {cols} |"
    print(header)
    print(sub)
    print("-" * len(header))
    table = {(m, s, lib): r for m, s, lib, r in rows}
    for model in models:
        for state in ("cold", "warm"):
            ours, theirs = table[(model, state, "hiermodels")], table[(model, state, "bambi")]
            rate_ours = ours["ess"] / ours["wall"]
            if np.isinf(theirs["wall"]):
                # bambi's ESS cannot exceed ~2 x the draws: a bound on its rate
                ratio = f">{rate_ours / (2 * CHAINS * DRAWS / timeout):.1f}"
            else:
                ratio = f"{rate_ours / (theirs['ess'] / theirs['wall']):.2f}"
            print(
                f"{model:<11} {state:<5} | {_cells(ours, timeout)} | "
                f"{_cells(theirs, timeout)} | {ratio:>5}"
            )
    imports = {
        lib: np.nanmean([r["imports"] for (_, _, lb), r in table.items() if lb == lib])
        for lib in ("hiermodels", "bambi")
    }
    print(
        f"\nmean import time: hiermodels {imports['hiermodels']:.1f} s, "
        f"bambi {imports['bambi']:.1f} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds before a fit is abandoned (reported as >timeout)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("LIBRARY", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
    else:
        main(args.models, args.timeout)
