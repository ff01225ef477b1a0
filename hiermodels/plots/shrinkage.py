"""Pictures of the shrinkage comparison: arrows and shrinkage factors.

Every function takes a :class:`~hiermodels.shrinkage.ShrinkageComparison`
(or its ``table``), draws on new axes or the caller's (``ax=``) and returns
the Figure. Values are shown as each group's own coefficient (population
value + group effect, ``scale="coef"``) or as the group effect alone
(``scale="effect"``). Colours: no pooling grey, empirical Bayes blue, full
Bayes orange, complete pooling a dashed grey line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch
from matplotlib.ticker import NullFormatter

from hiermodels._lazy import moved_names
from hiermodels.names import sd_name
from hiermodels.plots._common import (
    COLORS,
    LABELS,
    available_estimates,
    axis_label,
    check_terms,
    comparison_table,
    figure_legend,
    is_link_scale,
    marker_sizes,
    panel_axes,
    pick_rows,
    select,
    value_columns,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_shrinkage", "plot_shrinkage_factor"]

# Vertical offset of the EB (above) and full-Bayes (below) arrows within a group's row.
_ROW_OFFSET = 0.18
NOT_ESTIMABLE_MARK = " †"
_MARKER = {"eb": "o", "bayes": "D"}
# Tick marks of a logarithmic group-size axis.
_NICE_COUNTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
# Arrows shorter than this share of the axis get no head.
_MIN_HEAD = 0.02


def _arrow(
    ax: Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    kind: str,
    *,
    head: bool = True,
) -> None:
    """An arrow from ``start`` to ``end`` (a plain segment when ``head`` is False)."""
    ax.add_patch(
        FancyArrowPatch(
            start,
            end,
            arrowstyle="-|>" if head else "-",
            mutation_scale=9,
            color=COLORS[kind],
            lw=1.2,
            shrinkA=0,
            shrinkB=3,
            gid=f"{kind}_arrow",
            zorder=2,
        )
    )


def _estimate_handles(
    sizes_note: str | None, not_estimable: bool, kinds: Sequence[str] = ("eb", "bayes")
) -> list[Any]:
    handles: list[Any] = [
        Line2D(
            [],
            [],
            ls="",
            marker="o",
            mfc="white",
            mec=COLORS["no_pooling"],
            ms=8,
            label=LABELS["no_pooling"] + (f", {sizes_note}" if sizes_note else ""),
        ),
        *(Line2D([], [], color=COLORS[k], marker=_MARKER[k], ms=5, label=LABELS[k]) for k in kinds),
        Line2D(
            [],
            [],
            color=COLORS["complete_pooling"],
            ls="--",
            label=LABELS["complete_pooling"] + " (population value)",
        ),
    ]
    if not_estimable:
        handles.append(
            Line2D([], [], ls="", label=f"{NOT_ESTIMABLE_MARK.strip()} no per-group estimate")
        )
    return handles


def _size_note(n_obs: np.ndarray) -> str | None:
    low, high = int(np.min(n_obs)), int(np.max(n_obs))
    return None if low == high else f"area ∝ n ({low}–{high} obs)"


def _group_order(rows: pd.DataFrame, term: str, levels: list[Any]) -> np.ndarray:
    first = rows[rows["term"] == term].set_index("grp").loc[levels]
    key = first["no_pooling"].where(first["no_pooling_estimable"], first["eb_mean"])
    return np.argsort(key.to_numpy(float), kind="stable")


def plot_shrinkage(
    comparison: Any,
    grpvar: str | None = None,
    terms: Sequence[str] | None = None,
    *,
    scale: str = "coef",
    max_groups: int | None = 40,
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Shrinkage arrows: no pooling → empirical Bayes and → full Bayes, per group.

    One panel per term. Each group has a row: its no-pooling estimate (open
    circle, area growing with the group's size), an arrow above to its EB
    estimate and one below to its full-Bayes posterior mean; the dashed line
    is complete pooling. Groups whose data cannot identify a per-group
    estimate are marked ``†`` and drawn without arrows.

    Parameters
    ----------
    comparison : ShrinkageComparison or pandas.DataFrame
        From :func:`hiermodels.compare_shrinkage`.
    grpvar : str, optional
        Grouping factor (default: the first).
    terms : sequence of str, optional
        Terms to draw (default: all of the factor's terms).
    scale : {"coef", "effect"}
        Group coefficients (population value + effect) or effects.
    max_groups : int, optional
        Draw at most this many groups, evenly spread over the ranks (``None``
        draws all).
    ax : Axes or sequence of Axes, optional
        One axes per term.

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = comparison_table(comparison)
    grpvar, rows = select(table, grpvar)
    terms = check_terms(rows, grpvar, terms)
    levels = list(dict.fromkeys(rows["grp"]))
    shown = [levels[i] for i in pick_rows(_group_order(rows, terms[0], levels), max_groups)]
    height = min(0.3 * len(shown) + 1.8, 14.0)
    own = ax is None
    fig, axes = panel_axes(
        ax,
        len(terms),
        ncols=min(len(terms), 3),
        panel_size=(4.8 if len(terms) > 1 else 6.4, height),
    )
    link = is_link_scale(comparison)
    flagged = False
    for i, (axis, term) in enumerate(zip(axes, terms, strict=True)):
        frame = rows[rows["term"] == term].set_index("grp").loc[shown].reset_index()
        flagged |= _draw_arrows(axis, frame, scale, label_groups=i == 0)
        axis.set_xlabel(axis_label(term, scale, link))
        axis.set_title(term)
    if len(shown) < len(levels):
        fig.suptitle(f"{len(shown)} of {len(levels)} levels of {grpvar}, evenly spread by rank")
    note = _size_note(rows["n_obs"].to_numpy())
    kinds = available_estimates(rows)
    figure_legend(fig, axes, _estimate_handles(note, flagged, kinds), own)
    return fig


def _draw_arrows(ax: Axes, frame: pd.DataFrame, scale: str, *, label_groups: bool) -> bool:
    """One row per group; returns whether some group had no per-group estimate."""
    values = value_columns(frame, scale)
    y = np.arange(len(frame), dtype=float)
    ok = frame["no_pooling_estimable"].to_numpy(bool) & np.isfinite(values["no_pooling"])
    sizes = marker_sizes(frame["n_obs"].to_numpy())
    ax.axvline(values["complete_pooling"][0], color=COLORS["complete_pooling"], ls="--", lw=1)
    ax.scatter(
        values["no_pooling"][ok],
        y[ok],
        s=sizes[ok],
        facecolors="white",
        edgecolors=COLORS["no_pooling"],
        linewidths=1.2,
        zorder=3,
        gid="no_pooling",
    )
    kinds = available_estimates(frame)
    rows = {"eb": y + _ROW_OFFSET, "bayes": y - _ROW_OFFSET} if len(kinds) > 1 else {kinds[0]: y}
    for kind in kinds:
        ax.scatter(
            values[f"{kind}_mean"],
            rows[kind],
            s=14 if kind == "eb" else 12,
            marker=_MARKER[kind],
            color=COLORS[kind],
            zorder=4,
            gid=kind,
        )
    shown = np.concatenate([values["no_pooling"], *(values[f"{k}_mean"] for k in kinds)])
    span = np.ptp(shown[np.isfinite(shown)])
    for j in np.flatnonzero(ok):
        start = values["no_pooling"][j]
        for kind in kinds:
            end = values[f"{kind}_mean"][j]
            # A head longer than the arrow hides the point it leads to: draw a segment.
            head = abs(end - start) > _MIN_HEAD * span
            _arrow(ax, (start, rows[kind][j]), (end, rows[kind][j]), kind, head=head)
    labels = [
        str(g) + ("" if good else NOT_ESTIMABLE_MARK)
        for g, good in zip(frame["grp"], ok, strict=True)
    ]
    ax.set_yticks(y, labels if label_groups else [""] * len(y))
    ax.set_ylim(-0.7, len(frame) - 0.3)
    ax.grid(axis="y", color="#eeeeee", lw=0.8)
    ax.set_axisbelow(True)
    return not bool(ok.all())


# ------------------------------------------------------- shrinkage vs size


def plot_shrinkage_factor(
    comparison: Any,
    grpvar: str | None = None,
    terms: Sequence[str] | None = None,
    *,
    ylim: tuple[float, float] = (-0.25, 1.25),
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Shrinkage factor of every group against its number of observations.

    The factor is the share of the way from the no-pooling estimate to
    complete pooling (0: none, 1: complete), for EB (blue) and full Bayes
    (orange). Groups whose no-pooling estimate lies close to the population
    value have erratic factors; those outside ``ylim`` are drawn as
    triangles on the edge. For a Gaussian model with one random intercept
    the curve ``σ²/(σ² + n τ²)`` at the MLE shows the textbook answer.

    Parameters
    ----------
    comparison : ShrinkageComparison or pandas.DataFrame
        From :func:`hiermodels.compare_shrinkage`.
    grpvar : str, optional
        Grouping factor (default: every factor, one panel per factor × term).
    terms : sequence of str, optional
        Terms to draw (default: all).
    ylim : tuple of float
        Range of the factor shown.
    ax : Axes or sequence of Axes, optional
        One axes per panel.

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = comparison_table(comparison)
    if grpvar is not None:
        _, table = select(table, grpvar)
    pairs = list(dict.fromkeys(zip(table["grpvar"], table["term"], strict=True)))
    if terms is not None:
        wanted = [p for p in pairs if p[1] in set(terms)]
        if not wanted:
            raise KeyError(f"no terms {list(terms)} in the comparison")
        pairs = wanted
    own = ax is None
    fig, axes = panel_axes(ax, len(pairs), ncols=min(len(pairs), 3), panel_size=(4.6, 3.4))
    curve = _textbook_curve(comparison, pairs)
    clipped = False
    for axis, (group, term) in zip(axes, pairs, strict=True):
        frame = table[(table["grpvar"] == group) & (table["term"] == term)]
        clipped |= _draw_factor(axis, frame, ylim)
        if curve is not None:
            n_grid = np.geomspace(max(frame["n_obs"].min(), 1) * 0.8, frame["n_obs"].max() * 1.25)
            axis.plot(
                n_grid,
                curve(n_grid),
                color=COLORS["complete_pooling"],
                lw=1.2,
                gid="textbook_curve",
                label="σ²/(σ² + nτ²) at the MLE",
            )
        axis.set_title(f"{term} | {group}")
        axis.set_xlabel(f"observations per {group}")
        axis.set_ylabel("shrinkage factor")
    handles = [
        *(
            Line2D([], [], ls="", marker=_MARKER[k], ms=5, color=COLORS[k], label=LABELS[k])
            for k in available_estimates(table)
        ),
    ]
    if clipped:
        handles.append(
            Line2D([], [], ls="", marker="^", mfc="white", mec="#333333", label="outside the range")
        )
    if curve is not None:
        handles.append(
            Line2D([], [], color=COLORS["complete_pooling"], label="σ²/(σ² + nτ²) at the MLE")
        )
    figure_legend(fig, axes, handles, own)
    return fig


def _draw_factor(ax: Axes, frame: pd.DataFrame, ylim: tuple[float, float]) -> bool:
    """Points of one panel; returns whether some fell outside ``ylim``."""
    clipped = False
    n_obs = frame["n_obs"].to_numpy(float)
    distinct = np.unique(n_obs)
    if distinct.size == 1:
        # One group size: spread EB and full Bayes side by side around it.
        dodge = {"eb": -0.25, "bayes": 0.25}
        ax.set_xlim(distinct[0] - 1, distinct[0] + 1)
        ax.set_xticks([distinct[0]], [f"every group: n = {int(distinct[0])}"])
    else:
        if distinct[-1] / max(distinct[0], 1) > 8:
            ax.set_xscale("log")
            ticks = [t for t in _NICE_COUNTS if distinct[0] * 0.8 <= t <= distinct[-1] * 1.25]
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.xaxis.set_minor_formatter(NullFormatter())
        dodge = {"eb": -0.03, "bayes": 0.03}
    lo, hi = ylim
    for kind in available_estimates(frame):
        factor, marker = frame[f"{kind}_shrinkage"].to_numpy(float), _MARKER[kind]
        x = n_obs + dodge[kind] if distinct.size == 1 else n_obs * np.exp(dodge[kind])
        inside = np.isfinite(factor) & (factor >= lo) & (factor <= hi)
        ax.scatter(
            x[inside],
            factor[inside],
            s=16,
            marker=marker,
            color=COLORS[kind],
            alpha=0.75,
            gid=kind,
            zorder=3,
        )
        above, below = np.isfinite(factor) & (factor > hi), np.isfinite(factor) & (factor < lo)
        for mask, edge, mark in ((above, hi, "^"), (below, lo, "v")):
            if mask.any():
                clipped = True
                ax.scatter(
                    x[mask],
                    np.full(mask.sum(), edge),
                    marker=mark,
                    s=22,
                    facecolors="white",
                    edgecolors=COLORS[kind],
                    gid="clipped",
                    zorder=3,
                )
    for level, text in ((0.0, "no pooling"), (1.0, "complete pooling")):
        ax.axhline(level, color="#bbbbbb", lw=0.8, zorder=1)
        ax.text(
            1.0,
            level,
            f" {text}",
            transform=ax.get_yaxis_transform(),
            va="center",
            fontsize="x-small",
            color="#777777",
        )
    pad = 0.04 * (hi - lo)
    ax.set_ylim(lo - pad, hi + pad)
    return clipped


def _textbook_curve(comparison: Any, pairs: list[tuple[str, str]]) -> Any:
    """``n ↦ σ²/(σ² + nτ²)`` for a Gaussian model with one scalar random effect."""
    hyper = getattr(comparison, "hyperparameters", None)
    if hyper is None or len(pairs) != 1:
        return None
    table = comparison_table(comparison)
    if table["grpvar"].nunique() != 1 or table["term"].nunique() != 1:
        return None
    mle = dict(zip(hyper["parameter"], hyper["mle"], strict=True))
    group, term = pairs[0]
    if term not in ("Intercept", "(Intercept)"):
        return None
    tau = mle.get(sd_name(group, term))
    sigma = mle.get("sigma")
    if tau is None or sigma is None:
        return None
    return lambda n: sigma**2 / (sigma**2 + np.asarray(n) * tau**2)


__getattr__ = moved_names(
    __name__, {"plot_caterpillar": ("hiermodels.plots.caterpillar", "plot_caterpillar")}
)
