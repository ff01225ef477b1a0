"""The samplers: nutpie on a native density or a PyMC graph, and PyMC's own NUTS.

:func:`sample_density` hands a compiled density of :mod:`hiermodels.bayes.native`
to nutpie as one native function. :func:`sample_pymc_model` samples a PyMC
graph, with nutpie or PyMC's NUTS; nutpie runs the graph either on its own
native compilation (numba) or on PyTensor functions called back from Python,
which PyTensor caches on disk: on small data sets the latter saves several
seconds of compilation per fit.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Literal, cast

import numpy as np
import pymc as pm
import xarray as xr

from hiermodels.bayes.joint_density import JointDensity
from hiermodels.bayes.native import POINT, NativeDensity, expand_draws, native_model
from hiermodels.bayes.prior_density import jittered

__all__ = [
    "RUN_SETTINGS",
    "reproducible_compilation",
    "sample_density",
    "sample_density_and_points",
    "sample_model",
    "sample_pymc_model",
]

Sampler = Literal["nutpie", "pymc"]

#: The run settings every sampler here takes, and so ``fit_bayes``: the advice of
#: :func:`~hiermodels.bayes.convergence.sampling_problem` names them.
RUN_SETTINGS = ("draws", "tune", "chains", "target_accept")

#: Largest data set sampled through Python callbacks by default (see ``sample_pymc_model``).
PYTHON_BACKEND_MAX_ROWS = 5_000

#: nutpie's mass-matrix adaptation for the densities with the effects integrated out.
DIRECT_ADAPTATION = "low_rank"

#: PyTensor mode of the functions nutpie calls back in the ``"python"`` backend.
PYTHON_BACKEND_MODE = "NUMBA"


@contextmanager
def reproducible_compilation() -> Iterator[None]:
    """Compile and run PyTensor models with numba's fast-math flags off, for seed-exact draws.

    PyTensor compiles its numba kernels with fast-math by default
    (``pytensor.config.numba__fastmath``: reassociation and contraction into
    fused multiply-adds, among others) and caches every kernel on disk. With
    those flags the machine code that evaluates a log density depends on
    which kernels LLVM saw together: the process that compiles a graph from
    an empty cache, a later process that loads the whole graph from the
    cache, and one that compiles the graph over cached kernels each round
    the log density and its gradient differently in the last bits. NUTS
    amplifies a last-bit difference into different trajectories, so the same
    seed gave different draws on a fresh machine than on a warm one. Without
    fast-math every kernel follows IEEE arithmetic whatever LLVM inlines,
    and the draws depend on the seed alone (the cache keys carry the flag, so
    kernels compiled with and without it never mix).

    The flag is global PyTensor configuration: it is set for the whole block,
    sampling included, because nutpie and PyMC may compile again while
    sampling (a copy of a function per chain, or in a forked worker).
    """
    import pytensor

    with pytensor.config.change_flags(numba__fastmath=False):
        yield


def _python_compiled(model: pm.Model) -> object:
    """A nutpie model whose log density and gradient are PyTensor functions called from Python.

    The functions are compiled in PyTensor's NUMBA mode, which caches them on
    disk: a warm start costs about a second, against several seconds for
    ``nutpie.compile_pymc_model``'s whole-model native compilation, at the
    price of some microseconds of call overhead per gradient. Initial points
    are PyMC's (support points) with a uniform(-1, 1) jitter on the
    unconstrained scale, as nutpie's own.
    """
    import pytensor
    import pytensor.tensor as pt
    from pymc.logprob.utils import ParameterValueError
    from pymc.model.transform.optimization import freeze_dims_and_data
    from pytensor.graph import graph_replace

    frozen = freeze_dims_and_data(model)
    values = [frozen.rvs_to_values[rv] for rv in frozen.free_RVs]
    start = frozen.initial_point()
    shapes = [np.shape(start[v.name]) for v in values]
    bounds = np.cumsum([0, *(int(np.prod(s)) for s in shapes)])
    flat = pt.vector("flat", dtype="float64", shape=(int(bounds[-1]),))
    replace = {
        v: flat[a:b].reshape(s)
        for v, a, b, s in zip(values, bounds[:-1], bounds[1:], shapes, strict=True)
    }
    logp = frozen.logp()
    grad = pt.concatenate([cast(pt.TensorVariable, pt.grad(logp, v)).ravel() for v in values])
    logp_fn = pytensor.function(
        [flat], graph_replace([logp, grad], replace), mode=PYTHON_BACKEND_MODE, trust_input=True
    )
    keep = {v.name for v in (*frozen.free_RVs, *frozen.deterministics)}
    outputs = [v for v in frozen.unobserved_value_vars if v.name in keep]
    names = [v.name for v in outputs]
    expand_fn = pytensor.function(
        [flat], graph_replace(outputs, replace), mode=PYTHON_BACKEND_MODE, trust_input=True
    )
    x0 = np.concatenate([np.ravel(start[v.name]) for v in values]).astype(np.float64)
    out_shapes = [np.shape(value) for value in expand_fn(x0)]

    # nutpie asks for one function per chain and runs chains in threads: each gets its own
    # copy, as a compiled PyTensor function keeps per-call storage that threads must not share
    def make_logp() -> Callable[..., tuple[float, np.ndarray]]:
        own = logp_fn.copy()

        def logp(x: np.ndarray, **_: object) -> tuple[float, np.ndarray]:
            try:
                value, gradient = own(x)
            except ParameterValueError:
                # a parameter left its support (a scale underflowed to 0 far out in the
                # tails): zero density, which the sampler treats as a divergence
                return -math.inf, np.zeros_like(x)
            return float(value), gradient

        return logp

    def make_expand(*_: object) -> Callable[..., dict[str, np.ndarray]]:
        own = expand_fn.copy()

        def expand(x: np.ndarray, **__: object) -> dict[str, np.ndarray]:
            return dict(zip(names, own(x), strict=True))

        return expand

    def initial_point(seed: int) -> np.ndarray:
        return jittered(x0, seed)

    coords = {k: [str(v) for v in vals] for k, vals in model.coords.items() if k != "obs"}
    dims = {k: v for k, v in model.named_vars_to_dims.items() if k in names}
    return _nutpie_model(
        x0.size, make_logp, make_expand, names, out_shapes, coords, dims, initial_point
    )


def _nutpie_model(
    ndim: int,
    make_logp: Callable[[], Callable[..., tuple[float, np.ndarray]]],
    make_expand: Callable[..., Callable[..., dict[str, np.ndarray]]],
    names: Sequence[str],
    shapes: Sequence[tuple[int, ...]],
    coords: Mapping[str, list],
    dims: Mapping[str, Sequence[str]],
    initial_point: Callable[[int], np.ndarray],
) -> object:
    """A nutpie model from Python functions: log density and gradient, and draw expansion."""
    from nutpie.compiled_pyfunc import from_pyfunc

    return from_pyfunc(
        ndim=ndim,
        make_logp_fn=make_logp,
        make_expand_fn=make_expand,
        expanded_dtypes=[np.dtype("float64")] * len(names),
        expanded_shapes=list(shapes),
        expanded_names=list(names),
        coords=dict(coords),
        dims=dict(dims),
        make_initial_point_fn=initial_point,
    )


def _default_cores(
    draws: int, tune: int, chains: int, cores: int | None, target_accept: float = 0.8
) -> int:
    """Check the run settings; chains in parallel default to ``min(chains, cpu_count)``."""
    for name, value in (("draws", draws), ("tune", tune), ("chains", chains)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
            hint = " (NUTS adapts its step size while tuning)" if name == "tune" else ""
            raise ValueError(f"{name} must be a positive integer{hint}, got {value!r}")
    if not (isinstance(target_accept, float | int) and 0.0 < float(target_accept) < 1.0):
        raise ValueError(
            f"target_accept must be a number strictly between 0 and 1, got {target_accept!r}"
        )
    return cores or max(1, min(chains, os.cpu_count() or 1))


def _sample_nutpie(
    compiled: object,
    *,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
    random_seed: int | None,
    progressbar: bool,
    target_accept: float,
    adaptation: str | None = None,
) -> xr.DataTree:
    import nutpie

    options = {} if adaptation is None else {"adaptation": adaptation}
    return nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        seed=random_seed,
        progress_bar=progressbar,
        save_warmup=False,
        target_accept=float(target_accept),
        **options,
    )


def sample_density(
    density: NativeDensity,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    progressbar: bool = True,
    cores: int | None = None,
    target_accept: float = 0.8,
) -> xr.DataTree:
    """Sample a direct density with nutpie, handed over as one native function.

    Parameters
    ----------
    density : NativeDensity
        :class:`~hiermodels.bayes.gaussian_density.GaussianMarginalDensity`,
        :class:`~hiermodels.bayes.joint_density.JointDensity` or
        :class:`~hiermodels.bayes.laplace_density.LaplaceDensity`
        (:mod:`hiermodels.bayes.native`).
    draws, tune, chains : int
        Kept draws, tuning draws (discarded) and chains.
    random_seed : int, optional
    progressbar : bool
    cores : int, optional
        Chains run in parallel; defaults to ``min(chains, os.cpu_count())``.
    target_accept : float
        The acceptance rate NUTS tunes its step size to (nutpie's and PyMC's
        0.8 by default); higher means smaller steps, fewer divergences.

    Returns
    -------
    xarray.DataTree
        With ``posterior`` (the variables of ``density.output_names``) and
        ``sample_stats``.
    """
    idata, _ = sample_density_and_points(
        density,
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        progressbar=progressbar,
        cores=cores,
        target_accept=target_accept,
    )
    return idata


def sample_density_and_points(
    density: NativeDensity,
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    progressbar: bool,
    cores: int | None,
    target_accept: float,
) -> tuple[xr.DataTree, np.ndarray]:
    """:func:`sample_density`, with the unconstrained points the sampler kept.

    Returns
    -------
    idata : xarray.DataTree
        As :func:`sample_density` returns it.
    points : numpy.ndarray
        ``(chain, draw, ndim)``: the draws on the density's unconstrained
        scale, from which the effects are drawn afterwards.
    """
    cores = _default_cores(draws, tune, chains, cores, target_accept)
    # a direct density has a handful of coordinates, correlated (intercept with SDs, SDs
    # with sigma): nutpie's low-rank mass matrix follows those correlations at little cost
    # and cut sleepstudy's gradients per draw from 5.6 to 4.9 with 40% more bulk ESS
    idata = _sample_nutpie(
        native_model(density),
        draws=draws,
        tune=tune,
        chains=chains,
        cores=cores,
        random_seed=random_seed,
        progressbar=progressbar,
        target_accept=target_accept,
        # the joint density carries every effect: hundreds of coordinates, for which the
        # low-rank update costs more per draw than the gradients (grouseticks, 591
        # coordinates: 9x slower than the diagonal at the same steps per draw)
        adaptation=None if isinstance(density, JointDensity) else DIRECT_ADAPTATION,
    )
    raw = idata["posterior"].to_dataset()
    idata["posterior"] = xr.DataTree(expand_draws(raw, density))
    return idata, raw[POINT].transpose("chain", "draw", ...).values


def sample_pymc_model(
    model: pm.Model,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: Sampler = "nutpie",
    random_seed: int | None = None,
    progressbar: bool = True,
    cores: int | None = None,
    backend: Literal["auto", "numba", "python"] = "auto",
    target_accept: float = 0.8,
) -> xr.DataTree:
    """Sample a PyMC graph with nutpie or PyMC's NUTS.

    Parameters
    ----------
    model : pymc.Model
        Typically from :func:`~hiermodels.bayes.build.build_pymc_model`.
    draws, tune, chains : int
        Kept draws, tuning draws (discarded) and chains.
    sampler : {"nutpie", "pymc"}
        nutpie (through ``backend``) or PyMC's own NUTS (``pm.sample``).
    random_seed : int, optional
    progressbar : bool
    cores : int, optional
        Chains run in parallel; defaults to ``min(chains, os.cpu_count())``.
    backend : {"auto", "numba", "python"}
        How nutpie evaluates the model: natively compiled with numba (chains
        truly in parallel, several seconds to compile) or PyTensor functions
        called from Python (compiled in about a second when cached, with a
        per-gradient overhead that grows in relative weight as models get
        small). ``"auto"`` takes ``"python"`` when the model has at most
        :data:`PYTHON_BACKEND_MAX_ROWS` observations.
    target_accept : float
        The acceptance rate NUTS tunes its step size to (0.8 by default).

    Returns
    -------
    xarray.DataTree
        With ``posterior`` and ``sample_stats`` (and ``observed_data`` from PyMC).
    """
    if sampler not in ("nutpie", "pymc"):
        raise ValueError(f"sampler must be 'nutpie' or 'pymc', got {sampler!r}")
    cores = _default_cores(draws, tune, chains, cores, target_accept)
    if sampler == "nutpie":
        import nutpie

        if backend not in ("auto", "numba", "python"):
            raise ValueError(f"backend must be 'auto', 'numba' or 'python', got {backend!r}")
        if backend == "auto":
            rows = len(model.coords.get("obs", ())) or 0
            backend = "python" if rows <= PYTHON_BACKEND_MAX_ROWS else "numba"
        with reproducible_compilation():
            if backend == "python":
                compiled = _python_compiled(model)
            else:
                compiled = nutpie.compile_pymc_model(model)
            return _sample_nutpie(
                compiled,
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                random_seed=random_seed,
                progressbar=progressbar,
                target_accept=target_accept,
            )
    with reproducible_compilation():
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=random_seed,
            progressbar=progressbar,
            target_accept=float(target_accept),
            compute_convergence_checks=False,
            nuts_sampler="pymc",
            model=model,
        )


def sample_model(model: pm.Model, **options: Any) -> xr.DataTree:
    """Deprecated name of :func:`sample_pymc_model`.

    .. deprecated::
        Use :func:`sample_pymc_model`; ``sample_model`` goes in the next release.
    """
    warnings.warn(
        "hiermodels.bayes.sample_model is renamed sample_pymc_model "
        "(hiermodels.bayes.samplers.sample_pymc_model)",
        DeprecationWarning,
        stacklevel=2,
    )
    return sample_pymc_model(model, **options)
