"""Shared pieces of the compound-sampling models.

Validation of unit labels and array inputs, frozen-array helpers, the
interval value :class:`EBIntervals`, data-only hyperprior specifications for
the PyMC versions of the models, posterior summaries of full-Bayes draws, and
the per-unit comparison table shared by the three models.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from hiermodels._checks import check_random_seed
from hiermodels.bayes.samplers import reproducible_compilation

__all__ = [
    "COMPARISON_COLUMNS",
    "EBIntervals",
    "HyperPriorSpec",
    "comparison_frame",
    "frozen",
    "make_prior",
    "posterior_summary",
    "sample_model",
    "unit_labels",
]

#: A hyperprior given as data: a PyMC distribution name and its parameters,
#: e.g. ``("HalfNormal", {"sigma": 10.0})``.
HyperPriorSpec = tuple[str, Mapping[str, float]]

#: Column order of the per-unit comparison table, named as in the mixed-model
#: comparison (:mod:`hiermodels.shrinkage`); the table is indexed by ``unit``
#: and its first column, the unit's amount of data, is named ``se``,
#: ``trials`` or ``exposure``.
COMPARISON_COLUMNS: tuple[str, ...] = (
    "no_pooling",
    "no_pooling_estimable",
    "complete_pooling",
    "eb_mean",
    "eb_sd",
    "eb_low",
    "eb_high",
    "bayes_mean",
    "bayes_sd",
    "bayes_low",
    "bayes_high",
    "eb_shrinkage",
    "bayes_shrinkage",
    "width_ratio",
    "eb_boundary",
    "note",
)


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


@dataclass(frozen=True)
class EBIntervals:
    """Per-unit empirical-Bayes point estimates and intervals.

    Attributes
    ----------
    units : tuple of str
        Unit labels.
    mean : numpy.ndarray
        Point estimates.
    sd : numpy.ndarray
        Standard deviations (posterior, or the corrected ones of the method).
    lower, upper : numpy.ndarray
        Interval end points.
    level : float
        Nominal coverage, e.g. 0.95.
    method : str
        How the intervals were made (``"peb"``, ``"morris"``, ``"bootstrap"``,
        ``"beta"``, ``"gamma"``).
    """

    units: tuple[str, ...]
    mean: NDArray[np.float64]
    sd: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    level: float
    method: str

    def __post_init__(self) -> None:
        for name in ("mean", "sd", "lower", "upper"):
            object.__setattr__(self, name, frozen(getattr(self, name)))
        k = len(self.units)
        if any(getattr(self, n).size != k for n in ("mean", "sd", "lower", "upper")):
            raise ValueError("every array must have one value per unit")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level must lie in (0, 1), got {self.level}")

    @property
    def width(self) -> NDArray[np.float64]:
        """Interval widths, ``upper - lower``."""
        return self.upper - self.lower

    def to_frame(self) -> pd.DataFrame:
        """Return the intervals as a DataFrame indexed by unit.

        Returns
        -------
        pandas.DataFrame
            Columns ``mean``, ``sd``, ``lower``, ``upper``.
        """
        return pd.DataFrame(
            {"mean": self.mean, "sd": self.sd, "lower": self.lower, "upper": self.upper},
            index=pd.Index(self.units, name="unit"),
        )


def make_prior(
    name: str,
    spec: HyperPriorSpec | None,
    default: HyperPriorSpec,
) -> Any:
    """Create a PyMC hyperprior from a data-only specification.

    Must be called inside a ``pm.Model`` context.

    Parameters
    ----------
    name : str
        Variable name in the model.
    spec : tuple (str, mapping) or None
        User choice, e.g. ``("Normal", {"mu": 0.0, "sigma": 10.0})``; ``None``
        uses ``default``.
    default : tuple (str, mapping)
        The model's documented default.

    Returns
    -------
    pytensor.tensor.TensorVariable
        The new random variable.
    """
    dist_name, params = default if spec is None else spec
    dist = getattr(pm, str(dist_name), None)
    if not (isinstance(dist, type) and issubclass(dist, pm.Distribution)):
        raise ValueError(f"hyperprior for {name!r}: {dist_name!r} is not a PyMC distribution")
    try:
        return dist(name, **dict(params))
    except TypeError as err:
        raise ValueError(f"hyperprior for {name!r}: bad parameters {dict(params)}: {err}") from err


def check_hyperprior_keys(hyperpriors: Mapping[str, Any] | None, allowed: Sequence[str]) -> None:
    """Raise a clear error when ``hyperpriors`` names an unknown variable.

    Parameters
    ----------
    hyperpriors : mapping or None
        User hyperpriors keyed by variable name.
    allowed : sequence of str
        Names the model accepts.
    """
    if hyperpriors is None:
        return
    unknown = sorted(set(hyperpriors) - set(allowed))
    if unknown:
        raise ValueError(f"unknown hyperprior names {unknown}; this model takes {list(allowed)}")


class FullBayesMixin:
    """Full-Bayes sampling shared by the compound models.

    A model class provides ``pymc_model(hyperpriors)``; this adds
    :meth:`fit_bayes`.
    """

    def pymc_model(self, hyperpriors: Mapping[str, Any] | None = None) -> pm.Model:
        """The full-Bayes PyMC model (provided by each compound model)."""
        raise NotImplementedError

    def fit_bayes(
        self,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 2,
        random_seed: int | None = None,
        *,
        hyperpriors: Mapping[str, Any] | None = None,
        sampler: str = "nutpie",
        cores: int = 1,
    ) -> xr.DataTree:
        """Sample the full-Bayes model (:meth:`pymc_model`) with NUTS.

        Parameters
        ----------
        draws, tune, chains : int
            Sampler settings.
        random_seed : int, optional
            Seed.
        hyperpriors : mapping, optional
            See :meth:`pymc_model`.
        sampler : {"nutpie", "pymc"}, default "nutpie"
            NUTS implementation.
        cores : int, default 1
            Chains run in parallel.

        Returns
        -------
        xarray.DataTree
            Posterior of the hyperparameters and the per-unit ``theta``.
        """
        random_seed = check_random_seed(random_seed)
        return sample_model(
            self.pymc_model(hyperpriors),
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            sampler=sampler,
            cores=cores,
        )


def sample_model(
    model: pm.Model,
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    sampler: str,
    cores: int,
) -> xr.DataTree:
    """Run NUTS on ``model`` quietly and return the DataTree.

    Parameters
    ----------
    model : pymc.Model
        The model.
    draws, tune, chains : int
        Sampler settings.
    random_seed : int or None
        Seed for reproducibility.
    sampler : {"nutpie", "pymc"}
        NUTS implementation.
    cores : int
        Number of chains run in parallel.

    Returns
    -------
    xarray.DataTree
        The posterior and sampler statistics.
    """
    if sampler not in ("nutpie", "pymc"):
        raise ValueError(f"sampler must be 'nutpie' or 'pymc', got {sampler!r}")
    # without fast-math, so that the draws do not depend on the state of PyTensor's compile cache
    with model, reproducible_compilation():
        return pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=random_seed,
            nuts_sampler=sampler,
            progressbar=False,
        )


def posterior_summary(
    idata: xr.DataTree, var_name: str, units: tuple[str, ...], level: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Posterior means, sds and equal-tailed intervals of a per-unit variable.

    Parameters
    ----------
    idata : xarray.DataTree
        Output of a sampler, with a ``posterior`` group.
    var_name : str
        Variable with dims ``(chain, draw, unit)``.
    units : tuple of str
        The units, in the order wanted.
    level : float
        Interval coverage.

    Returns
    -------
    mean, sd, lower, upper : numpy.ndarray
        One value per unit.
    """
    draws = idata["posterior"][var_name]
    if "unit" in draws.coords:
        draws = draws.sel(unit=list(units))
    values = np.asarray(draws.transpose("chain", "draw", "unit")).reshape(-1, len(units))
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(values, [tail, 1.0 - tail], axis=0)
    return values.mean(axis=0), values.std(axis=0, ddof=1), lower, upper


def shrinkage_fraction(
    raw: NDArray[np.float64], eb: NDArray[np.float64], pooled: float
) -> NDArray[np.float64]:
    """How far EB moved each raw estimate towards complete pooling.

    ``(raw - eb) / (raw - pooled)``: 0 is no pooling, 1 complete pooling. EB
    shrinks towards its own prior mean, which may differ from the
    complete-pooling value; a unit whose raw estimate lies between the two
    then gets a negative fraction.

    Parameters
    ----------
    raw, eb : numpy.ndarray
        Raw and EB estimates (raw may be NaN for units without data).
    pooled : float
        Complete-pooling estimate.

    Returns
    -------
    numpy.ndarray
        NaN where ``raw`` is missing or equals ``pooled`` (the fraction is
        undefined there; the comparison's ``note`` column says so).
    """
    gap = raw - pooled
    ok = np.isfinite(gap) & (np.abs(gap) > 1e-12 * max(1.0, abs(pooled)))
    out = np.full(raw.shape, np.nan)
    out[ok] = (raw[ok] - eb[ok]) / gap[ok]
    return out


def comparison_frame(
    *,
    units: tuple[str, ...],
    size_name: str,
    size: NDArray[Any],
    raw: NDArray[np.float64],
    eb: EBIntervals,
    eb_boundary: bool,
    idata: xr.DataTree,
    pooled: float,
    notes: Sequence[str],
    level: float,
) -> pd.DataFrame:
    """Build the per-unit table: no pooling, EB, full Bayes, complete pooling.

    Parameters
    ----------
    units : tuple of str
        Unit labels (the index).
    size_name : str
        Name of the first column (``se``, ``trials`` or ``exposure``).
    size : numpy.ndarray
        The unit's amount of data.
    raw : numpy.ndarray
        No-pooling estimates (NaN where the unit has no data).
    eb : EBIntervals
        Empirical-Bayes means, sds and intervals.
    eb_boundary : bool
        Whether the EB fit is at the complete-pooling boundary.
    idata : xarray.DataTree
        Full-Bayes draws with a per-unit ``theta``.
    pooled : float
        Complete-pooling estimate.
    notes : sequence of str
        One note per unit (empty string when nothing to say).
    level : float
        Level of the full-Bayes (equal-tailed) intervals; should match
        ``eb.level``.

    Returns
    -------
    pandas.DataFrame
        Index ``unit``; columns ``size_name`` then :data:`COMPARISON_COLUMNS`.
        ``eb_shrinkage`` and ``bayes_shrinkage`` are ``(raw - est)/(raw -
        pooled)``, NaN where the unit has no data or its raw estimate equals
        the pooled one; ``width_ratio`` is full-Bayes over EB interval width,
        infinite where the EB interval has zero width. ``note`` says why.
    """
    if not np.isclose(level, eb.level):
        warnings.warn(
            f"EB intervals are at level {eb.level}, full-Bayes ones at {level}",
            UserWarning,
            stacklevel=3,
        )
    fb_mean, fb_sd, fb_lower, fb_upper = posterior_summary(idata, "theta", units, level)
    eb_shrink = shrinkage_fraction(raw, eb.mean, pooled)
    eb_width = eb.width
    ratio = np.full(len(units), np.inf)
    positive = eb_width > 0
    ratio[positive] = (fb_upper - fb_lower)[positive] / eb_width[positive]
    estimable = np.isfinite(raw)
    all_notes = list(notes)
    for i in range(len(units)):
        extra = []
        if estimable[i] and not np.isfinite(eb_shrink[i]):
            extra.append("raw equals pooled: shrinkage undefined")
        if not positive[i]:
            extra.append("EB interval has zero width: width ratio infinite")
        all_notes[i] = "; ".join([n for n in [all_notes[i], *extra] if n])
    columns: dict[str, Any] = {
        size_name: size,
        "no_pooling": raw,
        "no_pooling_estimable": estimable,
        "complete_pooling": np.full(len(units), pooled),
        "eb_mean": eb.mean,
        "eb_sd": eb.sd,
        "eb_low": eb.lower,
        "eb_high": eb.upper,
        "bayes_mean": fb_mean,
        "bayes_sd": fb_sd,
        "bayes_low": fb_lower,
        "bayes_high": fb_upper,
        "eb_shrinkage": eb_shrink,
        "bayes_shrinkage": shrinkage_fraction(raw, fb_mean, pooled),
        "width_ratio": ratio,
        "eb_boundary": np.full(len(units), eb_boundary),
        "note": all_notes,
    }
    return pd.DataFrame(columns, index=pd.Index(units, name="unit"))


#: Bounds on the log prior parameters: exp(±30) covers any prior worth
#: reporting; beyond that the fit is a boundary case.
LOG_BOUND = 30.0


NegLogLik = Callable[[NDArray[np.float64]], tuple[float, NDArray[np.float64], NDArray[np.float64]]]


def conjugate_mle(
    negloglik: NegLogLik,
    x0: NDArray[np.float64],
    *,
    nll_pooled: float,
    score_pooled: float,
    degenerate_message: str,
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Maximise a two-parameter marginal likelihood on the log scale.

    Newton trust region with the analytic gradient and Hessian, then a
    decision between an interior maximum and the complete-pooling boundary
    (prior precision infinite).

    Parameters
    ----------
    negloglik : callable
        ``x -> (value, gradient, Hessian)`` of the negative log-likelihood
        in the log prior parameters ``x``.
    x0 : numpy.ndarray, shape (2,)
        Start.
    nll_pooled : float
        Negative log-likelihood at complete pooling (the limit of infinite
        precision), on the same scale as ``negloglik``.
    score_pooled : float
        Derivative of the log-likelihood in 1/precision at complete pooling;
        not positive means complete pooling is a local maximum.
    degenerate_message : str
        Error message when the parameters run to 0.

    Returns
    -------
    (x, cov) or None
        The maximiser and the inverse observed information in ``x``; ``None``
        at the complete-pooling boundary.
    """
    res = optimize.minimize(
        lambda x: negloglik(x)[:2],
        x0,
        jac=True,
        hess=lambda x: negloglik(x)[2],
        method="trust-exact",
        options={"gtol": 1e-10, "maxiter": 500},
    )
    # A tiny gradient is convergence even when the trust region gives up on
    # rounding noise in the flat valley of large parameters.
    converged = bool(res.success or np.max(np.abs(res.jac)) < 1e-6)
    interior = (
        converged
        and np.max(res.x) < LOG_BOUND - 5.0
        # Log-gamma differences at parameters ~ 1e8 carry rounding of ~1e-7, so
        # an interior maximum must beat complete pooling by more than that.
        and res.fun < nll_pooled - 1e-6 * max(1.0, abs(nll_pooled))
    )
    if score_pooled <= 0 and not interior:
        return None
    if np.min(res.x) < -LOG_BOUND:
        raise ValueError(degenerate_message)
    if not converged or np.max(res.x) > LOG_BOUND:
        raise RuntimeError(f"the marginal MLE did not converge: {res.message}")
    return res.x, np.linalg.inv(negloglik(res.x)[2])


def warn_all(messages: Sequence[str]) -> None:
    """Issue each message as a :class:`UserWarning`.

    Parameters
    ----------
    messages : sequence of str
        Plain-language remarks (boundary fits, units without data, ...).
    """
    for message in messages:
        warnings.warn(message, UserWarning, stacklevel=3)
