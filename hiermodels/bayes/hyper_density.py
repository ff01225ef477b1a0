"""The hyperparameters of a mixed model on the sampler's scale, shared by the direct densities.

A density that integrates the random effects out (exactly for gaussian
models, :mod:`hiermodels.bayes.gaussian_density`; by the Laplace
approximation for GLMMs, :mod:`hiermodels.bayes.laplace_density`) samples
the same free variables as the PyMC graph of
:func:`~hiermodels.bayes.build.build_pymc_model` less the offsets ``z_<g>``,
in the same unconstrained coordinates and order:

* ``beta``, in centred coordinates when the model has an intercept and
  slopes (:class:`~hiermodels.bayes.marginal_density.FixedEffectsPrior`);
* per grouping factor, the log of each term's SD, then per block of two or
  more terms its correlation: for two terms the log-odds of ``(r + 1) / 2``
  (``Beta(eta, eta)``), for more PyMC's ``LKJCorr`` Cholesky factor in its
  ``CholeskyCorrTransform`` coordinates
  (:class:`~hiermodels.bayes.lkj_density.LkjCholeskyPrior`);
* ``log sigma`` for gaussian models.

:class:`HyperParameters` maps a point to the absolute covariance factor of
every random-effect block, in the ``θ`` order of the MLE engine's
:class:`~hiermodels.mle.blocked.ReLayout` (the block's covariance is
``T Tᵀ``), evaluates the log prior with its Jacobian, and pulls the
likelihood's gradient in ``(β, θ, σ)`` back to the sampler's coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numba import njit
from numpy.typing import ArrayLike

from hiermodels._lazy import moved_names
from hiermodels.bayes import lkj_density
from hiermodels.bayes.lkj_density import lkj_cholesky, lkj_pull_back
from hiermodels.bayes.prior_density import (
    ScalarPrior,
    jittered,
    lkj_pair_prior,
    scalar_log_density,
    scalar_prior,
)
from hiermodels.bayes.priors import Priors
from hiermodels.design.design import Design
from hiermodels.mle.blocked import ReLayout
from hiermodels.names import (
    correlation_factor_name,
    correlation_name,
    sd_name,
    term_dim,
    term_pair_dim,
)

if TYPE_CHECKING:
    from hiermodels.bayes.marginal_density import FixedEffectsPrior

__all__ = [
    "HyperParameters",
    "HyperPoint",
]

#: Names that moved out of this module, and the module each moved to: the effect
#: draws' to :mod:`hiermodels.bayes.integrated`, the LKJ prior's to
#: :mod:`hiermodels.bayes.lkj_density`.
_MOVED: dict[str, tuple[str, str]] = {
    "IntegratedDensity": ("hiermodels.bayes.integrated", "IntegratedDensity"),
    "integrated_effects": ("hiermodels.bayes.integrated", "integrated_effects"),
    "store_effect_draw": ("hiermodels.bayes.integrated", "store_effect_draw"),
    "LkjCholeskyPrior": ("hiermodels.bayes.lkj_density", "LkjCholeskyPrior"),
}


__getattr__ = moved_names(__name__, _MOVED)


# kinds of random-effect block, as the compiled functions number them
ONE_TERM, PAIR, LKJ, UNCORRELATED = range(4)


@njit(cache=True, nogil=True, error_model="numpy")
def _prior_at(tables: tuple, row: int, v: float) -> tuple[float, float, float]:
    kinds, transforms, params = tables[2], tables[3], tables[4]
    return scalar_log_density(
        kinds[row], transforms[row], params[row, 0], params[row, 1], params[row, 2],
        params[row, 3], v,
    )  # fmt: skip


@njit(cache=True, nogil=True, error_model="numpy")
def hyper_point(
    x: np.ndarray, tables: tuple, theta: np.ndarray, slopes: np.ndarray
) -> tuple[float, float]:
    """The absolute factors ``θ`` at ``x``, with the log prior and its gradient ``slopes``.

    ``tables`` are :attr:`HyperParameters.tables`. Returns ``(log prior,
    sigma)``; the log prior is not finite where a prior cannot be evaluated.
    """
    centre, means, _, _, _, coord_prior = tables[:6]
    block_q, block_kind, block_theta, block_sd_at, block_corr_at, block_lkj = tables[6:12]
    lkj_const, lkj_power, lkj_ptr, lkj_rows, lkj_cols, lkj_index, sizes = tables[12:19]
    p, with_sigma = sizes[0], sizes[1]
    for i in range(slopes.size):
        slopes[i] = 0.0
    shift = 0.0
    if centre[0] >= 0:
        for k in range(p):
            shift += means[k] * x[k]
    total = 0.0
    for k in range(p):
        beta_k = x[k] - shift if k == centre[0] else x[k]
        _, logp, slope = _prior_at(tables, coord_prior[k], beta_k)
        total += logp
        slopes[k] += slope
        if centre[0] >= 0 and k == centre[0]:
            # beta[centre] = x[centre] − Σ means x: the slope reaches every coordinate
            for j in range(p):
                slopes[j] -= means[j] * slope
    qmax = block_sd_at.shape[1]
    sd = np.empty(qmax)
    chol = np.empty((qmax, qmax))
    for b in range(block_q.size):
        q = block_q[b]
        start = block_theta[b]
        for a in range(q):
            at = block_sd_at[b, a]
            sd[a], logp, slopes[at] = _prior_at(tables, coord_prior[at], x[at])
            total += logp
        kind = block_kind[b]
        if kind == ONE_TERM:
            theta[start] = sd[0]
            continue
        if kind == PAIR:
            at = block_corr_at[b]
            half, logp, slopes[at] = _prior_at(tables, coord_prior[at], x[at])
            total += logp
            r = 2.0 * half - 1.0
            root = np.sqrt(max(1.0 - r * r, 0.0))
            theta[start] = sd[0]
            theta[start + 1] = sd[1] * r
            theta[start + 2] = sd[1] * root
            continue
        block_chol = chol[:q, :q]
        if kind == LKJ:
            k = block_lkj[b]
            a0, a1 = lkj_ptr[k], lkj_ptr[k + 1]
            total += lkj_cholesky(
                x, block_corr_at[b], q, lkj_const[k], lkj_power[k], lkj_rows[a0:a1],
                lkj_cols[a0:a1], lkj_index[a0:a1], slopes, block_chol,
            )  # fmt: skip
        else:
            for i in range(q):
                for j in range(q):
                    block_chol[i, j] = 1.0 if i == j else 0.0
        e = start
        for col in range(q):
            for row in range(col, q):
                theta[e] = sd[row] * block_chol[row, col]
                e += 1
    sigma = 1.0
    if with_sigma:
        last = x.size - 1
        sigma, logp, slopes[last] = _prior_at(tables, coord_prior[last], x[last])
        total += logp
    if not (np.isfinite(sigma) and sigma > 0.0):
        return -np.inf, 1.0
    for e in range(theta.size):
        if not np.isfinite(theta[e]):
            return -np.inf, sigma
    return total, sigma


@njit(cache=True, nogil=True, error_model="numpy")
def hyper_pull_back(
    x: np.ndarray,
    tables: tuple,
    sigma: float,
    d_beta: np.ndarray,
    d_theta: np.ndarray,
    d_sigma: float,
    out: np.ndarray,
) -> None:
    """Add to ``out`` the gradient in ``x`` of a likelihood with gradient ``(d_beta, d_theta,
    d_sigma)`` in ``(β offsets, absolute θ, σ)``."""
    block_q, block_kind, block_theta, block_sd_at, block_corr_at, block_lkj = tables[6:12]
    lkj_ptr, lkj_rows, lkj_cols, lkj_index, sizes = tables[14:19]
    for k in range(d_beta.size):
        out[k] += d_beta[k]
    qmax = block_sd_at.shape[1]
    sd = np.empty(qmax)
    g = np.zeros((qmax, qmax))
    chol = np.empty((qmax, qmax))
    slope_sink = np.zeros(x.size)
    for b in range(block_q.size):
        q = block_q[b]
        start = block_theta[b]
        for a in range(q):
            sd[a] = np.exp(x[block_sd_at[b, a]])
        kind = block_kind[b]
        if kind == ONE_TERM:
            out[block_sd_at[b, 0]] += sd[0] * d_theta[start]  # d/dlog sd = sd d/dsd
            continue
        if kind == PAIR:
            v = x[block_corr_at[b]]
            half = 1.0 / (1.0 + np.exp(-v)) if v >= 0 else np.exp(v) / (1.0 + np.exp(v))
            r = 2.0 * half - 1.0
            root = np.sqrt(max(1.0 - r * r, 0.0))
            g00, g10, g11 = d_theta[start], d_theta[start + 1], d_theta[start + 2]
            out[block_sd_at[b, 0]] += sd[0] * g00
            out[block_sd_at[b, 1]] += sd[1] * (g10 * r + g11 * root)
            d_r = sd[1] * (g10 - g11 * r / root) if root > 0 else 0.0
            out[block_corr_at[b]] += d_r * 2.0 * half * (1.0 - half)
            continue
        block_chol = chol[:q, :q]
        block_g = g[:q, :q]
        for i in range(q):
            for j in range(q):
                block_g[i, j] = 0.0
        e = start
        for col in range(q):
            for row in range(col, q):
                block_g[row, col] = d_theta[e]
                e += 1
        if kind == LKJ:
            k = block_lkj[b]
            a0, a1 = lkj_ptr[k], lkj_ptr[k + 1]
            lkj_cholesky(
                x, block_corr_at[b], q, 0.0, 0.0, lkj_rows[a0:a1], lkj_cols[a0:a1],
                lkj_index[a0:a1], slope_sink, block_chol,
            )  # fmt: skip
        else:
            for i in range(q):
                for j in range(q):
                    block_chol[i, j] = 1.0 if i == j else 0.0
        for a in range(q):
            d_sd = 0.0
            for c in range(q):
                d_sd += block_g[a, c] * block_chol[a, c]
            out[block_sd_at[b, a]] += sd[a] * d_sd
        if kind == LKJ:
            for a in range(q):
                for c in range(q):
                    block_g[a, c] *= sd[a]
            k = block_lkj[b]
            a0, a1 = lkj_ptr[k], lkj_ptr[k + 1]
            lkj_pull_back(
                x, block_corr_at[b], q, lkj_rows[a0:a1], lkj_cols[a0:a1], lkj_index[a0:a1],
                block_g, out,
            )  # fmt: skip
    if sizes[1]:
        out[x.size - 1] += sigma * d_sigma


@dataclass(frozen=True, eq=False)
class _Block:
    """One random-effect block as the sampler sees it.

    ``sd_at`` are the coordinates of its terms' log SDs, ``corr_at`` those of
    its correlation (empty for one term), ``theta`` its slice of ``θ``.
    """

    q: int
    sd_priors: tuple[ScalarPrior, ...]
    sd_at: tuple[int, ...]
    pair: ScalarPrior | None
    lkj: lkj_density.LkjCholeskyPrior | None
    corr_at: slice
    theta: slice


@dataclass(slots=True, eq=False)
class HyperPoint:
    """The hyperparameters at one unconstrained point.

    Attributes
    ----------
    coords : numpy.ndarray
        The unconstrained point.
    beta_coords : numpy.ndarray
        ``beta`` in the sampler's coordinates (``coords[:p]``).
    theta : numpy.ndarray
        Absolute covariance factor entries, ``θ`` order.
    sigma : float
        Residual SD (gaussian), else 1.
    log_prior : float
        Log prior density plus log Jacobian.
    slopes : numpy.ndarray
        Its gradient.
    """

    coords: np.ndarray
    beta_coords: np.ndarray
    theta: np.ndarray
    sigma: float
    log_prior: float
    slopes: np.ndarray


class HyperParameters:
    """Priors, transforms and the covariance factors of a model's hyperparameters.

    Parameters
    ----------
    design : Design
    priors : Priors
        A complete set from :func:`~hiermodels.bayes.priors.resolve_priors`.
    layout : ReLayout
        The MLE engine's layout of ``design``: gives the ``θ`` order.
    with_sigma : bool
        Whether the residual SD is a coordinate (gaussian models).
    fixed : FixedEffectsPrior, optional
        The fixed effects' priors, when the caller has made them already.

    Attributes
    ----------
    ndim : int
        Number of unconstrained coordinates.
    fixed : FixedEffectsPrior
        The fixed effects' priors and coordinates.
    """

    def __init__(
        self,
        design: Design,
        priors: Priors,
        layout: ReLayout,
        *,
        with_sigma: bool,
        fixed: FixedEffectsPrior | None = None,
    ) -> None:
        from hiermodels.bayes.marginal_density import FixedEffectsPrior

        self.fixed = FixedEffectsPrior(design, priors) if fixed is None else fixed
        self.n_fixed = len(self.fixed.coef)
        self.groups = design.factors
        position = self.n_fixed
        self._group_slots: list[tuple[str, tuple[ScalarPrior, ...], int, list]] = []
        for group in self.groups:
            g = group.group
            sd_priors = tuple(
                scalar_prior(sd_name(g, t), priors[sd_name(g, t)]) for t in group.terms
            )
            sd_start = position
            position += len(group.terms)
            corr_spans = group.correlated_spans
            corr_parts = []
            for k, (a, b) in enumerate(corr_spans):
                raw = correlation_factor_name(g, None if len(corr_spans) == 1 else k)
                if b - a == 2:
                    part: ScalarPrior | lkj_density.LkjCholeskyPrior = lkj_pair_prior(
                        raw, priors[correlation_name(g)]
                    )
                    size = 1
                else:
                    part = lkj_density.LkjCholeskyPrior(raw, priors[correlation_name(g)], b - a)
                    size = part.size
                corr_parts.append(((a, b), part, slice(position, position + size)))
                position += size
            self._group_slots.append((g, sd_priors, sd_start, corr_parts))
        self.with_sigma = with_sigma
        self._sigma_prior = scalar_prior("sigma", priors["sigma"]) if with_sigma else None
        self.ndim: int = position + int(with_sigma)
        self._blocks = self._place_blocks(design, layout)
        self.theta_length = layout.theta.length
        self.tables = self._pack()

    def _place_blocks(self, design: Design, layout: ReLayout) -> tuple[_Block, ...]:
        """Each block of ``design`` in ``θ`` order with its coordinates."""
        slots = {
            g: (sd_priors, sd_start, corr) for g, sd_priors, sd_start, corr in self._group_slots
        }
        span_of: dict[int, tuple[int, int]] = {}
        seen: dict[str, int] = {}
        for i, block in enumerate(design.blocks):
            start = seen.get(block.group, 0)
            span_of[i] = (start, start + block.n_terms)
            seen[block.group] = start + block.n_terms
        out = []
        for k, i in enumerate(layout.order):
            block = design.blocks[i]
            sd_priors, sd_start, corr = slots[block.group]
            a, b = span_of[i]
            pair = lkj = None
            corr_at = slice(0, 0)
            for span, part, where in corr:
                if span == (a, b):
                    corr_at = where
                    if isinstance(part, lkj_density.LkjCholeskyPrior):
                        lkj = part
                    else:
                        pair = part
            out.append(
                _Block(
                    q=block.n_terms,
                    sd_priors=sd_priors[a:b],
                    sd_at=tuple(range(sd_start + a, sd_start + b)),
                    pair=pair,
                    lkj=lkj,
                    corr_at=corr_at,
                    theta=layout.theta.block_slice(k),
                )
            )
        return tuple(out)

    # -- evaluation ------------------------------------------------------------------------

    def _pack(self) -> tuple[np.ndarray, ...]:
        """The priors and blocks as arrays, for :func:`hyper_point` and :func:`hyper_pull_back`.

        ``(centre, means, kinds, transforms, params, coord_prior, block_q,
        block_kind, block_theta, block_sd_at, block_corr_at, block_lkj,
        lkj_const, lkj_power, lkj_ptr, lkj_rows, lkj_cols, lkj_index,
        sizes)``: the fixed effects' centring (the intercept's position or
        ``-1``, the predictors' means), every scalar prior (its density kind,
        transform and parameters) and the row of the prior of each
        coordinate (of ``beta`` for the first ``p``; ``-1`` for LKJ
        coordinates), each block in ``θ`` order (terms, kind, first ``θ``
        entry, its SD coordinates, its correlation's first coordinate, its
        LKJ prior's index), each LKJ prior's constant, power and spiral fill
        (concatenated, ``lkj_ptr`` delimiting them), and ``(p, with_sigma,
        len(θ))``.
        """
        rows: list[ScalarPrior] = []
        coord_prior = np.full(self.ndim, -1, dtype=np.int64)

        def place(at: int, prior: ScalarPrior) -> None:
            coord_prior[at] = len(rows)
            rows.append(prior)

        for k, prior in enumerate(self.fixed.priors):
            place(k, prior)
        for _, sd_priors, sd_start, corr in self._group_slots:
            for t, prior in enumerate(sd_priors):
                place(sd_start + t, prior)
            for _, part, where in corr:
                if isinstance(part, ScalarPrior):
                    place(where.start, part)
        if self._sigma_prior is not None:
            place(self.ndim - 1, self._sigma_prior)
        kinds = np.array([prior.params[0] for prior in rows], dtype=np.int64)
        transforms = np.array([prior.transform_code for prior in rows], dtype=np.int64)
        params = np.array([prior.params[1:] for prior in rows], dtype=float).reshape(-1, 4)
        nb = len(self._blocks)
        qmax = max((block.q for block in self._blocks), default=1)
        block_q = np.array([block.q for block in self._blocks], dtype=np.int64)
        block_kind = np.empty(nb, dtype=np.int64)
        block_sd_at = np.zeros((nb, qmax), dtype=np.int64)
        block_lkj = np.full(nb, -1, dtype=np.int64)
        lkjs: list[lkj_density.LkjCholeskyPrior] = []
        for b, block in enumerate(self._blocks):
            block_sd_at[b, : block.q] = block.sd_at
            if block.q == 1:
                block_kind[b] = ONE_TERM
            elif block.pair is not None:
                block_kind[b] = PAIR
            elif block.lkj is not None:
                block_kind[b] = LKJ
                block_lkj[b] = len(lkjs)
                lkjs.append(block.lkj)
            else:
                block_kind[b] = UNCORRELATED
        fills = [lkj.tables for lkj in lkjs]
        lkj_ptr = np.concatenate([[0], np.cumsum([lkj.size for lkj in lkjs], dtype=np.int64)])

        def joined(k: int) -> np.ndarray:
            return np.concatenate([fill[k] for fill in fills] + [np.zeros(0, dtype=np.int64)])

        centre = self.fixed.centre
        means = np.zeros(self.n_fixed) if centre < 0 else np.asarray(self.fixed.means, dtype=float)
        return (
            np.array([centre], dtype=np.int64),
            means,
            kinds,
            transforms,
            np.ascontiguousarray(params),
            coord_prior,
            block_q,
            block_kind,
            np.array([block.theta.start for block in self._blocks], dtype=np.int64),
            block_sd_at,
            np.array([block.corr_at.start for block in self._blocks], dtype=np.int64),
            block_lkj,
            np.array([lkj.constant for lkj in lkjs], dtype=float),
            np.array([lkj.power for lkj in lkjs], dtype=float),
            lkj_ptr.astype(np.int64),
            joined(0).astype(np.int64),
            joined(1).astype(np.int64),
            joined(2).astype(np.int64),
            np.array([self.n_fixed, int(self.with_sigma), self.theta_length], dtype=np.int64),
        )

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self, x: np.ndarray) -> HyperPoint | None:
        """The hyperparameters at ``x``; ``None`` where a prior cannot be evaluated."""
        xs = np.ascontiguousarray(x, dtype=float)
        theta = np.empty(self.theta_length)
        slopes = np.empty(self.ndim)
        log_prior, sigma = hyper_point(xs, self.tables, theta, slopes)
        if not math.isfinite(log_prior):
            return None
        return HyperPoint(xs, xs[: self.n_fixed], theta, sigma, log_prior, slopes)

    def gradient(
        self, point: HyperPoint, d_beta: np.ndarray, d_theta: np.ndarray, d_sigma: float = 0.0
    ) -> np.ndarray:
        """The log posterior's gradient at ``point``, the likelihood's given in ``(β, θ, σ)``.

        ``d_beta`` is the likelihood's gradient in its fixed-effect argument
        (:meth:`FixedEffectsPrior.offsets` of the coordinates, or the
        coordinates themselves: both shift them), ``d_theta`` in the absolute
        factor entries and ``d_sigma`` in ``σ`` with those held fixed.
        """
        out = point.slopes.copy()
        hyper_pull_back(
            point.coords, self.tables, point.sigma,
            np.ascontiguousarray(d_beta, dtype=float),
            np.ascontiguousarray(d_theta, dtype=float), float(d_sigma), out,
        )  # fmt: skip
        return out

    # -- layout of the outputs -------------------------------------------------------------

    @property
    def output_names(self) -> tuple[str, ...]:
        """The variables of :meth:`expand`, named as in the PyMC graph."""
        names = ["beta"]
        for g, sd_priors, _, corr in self._group_slots:
            names += [prior.name for prior in sd_priors]
            names += [part.name for _, part, _ in corr]
            if corr:
                names.append(correlation_name(g))
        if self.with_sigma:
            names.append("sigma")
        return tuple(names)

    @property
    def output_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of :attr:`output_names`."""
        shapes: list[tuple[int, ...]] = [(self.n_fixed,)]
        for _, sd_priors, _, corr in self._group_slots:
            shapes += [()] * len(sd_priors)
            for (a, b), _, _ in corr:
                shapes.append(() if b - a == 2 else (b - a, b - a))
            if corr:
                shapes.append((len(sd_priors), len(sd_priors)))
        if self.with_sigma:
            shapes.append(())
        return tuple(shapes)

    @property
    def output_dims(self) -> dict[str, list[str]]:
        """Named dimensions of the non-scalar outputs."""
        dims = {"beta": ["coef"]}
        for g, _, _, corr in self._group_slots:
            if corr:
                dims[correlation_name(g)] = [term_dim(g), term_pair_dim(g)]
        return dims

    @property
    def coords(self) -> dict[str, list[str]]:
        """Coordinates of :attr:`output_dims`."""
        coords = {"coef": list(self.fixed.coef)}
        for group, (_, _, _, corr) in zip(self.groups, self._group_slots, strict=True):
            if corr:
                coords[term_dim(group.group)] = list(group.terms)
                coords[term_pair_dim(group.group)] = list(group.terms)
        return coords

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The model's variables (:attr:`output_names`) at the unconstrained point ``x``."""
        xs = np.asarray(x, dtype=float)
        out: dict[str, np.ndarray] = {
            "beta": np.asarray(self.fixed.beta(xs[: self.n_fixed].tolist()))
        }
        for g, sd_priors, sd_start, corr in self._group_slots:
            for t, prior in enumerate(sd_priors):
                out[prior.name] = np.asarray(math.exp(float(xs[sd_start + t])))
            if not corr:
                continue
            full = np.eye(len(sd_priors))
            for (a, b), part, where in corr:
                if isinstance(part, lkj_density.LkjCholeskyPrior):
                    chol, _, _ = part.evaluate(xs[where])
                    out[part.name] = chol
                    full[a:b, a:b] = chol @ chol.T
                else:
                    half, _, _ = part.evaluate(float(xs[where.start]))
                    r = 2.0 * half - 1.0
                    out[part.name] = np.asarray(half)
                    full[a, a + 1] = full[a + 1, a] = r
            out[correlation_name(g)] = full
        if self.with_sigma:
            out["sigma"] = np.asarray(math.exp(float(xs[-1])))
        return out

    def initial_point(self, seed: int) -> np.ndarray:
        """Each prior's typical value, jittered by uniform(-1, 1) on the unconstrained scale.

        The same rule as PyMC's and nutpie's default initialisation.
        """
        start = np.zeros(self.ndim)
        start[: self.n_fixed] = self.fixed.start()
        for _, sd_priors, sd_start, corr in self._group_slots:
            for t, prior in enumerate(sd_priors):
                start[sd_start + t] = prior.unconstrain(prior.start)
            # a pair's Beta(eta, eta) centre 1/2 and LKJ's identity are both 0 here
            for _, _, where in corr:
                start[where] = 0.0
        if self._sigma_prior is not None:
            start[-1] = self._sigma_prior.unconstrain(self._sigma_prior.start)
        return jittered(start, seed)

    def unconstrain(self, values: Mapping[str, ArrayLike]) -> np.ndarray:
        """The unconstrained point of given variable values; the inverse of :meth:`expand`.

        Parameters
        ----------
        values : mapping of str to array_like
            ``beta``, every ``sd_<g>__<t>``, ``corr_<g>`` (the correlation
            matrix of the factor's terms) where a factor has correlated terms,
            and ``sigma`` for gaussian models.

        Raises
        ------
        ValueError
            For a missing variable or a value outside its support.
        """
        names = [n for n in self.output_names if "__raw" not in n]
        missing = [n for n in names if n not in values]
        if missing:
            raise ValueError(f"values lack {missing}; needed: {', '.join(names)}")
        out = np.zeros(self.ndim)
        out[: self.n_fixed] = self.fixed.unconstrain(values["beta"])
        for g, sd_priors, sd_start, corr in self._group_slots:
            for t, prior in enumerate(sd_priors):
                value = float(np.asarray(values[prior.name]))
                if not value > 0:
                    raise ValueError(f"{prior.name!r} must be positive, got {value!r}")
                out[sd_start + t] = math.log(value)
            if not corr:
                continue
            full = np.asarray(values[correlation_name(g)], dtype=float)
            for (a, b), part, where in corr:
                block = full[a:b, a:b] if full.ndim == 2 else np.array([[1.0, full], [full, 1.0]])
                try:
                    chol = np.linalg.cholesky(block)
                except np.linalg.LinAlgError:
                    raise ValueError(
                        f"'corr_{g}' must be a positive definite correlation matrix"
                    ) from None
                if isinstance(part, lkj_density.LkjCholeskyPrior):
                    out[where] = part.unconstrain(chol)
                else:
                    out[where.start] = part.unconstrain((chol[1, 0] + 1.0) / 2.0)
        if self._sigma_prior is not None:
            sigma = float(np.asarray(values["sigma"]))
            if not sigma > 0:
                raise ValueError(f"'sigma' must be positive, got {sigma!r}")
            out[-1] = math.log(sigma)
        return out
