"""The normal–normal compound model with known sampling variances.

``y_i | theta_i ~ N(theta_i, se_i^2)`` independently and
``theta_i ~ N(mu, tau^2)`` i.i.d., so that marginally
``y_i ~ N(mu, se_i^2 + tau^2)``. The marginal likelihood gives
``(mu_hat, tau2_hat)``; plugging them into the conditional posterior gives the
parametric empirical-Bayes (PEB) estimate

    theta_hat_i = mu_hat + (1 - B_i) (y_i - mu_hat),  B_i = se_i^2 / (se_i^2 + tau2_hat),

a shrinkage estimator. James–Stein, Morris (1983) intervals and parametric
bootstrap intervals (Laird & Louis 1987) sit beside it, and
:meth:`NormalNormal.pymc_model` gives the full-Bayes version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from hiermodels._checks import check_random_seed
from hiermodels.compound import _normal_math as nm
from hiermodels.compound._inputs import (
    as_vector,
    frozen,
    unit_label_name,
    unit_labels,
)
from hiermodels.compound.base import CompoundFit, CompoundModel, HyperEstimate, warn_all
from hiermodels.compound.hyperpriors import HyperPriorSpec, check_hyperprior_keys, make_prior
from hiermodels.compound.intervals import EBIntervals
from hiermodels.compound.jamesstein import JamesStein, james_stein
from hiermodels.intervals import check_ci_prob, either_keyword

if TYPE_CHECKING:
    import pymc as pm

__all__ = ["NormalFit", "NormalNormal"]

FloatArray = NDArray[np.float64]

_BOUNDARY_MESSAGE = (
    "tau^2 is estimated as 0 (boundary fit): complete pooling. Every unit's EB "
    "estimate equals mu_hat and the plug-in posterior sd is 0; use "
    "morris_intervals() or bootstrap_intervals() for honest intervals."
)


@dataclass(frozen=True)
class NormalFit(CompoundFit):
    """Parametric empirical-Bayes fit of the normal–normal model.

    Attributes
    ----------
    units : tuple of str
        Unit labels.
    y, se : numpy.ndarray
        Data: estimates and their known standard errors.
    method : str
        ``"ml"``, ``"reml"``, ``"mm"`` or ``"fixed"`` (tau^2 given).
    mu : float
        Estimate of the prior mean.
    mu_se : float
        ``(sum 1/(se_i^2 + tau2))^(-1/2)``.
    tau2 : float
        Estimate of the prior variance (exactly 0 at the boundary).
    tau2_se : float or None
        From the expected information (ML, REML); ``None`` at the boundary,
        for the method of moments and when tau^2 was given.
    boundary : bool
        ``tau2 == 0``: complete pooling.
    loglik : float
        Marginal log-likelihood ``log m(y | mu, tau2)`` at the estimates.
    shrinkage : numpy.ndarray
        ``B_i = se_i^2 / (se_i^2 + tau2)``, the weight on ``mu``.
    post_mean, post_sd : numpy.ndarray
        Plug-in posterior means ``mu + (1 - B_i)(y_i - mu)`` and sds
        ``sqrt((1 - B_i) se_i^2)``.
    notes : tuple of str
        Plain-language remarks (e.g. the boundary).
    unit_name : str
        Name of the unit labels (``grpvar`` in the long summaries).
    """

    term: ClassVar[str] = "theta"
    interval_method: ClassVar[str] = "peb"

    units: tuple[str, ...]
    y: FloatArray
    se: FloatArray
    method: str
    mu: float
    mu_se: float
    tau2: float
    tau2_se: float | None
    boundary: bool
    loglik: float
    shrinkage: FloatArray
    post_mean: FloatArray
    post_sd: FloatArray
    notes: tuple[str, ...] = ()
    unit_name: str = "unit"

    def __post_init__(self) -> None:
        for name in ("y", "se", "shrinkage", "post_mean", "post_sd"):
            object.__setattr__(self, name, frozen(getattr(self, name)))

    @property
    def tau(self) -> float:
        """Prior standard deviation ``sqrt(tau2)``."""
        return float(np.sqrt(self.tau2))

    @property
    def prior_mean_estimate(self) -> HyperEstimate:
        """``mu`` with ``mu_se``."""
        return HyperEstimate(self.mu, "identity", self.mu_se)

    @property
    def prior_sd_estimate(self) -> HyperEstimate:
        """``tau``; its log-scale SE ``tau2_se / (2 tau2)`` where ``tau2_se`` exists."""
        log_se = None if self.tau2_se is None or self.boundary else self.tau2_se / (2 * self.tau2)
        return HyperEstimate(self.tau, "log", log_se)

    def _central_bounds(self, ci_prob: float) -> tuple[FloatArray, FloatArray]:
        """Plug-in (naive PEB) intervals ``post_mean ± z post_sd``."""
        z = float(stats.norm.ppf(0.5 + ci_prob / 2.0))
        return self.post_mean - z * self.post_sd, self.post_mean + z * self.post_sd

    def _data_columns(self) -> dict[str, NDArray[Any]]:
        return {"y": self.y, "se": self.se}


class NormalNormal(CompoundModel):
    """Normal–normal compound model with known, possibly unequal, SEs.

    Parameters
    ----------
    y : array_like
        Unit estimates ``y_i``.
    se : float or array_like
        Their known sampling standard errors (a scalar means equal SEs).
    units : sequence, optional
        Unit labels (default ``"0"``, ``"1"``, ...).

    Notes
    -----
    Full-Bayes variables (:meth:`pymc_model`): ``mu`` (prior mean), ``tau``
    (prior sd), ``z`` (standardised effects, dim ``unit``), ``theta = mu +
    tau z`` (dim ``unit``), observed ``y`` fed from the data container
    ``y_data``.
    """

    term: ClassVar[str] = "theta"
    size_name: ClassVar[str] = "se"
    boundary_note: ClassVar[str] = "complete pooling (tau^2 = 0)"

    def __init__(
        self, y: ArrayLike, se: float | ArrayLike, units: Sequence[Any] | None = None
    ) -> None:
        values = as_vector(y, "y")
        ses = as_vector(np.broadcast_to(np.asarray(se, dtype=float), values.shape), "se")
        if np.any(ses <= 0):
            raise ValueError("se must be positive for every unit")
        if values.size < 2:
            raise ValueError("the model needs at least 2 units")
        self.y: FloatArray = frozen(values)
        self.se: FloatArray = frozen(ses)
        self.units: tuple[str, ...] = unit_labels(units, values.size)
        self.unit_name: str = unit_label_name(units)

    @property
    def raw(self) -> FloatArray:
        """No-pooling estimates: the data ``y``."""
        return self.y

    @property
    def size(self) -> FloatArray:
        """The sampling SEs, the first column of :meth:`compare`."""
        return self.se

    @property
    def equal_se(self) -> bool:
        """Whether all sampling SEs are equal."""
        return bool(np.all(self.se == self.se[0]))

    @property
    def pooled(self) -> float:
        """Complete-pooling estimate: the precision-weighted mean of ``y``."""
        w = 1.0 / self.se**2
        return float(np.sum(w * self.y) / np.sum(w))

    def fit(self, method: nm.Method = "ml", *, tau2: float | None = None) -> NormalFit:
        """Estimate ``(mu, tau2)`` from the marginal and plug them in.

        Parameters
        ----------
        method : {"ml", "reml", "mm"}, default "ml"
            Marginal maximum likelihood, REML, or the method of moments of
            DerSimonian & Laird (1986).
        tau2 : float, optional
            A known prior variance; then only ``mu`` is estimated (by its
            weighted mean) and ``method`` is reported as ``"fixed"``.

        Returns
        -------
        NormalFit
            Warns (``UserWarning``) when ``tau2`` is 0: complete pooling.
        """
        v = self.se**2
        if tau2 is None:
            t2 = float(nm.estimate_tau2(self.y[None, :], v, method)[0])
            t2_se = nm.tau2_se(v, t2, method)
            label: str = method
        else:
            if not (np.isfinite(tau2) and tau2 >= 0):
                raise ValueError(f"tau2 must be finite and >= 0, got {tau2}")
            t2, t2_se, label = float(tau2), None, "fixed"
        mu_arr, wsum = nm.gls_mean(self.y[None, :], v, np.array([t2]))
        mean, sd, b = nm.peb_posterior(self.y[None, :], v, mu_arr, np.array([t2]))
        mu = float(mu_arr[0])
        loglik = float(np.sum(stats.norm.logpdf(self.y, mu, np.sqrt(v + t2))))
        notes = (_BOUNDARY_MESSAGE,) if t2 == 0.0 else ()
        warn_all(notes)
        return NormalFit(
            units=self.units,
            y=self.y,
            se=self.se,
            method=label,
            mu=mu,
            mu_se=float(1.0 / np.sqrt(wsum[0])),
            tau2=t2,
            tau2_se=t2_se,
            boundary=t2 == 0.0,
            loglik=loglik,
            shrinkage=b[0],
            post_mean=mean[0],
            post_sd=sd[0],
            notes=notes,
            unit_name=self.unit_name,
        )

    def james_stein(self, positive_part: bool = False) -> JamesStein:
        """James–Stein estimates; needs equal SEs and k >= 4.

        Parameters
        ----------
        positive_part : bool, default False
            Truncate the factor at 0.

        Returns
        -------
        JamesStein
            See :func:`james_stein`.
        """
        return james_stein(self.y, self.se, positive_part=positive_part, units=self.units)

    def morris_intervals(
        self, ci_prob: float | None = None, *, level: float | None = None
    ) -> EBIntervals:
        """Morris (1983) EB intervals, corrected for estimating ``(mu, tau2)``.

        With equal variances ``V = se^2``, k units and the grand mean as the
        only regression coefficient (r = 1), Morris (1983, JASA 78, 47–55)
        takes ``A_hat = max(0, S/(k-1) - V)``, ``S = sum (y_i - ybar)^2``, and

            B_hat = (k-3)/(k-1) * V / (V + A_hat)
            theta_i = y_i - B_hat (y_i - ybar)
            s_i^2 = V (1 - (k-1)/k * B_hat) + 2/(k-3) * B_hat^2 (y_i - ybar)^2

        and reports ``theta_i ± z s_i``. The factor ``(k-3)/(k-1)`` makes
        ``B_hat`` unbiased for ``B`` (it is the James–Stein shrinkage when
        ``A_hat > 0``); the term ``(k-1)/k`` adds the variance of ``ybar``; the
        last term is the variance of ``B_hat``. For unequal variances ``V_i``
        the same formulas are applied unit by unit with ``V_i`` and with
        ``A_hat`` from Morris's weighted estimating equation
        ``A = sum W_i [k/(k-1) (y_i - mu_hat)^2 - V_i] / sum W_i``,
        ``W_i = 1/(V_i + A)``, ``mu_hat = sum W_i y_i / sum W_i`` (truncated at
        0, solved by fixed-point iteration); this reduces to the equal-variance
        case exactly and is an approximation otherwise.

        Parameters
        ----------
        ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
            Coverage.
        level : float, optional
            Deprecated spelling of ``ci_prob``.

        Returns
        -------
        EBIntervals
            With ``method="morris"``; ``sd`` holds ``s_i``.
        """
        prob = check_ci_prob(either_keyword(ci_prob, level, new="ci_prob", old="level"))
        if self.k < 4:
            raise ValueError(f"Morris intervals need k >= 4 units, got {self.k}")
        mean, var, _, _ = nm.morris_batch(self.y[None, :], self.se**2)
        sd = np.sqrt(var[0])
        z = float(stats.norm.ppf(0.5 + prob / 2.0))
        return EBIntervals(
            units=self.units,
            mean=mean[0],
            sd=sd,
            lower=mean[0] - z * sd,
            upper=mean[0] + z * sd,
            ci_prob=prob,
            method="morris",
        )

    def bootstrap_intervals(
        self,
        method: nm.Method = "ml",
        *,
        n_boot: int = 2000,
        ci_prob: float | None = None,
        random_seed: int | np.random.Generator | None = None,
        level: float | None = None,
    ) -> EBIntervals:
        """Parametric-bootstrap EB intervals (Laird & Louis 1987, type III).

        Draw ``n_boot`` data sets from the fitted marginal,
        ``y*_i ~ N(mu_hat, se_i^2 + tau2_hat)``, re-estimate
        ``(mu*_b, tau2*_b)`` from each with the same ``method``, and use the
        equal-weight mixture of the plug-in posteriors
        ``N(mu*_b + (1 - B*_ib)(y_i - mu*_b), (1 - B*_ib) se_i^2)`` at the
        observed ``y_i``. Means and sds are the mixture's; the interval end
        points are its ``(1 ± ci_prob)/2`` quantiles. All replications are
        fitted at once (vectorised).

        Parameters
        ----------
        method : {"ml", "reml", "mm"}, default "ml"
            Estimator of the hyperparameters, for the data and each replicate.
        n_boot : int, default 2000
            Bootstrap replications.
        ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
            Coverage.
        random_seed : int or numpy.random.Generator, optional
            Seed.
        level : float, optional
            Deprecated spelling of ``ci_prob``.

        Returns
        -------
        EBIntervals
            With ``method="bootstrap"``.
        """
        prob = check_ci_prob(either_keyword(ci_prob, level, new="ci_prob", old="level"))
        random_seed = check_random_seed(random_seed, allow_generator=True)
        if n_boot < 2:
            raise ValueError("n_boot must be at least 2")
        v = self.se**2
        tau2 = nm.estimate_tau2(self.y[None, :], v, method)
        mu, _ = nm.gls_mean(self.y[None, :], v, tau2)
        rng = np.random.default_rng(random_seed)
        y_star = mu[0] + np.sqrt(v + tau2[0]) * rng.standard_normal((n_boot, self.k))
        tau2_star = nm.estimate_tau2(y_star, v, method)
        mu_star, _ = nm.gls_mean(y_star, v, tau2_star)
        y_obs = np.broadcast_to(self.y, y_star.shape)
        means, sds, _ = nm.peb_posterior(y_obs, v, mu_star, tau2_star)
        tail = (1.0 - prob) / 2.0
        lower, upper = nm.mixture_quantiles(means, sds, np.array([tail, 1.0 - tail]))
        mix_mean = means.mean(axis=0)
        mix_sd = np.sqrt((sds**2).mean(axis=0) + means.var(axis=0))
        return EBIntervals(
            units=self.units,
            mean=mix_mean,
            sd=mix_sd,
            lower=lower,
            upper=upper,
            ci_prob=prob,
            method="bootstrap",
        )

    def pymc_model(self, hyperpriors: Mapping[str, HyperPriorSpec] | None = None) -> pm.Model:
        """The full-Bayes version of the model.

        Parameters
        ----------
        hyperpriors : mapping, optional
            Replacements for the defaults, keyed ``"mu"`` and/or ``"tau"``,
            each ``(distribution name, parameters)``, e.g.
            ``{"tau": ("HalfCauchy", {"beta": 5.0})}``. Defaults, with
            ``s = sqrt(var(y) + mean(se^2))`` the marginal scale of the data:
            ``mu ~ Normal(mean(y), 5 s)``, ``tau ~ HalfNormal(2 s)``.

        Returns
        -------
        pymc.Model
            Variables ``mu``, ``tau``, ``z`` and ``theta`` (dim ``unit``),
            observed ``y``; non-centred so that small ``tau`` samples well.
        """
        import pymc as pm

        check_hyperprior_keys(hyperpriors, ("mu", "tau"))
        chosen = dict(hyperpriors or {})
        scale = float(np.sqrt(self.y.var() + np.mean(self.se**2)))
        with pm.Model(coords={"unit": list(self.units)}) as model:
            y_data = pm.Data("y_data", np.asarray(self.y), dims="unit")
            mu = make_prior(
                "mu", chosen.get("mu"), ("Normal", {"mu": float(self.y.mean()), "sigma": 5 * scale})
            )
            tau = make_prior("tau", chosen.get("tau"), ("HalfNormal", {"sigma": 2 * scale}))
            z = pm.Normal("z", 0.0, 1.0, dims="unit")
            theta = pm.Deterministic("theta", mu + tau * z, dims="unit")
            pm.Normal("y", mu=theta, sigma=np.asarray(self.se), observed=y_data, dims="unit")
        return model

    def prior_sd_draws(self, posterior: xr.Dataset) -> xr.DataArray:
        """The prior SD ``tau``, as sampled.

        Parameters
        ----------
        posterior : xarray.Dataset
            Draws of :meth:`pymc_model`.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw)``.
        """
        return posterior["tau"]
