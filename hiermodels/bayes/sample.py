"""Former home of the sampling code, kept importable for one release.

``fit_bayes`` lives in :mod:`hiermodels.bayes.fit`. The other names moved by
concern, to :mod:`hiermodels.bayes.samplers`, :mod:`hiermodels.bayes.draws`
and :mod:`hiermodels.bayes.effect_draws`; importing them from here warns
with their new home.
"""

from __future__ import annotations

from hiermodels._lazy import moved_names
from hiermodels.bayes.fit import fit_bayes

__all__ = ["fit_bayes"]

#: Old name here -> (module, name) it moved to.
_MOVED: dict[str, tuple[str, str]] = {
    "MAX_LOG_LIKELIHOOD_SIZE": ("hiermodels.bayes.fit", "MAX_LOG_LIKELIHOOD_SIZE"),
    "PYTHON_BACKEND_MAX_ROWS": ("hiermodels.bayes.samplers", "PYTHON_BACKEND_MAX_ROWS"),
    "reproducible_compilation": ("hiermodels.bayes.samplers", "reproducible_compilation"),
    "sample_density": ("hiermodels.bayes.samplers", "sample_density"),
    "sample_model": ("hiermodels.bayes.samplers", "sample_pymc_model"),
    "LinearPredictorData": ("hiermodels.bayes.draws", "LinearPredictorData"),
    "linear_predictor": ("hiermodels.bayes.draws", "linear_predictor"),
    "mean_response": ("hiermodels.bayes.draws", "mean_response"),
    "pointwise_log_likelihood": ("hiermodels.bayes.draws", "pointwise_log_likelihood"),
    "posterior_predictive_draws": ("hiermodels.bayes.draws", "posterior_predictive_draws"),
    "conditional_effects": ("hiermodels.bayes.effect_draws", "conditional_effects"),
}


__getattr__ = moved_names(__name__, _MOVED)
