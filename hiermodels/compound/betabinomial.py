"""The beta–binomial compound model.

``y_i | p_i ~ Binomial(n_i, p_i)`` independently and
``p_i ~ Beta(alpha, beta)`` i.i.d. The marginal of ``y_i`` is beta-binomial;
its maximiser ``(alpha_hat, beta_hat)`` — equivalently the prior mean
``mu = alpha/(alpha+beta)`` and precision ``M = alpha + beta`` — gives the
PEB posterior ``Beta(alpha_hat + y_i, beta_hat + n_i - y_i)``, whose mean

    (y_i + alpha_hat)/(n_i + M_hat) = (1 - B_i) y_i/n_i + B_i mu_hat,  B_i = M_hat/(M_hat + n_i),

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

from hiermodels.compound._inputs import as_counts, frozen, unit_label_name, unit_labels
from hiermodels.compound.base import CompoundFit, CompoundModel, HyperEstimate, warn_all
from hiermodels.compound.hyperpriors import HyperPriorSpec, check_hyperprior_keys, make_prior
from hiermodels.compound.marginal_mle import conjugate_mle
from hiermodels.mle.response import log_binomial_coefficient

if TYPE_CHECKING:
    import pymc as pm

__all__ = ["BetaBinomial", "BetaBinomialFit"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class BetaBinomialFit(CompoundFit):
    """Empirical-Bayes fit of the beta–binomial model.

    Attributes
    ----------
    units : tuple of str
        Unit labels.
    successes, trials : numpy.ndarray
        Data.
    method : str
        ``"ml"`` or ``"mm"``.
    alpha, beta : float
        Prior parameters; ``inf`` at the complete-pooling boundary.
    prior_mean : float
        ``mu = alpha/(alpha + beta)`` (the pooled rate at the boundary).
    precision : float
        ``M = alpha + beta`` (``inf`` at the boundary).
    alpha_se, beta_se : float or None
        From the observed information (ML, interior fits only).
    boundary : bool
        ``True`` when ``M`` is infinite: complete pooling.
    loglik : float
        Marginal beta-binomial log-likelihood at the estimates.
    notes : tuple of str
        Plain-language remarks (boundary, units without trials).
    unit_name : str
        Name of the unit labels (``grpvar`` in the long summaries).
    log_cov : numpy.ndarray or None
        Inverse observed information in ``(log alpha, log beta)`` (ML,
        interior fits only); the standard errors of :meth:`fixef_summary`
        and :meth:`varcorr_summary` come from it.
    """

    term: ClassVar[str] = "p"
    interval_method: ClassVar[str] = "beta"

    units: tuple[str, ...]
    successes: NDArray[np.int64]
    trials: NDArray[np.int64]
    method: str
    alpha: float
    beta: float
    prior_mean: float
    precision: float
    alpha_se: float | None
    beta_se: float | None
    boundary: bool
    loglik: float
    notes: tuple[str, ...] = ()
    unit_name: str = "unit"
    log_cov: FloatArray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "successes", frozen(self.successes, np.int64))
        object.__setattr__(self, "trials", frozen(self.trials, np.int64))
        if self.log_cov is not None:
            cov = np.array(self.log_cov, dtype=float).reshape(2, 2)
            cov.flags.writeable = False
            object.__setattr__(self, "log_cov", cov)

    @property
    def shrinkage(self) -> FloatArray:
        """``B_i = M/(M + n_i)``: the posterior mean's weight on the prior mean."""
        if self.boundary:
            return frozen(np.ones(self.trials.size))
        return frozen(self.precision / (self.precision + self.trials))

    @property
    def post_alpha(self) -> FloatArray:
        """Posterior ``alpha + y_i`` (``inf`` at the boundary)."""
        return frozen(self.alpha + self.successes)

    @property
    def post_beta(self) -> FloatArray:
        """Posterior ``beta + n_i - y_i`` (``inf`` at the boundary)."""
        return frozen(self.beta + self.trials - self.successes)

    @property
    def post_mean(self) -> FloatArray:
        """Posterior means; the prior mean for every unit at the boundary."""
        if self.boundary:
            return frozen(np.full(self.trials.size, self.prior_mean))
        return frozen((self.alpha + self.successes) / (self.precision + self.trials))

    @property
    def post_sd(self) -> FloatArray:
        """Posterior standard deviations; 0 at the boundary."""
        if self.boundary:
            return frozen(np.zeros(self.trials.size))
        a, b = self.post_alpha, self.post_beta
        return frozen(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0))))

    @property
    def prior_sd(self) -> float:
        """SD of the Beta prior, ``sqrt(mu (1 - mu) / (M + 1))`` (0 at the boundary)."""
        if self.boundary:
            return 0.0
        mu = self.prior_mean
        return float(np.sqrt(mu * (1.0 - mu) / (self.precision + 1.0)))

    def _log_se(self, gradient: FloatArray) -> float | None:
        """Delta-method SE of a function of ``(log alpha, log beta)`` with this gradient."""
        if self.log_cov is None:
            return None
        return float(np.sqrt(gradient @ self.log_cov @ gradient))

    @property
    def prior_mean_estimate(self) -> HyperEstimate:
        """``mu = alpha/(alpha + beta)``; logit(mu) = log alpha - log beta."""
        return HyperEstimate(self.prior_mean, "logit", self._log_se(np.array([1.0, -1.0])))

    @property
    def prior_sd_estimate(self) -> HyperEstimate:
        """The prior SD, with its SE on the log scale."""
        if self.boundary:
            return HyperEstimate(0.0, "log", None)
        a, b = self.alpha, self.beta
        m = a + b
        # d log sd / d log a with log sd = (log a + log b - 2 log(a+b) - log(a+b+1)) / 2
        gradient = 0.5 * np.array(
            [1.0 - 2.0 * a / m - a / (m + 1.0), 1.0 - 2.0 * b / m - b / (m + 1.0)]
        )
        return HyperEstimate(self.prior_sd, "log", self._log_se(gradient))

    def _central_bounds(self, ci_prob: float) -> tuple[FloatArray, FloatArray]:
        """Equal-tailed intervals of each unit's posterior Beta."""
        if self.boundary:
            return self.post_mean, self.post_mean
        tail = (1.0 - ci_prob) / 2.0
        lower = stats.beta.ppf(tail, self.post_alpha, self.post_beta)
        upper = stats.beta.ppf(1.0 - tail, self.post_alpha, self.post_beta)
        return lower, upper

    def _data_columns(self) -> dict[str, NDArray[Any]]:
        return {"successes": self.successes, "trials": self.trials}

    def _posterior_parameters(self) -> dict[str, FloatArray]:
        return {"post_alpha": self.post_alpha, "post_beta": self.post_beta}


def _negloglik(
    x: FloatArray, y: NDArray[np.int64], n: NDArray[np.int64]
) -> tuple[float, FloatArray, FloatArray]:
    """Negative marginal log-likelihood in (log alpha, log beta), gradient, Hessian."""
    a, b = np.exp(x)
    f = n - y
    ll = np.sum(special.betaln(a + y, b + f) - special.betaln(a, b))
    dig_abn = special.digamma(a + b + n)
    dig_ab = special.digamma(a + b)
    g_a = np.sum(special.digamma(a + y) - dig_abn - special.digamma(a) + dig_ab)
    g_b = np.sum(special.digamma(b + f) - dig_abn - special.digamma(b) + dig_ab)
    tri_abn = special.polygamma(1, a + b + n)
    tri_ab = special.polygamma(1, a + b)
    h_ab = np.sum(tri_ab - tri_abn)
    h_aa = np.sum(special.polygamma(1, a + y) - special.polygamma(1, a)) + h_ab
    h_bb = np.sum(special.polygamma(1, b + f) - special.polygamma(1, b)) + h_ab
    # Chain rule to the log scale: d/du = a d/da, d2/du2 = a^2 d2/da2 + a d/da.
    grad = np.array([a * g_a, b * g_b])
    h_uv = a * b * h_ab
    hess = np.array([[a * a * h_aa + a * g_a, h_uv], [h_uv, b * b * h_bb + b * g_b]])
    return -float(ll), -grad, -hess


def _overdispersion_score(y: NDArray[np.int64], n: NDArray[np.int64], p: float) -> float:
    """Derivative of the log-likelihood in 1/M at complete pooling (M = inf).

    Writing the beta-binomial with mean p and phi = 1/M, the derivative at
    phi = 0 is sum y(y-1)/(2p) + (n-y)(n-y-1)/(2(1-p)) - n(n-1)/2 (Tarone
    1979); not positive means complete pooling is a local maximum.
    """
    f = n - y
    return float(np.sum(y * (y - 1) / (2 * p) + f * (f - 1) / (2 * (1 - p)) - n * (n - 1) / 2))


class BetaBinomial(CompoundModel):
    """Beta–binomial compound model for successes out of trials.

    Parameters
    ----------
    successes, trials : array_like
        Non-negative whole numbers with ``successes <= trials``. Units with
        zero trials are allowed: their posterior is the fitted prior.
    units : sequence, optional
        Unit labels (default ``"0"``, ``"1"``, ...).

    Notes
    -----
    Full-Bayes variables (:meth:`pymc_model`): ``mu`` (prior mean rate),
    ``M`` (prior precision ``alpha + beta``), deterministic ``alpha = mu M``
    and ``beta = (1 - mu) M``, ``theta`` (unit rates, dim ``unit``),
    observed ``y``.
    """

    term: ClassVar[str] = "p"
    size_name: ClassVar[str] = "trials"
    boundary_note: ClassVar[str] = "complete pooling (M = inf)"
    no_data_note: ClassVar[str] = "no trials: posterior = prior"

    def __init__(
        self, successes: ArrayLike, trials: ArrayLike, units: Sequence[Any] | None = None
    ) -> None:
        y = as_counts(successes, "successes")
        n = as_counts(trials, "trials")
        if y.shape != n.shape:
            raise ValueError(f"successes has {y.size} values but trials has {n.size}")
        if np.any(y > n):
            bad = np.flatnonzero(y > n).tolist()
            raise ValueError(f"successes exceed trials at positions {bad}")
        if np.count_nonzero(n) < 2:
            raise ValueError("at least 2 units with trials > 0 are needed")
        self.successes: NDArray[np.int64] = frozen(y, np.int64)
        self.trials: NDArray[np.int64] = frozen(n, np.int64)
        self.units: tuple[str, ...] = unit_labels(units, y.size)
        self.unit_name: str = unit_label_name(units)

    @property
    def size(self) -> NDArray[np.int64]:
        """The trials, the first column of :meth:`compare`."""
        return self.trials

    @property
    def pooled(self) -> float:
        """Complete-pooling rate ``sum y / sum n``."""
        return float(self.successes.sum() / self.trials.sum())

    @property
    def raw(self) -> FloatArray:
        """Raw rates ``y_i/n_i`` (NaN for units with zero trials)."""
        n = self.trials
        out = np.full(n.size, np.nan)
        out[n > 0] = self.successes[n > 0] / n[n > 0]
        return out

    def _used(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        keep = self.trials > 0
        return self.successes[keep], self.trials[keep]

    def _check_rate(self) -> float:
        p = self.pooled
        if p in (0.0, 1.0):
            which = "zero" if p == 0.0 else "equal to the trials"
            raise ValueError(
                f"all successes are {which}: the marginal MLE of the beta prior does "
                "not exist (its mean is pushed to the edge of (0, 1)); raw and pooled "
                f"rates are all {p:g}. Use fit_bayes() with a proper hyperprior instead."
            )
        return p

    def _moments(self) -> tuple[float, float]:
        """Moment estimates (mu, M); M = inf when there is no overdispersion."""
        p = self._check_rate()
        y, n = self._used()
        k, total = n.size, n.sum()
        s = np.sum(n * (y / n - p) ** 2)
        denom = total - np.sum(n**2) / total - (k - 1)
        if denom <= 0:
            raise ValueError("every unit has one trial: the prior precision is not identified")
        rho = (s / (p * (1 - p)) - (k - 1)) / denom
        if rho <= 0:
            return p, np.inf
        if rho >= 1:
            raise ValueError(
                "moment estimate of the intra-unit correlation is >= 1, so the prior "
                "precision would be <= 0; use method='ml'"
            )
        return p, 1.0 / rho - 1.0

    def loglik(self, alpha: float, beta: float) -> float:
        """Marginal beta-binomial log-likelihood of the data.

        Parameters
        ----------
        alpha, beta : float
            Prior parameters; ``inf`` for both means complete pooling at the
            pooled rate.

        Returns
        -------
        float
            ``sum log C(n_i, y_i) + log B(alpha + y_i, beta + n_i - y_i) - log B(alpha, beta)``.
        """
        y, n = self.successes, self.trials
        if np.isinf(alpha) or np.isinf(beta):
            return float(np.sum(stats.binom.logpmf(y, n, self.pooled)))
        terms = log_binomial_coefficient(n, y) + special.betaln(alpha + y, beta + n - y)
        return float(np.sum(terms - special.betaln(alpha, beta)))

    def fit(self, method: Literal["ml", "mm"] = "ml") -> BetaBinomialFit:
        """Estimate the beta prior and form the per-unit posteriors.

        Parameters
        ----------
        method : {"ml", "mm"}, default "ml"
            Marginal maximum likelihood (Newton trust region on
            ``(log alpha, log beta)`` with analytic digamma/trigamma
            derivatives) or the method of moments (weighted by trials).

        Returns
        -------
        BetaBinomialFit
            Warns (``UserWarning``) at the complete-pooling boundary and when
            some units have zero trials.
        """
        if method not in ("ml", "mm"):
            raise ValueError(f"method must be 'ml' or 'mm', got {method!r}")
        mu, precision = self._moments()
        alpha_se = beta_se = log_cov = None
        if method == "ml":
            mu, precision, alpha_se, beta_se, log_cov = self._maximise(mu, precision)
        boundary = bool(np.isinf(precision))
        alpha = np.inf if boundary else mu * precision
        beta = np.inf if boundary else (1.0 - mu) * precision
        notes = []
        if boundary:
            notes.append(
                "no overdispersion between units: the prior precision is infinite "
                "(boundary fit), complete pooling at the pooled rate; every posterior "
                "is a point mass"
            )
        empty = [u for u, n in zip(self.units, self.trials, strict=True) if n == 0]
        if empty:
            notes.append(f"units with zero trials {empty}: their posterior is the prior")
        warn_all(notes)
        return BetaBinomialFit(
            units=self.units,
            successes=self.successes,
            trials=self.trials,
            method=method,
            alpha=float(alpha),
            beta=float(beta),
            prior_mean=float(mu),
            precision=float(precision),
            alpha_se=alpha_se,
            beta_se=beta_se,
            boundary=boundary,
            loglik=self.loglik(alpha, beta),
            notes=tuple(notes),
            unit_name=self.unit_name,
            log_cov=log_cov,
        )

    def _maximise(
        self, mu0: float, m0: float
    ) -> tuple[float, float, float | None, float | None, FloatArray | None]:
        """Marginal MLE as (mu, M, se(alpha), se(beta), cov(log alpha, log beta)).

        M = inf at the boundary, where the standard errors are None.
        """
        p = self.pooled
        y, n = self._used()
        # Start from the moments, or from a diffuse prior when they say M = inf.
        m_start = m0 if np.isfinite(m0) else 10.0 * float(n.max())
        found = conjugate_mle(
            lambda x: _negloglik(x, y, n),
            np.log([mu0 * m_start, (1.0 - mu0) * m_start]),
            nll_pooled=-float(np.sum(stats.binom.logpmf(y, n, p) - log_binomial_coefficient(n, y))),
            score_pooled=_overdispersion_score(y, n, p),
            degenerate_message=(
                "the prior precision is estimated as 0: every unit is all successes "
                "or all failures; the beta prior degenerates to two point masses"
            ),
        )
        if found is None:
            return p, np.inf, None, None, None
        x, cov = found
        a, b = np.exp(x)
        se_a, se_b = a * np.sqrt(cov[0, 0]), b * np.sqrt(cov[1, 1])
        return float(a / (a + b)), float(a + b), float(se_a), float(se_b), cov

    def pymc_model(self, hyperpriors: Mapping[str, HyperPriorSpec] | None = None) -> pm.Model:
        """The full-Bayes version of the model.

        Parameters
        ----------
        hyperpriors : mapping, optional
            Replacements keyed ``"mu"`` and/or ``"M"``, each
            ``(distribution name, parameters)``. Defaults:
            ``mu ~ Beta(1, 1)`` (uniform) and ``M ~ LogNormal(log 10, 2.5)``
            (median 10 prior trials; 95 % between about 0.07 and 1300).

        Returns
        -------
        pymc.Model
            Variables ``mu``, ``M``, ``alpha``, ``beta``, ``theta`` (dim
            ``unit``), observed ``y``.
        """
        import pymc as pm

        check_hyperprior_keys(hyperpriors, ("mu", "M"))
        chosen = dict(hyperpriors or {})
        with pm.Model(coords={"unit": list(self.units)}) as model:
            mu = make_prior("mu", chosen.get("mu"), ("Beta", {"alpha": 1.0, "beta": 1.0}))
            prec = make_prior(
                "M", chosen.get("M"), ("LogNormal", {"mu": float(np.log(10.0)), "sigma": 2.5})
            )
            alpha = pm.Deterministic("alpha", mu * prec)
            beta = pm.Deterministic("beta", (1.0 - mu) * prec)
            theta = pm.Beta("theta", alpha=alpha, beta=beta, dims="unit")
            pm.Binomial(
                "y",
                n=np.asarray(self.trials),
                p=theta,
                observed=np.asarray(self.successes),
                dims="unit",
            )
        return model

    def prior_sd_draws(self, posterior: xr.Dataset) -> xr.DataArray:
        """The Beta prior's SD ``sqrt(mu (1 - mu) / (M + 1))``, per draw.

        Parameters
        ----------
        posterior : xarray.Dataset
            Draws of :meth:`pymc_model`.

        Returns
        -------
        xarray.DataArray
            Dims ``(chain, draw)``.
        """
        mu = posterior["mu"]
        return ((mu * (1.0 - mu) / (posterior["M"] + 1.0)) ** 0.5).rename("prior_sd")
