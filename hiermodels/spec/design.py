"""Turn a :class:`FormulaSpec` and a data frame into a :class:`Design`.

The design holds plain numpy arrays (response, fixed-effects matrix, one
block per random-effect term) plus the labels needed to put names back on
every number: fixed-effect column names, grouping-factor level labels and
random-effect term names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from hiermodels.spec.families import Family
from hiermodels.spec.formula import FormulaSpec

__all__ = ["Design", "RandomBlock", "DesignError", "build_design"]


class DesignError(ValueError):
    """The data do not fit the formula; the message names column, rows or level."""


@dataclass(frozen=True, eq=False)
class RandomBlock:
    """One random-effect term ``(expr | group)`` evaluated on the data.

    Attributes
    ----------
    group : str
        Grouping-factor name (``"Subject"``, ``"schoolid:classid"``).
    factors : tuple of str
        The data columns forming the grouping factor.
    terms : tuple of str
        Names of the term's columns, e.g. ``("Intercept", "Days")``.
    levels : tuple of str
        The grouping factor's level labels as they appear in the data
        (components of an interaction joined by ``":"``), in sorted order.
    codes : numpy.ndarray
        ``(n,)`` int64 index into ``levels`` for every observation.
    X : numpy.ndarray
        ``(n, q)`` float64 model matrix of the term's columns.
    """

    group: str
    factors: tuple[str, ...]
    terms: tuple[str, ...]
    levels: tuple[str, ...]
    codes: np.ndarray
    X: np.ndarray

    @property
    def n_levels(self) -> int:
        """Number of levels of the grouping factor."""
        return len(self.levels)

    @property
    def n_terms(self) -> int:
        """Number of columns ``q`` of the term."""
        return len(self.terms)

    def Z(self) -> sp.csr_matrix:
        """Sparse ``(n, n_levels * q)`` indicator-times-covariate matrix.

        Columns are level-major: level ``i`` owns columns ``i*q .. i*q+q-1``.
        """
        n, q = self.X.shape
        rows = np.repeat(np.arange(n), q)
        cols = (self.codes[:, None] * q + np.arange(q)[None, :]).ravel()
        return sp.csr_matrix(
            (self.X.ravel(), (rows, cols)), shape=(n, self.n_levels * q)
        )


@dataclass(frozen=True, eq=False)
class Design:
    """Everything a likelihood engine or model builder needs, as arrays.

    Attributes
    ----------
    spec : FormulaSpec
        The parsed formula.
    family : Family
        Response family and link.
    y : numpy.ndarray
        ``(n,)`` float64 response; for ``cbind(s, f)`` the successes.
    trials : numpy.ndarray or None
        ``(n,)`` float64 number of trials for ``cbind`` binomial responses.
    X : numpy.ndarray
        ``(n, p)`` float64 fixed-effects model matrix (full column rank).
    fixed_names : tuple of str
        Column names of ``X``.
    blocks : tuple of RandomBlock
        One per random-effect term, in formula order.
    offset : numpy.ndarray or None
        ``(n,)`` offset on the linear-predictor scale.
    rows : pandas.Index
        Index labels of the data rows used (rows with missing values dropped).
    fixed_model_spec : Any
        formulaic ``ModelSpec`` of the fixed part, to rebuild ``X`` for new data.
    dropped_columns : tuple of str
        Fixed-effect columns dropped for rank deficiency.
    """

    spec: FormulaSpec
    family: Family
    y: np.ndarray
    trials: np.ndarray | None
    X: np.ndarray
    fixed_names: tuple[str, ...]
    blocks: tuple[RandomBlock, ...]
    offset: np.ndarray | None
    rows: pd.Index
    fixed_model_spec: Any
    dropped_columns: tuple[str, ...] = ()

    @property
    def nobs(self) -> int:
        """Number of observations used."""
        return int(self.y.shape[0])

    @property
    def groups(self) -> tuple[str, ...]:
        """Distinct grouping-factor names in order of first appearance."""
        return tuple(dict.fromkeys(block.group for block in self.blocks))

    def Z(self) -> sp.csr_matrix:
        """Sparse random-effects matrix: the blocks' ``Z`` side by side."""
        if not self.blocks:
            return sp.csr_matrix((self.nobs, 0))
        return sp.hstack([block.Z() for block in self.blocks], format="csr")
