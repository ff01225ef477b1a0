"""Blocked sparse Cholesky factorisation of ``ΛᵀZᵀWZΛ + I``.

The random effects are ordered as lme4 orders its terms — by number of
levels, largest first. All terms on the grouping factor with the most
levels form the *leading* partition: every observation belongs to exactly
one of its levels, so its part of ``ZᵀWZ`` is block diagonal (one small
``q₀ × q₀`` block per level) and is factorised level by level. The other
terms form the *trailing* partition, whose Schur complement is dense and
small (hundreds to a few thousand columns); the coupling between the two is
kept sparse. This is the structure MixedModels.jl exploits: one grouping
factor, nested factors and crossed designs such as InstEval all factorise
in milliseconds without a general sparse Cholesky.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from hiermodels.mle.covariance import ThetaLayout
from hiermodels.spec.design import Design, RandomBlock

__all__ = ["ReLayout", "CrossProducts", "BlockedFactor", "factorize"]


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
    Z_rest : scipy.sparse.csr_matrix
        ``(n, q_rest)`` random-effects matrix of the trailing terms.
    plan : CrossProductPlan
        Index plans for the cross products.
    order : tuple of int
        ``order[k]`` is the index in the design's blocks of ``blocks[k]``.
    """

    blocks: tuple[RandomBlock, ...]
    theta: ThetaLayout
    lead: tuple[int, ...]
    rest: tuple[int, ...]
    lead_codes: np.ndarray
    lead_X: np.ndarray
    Z_rest: sp.csr_matrix
    plan: CrossProductPlan
    order: tuple[int, ...]

    @classmethod
    def from_design(cls, design: Design) -> ReLayout:
        """Order and partition the random-effect blocks of ``design``."""
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
        lead_X = np.hstack([blocks[i].X for i in lead])
        n = design.nobs
        if rest:
            z_rest = sp.hstack([blocks[i].Z() for i in rest], format="csr")
        else:
            z_rest = sp.csr_matrix((n, 0))
        plan = CrossProductPlan.build(
            blocks[0].codes, lead_X, blocks[0].n_levels, [blocks[i] for i in rest]
        )
        return cls(
            blocks=blocks,
            theta=ThetaLayout(tuple(b.n_terms for b in blocks)),
            lead=lead,
            rest=rest,
            lead_codes=blocks[0].codes,
            lead_X=lead_X,
            Z_rest=z_rest,
            plan=plan,
            order=tuple(order),
        )

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
        return int(self.Z_rest.shape[1])

    @property
    def all_scalar(self) -> bool:
        """Whether every block has a single term, so that ``Λ`` is diagonal."""
        return all(b.n_terms == 1 for b in self.blocks)

    def rest_lambda_diagonal(self, factors: Sequence[np.ndarray]) -> np.ndarray:
        """Diagonal of ``Λ_rest`` when every trailing block is scalar."""
        if not self.rest:
            return np.zeros(0)
        return np.concatenate(
            [np.full(self.blocks[i].n_levels, factors[i][0, 0]) for i in self.rest]
        )

    def lead_factor(self, factors: Sequence[np.ndarray]) -> np.ndarray:
        """Block-diagonal ``q₀ × q₀`` factor shared by every leading level."""
        return sla.block_diag(*[factors[i] for i in self.lead])

    def rest_lambda(self, factors: Sequence[np.ndarray]) -> sp.csr_matrix:
        """Sparse block-diagonal ``Λ`` of the trailing partition."""
        if not self.rest:
            return sp.csr_matrix((0, 0))
        parts = [
            sp.kron(sp.identity(self.blocks[i].n_levels), sp.csr_matrix(factors[i]))
            for i in self.rest
        ]
        return sp.block_diag(parts, format="csr")

    def rest_lambda_t_dense(self, factors: Sequence[np.ndarray], mat: np.ndarray) -> np.ndarray:
        """``Λ_restᵀ @ mat`` for a dense ``(q_rest, k)`` matrix, block by block."""
        out = np.empty_like(mat)
        start = 0
        for i in self.rest:
            block = self.blocks[i]
            size = block.n_levels * block.n_terms
            chunk = mat[start : start + size].reshape(block.n_levels, block.n_terms, -1)
            out[start : start + size] = np.einsum("ji,ljk->lik", factors[i], chunk).reshape(
                size, -1
            )
            start += size
        return out

    def cross_products(self, weights: np.ndarray | None = None) -> CrossProducts:
        """``ZᵀWZ`` in blocked form for observation weights ``W`` (default 1)."""
        return self.plan.cross_products(weights)

    def z_transpose(
        self, mat: np.ndarray, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``ZᵀW mat`` split into the leading ``(L₀, q₀, k)`` and trailing parts."""
        mat2 = mat.reshape(mat.shape[0], -1)
        if weights is not None:
            mat2 = mat2 * weights[:, None]
        plan = self.plan
        size = self.n_lead_levels * self.q_lead
        lead = np.empty((size, mat2.shape[1]))
        for c in range(mat2.shape[1]):
            lead[:, c] = np.bincount(
                plan.lead_cols.ravel(), (self.lead_X * mat2[:, c : c + 1]).ravel(), size
            )
        rest = np.asarray(self.Z_rest.T @ mat2)
        return lead.reshape(self.n_lead_levels, self.q_lead, -1), rest

    def z_times(self, lead: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """``Z @ b`` for effects given as leading ``(L₀, q₀)`` and trailing ``(q_rest,)``."""
        out = np.einsum("nq,nq->n", self.lead_X, lead[self.lead_codes])
        if self.rest:
            out = out + self.Z_rest @ rest
        return out

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
class CrossProductPlan:
    """Index arrays that turn ``ZᵀWZ`` into a few weighted ``bincount`` calls.

    Every observation contributes ``w · z_a · z_b`` to a fixed set of
    entries of ``ZᵀZ``; their positions do not depend on the weights, so
    they are found once and reweighting (PIRLS) costs ``O(n)``.

    Attributes
    ----------
    lead_cols : numpy.ndarray
        ``(n, q₀)`` column of each leading covariate in the leading partition.
    lead_vals : numpy.ndarray
        ``(n, q₀)`` the leading covariates.
    rest_cols, rest_vals : numpy.ndarray
        ``(n, m)`` columns and values of the trailing covariates.
    n_lead, n_rest : int
        Sizes of the two partitions.
    a21_indptr, a21_indices : numpy.ndarray
        CSR pattern of the coupling block.
    a21_slot : numpy.ndarray
        ``(n, m, q₀)`` position of each product in the coupling block's data.
    """

    lead_cols: np.ndarray
    lead_vals: np.ndarray
    rest_cols: np.ndarray
    rest_vals: np.ndarray
    n_lead: int
    n_rest: int
    a21_indptr: np.ndarray
    a21_indices: np.ndarray
    a21_slot: np.ndarray

    @classmethod
    def build(
        cls, codes: np.ndarray, lead_x: np.ndarray, n_levels: int, rest: Sequence[RandomBlock]
    ) -> CrossProductPlan:
        """Precompute the index arrays for a leading factor and trailing blocks."""
        n, q0 = lead_x.shape
        lead_cols = codes[:, None] * q0 + np.arange(q0)[None, :]
        cols, vals, offset = [], [], 0
        for block in rest:
            q = block.n_terms
            cols.append(offset + block.codes[:, None] * q + np.arange(q)[None, :])
            vals.append(np.asarray(block.X, dtype=float))
            offset += block.n_levels * q
        rest_cols = np.hstack(cols) if cols else np.zeros((n, 0), dtype=np.int64)
        rest_vals = np.hstack(vals) if vals else np.zeros((n, 0))
        n_lead = n_levels * q0
        keys = (rest_cols[:, :, None] * n_lead + lead_cols[:, None, :]).ravel()
        uniq, slot = np.unique(keys, return_inverse=True)
        rows = uniq // n_lead
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=offset))])
        return cls(
            lead_cols=lead_cols,
            lead_vals=np.asarray(lead_x, dtype=float),
            rest_cols=rest_cols,
            rest_vals=rest_vals,
            n_lead=n_lead,
            n_rest=offset,
            a21_indptr=indptr,
            a21_indices=uniq % n_lead,
            a21_slot=slot.reshape(n, rest_cols.shape[1], q0),
        )

    def cross_products(self, weights: np.ndarray | None = None) -> CrossProducts:
        """``ZᵀWZ`` in blocked form."""
        n, q0 = self.lead_vals.shape
        w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
        wx = self.lead_vals * w[:, None]
        flat11 = (self.lead_cols[:, :, None] * q0 + np.arange(q0)[None, None, :]).ravel()
        products = (wx[:, :, None] * self.lead_vals[:, None, :]).ravel()
        a11 = np.bincount(flat11, products, self.n_lead * q0).reshape(-1, q0, q0)
        if self.n_rest == 0:
            return CrossProducts(a11, sp.csr_matrix((0, self.n_lead)), np.zeros((0, 0)))
        data = np.bincount(
            self.a21_slot.ravel(),
            (self.rest_vals[:, :, None] * wx[:, None, :]).ravel(),
            self.a21_indices.size,
        )
        a21 = sp.csr_matrix(
            (data, self.a21_indices, self.a21_indptr), shape=(self.n_rest, self.n_lead)
        )
        wz = self.rest_vals * w[:, None]
        flat22 = (self.rest_cols[:, :, None] * self.n_rest + self.rest_cols[:, None, :]).ravel()
        a22 = np.bincount(
            flat22, (wz[:, :, None] * self.rest_vals[:, None, :]).ravel(), self.n_rest**2
        ).reshape(self.n_rest, self.n_rest)
        return CrossProducts(a11=a11, a21=a21, a22=a22)


@dataclass(frozen=True, eq=False)
class CrossProducts:
    """``ZᵀWZ`` split by the leading / trailing partition.

    Attributes
    ----------
    a11 : numpy.ndarray
        ``(L₀, q₀, q₀)`` diagonal blocks of the leading partition.
    a21 : scipy.sparse.csr_matrix
        ``(q_rest, L₀ q₀)`` coupling of trailing and leading effects.
    a22 : numpy.ndarray
        ``(q_rest, q_rest)`` trailing block.
    """

    a11: np.ndarray
    a21: sp.csr_matrix
    a22: np.ndarray

    @property
    def a21_rows(self) -> np.ndarray:
        """Row index of every stored entry of ``a21`` (CSR order)."""
        return np.repeat(np.arange(self.a21.shape[0]), np.diff(self.a21.indptr))


@dataclass(frozen=True, eq=False)
class BlockedFactor:
    """Lower Cholesky factor ``L`` of ``ΛᵀZᵀWZΛ + I`` in blocked form.

    Attributes
    ----------
    l11, l11_inv : numpy.ndarray
        ``(L₀, q₀, q₀)`` leading diagonal blocks and their inverses.
    l21 : scipy.sparse.csr_matrix
        ``(q_rest, L₀ q₀)`` sparse coupling block.
    l22 : numpy.ndarray
        ``(q_rest, q_rest)`` dense trailing factor.
    """

    l11: np.ndarray
    l11_inv: np.ndarray
    l21: sp.csr_matrix
    l22: np.ndarray

    def logdet(self) -> float:
        """``log |L|²`` = log-determinant of ``ΛᵀZᵀWZΛ + I``."""
        diag1 = np.diagonal(self.l11, axis1=1, axis2=2)
        total = 2.0 * float(np.sum(np.log(diag1)))
        if self.l22.size:
            total += 2.0 * float(np.sum(np.log(np.diag(self.l22))))
        return total

    def forward(self, c1: np.ndarray, c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve ``L w = c`` for ``c`` split as ``(L₀, q₀, k)`` and ``(q_rest, k)``."""
        w1 = self.l11_inv @ c1
        if self.l22.size == 0:
            return w1, c2
        rhs = c2 - self.l21 @ w1.reshape(-1, w1.shape[-1])
        w2 = sla.solve_triangular(self.l22, rhs, lower=True, check_finite=False)
        return w1, w2

    def backward(self, w1: np.ndarray, w2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve ``Lᵀ u = w`` for ``w`` split as ``(L₀, q₀, k)`` and ``(q_rest, k)``."""
        if self.l22.size:
            u2 = sla.solve_triangular(self.l22, w2, lower=True, trans="T", check_finite=False)
            w1 = w1 - np.asarray(self.l21.T @ u2).reshape(w1.shape)
        else:
            u2 = w2
        u1 = np.swapaxes(self.l11_inv, 1, 2) @ w1
        return u1, u2

    def inverse_diagonal_blocks(
        self, rest_sizes: Sequence[tuple[int, int]], chunk: int = 4096
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Diagonal blocks of ``(LLᵀ)⁻¹``, per level.

        Parameters
        ----------
        rest_sizes : sequence of (levels, q)
            Structure of the trailing blocks.
        chunk : int
            Leading columns processed at once (bounds memory for large ``L₀``).

        Returns
        -------
        lead : numpy.ndarray
            ``(L₀, q₀, q₀)`` blocks for the leading levels.
        rest : list of numpy.ndarray
            ``(levels, q, q)`` blocks for every trailing block.
        """
        lead = np.swapaxes(self.l11_inv, 1, 2) @ self.l11_inv
        rest: list[np.ndarray] = []
        if self.l22.size == 0:
            return lead, [np.zeros((lv, q, q)) for lv, q in rest_sizes]
        l22_inv = sla.solve_triangular(
            self.l22, np.eye(self.l22.shape[0]), lower=True, check_finite=False
        )
        n_lead, q0, _ = self.l11.shape
        # The (2,1) block of L⁻¹ is −L22⁻¹ L21 L11⁻¹; its columns add to the leading blocks.
        l11_inv_bd = _block_diag_sparse(self.l11_inv)
        coupling = sp.csr_matrix(self.l21 @ l11_inv_bd)
        for start in range(0, n_lead * q0, chunk * q0):
            stop = min(start + chunk * q0, n_lead * q0)
            cols = l22_inv @ coupling[:, start:stop].toarray()
            blocks = cols.T.reshape(-1, q0, cols.shape[0])
            lead[start // q0 : stop // q0] += blocks @ np.swapaxes(blocks, 1, 2)
        offset = 0
        for levels, q in rest_sizes:
            size = levels * q
            cols = l22_inv[:, offset : offset + size]
            blocks = cols.T.reshape(levels, q, -1)
            rest.append(blocks @ np.swapaxes(blocks, 1, 2))
            offset += size
        return lead, rest


def _block_diag_sparse(blocks: np.ndarray) -> sp.bsr_matrix:
    n_blocks, q, _ = blocks.shape
    return sp.bsr_matrix(
        (blocks, np.arange(n_blocks), np.arange(n_blocks + 1)), shape=(n_blocks * q, n_blocks * q)
    )


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
    """
    t0 = layout.lead_factor(factors)
    q0 = t0.shape[0]
    s11 = t0.T @ cross.a11 @ t0 + np.eye(q0)
    if q0 == 1:
        l11 = np.sqrt(s11)
        l11_inv = 1.0 / l11
    else:
        l11 = np.linalg.cholesky(s11)
        l11_inv = np.linalg.inv(l11)
    if not layout.rest:
        return BlockedFactor(
            l11=l11,
            l11_inv=l11_inv,
            l21=sp.csr_matrix((0, l11.shape[0] * q0)),
            l22=np.zeros((0, 0)),
        )
    if layout.all_scalar:
        # Λ is diagonal: scaling the stored entries replaces two sparse products.
        lam_rest = layout.rest_lambda_diagonal(factors)
        lam_lead = np.tile(np.diag(t0), layout.n_lead_levels)
        a21 = cross.a21
        scale = lam_rest[cross.a21_rows] * lam_lead[a21.indices]
        if q0 == 1:
            scale = scale * l11_inv[a21.indices, 0, 0]
            l21 = sp.csr_matrix((a21.data * scale, a21.indices, a21.indptr), shape=a21.shape)
        else:
            s21 = sp.csr_matrix((a21.data * scale, a21.indices, a21.indptr), shape=a21.shape)
            l21 = sp.csr_matrix(s21 @ _block_diag_sparse(np.swapaxes(l11_inv, 1, 2)))
        s22 = cross.a22 * np.outer(lam_rest, lam_rest)
    else:
        lam_rest_mat = layout.rest_lambda(factors)
        lam_lead_mat = sp.kron(sp.identity(layout.n_lead_levels), sp.csr_matrix(t0), format="csr")
        s21 = lam_rest_mat.T @ cross.a21 @ lam_lead_mat
        l21 = sp.csr_matrix(s21 @ _block_diag_sparse(np.swapaxes(l11_inv, 1, 2)))
        s22 = layout.rest_lambda_t_dense(factors, layout.rest_lambda_t_dense(factors, cross.a22).T)
    s22 = s22 + np.eye(s22.shape[0]) - (l21 @ l21.T).toarray()
    l22, info = sla.lapack.dpotrf(s22, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError("trailing block of ΛᵀZᵀWZΛ + I is not positive definite")
    return BlockedFactor(l11=l11, l11_inv=l11_inv, l21=l21, l22=l22)
