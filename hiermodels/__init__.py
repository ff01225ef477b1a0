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
    from hiermodels.bayes.results import BayesFit
    from hiermodels.compound.base import CompoundFit
    from hiermodels.compound.bayes import CompoundBayesFit
    from hiermodels.compound.betabinomial import BetaBinomialFit
    from hiermodels.compound.normal import NormalFit
    from hiermodels.compound.poissongamma import PoissonGammaFit
    from hiermodels.design.families import Family
    from hiermodels.eb.fit import EBFit
    from hiermodels.explorer import explore
    from hiermodels.marginal import marginal_means
    from hiermodels.mle.anova import anova
    from hiermodels.mle.results import MixedFit
    from hiermodels.model import Model
    from hiermodels.shrinkage import ShrinkageComparison, compare_shrinkage

__all__ = [
    "BayesFit",
    "BetaBinomialFit",
    "CompoundBayesFit",
    "CompoundFit",
    "EBFit",
    "Family",
    "MixedFit",
    "Model",
    "NormalFit",
    "PoissonGammaFit",
    "ShrinkageComparison",
    "anova",
    "compare_shrinkage",
    "compound",
    "datasets",
    "explore",
    "marginal_means",
]
__version__ = "0.1.0"

# Imported on first use: the engines behind these names load PyMC, numba and
# friends, which would make ``import hiermodels`` (and ``hiermodels --help``) slow.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "BayesFit": "hiermodels.bayes.results",
        "BetaBinomialFit": "hiermodels.compound.betabinomial",
        "CompoundBayesFit": "hiermodels.compound.bayes",
        "CompoundFit": "hiermodels.compound.base",
        "EBFit": "hiermodels.eb.fit",
        "Family": "hiermodels.design.families",
        "MixedFit": "hiermodels.mle.results",
        "Model": "hiermodels.model",
        "NormalFit": "hiermodels.compound.normal",
        "PoissonGammaFit": "hiermodels.compound.poissongamma",
        "ShrinkageComparison": "hiermodels.shrinkage",
        "anova": "hiermodels.mle.anova",
        "compare_shrinkage": "hiermodels.shrinkage",
        "compound": "hiermodels.compound",
        "datasets": "hiermodels.datasets",
        "explore": "hiermodels.explorer",
        "marginal_means": "hiermodels.marginal",
    },
)
