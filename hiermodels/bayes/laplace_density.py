"""Approximate full Bayes for GLMMs: the group effects integrated out by the Laplace approximation.

The idea of INLA, applied to the models of
:func:`~hiermodels.bayes.build.build_pymc_model` with a binomial, bernoulli or
Poisson response: NUTS explores only the hyperparameters — ``beta``, the
standard deviations and correlations of the random effects — and the group
effects are integrated out of the likelihood by the Laplace approximation
that the maximum-likelihood engine maximises (glmer's ``nAGQ = 1``,
:class:`~hiermodels.mle.laplace.LaplaceDeviance`)::

    log p(y | beta, Sigma) ~ -d(theta, beta) / 2,
    d = -2 sum log p(y_i | u~) + |u~|^2 + log |L|^2

with ``u~`` the conditional mode of the spherical effects (PIRLS) and ``L``
the Cholesky factor of ``H = Lambda' Z' W Z Lambda + I`` there. Its gradient
in ``(theta, beta)`` is analytic (:func:`hiermodels.mle.pirls.laplace_gradient`),
so one log-density evaluation costs one PIRLS run and one pass of the
gradient kernel, whatever the number of levels: :func:`laplace_log_density`,
compiled and handed to nutpie as a native function
(:mod:`hiermodels.bayes.native`). After sampling, the effects are drawn
once per posterior draw from the Gaussian approximation at the conditional
mode, ``u ~ N(u~, H^-1)`` and ``b = Lambda u`` (:func:`laplace_effect_draws`,
through :func:`~hiermodels.bayes.integrated.integrated_effects`), under
the names and dims of the full graph (``z_<g>``, ``u_<g>``).

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

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from hiermodels.bayes.hyper_density import HyperParameters, hyper_point, hyper_pull_back
from hiermodels.bayes.integrated import IntegratedDensity, store_effect_draw
from hiermodels.bayes.priors import Priors
from hiermodels.design.design import Design
from hiermodels.design.factors import GroupTerms
from hiermodels.mle import kernels
from hiermodels.mle.laplace import LaplaceDeviance, PirlsResult, laplace_deviance
from hiermodels.mle.pirls import (
    MAX_HALVINGS,
    PIRLS_MAX_ITER,
    PIRLS_STEP_TOLERANCE,
    PIRLS_TOLERANCE,
    pirls_family,
    pirls_structure,
)

__all__ = [
    "LaplaceDensity",
    "LaplaceLikelihood",
    "check_laplace_family",
    "laplace_effect_draws",
    "laplace_log_density",
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
    :class:`~hiermodels.mle.laplace.LaplaceDeviance`: the block factors of the
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
        self.factors: tuple[GroupTerms, ...] = design.factors
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


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _conditional_mode(
    x: np.ndarray, theta: np.ndarray, data: tuple, settings: np.ndarray
) -> tuple[np.ndarray, np.ndarray, tuple]:
    """``(T₀, trailing factors, PIRLS's outputs)`` at the point ``x`` with absolute factors
    ``θ``: the mode from ``u = 0``, the same start at every point."""
    centred, offset, structure, family, placement, _, start_lead, start_rest = data
    p = centred.shape[1]
    fixed = offset.copy()
    for i in range(fixed.size):
        for k in range(p):
            fixed[i] += centred[i, k] * x[k]
    t0, rest_t = kernels.placed_factors(theta, placement)
    found = kernels.pirls(
        structure, family, t0, rest_t, fixed, start_lead, start_rest, settings[4] != 0.0,
        settings[0], settings[1], int(settings[2]), int(settings[3]),
    )  # fmt: skip
    return t0, rest_t, found


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def laplace_log_density(
    x: np.ndarray, hyper: tuple, data: tuple, settings: np.ndarray, gradient: np.ndarray
) -> float:
    """Approximate log posterior density at ``x``, its gradient into ``gradient``.

    ``hyper`` is :attr:`HyperParameters.tables`, ``data`` and ``settings``
    :attr:`LaplaceDensity.native`'s. One PIRLS run from ``u = 0`` (the same
    start at every point, so that the density is a function of ``x`` alone
    and chains may share it) and one pass of the Laplace gradient. Returns
    ``-inf`` where PIRLS fails.
    """
    centred, _, structure, family, _, blocks = data[:6]
    block_lead, block_pos, block_q, block_theta = blocks
    n_theta = hyper[18][2]
    p = centred.shape[1]
    theta = np.empty(n_theta)
    log_prior, _ = hyper_point(x, hyper, theta, gradient)
    if not np.isfinite(log_prior):
        return -np.inf
    t0, rest_t, (u1, u2, eta, l11, l21, l22, deviance, _, status) = _conditional_mode(
        x, theta, data, settings
    )
    if status != kernels.FACTOR_OK or not np.isfinite(deviance):
        return -np.inf
    # the kernel reads the inverse's lower triangle column-major, as LAPACK leaves it
    c22_inv = kernels.trailing_inverse(l22).T
    d_theta, d_beta = kernels.laplace_gradient(
        structure, family, t0, rest_t, centred, u1, u2, eta, l11, l21, l22, c22_inv,
        block_lead, block_pos, block_q, block_theta,
    )  # fmt: skip
    for k in range(d_theta.size):
        d_theta[k] *= -0.5
    for k in range(p):
        d_beta[k] *= -0.5
    hyper_pull_back(x, hyper, 1.0, d_beta, d_theta, 0.0, gradient)
    return log_prior - 0.5 * deviance


@njit(cache=True, nogil=True, error_model="numpy")
def laplace_effect_draws(
    points: np.ndarray,
    hyper: tuple,
    data: tuple,
    settings: np.ndarray,
    noise_lead: np.ndarray,
    noise_rest: np.ndarray,
    u_lead: np.ndarray,
    u_rest: np.ndarray,
    theta: np.ndarray,
) -> bool:
    """Spherical effects ``u = ũ + L⁻ᵀ ε`` at each of ``points``: ``N(ũ, H⁻¹)``, one noise each.

    ``ũ`` is the conditional mode and ``H = LLᵀ = ΛᵀZᵀWZΛ + I`` there
    (PIRLS, as :func:`laplace_log_density`). Fills ``u_lead`` ``(draws,
    L₀, q₀)``, ``u_rest`` ``(draws, q_rest)`` and the absolute factors
    ``theta`` ``(draws, len(θ) + 1)``, with 1 last (the effects carry no
    residual scale); returns False if PIRLS fails at a point. The noises are
    ``(draws, L₀, q₀, 1)`` and ``(draws, q_rest, 1)``.
    """
    structure = data[2]
    lead_ptr, rest_q, pair_block, pair_row, pair_ptr = (
        structure[11],
        structure[5],
        structure[8],
        structure[9],
        structure[10],
    )
    n_theta = theta.shape[1] - 1
    slopes = np.empty(points.shape[1])
    for d in range(points.shape[0]):
        x = points[d]
        absolute = theta[d, :n_theta]
        log_prior, _ = hyper_point(x, hyper, absolute, slopes)
        if not np.isfinite(log_prior):
            return False
        theta[d, n_theta] = 1.0
        _, _, (u1, u2, _, l11, l21, l22, deviance, _, status) = _conditional_mode(
            x, absolute, data, settings
        )
        if status != kernels.FACTOR_OK or not np.isfinite(deviance):
            return False
        shift_lead, shift_rest = kernels.backward(
            l11, l21, l22, rest_q, pair_block, pair_row, pair_ptr, lead_ptr, noise_lead[d],
            noise_rest[d],
        )  # fmt: skip
        store_effect_draw(d, u1, u2, shift_lead, shift_rest, 1.0, u_lead, u_rest)
    return True


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

    #: Draws the spherical effects chain by chain (:meth:`IntegratedDensity.draw_effects`).
    effect_kernel = staticmethod(laplace_effect_draws)

    def __init__(self, design: Design, priors: Priors) -> None:
        check_laplace_family(design)
        deviance = laplace_deviance(design)
        layout = self.layout = deviance.layout
        self.hyper = HyperParameters(design, priors, layout, with_sigma=False)
        fixed = self.hyper.fixed
        self.coef: tuple[str, ...] = fixed.coef
        response = deviance.response
        lead_flag, position, terms, _, offsets = layout.gradient_blocks
        self._data = (
            np.ascontiguousarray(fixed.centred, dtype=float),
            np.ascontiguousarray(response.offset, dtype=float),
            pirls_structure(layout.pattern),
            pirls_family(response),
            layout.placement,
            (lead_flag, position, terms, offsets),
            np.zeros((layout.n_lead_levels, layout.q_lead)),
            np.zeros(layout.q_rest),
        )
        # with a canonical link a PIRLS step is a Newton step (LaplaceDeviance.pirls)
        self._settings = np.array(
            [
                PIRLS_TOLERANCE,
                PIRLS_STEP_TOLERANCE,
                PIRLS_MAX_ITER,
                MAX_HALVINGS,
                float(response.canonical),
            ]
        )

    @property
    def native(self) -> tuple:
        """``(hyper tables, data, settings)``: what :func:`laplace_log_density` takes after
        the point."""
        return self.hyper.tables, self._data, self._settings

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
        gradient = np.zeros(self.ndim)
        value = laplace_log_density(np.ascontiguousarray(x, dtype=float), *self.native, gradient)
        if not math.isfinite(value):
            return -math.inf, np.zeros(self.ndim)
        return value, gradient
