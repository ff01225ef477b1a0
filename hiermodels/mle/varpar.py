"""The deviance of a linear mixed model in lmerTest's variance parameters ``φ = (θ, σ)``.

With ``σ`` kept explicit and ``β`` profiled, ::

    ML:   d(θ, σ) = log|L|² + n log(2πσ²) + r²(θ)/σ²
    REML: d(θ, σ) = log|L|² + log|R_X|² + (n − p) log(2πσ²) + r²(θ)/σ²

and the covariance of the fixed effects is ``σ² (R_Xᵀ R_X)⁻¹``. Both depend on
the data through cross products only, so they serve a fit from rows and one
from summed statistics alike. They are evaluated on the standardised
problem (:mod:`hiermodels.mle.standardize`), where the raw cross products of
a response far from zero cancel, and reported in the design's units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hiermodels.design.design import Design
from hiermodels.mle.blocked import triangular_inverse
from hiermodels.mle.lmm import LmmDeviance, profiled_deviance
from hiermodels.mle.standardize import Standardization

__all__ = ["VarparDeviance", "fixed_effects_covariance"]


def fixed_effects_covariance(
    standardization: Standardization, rx: np.ndarray, sigma: float
) -> np.ndarray:
    """``σ² (R_Xᵀ R_X)⁻¹`` in the design's units, from the standardised ``R_X`` and ``σ``."""
    if not rx.size:
        return np.zeros((0, 0))
    rx_inv = triangular_inverse(rx, lower=False)
    return standardization.vcov_beta(sigma**2 * (rx_inv @ rx_inv.T))


@dataclass(frozen=True, eq=False)
class VarparDeviance:
    """The REML or ML deviance of a Gaussian design as a function of ``(θ, σ)``.

    Attributes
    ----------
    standardization : Standardization
        The map between the design's units and the standardised problem.
    deviance : LmmDeviance
        The profiled criterion of the standardised design.
    """

    standardization: Standardization
    deviance: LmmDeviance

    @classmethod
    def of(cls, design: Design, reml: bool) -> VarparDeviance:
        """The deviance of ``design`` (REML when ``reml``, else ML)."""
        standardization = Standardization.of(design)
        return cls(standardization, profiled_deviance(standardization.apply(design), reml=reml))

    def __call__(self, theta: np.ndarray, sigma: float) -> float:
        """``d(θ, σ)`` in the design's units; ``inf`` where ``θ`` cannot be factorised."""
        dev = self.deviance
        try:
            sol = dev.solve(self.standardization.standard_theta(theta, dev.layout))
        except np.linalg.LinAlgError:
            return math.inf
        n_eff = dev.nobs - (dev.n_fixed if dev.reml else 0)
        extra = sol.logdet_rx if dev.reml else 0.0
        sigma_std = sigma / self.standardization.y_scale
        value = (
            sol.logdet_l
            + extra
            + n_eff * math.log(2 * math.pi * sigma_std**2)
            + sol.pwrss / sigma_std**2
        )
        return value + self.standardization.criterion_offset(dev.nobs, dev.reml)

    def vcov_beta(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """``σ² (R_Xᵀ R_X)⁻¹`` at ``(θ, σ)``, in the design's units."""
        dev = self.deviance
        sol = dev.solve(self.standardization.standard_theta(theta, dev.layout))
        return fixed_effects_covariance(
            self.standardization, sol.rx, sigma / self.standardization.y_scale
        )
