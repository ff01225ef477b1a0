"""Approximate full Bayes for GLMMs: the group effects integrated out by the Laplace approximation.

The idea of INLA, applied to the models of
:func:`~hiermodels.bayes.build.build_pymc_model` with a binomial, bernoulli or
Poisson response: NUTS explores only the hyperparameters — ``beta``, the
standard deviations and correlations of the random effects — and the group
effects are integrated out of the likelihood by the Laplace approximation
that the maximum-likelihood engine maximises (glmer's ``nAGQ = 1``,
:class:`~hiermodels.mle.glmm.LaplaceDeviance`)::

    log p(y | beta, Sigma) ~ -d(theta, beta) / 2,
    d = -2 sum log p(y_i | u~) + |u~|^2 + log |L|^2

with ``u~`` the conditional mode of the spherical effects (PIRLS) and ``L``
the Cholesky factor of ``H = Lambda' Z' W Z Lambda + I`` there. Its gradient
in ``(theta, beta)`` is analytic (:func:`hiermodels.mle.pirls.laplace_gradient`),
so one log-density evaluation costs one warm-started PIRLS run and one pass
of the gradient kernel, whatever the number of levels. After sampling, the
effects are drawn once per posterior draw from the Gaussian approximation at
the conditional mode, ``u ~ N(u~, H^-1)`` and ``b = Lambda u``
(:func:`laplace_conditional_effects`), under the names and dims of the full
graph (``z_<g>``, ``u_<g>``).

The result is an approximation, and is labelled as one. Where it is good:

* many observations per level, or large counts per observation (binomial
  with tens of trials, Poisson with means well above 1): the conditional
  posterior of each level's effects is then nearly Gaussian, and the
  Laplace marginal likelihood is nearly exact. On cbpp (56 herd-periods
  of 2-34 trials) the SD's and fixed effects' posterior medians and 90%
  intervals agree with exact NUTS to a few per cent; on grouseticks (403
  small counts, broods within locations) the fixed effects and the brood SD
  do too, but the location SD comes out about 6% low, and the lower end of
  its interval about 30% low (``tests/bayes/test_laplace_agreement.py``);
* many levels: errors of the per-level approximations partly average out.

Where it is not:

* bernoulli responses with few observations per level (say under 10-20),
  and counts that are mostly zero: each level's conditional posterior is
  skewed, the Laplace approximation understates the marginal likelihood of
  large variances, and the random-effect SDs come out biased low — the same
  bias glmer's Laplace fit has against adaptive quadrature. Prefer exact
  NUTS (``integrate=None``) there;
* groups whose responses are all at one end of their range (all successes,
  all zeros): their modes are set by the prior alone and the Gaussian
  approximation of their effects is poor.

The negative binomial is not offered: the engine's derivative of its
deviance in the dispersion is a finite difference, not analytic like that in
``(theta, beta)``; gaussian models need no approximation — their effects are
integrated out exactly (``marginalize=True``).

Coordinates. The deviance is evaluated on the design as given, not on the
standardised one the maximum-likelihood fit optimises on: it is the same
number in either coordinates, and the sampler's coordinates (the graph's
centred ``beta``, ``log`` SDs, correlations) already fix the conditioning.
``theta`` is lme4's: per block of the random effects (in the layout's order,
``ReLayout.from_design``), the lower triangle, column-major, of the factor
``T`` with ``b_j = T u_j``. For the graph's blocks ``T = diag(sd) C`` with
``C`` the Cholesky factor of the block's correlation, so the spherical
``u`` is the graph's ``z``.
"""

from __future__ import annotations

import copy as _copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import xarray as xr

from hiermodels.bayes.hyper_density import HyperParameters, IntegratedDensity
from hiermodels.bayes.marginal_density import FixedEffectsPrior, effect_arrays
from hiermodels.bayes.priors import GroupTerms, Priors, group_term_layout
from hiermodels.mle.glmm import LaplaceDeviance, PirlsResult, laplace_deviance
from hiermodels.spec.design import Design

__all__ = [
    "LaplaceDensity",
    "LaplaceLikelihood",
    "check_laplace_family",
    "laplace_conditional_effects",
]

#: Families whose Laplace deviance has an analytic gradient in every parameter.
LAPLACE_FAMILIES = ("binomial", "bernoulli", "poisson")


def check_laplace_family(design: Design) -> None:
    """Raise a clear ``ValueError`` unless the design's family can be integrated by Laplace.

    Raises
    ------
    ValueError
        For gaussian designs (integrated exactly already), the negative
        binomial, and any other family.
    """
    name = design.family.name
    if design.family.is_gaussian:
        raise ValueError(
            "integrate='laplace' is for binomial, bernoulli and poisson models: gaussian "
            "models need no approximation, their group effects are integrated out exactly "
            "(marginalize=True)"
        )
    if name == "negativebinomial":
        raise ValueError(
            "integrate='laplace' is not available for the negativebinomial family: the "
            "Laplace deviance's derivative in the dispersion alpha is a finite difference, "
            "not an analytic gradient as NUTS needs; sample the full model with exact NUTS "
            "(integrate=None)"
        )
    if name not in LAPLACE_FAMILIES:
        raise ValueError(
            f"integrate='laplace' is available for the {', '.join(LAPLACE_FAMILIES)} "
            f"families, not {name!r}; use exact NUTS (integrate=None)"
        )
    if not design.blocks:
        raise ValueError("integrate='laplace' needs random-effect terms such as (1 | group)")


@dataclass(frozen=True)
class _Placement:
    """Where one design block sits: its factor's effects and its place in ``theta``.

    Attributes
    ----------
    group : str
        The grouping factor.
    start, stop : int
        The block's columns among its factor's terms (``GroupTerms.terms``).
    theta : slice
        The block's entries in ``theta``.
    """

    group: str
    start: int
    stop: int
    theta: slice


class LaplaceLikelihood:
    """The Laplace log-likelihood ``-d(theta, beta) / 2`` of a GLMM, with its gradient.

    A thin layer over the engine's
    :class:`~hiermodels.mle.glmm.LaplaceDeviance`: the block factors of the
    graph in and out (design block order), the failure of PIRLS as ``-inf``,
    and the Gaussian approximation of the effects.

    Parameters
    ----------
    design : Design
        A binomial, bernoulli or Poisson design (:func:`check_laplace_family`).

    Attributes
    ----------
    deviance : LaplaceDeviance
        The engine's deviance; its warm start belongs to this instance alone.
    factors : tuple of GroupTerms
        The grouping factors as the graph has them.
    """

    def __init__(self, design: Design, *, _deviance: LaplaceDeviance | None = None) -> None:
        check_laplace_family(design)
        self.design = design
        self.deviance: LaplaceDeviance = (
            laplace_deviance(design) if _deviance is None else _deviance
        )
        self.factors: tuple[GroupTerms, ...] = group_term_layout(design)
        self._placements = self._place(design)

    def _place(self, design: Design) -> tuple[_Placement, ...]:
        """Per design block, its factor, columns and ``theta`` slice."""
        layout = self.deviance.layout
        theta_index = {i: k for k, i in enumerate(layout.order)}
        starts: dict[str, int] = {}
        out = []
        for i, block in enumerate(design.blocks):
            start = starts.get(block.group, 0)
            starts[block.group] = start + block.n_terms
            part = layout.theta.block_slice(theta_index[i])
            out.append(_Placement(block.group, start, start + block.n_terms, part))
        return tuple(out)

    def copy(self) -> LaplaceLikelihood:
        """An independent instance (a fresh warm start), e.g. for another chain.

        The layout and response are shared read-only; only PIRLS's warm start
        is per instance, so threads never see each other's modes.
        """
        return LaplaceLikelihood(self.design, _deviance=replace(self.deviance, warm_start={}))

    @property
    def n_theta(self) -> int:
        """Length of ``theta``."""
        return self.deviance.n_theta

    @property
    def n_beta(self) -> int:
        """Number of fixed effects."""
        return int(self.design.X.shape[1])

    # -- theta <-> block factors -----------------------------------------------------------

    def theta(self, factors: Sequence[np.ndarray]) -> np.ndarray:
        """lme4's ``theta`` from the lower-triangular factor of every design block.

        Parameters
        ----------
        factors : sequence of numpy.ndarray
            ``(q, q)`` per block of ``design.blocks`` (design order), with
            ``T T'`` the covariance of a level's effects in that block.
        """
        out = np.empty(self.n_theta)
        for factor, place in zip(factors, self._placements, strict=True):
            q = place.stop - place.start
            cols, rows = np.triu_indices(q)
            out[place.theta] = np.asarray(factor, dtype=float)[rows, cols]
        return out

    def block_factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """The design blocks' factors from ``theta``; the inverse of :meth:`theta`."""
        out = []
        for place in self._placements:
            q = place.stop - place.start
            factor = np.zeros((q, q))
            cols, rows = np.triu_indices(q)
            factor[rows, cols] = theta[place.theta]
            out.append(factor)
        return out

    # -- the likelihood --------------------------------------------------------------------

    def value_and_gradient(
        self, theta: np.ndarray, beta: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray]:
        """``-d/2`` and its gradient in ``theta`` and in ``beta``.

        Returns
        -------
        float
            The Laplace log-likelihood; ``-inf`` where PIRLS fails (the
            random-effects system numerically singular, far out in the tails).
        numpy.ndarray
            ``d/dtheta`` (zeros at ``-inf``).
        numpy.ndarray
            ``d/dbeta`` (zeros at ``-inf``).
        """
        params = np.concatenate([np.asarray(theta, dtype=float), np.asarray(beta, dtype=float)])
        value, grad = self.deviance.value_and_gradient(params)
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            # a failure can be the warm start's (a mode from far away): once more from u = 0
            self.deviance.warm_start.clear()
            value, grad = self.deviance.value_and_gradient(params)
        if not (math.isfinite(value) and np.all(np.isfinite(grad))):
            return -math.inf, np.zeros(self.n_theta), np.zeros(params.size - self.n_theta)
        return -0.5 * value, -0.5 * grad[: self.n_theta], -0.5 * grad[self.n_theta :]

    def mode(self, theta: np.ndarray, beta: np.ndarray) -> PirlsResult:
        """The conditional mode at ``(theta, beta)`` and the factor of ``H`` there.

        Raises
        ------
        numpy.linalg.LinAlgError
            When PIRLS cannot factorise ``H`` even from ``u = 0``.
        """
        try:
            return self.deviance.pirls(theta, beta)
        except np.linalg.LinAlgError:
            self.deviance.warm_start.clear()
            return self.deviance.pirls(theta, beta)

    # -- the effects -----------------------------------------------------------------------

    def spherical_draw(
        self, result: PirlsResult, eps_lead: np.ndarray, eps_rest: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``u = u~ + L^-T eps``: a draw from ``N(u~, H^-1)`` for standard normal ``eps``.

        Parameters
        ----------
        result : PirlsResult
            The mode (:meth:`mode`).
        eps_lead, eps_rest : numpy.ndarray
            ``(L0, q0, k)`` and ``(q_rest, k)``: ``k`` draws at once.

        Returns
        -------
        numpy.ndarray, numpy.ndarray
            ``(L0, q0, k)`` and ``(q_rest, k)``.
        """
        w1, w2 = result.factor.backward(eps_lead, eps_rest)
        return result.u_lead[:, :, None] + w1, result.u_rest[:, None] + w2

    def group_effects(
        self, theta: np.ndarray, u_lead: np.ndarray, u_rest: np.ndarray
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Spherical ``u`` split into every factor's ``(z, b)``, ``(levels, terms, k)`` each.

        ``z`` is the graph's ``z_<g>`` (the spherical effects of each block
        side by side), ``b = T z`` per block its ``u_<g>``.
        """
        layout = self.deviance.layout
        factors = layout.theta.factors(theta)
        spherical: dict[int, np.ndarray] = {}
        for k, part in zip(layout.lead, layout.split_lead(u_lead), strict=True):
            spherical[layout.order[k]] = part
        for k, part in zip(layout.rest, layout.split_rest(u_rest), strict=True):
            spherical[layout.order[k]] = part
        draws = u_lead.shape[-1]
        out = {
            g.group: (
                np.empty((len(g.levels), len(g.terms), draws)),
                np.empty((len(g.levels), len(g.terms), draws)),
            )
            for g in self.factors
        }
        theta_index = {i: k for k, i in enumerate(layout.order)}
        for i, place in enumerate(self._placements):
            z = spherical[i]
            z_all, b_all = out[place.group]
            z_all[:, place.start : place.stop] = z
            b_all[:, place.start : place.stop] = np.einsum(
                "ij,ljk->lik", factors[theta_index[i]], z
            )
        return out


def _block_factors_of_draws(
    posterior: xr.Dataset, factor: GroupTerms, spans: Sequence[tuple[int, int]]
) -> list[np.ndarray]:
    """``T = diag(sd) C`` of every block of one factor, ``(chain, draw, q, q)`` each."""
    g = factor.group
    sds = np.stack(
        [posterior[f"sd_{g}__{t}"].transpose("chain", "draw").values for t in factor.terms],
        axis=-1,
    )
    name = f"corr_{g}"
    corr = (
        posterior[name].transpose("chain", "draw", f"{g}__term", f"{g}__term_bis").values
        if name in posterior
        else None
    )
    out = []
    for a, b in spans:
        if b - a == 1 or corr is None:
            chol = np.broadcast_to(np.eye(b - a), (*sds.shape[:2], b - a, b - a))
        else:
            chol = np.linalg.cholesky(corr[..., a:b, a:b])
        out.append(sds[..., a:b, None] * chol)
    return out


def laplace_conditional_effects(
    posterior: xr.Dataset, design: Design, rng: np.random.Generator
) -> dict[str, xr.DataArray]:
    """Draw ``z_<g>`` and ``u_<g>`` from the Laplace approximation, one per posterior draw.

    At each draw's ``beta`` and random-effect covariances, PIRLS finds the
    conditional mode ``u~`` of the spherical effects; ``u ~ N(u~, H^-1)``
    with ``H = Lambda' Z' W Z Lambda + I`` at the mode's weights, and
    ``b = Lambda u`` per block. Effects of different factors (crossed
    designs) are drawn jointly.

    Parameters
    ----------
    posterior : xarray.Dataset
        With ``beta``, every ``sd_<g>__<t>`` and, for correlated terms,
        ``corr_<g>`` (``chain``, ``draw`` dims).
    design : Design
        The binomial, bernoulli or Poisson design sampled.
    rng : numpy.random.Generator

    Returns
    -------
    dict of str to xarray.DataArray
        ``z_<g>`` and ``u_<g>``, dims ``(chain, draw, <g>, <g>__term)``, as in
        :func:`~hiermodels.bayes.build.build_pymc_model`'s graph.

    Raises
    ------
    numpy.linalg.LinAlgError
        When the random-effects system cannot be factorised at some draw.
    """
    likelihood = LaplaceLikelihood(design)
    beta = posterior["beta"].transpose("chain", "draw", "coef").values
    chains, draws = beta.shape[:2]
    factors: list[np.ndarray] = [np.empty(0)] * len(design.blocks)
    for factor in likelihood.factors:
        spans = factor.spans
        indices = [i for i, block in enumerate(design.blocks) if block.group == factor.group]
        for i, t in zip(indices, _block_factors_of_draws(posterior, factor, spans), strict=True):
            factors[i] = t
    layout = likelihood.deviance.layout
    out = {
        g.group: (
            np.empty((chains, draws, len(g.levels), len(g.terms))),
            np.empty((chains, draws, len(g.levels), len(g.terms))),
        )
        for g in likelihood.factors
    }
    for c in range(chains):
        for d in range(draws):
            theta = likelihood.theta([t[c, d] for t in factors])
            result = likelihood.mode(theta, beta[c, d])
            eps_lead = rng.standard_normal((layout.n_lead_levels, layout.q_lead, 1))
            eps_rest = rng.standard_normal((layout.q_rest, 1))
            u_lead, u_rest = likelihood.spherical_draw(result, eps_lead, eps_rest)
            for group, (z, b) in likelihood.group_effects(theta, u_lead, u_rest).items():
                out[group][0][c, d] = z[..., 0]
                out[group][1][c, d] = b[..., 0]
    arrays: dict[str, xr.DataArray] = {}
    for factor in likelihood.factors:
        z, b = out[factor.group]
        arrays.update(effect_arrays(posterior, factor, z, b))
    return arrays


class LaplaceDensity(IntegratedDensity):
    """Approximate log posterior of a GLMM's hyperparameters, the effects integrated by Laplace.

    The density of :func:`~hiermodels.bayes.build.build_pymc_model`'s graph
    with ``z_<g>`` integrated out by the Laplace approximation (module
    docstring), on the graph's unconstrained coordinates, in its order:
    ``beta`` (centred when the model has an intercept and slopes, as in
    :class:`~hiermodels.bayes.marginal_density.FixedEffectsPrior`), then per
    grouping factor the ``log`` of each SD and each block's correlation (the
    log-odds of ``(r + 1) / 2`` for two terms, PyMC's LKJ Cholesky
    coordinates for more). Same priors, same names; the priors, transforms
    and chain rule are the shared
    :class:`~hiermodels.bayes.hyper_density.HyperParameters`.

    Parameters
    ----------
    design : Design
        A binomial, bernoulli or Poisson design (:func:`check_laplace_family`).
    priors : Priors
        A complete set from :func:`~hiermodels.bayes.priors.resolve_priors`.

    Attributes
    ----------
    ndim : int
        Number of unconstrained coordinates.
    coef : tuple of str
        The fixed effects.
    """

    def __init__(self, design: Design, priors: Priors) -> None:
        self._likelihood = LaplaceLikelihood(design)
        self.hyper = HyperParameters(
            design, priors, self._likelihood.deviance.layout, with_sigma=False
        )
        self.fixed: FixedEffectsPrior = self.hyper.fixed
        self.coef: tuple[str, ...] = self.fixed.coef

    def copy(self) -> LaplaceDensity:
        """An independent density for another chain: its own PIRLS warm start."""
        other = _copy.copy(self)
        other._likelihood = self._likelihood.copy()
        return other

    # -- density ---------------------------------------------------------------------------

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density (up to a constant) and its gradient at the unconstrained point ``x``.

        Returns
        -------
        float
            ``-d(theta, beta) / 2 + log p(hyperparameters) + log |Jacobian|``;
            ``-inf`` where the deviance cannot be evaluated.
        numpy.ndarray
            The gradient (zeros at ``-inf``).
        """
        point = self.hyper.evaluate(x)
        if point is None:  # a prior far out in its tails: zero density
            return -math.inf, np.zeros(self.ndim)
        beta = np.asarray(self.fixed.beta(point.beta_coords))
        value, d_theta, d_beta = self._likelihood.value_and_gradient(point.theta, beta)
        if not math.isfinite(value):
            return -math.inf, np.zeros(self.ndim)
        # the likelihood's beta is the design's: through the centring shear to the coordinates
        d_coords = np.asarray(self.fixed.pull_back(d_beta.tolist()))
        return point.log_prior + value, self.hyper.gradient(point, d_coords, d_theta)
