"""Self-contained HTML reports of a shrinkage analysis.

:func:`mixed_model_report` writes the story of an
:class:`~hiermodels.analysis.Analysis` — the marginal MLE, empirical Bayes
and full Bayes of one mixed model, side by side — and
:func:`baseball_report` the Efron–Morris compound-sampling demo, each as an
:class:`~hiermodels.html_report.HtmlReport`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hiermodels._lazy import moved_names
from hiermodels.html_report import HtmlReport, figure_png, format_number
from hiermodels.intervals import check_ci_prob, either_keyword
from hiermodels.names import (
    DEFAULT_CI_PROB,
    coefficient_label,
    correlation_label,
    correlation_name,
    display_label,
    group_term_label,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hiermodels.analysis import Analysis
    from hiermodels.bayes.priors import Prior
    from hiermodels.eb.fit import EBFit
    from hiermodels.mle.results import MixedFit

__all__ = [
    "analysis_figures",
    "baseball_report",
    "compound_as_groups",
    "mixed_model_report",
    "shrinkage_digest",
]

#: Names that moved out of this module -> (module, name) they live in now.
_MOVED: dict[str, tuple[str, str]] = {"Analysis": ("hiermodels.analysis", "Analysis")}


__getattr__ = moved_names(__name__, _MOVED)


# --------------------------------------------------------------- analysis


FigureMaker = Callable[[], "Figure"]


def analysis_figures(analysis: Analysis) -> Iterator[tuple[str, FigureMaker, str]]:
    """The pictures of an analysis: ``(name, make_figure, caption)``, lazily.

    Only the pictures the fits support are listed: the 2-D picture needs a
    grouping factor with two terms, the hyperparameter picture full Bayes.
    """
    from hiermodels import plots

    table = analysis.shrinkage_table
    if table is None:
        return
    source: Any = analysis.comparison if analysis.comparison is not None else table
    factors = list(dict.fromkeys(table["grpvar"]))
    first = factors[0]
    yield (
        "shrinkage",
        lambda: plots.plot_shrinkage(source, first),
        f"Each row is one level of {first}: the open circle is its own estimate (no pooling), "
        "the arrows show where empirical Bayes (blue, above) and full Bayes (orange, below) "
        "move it; the dashed line is complete pooling.",
    )
    two_terms = [g for g in factors if table.loc[table["grpvar"] == g, "term"].nunique() >= 2]
    if two_terms:
        yield (
            "shrinkage_2d",
            lambda: plots.plot_shrinkage_2d(source, two_terms[0]),
            "Both coefficients of every group at once. The ellipses hold 50% and 95% of the "
            "fitted population of group coefficients; estimates are pulled towards its centre, "
            "less along its long axis than across it.",
        )
    yield (
        "caterpillar",
        lambda: plots.plot_caterpillar(source, first),
        "Intervals of every group, sorted: plain empirical Bayes (dark blue), empirical Bayes "
        "corrected for the uncertainty of the plugged-in hyperparameters (light blue), and "
        "full Bayes (orange).",
    )
    yield (
        "shrinkage_factor",
        lambda: plots.plot_shrinkage_factor(source),
        "How far each group moved from its own estimate towards the population value "
        "(0: not at all, 1: all the way), against its number of observations. "
        + _outside_sentence(table, plots.out_of_range_factors(table)),
    )
    if analysis.comparison is not None and analysis.bayes is not None:
        yield (
            "hyperparameters",
            lambda: plots.plot_hyperparameters(
                analysis.comparison, analysis.bayes.idata, profiles=analysis.profiles
            ),
            "Posterior of every standard deviation and correlation (orange histogram, the "
            f"shaded band its {analysis.ci_prob:.0%} HDI) with the marginal MLE that empirical "
            "Bayes plugs in (red line); under each panel, the share of posterior draws below "
            "the MLE (its posterior quantile)"
            + (
                "; the dash-dotted curve is the relative profile likelihood, right axis "
                "(correlations are not profiled)."
                if analysis.profiles
                else "."
            ),
        )


# Groups named one by one in the shrinkage-factor caption, per side of [0, 1].
_MAX_NAMED = 8


def _outside_sentence(table: pd.DataFrame, outside: pd.DataFrame) -> str:
    """What the shrinkage factors outside [0, 1] mean, naming their groups; "" if none."""
    if outside.empty:
        return ""
    estimate_names = {"eb": "EB", "bayes": "full Bayes"}
    sides = []
    for above, words in ((True, "above 1 the estimate crossed the population value"),
                         (False, "below 0 it moved away from it")):  # fmt: skip
        rows = outside[(outside["factor"] > 1) == above]
        if rows.empty:
            continue
        named = []
        for (group, term), by_term in rows.groupby(["grpvar", "term"], sort=False):
            levels = []
            for level, frame in by_term.groupby("grp", sort=False):
                values = ", ".join(
                    f"{estimate_names[r.estimate]} {r.factor:.2f}" for r in frame.itertuples()
                )
                levels.append(f"{level} ({values})")
            more = f" and {len(levels) - _MAX_NAMED} more" if len(levels) > _MAX_NAMED else ""
            named.append(f"{term}: {group} {', '.join(levels[:_MAX_NAMED])}{more}")
        sides.append(f"{words} — {'; '.join(named)}")
    joint = [
        g
        for g in dict.fromkeys(outside["grpvar"])
        if table.loc[table["grpvar"] == g, "term"].nunique() > 1
    ]
    if joint:
        terms = ", ".join(dict.fromkeys(table.loc[table["grpvar"] == joint[0], "term"]))
        why = (
            f"A group's terms ({terms}) are shrunk together: its own estimates of them are "
            "correlated, and the population's correlation ρ couples them too, so pulling one "
            "term towards the population can push another past the population value or away "
            "from it."
        )
    else:
        why = (
            "The own estimate holds the fixed effects at their fitted values while the pooled "
            "estimates weigh their uncertainty (and, off the Gaussian family, the link bends "
            "the scale), so the two need not lie on one line towards the population value."
        )
    return (
        "Factors outside [0, 1] are ringed in the shaded bands: "
        + "; ".join(sides)
        + ". "
        + why
        + " The factor divides by the distance from the own estimate to the population "
        "value, so it swings most where that distance is small."
    )


def _median(values: pd.Series) -> float:
    finite = values[np.isfinite(values.to_numpy(float))]
    return float(finite.median()) if len(finite) else float("nan")


def shrinkage_digest(table: pd.DataFrame) -> pd.DataFrame:
    """Medians over the groups of each grouping factor × term: shrinkage and interval widths.

    Parameters
    ----------
    table : pandas.DataFrame
        A per-group table (:attr:`ShrinkageComparison.table
        <hiermodels.shrinkage.ShrinkageComparison.table>`, or no pooling
        beside EB).

    Returns
    -------
    pandas.DataFrame
        One row per grouping factor × term.
    """
    rows = []
    for (group, term), frame in table.groupby(["grpvar", "term"], sort=False):
        row: dict[str, Any] = {
            "grouping factor": group,
            "term": term,
            "groups": len(frame),
            "median EB shrinkage": _median(frame["eb_shrinkage"]),
        }
        eb_width = frame["eb_high"] - frame["eb_low"]
        corrected = frame["eb_high_corrected"] - frame["eb_low_corrected"]
        with np.errstate(divide="ignore", invalid="ignore"):
            row["corrected / plain EB width"] = _median(corrected / eb_width)
            if "eb_low_bootstrap" in frame:
                bootstrap = frame["eb_high_bootstrap"] - frame["eb_low_bootstrap"]
                row["bootstrap / plain EB width"] = _median(bootstrap / eb_width)
        if "bayes_shrinkage" in frame:
            row["median full-Bayes shrinkage"] = _median(frame["bayes_shrinkage"])
            row["full-Bayes / plain EB width"] = _median(frame["width_ratio"])
        rows.append(row)
    return pd.DataFrame(rows)


def _fixed_table(analysis: Analysis, mle: MixedFit) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "coefficient": [coefficient_label(c) for c in mle.fixef.index],
            "MLE": mle.fixef.values,
            "SE": mle.fixef_se.values,
        }
    )
    if analysis.bayes is not None:
        post = analysis.bayes.fixef_summary(ci_prob=analysis.ci_prob)
        frame["posterior mean"] = post["estimate"].to_numpy()
        frame["posterior sd"] = post["se"].to_numpy()
        frame["HDI low"] = post["lower"].to_numpy()
        frame["HDI high"] = post["upper"].to_numpy()
    return frame


def _explain(report: HtmlReport, analysis: Analysis) -> None:
    report.heading("What you are looking at")
    report.items(
        [
            "No pooling: each group estimated from its own data alone — noisy for small groups.",
            "Complete pooling: one value for everybody — ignores real differences.",
            "Empirical Bayes (EB): estimate how much groups differ (the hyperparameters) by "
            "maximum likelihood, plug those estimates in, and shrink each group towards the "
            "population by the amount they imply. lme4's conditional modes (BLUPs) are this, "
            "with the fixed effects plugged in too.",
            "Full Bayes: average over every plausible value of the hyperparameters instead of "
            "plugging in one. Shrinkage is similar; intervals are wider where the "
            "hyperparameters are uncertain (few groups, or an SD near zero).",
        ]
    )


#: Anchor of the report's link to the interactive explorer page.
EXPLORER_ANCHOR = "explorer"


def _explorer_link(report: HtmlReport, explorer_link: str | None) -> None:
    if explorer_link is not None:
        report.link(
            "Move the shrinkage yourself",
            explorer_link,
            after=(
                ": an interactive page (offline, one file) where a slider moves every "
                "group between no pooling and complete pooling."
            ),
            anchor=EXPLORER_ANCHOR,
        )


def mixed_model_report(
    analysis: Analysis, title: str | None = None, *, explorer_link: str | None = None
) -> HtmlReport:
    """The HTML report of a mixed-model analysis.

    Parameters
    ----------
    analysis : Analysis
        The fits.
    title : str, optional
        Page title (default: from the analysis name).
    explorer_link : str, optional
        Address of an interactive explorer page of the same fits (relative
        to the report, e.g. ``"explorer.html"``), linked near the top under
        the id :data:`EXPLORER_ANCHOR`; without it the report has no link.

    Returns
    -------
    HtmlReport
        Write it with :meth:`HtmlReport.write`.
    """
    report = HtmlReport(
        title or f"hiermodels: {analysis.name}",
        f"{analysis.formula}  ·  family {analysis.family}",
    )
    if analysis.description:
        report.paragraph(analysis.description)
    problem = _sampling_problem(analysis)
    if problem is not None:
        # a reader must meet this before any posterior number, not in the footnotes
        report.paragraph(f"Sampler problem: {problem}.", css="note")
    _explorer_link(report, explorer_link)
    _explain(report, analysis)
    if analysis.mle is not None:
        _mle_section(report, analysis, analysis.mle)
    drawing = _PictureClock()
    table = analysis.shrinkage_table
    if table is not None:
        report.heading("Shrinkage, group by group")
        digest = shrinkage_digest(table)
        report.table(digest, "Medians over the groups of each term (table shrinkage.csv has all).")
        report.paragraph(_digest_sentence(digest))
    figures = {name: (make, caption) for name, make, caption in analysis_figures(analysis)}
    hyper_figure = figures.pop("hyperparameters", None)
    for name, (make, caption) in figures.items():
        report.figure(name, drawing.png(make), caption)
    if analysis.comparison is not None:
        hyper = analysis.comparison.hyperparameters
        report.heading("Hyperparameters: one plug-in value or a whole posterior")
        report.table(
            _hyper_table(hyper, analysis.ci_prob),
            f"Marginal MLE beside the full-Bayes posterior ({analysis.ci_prob:.0%} HDI).",
        )
        report.paragraph(_hyper_sentence(hyper, analysis.ci_prob))
        if hyper_figure is not None:
            report.figure("hyperparameters", drawing.png(hyper_figure[0]), hyper_figure[1])
    if analysis.bayes is not None:
        _priors_section(report, analysis.bayes)
    _record_section(report, analysis, drawing.timings)
    return report


class _PictureClock:
    """Draws figures to PNG and keeps the time it took, as a step of the timing table."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def png(self, make: FigureMaker) -> bytes:
        start = time.perf_counter()
        data = figure_png(make())
        self.timings[PICTURES_STEP] = self.timings.get(PICTURES_STEP, 0.0) + (
            time.perf_counter() - start
        )
        return data


def _mle_section(report: HtmlReport, analysis: Analysis, mle: MixedFit) -> None:
    report.heading("Marginal maximum likelihood (as lme4)")
    summary = mle.summary()
    groups = ", ".join(f"{n} levels of {g}" for g, n in mle.ngroups.items())
    report.paragraph(f"{summary.title}; {mle.nobs} observations, {groups}.")
    report.table(_fixed_table(analysis, mle), "Fixed effects: MLE and full-Bayes posterior.")
    report.table(summary.random, "Variance components at the MLE.")
    if analysis.eb is not None and analysis.eb.boundary:
        boundary = ", ".join(display_label(name) for name in analysis.eb.boundary)
        report.paragraph(
            f"Boundary fit: {boundary} estimated as 0. Empirical Bayes "
            "then pools those effects completely and reports zero uncertainty; full Bayes does "
            "not.",
            css="note",
        )


def _digest_sentence(digest: pd.DataFrame) -> str:
    parts = []
    for row in digest.to_dict("records"):
        text = (
            f"{group_term_label(row['grouping factor'], row['term'])} — the median group moves "
            f"{row['median EB shrinkage']:.0%} of the way to the population under EB"
        )
        if "median full-Bayes shrinkage" in row:
            text += (
                f" and {row['median full-Bayes shrinkage']:.0%} under full Bayes; full-Bayes "
                f"intervals are {row['full-Bayes / plain EB width']:.2f}× as wide as plain EB ones"
            )
        text += f" (the corrected EB intervals {row['corrected / plain EB width']:.2f}×"
        if "bootstrap / plain EB width" in row:
            text += f", the Laird–Louis bootstrap ones {row['bootstrap / plain EB width']:.2f}×"
        text += ")."
        parts.append(text)
    return " ".join(parts)


def _hyper_table(hyper: pd.DataFrame, ci_prob: float) -> pd.DataFrame:
    """The comparison's hyperparameter table with the labels and headings a reader reads."""
    return pd.DataFrame(
        {
            "parameter": [display_label(p) for p in hyper["parameter"]],
            "marginal MLE (EB plug-in)": hyper["mle"].to_numpy(),
            "posterior mean": hyper["mean"].to_numpy(),
            "posterior median": hyper["median"].to_numpy(),
            f"{ci_prob:.0%} HDI low": hyper["hdi_low"].to_numpy(),
            "HDI high": hyper["hdi_high"].to_numpy(),
            "share of posterior below the MLE": hyper["mle_quantile"].to_numpy(),
        }
    )


def _hyper_sentence(hyper: pd.DataFrame, ci_prob: float) -> str:
    far = hyper.loc[(hyper["mle_quantile"] - 0.5).abs().idxmax()]
    return (
        "Empirical Bayes treats each MLE as known. The posterior shows how uncertain it is: "
        f"{display_label(far['parameter'])} has MLE {far['mle']:.3g} but a {ci_prob:.0%} "
        f"interval from {far['hdi_low']:.3g} to {far['hdi_high']:.3g}, and the MLE sits at "
        f"posterior quantile {far['mle_quantile']:.2f}. SD estimates at or near zero are where "
        "plug-in intervals are too narrow."
    )


# How a prior's parameters read, by PyMC's keyword.
_PRIOR_SYMBOLS = {
    "mu": "μ",
    "sigma": "σ",
    "nu": "ν",
    "eta": "η",
    "alpha": "α",
    "beta": "β",
    "lam": "λ",
    "tau": "τ",
}


def prior_text(prior: Prior) -> str:
    """A prior as a reader reads it: ``HalfStudentT(ν = 3, σ = 56.17)``.

    Parameters
    ----------
    prior : Prior
        A distribution of :mod:`hiermodels.bayes.priors`.

    Returns
    -------
    str
        The PyMC distribution's name with its parameters, Greek where PyMC's
        keyword is a Greek letter's name.
    """
    args = ", ".join(
        f"{_PRIOR_SYMBOLS.get(key, key)} = {format_number(value)}"
        for key, value in prior.params.items()
    )
    return f"{prior.dist}({args})"


def _prior_parameter(bayes: Any, key: str) -> str:
    """The label of a prior's key; an LKJ prior names the correlations it covers."""
    if not key.startswith("corr_"):
        return display_label(key)
    for layout in bayes.design.factors:
        if correlation_name(layout.group) != key:
            continue
        pairs = [
            display_label(correlation_label(layout.group, layout.terms[i], layout.terms[j]))
            for a, b in layout.correlated_spans
            for i in range(a, b)
            for j in range(i + 1, b)
        ]
        return "; ".join(pairs) if len(pairs) <= 3 else f"{display_label(key)} (every pair)"
    return display_label(key)


def _priors_section(report: HtmlReport, bayes: Any) -> None:
    from hiermodels.bayes.priors import default_priors

    defaults = default_priors(bayes.design)
    frame = pd.DataFrame(
        {
            "parameter": [_prior_parameter(bayes, key) for key in bayes.priors],
            "prior": [prior_text(prior) for prior in bayes.priors.values()],
            "chosen by": [
                "default, scaled to the data" if defaults.get(key) == prior else "the user"
                for key, prior in bayes.priors.items()
            ],
        }
    )
    report.heading("Priors of the full-Bayes fit")
    report.table(frame, "The prior of every parameter, as the sampler used it.")
    report.paragraph(
        "The defaults are weakly informative, their widths scaled to the data's (the rule is "
        "in the documentation of hiermodels.bayes.priors). Empirical Bayes puts no prior on "
        "the SDs and correlations: it plugs in their marginal MLE."
    )


def _sampling_problem(analysis: Analysis) -> str | None:
    """The full-Bayes sampler's problem with its advice (the SamplingWarning text), if any."""
    if analysis.bayes is None:
        return None
    return analysis.bayes.diagnostics(warn=False).problem


# What each marginal-likelihood method does, by MixedFit.method.
_MLE_METHODS = {
    "REML": "restricted maximum likelihood (REML), as lme4's lmer: β and the residual σ are "
    "profiled out and the likelihood of what the fixed effects leave is maximised over the "
    "variance parameters alone, so the SDs are not biased low by the fitted fixed effects",
    "ML": "maximum likelihood, as lme4's lmer(REML = FALSE): the likelihood, profiled over β "
    "and the residual σ, is maximised over the variance parameters",
    "Laplace": "maximum likelihood with the group effects integrated out of the likelihood by "
    "the Laplace approximation, as lme4's glmer",
    "AGQ": "maximum likelihood with the group effects integrated out of the likelihood by "
    "adaptive Gauss–Hermite quadrature, as lme4's glmer with nAGQ > 1",
    "Laplace (nAGQ=0)": "maximum likelihood by the Laplace approximation with β estimated "
    "inside the penalised fit, as lme4's glmer with nAGQ = 0",
}

# What each way of computing EB's conditionals does, by EBFit.eb_method.
_EB_METHODS = {
    "analytic": "The conditional distribution of the group effects is Gaussian and computed "
    "exactly; its mean is lme4's conditional mode (BLUP).",
    "quadrature": "Each group's conditional distribution is computed exactly by adaptive "
    "Gauss–Hermite quadrature, not approximated by the Laplace Gaussian.",
    "mcmc": "The conditional distribution is sampled by NUTS on the model with the plugged-in "
    "values held constant.",
}

# How NUTS met the group effects, by the SamplingRoute's value.
_ROUTES = {
    "full_graph": "the group effects are parameters, sampled jointly with the rest",
    "marginal_graph": "the group effects are integrated out exactly (a Gaussian model), so "
    "NUTS explores β, the SDs and correlations only; each draw's group effects are then drawn "
    "from their exact Gaussian conditional",
    "gaussian_native": "the group effects are integrated out exactly (a Gaussian model), so "
    "NUTS explores β, the SDs and correlations only; each draw's group effects are then drawn "
    "from their exact Gaussian conditional",
    "joint_native": "the group effects are parameters, sampled jointly with the rest",
    "laplace_native": "the group effects are integrated out by the Laplace approximation (an "
    "approximate posterior) and drawn from the Gaussian at their conditional mode",
}


def _eb_note(eb: EBFit, ci_prob: float) -> str:
    factors = eb.design.factors
    n_sd = sum(len(layout.terms) for layout in factors)
    held = ["every SD" if n_sd > 1 else "the SD of the group effects"]
    if any(layout.correlated_spans for layout in factors):
        held[0] += " and correlation"
    if eb.mle.has_residual:
        held.append("the residual σ")
    if eb.plugin == "all":
        held.append("the fixed effects β")
    listed = ", ".join(held[:-1]) + " and " + held[-1] if len(held) > 1 else held[0]
    text = (
        f"Empirical Bayes (EB): {listed} are fixed at their marginal MLE (plugged in) and each "
        f"group's effect gets its distribution given the data. {_EB_METHODS.get(eb.eb_method, '')}"
    )
    if eb.plugin != "all":
        text += (
            " β is not plugged in but integrated out under a flat prior, so its uncertainty "
            "widens each group's interval."
        )
    plain = "the HDI of the draws" if eb.idata is not None else "mean ± z × conditional SD"
    text += (
        f" Columns and intervals: plain EB ({ci_prob:.0%}, {plain}) ignores that the plugged-in "
        "values are estimates; corrected EB adds Kass & Steffey's (1989) first-order term for "
        "their uncertainty (their covariance from the curvature of the likelihood, carried "
        "through how each group's mean depends on them)."
    )
    if eb.bootstrap is not None:
        text += (
            " The Laird–Louis bootstrap interval re-fits the MLE on data simulated from the "
            "fitted model and takes the spread of the plug-in answers."
        )
    return text


def _bayes_note(bayes: Any, ci_prob: float) -> str:
    post = bayes.posterior
    route = _ROUTES.get(str(bayes.route), "")
    return (
        "Full Bayes: every parameter gets the prior listed above, and the posterior is sampled "
        f"by the No-U-Turn Sampler (NUTS, {bayes.sampler}), {post.sizes['chain']} chains × "
        f"{post.sizes['draw']} draws kept after tuning"
        + (f"; {route}" if route else "")
        + f". Posterior means and SDs, {ci_prob:.0%} highest-density intervals (HDI)."
    )


def _diagnostics_note(bayes: Any) -> str:
    diag = bayes.diagnostics(warn=False)
    if diag.ok:
        verdict = " — all within the thresholds recommended for final results"
    elif diag.problem is not None:
        verdict = " — the draws fail these checks: see the sampler problem above"
    else:
        # slow mixing within the noise of short runs: fine to read, not to publish
        verdict = (
            f" — short of the thresholds recommended for final results (r_hat <= 1.01, "
            f"bulk ESS >= {diag.ess_min:.0f}): raise draws and tune before relying on "
            "the tails"
        )
    return (
        f"Sampler diagnostics: {diag.divergences} divergences (NUTS trajectories that broke "
        f"down; there should be none), max r_hat {diag.max_r_hat:.3f} (chains agree when it "
        f"is near 1), min bulk ESS {diag.min_ess_bulk:.0f} (the draws are worth that many "
        "independent ones)" + verdict
    )


def _record_section(
    report: HtmlReport, analysis: Analysis, drawing_timings: dict[str, float]
) -> None:
    report.heading("How this was computed")
    notes: list[str] = []
    if analysis.mle is not None:
        method = analysis.mle.method
        notes.append(
            f"MLE and SE columns, variance components: {_MLE_METHODS.get(method, method)}; "
            "the SEs of β from the inverse information at the estimate."
        )
    if analysis.eb is not None:
        notes.append(_eb_note(analysis.eb, analysis.ci_prob))
    if analysis.bayes is not None:
        notes.append(_bayes_note(analysis.bayes, analysis.ci_prob))
        notes.append(_diagnostics_note(analysis.bayes))
        if analysis.bayes.integrate == "laplace":
            notes.append(
                "Full Bayes is approximate: the group effects were integrated out by the "
                "Laplace approximation (integrate='laplace') and drawn from the Gaussian "
                "approximation at their conditional mode."
            )
    if analysis.shrinkage_table is not None:
        notes.append(
            "No pooling (the open circles): each group's effect fitted from its rows alone, "
            "everything else held at the fitted values. Shrinkage factor: 1 − (pooled "
            "estimate − population value) / (own estimate − population value)."
        )
    if analysis.profiles:
        notes.append(
            "Profile likelihood of an SD: the likelihood maximised over every other "
            "parameter with that SD held at each value, relative to its maximum."
        )
    seed = analysis.settings.get("random seed")
    if seed is not None:
        notes.append(f"Random seed {seed}: the same command gives the same draws.")
    report.items(notes)
    timings = {**analysis.timings, **drawing_timings}
    if timings:
        report.table(_timing_table(timings), "Wall time of each step.", digits=3)


#: The step of the timing table that draws the report's pictures.
PICTURES_STEP = "pictures"


def _timing_table(timings: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"step": list(timings), "seconds": list(timings.values())})


# --------------------------------------------------------------- baseball


def compound_as_groups(compared: pd.DataFrame, corrected: Any, label: str) -> pd.DataFrame:
    """A compound model's comparison in the per-group layout of the mixed models.

    Parameters
    ----------
    compared : pandas.DataFrame
        From ``NormalNormal.compare`` (index ``unit``).
    corrected : EBIntervals
        Intervals that account for estimating the prior (e.g. Morris's),
        used as the corrected EB intervals.
    label : str
        Name of the quantity (the ``term``).

    Returns
    -------
    pandas.DataFrame
        Columns as :attr:`ShrinkageComparison.table`, on the data scale
        (``population_coef`` 0).
    """
    frame = compared.reset_index().rename(columns={"unit": "grp"})
    frame.insert(0, "grpvar", "unit")
    frame.insert(1, "term", label)
    frame["n_obs"] = 1
    frame["population_coef"] = 0.0
    frame["eb_low_corrected"] = np.asarray(corrected.lower)
    frame["eb_high_corrected"] = np.asarray(corrected.upper)
    return frame


def baseball_report(
    estimates: pd.DataFrame,
    groups: pd.DataFrame,
    simulations: list[Any],
    *,
    description: str = "",
    settings: dict[str, Any] | None = None,
    timings: dict[str, float] | None = None,
    ci_prob: float = DEFAULT_CI_PROB,
    level: float | None = None,
    explorer_link: str | None = None,
) -> HtmlReport:
    """The Efron–Morris demo: raw averages, James–Stein, EB, full Bayes and the truth.

    Parameters
    ----------
    estimates : pandas.DataFrame
        Index ``Player``; columns ``raw, james_stein, eb, full_bayes, truth``.
    groups : pandas.DataFrame
        Per-player comparison in the mixed-model layout (:func:`compound_as_groups`).
    simulations : list of CompoundSimulation
        Risk simulations at several prior SDs.
    description : str
        About the data.
    settings, timings : dict, optional
        For the record.
    ci_prob : float
        Probability of the intervals in ``groups``.
    level : float, optional
        Deprecated spelling of ``ci_prob``.
    explorer_link : str, optional
        Address of the baseball explorer page (relative to the report),
        linked near the top under the id :data:`EXPLORER_ANCHOR`.

    Returns
    -------
    HtmlReport
    """
    from hiermodels import plots

    ci_prob = check_ci_prob(
        either_keyword(ci_prob, level, new="ci_prob", old="level", default=DEFAULT_CI_PROB)
    )
    report = HtmlReport(
        "hiermodels: Efron & Morris's 1970 batting averages",
        "normal–normal compound model, James–Stein, empirical and full Bayes",
    )
    if description:
        report.paragraph(description)
    _explorer_link(report, explorer_link)
    report.paragraph(
        "Each player's average over his first 45 at-bats is a noisy estimate of his ability. "
        "Shrinking all 18 averages towards their grand mean — by the James–Stein rule, by "
        "empirical Bayes, or by full Bayes — predicts the rest of the season better for the "
        "group as a whole, although not for every player."
    )
    truth = estimates["truth"]
    tse = {
        name: float(np.sum((estimates[col] - truth) ** 2))
        for name, col in (
            ("first 45 at-bats", "raw"),
            ("James–Stein", "james_stein"),
            ("empirical Bayes (ML)", "eb"),
            ("full Bayes", "full_bayes"),
        )
    }
    report.table(
        pd.DataFrame(
            {"estimate": list(tse), "total squared error vs rest of season": list(tse.values())}
        ),
        "Total squared error of each estimate against the rest-of-season averages.",
    )
    ratio = tse["first 45 at-bats"] / tse["James–Stein"]
    report.paragraph(f"James–Stein cuts the total squared error by a factor of {ratio:.1f}.")
    extra = {"full Bayes": estimates["full_bayes"]}
    drawing = _PictureClock()
    report.figure(
        "efron_morris",
        drawing.png(lambda: plots.plot_efron_morris(extra=extra)),
        "Top: raw averages. Middle: shrunk estimates, pulled towards the grand mean (dashed). "
        "Bottom: what each player hit for the rest of the season. Lines join each player.",
    )

    def caterpillar() -> Figure:
        figure = plots.plot_caterpillar(groups, ci_prob=ci_prob)
        figure.axes[0].set_xlabel(groups["term"].iloc[0])
        figure.axes[0].set_title("")
        return figure

    report.figure(
        "caterpillar",
        drawing.png(caterpillar),
        f"{ci_prob:.0%} intervals per player: plug-in EB (dark blue), Morris's EB intervals "
        "that account for estimating the prior (light blue), full Bayes (orange).",
    )
    if simulations:
        report.figure(
            "risk_curves",
            drawing.png(lambda: plots.plot_risk_curves(simulations)),
            "Simulated risk (expected total squared error, relative to the raw estimates) "
            f"of k = {simulations[0].k} units with this sampling SD, as the true spread τ of "
            "abilities varies. Shrinkage never loses to the raw estimates, and gains most when "
            "the units are alike (small τ).",
        )
    report.table(estimates, "Per-player estimates.", index=True)
    report.heading("How this was computed")
    if settings:
        report.items([f"{k}: {v}" for k, v in settings.items()])
    report.table(
        _timing_table({**(timings or {}), **drawing.timings}), "Wall time of each step.", digits=3
    )
    return report
