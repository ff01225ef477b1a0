"""Bootstrap-calibrated empirical Bayes (Laird & Louis 1987).

The plug-in conditional ``p(u | y, ψ̂)`` ignores that the hyperparameters
``ψ = (θ, σ)`` were estimated. Laird and Louis's parametric bootstrap puts
that uncertainty back: simulate data sets from the fitted model, re-estimate
``ψ*`` on each (:func:`~hiermodels.mle.bootstrap.parametric_bootstrap`),
and take, for every group, the mixture over the replicates of the plug-in
conditionals given the **original** data at ``ψ*`` ::

    p_LL(u | y) = (1/B) Σ_b p(u | y, ψ*_b)

(their "type III" interval: the quantiles of that mixture). With
``plugin="hyper"`` the fixed effects are integrated out under a flat prior,
so the conditional depends on ``ψ`` alone: at ``ψ*_b`` it is the model
evaluated on the original data at ``θ*_b``
(:func:`~hiermodels.mle.fit.fit_lmm` with ``theta=``), its conditional
(:func:`~hiermodels.eb.analytic.gaussian_conditional`) with the covariances
rescaled from that evaluation's ``σ̂(θ*_b)²`` to ``σ*_b²``.

Linear mixed models with ``plugin="hyper"`` only: GLMM conditionals are
computed by MCMC, one run per replicate.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hiermodels.design.factors import long_values
from hiermodels.eb.analytic import gaussian_conditional
from hiermodels.intervals import check_ci_prob, mixture_quantiles

if TYPE_CHECKING:
    from hiermodels.mle.bootstrap import BootstrapResult
    from hiermodels.mle.results import MixedFit

__all__ = ["BootstrapConditionals", "bootstrap_conditionals", "mixture_quantiles"]


@dataclass(frozen=True, eq=False)
class BootstrapConditionals:
    """The plug-in conditionals of every effect at each bootstrap replicate's hyperparameters.

    Attributes
    ----------
    means, sds : numpy.ndarray
        ``(replicates, effects)`` conditional means and SDs, effects in the
        row order of :meth:`~hiermodels.eb.fit.EBFit.ranef_summary`.
    nsim : int
        Replicates simulated.
    n_failed : int
        Replicates whose refit failed (excluded; the bootstrap warned).
    """

    means: np.ndarray
    sds: np.ndarray
    nsim: int
    n_failed: int

    def summary(self, ci_prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, SD and central ``ci_prob`` interval of every effect's mixture.

        The mixture's mean is the replicates' mean of the means; its
        variance the mean of the variances plus the variance of the means.
        """
        ci_prob = check_ci_prob(ci_prob)
        mean = self.means.mean(axis=0)
        var = np.mean(self.sds**2, axis=0) + self.means.var(axis=0)
        tail = (1.0 - ci_prob) / 2.0
        lower = mixture_quantiles(self.means, self.sds, tail)
        upper = mixture_quantiles(self.means, self.sds, 1.0 - tail)
        return mean, np.sqrt(var), lower, upper


def bootstrap_conditionals(mle: MixedFit, boot: BootstrapResult) -> BootstrapConditionals:
    """The plug-in conditionals given the fit's data at every replicate's ``(θ*, σ*)``.

    Parameters
    ----------
    mle : MixedFit
        The REML or ML fit of a linear mixed model.
    boot : BootstrapResult
        Its parametric bootstrap.

    Returns
    -------
    BootstrapConditionals
    """
    from hiermodels.mle.fit import fit_lmm

    if not mle.design.family.is_gaussian:
        raise ValueError("bootstrap EB intervals are available for linear mixed models")
    means, sds = [], []
    sigmas = boot.draws["sigma"].to_numpy()
    for theta, sigma in zip(boot.theta, sigmas, strict=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a boundary θ* is a valid point of the mixture
            at_replicate = fit_lmm(mle.design, mle.method, theta=theta)
        cond = gaussian_conditional(at_replicate, "hyper")
        scale = (sigma / at_replicate.sigma) ** 2
        means.append(long_values(cond.means))
        sds.append(
            long_values(
                [
                    np.sqrt(np.clip(scale * np.diagonal(c, axis1=1, axis2=2), 0.0, None))
                    for c in cond.covariances
                ]
            )
        )
    return BootstrapConditionals(
        means=np.vstack(means),
        sds=np.vstack(sds),
        nsim=boot.nsim,
        n_failed=boot.n_failed,
    )
