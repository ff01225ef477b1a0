"""Hyperpriors of the compound models' full-Bayes versions, given as data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["HyperPriorSpec", "check_hyperprior_keys", "make_prior"]

#: A hyperprior given as data: a PyMC distribution name and its parameters,
#: e.g. ``("HalfNormal", {"sigma": 10.0})``.
HyperPriorSpec = tuple[str, Mapping[str, float]]


def make_prior(
    name: str,
    spec: HyperPriorSpec | None,
    default: HyperPriorSpec,
) -> Any:
    """Create a PyMC hyperprior from a data-only specification.

    Must be called inside a ``pm.Model`` context.

    Parameters
    ----------
    name : str
        Variable name in the model.
    spec : tuple (str, mapping) or None
        User choice, e.g. ``("Normal", {"mu": 0.0, "sigma": 10.0})``; ``None``
        uses ``default``.
    default : tuple (str, mapping)
        The model's documented default.

    Returns
    -------
    pytensor.tensor.TensorVariable
        The new random variable.
    """
    import pymc as pm

    dist_name, params = default if spec is None else spec
    dist = getattr(pm, str(dist_name), None)
    if not (isinstance(dist, type) and issubclass(dist, pm.Distribution)):
        raise ValueError(f"hyperprior for {name!r}: {dist_name!r} is not a PyMC distribution")
    try:
        return dist(name, **dict(params))
    except TypeError as err:
        raise ValueError(f"hyperprior for {name!r}: bad parameters {dict(params)}: {err}") from err


def check_hyperprior_keys(hyperpriors: Mapping[str, Any] | None, allowed: Sequence[str]) -> None:
    """Raise a clear error when ``hyperpriors`` names an unknown variable.

    Parameters
    ----------
    hyperpriors : mapping or None
        User hyperpriors keyed by variable name.
    allowed : sequence of str
        Names the model accepts.
    """
    if hyperpriors is None:
        return
    unknown = sorted(set(hyperpriors) - set(allowed))
    if unknown:
        raise ValueError(f"unknown hyperprior names {unknown}; this model takes {list(allowed)}")
