"""Shared pieces of the plots: colours, panel layout, point sizes, table access."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "COLORS",
    "available_estimates",
    "LABELS",
    "comparison_table",
    "figure_legend",
    "MAX_TICK_LABELS",
    "marker_sizes",
    "panel_axes",
    "value_columns",
]

#: One colour per estimate, the same in every picture.
COLORS: dict[str, str] = {
    "no_pooling": "#4d4d4d",
    "eb": "#1f6fb4",
    "eb_corrected": "#7fb2e0",
    "eb_bootstrap": "#6a51a3",
    "bayes": "#e0730f",
    "complete_pooling": "#8c8c8c",
    "mle": "#c0282d",
    "truth": "#2a9d4b",
    "profile": "#555555",
}

#: Legend labels of the estimates.
LABELS: dict[str, str] = {
    "no_pooling": "no pooling (per-group fit)",
    "eb": "empirical Bayes",
    "eb_corrected": "EB, corrected for θ̂ uncertainty",
    "eb_bootstrap": "EB, Laird–Louis bootstrap",
    "bayes": "full Bayes",
    "complete_pooling": "complete pooling",
}

# Point areas (pt²) for the smallest and the largest group.
_SIZE_RANGE = (18.0, 110.0)


def comparison_table(comparison: Any) -> pd.DataFrame:
    """The per-group table of a ``ShrinkageComparison`` (or the table itself)."""
    table = getattr(comparison, "table", comparison)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(
            "expected a ShrinkageComparison or its table (a pandas DataFrame), "
            f"got {type(comparison).__name__}"
        )
    return table


def value_columns(frame: pd.DataFrame, scale: str) -> dict[str, np.ndarray]:
    """Estimates on the chosen scale.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows of one grouping factor and term.
    scale : {"coef", "effect"}
        ``"coef"`` adds the population coefficient (the group's own
        coefficient); ``"effect"`` keeps the deviation from the population.

    Returns
    -------
    dict of str to numpy.ndarray
        Every estimate and interval column, shifted as asked.
    """
    if scale not in ("coef", "effect"):
        raise ValueError(f"scale must be 'coef' or 'effect', got {scale!r}")
    shift = frame["population_coef"].to_numpy(float) if scale == "coef" else 0.0
    names = [
        "no_pooling",
        "complete_pooling",
        "eb_mean",
        "eb_low",
        "eb_high",
        "eb_low_corrected",
        "eb_high_corrected",
        "eb_low_bootstrap",
        "eb_high_bootstrap",
        "bayes_mean",
        "bayes_low",
        "bayes_high",
    ]
    return {n: frame[n].to_numpy(float) + shift for n in names if n in frame}


def available_estimates(frame: pd.DataFrame) -> list[str]:
    """``["eb", "bayes"]``, or ``["eb"]`` for a table without full-Bayes columns."""
    return ["eb", "bayes"] if "bayes_mean" in frame else ["eb"]


def marker_sizes(n_obs: np.ndarray) -> np.ndarray:
    """Point areas growing with the square root of the group size."""
    counts = np.sqrt(np.asarray(n_obs, dtype=float))
    low, high = _SIZE_RANGE
    span = counts.max() - counts.min()
    if not np.isfinite(span) or span <= 0:
        return np.full(counts.shape, (low + high) / 3)
    return low + (high - low) * (counts - counts.min()) / span


def panel_axes(
    ax: Axes | Sequence[Axes] | None,
    n: int,
    *,
    ncols: int | None = None,
    panel_size: tuple[float, float] = (4.6, 3.6),
    sharey: bool = False,
) -> tuple[Figure, list[Axes]]:
    """Axes for ``n`` panels: new ones on a fresh figure, or the caller's.

    Parameters
    ----------
    ax : Axes or sequence of Axes, optional
        The caller's axes: one per panel (a single Axes when ``n`` is 1).
    n : int
        Number of panels.
    ncols : int, optional
        Columns of a new grid (default ``min(n, 3)``).
    panel_size : tuple of float
        Width and height of one panel of a new figure, in inches.
    sharey : bool
        Share the y axis between new panels.

    Returns
    -------
    figure, axes
        The figure and exactly ``n`` axes; unused grid cells are removed.
    """
    if ax is not None:
        if isinstance(ax, np.ndarray):
            axes = list(ax.ravel())
        elif isinstance(ax, Sequence):
            axes = list(ax)
        else:
            axes = [ax]
        if len(axes) != n:
            raise ValueError(f"this plot draws {n} panel(s); got {len(axes)} axes")
        figure = axes[0].get_figure(root=True)
        if figure is None:
            raise ValueError("the axes given are not on a figure")
        return figure, axes
    import matplotlib.pyplot as plt

    ncols = ncols or min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        squeeze=False,
        sharey=sharey,
        layout="constrained",
    )
    flat = list(grid.ravel())
    for extra in flat[n:]:
        extra.remove()
    return fig, flat[:n]


def pick_rows(order: np.ndarray, max_groups: int | None) -> np.ndarray:
    """At most ``max_groups`` positions of ``order``, evenly spread over its ranks."""
    if max_groups is None or order.size <= max_groups:
        return order
    if max_groups < 2:
        raise ValueError("max_groups must be at least 2")
    keep = np.unique(np.round(np.linspace(0, order.size - 1, max_groups)).astype(int))
    return order[keep]


def axis_label(term: str, scale: str, link_scale: bool) -> str:
    """Axis label of a term's values."""
    what = f"{term} (group coefficient)" if scale == "coef" else f"{term} (group effect)"
    return what + (", linear-predictor scale" if link_scale else "")


def is_link_scale(comparison: Any) -> bool:
    """Whether the model has no residual σ, i.e. the values are on a link scale."""
    hyper = getattr(comparison, "hyperparameters", None)
    if hyper is None or "parameter" not in hyper:
        return False
    return "sigma" not in set(hyper["parameter"])


def select(table: pd.DataFrame, grpvar: str | None) -> tuple[str, pd.DataFrame]:
    """The rows of one grouping factor (the first one by default)."""
    factors = list(dict.fromkeys(table["grpvar"]))
    if grpvar is None:
        grpvar = factors[0]
    if grpvar not in factors:
        raise KeyError(f"no grouping factor {grpvar!r}; the comparison has {factors}")
    return grpvar, table[table["grpvar"] == grpvar]


def check_terms(rows: pd.DataFrame, grpvar: str, terms: Sequence[str] | None) -> list[str]:
    """The requested terms of a grouping factor (all of them by default)."""
    available = list(dict.fromkeys(rows["term"]))
    if terms is None:
        return available
    missing = [t for t in terms if t not in available]
    if missing:
        raise KeyError(f"grouping factor {grpvar!r} has terms {available}, not {missing}")
    return list(terms)


# Groups labelled one by one on the y axis up to this many; beyond, the axis is a rank.
MAX_TICK_LABELS = 60


def figure_legend(fig: Figure, axes: list[Axes], handles: list[Any], own_figure: bool) -> None:
    """One legend: below the panels of a figure drawn here, inside the caller's axes otherwise."""
    if own_figure:
        ncol = min(len(handles), 3 if len(axes) > 1 else 2)
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol, fontsize="small")
    else:
        axes[0].legend(handles=handles, loc="best", fontsize="small")
