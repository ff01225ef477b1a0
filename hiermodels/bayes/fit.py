"""``fit_bayes``: a design sampled by the route :func:`~hiermodels.bayes.route.choose_route` names.

Each :class:`~hiermodels.bayes.route.SamplingRoute` has one runner here,
which samples and completes the posterior with the group effects its
sampler did not draw; :func:`fit_bayes` then adds the observed data, the
log-likelihood and predictive groups and checks the draws.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from hiermodels.bayes.build import OBSERVED, build_pymc_model
from hiermodels.bayes.draws import (
    LinearPredictorData,
    pointwise_log_likelihood,
    posterior_predictive_draws,
)
from hiermodels.bayes.effect_draws import conditional_effects
from hiermodels.bayes.gaussian_density import GaussianMarginalDensity
from hiermodels.bayes.integrated import integrated_effects
from hiermodels.bayes.joint_density import JointDensity, joint_effects
from hiermodels.bayes.laplace_density import LaplaceDensity
from hiermodels.bayes.marginal_graph import build_marginal_model
from hiermodels.bayes.priors import Prior, Priors, resolve_priors
from hiermodels.bayes.results import BayesFit
from hiermodels.bayes.route import SamplingRoute, choose_route
from hiermodels.bayes.samplers import Sampler, sample_density_and_points, sample_pymc_model
from hiermodels.design.design import Design
from hiermodels.mle.blas import single_threaded_blas

if TYPE_CHECKING:
    import pymc as pm

__all__ = ["fit_bayes", "MAX_LOG_LIKELIHOOD_SIZE"]

#: Above this many log-likelihood values (chains x draws x observations,
#: 400 MB of float64) ``fit_bayes`` leaves the ``log_likelihood`` group out.
MAX_LOG_LIKELIHOOD_SIZE = 50_000_000

#: The attribute of the ``posterior`` group that records the route (a saved fit keeps it).
ROUTE_ATTRIBUTE = "route"


@dataclass(frozen=True)
class _Run:
    """What every runner needs besides the design: priors, sampler settings, generator.

    ``rng`` draws the effects the sampler integrated out (the sampler itself
    is seeded with ``random_seed``).
    """

    priors: Priors
    sampler: Sampler
    backend: Literal["auto", "direct", "numba", "python"]
    fixed_values: Mapping[str, ArrayLike] | None
    random_seed: int | None
    progressbar: bool
    draws: int
    tune: int
    chains: int
    target_accept: float
    rng: np.random.Generator

    def graph(self, model: pm.Model) -> xr.DataTree:
        """The draws of a PyMC graph."""
        return sample_pymc_model(
            model,
            sampler=self.sampler,
            random_seed=self.random_seed,
            progressbar=self.progressbar,
            # choose_route sends backend="direct" to the native densities only
            backend=cast(Literal["auto", "numba", "python"], self.backend),
            draws=self.draws,
            tune=self.tune,
            chains=self.chains,
            target_accept=self.target_accept,
        )

    def native(
        self, density: GaussianMarginalDensity | JointDensity | LaplaceDensity
    ) -> tuple[xr.DataTree, xr.Dataset, np.ndarray]:
        """The draws of a native density: the idata, its posterior and the sampler's points."""
        idata, points = sample_density_and_points(
            density,
            random_seed=self.random_seed,
            progressbar=self.progressbar,
            cores=None,
            draws=self.draws,
            tune=self.tune,
            chains=self.chains,
            target_accept=self.target_accept,
        )
        return idata, idata["posterior"].to_dataset(), points


def _with_effects(
    idata: xr.DataTree, posterior: xr.Dataset, effects: Mapping[str, xr.DataArray]
) -> xr.DataTree:
    """``idata`` whose posterior gains the drawn group effects."""
    idata["posterior"] = xr.DataTree(posterior.assign(effects))
    return idata


def _run_full_graph(design: Design, run: _Run) -> xr.DataTree:
    """The graph with the effects as parameters: nothing left to draw."""
    return run.graph(build_pymc_model(design, run.priors, fixed_values=run.fixed_values))


def _run_marginal_graph(design: Design, run: _Run) -> xr.DataTree:
    """The one-factor marginal graph; the effects from their exact conditional."""
    idata = run.graph(build_marginal_model(design, run.priors))
    posterior = idata["posterior"].to_dataset()
    return _with_effects(idata, posterior, conditional_effects(posterior, design, run.rng))


def _run_gaussian_native(design: Design, run: _Run) -> xr.DataTree:
    """The native gaussian marginal density; the effects from their exact conditional."""
    density = GaussianMarginalDensity(design, run.priors)
    idata, posterior, points = run.native(density)
    effects = integrated_effects(posterior, design, density, run.rng, points)
    return _with_effects(idata, posterior, effects)


def _run_joint_native(design: Design, run: _Run) -> xr.DataTree:
    """The native joint density; the effects are among its coordinates, laid out here."""
    density = JointDensity(design, run.priors)
    idata, posterior, points = run.native(density)
    return _with_effects(idata, posterior, joint_effects(posterior, design, density, points))


def _run_laplace_native(design: Design, run: _Run) -> xr.DataTree:
    """The native Laplace density; the effects from the Gaussian at their conditional mode."""
    density = LaplaceDensity(design, run.priors)
    idata, posterior, points = run.native(density)
    effects = integrated_effects(posterior, design, density, run.rng, points)
    return _with_effects(idata, posterior, effects)


#: The runner of each route: it samples and draws the effects the sampler left out.
RUNNERS: dict[SamplingRoute, Callable[[Design, _Run], xr.DataTree]] = {
    SamplingRoute.FULL_GRAPH: _run_full_graph,
    SamplingRoute.MARGINAL_GRAPH: _run_marginal_graph,
    SamplingRoute.GAUSSIAN_NATIVE: _run_gaussian_native,
    SamplingRoute.JOINT_NATIVE: _run_joint_native,
    SamplingRoute.LAPLACE_NATIVE: _run_laplace_native,
}


# chains run in parallel threads (and effect draws chain by chain): BLAS threads on top
# would oversubscribe the cores, and cost more than they save on small factors
@single_threaded_blas
def _check_root_rows(
    design: Design, route: SamplingRoute, log_likelihood: bool | None, predictive: bool
) -> bool:
    """What a design of root rows can be sampled with; ``False`` for the pointwise log-likelihood.

    Raises
    ------
    ValueError
        For a route other than the marginal density, weighted rows, and
        row-level groups (pointwise log-likelihood, posterior predictive).
    """
    if route is not SamplingRoute.GAUSSIAN_NATIVE:
        raise ValueError(
            "a Gaussian model from a Dask DataFrame is sampled with its effects integrated "
            "out, by nutpie's direct backend (sampler='nutpie', backend='auto' or 'direct', "
            "marginalize not False, no fixed_values)"
        )
    if design.compressed is not None and design.compressed.weighted:
        raise ValueError(
            "full Bayes from the summed statistics of weighted rows is not available: the "
            "default priors read the unweighted spread of the response; fit without weights "
            "or on a pandas DataFrame"
        )
    if log_likelihood or predictive:
        raise ValueError(
            "the pointwise log-likelihood and the posterior predictive are row by row; a fit "
            "from a Dask DataFrame holds the rows' summed statistics only"
        )
    return False


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
    per factor as :func:`~hiermodels.bayes.centering.choose_centering` decides);
    negative binomial models, ``fixed_values`` and ``backend="numba"`` or
    ``"python"`` sample the graph itself.

    With ``sampler="pymc"`` only the one-factor models are marginalised
    (through the graph of :func:`~hiermodels.bayes.marginal_graph.build_marginal_model`).

    :func:`~hiermodels.bayes.route.choose_route` decides which of these
    routes runs; the fit records it (:attr:`BayesFit.route
    <hiermodels.bayes.results.BayesFit.route>`, and the ``"route"``
    attribute of the ``posterior`` group).

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
        and ``"python"``: the PyMC graph (see
        :func:`~hiermodels.bayes.samplers.sample_pymc_model`).
        ``"auto"`` takes ``"direct"`` where it applies and
        :func:`~hiermodels.bayes.samplers.sample_pymc_model`'s choice otherwise.
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
        For options no route serves (see
        :func:`~hiermodels.bayes.route.choose_route`), e.g. ``backend="direct"``
        on a model that is not marginalised or with ``sampler="pymc"``.

    Warns
    -----
    SamplingWarning
        When the draws fail :meth:`BayesFit.diagnostics` (divergences, r_hat,
        bulk ESS), with advice that fits the failure.
    """
    from hiermodels._checks import check_random_seed

    random_seed = check_random_seed(random_seed)
    resolved = resolve_priors(design, priors)
    route = choose_route(
        design,
        sampler=sampler,
        backend=backend,
        marginalize=marginalize,
        integrate=integrate,
        fixed_values=fixed_values,
    )
    if design.has_root_rows:
        log_likelihood = _check_root_rows(design, route, log_likelihood, posterior_predictive)
    run = _Run(
        priors=resolved,
        sampler=sampler,
        backend=backend,
        fixed_values=fixed_values,
        random_seed=random_seed,
        progressbar=progressbar,
        draws=draws,
        tune=tune,
        chains=chains,
        target_accept=target_accept,
        rng=np.random.default_rng(random_seed),
    )
    idata = RUNNERS[route](design, run)
    idata["posterior"].attrs[ROUTE_ATTRIBUTE] = route.value
    if not design.has_root_rows:
        idata["observed_data"] = xr.DataTree(_observed_group(design))
    posterior = idata["posterior"].dataset
    if log_likelihood is None:
        values = posterior.sizes["chain"] * posterior.sizes["draw"] * design.nobs
        log_likelihood = values <= MAX_LOG_LIKELIHOOD_SIZE
    data = LinearPredictorData.from_design(design)
    if log_likelihood:
        ll = pointwise_log_likelihood(posterior, data)
        idata["log_likelihood"] = xr.DataTree(xr.Dataset({OBSERVED: ll}))
    if posterior_predictive:
        ppc = posterior_predictive_draws(posterior, data, run.rng)
        idata["posterior_predictive"] = xr.DataTree(xr.Dataset({OBSERVED: ppc}))
    fit = BayesFit(
        idata=idata,
        design=design,
        priors=resolved,
        sampler=sampler,
        fixed_values=dict(fixed_values or {}),
        marginalized=route.integrates_effects,
        integrate="laplace" if route is SamplingRoute.LAPLACE_NATIVE else None,
        route=route,
    )
    # the warning points at the caller of fit_bayes, past the BLAS-threads wrapper
    fit.diagnostics(warn=True, stacklevel=4)
    return fit


def _observed_group(design: Design) -> xr.Dataset:
    """The ``observed_data`` group: ``y`` with its ``obs`` coordinate."""
    rows = list(design.rows) if design.rows.is_unique else list(range(design.n_rows))
    y = xr.DataArray(np.asarray(design.y), dims=("obs",), coords={"obs": rows})
    return xr.Dataset({OBSERVED: y})
