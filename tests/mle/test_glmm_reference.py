"""Laplace fits of GLMMs against glmmTMB 1.1.5 and lme4 1.1-31.

glmmTMB evaluates the Laplace approximation exactly (tests/reference/glmmTMB,
made by make_reference.R there), and so does hiermodels by default: they
agree to round-off. lme4's glmer evaluates log|L|² with the working weights
of the penultimate PIRLS iterate, which shifts its deviance by 5.6e-4 (cbpp)
and 1.25e-2 (grouseticks) and moves its optimum in the third digit;
``laplace="glmer"`` evaluates the approximation the same way and reproduces
lme4's numbers to the issue's tolerances.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hiermodels as hm
import hiermodels.mle.optimize
from hiermodels.mle.laplace import AgqDeviance, laplace_deviance
from hiermodels.mle.results import MixedFit
from tests.reference.lme4_names import load_reference, term_to_lme4

TMB_DIR = Path(__file__).parents[1] / "reference" / "glmmTMB"
REFERENCE_DIR = Path(__file__).parents[1] / "reference" / "lme4"
CASES = {
    "cbpp_binomial_laplace": ("cbpp", "binomial"),
    "grouseticks_poisson_laplace": ("grouseticks", "poisson"),
}


@cache
def fitted(name: str, laplace: str = "exact") -> MixedFit:
    dataset, family = CASES[name]
    ref = load_reference(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = hm.Model(ref["formula"], hm.datasets.load(dataset), family=family)
        return model.fit_mle(laplace=laplace)


def tmb(name: str) -> dict:
    return json.loads((TMB_DIR / f"{name}.json").read_text())


def _ours_by_lme4_name(series: pd.Series) -> dict[str, float]:
    return {term_to_lme4(k): float(v) for k, v in series.items()}


def _merged_ranef(fit: MixedFit, reference: list[dict]) -> pd.DataFrame:
    ours = fit.ranef_frame().assign(term=lambda f: f["term"].map(term_to_lme4))
    ref = pd.DataFrame(reference).assign(grp=lambda f: f["grp"].astype(str))
    merged = ours.merge(
        ref, on=["grpvar", "term", "grp"], suffixes=("", "_ref"), validate="one_to_one"
    )
    assert len(merged) == len(ours) == len(ref)
    return merged


@pytest.mark.parametrize("name", list(CASES))
def test_matches_glmmtmb_exact_laplace(name: str) -> None:
    fit, ref = fitted(name), tmb(name)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-4)
    ours = _ours_by_lme4_name(fit.fixef)
    for key, value in ref["fixef"].items():
        assert ours[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
    ours_se = _ours_by_lme4_name(fit.fixef_se)
    for key, value in ref["fixef_se"].items():
        assert ours_se[key] == pytest.approx(value, rel=2e-3), key
    sds = fit.varcorr.set_index("grp")["sdcor"]
    for group, value in ref["sd"].items():
        assert sds[group] == pytest.approx(value, rel=1e-4), group
    merged = _merged_ranef(fit, ref["ranef"])
    for group, frame in merged.groupby("grpvar"):
        scale = ref["sd"][group]
        np.testing.assert_allclose(frame["condval"], frame["condval_ref"], atol=1e-3 * scale)


@pytest.mark.parametrize("name", list(CASES))
def test_loglik_within_lme4_tolerance(name: str) -> None:
    fit, ref = fitted(name), load_reference(name)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-2)
    assert fit.n_params == ref["df"]
    assert fit.nobs == ref["nobs"]
    assert not fit.singular


@pytest.mark.parametrize("name", list(CASES))
def test_glmer_evaluation_matches_lme4_to_issue_tolerances(name: str) -> None:
    fit, ref = fitted(name, "glmer"), load_reference(name)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    ours = _ours_by_lme4_name(fit.fixef)
    for key, value in ref["fixef"].items():
        assert ours[key] == pytest.approx(value, rel=1e-3), key
    table = fit.varcorr.set_index("grp")
    for row in ref["varcorr"]:
        assert table.loc[row["grp"], "vcov"] == pytest.approx(row["vcov"], rel=1e-3)
        assert table.loc[row["grp"], "sdcor"] == pytest.approx(row["sdcor"], rel=1e-3)
    merged = _merged_ranef(fit, ref["ranef"])
    sds = {row["grp"]: row["sdcor"] for row in ref["varcorr"]}
    for group, frame in merged.groupby("grpvar"):
        np.testing.assert_allclose(frame["condval"], frame["condval_ref"], atol=1e-3 * sds[group])
        np.testing.assert_allclose(frame["condsd"], frame["condsd_ref"], atol=1e-3 * sds[group])


def test_exact_and_glmer_laplace_differ_by_lme4s_shift() -> None:
    exact, glmer = (
        fitted("grouseticks_poisson_laplace"),
        fitted("grouseticks_poisson_laplace", "glmer"),
    )
    # the exact approximation is what both maximise in principle; glmer's stale log|L|
    # costs it 1.25e-2 in deviance (compare glmmTMB above)
    assert exact.loglik - glmer.loglik == pytest.approx(0.0065, abs=5e-4)
    with pytest.raises(ValueError, match="laplace must be"):
        hm.Model(
            "TICKS ~ YEAR + (1 | BROOD)", hm.datasets.load("grouseticks"), family="poisson"
        ).fit_mle(laplace="tmb")


@pytest.mark.parametrize("name", list(CASES))
def test_pirls_reproduces_lme4_modes_at_lme4_estimates(name: str) -> None:
    fit, ref = fitted(name), load_reference(name)
    dev = laplace_deviance(fit.design)
    theta = np.atleast_1d(np.asarray(ref["theta"], dtype=float))
    beta = np.array([ref["fixef"][term_to_lme4(k)] for k in fit.design.fixed_names])
    result = dev.pirls(theta, beta)
    ref_frame = pd.DataFrame(ref["ranef"])
    lead = dev.layout.blocks[0]
    expected = ref_frame[ref_frame["grpvar"] == lead.group].set_index("grp")["condval"]
    np.testing.assert_allclose(
        result.u_lead[:, 0] * theta[0], expected.loc[list(lead.levels)].to_numpy(), atol=1e-6
    )


def test_adaptive_quadrature_matches_glmer_nagq25() -> None:
    """cbpp with nAGQ = 25 (tests/reference/lme4/cbpp_binomial_agq25.json)."""
    ref = load_reference("cbpp_binomial_agq25")
    cbpp = hm.datasets.load("cbpp")
    model = hm.Model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial"
    )
    fit = model.fit_mle("Laplace", n_agq=25)
    assert fit.method == "AGQ"
    ours = _ours_by_lme4_name(fit.fixef)
    for key, value in ref["fixef"].items():
        assert ours[key] == pytest.approx(value, rel=1e-4), key
    assert fit.theta[0] == pytest.approx(ref["theta"], rel=1e-4)
    # glmer's nAGQ > 1 log-likelihood is relative to the saturated binomial model; ours keeps
    # every constant so that it compares with the Laplace fit's.
    y, m = cbpp["incidence"].to_numpy(), cbpp["size"].to_numpy()
    saturated = stats.binom.logpmf(y, m, y / m).sum()
    assert fit.loglik == pytest.approx(ref["logLik"] + saturated, abs=1e-3)
    assert fit.loglik > fitted("cbpp_binomial_laplace").loglik


def test_one_quadrature_node_is_the_laplace_approximation() -> None:
    cbpp = hm.datasets.load("cbpp")
    model = hm.Model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp, family="binomial"
    )
    laplace = model.fit_mle()
    dev = laplace_deviance(laplace.design)
    params = np.concatenate([laplace.theta, laplace.beta])
    assert AgqDeviance(dev, 1)(params) == pytest.approx(laplace.objective, abs=1e-8)
    assert AgqDeviance(dev, 15)(params) == pytest.approx(AgqDeviance(dev, 41)(params), abs=1e-8)


def test_quadrature_needs_a_single_scalar_term() -> None:
    data = hm.datasets.load("grouseticks")
    model = hm.Model("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", data, family="poisson")
    with pytest.raises(ValueError, match="single scalar random-effect term"):
        model.fit_mle(n_agq=9)


def _probit_model() -> hm.Model:
    from tests.bayes import simulate

    truth = simulate.bernoulli(seed=25, link="probit")
    pinned = pd.read_csv(REFERENCE_DIR / "bernoulli_probit_seed25.csv")
    np.testing.assert_allclose(truth.data["x"].to_numpy(), pinned["x"].to_numpy(), rtol=1e-12)
    assert np.array_equal(truth.data["y"].to_numpy(), pinned["y"].to_numpy())
    return hm.Model(truth.formula, truth.data, family=truth.family, link=truth.link)


def test_bernoulli_probit_glmer_evaluation_matches_glmer() -> None:
    """A probit (non-canonical link) GLMM: tests/reference/lme4/bernoulli_probit_seed25.json.

    glmer's PIRLS is Fisher scoring with the expected information, and
    converges linearly; stopped on the change in the penalised deviance alone
    it left log|L| noisy at ~1e-5, the optimiser a gradient of 0.43 and the
    Hessian indefinite. ``laplace="glmer"`` converges (no warning, gradient
    within lme4's 2e-3) and reproduces glmer to 1e-4.
    """
    ref = load_reference("bernoulli_probit_seed25")
    with warnings.catch_warnings():
        warnings.simplefilter("error", hm.mle.optimize.ConvergenceWarning)
        fit = _probit_model().fit_mle(laplace="glmer")
    assert np.max(np.abs(fit.opt.gradient)) < 2e-3
    ours, ses = _ours_by_lme4_name(fit.fixef), _ours_by_lme4_name(fit.fixef_se)
    for key, value in ref["fixef"].items():
        assert ours[key] == pytest.approx(value, rel=1e-4), key
        assert ses[key] == pytest.approx(ref["fixef_se"][key], rel=1e-3), key
    assert fit.theta[0] == pytest.approx(ref["theta"], rel=1e-4)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)


@pytest.mark.parametrize("optimizer", ["quasi-newton", "bobyqa"])
def test_bernoulli_probit_exact_laplace_matches_glmmtmb(optimizer: str) -> None:
    """The exact Laplace approximation of a probit GLMM weights PIRLS by the observed
    information, as TMB's Hessian does: tests/reference/glmmTMB/bernoulli_probit_seed25.json
    (glmer's expected information gives a log-likelihood 0.32 lower)."""
    ref = tmb("bernoulli_probit_seed25")
    with warnings.catch_warnings():
        warnings.simplefilter("error", hm.mle.optimize.ConvergenceWarning)
        fit = _probit_model().fit_mle(optimizer=optimizer)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-6)
    ours, ses = _ours_by_lme4_name(fit.fixef), _ours_by_lme4_name(fit.fixef_se)
    for key, value in ref["fixef"].items():
        assert ours[key] == pytest.approx(value, rel=1e-4), key
        assert ses[key] == pytest.approx(ref["fixef_se"][key], rel=2e-3), key
    assert fit.varcorr.set_index("grp").loc["g", "sdcor"] == pytest.approx(ref["sd"]["g"], rel=1e-4)
    merged = _merged_ranef(fit, ref["ranef"])
    np.testing.assert_allclose(merged["condval"], merged["condval_ref"], atol=1e-3 * ref["sd"]["g"])


def test_far_out_points_give_infinite_deviance_without_numpy_warnings() -> None:
    """BOBYQA probes points where exp(eta) overflows: an infinite deviance, quietly."""
    from hiermodels.mle.response import GlmResponse

    data = hm.datasets.load("grouseticks")
    # integer-coded factors, as read from a CSV file: the optimiser's path reaches overflow
    for column in ("BROOD", "LOCATION"):
        data[column] = data[column].astype(int)
    model = hm.Model("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", data, family="poisson")
    response = GlmResponse.from_design(model.design)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert response.deviance(np.full(model.design.nobs, 800.0)) == np.inf
        fit = model.fit_mle()
    reference = fitted("grouseticks_poisson_laplace")
    assert fit.loglik == pytest.approx(reference.loglik, abs=1e-6)
