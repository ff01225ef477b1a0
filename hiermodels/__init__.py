"""hiermodels: Bayesian hierarchical and mixed-effects models.

lme4-style formulas become marginal maximum-likelihood fits (REML, ML,
Laplace) that agree with lme4, PyMC graphs for full Bayes, and an
empirical-Bayes mode that plugs the MLEs into the same graph, so plug-in
shrinkage and the full posterior can be compared group by group.
"""

from typing import TYPE_CHECKING

from hiermodels._lazy import lazy_exports

if TYPE_CHECKING:
    from hiermodels import compound, datasets
    from hiermodels.design.families import Family
    from hiermodels.eb.fit import EBFit
    from hiermodels.mle.anova import anova
    from hiermodels.mle.results import MixedFit
    from hiermodels.model import Model
    from hiermodels.shrinkage import ShrinkageComparison, compare_shrinkage

__all__ = [
    "EBFit",
    "Family",
    "MixedFit",
    "Model",
    "ShrinkageComparison",
    "anova",
    "compare_shrinkage",
    "compound",
    "datasets",
]
__version__ = "0.1.0"

# Imported on first use: the engines behind these names load PyMC, numba and
# friends, which would make ``import hiermodels`` (and ``hiermodels --help``) slow.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "EBFit": "hiermodels.eb.fit",
        "Family": "hiermodels.design.families",
        "MixedFit": "hiermodels.mle.results",
        "Model": "hiermodels.model",
        "ShrinkageComparison": "hiermodels.shrinkage",
        "anova": "hiermodels.mle.anova",
        "compare_shrinkage": "hiermodels.shrinkage",
        "compound": "hiermodels.compound",
        "datasets": "hiermodels.datasets",
    },
)
