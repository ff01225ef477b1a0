"""BLAS on one thread for the span of a fit.

A fit makes many small LAPACK calls between compiled kernels; with several
BLAS threads each call waits for the others to wake.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager

from threadpoolctl import ThreadpoolController

__all__ = ["blas_on_one_thread", "single_threaded_blas"]

_THREADPOOLS: list[ThreadpoolController] = []


def blas_on_one_thread() -> AbstractContextManager[object]:
    """A context with BLAS on one thread; the libraries are looked up once per process.

    Looking them up reads the process's memory map, which costs more than a
    small model's whole fit.
    """
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1, user_api="blas")


def single_threaded_blas[**P, R](func: Callable[P, R]) -> Callable[P, R]:
    """Run ``func`` with BLAS on one thread.

    A fit makes many small LAPACK calls between compiled kernels; with
    several BLAS threads each call waits for the others to wake, which on
    a busy machine makes a 100 × 100 inverse take a quarter of a second
    instead of a fifth of a millisecond.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with blas_on_one_thread():
            return func(*args, **kwargs)

    return wrapper
