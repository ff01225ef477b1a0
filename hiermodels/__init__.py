"""hiermodels: Bayesian hierarchical and mixed-effects models.

lme4-style formulas become marginal maximum-likelihood fits (REML, ML,
Laplace) that agree with lme4, PyMC graphs for full Bayes, and an
empirical-Bayes mode that plugs the MLEs into the same graph, so plug-in
shrinkage and the full posterior can be compared group by group.
"""

from hiermodels import compound, datasets
from hiermodels.bayes.results import BayesFit
from hiermodels.design.families import Family
from hiermodels.eb.fit import EBFit
from hiermodels.mle.anova import anova
from hiermodels.mle.results import MixedFit
from hiermodels.model import Model
from hiermodels.shrinkage import ShrinkageComparison, compare_shrinkage

__all__ = [
    "BayesFit",
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
