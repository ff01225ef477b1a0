"""``n_agq=0``: θ optimised with β inside PIRLS, against glmer's ``nAGQ = 0`` (lme4 1.1-31).

References: tests/reference/lme4/{cbpp_binomial_nagq0, grouseticks_poisson_nagq0,
bernoulli_logit_seed25_nagq0}.json, made by make_nagq0_reference.R there.
Tolerances as for the glmer Laplace references (1e-3 relative on fixed
effects, SDs and standard errors, 1e-3 on the log-likelihood); the fits
agree to about 1e-4. glmer's nAGQ = 0 deviance uses the stale weights of
its Laplace evaluation too, but its first stage already matched the exact
one to that accuracy on these canonical-link models.
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest

import hiermodels as hm
from hiermodels.mle.results import MixedFit
from tests.reference.lme4_names import REFERENCE_DIR, load_reference, term_to_lme4

CASES = ["cbpp_binomial_nagq0", "grouseticks_poisson_nagq0", "bernoulli_logit_seed25_nagq0"]


@cache
def model(name: str) -> hm.Model:
    ref = load_reference(name)
    if name.startswith("cbpp"):
        data = hm.datasets.load("cbpp")
    elif name.startswith("grouseticks"):
        data = hm.datasets.load("grouseticks")
    else:
        data = pd.read_csv(REFERENCE_DIR / "bernoulli_probit_seed25.csv")
    return hm.Model(ref["formula"], data, family=ref["family"])


@cache
def fitted(name: str, n_agq: int = 0) -> MixedFit:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged, interior fits: no warning expected
        return model(name).fit_mle(n_agq=n_agq)


@pytest.mark.parametrize("name", CASES)
def test_matches_glmer_nagq0(name: str) -> None:
    fit, ref = fitted(name), load_reference(name)
    assert fit.method == "Laplace (nAGQ=0)"
    assert fit.loglik == pytest.approx(ref["logLik"], abs=1e-3)
    assert fit.n_params == ref["df"]
    ours = {term_to_lme4(k): v for k, v in fit.fixef.items()}
    ses = {term_to_lme4(k): v for k, v in fit.fixef_se.items()}
    for key, value in ref["fixef"].items():
        assert ours[key] == pytest.approx(value, rel=1e-3), key
        # glmer computes no Hessian for nAGQ = 0: both are (R_X'R_X)^-1 of the PIRLS system
        assert ses[key] == pytest.approx(ref["fixef_se"][key], rel=1e-3), key
    assert not ref["hessian_computed"]
    sds = fit.varcorr.set_index("grp")["sdcor"]
    for row in ref["varcorr"]:
        assert sds[row["grp"]] == pytest.approx(row["sdcor"], rel=1e-3), row["grp"]


@pytest.mark.parametrize("name", CASES)
def test_fit_log_says_nagq0_and_stops_after_stage_one(name: str) -> None:
    fast, laplace = fitted(name), fitted(name, 1)
    assert "(nAGQ=0)" in fast.opt.optimizer
    assert "θ with β inside PIRLS" in fast.opt.optimizer
    assert fast.opt.final.size == fast.theta.size  # θ only: β came from PIRLS
    # a maximum over a subset of (θ, β): never above the Laplace fit's
    assert fast.loglik <= laplace.loglik + 1e-8
    assert "nAGQ=0" in repr(fast)


@pytest.mark.parametrize("bad", [-1, 0.5, 2.5, "0", True])
def test_bad_n_agq_is_one_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match="n_agq must be a non-negative integer") as err:
        model("cbpp_binomial_nagq0").fit_mle(n_agq=bad)
    assert repr(bad) in str(err.value)


def test_n_agq_none_is_an_error_for_the_engine_and_the_default_for_model() -> None:
    """``Model.fit_mle`` takes ``None`` as "not given" (lme4's nAGQ = 1); the engine refuses it."""
    from hiermodels.mle.fit import fit_glmm

    cbpp = model("cbpp_binomial_nagq0")
    with pytest.raises(ValueError, match="n_agq must be a non-negative integer") as err:
        fit_glmm(cbpp.design, n_agq=None)
    assert "None" in str(err.value)
    assert cbpp.fit_mle(n_agq=None).method == "Laplace"


def test_integral_float_n_agq_is_accepted() -> None:
    fit = model("cbpp_binomial_nagq0").fit_mle(n_agq=0.0)
    assert fit.method == "Laplace (nAGQ=0)"
    np.testing.assert_allclose(fit.beta, fitted("cbpp_binomial_nagq0").beta, rtol=1e-10)


def test_nagq0_with_glmer_evaluation_is_refused() -> None:
    with pytest.raises(ValueError, match=r"laplace='glmer' applies to .*n_agq=1"):
        model("cbpp_binomial_nagq0").fit_mle(n_agq=0, laplace="glmer")
