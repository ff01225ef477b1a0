"""Designs whose rows stand for many: root rows of cell moments, and aggregated cells.

A Gaussian mixed model depends on its data only through cross products of
``[1 X Z y]`` (weighted by the precision weights): ``XᵀWX``, ``ZᵀWZ``,
``ZᵀWy``, ``yᵀWy`` and so on. Rows that share every grouping level — a
*cell* — enter ``Z`` identically, so a cell's rows can be replaced by any
rows with the same second moments: the rows of a square root ``R`` of the
cell's moment matrix ``S = Σ w v vᵀ`` (``RᵀR = S``, at most one row per
column of ``v``). Every engine that works on cross products (the profiled
criterion, the conditional modes and variances, the marginal likelihood of
full Bayes, the standardisation) gives on these *root rows* exactly what it
gives on the rows; what the roots lose is kept in :class:`CompressedRows`:
the number of observations, ``Σ log w``, and the rows per level.

A binomial or Poisson GLMM is compressed differently, by aggregating rows
whose covariates, levels (and, for the binomial, offsets) coincide into one
cell: successes and trials, or counts and exposure, add. Such a design is
an ordinary design of the cells; :attr:`CompressedRows.loglik_constant` is
what the rows' log-likelihood adds to the cells' (the combinatorial terms).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["CompressedRows", "root_rows"]

#: Remaining diagonal entry below which a cell's scaled moment matrix (unit
#: diagonal) holds nothing but round-off.
_NEGLIGIBLE_PIVOT = 1e-14


@dataclass(frozen=True, eq=False)
class CompressedRows:
    """What a design built from summed statistics keeps of the rows it stands for.

    Attributes
    ----------
    kind : {"roots", "cells"}
        ``"roots"``: a Gaussian design of root rows of cell moments;
        ``"cells"``: a GLMM design of aggregated cells.
    nobs : int
        Number of observations (rows of the data) used.
    level_counts : dict of str to numpy.ndarray
        Rows per level of every grouping factor, in the factor's level order.
    ones : numpy.ndarray or None
        ``"roots"``: the root rows of the constant column (what ``1`` is on
        these rows; with precision weights, of ``√w``).
    log_weight_sum : float
        ``Σ log w`` of the precision weights (0 without).
    weighted : bool
        Whether the rows had precision weights (inside the root rows).
    response_shift : float
        ``"roots"``: the response's root rows are those of ``y − c``, this
        ``c`` (near the response's mean, so that a response far from zero
        keeps its digits); the constant's root rows times ``c`` add it back.
    loglik_constant : float
        The rows' log-likelihood minus the cells' at any parameter value
        (``"cells"``; 0 for roots).
    n_cells : int
        Number of cells the rows were reduced to.
    n_partitions : int
        Partitions of the source frame.
    statistics_bytes : int
        Size of the reduced statistics brought to the driver.
    seconds : float
        Wall time of the pass over the rows.
    source : object
        The Dask DataFrame the statistics were computed from (row-level
        outputs are computed on it); ``None`` once pickled.
    scheduler : str
        The scheduler the pass ran on (``"threads"``, ``"distributed"``, ...).
    """

    kind: Literal["roots", "cells"]
    nobs: int
    level_counts: dict[str, np.ndarray]
    ones: np.ndarray | None = None
    log_weight_sum: float = 0.0
    weighted: bool = False
    response_shift: float = 0.0
    loglik_constant: float = 0.0
    n_cells: int = 0
    n_partitions: int = 0
    statistics_bytes: int = 0
    seconds: float = 0.0
    source: Any = field(default=None, repr=False)
    scheduler: str = ""

    def __getstate__(self) -> dict[str, Any]:
        """The fields without the source frame, which belongs to a live scheduler."""
        return {**self.__dict__, "source": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def describe(self) -> str:
        """One line for the fit log: rows, cells, statistics and the pass's time."""
        what = "root rows of cell moments" if self.kind == "roots" else "aggregated cells"
        return (
            f"{self.nobs:,} rows in {self.n_partitions} partitions reduced to "
            f"{self.n_cells:,} cells ({what}; {self.statistics_bytes / 2**20:.1f} MiB of "
            f"statistics on the driver) in {self.seconds:.1f} s on the {self.scheduler} scheduler"
        )


def root_rows(moments: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose second moments are the cells' moment matrices.

    Parameters
    ----------
    moments : numpy.ndarray
        ``(cells, m, m)`` symmetric positive semi-definite moment matrices
        ``Σ w (v − s)(v − s)ᵀ`` of every cell, about the column shifts
        ``s``; column 0 is the constant (not shifted).
    shift : numpy.ndarray
        ``(m,)`` the shifts ``s`` (``s[0] = 0``).

    Returns
    -------
    rows : numpy.ndarray
        ``(r, m)`` root rows of ``v`` itself: for every cell, rows ``R``
        with ``RᵀR = Σ w v vᵀ`` — one per pivot of its moment matrix that is
        not round-off.
    cell : numpy.ndarray
        ``(r,)`` int64 the cell of every root row.

    Notes
    -----
    Each matrix is scaled to unit diagonal, so columns of very different sizes
    keep their relative accuracy, and then taken apart by a Cholesky
    factorisation with diagonal pivoting, run on all cells at once: each step
    takes the row of the largest remaining diagonal entry, ``r = S_p / √S_pp``,
    and subtracts ``r rᵀ``. A cell stops when its remaining diagonal is
    round-off; the remainder's entries are bounded by that diagonal, so the
    rows reproduce the matrix to round-off whatever its rank. The moments are
    taken about shifts near the columns' means, so a response far from zero
    keeps its spread, and the shift is added back to the root rows, which are
    linear in the columns.
    """
    n_cells, m, _ = moments.shape
    diagonal = np.einsum("cii->ci", moments)
    scale = np.sqrt(np.where(diagonal > 0.0, diagonal, 1.0))
    remainder = moments / scale[:, :, None] / scale[:, None, :]
    cells = np.arange(n_cells)
    roots = np.zeros((n_cells, m, m))
    kept = np.zeros((n_cells, m), dtype=bool)
    for step in range(m):
        left = np.einsum("cii->ci", remainder)
        pivot = np.argmax(left, axis=1)
        largest = left[cells, pivot]
        active = largest > _NEGLIGIBLE_PIVOT
        if not active.any():
            break
        row = remainder[cells, pivot, :] / np.sqrt(np.where(active, largest, 1.0))[:, None]
        row[~active] = 0.0
        roots[:, step, :] = row
        kept[:, step] = active
        remainder -= row[:, :, None] * row[:, None, :]
    roots *= scale[:, None, :]
    cell_of, direction = np.nonzero(kept)
    rows = roots[cell_of, direction]
    # a root row's sign is free: the constant's entry non-negative makes a cell of
    # one row its row itself
    rows *= np.where(rows[:, :1] < 0.0, -1.0, 1.0)
    # v = (v − s) + s · 1, and the constant is column 0
    rows += rows[:, :1] * shift[None, :]
    return np.ascontiguousarray(rows), cell_of.astype(np.int64)
