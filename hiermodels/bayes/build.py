"""Build the PyMC graph of a mixed model from a :class:`~hiermodels.design.design.Design`.

The graph, for a design with fixed-effects matrix ``X`` and random-effect
blocks grouped by factor::

    beta                 ~ priors (dim ``coef``)
    sd_<g>__<t>          ~ priors (one scalar per term of factor g)
    chol_corr_<g>        ~ LKJCorr(eta)  (Cholesky factor, blocks with q >= 2)
    z_<g>                ~ Normal(0, 1)  (dims ``<g>``, ``<g>__term``)
    u_<g>                = z_<g> @ chol.T * sd  (per block; Deterministic)
    corr_<g>             = chol @ chol.T       (Deterministic, block diagonal)
    eta                  = X @ beta + sum_g sum(u_<g>[codes_g] * X_g, axis=1) + offset
    y                    ~ family(inverse_link(eta), sigma | alpha)

For the Gamma and the inverse Gaussian ``sigma`` is ``√φ`` (``Var(y) =
sigma² μ²`` and ``sigma² μ³``): PyMC's ``Gamma(shape 1/sigma², rate
1/(sigma² μ))`` and ``Wald(μ, λ = 1/sigma²)``.

Random effects are non-centred and reached by indexing with the group
codes, never through a dense ``Z``. Several blocks on one factor (``(1|g) +
(0+x|g)`` or the expansion of ``(x||g)``) share one ``z_<g>``/``u_<g>``;
each block has its own standard deviations and, when it has two or more
terms, its own LKJ Cholesky factor, so the covariance is block diagonal.

The fixed effects are sampled in centred coordinates through a
unit-Jacobian shear transform of ``beta`` (the intercept is moved to the
predictors' means), which removes most of the posterior correlation between
intercept and slopes without changing ``beta``'s meaning or its prior.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pymc as pm
import pytensor.tensor as pt
from numpy.typing import ArrayLike
from pymc.distributions.transforms import Transform

from hiermodels._lazy import moved_names
from hiermodels.bayes.centering import resolve_centering
from hiermodels.bayes.priors import (
    REAL_DISTS,
    Prior,
    Priors,
    check_fixed_values,
    corr_matrix_from,
    psd_cholesky,
    resolve_priors,
)
from hiermodels.design._names import check_group_names
from hiermodels.design.design import Design
from hiermodels.design.factors import GroupTerms
from hiermodels.names import (
    coefficient_prior_name,
    correlation_name,
    effects_name,
    sd_name,
    spherical_effects_name,
    term_dim,
    term_pair_dim,
)

__all__ = ["build_pymc_model", "centering_transform", "model_coords"]

#: Name of the observed variable.
OBSERVED = "y"


class CenteredShift(Transform):
    """``beta -> beta`` with the intercept replaced by its value at the column means.

    Forward: ``b0 + sum_j m_j b_j``; backward: its inverse. A shear, so the
    log-Jacobian is zero.

    Parameters
    ----------
    index : int
        Position of the intercept in ``beta``.
    means : numpy.ndarray
        ``(p,)`` column means of ``X`` with a zero at ``index``.
    """

    name = "centered"
    ndim_supp = 1

    def __init__(self, index: int, means: np.ndarray) -> None:
        self.index = int(index)
        self.means = np.asarray(means, dtype=float)

    def forward(self, value: pt.TensorVariable, *inputs: pt.Variable) -> pt.TensorVariable:
        """Map ``beta`` to centred coordinates."""
        value, i = pt.as_tensor_variable(value), self.index
        return pt.set_subtensor(value[..., i], value[..., i] + pt.sum(value * self.means, axis=-1))

    def backward(self, value: pt.TensorVariable, *inputs: pt.Variable) -> pt.TensorVariable:
        """Map centred coordinates back to ``beta``."""
        value, i = pt.as_tensor_variable(value), self.index
        return pt.set_subtensor(value[..., i], value[..., i] - pt.sum(value * self.means, axis=-1))

    def log_jac_det(self, value: pt.TensorVariable, *inputs: pt.Variable) -> pt.TensorVariable:
        """Zero: a shear has unit determinant."""
        return pt.zeros_like(value[..., 0])


def model_coords(design: Design) -> dict[str, list]:
    """Coordinates of the graph: ``coef``, ``obs`` and, per factor, levels and terms.

    Parameters
    ----------
    design : Design

    Returns
    -------
    dict
        ``coef``, ``obs``, and for each grouping factor ``<g>`` (level labels),
        ``<g>__term`` and ``<g>__term_bis`` (term names).
    """
    rows = list(design.rows) if design.rows.is_unique else list(range(design.n_rows))
    coords: dict[str, list] = {"coef": list(design.fixed_names), "obs": rows}
    layouts = design.factors
    # build_design runs the same check; a Design assembled by hand meets it here
    check_group_names(design.fixed_names, {layout.group: layout.terms for layout in layouts})
    for layout in layouts:
        coords[layout.group] = list(layout.levels)
        coords[term_dim(layout.group)] = list(layout.terms)
        coords[term_pair_dim(layout.group)] = list(layout.terms)
    return coords


def _random_variable(
    name: str, prior: Prior, dims: str | Sequence[str] | None = None
) -> pt.TensorVariable:
    """Create ``name`` from its prior in the current model context."""
    # float64 scalars: PyTensor stores a bare Python 2.0 as a float32 constant
    params = {key: np.float64(value) for key, value in prior.params.items()}
    return getattr(pm, prior.dist)(name, **params, dims=dims)


def _hyper(name: str, priors: Priors, fixed: Mapping[str, object]) -> pt.TensorVariable:
    """A scalar hyperparameter: free with its prior, or a constant Deterministic."""
    if name in fixed:
        return pm.Deterministic(name, pt.constant(np.asarray(fixed[name], dtype=float)))
    return _random_variable(name, priors[name])


def _fixed_effects(
    design: Design, priors: Priors, fixed: Mapping[str, object]
) -> pt.TensorVariable:
    """``beta`` (dim ``coef``): one vector RV when the priors share a distribution."""
    names = design.fixed_names
    if "beta" in fixed:
        return pm.Deterministic("beta", pt.constant(fixed["beta"]), dims="coef")
    coef_priors = [priors[coefficient_prior_name(name)] for name in names]
    dists = {p.dist for p in coef_priors}
    keys = {tuple(sorted(p.params)) for p in coef_priors}
    if len(dists) != 1 or len(keys) != 1:
        pairs = zip(names, coef_priors, strict=True)
        parts = [_random_variable(coefficient_prior_name(name), prior) for name, prior in pairs]
        return pm.Deterministic("beta", pt.stack(parts), dims="coef")
    dist = coef_priors[0].dist
    params = {k: np.array([p.params[k] for p in coef_priors]) for k in coef_priors[0].params}
    kwargs: dict[str, object] = {}
    transform = centering_transform(design)
    if transform is not None and dist in REAL_DISTS:
        kwargs["default_transform"] = transform
    return getattr(pm, dist)("beta", **params, dims="coef", **kwargs)


def centering_transform(design: Design) -> CenteredShift | None:
    """The shear that centres the predictors, if there is an intercept and slopes."""
    X = np.asarray(design.X, dtype=float)
    names = list(design.fixed_names)
    if "Intercept" not in names or X.shape[1] < 2:
        return None
    index = names.index("Intercept")
    if not design.is_constant_column(X[:, index]):
        return None
    means = np.array([design.column_mean(X[:, j]) for j in range(X.shape[1])])
    means[index] = 0.0
    if not np.any(means):
        return None
    return CenteredShift(index, means)


def _correlation_cholesky(
    layout: GroupTerms, priors: Priors, fixed: Mapping[str, object]
) -> list[pt.TensorVariable | None]:
    """Per block, the Cholesky factor of its correlation (``None`` for ``q = 1``)."""
    group = layout.group
    spans = layout.correlated_spans
    if not spans:
        return [None] * len(layout.spans)
    name = correlation_name(group)
    dims = (term_dim(group), term_pair_dim(group))
    chols: dict[tuple[int, int], pt.TensorVariable] = {}
    if name in fixed:
        full = corr_matrix_from(layout, fixed[name])  # type: ignore[arg-type]
        for a, b in spans:
            chols[(a, b)] = pt.constant(psd_cholesky(full[a:b, a:b]))
        pm.Deterministic(name, pt.constant(full), dims=dims)
    else:
        eta = priors[name].params["eta"]
        blocks = []
        for k, (a, b) in enumerate(spans):
            raw_name = f"{name}__raw" if len(spans) == 1 else f"{name}__raw{k}"
            chol, corr = _lkj_block(raw_name, b - a, eta)
            chols[(a, b)] = chol
            blocks.append(corr)
        if spans == ((0, len(layout.terms)),):
            full_t = blocks[0]
        else:
            full_t = pt.eye(len(layout.terms))
            for (a, b), corr in zip(spans, blocks, strict=True):
                full_t = pt.set_subtensor(full_t[a:b, a:b], corr)
        pm.Deterministic(name, full_t, dims=dims)
    return [chols.get(span) for span in layout.spans]


def _lkj_block(name: str, q: int, eta: float) -> tuple[pt.TensorVariable, pt.TensorVariable]:
    """Cholesky factor and correlation matrix of one block under ``LKJ(eta)``.

    For ``q = 2`` the LKJ density of ``r`` is proportional to
    ``(1 - r**2) ** (eta - 1)``, i.e. ``(r + 1) / 2 ~ Beta(eta, eta)``: that
    scalar is the free variable (a much smaller graph than the general
    Cholesky transform). For ``q >= 3`` the free variable is PyMC's
    ``LKJCorr`` Cholesky factor.
    """
    if q == 2:
        half = pm.Beta(name, alpha=eta, beta=eta)
        r = 2.0 * half - 1.0
        one, zero = pt.constant(1.0), pt.constant(0.0)
        chol = pt.stack([pt.stack([one, zero]), pt.stack([r, pt.sqrt(1.0 - r**2)])])
        corr = pt.stack([pt.stack([one, r]), pt.stack([r, one])])
        return chol, corr
    chol = pm.LKJCorr(name, n=q, eta=eta)
    return chol, pt.dot(chol, chol.T)


def _factor_scales(
    layout: GroupTerms, priors: Priors, fixed: Mapping[str, object]
) -> tuple[list[pt.TensorVariable], list[pt.TensorVariable | None]]:
    """The SDs of every term of a factor and, per block, its correlation Cholesky factor."""
    sds = [_hyper(sd_name(layout.group, term), priors, fixed) for term in layout.terms]
    return sds, _correlation_cholesky(layout, priors, fixed)


def _group_effects(
    layout: GroupTerms, priors: Priors, fixed: Mapping[str, object], centered: bool = False
) -> pt.TensorVariable:
    """``u_<g> = z_<g> @ chol.T * sd`` block by block, as a Deterministic.

    With ``centered`` (scalar blocks only) ``u_<g> ~ Normal(0, sd)`` is the
    free variable and ``z_<g> = u_<g> / sd`` the Deterministic: the same
    model, in the coordinates NUTS explores best when the data pin each level
    down more tightly than the prior does (see
    :func:`~hiermodels.bayes.centering.choose_centering`).
    """
    group = layout.group
    dims = (group, term_dim(group))
    sds, chols = _factor_scales(layout, priors, fixed)
    if centered:
        if any(chol is not None for chol in chols):
            raise ValueError(f"factor {group!r} has correlated terms: it cannot be centred")
        scale = pt.stack(sds)
        u = pm.Normal(effects_name(group), mu=0.0, sigma=scale, dims=dims)
        pm.Deterministic(spherical_effects_name(group), u / scale, dims=dims)
        return u
    z = pm.Normal(spherical_effects_name(group), mu=0.0, sigma=1.0, dims=dims)
    parts = []
    for (a, b), chol in zip(layout.spans, chols, strict=True):
        z_block = z if len(layout.spans) == 1 else z[:, a:b]
        if chol is not None:
            z_block = _rowwise_matmul(z_block, chol)
        parts.append(z_block * pt.stack(sds[a:b]))
    u = parts[0] if len(parts) == 1 else pt.concatenate(parts, axis=1)
    return pm.Deterministic(effects_name(group), u, dims=dims)


def _rowwise_matmul(z: pt.TensorVariable, chol: pt.TensorVariable) -> pt.TensorVariable:
    """``z @ chol.T`` by broadcasting: small ``q`` and cheaper to compile than a BLAS dot."""
    return pt.sum(z[:, None, :] * chol[None, :, :], axis=2)


def _contribution(layout: GroupTerms, u: pt.TensorVariable) -> pt.TensorVariable:
    """``sum(u[codes] * X_g, axis=1)``: the factor's share of the linear predictor."""
    codes = np.asarray(layout.codes, dtype=np.int64)
    if layout.X.shape[1] == 1 and np.all(layout.X == 1.0):
        return u[codes, 0]
    return pt.sum(u[codes] * layout.X, axis=1)


def _likelihood(
    design: Design, eta: pt.TensorVariable, priors: Priors, fixed: Mapping[str, object]
) -> pt.TensorVariable:
    """The observed variable ``y`` (dim ``obs``) for the design's family and link.

    A Gaussian design's precision weights give row ``i`` the SD ``sigma / sqrt(w_i)``.
    """
    family = design.family
    y = np.asarray(design.y, dtype=float)
    if family.is_gaussian:
        sigma = _hyper("sigma", priors, fixed)
        if design.weights is not None:
            sigma = sigma / np.sqrt(design.weights)
        return pm.Normal(OBSERVED, mu=eta, sigma=sigma, observed=y, dims="obs")
    counts = np.rint(y).astype(np.int64)
    if family.is_binomial:
        link = {"logit_p": eta} if family.link == "logit" else {"p": pm.math.invprobit(eta)}
        if family.name == "bernoulli":
            return pm.Bernoulli(OBSERVED, **link, observed=counts, dims="obs")
        trials = design.trials if design.trials is not None else np.ones_like(y)
        n = np.rint(np.asarray(trials, dtype=float)).astype(np.int64)
        return pm.Binomial(OBSERVED, n=n, **link, observed=counts, dims="obs")
    if family.is_positive:
        sigma = _hyper("sigma", priors, fixed)
        phi = sigma**2
        if family.link == "inverse":
            mean = 1.0 / eta
        elif family.link == "1/mu^2":
            mean = 1.0 / pt.sqrt(eta)
        else:
            mean = pt.exp(eta)
        if family.name == "gamma":
            return pm.Gamma(
                OBSERVED, alpha=1.0 / phi, beta=1.0 / (phi * mean), observed=y, dims="obs"
            )
        return pm.Wald(OBSERVED, mu=mean, lam=1.0 / phi, observed=y, dims="obs")
    mu = pt.exp(eta)
    if family.name == "poisson":
        return pm.Poisson(OBSERVED, mu=mu, observed=counts, dims="obs")
    alpha = _hyper("alpha", priors, fixed)
    return pm.NegativeBinomial(OBSERVED, mu=mu, alpha=alpha, observed=counts, dims="obs")


def build_pymc_model(
    design: Design,
    priors: Priors | Mapping[str, Prior] | None = None,
    *,
    fixed_values: Mapping[str, ArrayLike] | None = None,
    centered: bool | Mapping[str, bool] | Literal["auto"] = False,
) -> pm.Model:
    """Build the PyMC model of a design (graph in the module docstring).

    Parameters
    ----------
    design : Design
        From :func:`hiermodels.design.design.build_design`.
    priors : Priors or mapping of str to Prior, optional
        Overrides of the defaults of :func:`hiermodels.bayes.priors.default_priors`,
        keyed by variable name (``beta``, ``beta__<coef>``, ``sigma``,
        ``alpha``, ``sd_<group>__<term>``, ``corr_<group>``).
    fixed_values : mapping of str to array_like, optional
        Variables held at given values (empirical Bayes): ``beta`` (all
        coefficients), ``sigma``, ``alpha``, ``sd_<group>__<term>`` (``>= 0``)
        and ``corr_<group>`` (see :func:`corr_matrix_from`). They enter the
        graph as constant Deterministics under the same names; the rest stays free.
    centered : bool, mapping of str to bool, or "auto"
        Factors whose effects ``u_<g>`` are the free variables (``z_<g>`` then
        a Deterministic); the model and its output are the same either way.
        ``False`` (default): all non-centred. ``True``: every factor that can
        be centred (no correlated terms, no fixed SDs). A mapping: per
        factor (a factor that cannot be centred raises). ``"auto"``:
        :func:`~hiermodels.bayes.centering.choose_centering` decides from the data.

    Returns
    -------
    pymc.Model
        With coordinates from :func:`model_coords`; the observed variable is ``y``.

    Raises
    ------
    ValueError
        For a prior or fixed value keyed by an unknown variable, a misshapen
        fixed value, a grouping factor named like a reserved dimension, or
        ``centered`` naming an unknown factor or one that cannot be centred.
    """
    resolved = resolve_priors(design, priors)
    fixed = check_fixed_values(design, fixed_values)
    coords = model_coords(design)
    centering = resolve_centering(design, centered, fixed)
    X = np.asarray(design.X, dtype=float)
    with pm.Model(coords=coords) as model:
        beta = _fixed_effects(design, resolved, fixed)
        eta = pt.sum(X * beta, axis=1)  # not pt.dot: a BLAS call costs seconds of compile
        for layout in design.factors:
            u = _group_effects(layout, resolved, fixed, centering[layout.group])
            eta = eta + _contribution(layout, u)
        if design.offset is not None:
            eta = eta + np.asarray(design.offset, dtype=float)
        _likelihood(design, eta, resolved, fixed)
    return model


__getattr__ = moved_names(
    __name__,
    {
        "can_marginalize": ("hiermodels.bayes.marginal_graph", "can_marginalize"),
        "build_marginal_model": ("hiermodels.bayes.marginal_graph", "build_marginal_model"),
        "FactorStatistics": ("hiermodels.bayes.marginal_graph", "FactorStatistics"),
        "choose_centering": ("hiermodels.bayes.centering", "choose_centering"),
        "level_information": ("hiermodels.bayes.centering", "level_information"),
    },
)
