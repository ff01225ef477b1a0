"""Same seed, same draws, whether the compile caches are empty or full.

Every sampling path runs in a fresh process against empty PyTensor and numba
cache directories, then again in a second process against the same, now
filled, directories; the draws must agree bit for bit. Two processes on two
empty caches would both compile everything and agree; the failure this
guards against (numba's fast-math code rounding differently when compiled in
the process than when loaded from the cache) shows only between a cold and a
warm run. The paths run in two chains of processes side by side, each with
its own cache, to keep the file's wall time down on two cores. Run as a
script, this module samples the paths named after its first argument and
writes their draws to the ``.npz`` file that argument names.

The cold and warm runs compile every path from nothing, which takes about
five minutes on two cores, so they are in the slow tier. The default tier
runs the same paths in its own process and checks the condition the
determinism rests on: every PyTensor function, nutpie model and PyMC run is
compiled with numba's fast-math flags off.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.xdist_group("cold-cache")

#: Short runs; two chains where nutpie runs them in threads, one with PyMC (no worker processes).
RUN = {"draws": 50, "tune": 50, "chains": 2, "progressbar": False}
PYMC_RUN = RUN | {"chains": 1}

#: The sampling paths, by the name their draws are stored under, in two groups
#: of about equal compile time that run side by side.
GROUPS = (
    ("numba", "direct", "python", "full_graph", "eb_gaussian"),
    ("pymc", "binomial", "eb_binomial", "normal_normal", "beta_binomial"),
)
PATHS = tuple(path for group in GROUPS for path in group)

REPO = Path(__file__).resolve().parents[1]


def sample_paths(paths: Sequence[str]) -> dict[str, np.ndarray]:
    """Draws of one variable from each of ``paths``, with small models and short runs.

    Parameters
    ----------
    paths : sequence of str
        Names from :data:`PATHS`.

    Returns
    -------
    dict of str to numpy.ndarray
        ``(chain, draw, ...)`` draws by path.
    """
    import hiermodels as hm
    from hiermodels.datasets import load

    # small models keep the compilation short; this one's PyTensor paths all gave
    # different draws from a cold and a warm cache while the models compiled with fast-math
    sleep = hm.Model("Reaction ~ Days + (1 | Subject)", load("sleepstudy"))
    cbpp = hm.Model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        load("cbpp"),
        family="binomial",
    )
    schools = load("eight_schools")
    rats = load("rats_tumors")
    jobs: dict[str, Callable[[], Any]] = {
        "direct": lambda: sleep.fit_bayes(random_seed=1, **RUN).idata,
        "numba": lambda: sleep.fit_bayes(random_seed=2, backend="numba", **RUN).idata,
        "python": lambda: sleep.fit_bayes(random_seed=3, backend="python", **RUN).idata,
        "pymc": lambda: sleep.fit_bayes(random_seed=4, sampler="pymc", **PYMC_RUN).idata,
        "full_graph": lambda: sleep.fit_bayes(random_seed=5, marginalize=False, **RUN).idata,
        "binomial": lambda: cbpp.fit_bayes(random_seed=6, **RUN).idata,
        "eb_gaussian": lambda: (
            sleep.fit_eb(plugin="all", eb_method="mcmc", random_seed=7, **RUN).idata
        ),
        "eb_binomial": lambda: cbpp.fit_eb(plugin="all", random_seed=8, **RUN).idata,
        # the compound models' own sampling, with nutpie and with PyMC
        "normal_normal": lambda: (
            hm.compound.NormalNormal(schools["y"], schools["sigma"])
            .fit_bayes(50, 50, 2, random_seed=9)
            .datatree
        ),
        "beta_binomial": lambda: (
            hm.compound.BetaBinomial(rats["y"], rats["K"])
            .fit_bayes(50, 50, 1, random_seed=10, sampler="pymc")
            .datatree
        ),
    }
    variables = {"eb_gaussian": "u_Subject", "eb_binomial": "u_herd"}
    variables |= dict.fromkeys(("normal_normal", "beta_binomial"), "theta")
    draws = {}
    for name in paths:
        start = time.perf_counter()
        idata = jobs[name]()
        draws[name] = np.asarray(idata["posterior"][variables.get(name, "beta")].values)
        print(f"{name}: {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return draws


def _start(paths: Sequence[str], cache: Path, out: Path) -> subprocess.Popen:
    """A fresh Python process sampling ``paths`` with its compile caches in ``cache``."""
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    return subprocess.Popen(
        [sys.executable, __file__, str(out), *paths],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen, out: Path) -> dict[str, np.ndarray]:
    try:
        _, stderr = process.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    assert process.returncode == 0, stderr[-5000:]
    with np.load(out) as saved:
        return {name: saved[name] for name in saved.files}


def _run_side_by_side(caches: Sequence[Path], outs: Sequence[Path]) -> dict[str, np.ndarray]:
    processes = [
        _start(paths, cache, out) for paths, cache, out in zip(GROUPS, caches, outs, strict=True)
    ]
    draws: dict[str, np.ndarray] = {}
    for process, out in zip(processes, outs, strict=True):
        draws |= _finish(process, out)
    return draws


@pytest.fixture(scope="module")
def cold_and_warm(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The draws of every path with empty caches, then with the caches they left behind."""
    root = tmp_path_factory.mktemp("cold-cache")
    caches = [root / f"cache{i}" for i in range(len(GROUPS))]
    cold = _run_side_by_side(caches, [root / f"cold{i}.npz" for i in range(len(GROUPS))])
    # each first run must have compiled and cached, or the second one is not a warm start
    for cache in caches:
        assert any((cache / "pytensor" / "numba").glob("*.nbc")), f"nothing cached in {cache}"
    warm = _run_side_by_side(caches, [root / f"warm{i}.npz" for i in range(len(GROUPS))])
    return cold, warm


@pytest.mark.slow
@pytest.mark.parametrize("path", PATHS)
def test_cold_and_warm_caches_give_the_same_draws(
    cold_and_warm: tuple[dict[str, np.ndarray], dict[str, np.ndarray]], path: str
) -> None:
    cold, warm = cold_and_warm
    assert cold[path].shape == warm[path].shape
    assert cold[path].size > 0 and np.all(np.isfinite(cold[path]))
    # bitwise: NUTS turns a last-bit difference into different trajectories anyway
    np.testing.assert_array_equal(cold[path], warm[path], strict=True)


def test_every_sampling_path_compiles_without_fast_math(monkeypatch: pytest.MonkeyPatch) -> None:
    import nutpie
    import pymc as pm
    import pytensor

    flags: list[tuple[str, bool]] = []

    def recording(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            flags.append((name, bool(pytensor.config.numba__fastmath)))
            return original(*args, **kwargs)

        return call

    # nutpie's sampling of the native densities compiles nothing of PyTensor's
    for module, name in ((pytensor, "function"), (nutpie, "compile_pymc_model"), (pm, "sample")):
        monkeypatch.setattr(module, name, recording(name, getattr(module, name)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        draws = sample_paths(PATHS)
    assert set(draws) == set(PATHS)
    assert {name for name, _ in flags} >= {"function", "compile_pymc_model", "sample"}
    fast = sorted({name for name, fast_math in flags if fast_math})
    assert not fast, f"compiled or sampled with fast-math on: {fast}"


if __name__ == "__main__":
    warnings.simplefilter("ignore")
    np.savez(sys.argv[1], **sample_paths(sys.argv[2:]))
