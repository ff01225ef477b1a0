"""The plain-Python prior densities equal PyMC's, Jacobian and gradient included."""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor
import pytest
from scipy import special

from hiermodels.bayes.prior_density import lkj_pair_prior, scalar_prior
from hiermodels.bayes.priors import POSITIVE_DISTS, REAL_DISTS, Prior

#: Every accepted distribution in each of PyMC's parameterisations.
REAL_PRIORS = [
    Prior("Normal", mu=1.5, sigma=2.0),
    Prior("Normal", mu=-1.0, tau=0.25),
    Prior("StudentT", nu=3.0, mu=0.5, sigma=2.0),
    Prior("StudentT", nu=7.0, lam=4.0),
    Prior("Cauchy", alpha=0.3, beta=1.7),
    Prior("Laplace", mu=-0.2, b=0.8),
    Prior("Logistic", mu=1.0, s=0.6),
    Prior("Flat"),
    Prior("Gumbel", mu=0.4, beta=1.3),
    Prior("SkewNormal", alpha=4.0, mu=0.0, sigma=1.5),
    Prior("SkewNormal", alpha=-2.0, mu=1.0, tau=2.0),
]
POSITIVE_PRIORS = [
    Prior("HalfNormal", sigma=2.0),
    Prior("HalfNormal", tau=0.5),
    Prior("HalfStudentT", nu=3.0, sigma=1.5),
    Prior("HalfStudentT", nu=4.0, lam=2.0),
    Prior("HalfCauchy", beta=2.5),
    Prior("Exponential", lam=0.7),
    Prior("Exponential", scale=3.0),
    Prior("Gamma", alpha=2.0, beta=0.5),
    Prior("Gamma", mu=2.0, sigma=1.0),
    Prior("InverseGamma", alpha=3.0, beta=2.0),
    Prior("InverseGamma", mu=1.5, sigma=0.5),
    Prior("LogNormal", mu=0.3, sigma=0.7),
    Prior("LogNormal", mu=-0.5, tau=4.0),
    Prior("Weibull", alpha=1.8, beta=2.2),
    Prior("HalfFlat"),
    Prior("ChiSquared", nu=4.0),
]
UNCONSTRAINED = np.array([-3.1, -0.7, 0.0, 0.45, 2.3])

#: PyMC writes some constants of its densities as literals that PyTensor stores in float32
#: (``pt.log(2)``, ``0.5``), so its values carry float32 rounding of the constants.
RTOL = 1e-7


def _pymc_reference(prior: Prior) -> tuple[str, pytensor.compile.Function]:
    """PyMC's log density (with the default transform's Jacobian) and its gradient."""
    with pm.Model() as model:
        # float64 parameters: a bare Python 2.0 would become a float32 constant
        getattr(pm, prior.dist)("x", **{k: np.float64(v) for k, v in prior.params.items()})
    (value,) = model.value_vars
    logp = model.logp()
    slope = pytensor.grad(logp, value, disconnected_inputs="ignore")  # Flat: a constant
    fn = pytensor.function([value], [logp, slope], mode="FAST_COMPILE")
    return value.name, fn


def test_every_accepted_distribution_is_covered() -> None:
    assert {p.dist for p in REAL_PRIORS} == set(REAL_DISTS)
    assert {p.dist for p in POSITIVE_PRIORS} == set(POSITIVE_DISTS)


@pytest.mark.parametrize(
    ("name", "prior"),
    [("beta__x", p) for p in REAL_PRIORS] + [("sd_g__Intercept", p) for p in POSITIVE_PRIORS],
    ids=lambda v: repr(v) if isinstance(v, Prior) else v,
)
def test_scalar_prior_matches_pymc(name: str, prior: Prior) -> None:
    density = scalar_prior(name, prior)
    value_name, reference = _pymc_reference(prior)
    assert value_name.endswith("_log__") == (density.transform == "log")
    for v in UNCONSTRAINED:
        x, logp, slope = density(float(v))
        ref_logp, ref_slope = reference(np.asarray(v))
        assert logp == pytest.approx(float(ref_logp), rel=RTOL, abs=RTOL)
        assert slope == pytest.approx(float(ref_slope), rel=RTOL, abs=RTOL)
        assert density.unconstrain(x) == pytest.approx(v, abs=1e-12)


@pytest.mark.parametrize("eta", [0.5, 1.0, 2.0, 7.5])
def test_lkj_pair_is_pymc_beta_on_the_log_odds_scale(eta: float) -> None:
    density = lkj_pair_prior("corr_g__raw", Prior("LKJCorr", eta=eta))
    _, reference = _pymc_reference(Prior("Beta", alpha=eta, beta=eta))
    for v in UNCONSTRAINED:
        half, logp, slope = density(float(v))
        ref_logp, ref_slope = reference(np.asarray(v))
        assert logp == pytest.approx(float(ref_logp), rel=RTOL, abs=RTOL)
        assert slope == pytest.approx(float(ref_slope), rel=RTOL, abs=RTOL)
        assert half == pytest.approx(1.0 / (1.0 + np.exp(-v)), rel=1e-14)
    # far out, where (r + 1) / 2 rounds to 0 or 1, the density stays finite (PyMC's: -inf)
    for v in (40.0, -40.0, 800.0):
        _, logp, slope = density(v)
        # eta (log x + log(1 - x)) -> -eta |v| as |v| grows
        assert logp == pytest.approx(-special.betaln(eta, eta) - eta * abs(v), rel=1e-12)
        assert slope == pytest.approx(-eta * np.sign(v), rel=1e-12)


def test_a_prior_of_the_wrong_support_is_refused() -> None:
    with pytest.raises(ValueError, match="not a distribution on x > 0"):
        scalar_prior("sigma", Prior("Normal", mu=0.0, sigma=1.0))
    with pytest.raises(ValueError, match="not a distribution on the real line"):
        scalar_prior("beta__x", Prior("HalfNormal", sigma=1.0))
    with pytest.raises(ValueError, match="not an LKJCorr prior"):
        lkj_pair_prior("corr_g__raw", Prior("Normal", mu=0.0, sigma=1.0))
