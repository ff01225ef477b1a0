"""The names every engine gives the same things, spelled once.

A model's parameters are named alike in the MLE fit's exports, EB's plug-in
values, the PyMC graph and every posterior: ``beta`` (dims ``coef``), per
grouping factor ``g`` the standard deviations ``sd_<g>__<term>``, the
correlation matrix ``corr_<g>`` (dims ``<g>__term``, ``<g>__term_bis``) and
the effects ``u_<g>`` with their standardised form ``z_<g>`` (dims ``<g>``,
``<g>__term``). Tables label one correlation ``corr_<g>[<term1>,<term2>]``.
Interval summaries take ``ci_prob`` with :data:`DEFAULT_CI_PROB` as default;
every HTML report is written as :data:`REPORT_FILENAME`, with the
explorer page it links to as :data:`EXPLORER_FILENAME`.

Those names stay the API's; pictures and reports show a reader
:func:`display_label` of each instead (``σ for Subject: Days``,
``ρ for Subject: (Intercept, Days)``, ``residual σ``, ``β for Days``).
"""

from __future__ import annotations

import re

__all__ = [
    "DEFAULT_CI_PROB",
    "EXPLORER_FILENAME",
    "REPORT_FILENAME",
    "coefficient_label",
    "coefficient_prior_name",
    "correlation_factor_name",
    "correlation_label",
    "correlation_name",
    "display_label",
    "effects_name",
    "group_term_label",
    "sd_name",
    "spherical_effects_name",
    "term_dim",
    "term_pair_dim",
]

#: Probability of every interval a summary reports unless told otherwise.
DEFAULT_CI_PROB = 0.95

#: The file name of every HTML report, whichever command writes it.
REPORT_FILENAME = "report.html"

#: The file name of the interactive explorer page a report links to, beside it.
EXPLORER_FILENAME = "explorer.html"


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


def coefficient_label(coef: str) -> str:
    """``β for <coef>``: one fixed-effect coefficient, as a reader sees it."""
    return f"β for {coef}"


def group_term_label(group: str, term: str) -> str:
    """``<group>: <term>``: one term of a grouping factor, as a reader sees it."""
    return f"{group}: {term}"


_SD = re.compile(r"sd_(?P<group>.+?)__(?P<term>.+)")
_CORRELATION = re.compile(r"corr_(?P<group>.+?)\[(?P<first>[^,\]]+),(?P<second>[^\]]+)\]")
# the sampler's coordinates ``corr_<g>__raw…`` are no parameter a reader meets
_CORRELATION_MATRIX = re.compile(r"corr_(?P<group>(?:(?!__raw).)+)")
_COEFFICIENT = re.compile(r"beta__(?P<coef>.+)")
_SCALARS = {"sigma": "residual σ", "alpha": "dispersion α", "beta": "β (every coefficient)"}


def display_label(name: str) -> str:
    """The label a table or picture shows for a parameter named as in the API.

    Parameters
    ----------
    name : str
        ``sigma``, ``alpha``, ``sd_<g>__<t>`` (:func:`sd_name`),
        ``corr_<g>[<a>,<b>]`` (:func:`correlation_label`), ``corr_<g>``
        (:func:`correlation_name`) or ``beta__<coef>``
        (:func:`coefficient_prior_name`).

    Returns
    -------
    str
        ``residual σ``, ``dispersion α``, ``σ for <g>: <t>``,
        ``ρ for <g>: (<a>, <b>)``, ``ρ for <g>`` or ``β for <coef>``; any
        other name unchanged.

    Examples
    --------
    >>> display_label("sd_Subject__Days")
    'σ for Subject: Days'
    >>> display_label("corr_Subject[Intercept,Days]")
    'ρ for Subject: (Intercept, Days)'
    """
    if name in _SCALARS:
        return _SCALARS[name]
    if match := _SD.fullmatch(name):
        return "σ for " + group_term_label(match["group"], match["term"])
    if match := _CORRELATION.fullmatch(name):
        return f"ρ for {match['group']}: ({match['first']}, {match['second']})"
    if match := _COEFFICIENT.fullmatch(name):
        return coefficient_label(match["coef"])
    if match := _CORRELATION_MATRIX.fullmatch(name):
        return f"ρ for {match['group']}"
    return name
