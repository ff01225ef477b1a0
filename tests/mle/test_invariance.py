"""REML and ML fits transform exactly under changes of units and location.

A linear mixed model's estimates are equivariant: ``a + b·y`` shifts and
scales the fixed effects, SDs, σ and conditional modes, and moves the
log-likelihood by the Jacobian ``−n log|b|`` (``−(n − p) log|b|`` for
REML); scaling a covariate by ``c`` divides its coefficient and its random
slope's SD by ``c`` (and subtracts ``log|c|`` from the REML log-likelihood, whose
``log|XᵀV⁻¹X|`` has the units of ``X``); shifting a covariate changes only
the intercept; shifting a random-slope covariate of a correlated term
transforms the effects' covariance by ``T Σ Tᵀ``; permuting rows or
relabelling levels changes nothing. Each case is checked to 1e-6 relative
against the fit of the original data, with no warning.
"""

from __future__ import annotations

import json
import math
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hiermodels as hm
from hiermodels.mle.results import MixedFit

SLOPE = "Reaction ~ Days + (Days | Subject)"
RTOL = 1e-6


def _fit_quietly(formula: str, data: pd.DataFrame, method: str) -> MixedFit:
    """Fit with every warning turned into an error: an invariant fit says nothing new."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return hm.Model(formula, data).fit_mle(method=method)


@cache
def _sleep() -> pd.DataFrame:
    return hm.datasets.load("sleepstudy")


@cache
def _base(formula: str, method: str) -> MixedFit:
    return _fit_quietly(formula, _sleep(), method)


def _covariance(fit: MixedFit) -> np.ndarray:
    return fit.covariances()[0]


def _close(actual: float | np.ndarray, expected: float | np.ndarray, scale: float = 0.0) -> None:
    """Relative agreement to RTOL; ``scale`` sets the size below which it is absolute."""
    expected = np.asarray(expected, dtype=float)
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * scale)


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize(("shift", "scale"), [(1e12, 1.0), (1e8, 1.0), (-3e5, 1e-3), (0.0, 1e6)])
def test_affine_response(method: str, shift: float, scale: float) -> None:
    """``a + b·Reaction``: estimates transform, logLik moves by the Jacobian.

    Stored as ``a + b·y``, the response keeps only ``|a| × 2⁻⁵²`` of its
    digits; the comparison is with the fit of the values it represents,
    ``(y' − a) / b``, and the MLEs also with the fit of the original ``y``.
    """
    original = _base(SLOPE, method)
    data = _sleep().assign(Reaction=shift + scale * _sleep()["Reaction"])
    fit = _fit_quietly(SLOPE, data, method)
    represented = _sleep().assign(Reaction=(data["Reaction"] - shift) / scale)
    for base in (_fit_quietly(SLOPE, represented, method), original):
        _close(fit.fixef["Days"], scale * base.fixef["Days"])
        _close(fit.sigma, abs(scale) * base.sigma)
        _close(fit.theta, base.theta, scale=1.0)
        _close(fit.fixef_se, abs(scale) * base.fixef_se)
    base = _fit_quietly(SLOPE, represented, method)
    # the intercept itself is known to the precision the shifted data carry
    np.testing.assert_allclose(
        fit.fixef["Intercept"] - shift,
        scale * base.fixef["Intercept"],
        rtol=RTOL,
        atol=4 * abs(shift) * 2.0**-52,
    )
    modes = scale * base.ranef["Subject"].to_numpy()
    _close(fit.ranef["Subject"].to_numpy(), modes, scale=np.max(np.abs(modes)))
    dof = base.nobs - (base.beta.size if method == "REML" else 0)
    np.testing.assert_allclose(
        fit.loglik, base.loglik - dof * math.log(abs(scale)), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize("power", range(-8, 9))
def test_covariate_units(method: str, power: int) -> None:
    """``Days × 10^k``: the slope and its SD scale by ``10^-k``; nothing else moves."""
    factor = 10.0**power
    base = _base(SLOPE, method)
    fit = _fit_quietly(SLOPE, _sleep().assign(Days=_sleep()["Days"] * factor), method)
    _close(fit.fixef["Intercept"], base.fixef["Intercept"])
    _close(fit.fixef["Days"], base.fixef["Days"] / factor)
    _close(fit.sigma, base.sigma)
    sd, sd0 = fit.varcorr["sdcor"].to_numpy(), base.varcorr["sdcor"].to_numpy()
    _close(sd, sd0 * np.array([1.0, 1.0 / factor, 1.0, 1.0]))
    jacobian = -math.log(factor) if method == "REML" else 0.0
    np.testing.assert_allclose(fit.loglik, base.loglik + jacobian, rtol=0, atol=1e-6)
    assert not fit.singular


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize("shift", [44197.0, -1e6])
def test_shifted_fixed_covariate_is_kept(method: str, shift: float) -> None:
    """A date serial number ``44197 + Days`` is no rank deficiency: only the intercept moves."""
    formula = "Reaction ~ t + (1 | Subject)"
    base = _fit_quietly(formula, _sleep().assign(t=_sleep()["Days"]), method)
    fit = _fit_quietly(formula, _sleep().assign(t=_sleep()["Days"] + shift), method)
    assert fit.design.fixed_names == base.design.fixed_names
    _close(fit.fixef["t"], base.fixef["t"])
    _close(fit.fixef["Intercept"], base.fixef["Intercept"] - shift * base.fixef["t"])
    _close(fit.varcorr["sdcor"].to_numpy(), base.varcorr["sdcor"].to_numpy())
    np.testing.assert_allclose(fit.loglik, base.loglik, rtol=0, atol=1e-6)


@pytest.mark.parametrize("method", ["ML", "REML"])
@pytest.mark.parametrize("shift", [100.0, -1000.0, 1e5])
def test_shifted_random_slope_covariate(method: str, shift: float) -> None:
    """``(Days + c | Subject)`` is the same model: ``Σ' = T Σ Tᵀ`` with ``b₀' = b₀ − c b₁``."""
    base = _base(SLOPE, method)
    fit = _fit_quietly(SLOPE, _sleep().assign(Days=_sleep()["Days"] + shift), method)
    transform = np.array([[1.0, -shift], [0.0, 1.0]])
    expected = transform @ _covariance(base) @ transform.T
    _close(_covariance(fit), expected, scale=np.max(np.abs(expected)))
    np.testing.assert_allclose(fit.loglik, base.loglik, rtol=0, atol=1e-6)
    _close(fit.fixef["Days"], base.fixef["Days"])
    _close(fit.sigma, base.sigma)
    modes = base.ranef["Subject"].to_numpy() @ transform.T
    _close(fit.ranef["Subject"].to_numpy(), modes, scale=np.max(np.abs(modes)))


def test_row_order_and_level_labels() -> None:
    """Permuted rows and renamed, reordered levels give the same fit."""
    base = _base(SLOPE, "REML")
    rng = np.random.default_rng(7)
    data = _sleep().iloc[rng.permutation(len(_sleep()))].reset_index(drop=True)
    names = {s: f"z{999 - int(s)}" for s in data["Subject"].astype(str).unique()}
    data["Subject"] = data["Subject"].astype(str).map(names)
    fit = _fit_quietly(SLOPE, data, "REML")
    _close(fit.beta, base.beta)
    _close(fit.theta, base.theta, scale=1.0)
    _close(fit.loglik, base.loglik)
    ours = fit.ranef["Subject"]
    theirs = base.ranef["Subject"].rename(index=lambda s: names[str(s)])
    _close(ours.loc[theirs.index].to_numpy(), theirs.to_numpy(), scale=10.0)


@pytest.mark.parametrize("method", ["ML", "REML"])
def test_nested_model_under_affine_response(method: str) -> None:
    """Three-level classroom data, ``(1 | schoolid/classid)``: the same invariance."""
    data = hm.datasets.load("classroom")
    formula = "mathgain ~ mathkind + ses + (1 | schoolid/classid)"
    shift, scale = 5e9, 1e-4
    shifted = shift + scale * data["mathgain"]
    fit = _fit_quietly(formula, data.assign(mathgain=shifted), method)
    # the stored values keep ~1e-3 of the scaled response's digits: compare with their fit
    base = _fit_quietly(formula, data.assign(mathgain=(shifted - shift) / scale), method)
    _close(fit.beta[1:], scale * base.beta[1:])
    _close(fit.theta, base.theta, scale=1.0)
    _close(fit.sigma, scale * base.sigma)
    dof = base.nobs - (base.beta.size if method == "REML" else 0)
    np.testing.assert_allclose(fit.loglik, base.loglik - dof * math.log(scale), atol=1e-6)


@settings(max_examples=12, deadline=None, derandomize=True)
@given(
    shift=st.floats(-1e12, 1e12),
    log_scale=st.floats(-8.0, 8.0),
    days_power=st.integers(-8, 8),
    days_shift=st.floats(-1e3, 1e3),
)
def test_affine_changes_together(
    shift: float, log_scale: float, days_power: int, days_shift: float
) -> None:
    """Response and random-slope covariate changed at once (ML): every estimate follows.

    Compared with the fit of the values the changed columns represent, since
    stored as ``a + b·y`` the response keeps only ``|a| × 2⁻⁵²`` of its digits.
    """
    scale, factor = 10.0**log_scale, 10.0**days_power
    data = _sleep().assign(
        Reaction=shift + scale * _sleep()["Reaction"],
        Days=factor * (_sleep()["Days"] + days_shift),
    )
    fit = _fit_quietly(SLOPE, data, "ML")
    represented = data.assign(
        Reaction=(data["Reaction"] - shift) / scale, Days=data["Days"] / factor - days_shift
    )
    base = _fit_quietly(SLOPE, represented, "ML")
    # Days' = f (Days + d): b₀' = b₀ − d b₁, b₁' = b₁ / f, both in response units × scale
    transform = scale * np.array([[1.0, -days_shift], [0.0, 1.0 / factor]])
    expected = transform @ _covariance(base) @ transform.T
    scales = np.sqrt(np.outer(np.diag(expected), np.diag(expected)))
    np.testing.assert_allclose(_covariance(fit) / scales, expected / scales, atol=1e-6)
    _close(fit.sigma, scale * base.sigma)
    _close(fit.fixef["Days"], scale * base.fixef["Days"] / factor)
    np.testing.assert_allclose(
        fit.loglik, base.loglik - base.nobs * math.log(scale), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize(("factor", "shift"), [(1.0, 0.0), (1e-4, 0.0), (1e4, 0.0), (1.0, -500.0)])
def test_glmm_covariate_units_and_location(factor: float, shift: float) -> None:
    """lme4's elston test model, HEIGHT uncentred, in other units or shifted.

    Every version reaches glmmTMB's exact-Laplace optimum
    (``tests/reference/glmmTMB/grouseticks_elston.json``); uncentred, the
    unstandardised optimiser stopped 0.41 log-likelihood units short of it.
    """
    from tests.reference.lme4_names import term_to_lme4

    reference = Path(__file__).parents[1] / "reference" / "glmmTMB" / "grouseticks_elston.json"
    ref = json.loads(reference.read_text())
    data = hm.datasets.load("grouseticks")
    data = data.assign(HEIGHT=factor * (data["HEIGHT"] + shift))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = hm.Model(ref["formula"], data, family="poisson").fit_mle()
    expected = ref["glmmTMB"]["fixef"]
    np.testing.assert_allclose(fit.loglik, ref["glmmTMB"]["logLik"], rtol=0, atol=1e-6)
    assert fit.fixef["HEIGHT"] == pytest.approx(expected["HEIGHT"] / factor, rel=1e-4)
    intercept = expected["(Intercept)"] - shift * expected["HEIGHT"]
    assert fit.fixef["Intercept"] == pytest.approx(intercept, rel=1e-4)
    for name in ("YEAR[T.96]", "YEAR[T.97]"):
        assert fit.fixef[name] == pytest.approx(expected[term_to_lme4(name)], rel=1e-4)
    sds = fit.varcorr.set_index("grp")["sdcor"]
    for group, sd in ref["glmmTMB"]["sd"].items():
        assert sds[group] == pytest.approx(sd, rel=1e-3)


def test_profile_follows_a_shift_of_the_response() -> None:
    """The profile deviance of an SD is the same curve for ``Reaction + 1e12``."""
    from hiermodels.mle.profile import profile_sd

    base = _base(SLOPE, "ML")
    data = _sleep().assign(Reaction=_sleep()["Reaction"] + 1e12)
    fit = _fit_quietly(SLOPE, data, "ML")
    grid = [3.5, 5.7, 9.0]
    ours = profile_sd(fit, "sd_Subject__Days", grid)
    theirs = profile_sd(base, "sd_Subject__Days", grid)
    np.testing.assert_allclose(ours["delta"], theirs["delta"], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("laplace", ["exact", "glmer"])
def test_uncentred_elston_model_reaches_lme4s_optimum(laplace: str) -> None:
    """lme4's tests/elston.R model, HEIGHT uncentred: deviance 1780.543 in both Laplace modes.

    lme4 reports ``deviance(fit) + ...`` of 1780.5427 at its optimum
    (``tests/reference/glmmTMB/grouseticks_elston.json``, made by
    ``make_elston_reference.R``): the exact Laplace approximation agrees with
    glmmTMB's logLik, glmer's evaluation with glmer's, both to 1e-3 in
    deviance, without a warning and without a linear-algebra error at any
    trial point.
    """
    reference = Path(__file__).parents[1] / "reference" / "glmmTMB" / "grouseticks_elston.json"
    ref = json.loads(reference.read_text())
    data = hm.datasets.load("grouseticks")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = hm.Model(ref["formula"], data, family="poisson").fit_mle(laplace=laplace)
    program = "glmmTMB" if laplace == "exact" else "glmer"
    expected = -2.0 * ref[program]["logLik"]
    assert expected == pytest.approx(1780.543, abs=1e-3)
    assert -2.0 * fit.loglik == pytest.approx(expected, abs=1e-3)
