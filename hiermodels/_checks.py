"""Checks of arguments shared by every public entry point.

A bad seed otherwise surfaces deep inside nutpie, PyMC or numpy as an
``OverflowError`` or ``TypeError`` that names none of the user's arguments.
"""

from __future__ import annotations

import numbers
from typing import Literal, overload

import numpy as np

__all__ = ["SEED_LIMIT", "check_random_seed"]

#: Seeds run from 0 to ``SEED_LIMIT - 1``: nutpie takes an unsigned 64-bit seed
#: (numpy and PyMC take any non-negative integer).
SEED_LIMIT = 2**64


@overload
def check_random_seed(
    seed: object, *, allow_generator: Literal[False] = False, name: str = "random_seed"
) -> int | None: ...


@overload
def check_random_seed(
    seed: object, *, allow_generator: bool, name: str = "random_seed"
) -> int | np.random.Generator | None: ...


def check_random_seed(
    seed: object, *, allow_generator: bool = False, name: str = "random_seed"
) -> int | np.random.Generator | None:
    """Validate a random seed and return it as a Python ``int`` (or ``None``).

    Parameters
    ----------
    seed : object
        ``None`` (fresh entropy), or an integer from 0 to ``2**64 - 1``
        (Python or numpy integer); a ``numpy.random.Generator`` too when
        ``allow_generator``.
    allow_generator : bool
        Whether the caller draws from numpy directly and can use a Generator.
    name : str
        The argument's name, for the message.

    Returns
    -------
    int, numpy.random.Generator or None

    Raises
    ------
    ValueError
        For anything else (negative or too large integers, floats, strings,
        booleans), naming the argument, the value and what is accepted.

    Examples
    --------
    >>> check_random_seed(np.int64(7))
    7
    """
    if seed is None:
        return None
    if allow_generator and isinstance(seed, np.random.Generator):
        return seed
    accepted = "None or an integer from 0 to 2**64 - 1"
    if allow_generator:
        accepted += " or a numpy Generator"
    # bool is an int subclass, but True as a seed is almost surely a mix-up of arguments
    if isinstance(seed, bool | np.bool_) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"{name} must be {accepted}; got {seed!r} ({type(seed).__name__})")
    value = int(seed)
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name} must be {accepted}; got {value}, which is out of range")
    return value
