"""Prior specifications for the PyMC graph: data-scaled defaults and user overrides.

A :class:`Prior` is plain data (a PyMC distribution name and its numeric
parameters); nothing here touches PyMC's model context. :func:`default_priors`
derives the weakly informative defaults from a :class:`~hiermodels.design.design.Design`
and :func:`resolve_priors` merges user overrides into them, keyed by the
variable names of the graph.

Default rule
------------
Let ``s`` be the response scale and ``m`` its location:

* gaussian: ``s = sd(y)`` and ``m = mean(y)``;
* other families (link scale): ``s = 1`` and ``m = link(mean response)``,
  where the mean response is ``mean(y)`` (poisson, negative binomial, bernoulli)
  or ``sum(y) / sum(trials)`` (binomial), clipped to ``[1e-3, 1 - 1e-3]``
  for probabilities and to ``>= 1e-3`` for counts.

With ``sd_j`` and ``mean_j`` the sample standard deviation and mean of the
fixed-effects column ``j``:

* each non-intercept coefficient: ``Normal(0, 2.5 * s / sd_j)``
  (a constant column uses its absolute value in place of ``sd_j``);
* the intercept: ``Normal(m, 2.5 * s * sqrt(1 + sum_j (mean_j / sd_j) ** 2))``,
  the marginal prior implied for the uncentred intercept by
  ``Normal(m, 2.5 * s)`` on the intercept of centred predictors;
* each random-effect standard deviation ``sd_<group>__<term>``:
  ``HalfStudentT(nu=3, sigma=s / sd_t)`` with ``sd_t`` the sample standard
  deviation of the term's column over the observations (1 for a constant
  column such as the intercept);
* ``sigma`` (gaussian): ``HalfStudentT(nu=3, sigma=sd(y))``; with precision
  weights ``w`` (row SD ``sigma / sqrt(w)``), ``sigma=sd(y) * sqrt(mean(w))``,
  the SD of a row of average weight staying ``sd(y)``;
* ``alpha`` (negative binomial dispersion, ``var = mu + mu**2 / alpha``):
  ``Gamma(alpha=0.01, beta=0.01)``, flat-ish on the log scale;
* ``sigma`` of the Gamma (its coefficient of variation ``√φ``, ``var =
  sigma**2 * mu**2``): ``HalfStudentT(nu=3, sigma=1)``; of the inverse
  Gaussian (``var = sigma**2 * mu**3``): ``HalfStudentT(nu=3,
  sigma=1 / sqrt(mean(y)))``, the same prior on its coefficient of
  variation ``sigma * sqrt(mu)`` at the mean response;
* ``corr_<group>`` (correlated terms, ``q >= 2``): ``LKJCorr(eta=2)``.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pymc as pm
from numpy.typing import ArrayLike

from hiermodels.design.design import Design
from hiermodels.design.factors import GroupTerms
from hiermodels.names import coefficient_prior_name, correlation_name, sd_name

__all__ = [
    "Prior",
    "Priors",
    "default_priors",
    "resolve_priors",
    "prior_keys",
    "group_term_layout",
    "fixed_value_keys",
    "check_fixed_values",
    "corr_matrix_from",
    "psd_cholesky",
    "POSITIVE_DISTS",
    "POSITIVE_PARAMS",
    "REAL_DISTS",
]

#: Distributions accepted for standard deviations, ``sigma`` and ``alpha``.
POSITIVE_DISTS: frozenset[str] = frozenset(
    {
        "HalfNormal",
        "HalfStudentT",
        "HalfCauchy",
        "Exponential",
        "Gamma",
        "InverseGamma",
        "LogNormal",
        "Weibull",
        "HalfFlat",
        "ChiSquared",
    }
)

#: Distributions on the whole real line, accepted for fixed effects.
REAL_DISTS: frozenset[str] = frozenset(
    {"Normal", "StudentT", "Cauchy", "Laplace", "Logistic", "Flat", "Gumbel", "SkewNormal"}
)

_CORR_DISTS: frozenset[str] = frozenset({"LKJCorr"})

#: Parameters that must be strictly positive (scales, rates, shapes, degrees of
#: freedom), by distribution; every other parameter of these is any finite number.
POSITIVE_PARAMS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "HalfNormal": ("sigma", "tau"),
        "HalfStudentT": ("nu", "sigma", "lam"),
        "HalfCauchy": ("beta",),
        "Exponential": ("lam", "scale"),
        "Gamma": ("alpha", "beta", "mu", "sigma"),
        "InverseGamma": ("alpha", "beta", "mu", "sigma"),
        "LogNormal": ("sigma", "tau"),
        "Weibull": ("alpha", "beta"),
        "ChiSquared": ("nu",),
        "Normal": ("sigma", "tau"),
        "StudentT": ("nu", "sigma", "lam"),
        "Cauchy": ("beta",),
        "Laplace": ("b",),
        "Logistic": ("s",),
        "Gumbel": ("beta",),
        "SkewNormal": ("sigma", "tau"),
        "LKJCorr": ("eta",),
    }
)


@dataclass(frozen=True, init=False)
class Prior:
    """A prior distribution as plain data: a PyMC distribution name and parameters.

    Parameters
    ----------
    dist : str
        Name of a PyMC distribution, e.g. ``"Normal"``, ``"HalfStudentT"``,
        ``"LKJCorr"`` (``"LKJ"`` is accepted for the latter).
    **params : float
        Its numeric parameters, by PyMC's keyword names.

    Examples
    --------
    >>> Prior("Normal", mu=0, sigma=10)
    Prior('Normal', mu=0.0, sigma=10.0)
    """

    dist: str
    params: Mapping[str, float] = field(default_factory=dict)

    def __init__(self, dist: str, **params: float) -> None:
        if not isinstance(dist, str):
            raise TypeError(f"Prior distribution must be a name, got {type(dist).__name__}")
        name = "LKJCorr" if dist == "LKJ" else dist
        # ChiSquared is a PyMC constructor that returns a Gamma, not a Distribution subclass
        known = name in POSITIVE_DISTS or name in REAL_DISTS
        candidate = getattr(pm, name, None)
        if not known and not (
            isinstance(candidate, type) and issubclass(candidate, pm.Distribution)
        ):
            raise ValueError(f"unknown PyMC distribution {dist!r} in Prior")
        values: dict[str, float] = {}
        for key, value in params.items():
            try:
                arr = np.asarray(value, dtype=float)
            except (TypeError, ValueError):
                arr = np.asarray(np.nan)
            if arr.ndim != 0 or not np.isfinite(arr):
                raise ValueError(
                    f"Prior({dist!r}): parameter {key}={value!r} must be a finite number"
                )
            values[key] = float(arr)
            if key in POSITIVE_PARAMS.get(name, ()) and values[key] <= 0:
                # caught here, not as a "math domain error" from the log density later
                raise ValueError(
                    f"Prior({dist!r}): parameter {key}={values[key]:g} is out of range; "
                    f"{name}'s {key} must be > 0 (allowed range: 0 < {key} < inf)"
                )
        object.__setattr__(self, "dist", name)
        object.__setattr__(self, "params", MappingProxyType(values))

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"Prior({self.dist!r}{args})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Prior):
            return NotImplemented
        return self.dist == other.dist and dict(self.params) == dict(other.params)

    def __hash__(self) -> int:
        return hash((self.dist, tuple(sorted(self.params.items()))))


@dataclass(frozen=True, init=False)
class Priors(Mapping[str, Prior]):
    """An immutable mapping from graph variable names to :class:`Prior`.

    Keys are ``beta__<coef>`` (one per fixed effect), ``sigma``, ``alpha``,
    ``sd_<group>__<term>`` and ``corr_<group>``, as produced by
    :func:`default_priors` and :func:`resolve_priors`. As an *override*
    argument it may also carry ``beta``, a prior for every coefficient.
    """

    _items: Mapping[str, Prior]

    def __init__(self, items: Mapping[str, Prior] | None = None) -> None:
        items = dict(items or {})
        for key, prior in items.items():
            if not isinstance(key, str):
                raise TypeError(f"prior keys must be variable names, got {key!r}")
            if not isinstance(prior, Prior):
                raise TypeError(f"prior for {key!r} must be a Prior, got {type(prior).__name__}")
        object.__setattr__(self, "_items", MappingProxyType(items))

    def __getitem__(self, key: str) -> Prior:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        lines = [f"  {key}: {prior!r}" for key, prior in self._items.items()]
        return "Priors(\n" + "\n".join(lines) + "\n)"


def group_term_layout(design: Design) -> tuple[GroupTerms, ...]:
    """Deprecated: read :attr:`Design.factors <hiermodels.design.design.Design.factors>`.

    Parameters
    ----------
    design : Design

    Returns
    -------
    tuple of GroupTerms
        ``design.factors``.
    """
    warnings.warn(
        "group_term_layout(design) is deprecated; use design.factors",
        DeprecationWarning,
        stacklevel=2,
    )
    return design.factors


def _column_scale(design: Design, column: np.ndarray) -> float:
    """Sample sd of a column, or ``|value|`` for a constant one (1 for all-zero)."""
    sd = design.column_sd(column, ddof=1)
    if sd > 0:
        return sd
    value = abs(design.column_mean(column)) if column.size else 1.0
    return value if value > 0 else 1.0


def _response_location_scale(design: Design) -> tuple[float, float]:
    """The location ``m`` and scale ``s`` of the default rule (module docstring)."""
    y = np.asarray(design.y, dtype=float)
    family = design.family
    if family.is_gaussian:
        sd = design.column_sd(y, ddof=1) if design.nobs > 1 else 1.0
        return design.response_shift + design.column_mean(y), sd if sd > 0 else 1.0
    if family.is_binomial:
        total = float(np.sum(design.trials)) if design.trials is not None else y.size
        p = float(np.clip(np.sum(y) / total, 1e-3, 1 - 1e-3))
        if family.link == "probit":
            from scipy.special import ndtri

            return float(ndtri(p)), 1.0
        return float(np.log(p / (1 - p))), 1.0
    if family.link in ("inverse", "1/mu^2"):
        # the linear predictor is 1/μ or 1/μ²: its location and scale are the mean's
        power = 1.0 if family.link == "inverse" else 2.0
        centre = float(np.mean(y)) ** -power
        return centre, centre
    return float(np.log(max(float(np.mean(y)), 1e-3))), 1.0


def _is_intercept(design: Design, name: str, column: np.ndarray) -> bool:
    return name == "Intercept" and design.is_constant_column(column)


def default_priors(design: Design) -> Priors:
    """Weakly informative priors scaled to the data (rule in the module docstring).

    Parameters
    ----------
    design : Design

    Returns
    -------
    Priors
        One entry per variable of the graph: ``beta__<coef>`` for every
        fixed effect, ``sigma`` (gaussian, Gamma, inverse Gaussian), ``alpha``
        (negative binomial),
        ``sd_<group>__<term>`` and ``corr_<group>``.
    """
    m, s = _response_location_scale(design)
    X = np.asarray(design.X, dtype=float)
    items: dict[str, Prior] = {}
    ratios = [
        design.column_mean(X[:, j]) / _column_scale(design, X[:, j])
        for j, name in enumerate(design.fixed_names)
        if not _is_intercept(design, name, X[:, j])
    ]
    for j, name in enumerate(design.fixed_names):
        if _is_intercept(design, name, X[:, j]):
            widen = float(np.sqrt(1.0 + np.sum(np.square(ratios))))
            items[coefficient_prior_name(name)] = Prior("Normal", mu=m, sigma=2.5 * s * widen)
        else:
            items[coefficient_prior_name(name)] = Prior(
                "Normal", mu=0.0, sigma=2.5 * s / _column_scale(design, X[:, j])
            )
    if design.family.is_gaussian:
        unit = 1.0 if design.weights is None else float(np.sqrt(np.mean(design.weights)))
        items["sigma"] = Prior("HalfStudentT", nu=3.0, sigma=s * unit)
    if design.family.is_positive:
        scale = 1.0 if design.family.name == "gamma" else float(np.mean(design.y)) ** -0.5
        items["sigma"] = Prior("HalfStudentT", nu=3.0, sigma=scale)
    if design.family.name == "negativebinomial":
        items["alpha"] = Prior("Gamma", alpha=0.01, beta=0.01)
    for layout in design.factors:
        for k, term in enumerate(layout.terms):
            scale = s / _column_scale(design, layout.X[:, k])
            items[sd_name(layout.group, term)] = Prior("HalfStudentT", nu=3.0, sigma=scale)
        if layout.correlated_spans:
            items[correlation_name(layout.group)] = Prior("LKJCorr", eta=2.0)
    return Priors(items)


def prior_keys(design: Design) -> tuple[str, ...]:
    """The keys a user may override for this design (``beta`` included)."""
    return ("beta", *default_priors(design).keys())


def _check_kind(key: str, prior: Prior) -> None:
    """Reject a distribution whose support does not fit the variable."""
    if key == "beta" or key.startswith("beta__"):
        allowed = REAL_DISTS
    elif key.startswith("corr_"):
        allowed = _CORR_DISTS
    else:
        allowed = POSITIVE_DISTS
    if prior.dist not in allowed:
        raise ValueError(
            f"prior {prior.dist!r} does not fit {key!r}; "
            f"choose one of: {', '.join(sorted(allowed))}"
        )
    if prior.dist == "LKJCorr":
        if set(prior.params) != {"eta"} or prior.params["eta"] <= 0:
            raise ValueError(f"prior for {key!r} must be Prior('LKJCorr', eta=<positive number>)")
        return
    signature = inspect.signature(getattr(pm, prior.dist).dist)
    named = [
        name
        for name, param in signature.parameters.items()
        if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
    ]
    unknown = sorted(set(prior.params) - set(named))
    if unknown:  # PyMC's .dist() swallows unknown keywords silently
        raise ValueError(
            f"invalid parameters for prior {key!r} = {prior!r}: {prior.dist} takes "
            f"{', '.join(named)}; got {', '.join(unknown)}"
        )
    try:
        getattr(pm, prior.dist).dist(**prior.params)
    except Exception as err:  # PyMC raises TypeError/ValueError for bad parameters
        raise ValueError(f"invalid parameters for prior {key!r} = {prior!r}: {err}") from err


def resolve_priors(design: Design, priors: Priors | Mapping[str, Prior] | None = None) -> Priors:
    """Merge user overrides into the defaults of :func:`default_priors`.

    Parameters
    ----------
    design : Design
    priors : Priors or mapping of str to Prior, optional
        Overrides keyed by variable name. ``beta`` sets every coefficient;
        ``beta__<coef>`` one coefficient and wins over ``beta``.

    Returns
    -------
    Priors
        A complete set, one entry per variable (no ``beta`` key).

    Raises
    ------
    ValueError
        For a key that names no variable of the graph (the message lists the
        valid keys), or a distribution that does not fit its variable.
    """
    defaults = default_priors(design)
    overrides: Mapping[str, Any] = priors if priors is not None else {}
    valid = ("beta", *defaults.keys())
    unknown = [key for key in overrides if key not in valid]
    if unknown:
        raise ValueError(
            f"prior keyed by unknown variable(s) {unknown}; valid keys: {', '.join(valid)}"
        )
    for key, prior in overrides.items():
        if not isinstance(prior, Prior):
            raise TypeError(f"prior for {key!r} must be a Prior, got {type(prior).__name__}")
        _check_kind(key, prior)
    items = dict(defaults)
    if "beta" in overrides:
        for key in defaults:
            if key.startswith("beta__"):
                items[key] = overrides["beta"]
    items.update((key, prior) for key, prior in overrides.items() if key != "beta")
    return Priors(items)


# ----------------------------------------------------------------------------------------
# Fixed values: point masses in place of priors (empirical Bayes).


def fixed_value_keys(design: Design) -> tuple[str, ...]:
    """Names that ``fixed_values`` may hold for this design."""
    keys = ["beta"]
    if design.family.is_gaussian or design.family.is_positive:
        keys.append("sigma")
    if design.family.name == "negativebinomial":
        keys.append("alpha")
    for layout in design.factors:
        keys.extend(sd_name(layout.group, term) for term in layout.terms)
        if layout.correlated_spans:
            keys.append(correlation_name(layout.group))
    return tuple(keys)


def psd_cholesky(matrix: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor that tolerates a singular (e.g. ``|r| = 1``) correlation."""
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        n = matrix.shape[0]
        chol = np.zeros_like(matrix)
        for i in range(n):
            pivot = matrix[i, i] - chol[i, :i] @ chol[i, :i]
            chol[i, i] = np.sqrt(max(pivot, 0.0))
            for j in range(i + 1, n):
                if chol[i, i] > 1e-12:  # a zero pivot leaves the column at zero
                    chol[j, i] = (matrix[j, i] - chol[j, :i] @ chol[i, :i]) / chol[i, i]
        return chol


def corr_matrix_from(layout: GroupTerms, value: ArrayLike) -> np.ndarray:
    """Full ``(q, q)`` correlation matrix of a factor from a fixed value.

    Parameters
    ----------
    layout : GroupTerms
    value : array_like
        Either the ``(q, q)`` matrix (zero between blocks) or the
        off-diagonal entries of the correlated blocks, block by block, each
        block's upper triangle row by row (``numpy.triu_indices`` order,
        lme4's ``VarCorr`` order).

    Returns
    -------
    numpy.ndarray
        Symmetric, unit diagonal, block diagonal, positive semi-definite.
    """
    arr = np.asarray(value, dtype=float)
    q = len(layout.terms)
    name = correlation_name(layout.group)
    if arr.ndim == 2:
        if arr.shape != (q, q):
            raise ValueError(f"fixed value {name!r} must be a {q}x{q} matrix, got {arr.shape}")
        full = arr.copy()
    else:
        flat = arr.reshape(-1)
        needed = sum((b - a) * (b - a - 1) // 2 for a, b in layout.correlated_spans)
        if flat.size != needed:
            raise ValueError(
                f"fixed value {name!r} needs {needed} off-diagonal correlation(s), got {flat.size}"
            )
        full = np.eye(q)
        pos = 0
        for a, b in layout.correlated_spans:
            rows, cols = np.triu_indices(b - a, 1)
            full[a + rows, a + cols] = flat[pos : pos + rows.size]
            full[a + cols, a + rows] = flat[pos : pos + rows.size]
            pos += rows.size
    mask = np.zeros((q, q), dtype=bool)
    for a, b in layout.correlated_spans:
        mask[a:b, a:b] = True
    np.fill_diagonal(mask, True)
    if not np.allclose(full, full.T) or not np.allclose(np.diag(full), 1.0):
        raise ValueError(f"fixed value {name!r} must be symmetric with a unit diagonal")
    if np.any(full[~mask] != 0) or np.any(np.abs(full) > 1 + 1e-12):
        raise ValueError(
            f"fixed value {name!r} must lie in [-1, 1] and be zero between independent blocks"
        )
    if np.linalg.eigvalsh(full).min() < -1e-8:  # round-off slack for |r| = 1 fits
        raise ValueError(f"fixed value {name!r} is not positive semi-definite")
    return full


def check_fixed_values(design: Design, fixed_values: Mapping[str, ArrayLike] | None) -> dict:
    """Validate ``fixed_values`` against the design; scalars and ``beta`` as arrays.

    Correlations are returned as given and checked by :func:`corr_matrix_from`
    when the graph is built.

    Raises
    ------
    ValueError
        For an unknown key (the message lists the valid ones) or a misshapen value.
    """
    if not fixed_values:
        return {}
    valid = fixed_value_keys(design)
    unknown = [key for key in fixed_values if key not in valid]
    if unknown:
        raise ValueError(
            f"fixed_values has unknown variable(s) {unknown}; valid keys: {', '.join(valid)}"
        )
    out: dict[str, object] = {}
    for key, value in fixed_values.items():
        if key.startswith("corr_"):
            out[key] = value  # checked against the factor's layout when built
            continue
        arr = np.asarray(value, dtype=float)
        if key == "beta":
            if arr.shape != (len(design.fixed_names),):
                raise ValueError(
                    f"fixed value 'beta' must have {len(design.fixed_names)} entries "
                    f"({', '.join(design.fixed_names)}), got shape {arr.shape}"
                )
        elif arr.ndim != 0 or not arr >= 0:
            raise ValueError(f"fixed value {key!r} must be a non-negative scalar, got {value!r}")
        out[key] = arr
    return out
