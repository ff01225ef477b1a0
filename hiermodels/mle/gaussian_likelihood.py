"""The marginal log-likelihood of a linear mixed model at ``(β, θ, σ)``, nothing profiled.

Full Bayes samples ``β``, ``θ`` and ``σ``; the effects are integrated out
exactly with the same blocked factor and penalised least squares as the
profiled criterion of :mod:`hiermodels.mle.lmm`, in compiled kernels
(:func:`~hiermodels.mle.kernels.gaussian_loglik`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from hiermodels.design.design import Design
from hiermodels.mle import kernels
from hiermodels.mle.blocked import BlockedFactor, ReLayout, trailing_factor
from hiermodels.mle.lmm import SINGULAR_FACTOR, LmmDeviance, profiled_deviance

__all__ = ["GaussianLikelihood", "GaussianPoint"]


@dataclass(frozen=True, eq=False)
class GaussianPoint:
    """The factor and conditional modes of a linear mixed model at one ``(β, θ, σ)``.

    Attributes
    ----------
    value : float
        The log-likelihood, effects integrated out; ``-inf`` where it cannot
        be evaluated.
    factor : BlockedFactor or None
        The factor of ``ΛᵀZᵀZΛ + I`` (``None`` when ``value`` is ``-inf``).
    u_lead, u_rest : numpy.ndarray
        The spherical conditional means of the effects given ``(β, θ, σ)``.
    """

    value: float
    factor: BlockedFactor | None
    u_lead: np.ndarray
    u_rest: np.ndarray


@dataclass(frozen=True, eq=False)
class GaussianLikelihood:
    """The marginal log-likelihood ``log N(y | Xβ, σ²(I + ZΛθΛθᵀZᵀ))`` of any structure.

    The same blocked factor and penalised least squares as the profiled
    criterion (:class:`LmmDeviance`), with nothing profiled: at ``(β, θ, σ)``
    the effects are integrated out exactly, ::

        −2 log p(y | β, θ, σ) = n log(2πσ²) + log|L|² + r²(β, θ) / σ²

    with ``r²(β, θ) = min_u ‖y − Xβ − ZΛu‖² + ‖u‖²``, which is the
    penalised least squares of the response ``y − Xβ`` with no fixed
    effects. The gradient in ``θ`` is the profiled criterion's kernel with
    the residual weighted by ``1/σ²``; the one in ``β`` is
    ``Xᵀ(y − Xβ − ZΛû)/σ²``. With precision weights ``W`` every product
    is weighted (``ΛᵀZᵀWZΛ + I``, ``‖·‖²_W``) and the log-likelihood gains
    ``½ log|W|``, as lme4's ``logLik``.

    Build it with :meth:`of`. ``β`` is best measured from a least-squares
    fit (a residual design): the cross products of ``y − Xβ`` are formed
    from those of ``[X y]``, which then hold residuals, not raw data.

    Attributes
    ----------
    deviance : LmmDeviance
        The cross products and layout.
    """

    deviance: LmmDeviance

    @classmethod
    def of(cls, design: Design) -> GaussianLikelihood:
        """The likelihood of a gaussian ``design``."""
        return cls(profiled_deviance(design, reml=False))

    @property
    def layout(self) -> ReLayout:
        """Random-effects ordering and partition (``θ`` order)."""
        return self.deviance.layout

    @cached_property
    def native(self) -> tuple[tuple, tuple, tuple, tuple, np.ndarray]:
        """``(data, placement, structure, blocks, scalars)``: the arguments of the compiled
        :func:`~hiermodels.mle.kernels.gaussian_loglik` after ``(β, θ, σ)``."""
        dev = self.deviance
        layout = self.layout
        pat = layout.pattern
        cross = dev.cross
        data = (cross.a11, cross.a21, cross.a22, dev.zt_xy_lead, dev.zt_xy_rest, dev.xy_cross)
        placement = layout.placement
        structure = (
            pat.rest_q, pat.row_block, pat.row_term, pat.row_base, pat.pair_block,
            pat.pair_row, pat.pair_ptr, pat.lead_ptr, pat.pp_a, pat.pp_b,
        )  # fmt: skip
        scalars = np.array([float(dev.nobs), SINGULAR_FACTOR])

        def contiguous(arrays: tuple) -> tuple:
            return tuple(
                np.ascontiguousarray(a) if isinstance(a, np.ndarray) else a for a in arrays
            )

        return (
            contiguous(data),
            contiguous(placement),
            contiguous(structure),
            contiguous(layout.gradient_blocks),
            scalars,
        )

    def value_and_gradient(
        self, beta: np.ndarray, theta: np.ndarray, sigma: float
    ) -> tuple[float, np.ndarray, np.ndarray, float]:
        """``(log p, d/dβ, d/dθ, d/dσ)`` at ``(β, θ, σ)``, ``θ`` relative (lme4's).

        ``d/dσ`` holds ``θ`` fixed; ``-inf`` (and zeros) where the factor fails.
        """
        beta = np.ascontiguousarray(beta, dtype=float)
        theta = np.ascontiguousarray(theta, dtype=float)
        d_beta = np.zeros(beta.size)
        d_theta = np.zeros(theta.size)
        value, d_sigma = kernels.gaussian_loglik(
            beta, theta, float(sigma), *self.native, d_beta, d_theta
        )
        return value + 0.5 * self.deviance.log_weights, d_beta, d_theta, d_sigma

    def evaluate(self, beta: np.ndarray, theta: np.ndarray, sigma: float) -> GaussianPoint:
        """The log-likelihood at ``(β, θ, σ)``, with the factor and the conditional modes.

        Parameters
        ----------
        beta : numpy.ndarray
            ``(p,)`` fixed effects.
        theta : numpy.ndarray
            Relative factor entries, lme4's ``θ`` (covariance factor over ``σ``).
        sigma : float
            Residual SD.
        """
        dev = self.deviance
        beta = np.ascontiguousarray(beta, dtype=float)
        theta = np.ascontiguousarray(theta, dtype=float)
        data, placement, structure = self.native[:3]
        prepared = kernels.gaussian_prepare(beta, theta, *data, placement, structure)
        l11, l21, s22, ok = prepared[6:]
        if not ok:
            return _unavailable()
        try:
            l22 = trailing_factor(s22)
        except np.linalg.LinAlgError:
            return _unavailable()
        value, solution = kernels.gaussian_finish(
            float(sigma), float(dev.nobs), prepared, l22, structure
        )
        u1, u2 = solution[4], solution[5]
        if not math.isfinite(value):
            return _unavailable()
        factor = BlockedFactor(l11=l11, l21_pairs=l21, l22=l22, pattern=dev.layout.pattern)
        return GaussianPoint(value + 0.5 * dev.log_weights, factor, u1, u2)


def _unavailable() -> GaussianPoint:
    return GaussianPoint(-math.inf, None, np.zeros((0, 0)), np.zeros(0))
