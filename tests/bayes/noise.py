"""Standard normals set by a test, to read a draw's mean and covariance off exactly."""

from __future__ import annotations

import numpy as np


class ScriptedNormals:
    """A generator whose standard normals are zeros, or zeros with one unit entry.

    A draw ``mean + A ε`` is the mean at zero noise, and column ``k`` of
    ``A`` plus the mean with the ``k``-th normal drawn set to 1.
    """

    def __init__(self, hot: int | None) -> None:
        self.hot = hot
        self.count = 0

    def standard_normal(self, shape: tuple[int, ...]) -> np.ndarray:
        size = int(np.prod(shape))
        out = np.zeros(size)
        if self.hot is not None and self.count <= self.hot < self.count + size:
            out[self.hot - self.count] = 1.0
        self.count += size
        return out.reshape(shape)
