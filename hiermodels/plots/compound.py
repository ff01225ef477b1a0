"""Compound-sampling pictures: raw versus shrunk versus truth, and risk curves.

:func:`plot_raw_shrunk_truth` is the picture of Efron & Morris (1975): each
unit's raw estimate on the top line, its shrunk estimate(s) below, the truth
at the bottom, joined by a line per unit — shrinkage pulls the points
together and, on the whole, closer to the truth. :func:`plot_efron_morris`
draws it for the shipped 1970 batting data. :func:`plot_risk_curves` shows
the simulated risks of :func:`~hiermodels.compound.simulate_compound` as
the spread of the true effects varies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from numpy.typing import ArrayLike

from hiermodels.plots._common import COLORS, panel_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hiermodels.compound import CompoundSimulation, NormalNormal

__all__ = [
    "baseball_estimates",
    "baseball_model",
    "plot_efron_morris",
    "plot_raw_shrunk_truth",
    "plot_risk_curves",
]

_ROW_COLORS = [COLORS["no_pooling"], COLORS["eb"], COLORS["bayes"], "#7b4fa0", "#b0457a"]

#: Display names and colours of the simulator's estimators.
ESTIMATORS: dict[str, tuple[str, str]] = {
    "raw": ("raw (no pooling)", COLORS["no_pooling"]),
    "james_stein": ("James–Stein", "#7b4fa0"),
    "james_stein_plus": ("James–Stein, positive part", "#b89bd3"),
    "eb": ("parametric EB", COLORS["eb"]),
    "oracle": ("Bayes rule, true prior", COLORS["truth"]),
    "full_bayes": ("full Bayes", COLORS["bayes"]),
}


def plot_raw_shrunk_truth(
    estimates: Mapping[str, ArrayLike],
    truth: ArrayLike | None = None,
    *,
    truth_label: str = "truth",
    units: Sequence[Any] | None = None,
    label_units: Sequence[Any] = (),
    target: float | None = None,
    target_label: str = "shrinkage target",
    ax: Axes | None = None,
) -> Figure:
    """Parallel lines: raw estimates, shrunk estimates, truth.

    Parameters
    ----------
    estimates : mapping of str to array_like
        Rows from top to bottom, e.g. ``{"raw": y, "James–Stein": js}``;
        all of the same length (one value per unit).
    truth : array_like, optional
        The true values, drawn as the bottom row; each row's label then
        carries its total squared error against them.
    truth_label : str
        Label of the truth row.
    units : sequence, optional
        Unit labels (needed for ``label_units``).
    label_units : sequence
        Units to name next to their top-row point.
    target : float, optional
        The value shrunk towards (a dashed vertical line).
    target_label : str
        Its label.
    ax : Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not estimates:
        raise ValueError("estimates must hold at least one row")
    rows = {name: np.asarray(v, dtype=float).ravel() for name, v in estimates.items()}
    k = next(iter(rows.values())).size
    if truth is not None:
        truth_values = np.asarray(truth, dtype=float).ravel()
        rows_all = {**rows, truth_label: truth_values}
    else:
        truth_values = None
        rows_all = rows
    if any(v.size != k for v in rows_all.values()):
        raise ValueError("every row needs one value per unit")
    names = list(rows_all)
    heights = np.arange(len(names))[::-1].astype(float)
    fig, (axis,) = panel_axes(ax, 1, panel_size=(7.2, 1.1 * len(names) + 1.2))
    stacked = np.vstack([rows_all[n] for n in names])
    for j in range(k):
        axis.plot(stacked[:, j], heights, color="#b5b5b5", lw=0.8, zorder=1, gid="unit_line")
    labels = []
    for i, name in enumerate(names):
        is_truth = truth_values is not None and i == len(names) - 1
        color = COLORS["truth"] if is_truth else _ROW_COLORS[i % len(_ROW_COLORS)]
        axis.scatter(
            rows_all[name],
            np.full(k, heights[i]),
            s=28,
            color=color,
            zorder=3,
            edgecolors="white",
            linewidths=0.6,
            gid="row",
        )
        label = name
        if truth_values is not None and not is_truth:
            tse = float(np.sum((rows_all[name] - truth_values) ** 2))
            label += f"\nTSE vs {truth_label}: {tse:.4g}"
        labels.append(label)
    if target is not None:
        axis.axvline(target, color=COLORS["complete_pooling"], ls="--", lw=1, gid="target")
        axis.annotate(
            target_label,
            (target, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -2),
            textcoords="offset points",
            va="top",
            fontsize="x-small",
            color="#555555",
        )
    if label_units:
        if units is None:
            raise ValueError("label_units needs units")
        names_of = [str(u) for u in units]
        for unit in label_units:
            j = names_of.index(str(unit))
            axis.annotate(
                str(unit),
                (stacked[0, j], heights[0]),
                xytext=(0, 7),
                textcoords="offset points",
                ha="center",
                fontsize="x-small",
                rotation=35,
            )
    axis.set_yticks(heights, labels)
    axis.set_ylim(-0.5, heights[0] + 0.6)
    for side in ("left", "right", "top"):
        axis.spines[side].set_visible(False)
    axis.tick_params(axis="y", length=0)
    return fig


def baseball_model(data: pd.DataFrame | None = None) -> NormalNormal:
    """Efron & Morris's normal–normal model of the 1970 batting averages.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        Columns ``Player, AB, Hits`` (default: the shipped ``efron_morris_1970``).

    Returns
    -------
    NormalNormal
        Each player's average over his first at-bats, with the sampling
        variance ``σ² = ȳ(1 − ȳ)/AB`` of the pooled rate, as in the paper
        (45 at-bats for every player: one ``σ``).
    """
    from hiermodels import datasets
    from hiermodels.compound import NormalNormal

    data = datasets.load("efron_morris_1970") if data is None else data
    at_bats = data["AB"].to_numpy(float)
    raw = data["Hits"].to_numpy(float) / at_bats
    ybar = raw.mean()
    return NormalNormal(raw, np.sqrt(ybar * (1 - ybar) / at_bats), units=data["Player"].astype(str))


def baseball_estimates(data: pd.DataFrame | None = None) -> pd.DataFrame:
    """Raw averages, James–Stein estimates and rest-of-season truth of 1970.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        Columns ``Player, AB, Hits, RemainingAB, RemainingHits`` (default:
        the shipped ``efron_morris_1970``).

    Returns
    -------
    pandas.DataFrame
        Index ``Player``; columns ``raw`` (hits in the first 45 at-bats / 45),
        ``james_stein`` (towards the grand mean, σ² = ȳ(1 − ȳ)/45 as in the
        paper) and ``truth`` (rest-of-season average).
    """
    from hiermodels import datasets

    data = datasets.load("efron_morris_1970") if data is None else data
    model = baseball_model(data)
    truth = data["RemainingHits"].to_numpy(float) / data["RemainingAB"].to_numpy(float)
    return pd.DataFrame(
        {"raw": model.y, "james_stein": model.james_stein().estimates, "truth": truth},
        index=pd.Index(data["Player"].astype(str), name="Player"),
    )


def plot_efron_morris(
    data: pd.DataFrame | None = None,
    *,
    extra: Mapping[str, ArrayLike] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Efron & Morris's baseball picture: first 45 at-bats, James–Stein, rest of season.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        As for :func:`baseball_estimates`.
    extra : mapping of str to array_like, optional
        More shrunk rows (e.g. EB or full-Bayes means) drawn below James–Stein.
    ax : Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
    """
    table = baseball_estimates(data)
    rows = {"first 45 at-bats": table["raw"], "James–Stein": table["james_stein"]}
    rows.update(extra or {})
    best, worst = table["raw"].idxmax(), table["raw"].idxmin()
    fig = plot_raw_shrunk_truth(
        rows,
        table["truth"],
        truth_label="rest of season",
        units=table.index,
        label_units=[best, worst],
        target=float(table["raw"].mean()),
        target_label="grand mean",
        ax=ax,
    )
    fig.axes[0].set_xlabel("batting average")
    return fig


def plot_risk_curves(
    simulations: Sequence[CompoundSimulation],
    *,
    by: str = "tau",
    relative: bool = True,
    ax: Axes | None = None,
) -> Figure:
    """Simulated risk of each estimator as the prior spread (or ``k``) varies.

    Parameters
    ----------
    simulations : sequence of CompoundSimulation
        From :func:`hiermodels.compound.simulate_compound`, one per x value.
    by : {"tau", "k", "mu"}
        Attribute of the simulations on the x axis.
    relative : bool
        Risk relative to the raw estimator (default) or total squared error.
    ax : Axes, optional
        Axes to draw on.

    Returns
    -------
    matplotlib.figure.Figure
        Points with ±2 Monte Carlo SE bars; dashed lines are the closed-form
        risks where they exist.
    """
    if not simulations:
        raise ValueError("need at least one simulation")
    if by not in ("tau", "k", "mu"):
        raise ValueError(f"by must be 'tau', 'k' or 'mu', got {by!r}")
    sims = sorted(simulations, key=lambda s: getattr(s, by))
    x = np.array([getattr(s, by) for s in sims], dtype=float)
    fig, (axis,) = panel_axes(ax, 1, panel_size=(6.4, 4.2))
    names = [n for n in ESTIMATORS if any(n in s.losses or _has_bayes(s, n) for s in sims)]
    for name in names:
        risk, mcse, theory = _risk_series(sims, name, relative)
        label, color = ESTIMATORS.get(name, (name, "#333333"))
        axis.errorbar(
            x,
            risk,
            yerr=2 * mcse,
            color=color,
            marker="o",
            ms=4,
            lw=1.4,
            capsize=2,
            label=label,
            gid=f"risk_{name}",
        )
        if np.isfinite(theory).any():
            axis.plot(x, theory, color=color, ls="--", lw=1, gid=f"theory_{name}")
    k = sims[0].k
    axis.set_xlabel({"tau": "τ, SD of the true effects", "k": "k, units", "mu": "μ"}[by])
    axis.set_ylabel("risk / risk of raw" if relative else "risk (total squared error)")
    axis.set_title(
        f"Risk over {sims[0].n_rep} simulated data sets" + (f", k = {k}" if by != "k" else "")
    )
    handles, labels = axis.get_legend_handles_labels()
    handles.append(Line2D([], [], color="#555555", ls="--", lw=1))
    labels.append("closed form")
    axis.legend(handles, labels, fontsize="small", loc="best")
    return fig


def _has_bayes(sim: CompoundSimulation, name: str) -> bool:
    return name == "full_bayes" and "full_bayes" in sim.bayes_losses


def _risk_series(
    sims: Sequence[CompoundSimulation], name: str, relative: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    risk, mcse, theory = (np.full(len(sims), np.nan) for _ in range(3))
    for i, sim in enumerate(sims):
        losses = sim.bayes_losses if name == "full_bayes" else sim.losses
        if name not in losses or len(losses) < 2:
            continue
        base = float(losses["raw"].mean()) if relative else 1.0
        risk[i] = float(losses[name].mean()) / base
        mcse[i] = float(losses[name].std(ddof=1) / np.sqrt(len(losses))) / base
        closed = sim.theoretical_risk.get(name)
        if closed is not None:
            theory[i] = closed / (sim.theoretical_risk["raw"] if relative else 1.0)
    return risk, mcse, theory
