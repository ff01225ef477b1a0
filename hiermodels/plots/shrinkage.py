"""Pictures of the shrinkage comparison: arrows and shrinkage factors.

Every function takes a :class:`~hiermodels.shrinkage.ShrinkageComparison`
(or its ``table``), draws on new axes or the caller's (``ax=``) and returns
the Figure. Values are shown as each group's own coefficient (population
value + group effect, ``scale="coef"``) or as the group effect alone
(``scale="effect"``). Colours: no pooling grey, empirical Bayes blue, full
Bayes orange, complete pooling a dashed grey line.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch
from matplotlib.ticker import NullFormatter

from hiermodels._lazy import moved_names
from hiermodels.names import group_term_label, sd_name
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

__all__ = ["out_of_range_factors", "plot_shrinkage", "plot_shrinkage_factor"]

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

# The factor axis always shows [−0.25, 1.25] and stretches to factors up to this far out;
# beyond, a factor is drawn as a triangle on the edge.
_DEFAULT_YLIM = (-0.25, 1.25)
_FARTHEST = (-1.0, 2.0)
# Names of the groups outside [0, 1] written in a panel, at most.
_MAX_NAMED = 8
# Characters per line of the names written in a band.
_NAMES_WIDTH = 24
# Fill of the bands above 1 and below 0.
_OUTSIDE_FILL = "#f3e9d2"


def _outside_unit_interval(factor: np.ndarray) -> np.ndarray:
    """Which factors are finite and outside [0, 1]."""
    return np.isfinite(factor) & ((factor < 0) | (factor > 1))


def out_of_range_factors(comparison: Any) -> pd.DataFrame:
    """The shrinkage factors outside [0, 1]: estimates that crossed or left the population value.

    A factor above 1 means the pooled estimate went past the population
    value to the other side of it; below 0, that it moved away from the
    population value rather than towards it.

    Parameters
    ----------
    comparison : ShrinkageComparison or pandas.DataFrame
        From :func:`hiermodels.compare_shrinkage`.

    Returns
    -------
    pandas.DataFrame
        Columns ``grpvar, term, grp, estimate`` (``"eb"`` or ``"bayes"``)
        and ``factor``, one row per estimate outside [0, 1], in the table's
        order.
    """
    table = comparison_table(comparison)
    frames = []
    for kind in available_estimates(table):
        factor = table[f"{kind}_shrinkage"].to_numpy(float)
        outside = _outside_unit_interval(factor)
        rows = table.loc[outside, ["grpvar", "term", "grp"]].assign(
            estimate=kind, factor=factor[outside]
        )
        frames.append(rows)
    found = pd.concat(frames)
    return found.sort_index(kind="stable").reset_index(drop=True)


def _factor_limits(table: pd.DataFrame, ylim: tuple[float, float] | None) -> tuple[float, float]:
    """``ylim``, or [−0.25, 1.25] stretched to every factor within [−1, 2]."""
    if ylim is not None:
        return ylim
    factors = np.concatenate(
        [table[f"{k}_shrinkage"].to_numpy(float) for k in available_estimates(table)]
    )
    factors = factors[np.isfinite(factors)]
    low = min(_DEFAULT_YLIM[0], max(float(factors.min(initial=0.0)), _FARTHEST[0]))
    high = max(_DEFAULT_YLIM[1], min(float(factors.max(initial=1.0)), _FARTHEST[1]))
    return low, high


def plot_shrinkage_factor(
    comparison: Any,
    grpvar: str | None = None,
    terms: Sequence[str] | None = None,
    *,
    ylim: tuple[float, float] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Shrinkage factor of every group against its number of observations.

    The factor is the share of the way from the no-pooling estimate to
    complete pooling (0: none, 1: complete), for EB (blue) and full Bayes
    (orange). A factor above 1 (the estimate crossed the population value)
    or below 0 (it moved away from it) is drawn in a shaded band that names
    its groups (:func:`out_of_range_factors`): with several terms per group
    they are shrunk together, so pulling one term in can push another out.
    Groups whose no-pooling estimate lies close to the population value have
    erratic factors; those outside ``ylim`` are drawn as triangles on the
    edge. For a Gaussian model with one random intercept the curve
    ``σ²/(σ² + n τ²)`` at the MLE shows the textbook answer.

    Parameters
    ----------
    comparison : ShrinkageComparison or pandas.DataFrame
        From :func:`hiermodels.compare_shrinkage`.
    grpvar : str, optional
        Grouping factor (default: every factor, one panel per factor × term).
    terms : sequence of str, optional
        Terms to draw (default: all).
    ylim : tuple of float, optional
        Range of the factor shown (default: [−0.25, 1.25], stretched to take
        in every factor between −1 and 2).
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
        table = table[table["term"].isin(set(terms))]
    own = ax is None
    fig, axes = panel_axes(ax, len(pairs), ncols=min(len(pairs), 3), panel_size=(4.6, 3.4))
    curve = _textbook_curve(comparison, pairs)
    limits = _factor_limits(table, ylim)
    outside = out_of_range_factors(table)
    clipped = False
    for axis, (group, term) in zip(axes, pairs, strict=True):
        frame = table[(table["grpvar"] == group) & (table["term"] == term)]
        clipped |= _draw_factor(axis, frame, limits)
        _mark_outside(axis, frame, limits)
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
        axis.set_title(group_term_label(group, term))
        axis.set_xlabel(f"observations per {group}")
        axis.set_ylabel("shrinkage factor")
    handles: list[Any] = [
        *(
            Line2D([], [], ls="", marker=_MARKER[k], ms=5, color=COLORS[k], label=LABELS[k])
            for k in available_estimates(table)
        ),
    ]
    if len(outside):
        handles.append(
            Patch(
                facecolor=_OUTSIDE_FILL,
                edgecolor="#333333",
                label="outside [0, 1] (ringed): crossed the population value (> 1) "
                "or moved away from it (< 0)",
            )
        )
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


def _x_positions(n_obs: np.ndarray, kind: str) -> np.ndarray:
    """Where a kind of estimate is drawn: EB just left of the group size, full Bayes right."""
    side = -1.0 if kind == "eb" else 1.0
    if np.unique(n_obs).size == 1:
        return n_obs + 0.25 * side
    return n_obs * np.exp(0.03 * side)


def _draw_factor(ax: Axes, frame: pd.DataFrame, ylim: tuple[float, float]) -> bool:
    """Points of one panel; returns whether some fell outside ``ylim``."""
    clipped = False
    n_obs = frame["n_obs"].to_numpy(float)
    distinct = np.unique(n_obs)
    if distinct.size == 1:
        # One group size: EB and full Bayes side by side right of the middle, room on the
        # left for the names of the groups outside [0, 1].
        ax.set_xlim(distinct[0] - 2, distinct[0] + 1)
        ax.set_xticks([distinct[0]], [f"every group: n = {int(distinct[0])}"])
    elif distinct[-1] / max(distinct[0], 1) > 8:
        ax.set_xscale("log")
        ticks = [t for t in _NICE_COUNTS if distinct[0] * 0.8 <= t <= distinct[-1] * 1.25]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.xaxis.set_minor_formatter(NullFormatter())
    lo, hi = ylim
    for kind in available_estimates(frame):
        factor, marker = frame[f"{kind}_shrinkage"].to_numpy(float), _MARKER[kind]
        x = _x_positions(n_obs, kind)
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


def _mark_outside(ax: Axes, frame: pd.DataFrame, ylim: tuple[float, float]) -> None:
    """Shade the bands above 1 and below 0, ring the factors in them and name their groups."""
    n_obs = frame["n_obs"].to_numpy(float)
    factors = {k: frame[f"{k}_shrinkage"].to_numpy(float) for k in available_estimates(frame)}
    low, high = ax.get_ylim()
    for above, (start, end), where, words in (
        (True, (1.0, high), 0.98, "crossed the population value"),
        (False, (low, 0.0), 0.02, "moved away from it"),
    ):
        side = np.zeros(len(frame), dtype=bool)
        for kind, factor in factors.items():
            mask = _outside_unit_interval(factor) & ((factor > 1) == above)
            side |= mask
            ring = mask & (factor >= ylim[0]) & (factor <= ylim[1])  # clipped ones are triangles
            ax.scatter(
                _x_positions(n_obs, kind)[ring],
                factor[ring],
                s=60,
                facecolors="none",
                edgecolors="#333333",
                linewidths=0.9,
                gid="outside_ring",
                zorder=4,
            )
        if not side.any():
            continue
        ax.axhspan(start, end, color=_OUTSIDE_FILL, lw=0, zorder=0, gid="outside_band")
        names = [str(g) for g in frame["grp"].to_numpy()[side]]
        shown = ", ".join(names[:_MAX_NAMED]) + (
            f" and {len(names) - _MAX_NAMED} more" if len(names) > _MAX_NAMED else ""
        )
        ax.text(
            0.02,
            where,
            textwrap.fill(f"{words}: {shown}", width=_NAMES_WIDTH),
            transform=ax.transAxes,
            va="top" if above else "bottom",
            fontsize="x-small",
            color="#5a4a1f",
            bbox={"facecolor": "white", "alpha": 0.75, "lw": 0, "pad": 1.5},
            gid="outside_names",
            zorder=5,
        )


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
