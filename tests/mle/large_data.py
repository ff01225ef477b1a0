"""Simulated data of 200,000 rows for the convergence check at scale.

``python -m tests.mle.large_data PATH`` writes the table to a CSV file for
``tests/reference/lme4/make_convergence_reference.R``.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

FORMULA = "y ~ x + (x | g)"


def simulate(n_groups: int = 2000, per_group: int = 100, seed: int = 2026) -> pd.DataFrame:
    """``y = 10 + 2x + b₀ + b₁x + e`` with correlated ``(b₀, b₁)`` per group and ``e ~ N(0, 9)``."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(0.0, 1.0, g.size)
    b = rng.multivariate_normal([0.0, 0.0], [[4.0, 0.6], [0.6, 1.0]], n_groups)
    y = 10.0 + 2.0 * x + b[g, 0] + b[g, 1] * x + rng.normal(0.0, 3.0, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:04d}" for k in g]})


if __name__ == "__main__":
    simulate().to_csv(sys.argv[1], index=False, float_format="%.17g")
