"""One model fitted every way asked, side by side: the whole-pipeline driver.

:func:`run_analysis` fits a :class:`~hiermodels.model.Model` by marginal
maximum likelihood, empirical Bayes and/or full Bayes, step by step, and
collects the fits and their comparison in an :class:`Analysis`. The
``hiermodels`` command prints and writes one (:mod:`hiermodels.cli`);
:func:`hiermodels.report.mixed_model_report` renders one as HTML.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from hiermodels.names import DEFAULT_CI_PROB

if TYPE_CHECKING:
    import pandas as pd

    from hiermodels.eb.fit import EBFit
    from hiermodels.mle.results import MixedFit
    from hiermodels.model import Model
    from hiermodels.shrinkage import ShrinkageComparison

__all__ = ["ANALYSIS_METHODS", "Analysis", "StepRunner", "TimedSteps", "run_analysis"]

#: What :func:`run_analysis` can fit: one marginal-likelihood method, EB, full Bayes, or all.
ANALYSIS_METHODS = ("reml", "ml", "laplace", "eb", "bayes", "all")


@dataclass(frozen=True, eq=False)
class Analysis:
    """The fits of one model, ready to be printed, written and reported.

    Attributes
    ----------
    name : str
        Dataset or file name.
    formula, family : str
        The model.
    description : str
        A sentence or two about the data.
    mle : MixedFit or None
        Marginal maximum-likelihood fit.
    eb : EBFit or None
        Empirical-Bayes fit.
    bayes : BayesFit or None
        Full-Bayes fit.
    comparison : ShrinkageComparison or None
        EB beside full Bayes.
    eb_table : pandas.DataFrame or None
        No pooling beside EB (when there is no full-Bayes fit).
    profiles : dict of str to pandas.DataFrame
        Profile deviances of the SDs (linear mixed models).
    settings : dict
        Sampler and EB settings, for the record.
    timings : dict of str to float
        Seconds per step.
    ci_prob : float
        Probability of every interval in the tables and pictures.
    """

    name: str
    formula: str
    family: str
    description: str = ""
    mle: MixedFit | None = None
    eb: EBFit | None = None
    bayes: Any = None
    comparison: ShrinkageComparison | None = None
    eb_table: pd.DataFrame | None = None
    profiles: dict[str, pd.DataFrame] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    ci_prob: float = DEFAULT_CI_PROB

    @property
    def shrinkage_table(self) -> pd.DataFrame | None:
        """The per-group table: the comparison's, or no pooling beside EB."""
        return self.comparison.table if self.comparison is not None else self.eb_table


class StepRunner(Protocol):
    """Runs the named steps of an analysis and keeps their wall times.

    ``spinner`` is ``False`` for a step that shows its own progress (a
    sampler's progress bar), so a runner that animates the others leaves
    it alone.
    """

    timings: dict[str, float]

    def step(self, name: str, *, spinner: bool = True) -> AbstractContextManager[None]:
        """Run the enclosed block as step ``name``."""
        ...


@dataclass
class TimedSteps:
    """A :class:`StepRunner` that times each step and shows nothing."""

    timings: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str, *, spinner: bool = True) -> Iterator[None]:
        """Time the enclosed block as step ``name``."""
        start = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - start


def _eb_options(model: Model) -> dict[str, str]:
    """Analytic EB for Gaussian models, exact quadrature for one scalar GLMM term, else MCMC."""
    if model.family.is_gaussian:
        return {"eb_method": "analytic", "plugin": "hyper"}
    blocks = model.design.blocks
    if len(blocks) == 1 and len(blocks[0].terms) == 1:
        return {"eb_method": "quadrature", "plugin": "all"}
    return {"eb_method": "mcmc", "plugin": "hyper"}


def run_analysis(
    model: Model,
    *,
    name: str,
    method: str = "all",
    draws: int = 1000,
    chains: int = 4,
    seed: int | None = None,
    steps: StepRunner | None = None,
    description: str = "",
    target_accept: float = 0.8,
    ci_prob: float = DEFAULT_CI_PROB,
    progressbar: bool = False,
) -> Analysis:
    """Fit ``model`` as ``method`` asks, step by step, and collect an :class:`Analysis`.

    Parameters
    ----------
    model : Model
        The mixed model.
    name : str
        Dataset or file name, for the record.
    method : {"reml", "ml", "laplace", "eb", "bayes", "all"}
        One marginal-likelihood fit (``"reml"``, ``"ml"``, ``"laplace"``);
        that fit and empirical Bayes (``"eb"``); full Bayes alone
        (``"bayes"``); or all of them with their comparison (``"all"``).
        The marginal likelihood of ``"eb"`` and ``"all"`` is the family's
        default (:func:`~hiermodels.mle.fit.mle_method`).
    draws, chains, seed, target_accept
        Sampler settings of full Bayes and MCMC empirical Bayes (``draws``
        tuning steps too).
    steps : StepRunner, optional
        Runs and times the steps (default :class:`TimedSteps`).
    description : str
        A sentence or two about the data.
    ci_prob : float
        Probability of every interval.
    progressbar : bool
        Show the samplers' progress bars.

    Returns
    -------
    Analysis

    Raises
    ------
    ValueError
        For an unknown ``method``, one that does not apply to the model's
        family, or a ``ci_prob`` outside (0, 1).
    """
    from hiermodels.intervals import check_ci_prob
    from hiermodels.mle.fit import mle_method
    from hiermodels.no_pooling import no_pooling_estimates
    from hiermodels.plots import profile_frames
    from hiermodels.shrinkage import compare_shrinkage

    if method not in ANALYSIS_METHODS:
        raise ValueError(
            f"method must be one of {', '.join(map(repr, ANALYSIS_METHODS))}; got {method!r}"
        )
    ci_prob = check_ci_prob(ci_prob)
    steps = TimedSteps() if steps is None else steps
    gaussian = model.family.is_gaussian
    marginal = mle_method(model.family, method if method in ("reml", "ml", "laplace") else None)
    settings: dict[str, Any] = {"marginal likelihood": marginal}
    mle: MixedFit | None = None
    eb: EBFit | None = None
    bayes: Any = None
    comparison: ShrinkageComparison | None = None
    eb_table: pd.DataFrame | None = None
    profiles: dict[str, pd.DataFrame] = {}
    if method != "bayes":
        with steps.step(f"{marginal} fit"):
            mle = model.fit_mle(method=marginal)
    if mle is not None and method in ("eb", "all"):
        options = _eb_options(model)
        eb_method, plugin = options["eb_method"], options["plugin"]
        settings["empirical Bayes"] = f"{eb_method}, plug-in of {plugin}"
        mcmc = eb_method == "mcmc"
        with steps.step("empirical Bayes", spinner=not mcmc):
            if mcmc:
                eb = model.fit_eb(
                    mle=mle,
                    eb_method=eb_method,
                    plugin=plugin,
                    draws=draws,
                    tune=draws,
                    chains=chains,
                    random_seed=seed,
                    target_accept=target_accept,
                    progressbar=progressbar,
                )
            else:
                eb = model.fit_eb(mle=mle, eb_method=eb_method, plugin=plugin)
    if method in ("bayes", "all"):
        settings["full Bayes"] = f"nutpie NUTS, {chains} chains × {draws} draws ({draws} tuning)"
        with steps.step("full Bayes: compile and sample", spinner=False):
            bayes = model.fit_bayes(
                draws=draws,
                tune=draws,
                chains=chains,
                random_seed=seed,
                target_accept=target_accept,
                progressbar=progressbar,
            )
    if mle is not None and eb is not None and bayes is not None:
        label = "compare EB and full Bayes" + (", profile the SDs" if gaussian else "")
        with steps.step(label):
            comparison = compare_shrinkage(eb, bayes, ci_prob)
            if gaussian:
                profiles = profile_frames(mle, comparison.hyperparameters["parameter"])
    elif mle is not None and eb is not None:
        eb_table = _eb_only_table(no_pooling_estimates(mle), eb, ci_prob)
    settings["random seed"] = seed
    return Analysis(
        name=name,
        formula=model.spec.formula,
        family=f"{model.family.name} ({model.family.link})",
        description=description,
        mle=mle,
        eb=eb,
        bayes=bayes,
        comparison=comparison,
        eb_table=eb_table,
        profiles=profiles,
        settings=settings,
        timings=steps.timings,
        ci_prob=ci_prob,
    )


def _eb_only_table(nopool: pd.DataFrame, eb: EBFit, ci_prob: float) -> pd.DataFrame:
    """No pooling beside EB, in the comparison's column names."""
    from hiermodels.shrinkage import eb_summary

    summary = eb_summary(eb, ci_prob)
    table = nopool.merge(summary, on=["grpvar", "term", "grp"], validate="one_to_one")
    table["complete_pooling"] = 0.0
    distance = table["no_pooling"] - table["complete_pooling"]
    table["eb_shrinkage"] = 1.0 - table["eb_mean"] / distance.where(distance != 0)
    return table
