"""Names hiermodels gives to the dimensions and variables of a fitted model.

A grouping factor's name becomes a dimension of the PyMC graph and of the
posterior (the levels of ``u_<g>``), so it must not be one of the names the
library uses itself, nor one derived from another factor (``u_<h>``,
``<h>__term``, ...). Every path (``Model``, :func:`build_design`, the PyMC
builder, the samplers) goes through :func:`check_group_names`, so a clash
is refused once, at build time, with the column to rename.

Covariate, response and level names are values, not dimension names, and
never clash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hiermodels.names import (
    coefficient_prior_name,
    correlation_factor_name,
    correlation_name,
    effects_name,
    sd_name,
    spherical_effects_name,
    term_dim,
    term_pair_dim,
)

__all__ = ["RESERVED_NAMES", "check_group_names"]

#: Dimensions and variables of every model, with what they hold.
RESERVED_NAMES: Mapping[str, str] = {
    "coef": "the dimension of the fixed-effect coefficients",
    "obs": "the dimension of the observations",
    "chain": "the MCMC chain dimension",
    "draw": "the MCMC draw dimension",
    "ci_bound": "the dimension of the interval bounds in posterior summaries",
    "beta": "the fixed-effect coefficients",
    "sigma": "the residual standard deviation",
    "alpha": "the negative-binomial dispersion",
    "y": "the observed response variable",
    "marginal_loglik": "the marginal log-likelihood",
}


def _derived(fixed_names: Sequence[str], terms: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The names the graph derives from the coefficients and every factor ``h``."""
    out = {
        coefficient_prior_name(name): f"the prior of coefficient {name!r}" for name in fixed_names
    }
    for h, group_terms in terms.items():
        out[effects_name(h)] = f"the random effects of {h!r}"
        out[spherical_effects_name(h)] = f"the standardised random effects of {h!r}"
        out[correlation_name(h)] = f"the correlations of the terms of {h!r}"
        out[correlation_factor_name(h)] = f"the correlations of the terms of {h!r}"
        out[term_dim(h)] = f"the dimension of the terms of {h!r}"
        out[term_pair_dim(h)] = f"the dimension of the terms of {h!r}"
        for term in group_terms:
            out[sd_name(h, term)] = f"the standard deviation of {term!r} by {h!r}"
    return out


def check_group_names(fixed_names: Sequence[str], terms: Mapping[str, Sequence[str]]) -> None:
    """Refuse grouping-factor names that the model's own names would collide with.

    Parameters
    ----------
    fixed_names : sequence of str
        The fixed-effect coefficient names.
    terms : mapping of str to sequence of str
        Each grouping factor's name (``"Subject"``, ``"a:b"``) and the names
        of its random-effect terms.

    Raises
    ------
    ValueError
        Naming the grouping factor, what the name is used for and a rename;
        :func:`hiermodels.design.design.build_design` re-raises it as
        :class:`~hiermodels.errors.DesignError`.
    """
    derived = _derived(fixed_names, terms)
    for group in terms:
        use = RESERVED_NAMES.get(group) or derived.get(group)
        if use is None and group.startswith("corr_"):
            # the LKJ factors of a factor with several correlated blocks: corr_<h>__raw<k>
            head, _, tail = group.rpartition("__raw")
            if head[len("corr_") :] in terms and tail.isdigit():
                use = f"the correlations of the terms of {head[len('corr_') :]!r}"
        if use is None:
            continue
        columns = group.split(":")
        which = (
            f"column {group!r}"
            if len(columns) == 1
            else f"one of the columns {', '.join(repr(c) for c in columns)}"
        )
        raise ValueError(
            f"grouping factor {group!r} has a name hiermodels uses for {use}; rename {which} "
            f"in the data (e.g. data.rename(columns={{{columns[-1]!r}: {columns[-1] + '_id'!r}}})) "
            "and in the formula"
        )
