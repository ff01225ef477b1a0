"""What the densities sampled over the hyperparameters share, and their effect draws.

:class:`IntegratedDensity` is the base of the gaussian marginal density
(:mod:`hiermodels.bayes.gaussian_density`), the Laplace density
(:mod:`hiermodels.bayes.laplace_density`) and the joint density
(:mod:`hiermodels.bayes.joint_density`): it gives the sampler the outputs,
the initial point and the inverse transform of their
:class:`~hiermodels.bayes.hyper_density.HyperParameters`, and draws the
random effects once per posterior draw through the density's compiled
effect kernel (:func:`store_effect_draw` writes one draw).
:func:`integrated_effects` turns those draws into the ``z_<g>`` and
``u_<g>`` of the PyMC graph.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import xarray as xr
from numba import njit
from numpy.typing import ArrayLike

from hiermodels.bayes.hyper_density import HyperParameters
from hiermodels.design.design import Design
from hiermodels.mle.blocked import ReLayout

__all__ = ["IntegratedDensity", "integrated_effects", "store_effect_draw"]


@njit(cache=True, nogil=True, inline="always")
def store_effect_draw(
    d: int,
    mode_lead: np.ndarray,
    mode_rest: np.ndarray,
    shift_lead: np.ndarray,
    shift_rest: np.ndarray,
    scale: float,
    u_lead: np.ndarray,
    u_rest: np.ndarray,
) -> None:
    """Draw ``d`` of the spherical effects, ``mode + scale · shift``, into ``u_lead`` and
    ``u_rest`` (the shifts ``L⁻ᵀε`` as the backward solve leaves them, one column)."""
    for m in range(mode_lead.shape[0]):
        for a in range(mode_lead.shape[1]):
            u_lead[d, m, a] = mode_lead[m, a] + scale * shift_lead[m, a, 0]
    for r in range(mode_rest.size):
        u_rest[d, r] = mode_rest[r] + scale * shift_rest[r, 0]


class IntegratedDensity(ABC):
    """What every density with the effects integrated out shares: its hyperparameters' layout.

    A subclass sets :attr:`hyper` and defines ``logp``; the outputs, the
    initial point and the inverse transform are those of
    :class:`HyperParameters`, in the interface
    :func:`~hiermodels.bayes.samplers.sample_density` samples.

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

    # -- the effects, drawn after sampling -------------------------------------------------

    #: ``kernel(points, *native, noise_lead, noise_rest, v_lead, v_rest, theta) -> bool``:
    #: the spherical effects at each of one chain's points (a subclass sets it).
    effect_kernel: Callable[..., bool]
    layout: ReLayout

    @property
    @abstractmethod
    def native(self) -> tuple:
        """What the density's compiled functions take after the point (a subclass's tables)."""

    def draw_effects(
        self, x: np.ndarray, rng: np.random.Generator
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """One draw of every block's effects given the hyperparameters ``x``.

        Returns
        -------
        effects : list of numpy.ndarray
            ``(levels, q)`` per block of the design (design order).
        factors : list of numpy.ndarray
            Per block (design order), the absolute covariance factor ``T``
            (the effects' covariance is ``T Tᵀ``).
        """
        points = np.ascontiguousarray(x, dtype=float)[None, None, :]
        blocks = self.block_effects(*self.spherical_effects(points, [rng]))
        return [u[0, 0] for _, u, _ in blocks], [factor[0, 0] for _, _, factor in blocks]

    def spherical_effects(
        self, points: np.ndarray, streams: list[np.random.Generator]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(v_lead, v_rest, θ with a scale last)`` at ``(chain, draw, ndim)`` points.

        ``v`` are the spherical effects in the layout's order, ``b = Λ v``
        with ``Λ`` the absolute factors ``θ`` over the scale (``σ`` for a
        gaussian model, 1 otherwise). One noise stream per chain, chains in
        threads (the kernels release the GIL), so the draws depend on the seed
        alone.

        Raises
        ------
        ValueError
            When a point lies where the effects' distribution cannot be formed.
        """
        chains, draws = points.shape[:2]
        layout = self.layout
        n_lead = layout.pattern.lead_ptr.size - 1
        q_lead, q_rest = layout.q_lead, layout.q_rest
        v_lead = np.empty((chains, draws, n_lead, q_lead))
        v_rest = np.empty((chains, draws, q_rest))
        theta = np.empty((chains, draws, self.hyper.theta_length + 1))
        native = self.native

        def draw_chain(c: int) -> bool:
            noise_lead = streams[c].standard_normal((draws, n_lead, q_lead, 1))
            noise_rest = streams[c].standard_normal((draws, q_rest, 1))
            chain_points = np.ascontiguousarray(points[c], dtype=float)
            arguments = (*native, noise_lead, noise_rest, v_lead[c], v_rest[c], theta[c])
            return bool(self.effect_kernel(chain_points, *arguments))

        workers = max(1, min(chains, os.cpu_count() or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            if not all(pool.map(draw_chain, range(chains))):
                raise ValueError("a posterior draw lies where the density cannot be evaluated")
        return v_lead, v_rest, theta

    def block_effects(
        self, v_lead: np.ndarray, v_rest: np.ndarray, theta: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per block of the design, ``(z, u, T)`` over the leading ``(chain, draw)``.

        ``u = T z`` per level, ``T`` the block's absolute factor; the offsets
        ``z`` are ``v`` over the scale (:meth:`spherical_effects`).
        """
        layout = self.layout
        lead_dims = theta.shape[:-1]
        scale = theta[..., -1][..., None, None]
        spherical: dict[int, np.ndarray] = {}
        start = 0
        for k in layout.lead:
            q = layout.blocks[k].n_terms
            spherical[k] = v_lead[..., start : start + q]
            start += q
        start = 0
        for k in layout.rest:
            block = layout.blocks[k]
            size = block.n_levels * block.n_terms
            spherical[k] = v_rest[..., start : start + size].reshape(
                *lead_dims, block.n_levels, block.n_terms
            )
            start += size
        out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        by_design = dict(zip(layout.order, range(len(layout.order)), strict=True))
        for i in range(len(layout.order)):
            k = by_design[i]
            q = layout.blocks[k].n_terms
            factor = np.zeros((*lead_dims, q, q))
            e = layout.theta.block_slice(k).start
            for col in range(q):
                for row in range(col, q):
                    factor[..., row, col] = theta[..., e]
                    e += 1
            z = spherical[k] / scale
            out.append((z, np.einsum("...lt,...st->...ls", z, factor), factor))
        return out


def integrated_effects(
    posterior: xr.Dataset,
    design: Design,
    density: IntegratedDensity,
    rng: np.random.Generator,
    points: np.ndarray | None = None,
) -> dict[str, xr.DataArray]:
    """Draw ``z_<g>`` and ``u_<g>`` given each posterior draw of the hyperparameters.

    From the effects' exact conditional for a gaussian model
    (:func:`~hiermodels.bayes.gaussian_density.gaussian_effect_draws`), from
    the Gaussian approximation at the conditional mode for the Laplace
    density (:func:`~hiermodels.bayes.laplace_density.laplace_effect_draws`).

    Parameters
    ----------
    posterior : xarray.Dataset
        Draws of the variables of ``density.output_names``.
    design : Design
    density : IntegratedDensity
        The density the draws were sampled from.
    rng : numpy.random.Generator
    points : numpy.ndarray, optional
        ``(chain, draw, ndim)``: the unconstrained points of the draws, when
        the sampler kept them (else found from ``posterior``).

    Returns
    -------
    dict of str to xarray.DataArray
        ``z_<g>`` and ``u_<g>`` per grouping factor, dims
        ``(chain, draw, <g>, <g>__term)``, as in the PyMC graph.
    """
    from hiermodels.bayes.marginal_density import effect_arrays

    hyper = density.hyper
    chains, draws = posterior.sizes["chain"], posterior.sizes["draw"]
    if points is None:
        names = [n for n in hyper.output_names if "__raw" not in n]
        values = {n: posterior[n].transpose("chain", "draw", ...).values for n in names}
        points = np.array(
            [
                [hyper.unconstrain({n: v[c, d] for n, v in values.items()}) for d in range(draws)]
                for c in range(chains)
            ]
        )
    blocks = density.block_effects(*density.spherical_effects(points, rng.spawn(chains)))
    group_of = {g.group: g for g in hyper.groups}
    u = {g: np.empty((chains, draws, len(t.levels), len(t.terms))) for g, t in group_of.items()}
    z = {g: np.empty_like(a) for g, a in u.items()}
    seen: dict[str, int] = {}
    for block, (z_block, u_block, _) in zip(design.blocks, blocks, strict=True):
        a = seen.get(block.group, 0)
        seen[block.group] = a + block.n_terms
        z[block.group][:, :, :, a : a + block.n_terms] = z_block
        u[block.group][:, :, :, a : a + block.n_terms] = u_block
    out: dict[str, xr.DataArray] = {}
    for g, group in group_of.items():
        out.update(effect_arrays(posterior, group, z[g], u[g]))
    return out
