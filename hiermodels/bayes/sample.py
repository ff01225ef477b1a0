"""Sampling a built model, and the draw-wise quantities computed from a posterior.

:func:`fit_bayes` samples a design with nutpie (default) or PyMC's NUTS and
wraps the result in a :class:`~hiermodels.bayes.results.BayesFit`. With
nutpie, gaussian models are sampled with the group effects integrated out
(:mod:`hiermodels.bayes.gaussian_density`), which are then drawn from their
exact conditional, and binomial, Bernoulli and Poisson models with the
effects as parameters (:mod:`hiermodels.bayes.joint_density`): each density
is one compiled function that nutpie calls natively
(:mod:`hiermodels.bayes.native`). With ``integrate="laplace"`` GLMMs are
sampled with the effects integrated out by the Laplace approximation (an
approximate posterior; :mod:`hiermodels.bayes.laplace_density`, also one
native function). Everything else samples the PyMC graph of
:mod:`hiermodels.bayes.build`.

On the graph nutpie runs either on its own native compilation of the model
(numba) or on PyTensor functions called back from Python, which PyTensor
caches on disk: on small data sets the latter saves several seconds of
compilation per fit (see :func:`sample_model`).

The pointwise log-likelihood, posterior predictive draws and predictions for
new data are computed from the posterior draws of ``beta``, ``u_<group>``,
``sigma``/``alpha`` with numpy, without compiling anything.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pymc as pm
import xarray as xr
from numpy.typing import ArrayLike
from scipy import special, stats

from hiermodels.bayes.build import (
    OBSERVED,
    FactorStatistics,
    build_marginal_model,
    build_pymc_model,
    can_marginalize,
    factor_cholesky,
    precision_terms,
)
from hiermodels.bayes.gaussian_density import GaussianMarginalDensity
from hiermodels.bayes.integrated import integrated_effects
from hiermodels.bayes.joint_density import JointDensity, joint_effects, supports_joint_density
from hiermodels.bayes.laplace_density import LaplaceDensity, check_laplace_family
from hiermodels.bayes.marginal_density import effect_arrays
from hiermodels.bayes.native import POINT, NativeDensity, expand_draws, native_model
from hiermodels.bayes.prior_density import jittered
from hiermodels.bayes.priors import Prior, Priors, group_term_layout, resolve_priors
from hiermodels.design.design import Design
from hiermodels.design.families import Family
from hiermodels.mle.optimize import single_threaded_blas

if TYPE_CHECKING:
    from hiermodels.bayes.results import BayesFit

__all__ = [
    "fit_bayes",
    "sample_model",
    "sample_density",
    "reproducible_compilation",
    "conditional_effects",
    "LinearPredictorData",
    "linear_predictor",
    "pointwise_log_likelihood",
    "posterior_predictive_draws",
    "mean_response",
]

Sampler = Literal["nutpie", "pymc"]

#: Above this many log-likelihood values (chains x draws x observations,
#: 400 MB of float64) ``fit_bayes`` leaves the ``log_likelihood`` group out.
MAX_LOG_LIKELIHOOD_SIZE = 50_000_000

#: Largest data set sampled through Python callbacks by default (see ``sample_model``).
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


def _observed_group(design: Design) -> xr.Dataset:
    """The ``observed_data`` group: ``y`` with its ``obs`` coordinate."""
    rows = list(design.rows) if design.rows.is_unique else list(range(design.nobs))
    y = xr.DataArray(np.asarray(design.y), dims=("obs",), coords={"obs": rows})
    return xr.Dataset({OBSERVED: y})


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
    grad = pt.concatenate([pt.grad(logp, v).ravel() for v in values])
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
    def make_logp() -> object:
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

    def make_expand(*_: object) -> object:
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
    idata, _ = _sample_direct(
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


def _sample_direct(
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
    """:func:`sample_density`, with the unconstrained points the sampler kept."""
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


def sample_model(
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
    """Sample a PyMC model with nutpie or PyMC's NUTS.

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


# chains run in parallel threads (and effect draws chain by chain): BLAS threads on top
# would oversubscribe the cores, and cost more than they save on small factors
@single_threaded_blas
def fit_bayes(
    design: Design,
    *,
    priors: Priors | Mapping[str, Prior] | None = None,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    sampler: Sampler = "nutpie",
    random_seed: int | None = None,
    progressbar: bool = True,
    fixed_values: Mapping[str, ArrayLike] | None = None,
    log_likelihood: bool | None = None,
    posterior_predictive: bool = False,
    marginalize: bool | None = None,
    backend: Literal["auto", "direct", "numba", "python"] = "auto",
    target_accept: float = 0.8,
    integrate: Literal["laplace"] | None = None,
) -> BayesFit:
    """Full-Bayes fit of a design by MCMC.

    Every gaussian model is sampled with its group effects integrated out:
    the sampler explores ``beta``, the SDs, the correlations and ``sigma``
    (a handful of dimensions instead of hundreds), and ``z_<g>`` and
    ``u_<g>`` are drawn afterwards from their exact Gaussian conditional
    given each posterior draw. The posterior is the same as that of the
    graph of :func:`~hiermodels.bayes.build.build_pymc_model`, which is
    sampled with ``marginalize=False``. With
    nutpie the marginal density of any structure — one factor, crossed,
    nested to any depth, several terms per factor, correlated blocks of any
    size — is
    :class:`~hiermodels.bayes.gaussian_density.GaussianMarginalDensity`, the
    MLE engine's likelihood not profiled, handed to nutpie as one native
    function (:mod:`hiermodels.bayes.native`): no PyTensor function is
    compiled and no Python runs per gradient.

    Binomial, Bernoulli (logit or probit) and Poisson models are sampled
    with nutpie on the graph's joint posterior, effects as parameters, by
    the native function of
    :class:`~hiermodels.bayes.joint_density.JointDensity` (centred or not
    per factor as :func:`~hiermodels.bayes.build.choose_centering` decides);
    negative binomial models, ``fixed_values`` and ``backend="numba"`` or
    ``"python"`` sample the graph itself.

    With ``sampler="pymc"`` only the one-factor models are marginalised
    (through the graph of :func:`~hiermodels.bayes.build.build_marginal_model`).

    Parameters
    ----------
    design : Design
    priors : Priors or mapping of str to Prior, optional
        Overrides of the default priors (see :mod:`hiermodels.bayes.priors`).
    draws, tune, chains : int
        Kept draws per chain, tuning draws per chain, chains.
    sampler : {"nutpie", "pymc"}
    random_seed : int, optional
    progressbar : bool
    fixed_values : mapping of str to array_like, optional
        Variables held fixed (empirical Bayes); see
        :func:`~hiermodels.bayes.build.build_pymc_model`.
    log_likelihood : bool, optional
        Add the pointwise ``log_likelihood`` group (needed by ``loo``). By
        default it is added unless it would exceed
        :data:`MAX_LOG_LIKELIHOOD_SIZE` values.
    posterior_predictive : bool
        Add a ``posterior_predictive`` group (one replicate per draw).
    marginalize : bool, optional
        Integrate the group effects out (gaussian models). By default
        whenever possible and no ``fixed_values`` are given; ``True`` raises
        when it is not possible.
    backend : {"auto", "direct", "numba", "python"}
        How nutpie evaluates the model. ``"direct"``: a compiled density
        without PyTensor (the marginal density of a marginalised model, the
        joint density of a binomial, Bernoulli or Poisson model); ``"numba"``
        and ``"python"``: the PyMC graph (see :func:`sample_model`).
        ``"auto"`` takes ``"direct"`` where it applies and
        :func:`sample_model`'s choice otherwise.
    target_accept : float
        The acceptance rate NUTS tunes its step size to (0.8 by default);
        raise it (0.9, 0.95, 0.99) when the sampler reports divergences.
    integrate : {None, "laplace"}
        ``"laplace"`` (binomial, bernoulli and Poisson models): an
        **approximate** posterior. NUTS runs over ``beta`` and the SDs and
        correlations only, the group effects integrated out by the Laplace
        approximation the MLE engine computes; the effects are then drawn from
        the Gaussian approximation at their conditional mode
        (:class:`~hiermodels.bayes.laplace_density.LaplaceDensity`). Close to
        the exact posterior with many observations or large counts per level;
        see :mod:`hiermodels.bayes.laplace_density` for when it is not.

    Returns
    -------
    BayesFit

    Raises
    ------
    ValueError
        For ``backend="direct"`` on a model that is not marginalised or with
        ``sampler="pymc"``.

    Warns
    -----
    SamplingWarning
        When the draws fail :meth:`BayesFit.diagnostics` (divergences, r_hat,
        bulk ESS), with advice that fits the failure.
    """
    from hiermodels._checks import check_random_seed

    random_seed = check_random_seed(random_seed)
    resolved = resolve_priors(design, priors)
    if integrate is not None:
        return _fit_laplace_integrated(
            design,
            resolved,
            integrate=integrate,
            sampler=sampler,
            backend=backend,
            marginalize=marginalize,
            fixed_values=fixed_values,
            random_seed=random_seed,
            progressbar=progressbar,
            log_likelihood=log_likelihood,
            posterior_predictive=posterior_predictive,
            run={"draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept},
        )
    one_factor = can_marginalize(design)
    gaussian = design.family.is_gaussian and bool(design.blocks)
    direct = sampler == "nutpie" and backend in ("auto", "direct")
    if marginalize is None:
        marginalize = not fixed_values and (one_factor or (gaussian and direct))
    if marginalize and fixed_values:
        raise ValueError("fixed_values are not available with marginalize=True")
    if marginalize and not gaussian:
        raise ValueError(
            f"the group effects are integrated out exactly only in gaussian models; "
            f"a {design.family.name} model is sampled with them (marginalize=False)"
        )
    if marginalize and not (one_factor or direct):
        raise ValueError(
            "the group effects of this model are integrated out only by nutpie's direct "
            "backend (sampler='nutpie', backend='auto' or 'direct'); pass marginalize=False"
        )
    joint = not gaussian and direct and not fixed_values and supports_joint_density(design)
    if backend == "direct" and not (sampler == "nutpie" and (marginalize or joint)):
        raise ValueError(
            "backend='direct' samples a compiled density with nutpie: it needs "
            "sampler='nutpie' and either marginalize=True (a gaussian model) or a binomial, "
            "Bernoulli or Poisson model without fixed_values"
        )
    run = {"draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept}
    density: GaussianMarginalDensity | JointDensity | None = None
    points = None
    if (marginalize and direct) or joint:
        density = (
            GaussianMarginalDensity(design, resolved)
            if marginalize
            else JointDensity(design, resolved)
        )
        idata, points = _sample_direct(
            density, random_seed=random_seed, progressbar=progressbar, cores=None, **run
        )
    else:
        if marginalize:
            model = build_marginal_model(design, resolved)
        else:
            model = build_pymc_model(design, resolved, fixed_values=fixed_values)
        idata = sample_model(
            model,
            sampler=sampler,
            random_seed=random_seed,
            progressbar=progressbar,
            backend="auto" if backend == "direct" else backend,
            **run,
        )
    rng = np.random.default_rng(random_seed)
    if isinstance(density, JointDensity):
        posterior = idata["posterior"].to_dataset()
        effects = joint_effects(posterior, design, density, points)
        idata["posterior"] = xr.DataTree(posterior.assign(effects))
    elif marginalize:
        posterior = idata["posterior"].to_dataset()
        if density is not None:
            effects = integrated_effects(posterior, design, density, rng, points)
        else:
            effects = conditional_effects(posterior, design, rng)
        idata["posterior"] = xr.DataTree(posterior.assign(effects))
    return _finished_fit(
        idata,
        design,
        resolved,
        sampler=sampler,
        fixed_values=fixed_values,
        marginalized=marginalize,
        integrate=None,
        log_likelihood=log_likelihood,
        posterior_predictive=posterior_predictive,
        rng=rng,
        stacklevel=5,
    )


def _fit_laplace_integrated(
    design: Design,
    resolved: Priors,
    *,
    integrate: str,
    sampler: str,
    backend: str,
    marginalize: bool | None,
    fixed_values: Mapping[str, ArrayLike] | None,
    random_seed: int | None,
    progressbar: bool,
    log_likelihood: bool | None,
    posterior_predictive: bool,
    run: dict,
) -> BayesFit:
    """``fit_bayes(integrate="laplace")``: NUTS over the hyperparameters, effects by Laplace."""
    if integrate != "laplace":
        raise ValueError(f"integrate must be None or 'laplace', got {integrate!r}")
    if sampler != "nutpie" or backend not in ("auto", "direct"):
        raise ValueError(
            "integrate='laplace' samples with nutpie's direct backend "
            "(sampler='nutpie', backend='auto' or 'direct')"
        )
    if marginalize is not None or fixed_values:
        raise ValueError(
            "integrate='laplace' takes neither marginalize nor fixed_values: the effects are "
            "integrated out by the Laplace approximation and every hyperparameter is sampled"
        )
    check_laplace_family(design)
    density = LaplaceDensity(design, resolved)
    idata, points = _sample_direct(
        density, random_seed=random_seed, progressbar=progressbar, cores=None, **run
    )
    rng = np.random.default_rng(random_seed)
    posterior = idata["posterior"].to_dataset()
    effects = integrated_effects(posterior, design, density, rng, points)
    idata["posterior"] = xr.DataTree(posterior.assign(effects))
    return _finished_fit(
        idata,
        design,
        resolved,
        sampler=sampler,
        fixed_values=None,
        marginalized=True,
        integrate="laplace",
        log_likelihood=log_likelihood,
        posterior_predictive=posterior_predictive,
        rng=rng,
        stacklevel=6,
    )


def _finished_fit(
    idata: xr.DataTree,
    design: Design,
    resolved: Priors,
    *,
    sampler: str,
    fixed_values: Mapping[str, ArrayLike] | None,
    marginalized: bool,
    integrate: str | None,
    log_likelihood: bool | None,
    posterior_predictive: bool,
    rng: np.random.Generator,
    stacklevel: int,
) -> BayesFit:
    """The observed data, log-likelihood and predictive groups added; the fit checked.

    ``stacklevel`` makes the :class:`SamplingWarning` point at the caller of
    :func:`fit_bayes`.
    """
    from hiermodels.bayes.results import BayesFit

    idata["observed_data"] = xr.DataTree(_observed_group(design))
    posterior = idata["posterior"].dataset
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    if log_likelihood is None:
        log_likelihood = chains * draws * design.nobs <= MAX_LOG_LIKELIHOOD_SIZE
    data = LinearPredictorData.from_design(design)
    if log_likelihood:
        ll = pointwise_log_likelihood(posterior, data)
        idata["log_likelihood"] = xr.DataTree(xr.Dataset({OBSERVED: ll}))
    if posterior_predictive:
        ppc = posterior_predictive_draws(posterior, data, rng)
        idata["posterior_predictive"] = xr.DataTree(xr.Dataset({OBSERVED: ppc}))
    fit = BayesFit(
        idata=idata,
        design=design,
        priors=resolved,
        sampler=sampler,
        fixed_values=dict(fixed_values or {}),
        marginalized=marginalized,
        integrate=integrate,
    )
    fit.diagnostics(warn=True, stacklevel=stacklevel)
    return fit


@dataclass(frozen=True, eq=False)
class LinearPredictorData:
    """The arrays that map posterior draws to a linear predictor, for some rows.

    Attributes
    ----------
    family : Family
    X : numpy.ndarray
        ``(n, p)`` fixed-effects matrix.
    groups : tuple of (str, numpy.ndarray, numpy.ndarray)
        Per grouping factor: name, ``(n,)`` level codes (``-1``: a level not in
        the fit, contributing zero), ``(n, q)`` term columns.
    offset : numpy.ndarray or None
    y : numpy.ndarray or None
        Observed response (for the log-likelihood).
    trials : numpy.ndarray or None
        Binomial trials.
    obs : list
        Row labels.
    """

    family: Family
    X: np.ndarray
    groups: tuple[tuple[str, np.ndarray, np.ndarray], ...]
    offset: np.ndarray | None
    y: np.ndarray | None
    trials: np.ndarray | None
    obs: list

    @classmethod
    def from_design(cls, design: Design) -> LinearPredictorData:
        """The design's own rows."""
        groups = tuple(
            (layout.group, np.asarray(layout.codes, dtype=np.int64), layout.X)
            for layout in group_term_layout(design)
        )
        rows = list(design.rows) if design.rows.is_unique else list(range(design.nobs))
        return cls(
            family=design.family,
            X=np.asarray(design.X, dtype=float),
            groups=groups,
            offset=design.offset,
            y=np.asarray(design.y, dtype=float),
            trials=design.trials,
            obs=rows,
        )


def linear_predictor(posterior: xr.Dataset, data: LinearPredictorData) -> xr.DataArray:
    """``eta = X beta + sum_g sum(u_g[codes] * X_g, axis=1) + offset`` for every draw.

    Parameters
    ----------
    posterior : xarray.Dataset
        With ``beta`` (chain, draw, coef) and ``u_<group>`` (chain, draw,
        level, term).
    data : LinearPredictorData

    Returns
    -------
    xarray.DataArray
        ``(chain, draw, obs)``.
    """
    beta = posterior["beta"].transpose("chain", "draw", "coef").values
    eta = np.einsum("cdp,np->cdn", beta, data.X)
    for group, codes, Xg in data.groups:
        u = posterior[f"u_{group}"].transpose("chain", "draw", group, f"{group}__term").values
        known = codes >= 0
        for c in range(u.shape[0]):  # chain by chain keeps the (draw, n, q) gather small
            gathered = u[c][:, codes[known], :]
            eta[c][:, known] += np.einsum("dnq,nq->dn", gathered, Xg[known])
    if data.offset is not None:
        eta = eta + np.asarray(data.offset, dtype=float)
    return xr.DataArray(
        eta,
        dims=("chain", "draw", "obs"),
        coords={
            "chain": posterior["chain"].values,
            "draw": posterior["draw"].values,
            "obs": data.obs,
        },
    )


def _log_p(eta: np.ndarray, link: str) -> tuple[np.ndarray, np.ndarray]:
    """``log p`` and ``log(1 - p)`` for ``p = inverse_link(eta)``, computed stably."""
    if link == "probit":
        return special.log_ndtr(eta), special.log_ndtr(-eta)
    return -np.logaddexp(0.0, -eta), -np.logaddexp(0.0, eta)


def mean_response(eta: np.ndarray, family: Family) -> np.ndarray:
    """The inverse link: mean of the response (a probability for bernoulli/binomial)."""
    if family.is_gaussian:
        return eta
    if family.is_binomial:
        return special.ndtr(eta) if family.link == "probit" else special.expit(eta)
    return np.exp(eta)


def _draws_of(posterior: xr.Dataset, name: str) -> np.ndarray:
    """A scalar parameter's ``(chain, draw, 1)`` draws, to broadcast over observations."""
    return posterior[name].transpose("chain", "draw").values[..., None]


def pointwise_log_likelihood(posterior: xr.Dataset, data: LinearPredictorData) -> xr.DataArray:
    """Log-likelihood of every observation at every draw, as PyMC's model defines it.

    Parameters
    ----------
    posterior : xarray.Dataset
    data : LinearPredictorData
        Must carry ``y`` (and ``trials`` for binomial).

    Returns
    -------
    xarray.DataArray
        ``(chain, draw, obs)``.
    """
    if data.y is None:
        raise ValueError("the log-likelihood needs the observed response")
    eta_da = linear_predictor(posterior, data)
    eta, y, family = eta_da.values, data.y, data.family
    if family.is_gaussian:
        ll = stats.norm.logpdf(y, loc=eta, scale=_draws_of(posterior, "sigma"))
    elif family.is_binomial:
        log_p, log_q = _log_p(eta, family.link)
        n = np.ones_like(y) if data.trials is None or family.name == "bernoulli" else data.trials
        log_choose = special.gammaln(n + 1) - special.gammaln(y + 1) - special.gammaln(n - y + 1)
        ll = log_choose + y * log_p + (n - y) * log_q
    elif family.name == "poisson":
        ll = y * eta - np.exp(eta) - special.gammaln(y + 1)
    else:
        alpha = _draws_of(posterior, "alpha")
        mu = np.exp(eta)
        ll = stats.nbinom.logpmf(y, alpha, alpha / (alpha + mu))
    return eta_da.copy(data=ll)


def posterior_predictive_draws(
    posterior: xr.Dataset, data: LinearPredictorData, rng: np.random.Generator
) -> xr.DataArray:
    """One replicate response per posterior draw, from the family's distribution.

    Parameters
    ----------
    posterior : xarray.Dataset
    data : LinearPredictorData
    rng : numpy.random.Generator

    Returns
    -------
    xarray.DataArray
        ``(chain, draw, obs)``; counts of successes for binomial.
    """
    eta_da = linear_predictor(posterior, data)
    eta, family = eta_da.values, data.family
    mean = mean_response(eta, family)
    if family.is_gaussian:
        draws = rng.normal(mean, _draws_of(posterior, "sigma"))
    elif family.is_binomial:
        n = 1 if data.trials is None or family.name == "bernoulli" else data.trials
        draws = rng.binomial(np.asarray(n, dtype=np.int64), np.clip(mean, 0.0, 1.0))
    elif family.name == "poisson":
        draws = rng.poisson(mean)
    else:
        alpha = np.broadcast_to(_draws_of(posterior, "alpha"), mean.shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            draws = rng.negative_binomial(alpha, alpha / (alpha + mean))
    return eta_da.copy(data=draws)


def conditional_effects(
    posterior: xr.Dataset, design: Design, rng: np.random.Generator
) -> dict[str, xr.DataArray]:
    """Draw ``z_<g>`` and ``u_<g>`` from their Gaussian conditional, one per posterior draw.

    For the models of :func:`~hiermodels.bayes.build.build_marginal_model`:
    given ``beta``, the SDs, the correlation and ``sigma``, the offsets of
    level ``j`` are ``z_j ~ N(A_j^{-1} c_j / sigma^2, A_j^{-1})`` with
    ``A_j = I + L' Z_j' Z_j L / sigma^2`` and ``c_j = L' Z_j' (y_j - X_j beta)``,
    and ``u_j = L z_j`` (``L`` the Cholesky factor of the effects' covariance).

    Returns
    -------
    dict of str to xarray.DataArray
        ``z_<g>`` and ``u_<g>``, dims ``(chain, draw, <g>, <g>__term)``.
    """
    (layout,) = group_term_layout(design)
    g, q = layout.group, len(layout.terms)
    stats = FactorStatistics.from_design(design)
    beta = posterior["beta"].transpose("chain", "draw", "coef").values
    sds = [
        posterior[f"sd_{g}__{t}"].transpose("chain", "draw").values[..., None] for t in layout.terms
    ]
    sigma = posterior["sigma"].transpose("chain", "draw").values[..., None]
    correlated = bool(layout.correlated_spans)
    r = posterior[f"corr_{g}"].values[..., 0, 1][..., None] if correlated else 0.0
    l00, l10, l11 = factor_cholesky(sds, r, correlated)
    h = stats.Zty - np.einsum("gqp,cdp->cdgq", stats.ZtX, beta)
    a00, a01, a11, c0, c1 = precision_terms(
        stats, (l00, l10, l11), sigma, h[..., 0], h[..., 1] if q == 2 else 0.0
    )
    s2 = sigma**2
    eps = rng.standard_normal((*h.shape[:-1], q))
    if q == 1:
        z = (c0 / (a00 * s2) + eps[..., 0] / np.sqrt(a00))[..., None]
        u = l00[..., None] * z
    else:
        det = a00 * a11 - a01**2
        r00 = np.sqrt(a00)
        r10 = a01 / r00
        r11 = np.sqrt(a11 - r10**2)
        z1 = (a00 * c1 - a01 * c0) / (det * s2) + eps[..., 1] / r11  # mean + R^{-T} eps
        z0 = (a11 * c0 - a01 * c1) / (det * s2) + (eps[..., 0] - r10 * eps[..., 1] / r11) / r00
        z = np.stack([z0, z1], axis=-1)
        u = np.stack([l00 * z0, l10 * z0 + l11 * z1], axis=-1)
    return effect_arrays(posterior, layout, z, u)
