"""Compound sampling models and empirical Bayes, for teaching.

``Y_i | theta_i ~ f(y | theta_i)`` independently, ``theta_i ~ G(eta)``
i.i.d.; the marginal ``m(y | eta)`` gives ``eta_hat`` and the parametric
empirical-Bayes (PEB) posterior plugs it in. Three conjugate pairs:

- :class:`NormalNormal` — known sampling SEs; ML, REML or moments for
  ``(mu, tau2)``; James–Stein; Morris (1983) and bootstrap intervals.
- :class:`BetaBinomial` — marginal MLE or moments for ``(alpha, beta)``.
- :class:`PoissonGamma` — marginal (negative-binomial) MLE or moments for the
  gamma prior ``(a, b)``.

Each is a :class:`CompoundModel`, with ``pymc_model``/``fit_bayes`` for the
full-Bayes version (a :class:`CompoundBayesFit`) and ``compare`` for the
per-unit comparison table; every fit speaks the package's result vocabulary
(``ranef_summary``, ``fixef``, ``varcorr``, ``ci_prob``).
:func:`simulate_compound` compares the risks of the estimators over many
simulated data sets.

PyMC, PyTensor, ArviZ and matplotlib are imported on first use, not with
this package.
"""

from hiermodels.compound.base import CompoundFit, CompoundModel
from hiermodels.compound.bayes import CompoundBayesFit
from hiermodels.compound.betabinomial import BetaBinomial, BetaBinomialFit
from hiermodels.compound.comparison import COMPARISON_COLUMNS
from hiermodels.compound.hyperpriors import HyperPriorSpec
from hiermodels.compound.intervals import EBIntervals
from hiermodels.compound.jamesstein import JamesStein, james_stein
from hiermodels.compound.normal import NormalFit, NormalNormal
from hiermodels.compound.poissongamma import PoissonGamma, PoissonGammaFit
from hiermodels.compound.simulate import CompoundSimulation, simulate_compound

__all__ = [
    "COMPARISON_COLUMNS",
    "BetaBinomial",
    "BetaBinomialFit",
    "CompoundBayesFit",
    "CompoundFit",
    "CompoundModel",
    "CompoundSimulation",
    "EBIntervals",
    "HyperPriorSpec",
    "JamesStein",
    "NormalFit",
    "NormalNormal",
    "PoissonGamma",
    "PoissonGammaFit",
    "james_stein",
    "simulate_compound",
]
