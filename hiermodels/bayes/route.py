"""Which engine samples a model: :class:`SamplingRoute` and its one decider, :func:`choose_route`.

A design is sampled in one of five ways, each a member of
:class:`SamplingRoute`; :func:`hiermodels.bayes.fit.fit_bayes` asks
:func:`choose_route` once and runs the route it names. Combinations of
options that no route serves are refused here, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from numpy.typing import ArrayLike

from hiermodels.bayes.joint_density import supports_joint_density
from hiermodels.bayes.laplace_density import check_laplace_family
from hiermodels.bayes.marginal_graph import can_marginalize
from hiermodels.design.design import Design

__all__ = ["SAMPLERS", "BACKENDS", "SamplingRoute", "choose_route"]

#: The samplers ``fit_bayes`` runs: nutpie, or PyMC's own NUTS.
SAMPLERS = ("nutpie", "pymc")
#: How nutpie evaluates the model: a compiled density (``"direct"``) or the PyMC graph.
BACKENDS = ("auto", "direct", "numba", "python")


class SamplingRoute(StrEnum):
    """The engine that samples a model; its value is what a saved fit records.

    Attributes
    ----------
    FULL_GRAPH
        The PyMC graph of :func:`~hiermodels.bayes.build.build_pymc_model`,
        group effects as parameters, sampled by nutpie (numba or Python
        backend) or PyMC's NUTS.
    MARGINAL_GRAPH
        The PyMC graph of :func:`~hiermodels.bayes.marginal_graph.build_marginal_model`
        (a gaussian model with one grouping factor, its effects integrated
        out); the effects are then drawn from their exact conditional.
    GAUSSIAN_NATIVE
        :class:`~hiermodels.bayes.gaussian_density.GaussianMarginalDensity`,
        the marginal density of any gaussian model, one compiled function
        nutpie calls natively; the effects are drawn from their exact conditional.
    JOINT_NATIVE
        :class:`~hiermodels.bayes.joint_density.JointDensity`, the joint
        posterior of a binomial, Bernoulli or Poisson model, effects as
        parameters, one compiled function nutpie calls natively.
    LAPLACE_NATIVE
        :class:`~hiermodels.bayes.laplace_density.LaplaceDensity`: an
        approximate posterior, the effects integrated out by the Laplace
        approximation and drawn from the Gaussian at their conditional mode.
    """

    FULL_GRAPH = "full_graph"
    MARGINAL_GRAPH = "marginal_graph"
    GAUSSIAN_NATIVE = "gaussian_native"
    JOINT_NATIVE = "joint_native"
    LAPLACE_NATIVE = "laplace_native"

    @property
    def integrates_effects(self) -> bool:
        """Whether the sampler runs with the group effects integrated out."""
        return self in (
            SamplingRoute.MARGINAL_GRAPH,
            SamplingRoute.GAUSSIAN_NATIVE,
            SamplingRoute.LAPLACE_NATIVE,
        )


def choose_route(
    design: Design,
    *,
    sampler: str = "nutpie",
    backend: str = "auto",
    marginalize: bool | None = None,
    integrate: str | None = None,
    fixed_values: Mapping[str, ArrayLike] | None = None,
) -> SamplingRoute:
    """The route that samples ``design`` with these options of ``fit_bayes``.

    With nutpie's direct backend (``sampler="nutpie"``, ``backend="auto"``
    or ``"direct"``) a gaussian model goes through its marginal density
    (:attr:`~SamplingRoute.GAUSSIAN_NATIVE`) and a binomial, Bernoulli or
    Poisson model through its joint density
    (:attr:`~SamplingRoute.JOINT_NATIVE`). ``integrate="laplace"`` is
    :attr:`~SamplingRoute.LAPLACE_NATIVE`. Otherwise a gaussian model with
    one grouping factor and at most two terms is marginalised on the graph
    (:attr:`~SamplingRoute.MARGINAL_GRAPH`) and everything else, including
    ``fixed_values``, negative binomial models and ``marginalize=False``
    without a native density, samples the full graph
    (:attr:`~SamplingRoute.FULL_GRAPH`).

    Parameters
    ----------
    design : Design
    sampler : {"nutpie", "pymc"}
    backend : {"auto", "direct", "numba", "python"}
    marginalize : bool, optional
        ``None``: integrate the group effects out whenever possible and no
        ``fixed_values`` are given.
    integrate : {None, "laplace"}
    fixed_values : mapping of str to array_like, optional

    Returns
    -------
    SamplingRoute

    Raises
    ------
    ValueError
        For an unknown sampler, backend or ``integrate``, and for options
        no route serves, saying why.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be 'nutpie' or 'pymc', got {sampler!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'auto', 'direct', 'numba' or 'python', got {backend!r}")
    direct = sampler == "nutpie" and backend in ("auto", "direct")
    if integrate is not None:
        if integrate != "laplace":
            raise ValueError(f"integrate must be None or 'laplace', got {integrate!r}")
        if not direct:
            raise ValueError(
                "integrate='laplace' samples with nutpie's direct backend "
                "(sampler='nutpie', backend='auto' or 'direct')"
            )
        if marginalize is not None or fixed_values:
            raise ValueError(
                "integrate='laplace' takes neither marginalize nor fixed_values: the effects "
                "are integrated out by the Laplace approximation and every hyperparameter "
                "is sampled"
            )
        check_laplace_family(design)
        return SamplingRoute.LAPLACE_NATIVE
    one_factor = can_marginalize(design)
    gaussian = design.family.is_gaussian and bool(design.blocks)
    if marginalize is None:
        marginalize = not fixed_values and (one_factor or (gaussian and direct))
    if marginalize and fixed_values:
        raise ValueError("fixed_values are not available with marginalize=True")
    if marginalize and not gaussian:
        raise ValueError(
            f"the group effects are integrated out exactly only in gaussian models; "
            f"a {design.family.name} model is sampled with them (marginalize=False)"
        )
    if marginalize and not (one_factor or direct):
        raise ValueError(
            "the group effects of this model are integrated out only by nutpie's direct "
            "backend (sampler='nutpie', backend='auto' or 'direct'); pass marginalize=False"
        )
    joint = not gaussian and direct and not fixed_values and supports_joint_density(design)
    if backend == "direct" and not (sampler == "nutpie" and (marginalize or joint)):
        raise ValueError(
            "backend='direct' samples a compiled density with nutpie: it needs "
            "sampler='nutpie' and either marginalize=True (a gaussian model) or a binomial, "
            "Bernoulli or Poisson model without fixed_values"
        )
    if marginalize:
        return SamplingRoute.GAUSSIAN_NATIVE if direct else SamplingRoute.MARGINAL_GRAPH
    return SamplingRoute.JOINT_NATIVE if joint else SamplingRoute.FULL_GRAPH
