"""Caterpillar plots: every group's EB intervals (plain, corrected, bootstrap) and full Bayes.

Takes a :class:`~hiermodels.shrinkage.ShrinkageComparison` (or its
``table``) and draws one panel per term, the groups sorted, on new axes or
the caller's (``ax=``). Colours as in :mod:`hiermodels.plots.shrinkage`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import cbook
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from hiermodels.intervals import check_ci_prob, either_keyword
from hiermodels.plots._common import (
    COLORS,
    LABELS,
    MAX_TICK_LABELS,
    available_estimates,
    axis_label,
    check_terms,
    comparison_table,
    figure_legend,
    is_link_scale,
    panel_axes,
    select,
    value_columns,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_caterpillar"]


def plot_caterpillar(
    comparison: Any,
    grpvar: str | None = None,
    terms: Sequence[str] | None = None,
    *,
    scale: str = "coef",
    sort_by: str = "eb_mean",
    show: Sequence[str] | None = None,
    ci_prob: float | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    interval: float | None = None,
) -> Figure:
    """Intervals of every group side by side: plain EB, corrected EB, full Bayes.

    One panel per term; groups sorted by ``sort_by`` (the EB mean by
    default), each with up to three stacked intervals and their centres.
    The corrected EB interval adds the uncertainty of the plugged-in
    hyperparameters (Kass–Steffey); full-Bayes intervals are HDIs.

    Parameters
    ----------
    comparison : ShrinkageComparison or pandas.DataFrame
        From :func:`hiermodels.compare_shrinkage`.
    grpvar : str, optional
        Grouping factor (default: the first).
    terms : sequence of str, optional
        Terms to draw (default: all of the factor's terms).
    scale : {"coef", "effect"}
        Group coefficients or group effects.
    sort_by : str
        Column of the table to sort the groups by.
    show : sequence of {"eb", "eb_corrected", "eb_bootstrap", "bayes"}, optional
        Which intervals to draw, top to bottom within a group's row. The
        Laird–Louis bootstrap interval exists when the EB fit was made with
        ``interval="bootstrap"``, the full-Bayes one when the comparison has
        a posterior; by default (``None``) all four, each where it exists.
        Asking explicitly for the bootstrap interval of a fit without it is
        an error.
    ci_prob : float, optional
        Probability of the intervals, for the legend (default: the
        comparison's ``ci_prob``; none for a bare table).
    ax : Axes or sequence of Axes, optional
        One axes per term.
    interval : float, optional
        Deprecated spelling of ``ci_prob``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    ci_prob = either_keyword(ci_prob, interval, new="ci_prob", old="interval")
    prob = check_ci_prob(ci_prob) if ci_prob is not None else getattr(comparison, "ci_prob", None)
    table = comparison_table(comparison)
    grpvar, rows = select(table, grpvar)
    terms = check_terms(rows, grpvar, terms)
    explicit = show is not None
    show = list(_INTERVAL_COLUMNS) if show is None else list(show)
    unknown = set(show) - set(_INTERVAL_COLUMNS)
    if unknown or not show:
        raise ValueError(
            f"show takes 'eb', 'eb_corrected', 'eb_bootstrap', 'bayes'; got {list(show)}"
        )
    available = {
        "bayes": "bayes" in available_estimates(rows),
        "eb_bootstrap": "eb_low_bootstrap" in rows,
    }
    if explicit and not available["eb_bootstrap"] and "eb_bootstrap" in show:
        raise ValueError(
            "the comparison has no bootstrap EB intervals: fit with "
            "fit_eb(interval='bootstrap') to draw them"
        )
    show = [k for k in show if available.get(k, True)]
    if sort_by not in rows:
        raise KeyError(f"cannot sort by {sort_by!r}: not a column of the comparison table")
    n = rows["grp"].nunique()
    height = min(0.28 * n + 1.8, 12.0)
    own = ax is None
    fig, axes = panel_axes(
        ax,
        len(terms),
        ncols=min(len(terms), 3),
        panel_size=(4.8 if len(terms) > 1 else 6.4, height),
    )
    link = is_link_scale(comparison)
    for axis, term in zip(axes, terms, strict=True):
        frame = rows[rows["term"] == term].sort_values(sort_by, kind="stable")
        _draw_caterpillar(axis, frame.reset_index(drop=True), scale, list(show))
        axis.set_xlabel(axis_label(term, scale, link))
        axis.set_title(term)
    pct = f" {round(100 * prob)}%" if prob else ""
    names = {
        "eb": "EB" + pct,
        "eb_corrected": "EB corrected" + pct,
        "eb_bootstrap": "EB bootstrap" + pct,
        "bayes": "full Bayes" + pct,
    }
    if rows.groupby("term")["grp"].nunique().max() > MAX_TICK_LABELS:
        handles = [
            Patch(color=COLORS[k], alpha=0.4, label=names[k])
            if k in _BAND
            else Line2D([], [], color=COLORS[k], lw=1.2, label=names[k] + " (edges)")
            for k in show
        ]
    else:
        handles = [
            Line2D([], [], color=COLORS[k], lw=2.2, marker="o", ms=3, label=names[k]) for k in show
        ]
    handles.append(
        Line2D([], [], color=COLORS["complete_pooling"], ls="--", label=LABELS["complete_pooling"])
    )
    figure_legend(fig, axes, handles, own)
    return fig


# With many groups the plain EB interval is a filled band, the others its edges.
_BAND = ("eb",)
_INTERVAL_COLUMNS = {
    "eb": ("eb_mean", "eb_low", "eb_high"),
    "eb_corrected": ("eb_mean", "eb_low_corrected", "eb_high_corrected"),
    "eb_bootstrap": ("eb_mean", "eb_low_bootstrap", "eb_high_bootstrap"),
    "bayes": ("bayes_mean", "bayes_low", "bayes_high"),
}


def _draw_caterpillar(ax: Axes, frame: pd.DataFrame, scale: str, show: list[str]) -> None:
    values = value_columns(frame, scale)
    n = len(frame)
    y = np.arange(n, dtype=float)
    ax.axvline(values["complete_pooling"][0], color=COLORS["complete_pooling"], ls="--", lw=1)
    if n > MAX_TICK_LABELS:
        _draw_bands(ax, values, y, show)
        ax.set_yticks([])
        ax.set_ylabel(f"{n} groups, sorted")
    else:
        offsets = np.linspace(0.25, -0.25, len(show)) if len(show) > 1 else np.zeros(1)
        for kind, offset in zip(show, offsets, strict=True):
            centre, low, high = (values[c] for c in _INTERVAL_COLUMNS[kind])
            ax.hlines(y + offset, low, high, color=COLORS[kind], lw=1.8, gid=kind)
            ax.plot(centre, y + offset, ls="", marker="o", ms=3, color=COLORS[kind])
        ax.set_yticks(y, [str(g) for g in frame["grp"]])
    ax.set_ylim(-0.7, n - 0.3)


def _draw_bands(ax: Axes, values: dict[str, np.ndarray], y: np.ndarray, show: list[str]) -> None:
    """Many groups: plain EB as a band over the sorted groups, the others as its edges."""
    for kind in show:
        _, low, high = (values[c] for c in _INTERVAL_COLUMNS[kind])
        if kind in _BAND:
            ax.fill_betweenx(
                y, low, high, step="mid", color=COLORS[kind], alpha=0.4, lw=0, gid=kind
            )
        else:
            for edge in (low, high):
                # step along y, as the band's fill_betweenx(step="mid") does
                ys, xs = cbook.pts_to_midstep(y, edge)
                ax.plot(xs, ys, color=COLORS[kind], lw=0.9, gid=kind)
    middle = "eb" if {"eb", "eb_corrected", "eb_bootstrap"} & set(show) else "bayes"
    ax.plot(values[f"{middle}_mean"], y, color="#222222", lw=0.8, gid="centre")
