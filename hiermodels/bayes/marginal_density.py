"""The marginal posterior density of a one-factor Gaussian model, without a PyMC graph.

For the designs of :func:`~hiermodels.bayes.build.can_marginalize` (gaussian,
one grouping factor, one or two terms) :class:`MarginalDensity` evaluates the
log density of :func:`~hiermodels.bayes.build.build_marginal_model` — the
Woodbury marginal likelihood plus the priors, on the same unconstrained
scale — and its gradient, directly:

* the likelihood, an ``O(levels)`` loop over per-level sufficient statistics,
  is one small numba function with a hand-derived gradient (compiled once per
  machine in well under a second and cached on disk);
* the priors are the plain-Python densities of
  :mod:`hiermodels.bayes.prior_density`.

No PyTensor function is compiled, so a first fit on a new machine costs what
a later one does. The value equals PyMC's ``model.logp()`` of the marginal
graph (checked by the test suite for every prior family), so the posterior
is the same.

Gradient of the likelihood. Per level ``j`` with ``G_j = Z_j' Z_j``,
``h_j = Z_j' (y_j - X_j beta)``, covariance factor ``L`` and ``s = sigma**2``:
``A_j = I + L' G_j L / s``, ``c_j = L' h_j``, ``M_j = A_j^{-1}``,
``w_j = M_j c_j``, and

``l = -1/2 [n log(2 pi s) + sum log|A_j| + (r'r - sum c_j' w_j / s) / s]``

with ``dl/dbeta = X'r / s - sum ZtX_j' L w_j / s**2``,
``dl/dL = -sum G_j L (M_j / s + w_j w_j' / s**3) + sum h_j w_j' / s**2`` and
``dl/ds = -n/(2s) + sum(q - tr M_j)/(2s) + r'r/(2 s**2) - sum(c_j'w_j + w_j'w_j)/(2 s**3)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numba
import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from hiermodels.bayes.build import (
    FactorStatistics,
    LeastSquaresOrigin,
    can_marginalize,
    centering_transform,
)
from hiermodels.bayes.prior_density import ScalarPrior, jittered, lkj_pair_prior, scalar_prior
from hiermodels.bayes.priors import GroupTerms, Priors, group_term_layout
from hiermodels.spec.design import Design

__all__ = ["MarginalDensity", "FixedEffectsPrior", "marginal_loglik", "effect_arrays"]


# error_model="numpy": a zero scale gives inf/nan (caught by the caller), not an exception
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _loglik_kernel(
    beta: np.ndarray,
    chol: np.ndarray,
    sigma: float,
    gram: np.ndarray,
    zty: np.ndarray,
    ztx: np.ndarray,
    xty: np.ndarray,
    xtx: np.ndarray,
    yty: float,
    nobs: float,
    grad: np.ndarray,
) -> float:  # pragma: no cover - compiled; covered through marginal_loglik
    """Marginal log-likelihood; fills ``grad`` with d/d(beta, l00, l10, l11, sigma).

    ``chol = (l00, l10, l11)``; ``gram[:, k]`` holds ``(g00, g01, g11)`` per
    level, ``zty`` is ``(levels, 2)`` and ``ztx`` ``(levels, 2, p)``, the
    second term's entries zero for a one-term model.
    """
    levels, p = ztx.shape[0], ztx.shape[2]
    l00, l10, l11 = chol[0], chol[1], chol[2]
    s2 = sigma * sigma
    s4 = s2 * s2
    s6 = s4 * s2
    logdet = 0.0
    quad = 0.0
    wtw = 0.0
    trace = 0.0
    b00 = 0.0
    b10 = 0.0
    b11 = 0.0
    for k in range(p):
        grad[k] = 0.0
    for j in range(levels):
        g00, g01, g11 = gram[j, 0], gram[j, 1], gram[j, 2]
        h0 = zty[j, 0]
        h1 = zty[j, 1]
        for k in range(p):
            h0 -= ztx[j, 0, k] * beta[k]
            h1 -= ztx[j, 1, k] * beta[k]
        a00 = 1.0 + (l00 * l00 * g00 + 2.0 * l00 * l10 * g01 + l10 * l10 * g11) / s2
        a01 = l11 * (l00 * g01 + l10 * g11) / s2
        a11 = 1.0 + l11 * l11 * g11 / s2
        c0 = l00 * h0 + l10 * h1
        c1 = l11 * h1
        det = a00 * a11 - a01 * a01
        m00 = a11 / det
        m01 = -a01 / det
        m11 = a00 / det
        w0 = m00 * c0 + m01 * c1
        w1 = m01 * c0 + m11 * c1
        logdet += math.log(det)
        quad += c0 * w0 + c1 * w1
        wtw += w0 * w0 + w1 * w1
        trace += m00 + m11
        lw0 = l00 * w0
        lw1 = l10 * w0 + l11 * w1
        for k in range(p):
            grad[k] -= (ztx[j, 0, k] * lw0 + ztx[j, 1, k] * lw1) / s4
        p00 = m00 / s2 + w0 * w0 / s6
        p01 = m01 / s2 + w0 * w1 / s6
        p11 = m11 / s2 + w1 * w1 / s6
        gl00 = g00 * l00 + g01 * l10
        gl01 = g01 * l11
        gl10 = g01 * l00 + g11 * l10
        gl11 = g11 * l11
        b00 += h0 * w0 / s4 - (gl00 * p00 + gl01 * p01)
        b10 += h1 * w0 / s4 - (gl10 * p00 + gl11 * p01)
        b11 += h1 * w1 / s4 - (gl10 * p01 + gl11 * p11)
    rss = yty
    for k in range(p):
        xtr = xty[k]
        for m in range(p):
            xtr -= xtx[k, m] * beta[m]
        grad[k] += xtr / s2
        rss -= beta[k] * (xty[k] + xtr)
    # the padded second term of a one-term model adds exactly 1 to each tr M_j
    dim = 2.0 * levels
    grad[p] = b00
    grad[p + 1] = b10
    grad[p + 2] = b11
    ds = (-nobs + dim - trace + rss / s2 - (quad + wtw) / s4) / (2.0 * s2)
    grad[p + 3] = 2.0 * sigma * ds
    return -0.5 * (nobs * math.log(2.0 * math.pi * s2) + logdet + (rss - quad / s2) / s2)


@dataclass(frozen=True, eq=False)
class _PaddedStatistics:
    """:class:`FactorStatistics` laid out for the kernel, a missing second term as zeros."""

    gram: np.ndarray
    zty: np.ndarray
    ztx: np.ndarray
    xty: np.ndarray
    xtx: np.ndarray
    yty: float
    nobs: float

    @classmethod
    def from_statistics(cls, stats: FactorStatistics) -> _PaddedStatistics:
        levels, q, p = stats.ZtX.shape
        gram = np.zeros((levels, 3))
        zty = np.zeros((levels, 2))
        ztx = np.zeros((levels, 2, p))
        gram[:, 0] = stats.ZtZ[:, 0, 0]
        zty[:, :q] = stats.Zty
        ztx[:, :q, :] = stats.ZtX
        if q == 2:
            gram[:, 1] = stats.ZtZ[:, 0, 1]
            gram[:, 2] = stats.ZtZ[:, 1, 1]
        return cls(
            gram=gram,
            zty=zty,
            ztx=np.ascontiguousarray(ztx),
            xty=np.asarray(stats.Xty, dtype=float),
            xtx=np.ascontiguousarray(stats.XtX, dtype=float),
            yty=float(stats.yty),
            nobs=float(np.sum(stats.n)),
        )


def marginal_loglik(
    stats: FactorStatistics, beta: np.ndarray, chol: tuple[float, float, float], sigma: float
) -> tuple[float, np.ndarray]:
    """``log N(y | X beta, sigma^2 I + Z L L' Z')`` and its gradient, by the compiled kernel.

    Parameters
    ----------
    stats : FactorStatistics
    beta : numpy.ndarray
        ``(p,)`` fixed effects.
    chol : tuple of float
        ``(l00, l10, l11)``, the lower Cholesky factor of the effects'
        covariance (``l10 = l11 = 0`` for one term).
    sigma : float
        Residual standard deviation.

    Returns
    -------
    float
        The log-likelihood.
    numpy.ndarray
        Its gradient with respect to ``(beta, l00, l10, l11, sigma)``.
    """
    padded = _PaddedStatistics.from_statistics(stats)
    grad = np.empty(len(beta) + 4)
    value = _loglik_kernel(
        np.asarray(beta, dtype=float),
        np.asarray(chol, dtype=float),
        float(sigma),
        padded.gram,
        padded.zty,
        padded.ztx,
        padded.xty,
        padded.xtx,
        padded.yty,
        padded.nobs,
        grad,
    )
    return float(value), grad


class FixedEffectsPrior:
    """The priors of ``beta`` on the sampler's coordinates, shared by the direct densities.

    When the model has an intercept and slopes, ``beta`` is sampled in
    centred coordinates: the intercept is replaced by its value at the
    predictors' means (the shear of
    :func:`~hiermodels.bayes.build.centering_transform`, unit Jacobian).

    The likelihoods are evaluated on :meth:`residual_design`: the sampler's
    coordinates measured from their least-squares values
    (:class:`~hiermodels.bayes.build.LeastSquaresOrigin`). Sums of squares
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
        self._priors = tuple(scalar_prior(f"beta__{c}", priors[f"beta__{c}"]) for c in self.coef)
        transform = centering_transform(design)
        self._index = None if transform is None else transform.index
        self._means: list[float] = [] if transform is None else transform.means.tolist()
        centred = np.asarray(design.X, dtype=float)
        if transform is not None:
            centred = centred - transform.means[None, :]
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


class MarginalDensity:
    """Log posterior density (up to its normalising constant) of a marginalised model.

    The unconstrained coordinates are those of PyMC's graph of
    :func:`~hiermodels.bayes.build.build_marginal_model`, in this order:
    ``beta`` (in centred coordinates when the model has an intercept and
    slopes: the intercept is replaced by its value at the predictors' means,
    a shear with unit Jacobian), the log of each SD, the log-odds of
    ``(r + 1) / 2`` for a correlated pair of terms, and ``log sigma``.

    Parameters
    ----------
    design : Design
        With :func:`~hiermodels.bayes.build.can_marginalize` true.
    priors : Priors
        A complete set from :func:`~hiermodels.bayes.priors.resolve_priors`.

    Attributes
    ----------
    ndim : int
        Number of unconstrained coordinates.
    group : str
        The grouping factor.
    terms : tuple of str
        Its random-effect terms.
    correlated : bool
        Whether two terms carry a correlation.
    """

    def __init__(self, design: Design, priors: Priors) -> None:
        if not can_marginalize(design):
            raise ValueError(
                "the marginal density applies only to gaussian models with one grouping "
                "factor and at most two random-effect terms"
            )
        (layout,) = group_term_layout(design)
        self.group: str = layout.group
        self.terms: tuple[str, ...] = layout.terms
        self.levels: tuple[str, ...] = layout.levels
        self.correlated: bool = bool(layout.correlated_spans)
        self.fixed = FixedEffectsPrior(design, priors)
        self.coef: tuple[str, ...] = self.fixed.coef
        self._stats = _PaddedStatistics.from_statistics(
            FactorStatistics.from_design(self.fixed.residual_design(design))
        )
        self._sd_priors = tuple(
            scalar_prior(f"sd_{self.group}__{t}", priors[f"sd_{self.group}__{t}"])
            for t in self.terms
        )
        corr = f"corr_{self.group}"
        self._corr_prior = lkj_pair_prior(f"{corr}__raw", priors[corr]) if self.correlated else None
        self._sigma_prior = scalar_prior("sigma", priors["sigma"])
        self.ndim: int = len(self.coef) + len(self.terms) + int(self.correlated) + 1

    # -- layout ----------------------------------------------------------------------------

    @property
    def output_names(self) -> tuple[str, ...]:
        """Variables returned by :meth:`expand`, named as in the PyMC graph."""
        names = ["beta", *(f"sd_{self.group}__{t}" for t in self.terms)]
        if self.correlated:
            names += [f"corr_{self.group}__raw", f"corr_{self.group}"]
        return (*names, "sigma")

    @property
    def output_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of :attr:`output_names`."""
        q = len(self.terms)
        shapes: list[tuple[int, ...]] = [(len(self.coef),), *[()] * q]
        if self.correlated:
            shapes += [(), (q, q)]
        return (*shapes, ())

    @property
    def output_dims(self) -> dict[str, list[str]]:
        """Named dimensions of the non-scalar outputs."""
        dims = {"beta": ["coef"]}
        if self.correlated:
            g = self.group
            dims[f"corr_{g}"] = [f"{g}__term", f"{g}__term_bis"]
        return dims

    @property
    def coords(self) -> dict[str, list[str]]:
        """Coordinates of :attr:`output_dims`."""
        coords = {"coef": list(self.coef)}
        if self.correlated:
            coords[f"{self.group}__term"] = list(self.terms)
            coords[f"{self.group}__term_bis"] = list(self.terms)
        return coords

    def initial_point(self, seed: int) -> np.ndarray:
        """Each prior's typical value, jittered by uniform(-1, 1) on the unconstrained scale.

        The same rule as PyMC's and nutpie's default initialisation.
        """
        start = self.fixed.start()
        start += [prior.unconstrain(prior.start) for prior in self._sd_priors]
        if self._corr_prior is not None:
            start.append(self._corr_prior.unconstrain(self._corr_prior.start))
        start.append(self._sigma_prior.unconstrain(self._sigma_prior.start))
        return jittered(np.asarray(start), seed)

    def unconstrain(self, values: Mapping[str, ArrayLike]) -> np.ndarray:
        """The unconstrained point of given variable values; the inverse of :meth:`expand`.

        Parameters
        ----------
        values : mapping of str to array_like
            ``beta``, every ``sd_<g>__<t>``, ``sigma`` and, for correlated
            terms, ``corr_<g>`` (the 2x2 matrix or the correlation itself).

        Raises
        ------
        ValueError
            For a missing variable or a value outside its support.
        """
        names = [n for n in self.output_names if not n.endswith("__raw")]
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"values lack {missing}; needed: {', '.join(names)}")
        point = self.fixed.unconstrain(values["beta"])
        for prior in (*self._sd_priors, self._sigma_prior):
            value = float(np.asarray(values[prior.name]))
            if not value > 0:
                raise ValueError(f"{prior.name!r} must be positive, got {value!r}")
        point += [math.log(float(np.asarray(values[p.name]))) for p in self._sd_priors]
        if self._corr_prior is not None:
            corr = np.asarray(values[f"corr_{self.group}"], dtype=float)
            r = float(corr[0, 1]) if corr.ndim == 2 else float(corr)
            if not -1.0 < r < 1.0:
                raise ValueError(f"'corr_{self.group}' must lie strictly inside (-1, 1), got {r}")
            point.append(self._corr_prior.unconstrain((r + 1.0) / 2.0))
        point.append(math.log(float(np.asarray(values["sigma"]))))
        return np.asarray(point)

    # -- density ---------------------------------------------------------------------------

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density and its gradient at the unconstrained point ``x``.

        Parameters
        ----------
        x : numpy.ndarray
            ``(ndim,)`` unconstrained coordinates.

        Returns
        -------
        float
            ``log p(y | theta) + log p(theta) + log |Jacobian|``; ``-inf``
            where the likelihood cannot be evaluated (overflowing scales).
        numpy.ndarray
            The gradient.
        """
        # plain floats and lists: at a handful of parameters numpy's per-call overhead
        # would cost more than the arithmetic
        p, q = len(self.coef), len(self.terms)
        xs = x.tolist()
        beta = self.fixed.beta(xs[:p])
        out = np.empty(self.ndim)
        try:
            total, beta_slopes = self.fixed.log_prior(beta)
            sd0, logp, d0 = self._sd_priors[0].evaluate(xs[p])
            total += logp
            sd1 = d1 = r = half = dr = 0.0
            root = 1.0
            if q == 2:
                sd1, logp, d1 = self._sd_priors[1].evaluate(xs[p + 1])
                total += logp
            if self._corr_prior is not None:
                half, logp, dr = self._corr_prior.evaluate(xs[p + q])
                total += logp
                r = 2.0 * half - 1.0
                root = math.sqrt(max(1.0 - r * r, 0.0))
            sigma, logp, ds = self._sigma_prior.evaluate(xs[-1])
            total += logp
        except (OverflowError, ValueError, ZeroDivisionError):
            # a trajectory far out in the tails (exp overflow, log of 0): zero density
            out[:] = 0.0
            return -math.inf, out
        like = np.empty(p + 4)
        st = self._stats
        value = _loglik_kernel(
            np.array(self.fixed.offsets(xs[:p])), np.array((sd0, sd1 * r, sd1 * root)), sigma,
            st.gram, st.zty, st.ztx, st.xty, st.xtx, st.yty, st.nobs, like,
        )  # fmt: skip
        # a finite sum means every term is finite (an inf or nan would propagate)
        if not math.isfinite(value + float(like.sum())):
            out[:] = 0.0
            return -math.inf, out
        dl = like.tolist()
        slopes = [0.0] * self.ndim
        slopes[:p] = [b + d for b, d in zip(self.fixed.pull_back(beta_slopes), dl[:p], strict=True)]
        d_l00, d_l10, d_l11, d_sigma = dl[p], dl[p + 1], dl[p + 2], dl[p + 3]
        slopes[p] = d0 + d_l00 * sd0  # d/dlog sd = sd * d/dsd
        if q == 2:
            slopes[p + 1] = d1 + (d_l10 * r + d_l11 * root) * sd1
        if self._corr_prior is not None:
            d_r = sd1 * (d_l10 - d_l11 * r / root) if root > 0 else 0.0
            slopes[p + q] = dr + d_r * 2.0 * half * (1.0 - half)  # dr/dv = 2 x (1 - x)
        slopes[-1] = ds + d_sigma * sigma
        out[:] = slopes
        return total + value, out

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The model's variables (:attr:`output_names`) at the unconstrained point ``x``."""
        p, q = len(self.coef), len(self.terms)
        out: dict[str, np.ndarray] = {
            "beta": np.asarray(self.fixed.beta(np.asarray(x[:p], dtype=float).tolist()))
        }
        for k, prior in enumerate(self._sd_priors):
            out[prior.name] = np.asarray(math.exp(float(x[p + k])))
        if self._corr_prior is not None:
            half, _, _ = self._corr_prior(float(x[p + q]))
            r = 2.0 * half - 1.0
            out[f"corr_{self.group}__raw"] = np.asarray(half)
            out[f"corr_{self.group}"] = np.array([[1.0, r], [r, 1.0]])
        out["sigma"] = np.asarray(math.exp(float(x[-1])))
        return out


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
    dims = ("chain", "draw", g, f"{g}__term")
    coords = {
        "chain": posterior["chain"].values,
        "draw": posterior["draw"].values,
        g: list(layout.levels),
        f"{g}__term": list(layout.terms),
    }
    return {
        f"z_{g}": xr.DataArray(z, dims=dims, coords=coords),
        f"u_{g}": xr.DataArray(u, dims=dims, coords=coords),
    }
