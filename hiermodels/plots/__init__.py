"""Pictures of shrinkage: matplotlib figures from the comparison objects.

Every function draws on new axes or on the caller's (``ax=``) and returns
the :class:`matplotlib.figure.Figure`.

- :func:`plot_shrinkage` — arrows from each group's own estimate to its
  empirical-Bayes and full-Bayes estimates, one panel per term;
- :func:`plot_shrinkage_2d` — the same in the plane of two terms (intercept ×
  slope), with the fitted population covariance ellipses;
- :func:`plot_caterpillar` — plain EB, corrected EB and full-Bayes intervals
  of every group side by side, sorted;
- :func:`plot_shrinkage_factor` — how far each group moved towards the
  population, against its size (:func:`out_of_range_factors` lists the
  groups that crossed the population value or moved away from it);
- :func:`plot_hyperparameters` — posterior of every SD, correlation and σ
  with the marginal MLE marked (and the profile likelihood on a twin axis);
- :func:`plot_raw_shrunk_truth`, :func:`plot_efron_morris` and
  :func:`plot_risk_curves` — compound-sampling pictures.

Colours are the same everywhere: no pooling grey, empirical Bayes blue,
full Bayes orange, the MLE red, the truth green.
"""

from typing import TYPE_CHECKING

from hiermodels._lazy import lazy_exports

if TYPE_CHECKING:
    from hiermodels.plots._common import COLORS
    from hiermodels.plots.caterpillar import plot_caterpillar
    from hiermodels.plots.compound import (
        baseball_estimates,
        baseball_model,
        plot_efron_morris,
        plot_raw_shrunk_truth,
        plot_risk_curves,
    )
    from hiermodels.plots.hyper import hyperparameter_draws, plot_hyperparameters, profile_frames
    from hiermodels.plots.shrinkage import (
        out_of_range_factors,
        plot_shrinkage,
        plot_shrinkage_factor,
    )
    from hiermodels.plots.shrinkage2d import plot_shrinkage_2d, population_covariance

__all__ = [
    "COLORS",
    "plot_shrinkage",
    "plot_shrinkage_2d",
    "plot_caterpillar",
    "plot_shrinkage_factor",
    "out_of_range_factors",
    "plot_hyperparameters",
    "plot_raw_shrunk_truth",
    "plot_efron_morris",
    "plot_risk_curves",
    "baseball_estimates",
    "baseball_model",
    "hyperparameter_draws",
    "population_covariance",
    "profile_frames",
]

# Imported on first use: the drawing modules load matplotlib.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "COLORS": "hiermodels.plots._common",
        "plot_shrinkage": "hiermodels.plots.shrinkage",
        "plot_shrinkage_2d": "hiermodels.plots.shrinkage2d",
        "plot_caterpillar": "hiermodels.plots.caterpillar",
        "plot_shrinkage_factor": "hiermodels.plots.shrinkage",
        "out_of_range_factors": "hiermodels.plots.shrinkage",
        "plot_hyperparameters": "hiermodels.plots.hyper",
        "plot_raw_shrunk_truth": "hiermodels.plots.compound",
        "plot_efron_morris": "hiermodels.plots.compound",
        "plot_risk_curves": "hiermodels.plots.compound",
        "baseball_estimates": "hiermodels.plots.compound",
        "baseball_model": "hiermodels.plots.compound",
        "hyperparameter_draws": "hiermodels.plots.hyper",
        "population_covariance": "hiermodels.plots.shrinkage2d",
        "profile_frames": "hiermodels.plots.hyper",
    },
)
