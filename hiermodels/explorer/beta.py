"""What the beta–binomial explorer needs from Python: the data and the marginal MLE.

The posterior means, shrinkage factors and the beta-binomial marginal
log-likelihood at the sliders' ``(mu, M)`` are closed forms, computed in the
page.
"""

from __future__ import annotations

import warnings
from typing import Any

from hiermodels.compound.betabinomial import BetaBinomial

__all__ = ["beta_binomial_payload"]


def beta_binomial_payload(model: BetaBinomial) -> dict[str, Any]:
    """The page's data for a beta–binomial model.

    Parameters
    ----------
    model : BetaBinomial
        Successes out of trials per unit.

    Returns
    -------
    dict
        JSON-ready payload: the data, the pooled rate and the marginal MLE of
        the prior mean ``mu`` and strength ``M = alpha + beta`` (``None`` at
        the complete-pooling boundary, where ``M`` is infinite).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the page states a boundary fit itself
        fit = model.fit("ml")
    return {
        "unit_name": model.unit_name,
        "units": list(model.units),
        "successes": model.successes,
        "trials": model.trials,
        "pooled": model.pooled,
        "mle": {
            "mu": fit.prior_mean,
            "strength": None if fit.boundary else fit.precision,
            "loglik": fit.loglik,
        },
    }
