"""The Poisson–gamma compound model.

``y_i | lambda_i ~ Poisson(e_i lambda_i)`` independently (``e_i`` the
exposure) and ``lambda_i ~ Gamma(a, b)`` i.i.d. (shape ``a``, rate ``b``, prior
mean ``a/b``). The marginal of ``y_i`` is negative binomial; its maximiser
``(a_hat, b_hat)`` gives the PEB posterior ``Gamma(a_hat + y_i, b_hat + e_i)``,
whose mean

    (a_hat + y_i)/(b_hat + e_i) = (1 - B_i) y_i/e_i + B_i a_hat/b_hat,  B_i = b_hat/(b_hat + e_i),

shrinks each raw rate towards the prior mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from scipy import special, stats

from hiermodels.compound._inputs import (
    as_counts,
    as_vector,
    frozen,
    unit_label_name,
    unit_labels,
)
from hiermodels.compound.base import CompoundFit, CompoundModel, HyperEstimate, warn_all
from hiermodels.compound.hyperpriors import HyperPriorSpec, check_hyperprior_keys, make_prior
from hiermodels.compound.marginal_mle import conjugate_mle

if TYPE_CHECKING:
    import pymc as pm

__all__ = ["PoissonGamma", "PoissonGammaFit"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PoissonGammaFit(CompoundFit):
    """Empirical-Bayes fit of the Poisson–gamma model.

    Attributes
    ----------
    units : tuple of str
        Unit labels.
    counts : numpy.ndarray
        Observed counts.
    exposure : numpy.ndarray
        Exposures.
    method : str
        ``"ml"`` or ``"mm"``.
    a, b : float
        Gamma prior shape and rate; ``inf`` at the complete-pooling boundary.
    prior_mean : float
        ``a/b`` (the pooled rate at the boundary).
    a_se, b_se : float or None
        From the observed information (ML, interior fits only).
    boundary : bool
        ``True`` when the prior is a point mass: complete pooling.
    loglik : float
        Marginal (negative-binomial) log-likelihood at the estimates.
    notes : tuple of str
        Plain-language remarks.
    unit_name : str
        Name of the unit labels (``grpvar`` in the long summaries).
    log_cov : numpy.ndarray or None
        Inverse observed information in ``(log a, log b)`` (ML, interior fits
        only); the standard errors of :meth:`fixef_summary` and
        :meth:`varcorr_summary` come from it.
    """

    term: ClassVar[str] = "lambda"
    interval_method: ClassVar[str] = "gamma"

    units: tuple[str, ...]
    counts: NDArray[np.int64]
    exposure: FloatArray
    method: str
    a: float
    b: float
    prior_mean: float
    a_se: float | None
    b_se: float | None
    boundary: bool
    loglik: float
    notes: tuple[str, ...] = ()
    unit_name: str = "unit"
    log_cov: FloatArray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "counts", frozen(self.counts, np.int64))
        object.__setattr__(self, "exposure", frozen(self.exposure))
        if self.log_cov is not None:
            cov = np.array(self.log_cov, dtype=float).reshape(2, 2)
            cov.flags.writeable = False
            object.__setattr__(self, "log_cov", cov)

    @property
    def prior_variance(self) -> float:
        """``a/b^2`` (0 at the boundary)."""
        return 0.0 if self.boundary else self.a / self.b**2

    @property
    def shrinkage(self) -> FloatArray:
        """``B_i = b/(b + e_i)``: the posterior mean's weight on the prior mean."""
        if self.boundary:
            return frozen(np.ones(self.counts.size))
        return frozen(self.b / (self.b + self.exposure))

    @property
    def post_shape(self) -> FloatArray:
        """Posterior shape ``a + y_i`` (``inf`` at the boundary)."""
        return frozen(self.a + self.counts)

    @property
    def post_rate(self) -> FloatArray:
        """Posterior rate ``b + e_i`` (``inf`` at the boundary)."""
        return frozen(self.b + self.exposure)

    @property
    def post_mean(self) -> FloatArray:
        """Posterior means; the prior mean for every unit at the boundary."""
        if self.boundary:
            return frozen(np.full(self.counts.size, self.prior_mean))
        return frozen(self.post_shape / self.post_rate)

    @property
    def post_sd(self) -> FloatArray:
        """Posterior standard deviations; 0 at the boundary."""
        if self.boundary:
            return frozen(np.zeros(self.counts.size))
        return frozen(np.sqrt(self.post_shape) / self.post_rate)

    def _log_se(self, gradient: FloatArray) -> float | None:
        """Delta-method SE of a function of ``(log a, log b)`` with this gradient."""
        if self.log_cov is None:
            return None
        return float(np.sqrt(gradient @ self.log_cov @ gradient))

    @property
    def prior_mean_estimate(self) -> HyperEstimate:
        """The prior mean ``a/b``; log(a/b) = log a - log b."""
        return HyperEstimate(self.prior_mean, "log", self._log_se(np.array([1.0, -1.0])))

    @property
    def prior_sd_estimate(self) -> HyperEstimate:
        """The prior SD ``sqrt(a)/b`` (0 at the boundary); log sd = log a / 2 - log b."""
        if self.boundary:
            return HyperEstimate(0.0, "log", None)
        sd = float(np.sqrt(self.prior_variance))
        return HyperEstimate(sd, "log", self._log_se(np.array([0.5, -1.0])))

    def _central_bounds(self, ci_prob: float) -> tuple[FloatArray, FloatArray]:
        """Equal-tailed intervals of each unit's posterior Gamma."""
        if self.boundary:
            return self.post_mean, self.post_mean
        tail = (1.0 - ci_prob) / 2.0
        scale = 1.0 / self.post_rate
        lower = stats.gamma.ppf(tail, self.post_shape, scale=scale)
        upper = stats.gamma.ppf(1.0 - tail, self.post_shape, scale=scale)
        return lower, upper

    def _data_columns(self) -> dict[str, NDArray[Any]]:
        return {"counts": self.counts, "exposure": self.exposure}

    def _posterior_parameters(self) -> dict[str, FloatArray]:
        return {"post_shape": self.post_shape, "post_rate": self.post_rate}


def _nb_loglik_terms(a: float, b: float, y: NDArray[np.int64], e: FloatArray) -> FloatArray:
    """Per-unit negative-binomial log-likelihood (exposures > 0)."""
    return (
        special.gammaln(a + y)
        - special.gammaln(a)
        - special.gammaln(y + 1.0)
        - a * np.log1p(e / b)
        + y * (np.log(e) - np.log(b + e))
    )


def _negloglik(
    x: FloatArray, y: NDArray[np.int64], e: FloatArray
) -> tuple[float, FloatArray, FloatArray]:
    """Negative marginal log-likelihood in (log a, log b), gradient, Hessian."""
    a, b = np.exp(x)
    ll = np.sum(_nb_loglik_terms(a, b, y, e))
    g_a = np.sum(special.digamma(a + y) - special.digamma(a) - np.log1p(e / b))
    g_b = np.sum(a / b - (a + y) / (b + e))
    h_aa = np.sum(special.polygamma(1, a + y) - special.polygamma(1, a))
    h_ab = np.sum(1.0 / b - 1.0 / (b + e))
    h_bb = np.sum((a + y) / (b + e) ** 2) - e.size * a / b**2
    # Chain rule to the log scale: d/du = a d/da, d2/du2 = a^2 d2/da2 + a d/da.
    grad = np.array([a * g_a, b * g_b])
    h_uv = a * b * h_ab
    hess = np.array([[a * a * h_aa + a * g_a, h_uv], [h_uv, b * b * h_bb + b * g_b]])
    return -float(ll), -grad, -hess


class PoissonGamma(CompoundModel):
    """Poisson–gamma compound model for counts with exposures.

    Parameters
    ----------
    counts : array_like
        Non-negative whole numbers.
    exposure : float or array_like, default 1.0
        Non-negative exposures (person-time, population, ...). A unit with
        zero exposure must have zero count; its posterior is the prior.
    units : sequence, optional
        Unit labels (default ``"0"``, ``"1"``, ...).

    Notes
    -----
    Full-Bayes variables (:meth:`pymc_model`): ``mu`` (prior mean rate),
    ``a`` (prior shape), deterministic ``b = a/mu`` (prior rate), ``theta``
    (unit rates, dim ``unit``), observed ``y``.
    """

    term: ClassVar[str] = "lambda"
    size_name: ClassVar[str] = "exposure"
    boundary_note: ClassVar[str] = "complete pooling (a = inf)"
    no_data_note: ClassVar[str] = "no exposure: posterior = prior"

    def __init__(
        self,
        counts: ArrayLike,
        exposure: float | ArrayLike = 1.0,
        units: Sequence[Any] | None = None,
    ) -> None:
        y = as_counts(counts, "counts")
        e = as_vector(np.broadcast_to(np.asarray(exposure, dtype=float), y.shape), "exposure")
        if np.any(e < 0):
            raise ValueError("exposure must be non-negative")
        if np.any((e == 0) & (y > 0)):
            bad = np.flatnonzero((e == 0) & (y > 0)).tolist()
            raise ValueError(f"positive counts with zero exposure at positions {bad}")
        if np.count_nonzero(e) < 2:
            raise ValueError("at least 2 units with exposure > 0 are needed")
        self.counts: NDArray[np.int64] = frozen(y, np.int64)
        self.exposure: FloatArray = frozen(e)
        self.units: tuple[str, ...] = unit_labels(units, y.size)
        self.unit_name: str = unit_label_name(units)

    @property
    def size(self) -> FloatArray:
        """The exposures, the first column of :meth:`compare`."""
        return self.exposure

    @property
    def pooled(self) -> float:
        """Complete-pooling rate ``sum y / sum e``."""
        return float(self.counts.sum() / self.exposure.sum())

    @property
    def raw(self) -> FloatArray:
        """Raw rates ``y_i/e_i`` (NaN for units with zero exposure)."""
        e = self.exposure
        out = np.full(e.size, np.nan)
        out[e > 0] = self.counts[e > 0] / e[e > 0]
        return out

    def _used(self) -> tuple[NDArray[np.int64], FloatArray]:
        keep = self.exposure > 0
        return self.counts[keep], self.exposure[keep]

    def _check_rate(self) -> float:
        r = self.pooled
        if r == 0.0:
            raise ValueError(
                "all counts are zero: the marginal MLE of the gamma prior does not "
                "exist (its mean is pushed to 0); raw and pooled rates are all 0. "
                "Use fit_bayes() with a proper hyperprior instead."
            )
        return r

    def _moments(self) -> tuple[float, float]:
        """Moment estimates (prior mean, prior variance); variance 0 means pooling."""
        r = self._check_rate()
        y, e = self._used()
        total = e.sum()
        s = np.sum(e * (y / e - r) ** 2)
        var = (s - (y.size - 1) * r) / (total - np.sum(e**2) / total)
        return r, max(0.0, float(var))

    def loglik(self, a: float, b: float) -> float:
        """Marginal negative-binomial log-likelihood of the data.

        Parameters
        ----------
        a, b : float
            Prior shape and rate; ``inf`` for both means complete pooling at
            the pooled rate (a Poisson likelihood).

        Returns
        -------
        float
            The log-likelihood (units with zero exposure contribute 0).
        """
        y, e = self._used()
        if np.isinf(a) or np.isinf(b):
            return float(np.sum(stats.poisson.logpmf(y, e * self.pooled)))
        return float(np.sum(_nb_loglik_terms(a, b, y, e)))

    def fit(self, method: Literal["ml", "mm"] = "ml") -> PoissonGammaFit:
        """Estimate the gamma prior and form the per-unit posteriors.

        Parameters
        ----------
        method : {"ml", "mm"}, default "ml"
            Marginal (negative-binomial) maximum likelihood (Newton trust
            region on ``(log a, log b)`` with analytic derivatives) or the
            method of moments (weighted by exposure).

        Returns
        -------
        PoissonGammaFit
            Warns at the complete-pooling boundary and for zero exposures;
            raises ``ValueError`` when all counts are zero.
        """
        if method not in ("ml", "mm"):
            raise ValueError(f"method must be 'ml' or 'mm', got {method!r}")
        r, var = self._moments()
        a_se = b_se = log_cov = None
        if var > 0:
            a, b = r * r / var, r / var
        else:
            a = b = np.inf
        if method == "ml":
            a, b, a_se, b_se, log_cov = self._maximise(a, b)
        boundary = bool(np.isinf(a))
        notes = []
        if boundary:
            notes.append(
                "no overdispersion between units: the gamma prior is a point mass at "
                "the pooled rate (boundary fit), complete pooling; every posterior is "
                "a point mass"
            )
        empty = [u for u, e in zip(self.units, self.exposure, strict=True) if e == 0]
        if empty:
            notes.append(f"units with zero exposure {empty}: their posterior is the prior")
        warn_all(notes)
        return PoissonGammaFit(
            units=self.units,
            counts=self.counts,
            exposure=self.exposure,
            method=method,
            a=float(a),
            b=float(b),
            prior_mean=float(r if boundary else a / b),
            a_se=a_se,
            b_se=b_se,
            boundary=boundary,
            loglik=self.loglik(a, b),
            notes=tuple(notes),
            unit_name=self.unit_name,
            log_cov=log_cov,
        )

    def _maximise(
        self, a0: float, b0: float
    ) -> tuple[float, float, float | None, float | None, FloatArray | None]:
        """Marginal MLE as (a, b, se(a), se(b), cov(log a, log b)).

        a = b = inf at the boundary, where the standard errors are None.
        """
        r = self.pooled
        y, e = self._used()
        if not np.isfinite(a0):
            # No overdispersion by moments: start from a moderately diffuse prior.
            a0, b0 = 10.0, 10.0 / r
        mean = e * r
        found = conjugate_mle(
            lambda x: _negloglik(x, y, e),
            np.log([a0, b0]),
            nll_pooled=-float(np.sum(stats.poisson.logpmf(y, mean))),
            # d loglik / d(1/a) at 1/a = 0: (1/2) sum (y - m)^2 - y.
            score_pooled=float(0.5 * np.sum((y - mean) ** 2 - y)),
            degenerate_message=(
                "the gamma prior's shape is estimated as 0: the rates are too "
                "dispersed for a gamma prior"
            ),
        )
        if found is None:
            return np.inf, np.inf, None, None, None
        x, cov = found
        a, b = np.exp(x)
        se_a, se_b = a * np.sqrt(cov[0, 0]), b * np.sqrt(cov[1, 1])
        return float(a), float(b), float(se_a), float(se_b), cov

    def pymc_model(self, hyperpriors: Mapping[str, HyperPriorSpec] | None = None) -> pm.Model:
        """The full-Bayes version of the model.

        Parameters
        ----------
        hyperpriors : mapping, optional
            Replacements keyed ``"mu"`` and/or ``"a"``, each
            ``(distribution name, parameters)``. Defaults:
            ``mu ~ LogNormal(log r0, 2.5)`` with ``r0 = (sum y + 0.5)/sum e``
            (finite even when all counts are 0) and ``a ~ LogNormal(0, 2.5)``.

        Returns
        -------
        pymc.Model
            Variables ``mu``, ``a``, ``b``, ``theta`` (dim ``unit``), observed
            ``y``.
        """
        import pymc as pm

        check_hyperprior_keys(hyperpriors, ("mu", "a"))
        chosen = dict(hyperpriors or {})
        r0 = (float(self.counts.sum()) + 0.5) / float(self.exposure.sum())
        with pm.Model(coords={"unit": list(self.units)}) as model:
            mu = make_prior(
                "mu", chosen.get("mu"), ("LogNormal", {"mu": float(np.log(r0)), "sigma": 2.5})
            )
            shape = make_prior("a", chosen.get("a"), ("LogNormal", {"mu": 0.0, "sigma": 2.5}))
            rate = pm.Deterministic("b", shape / mu)
            theta = pm.Gamma("theta", alpha=shape, beta=rate, dims="unit")
            pm.Poisson(
                "y",
                mu=np.asarray(self.exposure) * theta,
                observed=np.asarray(self.counts),
                dims="unit",
            )
        return model

    def prior_sd_draws(self, posterior: xr.Dataset) -> xr.DataArray:
        """The Gamma prior's SD ``sqrt(a)/b``, per draw.

        Parameters
        ----------
        posterior : xarray.Dataset
            Draws of :meth:`pymc_model`.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw)``.
        """
        return (posterior["a"] ** 0.5 / posterior["b"]).rename("prior_sd")
