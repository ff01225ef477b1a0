"""Group effects integrated out: exact marginal likelihood, exact conditional draws,
and the same posterior as the joint graph."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pymc as pm
import pytest
import xarray as xr
from scipy import stats

from hiermodels.bayes import build_marginal_model, fit_bayes
from hiermodels.bayes.effect_draws import conditional_effects
from hiermodels.bayes.marginal_graph import can_marginalize
from hiermodels.bayes.samplers import sample_pymc_model
from hiermodels.design.design import Design, build_design
from tests.bayes.conftest import assert_posteriors_agree

pytestmark = pytest.mark.xdist_group("bayes-marginal")


def _data(seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat([f"g{i}" for i in range(9)], rng.integers(2, 7, 9))
    frame = pd.DataFrame({"g": g, "x": rng.normal(size=g.size), "h": rng.integers(0, 3, g.size)})
    frame["y"] = 1.0 + frame["x"] + rng.normal(size=g.size)
    frame["off"] = rng.normal(size=g.size)
    return frame


def _dense_covariance(design: Design, sds: list[float], r: float) -> np.ndarray:
    (layout,) = design.factors
    q = len(sds)
    corr = np.eye(q)
    if q == 2 and layout.correlated_spans:
        corr[0, 1] = corr[1, 0] = r
    sigma_u = np.outer(sds, sds) * corr
    Z = np.zeros((design.nobs, len(layout.levels) * q))
    for k in range(q):
        Z[np.arange(design.nobs), layout.codes * q + k] = layout.X[:, k]
    return Z @ np.kron(np.eye(len(layout.levels)), sigma_u) @ Z.T


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (x | g)", "y ~ x + (x || g)"])
def test_marginal_likelihood_equals_the_dense_multivariate_normal(formula: str) -> None:
    frame = _data()
    design = build_design(formula, frame, "gaussian", offset="off")
    model = build_marginal_model(design)
    (graph,) = model.replace_rvs_by_values(model.potentials)
    potential = model.compile_fn(graph, inputs=model.value_vars, on_unused_input="ignore")
    beta, sigma, r = np.array([0.7, 1.3]), 0.8, -0.35
    (layout,) = design.factors
    sds = [0.9, 0.5][: len(layout.terms)]
    point = {
        "beta_centered__": model.rvs_to_transforms[model["beta"]].forward(beta).eval(),
        "sigma_log__": np.log(sigma),
        "corr_g__raw_logodds__": np.log((1 + r) / (1 - r)),
    }
    for term, sd in zip(layout.terms, sds, strict=True):
        point[f"sd_g__{term}_log__"] = np.log(sd)
    point = {k: v for k, v in point.items() if k in {v.name for v in model.value_vars}}
    cov = _dense_covariance(design, sds, r) + sigma**2 * np.eye(design.nobs)
    mean = design.X @ beta + design.offset
    expected = stats.multivariate_normal(mean, cov).logpdf(design.y)
    assert float(potential(point)) == pytest.approx(expected, rel=1e-10)


def test_conditional_draws_have_the_exact_gaussian_mean_and_covariance() -> None:
    frame = _data()
    design = build_design("y ~ x + (x | g)", frame, "gaussian")
    beta, sds, r, sigma = np.array([0.7, 1.3]), [0.9, 0.5], -0.35, 0.8
    n = 40_000
    posterior = xr.Dataset(
        {
            "beta": (("chain", "draw", "coef"), np.broadcast_to(beta, (1, n, 2))),
            "sd_g__Intercept": (("chain", "draw"), np.full((1, n), sds[0])),
            "sd_g__x": (("chain", "draw"), np.full((1, n), sds[1])),
            "corr_g": (
                ("chain", "draw", "a", "b"),
                np.broadcast_to([[1, r], [r, 1]], (1, n, 2, 2)),
            ),
            "sigma": (("chain", "draw"), np.full((1, n), sigma)),
        },
        coords={"chain": [0], "draw": np.arange(n), "coef": ["Intercept", "x"]},
    )
    draws = conditional_effects(posterior, design, np.random.default_rng(0))["u_g"]
    assert draws.dims == ("chain", "draw", "g", "g__term")
    # dense posterior of u: precision Sigma_u^-1 + Z'Z / sigma^2 per level
    (layout,) = design.factors
    sigma_u = np.outer(sds, sds) * np.array([[1, r], [r, 1]])
    resid = design.y - design.X @ beta
    for j in (0, 4, 8):
        rows = layout.codes == j
        Zj = layout.X[rows]
        cov = np.linalg.inv(np.linalg.inv(sigma_u) + Zj.T @ Zj / sigma**2)
        mean = cov @ Zj.T @ resid[rows] / sigma**2
        sample = draws.isel(chain=0, g=j).values
        se = np.sqrt(np.diag(cov) / n)
        np.testing.assert_array_less(np.abs(sample.mean(axis=0) - mean), 5 * se)
        np.testing.assert_allclose(np.cov(sample.T), cov, rtol=0.05, atol=0.02 * cov.max())


def test_marginal_and_joint_sampling_agree(sleep_design: Design) -> None:
    settings = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 8, "progressbar": False}
    marginal = fit_bayes(sleep_design, **settings)
    joint = fit_bayes(sleep_design, marginalize=False, **settings)
    assert marginal.marginalized and not joint.marginalized
    assert "z_Subject" in marginal.posterior and "z_Subject" in joint.posterior
    assert_posteriors_agree(marginal, joint, hyper="estimate")
    ess = [fit.diagnostics(warn=False).min_ess_bulk for fit in (marginal, joint)]
    assert ess[0] > ess[1]


def test_which_designs_are_marginalized() -> None:
    frame = _data()
    frame["k"] = np.tile(["a", "b"], len(frame))[: len(frame)]

    def design(formula: str, family: str = "gaussian") -> Design:
        return build_design(formula, frame, family)

    assert can_marginalize(design("y ~ x + (1 | g)"))
    assert can_marginalize(design("y ~ x + (x || g)"))
    assert not can_marginalize(design("y ~ x + (1 | g) + (1 | k)"))
    assert not can_marginalize(design("y ~ x + (x + h | g)"))
    frame["y"] = frame["x"] > 0
    assert not can_marginalize(design("y ~ x + (1 | g)", "bernoulli"))


def test_marginalize_requests_that_cannot_be_met_are_refused(sleep_design: Design) -> None:
    crossed = build_design("y ~ x + (1 | g) + (1 | h)", _data(), "gaussian")
    with pytest.raises(ValueError, match="integrated out only by nutpie's direct backend"):
        fit_bayes(crossed, marginalize=True, sampler="pymc")
    frame = _data()
    frame["y"] = (frame["y"] > frame["y"].median()).astype(int)
    bernoulli = build_design("y ~ x + (1 | g)", frame, "bernoulli")
    with pytest.raises(ValueError, match="integrated out exactly only in gaussian models"):
        fit_bayes(bernoulli, marginalize=True)
    with pytest.raises(ValueError, match=re.escape("fixed_values are not available")):
        fit_bayes(sleep_design, marginalize=True, fixed_values={"sigma": 25.0})


def test_numba_and_python_backends_agree() -> None:
    frame = _data(seed=9)
    design = build_design("y ~ x + (1 | g) + (1 | h)", frame, "gaussian")
    settings = {"draws": 1000, "tune": 1000, "chains": 2, "random_seed": 3, "progressbar": False}
    native = fit_bayes(design, backend="numba", **settings)
    python = fit_bayes(design, backend="python", **settings)
    a, b = native.fixef_summary(), python.fixef_summary()
    assert np.all(np.abs(a["estimate"] - b["estimate"]) < 0.3 * b["se"])
    va = native.varcorr_summary().set_index("name")
    vb = python.varcorr_summary().set_index("name")
    assert np.all(np.abs(va["median"] - vb["median"]) < 0.3 * vb["se"])


def test_python_backend_treats_parameters_outside_their_support_as_zero_density() -> None:
    """PyMC's parameter checks raise inside the logp; nutpie must see -inf, not an error."""
    with pm.Model() as model:
        scale = pm.Normal("scale", 1.0, 1.0)  # may go negative: an invalid sigma below
        pm.Normal("y", 0.0, sigma=scale, observed=[0.3, -0.2, 0.5])
    idata = sample_pymc_model(
        model, draws=300, tune=300, chains=2, random_seed=1, progressbar=False, backend="python"
    )
    assert np.all(idata["posterior"]["scale"].values > 0)
