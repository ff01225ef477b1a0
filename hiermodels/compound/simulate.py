"""A vectorised simulator of the normal–normal compound model, for teaching.

Each replication draws ``theta_i ~ N(mu, tau^2)``, ``i = 1..k``, then
``y_i | theta_i ~ N(theta_i, se_i^2)``, and scores several estimators of the
vector ``theta`` by their total squared error ``sum_i (est_i - theta_i)^2``.
All replications are drawn and estimated at once with numpy, so thousands of
them take a fraction of a second; full Bayes, which needs MCMC, can be added
for a few of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from hiermodels._checks import check_random_seed
from hiermodels.compound import _normal_math as nm
from hiermodels.compound._inputs import frozen
from hiermodels.compound.hyperpriors import HyperPriorSpec
from hiermodels.compound.normal import NormalNormal

__all__ = ["CompoundSimulation", "simulate_compound"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class CompoundSimulation:
    """Total squared errors of several estimators over simulated data sets.

    Attributes
    ----------
    k : int
        Units per data set.
    mu, tau : float
        The true prior ``G = N(mu, tau^2)``.
    se : numpy.ndarray
        Sampling standard errors, one per unit.
    eb_method : str
        Estimator of ``(mu, tau2)`` used by ``eb``.
    losses : pandas.DataFrame
        One row per replication (index ``rep``), one column per estimator:
        ``raw`` (the ``y_i``), ``james_stein`` and ``james_stein_plus`` (equal
        SEs and k >= 4 only), ``eb`` (parametric EB), ``oracle`` (the Bayes
        rule with the true ``mu`` and ``tau``).
    bayes_losses : pandas.DataFrame
        For the first ``n_bayes`` replications: the same columns plus
        ``full_bayes`` (posterior mean of the PyMC model). Empty if
        ``n_bayes = 0``.
    """

    k: int
    mu: float
    tau: float
    se: FloatArray
    eb_method: str
    losses: pd.DataFrame
    bayes_losses: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __post_init__(self) -> None:
        object.__setattr__(self, "se", frozen(self.se))

    @property
    def n_rep(self) -> int:
        """Number of replications."""
        return len(self.losses)

    @property
    def theoretical_risk(self) -> dict[str, float]:
        """Closed-form Bayes risks (expected total squared error under G).

        ``raw``: ``sum se_i^2``. ``oracle``: ``sum se_i^2 (1 - B_i)``,
        ``B_i = se_i^2/(se_i^2 + tau^2)``. ``james_stein`` (equal variances
        ``sigma^2``, shrinking to the grand mean with ``k - 3``):
        ``k sigma^2 - (k - 3) sigma^2 B``, because
        ``S = sum (y_i - ybar)^2 ~ (sigma^2 + tau^2) chi^2_{k-1}`` gives
        ``E[1/S] = 1/((k - 3)(sigma^2 + tau^2))`` in Stein's unbiased risk
        ``k sigma^2 - (k - 3)^2 sigma^4 E[1/S]`` (Efron & Morris 1973).

        Returns
        -------
        dict of str to float
            Only the estimators with a closed form.
        """
        v = self.se**2
        b = v / (v + self.tau**2)
        out = {"raw": float(v.sum()), "oracle": float(np.sum(v * (1.0 - b)))}
        if "james_stein" in self.losses:
            out["james_stein"] = float(self.k * v[0] - (self.k - 3) * v[0] * b[0])
        return out

    def risk(self) -> pd.DataFrame:
        """Monte Carlo risk of each estimator.

        Returns
        -------
        pandas.DataFrame
            Index ``estimator``; columns ``risk`` (mean total squared error),
            ``mcse`` (its Monte Carlo standard error) and ``relative`` (risk
            over the raw estimator's).
        """
        mean = self.losses.mean()
        mcse = self.losses.std(ddof=1) / np.sqrt(self.n_rep)
        frame = pd.DataFrame({"risk": mean, "mcse": mcse, "relative": mean / mean["raw"]})
        frame.index.name = "estimator"
        return frame


def _draw(
    rng: np.random.Generator, n_rep: int, mu: float, tau: float, se: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Draw theta from G and y given theta for all replications."""
    theta = mu + tau * rng.standard_normal((n_rep, se.size))
    y = theta + se * rng.standard_normal((n_rep, se.size))
    return theta, y


def _estimates(
    y: FloatArray, se: FloatArray, mu: float, tau: float, eb_method: nm.Method
) -> dict[str, FloatArray]:
    """Every vectorised estimator of theta, each of shape (n_rep, k)."""
    v = se**2
    n_rep, k = y.shape
    out = {"raw": y}
    if k >= 4 and np.all(v == v[0]):
        out["james_stein"] = nm.james_stein_batch(y, float(v[0]), positive_part=False)[0]
        out["james_stein_plus"] = nm.james_stein_batch(y, float(v[0]), positive_part=True)[0]
    tau2_hat = nm.estimate_tau2(y, v, eb_method)
    mu_hat, _ = nm.gls_mean(y, v, tau2_hat)
    out["eb"] = nm.peb_posterior(y, v, mu_hat, tau2_hat)[0]
    true_mu, true_tau2 = np.full(n_rep, mu), np.full(n_rep, tau**2)
    out["oracle"] = nm.peb_posterior(y, v, true_mu, true_tau2)[0]
    return out


def _full_bayes_means(
    y: FloatArray,
    se: FloatArray,
    hyperpriors: Mapping[str, HyperPriorSpec] | None,
    draws: int,
    tune: int,
    seed: int,
) -> FloatArray:
    """Posterior means of theta for each row of y; the model is compiled once."""
    import nutpie  # local: only needed when full Bayes is requested

    from hiermodels.bayes.samplers import reproducible_compilation

    model = NormalNormal(y[0], se).pymc_model(hyperpriors)
    means = np.empty_like(y)
    with reproducible_compilation():
        compiled = nutpie.compile_pymc_model(model)
        for r in range(y.shape[0]):
            trace = nutpie.sample(
                compiled.with_data(y_data=y[r]),
                draws=draws,
                tune=tune,
                chains=2,
                cores=1,
                seed=seed + r,
                progress_bar=False,
            )
            means[r] = trace["posterior"]["theta"].mean(("chain", "draw")).to_numpy()
    return means


def simulate_compound(
    n_rep: int = 2000,
    k: int = 10,
    *,
    mu: float = 0.0,
    tau: float = 1.0,
    se: float | ArrayLike = 1.0,
    eb_method: nm.Method = "ml",
    n_bayes: int = 0,
    bayes_draws: int = 500,
    bayes_tune: int = 500,
    hyperpriors: Mapping[str, HyperPriorSpec] | None = None,
    random_seed: int | None = None,
) -> CompoundSimulation:
    """Compare the risks of raw, James–Stein, EB and full-Bayes estimates.

    Parameters
    ----------
    n_rep : int, default 2000
        Replications (data sets).
    k : int, default 10
        Units per data set.
    mu, tau : float
        The prior ``G = N(mu, tau^2)`` the ``theta_i`` are drawn from.
    se : float or array_like, default 1.0
        Sampling standard errors (scalar: equal for all units; James–Stein
        is scored only then, and only when k >= 4).
    eb_method : {"ml", "reml", "mm"}, default "ml"
        Estimator of ``(mu, tau2)`` for the EB column.
    n_bayes : int, default 0
        Also fit the full-Bayes model (:meth:`NormalNormal.pymc_model`, 2
        chains with nutpie) to the first ``n_bayes`` replications.
    bayes_draws, bayes_tune : int, default 500
        Draws and tuning steps per chain for those fits.
    hyperpriors : mapping, optional
        Hyperpriors of the full-Bayes model; the default is that of
        :meth:`NormalNormal.pymc_model` built on the first replication.
    random_seed : int, optional
        Seed for the simulation and the sampler.

    Returns
    -------
    CompoundSimulation
        Per-replication losses; ``.risk()`` summarises them.
    """
    seed = check_random_seed(random_seed, allow_generator=True)
    if n_rep < 2:
        raise ValueError("n_rep must be at least 2")
    if k < 2:
        raise ValueError("k must be at least 2")
    if tau < 0:
        raise ValueError("tau must be non-negative")
    if not 0 <= n_bayes <= n_rep:
        raise ValueError("n_bayes must lie between 0 and n_rep")
    ses = np.broadcast_to(np.asarray(se, dtype=float), (k,)).copy()
    if np.any(ses <= 0) or not np.all(np.isfinite(ses)):
        raise ValueError("se must be positive and finite")
    rng = np.random.default_rng(seed)
    theta, y = _draw(rng, n_rep, mu, tau, ses)
    estimates = _estimates(y, ses, mu, tau, eb_method)
    losses = pd.DataFrame({name: ((e - theta) ** 2).sum(axis=1) for name, e in estimates.items()})
    losses.index.name = "rep"
    bayes = pd.DataFrame()
    if n_bayes > 0:
        seed = int(rng.integers(0, 2**31 - 1 - n_bayes))
        fb = _full_bayes_means(y[:n_bayes], ses, hyperpriors, bayes_draws, bayes_tune, seed)
        bayes = losses.iloc[:n_bayes].copy()
        bayes["full_bayes"] = ((fb - theta[:n_bayes]) ** 2).sum(axis=1)
    return CompoundSimulation(
        k=k,
        mu=float(mu),
        tau=float(tau),
        se=ses,
        eb_method=eb_method,
        losses=losses,
        bayes_losses=bayes,
    )
