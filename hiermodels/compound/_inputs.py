"""Validation of the compound models' inputs and keywords.

Unit labels, finite vectors and counts, read-only copies of arrays, the
interval probability ``ci_prob`` and the deprecated spellings of keywords.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "as_counts",
    "as_vector",
    "frozen",
    "unit_label_name",
    "unit_labels",
]


def frozen(values: ArrayLike, dtype: type = float) -> NDArray[Any]:
    """Return a read-only 1-D copy of ``values``.

    Parameters
    ----------
    values : array_like
        Values to copy.
    dtype : type, default float
        Element type of the copy.

    Returns
    -------
    numpy.ndarray
        A copy whose ``writeable`` flag is off, so results stay immutable.
    """
    out: NDArray[Any] = np.array(values, dtype=dtype, copy=True).reshape(-1)
    out.flags.writeable = False
    return out


def unit_labels(units: Sequence[Any] | None, k: int) -> tuple[str, ...]:
    """Validate or make the labels of ``k`` units.

    Parameters
    ----------
    units : sequence or None
        User labels; ``None`` gives ``"0"``, ``"1"``, ...
    k : int
        Number of units.

    Returns
    -------
    tuple of str
        One distinct label per unit.
    """
    if units is None:
        return tuple(str(i) for i in range(k))
    labels = tuple(str(u) for u in units)
    if len(labels) != k:
        raise ValueError(f"got {len(labels)} unit labels for {k} units")
    if len(set(labels)) != k:
        raise ValueError("unit labels must be distinct")
    return labels


def unit_label_name(units: Sequence[Any] | None) -> str:
    """The name of the unit labels: a pandas Series' or Index's name, else ``"unit"``.

    Parameters
    ----------
    units : sequence or None
        The labels as the user gave them.

    Returns
    -------
    str
        The grouping variable's name in the long summaries (``grpvar``).
    """
    name = getattr(units, "name", None)
    return "unit" if name is None else str(name)


def as_vector(values: ArrayLike, name: str) -> NDArray[np.float64]:
    """Convert ``values`` to a finite 1-D float array or raise a clear error.

    Parameters
    ----------
    values : array_like
        The input.
    name : str
        The argument's name, for error messages.

    Returns
    -------
    numpy.ndarray
        A float copy.
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr.copy()


def as_counts(values: ArrayLike, name: str) -> NDArray[np.int64]:
    """Convert ``values`` to non-negative integer counts or raise a clear error.

    Parameters
    ----------
    values : array_like
        The input; floats are accepted when they are whole numbers.
    name : str
        The argument's name, for error messages.

    Returns
    -------
    numpy.ndarray
        An int64 copy.
    """
    arr = as_vector(values, name)
    if np.any(arr < 0):
        bad = np.flatnonzero(arr < 0).tolist()
        raise ValueError(f"{name} must be non-negative; negative at positions {bad}")
    if np.any(arr != np.round(arr)):
        bad = np.flatnonzero(arr != np.round(arr)).tolist()
        raise ValueError(f"{name} must be whole numbers; not at positions {bad}")
    return arr.astype(np.int64)
