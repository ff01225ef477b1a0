"""What every density with the effects integrated out shares: the fixed effects' priors.

:class:`FixedEffectsPrior` puts ``beta`` on the sampler's coordinates
(centred when the model has an intercept and slopes) and measures the
likelihood's fixed-effect argument from a least-squares fit, so that no sum
of squares of raw data cancels; :func:`effect_arrays` labels the group
effects drawn after sampling. The densities themselves are
:class:`~hiermodels.bayes.gaussian_density.GaussianMarginalDensity` (gaussian
models, exactly) and :class:`~hiermodels.bayes.laplace_density.LaplaceDensity`
(GLMMs, by the Laplace approximation).
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from hiermodels.bayes.build import centering_transform
from hiermodels.bayes.marginal_graph import LeastSquaresOrigin
from hiermodels.bayes.prior_density import ScalarPrior, scalar_prior
from hiermodels.bayes.priors import Priors
from hiermodels.design.design import Design
from hiermodels.design.factors import GroupTerms
from hiermodels.names import coefficient_prior_name, effects_name, spherical_effects_name, term_dim

__all__ = ["FixedEffectsPrior", "effect_arrays"]


class FixedEffectsPrior:
    """The priors of ``beta`` on the sampler's coordinates, shared by the direct densities.

    When the model has an intercept and slopes, ``beta`` is sampled in
    centred coordinates: the intercept is replaced by its value at the
    predictors' means (the shear of
    :func:`~hiermodels.bayes.build.centering_transform`, unit Jacobian).

    The likelihoods are evaluated on :meth:`residual_design`: the sampler's
    coordinates measured from their least-squares values
    (:class:`~hiermodels.bayes.marginal_graph.LeastSquaresOrigin`). Sums of squares
    of raw data (``y'y − 2β'X'y + β'X'Xβ``) cancel catastrophically when the
    response sits far from zero (``y + 1e12``) or a predictor does
    (a date serial number); sums of squares of residuals and centred
    predictors do not.

    Parameters
    ----------
    design : Design
    priors : Priors

    Attributes
    ----------
    origin : list of float
        The response's mean at the intercept (zeros without one), in the
        sampler's coordinates.
    reference : list of float
        The least-squares fit of the response, less its mean at the
        intercept, in the sampler's coordinates: with the mean, the origin of
        the likelihood's fixed-effect argument.
    """

    def __init__(self, design: Design, priors: Priors) -> None:
        self.coef: tuple[str, ...] = tuple(design.fixed_names)
        self._priors = tuple(
            scalar_prior(coefficient_prior_name(c), priors[coefficient_prior_name(c)])
            for c in self.coef
        )
        transform = centering_transform(design)
        self._index = None if transform is None else transform.index
        self._means: list[float] = [] if transform is None else transform.means.tolist()
        centred = np.asarray(design.X, dtype=float)
        if transform is not None:
            # the constant on the design's rows (ones, or its root rows) carries the means
            centred = centred - (
                design.ones[:, None] * transform.means[None, :]
                if design.has_root_rows
                else transform.means[None, :]
            )
        split = LeastSquaresOrigin.of(design, centred)
        self.origin: list[float] = split.origin.tolist()
        self.reference: list[float] = split.reference.tolist()
        self._centred = centred
        self._split = split

    def residual_design(self, design: Design) -> Design:
        """``design`` with ``X`` in the sampler's coordinates and ``y`` their residual.

        A likelihood of this design at :meth:`offsets` of the sampler's
        coordinates ``v`` equals the original likelihood at ``v``, with the
        same gradient.
        """
        return self._split.residual_design(design, self._centred)

    @property
    def priors(self) -> tuple[ScalarPrior, ...]:
        """Each coefficient's prior, on ``beta`` (not on the sampler's coordinates)."""
        return self._priors

    @property
    def centred(self) -> np.ndarray:
        """The fixed-effects design in the sampler's coordinates ``v``: ``X`` less the
        centring's means (the intercept column as it is), so that ``X_c v = X β``."""
        return self._centred

    @property
    def centre(self) -> int:
        """Position of the intercept that the centring replaces, ``-1`` without centring."""
        return -1 if self._index is None else int(self._index)

    @property
    def means(self) -> list[float]:
        """The predictors' means of the centring (empty without centring)."""
        return list(self._means)

    def offsets(self, v: list[float]) -> list[float]:
        """The likelihood's fixed-effect argument at the sampler's coordinates ``v``."""
        return [(a - c) - b for a, c, b in zip(v, self.origin, self.reference, strict=True)]

    def beta(self, v: list[float]) -> list[float]:
        """``beta`` at the sampler's coordinates ``v``."""
        beta = list(v)
        if self._index is not None:
            beta[self._index] -= sum(m * x for m, x in zip(self._means, v, strict=True))
        return beta

    def unconstrain(self, beta: ArrayLike) -> list[float]:
        """The sampler's coordinates of ``beta``."""
        values = np.asarray(beta, dtype=float)
        if values.shape != (len(self.coef),):
            raise ValueError(f"'beta' needs {len(self.coef)} entries ({', '.join(self.coef)})")
        v = values.tolist()
        if self._index is not None:
            v[self._index] += sum(m * b for m, b in zip(self._means, v, strict=True))
        return v

    def start(self) -> list[float]:
        """The priors' locations, in the sampler's coordinates."""
        return self.unconstrain([prior.start for prior in self._priors])

    def log_prior(self, beta: list[float]) -> tuple[float, list[float]]:
        """Sum of the log prior densities and their derivatives in ``beta``."""
        total = 0.0
        slopes = [0.0] * len(beta)
        for k, prior in enumerate(self._priors):
            _, logp, slopes[k] = prior.evaluate(beta[k])
            total += logp
        return total, slopes

    def pull_back(self, slopes: list[float]) -> list[float]:
        """Derivatives in ``beta`` turned into derivatives in the sampler's coordinates."""
        if self._index is None:
            return list(slopes)
        at_index = slopes[self._index]
        return [g - m * at_index for g, m in zip(slopes, self._means, strict=True)]


def effect_arrays(
    posterior: xr.Dataset, layout: GroupTerms, z: np.ndarray, u: np.ndarray
) -> dict[str, xr.DataArray]:
    """``z_<g>`` and ``u_<g>`` draws of one factor as labelled arrays.

    Parameters
    ----------
    posterior : xarray.Dataset
        Gives the ``chain`` and ``draw`` coordinates.
    layout : GroupTerms
        The factor: its name, levels and terms.
    z, u : numpy.ndarray
        ``(chain, draw, level, term)`` offsets and effects.

    Returns
    -------
    dict of str to xarray.DataArray
        Dims ``(chain, draw, <g>, <g>__term)``.
    """
    g = layout.group
    dims = ("chain", "draw", g, term_dim(g))
    coords = {
        "chain": posterior["chain"].values,
        "draw": posterior["draw"].values,
        g: list(layout.levels),
        term_dim(g): list(layout.terms),
    }
    return {
        spherical_effects_name(g): xr.DataArray(z, dims=dims, coords=coords),
        effects_name(g): xr.DataArray(u, dims=dims, coords=coords),
    }
