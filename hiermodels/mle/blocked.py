"""Blocked sparse Cholesky factorisation of ``ΛᵀZᵀWZΛ + I``.

The random effects are ordered as lme4 orders its terms — by number of
levels, largest first. All terms on the grouping factor with the most
levels form the *leading* partition: every observation belongs to exactly
one of its levels, so its part of ``ZᵀWZ`` is block diagonal (one small
``q₀ × q₀`` block per level) and is factorised level by level. The other
terms form the *trailing* partition, whose Schur complement is dense and
small (hundreds to a few thousand columns); the coupling between the two is
kept sparse, as one small block per pair of a trailing and a leading level
that share observations. This is the structure MixedModels.jl exploits:
one grouping factor, nested factors and crossed designs such as InstEval
all factorise in milliseconds without a general sparse Cholesky. The
per-evaluation work runs in the compiled kernels of
:mod:`hiermodels.mle.kernels`.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from hiermodels.design.design import Design, RandomBlock
from hiermodels.mle import kernels
from hiermodels.mle.covariance import ThetaLayout

__all__ = [
    "BlockPattern",
    "BlockedFactor",
    "CrossProducts",
    "ReLayout",
    "factorize",
    "triangular_inverse",
]


def triangular_inverse(matrix: np.ndarray, *, lower: bool) -> np.ndarray:
    """Inverse of a triangular matrix (LAPACK ``dtrtri``).

    ``scipy.linalg.solve_triangular`` costs milliseconds per call on small
    matrices in some SciPy releases, more than a small model's whole fit.

    Raises
    ------
    numpy.linalg.LinAlgError
        When the matrix is singular.
    """
    if matrix.size == 0:
        return np.zeros_like(matrix, dtype=float)
    inverse, info = sla.lapack.dtrtri(np.asarray(matrix, dtype=float), lower=int(lower))
    if info != 0:
        raise np.linalg.LinAlgError("singular triangular matrix")
    return inverse


#: Most products of two coupling pairs of one leading level whose indices the
#: factorisation keeps (two int64 each, and their sort: about 5 GiB); beyond, it
#: meets them as it goes.
MAX_PAIR_PRODUCTS = 150_000_000

#: How many multiply-adds of a dense BLAS product cost what one multiply-add of
#: the pair loops costs (scattered reads and writes through index arrays, one
#: scalar at a time). Measured with one BLAS thread, the two paths break even
#: near 10% of the cells of a 10,000 × 1,000 crossing (a ratio near 100, the
#: pair loops missing the cache) and near 20% of a 2,000 × 300 one (near 25):
#: 64 holds the coupling densely once a leading level reaches, in root mean
#: square, 1/8 of the trailing rows (see :meth:`BlockPattern.build`); 0 keeps
#: the pairs always.
DENSE_COUPLING_SPEEDUP = 64.0

#: Fewest multiply-adds of the dense products (``q_rest² L₀ q₀``) for which the
#: coupling is held densely: below, a millisecond or so either way, and small
#: crossings keep the pair path's arithmetic.
MIN_DENSE_COUPLING_WORK = 10**7

#: Most bytes the dense coupling may take: ``L₂₁`` and ``C₂₂⁻¹L₂₁`` (the
#: gradient holds both), each ``q_rest × L₀q₀`` doubles. A crossing whose dense
#: coupling would take more keeps the pairs.
MAX_DENSE_COUPLING_BYTES = 2 * 1024**3

#: :meth:`ReLayout.of`'s layouts, one per live design.
_LAYOUTS: weakref.WeakKeyDictionary[Design, ReLayout] = weakref.WeakKeyDictionary()
_LAYOUTS_LOCK = threading.Lock()


@dataclass(frozen=True, eq=False)
class ReLayout:
    """Ordering and partition of a design's random effects.

    Attributes
    ----------
    blocks : tuple of RandomBlock
        The design's blocks in θ order (levels decreasing, ties in formula
        order).
    theta : ThetaLayout
        Where each block's factor sits in ``θ``.
    lead : tuple of int
        Indices into ``blocks`` of the leading partition (all terms on the
        grouping factor with the most levels).
    rest : tuple of int
        Indices of the trailing partition, in θ order.
    lead_codes : numpy.ndarray
        ``(n,)`` level of every observation in the leading factor.
    lead_X : numpy.ndarray
        ``(n, q₀)`` the leading terms' covariates side by side.
    pattern : BlockPattern
        Index arrays of the blocked structure, for the compiled kernels.
    order : tuple of int
        ``order[k]`` is the index in the design's blocks of ``blocks[k]``.
    """

    blocks: tuple[RandomBlock, ...]
    theta: ThetaLayout
    lead: tuple[int, ...]
    rest: tuple[int, ...]
    lead_codes: np.ndarray
    lead_X: np.ndarray
    pattern: BlockPattern
    order: tuple[int, ...]

    @classmethod
    def of(cls, design: Design) -> ReLayout:
        """The layout of ``design``, built on the first call for that design object.

        The layout is kept while the design lives (it is keyed weakly on the
        design, which it does not reference), so the engines, the results
        and the densities of one design share it.

        Parameters
        ----------
        design : Design

        Returns
        -------
        ReLayout

        Raises
        ------
        ValueError
            When the design has no random-effect terms.
        """
        with _LAYOUTS_LOCK:
            layout = _LAYOUTS.get(design)
            if layout is None:
                layout = _LAYOUTS[design] = cls.from_design(design)
        return layout

    @classmethod
    def from_design(cls, design: Design) -> ReLayout:
        """Order and partition the random-effect blocks of ``design`` (:meth:`of` keeps it)."""
        if not design.blocks:
            raise ValueError(
                "the formula has no random-effect terms such as (1 | group); "
                "a mixed model needs at least one"
            )
        order = sorted(range(len(design.blocks)), key=lambda i: -design.blocks[i].n_levels)
        blocks = tuple(design.blocks[i] for i in order)
        lead_group = blocks[0].group
        lead = tuple(i for i, b in enumerate(blocks) if b.group == lead_group)
        rest = tuple(i for i, b in enumerate(blocks) if b.group != lead_group)
        lead_X = _side_by_side([blocks[i] for i in lead])
        pattern = BlockPattern.build(
            blocks[0].codes, lead_X, blocks[0].n_levels, [blocks[i] for i in rest]
        )
        return cls(
            blocks=blocks,
            theta=ThetaLayout(tuple(b.n_terms for b in blocks)),
            lead=lead,
            rest=rest,
            lead_codes=blocks[0].codes,
            lead_X=lead_X,
            pattern=pattern,
            order=tuple(order),
        )

    def with_covariates(self, design: Design) -> ReLayout:
        """This layout for ``design``, whose blocks differ from this one's in ``X`` alone.

        The ordering, the partition and the pattern's index arrays depend on
        the grouping factors and the numbers of terms only, so they are
        shared; the covariates are ``design``'s. A fit builds the layout of
        its standardised design and takes the original's from it.

        Raises
        ------
        ValueError
            When ``design``'s blocks group or count terms differently.
        """
        blocks = tuple(design.blocks[i] for i in self.order)
        if len(blocks) != len(self.blocks) or any(
            new.group != old.group
            or new.n_terms != old.n_terms
            or new.n_levels != old.n_levels
            or (new.codes is not old.codes and not np.array_equal(new.codes, old.codes))
            for new, old in zip(blocks, self.blocks, strict=False)
        ):
            raise ValueError("the design's random-effect blocks differ from the layout's")
        lead_X = _side_by_side([blocks[i] for i in self.lead])
        pattern = replace(
            self.pattern,
            lead_x=lead_X,
            rest_x=_side_by_side([blocks[i] for i in self.rest]),
        )
        return replace(self, blocks=blocks, lead_X=lead_X, pattern=pattern)

    @cached_property
    def factor_blocks(self) -> dict[str, tuple[int, ...]]:
        """Indices into :attr:`blocks` of each grouping factor's blocks, factors in θ order."""
        groups: dict[str, list[int]] = {}
        for i, block in enumerate(self.blocks):
            groups.setdefault(block.group, []).append(i)
        return {group: tuple(idx) for group, idx in groups.items()}

    @cached_property
    def Z_rest(self) -> sp.csr_matrix:
        """``(n, q_rest)`` random-effects matrix of the trailing terms."""
        if not self.rest:
            return sp.csr_matrix((self.lead_codes.size, 0))
        return sp.hstack([self.blocks[i].Z() for i in self.rest], format="csr")

    @property
    def n_lead_levels(self) -> int:
        """Number of levels ``L₀`` of the leading grouping factor."""
        return self.blocks[0].n_levels

    @property
    def q_lead(self) -> int:
        """Terms per level ``q₀`` in the leading partition."""
        return int(self.lead_X.shape[1])

    @property
    def q_rest(self) -> int:
        """Number of random effects in the trailing partition."""
        return self.pattern.q_rest

    def lead_factor(self, factors: Sequence[np.ndarray]) -> np.ndarray:
        """Block-diagonal ``q₀ × q₀`` factor shared by every leading level."""
        if len(self.lead) == 1:
            return np.asarray(factors[self.lead[0]], dtype=float)
        t0 = np.zeros((self.q_lead, self.q_lead))
        start = 0
        for i in self.lead:
            q = factors[i].shape[0]
            t0[start : start + q, start : start + q] = factors[i]
            start += q
        return t0

    def rest_factors(self, factors: Sequence[np.ndarray]) -> np.ndarray:
        """The trailing blocks' factors stacked as ``(n_rest_blocks, q_max, q_max)``."""
        q_max = max((self.blocks[i].n_terms for i in self.rest), default=1)
        out = np.zeros((len(self.rest), q_max, q_max))
        for k, i in enumerate(self.rest):
            q = self.blocks[i].n_terms
            out[k, :q, :q] = factors[i]
        return out

    @cached_property
    def placement(self) -> tuple:
        """Where every θ entry goes in ``T₀`` and in the stacked trailing factors.

        ``(lead_index, lead_rows, lead_cols, rest_index, rest_block,
        rest_rows, rest_cols, q_lead, rest_shape)``, as
        :func:`~hiermodels.mle.kernels.placed_factors` takes it; the
        stacked trailing factors are blocks × widest × widest.
        """
        lead_index, lead_rows, lead_cols = [], [], []
        rest_index, rest_block, rest_rows, rest_cols = [], [], [], []
        position = 0
        starts = {}
        for i in self.lead:
            starts[i] = position
            position += self.blocks[i].n_terms
        rest_of = {block: j for j, block in enumerate(self.rest)}
        for k, block in enumerate(self.blocks):
            cols, rows = np.triu_indices(block.n_terms)
            index = np.arange(self.theta.block_slice(k).start, self.theta.block_slice(k).stop)
            if k in starts:
                lead_index.append(index)
                lead_rows.append(rows + starts[k])
                lead_cols.append(cols + starts[k])
            else:
                rest_index.append(index)
                rest_block.append(np.full(index.size, rest_of[k]))
                rest_rows.append(rows)
                rest_cols.append(cols)

        def joined(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)

        q_max = max((self.blocks[i].n_terms for i in self.rest), default=1)
        return (
            joined(lead_index),
            joined(lead_rows),
            joined(lead_cols),
            joined(rest_index),
            joined(rest_block),
            joined(rest_rows),
            joined(rest_cols),
            int(self.q_lead),
            np.array([len(self.rest), q_max, q_max], dtype=np.int64),
        )

    def kernel_factors(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``T₀`` and the stacked trailing factors for ``θ``, as the kernels take them."""
        return kernels.placed_factors(np.ascontiguousarray(theta, dtype=float), self.placement)

    @cached_property
    def gradient_blocks(self) -> tuple[np.ndarray, ...]:
        """Per block, θ order: leading flag, position, terms, levels; and θ offsets."""
        lead_flag, pos, q, levels = [], [], [], []
        position = 0
        starts = {}
        for i in self.lead:
            starts[i] = position
            position += self.blocks[i].n_terms
        rest_of = {block: j for j, block in enumerate(self.rest)}
        for k, block in enumerate(self.blocks):
            lead_flag.append(1 if k in starts else 0)
            pos.append(starts[k] if k in starts else rest_of[k])
            q.append(block.n_terms)
            levels.append(block.n_levels)
        offsets = [*self.theta.offsets, self.theta.length]
        return (
            np.array(lead_flag, dtype=np.int64),
            np.array(pos, dtype=np.int64),
            np.array(q, dtype=np.int64),
            np.array(levels, dtype=np.float64),
            np.array(offsets, dtype=np.int64),
        )

    def rest_lambda_t_dense(self, factors: Sequence[np.ndarray], mat: np.ndarray) -> np.ndarray:
        """``Λ_restᵀ @ mat`` for a dense ``(q_rest, k)`` matrix, block by block."""
        pat = self.pattern
        mat2 = np.ascontiguousarray(mat, dtype=float).reshape(mat.shape[0], _width(mat))
        out = kernels.lambda_t_rest(
            self.rest_factors(factors), pat.rest_q, pat.row_block, pat.row_term, pat.row_base, mat2
        )
        return out.reshape(mat.shape)

    def cross_products(self, weights: np.ndarray | None = None) -> CrossProducts:
        """``ZᵀWZ`` in blocked form for observation weights ``W`` (default 1)."""
        return self.pattern.cross_products(weights)

    def z_transpose(
        self, mat: np.ndarray, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ZᵀW mat`` split into the leading ``(L₀, q₀, k)`` and trailing parts."""
        mat2 = np.ascontiguousarray(mat, dtype=float).reshape(mat.shape[0], _width(mat))
        pat = self.pattern
        w = pat.unit_weights if weights is None else np.ascontiguousarray(weights, dtype=float)
        return kernels.z_transpose(
            pat.lead_codes,
            pat.lead_x,
            pat.rest_codes,
            pat.rest_x,
            pat.rest_xoff,
            pat.rest_q,
            pat.rest_off,
            pat.n_lead_levels,
            pat.q_rest,
            mat2,
            w,
        )

    def z_times(self, lead: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """``Z @ b`` for effects given as leading ``(L₀, q₀)`` and trailing ``(q_rest,)``."""
        pat = self.pattern
        return kernels.z_times(
            pat.lead_codes,
            pat.lead_x,
            pat.rest_codes,
            pat.rest_x,
            pat.rest_xoff,
            pat.rest_q,
            pat.rest_off,
            np.ascontiguousarray(lead, dtype=float).reshape(pat.n_lead_levels, pat.q_lead),
            np.ascontiguousarray(rest, dtype=float).reshape(pat.q_rest),
        )

    def split_lead(self, lead: np.ndarray) -> list[np.ndarray]:
        """Split leading ``(L₀, q₀, ...)`` values into one array per leading block."""
        out, start = [], 0
        for i in self.lead:
            q = self.blocks[i].n_terms
            out.append(lead[:, start : start + q])
            start += q
        return out

    def split_rest(self, rest: np.ndarray) -> list[np.ndarray]:
        """Split trailing ``(q_rest, ...)`` values into ``(levels, q, ...)`` per block."""
        out, start = [], 0
        for i in self.rest:
            block = self.blocks[i]
            size = block.n_levels * block.n_terms
            out.append(
                rest[start : start + size].reshape(block.n_levels, block.n_terms, *rest.shape[1:])
            )
            start += size
        return out


@dataclass(frozen=True, eq=False)
class BlockPattern:
    """Index arrays of the blocked structure, prepared once per design.

    Every observation contributes ``w · z_a · z_b`` to a fixed set of
    entries of ``ZᵀZ``; their positions do not depend on the weights, so
    they are found once and reweighting (PIRLS) costs ``O(n)``. The layout
    of the coupling *pairs* is described in :mod:`hiermodels.mle.kernels`.

    Attributes
    ----------
    lead_codes : numpy.ndarray
        ``(n,)`` leading level of every observation.
    lead_x : numpy.ndarray
        ``(n, q₀)`` the leading covariates.
    rest_codes : numpy.ndarray
        ``(n, K)`` level of every observation in each trailing block.
    rest_x : numpy.ndarray
        ``(n, Σ q_j)`` the trailing covariates side by side.
    rest_xoff, rest_q, rest_off : numpy.ndarray
        Per trailing block: first column in ``rest_x`` (with a final end
        entry), number of terms, first row in the trailing partition.
    pair_of : numpy.ndarray
        ``(n, K)`` pair of every observation in each trailing block.
    pair_block, pair_row, pair_lead, pair_ptr : numpy.ndarray
        Per pair: trailing block, first trailing row, leading level, and
        start of its values (with a final end entry).
    lead_ptr : numpy.ndarray
        ``(L₀ + 1,)`` first pair of every leading level.
    row_block, row_term, row_base : numpy.ndarray
        Per trailing row: block, term, and the block-level's first row.
    pp_a, pp_b : numpy.ndarray
        Every two pairs of one leading level (``L₂₁L₂₁ᵀ`` gets a block from
        each), the second's rows not after the first's, sorted by rows so
        that the dense trailing block is updated in memory order. Both are
        empty when there are too many to index and the factorisation meets
        them as it goes; ``pp_a`` is empty and ``pp_b`` the leading level of
        every pair when the coupling is held densely
        (:attr:`dense_coupling`).
    n_lead_levels, q_rest : int
        ``L₀`` and the size of the trailing partition.
    """

    lead_codes: np.ndarray
    lead_x: np.ndarray
    rest_codes: np.ndarray
    rest_x: np.ndarray
    rest_xoff: np.ndarray
    rest_q: np.ndarray
    rest_off: np.ndarray
    pair_of: np.ndarray
    pair_block: np.ndarray
    pair_row: np.ndarray
    pair_lead: np.ndarray
    pair_ptr: np.ndarray
    lead_ptr: np.ndarray
    row_block: np.ndarray
    row_term: np.ndarray
    row_base: np.ndarray
    pp_a: np.ndarray
    pp_b: np.ndarray
    n_lead_levels: int
    q_rest: int

    @classmethod
    def build(
        cls, codes: np.ndarray, lead_x: np.ndarray, n_levels: int, rest: Sequence[RandomBlock]
    ) -> BlockPattern:
        """Index arrays for a leading factor and trailing blocks."""
        n, q0 = lead_x.shape
        codes = np.ascontiguousarray(codes, dtype=np.int64)
        n_rest = len(rest)
        rest_q = np.array([b.n_terms for b in rest], dtype=np.int64)
        sizes = np.array([b.n_levels * b.n_terms for b in rest], dtype=np.int64)
        rest_off = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        rest_xoff = np.concatenate([[0], np.cumsum(rest_q)]).astype(np.int64)
        rest_codes = np.zeros((n, n_rest), dtype=np.int64)
        for j, block in enumerate(rest):
            rest_codes[:, j] = block.codes
        rest_x = _side_by_side(rest, n)
        # pairs: (leading level, trailing block, trailing level) met by some observation
        keys, blocks_of, levels_of = [], [], []
        pair_of = np.zeros((n, n_rest), dtype=np.int64)
        for j, block in enumerate(rest):
            key = codes * block.n_levels + rest_codes[:, j]
            uniq = np.unique(key)
            keys.append(uniq)
            blocks_of.append(np.full(uniq.size, j, dtype=np.int64))
            levels_of.append(uniq % block.n_levels)
        if rest:
            all_keys = np.concatenate(keys)
            pair_block = np.concatenate(blocks_of)
            pair_level = np.concatenate(levels_of)
            pair_lead = np.concatenate([k // b.n_levels for k, b in zip(keys, rest, strict=True)])
            order = np.lexsort((pair_level, pair_block, pair_lead))
            pair_block, pair_level, pair_lead = (
                pair_block[order],
                pair_level[order],
                pair_lead[order],
            )
            position = np.empty(order.size, dtype=np.int64)
            position[order] = np.arange(order.size)
            start = 0
            for j, block in enumerate(rest):
                key = codes * block.n_levels + rest_codes[:, j]
                pair_of[:, j] = position[start + np.searchsorted(keys[j], key)]
                start += keys[j].size
            pair_q = rest_q[pair_block]
            pair_row = rest_off[pair_block] + pair_level * pair_q
            pair_ptr = np.concatenate([[0], np.cumsum(pair_q * q0)]).astype(np.int64)
            del all_keys
        else:
            pair_block = pair_row = pair_lead = np.zeros(0, dtype=np.int64)
            pair_ptr = np.zeros(1, dtype=np.int64)
        lead_ptr = np.concatenate(
            [[0], np.cumsum(np.bincount(pair_lead, minlength=n_levels))]
        ).astype(np.int64)
        q_rest = int(sizes.sum())
        row_block = np.repeat(np.arange(n_rest, dtype=np.int64), sizes)
        within = np.arange(q_rest, dtype=np.int64) - rest_off[row_block] if q_rest else row_block
        row_term = within % rest_q[row_block] if q_rest else row_block
        row_base = np.arange(q_rest, dtype=np.int64) - row_term
        per_lead = np.diff(lead_ptr)
        products = int(np.sum(per_lead * (per_lead + 1) // 2))
        dense, dense_bytes = _dense_coupling_pays(
            pair_lead, rest_q[pair_block] if rest else pair_block, q0, n_levels, q_rest
        )
        if dense:
            pp_a = np.zeros(0, dtype=np.int64)
            pp_b = np.ascontiguousarray(pair_lead, dtype=np.int64)
        elif products > MAX_PAIR_PRODUCTS:
            # a nearly complete crossing: the factorisation meets the pairs of each
            # leading level as it goes instead of indexing every two of them
            too_large = (
                f"; holding the coupling as a dense matrix would take {dense_bytes / 1024**3:.1f} "
                f"GiB, over the budget of {MAX_DENSE_COUPLING_BYTES / 1024**3:.1f} GiB "
                f"(hiermodels.mle.blocked.MAX_DENSE_COUPLING_BYTES)"
                if dense_bytes > MAX_DENSE_COUPLING_BYTES
                else ""
            )
            warnings.warn(
                f"the grouping factors are crossed almost completely: {pair_block.size:,} "
                f"pairs of a leading level ({n_levels:,} levels) and a trailing level meet "
                f"in the data, and every evaluation of the criterion updates the trailing "
                f"block with {products:.2g} products of them{too_large} — expect a long fit",
                UserWarning,
                stacklevel=2,
            )
            pp_a = pp_b = np.zeros(0, dtype=np.int64)
        else:
            pp_a, pp_b = kernels.pairs_of_pairs(
                lead_ptr, np.ascontiguousarray(pair_row, np.int64), q_rest
            )
        return cls(
            lead_codes=codes,
            lead_x=np.ascontiguousarray(lead_x, dtype=float),
            rest_codes=rest_codes,
            rest_x=rest_x,
            rest_xoff=rest_xoff,
            rest_q=rest_q,
            rest_off=rest_off,
            pair_of=pair_of,
            pair_block=np.ascontiguousarray(pair_block, dtype=np.int64),
            pair_row=np.ascontiguousarray(pair_row, dtype=np.int64),
            pair_lead=np.ascontiguousarray(pair_lead, dtype=np.int64),
            pair_ptr=pair_ptr,
            lead_ptr=lead_ptr,
            row_block=row_block,
            row_term=np.ascontiguousarray(row_term, dtype=np.int64),
            row_base=np.ascontiguousarray(row_base, dtype=np.int64),
            pp_a=pp_a,
            pp_b=pp_b,
            n_lead_levels=int(n_levels),
            q_rest=q_rest,
        )

    @property
    def dense_coupling(self) -> bool:
        """Whether the factorisation holds the coupling ``L₂₁`` as a dense matrix.

        Chosen for a nearly complete crossing, where one BLAS product beats
        the loops over every two pairs of a leading level (see
        :meth:`build`).
        """
        return bool(kernels.holds_dense_coupling(self.pp_a, self.pp_b))

    @cached_property
    def unit_weights(self) -> np.ndarray:
        """Weights of one for every observation."""
        return np.ones(self.lead_codes.size)

    @property
    def q_lead(self) -> int:
        """Terms per leading level."""
        return int(self.lead_x.shape[1])

    def cross_products(self, weights: np.ndarray | None = None) -> CrossProducts:
        """``ZᵀWZ`` in blocked form."""
        w = self.unit_weights if weights is None else np.ascontiguousarray(weights, dtype=float)
        a11, a21, a22 = kernels.cross_products(
            self.lead_codes,
            self.lead_x,
            self.rest_codes,
            self.rest_x,
            self.rest_xoff,
            self.rest_q,
            self.rest_off,
            self.pair_of,
            self.pair_ptr,
            self.n_lead_levels,
            self.q_rest,
            w,
        )
        return CrossProducts(a11=a11, a21=a21, a22=a22)


@dataclass(frozen=True, eq=False)
class CrossProducts:
    """``ZᵀWZ`` split by the leading / trailing partition.

    Attributes
    ----------
    a11 : numpy.ndarray
        ``(L₀, q₀, q₀)`` diagonal blocks of the leading partition.
    a21 : numpy.ndarray
        Coupling of trailing and leading effects, flat in pair layout.
    a22 : numpy.ndarray
        ``(q_rest, q_rest)`` trailing block.
    """

    a11: np.ndarray
    a21: np.ndarray
    a22: np.ndarray


@dataclass(frozen=True, eq=False)
class BlockedFactor:
    """Lower Cholesky factor ``L`` of ``ΛᵀZᵀWZΛ + I`` in blocked form.

    Attributes
    ----------
    l11 : numpy.ndarray
        ``(L₀, q₀, q₀)`` leading diagonal blocks.
    l21_pairs : numpy.ndarray
        Coupling block, flat in pair layout.
    l22 : numpy.ndarray
        ``(q_rest, q_rest)`` dense trailing factor.
    pattern : BlockPattern
        The structure the factor was computed for.
    """

    l11: np.ndarray
    l21_pairs: np.ndarray
    l22: np.ndarray
    pattern: BlockPattern

    def logdet(self) -> float:
        """``log |L|²`` = log-determinant of ``ΛᵀZᵀWZΛ + I``."""
        diag1 = np.diagonal(self.l11, axis1=1, axis2=2)
        total = 2.0 * float(np.sum(np.log(diag1)))
        if self.l22.size:
            total += 2.0 * float(np.sum(np.log(np.diag(self.l22))))
        return total

    def trailing_inverse(self) -> np.ndarray:
        """The lower triangle of ``C₂₂⁻¹ = (L₂₂L₂₂ᵀ)⁻¹`` (LAPACK's ``dpotri``; ``0 × 0``
        without a trailing block), as the kernels take it.

        Raises
        ------
        numpy.linalg.LinAlgError
            When the trailing factor is singular.
        """
        if not self.l22.size:
            return np.zeros((0, 0), order="F")
        if _is_diagonal(self.l22):
            return np.asfortranarray(np.diag(1.0 / np.diag(self.l22) ** 2))
        c22_inv, info = sla.lapack.dpotri(self.l22, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("the trailing factor of ΛᵀZᵀWZΛ + I is singular")
        return c22_inv

    def forward(self, c1: np.ndarray, c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve ``L w = c`` for ``c`` split as ``(L₀, q₀, k)`` and ``(q_rest, k)``."""
        pat = self.pattern
        return kernels.forward(
            self.l11,
            self.l21_pairs,
            self.l22,
            pat.rest_q,
            pat.pair_block,
            pat.pair_row,
            pat.pair_ptr,
            pat.lead_ptr,
            np.ascontiguousarray(c1, dtype=float),
            _columns(c2, c1.shape[-1]),
        )

    def backward(self, w1: np.ndarray, w2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve ``Lᵀ u = w`` for ``w`` split as ``(L₀, q₀, k)`` and ``(q_rest, k)``."""
        pat = self.pattern
        return kernels.backward(
            self.l11,
            self.l21_pairs,
            self.l22,
            pat.rest_q,
            pat.pair_block,
            pat.pair_row,
            pat.pair_ptr,
            pat.lead_ptr,
            np.ascontiguousarray(w1, dtype=float),
            _columns(w2, w1.shape[-1]),
        )

    def inverse_diagonal_blocks(
        self, rest_sizes: Sequence[tuple[int, int]]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Diagonal blocks of ``(LLᵀ)⁻¹``, per level.

        Parameters
        ----------
        rest_sizes : sequence of (levels, q)
            Structure of the trailing blocks.

        Returns
        -------
        lead : numpy.ndarray
            ``(L₀, q₀, q₀)`` blocks for the leading levels.
        rest : list of numpy.ndarray
            ``(levels, q, q)`` blocks for every trailing block.
        """
        pat = self.pattern
        c22_inv = self.trailing_inverse()
        lead, rows = kernels.inverse_diagonal_blocks(
            self.l11,
            self.l21_pairs,
            c22_inv,
            pat.rest_q,
            pat.row_block,
            pat.pair_block,
            pat.pair_row,
            pat.pair_ptr,
            pat.lead_ptr,
            pat.dense_coupling,
        )
        rest: list[np.ndarray] = []
        offset = 0
        for levels, q in rest_sizes:
            size = levels * q
            rest.append(rows[offset : offset + size, :q].reshape(levels, q, q))
            offset += size
        return lead, rest


def _dense_coupling_pays(
    pair_lead: np.ndarray, pair_q: np.ndarray, q0: int, n_levels: int, q_rest: int
) -> tuple[bool, int]:
    """Whether the coupling is to be held densely, and the bytes that would take.

    The rank update ``L₂₁L₂₁ᵀ`` of the trailing block and the product
    ``C₂₂⁻¹L₂₁`` of the gradient cost, with the pairs, a multiply-add for
    every two trailing rows a leading level reaches and every leading term,
    ``Σ_m k_m² q₀`` (``k_m`` the rows the pairs of level ``m`` reach); held
    densely, ``q_rest² L₀ q₀`` multiply-adds of one BLAS product each, which
    run :data:`DENSE_COUPLING_SPEEDUP` times faster. Dense pays when
    ``q_rest² L₀ ≤ DENSE_COUPLING_SPEEDUP · Σ_m k_m²`` — when a leading level
    reaches, on average (root mean square), more than
    ``1/√DENSE_COUPLING_SPEEDUP`` of the trailing rows — provided the dense
    products are worth a BLAS call (:data:`MIN_DENSE_COUPLING_WORK`) and the
    two dense matrices fit in :data:`MAX_DENSE_COUPLING_BYTES`. Nested
    factors, sparse crossings and small crossings keep the pairs.

    Parameters
    ----------
    pair_lead, pair_q : numpy.ndarray
        Leading level and trailing rows of every pair.
    q0, n_levels, q_rest : int
        Leading terms and levels, trailing rows.
    """
    dense_bytes = 2 * 8 * q_rest * n_levels * q0
    if not q_rest or not pair_q.size:
        return False, dense_bytes
    rows_of_level = np.bincount(pair_lead, weights=pair_q, minlength=n_levels)
    pair_work = float(np.sum(rows_of_level**2))
    dense_work = float(q_rest) ** 2 * n_levels * q0
    pays = MIN_DENSE_COUPLING_WORK <= dense_work <= DENSE_COUPLING_SPEEDUP * pair_work * q0
    return bool(pays and dense_bytes <= MAX_DENSE_COUPLING_BYTES), dense_bytes


def _side_by_side(blocks: Sequence[RandomBlock], nobs: int = 0) -> np.ndarray:
    """The blocks' covariates as one C-contiguous float array (``(nobs, 0)`` for none)."""
    if not blocks:
        return np.zeros((nobs, 0))
    if len(blocks) == 1:
        return np.ascontiguousarray(blocks[0].X, dtype=float)
    return np.ascontiguousarray(np.hstack([np.asarray(b.X, dtype=float) for b in blocks]))


def _width(values: np.ndarray) -> int:
    """Columns of ``values`` seen as a matrix with one row per leading index."""
    return int(np.prod(values.shape[1:], dtype=np.int64))


def _columns(values: np.ndarray, k: int) -> np.ndarray:
    """Trailing values as a contiguous ``(q_rest, k)`` array."""
    return np.ascontiguousarray(values, dtype=float).reshape(values.shape[0], k)


def factorize(
    layout: ReLayout, cross: CrossProducts, factors: Sequence[np.ndarray]
) -> BlockedFactor:
    """Factorise ``ΛᵀZᵀWZΛ + I`` for relative covariance factors ``factors``.

    Parameters
    ----------
    layout : ReLayout
        The random-effects ordering and partition.
    cross : CrossProducts
        ``ZᵀWZ`` in blocked form.
    factors : sequence of numpy.ndarray
        One lower-triangular ``T`` per block, in θ order.

    Returns
    -------
    BlockedFactor

    Raises
    ------
    numpy.linalg.LinAlgError
        When the matrix is not numerically positive definite.
    """
    return factorize_with(
        layout.pattern, cross, layout.lead_factor(factors), layout.rest_factors(factors)
    )


def _is_diagonal(matrix: np.ndarray) -> bool:
    """Whether a square matrix has no nonzero entry off its diagonal."""
    return int(np.count_nonzero(matrix)) == int(np.count_nonzero(np.diag(matrix)))


def trailing_factor(s22: np.ndarray) -> np.ndarray:
    """The lower Cholesky factor (Fortran order) of the trailing Schur complement.

    Raises
    ------
    numpy.linalg.LinAlgError
        When it is not positive definite.
    """
    if s22.size and _is_diagonal(s22):
        # nested scalar terms leave the Schur complement diagonal: no dense Cholesky
        diagonal = np.diag(s22)
        if not np.all(diagonal > 0.0):
            raise np.linalg.LinAlgError("trailing block of ΛᵀZᵀWZΛ + I is not positive definite")
        return np.asfortranarray(np.diag(np.sqrt(diagonal)))
    if s22.size:
        # s22 is symmetric, so its transpose is the Fortran-ordered array LAPACK wants
        l22, info = sla.lapack.dpotrf(s22.T, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            raise np.linalg.LinAlgError("trailing block of ΛᵀZᵀWZΛ + I is not positive definite")
        return l22
    return np.zeros((0, 0), order="F")


def factorize_with(
    pattern: BlockPattern, cross: CrossProducts, t0: np.ndarray, rest_t: np.ndarray
) -> BlockedFactor:
    """:func:`factorize` for the leading factor ``T₀`` and stacked trailing factors."""
    l11, l21, s22, ok = kernels.factorize(
        cross.a11,
        cross.a21,
        cross.a22,
        np.ascontiguousarray(t0, dtype=float),
        rest_t,
        pattern.rest_q,
        pattern.row_block,
        pattern.row_term,
        pattern.row_base,
        pattern.pair_block,
        pattern.pair_row,
        pattern.pair_ptr,
        pattern.lead_ptr,
        pattern.pp_a,
        pattern.pp_b,
    )
    if not ok:
        raise np.linalg.LinAlgError("a leading block of ΛᵀZᵀWZΛ + I is not positive definite")
    l22 = trailing_factor(s22)
    return BlockedFactor(l11=l11, l21_pairs=l21, l22=l22, pattern=pattern)
