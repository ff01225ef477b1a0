"""The joint posterior density of a GLMM, effects as parameters, as one compiled function.

A binomial, Bernoulli or Poisson model cannot have its effects integrated
out exactly, so exact NUTS samples them: the free variables are those of the
PyMC graph of :func:`~hiermodels.bayes.build.build_pymc_model` (non-centred),
in its unconstrained coordinates — the hyperparameters of
:class:`~hiermodels.bayes.hyper_density.HyperParameters` followed by the
offsets ``z_<g>``, level by level, ``u = T z`` per level with ``T`` the
block's absolute covariance factor — or, for the factors
:func:`~hiermodels.bayes.centering.choose_centering` picks (levels the data pin
down), the effects ``u_<g>`` themselves with prior ``N(0, sd)``. :class:`JointDensity` evaluates

    log p(β, θ, z | y) = log prior(β, θ) + Σ log N(z | 0, 1) + Σᵢ log p(yᵢ | ηᵢ),
    η = offset + Xβ + Σ_blocks Z u

and its gradient in one compiled call
(:func:`joint_log_density`), which nutpie calls as a native function
(:mod:`hiermodels.bayes.native`): no PyTensor graph is compiled, and the
function is the same for every model.

The log density equals the graph's, constants included (the test suite
checks it at random points); the fixed effects are sampled in the graph's
centred coordinates, so the predictors enter centred.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import xarray as xr
from numba import njit
from scipy import special

from hiermodels.bayes.centering import choose_centering
from hiermodels.bayes.hyper_density import HyperParameters, hyper_point, hyper_pull_back
from hiermodels.bayes.integrated import IntegratedDensity
from hiermodels.bayes.marginal_density import effect_arrays
from hiermodels.bayes.prior_density import jittered, log_ndtr
from hiermodels.bayes.priors import Priors
from hiermodels.design.design import Design
from hiermodels.mle.blocked import ReLayout
from hiermodels.mle.response import log_binomial_coefficient

__all__ = ["JointDensity", "joint_effects", "joint_log_density", "supports_joint_density"]

# response models of the compiled likelihood
BINOMIAL_LOGIT, BINOMIAL_PROBIT, POISSON_LOG = range(3)
_MODELS = {
    ("bernoulli", "logit"): BINOMIAL_LOGIT,
    ("binomial", "logit"): BINOMIAL_LOGIT,
    ("bernoulli", "probit"): BINOMIAL_PROBIT,
    ("binomial", "probit"): BINOMIAL_PROBIT,
    ("poisson", "log"): POISSON_LOG,
}
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def supports_joint_density(design: Design) -> bool:
    """Whether :class:`JointDensity` evaluates ``design``: a binomial, Bernoulli (logit or
    probit) or Poisson (log) model with at least one random-effect term."""
    return (design.family.name, design.family.link) in _MODELS and bool(design.blocks)


@njit(cache=True, nogil=True, error_model="numpy")
def _response(model: int, y: float, n: float, eta: float) -> tuple[float, float]:
    """``(log p(y | η) less its constant, d/dη)``."""
    if model == BINOMIAL_LOGIT:
        # one exponential for both log(1 + e^η) and the probability, without overflow
        e = math.exp(-abs(eta))
        p = 1.0 / (1.0 + e) if eta >= 0.0 else e / (1.0 + e)
        return y * eta - n * (max(eta, 0.0) + math.log1p(e)), y - n * p
    if model == BINOMIAL_PROBIT:
        log_p, log_q = log_ndtr(eta), log_ndtr(-eta)
        log_phi = -0.5 * eta * eta - _HALF_LOG_2PI
        return (
            y * log_p + (n - y) * log_q,
            y * math.exp(log_phi - log_p) - (n - y) * math.exp(log_phi - log_q),
        )
    mu = math.exp(eta)
    return y * eta - mu, y - mu


@njit(cache=True, nogil=True)
def _block_span(
    b: int, col_start: np.ndarray, z_start: np.ndarray, n_hyper: int
) -> tuple[int, int, int]:
    """Block ``b``'s terms, first effect (counted from the offsets' start) and levels."""
    q = col_start[b + 1] - col_start[b]
    return q, z_start[b] - n_hyper, (z_start[b + 1] - z_start[b]) // q


@njit(cache=True, nogil=True, error_model="numpy")
def joint_log_density(
    x: np.ndarray, hyper: tuple, data: tuple, scalars: np.ndarray, gradient: np.ndarray
) -> float:
    """Log posterior density at ``x`` (constants included), its gradient into ``gradient``.

    ``hyper`` is :attr:`HyperParameters.tables`; ``data`` and ``scalars``
    are :attr:`JointDensity.native`'s. Returns ``-inf`` where the density
    cannot be evaluated.
    """
    centred, y, trials, offset, z_cols, codes, col_start, theta_start, z_start, centred_block = data
    model, n_hyper, constant = int(scalars[0]), int(scalars[1]), scalars[2]
    p = centred.shape[1]
    n = y.size
    n_theta = hyper[18][2]
    theta = np.empty(n_theta)
    hyper_x = x[:n_hyper]
    hyper_gradient = np.zeros(n_hyper)
    log_prior, _ = hyper_point(hyper_x, hyper, theta, hyper_gradient)
    if not np.isfinite(log_prior):
        return -np.inf
    total = log_prior + constant
    for i in range(n_hyper, x.size):
        total -= 0.5 * x[i] * x[i]
        gradient[i] = -x[i]
    # u = T z per level, every block; a centred block's coordinates are u itself
    n_blocks = codes.shape[0]
    effects = np.zeros(x.size - n_hyper)
    for b in range(n_blocks):
        q, at, levels = _block_span(b, col_start, z_start, n_hyper)
        if centred_block[b]:
            sd = theta[theta_start[b]]
            for level in range(levels):
                u = x[z_start[b] + level]
                effects[at + level] = u
                # N(u | 0, sd) less N(u | 0, 1), which the loop above counted
                total += 0.5 * u * u - 0.5 * (u / sd) ** 2 - np.log(sd)
                gradient[z_start[b] + level] = -u / (sd * sd)
            continue
        for level in range(levels):
            e = theta_start[b]
            for col in range(q):
                for row in range(col, q):
                    effects[at + level * q + row] += theta[e] * x[z_start[b] + level * q + col]
                    e += 1
    # η and the response's slopes r = d log p / dη
    slopes = np.empty(n)
    for i in range(n):
        eta = offset[i]
        for k in range(p):
            eta += centred[i, k] * x[k]
        for b in range(n_blocks):
            q = col_start[b + 1] - col_start[b]
            at = z_start[b] - n_hyper + codes[b, i] * q
            for t in range(q):
                eta += z_cols[i, col_start[b] + t] * effects[at + t]
        value, slope = _response(model, y[i], trials[i], eta)
        total += value
        slopes[i] = slope
    if not np.isfinite(total):
        return -np.inf
    d_beta = np.zeros(p)
    pulled = np.zeros(x.size - n_hyper)  # Σ over a level's rows of r Z: d/du
    for i in range(n):
        r = slopes[i]
        for k in range(p):
            d_beta[k] += r * centred[i, k]
        for b in range(n_blocks):
            q = col_start[b + 1] - col_start[b]
            at = z_start[b] - n_hyper + codes[b, i] * q
            for t in range(q):
                pulled[at + t] += r * z_cols[i, col_start[b] + t]
    d_theta = np.zeros(n_theta)
    for b in range(n_blocks):
        q, at, levels = _block_span(b, col_start, z_start, n_hyper)
        if centred_block[b]:
            sd = theta[theta_start[b]]
            for level in range(levels):
                u = x[z_start[b] + level]
                gradient[z_start[b] + level] += pulled[at + level]
                d_theta[theta_start[b]] += u * u / (sd * sd * sd) - 1.0 / sd
            continue
        for level in range(levels):
            e = theta_start[b]
            for col in range(q):
                z_value = x[z_start[b] + level * q + col]
                for row in range(col, q):
                    g = pulled[at + level * q + row]
                    d_theta[e] += g * z_value
                    gradient[z_start[b] + level * q + col] += theta[e] * g
                    e += 1
    hyper_pull_back(hyper_x, hyper, 1.0, d_beta, d_theta, 0.0, hyper_gradient)
    for i in range(n_hyper):
        gradient[i] = hyper_gradient[i]
    return total


class JointDensity(IntegratedDensity):
    """Log posterior density of a binomial, Bernoulli or Poisson GLMM, effects as parameters.

    The coordinates are those of the PyMC graph of
    :func:`~hiermodels.bayes.build.build_pymc_model` (non-centred): the
    hyperparameters (:attr:`hyper`), then ``z_<g>`` of every factor, level
    by level.

    Parameters
    ----------
    design : Design
        See :func:`supports_joint_density`.
    priors : Priors
        A complete set from :func:`~hiermodels.bayes.priors.resolve_priors`.
    centered : mapping of str to bool, optional
        Grouping factors whose effects are sampled centred (``u_<g>`` itself,
        prior ``N(0, sd)``; factors of one intercept term only), as
        ``build_pymc_model(centered=...)``; by default every factor
        :func:`~hiermodels.bayes.centering.choose_centering` picks.
    """

    def __init__(
        self, design: Design, priors: Priors, centered: Mapping[str, bool] | None = None
    ) -> None:
        if not supports_joint_density(design):
            raise ValueError(
                f"JointDensity evaluates binomial, Bernoulli and Poisson models with random "
                f"effects, not a {design.family.name} ({design.family.link}) model"
            )
        self.design = design
        self.layout = ReLayout.of(design)
        self.hyper = HyperParameters(design, priors, self.layout, with_sigma=False)
        self.n_hyper = self.hyper.ndim
        theta_of = {i: k for k, i in enumerate(self.layout.order)}
        sizes = [block.n_levels * block.n_terms for block in design.blocks]
        self._z_start = self.n_hyper + np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        fixed = self.hyper.fixed
        y = np.asarray(design.y, dtype=float)
        trials = (
            np.ones_like(y) if design.trials is None else np.asarray(design.trials, dtype=float)
        )
        offset = np.zeros_like(y) if design.offset is None else np.asarray(design.offset, float)
        model = _MODELS[(design.family.name, design.family.link)]
        if model == POISSON_LOG:
            constant = -float(np.sum(special.gammaln(y + 1.0)))
        else:
            constant = float(np.sum(log_binomial_coefficient(trials, y)))
        constant -= _HALF_LOG_2PI * float(self._z_start[-1] - self.n_hyper)
        columns = [np.asarray(block.X, dtype=float) for block in design.blocks]
        col_start = np.concatenate([[0], np.cumsum([c.shape[1] for c in columns])])
        self._data: tuple[np.ndarray, ...] = (
            np.ascontiguousarray(fixed.centred, dtype=float),
            y,
            trials,
            offset,
            np.ascontiguousarray(np.hstack(columns)),
            np.ascontiguousarray(np.vstack([block.codes for block in design.blocks]), np.int64),
            col_start.astype(np.int64),
            np.array(
                [self.layout.theta.block_slice(theta_of[i]).start for i in range(len(sizes))],
                dtype=np.int64,
            ),
            self._z_start,
        )
        self._scalars = np.array([float(model), float(self.n_hyper), constant])
        self.centered = choose_centering(design) if centered is None else dict(centered)
        for block in design.blocks:
            if self.centered.get(block.group, False) and not (
                block.n_terms == 1 and np.all(np.asarray(block.X) == 1.0)
            ):
                raise ValueError(
                    f"factor {block.group!r} has terms other than one intercept: "
                    "it cannot be centred"
                )
        self._data = (
            *self._data,
            np.array([self.centered.get(b.group, False) for b in design.blocks], dtype=np.int64),
        )

    @property
    def ndim(self) -> int:
        """Number of unconstrained coordinates: hyperparameters and offsets."""
        return int(self._z_start[-1])

    @property
    def native(self) -> tuple:
        """``(hyper tables, data, scalars)``: what :func:`joint_log_density` takes after
        the point."""
        return self.hyper.tables, self._data, self._scalars

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density and its gradient at the unconstrained point ``x``."""
        gradient = np.zeros(self.ndim)
        value = joint_log_density(np.ascontiguousarray(x, dtype=float), *self.native, gradient)
        if not math.isfinite(value):
            return -math.inf, np.zeros(self.ndim)
        return value, gradient

    def initial_point(self, seed: int) -> np.ndarray:
        """The hyperparameters' start and offsets at 0, jittered by uniform(-1, 1)."""
        start = np.empty(self.ndim)
        start[: self.n_hyper] = self.hyper.initial_point(seed)
        start[self.n_hyper :] = jittered(np.zeros(self.ndim - self.n_hyper), seed + 1)
        return start

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The hyperparameters' variables at ``x`` (the offsets come from
        :meth:`effects`)."""
        return self.hyper.expand(np.asarray(x)[: self.n_hyper])

    def effects(self, points: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per block of the design, ``(z, u)`` over the leading dimensions of ``points``."""
        points = np.asarray(points, dtype=float)
        lead = points.shape[:-1]
        theta = np.empty((*lead, self.hyper.theta_length))
        flat_points = points.reshape(-1, points.shape[-1])
        flat_theta = theta.reshape(-1, self.hyper.theta_length)
        slopes = np.empty(self.n_hyper)
        for d in range(flat_points.shape[0]):
            hyper_point(
                np.ascontiguousarray(flat_points[d, : self.n_hyper]), self.hyper.tables,
                flat_theta[d], slopes,
            )  # fmt: skip
        out = []
        theta_start = self._data[7]
        for b, block in enumerate(self.design.blocks):
            q = block.n_terms
            z = points[..., self._z_start[b] : self._z_start[b + 1]].reshape(
                *lead, block.n_levels, q
            )
            factor = np.zeros((*lead, q, q))
            e = int(theta_start[b])
            for col in range(q):
                for row in range(col, q):
                    factor[..., row, col] = theta[..., e]
                    e += 1
            if self.centered.get(block.group, False):
                # the coordinates are u; z = u / sd
                out.append((z / factor[..., 0, 0][..., None, None], z))
            else:
                out.append((z, np.einsum("...lt,...st->...ls", z, factor)))
        return out


def joint_effects(
    posterior: xr.Dataset, design: Design, density: JointDensity, points: np.ndarray
) -> dict[str, xr.DataArray]:
    """``z_<g>`` and ``u_<g>`` of every factor from the sampled points ``(chain, draw, ndim)``.

    Returns
    -------
    dict of str to xarray.DataArray
        Dims ``(chain, draw, <g>, <g>__term)``, as in the PyMC graph.
    """
    blocks = density.effects(points)
    out: dict[str, xr.DataArray] = {}
    for group in design.factors:
        parts = [
            pair
            for pair, block in zip(blocks, design.blocks, strict=True)
            if block.group == group.group
        ]
        z = np.concatenate([z for z, _ in parts], axis=-1)
        u = np.concatenate([u for _, u in parts], axis=-1)
        out.update(effect_arrays(posterior, group, z, u))
    return out
