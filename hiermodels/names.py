"""The names every engine gives the same things, spelled once.

A model's parameters are named alike in the MLE fit's exports, EB's plug-in
values, the PyMC graph and every posterior: ``beta`` (dims ``coef``), per
grouping factor ``g`` the standard deviations ``sd_<g>__<term>``, the
correlation matrix ``corr_<g>`` (dims ``<g>__term``, ``<g>__term_bis``) and
the effects ``u_<g>`` with their standardised form ``z_<g>`` (dims ``<g>``,
``<g>__term``). Tables label one correlation ``corr_<g>[<term1>,<term2>]``.
Interval summaries take ``ci_prob`` with :data:`DEFAULT_CI_PROB` as default.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_CI_PROB",
    "coefficient_prior_name",
    "correlation_factor_name",
    "correlation_label",
    "correlation_name",
    "effects_name",
    "sd_name",
    "spherical_effects_name",
    "term_dim",
    "term_pair_dim",
]

#: Probability of every interval a summary reports unless told otherwise.
DEFAULT_CI_PROB = 0.95


def sd_name(group: str, term: str) -> str:
    """``sd_<group>__<term>``: the standard deviation of ``term`` by ``group``."""
    return f"sd_{group}__{term}"


def correlation_name(group: str) -> str:
    """``corr_<group>``: the correlation matrix of ``group``'s terms."""
    return f"corr_{group}"


def correlation_factor_name(group: str, block: int | None = None) -> str:
    """``corr_<group>__raw`` (``…__raw<k>`` for block ``k`` of several): the sampler's
    unconstrained coordinates of a correlation block."""
    return f"corr_{group}__raw" if block is None else f"corr_{group}__raw{block}"


def correlation_label(group: str, first: str, second: str) -> str:
    """``corr_<group>[<first>,<second>]``: one correlation, as a table row names it."""
    return f"corr_{group}[{first},{second}]"


def coefficient_prior_name(coef: str) -> str:
    """``beta__<coef>``: the key of one coefficient's prior."""
    return f"beta__{coef}"


def effects_name(group: str) -> str:
    """``u_<group>``: the effects of ``group``'s levels, on the response's scale."""
    return f"u_{group}"


def spherical_effects_name(group: str) -> str:
    """``z_<group>``: the standardised effects of ``group``'s levels."""
    return f"z_{group}"


def term_dim(group: str) -> str:
    """``<group>__term``: the dimension of ``group``'s terms."""
    return f"{group}__term"


def term_pair_dim(group: str) -> str:
    """``<group>__term_bis``: the second dimension of ``group``'s correlation matrix."""
    return f"{group}__term_bis"
