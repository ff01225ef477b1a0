"""The two-dimensional shrinkage picture of a two-term random-effect block.

Each group is a point in the plane of two coefficients (say intercept and
slope): its own least-squares fit, and arrows to where empirical Bayes and
full Bayes put it. The fitted population distribution ``N(β̂, Σ̂)`` of the
group coefficients is drawn as ellipses: estimates are pulled towards its
centre, and along its long axis less than across it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from scipy import stats

from hiermodels.names import correlation_label, sd_name
from hiermodels.plots._common import (
    COLORS,
    LABELS,
    available_estimates,
    axis_label,
    comparison_table,
    is_link_scale,
    marker_sizes,
    panel_axes,
    value_columns,
)
from hiermodels.plots.shrinkage import _arrow

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hiermodels.mle.results import MixedFit

__all__ = ["plot_shrinkage_2d", "population_covariance"]


def _default_pair(table: pd.DataFrame, hyper: pd.DataFrame | None, grpvar: str | None) -> Any:
    factors = [grpvar] if grpvar is not None else list(dict.fromkeys(table["grpvar"]))
    for group in factors:
        terms = list(dict.fromkeys(table.loc[table["grpvar"] == group, "term"]))
        if len(terms) < 2:
            continue
        if hyper is not None:
            for a in terms:
                for b in terms:
                    if correlation_label(group, a, b) in set(hyper["parameter"]):
                        return group, (a, b)
        return group, (terms[0], terms[1])
    where = f"grouping factor {grpvar!r}" if grpvar else "any grouping factor"
    raise ValueError(f"the 2-D shrinkage plot needs two terms on {where}; the comparison has one")


def population_covariance(
    comparison: Any, grpvar: str, terms: tuple[str, str], mle: MixedFit | None = None
) -> np.ndarray:
    """The 2 × 2 fitted covariance of two terms' group effects.

    Parameters
    ----------
    comparison : ShrinkageComparison
        Its ``hyperparameters`` table supplies the MLE SDs and correlation
        when ``mle`` is not given.
    grpvar : str
        Grouping factor.
    terms : tuple of str
        The two terms.
    mle : MixedFit, optional
        Take the values from its ``varcorr`` instead.

    Returns
    -------
    numpy.ndarray
        ``[[s_a², ρ s_a s_b], [ρ s_a s_b, s_b²]]``; ρ is 0 for terms in
        separate (uncorrelated) blocks.
    """
    a, b = terms
    if mle is not None:
        vc = mle.varcorr
        rows = vc[vc["grp"] == grpvar]
        sd = {r.var1: r.sdcor for r in rows.itertuples() if not isinstance(r.var2, str)}
        rho = 0.0
        for r in rows.itertuples():
            if isinstance(r.var2, str) and {r.var1, r.var2} == {a, b}:
                rho = float(r.sdcor)
        sa, sb = sd.get(a), sd.get(b)
    else:
        hyper = getattr(comparison, "hyperparameters", None)
        if hyper is None:
            raise ValueError("pass mle= or a ShrinkageComparison with its hyperparameters table")
        values = {
            str(name): float(value)
            for name, value in zip(hyper["parameter"], hyper["mle"], strict=True)
        }
        sa, sb = values.get(sd_name(grpvar, a)), values.get(sd_name(grpvar, b))
        corr = correlation_label(grpvar, a, b)
        if corr not in values:
            corr = correlation_label(grpvar, b, a)
        rho = values.get(corr, 0.0)
    if sa is None or sb is None:
        raise KeyError(f"no fitted SDs of {a!r} and {b!r} for grouping factor {grpvar!r}")
    cov = rho * sa * sb
    return np.array([[sa**2, cov], [cov, sb**2]], dtype=float)


def _ellipse(centre: np.ndarray, cov: np.ndarray, prob: float) -> np.ndarray:
    """Points on the contour of ``N(centre, cov)`` holding probability ``prob``."""
    radius = np.sqrt(stats.chi2.ppf(prob, df=2))
    vals, vecs = np.linalg.eigh(cov)
    angle = np.linspace(0, 2 * np.pi, 200)
    circle = np.stack([np.cos(angle), np.sin(angle)])
    return centre[:, None] + vecs @ (np.sqrt(np.clip(vals, 0, None))[:, None] * radius * circle)


_MARKER = {"eb": "o", "bayes": "D"}


def _ellipse_style(prob: float, probs: Sequence[float]) -> str:
    """The outermost ellipse solid, the others dotted."""
    return "-" if prob == max(probs) else ":"


_COLUMN = {"eb": "eb_mean", "bayes": "bayes_mean"}


def _draw_panel(
    ax: Axes,
    x: dict[str, np.ndarray],
    y: dict[str, np.ndarray],
    ok: np.ndarray,
    sizes: np.ndarray,
    kind: str,
) -> None:
    """Per-group fits, arrows to one kind of estimate, and its points."""
    ax.scatter(
        x["no_pooling"][ok],
        y["no_pooling"][ok],
        s=sizes[ok],
        facecolors="white",
        edgecolors=COLORS["no_pooling"],
        linewidths=1.2,
        zorder=3,
        gid="no_pooling",
    )
    end_x, end_y = x[_COLUMN[kind]], y[_COLUMN[kind]]
    ax.scatter(end_x, end_y, s=14, marker=_MARKER[kind], color=COLORS[kind], zorder=4, gid=kind)
    for j in np.flatnonzero(ok):
        _arrow(ax, (x["no_pooling"][j], y["no_pooling"][j]), (end_x[j], end_y[j]), kind)


def _share_limits(axes: list[Axes]) -> None:
    """The same x and y range on every panel, so the panels can be compared."""
    for get, set_ in (("get_xlim", "set_xlim"), ("get_ylim", "set_ylim")):
        limits = np.array([getattr(a, get)() for a in axes])
        for a in axes:
            getattr(a, set_)(limits[:, 0].min(), limits[:, 1].max())


def plot_shrinkage_2d(
    comparison: Any,
    grpvar: str | None = None,
    terms: tuple[str, str] | None = None,
    *,
    mle: MixedFit | None = None,
    which: Sequence[str] = ("eb", "bayes"),
    probs: Sequence[float] = (0.5, 0.95),
    scale: str = "coef",
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Intercept × slope (any two terms) shrinkage of every group.

    Open circles are the per-group fits (area growing with the group's
    size), arrows lead to the empirical-Bayes and full-Bayes estimates, and
    the ellipses are contours of the fitted population distribution of the
    group coefficients, ``N(β̂, Σ̂)`` from the marginal MLE.

    Parameters
    ----------
    comparison : ShrinkageComparison
        From :func:`hiermodels.compare_shrinkage`.
    grpvar : str, optional
        Grouping factor (default: the first with two terms).
    terms : tuple of str, optional
        The two terms, x then y (default: a correlated pair, else the first two).
    mle : MixedFit, optional
        Take Σ̂ from its ``varcorr`` (default: the comparison's MLE column).
    which : sequence of {"eb", "bayes"}
        The estimates to draw arrows to, one panel each.
    probs : sequence of float
        Probabilities held inside the ellipses.
    scale : {"coef", "effect"}
        Group coefficients (ellipses centred at β̂) or effects (centred at 0).
    ax : Axes or sequence of Axes, optional
        One axes per entry of ``which``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = comparison_table(comparison)
    hyper = getattr(comparison, "hyperparameters", None)
    if terms is None:
        grpvar, terms = _default_pair(table, hyper, grpvar)
    elif grpvar is None:
        grpvar = str(table["grpvar"].iloc[0])
    if set(which) - {"eb", "bayes"} or not which:
        raise ValueError(f"which takes 'eb' and/or 'bayes'; got {list(which)}")
    which = [k for k in which if k in available_estimates(table)]
    frames = []
    for term in terms:
        rows = table[(table["grpvar"] == grpvar) & (table["term"] == term)]
        if rows.empty:
            raise KeyError(f"no term {term!r} on grouping factor {grpvar!r}")
        frames.append(rows.set_index("grp"))
    levels = list(frames[0].index)
    x, y = (value_columns(f.loc[levels].reset_index(), scale) for f in frames)
    ok = (
        frames[0].loc[levels, "no_pooling_estimable"]
        & frames[1].loc[levels, "no_pooling_estimable"]
    )
    ok = ok.to_numpy(bool) & np.isfinite(x["no_pooling"]) & np.isfinite(y["no_pooling"])
    fig, axes = panel_axes(ax, len(which), ncols=len(which), panel_size=(5.2, 4.8))
    centre = np.array([x["complete_pooling"][0], y["complete_pooling"][0]])
    cov = population_covariance(comparison, grpvar, tuple(terms), mle)
    link = is_link_scale(comparison)
    sizes = marker_sizes(frames[0].loc[levels, "n_obs"].to_numpy())
    for axis, kind in zip(axes, which, strict=True):
        _draw_panel(axis, x, y, ok, sizes, kind)
        for p in sorted(probs):
            pts = _ellipse(centre, cov, p)
            axis.plot(
                pts[0],
                pts[1],
                color=COLORS["complete_pooling"],
                lw=1,
                ls=_ellipse_style(p, probs),
                gid="ellipse",
            )
        axis.plot(*centre, marker="+", ms=12, mew=2, color=COLORS["complete_pooling"], gid="centre")
        axis.set_xlabel(axis_label(terms[0], scale, link))
        axis.set_ylabel(axis_label(terms[1], scale, link))
        axis.set_title(f"{LABELS['no_pooling'].split(' (')[0]} → {LABELS[kind]}")
        handles = [
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                mfc="white",
                mec=COLORS["no_pooling"],
                ms=8,
                label=LABELS["no_pooling"],
            ),
            Line2D([], [], color=COLORS[kind], marker=_MARKER[kind], ms=4, label=LABELS[kind]),
            *(
                Line2D(
                    [],
                    [],
                    color=COLORS["complete_pooling"],
                    ls=_ellipse_style(p, probs),
                    label=rf"population $N(\hat\beta, \hat\Sigma)$: {round(100 * p)}%",
                )
                for p in sorted(probs, reverse=True)
            ),
            Line2D(
                [],
                [],
                ls="",
                marker="+",
                ms=9,
                mew=2,
                color=COLORS["complete_pooling"],
                label=r"population value $\hat\beta$",
            ),
        ]
        if not ok.all():
            handles.append(
                Line2D([], [], ls="", label=f"{int((~ok).sum())} groups without own fit")
            )
        axis.legend(handles=handles, loc="best", fontsize="x-small", framealpha=0.9)
    if len(axes) > 1:
        _share_limits(axes)
    if ax is None:
        fig.suptitle(f"{terms[0]} × {terms[1]} by {grpvar}")
    return fig
