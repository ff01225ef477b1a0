"""Direct densities handed to nutpie as one native function: no Python per gradient.

nutpie's sampler is written in Rust; given the address of a C function
``int64 logp(n, x, gradient, value, user_data)`` it runs every chain in its
own thread and never takes the GIL. A density here is one compiled function
of the point and a fixed set of arrays
(:func:`~hiermodels.bayes.gaussian_density.gaussian_log_density`,
:func:`~hiermodels.bayes.joint_density.joint_log_density`,
:func:`~hiermodels.bayes.laplace_density.laplace_log_density`);
:func:`native_model` packs those arrays' addresses and shapes into one
table, and the C function, compiled once per machine and cached, reads the
arrays back from the table. The same compiled code serves every model of a
kind: nothing is compiled per model. A density keeps no state between
calls, so all chains share one function and a run depends on its seed
alone.

The draws are the unconstrained points themselves (nutpie's ``expand`` step
copies them); :func:`expand_draws` turns them into the model's variables
afterwards.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import xarray as xr
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from hiermodels.bayes.gaussian_density import GaussianMarginalDensity, gaussian_log_density
from hiermodels.bayes.joint_density import JointDensity, joint_log_density
from hiermodels.bayes.laplace_density import LaplaceDensity, laplace_log_density

__all__ = ["NativeTable", "expand_draws", "native_model"]

#: Name of the one variable nutpie stores: the unconstrained point, and its dimension.
POINT = "unconstrained"
COORDINATE = "coordinate"


class NativeTable:
    """Arrays laid out for a native function: one row ``(address, n0, n1, n2)`` per array.

    Row 0 is a header ``(0, number of rows, ndim, 0)``; array ``k`` is row
    ``k + 1``. The table keeps every array alive for as long as it lives.

    Parameters
    ----------
    arrays : sequence of numpy.ndarray
        In the order the native function reads them; each is made
        C-contiguous (float64 or int64, as given).
    ndim : int
        Number of coordinates of the density's point.
    """

    def __init__(self, arrays: Sequence[np.ndarray], ndim: int) -> None:
        kept = []
        for array in arrays:
            if array.dtype not in (np.float64, np.int64) or array.ndim > 3:
                raise TypeError(f"a native table holds float64 or int64 arrays, not {array.dtype}")
            kept.append(np.ascontiguousarray(array))
        self.arrays: tuple[np.ndarray, ...] = tuple(kept)
        rows = np.zeros((len(kept) + 1, 4), dtype=np.int64)
        rows[0, 1:3] = (len(kept) + 1, ndim)
        for k, array in enumerate(kept, start=1):
            rows[k, 0] = array.ctypes.data
            rows[k, 1 : 1 + array.ndim] = array.shape
        self.rows = rows

    @property
    def address(self) -> int:
        """Address of the table itself (the native function's ``user_data``)."""
        return int(self.rows.ctypes.data)


def _flatten(items: Sequence[Any]) -> list[np.ndarray]:
    """Nested tuples of arrays and numbers as a flat list of arrays (numbers as 1-vectors)."""
    out: list[np.ndarray] = []
    for item in items:
        if isinstance(item, tuple):
            out += _flatten(item)
        elif isinstance(item, np.ndarray):
            out.append(item.astype(np.int64) if item.dtype.kind in "iub" else item)
        else:
            kind = np.float64 if isinstance(item, float) else np.int64
            out.append(np.array([item], dtype=kind))
    return out


@intrinsic
def _pointer(typingctx: object, address: types.Integer) -> tuple:
    """The integer ``address`` as a ``void *``."""

    def codegen(context: object, builder: Any, signature: object, args: Sequence[Any]) -> Any:
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


@numba.njit(inline="always")
def _f1(rows: np.ndarray, k: int) -> np.ndarray:
    return numba.carray(_pointer(rows[k, 0]), (rows[k, 1],), np.float64)


@numba.njit(inline="always")
def _f2(rows: np.ndarray, k: int) -> np.ndarray:
    return numba.carray(_pointer(rows[k, 0]), (rows[k, 1], rows[k, 2]), np.float64)


@numba.njit(inline="always")
def _f3(rows: np.ndarray, k: int) -> np.ndarray:
    shape = (rows[k, 1], rows[k, 2], rows[k, 3])
    return numba.carray(_pointer(rows[k, 0]), shape, np.float64)


@numba.njit(inline="always")
def _i1(rows: np.ndarray, k: int) -> np.ndarray:
    return numba.carray(_pointer(rows[k, 0]), (rows[k, 1],), np.int64)


@numba.njit(inline="always")
def _i2(rows: np.ndarray, k: int) -> np.ndarray:
    return numba.carray(_pointer(rows[k, 0]), (rows[k, 1], rows[k, 2]), np.int64)


@numba.njit(cache=True, nogil=True)
def _hyper_tables(rows: np.ndarray, k: int) -> tuple:
    """The 19 arrays of :attr:`HyperParameters.tables` from row ``k`` on."""
    return (
        _i1(rows, k), _f1(rows, k + 1), _i1(rows, k + 2), _i1(rows, k + 3), _f2(rows, k + 4),
        _i1(rows, k + 5), _i1(rows, k + 6), _i1(rows, k + 7), _i1(rows, k + 8),
        _i2(rows, k + 9), _i1(rows, k + 10), _i1(rows, k + 11), _f1(rows, k + 12),
        _f1(rows, k + 13), _i1(rows, k + 14), _i1(rows, k + 15), _i1(rows, k + 16),
        _i1(rows, k + 17), _i1(rows, k + 18),
    )  # fmt: skip


@numba.njit(inline="always")
def _placement(rows: np.ndarray, k: int) -> tuple:
    """:attr:`ReLayout.placement` from row ``k`` on (9 rows)."""
    return (
        _i1(rows, k), _i1(rows, k + 1), _i1(rows, k + 2), _i1(rows, k + 3), _i1(rows, k + 4),
        _i1(rows, k + 5), _i1(rows, k + 6), _i1(rows, k + 7)[0], _i1(rows, k + 8),
    )  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _gaussian_likelihood(rows: np.ndarray, k: int) -> tuple:
    """:attr:`GaussianLikelihood.native` from row ``k`` on (31 rows)."""
    data = (
        _f3(rows, k), _f1(rows, k + 1), _f2(rows, k + 2), _f3(rows, k + 3), _f2(rows, k + 4),
        _f2(rows, k + 5),
    )  # fmt: skip
    k += 6
    placement = _placement(rows, k)
    k += 9
    structure = (
        _i1(rows, k), _i1(rows, k + 1), _i1(rows, k + 2), _i1(rows, k + 3), _i1(rows, k + 4),
        _i1(rows, k + 5), _i1(rows, k + 6), _i1(rows, k + 7), _i1(rows, k + 8),
        _i1(rows, k + 9),
    )  # fmt: skip
    k += 10
    blocks = (_i1(rows, k), _i1(rows, k + 1), _i1(rows, k + 2), _f1(rows, k + 3), _i1(rows, k + 4))
    return data, placement, structure, blocks, _f1(rows, k + 5)


_LOGP_SIGNATURE = types.int64(
    types.uint64,
    types.CPointer(types.double),
    types.CPointer(types.double),
    types.CPointer(types.double),
    types.voidptr,
)
_EXPAND_SIGNATURE = types.int64(
    types.uint64,
    types.uint64,
    types.CPointer(types.double),
    types.CPointer(types.double),
    types.voidptr,
)

# return codes nutpie reads: 0 a value; positive a point where the density cannot be
# evaluated (NUTS treats it as a divergence); negative an error that stops the sampler
_OK, _NOT_FINITE, _WRONG_SIZE = 0, 4, -1


@numba.njit(inline="always")
def _open(n: int, x_at: Any, gradient_at: Any, user_data: Any) -> tuple:
    """The table's rows, the point and the gradient as arrays, the gradient zeroed when the
    point has the table's size (nothing is written otherwise)."""
    header = numba.carray(user_data, (1, 4), np.int64)
    rows = numba.carray(user_data, (header[0, 1], 4), np.int64)
    x = numba.carray(x_at, (n,))
    gradient = numba.carray(gradient_at, (n,))
    if n == rows[0, 2]:
        for i in range(n):
            gradient[i] = 0.0
    return rows, x, gradient


@numba.njit(inline="always")
def _close(value: float, gradient: np.ndarray, value_at: Any) -> int:
    """Store the value; the return code nutpie reads."""
    value_at[0] = value
    if not np.isfinite(value):
        return _NOT_FINITE
    for i in range(gradient.size):
        if not np.isfinite(gradient[i]):
            return _NOT_FINITE
    return _OK


def _gaussian_logp(n: int, x_at: Any, gradient_at: Any, value_at: Any, user_data: Any) -> int:
    rows, x, gradient = _open(n, x_at, gradient_at, user_data)
    if n != rows[0, 2]:
        return _WRONG_SIZE
    hyper = _hyper_tables(rows, 1)
    origin, reference = _f1(rows, 20), _f1(rows, 21)
    likelihood = _gaussian_likelihood(rows, 22)
    value = gaussian_log_density(x, hyper, origin, reference, likelihood, gradient)
    return _close(value, gradient, value_at)


def _joint_logp(n: int, x_at: Any, gradient_at: Any, value_at: Any, user_data: Any) -> int:
    rows, x, gradient = _open(n, x_at, gradient_at, user_data)
    if n != rows[0, 2]:
        return _WRONG_SIZE
    hyper = _hyper_tables(rows, 1)
    data = (
        _f2(rows, 20), _f1(rows, 21), _f1(rows, 22), _f1(rows, 23), _f2(rows, 24),
        _i2(rows, 25), _i1(rows, 26), _i1(rows, 27), _i1(rows, 28), _i1(rows, 29),
    )  # fmt: skip
    value = joint_log_density(x, hyper, data, _f1(rows, 30), gradient)
    return _close(value, gradient, value_at)


def _laplace_logp(n: int, x_at: Any, gradient_at: Any, value_at: Any, user_data: Any) -> int:
    rows, x, gradient = _open(n, x_at, gradient_at, user_data)
    if n != rows[0, 2]:
        return _WRONG_SIZE
    hyper = _hyper_tables(rows, 1)
    structure = (
        _i1(rows, 22), _f2(rows, 23), _i2(rows, 24), _f2(rows, 25), _i1(rows, 26),
        _i1(rows, 27), _i1(rows, 28), _i2(rows, 29), _i1(rows, 30), _i1(rows, 31),
        _i1(rows, 32), _i1(rows, 33), _i1(rows, 34), _i1(rows, 35), _i1(rows, 36),
        _i1(rows, 37), _i1(rows, 38), _i1(rows, 39)[0],
    )  # fmt: skip
    family = (
        _i1(rows, 40)[0], _f1(rows, 41), _f1(rows, 42), _f1(rows, 43), _f1(rows, 44)[0],
        _i1(rows, 45)[0] != 0,
    )  # fmt: skip
    placement = _placement(rows, 46)
    blocks = (_i1(rows, 55), _i1(rows, 56), _i1(rows, 57), _i1(rows, 58))
    data = (
        _f2(rows, 20), _f1(rows, 21), structure, family, placement, blocks, _f2(rows, 59),
        _f1(rows, 60),
    )  # fmt: skip
    settings = _f1(rows, 61)
    value = laplace_log_density(x, hyper, data, settings, gradient)
    return _close(value, gradient, value_at)


def _copy_point(n: int, n_out: int, x_at: Any, out_at: Any, user_data: Any) -> int:
    if n != n_out:
        return _WRONG_SIZE
    x = numba.carray(x_at, (n,))
    out = numba.carray(out_at, (n,))
    for i in range(n):
        out[i] = x[i]
    return _OK


@functools.cache
def _native(function: Callable[..., int], signature: Any) -> Any:
    """``function`` compiled to a C function: on first use, not at import, and once."""
    return numba.cfunc(signature, cache=True)(function)


#: The densities handed to nutpie natively.
NativeDensity = GaussianMarginalDensity | JointDensity | LaplaceDensity


def _table(density: NativeDensity) -> tuple[NativeTable, int]:
    """The table the density's native function reads, and that function's address."""
    arrays = _flatten(density.native)
    if isinstance(density, JointDensity):
        expected, address = 19 + 10 + 1, _native(_joint_logp, _LOGP_SIGNATURE).address
    elif isinstance(density, LaplaceDensity):
        expected, address = 19 + 42, _native(_laplace_logp, _LOGP_SIGNATURE).address
    else:
        expected, address = 19 + 2 + 31, _native(_gaussian_logp, _LOGP_SIGNATURE).address
    if len(arrays) != expected:
        raise AssertionError(f"the density packs {len(arrays)} arrays, not {expected}")
    return NativeTable(arrays, density.ndim), address


def _nutpie_base() -> type:
    from nutpie.sample import CompiledModel

    return CompiledModel


def _point_dims() -> dict[str, tuple[str, ...]]:
    """The one dimension of a native density's draws: its unconstrained coordinates."""
    return {POINT: (COORDINATE,)}


@dataclass(frozen=True)
class _NativeModel:
    """What nutpie's sampler needs of a native density (its ``CompiledModel`` interface)."""

    table: NativeTable
    logp_address: int
    expand_address: int
    ndim: int
    initial_point: Callable[[int], np.ndarray]
    dims: dict[str, tuple[str, ...]] | None = field(default_factory=_point_dims)
    reparameterized_names: list[str] | None = field(default=None, kw_only=True)

    @property
    def n_dim(self) -> int:
        return self.ndim

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {POINT: (self.ndim,)}

    @property
    def coords(self) -> dict[str, Any]:
        return {COORDINATE: [str(i) for i in range(self.ndim)]}

    def _make_model(self, init_mean: Any) -> Any:
        from nutpie import _lib

        expand = _lib.ExpandFunc(
            self.ndim, self.ndim, self.expand_address, self.table.address, self
        )
        logp = _lib.LogpFunc(self.logp_address, self.table.address, self)
        sizes = {COORDINATE: self.ndim}
        variables = _lib.PyVariable.new_variables(
            [POINT], ["float64"], [(self.ndim,)], sizes, {POINT: [COORDINATE]}
        )
        coords = {COORDINATE: [str(i) for i in range(self.ndim)]}
        return _lib.PyMcModel(
            logp, expand, variables, self.ndim, sizes, coords, self.initial_point, None
        )

    def _make_sampler(
        self,
        settings: Any,
        init_mean: Any,
        cores: int,
        progress_type: Any,
        extra_callback: Any,
        extra_callback_rate: Any,
        store: Any,
    ) -> Any:
        from nutpie import _lib

        return _lib.PySampler.from_pymc(
            settings,
            cores,
            self._make_model(init_mean),
            progress_type,
            extra_callback,
            extra_callback_rate,
            store,
        )


def native_model(density: NativeDensity) -> Any:
    """A nutpie model whose log density is ``density``'s native function.

    The draws nutpie returns are the unconstrained points, variable
    :data:`POINT`; :func:`expand_draws` gives the model's variables.
    """
    base = _nutpie_base()
    model_type = type("NativeModel", (_NativeModel, base), {})
    table, address = _table(density)
    return model_type(
        table=table,
        logp_address=address,
        expand_address=_native(_copy_point, _EXPAND_SIGNATURE).address,
        ndim=density.ndim,
        initial_point=density.initial_point,
    )


def expand_draws(posterior: xr.Dataset, density: Any) -> xr.Dataset:
    """The model's variables (``density.output_names``) from draws of :data:`POINT`."""
    points = posterior[POINT].transpose("chain", "draw", ...).values
    chains, draws = points.shape[:2]
    names = density.output_names
    shapes = dict(zip(names, density.output_shapes, strict=True))
    values = {n: np.empty((chains, draws, *shapes[n])) for n in names}
    for c in range(chains):
        for d in range(draws):
            for n, v in density.expand(points[c, d]).items():
                values[n][c, d] = v
    dims_of = density.output_dims
    out = {}
    for n in names:
        extra = list(dims_of.get(n, [f"{n}_dim_{i}" for i in range(len(shapes[n]))]))
        out[n] = (("chain", "draw", *extra), values[n])
    coords = {k: v for k, v in density.coords.items()}
    dataset = xr.Dataset(out, coords={"chain": posterior["chain"], "draw": posterior["draw"]})
    return dataset.assign_coords({k: v for k, v in coords.items() if k in dataset.dims})
