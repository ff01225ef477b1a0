"""numpy's pairwise summation in compiled code, to the last bit.

:class:`~hiermodels.mle.response.GlmResponse` sums the deviance terms with
``numpy.sum``; the compiled deviances, the penalty ``‖u‖²`` and ``log |L|²``
add the same terms in the same order, so that the compiled and the Python
PIRLS agree to the last bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "pairwise_sum",
    "sum_of_squares",
]


@njit(cache=True, nogil=True, error_model="numpy")
def _block_sum(values: np.ndarray, start: int, n: int) -> float:
    """numpy's sum of at most 128 contiguous values: eight running sums, then the rest."""
    if n < 8:
        res = 0.0
        for i in range(n):
            res += values[start + i]
        return res
    s = start
    r0, r1, r2, r3 = values[s], values[s + 1], values[s + 2], values[s + 3]
    r4, r5, r6, r7 = values[s + 4], values[s + 5], values[s + 6], values[s + 7]
    i = 8
    while i < n - (n % 8):
        r0 += values[s + i]
        r1 += values[s + i + 1]
        r2 += values[s + i + 2]
        r3 += values[s + i + 3]
        r4 += values[s + i + 4]
        r5 += values[s + i + 5]
        r6 += values[s + i + 6]
        r7 += values[s + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += values[s + i]
        i += 1
    return res


@njit(cache=True, nogil=True, error_model="numpy")
def pairwise_sum(values: np.ndarray, start: int, n: int) -> float:
    """``values[start : start + n].sum()`` by numpy's pairwise summation.

    The same additions in the same order as ``numpy.sum`` of a contiguous
    array, so that a sum of identical terms is identical to the last bit:
    halves (the first a multiple of 8 long) summed separately and added,
    down to blocks of 128. numpy recurses; this walks the same tree with a
    stack, since numba's disk cache cannot hold recursive functions.
    """
    if n <= 128:
        return _block_sum(values, start, n)
    # the tree is at most log2(n / 128) deep: 64 levels cover any array
    seg_start = np.empty(192, dtype=np.int64)
    seg_n = np.empty(192, dtype=np.int64)
    seg_open = np.empty(192, dtype=np.bool_)
    partial = np.empty(192)
    top = 0
    done = 0
    seg_start[0], seg_n[0], seg_open[0] = start, n, False
    top = 1
    while top:
        top -= 1
        s, m, expanded = seg_start[top], seg_n[top], seg_open[top]
        if m <= 128:
            partial[done] = _block_sum(values, s, m)
            done += 1
        elif expanded:
            done -= 1
            partial[done - 1] = partial[done - 1] + partial[done]
        else:
            half = m // 2
            half -= half % 8
            # combine after both halves; the first half is summed first
            seg_start[top], seg_n[top], seg_open[top] = s, m, True
            seg_start[top + 1], seg_n[top + 1], seg_open[top + 1] = s + half, m - half, False
            seg_start[top + 2], seg_n[top + 2], seg_open[top + 2] = s, half, False
            top += 3
    return partial[0]


@njit(cache=True, nogil=True, error_model="numpy")
def sum_of_squares(u1: np.ndarray, u2: np.ndarray) -> float:
    """``‖u‖²`` summed as numpy sums each part."""
    flat = u1.ravel()
    sq1 = flat * flat
    sq2 = u2 * u2
    return pairwise_sum(sq1, 0, sq1.size) + pairwise_sum(sq2, 0, sq2.size)
