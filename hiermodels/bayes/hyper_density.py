"""The hyperparameters of a mixed model on the sampler's scale, shared by the direct densities.

A density that integrates the random effects out (exactly for gaussian
models, :mod:`hiermodels.bayes.marginal_density`; by the Laplace
approximation for GLMMs, :mod:`hiermodels.bayes.laplace_density`) samples
the same free variables as the PyMC graph of
:func:`~hiermodels.bayes.build.build_pymc_model` less the offsets ``z_<g>``,
in the same unconstrained coordinates and order:

* ``beta``, in centred coordinates when the model has an intercept and
  slopes (:class:`~hiermodels.bayes.marginal_density.FixedEffectsPrior`);
* per grouping factor, the log of each term's SD, then per block of two or
  more terms its correlation: for two terms the log-odds of ``(r + 1) / 2``
  (``Beta(eta, eta)``), for more PyMC's ``LKJCorr`` Cholesky factor in its
  ``CholeskyCorrTransform`` coordinates (:class:`LkjCholeskyPrior`);
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
from numpy.typing import ArrayLike
from scipy import special

from hiermodels.bayes.prior_density import ScalarPrior, jittered, lkj_pair_prior, scalar_prior
from hiermodels.bayes.priors import Prior, Priors, group_term_layout
from hiermodels.mle.blocked import ReLayout
from hiermodels.spec.design import Design

if TYPE_CHECKING:
    from hiermodels.bayes.marginal_density import FixedEffectsPrior

__all__ = ["HyperParameters", "HyperPoint", "IntegratedDensity", "LkjCholeskyPrior"]


class LkjCholeskyPrior:
    """``LKJCorr(eta)`` of ``q ≥ 3`` terms on PyMC's unconstrained Cholesky coordinates.

    The free vector ``v`` of length ``q(q − 1)/2`` fills the strictly lower
    triangle of a unit-diagonal matrix in PyMC's spiral order; each row
    divided by its norm is the Cholesky factor ``L`` of the correlation.
    With the LKJ density of ``L`` and the transform's Jacobian
    ``Σ_i (i + 2) log L_ii``, the log density on ``v`` is ::

        c(eta, q) + (2 eta + q − 1) Σ_i log L_ii,   L_ii = (1 + ‖v_i‖²)^(−1/2)

    with ``v_i`` row ``i``'s entries and ``c`` PyMC's normalising constant.

    Parameters
    ----------
    name : str
        The variable (``corr_<g>__raw`` or ``corr_<g>__raw<k>``).
    prior : Prior
        An ``LKJCorr`` prior.
    q : int
        Number of terms, at least 3.
    """

    def __init__(self, name: str, prior: Prior, q: int) -> None:
        if prior.dist != "LKJCorr":
            raise ValueError(f"prior {prior!r} for {name!r} is not an LKJCorr prior")
        if q < 3:
            raise ValueError(f"LkjCholeskyPrior needs at least 3 terms, got {q}")
        self.name = name
        self.q = q
        self.size = q * (q - 1) // 2
        eta = float(prior.params["eta"])
        k = np.arange(1, q)
        self._const = float(
            (q - 1) * special.gammaln(eta + 0.5 * (q - 1))
            - np.sum(0.5 * k * math.log(math.pi) + special.gammaln(eta + 0.5 * (q - 1 - k)))
        )
        self._power = 2.0 * eta + q - 1.0
        # PyMC's spiral fill of an (q-1) x (q-1) lower triangle, placed below the diagonal
        m = q - 1
        index = np.arange(self.size)
        filled = np.concatenate([index[m:], index[::-1]]).reshape(m, m)
        rows, cols = np.tril_indices(m)
        self._rows = rows + 1
        self._cols = cols
        self._index = filled[rows, cols]

    def _raw(self, v: np.ndarray) -> np.ndarray:
        raw = np.eye(self.q)
        raw[self._rows, self._cols] = v[self._index]
        return raw

    def evaluate(self, v: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """``(L, log p + log|J|, its gradient in v)`` at the unconstrained ``v``."""
        raw = self._raw(v)
        norms2 = np.einsum("ij,ij->i", raw, raw)
        chol = raw / np.sqrt(norms2)[:, None]
        logp = self._const - 0.5 * self._power * float(np.sum(np.log(norms2)))
        slope_raw = -self._power * raw / norms2[:, None]
        slope = np.empty(self.size)
        slope[self._index] = slope_raw[self._rows, self._cols]
        return chol, logp, slope

    def pull_back(self, v: np.ndarray, d_chol: np.ndarray) -> np.ndarray:
        """The gradient in ``v`` of a function whose gradient in ``L`` is ``d_chol``."""
        raw = self._raw(v)
        norms = np.sqrt(np.einsum("ij,ij->i", raw, raw))
        lower = np.tril(d_chol)
        along = np.einsum("ij,ij->i", lower, raw)
        d_raw = lower / norms[:, None] - along[:, None] * raw / norms[:, None] ** 3
        out = np.empty(self.size)
        out[self._index] = d_raw[self._rows, self._cols]
        return out

    def unconstrain(self, chol: np.ndarray) -> np.ndarray:
        """The unconstrained ``v`` of a correlation Cholesky factor."""
        chol = np.asarray(chol, dtype=float)
        raw = chol / np.diag(chol)[:, None]
        out = np.empty(self.size)
        out[self._index] = raw[self._rows, self._cols]
        return out


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
    lkj: LkjCholeskyPrior | None
    corr_at: slice
    theta: slice
    rows: np.ndarray
    cols: np.ndarray


@dataclass(slots=True, eq=False)
class HyperPoint:
    """The hyperparameters at one unconstrained point.

    Attributes
    ----------
    coords : list of float
        The unconstrained point.
    beta_coords : list of float
        ``beta`` in the sampler's coordinates (``coords[:p]``).
    theta : numpy.ndarray
        Absolute covariance factor entries, ``θ`` order.
    sigma : float
        Residual SD (gaussian), else 1.
    log_prior : float
        Log prior density plus log Jacobian.
    slopes : list of float
        Its gradient.
    sds : list of list of float
        Per block, its SDs.
    chols : list
        Per block, its correlation's Cholesky factor: ``None`` for one term,
        ``(r, sqrt(1 − r²))`` for two, the matrix for more.
    """

    coords: list[float]
    beta_coords: list[float]
    theta: np.ndarray
    sigma: float
    log_prior: float
    slopes: list[float]
    sds: list[list[float]]
    chols: list[object]


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
        self.groups = group_term_layout(design)
        position = self.n_fixed
        self._group_slots: list[tuple[str, tuple[ScalarPrior, ...], int, list]] = []
        for group in self.groups:
            g = group.group
            sd_priors = tuple(
                scalar_prior(f"sd_{g}__{t}", priors[f"sd_{g}__{t}"]) for t in group.terms
            )
            sd_start = position
            position += len(group.terms)
            corr_spans = group.correlated_spans
            corr_parts = []
            for k, (a, b) in enumerate(corr_spans):
                raw = f"corr_{g}__raw" if len(corr_spans) == 1 else f"corr_{g}__raw{k}"
                if b - a == 2:
                    part: ScalarPrior | LkjCholeskyPrior = lkj_pair_prior(raw, priors[f"corr_{g}"])
                    size = 1
                else:
                    part = LkjCholeskyPrior(raw, priors[f"corr_{g}"], b - a)
                    size = part.size
                corr_parts.append(((a, b), part, slice(position, position + size)))
                position += size
            self._group_slots.append((g, sd_priors, sd_start, corr_parts))
        self.with_sigma = with_sigma
        self._sigma_prior = scalar_prior("sigma", priors["sigma"]) if with_sigma else None
        self.ndim: int = position + int(with_sigma)
        self._blocks = self._place_blocks(design, layout)
        self.theta_length = layout.theta.length

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
                    if isinstance(part, LkjCholeskyPrior):
                        lkj = part
                    else:
                        pair = part
            cols, rows = np.triu_indices(block.n_terms)
            out.append(
                _Block(
                    q=block.n_terms,
                    sd_priors=sd_priors[a:b],
                    sd_at=tuple(range(sd_start + a, sd_start + b)),
                    pair=pair,
                    lkj=lkj,
                    corr_at=corr_at,
                    theta=layout.theta.block_slice(k),
                    rows=rows,
                    cols=cols,
                )
            )
        return tuple(out)

    # -- evaluation ------------------------------------------------------------------------

    def evaluate(self, x: np.ndarray) -> HyperPoint | None:
        """The hyperparameters at ``x``; ``None`` where a prior cannot be evaluated."""
        # plain floats and lists for one- and two-term blocks: at a handful of parameters
        # numpy's per-call overhead would cost more than the arithmetic
        xs = np.asarray(x, dtype=float).tolist()
        p = self.n_fixed
        slopes = [0.0] * self.ndim
        theta = [0.0] * self.theta_length
        try:
            beta = self.fixed.beta(xs[:p])
            total, beta_slopes = self.fixed.log_prior(beta)
            slopes[:p] = self.fixed.pull_back(beta_slopes)
            sds: list[list[float]] = []
            chols: list[object] = []
            for block in self._blocks:
                sd = []
                for prior, at in zip(block.sd_priors, block.sd_at, strict=True):
                    value, logp, slopes[at] = prior.evaluate(xs[at])
                    sd.append(value)
                    total += logp
                start = block.theta.start
                if block.q == 1:
                    theta[start] = sd[0]
                    chol: object = None
                elif block.pair is not None:
                    half, logp, slopes[block.corr_at.start] = block.pair.evaluate(
                        xs[block.corr_at.start]
                    )
                    total += logp
                    r = 2.0 * half - 1.0
                    root = math.sqrt(max(1.0 - r * r, 0.0))
                    theta[start : start + 3] = [sd[0], sd[1] * r, sd[1] * root]
                    chol = (r, root)
                else:
                    if block.lkj is not None:
                        chol, logp, slope = block.lkj.evaluate(np.asarray(xs[block.corr_at]))
                        total += logp
                        slopes[block.corr_at] = slope.tolist()
                    else:
                        chol = np.eye(block.q)
                    factor = np.asarray(sd)[:, None] * chol
                    theta[block.theta] = factor[block.rows, block.cols].tolist()
                sds.append(sd)
                chols.append(chol)
            sigma = 1.0
            if self._sigma_prior is not None:
                sigma, logp, slopes[-1] = self._sigma_prior.evaluate(xs[-1])
                total += logp
        except (OverflowError, ValueError, ZeroDivisionError):
            # a trajectory far out in the tails (exp overflow, log of 0): zero density
            return None
        if not math.isfinite(total):
            return None
        return HyperPoint(xs, xs[:p], np.array(theta), sigma, total, slopes, sds, chols)

    def gradient(
        self, point: HyperPoint, d_beta: np.ndarray, d_theta: np.ndarray, d_sigma: float = 0.0
    ) -> np.ndarray:
        """The log posterior's gradient at ``point``, the likelihood's given in ``(β, θ, σ)``.

        ``d_beta`` is the likelihood's gradient in its fixed-effect argument
        (:meth:`FixedEffectsPrior.offsets` of the coordinates, or the
        coordinates themselves: both shift them), ``d_theta`` in the absolute
        factor entries and ``d_sigma`` in ``σ`` with those held fixed.
        """
        out = list(point.slopes)
        for k, d in enumerate(np.asarray(d_beta).tolist()):
            out[k] += d
        g_theta = np.asarray(d_theta).tolist()
        xs = point.coords
        for block, sd, chol in zip(self._blocks, point.sds, point.chols, strict=True):
            start = block.theta.start
            if block.q == 1:
                out[block.sd_at[0]] += sd[0] * g_theta[start]  # d/dlog sd = sd * d/dsd
                continue
            if block.pair is not None:
                r, root = chol  # type: ignore[misc]
                g00, g10, g11 = g_theta[start : start + 3]
                out[block.sd_at[0]] += sd[0] * g00
                out[block.sd_at[1]] += sd[1] * (g10 * r + g11 * root)
                d_r = sd[1] * (g10 - g11 * r / root) if root > 0 else 0.0
                half = 0.5 * (r + 1.0)
                out[block.corr_at.start] += d_r * 2.0 * half * (1.0 - half)
                continue
            g = np.zeros((block.q, block.q))
            g[block.rows, block.cols] = g_theta[block.theta]
            matrix = np.asarray(chol)
            d_sd = np.einsum("ab,ab->a", g, matrix)
            for t, at in enumerate(block.sd_at):
                out[at] += sd[t] * float(d_sd[t])
            if block.lkj is not None:
                d_chol = g * np.asarray(sd)[:, None]
                pulled = block.lkj.pull_back(np.asarray(xs[block.corr_at]), d_chol)
                for k, at in enumerate(range(block.corr_at.start, block.corr_at.stop)):
                    out[at] += float(pulled[k])
        if self.with_sigma:
            out[-1] += point.sigma * d_sigma
        return np.array(out)

    # -- layout of the outputs -------------------------------------------------------------

    @property
    def output_names(self) -> tuple[str, ...]:
        """The variables of :meth:`expand`, named as in the PyMC graph."""
        names = ["beta"]
        for g, sd_priors, _, corr in self._group_slots:
            names += [prior.name for prior in sd_priors]
            names += [part.name for _, part, _ in corr]
            if corr:
                names.append(f"corr_{g}")
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
                dims[f"corr_{g}"] = [f"{g}__term", f"{g}__term_bis"]
        return dims

    @property
    def coords(self) -> dict[str, list[str]]:
        """Coordinates of :attr:`output_dims`."""
        coords = {"coef": list(self.fixed.coef)}
        for group, (_, _, _, corr) in zip(self.groups, self._group_slots, strict=True):
            if corr:
                coords[f"{group.group}__term"] = list(group.terms)
                coords[f"{group.group}__term_bis"] = list(group.terms)
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
                if isinstance(part, LkjCholeskyPrior):
                    chol, _, _ = part.evaluate(xs[where])
                    out[part.name] = chol
                    full[a:b, a:b] = chol @ chol.T
                else:
                    half, _, _ = part.evaluate(float(xs[where.start]))
                    r = 2.0 * half - 1.0
                    out[part.name] = np.asarray(half)
                    full[a, a + 1] = full[a + 1, a] = r
            out[f"corr_{g}"] = full
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
            full = np.asarray(values[f"corr_{g}"], dtype=float)
            for (a, b), part, where in corr:
                block = full[a:b, a:b] if full.ndim == 2 else np.array([[1.0, full], [full, 1.0]])
                try:
                    chol = np.linalg.cholesky(block)
                except np.linalg.LinAlgError:
                    raise ValueError(
                        f"'corr_{g}' must be a positive definite correlation matrix"
                    ) from None
                if isinstance(part, LkjCholeskyPrior):
                    out[where] = part.unconstrain(chol)
                else:
                    out[where.start] = part.unconstrain((chol[1, 0] + 1.0) / 2.0)
        if self._sigma_prior is not None:
            sigma = float(np.asarray(values["sigma"]))
            if not sigma > 0:
                raise ValueError(f"'sigma' must be positive, got {sigma!r}")
            out[-1] = math.log(sigma)
        return out


class IntegratedDensity:
    """What every density with the effects integrated out shares: its hyperparameters' layout.

    A subclass sets :attr:`hyper` and defines ``logp``; the outputs, the
    initial point and the inverse transform are those of
    :class:`HyperParameters`, in the interface
    :func:`~hiermodels.bayes.sample.sample_density` samples.

    Attributes
    ----------
    hyper : HyperParameters
    ndim : int
        Number of unconstrained coordinates.
    """

    hyper: HyperParameters

    @property
    def ndim(self) -> int:
        """Number of unconstrained coordinates."""
        return self.hyper.ndim

    @property
    def output_names(self) -> tuple[str, ...]:
        """Variables returned by :meth:`expand`, named as in the PyMC graph."""
        return self.hyper.output_names

    @property
    def output_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of :attr:`output_names`."""
        return self.hyper.output_shapes

    @property
    def output_dims(self) -> dict[str, list[str]]:
        """Named dimensions of the non-scalar outputs."""
        return self.hyper.output_dims

    @property
    def coords(self) -> dict[str, list[str]]:
        """Coordinates of :attr:`output_dims`."""
        return self.hyper.coords

    def initial_point(self, seed: int) -> np.ndarray:
        """Each prior's typical value, jittered by uniform(-1, 1) on the unconstrained scale."""
        return self.hyper.initial_point(seed)

    def unconstrain(self, values: Mapping[str, ArrayLike]) -> np.ndarray:
        """The unconstrained point of given variable values; the inverse of :meth:`expand`.

        See :meth:`HyperParameters.unconstrain`.
        """
        return self.hyper.unconstrain(values)

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The model's variables (:attr:`output_names`) at the unconstrained point ``x``."""
        return self.hyper.expand(x)
