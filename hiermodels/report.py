"""Self-contained HTML reports of a shrinkage analysis.

:func:`mixed_model_report` writes the story of an
:class:`~hiermodels.analysis.Analysis` — the marginal MLE, empirical Bayes
and full Bayes of one mixed model, side by side — and
:func:`baseball_report` the Efron–Morris compound-sampling demo, each as an
:class:`~hiermodels.html_report.HtmlReport`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hiermodels._lazy import moved_names
from hiermodels.html_report import HtmlReport, figure_png
from hiermodels.intervals import check_ci_prob, either_keyword
from hiermodels.names import DEFAULT_CI_PROB

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from hiermodels.analysis import Analysis
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
        "How far each group moved from its own estimate towards the population "
        "(0: not at all, 1: all the way), against its number of observations.",
    )
    if analysis.comparison is not None and analysis.bayes is not None:
        yield (
            "hyperparameters",
            lambda: plots.plot_hyperparameters(
                analysis.comparison, analysis.bayes.idata, profiles=analysis.profiles
            ),
            "Posterior of every standard deviation and correlation (orange) with the marginal "
            "MLE that empirical Bayes plugs in (red)"
            + ("; the dash-dotted curve is the profile likelihood." if analysis.profiles else "."),
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
        {"coefficient": list(mle.fixef.index), "MLE": mle.fixef.values, "SE": mle.fixef_se.values}
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


def mixed_model_report(analysis: Analysis, title: str | None = None) -> HtmlReport:
    """The HTML report of a mixed-model analysis.

    Parameters
    ----------
    analysis : Analysis
        The fits.
    title : str, optional
        Page title (default: from the analysis name).

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
    _explain(report, analysis)
    if analysis.mle is not None:
        _mle_section(report, analysis, analysis.mle)
    table = analysis.shrinkage_table
    if table is not None:
        report.heading("Shrinkage, group by group")
        digest = shrinkage_digest(table)
        report.table(digest, "Medians over the groups of each term (table shrinkage.csv has all).")
        report.paragraph(_digest_sentence(digest))
    figures = {name: (make, caption) for name, make, caption in analysis_figures(analysis)}
    hyper_figure = figures.pop("hyperparameters", None)
    for name, (make, caption) in figures.items():
        report.figure(name, figure_png(make()), caption)
    if analysis.comparison is not None:
        hyper = analysis.comparison.hyperparameters
        report.heading("Hyperparameters: one plug-in value or a whole posterior")
        report.table(
            hyper,
            f"Marginal MLE beside the full-Bayes posterior ({analysis.ci_prob:.0%} HDI).",
        )
        report.paragraph(_hyper_sentence(hyper, analysis.ci_prob))
        if hyper_figure is not None:
            report.figure("hyperparameters", figure_png(hyper_figure[0]()), hyper_figure[1])
    _record_section(report, analysis)
    return report


def _mle_section(report: HtmlReport, analysis: Analysis, mle: MixedFit) -> None:
    report.heading("Marginal maximum likelihood (as lme4)")
    summary = mle.summary()
    groups = ", ".join(f"{n} levels of {g}" for g, n in mle.ngroups.items())
    report.paragraph(f"{summary.title}; {mle.nobs} observations, {groups}.")
    report.table(_fixed_table(analysis, mle), "Fixed effects: MLE and full-Bayes posterior.")
    report.table(summary.random, "Variance components at the MLE.")
    if analysis.eb is not None and analysis.eb.boundary:
        report.paragraph(
            f"Boundary fit: {', '.join(analysis.eb.boundary)} estimated as 0. Empirical Bayes "
            "then pools those effects completely and reports zero uncertainty; full Bayes does "
            "not.",
            css="note",
        )


def _digest_sentence(digest: pd.DataFrame) -> str:
    parts = []
    for row in digest.to_dict("records"):
        text = (
            f"{row['term']} | {row['grouping factor']}: the median group moves "
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


def _hyper_sentence(hyper: pd.DataFrame, ci_prob: float) -> str:
    far = hyper.loc[(hyper["mle_quantile"] - 0.5).abs().idxmax()]
    return (
        "Empirical Bayes treats each MLE as known. The posterior shows how uncertain it is: "
        f"{far['parameter']} has MLE {far['mle']:.3g} but a {ci_prob:.0%} interval from "
        f"{far['hdi_low']:.3g} to {far['hdi_high']:.3g}, and the MLE sits at posterior "
        f"quantile {far['mle_quantile']:.2f}. SD estimates at or near zero are where plug-in "
        "intervals are too narrow."
    )


def _sampling_problem(analysis: Analysis) -> str | None:
    """The full-Bayes sampler's problem with its advice (the SamplingWarning text), if any."""
    if analysis.bayes is None:
        return None
    return analysis.bayes.diagnostics(warn=False).problem


def _record_section(report: HtmlReport, analysis: Analysis) -> None:
    report.heading("How this was computed")
    settings = [f"{k}: {v}" for k, v in analysis.settings.items()]
    if analysis.bayes is not None:
        diag = analysis.bayes.diagnostics(warn=False)
        if diag.ok:
            verdict = ""
        elif diag.problem is not None:
            verdict = " — the draws fail these checks: see the sampler problem above"
        else:
            # slow mixing within the noise of short runs: fine to read, not to publish
            verdict = (
                f" — short of the thresholds recommended for final results (r_hat <= 1.01, "
                f"bulk ESS >= {diag.ess_min:.0f}): raise draws and tune before relying on "
                "the tails"
            )
        settings.append(
            f"sampler diagnostics: {diag.divergences} divergences, max r_hat "
            f"{diag.max_r_hat:.3f}, min bulk ESS {diag.min_ess_bulk:.0f}" + verdict
        )
        if analysis.bayes.integrate == "laplace":
            settings.append(
                "full Bayes is approximate: the group effects were integrated out by the "
                "Laplace approximation (integrate='laplace') and drawn from the Gaussian "
                "approximation at their conditional mode"
            )
    report.items(settings)
    if analysis.timings:
        times = pd.DataFrame(
            {"step": list(analysis.timings), "seconds": list(analysis.timings.values())}
        )
        report.table(times, "Wall time of each step.", digits=3)


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
    report.figure(
        "efron_morris",
        figure_png(plots.plot_efron_morris(extra=extra)),
        "Top: raw averages. Middle: shrunk estimates, pulled towards the grand mean (dashed). "
        "Bottom: what each player hit for the rest of the season. Lines join each player.",
    )
    caterpillar = plots.plot_caterpillar(groups, ci_prob=ci_prob)
    caterpillar.axes[0].set_xlabel(groups["term"].iloc[0])
    caterpillar.axes[0].set_title("")
    report.figure(
        "caterpillar",
        figure_png(caterpillar),
        f"{ci_prob:.0%} intervals per player: plug-in EB (dark blue), Morris's EB intervals "
        "that account for estimating the prior (light blue), full Bayes (orange).",
    )
    if simulations:
        sims = plots.plot_risk_curves(simulations)
        report.figure(
            "risk_curves",
            figure_png(sims),
            "Simulated risk (expected total squared error, relative to the raw estimates) "
            f"of k = {simulations[0].k} units with this sampling SD, as the true spread τ of "
            "abilities varies. Shrinkage never loses to the raw estimates, and gains most when "
            "the units are alike (small τ).",
        )
    report.table(estimates, "Per-player estimates.", index=True)
    if settings or timings:
        report.heading("How this was computed")
        report.items([f"{k}: {v}" for k, v in (settings or {}).items()])
        if timings:
            report.table(
                pd.DataFrame({"step": list(timings), "seconds": list(timings.values())}),
                "Wall time of each step.",
                digits=3,
            )
    return report
