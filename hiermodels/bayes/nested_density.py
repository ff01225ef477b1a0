"""Nested random intercepts ``(1 | a/b)`` with both levels of effects integrated out.

For a gaussian design whose only random effects are an intercept for an
outer factor ``a`` and one for an inner factor ``b`` nested in it (every
level of ``b`` inside one level of ``a``: ``(1 | school/class)``, or
``(1 | school) + (1 | school:class)``), the marginal likelihood
``y ~ N(X beta, sigma^2 I + tau_a^2 Z_a Z_a' + tau_b^2 Z_b Z_b')`` needs no
matrix at all. With ``r = y - X beta``, ``a = sigma^2``, ``t = tau_b^2``,
``u = tau_a^2`` and, per inner level ``c`` (size ``n_c``, residual sum
``S_c``) and outer level ``s``:

``d_c = a + n_c t``, ``G_s = sum_{c in s} S_c / d_c``, ``H_s = sum_{c in s} n_c / d_c``,
``e_s = 1 + u H_s``;

``log|V| = (n - C) log a + sum_c log d_c + sum_s log e_s`` and
``r'V^{-1}r = r'r / a - (t / a) sum_c S_c^2 / d_c - u sum_s G_s^2 / e_s``

(``C`` inner levels). Every term is a sum over levels of per-level sums of
``y`` and of the rows of ``X``, so one evaluation costs ``O(C p)``. The
gradient is derived by hand (see :func:`_nested_kernel`). Given the
hyperparameters, the outer effect of level ``s`` is ``N(u G_s / e_s, u / e_s)``
and, given it, the inner effect of ``c`` is
``N(t (S_c - n_c b_s) / d_c, t a / d_c)``: :func:`nested_conditional_effects`
draws both.

:class:`NestedDensity` is the log posterior density on the unconstrained
scale of :func:`~hiermodels.bayes.build.build_pymc_model`'s graph for these
designs (``beta``, ``log`` of both SDs, ``log sigma``), sampled by
:func:`~hiermodels.bayes.sample.fit_bayes` without compiling any PyTensor
function.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numba
import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from hiermodels.bayes.marginal_density import FixedEffectsPrior, effect_arrays
from hiermodels.bayes.prior_density import jittered, scalar_prior
from hiermodels.bayes.priors import GroupTerms, Priors, group_term_layout
from hiermodels.spec.design import Design

__all__ = ["nested_intercepts", "NestedDensity", "nested_loglik", "nested_conditional_effects"]


def nested_intercepts(design: Design) -> tuple[GroupTerms, GroupTerms] | None:
    """The ``(outer, inner)`` factors of a gaussian nested random-intercept design, or ``None``.

    Applies when the design is gaussian, has exactly two grouping factors,
    each with a single intercept term, and every level of one lies within a
    single level of the other.
    """
    if not design.family.is_gaussian:
        return None
    layouts = group_term_layout(design)
    if len(layouts) != 2:
        return None
    for layout in layouts:
        if layout.terms != ("Intercept",) or not np.all(layout.X == 1.0):
            return None
    first, second = layouts
    for outer, inner in ((first, second), (second, first)):
        if len(inner.levels) <= len(outer.levels):
            continue
        pairs = np.unique(np.column_stack([inner.codes, outer.codes]), axis=0)
        if len(pairs) == len(inner.levels):  # each inner level meets one outer level
            return outer, inner
    return None


class _NestedStatistics:
    """Per-inner-level sums of ``y`` and ``X``, the inner-to-outer map and the totals."""

    def __init__(self, design: Design, outer: GroupTerms, inner: GroupTerms) -> None:
        y = np.asarray(design.y, dtype=float)
        if design.offset is not None:
            y = y - np.asarray(design.offset, dtype=float)
        X = np.asarray(design.X, dtype=float)
        levels = len(inner.levels)
        self.n = np.bincount(inner.codes, minlength=levels).astype(float)
        self.sy = np.bincount(inner.codes, weights=y, minlength=levels)
        self.sx = np.zeros((levels, X.shape[1]))
        np.add.at(self.sx, inner.codes, X)
        self.outer_of = np.zeros(levels, dtype=np.int64)
        self.outer_of[inner.codes] = outer.codes
        self.n_outer = len(outer.levels)
        self.xty = X.T @ y
        self.xtx = np.ascontiguousarray(X.T @ X)
        self.yty = float(y @ y)
        self.nobs = float(len(y))

    def arguments(self) -> tuple:
        """The kernel's data arguments."""
        return (
            self.n,
            self.sy,
            self.sx,
            self.outer_of,
            self.n_outer,
            self.xty,
            self.xtx,
            self.yty,
            self.nobs,
        )


# error_model="numpy": a zero scale gives inf/nan (caught by the caller), not an exception
@numba.njit(cache=True, nogil=True, error_model="numpy")
def _nested_kernel(
    beta: np.ndarray,
    tau_outer: float,
    tau_inner: float,
    sigma: float,
    n: np.ndarray,
    sy: np.ndarray,
    sx: np.ndarray,
    outer_of: np.ndarray,
    n_outer: int,
    xty: np.ndarray,
    xtx: np.ndarray,
    yty: float,
    nobs: float,
    grad: np.ndarray,
) -> float:  # pragma: no cover - compiled; covered through nested_loglik
    """Marginal log-likelihood; fills ``grad`` with d/d(beta, tau_outer, tau_inner, sigma).

    With ``Q = r'V^{-1}r`` and ``D = log|V|`` (module docstring),
    ``l = -(n log 2 pi + D + Q) / 2`` and, besides the beta terms,
    ``dQ/du = -sum G^2/e^2``, ``dD/du = sum H/e``;
    ``dQ/dt = -A/a + (t/a) sum S^2 n/d^2 - u sum (2 G G_t / e - u G^2 H_t / e^2)``,
    ``dD/dt = sum n/d + u sum H_t / e`` with ``G_t = -sum S n/d^2``, ``H_t = -sum n^2/d^2``;
    ``dQ/da = -r'r/a^2 + t A/a^2 + (t/a) sum S^2/d^2 - u sum (2 G G_a/e - u G^2 H_a/e^2)``,
    ``dD/da = (n - C)/a + sum 1/d + u sum H_a/e`` with ``G_a = -sum S/d^2``,
    ``H_a = -sum n/d^2``, ``A = sum S^2/d``.
    """
    levels, p = sx.shape
    a = sigma * sigma
    t = tau_inner * tau_inner
    u = tau_outer * tau_outer
    g = np.zeros(n_outer)
    h = np.zeros(n_outer)
    g_t = np.zeros(n_outer)
    h_t = np.zeros(n_outer)
    g_a = np.zeros(n_outer)
    h_a = np.zeros(n_outer)
    resid = np.empty(levels)
    spread = 0.0  # A = sum S^2 / d
    spread_t = 0.0  # sum S^2 n / d^2
    spread_a = 0.0  # sum S^2 / d^2
    log_d = 0.0
    n_over_d = 0.0
    one_over_d = 0.0
    for c in range(levels):
        s = sy[c]
        for k in range(p):
            s -= sx[c, k] * beta[k]
        resid[c] = s
        d = a + n[c] * t
        o = outer_of[c]
        g[o] += s / d
        h[o] += n[c] / d
        g_t[o] -= s * n[c] / (d * d)
        h_t[o] -= n[c] * n[c] / (d * d)
        g_a[o] -= s / (d * d)
        h_a[o] -= n[c] / (d * d)
        spread += s * s / d
        spread_t += s * s * n[c] / (d * d)
        spread_a += s * s / (d * d)
        log_d += math.log(d)
        n_over_d += n[c] / d
        one_over_d += 1.0 / d
    outer_quad = 0.0  # sum G^2 / e
    log_e = 0.0
    dq_du = 0.0
    dd_du = 0.0
    dq_dt = 0.0
    dd_dt = 0.0
    dq_da = 0.0
    dd_da = 0.0
    ratio = np.empty(n_outer)  # G / e
    for o in range(n_outer):
        e = 1.0 + u * h[o]
        ratio[o] = g[o] / e
        outer_quad += g[o] * g[o] / e
        log_e += math.log(e)
        dq_du -= ratio[o] * ratio[o]
        dd_du += h[o] / e
        dq_dt -= u * (2.0 * ratio[o] * g_t[o] - u * ratio[o] * ratio[o] * h_t[o])
        dd_dt += u * h_t[o] / e
        dq_da -= u * (2.0 * ratio[o] * g_a[o] - u * ratio[o] * ratio[o] * h_a[o])
        dd_da += u * h_a[o] / e
    # r'r and X'r from the totals; dQ/dbeta = -2 X'r / a + sum_c coef_c sx_c
    rss = yty
    for k in range(p):
        xtr = xty[k]
        for m in range(p):
            xtr -= xtx[k, m] * beta[m]
        grad[k] = -2.0 * xtr / a
        rss -= beta[k] * (xty[k] + xtr)
    for c in range(levels):
        d = a + n[c] * t
        coef = 2.0 * ((t / a) * resid[c] + u * ratio[outer_of[c]]) / d
        for k in range(p):
            grad[k] += coef * sx[c, k]
    quad = rss / a - (t / a) * spread - u * outer_quad
    logdet = (nobs - levels) * math.log(a) + log_d + log_e
    dq_dt += -spread / a + (t / a) * spread_t
    dd_dt += n_over_d
    dq_da += -rss / (a * a) + t * spread / (a * a) + (t / a) * spread_a
    dd_da += (nobs - levels) / a + one_over_d
    for k in range(p):
        grad[k] *= -0.5
    grad[p] = -0.5 * (dq_du + dd_du) * 2.0 * tau_outer
    grad[p + 1] = -0.5 * (dq_dt + dd_dt) * 2.0 * tau_inner
    grad[p + 2] = -0.5 * (dq_da + dd_da) * 2.0 * sigma
    return -0.5 * (nobs * math.log(2.0 * math.pi) + logdet + quad)


def nested_loglik(
    design: Design, beta: ArrayLike, tau_outer: float, tau_inner: float, sigma: float
) -> tuple[float, np.ndarray]:
    """Marginal log-likelihood of a nested random-intercept design and its gradient.

    Parameters
    ----------
    design : Design
        With :func:`nested_intercepts` not ``None``.
    beta : array_like
        ``(p,)`` fixed effects.
    tau_outer, tau_inner, sigma : float
        SDs of the outer and inner intercepts and of the residual.

    Returns
    -------
    float
    numpy.ndarray
        Gradient with respect to ``(beta, tau_outer, tau_inner, sigma)``.
    """
    factors = nested_intercepts(design)
    if factors is None:
        raise ValueError("the design has no nested random intercepts (1 | a/b)")
    stats = _NestedStatistics(design, *factors)
    beta = np.asarray(beta, dtype=float)
    grad = np.empty(beta.size + 3)
    value = _nested_kernel(
        beta, float(tau_outer), float(tau_inner), float(sigma), *stats.arguments(), grad
    )
    return float(value), grad


class NestedDensity:
    """Log posterior density of a nested random-intercept model, effects integrated out.

    Unconstrained coordinates, in order: ``beta`` (centred as in
    :class:`~hiermodels.bayes.marginal_density.MarginalDensity`), ``log`` of
    the outer SD, ``log`` of the inner SD, ``log sigma``.

    Parameters
    ----------
    design : Design
        With :func:`nested_intercepts` not ``None``.
    priors : Priors
        A complete set from :func:`~hiermodels.bayes.priors.resolve_priors`.
    """

    def __init__(self, design: Design, priors: Priors) -> None:
        factors = nested_intercepts(design)
        if factors is None:
            raise ValueError(
                "the nested density applies only to gaussian models whose random effects "
                "are intercepts of two nested factors, (1 | a/b)"
            )
        self.outer, self.inner = factors
        self.fixed = FixedEffectsPrior(design, priors)
        self.coef: tuple[str, ...] = self.fixed.coef
        names = (f"sd_{self.outer.group}__Intercept", f"sd_{self.inner.group}__Intercept", "sigma")
        self._scale_priors = tuple(scalar_prior(name, priors[name]) for name in names)
        self._data = _NestedStatistics(
            self.fixed.residual_design(design), self.outer, self.inner
        ).arguments()
        self.ndim: int = len(self.coef) + 3

    @property
    def output_names(self) -> tuple[str, ...]:
        """Variables returned by :meth:`expand`, named as in the PyMC graph."""
        return ("beta", *(prior.name for prior in self._scale_priors))

    @property
    def output_shapes(self) -> tuple[tuple[int, ...], ...]:
        """Shapes of :attr:`output_names`."""
        return ((len(self.coef),), (), (), ())

    @property
    def output_dims(self) -> dict[str, list[str]]:
        """Named dimensions of the non-scalar outputs."""
        return {"beta": ["coef"]}

    @property
    def coords(self) -> dict[str, list[str]]:
        """Coordinates of :attr:`output_dims`."""
        return {"coef": list(self.coef)}

    def initial_point(self, seed: int) -> np.ndarray:
        """Each prior's typical value, jittered by uniform(-1, 1) on the unconstrained scale."""
        start = [*self.fixed.start()]
        start += [prior.unconstrain(prior.start) for prior in self._scale_priors]
        return jittered(np.asarray(start), seed)

    def unconstrain(self, values: Mapping[str, ArrayLike]) -> np.ndarray:
        """The unconstrained point of given variable values; the inverse of :meth:`expand`."""
        missing = [name for name in self.output_names if name not in values]
        if missing:
            raise ValueError(f"values lack {missing}; needed: {', '.join(self.output_names)}")
        point = [*self.fixed.unconstrain(values["beta"])]
        for prior in self._scale_priors:
            value = float(np.asarray(values[prior.name]))
            if not value > 0:
                raise ValueError(f"{prior.name!r} must be positive, got {value!r}")
            point.append(math.log(value))
        return np.asarray(point)

    def logp(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Log density (up to a constant) and its gradient at the unconstrained ``x``.

        ``-inf`` with a zero gradient where the density cannot be evaluated.
        """
        p = len(self.coef)
        xs = x.tolist()
        out = np.empty(self.ndim)
        beta = self.fixed.beta(xs[:p])
        try:
            total, slopes = self.fixed.log_prior(beta)
            scales, derivs = [], []
            for k, prior in enumerate(self._scale_priors):
                value, logp, slope = prior.evaluate(xs[p + k])
                scales.append(value)
                derivs.append(slope)
                total += logp
        except (OverflowError, ValueError, ZeroDivisionError):
            out[:] = 0.0
            return -math.inf, out
        like = np.empty(p + 3)
        value = _nested_kernel(np.array(self.fixed.offsets(xs[:p])), *scales, *self._data, like)
        if not math.isfinite(value + float(like.sum())):
            out[:] = 0.0
            return -math.inf, out
        dl = like.tolist()
        slopes = [s + d for s, d in zip(self.fixed.pull_back(slopes), dl[:p], strict=True)]
        for k in range(3):  # d/dlog scale = scale * d/dscale
            slopes.append(derivs[k] + dl[p + k] * scales[k])
        out[:] = slopes
        return total + value, out

    def expand(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The model's variables (:attr:`output_names`) at the unconstrained point ``x``."""
        p = len(self.coef)
        out = {"beta": np.asarray(self.fixed.beta(np.asarray(x[:p], dtype=float).tolist()))}
        for k, prior in enumerate(self._scale_priors):
            out[prior.name] = np.asarray(math.exp(float(x[p + k])))
        return out


def nested_conditional_effects(
    posterior: xr.Dataset, design: Design, rng: np.random.Generator
) -> dict[str, xr.DataArray]:
    """Draw ``z`` and ``u`` of both factors from their Gaussian conditional, one per draw.

    For each posterior draw of ``beta``, the two SDs and ``sigma``: the outer
    effect ``b_s ~ N(u G_s / e_s, u / e_s)``, then the inner effect
    ``b_c ~ N(t (S_c - n_c b_s) / d_c, t a / d_c)`` (module docstring).

    Returns
    -------
    dict of str to xarray.DataArray
        ``z_<g>`` and ``u_<g>`` of both factors, dims ``(chain, draw, <g>, <g>__term)``.
    """
    factors = nested_intercepts(design)
    if factors is None:
        raise ValueError("the design has no nested random intercepts (1 | a/b)")
    outer, inner = factors
    stats = _NestedStatistics(design, outer, inner)

    def draws_of(name: str) -> np.ndarray:
        return posterior[name].transpose("chain", "draw").values[..., None]

    beta = posterior["beta"].transpose("chain", "draw", "coef").values
    tau_o = draws_of(f"sd_{outer.group}__Intercept")
    tau_i = draws_of(f"sd_{inner.group}__Intercept")
    a, t, u = draws_of("sigma") ** 2, tau_i**2, tau_o**2
    resid = stats.sy - np.einsum("cp,kdp->kdc", stats.sx, beta)  # S_c per draw
    d = a + stats.n * t
    chains, draws = resid.shape[:2]
    g = np.zeros((chains, draws, stats.n_outer))
    h = np.zeros((chains, draws, stats.n_outer))
    np.add.at(g, (slice(None), slice(None), stats.outer_of), resid / d)
    np.add.at(h, (slice(None), slice(None), stats.outer_of), stats.n / d)
    e = 1.0 + u * h
    b_outer = u * g / e + np.sqrt(u / e) * rng.standard_normal(g.shape)
    shifted = resid - stats.n * b_outer[..., stats.outer_of]
    b_inner = t * shifted / d + np.sqrt(t * a / d) * rng.standard_normal(d.shape)
    out: dict[str, xr.DataArray] = {}
    for layout, effects, tau in ((outer, b_outer, tau_o), (inner, b_inner, tau_i)):
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(tau > 0, effects / tau, 0.0)
        out.update(effect_arrays(posterior, layout, z[..., None], effects[..., None]))
    return out
