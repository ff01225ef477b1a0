"""Simulated negative-binomial GLMM data for the reference and recovery tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: True values of :func:`nbinom_slope`: fixed effects, SDs, correlation, dispersion.
SLOPE_TRUTH = {
    "Intercept": 1.0,
    "x": 0.4,
    "sd_g__Intercept": 0.5,
    "sd_g__x": 0.3,
    "corr_g[Intercept,x]": 0.4,
    "alpha": 3.0,
}


def nbinom_slope(seed: int = 1, n_groups: int = 50, per_group: int = 12) -> pd.DataFrame:
    """``y ~ x + (x | g)``, negative binomial (``Var(y) = μ + μ²/3``), log link.

    ``x`` is standard normal per row; the group effects are bivariate normal
    with the SDs and correlation of :data:`SLOPE_TRUTH`. Seed 1 (the first
    tried) makes ``tests/reference/glmmTMB/nbinom_slope_seed1.csv``.
    """
    truth = SLOPE_TRUTH
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=g.size)
    sd0, sd1, rho = truth["sd_g__Intercept"], truth["sd_g__x"], truth["corr_g[Intercept,x]"]
    cov = np.array([[sd0**2, rho * sd0 * sd1], [rho * sd0 * sd1, sd1**2]])
    u = rng.multivariate_normal(np.zeros(2), cov, n_groups)
    mu = np.exp(truth["Intercept"] + truth["x"] * x + u[g, 0] + u[g, 1] * x)
    alpha = truth["alpha"]
    y = rng.negative_binomial(alpha, alpha / (alpha + mu))
    return pd.DataFrame({"g": [f"g{i:02d}" for i in g], "x": x, "y": y})
