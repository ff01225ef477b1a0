"""Confidence and prediction intervals of ``MixedFit.predict``.

References: tests/reference/lme4/sleepstudy_slope_reml_predict.json and
cbpp_binomial_laplace_predict.json, made by make_predict_interval_reference.R
there from lme4 1.1-31's fits (the standard errors of lme4 1.1-35's
``predict(se.fit = TRUE)``, computed from the fit's penalised system, which
that script checks against the inverse of the whole system and ``condVar``).
Beside them: the closed forms of a balanced random-intercept model, the
posterior predictive of a full-Bayes fit, and coverage in simulation.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

import hiermodels as hm
from hiermodels.design.design import build_design
from hiermodels.mle.fit import fit_lmm
from tests.reference.lme4_names import REFERENCE_DIR


def _reference(name: str) -> dict[str, Any]:
    return json.loads((REFERENCE_DIR / f"{name}.json").read_text())


SLEEP_REF = _reference("sleepstudy_slope_reml_predict")
CBPP_REF = _reference("cbpp_binomial_laplace_predict")


@pytest.fixture(scope="module")
def sleep_fit() -> hm.MixedFit:
    return hm.Model("Reaction ~ Days + (Days | Subject)", hm.datasets.load("sleepstudy")).fit_mle()


@pytest.fixture(scope="module")
def cbpp_fit() -> hm.MixedFit:
    model = hm.Model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        hm.datasets.load("cbpp"),
        family="binomial",
    )
    # glmer's evaluation of the Laplace approximation, to compare with its numbers
    return model.fit_mle(laplace="glmer")


def _sleep_newdata() -> pd.DataFrame:
    return pd.DataFrame(SLEEP_REF["newdata"]).astype({"Subject": str})


# ----------------------------------------------------------------- lme4


@pytest.mark.parametrize(("kind", "include_random"), [("conditional", True), ("population", False)])
def test_sleepstudy_intervals_match_lme4(
    sleep_fit: hm.MixedFit, kind: str, include_random: bool
) -> None:
    ref = SLEEP_REF[kind]
    new = _sleep_newdata()
    confidence = sleep_fit.predict(new, interval="confidence", include_random=include_random)
    prediction = sleep_fit.predict(new, interval="prediction", include_random=include_random)
    np.testing.assert_allclose(confidence["estimate"], ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(confidence["se"], ref["se_confidence"], rtol=1e-4)
    np.testing.assert_allclose(prediction["estimate"], ref["estimate"], rtol=1e-6)
    np.testing.assert_allclose(prediction["se"], ref["se_prediction"], rtol=1e-4)
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(
        prediction["upper"] - prediction["lower"],
        2 * z * np.asarray(ref["se_prediction"]),
        rtol=1e-4,
    )


def test_population_intervals_need_no_grouping_column(sleep_fit: hm.MixedFit) -> None:
    new = _sleep_newdata().drop(columns="Subject")
    table = sleep_fit.predict(new, interval="prediction", include_random=False)
    np.testing.assert_allclose(table["se"], SLEEP_REF["population"]["se_prediction"], rtol=1e-4)
    confidence = sleep_fit.predict(new, interval="confidence", include_random=False)
    np.testing.assert_allclose(
        confidence["se"], SLEEP_REF["population"]["se_confidence"], rtol=1e-4
    )


@pytest.mark.parametrize(("kind", "include_random"), [("conditional", True), ("population", False)])
def test_cbpp_confidence_intervals_match_lme4(
    cbpp_fit: hm.MixedFit, kind: str, include_random: bool
) -> None:
    ref = CBPP_REF[kind]
    new = pd.DataFrame(CBPP_REF["newdata"]).astype(str)
    link = cbpp_fit.predict(new, interval="confidence", scale="link", include_random=include_random)
    np.testing.assert_allclose(link["estimate"], ref["estimate"], rtol=1e-4)
    np.testing.assert_allclose(link["se"], ref["se_confidence"], rtol=1e-4)
    # the response scale maps the link-scale interval through the inverse logit
    response = cbpp_fit.predict(new, interval="confidence", include_random=include_random)
    np.testing.assert_allclose(response["se"], link["se"])
    for column in ("estimate", "lower", "upper"):
        np.testing.assert_allclose(response[column], special.expit(link[column]), rtol=1e-12)
    assert np.all(response["lower"] < response["estimate"])
    assert np.all(response["estimate"] < response["upper"])


def test_glmm_prediction_interval_is_refused(cbpp_fit: hm.MixedFit) -> None:
    new = pd.DataFrame(CBPP_REF["newdata"]).astype(str)
    with pytest.raises(ValueError, match=r"Gaussian models only.*interval='confidence'"):
        cbpp_fit.predict(new, interval="prediction")


# ------------------------------------------------------------ closed forms


def test_balanced_random_intercept_closed_forms() -> None:
    """``y = μ + b_i + e``, ``m`` groups of ``n``: every variance has a closed form.

    With ``v = τ² + σ²/n`` and the shrinkage ``λ = τ²/v``: ``μ̂`` is the grand
    mean with variance ``v/m``; a seen group's ``μ̂ + λ(ȳ_i − μ̂)`` has
    estimation error variance ``(1 − λ)² v/m + (1 − λ) τ²``; a new group's
    prediction ``μ̂`` has prediction variance ``v/m + τ² + σ²``.
    """
    rng = np.random.default_rng(7)
    m, n = 9, 4
    groups = np.repeat([f"g{i}" for i in range(m)], n)
    y = 3.0 + np.repeat(1.5 * rng.standard_normal(m), n) + rng.standard_normal(m * n)
    data = pd.DataFrame({"y": y, "g": groups})
    fit = hm.Model("y ~ 1 + (1 | g)", data).fit_mle()
    sigma2 = fit.sigma**2
    tau2 = float(fit.varcorr["vcov"].iloc[0])
    v = tau2 + sigma2 / n
    shrink = tau2 / v
    assert fit.vcov_beta[0, 0] == pytest.approx(v / m, rel=1e-8)

    new = pd.DataFrame({"g": ["g0", "g5", "unseen"]})
    confidence = fit.predict(new, interval="confidence")
    prediction = fit.predict(new, interval="prediction")
    grand = y.mean()
    means = data.groupby("g")["y"].mean()
    expected = [
        grand + shrink * (means["g0"] - grand),
        grand + shrink * (means["g5"] - grand),
        grand,
    ]
    np.testing.assert_allclose(confidence["estimate"], expected, rtol=1e-8)
    seen = (1 - shrink) ** 2 * v / m + (1 - shrink) * tau2
    np.testing.assert_allclose(confidence["se"] ** 2, [seen, seen, v / m], rtol=1e-8)
    np.testing.assert_allclose(
        prediction["se"] ** 2, [seen + sigma2, seen + sigma2, v / m + tau2 + sigma2], rtol=1e-8
    )


def test_singular_fit_gives_the_linear_model_intervals() -> None:
    """Dyestuff2's batch SD is estimated as 0: every batch, seen or new, gets the
    intervals of the intercept-only linear model, ``σ²/N`` and ``σ²/N + σ²``."""
    dyestuff2 = hm.datasets.load("dyestuff2")
    with pytest.warns(hm.errors.SingularFitWarning):
        fit = hm.Model("Yield ~ 1 + (1 | Batch)", dyestuff2).fit_mle()
    new = pd.DataFrame({"Batch": ["A", "F", "new"]})
    sigma2, n = fit.sigma**2, len(dyestuff2)
    confidence = fit.predict(new, interval="confidence")
    prediction = fit.predict(new, interval="prediction")
    np.testing.assert_allclose(confidence["estimate"], dyestuff2["Yield"].mean(), rtol=1e-10)
    np.testing.assert_allclose(confidence["se"] ** 2, sigma2 / n, rtol=1e-8)
    np.testing.assert_allclose(prediction["se"] ** 2, sigma2 / n + sigma2, rtol=1e-8)


# ---------------------------------------------------------------- behaviour


def test_without_interval_the_prediction_is_unchanged(sleep_fit: hm.MixedFit) -> None:
    new = _sleep_newdata()
    plain = sleep_fit.predict(new)
    assert isinstance(plain, pd.Series)
    assert plain.name == "predicted"
    table = sleep_fit.predict(new, interval="confidence")
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["estimate", "se", "lower", "upper"]
    assert table.index.equals(new.index)
    np.testing.assert_allclose(table["estimate"], plain.to_numpy())
    fitted = sleep_fit.predict(interval="confidence")
    np.testing.assert_allclose(fitted["estimate"], sleep_fit.fitted().to_numpy())


def test_table_attrs_and_nesting(sleep_fit: hm.MixedFit) -> None:
    new = _sleep_newdata()
    narrow = sleep_fit.predict(new, interval="confidence", ci_prob=0.8, scale="link")
    assert narrow.attrs == {"interval": "confidence", "ci_prob": 0.8, "scale": "link"}
    wide = sleep_fit.predict(new, interval="confidence", ci_prob=0.99, scale="link")
    prediction = sleep_fit.predict(new, interval="prediction", ci_prob=0.8, scale="link")
    assert np.all(wide["lower"] < narrow["lower"]) and np.all(narrow["upper"] < wide["upper"])
    assert np.all(prediction["lower"] < narrow["lower"])
    assert np.all(narrow["upper"] < prediction["upper"])


def test_bad_arguments_raise(sleep_fit: hm.MixedFit) -> None:
    new = _sleep_newdata()
    with pytest.raises(ValueError, match="interval must be"):
        sleep_fit.predict(new, interval="tolerance")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ci_prob"):
        sleep_fit.predict(new, interval="confidence", ci_prob=1.5)
    with pytest.raises(ValueError, match="not in the fit"):
        sleep_fit.predict(new, interval="prediction", new_levels="error")


def test_old_new_levels_spelling_warns_with_intervals(sleep_fit: hm.MixedFit) -> None:
    new = _sleep_newdata()
    with pytest.warns(DeprecationWarning, match="new_levels"):
        table = sleep_fit.predict(new, interval="prediction", allow_new_levels=True)
    np.testing.assert_allclose(table["se"], SLEEP_REF["conditional"]["se_prediction"], rtol=1e-4)


# --------------------------------------------------------------- full Bayes


def test_intervals_are_close_to_full_bayes(sleep_fit: hm.MixedFit) -> None:
    """The MLE's 95% intervals on sleepstudy against full Bayes' posterior intervals.

    For a new subject, the posterior predictive of a reaction time adds to
    ``BayesFit.predict``'s draws of the population line (a new level gets
    ``u = 0``) a draw of the new subject's effects from each draw's
    covariance and a residual; it is compared with the prediction interval.
    For a seen subject, the posterior interval of its line is compared with
    the confidence interval. Full Bayes also carries the uncertainty of the
    variance parameters, whose posterior lies above the REML estimates with
    18 subjects, so its intervals are wider, by 2-13% here: the ratio of
    widths must lie in (0.95, 1.2), the centres within 5% of the width.
    Leaving out the new subject's effect variance would make the MLE
    interval 27-56% narrower; for the seen subject, the fixed effects' error
    alone (``xᵀVx``) would make it 44% narrower at day 0 and 16% wider at
    day 4.5.
    """
    from tests.bayes.conftest import reference_fit

    bayes = reference_fit("sleepstudy_slope_reml")
    days = [0.0, 4.5, 9.0]
    unseen = pd.DataFrame({"Days": days, "Subject": ["new"] * 3})
    seen = pd.DataFrame({"Days": days, "Subject": ["308"] * 3})
    post = bayes.posterior.stack(sample=("chain", "draw"))

    def line_draws(newdata: pd.DataFrame) -> np.ndarray:
        eta = bayes.predict(newdata, scale="link", draws=True)
        return eta.stack(sample=("chain", "draw")).transpose("sample", "obs").values

    sd = np.stack([post["sd_Subject__Intercept"].values, post["sd_Subject__Days"].values], axis=-1)
    corr = post["corr_Subject"].transpose("sample", ...).values
    cov = sd[:, :, None] * corr * sd[:, None, :]
    rng = np.random.default_rng(11)
    effects = np.einsum("sij,sj->si", np.linalg.cholesky(cov), rng.standard_normal(sd.shape))
    terms = np.column_stack([np.ones(len(days)), days])
    line = line_draws(unseen)
    sigma = post["sigma"].values
    predictive = line + effects @ terms.T + sigma[:, None] * rng.standard_normal(line.shape)

    for draws, mle in [
        (predictive, sleep_fit.predict(unseen, interval="prediction", ci_prob=0.95)),
        (line_draws(seen), sleep_fit.predict(seen, interval="confidence", ci_prob=0.95)),
    ]:
        lower, upper = np.quantile(draws, [0.025, 0.975], axis=0)
        width = (mle["upper"] - mle["lower"]).to_numpy()
        ratio = (upper - lower) / width
        assert np.all((ratio > 0.95) & (ratio < 1.2)), ratio
        centre = (mle["upper"] + mle["lower"]).to_numpy() / 2
        np.testing.assert_array_less(np.abs((upper + lower) / 2 - centre), 0.05 * width)


# ----------------------------------------------------------------- coverage


def test_prediction_intervals_cover_at_their_nominal_rate() -> None:
    """90% intervals over 300 data sets from ``y = 10 + b_i + e``, ``τ = σ = 1``, 20 groups of 5.

    Each data set's coverage is the exact probability, under the true model,
    that its interval holds the new value: a new observation of a new group
    (``N(10, τ² + σ²)``), a new observation of each seen group
    (``N(10 + b_i, σ²)``); for the confidence interval of each seen group's
    mean ``10 + b_i``, the share of groups it covers. Plugging in θ̂ costs
    about one point; the new group's interval without its effect variance
    (or without ``σ²``) would cover about 77%, the seen groups' without
    ``σ²`` about half.
    """
    rng = np.random.default_rng(20261130)
    m, n, mu, tau, sigma = 20, 5, 10.0, 1.0, 1.0
    levels = [f"g{i}" for i in range(m)]
    data = pd.DataFrame({"g": np.repeat(levels, n), "y": rng.standard_normal(m * n)})
    design = build_design("y ~ 1 + (1 | g)", data, "gaussian")
    new = pd.DataFrame({"g": ["unseen", *levels]})
    new_group, seen_group, group_mean = [], [], []
    for _ in range(300):
        effects = tau * rng.standard_normal(m)
        y = mu + np.repeat(effects, n) + sigma * rng.standard_normal(m * n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", hm.errors.SingularFitWarning)
            fit = fit_lmm(replace(design, y=y))
        prediction = fit.predict(new, interval="prediction", ci_prob=0.9)
        lower, upper = prediction["lower"].to_numpy(), prediction["upper"].to_numpy()
        spread = np.hypot(tau, sigma)
        new_group.append(
            stats.norm.cdf((upper[0] - mu) / spread) - stats.norm.cdf((lower[0] - mu) / spread)
        )
        truth = mu + effects
        seen_group.append(
            np.mean(
                stats.norm.cdf((upper[1:] - truth) / sigma)
                - stats.norm.cdf((lower[1:] - truth) / sigma)
            )
        )
        confidence = fit.predict(new, interval="confidence", ci_prob=0.9).iloc[1:]
        group_mean.append(np.mean((confidence["lower"] <= truth) & (truth <= confidence["upper"])))
    assert np.mean(new_group) == pytest.approx(0.9, abs=0.02)
    assert np.mean(seen_group) == pytest.approx(0.9, abs=0.02)
    assert np.mean(group_mean) == pytest.approx(0.9, abs=0.025)


def test_crossed_factors_match_henderson_equations() -> None:
    """Penicillin, ``(1 | plate) + (1 | sample)``: the errors of the two factors' modes are
    correlated, and the confidence variance of a row naming both is ``[x, z] C [x, z]ᵀ``
    with ``C = σ² [[XᵀX, XᵀZ], [ZᵀX, ZᵀZ + σ²G⁻¹]]⁻¹`` (Henderson's mixed-model equations).
    """
    penicillin = hm.datasets.load("penicillin")
    fit = hm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", penicillin).fit_mle()
    blocks = fit.layout.blocks
    Z = np.hstack([block.Z().toarray() for block in blocks])
    G = np.diag(
        np.concatenate(
            [
                np.full(block.n_levels, cov[0, 0])
                for block, cov in zip(blocks, fit.covariances(), strict=True)
            ]
        )
    )
    X = fit.design.X
    sigma2 = fit.sigma**2
    system = np.block([[X.T @ X, X.T @ Z], [Z.T @ X, Z.T @ Z + sigma2 * np.linalg.inv(G)]])
    joint = sigma2 * np.linalg.inv(system)

    new = pd.DataFrame({"plate": ["a", "x", "new"], "sample": ["A", "F", "C"]})
    rows = np.zeros((len(new), 1 + Z.shape[1]))
    rows[:, 0] = 1.0
    start = 0
    for block in blocks:
        for i, level in enumerate(new[block.group]):
            if level in block.levels:
                rows[i, 1 + start + block.levels.index(level)] = 1.0
        start += block.n_levels
    expected = np.einsum("ij,jk,ik->i", rows, joint, rows)
    table = fit.predict(new, interval="confidence")
    np.testing.assert_allclose(table["se"] ** 2, expected, rtol=1e-8)
    prediction = fit.predict(new, interval="prediction")
    plate_var = fit.covariances()[[b.group for b in blocks].index("plate")][0, 0]
    np.testing.assert_allclose(
        prediction["se"] ** 2, expected + sigma2 + np.array([0.0, 0.0, plate_var]), rtol=1e-8
    )
