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
from scipy import special, stats

from hiermodels.compound import _normal_math as nm
from hiermodels.compound.hyperpriors import HyperPriorSpec
from hiermodels.compound.normal import NormalNormal
from hiermodels.intervals import check_ci_prob
from hiermodels.names import DEFAULT_CI_PROB

__all__ = ["FullBayesGrid", "full_bayes_grid", "normal_payload", "tau_range"]

FloatArray = NDArray[np.float64]

#: Grid points in tau and in mu for the full-Bayes posterior; the posterior of
#: mu given tau is within a few sds of the GLS mean, so 241 points resolve it.
_TAU_POINTS = 241
_MU_POINTS = 241
#: Bisection steps for the mixture quantiles; each halves the bracket.
_QUANTILE_STEPS = 60


def tau_range(model: NormalNormal) -> tuple[float, float]:
    """The slider's range of ``tau > 0``: a fiftieth of the smallest SE to five times the data's scale.

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


class FullBayesGrid:
    """Full-Bayes posterior of ``(mu, tau)`` on a grid, with the units' intervals.

    The log posterior is the model's own hyperpriors (the log densities of the
    ``mu`` and ``tau`` variables of :meth:`NormalNormal.pymc_model`) plus the
    marginal likelihood ``sum log N(y_i; mu, se_i^2 + tau^2)``; each unit's
    posterior is the grid-weighted mixture of the normal conditionals of
    :func:`~hiermodels.compound._normal_math.peb_posterior`.

    Parameters
    ----------
    model : NormalNormal
        The data.
    ci_prob : float
        Probability of the units' central intervals.
    hyperpriors : mapping, optional
        As for :meth:`NormalNormal.pymc_model`.
    """

    def __init__(
        self,
        model: NormalNormal,
        ci_prob: float,
        hyperpriors: Mapping[str, HyperPriorSpec] | None = None,
    ) -> None:
        import pymc as pm

        v = model.se**2
        pymc_model = model.pymc_model(hyperpriors)
        _, tau_hi = tau_range(model)
        self.tau: FloatArray = np.linspace(0.0, tau_hi, _TAU_POINTS)
        # mu given tau has sd at most sqrt(max(se^2) + tau_hi^2 / k) around the GLS mean.
        spread = 8.0 * np.sqrt((np.max(v) + tau_hi**2) / model.k)
        centre = model.pooled
        self.mu: FloatArray = np.linspace(centre - spread, centre + spread, _MU_POINTS)
        log_prior_tau = np.asarray(pm.logp(pymc_model["tau"], self.tau).eval(), dtype=float)
        log_prior_mu = np.asarray(pm.logp(pymc_model["mu"], self.mu).eval(), dtype=float)
        var = v[None, None, :] + self.tau[:, None, None] ** 2
        loglik = stats.norm.logpdf(model.y, self.mu[None, :, None], np.sqrt(var)).sum(axis=-1)
        log_post = log_prior_tau[:, None] + log_prior_mu[None, :] + loglik
        weights = np.exp(log_post - log_post.max())
        self.weights: FloatArray = weights / weights.sum()
        tau_marginal = self.weights.sum(axis=1)
        # density of tau: grid masses over the (uniform) grid step
        self.tau_density: FloatArray = tau_marginal / (self.tau[1] - self.tau[0])
        mu_flat = np.repeat(self.mu[None, :], self.tau.size, axis=0).ravel()
        tau2_flat = np.repeat(self.tau[:, None] ** 2, self.mu.size, axis=1).ravel()
        means, sds, _ = nm.peb_posterior(
            np.broadcast_to(model.y, (mu_flat.size, model.k)), v, mu_flat, tau2_flat
        )
        w = self.weights.ravel()
        keep = w > 1e-14 * w.max()  # components that cannot move a quantile at 1e-9
        self._means, self._sds, self._w = means[keep], sds[keep], w[keep] / w[keep].sum()
        self.post_mean: FloatArray = self._w @ self._means
        tail = (1.0 - ci_prob) / 2.0
        self.lower: FloatArray = self._quantile(tail)
        self.upper: FloatArray = self._quantile(1.0 - tail)
        self.tau_mean = float(np.sum(tau_marginal * self.tau))

    def _quantile(self, prob: float) -> FloatArray:
        """``prob`` quantile of each unit's weighted normal mixture, by bisection."""
        safe = np.where(self._sds > 0, self._sds, 1.0)
        lo = (self._means - 9.0 * self._sds).min(axis=0)
        hi = (self._means + 9.0 * self._sds).max(axis=0)
        for _ in range(_QUANTILE_STEPS):
            mid = 0.5 * (lo + hi)
            z = (mid - self._means) / safe
            cdf = np.where(self._sds > 0, special.ndtr(z), (mid >= self._means).astype(float))
            below = self._w @ cdf < prob
            lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
        return 0.5 * (lo + hi)


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


def _hyperprior_text(model: NormalNormal, hyperpriors: Mapping[str, HyperPriorSpec] | None) -> str:
    chosen = dict(hyperpriors or {})
    scale = float(np.sqrt(model.y.var() + np.mean(model.se**2)))
    mu_spec = chosen.get("mu", ("Normal", {"mu": float(model.y.mean()), "sigma": 5 * scale}))
    tau_spec = chosen.get("tau", ("HalfNormal", {"sigma": 2 * scale}))

    def text(name: str, spec: HyperPriorSpec) -> str:
        params = ", ".join(f"{k} = {float(v):.4g}" for k, v in spec[1].items())
        return f"{name} ~ {spec[0]}({params})"

    return f"{text('μ', mu_spec)}, {text('τ', tau_spec)}"


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
            "priors": _hyperprior_text(model, hyperpriors),
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
