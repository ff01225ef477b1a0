"""Nested random intercepts integrated out: exact likelihood, gradient, conditional draws,
and the same posterior as the full graph."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from hiermodels.bayes import fit_bayes
from hiermodels.bayes.nested_density import (
    NestedDensity,
    nested_conditional_effects,
    nested_intercepts,
    nested_loglik,
)
from hiermodels.bayes.priors import group_term_layout, resolve_priors
from hiermodels.spec.design import Design, build_design
from tests.bayes.conftest import assert_posteriors_agree

pytestmark = pytest.mark.xdist_group("bayes-nested")


def _data(seed: int = 2) -> pd.DataFrame:
    """10 schools with 1-4 classes of 1-6 pupils (unbalanced, some singletons)."""
    rng = np.random.default_rng(seed)
    rows = []
    for school in range(10):
        b_school = rng.normal(0, 1.0)
        for klass in range(int(rng.integers(1, 5))):
            b_class = rng.normal(0, 0.7)
            for _ in range(int(rng.integers(1, 7))):
                x = rng.normal()
                y = 2.0 + 0.5 * x + b_school + b_class + rng.normal(0, 0.8)
                rows.append({"school": f"s{school}", "klass": f"c{klass}", "x": x, "y": y})
    frame = pd.DataFrame(rows)
    frame["off"] = rng.normal(0, 0.3, len(frame))
    return frame


def _design(formula: str = "y ~ x + (1 | school/klass)", **kwargs: object) -> Design:
    return build_design(formula, _data(), "gaussian", **kwargs)


def _dense_covariance(
    design: Design, tau_outer: float, tau_inner: float, sigma: float
) -> np.ndarray:
    outer, inner = nested_intercepts(design)
    z_outer = np.eye(len(outer.levels))[outer.codes]
    z_inner = np.eye(len(inner.levels))[inner.codes]
    return (
        tau_outer**2 * z_outer @ z_outer.T
        + tau_inner**2 * z_inner @ z_inner.T
        + sigma**2 * np.eye(design.nobs)
    )


def test_which_designs_have_nested_intercepts() -> None:
    frame = _data()
    frame["h"] = np.tile(["a", "b", "c"], len(frame))[: len(frame)]
    outer, inner = nested_intercepts(_design())
    assert (outer.group, inner.group) == ("school", "school:klass")
    explicit = build_design("y ~ x + (1 | school) + (1 | school:klass)", frame, "gaussian")
    assert nested_intercepts(explicit)[0].group == "school"
    assert (
        nested_intercepts(build_design("y ~ x + (1 | school) + (1 | h)", frame, "gaussian")) is None
    )
    assert nested_intercepts(build_design("y ~ x + (x | school/klass)", frame, "gaussian")) is None
    assert nested_intercepts(build_design("y ~ x + (1 | school)", frame, "gaussian")) is None
    frame["y"] = frame["y"] > 2
    assert nested_intercepts(build_design("y ~ x + (1 | school/klass)", frame, "bernoulli")) is None


def test_likelihood_equals_the_dense_multivariate_normal_and_its_gradient() -> None:
    design = _design(offset="off")
    beta, tau_outer, tau_inner, sigma = np.array([1.7, 0.4]), 0.9, 0.6, 0.75
    value, gradient = nested_loglik(design, beta, tau_outer, tau_inner, sigma)
    cov = _dense_covariance(design, tau_outer, tau_inner, sigma)
    expected = stats.multivariate_normal(design.X @ beta + design.offset, cov).logpdf(design.y)
    assert value == pytest.approx(expected, rel=1e-12)
    args = [*beta, tau_outer, tau_inner, sigma]

    def at(values: list[float]) -> float:
        return nested_loglik(design, np.array(values[:2]), *values[2:])[0]

    for k in range(len(args)):
        up, down = list(args), list(args)
        up[k] += 1e-6
        down[k] -= 1e-6
        assert gradient[k] == pytest.approx((at(up) - at(down)) / 2e-6, rel=1e-6, abs=1e-7)


def test_density_is_likelihood_plus_priors_and_its_gradient_is_exact() -> None:
    design = _design()
    priors = resolve_priors(design)
    density = NestedDensity(design, priors)
    x = density.initial_point(4)
    state = density.expand(x)
    np.testing.assert_allclose(density.unconstrain(state), x, rtol=1e-12)
    like, _ = nested_loglik(
        design,
        state["beta"],
        float(state["sd_school__Intercept"]),
        float(state["sd_school:klass__Intercept"]),
        float(state["sigma"]),
    )
    prior_total = sum(
        stats.norm(priors[f"beta__{c}"].params["mu"], priors[f"beta__{c}"].params["sigma"]).logpdf(
            b
        )
        for c, b in zip(density.coef, state["beta"], strict=True)
    )
    for name in ("sd_school__Intercept", "sd_school:klass__Intercept", "sigma"):
        prior = priors[name]  # HalfStudentT(nu, sigma): twice the Student-t density, log-Jacobian
        value = float(state[name])
        half_t = stats.t(prior.params["nu"], scale=prior.params["sigma"]).logpdf(value)
        prior_total += math.log(2.0) + half_t + math.log(value)
    value, gradient = density.logp(x)
    assert value == pytest.approx(like + prior_total, rel=1e-10)
    for k in range(density.ndim):
        up, down = x.copy(), x.copy()
        up[k] += 1e-6
        down[k] -= 1e-6
        slope = (density.logp(up)[0] - density.logp(down)[0]) / 2e-6
        assert gradient[k] == pytest.approx(slope, rel=1e-5, abs=1e-5)


def test_overflowing_points_give_minus_infinity() -> None:
    design = _design()
    density = NestedDensity(design, resolve_priors(design))
    for far in (800.0, -800.0):
        x = density.initial_point(0)
        x[-1] = far
        value, gradient = density.logp(x)
        assert value == -math.inf and np.all(gradient == 0.0)


def test_conditional_draws_have_the_exact_gaussian_mean_and_covariance() -> None:
    design = _design()
    beta, tau_outer, tau_inner, sigma = np.array([1.7, 0.4]), 0.9, 0.6, 0.75
    n = 40_000
    posterior = xr.Dataset(
        {
            "beta": (("chain", "draw", "coef"), np.broadcast_to(beta, (1, n, 2))),
            "sd_school__Intercept": (("chain", "draw"), np.full((1, n), tau_outer)),
            "sd_school:klass__Intercept": (("chain", "draw"), np.full((1, n), tau_inner)),
            "sigma": (("chain", "draw"), np.full((1, n), sigma)),
        },
        coords={"chain": [0], "draw": np.arange(n), "coef": ["Intercept", "x"]},
    )
    draws = nested_conditional_effects(posterior, design, np.random.default_rng(0))
    outer, inner = nested_intercepts(design)
    # dense joint posterior of (b_outer, b_inner): prior precision plus Z'Z / sigma^2
    z = np.hstack([np.eye(len(outer.levels))[outer.codes], np.eye(len(inner.levels))[inner.codes]])
    prior_var = np.r_[
        np.full(len(outer.levels), tau_outer**2), np.full(len(inner.levels), tau_inner**2)
    ]
    cov = np.linalg.inv(np.diag(1 / prior_var) + z.T @ z / sigma**2)
    mean = cov @ z.T @ (design.y - design.X @ beta) / sigma**2
    sample = np.hstack(
        [
            draws["u_school"].values[0, :, :, 0],
            draws["u_school:klass"].values[0, :, :, 0],
        ]
    )
    se = np.sqrt(np.diag(cov) / n)
    np.testing.assert_array_less(np.abs(sample.mean(axis=0) - mean), 5 * se)
    np.testing.assert_allclose(np.cov(sample.T), cov, atol=0.03 * cov.max())
    np.testing.assert_allclose(
        draws["z_school"].values * tau_outer, draws["u_school"].values, rtol=1e-12
    )


def test_nested_and_full_graph_sampling_agree() -> None:
    design = _design()
    settings = {"draws": 1000, "tune": 1000, "chains": 4, "random_seed": 8, "progressbar": False}
    nested = fit_bayes(design, **settings)
    full = fit_bayes(design, marginalize=False, **settings)
    assert nested.marginalized and not full.marginalized
    for name in ("z_school", "u_school:klass"):
        assert nested.posterior[name].dims == full.posterior[name].dims
    assert_posteriors_agree(nested, full, hyper="median")
    assert nested.diagnostics(warn=False).divergences == 0


def test_nested_marginalisation_needs_the_direct_backend() -> None:
    design = _design()
    with pytest.raises(ValueError, match="integrated out only by nutpie's direct backend"):
        fit_bayes(design, marginalize=True, sampler="pymc")
    with pytest.raises(ValueError, match="intercepts of two nested factors"):
        NestedDensity(
            build_design("y ~ x + (x | school)", _data(), "gaussian"), resolve_priors(design)
        )
    assert [layout.group for layout in group_term_layout(design)] == ["school", "school:klass"]
