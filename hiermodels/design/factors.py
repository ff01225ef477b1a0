"""The design per grouping factor: every block on one factor joined.

A formula may put several random-effect terms on one grouping factor,
``(1 | g) + (0 + x | g)``; the Bayesian graph, the summaries and the plots
see the factor as one set of columns. :attr:`Design.factors
<hiermodels.design.design.Design.factors>` builds the :class:`GroupTerms`
of each factor once per design, and :func:`long_index` puts the
``grpvar, term, grp`` keys of the long random-effect tables on any sequence
of blocks or factors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from hiermodels.design.design import RandomBlock

__all__ = ["GroupTerms", "LONG_KEYS", "build_factors", "long_index", "long_values"]

#: The key columns of the long random-effect tables: factor, term, level.
LONG_KEYS = ("grpvar", "term", "grp")


@dataclass(frozen=True, eq=False)
class GroupTerms:
    """The random-effect columns of one grouping factor, all its blocks joined.

    Attributes
    ----------
    group : str
        Grouping-factor name.
    levels : tuple of str
        Level labels.
    terms : tuple of str
        Term names of all blocks on this factor, in formula order.
    codes : numpy.ndarray
        ``(n,)`` level index of every observation.
    X : numpy.ndarray
        ``(n, q)`` the blocks' term columns side by side.
    spans : tuple of (int, int)
        ``[start, stop)`` column range of each block inside ``terms``.
    """

    group: str
    levels: tuple[str, ...]
    terms: tuple[str, ...]
    codes: np.ndarray
    X: np.ndarray
    spans: tuple[tuple[int, int], ...]

    @property
    def correlated_spans(self) -> tuple[tuple[int, int], ...]:
        """The blocks with two or more terms (they carry an LKJ correlation)."""
        return tuple(s for s in self.spans if s[1] - s[0] >= 2)


def build_factors(blocks: Sequence[RandomBlock]) -> tuple[GroupTerms, ...]:
    """Join the random blocks of each grouping factor into one :class:`GroupTerms`.

    Read it as :attr:`Design.factors <hiermodels.design.design.Design.factors>`,
    which builds it once per design.

    Parameters
    ----------
    blocks : sequence of RandomBlock
        A design's blocks, in formula order.

    Returns
    -------
    tuple of GroupTerms
        One per grouping factor, in order of first appearance.

    Raises
    ------
    ValueError
        When two blocks on one factor disagree on its levels, or repeat a term.
    """
    by_group: dict[str, list[RandomBlock]] = {}
    for block in blocks:
        by_group.setdefault(block.group, []).append(block)
    out = []
    for group, members in by_group.items():
        first = members[0]
        terms: list[str] = []
        spans = []
        for block in members:
            if block.levels != first.levels or not np.array_equal(block.codes, first.codes):
                raise ValueError(f"random-effect blocks on {group!r} disagree on its levels")
            repeated = set(terms) & set(block.terms)
            if repeated:
                raise ValueError(
                    f"term(s) {sorted(repeated)} appear in more than one random-effect "
                    f"block on {group!r}; each term may vary by a factor only once"
                )
            spans.append((len(terms), len(terms) + block.n_terms))
            terms.extend(block.terms)
        X = np.column_stack([np.asarray(b.X, dtype=float) for b in members])
        out.append(GroupTerms(group, first.levels, tuple(terms), first.codes, X, tuple(spans)))
    return tuple(out)


class FactorColumns(Protocol):
    """What :func:`long_index` reads: a :class:`GroupTerms` or a ``RandomBlock``."""

    @property
    def group(self) -> str: ...

    @property
    def terms(self) -> tuple[str, ...]: ...

    @property
    def levels(self) -> tuple[str, ...]: ...


def long_index(units: Sequence[FactorColumns]) -> pd.DataFrame:
    """The ``grpvar, term, grp`` keys of a long random-effect table.

    Parameters
    ----------
    units : sequence of GroupTerms or RandomBlock
        The factors (or blocks), in the order of the table.

    Returns
    -------
    pandas.DataFrame
        One row per unit, term and level, in that order (levels vary
        fastest); a default ``RangeIndex``. Put values beside it with
        :func:`long_values`.
    """
    grpvar: list[str] = []
    term: list[str] = []
    grp: list[str] = []
    for unit in units:
        n = len(unit.levels)
        for name in unit.terms:
            grpvar.extend([unit.group] * n)
            term.extend([name] * n)
            grp.extend(unit.levels)
    return pd.DataFrame({"grpvar": grpvar, "term": term, "grp": grp}, columns=list(LONG_KEYS))


def long_values(values: Sequence[np.ndarray]) -> np.ndarray:
    """``(levels, q)`` arrays, one per unit, in the row order of :func:`long_index`.

    Parameters
    ----------
    values : sequence of numpy.ndarray
        One ``(levels, q)`` array per unit given to :func:`long_index`.

    Returns
    -------
    numpy.ndarray
        The arrays' columns one after the other.
    """
    if not values:
        return np.empty(0)
    return np.concatenate([np.asarray(v).T.ravel() for v in values])
