"""Response families and link functions.

A :class:`Family` is a small immutable value naming the distribution of the
response and its link. The spec and design stages use it to validate the
response; the likelihood engines and the PyMC builder use it to pick their
likelihood.

The positive continuous families, ``"gamma"`` and ``"inverse_gaussian"``,
carry a dispersion ``φ`` (``Var(y) = φμ²`` and ``φμ³``), reported as
glmmTMB's ``sigma() = √φ``. Their default link is ``"log"``: any linear
predictor gives a positive mean, and the coefficients are log ratios of
means. The canonical links (``"inverse"`` for the Gamma, ``"1/mu^2"`` for
the inverse Gaussian, glm's and lme4's defaults) need a positive linear
predictor at every row, which nothing in the model enforces.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

__all__ = [
    "FAMILY_LINKS",
    "POSITIVE_FAMILIES",
    "Family",
    "draw_response",
    "get_family",
    "inverse_link",
]

#: Supported families and their allowed links; the first link is the default.
FAMILY_LINKS: dict[str, tuple[str, ...]] = {
    "gaussian": ("identity",),
    "bernoulli": ("logit", "probit"),
    "binomial": ("logit", "probit"),
    "poisson": ("log",),
    "negativebinomial": ("log",),
    "gamma": ("log", "inverse"),
    "inverse_gaussian": ("log", "1/mu^2"),
}

#: Families with a dispersion ``φ`` beside the mean (``Var(y) = φ V(μ)``) and a
#: positive continuous response.
POSITIVE_FAMILIES: tuple[str, ...] = ("gamma", "inverse_gaussian")

_ALIASES: dict[str, str] = {
    "normal": "gaussian",
    "negbinomial": "negativebinomial",
    "negative_binomial": "negativebinomial",
    "nbinom": "negativebinomial",
    "inversegaussian": "inverse_gaussian",
    "inverse.gaussian": "inverse_gaussian",
    "invgauss": "inverse_gaussian",
}


@dataclass(frozen=True)
class Family:
    """A response distribution with its link function.

    Parameters
    ----------
    name : str
        One of ``"gaussian"``, ``"bernoulli"``, ``"binomial"``, ``"poisson"``,
        ``"negativebinomial"``, ``"gamma"``, ``"inverse_gaussian"``.
    link : str
        The link function; must be allowed for ``name`` (see
        :data:`FAMILY_LINKS`).
    """

    name: str
    link: str

    def __post_init__(self) -> None:
        if self.name not in FAMILY_LINKS:
            known = ", ".join(sorted(FAMILY_LINKS))
            raise ValueError(f"unknown family {self.name!r}; choose one of: {known}")
        allowed = FAMILY_LINKS[self.name]
        if self.link not in allowed:
            raise ValueError(
                f"link {self.link!r} is not available for family {self.name!r}; "
                f"choose one of: {', '.join(allowed)}"
            )

    @property
    def is_gaussian(self) -> bool:
        """Whether the response is Gaussian with identity link (an LMM)."""
        return self.name == "gaussian"

    @property
    def is_binomial(self) -> bool:
        """Whether the response is bernoulli or binomial."""
        return self.name in ("bernoulli", "binomial")

    @property
    def is_positive(self) -> bool:
        """Whether the response is positive and continuous (Gamma, inverse Gaussian)."""
        return self.name in POSITIVE_FAMILIES


def get_family(family: str | Family, link: str | None = None) -> Family:
    """Return a :class:`Family` from a name (and optional link) or pass one through.

    Parameters
    ----------
    family : str or Family
        A family name (case-insensitive; ``"normal"``, ``"negbinomial"`` and
        ``"inverse.gaussian"`` are accepted aliases) or a ready :class:`Family`.
    link : str, optional
        The link; the family's default when omitted.

    Returns
    -------
    Family

    Raises
    ------
    ValueError
        For an unknown family or a link the family does not allow.
    """
    if isinstance(family, Family):
        if link is not None and link != family.link:
            return Family(family.name, link)
        return family
    if not isinstance(family, str):
        raise TypeError(f"family must be a string or Family, got {type(family).__name__}")
    name = family.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in FAMILY_LINKS:
        known = ", ".join(sorted(FAMILY_LINKS))
        raise ValueError(f"unknown family {family!r}; choose one of: {known}")
    return Family(name, link if link is not None else FAMILY_LINKS[name][0])


def inverse_link(link: str, eta: np.ndarray) -> np.ndarray:
    """Map a linear predictor to the mean scale.

    Parameters
    ----------
    link : str
        ``"identity"``, ``"logit"``, ``"probit"``, ``"log"``, ``"inverse"``
        (``μ = 1/η``) or ``"1/mu^2"`` (``μ = 1/√η``).
    eta : numpy.ndarray
        Linear predictor.

    Returns
    -------
    numpy.ndarray
    """
    eta = np.asarray(eta, dtype=float)
    if link == "identity":
        return eta
    if link == "logit":
        return special.expit(eta)
    if link == "probit":
        return special.ndtr(eta)
    if link == "log":
        return np.exp(eta)
    if link == "inverse":
        return 1.0 / eta
    if link == "1/mu^2":
        return 1.0 / np.sqrt(eta)
    raise ValueError(f"unknown link {link!r}")


def draw_response(
    family: Family,
    mean: np.ndarray,
    rng: np.random.Generator,
    *,
    scale: ArrayLike | None = None,
    trials: ArrayLike | None = None,
    alpha: ArrayLike | None = None,
) -> np.ndarray:
    """Responses drawn from the family at the means ``mean``: one per entry.

    The one sampler of the families' distributions, used for simulated
    replicates of an MLE fit and for posterior-predictive draws.

    Parameters
    ----------
    family : Family
    mean : numpy.ndarray
        ``μ`` of every draw (a probability for the binomial families).
    rng : numpy.random.Generator
    scale : array_like, optional
        Gaussian: each row's residual SD (``σ/√w`` with precision weights);
        Gamma and inverse Gaussian: ``σ = √φ``. Broadcasts against ``mean``.
    trials : array_like, optional
        Binomial numbers of trials (1 when omitted; bernoulli ignores them).
    alpha : array_like, optional
        The negative binomial's ``α`` in ``Var(y) = μ + μ²/α``; infinite is
        the Poisson.

    Returns
    -------
    numpy.ndarray
        Float draws of ``mean``'s shape; counts of successes for binomial.
    """
    mean = np.asarray(mean, dtype=float)
    name = family.name
    if name in ("gaussian", "gamma", "inverse_gaussian") and scale is None:
        raise ValueError(f"drawing from the {name} family needs its scale")
    if family.is_gaussian:
        return rng.normal(mean, np.asarray(scale, dtype=float))
    if family.is_binomial:
        n = 1 if trials is None or name == "bernoulli" else np.asarray(trials, dtype=np.int64)
        return rng.binomial(n, np.clip(mean, 0.0, 1.0)).astype(float)
    if name in POSITIVE_FAMILIES:
        phi = np.broadcast_to(np.square(np.asarray(scale, dtype=float)), mean.shape)
        if name == "gamma":
            return rng.gamma(1.0 / phi, mean * phi)
        return rng.wald(mean, 1.0 / phi)
    if name == "negativebinomial":
        if alpha is None:
            raise ValueError("drawing from the negative binomial needs its alpha")
        shape = np.broadcast_to(np.asarray(alpha, dtype=float), mean.shape)
        finite = np.isfinite(shape)
        draws = np.empty(mean.shape)
        if not finite.all():
            draws[~finite] = rng.poisson(mean[~finite])
        if finite.any():
            a, m = shape[finite], mean[finite]
            with warnings.catch_warnings():
                # numpy warns about p rounding to 1 for a huge α, where the draw is exact
                warnings.simplefilter("ignore", RuntimeWarning)
                draws[finite] = rng.negative_binomial(a, a / (a + m))
        return draws
    return rng.poisson(mean).astype(float)
