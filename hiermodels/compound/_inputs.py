"""Validation of the compound models' inputs and keywords.

Unit labels, finite vectors and counts, read-only copies of arrays, the
interval probability ``ci_prob`` and the deprecated spellings of keywords.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from hiermodels.names import DEFAULT_CI_PROB

__all__ = [
    "as_counts",
    "as_vector",
    "check_ci_prob",
    "frozen",
    "renamed_keyword",
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
    out = np.array(values, dtype=dtype, copy=True).reshape(-1)
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


def check_ci_prob(ci_prob: float | None) -> float:
    """Return the interval probability, :data:`~hiermodels.names.DEFAULT_CI_PROB` for ``None``.

    Parameters
    ----------
    ci_prob : float or None
        Probability of the intervals.

    Returns
    -------
    float
        A value in (0, 1); anything else raises ``ValueError``.
    """
    if ci_prob is None:
        return DEFAULT_CI_PROB
    if not 0.0 < ci_prob < 1.0:
        raise ValueError(f"ci_prob must lie in (0, 1), got {ci_prob}")
    return float(ci_prob)


def renamed_keyword(new_value: Any, old_value: Any, *, new: str, old: str) -> Any:
    """Accept a keyword's deprecated spelling for one release.

    Parameters
    ----------
    new_value, old_value : object
        What the caller passed under each spelling (``None`` when not passed).
    new, old : str
        The two spellings, for the messages.

    Returns
    -------
    object
        ``old_value`` (with a ``DeprecationWarning`` attributed to the caller of
        the public method) when only the old spelling was used, else ``new_value``.
        Passing both raises ``TypeError``.
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise TypeError(f"pass {new}= only; {old}= is its deprecated spelling")
    # stacklevel 3: past this helper and the public method that calls it
    warnings.warn(
        f"{old}= is deprecated and will be removed in the next release; use {new}=",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value
