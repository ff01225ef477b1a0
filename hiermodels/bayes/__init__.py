"""Full-Bayes mixed models: PyMC graph builder, default priors, sampling, results.

The pipeline is ``Design -> build_pymc_model -> pm.Model -> fit_bayes -> BayesFit``;
each stage is usable on its own.
"""

from typing import TYPE_CHECKING

from hiermodels._lazy import lazy_exports

if TYPE_CHECKING:
    from hiermodels.bayes.build import build_marginal_model, build_pymc_model, model_coords
    from hiermodels.bayes.gaussian_density import GaussianMarginalDensity
    from hiermodels.bayes.laplace_density import LaplaceDensity
    from hiermodels.bayes.priors import (
        Prior,
        Priors,
        default_priors,
        fixed_value_keys,
        prior_keys,
        resolve_priors,
    )
    from hiermodels.bayes.results import BayesFit, Diagnostics
    from hiermodels.bayes.sample import fit_bayes, sample_density, sample_model

__all__ = [
    "BayesFit",
    "Diagnostics",
    "GaussianMarginalDensity",
    "LaplaceDensity",
    "Prior",
    "Priors",
    "build_pymc_model",
    "build_marginal_model",
    "default_priors",
    "fit_bayes",
    "fixed_value_keys",
    "model_coords",
    "prior_keys",
    "resolve_priors",
    "sample_density",
    "sample_model",
]

# Imported on first use: PyMC, PyTensor, ArviZ and numba load with these modules.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BayesFit": "hiermodels.bayes.results",
        "Diagnostics": "hiermodels.bayes.results",
        "GaussianMarginalDensity": "hiermodels.bayes.gaussian_density",
        "LaplaceDensity": "hiermodels.bayes.laplace_density",
        "Prior": "hiermodels.bayes.priors",
        "Priors": "hiermodels.bayes.priors",
        "build_pymc_model": "hiermodels.bayes.build",
        "build_marginal_model": "hiermodels.bayes.build",
        "default_priors": "hiermodels.bayes.priors",
        "fit_bayes": "hiermodels.bayes.sample",
        "fixed_value_keys": "hiermodels.bayes.priors",
        "model_coords": "hiermodels.bayes.build",
        "prior_keys": "hiermodels.bayes.priors",
        "resolve_priors": "hiermodels.bayes.priors",
        "sample_density": "hiermodels.bayes.sample",
        "sample_model": "hiermodels.bayes.sample",
    },
)
