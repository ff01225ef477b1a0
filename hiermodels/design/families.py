"""Response families and link functions.

A :class:`Family` is a small immutable value naming the distribution of the
response and its link. The spec and design stages use it to validate the
response; the likelihood engines and the PyMC builder use it to pick their
likelihood.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = ["FAMILY_LINKS", "Family", "get_family", "inverse_link"]

#: Supported families and their allowed links; the first link is the default.
FAMILY_LINKS: dict[str, tuple[str, ...]] = {
    "gaussian": ("identity",),
    "bernoulli": ("logit", "probit"),
    "binomial": ("logit", "probit"),
    "poisson": ("log",),
    "negativebinomial": ("log",),
}

_ALIASES: dict[str, str] = {
    "normal": "gaussian",
    "negbinomial": "negativebinomial",
    "negative_binomial": "negativebinomial",
    "nbinom": "negativebinomial",
}


@dataclass(frozen=True)
class Family:
    """A response distribution with its link function.

    Parameters
    ----------
    name : str
        One of ``"gaussian"``, ``"bernoulli"``, ``"binomial"``, ``"poisson"``,
        ``"negativebinomial"``.
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


def get_family(family: str | Family, link: str | None = None) -> Family:
    """Return a :class:`Family` from a name (and optional link) or pass one through.

    Parameters
    ----------
    family : str or Family
        A family name (case-insensitive; ``"normal"`` and ``"negbinomial"``
        are accepted aliases) or a ready :class:`Family`.
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
        ``"identity"``, ``"logit"``, ``"probit"`` or ``"log"``.
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
    raise ValueError(f"unknown link {link!r}")
