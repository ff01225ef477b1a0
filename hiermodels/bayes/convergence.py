"""Rank-normalised split r_hat and bulk ESS of many quantities at once.

The convergence checks of Vehtari, Gelman, Simpson, Carpenter and Bürkner
(2021, *Bayesian Analysis* 16(2)), as ArviZ computes them, vectorised over
quantities: a fit with thousands of group effects checks them all in one
pass (ranks and autocovariances of every column together) rather than one
quantity at a time.

* **split** each chain into halves, which then count as chains;
* **rank-normalise**: pooled ranks ``r`` (ties averaged) of the ``S`` draws
  mapped to ``Φ⁻¹((r − 3/8) / (S + 1/4))``;
* **r_hat** is the larger of the split r_hat of the rank-normalised draws
  and of the rank-normalised ``|draw − median|`` (the tails);
* **bulk ESS** is the effective sample size of the rank-normalised split
  draws, with Geyer's initial positive and monotone sequences truncating
  the autocorrelations.

:class:`Diagnostics` holds a fit's worst values against the recommended
thresholds, and :func:`sampling_problem` says what is wrong and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy import fft, special, stats

__all__ = [
    "bulk_ess",
    "rank_diagnostics",
    "rank_rhat",
    "Diagnostics",
    "sampling_problem",
    "RHAT_MAX",
    "ESS_MIN",
    "ESS_MIN_PER_CHAIN",
    "ESS_WARN_FRACTION",
    "RHAT_WARN",
]


def _split(draws: np.ndarray) -> np.ndarray:
    """``(chain, draw, k)`` as ``(2 chain, draw // 2, k)``: each chain's halves as chains."""
    half = draws.shape[1] // 2
    return np.concatenate([draws[:, :half], draws[:, draws.shape[1] - half :]], axis=0)


def _rank_normal(draws: np.ndarray) -> np.ndarray:
    """Pooled ranks of each column mapped to normal scores, shape kept."""
    chains, n, k = draws.shape
    # a row per quantity: the sort runs over contiguous memory
    rows = np.ascontiguousarray(draws.reshape(chains * n, k).T)
    ranks = stats.rankdata(rows, method="average", axis=1)
    size = chains * n
    return special.ndtri((ranks.T - 0.375) / (size + 0.25)).reshape(chains, n, k)


def _split_rhat(draws: np.ndarray) -> np.ndarray:
    """The potential scale reduction of each column of ``(chain, draw, k)``."""
    n = draws.shape[1]
    chain_means = draws.mean(axis=1)
    within = draws.var(axis=1, ddof=1).mean(axis=0)
    between = n * chain_means.var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n - 1.0) / n)


def rank_rhat(draws: np.ndarray) -> np.ndarray:
    """Rank-normalised split r_hat of each column of ``(chain, draw, k)`` draws.

    ``nan`` for columns that cannot be checked (fewer than 2 chains or 4
    draws, or a ``nan`` draw).
    """
    return rank_diagnostics(draws)[0]


def bulk_ess(draws: np.ndarray) -> np.ndarray:
    """Bulk effective sample size of each column of ``(chain, draw, k)`` draws.

    A column whose draws never move has the ESS of the number of draws (as
    ArviZ); ``nan`` for columns that cannot be checked (fewer than 4 draws,
    a ``nan`` draw).
    """
    return rank_diagnostics(draws)[1]


def rank_diagnostics(draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(r_hat, bulk ESS)`` of each column of ``(chain, draw, k)`` draws, ranked once."""
    draws = np.asarray(draws, dtype=float)
    rhat = np.full(draws.shape[2], np.nan)
    ess = np.full(draws.shape[2], np.nan)
    if draws.shape[1] < 4:
        return rhat, ess
    valid = ~np.isnan(draws).any(axis=(0, 1))
    split = _split(draws[:, :, valid])
    z = _rank_normal(split)
    ess[valid] = _ess(z)
    if draws.shape[0] >= 2:
        folded = np.abs(split - np.median(split.reshape(-1, split.shape[2]), axis=0))
        rhat[valid] = np.maximum(_split_rhat(z), _split_rhat(_rank_normal(folded)))
    return rhat, ess


def _ess(z: np.ndarray) -> np.ndarray:
    """ESS of each column of rank-normalised split draws ``(chain, draw, k)``."""
    n_chain, n, _ = z.shape
    centred = z - z.mean(axis=1, keepdims=True)
    size = fft.next_fast_len(2 * n)
    spectrum = np.fft.rfft(centred, n=size, axis=1)
    acov = np.fft.irfft(spectrum * np.conjugate(spectrum), n=size, axis=1)[:, :n] / n
    ess = _geyer_ess(
        np.ascontiguousarray(acov.mean(axis=0).T), np.ascontiguousarray(z.mean(axis=1)), n_chain
    )
    flat = z.reshape(-1, z.shape[2])
    constant = flat.max(axis=0) - flat.min(axis=0) < np.finfo(float).resolution
    ess[constant] = n_chain * n
    return ess


# error_model="numpy": a constant column divides by zero; its ESS is set by the caller
@njit(cache=True, error_model="numpy")
def _geyer_ess(mean_acov: np.ndarray, chain_means: np.ndarray, n_chain: int) -> np.ndarray:
    """ESS of each column from its chain-averaged autocovariances ``(k, n)``."""
    k, n = mean_acov.shape
    out = np.empty(k)
    rho = np.zeros(n)
    total = n_chain * n
    for j in range(k):
        mean_var = mean_acov[j, 0] * n / (n - 1.0)
        var_plus = mean_var * (n - 1.0) / n
        if n_chain > 1:
            mean = 0.0
            for c in range(n_chain):
                mean += chain_means[c, j]
            mean /= n_chain
            spread = 0.0
            for c in range(n_chain):
                spread += (chain_means[c, j] - mean) ** 2
            var_plus += spread / (n_chain - 1)
        for t in range(n):
            rho[t] = 0.0
        even = 1.0
        odd = 1.0 - (mean_var - mean_acov[j, 1]) / var_plus
        rho[0] = even
        rho[1] = odd
        # Geyer's initial positive sequence: sums of adjacent pairs while positive
        t = 1
        while t < n - 3 and even + odd > 0.0:
            even = 1.0 - (mean_var - mean_acov[j, t + 1]) / var_plus
            odd = 1.0 - (mean_var - mean_acov[j, t + 2]) / var_plus
            if even + odd >= 0.0:
                rho[t + 1] = even
                rho[t + 2] = odd
            t += 2
        last = t - 2
        if even > 0.0:
            rho[last + 1] = even
        # and made monotone
        t = 1
        while t <= last - 2:
            if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
                rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
                rho[t + 2] = rho[t + 1]
            t += 2
        tau = -1.0
        for t in range(last + 1):
            tau += 2.0 * rho[t]
        if last + 1 < n:
            tau += rho[last + 1]
        tau = max(tau, 1.0 / np.log10(total))
        nan = False
        for t in range(n):
            if np.isnan(rho[t]):
                nan = True
        out[j] = np.nan if nan else total / tau
    return out


#: Thresholds of :meth:`~hiermodels.bayes.results.BayesFit.diagnostics`
#: (Vehtari et al. 2021 recommendations).
RHAT_MAX = 1.01
ESS_MIN = 400
#: Fewer chains need less: 100 per chain (Vehtari et al.), at most :data:`ESS_MIN`.
ESS_MIN_PER_CHAIN = 100
#: :class:`~hiermodels.errors.SamplingWarning` thresholds. The recommended ones above
#: are for final results, and r_hat and ESS estimated from a few hundred draws per
#: chain scatter across them; a warning on every such run would teach users to
#: ignore it. It speaks on any divergence, r_hat beyond twice the recommended excess,
#: or less than half the recommended ESS.
RHAT_WARN = 1.02
ESS_WARN_FRACTION = 0.5
#: An r_hat this large means chains stuck in different places, not slow mixing.
_RHAT_STUCK = 1.5


@dataclass(frozen=True)
class Diagnostics:
    """Convergence diagnostics of a fit.

    Attributes
    ----------
    divergences : int
        Divergent transitions after tuning, all chains.
    max_r_hat : float
        Largest rank-normalised r_hat over all sampled quantities.
    min_ess_bulk : float
        Smallest bulk effective sample size.
    worst_r_hat, worst_ess : str
        Where the extremes occur (``"sd_Subject__Days"``, ``"u_Subject[309, Days]"``).
    ok : bool
        No divergence, ``max_r_hat <= RHAT_MAX`` and ``min_ess_bulk >= ess_min``.
    ess_min : float
        The ESS required: :data:`ESS_MIN_PER_CHAIN` per chain, at most
        :data:`ESS_MIN`.
    """

    divergences: int
    max_r_hat: float
    min_ess_bulk: float
    worst_r_hat: str
    worst_ess: str
    ok: bool
    ess_min: float = ESS_MIN

    @property
    def problem(self) -> str | None:
        """What is wrong with the draws and what to do (:func:`sampling_problem`), or ``None``."""
        from hiermodels.bayes.samplers import RUN_SETTINGS

        return sampling_problem(self, tunable=RUN_SETTINGS)


def sampling_problem(diag: Diagnostics, *, tunable: Sequence[str] = ()) -> str | None:
    """What is wrong with the draws and what to do about it, or ``None`` if nothing.

    Something is wrong when a transition diverged, r_hat exceeds
    :data:`RHAT_WARN` or the bulk ESS is below :data:`ESS_WARN_FRACTION` of
    the recommended ``diag.ess_min``; the message then lists every quantity
    outside the recommended thresholds.

    The advice follows the failure: divergent transitions come from
    posterior geometry the sampler cannot follow (typically the funnel of a
    group SD near zero), which more draws do not cure; a high r_hat or a low
    ESS without divergences is slow mixing, which they do.

    Parameters
    ----------
    diag : Diagnostics
        From :meth:`~hiermodels.bayes.results.BayesFit.diagnostics`.
    tunable : sequence of str
        Sampler arguments the fitting function accepts, to name the right
        ones (``"target_accept"``, ``"draws"``, ``"tune"``, ``"chains"``).

    Returns
    -------
    str or None
    """
    alarming = (
        diag.divergences > 0
        or not diag.max_r_hat <= RHAT_WARN
        or not diag.min_ess_bulk >= ESS_WARN_FRACTION * diag.ess_min
    )
    if diag.ok or not alarming:
        return None
    found = []
    if diag.divergences:
        found.append(f"{diag.divergences} divergent transition(s) after tuning")
    if not diag.max_r_hat <= RHAT_MAX:
        # three decimals: 1.0204 must not read as the threshold 1.02
        shown = f"{diag.max_r_hat:.3f}" if diag.max_r_hat < 10 else f"{diag.max_r_hat:.3g}"
        found.append(f"max r_hat {shown} ({diag.worst_r_hat}; want <= {RHAT_MAX})")
    if not diag.min_ess_bulk >= diag.ess_min:
        found.append(
            f"min bulk ESS {diag.min_ess_bulk:.0f} ({diag.worst_ess}; want >= {diag.ess_min:.0f})"
        )
    message = "the MCMC draws are not reliable: " + ", ".join(found) + ". "
    if diag.divergences:
        # only an argument the caller can pass is advice; otherwise it is noise
        accept = (
            "raise target_accept (e.g. target_accept=0.95), " if "target_accept" in tunable else ""
        )
        return message + (
            "Divergences mean the sampler cannot follow the posterior's geometry (typically "
            "a funnel where a group SD approaches zero), and sampling longer does not remove "
            f"them: {accept}give the SDs more informative priors (priors=), or "
            "reparameterise (fewer random-effect terms, centred covariates)"
        )
    if not diag.max_r_hat <= _RHAT_STUCK or not diag.min_ess_bulk >= 10:
        return message + (
            "The chains are stuck in different places or do not move at all: more draws "
            "will not fix this. Check the data and model (a constant or separated response, "
            "a parameter the data cannot identify) and the priors"
        )
    longer = (
        "raise draws= and tune= (or add chains=)"
        if {"draws", "tune", "chains"} <= set(tunable)
        else "sample longer"
    )
    return message + (
        f"The chains mix slowly: {longer} and check again; if r_hat does not fall, "
        "look at the priors and the model"
    )
