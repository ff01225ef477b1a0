"""Hyperparameter posteriors with the MLE and profiles; compound-sampling pictures."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle

import hiermodels as hm
from hiermodels import plots
from tests.plots.conftest import comparison_for
from tests.plots.test_shrinkage_plots import legend_texts, render

# Efron & Morris (1975) total squared errors against the rest of the season
# (tests/compound/test_normal.py holds the same acceptance values).
EM1975_TSE_RAW = 0.0857
EM1975_TSE_JS = 0.0268


@pytest.fixture(scope="module")
def sleep_profiles(sleep_comparison):
    comparison, _, eb = sleep_comparison
    return plots.profile_frames(eb.mle, comparison.hyperparameters["parameter"], n=15)


def test_hyperparameters_one_panel_each_with_histogram_and_mle(sleep_comparison):
    comparison, bayes, eb = sleep_comparison
    fig = plots.plot_hyperparameters(comparison, bayes.idata, bins=25)
    render(fig)
    assert len(fig.axes) == 4
    # the display labels of hiermodels.names, never the API's names
    assert [a.get_title() for a in fig.axes] == [
        "σ for Subject: Intercept",
        "σ for Subject: Days",
        "ρ for Subject: (Intercept, Days)",
        "residual σ",
    ]
    for ax, row in zip(fig.axes, comparison.hyperparameters.itertuples(), strict=True):
        bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_gid() == "posterior"]
        assert len(bars) == 25
        mle = [line for line in ax.lines if line.get_gid() == "mle"]
        assert np.allclose(mle[0].get_xdata(), row.mle)
        assert f"{row.mle_quantile:.2f}" in ax.get_xlabel()
    assert eb.mle.sigma == pytest.approx(comparison.hyperparameters["mle"].iloc[-1])
    assert "marginal MLE (EB plug-in)" in legend_texts(fig)


def test_hyperparameter_draws_pick_the_right_correlation(sleep_comparison):
    _, bayes, _ = sleep_comparison
    draws = plots.hyperparameter_draws(bayes.idata, "corr_Subject[Intercept,Days]")
    expected = bayes.idata["posterior"]["corr_Subject"][..., 0, 1].values.ravel()
    np.testing.assert_array_equal(draws, expected)
    with pytest.raises(KeyError):
        plots.hyperparameter_draws(bayes.idata, "corr_Subject[Days,Weeks]")
    with pytest.raises(KeyError):
        plots.hyperparameter_draws(bayes.idata, "sd_Herd__Intercept")


def test_profiles_cover_the_sds_and_sigma_and_peak_at_the_mle(sleep_comparison, sleep_profiles):
    comparison, _, _ = sleep_comparison
    assert set(sleep_profiles) == {"sd_Subject__Intercept", "sd_Subject__Days", "sigma"}
    mle = comparison.hyperparameters.set_index("parameter")["mle"]
    for name, frame in sleep_profiles.items():
        best = frame.loc[frame["delta"].idxmin()]
        assert best["value"] == pytest.approx(mle[name], rel=1e-6)
        assert best["delta"] == pytest.approx(0.0, abs=1e-6)
        # the grid reaches well into both tails (about 3 standard errors)
        assert frame["delta"].iloc[0] > 4 and frame["delta"].iloc[-1] > 4


def test_profiles_are_drawn_on_twin_axes(sleep_comparison, sleep_profiles):
    comparison, bayes, _ = sleep_comparison
    fig = plots.plot_hyperparameters(comparison, bayes.idata, profiles=sleep_profiles)
    render(fig)
    twins = [a for a in fig.axes if a.get_ylabel() == "relative profile likelihood"]
    assert len(twins) == 3
    for twin in twins:
        (line,) = [ln for ln in twin.lines if ln.get_gid() == "profile"]
        assert max(line.get_ydata()) == pytest.approx(1.0)
        assert twin.get_ylim() == (0.0, 1.08)
    # the correlation has no profile: the legend says "where drawn" and its panel says so
    assert "profile likelihood (right axis, where drawn)" in legend_texts(fig)
    notes = {
        ax.get_title(): [t.get_text() for t in ax.texts if t.get_gid() == "no_profile"]
        for ax in fig.axes
        if ax.get_title()
    }
    assert notes["ρ for Subject: (Intercept, Days)"] == ["no profile likelihood"]
    assert notes["σ for Subject: Days"] == []


def test_a_legend_without_draws_or_profiles_names_only_what_is_drawn(sleep_comparison):
    comparison, _, _ = sleep_comparison
    fig = plots.plot_hyperparameters(comparison)  # no posterior draws, no profiles
    assert legend_texts(fig) == ["marginal MLE (EB plug-in)", "posterior HDI 95%"]
    assert not any(t.get_gid() == "no_profile" for ax in fig.axes for t in ax.texts)


def test_hyperparameters_without_draws_show_the_mle_and_hdi_only(sleep_comparison):
    comparison, _, _ = sleep_comparison
    fig, ax = plt.subplots()
    out = plots.plot_hyperparameters(comparison, parameters=["sigma"], ax=ax)
    assert out is fig
    assert [p for p in ax.patches if p.get_gid() == "posterior"] == []
    (span,) = [p for p in ax.patches if p.get_gid() == "hdi"]
    hdi = comparison.hyperparameters.set_index("parameter").loc["sigma"]
    assert span.get_x() == pytest.approx(hdi["hdi_low"])
    assert span.get_x() + span.get_width() == pytest.approx(hdi["hdi_high"])
    with pytest.raises(KeyError, match="tau"):
        plots.plot_hyperparameters(comparison, parameters=["tau"])


def test_profile_frames_of_a_glmm_are_empty(cbpp_comparison):
    comparison, _, eb = cbpp_comparison
    assert plots.profile_frames(eb.mle, comparison.hyperparameters["parameter"]) == {}


# -------------------------------------------------------------- compound


def test_efron_morris_rows_lines_and_total_squared_errors():
    fig = plots.plot_efron_morris()
    render(fig)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("first 45 at-bats") and labels[-1] == "rest of season"
    tse_raw, tse_js = (float(label.rsplit(" ", 1)[-1]) for label in labels[:2])
    assert tse_raw == pytest.approx(EM1975_TSE_RAW, abs=5e-4)
    assert tse_js == pytest.approx(EM1975_TSE_JS, abs=5e-4)
    unit_lines = [line for line in ax.lines if line.get_gid() == "unit_line"]
    assert len(unit_lines) == 18
    assert all(len(line.get_xdata()) == 3 for line in unit_lines)
    names = {t.get_text() for t in ax.texts}
    assert {"Clemente", "Alvis", "grand mean"} <= names


def test_baseball_estimates_shrink_towards_the_grand_mean():
    table = plots.baseball_estimates()
    assert len(table) == 18
    mean = table["raw"].mean()
    assert np.all(np.abs(table["james_stein"] - mean) < np.abs(table["raw"] - mean) + 1e-12)
    assert table.loc["Clemente", "truth"] == pytest.approx(127 / 367)


def test_raw_shrunk_truth_checks_its_rows():
    with pytest.raises(ValueError, match="one value per unit"):
        plots.plot_raw_shrunk_truth({"raw": [1.0, 2.0, 3.0]}, truth=[1.0, 2.0])
    with pytest.raises(ValueError, match="at least one row"):
        plots.plot_raw_shrunk_truth({})
    fig = plots.plot_raw_shrunk_truth({"raw": [1.0, 2.0, 4.0], "shrunk": [1.5, 2.0, 3.0]})
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["raw", "shrunk"]


@pytest.fixture(scope="module")
def simulations() -> list[hm.compound.CompoundSimulation]:
    return [
        hm.compound.simulate_compound(400, 10, tau=tau, random_seed=3) for tau in (0.5, 1.0, 3.0)
    ]


def test_risk_curves_one_line_per_estimator_relative_to_raw(simulations):
    fig = plots.plot_risk_curves(simulations[::-1])
    render(fig)
    ax = fig.axes[0]
    risk = {c.get_label(): c for c in ax.containers}
    assert set(risk) == {
        "raw (no pooling)",
        "James–Stein",
        "James–Stein, positive part",
        "parametric EB",
        "Bayes rule, true prior",
    }
    x, y = risk["raw (no pooling)"].lines[0].get_data()
    np.testing.assert_allclose(x, [0.5, 1.0, 3.0])
    np.testing.assert_allclose(y, 1.0)
    _, oracle = risk["Bayes rule, true prior"].lines[0].get_data()
    assert np.all(np.diff(oracle) > 0) and np.all(oracle < 1)
    theory = {line.get_gid() for line in ax.lines if (line.get_gid() or "").startswith("theory")}
    assert theory == {"theory_raw", "theory_james_stein", "theory_oracle"}
    assert "k = 10" in ax.get_title()


def test_risk_curves_in_absolute_units_and_bad_axes(simulations):
    ax = plots.plot_risk_curves(simulations, relative=False).axes[0]
    raw = next(c for c in ax.containers if c.get_label() == "raw (no pooling)")
    np.testing.assert_allclose(raw.lines[0].get_ydata(), 10.0, rtol=0.1)  # k × se² = 10
    with pytest.raises(ValueError, match="by"):
        plots.plot_risk_curves(simulations, by="sigma")
    with pytest.raises(ValueError, match="at least one"):
        plots.plot_risk_curves([])


def test_profile_of_an_sd_estimated_at_zero_reaches_out_from_the_boundary():
    with pytest.warns(UserWarning, match="boundary"):
        _, _, eb = comparison_for("dyestuff2", "Yield ~ 1 + (1 | Batch)")
    frames = plots.profile_frames(eb.mle, ["sd_Batch__Intercept"], n=9)
    frame = frames["sd_Batch__Intercept"]
    assert frame["value"].iloc[0] == pytest.approx(1e-3 * eb.mle.sigma)
    assert frame["delta"].iloc[0] == pytest.approx(0.0, abs=1e-3)
    assert frame["delta"].iloc[-1] >= 9.0  # reaches 3 "standard errors" of deviance
    assert np.all(np.diff(frame["delta"]) >= -1e-6)  # flat at 0, then rising
