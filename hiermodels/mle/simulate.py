"""Responses simulated from a fitted mixed model (lme4's ``simulate.merMod``).

Every replicate draws a response for each row of the fitted design from the
model at the estimates. The linear predictor is ``Xβ̂ (+ offset) + Zb`` with
the group effects ``b`` either

* ``effects="new"`` (default): drawn afresh for every replicate from
  ``N(0, Σ̂)`` per level — the marginal model, lme4's default
  ``use.u = FALSE`` (``re.form = NA``); or
* ``effects="conditional"``: held at the conditional modes — the model given
  the fitted groups, lme4's ``use.u = TRUE`` (``re.form = NULL``).

The response is then drawn from the family at ``μ = g⁻¹(η)``: normal with
SD ``σ̂`` (``σ̂/√w`` with precision weights), Bernoulli, binomial with the
design's trials (the successes are simulated, as
:attr:`Design.y <hiermodels.design.design.Design.y>` holds them), Poisson,
negative binomial with ``Var(y) = μ + μ²/α̂`` (Poisson at ``α̂ = ∞``), Gamma
or inverse Gaussian with the fitted dispersion ``φ̂``
(:func:`~hiermodels.design.families.draw_response`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from hiermodels.design.families import draw_response, inverse_link

if TYPE_CHECKING:
    from hiermodels.mle.results import MixedFit

__all__ = ["EFFECTS", "as_generator", "simulate_responses"]

#: How the group effects of a simulated replicate are chosen.
EFFECTS = ("new", "conditional")


def as_generator(random_seed: int | np.random.Generator | None) -> np.random.Generator:
    """A numpy generator from a seed, a generator (used as is) or ``None`` (fresh entropy)."""
    if isinstance(random_seed, np.random.Generator):
        return random_seed
    return np.random.default_rng(random_seed)


def simulate_responses(
    fit: MixedFit,
    nsim: int = 1,
    *,
    random_seed: int | np.random.Generator | None = None,
    effects: Literal["new", "conditional"] = "new",
) -> np.ndarray:
    """Responses drawn from a fitted model: an ``(nsim, n)`` array.

    Parameters
    ----------
    fit : MixedFit
        The fitted model.
    nsim : int
        Number of replicates, at least 1.
    random_seed : int, numpy.random.Generator or None
        Seed of the draws; the same seed gives the same responses.
    effects : {"new", "conditional"}
        Group effects drawn from ``N(0, Σ̂)`` for every replicate (lme4's
        ``use.u = FALSE``), or held at the conditional modes (``use.u = TRUE``).

    Returns
    -------
    numpy.ndarray
        ``(nsim, n)`` float64 responses, one row per replicate, columns in
        the design's row order (successes for ``cbind`` binomial responses).

    Raises
    ------
    ValueError
        For ``nsim`` below 1 or an unknown ``effects``.
    """
    if int(nsim) != nsim or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, got {nsim!r}")
    nsim = int(nsim)
    if effects not in EFFECTS:
        raise ValueError(f"effects must be 'new' or 'conditional', got {effects!r}")
    rng = as_generator(random_seed)
    design = fit.design
    if effects == "conditional":
        eta = np.broadcast_to(fit.linear_predictor, (nsim, design.n_rows))
    else:
        eta = design.X @ fit.beta
        if design.offset is not None:
            eta = eta + design.offset
        eta = eta + _new_group_contributions(fit, nsim, rng)
    return _draw_response(fit, eta, rng)


def _new_group_contributions(fit: MixedFit, nsim: int, rng: np.random.Generator) -> np.ndarray:
    """``(nsim, n)`` ``Zb`` with every level's effects drawn from its block's ``N(0, Σ̂)``."""
    total = np.zeros((nsim, fit.design.n_rows))
    for block, cov in zip(fit.layout.blocks, fit.covariances(), strict=True):
        # a singular Σ̂ (a zero SD, a correlation of ±1) has no Cholesky factor: the
        # eigen-decomposition gives the degenerate normal's square root all the same
        values, vectors = np.linalg.eigh(cov)
        root = vectors * np.sqrt(np.clip(values, 0.0, None))
        standard = rng.standard_normal((nsim, block.n_levels, block.n_terms))
        effects = standard @ root.T  # (nsim, levels, q)
        total += np.einsum("snq,nq->sn", effects[:, block.codes, :], block.X)
    return total


def _draw_response(fit: MixedFit, eta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Responses at linear predictors ``eta`` (``(nsim, n)``) from the fit's family."""
    design = fit.design
    family = design.family
    # each Gaussian row's SD is σ/√w under precision weights
    scale: float | np.ndarray | None = fit.residual_sd
    if scale is not None and design.weights is not None:
        scale = scale / np.sqrt(design.weights)
    if family.name == "negativebinomial" and fit.alpha is None:
        raise ValueError("a negative-binomial fit without its dispersion alpha")
    return draw_response(
        family,
        inverse_link(family.link, eta),
        rng,
        scale=scale,
        trials=design.trials,
        alpha=fit.alpha,
    )
