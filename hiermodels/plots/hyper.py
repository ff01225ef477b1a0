"""Hyperparameter posteriors with the marginal MLE marked, and profile likelihoods.

One panel per SD, correlation and σ: a histogram of the full-Bayes draws, its
HDI, the MLE as a red line — the single value that empirical Bayes plugs in
— and, where a profile of the likelihood is supplied (linear mixed models),
the relative profile likelihood ``exp(−Δdeviance/2)`` on a twin axis, so the
spread of the posterior can be read against the spread of the likelihood.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from hiermodels.names import display_label, sd_name
from hiermodels.plots._common import COLORS, panel_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from hiermodels.mle.results import MixedFit

__all__ = ["hyperparameter_draws", "plot_hyperparameters", "profile_frames"]


def hyperparameter_draws(posterior: Any, parameter: str) -> np.ndarray:
    """Flat posterior draws of one hyperparameter named as in the comparison.

    Parameters
    ----------
    posterior : xarray.Dataset or DataTree
        Posterior group with ``sigma``, ``sd_<g>__<t>`` and ``corr_<g>``.
    parameter : str
        ``"sigma"``, ``"sd_<g>__<t>"`` or ``"corr_<g>[<a>,<b>]"``.

    Returns
    -------
    numpy.ndarray
    """
    if "posterior" in getattr(posterior, "children", {}):
        posterior = posterior["posterior"]
    if parameter.startswith("corr_") and parameter.endswith("]"):
        name = parameter[: parameter.index("[")]
        var = posterior[name]
        dims = [d for d in var.dims if d not in ("chain", "draw")]
        if len(dims) != 2:
            raise KeyError(f"{name} has dims {var.dims}; expected two term dimensions")
        for a in var[dims[0]].values:
            for b in var[dims[1]].values:
                if f"{name}[{a},{b}]" == parameter:
                    return np.asarray(var.sel({dims[0]: a, dims[1]: b})).ravel()
        raise KeyError(f"no {parameter} in the posterior")
    if parameter not in posterior:
        raise KeyError(f"no {parameter} in the posterior")
    return np.asarray(posterior[parameter]).ravel()


def profile_frames(
    mle: MixedFit, parameters: Sequence[str], *, n: int = 31, width: float = 3.0
) -> dict[str, pd.DataFrame]:
    """Profile deviance of every SD and σ of a linear mixed model.

    Uses :func:`hiermodels.mle.profile.profile_sd` over a grid around the
    MLE reaching, on each side, where the deviance has risen by ``width²``
    (about ``width`` standard errors), or down to nearly 0 for an SD whose
    likelihood stays flat there (a boundary MLE). Parameters it cannot profile
    (correlations, GLMMs) are left out.

    Parameters
    ----------
    mle : MixedFit
        A REML or ML fit.
    parameters : sequence of str
        Names as in the comparison's hyperparameter table.
    n : int
        Grid points per parameter.
    width : float
        Reach of the grid: the deviance rises by ``width²`` at its ends.

    Returns
    -------
    dict of str to pandas.DataFrame
        Columns ``value, deviance, delta`` per profiled parameter; empty if
        profiling is not available.
    """
    try:
        from hiermodels.mle.profile import profile_sd
    except ImportError:
        return {}
    if not mle.has_residual:
        return {}
    values = _mle_values(mle)
    scale = max(values.values())
    floor = 1e-3 * scale  # profile values must be positive
    out: dict[str, pd.DataFrame] = {}
    for name in parameters:
        if name not in values:
            continue
        centre = values[name]
        try:
            if centre > 10 * floor:
                low, high = _interior_range(mle, name, centre, floor, width, profile_sd)
            else:
                low, high = floor, _boundary_reach(mle, name, scale, width**2, profile_sd)
            grid = np.linspace(low, high, n)
            out[name] = profile_sd(mle, name, np.union1d(grid, [max(centre, floor)]))
        except (ValueError, np.linalg.LinAlgError):
            continue
    return out


def _interior_range(
    mle: MixedFit, name: str, centre: float, floor: float, width: float, profile_sd: Any
) -> tuple[float, float]:
    """``centre ± width`` standard errors, the SE from the profile's curvature at 3 points."""
    step = 0.1 * centre
    probe = profile_sd(mle, name, [centre - step, centre, centre + step])
    curvature = float(np.polyfit(probe["value"], probe["deviance"], 2)[0])
    # Deviance ≈ (x − x̂)²/se², so se ≈ 1/sqrt(curvature); fall back to the step.
    se = 1.0 / np.sqrt(curvature) if curvature > 0 else 3 * step
    return max(centre - width * se, floor), centre + width * se


def _boundary_reach(mle: MixedFit, name: str, scale: float, reach: float, profile_sd: Any) -> float:
    """For an SD estimated at 0: the value where the deviance has risen by ``reach``.

    Doubles from 5% of the largest SD (at most 12 times).
    """
    high = 0.05 * scale
    for _ in range(12):
        if float(profile_sd(mle, name, [high])["delta"].iloc[0]) >= reach:
            break
        high *= 2
    return high


def _mle_values(mle: MixedFit) -> dict[str, float]:
    values: dict[str, float] = {}
    for row in mle.varcorr.itertuples():
        if row.grp == "Residual":
            values["sigma"] = float(row.sdcor)
        elif not isinstance(row.var2, str):
            values[sd_name(row.grp, row.var1)] = float(row.sdcor)
    return values


def plot_hyperparameters(
    comparison: Any,
    posterior: Any = None,
    *,
    profiles: Mapping[str, pd.DataFrame] | None = None,
    parameters: Sequence[str] | None = None,
    bins: int = 40,
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Posterior of every hyperparameter with its marginal MLE marked.

    Parameters
    ----------
    comparison : ShrinkageComparison
        Its ``hyperparameters`` table gives the MLEs and the HDIs.
    posterior : xarray.Dataset or DataTree, optional
        Full-Bayes draws (``BayesFit.idata``); without them only the MLE
        and the HDI are drawn.
    profiles : mapping of str to pandas.DataFrame, optional
        Profile deviances (columns ``value`` and ``delta``) by parameter
        name, e.g. from :func:`profile_frames`; drawn on a twin axis as the
        relative likelihood ``exp(−delta/2)``.
    parameters : sequence of str, optional
        Which rows of the table to draw (default: all).
    bins : int
        Histogram bins.
    ax : Axes or sequence of Axes, optional
        One axes per parameter.

    Returns
    -------
    matplotlib.figure.Figure
    """
    hyper = getattr(comparison, "hyperparameters", comparison)
    if not isinstance(hyper, pd.DataFrame) or "parameter" not in hyper:
        raise TypeError("expected a ShrinkageComparison or its hyperparameters table")
    if parameters is not None:
        unknown = set(parameters) - set(hyper["parameter"])
        if unknown:
            raise KeyError(f"no hyperparameters {sorted(unknown)} in the comparison")
        hyper = hyper.set_index("parameter").loc[list(parameters)].reset_index()
    profiles = dict(profiles or {})
    own = ax is None
    ncols = 2 if len(hyper) == 4 else min(len(hyper), 3)
    size = (4.4, 3.0) if len(hyper) > 1 else (6.4, 3.4)
    fig, axes = panel_axes(ax, len(hyper), ncols=ncols, panel_size=size)
    prob = getattr(comparison, "ci_prob", None)
    unprofiled: list[Axes] = []
    for axis, row in zip(axes, hyper.itertuples(), strict=True):
        if posterior is not None:
            draws = hyperparameter_draws(posterior, row.parameter)
            axis.hist(
                draws, bins=bins, density=True, color=COLORS["bayes"], alpha=0.45, gid="posterior"
            )
        axis.axvspan(row.hdi_low, row.hdi_high, color=COLORS["bayes"], alpha=0.12, lw=0, gid="hdi")
        axis.axvline(row.mle, color=COLORS["mle"], lw=2, gid="mle")
        axis.set_title(display_label(row.parameter), fontsize="medium")
        axis.set_xlabel(
            f"MLE {row.mle:.3g}, at posterior quantile {row.mle_quantile:.2f}", fontsize="small"
        )
        axis.set_yticks([])
        if row.parameter in profiles:
            _draw_profile(axis, profiles[row.parameter])
        else:
            unprofiled.append(axis)
    pct = f" {round(100 * prob)}%" if prob else ""
    handles: list[Any] = [
        Line2D([], [], color=COLORS["mle"], lw=2, label="marginal MLE (EB plug-in)"),
        Patch(color=COLORS["bayes"], alpha=0.15, label=f"posterior HDI{pct}"),
    ]
    if posterior is not None:
        handles.insert(1, Patch(color=COLORS["bayes"], alpha=0.45, label="full-Bayes posterior"))
    if profiles and len(unprofiled) < len(axes):
        # a legend names only what is drawn: the panels without a profile say so
        where = ", where drawn" if unprofiled else ""
        handles.append(
            Line2D(
                [],
                [],
                color=COLORS["profile"],
                ls="-.",
                label=f"profile likelihood (right axis{where})",
            )
        )
        for axis in unprofiled:
            axis.text(
                0.98,
                0.96,
                "no profile likelihood",
                transform=axis.transAxes,
                ha="right",
                va="top",
                fontsize="x-small",
                color=COLORS["profile"],
                gid="no_profile",
            )
    if own:
        ncol = len(handles) if len(axes) > 2 and not unprofiled else 2
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol)
    else:
        axes[0].legend(handles=handles, loc="upper left", fontsize="x-small")
    return fig


def _draw_profile(ax: Axes, frame: pd.DataFrame) -> None:
    twin = ax.twinx()
    relative = np.exp(-0.5 * frame["delta"].to_numpy(float))
    twin.plot(frame["value"], relative, color=COLORS["profile"], ls="-.", lw=1.4, gid="profile")
    twin.set_ylim(0, 1.08)
    twin.set_ylabel("relative profile likelihood", fontsize="small")
    twin.tick_params(labelsize="x-small")
