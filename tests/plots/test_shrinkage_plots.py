"""Shrinkage arrows, the 2-D picture, caterpillars and shrinkage factors: what is drawn."""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.patches import FancyArrowPatch
from scipy import stats

import hiermodels as hm
from hiermodels import plots
from tests.plots.conftest import comparison_for


def render(fig: plt.Figure) -> bytes:
    """PNG bytes of the figure (drawn in memory: every artist is laid out)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=60)
    data = buffer.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return data


def arrows(ax: plt.Axes, kind: str) -> list[FancyArrowPatch]:
    return [p for p in ax.patches if isinstance(p, FancyArrowPatch) and p.get_gid() == kind]


def points(ax: plt.Axes, gid: str) -> np.ndarray:
    found = [c for c in ax.collections if isinstance(c, PathCollection) and c.get_gid() == gid]
    return np.vstack([c.get_offsets() for c in found]) if found else np.empty((0, 2))


def legend_texts(fig: plt.Figure) -> list[str]:
    legends = [*fig.legends, *(a.get_legend() for a in fig.axes if a.get_legend())]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def rows_of(comparison: hm.ShrinkageComparison, term: str) -> pd.DataFrame:
    return comparison.table[comparison.table["term"] == term].set_index("grp")


# ----------------------------------------------------------------- arrows


def test_arrows_one_panel_per_term_two_arrows_per_group(sleep_comparison):
    comparison, _, _ = sleep_comparison
    fig = plots.plot_shrinkage(comparison)
    render(fig)
    assert [a.get_title() for a in fig.axes] == ["Intercept", "Days"]
    for ax in fig.axes:
        assert len(arrows(ax, "eb_arrow")) == 18
        assert len(arrows(ax, "bayes_arrow")) == 18
        assert len(points(ax, "no_pooling")) == 18
    assert {"empirical Bayes", "full Bayes"} <= set(legend_texts(fig))


def test_arrows_rows_are_sorted_by_no_pooling_and_values_are_group_coefficients(
    sleep_comparison,
):
    comparison, _, eb = sleep_comparison
    fig = plots.plot_shrinkage(comparison)
    ax = fig.axes[0]
    rows = rows_of(comparison, "Intercept")
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == list(rows["no_pooling"].sort_values().index.astype(str))
    start = points(ax, "no_pooling")
    expected = np.sort(rows["no_pooling"].to_numpy()) + eb.mle.fixef["Intercept"]
    np.testing.assert_allclose(start[:, 0], expected)
    eb_x = points(ax, "eb")[:, 0]
    np.testing.assert_allclose(
        eb_x, rows.loc[labels, "eb_mean"].to_numpy() + eb.mle.fixef["Intercept"]
    )
    # the dashed complete-pooling line sits at the population coefficient
    pooled = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert pooled and np.allclose(pooled[0].get_xdata(), eb.mle.fixef["Intercept"])


def test_arrows_on_the_effect_scale_pool_at_zero(sleep_comparison):
    comparison, _, _ = sleep_comparison
    ax = plots.plot_shrinkage(comparison, terms=["Days"], scale="effect").axes[0]
    pooled = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert np.allclose(pooled[0].get_xdata(), 0.0)
    assert "group effect" in ax.get_xlabel()


def test_arrows_cap_the_number_of_groups(sleep_comparison):
    comparison, _, _ = sleep_comparison
    fig = plots.plot_shrinkage(comparison, terms=["Intercept"], max_groups=6)
    ax = fig.axes[0]
    assert len(ax.get_yticks()) == 6
    assert len(arrows(ax, "eb_arrow")) == 6
    assert "6 of 18" in fig.get_suptitle()


def test_groups_without_own_estimate_are_marked_and_get_no_arrow(sleep_comparison):
    comparison, _, _ = sleep_comparison
    table = comparison.table.copy()
    hole = (table["grp"] == "309") & (table["term"] == "Intercept")
    table.loc[hole, "no_pooling"] = np.nan
    table.loc[hole, "no_pooling_estimable"] = False
    fig = plots.plot_shrinkage(table, terms=["Intercept"])
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert "309 †" in labels
    assert len(arrows(ax, "eb_arrow")) == 17
    assert len(points(ax, "eb")) == 18
    assert any("no per-group estimate" in t for t in legend_texts(fig))


def test_short_arrows_lose_their_head_but_are_still_drawn(sleep_comparison):
    comparison, _, _ = sleep_comparison
    ax = plots.plot_shrinkage(comparison, terms=["Days"]).axes[0]
    styles = {type(a.get_arrowstyle()).__name__ for a in arrows(ax, "eb_arrow")}
    # subject 369's no-pooling slope is within 2% of the axis of its EB estimate
    assert styles == {"CurveFilledB", "Curve"}


def test_arrows_draw_on_given_axes_and_check_their_number(sleep_comparison):
    comparison, _, _ = sleep_comparison
    fig, axes = plt.subplots(1, 2)
    assert plots.plot_shrinkage(comparison, ax=axes) is fig
    assert len(arrows(axes[1], "bayes_arrow")) == 18
    with pytest.raises(ValueError, match="2 panel"):
        plots.plot_shrinkage(comparison, ax=axes[0])


def test_arrows_reject_unknown_factor_term_and_scale(sleep_comparison):
    comparison, _, _ = sleep_comparison
    with pytest.raises(KeyError, match="Subject"):
        plots.plot_shrinkage(comparison, grpvar="Herd")
    with pytest.raises(KeyError, match="Weeks"):
        plots.plot_shrinkage(comparison, terms=["Weeks"])
    with pytest.raises(ValueError, match="scale"):
        plots.plot_shrinkage(comparison, scale="logit")
    with pytest.raises(TypeError, match="ShrinkageComparison"):
        plots.plot_shrinkage([1, 2, 3])


def test_arrows_of_a_glmm_are_on_the_link_scale_with_only_eb_when_bayes_is_missing(
    cbpp_comparison,
):
    comparison, _, _ = cbpp_comparison
    fig = plots.plot_shrinkage(comparison)
    render(fig)
    ax = fig.axes[0]
    assert len(arrows(ax, "eb_arrow")) == comparison.table["no_pooling_estimable"].sum()
    assert "linear-predictor scale" in ax.get_xlabel()
    eb_only = comparison.table.drop(columns=[c for c in comparison.table if "bayes" in c])
    ax = plots.plot_shrinkage(eb_only).axes[0]
    assert arrows(ax, "bayes_arrow") == []
    assert len(arrows(ax, "eb_arrow")) == 15


# --------------------------------------------------------------------- 2-D


def test_2d_panels_arrows_and_shared_limits(sleep_comparison):
    comparison, _, _ = sleep_comparison
    fig = plots.plot_shrinkage_2d(comparison)
    render(fig)
    eb_ax, fb_ax = fig.axes
    assert len(arrows(eb_ax, "eb_arrow")) == 18 and arrows(eb_ax, "bayes_arrow") == []
    assert len(arrows(fb_ax, "bayes_arrow")) == 18
    assert eb_ax.get_xlim() == fb_ax.get_xlim() and eb_ax.get_ylim() == fb_ax.get_ylim()
    assert "Intercept" in eb_ax.get_xlabel() and "Days" in eb_ax.get_ylabel()
    rows = rows_of(comparison, "Days")
    np.testing.assert_allclose(
        np.sort(points(fb_ax, "bayes")[:, 1]),
        np.sort(rows["bayes_mean"] + rows["population_coef"]),
    )


def test_2d_ellipses_are_contours_of_the_fitted_population(sleep_comparison):
    comparison, _, eb = sleep_comparison
    ax = plots.plot_shrinkage_2d(comparison, which=["eb"]).axes[0]
    ellipses = [line for line in ax.lines if line.get_gid() == "ellipse"]
    assert len(ellipses) == 2
    vc = eb.mle.varcorr
    sd0, sd1, rho = vc["sdcor"].iloc[:3]
    cov = np.array([[sd0**2, rho * sd0 * sd1], [rho * sd0 * sd1, sd1**2]])
    centre = eb.mle.fixef.to_numpy()
    outer = np.column_stack([ellipses[1].get_xdata(), ellipses[1].get_ydata()]) - centre
    distance = np.einsum("ni,ij,nj->n", outer, np.linalg.inv(cov), outer)
    np.testing.assert_allclose(distance, stats.chi2.ppf(0.95, 2), rtol=1e-9)
    np.testing.assert_allclose(
        plots.population_covariance(comparison, "Subject", ("Intercept", "Days"), eb.mle), cov
    )


def test_2d_needs_two_terms(cbpp_comparison):
    comparison, _, _ = cbpp_comparison
    with pytest.raises(ValueError, match="two terms"):
        plots.plot_shrinkage_2d(comparison)


# -------------------------------------------------------------- caterpillar


def test_caterpillar_three_intervals_per_group_sorted(sleep_comparison):
    comparison, _, eb = sleep_comparison
    fig = plots.plot_caterpillar(comparison)
    render(fig)
    ax = fig.axes[0]
    rows = rows_of(comparison, "Intercept").sort_values("eb_mean")
    assert [t.get_text() for t in ax.get_yticklabels()] == list(rows.index)
    segments = {
        c.get_gid(): np.array(c.get_segments())
        for c in ax.collections
        if isinstance(c, LineCollection)
    }
    assert set(segments) == {"eb", "eb_corrected", "bayes"}
    assert all(len(s) == 18 for s in segments.values())
    width = {k: s[:, 1, 0] - s[:, 0, 0] for k, s in segments.items()}
    assert np.all(width["eb_corrected"] >= width["eb"] - 1e-9)
    np.testing.assert_allclose(
        segments["bayes"][:, 0, 0],
        rows["bayes_low"].to_numpy() + eb.mle.fixef["Intercept"],
    )
    assert "EB corrected 95%" in legend_texts(fig)  # compare_shrinkage's default ci_prob


def test_caterpillar_of_many_groups_drops_the_names(classroom_comparison):
    comparison, _, _ = classroom_comparison
    fig = plots.plot_caterpillar(comparison, "schoolid:classid", show=["eb", "bayes"])
    render(fig)
    ax = fig.axes[0]
    assert len(ax.get_yticks()) == 0
    assert "312 groups" in ax.get_ylabel()
    # plain EB is a band over the sorted groups, full Bayes its two edges
    rows = comparison.table[comparison.table["grpvar"] == "schoolid:classid"]
    shift = rows["population_coef"].iloc[0]
    (band,) = [c for c in ax.collections if c.get_gid() == "eb"]
    x = band.get_paths()[0].vertices[:, 0]
    assert x.min() == pytest.approx(rows["eb_low"].min() + shift)
    assert x.max() == pytest.approx(rows["eb_high"].max() + shift)
    edges = [line for line in ax.lines if line.get_gid() == "bayes"]
    # each edge steps along the groups exactly as the band does: two vertices per group
    assert len(edges) == 2 and all(len(e.get_xdata()) == 2 * 312 for e in edges)
    ordered = rows.sort_values("eb_mean", kind="stable")
    np.testing.assert_allclose(edges[0].get_xdata(), np.repeat(ordered["bayes_low"] + shift, 2))
    band_y = band.get_paths()[0].vertices[:, 1]
    assert edges[0].get_ydata().min() == pytest.approx(band_y.min())
    assert edges[0].get_ydata().max() == pytest.approx(band_y.max())
    assert "full Bayes 95% (edges)" in legend_texts(fig)
    (centre,) = [line for line in ax.lines if line.get_gid() == "centre"]
    assert np.all(np.diff(centre.get_xdata()) >= 0)


def test_caterpillar_ci_prob_labels_the_legend(sleep_comparison):
    comparison, _, _ = sleep_comparison
    assert "EB 80%" in legend_texts(plots.plot_caterpillar(comparison, ci_prob=0.8))
    with pytest.warns(DeprecationWarning, match="interval= is deprecated.*use ci_prob="):
        fig = plots.plot_caterpillar(comparison, interval=0.8)
    assert "EB 80%" in legend_texts(fig)
    with pytest.raises(TypeError, match="pass ci_prob= only"):
        plots.plot_caterpillar(comparison, ci_prob=0.8, interval=0.8)
    with pytest.raises(ValueError, match="ci_prob must be in"):
        plots.plot_caterpillar(comparison, ci_prob=94)


def test_caterpillar_rejects_bad_options(sleep_comparison):
    comparison, _, _ = sleep_comparison
    with pytest.raises(ValueError, match="show"):
        plots.plot_caterpillar(comparison, show=["mle"])
    with pytest.raises(KeyError, match="sort"):
        plots.plot_caterpillar(comparison, sort_by="nope")


# ------------------------------------------------------- shrinkage factor


def test_factor_of_equal_sized_groups_is_a_strip_per_estimate(sleep_comparison):
    comparison, _, _ = sleep_comparison
    fig = plots.plot_shrinkage_factor(comparison, ylim=(-0.25, 1.25))
    render(fig)
    assert len(fig.axes) == 2
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["every group: n = 10"]
        clipped = points(ax, "clipped")
        drawn = len(points(ax, "eb")) + len(points(ax, "bayes")) + len(clipped)
        assert drawn == 36
        low, high = ax.get_ylim()
        assert low < -0.25 and high > 1.25
        assert np.all((clipped[:, 1] == -0.25) | (clipped[:, 1] == 1.25))
    assert ("outside the range" in legend_texts(fig)) == any(
        len(points(ax, "clipped")) for ax in fig.axes
    )


def test_factors_outside_0_1_are_listed_ringed_and_named(sleep_comparison):
    comparison, _, _ = sleep_comparison
    table = comparison.table
    outside = plots.out_of_range_factors(comparison)
    # every estimate whose factor is finite and outside [0, 1], and no other
    for kind in ("eb", "bayes"):
        factor = table[f"{kind}_shrinkage"]
        expected = table.loc[(factor < 0) | (factor > 1), "grp"].tolist()
        assert outside.loc[outside["estimate"] == kind, "grp"].tolist() == expected
    assert ((outside["factor"] < 0) | (outside["factor"] > 1)).all()
    assert len(outside) > 0  # the intercept and slope of sleepstudy are shrunk together
    fig = plots.plot_shrinkage_factor(comparison)
    render(fig)
    for ax, term in zip(fig.axes, ["Intercept", "Days"], strict=True):
        mine = outside[outside["term"] == term]
        rings = points(ax, "outside_ring")
        assert len(rings) == len(mine)  # the default range takes in every factor in [−1, 2]
        np.testing.assert_allclose(np.sort(rings[:, 1]), np.sort(mine["factor"]))
        names = " ".join(t.get_text() for t in ax.texts if t.get_gid() == "outside_names")
        for level in mine["grp"].unique():
            assert str(level) in names
        bands = [p for p in ax.patches if p.get_gid() == "outside_band"]
        assert len(bands) == int((mine["factor"] > 1).any()) + int((mine["factor"] < 0).any())
    assert any(text.startswith("outside [0, 1] (ringed)") for text in legend_texts(fig))


def test_factor_of_a_random_intercept_follows_the_textbook_curve():
    comparison, _, eb = comparison_for("dyestuff", "Yield ~ 1 + (1 | Batch)")
    ax = plots.plot_shrinkage_factor(comparison).axes[0]
    curve = [line for line in ax.lines if line.get_gid() == "textbook_curve"]
    assert len(curve) == 1
    clipped = len(points(ax, "clipped")) > 0
    assert ("outside the range" in legend_texts(ax.figure)) == clipped
    sigma = eb.mle.sigma
    tau = eb.mle.varcorr["sdcor"].iloc[0]
    expected = sigma**2 / (sigma**2 + 5 * tau**2)
    # balanced groups of 5: every EB factor is σ²/(σ² + 5τ²)
    np.testing.assert_allclose(points(ax, "eb")[:, 1], expected, rtol=1e-6)
    x, y = curve[0].get_data()
    np.testing.assert_allclose(np.interp(5, x, y), expected, rtol=1e-3)


def test_factor_uses_a_log_axis_with_plain_ticks_for_spread_out_sizes(classroom_comparison):
    comparison, _, _ = classroom_comparison
    fig = plots.plot_shrinkage_factor(comparison, grpvar="schoolid")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "5", "10", "20"]
    assert ax.get_title() == "schoolid: Intercept"
    assert [line for line in ax.lines if line.get_gid() == "textbook_curve"] == []
    n_schools = comparison.table["grpvar"].eq("schoolid").sum()
    assert len(points(ax, "eb")) + len(points(ax, "clipped")) >= n_schools


def test_factor_legend_mentions_clipping_only_when_something_was_clipped(cbpp_comparison):
    comparison, _, _ = cbpp_comparison
    fig = plots.plot_shrinkage_factor(comparison)
    ax = fig.axes[0]
    assert len(points(ax, "clipped")) == 0
    legend = legend_texts(fig)
    assert legend[:2] == ["empirical Bayes", "full Bayes"]
    assert not any("outside the range" in text for text in legend)
    # the bands above 1 and below 0 are in the legend exactly when a factor is in them
    outside = len(plots.out_of_range_factors(comparison)) > 0
    assert (len(legend) == 3 and legend[2].startswith("outside [0, 1]")) == outside
    assert len(points(ax, "eb")) == comparison.table["eb_shrinkage"].notna().sum()
    assert ax.get_xscale() == "linear"  # 1 to 4 periods per herd


def test_caterpillar_draws_the_bootstrap_interval_where_the_eb_fit_has_it(sleep_comparison):
    comparison, _, _ = sleep_comparison
    with pytest.raises(ValueError, match="interval='bootstrap'"):
        plots.plot_caterpillar(comparison, show=["eb", "eb_bootstrap"])
    booted, _, eb = comparison_for(
        "sleepstudy", "Reaction ~ Days + (Days | Subject)", interval="bootstrap", nsim=60
    )
    fig = plots.plot_caterpillar(booted, show=["eb", "eb_bootstrap"])
    render(fig)
    segments = {
        c.get_gid(): np.array(c.get_segments())
        for c in fig.axes[0].collections
        if isinstance(c, LineCollection)
    }
    rows = rows_of(booted, "Intercept").sort_values("eb_mean")
    np.testing.assert_allclose(
        segments["eb_bootstrap"][:, 1, 0],
        rows["eb_high_bootstrap"].to_numpy() + eb.mle.fixef["Intercept"],
    )
    assert "EB bootstrap 95%" in legend_texts(fig)
    assert "eb_bootstrap" in {
        c.get_gid() for c in plots.plot_caterpillar(booted).axes[0].collections
    }
