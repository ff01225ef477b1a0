"""Negative-binomial Laplace fits against glmmTMB 1.1.5 (nbinom2) and lme4 1.1-31 (glmer.nb).

References: tests/reference/glmmTMB/{grouseticks_nbinom2, cbpp_nbinom2_offset,
nbinom_slope_seed1}.json, made by make_nbinom_reference.R there (R 4.2.2).

glmmTMB evaluates the Laplace approximation exactly — ``log |L|²`` from the
Hessian of the joint log-density in ``u``, i.e. the observed information —
and so does hiermodels by default: they agree to about 1e-5 (the tests ask
1e-3 for fixed effects and the log-likelihood, 2e-3 for SDs, correlations,
the dispersion and standard errors). glmer.nb maximises glmer's evaluation,
whose ``log |L|²`` uses IRLS's expected-information weights (of the
penultimate PIRLS iterate); for the non-canonical NB2-log pair that is a
different approximation, and its estimates differ from glmmTMB's by up to
0.2 standard errors (fixed effects), 8% (the small cbpp SD), 1.5% (alpha)
and 0.07 in logLik. ``laplace="glmer"`` evaluates the approximation glmer's
way and reproduces glmer.nb to 2e-3, the accuracy of glmer.nb itself (it
optimises theta with ``optimize()`` to a tolerance of 1.2e-4 on the log
scale, and each of its glmer fits starts PIRLS from its own first stage).
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.mle.laplace import AgqDeviance
from hiermodels.mle.results import MixedFit
from tests.reference.lme4_names import term_to_lme4

TMB_DIR = Path(__file__).parents[1] / "reference" / "glmmTMB"
CASES = ["grouseticks_nbinom2", "cbpp_nbinom2_offset", "nbinom_slope_seed1"]


def reference(name: str) -> dict:
    return json.loads((TMB_DIR / f"{name}.json").read_text())


@cache
def model(name: str) -> hm.Model:
    ref = reference(name)
    offset = None
    if name == "grouseticks_nbinom2":
        data = hm.datasets.load("grouseticks")
    elif name == "cbpp_nbinom2_offset":
        data = hm.datasets.load("cbpp")
        offset = np.log(data["size"].to_numpy(dtype=float))
    else:
        data = pd.read_csv(TMB_DIR / "nbinom_slope_seed1.csv")
    return hm.Model(ref["formula"], data, family=ref["family"], offset=offset)


@cache
def fitted(name: str, laplace: str = "exact") -> MixedFit:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these fits should warn
        return model(name).fit_mle(laplace=laplace)


def _by_lme4_name(series: pd.Series) -> dict[str, float]:
    return {term_to_lme4(k): float(v) for k, v in series.items()}


def _sdcor(fit: MixedFit) -> dict[tuple[str, str, str | None], float]:
    """SDs and correlations keyed by (group, term, other term) in lme4's names."""
    out = {}
    for row in fit.varcorr.itertuples():
        other = term_to_lme4(row.var2) if isinstance(row.var2, str) else None
        out[(row.grp, term_to_lme4(row.var1), other)] = float(row.sdcor)
    return out


def _reference_sdcor(rows: list[dict]) -> dict[tuple[str, str, str | None], float]:
    return {(r["grp"], r["var1"], r["var2"]): float(r["sdcor"]) for r in rows}


@pytest.mark.parametrize("name", CASES)
def test_matches_glmmtmb_nbinom2(name: str) -> None:
    fit, ref = fitted(name), reference(name)["glmmTMB"]
    assert fit.alpha == pytest.approx(ref["dispersion"], rel=2e-3)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert fit.n_params == ref["df"]
    assert fit.nobs == ref["nobs"]
    ours, ses = _by_lme4_name(fit.fixef), _by_lme4_name(fit.fixef_se)
    for key, value in ref["fixef"].items():
        assert ours[key] == pytest.approx(value, rel=1e-3), key
        assert ses[key] == pytest.approx(ref["fixef_se"][key], rel=2e-3), key
    sdcor = _sdcor(fit)
    expected = _reference_sdcor(ref["varcorr"])
    assert sdcor.keys() == expected.keys()
    for key, value in expected.items():
        assert sdcor[key] == pytest.approx(value, rel=2e-3), key


@pytest.mark.parametrize("name", CASES)
def test_conditional_modes_match_glmmtmb(name: str) -> None:
    # glmmTMB's condsd carries the uncertainty of every parameter (TMB's sdreport),
    # lme4's and ours are conditional on them: only the modes compare
    fit, ref = fitted(name), reference(name)["glmmTMB"]
    ours = fit.ranef_frame().assign(term=lambda f: f["term"].map(term_to_lme4))
    theirs = pd.DataFrame(ref["ranef"]).assign(grp=lambda f: f["grp"].astype(str))
    merged = ours.merge(theirs, on=["grpvar", "term", "grp"], suffixes=("", "_ref"))
    assert len(merged) == len(ours) == len(theirs)
    sds = _reference_sdcor(ref["varcorr"])
    for (group, term), frame in merged.groupby(["grpvar", "term"]):
        scale = sds[(group, term, None)]
        np.testing.assert_allclose(frame["condval"], frame["condval_ref"], atol=1e-3 * scale)


def test_conditional_sds_are_the_observed_curvature() -> None:
    """cbpp (one scalar term): each herd's conditional SD is ``h''(b̂)^(-1/2)``.

    ``h(b) = −Σ log p(y_i | η_i + b) + b²/(2σ²)`` is the negative log joint
    density of the herd's effect; its second derivative (central differences
    here) is the observed information the exact Laplace approximation uses.
    The expected information (glmer's weights) gives SDs 1–3% different.
    """
    fit = fitted("cbpp_nbinom2_offset")
    from hiermodels.mle.response import GlmResponse

    response = GlmResponse.from_fit(fit)
    block = fit.layout.blocks[0]
    mode, sd_b = fit.conditional_modes[0][:, 0], float(np.sqrt(fit.covariances()[0][0, 0]))
    base = fit.linear_predictor - mode[block.codes]

    def h(b: np.ndarray) -> np.ndarray:
        out = 0.5 * (b / sd_b) ** 2
        np.subtract.at(out, block.codes, response.loglik_terms(base + b[block.codes]))
        return out

    step = 1e-4
    curvature = (h(mode + step) - 2 * h(mode) + h(mode - step)) / step**2
    condsd = np.sqrt(fit.conditional_covariances[0][:, 0, 0])
    np.testing.assert_allclose(condsd, curvature**-0.5, rtol=1e-5)
    expected = response.with_information("expected").working(fit.linear_predictor)[1]
    fisher = np.bincount(block.codes, weights=expected) + sd_b**-2
    assert np.max(np.abs(condsd * np.sqrt(fisher) - 1)) > 0.01


@pytest.mark.parametrize("name", CASES)
def test_glmer_evaluation_reproduces_glmer_nb(name: str) -> None:
    fit, ref = fitted(name, "glmer"), reference(name)["glmer.nb"]
    assert fit.alpha == pytest.approx(ref["theta"], rel=1e-3)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=2e-3)
    ours = _by_lme4_name(fit.fixef)
    for key, value in ref["fixef"].items():
        assert ours[key] == pytest.approx(value, rel=2e-3), key
    sdcor = _sdcor(fit)
    for key, value in _reference_sdcor(ref["varcorr"]).items():
        assert sdcor[key] == pytest.approx(value, rel=2e-3), key


@pytest.mark.parametrize("name", CASES)
def test_exact_laplace_and_glmer_nb_differ_as_their_approximations_do(name: str) -> None:
    """The default fit against glmer.nb: within the gap between the two approximations."""
    fit, ref = fitted(name), reference(name)["glmer.nb"]
    assert fit.alpha == pytest.approx(ref["theta"], rel=0.02)
    assert fit.loglik == pytest.approx(ref["logLik"], abs=0.1)
    ours, ses = _by_lme4_name(fit.fixef), _by_lme4_name(fit.fixef_se)
    for key, value in ref["fixef"].items():
        assert abs(ours[key] - value) < 0.25 * ses[key], key
    sdcor = _sdcor(fit)
    for key, value in _reference_sdcor(ref["varcorr"]).items():
        assert sdcor[key] == pytest.approx(value, rel=0.1), key


def test_dispersion_has_the_bayesian_models_name() -> None:
    """One name for one thing: ``alpha`` in the MLE, its exports, EB's plug-in and PyMC."""
    from hiermodels.design._names import RESERVED_NAMES
    from hiermodels.mle.response import DISPERSION_NAME

    assert DISPERSION_NAME == "alpha" and "dispersion" in RESERVED_NAMES["alpha"]
    fit = fitted("cbpp_nbinom2_offset")
    assert "alpha" in fit.to_xarray()
    assert float(fit.to_xarray()["alpha"]) == fit.alpha
    assert "alpha" in model("cbpp_nbinom2_offset").pymc_model().named_vars
    from hiermodels.eb.fit import plugin_values

    assert plugin_values(fit)["alpha"] == fit.alpha


def test_one_quadrature_node_is_the_negative_binomial_laplace_deviance() -> None:
    fit = fitted("cbpp_nbinom2_offset")
    from hiermodels.mle.dispersion import DispersedDeviance

    dev = DispersedDeviance.of_fit_design(fit.design, fit.alpha)
    params = np.concatenate([fit.theta, fit.beta])
    laplace = dev.at(np.array([np.log(fit.alpha)]))
    assert laplace(params) == pytest.approx(fit.objective, abs=1e-6)
    assert AgqDeviance(laplace, 1)(params) == pytest.approx(fit.objective, abs=1e-8)
    quadrature = model("cbpp_nbinom2_offset").fit_mle(n_agq=25)
    assert quadrature.method == "AGQ"
    assert quadrature.alpha == pytest.approx(fit.alpha, rel=0.05)
    assert AgqDeviance(laplace, 15)(params) == pytest.approx(
        AgqDeviance(laplace, 41)(params), abs=1e-8
    )
