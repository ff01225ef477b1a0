"""What the normal–normal explorer needs from Python.

Everything that is a closed-form function of ``tau`` (the precision-weighted
mean, the shrinkage factors, the plug-in posteriors, the Morris-corrected
intervals at ``A = tau^2``, the marginal log-likelihood) is computed in the
page. What is not — the estimates of ``tau``, James–Stein, and the full-Bayes
posterior of ``tau`` and the units' full-Bayes intervals — is computed here
and inlined.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import stats

from hiermodels.compound import _normal_math as nm
from hiermodels.compound.hyperpriors import HyperPriorSpec
from hiermodels.compound.normal import NormalNormal
from hiermodels.intervals import check_ci_prob, mixture_quantiles
from hiermodels.names import DEFAULT_CI_PROB

__all__ = ["FullBayesGrid", "full_bayes_grid", "normal_payload", "tau_range"]

FloatArray = NDArray[np.float64]

#: Grid points in tau for the full-Bayes posterior (mu is integrated out exactly).
_TAU_POINTS = 401


def tau_range(model: NormalNormal) -> tuple[float, float]:
    """The slider's range of ``tau > 0``: SE/50 to five times the data's scale.

    Parameters
    ----------
    model : NormalNormal
        The data.

    Returns
    -------
    (float, float)
        Smallest and largest positive ``tau``; the slider also has ``tau = 0``.
    """
    # below a fiftieth of the smallest SE every B_i exceeds 0.9997: complete pooling in all but name
    scale = float(np.sqrt(model.y.var() + np.mean(model.se**2)))
    return 0.02 * float(model.se.min()), 5.0 * scale


def _distribution(variable: Any) -> tuple[str, list[float]]:
    """Name and parameters of a PyMC random variable's distribution."""
    node = variable.owner
    name = type(node.op).__name__.removesuffix("RV")
    return name, [float(p.eval()) for p in node.op.dist_params(node)]


class FullBayesGrid:
    """Full-Bayes posterior of ``tau`` on a grid, with the units' intervals.

    The hyperpriors are those of :meth:`NormalNormal.pymc_model`: the log
    density of its ``tau`` variable on the grid, and its Normal ``mu``
    integrated out exactly. Given ``tau``, ``mu | y`` is normal with mean
    ``mu_bar`` and variance ``V``, and ``theta_i | tau, y`` is normal with the
    conditional mean of :func:`~hiermodels.compound._normal_math.peb_posterior`
    at ``mu_bar`` and variance ``(1 - B_i) se_i^2 + B_i^2 V``; each unit's
    posterior is the mixture of these over the grid's posterior weights.

    Parameters
    ----------
    model : NormalNormal
        The data.
    ci_prob : float
        Probability of the units' central intervals.
    hyperpriors : mapping, optional
        As for :meth:`NormalNormal.pymc_model`; the prior of ``mu`` must be Normal.
    """

    def __init__(
        self,
        model: NormalNormal,
        ci_prob: float,
        hyperpriors: Mapping[str, HyperPriorSpec] | None = None,
    ) -> None:
        import pymc as pm

        pymc_model = model.pymc_model(hyperpriors)
        mu_name, mu_params = _distribution(pymc_model["mu"])
        if mu_name != "Normal":
            raise ValueError(
                f"the explorer integrates mu out exactly and needs a Normal hyperprior on mu, "
                f"got {mu_name}; give hyperpriors={{'mu': ('Normal', {{'mu': ..., 'sigma': ...}})}}"
            )
        tau_name, tau_params = _distribution(pymc_model["tau"])
        m0, s0 = mu_params
        self.priors = (
            f"μ ~ Normal(mean {m0:.4g}, sd {s0:.4g}) and τ ~ {tau_name}"
            f"({', '.join(f'{p:.4g}' for p in tau_params)})"
        )
        v = model.se**2
        _, tau_hi = tau_range(model)
        self.tau: FloatArray = np.linspace(0.0, tau_hi, _TAU_POINTS)
        tau2 = self.tau**2
        w = 1.0 / (v[None, :] + tau2[:, None])
        precision = w.sum(axis=1) + 1.0 / s0**2
        mu_bar = (w @ model.y + m0 / s0**2) / precision
        mu_var = 1.0 / precision
        # the integrand is Gaussian in mu: its integral is its peak times sqrt(2 pi V)
        log_marginal = (
            stats.norm.logpdf(model.y, mu_bar[:, None], np.sqrt(1.0 / w)).sum(axis=1)
            + stats.norm.logpdf(mu_bar, m0, s0)
            + 0.5 * np.log(2.0 * np.pi * mu_var)
        )
        log_prior = np.asarray(pm.logp(pymc_model["tau"], self.tau).eval(), dtype=float)
        log_post = log_prior + log_marginal
        mass = np.exp(log_post - log_post.max())
        self.weights: FloatArray = mass / mass.sum()
        # density of tau: grid masses over the (uniform) grid step
        self.tau_density: FloatArray = self.weights / (self.tau[1] - self.tau[0])
        self.tau_mean = float(self.weights @ self.tau)
        means, sds, b = nm.peb_posterior(model.y[None, :], v, mu_bar, tau2)
        self._sds = np.sqrt(sds**2 + b**2 * mu_var[:, None])
        self.post_mean: FloatArray = self.weights @ means
        tail = (1.0 - ci_prob) / 2.0
        self.lower, self.upper = mixture_quantiles(
            means, self._sds, np.array([tail, 1.0 - tail]), weights=self.weights
        )


def full_bayes_grid(
    model: NormalNormal,
    ci_prob: float = DEFAULT_CI_PROB,
    hyperpriors: Mapping[str, HyperPriorSpec] | None = None,
) -> FullBayesGrid:
    """The full-Bayes posterior the normal–normal explorer shows.

    Parameters
    ----------
    model : NormalNormal
        The data.
    ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
        Probability of the units' central intervals.
    hyperpriors : mapping, optional
        As for :meth:`NormalNormal.pymc_model`.

    Returns
    -------
    FullBayesGrid
    """
    return FullBayesGrid(model, check_ci_prob(ci_prob), hyperpriors)


def _estimates(model: NormalNormal) -> dict[str, dict[str, Any]]:
    """ML, REML and moment estimates of tau, with their boundary notes silenced."""
    out: dict[str, dict[str, Any]] = {}
    labels = {"ml": "ML", "reml": "REML", "mm": "moments (DerSimonian–Laird)"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # boundary fits are shown on the page
        for method, label in labels.items():
            fit = model.fit(method)  # type: ignore[arg-type]
            out[method] = {"label": label, "tau": fit.tau, "mu": fit.mu, "loglik": fit.loglik}
    return out


def normal_payload(
    model: NormalNormal,
    *,
    ci_prob: float = DEFAULT_CI_PROB,
    hyperpriors: Mapping[str, HyperPriorSpec] | None = None,
    truth: FloatArray | None = None,
    value_name: str = "estimate",
) -> dict[str, Any]:
    """The page's data for a normal–normal model.

    Parameters
    ----------
    model : NormalNormal
        Estimates and known standard errors.
    ci_prob : float, default :data:`~hiermodels.names.DEFAULT_CI_PROB`
        Probability of every interval.
    hyperpriors : mapping, optional
        Hyperpriors of the full-Bayes posterior (see :meth:`NormalNormal.pymc_model`).
    truth : numpy.ndarray, optional
        The units' true values (baseball: the rest-of-season averages); the
        page then draws the total squared error against them.
    value_name : str, default "estimate"
        What ``y`` measures, for the axis labels.

    Returns
    -------
    dict
        JSON-ready payload.
    """
    prob = check_ci_prob(ci_prob)
    tau_lo, tau_hi = tau_range(model)
    grid = full_bayes_grid(model, prob, hyperpriors)
    payload: dict[str, Any] = {
        "unit_name": model.unit_name,
        "value_name": value_name,
        "units": list(model.units),
        "y": model.y,
        "se": model.se,
        "ci_prob": prob,
        "z": float(stats.norm.ppf(0.5 + prob / 2.0)),
        "tau_range": [tau_lo, tau_hi],
        "estimates": _estimates(model),
        "morris": model.k >= 4,
        # Morris's own estimate of A = tau^2, where the page's Morris intervals are his
        "morris_a": float(nm.morris_batch(model.y[None, :], model.se**2)[3][0])
        if model.k >= 4
        else None,
        "full_bayes": {
            "tau": grid.tau,
            "density": grid.tau_density,
            "tau_mean": grid.tau_mean,
            "mean": grid.post_mean,
            "lower": grid.lower,
            "upper": grid.upper,
            "priors": grid.priors,
        },
        "truth": truth,
        "james_stein": None,
    }
    if model.equal_se and model.k >= 4:
        js = model.james_stein()
        v = float(model.se[0] ** 2)
        # the tau whose shrinkage v/(v + tau^2) equals James–Stein's 1 - c (none if c <= 0)
        tau_js = float(np.sqrt(v * js.factor / (1.0 - js.factor))) if 0 < js.factor < 1 else None
        payload["james_stein"] = {"estimates": js.estimates, "factor": js.factor, "tau": tau_js}
    return payload
