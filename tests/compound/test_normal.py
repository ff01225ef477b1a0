"""Normal–normal compound model: James–Stein, ML/REML/moments, PEB, Morris and bootstrap."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import linalg, optimize, stats

from hiermodels.compound import NormalNormal, james_stein
from hiermodels.compound import _normal_math as nm

# Efron & Morris (1975), "Data analysis using Stein's estimator and its
# generalizations", JASA 70, 311–319, Table 1: James–Stein estimates of the
# 1970 batting averages from the first 45 at-bats, Clemente … Alvis.
EM1975_JS = [
    0.294, 0.289, 0.285, 0.280, 0.275, 0.275, 0.270, 0.266, 0.261,
    0.261, 0.256, 0.256, 0.256, 0.256, 0.256, 0.252, 0.247, 0.242,
]  # fmt: skip
# Same paper: c = 1 - (k - 3) sigma^2 / S for these data.
EM1975_FACTOR = 0.2117
# Total squared error against the rest-of-season averages RemainingHits /
# RemainingAB of the shipped file (issue 5 acceptance values).
EM1975_TSE_RAW = 0.0857
EM1975_TSE_JS = 0.0268


def _baseball_model(baseball: pd.DataFrame) -> tuple[NormalNormal, np.ndarray]:
    y = baseball["Hits"].to_numpy() / 45.0
    ybar = y.mean()
    se = np.sqrt(ybar * (1.0 - ybar) / 45.0)  # sigma^2 = ybar (1 - ybar)/45, as in the paper
    return NormalNormal(y, se, units=baseball["Player"]), y


def _normal_sample(
    k: int, tau: float, se: float | list[float] | np.ndarray, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    se = np.broadcast_to(np.asarray(se, dtype=float), (k,))
    theta = 1.5 + tau * rng.standard_normal(k)
    return theta + se * rng.standard_normal(k), se


# --- James–Stein: Efron & Morris (1975) ----------------------------------------------------


def test_james_stein_factor_and_estimates_match_efron_morris_table1(baseball):
    model, _ = _baseball_model(baseball)
    js = model.james_stein()
    assert js.factor == pytest.approx(EM1975_FACTOR, abs=5e-4)
    assert js.units[0] == "Clemente" and js.units[-1] == "Alvis"
    assert_array_equal(np.round(js.estimates, 3), EM1975_JS)


def test_james_stein_total_squared_error_against_rest_of_season(baseball):
    model, y = _baseball_model(baseball)
    truth = (baseball["RemainingHits"] / baseball["RemainingAB"]).to_numpy()
    js = model.james_stein()
    assert np.sum((y - truth) ** 2) == pytest.approx(EM1975_TSE_RAW, abs=5e-4)
    assert np.sum((js.estimates - truth) ** 2) == pytest.approx(EM1975_TSE_JS, abs=5e-4)


def test_positive_part_equals_plain_when_factor_positive_and_truncates_otherwise(baseball):
    model, _ = _baseball_model(baseball)
    assert_array_equal(
        model.james_stein(positive_part=True).estimates, model.james_stein().estimates
    )
    # Nearly equal estimates with a large variance: c < 0 and the positive part pools fully.
    y = np.array([0.0, 0.1, -0.1, 0.05, -0.05])
    plain, plus = james_stein(y, 1.0), james_stein(y, 1.0, positive_part=True)
    assert plain.factor < 0
    assert plus.factor == 0.0
    assert_allclose(plus.estimates, np.full(5, y.mean()), rtol=0, atol=1e-15)


def test_reml_shrinkage_times_k3_over_k1_is_the_james_stein_shrinkage(baseball):
    # Closed forms: REML tau2 = S/(k-1) - sigma^2 so B_reml = (k-1) sigma^2 / S, and the
    # James–Stein shrinkage is (k-3) sigma^2 / S = B_reml (k-3)/(k-1) (Morris 1983).
    model, _ = _baseball_model(baseball)
    fit = model.fit("reml")
    k = model.k
    assert 1.0 - fit.shrinkage[0] * (k - 3) / (k - 1) == pytest.approx(
        model.james_stein().factor, rel=1e-12
    )


def test_james_stein_rejects_what_it_cannot_do():
    with pytest.raises(ValueError, match="k >= 4"):
        james_stein([1.0, 2.0, 3.0], 1.0)
    with pytest.raises(ValueError, match="equal sampling variances"):
        james_stein([1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="all estimates are equal"):
        james_stein([2.0, 2.0, 2.0, 2.0], 1.0)


# --- Eight schools: a boundary fit ----------------------------------------------------------


@pytest.mark.parametrize("method", ["ml", "reml", "mm"])
def test_eight_schools_is_a_boundary_fit_with_pooled_mean(eight_schools, method):
    # tau_hat = 0; mu_hat = sum(y/s^2)/sum(1/s^2) = 7.69 with SE (sum 1/s^2)^(-1/2) = 4.07
    # (closed forms at tau = 0; Gelman et al., BDA3 §5.5: pooled estimate 7.7, se 4.1).
    model = NormalNormal(eight_schools["y"], eight_schools["sigma"], units=eight_schools["school"])
    with pytest.warns(UserWarning, match="complete pooling"):
        fit = model.fit(method)
    assert fit.tau2 == 0.0
    assert fit.boundary
    assert fit.mu == pytest.approx(7.69, abs=5e-3)
    assert fit.mu_se == pytest.approx(4.07, abs=5e-3)
    assert fit.tau2_se is None
    assert_allclose(fit.post_mean, np.full(8, fit.mu), rtol=1e-15)
    assert_array_equal(fit.post_sd, np.zeros(8))
    assert_array_equal(fit.shrinkage, np.ones(8))
    assert np.all(np.isfinite(fit.to_frame().to_numpy()))
    assert "complete pooling" in fit.notes[0]


# --- Closed forms ---------------------------------------------------------------------------


def test_known_tau2_equal_se_gives_the_lecture_formula():
    # p(theta_i | y, mu_hat) = N(B mu_hat + (1 - B) y_i, (1 - B) sigma^2), mu_hat = ybar.
    y, se = _normal_sample(12, 1.0, 0.8, seed=1)
    tau2, sigma2 = 1.3, 0.8**2
    fit = NormalNormal(y, se).fit(tau2=tau2)
    b = sigma2 / (sigma2 + tau2)
    assert fit.method == "fixed"
    assert fit.mu == pytest.approx(y.mean(), rel=1e-14)
    assert_allclose(fit.post_mean, y.mean() + (1.0 - b) * (y - y.mean()), rtol=1e-13)
    assert_allclose(fit.post_sd, np.sqrt((1.0 - b) * sigma2), rtol=1e-14)
    assert_allclose(fit.shrinkage, b, rtol=1e-15)


def test_equal_se_ml_and_reml_closed_forms():
    # Equal variances: tau2_ML = S/k - sigma^2, tau2_REML = tau2_MM = S/(k-1) - sigma^2.
    y, se = _normal_sample(15, 2.0, 1.0, seed=2)
    s, k = np.sum((y - y.mean()) ** 2), y.size
    model = NormalNormal(y, se)
    assert model.fit("ml").tau2 == pytest.approx(s / k - 1.0, rel=1e-13)
    assert model.fit("reml").tau2 == pytest.approx(s / (k - 1) - 1.0, rel=1e-13)
    assert model.fit("mm").tau2 == pytest.approx(s / (k - 1) - 1.0, rel=1e-13)
    # Expected information of tau2 with equal variances: Var = 2 (sigma^2 + tau2)^2 / k.
    fit = model.fit("ml")
    assert fit.tau2_se == pytest.approx(np.sqrt(2.0 / k) * (1.0 + fit.tau2), rel=1e-12)


def _ml_reference(y: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Joint maximisation of sum log N(y_i | mu, v_i + tau2) over (mu, tau2 >= 0)."""
    res = optimize.minimize(
        lambda p: -np.sum(stats.norm.logpdf(y, p[0], np.sqrt(v + p[1]))),
        [y.mean(), y.var()],
        method="L-BFGS-B",
        bounds=[(None, None), (0.0, None)],
        options={"ftol": 1e-15, "gtol": 1e-12},
    )
    return res.x


def _reml_reference(y: np.ndarray, v: np.ndarray) -> float:
    """REML as the likelihood of k-1 error contrasts K'y ~ N(0, K' V K), K orthogonal to 1."""
    k = y.size
    q, _ = linalg.qr(np.ones((k, 1)))
    contrasts = q[:, 1:]

    def nll(t: float) -> float:
        cov = contrasts.T @ np.diag(v + t) @ contrasts
        return -stats.multivariate_normal.logpdf(contrasts.T @ y, cov=cov)

    return optimize.minimize_scalar(nll, bounds=(0.0, 50.0), method="bounded",
                                    options={"xatol": 1e-10}).x  # fmt: skip


def test_unequal_se_ml_and_reml_match_independent_likelihoods():
    y, se = _normal_sample(9, 1.5, [0.5, 1, 2, 1.5, 0.7, 1.2, 3, 1, 0.9], seed=3)
    v = se**2
    model = NormalNormal(y, se)
    mu_ref, tau2_ref = _ml_reference(y, v)
    ml = model.fit("ml")
    assert ml.tau2 == pytest.approx(tau2_ref, rel=1e-5)
    assert ml.mu == pytest.approx(mu_ref, rel=1e-5)
    assert model.fit("reml").tau2 == pytest.approx(_reml_reference(y, v), rel=1e-6)
    # Sanity of the references: REML exceeds ML here, as it corrects ML's downward bias.
    assert model.fit("reml").tau2 > ml.tau2


def test_unequal_se_boundary_is_exactly_zero():
    # Estimates far closer together than their SEs: the score at tau2 = 0 is negative.
    se = np.array([1.0, 2.0, 3.0, 1.5, 2.5])
    y = np.array([0.1, -0.1, 0.2, 0.0, -0.2])
    for method in ("ml", "reml", "mm"):
        with pytest.warns(UserWarning, match="complete pooling"):
            assert NormalNormal(y, se).fit(method).tau2 == 0.0


def test_moments_is_dersimonian_laird():
    # DerSimonian & Laird (1986): tau2 = max(0, (Q - (k-1)) / (sum w - sum w^2/sum w)), w = 1/se^2.
    y, se = _normal_sample(10, 2.0, np.linspace(0.5, 2.0, 10), seed=4)
    w = 1.0 / se**2
    q = np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2)
    expected = max(0.0, (q - 9) / (w.sum() - np.sum(w**2) / w.sum()))
    assert expected > 0
    assert NormalNormal(y, se).fit("mm").tau2 == pytest.approx(expected, rel=1e-13)


def test_mu_se_uses_prior_plus_sampling_variance():
    y, se = _normal_sample(7, 1.0, [0.5, 1, 2, 1.5, 0.7, 1.2, 3], seed=5)
    fit = NormalNormal(y, se).fit("reml")
    assert fit.mu_se == pytest.approx(np.sum(1.0 / (se**2 + fit.tau2)) ** -0.5, rel=1e-13)


# --- Morris (1983) intervals ----------------------------------------------------------------


def test_morris_means_are_james_stein_and_variances_follow_the_formula(baseball):
    model, y = _baseball_model(baseball)
    intervals = model.morris_intervals()
    k, v = model.k, float(model.se[0] ** 2)
    # Morris (1983): B = (k-3)/(k-1) V/(V + A), A = max(0, S/(k-1) - V); with A > 0 this is
    # the James–Stein shrinkage, so the means are the Efron–Morris estimates.
    assert_allclose(intervals.mean, model.james_stein().estimates, rtol=1e-12)
    b = 1.0 - model.james_stein().factor
    var = v * (1 - (k - 1) / k * b) + 2.0 / (k - 3) * b**2 * (y - y.mean()) ** 2
    assert_allclose(intervals.sd, np.sqrt(var), rtol=1e-12)
    z = stats.norm.ppf(0.975)
    assert_allclose(intervals.upper - intervals.lower, 2 * z * np.sqrt(var), rtol=1e-12)


def test_morris_intervals_cover_in_the_compound_model_where_plug_in_ones_fail():
    # Frequentist coverage over theta ~ N(0, tau^2), y ~ N(theta, 1), k = 8: Morris's
    # corrections restore nominal coverage; the plug-in intervals collapse when tau2_hat = 0.
    rng = np.random.default_rng(6)
    reps, k = 4000, 8
    theta = 0.7 * rng.standard_normal((reps, k))
    y = theta + rng.standard_normal((reps, k))
    v = np.ones(k)
    z = stats.norm.ppf(0.975)
    mean, var, _, _ = nm.morris_batch(y, v)
    morris = np.mean(np.abs(theta - mean) <= z * np.sqrt(var))
    tau2 = nm.estimate_tau2(y, v, "reml")
    mu, _ = nm.gls_mean(y, v, tau2)
    pmean, psd, _ = nm.peb_posterior(y, v, mu, tau2)
    plug_in = np.mean(np.abs(theta - pmean) <= z * psd)
    assert morris >= 0.935
    assert plug_in < 0.80


def test_morris_intervals_stay_open_at_the_boundary(eight_schools):
    model = NormalNormal(eight_schools["y"], eight_schools["sigma"])
    intervals = model.morris_intervals()
    assert np.all(intervals.width > 0)
    assert np.all(np.isfinite(intervals.to_frame().to_numpy()))


# --- Laird & Louis (1987) bootstrap ---------------------------------------------------------


def test_mixture_quantiles_of_identical_components_are_normal_quantiles():
    means = np.tile([0.0, 3.0], (50, 1))
    sds = np.tile([1.0, 2.0], (50, 1))
    q = nm.mixture_quantiles(means, sds, np.array([0.025, 0.975]))
    assert_allclose(q, [[-1.959964, 3 - 2 * 1.959964], [1.959964, 3 + 2 * 1.959964]], atol=1e-6)


def test_mixture_quantiles_of_point_masses_are_order_statistics():
    means = np.arange(10.0)[:, None]
    q = nm.mixture_quantiles(means, np.zeros_like(means), np.array([0.25, 0.75]))
    # The 0.25 quantile of 10 equal point masses at 0..9 is the 3rd smallest, 2.
    assert_allclose(q[:, 0], [2.0, 7.0], atol=1e-9)


def test_bootstrap_intervals_widen_the_collapsed_boundary_intervals(eight_schools):
    model = NormalNormal(eight_schools["y"], eight_schools["sigma"])
    with pytest.warns(UserWarning, match="complete pooling"):
        naive = model.fit("ml").intervals()
    boot = model.bootstrap_intervals("ml", n_boot=1000, random_seed=7)
    assert np.all(naive.width == 0)
    assert np.all(boot.width > 1.0)
    assert np.all(np.isfinite(boot.to_frame().to_numpy()))
    again = model.bootstrap_intervals("ml", n_boot=1000, random_seed=7)
    assert_array_equal(boot.lower, again.lower)


def test_bootstrap_intervals_improve_coverage_over_plug_in():
    rng = np.random.default_rng(8)
    reps, k = 150, 8
    theta = 0.7 * rng.standard_normal((reps, k))
    y = theta + rng.standard_normal((reps, k))
    boot_hits = plug_hits = 0.0
    with pytest.warns(UserWarning):
        for r in range(reps):
            model = NormalNormal(y[r], 1.0)
            b = model.bootstrap_intervals("ml", n_boot=400, random_seed=r)
            p = model.fit("ml").intervals()
            boot_hits += np.mean((theta[r] >= b.lower) & (theta[r] <= b.upper))
            plug_hits += np.mean((theta[r] >= p.lower) & (theta[r] <= p.upper))
    assert boot_hits / reps > plug_hits / reps + 0.2
    assert boot_hits / reps > 0.85


# --- Input checks and immutability ----------------------------------------------------------


def test_invalid_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="se must be positive"):
        NormalNormal([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        NormalNormal([1.0, np.nan], 1.0)
    with pytest.raises(ValueError, match="at least 2 units"):
        NormalNormal([1.0], 1.0)
    with pytest.raises(ValueError, match="method"):
        NormalNormal([1.0, 2.0, 3.0], 1.0).fit("bayes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tau2"):
        NormalNormal([1.0, 2.0, 3.0], 1.0).fit(tau2=-1.0)


def test_results_are_immutable(baseball):
    model, _ = _baseball_model(baseball)
    fit = model.fit("reml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.mu = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        fit.post_mean[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        model.y[0] = 0.0
