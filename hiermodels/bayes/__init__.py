"""Full-Bayes mixed models: PyMC graph builder, default priors, sampling, results.

The pipeline is ``Design -> fit_bayes -> BayesFit``; each stage is usable
on its own. :func:`~hiermodels.bayes.route.choose_route` decides once how a
design is sampled, and the fit records the route (``BayesFit.route``, and
the ``"route"`` attribute of its ``posterior`` group):

``GAUSSIAN_NATIVE``
    Gaussian models with group effects, by default: the effects integrated
    out exactly (any structure), the marginal density one compiled function
    nutpie calls natively (:mod:`hiermodels.bayes.gaussian_density`); the effects
    are then drawn from their exact conditional.
``JOINT_NATIVE``
    Binomial, Bernoulli and Poisson models by default: the joint posterior,
    effects as parameters, one native function
    (:mod:`hiermodels.bayes.joint_density`).
``LAPLACE_NATIVE``
    ``integrate="laplace"`` (binomial, Bernoulli, Poisson): an approximate
    posterior, the effects integrated out by the Laplace approximation
    (:mod:`hiermodels.bayes.laplace_density`).
``MARGINAL_GRAPH``
    A gaussian model with one grouping factor and at most two terms,
    sampled on a PyMC graph (``sampler="pymc"``, or nutpie with
    ``backend="numba"`` or ``"python"``): the graph of
    :func:`build_marginal_model`, effects drawn from their exact conditional.
``FULL_GRAPH``
    Everything else: the graph of :func:`build_pymc_model` with the effects
    as parameters — negative binomial models, ``fixed_values``,
    ``marginalize=False`` without a native density, and other gaussian
    models on a PyMC graph.

The native routes need nutpie with ``backend="auto"`` (the default) or
``"direct"``; the graph routes run nutpie on the graph (numba or Python
callbacks) or PyMC's NUTS (:mod:`hiermodels.bayes.samplers`).
"""

from typing import TYPE_CHECKING

from hiermodels._lazy import lazy_exports

if TYPE_CHECKING:
    from hiermodels.bayes.build import build_pymc_model, model_coords
    from hiermodels.bayes.convergence import Diagnostics
    from hiermodels.bayes.fit import fit_bayes
    from hiermodels.bayes.gaussian_density import GaussianMarginalDensity
    from hiermodels.bayes.laplace_density import LaplaceDensity
    from hiermodels.bayes.marginal_graph import build_marginal_model
    from hiermodels.bayes.priors import (
        Prior,
        Priors,
        default_priors,
        fixed_value_keys,
        prior_keys,
        resolve_priors,
    )
    from hiermodels.bayes.results import BayesFit
    from hiermodels.bayes.route import SamplingRoute, choose_route
    from hiermodels.bayes.samplers import sample_density, sample_model, sample_pymc_model

__all__ = [
    "BayesFit",
    "Diagnostics",
    "GaussianMarginalDensity",
    "LaplaceDensity",
    "Prior",
    "Priors",
    "SamplingRoute",
    "build_pymc_model",
    "build_marginal_model",
    "choose_route",
    "default_priors",
    "fit_bayes",
    "fixed_value_keys",
    "model_coords",
    "prior_keys",
    "resolve_priors",
    "sample_density",
    "sample_model",
    "sample_pymc_model",
]

# Imported on first use: PyMC, PyTensor, ArviZ and numba load with these modules.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BayesFit": "hiermodels.bayes.results",
        "Diagnostics": "hiermodels.bayes.convergence",
        "GaussianMarginalDensity": "hiermodels.bayes.gaussian_density",
        "LaplaceDensity": "hiermodels.bayes.laplace_density",
        "Prior": "hiermodels.bayes.priors",
        "Priors": "hiermodels.bayes.priors",
        "build_pymc_model": "hiermodels.bayes.build",
        "build_marginal_model": "hiermodels.bayes.marginal_graph",
        "default_priors": "hiermodels.bayes.priors",
        "fit_bayes": "hiermodels.bayes.fit",
        "fixed_value_keys": "hiermodels.bayes.priors",
        "model_coords": "hiermodels.bayes.build",
        "prior_keys": "hiermodels.bayes.priors",
        "resolve_priors": "hiermodels.bayes.priors",
        "SamplingRoute": "hiermodels.bayes.route",
        "choose_route": "hiermodels.bayes.route",
        "sample_density": "hiermodels.bayes.samplers",
        "sample_model": "hiermodels.bayes.samplers",
        "sample_pymc_model": "hiermodels.bayes.samplers",
    },
)
