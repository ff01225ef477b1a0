"""The general marginal density of gaussian models against the PyMC graph and dense algebra.

The log density of :class:`GaussianMarginalDensity` must be the PyMC
graph's log prior (same variables, same unconstrained coordinates, ``z``
left out) plus the dense multivariate normal log-likelihood
``N(y | Xβ, σ²I + ZGZᵀ)``; its gradient must match differences of it; its
effect draws must have the exact conditional mean and covariance.
"""

from __future__ import annotations

import math
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla

from hiermodels.bayes import fit_bayes
from hiermodels.bayes.build import build_pymc_model
from hiermodels.bayes.gaussian_density import GaussianMarginalDensity
from hiermodels.bayes.lkj_density import LkjCholeskyPrior
from hiermodels.bayes.priors import Prior, resolve_priors
from hiermodels.design.design import Design, build_design
from tests.bayes.noise import ScriptedNormals

#: Every kind of structure: crossed, partially crossed, nested to three levels with
#: slopes at two, several blocks per factor (||), correlated blocks of 2, 3 and 4 terms.
STRUCTURES = {
    "crossed": "y ~ x + (1 | a) + (1 | b)",
    "crossed-slopes": "y ~ x + (1 + x | a) + (x | b)",
    "nested-3-levels": "y ~ x + (x | a) + (x | a:c) + (1 | a:c:e)",
    "uncorrelated": "y ~ x + (x || a) + (1 | b) + (1 | c)",
    "three-terms": "y ~ x + (x + w | a) + (1 | b)",
    "four-terms": "y ~ x + (x + w + v | a) + (1 | b)",
    "no-intercept-fixed": "y ~ 0 + x + (1 | a) + (1 | b)",
    "one-factor-slopes": "y ~ x + w + (x | a)",
    "nested-intercepts": "y ~ x + (1 | a/c)",
    # 80 trailing effects, dense after the leading factor is eliminated: the factor and
    # inverse of a large trailing block (LAPACK's Cholesky, the inverse by halves)
    "large-trailing": "y ~ x + (1 | h) + (x | f)",
}


@cache
def frame() -> pd.DataFrame:
    """Simulated data with crossed (``a``, ``b``) and nested (``a:c``, ``a:c:e``) factors.

    ``b`` is partially crossed with ``a`` (not every pair occurs).
    """
    rng = np.random.default_rng(20261130)
    n = 240
    a = rng.integers(0, 10, n)
    data = pd.DataFrame(
        {
            "a": a.astype(str),
            "b": np.where(a < 5, rng.integers(0, 4, n), rng.integers(3, 7, n)).astype(str),
            "c": rng.integers(0, 3, n).astype(str),
            "e": rng.integers(0, 2, n).astype(str),
            "x": rng.normal(size=n),
            "w": rng.normal(size=n),
            "v": rng.normal(size=n),
        }
    )
    data["y"] = 3.0 + data.x + rng.normal(size=10)[a] + rng.normal(size=n)
    crossed = np.random.default_rng(20261201)
    data["h"] = crossed.integers(0, 90, n).astype(str)
    data["f"] = crossed.integers(0, 40, n).astype(str)
    return data


@cache
def design_of(name: str) -> Design:
    return build_design(STRUCTURES[name], frame(), "gaussian")


def random_point(density: GaussianMarginalDensity, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return density.initial_point(seed) + 0.4 * rng.normal(size=density.ndim)


def graph_log_prior(design: Design, density: GaussianMarginalDensity, x: np.ndarray) -> float:
    """The PyMC graph's log density of every free variable but ``z``, at ``x``."""
    model = build_pymc_model(design, density.hyper_priors)
    free = [rv for rv in model.free_RVs if not rv.name.startswith("z_")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logp = model.compile_logp(vars=free, jacobian=True)
    point = model.initial_point()
    position = 0
    for name, value in point.items():
        if name.startswith("z_"):
            continue
        point[name] = np.asarray(x[position : position + value.size]).reshape(value.shape)
        position += value.size
    assert position == x.size
    return float(logp(point))


def dense_covariance(design: Design, values: dict) -> tuple[np.ndarray, np.ndarray]:
    """``Z`` and the block-diagonal covariance ``G`` of every factor's effects."""
    columns, covariances = [], []
    for group in design.factors:
        g = group.group
        sd = np.array([float(values[f"sd_{g}__{t}"]) for t in group.terms])
        corr = np.asarray(values.get(f"corr_{g}", np.eye(sd.size)), dtype=float)
        levels, q = len(group.levels), sd.size
        z = np.zeros((design.nobs, levels * q))
        for t in range(q):
            z[np.arange(design.nobs), group.codes * q + t] = group.X[:, t]
        columns.append(z)
        covariances.append(np.kron(np.eye(levels), np.outer(sd, sd) * corr))
    return np.hstack(columns), sla.block_diag(*covariances)


def dense_loglik(design: Design, values: dict) -> float:
    z, g = dense_covariance(design, values)
    sigma = float(values["sigma"])
    cov = sigma**2 * np.eye(design.nobs) + z @ g @ z.T
    chol = np.linalg.cholesky(cov)
    white = sla.solve_triangular(chol, design.y - design.X @ values["beta"], lower=True)
    logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))
    return -0.5 * (design.nobs * np.log(2.0 * np.pi) + logdet + float(white @ white))


def make_density(name: str) -> GaussianMarginalDensity:
    design = design_of(name)
    priors = resolve_priors(design)
    density = GaussianMarginalDensity(design, priors)
    density.hyper_priors = priors  # type: ignore[attr-defined]
    return density


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_log_density_is_graph_prior_plus_dense_normal(name: str) -> None:
    design = design_of(name)
    density = make_density(name)
    for seed in (1, 2):
        x = random_point(density, seed)
        value, _ = density.logp(x)
        expected = graph_log_prior(design, density, x) + dense_loglik(design, density.expand(x))
        # PyMC's Beta(2, 2) log density (a two-term correlation) is 2.2e-8 below the
        # exact log 6 + log x + log(1 - x): an absolute 1e-7 covers two such blocks
        assert value == pytest.approx(expected, rel=1e-10, abs=1e-7)


def fourth_order_gradient(f, x: np.ndarray, h: float = 1e-3) -> np.ndarray:
    out = np.empty(x.size)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        out[i] = (8 * (f(x + e) - f(x - e)) - (f(x + 2 * e) - f(x - 2 * e))) / (12 * h)
    return out


@pytest.mark.parametrize("name", sorted(STRUCTURES))
def test_gradient_matches_differences(name: str) -> None:
    density = make_density(name)
    x = random_point(density, 3)
    _, gradient = density.logp(x)
    numeric = fourth_order_gradient(lambda v: density.logp(v)[0], x)
    np.testing.assert_allclose(gradient, numeric, rtol=1e-7, atol=1e-7)


def test_outputs_have_the_declared_names_and_shapes() -> None:
    density = make_density("crossed-slopes")
    state = density.expand(density.initial_point(0))
    assert tuple(state) == density.output_names
    assert [np.shape(v) for v in state.values()] == list(density.output_shapes)
    assert state["corr_a"][0, 1] == pytest.approx(2 * float(state["corr_a__raw"]) - 1)


def test_overflowing_points_give_minus_infinity_not_nan() -> None:
    density = make_density("crossed")
    for far in (800.0, -800.0):  # sigma = exp(800) overflows, exp(-800) is 0
        x = density.initial_point(0)
        x[-1] = far
        value, gradient = density.logp(x)
        assert value == -math.inf and np.all(gradient == 0.0)


def test_unconstrain_refuses_values_outside_the_support() -> None:
    density = make_density("crossed-slopes")
    state = density.expand(density.initial_point(0))
    with pytest.raises(ValueError, match="must be positive"):
        density.unconstrain({**state, "sigma": 0.0})
    with pytest.raises(ValueError, match="positive definite correlation"):
        density.unconstrain({**state, "corr_a": np.array([[1.0, 1.0], [1.0, 1.0]])})
    with pytest.raises(ValueError, match="values lack"):
        density.unconstrain({"beta": state["beta"]})


def test_direct_backend_needs_a_marginalised_nutpie_run() -> None:
    design = design_of("crossed")
    with pytest.raises(ValueError, match="backend='direct'"):
        fit_bayes(design, backend="direct", marginalize=False)
    with pytest.raises(ValueError, match="backend='direct'"):
        fit_bayes(design, backend="direct", sampler="pymc")
    with pytest.raises(ValueError, match="integrated out only by nutpie's direct backend"):
        fit_bayes(design, marginalize=True, sampler="pymc")
    binomial = build_design("y ~ x + (1 | a)", frame().assign(y=lambda f: f.y > 3), "binomial")
    with pytest.raises(ValueError, match="needs a gaussian model"):
        GaussianMarginalDensity(binomial, resolve_priors(binomial))


@pytest.mark.parametrize("q", [3, 4, 5])
def test_lkj_prior_equals_pymc(q: int) -> None:
    import pymc as pm

    prior = LkjCholeskyPrior("corr", Prior("LKJCorr", eta=1.7), q)
    transform = pm.distributions.transforms.CholeskyCorrTransform(q)
    rng = np.random.default_rng(q)
    for _ in range(3):
        v = rng.normal(size=prior.size)
        chol, logp, slope = prior.evaluate(v)
        expected_chol = transform.backward(v).eval()
        np.testing.assert_allclose(chol, expected_chol, atol=1e-14)
        expected = pm.logp(pm.LKJCorr.dist(n=q, eta=1.7), expected_chol).eval()
        expected += transform.log_jac_det(v).eval()
        assert logp == pytest.approx(float(expected), rel=1e-12)
        np.testing.assert_allclose(slope, fourth_order_gradient(lambda w: prior.evaluate(w)[1], v),
                                   rtol=1e-7, atol=1e-8)  # fmt: skip
        np.testing.assert_allclose(prior.unconstrain(chol), v, atol=1e-12)
        weights = np.tril(rng.normal(size=(q, q)))
        pulled = prior.pull_back(v, weights)
        numeric = fourth_order_gradient(
            lambda w, weights=weights: float(np.sum(weights * prior.evaluate(w)[0])), v
        )
        np.testing.assert_allclose(pulled, numeric, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize(
    "name", ["crossed-slopes", "nested-3-levels", "four-terms", "large-trailing"]
)
def test_effect_draws_have_the_exact_conditional_moments(name: str) -> None:
    """A draw is ``mean + A ε``: zero noise gives the mean, unit noises the columns of ``A``."""
    design = design_of(name)
    density = make_density(name)
    x = random_point(density, 7)
    values = density.expand(x)
    z, g = dense_covariance(design, values)
    sigma = float(values["sigma"])
    cov = sigma**2 * np.eye(design.nobs) + z @ g @ z.T
    resid = design.y - design.X @ values["beta"]
    mean = g @ z.T @ np.linalg.solve(cov, resid)
    covariance = g - g @ z.T @ np.linalg.solve(cov, z @ g)

    def stacked(effects: list[np.ndarray]) -> np.ndarray:
        # the dense layout: factor by factor, level-major, the factor's terms side by side
        out = []
        for group in design.factors:
            parts = [
                e for e, b in zip(effects, design.blocks, strict=True) if b.group == group.group
            ]
            out.append(np.hstack(parts).ravel())
        return np.concatenate(out)

    drawn_mean = stacked(density.draw_effects(x, ScriptedNormals(None))[0])
    np.testing.assert_allclose(drawn_mean, mean, rtol=1e-9, atol=1e-10)
    n_noise = sum(b.n_levels * b.n_terms for b in design.blocks)
    columns = np.column_stack(
        [
            stacked(density.draw_effects(x, ScriptedNormals(k))[0]) - drawn_mean
            for k in range(n_noise)
        ]
    )
    np.testing.assert_allclose(columns @ columns.T, covariance, rtol=1e-8, atol=1e-10)


def test_shifted_response_gives_the_shifted_posterior() -> None:
    """``y + 1e12`` with the intercept shifted by ``1e12``: the same density, the same gradient."""
    data = frame().copy()
    # the response as it can be stored next to 1e12, so that both designs hold the same data
    data["y"] = (data["y"] + 1e12) - 1e12
    design = build_design(STRUCTURES["crossed-slopes"], data, "gaussian")
    data["y"] = data["y"] + 1e12
    shifted_design = build_design(STRUCTURES["crossed-slopes"], data, "gaussian")
    density = GaussianMarginalDensity(design, resolve_priors(design))
    shifted = GaussianMarginalDensity(shifted_design, resolve_priors(shifted_design))
    for seed in (8, 9):
        values = density.expand(random_point(density, seed))
        # an intercept that stays exact next to 1e12 (whose spacing is 1.2e-4)
        values["beta"][0] = (values["beta"][0] + 1e12) - 1e12
        x = density.unconstrain(values)
        values["beta"] = values["beta"] + np.array([1e12, 0.0])
        x_shifted = shifted.unconstrain(values)
        value, gradient = density.logp(x)
        shifted_value, shifted_gradient = shifted.logp(x_shifted)
        # what remains is the default priors' location, the mean of the stored response,
        # which carries the rounding of a sum of 1e12-sized numbers (about 1e-4)
        assert shifted_value == pytest.approx(value, abs=1e-3)
        np.testing.assert_allclose(shifted_gradient, gradient, rtol=1e-4, atol=1e-4)
