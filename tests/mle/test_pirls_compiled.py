"""The compiled PIRLS (hiermodels.mle.pirls) against the Python reference it replaced.

tests/mle/reference_pirls.py holds PIRLS as hiermodels.mle.laplace ran it in
Python. On every GLMM data set shipped or simulated here, and at points from
the start values to far out (variances a thousand times too large, linear
predictors 30 units off, the kind of point an optimiser probes), the
compiled engine must give the same conditional modes, the same factor and
the same Laplace deviance — to round-off — and fail (LinAlgError) where the
reference fails.

One kind of point is left out: an SD far out *and* a linear predictor far
out at once, as (θ = 30 × start, β − 30) on the correlated-slope model. There
half the probabilities sit at the clip of 1e-10, the penalised deviance is
flat and kinked in ``u``, and PIRLS stops where round-off lets it: the
reference computing ``ΛU`` with ``einsum`` instead of ``@`` (one FMA fewer)
moves its own mode by 1e-5, exactly to the compiled engine's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import special
from threadpoolctl import threadpool_limits

import hiermodels as hm
from hiermodels.mle import kernels
from hiermodels.mle.blocked import ReLayout
from hiermodels.mle.glmm_stages import glm_start
from hiermodels.mle.kernels.glm import _ndtr
from hiermodels.mle.laplace import GlmerLaplaceDeviance, LaplaceDeviance, PirlsResult
from hiermodels.mle.pirls import pirls_family
from hiermodels.mle.response import GlmResponse
from hiermodels.mle.standardize import Standardization
from tests.mle import reference_pirls as reference

DEVIANCE_RTOL = 1e-10
MODE_TOL = 1e-8

#: (θ as a multiple of the start, shift of every β from the GLM's): start, near
#: zero, moderate, and far out in either or both
POINTS = list(itertools.product([0.0, 1e-3, 0.5, 1.0, 3.0, 1e3], [0.0, 3.0, -30.0]))


def _bernoulli_slope(seed: int = 7, n: int = 1934, groups: int = 60) -> pd.DataFrame:
    """Bernoulli, ``(x | g)`` with SDs 0.8 and 0.4 correlated 0.3, six covariates."""
    rng = np.random.default_rng(seed)
    g = rng.permutation(np.arange(n) % groups)
    x = rng.standard_normal((n, 6))
    beta = np.array([-0.4, 0.8, 0.5, -0.4, 0.3, 0.2, -0.2])
    chol = np.linalg.cholesky(np.array([[0.64, 0.096], [0.096, 0.16]]))
    b = rng.standard_normal((groups, 2)) @ chol.T
    eta = beta[0] + x @ beta[1:] + b[g, 0] + b[g, 1] * x[:, 0]
    y = (rng.random(n) < special.expit(eta)).astype(int)
    frame = pd.DataFrame({"y": y, "x": x[:, 0], "g": [f"g{v:02d}" for v in g]})
    for k in range(1, 6):
        frame[f"x{k}"] = x[:, k]
    return frame


def _bernoulli_crossed(seed: int = 8) -> pd.DataFrame:
    """Bernoulli on 40 × 12 crossed levels (2 rows a cell), a slope varying by ``b``."""
    rng = np.random.default_rng(seed)
    a = np.repeat(np.arange(40), 24)
    b = np.tile(np.repeat(np.arange(12), 2), 40)
    x = rng.standard_normal(a.size)
    eta = (
        0.2
        + 0.5 * x
        + rng.normal(0.0, 0.7, 40)[a]
        + rng.normal(0.0, 0.5, 12)[b]
        + rng.normal(0.0, 0.3, 12)[b] * x
    )
    y = (rng.random(a.size) < special.expit(eta)).astype(int)
    return pd.DataFrame(
        {"y": y, "x": x, "a": [f"a{v:02d}" for v in a], "b": [f"b{v:02d}" for v in b]}
    )


def _bernoulli_probit() -> tuple[pd.DataFrame, str]:
    from tests.bayes import simulate

    truth = simulate.bernoulli(seed=25, link="probit")
    return truth.data, truth.formula


def _model(name: str) -> hm.Model:
    if name == "cbpp":
        return hm.Model(
            "cbind(incidence, size - incidence) ~ period + (1 | herd)",
            hm.datasets.load("cbpp"),
            family="binomial",
        )
    if name == "grouseticks":
        return hm.Model(
            "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)",
            hm.datasets.load("grouseticks"),
            family="poisson",
        )
    if name == "bernoulli-slope":
        return hm.Model(
            "y ~ x + x1 + x2 + x3 + x4 + x5 + (x | g)", _bernoulli_slope(), family="bernoulli"
        )
    if name == "bernoulli-probit":
        data, formula = _bernoulli_probit()
        return hm.Model(formula, data, family="bernoulli", link="probit")
    if name == "bernoulli-crossed":
        return hm.Model("y ~ x + (1 | a) + (x | b)", _bernoulli_crossed(), family="bernoulli")
    raise KeyError(name)


MODELS = ["cbpp", "grouseticks", "bernoulli-slope", "bernoulli-probit", "bernoulli-crossed"]


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """BLAS on one thread, as in a fit: the trailing blocks' potrf is slow on several."""
    with threadpool_limits(1, user_api="blas"):
        yield


@cache
def _deviance(name: str) -> tuple[LaplaceDeviance, np.ndarray]:
    """The Laplace deviance of a standardised design (as fitted) and the GLM's β."""
    model = _model(name)
    design = Standardization.of(model.design).apply(model.design)
    lap = LaplaceDeviance(design, ReLayout.from_design(design), GlmResponse.from_design(design))
    return lap, glm_start(design, lap.response)


def _point(lap: LaplaceDeviance, beta0: np.ndarray, scale: float, shift: float) -> tuple:
    theta = lap.layout.theta.start() * scale
    return theta, beta0 + shift


def _fresh(lap: LaplaceDeviance) -> LaplaceDeviance:
    """The same deviance with an empty warm start."""
    return LaplaceDeviance(lap.design, lap.layout, lap.response)


def _outcome(evaluate: Callable[..., PirlsResult], *args: object) -> PirlsResult | None:
    """``evaluate(*args)``, or None where it raises LinAlgError."""
    try:
        return evaluate(*args)
    except np.linalg.LinAlgError:
        return None


def _assert_same(
    compiled: PirlsResult | None, python: PirlsResult | None, beta_rtol: float = MODE_TOL
) -> None:
    """Same failure, deviance, modes, factor; ``beta_rtol`` bounds β and η (relative)."""
    if python is None:
        assert compiled is None, "the reference fails (LinAlgError) but the compiled PIRLS not"
        return
    assert compiled is not None, "the compiled PIRLS fails (LinAlgError) but the reference not"
    if math.isfinite(python.deviance):
        assert compiled.deviance == pytest.approx(python.deviance, rel=DEVIANCE_RTOL)
    else:
        assert compiled.deviance == python.deviance or (
            math.isnan(compiled.deviance) and math.isnan(python.deviance)
        )
    scale = 1.0 + float(np.max(np.abs(python.u_lead), initial=0.0))
    np.testing.assert_allclose(compiled.u_lead, python.u_lead, rtol=0, atol=MODE_TOL * scale)
    np.testing.assert_allclose(compiled.u_rest, python.u_rest, rtol=0, atol=MODE_TOL * scale)
    np.testing.assert_allclose(compiled.eta, python.eta, rtol=beta_rtol, atol=MODE_TOL)
    logdet = python.factor.logdet()
    assert compiled.factor.logdet() == pytest.approx(logdet, rel=DEVIANCE_RTOL, abs=1e-10)
    # entry by entry looser: with SDs 1000 times too large the trailing Schur complement
    # is O(1) left over from O(1e6) terms, and LAPACK's blocking (it factorises the upper
    # triangle here, the lower one there) moves it by 1e-8 relative
    np.testing.assert_allclose(compiled.factor.l11, python.factor.l11, rtol=1e-8)
    np.testing.assert_allclose(compiled.factor.l22, python.factor.l22, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(compiled.beta, python.beta, rtol=beta_rtol, atol=MODE_TOL)


@pytest.mark.parametrize("name", MODELS)
def test_conditional_mode_equals_the_python_pirls(name: str) -> None:
    lap, beta0 = _deviance(name)
    failures = 0
    for scale, shift in POINTS:
        theta, beta = _point(lap, beta0, scale, shift)
        python = _outcome(reference.pirls, lap, theta, beta)
        compiled = _outcome(_fresh(lap).pirls, theta, beta)
        _assert_same(compiled, python)
        failures += python is None
        if python is not None:
            # from a start of u: the reference's, and the warm start the optimiser uses
            start = (python.u_lead * 0.5, python.u_rest * 0.5)
            warm = _fresh(lap)
            warm.warm_start["u"] = start
            _assert_same(
                _outcome(warm.pirls, theta, beta),
                _outcome(reference.pirls, lap, theta, beta, start),
            )
    assert failures < len(POINTS)


def test_far_out_correlated_factor() -> None:
    """A correlation factor far from the start (T₀ with a large off-diagonal entry)."""
    lap, beta0 = _deviance("bernoulli-slope")
    for theta in ([2.0, -5.0, 0.1], [0.1, 50.0, 1e-4], [1e3, 1e3, 1e3]):
        theta = np.array(theta)
        _assert_same(
            _outcome(_fresh(lap).pirls, theta, beta0),
            _outcome(reference.pirls, lap, theta, beta0),
        )


def _joint_beta_rtol(scale: float) -> float:
    """How closely the joint PIRLS determines β and η at θ = ``scale`` × start.

    With SDs a thousand times too large the intercept and the mean of the
    random effects are all but confounded: the joint system is so
    ill-conditioned that round-off (BLAS's order of summation against the
    compiled loops') moves β along that direction by up to ~1e-6, while
    ``u`` and the deviance still agree to 1e-12. The probit model's groups
    of all successes then reach η ≈ 100, where the probability is clipped
    at 1 − 1e-10 and the deviance is flat: their η agree to ~2e-8 only.
    """
    return 1e-5 if scale > 100 else MODE_TOL


@pytest.mark.parametrize("name", MODELS)
def test_joint_pirls_equals_the_python_one(name: str) -> None:
    lap, beta0 = _deviance(name)
    for scale, shift in [(1.0, 0.0), (0.5, 0.0), (3.0, 1.0), (1e-3, 0.0), (1e3, -3.0)]:
        theta, beta = _point(lap, beta0, scale, shift)
        compiled_lap = _fresh(lap)
        compiled = _outcome(compiled_lap.pirls_joint, theta, beta)
        _assert_same(
            compiled,
            _outcome(reference.pirls_joint, lap, theta, beta),
            _joint_beta_rtol(scale),
        )
        if compiled is None:
            continue
        # the next θ starts from the joint mode just found, as in the optimiser
        warm = compiled_lap.warm_start["joint"]
        next_theta = theta * 1.1 + 0.01
        _assert_same(
            _outcome(compiled_lap.pirls_joint, next_theta, beta),
            _outcome(reference.pirls_joint, lap, next_theta, beta, warm),
            _joint_beta_rtol(scale),
        )


@pytest.mark.parametrize("name", MODELS)
def test_glmer_pirls_equals_the_python_one(name: str) -> None:
    lap, beta0 = _deviance(name)
    theta0 = lap.layout.theta.start()
    start_eta = reference.pirls_joint(lap, theta0, beta0).eta
    glmer = GlmerLaplaceDeviance(lap, start_eta)
    for scale, shift in [(1.0, 0.0), (0.5, 0.1), (3.0, -0.5), (1e-3, 0.0), (1e3, 3.0)]:
        theta, beta = _point(lap, beta0, scale, shift)
        _assert_same(
            _outcome(glmer.pirls, theta, beta),
            _outcome(reference.glmer_pirls, lap, start_eta, theta, beta),
        )


def test_failures_raise_linalg_error_as_before() -> None:
    """Counts 30 log-units too low at the start leave ``ΛᵀZᵀWZΛ + I`` singular."""
    lap, beta0 = _deviance("grouseticks")
    theta = lap.layout.theta.start()
    with pytest.raises(np.linalg.LinAlgError):
        reference.pirls(lap, theta, beta0 - 30.0)
    fresh = _fresh(lap)
    with pytest.raises(np.linalg.LinAlgError):
        fresh.pirls(theta, beta0 - 30.0)
    assert "u" not in fresh.warm_start
    assert fresh(np.concatenate([theta, beta0 - 30.0])) == math.inf


def _negative_binomial_deviance(alpha: float, information: str) -> tuple[LaplaceDeviance, ...]:
    from tests.bayes import simulate

    truth = simulate.negativebinomial_uncorrelated()
    model = hm.Model(truth.formula, truth.data, family="negativebinomial")
    design = Standardization.of(model.design).apply(model.design)
    response = GlmResponse.from_design(design, dispersion=alpha).with_information(information)
    lap = LaplaceDeviance(design, ReLayout.from_design(design), response)
    return lap, glm_start(design, response)


@pytest.mark.parametrize("information", ["observed", "expected"])
@pytest.mark.parametrize("alpha", [0.5, 5.0, 1e8, math.inf])
def test_negative_binomial_equals_the_python_pirls(alpha: float, information: str) -> None:
    lap, beta0 = _negative_binomial_deviance(alpha, information)
    for scale, shift in [(1.0, 0.0), (0.3, 0.5), (3.0, -2.0), (1e3, 0.0)]:
        theta, beta = _point(lap, beta0, scale, shift)
        _assert_same(
            _outcome(_fresh(lap).pirls, theta, beta),
            _outcome(reference.pirls, lap, theta, beta),
        )
        _assert_same(
            _outcome(_fresh(lap).pirls_joint, theta, beta),
            _outcome(reference.pirls_joint, lap, theta, beta),
            _joint_beta_rtol(scale),
        )
        start_eta = lap.design.X @ beta0
        _assert_same(
            _outcome(GlmerLaplaceDeviance(lap, start_eta).pirls, theta, beta),
            _outcome(reference.glmer_pirls, lap, start_eta, theta, beta),
        )


@pytest.mark.parametrize("name", [*MODELS, "negativebinomial"])
def test_family_kernels_equal_glm_response(name: str) -> None:
    """Weights, residuals, deviance and residual deviance, term for term, over a wide η."""
    if name == "negativebinomial":
        lap, _ = _negative_binomial_deviance(3.0, "observed")
    else:
        lap, _ = _deviance(name)
    response = lap.response
    n = response.y.size
    rng = np.random.default_rng(3)
    code, y, trials, log_constant, alpha, observed = pirls_family(response)
    for spread in (0.5, 5.0, 40.0):
        eta = rng.normal(0.0, spread, n)
        _, weights, resid = response.working(eta)
        w, r = np.empty(n), np.empty(n)
        kernels.glm_working(code, y, trials, alpha, observed, eta, w, r)
        np.testing.assert_allclose(w, weights, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(r, resid, rtol=1e-12)
        terms = np.empty(n)
        deviance = kernels.glm_deviance(code, y, trials, log_constant, alpha, eta, terms)
        assert deviance == pytest.approx(response.deviance(eta), rel=1e-13)
        residual = kernels.glm_residual_deviance(code, y, trials, alpha, eta, terms)
        with np.errstate(divide="ignore"):  # log1p(-1) where μ ≫ α and y = 0
            expected = response.residual_deviance(eta)
        assert residual == pytest.approx(expected, rel=1e-12)


def test_probit_mean_is_scipys_ndtr() -> None:
    """To the last bit: libm's erfc is not, and that moved where Fisher scoring stopped."""
    rng = np.random.default_rng(1)
    eta = np.concatenate([rng.normal(0.0, s, 20_000) for s in (0.5, 2.0, 8.0, 40.0)])
    eta = np.concatenate([eta, [0.0, 1.0, -1.0, np.sqrt(2.0), 38.0, -38.0, np.inf, -np.inf]])
    compiled = np.array([_ndtr(v) for v in eta])
    np.testing.assert_array_equal(compiled, special.ndtr(eta))
    assert math.isnan(_ndtr(math.nan))


def test_pairwise_sum_is_numpys() -> None:
    """The compiled sum adds in numpy's order: identical terms give an identical sum."""
    rng = np.random.default_rng(0)
    for n in [*range(0, 300), 1934, 8192, 8193, 100_003]:
        values = rng.standard_normal(n) * 10 ** rng.uniform(-3, 3, n)
        assert kernels.pairwise_sum(values, 0, n) == np.sum(values)
