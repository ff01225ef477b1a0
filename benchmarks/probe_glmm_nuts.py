"""Why the full GLMM graph samples as it does: counts and costs, hiermodels vs bambi.

For the non-gaussian models sampled on the full graph (group effects as
parameters), each run reports the minimum bulk ESS, the wall time (build and
compile included), the gradient evaluations per draw (mean ``n_steps``), the
mean step size and tree depth, and the divergences. ``--grad`` times one
evaluation of the log density and its gradient of each library's graph in
isolation (one thread, median of many calls).

Each fit runs in a fresh process; ``--cold`` gives it empty PyTensor and
numba caches, otherwise they are shared with earlier runs (warm)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/probe_glmm_nuts.py --models cbpp --libs hiermodels
    python benchmarks/probe_glmm_nuts.py --grad
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DRAWS, TUNE, CHAINS, SEED = 1000, 1000, 4, 20240611
CORES = max(1, min(CHAINS, os.cpu_count() or 1))


def _grouseticks() -> pd.DataFrame:
    from hiermodels.datasets import load

    data = load("grouseticks")
    height = data["HEIGHT"].astype(float)
    data["HEIGHT"] = (height - height.mean()) / height.std(ddof=1)
    return data


def _cbpp() -> pd.DataFrame:
    from hiermodels.datasets import load

    return load("cbpp")


def _crossed_bernoulli() -> pd.DataFrame:
    """316 x 24 fully crossed levels, one row per cell (7,584 rows), as bench_peers.py."""
    rng = np.random.default_rng(20240611 + 1)
    a, b = np.meshgrid(np.arange(316), np.arange(24), indexing="ij")
    a, b = a.ravel(), b.ravel()
    X = rng.standard_normal((a.size, 5))
    beta = np.array([0.2, 0.5, -0.3, 0.3, -0.2, 0.1])
    eta = beta[0] + X @ beta[1:] + rng.normal(0.0, 0.7, 316)[a] + rng.normal(0.0, 0.5, 24)[b]
    y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    frame = pd.DataFrame({"y": y, **{f"x{k}": X[:, k - 1] for k in range(1, 6)}})
    frame["a"] = pd.Categorical(a + 1)
    frame["b"] = pd.Categorical(b + 1)
    return frame


#: name -> (data, hiermodels formula, family, bambi formula, bambi family)
MODELS = {
    "cbpp": (
        _cbpp,
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        "binomial",
        "p(incidence, size) ~ period + (1 | herd)",
        "binomial",
    ),
    "grouseticks": (
        _grouseticks,
        "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)",
        "poisson",
        "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | LOCATION)",
        "poisson",
    ),
    "crossed": (
        _crossed_bernoulli,
        "y ~ x1 + x2 + x3 + x4 + x5 + (1 | a) + (1 | b)",
        "bernoulli",
        "y ~ x1 + x2 + x3 + x4 + x5 + (1 | a) + (1 | b)",
        "bernoulli",
    ),
}


def design_of(name: str) -> object:
    """The hiermodels design of a model."""
    from hiermodels.design.design import build_design

    make, formula, family, _, _ = MODELS[name]
    return build_design(formula, make(), family)


def _bambi_model(name: str) -> object:
    import bambi as bmb

    make, _, _, formula, family = MODELS[name]
    data = make()
    for column in data.columns:
        if isinstance(data[column].dtype, pd.CategoricalDtype):
            data[column] = data[column].astype(str)
    return bmb.Model(formula, data, family=family)


def _min_ess(posterior: object) -> float:
    import warnings

    import arviz_stats as azs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ess = azs.ess(posterior, method="bulk")
    return float(np.nanmin(np.concatenate([np.ravel(ess[v].values) for v in ess.data_vars])))


def _stats(stats: object) -> dict[str, float]:
    """Mean gradient evaluations per draw, step size, depth; total divergences."""
    names = set(stats.data_vars)
    steps = "n_steps" if "n_steps" in names else "tree_size"
    depth = "depth" if "depth" in names else "tree_depth"
    div = "diverging" if "diverging" in names else "divergences"
    return {
        "grads_per_draw": float(stats[steps].mean()),
        "step_size": float(stats["step_size"].mean()),
        "depth": float(stats[depth].mean()),
        "divergences": int(stats[div].sum()),
    }


def run(library: str, name: str, options: dict) -> dict:
    """One fit (in this process): wall time, min ESS and the sampler's counts."""
    import warnings

    warnings.simplefilter("ignore")
    if library == "hiermodels":
        from hiermodels.bayes import fit_bayes
        from hiermodels.bayes.build import build_pymc_model
        from hiermodels.bayes.samplers import sample_pymc_model

        start = time.perf_counter()
        design = design_of(name)
        if options:
            centered = options.pop("centered", False)
            idata = sample_pymc_model(
                build_pymc_model(design, centered=centered),
                draws=DRAWS,
                tune=TUNE,
                chains=CHAINS,
                random_seed=SEED,
                progressbar=False,
                **options,
            )
            posterior = idata["posterior"].to_dataset()
            stats = idata["sample_stats"].to_dataset()
        else:
            fit = fit_bayes(
                design,
                draws=DRAWS,
                tune=TUNE,
                chains=CHAINS,
                random_seed=SEED,
                progressbar=False,
                log_likelihood=False,
                marginalize=False,
            )
            posterior = fit.posterior
            stats = fit.idata["sample_stats"].to_dataset()
        wall = time.perf_counter() - start
        keep = [v for v in posterior.data_vars if not v.startswith("z_") and "__raw" not in v]
        posterior = posterior[keep]
    else:
        start = time.perf_counter()
        model = _bambi_model(name)
        idata = model.fit(
            draws=DRAWS,
            tune=TUNE,
            chains=CHAINS,
            cores=CORES,
            random_seed=SEED,
            progressbar=False,
            **options,
        )
        wall = time.perf_counter() - start
        posterior = idata["posterior"].to_dataset()
        stats = idata["sample_stats"].to_dataset()
    ess = _min_ess(posterior)
    return {"wall": wall, "ess": ess, "ess_per_s": ess / wall, **_stats(stats)}


def gradient_cost(name: str, reps: int = 3000) -> dict[str, float]:
    """CPU microseconds per log density + gradient of each library's graph (best of 5).

    Both graphs are compiled as the python backend compiles them (PyTensor's
    NUMBA mode, one flat input) and timed with the thread's CPU clock, so
    other processes on the machine do not count.
    """
    from hiermodels.bayes.build import build_pymc_model
    from hiermodels.bayes.samplers import _python_compiled

    bambi_model = _bambi_model(name)
    bambi_model.build()
    graphs = {
        "hiermodels": build_pymc_model(design_of(name)),
        "hiermodels_centred": build_pymc_model(design_of(name), centered=True),
        "bambi": bambi_model.backend.model,
    }
    out: dict[str, float] = {}
    for label, model in graphs.items():
        compiled = _python_compiled(model)
        logp = compiled._make_logp_func()  # nutpie's own handle on the callback
        x = np.full(compiled.n_dim, 0.1)
        for _ in range(50):
            logp(x)
        best = np.inf
        for _ in range(5):
            t0 = time.thread_time()
            for _ in range(reps // 5):
                logp(x)
            best = min(best, (time.thread_time() - t0) / (reps // 5))
        out[f"{label}_us"] = round(1e6 * best, 1)
        out[f"{label}_ndim"] = compiled.n_dim
    return out


def _fresh(library: str, name: str, options: dict, cache: Path | None) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    if cache is not None:
        env["PYTENSOR_FLAGS"] = f"base_compiledir={cache / 'pytensor'}"
        env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    args = [sys.executable, __file__, "--worker", library, name, json.dumps(options)]
    proc = subprocess.run(args, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Fits in fresh processes (cold then warm with ``--cold``), one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--libs", nargs="+", default=["hiermodels", "bambi"])
    parser.add_argument("--options", default="{}", help="JSON keyword arguments of the fit")
    parser.add_argument("--cold", action="store_true", help="cold then warm, own caches")
    parser.add_argument("--grad", action="store_true", help="per-gradient cost only")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        library, name, options = args.worker
        print(json.dumps(run(library, name, json.loads(options))))
        return
    if args.grad:
        for name in args.models:
            print(name, json.dumps(gradient_cost(name)), flush=True)
        return
    options = json.loads(args.options)
    for name in args.models:
        for library in args.libs:
            if args.cold:
                with tempfile.TemporaryDirectory(prefix="probe-") as tmp:
                    states = ("cold", "warm")
                    results = {s: _fresh(library, name, options, Path(tmp)) for s in states}
            else:
                results = {"warm": _fresh(library, name, options, None)}
            for state, result in results.items():
                cells = " ".join(f"{k} {v:.4g}" for k, v in result.items())
                print(f"{name:<12} {library:<10} {state:<4} {cells}", flush=True)


if __name__ == "__main__":
    main()
